//! Counters for `GET /metrics` (Prometheus text format).
//!
//! Each process counts in memory ([`Metrics`]) and adds what it counted to the store every
//! [`FLUSH_EVERY`] ([`Metrics::flush_to`]), so `/metrics` on any web process shows the whole
//! deployment: every web process's webhooks and every worker's passes, files and Dropbox calls.
//! Platforms such as Heroku route requests to any web process, so a per-process endpoint could
//! not be scraped. Queue gauges are read from the store when `/metrics` is asked.
//!
//! Series are kept under their full Prometheus name with labels (`markdrop_files_total{outcome=
//! "converted"}`), which is also the field in the store; label values are markdrop's own words
//! and Dropbox route names, never anything a person or Dropbox sent.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::store::{QueueDepth, Store};
use crate::task::AbortOnDrop;

/// How often a process adds its counts to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Upper bounds (seconds) of the webhook-to-upload latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// The families `/metrics` describes, with their help text and type.
const FAMILIES: [(&str, &str, &str); 10] = [
    ("markdrop_webhooks_total", "counter", "Webhook notifications received, by outcome."),
    (
        "markdrop_webhook_malformed_accounts_total",
        "counter",
        "Account ids in signed notifications that are not Dropbox account ids (skipped).",
    ),
    ("markdrop_passes_total", "counter", "Sync passes run, by how they ended."),
    ("markdrop_files_total", "counter", "Markdown files handled, by outcome."),
    ("markdrop_dropbox_calls_total", "counter", "Dropbox API calls, by route and HTTP status."),
    (
        "markdrop_rate_limit_waits_total",
        "counter",
        "Times Dropbox asked an account to wait (in a pass, or back in the queue).",
    ),
    (
        "markdrop_webhook_to_upload_seconds",
        "histogram",
        "From an account's notification (its queue entry) to each of its .html uploads.",
    ),
    ("markdrop_accounts_queued", "gauge", "Accounts with a pass waiting or running."),
    ("markdrop_queue_due", "gauge", "Queued accounts whose pass is due now."),
    (
        "markdrop_queue_waiting",
        "gauge",
        "Queued accounts not due yet: being synced, or waiting out a backoff or rate limit.",
    ),
];

/// One process's counts since its last flush. Cheap to clone; clones share the counts.
#[derive(Clone, Default)]
pub struct Metrics {
    pending: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn add(&self, series: String, by: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        *pending.entry(series).or_default() += by;
    }

    /// A webhook answered: `accepted`, `forged`, `malformed`, `too_large`, `too_slow` or
    /// `store_unavailable`.
    pub fn webhook(&self, outcome: &str) {
        self.add(format!("markdrop_webhooks_total{{outcome=\"{outcome}\"}}"), 1);
    }

    /// A signed notification named `count` account ids that are not account ids; the valid
    /// ones it named were queued.
    pub fn webhook_malformed_accounts(&self, count: usize) {
        self.add(
            "markdrop_webhook_malformed_accounts_total".to_owned(),
            u64::try_from(count).unwrap_or(u64::MAX),
        );
    }

    /// A pass ended: `complete`, `rate_limited`, `failed`, `unlinked`, `lease_lost` or
    /// `stopped`.
    pub fn pass(&self, outcome: &str) {
        self.add(format!("markdrop_passes_total{{outcome=\"{outcome}\"}}"), 1);
        if outcome == "rate_limited" {
            self.add("markdrop_rate_limit_waits_total".to_owned(), 1);
        }
    }

    /// A refused call was waited out within its pass (its account's calls all held meanwhile).
    pub fn rate_limit_waited(&self) {
        self.add("markdrop_rate_limit_waits_total".to_owned(), 1);
    }

    /// A file's outcome: `converted`, `removed`, `kept` (its page is the person's), `skipped`
    /// or `failed`.
    pub fn file(&self, outcome: &str) {
        self.add(format!("markdrop_files_total{{outcome=\"{outcome}\"}}"), 1);
    }

    /// A Dropbox call answered with `status` (0: no answer at all).
    pub fn dropbox_call(&self, route: &str, status: u16) {
        let series =
            format!("markdrop_dropbox_calls_total{{route=\"{route}\",status=\"{status}\"}}");
        self.add(series, 1);
    }

    /// An `.html` uploaded `latency` after its account was queued.
    pub fn webhook_to_upload(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let name = "markdrop_webhook_to_upload_seconds";
        for bound in LATENCY_BUCKETS {
            if seconds <= bound {
                self.add(format!("{name}_bucket{{le=\"{bound}\"}}"), 1);
            }
        }
        self.add(format!("{name}_bucket{{le=\"+Inf\"}}"), 1);
        self.add(format!("{name}_count"), 1);
        // Kept in microseconds: the store adds integers.
        self.add(format!("{name}_sum_us"), u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// Adds the counts to the store and starts counting afresh. Counts the store did not take
    /// are dropped, not kept for the next flush: a call that timed out may have been applied,
    /// and a counter must never count twice; a few counts lost in a store outage are the
    /// lesser harm.
    pub async fn flush_to(&self, store: &Store) {
        let counts =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if counts.is_empty() {
            return;
        }
        if let Err(error) = store.add_metrics(&counts).await {
            tracing::debug!(error = %crate::telemetry::error_chain(&error), "cannot add metrics to the store; these counts are lost");
        }
    }

    /// Starts flushing to `store` every [`FLUSH_EVERY`] in a task of its own, until
    /// [`Flusher::stop`].
    pub fn start_flushing(&self, store: Store) -> Flusher {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = AbortOnDrop(tokio::spawn(self.clone().flush_until(store, stopped)));
        Flusher { stop, task }
    }

    /// Flushes to `store` every [`FLUSH_EVERY`], and once more when `stop` turns true.
    async fn flush_until(self, store: Store, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let stopping = tokio::select! {
                () = tokio::time::sleep(FLUSH_EVERY) => false,
                _ = stop.wait_for(|stop| *stop) => true,
            };
            self.flush_to(&store).await;
            if stopping {
                return;
            }
        }
    }
}

/// A process's metrics flushing to the store, started by [`Metrics::start_flushing`].
pub struct Flusher {
    stop: tokio::sync::watch::Sender<bool>,
    task: AbortOnDrop<()>,
}

impl Flusher {
    /// Flushes once more and stops: what was counted since the last flush is not lost with the
    /// process.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The Prometheus text for the deployment's counts and the queue's depth.
pub fn render(counts: &BTreeMap<String, u64>, queue: QueueDepth) -> String {
    let mut text = String::new();
    let mut gauges = BTreeMap::new();
    gauges.insert("markdrop_accounts_queued", queue.queued);
    gauges.insert("markdrop_queue_due", queue.due);
    gauges.insert("markdrop_queue_waiting", queue.queued.saturating_sub(queue.due));
    for (family, kind, help) in FAMILIES {
        let _ = writeln!(text, "# HELP {family} {help}");
        let _ = writeln!(text, "# TYPE {family} {kind}");
        if let Some(value) = gauges.get(family) {
            let _ = writeln!(text, "{family} {value}");
            continue;
        }
        if kind == "histogram" {
            let count = |series: String| counts.get(&series).copied().unwrap_or(0);
            for bound in LATENCY_BUCKETS.iter().map(f64::to_string).chain(["+Inf".to_owned()]) {
                let bucket = format!("{family}_bucket{{le=\"{bound}\"}}");
                let _ = writeln!(text, "{bucket} {}", count(bucket.clone()));
            }
            let sum = count(format!("{family}_sum_us")) as f64 / 1e6;
            let _ = writeln!(text, "{family}_sum {sum}");
            let _ = writeln!(text, "{family}_count {}", count(format!("{family}_count")));
            continue;
        }
        let mut any = false;
        for (series, count) in counts.range(family.to_owned()..) {
            if !series.starts_with(family) {
                break;
            }
            any = true;
            let _ = writeln!(text, "{series} {count}");
        }
        if !any && family == "markdrop_rate_limit_waits_total" {
            // A counter without labels reads as zero before anything is counted, not as absent.
            let _ = writeln!(text, "{family} 0");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_has_help_type_and_every_series() {
        let metrics = Metrics::new();
        metrics.webhook("accepted");
        metrics.webhook("accepted");
        metrics.pass("rate_limited");
        metrics.dropbox_call("files/upload", 200);
        metrics.webhook_to_upload(Duration::from_millis(20));
        let counts = metrics.pending.lock().unwrap().clone();
        let text = render(&counts, QueueDepth { queued: 3, due: 1 });
        for line in [
            "# TYPE markdrop_webhooks_total counter",
            "markdrop_webhooks_total{outcome=\"accepted\"} 2",
            "markdrop_passes_total{outcome=\"rate_limited\"} 1",
            "markdrop_rate_limit_waits_total 1",
            "markdrop_dropbox_calls_total{route=\"files/upload\",status=\"200\"} 1",
            "markdrop_webhook_to_upload_seconds_bucket{le=\"0.01\"} 0",
            "markdrop_webhook_to_upload_seconds_bucket{le=\"0.025\"} 1",
            "markdrop_webhook_to_upload_seconds_bucket{le=\"+Inf\"} 1",
            "markdrop_webhook_to_upload_seconds_sum 0.02",
            "markdrop_webhook_to_upload_seconds_count 1",
            "markdrop_accounts_queued 3",
            "markdrop_queue_due 1",
            "markdrop_queue_waiting 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
