//! `markdrop worker` as real processes sharing one Redis (or one Redis Cluster): several at
//! once, one killed with SIGKILL mid-pass, one stopped with SIGTERM mid-pass, a cluster node
//! restarted under them.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use markdrop::emulator::FaultRule;

use crate::support::app::{TestApp, connect};
use crate::support::processes::{
    Processes, exit_of, first_event, lines_of, listening_port, log_lines, markdrop, signal,
};
use crate::support::redis::PrivateCluster;
use crate::support::store::{Backend, open_embedded, shard_key};
use crate::support::wait::eventually;
use crate::support::webhooks::notify;
use crate::support::{APP_KEY, APP_SECRET, SECRET_KEY, scratch_dir};

/// `command` on the world's store: its Redis, or its Redis Cluster, and its key prefix.
fn on_world_store<'c>(command: &'c mut Command, world: &TestApp) -> &'c mut Command {
    command.env("REDIS_URL", &world.redis).env("REDIS_KEY_PREFIX", &world.prefix);
    if matches!(world.backend, Backend::RedisCluster) {
        command.env("REDIS_CLUSTER", "true");
    }
    command
}

/// A `markdrop worker` process on the world's Redis and emulator, with 2-second leases.
fn worker_process(world: &TestApp) -> Child {
    worker_process_with(world, |command| command)
}

/// [`worker_process`], its command changed by `adjust` first.
fn worker_process_with(
    world: &TestApp,
    adjust: impl FnOnce(&mut Command) -> &mut Command,
) -> Child {
    let mut command = markdrop("worker", Some(world.dropbox.url()));
    on_world_store(&mut command, world).env("WORKER_LEASE_SECONDS", "2").env("RUST_LOG", "warn");
    adjust(&mut command).spawn().expect("start markdrop worker")
}

async fn three_worker_processes_share_the_accounts_and_a_sigkilled_one_is_taken_over(
    backend: Backend,
) {
    let world = TestApp::on(backend, "processes-share").await;
    let mut processes = Processes((0..3).map(|_| worker_process(&world)).collect());
    let notes: Vec<(String, String)> =
        (0..8).map(|n| (format!("/notes/n{n}.md"), format!("# Note {n}\n"))).collect();
    let notes: Vec<(&str, &str)> = notes.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let mut accounts = Vec::new();
    for name in ["Ada", "Grace", "Edsger", "Barbara"] {
        accounts.push(world.link_with_files(name, &notes).await);
    }
    for account in &accounts {
        world.html(account, "/notes/n7.html").await;
    }
    world.quiet().await;

    // One account's next upload stalls; whichever process takes it is SIGKILLed mid-pass.
    let victim = &accounts[0];
    world.emulator().add_fault(
        FaultRule::delay("files/upload", 1, Duration::from_secs(60)).for_account(victim),
    );
    let before = world.uploads(victim);
    world.emulator().put_file(victim, "/notes/late.md", "late").expect("put");
    eventually("the upload to stall", || std::future::ready(world.uploads(victim) > before)).await;
    for child in &processes.0 {
        signal(child, "KILL");
    }
    for child in &mut processes.0 {
        assert!(!exit_of(child).await.success(), "killed");
    }
    processes.0.push(worker_process(&world));
    world.html(victim, "/notes/late.html").await;
    world.quiet().await;
    // Resumed from the saved cursor: nothing converted before the kill is uploaded again, and
    // nothing is listed from scratch.
    assert_eq!(world.uploads(victim), before + 2, "the stalled upload and its retry");
    assert_eq!(world.emulator().stats().calls("files/list_folder", victim), 1);

    let stats = world.emulator().stats();
    for account in &accounts {
        assert_eq!(stats.peak_listings(account), 1, "{account} listed concurrently");
        // The emulator still holds the dead process's stalled upload while the new worker
        // writes: that overlap is the crash itself, not two workers.
        if account != victim {
            assert_eq!(stats.peak_writes(account), 1, "{account} written concurrently");
        }
        assert_eq!(stats.calls("files/download", account), 8 + u64::from(account == victim) * 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_file_in_hand_and_hands_the_account_back() {
    let world = TestApp::on(Backend::Redis, "processes-sigterm").await;
    let mut processes = Processes(vec![worker_process(&world)]);
    let account = world.link_with_files("Ada", &[("/a.md", "a")]).await;
    world.html(&account, "/a.html").await;
    world.quiet().await;
    world.emulator().add_fault(
        FaultRule::delay("files/download", 1, Duration::from_secs(2)).for_account(&account),
    );
    let downloads = || world.emulator().stats().calls("files/download", &account);
    let before = downloads();
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    world.emulator().put_file(&account, "/c.md", "c").expect("put");
    eventually("a download to be under way", || std::future::ready(downloads() > before)).await;
    signal(&processes.0[0], "TERM");
    let status = exit_of(&mut processes.0[0]).await;
    assert!(status.success(), "a clean exit: {status}");
    // The file in hand was finished; the account is due again with no lease to wait out.
    let finished = ["/b.html", "/c.html"]
        .iter()
        .filter(|html| world.emulator().read_file(&account, html).is_some())
        .count();
    assert!(finished >= 1, "the downloaded note was uploaded before exiting");
    assert_eq!(world.store.leases_held().await.expect("leases"), 0);
    processes.0.push(worker_process(&world));
    world.html(&account, "/b.html").await;
    world.html(&account, "/c.html").await;
    world.quiet().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_web_app_and_a_worker_in_one_process_and_drains_on_sigterm() {
    let world = TestApp::on(Backend::Redis, "processes-serve").await;
    let (serve, address) = listening_on_world(&world, "serve");
    let mut processes = Processes(vec![serve]);
    let account = world.emulator().create_account("Ada");
    world.emulator().put_file(&account.account_id, "/a.md", "# A").expect("put");
    // Linked as the OAuth callback would (the browser flow has tests of its own).
    let id = markdrop::dropbox::AccountId::parse(&account.account_id).expect("id");
    let tokens = markdrop::dropbox::AccountTokens {
        access_token: account.access_token.clone().into(),
        refresh_token: account.refresh_token.clone().into(),
        expires_at: None,
        path_root: None,
    };
    world.store.save_tokens(&id, &tokens).await.expect("link");
    let body = format!(
        r#"{{"list_folder": {{"accounts": ["{}"]}}, "delta": {{"users": []}}}}"#,
        account.account_id
    );
    let answer = notify(&address, &body).await;
    assert_eq!(answer, 200);
    world.html_matching(&account.account_id, "/a.html", "# A", "a").await;
    world.quiet().await;
    signal(&processes.0[0], "TERM");
    let status = exit_of(&mut processes.0[0]).await;
    assert!(status.success(), "a clean exit: {status}");
}

/// `markdrop serve` on the embedded store in `data_dir`, talking to `dropbox`; returns the
/// process and the port it listens on.
fn serve_embedded(dropbox: &url::Url, data_dir: &std::path::Path) -> (Child, u16) {
    let mut serve = markdrop("serve", Some(dropbox))
        .env("DATA_DIR", data_dir)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start markdrop serve");
    let port = listening_port(&mut serve);
    (serve, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_the_embedded_store_loses_nothing_to_a_kill_9() {
    use markdrop::emulator::{Emulator, EmulatorConfig};
    let mut config = EmulatorConfig::new(APP_KEY, APP_SECRET);
    config.auto_approve = true;
    let dropbox = Emulator::new(config).start(0).await.expect("the emulator");
    let emulator = dropbox.emulator.clone();
    let data_dir = scratch_dir("serve-embedded");
    let account = emulator.create_account("Ada").account_id;
    emulator.sign_in(&account);
    emulator.put_file(&account, "/a.md", "# A").expect("put");
    let (serve, port) = serve_embedded(dropbox.url(), &data_dir);
    let mut processes = Processes(vec![serve]);
    let address = format!("http://127.0.0.1:{port}");
    connect(&address).await;
    let html = |path: &str| emulator.read_file(&account, path);
    eventually("a.html", || std::future::ready(html("/a.html").is_some())).await;

    // A change whose upload stalls; the process is killed while it waits.
    emulator.add_fault(
        FaultRule::delay("files/upload", 1, Duration::from_secs(60)).for_account(&account),
    );
    let uploads = || emulator.stats().calls("files/upload", &account);
    let before = uploads();
    emulator.put_file(&account, "/b.md", "# B").expect("put");
    let body =
        format!(r#"{{"list_folder": {{"accounts": ["{account}"]}}, "delta": {{"users": []}}}}"#);
    assert_eq!(notify(&address, &body).await, 200);
    eventually("b's upload to stall", || std::future::ready(uploads() > before)).await;
    signal(&processes.0[0], "KILL");
    exit_of(&mut processes.0[0]).await;

    // What the killed process left, read straight from its file: the link and b's queue
    // entry survived.
    {
        let left = open_embedded(&data_dir, SECRET_KEY);
        let id = markdrop::dropbox::AccountId::parse(&account).expect("id");
        assert!(left.tokens(&id).await.expect("read").is_some(), "still linked");
        assert_eq!(left.queued().await.expect("read"), vec![id], "b's pass still queued");
    }
    // The same folder, a new process: it resumes from the saved cursor.
    let (serve, _) = serve_embedded(dropbox.url(), &data_dir);
    processes.0.push(serve);
    eventually("b.html after the restart", || std::future::ready(html("/b.html").is_some())).await;
    let from_scratch = emulator.stats().calls("files/list_folder", &account);
    assert_eq!(from_scratch, 1, "the cursor survived: no listing from scratch");
    assert_eq!(
        html("/b.html"),
        Some(markdrop::render::render(b"# B", &markdrop::render::Page::alone("b")).into_bytes())
    );
    assert_eq!(emulator.stats().calls("files/upload", &account), before + 2, "a.html not redone");
    assert_eq!(emulator.stats().calls("oauth2/token", &account), 1, "the link's code only");
    signal(&processes.0[1], "TERM");
    assert!(exit_of(&mut processes.0[1]).await.success());
}

/// A process of `command` whose Redis is not there (nothing listens on port 1).
fn without_redis(command: &str) -> Child {
    markdrop(command, None)
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start markdrop")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_redis_a_worker_keeps_retrying_and_web_answers_503_and_both_stop_cleanly() {
    let mut worker = without_redis("worker");
    let worker_log = log_lines(&mut worker);
    let retrying = first_event(&worker_log, |event| {
        event["message"].as_str().is_some_and(|message| message.contains("trying again"))
    });
    let error = retrying.as_ref().and_then(|event| event["error"].as_str()).unwrap_or_default();
    assert!(
        error.starts_with("the store is unavailable: ") && error.contains("refused"),
        "the worker says it retries, and why: {error:?}"
    );
    assert!(worker.try_wait().expect("wait").is_none(), "and keeps running");

    let mut web = without_redis("web");
    let port = listening_port(&mut web);
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await.expect("GET");
    assert_eq!(ready.status(), 503);

    let mut processes = Processes(vec![worker, web]);
    for child in &processes.0 {
        signal(child, "TERM");
    }
    for child in &mut processes.0 {
        assert!(exit_of(child).await.success(), "a clean exit on SIGTERM");
    }
}

/// `markdrop <subcommand>` (`web` or `serve`) listening on a free port, on the world's Redis
/// and emulator; returns it and its address.
fn listening_on_world(world: &TestApp, subcommand: &str) -> (Child, String) {
    let mut command = markdrop(subcommand, Some(world.dropbox.url()));
    let mut process = on_world_store(&mut command, world)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("start markdrop {subcommand}: {error}"));
    let port = listening_port(&mut process);
    (process, format!("http://127.0.0.1:{port}"))
}

async fn two_web_and_three_worker_processes_on_one_redis_behave_like_one(backend: Backend) {
    let world = TestApp::on(backend, "processes-scale").await;
    let (web_a, a) = listening_on_world(&world, "web");
    let (web_b, b) = listening_on_world(&world, "web");
    let mut processes = Processes(vec![web_a, web_b]);
    processes.0.extend((0..3).map(|_| worker_process(&world)));

    // Each person connects through a different web process.
    let mut accounts = Vec::new();
    for (n, address) in [&a, &b, &a, &b].into_iter().enumerate() {
        let account = world.emulator().create_account(&format!("Person {n}")).account_id;
        for note in 0..5 {
            world.emulator().put_file(&account, &format!("/n{note}.md"), "# note").expect("put");
        }
        world.emulator().sign_in(&account);
        connect(address).await;
        accounts.push(account);
    }
    for account in &accounts {
        world.html(account, "/n4.html").await;
    }
    // Changes, with their notifications spread over both web processes.
    for round in 0..3 {
        for (n, account) in accounts.iter().enumerate() {
            world.emulator().put_file(account, "/n0.md", format!("round {round}")).expect("put");
            let body = format!(
                r#"{{"list_folder": {{"accounts": ["{account}"]}}, "delta": {{"users": []}}}}"#
            );
            let web = if (n + round) % 2 == 0 { &a } else { &b };
            assert_eq!(notify(web, &body).await, 200);
        }
    }
    for account in &accounts {
        world.html_matching(account, "/n0.html", "round 2", "n0").await;
    }
    world.quiet().await;
    let stats = world.emulator().stats();
    for account in &accounts {
        assert_eq!(stats.peak_listings(account), 1, "{account} listed concurrently");
        assert_eq!(stats.peak_writes(account), 1, "{account} written concurrently");
        assert_eq!(stats.calls("files/list_folder", account), 1, "one full listing");
    }
    // Any web process answers for every worker.
    eventually("the workers' counts on /metrics", || async {
        let metrics = reqwest::get(format!("{b}/metrics")).await.expect("GET");
        let text = metrics.text().await.expect("text");
        // 20 notes, then at least the last round's 4 changes (earlier rounds may coalesce).
        text.lines()
            .find_map(|line| line.strip_prefix("markdrop_files_total{outcome=\"converted\"} "))
            .and_then(|count| count.parse::<u64>().ok())
            .is_some_and(|count| count >= 24)
    })
    .await;
    for child in &processes.0 {
        signal(child, "TERM");
    }
    for child in &mut processes.0 {
        assert!(exit_of(child).await.success(), "a clean exit on SIGTERM");
    }
}

/// A process's standard error as it comes, for a test to wait on a line.
struct Log {
    lines: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl Log {
    fn of(child: &mut Child) -> Log {
        let stderr = child.stderr.take().expect("stderr piped");
        Log { lines: lines_of(stderr), seen: String::new() }
    }

    fn contains(&mut self, needle: &str) -> bool {
        self.seen.extend(self.lines.try_iter().map(|line| line + "\n"));
        self.seen.contains(needle)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_worker_s_late_upload_is_repaired_and_it_writes_nothing_once_resumed() {
    use markdrop::emulator::Gate;
    let world = TestApp::on(Backend::Redis, "processes-frozen").await;
    let mut first = worker_process_with(&world, |command| command.stderr(Stdio::piped()));
    let mut first_log = Log::of(&mut first);
    let mut processes = Processes(vec![first]);
    let account = world.link_with_files("Ada", &[("/a.md", "version 1")]).await;
    world.html_matching(&account, "/a.html", "version 1", "a").await;
    world.quiet().await;

    // The first worker lists version 2 of a and a new b together (its listing is held until
    // both are there), so it commits their pages in one batch. The batch reaches Dropbox and
    // is held there, and the worker is frozen while it waits (SIGSTOP: a VM pause, a long
    // partition).
    let listed = Gate::default();
    let listing = FaultRule::held("files/list_folder/continue", 1, &listed);
    world.emulator().add_fault(listing.for_account(&account));
    let gate = Gate::default();
    world.emulator().add_fault(FaultRule::held(BATCH, 1, &gate).for_account(&account));
    let batches = || world.emulator().stats().calls(BATCH, &account);
    let before = batches();
    world.emulator().put_file(&account, "/a.md", "version 2").expect("edit");
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    listed.open();
    eventually("the batch with version 2 to be in flight", || {
        std::future::ready(batches() > before)
    })
    .await;
    signal(&processes.0[0], "STOP");

    // Its lease runs out; a second worker takes the account and converts version 3.
    processes.0.push(worker_process(&world));
    world.emulator().put_file(&account, "/a.md", "version 3").expect("edit");
    world.html_matching(&account, "/a.html", "version 3", "a").await;
    world.html_matching(&account, "/b.html", "b", "b").await;

    // Now the held upload lands: the page shows version 2, older than its note ...
    let landed = world.emulator().stats().succeeded(BATCH, &account);
    gate.open();
    eventually("the late batch to land", || {
        std::future::ready(world.emulator().stats().succeeded(BATCH, &account) > landed)
    })
    .await;
    // ... until the second worker, told of the change, recognizes one of markdrop's older
    // pages by its seal and writes the latest again.
    world.html_matching(&account, "/a.html", "version 3", "a").await;
    world.quiet().await;
    signal(&processes.0[1], "TERM");
    assert!(exit_of(&mut processes.0[1]).await.success(), "the second worker stops cleanly");

    // The first worker resumes. Its lease is long gone: it writes nothing more.
    let settled = world.uploads(&account);
    signal(&processes.0[0], "CONT");
    eventually("the resumed worker to find its lease gone", || {
        std::future::ready(first_log.contains("lost the lease"))
    })
    .await;
    world.quiet().await;
    assert_eq!(world.uploads(&account), settled, "the resumed worker wrote nothing");
    assert_eq!(world.emulator().read_file(&account, "/a.html"), Some(render("version 3", "a")));
    assert_eq!(world.emulator().read_file(&account, "/b.html"), Some(render("b", "b")));
    signal(&processes.0[0], "TERM");
    assert!(exit_of(&mut processes.0[0]).await.success(), "the first worker stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sigkilled_mid_batch_leaves_pages_the_next_one_recognises() {
    use markdrop::emulator::Gate;
    let world = TestApp::on(Backend::Redis, "processes-batch-kill").await;
    // One note read at a time, so a's page is committed alone, in the first batch.
    let first = worker_process_with(&world, |command| command.env("WORKER_READ_AHEAD", "1"));
    let mut processes = Processes(vec![first]);
    let account = world.link_with_files("Ada", &[("/a.md", "version 1")]).await;
    world.html_matching(&account, "/a.html", "version 1", "a").await;
    world.quiet().await;
    let initial = world.uploads(&account);

    // A pass lists a's new version and a new b together (its listing is held until both are
    // there); Dropbox holds the batch with a's page, and the worker is killed.
    let listed = Gate::default();
    let listing = FaultRule::held("files/list_folder/continue", 1, &listed);
    world.emulator().add_fault(listing.for_account(&account));
    let gate = Gate::default();
    world.emulator().add_fault(FaultRule::held(BATCH, 1, &gate).for_account(&account));
    world.emulator().put_file(&account, "/a.md", "version 2").expect("edit");
    world.emulator().put_file(&account, "/b.md", "b").expect("put");
    listed.open();
    let batches = || world.emulator().stats().calls(BATCH, &account);
    eventually("the batch to be in flight", || std::future::ready(batches() == 1)).await;
    signal(&processes.0[0], "KILL");
    assert!(!exit_of(&mut processes.0[0]).await.success(), "killed");

    // The batch lands after its worker died: a's page is version 2, not recorded as done.
    let landed = world.emulator().stats().succeeded(BATCH, &account);
    gate.open();
    eventually("the batch to land", || {
        std::future::ready(world.emulator().stats().succeeded(BATCH, &account) > landed)
    })
    .await;
    assert_eq!(world.emulator().read_file(&account, "/a.html"), Some(render("version 2", "a")));
    // The person edits a again before anyone looks.
    world.emulator().put_file(&account, "/a.md", "version 3").expect("edit");
    let downloads = || world.emulator().stats().calls("files/download", &account);
    let read_before = downloads();

    // The next worker knows the landed page as markdrop's from the intent recorded before the
    // commit: it writes version 3 over it without reading the page's seal, and b's page too.
    processes.0.push(worker_process(&world));
    world.html_matching(&account, "/a.html", "version 3", "a").await;
    world.html_matching(&account, "/b.html", "b", "b").await;
    world.quiet().await;
    assert_eq!(downloads() - read_before, 2, "a.md and b.md; a.html was not read");
    let status = world.status(&account).await;
    assert!(status.kept.is_empty(), "no page taken for the person's: {status:?}");
    assert_eq!(world.uploads(&account), initial + 3, "a twice (2, then 3) and b, once each");
}

/// Where a pass with several pages commits them.
const BATCH: &str = "files/upload_session/finish_batch_v2";

fn render(markdown: &str, stem: &str) -> Vec<u8> {
    markdrop::render::render(markdown.as_bytes(), &markdrop::render::Page::alone(stem)).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_restarted_holds_up_only_its_own_accounts_which_resume_when_it_is_back() {
    let mut cluster = PrivateCluster::start("processes-cluster-node");
    let world = TestApp::builder("processes-cluster-node")
        .on(Backend::RedisCluster)
        .on_redis_at(&cluster.url())
        .start()
        .await;
    let mut processes = Processes(vec![worker_process(&world)]);
    // People connect until one's keys are on the node that will stop and one's elsewhere.
    let node_of = |account: &str| cluster.node_of(&shard_key(&world.prefix, account, "tokens"));
    let mut stopped = None;
    let mut elsewhere = None;
    for n in 0.. {
        let account = world.link_with_files(&format!("Person {n}"), &[("/n.md", "# n")]).await;
        world.html(&account, "/n.html").await;
        let node = node_of(&account);
        match stopped {
            None => stopped = Some((account, node)),
            Some((_, down)) if node != down && elsewhere.is_none() => elsewhere = Some(account),
            _ => {}
        }
        if elsewhere.is_some() {
            break;
        }
    }
    let ((held_up, node), going_on) = (stopped.expect("one"), elsewhere.expect("another"));
    world.quiet().await;

    // The worker that converts from here on starts while the node is down (a deploy, a
    // scale-out): it must find its way to the shards that answer.
    signal(&processes.0[0], "TERM");
    assert!(exit_of(&mut processes.0[0]).await.success(), "a clean exit on SIGTERM");
    cluster.stop(node);
    processes.0 = vec![worker_process(&world)];
    world.emulator().put_file(&held_up, "/n.md", "while its node was down").expect("put");
    world.emulator().put_file(&going_on, "/n.md", "while another node was down").expect("put");
    world.html_matching(&going_on, "/n.html", "while another node was down", "n").await;
    assert!(
        world.emulator().read_file(&held_up, "/n.html").is_some_and(|page| {
            !String::from_utf8_lossy(&page).contains("while its node was down")
        }),
        "an account whose keys are out of reach waits"
    );

    cluster.restart(node);
    // Dropbox sends the refused notification again; the emulator's retries back off, so the
    // test sends it now rather than wait for the next one.
    let body =
        format!(r#"{{"list_folder": {{"accounts": ["{held_up}"]}}, "delta": {{"users": []}}}}"#);
    assert_eq!(notify(&world.address, &body).await, 200, "the node is back");
    world.html_matching(&held_up, "/n.html", "while its node was down", "n").await;
    for child in &processes.0 {
        signal(child, "TERM");
    }
    for child in &mut processes.0 {
        assert!(exit_of(child).await.success(), "a clean exit on SIGTERM");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_whose_shard_count_differs_from_the_keys_stops_at_once_naming_the_setting() {
    let world = TestApp::on(Backend::Redis, "processes-other-shards").await;
    world.store.ping().await.expect("the app's store lays its keys out");
    for subcommand in ["worker", "web"] {
        let mut command = markdrop(subcommand, Some(world.dropbox.url()));
        let mut process = on_world_store(&mut command, &world)
            .env("REDIS_SHARDS", "16")
            .env("PORT", "0")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start markdrop");
        let status = exit_of(&mut process).await;
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut process.stderr.take().expect("piped"), &mut stderr)
            .expect("stderr");
        assert_eq!(status.code(), Some(1), "{subcommand}: {stderr}");
        assert!(
            stderr.contains("laid out in shards=1024 but REDIS_SHARDS asks for 16"),
            "{subcommand} says what to set: {stderr}"
        );
    }
}

/// The tests that run `markdrop` processes on a shared store, on one Redis and on a cluster.
macro_rules! on_each_redis {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::store::Backend::Redis).await
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::store::Backend::RedisCluster).await
                }
            )*
        }
    };
}

on_each_redis!(
    three_worker_processes_share_the_accounts_and_a_sigkilled_one_is_taken_over,
    two_web_and_three_worker_processes_on_one_redis_behave_like_one,
);
