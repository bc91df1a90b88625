//! Reads: new entries, the replay of this consumer's own pending entries,
//! and what every fetch (read or claim) brings — deleted entries acked,
//! held ones retouched, the rest delivered (after their delivery counts,
//! for replayed and claimed ones).

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use crate::config::{ConsumerConfig, DeadLetter};
use crate::error::ServerErrorKind;
use crate::id::StreamId;
use crate::reply::{self, Entry, ReplyError};

use super::batch::{Batch, BatchId, Message, Source};
use super::ledger::{DeadItem, PendingCounts};
use super::outbox::Fetch;
use super::report::{Event, Warning};
use super::timers::Timer;
use super::{Consumer, State};

/// A claim reply's cursor, nil entries (6.2) and deleted ids (7.0+).
pub(super) type ClaimInfo = (StreamId, usize, usize);

/// What reads remember between replies.
#[derive(Debug, Default)]
pub(super) struct Reads {
    /// The replay of our own pending entries goes on after this id.
    replay_from: Option<StreamId>,
    /// The last new-entries read came back full: a backlog, worth a
    /// prefetching read behind the next one.
    last_read_full: bool,
    next_batch: u64,
    /// How far apart this part's batch ids are: a consumer of several
    /// streams numbers each part's batches `part, part + parts, ...`, so
    /// an id names its part.
    batch_stride: u64,
    /// Group re-creations since the last successful fetch.
    group_recreates: u32,
    /// The `COUNT` of each new-entries read out, oldest first.
    requested: VecDeque<u64>,
}

impl Reads {
    /// Batch ids `first, first + stride, ...`.
    pub(super) fn numbered(first: u64, stride: u64) -> Self {
        Reads {
            next_batch: first,
            batch_stride: stride.max(1),
            ..Reads::default()
        }
    }

    /// A new connection: the replay starts over.
    pub(super) fn connected(&mut self, cfg: &ConsumerConfig) {
        self.replay_from = cfg.replay_pending.then_some(StreamId::ZERO);
        self.last_read_full = false;
        self.requested.clear();
    }

    /// A new-entries read asking for `count` went out.
    pub(super) fn read_sent(&mut self, count: u64) {
        self.requested.push_back(count);
    }

    /// The new-entries read `index` (0: the oldest out) asks for at most
    /// `count` (a combined read asks every stream for the least any asks).
    pub(super) fn asked_at_most(&mut self, index: usize, count: u64) {
        if let Some(asked) = self.requested.get_mut(index) {
            *asked = (*asked).min(count);
        }
    }

    /// The newest `n` new-entries reads were never sent.
    pub(super) fn unsent(&mut self, n: usize) {
        let keep = self.requested.len().saturating_sub(n);
        self.requested.truncate(keep);
    }

    /// The oldest new-entries read out is lost, unanswered.
    pub(super) fn read_lost(&mut self) {
        self.requested.pop_front();
    }

    /// Entries asked for by the new-entries reads out.
    pub(super) fn requested(&self) -> u64 {
        self.requested.iter().sum()
    }

    /// The replay of our own pending entries starts over (an ordered
    /// mode's lease taken), if replays are on.
    pub(super) fn replay_from_start(&mut self, cfg: &ConsumerConfig) {
        if cfg.replay_pending {
            self.replay_from = Some(StreamId::ZERO);
        }
    }

    pub(super) fn stop_replay(&mut self) {
        self.replay_from = None;
    }

    /// Where the replay goes on from, while one is due.
    pub(super) fn replay_from(&self) -> Option<StreamId> {
        self.replay_from
    }

    pub(super) fn backlog(&self) -> bool {
        self.last_read_full
    }

    pub(super) fn next_batch(&mut self) -> BatchId {
        let id = BatchId(self.next_batch);
        self.next_batch += self.batch_stride.max(1);
        id
    }

    /// The group vanished again; returns how often since the last good read.
    pub(super) fn group_recreated(&mut self) -> u32 {
        self.group_recreates += 1;
        self.group_recreates
    }
}

impl Consumer {
    /// What an `XREADGROUP`, `XAUTOCLAIM` or `XCLAIM` brought, with the
    /// claim cursor and counts where there are some.
    pub(super) fn on_fetched(
        &mut self,
        now: Instant,
        kind: Fetch,
        parsed: Result<(Vec<Entry>, Option<ClaimInfo>), ReplyError>,
    ) {
        // A new-entries read is answered, whatever the answer: its entries
        // are no longer asked for.
        let asked = match kind {
            Fetch::Read => self.reads.requested.pop_front(),
            _ => None,
        };
        let (entries, claim) = match parsed {
            Ok(ok) => ok,
            // With sentinels: a read cut because the node stopped being
            // the master.
            Err(ReplyError::Server(e)) if self.discovery.is_some() && e.is_role_change() => {
                return self.command_failed(now, ReplyError::Server(e));
            }
            // The group, or the stream with it (`UNBLOCKED` answers a read
            // blocked on a stream that was deleted), is gone.
            Err(ReplyError::Server(e))
                if matches!(
                    e.kind,
                    ServerErrorKind::NoGroup | ServerErrorKind::Unblocked
                ) =>
            {
                return self.group_vanished(now, e);
            }
            Err(e) => return self.command_failed(now, e),
        };
        self.backoff.reset();
        self.reads.group_recreates = 0;
        let claimed = !matches!(kind, Fetch::Replay | Fetch::Read);
        let swept = kind == Fetch::Sweep;
        let (source, entries) = match kind {
            Fetch::Replay => {
                self.replayed(entries.last().map(|e| e.id));
                (Source::OwnPending, entries)
            }
            Fetch::Claim => {
                if let Some((next, _, _)) = claim {
                    if self.claims.advanced(next) {
                        let next_sweep = self.cfg.claim_interval.map(|i| now + i);
                        self.timers.set_opt(Timer::ClaimSweep, next_sweep);
                    }
                }
                self.stats.claimed += entries.len() as u64;
                (Source::Claimed, entries)
            }
            Fetch::Read => {
                let asked = asked.unwrap_or(self.cfg.count);
                self.reads.last_read_full = entries.len() as u64 >= asked;
                if entries.is_empty() {
                    let poll = self.cfg.receive_interval.map(|i| now + i);
                    self.timers.set_opt(Timer::Poll, poll);
                }
                (Source::New, entries)
            }
            Fetch::Redeliver => {
                self.stats.retried += entries.len() as u64;
                (Source::Retry, entries)
            }
            Fetch::Sweep => {
                self.stats.claimed += entries.len() as u64;
                (Source::Claimed, entries)
            }
            Fetch::Failover(consumer) => {
                if entries.is_empty() {
                    // Not idle enough yet, or taken by another: next beat.
                    self.heartbeat.forget_dead(&consumer);
                }
                self.stats.claimed += entries.len() as u64;
                (Source::Claimed, entries)
            }
        };
        if claimed {
            self.replay_after_nils(claim);
        }
        self.take_entries(now, source, entries);
        if swept && self.claims.take_last_page() {
            self.sweep_caught_up();
        }
        // In ordered mode without the lease, entries a read brought stay
        // pending under this name for the holder to claim.
        if self.lease.as_ref().is_some_and(|l| !l.may_fetch()) {
            self.ledger.drop_read_ahead();
        }
    }

    /// A replay page ended at `last` (or was empty: the replay is done, and
    /// a claim sweep follows).
    fn replayed(&mut self, last: Option<StreamId>) {
        self.reads.replay_from = last;
        if last.is_none() && self.cfg.claim_interval.is_some() && self.state == State::Running {
            self.timers.set_due(Timer::ClaimSweep, true);
        }
    }

    /// 6.2 claims deleted entries as bare nils: the replay of our own pending
    /// list finds their ids to ack.
    fn replay_after_nils(&mut self, claim: Option<ClaimInfo>) {
        if claim.is_some_and(|(_, nils, _)| nils > 0)
            && self.cfg.replay_pending
            && self.state == State::Running
        {
            self.reads.replay_from = Some(StreamId::ZERO);
        }
    }

    /// Sorts fetched entries: held ones retouched, deleted ones acked, new
    /// ones delivered, replayed/claimed ones sent for their delivery counts.
    fn take_entries(&mut self, now: Instant, source: Source, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let held = if source == Source::New {
            HashSet::new()
        } else {
            self.ledger.held_ids()
        };
        let mut live = Vec::with_capacity(entries.len());
        let mut deleted = 0;
        let mut retouched = HashSet::new();
        for entry in entries {
            if held.contains(&entry.id) {
                // Replayed or claimed by us again: the server just touched it.
                retouched.insert(entry.id);
                continue;
            }
            match entry.fields {
                Some(fields) => live.push((entry.id, fields)),
                None => {
                    deleted += 1;
                    self.ledger.ack(entry.id);
                }
            }
        }
        if !retouched.is_empty() {
            self.ledger.retouch(now, &retouched);
            // (A replay or a claim counts a delivery at the server.)
            self.ledger.delivered_again(&retouched);
        }
        if deleted > 0 {
            self.stats.deleted_acked += deleted as u64;
            self.warn(Warning::DeletedEntriesAcked { count: deleted });
        }
        if live.is_empty() {
            return;
        }
        live.sort_unstable_by_key(|(id, _)| *id);
        if source == Source::New {
            let messages = live
                .into_iter()
                .map(|(id, fields)| Message {
                    id,
                    fields,
                    attempt: 1,
                })
                .collect();
            if self.cfg.read_ahead.is_some() {
                self.ledger.read_ahead(now, messages);
                return self.hand_out_read_ahead(now);
            }
            return self.deliver(now, source, messages);
        }
        let first = live[0].0;
        let pending = PendingCounts {
            source,
            counts: vec![None; live.len()],
            entries: live,
            last: first,
        };
        self.query_counts(now, pending, (first, false));
    }

    /// `XPENDING` for the delivery counts of `pending`, from `start`; paged
    /// when our other pending entries fall in the same id range.
    fn query_counts(&mut self, now: Instant, pending: PendingCounts, start: (StreamId, bool)) {
        let pending = self.ledger.await_counts(pending);
        let end = pending.entries.last().map_or(start.0, |(id, _)| *id);
        let page = counts_page(pending);
        self.outbox.pending_counts(now, start, end, page);
    }

    /// The delivery counts came for the oldest entries waiting for them.
    pub(super) fn on_counts(&mut self, now: Instant, rows: Vec<reply::PendingEntry>) {
        let Some(mut pending) = self.ledger.counts_answered() else {
            return;
        };
        let page_full = rows.len() as u64 >= counts_page(&pending);
        let mut last = pending.last;
        for row in rows {
            last = last.max(row.id);
            if row.consumer != self.cfg.consumer {
                continue;
            }
            if let Ok(i) = pending.entries.binary_search_by_key(&row.id, |(id, _)| *id) {
                pending.counts[i] = Some(row.deliveries);
            }
        }
        let end = pending.entries.last().map_or(StreamId::ZERO, |(id, _)| *id);
        let missing = pending.counts.iter().any(Option::is_none);
        if missing && page_full && last < end {
            pending.last = last;
            return self.query_counts(now, pending, (last, true));
        }
        // Entries no longer pending for us (acked or claimed by another
        // consumer meanwhile) are not ours to deliver.
        let source = pending.source;
        let messages: Vec<Message> = pending
            .entries
            .into_iter()
            .zip(pending.counts)
            .filter_map(|((id, fields), count)| {
                count.map(|attempt| Message {
                    id,
                    fields,
                    attempt,
                })
            })
            .collect();
        if !messages.is_empty() {
            self.deliver(now, source, messages);
        }
    }

    /// Entries read ahead go to the handler, in batches of at most `count`,
    /// while it has a free slot (not while stopping). A slot stays free for
    /// the entries a control fetch out (a replay, retry or claim) brings.
    pub(super) fn hand_out_read_ahead(&mut self, now: Instant) {
        let keep_fields = matches!(self.cfg.dead_letter, Some(DeadLetter::Stream(_)));
        let reserved =
            usize::from(!self.outbox.only_new_reads_out() || self.ledger.awaiting_counts());
        while self.state == State::Running
            && self.slots_in_use() + reserved < self.cfg.max_in_flight_batches
            && self.ledger.read_ahead_len().0 > 0
            && self.lease_allows_hand_out()
        {
            let id = self.reads.next_batch();
            let count = usize::try_from(self.cfg.count).unwrap_or(usize::MAX);
            let Some(messages) = self.ledger.hold_read_ahead(id, now, count, keep_fields) else {
                return;
            };
            self.stats.delivered += messages.len() as u64;
            self.events.push_back(Event::Deliver(Batch {
                id,
                stream: self.cfg.stream.clone(),
                source: Source::New,
                messages,
                lease: self.lease.as_ref().and_then(super::lease::Lease::fence),
            }));
        }
    }

    /// Hands a batch to the handler (entries delivered too often go to the
    /// dead letters instead).
    fn deliver(&mut self, now: Instant, source: Source, mut messages: Vec<Message>) {
        if let Some(max) = self.cfg.max_deliveries {
            messages.retain(|m| {
                if m.attempt <= max {
                    return true;
                }
                self.ledger.dead_letter(DeadItem {
                    id: m.id,
                    attempt: m.attempt,
                    fields: Some(m.fields.clone()),
                    reason: format!("delivered {} times, max_deliveries is {max}", m.attempt),
                    touched: now,
                });
                false
            });
            if messages.is_empty() {
                return;
            }
        }
        let id = self.reads.next_batch();
        self.stats.delivered += messages.len() as u64;
        self.stats.redelivered += messages.iter().filter(|m| m.attempt > 1).count() as u64;
        let keep_fields = matches!(self.cfg.dead_letter, Some(DeadLetter::Stream(_)));
        self.ledger.hold(id, now, &messages, keep_fields);
        self.events.push_back(Event::Deliver(Batch {
            id,
            stream: self.cfg.stream.clone(),
            source,
            messages,
            lease: self.lease.as_ref().and_then(super::lease::Lease::fence),
        }));
    }
}

/// How many rows one count query asks for: the batch and some room for our
/// other pending entries in its id range.
fn counts_page(pending: &PendingCounts) -> u64 {
    pending.entries.len() as u64 + 16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Fields;

    #[test]
    fn a_new_connection_restarts_the_replay_and_forgets_the_backlog() {
        let cfg = ConsumerConfig::builder("s", "g", "c")
            .build()
            .expect("valid config");
        let mut reads = Reads {
            replay_from: Some(StreamId::new(9, 0)),
            last_read_full: true,
            ..Reads::default()
        };
        reads.connected(&cfg);
        assert_eq!(reads.replay_from(), Some(StreamId::ZERO));
        assert!(!reads.backlog());
        reads.stop_replay();
        assert_eq!(reads.replay_from(), None);
        let off = ConsumerConfig::builder("s", "g", "c")
            .replay_pending(false)
            .build()
            .expect("valid config");
        reads.connected(&off);
        assert_eq!(reads.replay_from(), None);
    }

    #[test]
    fn reads_of_new_entries_are_counted_as_asked_sent_and_answered() {
        let mut reads = Reads::default();
        for count in [10, 20, 30] {
            reads.read_sent(count);
        }
        reads.asked_at_most(1, 5);
        reads.asked_at_most(0, 50);
        reads.asked_at_most(9, 1);
        assert_eq!(reads.requested(), 45);
        reads.unsent(1);
        assert_eq!(reads.requested(), 15);
        reads.read_lost();
        assert_eq!(reads.requested(), 5);
        reads.unsent(4);
        assert_eq!(reads.requested(), 0);
    }

    #[test]
    fn batches_are_numbered_in_order_and_recreations_counted() {
        let mut reads = Reads::default();
        assert_eq!(reads.next_batch(), BatchId(0));
        assert_eq!(reads.next_batch(), BatchId(1));
        assert_eq!(reads.group_recreated(), 1);
        assert_eq!(reads.group_recreated(), 2);
    }

    #[test]
    fn a_count_query_leaves_room_for_our_other_pending_entries() {
        let pending = PendingCounts {
            source: Source::Claimed,
            entries: vec![(StreamId::new(1, 0), Fields::new()); 4],
            counts: vec![None; 4],
            last: StreamId::new(1, 0),
        };
        assert_eq!(counts_page(&pending), 20);
    }
}
