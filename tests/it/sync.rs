//! The sync worker end to end: the emulator's files become `.html` siblings through real
//! webhooks, the real web app and real workers, on real Redis (`sync::redis::…`) and on the
//! embedded store shared by the app and its workers as in one `serve` process
//! (`sync::embedded::…`).

use std::time::{Duration, Instant};

use markdrop::config::WorkerSettings;
use markdrop::dropbox::AccountId;
use markdrop::emulator::FaultRule;
use markdrop::store::{Outcome, SyncState};
use secrecy::ExposeSecret;

fn render(markdown: &str, stem: &str) -> Vec<u8> {
    markdrop::render::render(markdown.as_bytes(), &markdrop::render::Page::alone(stem)).into_bytes()
}

use crate::support::app::{TestApp, worker_settings};
use crate::support::redis::PrivateRedis;
use crate::support::store::Backend;
use crate::support::wait::eventually;

async fn linking_converts_the_notes_already_there_in_subfolders_and_with_any_names(
    backend: Backend,
) {
    let world = TestApp::with_worker(backend, "sync-first-pass").await;
    let files = [
        ("/ReadMe.md", "# Read me\n\nHello."),
        ("/Notes/Ideas.MD", "* one\n* two\n"),
        ("/Notes/Café/Crème brûlée.md", "# Crème\n"),
        ("/📝 Journal/2026 🎉.md", "Party **time**."),
        ("/Photos/cat.jpg", "not markdown"),
    ];
    let account = world.link_with_files("Ada", &files).await;
    world.html_matching(&account, "/ReadMe.html", files[0].1, "ReadMe").await;
    world.html_matching(&account, "/Notes/Ideas.html", files[1].1, "Ideas").await;
    world
        .html_matching(&account, "/Notes/Café/Crème brûlée.html", files[2].1, "Crème brûlée")
        .await;
    world.html_matching(&account, "/📝 Journal/2026 🎉.html", files[3].1, "2026 🎉").await;
    world.quiet().await;
    let paths = world.emulator().file_paths(&account);
    assert_eq!(paths.iter().filter(|path| path.ends_with(".html")).count(), 4, "{paths:?}");
    assert_eq!(world.uploads(&account), 4, "one upload per note, none for our own uploads");
}

async fn a_change_is_converted_and_the_html_is_what_render_makes_of_it(backend: Backend) {
    let world = TestApp::with_worker(backend, "sync-change").await;
    let account = world.link_with_files("Ada", &[("/Plans.md", "# Plans\n")]).await;
    world.html_matching(&account, "/Plans.html", "# Plans\n", "Plans").await;
    let edited = "# Plans\n\n- [x] ship the worker\n- [ ] write the demo\n";
    world.emulator().put_file(&account, "/Plans.md", edited).expect("edit");
    world.html_matching(&account, "/Plans.html", edited, "Plans").await;
    world.quiet().await;
    assert_eq!(world.uploads(&account), 2);
    let status = world.status(&account).await;
    assert_eq!(status.state, SyncState::Idle);
    assert!(status.last_pass_at.is_some());
    assert_eq!(status.recent[0].path, "/Plans.md");
    assert_eq!(status.recent[0].outcome, Outcome::Converted);
}

async fn twenty_notifications_for_one_change_upload_its_html_once(backend: Backend) {
    let world = TestApp::with_worker(backend, "sync-coalesce").await;
    let account = world.link_with_files("Ada", &[("/a.md", "a")]).await;
    world.html(&account, "/a.html").await;
    world.quiet().await;
    let before = world.uploads(&account);
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    let body =
        format!(r#"{{"list_folder": {{"accounts": ["{account}"]}}, "delta": {{"users": []}}}}"#);
    let notifications = (0..20).map(|_| world.notify(&body));
    for answer in futures_util::future::join_all(notifications).await {
        assert_eq!(answer, 200);
    }
    world.html(&account, "/b.html").await;
    world.quiet().await;
    assert_eq!(world.uploads(&account) - before, 1, "one upload for one change");
}

async fn a_change_during_a_pass_is_converted_by_the_next_one(backend: Backend) {
    let world = TestApp::with_worker(backend, "sync-during").await;
    let account = world.link_with_files("Ada", &[("/b.md", "b")]).await;
    world.html(&account, "/b.html").await;
    world.quiet().await;
    // b changes in a way that renders the same, so its upload changes nothing and sends no
    // notification of its own: only the notification for c, which lands while b's download is
    // held up (after the pass listed), can bring c in.
    world.emulator().add_fault(
        FaultRule::delay("files/download", 1, Duration::from_millis(1500)).for_account(&account),
    );
    let downloads = || world.emulator().stats().calls("files/download", &account);
    let before = downloads();
    world.emulator().put_file(&account, "/b.md", "b\n").expect("put");
    eventually("b's download to be under way", || std::future::ready(downloads() > before)).await;
    world.emulator().put_file(&account, "/c.md", "c").expect("put during the pass");
    world.html(&account, "/c.html").await;
    world.quiet().await;
    assert_eq!(world.emulator().read_file(&account, "/b.html"), Some(render("b", "b")));
}

async fn eight_worker_tasks_never_list_or_write_one_account_twice_at_once(backend: Backend) {
    let mut world = TestApp::on(backend, "sync-exclusive").await;
    // Four workers (as four processes would), two accounts at a time each: eight tasks.
    for _ in 0..4 {
        world.spawn_worker(WorkerSettings { accounts: 2, ..worker_settings() });
    }
    let notes: Vec<(String, String)> =
        (0..12).map(|n| (format!("/n{n}.md"), format!("# Note {n}\n"))).collect();
    let notes: Vec<(&str, &str)> = notes.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let mut accounts = Vec::new();
    for name in ["Ada", "Grace", "Edsger", "Barbara", "Donald"] {
        accounts.push(world.link_with_files(name, &notes).await);
    }
    // Keep every account busy with more changes and a storm of notifications.
    for round in 0..3 {
        for account in &accounts {
            world.emulator().put_file(account, "/n0.md", format!("round {round}")).expect("put");
            let body = format!(
                r#"{{"list_folder": {{"accounts": ["{account}"]}}, "delta": {{"users": []}}}}"#
            );
            assert_eq!(world.notify(&body).await, 200);
        }
    }
    for account in &accounts {
        world.html_matching(account, "/n0.html", "round 2", "n0").await;
        world.html(account, "/n11.html").await;
    }
    world.quiet().await;
    let stats = world.emulator().stats();
    for account in &accounts {
        assert_eq!(stats.peak_listings(account), 1, "{account} listed concurrently");
        assert_eq!(stats.peak_writes(account), 1, "{account} written concurrently");
    }
}

async fn a_worker_killed_mid_pass_is_taken_over_from_the_last_saved_cursor(backend: Backend) {
    let mut world = TestApp::on(backend, "sync-crash").await;
    world.spawn_worker(worker_settings());
    let account = world.link_with_files("Ada", &[("/a.md", "a")]).await;
    world.html(&account, "/a.html").await;
    world.quiet().await;
    // The next download stalls; the worker dies while it waits.
    world.emulator().add_fault(
        FaultRule::delay("files/download", 1, Duration::from_secs(30)).for_account(&account),
    );
    let downloads = || world.emulator().stats().calls("files/download", &account);
    let before = downloads();
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    world.emulator().put_file(&account, "/c.md", "c").expect("put");
    eventually("a download to be under way", || std::future::ready(downloads() > before)).await;
    world.workers.pop().expect("the worker").kill().await;
    world.spawn_worker(worker_settings());
    world.html(&account, "/b.html").await;
    world.html(&account, "/c.html").await;
    world.quiet().await;
    let from_scratch = world.emulator().stats().calls("files/list_folder", &account);
    assert_eq!(from_scratch, 1, "only the first pass listed everything; the rest continued");
    // The cursor moved on: a later change converts alone, nothing older is uploaded again.
    let settled = world.uploads(&account);
    world.emulator().put_file(&account, "/d.md", "d").expect("put");
    world.html(&account, "/d.html").await;
    world.quiet().await;
    assert_eq!(world.uploads(&account), settled + 1);
}

async fn a_stopping_worker_hands_its_account_back_at_once(backend: Backend) {
    let mut world = TestApp::on(backend, "sync-stop").await;
    world.spawn_worker(WorkerSettings { lease_ttl: Duration::from_secs(600), ..worker_settings() });
    let account = world.link_with_files("Ada", &[("/a.md", "a")]).await;
    world.html(&account, "/a.html").await;
    world.quiet().await;
    world.emulator().add_fault(
        FaultRule::delay("files/download", 1, Duration::from_secs(30)).for_account(&account),
    );
    let downloads = || world.emulator().stats().calls("files/download", &account);
    let before = downloads();
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    eventually("a download to be under way", || std::future::ready(downloads() > before)).await;
    world.workers.pop().expect("the worker").stop().await;
    // Handed back: no lease left to wait out (it would take ten minutes), and due now.
    assert_eq!(world.store.leases_held().await.expect("leases"), 0);
    assert_eq!(world.store.queued().await.expect("queued").len(), 1);
    world.spawn_worker(worker_settings());
    world.html(&account, "/b.html").await;
    world.quiet().await;
}

async fn a_reset_cursor_lists_again_without_uploading_unchanged_notes(backend: Backend) {
    let world = TestApp::with_worker(backend, "sync-reset").await;
    let account = world.link_with_files("Ada", &[("/a.md", "a"), ("/sub/b.md", "b")]).await;
    world.html(&account, "/a.html").await;
    world.html(&account, "/sub/b.html").await;
    world.quiet().await;
    let before = world.uploads(&account);
    world.emulator().reset_cursors(&account);
    world.emulator().put_file(&account, "/c.md", "c").expect("put");
    world.html(&account, "/c.html").await;
    world.quiet().await;
    assert_eq!(world.uploads(&account), before + 1, "only the new note is uploaded");
    assert!(world.emulator().stats().calls("files/list_folder", &account) >= 2, "listed again");
}

async fn a_rate_limited_account_waits_out_retry_after_before_calling_again(backend: Backend) {
    let world = TestApp::with_worker(backend, "sync-429").await;
    let account = world.link_with_files("Ada", &[("/a.md", "a")]).await;
    world.html(&account, "/a.html").await;
    world.quiet().await;
    world.emulator().add_fault(
        FaultRule::rate_limited("files/list_folder/continue", 1, 2).for_account(&account),
    );
    let listings = || world.emulator().stats().calls("files/list_folder/continue", &account);
    let before = listings();
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    eventually("the 429", || std::future::ready(listings() > before)).await;
    let limited_at = Instant::now();
    eventually("the rate limit to show", || async {
        matches!(world.status(&account).await.state, SyncState::RateLimited { .. })
    })
    .await;
    eventually("the next listing", || std::future::ready(listings() >= before + 2)).await;
    // The 429 was seen up to one 10 ms poll after it happened.
    let waited = limited_at.elapsed() + Duration::from_millis(20);
    assert!(waited >= Duration::from_secs(2), "called again before Retry-After: {waited:?}");
    world.html(&account, "/b.html").await;
    world.quiet().await;
    assert_eq!(world.status(&account).await.state, SyncState::Idle);
}

async fn server_errors_are_retried_and_a_failing_account_shows_why_and_recovers(backend: Backend) {
    let world = TestApp::with_worker(backend, "sync-5xx").await;
    let account = world.link_with_files("Ada", &[("/a.md", "a")]).await;
    world.html(&account, "/a.html").await;
    world.quiet().await;
    // A short burst: the client's own retries ride it out.
    world
        .emulator()
        .add_fault(FaultRule::status("files/download", 2, 503, "busy").for_account(&account));
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    world.html(&account, "/b.html").await;
    world.quiet().await;
    // A long outage: passes fail, the page says so, and the account is retried until it works.
    world.emulator().add_fault(
        FaultRule::status("files/list_folder/continue", 9, 500, "down").for_account(&account),
    );
    world.emulator().put_file(&account, "/c.md", "c").expect("put");
    eventually("the failure to show", || async {
        matches!(world.status(&account).await.state, SyncState::Failing { .. })
    })
    .await;
    world.html(&account, "/c.html").await;
    world.quiet().await;
    assert_eq!(world.status(&account).await.state, SyncState::Idle);
}

async fn an_expired_access_token_is_refreshed_and_the_new_one_kept(backend: Backend) {
    let world = TestApp::with_worker(backend, "sync-expiry").await;
    let account = world.link_with_files("Ada", &[("/a.md", "a")]).await;
    world.html(&account, "/a.html").await;
    world.quiet().await;
    let id = AccountId::parse(&account).expect("id");
    let old = world.store.tokens(&id).await.expect("tokens").expect("linked");
    world.emulator().expire_access_tokens(&account);
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    world.html(&account, "/b.html").await;
    world.quiet().await;
    let new = world.store.tokens(&id).await.expect("tokens").expect("still linked");
    assert_ne!(new.access_token.expose_secret(), old.access_token.expose_secret());
    let refreshes = world.emulator().stats().total_calls("oauth2/token");
    world.emulator().put_file(&account, "/c.md", "c").expect("put");
    world.html(&account, "/c.html").await;
    world.quiet().await;
    assert_eq!(
        world.emulator().stats().total_calls("oauth2/token"),
        refreshes,
        "kept, not refreshed again"
    );
}

async fn a_revoked_token_unlinks_the_account_and_leaves_it_alone(backend: Backend) {
    let world = TestApp::with_worker(backend, "sync-revoked").await;
    let account = world.link_with_files("Ada", &[("/a.md", "a")]).await;
    world.html(&account, "/a.html").await;
    world.quiet().await;
    world.emulator().revoke_tokens(&account);
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    eventually("the account to be unlinked", || async {
        world.status(&account).await.state == SyncState::Unlinked
    })
    .await;
    world.quiet().await;
    let id = AccountId::parse(&account).expect("id");
    assert!(world.store.tokens(&id).await.expect("tokens").is_none(), "tokens forgotten");
    let calls = world.emulator().stats().calls("files/list_folder/continue", &account);
    world.emulator().put_file(&account, "/c.md", "c").expect("put");
    world.quiet().await;
    assert_eq!(world.emulator().stats().calls("files/list_folder/continue", &account), calls);
    assert!(world.emulator().read_file(&account, "/b.html").is_none());
}

async fn a_deleted_note_takes_its_html_along_unless_someone_edited_the_html(backend: Backend) {
    let world = TestApp::with_worker(backend, "sync-delete").await;
    let files = [("/Keep/a.md", "a"), ("/b.md", "b"), ("/Gone/c.md", "c")];
    let account = world.link_with_files("Ada", &files).await;
    for html in ["/Keep/a.html", "/b.html", "/Gone/c.html"] {
        world.html(&account, html).await;
    }
    world.quiet().await;
    world.emulator().put_file(&account, "/b.html", "<p>mine now</p>").expect("hand edit");
    world.emulator().delete_path(&account, "/Keep/a.md").expect("delete");
    world.emulator().delete_path(&account, "/b.md").expect("delete");
    world.emulator().delete_path(&account, "/Gone").expect("delete a folder");
    eventually("the untouched html to go", || {
        std::future::ready(world.emulator().read_file(&account, "/Keep/a.html").is_none())
    })
    .await;
    world.quiet().await;
    assert_eq!(
        world.emulator().read_file(&account, "/b.html").as_deref(),
        Some(&b"<p>mine now</p>"[..])
    );
    let recent = world.status(&account).await.recent;
    assert!(
        recent.iter().any(|c| c.path == "/Keep/a.md" && c.outcome == Outcome::Removed),
        "{recent:?}"
    );
    assert!(
        recent.iter().any(|c| c.path == "/b.md"
            && matches!(&c.outcome, Outcome::Kept { html } if html == "/b.html")),
        "{recent:?}"
    );
    // The folder's note is forgotten: making it again converts it again.
    world.emulator().put_file(&account, "/Gone/c.md", "c").expect("again");
    world.html(&account, "/Gone/c.html").await;
}

async fn a_note_over_the_size_cap_and_one_dropbox_cannot_download_are_skipped_and_reported(
    backend: Backend,
) {
    let mut world = TestApp::on(backend, "sync-skips").await;
    world.spawn_worker(WorkerSettings { max_markdown_bytes: 1024, ..worker_settings() });
    let big = "x".repeat(2048);
    let files = [("/big.md", big.as_str()), ("/doc.md", "# A doc"), ("/ok.md", "ok")];
    let account = world.emulator().create_account("Ada").account_id;
    for (path, content) in files {
        world.emulator().put_file(&account, path, content).expect("put");
    }
    world.emulator().mark_non_downloadable(&account, "/doc.md").expect("a Google Doc");
    world.connect(&account).await;
    world.html(&account, "/ok.html").await;
    world.quiet().await;
    assert!(world.emulator().read_file(&account, "/big.html").is_none());
    assert!(world.emulator().read_file(&account, "/doc.html").is_none());
    assert_eq!(world.emulator().stats().calls("files/download", &account), 1, "only ok.md");
    let recent = world.status(&account).await.recent;
    let big = recent.iter().find(|c| c.path == "/big.md").expect("big.md reported");
    assert_eq!(
        big.outcome,
        Outcome::Skipped { reason: "it is 2048 bytes, over the 1024 bytes limit".into() }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_is_ridden_out_and_the_change_made_meanwhile_converted() {
    let mut redis = PrivateRedis::start("redis-restart");
    let world = TestApp::builder("sync-redis-restart")
        .on_redis_at(&redis.url())
        .with_worker()
        .start()
        .await;
    let account = world.link_with_files("Ada", &[("/a.md", "a")]).await;
    world.html(&account, "/a.html").await;
    world.quiet().await;
    redis.stop();
    // Dropbox's notification finds the store down (503) and is retried until it is back.
    world.emulator().put_file(&account, "/b.md", "b").expect("put while Redis is down");
    eventually("the notification to be refused", || {
        std::future::ready(
            world.emulator().stats().webhook_attempts()
                > world.emulator().stats().webhooks_delivered(),
        )
    })
    .await;
    redis.restart();
    world.html(&account, "/b.html").await;
    world.quiet().await;
}

async fn metrics_count_webhooks_passes_files_and_dropbox_calls_as_work_happens(backend: Backend) {
    let world = TestApp::with_worker(backend, "sync-metrics").await;
    let metrics = || async {
        let response = reqwest::get(format!("{}/metrics", world.address)).await.expect("GET");
        assert_eq!(response.status(), 200);
        response.text().await.expect("text")
    };
    let value = |text: &str, series: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    };
    let before = metrics().await;
    assert!(before.contains("# TYPE markdrop_webhook_to_upload_seconds histogram"), "{before}");
    assert_eq!(value(&before, "markdrop_files_total{outcome=\"converted\"}"), 0);

    let account = world.link_with_files("Ada", &[("/a.md", "a"), ("/b.md", "b")]).await;
    world.html(&account, "/b.html").await;
    world.quiet().await;
    eventually("the counts to reach /metrics", || async {
        let text = metrics().await;
        value(&text, "markdrop_files_total{outcome=\"converted\"}") == 2
            && value(&text, "markdrop_webhooks_total{outcome=\"accepted\"}") >= 1
            && value(&text, "markdrop_passes_total{outcome=\"complete\"}") >= 1
            // Two notes in one pass: their pages are staged, then committed in batches.
            && value(&text, "markdrop_dropbox_calls_total{route=\"files/upload_session/start\",status=\"200\"}")
                == 2
            && value(&text, "markdrop_dropbox_calls_total{route=\"files/upload_session/finish_batch_v2\",status=\"200\"}")
                >= 1
            && value(&text, "markdrop_webhook_to_upload_seconds_count") == 2
            && value(&text, "markdrop_accounts_queued") == 0
    })
    .await;
    // A forged webhook is counted as such.
    let forged = reqwest::Client::new()
        .post(format!("{}/webhook", world.address))
        .header("X-Dropbox-Signature", "00")
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(forged.status(), 403);
    eventually("the forged webhook to be counted", || async {
        value(&metrics().await, "markdrop_webhooks_total{outcome=\"forged\"}") == 1
    })
    .await;
}

async fn a_note_deleted_while_the_cursor_was_reset_takes_its_html_along(backend: Backend) {
    let mut world = TestApp::with_worker(backend, "sync-reset-delete").await;
    let account = world.link_with_files("Ada", &[("/a.md", "a"), ("/b.md", "b")]).await;
    world.html(&account, "/b.html").await;
    world.quiet().await;
    // No worker runs while b goes and the cursor dies, so the deletion is never listed.
    world.workers.pop().expect("the worker").stop().await;
    world.emulator().delete_path(&account, "/b.md").expect("delete");
    world.emulator().reset_cursors(&account);
    world.spawn_worker(worker_settings());
    eventually("b.html to go", || {
        std::future::ready(world.emulator().read_file(&account, "/b.html").is_none())
    })
    .await;
    world.quiet().await;
    assert!(world.emulator().read_file(&account, "/a.html").is_some(), "a is untouched");
}

async fn a_page_uploaded_by_a_worker_that_died_before_recording_it_goes_with_its_note(
    backend: Backend,
) {
    let mut world = one_note_at_a_time(backend, "sync-unrecorded").await;
    let account = world.link_with_files("Ada", &[]).await;
    world.quiet().await;
    // One page goes through, the other's stalls: the worker dies with one page written but
    // the pass, and so that note's record, not committed.
    stall_the_second_page(&world, &account);
    let before = world.emulator().stats().calls(STAGE, &account);
    world.emulator().put_file(&account, "/a.md", "a").expect("put");
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    die_after_a_then_delete_it(&mut world, &account, before).await;
}

/// A worker that reads one note at a time (`read_ahead` 1), so its pages are sent in listing
/// order: a's first, then b's.
async fn one_note_at_a_time(backend: Backend, test: &str) -> TestApp {
    let mut world = TestApp::on(backend, test).await;
    world.spawn_worker(WorkerSettings { read_ahead: 1, ..worker_settings() });
    world
}

/// Where a pass with several notes sends each page's bytes (then committed in batches).
const STAGE: &str = "files/upload_session/start";

/// The account's next page goes up; the one after it stalls for half a minute, so the first
/// is committed alone.
fn stall_the_second_page(world: &TestApp, account: &str) {
    let pause = |delay| FaultRule::delay(STAGE, 1, delay).for_account(account);
    world.emulator().add_fault(pause(Duration::from_millis(1)));
    world.emulator().add_fault(pause(Duration::from_secs(30)));
}

/// Once a's page is written and b's stalled, the worker dies and a.md is deleted; a new
/// worker must convert b and take a.html away with its note.
async fn die_after_a_then_delete_it(world: &mut TestApp, account: &str, staged_before: u64) {
    eventually("both pages to be sent", || {
        std::future::ready(world.emulator().stats().calls(STAGE, account) >= staged_before + 2)
    })
    .await;
    world.html(account, "/a.html").await;
    assert_eq!(world.emulator().read_file(account, "/b.html"), None, "b's page is stalled");
    world.workers.pop().expect("the worker").kill().await;
    world.emulator().delete_path(account, "/a.md").expect("delete a");
    world.spawn_worker(worker_settings());
    world.html(account, "/b.html").await;
    eventually("a.html to go with its note", || {
        std::future::ready(world.emulator().read_file(account, "/a.html").is_none())
    })
    .await;
    world.quiet().await;
}

async fn a_note_deleted_after_a_first_pass_died_uncommitted_takes_its_html_along(backend: Backend) {
    let mut world = one_note_at_a_time(backend, "sync-first-uncommitted").await;
    let account = world.emulator().create_account("Ada").account_id;
    world.emulator().put_file(&account, "/a.md", "a").expect("put");
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    // The first pass writes one page, stalls on the other's and dies: no cursor was ever
    // saved, so the next pass lists from the start, where a deleted note simply is not.
    stall_the_second_page(&world, &account);
    world.connect(&account).await;
    die_after_a_then_delete_it(&mut world, &account, 0).await;
}

/// Waits until `/Home.html` is the rendering of `home` in an account whose notes are `notes`.
async fn home_page_among(world: &TestApp, account: &str, home: &str, notes: &[&str]) -> String {
    let index = markdrop::render::FileIndex::new(notes);
    let page = markdrop::render::Page::new("/Home.md", &index);
    let expected = markdrop::render::render(home.as_bytes(), &page).into_bytes();
    let emulator = world.emulator();
    eventually("/Home.html to be its note rendered among the notes there are", || {
        std::future::ready(emulator.read_file(account, "/Home.html").as_ref() == Some(&expected))
    })
    .await;
    String::from_utf8(expected).expect("UTF-8 HTML")
}

async fn a_wikilink_follows_the_note_it_names_as_that_note_appears_moves_and_is_renamed(
    backend: Backend,
) {
    let world = TestApp::with_worker(backend, "sync-wikilinks").await;
    let home = "# Home\n\nSee [[Trip#Packing list]].\n";
    let account =
        world.link_with_files("Ada", &[("/Home.md", home), ("/Notes/Other.md", "# Other\n")]).await;
    let html = home_page_among(&world, &account, home, &["/Home.md", "/Notes/Other.md"]).await;
    assert!(html.contains("<a class=\"wikilink-missing\" title=\"No note named Trip\">"), "{html}");
    world.quiet().await;

    // The note it names is made: the page that links to it is converted again, unedited.
    world.emulator().put_file(&account, "/Notes/Trip.md", "## Packing list\n").expect("put");
    let notes = ["/Home.md", "/Notes/Other.md", "/Notes/Trip.md"];
    let html = home_page_among(&world, &account, home, &notes).await;
    assert!(html.contains("<a href=\"Notes/Trip.html#packing-list\">"), "{html}");
    world.html(&account, "/Notes/Trip.html").await;
    world.quiet().await;
    let uploads = world.uploads(&account);

    // Moved to another folder, the link follows it.
    world.emulator().move_path(&account, "/Notes/Trip.md", "/Archive/Trip.md").expect("move");
    let notes = ["/Home.md", "/Notes/Other.md", "/Archive/Trip.md"];
    let html = home_page_among(&world, &account, home, &notes).await;
    assert!(html.contains("<a href=\"Archive/Trip.html#packing-list\">"), "{html}");
    world.quiet().await;
    assert_eq!(world.uploads(&account) - uploads, 2, "the moved note's page and the linker's");

    // Renamed, it no longer has the name: the link is marked missing again.
    world.emulator().move_path(&account, "/Archive/Trip.md", "/Archive/Journey.md").expect("move");
    let notes = ["/Home.md", "/Notes/Other.md", "/Archive/Journey.md"];
    let html = home_page_among(&world, &account, home, &notes).await;
    assert!(html.contains("wikilink-missing"), "{html}");
    world.html(&account, "/Archive/Journey.html").await;
    world.quiet().await;
    let other = world.emulator().read_file(&account, "/Notes/Other.html").expect("Other's page");
    assert_eq!(other, render("# Other\n", "Other"), "a page that links to nothing is left alone");
}

async fn an_embedded_image_and_a_linked_pdf_are_found_in_any_folder_and_followed_when_they_go(
    backend: Backend,
) {
    let world = TestApp::with_worker(backend, "sync-attachments").await;
    let home = "# Home\n\n![[Pic.png]] and [[Guide.pdf]] and [[backup.zip]]\n";
    let files = [("/Home.md", home), ("/Attachments/Pic.png", "png"), ("/b.zip", "zip")];
    let account = world.link_with_files("Ada", &files).await;
    let html = home_page_among(&world, &account, home, &["/Home.md", "/Attachments/Pic.png"]).await;
    assert!(html.contains("<img src=\"Attachments/Pic.png\" alt=\"Pic.png\">"), "{html}");
    assert!(html.contains("title=\"No file named Guide.pdf\""), "{html}");
    assert!(html.contains("title=\"No note named backup.zip\""), "not a file wikilinks open");
    world.quiet().await;

    // A PDF appears in another folder: the page that names it is converted again, unedited.
    world.emulator().put_file(&account, "/Docs/Guide.pdf", "%PDF").expect("put");
    let files = ["/Home.md", "/Attachments/Pic.png", "/Docs/Guide.pdf"];
    let html = home_page_among(&world, &account, home, &files).await;
    assert!(html.contains("<a href=\"Docs/Guide.pdf\">Guide.pdf</a>"), "{html}");
    world.quiet().await;

    // The image's folder is deleted: the embed falls back to a file beside the note.
    world.emulator().delete_path(&account, "/Attachments").expect("delete");
    let html = home_page_among(&world, &account, home, &["/Home.md", "/Docs/Guide.pdf"]).await;
    assert!(html.contains("<img src=\"Pic.png\" alt=\"Pic.png\">"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_before_note_paths_were_kept_still_resolves_wikilinks_and_is_filled_in() {
    use ::redis::AsyncCommands;
    let world = TestApp::with_worker(Backend::Redis, "sync-paths-backfill").await;
    let home = "# Home\n\nSee [[Trip]].\n";
    let account =
        world.link_with_files("Ada", &[("/Home.md", home), ("/Notes/Trip.md", "# Trip\n")]).await;
    home_page_among(&world, &account, home, &["/Home.md", "/Notes/Trip.md"]).await;
    world.quiet().await;
    // As a store written by an older markdrop: records, but no note paths beside them.
    let client = ::redis::Client::open(crate::support::store::redis_url()).expect("client");
    let mut redis = client.get_multiplexed_async_connection().await.expect("connect");
    let notes = crate::support::store::account_key(&world.prefix, &account, "notes");
    let _: () = redis.del(&notes).await.expect("delete the note paths");

    let home = "# Home\n\nSee [[Trip]], again.\n";
    world.emulator().put_file(&account, "/Home.md", home).expect("edit");
    let html = home_page_among(&world, &account, home, &["/Home.md", "/Notes/Trip.md"]).await;
    assert!(html.contains("<a href=\"Notes/Trip.html\">"), "resolved from the records: {html}");
    world.quiet().await;
    let kept: usize = redis.hlen(&notes).await.expect("hlen");
    assert_eq!(kept, 2, "every record's note path written back");
}

crate::on_every_store!(
    an_embedded_image_and_a_linked_pdf_are_found_in_any_folder_and_followed_when_they_go,
    a_wikilink_follows_the_note_it_names_as_that_note_appears_moves_and_is_renamed,
    a_note_deleted_after_a_first_pass_died_uncommitted_takes_its_html_along,
    a_page_uploaded_by_a_worker_that_died_before_recording_it_goes_with_its_note,
    a_note_deleted_while_the_cursor_was_reset_takes_its_html_along,
    linking_converts_the_notes_already_there_in_subfolders_and_with_any_names,
    a_change_is_converted_and_the_html_is_what_render_makes_of_it,
    twenty_notifications_for_one_change_upload_its_html_once,
    a_change_during_a_pass_is_converted_by_the_next_one,
    eight_worker_tasks_never_list_or_write_one_account_twice_at_once,
    a_worker_killed_mid_pass_is_taken_over_from_the_last_saved_cursor,
    a_stopping_worker_hands_its_account_back_at_once,
    a_reset_cursor_lists_again_without_uploading_unchanged_notes,
    a_rate_limited_account_waits_out_retry_after_before_calling_again,
    server_errors_are_retried_and_a_failing_account_shows_why_and_recovers,
    an_expired_access_token_is_refreshed_and_the_new_one_kept,
    a_revoked_token_unlinks_the_account_and_leaves_it_alone,
    a_deleted_note_takes_its_html_along_unless_someone_edited_the_html,
    a_note_over_the_size_cap_and_one_dropbox_cannot_download_are_skipped_and_reported,
    metrics_count_webhooks_passes_files_and_dropbox_calls_as_work_happens,
);
