//! The world the property tests, the stateful fuzz target and the
//! deterministic scenarios drive: several consumers (each a
//! `MultiConsumer`, of one stream or of several under one in-flight
//! limit) against the in-memory model of Redis Streams, with the
//! invariants checked as it runs, per stream and id. Shared by
//! `core/tests/model.rs` and `fuzz/src/lib.rs` (target `model`).
// Each includer uses its own part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};

use xgroup_core::sim::{ConnId, SimOptions, SimServer};
use xgroup_core::{
    Batch, Conn, ConsumerConfig, DeadLetter, Decoder, Disposition, Error, Event, MultiConsumer,
    Outcome, StreamConn, StreamId, Value,
};

/// The streams a consumer may read (the first alone unless
/// [`Features::streams`] says more): one hash tag for all, as streams
/// are put in one slot.
pub(crate) const STREAMS: [&[u8]; 3] = [b"orders", b"{orders}:b", b"{orders}:c"];
/// [`STREAMS`] with a hash tag of its own for each ([`Features::own_tags`]),
/// all of them in the slot of `orders` still.
pub(crate) const OWN_TAG_STREAMS: [&[u8]; 3] =
    [b"orders", b"{orders-29231}:b", b"{orders-38270}:c"];
pub(crate) const STREAM: &[u8] = STREAMS[0];
pub(crate) const GROUP: &[u8] = b"workers";
pub(crate) const MIN_IDLE: Duration = Duration::from_millis(1000);
pub(crate) const CLAIM_EVERY: Duration = Duration::from_millis(700);
/// In the streams' hash slot (its hash tag is the first stream's key), as
/// a cluster needs; none of them.
pub(crate) const DLQ: &[u8] = b"{orders}:dlq";
pub(crate) const MAX_DELIVERIES: u64 = 4;
pub(crate) const RETRY_AFTER: Duration = Duration::from_millis(2500);

/// Features switched on for a run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Features {
    pub(crate) heartbeat: bool,
    pub(crate) dead_letters: bool,
    pub(crate) delete_on_ack: bool,
    pub(crate) polling: bool,
    /// One connection per consumer instead of a control and a read one.
    pub(crate) one_connection: bool,
    /// No read-ahead (with it: a small budget, three batches or 40 bytes,
    /// so its limits are met often).
    pub(crate) no_read_ahead: bool,
    /// The consumers follow a cluster ([`ClusterModel`]).
    pub(crate) cluster: bool,
    /// How many of [`STREAMS`] every consumer reads, in one group, under
    /// its one in-flight limit (0 or 1: the first alone).
    pub(crate) streams: usize,
    /// The streams are [`OWN_TAG_STREAMS`]: each its own hash tag.
    pub(crate) own_tags: bool,
}

impl Features {
    /// How many streams are read: 1 to [`STREAMS`]' length.
    pub(crate) fn stream_count(&self) -> usize {
        self.streams.clamp(1, STREAMS.len())
    }

    /// The keys of the streams read, in order.
    pub(crate) fn stream_keys(&self) -> &'static [&'static [u8]] {
        let all = match self.own_tags {
            true => &OWN_TAG_STREAMS,
            false => &STREAMS,
        };
        &all[..self.stream_count()]
    }

    /// The index of a stream key among those read.
    pub(crate) fn stream_index(&self, key: &[u8]) -> usize {
        self.stream_keys()
            .iter()
            .position(|s| *s == key)
            .unwrap_or_else(|| panic!("a stream nobody reads: {:?}", String::from_utf8_lossy(key)))
    }
}

/// An entry of one of the streams: the stream's index in the keys read and
/// the id (two streams may hold the same id).
pub(crate) type Key = (usize, StreamId);

#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// `k & 7` entries added to stream `(k >> 3) % streams`.
    Produce(u8),
    Step(usize),
    /// Complete the oldest batch of a consumer: 0 ack all, 1 ack none,
    /// 2 ack every other message, 3 retry every other message and ack the
    /// rest, 4 retry after `RETRY_AFTER`, 5 dead-letter all.
    Complete(usize, u8),
    /// Cut a connection of a consumer: `i % consumers` which, `i /
    /// consumers` which connection (see [`World::disconnect`]).
    Disconnect(usize),
    Crash(usize),
    Advance(u16),
    /// Delete an entry produced (of any stream), picked by its place.
    Delete(u16),
    /// A second process starts under worker `i`'s name (with heartbeats):
    /// one of them must stop with `DuplicateConsumer`, the other go on.
    Duplicate(usize),
    /// In a cluster: the slot's owner dies and another node takes over.
    Failover(usize),
    /// In a cluster: a migration of the slot starts, or the one under way
    /// ends.
    Migrate(usize),
    /// In a cluster: the dead nodes are back.
    Recover,
}

pub(crate) struct Worker {
    pub(crate) name: String,
    pub(crate) consumer: MultiConsumer,
    /// The model's connection for each of the consumer's data connections,
    /// at its [`StreamConn::index`] (a discovery link's place stays empty).
    pub(crate) conns: Vec<Option<ConnId>>,
    /// In a cluster, per stream: the replies waiting on its discovery link,
    /// when open.
    pub(crate) discovery: Vec<Option<Vec<u8>>>,
    /// Batches with the handler, of every stream.
    pub(crate) batches: Vec<Batch>,
    /// The in-flight limit, shared by the streams.
    pub(crate) max_in_flight: usize,
    /// Per stream: bumped on every crash, and on every disconnect of one of
    /// that stream's connections: "alive since" (each stream has its own
    /// connections, refreshes and claims).
    pub(crate) epoch: Vec<u64>,
    /// Expected to stop (duplicate-name tests).
    pub(crate) stopped: Option<Option<Error>>,
    /// Its own claim min idle and sweep interval, instead of the shared
    /// `MIN_IDLE` and `CLAIM_EVERY` (see [`World::tune_claims`]).
    pub(crate) claims: Option<(Duration, Duration)>,
}

impl Worker {
    pub(crate) fn new(
        name: String,
        consumer: MultiConsumer,
        max_in_flight: usize,
        claims: Option<(Duration, Duration)>,
    ) -> Self {
        let streams = consumer.streams();
        Worker {
            name,
            consumer,
            conns: vec![None; streams * Conn::COUNT],
            discovery: vec![None; streams],
            batches: Vec::new(),
            max_in_flight,
            epoch: vec![0; streams],
            stopped: None,
            claims,
        }
    }

    /// Whether any data connection of stream `s` is open.
    fn stream_connected(&self, s: usize) -> bool {
        Conn::ALL
            .into_iter()
            .any(|conn| self.conns[StreamConn { stream: s, conn }.index()].is_some())
    }

    /// Every stream's epoch moves on (the process, or its handlers, gone).
    fn bump_all(&mut self) {
        for e in &mut self.epoch {
            *e += 1;
        }
    }
}

pub(crate) struct World {
    pub(crate) sim: SimServer,
    pub(crate) now: Instant,
    pub(crate) workers: Vec<Worker>,
    /// Chunk sizes used to cut server output (empty: whole).
    pub(crate) chunks: Vec<usize>,
    pub(crate) chunk_at: usize,
    /// Every event, for split-invariance comparison.
    pub(crate) log: Vec<String>,
    /// Entries a handler completed with an ack, or that were deleted.
    pub(crate) may_ack: HashSet<Key>,
    pub(crate) handled: BTreeMap<Key, u32>,
    pub(crate) produced: BTreeSet<Key>,
    pub(crate) deleted: BTreeSet<Key>,
    pub(crate) count: u64,
    pub(crate) features: Features,
    /// Retry-after promises: entry -> (worker, its stream's epoch then, not
    /// before).
    pub(crate) retry_after: BTreeMap<Key, (usize, u64, Instant)>,
    pub(crate) sim_start: Instant,
    pub(crate) trace: bool,
    pub(crate) tx_log: Vec<String>,
    /// Check that no entry a live handler holds goes to another consumer.
    pub(crate) check_held: bool,
    /// Entries with a handler: entry -> (worker, its stream's epoch at
    /// delivery).
    pub(crate) held: BTreeMap<Key, (usize, u64)>,
    /// The consumers follow a cluster (see [`ClusterModel`]); `None`: one
    /// server.
    pub(crate) cluster: Option<ClusterModel>,
}

/// Cluster nodes' ports in the model: node `n` listens on `NODE_PORT + n`.
pub(crate) const NODE_PORT: u16 = 7000;
pub(crate) const NODES: usize = 3;

/// A 3-node Redis Cluster in front of the model: one keyspace (the model
/// server, as if every write reached the replicas), served by the node
/// that owns the streams' slot (every key used is in that one slot). A node that does not answers `MOVED`;
/// while the slot is migrating (its keys already at the target) the owner
/// answers `ASK` and the target serves commands sent after `ASKING`. A
/// failover kills the owner (its connections cut, connects refused until
/// it is back) and makes another node the owner.
pub(crate) struct ClusterModel {
    pub(crate) owner: usize,
    pub(crate) migrating_to: Option<usize>,
    pub(crate) down: [bool; NODES],
    /// Each data connection's node and what its replies wait on, by
    /// worker and connection.
    pub(crate) routes: HashMap<(usize, StreamConn), Route>,
    /// Redirects answered, for the run's summary.
    pub(crate) redirects: u64,
}

/// One data connection of a consumer to a cluster node.
pub(crate) struct Route {
    pub(crate) node: usize,
    /// Commands from the consumer, cut into frames.
    pub(crate) commands: Decoder,
    /// Replies from the model, cut into frames.
    pub(crate) replies: Decoder,
    /// In order: a reply from the model, or one the node made up.
    pub(crate) order: VecDeque<Option<Bytes>>,
    /// `ASKING` came: the next command (all of a `MULTI`) may use the
    /// migrating slot.
    pub(crate) asking: bool,
    pub(crate) in_multi: bool,
}

impl ClusterModel {
    pub(crate) fn new() -> Self {
        ClusterModel {
            owner: 0,
            migrating_to: None,
            down: [false; NODES],
            routes: HashMap::new(),
            redirects: 0,
        }
    }

    /// `CLUSTER SLOTS`: every slot the owner's (the map does not change
    /// while a slot migrates).
    fn slots_reply(&self) -> Vec<u8> {
        let port = NODE_PORT + self.owner as u16;
        format!("*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:{port}\r\n$2\r\nid\r\n")
            .into_bytes()
    }
}

/// A command's name (upper case) and whether it names a key (every key
/// the consumer uses is in the stream's slot).
fn command_info(frame: &[u8]) -> (String, bool) {
    let mut d = Decoder::new();
    d.feed(frame);
    let args = match d.next_frame() {
        Ok(Some(f)) => match Value::from_frame(f) {
            Value::Array(items) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let word = |i: usize| match args.get(i) {
        Some(Value::Bulk(b)) => String::from_utf8_lossy(b).to_ascii_uppercase(),
        _ => String::new(),
    };
    let name = word(0);
    let keyed = !matches!(
        name.as_str(),
        "AUTH" | "HELLO" | "CLIENT" | "SELECT" | "INFO" | "PING" | "ROLE" | "CLUSTER" | "ASKING"
    );
    (name, keyed)
}

pub(crate) fn config(
    name: &str,
    count: u64,
    in_flight: usize,
    seed: u64,
    f: Features,
) -> ConsumerConfig {
    config_with_claims(name, count, in_flight, seed, f, None)
}

/// [`config`] with this claim min idle and sweep interval (`None`: the
/// shared ones).
pub(crate) fn config_with_claims(
    name: &str,
    count: u64,
    in_flight: usize,
    seed: u64,
    f: Features,
    claims: Option<(Duration, Duration)>,
) -> ConsumerConfig {
    let (min_idle, every) = claims.unwrap_or((MIN_IDLE, CLAIM_EVERY));
    let mut b = ConsumerConfig::builder(STREAM, GROUP, name);
    if f.stream_count() > 1 {
        b = b.streams(f.stream_keys());
    }
    b = b
        .count(count)
        .block(Duration::from_millis(500))
        .claim_interval(every)
        .claim_min_idle(min_idle)
        .max_in_flight_batches(in_flight)
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(200))
        .retry_backoff(Duration::from_millis(100), Duration::from_millis(400))
        .reply_timeout(Duration::from_secs(5))
        .delete_on_ack(f.delete_on_ack)
        .separate_read_connection(!f.one_connection)
        .seed(seed);
    // Several streams need read-ahead (their shared slots are handed out
    // from it): the switch applies to one stream only.
    b = if f.no_read_ahead && f.stream_count() <= 1 {
        b.no_read_ahead()
    } else {
        b.read_ahead(3 * count as usize, 40)
    };
    b = if f.heartbeat {
        b.heartbeat(Duration::from_millis(200), 2)
    } else {
        b.no_heartbeat()
    };
    if f.dead_letters {
        b = b.max_deliveries(MAX_DELIVERIES, DeadLetter::Stream(Bytes::from_static(DLQ)));
    } else {
        b = b.dead_letter(DeadLetter::Stream(Bytes::from_static(DLQ)));
    }
    if f.polling {
        b = b.receive_interval(Duration::from_millis(150));
    }
    if f.cluster {
        let seeds = (0..NODES)
            .map(|n| format!("127.0.0.1:{}", NODE_PORT + n as u16))
            .collect::<Vec<_>>()
            .join(",");
        match xgroup_core::parse_target(&format!("redis+cluster://{seeds}")) {
            Ok((xgroup_core::Target::Cluster(target), _)) => b = b.cluster(target),
            other => panic!("a cluster URL: {other:?}"),
        }
    }
    b.build().unwrap()
}

impl World {
    pub(crate) fn new(consumers: usize, count: u64, chunks: Vec<usize>, v62: bool) -> Self {
        World::with(consumers, count, chunks, v62, Features::default())
    }

    pub(crate) fn with(
        consumers: usize,
        count: u64,
        chunks: Vec<usize>,
        v62: bool,
        features: Features,
    ) -> Self {
        // One slot for every key (the cluster in front of the model has one).
        for key in features.stream_keys() {
            assert_eq!(xgroup_core::key_slot(key), xgroup_core::key_slot(DLQ));
        }
        let now = Instant::now();
        let sim = SimServer::new(
            SimOptions {
                autoclaim_v62: v62,
                ..SimOptions::default()
            },
            now,
        );
        let workers = (0..consumers)
            .map(|i| {
                let name = format!("c{i}");
                let in_flight = 1 + i % 2;
                let cfg = config(&name, count, in_flight, i as u64, features);
                Worker::new(name, MultiConsumer::new(cfg), in_flight, None)
            })
            .collect();
        World {
            sim,
            now,
            workers,
            chunks,
            chunk_at: 0,
            log: Vec::new(),
            may_ack: HashSet::new(),
            handled: BTreeMap::new(),
            produced: BTreeSet::new(),
            deleted: BTreeSet::new(),
            count,
            features,
            retry_after: BTreeMap::new(),
            sim_start: now,
            trace: false,
            tx_log: Vec::new(),
            check_held: false,
            held: BTreeMap::new(),
            cluster: features.cluster.then(ClusterModel::new),
        }
    }

    /// Worker `i` gets its own claim min idle and sweep interval (before
    /// the run; kept across crashes).
    pub(crate) fn tune_claims(&mut self, i: usize, min_idle: Duration, every: Duration) {
        let w = &mut self.workers[i];
        w.claims = Some((min_idle, every));
        w.consumer = MultiConsumer::new(config_with_claims(
            &w.name,
            self.count,
            w.max_in_flight,
            i as u64,
            self.features,
            w.claims,
        ));
    }

    /// How many streams each consumer reads.
    pub(crate) fn streams(&self) -> usize {
        self.features.stream_count()
    }

    /// The key of stream `s`.
    pub(crate) fn key(&self, s: usize) -> &'static [u8] {
        self.features.stream_keys()[s]
    }

    pub(crate) fn next_chunk(&mut self) -> usize {
        if self.chunks.is_empty() {
            return usize::MAX;
        }
        let c = self.chunks[self.chunk_at % self.chunks.len()];
        self.chunk_at += 1;
        c.max(1)
    }

    /// Drains a worker's outputs: events acted on, bytes sent to the model.
    pub(crate) fn drain(&mut self, i: usize) {
        loop {
            let mut progressed = false;
            while let Some((s, event)) = self.workers[i].consumer.poll_event() {
                progressed = true;
                self.on_event(i, s, event);
            }
            while let Some((to, bytes)) = self.workers[i].consumer.poll_transmit() {
                progressed = true;
                if self.cluster.is_some() {
                    self.cluster_transmit(i, to, &bytes);
                    continue;
                }
                let conn =
                    self.workers[i].conns[to.index()].expect("bytes to send without a connection");
                if self.trace {
                    let t = self.now - self.sim_start;
                    self.tx_log.push(format!(
                        "{t:?} {i} {to:?} -> {}",
                        String::from_utf8_lossy(&bytes).replace("\r\n", " ")
                    ));
                }
                self.sim.receive(conn, self.now, &bytes);
            }
            if !progressed {
                break;
            }
        }
        self.check_in_flight(i);
        // With a read connection nothing ever waits behind a blocked read:
        // no stream's control connection ever blocks.
        for s in 0..self.workers[i].consumer.streams() {
            let at = StreamConn {
                stream: s,
                conn: Conn::Control,
            };
            if let Some(control) = self.workers[i].conns[at.index()] {
                if self.workers[i].consumer.config().uses_read_connection() {
                    assert!(
                        !self.sim.is_blocked(control),
                        "c{i}'s control connection of stream {s} is blocked"
                    );
                }
            }
        }
    }

    /// Event `event` of worker `i` about its stream `s`.
    pub(crate) fn on_event(&mut self, i: usize, s: usize, event: Event) {
        let f = self.features;
        let t = self.now - self.sim_start;
        match self.streams() {
            1 => self.log.push(format!("{t:?} {i}: {event:?}")),
            _ => self.log.push(format!("{t:?} {i}: {event:?} @{s}")),
        }
        match event {
            Event::Connect(conn) if self.cluster.is_some() => {
                self.cluster_connect(i, StreamConn { stream: s, conn });
            }
            Event::Connect(conn) => {
                let to = StreamConn { stream: s, conn };
                let id = self.sim.connect(self.now);
                self.workers[i].conns[to.index()] = Some(id);
                self.workers[i].consumer.handle_connected(self.now, to);
            }
            Event::Disconnect(Conn::Discovery) => self.workers[i].discovery[s] = None,
            Event::Disconnect(conn) => {
                let to = StreamConn { stream: s, conn };
                if let Some(c) = self.cluster.as_mut() {
                    c.routes.remove(&(i, to));
                }
                self.workers[i].epoch[s] += 1;
                if let Some(id) = self.workers[i].conns[to.index()].take() {
                    self.sim.disconnect(id);
                }
            }
            Event::Deliver(batch) => {
                assert!(
                    batch.messages.len() as u64 <= self.count,
                    "a batch of {} past count {}",
                    batch.messages.len(),
                    self.count
                );
                // The batch names its stream three ways, which agree.
                assert_eq!(f.stream_index(&batch.stream), s, "the stream of {batch:?}");
                assert_eq!(
                    self.workers[i].consumer.stream_of(batch.id),
                    s,
                    "the stream {:?} encodes",
                    batch.id
                );
                let name = self.workers[i].name.clone();
                let pending = self.sim.pending(self.key(s), GROUP);
                // An entry a handler still holds is never handed out again
                // to the same consumer (replay and self-claims skip it).
                for held in &self.workers[i].batches {
                    if f.stream_index(&held.stream) != s {
                        continue;
                    }
                    for m in &batch.messages {
                        assert!(
                            held.messages.iter().all(|h| h.id != m.id),
                            "{:?} of stream {s} delivered while its handler still holds it",
                            m.id
                        );
                    }
                }
                for m in &batch.messages {
                    let key = (s, m.id);
                    // A live handler's entries go to nobody else.
                    if let Some(&(w, epoch)) = self.held.get(&key) {
                        if self.check_held && w != i && self.workers[w].epoch[s] == epoch {
                            panic!("{:?} of stream {s} went to c{i} while c{w}'s handler (alive) holds it, at {:?}: {:#?}", m.id, self.now - self.sim_start, &self.log[self.log.len().saturating_sub(30)..]);
                        }
                    }
                    self.held.insert(key, (i, self.workers[i].epoch[s]));
                    // Retry-after: no consumer gets it before the promised
                    // time while the one that asked is alive.
                    if let Some(&(w, epoch, at)) = self.retry_after.get(&key) {
                        if self.now < at && w != i && self.workers[w].epoch[s] == epoch {
                            panic!("{:?} of stream {s} went to c{i} before its retry-after time (c{w} alive) at {:?}: {:#?}", m.id, self.now - self.sim_start, &self.log[self.log.len().saturating_sub(30)..]);
                        }
                    }
                    *self.handled.entry(key).or_default() += 1;
                    // Delivery counts come from the server and match it.
                    // While another live process shares the name (one took
                    // it over while this one's beats did not get through),
                    // this one may hand out what it read ahead before it
                    // notices and stops, with the count it read then: the
                    // other's replay counted one more since.
                    let shared = self
                        .workers
                        .iter()
                        .enumerate()
                        .any(|(j, w)| j != i && w.name == name && w.stopped.is_none());
                    if let Some(p) = pending.iter().find(|p| p.id == m.id) {
                        if p.consumer == name.as_bytes() && shared {
                            assert!(m.attempt <= p.delivery_count, "attempt of {:?}", m.id);
                        } else if p.consumer == name.as_bytes() {
                            assert_eq!(m.attempt, p.delivery_count, "attempt of {:?}", m.id);
                        }
                    }
                    assert!(m.attempt >= 1);
                }
                let w = &mut self.workers[i];
                w.batches.push(batch);
                // One limit over every stream: never more batches with the
                // handler than it allows, whichever streams they are of.
                assert!(
                    w.batches.len() <= w.max_in_flight,
                    "c{i}: {} batches in flight over its streams ({:?}), limit {}",
                    w.batches.len(),
                    w.batches
                        .iter()
                        .map(|b| f.stream_index(&b.stream))
                        .collect::<Vec<_>>(),
                    w.max_in_flight
                );
            }
            Event::Stopped(e) => {
                assert!(self.workers[i].stopped.is_none(), "stopped twice");
                assert!(
                    self.workers[i].consumer.is_stopped(),
                    "stopped before every stream did"
                );
                // The process is gone, and its handlers with it.
                self.workers[i].stopped = Some(e);
                self.workers[i].bump_all();
                self.workers[i].batches.clear();
            }
            _ => {}
        }
    }

    /// The handler-side count of batches in flight (delivered and not
    /// completed) is within the limit over all streams, and matches the
    /// consumer's, in sum and per stream.
    pub(crate) fn check_in_flight(&self, i: usize) {
        let f = self.features;
        let w = &self.workers[i];
        if w.stopped.is_some() {
            return;
        }
        assert!(
            w.batches.len() <= w.max_in_flight,
            "{} batches in flight, limit {}",
            w.batches.len(),
            w.max_in_flight
        );
        assert_eq!(w.consumer.in_flight(), w.batches.len());
        for s in 0..w.consumer.streams() {
            let here = w
                .batches
                .iter()
                .filter(|b| f.stream_index(&b.stream) == s)
                .count();
            let part = w.consumer.part(s).expect("a part per stream");
            assert_eq!(part.in_flight(), here, "c{i}: in flight on stream {s}");
        }
    }

    /// Server output to a worker, in chunks, stream by stream: each one's
    /// discovery link's first, then its control connection's.
    pub(crate) fn deliver_output(&mut self, i: usize) {
        for s in 0..self.workers[i].consumer.streams() {
            self.deliver_stream_output(i, s);
        }
    }

    fn deliver_stream_output(&mut self, i: usize, s: usize) {
        if let Some(out) = self.workers[i].discovery[s].as_mut().map(std::mem::take) {
            if !out.is_empty() {
                let to = StreamConn {
                    stream: s,
                    conn: Conn::Discovery,
                };
                self.workers[i].consumer.handle_input(self.now, to, &out);
                self.drain(i);
            }
        }
        for conn in Conn::ALL {
            let to = StreamConn { stream: s, conn };
            let Some(conn) = self.workers[i].conns[to.index()] else {
                continue;
            };
            let out = match self.cluster.is_some() {
                true => self.cluster_output(i, to, conn),
                false => self.sim.take_output(conn),
            };
            let mut rest: &[u8] = &out;
            while !rest.is_empty() {
                let n = self.next_chunk().min(rest.len());
                let (now, later) = rest.split_at(n);
                self.workers[i].consumer.handle_input(self.now, to, now);
                rest = later;
                self.drain(i);
                if self.workers[i].conns[to.index()] != Some(conn) {
                    break; // the consumer dropped the connection
                }
            }
        }
    }

    /// One round trip for worker `i`.
    pub(crate) fn step(&mut self, i: usize) {
        self.drain(i);
        self.deliver_output(i);
        self.drain(i);
    }

    /// Round trips until worker `i` has nothing more to read now.
    pub(crate) fn settle(&mut self, i: usize) {
        for _ in 0..50 {
            self.step(i);
            let w = &self.workers[i];
            let discovery = w.discovery.iter().flatten().any(|d| !d.is_empty());
            let data = w.conns.iter().flatten().any(|&c| self.sim.has_output(c));
            if !discovery && !data {
                return;
            }
        }
    }

    pub(crate) fn complete(&mut self, i: usize, how: u8) {
        if self.workers[i].batches.is_empty() {
            return;
        }
        let batch = self.workers[i].batches.remove(0);
        let s = self.features.stream_index(&batch.stream);
        // The entries this worker held without a break since their
        // delivery (no disconnect of their stream's connections or crash
        // since): only those are still its own to make promises about.
        let mut held_since_delivery = HashSet::new();
        for m in &batch.messages {
            let key = (s, m.id);
            if let Some(&(w, epoch)) = self.held.get(&key).filter(|&&(w, _)| w == i) {
                if epoch == self.workers[w].epoch[s] {
                    held_since_delivery.insert(m.id);
                }
                self.held.remove(&key);
            }
        }
        let each = |f: &dyn Fn(usize) -> Disposition| {
            Outcome::Each(
                batch
                    .messages
                    .iter()
                    .enumerate()
                    .map(|(k, m)| (m.id, f(k)))
                    .collect(),
            )
        };
        let retry_at = self.now + RETRY_AFTER;
        let outcome = match how {
            0 => Outcome::AckAll,
            1 => Outcome::AckNone,
            2 => Outcome::AckOnly(batch.messages.iter().step_by(2).map(|m| m.id).collect()),
            3 => each(&|k| {
                if k % 2 == 0 {
                    Disposition::Retry
                } else {
                    Disposition::Ack
                }
            }),
            4 => each(&|_| Disposition::RetryAt(retry_at)),
            5 => each(&|_| Disposition::DeadLetter("test".into())),
            // Out of order, with a repeat and an id from no batch: every
            // other message acked, the rest redelivered.
            _ => {
                let mut ids: Vec<StreamId> = batch
                    .messages
                    .iter()
                    .skip(1)
                    .step_by(2)
                    .map(|m| m.id)
                    .collect();
                ids.reverse();
                if let Some(&first) = ids.first() {
                    ids.push(first);
                }
                ids.push(StreamId::new(u64::MAX, 0));
                Outcome::AckOnly(ids)
            }
        };
        match &outcome {
            Outcome::AckAll => self
                .may_ack
                .extend(batch.messages.iter().map(|m| (s, m.id))),
            Outcome::AckOnly(ids) => self.may_ack.extend(ids.iter().map(|&id| (s, id))),
            Outcome::Each(list) => {
                for (id, d) in list {
                    match d {
                        Disposition::Ack => {
                            self.may_ack.insert((s, *id));
                        }
                        Disposition::RetryAt(at) => {
                            // In a cluster, a promise about an entry another
                            // consumer may have taken meanwhile (this one
                            // was cut off since the delivery, for as long
                            // as a node was down), or made while cut off
                            // (no refresh reaches the server), binds
                            // nobody. (On one server a cut connection
                            // comes back at once: no time passes.)
                            let cut_off = self.cluster.is_some()
                                && (!self.workers[i].stream_connected(s)
                                    || !held_since_delivery.contains(id));
                            let epoch = match cut_off {
                                true => u64::MAX,
                                false => self.workers[i].epoch[s],
                            };
                            self.retry_after.insert((s, *id), (i, epoch, *at));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        self.workers[i]
            .consumer
            .handle_completion(self.now, batch.id, outcome);
        self.drain(i);
    }

    /// Time passes in steps of at most 100 ms, every consumer's timers
    /// firing as they fall due.
    pub(crate) fn advance(&mut self, ms: u64) {
        let mut left = ms;
        while left > 0 {
            let step = left.min(100);
            left -= step;
            self.tick(step);
        }
    }

    pub(crate) fn tick(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        self.sim.advance(self.now);
        for i in 0..self.workers.len() {
            if let Some((at, _)) = self.workers[i].consumer.poll_timeout() {
                if at <= self.now {
                    self.workers[i].consumer.handle_timeout(self.now);
                    if let Some((next, kind)) = self.workers[i].consumer.poll_timeout() {
                        assert!(
                            next > self.now,
                            "deadline {kind:?} in the past after handle_timeout"
                        );
                    }
                    self.drain(i);
                }
            }
        }
        // Live consumers' event loops run as time passes: they read what
        // arrived (stalls are what Disconnect and Crash model).
        for i in 0..self.workers.len() {
            self.settle(i);
        }
    }

    /// Cuts one of worker `i`'s connections: of stream `which / 2` (modulo
    /// the streams), `which % 2` (0 control, 1 read, or the other when that
    /// one is not open).
    pub(crate) fn disconnect(&mut self, i: usize, which: usize) {
        let stream = (which / 2) % self.streams();
        let at = |k: usize| StreamConn {
            stream,
            conn: Conn::ALL[k],
        };
        let k = if self.workers[i].conns[at(which % 2).index()].is_some() {
            which % 2
        } else {
            (which + 1) % 2
        };
        let to = at(k);
        if let Some(conn) = self.workers[i].conns[to.index()].take() {
            self.workers[i].epoch[stream] += 1;
            self.sim.disconnect(conn);
            if let Some(c) = self.cluster.as_mut() {
                c.routes.remove(&(i, to));
            }
            self.workers[i]
                .consumer
                .handle_disconnected(self.now, to, "cut");
            self.drain(i);
        }
    }

    /// Worker `i`'s connections vanish without its knowing (its process is
    /// gone).
    pub(crate) fn drop_connections(&mut self, i: usize) {
        for conn in self.workers[i].conns.iter_mut().filter_map(Option::take) {
            self.sim.disconnect(conn);
        }
        for d in &mut self.workers[i].discovery {
            *d = None;
        }
        if let Some(c) = self.cluster.as_mut() {
            c.routes.retain(|(w, _), _| *w != i);
        }
    }

    pub(crate) fn crash(&mut self, i: usize) {
        self.drop_connections(i);
        let w = &mut self.workers[i];
        w.batches.clear();
        w.bump_all();
        w.stopped = None;
        w.consumer = MultiConsumer::new(config_with_claims(
            &w.name,
            self.count,
            w.max_in_flight,
            99 + i as u64,
            self.features,
            w.claims,
        ));
        self.drain(i);
    }

    /// Another process under worker `i`'s name (heartbeats only: without
    /// them nothing fences a name).
    pub(crate) fn duplicate(&mut self, i: usize) {
        if !self.features.heartbeat || self.workers.len() >= 6 {
            return;
        }
        let w = &self.workers[i];
        let (name, claims, in_flight) = (w.name.clone(), w.claims, w.max_in_flight);
        let seed = 500 + self.workers.len() as u64;
        let cfg = config_with_claims(&name, self.count, in_flight, seed, self.features, claims);
        self.workers.push(Worker::new(
            name,
            MultiConsumer::new(cfg),
            in_flight,
            claims,
        ));
        self.drain(self.workers.len() - 1);
    }

    /// `k & 7` entries added to stream `(k >> 3)` (modulo the streams).
    pub(crate) fn produce(&mut self, k: u8) {
        let s = usize::from(k >> 3) % self.streams();
        for n in 0..k & 7 {
            let v = format!("{n}");
            let id = self
                .sim
                .xadd(self.now, self.key(s), &[(b"n", v.as_bytes()), (b"x", b"y")]);
            self.produced.insert((s, id));
        }
        for i in 0..self.workers.len() {
            self.step(i);
        }
    }

    pub(crate) fn delete(&mut self, pick: u16) {
        if self.produced.is_empty() {
            return;
        }
        let (s, id) = *self
            .produced
            .iter()
            .nth(pick as usize % self.produced.len())
            .unwrap();
        if self.sim.xdel(self.key(s), id) {
            self.deleted.insert((s, id));
            self.may_ack.insert((s, id));
        }
    }

    // ----- the cluster in front of the model -----

    /// The node `conn` of worker `i` is to be opened to, by its port.
    fn node_of(&self, i: usize, conn: StreamConn) -> usize {
        let port = self.workers[i]
            .consumer
            .connect_address(conn)
            .unwrap_or_else(|| panic!("c{i}: a cluster connection without an address"))
            .port;
        let node = usize::from(port - NODE_PORT);
        assert!(
            node < NODES,
            "c{i}: a node that is not in the cluster: {port}"
        );
        node
    }

    fn cluster_connect(&mut self, i: usize, to: StreamConn) {
        let node = self.node_of(i, to);
        let c = self.cluster.as_mut().expect("a cluster");
        if c.down[node] {
            // Cut off from the server, as after a disconnect: its promises
            // about the stream's entries (retry-after, a live handler's
            // entries) lapse.
            if to.conn != Conn::Discovery {
                self.workers[i].epoch[to.stream] += 1;
            }
            self.workers[i]
                .consumer
                .handle_connect_failed(self.now, to, "connection refused");
            return;
        }
        if to.conn == Conn::Discovery {
            self.workers[i].discovery[to.stream] = Some(Vec::new());
        } else {
            let conn = self.sim.connect(self.now);
            self.workers[i].conns[to.index()] = Some(conn);
            c.routes.insert(
                (i, to),
                Route {
                    node,
                    commands: Decoder::new(),
                    replies: Decoder::new(),
                    order: VecDeque::new(),
                    asking: false,
                    in_multi: false,
                },
            );
        }
        self.workers[i].consumer.handle_connected(self.now, to);
    }

    /// Commands from worker `i` on `to`: the discovery link's answered at
    /// once, a data connection's served by the model or redirected.
    fn cluster_transmit(&mut self, i: usize, to: StreamConn, bytes: &[u8]) {
        let c = self.cluster.as_mut().expect("a cluster");
        if to.conn == Conn::Discovery {
            let mut d = Decoder::new();
            d.feed(bytes);
            while let Ok(Some(raw)) = d.next_raw() {
                let (name, _) = command_info(raw.bytes());
                let reply: Vec<u8> = match name.as_str() {
                    "CLUSTER" if raw.bytes().windows(6).any(|w| w == b"SHARDS") => {
                        b"-ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.\r\n".to_vec()
                    }
                    "CLUSTER" => c.slots_reply(),
                    _ => b"+OK\r\n".to_vec(),
                };
                let out = self.workers[i].discovery[to.stream]
                    .as_mut()
                    .expect("bytes on a discovery link that is not open");
                out.extend_from_slice(&reply);
            }
            return;
        }
        let conn = self.workers[i].conns[to.index()].expect("bytes without a connection");
        let route = c
            .routes
            .get_mut(&(i, to))
            .expect("a data connection without a route");
        route.commands.feed(bytes);
        let mut forward = Vec::new();
        while let Ok(Some(raw)) = route.commands.next_raw() {
            let (name, keyed) = command_info(raw.bytes());
            if name == "ASKING" {
                route.asking = true;
                route.order.push_back(Some(Bytes::from_static(b"+OK\r\n")));
                continue;
            }
            let asking = route.asking;
            match name.as_str() {
                "MULTI" => route.in_multi = true,
                "EXEC" | "DISCARD" => route.in_multi = false,
                _ => {}
            }
            if !route.in_multi {
                route.asking = false;
            }
            let (node, owner) = (route.node, c.owner);
            let served = !keyed
                || match c.migrating_to {
                    Some(target) => node == target && asking,
                    None => node == owner,
                };
            if served {
                route.order.push_back(None);
                forward.extend_from_slice(raw.bytes());
                continue;
            }
            let redirect = match c.migrating_to {
                Some(target) if node == owner => {
                    format!("-ASK 1 127.0.0.1:{}\r\n", NODE_PORT + target as u16)
                }
                _ => format!("-MOVED 1 127.0.0.1:{}\r\n", NODE_PORT + owner as u16),
            };
            c.redirects += 1;
            route.order.push_back(Some(Bytes::from(redirect)));
        }
        if !forward.is_empty() {
            self.sim.receive(conn, self.now, &forward);
        }
    }

    /// Replies on worker `i`'s data connection `to`, in command order: the
    /// model's and the node's own redirects.
    fn cluster_output(&mut self, i: usize, to: StreamConn, conn: ConnId) -> Bytes {
        let from_model = self.sim.take_output(conn);
        let c = self.cluster.as_mut().expect("a cluster");
        let Some(route) = c.routes.get_mut(&(i, to)) else {
            return from_model;
        };
        route.replies.feed(&from_model);
        let mut out = Vec::new();
        while let Some(next) = route.order.front() {
            match next {
                Some(made_up) => out.extend_from_slice(made_up),
                None => match route.replies.next_raw() {
                    Ok(Some(raw)) => out.extend_from_slice(raw.bytes()),
                    _ => break,
                },
            }
            route.order.pop_front();
        }
        Bytes::from(out)
    }

    /// The owner of the streams' slot dies: its connections are cut (each
    /// consumer sees them fail), it refuses new ones until [`recover`], and
    /// another node (its replica, with every write) takes the slot.
    pub(crate) fn cluster_failover(&mut self, pick: usize) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let old = c.owner;
        c.down[old] = true;
        c.migrating_to = None;
        let alive: Vec<usize> = (0..NODES).filter(|&n| !c.down[n]).collect();
        if let Some(&new) = alive.get(pick % alive.len().max(1)) {
            c.owner = new;
        }
        self.cut_node(old);
    }

    /// Every node is up again (the old owners as replicas).
    pub(crate) fn cluster_recover(&mut self) {
        if let Some(c) = self.cluster.as_mut() {
            c.down = [false; NODES];
        }
    }

    /// The streams' slot starts migrating to another live node (its key
    /// moved already), or the migration under way ends (the target owns
    /// the slot).
    pub(crate) fn cluster_migrate(&mut self, pick: usize) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        match c.migrating_to.take() {
            Some(target) => c.owner = target,
            None => {
                let others: Vec<usize> =
                    (0..NODES).filter(|&n| n != c.owner && !c.down[n]).collect();
                c.migrating_to = others.get(pick % others.len().max(1)).copied();
            }
        }
    }

    /// Every connection to `node` (data and discovery) fails.
    fn cut_node(&mut self, node: usize) {
        for i in 0..self.workers.len() {
            let mut open: Vec<StreamConn> = self
                .cluster
                .as_ref()
                .map(|c| {
                    c.routes
                        .iter()
                        .filter(|((w, _), r)| *w == i && r.node == node)
                        .map(|((_, k), _)| *k)
                        .collect()
                })
                .unwrap_or_default();
            // In connection order, not the map's.
            open.sort_by_key(|k| k.index());
            for k in open {
                if let Some(conn) = self.workers[i].conns[k.index()].take() {
                    self.sim.disconnect(conn);
                }
                if let Some(c) = self.cluster.as_mut() {
                    c.routes.remove(&(i, k));
                }
                self.workers[i].epoch[k.stream] += 1;
                self.workers[i]
                    .consumer
                    .handle_disconnected(self.now, k, "node killed");
                self.drain(i);
            }
            for stream in 0..self.workers[i].discovery.len() {
                let to = StreamConn {
                    stream,
                    conn: Conn::Discovery,
                };
                if self.workers[i].discovery[stream].is_some()
                    && self.workers[i].consumer.connect_address(to).map(|a| a.port)
                        == Some(NODE_PORT + node as u16)
                {
                    self.workers[i].discovery[stream] = None;
                    self.workers[i]
                        .consumer
                        .handle_disconnected(self.now, to, "node killed");
                    self.drain(i);
                }
            }
        }
    }

    pub(crate) fn run(&mut self, ops: &[Op]) {
        for i in 0..self.workers.len() {
            self.drain(i);
        }
        for op in ops {
            let n = self.workers.len();
            match *op {
                Op::Produce(k) => self.produce(k),
                Op::Step(i) => self.step(i % n),
                Op::Complete(i, how) => self.complete(i % n, how),
                Op::Disconnect(i) => self.disconnect(i % n, i / n),
                Op::Crash(i) => self.crash(i % n),
                Op::Advance(ms) => self.advance(u64::from(ms)),
                Op::Delete(pick) => self.delete(pick),
                Op::Duplicate(i) => self.duplicate(i % n),
                Op::Failover(pick) => self.cluster_failover(pick),
                Op::Migrate(pick) => self.cluster_migrate(pick),
                Op::Recover => self.cluster_recover(),
            }
            self.check_acks();
        }
    }

    /// No XACK for an entry (of its stream) that no handler acked, that
    /// was not deleted and that is not in the dead-letter stream; and no
    /// entry is both in the dead-letter stream and still pending.
    pub(crate) fn check_acks(&self) {
        let f = self.features;
        let dead = self.dead_lettered();
        for (stream, group, id, _) in self.sim.acks() {
            assert_eq!(&group[..], GROUP, "XACK in another group");
            let key = (f.stream_index(stream), *id);
            assert!(
                self.may_ack.contains(&key) || dead.contains(&key),
                "XACK of {id:?} on {:?}, never acked by a handler nor dead-lettered",
                String::from_utf8_lossy(stream)
            );
        }
        for (s, stream) in self.features.stream_keys().iter().enumerate() {
            for p in self.sim.pending(stream, GROUP) {
                assert!(
                    !dead.contains(&(s, p.id)),
                    "{:?} of stream {s} dead-lettered and still pending",
                    p.id
                );
            }
        }
        // Only a duplicate name stops a process, and never all of those
        // sharing it.
        for w in &self.workers {
            let duplicate = matches!(w.stopped, Some(Some(Error::DuplicateConsumer { .. })));
            let name_lives = self
                .workers
                .iter()
                .any(|o| o.name == w.name && o.stopped.is_none());
            assert!(
                w.stopped.is_none() || (duplicate && name_lives),
                "{} stopped: {:?}",
                w.name,
                w.stopped
            );
        }
    }

    /// Entries in the dead-letter stream (by the stream and id they name),
    /// each with its original fields first.
    pub(crate) fn dead_lettered(&self) -> BTreeSet<Key> {
        let f = self.features;
        self.sim
            .entries(DLQ)
            .into_iter()
            .map(|(_, fields)| {
                assert_eq!(&fields[0].0[..], b"n", "original fields first: {fields:?}");
                let stream = fields
                    .iter()
                    .find(|(f, _)| &f[..] == b"dlq_stream")
                    .map(|(_, v)| f.stream_index(v))
                    .expect("dlq_stream field");
                let id = fields
                    .iter()
                    .find(|(f, _)| &f[..] == b"dlq_id")
                    .map(|(_, v)| StreamId::parse(v).unwrap())
                    .expect("dlq_id field");
                let deliveries = fields
                    .iter()
                    .find(|(f, _)| &f[..] == b"dlq_deliveries")
                    .map(|(_, v)| String::from_utf8_lossy(v).parse::<u64>().unwrap())
                    .expect("dlq_deliveries field");
                assert!(deliveries >= 1);
                (stream, id)
            })
            .collect()
    }

    /// Whether nothing is pending in any stream.
    pub(crate) fn nothing_pending(&self) -> bool {
        (0..self.streams()).all(|s| self.sim.pending(self.key(s), GROUP).is_empty())
    }

    /// Healthy handlers, time passing: everything must end acknowledged.
    pub(crate) fn quiesce(&mut self) {
        // A cluster settles: its nodes back, no migration half-way.
        self.cluster_recover();
        if self
            .cluster
            .as_ref()
            .is_some_and(|c| c.migrating_to.is_some())
        {
            self.cluster_migrate(0);
        }
        for _ in 0..400 {
            for i in 0..self.workers.len() {
                self.step(i);
                while !self.workers[i].batches.is_empty() {
                    self.complete(i, 0);
                    self.step(i);
                }
            }
            if self.nothing_pending()
                && self.all_delivered()
                && self.workers.iter().all(|w| w.batches.is_empty())
            {
                return;
            }
            self.advance(100);
        }
        let streams = self.features.stream_keys();
        panic!(
            "not quiescent: pending {:?}, last delivered {:?}, produced {}, all delivered {}, in hand {:?}, last events {:#?}",
            streams.iter().map(|s| self.sim.pending(s, GROUP)).collect::<Vec<_>>(),
            streams.iter().map(|s| self.sim.group_last_delivered(s, GROUP)).collect::<Vec<_>>(),
            self.produced.len(),
            self.all_delivered(),
            self.workers.iter().map(|w| w.batches.len()).collect::<Vec<_>>(),
            &self.log[self.log.len().saturating_sub(8)..],
        );
    }

    /// Whether the group's last delivered id reached every stream's last
    /// live entry.
    pub(crate) fn all_delivered(&self) -> bool {
        (0..self.streams()).all(|s| {
            // Deleted entries are never delivered by `>`: only live ones
            // count.
            let last_live = self
                .produced
                .iter()
                .rev()
                .find(|key| key.0 == s && !self.deleted.contains(key));
            match (last_live, self.sim.group_last_delivered(self.key(s), GROUP)) {
                (None, _) => true,
                (Some(&(_, last)), Some(delivered)) => delivered >= last,
                (Some(_), None) => false,
            }
        })
    }

    pub(crate) fn check_final(&self) {
        self.check_acks();
        assert!(self.nothing_pending());
        // Server-side delivery counts also count deliveries lost with a
        // connection before any handler saw them: such an entry can reach
        // the dead letters unhandled. Anything else must have been handled.
        let dead = self.dead_lettered();
        for key in &self.produced {
            if !self.deleted.contains(key) && !dead.contains(key) {
                assert!(self.handled.contains_key(key), "{key:?} never handled");
            }
        }
        if self.features.dead_letters {
            // Dead-lettered for too many deliveries: never past the limit
            // by more than the deliveries in flight at a crash.
            for (key, n) in &self.handled {
                assert!(
                    u64::from(*n) <= MAX_DELIVERIES * 4,
                    "{key:?} handled {n} times with max_deliveries {MAX_DELIVERIES}"
                );
            }
        }
    }
}
