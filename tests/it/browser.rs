//! A real headless Chromium drives the product as a person would: the emulator's one-time owner
//! link, the landing page, "Connect Dropbox", the emulator's consent page, the account page, a note's conversion showing up on
//! it, and disconnecting; then the pages markdrop wrote, opened from disk in light and dark mode,
//! and a link from one note's page to another's. Chromium is driven through chromedriver's WebDriver HTTP API, and a
//! screenshot of every page lands in `target/browser/` for a human to look at.
//!
//! Debian's `chromium` and `chromium-driver` must be installed; `scripts/test` installs them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use markdrop::dropbox::AccountId;
use serde_json::{Value, json};

use crate::support::app::{TestApp, worker_settings};
use crate::support::wait::{Patience, eventually};
use crate::support::{scratch_dir, unique_suffix};

mod themes;

/// The key under which WebDriver returns an element's id (W3C WebDriver, "web element
/// identifier").
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How often a page is reloaded while waiting for the worker's conversion to show on it.
const RELOAD_EVERY: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_connects_dropbox_in_chromium_sees_a_note_converted_and_disconnects() {
    let (mut world, account) = world_with_a_consent_page("browser").await;
    world.spawn_worker(worker_settings());
    let app = world.address.clone();
    let dropbox = world.dropbox.url().to_string();
    let mut browser = Browser::launch().await;

    // As `markdrop demo` has the person do: the one-time owner link first, which makes this
    // browser the one that may "Allow" on the emulated Dropbox and goes on to markdrop's site.
    let site = format!("{app}/").parse().expect("the app's URL");
    browser.open(world.dropbox.owner_link(Some(&site)).as_str()).await;
    browser.wait_for_url("markdrop's site", |url| url == format!("{app}/")).await;
    browser.screenshot("landing").await;
    assert!(browser.text().await.contains("Connect Dropbox"));

    browser.click(r#"a[href="/login"]"#).await;
    browser.wait_for_url("the emulator's consent page", |url| url.starts_with(&dropbox)).await;
    browser.screenshot("consent").await;
    let consent = browser.text().await;
    assert!(consent.contains("Signed in as Ada Lovelace"), "{consent}");

    browser.click(r#"button[name="decision"][value="allow"]"#).await;
    browser.wait_for_url("the account page", |url| url == format!("{app}/account")).await;
    browser.screenshot("account").await;
    let page = browser.text().await;
    assert!(page.contains("Ada Lovelace"), "the account page names the account: {page}");

    world.emulator().put_file(&account, "/Notes/Hello.md", "# Hello").expect("save a note");
    browser.reload_until("the note among the recent conversions", "/Notes/Hello.md").await;
    browser.screenshot("converted").await;
    let recent = browser.text_of("table.recent").await;
    assert!(recent.contains("/Notes/Hello.md") && recent.contains("converted"), "{recent}");

    browser.click(r#"form[action="/account/unlink"] button[type="submit"]"#).await;
    browser.wait_for_url("the landing page", |url| url == format!("{app}/")).await;
    browser.screenshot("disconnected").await;
    let home = browser.text().await;
    assert!(home.contains("Dropbox is disconnected"), "{home}");
    assert!(home.contains("Connect Dropbox"), "signed out, offered to connect again: {home}");
    let id = AccountId::parse(&account).expect("an account id");
    assert!(world.store.tokens(&id).await.expect("the store").is_none(), "account forgotten");
    world.quiet().await;

    browser.quit().await;
    for worker in world.workers.drain(..) {
        worker.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converted_notes_read_as_a_website_in_light_and_dark_and_their_links_navigate() {
    let mut world = TestApp::builder("browser-site").with_worker().start().await;
    let note = "---\ntoc: true\n---\n# Field notes\n\nSee [the setup](sub/b.md#setup).\n\n\
        > [!WARNING]\n> Mind the gap.\n\n## Energy\n\nInline $E = mc^2$ and displayed:\n\n\
        $$\n\\frac{a}{b} + \\sqrt{x}\n$$\n\n\
        Also [[b#Setup|the setup, as a wikilink]].\n\n\
        ```rust\nfn main() {\n    println!(\"hi\");\n}\n```\n";
    let linked = "# B\n\n## Setup\n\nBack to [the notes](../a.md).\n";
    let files = [("/Notebook/a.md", note), ("/Notebook/sub/b.md", linked)];
    let account = world.link_with_files("Grace Hopper", &files).await;
    // The pages as markdrop uploaded them, laid out as in the Dropbox folder.
    let site = scratch_dir("browser-site-pages");
    for page in ["/Notebook/a.html", "/Notebook/sub/b.html"] {
        let html = world.html(&account, page).await;
        let path = site.join(page.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("the page's folder");
        std::fs::write(&path, html).expect("save the page");
    }
    let mut browser = Browser::launch().await;
    let a = format!("file://{}", site.join("Notebook/a.html").display());
    browser.open(&a).await;
    browser.screenshot("site-light").await;
    let background = "return getComputedStyle(document.body).backgroundColor";
    assert_eq!(browser.script(background).await, "rgb(255, 255, 255)");
    let shown = browser.text().await;
    for text in ["Contents", "Warning", "Mind the gap.", "Energy"] {
        assert!(shown.contains(text), "{text} is shown: {shown}");
    }
    let formulas = "return document.querySelectorAll('math').length";
    assert_eq!(browser.script(formulas).await, 2, "both formulas are MathML");
    let keyword = "return getComputedStyle(document.querySelector('pre code a-k')).color";
    let light_keyword = browser.script(keyword).await;
    assert_ne!(
        light_keyword,
        browser.script("return getComputedStyle(document.querySelector('pre code')).color").await,
        "keywords are coloured"
    );
    // The Markdown link and the wikilink, which found `b` in another folder.
    let to_b = "return document.querySelectorAll('a[href=\"sub/b.html#setup\"]').length";
    assert_eq!(browser.script(to_b).await, 2, "both links reach b's setup");
    let title_colour =
        "return getComputedStyle(document.querySelector('.markdown-alert-title')).color";
    let light_warning = browser.script(title_colour).await;

    browser.prefer_dark(true).await;
    browser.screenshot("site-dark").await;
    assert_eq!(browser.script(background).await, "rgb(13, 17, 23)", "the dark palette");
    assert_ne!(browser.script(title_colour).await, light_warning, "alerts follow the palette");
    assert_ne!(browser.script(keyword).await, light_keyword, "so does the code");
    browser.prefer_dark(false).await;

    browser.click(r#"a[href="sub/b.html#setup"]"#).await;
    browser
        .wait_for_url("the linked note's page", |url| url.ends_with("/Notebook/sub/b.html#setup"))
        .await;
    browser.screenshot("site-linked").await;
    assert!(browser.text_of("h2#setup").await.contains("Setup"));
    browser.click(r#"a[href="../a.html"]"#).await;
    browser.wait_for_url("back to the first page", |url| url == a).await;
    browser.quit().await;
    for worker in world.workers.drain(..) {
        worker.stop().await;
    }
}

/// A [`TestApp`] without workers whose emulator shows its consent page, with "Ada Lovelace"
/// signed in at the emulated dropbox.com. Returns her account id.
async fn world_with_a_consent_page(test: &str) -> (TestApp, String) {
    let world = TestApp::builder(test).with_consent_page().start().await;
    let account = world.emulator().create_account("Ada Lovelace").account_id;
    world.emulator().sign_in(&account);
    (world, account)
}

/// A program on `PATH`, or a message saying how to get it.
fn installed(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{program}` is not installed: run scripts/test, which installs Debian's \
                 chromium and chromium-driver"
            )
        })
}

/// Chromium itself: Debian's `/usr/bin/chromium` is a shell script that adds flags (and
/// extensions) of its own, so the binary behind it is used when it is there.
fn chromium() -> PathBuf {
    let binary = Path::new("/usr/lib/chromium/chromium");
    if binary.is_file() { binary.to_owned() } else { installed("chromium") }
}

/// Where the screenshots go: `target/browser/`, or under `CARGO_TARGET_DIR` when set.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("browser");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create target/browser");
    dir
}

/// A chromedriver process, killed when dropped (with the Chromium it started, which runs in
/// chromedriver's process group), and the Chromium profile, removed then.
struct Driver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group, so a test that fails before `quit` leaves no Chromium behind.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One WebDriver session in a headless Chromium.
struct Browser {
    http: reqwest::Client,
    /// `<chromedriver>/session/<id>`.
    session: String,
    screenshots: PathBuf,
    taken: usize,
    driver: Driver,
}

impl Browser {
    /// Starts chromedriver on a free port, waits until it is ready, and opens a session.
    async fn launch() -> Browser {
        use std::os::unix::process::CommandExt;
        let chromedriver = installed("chromedriver");
        let chromium = chromium();
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", chromedriver.display()));
        let url = format!("http://127.0.0.1:{port}");
        // A profile of its own: a second Chromium on the same profile would hand its pages to the
        // first one, whichever test that belongs to.
        let profile = scratch_dir(&format!("browser-profile-{}", unique_suffix()));
        let driver = Driver { child, url, profile };
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        eventually("chromedriver to get ready", || async {
            let status = http.get(format!("{}/status", driver.url)).send().await;
            let ready = match status {
                Ok(response) => response.json::<Value>().await.ok(),
                Err(_) => None,
            };
            ready.is_some_and(|status| status["value"]["ready"] == true)
        })
        .await;
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1200,900",
                    format!("--user-data-dir={}", driver.profile.display()),
                ],
            },
        }}});
        let response = http
            .post(format!("{}/session", driver.url))
            .json(&capabilities)
            .send()
            .await
            .expect("POST /session");
        let created = value_of(response, "a new session").await;
        let id = created["sessionId"].as_str().expect("a session id");
        let session = format!("{}/session/{id}", driver.url);
        Browser { http, session, screenshots: screenshot_dir(), taken: 0, driver }
    }

    async fn open(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    async fn reload(&self) {
        self.post("/refresh", json!({})).await;
    }

    async fn current_url(&self) -> String {
        let url = self.get("/url").await;
        url.as_str().expect("a URL").to_owned()
    }

    /// The id of the first element matching `css`.
    async fn find(&self, css: &str) -> String {
        let body = json!({ "using": "css selector", "value": css });
        let found = self.post("/element", body).await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("an element for {css}: {found}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{element}/click"), json!({})).await;
    }

    /// The page's text as a person sees it.
    async fn text(&self) -> String {
        self.text_of("body").await
    }

    /// The text of the first element matching `css`, as a person sees it.
    async fn text_of(&self, css: &str) -> String {
        let element = self.find(css).await;
        let text = self.get(&format!("/element/{element}/text")).await;
        text.as_str().expect("text").to_owned()
    }

    async fn wait_for_url(&self, what: &str, arrived: impl Fn(&str) -> bool) {
        eventually(what, || async {
            let url = self.current_url().await;
            if arrived(&url) { Ok(()) } else { Err(format!("at {url}")) }
        })
        .await;
    }

    /// Reloads the page until it shows `wanted`.
    async fn reload_until(&self, what: &str, wanted: &str) {
        let patience = Patience { every: RELOAD_EVERY, ..Patience::USUAL };
        patience
            .wait_for(what, || async {
                self.reload().await;
                let text = self.text().await;
                if text.contains(wanted) { Ok(()) } else { Err(text) }
            })
            .await;
    }

    /// Runs `script` in the page (the test's, not the page's: markdrop's pages have none) and
    /// returns what it returns.
    async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] })).await
    }

    /// Has the page's `prefers-color-scheme` say dark (or light), as a system in dark mode does.
    async fn prefer_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        let features = [json!({ "name": "prefers-color-scheme", "value": scheme })];
        let command = json!({
            "cmd": "Emulation.setEmulatedMedia",
            "params": { "features": features },
        });
        self.post("/goog/cdp/execute", command).await;
    }

    /// Saves the page as `target/browser/<NN>-<name>.png`.
    async fn screenshot(&mut self, name: &str) {
        let png = self.get("/screenshot").await;
        let png = STANDARD.decode(png.as_str().expect("base64")).expect("a base64 PNG");
        self.taken += 1;
        let path = self.screenshots.join(format!("{:02}-{name}.png", self.taken));
        std::fs::write(&path, png).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    }

    /// Ends the session (closing Chromium) and chromedriver.
    async fn quit(self) {
        let response = self.http.delete(&self.session).send().await.expect("DELETE /session");
        value_of(response, "the session to end").await;
        drop(self.driver);
    }

    async fn get(&self, path: &str) -> Value {
        let response = self.http.get(format!("{}{path}", self.session)).send().await;
        value_of(response.unwrap_or_else(|error| panic!("GET {path}: {error}")), path).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self.http.post(format!("{}{path}", self.session)).json(&body).send().await;
        value_of(response.unwrap_or_else(|error| panic!("POST {path}: {error}")), path).await
    }
}

/// The `value` of a WebDriver answer, failing the test with WebDriver's error otherwise.
async fn value_of(response: reqwest::Response, what: &str) -> Value {
    let status = response.status();
    let mut body: Value = response.json().await.unwrap_or_else(|error| panic!("{what}: {error}"));
    let value = body["value"].take();
    assert!(status.is_success(), "WebDriver refused {what} ({status}): {value}");
    value
}
