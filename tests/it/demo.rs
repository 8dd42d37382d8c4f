//! `markdrop demo` as a person runs it: a folder is their Dropbox, notes saved in it get their
//! `.html` beside them, on the embedded store, with nothing configured.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use reqwest::header::{COOKIE, LOCATION};

use crate::support::emulator::{cookie_of, form_field};
use crate::support::scratch_dir;
use crate::support::wait::{DEADLINE, eventually_blocking};

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

/// What `demo` prints for the person: markdrop's site, and the one-time owner link that makes a
/// browser the one allowed to approve on the emulated Dropbox.
struct Printed {
    site: String,
    owner_link: String,
}

/// `markdrop demo DIR --port 0 [--link]`, with what it prints.
fn demo(dir: &Path, link: bool) -> (Demo, Printed) {
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
        let mut owner_link = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let url = line.split_whitespace().find(|word| word.starts_with("http://"));
            let Some(url) = url.map(str::to_owned) else { continue };
            if line.contains("markdrop's site:") {
                let site = url.trim_end_matches('/').to_owned();
                let owner_link = owner_link.take().expect("the owner link, printed first");
                let _ = tx.send(Printed { site, owner_link });
            } else if url.contains("/_emulator/owner?ticket=") {
                owner_link = Some(url);
            }
        }
    });
    let mut child = Demo(Some(child));
    let Ok(printed) = rx.recv_timeout(DEADLINE) else {
        drop(child.0.take().map(|mut child| child.kill()));
        panic!("the demo did not print its addresses");
    };
    (child, printed)
}

fn stop(mut demo: Demo) {
    let mut child = demo.0.take().expect("running");
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = eventually_blocking("the demo to stop", || child.try_wait().expect("wait"));
    assert!(status.success(), "a clean exit: {status}");
}

#[test]
fn a_note_saved_in_the_demo_folder_gets_its_html_and_takes_it_along_when_deleted() {
    let dir = scratch_dir("demo-folder");
    let (child, _) = demo(&dir, true);
    // As the worker renders them: wikilinks resolve against the folder's notes.
    let notes = ["/welcome.md", "/ideas.md", "/Notes/Plan.md", "/pictures/markdrop.svg"];
    let index = markdrop::render::FileIndex::new(notes);
    let rendered = |path: &str| {
        let markdown = std::fs::read(dir.join(path)).unwrap_or_default();
        let page_path = format!("/{path}");
        let page = markdrop::render::Page::new(&page_path, &index);
        markdrop::render::render(&markdown, &page).into_bytes()
    };
    eventually_blocking("the welcome note's html", || {
        std::fs::read(dir.join("welcome.html")).ok() == Some(rendered("welcome.md"))
    });
    eventually_blocking("the second note's html", || {
        std::fs::read(dir.join("ideas.html")).ok() == Some(rendered("ideas.md"))
    });
    let welcome = std::fs::read_to_string(dir.join("welcome.html")).expect("the welcome page");
    let picture = "<img src=\"pictures/markdrop.svg\" alt=\"markdrop.svg\" width=\"48\">";
    let shown =
        ["href=\"ideas.html\"", "class=\"toc\"", "markdown-alert-tip", "<math", "<a-k>", picture];
    for shown in shown {
        assert!(welcome.contains(shown), "the welcome page shows {shown}");
    }
    std::fs::create_dir_all(dir.join("Notes")).expect("a subfolder");
    std::fs::write(dir.join("Notes/Plan.md"), "# Plan\n\n- [ ] demo\n").expect("save a note");
    eventually_blocking("Plan.html", || {
        std::fs::read(dir.join("Notes/Plan.html")).ok() == Some(rendered("Notes/Plan.md"))
    });
    std::fs::remove_file(dir.join("Notes/Plan.md")).expect("delete the note");
    eventually_blocking("Plan.html to go", || !dir.join("Notes/Plan.html").exists());

    // The starter settings file sets nothing until a line is taken out of its comment.
    let settings = std::fs::read_to_string(dir.join("markdrop.toml")).expect("starter settings");
    let serif = settings.replace("# theme = \"serif\"", "theme = \"serif\"");
    assert_ne!(serif, settings, "the starter settings offer the serif theme");
    std::fs::write(dir.join("markdrop.toml"), serif).expect("save the settings");
    for page in ["welcome.html", "ideas.html"] {
        eventually_blocking(&format!("{page} in the serif theme"), || {
            std::fs::read_to_string(dir.join(page))
                .is_ok_and(|html| html.contains(markdrop::render::SERIF_STYLESHEET))
        });
    }
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_in_the_demo_goes_through_the_emulators_consent_page_to_the_account_page() {
    let dir = scratch_dir("demo-connect");
    let (child, printed) = demo(&dir, false);
    let address = printed.site;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let home =
        http.get(format!("{address}/")).send().await.expect("home").text().await.expect("page");
    assert!(home.contains("Connect Dropbox"), "{home}");
    let login = http.get(format!("{address}/login")).send().await.expect("login");
    let cookie = cookie_of(login.headers());
    let authorize = login.headers()[LOCATION].to_str().expect("ascii").to_owned();

    // Another local user reaching the consent page cannot allow: Allow is not offered, and
    // posted anyway it is a 403 page that says what to do.
    let strangers = http.get(&authorize).send().await.expect("consent").text().await.expect("page");
    assert!(strangers.contains("This browser cannot allow access"), "{strangers}");
    let decision =
        url::Url::parse(&authorize).expect("url").join(&action(&strangers)).expect("url");
    let refused = http
        .post(decision.clone())
        .form(&[("request", form_field(&strangers, "request").as_str()), ("decision", "allow")])
        .send()
        .await
        .expect("allow");
    assert_eq!(refused.status(), 403);
    let page = refused.text().await.expect("page");
    assert!(page.contains("open the link it printed"), "{page}");

    // The person opens the link the demo printed: it goes on to markdrop's site, and the
    // emulator's consent page lets this browser Allow.
    let opened = http.get(&printed.owner_link).send().await.expect("the owner link");
    assert_eq!(opened.status(), 303);
    assert_eq!(opened.headers()[LOCATION].to_str().expect("ascii"), format!("{address}/"));
    let owner = cookie_of(opened.headers());
    let consent = http.get(&authorize).header(COOKIE, &owner).send().await.expect("consent");
    let consent = consent.text().await.expect("page");
    assert!(consent.contains("You"), "the emulator's consent page names the account: {consent}");
    let allowed = http
        .post(decision)
        .header(COOKIE, &owner)
        .form(&[
            ("request", form_field(&consent, "request").as_str()),
            ("page_token", form_field(&consent, "page_token").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .expect("allow");
    let callback = allowed.headers()[LOCATION].to_str().expect("ascii").to_owned();
    assert!(callback.starts_with(&address), "back to markdrop: {callback}");
    let linked = http.get(&callback).header(COOKIE, &cookie).send().await.expect("callback");
    assert_eq!(linked.status(), 303);
    let session = cookie_of(linked.headers());
    let account = http.get(format!("{address}/account")).header(COOKIE, session).send();
    let account = account.await.expect("account");
    assert_eq!(account.status(), 200, "signed in");
    let page = account.text().await.expect("page");
    assert!(page.contains("<h1>You</h1>"), "the account page names the account: {page}");
    assert!(page.contains("Disconnect Dropbox"), "{page}");
    eventually_blocking("the welcome note's html", || dir.join("welcome.html").exists());
    stop(child);
}

/// The `action` of the first form on a page.
fn action(page: &str) -> String {
    let start = page.find("action=\"").expect("a form") + "action=\"".len();
    page[start..start + page[start..].find('"').expect("quote")].replace("&amp;", "&")
}
