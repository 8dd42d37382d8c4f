//! The checks a person's stylesheet (`css = "style.css"`) passes before it is inlined into
//! every page its settings govern.
//!
//! It goes inside a `<style>` element, so it must be text and must not close that element: a
//! `</style` in it would end the stylesheet early and let the rest be read as HTML in the page.
//! The cap keeps one large file from being copied into thousands of pages.

/// The largest stylesheet inlined, in bytes.
pub const STYLESHEET_CAP: usize = 64 * 1024;

/// Why a stylesheet is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StylesheetError {
    #[error("the stylesheet is {size} bytes; at most {cap} are inlined into a page", cap = STYLESHEET_CAP)]
    TooLarge { size: usize },
    #[error("the stylesheet is not UTF-8 text (byte {offset} is not)")]
    NotText { offset: usize },
    #[error(
        "the stylesheet contains \"</style\" (line {line}), which would end it early in the page"
    )]
    ClosesStyle { line: usize },
}

/// The stylesheet's text, if it may be inlined.
pub fn check_stylesheet(bytes: &[u8]) -> Result<&str, StylesheetError> {
    if bytes.len() > STYLESHEET_CAP {
        return Err(StylesheetError::TooLarge { size: bytes.len() });
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|error| StylesheetError::NotText { offset: error.valid_up_to() })?;
    match text.to_ascii_lowercase().find("</style") {
        Some(at) => {
            Err(StylesheetError::ClosesStyle { line: text[..at].matches('\n').count() + 1 })
        }
        None => Ok(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_utf8_stylesheet_is_used_as_it_is() {
        assert_eq!(
            check_stylesheet(b"body { color: red } /* \xC3\xA9 */"),
            Ok("body { color: red } /* é */")
        );
    }

    #[test]
    fn a_stylesheet_over_the_cap_is_refused_with_its_size() {
        let error = check_stylesheet(&vec![b' '; STYLESHEET_CAP + 1]).expect_err("too large");
        assert_eq!(
            error.to_string(),
            "the stylesheet is 65537 bytes; at most 65536 are inlined into a page"
        );
        assert!(check_stylesheet(&vec![b' '; STYLESHEET_CAP]).is_ok());
    }

    #[test]
    fn a_stylesheet_that_is_not_text_is_refused() {
        let error = check_stylesheet(b"a{}\xFF").expect_err("not text");
        assert_eq!(error.to_string(), "the stylesheet is not UTF-8 text (byte 3 is not)");
    }

    #[test]
    fn a_stylesheet_that_would_close_its_style_element_is_refused() {
        let error = check_stylesheet(b"a{}\nb{}\n</STYLE><script>").expect_err("closes");
        assert_eq!(
            error.to_string(),
            "the stylesheet contains \"</style\" (line 3), which would end it early in the page"
        );
    }
}
