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
        // With heartbeats, nothing is read, replayed or claimed before this
        // connection's claim of the name is answered.
        if self.state == State::Running
            && !self.ledger.awaiting_counts()
            && self.heartbeat.holds_name()
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

    /// At most one fetch, the most urgent.
    fn fetch(&mut self, now: Instant) {
        let out = self.outbox.fetches_out();
        if out > 0 {
            return self.prefetch(now, out);
        }
        if self.ledger.batches() >= self.cfg.max_in_flight_batches {
            return;
        }
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
        if self.cfg.receive_interval.is_some() {
            // Polling mode: a read without BLOCK, then a wait if it was empty.
            if !self.timers.is_armed(Timer::Poll) {
                self.timers.set_due(Timer::Poll, false);
                let read = (Conn::Control, Fetch::Read);
                self.outbox
                    .read(now, read, ReadFrom::New, self.cfg.count, None);
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
        self.outbox
            .read(now, read, ReadFrom::New, self.cfg.count, Some(block));
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
    fn prefetch(&mut self, now: Instant, out: usize) {
        let other_work = self.reads.replay_from().is_some()
            || self.ledger.has_redeliveries()
            || self.heartbeat.any_dead()
            || self.timers.is_due(Timer::ClaimSweep)
            || self.claims.is_active();
        if out == 1
            && self.outbox.only_new_reads_out()
            && self.reads.backlog()
            && !other_work
            && self.cfg.receive_interval.is_none()
            && self.ledger.batches() + out < self.cfg.max_in_flight_batches
        {
            let read = (self.new_entries_conn(), Fetch::Read);
            self.outbox
                .read(now, read, ReadFrom::New, self.cfg.count, None);
        }
    }
}
