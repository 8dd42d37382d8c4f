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
pub fn all() -> [(&'static str, String); 4] {
    [
        ("commonmark-spec", SPEC.to_owned()),
        ("notes", notes(400)),
        ("math", math(850)),
        ("code", code(112)),
    ]
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

/// A programmer's notebook of `sections` entries (about 1.8 KB each), half prose and half fenced
/// code in Rust, Python, JavaScript and shell in turn. Bare `push_html` writes the code plain, so
/// beside it the overhead is what highlighting costs.
pub fn code(sections: usize) -> String {
    let mut note = String::from("# Snippets\n\n");
    for i in 0..sections {
        let (language, block) = CODE_BLOCKS[i % CODE_BLOCKS.len()];
        write!(
            note,
            "## Entry {i}: {language}\n\n\
             Today's change to the importer (build {i}) moved the retry logic out of the request \
             handler and into a small function of its own, so that it can be tested without a \
             server. The old version slept between attempts on the calling thread, which held a \
             worker for up to a minute when the upstream was down; the new one computes the \
             delay and lets the caller decide. See *the review notes* and `RETRY_LIMIT` below.\n\n\
             - the delay doubles from 250 ms and stops growing at 30 s\n\
             - a **429** answer is retried after its `Retry-After`, not the computed delay\n\
             - errors that cannot succeed on a retry (a 4xx other than 408 and 429) end at once\n\n\
             The sketch below is what I tried first; it is shorter than the version that was \
             merged, but it shows the shape of it and the edge cases the tests cover.\n\n\
             ```{language}\n{}```\n\n\
             Next time: measure how often the third attempt succeeds, and whether the cap should \
             depend on the endpoint. Until then the numbers above stay as they are.\n\n",
            block.replace("@N", &i.to_string())
        )
        .expect("writing to a String cannot fail");
    }
    note
}

/// The code of [`code`]'s entries, each about 900 bytes, written for this benchmark; `@N` is the
/// entry's number.
const CODE_BLOCKS: [(&str, &str); 4] = [
    (
        "rust",
        r#"use std::time::Duration;

/// How long to wait before attempt `attempt` (counted from 0), or `None` to give up.
pub fn retry_delay(attempt: u32, status: u16, retry_after: Option<u64>) -> Option<Duration> {
    const RETRY_LIMIT: u32 = @N;
    if attempt >= RETRY_LIMIT || (400..500).contains(&status) && !matches!(status, 408 | 429) {
        return None;
    }
    if let Some(seconds) = retry_after.filter(|_| status == 429) {
        return Some(Duration::from_secs(seconds));
    }
    let millis = 250u64.saturating_mul(1 << attempt.min(16));
    Some(Duration::from_millis(millis.min(30_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_then_stops_growing() {
        let delays: Vec<_> = (0..4).map(|n| retry_delay(n, 503, None)).collect();
        assert_eq!(delays[1], Some(Duration::from_millis(500)));
        assert_eq!(retry_delay(20, 503, None), None, "entry @N");
    }
}
"#,
    ),
    (
        "python",
        r#"import dataclasses
import random
from typing import Optional

RETRY_LIMIT = @N


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    retry_after: Optional[float] = None


def retry_delay(attempt: int, answer: Answer) -> Optional[float]:
    """Seconds to wait before attempt `attempt`, or None to give up."""
    if attempt >= RETRY_LIMIT:
        return None
    if 400 <= answer.status < 500 and answer.status not in (408, 429):
        return None
    if answer.status == 429 and answer.retry_after is not None:
        return answer.retry_after
    delay = min(0.25 * 2 ** attempt, 30.0)
    # Spread the retries of many clients over the upper half of the delay.
    return delay / 2 + random.uniform(0, delay / 2)


if __name__ == "__main__":
    for n in range(5):
        print(f"attempt {n}: {retry_delay(n, Answer(503)):.2f}s")
"#,
    ),
    (
        "javascript",
        r#"// Retries a fetch with a doubling delay; entry @N.
const RETRY_LIMIT = 5;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function fetchWithRetry(url, options = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const response = await fetch(url, options);
    const { status } = response;
    if (response.ok || attempt + 1 >= RETRY_LIMIT) {
      return response;
    }
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      return response;
    }
    const retryAfter = Number(response.headers.get("Retry-After"));
    const delay = status === 429 && retryAfter > 0
      ? retryAfter * 1000
      : Math.min(250 * 2 ** attempt, 30_000);
    console.debug(`retrying ${url} in ${delay} ms (attempt ${attempt + 1})`);
    await sleep(delay);
  }
}

fetchWithRetry("https://example.com/api/items?page=@N")
  .then((response) => response.json())
  .then((items) => items.filter((item) => !item.archived))
  .catch((error) => console.error("gave up:", error));
"#,
    ),
    (
        "bash",
        r#"#!/usr/bin/env bash
# Downloads a file, retrying with a doubling delay (entry @N).
set -euo pipefail

url=${1:?usage: fetch URL [OUT]}
out=${2:-$(basename "$url")}
limit=${RETRY_LIMIT:-5}
delay=1

for ((attempt = 1; attempt <= limit; attempt++)); do
    status=$(curl -sS -o "$out.part" -w '%{http_code}' "$url" || echo 000)
    case "$status" in
        2??) mv "$out.part" "$out"; echo "saved $out"; exit 0 ;;
        408|429|5??|000) ;;
        *) echo "giving up: HTTP $status" >&2; rm -f "$out.part"; exit 1 ;;
    esac
    echo "attempt $attempt failed (HTTP $status), next in ${delay}s" >&2
    sleep "$delay"
    delay=$(( delay * 2 > 30 ? 30 : delay * 2 ))
done

echo "no luck after $limit attempts" >&2
exit 1
"#,
    ),
];
