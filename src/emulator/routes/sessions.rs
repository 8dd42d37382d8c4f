//! Upload sessions (docs/dropbox.md §13): a file's bytes sent in several calls
//! (`upload_session/start`, `append_v2`), then committed alone (`finish`) or many at once
//! (`finish_batch_v2`, or the deprecated asynchronous `finish_batch` with its `check`).
//!
//! What it costs is modelled as Dropbox does it: sending bytes takes no namespace lock, so
//! appends to many sessions may run in parallel; a commit takes the lock like `files/upload`,
//! and a batch takes it once for all its entries. A commit is `files/upload`'s write itself
//! ([`commit`]), and a batch judges each entry on its own.
//!
//! Sessions are held in memory, belong to the account that started them and expire after
//! `EmulatorConfig::upload_session_lifetime` (Dropbox: 7 days). Only sequential sessions are
//! served; a concurrent one is refused with a 400 that says so.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::emulator::state::Written;
use crate::emulator::tokens::{Caller, random_token};
use crate::emulator::wire::{CallError, RouteError, SessionLookup};
use crate::emulator::{Emulator, World, clock};

use super::args::{ArgPlace, Argument, check_min_length};
use super::files::{
    CommitInfo, WriteInProgress, check_content_hash, commit, committed, hash_matches,
};
use super::json_response;

/// The most one session may hold: the emulator keeps it in memory, so it is bounded like one
/// `files/upload` body rather than by Dropbox's 2 TiB; past it an append is `too_large`, the
/// error Dropbox gives past its own bound.
pub(super) const MAX_SESSION_BYTES: usize = super::MAX_UPLOAD;
/// `UploadSessionFinishBatchArg.entries`: `List(UploadSessionFinishArg, max_items=1000)`.
const MAX_BATCH: usize = 1000;

/// Every account's open sessions and batch jobs.
#[derive(Default)]
pub struct UploadSessions {
    sessions: HashMap<String, Session>,
    jobs: HashMap<String, BatchJob>,
}

struct Session {
    account_id: String,
    /// Seconds since the epoch, on the emulator's clock.
    started: i64,
    content: Vec<u8>,
    state: SessionState,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SessionState {
    Open,
    /// No more data may come; a batch may commit it.
    Closed,
    /// Written to a file: nothing more may be done with it. Its bytes are let go.
    Committed,
}

struct BatchJob {
    account_id: String,
    started: i64,
    /// `None` while in progress; then the `complete` status, or `Err` for `internal_error`.
    outcome: Option<Result<Value, ()>>,
}

impl UploadSessions {
    /// Forgets sessions and jobs past their lifetime, so what the emulator holds is bounded by
    /// what was sent within one.
    fn prune(&mut self, now: i64, lifetime: i64) {
        self.sessions.retain(|_, session| now - session.started < lifetime);
        self.jobs.retain(|_, job| now - job.started < lifetime);
    }

    /// A closed session holding the bytes of a `files/upload` whose write failed, so the
    /// commit can be retried with `finish` (`UploadWriteFailed.upload_session_id`); its id.
    /// Closed, since the upload sent the whole file: the emulator's choice, which Dropbox's
    /// documentation leaves open.
    pub(super) fn keep(&mut self, caller: &Caller, content: Vec<u8>, now: i64) -> String {
        let session_id = new_session_id();
        let session = Session {
            account_id: caller.account_id.clone(),
            started: now,
            content,
            state: SessionState::Closed,
        };
        self.sessions.insert(session_id.clone(), session);
        session_id
    }

    /// The caller's live session: another account's, an expired or an unknown one is
    /// `not_found` alike, as on Dropbox.
    fn find(
        &mut self,
        caller: &Caller,
        session_id: &str,
        now: i64,
        lifetime: i64,
    ) -> Result<&mut Session, SessionLookup> {
        self.sessions
            .get_mut(session_id)
            .filter(|session| session.account_id == caller.account_id)
            .filter(|session| now - session.started < lifetime)
            .ok_or(SessionLookup::NotFound)
    }
}

impl Session {
    /// Whether `more` bytes may be added at `offset`.
    fn accepts(&self, offset: u64, more: usize) -> Result<(), SessionLookup> {
        if self.state != SessionState::Open {
            return Err(SessionLookup::Closed);
        }
        let length = self.content.len() as u64;
        if offset != length {
            return Err(SessionLookup::IncorrectOffset { correct_offset: length });
        }
        if self.content.len().saturating_add(more) > MAX_SESSION_BYTES {
            return Err(SessionLookup::TooLarge);
        }
        Ok(())
    }
}

/// `UploadSessionStartArg`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StartArg {
    #[serde(default)]
    close: bool,
    session_type: Option<Value>,
    content_hash: Option<String>,
}

impl Argument for StartArg {
    fn check(&self) -> Result<(), String> {
        // `UploadSessionType`: `sequential` (the default) or `concurrent`, bare or tagged.
        let tag = match &self.session_type {
            None | Some(Value::Null) => "sequential",
            Some(Value::String(tag)) => tag.as_str(),
            Some(Value::Object(object)) => object
                .get(".tag")
                .and_then(Value::as_str)
                .ok_or("session_type: missing '.tag' key")?,
            Some(_) => return Err("session_type: expected a union".to_owned()),
        };
        match tag {
            "sequential" => {}
            "concurrent" => {
                return Err("session_type: concurrent upload sessions are not served by the \
                     emulator (only sequential ones)"
                    .to_owned());
            }
            other => return Err(format!("session_type: unknown tag '{other}'")),
        }
        check_content_hash("content_hash", self.content_hash.as_deref())
    }
}

/// `UploadSessionCursor`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Cursor {
    session_id: String,
    offset: u64,
}

/// `UploadSessionAppendArg`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AppendArg {
    cursor: Cursor,
    #[serde(default)]
    close: bool,
    content_hash: Option<String>,
}

impl Argument for AppendArg {
    fn check(&self) -> Result<(), String> {
        check_content_hash("content_hash", self.content_hash.as_deref())
    }
}

/// `UploadSessionFinishArg`: `content_hash` is of the bytes sent with this call.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FinishArg {
    cursor: Cursor,
    commit: CommitInfo,
    content_hash: Option<String>,
}

impl Argument for FinishArg {
    fn check(&self) -> Result<(), String> {
        self.commit.check().map_err(|detail| format!("commit: {detail}"))?;
        check_content_hash("content_hash", self.content_hash.as_deref())
    }
}

/// `UploadSessionFinishBatchArg`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FinishBatchArg {
    entries: Vec<FinishArg>,
}

impl Argument for FinishBatchArg {
    fn check(&self) -> Result<(), String> {
        if self.entries.len() > MAX_BATCH {
            // Stone's list validator in its words (`… has more than 1000 items`).
            return Err(format!("entries: has more than {MAX_BATCH} items"));
        }
        self.entries.iter().try_for_each(|entry| entry.check().map_err(|e| format!("entries: {e}")))
    }
}

/// `async.PollArg`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PollArg {
    async_job_id: String,
}

impl Argument for PollArg {
    fn check(&self) -> Result<(), String> {
        // `AsyncJobId`: `String(min_length=1)`.
        check_min_length("async_job_id", &self.async_job_id, 1)
    }
}

/// A session id of the shape of Dropbox's (`pid_upload_session:` and URL-safe characters).
fn new_session_id() -> String {
    format!("pid_upload_session:{}", random_token(48))
}

/// The emulator's clock and the session lifetime, in seconds.
fn now_and_lifetime(emulator: &Emulator) -> (i64, i64) {
    let lifetime = emulator.config().upload_session_lifetime.as_secs();
    (clock::now_seconds(), i64::try_from(lifetime).unwrap_or(i64::MAX))
}

pub(super) fn start(
    emulator: &Emulator,
    caller: &Caller,
    arg: StartArg,
    data: Vec<u8>,
) -> Result<HttpResponse, CallError> {
    if !hash_matches(arg.content_hash.as_deref(), &data) {
        return Err(CallError::Route(RouteError::void("content_hash_mismatch")));
    }
    let (now, lifetime) = now_and_lifetime(emulator);
    let session_id = new_session_id();
    let state = if arg.close { SessionState::Closed } else { SessionState::Open };
    let session =
        Session { account_id: caller.account_id.clone(), started: now, content: data, state };
    {
        let mut world = emulator.world();
        world.sessions.prune(now, lifetime);
        world.sessions.sessions.insert(session_id.clone(), session);
    }
    tracing::debug!(account_id = %caller.account_id, "upload session started");
    Ok(json_response(&json!({"session_id": session_id})))
}

pub(super) fn append(
    emulator: &Emulator,
    caller: &Caller,
    arg: AppendArg,
    data: Vec<u8>,
) -> Result<HttpResponse, CallError> {
    let (now, lifetime) = now_and_lifetime(emulator);
    let refuse = |error| CallError::Route(RouteError::session_append(error));
    let mut world = emulator.world();
    let session =
        world.sessions.find(caller, &arg.cursor.session_id, now, lifetime).map_err(refuse)?;
    session.accepts(arg.cursor.offset, data.len()).map_err(refuse)?;
    if !hash_matches(arg.content_hash.as_deref(), &data) {
        return Err(CallError::Route(RouteError::void("content_hash_mismatch")));
    }
    session.content.extend_from_slice(&data);
    if arg.close {
        session.state = SessionState::Closed;
    }
    // `Void`: the body `null`.
    Ok(json_response(&Value::Null))
}

/// Adds a finish's bytes to its session and commits the whole as `files/upload` would, all
/// under one hold of the world. A failed write leaves the bytes in the session, as Dropbox's
/// does ("retry with empty data body and updated offset"); a batch (`in_batch`) commits only
/// closed sessions and sends no bytes.
fn finish_one(
    world: &mut World,
    caller: &Caller,
    arg: &FinishArg,
    data: Vec<u8>,
    in_batch: bool,
    (now, lifetime): (i64, i64),
) -> Result<Written, CallError> {
    let lookup = |error| CallError::Route(RouteError::session_lookup_failed(error));
    let session_id = &arg.cursor.session_id;
    let session = world.sessions.find(caller, session_id, now, lifetime).map_err(lookup)?;
    match session.state {
        SessionState::Open if in_batch => return Err(lookup(SessionLookup::NotClosed)),
        SessionState::Committed => return Err(lookup(SessionLookup::Closed)),
        // A closed session takes no more bytes, but a finish without any commits it.
        SessionState::Closed if data.is_empty() => {}
        SessionState::Open | SessionState::Closed => {
            session.accepts(arg.cursor.offset, data.len()).map_err(lookup)?;
        }
    }
    let length = session.content.len() as u64;
    if arg.cursor.offset != length {
        return Err(lookup(SessionLookup::IncorrectOffset { correct_offset: length }));
    }
    if !hash_matches(arg.content_hash.as_deref(), &data) {
        return Err(CallError::Route(RouteError::void("content_hash_mismatch")));
    }
    session.content.extend_from_slice(&data);
    let content = Arc::new(session.content.clone());
    let place = if in_batch { ArgPlace::Body } else { ArgPlace::Header };
    let written = commit(world, caller, &arg.commit, content, place)
        .map_err(|error| error.into_call_error(RouteError::session_write))?;
    if let Some(session) = world.sessions.sessions.get_mut(session_id) {
        session.state = SessionState::Committed;
        session.content = Vec::new();
    }
    Ok(written)
}

pub(super) fn finish(
    emulator: &Emulator,
    caller: &Caller,
    arg: FinishArg,
    data: Vec<u8>,
) -> Result<HttpResponse, CallError> {
    let clock = now_and_lifetime(emulator);
    let written = finish_one(&mut emulator.world(), caller, &arg, data, false, clock)?;
    Ok(json_response(&committed(emulator, caller, written)))
}

/// Commits every entry on its own, in order: one that fails is reported in its place and the
/// others are written. Only something that fails the whole call (the account gone) is an `Err`.
fn finish_entries(
    emulator: &Emulator,
    caller: &Caller,
    entries: &[FinishArg],
) -> Result<Vec<Value>, CallError> {
    let clock = now_and_lifetime(emulator);
    let mut results = Vec::with_capacity(entries.len());
    let mut commits = 0;
    for entry in entries {
        let outcome = finish_one(&mut emulator.world(), caller, entry, Vec::new(), true, clock);
        results.push(match outcome {
            Ok(written) => {
                commits += 1;
                // `success` carries `FileMetadata`, a struct: flattened beside the tag.
                let mut metadata = committed(emulator, caller, written);
                if let Some(fields) = metadata.as_object_mut() {
                    fields.insert(".tag".to_owned(), json!("success"));
                }
                metadata
            }
            // `failure` carries `UploadSessionFinishError`, a union: nested under its tag.
            Err(CallError::Route(error)) => {
                json!({".tag": "failure", "failure": error.into_value()})
            }
            Err(other) => return Err(other),
        });
    }
    emulator.inner.stats.count_batch_commits(&caller.account_id, commits);
    Ok(results)
}

/// `finish_batch_v2`: synchronous. The caller holds the namespace's write lock for the batch.
pub(super) fn finish_batch_v2(
    emulator: &Emulator,
    caller: &Caller,
    arg: FinishBatchArg,
) -> Result<HttpResponse, CallError> {
    let entries = finish_entries(emulator, caller, &arg.entries)?;
    Ok(json_response(&json!({"entries": entries})))
}

/// `finish_batch` (deprecated): answers with a job id at once and commits in the background,
/// holding the namespace's write lock until the job is done (Dropbox: "this route should be
/// executed serially" for one account).
pub(super) fn finish_batch(
    emulator: &Emulator,
    caller: &Caller,
    arg: FinishBatchArg,
    writing: Option<WriteInProgress>,
) -> Result<HttpResponse, CallError> {
    let (now, lifetime) = now_and_lifetime(emulator);
    let job_id = format!("dbjid:{}", random_token(64));
    {
        let mut world = emulator.world();
        world.sessions.prune(now, lifetime);
        let job = BatchJob { account_id: caller.account_id.clone(), started: now, outcome: None };
        world.sessions.jobs.insert(job_id.clone(), job);
    }
    let (emulator, caller, id) = (emulator.clone(), caller.clone(), job_id.clone());
    tokio::spawn(async move {
        // Runs once this answer is on its way, so `in_progress` can be seen.
        tokio::task::yield_now().await;
        let outcome = finish_entries(&emulator, &caller, &arg.entries)
            .map(|entries| json!({".tag": "complete", "entries": entries}))
            .map_err(|_| ());
        if let Some(job) = emulator.world().sessions.jobs.get_mut(&id) {
            job.outcome = Some(outcome);
        }
        drop(writing);
    });
    // `UploadSessionFinishBatchLaunch.async_job_id` carries a string: nested.
    Ok(json_response(&json!({".tag": "async_job_id", "async_job_id": job_id})))
}

pub(super) fn finish_batch_check(
    emulator: &Emulator,
    caller: &Caller,
    arg: PollArg,
) -> Result<HttpResponse, CallError> {
    let (now, lifetime) = now_and_lifetime(emulator);
    let world = emulator.world();
    let job = world
        .sessions
        .jobs
        .get(&arg.async_job_id)
        .filter(|job| job.account_id == caller.account_id && now - job.started < lifetime)
        .ok_or(CallError::Route(RouteError::void("invalid_async_job_id")))?;
    match &job.outcome {
        None => Ok(json_response(&json!({".tag": "in_progress"}))),
        Some(Ok(complete)) => Ok(json_response(complete)),
        Some(Err(())) => Err(CallError::Route(RouteError::void("internal_error"))),
    }
}
