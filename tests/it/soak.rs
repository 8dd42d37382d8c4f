//! The soak test: many accounts with notes edited, created and deleted continuously, and pages
//! edited by hand, while the emulated Dropbox answers with 5xx, 429s with Retry-After and random
//! latency, resets cursors and expires tokens; worker processes are SIGKILLed and restarted
//! every couple of seconds, and frozen (SIGSTOP) past their lease, then resumed; and Redis
//! (appendonly) is restarted once. Everything runs as real processes on loopback: the emulator
//! in this process, `markdrop web` and `markdrop worker` as children, a Redis of the test's own.
//!
//! At the end every note's `.html` is `render` of its latest content, unless a person edited
//! it: a page edited by hand is exactly as they left it, whatever happened to its note after;
//! no other `.html` of a deleted note remains; and Dropbox never saw two listings or two writes
//! at once for one account. The uploads per content change are printed.
//!
//! CI runs a small form (12 accounts × 5 notes, 8 s of churn). The long form, by hand:
//! `SOAK_ACCOUNTS=200 SOAK_FILES=20 SOAK_SECONDS=120 scripts/test soak -- --nocapture`
//! (any `cargo test` filter works after `scripts/test`).

use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

use markdrop::emulator::{Emulator, EmulatorConfig, FaultRule};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::support::processes::{Processes, exit_of, markdrop, signal};
use crate::support::redis::PrivateRedis;
use crate::support::store::{account_key, open_redis, shard_key};
use crate::support::wait::{Patience, eventually};
use crate::support::{APP_KEY, APP_SECRET, SECRET_KEY, unique_prefix};

fn setting(var: &str, default: u64) -> u64 {
    std::env::var(var).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// What a note should have become, by account and `.md` path.
#[derive(Default)]
struct Expected {
    /// Notes that exist, with their latest content.
    notes: BTreeMap<(String, String), String>,
    /// Pages a person edited by hand (by account and `.html` path): each must stay exactly as
    /// edited, whether its note changes or goes.
    hand_edited: BTreeMap<(String, String), String>,
    /// Content changes made, to compare the uploads with.
    changes: u64,
}

fn html_of(md: &str) -> String {
    format!("{}.html", &md[..md.len() - 3])
}

fn stem_of(md: &str) -> &str {
    let name = md.rsplit('/').next().unwrap_or(md);
    &name[..name.len() - 3]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_faults_crashes_and_a_redis_restart_every_note_ends_up_converted_exactly_once_at_a_time()
 {
    let accounts_wanted = setting("SOAK_ACCOUNTS", 12) as usize;
    let files = setting("SOAK_FILES", 5) as usize;
    let churn = Duration::from_secs(setting("SOAK_SECONDS", 8));
    let mut redis = PrivateRedis::start("soak-redis");
    let redis_url = redis.url();
    let prefix = unique_prefix("soak");

    // The web process's port is chosen first: the emulator sends its webhooks there.
    let web_port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut config = EmulatorConfig::new(APP_KEY, APP_SECRET);
    config.webhook_url = Some(format!("http://127.0.0.1:{web_port}/webhook").parse().expect("url"));
    config.webhook_batch_window = Duration::from_millis(20);
    config.webhook_retry_base = Duration::from_millis(100);
    let dropbox = Emulator::new(config).start(0).await.expect("the emulator");
    let emulator = dropbox.emulator.clone();

    let web = || {
        markdrop("web", Some(dropbox.url()))
            .env("REDIS_URL", &redis_url)
            .env("REDIS_KEY_PREFIX", &prefix)
            .env("HOST", "127.0.0.1")
            .env("PORT", web_port.to_string())
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("start markdrop web")
    };
    let worker = || -> Child {
        markdrop("worker", Some(dropbox.url()))
            .env("REDIS_URL", &redis_url)
            .env("REDIS_KEY_PREFIX", &prefix)
            .env("WORKER_LEASE_SECONDS", "2")
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("start markdrop worker")
    };
    let mut processes = Processes(vec![web()]);
    let mut workers: Vec<Child> = (0..2).map(|_| worker()).collect();

    // Accounts with their notes, linked as the OAuth callback links them (the browser flow has
    // tests of its own): tokens stored, first pass queued.
    let mut expected = Expected::default();
    let mut accounts = Vec::new();
    let store = open_redis(&redis_url, &prefix, SECRET_KEY);
    for n in 0..accounts_wanted {
        let linked = emulator.create_account(&format!("Person {n}"));
        for f in 0..files {
            let path = format!("/notes/{}/n{f}.md", f % 3);
            let content = format!("# Note {f}\n\nversion 0 of account {n}\n");
            emulator.put_file(&linked.account_id, &path, content.clone()).expect("put");
            expected.notes.insert((linked.account_id.clone(), path), content);
        }
        let id = markdrop::dropbox::AccountId::parse(&linked.account_id).expect("id");
        let tokens = markdrop::dropbox::AccountTokens {
            access_token: linked.access_token.into(),
            refresh_token: linked.refresh_token.into(),
            expires_at: None,
            path_root: None,
        };
        store.save_tokens(&id, &tokens).await.expect("link");
        store.enqueue(&[id]).await.expect("queue");
        accounts.push(linked.account_id);
    }

    // Churn: edits, new and deleted notes, hand-edited pages, faults, crashes, frozen workers.
    let started = Instant::now();
    let mut next_kill = started + Duration::from_secs(2);
    let mut next_freeze = started + Duration::from_secs(1);
    // The frozen worker's pid, and when it resumes: past its 2-second lease, so another worker
    // takes its account over while its requests may still be on the wire.
    let mut frozen: Option<(u32, Instant)> = None;
    let mut freezes = 0;
    let mut redis_restarted = false;
    let mut version = 0u64;
    let mut killed = 0;
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut redis_client = redis::Client::open(redis_url.as_str()).expect("a Redis client");
    while started.elapsed() < churn {
        version += 1;
        let account = accounts.choose(&mut rng).expect("accounts").clone();
        let roll: f64 = rng.r#gen();
        let existing: Vec<String> = expected
            .notes
            .keys()
            .filter(|(owner, _)| *owner == account)
            .map(|(_, path)| path.clone())
            .collect();
        if roll < 0.65 || existing.is_empty() {
            // An edit, or a new note.
            let path = if roll < 0.55 && !existing.is_empty() {
                existing.choose(&mut rng).expect("a note").clone()
            } else {
                format!("/notes/new/v{version}.md")
            };
            let content = format!("# Edit {version}\n\n- [x] changed\n");
            emulator.put_file(&account, &path, content.clone()).expect("edit");
            expected.notes.insert((account.clone(), path), content);
            expected.changes += 1;
        } else if roll < 0.75 {
            // A page edited by hand, once markdrop is done with it.
            let path = existing.choose(&mut rng).expect("a note").clone();
            let html = html_of(&path);
            if !expected.hand_edited.contains_key(&(account.clone(), html.clone()))
                && settled_page(&emulator, &mut redis_client, &prefix, &account, &path, &expected)
                    .await
            {
                let mine = format!("<p>mine {version}</p>");
                emulator.put_file(&account, &html, mine.clone()).expect("hand edit");
                expected.hand_edited.insert((account.clone(), html), mine);
            }
        } else if roll < 0.85 {
            // A deleted note.
            let path = existing.choose(&mut rng).expect("a note").clone();
            emulator.delete_path(&account, &path).expect("delete");
            expected.notes.remove(&(account.clone(), path));
        } else {
            // Dropbox misbehaving, for this account or for everyone.
            match rng.gen_range(0..5) {
                0 => emulator.add_fault(FaultRule::status("files/download", 1, 503, "busy")),
                1 => {
                    emulator.add_fault(FaultRule::status("files/list_folder/continue", 1, 500, "x"))
                }
                2 => emulator.add_fault(FaultRule::rate_limited("files/upload", 1, 1)),
                3 => emulator.reset_cursors(&account),
                _ => emulator.expire_access_tokens(&account),
            }
            let latency = Duration::from_millis(rng.gen_range(5..60));
            emulator.add_fault(FaultRule::delay("files/upload", 1, latency));
        }
        if let Some((pid, until)) = frozen
            && Instant::now() >= until
        {
            if let Some(worker) = workers.iter().find(|worker| worker.id() == pid) {
                signal(worker, "CONT");
            }
            frozen = None;
            next_freeze = Instant::now() + Duration::from_secs(2);
        } else if frozen.is_none() && Instant::now() >= next_freeze {
            let victim = workers.choose(&mut rng).expect("workers");
            signal(victim, "STOP");
            frozen = Some((victim.id(), Instant::now() + Duration::from_millis(2500)));
            freezes += 1;
        }
        if Instant::now() >= next_kill {
            // A worker dies without warning (a frozen one too); a new one starts.
            let victim = rng.gen_range(0..workers.len());
            let mut dead = workers.swap_remove(victim);
            signal(&dead, "KILL");
            let _ = exit_of(&mut dead).await;
            if frozen.is_some_and(|(pid, _)| pid == dead.id()) {
                frozen = None;
            }
            workers.push(worker());
            killed += 1;
            next_kill = Instant::now() + Duration::from_secs(2);
        }
        if !redis_restarted && started.elapsed() >= churn / 2 {
            redis.stop();
            redis.restart();
            redis_restarted = true;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    if let Some((pid, _)) = frozen
        && let Some(worker) = workers.iter().find(|worker| worker.id() == pid)
    {
        signal(worker, "CONT");
    }

    // Let it settle: nothing on its way, nothing queued, nothing leased, twice in a row.
    let settling = Patience { within: Duration::from_secs(120), every: Duration::from_millis(50) };
    settling
        .wait_for("markdrop to settle", || async {
            store.queued().await.map(|q| q.is_empty()).unwrap_or(false)
                && store.leases_held().await.map(|n| n == 0).unwrap_or(false)
                && emulator.stats().webhooks_pending() == 0
                && store.queued().await.map(|q| q.is_empty()).unwrap_or(false)
        })
        .await;
    eventually("every note converted, unless its page was edited by hand", || {
        let all = expected.notes.iter().all(|((account, path), content)| {
            let html = html_of(path);
            let page = emulator.read_file(account, &html);
            match expected.hand_edited.get(&(account.clone(), html)) {
                Some(mine) => page.as_deref() == Some(mine.as_bytes()),
                None => {
                    let rendered = markdrop::render::render(
                        content.as_bytes(),
                        &markdrop::render::Page::alone(stem_of(path)),
                    );
                    page == Some(rendered.into_bytes())
                }
            }
        });
        std::future::ready(all)
    })
    .await;

    for ((account, html), mine) in &expected.hand_edited {
        let page = emulator.read_file(account, html);
        assert_eq!(page.as_deref(), Some(mine.as_bytes()), "{html}, edited by hand, was replaced");
    }
    for account in &accounts {
        for path in emulator.file_paths(account) {
            let Some(md) = path.strip_suffix(".html").map(|stem| format!("{stem}.md")) else {
                continue;
            };
            if expected.notes.contains_key(&(account.clone(), md.clone())) {
                continue;
            }
            // Only a page someone edited may outlive its note, and then as they left it.
            assert!(
                expected.hand_edited.contains_key(&(account.clone(), path.clone())),
                "{path} outlived its note without being edited"
            );
        }
    }
    let stats = emulator.stats();
    for account in &accounts {
        assert!(stats.peak_listings(account) <= 1, "{account} listed twice at once");
        assert!(stats.peak_writes(account) <= 1, "{account} written twice at once");
    }
    let uploads = stats.total_calls("files/upload");
    let ideal = (accounts_wanted * files) as u64 + expected.changes;
    println!(
        "soak: {accounts_wanted} accounts × {files} notes, {:?} of churn: {} content changes, \
         {uploads} uploads for an ideal of {ideal} ({:.2} per change), {} pages edited by hand, \
         {} workers killed, {} frozen",
        churn,
        expected.changes,
        uploads as f64 / ideal as f64,
        expected.hand_edited.len(),
        killed,
        freezes,
    );

    for child in workers.iter().chain(&processes.0) {
        signal(child, "TERM");
    }
    for child in workers.iter_mut().chain(processes.0.iter_mut()) {
        let _ = exit_of(child).await;
    }
    processes.0.clear();
}

/// Whether a person could edit the note's page now without racing markdrop: the page is the
/// rendering of the latest note, no pass holds or awaits the account, and no write for it is
/// on its way to Dropbox. (A page edited while a pass that listed before the edit is about to
/// write it is lost to the upload: uploads overwrite, and that window is the product's.)
async fn settled_page(
    emulator: &Emulator,
    redis: &mut redis::Client,
    prefix: &str,
    account: &str,
    path: &str,
    expected: &Expected,
) -> bool {
    use redis::AsyncCommands;
    let content = &expected.notes[&(account.to_owned(), path.to_owned())];
    let rendered =
        markdrop::render::render(content.as_bytes(), &markdrop::render::Page::alone(stem_of(path)))
            .into_bytes();
    if emulator.read_file(account, &html_of(path)) != Some(rendered) {
        return false;
    }
    let Ok(mut connection) = redis.get_multiplexed_async_connection().await else { return false };
    let leased: bool =
        connection.exists(account_key(prefix, account, "lease")).await.unwrap_or(true);
    let queued: Option<f64> =
        connection.zscore(shard_key(prefix, account, "ready"), account).await.unwrap_or(Some(0.0));
    !leased && queued.is_none() && emulator.writes_in_flight(account) == 0
}
