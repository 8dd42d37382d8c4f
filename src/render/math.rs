//! Math: `$…$` and `$$…$$` (pulldown-cmark's math option finds them; `$5 and $6` stays text)
//! become MathML in the document, which browsers draw without JavaScript or web fonts.
//! pulldown-latex turns the TeX into MathML; display math is `<math display="block">`.
//!
//! A formula that does not parse never fails the page: its source is shown, marked as an error,
//! with the reason as a tooltip.

use askama::Template;
use pulldown_latex::config::DisplayMode;
use pulldown_latex::{Parser, RenderConfig, Storage, push_mathml};

/// Converts formulas, reusing one arena for a whole note.
#[derive(Default)]
pub(super) struct Math {
    /// Made on the first formula, so a note without math pays nothing.
    storage: Option<Storage>,
}

impl Math {
    /// The HTML for one formula: MathML, or its source marked as an error.
    pub(super) fn convert(&mut self, tex: &str, display: bool) -> String {
        let storage = self.storage.get_or_insert_with(Storage::new);
        let mut html = String::with_capacity(tex.len() * 8);
        let mut failure = None;
        let written = {
            let events = Parser::new(tex, storage).inspect(|event| {
                if let (Err(error), None) = (event, &failure) {
                    failure = Some(error.to_string());
                }
            });
            let config = RenderConfig {
                display_mode: if display { DisplayMode::Block } else { DisplayMode::Inline },
                ..RenderConfig::default()
            };
            push_mathml(&mut html, events, config)
        };
        storage.reset();
        let failure = failure.or_else(|| written.err().map(|error| error.to_string()));
        match failure {
            None => html,
            Some(error) => {
                // pulldown-latex's own error text carries a multi-line pointer into the source;
                // its first line says what went wrong.
                let reason = error.lines().next().unwrap_or_default().trim();
                let unparsed = Unparsed { tex, reason, display };
                unparsed.render().expect("rendering &str fields into a String cannot fail")
            }
        }
    }
}

/// A formula that does not parse, shown as written.
#[derive(Template)]
#[template(path = "math-error.html")]
struct Unparsed<'a> {
    tex: &'a str,
    reason: &'a str,
    display: bool,
}

#[cfg(test)]
mod tests {
    use crate::render::{Dialect, render_body};

    #[test]
    fn inline_and_display_math_become_mathml() {
        let body =
            render_body("Euler: $e^{i\\pi}+1=0$.\n\n$$\n\\frac{a}{b}\n$$\n", Dialect::Markdrop);
        assert!(body.starts_with("<p>Euler: <math"), "{body}");
        assert!(body.contains("<msup>") && body.contains("<mfrac>"), "{body}");
        assert!(body.contains("<math display=\"block\">"), "{body}");
        assert!(!body.contains('$'), "{body}");
    }

    #[test]
    fn a_formula_that_does_not_parse_shows_its_source_marked_as_an_error() {
        let body =
            render_body("Bad: $\\frac{1}$ and $$\\nosuchcommand{x}$$ end\n", Dialect::Markdrop);
        assert!(body.contains("<code class=\"math-error\" title=\"parsing error: "), "{body}");
        assert!(body.contains(">\\frac{1}</code>"), "{body}");
        assert!(body.contains("<span class=\"math-error math-display\" title=\""), "{body}");
        assert!(body.contains(">\\nosuchcommand{x}</span>"), "{body}");
        assert!(body.ends_with(" end</p>\n"), "the page goes on: {body}");
    }

    #[test]
    fn prices_escaped_dollars_and_code_stay_text() {
        for text in ["It costs $5 and $6 each.", "A \\$ sign and $ 5 $.", "`$x$` is code."] {
            let body = render_body(text, Dialect::Markdrop);
            assert!(!body.contains("<math") && !body.contains("math-error"), "{text}: {body}");
        }
    }

    #[test]
    fn the_source_of_a_failed_formula_is_escaped() {
        let body = render_body("$\\frac{<b>}$\n", Dialect::Markdrop);
        assert!(!body.contains("<b>"), "{body}");
    }
}
