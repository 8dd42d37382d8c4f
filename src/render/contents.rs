//! A table of contents, when a note's front matter says `toc: true`: every heading, nested by
//! level, linking to the same ids the headings carry. It opens the document's body.

use askama::Template;

/// A heading as the table of contents lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Heading {
    /// 1 for `#`, up to 6.
    pub level: u8,
    pub id: String,
    /// The heading's plain text.
    pub text: String,
}

/// The table of contents of `headings`; `None` when there are none.
pub(super) fn contents(headings: &[Heading]) -> Option<Contents<'_>> {
    if headings.is_empty() {
        return None;
    }
    // Levels of the open entries, outermost first: a heading nests under the nearest one above
    // it with a smaller level, so skipping a level (`#` then `###`) nests one step, not two.
    let mut open: Vec<u8> = Vec::new();
    let mut entries = Vec::with_capacity(headings.len());
    let mut previous_depth = 0;
    for heading in headings {
        while open.last().is_some_and(|&level| level >= heading.level) {
            open.pop();
        }
        let depth = open.len();
        open.push(heading.level);
        entries.push(Entry {
            id: &heading.id,
            text: &heading.text,
            nests: !entries.is_empty() && depth > previous_depth,
            closes: previous_depth.saturating_sub(depth),
        });
        previous_depth = depth;
    }
    Some(Contents { entries, last_depth: previous_depth })
}

#[derive(Template)]
#[template(path = "contents.html")]
pub(super) struct Contents<'a> {
    entries: Vec<Entry<'a>>,
    /// How deep the last entry is: as many lists close after it.
    last_depth: usize,
}

struct Entry<'a> {
    id: &'a str,
    text: &'a str,
    /// The entry opens a list inside the one before it.
    nests: bool,
    /// How many lists close before the entry.
    closes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heading(level: u8, id: &str) -> Heading {
        Heading { level, id: id.to_owned(), text: id.to_uppercase() }
    }

    fn html(headings: &[Heading]) -> String {
        contents(headings).expect("headings").render().expect("renders")
    }

    #[test]
    fn headings_nest_by_level_and_a_skipped_level_nests_one_step() {
        let toc = html(&[
            heading(1, "a"),
            heading(2, "b"),
            heading(4, "c"),
            heading(2, "d"),
            heading(1, "e"),
        ]);
        let expected = "<nav class=\"toc\" aria-label=\"Contents\">\n\
            <p class=\"toc-title\">Contents</p>\n\
            <ul>\n<li><a href=\"#a\">A</a>\n\
            <ul>\n<li><a href=\"#b\">B</a>\n\
            <ul>\n<li><a href=\"#c\">C</a></li>\n</ul></li>\n\
            <li><a href=\"#d\">D</a></li>\n</ul></li>\n\
            <li><a href=\"#e\">E</a></li>\n</ul>\n</nav>";
        assert_eq!(toc, expected);
    }

    #[test]
    fn a_first_heading_deeper_than_the_next_still_closes_every_list() {
        let toc = html(&[heading(3, "a"), heading(1, "b"), heading(2, "c")]);
        assert_eq!(toc.matches("<ul>").count(), toc.matches("</ul>").count(), "{toc}");
        assert_eq!(toc.matches("<li>").count(), toc.matches("</li>").count(), "{toc}");
        assert!(toc.contains("<li><a href=\"#a\">A</a></li>\n<li><a href=\"#b\">B</a>\n<ul>"));
    }

    #[test]
    fn heading_text_is_escaped() {
        let toc = html(&[Heading { level: 2, id: "a-b".into(), text: "a <b> & \"c\"".into() }]);
        assert!(toc.contains("<a href=\"#a-b\">a &#60;b&#62; &#38; &#34;c&#34;</a>"), "{toc}");
    }

    #[test]
    fn no_headings_no_contents() {
        assert!(contents(&[]).is_none());
    }
}
