//! The person's own settings, `markdrop.toml` files in their Dropbox, through the emulator:
//! what is excluded, how a nearer file overrides a farther one, a change converting again just
//! the notes it governs, a stylesheet of theirs, a file with a mistake changing nothing, and a
//! note's front matter overriding its folder.

use markdrop::render::{SERIF_STYLESHEET, STYLESHEET};
use markdrop::store::{Outcome, SettingsShown};

use crate::support::app::TestApp;
use crate::support::store::Backend;
use crate::support::wait::eventually;

/// Waits until the page at `path` is one `wanted` accepts, and returns it.
async fn page_where(
    world: &TestApp,
    account: &str,
    path: &str,
    what: &str,
    wanted: impl Fn(&str) -> bool,
) -> String {
    let emulator = world.emulator();
    let page = eventually(what, || {
        let page = emulator.read_file(account, path);
        std::future::ready(page.filter(|page| wanted(&String::from_utf8_lossy(page))))
    })
    .await;
    String::from_utf8(page).expect("UTF-8 HTML")
}

fn is_serif(page: &str) -> bool {
    page.contains(SERIF_STYLESHEET)
}

fn is_plain(page: &str) -> bool {
    !page.contains("<style")
}

/// Waits until the account page's list of settings files is `wanted`.
async fn settings_shown(world: &TestApp, account: &str, wanted: impl Fn(&[SettingsShown]) -> bool) {
    eventually("the account page's settings files", || async {
        wanted(&world.status(account).await.settings)
    })
    .await;
}

async fn excluded_notes_are_not_converted_their_pages_stay_and_the_account_page_says_why(
    backend: Backend,
) {
    let world = TestApp::with_worker(backend, "settings-exclude").await;
    let files = [("/a.md", "# A\n"), ("/Drafts/old.md", "# Old draft\n")];
    let account = world.link_with_files("Ada", &files).await;
    world.html(&account, "/a.html").await;
    let old_page = world.html(&account, "/Drafts/old.html").await;
    world.quiet().await;

    world.emulator().put_file(&account, "/markdrop.toml", "exclude = [\"drafts\"]\n").expect("put");
    world.emulator().put_file(&account, "/Drafts/new.md", "# New draft\n").expect("put");
    world.emulator().put_file(&account, "/Drafts/old.md", "# Old draft, edited\n").expect("put");
    world.emulator().put_file(&account, "/b.md", "# B\n").expect("put");
    world.html(&account, "/b.html").await;
    world.quiet().await;

    let status = world.status(&account).await;
    for note in ["/Drafts/new.md", "/Drafts/old.md"] {
        let reported = status.recent.iter().find(|c| c.path == note).expect("reported");
        assert!(
            matches!(&reported.outcome, Outcome::Skipped { reason } if reason.contains("/markdrop.toml excludes it (\"drafts\")")),
            "{reported:?}"
        );
    }
    assert_eq!(world.emulator().read_file(&account, "/Drafts/new.html"), None);
    assert_eq!(
        world.emulator().read_file(&account, "/Drafts/old.html").as_deref(),
        Some(old_page.as_bytes()),
        "the page already there is left as it was"
    );
    assert_eq!(
        status.settings,
        [SettingsShown { path: "/markdrop.toml".into(), in_force: true, problem: None }]
    );

    // The settings change again, still excluding the drafts: that is no news about them.
    let serif = "exclude = [\"drafts\"]\ntheme = \"serif\"\n";
    world.emulator().put_file(&account, "/markdrop.toml", serif).expect("put");
    page_where(&world, &account, "/a.html", "a serif page", is_serif).await;
    world.quiet().await;
    let status = world.status(&account).await;
    let reports = status.recent.iter().filter(|c| c.path == "/Drafts/new.md").count();
    assert_eq!(reports, 1, "reported once: {:?}", status.recent);

    // Lifted, the exclusion gives back every note it held, those never converted included.
    world.emulator().put_file(&account, "/markdrop.toml", "theme = \"plain\"\n").expect("put");
    page_where(&world, &account, "/Drafts/new.html", "the new draft's page", is_plain).await;
    page_where(&world, &account, "/Drafts/old.html", "the old draft's page", |page| {
        is_plain(page) && page.contains("Old draft, edited")
    })
    .await;
}

async fn a_wikilink_to_an_excluded_note_is_not_a_link_until_the_exclusion_is_lifted(
    backend: Backend,
) {
    let world = TestApp::with_worker(backend, "settings-exclude-links").await;
    let files = [
        ("/Work/markdrop.toml", "exclude = [\"drafts\"]\n"),
        ("/Work/Drafts/Idea.md", "# Idea\n"),
        ("/Work/Plan.md", "# Plan\n"),
        ("/a.md", "See [[Idea]] and [[Plan]].\n"),
    ];
    let account = world.link_with_files("Ada", &files).await;
    let page = world.html(&account, "/a.html").await;
    assert!(page.contains("<a href=\"Work/Plan.html\">Plan</a>"), "{page}");
    assert!(page.contains("<a class=\"wikilink-missing\" title=\"No note named Idea\">"), "{page}");
    world.quiet().await;

    // The exclusion goes: the note gets its page, and the note linking it from elsewhere, under
    // settings that did not change, links to it.
    world.emulator().put_file(&account, "/Work/markdrop.toml", "toc = false\n").expect("put");
    world.html(&account, "/Work/Drafts/Idea.html").await;
    page_where(&world, &account, "/a.html", "a link to the idea", |page| {
        page.contains("<a href=\"Work/Drafts/Idea.html\">Idea</a>")
    })
    .await;

    // And back: excluded again, the link goes with it (the page already there stays).
    world
        .emulator()
        .put_file(&account, "/Work/markdrop.toml", "exclude = [\"drafts\"]\n")
        .expect("put");
    page_where(&world, &account, "/a.html", "the idea missing again", |page| {
        page.contains("title=\"No note named Idea\"")
    })
    .await;
    world.quiet().await;
    assert!(world.emulator().read_file(&account, "/Work/Drafts/Idea.html").is_some());
}

async fn a_nearer_settings_file_overrides_a_farther_one_key_by_key(backend: Backend) {
    let world = TestApp::with_worker(backend, "settings-nested").await;
    let files = [
        ("/markdrop.toml", "theme = \"serif\"\nlang = \"de\"\n"),
        ("/Work/markdrop.toml", "theme = \"plain\"\n"),
        ("/a.md", "# A\n"),
        ("/Work/b.md", "# B\n"),
    ];
    let account = world.link_with_files("Ada", &files).await;
    let top = world.html(&account, "/a.html").await;
    let work = world.html(&account, "/Work/b.html").await;
    assert!(is_serif(&top) && top.contains("<html lang=\"de\">"), "{top}");
    assert!(is_plain(&work) && work.contains("<html lang=\"de\">"), "{work}");
}

async fn a_theme_switch_converts_again_just_the_notes_it_governs(backend: Backend) {
    let world = TestApp::with_worker(backend, "settings-switch").await;
    let files = [
        ("/Work/markdrop.toml", "theme = \"serif\"\n"),
        ("/a.md", "# A\n"),
        ("/Work/b.md", "# B\n"),
        ("/Work/Deep/c.md", "# C\n"),
    ];
    let account = world.link_with_files("Ada", &files).await;
    let outside = world.html(&account, "/a.html").await;
    assert!(outside.contains(STYLESHEET) && !is_serif(&outside));
    page_where(&world, &account, "/Work/Deep/c.html", "a serif page", is_serif).await;
    world.quiet().await;
    let before = world.uploads(&account);
    let downloads = world.emulator().stats().calls("files/download", &account);

    world.emulator().put_file(&account, "/Work/markdrop.toml", "theme = \"plain\"\n").expect("put");
    page_where(&world, &account, "/Work/b.html", "a plain page", is_plain).await;
    page_where(&world, &account, "/Work/Deep/c.html", "a plain page", is_plain).await;
    world.quiet().await;
    assert_eq!(world.uploads(&account), before + 2, "the two notes under /Work, no other");
    let stats = world.emulator().stats();
    assert_eq!(
        stats.calls("files/download", &account),
        downloads + 3,
        "the settings file and the two notes it governs"
    );
    assert_eq!(
        world.emulator().read_file(&account, "/a.html").as_deref(),
        Some(outside.as_bytes())
    );
}

async fn a_stylesheet_from_the_dropbox_is_inlined_and_an_edit_to_it_shows(backend: Backend) {
    let world = TestApp::with_worker(backend, "settings-css").await;
    let files = [
        ("/markdrop.toml", "css = \"look/site.css\"\n"),
        ("/look/site.css", "h1 { color: rebeccapurple }\n"),
        ("/a.md", "# A\n"),
    ];
    let account = world.link_with_files("Ada", &files).await;
    let page = world.html(&account, "/a.html").await;
    let theme = page.find(STYLESHEET).expect("the theme");
    let own = page.find("h1 { color: rebeccapurple }").expect("the person's stylesheet");
    assert!(theme < own, "the person's stylesheet comes after the theme");
    world.quiet().await;

    world.emulator().put_file(&account, "/look/site.css", "h1 { color: teal }\n").expect("put");
    let page = page_where(&world, &account, "/a.html", "the edited stylesheet", |page| {
        page.contains("h1 { color: teal }")
    })
    .await;
    assert!(!page.contains("rebeccapurple"));
}

async fn a_settings_file_with_a_mistake_changes_nothing_and_is_shown_with_line_and_column(
    backend: Backend,
) {
    let world = TestApp::with_worker(backend, "settings-invalid").await;
    let files = [("/markdrop.toml", "theme = \"serif\"\n"), ("/a.md", "# A\n")];
    let account = world.link_with_files("Ada", &files).await;
    let page = page_where(&world, &account, "/a.html", "a serif page", is_serif).await;
    world.quiet().await;
    let before = world.uploads(&account);

    let mistake = "theme = \"plain\"\nthem = 1\n";
    world.emulator().put_file(&account, "/markdrop.toml", mistake).expect("put");
    settings_shown(&world, &account, |shown| {
        shown.iter().any(|file| {
            file.in_force
                && file.problem.as_deref().is_some_and(|problem| {
                    problem.starts_with("line 2, column 1") && problem.contains("\"them\"")
                })
        })
    })
    .await;
    world.quiet().await;
    assert_eq!(world.uploads(&account), before, "the last good settings stay in force");
    assert_eq!(world.emulator().read_file(&account, "/a.html").as_deref(), Some(page.as_bytes()));

    let missing = "theme = \"plain\"\ncss = \"nope.css\"\n";
    world.emulator().put_file(&account, "/markdrop.toml", missing).expect("put");
    settings_shown(&world, &account, |shown| {
        shown.iter().any(|file| file.problem.as_deref().is_some_and(|p| p.contains("/nope.css")))
    })
    .await;
    world.quiet().await;
    assert_eq!(world.uploads(&account), before, "a missing stylesheet changes nothing either");

    // A stylesheet that is a folder: reported, and the rest of the account goes on.
    world.emulator().put_file(&account, "/dir.css/inside.txt", "x").expect("put");
    let folder = "theme = \"plain\"\ncss = \"dir.css\"\n";
    world.emulator().put_file(&account, "/markdrop.toml", folder).expect("put");
    settings_shown(&world, &account, |shown| {
        shown.iter().any(|file| file.problem.as_deref().is_some_and(|p| p.contains("/dir.css")))
    })
    .await;
    world.emulator().put_file(&account, "/b.md", "# B\n").expect("put");
    page_where(&world, &account, "/b.html", "a serif page", is_serif).await;
    world.quiet().await;
    let before = world.uploads(&account);

    world.emulator().put_file(&account, "/markdrop.toml", missing).expect("put");
    world.emulator().put_file(&account, "/nope.css", "p { margin: 0 }\n").expect("put");
    let fixed =
        page_where(&world, &account, "/a.html", "the plain page with its stylesheet", |page| {
            !page.contains(STYLESHEET) && page.contains("p { margin: 0 }")
        })
        .await;
    assert!(!is_serif(&fixed));
    settings_shown(&world, &account, |shown| shown.iter().all(|file| file.problem.is_none())).await;
    world.quiet().await;
    assert_eq!(world.uploads(&account), before + 2, "both notes take the settings, once");
}

async fn a_notes_front_matter_overrides_its_folder_for_itself(backend: Backend) {
    let world = TestApp::with_worker(backend, "settings-front-matter").await;
    let files = [
        ("/markdrop.toml", "theme = \"serif\"\n"),
        ("/a.md", "---\ntheme: plain\n---\n# A\n"),
        ("/b.md", "# B\n"),
        ("/c.md", "---\nmarkdrop: false\n---\n# C\n"),
    ];
    let account = world.link_with_files("Ada", &files).await;
    page_where(&world, &account, "/a.html", "a plain page", is_plain).await;
    page_where(&world, &account, "/b.html", "a serif page", is_serif).await;
    world.quiet().await;
    assert_eq!(world.emulator().read_file(&account, "/c.html"), None);
    let status = world.status(&account).await;
    let skipped = status.recent.iter().find(|c| c.path == "/c.md").expect("reported");
    assert!(
        matches!(&skipped.outcome, Outcome::Skipped { reason } if reason.contains("markdrop: false")),
        "{skipped:?}"
    );
}

crate::on_every_store!(
    excluded_notes_are_not_converted_their_pages_stay_and_the_account_page_says_why,
    a_wikilink_to_an_excluded_note_is_not_a_link_until_the_exclusion_is_lifted,
    a_nearer_settings_file_overrides_a_farther_one_key_by_key,
    a_theme_switch_converts_again_just_the_notes_it_governs,
    a_stylesheet_from_the_dropbox_is_inlined_and_an_edit_to_it_shows,
    a_settings_file_with_a_mistake_changes_nothing_and_is_shown_with_line_and_column,
    a_notes_front_matter_overrides_its_folder_for_itself,
);
