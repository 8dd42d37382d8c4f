//! The HTTP client for the Dropbox API: one connection pool for every account, the three hosts
//! from the settings, retries for what is worth retrying, and each account's tokens.
//!
//! Retrying: 5xx and transport failures are retried here with full-jitter exponential backoff,
//! a few times. A `too_many_requests` 429 lowers the account's bound on calls in flight
//! ([`super::concurrency`]); when its `Retry-After` is short the refused call waits it out and
//! goes again, as Dropbox's SDKs do, while the account's other calls go on. A longer wait, or a
//! call refused again and again, goes back to the caller with its `retry_after`, so the worker
//! can reschedule the account instead of holding a slot asleep.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{RequestBuilder, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Mutex, RwLock, SemaphorePermit};
use url::Url;

use super::arg::header_json;
use super::concurrency::{CALLS_IN_FLIGHT_PER_ACCOUNT, CallLimit, Slot};
use super::content_hash::content_hash;
use super::error::{DropboxError, RateLimitReason};
use super::oauth::{self, OAuthClient};
use super::types::{Account, FileMetadata, ListFolderPage, Metadata};
use crate::account::AccountTokens;
use crate::config::DropboxSettings;

/// Refresh an access token this long before it expires, as the Python and JS SDKs do, so a call
/// never starts with a token about to die mid-flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough for a 10 MiB download on a slow link; Dropbox itself answers within seconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const USER_AGENT: &str = concat!("markdrop/", env!("CARGO_PKG_VERSION"));
const API_ARG: &str = "Dropbox-API-Arg";
const PATH_ROOT: &str = "Dropbox-API-Path-Root";
const API_RESULT: &str = "Dropbox-API-Result";

/// How often and how patiently transient failures are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first backoff's upper bound; it doubles with each attempt.
    pub base: Duration,
    /// The largest backoff.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 4, base: Duration::from_millis(500), cap: Duration::from_secs(8) }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniform wait between zero and the exponential bound (AWS's analysis shows
    /// it spreads retrying clients best).
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let bound = self.base.saturating_mul(2u32.saturating_pow(attempt)).min(self.cap);
        bound.mul_f64(rand::thread_rng().r#gen::<f64>())
    }
}

/// The app's connection to Dropbox: cheap to clone, shared by every account.
#[derive(Clone)]
pub struct DropboxClient {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    http: reqwest::Client,
    api_url: Url,
    content_url: Url,
    oauth: OAuthClient,
    retry: RetryPolicy,
    /// Counts every call by route and status, when set.
    metrics: Option<crate::metrics::Metrics>,
    /// One permit per call in flight from this process, whatever the accounts: each holds a
    /// connection and its buffers, so this bounds the memory that waiting on Dropbox takes.
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl DropboxClient {
    pub fn new(settings: &DropboxSettings) -> Result<DropboxClient, DropboxError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // Dropbox never redirects an API call, and following a redirect with a bearer
            // token or an OAuth code would hand them to whoever issued it.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(DropboxError::Transport)?;
        Ok(DropboxClient {
            inner: Arc::new(Inner {
                oauth: oauth::client(settings),
                http,
                api_url: settings.api_url.clone(),
                content_url: settings.content_url.clone(),
                retry: RetryPolicy::default(),
                metrics: None,
                in_flight: Arc::new(tokio::sync::Semaphore::new(CALLS_IN_FLIGHT_PER_PROCESS)),
            }),
        })
    }

    /// The same client with another retry policy (tests use millisecond backoffs).
    pub fn with_retry_policy(self, retry: RetryPolicy) -> DropboxClient {
        let mut inner = (*self.inner).clone();
        inner.retry = retry;
        DropboxClient { inner: Arc::new(inner) }
    }

    /// The same client, counting its calls in `metrics`.
    pub fn with_metrics(self, metrics: crate::metrics::Metrics) -> DropboxClient {
        let mut inner = (*self.inner).clone();
        inner.metrics = Some(metrics);
        DropboxClient { inner: Arc::new(inner) }
    }

    /// A handle that calls Dropbox as one account.
    pub fn account(&self, tokens: AccountTokens) -> AccountClient {
        let path_root = tokens.path_root.as_deref().and_then(|root| {
            // Pure ASCII JSON (a namespace id is digits), so always a valid header value.
            HeaderValue::from_str(&json!({".tag": "root", "root": root}).to_string()).ok()
        });
        AccountClient {
            client: self.clone(),
            tokens: RwLock::new(tokens),
            refreshing: Mutex::new(()),
            calls: CallLimit::new(CALLS_IN_FLIGHT_PER_ACCOUNT),
            path_root,
        }
    }

    pub(super) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(super) fn oauth(&self) -> &OAuthClient {
        &self.inner.oauth
    }

    pub(super) fn retry(&self) -> RetryPolicy {
        self.inner.retry
    }

    fn route_url(&self, host: &Url, route: &str) -> Url {
        let mut url = host.clone();
        url.set_path(&format!("{}/2/{route}", host.path().trim_end_matches('/')));
        url
    }

    /// Sends what `request` builds, again after transient failures when `repeat` allows, and
    /// returns a 2xx response.
    async fn send(
        &self,
        request: impl Fn() -> RequestBuilder + Send + Sync,
        repeat: Repeat,
    ) -> Result<Response, DropboxError> {
        let retry = match repeat {
            Repeat::Safe => self.inner.retry,
            Repeat::Once => RetryPolicy { attempts: 1, ..self.inner.retry },
        };
        let mut attempt = 0;
        loop {
            let request = request();
            let route = self.inner.metrics.as_ref().and_then(|_| route_of(&request));
            let sent = request.send().await;
            if let (Some(metrics), Some(route)) = (&self.inner.metrics, &route) {
                let status = sent.as_ref().map_or(0, |response| response.status().as_u16());
                metrics.dropbox_call(route, status);
            }
            let error = match sent {
                Err(error) => DropboxError::Transport(error),
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let (status, headers) = (response.status(), response.headers().clone());
                    match response.bytes().await {
                        Ok(body) => DropboxError::from_response(status, &headers, &body),
                        Err(error) => DropboxError::Transport(error),
                    }
                }
            };
            attempt += 1;
            if !error.is_transient() || attempt >= retry.attempts {
                return Err(error);
            }
            let wait = retry.backoff(attempt - 1);
            tracing::debug!(%error, attempt, ?wait, "retrying a Dropbox call");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Calls Dropbox as one linked account, refreshing its access token when it expires.
pub struct AccountClient {
    client: DropboxClient,
    tokens: RwLock<AccountTokens>,
    /// Held while refreshing, so concurrent callers that all find the token expired refresh it
    /// once (the official SDK's `TokenCache::update_token` does the same).
    refreshing: Mutex<()>,
    /// The bound on this account's calls in flight: however far a pass reads ahead, Dropbox
    /// sees no more of its calls at once than it has lately taken without a refusal.
    calls: CallLimit,
    /// `Dropbox-API-Path-Root` for files calls, when the Dropbox is a team space.
    path_root: Option<HeaderValue>,
}

/// What `download` brings back.
#[derive(Debug, Clone)]
pub struct Download {
    pub metadata: FileMetadata,
    pub content: Bytes,
}

impl AccountClient {
    /// The current tokens, refreshed ones included, for the caller to store.
    pub async fn tokens(&self) -> AccountTokens {
        self.tokens.read().await.clone()
    }

    /// `users/get_current_account`.
    pub async fn get_current_account(&self) -> Result<Account, DropboxError> {
        self.rpc("users/get_current_account", None::<&()>).await
    }

    /// `files/list_folder` on `path` (`""` for the root), leaving out files that cannot be
    /// downloaded (Google Docs and the like).
    pub async fn list_folder(
        &self,
        path: &str,
        recursive: bool,
        limit: Option<u32>,
    ) -> Result<ListFolderPage, DropboxError> {
        let mut arg = json!({
            "path": path,
            "recursive": recursive,
            "include_non_downloadable_files": false,
        });
        if let Some(limit) = limit {
            arg["limit"] = json!(limit);
        }
        self.rpc("files/list_folder", Some(&arg)).await
    }

    /// `files/list_folder/continue`. A `reset` answer is `DropboxError::Route` with `is_reset()`.
    pub async fn list_folder_continue(&self, cursor: &str) -> Result<ListFolderPage, DropboxError> {
        self.rpc("files/list_folder/continue", Some(&json!({ "cursor": cursor }))).await
    }

    /// `files/get_metadata`.
    pub async fn get_metadata(&self, path: &str) -> Result<Metadata, DropboxError> {
        self.rpc("files/get_metadata", Some(&json!({ "path": path }))).await
    }

    /// `files/delete_v2`; returns what was deleted.
    pub async fn delete(&self, path: &str) -> Result<Metadata, DropboxError> {
        self.delete_with(json!({ "path": path })).await
    }

    /// `files/delete_v2` with `parent_rev`: deletes the file only while `rev` is still its
    /// latest revision, so a file changed since it was looked at is never lost. A changed file
    /// answers a route error (`path_write/conflict` or `path_lookup`).
    pub async fn delete_revision(&self, path: &str, rev: &str) -> Result<Metadata, DropboxError> {
        self.delete_with(json!({ "path": path, "parent_rev": rev })).await
    }

    async fn delete_with(&self, arg: serde_json::Value) -> Result<Metadata, DropboxError> {
        #[derive(serde::Deserialize)]
        struct DeleteResult {
            metadata: Metadata,
        }
        let result: DeleteResult = self.rpc("files/delete_v2", Some(&arg)).await?;
        Ok(result.metadata)
    }

    /// `files/download`, refusing a file over `limit` bytes before reading its body (a huge
    /// file named `.md` must not exhaust the worker's memory).
    pub async fn download(&self, path: &str, limit: u64) -> Result<Download, DropboxError> {
        let (metadata, mut answer) = self.start_download(path).await?;
        if metadata.size > limit {
            return Err(DropboxError::TooLarge { size: metadata.size, limit });
        }
        let mut content =
            bytes::BytesMut::with_capacity(usize::try_from(metadata.size).unwrap_or(0));
        // The metadata's size is Dropbox's word; the body is what counts.
        while let Some(chunk) = answer.response.chunk().await.map_err(DropboxError::Transport)? {
            content.extend_from_slice(&chunk);
            if content.len() as u64 > limit {
                return Err(DropboxError::TooLarge { size: content.len() as u64, limit });
            }
        }
        Ok(Download { metadata, content: content.freeze() })
    }

    /// `files/download`, handing the content to `each` piece by piece as it arrives instead of
    /// holding it: for reading a file of any size in bounded memory.
    pub async fn download_each(
        &self,
        path: &str,
        mut each: impl FnMut(&[u8]),
    ) -> Result<FileMetadata, DropboxError> {
        let (metadata, mut answer) = self.start_download(path).await?;
        while let Some(chunk) = answer.response.chunk().await.map_err(DropboxError::Transport)? {
            each(&chunk);
        }
        Ok(metadata)
    }

    /// A download's metadata, with its body not read yet.
    async fn start_download(&self, path: &str) -> Result<(FileMetadata, Answer<'_>), DropboxError> {
        let arg = header_arg(&json!({ "path": path }))?;
        let url = self.client.route_url(&self.client.inner.content_url, "files/download");
        let answer = self.authorized(|token| self.post(&url, token).header(API_ARG, &arg)).await?;
        let metadata = answer
            .response
            .headers()
            .get(API_RESULT)
            .ok_or_else(|| {
                DropboxError::unexpected_success("a download without a Dropbox-API-Result header")
            })
            .and_then(|value| {
                serde_json::from_slice::<FileMetadata>(value.as_bytes()).map_err(|error| {
                    DropboxError::unexpected_success(format!("Dropbox-API-Result: {error}"))
                })
            })?;
        Ok((metadata, answer))
    }

    /// `files/upload` in overwrite mode with `mute` (no desktop notification for a generated
    /// file), carrying the content hash so Dropbox refuses bytes damaged in transit.
    pub async fn upload(&self, path: &str, content: Bytes) -> Result<FileMetadata, DropboxError> {
        let hash = content_hash(&content);
        self.upload_hashed(path, content, &hash).await
    }

    /// [`AccountClient::upload`] with the content hash computed already (hashing a large file
    /// is CPU work the caller may rather do off the async threads).
    pub async fn upload_hashed(
        &self,
        path: &str,
        content: Bytes,
        content_hash: &str,
    ) -> Result<FileMetadata, DropboxError> {
        let arg = header_arg(&json!({
            "path": path,
            "mode": { ".tag": "overwrite" },
            "autorename": false,
            "mute": true,
            "content_hash": content_hash,
        }))?;
        self.upload_style("files/upload", &arg, content).await
    }

    /// `files/upload_session/start` with the whole of `content`, closed: the bytes wait at
    /// Dropbox for [`AccountClient::finish_batch`] to commit them. `content_hash` is checked
    /// here, where the bytes are sent (a finish's own hash is of the bytes sent with it: none).
    /// A session takes no write lock, so many may be started at once (docs/dropbox.md §11).
    /// Returns the session id.
    pub async fn upload_session_start(
        &self,
        content: Bytes,
        content_hash: &str,
    ) -> Result<String, DropboxError> {
        #[derive(Deserialize)]
        struct Started {
            session_id: String,
        }
        let arg = header_arg(&json!({ "close": true, "content_hash": content_hash }))?;
        let started: Started =
            self.upload_style("files/upload_session/start", &arg, content).await?;
        Ok(started.session_id)
    }

    /// An upload-style route (docs/dropbox.md §1): `arg` in the `Dropbox-API-Arg` header, the
    /// bytes as the body, a JSON result.
    async fn upload_style<T: DeserializeOwned>(
        &self,
        route: &str,
        arg: &str,
        content: Bytes,
    ) -> Result<T, DropboxError> {
        let url = self.client.route_url(&self.client.inner.content_url, route);
        let answer = self
            .authorized(|token| {
                self.post(&url, token)
                    .header(API_ARG, arg)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(content.clone())
            })
            .await?;
        json_body(answer).await
    }

    /// `files/upload_session/finish_batch_v2`: commits closed sessions (at most
    /// [`MAX_BATCH_ENTRIES`]) in overwrite mode with `mute`, taking the namespace's write lock
    /// once for them all. The outer error is the call's; each entry has its own result, in order,
    /// a failed entry read as [`AccountClient::upload`] would read the same refusal.
    pub async fn finish_batch(
        &self,
        entries: &[BatchEntry],
    ) -> Result<Vec<Result<FileMetadata, DropboxError>>, DropboxError> {
        #[derive(Deserialize)]
        struct Finished {
            entries: Vec<serde_json::Value>,
        }
        if entries.len() > MAX_BATCH_ENTRIES {
            return Err(DropboxError::local(format!(
                "a batch of {} entries is over Dropbox's {MAX_BATCH_ENTRIES}",
                entries.len()
            )));
        }
        let arg = json!({
            "entries": entries.iter().map(|entry| json!({
                "cursor": { "session_id": entry.session_id, "offset": entry.size },
                "commit": {
                    "path": entry.path,
                    "mode": { ".tag": "overwrite" },
                    "autorename": false,
                    "mute": true,
                },
            })).collect::<Vec<_>>(),
        });
        // Not sent again by the client: a commit whose answer was lost may have happened, and
        // its sessions are spent; the pass tries the pages again, and finds them current.
        let finished: Finished =
            self.rpc_with("files/upload_session/finish_batch_v2", Some(&arg), Repeat::Once).await?;
        if finished.entries.len() != entries.len() {
            return Err(DropboxError::unexpected_success(format!(
                "{} results for a batch of {}",
                finished.entries.len(),
                entries.len()
            )));
        }
        Ok(finished.entries.into_iter().map(batch_result).collect())
    }

    /// `auth/token/revoke`: ends this link at Dropbox (the refresh token dies with it).
    pub async fn revoke(&self) -> Result<(), DropboxError> {
        let _: serde_json::Value = self.rpc("auth/token/revoke", None::<&()>).await?;
        Ok(())
    }

    /// An RPC route: JSON argument in the body (`null` for routes that take none).
    async fn rpc<T: DeserializeOwned>(
        &self,
        route: &str,
        arg: Option<&impl Serialize>,
    ) -> Result<T, DropboxError> {
        self.rpc_with(route, arg, Repeat::Safe).await
    }

    /// [`AccountClient::rpc`], sent again after a transient failure only if `repeat` allows.
    async fn rpc_with<T: DeserializeOwned>(
        &self,
        route: &str,
        arg: Option<&impl Serialize>,
        repeat: Repeat,
    ) -> Result<T, DropboxError> {
        let body = match arg {
            Some(arg) => serde_json::to_vec(arg),
            None => serde_json::to_vec(&()),
        }
        .map_err(|error| DropboxError::local(format!("cannot encode the argument: {error}")))?;
        let body = Bytes::from(body);
        let url = self.client.route_url(&self.client.inner.api_url, route);
        let answer = self
            .authorized_with(
                |token| {
                    self.post(&url, token)
                        .header(CONTENT_TYPE, "application/json")
                        .body(body.clone())
                },
                repeat,
            )
            .await?;
        json_body(answer).await
    }

    /// A POST to `url` carrying the bearer token; every route is a POST.
    /// Files calls of a team space are made from its root, so team folders are in reach.
    fn post(&self, url: &Url, token: HeaderValue) -> RequestBuilder {
        let request = self.client.http().post(url.clone()).header(AUTHORIZATION, token);
        match &self.path_root {
            Some(root) if url.path().contains("/2/files/") => request.header(PATH_ROOT, root),
            _ => request,
        }
    }

    /// Sends with the account's access token: refreshes first when it is about to expire, and
    /// once more when Dropbox answers `expired_access_token` or `invalid_access_token` anyway (a
    /// token can die early; only a refused refresh, or the same answer after a refresh, says the
    /// grant itself is gone).
    async fn authorized(
        &self,
        request: impl Fn(HeaderValue) -> RequestBuilder + Send + Sync,
    ) -> Result<Answer<'_>, DropboxError> {
        self.authorized_with(request, Repeat::Safe).await
    }

    /// [`AccountClient::authorized`], sent again after a transient failure only if `repeat`
    /// allows. (A refused token is always worth a second try: Dropbox did nothing with it.)
    async fn authorized_with(
        &self,
        request: impl Fn(HeaderValue) -> RequestBuilder + Send + Sync,
        repeat: Repeat,
    ) -> Result<Answer<'_>, DropboxError> {
        let mut tokens = self.tokens.read().await.clone();
        if tokens.expires_within(REFRESH_MARGIN) {
            tokens = self.refresh_replacing(&tokens.access_token).await?;
        }
        let mut refreshed = false;
        let mut waits = 0;
        loop {
            let header = bearer(&tokens.access_token)?;
            // The account's room first: an account at its limit holds none of the process's.
            let slot = self.calls.start().await;
            let process = self.client.inner.in_flight.acquire().await.ok();
            let sent = self.client.send(|| request(header.clone()), repeat).await;
            match sent {
                // A refused call did nothing, so even a call sent only once may go again.
                Err(DropboxError::RateLimited {
                    reason: RateLimitReason::TooManyRequests,
                    retry_after,
                }) if waits < WAITS_IN_PLACE && retry_after <= LONGEST_WAIT_IN_PLACE => {
                    // Every call of the account waits it out, this one when it starts again.
                    slot.refused(retry_after);
                    drop((process, slot));
                    waits += 1;
                    tracing::debug!(
                        ?retry_after,
                        limit = self.calls.current(),
                        "waiting out a rate limit"
                    );
                    if let Some(metrics) = &self.client.inner.metrics {
                        metrics.rate_limit_waited();
                    }
                }
                Err(error @ DropboxError::RateLimited { reason, retry_after }) => {
                    // Write contention is about the namespace's lock, not about how many
                    // calls the account makes.
                    if reason == RateLimitReason::TooManyRequests {
                        slot.refused(retry_after);
                    }
                    return Err(error);
                }
                Err(error) if !refreshed && error.calls_for_refresh() => {
                    slot.answered();
                    drop((process, slot));
                    tokens = self.refresh_replacing(&tokens.access_token).await?;
                    refreshed = true;
                }
                Err(error) => {
                    slot.answered();
                    return Err(error);
                }
                Ok(response) => {
                    slot.answered();
                    return Ok(Answer { response, _room: (slot, process) });
                }
            }
        }
    }

    /// The bound on this account's calls in flight now.
    pub fn calls_in_flight_limit(&self) -> usize {
        self.calls.current()
    }

    /// Refreshes the access token, unless another caller already replaced `stale`.
    async fn refresh_replacing(&self, stale: &SecretString) -> Result<AccountTokens, DropboxError> {
        let _refreshing = self.refreshing.lock().await;
        let current = self.tokens.read().await.clone();
        if current.access_token.expose_secret() != stale.expose_secret() {
            return Ok(current);
        }
        let fresh = oauth::refresh(&self.client, &current.refresh_token).await?;
        let tokens = AccountTokens {
            access_token: fresh.access_token,
            refresh_token: current.refresh_token,
            expires_at: fresh.expires_at,
            path_root: current.path_root,
        };
        *self.tokens.write().await = tokens.clone();
        tracing::debug!("refreshed a Dropbox access token");
        Ok(tokens)
    }
}

/// A 2xx answer, holding its call's room (the account's and the process's) until its body has
/// been read: its connection and buffers are held until then, and the emulator counts it in
/// flight until its answer is made.
struct Answer<'a> {
    response: Response,
    _room: (Slot<'a>, Option<SemaphorePermit<'a>>),
}

/// Whether a call may be sent again after a transient failure (5xx, no answer).
#[derive(Debug, Clone, Copy)]
enum Repeat {
    /// Doing it twice is doing it once: reads, and writes of the same bytes to the same path.
    Safe,
    /// A second try could meet what the first did (a batch commit spends its sessions).
    Once,
}

/// The longest `Retry-After` that a pass waits out (its account's calls all held meanwhile)
/// instead of ending: ending would lose every upload session not yet committed, and a second
/// is less than handing the account back to the queue costs. Longer waits go to the worker,
/// which frees the slot. (The emulator asks for one second, docs/dropbox.md §14.)
pub const LONGEST_WAIT_IN_PLACE: Duration = Duration::from_secs(1);

/// How many refusals one call waits out before it goes back to the caller.
const WAITS_IN_PLACE: u32 = 3;

/// The most calls one process has in flight at once, all accounts together: at Dropbox's
/// 100-300 ms a call that is over a thousand calls a second, while the connections and buffers
/// they hold stay within a small dyno's memory (BENCHMARKS.md).
pub const CALLS_IN_FLIGHT_PER_PROCESS: usize = 512;

/// The most entries one `finish_batch_v2` may commit (docs/dropbox.md §11).
pub const MAX_BATCH_ENTRIES: usize = 1000;

/// One file of a batch commit: its closed upload session and where it goes.
#[derive(Debug, Clone)]
pub struct BatchEntry {
    pub session_id: String,
    /// The session's length in bytes: the cursor's offset once all of it is uploaded.
    pub size: u64,
    pub path: String,
}

/// One entry of `finish_batch_v2`'s answer: `success` with the file's metadata flattened
/// beside the tag, or `failure` with an `UploadSessionFinishError`.
fn batch_result(mut entry: serde_json::Value) -> Result<FileMetadata, DropboxError> {
    match entry[".tag"].as_str() {
        Some("success") => serde_json::from_value(entry).map_err(|error| {
            DropboxError::unexpected_success(format!("a batch entry's metadata: {error}"))
        }),
        Some("failure") => Err(DropboxError::from_route_error(entry["failure"].take())),
        _ => Err(DropboxError::unexpected_success("a batch entry neither success nor failure")),
    }
}

/// The route a request calls (`files/upload`), from the path after `/2/`.
fn route_of(request: &RequestBuilder) -> Option<String> {
    let request = request.try_clone()?.build().ok()?;
    let path = request.url().path();
    path.find("/2/").map(|at| path[at + 3..].to_owned())
}

fn bearer(token: &SecretString) -> Result<HeaderValue, DropboxError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        .map_err(|_| DropboxError::local("the access token is not a valid header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

fn header_arg(arg: &serde_json::Value) -> Result<String, DropboxError> {
    header_json(arg)
        .map_err(|error| DropboxError::local(format!("cannot encode the argument: {error}")))
}

/// The JSON result of an RPC or upload route. Such a response never carries
/// `Dropbox-API-Result` (docs/dropbox.md §1): one that does is not the answer we asked for.
async fn json_body<T: DeserializeOwned>(answer: Answer<'_>) -> Result<T, DropboxError> {
    let response = answer.response;
    if response.headers().contains_key(API_RESULT) {
        return Err(DropboxError::unexpected_success(
            "an RPC or upload response with a Dropbox-API-Result header",
        ));
    }
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(DropboxError::Transport)?;
    serde_json::from_slice(&body)
        .map_err(|error| DropboxError::Unexpected { status, detail: error.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_its_doubling_bound_and_the_cap() {
        let policy = RetryPolicy {
            attempts: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(700),
        };
        for _ in 0..200 {
            assert!(policy.backoff(0) <= Duration::from_millis(100));
            assert!(policy.backoff(2) <= Duration::from_millis(400));
            assert!(policy.backoff(9) <= Duration::from_millis(700));
        }
        let waits: Vec<Duration> = (0..50).map(|_| policy.backoff(3)).collect();
        assert!(waits.iter().any(|w| *w != waits[0]), "full jitter varies the wait");
    }

    #[test]
    fn a_batch_entry_is_the_files_metadata_or_the_error_a_single_upload_would_give() {
        let success = json!({
            ".tag": "success", "name": "a.html", "id": "id:1", "path_lower": "/a.html",
            "path_display": "/A.html", "rev": "0123456789", "size": 3,
            "server_modified": "2026-11-29T10:00:00Z", "content_hash": "h",
        });
        let written = batch_result(success).expect("written");
        assert_eq!(
            (written.path_display.as_deref(), written.content_hash.as_deref()),
            (Some("/A.html"), Some("h"))
        );

        let folder = json!({".tag": "failure", "failure": {".tag": "path", "path": {".tag": "conflict", "conflict": {".tag": "folder"}}}});
        match batch_result(folder) {
            Err(DropboxError::Route(route)) => {
                assert_eq!(route.tags, ["path", "conflict", "folder"]);
                assert!(route.is_lasting_write_refusal());
            }
            other => panic!("a route error, not {other:?}"),
        }
        let lost = json!({".tag": "failure", "failure": {".tag": "lookup_failed", "lookup_failed": {".tag": "not_found"}}});
        assert!(
            matches!(batch_result(lost), Err(DropboxError::Route(route)) if route.tags == ["lookup_failed", "not_found"])
        );
        let contended =
            json!({".tag": "failure", "failure": {".tag": "too_many_write_operations"}});
        assert!(matches!(
            batch_result(contended),
            Err(DropboxError::RateLimited {
                reason: crate::dropbox::RateLimitReason::TooManyWriteOperations,
                ..
            })
        ));
        assert!(matches!(
            batch_result(json!({".tag": "maybe"})),
            Err(DropboxError::Unexpected { .. })
        ));
    }
}
