//! The GFM spec's examples for the extensions markdrop turns on: tables, strikethrough and task
//! list items, through the body markdrop uploads (every extension on, heading ids included).
//!
//! The examples come from the GitHub Flavored Markdown spec 0.29-gfm, `test/spec.txt` in
//! Debian's `cmark-gfm` 0.29.0.gfm.6-6 source package, extracted to
//! `tests/data/gfm-spec-0.29-extensions.json` (CC-BY-SA 4.0, see `tests/data/LICENSE-gfm-spec`).
//! Numbers are the spec's own.

use markdrop::render::{Dialect, render_body};

use crate::spec_examples::{Example, failures};

const EXAMPLES: &str = include_str!("../data/gfm-spec-0.29-extensions.json");

fn examples() -> Vec<Example> {
    serde_json::from_str(EXAMPLES).expect("the vendored GFM examples are valid JSON")
}

#[test]
fn the_vendored_examples_cover_the_three_extension_sections() {
    let examples = examples();
    let count = |section: &str| examples.iter().filter(|e| e.section == section).count();
    assert_eq!(count("Tables (extension)"), 8);
    assert_eq!(count("Strikethrough (extension)"), 2);
    assert_eq!(count("Task list items (extension)"), 2);
}

/// Examples whose HTML differs from the spec's in form but not in meaning. Each is still checked:
/// its expected HTML is rewritten into the form pulldown-cmark writes, and must then match.
struct Deviation {
    number: usize,
    reason: &'static str,
    rewrite: fn(&str) -> String,
}

const DEVIATIONS: &[Deviation] = &[
    Deviation {
        number: 199,
        reason: "pulldown-cmark aligns cells with `style=\"text-align: …\"`; the spec's `align=` attribute \
         is obsolete in HTML5",
        rewrite: |html| {
            html.replace("align=\"center\"", "style=\"text-align: center\"")
                .replace("align=\"right\"", "style=\"text-align: right\"")
        },
    },
    Deviation {
        number: 205,
        reason: "pulldown-cmark writes an empty `<tbody></tbody>` for a table with no body rows",
        rewrite: |html| html.replace("</thead>\n</table>", "</thead>\n<tbody>\n</tbody>\n</table>"),
    },
];

#[test]
fn every_gfm_extension_example_renders_as_the_spec_says() {
    let examples: Vec<Example> = examples()
        .into_iter()
        .map(|mut example| {
            if let Some(deviation) = DEVIATIONS.iter().find(|d| d.number == example.number) {
                example.html = (deviation.rewrite)(&example.html);
            }
            example
        })
        .collect();
    let failed = failures(&examples, |markdown| render_body(markdown, Dialect::Markdrop));
    for (number, (expected, actual)) in &failed {
        eprintln!("example {number}:\nexpected {expected:?}\nactual   {actual:?}\n");
    }
    assert!(failed.is_empty(), "GFM examples differ: {:?}", failed.keys().collect::<Vec<_>>());
}

#[test]
fn every_listed_deviation_is_still_needed() {
    let examples = examples();
    for Deviation { number, reason, .. } in DEVIATIONS {
        let example =
            examples.iter().find(|e| e.number == *number).expect("a listed example exists");
        let unrewritten = failures(std::slice::from_ref(example), |markdown| {
            render_body(markdown, Dialect::Markdrop)
        });
        assert!(
            !unrewritten.is_empty(),
            "example {number} now passes as written; drop its deviation ({reason})"
        );
    }
}

/// Rules the spec states in prose (and github.com follows) without an example in 0.29-gfm.
#[test]
fn strikethrough_takes_one_or_two_tildes_but_not_three() {
    for (markdown, html) in [
        ("~Hi~ Hello, ~there~ world!\n", "<p><del>Hi</del> Hello, <del>there</del> world!</p>\n"),
        ("This will ~~~not~~~ strike.\n", "<p>This will ~~~not~~~ strike.</p>\n"),
        ("~~a **b** c~~\n", "<p><del>a <strong>b</strong> c</del></p>\n"),
    ] {
        assert_eq!(render_body(markdown, Dialect::Markdrop), html, "{markdown:?}");
    }
}

#[test]
fn a_table_needs_a_delimiter_row_under_its_header() {
    assert_eq!(
        render_body("| a | b |\n| c | d |\n", Dialect::Markdrop),
        "<p>| a | b |\n| c | d |</p>\n"
    );
}

#[test]
fn a_task_marker_must_start_the_list_item() {
    assert_eq!(
        render_body("- not [x] a task\n- [x] done\n", Dialect::Markdrop),
        "<ul>\n<li>not [x] a task</li>\n<li><input disabled=\"\" type=\"checkbox\" checked=\"\"/>\ndone</li>\n</ul>\n"
    );
}
