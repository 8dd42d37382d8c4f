//! `markdrop` as child processes: the command with a clean environment, signals, waiting for an
//! exit, and reading what a process writes as it comes.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;

use super::wait::{DEADLINE, eventually};
use super::{APP_KEY, APP_SECRET, SECRET_KEY};

/// `markdrop <subcommand>` with nothing from this environment but the app's key and secret and
/// a `SECRET_KEY`; Dropbox is `dropbox` when given.
pub fn markdrop(subcommand: &str, dropbox: Option<&url::Url>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_markdrop"));
    command
        .arg(subcommand)
        .env_clear()
        .env("DROPBOX_APP_KEY", APP_KEY)
        .env("DROPBOX_APP_SECRET", APP_SECRET)
        .env("SECRET_KEY", SECRET_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if let Some(dropbox) = dropbox {
        for var in ["DROPBOX_API_URL", "DROPBOX_CONTENT_URL", "DROPBOX_WEB_URL"] {
            command.env(var, dropbox.as_str());
        }
    }
    command
}

pub fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status();
    assert!(sent.expect("kill").success(), "SIG{signal} sent");
}

/// Waits for the process to exit, failing the test after [`DEADLINE`].
pub async fn exit_of(child: &mut Child) -> ExitStatus {
    let pid = child.id();
    let what = format!("process {pid} to exit");
    eventually(&what, || std::future::ready(child.try_wait().expect("wait"))).await
}

/// Kills whatever the test leaves running, even when it fails.
pub struct Processes(pub Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The lines a child process writes to `output`, as they come, for a test to wait on one
/// (`recv_timeout(DEADLINE)`).
pub fn lines_of(output: impl Read + Send + 'static) -> Receiver<String> {
    parsed_lines_of(output, Some)
}

/// The JSON log lines of `child` (started with `LOG_FORMAT=json` and a piped stderr), as they
/// come.
pub fn log_lines(child: &mut Child) -> Receiver<serde_json::Value> {
    let stderr = child.stderr.take().expect("stderr piped");
    parsed_lines_of(stderr, |line| serde_json::from_str(&line).ok())
}

/// The lines of `output` that `parse` accepts, read on a thread of their own.
fn parsed_lines_of<T: Send + 'static>(
    output: impl Read + Send + 'static,
    parse: impl Fn(String) -> Option<T> + Send + 'static,
) -> Receiver<T> {
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if let Some(parsed) = parse(line) {
                let _ = lines.send(parsed);
            }
        }
    });
    received
}

/// The port a process started with `LOG_FORMAT=json` and a piped stderr says it listens on;
/// the rest of its log is drained so the pipe never fills.
pub fn listening_port(child: &mut Child) -> u16 {
    let log = log_lines(child);
    let port = first_event(&log, |event| event["port"].is_u64())
        .and_then(|event| event["port"].as_u64())
        .expect("the process says where it listens");
    std::thread::spawn(move || for _ in log {});
    u16::try_from(port).expect("a port")
}

/// The first event `wanted` picks, or `None` after [`DEADLINE`].
pub fn first_event(
    events: &Receiver<serde_json::Value>,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    let start = std::time::Instant::now();
    while let Some(left) = DEADLINE.checked_sub(start.elapsed()) {
        match events.recv_timeout(left) {
            Ok(event) if wanted(&event) => return Some(event),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}
