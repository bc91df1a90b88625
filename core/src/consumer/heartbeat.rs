//! Heartbeats and failover: this consumer's liveness key (which also fences
//! its name), the liveness check of the others, and the claim of a dead
//! consumer's entries.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::ConsumerConfig;
use crate::error::{Error, ServerError, ServerErrorKind};
use crate::reply::{self, ReplyError, Value};
use crate::resp::Frame;

use super::outbox::Fetch;
use super::report::Warning;
use super::timers::Timer;
use super::{Consumer, State};

/// This consumer's heartbeat, and the consumers taken for dead.
#[derive(Debug)]
pub(super) struct Heartbeat {
    key: Bytes,
    /// Written into the key: a different one there means another process
    /// uses this consumer's name.
    token: Bytes,
    /// Heartbeats written by this instance (any connection).
    beats: u64,
    /// Consumers taken for dead whose entries are being claimed.
    dead: VecDeque<Bytes>,
    /// Where this consumer releases the entries of hung handlers: a name
    /// that never beats (see [`released_name`]).
    released: Bytes,
}

/// What a heartbeat's reply (the key's previous token) says.
#[derive(Debug, PartialEq, Eq)]
enum Beat {
    /// Ours, or the first beat of this instance (a crashed predecessor's
    /// key may still be there).
    Fine,
    /// The key had expired: this consumer stalled past the timeout.
    Lapsed,
    /// Another process holds the name.
    Taken,
}

impl Heartbeat {
    pub(super) fn new(cfg: &ConsumerConfig, token: Bytes) -> Self {
        Heartbeat {
            key: heartbeat_key(&cfg.stream, &cfg.group, &cfg.consumer),
            token,
            beats: 0,
            dead: VecDeque::new(),
            released: released_name(&cfg.consumer),
        }
    }

    /// A new connection: liveness is checked afresh.
    pub(super) fn connected(&mut self) {
        self.dead.clear();
    }

    fn beat(&mut self, previous: Option<Bytes>) -> Beat {
        self.beats += 1;
        match previous {
            _ if self.beats == 1 => Beat::Fine,
            Some(token) if token != self.token => Beat::Taken,
            Some(_) => Beat::Fine,
            None => Beat::Lapsed,
        }
    }

    /// `consumer`'s key is gone: returns whether it is newly taken for dead.
    fn found_dead(&mut self, consumer: &Bytes) -> bool {
        if self.dead.contains(consumer) {
            return false;
        }
        self.dead.push_back(consumer.clone());
        true
    }

    pub(super) fn forget_dead(&mut self, consumer: &Bytes) {
        self.dead.retain(|c| c != consumer);
    }

    /// The next dead consumer whose entries to claim.
    pub(super) fn next_dead(&self) -> Option<&Bytes> {
        self.dead.front()
    }

    pub(super) fn any_dead(&self) -> bool {
        !self.dead.is_empty()
    }

    /// The name this consumer releases hung handlers' entries to.
    pub(super) fn released(&self) -> &Bytes {
        &self.released
    }
}

impl Consumer {
    /// The heartbeat (and the liveness check of the others), when due.
    pub(super) fn write_heartbeat(&mut self, now: Instant) {
        let Some(hb) = self.cfg.heartbeat else {
            return;
        };
        if !self.timers.take_due(Timer::Heartbeat) {
            return;
        }
        self.timers.set(Timer::Heartbeat, now + hb.interval);
        let ttl = hb.timeout().as_millis().max(1) as u64;
        let (key, token) = (&self.heartbeat.key, &self.heartbeat.token);
        self.outbox.heartbeat(now, key, token, ttl);
        if self.state == State::Running {
            self.outbox.pending_summary(now);
        }
    }

    pub(super) fn on_heartbeat(&mut self, now: Instant, frame: Frame) {
        let previous = match Value::from_frame(frame) {
            // Out of memory: this beat is lost, the next one is due anyway.
            Value::Error(error) if error.kind == ServerErrorKind::OutOfMemory => {
                let command = "SET";
                return self.warn(Warning::WriteRefused { command, error });
            }
            Value::Error(e) => return self.command_failed(now, ReplyError::Server(e)),
            Value::Bulk(v) | Value::Simple(v) => Some(v),
            _ => None,
        };
        match self.heartbeat.beat(previous) {
            Beat::Fine => {}
            Beat::Lapsed => self.warn(Warning::HeartbeatLapsed),
            Beat::Taken => {
                let consumer = self.cfg.consumer.clone();
                self.fatal(Error::DuplicateConsumer { consumer });
            }
        }
    }

    /// After `XPENDING s g`: which consumers with pending entries lost their
    /// heartbeat key?
    pub(super) fn on_pending_summary(&mut self, now: Instant, frame: Frame) {
        let consumers = match reply::xpending_summary(frame) {
            Ok(summary) => summary.consumers,
            Err(ReplyError::Server(e)) if e.kind == ServerErrorKind::NoGroup => return,
            Err(e) => return self.command_failed(now, e),
        };
        if self.state != State::Running {
            return;
        }
        for (consumer, _) in consumers {
            // Our released entries are for the others: our own handler
            // still holds them, claiming them back would only undo it.
            if consumer == self.cfg.consumer
                || consumer == self.heartbeat.released
                || self.heartbeat.dead.contains(&consumer)
            {
                continue;
            }
            let key = self.liveness_key(&consumer);
            self.outbox.liveness(now, consumer, &key);
        }
    }

    pub(super) fn on_liveness(&mut self, now: Instant, consumer: Bytes, frame: Frame) {
        match alive(frame) {
            Ok(false) if self.state == State::Running && self.heartbeat.found_dead(&consumer) => {
                self.stats.dead_consumers += 1;
                self.warn(Warning::ConsumerDead { consumer });
            }
            Err(e) => self.command_failed(now, ReplyError::Server(e)),
            Ok(_) => {}
        }
    }

    /// The same liveness check for the owner of entries a sweep found idle.
    pub(super) fn on_sweep_liveness(&mut self, now: Instant, owner: Bytes, frame: Frame) {
        match alive(frame) {
            Ok(alive) => self.sweep_owner_checked(now, &owner, alive),
            Err(e) => self.command_failed(now, ReplyError::Server(e)),
        }
    }

    /// The liveness key of `consumer` (see [`heartbeat_key`]).
    pub(super) fn liveness_key(&self, consumer: &[u8]) -> Bytes {
        heartbeat_key(&self.cfg.stream, &self.cfg.group, consumer)
    }

    /// A dead consumer's pending entries: claimed, or (none left) it is
    /// removed from the group.
    pub(super) fn on_dead_pending(&mut self, now: Instant, consumer: Bytes, frame: Frame) {
        match reply::xpending_extended(frame) {
            Ok(rows) if rows.is_empty() => {
                // Nothing pending left: now it may go.
                self.heartbeat.forget_dead(&consumer);
                self.outbox.del_consumer(now, consumer);
            }
            Ok(rows) => {
                let ids: Vec<_> = rows.iter().map(|r| r.id).collect();
                let idle = self.dead_after();
                self.outbox
                    .claim(now, Fetch::Failover(consumer), &ids, idle);
            }
            Err(e) => self.command_failed(now, e),
        }
    }

    pub(super) fn on_del_consumer(&mut self, now: Instant, consumer: Bytes, frame: Frame) {
        match reply::integer(frame, "XGROUP DELCONSUMER") {
            Ok(_) => self.warn(Warning::ConsumerRemoved { consumer }),
            Err(ReplyError::Server(e)) if e.kind == ServerErrorKind::NoGroup => {}
            Err(e) => self.command_failed(now, e),
        }
    }

    /// How long a consumer's entries must be idle before failover takes
    /// them: its heartbeat timeout.
    fn dead_after(&self) -> Duration {
        self.cfg
            .heartbeat
            .map_or(self.cfg.claim_min_idle, |h| h.timeout())
    }
}

/// The liveness key of `consumer`: it carries the stream's hash tag, so in a
/// cluster it lives on the stream's slot (and can share a `MULTI`).
pub fn heartbeat_key(stream: &[u8], group: &[u8], consumer: &[u8]) -> Bytes {
    let tag = hash_tag(stream).unwrap_or(stream);
    let mut key = Vec::with_capacity(tag.len() + group.len() + consumer.len() + 16);
    key.push(b'{');
    key.extend_from_slice(tag);
    key.extend_from_slice(b"}:xgroup:hb:");
    key.extend_from_slice(group);
    key.push(b':');
    key.extend_from_slice(consumer);
    Bytes::from(key)
}

/// What a liveness check (`GET` of a consumer's heartbeat key) says: a
/// consumer is alive while its key is there, whatever it holds.
fn alive(frame: Frame) -> Result<bool, ServerError> {
    match Value::from_frame(frame) {
        Value::Nil => Ok(false),
        Value::Error(e) => Err(e),
        _ => Ok(true),
    }
}

/// The name a consumer releases the entries of its hung handlers to: its
/// own name and a suffix no heartbeat is ever written for, so every other
/// consumer takes that name for dead — their sweeps claim the entries, and
/// failover removes the name from the group once nothing is pending for it.
/// (A consumer skips its own released name: its handler still holds them.)
pub(super) fn released_name(consumer: &[u8]) -> Bytes {
    let mut name = Vec::with_capacity(consumer.len() + RELEASED_SUFFIX.len());
    name.extend_from_slice(consumer);
    name.extend_from_slice(RELEASED_SUFFIX);
    Bytes::from(name)
}

const RELEASED_SUFFIX: &[u8] = b"~xgroup-released";

/// Redis Cluster's hash tag: the part between the first `{` and the next
/// `}`, when not empty.
fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let len = key[open + 1..].iter().position(|&b| b == b'}')?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_keys_share_the_streams_hash_slot() {
        assert_eq!(
            &heartbeat_key(b"orders", b"g", b"c")[..],
            b"{orders}:xgroup:hb:g:c"
        );
        assert_eq!(
            &heartbeat_key(b"{tenant1}.orders", b"g", b"c")[..],
            b"{tenant1}:xgroup:hb:g:c"
        );
        assert_eq!(hash_tag(b"a{}b"), None);
        assert_eq!(hash_tag(b"x{y}z{w}"), Some(&b"y"[..]));
    }

    fn heartbeat() -> Heartbeat {
        let cfg = ConsumerConfig::builder("s", "g", "me")
            .build()
            .expect("valid config");
        Heartbeat::new(&cfg, Bytes::from_static(b"mine"))
    }

    #[test]
    fn a_beat_tells_a_lapsed_key_from_a_taken_name() {
        let mut hb = heartbeat();
        // The first beat may find a crashed predecessor's token.
        assert_eq!(hb.beat(Some(Bytes::from_static(b"old"))), Beat::Fine);
        assert_eq!(hb.beat(Some(Bytes::from_static(b"mine"))), Beat::Fine);
        assert_eq!(hb.beat(None), Beat::Lapsed);
        assert_eq!(hb.beat(Some(Bytes::from_static(b"theirs"))), Beat::Taken);
    }

    #[test]
    fn a_consumer_is_alive_while_its_key_is_there() {
        let frame = |bytes: &[u8]| {
            let mut decoder = crate::resp::Decoder::new();
            decoder.feed(bytes);
            decoder.next_frame().expect("valid").expect("whole")
        };
        assert_eq!(alive(frame(b"$-1\r\n")), Ok(false));
        assert_eq!(alive(frame(b"_\r\n")), Ok(false));
        assert_eq!(alive(frame(b"$4\r\ntokn\r\n")), Ok(true));
        assert!(alive(frame(b"-LOADING loading\r\n")).is_err());
    }

    #[test]
    fn hung_entries_are_released_to_a_name_of_our_own_that_never_beats() {
        let hb = heartbeat();
        assert_eq!(&hb.released()[..], b"me~xgroup-released");
        assert_ne!(hb.released(), &hb.key);
        assert_eq!(&released_name(b"other")[..], b"other~xgroup-released");
    }

    #[test]
    fn a_dead_consumer_is_taken_for_dead_once_until_forgotten() {
        let mut hb = heartbeat();
        let other = Bytes::from_static(b"other");
        assert!(hb.found_dead(&other));
        assert!(!hb.found_dead(&other));
        assert_eq!(hb.next_dead(), Some(&other));
        hb.forget_dead(&other);
        assert!(!hb.any_dead());
        assert!(hb.found_dead(&other));
        hb.connected();
        assert!(!hb.any_dead());
    }
}
