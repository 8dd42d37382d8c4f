//! Waiting for a condition, the one way a test waits for work (never a bare sleep): poll it
//! until it holds, and past a deadline fail the test naming what was awaited.

use std::future::Future;
use std::time::Duration;

/// How long a test waits for something that should happen in well under a second.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// What one poll of a condition found: a `bool`; an `Option<T>`, `Some` carrying what the test
/// waited for; or a `Result<T, String>` whose `Err` says what was there instead, for the
/// failure message.
pub trait Outcome {
    type Value;
    fn into_result(self) -> Result<Self::Value, Option<String>>;
}

impl Outcome for bool {
    type Value = ();
    fn into_result(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn into_result(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T> Outcome for Result<T, String> {
    type Value = T;
    fn into_result(self) -> Result<T, Option<String>> {
        self.map_err(Some)
    }
}

/// How long a wait lasts and how often it polls.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    pub within: Duration,
    pub every: Duration,
}

impl Patience {
    /// [`DEADLINE`], polling every 10 ms: what [`eventually`] uses.
    pub const USUAL: Patience = Patience { within: DEADLINE, every: Duration::from_millis(10) };

    /// Polls `condition` until it holds and returns what it found.
    pub async fn wait_for<O: Outcome, F: Future<Output = O>>(
        self,
        what: &str,
        mut condition: impl FnMut() -> F,
    ) -> O::Value {
        // Tokio's clock, so a test on a paused clock waits in the time it controls.
        let start = tokio::time::Instant::now();
        loop {
            match condition().await.into_result() {
                Ok(value) => return value,
                Err(seen) => self.give_up_if_late(what, start.elapsed(), seen),
            }
            tokio::time::sleep(self.every).await;
        }
    }

    /// [`Patience::wait_for`] for a test without a runtime: the thread sleeps between polls.
    pub fn wait_for_blocking<O: Outcome>(
        self,
        what: &str,
        mut condition: impl FnMut() -> O,
    ) -> O::Value {
        let start = std::time::Instant::now();
        loop {
            match condition().into_result() {
                Ok(value) => return value,
                Err(seen) => self.give_up_if_late(what, start.elapsed(), seen),
            }
            std::thread::sleep(self.every);
        }
    }

    fn give_up_if_late(self, what: &str, waited: Duration, seen: Option<String>) {
        if waited >= self.within {
            match seen {
                Some(seen) => panic!("gave up after {:?} waiting for {what}: {seen}", self.within),
                None => panic!("gave up after {:?} waiting for {what}", self.within),
            }
        }
    }
}

/// Polls `condition` until it holds, failing the test with `what` after [`DEADLINE`]; returns
/// what the condition found (`()` for a `bool`).
pub async fn eventually<O: Outcome, F: Future<Output = O>>(
    what: &str,
    condition: impl FnMut() -> F,
) -> O::Value {
    Patience::USUAL.wait_for(what, condition).await
}

/// [`eventually`] for a test without a runtime.
pub fn eventually_blocking<O: Outcome>(what: &str, condition: impl FnMut() -> O) -> O::Value {
    Patience::USUAL.wait_for_blocking(what, condition)
}
