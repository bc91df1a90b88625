//! Claims: sweeps of entries others left idle (with their cursor), idle
//! refreshes that keep this consumer's held entries from others' claims,
//! the release of hung handlers' entries, and retry claims that bring due
//! retries back.
//!
//! Without heartbeats a sweep is `XAUTOCLAIM`: whatever is idle past the
//! claim min idle is taken. With heartbeats it is liveness-aware, so that
//! group-wide promises (a retry-after, a long handler) do not depend on
//! every consumer sharing one `claim_min_idle`: a page of idle entries with
//! their owners (`XPENDING s g IDLE <min-idle> <cursor> + <count>`), the
//! owners' heartbeat keys (`GET`), then `XCLAIM s g me <min-idle> ids...`
//! of the entries whose owner is dead. The `XCLAIM` checks the min-idle
//! again, so an entry touched since the page (its owner came back, or
//! another consumer took it) is not taken. Entries this consumer holds are
//! never swept by it; entries under its name that it does not hold (a
//! predecessor's, with the replay of its own pending entries off) are
//! nobody's work, and are claimed like a dead owner's. A live owner
//! releases what it will not finish (a hung handler's entries) itself: see
//! [`Consumer::refresh`].

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::ServerErrorKind;
use crate::id::StreamId;
use crate::reply::{self, PendingEntry, ReplyError};
use crate::resp::Frame;

use super::outbox::Fetch;
use super::report::Warning;
use super::timers::Timer;
use super::{Consumer, State};

/// Where the sweep is.
#[derive(Debug, Default)]
pub(super) struct Claims {
    /// Where the next sweep call goes on from: kept between sweeps until
    /// the sweep reaches the end of the pending list (`XAUTOCLAIM` answers
    /// `0-0`; a liveness-aware page comes back short). Each call covers a
    /// bounded part of the list; starting over would starve its tail.
    cursor: StreamId,
    /// A sweep is under way: more calls to make.
    active: bool,
    /// The page of a liveness-aware sweep whose owners are being checked.
    page: Option<Page>,
    /// The page is the sweep's last (the ordered mode catches up when
    /// its claim is answered).
    last_page: bool,
}

/// One page of a liveness-aware sweep: idle entries by owner, while the
/// owners' heartbeat keys are checked.
#[derive(Debug, Default, PartialEq, Eq)]
struct Page {
    /// Owners not checked yet, with their entries.
    unchecked: Vec<(Bytes, Vec<StreamId>)>,
    /// Entries to claim: their owner is dead (or it is this consumer's name
    /// and this consumer does not hold them).
    claimable: Vec<StreamId>,
}

impl Claims {
    /// A new connection: a sweep under way starts again when due.
    pub(super) fn connected(&mut self) {
        self.active = false;
        self.page = None;
        self.last_page = false;
    }

    /// No more sweeps (draining).
    pub(super) fn stop(&mut self) {
        self.active = false;
        self.page = None;
        self.last_page = false;
    }

    pub(super) fn is_active(&self) -> bool {
        self.active
    }

    pub(super) fn start(&mut self) {
        self.active = true;
    }

    /// The page being claimed is the sweep's last.
    pub(super) fn last_page(&mut self) {
        self.last_page = true;
    }

    /// Whether the page just claimed was the sweep's last (once).
    pub(super) fn take_last_page(&mut self) -> bool {
        std::mem::take(&mut self.last_page)
    }

    /// A sweep from the start of the pending list, due now (an ordered
    /// mode's lease taken: what the previous holders left).
    pub(super) fn restart(&mut self) {
        self.cursor = StreamId::ZERO;
        self.page = None;
        self.last_page = false;
        self.active = true;
    }

    pub(super) fn cursor(&self) -> StreamId {
        self.cursor
    }

    /// A sweep call answered with the next cursor; returns whether the
    /// sweep is over (the next one is due after the claim interval).
    pub(super) fn advanced(&mut self, next: StreamId) -> bool {
        self.cursor = next;
        if next.is_zero() {
            self.active = false;
        }
        next.is_zero()
    }

    /// A liveness-aware page came: `rows` (as many as asked for, `count`,
    /// when the pending list goes on). Returns whether the sweep is over,
    /// and the owners whose liveness to check.
    fn paged(
        &mut self,
        rows: Vec<PendingEntry>,
        count: u64,
        me: &Bytes,
        held: &HashSet<StreamId>,
    ) -> (bool, Vec<Bytes>) {
        let full = rows.len() as u64 >= count;
        let next = match rows.last() {
            Some(last) if full => last.id.successor().unwrap_or(StreamId::ZERO),
            _ => StreamId::ZERO,
        };
        let mut page = Page::default();
        for row in rows {
            if held.contains(&row.id) {
                continue;
            }
            if row.consumer == *me {
                page.claimable.push(row.id);
                continue;
            }
            match page.unchecked.iter_mut().find(|(o, _)| *o == row.consumer) {
                Some((_, ids)) => ids.push(row.id),
                None => page.unchecked.push((row.consumer, vec![row.id])),
            }
        }
        let owners = page.unchecked.iter().map(|(o, _)| o.clone()).collect();
        self.page = Some(page);
        (self.advanced(next), owners)
    }

    /// An owner of the page was checked: its entries are claimable if it
    /// is dead.
    fn owner_checked(&mut self, owner: &Bytes, alive: bool) {
        let Some(page) = &mut self.page else {
            return;
        };
        if let Some(at) = page.unchecked.iter().position(|(o, _)| o == owner) {
            let (_, ids) = page.unchecked.swap_remove(at);
            if !alive {
                page.claimable.extend(ids);
            }
        }
    }

    /// Once every owner of the page is checked: the page is done, and
    /// these (sorted) are to claim.
    fn take_claimable(&mut self) -> Option<Vec<StreamId>> {
        if !self.page.as_ref()?.unchecked.is_empty() {
            return None;
        }
        let mut ids = self.page.take()?.claimable;
        ids.sort_unstable();
        Some(ids)
    }
}

impl Consumer {
    /// The min-idle of sweeps: none in ordered mode (the lease holder
    /// takes what the previous holders left, whatever its idle time).
    fn sweep_min_idle(&self) -> Duration {
        match self.lease {
            Some(_) => Duration::ZERO,
            None => self.cfg.claim_min_idle,
        }
    }

    /// In ordered mode: the sweep after the lease was taken is over, so
    /// new entries may follow.
    pub(super) fn sweep_caught_up(&mut self) {
        if let Some(lease) = self.lease.as_mut() {
            lease.caught_up();
        }
    }

    /// The next `XAUTOCLAIM` of the sweep, when one is due or under way.
    /// Returns whether one was sent.
    pub(super) fn sweep(&mut self, now: Instant) -> bool {
        if self.timers.take_due(Timer::ClaimSweep) {
            self.claims.start();
        }
        if !self.claims.is_active() {
            return false;
        }
        let cursor = self.claims.cursor();
        let min_idle = self.sweep_min_idle();
        if self.cfg.heartbeat.is_some() {
            self.outbox
                .sweep_page(now, min_idle, cursor, self.cfg.count);
        } else {
            self.outbox.autoclaim(now, min_idle, cursor, self.cfg.count);
        }
        true
    }

    /// A liveness-aware sweep's page of idle entries: their owners' liveness
    /// is checked next (the cursor moves on now).
    pub(super) fn on_sweep_page(&mut self, now: Instant, frame: Frame) {
        let rows = match reply::xpending_extended(frame) {
            Ok(rows) => rows,
            Err(ReplyError::Server(e)) if e.kind == ServerErrorKind::NoGroup => {
                return self.group_vanished(now, e);
            }
            Err(e) => return self.command_failed(now, e),
        };
        let held = self.ledger.held_ids();
        let (done, owners) = self
            .claims
            .paged(rows, self.cfg.count, &self.cfg.consumer, &held);
        if done {
            let next_sweep = self.cfg.claim_interval.map(|i| now + i);
            self.timers.set_opt(Timer::ClaimSweep, next_sweep);
        }
        // In ordered mode the lease holder takes whatever the others hold:
        // they no longer hold the lease. Caught up once the last page's
        // claim is answered.
        if self.lease.is_some() {
            for owner in owners {
                self.claims.owner_checked(&owner, false);
            }
            if done {
                self.claims.last_page();
            }
            return self.claim_swept(now);
        }
        for owner in owners {
            let key = self.liveness_key(&owner);
            self.outbox.sweep_liveness(now, owner, &key);
        }
        self.claim_swept(now);
    }

    /// The liveness of an owner of swept entries is known.
    pub(super) fn sweep_owner_checked(&mut self, now: Instant, owner: &Bytes, alive: bool) {
        self.claims.owner_checked(owner, alive);
        self.claim_swept(now);
    }

    /// Once a page's owners are all checked: `XCLAIM` of the entries of
    /// dead ones, with the min-idle, so nothing touched since is taken.
    fn claim_swept(&mut self, now: Instant) {
        let Some(ids) = self.claims.take_claimable() else {
            return;
        };
        if !ids.is_empty() && self.state == State::Running {
            let min_idle = self.sweep_min_idle();
            self.outbox.claim(now, Fetch::Sweep, &ids, min_idle);
        } else if self.claims.take_last_page() {
            self.sweep_caught_up();
        }
    }

    /// Claims back due retries that are still ours (one another consumer
    /// claimed since we last touched it has been idle for less than the
    /// min-idle this uses). Returns whether a claim was sent.
    pub(super) fn redeliver(&mut self, now: Instant) -> bool {
        // Not while an idle refresh is out: it touches these entries, and
        // its reply tells when.
        if self.outbox.refresh_out() {
            return false;
        }
        let Some((ids, touched)) = self.ledger.take_redeliveries(self.cfg.count as usize) else {
            return false;
        };
        let min_idle = untouched_for(now, touched);
        self.outbox.claim(now, Fetch::Redeliver, &ids, min_idle);
        true
    }

    /// The idle refresh of held entries, when due: one `XCLAIM ... JUSTID`
    /// per last-touch time, its min-idle the time since, so it refreshes
    /// what is still ours and takes back nothing another consumer claimed
    /// since (see the ledger's `touched`).
    ///
    /// Entries of hung batches are not refreshed. With heartbeats, others'
    /// sweeps skip entries of a live consumer, so they are released too:
    /// handed (`XCLAIM <released name> ... JUSTID`, with the same min-idle
    /// rule) to a name that never beats, which every other consumer takes
    /// for dead (see `released_name`). The handler may still finish: its
    /// acks are sent, its retries are not (the entries are given up).
    pub(super) fn refresh(&mut self, now: Instant) {
        // A replay, claim or retry fetch of ours still out touches held
        // entries at the server; its reply tells when (`retouch`), and the
        // refresh's min-idle must know that first.
        if !self.timers.is_due(Timer::Refresh) || self.outbox.touching_out() {
            return;
        }
        self.timers.set_due(Timer::Refresh, false);
        let interval = self.refresh_interval();
        self.timers.set(Timer::Refresh, now + interval);
        if let Some(limit) = self.cfg.handler_timeout {
            for (batch, after) in self.ledger.mark_hung(now, limit) {
                self.warn(Warning::HandlerHung { batch, after });
            }
        }
        // Those touched less than half a period ago need no refresh yet.
        let held = self.ledger.refresh_candidates(now, interval / 2);
        for group in held.chunk_by(|a, b| a.0 == b.0) {
            let min_idle = untouched_for(now, group[0].0);
            let ids: Vec<StreamId> = group.iter().map(|&(_, id)| id).collect();
            self.outbox.refresh(now, ids, min_idle);
        }
        if self.cfg.heartbeat.is_some() {
            self.release_hung(now);
        }
    }

    /// Hands the entries of hung batches to the released name, until a
    /// release of them is answered (one lost with a connection is sent
    /// again at the next refresh).
    fn release_hung(&mut self, now: Instant) {
        let hung = self.ledger.hung_entries();
        for group in hung.chunk_by(|a, b| a.0 == b.0) {
            let min_idle = untouched_for(now, group[0].0);
            if min_idle.is_zero() {
                // Seen ours this very millisecond: a min-idle of 0 would
                // take it from anyone; next time.
                continue;
            }
            let ids: Vec<StreamId> = group.iter().map(|&(_, id)| id).collect();
            let to = self.heartbeat.released().clone();
            self.outbox.release(now, &to, ids, min_idle);
        }
    }

    /// A release was answered: whatever it sent is no longer ours — handed
    /// over, or (not in the reply) another consumer's or deleted already.
    pub(super) fn released(&mut self, sent: &[StreamId]) {
        let sent: HashSet<StreamId> = sent.iter().copied().collect();
        self.ledger.give_up(&sent);
    }

    /// An idle refresh came back with what is still ours.
    pub(super) fn refreshed(&mut self, now: Instant, sent: &[StreamId], claimed: &[StreamId]) {
        let lost = self.ledger.refreshed(now, sent, claimed);
        self.stats.lost_to_others += lost as u64;
    }

    /// Idle refresh period of held entries: half the shortest min-idle any
    /// claim of them uses — the claim min idle time, and with heartbeats the
    /// heartbeat timeout (failover's) — so no claim ever sees them idle
    /// enough while this consumer is alive.
    pub(super) fn refresh_interval(&self) -> Duration {
        let failover = self.cfg.heartbeat.map(|hb| hb.timeout());
        let shortest = failover.map_or(self.cfg.claim_min_idle, |f| f.min(self.cfg.claim_min_idle));
        (shortest / 2).max(Duration::from_millis(1))
    }
}

/// Min-idle for claiming back an entry last seen ours at `touched` (a reply
/// time, so no earlier than the server's last touch): the time since, less
/// a millisecond for the server's millisecond clock.
pub(super) fn untouched_for(now: Instant, touched: Instant) -> Duration {
    now.saturating_duration_since(touched)
        .saturating_sub(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_is_kept_between_calls_until_the_sweep_ends() {
        let mut claims = Claims::default();
        claims.start();
        assert!(!claims.advanced(StreamId::new(5, 0)));
        assert!(claims.is_active());
        assert_eq!(claims.cursor(), StreamId::new(5, 0));
        // A reconnection pauses the sweep but keeps its place.
        claims.connected();
        assert!(!claims.is_active());
        assert_eq!(claims.cursor(), StreamId::new(5, 0));
        claims.start();
        assert!(claims.advanced(StreamId::ZERO));
        assert!(!claims.is_active());
    }

    fn row(ms: u64, owner: &'static str) -> PendingEntry {
        PendingEntry {
            id: StreamId::new(ms, 0),
            consumer: Bytes::from_static(owner.as_bytes()),
            idle_ms: 1000,
            deliveries: 1,
        }
    }

    fn ids(list: &[u64]) -> Vec<StreamId> {
        list.iter().map(|&ms| StreamId::new(ms, 0)).collect()
    }

    #[test]
    fn a_full_page_moves_the_cursor_past_its_last_row_and_a_short_one_ends_the_sweep() {
        let me = Bytes::from_static(b"me");
        let mut claims = Claims::default();
        claims.start();
        let rows = vec![row(1, "a"), row(2, "b")];
        let (done, _) = claims.paged(rows, 2, &me, &HashSet::new());
        assert!(!done);
        assert!(claims.is_active());
        assert_eq!(claims.cursor(), StreamId::new(2, 1));
        let (done, _) = claims.paged(vec![row(3, "a")], 2, &me, &HashSet::new());
        assert!(done);
        assert!(!claims.is_active());
        assert_eq!(claims.cursor(), StreamId::ZERO);
        let (done, owners) = claims.paged(Vec::new(), 2, &me, &HashSet::new());
        assert!(done && owners.is_empty());
        assert_eq!(claims.take_claimable(), Some(Vec::new()));
    }

    #[test]
    fn only_entries_of_dead_owners_and_our_unheld_ones_are_claimed() {
        let me = Bytes::from_static(b"me");
        let mut claims = Claims::default();
        claims.start();
        let rows = vec![
            row(1, "alive"),
            row(2, "dead"),
            row(3, "me"),
            row(4, "me"),
            row(5, "alive"),
            row(6, "dead"),
            row(7, "dead"),
        ];
        // 4 is ours and held (a retry, a handler's): never swept; 7 we
        // hold though another took it (lost): not swept either.
        let held: HashSet<StreamId> = ids(&[4, 7]).into_iter().collect();
        let (_, owners) = claims.paged(rows, 10, &me, &held);
        assert_eq!(
            owners,
            vec![Bytes::from_static(b"alive"), Bytes::from_static(b"dead")]
        );
        // Not before every owner is checked.
        assert_eq!(claims.take_claimable(), None);
        claims.owner_checked(&Bytes::from_static(b"dead"), false);
        assert_eq!(claims.take_claimable(), None);
        // An answer for an owner not on the page changes nothing.
        claims.owner_checked(&Bytes::from_static(b"stranger"), false);
        claims.owner_checked(&Bytes::from_static(b"alive"), true);
        assert_eq!(claims.take_claimable(), Some(ids(&[2, 3, 6])));
        // The page is done.
        assert_eq!(claims.take_claimable(), None);
    }

    #[test]
    fn a_new_connection_or_a_stop_drops_the_page_being_checked() {
        let me = Bytes::from_static(b"me");
        let mut claims = Claims::default();
        claims.start();
        claims.paged(vec![row(1, "a")], 10, &me, &HashSet::new());
        claims.connected();
        claims.owner_checked(&Bytes::from_static(b"a"), false);
        assert_eq!(claims.take_claimable(), None);
        claims.paged(vec![row(1, "a")], 10, &me, &HashSet::new());
        claims.stop();
        assert_eq!(claims.take_claimable(), None);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test's instant
    fn claims_of_our_own_entries_never_use_more_idle_than_we_saw() {
        let t = Instant::now();
        assert_eq!(
            untouched_for(t + Duration::from_millis(250), t),
            Duration::from_millis(249)
        );
        assert_eq!(untouched_for(t, t + Duration::from_secs(1)), Duration::ZERO);
    }
}
