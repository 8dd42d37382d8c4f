//! Which shard a worker looks at next for work.
//!
//! Every shard has a queue of its own, so a claim must choose where to look. Each process
//! keeps, per shard, when its soonest work is due (learned from the shard's own answers, from
//! wake-ups and from the process's own writes) and until when that knowledge is trusted. A
//! claim tries the shards whose work is due, round robin from a random start, so no shard
//! starves and idle workers do not all knock on one node; when none gives an account, it asks
//! the shards whose knowledge ran out, at most [`REFRESH`] old (work whose wake-up was lost, a
//! lease that ran out in another process), and tries again. A process that has not caught up
//! with those questions for a whole refresh asks before it tries ([`ShardSchedule::ask_first`]).
//! Each shard's knowledge runs out at its own time (a random part of the refresh is taken off),
//! so a claim asks a few shards at a time rather than all of them every ten seconds. A shard that did not answer (its cluster node is down) is left alone for
//! [`QUIET`], so it does not slow every claim, and its knowledge is kept.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::keys::Shard;

/// How long what a process knows of a shard is trusted, at most, before it asks again.
pub const REFRESH: Duration = Duration::from_secs(10);
/// How long a shard that did not answer is left alone.
pub const QUIET: Duration = Duration::from_secs(5);

/// Nothing queued in the shard, as far as this process knows.
const NEVER: u64 = u64::MAX;

pub struct ShardSchedule {
    state: Mutex<State>,
}

struct State {
    /// Per shard: when its soonest work is due (ms), [`NEVER`] when it has none.
    due_at: Vec<u64>,
    /// Per shard: until when that is trusted; `None` until the shard is first asked.
    trusted_until: Vec<Option<Instant>>,
    /// Per shard: until when it is left alone after it did not answer.
    quiet_until: Vec<Option<Instant>>,
    /// Per shard: when this process last learned of new work in it, so an answer to a
    /// question asked before then does not wipe that out.
    told_at: Vec<Option<Instant>>,
    /// The shard the next claim looks at first.
    next: usize,
    /// When every shard was last asked as its knowledge ran out (`None`: never yet).
    caught_up_at: Option<Instant>,
}

impl State {
    fn quiet(&self, index: usize, now: Instant) -> bool {
        self.quiet_until[index].is_some_and(|until| now < until)
    }
}

impl ShardSchedule {
    /// A schedule for `shards` shards that knows nothing yet, starting at a random shard.
    pub fn new(shards: usize) -> ShardSchedule {
        use rand::Rng;
        ShardSchedule {
            state: Mutex::new(State {
                // Unknown until asked: a claim asks stale shards before it claims from them.
                due_at: vec![NEVER; shards],
                trusted_until: vec![None; shards],
                quiet_until: vec![None; shards],
                told_at: vec![None; shards],
                next: rand::thread_rng().gen_range(0..shards),
                caught_up_at: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain numbers, valid whatever a panicking holder left.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The shards whose knowledge has run out, or that were never asked, leaving out those
    /// left alone after not answering.
    pub fn stale(&self, now: Instant) -> Vec<Shard> {
        let state = self.state();
        (0..state.due_at.len())
            .filter(|&index| state.trusted_until[index].is_none_or(|until| now >= until))
            .filter(|&index| !state.quiet(index, now))
            .map(shard)
            .collect()
    }

    /// Whether a claim should ask before it tries the due shards: never asked, or not caught
    /// up for a whole [`REFRESH`] (a worker always busy with due work still asks that often).
    /// Otherwise it tries known work first, so a wake-up is served without waiting on
    /// questions.
    pub fn ask_first(&self, now: Instant) -> bool {
        let state = self.state();
        state
            .caught_up_at
            .is_none_or(|caught_up| now.saturating_duration_since(caught_up) >= REFRESH)
    }

    /// Every shard whose knowledge ran out has been asked.
    pub fn caught_up(&self, now: Instant) {
        self.state().caught_up_at = Some(now);
    }

    /// The shards whose work is due at `now_ms`, in the order a claim should try them.
    pub fn due(&self, now_ms: u64, now: Instant) -> Vec<Shard> {
        let state = self.state();
        let count = state.due_at.len();
        (0..count)
            .map(|offset| (state.next + offset) % count)
            .filter(|&index| state.due_at[index] <= now_ms && !state.quiet(index, now))
            .map(shard)
            .collect()
    }

    /// What the shard answered to a question asked at `asked_at`: its soonest work is due at
    /// `due_at` (`None`: nothing queued). Work this process was told of since it asked stays.
    pub fn answered(&self, shard: Shard, due_at: Option<u64>, asked_at: Instant) {
        use rand::Rng;
        let mut state = self.state();
        let index = shard.index();
        let answer = due_at.unwrap_or(NEVER);
        let told_since = state.told_at[index].is_some_and(|told| told >= asked_at);
        let known = state.due_at[index];
        state.due_at[index] = if told_since { known.min(answer) } else { answer };
        let spread = rand::thread_rng().gen_range(Duration::ZERO..REFRESH / 2);
        state.trusted_until[index] = Some(asked_at + REFRESH - spread);
        state.quiet_until[index] = None;
    }

    /// The shard did not answer: it is left alone for [`QUIET`], and what was known of it
    /// stays, to be tried then.
    pub fn unanswered(&self, shard: Shard, now: Instant) {
        let mut state = self.state();
        state.quiet_until[shard.index()] = Some(now + QUIET);
        state.trusted_until[shard.index()] = Some(now + QUIET);
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
        state.trusted_until.iter_mut().for_each(|until| *until = None);
    }

    /// How long until the soonest work known of is due (ms), or a shard left alone with work
    /// may be tried again; `None` when none is queued, as far as this process knows. The worker
    /// looks again within its idle poll anyway, which asks the shards whose knowledge ran out.
    pub fn next_due_in(&self, now_ms: u64, now: Instant) -> Option<u64> {
        let state = self.state();
        (0..state.due_at.len())
            .filter(|&index| state.due_at[index] != NEVER)
            .map(|index| {
                let due_in = state.due_at[index].saturating_sub(now_ms);
                match state.quiet_until[index] {
                    Some(until) if now < until => {
                        due_in.max(until.duration_since(now).as_millis() as u64)
                    }
                    _ => due_in,
                }
            })
            .min()
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
        assert!(schedule.due(u64::MAX - 1, now).is_empty());
    }

    #[test]
    fn a_shard_that_answered_is_not_asked_again_until_its_work_is_due_or_its_knowledge_runs_out() {
        let schedule = schedule(3);
        let now = Instant::now();
        for index in 0..3 {
            schedule.answered(shard(index), None, now);
        }
        schedule.answered(shard(1), Some(5_000), now);
        assert!(schedule.stale(now).is_empty());
        assert!(schedule.stale(now + REFRESH / 2 - Duration::from_millis(1)).is_empty());
        assert!(schedule.due(4_999, now).is_empty());
        assert_eq!(schedule.due(5_000, now), vec![shard(1)]);
        assert_eq!(schedule.next_due_in(1_000, now), Some(4_000));
        assert_eq!(schedule.stale(now + REFRESH).len(), 3);
        schedule.answered(shard(1), None, now);
        assert_eq!(schedule.next_due_in(1_000, now), None, "nothing queued anywhere");
    }

    #[test]
    fn claims_go_round_the_shards_from_the_one_after_the_last_claim() {
        let schedule = schedule(4);
        let now = Instant::now();
        (0..4).for_each(|index| schedule.due_by(shard(index), 0));
        schedule.claimed_from(shard(1));
        assert_eq!(schedule.due(0, now), vec![shard(2), shard(3), shard(0), shard(1)]);
        schedule.claimed_from(shard(3));
        assert_eq!(schedule.due(0, now), vec![shard(0), shard(1), shard(2), shard(3)]);
    }

    #[test]
    fn a_wake_up_makes_a_shard_due_and_keeps_sooner_work() {
        let schedule = schedule(2);
        let now = Instant::now();
        schedule.answered(shard(0), None, now);
        schedule.answered(shard(1), Some(100), now);
        schedule.due_by(shard(0), 50);
        schedule.due_by(shard(1), 900);
        assert_eq!(schedule.due(100, now), vec![shard(0), shard(1)]);
        assert_eq!(schedule.due(60, now), vec![shard(0)]);
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
        assert_eq!(
            schedule.due(70, asked_at),
            vec![shard(0)],
            "the wake-up came after the question"
        );
        schedule.answered(shard(0), None, Instant::now());
        assert!(schedule.due(70, asked_at).is_empty(), "a question asked since is believed");
    }

    #[test]
    fn a_shard_that_did_not_answer_is_left_alone_for_a_while_and_keeps_its_work() {
        let schedule = schedule(2);
        let now = Instant::now();
        schedule.due_by(shard(0), 10);
        schedule.unanswered(shard(0), now);
        schedule.answered(shard(1), None, now);
        assert!(schedule.due(10, now).is_empty(), "not tried while quiet");
        assert!(schedule.stale(now).is_empty(), "not asked while quiet");
        assert_eq!(
            schedule.next_due_in(10, now),
            Some(QUIET.as_millis() as u64),
            "a worker waits for the quiet to end rather than spin"
        );
        assert_eq!(schedule.due(10, now + QUIET), vec![shard(0)], "tried again after");
        assert_eq!(schedule.stale(now + QUIET), vec![shard(0)], "and asked again");
    }

    #[test]
    fn a_claim_asks_first_until_caught_up_and_again_once_a_refresh_has_passed() {
        let schedule = schedule(2);
        let now = Instant::now();
        assert!(schedule.ask_first(now), "never asked");
        schedule.caught_up(now);
        assert!(!schedule.ask_first(now + REFRESH / 2), "known work first");
        assert!(schedule.ask_first(now + REFRESH), "however busy, it asks every refresh");
    }

    #[test]
    fn knowledge_runs_out_at_different_times_so_claims_ask_a_few_shards_at_once() {
        let schedule = schedule(64);
        let now = Instant::now();
        (0..64).for_each(|index| schedule.answered(shard(index), None, now));
        let halfway = schedule.stale(now + REFRESH * 3 / 4).len();
        assert!((8..56).contains(&halfway), "{halfway} of 64 stale three quarters through");
    }
}
