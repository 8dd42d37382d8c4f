//! Failures by what they mean: a note that failed for a reason that may pass comes back by
//! itself; a reason that stays is reported once and tried again when the note changes; a full
//! Dropbox holds the account; and Dropbox's auth errors unlink, stop or retry the account
//! according to what they say. End to end, on both store backends.

use markdrop::dropbox::AccountId;
use markdrop::emulator::FaultRule;
use markdrop::store::{Outcome, SyncState};
use serde_json::json;

use crate::support::app::TestApp;
use crate::support::store::Backend;
use crate::support::wait::eventually;

/// An account with one converted note, `/a.md`, and nothing left to do.
async fn settled(world: &TestApp) -> String {
    let account = world.link_with_files("Ada", &[("/a.md", "a")]).await;
    world.html_matching(&account, "/a.html", "a", "a").await;
    world.quiet().await;
    account
}

async fn a_note_whose_upload_keeps_failing_is_retried_by_itself_until_it_converts(
    backend: Backend,
) {
    let world = TestApp::with_worker(backend, "fail-retry").await;
    let account = settled(&world).await;
    // More server errors than the client's own retries (three attempts) absorb: two tries fail.
    world
        .emulator()
        .add_fault(FaultRule::status("files/upload", 6, 503, "busy").for_account(&account));
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    eventually("b.md to wait for a retry", || async {
        world.status(&account).await.retrying.contains_key("/b.md")
    })
    .await;
    // Nobody touches anything from here on.
    world.html_matching(&account, "/b.html", "b", "b").await;
    world.quiet().await;
    let status = world.status(&account).await;
    assert!(status.retrying.is_empty(), "{:?}", status.retrying);
    assert!(
        status
            .recent
            .iter()
            .any(|c| c.path == "/b.md" && matches!(&c.outcome, Outcome::Failed { .. })),
        "the failure was reported: {:?}",
        status.recent
    );
    assert_eq!(status.recent[0].outcome, Outcome::Converted);
}

async fn a_full_dropbox_holds_the_account_says_so_and_catches_up(backend: Backend) {
    let world = TestApp::with_worker(backend, "fail-full").await;
    let account = settled(&world).await;
    world.emulator().add_fault(FaultRule::insufficient_space(2).for_account(&account));
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    eventually("the page to say the Dropbox is full", || async {
        matches!(world.status(&account).await.state,
            SyncState::Failing { message } if message.contains("Your Dropbox is full"))
    })
    .await;
    world.html_matching(&account, "/b.html", "b", "b").await;
    world.quiet().await;
    assert_eq!(world.status(&account).await.state, SyncState::Idle);
}

async fn a_note_dropbox_refuses_for_good_is_reported_once_and_tried_again_when_it_changes(
    backend: Backend,
) {
    let world = TestApp::with_worker(backend, "fail-lasting").await;
    let account = settled(&world).await;
    let refused =
        json!({".tag": "path", "reason": {".tag": "disallowed_name"}, "upload_session_id": "x"});
    world
        .emulator()
        .add_fault(FaultRule::route_error("files/upload", 1, refused).for_account(&account));
    let uploads = world.uploads(&account);
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    eventually("the refusal to be reported", || async {
        world.status(&account).await.recent.iter().any(|c| {
            c.path == "/b.md" && matches!(&c.outcome, Outcome::Failed { message } if message.contains("disallowed_name"))
        })
    })
    .await;
    world.quiet().await;
    assert!(world.status(&account).await.retrying.is_empty(), "not retried by itself");
    assert_eq!(world.uploads(&account), uploads + 1, "tried once");
    world.emulator().put_file(&account, "/b.md", "b, renamed things").expect("edit");
    world.html_matching(&account, "/b.html", "b, renamed things", "b").await;
}

async fn an_auth_error_markdrop_does_not_know_fails_the_pass_and_keeps_the_link(backend: Backend) {
    let world = TestApp::with_worker(backend, "fail-unknown-401").await;
    let account = settled(&world).await;
    for tag in ["route_access_denied", "a_tag_dropbox_adds_next_year"] {
        world.emulator().add_fault(
            FaultRule::auth_error("files/list_folder/continue", 1, tag).for_account(&account),
        );
    }
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    eventually("the failure to show", || async {
        matches!(world.status(&account).await.state, SyncState::Failing { .. })
    })
    .await;
    world.html_matching(&account, "/b.html", "b", "b").await;
    world.quiet().await;
    let id = AccountId::parse(&account).expect("id");
    assert!(world.store.tokens(&id).await.expect("tokens").is_some(), "still linked");
    assert_eq!(world.status(&account).await.state, SyncState::Idle);
}

async fn a_suspended_account_is_unlinked(backend: Backend) {
    let world = TestApp::with_worker(backend, "fail-suspended").await;
    let account = settled(&world).await;
    world.emulator().add_fault(
        FaultRule::auth_error("files/list_folder/continue", 1, "user_suspended")
            .for_account(&account),
    );
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    eventually("the account to be unlinked", || async {
        world.status(&account).await.state == SyncState::Unlinked
    })
    .await;
    let id = AccountId::parse(&account).expect("id");
    assert!(world.store.tokens(&id).await.expect("tokens").is_none());
}

async fn an_access_token_that_died_early_is_refreshed_once_and_the_link_kept(backend: Backend) {
    let world = TestApp::with_worker(backend, "fail-dead-token").await;
    let account = settled(&world).await;
    let refreshes = world.emulator().stats().total_calls("oauth2/token");
    world.emulator().add_fault(
        FaultRule::auth_error("files/list_folder/continue", 1, "invalid_access_token")
            .for_account(&account),
    );
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    world.html_matching(&account, "/b.html", "b", "b").await;
    world.quiet().await;
    assert_eq!(world.emulator().stats().total_calls("oauth2/token"), refreshes + 1);
    let id = AccountId::parse(&account).expect("id");
    assert!(world.store.tokens(&id).await.expect("tokens").is_some(), "still linked");
}

async fn a_missing_permission_stops_the_account_until_the_person_connects_again(backend: Backend) {
    let world = TestApp::with_worker(backend, "fail-scope").await;
    let account = settled(&world).await;
    world
        .emulator()
        .add_fault(FaultRule::auth_error("files/upload", 1, "missing_scope").for_account(&account));
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    eventually("the account to stop for the permission", || async {
        matches!(world.status(&account).await.state,
            SyncState::MissingPermission { scope, .. } if scope == "files.content.write")
    })
    .await;
    world.quiet().await;
    // More changes, more notifications: not one call to Dropbox with this link.
    let calls = |route| world.emulator().stats().calls(route, &account);
    let before = ["files/list_folder/continue", "files/download", "files/upload"].map(calls);
    world.emulator().put_file(&account, "/c.md", "c").expect("put");
    world.quiet().await;
    assert_eq!(["files/list_folder/continue", "files/download", "files/upload"].map(calls), before);
    let id = AccountId::parse(&account).expect("id");
    assert!(world.store.tokens(&id).await.expect("tokens").is_some(), "stopped, not unlinked");

    // Connected again, the permission granted: syncing resumes where it stopped.
    world.connect(&account).await;
    world.html_matching(&account, "/b.html", "b", "b").await;
    world.html_matching(&account, "/c.html", "c", "c").await;
    world.quiet().await;
    assert_eq!(world.status(&account).await.state, SyncState::Idle);
    assert_eq!(
        world.emulator().stats().calls("files/list_folder", &account),
        1,
        "no listing from the start"
    );
}

async fn a_page_that_could_not_be_removed_is_removed_on_a_later_try(backend: Backend) {
    let world = TestApp::with_worker(backend, "fail-remove").await;
    let account = settled(&world).await;
    // Looking at the page fails past the client's retries: the note's record stays, and the
    // removal waits for a retry.
    world
        .emulator()
        .add_fault(FaultRule::status("files/get_metadata", 3, 503, "busy").for_account(&account));
    world.emulator().delete_path(&account, "/a.md").expect("delete the note");
    eventually("the removal to wait for a retry", || async {
        world.status(&account).await.retrying.get("/a.md").is_some_and(|note| note.removal)
    })
    .await;
    eventually("the page to go with its note", || {
        std::future::ready(world.emulator().read_file(&account, "/a.html").is_none())
    })
    .await;
    world.quiet().await;
    assert!(world.status(&account).await.retrying.is_empty());
}

async fn an_upload_slower_than_a_lease_goes_through_while_the_lease_is_renewed(backend: Backend) {
    let world = TestApp::with_worker(backend, "fail-slow-upload").await;
    let account = settled(&world).await;
    // Tests lease for 2 s; this upload takes 3.
    world.emulator().add_fault(
        FaultRule::delay("files/upload", 1, std::time::Duration::from_secs(3))
            .for_account(&account),
    );
    let uploads = world.uploads(&account);
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    world.html_matching(&account, "/b.html", "b", "b").await;
    world.quiet().await;
    assert_eq!(world.uploads(&account), uploads + 1, "not abandoned and tried again");
}

crate::on_every_store!(
    a_page_that_could_not_be_removed_is_removed_on_a_later_try,
    an_upload_slower_than_a_lease_goes_through_while_the_lease_is_renewed,
    a_note_whose_upload_keeps_failing_is_retried_by_itself_until_it_converts,
    a_full_dropbox_holds_the_account_says_so_and_catches_up,
    a_note_dropbox_refuses_for_good_is_reported_once_and_tried_again_when_it_changes,
    an_auth_error_markdrop_does_not_know_fails_the_pass_and_keeps_the_link,
    a_suspended_account_is_unlinked,
    an_access_token_that_died_early_is_refreshed_once_and_the_link_kept,
    a_missing_permission_stops_the_account_until_the_person_connects_again,
);
