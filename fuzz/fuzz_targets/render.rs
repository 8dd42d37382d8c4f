//! Any bytes render to a whole document: no panic, and the same document twice.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let document = markdrop::render::render(data, &markdrop::render::Page::alone("fuzz"));
    assert!(document.starts_with("<!DOCTYPE html>"));
    assert!(document.trim_end().ends_with("</html>"));
    assert_eq!(document, markdrop::render::render(data, &markdrop::render::Page::alone("fuzz")));
});
