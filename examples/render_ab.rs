//! Interleaved A/B timing of `markdrop::render::render` against bare `push_html`.
//!
//! `cargo run --release --example render_ab [ROUNDS] [INPUT]` alternates three renders on each
//! input (or only the one named INPUT: `commonmark-spec`, `notes`, `math`, `code`) and prints
//! min and median microseconds, the overhead and the speed:
//!
//! - **cold**: the document, with the process's cache of highlighted blocks emptied first, so
//!   every block is highlighted (a first render);
//! - **bare**: `push_html` on the same parser options;
//! - **warm**: the document again with one fenced block edited (its first line doubled), so
//!   only that block misses the cache: a person editing one block of a note.
//!
//! Alternating keeps a noisy neighbour from favouring whichever ran second. Under
//! `valgrind --tool=callgrind` (with ROUNDS=20, say) the inclusive instruction counts of
//! `render_cold`, `render_warm` and `push_html` are repeatable to the instruction.

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
        let edited = edit_one_block(&input);
        let (mut cold, mut bare, mut warm) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            markdrop::render::forget_highlighted_blocks();
            cold.push(micros(|| render_cold(&input)));
            bare.push(micros(|| {
                let mut body = String::with_capacity(input.len() + input.len() / 2);
                html::push_html(&mut body, Parser::new_ext(black_box(&input), inputs::OPTIONS));
                body
            }));
            warm.push(micros(|| render_warm(&edited)));
        }
        // Of the last round's two renders: every block of the cold one, the edited one of the
        // warm one.
        let counts = markdrop::render::highlight_cache_counts();
        let (cold, bare, warm) = (summary(cold), summary(bare), summary(warm));
        let speed = |micros: f64| input.len() as f64 / micros;
        println!(
            "{name:16} {:>7} bytes  cold min {:>7.0} µs med {:>7.0} µs ({:>6.1} MB/s) | \
             push_html min {:>5.0} µs med {:>5.0} µs | overhead min {:+6.1}% med {:+6.1}% | \
             warm min {:>6.0} µs med {:>6.0} µs ({:>6.1} MB/s) | last round: {} misses, {} hits, {} blocks in {} KB",
            input.len(),
            cold.0,
            cold.1,
            speed(cold.0),
            bare.0,
            bare.1,
            (cold.0 / bare.0 - 1.0) * 100.0,
            (cold.1 / bare.1 - 1.0) * 100.0,
            warm.0,
            warm.1,
            speed(warm.0),
            counts.misses,
            counts.hits,
            counts.blocks,
            counts.bytes / 1000,
        );
    }
}

// Two functions, so that callgrind counts them apart; their page names differ only so that
// the compiler does not merge them into one.
#[inline(never)]
fn render_cold(input: &str) -> String {
    render(input, "cold")
}

#[inline(never)]
fn render_warm(input: &str) -> String {
    render(input, "warm")
}

#[inline(always)]
fn render(input: &str, name: &str) -> String {
    let page = markdrop::render::Page::alone(name);
    black_box(markdrop::render::render(black_box(input.as_bytes()), &page))
}

/// `input` with the first line of its first fenced block that names a language written twice;
/// `input` itself when it has none.
fn edit_one_block(input: &str) -> String {
    let named = |at: &usize| input[at + 4..].starts_with(|c: char| c.is_ascii_alphabetic());
    let Some(fence) = input.match_indices("\n```").map(|(at, _)| at).find(named) else {
        return input.to_owned();
    };
    let code = fence + 1 + input[fence + 1..].find('\n').expect("a fence line ends") + 1;
    let first_line = &input[code..=code + input[code..].find('\n').expect("a code line ends")];
    format!("{}{first_line}{}", &input[..code], &input[code..])
}

/// How long `run` takes, dropping what it made included (as the worker does).
fn micros<T>(run: impl FnOnce() -> T) -> f64 {
    let start = Instant::now();
    black_box(run());
    start.elapsed().as_secs_f64() * 1e6
}

/// (min, median)
fn summary(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    (samples[0], samples[samples.len() / 2])
}
