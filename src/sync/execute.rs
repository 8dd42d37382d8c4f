//! Carrying out a pass's plan against Dropbox and the store.
//!
//! Each conversion has a reading part (download the note, render it, and when the page's owner
//! is in doubt, look at the page; in a pass of several, send the page's bytes to an upload
//! session) that runs as a task of its own, up to `read_ahead` ahead, and a writing part that
//! runs in listing order, one write at a time (an upload, a batch commit, a deletion), each
//! bounded by the time the lease has left.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use super::in_force::InForce;
use super::plan::{Conversion, Direct, NotePath, Sibling, Step, human_bytes};
use super::{PassContext, PassError, batch, pass_error};
use crate::dropbox::{AccountClient, DropboxError, FileMetadata, Metadata, content_hash};
use crate::render::{self, FileIndex};
use crate::store::{
    AccountStatus, Conversion as Recent, FileRecord, KeptPage, Outcome, RecordChanges, RetryingNote,
};
use crate::task::AbortOnDrop;

/// Record changes are committed whenever this many have gathered, so a pass over a large
/// listing that dies keeps most of what it did.
const COMMIT_EVERY: usize = 500;

/// Renders over the time limit, in a row, before a note is reported as one that does not render.
const RENDER_TRIES: u32 = 4;

/// What a Dropbox error about one note means for that note.
pub(super) enum FileError {
    /// The file went before it could be read: the listing says what happened to it.
    Gone,
    /// A reason that stays until the note (or its folder) changes: reported once.
    Lasting(String),
    /// A reason that may pass: the note is tried again later, with backoff.
    Passing(String),
    /// Not about this note: the pass ends.
    Pass(PassError),
}

pub(super) fn classify(error: DropboxError) -> FileError {
    match error {
        DropboxError::Route(route) if route.is_not_found() => FileError::Gone,
        DropboxError::Route(route) if route.is_unsupported_file() => {
            FileError::Lasting("Dropbox cannot download it".to_owned())
        }
        DropboxError::Route(route) if route.is_insufficient_space() => {
            FileError::Pass(pass_error(DropboxError::Route(route)))
        }
        DropboxError::Route(route) if route.is_lasting_write_refusal() => {
            FileError::Lasting(format!("Dropbox refused to write its page ({route})"))
        }
        DropboxError::TooLarge { size, limit } => FileError::Lasting(format!(
            "it is {}, over the {} limit",
            human_bytes(size),
            human_bytes(limit)
        )),
        error @ (DropboxError::BadInput(_)
        | DropboxError::AccessDenied(_)
        | DropboxError::Local(_)) => FileError::Lasting(error.to_string()),
        error @ (DropboxError::Route(_)
        | DropboxError::Server { .. }
        | DropboxError::Transport(_)
        | DropboxError::Unexpected { .. }) => FileError::Passing(error.to_string()),
        error => FileError::Pass(pass_error(error)),
    }
}

/// One permit per core for rendering, shared by every pass of the process. Running more renders
/// at once than there are cores finishes none sooner, and each thread that renders keeps its own
/// highlighter (parsers and their buffers), so unbounded renders would cost memory for nothing.
static RENDERING: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    tokio::sync::Semaphore::new(cores)
});

/// What a note renders against: every file of the account (for wikilinks) and the person's
/// settings in force.
pub(super) struct Surroundings {
    pub(super) files: FileIndex,
    pub(super) settings: InForce,
}

/// A conversion whose reading part is done, ready for its write.
pub(super) enum Prepared {
    Upload {
        page: Page,
        document: Bytes,
        /// This note's share of the worker's memory budget, held until it is uploaded.
        _memory: Option<tokio::sync::OwnedSemaphorePermit>,
    },
    /// The page's bytes wait at Dropbox in a closed upload session, to be committed with the
    /// others ready by then in one batch (`super::batch`).
    Staged(Staged),
    /// The page already is this rendering: it is recorded as markdrop's, nothing is written.
    Current {
        note: NotePath,
        html: String,
        source_hash: String,
        html_hash: String,
        links: Vec<String>,
    },
    /// The page is the person's: it stays as it is.
    Kept {
        note: NotePath,
        html: String,
        source_hash: String,
        page_hash: String,
        links: Vec<String>,
    },
    /// Nothing to write; report this (or nothing) for the note.
    Done { note: NotePath, outcome: Option<Outcome> },
    /// Failed for a reason that may pass: tried again later, and after `give_up_after` tries
    /// in a row (when set) reported as lasting instead.
    Retry { note: NotePath, reason: String, give_up_after: Option<u32> },
    /// A step with no reading part.
    Direct(Direct),
}

/// A page to write: the note's rendering, as it will be recorded once written.
pub(super) struct Page {
    pub(super) note: NotePath,
    /// Display path of the page.
    pub(super) html: String,
    pub(super) source_hash: String,
    /// `content_hash` of the rendering.
    pub(super) html_hash: String,
    /// The note names its wikilinks mention.
    pub(super) links: Vec<String>,
}

/// A page whose bytes are in a closed upload session.
pub(super) struct Staged {
    pub(super) page: Page,
    pub(super) session_id: String,
    pub(super) size: u64,
}

pub(super) type Preparation = Pin<Box<dyn Future<Output = Result<Prepared, PassError>> + Send>>;

/// Carries out `steps` in order. `records` are the notes' records before the pass; `changes`
/// gathers the records as the pass leaves them, and is committed along the way. Notes render
/// against `surroundings`.
pub(super) async fn steps(
    context: &PassContext,
    steps: Vec<Step>,
    surroundings: &Arc<Surroundings>,
    records: &HashMap<String, FileRecord>,
    changes: &mut RecordChanges,
    status: &mut AccountStatus,
) -> Result<(), PassError> {
    // Pages are written through upload sessions committed in batches when there may be more
    // than one (docs/dropbox.md §11); one page alone takes the single upload, one call.
    let stage = steps.iter().filter(|step| matches!(step, Step::Convert(_))).count() > 1;
    let mut steps = steps.into_iter();
    // Up to `read_ahead` steps are being prepared (each in a task of its own, so they go on
    // while this loop waits for an upload); they are taken in listing order.
    let mut pipeline = VecDeque::new();
    let fill = |pipeline: &mut VecDeque<_>, steps: &mut std::vec::IntoIter<Step>| {
        while pipeline.len() < context.settings.read_ahead.max(1) {
            let Some(step) = steps.next() else { break };
            let (head, is_head) = watch::channel(false);
            pipeline
                .push_back((prepare(context, step, is_head, surroundings.clone(), stage), head));
        }
    };
    loop {
        fill(&mut pipeline, &mut steps);
        context.check_stopping()?;
        let Some((preparation, head)) = pipeline.pop_front() else { break };
        // The step this pass waits for never waits for the memory budget: every pass can always
        // make progress, whatever the read-ahead of the others holds.
        let _ = head.send(true);
        // Each note comes up once in a pass; `records` leaves out those under deleted folders.
        let record = |key: &str| match changes.files.get(key) {
            Some(record) => record.clone(),
            None => records.get(key).cloned(),
        };
        match preparation.await? {
            Prepared::Upload { page, document, _memory } => {
                let previous = record(&page.note.key);
                let outcome = upload(context, &page, document, previous).await?;
                match outcome {
                    Ok(uploaded) => converted(context, status, changes, page, uploaded),
                    Err(error) => fail(context, status, &page.note, classify(error), false)?,
                }
            }
            Prepared::Staged(first) => {
                let batch = batch::gather(first, &mut pipeline);
                // The places the batch took are read ahead again while it commits.
                fill(&mut pipeline, &mut steps);
                let previous: Vec<Option<FileRecord>> =
                    batch.iter().map(|staged| record(&staged.page.note.key)).collect();
                batch::commit(context, batch, previous, changes, status).await?;
            }
            Prepared::Current { note, html, source_hash, html_hash, links } => {
                let record = FileRecord {
                    source_hash,
                    html_path: html,
                    html_hash,
                    pending_html_hash: None,
                    kept_html_hash: None,
                    links,
                };
                changes.files.insert(note.key.clone(), Some(record));
                settle(status, &note.key);
            }
            Prepared::Kept { note, html, source_hash, page_hash, links } => {
                let previous = record(&note.key);
                let record = FileRecord {
                    source_hash,
                    html_hash: previous.map(|record| record.html_hash).unwrap_or_default(),
                    html_path: html.clone(),
                    pending_html_hash: None,
                    kept_html_hash: Some(page_hash),
                    links,
                };
                changes.files.insert(note.key.clone(), Some(record));
                keep(context, status, &note, html, true);
            }
            Prepared::Done { note, outcome } => {
                status.retrying.remove(&note.key);
                report(context, status, &note, outcome);
            }
            Prepared::Retry { note, reason, give_up_after } => {
                let attempts = status.retrying.get(&note.key).map_or(0, |note| note.attempts);
                let error = match give_up_after {
                    Some(limit) if attempts + 1 >= limit => FileError::Lasting(format!(
                        "{reason}, {} times in a row; markdrop tries again when the note changes",
                        attempts + 1
                    )),
                    _ => FileError::Passing(reason),
                };
                fail(context, status, &note, error, false)?;
            }
            Prepared::Direct(step) => carry_out(context, step, changes, status).await?,
        }
        if changes.files.len() >= COMMIT_EVERY {
            context.store.commit(&context.lease, changes, None, Some(status)).await?;
            *changes = RecordChanges::default();
        }
    }
    Ok(())
}

/// Carries out a step with nothing to read.
async fn carry_out(
    context: &PassContext,
    step: Direct,
    changes: &mut RecordChanges,
    status: &mut AccountStatus,
) -> Result<(), PassError> {
    match step {
        Direct::Keep { note, html, hash: _, report } => keep(context, status, &note, html, report),
        Direct::Skip { note, reason } => {
            status.retrying.remove(&note.key);
            report(context, status, &note, Some(Outcome::Skipped { reason }));
        }
        Direct::Remove { note, record } => {
            let removed = match &record {
                Some(record) => remove_page(context, record).await,
                None => Ok(None),
            };
            // The record goes only once its page is dealt with: a pass that ends before
            // leaves it, so the next one removes the page.
            let error = match removed {
                Ok(outcome) => {
                    report(context, status, &note, outcome);
                    None
                }
                Err(FileError::Gone) => None,
                Err(error) => Some(error),
            };
            match error {
                Some(FileError::Passing(reason)) => {
                    let reason = format!("its page could not be removed: {reason}");
                    fail(context, status, &note, FileError::Passing(reason), true)?;
                }
                Some(FileError::Pass(error)) => return Err(error),
                error => {
                    changes.files.insert(note.key.clone(), None);
                    settle(status, &note.key);
                    if let Some(FileError::Lasting(reason)) = error {
                        // The note is gone; its page stays, and the account page says why.
                        let message = format!("its page could not be removed: {reason}");
                        report(context, status, &note, Some(Outcome::Failed { message }));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Uploads a page: recorded first as the one markdrop is writing (so a worker killed between
/// the upload and the commit cannot leave a page that a later pass takes for a person's), then
/// written within the time the lease has left.
async fn upload(
    context: &PassContext,
    page: &Page,
    document: Bytes,
    previous: Option<FileRecord>,
) -> Result<Result<FileMetadata, DropboxError>, PassError> {
    context.lease_left()?;
    let mut intended = RecordChanges::default();
    intended.files.insert(page.note.key.clone(), Some(intent(page, previous)));
    context.store.commit(&context.lease, &intended, None, None).await?;
    context.write(context.client.upload_hashed(&page.html, document, &page.html_hash)).await
}

/// The record of a page about to be written, before the write: the hash it will have is
/// markdrop's (so a worker killed meanwhile leaves a page the next pass recognises), and the
/// source hash stays the old one until the write is done, so an interrupted note is converted
/// again.
pub(super) fn intent(page: &Page, previous: Option<FileRecord>) -> FileRecord {
    FileRecord {
        pending_html_hash: Some(page.html_hash.clone()),
        kept_html_hash: None,
        ..previous.unwrap_or_else(|| FileRecord {
            source_hash: String::new(),
            html_path: page.html.clone(),
            html_hash: String::new(),
            pending_html_hash: None,
            kept_html_hash: None,
            links: Vec::new(),
        })
    }
}

/// The page is written as `uploaded`: recorded as markdrop's, and reported.
pub(super) fn converted(
    context: &PassContext,
    status: &mut AccountStatus,
    changes: &mut RecordChanges,
    page: Page,
    uploaded: FileMetadata,
) {
    let Page { note, html, source_hash, html_hash, links } = page;
    let record = FileRecord {
        source_hash,
        html_path: uploaded.path_display.unwrap_or(html),
        html_hash: uploaded.content_hash.unwrap_or(html_hash),
        pending_html_hash: None,
        kept_html_hash: None,
        links,
    };
    changes.files.insert(note.key.clone(), Some(record));
    let latency = context.store.clock().now_millis().saturating_sub(context.due_at_ms);
    context.metrics.webhook_to_upload(Duration::from_millis(latency));
    settle(status, &note.key);
    report(context, status, &note, Some(Outcome::Converted));
}

/// The note converted, or its page found current: nothing about it waits any more.
fn settle(status: &mut AccountStatus, key: &str) {
    status.retrying.remove(key);
    status.kept.remove(key);
}

/// The note's page is the person's: listed on the account page, and reported when `report`.
fn keep(
    context: &PassContext,
    status: &mut AccountStatus,
    note: &NotePath,
    html: String,
    report_it: bool,
) {
    status.retrying.remove(&note.key);
    let since = context.store.clock().now_secs();
    status.kept.entry(note.key.clone()).or_insert_with(|| KeptPage { html: html.clone(), since });
    if report_it {
        report(context, status, note, Some(Outcome::Kept { html }));
    }
}

/// A note that failed: reported, and retried later if the reason may pass (`removal`: what
/// failed was removing the page of the deleted note).
pub(super) fn fail(
    context: &PassContext,
    status: &mut AccountStatus,
    note: &NotePath,
    error: FileError,
    removal: bool,
) -> Result<(), PassError> {
    match error {
        FileError::Pass(error) => return Err(error),
        FileError::Gone => {
            status.retrying.remove(&note.key);
        }
        FileError::Lasting(reason) => {
            status.retrying.remove(&note.key);
            report(context, status, note, Some(Outcome::Failed { message: reason }));
        }
        FileError::Passing(reason) => {
            let attempts = status.retrying.get(&note.key).map_or(0, |note| note.attempts);
            let delay = context.settings.backoff(attempts);
            let waiting = RetryingNote {
                markdown: note.display.clone(),
                reason: reason.clone(),
                attempts: attempts.saturating_add(1),
                next_at_ms: context.store.clock().now_millis() + delay.as_millis() as u64,
                removal,
            };
            status.retrying.insert(note.key.clone(), waiting);
            report(context, status, note, Some(Outcome::Failed { message: reason }));
        }
    }
    Ok(())
}

/// Starts a step's reading part. Downloads and renders run as tasks of their own, so they go on
/// while the pass waits for an upload. `is_head` turns `true` once the pass waits for this step.
fn prepare(
    context: &PassContext,
    step: Step,
    mut is_head: watch::Receiver<bool>,
    surroundings: Arc<Surroundings>,
    stage: bool,
) -> Preparation {
    let conversion = match step {
        Step::Convert(conversion) => conversion,
        Step::Direct(step) => return Box::pin(std::future::ready(Ok(Prepared::Direct(step)))),
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
                let wanted =
                    kib(conversion.size.saturating_mul(3)).min(kib(limit.saturating_mul(3)));
                let permits = wanted.min(u32::try_from(memory.1).unwrap_or(u32::MAX));
                tokio::select! {
                    permit = memory.0.acquire_many_owned(permits) => permit.ok(),
                    _ = is_head.wait_for(|head| *head) => None,
                }
            }
            None => None,
        };
        read(&client, conversion, &surroundings, limit, render_limit, memory, stage).await
    }));
    Box::pin(async move {
        match task.await {
            Ok(prepared) => prepared,
            Err(error) => Err(PassError::failed("markdrop failed to read a file", error)),
        }
    })
}

/// A conversion's reading part: the note downloaded and rendered, and the page looked at when
/// its owner is in doubt.
async fn read(
    client: &AccountClient,
    conversion: Conversion,
    surroundings: &Arc<Surroundings>,
    limit: u64,
    render_limit: Duration,
    memory: Option<tokio::sync::OwnedSemaphorePermit>,
    stage: bool,
) -> Result<Prepared, PassError> {
    let Conversion { note, html, last_hash, sibling, ours, size: _ } = conversion;
    let failed = |note: NotePath, error: FileError| match error {
        FileError::Pass(error) => Err(error),
        FileError::Gone => Ok(Prepared::Done { note, outcome: None }),
        FileError::Lasting(reason) => {
            Ok(Prepared::Done { note, outcome: Some(Outcome::Failed { message: reason }) })
        }
        FileError::Passing(reason) => Ok(Prepared::Retry { note, reason, give_up_after: None }),
    };
    // A page nothing said anything about is looked up while the note downloads: one more
    // call, but no more time.
    let look_up_page = async {
        match sibling {
            Sibling::Unlisted => Some(client.get_metadata(&html).await),
            _ => None,
        }
    };
    let (download, page) = tokio::join!(client.download(&note.key, limit), look_up_page);
    let download = match download {
        Ok(download) => download,
        Err(DropboxError::TooLarge { size, limit }) => {
            let reason =
                format!("it is {}, over the {} limit", human_bytes(size), human_bytes(limit));
            return Ok(Prepared::Done { note, outcome: Some(Outcome::Skipped { reason }) });
        }
        Err(error) => return failed(note, classify(error)),
    };
    if download.metadata.content_hash.is_some() && download.metadata.content_hash == last_hash {
        return Ok(Prepared::Done { note, outcome: None });
    }
    // Hashing and rendering are CPU work: off the async threads, no more at once than the
    // machine has cores, and bounded in time.
    let path = note.display.clone();
    let surroundings = surroundings.clone();
    // Held while the render is awaited, not inside it: a render past its time limit goes on
    // running, but must not keep a core's permit from the renders after it.
    let core = RENDERING.acquire().await.expect("the semaphore is never closed");
    let rendering = tokio::task::spawn_blocking(move || {
        let source_hash =
            download.metadata.content_hash.unwrap_or_else(|| content_hash(&download.content));
        if last_hash.as_deref() == Some(source_hash.as_str()) {
            return None;
        }
        let (settings, stylesheet) = surroundings.settings.look(&path);
        let look = render::Look { settings: &settings, stylesheet: stylesheet.as_deref() };
        let page = render::Page::new(&path, &surroundings.files);
        let rendered = render::render_with(&download.content, &page, &look);
        if rendered.opted_out {
            return Some(Err(source_hash));
        }
        let document = Bytes::from(rendered.document);
        let html_hash = content_hash(&document);
        Some(Ok((source_hash, document, html_hash, rendered.wikilinks)))
    });
    let rendered = tokio::time::timeout(render_limit, rendering).await;
    drop(core);
    let (source_hash, document, html_hash, links) = match rendered {
        Ok(Ok(Some(Ok(rendered)))) => rendered,
        Ok(Ok(None)) => return Ok(Prepared::Done { note, outcome: None }),
        Ok(Ok(Some(Err(_opted_out)))) => {
            let reason = "its front matter says \"markdrop: false\"; its page, if it has one, \
                          is left as it is"
                .to_owned();
            return Ok(Prepared::Done { note, outcome: Some(Outcome::Skipped { reason }) });
        }
        // The same bytes would panic again: reported once, tried again when they change.
        Ok(Err(panic)) => {
            tracing::error!(markdown = %note.display, error = %panic, "rendering panicked");
            let message = "markdrop could not render it (a bug; it has been logged)".to_owned();
            return Ok(Prepared::Done { note, outcome: Some(Outcome::Failed { message }) });
        }
        // A busy machine may render it in time later, but a render that hits the limit keeps
        // its thread until it ends: a few tries, not one every few minutes for ever.
        Err(_) => {
            let reason = format!("rendering took longer than {render_limit:?}");
            return Ok(Prepared::Retry { note, reason, give_up_after: Some(RENDER_TRIES) });
        }
    };
    let page_hash = match (sibling, page) {
        (_, Some(looked_up)) => match looked_up {
            Ok(Metadata::File(page)) => Some(page.content_hash.unwrap_or_default()),
            Ok(Metadata::Folder(_)) => {
                let reason = format!("a folder named {} is in the way", file_name(&html));
                return Ok(Prepared::Done {
                    note,
                    outcome: Some(Outcome::Failed { message: reason }),
                });
            }
            Ok(_) => None,
            Err(DropboxError::Route(route)) if route.is_not_found() => None,
            Err(error) => return failed(note, classify(error)),
        },
        (Sibling::Free | Sibling::Unlisted, None) => None,
        (Sibling::Ours { hash }, None) if hash == html_hash => {
            return Ok(Prepared::Current { note, html, source_hash, html_hash, links });
        }
        (Sibling::Ours { .. }, None) => None,
        (Sibling::Unknown { hash }, None) => Some(hash),
    };
    if let Some(page_hash) = page_hash {
        if page_hash == html_hash {
            return Ok(Prepared::Current { note, html, source_hash, html_hash, links });
        }
        // A page the record knows as markdrop's needs no reading.
        if !ours.contains(&page_hash) {
            match is_markdrops_page(client, &html).await {
                Ok(true) => {}
                Ok(false) => {
                    return Ok(Prepared::Kept { note, html, source_hash, page_hash, links });
                }
                // Whose it is cannot be told for good: it is kept, as a person's would be.
                Err(FileError::Lasting(_)) => {
                    return Ok(Prepared::Kept { note, html, source_hash, page_hash, links });
                }
                Err(error) => return failed(note, error),
            }
        }
    }
    let page = Page { note, html, source_hash, html_hash, links };
    if !stage {
        return Ok(Prepared::Upload { page, document, _memory: memory });
    }
    // Staged now, while other notes are read: the bytes go to Dropbox without its write lock,
    // and leave this process's memory.
    let size = document.len() as u64;
    match client.upload_session_start(document, &page.html_hash).await {
        Ok(session_id) => Ok(Prepared::Staged(Staged { page, session_id, size })),
        Err(error) => failed(page.note, classify(error)),
    }
}

/// Whether the page at `html` is one markdrop wrote and nobody changed: its seal is intact.
/// It is read as it streams, so a page of any size costs a kilobyte of memory. A page that is
/// gone by now counts as markdrop's (there is nothing of the person's to keep).
async fn is_markdrops_page(client: &AccountClient, html: &str) -> Result<bool, FileError> {
    let mut check = render::SealCheck::default();
    match client.download_each(html, |piece| check.update(piece)).await {
        Ok(_) => Ok(check.is_sealed()),
        Err(error) => match classify(error) {
            FileError::Gone => Ok(true),
            other => Err(other),
        },
    }
}

/// Deletes the page of a deleted note if it is still markdrop's: the one the record knows, or
/// one with an intact seal. A page the person made or changed is kept.
async fn remove_page(
    context: &PassContext,
    record: &FileRecord,
) -> Result<Option<Outcome>, FileError> {
    let current = match context.client.get_metadata(&record.html_path).await {
        Ok(Metadata::File(file)) => file,
        Ok(_) => return Ok(None),
        Err(error) => return Err(classify(error)),
    };
    let hash = current.content_hash.as_deref().unwrap_or_default();
    let kept = Ok(Some(Outcome::Kept { html: record.html_path.clone() }));
    if !record.is_ours(hash) {
        if record.kept_html_hash.as_deref() == Some(hash) {
            return kept;
        }
        match is_markdrops_page(&context.client, &record.html_path).await {
            Ok(true) => {}
            // Whose it is cannot be told for good: it is kept, as a person's would be.
            Ok(false) | Err(FileError::Lasting(_)) => return kept,
            Err(error) => return Err(error),
        }
    }
    let path = current.path_display.as_deref().unwrap_or(&record.html_path);
    let deleted = context.write(context.client.delete_revision(path, &current.rev)).await;
    match deleted.map_err(FileError::Pass)? {
        Ok(_) => Ok(Some(Outcome::Removed)),
        // Someone removed it first: nothing left to do or to report.
        Err(DropboxError::Route(error)) if error.is_not_found() => Ok(None),
        // Changed between the look and the delete: someone's edit, which is kept.
        Err(DropboxError::Route(_)) => kept,
        Err(error) => Err(classify(error)),
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whole kibibytes, rounded up, as semaphore permits.
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

fn report(
    context: &PassContext,
    status: &mut AccountStatus,
    note: &NotePath,
    outcome: Option<Outcome>,
) {
    if let Some(outcome) = outcome {
        context.metrics.file(match &outcome {
            Outcome::Converted => "converted",
            Outcome::Removed => "removed",
            Outcome::Kept { .. } => "kept",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Failed { .. } => "failed",
        });
        status.record(Recent {
            path: note.display.clone(),
            at: context.store.clock().now_secs(),
            outcome,
        });
    }
}
