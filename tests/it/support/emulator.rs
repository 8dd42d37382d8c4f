//! Driving the emulator as its users do: a script holding the control secret, the owner's
//! browser (the one that opened the one-time owner link), and a client whose write Dropbox is
//! in the middle of.

use markdrop::emulator::{Emulator, RunningEmulator};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, SET_COOKIE};
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::wait::DEADLINE;

/// An HTTP client that holds the emulator's control secret and follows no redirects.
pub fn control_client(emulator: &Emulator) -> reqwest::Client {
    let bearer = format!("Bearer {}", emulator.control_secret().expose_secret());
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(&bearer).expect("a header value"));
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// An HTTP client that holds nothing and follows no redirects: a browser seeing each answer.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// Opens a fresh owner link as a browser would and returns the cookie it set, as `name=value`.
pub async fn owner_cookie(running: &RunningEmulator) -> String {
    let opened = plain_client().get(running.owner_link(None)).send().await.expect("an answer");
    assert_eq!(opened.status(), StatusCode::OK, "the owner link works");
    cookie_of(opened.headers())
}

/// The `name=value` of the cookie a response sets.
pub fn cookie_of(headers: &HeaderMap) -> String {
    let set = headers.get(SET_COOKIE).expect("a cookie").to_str().expect("ascii");
    set.split(';').next().expect("name=value").to_owned()
}

/// The value of the hidden form field `name`.
pub fn form_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("a {name} field in {html}"));
    let start = start + marker.len();
    html[start..start + html[start..].find('"').expect("a closing quote")].to_owned()
}

/// An upload whose head and first bytes are sent and whose body is finished only on request:
/// a write Dropbox is in the middle of, for as long as a test needs.
pub struct SlowUpload {
    stream: tokio::net::TcpStream,
}

const SLOW_BODY: &[u8] = b"first half, second half";

impl SlowUpload {
    pub async fn start(base: &url::Url, token: &str, path: &str) -> SlowUpload {
        let address = base.socket_addrs(|| None).expect("an address")[0];
        let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
        let head = format!(
            "POST /2/files/upload HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
             Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n\
             Dropbox-API-Arg: {{\"path\": \"{path}\", \"mode\": \"overwrite\"}}\r\n\
             Content-Length: {}\r\n\r\n",
            SLOW_BODY.len()
        );
        stream.write_all(head.as_bytes()).await.expect("send the head");
        stream.write_all(&SLOW_BODY[..10]).await.expect("send the first bytes");
        SlowUpload { stream }
    }

    /// Sends the rest of the body and returns the answer's status line.
    pub async fn finish(mut self) -> String {
        self.stream.write_all(&SLOW_BODY[10..]).await.expect("send the rest");
        let mut answer = Vec::new();
        tokio::time::timeout(DEADLINE, self.stream.read_to_end(&mut answer))
            .await
            .expect("an answer before the deadline")
            .expect("read the answer");
        String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
    }
}
