//! In-memory model of Redis Streams (feature `sim`).
//!
//! [`SimServer`] is a small Redis server without sockets or clock: it keeps
//! streams, consumer groups and their pending entries lists (PEL) in memory
//! and answers the RESP commands a consumer sends, with the reply shapes and
//! error texts of Redis 7.0 (RESP2, or RESP3 after `HELLO 3`). Time is
//! virtual: every call that can let time pass takes the current `Instant`,
//! so tests decide when `BLOCK` timeouts fire and how idle a pending entry
//! is, without sleeping.
//!
//! It exists for property tests of the consumer state machine (several
//! consumers, random crashes, time jumps) and for users who want to test
//! their stream handlers without a Redis server.
//!
//! # Driving it
//!
//! Open a connection per client with [`SimServer::connect`], hand it the
//! bytes the client would write with [`SimServer::receive`] (partial or
//! pipelined commands are fine), and collect what the server would answer
//! with [`SimServer::take_output`]. A blocked `XREADGROUP ... BLOCK` is
//! answered when an `XADD` (from any connection, or [`SimServer::xadd`])
//! makes entries available, or with a nil reply once [`SimServer::advance`]
//! moves the clock past its timeout ([`SimServer::next_deadline`] tells
//! when).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use xgroup_core::sim::{SimOptions, SimServer};
//!
//! let t0 = Instant::now();
//! let mut server = SimServer::new(SimOptions::default(), t0);
//! let conn = server.connect(t0);
//! server.receive(conn, t0, b"*6\r\n$6\r\nXGROUP\r\n$6\r\nCREATE\r\n$1\r\ns\r\n$1\r\ng\r\n$1\r\n0\r\n$8\r\nMKSTREAM\r\n");
//! assert_eq!(&server.take_output(conn)[..], b"+OK\r\n");
//!
//! // A consumer waits up to one second for new entries.
//! server.receive(conn, t0, b"XREADGROUP GROUP g alice BLOCK 1000 STREAMS s >\r\n");
//! assert!(server.is_blocked(conn));
//!
//! // A producer adds one: the blocked read is answered.
//! let id = server.xadd(t0 + Duration::from_millis(5), b"s", &[(b"k", b"v")]);
//! let reply = server.take_output(conn);
//! assert!(reply.starts_with(b"*1\r\n*2\r\n$1\r\ns\r\n"));
//! assert_eq!(server.pending(b"s", b"g")[0].id, id);
//!
//! // Nothing more arrives: the next read times out on the virtual clock.
//! server.receive(conn, t0, b"XREADGROUP GROUP g alice BLOCK 1000 STREAMS s >\r\n");
//! server.advance(t0 + Duration::from_secs(2));
//! assert_eq!(&server.take_output(conn)[..], b"*-1\r\n");
//! ```
//!
//! Direct accessors ([`SimServer::entries`], [`SimServer::pending`],
//! [`SimServer::acks`], [`SimServer::command_counts`], ...) let tests check
//! the state without going through RESP; they all work on database 0.
//!
//! Known differences from Redis: approximate trimming (`~`) trims exactly;
//! consumer "seen"/"active" times, `XINFO`, `WATCH` and everything outside
//! streams, a few string commands and connection basics is not modelled.

mod commands;
mod parse;
mod reply;
mod store;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use crate::id::StreamId;

use self::commands::{Outcome, Spec};
use self::parse::{parse_request, Parsed};
use self::reply::Reply;
use self::store::{Db, Stream, Value};

/// Identifies a client connection of a [`SimServer`].
pub type ConnId = u64;

/// How the simulated server behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimOptions {
    /// Answer `XAUTOCLAIM` like Redis 6.2: two elements (no list of deleted
    /// ids), a deleted entry is claimed and shown as a nil element.
    pub autoclaim_v62: bool,
    /// When set, clients must `AUTH` (or `HELLO ... AUTH`) before anything else.
    pub password: Option<String>,
    /// The ACL user the password belongs to (`default` when `None`).
    pub username: Option<String>,
}

/// One pending entry of a consumer group, as [`SimServer::pending`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPending {
    /// The entry's id.
    pub id: StreamId,
    /// The consumer that owns it.
    pub consumer: Bytes,
    /// How many times it was delivered.
    pub delivery_count: u64,
    /// When it was last delivered (on the virtual clock).
    pub last_delivery: Instant,
}

/// A client waiting in `XREAD[GROUP] ... BLOCK`.
#[derive(Debug, Clone)]
pub(crate) struct Blocked {
    /// Order of blocking (clients are served first come, first served).
    pub(crate) seq: u64,
    pub(crate) db: usize,
    pub(crate) keys: Vec<Bytes>,
    /// Per key: deliver entries after this id (`XREAD` only).
    pub(crate) ids: Vec<StreamId>,
    pub(crate) group: Option<BlockGroup>,
    /// At most this many entries (0 = all).
    pub(crate) count: usize,
    pub(crate) deadline: Option<Instant>,
}

/// Group, consumer and `NOACK` of a blocked `XREADGROUP`.
#[derive(Debug, Clone)]
pub(crate) struct BlockGroup {
    pub(crate) group: Bytes,
    pub(crate) consumer: Bytes,
    pub(crate) noack: bool,
}

/// A transaction being queued.
#[derive(Debug, Default)]
pub(crate) struct Multi {
    pub(crate) queued: Vec<Vec<Bytes>>,
    /// A command was rejected while queuing: `EXEC` aborts.
    pub(crate) failed: bool,
}

/// A client connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: ConnId,
    input: BytesMut,
    output: BytesMut,
    pub(crate) resp3: bool,
    pub(crate) db: usize,
    pub(crate) authed: bool,
    pub(crate) name: Option<Bytes>,
    closed: bool,
    pub(crate) multi: Option<Multi>,
    blocked: Option<Blocked>,
}

impl Conn {
    fn write(&mut self, reply: &Reply) {
        reply.encode(self.resp3, &mut self.output);
    }
}

/// The keyspace, the clock and the logs: everything commands touch besides
/// the calling connection.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) options: SimOptions,
    pub(crate) created: Instant,
    pub(crate) now: Instant,
    dbs: Vec<Db>,
    pub(crate) counts: BTreeMap<String, u64>,
    pub(crate) acks: Vec<(Bytes, Bytes, StreamId, bool)>,
    /// Stream keys written in a way that may wake blocked readers.
    ready: VecDeque<(usize, Bytes)>,
}

impl Core {
    /// The value at `key`, treating expired strings as missing.
    pub(crate) fn live(&self, db: usize, key: &[u8]) -> Option<&Value> {
        match self.dbs.get(db)?.keys.get(key)? {
            Value::Str {
                expires: Some(at), ..
            } if *at <= self.now => None,
            v => Some(v),
        }
    }

    /// The stream at `key`; `WRONGTYPE` if the key holds something else.
    pub(crate) fn stream(&self, db: usize, key: &[u8]) -> Result<Option<&Stream>, Reply> {
        match self.live(db, key) {
            None => Ok(None),
            Some(Value::Stream(s)) => Ok(Some(s)),
            Some(_) => Err(Reply::wrongtype()),
        }
    }

    pub(crate) fn stream_mut(
        &mut self,
        db: usize,
        key: &[u8],
    ) -> Result<Option<&mut Stream>, Reply> {
        self.purge(db, key);
        match self.dbs.get_mut(db).and_then(|d| d.keys.get_mut(key)) {
            None => Ok(None),
            Some(Value::Stream(s)) => Ok(Some(s)),
            Some(_) => Err(Reply::wrongtype()),
        }
    }

    /// The stream at `key`, created empty if missing (or replacing an
    /// expired string or, for direct test access, any other value).
    /// `None` only for a database index out of range.
    pub(crate) fn stream_or_create(&mut self, db: usize, key: &Bytes) -> Option<&mut Stream> {
        self.purge(db, key);
        let keys = &mut self.dbs.get_mut(db)?.keys;
        let value = keys
            .entry(key.clone())
            .or_insert_with(|| Value::Stream(Stream::default()));
        if !matches!(value, Value::Stream(_)) {
            *value = Value::Stream(Stream::default());
        }
        match value {
            Value::Stream(s) => Some(s),
            Value::Str { .. } => None,
        }
    }

    /// Drops `key` if it is an expired string.
    fn purge(&mut self, db: usize, key: &[u8]) {
        let now = self.now;
        if let Some(d) = self.dbs.get_mut(db) {
            if matches!(d.keys.get(key), Some(Value::Str { expires: Some(at), .. }) if *at <= now) {
                d.keys.remove(key);
            }
        }
    }

    /// Deletes a live key; streams wake their blocked readers.
    pub(crate) fn remove_key(&mut self, db: usize, key: &[u8]) -> bool {
        self.purge(db, key);
        let Some(d) = self.dbs.get_mut(db) else {
            return false;
        };
        match d.keys.remove(key) {
            None => false,
            Some(Value::Stream(_)) => {
                self.signal(db, key);
                true
            }
            Some(Value::Str { .. }) => true,
        }
    }

    /// Marks a stream key as worth re-checking for blocked readers.
    pub(crate) fn signal(&mut self, db: usize, key: &[u8]) {
        if !self.ready.iter().any(|(d, k)| *d == db && k == key) {
            self.ready.push_back((db, Bytes::copy_from_slice(key)));
        }
    }

    /// Auth required for this connection before most commands.
    fn auth_required(&self, conn: &Conn) -> bool {
        self.options.password.is_some() && !conn.authed
    }
}

/// An in-memory Redis with streams, consumer groups and a virtual clock.
/// See the [module documentation](self).
#[derive(Debug)]
pub struct SimServer {
    core: Core,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: ConnId,
    next_block_seq: u64,
    /// Connections that may have input to execute.
    runnable: VecDeque<ConnId>,
}

impl SimServer {
    /// A server with empty databases whose clock starts at `now`.
    ///
    /// Automatic ids use `1_700_000_000_000 + (now - creation)` milliseconds.
    pub fn new(options: SimOptions, now: Instant) -> Self {
        SimServer {
            core: Core {
                options,
                created: now,
                now,
                dbs: (0..16).map(|_| Db::default()).collect(),
                counts: BTreeMap::new(),
                acks: Vec::new(),
                ready: VecDeque::new(),
            },
            conns: BTreeMap::new(),
            next_conn: 1,
            next_block_seq: 0,
            runnable: VecDeque::new(),
        }
    }

    /// Opens a client connection (RESP2, database 0).
    pub fn connect(&mut self, now: Instant) -> ConnId {
        self.advance(now);
        let id = self.next_conn;
        self.next_conn += 1;
        let authed = self.core.options.password.is_none();
        self.conns.insert(
            id,
            Conn {
                id,
                input: BytesMut::new(),
                output: BytesMut::new(),
                resp3: false,
                db: 0,
                authed,
                name: None,
                closed: false,
                multi: None,
                blocked: None,
            },
        );
        id
    }

    /// Drops a connection with its blocked read, buffered input and output.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
        self.runnable.retain(|c| *c != conn);
    }

    /// Whether the server closed this connection (`QUIT`, protocol error) or
    /// it does not exist. Its last output can still be taken.
    pub fn is_closed(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).map_or(true, |c| c.closed)
    }

    /// Bytes from the client: buffered, and every complete command is
    /// executed in order (a blocked client's later commands wait).
    pub fn receive(&mut self, conn: ConnId, now: Instant, bytes: &[u8]) {
        self.tick(now);
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.closed {
                c.input.extend_from_slice(bytes);
                self.runnable.push_back(conn);
            }
        }
        self.pump();
    }

    /// Moves the virtual clock to `now` (never backwards): blocked reads
    /// whose timeout passed are answered with nil.
    pub fn advance(&mut self, now: Instant) {
        self.tick(now);
        self.pump();
    }

    /// Everything queued for the client since the last call.
    pub fn take_output(&mut self, conn: ConnId) -> Bytes {
        self.conns
            .get_mut(&conn)
            .map(|c| c.output.split().freeze())
            .unwrap_or_default()
    }

    /// Whether replies wait to be taken with [`take_output`](Self::take_output).
    pub fn has_output(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| !c.output.is_empty())
    }

    /// The earliest timeout of a blocked read.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .values()
            .filter_map(|c| c.blocked.as_ref()?.deadline)
            .min()
    }

    /// Whether the client waits in a blocking read.
    pub fn is_blocked(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.blocked.is_some())
    }

    /// The virtual clock's current time.
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// `XADD stream * fields...` on database 0, as if sent by a client at
    /// `now`; wakes blocked readers. Replaces a string at `stream`.
    pub fn xadd(&mut self, now: Instant, stream: &[u8], fields: &[(&[u8], &[u8])]) -> StreamId {
        self.tick(now);
        let key = Bytes::copy_from_slice(stream);
        let last = match self.core.stream(0, &key) {
            Ok(Some(s)) => s.last_id,
            _ => StreamId::ZERO,
        };
        let id = self.core.auto_id(last);
        if let Some(s) = self.core.stream_or_create(0, &key) {
            s.entries.insert(
                id,
                fields
                    .iter()
                    .map(|(f, v)| (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v)))
                    .collect(),
            );
            s.last_id = id;
            s.entries_added += 1;
        }
        self.core.signal(0, &key);
        self.serve_ready();
        self.pump();
        id
    }

    /// Deletes an entry (`XDEL`); its pending entries stay, like in Redis.
    pub fn xdel(&mut self, stream: &[u8], id: StreamId) -> bool {
        match self.core.stream_mut(0, stream) {
            Ok(Some(s)) => s.entries.remove(&id).is_some(),
            _ => false,
        }
    }

    /// The stream's entries in id order (empty if missing or not a stream).
    pub fn entries(&self, stream: &[u8]) -> Vec<(StreamId, Vec<(Bytes, Bytes)>)> {
        match self.core.stream(0, stream) {
            Ok(Some(s)) => s.entries.iter().map(|(id, f)| (*id, f.clone())).collect(),
            _ => Vec::new(),
        }
    }

    /// The group's pending entries in id order.
    pub fn pending(&self, stream: &[u8], group: &[u8]) -> Vec<SimPending> {
        let Ok(Some(s)) = self.core.stream(0, stream) else {
            return Vec::new();
        };
        let Some(g) = s.groups.get(group) else {
            return Vec::new();
        };
        g.pel
            .iter()
            .map(|(id, n)| SimPending {
                id: *id,
                consumer: n.consumer.clone(),
                delivery_count: n.delivery_count,
                last_delivery: n.delivery_time,
            })
            .collect()
    }

    /// `XGROUP DESTROY`; blocked readers of the group get `NOGROUP`.
    pub fn destroy_group(&mut self, stream: &[u8], group: &[u8]) -> bool {
        let removed = match self.core.stream_mut(0, stream) {
            Ok(Some(s)) => s.groups.remove(group).is_some(),
            _ => false,
        };
        if removed {
            self.core.signal(0, stream);
            self.serve_ready();
            self.pump();
        }
        removed
    }

    /// `DEL key`; blocked readers of a deleted stream get an error.
    pub fn delete_key(&mut self, key: &[u8]) -> bool {
        let removed = self.core.remove_key(0, key);
        self.serve_ready();
        self.pump();
        removed
    }

    /// `SET key value` (no expiry), replacing whatever was there.
    pub fn set_string(&mut self, key: &[u8], value: &[u8]) {
        self.core.remove_key(0, key);
        if let Some(d) = self.core.dbs.get_mut(0) {
            d.keys.insert(
                Bytes::copy_from_slice(key),
                Value::Str {
                    value: Bytes::copy_from_slice(value),
                    expires: None,
                },
            );
        }
        self.serve_ready();
        self.pump();
    }

    /// `GET key`: the string there, if any (and not expired).
    pub fn get_string(&self, key: &[u8]) -> Option<Bytes> {
        match self.core.live(0, key) {
            Some(Value::Str { value, .. }) => Some(value.clone()),
            _ => None,
        }
    }

    /// The group's last delivered id.
    pub fn group_last_delivered(&self, stream: &[u8], group: &[u8]) -> Option<StreamId> {
        match self.core.stream(0, stream) {
            Ok(Some(s)) => s.groups.get(group).map(|g| g.last_id),
            _ => None,
        }
    }

    /// Consumers of the group, by name.
    pub fn consumers(&self, stream: &[u8], group: &[u8]) -> Vec<Bytes> {
        match self.core.stream(0, stream) {
            Ok(Some(s)) => s
                .groups
                .get(group)
                .map(|g| g.consumers.keys().cloned().collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Upper-case command name → times executed.
    pub fn command_counts(&self) -> &BTreeMap<String, u64> {
        &self.core.counts
    }

    /// Every id passed to `XACK` (that parsed as an id), in order:
    /// `(stream, group, id, was pending)`.
    pub fn acks(&self) -> &[(Bytes, Bytes, StreamId, bool)] {
        &self.core.acks
    }

    // ---- internals --------------------------------------------------------

    /// Moves the clock and times out blocked reads.
    fn tick(&mut self, now: Instant) {
        if now > self.core.now {
            self.core.now = now;
        }
        let now = self.core.now;
        let mut expired: Vec<(Instant, u64, ConnId)> = self
            .conns
            .iter()
            .filter_map(|(id, c)| {
                let b = c.blocked.as_ref()?;
                let at = b.deadline?;
                (at <= now).then_some((at, b.seq, *id))
            })
            .collect();
        expired.sort();
        for (_, _, id) in expired {
            if let Some(c) = self.conns.get_mut(&id) {
                c.blocked = None;
                c.write(&Reply::NilArray);
                self.runnable.push_back(id);
            }
        }
    }

    /// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: another connection's blocked
    /// read returns as if it timed out (or with an `UNBLOCKED` error); 1 if
    /// one was blocked, else 0.
    fn client_unblock(&mut self, args: &[Bytes]) -> Reply {
        let id = std::str::from_utf8(&args[2])
            .ok()
            .and_then(|t| t.parse::<ConnId>().ok());
        let Some(id) = id else {
            return Reply::err("ERR value is not an integer or out of range");
        };
        let reply = match args.get(3).map(|a| commands::upper(a)).as_deref() {
            None | Some("TIMEOUT") => Reply::NilArray,
            Some("ERROR") => Reply::err("UNBLOCKED client unblocked via CLIENT UNBLOCK"),
            Some(_) => return Reply::err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
        };
        match self.conns.get_mut(&id) {
            Some(c) if c.blocked.is_some() => {
                c.blocked = None;
                c.write(&reply);
                self.runnable.push_back(id);
                Reply::Int(1)
            }
            _ => Reply::Int(0),
        }
    }

    /// Executes pending input of runnable connections until none is left.
    fn pump(&mut self) {
        while let Some(id) = self.runnable.pop_front() {
            self.run_conn(id);
        }
    }

    fn run_conn(&mut self, id: ConnId) {
        loop {
            let Some(mut conn) = self.conns.remove(&id) else {
                return;
            };
            if conn.closed || conn.blocked.is_some() {
                self.conns.insert(id, conn);
                return;
            }
            let parsed = parse_request(&conn.input, self.core.auth_required(&conn));
            match parsed {
                Parsed::Incomplete => {
                    self.conns.insert(id, conn);
                    return;
                }
                Parsed::Skip(n) => {
                    conn.input.advance(n.min(conn.input.len()));
                    self.conns.insert(id, conn);
                }
                Parsed::Error(msg) => {
                    conn.write(&Reply::err(format!("ERR Protocol error: {msg}")));
                    conn.closed = true;
                    conn.input.clear();
                    self.conns.insert(id, conn);
                    return;
                }
                Parsed::Command(args, n) => {
                    conn.input.advance(n.min(conn.input.len()));
                    self.execute(&mut conn, args);
                    if conn.closed {
                        conn.input.clear();
                    }
                    self.conns.insert(id, conn);
                    self.serve_ready();
                }
            }
        }
    }

    /// `processCommand`: lookup, arity, auth, MULTI queueing, then run.
    fn execute(&mut self, conn: &mut Conn, args: Vec<Bytes>) {
        let spec: &Spec = match commands::check(&args) {
            Ok(spec) => spec,
            Err(e) => {
                if let Some(m) = &mut conn.multi {
                    m.failed = true;
                }
                conn.write(&e);
                return;
            }
        };
        if self.core.auth_required(conn) && !spec.no_auth {
            if let Some(m) = &mut conn.multi {
                m.failed = true;
            }
            conn.write(&Reply::err("NOAUTH Authentication required."));
            return;
        }
        if let Some(m) = &mut conn.multi {
            if !matches!(spec.name, "EXEC" | "DISCARD" | "MULTI" | "QUIT") {
                m.queued.push(args);
                conn.write(&Reply::Simple("QUEUED"));
                return;
            }
        }
        if spec.name == "CLIENT" && commands::upper(&args[1]) == "UNBLOCK" {
            let reply = self.client_unblock(&args);
            return conn.write(&reply);
        }
        match self.core.dispatch(conn, &args, false) {
            Outcome::Reply(r) => conn.write(&r),
            Outcome::Close(r) => {
                conn.write(&r);
                conn.closed = true;
            }
            Outcome::Block(mut b) => {
                b.seq = self.next_block_seq;
                self.next_block_seq += 1;
                conn.blocked = Some(b);
            }
        }
    }

    /// Serves clients blocked on keys that were signaled, oldest first.
    fn serve_ready(&mut self) {
        while let Some((db, key)) = self.core.ready.pop_front() {
            let mut waiting: Vec<(u64, ConnId)> = self
                .conns
                .iter()
                .filter_map(|(id, c)| {
                    let b = c.blocked.as_ref()?;
                    (b.db == db && b.keys.contains(&key)).then_some((b.seq, *id))
                })
                .collect();
            waiting.sort();
            for (_, id) in waiting {
                let Some(blocked) = self.conns.get(&id).and_then(|c| c.blocked.clone()) else {
                    continue;
                };
                if let Some(reply) = self.core.serve_blocked(&blocked, &key) {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.blocked = None;
                        c.write(&reply);
                    }
                    self.runnable.push_back(id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
