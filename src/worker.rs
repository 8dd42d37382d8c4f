//! The worker loop: claim a due account, hold its lease with a heartbeat, run a sync pass
//! ([`crate::sync`]), then complete, reschedule or unlink it.
//!
//! One worker process syncs up to `WORKER_ACCOUNTS` accounts at once, each in a task of its own;
//! any number of processes share the queue, and the store's lease keeps each account with one
//! of them at a time. An idle worker sleeps until the store announces work (or `idle_poll`
//! passes, or the soonest backoff ends).
//!
//! Shutdown (SIGTERM): no new claims; running passes finish the file they are on and stop;
//! after `shutdown_grace` whatever still runs is abandoned. Every account is handed back due
//! now, so another worker resumes it at once instead of waiting out a lease.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::account::AccountId;
use crate::config::WorkerSettings;
use crate::dropbox::DropboxClient;
use crate::metrics::Metrics;
use crate::store::{
    AccountStatus, Claim, ClaimOutcome, Completion, Lease, LeaseError, LeaseWindow, Reschedule,
    Store, SyncState,
};
use crate::sync::{self, PassContext, PassError};
use crate::task::AbortOnDrop;
use crate::telemetry::error_chain;

/// After the store fails, wait this long before asking again.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// A sync worker for one process.
pub struct Worker {
    store: Store,
    dropbox: DropboxClient,
    settings: WorkerSettings,
    /// The memory budget every pass of this process shares, in KiB permits.
    memory: Arc<Semaphore>,
    metrics: Metrics,
}

/// The leases this process holds, so the ones abandoned at shutdown can be handed back.
type Held = Arc<Mutex<HashMap<AccountId, Lease>>>;

impl Worker {
    pub fn new(store: Store, dropbox: DropboxClient, settings: WorkerSettings) -> Worker {
        let kib = usize::try_from(settings.memory_budget / 1024).unwrap_or(Semaphore::MAX_PERMITS);
        let memory = Arc::new(Semaphore::new(kib.min(Semaphore::MAX_PERMITS)));
        let metrics = Metrics::new();
        let dropbox = dropbox.with_metrics(metrics.clone());
        Worker { store, dropbox, settings, memory, metrics }
    }

    /// Runs until `shutdown` resolves, then drains as described in the module docs.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop, stopping) = watch::channel(false);
        let mut passes = JoinSet::new();
        let held: Held = Arc::default();
        let signal = async {
            shutdown.await;
            let _ = stop.send(true);
        };
        let flusher = self.metrics.start_flushing(self.store.clone());
        tokio::join!(signal, self.claim_loop(&mut passes, &held, stopping));
        let drained = tokio::time::timeout(self.settings.shutdown_grace, async {
            while passes.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                abandoned = passes.len(),
                "passes still running after {:?}; abandoning them",
                self.settings.shutdown_grace
            );
            passes.shutdown().await;
        }
        let abandoned: Vec<Lease> =
            held.lock().unwrap_or_else(PoisonError::into_inner).drain().map(|(_, l)| l).collect();
        for lease in abandoned {
            if let Err(error) =
                self.store.reschedule(&lease, Duration::ZERO, Reschedule::HandedBack, None).await
            {
                tracing::warn!(account = %lease.account(), error = %error_chain(&error), "cannot hand an account back; it is resumed when its lease expires");
            }
        }
        flusher.stop().await;
        tracing::info!("worker stopped");
    }

    /// Claims and starts passes until the worker is stopping. Only the waits are cut short by
    /// a stop, never a claim: a claim cut off after Redis ran it would strand its lease.
    async fn claim_loop(
        &self,
        passes: &mut JoinSet<()>,
        held: &Held,
        mut stopping: watch::Receiver<bool>,
    ) {
        if until_stopping(&mut stopping, self.sweep()).await.is_none() {
            return;
        }
        let wakeups = self.store.wakeups();
        let slots = Arc::new(Semaphore::new(self.settings.accounts));
        while !*stopping.borrow() {
            // Reap finished passes so the set does not grow.
            while passes.try_join_next().is_some() {}
            let Some(Ok(slot)) = until_stopping(&mut stopping, slots.clone().acquire_owned()).await
            else {
                return;
            };
            match self.store.claim(self.settings.lease_ttl).await {
                Ok(ClaimOutcome::Claimed(claim)) => {
                    let pass = Pass {
                        metrics: self.metrics.clone(),
                        memory: self.memory.clone(),
                        store: self.store.clone(),
                        dropbox: self.dropbox.clone(),
                        settings: self.settings.clone(),
                        held: held.clone(),
                        stopping: stopping.clone(),
                    };
                    let (lease, failures) = (claim.lease.clone(), claim.failures);
                    let (store, held, settings) =
                        (self.store.clone(), held.clone(), self.settings.clone());
                    passes.spawn(async move {
                        // A pass of its own, so a panic in it is reported and the account
                        // retried with backoff instead of waiting out its lease unexplained.
                        let run = AbortOnDrop(tokio::spawn(pass.run(*claim)));
                        if let Err(panic) = run.await {
                            tracing::error!(account = %lease.account(), error = %panic, "a pass panicked; the account is retried later");
                            forget_held(&held, lease.account());
                            let delay = settings.backoff(failures);
                            let _ = store.reschedule(&lease, delay, Reschedule::Failed, None).await;
                        }
                        drop(slot);
                    });
                }
                Ok(ClaimOutcome::NothingDue { next_due_in_ms }) => {
                    drop(slot);
                    let idle = next_due_in_ms
                        .map_or(self.settings.idle_poll, Duration::from_millis)
                        .min(self.settings.idle_poll);
                    until_stopping(&mut stopping, wakeups.wait(idle)).await;
                }
                Err(error) => {
                    drop(slot);
                    tracing::warn!(error = %error_chain(&error), "cannot claim work; trying again");
                    until_stopping(&mut stopping, tokio::time::sleep(STORE_RETRY)).await;
                }
            }
        }
    }

    /// Queues every linked account once, retrying until the store answers.
    async fn sweep(&self) {
        loop {
            match self.store.sweep().await {
                Ok(linked) => {
                    tracing::info!(linked, "queued every linked account once");
                    return;
                }
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "cannot queue the linked accounts yet; trying again");
                    tokio::time::sleep(STORE_RETRY).await;
                }
            }
        }
    }
}

fn forget_held(held: &Held, account: &AccountId) {
    held.lock().unwrap_or_else(PoisonError::into_inner).remove(account);
}

/// `work`'s output, or `None` when the worker starts stopping first.
async fn until_stopping<T>(
    stopping: &mut watch::Receiver<bool>,
    work: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        output = work => Some(output),
        _ = stopping.wait_for(|stopping| *stopping) => None,
    }
}

/// How a pass went, and the account's token record as it stands after it.
struct PassEnd {
    result: Result<(), PassError>,
    status: AccountStatus,
    /// The stored record: the claimed one, or the refreshed tokens the pass saved.
    sealed_tokens: String,
}

/// One claimed account's pass and what follows it.
struct Pass {
    metrics: Metrics,
    memory: Arc<Semaphore>,
    store: Store,
    dropbox: DropboxClient,
    settings: WorkerSettings,
    held: Held,
    stopping: watch::Receiver<bool>,
}

impl Pass {
    async fn run(self, claim: Claim) {
        let account = claim.lease.account().clone();
        let started = Instant::now();
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(account.clone(), claim.lease.clone());
        let heartbeat = Heartbeat::start(
            self.store.clone(),
            claim.lease.clone(),
            claim.leased_at,
            &self.settings,
        );
        let end = self.sync(&claim, heartbeat.window()).await;
        drop(heartbeat);
        let result = self.finish(claim, end).await;
        forget_held(&self.held, &account);
        match result {
            Ok(summary) => {
                tracing::info!(%account, elapsed_ms = started.elapsed().as_millis() as u64, "{summary}")
            }
            Err(LeaseError::Lost) => {
                tracing::warn!(%account, "lost the lease during the pass; another worker has the account")
            }
            Err(LeaseError::Store(error)) => {
                tracing::warn!(%account, error = %error_chain(&error), "cannot record the end of a pass; the account is resumed when its lease expires")
            }
        }
    }

    /// The pass itself, with the tokens it refreshed saved whatever its outcome.
    async fn sync(&self, claim: &Claim, window: LeaseWindow) -> PassEnd {
        let mut status = claim.status.clone();
        let mut sealed_tokens = claim.sealed_tokens.clone();
        if let SyncState::MissingPermission { scope, tokens } = &status.state
            && *tokens == fingerprint(&sealed_tokens)
        {
            // Stopped until the person connects again: not one call with this link.
            let result = Err(PassError::MissingPermission { scope: scope.clone() });
            return PassEnd { result, status, sealed_tokens };
        }
        let Some(tokens) = claim.tokens.clone() else {
            // Not an unlink: a worker started with the wrong SECRET_KEY (a typo, a rolling
            // deploy) must not delete every link it claims. The person can connect again.
            let failed = PassError::Failed {
                message: "markdrop cannot read this account's stored access (its SECRET_KEY \
                          changed); connect Dropbox again"
                    .to_owned(),
                source: anyhow::anyhow!("the token record does not open with this SECRET_KEY"),
            };
            return PassEnd { result: Err(failed), status, sealed_tokens };
        };
        let client = Arc::new(self.dropbox.account(tokens.clone()));
        let context = PassContext {
            client: client.clone(),
            store: self.store.clone(),
            lease: claim.lease.clone(),
            window,
            stopping: self.stopping.clone(),
            settings: self.settings.clone(),
            memory: Some((self.memory.clone(), self.settings.memory_budget / 1024)),
            metrics: self.metrics.clone(),
            due_at_ms: claim.due_at_ms,
        };
        status.state = SyncState::Syncing;
        let result =
            match self.store.commit(&claim.lease, &Default::default(), None, Some(&status)).await {
                Ok(()) => sync::run(&context, claim.cursor.clone(), &mut status).await,
                Err(error) => Err(error.into()),
            };
        let current = client.tokens().await;
        if current.access_token.expose_secret() != tokens.access_token.expose_secret() {
            match self.store.replace_tokens(&claim.lease, &claim.sealed_tokens, &current).await {
                Ok(Some(sealed)) => sealed_tokens = sealed,
                // Connected again meanwhile: the new link's tokens stay.
                Ok(None) => {}
                // The old refresh token still works: the next pass refreshes again.
                Err(error) => {
                    tracing::warn!(account = %claim.lease.account(), error = %error_chain(&error), "cannot keep the refreshed access token")
                }
            }
        }
        PassEnd { result, status, sealed_tokens }
    }

    /// Records how the pass ended and gives the account back to the queue (or out of it).
    async fn finish(
        &self,
        claim: Claim,
        PassEnd { result, mut status, sealed_tokens }: PassEnd,
    ) -> Result<String, LeaseError> {
        let lease = &claim.lease;
        self.metrics.pass(match &result {
            Ok(()) => "complete",
            Err(PassError::RateLimited { .. }) => "rate_limited",
            Err(PassError::Unlinked { .. }) => "unlinked",
            Err(PassError::MissingPermission { .. }) => "missing_permission",
            Err(PassError::LeaseLost) => "lease_lost",
            Err(PassError::Stopped) => "stopped",
            Err(PassError::Failed { .. }) => "failed",
        });
        match result {
            Ok(()) => {
                status.state = SyncState::Idle;
                status.last_pass_at = Some(self.store.clock().now_secs());
                let retry_at = status.next_retry_at_ms();
                let completion =
                    self.store.complete(lease, claim.generation, &status, retry_at).await?;
                Ok(match completion {
                    Completion::Done => "pass complete".to_owned(),
                    Completion::Again => {
                        "pass complete; changes arrived meanwhile, queued again".to_owned()
                    }
                })
            }
            Err(PassError::RateLimited { retry_after }) => {
                // A little extra, so accounts limited together do not all return at once.
                let delay = retry_after + jitter(retry_after / 10 + Duration::from_millis(100));
                status.state = SyncState::RateLimited {
                    until: self.store.clock().now_secs() + delay.as_secs(),
                };
                self.store.reschedule(lease, delay, Reschedule::RateLimited, Some(&status)).await?;
                Ok(format!("rate limited by Dropbox; trying again in {delay:?}"))
            }
            Err(PassError::Unlinked { reason }) => {
                status.state = SyncState::Unlinked;
                // Nothing is retried for a link that is gone; a new one lists from the start.
                status.retrying.clear();
                if self.store.unlink(lease, &sealed_tokens, &status).await? {
                    Ok(format!("Dropbox refused the account's tokens ({reason}); unlinked it"))
                } else {
                    Ok("the tokens were refused, but the account connected again meanwhile"
                        .to_owned())
                }
            }
            Err(PassError::MissingPermission { scope }) => {
                // Off the queue, tokens kept: connecting again (new tokens) resumes the account
                // where it stopped, with its cursor and records.
                let tokens = fingerprint(&sealed_tokens);
                status.state = SyncState::MissingPermission { scope: scope.clone(), tokens };
                self.store.complete(lease, claim.generation, &status, None).await?;
                Ok(format!(
                    "Dropbox says the link lacks {scope}; stopped until the person connects again"
                ))
            }
            Err(PassError::LeaseLost) => Err(LeaseError::Lost),
            Err(PassError::Stopped) => {
                self.store
                    .reschedule(lease, Duration::ZERO, Reschedule::HandedBack, Some(&status))
                    .await?;
                Ok("stopped for shutdown; handed the account back".to_owned())
            }
            Err(PassError::Failed { message, source }) => {
                let delay = self.settings.backoff(claim.failures);
                tracing::warn!(account = %lease.account(), error = %error_chain(source.as_ref()), failures = claim.failures + 1, "pass failed");
                status.state = SyncState::Failing { message };
                self.store.reschedule(lease, delay, Reschedule::Failed, Some(&status)).await?;
                Ok(format!("pass failed; trying again in {delay:?}"))
            }
        }
    }
}

/// A random part of `up_to`, so accounts told to wait alike do not come back in lockstep.
fn jitter(up_to: Duration) -> Duration {
    up_to.mul_f64(rand::random::<f64>())
}

/// A short fingerprint of a sealed token record: a stop for a missing permission holds for the
/// link it was decided on, and a new link (new tokens) ends it.
fn fingerprint(sealed_tokens: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(sealed_tokens.as_bytes())[..8])
}

/// Renews a lease every third of its lifetime, moving its [`LeaseWindow`] on; the window closes
/// when the store says the lease is gone, and runs out by itself when renewals fail for so long
/// that the lease may have expired.
struct Heartbeat {
    window: LeaseWindow,
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeat {
    /// Starts renewing a lease taken at `leased_at` (when the claim was sent: the lease may
    /// run out earlier than its holder learned of it, never later).
    fn start(
        store: Store,
        lease: Lease,
        leased_at: Instant,
        settings: &WorkerSettings,
    ) -> Heartbeat {
        let ttl = settings.lease_ttl;
        // The lease is surely ours until `valid_until`; writes stop a tenth of a lease before
        // that, so one bounded by the window never lands after the expiry.
        let margin = ttl / 10;
        let window = LeaseWindow::new(leased_at + ttl - margin);
        let renewed = window.clone();
        let task = tokio::spawn(async move {
            let mut valid_until = leased_at + ttl;
            loop {
                let give_up_at = valid_until - margin;
                let next = (Instant::now() + ttl / 3).min(give_up_at);
                tokio::time::sleep_until(next.into()).await;
                if Instant::now() >= give_up_at {
                    tracing::warn!(account = %lease.account(), "could not renew the lease in time; giving the account up");
                    break;
                }
                let sent = Instant::now();
                match tokio::time::timeout_at(give_up_at.into(), store.renew(&lease, ttl)).await {
                    Ok(Ok(true)) => {
                        valid_until = sent + ttl;
                        renewed.extend_to(valid_until - margin);
                    }
                    Ok(Ok(false)) => break,
                    Ok(Err(error)) => {
                        tracing::warn!(account = %lease.account(), error = %error_chain(&error), "cannot renew the lease; trying again");
                    }
                    Err(_) => {}
                }
            }
            renewed.close();
        });
        Heartbeat { window, task }
    }

    fn window(&self) -> LeaseWindow {
        self.window.clone()
    }
}

impl Drop for Heartbeat {
    /// A pass aborted mid-way (shutdown past its grace) must not leave its heartbeat renewing
    /// a lease nobody uses.
    fn drop(&mut self) {
        self.task.abort();
    }
}
