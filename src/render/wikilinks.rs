//! Obsidian's wikilinks: `[[Note]]`, `[[Note|shown text]]`, `[[Note#Heading]]`,
//! `[[folder/Note]]` and the embed `![[picture.png]]`, resolved against the files of the account
//! (a [`FileIndex`]) as seen from the note's page (a [`Page`]).
//!
//! A target names a file by name, anywhere in the account, case-insensitively (Rust's
//! `to_lowercase` on both sides, never Dropbox's own folding). The first rule that applies:
//! 1. `./…` or `../…`: that path from the note's folder, exactly;
//! 2. a target with a `/`: that path from the account root exactly, else (unless it starts with
//!    `/`) every file whose path ends with `/` + target, whole segments only;
//! 3. a bare name: every file with that name.
//!
//! A target names `target.md` unless its last segment has an extension (1-5 ASCII letters or
//! digits after a dot) and a file of exactly that name exists: `[[pic.png]]` and `[[Note.md]]`
//! mean what they say, `[[v1.2 plan]]` means `v1.2 plan.md`.
//!
//! **The tie-break**, when several files match, in this order: the one in the note's own folder;
//! then the fewest folders deep; then the shortest path in bytes; then the first in byte order of
//! the lower-cased path. Dropbox refuses two paths that differ only in case, so the last step is
//! a total order: the choice never depends on listing order.
//!
//! The href is relative to the page (`../` per folder up, then the target's path in its listed
//! case), each segment percent-encoded as [`links`](super::links) encodes a file name, with
//! `.md` made `.html`; `#Heading` becomes the same slug the heading's `id` has (the first heading
//! of that name; `#A#B` uses `B`; a block reference `#^id` is dropped, blocks have no ids).
//! A target that resolves to nothing is shown as its text, marked missing
//! (`templates/wikilink.html`), and is not a link. An embed of an image is an `<img>` (a pothole
//! of `200` or `200x100` is its size); an image the index does not know is looked for as written
//! from the note's folder; an embed of anything else is a link to it (no transclusion).
//!
//! Rendering stays a function of the note's bytes, its path and the index; every target name a
//! note mentions is reported ([`Wikilinks::names`]) so the sync pass can tell which pages a new,
//! removed or renamed note changes.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use percent_encoding::utf8_percent_encode;

use super::annotate::slug;
use super::links::SEGMENT;

/// The files a wikilink may name, by lower-cased file name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileIndex {
    /// Lower-cased file name → display paths (`/Notes/Trip.md`) of the files with that name.
    by_name: BTreeMap<String, Vec<String>>,
}

/// An index that knows no file: every wikilink is unresolved.
static EMPTY: FileIndex = FileIndex { by_name: BTreeMap::new() };

/// The page being rendered: its note's display path from the account root (`/Notes/Trip.md`)
/// and the files its wikilinks resolve against.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub path: &'a str,
    pub index: &'a FileIndex,
}

impl<'a> Page<'a> {
    /// The page of the note at `path` in an account whose files `index` lists.
    pub fn new(path: &'a str, index: &'a FileIndex) -> Page<'a> {
        Page { path, index }
    }

    /// A page with no other file beside it: its wikilinks are all unresolved.
    pub fn alone(path: &'a str) -> Page<'a> {
        Page { path, index: &EMPTY }
    }

    /// The note's file name without `.md`: the title of last resort.
    pub fn stem(&self) -> &'a str {
        let name = file_name(self.path);
        match page_name(name) {
            Some(_) => &name[..name.len() - 3],
            None => name,
        }
    }
}

impl FileIndex {
    /// An index of the files at these display paths (account-absolute, `/`-separated).
    pub fn new<S: AsRef<str>>(paths: impl IntoIterator<Item = S>) -> FileIndex {
        let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for path in paths {
            let path = path.as_ref();
            by_name.entry(fold(file_name(path))).or_default().push(path.to_owned());
        }
        FileIndex { by_name }
    }

    /// How many files it knows.
    pub fn len(&self) -> usize {
        self.by_name.values().map(Vec::len).sum()
    }

    /// Whether it knows no file.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The display path of the file `target` (a wikilink's path, without `#fragment`) names,
    /// seen from the note at `source`; the module documentation has the rules.
    pub fn resolve(&self, source: &str, target: &str) -> Option<&str> {
        let target = target.trim();
        if target.is_empty() {
            return None;
        }
        let name = file_name(target);
        let exact = self.by_name.get(&fold(name)).filter(|_| has_extension(name));
        let (candidates, wanted) = match (exact, self.by_name.get(&fold(&format!("{name}.md")))) {
            (Some(files), _) => (files, fold(target)),
            (None, Some(notes)) => (notes, fold(&format!("{target}.md"))),
            (None, None) => return None,
        };
        let here = folder(source);
        let matches = |path: &&String, wanted: &str| fold(path) == wanted;
        let matching: Vec<&String> = if wanted.starts_with("./") || wanted.starts_with("../") {
            let full = normalize(&format!("{}/{wanted}", fold(here)))?;
            candidates.iter().filter(|path| matches(path, &full)).collect()
        } else if wanted.contains('/') {
            let rooted = normalize(&wanted)?;
            let exact: Vec<&String> =
                candidates.iter().filter(|path| matches(path, &rooted)).collect();
            if !exact.is_empty() || wanted.starts_with('/') {
                exact
            } else {
                let suffix = format!("/{wanted}");
                candidates.iter().filter(|path| fold(path).ends_with(&suffix)).collect()
            }
        } else {
            candidates.iter().collect()
        };
        let here = fold(here);
        let best = matching.into_iter().min_by_key(|path| {
            let lower = fold(path);
            (fold(folder(path)) != here, path.matches('/').count(), path.len(), lower)
        })?;
        Some(best.as_str())
    }
}

/// A wikilink's destination as pulldown-cmark gives it, split: the path and the fragment.
struct Target<'t> {
    path: &'t str,
    fragment: Option<&'t str>,
}

impl<'t> Target<'t> {
    fn parse(dest: &'t str) -> Target<'t> {
        // `[[Note\|alias]]`, Obsidian's escape for a pipe inside a table, keeps the backslash.
        let dest = dest.strip_suffix('\\').unwrap_or(dest);
        match dest.split_once('#') {
            Some((path, fragment)) => Target { path: path.trim(), fragment: Some(fragment) },
            None => Target { path: dest.trim(), fragment: None },
        }
    }

    /// `#slug` of the fragment's last part, or nothing (none, empty, or a block reference).
    fn anchor(&self) -> Option<String> {
        let last = self.fragment?.rsplit('#').next()?.trim();
        if last.is_empty() || last.starts_with('^') {
            return None;
        }
        Some(format!("#{}", utf8_percent_encode(&slug(last), SEGMENT)))
    }

    /// The name a note would have to have to change what this target resolves to.
    fn note_name(&self) -> Option<String> {
        let name = note_name(self.path);
        (!name.is_empty()).then_some(name)
    }
}

/// What becomes of a wikilink's start tag.
pub(super) enum LinkRewrite {
    /// A link to this href; the text stays as written.
    To(String),
    /// Not a wikilink to resolve (a URL in brackets): left as pulldown-cmark made it.
    Unchanged,
    /// Unresolved: this opening tag, then the text, then `</a>` as for any link.
    Missing(String),
}

/// Resolves one note's wikilinks and remembers the names they mention.
pub(super) struct Wikilinks<'a> {
    page: Page<'a>,
    names: BTreeSet<String>,
}

impl<'a> Wikilinks<'a> {
    pub(super) fn new(page: Page<'a>) -> Self {
        Wikilinks { page, names: BTreeSet::new() }
    }

    /// The lower-cased note names (file name without `.md`) the note's wikilinks mention,
    /// resolved or not, in byte order.
    pub(super) fn names(&mut self) -> Vec<String> {
        std::mem::take(&mut self.names).into_iter().collect()
    }

    /// The start of `[[dest]]` or `[[dest|text]]`.
    pub(super) fn link(&mut self, dest: &str) -> LinkRewrite {
        let target = Target::parse(dest);
        if has_scheme(target.path) {
            return LinkRewrite::Unchanged;
        }
        match self.href(&target) {
            Some(href) => LinkRewrite::To(href),
            None => LinkRewrite::Missing(render(&Wikilink::MissingOpen {
                target: target.path,
                file: is_attachment(target.path),
            })),
        }
    }

    /// Whether `[[dest]]` is a wikilink to resolve, not a URL in brackets.
    pub(super) fn resolves(&self, dest: &str) -> bool {
        !has_scheme(Target::parse(dest).path)
    }

    /// The whole of `[[dest]]` written without a `|`, whose text (plain) is `text`: a link, or
    /// marked missing, read as [`heading_link_text`] says, as Obsidian shows a link to a
    /// heading.
    pub(super) fn whole_link(&mut self, dest: &str, text: &str) -> String {
        let target = Target::parse(dest);
        let shown = heading_link_text(text);
        match self.href(&target) {
            Some(href) => render(&Wikilink::Link { href: &href, text: &shown }),
            None => render(&Wikilink::Missing {
                target: target.path,
                file: is_attachment(target.path),
                text: &shown,
            }),
        }
    }

    /// The whole of `![[dest]]` or `![[dest|text]]`, whose text (plain) is `text`.
    pub(super) fn embed(&mut self, dest: &str, text: &str) -> String {
        let target = Target::parse(dest);
        let size = parse_size(text.trim());
        let shown = if size.is_some() || text.trim().is_empty() { target.path } else { text };
        let (width, height) = size.unwrap_or_default();
        if is_image(target.path) && !has_scheme(target.path) {
            let src = match self.href(&target) {
                Some(href) => href,
                None => as_written(self.page.path, target.path),
            };
            return render(&Wikilink::Image { href: &src, alt: shown, width, height });
        }
        match self.href(&target) {
            Some(href) => render(&Wikilink::Link { href: &href, text: shown }),
            None => render(&Wikilink::Missing {
                target: target.path,
                file: is_attachment(target.path),
                text: shown,
            }),
        }
    }

    /// Where a target points from this page; `None` when it names no known file.
    fn href(&mut self, target: &Target) -> Option<String> {
        if target.path.is_empty() {
            return Some(target.anchor().unwrap_or_else(|| "#".to_owned()));
        }
        if let Some(name) = target.note_name() {
            self.names.insert(name);
        }
        let file = self.page.index.resolve(self.page.path, target.path)?;
        let mut href = relative_href(self.page.path, file);
        if let Some(anchor) = target.anchor() {
            href.push_str(&anchor);
        }
        Some(href)
    }
}

/// How `[[Note#A#B]]` written without a `|` reads: `Note > A > B`, and `[[#A]]` reads `A`.
pub(super) fn heading_link_text(text: &str) -> String {
    let parts: Vec<&str> = text.split('#').map(str::trim).filter(|p| !p.is_empty()).collect();
    parts.join(" > ")
}

/// The name by which wikilinks find the note (or file) at `path`: its file name, lower-cased,
/// without `.md` (`/Notes/Trip.MD` → `trip`). A page mentions the names of its wikilinks' targets
/// ([`Rendered::wikilinks`](super::Rendered::wikilinks)); a note of that name appearing or going
/// away may change what they resolve to.
pub fn note_name(path: &str) -> String {
    let name = fold(file_name(path));
    match name.strip_suffix(".md") {
        Some(stem) if !stem.is_empty() => stem.to_owned(),
        _ => name,
    }
}

/// The relative URL from the page of the note at `source` to `target` (the page of a `.md`,
/// the file itself otherwise), each segment percent-encoded.
fn relative_href(source: &str, target: &str) -> String {
    let from: Vec<&str> = folder(source).split('/').filter(|s| !s.is_empty()).collect();
    let to: Vec<&str> = target.split('/').filter(|s| !s.is_empty()).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| fold(a) == fold(b)).count();
    let mut href = "../".repeat(from.len() - common);
    let last = to.len().saturating_sub(1);
    for (at, segment) in to.iter().enumerate().skip(common) {
        if at > common {
            href.push('/');
        }
        let page = (at == last).then(|| page_name(segment)).flatten();
        href.extend(utf8_percent_encode(page.as_deref().unwrap_or(segment), SEGMENT));
    }
    href
}

/// An image the index does not know: the target as written, from the note's folder (or from
/// the account root when it starts with `/`).
fn as_written(source: &str, target: &str) -> String {
    if target.starts_with('/') {
        return relative_href(source, target);
    }
    let segments: Vec<String> =
        target.split('/').map(|s| utf8_percent_encode(s, SEGMENT).to_string()).collect();
    segments.join("/")
}

/// `Trip.md` → `Trip.html`; `None` for a name that is not a note's.
fn page_name(name: &str) -> Option<String> {
    let stem_end = name.len().checked_sub(3).filter(|&end| end > 0)?;
    let is_note = name.as_bytes()[stem_end..].eq_ignore_ascii_case(b".md");
    is_note.then(|| format!("{}.html", &name[..stem_end]))
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The folder of a display path, without its trailing slash (`""` for the root).
fn folder(path: &str) -> &str {
    &path[..path.rfind('/').unwrap_or(0)]
}

fn fold(text: &str) -> String {
    text.to_lowercase()
}

fn has_extension(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, extension)| {
        !stem.is_empty()
            && (1..=5).contains(&extension.len())
            && extension.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

const IMAGES: [&str; 8] = ["png", "jpg", "jpeg", "gif", "webp", "svg", "avif", "bmp"];

fn is_image(path: &str) -> bool {
    has_extension_in(path, &IMAGES)
}

/// Whether the file at `path` is one wikilinks may point at besides notes: the formats Obsidian
/// opens itself (images, audio, video, PDF). The sync pass records these for the [`FileIndex`];
/// other files (archives, office documents, a photo library's raw files) are not recorded, so
/// a wikilink to one is missing. Recording every file would cost the store a field per file
/// of every linked Dropbox, most of which no note ever names.
pub fn is_attachment(path: &str) -> bool {
    const OTHERS: [&str; 12] =
        ["pdf", "mp3", "wav", "m4a", "ogg", "flac", "3gp", "webm", "mp4", "mov", "mkv", "ogv"];
    is_image(path) || has_extension_in(path, &OTHERS)
}

fn has_extension_in(path: &str, extensions: &[&str]) -> bool {
    file_name(path).rsplit_once('.').is_some_and(|(stem, extension)| {
        !stem.is_empty() && extensions.iter().any(|known| extension.eq_ignore_ascii_case(known))
    })
}

/// Whether a target is a URL (`[[https://example.com]]`): `scheme:` before any `/`.
fn has_scheme(path: &str) -> bool {
    path.split_once(':').is_some_and(|(scheme, _)| {
        scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// `200` or `200x100`: an embed's size in pixels (width, then height).
fn parse_size(text: &str) -> Option<(Option<u32>, Option<u32>)> {
    let (width, height) = match text.split_once('x') {
        Some((width, height)) => (width, Some(height)),
        None => (text, None),
    };
    let width = width.parse().ok()?;
    let height = match height {
        Some(height) => Some(height.parse().ok()?),
        None => None,
    };
    Some((Some(width), height))
}

/// Resolves `.` and `..` in a lower-cased path, from the root; `None` above the root.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            segment => parts.push(segment),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// The HTML of a wikilink markdrop writes itself.
#[derive(Template)]
enum Wikilink<'t> {
    #[template(path = "wikilink.html", block = "missing_open")]
    /// `file`: the target names an attachment (a picture, a PDF…), not a note.
    MissingOpen { target: &'t str, file: bool },
    #[template(path = "wikilink.html", block = "missing")]
    Missing { target: &'t str, file: bool, text: &'t str },
    #[template(path = "wikilink.html", block = "link")]
    Link { href: &'t str, text: &'t str },
    #[template(path = "wikilink.html", block = "image")]
    Image { href: &'t str, alt: &'t str, width: Option<u32>, height: Option<u32> },
}

fn render(wikilink: &Wikilink) -> String {
    wikilink.render().expect("rendering &str and number fields into a String cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Dialect, render_page_body};

    fn index() -> FileIndex {
        FileIndex::new([
            "/Notes/Trip.md",
            "/Notes/Plans/Trip.md",
            "/Archive/2023/trip.md",
            "/Trip ideas.md",
            "/Work/Meeting.md",
            "/Home/Meeting.md",
            "/A/Meeting.md",
            "/Notes/pic.png",
            "/Media/pic.png",
            "/Notes/v1.2 plan.md",
            "/Notes/data.csv",
            "/Notes/data.csv.md",
        ])
    }

    fn body(path: &str, index: &FileIndex, markdown: &str) -> String {
        render_page_body(markdown, Dialect::Markdrop, &Page::new(path, index))
    }

    #[test]
    fn the_same_folder_wins_then_the_fewest_folders_then_the_shortest_path_then_byte_order() {
        let index = index();
        assert_eq!(index.resolve("/Notes/Plans/x.md", "Trip"), Some("/Notes/Plans/Trip.md"));
        assert_eq!(index.resolve("/Notes/x.md", "trip"), Some("/Notes/Trip.md"));
        assert_eq!(index.resolve("/Other/x.md", "TRIP"), Some("/Notes/Trip.md"));
        assert_eq!(index.resolve("/x.md", "Meeting"), Some("/A/Meeting.md"));
        let tie = FileIndex::new(["/b/Note.md", "/a/Note.md", "/B/nOTE.md"]);
        assert_eq!(tie.resolve("/x.md", "note"), Some("/a/Note.md"));
        let listed_the_other_way = FileIndex::new(["/a/Note.md", "/b/Note.md"]);
        assert_eq!(listed_the_other_way.resolve("/x.md", "note"), Some("/a/Note.md"));
    }

    #[test]
    fn a_path_is_from_the_root_then_a_suffix_of_whole_segments_or_from_the_notes_folder() {
        let index = index();
        assert_eq!(index.resolve("/x.md", "Notes/Plans/Trip"), Some("/Notes/Plans/Trip.md"));
        assert_eq!(index.resolve("/x.md", "plans/trip"), Some("/Notes/Plans/Trip.md"));
        assert_eq!(index.resolve("/x.md", "2023/Trip"), Some("/Archive/2023/trip.md"));
        assert_eq!(index.resolve("/x.md", "/Plans/Trip"), None);
        assert_eq!(index.resolve("/x.md", "ans/Trip"), None);
        assert_eq!(index.resolve("/Notes/Plans/x.md", "../Trip"), Some("/Notes/Trip.md"));
        assert_eq!(index.resolve("/Notes/x.md", "./Plans/Trip"), Some("/Notes/Plans/Trip.md"));
        assert_eq!(index.resolve("/x.md", "../Trip"), None);
    }

    #[test]
    fn a_target_is_a_note_unless_a_file_of_exactly_that_name_exists() {
        let index = index();
        assert_eq!(index.resolve("/Notes/x.md", "pic.png"), Some("/Notes/pic.png"));
        assert_eq!(index.resolve("/x.md", "pic.png"), Some("/Media/pic.png"));
        assert_eq!(index.resolve("/x.md", "Trip.md"), Some("/Notes/Trip.md"));
        assert_eq!(index.resolve("/x.md", "v1.2 plan"), Some("/Notes/v1.2 plan.md"));
        assert_eq!(index.resolve("/x.md", "data.csv"), Some("/Notes/data.csv"));
        assert_eq!(index.resolve("/x.md", "Nope"), None);
        assert_eq!(index.resolve("/x.md", "  "), None);
        assert_eq!(FileIndex::default().resolve("/x.md", "Trip"), None);
    }

    #[test]
    fn hrefs_are_relative_to_the_page_and_percent_encoded() {
        assert_eq!(relative_href("/Notes/x.md", "/Notes/Trip.md"), "Trip.html");
        assert_eq!(relative_href("/notes/Plans/x.md", "/Notes/Trip.md"), "../Trip.html");
        assert_eq!(relative_href("/x.md", "/Trip ideas.md"), "Trip%20ideas.html");
        assert_eq!(relative_href("/a/b/x.md", "/c/d/#1?.md"), "../../c/d/%231%3F.html");
        assert_eq!(relative_href("/x.md", "/Media/pic.png"), "Media/pic.png");
        assert_eq!(relative_href("/Notes/x.md", "/Notes/Ünï.MD"), "%C3%9Cn%C3%AF.html");
        assert_eq!(relative_href("/x.md", "/50% \"off\"<>.md"), "50%25%20%22off%22%3C%3E.html");
    }

    #[test]
    fn wikilinks_become_links_to_pages_with_the_headings_slug() {
        let index = index();
        let html = body(
            "/Notes/Plans/Today.md",
            &index,
            "[[Trip]], [[../Trip|the old one]], [[Trip ideas#Sync & Queue]], [[Meeting#A#B]], \
             [[Trip#^block]] and [[#Größe 1]].\n",
        );
        assert_eq!(
            html,
            "<p><a href=\"Trip.html\">Trip</a>, <a href=\"../Trip.html\">the old one</a>, \
             <a href=\"../../Trip%20ideas.html#sync--queue\">Trip ideas &#62; Sync &#38; Queue</a>, \
             <a href=\"../../A/Meeting.html#b\">Meeting &#62; A &#62; B</a>, \
             <a href=\"Trip.html\">Trip &#62; ^block</a> and <a href=\"#gr%C3%B6%C3%9Fe-1\">Größe 1</a>.</p>\n"
        );
    }

    #[test]
    fn a_link_to_a_heading_shows_note_then_heading_in_a_heading_and_when_missing_too() {
        let html =
            body("/x.md", &index(), "## Day [[Trip#Day 1]]\n\n[[Gone#Part]] [[https://a.b/#c]]\n");
        assert_eq!(
            html,
            "<h2 id=\"day-trip--day-1\">Day <a href=\"Notes/Trip.html#day-1\">Trip &#62; Day 1</a></h2>\n\
             <p><a class=\"wikilink-missing\" title=\"No note named Gone\">Gone &#62; Part</a> \
             <a href=\"https://a.b/#c\">https://a.b/#c</a></p>\n"
        );
    }

    #[test]
    fn an_unresolved_wikilink_is_marked_text_not_a_link() {
        let html = body("/x.md", &index(), "See [[No such <note>|*this*]] and [[Gone]].\n");
        assert_eq!(
            html,
            "<p>See <a class=\"wikilink-missing\" title=\"No note named No such &#60;note&#62;\">\
             <em>this</em></a> and \
             <a class=\"wikilink-missing\" title=\"No note named Gone\">Gone</a>.</p>\n"
        );
        let alone = body("/x.md", &FileIndex::default(), "[[Trip]]\n");
        assert!(alone.contains("wikilink-missing") && !alone.contains("href"), "{alone}");
    }

    #[test]
    fn embeds_are_images_with_a_size_or_links_to_other_files() {
        let index = index();
        let html = body(
            "/Notes/x.md",
            &index,
            "![[pic.png]] ![[pic.png|A view]] ![[/Media/pic.png|200x100]] ![[new pic.jpg|300]] \
             ![[Trip ideas]] ![[Gone]]\n",
        );
        assert_eq!(
            html,
            "<p><img src=\"pic.png\" alt=\"pic.png\"> <img src=\"pic.png\" alt=\"A view\"> \
             <img src=\"../Media/pic.png\" alt=\"/Media/pic.png\" width=\"200\" height=\"100\"> \
             <img src=\"new%20pic.jpg\" alt=\"new pic.jpg\" width=\"300\"> \
             <a href=\"../Trip%20ideas.html\">Trip ideas</a> \
             <a class=\"wikilink-missing\" title=\"No note named Gone\">Gone</a></p>\n"
        );
    }

    #[test]
    fn urls_in_brackets_stay_links_and_headings_footnotes_and_tables_resolve_too() {
        let index = index();
        let html = body(
            "/Notes/x.md",
            &index,
            "# About [[Trip]]\n\n[[https://example.com/]] x[^n]\n\n\
             | a |\n|---|\n| [[Trip\\|t]] |\n\n[^n]: See [[Meeting]].\n",
        );
        assert!(html.contains("<h1 id=\"about-trip\">About <a href=\"Trip.html\">Trip</a></h1>"));
        assert!(html.contains("<a href=\"https://example.com/\">"), "{html}");
        assert!(html.contains("<td><a href=\"Trip.html\">t</a></td>"), "{html}");
        assert!(html.contains("See <a href=\"../A/Meeting.html\">Meeting</a>"), "{html}");
    }

    #[test]
    fn a_page_reports_every_note_name_its_wikilinks_mention() {
        let index = index();
        let note =
            "[[Trip]] [[plans/TRIP.md#x]] [[Gone]] ![[pic.png]] [[#Here]] [[https://x.org]]\n";
        let rendered = crate::render::render_note(note.as_bytes(), &Page::new("/x.md", &index));
        assert_eq!(rendered.wikilinks, ["gone", "pic.png", "trip"]);
        assert_eq!(Page::alone("/Notes/Read.Me.MD").stem(), "Read.Me");
        assert_eq!(Page::alone("notes").stem(), "notes");
    }
}
