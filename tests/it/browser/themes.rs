//! The looks a `markdrop.toml` can choose, as Chromium shows them: `serif` in light and dark
//! mode (a screenshot of each for a human to look at), and `plain` with no styles at all. The
//! pages are rendered with the library, as the worker renders them with a folder's settings.

use markdrop::render::{Look, Page, render_with};
use markdrop::settings::{NoteSettings, Theme};

use super::Browser;
use crate::support::scratch_dir;

const NOTE: &str = "# Field notes\n\nA paragraph with a [link](b.md).\n\n\
    > [!TIP]\n> Serif reads like a book.\n\n```rust\nfn main() {\n    println!(\"hi\");\n}\n```\n";

/// The note rendered with `theme`, saved as a page; its `file://` URL.
fn page_in(theme: Theme, name: &str) -> String {
    let settings = NoteSettings { theme, ..NoteSettings::DEFAULT };
    let look = Look { settings: &settings, stylesheet: None };
    let document = render_with(NOTE.as_bytes(), &Page::alone("/notes.md"), &look).document;
    let path = scratch_dir(name).join("notes.html");
    std::fs::write(&path, document).expect("save the page");
    format!("file://{}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serif_theme_reads_in_light_and_dark_and_plain_has_no_styles() {
    let mut browser = Browser::launch().await;
    browser.open(&page_in(Theme::Serif, "browser-theme-serif")).await;
    let background = "return getComputedStyle(document.body).backgroundColor";
    let font = "return getComputedStyle(document.body).fontFamily";
    let keyword = "return getComputedStyle(document.querySelector('pre code a-k')).color";
    browser.screenshot("theme-serif-light").await;
    assert_eq!(browser.script(background).await, "rgb(251, 248, 241)", "warm paper");
    let family = browser.script(font).await;
    assert!(family.as_str().is_some_and(|family| family.ends_with("serif")), "{family}");
    let light_keyword = browser.script(keyword).await;

    browser.prefer_dark(true).await;
    browser.screenshot("theme-serif-dark").await;
    assert_eq!(browser.script(background).await, "rgb(28, 25, 21)", "the dark palette");
    assert_ne!(browser.script(keyword).await, light_keyword, "code follows the palette");
    browser.prefer_dark(false).await;

    browser.open(&page_in(Theme::Plain, "browser-theme-plain")).await;
    browser.screenshot("theme-plain").await;
    assert_eq!(browser.script("return document.styleSheets.length").await, 0);
    browser.quit().await;
}
