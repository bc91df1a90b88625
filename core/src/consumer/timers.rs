//! The timer table: one deadline per timer, the next one the minimum.
//!
//! A timer that passes does not stay in the past (the adapter would be woken
//! again at once): [`Timers::fire`] turns it into a *due* mark that the work
//! it stands for takes with [`Timers::take_due`] when it can run.

use std::time::{Duration, Instant};

/// Why a deadline exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// Time to try connecting again.
    Reconnect,
    /// Time for the next claim sweep.
    ClaimSweep,
    /// A reply is overdue: the connection is taken for dead.
    Reply,
    /// The shutdown drain period ends.
    Drain,
    /// Time for the next heartbeat (and liveness check of the others).
    Heartbeat,
    /// A retried entry is due for redelivery.
    Retry,
    /// Time to refresh the idle time of entries this consumer holds.
    Refresh,
    /// Polling mode: time for the next non-blocking read.
    Poll,
    /// Dead letters whose move failed are moved again.
    DeadLetterRetry,
    /// Time to sample the group's pending count and lag.
    GroupStats,
    /// Time to ask where the data connections go (a sentinel for the
    /// master), or the one asked took too long to answer.
    Discovery,
}

/// The timers the table keeps. The other two kinds of deadline are read
/// from their owners: [`TimerKind::Reply`] from the oldest command sent,
/// [`TimerKind::Retry`] from the ledger's earliest retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    Reconnect,
    ClaimSweep,
    Drain,
    Heartbeat,
    Refresh,
    Poll,
    /// Dead letters whose move failed are not moved again before it.
    DeadLetterRetry,
    GroupStats,
    /// Discovery asks (again), or the one asked is given up.
    Discovery,
}

const ALL: [Timer; 9] = [
    Timer::Reconnect,
    Timer::ClaimSweep,
    Timer::Drain,
    Timer::Heartbeat,
    Timer::Refresh,
    Timer::Poll,
    Timer::DeadLetterRetry,
    Timer::GroupStats,
    Timer::Discovery,
];

/// Timers of one connection's work: they fire into due marks, and are
/// disarmed when the connection goes down.
const PER_CONNECTION: [Timer; 6] = [
    Timer::ClaimSweep,
    Timer::Heartbeat,
    Timer::Refresh,
    Timer::Poll,
    Timer::DeadLetterRetry,
    Timer::GroupStats,
];

impl Timer {
    pub(super) fn kind(self) -> TimerKind {
        match self {
            Timer::Reconnect => TimerKind::Reconnect,
            Timer::ClaimSweep => TimerKind::ClaimSweep,
            Timer::Drain => TimerKind::Drain,
            Timer::Heartbeat => TimerKind::Heartbeat,
            Timer::Refresh => TimerKind::Refresh,
            Timer::Poll => TimerKind::Poll,
            Timer::DeadLetterRetry => TimerKind::DeadLetterRetry,
            Timer::GroupStats => TimerKind::GroupStats,
            Timer::Discovery => TimerKind::Discovery,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Deadlines and due marks, one each per [`Timer`].
#[derive(Debug, Default)]
pub(super) struct Timers {
    at: [Option<Instant>; ALL.len()],
    due: [bool; ALL.len()],
}

impl Timers {
    /// Arms `timer` for `at` (replacing any earlier deadline).
    pub(super) fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer.index()] = Some(at);
    }

    /// Arms `timer` for `at`, or disarms it.
    pub(super) fn set_opt(&mut self, timer: Timer, at: Option<Instant>) {
        self.at[timer.index()] = at;
    }

    /// Disarms `timer` and forgets that it was due.
    pub(super) fn cancel(&mut self, timer: Timer) {
        self.at[timer.index()] = None;
        self.due[timer.index()] = false;
    }

    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer.index()]
    }

    pub(super) fn is_armed(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// Marks the work of `timer` due now (or not), leaving its deadline.
    pub(super) fn set_due(&mut self, timer: Timer, due: bool) {
        self.due[timer.index()] = due;
    }

    pub(super) fn is_due(&self, timer: Timer) -> bool {
        self.due[timer.index()]
    }

    /// Whether `timer` was due, clearing the mark.
    pub(super) fn take_due(&mut self, timer: Timer) -> bool {
        std::mem::take(&mut self.due[timer.index()])
    }

    /// Turns every passed deadline of a connection's work into a due mark.
    /// They fire a millisecond early: work that caps `BLOCK` (millisecond
    /// resolution) at a deadline must not come back just short of it.
    pub(super) fn fire(&mut self, now: Instant) {
        let soon = now + Duration::from_millis(1);
        for timer in PER_CONNECTION {
            let i = timer.index();
            if self.at[i].is_some_and(|at| at <= soon) {
                self.at[i] = None;
                self.due[i] = true;
            }
        }
    }

    /// Whether the deadline of `timer` has passed at `now`; if so it is
    /// disarmed (for [`Timer::Reconnect`] and [`Timer::Drain`], acted on
    /// where they are checked).
    pub(super) fn expired(&mut self, timer: Timer, now: Instant) -> bool {
        let passed = self.get(timer).is_some_and(|at| at <= now);
        if passed {
            self.at[timer.index()] = None;
        }
        passed
    }

    /// The connection went down: its timers are re-armed by the next one.
    pub(super) fn disarm_connection(&mut self) {
        for timer in PER_CONNECTION {
            self.cancel(timer);
        }
    }

    /// Everything stops.
    pub(super) fn clear(&mut self) {
        *self = Timers::default();
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<(Instant, TimerKind)> {
        ALL.into_iter()
            .filter_map(|t| self.get(t).map(|at| (at, t.kind())))
            .min_by_key(|&(at, _)| at)
    }

    /// The earliest of these timers' deadlines.
    pub(super) fn earliest(&self, timers: &[Timer]) -> Option<Instant> {
        timers.iter().filter_map(|&t| self.get(t)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // a test's instant
    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn the_next_deadline_is_the_earliest_armed_one() {
        let now = t0();
        let mut timers = Timers::default();
        assert_eq!(timers.next(), None);
        timers.set(Timer::Heartbeat, now + Duration::from_secs(3));
        timers.set(Timer::ClaimSweep, now + Duration::from_secs(1));
        timers.set(Timer::Drain, now + Duration::from_secs(2));
        assert_eq!(
            timers.next(),
            Some((now + Duration::from_secs(1), TimerKind::ClaimSweep))
        );
        timers.cancel(Timer::ClaimSweep);
        assert_eq!(
            timers.next(),
            Some((now + Duration::from_secs(2), TimerKind::Drain))
        );
        assert_eq!(
            timers.earliest(&[Timer::Heartbeat, Timer::Refresh]),
            Some(now + Duration::from_secs(3))
        );
    }

    #[test]
    fn fired_timers_become_due_and_leave_no_deadline_in_the_past() {
        let now = t0();
        let mut timers = Timers::default();
        timers.set(Timer::Refresh, now + Duration::from_millis(1));
        timers.set(Timer::Reconnect, now + Duration::from_millis(1));
        timers.set(Timer::Heartbeat, now + Duration::from_secs(1));
        timers.fire(now);
        // Refresh is within its millisecond of slack; Reconnect has none,
        // and is never a due mark.
        assert!(timers.is_due(Timer::Refresh));
        assert!(!timers.is_armed(Timer::Refresh));
        assert!(!timers.is_due(Timer::Reconnect));
        assert!(timers.is_armed(Timer::Reconnect));
        assert!(!timers.expired(Timer::Reconnect, now));
        assert!(timers.expired(Timer::Reconnect, now + Duration::from_millis(1)));
        assert!(!timers.is_armed(Timer::Reconnect));
        assert!(!timers.is_due(Timer::Heartbeat));
        assert!(timers.take_due(Timer::Refresh));
        assert!(!timers.take_due(Timer::Refresh));
        assert!(timers.next().is_some_and(|(at, _)| at > now));
    }

    #[test]
    fn a_lost_connection_disarms_only_its_own_timers() {
        let now = t0();
        let mut timers = Timers::default();
        for timer in ALL {
            timers.set(timer, now + Duration::from_secs(1));
        }
        timers.set_due(Timer::Heartbeat, true);
        timers.disarm_connection();
        assert!(timers.is_armed(Timer::Reconnect));
        assert!(timers.is_armed(Timer::Drain));
        for timer in PER_CONNECTION {
            assert!(!timers.is_armed(timer));
            assert!(!timers.is_due(timer));
        }
    }
}
