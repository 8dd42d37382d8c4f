//! Signed webhook notifications, sent like Dropbox sends them (docs/dropbox.md §8).
//!
//! Changed accounts arrive on a channel, so no request ever waits on delivery. Accounts changed
//! within the batch window go out in one notification. Each notification is POSTed with
//! `X-Dropbox-Signature` (hex HMAC-SHA256 of the raw body, keyed with the app secret) and
//! retried with exponential backoff on anything but a 200, for about ten minutes.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::stats::{Pending, Recorder};

/// account id → legacy numeric uid (for `delta.users`).
pub type UidLookup = Arc<dyn Fn(&str) -> Option<u64> + Send + Sync>;

/// Dropbox gives the receiver 10 s to answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Dropbox stops retrying after about ten minutes.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// Where and how notifications go.
pub struct Settings {
    pub target: url::Url,
    pub app_secret: String,
    /// First wait of the retry backoff.
    pub retry_base: Duration,
    /// Changes this close together share a notification, as Dropbox batches several users.
    pub batch_window: Duration,
    pub stats: Recorder,
    pub uids: UidLookup,
}

/// The HTTP client both the notifications and the verification challenge go out with.
fn webhook_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("DropboxWebhooks/1.0")
        .build()
}

/// Sends notifications until `shutdown` resolves (or the channel closes). Deliveries in flight
/// belong to this future: when it returns, or is dropped, they are cancelled with it.
pub async fn run(
    mut changes: UnboundedReceiver<(String, Pending)>,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) {
    let client = match webhook_client() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhook sender could not start; no webhooks will be sent");
            return;
        }
    };
    let secret: Arc<str> = settings.app_secret.into();
    let mut deliveries = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // A batch cut short by shutdown is lost, which is what stopping means.
        let (accounts, pending) = tokio::select! {
            () = &mut shutdown => break,
            batch = next_batch(&mut changes, settings.batch_window) => match batch {
                Some(batch) => batch,
                None => break,
            },
        };
        let users: Vec<u64> =
            accounts.iter().filter_map(|account| (settings.uids)(account)).collect();
        let body = notification_body(&accounts, &users);
        let delivery = Delivery {
            client: client.clone(),
            target: settings.target.clone(),
            signature: sign(&secret, body.as_bytes()),
            body,
            retry_base: settings.retry_base,
            _pending: pending,
            stats: settings.stats.clone(),
        };
        deliveries.spawn(delivery.run());
        // Finished deliveries are reaped here so the set holds only those still running.
        while deliveries.try_join_next().is_some() {}
    }
    deliveries.shutdown().await;
}

/// The accounts changed within `window` of the first one, with their changes' pending marks;
/// `None` once the channel closed.
async fn next_batch(
    changes: &mut UnboundedReceiver<(String, Pending)>,
    window: Duration,
) -> Option<(Vec<String>, Vec<Pending>)> {
    let (first, mark) = changes.recv().await?;
    let (mut accounts, mut pending) = (vec![first], vec![mark]);
    let window_ends = Instant::now() + window;
    while let Ok(Some((account, mark))) = tokio::time::timeout_at(window_ends, changes.recv()).await
    {
        pending.push(mark);
        if !accounts.contains(&account) {
            accounts.push(account);
        }
    }
    Some((accounts, pending))
}

/// The body, byte for byte like Dropbox's Python `json.dumps` (`", "` and `": "` separators).
pub fn notification_body(accounts: &[String], users: &[u64]) -> String {
    let accounts: Vec<String> = accounts
        .iter()
        .map(|account| serde_json::Value::from(account.as_str()).to_string())
        .collect();
    let users: Vec<String> = users.iter().map(u64::to_string).collect();
    format!(
        "{{\"list_folder\": {{\"accounts\": [{}]}}, \"delta\": {{\"users\": [{}]}}}}",
        accounts.join(", "),
        users.join(", ")
    )
}

/// Lowercase hex HMAC-SHA256 of the raw body, keyed with the app secret.
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail; an empty signature would only make
    // the receiver refuse the notification.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

struct Delivery {
    client: reqwest::Client,
    target: url::Url,
    body: String,
    signature: String,
    retry_base: Duration,
    stats: Recorder,
    /// Counts the changes in this notification as pending until it is delivered, given up or
    /// cancelled.
    _pending: Vec<Pending>,
}

impl Delivery {
    async fn run(self) {
        let started = Instant::now();
        let mut wait = self.retry_base;
        loop {
            let outcome = self
                .client
                .post(self.target.clone())
                .header("Content-Type", "application/json")
                .header("X-Dropbox-Signature", &self.signature)
                .body(self.body.clone())
                .send()
                .await;
            let delivered = matches!(&outcome, Ok(response) if response.status().as_u16() == 200);
            self.stats.webhook_attempt(delivered);
            if delivered {
                tracing::debug!(body = %self.body, "webhook delivered");
                return;
            }
            match outcome {
                Ok(response) => tracing::debug!(status = %response.status(), "webhook refused"),
                Err(error) => tracing::debug!(%error, "webhook not delivered"),
            }
            if started.elapsed() + wait > GIVE_UP_AFTER {
                tracing::warn!(body = %self.body, "webhook given up after retrying for ten minutes");
                return;
            }
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }
}

/// Why the webhook URL failed Dropbox's verification request.
#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    #[error("no webhook URL is configured")]
    NoWebhook,
    #[error("the webhook could not be reached: {0}")]
    Unreachable(String),
    #[error("the webhook answered the challenge with status {0}")]
    Status(u16),
    #[error("the webhook did not echo the challenge")]
    NotEchoed,
}

/// Dropbox's verification request: `GET <uri>?challenge=<random>`, answered within 10 s with
/// the challenge as the body. Dropbox does not retry it, so neither does this.
pub async fn challenge(target: &url::Url) -> Result<(), ChallengeError> {
    let challenge = super::tokens::random_token(32);
    let mut url = target.clone();
    url.query_pairs_mut().append_pair("challenge", &challenge);
    let client =
        webhook_client().map_err(|error| ChallengeError::Unreachable(error.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|error| ChallengeError::Unreachable(error.to_string()))?;
    if response.status().as_u16() != 200 {
        return Err(ChallengeError::Status(response.status().as_u16()));
    }
    let body =
        response.text().await.map_err(|error| ChallengeError::Unreachable(error.to_string()))?;
    if body == challenge { Ok(()) } else { Err(ChallengeError::NotEchoed) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_formatted_like_pythons_json_dumps() {
        let body = notification_body(
            &["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc".to_owned()],
            &[12345678],
        );
        assert_eq!(
            body,
            r#"{"list_folder": {"accounts": ["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"]}, "delta": {"users": [12345678]}}"#
        );
        assert_eq!(body.len(), 107);
    }

    #[test]
    fn the_signature_matches_the_documented_vector() {
        let body = notification_body(
            &["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc".to_owned()],
            &[12345678],
        );
        assert_eq!(
            sign("test_app_secret", body.as_bytes()),
            "d28161ccd83ba2d4d73925cdcc121b8491c4adfbe974ba32ac96038e3eca58ce"
        );
    }

    #[test]
    fn several_accounts_are_separated_like_python_lists() {
        let body = notification_body(&["dbid:a".to_owned(), "dbid:b".to_owned()], &[1, 2]);
        assert_eq!(
            body,
            r#"{"list_folder": {"accounts": ["dbid:a", "dbid:b"]}, "delta": {"users": [1, 2]}}"#
        );
    }
}
