//! `markdrop demo`: the whole product on one machine, no Dropbox account needed.
//!
//! The Dropbox emulator plays Dropbox, with a folder on disk as the person's Dropbox; markdrop
//! runs as `serve` does, on the embedded store, with an app key, app secret and `SECRET_KEY`
//! made up for the run. Both listen on 127.0.0.1 only. Saving a `.md` in the folder is a change
//! in "Dropbox": the emulator sends markdrop a signed webhook, the worker converts the note, and
//! the emulator writes the uploaded `.html` back into the folder.
//!
//! Another user of the machine can reach both ports too. The emulator's control routes need its
//! secret, which stays in this process; its consent page lets only the owner's browser "Allow":
//! the one that opened the one-time link printed here, which goes on to markdrop's site.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::account::{AccountId, AccountTokens};
use crate::cli::{block_on, serve_on, shutdown_signal};
use crate::config::{Settings, StoreSettings};
use crate::crypto::random_token;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::store::Store;

/// What `demo` writes into an empty folder, so there is something to look at straight away: a
/// welcome note that shows what a note can use, a second note for it to link to, and a picture
/// in a folder of its own for it to embed.
const STARTER_FILES: [(&str, &str); 4] = [
    ("welcome.md", include_str!("../templates/demo/welcome.md")),
    ("ideas.md", include_str!("../templates/demo/ideas.md")),
    ("markdrop.toml", include_str!("../templates/demo/markdrop.toml")),
    ("pictures/markdrop.svg", include_str!("../templates/demo/pictures/markdrop.svg")),
];

/// Runs the demo on `dir` until SIGTERM or Ctrl-C. `port` is markdrop's (0: any free one);
/// `link` connects the folder's account at once instead of through the browser.
pub fn run(dir: &Path, port: u16, link: bool) -> anyhow::Result<()> {
    prepare_folder(dir)?;
    block_on(async {
        // markdrop's address comes first: the emulator sends its webhooks there. A busy
        // default port (macOS's AirPlay receiver takes 5000) is no reason to fail.
        let listener = match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => listener,
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && port != 0 => {
                println!("Port {port} is taken; using a free one instead.");
                TcpListener::bind(("127.0.0.1", 0)).context("cannot listen on 127.0.0.1")?
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot listen on 127.0.0.1:{port}"));
            }
        };
        let address = format!("http://{}", listener.local_addr()?);
        let app_key = "markdrop-demo".to_owned();
        let app_secret = random_token();
        let mut config = EmulatorConfig::new(&app_key, &app_secret);
        config.webhook_url = Some(format!("{address}/webhook").parse()?);
        config.redirect_uris = vec![format!("{address}/oauth/callback").parse()?];
        let emulator = Emulator::new(config);
        let person = emulator.create_account("You");
        emulator.sign_in(&person.account_id);
        let mirror = emulator
            .mirror_folder(&person.account_id, dir)
            .with_context(|| format!("cannot use {} as the demo's Dropbox", dir.display()))?;
        let dropbox = emulator.start(0).await.context("cannot start the Dropbox emulator")?;

        let settings = demo_settings(&address, dropbox.url().as_str(), &app_key, &app_secret)?;
        let data_dir = DataDir::new()?;
        let store = Store::open(&StoreSettings::embedded(&data_dir.0), &settings.secret_key)
            .context("cannot open the demo's store")?;
        if link {
            let account = AccountId::parse(&person.account_id)?;
            let tokens = AccountTokens {
                access_token: person.access_token.clone().into(),
                refresh_token: person.refresh_token.clone().into(),
                expires_at: None,
                path_root: None,
            };
            // What the OAuth callback does once Dropbox approves.
            store.save_tokens(&account, &tokens).await?;
            store.save_display_name(&account, "You").await?;
            store.enqueue(&[account]).await?;
        }
        let site: url::Url = format!("{address}/").parse()?;
        let owner_link = dropbox.owner_link(Some(&site));
        println!("markdrop demo is running.");
        println!("  Your \"Dropbox\" is the folder {}", dir.display());
        println!(
            "  Open this link in your browser; it works once, and makes that browser the only"
        );
        println!(
            "  one that may approve on the emulated Dropbox, then takes you to markdrop's site:"
        );
        println!("    {owner_link}");
        if link {
            println!(
                "  It is connected already: save a .md file there and its .html appears beside it."
            );
        } else {
            println!("  There, click \"Connect Dropbox\", then Allow.");
            println!("  Then save a .md file in the folder and its .html appears beside it.");
        }
        println!("  markdrop's site: {site}");
        println!("  Ctrl-C stops.");
        let served = serve_on(listener, &settings, store, shutdown_signal()).await;
        dropbox.stop().await;
        mirror.stop();
        served
    })
}

/// Creates the folder if needed, and gives an empty one a note to convert. A folder with
/// files already is used as it is, with a word that its notes get (or update) an `.html`.
fn prepare_folder(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let empty = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(Result::ok)
        .all(|entry| entry.file_name().to_string_lossy().starts_with('.'));
    if empty {
        for (name, text) in STARTER_FILES {
            let file = dir.join(name);
            if let Some(folder) = file.parent() {
                std::fs::create_dir_all(folder)
                    .with_context(|| format!("cannot create {}", folder.display()))?;
            }
            std::fs::write(&file, text)
                .with_context(|| format!("cannot write {}", file.display()))?;
        }
    } else {
        println!(
            "Note: {} has files already. Every .md in it, in subfolders too, gets an .html \
             beside it; an .html of the same name that markdrop did not write is left as it is.",
            dir.display()
        );
    }
    Ok(())
}

/// Settings as an operator would give them, for this run only.
fn demo_settings(
    address: &str,
    dropbox: &str,
    app_key: &str,
    app_secret: &str,
) -> anyhow::Result<Settings> {
    let secret_key = random_token();
    let port = address.rsplit(':').next().unwrap_or("0").to_owned();
    let vars = [
        ("DROPBOX_APP_KEY", app_key),
        ("DROPBOX_APP_SECRET", app_secret),
        ("SECRET_KEY", secret_key.as_str()),
        ("HOST", "127.0.0.1"),
        ("PORT", port.as_str()),
        ("BASE_URL", address),
        ("DROPBOX_API_URL", dropbox),
        ("DROPBOX_CONTENT_URL", dropbox),
        ("DROPBOX_WEB_URL", dropbox),
    ];
    Settings::from_lookup(|name| {
        vars.iter().find(|(var, _)| *var == name).map(|(_, value)| (*value).to_owned())
    })
    .context("the demo's settings")
}

/// The demo's store: a fresh folder per run (the emulator's account is new each run too),
/// removed when the demo ends.
struct DataDir(PathBuf);

impl DataDir {
    fn new() -> anyhow::Result<DataDir> {
        let dir = std::env::temp_dir().join(format!(
            "markdrop-demo-{}-{}",
            std::process::id(),
            &random_token()[..8]
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(DataDir(dir))
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
