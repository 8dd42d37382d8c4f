//! Which shard a worker looks at next for work.
//!
//! Every shard has a queue of its own, so a claim must choose where to look. Each process
//! keeps, per shard, when it may next have work due (learned from the shard's own answers,
//! from wake-ups and from the process's own writes) and when it last asked. A claim asks the
//! shards whose work is due, round robin from a random start, so no shard starves and idle
//! workers do not all knock on one node; a shard not asked for [`REFRESH`] is asked again
//! (work whose wake-up was lost, a lease that ran out in another process), so no knowledge is
//! trusted for long.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::keys::Shard;

/// How long what a process knows of a shard is trusted before it asks again.
pub const REFRESH: Duration = Duration::from_secs(10);

/// Nothing queued in the shard, as far as this process knows.
const NEVER: u64 = u64::MAX;

pub struct ShardSchedule {
    state: Mutex<State>,
}

struct State {
    /// Per shard: when its soonest work is due (ms), [`NEVER`] when it has none.
    due_at: Vec<u64>,
    /// Per shard: when it was last asked; `None` until it is.
    asked_at: Vec<Option<Instant>>,
    /// Per shard: when this process last learned of new work in it, so an answer to a
    /// question asked before then does not wipe that out.
    told_at: Vec<Option<Instant>>,
    /// The shard the next claim looks at first.
    next: usize,
}

impl ShardSchedule {
    /// A schedule for `shards` shards that knows nothing yet, starting at a random shard.
    pub fn new(shards: usize) -> ShardSchedule {
        use rand::Rng;
        ShardSchedule {
            state: Mutex::new(State {
                // Unknown until asked: a claim asks stale shards before it claims from them.
                due_at: vec![NEVER; shards],
                asked_at: vec![None; shards],
                told_at: vec![None; shards],
                next: rand::thread_rng().gen_range(0..shards),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain numbers, valid whatever a panicking holder left.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The shards not asked for [`REFRESH`], or never.
    pub fn stale(&self, now: Instant) -> Vec<Shard> {
        let state = self.state();
        let stale = state.asked_at.iter().enumerate().filter(|(_, asked)| {
            asked.is_none_or(|asked| now.saturating_duration_since(asked) >= REFRESH)
        });
        stale.map(|(index, _)| shard(index)).collect()
    }

    /// The shards whose work is due at `now_ms`, in the order a claim should try them.
    pub fn due(&self, now_ms: u64) -> Vec<Shard> {
        let state = self.state();
        let count = state.due_at.len();
        (0..count)
            .map(|offset| (state.next + offset) % count)
            .filter(|&index| state.due_at[index] <= now_ms)
            .map(shard)
            .collect()
    }

    /// What the shard answered to a question asked at `asked_at`: its soonest work is due at
    /// `due_at` (`None`: nothing queued). Work this process was told of since it asked stays.
    pub fn answered(&self, shard: Shard, due_at: Option<u64>, asked_at: Instant) {
        let mut state = self.state();
        let index = shard.index();
        let answer = due_at.unwrap_or(NEVER);
        let told_since = state.told_at[index].is_some_and(|told| told >= asked_at);
        let known = state.due_at[index];
        state.due_at[index] = if told_since { known.min(answer) } else { answer };
        state.asked_at[index] = Some(asked_at);
    }

    /// An account of `shard` was claimed: the next claim starts at the shard after it, and this
    /// one may hold more work due now.
    pub fn claimed_from(&self, shard: Shard) {
        let mut state = self.state();
        let count = state.due_at.len();
        state.next = (shard.index() + 1) % count;
    }

    /// Work in `shard` is due at `due_at` (a wake-up, or this process's own enqueue or
    /// reschedule); sooner work already known stays.
    pub fn due_by(&self, shard: Shard, due_at: u64) {
        let mut state = self.state();
        let known = &mut state.due_at[shard.index()];
        *known = (*known).min(due_at);
        state.told_at[shard.index()] = Some(Instant::now());
    }

    /// Anything may have changed anywhere (a wake-up subscription that was down): every shard
    /// is asked again at the next claim.
    pub fn forget(&self) {
        let mut state = self.state();
        state.asked_at.iter_mut().for_each(|asked| *asked = None);
    }

    /// How long until the soonest work known of is due (ms); `None` when none is queued, as
    /// far as this process knows. The worker looks again within its idle poll anyway, which
    /// asks the shards not heard from for [`REFRESH`].
    pub fn next_due_in(&self, now_ms: u64) -> Option<u64> {
        let state = self.state();
        let soonest = state.due_at.iter().min().copied().filter(|due_at| *due_at != NEVER)?;
        Some(soonest.saturating_sub(now_ms))
    }
}

fn shard(index: usize) -> Shard {
    Shard::from_index(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(shards: usize) -> ShardSchedule {
        let schedule = ShardSchedule::new(shards);
        schedule.state().next = 0;
        schedule
    }

    #[test]
    fn a_new_schedule_asks_every_shard_before_it_takes_any_for_due() {
        let schedule = schedule(4);
        let now = Instant::now();
        assert_eq!(schedule.stale(now).len(), 4);
        assert!(schedule.due(u64::MAX - 1).is_empty());
    }

    #[test]
    fn a_shard_that_answered_is_not_asked_again_until_its_work_is_due_or_the_refresh() {
        let schedule = schedule(3);
        let now = Instant::now();
        for index in 0..3 {
            schedule.answered(shard(index), None, now);
        }
        schedule.answered(shard(1), Some(5_000), now);
        assert!(schedule.stale(now).is_empty());
        assert!(schedule.due(4_999).is_empty());
        assert_eq!(schedule.due(5_000), vec![shard(1)]);
        assert_eq!(schedule.next_due_in(1_000), Some(4_000));
        assert_eq!(schedule.stale(now + REFRESH).len(), 3);
        schedule.answered(shard(1), None, now);
        assert_eq!(schedule.next_due_in(1_000), None, "nothing queued anywhere");
    }

    #[test]
    fn claims_go_round_the_shards_from_the_one_after_the_last_claim() {
        let schedule = schedule(4);
        (0..4).for_each(|index| schedule.due_by(shard(index), 0));
        schedule.claimed_from(shard(1));
        assert_eq!(schedule.due(0), vec![shard(2), shard(3), shard(0), shard(1)]);
        schedule.claimed_from(shard(3));
        assert_eq!(schedule.due(0), vec![shard(0), shard(1), shard(2), shard(3)]);
    }

    #[test]
    fn a_wake_up_makes_a_shard_due_and_keeps_sooner_work() {
        let schedule = schedule(2);
        let now = Instant::now();
        schedule.answered(shard(0), None, now);
        schedule.answered(shard(1), Some(100), now);
        schedule.due_by(shard(0), 50);
        schedule.due_by(shard(1), 900);
        assert_eq!(schedule.due(100), vec![shard(0), shard(1)]);
        assert_eq!(schedule.due(60), vec![shard(0)]);
        schedule.forget();
        assert_eq!(schedule.stale(now).len(), 2);
    }

    #[test]
    fn an_answer_to_a_question_asked_before_a_wake_up_does_not_wipe_it_out() {
        let schedule = schedule(1);
        let asked_at = Instant::now();
        schedule.answered(shard(0), None, asked_at);
        schedule.due_by(shard(0), 70);
        schedule.answered(shard(0), None, asked_at);
        assert_eq!(schedule.due(70), vec![shard(0)], "the wake-up came after the question");
        schedule.answered(shard(0), None, Instant::now());
        assert!(schedule.due(70).is_empty(), "a question asked since is believed");
    }
}
