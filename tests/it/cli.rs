//! The `markdrop` binary as a person runs it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::processes::lines_of;
use crate::support::scratch_dir;
use crate::support::wait::DEADLINE;

const REQUIRED: [(&str, &str); 3] = [
    ("DROPBOX_APP_KEY", "test-app-key"),
    ("DROPBOX_APP_SECRET", "test-app-secret"),
    ("SECRET_KEY", "0123456789abcdef0123456789abcdef"),
];

/// A `markdrop` command with a clean environment and an empty working directory, so neither the
/// developer's variables nor a `.env` file leak into a test.
fn markdrop(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_markdrop"));
    command.current_dir(dir).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("markdrop prints UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn render_prints_a_whole_document_for_a_rich_note() {
    let dir = scratch_dir("rich");
    let note = dir.join("Trip notes.md");
    std::fs::write(
        &note,
        "---\ntitle: Lisbon — spring\nlang: pt-PT\n---\n# Packing\n\n\
         | item | done |\n|------|:----:|\n| passport | yes |\n\n\
         - [x] tickets\n- [ ] adaptor\n\nPastéis de nata[^1] 😀 ~~maybe~~.\n\n[^1]: Belém.\n",
    )
    .expect("write the note");
    let output = markdrop(&dir).arg("render").arg(&note).output().expect("run markdrop");
    assert!(output.status.success(), "{}", stderr(&output));
    let html = stdout(&output);
    assert!(
        html.starts_with(
            "<!DOCTYPE html>\n<html lang=\"pt-PT\">\n<head>\n<meta charset=\"utf-8\">"
        )
    );
    assert!(html.contains("<title>Lisbon — spring</title>"));
    assert!(html.contains("<h1 id=\"packing\">Packing</h1>"));
    assert!(html.contains("<th>item</th><th style=\"text-align: center\">done</th>"));
    assert!(
        html.contains("<li><input disabled=\"\" type=\"checkbox\" checked=\"\"/>\ntickets</li>")
    );
    assert!(html.contains("Pastéis de nata<sup class=\"footnote-reference\"><a href=\"#fn-1\">1</a></sup> 😀 <del>maybe</del>."));
    assert!(html.contains("<div class=\"footnote-definition\" id=\"fn-1\">"));
    assert!(!html.contains("title: Lisbon"), "front matter is not rendered as text");
}

#[test]
fn render_writes_the_document_to_an_output_file() {
    let dir = scratch_dir("output");
    std::fs::write(dir.join("notes.md"), "# Notes\n").expect("write the note");
    let output = markdrop(&dir)
        .args(["render", "notes.md", "--output", "notes.html"])
        .output()
        .expect("run markdrop");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
    let html = std::fs::read_to_string(dir.join("notes.html")).expect("the document");
    assert_eq!(
        html,
        markdrop::render::render(b"# Notes\n", &markdrop::render::Page::alone("notes"))
    );
}

#[test]
fn render_reads_standard_input_without_a_file() {
    let dir = scratch_dir("stdin");
    let mut child = markdrop(&dir)
        .arg("render")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run markdrop");
    child.stdin.take().expect("stdin").write_all(b"plain *text*\n").expect("write stdin");
    let output = child.wait_with_output().expect("wait for markdrop");
    assert!(output.status.success(), "{}", stderr(&output));
    let html = stdout(&output);
    assert!(html.contains("<title>Untitled</title>"));
    assert!(html.contains("<p>plain <em>text</em></p>"));
}

#[test]
fn render_prints_the_same_document_the_library_renders() {
    let dir = scratch_dir("same");
    let note = dir.join("ReadMe.md");
    let markdown = b"\xEF\xBB\xBFSome text\r\n\r\nwith a bad byte \xFF here\r\n";
    std::fs::write(&note, markdown).expect("write the note");
    let output = markdrop(&dir).arg("render").arg(&note).output().expect("run markdrop");
    assert!(output.status.success(), "invalid UTF-8 renders without error: {}", stderr(&output));
    assert_eq!(
        stdout(&output),
        markdrop::render::render(markdown, &markdrop::render::Page::alone("ReadMe"))
    );
    assert!(stdout(&output).contains("<title>ReadMe</title>"));
    assert!(stdout(&output).contains("with a bad byte \u{FFFD} here"));
}

#[test]
fn render_names_a_file_it_cannot_read() {
    let dir = scratch_dir("missing");
    let output = markdrop(&dir).args(["render", "nowhere.md"]).output().expect("run markdrop");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let message = stderr(&output);
    assert!(message.starts_with("markdrop: cannot read nowhere.md: "), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
}

#[test]
fn server_commands_name_the_first_missing_variable_in_one_line() {
    let dir = scratch_dir("missing-var");
    for command in ["serve", "web", "worker"] {
        for (i, (missing, _)) in REQUIRED.iter().enumerate() {
            let output = markdrop(&dir)
                .arg(command)
                .envs(REQUIRED[..i].iter().copied())
                .output()
                .expect("run markdrop");
            assert_eq!(output.status.code(), Some(2), "{command} without {missing}");
            let message = stderr(&output);
            assert_eq!(message.lines().count(), 1, "{message}");
            assert!(message.starts_with(&format!("markdrop: {missing} is not set: ")), "{message}");
        }
    }
}

#[test]
fn a_malformed_variable_is_named_and_a_secret_is_never_echoed() {
    let dir = scratch_dir("malformed");
    let output = markdrop(&dir)
        .arg("web")
        .envs(REQUIRED)
        .env("REDIS_URL", "http://:hunter2@cache")
        .output()
        .expect("run markdrop");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.starts_with("markdrop: REDIS_URL is not valid: "), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    let output =
        markdrop(&dir).arg("render").env("LOG_FORMAT", "xml").output().expect("run markdrop");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("markdrop: LOG_FORMAT is not valid: "));
}

#[test]
fn a_dotenv_file_supplies_variables_but_never_overrides_the_environment() {
    let dir = scratch_dir("dotenv");
    std::fs::write(
        dir.join(".env"),
        "DROPBOX_APP_KEY=from-file\nDROPBOX_APP_SECRET=s\nPORT=not-a-port\n",
    )
    .expect("write .env");
    let output = markdrop(&dir).arg("worker").output().expect("run markdrop");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("markdrop: PORT is not valid: "), "{}", stderr(&output));
    let output = markdrop(&dir).arg("worker").env("PORT", "8080").output().expect("run markdrop");
    assert!(
        stderr(&output).starts_with("markdrop: SECRET_KEY is not set: "),
        "{}",
        stderr(&output)
    );

    std::fs::write(dir.join(".env"), "SECRET_KEY='unterminated-secret-value\n")
        .expect("write .env");
    let output = markdrop(&dir).arg("worker").output().expect("run markdrop");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.starts_with("markdrop: .env cannot be used"), "{message}");
    assert!(!message.contains("unterminated-secret-value"), "{message}");
}

#[test]
fn help_explains_every_command() {
    let dir = scratch_dir("help");
    let output = markdrop(&dir).arg("--help").output().expect("run markdrop");
    assert!(output.status.success());
    let help = stdout(&output);
    for command in ["serve", "web", "worker", "render", "demo"] {
        assert!(help.contains(&format!("  {command} ")), "{command} missing from:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_runs_alone_on_a_folder_and_stops_on_sigterm() {
    let dir = scratch_dir("emulator-cli");
    let dropbox = dir.join("Dropbox");
    std::fs::create_dir_all(&dropbox).expect("create the folder");
    std::fs::write(dropbox.join("hello.md"), "# Hello\n").expect("write");
    let secret = "a-control-secret-of-32-characters-or-more";
    let mut child = markdrop(&dir)
        .env("EMULATOR_CONTROL_SECRET", secret)
        .args(["emulator", "--port", "0", "--app-key", "k", "--app-secret", "s", "--dir"])
        .arg(&dropbox)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run markdrop");
    let stdout = child.stdout.take().expect("stdout");
    let received = lines_of(stdout);
    let next_line = || received.recv_timeout(DEADLINE).expect("a line on stdout");
    let account_line = next_line();
    let account = account_line.split_whitespace().nth(1).expect("an account id").to_owned();
    let url_line = next_line();
    let url = url_line.rsplit(' ').next().expect("a URL").to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url_line}");

    let files: Vec<String> = reqwest::Client::new()
        .get(format!("{url}_emulator/accounts/{account}/files"))
        .bearer_auth(secret)
        .send()
        .await
        .expect("ask the control surface")
        .json()
        .await
        .expect("a JSON list");
    assert_eq!(files, ["/hello.md"]);

    let killed = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    assert!(killed.expect("run kill").success());
    let status = child.wait().expect("wait for markdrop");
    assert!(status.success(), "SIGTERM stops the emulator cleanly: {status}");
}

#[test]
fn render_resolves_wikilinks_against_the_files_under_its_root() {
    let dir = scratch_dir("wikilinks");
    std::fs::create_dir_all(dir.join("Notes/Trips")).expect("make the folders");
    std::fs::write(dir.join("Ideas.md"), "# Ideas\n").expect("write a note");
    std::fs::write(dir.join("Notes/pic.png"), b"png").expect("write an image");
    std::fs::write(dir.join("Notes/backup.zip"), b"zip").expect("write an archive");
    let note = "[[ideas#Big one]] ![[pic.png]] [[Nowhere]] [[backup.zip]]\n";
    std::fs::write(dir.join("Notes/Trips/Lisbon.md"), note).expect("write the note");

    let output = markdrop(&dir)
        .args(["render", "Notes/Trips/Lisbon.md", "--root", "."])
        .output()
        .expect("run markdrop");
    assert!(output.status.success(), "{}", stderr(&output));
    let index =
        markdrop::render::FileIndex::new(["/Ideas.md", "/Notes/pic.png", "/Notes/Trips/Lisbon.md"]);
    let page = markdrop::render::Page::new("/Notes/Trips/Lisbon.md", &index);
    assert_eq!(stdout(&output), markdrop::render::render(note.as_bytes(), &page));
    let html = stdout(&output);
    assert!(html.contains("<a href=\"../../Ideas.html#big-one\">"), "{html}");
    assert!(html.contains("<img src=\"../pic.png\" alt=\"pic.png\">"), "{html}");
    assert!(html.contains("<a class=\"wikilink-missing\""), "{html}");
    assert!(html.contains("title=\"No note named backup.zip\""), "the worker records no archive");

    // Without --root, only the note's own folder is the account: nothing else resolves.
    let output =
        markdrop(&dir).args(["render", "Notes/Trips/Lisbon.md"]).output().expect("run markdrop");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stdout(&output).contains("Ideas.html"), "{}", stdout(&output));

    let outside = markdrop(&dir.join("Notes"))
        .args(["render", "../Ideas.md", "--root", "."])
        .output()
        .expect("run markdrop");
    assert!(!outside.status.success());
    assert!(stderr(&outside).contains("is not inside the folder"), "{}", stderr(&outside));
}

/// A folder with a `markdrop.toml` at its top and a nearer one in `Work/`, a stylesheet, a note
/// under `Work/` and a draft the top file excludes.
fn dropbox_with_settings(name: &str) -> std::path::PathBuf {
    let dir = scratch_dir(name);
    std::fs::create_dir_all(dir.join("Work/Drafts")).expect("create the folders");
    let files = [
        ("markdrop.toml", "theme = \"plain\"\nlang = \"de\"\nexclude = [\"work/drafts\"]\n"),
        ("Work/MarkDrop.toml", "theme = \"serif\"\ncss = \"../look/site.css\"\nmath = false\n"),
        ("look/site.css", "h1 { color: teal }\n"),
        ("Work/Plan.md", "# Plan\n\nCosts $x$ [see](other.md).\n"),
        ("Work/Drafts/Idea.md", "# Idea\n"),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("create the folder");
        std::fs::write(path, text).expect("write a file");
    }
    dir
}

#[test]
fn render_applies_the_nearer_settings_file_over_the_farther_one_key_by_key() {
    let dir = dropbox_with_settings("settings-nested");
    let output = markdrop(&dir)
        .args(["render", "Work/Plan.md", "--root", "."])
        .output()
        .expect("run markdrop");
    assert!(output.status.success(), "{}", stderr(&output));
    let html = stdout(&output);
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"de\">"), "the top file's lang");
    let serif = format!("<style>\n{}</style>", markdrop::render::SERIF_STYLESHEET);
    let own = "<style>\nh1 { color: teal }\n</style>\n</head>";
    let (theme_at, own_at) = (html.find(&serif), html.find(own));
    assert!(theme_at.is_some() && own_at.is_some() && theme_at < own_at, "{html}");
    assert!(html.contains("Costs $x$ <a href=\"other.html\">see</a>."), "math off, links on");
}

#[test]
fn render_refuses_a_note_its_settings_exclude_in_one_line() {
    let dir = dropbox_with_settings("settings-excluded");
    let output = markdrop(&dir)
        .args(["render", "Work/Drafts/Idea.md", "--root", "."])
        .output()
        .expect("run markdrop");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    let settings = std::fs::canonicalize(dir.join("markdrop.toml")).expect("the settings file");
    assert!(message.contains(&format!("excluded by {}", settings.display())), "{message}");
    assert!(message.contains("\"work/drafts\""), "{message}");
}

#[test]
fn render_names_the_file_line_and_column_of_an_invalid_settings_file() {
    let dir = dropbox_with_settings("settings-invalid");
    std::fs::write(dir.join("Work/MarkDrop.toml"), "toc = true\n  them = \"serif\"\n")
        .expect("write the settings");
    let output = markdrop(&dir)
        .args(["render", "Work/Plan.md", "--root", "."])
        .output()
        .expect("run markdrop");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let settings = std::fs::canonicalize(dir.join("Work/MarkDrop.toml")).expect("the file");
    assert_eq!(
        stderr(&output).trim_end(),
        format!(
            "markdrop: invalid settings file {}: line 2, column 3: unknown key \"them\"; \
             did you mean \"theme\"?",
            settings.display()
        )
    );
}

#[test]
fn render_skips_a_note_whose_front_matter_says_markdrop_false() {
    let dir = scratch_dir("settings-opt-out");
    std::fs::write(dir.join("private.md"), "---\nmarkdrop: false\n---\n# Private\n")
        .expect("write the note");
    let output = markdrop(&dir).args(["render", "private.md"]).output().expect("run markdrop");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert!(stderr(&output).contains("markdrop: false"), "{}", stderr(&output));
}
