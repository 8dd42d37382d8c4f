//! How many calls one account may have in flight: a limit that feels for Dropbox's own.
//!
//! Dropbox limits the calls of each user but publishes no number (docs/dropbox.md §14), and the
//! number that fits changes with what else calls for the same person (the web process linking
//! them, another app). A fixed bound is either too timid, leaving a big account's first pass
//! waiting on latency it could overlap, or too bold, turning a pass into a stream of 429s. So the
//! bound moves the way TCP's window does: one more call after each window of calls answered
//! without a refusal, a quarter fewer after `too_many_requests`. Unlike TCP it then stays below
//! the bound that was refused: each refusal costs a call a whole `Retry-After` (a second or
//! more), far more than probing again could win back within one pass. Calls already in flight
//! when the bound drops are not cancelled; the bound is met again as they finish.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::{Semaphore, SemaphorePermit};

/// Where an account starts: below the 20 calls of Dropbox's own parallel-upload example for one
/// user, which is also where the emulator refuses, with room for the web process.
pub const CALLS_IN_FLIGHT_PER_ACCOUNT: usize = 16;

/// The most an account grows to, however well Dropbox takes it: each call in flight holds a
/// connection and its buffers, and the process's own bound is shared by every account.
pub const MOST_CALLS_IN_FLIGHT_PER_ACCOUNT: usize = 64;

/// The least an account shrinks to: one call waiting out a refusal while another goes on.
const FEWEST_CALLS_IN_FLIGHT: usize = 2;

/// The bound on one account's calls in flight, and what moves it.
pub(super) struct CallLimit {
    permits: Semaphore,
    state: Mutex<State>,
}

struct State {
    limit: usize,
    /// The most the limit may grow to: just under the last bound Dropbox refused.
    ceiling: usize,
    /// Calls answered since the limit last moved.
    answered: usize,
    /// Permits to retire as calls finish, after the limit dropped below the calls in flight.
    owed: usize,
    /// Bumped when the limit drops, so that the refusals of calls started before (all of one
    /// burst) lower it once, not once each.
    epoch: u64,
}

/// One call in flight until dropped. Say how it went with [`Slot::answered`] or
/// [`Slot::refused`]; a call that ends with neither leaves the limit where it is.
pub(super) struct Slot<'a> {
    limit: &'a CallLimit,
    permit: Option<SemaphorePermit<'a>>,
    epoch: u64,
}

impl CallLimit {
    pub(super) fn new(limit: usize) -> CallLimit {
        let ceiling = MOST_CALLS_IN_FLIGHT_PER_ACCOUNT.max(limit);
        let state = State { limit, ceiling, answered: 0, owed: 0, epoch: 0 };
        CallLimit { permits: Semaphore::new(limit), state: Mutex::new(state) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state whole before anything can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for room under the limit.
    pub(super) async fn start(&self) -> Slot<'_> {
        // The semaphore is never closed, so `acquire` always gives a permit.
        let permit = self.permits.acquire().await.ok();
        Slot { limit: self, permit, epoch: self.state().epoch }
    }

    /// The bound now.
    pub(super) fn current(&self) -> usize {
        self.state().limit
    }
}

impl Slot<'_> {
    /// Dropbox answered (anything but a rate limit): after a whole window of such answers the
    /// account may have one more call in flight.
    pub(super) fn answered(&self) {
        let mut state = self.limit.state();
        state.answered += 1;
        if state.answered >= state.limit && state.limit < state.ceiling {
            state.answered = 0;
            state.limit += 1;
            if state.owed > 0 {
                state.owed -= 1;
            } else {
                self.limit.permits.add_permits(1);
            }
        }
    }

    /// Dropbox answered `too_many_requests`: a quarter fewer calls in flight, once per burst,
    /// and never again as many as were refused.
    pub(super) fn refused(&self) {
        let mut state = self.limit.state();
        if self.epoch != state.epoch {
            return;
        }
        state.ceiling = state.limit.saturating_sub(1).max(FEWEST_CALLS_IN_FLIGHT);
        let lower = (state.limit * 3 / 4).max(FEWEST_CALLS_IN_FLIGHT);
        state.owed += state.limit.saturating_sub(lower);
        state.limit = lower;
        state.answered = 0;
        state.epoch += 1;
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else { return };
        let mut state = self.limit.state();
        if state.owed > 0 {
            state.owed -= 1;
            permit.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many calls could start now without waiting.
    fn room(limit: &CallLimit) -> usize {
        limit.permits.available_permits()
    }

    #[tokio::test]
    async fn a_window_of_answered_calls_lets_one_more_call_in() {
        let limit = CallLimit::new(4);
        for _ in 0..3 {
            limit.start().await.answered();
        }
        assert_eq!((limit.current(), room(&limit)), (4, 4));
        limit.start().await.answered();
        assert_eq!((limit.current(), room(&limit)), (5, 5));
    }

    #[tokio::test]
    async fn after_a_refusal_the_limit_grows_back_to_just_under_the_refused_bound() {
        let limit = CallLimit::new(8);
        limit.start().await.refused();
        assert_eq!(limit.current(), 6);
        for _ in 0..100 {
            limit.start().await.answered();
        }
        assert_eq!((limit.current(), room(&limit)), (7, 7));
    }

    #[tokio::test]
    async fn a_burst_of_refusals_lowers_the_limit_once_and_calls_in_flight_finish() {
        let limit = CallLimit::new(8);
        let mut burst = Vec::new();
        for _ in 0..8 {
            burst.push(limit.start().await);
        }
        assert_eq!(room(&limit), 0);
        for slot in burst.drain(..5) {
            slot.refused();
            drop(slot);
        }
        assert_eq!(limit.current(), 6, "three quarters of 8, once for the whole burst");
        assert_eq!(room(&limit), 3, "five ended, and two of their permits were retired");
        for slot in burst {
            slot.answered();
            drop(slot);
        }
        assert_eq!(room(&limit), 6, "back to the new limit once the burst is over");

        limit.start().await.refused();
        assert_eq!(limit.current(), 4, "a call started after the drop lowers it again");
    }

    #[tokio::test]
    async fn the_limit_stays_between_its_floor_and_its_ceiling() {
        let limit = CallLimit::new(2);
        limit.start().await.refused();
        assert_eq!(limit.current(), FEWEST_CALLS_IN_FLIGHT);

        let limit = CallLimit::new(MOST_CALLS_IN_FLIGHT_PER_ACCOUNT);
        for _ in 0..MOST_CALLS_IN_FLIGHT_PER_ACCOUNT * 2 {
            limit.start().await.answered();
        }
        assert_eq!(limit.current(), MOST_CALLS_IN_FLIGHT_PER_ACCOUNT);
        assert_eq!(room(&limit), MOST_CALLS_IN_FLIGHT_PER_ACCOUNT);
    }

    #[tokio::test]
    async fn growing_back_pays_off_retired_permits_first() {
        let limit = CallLimit::new(8);
        let held: Vec<_> = futures_util::future::join_all((0..8).map(|_| limit.start())).await;
        let mut held = held.into_iter();
        held.next().expect("a call").refused();
        assert_eq!(limit.current(), 6);
        // Six answers make a window at 6: the limit grows to 7 with one permit still owed.
        for slot in held.by_ref().take(6) {
            slot.answered();
            drop(slot);
        }
        assert_eq!(limit.current(), 7);
        drop(held);
        assert_eq!(room(&limit), 7);
    }
}
