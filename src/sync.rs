//! One account's sync pass: list what changed since the cursor, convert each changed `.md` into
//! its sibling `.html`, remove the `.html` of a deleted `.md` when markdrop still owns it, and
//! commit the cursor after each page.
//!
//! The decisions are plain functions ([`plan`], [`html_path`], [`is_markdown`]), tested on their
//! own; [`run`] carries them out against Dropbox and the store. Within a page, downloads and
//! renders run up to `read_ahead` files ahead, while writes (uploads, deletions) go one at a time
//! and in listing order: Dropbox serialises writes per namespace, and a path's changes must land
//! in the order they happened.
//!
//! Conversions are idempotent (the same Markdown always renders to the same bytes), which is what
//! makes a pass safe to repeat after a crash: only the cursor and the file records need fencing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::watch;

use crate::config::WorkerSettings;
use crate::dropbox::{AccountClient, DropboxError, Metadata, content_hash};
use crate::render;
use crate::store::{
    AccountStatus, Conversion, FileRecord, Lease, LeaseError, Outcome, RecordChanges, Store,
};

/// Why a pass stopped before the end of the listing. Progress made so far is committed.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// Dropbox asked to wait (429, or write contention): the account is rescheduled.
    #[error("Dropbox asked markdrop to wait {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// Dropbox refuses the account's tokens for good (revoked, refresh refused).
    #[error("Dropbox no longer accepts markdrop's access: {reason}")]
    Unlinked { reason: String },
    /// The lease was lost: another worker may be on the account now.
    #[error("the lease on the account was lost")]
    LeaseLost,
    /// The worker is shutting down.
    #[error("the worker is stopping")]
    Stopped,
    /// Anything else (Dropbox 5xx after retries, transport, the store): retried with backoff.
    #[error("{message}")]
    Failed {
        /// For the account page: what went wrong, in words a person understands.
        message: String,
        #[source]
        source: anyhow::Error,
    },
}

impl PassError {
    fn failed(message: impl Into<String>, source: impl Into<anyhow::Error>) -> PassError {
        PassError::Failed { message: message.into(), source: source.into() }
    }
}

impl From<LeaseError> for PassError {
    fn from(error: LeaseError) -> PassError {
        match error {
            LeaseError::Lost => PassError::LeaseLost,
            LeaseError::Store(error) => {
                PassError::failed("markdrop's store did not answer; it will try again", error)
            }
        }
    }
}

/// A Dropbox error that ends the pass; per-file errors are reported by [`file_outcome`].
fn pass_error(error: DropboxError) -> PassError {
    match error {
        DropboxError::RateLimited { retry_after, .. } => PassError::RateLimited { retry_after },
        DropboxError::InvalidToken { reason } => PassError::Unlinked { reason },
        DropboxError::RefreshRefused(reason) => PassError::Unlinked { reason },
        other => PassError::failed(other.to_string(), other),
    }
}

/// What a pass needs besides its cursor.
pub struct PassContext {
    pub client: Arc<AccountClient>,
    pub store: Store,
    pub lease: Lease,
    /// `false` once the lease is lost or about to expire unrenewed.
    pub held: watch::Receiver<bool>,
    /// `true` once the worker is shutting down.
    pub stopping: watch::Receiver<bool>,
    pub settings: WorkerSettings,
    /// The process's memory budget for files being converted, in KiB permits, and its size;
    /// `None`: unbounded.
    pub memory: Option<(Arc<tokio::sync::Semaphore>, u64)>,
    /// Where file outcomes and upload latencies are counted.
    pub metrics: crate::metrics::Metrics,
    /// When the account became due (ms since the epoch), for the webhook-to-upload latency.
    pub due_at_ms: u64,
}

impl PassContext {
    /// Called before every write: a worker that may have lost its lease writes nothing more.
    fn check_lease(&self) -> Result<(), PassError> {
        if *self.held.borrow() { Ok(()) } else { Err(PassError::LeaseLost) }
    }

    /// Called before each file: a stopping worker finishes the file in hand, starts no other.
    fn check_stopping(&self) -> Result<(), PassError> {
        if *self.stopping.borrow() { Err(PassError::Stopped) } else { Ok(()) }
    }
}

/// Runs a pass from `cursor` (`None`: list everything) to the end of the listing. Each page's
/// record changes and cursor are committed together, with `status`, whose recent conversions
/// the pass updates.
pub async fn run(
    context: &PassContext,
    mut cursor: Option<String>,
    status: &mut AccountStatus,
) -> Result<(), PassError> {
    // A listing from the start (the first pass, one whose first cursor was never committed, or
    // one after a `reset`) says nothing of notes deleted meanwhile: the `.md` paths it does
    // list are gathered, and records of any others are treated as deleted at the end.
    let mut relisting: Option<HashSet<String>> = cursor.is_none().then(HashSet::new);
    loop {
        context.check_stopping()?;
        context.check_lease()?;
        let page = match &cursor {
            None => context.client.list_folder("", true, None).await,
            Some(from) => match context.client.list_folder_continue(from).await {
                Err(DropboxError::Route(error)) if error.is_reset() => {
                    // The file records keep unchanged files from being uploaded again.
                    tracing::info!(account = %context.lease.account(), "Dropbox reset the cursor; listing everything again");
                    cursor = None;
                    relisting = Some(HashSet::new());
                    continue;
                }
                page => page,
            },
        }
        .map_err(pass_error)?;
        if let Some(listed) = &mut relisting {
            listed.extend(page.entries.iter().filter_map(|entry| match entry {
                Metadata::File(file) if is_markdown(&file.name) => file.path_lower.clone(),
                _ => None,
            }));
        }
        commit_page(context, &page.entries, Some(&page.cursor), status).await?;
        cursor = Some(page.cursor);
        if !page.has_more {
            break;
        }
    }
    if let Some(listed) = relisting {
        let recorded = context
            .store
            .recorded_paths(context.lease.account())
            .await
            .map_err(LeaseError::Store)?;
        let gone: Vec<Metadata> = recorded
            .into_iter()
            .filter(|path| !listed.contains(path))
            .map(|path| {
                let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
                Metadata::Deleted(crate::dropbox::DeletedMetadata {
                    name,
                    path_lower: Some(path.clone()),
                    path_display: Some(path),
                })
            })
            .collect();
        if !gone.is_empty() {
            commit_page(context, &gone, None, status).await?;
        }
    }
    Ok(())
}

/// Syncs one page of entries and commits what it changed, with `cursor` when the whole page
/// went through. Whatever was written is recorded even when the page did not finish, so a
/// retry does not upload it again.
async fn commit_page(
    context: &PassContext,
    entries: &[Metadata],
    cursor: Option<&str>,
    status: &mut AccountStatus,
) -> Result<(), PassError> {
    let mut changes = RecordChanges::default();
    let outcome = sync_page(context, entries, &mut changes, status).await;
    let cursor = if outcome.is_ok() { cursor } else { None };
    if outcome.is_ok() || !changes.is_empty() {
        context.store.commit(&context.lease, &changes, cursor, Some(status)).await?;
    }
    outcome
}

/// One step of a page, in listing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Download `markdown`, render it, upload it as `html`.
    Convert {
        /// Display path of the `.md`.
        markdown: String,
        /// Lower-case path of the `.md`: the key of its record.
        key: String,
        /// Display path of the `.html` to write.
        html: String,
        /// The name the renderer falls back to for a title.
        stem: String,
        /// `content_hash` of the converted source last time, if any: a download with the same
        /// hash (after a reset, or a listing without hashes) is not uploaded again.
        last_hash: Option<String>,
        /// The size the listing gave, for the memory budget.
        size: u64,
    },
    /// Report a Markdown file that is left alone.
    Skip { markdown: String, reason: String },
    /// The `.md` was deleted: remove its `.html` if it is still what markdrop uploaded.
    RemoveHtml { markdown: String, key: String },
    /// Something that may have been a folder was deleted: forget every record under it (its
    /// files went with it).
    ForgetUnder { folder: String },
}

/// What to do about a page of entries, given the records of its `.md` files as they were before
/// the page (lower-case path → record).
pub fn plan(
    entries: &[Metadata],
    records: &HashMap<String, FileRecord>,
    max_markdown_bytes: u64,
) -> Vec<Step> {
    // The source hash each `.md` has after the steps so far; an entry later in the same page
    // sees what earlier entries did.
    let mut known: HashMap<&str, Option<&str>> = HashMap::new();
    let mut steps = Vec::new();
    for entry in entries {
        match entry {
            Metadata::File(file) => {
                let Some(key) = file.path_lower.as_deref() else { continue };
                let display = file.path_display.as_deref().unwrap_or(key);
                if !is_markdown(&file.name) {
                    continue;
                }
                let last_hash = known
                    .get(key)
                    .copied()
                    .unwrap_or_else(|| records.get(key).map(|record| record.source_hash.as_str()));
                if !file.is_downloadable {
                    steps.push(Step::Skip {
                        markdown: display.to_owned(),
                        reason: "Dropbox cannot download it".to_owned(),
                    });
                } else if file.size > max_markdown_bytes {
                    steps.push(Step::Skip {
                        markdown: display.to_owned(),
                        reason: format!(
                            "it is {}, over the {} limit",
                            human_bytes(file.size),
                            human_bytes(max_markdown_bytes)
                        ),
                    });
                } else if file.content_hash.is_none() || file.content_hash.as_deref() != last_hash {
                    steps.push(Step::Convert {
                        markdown: display.to_owned(),
                        key: key.to_owned(),
                        html: html_path(display),
                        stem: stem(&file.name).to_owned(),
                        last_hash: last_hash.map(str::to_owned),
                        size: file.size,
                    });
                    known.insert(key, file.content_hash.as_deref());
                }
            }
            Metadata::Deleted(deleted) => {
                let Some(key) = deleted.path_lower.as_deref() else { continue };
                let display = deleted.path_display.as_deref().unwrap_or(key);
                let recorded = match known.get(key) {
                    Some(hash) => hash.is_some(),
                    None => records.contains_key(key),
                };
                if is_markdown(&deleted.name) && recorded {
                    steps.push(Step::RemoveHtml {
                        markdown: display.to_owned(),
                        key: key.to_owned(),
                    });
                }
                known.insert(key, None);
                // Dropbox does not say whether a file or a folder went; if a folder did, the
                // files under it went with it. (For a file this forgets nothing.)
                steps.push(Step::ForgetUnder { folder: key.to_owned() });
            }
            Metadata::Folder(_) | Metadata::Other => {}
        }
    }
    steps
}

/// Whether a file name is Markdown: a non-empty stem and the extension `.md` in any case.
pub fn is_markdown(name: &str) -> bool {
    name.len() > 3 && name.as_bytes()[name.len() - 3..].eq_ignore_ascii_case(b".md")
}

/// The sibling `.html` of a `.md` path, keeping the display casing of folder and stem:
/// `/Notes/ReadMe.MD` → `/Notes/ReadMe.html`.
pub fn html_path(markdown: &str) -> String {
    // `.md` is ASCII, so cutting three bytes lands on a character boundary.
    format!("{}.html", &markdown[..markdown.len() - 3])
}

fn stem(name: &str) -> &str {
    &name[..name.len() - 3]
}

fn human_bytes(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

/// A step whose reading part (download and render) is done, ready for its write.
enum Prepared {
    Upload {
        markdown: String,
        key: String,
        html: String,
        source_hash: String,
        document: Bytes,
        /// `content_hash` of `document`.
        html_hash: String,
        /// This file's share of the worker's memory budget, held until it is uploaded.
        _memory: Option<tokio::sync::OwnedSemaphorePermit>,
    },
    /// Nothing to write; report this (or nothing) for the file.
    Done {
        markdown: String,
        outcome: Option<Outcome>,
    },
    Write(Step),
}

type Preparation = Pin<Box<dyn Future<Output = Result<Prepared, PassError>> + Send>>;

async fn sync_page(
    context: &PassContext,
    entries: &[Metadata],
    changes: &mut RecordChanges,
    status: &mut AccountStatus,
) -> Result<(), PassError> {
    let keys: Vec<String> = entries
        .iter()
        .filter_map(|entry| match entry {
            Metadata::File(file) if is_markdown(&file.name) => file.path_lower.clone(),
            Metadata::Deleted(deleted) if is_markdown(&deleted.name) => deleted.path_lower.clone(),
            _ => None,
        })
        .collect();
    let records: HashMap<String, FileRecord> = context
        .store
        .file_records(context.lease.account(), &keys)
        .await
        .map_err(LeaseError::Store)?
        .into_iter()
        .zip(keys)
        .filter_map(|(record, key)| Some((key, record?)))
        .collect();
    let mut steps = plan(entries, &records, context.settings.max_markdown_bytes).into_iter();
    // Up to `read_ahead` steps are being prepared (each in a task of its own, so they go on
    // while this loop waits for an upload); they are taken in listing order.
    let mut pipeline = VecDeque::new();
    loop {
        while pipeline.len() < context.settings.read_ahead.max(1) {
            let Some(step) = steps.next() else { break };
            let (head, is_head) = watch::channel(false);
            pipeline.push_back((prepare(context, step, is_head), head));
        }
        context.check_stopping()?;
        let Some((preparation, head)) = pipeline.pop_front() else { break };
        // The step this pass waits for never waits for the memory budget: every pass can always
        // make progress, whatever the read-ahead of the others holds.
        let _ = head.send(true);
        match preparation.await? {
            Prepared::Upload { markdown, key, html, source_hash, document, html_hash, _memory } => {
                context.check_lease()?;
                // The page about to be written is recorded as markdrop's first: a worker killed
                // between the upload and the page's commit must not leave a page that a later
                // deletion of the note would take for a person's edit. The source hash stays the
                // old one until the upload is done, so such a note is converted again.
                let previous = match changes.get(&key) {
                    Some(record) => record.cloned(),
                    None => records.get(&key).cloned(),
                };
                let intent = FileRecord {
                    pending_html_hash: Some(html_hash.clone()),
                    ..previous.unwrap_or_else(|| FileRecord {
                        source_hash: String::new(),
                        html_path: html.clone(),
                        html_hash: String::new(),
                        pending_html_hash: None,
                    })
                };
                let mut intended = RecordChanges::default();
                intended.files.insert(key.clone(), Some(intent));
                context.store.commit(&context.lease, &intended, None, None).await?;
                let uploaded = context.client.upload_hashed(&html, document, &html_hash).await;
                let outcome = match uploaded {
                    Ok(uploaded) => {
                        let html_hash = uploaded.content_hash.unwrap_or(html_hash);
                        let html_path = uploaded.path_display.unwrap_or(html);
                        let record = FileRecord {
                            source_hash,
                            html_path,
                            html_hash,
                            pending_html_hash: None,
                        };
                        changes.files.insert(key, Some(record));
                        let now_ms = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |elapsed| elapsed.as_millis() as u64);
                        let latency = now_ms.saturating_sub(context.due_at_ms);
                        context.metrics.webhook_to_upload(Duration::from_millis(latency));
                        Some(Outcome::Converted)
                    }
                    Err(error) => file_outcome(error)?,
                };
                report(context, status, markdown, outcome);
            }
            Prepared::Done { markdown, outcome } => report(context, status, markdown, outcome),
            Prepared::Write(Step::RemoveHtml { markdown, key }) => {
                let record = match changes.get(&key) {
                    Some(record) => record.cloned(),
                    None => records.get(&key).cloned(),
                };
                if let Some(record) = record {
                    context.check_lease()?;
                    let outcome = remove_html(context, &record).await?;
                    report(context, status, markdown, outcome);
                }
                changes.files.insert(key, None);
            }
            Prepared::Write(Step::ForgetUnder { folder }) => changes.forget_under(&folder),
            Prepared::Write(Step::Skip { markdown, reason }) => {
                report(context, status, markdown, Some(Outcome::Skipped { reason }));
            }
            Prepared::Write(Step::Convert { .. }) => unreachable!("conversions are prepared"),
        }
    }
    Ok(())
}

/// Starts a step's reading part. Downloads and renders run as tasks of their own, so they go on
/// while the page waits for an upload.
/// `is_head` turns `true` once the pass waits for this step.
fn prepare(context: &PassContext, step: Step, mut is_head: watch::Receiver<bool>) -> Preparation {
    let Step::Convert { markdown, key, html, stem, last_hash, size } = step else {
        return Box::pin(std::future::ready(Ok(Prepared::Write(step))));
    };
    let client = context.client.clone();
    let memory = context.memory.clone();
    let limit = context.settings.max_markdown_bytes;
    let render_limit = context.settings.render_time_limit;
    let task = AbortOnDrop(tokio::spawn(async move {
        // The Markdown and its HTML (about twice as large) count against the process's memory
        // budget until the upload is done, so many large notes at once queue instead of
        // exhausting a small machine.
        let memory = match memory {
            Some(memory) => {
                let wanted = kib(size.saturating_mul(3)).min(kib(limit.saturating_mul(3)));
                let permits = wanted.min(u32::try_from(memory.1).unwrap_or(u32::MAX));
                tokio::select! {
                    permit = memory.0.acquire_many_owned(permits) => permit.ok(),
                    _ = is_head.wait_for(|head| *head) => None,
                }
            }
            None => None,
        };
        let download = match client.download(&markdown, limit).await {
            Ok(download) => download,
            Err(error) => return Ok(Prepared::Done { outcome: file_outcome(error)?, markdown }),
        };
        if download.metadata.content_hash.is_some() && download.metadata.content_hash == last_hash {
            return Ok(Prepared::Done { markdown, outcome: None });
        }
        // Hashing and rendering are CPU work: off the async threads, and bounded in time.
        let rendering = tokio::task::spawn_blocking(move || {
            let source_hash =
                download.metadata.content_hash.unwrap_or_else(|| content_hash(&download.content));
            if last_hash.as_deref() == Some(source_hash.as_str()) {
                return None;
            }
            let document = Bytes::from(render::render(&download.content, &stem));
            let html_hash = content_hash(&document);
            Some((source_hash, document, html_hash))
        });
        let rendered = match tokio::time::timeout(render_limit, rendering).await {
            Ok(Ok(Some(rendered))) => rendered,
            Ok(Ok(None)) => return Ok(Prepared::Done { markdown, outcome: None }),
            Ok(Err(panic)) => {
                tracing::error!(%markdown, error = %panic, "rendering panicked");
                let message = "markdrop could not render it (a bug; it has been logged)";
                return Ok(Prepared::Done {
                    markdown,
                    outcome: Some(Outcome::Failed { message: message.to_owned() }),
                });
            }
            Err(_) => {
                let message = format!("rendering took longer than {render_limit:?}");
                return Ok(Prepared::Done { markdown, outcome: Some(Outcome::Failed { message }) });
            }
        };
        let (source_hash, document, html_hash) = rendered;
        Ok(Prepared::Upload {
            markdown,
            key,
            html,
            source_hash,
            document,
            html_hash,
            _memory: memory,
        })
    }));
    Box::pin(async move {
        match task.await {
            Ok(prepared) => prepared,
            Err(error) => Err(PassError::failed("markdrop failed to read a file", error)),
        }
    })
}

/// Whole kibibytes, rounded up, as semaphore permits.
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// Deletes the `.html` of `record` if it still has the hash markdrop uploaded; a file someone
/// edited is kept.
async fn remove_html(
    context: &PassContext,
    record: &FileRecord,
) -> Result<Option<Outcome>, PassError> {
    let current = match context.client.get_metadata(&record.html_path).await {
        Ok(Metadata::File(file)) => file,
        Ok(_) => return Ok(None),
        Err(DropboxError::Route(error)) if error.is_not_found() => return Ok(None),
        Err(error) => return file_outcome(error),
    };
    let ours = current.content_hash.as_deref().is_some_and(|hash| {
        hash == record.html_hash || record.pending_html_hash.as_deref() == Some(hash)
    });
    if !ours {
        return Ok(Some(Outcome::Skipped {
            reason: format!("{} was edited after markdrop wrote it, so it was kept", current.name),
        }));
    }
    let path = current.path_display.as_deref().unwrap_or(&record.html_path);
    match context.client.delete_revision(path, &current.rev).await {
        Ok(_) => Ok(Some(Outcome::Removed)),
        // Someone removed it first: nothing left to do or to report.
        Err(DropboxError::Route(error)) if error.is_not_found() => Ok(None),
        // Changed between the look and the delete: someone's edit, which is kept.
        Err(DropboxError::Route(_)) => Ok(Some(Outcome::Skipped {
            reason: format!(
                "{} changed while markdrop was removing it, so it was kept",
                current.name
            ),
        })),
        Err(error) => file_outcome(error),
    }
}

/// A Dropbox error about one file: reported for that file (`Ok`), or one that ends the pass.
fn file_outcome(error: DropboxError) -> Result<Option<Outcome>, PassError> {
    match error {
        // Gone before it could be read: the listing's next page or pass says what happened.
        DropboxError::Route(route) if route.is_not_found() => Ok(None),
        DropboxError::Route(route) if route.is_unsupported_file() => {
            Ok(Some(Outcome::Skipped { reason: "Dropbox cannot download it".to_owned() }))
        }
        DropboxError::TooLarge { size, limit } => Ok(Some(Outcome::Skipped {
            reason: format!("it is {}, over the {} limit", human_bytes(size), human_bytes(limit)),
        })),
        error @ (DropboxError::Route(_) | DropboxError::BadInput(_)) => {
            Ok(Some(Outcome::Failed { message: error.to_string() }))
        }
        error => Err(pass_error(error)),
    }
}

fn report(
    context: &PassContext,
    status: &mut AccountStatus,
    markdown: String,
    outcome: Option<Outcome>,
) {
    if let Some(outcome) = outcome {
        context.metrics.file(match &outcome {
            Outcome::Converted => "converted",
            Outcome::Removed => "removed",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Failed { .. } => "failed",
        });
        status.record(Conversion { path: markdown, at: now_seconds(), outcome });
    }
}

/// Seconds since the Unix epoch, as the account page records times.
pub(crate) fn now_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

/// A spawned task that is cancelled when its handle is dropped: a pass that stops early does
/// not leave downloads running.
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dropbox::{DeletedMetadata, FileMetadata, FolderMetadata};

    const CAP: u64 = 10 * 1024 * 1024;

    fn file(display: &str, hash: &str) -> Metadata {
        Metadata::File(FileMetadata {
            name: display.rsplit('/').next().unwrap().to_owned(),
            id: format!("id:{display}"),
            path_lower: Some(display.to_lowercase()),
            path_display: Some(display.to_owned()),
            rev: "0123456789".to_owned(),
            size: 10,
            server_modified: "2026-11-27T10:00:00Z".to_owned(),
            content_hash: Some(hash.to_owned()),
            is_downloadable: true,
        })
    }

    fn deleted(display: &str) -> Metadata {
        Metadata::Deleted(DeletedMetadata {
            name: display.rsplit('/').next().unwrap().to_owned(),
            path_lower: Some(display.to_lowercase()),
            path_display: Some(display.to_owned()),
        })
    }

    fn record(source_hash: &str) -> FileRecord {
        FileRecord {
            source_hash: source_hash.to_owned(),
            html_path: "/x.html".to_owned(),
            html_hash: "h".to_owned(),
            pending_html_hash: None,
        }
    }

    fn convert(markdown: &str, html: &str, stem: &str, last_hash: Option<&str>) -> Step {
        Step::Convert {
            markdown: markdown.to_owned(),
            key: markdown.to_lowercase(),
            html: html.to_owned(),
            stem: stem.to_owned(),
            last_hash: last_hash.map(str::to_owned),
            size: 10,
        }
    }

    #[test]
    fn markdown_is_any_case_of_dot_md_with_a_name_before_it() {
        for name in ["a.md", "ReadMe.MD", "x.Md", "📝.md", "a.b.md"] {
            assert!(is_markdown(name), "{name}");
        }
        for name in [".md", "md", "a.markdown", "a.html", "a.mdx", "a.md.txt", "é"] {
            assert!(!is_markdown(name), "{name}");
        }
    }

    #[test]
    fn the_html_sibling_keeps_the_display_casing_of_folder_and_stem() {
        assert_eq!(html_path("/Notes/ReadMe.md"), "/Notes/ReadMe.html");
        assert_eq!(html_path("/Notes/ReadMe.MD"), "/Notes/ReadMe.html");
        assert_eq!(html_path("/📝 Journal/Café.md"), "/📝 Journal/Café.html");
    }

    #[test]
    fn changed_notes_are_converted_and_everything_else_is_left_alone() {
        let entries = [
            file("/Notes/ReadMe.md", "new"),
            file("/same.md", "old"),
            file("/Notes/ReadMe.html", "ours"),
            file("/cat.jpg", "c"),
            Metadata::Folder(FolderMetadata {
                name: "Notes".into(),
                id: "id:n".into(),
                path_lower: Some("/notes".into()),
                path_display: Some("/Notes".into()),
            }),
            Metadata::Other,
        ];
        let records = HashMap::from([
            ("/notes/readme.md".to_owned(), record("older")),
            ("/same.md".to_owned(), record("old")),
        ]);
        assert_eq!(
            plan(&entries, &records, CAP),
            vec![convert("/Notes/ReadMe.md", "/Notes/ReadMe.html", "ReadMe", Some("older"))]
        );
    }

    #[test]
    fn a_note_without_a_content_hash_is_converted_since_nothing_says_it_is_unchanged() {
        let Metadata::File(mut unhashed) = file("/a.md", "x") else { unreachable!() };
        unhashed.content_hash = None;
        let records = HashMap::from([("/a.md".to_owned(), record("x"))]);
        assert_eq!(
            plan(&[Metadata::File(unhashed)], &records, CAP),
            vec![convert("/a.md", "/a.html", "a", Some("x"))]
        );
    }

    #[test]
    fn oversized_and_undownloadable_notes_are_skipped_with_a_reason() {
        let Metadata::File(mut big) = file("/big.md", "b") else { unreachable!() };
        big.size = 23 * 512 * 1024;
        let Metadata::File(mut doc) = file("/doc.md", "d") else { unreachable!() };
        doc.is_downloadable = false;
        let steps = plan(&[Metadata::File(big), Metadata::File(doc)], &HashMap::new(), CAP);
        assert_eq!(
            steps,
            vec![
                Step::Skip {
                    markdown: "/big.md".into(),
                    reason: "it is 11.5 MiB, over the 10 MiB limit".into()
                },
                Step::Skip {
                    markdown: "/doc.md".into(),
                    reason: "Dropbox cannot download it".into()
                },
            ]
        );
    }

    #[test]
    fn a_deleted_note_removes_its_html_only_when_markdrop_made_one() {
        let records = HashMap::from([("/a.md".to_owned(), record("x"))]);
        let steps = plan(&[deleted("/A.md"), deleted("/never-converted.md")], &records, CAP);
        assert_eq!(
            steps,
            vec![
                Step::RemoveHtml { markdown: "/A.md".into(), key: "/a.md".into() },
                // Either might have been a folder named like a note.
                Step::ForgetUnder { folder: "/a.md".into() },
                Step::ForgetUnder { folder: "/never-converted.md".into() },
            ]
        );
    }

    #[test]
    fn a_deleted_folder_forgets_what_was_under_it() {
        let steps = plan(&[deleted("/Old Notes"), deleted("/photo.jpg")], &HashMap::new(), CAP);
        assert_eq!(
            steps,
            vec![
                Step::ForgetUnder { folder: "/old notes".into() },
                Step::ForgetUnder { folder: "/photo.jpg".into() },
            ]
        );
    }

    #[test]
    fn entries_for_one_path_in_one_page_are_planned_in_order() {
        // Converted, deleted, created again with the same content: converted again, since
        // its html went with the deletion.
        let entries = [file("/a.md", "1"), deleted("/a.md"), file("/a.md", "1")];
        assert_eq!(
            plan(&entries, &HashMap::new(), CAP),
            vec![
                convert("/a.md", "/a.html", "a", None),
                Step::RemoveHtml { markdown: "/a.md".into(), key: "/a.md".into() },
                Step::ForgetUnder { folder: "/a.md".into() },
                convert("/a.md", "/a.html", "a", None),
            ]
        );
        // The same content listed twice is converted once.
        let twice = [file("/b.md", "2"), file("/b.md", "2")];
        assert_eq!(
            plan(&twice, &HashMap::new(), CAP),
            vec![convert("/b.md", "/b.html", "b", None)]
        );
    }
}
