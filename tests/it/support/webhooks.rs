//! Notifications as Dropbox sends them: the body in Dropbox's own formatting, signed with the
//! app secret (`X-Dropbox-Signature`, hex HMAC-SHA256 of the raw body).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::APP_SECRET;

/// The signature Dropbox sends with `body`, keyed with the tests' [`APP_SECRET`].
pub fn sign(body: &[u8]) -> String {
    sign_with(APP_SECRET, body)
}

/// The signature of `body` under another app's `secret`: a forgery, to markdrop.
pub fn sign_with(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A notification for `accounts`, formatted as Dropbox formats it (Python's `json.dumps`
/// separators).
pub fn notification(accounts: &[&str]) -> Vec<u8> {
    let accounts: Vec<String> = accounts.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "{{\"list_folder\": {{\"accounts\": [{}]}}, \"delta\": {{\"users\": [12345678]}}}}",
        accounts.join(", ")
    )
    .into_bytes()
}

/// POSTs `body` signed, as Dropbox does, to the markdrop at `address`; returns the status.
pub async fn notify(address: &str, body: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{address}/webhook"))
        .header("X-Dropbox-Signature", sign(body.as_bytes()))
        .body(body.to_owned())
        .send()
        .await
        .expect("POST /webhook")
        .status()
        .as_u16()
}
