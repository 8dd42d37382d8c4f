//! Fenced code in a known language, highlighted in the page itself: arborium (tree-sitter
//! grammars compiled into the binary) marks the code up with short custom elements (`<a-k>` a
//! keyword, `<a-s>` a string, `<a-c>` a comment…), which `static/document.css` colours for light
//! and dark. Custom elements need no script and carry no colour, so the page stays small and one
//! stylesheet serves every language.
//!
//! A block whose language is unknown, or that comes after the note's highlighting budget is
//! spent, or that the highlighter fails on, is written exactly as before: plain, escaped text.
//!
//! A block already highlighted in this process comes from [`cache`] instead, byte for byte what
//! highlighting it again would give, and charged to the budget the same: a page never depends
//! on what the process happened to render before.

mod cache;

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};

use arborium::{GrammarStore, Highlighter};

pub use self::cache::CacheCounts;
use self::cache::{BlockCache, CAPACITY_BYTES};

/// How much code one note may have highlighted; the blocks after it are plain. Highlighting runs
/// at about 5 MB/s, so this keeps it near a tenth of a second per note, however large: a 10 MiB
/// note of code stays far inside the worker's 30 s render limit.
pub(super) const BUDGET_BYTES: usize = 512 * 1024;

/// What every block costs the budget on top of its code. A block costs 50-100 µs however short
/// (a parse, its queries and its injections, measured), so without this a note of empty blocks
/// would be highlighted without end; with it, at most 2,048 blocks are.
pub(super) const BLOCK_BYTES: usize = 256;

/// The longest language name [`language`] knows (`containerfile`), rounded up.
const LONGEST_NAME: usize = 16;

/// The grammars, each compiled on first use (a few to 40 ms), once for the whole process.
static GRAMMARS: LazyLock<Arc<GrammarStore>> = LazyLock::new(|| Arc::new(GrammarStore::new()));

/// The blocks highlighted so far, shared by every rendering thread.
static BLOCKS: LazyLock<BlockCache> = LazyLock::new(|| BlockCache::new(CAPACITY_BYTES));

/// How often the process's cache of highlighted blocks answered, and what it holds.
pub fn cache_counts() -> CacheCounts {
    BLOCKS.counts()
}

/// Forgets every highlighted block, so the next renders highlight afresh: what a benchmark of a
/// first render needs. Pages do not change.
pub fn forget_highlighted_blocks() {
    BLOCKS.clear();
}

thread_local! {
    /// A highlighter holds a parse context that needs `&mut`; the worker renders on blocking
    /// threads, so each keeps its own, sharing the compiled grammars.
    static HIGHLIGHTER: RefCell<Highlighter> = RefCell::new(Highlighter::with_store(GRAMMARS.clone()));
}

/// The grammar a fenced block's info string names (its first word, any case), if it is one of
/// those compiled in. A `match` on a stack copy, with no allocation and no search: it runs for
/// every fenced block, and the slow path's cost counts against every note (`BENCHMARKS.md`).
pub(super) fn language(info: &str) -> Option<&'static str> {
    let bytes = info.as_bytes();
    let end = bytes
        .iter()
        .position(|byte| matches!(byte, b' ' | b'\t' | b',' | b'{'))
        .unwrap_or(bytes.len());
    if end == 0 || end > LONGEST_NAME {
        return None;
    }
    let mut lower = [0u8; LONGEST_NAME];
    for (to, from) in lower.iter_mut().zip(&bytes[..end]) {
        *to = from.to_ascii_lowercase();
    }
    Some(match &lower[..end] {
        b"asm" | b"assembly" => "asm",
        b"bash" | b"sh" | b"shell" | b"console" | b"shellsession" => "bash",
        b"c" | b"h" => "c",
        b"c#" | b"cs" | b"csharp" | b"c-sharp" => "c-sharp",
        b"clojure" | b"clj" | b"cljs" | b"edn" => "clojure",
        b"lisp" | b"commonlisp" | b"common-lisp" | b"cl" => "commonlisp",
        b"cpp" | b"c++" | b"cc" | b"cxx" | b"hpp" => "cpp",
        b"css" => "css",
        b"dart" => "dart",
        b"diff" | b"patch" => "diff",
        b"dockerfile" | b"docker" | b"containerfile" => "dockerfile",
        b"elixir" | b"ex" | b"exs" => "elixir",
        b"erlang" | b"erl" => "erlang",
        b"go" | b"golang" => "go",
        b"graphql" | b"gql" => "graphql",
        b"groovy" | b"gradle" => "groovy",
        b"haskell" | b"hs" => "haskell",
        b"html" | b"htm" | b"xhtml" => "html",
        b"ini" | b"cfg" | b"conf" => "ini",
        b"java" => "java",
        b"javascript" | b"js" | b"jsx" | b"mjs" | b"cjs" | b"node" => "javascript",
        b"json" | b"jsonc" => "json",
        b"julia" | b"jl" => "julia",
        b"kotlin" | b"kt" | b"kts" => "kotlin",
        b"lua" => "lua",
        b"make" | b"makefile" | b"mk" => "make",
        b"markdown" | b"md" => "markdown",
        b"matlab" | b"octave" => "matlab",
        b"objc" | b"objective-c" | b"objectivec" | b"obj-c" => "objc",
        b"ocaml" | b"ml" => "ocaml",
        b"php" => "php",
        b"powershell" | b"ps1" | b"pwsh" | b"posh" => "powershell",
        b"python" | b"py" | b"python3" | b"py3" => "python",
        b"r" | b"rlang" => "r",
        b"ruby" | b"rb" => "ruby",
        b"rust" | b"rs" => "rust",
        b"scala" => "scala",
        b"sql" | b"mysql" | b"postgres" | b"postgresql" | b"pgsql" | b"sqlite" => "sql",
        b"swift" => "swift",
        b"toml" => "toml",
        b"tsx" => "tsx",
        b"typescript" | b"ts" | b"mts" | b"cts" => "typescript",
        b"vb" | b"vbnet" | b"vb.net" | b"visualbasic" => "vb",
        b"x86asm" | b"x86" | b"nasm" => "x86asm",
        b"xml" | b"svg" | b"xsl" | b"xslt" => "xml",
        b"yaml" | b"yml" => "yaml",
        b"zig" => "zig",
        b"zsh" => "zsh",
        _ => return None,
    })
}

/// One note's highlighting: what is left of its budget.
#[derive(Debug, Default)]
pub(super) struct Highlight {
    spent: usize,
}

impl Highlight {
    /// Whether a block may still be highlighted, before its code is read.
    pub(super) fn has_budget(&self) -> bool {
        self.spent < BUDGET_BYTES
    }

    /// The inside of `<code>` for `code` in `language`: escaped and marked up, ending in the line
    /// breaks the code ends in (as plain code would); `None` once the budget is spent, or if the
    /// highlighter fails, and the block is then written plain.
    pub(super) fn code(&mut self, language: &'static str, code: &str) -> Option<String> {
        self.code_through(&BLOCKS, language, code)
    }

    /// [`Highlight::code`], looking in `cache` first and storing there what it highlights.
    fn code_through(
        &mut self,
        cache: &BlockCache,
        language: &'static str,
        code: &str,
    ) -> Option<String> {
        // Counted whether or not it fits: the budget is the first 512 KiB of code, so once a
        // block goes past it, that block and every later one stay plain. Counted before the
        // cache is asked, so a cached block costs the budget what a fresh one does and which
        // blocks are highlighted never depends on what is cached.
        self.spent = self.spent.saturating_add(BLOCK_BYTES + code.len());
        if self.spent > BUDGET_BYTES {
            return None;
        }
        let key = cache.key(language, code);
        if let Some(html) = cache.get(key) {
            return Some(html.to_string());
        }
        let mut html = highlight(language, code)?;
        // arborium drops the code's final line breaks; plain code keeps them.
        html.push_str(&code[code.trim_end_matches('\n').len()..]);
        cache.insert(key, &html);
        Some(html)
    }
}

/// arborium's HTML for `code`, or `None` when it fails. A panic in the highlighter (grammars are
/// third-party C, fed whatever a note holds) is caught too: it should cost the block its colours,
/// not the note its page.
fn highlight(language: &str, code: &str) -> Option<String> {
    let highlighted = catch_unwind(AssertUnwindSafe(|| {
        HIGHLIGHTER.with_borrow_mut(|highlighter| highlighter.highlight(language, code).ok())
    }));
    highlighted.unwrap_or_else(|_| {
        // The parse context may be half-way through something; start this thread afresh.
        HIGHLIGHTER.set(Highlighter::with_store(GRAMMARS.clone()));
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Dialect, render_body};

    /// A block of `code` fenced as `info`, rendered.
    fn fenced(info: &str, code: &str) -> String {
        render_body(&format!("```{info}\n{code}\n```\n"), Dialect::Markdrop)
    }

    /// What a block looks like with the tags taken out (entities kept).
    fn without_tags(html: &str) -> String {
        let mut text = String::with_capacity(html.len());
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        text
    }

    #[test]
    fn each_common_language_is_highlighted() {
        let samples = [
            ("rust", "fn main() { let x = 1; }"),
            ("python", "def f(x):\n    return x + 1  # one more"),
            ("js", "const x = () => 'hi';"),
            ("typescript", "let n: number = 1;"),
            ("tsx", "const a = <div>{x}</div>;"),
            ("bash", "if [ -f x ]; then echo \"yes\"; fi"),
            ("zsh", "for f in *.md; do echo $f; done"),
            ("c", "int main(void) { return 0; }"),
            ("cpp", "template <class T> T id(T x) { return x; }"),
            ("c#", "public class A { void M() { return; } }"),
            ("java", "class A { public static void main(String[] a) {} }"),
            ("go", "func main() { fmt.Println(\"hi\") }"),
            ("kotlin", "fun main() { val x = 1 }"),
            ("swift", "let x: Int = 1\nfunc f() {}"),
            ("scala", "object A { def f(x: Int) = x }"),
            ("ruby", "def f(x)\n  x + 1\nend"),
            ("php", "<?php function f($x) { return $x; }"),
            ("lua", "local function f(x) return x end"),
            ("dart", "void main() { var x = 1; }"),
            ("r", "f <- function(x) { x + 1 }"),
            ("julia", "function f(x)\n  return x\nend"),
            ("haskell", "main :: IO ()\nmain = putStrLn \"hi\""),
            ("elixir", "defmodule A do\n  def f(x), do: x\nend"),
            ("erlang", "-module(a).\nf(X) -> X."),
            ("clojure", "(defn f [x] (+ x 1))"),
            ("lisp", "(defun f (x) (+ x 1))"),
            ("ocaml", "let f x = x + 1"),
            ("zig", "pub fn main() void { const x = 1; }"),
            ("groovy", "def f(x) { return x }"),
            ("vb", "Dim x As Integer = 1"),
            ("matlab", "function y = f(x)\n  y = x + 1;\nend"),
            ("objc", "@interface A : NSObject\n@end"),
            ("powershell", "function F { param($x) return $x }"),
            ("sql", "SELECT id FROM notes WHERE x = 'y';"),
            ("html", "<p class=\"x\">hi</p>"),
            ("css", "p { color: red; }"),
            ("json", "{\"a\": [1, true, null]}"),
            ("yaml", "a: 1\nb: [x, \"y\"]"),
            ("toml", "[package]\nname = \"x\""),
            ("xml", "<a href=\"x\">y</a>"),
            ("markdown", "# Title\n\nSome *text*."),
            ("dockerfile", "FROM debian\nRUN echo hi"),
            ("makefile", "all: x\n\tcc -o x x.c"),
            ("diff", "--- a\n+++ b\n-old\n+new"),
            ("ini", "[section]\nkey = value"),
            ("graphql", "query { user(id: 1) { name } }"),
            ("asm", "mov eax, 1\nret"),
            ("x86asm", "mov eax, 1\nret"),
        ];
        for (info, code) in samples {
            let body = fenced(info, code);
            assert!(body.contains("<a-"), "{info} is not highlighted: {body}");
            assert!(body.starts_with(&format!("<pre><code class=\"language-{info}\">")), "{body}");
            assert!(body.ends_with("\n</code></pre>\n"), "{body}");
        }
    }

    #[test]
    fn an_unknown_language_stays_plain_and_escaped() {
        for info in ["", "fortran", "latex", "text", "{.python}", "a-very-long-language-name"] {
            let body = fenced(info, "if a < b && c > d { \"q\" }");
            let class = info.split(' ').next().filter(|lang| !lang.is_empty());
            let open = match class {
                Some(lang) => format!("<pre><code class=\"language-{lang}\">"),
                None => "<pre><code>".to_owned(),
            };
            assert_eq!(
                body,
                format!("{open}if a &lt; b &amp;&amp; c &gt; d {{ \"q\" }}\n</code></pre>\n")
            );
        }
    }

    #[test]
    fn markup_in_code_is_escaped_not_interpreted() {
        let body = fenced("html", "<script>alert('x & y')</script>");
        assert!(!body.contains("<script>"), "{body}");
        assert_eq!(
            without_tags(&body),
            "&lt;script&gt;alert(&#39;x &amp; y&#39;)&lt;/script&gt;\n\n",
            "{body}"
        );
        let body = fenced("rust", "let b = a < 1 && c > \"<b>\";");
        assert!(body.contains("&lt;") && !body.contains("<b>"), "{body}");
    }

    #[test]
    fn highlighting_changes_no_text_only_adds_tags() {
        let code = "fn main() {\n\tlet s = \"tab\\there\";\n    // done\n}\n\n";
        let highlighted = fenced("rust", code);
        let plain = fenced("plain", code);
        assert_ne!(highlighted, plain);
        assert_eq!(
            without_tags(&highlighted).replace("&quot;", "\""),
            without_tags(&plain),
            "{highlighted}"
        );
    }

    #[test]
    fn aliases_and_any_case_name_the_same_grammar() {
        let cases = [
            ("rust", &["rs", "Rust", "RUST", "rust,ignore", "rust title=\"x\"", "rust\tx"][..]),
            ("python", &["py", "Python3", "py3"]),
            ("javascript", &["js", "JSX", "mjs", "node"]),
            ("typescript", &["ts", "TypeScript"]),
            ("bash", &["sh", "shell", "console", "Bash"]),
            ("c-sharp", &["c#", "cs", "CSharp"]),
            ("cpp", &["c++", "cc", "cxx", "C++"]),
            ("yaml", &["yml"]),
            ("make", &["makefile", "Makefile", "mk"]),
            ("dockerfile", &["Dockerfile", "docker"]),
            ("markdown", &["md", "Markdown"]),
            ("commonlisp", &["lisp", "common-lisp"]),
            ("objc", &["objective-c"]),
        ];
        for (language, aliases) in cases {
            assert_eq!(super::language(language), Some(language));
            for alias in aliases {
                assert_eq!(super::language(alias), Some(language), "{alias}");
            }
        }
        for plain in ["", " rust", "{rust}", "text", "fortran", "perl", "f#", "rustacean"] {
            assert_eq!(super::language(plain), None, "{plain:?}");
        }
    }

    #[test]
    fn every_name_matched_has_a_grammar() {
        let names = [
            "asm",
            "bash",
            "c",
            "c-sharp",
            "clojure",
            "commonlisp",
            "cpp",
            "css",
            "dart",
            "diff",
            "dockerfile",
            "elixir",
            "erlang",
            "go",
            "graphql",
            "groovy",
            "haskell",
            "html",
            "ini",
            "java",
            "javascript",
            "json",
            "julia",
            "kotlin",
            "lua",
            "make",
            "markdown",
            "matlab",
            "objc",
            "ocaml",
            "php",
            "powershell",
            "python",
            "r",
            "ruby",
            "rust",
            "scala",
            "sql",
            "swift",
            "toml",
            "tsx",
            "typescript",
            "vb",
            "x86asm",
            "xml",
            "yaml",
            "zig",
            "zsh",
        ];
        for name in names {
            assert_eq!(language(name), Some(name));
            assert!(GRAMMARS.get(name).is_some(), "{name} has no grammar");
        }
    }

    #[test]
    fn only_the_first_512_kib_of_code_is_highlighted() {
        let block = format!("```rust\n{}```\n\n", "let x = 1;\n".repeat(10 * 1024));
        let blocks = BUDGET_BYTES / (block.len() - "```rust\n```\n\n".len() + BLOCK_BYTES);
        let note = block.repeat(blocks + 2);
        let body = render_body(&note, Dialect::Markdrop);
        let highlighted = body.split("</pre>").filter(|block| block.contains("<a-")).count();
        assert_eq!(highlighted, blocks, "the blocks within the budget, and no more");
        let last = body.rsplit("<pre>").next().expect("a block");
        assert!(!last.contains("<a-") && last.contains("let x = 1;"), "later blocks stay plain");

        let mut highlight = Highlight::default();
        let fits = "x;\n".repeat((BUDGET_BYTES - BLOCK_BYTES) / 3);
        assert!(highlight.code("rust", &fits).is_some());
        assert!(highlight.has_budget() && highlight.code("rust", "x;\n").is_none());
        assert!(!highlight.has_budget());
    }

    #[test]
    fn every_block_counts_against_the_budget_however_short() {
        let blocks = BUDGET_BYTES / (BLOCK_BYTES + "fn f() {}\n".len());
        let note = "```rs\nfn f() {}\n```\n".repeat(blocks + 10);
        let body = render_body(&note, Dialect::Markdrop);
        let highlighted = body.split("</pre>").filter(|block| block.contains("<a-")).count();
        assert_eq!(highlighted, blocks);
        assert_eq!(body.matches("<pre>").count(), blocks + 10);
    }

    #[test]
    fn one_huge_block_stays_plain() {
        let note = format!("```python\n{}```\n", "x = 1\n".repeat(BUDGET_BYTES / 6 + 1));
        let body = render_body(&note, Dialect::Markdrop);
        assert!(!body.contains("<a-"));
        assert!(body.starts_with("<pre><code class=\"language-python\">x = 1\n"));
    }

    #[test]
    fn highlighting_is_deterministic_across_threads() {
        let note = "```rust\nfn f<T: Clone>(x: &T) -> T { x.clone() } // c\n```\n\n\
                    ```html\n<style>p{color:red}</style><script>let a = 1;</script>\n```\n";
        let first = render_body(note, Dialect::Markdrop);
        for _ in 0..3 {
            let again = std::thread::spawn(move || render_body(note, Dialect::Markdrop));
            assert_eq!(again.join().expect("no panic"), first);
            assert_eq!(render_body(note, Dialect::Markdrop), first);
        }
    }

    /// `code` through a fresh [`Highlight`] (a whole budget) and `cache`.
    fn through(cache: &BlockCache, language: &'static str, code: &str) -> Option<String> {
        Highlight::default().code_through(cache, language, code)
    }

    #[test]
    fn a_cached_block_is_byte_identical_to_a_fresh_one() {
        let cache = BlockCache::new(CAPACITY_BYTES);
        let blocks = [
            ("rust", "fn f<T>(x: T) -> T { x } // \"q\" & <b>\n\n\n"),
            ("html", "<p class=x>a</p><script>let a = 1;</script><style>p{color:red}</style>"),
            ("python", "def f():\n\treturn 'x'"),
        ];
        for (language, code) in blocks {
            let fresh = through(&BlockCache::new(CAPACITY_BYTES), language, code);
            assert!(fresh.as_deref().is_some_and(|html| html.contains("<a-")), "{language}");
            assert_eq!(through(&cache, language, code), fresh, "{language}, a miss");
            assert_eq!(through(&cache, language, code), fresh, "{language}, a hit");
        }
        let counts = cache.counts();
        assert_eq!((counts.misses, counts.hits, counts.blocks), (3, 3, 3));
    }

    #[test]
    fn the_budget_is_charged_the_same_whether_a_block_is_cached_or_not() {
        // 40 different blocks of 14-16 KiB, more than the budget covers.
        let blocks: Vec<String> =
            (0..40).map(|n| format!("let x{n} = {n}; // {n}\n").repeat(16 * 1024 / 20)).collect();
        let note = |cache: &BlockCache| {
            let mut highlight = Highlight::default();
            blocks
                .iter()
                .map(|code| highlight.code_through(cache, "rust", code))
                .collect::<Vec<_>>()
        };
        let cache = BlockCache::new(CAPACITY_BYTES);
        let cold = note(&cache);
        let highlighted = cold.iter().take_while(|block| block.is_some()).count();
        let mut spent = 0;
        let within = blocks
            .iter()
            .take_while(|code| {
                spent += BLOCK_BYTES + code.len();
                spent <= BUDGET_BYTES
            })
            .count();
        assert!(highlighted == within && within < blocks.len(), "{highlighted} of {within}");
        assert!(cold[highlighted..].iter().all(Option::is_none), "the rest plain");
        assert_eq!(cache.counts().blocks, highlighted);

        assert_eq!(note(&cache), cold, "every block within the budget cached");

        let some = BlockCache::new(CAPACITY_BYTES);
        for code in blocks.iter().step_by(3) {
            through(&some, "rust", code).expect("highlighted with a whole budget");
        }
        assert_eq!(some.counts().blocks, 14, "past the budget too: they were alone in a note");
        assert_eq!(note(&some), cold, "every third block cached, some past the budget");
    }

    #[test]
    fn threads_sharing_a_cache_get_the_blocks_a_fresh_highlight_gives() {
        let blocks: Vec<String> = (0..8).map(|n| format!("fn f{n}() -> u8 {{ {n} }}\n")).collect();
        let fresh: Vec<_> = blocks
            .iter()
            .map(|code| through(&BlockCache::new(CAPACITY_BYTES), "rust", code))
            .collect();
        assert!(fresh.iter().all(Option::is_some));
        let cache = BlockCache::new(CAPACITY_BYTES);
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let mut highlight = Highlight::default();
                        blocks
                            .iter()
                            .map(|code| highlight.code_through(&cache, "rust", code))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for thread in threads {
                assert_eq!(thread.join().expect("no panic"), fresh);
            }
        });
        let counts = cache.counts();
        assert_eq!((counts.blocks, counts.hits + counts.misses), (8, 32));
    }

    #[test]
    fn a_block_the_highlighter_fails_on_is_not_cached() {
        let cache = BlockCache::new(CAPACITY_BYTES);
        for _ in 0..2 {
            assert_eq!(through(&cache, "no-such-grammar", "let x = 1;"), None);
        }
        let counts = cache.counts();
        assert_eq!((counts.misses, counts.hits, counts.blocks), (2, 0, 0));
    }

    #[test]
    fn a_note_rendered_again_is_the_same_page_with_its_blocks_from_the_cache() {
        let note = "# Again\n\n```rust\nfn again() { 1 }\n```\n\nText.\n\n\
                    ```py\nagain = 'cached'\n```\n\n```js\nlet again = `cached`;\n```\n";
        let first = render_body(note, Dialect::Markdrop);
        let hits = cache_counts().hits;
        assert_eq!(render_body(note, Dialect::Markdrop), first);
        // Other tests render at the same time and only ever add hits.
        assert!(cache_counts().hits >= hits + 3, "the three blocks came from the cache");
        let edited = note.replace("Text.", "Other text.");
        assert_eq!(render_body(&edited, Dialect::Markdrop), first.replace("Text.", "Other text."));
    }

    #[test]
    fn code_in_lists_quotes_and_footnotes_is_highlighted_in_place() {
        let note = "- item\n  ```rust\n  let x = 1;\n  ```\n\n> ```py\n> x = 1\n> ```\n\n\
                    Text[^a]\n\n[^a]: Code:\n\n    ```js\n    let y;\n    ```\n";
        let body = render_body(note, Dialect::Markdrop);
        assert!(body.matches("<a-").count() >= 3, "{body}");
        assert!(body.contains("<li>item\n<pre><code class=\"language-rust\">"), "{body}");
        assert!(body.contains("<blockquote>\n<pre><code class=\"language-py\">"), "{body}");
        let footnotes = body.find("class=\"footnotes\"").expect("a footnote section");
        assert!(body[footnotes..].contains("<code class=\"language-js\"><a-"), "{body}");
    }
}
