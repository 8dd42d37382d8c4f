//! `markdrop demo` as a person runs it: a folder is their Dropbox, notes saved in it get their
//! `.html` beside them, on the embedded store, with nothing configured.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::support::{DEADLINE, scratch_dir};

/// A running demo, killed if the test ends without stopping it.
struct Demo(Option<Child>);

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `markdrop demo DIR --port 0 [--link]`, with the site's address from what it prints.
fn demo(dir: &Path, link: bool) -> (Demo, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_markdrop"));
    command.arg("demo").arg(dir).args(["--port", "0"]);
    if link {
        command.arg("--link");
    }
    let mut child = command
        .env_clear()
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start markdrop demo");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.split_whitespace().find(|word| word.starts_with("http://")) {
                let _ = tx.send(url.trim_end_matches('/').to_owned());
            }
        }
    });
    let mut child = Demo(Some(child));
    let Ok(address) = rx.recv_timeout(DEADLINE) else {
        drop(child.0.take().map(|mut child| child.kill()));
        panic!("the demo did not print its address");
    };
    (child, address)
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < DEADLINE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(mut demo: Demo) {
    let mut child = demo.0.take().expect("running");
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "a clean exit: {status}");
            return;
        }
        assert!(start.elapsed() < DEADLINE, "the demo did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_note_saved_in_the_demo_folder_gets_its_html_and_takes_it_along_when_deleted() {
    let dir = scratch_dir("demo-folder");
    let (child, _) = demo(&dir, true);
    let rendered = |path: &str, stem: &str| {
        let markdown = std::fs::read(dir.join(path)).unwrap_or_default();
        markdrop::render::render(&markdown, stem).into_bytes()
    };
    wait_for("the welcome note's html", || {
        std::fs::read(dir.join("welcome.html")).ok() == Some(rendered("welcome.md", "welcome"))
    });
    std::fs::create_dir_all(dir.join("Notes")).expect("a subfolder");
    std::fs::write(dir.join("Notes/Plan.md"), "# Plan\n\n- [ ] demo\n").expect("save a note");
    wait_for("Plan.html", || {
        std::fs::read(dir.join("Notes/Plan.html")).ok() == Some(rendered("Notes/Plan.md", "Plan"))
    });
    std::fs::remove_file(dir.join("Notes/Plan.md")).expect("delete the note");
    wait_for("Plan.html to go", || !dir.join("Notes/Plan.html").exists());
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_in_the_demo_goes_through_the_emulators_consent_page_to_the_account_page() {
    let dir = scratch_dir("demo-connect");
    let (child, address) = demo(&dir, false);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let home =
        http.get(format!("{address}/")).send().await.expect("home").text().await.expect("page");
    assert!(home.contains("Connect Dropbox"), "{home}");
    let login = http.get(format!("{address}/login")).send().await.expect("login");
    let cookie = login.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let authorize = login.headers()[LOCATION].to_str().expect("ascii").to_owned();
    let consent = http.get(&authorize).send().await.expect("consent").text().await.expect("page");
    assert!(consent.contains("You"), "the emulator's consent page names the account: {consent}");
    let form = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = consent.find(&marker).expect("a form field") + marker.len();
        consent[start..start + consent[start..].find('"').expect("quote")].to_owned()
    };
    let action_start = consent.find("action=\"").expect("a form") + "action=\"".len();
    let action =
        &consent[action_start..action_start + consent[action_start..].find('"').expect("quote")];
    let action =
        url::Url::parse(&authorize).expect("url").join(&action.replace("&amp;", "&")).expect("url");
    let allowed = http
        .post(action)
        .form(&[("request", form("request").as_str()), ("decision", "allow")])
        .send()
        .await
        .expect("allow");
    let callback = allowed.headers()[LOCATION].to_str().expect("ascii").to_owned();
    assert!(callback.starts_with(&address), "back to markdrop: {callback}");
    let linked = http.get(&callback).header(COOKIE, &cookie).send().await.expect("callback");
    assert_eq!(linked.status(), 303);
    let session = linked.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let account = http.get(format!("{address}/account")).header(COOKIE, session).send();
    let account = account.await.expect("account");
    assert_eq!(account.status(), 200, "signed in");
    let page = account.text().await.expect("page");
    assert!(page.contains("<h1>You</h1>"), "the account page names the account: {page}");
    assert!(page.contains("Disconnect Dropbox"), "{page}");
    wait_for("the welcome note's html", || dir.join("welcome.html").exists());
    stop(child);
}
