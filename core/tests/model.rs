//! Property tests: several consumers against the in-memory model of Redis
//! Streams, with random stream contents, handler outcomes (acks, retries,
//! retry-after, dead letters), disconnects, crashes, deleted entries, time
//! jumps and reply splits; heartbeats, delete-on-ack and polling mode on or
//! off per run.
#![cfg(feature = "sim")]
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use xgroup_core::sim::{ConnId, SimOptions, SimServer};
use xgroup_core::{
    Batch, Consumer, ConsumerConfig, DeadLetter, Disposition, Error, Event, Outcome, StreamId,
};

const STREAM: &[u8] = b"orders";
const GROUP: &[u8] = b"workers";
const MIN_IDLE: Duration = Duration::from_millis(1000);
const CLAIM_EVERY: Duration = Duration::from_millis(700);
const DLQ: &[u8] = b"orders-dlq";
const MAX_DELIVERIES: u64 = 4;
const RETRY_AFTER: Duration = Duration::from_millis(2500);

/// Features switched on for a run.
#[derive(Debug, Clone, Copy, Default)]
struct Features {
    heartbeat: bool,
    dead_letters: bool,
    delete_on_ack: bool,
    polling: bool,
}

fn features() -> impl Strategy<Value = Features> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(h, d, a, p)| Features {
        heartbeat: h,
        dead_letters: d,
        delete_on_ack: a,
        polling: p,
    })
}

#[derive(Debug, Clone)]
enum Op {
    Produce(u8),
    Step(usize),
    /// Complete the oldest batch of a consumer: 0 ack all, 1 ack none,
    /// 2 ack every other message, 3 retry every other message and ack the
    /// rest, 4 retry after `RETRY_AFTER`, 5 dead-letter all.
    Complete(usize, u8),
    Disconnect(usize),
    Crash(usize),
    Advance(u16),
    Delete(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..6).prop_map(Op::Produce),
        8 => (0usize..3).prop_map(Op::Step),
        6 => (0usize..3, 0u8..6).prop_map(|(c, o)| Op::Complete(c, o)),
        1 => (0usize..3).prop_map(Op::Disconnect),
        1 => (0usize..3).prop_map(Op::Crash),
        3 => (1u16..1500).prop_map(Op::Advance),
        1 => any::<u16>().prop_map(Op::Delete),
    ]
}

struct Worker {
    name: String,
    consumer: Consumer,
    conn: Option<ConnId>,
    batches: Vec<Batch>,
    max_in_flight: usize,
    /// Bumped on every crash or disconnect: "alive since".
    epoch: u64,
    /// Expected to stop (duplicate-name tests).
    stopped: Option<Option<Error>>,
}

struct World {
    sim: SimServer,
    now: Instant,
    workers: Vec<Worker>,
    /// Chunk sizes used to cut server output (empty: whole).
    chunks: Vec<usize>,
    chunk_at: usize,
    /// Every event, for split-invariance comparison.
    log: Vec<String>,
    /// Ids a handler completed with an ack, or that were deleted.
    may_ack: HashSet<StreamId>,
    handled: BTreeMap<StreamId, u32>,
    produced: BTreeSet<StreamId>,
    deleted: BTreeSet<StreamId>,
    count: u64,
    features: Features,
    /// Retry-after promises: id -> (worker, epoch then, not before).
    retry_after: BTreeMap<StreamId, (usize, u64, Instant)>,
    sim_start: Instant,
    trace: bool,
    tx_log: Vec<String>,
}

fn config(name: &str, count: u64, in_flight: usize, seed: u64, f: Features) -> ConsumerConfig {
    let mut b = ConsumerConfig::builder(STREAM, GROUP, name)
        .count(count)
        .block(Duration::from_millis(500))
        .claim_interval(CLAIM_EVERY)
        .claim_min_idle(MIN_IDLE)
        .max_in_flight_batches(in_flight)
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(200))
        .retry_backoff(Duration::from_millis(100), Duration::from_millis(400))
        .reply_timeout(Duration::from_secs(5))
        .delete_on_ack(f.delete_on_ack)
        .seed(seed);
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
    b.build().unwrap()
}

impl World {
    fn new(consumers: usize, count: u64, chunks: Vec<usize>, v62: bool) -> Self {
        World::with(consumers, count, chunks, v62, Features::default())
    }

    fn with(
        consumers: usize,
        count: u64,
        chunks: Vec<usize>,
        v62: bool,
        features: Features,
    ) -> Self {
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
                Worker {
                    consumer: Consumer::new(config(&name, count, in_flight, i as u64, features)),
                    name,
                    conn: None,
                    batches: Vec::new(),
                    max_in_flight: in_flight,
                    epoch: 0,
                    stopped: None,
                }
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
        }
    }

    fn next_chunk(&mut self) -> usize {
        if self.chunks.is_empty() {
            return usize::MAX;
        }
        let c = self.chunks[self.chunk_at % self.chunks.len()];
        self.chunk_at += 1;
        c.max(1)
    }

    /// Drains a worker's outputs: events acted on, bytes sent to the model.
    fn drain(&mut self, i: usize) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.workers[i].consumer.poll_event() {
                progressed = true;
                self.on_event(i, event);
            }
            while let Some(bytes) = self.workers[i].consumer.poll_transmit() {
                progressed = true;
                let conn = self.workers[i]
                    .conn
                    .expect("bytes to send without a connection");
                if self.trace {
                    let t = self.now - self.sim_start;
                    self.tx_log.push(format!(
                        "{t:?} {i} -> {}",
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
    }

    fn on_event(&mut self, i: usize, event: Event) {
        self.log
            .push(format!("{:?} {i}: {event:?}", self.now - self.sim_start));
        match event {
            Event::Connect => {
                let conn = self.sim.connect(self.now);
                self.workers[i].conn = Some(conn);
                self.workers[i].consumer.handle_connected(self.now);
            }
            Event::Disconnect => {
                self.workers[i].epoch += 1;
                if let Some(conn) = self.workers[i].conn.take() {
                    self.sim.disconnect(conn);
                }
            }
            Event::Deliver(batch) => {
                let name = self.workers[i].name.clone();
                let pending = self.sim.pending(STREAM, GROUP);
                // An entry a handler still holds is never handed out again
                // to the same consumer (replay and self-claims skip it).
                for held in &self.workers[i].batches {
                    for m in &batch.messages {
                        assert!(
                            held.messages.iter().all(|h| h.id != m.id),
                            "{:?} delivered while its handler still holds it",
                            m.id
                        );
                    }
                }
                for m in &batch.messages {
                    // Retry-after: no consumer gets it before the promised
                    // time while the one that asked is alive.
                    if let Some(&(w, epoch, at)) = self.retry_after.get(&m.id) {
                        if self.now < at && w != i && self.workers[w].epoch == epoch {
                            panic!("{:?} went to c{i} before its retry-after time (c{w} alive) at {:?}: {:#?}", m.id, self.now - self.sim_start, &self.log[self.log.len().saturating_sub(30)..]);
                        }
                    }
                    *self.handled.entry(m.id).or_default() += 1;
                    // Delivery counts come from the server and match it.
                    if let Some(p) = pending.iter().find(|p| p.id == m.id) {
                        if p.consumer == name.as_bytes() {
                            assert_eq!(m.attempt, p.delivery_count, "attempt of {:?}", m.id);
                        }
                    }
                    assert!(m.attempt >= 1);
                }
                self.workers[i].batches.push(batch);
            }
            Event::Stopped(e) => {
                assert!(self.workers[i].stopped.is_none(), "stopped twice");
                self.workers[i].stopped = Some(e);
            }
            _ => {}
        }
    }

    fn check_in_flight(&self, i: usize) {
        let w = &self.workers[i];
        assert!(
            w.batches.len() <= w.max_in_flight,
            "{} batches in flight, limit {}",
            w.batches.len(),
            w.max_in_flight
        );
        assert_eq!(w.consumer.in_flight(), w.batches.len());
    }

    /// Server output to a worker, in chunks.
    fn deliver_output(&mut self, i: usize) {
        let Some(conn) = self.workers[i].conn else {
            return;
        };
        let out = self.sim.take_output(conn);
        let mut rest: &[u8] = &out;
        while !rest.is_empty() {
            let n = self.next_chunk().min(rest.len());
            let (now, later) = rest.split_at(n);
            self.workers[i].consumer.handle_input(self.now, now);
            rest = later;
            self.drain(i);
            if self.workers[i].conn != Some(conn) {
                break; // the consumer dropped the connection
            }
        }
    }

    /// One round trip for worker `i`.
    fn step(&mut self, i: usize) {
        self.drain(i);
        self.deliver_output(i);
        self.drain(i);
    }

    /// Round trips until worker `i` has nothing more to read now.
    fn settle(&mut self, i: usize) {
        for _ in 0..50 {
            self.step(i);
            match self.workers[i].conn {
                Some(conn) if self.sim.has_output(conn) => {}
                _ => return,
            }
        }
    }

    fn complete(&mut self, i: usize, how: u8) {
        if self.workers[i].batches.is_empty() {
            return;
        }
        let batch = self.workers[i].batches.remove(0);
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
            _ => each(&|_| Disposition::DeadLetter("test".into())),
        };
        match &outcome {
            Outcome::AckAll => self.may_ack.extend(batch.messages.iter().map(|m| m.id)),
            Outcome::AckOnly(ids) => self.may_ack.extend(ids.iter().copied()),
            Outcome::Each(list) => {
                for (id, d) in list {
                    match d {
                        Disposition::Ack => {
                            self.may_ack.insert(*id);
                        }
                        Disposition::RetryAt(at) => {
                            let epoch = self.workers[i].epoch;
                            self.retry_after.insert(*id, (i, epoch, *at));
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
    fn advance(&mut self, ms: u64) {
        let mut left = ms;
        while left > 0 {
            let step = left.min(100);
            left -= step;
            self.tick(step);
        }
    }

    fn tick(&mut self, ms: u64) {
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

    fn disconnect(&mut self, i: usize) {
        if let Some(conn) = self.workers[i].conn.take() {
            self.workers[i].epoch += 1;
            self.sim.disconnect(conn);
            self.workers[i]
                .consumer
                .handle_disconnected(self.now, "cut");
            self.drain(i);
        }
    }

    fn crash(&mut self, i: usize) {
        if let Some(conn) = self.workers[i].conn.take() {
            self.sim.disconnect(conn);
        }
        let w = &mut self.workers[i];
        w.batches.clear();
        w.epoch += 1;
        w.consumer = Consumer::new(config(
            &w.name,
            self.count,
            w.max_in_flight,
            99 + i as u64,
            self.features,
        ));
        self.drain(i);
    }

    fn produce(&mut self, n: u8) {
        for k in 0..n {
            let v = format!("{k}");
            let id = self
                .sim
                .xadd(self.now, STREAM, &[(b"n", v.as_bytes()), (b"x", b"y")]);
            self.produced.insert(id);
        }
        for i in 0..self.workers.len() {
            self.step(i);
        }
    }

    fn delete(&mut self, pick: u16) {
        if self.produced.is_empty() {
            return;
        }
        let id = *self
            .produced
            .iter()
            .nth(pick as usize % self.produced.len())
            .unwrap();
        if self.sim.xdel(STREAM, id) {
            self.deleted.insert(id);
            self.may_ack.insert(id);
        }
    }

    fn run(&mut self, ops: &[Op]) {
        for i in 0..self.workers.len() {
            self.drain(i);
        }
        for op in ops {
            let n = self.workers.len();
            match *op {
                Op::Produce(k) => self.produce(k),
                Op::Step(i) => self.step(i % n),
                Op::Complete(i, how) => self.complete(i % n, how),
                Op::Disconnect(i) => self.disconnect(i % n),
                Op::Crash(i) => self.crash(i % n),
                Op::Advance(ms) => self.advance(u64::from(ms)),
                Op::Delete(pick) => self.delete(pick),
            }
            self.check_acks();
        }
    }

    /// No XACK for an id that no handler acked, that was not deleted and
    /// that is not in the dead-letter stream; and no entry is both in the
    /// dead-letter stream and still pending.
    fn check_acks(&self) {
        let dead = self.dead_lettered();
        for (_, _, id, _) in self.sim.acks() {
            assert!(
                self.may_ack.contains(id) || dead.contains(id),
                "XACK of {id:?}, never acked by a handler nor dead-lettered"
            );
        }
        for p in self.sim.pending(STREAM, GROUP) {
            assert!(
                !dead.contains(&p.id),
                "{:?} dead-lettered and still pending",
                p.id
            );
        }
        for w in &self.workers {
            assert!(w.stopped.is_none(), "{} stopped: {:?}", w.name, w.stopped);
        }
    }

    /// Ids in the dead-letter stream, each with its original fields first.
    fn dead_lettered(&self) -> BTreeSet<StreamId> {
        self.sim
            .entries(DLQ)
            .into_iter()
            .map(|(_, fields)| {
                assert_eq!(&fields[0].0[..], b"n", "original fields first: {fields:?}");
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
                id
            })
            .collect()
    }

    /// Healthy handlers, time passing: everything must end acknowledged.
    fn quiesce(&mut self) {
        for _ in 0..400 {
            for i in 0..self.workers.len() {
                self.step(i);
                while !self.workers[i].batches.is_empty() {
                    self.complete(i, 0);
                    self.step(i);
                }
            }
            if self.sim.pending(STREAM, GROUP).is_empty()
                && self.all_delivered()
                && self.workers.iter().all(|w| w.batches.is_empty())
            {
                return;
            }
            self.advance(100);
        }
        panic!(
            "not quiescent: pending {:?}, last delivered {:?}, produced {}, all delivered {}, in hand {:?}, last events {:#?}",
            self.sim.pending(STREAM, GROUP),
            self.sim.group_last_delivered(STREAM, GROUP),
            self.produced.len(),
            self.all_delivered(),
            self.workers.iter().map(|w| w.batches.len()).collect::<Vec<_>>(),
            &self.log[self.log.len().saturating_sub(8)..],
        );
    }

    fn all_delivered(&self) -> bool {
        // Deleted entries are never delivered by `>`: only live ones count.
        let last_live = self
            .produced
            .iter()
            .rev()
            .find(|id| !self.deleted.contains(id));
        match (last_live, self.sim.group_last_delivered(STREAM, GROUP)) {
            (None, _) => true,
            (Some(last), Some(delivered)) => delivered >= *last,
            (Some(_), None) => false,
        }
    }

    fn check_final(&self) {
        self.check_acks();
        assert!(self.sim.pending(STREAM, GROUP).is_empty());
        // Server-side delivery counts also count deliveries lost with a
        // connection before any handler saw them: such an entry can reach
        // the dead letters unhandled. Anything else must have been handled.
        let dead = self.dead_lettered();
        for id in &self.produced {
            if !self.deleted.contains(id) && !dead.contains(id) {
                assert!(self.handled.contains_key(id), "{id:?} never handled");
            }
        }
        if self.features.dead_letters {
            // Dead-lettered for too many deliveries: never past the limit
            // by more than the deliveries in flight at a crash.
            for (id, n) in &self.handled {
                assert!(
                    u64::from(*n) <= MAX_DELIVERIES * 4,
                    "{id:?} handled {n} times with max_deliveries {MAX_DELIVERIES}"
                );
            }
        }
    }
}

fn consumers_and_count() -> impl Strategy<Value = (usize, u64)> {
    (1usize..=3, 1u64..=4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 2000, .. ProptestConfig::default() })]

    /// Everything ends acknowledged, nothing is acked that no handler acked,
    /// in-flight limits hold, deadlines are never in the past, delivery
    /// counts match the model, and the claim cursor reaches every pending
    /// entry (count as small as 1 with many pending).
    #[test]
    fn at_least_once_under_faults(
        (consumers, count) in consumers_and_count(),
        ops in proptest::collection::vec(op(), 1..200),
        chunks in proptest::collection::vec(1usize..64, 0..4),
        v62 in any::<bool>(),
        features in features(),
    ) {
        let mut world = World::with(consumers, count, chunks, v62, features);
        world.run(&ops);
        world.quiesce();
        world.check_final();
    }

    /// The same run with replies cut at arbitrary byte boundaries yields the
    /// same events as with whole replies.
    #[test]
    fn split_invariance(
        ops in proptest::collection::vec(op(), 1..80),
        chunks in proptest::collection::vec(1usize..40, 1..6),
        features in features(),
    ) {
        let mut whole = World::with(2, 3, Vec::new(), false, features);
        whole.run(&ops);
        let mut split = World::with(2, 3, chunks, false, features);
        split.run(&ops);
        prop_assert_eq!(whole.log, split.log);
    }
}

#[test]
fn a_crashed_consumers_entries_go_to_another_after_min_idle() {
    let mut world = World::new(2, 10, Vec::new(), false);
    world.run(&[Op::Produce(5)]);
    world.settle(0);
    assert_eq!(world.workers[0].batches.len(), 1, "{:?}", world.log);
    // c0 dies for good: it never comes back.
    let conn = world.workers[0].conn.take().unwrap();
    world.sim.disconnect(conn);
    world.workers.remove(0);
    let before: Vec<Bytes> = world
        .sim
        .pending(STREAM, GROUP)
        .iter()
        .map(|p| p.consumer.clone())
        .collect();
    assert!(before.iter().all(|c| &c[..] == b"c0"));
    world.quiesce();
    world.check_final();
    assert!(
        world.log.iter().any(|l| l.contains("Claimed")),
        "{:#?}",
        world.log
    );
}

#[test]
fn a_restarted_consumer_replays_its_own_pending_first() {
    let mut world = World::new(1, 10, Vec::new(), false);
    world.run(&[
        Op::Produce(3),
        Op::Step(0),
        Op::Step(0),
        Op::Crash(0),
        Op::Step(0),
        Op::Step(0),
        Op::Step(0),
    ]);
    let batch = &world.workers[0].batches[0];
    assert_eq!(
        batch.source,
        xgroup_core::Source::OwnPending,
        "{:#?}",
        world.log
    );
    assert!(batch.messages.iter().all(|m| m.attempt == 2));
}

/// Found by the property test: the newest entry deleted before delivery.
#[test]
fn regression_deleted_last_entry() {
    let mut world = World::new(1, 1, Vec::new(), false);
    world.run(&[
        Op::Produce(3),
        Op::Produce(1),
        Op::Produce(2),
        Op::Produce(3),
        Op::Produce(3),
        Op::Produce(1),
        Op::Produce(3),
        Op::Produce(3),
        Op::Produce(5),
        Op::Produce(2),
        Op::Produce(3),
        Op::Produce(3),
        Op::Delete(54495),
    ]);
    world.quiesce();
    world.check_final();
}

fn hb_only() -> Features {
    Features {
        heartbeat: true,
        ..Features::default()
    }
}

#[test]
fn a_dead_consumer_is_taken_over_after_its_heartbeat_timeout_not_min_idle() {
    let mut world = World::with(2, 10, Vec::new(), false, hb_only());
    world.run(&[Op::Produce(5)]);
    world.settle(0);
    assert_eq!(world.workers[0].batches.len(), 1, "{:#?}", world.log);
    let conn = world.workers[0].conn.take().unwrap();
    world.sim.disconnect(conn);
    world.workers.remove(0);
    let died = world.now;
    // Heartbeat 200 ms x 2 misses: taken over within ~0.4 s + one beat,
    // long before the claim min idle (1 s) allows a claim.
    for _ in 0..8 {
        world.advance(100);
        world.settle(0);
        if !world.workers[0].batches.is_empty() {
            break;
        }
    }
    let batch = world.workers[0]
        .batches
        .first()
        .expect("taken over")
        .clone();
    assert!(world.now - died < MIN_IDLE, "took {:?}", world.now - died);
    assert_eq!(batch.source, xgroup_core::Source::Claimed);
    assert!(batch.messages.iter().all(|m| m.attempt == 2));
    assert!(
        world.log.iter().any(|l| l.contains("ConsumerDead")),
        "{:#?}",
        world.log
    );
    world.quiesce();
    world.check_final();
    // Once nothing is pending for it, the dead consumer leaves the group.
    for _ in 0..10 {
        world.advance(100);
        world.settle(0);
    }
    let consumers = world.sim.consumers(STREAM, GROUP);
    assert!(!consumers.iter().any(|c| &c[..] == b"c0"), "{consumers:?}");
}

#[test]
fn a_second_live_process_with_the_same_name_is_reported() {
    let mut world = World::with(2, 10, Vec::new(), false, hb_only());
    world.workers[1].name = "c0".into();
    world.workers[1].consumer = Consumer::new(config("c0", 10, 1, 42, hb_only()));
    for _ in 0..10 {
        world.advance(100);
        world.settle(0);
        world.settle(1);
    }
    let stopped: Vec<_> = world
        .workers
        .iter()
        .filter_map(|w| w.stopped.clone())
        .collect();
    // Each sees the other's token in its key: both report it (which one is
    // "the real one" is not knowable), neither goes on sharing the name.
    assert!(!stopped.is_empty(), "{:#?}", world.log);
    for e in &stopped {
        assert!(
            matches!(e, Some(Error::DuplicateConsumer { .. })),
            "{stopped:?}"
        );
    }
}

#[test]
fn an_entry_that_always_fails_ends_dead_lettered_with_max_deliveries() {
    let features = Features {
        dead_letters: true,
        ..Features::default()
    };
    let mut world = World::with(1, 10, Vec::new(), false, features);
    world.run(&[Op::Produce(1)]);
    for _ in 0..40 {
        world.settle(0);
        world.complete(0, 3); // retry (it is the only message: k = 0)
        world.advance(100);
    }
    let dead = world.dead_lettered();
    assert_eq!(dead.len(), 1, "{:#?}", world.log);
    assert!(world.sim.pending(STREAM, GROUP).is_empty());
    let (_, fields) = &world.sim.entries(DLQ)[0];
    let get = |name: &[u8]| {
        fields
            .iter()
            .find(|(f, _)| &f[..] == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get(b"dlq_deliveries").unwrap(),
        Bytes::from(MAX_DELIVERIES.to_string())
    );
    assert_eq!(get(b"dlq_stream").unwrap(), Bytes::from_static(STREAM));
    assert_eq!(get(b"dlq_consumer").unwrap(), Bytes::from_static(b"c0"));
    assert!(get(b"dlq_reason").is_some());
    assert_eq!(world.handled.values().sum::<u32>() as u64, MAX_DELIVERIES);
}

#[test]
/// Found by the property test: a due retry waiting for a free slot must
/// keep its idle time fresh too.
fn regression_retry_waiting_for_a_slot_stays_fresh() {
    let mut world = World::with(2, 1, Vec::new(), false, Features::default());
    use Op::*;
    world.run(&[
        Produce(1),
        Produce(1),
        Produce(1),
        Produce(2),
        Complete(2, 1),
        Produce(1),
        Complete(0, 3),
        Advance(1),
        Advance(598),
        Advance(401),
        Complete(1, 0),
        Complete(1, 0),
        Advance(1),
        Complete(1, 0),
        Complete(0, 0),
        Complete(0, 0),
        Produce(1),
        Complete(1, 4),
        Produce(1),
        Produce(1),
    ]);
}

#[test]
/// Found by the property test: a decision taken on a half-read reply
/// depended on how the bytes were cut.
fn regression_no_decision_on_a_half_read_reply() {
    use Op::*;
    let f = Features {
        heartbeat: true,
        ..Features::default()
    };
    let ops = [Advance(1099), Produce(3), Produce(1), Produce(1)];
    let mut whole = World::with(2, 3, Vec::new(), false, f);
    whole.trace = true;
    whole.run(&ops);
    let mut split = World::with(2, 3, vec![1], false, f);
    split.trace = true;
    split.run(&ops);
    for (a, b) in whole.tx_log.iter().zip(split.tx_log.iter()) {
        if a != b {
            eprintln!("DIFF\n  whole {a}\n  split {b}");
            break;
        }
    }
    assert_eq!(whole.log, split.log);
}
