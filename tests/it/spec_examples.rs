//! Reads spec examples and compares HTML the way the specs' own test runners do.

use std::collections::BTreeMap;

/// One example from a spec: Markdown in, the HTML it must produce.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Example {
    pub number: usize,
    pub section: String,
    pub markdown: String,
    pub html: String,
}

/// Extracts the examples from a CommonMark-style `spec.txt`, numbered as the spec numbers them
/// (the same rules as `commonmark-spec`'s `index.js`: 32 backticks and `example` open an example,
/// a lone `.` separates Markdown from HTML, `→` stands for a tab).
pub fn parse_spec(text: &str) -> Vec<Example> {
    const FENCE: &str = "````````````````````````````````";
    let text = text.split("\n<!-- END TESTS -->").next().unwrap_or(text);
    let mut examples = Vec::new();
    let mut section = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix(FENCE) {
            if !rest.trim_start().starts_with("example") {
                continue;
            }
            let mut markdown = String::new();
            for line in lines.by_ref().take_while(|line| *line != ".") {
                markdown.push_str(line);
                markdown.push('\n');
            }
            let mut html = String::new();
            for line in lines.by_ref().take_while(|line| *line != FENCE) {
                html.push_str(line);
                html.push('\n');
            }
            examples.push(Example {
                number: examples.len() + 1,
                section: section.clone(),
                markdown: markdown.replace('→', "\t"),
                html: html.replace('→', "\t"),
            });
        } else if line.starts_with('#') {
            let heading = line.trim_start_matches('#');
            if heading.starts_with(' ') || heading.is_empty() {
                section = heading.trim().to_owned();
            }
        }
    }
    examples
}

/// Runs `render` over `examples` and returns those whose output differs from the spec's after
/// normalisation, keyed by example number, as (expected, actual).
pub fn failures(
    examples: &[Example],
    render: impl Fn(&str) -> String,
) -> BTreeMap<usize, (String, String)> {
    examples
        .iter()
        .filter_map(|example| {
            let actual = render(&example.markdown);
            (normalize(&actual) != normalize(&example.html))
                .then(|| (example.number, (example.html.clone(), actual)))
        })
        .collect()
}

/// Block-level tags: whitespace next to them carries no meaning (from `normalize.py`).
const BLOCK_TAGS: &[&str] = &[
    "article",
    "header",
    "aside",
    "hgroup",
    "blockquote",
    "hr",
    "iframe",
    "body",
    "li",
    "map",
    "button",
    "object",
    "canvas",
    "ol",
    "caption",
    "output",
    "col",
    "p",
    "colgroup",
    "pre",
    "dd",
    "progress",
    "div",
    "section",
    "dl",
    "table",
    "td",
    "dt",
    "tbody",
    "embed",
    "textarea",
    "fieldset",
    "tfoot",
    "figcaption",
    "th",
    "figure",
    "thead",
    "footer",
    "tr",
    "form",
    "ul",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "video",
    "script",
    "style",
];

#[derive(PartialEq)]
enum Last {
    Nothing,
    StartTag,
    EndTag,
    Data,
}

/// A Rust rendering of the CommonMark spec's `test/normalize.py`, which every CommonMark
/// implementation's spec run uses: two HTML strings are the same when they only differ in
///  - how text characters are written (`"` or `&quot;`; Python's parser decodes both),
///  - runs of whitespace (one space outside `<pre>`), and whitespace next to block tags,
///  - attribute order, and the `/` of a self-closing tag (`<br />` is `<br>`).
///
/// It forgives nothing else: a different tag, attribute value or character still differs.
pub fn normalize(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let (mut in_pre, mut last, mut last_tag) = (false, Last::Nothing, String::new());
    let mut rest = html;
    while !rest.is_empty() {
        let data_end = (0..rest.len())
            .filter(|&i| rest.is_char_boundary(i) && rest[i..].starts_with('<'))
            .find(|&i| markup_len(&rest[i..]).is_some())
            .unwrap_or(rest.len());
        if data_end > 0 {
            let mut data = decode_entities(&rest[..data_end]);
            let after_tag = matches!(last, Last::StartTag | Last::EndTag);
            if after_tag && last_tag == "br" {
                data = data.trim_start_matches('\n').to_owned();
            }
            if !in_pre {
                data = collapse_whitespace(&data);
            }
            if after_tag && BLOCK_TAGS.contains(&last_tag.as_str()) && !in_pre {
                data = match last {
                    Last::StartTag => data.trim_start().to_owned(),
                    _ => data.trim().to_owned(),
                };
            }
            // Text is compared decoded, then re-escaped, so `&lt;b&gt;` stays apart from `<b>`.
            out.push_str(&data.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"));
            last = Last::Data;
            rest = &rest[data_end..];
            continue;
        }
        let len = markup_len(rest).expect("data_end is 0 only at markup");
        let markup = &rest[..len];
        rest = &rest[len..];
        if markup.starts_with("<!") || markup.starts_with("<?") {
            out.push_str(markup);
            last = Last::Nothing;
            continue;
        }
        let closing = markup.starts_with("</");
        let inner = markup.trim_start_matches("</").trim_start_matches('<').trim_end_matches('>');
        let self_closing = !closing && inner.ends_with('/');
        let inner = inner.trim_end_matches('/');
        let name_end = inner.find(|c: char| c.is_whitespace() || c == '/').unwrap_or(inner.len());
        let name = inner[..name_end].to_ascii_lowercase();
        let block = BLOCK_TAGS.contains(&name.as_str());
        if closing {
            if name == "pre" {
                in_pre = false;
            } else if block {
                out.truncate(out.trim_end().len());
            }
            out.push_str("</");
            out.push_str(&name);
            out.push('>');
            last = Last::EndTag;
        } else {
            if name == "pre" {
                in_pre = true;
            }
            if block {
                out.truncate(out.trim_end().len());
            }
            out.push('<');
            out.push_str(&name);
            let mut attributes = parse_attributes(&inner[name_end..]);
            attributes.sort();
            for (key, value) in attributes {
                out.push(' ');
                out.push_str(&key);
                if let Some(value) = value {
                    out.push_str("=\"");
                    out.push_str(&escape_attribute(&decode_entities(&value)));
                    out.push('"');
                }
            }
            out.push('>');
            last = if self_closing { Last::EndTag } else { Last::StartTag };
        }
        last_tag = name;
    }
    out
}

/// The length of the tag, comment or declaration at the start of `text`, if it starts with one
/// (Python's `HTMLParser` rules: `<` then a letter, `/` and a letter, `!` or `?`).
fn markup_len(text: &str) -> Option<usize> {
    let after = text.strip_prefix('<')?;
    if after.starts_with("!--") {
        return text[4..].find("-->").map(|end| 4 + end + 3);
    }
    if after.starts_with("![CDATA[") {
        return text.find("]]>").map(|end| end + 3);
    }
    let first = after.chars().next()?;
    let second = after.chars().nth(1);
    let opens = first.is_ascii_alphabetic()
        || first == '!'
        || first == '?'
        || (first == '/' && second.is_some_and(|c| c.is_ascii_alphabetic()));
    if !opens {
        return None;
    }
    let mut quote = None;
    for (i, c) in text.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') if !first.eq(&'!') && !first.eq(&'?') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

fn parse_attributes(text: &str) -> Vec<(String, Option<String>)> {
    let mut attributes = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let key_end = rest.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(rest.len());
        let key = rest[..key_end].to_ascii_lowercase();
        rest = rest[key_end..].trim_start();
        let value = if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (value, remainder) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let end = after[1..].find(q).map_or(after.len(), |e| e + 1);
                    (&after[1..end], after.get(end + 1..).unwrap_or(""))
                }
                _ => {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            rest = remainder.trim_start();
            Some(value.to_owned())
        } else {
            None
        };
        if !key.is_empty() {
            attributes.push((key, value));
        }
    }
    attributes
}

/// Decodes the character references HTML writers choose between (`&quot;` for `"`, numeric
/// references); named references beyond the XML five are left as they are, on both sides.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "quot" => Some('"'),
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "apos" => Some('\''),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Each run of whitespace becomes one space, as `re.sub(r"\s+", " ", data)` does.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !in_run {
                out.push(' ');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

#[test]
fn normalizing_forgives_only_what_the_spec_runner_forgives() {
    let same = |a: &str, b: &str| normalize(a) == normalize(b);
    assert!(same("<p>a \"b\"</p>\n", "<p>a &quot;b&quot;</p>\n"));
    assert!(same("<ul>\n<li>\n<div>\n</li>\n</ul>\n", "<ul>\n<li><div>\n</li>\n</ul>\n"));
    assert!(same(
        "<input type=\"checkbox\" disabled=\"\"/>",
        "<input disabled=\"\" type=\"checkbox\">"
    ));
    assert!(same("<p>a  \n b</p>", "<p>a b</p>"));
    assert!(!same("<p>a</p>", "<p>b</p>"));
    assert!(!same("<em>a</em>", "<strong>a</strong>"));
    assert!(!same("<a href=\"/x\">a</a>", "<a href=\"/y\">a</a>"));
    assert!(!same("<pre><code>a  b</code></pre>", "<pre><code>a b</code></pre>"));
    assert!(!same("<p>&lt;b&gt;</p>", "<p><b></p>"));
    assert!(!same("<p>a b</p>", "<p>ab</p>"));
}
