//! The ledger: every entry this consumer holds, wherever it is — with the
//! handler, waiting for a retry, due for redelivery, being acknowledged,
//! being dead-lettered, or fetched and waiting for its delivery count.
//!
//! Commands that carry held ids (acks, dead-letter moves, count queries)
//! take them from here and leave them here until their reply: the ledger
//! keeps one FIFO per kind, matched to replies in order (RESP replies come
//! in the order commands were sent).

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::config::ConsumerConfig;
use crate::id::StreamId;
use crate::reply::Fields;

use super::batch::{BatchId, Disposition, Message, Outcome, Source};

use read_ahead::ReadAhead;
use slots::HeldSlots;

/// Entries held by the ledger, by where they are.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    in_flight: Vec<InFlight>,
    /// Acknowledgements to send.
    acks: Vec<StreamId>,
    /// Acknowledgements sent, one group per command, oldest first.
    acking: VecDeque<Vec<StreamId>>,
    /// Entries waiting for a retry, earliest due first.
    retrying: VecDeque<Retrying>,
    /// Due retries to claim back, with when they were last seen ours.
    redeliver: Vec<(StreamId, Instant)>,
    /// Entries to dead-letter.
    dead: Vec<DeadItem>,
    /// Dead-letter moves sent, one group per script call, oldest first.
    dead_out: VecDeque<Vec<DeadItem>>,
    /// Failed dead-letter moves in a row (for their backoff).
    dead_failures: u32,
    /// Replayed or claimed entries waiting for their delivery counts, one
    /// group per `XPENDING`, oldest first.
    counting: VecDeque<PendingCounts>,
    /// New entries read ahead, not yet with the handler.
    read_ahead: ReadAhead,
}

/// A batch with the handler.
#[derive(Debug)]
struct InFlight {
    id: BatchId,
    msgs: Vec<HeldMessage>,
    delivered_at: Instant,
    /// Past the handler timeout: its entries are no longer kept fresh.
    hung: bool,
}

#[derive(Debug)]
pub(super) struct HeldMessage {
    pub(super) id: StreamId,
    attempt: u64,
    /// Kept only when dead letters go to a stream (they need the fields).
    fields: Option<Fields>,
    /// When a reply last showed this consumer owning the entry (its
    /// delivery, or an idle refresh that claimed it): no earlier than the
    /// server's last touch, so while nobody else takes it its idle time is
    /// at least `now - touched`. Claims of our own entries use that as
    /// min-idle, so they never take back an entry another consumer has
    /// claimed since.
    touched: Instant,
    /// An idle refresh found another consumer owning it: no longer kept
    /// fresh, and not retried by this consumer.
    lost: bool,
}

#[derive(Debug)]
struct Retrying {
    id: StreamId,
    due: Instant,
    /// When a reply last showed this consumer owning it (see [`HeldMessage::touched`]).
    touched: Instant,
}

/// An entry on its way to the dead letters.
#[derive(Debug, Clone)]
pub(super) struct DeadItem {
    pub(super) id: StreamId,
    pub(super) attempt: u64,
    pub(super) fields: Option<Fields>,
    pub(super) reason: String,
    pub(super) touched: Instant,
}

/// Replayed or claimed entries waiting for their delivery counts.
#[derive(Debug)]
pub(super) struct PendingCounts {
    pub(super) source: Source,
    /// Sorted by id.
    pub(super) entries: Vec<(StreamId, Fields)>,
    pub(super) counts: Vec<Option<u64>>,
    /// Last id covered by the `XPENDING` page asked for.
    pub(super) last: StreamId,
}

/// What came of completing a batch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Completed {
    /// No such batch in flight.
    UnknownBatch,
    /// Done; these ids were not in the batch (ignored).
    Done { strangers: Vec<StreamId> },
}

impl Ledger {
    // ----- with the handler -----

    /// A batch goes to the handler.
    pub(super) fn hold(
        &mut self,
        id: BatchId,
        now: Instant,
        messages: &[Message],
        keep_fields: bool,
    ) {
        self.in_flight.push(InFlight {
            id,
            delivered_at: now,
            hung: false,
            msgs: messages
                .iter()
                .map(|m| HeldMessage {
                    id: m.id,
                    attempt: m.attempt,
                    fields: keep_fields.then(|| m.fields.clone()),
                    touched: now,
                    lost: false,
                })
                .collect(),
        });
    }

    /// New entries read ahead of the handler, at `now`.
    pub(super) fn read_ahead(&mut self, now: Instant, messages: Vec<Message>) {
        self.read_ahead.push(now, messages);
    }

    /// Entries and bytes read ahead and not yet with the handler.
    pub(super) fn read_ahead_len(&self) -> (usize, usize) {
        self.read_ahead.len()
    }

    /// Up to `max` entries read ahead go to the handler as batch `id`; each
    /// keeps the time it was last seen ours. `None` when none is waiting.
    pub(super) fn hold_read_ahead(
        &mut self,
        id: BatchId,
        now: Instant,
        max: usize,
        keep_fields: bool,
    ) -> Option<Vec<Message>> {
        let taken = self.read_ahead.take(max);
        if taken.is_empty() {
            return None;
        }
        let msgs = taken
            .iter()
            .map(|(m, touched)| HeldMessage {
                id: m.id,
                attempt: m.attempt,
                fields: keep_fields.then(|| m.fields.clone()),
                touched: *touched,
                lost: false,
            })
            .collect();
        self.in_flight.push(InFlight {
            id,
            delivered_at: now,
            hung: false,
            msgs,
        });
        Some(taken.into_iter().map(|(m, _)| m).collect())
    }

    /// A replay or claim of ours returned these held entries again: those
    /// read ahead carry the delivery the server counted.
    pub(super) fn delivered_again(&mut self, ids: &HashSet<StreamId>) {
        self.read_ahead.delivered_again(ids);
    }

    /// Forgets the entries read ahead (a graceful stop: they stay pending
    /// for this consumer's next start or another's claim).
    pub(super) fn drop_read_ahead(&mut self) {
        self.read_ahead.clear();
    }

    /// Batches with the handler.
    pub(super) fn batches(&self) -> usize {
        self.in_flight.len()
    }

    pub(super) fn has_batch(&self, batch: BatchId) -> bool {
        self.in_flight.iter().any(|b| b.id == batch)
    }

    /// The handler finished `batch` after the consumer stopped: its slot
    /// is free, its entries stay pending (for a replay or another's claim);
    /// returns whether it was held.
    pub(super) fn forget(&mut self, batch: BatchId) -> bool {
        let held = self.has_batch(batch);
        self.in_flight.retain(|b| b.id != batch);
        held
    }

    /// The handler finished `batch` with `outcome`.
    pub(super) fn complete(
        &mut self,
        now: Instant,
        batch: BatchId,
        outcome: Outcome,
        cfg: &ConsumerConfig,
    ) -> Completed {
        let Some(pos) = self.in_flight.iter().position(|b| b.id == batch) else {
            return Completed::UnknownBatch;
        };
        let done = self.in_flight.swap_remove(pos);
        let decisions: Vec<(StreamId, Disposition)> = match outcome {
            Outcome::AckAll => {
                // The common case: no matching needed.
                self.acks.extend(done.msgs.iter().map(|m| m.id));
                Vec::new()
            }
            Outcome::AckOnly(ids) => ids.into_iter().map(|id| (id, Disposition::Ack)).collect(),
            Outcome::AckNone => Vec::new(),
            Outcome::Each(decisions) => decisions,
        };
        let mut msgs = HeldSlots::new(done.msgs);
        let mut strangers = Vec::new();
        for (id, disposition) in decisions {
            // Each message is decided once; repeats and strangers are ignored.
            match msgs.take(id) {
                Some(msg) => self.dispose(now, msg, disposition, cfg),
                None => strangers.push(id),
            }
        }
        Completed::Done { strangers }
    }

    fn dispose(
        &mut self,
        now: Instant,
        msg: HeldMessage,
        disposition: Disposition,
        cfg: &ConsumerConfig,
    ) {
        let retry_at = match disposition {
            Disposition::Ack => return self.acks.push(msg.id),
            Disposition::Keep => return,
            Disposition::DeadLetter(reason) => return self.dead.push(msg.into_dead(reason)),
            Disposition::Retry => {
                let (initial, max) = cfg.retry_backoff;
                let exp = msg.attempt.saturating_sub(1).min(30) as u32;
                now + initial.saturating_mul(1 << exp).min(max)
            }
            Disposition::RetryAt(at) => at.max(now),
        };
        if cfg.max_deliveries.is_some_and(|max| msg.attempt >= max) {
            let reason = format!("failed {} times, max_deliveries reached", msg.attempt);
            self.dead.push(msg.into_dead(reason));
        } else if !msg.lost {
            // A lost entry is another consumer's to retry now.
            let at = self.retrying.partition_point(|r| r.due <= retry_at);
            let retry = Retrying {
                id: msg.id,
                due: retry_at,
                touched: msg.touched,
            };
            self.retrying.insert(at, retry);
        }
    }

    /// The handler is still working on `batch`: its handler timeout counts
    /// from `now` (unless it is hung already).
    pub(super) fn progress(&mut self, now: Instant, batch: BatchId) {
        if let Some(b) = self.in_flight.iter_mut().find(|b| b.id == batch && !b.hung) {
            b.delivered_at = b.delivered_at.max(now);
        }
    }

    /// Batches with the handler past `limit` that were not yet, with how
    /// long each has been working; from now on their entries are not kept
    /// fresh.
    pub(super) fn mark_hung(&mut self, now: Instant, limit: Duration) -> Vec<(BatchId, Duration)> {
        let mut hung = Vec::new();
        for batch in &mut self.in_flight {
            let after = now.saturating_duration_since(batch.delivered_at);
            if !batch.hung && after > limit {
                batch.hung = true;
                hung.push((batch.id, after));
            }
        }
        hung
    }

    /// Entries of hung batches still ours (not given up), with when each
    /// was last seen ours, sorted: to be released for others to take.
    pub(super) fn hung_entries(&self) -> Vec<(Instant, StreamId)> {
        let mut hung: Vec<(Instant, StreamId)> = self
            .in_flight
            .iter()
            .filter(|b| b.hung)
            .flat_map(|b| b.msgs.iter().filter(|m| !m.lost).map(|m| (m.touched, m.id)))
            .collect();
        hung.sort_unstable();
        hung
    }

    // ----- ownership at the server -----

    /// How many entries are held, wherever they are (without building the
    /// set of their ids: cheap enough to report after every input).
    pub(super) fn held(&self) -> usize {
        self.acks.len()
            + self.acking.iter().map(Vec::len).sum::<usize>()
            + self.in_flight.iter().map(|b| b.msgs.len()).sum::<usize>()
            + self.retrying.len()
            + self.redeliver.len()
            + self.dead.len()
            + self.dead_out.iter().map(Vec::len).sum::<usize>()
            + self.counting.iter().map(|p| p.entries.len()).sum::<usize>()
            + self.read_ahead.len().0
    }

    /// Every id held, wherever it is.
    pub(super) fn held_ids(&self) -> HashSet<StreamId> {
        let mut held: HashSet<StreamId> = self.acks.iter().copied().collect();
        held.extend(self.acking.iter().flatten());
        for batch in &self.in_flight {
            held.extend(batch.msgs.iter().map(|m| m.id));
        }
        held.extend(self.retrying.iter().map(|r| r.id));
        held.extend(self.redeliver.iter().map(|&(id, _)| id));
        held.extend(
            self.dead
                .iter()
                .chain(self.dead_out.iter().flatten())
                .map(|d| d.id),
        );
        held.extend(
            self.counting
                .iter()
                .flat_map(|p| p.entries.iter().map(|(id, _)| *id)),
        );
        held.extend(self.read_ahead.ids());
        held
    }

    /// A reply at `now` showed these held entries in our pending list (and
    /// the server touched them).
    pub(super) fn retouch(&mut self, now: Instant, ids: &HashSet<StreamId>) {
        for m in self.messages_mut().filter(|m| ids.contains(&m.id)) {
            m.touched = now;
            m.lost = false;
        }
        for r in self.retrying.iter_mut().filter(|r| ids.contains(&r.id)) {
            r.touched = now;
        }
        for (_, t) in self.redeliver.iter_mut().filter(|(id, _)| ids.contains(id)) {
            *t = now;
        }
        for d in self.dead.iter_mut().filter(|d| ids.contains(&d.id)) {
            d.touched = now;
        }
        self.read_ahead.retouch(now, ids);
    }

    /// These held entries are another consumer's now: not refreshed or
    /// retried here any more (an ack from the handler is still sent).
    /// Returns how many were given up.
    pub(super) fn give_up(&mut self, ids: &HashSet<StreamId>) -> usize {
        let mut lost = 0;
        for m in self
            .messages_mut()
            .filter(|m| !m.lost && ids.contains(&m.id))
        {
            m.lost = true;
            lost += 1;
        }
        let waiting = self.retrying.len() + self.redeliver.len();
        self.retrying.retain(|r| !ids.contains(&r.id));
        self.redeliver.retain(|(id, _)| !ids.contains(id));
        let read_ahead = self.read_ahead.give_up(ids);
        lost + waiting - self.retrying.len() - self.redeliver.len() + read_ahead
    }

    /// An idle refresh of `sent` came back with `claimed`: those are still
    /// ours as of `now`; the others were taken by another consumer (or
    /// deleted), so they are given up. Returns how many.
    pub(super) fn refreshed(
        &mut self,
        now: Instant,
        sent: &[StreamId],
        claimed: &[StreamId],
    ) -> usize {
        let claimed: HashSet<StreamId> = claimed.iter().copied().collect();
        let gone: HashSet<StreamId> = sent
            .iter()
            .filter(|id| !claimed.contains(id))
            .copied()
            .collect();
        self.retouch(now, &claimed);
        if gone.is_empty() {
            0
        } else {
            self.give_up(&gone)
        }
    }

    /// Held entries to refresh, with when each was last seen ours, sorted:
    /// those seen less than `fresh_for` ago, lost ones and those of hung
    /// batches are left out.
    pub(super) fn refresh_candidates(
        &self,
        now: Instant,
        fresh_for: Duration,
    ) -> Vec<(Instant, StreamId)> {
        let Some(fresh_after) = now.checked_sub(fresh_for) else {
            return Vec::new();
        };
        let mut held: Vec<(Instant, StreamId)> = self
            .in_flight
            .iter()
            .filter(|b| !b.hung)
            .flat_map(|b| b.msgs.iter().filter(|m| !m.lost).map(|m| (m.touched, m.id)))
            .chain(self.retrying.iter().map(|r| (r.touched, r.id)))
            .chain(self.redeliver.iter().map(|&(id, t)| (t, id)))
            .chain(self.dead.iter().map(|d| (d.touched, d.id)))
            .chain(self.read_ahead.touched())
            .filter(|&(t, _)| t <= fresh_after)
            .collect();
        held.sort_unstable();
        held
    }

    fn messages_mut(&mut self) -> impl Iterator<Item = &mut HeldMessage> {
        self.in_flight.iter_mut().flat_map(|b| b.msgs.iter_mut())
    }

    // ----- retries -----

    /// When the earliest retry is due.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.retrying.front().map(|r| r.due)
    }

    /// Retries due by `at` move on to redelivery.
    pub(super) fn fire_retries(&mut self, at: Instant) {
        while self.retrying.front().is_some_and(|r| r.due <= at) {
            if let Some(r) = self.retrying.pop_front() {
                self.redeliver.push((r.id, r.touched));
            }
        }
    }

    pub(super) fn has_redeliveries(&self) -> bool {
        !self.redeliver.is_empty()
    }

    /// Whether any entry waits for a retry (due or not).
    pub(super) fn holds_retries(&self) -> bool {
        !self.retrying.is_empty() || !self.redeliver.is_empty()
    }

    /// Up to `count` due retries to claim back, sorted, with the latest time
    /// any of them was seen ours.
    pub(super) fn take_redeliveries(&mut self, count: usize) -> Option<(Vec<StreamId>, Instant)> {
        if self.redeliver.is_empty() {
            return None;
        }
        let take = self.redeliver.len().min(count);
        let due: Vec<(StreamId, Instant)> = self.redeliver.drain(..take).collect();
        let touched = due.iter().map(|&(_, t)| t).max()?;
        let mut ids: Vec<StreamId> = due.into_iter().map(|(id, _)| id).collect();
        ids.sort_unstable();
        Some((ids, touched))
    }

    // ----- acknowledgements -----

    pub(super) fn ack(&mut self, id: StreamId) {
        self.acks.push(id);
    }

    /// The next acks to send, at most `max`; they stay held until
    /// [`acks_answered`](Self::acks_answered).
    pub(super) fn send_acks(&mut self, max: usize) -> Option<&[StreamId]> {
        if self.acks.is_empty() {
            return None;
        }
        let take = self.acks.len().min(max);
        self.acking.push_back(self.acks.drain(..take).collect());
        self.acking.back().map(Vec::as_slice)
    }

    /// The oldest ack command was answered; when it failed its ids are sent
    /// again later.
    pub(super) fn acks_answered(&mut self, ok: bool) {
        if let Some(ids) = self.acking.pop_front() {
            if !ok {
                self.acks.extend(ids);
            }
        }
    }

    // ----- dead letters -----

    pub(super) fn dead_letter(&mut self, item: DeadItem) {
        self.dead.push(item);
    }

    /// Every entry waiting to be dead-lettered, taken out (dropped or kept
    /// pending, nothing to wait for).
    pub(super) fn take_dead(&mut self) -> Vec<DeadItem> {
        std::mem::take(&mut self.dead)
    }

    /// These entries go to the dead-letter stream in one transaction; they
    /// stay held until [`dead_answered`](Self::dead_answered).
    pub(super) fn sending_dead(&mut self, items: Vec<DeadItem>) -> &[DeadItem] {
        self.dead_out.push_back(items);
        self.dead_out.back().map_or(&[], Vec::as_slice)
    }

    /// The entries of the oldest dead-letter move, whose reply came.
    pub(super) fn dead_answered(&mut self) -> Vec<DeadItem> {
        self.dead_out.pop_front().unwrap_or_default()
    }

    /// A dead-letter move worked for every entry: the backoff starts over.
    pub(super) fn dead_moved(&mut self) {
        self.dead_failures = 0;
    }

    /// These dead letters could not be moved: they wait for another try.
    /// Returns how many moves in a row failed (none did once one works).
    pub(super) fn dead_again(&mut self, items: Vec<DeadItem>) -> u32 {
        self.dead.extend(items);
        self.dead_failures += 1;
        self.dead_failures
    }

    // ----- delivery counts -----

    pub(super) fn await_counts(&mut self, pending: PendingCounts) -> &PendingCounts {
        self.counting.push_back(pending);
        let last = self.counting.len() - 1;
        &self.counting[last]
    }

    /// The entries the oldest count query was for.
    pub(super) fn counts_answered(&mut self) -> Option<PendingCounts> {
        self.counting.pop_front()
    }

    pub(super) fn awaiting_counts(&self) -> bool {
        !self.counting.is_empty()
    }

    // ----- the connection -----

    /// The connection went down with commands unanswered: their acks and
    /// dead letters are sent again on the next one; entries waiting for
    /// counts are dropped (they stay pending and are replayed).
    pub(super) fn connection_lost(&mut self) {
        self.acks.extend(self.acking.drain(..).flatten());
        self.dead.extend(self.dead_out.drain(..).flatten());
        self.counting.clear();
        // The next connection's replay brings them back, with the delivery
        // counts it gave them (handing them out from here would show 1).
        self.read_ahead.clear();
    }

    /// Acknowledgements not confirmed by the server: to send, sent, or part
    /// of a dead-letter move.
    pub(super) fn unacked(&self) -> usize {
        self.acks.len()
            + self.acking.iter().map(Vec::len).sum::<usize>()
            + self.dead.len()
            + self.dead_out.iter().map(Vec::len).sum::<usize>()
    }

    /// No handler at work and nothing left to acknowledge or dead-letter.
    pub(super) fn is_settled(&self) -> bool {
        self.in_flight.is_empty() && self.unacked() == 0
    }
}

impl HeldMessage {
    fn into_dead(self, reason: String) -> DeadItem {
        DeadItem {
            id: self.id,
            attempt: self.attempt,
            fields: self.fields,
            reason,
            touched: self.touched,
        }
    }
}

mod read_ahead;
mod slots;

#[cfg(test)]
mod tests;
