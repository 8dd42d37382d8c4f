//! Interleaved A/B timing of `markdrop::render::render` against bare `push_html`.
//!
//! `cargo run --release --example render_ab [ROUNDS] [INPUT]` alternates the two on each input
//! (or only the one named INPUT: `commonmark-spec`, `notes`, `math`, `code`) and
//! prints min and median microseconds and the overhead: alternating keeps a noisy neighbour from
//! favouring whichever ran second. Under `valgrind --tool=callgrind` (with ROUNDS=20, say) the
//! instruction counts of `render` and `push_html` are repeatable to the instruction.

use std::hint::black_box;
use std::time::Instant;

use pulldown_cmark::{Parser, html};

#[path = "../benches/support/inputs.rs"]
mod inputs;

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(300);
    let only = std::env::args().nth(2);
    for (name, input) in inputs::all() {
        if only.as_deref().is_some_and(|only| only != name) {
            continue;
        }
        let (mut document, mut bare) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
        for _ in 0..rounds {
            let start = Instant::now();
            black_box(markdrop::render::render(
                black_box(input.as_bytes()),
                &markdrop::render::Page::alone("bench"),
            ));
            document.push(start.elapsed().as_secs_f64() * 1e6);
            let start = Instant::now();
            let mut body = String::with_capacity(input.len() + input.len() / 2);
            html::push_html(&mut body, Parser::new_ext(black_box(&input), inputs::OPTIONS));
            black_box(body);
            bare.push(start.elapsed().as_secs_f64() * 1e6);
        }
        let (document, bare) = (summary(document), summary(bare));
        println!(
            "{name:16} {:>7} bytes  document min {:>6.0} µs med {:>6.0} µs | push_html min {:>6.0} µs med {:>6.0} µs | overhead min {:+5.1}% med {:+5.1}%",
            input.len(),
            document.0,
            document.1,
            bare.0,
            bare.1,
            (document.0 / bare.0 - 1.0) * 100.0,
            (document.1 / bare.1 - 1.0) * 100.0,
        );
    }
}

/// (min, median)
fn summary(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    (samples[0], samples[samples.len() / 2])
}
