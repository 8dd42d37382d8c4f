//! Every example of the CommonMark 0.31.2 spec, through the renderer's body with the extensions
//! that change CommonMark's meaning switched off.
//!
//! The spec is vendored from the npm package `commonmark-spec` 0.31.2 as
//! `tests/data/commonmark-spec-0.31.2.txt` (CC-BY-SA 4.0, see `tests/data/LICENSE-commonmark-spec`).

use markdrop::render::{Dialect, render_body};

use crate::spec_examples::{failures, parse_spec};

const SPEC: &str = include_str!("../data/commonmark-spec-0.31.2.txt");

#[test]
fn the_vendored_spec_holds_all_652_examples() {
    let examples = parse_spec(SPEC);
    assert_eq!(examples.len(), 652);
    assert_eq!(examples[0].section, "Tabs");
    assert_eq!(examples[0].markdown, "\tfoo\tbaz\t\tbim\n");
}

#[test]
fn every_commonmark_example_renders_as_the_spec_says() {
    let failed = failures(&parse_spec(SPEC), |markdown| render_body(markdown, Dialect::CommonMark));
    for (number, (expected, actual)) in &failed {
        eprintln!("example {number}:\nexpected {expected:?}\nactual   {actual:?}\n");
    }
    assert!(
        failed.is_empty(),
        "{} of 652 examples differ: {:?}",
        failed.len(),
        failed.keys().collect::<Vec<_>>()
    );
}
