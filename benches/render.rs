//! How much the complete document costs over pulldown-cmark's bare HTML writer.
//!
//! `cargo bench --bench render` compares, on the same input and with the same parser options:
//! - `document`: `markdrop::render::render`, what the worker uploads (decoding, front matter,
//!   heading ids, footnotes, title, template, inlined stylesheet), as a first render: the
//!   process's cache of highlighted blocks is emptied before each one, outside the timing;
//! - `document-again`: the same note rendered again, every block it highlights in the cache
//!   (a note converted again because a wikilink target appeared, or a retry);
//! - `push_html`: `pulldown_cmark::html::push_html` alone.
//!
//! Two inputs (see `support/inputs.rs`): the CommonMark spec, a real 200 KB Markdown document,
//! and a generated 170 KB note dense with every extension markdrop enables.
//!
//! On a shared or virtual machine, criterion's back-to-back runs drift; `cargo run --release
//! --example render_ab` interleaves the two paths and reports min and median, and runs under
//! `valgrind --tool=callgrind` for instruction counts that do not drift at all.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pulldown_cmark::{Parser, html};

#[path = "support/inputs.rs"]
mod inputs;

fn bench_render(c: &mut Criterion) {
    for (name, input) in inputs::all() {
        let input = input.as_str();
        let mut group = c.benchmark_group(format!("render/{name}"));
        group.throughput(Throughput::Bytes(input.len() as u64));
        let render = || {
            markdrop::render::render(
                black_box(input.as_bytes()),
                &markdrop::render::Page::alone("bench"),
            )
        };
        group.bench_function("document", |b| {
            b.iter_batched(
                markdrop::render::forget_highlighted_blocks,
                |()| render(),
                BatchSize::PerIteration,
            )
        });
        group.bench_function("document-again", |b| {
            render();
            b.iter(render)
        });
        group.bench_function("push_html", |b| {
            b.iter(|| {
                let mut body = String::with_capacity(input.len() + input.len() / 2);
                html::push_html(&mut body, Parser::new_ext(black_box(input), inputs::OPTIONS));
                body
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
