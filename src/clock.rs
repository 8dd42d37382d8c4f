//! The one clock markdrop reads the time of day from: due times in the queue, backoffs and note
//! retries, the times on the account page, and the age of a session or a login in progress.
//!
//! It is the system's clock, except in tests, which hold a [`ManualClock`] and move it on by
//! hand, so a backoff or a retry's due time is checked without waiting it out. The store carries
//! the clock (`Store::clock`), and whatever schedules work with the store reads the same one.
//!
//! Not for elapsed time: leases run out in real time (Redis expires them, and the embedded store
//! and `LeaseWindow` count them on `Instant`), whatever this clock says. The Dropbox emulator
//! keeps a clock of its own (`emulator::clock`): it shares no code with the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the time of day comes from: the system's clock, or a [`ManualClock`]'s.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds since the epoch, when a [`ManualClock`] sets them; `None`: the system's.
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// Milliseconds since the Unix epoch (0 for a system clock set before 1970).
    pub fn now_millis(&self) -> u64 {
        match &self.manual {
            Some(millis) => millis.load(Ordering::SeqCst),
            None => millis_since_epoch(SystemTime::now()),
        }
    }

    /// Whole seconds since the Unix epoch.
    pub fn now_secs(&self) -> u64 {
        self.now_millis() / 1000
    }
}

/// A clock that stands still until it is moved on, for tests of time-dependent logic. It
/// starts at the system's time, so the times it gives are plausible next to real ones (a token's
/// expiry, a lease's remaining time in Redis).
#[derive(Clone, Debug)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at the system's time now.
    pub fn new() -> ManualClock {
        ManualClock { millis: Arc::new(AtomicU64::new(millis_since_epoch(SystemTime::now()))) }
    }

    /// The [`Clock`] to hand out: it reads this one's time.
    pub fn clock(&self) -> Clock {
        Clock { manual: Some(self.millis.clone()) }
    }

    /// Moves the time on by `by`.
    pub fn advance(&self, by: Duration) {
        self.millis.fetch_add(u64::try_from(by.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

fn millis_since_epoch(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_the_time_of_day() {
        let before = millis_since_epoch(SystemTime::now());
        let now = Clock::system().now_millis();
        assert!(now >= before && now - before < 60_000, "{before} {now}");
        assert_eq!(Clock::default().now_secs(), now / 1000);
    }

    #[test]
    fn a_manual_clock_stands_still_until_moved_on_and_every_copy_follows() {
        let time = ManualClock::new();
        let clock = time.clock();
        let start = clock.now_millis();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now_millis(), start, "stands still");
        time.advance(Duration::from_millis(1500));
        assert_eq!(clock.clone().now_millis(), start + 1500);
        assert_eq!(time.clock().now_secs(), (start + 1500) / 1000);
    }
}
