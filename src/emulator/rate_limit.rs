//! Dropbox's per-user rate limit, as a bound on the `/2/…` calls one account has in flight.
//!
//! Dropbox limits calls per authorization (per user for a user-linked app) and answers past the
//! limit with 429 `too_many_requests` and a `Retry-After` header (docs/dropbox.md §14). It does
//! not publish the limit, and counts calls over a window of time; the emulator counts what a
//! client controls and a test can reason about: calls in flight at once. A client that fans out
//! without a bound for one user fails here as it would, sooner or later, on Dropbox.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The `Retry-After` (and `retry_after`) of a refusal, in seconds. Short, because the limit is
/// on calls in flight: it clears as soon as one of them is answered.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// The calls in flight per account.
#[derive(Default, Clone)]
pub struct CallsInFlight(Arc<Mutex<HashMap<String, usize>>>);

/// One call in flight; dropping it (the response is done, whichever way) ends it.
pub struct CallInFlight {
    calls: CallsInFlight,
    account_id: String,
}

impl CallsInFlight {
    fn counts(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        // Only increments and decrements happen under it; a poisoned map is still right.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a call for `account_id` unless `limit` calls are in flight already.
    pub fn enter(&self, account_id: &str, limit: usize) -> Option<CallInFlight> {
        let mut counts = self.counts();
        let count = counts.entry(account_id.to_owned()).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(CallInFlight { calls: self.clone(), account_id: account_id.to_owned() })
    }

    /// The account's calls in flight now (counted only while a limit is set).
    pub fn of(&self, account_id: &str) -> usize {
        self.counts().get(account_id).copied().unwrap_or(0)
    }
}

impl Drop for CallInFlight {
    fn drop(&mut self) {
        let mut counts = self.calls.counts();
        if let Some(count) = counts.get_mut(&self.account_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.account_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_past_the_limit_is_refused_until_one_in_flight_ends() {
        let calls = CallsInFlight::default();
        let first = calls.enter("a", 2).expect("the first");
        let _second = calls.enter("a", 2).expect("the second");
        assert!(calls.enter("a", 2).is_none(), "the third is one too many");
        assert!(calls.enter("b", 2).is_some(), "another account has its own limit");
        drop(first);
        assert_eq!(calls.of("a"), 1);
        assert!(calls.enter("a", 2).is_some(), "served again once one ended");
    }
}
