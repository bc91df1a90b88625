//! Heartbeats and failover: this consumer's liveness key (which also fences
//! its name), the liveness check of the others, and the claim of a dead
//! consumer's entries.
//!
//! The name's fence: the key holds `<token>:<beat>`, the token of the
//! process holding the name and a counter it bumps on every beat. Every
//! write is a compare-and-set ([`HEARTBEAT_SCRIPT`]): set only when the key
//! is absent or ours, so a holder never overwrites another's token. On each
//! connection the first beat claims the name, and nothing is read, replayed
//! or claimed before its answer:
//!
//! - absent or ours: the name is held, work goes on (at once after a
//!   graceful stop, which deleted the key, [`HEARTBEAT_RELEASE_SCRIPT`]);
//! - another token, and this instance never held the name: it is a live
//!   process's or a crashed predecessor's. The key is watched (`GET`) for
//!   one heartbeat interval and a half. A changed value means its holder
//!   beat: it is alive, and this instance stops with
//!   [`Error::DuplicateConsumer`]. A vanished key is free: claimed again at
//!   once. An unchanged one is a dead holder's: taken over with a
//!   compare-and-set against the value seen (if it changed meanwhile, the
//!   holder is alive after all), and work — the replay of the name's own
//!   pending entries first — starts at once, within about one interval of
//!   a crash, before the key lapses (so the others do not fail the name
//!   over meanwhile);
//! - another token, and this instance held the name: it was taken over
//!   while this one's heartbeats did not get through; this one stops.
//!
//! Under `maxmemory` the script's write is refused (`OOM`), which happens
//! only when it would have set the key: the name is free or ours, and work
//! goes on without the beat.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::ConsumerConfig;
use crate::error::{Error, ServerError, ServerErrorKind};
use crate::reply::{self, ReplyError, Value};
use crate::resp::Frame;

use super::lifecycle::Conn;
use super::outbox::Fetch;
use super::report::Warning;
use super::timers::Timer;
use super::{Consumer, State};

/// Writes a heartbeat as a compare-and-set. KEYS: the heartbeat key. ARGV:
/// token, value (`<token>:<beat>`), expiry in ms, and optionally the exact
/// value a takeover replaces. The key is set only when it is absent, holds
/// this token, or holds that value. Answers what the key held (nil when
/// absent); a refused write (`OOM`) answers its error, with Redis 6.2's
/// script prefix taken off.
pub const HEARTBEAT_SCRIPT: &str = "\
-- xgroup heartbeat. KEYS: heartbeat key. ARGV: token, value, ttl ms,
-- [expected]. Sets the key only when absent, ours, or the expected value.
local cur = redis.call('GET', KEYS[1])
if not cur or string.sub(cur, 1, #ARGV[1] + 1) == ARGV[1] .. ':' or cur == ARGV[4] then
  local set = redis.pcall('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  if type(set) == 'table' and set.err then
    return redis.error_reply(string.match(set.err, '%-(%u+ .*)$') or set.err)
  end
end
return cur
";

/// Deletes the heartbeat key while it holds this token (a graceful stop:
/// the name is free at once). KEYS: the heartbeat key. ARGV: token. Answers
/// how many keys it deleted.
pub const HEARTBEAT_RELEASE_SCRIPT: &str = "\
-- xgroup heartbeat release. KEYS: heartbeat key. ARGV: token.
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Removes a consumer taken for dead from the group, only if it is still
/// dead (no heartbeat key) and holds nothing (no pending entry): a new
/// process under its name may have started and read entries since it was
/// found dead, and `XGROUP DELCONSUMER` would drop them from the pending
/// list. KEYS: the stream, the consumer's heartbeat key. ARGV: group,
/// consumer. Answers the entries it dropped (0), or -1 when it left the
/// consumer there.
pub const REMOVE_DEAD_SCRIPT: &str = "\
-- xgroup dead consumer removal. KEYS: stream, heartbeat key. ARGV: group,
-- consumer. Only a consumer still dead and holding nothing is removed.
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local held = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #held > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
";

/// This consumer's heartbeat, and the consumers taken for dead.
#[derive(Debug)]
pub(super) struct Heartbeat {
    key: Bytes,
    /// Written into the key: a different one there means another process
    /// uses this consumer's name.
    pub(super) token: Bytes,
    /// Heartbeats written by this instance (any connection): the counter
    /// after the token, which tells a watcher that the holder is alive.
    beats: u64,
    /// Whose the name is, as far as this instance knows.
    name: Name,
    /// This instance has held the name: finding another token later means
    /// it was taken over.
    held_before: bool,
    /// A claim or takeover is out: its answer decides the name.
    answer_due: bool,
    /// The graceful stop's release of the key is out.
    releasing: bool,
    /// Consumers taken for dead whose entries are being claimed.
    dead: VecDeque<Bytes>,
    /// Where this consumer releases the entries of hung handlers: a name
    /// that never beats (see [`released_name`]).
    released: Bytes,
    /// A stream after the first of a consumer of several: the first
    /// stream's part fences the name for the whole process; this one only
    /// keeps its own liveness key, and works while the first holds the
    /// name (`leader_holds`). Two processes under one name then cannot
    /// each win some streams and both stop.
    follower: bool,
    leader_holds: bool,
    /// The first stream's part has held the name since this process
    /// started: from then on this one beats whatever the first's state
    /// (its handler may hold entries that a lapsed key would expose).
    leader_held: bool,
}

/// Whose the name is, as far as this instance knows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    /// This connection's first beat (a claim) is due or out.
    Claiming,
    /// Ours (or heartbeats are off): work goes on.
    Held,
    /// Another token was there: watched until `until`.
    Watching { seen: Bytes, until: Instant },
    /// Nothing changed while watching: the takeover (a compare-and-set
    /// against `expected`) is out.
    TakingOver { expected: Bytes },
}

/// What the answer to a beat, claim or takeover says.
#[derive(Debug, PartialEq, Eq)]
enum Beat {
    /// The name is ours.
    Fine,
    /// The key had expired: this consumer stalled past the timeout.
    Lapsed,
    /// Another token is there: watch it.
    Watch,
    /// Another live process holds the name.
    Taken,
}

/// What a look at the watched key says.
#[derive(Debug, PartialEq, Eq)]
enum Watched {
    Unchanged,
    /// Gone: the name is free, claim it now.
    Free,
    /// Its holder beat: it is alive.
    Changed,
}

impl Heartbeat {
    pub(super) fn new(cfg: &ConsumerConfig, token: Bytes) -> Self {
        Heartbeat {
            key: heartbeat_key(&cfg.stream, &cfg.group, &cfg.consumer),
            token,
            beats: 0,
            name: if cfg.heartbeat.is_some() {
                Name::Claiming
            } else {
                Name::Held
            },
            held_before: false,
            answer_due: false,
            releasing: false,
            dead: VecDeque::new(),
            released: released_name(&cfg.consumer),
            follower: false,
            leader_holds: false,
            leader_held: false,
        }
    }

    /// This stream follows the first stream's fence of the name (see
    /// `follower`).
    pub(super) fn follow(&mut self) {
        self.follower = true;
        self.name = Name::Held;
    }

    /// Whether the first stream's part holds the name now; returns
    /// whether that changed.
    pub(super) fn set_leader_holds(&mut self, holds: bool) -> bool {
        self.leader_held |= holds;
        std::mem::replace(&mut self.leader_holds, holds) != holds
    }

    /// A new connection: liveness is checked afresh, and (with heartbeats)
    /// the name is claimed again before any work.
    pub(super) fn connected(&mut self) {
        self.dead.clear();
        self.answer_due = false;
        self.releasing = false;
        if self.follower {
            return;
        }
        if self.name != Name::Held || self.held_before {
            self.name = Name::Claiming;
        }
    }

    /// Whether this instance holds the name (reads, replays and claims may
    /// go out).
    pub(super) fn holds_name(&self) -> bool {
        match self.follower {
            true => self.leader_holds,
            false => self.name == Name::Held,
        }
    }

    /// The next value for the key: our token and the next beat.
    fn next_value(&mut self) -> Bytes {
        self.beats += 1;
        let mut value = Vec::with_capacity(self.token.len() + 21);
        value.extend_from_slice(&self.token);
        value.push(b':');
        value.extend_from_slice(itoa::Buffer::new().format(self.beats).as_bytes());
        Bytes::from(value)
    }

    fn is_ours(&self, value: &[u8]) -> bool {
        value.len() > self.token.len()
            && value.starts_with(&self.token)
            && value[self.token.len()] == b':'
    }

    /// A beat, claim or takeover answered with what the key held; `watch`
    /// is how long to watch another token.
    fn answered(&mut self, now: Instant, previous: Option<Bytes>, watch: Duration) -> Beat {
        if self.follower {
            // The first stream's part decides the name; another token here
            // is a loser's, and lapses when it stops.
            return Beat::Fine;
        }
        let takeover = match &self.name {
            Name::TakingOver { expected } => Some(expected.clone()),
            _ => None,
        };
        if matches!(self.name, Name::Claiming | Name::TakingOver { .. }) {
            self.answer_due = false;
        }
        match previous {
            None => {
                let lapsed = self.held_before;
                self.hold();
                if lapsed {
                    Beat::Lapsed
                } else {
                    Beat::Fine
                }
            }
            Some(v) if self.is_ours(&v) || takeover.as_ref() == Some(&v) => {
                self.hold();
                Beat::Fine
            }
            // Never held, not a takeover: a live process's or a crashed
            // predecessor's; watch it.
            Some(v) if !self.held_before && takeover.is_none() => {
                if self.name == Name::Claiming {
                    self.name = Name::Watching {
                        seen: v,
                        until: now + watch,
                    };
                }
                Beat::Watch
            }
            // Taken over from us, or changed under our takeover.
            Some(_) => Beat::Taken,
        }
    }

    /// The beat could not be written (`OOM`): the script writes only when
    /// the name is free, ours, or the dead holder's being taken over.
    fn refused(&mut self) {
        if self.name != Name::Held {
            self.answer_due = false;
            self.hold();
        }
    }

    fn hold(&mut self) {
        self.name = Name::Held;
        self.held_before = true;
    }

    /// The watched key held `value`.
    fn watched(&mut self, value: Option<Bytes>) -> Watched {
        let Name::Watching { seen, .. } = &self.name else {
            return Watched::Unchanged;
        };
        match value {
            None => {
                self.name = Name::Claiming;
                Watched::Free
            }
            Some(v) if v == *seen => Watched::Unchanged,
            Some(_) => Watched::Changed,
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

    /// Whether the graceful stop's release of the key is out.
    pub(super) fn releasing(&self) -> bool {
        self.releasing
    }
}

impl Consumer {
    /// The heartbeat (and the liveness check of the others), when due; or,
    /// while another process's token is watched, a look at the key, and
    /// the takeover once the watch is over.
    pub(super) fn write_heartbeat(&mut self, now: Instant) {
        let Some(hb) = self.cfg.heartbeat else {
            return;
        };
        if self.heartbeat.releasing || !self.timers.take_due(Timer::Heartbeat) {
            return;
        }
        if self.heartbeat.follower && !self.heartbeat.leader_held {
            // Not before the process holds the name: a losing process
            // must not keep liveness keys alive under it.
            self.timers.set(
                Timer::Heartbeat,
                now + hb.interval.min(Duration::from_millis(100)),
            );
            return;
        }
        let ttl = hb.timeout().as_millis().max(1) as u64;
        let key = self.heartbeat.key.clone();
        let token = self.heartbeat.token.clone();
        self.timers.set(Timer::Heartbeat, now + hb.interval);
        match self.heartbeat.name.clone() {
            Name::Claiming | Name::TakingOver { .. } if self.heartbeat.answer_due => {}
            // The first stream's part holds the name for the process: a
            // follower's key is simply written (a crashed predecessor's
            // token in it must not leave it to lapse under a live handler).
            Name::Held if self.heartbeat.follower => {
                let value = self.heartbeat.next_value();
                self.outbox.heartbeat_set(now, &key, &value, ttl);
                if self.state == State::Running && self.lease.is_none() {
                    self.outbox.pending_summary(now);
                }
                self.lease_beat(now, ttl);
            }
            Name::Held => {
                let value = self.heartbeat.next_value();
                self.outbox
                    .heartbeat(now, &key, (&token, &value), ttl, None);
                if self.state == State::Running && self.lease.is_none() {
                    self.outbox.pending_summary(now);
                }
                self.lease_beat(now, ttl);
            }
            Name::Claiming => {
                let value = self.heartbeat.next_value();
                self.heartbeat.answer_due = true;
                self.outbox
                    .heartbeat(now, &key, (&token, &value), ttl, None);
                self.lease_beat(now, ttl);
            }
            Name::TakingOver { .. } => {}
            // The timers fire a millisecond early (see `Timers::fire`).
            Name::Watching { seen, until } if until <= now + Duration::from_millis(1) => {
                let value = self.heartbeat.next_value();
                self.heartbeat.name = Name::TakingOver {
                    expected: seen.clone(),
                };
                self.heartbeat.answer_due = true;
                self.outbox
                    .heartbeat(now, &key, (&token, &value), ttl, Some(&seen));
            }
            Name::Watching { until, .. } => {
                self.outbox.name_watch(now, &key);
                let poll = (hb.interval / 4).max(Duration::from_millis(1));
                self.timers.set(Timer::Heartbeat, (now + poll).min(until));
            }
        }
    }

    pub(super) fn on_heartbeat(&mut self, now: Instant, frame: Frame) {
        let previous = match Value::from_frame(frame) {
            // Out of memory: this beat is lost, the next one is due anyway.
            Value::Error(error) if error.kind == ServerErrorKind::OutOfMemory => {
                self.heartbeat.refused();
                let command = "EVAL";
                return self.warn(Warning::WriteRefused { command, error });
            }
            Value::Error(e) => return self.command_failed(now, ReplyError::Server(e)),
            Value::Bulk(v) | Value::Simple(v) => Some(v),
            _ => None,
        };
        let watch = self
            .cfg
            .heartbeat
            .map_or(Duration::ZERO, |hb| hb.interval + hb.interval / 2);
        match self.heartbeat.answered(now, previous, watch) {
            Beat::Fine => {}
            Beat::Lapsed => self.warn(Warning::HeartbeatLapsed),
            Beat::Watch => {
                let poll = self
                    .cfg
                    .heartbeat
                    .map_or(Duration::ZERO, |hb| hb.interval / 4)
                    .max(Duration::from_millis(1));
                self.timers.set(Timer::Heartbeat, now + poll);
            }
            Beat::Taken => self.name_taken(),
        }
    }

    /// A look at the key held by another token.
    pub(super) fn on_name_watch(&mut self, now: Instant, frame: Frame) {
        let value = match Value::from_frame(frame) {
            Value::Error(e) => return self.command_failed(now, ReplyError::Server(e)),
            Value::Bulk(v) | Value::Simple(v) => Some(v),
            _ => None,
        };
        match self.heartbeat.watched(value) {
            Watched::Unchanged => {}
            Watched::Free => self.timers.set_due(Timer::Heartbeat, true),
            Watched::Changed => self.name_taken(),
        }
    }

    /// Another live process holds this consumer's name.
    fn name_taken(&mut self) {
        let consumer = self.cfg.consumer.clone();
        self.fatal(Error::DuplicateConsumer { consumer });
    }

    /// A graceful stop frees the name: the key is deleted if it still holds
    /// our token. Returns whether that was sent (the stop waits for its
    /// answer). It goes on the control connection; not while a read is out
    /// there (with one connection): a blocked read would hold it back (the
    /// key then lapses by itself). A read on the read connection is no
    /// obstacle.
    pub(super) fn release_name(&mut self, now: Instant) -> bool {
        if self.cfg.heartbeat.is_none()
            || !self.heartbeat.holds_name()
            || !self.links.control().is_up()
            || self.outbox.fetches_out_on(Conn::Control) > 0
        {
            return false;
        }
        self.heartbeat.releasing = true;
        let (key, token) = (&self.heartbeat.key, &self.heartbeat.token);
        self.outbox.name_release(now, key, token);
        true
    }

    /// The key is released (or could not be: it lapses by itself).
    pub(super) fn on_name_released(&mut self, _now: Instant, _frame: Frame) {
        self.finish(None);
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
                // Nothing pending left: now it may go (if it is still dead
                // and holds nothing: see `REMOVE_DEAD_SCRIPT`).
                self.heartbeat.forget_dead(&consumer);
                let key = self.liveness_key(&consumer);
                self.outbox.del_consumer(now, consumer, &key);
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
        match reply::integer(frame, "EVAL") {
            // Alive again, or holding entries: left in the group.
            Ok(n) if n < 0 => {}
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

/// The liveness key of `consumer` on `stream`: it carries the stream's
/// hash tag, so in a cluster it lives on the stream's slot (and can share
/// a `MULTI`), and names the stream unless the tag is the whole key (see
/// `slot_key`): `{orders}:xgroup:hb:g:c` for `orders`,
/// `{t}:xgroup:{t}.orders:hb:g:c` for `{t}.orders`.
pub fn heartbeat_key(stream: &[u8], group: &[u8], consumer: &[u8]) -> Bytes {
    slot_key(stream, &[b"hb:", group, b":", consumer])
}

/// `{<tag>}:xgroup:<parts...>`, a key in `stream`'s hash slot: its hash
/// tag, or the whole key in braces (which a `}` in it would cut short:
/// then another tag in the same slot). Unless the tag is the whole stream
/// key, the key names the stream too (`{<tag>}:xgroup:<stream>:<parts...>`):
/// streams that share a tag (`{tenant}.orders`, `{tenant}.refunds`) must
/// not share a consumer's heartbeat key or a lease.
pub(super) fn slot_key(stream: &[u8], parts: &[&[u8]]) -> Bytes {
    let whole;
    let tag = match crate::cluster::hash_tag(stream) {
        Some(tag) => tag,
        None if !stream.contains(&b'}') => stream,
        None => {
            whole = crate::cluster::tag_for_slot(crate::cluster::key_slot(stream));
            &whole
        }
    };
    let len = parts.iter().map(|p| p.len()).sum::<usize>();
    let mut key = Vec::with_capacity(tag.len() + len + 10);
    key.push(b'{');
    key.extend_from_slice(tag);
    key.extend_from_slice(b"}:xgroup:");
    if tag != stream {
        key.extend_from_slice(stream);
        key.push(b':');
    }
    for part in parts {
        key.extend_from_slice(part);
    }
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
            b"{tenant1}:xgroup:{tenant1}.orders:hb:g:c"
        );
        // Streams that share a tag do not share a key.
        assert_ne!(
            heartbeat_key(b"{tenant1}.orders", b"g", b"c"),
            heartbeat_key(b"{tenant1}.refunds", b"g", b"c")
        );
        assert_ne!(
            heartbeat_key(b"orders", b"g", b"c"),
            heartbeat_key(b"{orders}", b"g", b"c")
        );
        for stream in [&b"orders"[..], b"{tenant1}.orders", b"a{}b", b"x{y}z{w}"] {
            assert_eq!(
                crate::key_slot(&heartbeat_key(stream, b"g", b"c")),
                crate::key_slot(stream),
                "{:?}",
                String::from_utf8_lossy(stream)
            );
        }
    }

    fn heartbeat() -> Heartbeat {
        let cfg = ConsumerConfig::builder("s", "g", "me")
            .build()
            .expect("valid config");
        Heartbeat::new(&cfg, Bytes::from_static(b"mine"))
    }

    #[allow(clippy::disallowed_methods)] // a test's instant
    fn t0() -> Instant {
        Instant::now()
    }

    const WATCH: Duration = Duration::from_secs(3);

    fn value(v: &'static str) -> Option<Bytes> {
        Some(Bytes::from_static(v.as_bytes()))
    }

    #[test]
    fn the_value_is_our_token_and_a_beat_counter() {
        let mut hb = heartbeat();
        assert_eq!(&hb.next_value()[..], b"mine:1");
        assert_eq!(&hb.next_value()[..], b"mine:2");
        assert!(hb.is_ours(b"mine:7"));
        assert!(!hb.is_ours(b"mine"));
        assert!(!hb.is_ours(b"mine7:1"));
        assert!(!hb.is_ours(b"other:1"));
    }

    #[test]
    fn a_free_or_own_name_is_held_at_once() {
        let now = t0();
        let mut hb = heartbeat();
        assert!(!hb.holds_name());
        assert_eq!(hb.answered(now, None, WATCH), Beat::Fine);
        assert!(hb.holds_name());
        assert_eq!(hb.answered(now, value("mine:1"), WATCH), Beat::Fine);
        // Later, the key had expired: this instance stalled.
        assert_eq!(hb.answered(now, None, WATCH), Beat::Lapsed);
        // A reconnection claims it again first; our own value is ours.
        hb.connected();
        assert!(!hb.holds_name());
        assert_eq!(hb.answered(now, value("mine:3"), WATCH), Beat::Fine);
        assert!(hb.holds_name());
    }

    #[test]
    fn a_newcomer_watches_another_token_and_stops_when_it_changes() {
        let now = t0();
        let mut hb = heartbeat();
        assert_eq!(hb.answered(now, value("other:5"), WATCH), Beat::Watch);
        assert_eq!(
            hb.name,
            Name::Watching {
                seen: Bytes::from_static(b"other:5"),
                until: now + WATCH
            }
        );
        assert!(!hb.holds_name());
        assert_eq!(hb.watched(value("other:5")), Watched::Unchanged);
        assert_eq!(hb.watched(value("other:6")), Watched::Changed);
    }

    #[test]
    fn a_newcomer_claims_a_name_whose_key_vanished_while_watched() {
        let now = t0();
        let mut hb = heartbeat();
        hb.answered(now, value("other:5"), WATCH);
        assert_eq!(hb.watched(None), Watched::Free);
        assert_eq!(hb.name, Name::Claiming);
        assert_eq!(hb.answered(now, None, WATCH), Beat::Fine);
        assert!(hb.holds_name());
    }

    #[test]
    fn a_takeover_holds_the_name_only_if_the_value_did_not_change() {
        let now = t0();
        let mut hb = heartbeat();
        hb.answered(now, value("other:5"), WATCH);
        hb.name = Name::TakingOver {
            expected: Bytes::from_static(b"other:5"),
        };
        assert_eq!(hb.answered(now, value("other:5"), WATCH), Beat::Fine);
        assert!(hb.holds_name());
        let mut late = heartbeat();
        late.answered(now, value("other:5"), WATCH);
        late.name = Name::TakingOver {
            expected: Bytes::from_static(b"other:5"),
        };
        assert_eq!(late.answered(now, value("other:6"), WATCH), Beat::Taken);
        assert!(!late.holds_name());
    }

    #[test]
    fn a_holder_that_finds_another_token_was_taken_over() {
        let now = t0();
        let mut hb = heartbeat();
        hb.answered(now, None, WATCH);
        assert_eq!(hb.answered(now, value("other:1"), WATCH), Beat::Taken);
        // Also on the first beat of a new connection.
        let mut hb = heartbeat();
        hb.answered(now, None, WATCH);
        hb.connected();
        assert_eq!(hb.answered(now, value("other:1"), WATCH), Beat::Taken);
    }

    #[test]
    fn a_refused_write_means_the_name_was_free_or_ours() {
        let mut hb = heartbeat();
        hb.answer_due = true;
        hb.refused();
        assert!(hb.holds_name() && !hb.answer_due);
    }

    #[test]
    fn without_heartbeats_the_name_is_always_held() {
        let cfg = ConsumerConfig::builder("s", "g", "me")
            .no_heartbeat()
            .build()
            .expect("valid config");
        let mut hb = Heartbeat::new(&cfg, Bytes::from_static(b"mine"));
        assert!(hb.holds_name());
        hb.connected();
        assert!(hb.holds_name());
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
