//! Writing many pages of one account at once, as Dropbox asks (docs/dropbox.md §11): each
//! page's bytes go up in an upload session of its own while the notes are read (sessions take
//! no write lock, so they run in parallel), and the pages ready together are committed with one
//! `finish_batch_v2`, which takes the account's write lock once.
//!
//! A batch is whatever is ready when the write before it ends (group commit): the first page
//! of a pass goes alone, and the batches grow while commits are in flight. Each entry of a
//! batch is judged as a single upload would be: written, failed for a reason that may pass
//! (retried later), or refused for good; the ownership rules were applied before staging.

use std::collections::VecDeque;

use futures_util::FutureExt;
use tokio::sync::watch;

use super::execute::{FileError, Preparation, Prepared, Staged, classify, converted, fail, intent};
use super::{PassContext, PassError};
use crate::dropbox::{BatchEntry, DropboxError, MAX_BATCH_ENTRIES};
use crate::store::{AccountStatus, FileRecord, RecordChanges};

/// `first`, and every staged page after it that is ready already, in listing order, up to
/// what one commit takes. The first step that is not ready, or not a staged page, stays at
/// the front of `pipeline` as it was.
pub(super) fn gather(
    first: Staged,
    pipeline: &mut VecDeque<(Preparation, watch::Sender<bool>)>,
) -> Vec<Staged> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH_ENTRIES {
        let Some((preparation, _)) = pipeline.front_mut() else { break };
        match preparation.now_or_never() {
            None => break,
            Some(Ok(Prepared::Staged(staged))) => {
                pipeline.pop_front();
                batch.push(staged);
            }
            Some(other) => {
                // Finished, but not a page for this batch: it comes up next, as it is.
                *preparation = Box::pin(std::future::ready(other));
                break;
            }
        }
    }
    batch
}

/// Commits `batch` (`previous`: each page's record before the pass wrote it) in one fenced
/// store call for the intents and one `finish_batch_v2`, and records or reports each page.
pub(super) async fn commit(
    context: &PassContext,
    batch: Vec<Staged>,
    previous: Vec<Option<FileRecord>>,
    changes: &mut RecordChanges,
    status: &mut AccountStatus,
) -> Result<(), PassError> {
    context.lease_left()?;
    let mut intended = RecordChanges::default();
    for (staged, previous) in batch.iter().zip(previous) {
        intended.files.insert(staged.page.note.key.clone(), Some(intent(&staged.page, previous)));
    }
    context.store.commit(&context.lease, &intended, None, None).await?;
    let entries: Vec<BatchEntry> = batch
        .iter()
        .map(|staged| BatchEntry {
            session_id: staged.session_id.clone(),
            size: staged.size,
            path: staged.page.html.clone(),
        })
        .collect();
    let results = match context.write(context.client.finish_batch(&entries)).await? {
        Ok(results) => results,
        Err(error) => {
            // The call failed as a whole, so nothing says any one note is at fault: each is
            // tried again later (a lasting reason is found out then, note by note, or passes).
            let reason = match classify(error) {
                FileError::Pass(error) => return Err(error),
                FileError::Gone => "Dropbox could not find the batch of pages".to_owned(),
                FileError::Lasting(reason) | FileError::Passing(reason) => reason,
            };
            for staged in &batch {
                let error = FileError::Passing(reason.clone());
                fail(context, status, &staged.page.note, error, false)?;
            }
            return Ok(());
        }
    };
    // Every written page is recorded before an entry's error may end the pass.
    let mut ends_pass = None;
    for (staged, result) in batch.into_iter().zip(results) {
        match result {
            Ok(uploaded) => converted(context, status, changes, staged.page, uploaded),
            // The session is lost (expired, say): not the note, which is staged again.
            Err(DropboxError::Route(route))
                if route.tags.first().is_some_and(|tag| tag == "lookup_failed") =>
            {
                let error = FileError::Passing(format!("Dropbox lost the page's upload ({route})"));
                fail(context, status, &staged.page.note, error, false)?;
            }
            Err(error) => match classify(error) {
                FileError::Pass(error) => {
                    ends_pass.get_or_insert(error);
                }
                // A page's write cannot find the note gone: whatever it means, try again.
                FileError::Gone => {
                    let error = FileError::Passing("Dropbox could not find the page".to_owned());
                    fail(context, status, &staged.page.note, error, false)?;
                }
                error => fail(context, status, &staged.page.note, error, false)?,
            },
        }
    }
    ends_pass.map_or(Ok(()), Err)
}
