//! The one pass over pulldown-cmark's events that turns a CommonMark body into a document body:
//! every heading gets a unique `id`, the first heading's text is kept for the `<title>`, and
//! footnote definitions move to a section at the end, as GitHub and Obsidian show them.
//!
//! It is an iterator adapter, so the body is still written by `push_html` in a single pass;
//! only a heading's own events, footnote definitions, and whatever comes before the first
//! heading are held back, never the whole document.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::vec;

use pulldown_cmark::{
    CodeBlockKind, CowStr, Event, HeadingLevel, InlineStr, LinkType, Tag, TagEnd,
};

use super::contents::Heading;
use super::highlight::{self, Highlight};
use super::math::Math;
use super::wikilinks::{self, LinkRewrite, Page, Wikilinks};
use super::{alerts, links};

/// Footnote ids live in their own namespace, so `[^intro]` cannot collide with `# Intro`.
const FOOTNOTE_ID_PREFIX: &str = "fn-";

/// The id of a heading whose text has no letters or digits at all.
const EMPTY_SLUG: &str = "section";

/// What reading ahead for the first heading found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookahead {
    /// The first heading's text is known.
    Found,
    /// The whole body was read and has no heading.
    Exhausted,
    /// Too many events before any heading; the body must be rendered before the title is known.
    GaveUp,
}

pub(super) struct Annotate<'a, I> {
    events: I,
    /// A heading's events, held until its text (and so its id) is known.
    pending: VecDeque<Event<'a>>,
    used_ids: HashSet<String>,
    first_heading: Option<String>,
    /// The events of every footnote definition set aside, one after another (one buffer rather
    /// than one per footnote: allocations are most of what footnotes cost).
    footnote_events: Vec<Event<'a>>,
    /// Each footnote definition's name as written and its events' range in `footnote_events`.
    footnotes: Vec<(CowStr<'a>, Range<usize>)>,
    /// The current heading's plain text, kept to reuse its allocation.
    heading_text: String,
    /// Each footnote name as written, with the rank of its first reference (its number).
    referenced: HashMap<CowStr<'a>, usize>,
    /// The footnote definitions, replayed after the body through the same annotations.
    tail: Option<vec::IntoIter<Event<'a>>>,
    /// Every heading, for a table of contents; `None` when none is wanted.
    headings: Option<Vec<Heading>>,
    math: Math,
    wikilinks: Wikilinks<'a>,
    highlight: Highlight,
    /// Links to `.md` files point at their pages (the `links` setting).
    note_links: bool,
    /// Fenced code in a known language is highlighted (the `highlight` setting).
    highlighting: bool,
}

impl<'a, I: Iterator<Item = Event<'a>>> Annotate<'a, I> {
    pub(super) fn new(events: I, page: Page<'a>) -> Self {
        Annotate {
            events,
            pending: VecDeque::new(),
            used_ids: HashSet::new(),
            first_heading: None,
            footnote_events: Vec::new(),
            footnotes: Vec::new(),
            heading_text: String::new(),
            referenced: HashMap::new(),
            tail: None,
            headings: None,
            math: Math::default(),
            wikilinks: Wikilinks::new(page),
            highlight: Highlight::default(),
            note_links: true,
            highlighting: true,
        }
    }

    /// Turns off what the `links` and `highlight` settings switch off.
    pub(super) fn switched(mut self, note_links: bool, highlighting: bool) -> Self {
        self.note_links = note_links;
        self.highlighting = highlighting;
        self
    }

    /// Also keeps every heading's level, id and text, for [`Annotate::into_headings`].
    pub(super) fn keeping_headings(mut self) -> Self {
        self.headings = Some(Vec::new());
        self
    }

    /// The headings kept, in order (empty unless [`Annotate::keeping_headings`]).
    pub(super) fn headings(&mut self) -> Vec<Heading> {
        self.headings.take().unwrap_or_default()
    }

    /// The lower-cased note names the wikilinks read so far mention (see [`Wikilinks::names`]).
    pub(super) fn wikilink_names(&mut self) -> Vec<String> {
        self.wikilinks.names()
    }

    /// The plain text of the first heading among the events read so far.
    pub(super) fn first_heading(&self) -> Option<&str> {
        self.first_heading.as_deref()
    }

    /// Reads ahead until the first heading's text is known, so the `<title>` can be written
    /// before the body. The events read are held and come out of the iterator as usual.
    /// Gives up after `limit` events: holding a whole large note without headings would cost
    /// far more memory than the note itself.
    pub(super) fn read_to_first_heading(&mut self, limit: usize) -> Lookahead {
        let mut ahead = VecDeque::new();
        let outcome = loop {
            if self.first_heading.is_some() {
                break Lookahead::Found;
            }
            if ahead.len() >= limit {
                break Lookahead::GaveUp;
            }
            match self.next() {
                Some(event) => ahead.push_back(event),
                None => break Lookahead::Exhausted,
            }
        };
        ahead.append(&mut self.pending);
        self.pending = ahead;
        outcome
    }

    /// The next event of the body, then of the footnote section.
    fn next_source_event(&mut self) -> Option<Event<'a>> {
        match &mut self.tail {
            None => self.events.next().or_else(|| self.start_footnote_section()),
            Some(tail) => tail.next(),
        }
    }

    /// Called once the body is exhausted: queues the footnote section, returns its first event.
    #[cold]
    fn start_footnote_section(&mut self) -> Option<Event<'a>> {
        if self.footnotes.is_empty() {
            return None;
        }
        // push_html numbers footnotes as it meets them, so listing the definitions in the
        // order of their first reference makes the section count 1, 2, 3 like the text does.
        let mut footnotes = std::mem::take(&mut self.footnotes);
        footnotes.sort_by_key(|(name, _)| self.referenced.get(name).copied().unwrap_or(usize::MAX));
        let mut events = std::mem::take(&mut self.footnote_events);
        let mut section = Vec::with_capacity(events.len() + 2);
        section.push(Event::Html(
            "<section class=\"footnotes\" role=\"doc-endnotes\">\n<hr>\n".into(),
        ));
        for (_, range) in footnotes {
            section.extend(
                events[range].iter_mut().map(|event| std::mem::replace(event, Event::SoftBreak)),
            );
        }
        section.push(Event::Html("</section>\n".into()));
        let mut tail = section.into_iter();
        let first = tail.next();
        self.tail = Some(tail);
        first
    }

    /// Holds a heading's events in `pending` and returns its start tag, now with an id.
    #[inline(never)]
    fn annotate_heading(
        &mut self,
        level: HeadingLevel,
        id: Option<CowStr<'a>>,
        classes: Vec<CowStr<'a>>,
        attrs: Vec<(CowStr<'a>, Option<CowStr<'a>>)>,
    ) -> Event<'a> {
        let mut text = std::mem::take(&mut self.heading_text);
        text.clear();
        self.hold_heading(&mut text);
        let id = match id {
            Some(id) => id,
            None => self.unique_id(&text),
        };
        if self.first_heading.is_none() && !text.trim().is_empty() {
            self.first_heading = Some(collapse_whitespace(&text));
        }
        if let Some(headings) = &mut self.headings {
            let text = collapse_whitespace(&text);
            headings.push(Heading { level: level as u8, id: id.to_string(), text });
        }
        self.heading_text = text;
        Event::Start(Tag::Heading { level, id: Some(id), classes, attrs })
    }

    /// Reads a heading's events up to its end into `pending`, and its plain text into `text`.
    fn hold_heading(&mut self, text: &mut String) {
        while let Some(event) = self.next_source_event() {
            match &event {
                Event::Text(part) | Event::Code(part) | Event::InlineMath(part) => {
                    text.push_str(part)
                }
                Event::SoftBreak | Event::HardBreak => text.push(' '),
                _ => {}
            }
            if let Event::Start(Tag::Link {
                link_type: LinkType::WikiLink { has_pothole: false },
                dest_url,
                ..
            }) = &event
                && dest_url.contains('#')
                && self.wikilinks.resolves(dest_url)
            {
                // Read whole by `rewrite`, its text never comes past here: count it as shown.
                text.push_str(&wikilinks::heading_link_text(dest_url));
            }
            let end = matches!(event, Event::End(TagEnd::Heading(_)));
            let event = self.rewrite(event);
            self.pending.push_back(event);
            if end {
                break;
            }
        }
    }

    /// Moves a footnote definition, from its start to its end, out of the body.
    #[inline(never)]
    fn set_aside_footnote(&mut self, name: CowStr<'a>) {
        let start = self.footnote_events.len();
        self.footnote_events.push(Event::Start(Tag::FootnoteDefinition(footnote_id(&name))));
        while let Some(event) = self.events.next() {
            let end = matches!(event, Event::End(TagEnd::FootnoteDefinition));
            let event = self.namespace_footnote(event);
            self.footnote_events.push(event);
            if end {
                break;
            }
        }
        self.footnotes.push((name, start..self.footnote_events.len()));
    }

    /// Moves footnote references into the footnote namespace, noting the order they come in.
    #[inline(never)]
    fn namespace_footnote(&mut self, event: Event<'a>) -> Event<'a> {
        match event {
            Event::FootnoteReference(name) => {
                let id = footnote_id(&name);
                if !self.referenced.contains_key(&name) {
                    self.referenced.insert(name, self.referenced.len());
                }
                Event::FootnoteReference(id)
            }
            other => other,
        }
    }

    /// The events that change in place: footnote references into their namespace, links to
    /// notes to their pages, alerts into their boxes, formulas into MathML.
    fn rewrite(&mut self, event: Event<'a>) -> Event<'a> {
        match event {
            // A footnote's own references were moved into the namespace as it was set aside.
            Event::FootnoteReference(_) if self.tail.is_some() => event,
            Event::FootnoteReference(_) => self.namespace_footnote(event),
            Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
                let dest_url = match link_type {
                    LinkType::Inline
                    | LinkType::Reference
                    | LinkType::Collapsed
                    | LinkType::Shortcut
                        if self.note_links =>
                    {
                        links::note_page_href(&dest_url).map_or(dest_url, CowStr::from)
                    }
                    LinkType::WikiLink { has_pothole: false } if dest_url.contains('#') => {
                        if let Some(link) = self.heading_wikilink(&dest_url) {
                            return link;
                        }
                        dest_url
                    }
                    LinkType::WikiLink { .. } => match self.wikilinks.link(&dest_url) {
                        LinkRewrite::To(href) => href.into(),
                        LinkRewrite::Unchanged => dest_url,
                        LinkRewrite::Missing(open) => return Event::InlineHtml(open.into()),
                    },
                    _ => dest_url,
                };
                Event::Start(Tag::Link { link_type, dest_url, title, id })
            }
            Event::Start(Tag::Image { link_type: LinkType::WikiLink { .. }, dest_url, .. }) => {
                self.embed(&dest_url)
            }
            Event::Start(Tag::BlockQuote(Some(kind))) => Event::Html(alerts::open(kind).into()),
            Event::End(TagEnd::BlockQuote(Some(_))) => Event::Html(alerts::CLOSE.into()),
            Event::InlineMath(tex) => Event::InlineHtml(self.math.convert(&tex, false).into()),
            Event::DisplayMath(tex) => Event::InlineHtml(self.math.convert(&tex, true).into()),
            other => other,
        }
    }

    /// A fenced block in a known language: reads its code and queues it highlighted, then the
    /// block's end. The start is returned as it came, so push_html frames the block exactly as
    /// it does a plain one.
    #[inline(never)]
    fn highlight_code(&mut self, info: CowStr<'a>) -> Event<'a> {
        let highlighting = self.highlighting && self.highlight.has_budget();
        if let Some(language) = highlight::language(&info).filter(|_| highlighting) {
            let mut code = String::new();
            // A code block holds only text; whatever ends it goes back in the queue as it came.
            let end = loop {
                match self.next_source_event() {
                    Some(Event::Text(text)) => code.push_str(&text),
                    other => break other,
                }
            };
            let inside = match self.highlight.code(language, &code) {
                Some(html) => Event::Html(html.into()),
                None => Event::Text(code.into()),
            };
            self.pending.push_back(inside);
            self.pending.extend(end);
        }
        Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info)))
    }

    /// `[[Note#Heading]]` written without a `|`, read to its end: shown as Obsidian shows it,
    /// `Note > Heading`. Read whole (as an embed is), so it is one event wherever it stands,
    /// a heading held in `pending` included. `None` (nothing read) for a URL in brackets.
    #[inline(never)]
    fn heading_wikilink(&mut self, dest: &str) -> Option<Event<'a>> {
        if !self.wikilinks.resolves(dest) {
            return None;
        }
        // Without a `|`, the text is the target as written: only text.
        let mut text = String::new();
        while let Some(event) = self.next_source_event() {
            match event {
                Event::End(TagEnd::Link) => break,
                Event::Text(part) | Event::Code(part) => text.push_str(&part),
                _ => {}
            }
        }
        Some(Event::InlineHtml(self.wikilinks.whole_link(dest, &text).into()))
    }

    /// `![[target]]`, read to its end: its text is the embed's alt text or size.
    #[inline(never)]
    fn embed(&mut self, dest: &str) -> Event<'a> {
        let mut text = String::new();
        while let Some(event) = self.next_source_event() {
            match event {
                Event::End(TagEnd::Image) => break,
                Event::Text(part) | Event::Code(part) => text.push_str(&part),
                _ => {}
            }
        }
        Event::InlineHtml(self.wikilinks.embed(dest, &text).into())
    }

    /// The heading's [`slug`], made unique with `-1`, `-2`…
    fn unique_id(&mut self, text: &str) -> CowStr<'a> {
        let mut slug = slug(text);
        if self.used_ids.contains(&slug) {
            let base = slug;
            slug = (1..)
                .map(|n| format!("{base}-{n}"))
                .find(|candidate| !self.used_ids.contains(candidate))
                .expect("an unbounded range always has a free suffix");
        }
        let id = inline_or_boxed(&slug);
        self.used_ids.insert(slug);
        id
    }
}

impl<'a, I: Iterator<Item = Event<'a>>> Iterator for Annotate<'a, I> {
    type Item = Event<'a>;

    // Inlined into push_html's loop, with every rare branch kept out of line: the adapter's
    // whole budget is a few percent of pulldown-cmark's own cost.
    #[inline(always)]
    fn next(&mut self) -> Option<Event<'a>> {
        if self.pending.is_empty() && self.tail.is_none() {
            // Inspect by reference and hand the same `Option` back, so the event is not moved
            // out and in again: for most events this adapter is one discriminant check.
            let event = self.events.next();
            if !matches!(
                event,
                None | Some(
                    Event::Start(
                        Tag::Heading { .. }
                            | Tag::FootnoteDefinition(_)
                            | Tag::Link { .. }
                            | Tag::Image { link_type: LinkType::WikiLink { .. }, .. }
                            | Tag::BlockQuote(Some(_))
                            | Tag::CodeBlock(CodeBlockKind::Fenced(_))
                    ) | Event::End(TagEnd::BlockQuote(Some(_)))
                        | Event::FootnoteReference(_)
                        | Event::InlineMath(_)
                        | Event::DisplayMath(_)
                )
            ) {
                return event;
            }
            return self.annotate(event);
        }
        match self.pending.pop_front() {
            Some(event) => Some(event),
            None => {
                let event = self.next_source_event();
                self.annotate(event)
            }
        }
    }
}

impl<'a, I: Iterator<Item = Event<'a>>> Annotate<'a, I> {
    /// The slow path: an event that needs changing, the end of the body, or the footnote tail.
    #[inline(never)]
    fn annotate(&mut self, mut event: Option<Event<'a>>) -> Option<Event<'a>> {
        loop {
            match event {
                None if self.tail.is_none() && !self.footnotes.is_empty() => {
                    event = self.start_footnote_section();
                }
                Some(Event::Start(Tag::Heading { level, id, classes, attrs })) => {
                    return Some(self.annotate_heading(level, id, classes, attrs));
                }
                Some(Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info)))) => {
                    return Some(self.highlight_code(info));
                }
                Some(Event::Start(Tag::FootnoteDefinition(name))) if self.tail.is_none() => {
                    self.set_aside_footnote(name);
                    event = self.next_source_event();
                }
                Some(
                    event @ (Event::FootnoteReference(_)
                    | Event::Start(
                        Tag::Link { .. }
                        | Tag::Image { link_type: LinkType::WikiLink { .. }, .. }
                        | Tag::BlockQuote(Some(_)),
                    )
                    | Event::End(TagEnd::BlockQuote(Some(_)))
                    | Event::InlineMath(_)
                    | Event::DisplayMath(_)),
                ) => return Some(self.rewrite(event)),
                other => return other,
            }
        }
    }
}

/// A GitHub-style slug (`## Sync & Queue` → `sync--queue`): a heading's id before it is made
/// unique, and the fragment a wikilink to that heading uses.
pub(super) fn slug(text: &str) -> String {
    let mut slug: String = text
        .trim()
        .chars()
        .filter_map(|c| match c {
            c if c.is_whitespace() => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect();
    if slug.is_empty() {
        slug.push_str(EMPTY_SLUG);
    }
    slug
}

fn footnote_id(name: &str) -> CowStr<'static> {
    let mut id = String::with_capacity(FOOTNOTE_ID_PREFIX.len() + name.len());
    id.push_str(FOOTNOTE_ID_PREFIX);
    id.push_str(name);
    inline_or_boxed(&id)
}

/// Short strings go inline in the event, saving an allocation per heading and footnote.
fn inline_or_boxed(text: &str) -> CowStr<'static> {
    match InlineStr::try_from(text) {
        Ok(inline) => CowStr::Inlined(inline),
        Err(_) => CowStr::Boxed(text.into()),
    }
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use crate::render::{Dialect, render_body};

    #[test]
    fn headings_get_github_style_ids() {
        let body = render_body(
            "# Sync & Queue\n## Größe_1 — fine\n### `code` *here*\n",
            Dialect::Markdrop,
        );
        assert_eq!(
            body,
            "<h1 id=\"sync--queue\">Sync &amp; Queue</h1>\n\
             <h2 id=\"größe_1--fine\">Größe_1 — fine</h2>\n\
             <h3 id=\"code-here\"><code>code</code> <em>here</em></h3>\n"
        );
    }

    #[test]
    fn repeated_headings_get_distinct_ids() {
        let body = render_body("# A\n# A\n# A 1\n# A\n# !!!\n", Dialect::Markdrop);
        let ids: Vec<&str> =
            body.split("id=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
        assert_eq!(ids, ["a", "a-1", "a-1-1", "a-2", "section"]);
    }

    #[test]
    fn footnotes_move_to_an_end_section_in_their_own_id_namespace() {
        let body = render_body(
            "# Intro\n\nSee[^intro].\n\n[^intro]: The *note*.\n\nAfter.\n",
            Dialect::Markdrop,
        );
        assert_eq!(
            body,
            "<h1 id=\"intro\">Intro</h1>\n\
             <p>See<sup class=\"footnote-reference\"><a href=\"#fn-intro\">1</a></sup>.</p>\n\
             <p>After.</p>\n\
             <section class=\"footnotes\" role=\"doc-endnotes\">\n<hr>\n\
             <div class=\"footnote-definition\" id=\"fn-intro\"><sup class=\"footnote-definition-label\">1</sup>\n\
             <p>The <em>note</em>.</p>\n</div>\n</section>\n"
        );
    }

    #[test]
    fn a_reference_inside_a_footnote_points_at_its_footnote() {
        let body = render_body("x[^a]\n\n[^a]: see[^b]\n[^b]: B\n", Dialect::Markdrop);
        assert!(
            body.contains("see<sup class=\"footnote-reference\"><a href=\"#fn-b\">2</a>"),
            "{body}"
        );
        assert!(body.contains("id=\"fn-b\"><sup class=\"footnote-definition-label\">2<"), "{body}");
    }

    #[test]
    fn footnotes_are_numbered_in_reference_order() {
        let body = render_body("[^b]: B\n[^a]: A\n\nx[^a] y[^b]\n", Dialect::Markdrop);
        let a =
            body.find("id=\"fn-a\"><sup class=\"footnote-definition-label\">1<").expect("a is 1");
        let b =
            body.find("id=\"fn-b\"><sup class=\"footnote-definition-label\">2<").expect("b is 2");
        assert!(a < b, "the section lists footnotes in reference order: {body}");
    }
}
