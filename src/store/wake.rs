//! Wake-ups for idle workers: new work is announced on a pub/sub channel, so a worker with
//! nothing to do waits for a message instead of polling Redis, and a change is picked up within
//! a round trip. The worker still looks at the queue now and then on its own: a wake-up lost to
//! a dropped connection only delays work, never loses it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::redis::RedisStore;

/// Pause before subscribing again after the subscription failed.
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(500);

/// A subscription to new work; dropping it ends the subscription.
pub struct Wakeups {
    notify: Arc<Notify>,
    /// Forwards the Redis channel's messages to `notify`; the embedded store notifies directly.
    listener: Option<JoinHandle<()>>,
}

impl Wakeups {
    /// Wake-ups from the Redis channel, forwarded by a task of their own.
    pub(super) fn subscribe(redis: RedisStore) -> Wakeups {
        let notify = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(redis, notify.clone()));
        Wakeups { notify, listener: Some(listener) }
    }

    /// Wake-ups the embedded store signals on `notify` itself.
    pub(super) fn notified_by(notify: Arc<Notify>) -> Wakeups {
        Wakeups { notify, listener: None }
    }

    /// Resolves at the next wake-up, or after `timeout`. A wake-up that came while nobody was
    /// waiting is kept, so work announced between a look at the queue and this call is not
    /// slept through.
    pub async fn wait(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.notify.notified()).await;
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

async fn listen(redis: RedisStore, notify: Arc<Notify>) {
    // In a cluster each failed subscription tries the next node named in `REDIS_URL`.
    let mut attempt = 0;
    loop {
        match redis.subscribe_wake(attempt).await {
            Ok(mut pubsub) => {
                // Anything may have been announced while we were not subscribed.
                notify.notify_one();
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    redis.woken(&message.get_payload::<String>().unwrap_or_default());
                    notify.notify_one();
                }
                tracing::warn!("the wake-up subscription ended; subscribing again");
            }
            Err(error) => {
                tracing::warn!(error = %crate::telemetry::error_chain(&error), "cannot subscribe to wake-ups; polling the queue meanwhile");
            }
        }
        attempt += 1;
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}
