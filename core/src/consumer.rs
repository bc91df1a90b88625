//! The consumer-group state machine.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::command::CommandWriter;
use crate::config::{ConsumerConfig, DeadLetter};
use crate::error::{Error, ProtocolError, ServerError, ServerErrorKind};
use crate::handshake::{self, HandshakeStep};
use crate::id::{IdBuf, ReadFrom, StreamId};
use crate::reply::{self, Entry, Fields, GroupCreated, ReplyError, Value};
use crate::resp::{Decoder, Frame};

/// Identifies a batch handed to the application until it is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub u64);

/// Where the entries of a batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// Never delivered before (`XREADGROUP ... >`).
    New,
    /// This consumer's own pending entries, replayed after a (re)connection.
    OwnPending,
    /// Claimed from a consumer that left them idle (`XAUTOCLAIM`), or from
    /// one whose heartbeat stopped.
    Claimed,
    /// Redelivered to this consumer because its handler asked for a retry.
    Retry,
}

/// One stream entry handed to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Entry id.
    pub id: StreamId,
    /// Field/value pairs in the order the server sent them.
    pub fields: Fields,
    /// Delivery count from the server: 1 for new entries, the server's count
    /// (`XPENDING`) for replayed and claimed ones.
    pub attempt: u64,
}

/// Entries to handle; complete it with [`Consumer::handle_completion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Its id, to complete it with.
    pub id: BatchId,
    /// Stream key.
    pub stream: Bytes,
    /// Where the entries came from.
    pub source: Source,
    /// The entries, in id order.
    pub messages: Vec<Message>,
}

/// What the handler decided for a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Acknowledge every entry of the batch.
    AckAll,
    /// Acknowledge these ids only; the rest stay pending (redelivered later).
    /// Ids that are not in the batch are ignored with a warning.
    AckOnly(Vec<StreamId>),
    /// Acknowledge nothing; every entry stays pending and is redelivered
    /// (by this consumer's replay or another's claim).
    AckNone,
    /// One decision per message. Messages not listed stay pending, like
    /// [`Disposition::Keep`]; ids not in the batch are ignored with a warning.
    Each(Vec<(StreamId, Disposition)>),
}

/// What to do with one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disposition {
    /// Acknowledge it.
    Ack,
    /// Leave it pending (redelivered by a replay or a claim, later).
    Keep,
    /// Redeliver it to this consumer after the configured retry backoff.
    Retry,
    /// Redeliver it to this consumer, not before this instant; meanwhile its
    /// idle time is kept fresh so no other consumer claims it while this one
    /// is alive.
    RetryAt(Instant),
    /// Move it to the dead letters (see [`DeadLetter`]), with a reason.
    DeadLetter(String),
}

/// What happened to a dead-lettered entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLettered {
    /// Entry id.
    pub id: StreamId,
    /// Its delivery count.
    pub deliveries: u64,
    /// Why.
    pub reason: String,
    /// Where it went.
    pub action: DeadLetterAction,
}

/// Where a dead-lettered entry went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterAction {
    /// Written to this stream and acknowledged, atomically.
    Moved(Bytes),
    /// Acknowledged and dropped.
    Dropped,
    /// Left pending (no dead-letter stream configured, or `KeepPending`).
    KeptPending,
}

/// Something the application or the adapter must act on.
///
/// Not `#[non_exhaustive]` on purpose: a driver that matches every variant
/// fails to compile when a new one is added, instead of dropping it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Open a connection, then call [`Consumer::handle_connected`] or
    /// [`Consumer::handle_connect_failed`].
    Connect,
    /// Close the current connection. Do not call
    /// [`Consumer::handle_disconnected`] for it: the core already knows.
    Disconnect,
    /// Hand this batch to the handler.
    Deliver(Batch),
    /// An entry was dead-lettered (the failure callback's input).
    DeadLettered(DeadLettered),
    /// Something went wrong and was handled; worth logging.
    Warning(Warning),
    /// The consumer stopped: `None` after a graceful shutdown, the cause
    /// otherwise. No further events follow.
    Stopped(Option<Error>),
}

/// A problem the consumer handled by itself.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Warning {
    /// The connection failed or was given up; reconnecting after `delay`.
    Reconnecting {
        /// Consecutive attempts so far.
        attempt: u32,
        /// Wait before the next attempt.
        delay: Duration,
        /// Why.
        cause: Error,
    },
    /// The group vanished while running (`NOGROUP`) and was created again.
    GroupRecreated,
    /// Pending entries deleted from the stream were acknowledged without
    /// reaching the handler.
    DeletedEntriesAcked {
        /// How many.
        count: usize,
    },
    /// A completion named a batch that is not in flight (already completed,
    /// or never delivered).
    UnknownBatch(BatchId),
    /// `AckOnly` named ids that were not in the batch; they were not acked.
    AckIdsNotInBatch {
        /// The batch.
        batch: BatchId,
        /// The ignored ids.
        ids: Vec<StreamId>,
    },
    /// This consumer's heartbeat key had expired: it was stalled longer than
    /// the heartbeat timeout, and others may have claimed its entries.
    HeartbeatLapsed,
    /// A consumer whose heartbeat stopped was taken for dead; its pending
    /// entries are being claimed.
    ConsumerDead {
        /// Its name.
        consumer: Bytes,
    },
    /// A dead consumer with nothing pending left was removed from the group.
    ConsumerRemoved {
        /// Its name.
        consumer: Bytes,
    },
    /// A handler has worked on a batch longer than the handler timeout: its
    /// entries are no longer kept from other consumers' claims.
    HandlerHung {
        /// The batch.
        batch: BatchId,
        /// How long it has been working.
        after: Duration,
    },
    /// The handler failed (e.g. panicked) on a batch; it was not
    /// acknowledged and will be redelivered.
    HandlerFailed {
        /// The batch.
        batch: BatchId,
        /// What happened (the panic message, for a panic).
        reason: String,
    },
    /// The drain deadline passed with work unfinished; it stays pending for
    /// this consumer's next start or another consumer's claim.
    DrainTimedOut {
        /// Batches still in the handler.
        batches: usize,
        /// Acknowledgements not confirmed by the server.
        unacked: usize,
    },
}

/// Why a deadline exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// Time to try connecting again.
    Reconnect,
    /// Time for the next claim sweep.
    ClaimSweep,
    /// A reply is overdue: the connection is taken for dead.
    Reply,
    /// The shutdown drain period ends.
    Drain,
    /// Time for the next heartbeat (and liveness check of the others).
    Heartbeat,
    /// A retried entry is due for redelivery.
    Retry,
    /// Time to refresh the idle time of entries this consumer holds.
    Refresh,
    /// Polling mode: time for the next non-blocking read.
    Poll,
}

/// Counters since the consumer was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages handed to the handler.
    pub delivered: u64,
    /// Acknowledgements the server confirmed (sum of `XACK` replies).
    pub acked: u64,
    /// Messages handed out with an attempt above 1.
    pub redelivered: u64,
    /// Entries claimed from other consumers.
    pub claimed: u64,
    /// Deleted pending entries acknowledged without delivery.
    pub deleted_acked: u64,
    /// Errors met (connection failures, protocol errors, server errors).
    pub errors: u64,
    /// Connections opened successfully.
    pub connections: u64,
    /// Batches whose handler failed (panicked).
    pub handler_failures: u64,
    /// Messages the handler asked to retry.
    pub retried: u64,
    /// Messages dead-lettered (moved, dropped or kept).
    pub dead_lettered: u64,
    /// Consumers taken for dead after their heartbeat stopped.
    pub dead_consumers: u64,
    /// Held entries an idle refresh found claimed by another consumer (this
    /// one stalled past the min-idle time): no longer refreshed or retried
    /// here; a handler's ack of them is still sent.
    pub lost_to_others: u64,
}

/// What a consumer is and has done, as adapters report it from `info()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// Stream key (lossy UTF-8).
    pub stream: String,
    /// Group name (lossy UTF-8).
    pub group: String,
    /// Consumer name (lossy UTF-8).
    pub consumer: String,
    /// Type name of the handler.
    pub handler: &'static str,
    /// Counters: delivered, acked, redelivered, claimed, errors, ...
    pub stats: Stats,
    /// Whether a connection is up.
    pub connected: bool,
}

impl ConsumerInfo {
    /// Info for a consumer with `config` and a handler of type name `handler`.
    pub fn new(config: &ConsumerConfig, handler: &'static str) -> Self {
        ConsumerInfo {
            stream: String::from_utf8_lossy(config.stream()).into_owned(),
            group: String::from_utf8_lossy(config.group()).into_owned(),
            consumer: String::from_utf8_lossy(config.consumer()).into_owned(),
            handler,
            stats: Stats::default(),
            connected: false,
        }
    }
}

/// The message of a caught handler panic, for
/// [`Consumer::handle_handler_failed`].
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        format!("handler panicked: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        format!("handler panicked: {s}")
    } else {
        "handler panicked".to_owned()
    }
}

/// A Redis Streams consumer-group consumer as a sans-IO state machine.
///
/// Drive it with one input at a time, each with the current time, and after
/// every input drain all outputs: bytes to write, events, the next deadline.
///
/// ```no_run
/// use std::time::Instant;
/// use xgroup_core::{Consumer, ConsumerConfig, Event, Outcome};
///
/// # fn connect() {} fn write(_: &[u8]) {} fn read_or_timeout(_: Option<Instant>) -> Option<Vec<u8>> { None }
/// let config = ConsumerConfig::builder("orders", "processors", "proc-1").build()?;
/// let mut consumer = Consumer::new(config);
/// loop {
///     // Drain every output after each input.
///     while let Some(event) = consumer.poll_event() {
///         match event {
///             Event::Connect => { connect(); consumer.handle_connected(Instant::now()); }
///             Event::Deliver(batch) => {
///                 // ... handle batch.messages ...
///                 consumer.handle_completion(Instant::now(), batch.id, Outcome::AckAll);
///             }
///             Event::Stopped(_) => return Ok(()),
///             _ => {}
///         }
///     }
///     while let Some(bytes) = consumer.poll_transmit() { write(&bytes); }
///     // Then wait for one input: bytes, or the deadline.
///     match read_or_timeout(consumer.poll_timeout().map(|(at, _)| at)) {
///         Some(bytes) => consumer.handle_input(Instant::now(), &bytes),
///         None => consumer.handle_timeout(Instant::now()),
///     }
/// }
/// # Ok::<(), xgroup_core::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Consumer {
    cfg: ConsumerConfig,
    decoder: Decoder,
    out: BytesMut,
    events: VecDeque<Event>,
    conn: Conn,
    stage: Stage,
    sent: VecDeque<SentCmd>,
    /// The last new-entries read came back full: a backlog, worth a
    /// prefetching read behind the next one.
    last_read_full: bool,
    in_flight: Vec<InFlight>,
    acks_pending: Vec<StreamId>,
    next_batch: u64,
    replay_from: Option<StreamId>,
    claim: ClaimState,
    group_recreates: u32,
    reconnect_at: Option<Instant>,
    backoff_attempt: u32,
    drain_at: Option<Instant>,
    shutting_down: bool,
    rng: SplitMix64,
    stats: Stats,
    /// Entries waiting for a retry, in no particular order.
    retrying: Vec<Retrying>,
    /// Retries that are due, waiting for a free slot.
    /// Due retries to claim back, with their [`Retrying::touched`].
    redeliver: Vec<(StreamId, Instant)>,
    /// Entries to dead-letter.
    dead: Vec<DeadItem>,
    heartbeat: HeartbeatState,
    /// Consumers taken for dead whose entries are being claimed.
    dead_consumers: VecDeque<Bytes>,
    refresh_at: Option<Instant>,
    refresh_due: bool,
    poll_at: Option<Instant>,
    /// The server has `XACKDEL` (Redis 8.2+); learned per connection.
    has_xackdel: bool,
}

#[derive(Debug)]
struct Retrying {
    id: StreamId,
    due: Instant,
    /// When a reply last showed this consumer owning it (see [`HeldMessage::touched`]).
    touched: Instant,
}

#[derive(Debug, Clone)]
struct DeadItem {
    id: StreamId,
    attempt: u64,
    fields: Option<Fields>,
    reason: String,
    touched: Instant,
}

#[derive(Debug)]
struct HeartbeatState {
    key: Bytes,
    token: Bytes,
    due: bool,
    next_at: Option<Instant>,
    /// Heartbeats written by this instance (any connection).
    beats: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    Down,
    Connecting,
    Up,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for handshake replies.
    Handshake { left: usize },
    /// Waiting for `XGROUP CREATE`.
    Group,
    /// Group ensured: replay, claim, read.
    Running,
    /// Stopped for good.
    Stopped,
}

#[derive(Debug)]
struct ClaimState {
    cursor: StreamId,
    /// A sweep is in progress (more `XAUTOCLAIM` calls to make).
    active: bool,
    /// A sweep is due and starts as soon as the connection is free.
    due: bool,
    next_at: Option<Instant>,
}

#[derive(Debug)]
struct InFlight {
    id: BatchId,
    msgs: Vec<HeldMessage>,
    delivered_at: Instant,
    /// Past the handler timeout: its entries are no longer kept fresh.
    hung: bool,
}

#[derive(Debug)]
struct HeldMessage {
    id: StreamId,
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

/// A completed batch's messages, taken out one decision at a time. Decisions
/// usually come in batch order, so the slot after the last one taken is
/// tried first; any other order falls back to a sorted index (built once),
/// so matching stays O(n log n) whatever the handler returns.
#[derive(Debug)]
struct HeldSlots {
    slots: Vec<Option<HeldMessage>>,
    next: usize,
    /// `(id, slot)` sorted by id, built on the first out-of-order decision.
    index: Option<Vec<(StreamId, usize)>>,
}

impl HeldSlots {
    fn new(msgs: Vec<HeldMessage>) -> Self {
        HeldSlots {
            slots: msgs.into_iter().map(Some).collect(),
            next: 0,
            index: None,
        }
    }

    /// The first message with `id` not taken yet.
    fn take(&mut self, id: StreamId) -> Option<HeldMessage> {
        let hinted = self
            .slots
            .get(self.next)
            .and_then(Option::as_ref)
            .is_some_and(|m| m.id == id);
        let slot = if hinted {
            self.next
        } else {
            let slots = &self.slots;
            let index = self.index.get_or_insert_with(|| {
                let mut index: Vec<(StreamId, usize)> = slots
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| m.as_ref().map(|m| (m.id, i)))
                    .collect();
                index.sort_unstable();
                index
            });
            let from = index.partition_point(|&(other, _)| other < id);
            index[from..]
                .iter()
                .take_while(|&&(other, _)| other == id)
                .map(|&(_, i)| i)
                .find(|&i| slots[i].is_some())?
        };
        self.next = slot + 1;
        self.slots[slot].take()
    }
}

#[derive(Debug)]
struct SentCmd {
    what: Sent,
    deadline: Instant,
}

#[derive(Debug)]
enum Sent {
    Handshake(HandshakeStep),
    GroupCreate,
    Fetch(Fetch),
    Counts(PendingCounts),
    Ack(Vec<StreamId>),
    /// `XACKDEL` (delete on ack, Redis 8.2+).
    AckDel(Vec<StreamId>),
    /// One frame of a `MULTI` ... `EXEC`; `left` frames remain, the last one
    /// is `EXEC`'s reply.
    Tx {
        kind: TxKind,
        left: usize,
        failed: Option<ReplyError>,
    },
    Info,
    Heartbeat,
    PendingSummary,
    Liveness(Bytes),
    DeadPending(Bytes),
    DelConsumer(Bytes),
    /// Idle refresh of these held ids (`XCLAIM ... JUSTID`).
    Refresh(Vec<StreamId>),
}

#[derive(Debug)]
enum TxKind {
    /// `XADD dlq ...` per item, then `XACK`.
    DeadLetter(Vec<DeadItem>),
    /// `XACK` then `XDEL`.
    AckDelete(Vec<StreamId>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fetch {
    Replay,
    Claim,
    Read,
    Redeliver,
    Failover(Bytes),
}

/// Replayed or claimed entries waiting for their delivery counts.
#[derive(Debug)]
struct PendingCounts {
    source: Source,
    entries: Vec<(StreamId, Fields)>,
    counts: Vec<Option<u64>>,
    /// Last id covered by the `XPENDING` page just asked for.
    last: StreamId,
}

/// A claim reply's cursor, nil entries (6.2) and deleted ids (7.0+).
type ClaimInfo = (StreamId, usize, usize);

/// How many ids one `XACK` carries at most.
const MAX_IDS_PER_ACK: usize = 10_000;

impl Consumer {
    /// A consumer that will ask for a connection first ([`Event::Connect`]).
    pub fn new(config: ConsumerConfig) -> Self {
        let seed = config.seed.unwrap_or_else(process_seed);
        let mut rng = SplitMix64(seed);
        let token = Bytes::from(format!("{:016x}", rng.next_u64()));
        let heartbeat = HeartbeatState {
            key: heartbeat_key(&config.stream, &config.group, &config.consumer),
            token,
            due: false,
            next_at: None,
            beats: 0,
        };
        let mut events = VecDeque::new();
        events.push_back(Event::Connect);
        Consumer {
            cfg: config,
            decoder: Decoder::new(),
            out: BytesMut::new(),
            events,
            conn: Conn::Connecting,
            stage: Stage::Handshake { left: 0 },
            sent: VecDeque::new(),
            last_read_full: false,
            in_flight: Vec::new(),
            acks_pending: Vec::new(),
            next_batch: 0,
            replay_from: None,
            claim: ClaimState {
                cursor: StreamId::ZERO,
                active: false,
                due: false,
                next_at: None,
            },
            group_recreates: 0,
            reconnect_at: None,
            backoff_attempt: 0,
            drain_at: None,
            shutting_down: false,
            rng,
            stats: Stats::default(),
            retrying: Vec::new(),
            redeliver: Vec::new(),
            dead: Vec::new(),
            heartbeat,
            dead_consumers: VecDeque::new(),
            refresh_at: None,
            refresh_due: false,
            poll_at: None,
            has_xackdel: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Batches handed out and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether a connection is up (set up or being set up).
    pub fn is_connected(&self) -> bool {
        self.conn == Conn::Up
    }

    /// Whether the consumer has stopped for good.
    pub fn is_stopped(&self) -> bool {
        self.stage == Stage::Stopped
    }

    // ----- inputs -----

    /// The connection asked for by [`Event::Connect`] is open.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.stage == Stage::Stopped || self.conn != Conn::Connecting {
            return;
        }
        self.conn = Conn::Up;
        self.stats.connections += 1;
        self.decoder.reset();
        self.out.clear();
        self.sent.clear();
        self.replay_from = self.cfg.replay_pending.then_some(StreamId::ZERO);
        self.claim.active = false;
        self.claim.due = self.cfg.claim_interval.is_some() && !self.cfg.replay_pending;
        self.claim.next_at = None;
        self.has_xackdel = false;
        self.last_read_full = false;
        self.poll_at = None;
        self.heartbeat.due = self.cfg.heartbeat.is_some() && !self.shutting_down;
        self.heartbeat.next_at = None;
        self.dead_consumers.clear();
        self.refresh_at = Some(now + self.refresh_interval());
        let mut left = self.write_handshake(now);
        if self.cfg.delete_on_ack {
            CommandWriter::begin(&mut self.out, 2)
                .arg(b"INFO")
                .arg(b"server");
            self.push_sent(now, Sent::Info, Duration::ZERO);
            left += 1;
        }
        self.stage = Stage::Handshake { left };
        if !self.shutting_down && self.cfg.auto_create_group {
            self.write_group_create(now);
        }
        self.advance_handshake(now);
        self.pump(now);
    }

    /// Opening the connection failed.
    pub fn handle_connect_failed(&mut self, now: Instant, reason: impl std::fmt::Display) {
        if self.stage == Stage::Stopped || self.conn != Conn::Connecting {
            return;
        }
        self.stats.errors += 1;
        self.conn = Conn::Down;
        self.schedule_reconnect(now, Error::Connection(reason.to_string()));
    }

    /// The connection closed or failed (read/write error, EOF).
    pub fn handle_disconnected(&mut self, now: Instant, reason: impl std::fmt::Display) {
        if self.stage == Stage::Stopped || self.conn == Conn::Down {
            return;
        }
        self.connection_failed(now, Error::Connection(reason.to_string()), false);
    }

    /// Bytes arrived on the connection.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.conn != Conn::Up || self.stage == Stage::Stopped {
            return;
        }
        self.decoder.feed(bytes);
        let mut completed = false;
        loop {
            match self.decoder.next_raw() {
                Ok(Some(raw)) => {
                    completed = true;
                    if raw.bytes().first() == Some(&b'>') {
                        continue; // a RESP3 push, not a reply
                    }
                    let Some(cmd) = self.sent.pop_front() else {
                        self.protocol_failure(now, ProtocolError::UnsolicitedReply);
                        return;
                    };
                    // Hot path: new entries parsed straight from the bytes.
                    if let Sent::Fetch(kind @ (Fetch::Read | Fetch::Replay)) = &cmd.what {
                        if let Some(parsed) = reply::xreadgroup_raw(raw.bytes(), &self.cfg.stream) {
                            let kind = kind.clone();
                            self.on_fetched(now, kind, parsed.map(|entries| (entries, None)));
                            if self.conn != Conn::Up || self.stage == Stage::Stopped {
                                return;
                            }
                            continue;
                        }
                    }
                    let frame = match raw.decode() {
                        Ok(frame) => frame,
                        Err(e) => {
                            self.protocol_failure(now, e);
                            return;
                        }
                    };
                    self.on_reply(now, cmd.what, frame);
                    if self.conn != Conn::Up || self.stage == Stage::Stopped {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.protocol_failure(now, e);
                    return;
                }
            }
        }
        // Decide what to send next only at a quiet point of the reply
        // stream: some reply completed, no frame half-read, and everything
        // pipelined answered (a fetch may stay out). Decisions then do not
        // depend on how the reply bytes were cut into reads.
        if completed
            && self.decoder.buffered() == 0
            && self.sent.iter().all(|c| matches!(c.what, Sent::Fetch(_)))
        {
            self.pump(now);
        }
        self.try_finish(now);
    }

    /// The handler finished a batch.
    pub fn handle_completion(&mut self, now: Instant, batch: BatchId, outcome: Outcome) {
        if self.stage == Stage::Stopped {
            return;
        }
        let Some(pos) = self.in_flight.iter().position(|b| b.id == batch) else {
            self.warn(Warning::UnknownBatch(batch));
            return;
        };
        let done = self.in_flight.swap_remove(pos);
        let decisions: Vec<(StreamId, Disposition)> = match outcome {
            Outcome::AckAll => {
                // The common case: no matching needed.
                self.acks_pending.extend(done.msgs.iter().map(|m| m.id));
                Vec::new()
            }
            Outcome::AckOnly(ids) => ids.into_iter().map(|id| (id, Disposition::Ack)).collect(),
            Outcome::AckNone => Vec::new(),
            Outcome::Each(decisions) => decisions,
        };
        let mut msgs = HeldSlots::new(done.msgs);
        let mut unknown = Vec::new();
        for (id, disposition) in decisions {
            // Each message is decided once; repeats and strangers are ignored.
            let Some(msg) = msgs.take(id) else {
                unknown.push(id);
                continue;
            };
            self.dispose(now, msg, disposition);
        }
        if !unknown.is_empty() {
            self.warn(Warning::AckIdsNotInBatch {
                batch,
                ids: unknown,
            });
        }
        self.pump(now);
        self.try_finish(now);
    }

    fn dispose(&mut self, now: Instant, msg: HeldMessage, disposition: Disposition) {
        let out_of_attempts = self
            .cfg
            .max_deliveries
            .is_some_and(|max| msg.attempt >= max);
        let retry_at = match disposition {
            Disposition::Ack => {
                self.acks_pending.push(msg.id);
                return;
            }
            Disposition::Keep => return,
            Disposition::DeadLetter(reason) => {
                self.dead.push(DeadItem {
                    id: msg.id,
                    attempt: msg.attempt,
                    fields: msg.fields,
                    reason,
                    touched: msg.touched,
                });
                return;
            }
            Disposition::Retry => {
                let (initial, max) = self.cfg.retry_backoff;
                let exp = msg.attempt.saturating_sub(1).min(30) as u32;
                now + initial.saturating_mul(1 << exp).min(max)
            }
            Disposition::RetryAt(at) => at.max(now),
        };
        if out_of_attempts {
            let reason = format!("failed {} times, max_deliveries reached", msg.attempt);
            self.dead.push(DeadItem {
                id: msg.id,
                attempt: msg.attempt,
                fields: msg.fields,
                reason,
                touched: msg.touched,
            });
        } else if !msg.lost {
            // A lost entry is another consumer's to retry now.
            self.retrying.push(Retrying {
                id: msg.id,
                due: retry_at,
                touched: msg.touched,
            });
        }
    }

    /// The handler failed on a batch (it panicked, or returned an error the
    /// adapter could not map): nothing of the batch is acknowledged, so it is
    /// redelivered; the failure is counted and reported.
    pub fn handle_handler_failed(
        &mut self,
        now: Instant,
        batch: BatchId,
        reason: impl Into<String>,
    ) {
        if self.stage == Stage::Stopped {
            return;
        }
        if self.in_flight.iter().any(|b| b.id == batch) {
            self.stats.handler_failures += 1;
            self.warn(Warning::HandlerFailed {
                batch,
                reason: reason.into(),
            });
        }
        self.handle_completion(now, batch, Outcome::AckNone);
    }

    /// A deadline from [`poll_timeout`](Self::poll_timeout) passed (spurious
    /// calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stage == Stage::Stopped {
            return;
        }
        if self.drain_at.is_some_and(|at| at <= now) {
            let warning = Warning::DrainTimedOut {
                batches: self.in_flight.len(),
                unacked: self.acks_pending.len()
                    + self
                        .sent
                        .iter()
                        .map(|c| {
                            if let Sent::Ack(ids) = &c.what {
                                ids.len()
                            } else {
                                0
                            }
                        })
                        .sum::<usize>(),
            };
            self.warn(warning);
            self.finish(None);
            return;
        }
        self.fire_due_timers(now);
        if self.reconnect_at.is_some_and(|at| at <= now) {
            self.reconnect_at = None;
            self.conn = Conn::Connecting;
            self.events.push_back(Event::Connect);
        }
        if self.conn == Conn::Up {
            if let Some(front) = self.sent.front() {
                if front.deadline <= now {
                    let command = front.what.name();
                    self.stats.errors += 1;
                    self.connection_failed(now, Error::ReplyTimeout { command }, true);
                    return;
                }
            }
        }
        self.pump(now);
    }

    /// Stop gracefully: no new reads; wait for in-flight batches until the
    /// drain timeout, flush their acknowledgements, then report
    /// [`Event::Stopped`].
    pub fn handle_shutdown(&mut self, now: Instant) {
        if self.stage == Stage::Stopped || self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.drain_at = Some(now + self.cfg.drain_timeout);
        self.replay_from = None;
        self.claim.active = false;
        self.claim.due = false;
        self.claim.next_at = None;
        self.try_finish(now);
    }

    // ----- outputs -----

    /// Bytes to write to the connection, in order.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next deadline and what it is for; call
    /// [`handle_timeout`](Self::handle_timeout) when it passes.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<(Instant, TimerKind)> {
        if self.stage == Stage::Stopped {
            return None;
        }
        let reply = match (self.conn, self.sent.front()) {
            (Conn::Up, Some(cmd)) => Some((cmd.deadline, TimerKind::Reply)),
            _ => None,
        };
        [
            self.reconnect_at.map(|at| (at, TimerKind::Reconnect)),
            self.claim.next_at.map(|at| (at, TimerKind::ClaimSweep)),
            self.drain_at.map(|at| (at, TimerKind::Drain)),
            self.heartbeat.next_at.map(|at| (at, TimerKind::Heartbeat)),
            self.retrying
                .iter()
                .map(|r| r.due)
                .min()
                .map(|at| (at, TimerKind::Retry)),
            self.refresh_at.map(|at| (at, TimerKind::Refresh)),
            self.poll_at.map(|at| (at, TimerKind::Poll)),
            reply,
        ]
        .into_iter()
        .flatten()
        .min_by_key(|(at, _)| *at)
    }

    // ----- replies -----

    fn on_reply(&mut self, now: Instant, what: Sent, frame: Frame) {
        match what {
            Sent::Handshake(step) => match step.check(frame) {
                Ok(()) => self.handshake_step(now),
                Err(e) => self.command_failed(now, e),
            },
            Sent::GroupCreate => match reply::group_create(frame) {
                Ok(GroupCreated::Created | GroupCreated::AlreadyExisted) => {
                    if self.stage == Stage::Group {
                        self.stage = Stage::Running;
                    }
                }
                Err(ReplyError::Server(e)) if e.kind == ServerErrorKind::StreamMissing => {
                    let stream = self.cfg.stream.clone();
                    self.fatal(Error::StreamMissing { stream });
                }
                Err(e) => self.command_failed(now, e),
            },
            Sent::Fetch(kind) => {
                self.on_fetch_reply(now, kind, frame);
            }
            Sent::Counts(pending) => match reply::xpending_extended(frame) {
                Ok(rows) => self.on_counts(now, pending, rows),
                Err(e) => self.command_failed(now, e),
            },
            Sent::Ack(ids) => match reply::integer(frame, "XACK") {
                Ok(n) => self.stats.acked += u64::try_from(n).unwrap_or(0),
                Err(e) => {
                    // Keep the ids: they are sent again after reconnecting.
                    self.acks_pending.extend(ids);
                    self.command_failed(now, e);
                }
            },
            Sent::AckDel(ids) => match Value::from_frame(frame) {
                // One result per id: 1 acked and deleted, -1 not pending.
                Value::Array(results) => {
                    let acked = results
                        .iter()
                        .filter(|r| matches!(r, Value::Int(1)))
                        .count();
                    self.stats.acked += acked as u64;
                }
                Value::Error(e) => {
                    self.acks_pending.extend(ids);
                    self.command_failed(now, ReplyError::Server(e));
                }
                other => {
                    self.acks_pending.extend(ids);
                    let detail = format!("expected an array, got {other:?}");
                    self.protocol_failure(now, ProtocolError::unexpected("XACKDEL", detail));
                }
            },
            Sent::Tx {
                kind,
                left,
                mut failed,
            } => {
                if left > 1 {
                    // `+OK` for MULTI, `+QUEUED` for each command.
                    if let Err(e) = reply::ok(frame, "MULTI") {
                        failed.get_or_insert(e);
                    }
                    self.sent.push_front(SentCmd {
                        what: Sent::Tx {
                            kind,
                            left: left - 1,
                            failed,
                        },
                        deadline: now + self.cfg.reply_timeout,
                    });
                } else {
                    self.on_exec(now, kind, failed, frame);
                }
            }
            Sent::Info => {
                if let Value::Bulk(text) = Value::from_frame(frame) {
                    self.has_xackdel = server_has_xackdel(&text);
                }
                self.handshake_step(now);
            }
            Sent::Heartbeat => self.on_heartbeat(now, frame),
            Sent::PendingSummary => match reply::xpending_summary(frame) {
                Ok(summary) => self.check_liveness(now, summary.consumers),
                Err(ReplyError::Server(e)) if e.kind == ServerErrorKind::NoGroup => {}
                Err(e) => self.command_failed(now, e),
            },
            Sent::Liveness(consumer) => match Value::from_frame(frame) {
                Value::Nil if !self.dead_consumers.contains(&consumer) && !self.shutting_down => {
                    self.stats.dead_consumers += 1;
                    self.warn(Warning::ConsumerDead {
                        consumer: consumer.clone(),
                    });
                    self.dead_consumers.push_back(consumer);
                }
                Value::Error(e) => self.command_failed(now, ReplyError::Server(e)),
                _ => {}
            },
            Sent::DeadPending(consumer) => match reply::xpending_extended(frame) {
                Ok(rows) if rows.is_empty() => {
                    // Nothing pending left: now it may go.
                    self.dead_consumers.retain(|c| c != &consumer);
                    CommandWriter::begin(&mut self.out, 5)
                        .arg(b"XGROUP")
                        .arg(b"DELCONSUMER")
                        .arg(&self.cfg.stream)
                        .arg(&self.cfg.group)
                        .arg(&consumer);
                    self.push_sent(now, Sent::DelConsumer(consumer), Duration::ZERO);
                }
                Ok(rows) => {
                    let ids: Vec<StreamId> = rows.iter().map(|r| r.id).collect();
                    self.write_claim_ids(now, Fetch::Failover(consumer), &ids, self.dead_after());
                }
                Err(e) => self.command_failed(now, e),
            },
            Sent::DelConsumer(consumer) => match reply::integer(frame, "XGROUP DELCONSUMER") {
                Ok(_) => self.warn(Warning::ConsumerRemoved { consumer }),
                Err(ReplyError::Server(e)) if e.kind == ServerErrorKind::NoGroup => {}
                Err(e) => self.command_failed(now, e),
            },
            Sent::Refresh(sent) => match reply::id_list(frame, "XCLAIM") {
                Ok(claimed) => self.refreshed(now, &sent, &claimed),
                Err(e) => {
                    if !matches!(&e, ReplyError::Server(s) if s.kind == ServerErrorKind::NoGroup) {
                        self.command_failed(now, e);
                    }
                }
            },
        }
    }

    /// An idle refresh of `sent` came back with `claimed`: those are still
    /// ours as of `now`; the others were taken by another consumer (or
    /// deleted), so this consumer stops refreshing and retrying them.
    fn refreshed(&mut self, now: Instant, sent: &[StreamId], claimed: &[StreamId]) {
        let claimed: HashSet<StreamId> = claimed.iter().copied().collect();
        let gone: HashSet<StreamId> = sent
            .iter()
            .filter(|id| !claimed.contains(id))
            .copied()
            .collect();
        self.retouch(now, &claimed);
        if !gone.is_empty() {
            self.give_up(&gone);
        }
    }

    /// These held entries are another consumer's now: not refreshed or
    /// retried here any more (an ack from the handler is still sent).
    fn give_up(&mut self, ids: &HashSet<StreamId>) {
        let mut lost = 0;
        for batch in &mut self.in_flight {
            for m in batch
                .msgs
                .iter_mut()
                .filter(|m| !m.lost && ids.contains(&m.id))
            {
                m.lost = true;
                lost += 1;
            }
        }
        let waiting = self.retrying.len() + self.redeliver.len();
        self.retrying.retain(|r| !ids.contains(&r.id));
        self.redeliver.retain(|(id, _)| !ids.contains(id));
        lost += waiting - self.retrying.len() - self.redeliver.len();
        self.stats.lost_to_others += lost as u64;
    }

    /// A reply at `now` showed these held entries in our pending list (and
    /// the server touched them).
    fn retouch(&mut self, now: Instant, ids: &HashSet<StreamId>) {
        for batch in &mut self.in_flight {
            for m in batch.msgs.iter_mut().filter(|m| ids.contains(&m.id)) {
                m.touched = now;
                m.lost = false;
            }
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
    }

    fn on_exec(&mut self, now: Instant, kind: TxKind, failed: Option<ReplyError>, frame: Frame) {
        let result = match failed {
            Some(e) => Err(e),
            None => match Value::from_frame(frame) {
                Value::Array(results) => match results.iter().find_map(|r| match r {
                    Value::Error(e) => Some(e.clone()),
                    _ => None,
                }) {
                    Some(e) => Err(ReplyError::Server(e)),
                    None => Ok(results),
                },
                Value::Error(e) => Err(ReplyError::Server(e)),
                other => Err(ReplyError::Protocol(ProtocolError::unexpected(
                    "EXEC",
                    format!("expected an array, got {other:?}"),
                ))),
            },
        };
        match (kind, result) {
            (TxKind::DeadLetter(items), Ok(results)) => {
                // One XADD reply per item, then XACK's count.
                if let Some(Value::Int(n)) = results.get(items.len()) {
                    self.stats.acked += u64::try_from(*n).unwrap_or(0);
                }
                let Some(DeadLetter::Stream(key)) = self.cfg.dead_letter.clone() else {
                    return;
                };
                for item in items {
                    self.dead_lettered(item, DeadLetterAction::Moved(key.clone()));
                }
            }
            (TxKind::AckDelete(_), Ok(results)) => {
                if let Some(Value::Int(n)) = results.first() {
                    self.stats.acked += u64::try_from(*n).unwrap_or(0);
                }
            }
            // Nothing of a failed transaction happened: try again later.
            (TxKind::DeadLetter(items), Err(e)) => {
                self.dead.extend(items);
                self.command_failed(now, e);
            }
            (TxKind::AckDelete(ids), Err(e)) => {
                self.acks_pending.extend(ids);
                self.command_failed(now, e);
            }
        }
    }

    fn dead_lettered(&mut self, item: DeadItem, action: DeadLetterAction) {
        self.stats.dead_lettered += 1;
        self.events.push_back(Event::DeadLettered(DeadLettered {
            id: item.id,
            deliveries: item.attempt,
            reason: item.reason,
            action,
        }));
    }

    fn on_heartbeat(&mut self, now: Instant, frame: Frame) {
        let previous = match Value::from_frame(frame) {
            Value::Error(e) => {
                self.command_failed(now, ReplyError::Server(e));
                return;
            }
            Value::Bulk(v) | Value::Simple(v) => Some(v),
            _ => None,
        };
        let first = self.heartbeat.beats == 0;
        self.heartbeat.beats += 1;
        if first {
            // A crashed predecessor's key may still be there: nothing to say.
            return;
        }
        match previous {
            Some(token) if token != self.heartbeat.token => {
                let consumer = self.cfg.consumer.clone();
                self.fatal(Error::DuplicateConsumer { consumer });
            }
            Some(_) => {}
            None => self.warn(Warning::HeartbeatLapsed),
        }
    }

    /// After `XPENDING s g`: which consumers with pending entries lost their
    /// heartbeat key?
    fn check_liveness(&mut self, now: Instant, consumers: Vec<(Bytes, u64)>) {
        if self.shutting_down {
            return;
        }
        for (consumer, _) in consumers {
            if consumer == self.cfg.consumer || self.dead_consumers.contains(&consumer) {
                continue;
            }
            let key = heartbeat_key(&self.cfg.stream, &self.cfg.group, &consumer);
            CommandWriter::begin(&mut self.out, 2).arg(b"GET").arg(&key);
            self.push_sent(now, Sent::Liveness(consumer), Duration::ZERO);
        }
    }

    fn on_fetch_reply(&mut self, now: Instant, kind: Fetch, frame: Frame) {
        let parsed = match kind {
            Fetch::Replay | Fetch::Read => {
                reply::xreadgroup(frame, &self.cfg.stream).map(|entries| (entries, None))
            }
            Fetch::Claim => reply::xautoclaim(frame).map(|c| {
                let more = (c.next, c.nil_entries, c.deleted.len());
                (c.entries, Some(more))
            }),
            Fetch::Redeliver | Fetch::Failover(_) => reply::xclaim(frame).map(|c| {
                let more = (StreamId::ZERO, c.nil_entries, 0);
                (c.entries, Some(more))
            }),
        };
        self.on_fetched(now, kind, parsed);
    }

    /// What an `XREADGROUP`, `XAUTOCLAIM` or `XCLAIM` brought, with the
    /// claim cursor and counts where there are some.
    fn on_fetched(
        &mut self,
        now: Instant,
        kind: Fetch,
        parsed: Result<(Vec<Entry>, Option<ClaimInfo>), ReplyError>,
    ) {
        let (entries, claim) = match parsed {
            Ok(ok) => ok,
            Err(ReplyError::Server(e)) if e.kind == ServerErrorKind::NoGroup => {
                self.group_vanished(now, e);
                return;
            }
            Err(e) => {
                self.command_failed(now, e);
                return;
            }
        };
        self.backoff_attempt = 0;
        self.group_recreates = 0;
        match kind {
            Fetch::Replay => {
                match entries.last() {
                    Some(last) => self.replay_from = Some(last.id),
                    None => {
                        self.replay_from = None;
                        if self.cfg.claim_interval.is_some() && !self.shutting_down {
                            self.claim.due = true;
                        }
                    }
                }
                self.take_entries(now, Source::OwnPending, entries);
            }
            Fetch::Claim => {
                if let Some((next, _, _)) = claim {
                    self.claim.cursor = next;
                    if next.is_zero() {
                        self.claim.active = false;
                        self.claim.next_at = self.cfg.claim_interval.map(|i| now + i);
                    }
                }
                self.replay_after_nils(claim);
                self.stats.claimed += entries.len() as u64;
                self.take_entries(now, Source::Claimed, entries);
            }
            Fetch::Read => {
                self.last_read_full = entries.len() as u64 >= self.cfg.count;
                if entries.is_empty() {
                    self.poll_at = self.cfg.receive_interval.map(|i| now + i);
                }
                self.take_entries(now, Source::New, entries)
            }
            Fetch::Redeliver => {
                self.stats.retried += entries.len() as u64;
                self.replay_after_nils(claim);
                self.take_entries(now, Source::Retry, entries);
            }
            Fetch::Failover(consumer) => {
                if entries.is_empty() {
                    // Not idle enough yet, or taken by another: next beat.
                    self.dead_consumers.retain(|c| c != &consumer);
                }
                self.replay_after_nils(claim);
                self.stats.claimed += entries.len() as u64;
                self.take_entries(now, Source::Claimed, entries);
            }
        }
    }

    /// 6.2 claims deleted entries as bare nils: the replay of our own pending
    /// list finds their ids to ack.
    fn replay_after_nils(&mut self, claim: Option<ClaimInfo>) {
        if claim.is_some_and(|(_, nils, _)| nils > 0)
            && self.cfg.replay_pending
            && !self.shutting_down
        {
            self.replay_from = Some(StreamId::ZERO);
        }
    }

    /// Sorts fetched entries: held ones skipped, deleted ones acked, new ones
    /// delivered, replayed/claimed ones sent for their delivery counts.
    fn take_entries(&mut self, now: Instant, source: Source, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let held = if source == Source::New {
            HashSet::new()
        } else {
            self.held_ids()
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
                    self.acks_pending.push(entry.id);
                }
            }
        }
        if !retouched.is_empty() {
            self.retouch(now, &retouched);
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
            self.deliver(now, source, messages);
        } else {
            let first = live[0].0;
            let counts = vec![None; live.len()];
            let pending = PendingCounts {
                source,
                entries: live,
                counts,
                last: first,
            };
            self.write_counts_query(now, pending, first, false);
        }
    }

    fn on_counts(
        &mut self,
        now: Instant,
        mut pending: PendingCounts,
        rows: Vec<reply::PendingEntry>,
    ) {
        let page_full = rows.len() as u64 >= self.counts_page(&pending);
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
            self.write_counts_query(now, pending, last, true);
            return;
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

    fn deliver(&mut self, now: Instant, source: Source, mut messages: Vec<Message>) {
        if let Some(max) = self.cfg.max_deliveries {
            // Delivered too often without success: dead letters, not the handler.
            messages.retain(|m| {
                if m.attempt <= max {
                    return true;
                }
                self.dead.push(DeadItem {
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
        let id = BatchId(self.next_batch);
        self.next_batch += 1;
        self.stats.delivered += messages.len() as u64;
        self.stats.redelivered += messages.iter().filter(|m| m.attempt > 1).count() as u64;
        let keep_fields = matches!(self.cfg.dead_letter, Some(DeadLetter::Stream(_)));
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
        self.events.push_back(Event::Deliver(Batch {
            id,
            stream: self.cfg.stream.clone(),
            source,
            messages,
        }));
    }

    /// Ids this consumer already works on or is acknowledging.
    fn held_ids(&self) -> HashSet<StreamId> {
        let mut held: HashSet<StreamId> = self.acks_pending.iter().copied().collect();
        for batch in &self.in_flight {
            held.extend(batch.msgs.iter().map(|m| m.id));
        }
        held.extend(self.retrying.iter().map(|r| r.id));
        held.extend(self.redeliver.iter().map(|&(id, _)| id));
        held.extend(self.dead.iter().map(|d| d.id));
        for cmd in &self.sent {
            match &cmd.what {
                Sent::Ack(ids) | Sent::AckDel(ids) => held.extend(ids.iter().copied()),
                Sent::Tx {
                    kind: TxKind::AckDelete(ids),
                    ..
                } => held.extend(ids.iter().copied()),
                Sent::Tx {
                    kind: TxKind::DeadLetter(items),
                    ..
                } => held.extend(items.iter().map(|d| d.id)),
                Sent::Counts(p) => held.extend(p.entries.iter().map(|(id, _)| *id)),
                _ => {}
            }
        }
        held
    }

    // ----- handshake and group -----

    fn handshake_step(&mut self, now: Instant) {
        if let Stage::Handshake { left } = self.stage {
            self.stage = Stage::Handshake {
                left: left.saturating_sub(1),
            };
        }
        self.advance_handshake(now);
    }

    fn advance_handshake(&mut self, _now: Instant) {
        if self.stage == (Stage::Handshake { left: 0 }) {
            self.stage = if !self.shutting_down && self.cfg.auto_create_group {
                Stage::Group
            } else {
                Stage::Running
            };
        }
    }

    fn group_vanished(&mut self, now: Instant, e: ServerError) {
        if self.shutting_down {
            return;
        }
        if !self.cfg.auto_create_group {
            let (stream, group) = (self.cfg.stream.clone(), self.cfg.group.clone());
            self.fatal(Error::GroupMissing { stream, group });
            return;
        }
        if self.stage == Stage::Group {
            // Already re-creating; later NOGROUP replies were pipelined.
            return;
        }
        self.group_recreates += 1;
        if self.group_recreates > 2 {
            // Created and gone again without a successful read in between:
            // back off instead of looping.
            self.stats.errors += 1;
            self.connection_failed(now, Error::Server(e), true);
            return;
        }
        self.warn(Warning::GroupRecreated);
        self.stage = Stage::Group;
        self.write_group_create(now);
    }

    // ----- failures -----

    fn command_failed(&mut self, now: Instant, e: ReplyError) {
        self.stats.errors += 1;
        match e {
            ReplyError::Protocol(p) => self.protocol_failure(now, p),
            ReplyError::Server(s) if s.is_transient() => {
                self.connection_failed(now, Error::Server(s), true)
            }
            ReplyError::Server(s)
                if matches!(
                    s.kind,
                    ServerErrorKind::Moved { .. } | ServerErrorKind::Ask { .. }
                ) =>
            {
                self.fatal(Error::Redirected(s))
            }
            ReplyError::Server(s) => self.fatal(Error::Server(s)),
        }
    }

    fn protocol_failure(&mut self, now: Instant, e: ProtocolError) {
        self.stats.errors += 1;
        self.connection_failed(now, Error::Protocol(e), true);
    }

    fn connection_failed(&mut self, now: Instant, cause: Error, close: bool) {
        if close && self.conn != Conn::Down {
            self.events.push_back(Event::Disconnect);
        }
        self.conn = Conn::Down;
        self.decoder.reset();
        self.out.clear();
        for cmd in self.sent.drain(..) {
            match cmd.what {
                Sent::Ack(ids)
                | Sent::AckDel(ids)
                | Sent::Tx {
                    kind: TxKind::AckDelete(ids),
                    ..
                } => self.acks_pending.extend(ids),
                Sent::Tx {
                    kind: TxKind::DeadLetter(items),
                    ..
                } => self.dead.extend(items),
                _ => {}
            }
        }
        self.stage = Stage::Handshake { left: 0 };
        if self.shutting_down && self.nothing_left() {
            self.finish(None);
            return;
        }
        self.schedule_reconnect(now, cause);
    }

    fn schedule_reconnect(&mut self, now: Instant, cause: Error) {
        self.backoff_attempt = self.backoff_attempt.saturating_add(1);
        let exp = self.backoff_attempt.saturating_sub(1).min(30);
        let base = self
            .cfg
            .reconnect_initial
            .saturating_mul(1u32 << exp)
            .min(self.cfg.reconnect_max);
        // Equal jitter: half fixed, half random, so retries spread out but
        // never collapse to zero.
        let half = base / 2;
        let jitter = half.mul_f64(self.rng.next_f64());
        let delay = half + jitter;
        self.reconnect_at = Some(now + delay);
        self.warn(Warning::Reconnecting {
            attempt: self.backoff_attempt,
            delay,
            cause,
        });
    }

    fn fatal(&mut self, error: Error) {
        self.finish(Some(error));
    }

    fn finish(&mut self, error: Option<Error>) {
        if self.stage == Stage::Stopped {
            return;
        }
        if self.conn != Conn::Down {
            self.events.push_back(Event::Disconnect);
        }
        self.conn = Conn::Down;
        self.stage = Stage::Stopped;
        self.out.clear();
        self.sent.clear();
        self.reconnect_at = None;
        self.drain_at = None;
        self.claim.next_at = None;
        self.events.push_back(Event::Stopped(error));
    }

    fn try_finish(&mut self, _now: Instant) {
        if !self.shutting_down || self.stage == Stage::Stopped {
            return;
        }
        if self.nothing_left() && self.fetches_out() == 0 && !self.awaiting_counts() {
            self.finish(None);
        }
    }

    /// No handler at work and nothing left to acknowledge or dead-letter.
    fn nothing_left(&self) -> bool {
        self.in_flight.is_empty()
            && self.acks_pending.is_empty()
            && self.dead.is_empty()
            && !self
                .sent
                .iter()
                .any(|c| matches!(c.what, Sent::Ack(_) | Sent::AckDel(_) | Sent::Tx { .. }))
    }

    /// Reads and claims whose reply has not come yet.
    fn fetches_out(&self) -> usize {
        self.sent
            .iter()
            .filter(|c| matches!(c.what, Sent::Fetch(_) | Sent::DeadPending(_)))
            .count()
    }

    fn awaiting_counts(&self) -> bool {
        self.sent.iter().any(|c| matches!(c.what, Sent::Counts(_)))
    }

    /// Turns passed deadlines into work to do, so no deadline stays in the
    /// past. Deadlines within a millisecond count as passed (BLOCK has
    /// millisecond resolution).
    fn fire_due_timers(&mut self, now: Instant) {
        let soon = now + Duration::from_millis(1);
        if self.claim.next_at.is_some_and(|at| at <= soon) {
            self.claim.next_at = None;
            self.claim.due = true;
        }
        if self.heartbeat.next_at.is_some_and(|at| at <= soon) {
            self.heartbeat.next_at = None;
            self.heartbeat.due = true;
        }
        if self.refresh_at.is_some_and(|at| at <= soon) {
            self.refresh_at = None;
            self.refresh_due = true;
        }
        if self.poll_at.is_some_and(|at| at <= soon) {
            self.poll_at = None;
        }
        if self.retrying.iter().any(|r| r.due <= soon) {
            let (due, later): (Vec<Retrying>, Vec<Retrying>) = std::mem::take(&mut self.retrying)
                .into_iter()
                .partition(|r| r.due <= soon);
            self.retrying = later;
            self.redeliver
                .extend(due.into_iter().map(|r| (r.id, r.touched)));
        }
    }

    /// Idle refresh period of held entries: half the claim min idle time, so
    /// no claim (ours or another consumer's) ever sees them idle enough.
    fn refresh_interval(&self) -> Duration {
        (self.cfg.claim_min_idle / 2).max(Duration::from_millis(1))
    }

    /// How long a consumer's entries must be idle before failover takes
    /// them: its heartbeat timeout.
    fn dead_after(&self) -> Duration {
        self.cfg
            .heartbeat
            .map_or(self.cfg.claim_min_idle, |h| h.timeout())
    }

    fn warn(&mut self, warning: Warning) {
        self.events.push_back(Event::Warning(warning));
    }

    // ----- what to send next -----

    fn pump(&mut self, now: Instant) {
        if self.conn != Conn::Up || matches!(self.stage, Stage::Handshake { .. } | Stage::Stopped) {
            return;
        }
        self.fire_due_timers(now);
        self.flush_dead(now);
        self.flush_acks(now);
        if self.stage == Stage::Running {
            self.write_timed_work(now);
        }
        if self.stage != Stage::Running || self.shutting_down || self.awaiting_counts() {
            return;
        }
        let out = self.fetches_out();
        if out > 0 {
            self.prefetch(now, out);
            return;
        }
        if self.in_flight.len() >= self.cfg.max_in_flight_batches {
            return;
        }
        if let Some(after) = self.replay_from {
            self.write_fetch(now, Fetch::Replay, ReadFrom::PendingAfter(after), None);
            return;
        }
        // Not while an idle refresh is out: it touches these entries, and
        // its reply tells when.
        if !self.redeliver.is_empty()
            && !self.sent.iter().any(|c| matches!(c.what, Sent::Refresh(_)))
        {
            let take = self.redeliver.len().min(self.cfg.count as usize);
            let due: Vec<(StreamId, Instant)> = self.redeliver.drain(..take).collect();
            let touched = due.iter().map(|&(_, t)| t).max().unwrap_or(now);
            let mut ids: Vec<StreamId> = due.into_iter().map(|(id, _)| id).collect();
            ids.sort_unstable();
            // Only entries still ours: one another consumer claimed since
            // we last touched it has been idle for less than this.
            let min_idle = untouched_for(now, touched);
            self.write_claim_ids(now, Fetch::Redeliver, &ids, min_idle);
            return;
        }
        if let Some(consumer) = self.dead_consumers.front().cloned() {
            CommandWriter::begin(&mut self.out, 7)
                .arg(b"XPENDING")
                .arg(&self.cfg.stream)
                .arg(&self.cfg.group)
                .arg(b"-")
                .arg(b"+")
                .arg_u64(self.cfg.count)
                .arg(&consumer);
            self.push_sent(now, Sent::DeadPending(consumer), Duration::ZERO);
            return;
        }
        if self.claim.due {
            self.claim.due = false;
            self.claim.active = true;
        }
        if self.claim.active {
            self.write_claim(now);
            return;
        }
        if self.cfg.receive_interval.is_some() {
            // Polling mode: a read without BLOCK, then a wait if it was empty.
            if self.poll_at.is_none() {
                self.write_fetch(now, Fetch::Read, ReadFrom::New, None);
            }
            return;
        }
        // Cap BLOCK so the read returns by the next deadline: a blocking
        // read delays every command pipelined behind it.
        let next = [
            self.claim.next_at,
            self.heartbeat.next_at,
            self.refresh_at,
            self.retrying.iter().map(|r| r.due).min(),
        ]
        .into_iter()
        .flatten()
        .min();
        let block = match next {
            Some(at) => self.cfg.block.min(at.saturating_duration_since(now)),
            None => self.cfg.block,
        };
        self.write_fetch(now, Fetch::Read, ReadFrom::New, Some(block));
    }

    /// With a backlog (the last read came back full) and a free slot, one
    /// more new-entries read goes out behind the one in flight, so the server
    /// has the next batch ready while this one travels and is parsed. It has
    /// no BLOCK: if the backlog just ran out it returns at once.
    fn prefetch(&mut self, now: Instant, out: usize) {
        let only_reads = self.sent.iter().all(|c| {
            !matches!(&c.what, Sent::Fetch(k) if *k != Fetch::Read)
                && !matches!(c.what, Sent::DeadPending(_))
        });
        let other_work = self.replay_from.is_some()
            || !self.redeliver.is_empty()
            || !self.dead_consumers.is_empty()
            || self.claim.due
            || self.claim.active;
        if out == 1
            && only_reads
            && self.last_read_full
            && !other_work
            && self.cfg.receive_interval.is_none()
            && self.in_flight.len() + out < self.cfg.max_in_flight_batches
        {
            self.write_fetch(now, Fetch::Read, ReadFrom::New, None);
        }
    }

    /// Heartbeat (and the liveness check of the others) and idle refresh of
    /// held entries, when due.
    fn write_timed_work(&mut self, now: Instant) {
        if let Some(hb) = self.cfg.heartbeat {
            if self.heartbeat.due {
                self.heartbeat.due = false;
                self.heartbeat.next_at = Some(now + hb.interval);
                let ttl = hb.timeout().as_millis().max(1) as u64;
                CommandWriter::begin(&mut self.out, 6)
                    .arg(b"SET")
                    .arg(&self.heartbeat.key)
                    .arg(&self.heartbeat.token)
                    .arg(b"PX")
                    .arg_u64(ttl)
                    .arg(b"GET");
                self.push_sent(now, Sent::Heartbeat, Duration::ZERO);
                if !self.shutting_down {
                    CommandWriter::begin(&mut self.out, 3)
                        .arg(b"XPENDING")
                        .arg(&self.cfg.stream)
                        .arg(&self.cfg.group);
                    self.push_sent(now, Sent::PendingSummary, Duration::ZERO);
                }
            }
        }
        // A replay, claim or retry fetch of ours still out touches held
        // entries at the server; its reply tells when (`retouch`), and the
        // refresh's min-idle must know that first.
        let touching = self.sent.iter().any(|c| {
            matches!(
                c.what,
                Sent::Fetch(Fetch::Replay | Fetch::Claim | Fetch::Redeliver)
            )
        });
        if self.refresh_due && !touching {
            self.refresh_due = false;
            let interval = self.refresh_interval();
            self.refresh_at = Some(now + interval);
            if let Some(limit) = self.cfg.handler_timeout {
                let mut hung = Vec::new();
                for batch in &mut self.in_flight {
                    let after = now.saturating_duration_since(batch.delivered_at);
                    if !batch.hung && after > limit {
                        batch.hung = true;
                        hung.push(Warning::HandlerHung {
                            batch: batch.id,
                            after,
                        });
                    }
                }
                for warning in hung {
                    self.warn(warning);
                }
            }
            // Held entries with when we last saw them ours; those touched
            // less than half a period ago need no refresh yet.
            let fresh_after = now.checked_sub(interval / 2);
            let mut held: Vec<(Instant, StreamId)> = self
                .in_flight
                .iter()
                .filter(|b| !b.hung)
                .flat_map(|b| b.msgs.iter().filter(|m| !m.lost).map(|m| (m.touched, m.id)))
                .chain(self.retrying.iter().map(|r| (r.touched, r.id)))
                .chain(self.redeliver.iter().map(|&(id, t)| (t, id)))
                .chain(self.dead.iter().map(|d| (d.touched, d.id)))
                .filter(|&(t, _)| fresh_after.is_some_and(|f| t <= f))
                .collect();
            held.sort_unstable();
            // One XCLAIM per last-touch time, its min-idle the time since:
            // it refreshes what is still ours and takes back nothing another
            // consumer claimed since (see `HeldMessage::touched`).
            for group in held.chunk_by(|a, b| a.0 == b.0) {
                let min_idle = untouched_for(now, group[0].0);
                let ids: Vec<StreamId> = group.iter().map(|&(_, id)| id).collect();
                let mut w = CommandWriter::begin(&mut self.out, 6 + ids.len());
                w.arg(b"XCLAIM")
                    .arg(&self.cfg.stream)
                    .arg(&self.cfg.group)
                    .arg(&self.cfg.consumer)
                    .arg_u64(min_idle.as_millis() as u64);
                for id in &ids {
                    w.arg_id(*id);
                }
                w.arg(b"JUSTID");
                drop(w);
                self.push_sent(now, Sent::Refresh(ids), Duration::ZERO);
            }
        }
    }

    /// `XCLAIM s g me <min-idle> ids...`: claimed entries come back for
    /// their delivery counts and a batch.
    fn write_claim_ids(&mut self, now: Instant, kind: Fetch, ids: &[StreamId], min_idle: Duration) {
        let mut w = CommandWriter::begin(&mut self.out, 5 + ids.len());
        w.arg(b"XCLAIM")
            .arg(&self.cfg.stream)
            .arg(&self.cfg.group)
            .arg(&self.cfg.consumer)
            .arg_u64(min_idle.as_millis() as u64);
        for id in ids {
            w.arg_id(*id);
        }
        drop(w);
        self.push_sent(now, Sent::Fetch(kind), Duration::ZERO);
    }

    /// Dead letters: to the stream (atomically with their ack), dropped
    /// (acked), or kept pending, as configured.
    fn flush_dead(&mut self, now: Instant) {
        if self.dead.is_empty() {
            return;
        }
        let items = std::mem::take(&mut self.dead);
        match self.cfg.dead_letter.clone() {
            Some(DeadLetter::Stream(key)) => {
                CommandWriter::begin(&mut self.out, 1).arg(b"MULTI");
                for item in &items {
                    self.write_dead_letter_xadd(&key, item);
                }
                let mut w = CommandWriter::begin(&mut self.out, 3 + items.len());
                w.arg(b"XACK").arg(&self.cfg.stream).arg(&self.cfg.group);
                for item in &items {
                    w.arg_id(item.id);
                }
                drop(w);
                let mut left = items.len() + 3;
                if self.cfg.delete_on_ack {
                    // Acknowledged entries are deleted, dead letters too
                    // (their copy lives in the dead-letter stream).
                    let mut w = CommandWriter::begin(&mut self.out, 2 + items.len());
                    w.arg(b"XDEL").arg(&self.cfg.stream);
                    for item in &items {
                        w.arg_id(item.id);
                    }
                    drop(w);
                    left += 1;
                }
                CommandWriter::begin(&mut self.out, 1).arg(b"EXEC");
                self.push_sent(
                    now,
                    Sent::Tx {
                        kind: TxKind::DeadLetter(items),
                        left,
                        failed: None,
                    },
                    Duration::ZERO,
                );
            }
            Some(DeadLetter::Drop) => {
                for item in items {
                    self.acks_pending.push(item.id);
                    self.dead_lettered(item, DeadLetterAction::Dropped);
                }
            }
            Some(DeadLetter::KeepPending) | None => {
                for item in items {
                    self.dead_lettered(item, DeadLetterAction::KeptPending);
                }
            }
        }
    }

    fn write_dead_letter_xadd(&mut self, key: &[u8], item: &DeadItem) {
        let no_fields = Fields::new();
        let fields = item.fields.as_ref().unwrap_or(&no_fields);
        let mut id_buf = IdBuf::new();
        let id = item.id.encode(&mut id_buf).to_vec();
        let mut deliveries = itoa::Buffer::new();
        let meta: [(&[u8], &[u8]); 6] = [
            (b"dlq_stream", &self.cfg.stream),
            (b"dlq_id", &id),
            (b"dlq_group", &self.cfg.group),
            (b"dlq_consumer", &self.cfg.consumer),
            (
                b"dlq_deliveries",
                deliveries.format(item.attempt).as_bytes(),
            ),
            (b"dlq_reason", item.reason.as_bytes()),
        ];
        let mut w = CommandWriter::begin(&mut self.out, 3 + 2 * (fields.len() + meta.len()));
        w.arg(b"XADD").arg(key).arg(b"*");
        for (f, v) in fields {
            w.arg(f).arg(v);
        }
        for (f, v) in meta {
            w.arg(f).arg(v);
        }
    }

    fn flush_acks(&mut self, now: Instant) {
        while !self.acks_pending.is_empty() {
            let take = self.acks_pending.len().min(MAX_IDS_PER_ACK);
            let ids: Vec<StreamId> = self.acks_pending.drain(..take).collect();
            if self.cfg.delete_on_ack && self.has_xackdel {
                let mut w = CommandWriter::begin(&mut self.out, 5 + ids.len());
                w.arg(b"XACKDEL")
                    .arg(&self.cfg.stream)
                    .arg(&self.cfg.group)
                    .arg(b"IDS")
                    .arg_u64(ids.len() as u64);
                for id in &ids {
                    w.arg_id(*id);
                }
                drop(w);
                self.push_sent(now, Sent::AckDel(ids), Duration::ZERO);
                continue;
            }
            if self.cfg.delete_on_ack {
                CommandWriter::begin(&mut self.out, 1).arg(b"MULTI");
            }
            let mut w = CommandWriter::begin(&mut self.out, 3 + ids.len());
            w.arg(b"XACK").arg(&self.cfg.stream).arg(&self.cfg.group);
            for id in &ids {
                w.arg_id(*id);
            }
            drop(w);
            if !self.cfg.delete_on_ack {
                self.push_sent(now, Sent::Ack(ids), Duration::ZERO);
                continue;
            }
            let mut w = CommandWriter::begin(&mut self.out, 2 + ids.len());
            w.arg(b"XDEL").arg(&self.cfg.stream);
            for id in &ids {
                w.arg_id(*id);
            }
            drop(w);
            CommandWriter::begin(&mut self.out, 1).arg(b"EXEC");
            let tx = Sent::Tx {
                kind: TxKind::AckDelete(ids),
                left: 4,
                failed: None,
            };
            self.push_sent(now, tx, Duration::ZERO);
        }
    }

    fn push_sent(&mut self, now: Instant, what: Sent, extra: Duration) {
        let deadline = now + self.cfg.reply_timeout + extra;
        self.sent.push_back(SentCmd { what, deadline });
    }

    fn write_handshake(&mut self, now: Instant) -> usize {
        let steps =
            handshake::write_handshake(&mut self.out, &self.cfg.connect, &self.cfg.consumer);
        for step in &steps {
            self.push_sent(now, Sent::Handshake(*step), Duration::ZERO);
        }
        steps.len()
    }

    fn write_group_create(&mut self, now: Instant) {
        let argc = if self.cfg.make_stream { 6 } else { 5 };
        let start = self.cfg.group_start.to_arg();
        let mut w = CommandWriter::begin(&mut self.out, argc);
        w.arg(b"XGROUP")
            .arg(b"CREATE")
            .arg(&self.cfg.stream)
            .arg(&self.cfg.group)
            .arg(&start);
        if self.cfg.make_stream {
            w.arg(b"MKSTREAM");
        }
        drop(w);
        self.push_sent(now, Sent::GroupCreate, Duration::ZERO);
    }

    fn write_fetch(&mut self, now: Instant, kind: Fetch, from: ReadFrom, block: Option<Duration>) {
        // Whole milliseconds, at least 1: BLOCK 0 would wait forever.
        let block_ms = block.map(|b| (b.as_millis() as u64).max(1));
        let argc = if block_ms.is_some() { 11 } else { 9 };
        let mut w = CommandWriter::begin(&mut self.out, argc);
        w.arg(b"XREADGROUP")
            .arg(b"GROUP")
            .arg(&self.cfg.group)
            .arg(&self.cfg.consumer)
            .arg(b"COUNT")
            .arg_u64(self.cfg.count);
        if let Some(ms) = block_ms {
            w.arg(b"BLOCK").arg_u64(ms);
        }
        w.arg(b"STREAMS").arg(&self.cfg.stream);
        match from {
            ReadFrom::New => w.arg(b">"),
            ReadFrom::PendingAfter(id) => w.arg_id(id),
        };
        drop(w);
        let extra = block_ms.map_or(Duration::ZERO, Duration::from_millis);
        self.push_sent(now, Sent::Fetch(kind), extra);
    }

    fn write_claim(&mut self, now: Instant) {
        let min_idle = self.cfg.claim_min_idle.as_millis() as u64;
        CommandWriter::begin(&mut self.out, 8)
            .arg(b"XAUTOCLAIM")
            .arg(&self.cfg.stream)
            .arg(&self.cfg.group)
            .arg(&self.cfg.consumer)
            .arg_u64(min_idle)
            .arg_id(self.claim.cursor)
            .arg(b"COUNT")
            .arg_u64(self.cfg.count);
        self.push_sent(now, Sent::Fetch(Fetch::Claim), Duration::ZERO);
    }

    fn counts_page(&self, pending: &PendingCounts) -> u64 {
        pending.entries.len() as u64 + 16
    }

    /// `XPENDING s g <start> <end> <n> <me>`: delivery counts of the batch,
    /// paged when our other pending entries fall in the same id range.
    fn write_counts_query(
        &mut self,
        now: Instant,
        pending: PendingCounts,
        start: StreamId,
        exclusive: bool,
    ) {
        let end = pending.entries.last().map_or(start, |(id, _)| *id);
        let mut start_arg = Vec::with_capacity(42);
        if exclusive {
            start_arg.push(b'(');
        }
        start_arg.extend_from_slice(start.to_string().as_bytes());
        let page = self.counts_page(&pending);
        CommandWriter::begin(&mut self.out, 7)
            .arg(b"XPENDING")
            .arg(&self.cfg.stream)
            .arg(&self.cfg.group)
            .arg(&start_arg)
            .arg_id(end)
            .arg_u64(page)
            .arg(&self.cfg.consumer);
        self.push_sent(now, Sent::Counts(pending), Duration::ZERO);
    }
}

impl Sent {
    fn name(&self) -> &'static str {
        match self {
            Sent::Handshake(step) => step.name(),
            Sent::GroupCreate => "XGROUP CREATE",
            Sent::Fetch(Fetch::Claim) => "XAUTOCLAIM",
            Sent::Fetch(Fetch::Redeliver | Fetch::Failover(_)) => "XCLAIM",
            Sent::Fetch(_) => "XREADGROUP",
            Sent::Counts(_) => "XPENDING",
            Sent::Ack(_) => "XACK",
            Sent::AckDel(_) => "XACKDEL",
            Sent::Tx { .. } => "MULTI/EXEC",
            Sent::Info => "INFO",
            Sent::Heartbeat => "SET",
            Sent::PendingSummary | Sent::DeadPending(_) => "XPENDING",
            Sent::Liveness(_) => "GET",
            Sent::DelConsumer(_) => "XGROUP DELCONSUMER",
            Sent::Refresh(_) => "XCLAIM",
        }
    }
}

/// Small seeded generator for reconnect jitter (SplitMix64).
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
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

/// Redis Cluster's hash tag: the part between the first `{` and the next
/// `}`, when not empty.
fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let len = key[open + 1..].iter().position(|&b| b == b'}')?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

/// Whether `INFO server` describes a server with `XACKDEL` (Redis 8.2+;
/// Valkey reports a fake `redis_version`, so its own field decides).
fn server_has_xackdel(info: &[u8]) -> bool {
    let text = String::from_utf8_lossy(info);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
            .map(str::trim)
    };
    if field("valkey_version").is_some() {
        return false;
    }
    let Some(version) = field("redis_version") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (8, 2)
}

/// A per-process random seed, for instances that were given none: two
/// processes must not share a heartbeat token.
fn process_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish()
}

/// Min-idle for claiming back an entry last seen ours at `touched` (a reply
/// time, so no earlier than the server's last touch): the time since, less
/// a millisecond for the server's millisecond clock.
fn untouched_for(now: Instant, touched: Instant) -> Duration {
    now.saturating_duration_since(touched)
        .saturating_sub(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(ids: &[(u64, u64)]) -> HeldSlots {
        HeldSlots::new(
            ids.iter()
                .map(|&(ms, seq)| HeldMessage {
                    id: StreamId::new(ms, seq),
                    attempt: 1,
                    fields: None,
                    #[allow(clippy::disallowed_methods)] // a test's instant
                    touched: Instant::now(),
                    lost: false,
                })
                .collect(),
        )
    }

    fn taken(slots: &mut HeldSlots, ms: u64, seq: u64) -> Option<StreamId> {
        slots.take(StreamId::new(ms, seq)).map(|m| m.id)
    }

    #[test]
    fn held_slots_match_each_message_once_in_any_order() {
        let mut slots = held(&[(1, 0), (1, 1), (2, 0), (3, 5)]);
        // In order (the hint), then out of order (the index), then repeats
        // and strangers, which match nothing.
        assert_eq!(taken(&mut slots, 1, 0), Some(StreamId::new(1, 0)));
        assert_eq!(taken(&mut slots, 3, 5), Some(StreamId::new(3, 5)));
        assert_eq!(taken(&mut slots, 1, 1), Some(StreamId::new(1, 1)));
        assert_eq!(taken(&mut slots, 1, 1), None);
        assert_eq!(taken(&mut slots, 9, 9), None);
        assert_eq!(taken(&mut slots, 0, 0), None);
        assert_eq!(taken(&mut slots, 2, 0), Some(StreamId::new(2, 0)));
        assert_eq!(taken(&mut slots, 2, 0), None);
        assert!(slots.slots.iter().all(Option::is_none));
    }

    #[test]
    fn held_slots_with_a_repeated_id_give_each_copy_once() {
        let mut slots = held(&[(5, 0), (4, 0), (5, 0)]);
        assert_eq!(taken(&mut slots, 5, 0), Some(StreamId::new(5, 0)));
        assert_eq!(taken(&mut slots, 5, 0), Some(StreamId::new(5, 0)));
        assert_eq!(taken(&mut slots, 5, 0), None);
        assert_eq!(taken(&mut slots, 4, 0), Some(StreamId::new(4, 0)));
    }

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

    #[test]
    fn xackdel_is_detected_from_info() {
        assert!(server_has_xackdel(
            b"# Server\r\nredis_version:8.2.1\r\nredis_mode:standalone\r\n"
        ));
        assert!(server_has_xackdel(b"redis_version:9.0.0\r\n"));
        assert!(!server_has_xackdel(b"# Server\r\nredis_version:7.0.15\r\n"));
        assert!(!server_has_xackdel(b"redis_version:8.0.2\r\n"));
        // Valkey reports a fake redis_version; its own field decides.
        assert!(!server_has_xackdel(
            b"redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\n"
        ));
        assert!(!server_has_xackdel(b"garbage"));
    }
}
