//! Pages written in batches: a pass with several pages stages each in an upload session and
//! commits them with `finish_batch_v2`, judging every entry as a single upload would be.

use markdrop::emulator::FaultRule;
use markdrop::store::{Outcome, SyncState};

use crate::support::app::TestApp;
use crate::support::store::Backend;

async fn a_pass_with_many_notes_commits_their_pages_in_batches_with_no_write_refused(
    backend: Backend,
) {
    let world = TestApp::with_worker(backend, "batch-many").await;
    let account = link_numbered_notes(&world, "/Notes", 30).await;
    world.quiet().await;
    let stats = world.emulator().stats();
    assert_eq!(stats.calls("files/upload", &account), 0, "no page went up alone");
    assert_eq!(stats.calls("files/upload_session/start", &account), 30, "one session a page");
    assert_eq!(stats.batch_commits(&account), 30, "every page committed in a batch");
    let commits = stats.calls("files/upload_session/finish_batch_v2", &account);
    assert!((1..=30).contains(&commits), "{commits} commits");
    assert_eq!(stats.refusals("too_many_write_operations", &account), 0);
    assert_eq!(stats.refusals("too_many_requests", &account), 0);
    assert_eq!(stats.content_calls(&account), 60, "a download and a session a note");
}

async fn a_page_refused_in_a_batch_is_reported_and_the_others_are_written(backend: Backend) {
    let world = TestApp::with_worker(backend, "batch-refused").await;
    // A folder where b's page would go: Dropbox refuses that entry, and only that one.
    let files = [("/a.md", "a"), ("/b.md", "b"), ("/b.html/inside.txt", "x"), ("/c.md", "c")];
    let account = world.link_with_files("Ada", &files).await;
    world.html_matching(&account, "/a.html", "a", "a").await;
    world.html_matching(&account, "/c.html", "c", "c").await;
    world.quiet().await;
    let status = world.status(&account).await;
    let refused = status.recent.iter().find(|c| c.path == "/b.md").expect("b reported");
    assert!(
        matches!(&refused.outcome, Outcome::Failed { message } if message.contains("path/conflict/folder")),
        "{refused:?}"
    );
    assert!(status.retrying.is_empty(), "a folder in the way stays until it moves: {status:?}");
    assert_eq!(status.state, SyncState::Idle, "{status:?}");
    assert_eq!(world.emulator().stats().batch_commits(&account), 2);
    assert_eq!(
        world.emulator().read_file(&account, "/b.html/inside.txt").as_deref(),
        Some(&b"x"[..]),
        "the folder is left as it was"
    );
}

async fn a_batch_commit_that_fails_whole_is_tried_again_later_and_every_page_arrives(
    backend: Backend,
) {
    let world = TestApp::with_worker(backend, "batch-failed").await;
    let account = world.emulator().create_account("Ada").account_id;
    for note in ["a", "b", "c"] {
        world.emulator().put_file(&account, &format!("/{note}.md"), note).expect("put");
    }
    // The first commit fails with a server error. The client does not send it again by itself
    // (its sessions may be spent): the pages wait for a retry of their own.
    let failure = FaultRule::status(BATCH, 1, 503, "upstream trouble").for_account(&account);
    world.emulator().add_fault(failure);
    world.connect(&account).await;
    for note in ["a", "b", "c"] {
        world.html_matching(&account, &format!("/{note}.html"), note, note).await;
    }
    world.quiet().await;
    let stats = world.emulator().stats();
    let (batches, alone) = (stats.calls(BATCH, &account), stats.calls("files/upload", &account));
    assert!(batches >= 1, "the pages went through a batch commit");
    // In another batch or, when the retries come due one at a time, each alone.
    assert!(batches + alone >= 2, "the failed commit's pages were written again, later");
    let status = world.status(&account).await;
    assert!(status.retrying.is_empty(), "nothing left waiting: {status:?}");
    let failed = status.recent.iter().filter(|c| matches!(c.outcome, Outcome::Failed { .. }));
    assert!(failed.count() >= 1, "the failure was reported: {:?}", status.recent);
}

async fn a_pass_past_the_per_user_limit_waits_out_each_refusal_and_finishes_in_one_go(
    backend: Backend,
) {
    // Half the calls the client starts with, each answered late enough for the pass to have
    // them all in flight at once: its first burst is refused in part.
    let world = TestApp::builder("batch-rate-limit")
        .on(backend)
        .with_worker()
        .with_emulator(|config| {
            config.max_concurrent_calls_per_user = Some(8);
            config.latency = std::time::Duration::from_millis(50);
        })
        .start()
        .await;
    let account = link_numbered_notes(&world, "", 40).await;
    world.quiet().await;
    let stats = world.emulator().stats();
    assert!(stats.refusals("too_many_requests", &account) > 0, "the limit was met");
    assert_eq!(stats.calls("files/list_folder", &account), 1, "one pass did it all");
    assert_eq!(stats.batch_commits(&account), 40);
    let status = world.status(&account).await;
    assert_eq!(status.state, SyncState::Idle, "{status:?}");
    assert!(status.retrying.is_empty(), "{status:?}");
}

/// Links an account whose `folder` holds `count` notes, `n00.md` on, and waits until every one
/// has its page.
async fn link_numbered_notes(world: &TestApp, folder: &str, count: usize) -> String {
    let notes: Vec<(String, String)> =
        (0..count).map(|n| (format!("{folder}/n{n:02}.md"), format!("# Note {n}\n"))).collect();
    let files: Vec<(&str, &str)> =
        notes.iter().map(|(path, body)| (path.as_str(), body.as_str())).collect();
    let account = world.link_with_files("Ada", &files).await;
    for (n, (_, body)) in notes.iter().enumerate() {
        let stem = format!("n{n:02}");
        world.html_matching(&account, &format!("{folder}/{stem}.html"), body, &stem).await;
    }
    account
}

/// Where a pass with several pages commits them.
const BATCH: &str = "files/upload_session/finish_batch_v2";

crate::on_every_store!(
    a_batch_commit_that_fails_whole_is_tried_again_later_and_every_page_arrives,
    a_pass_with_many_notes_commits_their_pages_in_batches_with_no_write_refused,
    a_page_refused_in_a_batch_is_reported_and_the_others_are_written,
    a_pass_past_the_per_user_limit_waits_out_each_refusal_and_finishes_in_one_go,
);
