//! How many calls one account may have in flight: a limit that feels for Dropbox's own.
//!
//! Dropbox limits the calls of each user over windows of time but publishes no number
//! (docs/dropbox.md §14), and what fits changes with what else calls for the same person (the web
//! process linking them, another app). A fixed bound is either too timid, leaving a big account's
//! first pass waiting on latency it could overlap, or too bold, turning a pass into a stream of
//! 429s. So the bound moves the way TCP's window does: one more call after each window of calls
//! answered without a refusal (counting only calls that found the bound full, so a bound nobody
//! uses does not grow), a quarter fewer after `too_many_requests`. Unlike TCP it then stays under
//! the number of calls that was refused for a long while (`CEILING_PATIENCE`): a refusal stops
//! every call of the account for its whole `Retry-After`, far more than probing again soon could
//! win back. A `Retry-After` holds every call of the account, not only the refused one, since
//! Dropbox counts refused calls too. Calls already in flight when the bound drops are not
//! cancelled; the bound is met again as they finish.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Where an account starts: below the 20 calls of Dropbox's own parallel-upload example for one
/// user, which is also where the emulator refuses, with room for the web process.
pub const CALLS_IN_FLIGHT_PER_ACCOUNT: usize = 16;

/// The most an account grows to, however well Dropbox takes it: each call in flight holds a
/// connection and its buffers, and the process's own bound is shared by every account.
pub const MOST_CALLS_IN_FLIGHT_PER_ACCOUNT: usize = 64;

/// The least an account shrinks to: one call waiting out a refusal while another goes on.
const FEWEST_CALLS_IN_FLIGHT: usize = 2;

/// Windows answered without a refusal at the ceiling before the bound probes one call above it
/// again: about 5,000 calls at 20 in flight, most of a minute at Dropbox's 100-300 ms a call.
/// A probe that is refused costs the account a whole `Retry-After` (a second or more), so this
/// keeps that under a few percent of a long pass.
const CEILING_PATIENCE: usize = 256;

/// The shortest `Retry-After` honoured: a `0` would have every waiting call sent again at once.
const SHORTEST_WAIT: Duration = Duration::from_secs(1);

/// The bound on one account's calls in flight, and what moves it.
pub(super) struct CallLimit {
    permits: Semaphore,
    state: Mutex<State>,
}

struct State {
    limit: usize,
    /// The most the limit may grow to: under the calls that were in flight at the last refusal.
    ceiling: usize,
    /// Calls answered, having found the limit full, since the limit last moved.
    answered: usize,
    /// Whole windows answered at the ceiling since the last refusal.
    clean_windows: usize,
    /// Permits to retire as calls finish, after the limit dropped below the calls in flight.
    owed: usize,
    /// Bumped when the limit drops, so that the refusals of calls started before (all of one
    /// burst) lower it once, not once each.
    epoch: u64,
    /// No call starts before this: Dropbox's `Retry-After`.
    resume_at: Option<Instant>,
}

/// One call in flight until dropped. Say how it went with [`Slot::answered`] or
/// [`Slot::refused`]; a call that ends with neither leaves the limit where it is.
pub(super) struct Slot<'a> {
    limit: &'a CallLimit,
    permit: Option<SemaphorePermit<'a>>,
    epoch: u64,
    /// It took the last free place: its answer says the limit was used, and may grow it.
    saturated: bool,
}

impl CallLimit {
    pub(super) fn new(limit: usize) -> CallLimit {
        let state = State {
            limit,
            ceiling: MOST_CALLS_IN_FLIGHT_PER_ACCOUNT.max(limit),
            answered: 0,
            clean_windows: 0,
            owed: 0,
            epoch: 0,
            resume_at: None,
        };
        CallLimit { permits: Semaphore::new(limit), state: Mutex::new(state) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state whole before anything can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for room under the limit, and for any `Retry-After` to pass.
    pub(super) async fn start(&self) -> Slot<'_> {
        // The semaphore is never closed, so `acquire` always gives a permit.
        let permit = self.permits.acquire().await.ok();
        let saturated = self.permits.available_permits() == 0;
        loop {
            let resume_at = self.state().resume_at.filter(|&at| at > Instant::now());
            match resume_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => break,
            }
        }
        Slot { limit: self, permit, epoch: self.state().epoch, saturated }
    }

    /// The bound now.
    pub(super) fn current(&self) -> usize {
        self.state().limit
    }
}

impl Slot<'_> {
    /// Dropbox answered (anything but a rate limit): after a whole window of such answers with
    /// the limit full, the account may have one more call in flight.
    pub(super) fn answered(&self) {
        if !self.saturated {
            return;
        }
        let mut state = self.limit.state();
        state.answered += 1;
        if state.answered < state.limit || state.limit >= MOST_CALLS_IN_FLIGHT_PER_ACCOUNT {
            return;
        }
        state.answered = 0;
        if state.limit >= state.ceiling {
            state.clean_windows += 1;
            if state.clean_windows < CEILING_PATIENCE {
                return;
            }
            state.clean_windows = 0;
            state.ceiling += 1;
        }
        state.limit += 1;
        if state.owed > 0 {
            state.owed -= 1;
        } else {
            self.limit.permits.add_permits(1);
        }
    }

    /// Dropbox answered `too_many_requests`: no call of the account starts for `retry_after`,
    /// and a quarter fewer calls are in flight after it, once per burst; the limit then grows
    /// back only to just under the calls that were in flight, until a long clean run.
    pub(super) fn refused(&self, retry_after: Duration) {
        let mut state = self.limit.state();
        let resume_at = Instant::now() + retry_after.max(SHORTEST_WAIT);
        state.resume_at = Some(state.resume_at.map_or(resume_at, |at| at.max(resume_at)));
        state.clean_windows = 0;
        if self.epoch != state.epoch {
            return;
        }
        let in_flight =
            (state.limit + state.owed).saturating_sub(self.limit.permits.available_permits());
        let lower = (state.limit * 3 / 4).max(FEWEST_CALLS_IN_FLIGHT);
        // Under the calls refused, when there were more of them than the lower limit: no
        // fewer, since with a window of time a refusal says little about concurrency.
        state.ceiling = (in_flight.min(state.limit).saturating_sub(1)).max(lower);
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
    use std::collections::VecDeque;

    use futures_util::future::join_all;

    use super::*;

    const WAIT: Duration = Duration::from_secs(1);

    /// How many calls could start now without waiting.
    fn room(limit: &CallLimit) -> usize {
        limit.permits.available_permits()
    }

    /// The limit's worth of calls in flight, each of which took the last free place, as in a
    /// pass that keeps the limit full.
    async fn full(limit: &CallLimit) -> Vec<Slot<'_>> {
        let n = limit.current();
        let mut held: VecDeque<Slot<'_>> = join_all((0..n).map(|_| limit.start())).await.into();
        for _ in 0..n {
            held.pop_front();
            held.push_back(limit.start().await);
        }
        held.into()
    }

    /// `windows` times, the limit's worth of calls answered with the limit full.
    async fn answer_full_windows(limit: &CallLimit, windows: usize) {
        for _ in 0..windows {
            for slot in &full(limit).await {
                slot.answered();
            }
        }
    }

    #[tokio::test]
    async fn a_window_of_answered_calls_with_the_limit_full_lets_one_more_call_in() {
        let limit = CallLimit::new(4);
        for _ in 0..10 {
            limit.start().await.answered();
        }
        assert_eq!(limit.current(), 4, "one call at a time never fills the limit");
        answer_full_windows(&limit, 1).await;
        assert_eq!((limit.current(), room(&limit)), (5, 5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_holds_every_call_of_the_account_for_its_retry_after() {
        let limit = CallLimit::new(4);
        let refused = limit.start().await;
        let started = Instant::now();
        refused.refused(WAIT);
        drop(refused);
        let _next = limit.start().await;
        assert_eq!(started.elapsed(), WAIT);
        let zero = limit.start().await;
        zero.refused(Duration::ZERO);
        drop(zero);
        let started = Instant::now();
        let _after = limit.start().await;
        assert_eq!(started.elapsed(), SHORTEST_WAIT, "a Retry-After of 0 is not taken literally");
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_refusals_lowers_the_limit_once_and_calls_in_flight_finish() {
        let limit = CallLimit::new(8);
        let mut burst = full(&limit).await;
        assert_eq!(room(&limit), 0);
        for slot in burst.drain(..5) {
            slot.refused(WAIT);
            drop(slot);
        }
        assert_eq!(limit.current(), 6, "three quarters of 8, once for the whole burst");
        assert_eq!(room(&limit), 3, "five ended, and two of their permits were retired");
        drop(burst);
        assert_eq!(room(&limit), 6, "back to the new limit once the burst is over");

        limit.start().await.refused(WAIT);
        assert_eq!(limit.current(), 4, "a call started after the drop lowers it again");
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_refusal_the_limit_stays_under_the_calls_refused_for_a_long_while() {
        let limit = CallLimit::new(8);
        let burst = full(&limit).await;
        burst[0].refused(WAIT);
        drop(burst);
        assert_eq!(limit.current(), 6);
        answer_full_windows(&limit, CEILING_PATIENCE).await;
        assert_eq!((limit.current(), room(&limit)), (7, 7), "just under the 8 refused");
        answer_full_windows(&limit, 1).await;
        assert_eq!(limit.current(), 8, "probed again after a long clean run");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_with_few_calls_in_flight_lowers_the_limit_by_a_quarter_and_holds_it() {
        let limit = CallLimit::new(16);
        let alone = limit.start().await;
        alone.refused(WAIT);
        drop(alone);
        assert_eq!(limit.current(), 12);
        answer_full_windows(&limit, 2).await;
        assert_eq!(limit.current(), 12, "no probing right after a refusal");
    }

    #[tokio::test]
    async fn the_limit_stays_between_its_floor_and_its_ceiling() {
        let limit = CallLimit::new(MOST_CALLS_IN_FLIGHT_PER_ACCOUNT);
        answer_full_windows(&limit, 3).await;
        assert_eq!(limit.current(), MOST_CALLS_IN_FLIGHT_PER_ACCOUNT);
        assert_eq!(room(&limit), MOST_CALLS_IN_FLIGHT_PER_ACCOUNT);

        let limit = CallLimit::new(FEWEST_CALLS_IN_FLIGHT);
        limit.start().await.refused(WAIT);
        assert_eq!(limit.current(), FEWEST_CALLS_IN_FLIGHT);
    }

    #[tokio::test(start_paused = true)]
    async fn growing_back_pays_off_retired_permits_first() {
        let limit = CallLimit::new(8);
        let held = full(&limit).await;
        held[0].refused(WAIT);
        assert_eq!((limit.current(), room(&limit)), (6, 0));
        // Answered but still in flight: six answers make a window at 6, and the limit grows to
        // 7 by paying off one of the two retired permits instead of adding one.
        for slot in &held[2..] {
            slot.answered();
        }
        assert_eq!((limit.current(), room(&limit)), (7, 0));
        drop(held);
        assert_eq!(room(&limit), 7, "eight ended, one permit retired");
    }
}
