//! Claims: `XAUTOCLAIM` sweeps of entries others left idle (with their
//! cursor), idle refreshes that keep this consumer's held entries from
//! others' claims, and retry claims that bring due retries back.

use std::time::{Duration, Instant};

use crate::id::StreamId;

use super::report::Warning;
use super::timers::Timer;
use super::Consumer;

/// Where the sweep is.
#[derive(Debug, Default)]
pub(super) struct Claims {
    /// Where the next `XAUTOCLAIM` goes on from: kept between sweeps until
    /// the server says `0-0` (each call scans a bounded part of the pending
    /// list; starting over would starve its tail).
    cursor: StreamId,
    /// A sweep is under way: more `XAUTOCLAIM` calls to make.
    active: bool,
}

impl Claims {
    /// A new connection: a sweep under way starts again when due.
    pub(super) fn connected(&mut self) {
        self.active = false;
    }

    /// No more sweeps (draining).
    pub(super) fn stop(&mut self) {
        self.active = false;
    }

    pub(super) fn is_active(&self) -> bool {
        self.active
    }

    pub(super) fn start(&mut self) {
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
}

impl Consumer {
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
        self.outbox
            .autoclaim(now, self.cfg.claim_min_idle, cursor, self.cfg.count);
        true
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
        self.outbox
            .claim(now, super::outbox::Fetch::Redeliver, &ids, min_idle);
        true
    }

    /// The idle refresh of held entries, when due: one `XCLAIM ... JUSTID`
    /// per last-touch time, its min-idle the time since, so it refreshes
    /// what is still ours and takes back nothing another consumer claimed
    /// since (see the ledger's `touched`).
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
