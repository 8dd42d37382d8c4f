//! Whose page is it: markdrop writes a note's `.html` only where there is none or where the page
//! is still the one markdrop wrote. A page a person made or changed is theirs: it is kept, and
//! listed on the account page with the way out. End to end, on both store backends.

use std::time::Duration;

use markdrop::dropbox::AccountId;
use markdrop::emulator::FaultRule;
use markdrop::store::{Outcome, SyncState};

use crate::support::app::{TestApp, worker_settings};
use crate::support::store::Backend;
use crate::support::wait::eventually;

fn render(markdown: &str, stem: &str) -> Vec<u8> {
    markdrop::render::render(markdown.as_bytes(), &markdrop::render::Page::alone(stem)).into_bytes()
}

/// Waits until the account page lists `html` as the person's.
async fn kept(world: &TestApp, account: &str, html: &str) {
    eventually(&format!("{html} to be listed as the person's"), || async {
        world.status(account).await.kept.values().any(|page| page.html == html)
    })
    .await;
}

async fn a_page_the_person_wrote_before_linking_is_kept_until_they_rename_it(backend: Backend) {
    let world = TestApp::with_worker(backend, "own-before-link").await;
    let mine = "<!DOCTYPE html><p>My Q3 report, laid out by hand.</p>";
    let account = world.emulator().create_account("Ada").account_id;
    world.emulator().put_file(&account, "/q3.md", "# Q3\n\nNumbers.").expect("put");
    world.emulator().put_file(&account, "/q3.html", mine).expect("put");
    world.emulator().put_file(&account, "/plain.md", "plain").expect("put");
    world.connect(&account).await;
    world.html_matching(&account, "/plain.html", "plain", "plain").await;
    kept(&world, &account, "/q3.html").await;
    world.quiet().await;
    assert_eq!(world.emulator().read_file(&account, "/q3.html").as_deref(), Some(mine.as_bytes()));
    assert_eq!(world.uploads(&account), 1, "only plain.html was written");
    let recent = world.status(&account).await.recent;
    assert!(
        recent
            .iter()
            .any(|c| c.path == "/q3.md" && c.outcome == Outcome::Kept { html: "/q3.html".into() }),
        "{recent:?}"
    );

    // The note changes: the page is still theirs.
    world.emulator().put_file(&account, "/q3.md", "# Q3\n\nMore numbers.").expect("edit");
    world.quiet().await;
    assert_eq!(world.emulator().read_file(&account, "/q3.html").as_deref(), Some(mine.as_bytes()));
    assert_eq!(world.uploads(&account), 1);

    // Renamed out of the way: markdrop writes the page, and the account page lets go of it.
    world.emulator().move_path(&account, "/q3.html", "/q3 (mine).html").expect("rename");
    world.html_matching(&account, "/q3.html", "# Q3\n\nMore numbers.", "q3").await;
    world.quiet().await;
    assert!(world.status(&account).await.kept.is_empty());
    assert_eq!(
        world.emulator().read_file(&account, "/q3 (mine).html").as_deref(),
        Some(mine.as_bytes())
    );
}

async fn a_page_edited_by_hand_is_never_replaced_when_its_note_changes(backend: Backend) {
    let world = TestApp::with_worker(backend, "own-edited").await;
    let account = world.link_with_files("Ada", &[("/a.md", "# A\n")]).await;
    world.html_matching(&account, "/a.html", "# A\n", "a").await;
    world.quiet().await;
    let mine = "<p>fixed a typo, added a paragraph</p>";
    world.emulator().put_file(&account, "/a.html", mine).expect("hand edit");
    kept(&world, &account, "/a.html").await;
    world.quiet().await;
    let uploads = world.uploads(&account);

    world.emulator().put_file(&account, "/a.md", "# A\n\nversion 2").expect("edit the note");
    world.quiet().await;
    assert_eq!(world.emulator().read_file(&account, "/a.html").as_deref(), Some(mine.as_bytes()));
    assert_eq!(world.uploads(&account), uploads, "nothing written over the edit");
    let recent = world.status(&account).await.recent;
    assert!(
        matches!(&recent[0].outcome, Outcome::Kept { html } if html == "/a.html"),
        "{recent:?}"
    );

    // Deleted: markdrop writes the page again, from the latest note.
    world.emulator().delete_path(&account, "/a.html").expect("delete the page");
    world.html_matching(&account, "/a.html", "# A\n\nversion 2", "a").await;
    world.quiet().await;
    assert!(world.status(&account).await.kept.is_empty());
}

async fn linking_again_recognizes_markdrops_pages_and_keeps_the_edited_ones(backend: Backend) {
    let world = TestApp::with_worker(backend, "own-relink").await;
    let files = [("/a.md", "a"), ("/b.md", "b"), ("/c.md", "c")];
    let account = world.link_with_files("Ada", &files).await;
    for (path, content) in files {
        let stem = &path[1..2];
        world.html_matching(&account, &format!("/{stem}.html"), content, stem).await;
    }
    world.quiet().await;
    // Disconnected: markdrop forgets every record and the cursor.
    let id = AccountId::parse(&account).expect("id");
    world.store.forget_account(&id).await.expect("forget the account");
    // Meanwhile b's page is edited by hand and c's note changes.
    world.emulator().put_file(&account, "/b.html", "<p>mine</p>").expect("hand edit");
    world.emulator().put_file(&account, "/c.md", "c, version 2").expect("edit");
    world.quiet().await;
    let uploads = world.uploads(&account);

    world.connect(&account).await;
    world.html_matching(&account, "/c.html", "c, version 2", "c").await;
    kept(&world, &account, "/b.html").await;
    world.quiet().await;
    assert_eq!(world.uploads(&account), uploads + 1, "a.html was recognized as current");
    assert_eq!(world.emulator().read_file(&account, "/a.html"), Some(render("a", "a")));
    assert_eq!(
        world.emulator().read_file(&account, "/b.html").as_deref(),
        Some(&b"<p>mine</p>"[..])
    );
}

/// Waits for `/a.md` ("version 1") to be converted, changes it to "version 2" and waits for that
/// page; returns markdrop's page of version 1, an older page of its own to land late.
async fn a_page_and_the_one_before(world: &TestApp, account: &str) -> Vec<u8> {
    world.html_matching(account, "/a.html", "version 1", "a").await;
    world.quiet().await;
    let version_1 = world.emulator().read_file(account, "/a.html").expect("page");
    world.emulator().put_file(account, "/a.md", "version 2").expect("edit");
    world.html_matching(account, "/a.html", "version 2", "a").await;
    world.quiet().await;
    version_1
}

async fn an_older_page_of_markdrops_that_lands_late_is_rewritten_with_the_latest(backend: Backend) {
    let world = TestApp::with_worker(backend, "own-late").await;
    let account = world.link_with_files("Ada", &[("/a.md", "version 1")]).await;
    let version_1 = a_page_and_the_one_before(&world, &account).await;
    // An upload of version 1 that was held on the wire lands now, over version 2.
    world.emulator().put_file(&account, "/a.html", version_1).expect("the late upload");
    world.html_matching(&account, "/a.html", "version 2", "a").await;
    world.quiet().await;
    let status = world.status(&account).await;
    assert!(status.kept.is_empty(), "a sealed page is markdrop's: {:?}", status.kept);
    assert_eq!(status.state, SyncState::Idle);
}

async fn a_deleted_note_takes_an_older_page_of_markdrops_along_but_not_an_edited_one(
    backend: Backend,
) {
    let world = TestApp::with_worker(backend, "own-late-delete").await;
    let files = [("/a.md", "version 1"), ("/b.md", "b")];
    let account = world.link_with_files("Ada", &files).await;
    world.html_matching(&account, "/b.html", "b", "b").await;
    let version_1 = a_page_and_the_one_before(&world, &account).await;
    // Both deleted in one go, a's page having become an older one of markdrop's, b's edited.
    world.emulator().put_file(&account, "/a.html", version_1).expect("the late upload");
    world.emulator().put_file(&account, "/b.html", "<p>mine</p>").expect("hand edit");
    world.emulator().delete_path(&account, "/a.md").expect("delete");
    world.emulator().delete_path(&account, "/b.md").expect("delete");
    eventually("a.html to go with its note", || {
        std::future::ready(world.emulator().read_file(&account, "/a.html").is_none())
    })
    .await;
    world.quiet().await;
    assert_eq!(
        world.emulator().read_file(&account, "/b.html").as_deref(),
        Some(&b"<p>mine</p>"[..])
    );
    assert!(
        world.status(&account).await.kept.is_empty(),
        "b's note is gone; the page is simply theirs"
    );
}

async fn a_page_whose_owner_could_not_be_told_is_looked_at_again_not_overwritten(backend: Backend) {
    let world = TestApp::with_worker(backend, "own-retry-doubt").await;
    let account = world.link_with_files("Ada", &[("/a.md", "# A\n")]).await;
    world.html_matching(&account, "/a.html", "# A\n", "a").await;
    world.quiet().await;
    // The person edits the page and the note; reading the page (the second download of the
    // pass, after the note's) fails past the client's retries, so the pass cannot tell whose it
    // is, and the note waits for a retry.
    world.emulator().add_fault(
        FaultRule::delay("files/download", 1, Duration::from_millis(1)).for_account(&account),
    );
    world
        .emulator()
        .add_fault(FaultRule::status("files/download", 3, 503, "busy").for_account(&account));
    let mine = "<p>mine</p>";
    world.emulator().put_file(&account, "/a.html", mine).expect("hand edit");
    world.emulator().put_file(&account, "/a.md", "# A\n\nversion 2").expect("edit the note");
    kept(&world, &account, "/a.html").await;
    world.quiet().await;
    assert_eq!(world.emulator().read_file(&account, "/a.html").as_deref(), Some(mine.as_bytes()));
    assert!(world.status(&account).await.retrying.is_empty());
}

async fn a_page_deleted_while_the_cursor_was_reset_is_written_again(backend: Backend) {
    let mut world = TestApp::with_worker(backend, "own-reset-page").await;
    let account = world.link_with_files("Ada", &[("/a.md", "a"), ("/b.md", "b")]).await;
    world.html_matching(&account, "/a.html", "a", "a").await;
    world.html_matching(&account, "/b.html", "b", "b").await;
    world.quiet().await;
    // No worker runs while a's page goes and the cursor dies: the deletion is never listed.
    world.workers.pop().expect("the worker").stop().await;
    world.emulator().delete_path(&account, "/a.html").expect("delete the page");
    world.emulator().reset_cursors(&account);
    world.spawn_worker(worker_settings());
    world.html_matching(&account, "/a.html", "a", "a").await;
    world.quiet().await;
}

crate::on_every_store!(
    a_page_whose_owner_could_not_be_told_is_looked_at_again_not_overwritten,
    a_page_deleted_while_the_cursor_was_reset_is_written_again,
    a_page_the_person_wrote_before_linking_is_kept_until_they_rename_it,
    a_page_edited_by_hand_is_never_replaced_when_its_note_changes,
    linking_again_recognizes_markdrops_pages_and_keeps_the_edited_ones,
    an_older_page_of_markdrops_that_lands_late_is_rewritten_with_the_latest,
    a_deleted_note_takes_an_older_page_of_markdrops_along_but_not_an_edited_one,
);
