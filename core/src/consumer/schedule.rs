//! What to send next, in priority order, whenever the connection is at a
//! quiet point: dead letters and acks first, then timed work (heartbeat,
//! idle refresh), then at most one fetch — the replay of our own pending
//! entries, due retries, a dead consumer's entries, the claim sweep, and
//! last new entries (polling, or a blocking read capped at the next
//! deadline; with a backlog, one prefetching read behind it). Reads of new
//! entries go on the read connection when there is one.

use std::time::{Duration, Instant};

use crate::id::ReadFrom;

use super::lifecycle::{Conn, Phase};
use super::outbox::Fetch;
use super::timers::Timer;
use super::{Consumer, State};

impl Consumer {
    pub(super) fn pump(&mut self, now: Instant) {
        let phase = match self.links.control().phase() {
            Some(phase @ (Phase::Group | Phase::Running)) => phase,
            Some(Phase::Handshake { .. }) | None => return,
        };
        if self.state == State::Stopped {
            return;
        }
        self.fire_due_timers(now);
        self.flush_dead(now);
        self.flush_acks(now);
        if phase != Phase::Running {
            return;
        }
        self.write_heartbeat(now);
        self.sample_group_stats(now);
        self.refresh(now);
        self.hand_over(now);
        // A slot kept for a control fetch may be free again.
        self.hand_out_read_ahead(now);
        // With heartbeats, nothing is read, replayed or claimed before this
        // connection's claim of the name is answered.
        if self.state == State::Running
            && !self.ledger.awaiting_counts()
            && self.heartbeat.holds_name()
            && self.lease_allows_fetch()
        {
            self.fetch(now);
        }
    }

    /// Turns passed deadlines into work to do, so no deadline stays in the
    /// past.
    pub(super) fn fire_due_timers(&mut self, now: Instant) {
        self.timers.fire(now);
        self.ledger.fire_retries(now + Duration::from_millis(1));
    }

    /// At most one fetch, the most urgent. With a free handler slot: the
    /// replay, retries, a dead consumer's entries, the sweep, then new
    /// entries; with every slot taken, only new entries, and only while the
    /// read-ahead budget has room.
    fn fetch(&mut self, now: Instant) {
        if self.reads_side_by_side() {
            return self.fetch_side_by_side(now);
        }
        let out = self.outbox.fetches_out();
        if out > 0 {
            return self.prefetch(now, out);
        }
        if self.slots_in_use() < self.cfg.max_in_flight_batches {
            if let Some(after) = self.reads.replay_from() {
                let from = ReadFrom::PendingAfter(after);
                let replay = (Conn::Control, Fetch::Replay);
                return self.outbox.read(now, replay, from, self.cfg.count, None);
            }
            if self.redeliver(now) {
                return;
            }
            if let Some(consumer) = self.heartbeat.next_dead().cloned() {
                return self.outbox.dead_pending(now, consumer, self.cfg.count);
            }
            if self.sweep(now) {
                return;
            }
        } else if self.cfg.read_ahead.is_none() {
            return;
        } else if self.others_in_flight > 0 && self.control_work_waiting() {
            // A stream of several whose replay, retries or sweep wait for a
            // slot the others hold: no read of new entries meanwhile (on one
            // connection it would hold the connection whenever a slot
            // frees, in step with the others' timers), and new entries come
            // after its own pending ones anyway.
            return;
        }
        let Some(count) = self.new_entries_room() else {
            return;
        };
        if self.cfg.receive_interval.is_some() {
            // Polling mode: a read without BLOCK, then a wait if it was empty.
            if !self.timers.is_armed(Timer::Poll) {
                self.timers.set_due(Timer::Poll, false);
                let read = (Conn::Control, Fetch::Read);
                self.reads.read_sent(count);
                self.outbox.read(now, read, ReadFrom::New, count, None);
            }
            return;
        }
        if !self.links.read_ready() {
            return; // the read connection is still being set up
        }
        // Cap BLOCK so the read returns by the next deadline: a blocking
        // read delays the fetches behind it (one at a time) and, on one
        // connection, every command pipelined behind it. On a read
        // connection of its own, heartbeats and refreshes do not wait.
        let behind: &[Timer] = if self.links.has_read() {
            &[Timer::ClaimSweep]
        } else {
            &[Timer::ClaimSweep, Timer::Heartbeat, Timer::Refresh]
        };
        let next = self
            .timers
            .earliest(behind)
            .into_iter()
            .chain(self.ledger.next_retry())
            .min();
        let block = match next {
            Some(at) => self.cfg.block.min(at.saturating_duration_since(now)),
            None => self.cfg.block,
        };
        let read = (self.new_entries_conn(), Fetch::Read);
        self.reads.read_sent(count);
        self.outbox
            .read(now, read, ReadFrom::New, count, Some(block));
    }

    /// With read-ahead and a read connection, reads of new entries (on the
    /// read connection) and the other fetches (on the control one) go on
    /// side by side: a blocked read never holds back the replay, a retry, a
    /// dead consumer's entries or a sweep. Read entries wait in the
    /// read-ahead for a free slot, and a slot stays free for a control
    /// fetch's entries (see `hand_out_read_ahead`), so the in-flight limit
    /// holds.
    fn reads_side_by_side(&self) -> bool {
        self.cfg.read_ahead.is_some()
            && self.links.has_read()
            && self.cfg.receive_interval.is_none()
    }

    /// [`fetch`](Self::fetch) with reads side by side: at most one control
    /// fetch, and a blocking read of new entries (with one prefetching read
    /// behind it while there is a backlog) as the read-ahead has room.
    fn fetch_side_by_side(&mut self, now: Instant) {
        let control_free = self.outbox.fetches_out_on(Conn::Control) == 0
            && !self.ledger.awaiting_counts()
            && self.slots_in_use() < self.cfg.max_in_flight_batches;
        if control_free {
            if let Some(after) = self.reads.replay_from() {
                let from = ReadFrom::PendingAfter(after);
                let replay = (Conn::Control, Fetch::Replay);
                self.outbox.read(now, replay, from, self.cfg.count, None);
            } else if !self.redeliver(now) {
                if let Some(consumer) = self.heartbeat.next_dead().cloned() {
                    self.outbox.dead_pending(now, consumer, self.cfg.count);
                } else {
                    self.sweep(now);
                }
            }
        }
        // New entries wait for the replay of our own: a replay that found
        // them read ahead would count a delivery the handler never saw.
        if !self.links.read_ready() || self.reads.replay_from().is_some() {
            return;
        }
        let reads_out = self.outbox.fetches_out_on(Conn::Read);
        let block = match reads_out {
            0 => Some(self.cfg.block),
            1 if self.reads.backlog() => None,
            _ => return,
        };
        let Some(count) = self.new_entries_room() else {
            return;
        };
        self.reads.read_sent(count);
        self.outbox
            .read(now, (Conn::Read, Fetch::Read), ReadFrom::New, count, block);
    }

    /// How many new entries the next read may ask for: `count` without
    /// read-ahead; with it, what the budget has room for beside what is
    /// read ahead and asked for already, once that is at least half the
    /// budget (`None`: not yet). Refilling only from half empty keeps reads
    /// large while the handler drains a backlog (refilling the room each
    /// batch frees would send a read per batch); the handler still has the
    /// other half meanwhile.
    fn new_entries_room(&self) -> Option<u64> {
        // In ordered mode new entries come after what the previous holders
        // left pending, and after any retry.
        if self
            .lease
            .as_ref()
            .is_some_and(|l| !l.may_hand_out() || self.ledger.holds_retries())
        {
            return None;
        }
        let Some(budget) = self.cfg.read_ahead else {
            return Some(self.cfg.count);
        };
        let (entries, bytes) = self.ledger.read_ahead_len();
        let budget_entries = budget.entries as u64;
        let room = budget_entries
            .saturating_sub(entries as u64)
            .saturating_sub(self.reads.requested());
        (room > 0 && room >= budget_entries.div_ceil(2) && bytes < budget.bytes).then_some(room)
    }

    /// Where reads of new entries go.
    fn new_entries_conn(&self) -> Conn {
        if self.links.has_read() {
            Conn::Read
        } else {
            Conn::Control
        }
    }

    /// With a backlog (the last read came back full) and a free slot, one
    /// more new-entries read goes out behind the one in flight, so the server
    /// has the next batch ready while this one travels and is parsed. It has
    /// no BLOCK: if the backlog just ran out it returns at once.
    /// Whether a fetch on the control connection is waiting: the replay,
    /// due retries, a dead consumer's entries, the sweep.
    fn control_work_waiting(&self) -> bool {
        self.reads.replay_from().is_some()
            || self.ledger.has_redeliveries()
            || self.heartbeat.any_dead()
            || self.timers.is_due(Timer::ClaimSweep)
            || self.claims.is_active()
    }

    fn prefetch(&mut self, now: Instant, out: usize) {
        let other_work = self.control_work_waiting();
        if out == 1
            && self.outbox.only_new_reads_out()
            && self.reads.backlog()
            && !other_work
            && self.cfg.receive_interval.is_none()
        {
            let room = match self.cfg.read_ahead {
                Some(_) => self.new_entries_room(),
                None => (self.slots_in_use() + out < self.cfg.max_in_flight_batches)
                    .then_some(self.cfg.count),
            };
            let Some(count) = room else {
                return;
            };
            let read = (self.new_entries_conn(), Fetch::Read);
            self.reads.read_sent(count);
            self.outbox.read(now, read, ReadFrom::New, count, None);
        }
    }
}
