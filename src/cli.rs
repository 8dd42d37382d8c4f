//! What the subcommands do once `main` has parsed their arguments and read the settings.

mod settings_on_disk;

use std::io::{self, Read, Write};
use std::path::Path;

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::config::{RedisSettings, Settings, StoreSettings};
use crate::dropbox::DropboxClient;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::render;
use crate::store::Store;
use crate::web::Application;
use crate::worker::Worker;

/// `markdrop render [FILE] [--output OUT] [--root DIR]`: the document the worker would upload for
/// FILE (or standard input), written to OUT or standard output. Wikilinks resolve against the
/// files under DIR (FILE's folder by default; none for standard input), with DIR as the root of
/// the account. FILE is rendered with the `markdrop.toml` settings of its folder and those
/// above it, up to DIR (the file system's root by default); standard input with none. A note
/// its settings exclude, or whose front matter says `markdrop: false`, is an error: nothing is
/// written.
pub fn render_file(
    file: Option<&Path>,
    output: Option<&Path>,
    root: Option<&Path>,
) -> anyhow::Result<()> {
    let document = match file {
        Some(path) => {
            let markdown =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let file = std::fs::canonicalize(path)
                .with_context(|| format!("cannot find {}", path.display()))?;
            let root = match root {
                Some(root) => Some(
                    std::fs::canonicalize(root)
                        .with_context(|| format!("cannot find the folder {}", root.display()))?,
                ),
                None => None,
            };
            let (page_path, index) = page_in_folder(&file, root.as_deref())?;
            // Settings are looked for up to the root, or the file system's own without one.
            let top = root.unwrap_or_else(|| file.ancestors().last().unwrap_or(&file).to_owned());
            let look = settings_on_disk::read_settings(&file, &top)?;
            if render::front_matter(&markdown).opt_out {
                anyhow::bail!(
                    "{} says \"markdrop: false\" in its front matter; nothing rendered",
                    path.display()
                );
            }
            render::render_with(&markdown, &render::Page::new(&page_path, &index), &look.look())
                .document
        }
        None => {
            let mut markdown = Vec::new();
            io::stdin().read_to_end(&mut markdown).context("cannot read standard input")?;
            let index = match root {
                Some(root) => folder_index(root)?,
                None => render::FileIndex::default(),
            };
            render::render(&markdown, &render::Page::new("", &index))
        }
    };
    if let Some(output) = output {
        return std::fs::write(output, document)
            .with_context(|| format!("cannot write {}", output.display()));
    }
    let mut stdout = io::stdout().lock();
    match stdout.write_all(document.as_bytes()).and_then(|()| stdout.flush()) {
        // `markdrop render notes.md | head` closes the pipe early; that is not a failure.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write to standard output"),
    }
}

/// FILE's display path from `root` (FILE's folder by default) as the worker would see it in the
/// account (`/Trips/Lisbon.md`), and the index of every file under `root` (both canonical).
fn page_in_folder(file: &Path, root: Option<&Path>) -> anyhow::Result<(String, render::FileIndex)> {
    let root = match root {
        Some(root) => root.to_path_buf(),
        None => file.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let inside = file.strip_prefix(&root).with_context(|| {
        format!("{} is not inside the folder {}", file.display(), root.display())
    })?;
    Ok((display_path(inside), folder_index(&root)?))
}

/// Every note and attachment under `root`, by display path from it: the files the worker
/// records for an account, so wikilinks resolve here as they would in Dropbox.
fn folder_index(root: &Path) -> anyhow::Result<render::FileIndex> {
    let mut paths = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .with_context(|| format!("cannot list the folder {}", folder.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", folder.display()))?;
            let kind =
                entry.file_type().with_context(|| format!("cannot read {:?}", entry.path()))?;
            if kind.is_dir() {
                folders.push(entry.path());
            } else if let (true, Ok(inside)) = (kind.is_file(), entry.path().strip_prefix(root)) {
                let path = display_path(inside);
                if crate::sync::is_markdown(&path) || render::is_attachment(&path) {
                    paths.push(path);
                }
            }
        }
    }
    Ok(render::FileIndex::new(paths))
}

/// `Trips/Lisbon.md` → `/Trips/Lisbon.md`, `/`-separated on every system.
fn display_path(inside: &Path) -> String {
    inside.components().map(|part| format!("/{}", part.as_os_str().to_string_lossy())).collect()
}

/// `markdrop web`: serves the web app on the shared Redis (`redis`, from
/// [`Settings::shared_redis`]) until SIGTERM or Ctrl-C.
pub fn run_web(settings: &Settings, redis: &StoreSettings) -> anyhow::Result<()> {
    block_on(async {
        let store = open_store(settings, redis)?;
        store.check_layout().await?;
        let app = Application::build(settings, store)
            .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
        tracing::info!(port = app.port(), base_url = %settings.base_url, "markdrop web is listening");
        app.run_until(shutdown_signal()).await.context("the web server failed")
    })
}

/// `markdrop worker`: syncs accounts from the shared Redis (`redis`, from
/// [`Settings::shared_redis`]) until SIGTERM or Ctrl-C.
pub fn run_worker(settings: &Settings, redis: &StoreSettings) -> anyhow::Result<()> {
    block_on(async {
        let store = open_store(settings, redis)?;
        store.check_layout().await?;
        let worker = Worker::new(store, dropbox_client(settings)?, settings.worker.clone());
        tracing::info!(accounts = settings.worker.accounts, "markdrop worker is running");
        worker.run(shutdown_signal()).await;
        Ok(())
    })
}

/// `markdrop migrate [--from-prefix P0] [--delete-old]`: moves the keys under `from_prefix`
/// (default: the new `REDIS_KEY_PREFIX`) from the layout before shards to `redis`'s, and prints
/// what it moved in one line.
pub fn run_migrate(
    redis: &RedisSettings,
    from_prefix: Option<&str>,
    delete_old: bool,
) -> anyhow::Result<()> {
    let from_prefix = from_prefix.unwrap_or(&redis.key_prefix);
    let report =
        block_on(async { Ok(crate::store::migrate_redis(redis, from_prefix, delete_old).await?) })?;
    println!("markdrop migrate: {report}");
    Ok(())
}

/// `markdrop serve`: the web app and a worker in one process, until SIGTERM or Ctrl-C; both
/// drain before it exits. On Redis when `REDIS_URL` is set, otherwise on the embedded store in
/// `DATA_DIR`.
pub fn run_serve(settings: &Settings) -> anyhow::Result<()> {
    block_on(async {
        let store = open_store(settings, &settings.store)?;
        store.check_layout().await?;
        serve(settings, store, shutdown_signal()).await
    })
}

/// The web app on `HOST:PORT` and a worker on `store` until `shutdown` resolves; both drain
/// before it returns.
pub async fn serve(
    settings: &Settings,
    store: Store,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind((settings.host, settings.port))
        .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
    serve_on(listener, settings, store, shutdown).await
}

/// [`serve`] on a listener bound already.
pub async fn serve_on(
    listener: std::net::TcpListener,
    settings: &Settings,
    store: Store,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let worker = Worker::new(store.clone(), dropbox_client(settings)?, settings.worker.clone());
    let app = Application::build_on(listener, settings, store).context("cannot serve")?;
    tracing::info!(port = app.port(), base_url = %settings.base_url, "markdrop is listening and syncing");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let mut web = std::pin::pin!(app.run_until(until_stopped()));
    let mut syncing = std::pin::pin!(worker.run(until_stopped()));
    let worker_ended = tokio::select! {
        () = shutdown => false,
        // The web server ending on its own is a failure: stop syncing too rather than run
        // half a product.
        served = &mut web => {
            let _ = stop.send(true);
            syncing.await;
            return served.context("the web server failed");
        }
        // The worker returns only once told to stop, which nothing has done yet.
        () = &mut syncing => true,
    };
    let _ = stop.send(true);
    if worker_ended {
        return web.await.context("the web server failed");
    }
    let (served, ()) = tokio::join!(web, syncing);
    served.context("the web server failed")
}

/// The store `store` chooses, sealing with `SECRET_KEY`; a failure says which setting to check.
fn open_store(settings: &Settings, store: &StoreSettings) -> anyhow::Result<Store> {
    Store::open(store, &settings.secret_key).with_context(|| match store {
        StoreSettings::Redis { .. } => "cannot use REDIS_URL".to_owned(),
        StoreSettings::Embedded { data_dir } => format!(
            "cannot open the store in {} (DATA_DIR); is another markdrop using it?",
            data_dir.display()
        ),
    })
}

fn dropbox_client(settings: &Settings) -> anyhow::Result<DropboxClient> {
    DropboxClient::new(&settings.dropbox).context("cannot set up the Dropbox client")
}

/// `markdrop emulator`: serves the Dropbox emulator until Ctrl-C or SIGTERM, with `dir` as one
/// account's Dropbox when given. Prints the control secret when it made one up (on standard
/// output, for the person who started it; never in a log line), and a one-time owner link for
/// the browser that is to click "Allow".
pub fn run_emulator(config: EmulatorConfig, port: u16, dir: Option<&Path>) -> anyhow::Result<()> {
    block_on(async {
        let secret_given = config.control_secret.is_some();
        if config.auto_approve {
            tracing::warn!(
                "--auto-approve: anyone who can reach the emulator gets a code for the signed-in \
                 account; use it for tests only"
            );
        }
        let emulator = Emulator::new(config);
        let mirror = match dir {
            Some(dir) => {
                let account = emulator.create_account("Dropbox User").account_id;
                emulator.sign_in(&account);
                let mirror = emulator
                    .mirror_folder(&account, dir)
                    .with_context(|| format!("cannot use {} as a Dropbox", dir.display()))?;
                println!("Account {account} is the folder {}", dir.display());
                Some(mirror)
            }
            None => None,
        };
        let running = emulator
            .start(port)
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        println!("Dropbox emulator listening on {}", running.url());
        if !secret_given {
            println!(
                "Control secret (Authorization: Bearer …, for /_emulator/): {}",
                running.emulator.control_secret().expose_secret()
            );
        }
        println!(
            "Owner link (open once in the browser that is to Allow): {}",
            running.owner_link(None)
        );
        shutdown_signal().await;
        running.stop().await;
        if let Some(mirror) = mirror {
            mirror.stop();
        }
        Ok(())
    })
}

/// Runs a subcommand's work on a new multi-threaded runtime.
pub fn block_on<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(work)
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one (how platforms stop a process).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
