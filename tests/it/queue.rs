//! The worker's side of the store contract, on both backends (a real Redis, and the embedded
//! store in a scratch folder): coalescing, leases and their fence, completion, backoff, the
//! start-up sweep, file records, attachments and settings files' records.

use std::collections::BTreeMap;
use std::time::Duration;

use markdrop::clock::ManualClock;
use markdrop::dropbox::{AccountId, AccountTokens};
use markdrop::store::{
    AccountStatus, Claim, ClaimOutcome, Completion, FileRecord, LeaseError, RecordChanges,
    Reschedule, SettingsRecord, Store, StylesheetRecord,
};

use secrecy::ExposeSecret;

use crate::support::store::Backend;
use crate::support::wait::eventually;
use crate::support::{ALICE, BOB};
const LEASE: Duration = Duration::from_secs(30);

fn account(id: &str) -> AccountId {
    AccountId::parse(id).expect("an account id")
}

fn tokens(tag: &str) -> AccountTokens {
    AccountTokens {
        access_token: format!("sl.access-{tag}").into(),
        refresh_token: format!("refresh-{tag}").into(),
        expires_at: None,
        path_root: None,
    }
}

/// A fresh store on `backend` with the given accounts linked (not queued).
async fn store_with(backend: Backend, test: &str, linked: &[&str]) -> Store {
    let store = backend.store(test);
    for id in linked {
        store.save_tokens(&account(id), &tokens(id)).await.expect("link");
    }
    store
}

async fn claim(store: &Store, ttl: Duration) -> Option<Claim> {
    match store.claim(ttl).await.expect("claim") {
        ClaimOutcome::Claimed(claim) => Some(*claim),
        ClaimOutcome::NothingDue { .. } => None,
    }
}

/// Claims until something is claimed, failing the test after
/// [`DEADLINE`](crate::support::wait::DEADLINE).
async fn claim_when_due(store: &Store, ttl: Duration) -> Claim {
    eventually("an account to become due", || claim(store, ttl)).await
}

async fn any_number_of_notifications_make_one_pending_pass(backend: Backend) {
    let store = store_with(backend, "queue-coalesce", &[ALICE]).await;
    let alice = [account(ALICE)];
    let notifications = (0..50).map(|_| store.enqueue(&alice));
    for done in futures_util::future::join_all(notifications).await {
        done.expect("enqueue");
    }
    assert_eq!(store.queued().await.expect("queued"), vec![account(ALICE)]);
    let claim = claim(&store, LEASE).await.expect("claimed");
    assert_eq!(claim.lease.account(), &account(ALICE));
    assert_eq!(claim.generation, 50);
    assert!(claim.cursor.is_none());
    let tokens = claim.tokens.expect("the record opens");
    assert_eq!(tokens.refresh_token.expose_secret(), &format!("refresh-{ALICE}"));
    assert!(matches!(store.claim(LEASE).await.expect("claim"), ClaimOutcome::NothingDue { .. }));
}

async fn a_held_account_waits_for_its_lease_to_expire_and_the_old_holder_is_fenced_off(
    backend: Backend,
) {
    let store = store_with(backend, "queue-lease", &[ALICE]).await;
    store.enqueue(&[account(ALICE)]).await.expect("enqueue");
    let first = claim(&store, Duration::from_secs(1)).await.expect("claimed");
    store
        .commit(&first.lease, &RecordChanges::default(), Some("cursor-1"), None)
        .await
        .expect("the holder moves the cursor");
    assert!(claim(&store, LEASE).await.is_none(), "held");
    let second = claim_when_due(&store, LEASE).await;
    assert_eq!(second.cursor.as_deref(), Some("cursor-1"), "resumes from the saved cursor");
    let fenced = store.commit(&first.lease, &RecordChanges::default(), Some("stale"), None).await;
    assert!(matches!(fenced, Err(LeaseError::Lost)), "{fenced:?}");
    assert!(!store.renew(&first.lease, LEASE).await.expect("renew"));
    let completed =
        store.complete(&first.lease, first.generation, &AccountStatus::default(), None).await;
    assert!(matches!(completed, Err(LeaseError::Lost)));
    assert!(store.renew(&second.lease, LEASE).await.expect("renew"));
    assert_eq!(
        store
            .complete(&second.lease, second.generation, &AccountStatus::default(), None)
            .await
            .expect("complete"),
        Completion::Done
    );
    assert!(store.queued().await.expect("queued").is_empty());
    assert_eq!(store.leases_held().await.expect("leases"), 0);
}

async fn a_notification_during_a_pass_makes_one_more_pass(backend: Backend) {
    let store = store_with(backend, "queue-again", &[ALICE]).await;
    store.enqueue(&[account(ALICE)]).await.expect("enqueue");
    let first = claim(&store, LEASE).await.expect("claimed");
    store.enqueue(&[account(ALICE)]).await.expect("a change during the pass");
    store.enqueue(&[account(ALICE)]).await.expect("and another");
    let status = AccountStatus { last_pass_at: Some(7), ..AccountStatus::default() };
    assert_eq!(
        store.complete(&first.lease, first.generation, &status, None).await.expect("complete"),
        Completion::Again
    );
    let second = claim(&store, LEASE).await.expect("due again at once");
    assert_eq!(second.status, status, "the status was recorded");
    assert_eq!(
        store.complete(&second.lease, second.generation, &status, None).await.expect("complete"),
        Completion::Done
    );
    assert!(claim(&store, LEASE).await.is_none(), "one more pass, not two");
}

async fn a_rescheduled_account_is_not_due_early_even_when_notified_and_counts_its_failures(
    backend: Backend,
) {
    let time = ManualClock::new();
    let store = store_with(backend, "queue-backoff", &[ALICE]).await.with_clock(time.clock());
    store.enqueue(&[account(ALICE)]).await.expect("enqueue");
    let first = claim(&store, LEASE).await.expect("claimed");
    store
        .reschedule(&first.lease, Duration::from_secs(1), Reschedule::Failed, None)
        .await
        .expect("back off");
    assert_eq!(store.leases_held().await.expect("leases"), 0);
    store.enqueue(&[account(ALICE)]).await.expect("a notification during the backoff");
    assert!(claim(&store, LEASE).await.is_none(), "not due before the backoff ends");
    time.advance(Duration::from_millis(999));
    assert!(claim(&store, LEASE).await.is_none(), "not even a millisecond before");
    time.advance(Duration::from_millis(1));
    let second = claim(&store, LEASE).await.expect("due once the backoff ends");
    assert_eq!(second.failures, 1);
    store
        .reschedule(&second.lease, Duration::ZERO, Reschedule::HandedBack, None)
        .await
        .expect("hand back");
    let third = claim(&store, LEASE).await.expect("due at once");
    assert_eq!(third.failures, 1, "a hand-back is no failure");
    store
        .complete(&third.lease, third.generation, &AccountStatus::default(), None)
        .await
        .expect("done");
    store.enqueue(&[account(ALICE)]).await.expect("enqueue");
    assert_eq!(claim(&store, LEASE).await.expect("claimed").failures, 0, "a success clears them");
}

async fn notes_waiting_for_a_retry_bring_the_account_back_when_due_or_sooner_when_notified(
    backend: Backend,
) {
    let time = ManualClock::new();
    let store = store_with(backend, "queue-retries", &[ALICE]).await.with_clock(time.clock());
    let in_ms = |ms: u64| time.clock().now_millis() + ms;
    store.enqueue(&[account(ALICE)]).await.expect("enqueue");
    let first = claim(&store, LEASE).await.expect("claimed");
    let status = AccountStatus::default();
    store.complete(&first.lease, first.generation, &status, Some(in_ms(1000))).await.expect("done");
    assert!(store.queued().await.expect("queued").is_empty(), "no pass waiting, only a retry");
    match store.claim(LEASE).await.expect("claim") {
        ClaimOutcome::NothingDue { next_due_in_ms: Some(due) } => assert_eq!(due, 1000),
        other => panic!("the retry's time is the next wake-up: {other:?}"),
    }
    time.advance(Duration::from_millis(999));
    assert!(claim(&store, LEASE).await.is_none(), "not before the retry is due");
    time.advance(Duration::from_millis(1));
    let second = claim(&store, LEASE).await.expect("due when the retry is");
    // A retry a minute away; a notification brings the account back at once.
    store
        .complete(&second.lease, second.generation, &status, Some(in_ms(60_000)))
        .await
        .expect("done");
    store.enqueue(&[account(ALICE)]).await.expect("a notification");
    let third = claim(&store, LEASE).await.expect("due at once");
    // Nothing left to retry: the account is gone from the queue and from the retries.
    store.complete(&third.lease, third.generation, &status, None).await.expect("done");
    match store.claim(LEASE).await.expect("claim") {
        ClaimOutcome::NothingDue { next_due_in_ms: None } => {}
        other => panic!("nothing waits any more: {other:?}"),
    }
}

async fn an_account_that_is_not_linked_leaves_the_queue_when_claimed(backend: Backend) {
    let store = store_with(backend, "queue-unlinked", &[BOB]).await;
    store.enqueue(&[account(ALICE)]).await.expect("a webhook for an account never linked");
    assert!(claim(&store, LEASE).await.is_none(), "nothing to claim");
    assert!(store.queued().await.expect("queued").is_empty(), "Alice dropped");
    store.enqueue(&[account(BOB)]).await.expect("enqueue");
    assert_eq!(claim(&store, LEASE).await.expect("Bob is claimed").lease.account(), &account(BOB));
}

async fn the_sweep_queues_every_linked_account_once_without_cutting_a_backoff_short(
    backend: Backend,
) {
    let store = store_with(backend, "queue-sweep", &[ALICE, BOB]).await;
    store.enqueue(&[account(ALICE)]).await.expect("enqueue");
    let alice = claim(&store, LEASE).await.expect("claimed");
    store
        .reschedule(&alice.lease, Duration::from_secs(3600), Reschedule::Failed, None)
        .await
        .expect("back off");
    assert_eq!(store.sweep().await.expect("sweep"), 2);
    let mut queued = store.queued().await.expect("queued");
    queued.sort();
    let mut expected = vec![account(ALICE), account(BOB)];
    expected.sort();
    assert_eq!(queued, expected);
    let bob = claim(&store, LEASE).await.expect("Bob is due");
    assert_eq!(bob.lease.account(), &account(BOB));
    assert!(claim(&store, LEASE).await.is_none(), "Alice still backs off");
}

async fn file_records_are_committed_with_the_cursor_and_forgotten_by_folder(backend: Backend) {
    let store = store_with(backend, "queue-records", &[ALICE]).await;
    store.enqueue(&[account(ALICE)]).await.expect("enqueue");
    let claim = claim(&store, LEASE).await.expect("claimed");
    let record = |hash: &str| FileRecord {
        source_hash: hash.to_owned(),
        html_path: format!("/{hash}.html"),
        html_hash: format!("html-{hash}"),
        pending_html_hash: None,
        kept_html_hash: None,
        links: Vec::new(),
    };
    let mut changes = RecordChanges::default();
    for path in ["/a.md", "/notes/b.md", "/notes/deep/c.md", "/notes-old/d.md"] {
        changes.files.insert(path.to_owned(), Some(record(path)));
    }
    store.commit(&claim.lease, &changes, Some("c1"), None).await.expect("commit");
    let paths: Vec<String> =
        ["/a.md", "/notes/b.md", "/notes/deep/c.md", "/notes-old/d.md", "/x.md"]
            .map(String::from)
            .into();
    let found = store.file_records(&account(ALICE), &paths).await.expect("records");
    assert_eq!(found[0], Some(record("/a.md")));
    assert_eq!(found[4], None);
    let notes = store.note_paths(&account(ALICE)).await.expect("note paths");
    assert_eq!(notes.len(), 4, "each record's note, kept beside it: {notes:?}");
    assert_eq!(notes["/notes/b.md"], record("/notes/b.md").note_display("/notes/b.md"));
    assert_eq!(store.record_count(&account(ALICE)).await.expect("count"), 4);

    let mut changes = RecordChanges::default();
    changes.forget_under("/notes");
    changes.files.insert("/notes/b.md".to_owned(), Some(record("new")));
    changes.files.insert("/a.md".to_owned(), None);
    store.commit(&claim.lease, &changes, None, None).await.expect("commit");
    let found = store.file_records(&account(ALICE), &paths).await.expect("records");
    let found: BTreeMap<&str, Option<FileRecord>> =
        paths.iter().map(String::as_str).zip(found).collect();
    assert_eq!(found["/a.md"], None);
    assert_eq!(found["/notes/b.md"], Some(record("new")), "written after the folder went");
    assert_eq!(found["/notes/deep/c.md"], None);
    assert_eq!(found["/notes-old/d.md"], Some(record("/notes-old/d.md")), "a sibling stays");
    let notes = store.note_paths(&account(ALICE)).await.expect("note paths");
    let mut kept: Vec<&str> = notes.keys().map(String::as_str).collect();
    kept.sort_unstable();
    assert_eq!(kept, ["/notes-old/d.md", "/notes/b.md"], "the paths follow the records");

    // Paths recorded on their own, for a store written before they were kept.
    let mut changes = RecordChanges::default();
    changes.note_paths.insert("/notes-old/d.md".to_owned(), "/Notes-Old/d.md".to_owned());
    store.commit(&claim.lease, &changes, None, None).await.expect("commit");
    let notes = store.note_paths(&account(ALICE)).await.expect("note paths");
    assert_eq!(notes["/notes-old/d.md"], "/Notes-Old/d.md");
}

/// A fresh store on `backend` with Alice's and Bob's accounts linked and claimed, in that order.
async fn alice_and_bob_claimed(backend: Backend, test: &str) -> (Store, Claim, Claim) {
    let store = store_with(backend, test, &[ALICE, BOB]).await;
    store.enqueue(&[account(ALICE), account(BOB)]).await.expect("enqueue");
    let (first, second) = (claim(&store, LEASE).await, claim(&store, LEASE).await);
    let (first, second) = (first.expect("claimed"), second.expect("claimed"));
    if first.lease.account() == &account(ALICE) {
        (store, first, second)
    } else {
        (store, second, first)
    }
}

async fn attachments_are_committed_and_dropped_by_name_and_go_with_a_restart_or_an_unlink(
    backend: Backend,
) {
    let (store, alice, bob) = alice_and_bob_claimed(backend, "queue-attachments").await;
    let mut changes = RecordChanges::default();
    for display in ["/Media/Pic.png", "/media/deep/b.pdf", "/d.png"] {
        changes.attachments.insert(display.to_lowercase(), Some(display.to_owned()));
    }
    store.commit(&alice.lease, &changes, None, None).await.expect("commit");
    store.commit(&bob.lease, &changes, None, None).await.expect("Bob's");
    // Forgetting a folder drops records, not attachments: a pass drops those by name, with
    // its cursor.
    let mut changes = RecordChanges::default();
    changes.forget_under("/media");
    changes.attachments.insert("/media/pic.png".to_owned(), None);
    changes.attachments.insert("/media/new.png".to_owned(), Some("/Media/new.png".to_owned()));
    store.commit(&alice.lease, &changes, None, None).await.expect("commit");
    let found = store.attachments(&account(ALICE)).await.expect("attachments");
    let expected = [
        ("/media/new.png", "/Media/new.png"),
        ("/media/deep/b.pdf", "/media/deep/b.pdf"),
        ("/d.png", "/d.png"),
    ];
    let expected = expected.map(|(key, display)| (key.to_owned(), display.to_owned())).into();
    assert_eq!(found, expected);
    assert_eq!(store.attachments(&account(BOB)).await.expect("Bob's").len(), 3, "untouched");

    store.restart_sync(&account(ALICE)).await.expect("restart");
    assert!(store.attachments(&account(ALICE)).await.expect("attachments").is_empty());
    store.forget_account(&account(BOB)).await.expect("unlinked");
    assert!(store.attachments(&account(BOB)).await.expect("attachments").is_empty());
}

/// A settings file's record as a pass would commit it: version `hash`, valid, naming a
/// stylesheet beside it.
fn settings(display: &str, hash: &str) -> SettingsRecord {
    let folder = display.rsplit_once('/').map_or("", |(folder, _)| folder);
    SettingsRecord {
        path: display.to_owned(),
        hash: hash.to_owned(),
        text: Some(format!("css = \"site-{hash}.css\"")),
        stylesheet: Some(StylesheetRecord {
            path: format!("{folder}/site-{hash}.css"),
            hash: format!("css-{hash}"),
            text: "body { margin: 0 }".to_owned(),
        }),
        problem: None,
    }
}

/// A fresh store on `backend` with Alice's and Bob's accounts claimed (in that order), each
/// with version "1" of the settings files at `displays` committed.
async fn alice_and_bob_with_settings(
    backend: Backend,
    test: &str,
    displays: &[&str],
) -> (Store, Claim, Claim) {
    let (store, alice, bob) = alice_and_bob_claimed(backend, test).await;
    let mut changes = RecordChanges::default();
    for display in displays {
        changes.settings.insert(display.to_lowercase(), Some(settings(display, "1")));
    }
    for claim in [&alice, &bob] {
        store.commit(&claim.lease, &changes, Some("cursor-1"), None).await.expect("commit");
    }
    (store, alice, bob)
}

async fn settings_records_are_committed_whole_and_dropped_by_name_not_by_folder(backend: Backend) {
    let displays = ["/Blog/markdrop.toml", "/blog/deep/markdrop.toml", "/markdrop.toml"];
    let (store, alice, _bob) =
        alice_and_bob_with_settings(backend, "queue-settings", &displays).await;
    let found = store.settings_files(&account(ALICE)).await.expect("settings");
    assert_eq!(found.len(), 3);
    assert_eq!(found["/blog/markdrop.toml"], settings("/Blog/markdrop.toml", "1"), "whole");

    // A forgotten folder keeps its settings records: a pass drops those by name.
    let mut changes = RecordChanges::default();
    changes.forget_under("/blog");
    changes.settings.insert("/markdrop.toml".to_owned(), None);
    // A version that is not valid: the last good text stays in force.
    let problem = Some("line 1: expected a value".to_owned());
    let invalid =
        SettingsRecord { hash: "2".to_owned(), problem, ..settings("/Blog/markdrop.toml", "1") };
    changes.settings.insert("/blog/markdrop.toml".to_owned(), Some(invalid.clone()));
    store.commit(&alice.lease, &changes, Some("cursor-2"), None).await.expect("commit");
    let found = store.settings_files(&account(ALICE)).await.expect("settings");
    assert_eq!(found["/blog/markdrop.toml"], invalid, "written over");
    assert_eq!(found["/blog/deep/markdrop.toml"], settings("/blog/deep/markdrop.toml", "1"));
    assert_eq!(found.len(), 2, "/markdrop.toml dropped: {found:?}");
    assert_eq!(store.settings_files(&account(BOB)).await.expect("Bob's").len(), 3, "untouched");
    assert!(store.attachments(&account(ALICE)).await.expect("attachments").is_empty());
}

async fn settings_records_are_fenced_by_the_lease_and_go_with_a_restart_an_unlink_or_a_forget(
    backend: Backend,
) {
    let (store, stale, _bob) =
        alice_and_bob_with_settings(backend, "queue-settings-fenced", &["/markdrop.toml"]).await;

    store.restart_sync(&account(ALICE)).await.expect("restart");
    assert!(store.settings_files(&account(ALICE)).await.expect("settings").is_empty());
    let alice = claim(&store, LEASE).await.expect("due again at once");
    assert_eq!(alice.lease.account(), &account(ALICE));
    let mut changes = RecordChanges::default();
    changes.settings.insert("/a/markdrop.toml".to_owned(), Some(settings("/a/markdrop.toml", "1")));
    store.commit(&alice.lease, &changes, None, None).await.expect("commit");
    // The worker whose lease the restart took can neither write nor drop one.
    let mut late = RecordChanges::default();
    late.settings.insert("/a/markdrop.toml".to_owned(), None);
    late.settings
        .insert("/late/markdrop.toml".to_owned(), Some(settings("/late/markdrop.toml", "9")));
    let fenced = store.commit(&stale.lease, &late, None, None).await;
    assert!(matches!(fenced, Err(LeaseError::Lost)), "{fenced:?}");
    let found = store.settings_files(&account(ALICE)).await.expect("settings");
    let kept: Vec<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(kept, ["/a/markdrop.toml"]);

    let unlinked =
        AccountStatus { state: markdrop::store::SyncState::Unlinked, ..AccountStatus::default() };
    assert!(store.unlink(&alice.lease, &alice.sealed_tokens, &unlinked).await.expect("unlink"));
    assert!(store.settings_files(&account(ALICE)).await.expect("settings").is_empty());
    assert_eq!(store.settings_files(&account(BOB)).await.expect("Bob's").len(), 1);
    store.forget_account(&account(BOB)).await.expect("forget");
    assert!(store.settings_files(&account(BOB)).await.expect("settings").is_empty());
}

async fn refused_tokens_unlink_the_account_unless_it_was_connected_again_meanwhile(
    backend: Backend,
) {
    let store = store_with(backend, "queue-unlink", &[ALICE, BOB]).await;
    store.enqueue(&[account(ALICE), account(BOB)]).await.expect("enqueue");
    let first = claim(&store, LEASE).await.expect("claimed");
    let second = claim(&store, LEASE).await.expect("claimed");
    let (alice, bob) =
        if first.lease.account() == &account(ALICE) { (first, second) } else { (second, first) };
    // Bob connects again while his pass runs: the new tokens stay.
    store.save_tokens(&account(BOB), &tokens("relinked")).await.expect("relink");
    let unlinked =
        AccountStatus { state: markdrop::store::SyncState::Unlinked, ..AccountStatus::default() };
    assert!(!store.unlink(&bob.lease, &bob.sealed_tokens, &unlinked).await.expect("unlink"));
    assert!(store.tokens(&account(BOB)).await.expect("tokens").is_some());
    assert!(store.is_queued(&account(BOB)).await.expect("queued"), "due again with the new tokens");
    // Refreshed tokens are not written over a new link either.
    let old = tokens("old");
    let replaced = store.replace_tokens(&bob.lease, &bob.sealed_tokens, &old).await;
    assert_eq!(replaced.expect("replace"), None);

    // Alice's pass refreshed her token, then Dropbox refused it: the record to unlink is the
    // refreshed one.
    let fresh = tokens("fresh");
    let refreshed = store.replace_tokens(&alice.lease, &alice.sealed_tokens, &fresh).await;
    let sealed_now = refreshed.expect("replace").expect("written");
    let kept = store.tokens(&account(ALICE)).await.expect("tokens").expect("linked");
    assert_eq!(kept.access_token.expose_secret(), "sl.access-fresh");
    assert!(store.unlink(&alice.lease, &sealed_now, &unlinked).await.expect("unlink"));
    assert!(store.tokens(&account(ALICE)).await.expect("tokens").is_none());
    assert!(!store.is_queued(&account(ALICE)).await.expect("queued"));
    assert_eq!(store.status(&account(ALICE)).await.expect("status"), Some(unlinked));
}

async fn restarting_a_sync_forgets_the_cursor_and_records_and_fences_off_the_worker_on_it(
    backend: Backend,
) {
    let store = store_with(backend, "queue-restart", &[ALICE]).await;
    store.enqueue(&[account(ALICE)]).await.expect("enqueue");
    let first = claim(&store, LEASE).await.expect("claimed");
    let mut changes = RecordChanges::default();
    let record = FileRecord {
        source_hash: "s".to_owned(),
        html_path: "/a.html".to_owned(),
        html_hash: "h".to_owned(),
        pending_html_hash: None,
        kept_html_hash: None,
        links: Vec::new(),
    };
    changes.files.insert("/a.md".to_owned(), Some(record));
    store.commit(&first.lease, &changes, Some("home-view"), None).await.expect("commit");
    store.restart_sync(&account(ALICE)).await.expect("restart");
    let late = store.commit(&first.lease, &changes, Some("stale"), None).await;
    assert!(matches!(late, Err(LeaseError::Lost)), "the worker on it is fenced off: {late:?}");
    assert_eq!(store.leases_held().await.expect("leases"), 0);
    assert!(store.recorded_paths(&account(ALICE)).await.expect("records").is_empty());
    store.enqueue(&[account(ALICE)]).await.expect("enqueue");
    let again = claim_when_due(&store, LEASE).await;
    assert_eq!(again.cursor, None, "listed from the start");
    assert!(again.tokens.is_some(), "still linked");
}

async fn forgetting_an_account_mid_pass_fences_off_its_worker_and_a_new_link_starts_afresh(
    backend: Backend,
) {
    let store = store_with(backend, "queue-forget", &[ALICE, BOB]).await;
    store.enqueue(&[account(ALICE), account(BOB)]).await.expect("enqueue");
    let first = claim(&store, LEASE).await.expect("claimed");
    let second = claim(&store, LEASE).await.expect("claimed");
    let alice = if first.lease.account() == &account(ALICE) { first } else { second };
    let mut changes = RecordChanges::default();
    let record = FileRecord {
        source_hash: "s".to_owned(),
        html_path: "/a.html".to_owned(),
        html_hash: "h".to_owned(),
        pending_html_hash: Some("p".to_owned()),
        kept_html_hash: Some("k".to_owned()),
        links: Vec::new(),
    };
    changes.files.insert("/a.md".to_owned(), Some(record));
    let status = AccountStatus { last_pass_at: Some(1), ..AccountStatus::default() };
    store.commit(&alice.lease, &changes, Some("c1"), Some(&status)).await.expect("commit");

    store.forget_account(&account(ALICE)).await.expect("unlinked by the person");
    let late = store.commit(&alice.lease, &changes, Some("c2"), None).await;
    assert!(matches!(late, Err(LeaseError::Lost)), "{late:?}");
    assert!(store.tokens(&account(ALICE)).await.expect("tokens").is_none());
    assert_eq!(store.status(&account(ALICE)).await.expect("status"), None);
    assert_eq!(store.queued().await.expect("queued"), vec![account(BOB)]);
    assert_eq!(store.leases_held().await.expect("leases"), 1, "Bob's");

    store.save_tokens(&account(ALICE), &tokens("again")).await.expect("linked again");
    store.enqueue(&[account(ALICE)]).await.expect("enqueue");
    let again = claim(&store, LEASE).await.expect("claimed");
    assert_eq!(again.lease.account(), &account(ALICE));
    assert_eq!(again.cursor, None, "a new link lists from the start");
    assert_eq!(again.generation, 1);
    let paths = ["/a.md".to_owned()];
    let records = store.file_records(&account(ALICE), &paths).await.expect("records");
    assert_eq!(records, vec![None]);
}

crate::on_every_store!(
    restarting_a_sync_forgets_the_cursor_and_records_and_fences_off_the_worker_on_it,
    forgetting_an_account_mid_pass_fences_off_its_worker_and_a_new_link_starts_afresh,
    any_number_of_notifications_make_one_pending_pass,
    a_held_account_waits_for_its_lease_to_expire_and_the_old_holder_is_fenced_off,
    a_notification_during_a_pass_makes_one_more_pass,
    a_rescheduled_account_is_not_due_early_even_when_notified_and_counts_its_failures,
    notes_waiting_for_a_retry_bring_the_account_back_when_due_or_sooner_when_notified,
    an_account_that_is_not_linked_leaves_the_queue_when_claimed,
    the_sweep_queues_every_linked_account_once_without_cutting_a_backoff_short,
    file_records_are_committed_with_the_cursor_and_forgotten_by_folder,
    attachments_are_committed_and_dropped_by_name_and_go_with_a_restart_or_an_unlink,
    settings_records_are_committed_whole_and_dropped_by_name_not_by_folder,
    settings_records_are_fenced_by_the_lease_and_go_with_a_restart_an_unlink_or_a_forget,
    refused_tokens_unlink_the_account_unless_it_was_connected_again_meanwhile,
);
