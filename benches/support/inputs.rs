//! The benchmark inputs, shared by `benches/render.rs` and `examples/render_ab.rs`.

use std::fmt::Write;

use pulldown_cmark::Options;

/// The parser options of `Dialect::Markdrop`, for the bare `push_html` baseline.
pub const OPTIONS: Options = Options::ENABLE_TABLES
    .union(Options::ENABLE_STRIKETHROUGH)
    .union(Options::ENABLE_TASKLISTS)
    .union(Options::ENABLE_FOOTNOTES)
    .union(Options::ENABLE_GFM)
    .union(Options::ENABLE_MATH);

/// A real, large Markdown document: the CommonMark spec, vendored for the conformance tests.
const SPEC: &str = include_str!("../../tests/data/commonmark-spec-0.31.2.txt");

/// Every input, named.
pub fn all() -> [(&'static str, String); 3] {
    [("commonmark-spec", SPEC.to_owned()), ("notes", notes(400)), ("math", math(850))]
}

/// A lab notebook of `sections` days, each with a heading, a footnote, a task list, a table,
/// strikethrough, a quote and a code block: a worst case for what markdrop adds per item.
pub fn notes(sections: usize) -> String {
    let mut note = String::from("---\ntitle: Lab notebook\ntags: [bench]\n---\n# Lab notebook\n\n");
    for i in 0..sections {
        write!(
            note,
            "## Day {i}: results\n\n\
             Measured the *cold* start again with **release** builds and `RUST_LOG=info`; see \
             [the run log](https://example.com/runs/{i}) and the footnote[^{i}]. Numbers were \
             within ~~5%~~ 3% of yesterday's.\n\n\
             - [x] rerun the benchmark\n- [ ] update the dashboard\n  - nested item with a \
             [link][ref{i}]\n\n\
             | metric | before | after |\n|:-------|-------:|------:|\n| p50 | 12 ms | 9 ms |\n\
             | p99 | 40 ms | 31 ms |\n\n\
             > A quote from the review: keep the hot path allocation-free.\n\n\
             ```rust\nfn main() {{\n    println!(\"day {i}\");\n}}\n```\n\n\
             [^{i}]: Measured on the 2-core runner.\n\n[ref{i}]: https://example.com/ref/{i}\n\n"
        )
        .expect("writing to a String cannot fail");
    }
    note
}

/// A math-heavy note of `sections` parts (about 340 bytes each), each with inline formulas and
/// one displayed: fractions, roots, sums, a matrix, cases and aligned equations in turn. Bare
/// `push_html` leaves the TeX as text, so beside it the overhead is what MathML costs.
pub fn math(sections: usize) -> String {
    let displays = [
        "\\sum_{k=1}^{n} k^2 = \\frac{n(n+1)(2n+1)}{6}",
        "\\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix} \\begin{pmatrix} x \\\\ y \\end{pmatrix}",
        "f(x) = \\begin{cases} x^2 & x \\ge 0 \\\\ -x & x < 0 \\end{cases}",
        "\\begin{aligned} (a+b)^2 &= a^2 + 2ab + b^2 \\\\ &\\le 2(a^2+b^2) \\end{aligned}",
    ];
    let mut note = String::from("# Problem set\n\n");
    for i in 0..sections {
        write!(
            note,
            "## Exercise {i}\n\nLet $x_{i} = \\sqrt{{{i}^2 + 1}}$ and $\\alpha \\in [0, \\pi]$; \
             then $e^{{i\\alpha}} = \\cos\\alpha + i\\sin\\alpha$ and \
             $\\lim_{{n \\to \\infty}} (1 + 1/n)^n = e$.\n\n$$\n{}\n$$\n\n",
            displays[i % displays.len()]
        )
        .expect("writing to a String cannot fail");
    }
    note
}
