//! The ordered mode's shard lease: each stream read by at most one live
//! consumer of the group at a time.
//!
//! Beside the stream (in its hash slot) live three keys: the members (a
//! sorted set of the consumers reading the stream in ordered mode, each
//! with the time its membership lapses), the lease (`<token>:<fence>`,
//! with the heartbeat's expiry) and the fencing counter. Every heartbeat
//! also runs [`LEASE_SCRIPT`]: it renews this consumer's membership,
//! drops lapsed ones, and names the stream's rightful holder, the member
//! at the stream's index among the members sorted by name (so with the
//! same list of streams everywhere, as `builder_sharded` gives, the
//! streams spread evenly). The lease is renewed while it holds this
//! consumer's token, and taken when it is free and this consumer is the
//! rightful holder, or when it was already free at the last beat (a
//! rightful holder that never comes must not leave the stream unread);
//! taking it bumps the fencing counter.
//!
//! While it holds the lease a consumer reads the stream one batch at a
//! time: first its own pending entries, then every entry the previous
//! holders left pending (claimed at once, whatever their idle time: the
//! lease says they no longer work on them), then new entries. A retry
//! holds back the entries after it. A holder that is no longer the
//! rightful one (a consumer joined) finishes its batch, lets its read-ahead
//! go, and releases the lease; one that finds the lease gone (it stalled
//! past the heartbeat timeout) stops at once ([`Warning::LeaseLost`]). A
//! graceful stop releases the lease and the membership, so the others
//! take over at the next beat.

use std::time::Instant;

use bytes::Bytes;

use crate::config::ConsumerConfig;
use crate::error::{ProtocolError, ServerErrorKind};
use crate::reply::{ReplyError, Value};
use crate::resp::Frame;

use super::report::Warning;
use super::{Consumer, State as ConsumerState};

/// Renews this consumer's membership and its lease, or takes a free one.
/// KEYS: members, lease, fencing counter. ARGV: consumer, token, ttl ms,
/// the stream's index, whether to take a free lease though another is its
/// rightful holder (`1`). Answers `{held, fence, rightful, free}`: whether
/// this token holds the lease now (1/0), its fencing token (or empty),
/// whether this consumer is the rightful holder (1/0), and whether the
/// lease was free and left so (1/0).
pub const LEASE_SCRIPT: &str = "\
-- xgroup shard lease. KEYS: members, lease, fence counter. ARGV: consumer,
-- token, ttl ms, stream index, take a free lease anyway (1).
local ttl = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], 2 * ttl)
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(members)
local rightful = 0
if members[(tonumber(ARGV[4]) % #members) + 1] == ARGV[1] then rightful = 1 end
local prefix = ARGV[2] .. ':'
local cur = redis.call('GET', KEYS[2])
if cur and string.sub(cur, 1, #prefix) == prefix then
  redis.call('PEXPIRE', KEYS[2], ttl)
  return {1, string.sub(cur, #prefix + 1), rightful, 0}
end
if not cur and (rightful == 1 or ARGV[5] == '1') then
  local fence = redis.call('INCR', KEYS[3])
  redis.call('SET', KEYS[2], prefix .. fence, 'PX', ttl)
  return {1, tostring(fence), rightful, 0}
end
local free = 0
if not cur then free = 1 end
return {0, '', rightful, free}
";

/// Releases the lease while it holds this token, and with `1` the
/// membership too (a graceful stop). KEYS: members, lease. ARGV: consumer,
/// token, leaving (1/0). Answers how many leases it deleted.
pub const LEASE_RELEASE_SCRIPT: &str = "\
-- xgroup shard lease release. KEYS: members, lease. ARGV: consumer, token,
-- leaving (1).
local prefix = ARGV[2] .. ':'
local cur = redis.call('GET', KEYS[2])
local released = 0
if cur and string.sub(cur, 1, #prefix) == prefix then
  released = redis.call('DEL', KEYS[2])
end
if ARGV[3] == '1' then redis.call('ZREM', KEYS[1], ARGV[1]) end
return released
";

/// One stream's lease, as far as this consumer knows.
#[derive(Debug)]
pub(super) struct Lease {
    /// The members, the lease and the fencing counter.
    keys: [Bytes; 3],
    /// The stream's index in the consumer's list of streams.
    index: usize,
    state: State,
    /// The lease was free at the last answer, with another its rightful
    /// holder: the next beat takes it if it is still free.
    free_seen: bool,
    /// A beat is out.
    answer_due: bool,
    /// A beat was answered since the connection opened.
    confirmed: bool,
    /// Since the lease was taken, the entries previous holders left
    /// pending have been claimed.
    caught_up: bool,
    /// A release is out.
    releasing: bool,
    /// The graceful stop's release went out.
    left: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    Held {
        fence: u64,
    },
    /// Held, with another the rightful holder: released once this
    /// stream's work is settled.
    HandingOver {
        fence: u64,
    },
}

/// What a beat's answer changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// Nothing to do.
    Same,
    /// Taken (or held under a new fencing token): catch up first.
    Taken,
    /// Another is the rightful holder now: finish, then release.
    HandOver,
    /// Held, and found gone (taken over while this consumer stalled).
    Lost,
}

/// A beat's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Answer {
    pub(super) fence: Option<u64>,
    pub(super) rightful: bool,
    pub(super) free: bool,
}

impl Answer {
    /// Reads [`LEASE_SCRIPT`]'s answer; `None` if it is not one.
    pub(super) fn parse(value: Value) -> Option<Answer> {
        let Value::Array(items) = value else {
            return None;
        };
        let [held, fence, rightful, free] = <[Value; 4]>::try_from(items).ok()?;
        let flag = |v: &Value| match v {
            Value::Int(0) => Some(false),
            Value::Int(1) => Some(true),
            _ => None,
        };
        let fence = match (flag(&held)?, fence) {
            (true, Value::Bulk(f) | Value::Simple(f)) => {
                Some(std::str::from_utf8(&f).ok()?.parse().ok()?)
            }
            (true, _) => return None,
            (false, _) => None,
        };
        Some(Answer {
            fence,
            rightful: flag(&rightful)?,
            free: flag(&free)?,
        })
    }
}

impl Lease {
    /// The lease of `cfg`'s stream, the `index`th of the consumer's.
    pub(super) fn new(cfg: &ConsumerConfig, index: usize) -> Self {
        let key = |what: &str| {
            super::heartbeat::slot_key(&cfg.stream, &[what.as_bytes(), b":", &cfg.group])
        };
        Lease {
            keys: [key("members"), key("lease"), key("fence")],
            index,
            state: State::Free,
            free_seen: false,
            answer_due: false,
            confirmed: false,
            caught_up: false,
            releasing: false,
            left: false,
        }
    }

    /// The members, lease and fencing counter keys.
    pub(super) fn keys(&self) -> &[Bytes; 3] {
        &self.keys
    }

    pub(super) fn index(&self) -> usize {
        self.index
    }

    /// A new connection: nothing is read until a beat confirms the lease.
    pub(super) fn connected(&mut self) {
        self.confirmed = false;
        self.answer_due = false;
        self.releasing = false;
    }

    /// A beat goes out now (`None`: one is out already); `Some(take)`:
    /// whether it takes a free lease though another is its rightful
    /// holder.
    pub(super) fn beat(&mut self) -> Option<bool> {
        if self.answer_due || self.releasing || self.left {
            return None;
        }
        self.answer_due = true;
        Some(self.free_seen)
    }

    /// A beat was answered.
    pub(super) fn answered(&mut self, answer: Answer) -> Change {
        self.answer_due = false;
        self.confirmed = true;
        self.free_seen = answer.free && !answer.rightful;
        let before = self.state;
        let held_before = match before {
            State::Held { fence } | State::HandingOver { fence } => Some(fence),
            State::Free => None,
        };
        match answer.fence {
            None => {
                self.state = State::Free;
                match held_before {
                    Some(_) => Change::Lost,
                    None => Change::Same,
                }
            }
            Some(fence) if held_before != Some(fence) => {
                self.state = State::Held { fence };
                self.caught_up = false;
                Change::Taken
            }
            Some(fence) if !answer.rightful => {
                self.state = State::HandingOver { fence };
                match before {
                    State::HandingOver { .. } => Change::Same,
                    _ => Change::HandOver,
                }
            }
            Some(fence) => {
                // Rightful again before the release went out: keep it.
                self.state = State::Held { fence };
                Change::Same
            }
        }
    }

    /// Whether the stream may be read: the lease is held (and not being
    /// handed over), as a beat on this connection confirmed.
    pub(super) fn may_fetch(&self) -> bool {
        self.confirmed && matches!(self.state, State::Held { .. })
    }

    /// Whether new entries may go to the handler: held, and what previous
    /// holders left pending is claimed.
    pub(super) fn may_hand_out(&self) -> bool {
        self.may_fetch() && self.caught_up
    }

    /// The claim of what previous holders left pending is done.
    pub(super) fn caught_up(&mut self) {
        if matches!(self.state, State::Held { .. }) {
            self.caught_up = true;
        }
    }

    /// The fencing token of the lease held (or being handed over).
    pub(super) fn fence(&self) -> Option<u64> {
        match self.state {
            State::Held { fence } | State::HandingOver { fence } => Some(fence),
            State::Free => None,
        }
    }

    /// Whether the lease is to be released now that the work is settled.
    pub(super) fn handing_over(&self) -> bool {
        matches!(self.state, State::HandingOver { .. }) && !self.releasing
    }

    /// A release goes out (the stop's, `leaving`, or a hand-over's).
    pub(super) fn release_sent(&mut self) {
        self.releasing = true;
    }

    pub(super) fn releasing(&self) -> bool {
        self.releasing
    }

    /// The release was answered: the lease is free (or was not ours).
    pub(super) fn released(&mut self) {
        self.releasing = false;
        self.state = State::Free;
        self.caught_up = false;
    }

    /// The beat out was refused: the next one goes out when due.
    pub(super) fn beat_lost(&mut self) {
        self.answer_due = false;
    }

    /// A graceful stop's release went out: no beat or release after it.
    pub(super) fn leave(&mut self) {
        self.left = true;
    }

    pub(super) fn left(&self) -> bool {
        self.left
    }
}

impl Consumer {
    /// With the heartbeat: the lease beat (ordered mode).
    pub(super) fn lease_beat(&mut self, now: Instant, ttl_ms: u64) {
        let Some(lease) = self.lease.as_mut() else {
            return;
        };
        if self.state != ConsumerState::Running {
            return;
        }
        if let Some(take) = lease.beat() {
            let token = &self.heartbeat.token;
            let args = (ttl_ms, lease.index(), take);
            self.outbox.lease_beat(now, lease.keys(), token, args);
        }
    }

    pub(super) fn on_lease(&mut self, now: Instant, frame: Frame) {
        let value = Value::from_frame(frame);
        if let Value::Error(error) = value {
            if error.kind == ServerErrorKind::OutOfMemory {
                // The beat is lost; the lease lapses unless the next one
                // gets through.
                if let Some(lease) = self.lease.as_mut() {
                    lease.beat_lost();
                }
                let command = "EVAL";
                return self.warn(Warning::WriteRefused { command, error });
            }
            return self.command_failed(now, ReplyError::Server(error));
        }
        let Some(answer) = Answer::parse(value) else {
            let error = ProtocolError::unexpected("EVAL", "not the lease script's answer");
            return self.command_failed(now, ReplyError::Protocol(error));
        };
        let Some(lease) = self.lease.as_mut() else {
            return;
        };
        match lease.answered(answer) {
            Change::Same => {}
            Change::Taken => {
                // Our own pending entries first, then what the previous
                // holders left, then new entries.
                self.reads.replay_from_start(&self.cfg);
                self.claims.restart();
                self.timers.set_due(super::timers::Timer::ClaimSweep, true);
            }
            Change::HandOver => self.ledger.drop_read_ahead(),
            Change::Lost => {
                self.ledger.drop_read_ahead();
                self.reads.stop_replay();
                self.claims.stop();
                let stream = self.cfg.stream.clone();
                self.warn(Warning::LeaseLost { stream });
            }
        }
    }

    /// A hand-over's release, once this stream's work is settled and no
    /// read is out (one answered after the release could bring entries
    /// newer than the next holder's first ones).
    pub(super) fn hand_over(&mut self, now: Instant) {
        let Some(lease) = self.lease.as_mut() else {
            return;
        };
        if lease.handing_over() && self.ledger.is_settled() && self.outbox.fetches_out() == 0 {
            lease.release_sent();
            let token = &self.heartbeat.token;
            self.outbox.lease_release(now, lease.keys(), token, false);
        }
    }

    /// A graceful stop releases the lease and the membership; returns
    /// whether that was sent (the stop waits for its answer).
    pub(super) fn release_lease(&mut self, now: Instant) -> bool {
        let Some(lease) = self.lease.as_mut() else {
            return false;
        };
        if lease.releasing() || lease.left() || !self.links.control().is_up() {
            return false;
        }
        if self.outbox.fetches_out() > 0 {
            return false;
        }
        lease.release_sent();
        lease.leave();
        let token = &self.heartbeat.token;
        self.outbox.lease_release(now, lease.keys(), token, true);
        true
    }

    pub(super) fn on_lease_released(&mut self, now: Instant, frame: Frame) {
        if let Some(lease) = self.lease.as_mut() {
            lease.released();
        }
        if let Value::Error(e) = Value::from_frame(frame) {
            if self.state == ConsumerState::Running {
                return self.command_failed(now, ReplyError::Server(e));
            }
        }
        self.try_finish(now);
    }

    /// Whether a stop waits for the reads out: in ordered mode, while the
    /// lease is held, so that it is released with no read out (see
    /// [`hand_over`](Self::hand_over)); at most the block time.
    pub(super) fn lease_waits_for_reads(&self) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| l.fence().is_some() && !l.left())
            && self.links.control().is_up()
            && self.outbox.fetches_out() > 0
    }

    /// Whether this stream may be read (always, but in ordered mode).
    pub(super) fn lease_allows_fetch(&self) -> bool {
        self.lease.as_ref().map_or(true, Lease::may_fetch)
    }

    /// Whether new entries may go to the handler now: always but in
    /// ordered mode, where they wait for the lease, the catching up, the
    /// batch in flight and any retry.
    pub(super) fn lease_allows_hand_out(&self) -> bool {
        match &self.lease {
            None => true,
            Some(lease) => {
                lease.may_hand_out()
                    && self.ledger.batches() == 0
                    && !self.ledger.holds_retries()
                    && self.outbox.only_new_reads_out()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease() -> Lease {
        let cfg = ConsumerConfig::builder("{orders:1}", "g", "c")
            .build()
            .unwrap();
        Lease::new(&cfg, 1)
    }

    fn answer(fence: Option<u64>, rightful: bool, free: bool) -> Answer {
        Answer {
            fence,
            rightful,
            free,
        }
    }

    #[test]
    fn the_keys_share_the_streams_slot() {
        let l = lease();
        for key in l.keys() {
            assert_eq!(
                crate::cluster::key_slot(key),
                crate::cluster::key_slot(b"{orders:1}")
            );
        }
        assert_eq!(
            l.keys()[1].as_ref(),
            b"{orders:1}:xgroup:{orders:1}:lease:g"
        );
        assert_eq!(l.index(), 1);
    }

    #[test]
    fn taken_then_caught_up_then_handed_over_and_released() {
        let mut l = lease();
        assert!(!l.may_fetch());
        assert_eq!(l.beat(), Some(false));
        assert_eq!(l.beat(), None, "one beat out at a time");
        assert_eq!(l.answered(answer(Some(7), true, false)), Change::Taken);
        assert!(l.may_fetch() && !l.may_hand_out());
        l.caught_up();
        assert!(l.may_hand_out());
        assert_eq!(l.fence(), Some(7));
        assert_eq!(l.beat(), Some(false));
        assert_eq!(l.answered(answer(Some(7), true, false)), Change::Same);
        l.beat();
        assert_eq!(l.answered(answer(Some(7), false, false)), Change::HandOver);
        assert!(!l.may_fetch() && l.handing_over() && l.fence().is_some());
        l.release_sent();
        assert!(!l.handing_over() && l.releasing());
        assert_eq!(l.beat(), None, "no beat while releasing");
        l.released();
        assert!(l.fence().is_none() && !l.may_fetch());
    }

    #[test]
    fn a_lease_found_gone_is_lost_and_a_new_fence_catches_up_again() {
        let mut l = lease();
        l.beat();
        l.answered(answer(Some(3), true, false));
        l.caught_up();
        l.beat();
        assert_eq!(l.answered(answer(None, true, false)), Change::Lost);
        assert!(!l.may_fetch());
        l.beat();
        assert_eq!(l.answered(answer(Some(5), true, false)), Change::Taken);
        assert!(!l.may_hand_out(), "taken again: catch up first");
    }

    #[test]
    fn a_free_lease_of_another_is_taken_at_the_next_beat_if_still_free() {
        let mut l = lease();
        l.beat();
        assert_eq!(l.answered(answer(None, false, true)), Change::Same);
        assert_eq!(l.beat(), Some(true));
        l.answered(answer(None, false, false));
        assert_eq!(l.beat(), Some(false), "held by another meanwhile");
    }

    #[test]
    fn a_reconnection_waits_for_a_beat() {
        let mut l = lease();
        l.beat();
        l.answered(answer(Some(1), true, false));
        l.caught_up();
        l.connected();
        assert!(!l.may_fetch());
        assert_eq!(l.beat(), Some(false));
        assert_eq!(l.answered(answer(Some(1), true, false)), Change::Same);
        assert!(l.may_hand_out(), "the same lease: still caught up");
    }

    #[test]
    fn answers_are_parsed_and_garbage_refused() {
        let int = Value::Int;
        let bulk = |s: &str| Value::Bulk(Bytes::copy_from_slice(s.as_bytes()));
        let ok = Value::Array(vec![int(1), bulk("12"), int(0), int(0)]);
        assert_eq!(Answer::parse(ok), Some(answer(Some(12), false, false)));
        let free = Value::Array(vec![int(0), bulk(""), int(1), int(1)]);
        assert_eq!(Answer::parse(free), Some(answer(None, true, true)));
        for bad in [
            Value::Array(vec![int(1), bulk("x"), int(0), int(0)]),
            Value::Array(vec![int(1), bulk("1"), int(0)]),
            Value::Array(vec![int(2), bulk("1"), int(0), int(0)]),
            Value::Int(1),
        ] {
            assert_eq!(Answer::parse(bad), None);
        }
    }
}
