//! The outbox: writes the consumer's commands and remembers, in order, what
//! each reply will answer. Argument counts and `MULTI` frame counts are
//! worked out here, once per command, never in policy code.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::command::CommandWriter;
use crate::config::{ConnectOptions, ConsumerConfig};
use crate::handshake::{self, HandshakeStep};
use crate::id::{IdBuf, ReadFrom, StreamId};
use crate::reply::ReplyError;

use super::heartbeat::{HEARTBEAT_RELEASE_SCRIPT, HEARTBEAT_SCRIPT, REMOVE_DEAD_SCRIPT};
use super::lease::{LEASE_RELEASE_SCRIPT, LEASE_SCRIPT};
use super::ledger::DeadItem;
use super::lifecycle::Conn;

/// Moves entries to a dead-letter stream, each acked only once its copy is
/// in: Redis transactions do not roll back, so a `MULTI` whose `XADD` failed
/// would still ack (and lose) the entry. Answers one element per entry: the
/// `XACK` count, or the `XADD`'s error (the entry stays pending).
pub const DEAD_LETTER_SCRIPT: &str = "\
-- xgroup dead letters. KEYS: stream, dead-letter stream. ARGV: group,
-- delete (1/0), then per entry: id, pair count n, n field/value pairs.
local out, i = {}, 3
while i <= #ARGV do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  local add = {'XADD', KEYS[2], '*'}
  for j = i + 2, i + 1 + 2 * n do add[#add + 1] = ARGV[j] end
  local added = redis.pcall(unpack(add))
  if type(added) == 'table' and added.err then
    out[#out + 1] = added
  else
    out[#out + 1] = redis.call('XACK', KEYS[1], ARGV[1], id)
    if ARGV[2] == '1' then redis.call('XDEL', KEYS[1], id) end
  end
  i = i + 2 + 2 * n
end
return out
";

/// The fields added to a dead letter after its own.
const DEAD_LETTER_META: usize = 6;

/// What a reply will answer.
#[derive(Debug)]
pub(super) enum Sent {
    Handshake(HandshakeStep),
    GroupCreate,
    Fetch(Fetch),
    /// `XPENDING` for the delivery counts of the ledger's oldest entries
    /// waiting for them.
    Counts,
    /// `XACK` of the ledger's oldest acks out.
    Ack,
    /// `XACKDEL` (delete on ack, Redis 8.2+) of the ledger's oldest acks out.
    AckDel,
    /// One frame of the `MULTI`, `XACK`, `XDEL`, `EXEC` of the ledger's
    /// oldest acks out; `left` frames remain, the last one is `EXEC`'s reply.
    Tx {
        left: usize,
        failed: Option<ReplyError>,
    },
    /// The dead-letter script moving the ledger's oldest dead letters out.
    DeadLetters,
    Info,
    Heartbeat,
    PendingSummary,
    Liveness(Bytes),
    DeadPending(Bytes),
    DelConsumer(Bytes),
    /// Idle refresh of these held ids (`XCLAIM ... JUSTID`).
    Refresh(Vec<StreamId>),
    /// `XINFO GROUPS`: the group's pending count and lag.
    GroupStats,
    /// A page of a liveness-aware sweep: `XPENDING s g IDLE ms start + n`.
    SweepPage,
    /// Is this owner of swept entries alive (`GET` of its heartbeat key)?
    SweepLiveness(Bytes),
    /// Entries of hung batches handed to the released-entries name
    /// (`XCLAIM ... JUSTID`).
    Release(Vec<StreamId>),
    /// Watching another process's token in this consumer's heartbeat key
    /// (`GET`).
    NameWatch,
    /// The heartbeat key deleted while it holds our token, on a graceful
    /// stop (`EVAL`).
    NameRelease,
    /// `ASKING` before a command, at the node a slot is being migrated to.
    Asking,
    /// The ordered mode's lease beat ([`LEASE_SCRIPT`]).
    LeaseBeat,
    /// The ordered mode's lease released ([`LEASE_RELEASE_SCRIPT`]).
    LeaseRelease,
    /// `CLIENT UNBLOCK` of the combined read of a consumer of several
    /// streams (see [`MultiConsumer`](super::MultiConsumer)).
    Unblock,
}

/// Which read or claim a fetch is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fetch {
    Replay,
    Claim,
    Read,
    Redeliver,
    Failover(Bytes),
    /// The `XCLAIM` of a liveness-aware sweep page.
    Sweep,
}

/// A command sent and the time its reply is due by.
#[derive(Debug)]
pub(super) struct SentCmd {
    pub(super) what: Sent,
    pub(super) deadline: Instant,
}

/// Bytes to write and the replies they will bring, in order, per
/// connection: the control connection's here, the read connection's (reads
/// of new entries, when they have their own) in `read`.
#[derive(Debug)]
pub(super) struct Outbox {
    stream: Bytes,
    group: Bytes,
    consumer: Bytes,
    reply_timeout: Duration,
    wire: Wire,
    sent: VecDeque<SentCmd>,
    read: Lane,
    /// Reads of new entries made through a consumer of several streams'
    /// combined read instead of `read`'s wire (see `combined`).
    asks: Option<ReadAsks>,
}

/// A read of new entries a part of a consumer of several streams asks the
/// combined read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReadAsk {
    pub(super) count: u64,
    pub(super) block: Option<Duration>,
}

/// The reads of new entries asked for and not yet answered: those waiting
/// to go into a combined read, then those in one out. `epoch` counts the
/// connections lost: an answer to a read asked before is not one of these.
#[derive(Debug, Default)]
struct ReadAsks {
    waiting: VecDeque<ReadAsk>,
    out: usize,
    epoch: u64,
}

/// One connection's bytes to write and replies awaited.
#[derive(Debug, Default)]
struct Lane {
    wire: Wire,
    sent: VecDeque<SentCmd>,
}

/// The bytes to write, and how many commands they hold so far (a
/// transaction's frames are counted from it). Its `Debug` shows only their
/// length: they may hold the handshake's `AUTH`.
#[derive(Default)]
struct Wire {
    out: BytesMut,
    written: usize,
    /// Each command goes after an `ASKING` (the stream's slot is being
    /// migrated to the node this connection is open to).
    asking: bool,
    /// Inside a transaction: `ASKING` before `MULTI` holds for all of it.
    in_tx: bool,
    /// `ASKING`s written whose replies are not yet awaited.
    askings: usize,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("unwritten_bytes", &self.out.len())
            .field("written", &self.written)
            .finish()
    }
}

impl Wire {
    fn begin(&mut self, argc: usize) -> CommandWriter<'_> {
        if self.asking && !self.in_tx {
            CommandWriter::begin(&mut self.out, 1).arg(b"ASKING");
            self.askings += 1;
        }
        self.written += 1;
        CommandWriter::begin(&mut self.out, argc)
    }

    fn clear(&mut self) {
        self.out.clear();
        self.in_tx = false;
        self.askings = 0;
    }
}

impl Outbox {
    pub(super) fn new(cfg: &ConsumerConfig) -> Self {
        Outbox {
            stream: cfg.stream.clone(),
            group: cfg.group.clone(),
            consumer: cfg.consumer.clone(),
            reply_timeout: cfg.reply_timeout,
            wire: Wire::default(),
            sent: VecDeque::new(),
            read: Lane::default(),
            asks: None,
        }
    }

    // ----- reads combined with other streams' -----

    /// Reads of new entries are asked for (see [`read_ask`](Self::read_ask))
    /// instead of written.
    pub(super) fn ask_reads(&mut self) {
        self.asks.get_or_insert_with(ReadAsks::default);
    }

    /// Reads of new entries are written again (what was asked is lost).
    pub(super) fn stop_asking(&mut self) {
        self.asks = None;
    }

    /// The oldest read asked for and not yet in a combined read.
    pub(super) fn read_ask(&self) -> Option<ReadAsk> {
        self.asks.as_ref()?.waiting.front().copied()
    }

    /// The oldest read asked for goes out in a combined read; returns the
    /// epoch its answer must name.
    pub(super) fn take_read_ask(&mut self) -> Option<u64> {
        let asks = self.asks.as_mut()?;
        asks.waiting.pop_front()?;
        asks.out += 1;
        Some(asks.epoch)
    }

    /// Forgets the reads asked for that no combined read carries yet;
    /// returns how many.
    pub(super) fn drop_waiting_asks(&mut self) -> usize {
        self.asks
            .as_mut()
            .map_or(0, |a| a.waiting.drain(..).count())
    }

    /// Reads asked for and in a combined read out, not yet answered.
    pub(super) fn read_asks_out(&self) -> usize {
        self.asks.as_ref().map_or(0, |a| a.out)
    }

    /// The oldest read out is answered: `false` if the answer is not to one
    /// of ours (asked before the connection was lost).
    pub(super) fn read_ask_answered(&mut self, epoch: u64) -> bool {
        match self.asks.as_mut() {
            Some(a) if a.epoch == epoch && a.out > 0 => {
                a.out -= 1;
                true
            }
            _ => false,
        }
    }

    /// Reads asked for, waiting or out.
    fn asked(&self) -> usize {
        self.asks.as_ref().map_or(0, |a| a.waiting.len() + a.out)
    }

    // ----- what was sent -----

    /// Bytes to write, if any, and the connection they go on (the control
    /// connection's first).
    pub(super) fn take_bytes(&mut self) -> Option<(Conn, Bytes)> {
        [
            (Conn::Control, &mut self.wire),
            (Conn::Read, &mut self.read.wire),
        ]
        .into_iter()
        .find(|(_, wire)| !wire.out.is_empty())
        .map(|(conn, wire)| (conn, wire.out.split().freeze()))
    }

    /// Forgets everything unwritten and unanswered (the connections are
    /// gone).
    pub(super) fn clear(&mut self) {
        self.wire.clear();
        self.sent.clear();
        self.read.wire.clear();
        self.read.sent.clear();
        if let Some(asks) = self.asks.as_mut() {
            asks.waiting.clear();
            asks.out = 0;
            asks.epoch += 1;
        }
    }

    /// Whether every command from now on goes after an `ASKING` (the
    /// connections are open to the node the stream's slot is being
    /// migrated to).
    pub(super) fn set_asking(&mut self, on: bool) {
        self.wire.asking = on;
        self.read.wire.asking = on;
    }

    /// The command the next reply on `conn` answers.
    pub(super) fn next_answered(&mut self, conn: Conn) -> Option<SentCmd> {
        self.sent_on(conn).pop_front()
    }

    fn sent_on(&mut self, conn: Conn) -> &mut VecDeque<SentCmd> {
        match conn {
            // The sentinel's bytes never come here (see `Discovery`).
            Conn::Control | Conn::Discovery => &mut self.sent,
            Conn::Read => &mut self.read.sent,
        }
    }

    /// Every unanswered command, on any connection.
    fn all_sent(&self) -> impl Iterator<Item = &SentCmd> {
        self.sent.iter().chain(&self.read.sent)
    }

    /// A transaction's next frame is awaited (the one just answered was
    /// `MULTI` or `QUEUED`).
    pub(super) fn await_tx(&mut self, now: Instant, left: usize, failed: Option<ReplyError>) {
        let deadline = now + self.reply_timeout;
        let what = Sent::Tx { left, failed };
        self.sent.push_front(SentCmd { what, deadline });
    }

    /// The unanswered command whose reply is due first (each connection's
    /// replies come in order: only the oldest of each can be the first).
    pub(super) fn oldest(&self) -> Option<&SentCmd> {
        [self.sent.front(), self.read.sent.front()]
            .into_iter()
            .flatten()
            .min_by_key(|c| c.deadline)
    }

    /// Whether every unanswered command on `conn` is a fetch (a quiet
    /// point: only reads and claims, which may stay out, are awaited).
    pub(super) fn only_fetches_out(&mut self, conn: Conn) -> bool {
        self.sent_on(conn)
            .iter()
            .all(|c| matches!(c.what, Sent::Fetch(_)))
    }

    /// Reads and claims whose reply has not come yet (reads asked of a
    /// combined read among them).
    pub(super) fn fetches_out(&self) -> usize {
        self.count(Sent::is_fetch) + self.asked()
    }

    /// Reads and claims on `conn` whose reply has not come yet (on the read
    /// connection, reads asked of a combined read too).
    pub(super) fn fetches_out_on(&mut self, conn: Conn) -> usize {
        let asked = if conn == Conn::Read { self.asked() } else { 0 };
        let sent = self.sent_on(conn);
        sent.iter().filter(|c| c.what.is_fetch()).count() + asked
    }

    /// Whether only new-entries reads are out among the fetches.
    pub(super) fn only_new_reads_out(&self) -> bool {
        self.count(|w| {
            matches!(w, Sent::Fetch(k) if *k != Fetch::Read)
                || matches!(
                    w,
                    Sent::DeadPending(_) | Sent::SweepPage | Sent::SweepLiveness(_)
                )
        }) == 0
    }

    /// Whether a replay, claim or retry of ours is out: it touches held
    /// entries at the server, and its reply says when.
    pub(super) fn touching_out(&self) -> bool {
        self.count(|w| {
            matches!(
                w,
                Sent::Fetch(Fetch::Replay | Fetch::Claim | Fetch::Redeliver | Fetch::Sweep)
            )
        }) > 0
    }

    /// Whether an idle refresh is out.
    pub(super) fn refresh_out(&self) -> bool {
        self.count(|w| matches!(w, Sent::Refresh(_))) > 0
    }

    fn count(&self, f: impl Fn(&Sent) -> bool) -> usize {
        self.all_sent().filter(|c| f(&c.what)).count()
    }

    // ----- commands -----

    /// `HELLO`/`AUTH`, `CLIENT SETNAME`, `SELECT` on `conn`; returns how
    /// many replies the handshake awaits.
    pub(super) fn handshake(
        &mut self,
        now: Instant,
        conn: Conn,
        opts: &ConnectOptions,
        check_role: bool,
    ) -> usize {
        let wire = match conn {
            Conn::Control | Conn::Discovery => &mut self.wire,
            Conn::Read => &mut self.read.wire,
        };
        let steps = handshake::write_handshake(&mut wire.out, opts, &self.consumer, check_role);
        wire.written += steps.len();
        for step in &steps {
            self.push_on(conn, now, Sent::Handshake(*step), Duration::ZERO);
        }
        steps.len()
    }

    /// `INFO server` (which commands the server has).
    pub(super) fn info_server(&mut self, now: Instant) {
        self.wire.begin(2).arg(b"INFO").arg(b"server");
        self.push(now, Sent::Info, Duration::ZERO);
    }

    /// `XGROUP CREATE s g <start> [MKSTREAM]`.
    pub(super) fn group_create(&mut self, now: Instant, start: &[u8], make_stream: bool) {
        let mut w = self.wire.begin(5 + usize::from(make_stream));
        w.arg(b"XGROUP")
            .arg(b"CREATE")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(start);
        if make_stream {
            w.arg(b"MKSTREAM");
        }
        drop(w);
        self.push(now, Sent::GroupCreate, Duration::ZERO);
    }

    /// `XREADGROUP GROUP g me COUNT n [BLOCK ms] STREAMS s <from>` on
    /// `conn`; a blocking read's reply is due `block` later.
    pub(super) fn read(
        &mut self,
        now: Instant,
        (conn, kind): (Conn, Fetch),
        from: ReadFrom,
        count: u64,
        block: Option<Duration>,
    ) {
        if let (Conn::Read, Some(asks)) = (conn, self.asks.as_mut()) {
            asks.waiting.push_back(ReadAsk { count, block });
            return;
        }
        let block_ms = block_ms(block);
        let wire = match conn {
            Conn::Control | Conn::Discovery => &mut self.wire,
            Conn::Read => &mut self.read.wire,
        };
        let read = XReadGroup {
            group: &self.group,
            consumer: &self.consumer,
            count,
            block_ms,
        };
        read.write(wire.begin(read.argc(1)), &[&self.stream], from);
        let extra = block_ms.map_or(Duration::ZERO, Duration::from_millis);
        self.push_on(conn, now, Sent::Fetch(kind), extra);
    }

    /// `XAUTOCLAIM s g me <min-idle> <cursor> COUNT n`.
    pub(super) fn autoclaim(
        &mut self,
        now: Instant,
        min_idle: Duration,
        cursor: StreamId,
        count: u64,
    ) {
        self.wire
            .begin(8)
            .arg(b"XAUTOCLAIM")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg_u64(min_idle.as_millis() as u64)
            .arg_id(cursor)
            .arg(b"COUNT")
            .arg_u64(count);
        self.push(now, Sent::Fetch(Fetch::Claim), Duration::ZERO);
    }

    /// `XCLAIM s g me <min-idle> ids...`: the entries come back whole.
    pub(super) fn claim(
        &mut self,
        now: Instant,
        kind: Fetch,
        ids: &[StreamId],
        min_idle: Duration,
    ) {
        self.xclaim(ids, min_idle, false);
        self.push(now, Sent::Fetch(kind), Duration::ZERO);
    }

    /// `XCLAIM s g me <min-idle> ids... JUSTID`: touches what is still ours.
    pub(super) fn refresh(&mut self, now: Instant, ids: Vec<StreamId>, min_idle: Duration) {
        self.xclaim(&ids, min_idle, true);
        self.push(now, Sent::Refresh(ids), Duration::ZERO);
    }

    /// `XPENDING s g IDLE <min-idle> <start> + <n>`: a page of the pending
    /// entries idle for at least `min_idle`, from `start` on, with owners.
    pub(super) fn sweep_page(
        &mut self,
        now: Instant,
        min_idle: Duration,
        start: StreamId,
        count: u64,
    ) {
        self.wire
            .begin(8)
            .arg(b"XPENDING")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(b"IDLE")
            .arg_u64(min_idle.as_millis() as u64)
            .arg_id(start)
            .arg(b"+")
            .arg_u64(count);
        self.push(now, Sent::SweepPage, Duration::ZERO);
    }

    /// `GET key`: is `owner` (of entries a sweep found idle) alive?
    pub(super) fn sweep_liveness(&mut self, now: Instant, owner: Bytes, key: &[u8]) {
        self.wire.begin(2).arg(b"GET").arg(key);
        self.push(now, Sent::SweepLiveness(owner), Duration::ZERO);
    }

    /// `XCLAIM s g <to> <min-idle> ids... JUSTID`: hands held entries to
    /// `to` (the delivery count stays as it is).
    pub(super) fn release(
        &mut self,
        now: Instant,
        to: &[u8],
        ids: Vec<StreamId>,
        min_idle: Duration,
    ) {
        let mut w = self.wire.begin(6 + ids.len());
        w.arg(b"XCLAIM")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(to)
            .arg_u64(min_idle.as_millis() as u64);
        for id in &ids {
            w.arg_id(*id);
        }
        w.arg(b"JUSTID");
        drop(w);
        self.push(now, Sent::Release(ids), Duration::ZERO);
    }

    fn xclaim(&mut self, ids: &[StreamId], min_idle: Duration, just_id: bool) {
        let mut w = self.wire.begin(5 + ids.len() + usize::from(just_id));
        w.arg(b"XCLAIM")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg_u64(min_idle.as_millis() as u64);
        for id in ids {
            w.arg_id(*id);
        }
        if just_id {
            w.arg(b"JUSTID");
        }
    }

    /// `XPENDING s g <start> <end> <n> me`: delivery counts, from `start`
    /// (`(start` when `exclusive`).
    pub(super) fn pending_counts(
        &mut self,
        now: Instant,
        (start, exclusive): (StreamId, bool),
        end: StreamId,
        page: u64,
    ) {
        let mut start_arg = Vec::with_capacity(42);
        if exclusive {
            start_arg.push(b'(');
        }
        start_arg.extend_from_slice(start.encode(&mut IdBuf::new()));
        self.wire
            .begin(7)
            .arg(b"XPENDING")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&start_arg)
            .arg_id(end)
            .arg_u64(page)
            .arg(&self.consumer);
        self.push(now, Sent::Counts, Duration::ZERO);
    }

    /// `XACK s g ids...`.
    pub(super) fn ack(&mut self, now: Instant, ids: &[StreamId]) {
        self.xack(ids);
        self.push(now, Sent::Ack, Duration::ZERO);
    }

    /// `XACKDEL s g IDS n ids...` (Redis 8.2+).
    pub(super) fn ack_delete(&mut self, now: Instant, ids: &[StreamId]) {
        let mut w = self.wire.begin(5 + ids.len());
        w.arg(b"XACKDEL")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(b"IDS")
            .arg_u64(ids.len() as u64);
        for id in ids {
            w.arg_id(*id);
        }
        drop(w);
        self.push(now, Sent::AckDel, Duration::ZERO);
    }

    /// `MULTI`, `XACK`, `XDEL`, `EXEC`: where the server has no `XACKDEL`.
    pub(super) fn ack_delete_tx(&mut self, now: Instant, ids: &[StreamId]) {
        self.transaction(now, |o| {
            o.xack(ids);
            o.xdel(ids);
        });
    }

    /// The dead-letter script ([`DEAD_LETTER_SCRIPT`]): per item an `XADD`
    /// to `key` (its fields, then where it came from and why) and, only if
    /// that worked, its `XACK` (and `XDEL` when acked entries are deleted).
    pub(super) fn dead_letter_move(
        &mut self,
        now: Instant,
        key: &[u8],
        items: &[DeadItem],
        delete: bool,
    ) {
        let pairs = |d: &DeadItem| d.fields.as_ref().map_or(0, |f| f.len()) + DEAD_LETTER_META;
        let argc = 7 + items.iter().map(|d| 2 + 2 * pairs(d)).sum::<usize>();
        let mut w = self.wire.begin(argc);
        w.arg(b"EVAL")
            .arg(DEAD_LETTER_SCRIPT.as_bytes())
            .arg(b"2")
            .arg(&self.stream)
            .arg(key)
            .arg(&self.group)
            .arg(if delete { b"1" } else { b"0" });
        for item in items {
            w.arg_id(item.id).arg_u64(pairs(item) as u64);
            for (f, v) in item.fields.iter().flatten() {
                w.arg(f).arg(v);
            }
            let mut id = IdBuf::new();
            let mut deliveries = itoa::Buffer::new();
            let meta: [(&[u8], &[u8]); DEAD_LETTER_META] = [
                (b"dlq_stream", &self.stream),
                (b"dlq_id", item.id.encode(&mut id)),
                (b"dlq_group", &self.group),
                (b"dlq_consumer", &self.consumer),
                (
                    b"dlq_deliveries",
                    deliveries.format(item.attempt).as_bytes(),
                ),
                (b"dlq_reason", item.reason.as_bytes()),
            ];
            for (f, v) in meta {
                w.arg(f).arg(v);
            }
        }
        drop(w);
        self.push(now, Sent::DeadLetters, Duration::ZERO);
    }

    /// The heartbeat script ([`HEARTBEAT_SCRIPT`]): `key` set to `value`
    /// (`<token>:<beat>`) with a `ttl_ms` expiry only when it is absent,
    /// holds `token`, or holds exactly `expected` (a takeover); answers
    /// what it held.
    pub(super) fn heartbeat(
        &mut self,
        now: Instant,
        key: &[u8],
        (token, value): (&[u8], &[u8]),
        ttl_ms: u64,
        expected: Option<&[u8]>,
    ) {
        let mut w = self.wire.begin(7 + usize::from(expected.is_some()));
        w.arg(b"EVAL")
            .arg(HEARTBEAT_SCRIPT.as_bytes())
            .arg(b"1")
            .arg(key)
            .arg(token)
            .arg(value)
            .arg_u64(ttl_ms);
        if let Some(expected) = expected {
            w.arg(expected);
        }
        drop(w);
        self.push(now, Sent::Heartbeat, Duration::ZERO);
    }

    /// The lease beat ([`LEASE_SCRIPT`]) of the stream at `index`:
    /// membership renewed, lease renewed or taken (`take`: even with
    /// another its rightful holder).
    pub(super) fn lease_beat(
        &mut self,
        now: Instant,
        keys: &[Bytes; 3],
        token: &[u8],
        (ttl_ms, index, take): (u64, usize, bool),
    ) {
        let mut w = self.wire.begin(11);
        w.arg(b"EVAL")
            .arg(LEASE_SCRIPT.as_bytes())
            .arg(b"3")
            .arg(&keys[0])
            .arg(&keys[1])
            .arg(&keys[2])
            .arg(&self.consumer)
            .arg(token)
            .arg_u64(ttl_ms)
            .arg_u64(index as u64)
            .arg(if take { b"1" } else { b"0" });
        drop(w);
        self.push(now, Sent::LeaseBeat, Duration::ZERO);
    }

    /// The lease released ([`LEASE_RELEASE_SCRIPT`]) if it holds `token`;
    /// `leaving`: the membership too.
    pub(super) fn lease_release(
        &mut self,
        now: Instant,
        keys: &[Bytes; 3],
        token: &[u8],
        leaving: bool,
    ) {
        self.wire
            .begin(8)
            .arg(b"EVAL")
            .arg(LEASE_RELEASE_SCRIPT.as_bytes())
            .arg(b"2")
            .arg(&keys[0])
            .arg(&keys[1])
            .arg(&self.consumer)
            .arg(token)
            .arg(if leaving { b"1" } else { b"0" });
        self.push(now, Sent::LeaseRelease, Duration::ZERO);
    }

    /// `SET key value PX ttl_ms`: a follower's heartbeat (the name is
    /// held by the first stream's part); answered like [`heartbeat`](Self::heartbeat).
    pub(super) fn heartbeat_set(&mut self, now: Instant, key: &[u8], value: &[u8], ttl_ms: u64) {
        self.wire
            .begin(5)
            .arg(b"SET")
            .arg(key)
            .arg(value)
            .arg(b"PX")
            .arg_u64(ttl_ms);
        self.push(now, Sent::Heartbeat, Duration::ZERO);
    }

    /// `GET key`: has the holder of this consumer's name beaten since?
    pub(super) fn name_watch(&mut self, now: Instant, key: &[u8]) {
        self.wire.begin(2).arg(b"GET").arg(key);
        self.push(now, Sent::NameWatch, Duration::ZERO);
    }

    /// The release script ([`HEARTBEAT_RELEASE_SCRIPT`]): `key` deleted
    /// while it holds `token`.
    pub(super) fn name_release(&mut self, now: Instant, key: &[u8], token: &[u8]) {
        self.wire
            .begin(5)
            .arg(b"EVAL")
            .arg(HEARTBEAT_RELEASE_SCRIPT.as_bytes())
            .arg(b"1")
            .arg(key)
            .arg(token);
        self.push(now, Sent::NameRelease, Duration::ZERO);
    }

    /// `XPENDING s g`: which consumers hold entries.
    pub(super) fn pending_summary(&mut self, now: Instant) {
        self.wire
            .begin(3)
            .arg(b"XPENDING")
            .arg(&self.stream)
            .arg(&self.group);
        self.push(now, Sent::PendingSummary, Duration::ZERO);
    }

    /// `GET key`: is `consumer`'s heartbeat there?
    pub(super) fn liveness(&mut self, now: Instant, consumer: Bytes, key: &[u8]) {
        self.wire.begin(2).arg(b"GET").arg(key);
        self.push(now, Sent::Liveness(consumer), Duration::ZERO);
    }

    /// `XPENDING s g - + n consumer`: a dead consumer's entries.
    pub(super) fn dead_pending(&mut self, now: Instant, consumer: Bytes, count: u64) {
        self.wire
            .begin(7)
            .arg(b"XPENDING")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(b"-")
            .arg(b"+")
            .arg_u64(count)
            .arg(&consumer);
        self.push(now, Sent::DeadPending(consumer), Duration::ZERO);
    }

    /// `XINFO GROUPS s`: every group's counts (this one's are kept).
    pub(super) fn group_stats(&mut self, now: Instant) {
        self.wire
            .begin(3)
            .arg(b"XINFO")
            .arg(b"GROUPS")
            .arg(&self.stream);
        self.push(now, Sent::GroupStats, Duration::ZERO);
    }

    /// `consumer` removed from the group if it is still dead (no key at
    /// `heartbeat_key`) and holds nothing ([`REMOVE_DEAD_SCRIPT`]).
    pub(super) fn del_consumer(&mut self, now: Instant, consumer: Bytes, heartbeat_key: &[u8]) {
        self.wire
            .begin(7)
            .arg(b"EVAL")
            .arg(REMOVE_DEAD_SCRIPT.as_bytes())
            .arg(b"2")
            .arg(&self.stream)
            .arg(heartbeat_key)
            .arg(&self.group)
            .arg(&consumer);
        self.push(now, Sent::DelConsumer(consumer), Duration::ZERO);
    }

    // ----- helpers -----

    /// A command on the control connection.
    fn push(&mut self, now: Instant, what: Sent, extra: Duration) {
        self.push_on(Conn::Control, now, what, extra);
    }

    fn push_on(&mut self, conn: Conn, now: Instant, what: Sent, extra: Duration) {
        let deadline = now + self.reply_timeout + extra;
        let wire = match conn {
            Conn::Control | Conn::Discovery => &mut self.wire,
            Conn::Read => &mut self.read.wire,
        };
        let askings = std::mem::take(&mut wire.askings);
        let asking_deadline = now + self.reply_timeout;
        let sent = self.sent_on(conn);
        for _ in 0..askings {
            let deadline = asking_deadline;
            sent.push_back(SentCmd {
                what: Sent::Asking,
                deadline,
            });
        }
        self.sent_on(conn).push_back(SentCmd { what, deadline });
    }

    /// `MULTI`, what `write` writes, `EXEC`: one awaited reply per frame.
    fn transaction(&mut self, now: Instant, write: impl FnOnce(&mut Self)) {
        let before = self.wire.written;
        self.wire.begin(1).arg(b"MULTI");
        self.wire.in_tx = true;
        write(self);
        self.wire.begin(1).arg(b"EXEC");
        self.wire.in_tx = false;
        let left = self.wire.written - before;
        self.push(now, Sent::Tx { left, failed: None }, Duration::ZERO);
    }

    /// `CLIENT UNBLOCK <id>`: a combined read blocked on the other
    /// streams returns, so one that asks to read now joins the next.
    pub(super) fn client_unblock(&mut self, now: Instant, id: u64) {
        self.wire
            .begin(3)
            .arg(b"CLIENT")
            .arg(b"UNBLOCK")
            .arg_u64(id);
        self.push(now, Sent::Unblock, Duration::ZERO);
    }

    fn xack(&mut self, ids: &[StreamId]) {
        let mut w = self.wire.begin(3 + ids.len());
        w.arg(b"XACK").arg(&self.stream).arg(&self.group);
        for id in ids {
            w.arg_id(*id);
        }
    }

    fn xdel(&mut self, ids: &[StreamId]) {
        let mut w = self.wire.begin(2 + ids.len());
        w.arg(b"XDEL").arg(&self.stream);
        for id in ids {
            w.arg_id(*id);
        }
    }
}

/// `BLOCK` in whole milliseconds, at least 1 (`BLOCK 0` would wait forever).
pub(super) fn block_ms(block: Option<Duration>) -> Option<u64> {
    block.map(|b| (b.as_millis() as u64).max(1))
}

/// `XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS <keys> <ids>`, for one
/// stream (`Outbox::read`) or several (a combined read).
pub(super) struct XReadGroup<'a> {
    pub(super) group: &'a [u8],
    pub(super) consumer: &'a [u8],
    pub(super) count: u64,
    pub(super) block_ms: Option<u64>,
}

impl XReadGroup<'_> {
    /// Its argument count for `streams` keys.
    pub(super) fn argc(&self, streams: usize) -> usize {
        7 + 2 * usize::from(self.block_ms.is_some()) + 2 * streams
    }

    /// Writes it on `w` (begun with [`argc`](Self::argc)): every key read
    /// from `from`.
    pub(super) fn write(&self, mut w: CommandWriter<'_>, keys: &[&[u8]], from: ReadFrom) {
        w.arg(b"XREADGROUP")
            .arg(b"GROUP")
            .arg(self.group)
            .arg(self.consumer)
            .arg(b"COUNT")
            .arg_u64(self.count);
        if let Some(ms) = self.block_ms {
            w.arg(b"BLOCK").arg_u64(ms);
        }
        w.arg(b"STREAMS");
        for key in keys {
            w.arg(key);
        }
        for _ in keys {
            match from {
                ReadFrom::New => w.arg(b">"),
                ReadFrom::PendingAfter(id) => w.arg_id(id),
            };
        }
    }
}

impl Sent {
    /// A read or claim (or a step of one): entries may come of it.
    fn is_fetch(&self) -> bool {
        matches!(
            self,
            Sent::Fetch(_) | Sent::DeadPending(_) | Sent::SweepPage | Sent::SweepLiveness(_)
        )
    }

    /// The command's name, for a timed-out reply.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Sent::Handshake(step) => step.name(),
            Sent::GroupCreate => "XGROUP CREATE",
            Sent::Fetch(Fetch::Claim) => "XAUTOCLAIM",
            Sent::Fetch(Fetch::Redeliver | Fetch::Failover(_) | Fetch::Sweep) => "XCLAIM",
            Sent::Fetch(Fetch::Replay | Fetch::Read) => "XREADGROUP",
            Sent::Counts => "XPENDING",
            Sent::Ack => "XACK",
            Sent::AckDel => "XACKDEL",
            Sent::Tx { .. } => "MULTI/EXEC",
            Sent::DeadLetters => "EVAL",
            Sent::Info => "INFO",
            Sent::Heartbeat | Sent::NameRelease => "EVAL",
            Sent::LeaseBeat | Sent::LeaseRelease => "EVAL",
            Sent::NameWatch => "GET",
            Sent::PendingSummary | Sent::DeadPending(_) => "XPENDING",
            Sent::Liveness(_) => "GET",
            Sent::DelConsumer(_) => "EVAL",
            Sent::Refresh(_) | Sent::Release(_) => "XCLAIM",
            Sent::SweepPage => "XPENDING",
            Sent::SweepLiveness(_) => "GET",
            Sent::GroupStats => "XINFO GROUPS",
            Sent::Asking => "ASKING",
            Sent::Unblock => "CLIENT UNBLOCK",
        }
    }
}

#[cfg(test)]
mod tests;
