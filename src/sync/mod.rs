//! One account's sync pass: list what changed since the cursor, then, for every note that
//! changed, write its sibling `.html` unless that page is the person's; remove the page of a
//! deleted note while it is still markdrop's; retry notes whose conversion failed for a reason
//! that may pass; and commit the records, the cursor and the account's status.
//!
//! [`plan`] decides from the listing and the records, without I/O (its module docs hold the
//! ownership rules); [`execute`] carries the plan out against Dropbox and the store. Downloads
//! and renders run up to `read_ahead` notes ahead, while writes (uploads, batch commits,
//! deletions) go one at a time and in listing order: Dropbox serialises writes per namespace,
//! and a path's changes must land in the order they happened. A pass with more than one note
//! to convert sends each page's bytes in an upload session as soon as it is rendered (sessions
//! take no write lock) and commits the pages ready together in one call ([`batch`]).
//!
//! No write starts unless the lease will outlast it: each one is bounded by the time the lease
//! has left, and a worker that may have lost its lease writes nothing more. A request already on
//! the wire can still land late (a frozen process, a partition); such a page is one of
//! markdrop's older ones, which the next pass recognizes by its seal and rewrites.
//!
//! Conversions are idempotent (the same Markdown always renders to the same bytes), which is what
//! makes a pass safe to repeat after a crash: only the cursor and the file records need fencing.

mod batch;
mod execute;
mod in_force;
pub mod plan;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::WorkerSettings;
use crate::dropbox::{AccountClient, DeletedMetadata, DropboxError, Metadata};
use crate::render::{FileIndex, is_attachment};
use crate::store::{
    AccountStatus, FileRecord, Lease, LeaseError, LeaseWindow, RecordChanges, Store,
};

pub use self::plan::{NotePath, is_markdown};

/// Why a pass stopped before the end of the listing. Progress made so far is committed.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// Dropbox asked to wait (429, or write contention): the account is rescheduled.
    #[error("Dropbox asked markdrop to wait {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// Dropbox says the grant is gone (revoked, refresh refused, account suspended).
    #[error("Dropbox no longer accepts markdrop's access: {reason}")]
    Unlinked { reason: String },
    /// Dropbox says the link lacks a permission: nothing more is tried until the person
    /// connects again and grants it.
    #[error("the link lacks the Dropbox permission {scope}")]
    MissingPermission { scope: String },
    /// The lease was lost: another worker may be on the account now.
    #[error("the lease on the account was lost")]
    LeaseLost,
    /// The worker is stopping.
    #[error("the worker is stopping")]
    Stopped,
    /// Anything else (a listing that failed after retries, a full Dropbox, a refused call, the
    /// store): retried with backoff.
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

/// What the account page says while the Dropbox is full.
pub const DROPBOX_FULL: &str = "Your Dropbox is full, so markdrop cannot save pages; it tries \
                                again from time to time, and catches up once there is room";

/// A Dropbox error that ends the pass, whatever file it came from.
fn pass_error(error: DropboxError) -> PassError {
    match error {
        DropboxError::RateLimited { retry_after, .. } => PassError::RateLimited { retry_after },
        DropboxError::InvalidToken { reason } => PassError::Unlinked { reason },
        DropboxError::RefreshRefused(reason) => PassError::Unlinked { reason },
        DropboxError::MissingScope { required_scope } => {
            PassError::MissingPermission { scope: required_scope }
        }
        DropboxError::Route(route) if route.is_insufficient_space() => {
            PassError::failed(DROPBOX_FULL, DropboxError::Route(route))
        }
        error @ DropboxError::PathRoot(_) => PassError::failed(
            "your Dropbox joined or left a team space since it was connected: connect Dropbox \
             again so markdrop lists the right folders",
            error,
        ),
        other => PassError::failed(other.to_string(), other),
    }
}

/// What a pass needs besides its cursor.
pub struct PassContext {
    pub client: Arc<AccountClient>,
    pub store: Store,
    pub lease: Lease,
    /// How long the lease can be counted on, kept up to date by the heartbeat.
    pub window: LeaseWindow,
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
    /// Called before every write: how long the write may take before the lease may run out.
    /// A worker that may have lost its lease writes nothing more.
    fn lease_left(&self) -> Result<Duration, PassError> {
        self.window.left().ok_or(PassError::LeaseLost)
    }

    /// Runs a Dropbox write while the lease is held: none starts without it, and one still
    /// running when the lease may run out (renewals stopped) is abandoned; if it lands anyway, a
    /// later pass repairs the page.
    async fn write<T>(
        &self,
        call: impl Future<Output = Result<T, DropboxError>>,
    ) -> Result<Result<T, DropboxError>, PassError> {
        self.lease_left()?;
        tokio::select! {
            written = call => Ok(written),
            () = self.window.closed() => Err(PassError::LeaseLost),
        }
    }

    /// Called before each file: a stopping worker finishes the file in hand, starts no other.
    fn check_stopping(&self) -> Result<(), PassError> {
        if *self.stopping.borrow() { Err(PassError::Stopped) } else { Ok(()) }
    }
}

/// Runs a pass from `cursor` (`None`: list everything) to the end of the listing, then commits
/// the records, the listing's cursor and `status` (whose recent outcomes, kept pages and
/// retries the pass updates).
pub async fn run(
    context: &PassContext,
    cursor: Option<String>,
    status: &mut AccountStatus,
) -> Result<(), PassError> {
    let mut listing = list(context, "", cursor).await?;
    if listing.from_start {
        // A listing from the start (the first pass, one whose first cursor was never committed,
        // or one after a `reset`) says nothing of notes deleted meanwhile: recorded notes it
        // does not list are deleted.
        let recorded = context
            .store
            .recorded_paths(context.lease.account())
            .await
            .map_err(LeaseError::Store)?;
        let listed: std::collections::HashSet<&str> = listing
            .entries
            .iter()
            .filter_map(|entry| match entry {
                Metadata::File(file) if is_markdown(&file.name) => file.path_lower.as_deref(),
                _ => None,
            })
            .collect();
        let gone: Vec<Metadata> = recorded
            .into_iter()
            .filter(|path| !listed.contains(path.as_str()))
            .map(|path| {
                let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
                Metadata::Deleted(DeletedMetadata {
                    name,
                    path_lower: Some(path.clone()),
                    path_display: Some(path),
                })
            })
            .collect();
        listing.entries.extend(gone);
    }
    let account = context.lease.account();
    // The person's settings first: what the listing changes in them decides how every note
    // of this pass is converted, and which others are converted again.
    let settings = context.store.settings_files(account).await.map_err(LeaseError::Store)?;
    let was_in_force = in_force::InForce::new(&settings);
    let settings =
        in_force::update(&context.client, &listing.entries, listing.from_start, settings).await?;
    let in_force = in_force::InForce::new(&settings.records);
    // The notes the listing itself names, before any folder is listed anew below.
    let named = listing.entries.len();
    if !listing.from_start {
        // A note the settings excluded until now has no record: the notes under a resettled
        // folder are listed anew, so that it is found (a listing from the start shows it).
        for folder in in_force::outermost(&settings.resettled.folders) {
            let under = list(context, folder, None).await?;
            listing.entries.extend(under.entries.into_iter().filter(|entry| {
                matches!(entry, Metadata::File(file) if is_markdown(&file.name) || plan::is_page(&file.name))
            }));
        }
    }
    let now_ms = context.store.clock().now_millis();
    let retries_due: HashMap<String, plan::RetryDue> = status
        .retrying
        .iter()
        .filter(|(_, note)| note.next_at_ms <= now_ms)
        .map(|(key, note)| {
            let due = plan::RetryDue { display: note.markdown.clone(), removal: note.removal };
            (key.clone(), due)
        })
        .collect();
    let keys = plan::record_keys(&listing.entries, retries_due.keys().map(String::as_str));
    let mut records: HashMap<String, FileRecord> = context
        .store
        .file_records(context.lease.account(), &keys)
        .await
        .map_err(LeaseError::Store)?
        .into_iter()
        .zip(keys)
        .filter_map(|(record, key)| Some((key, record?)))
        .collect();
    // The recorded attachments, when the listing may change them: it names one, deletes
    // something (maybe a folder of them), or shows every file.
    let touches_attachments = listing.from_start
        || listing.entries.iter().any(|entry| match entry {
            Metadata::File(file) => is_attachment(&file.name),
            Metadata::Deleted(_) => true,
            Metadata::Folder(_) | Metadata::Other => false,
        });
    let mut attachments = match touches_attachments {
        true => Some(context.store.attachments(account).await.map_err(LeaseError::Store)?),
        false => None,
    };
    let plan_with = |records: &HashMap<String, FileRecord>, attachments: &HashMap<_, _>| {
        plan::plan(
            &listing.entries,
            listing.from_start,
            records,
            &retries_due,
            attachments,
            &settings.resettled,
            context.settings.max_markdown_bytes,
        )
    };
    let mut plan = plan_with(&records, attachments.as_ref().unwrap_or(&HashMap::new()));
    // Rendering resolves wikilinks against every note's path, kept beside the records; a file
    // that appears or goes away sends its linkers to be converted again, and finding them
    // takes every record. A pass that only sees markdrop's own uploads reads neither.
    let mut notes = None;
    let paths_suffice = plan.needs_index() && !plan.needs_every_record();
    if paths_suffice {
        let paths = context.store.note_paths(account).await.map_err(LeaseError::Store)?;
        let recorded = context.store.record_count(account).await.map_err(LeaseError::Store)?;
        // Fewer paths than records: a store from before the paths were kept (or written by
        // an older worker during a deploy). The records are read, and their paths recorded.
        notes = (paths.len() == recorded).then_some(paths);
    }
    let backfill_paths = paths_suffice && notes.is_none();
    if plan.needs_every_record() || backfill_paths {
        let rest: Vec<String> = (context.store.recorded_paths(account).await)
            .map_err(LeaseError::Store)?
            .into_iter()
            .filter(|key| !records.contains_key(key))
            .collect();
        let found = context.store.file_records(account, &rest).await.map_err(LeaseError::Store)?;
        records
            .extend(rest.into_iter().zip(found).filter_map(|(key, record)| Some((key, record?))));
        if attachments.is_none() {
            attachments =
                Some(context.store.attachments(account).await.map_err(LeaseError::Store)?);
        }
        plan = plan_with(&records, attachments.as_ref().unwrap_or(&HashMap::new()));
        notes = Some(
            records.iter().map(|(key, record)| (key.clone(), record.note_display(key))).collect(),
        );
    }
    let index = match notes {
        Some(notes) if plan.needs_index() => {
            if attachments.is_none() {
                attachments =
                    Some(context.store.attachments(account).await.map_err(LeaseError::Store)?);
            }
            // A note the settings exclude has no page for a wikilink to point at.
            let has_page = |display: &str| in_force.converts(display);
            plan.index(&notes, attachments.as_ref().unwrap_or(&HashMap::new()), has_page)
        }
        _ => FileIndex::default(),
    };
    if in_force.excludes() {
        // An excluded note is news when it changed, when its retry was due (it leaves the list
        // of retries), or when the settings have just excluded it.
        let changed: std::collections::HashSet<&str> = listing.entries[..named]
            .iter()
            .filter_map(|entry| match entry {
                Metadata::File(file) if is_markdown(&file.name) => file.path_lower.as_deref(),
                _ => None,
            })
            .collect();
        in_force.exclude(&mut plan.steps, |note| {
            changed.contains(note.key.as_str())
                || retries_due.contains_key(&note.key)
                || was_in_force.converts(&note.display)
        });
    }
    drop(was_in_force);
    let surroundings = Arc::new(execute::Surroundings { files: index, settings: in_force });
    drop(attachments);
    let attachment_changes = std::mem::take(&mut plan.attachments);
    drop(listing.entries);
    let mut changes = RecordChanges::default();
    for folder in &plan.forget {
        changes.forget_under(folder.trim_end_matches('/'));
        status.forget_under(folder);
    }
    // Records under a deleted folder are gone for the rest of the pass too, even once the
    // forgetting has been committed.
    let forgotten: std::collections::HashSet<&str> =
        plan.forget.iter().map(String::as_str).collect();
    records.retain(|key, _| !crate::store::ancestors(key).any(|folder| forgotten.contains(folder)));
    if backfill_paths {
        changes.note_paths =
            records.iter().map(|(key, record)| (key.clone(), record.note_display(key))).collect();
    }
    let outcome =
        execute::steps(context, plan.steps, &surroundings, &records, &mut changes, status).await;
    // Whatever was written is recorded even when the pass did not finish, so a retry does not
    // upload it again; the cursor moves only past a listing that was carried out whole.
    let cursor = outcome.is_ok().then_some(listing.cursor.as_str());
    if outcome.is_ok() {
        // With the cursor: a listing carried out again after a failure finds them again.
        changes.attachments = attachment_changes;
        changes.settings = settings.changes;
        status.settings = in_force::shown(&settings.records);
    }
    if outcome.is_ok() || !changes.is_empty() {
        context.store.commit(&context.lease, &changes, cursor, Some(status)).await?;
    }
    outcome
}

/// A whole listing: the entries a pass acts on (notes, pages, deletions) from every page, in
/// order, and the cursor after the last page.
struct Listing {
    entries: Vec<Metadata>,
    cursor: String,
    /// The listing shows every file, not only what changed since a cursor.
    from_start: bool,
}

/// Lists from `cursor` (`None`: everything under `path`, `""` for the whole Dropbox) to the
/// end, every page, keeping only what the pass looks at. A `reset` cursor lists again from the
/// start. A folder that is gone lists nothing.
async fn list(
    context: &PassContext,
    path: &str,
    mut cursor: Option<String>,
) -> Result<Listing, PassError> {
    let mut listing =
        Listing { entries: Vec::new(), cursor: String::new(), from_start: cursor.is_none() };
    loop {
        context.check_stopping()?;
        let page = match &cursor {
            None => match context.client.list_folder(path, true, None).await {
                Err(DropboxError::Route(error)) if !path.is_empty() && error.is_not_found() => {
                    return Ok(listing);
                }
                page => page,
            },
            Some(from) => match context.client.list_folder_continue(from).await {
                Err(DropboxError::Route(error)) if error.is_reset() => {
                    // The file records keep unchanged notes from being uploaded again.
                    tracing::info!(account = %context.lease.account(), "Dropbox reset the cursor; listing everything again");
                    cursor = None;
                    listing = Listing { entries: Vec::new(), cursor: String::new(), from_start: true };
                    continue;
                }
                page => page,
            },
        }
        .map_err(pass_error)?;
        listing.entries.extend(page.entries.into_iter().filter(|entry| match entry {
            Metadata::File(file) => {
                is_markdown(&file.name)
                    || plan::is_page(&file.name)
                    || is_attachment(&file.name)
                    || in_force::concerns(&file.name)
            }
            Metadata::Deleted(_) => true,
            Metadata::Folder(_) | Metadata::Other => false,
        }));
        listing.cursor = page.cursor.clone();
        cursor = Some(page.cursor);
        if !page.has_more {
            return Ok(listing);
        }
    }
}
