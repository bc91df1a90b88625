//! The integration scenarios every adapter passes, written once.
//!
//! An adapter's test file implements [`Adapter`] (start a consumer from a
//! [`Spec`], on its runtime, with a handler that follows [`plan`]) and
//! instantiates every scenario with [`adapter_scenarios!`](crate::adapter_scenarios).
//! Each scenario spawns its own server (and proxy) and is bounded in time.

use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use xgroup_core::{
    Batch, ConsumerConfigBuilder, ConsumerInfo, DeadLetter, Disposition, Error, Fields,
    GroupCounts, Json, Outcome, Payload, ServerErrorKind, Source, Stats, StreamId,
};

use crate::{FaultProxy, RedisServer, RespValue};

/// What the test handler does with each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Acknowledge everything.
    AckAll,
    /// Acknowledge the 1st, 3rd, 5th... message of each batch.
    AckEveryOther,
    /// Acknowledge nothing on a first delivery, everything afterwards.
    AckNoneFirstAttempt,
    /// Panic on a first delivery, acknowledge everything afterwards.
    PanicFirstAttempt,
    /// Work this long per batch, then acknowledge everything.
    SleepMs(u64),
    /// Ask for a retry of every message, every time.
    RetryAlways,
    /// On a first delivery ask for a retry not before this many ms from
    /// now; acknowledge later deliveries.
    RetryAfterMs(u64),
}

/// What the handler must do for a batch: wait, then return or panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Work time before finishing.
    pub sleep: Duration,
    /// `None`: panic (after recording the batch as seen).
    pub outcome: Option<Outcome>,
}

/// The plan for `batch` under `behavior`.
pub fn plan(behavior: Behavior, batch: &Batch) -> Plan {
    let first = batch.messages.iter().any(|m| m.attempt <= 1);
    let (sleep, outcome) = match behavior {
        Behavior::AckAll => (0, Some(Outcome::AckAll)),
        Behavior::AckEveryOther => (
            0,
            Some(Outcome::AckOnly(
                batch.messages.iter().step_by(2).map(|m| m.id).collect(),
            )),
        ),
        Behavior::AckNoneFirstAttempt if first => (0, Some(Outcome::AckNone)),
        Behavior::PanicFirstAttempt if first => (0, None),
        Behavior::AckNoneFirstAttempt | Behavior::PanicFirstAttempt => (0, Some(Outcome::AckAll)),
        Behavior::SleepMs(ms) => (ms, Some(Outcome::AckAll)),
        Behavior::RetryAlways => (0, Some(each(batch, Disposition::Retry))),
        Behavior::RetryAfterMs(ms) if first => {
            let at = Instant::now() + Duration::from_millis(ms);
            (0, Some(each(batch, Disposition::RetryAt(at))))
        }
        Behavior::RetryAfterMs(_) => (0, Some(Outcome::AckAll)),
    };
    Plan {
        sleep: Duration::from_millis(sleep),
        outcome,
    }
}

fn each(batch: &Batch, disposition: Disposition) -> Outcome {
    Outcome::Each(
        batch
            .messages
            .iter()
            .map(|m| (m.id, disposition.clone()))
            .collect(),
    )
}

/// One message as a handler saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The stream it came from (the batch's).
    pub stream: String,
    /// Entry id as text.
    pub id: String,
    /// Delivery count.
    pub attempt: u64,
    /// Where it came from.
    pub source: Source,
    /// Field names and values, in order.
    pub fields: Vec<(String, String)>,
    /// What the handler read from the fields with [`Seen::decoding`]'s
    /// function, if any.
    pub decoded: Option<String>,
    /// The batch's lease fencing token (ordered mode).
    pub lease: Option<u64>,
    /// When the handler finished with it.
    pub at: Instant,
}

/// What the handlers of one consumer saw, shared with the test.
#[derive(Debug, Default)]
pub struct Seen {
    state: Mutex<SeenState>,
    changed: Condvar,
    decode: Option<fn(&Fields) -> String>,
}

#[derive(Debug, Default)]
struct SeenState {
    started: usize,
    /// Handlers started and not yet recorded, and the most at once.
    running: usize,
    most_running: usize,
    deliveries: Vec<Delivery>,
}

impl Seen {
    /// Records what `decode` reads from each message's fields too (in the
    /// handler, as [`record`](Self::record) runs there).
    pub fn decoding(decode: fn(&Fields) -> String) -> Self {
        Seen {
            decode: Some(decode),
            ..Seen::default()
        }
    }

    /// A handler started on a batch (call before its work).
    pub fn started(&self) {
        self.update(|s| {
            s.started += 1;
            s.running += 1;
            s.most_running = s.most_running.max(s.running);
        });
    }

    /// The most handlers that ran at once (from [`started`](Self::started)
    /// to [`record`](Self::record)).
    pub fn most_running(&self) -> usize {
        self.lock().most_running
    }

    /// A handler handled `batch` (call after its work, before returning).
    pub fn record(&self, batch: &Batch) {
        let stream = String::from_utf8_lossy(&batch.stream).into_owned();
        let at = Instant::now();
        let deliveries = batch.messages.iter().map(|m| Delivery {
            lease: batch.lease,
            at,
            stream: stream.clone(),
            id: m.id.to_string(),
            attempt: m.attempt,
            source: batch.source,
            fields: m
                .fields
                .iter()
                .map(|(f, v)| {
                    (
                        String::from_utf8_lossy(f).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect(),
            decoded: self.decode.map(|decode| decode(&m.fields)),
        });
        let deliveries: Vec<Delivery> = deliveries.collect();
        self.update(|s| {
            s.running = s.running.saturating_sub(1);
            s.deliveries.extend(deliveries);
        });
    }

    /// Everything recorded so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// Distinct ids recorded.
    pub fn ids(&self) -> BTreeSet<String> {
        self.lock()
            .deliveries
            .iter()
            .map(|d| d.id.clone())
            .collect()
    }

    /// Waits until `done` holds for the deliveries (true) or `timeout` (false).
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Delivery]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if done(&state.deliveries) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = match self.changed.wait_timeout(state, deadline - now) {
                Ok((s, _)) => s,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Waits until `n` handlers have started.
    pub fn wait_started(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.started < n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = match self.changed.wait_timeout(state, deadline - now) {
                Ok((s, _)) => s,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    fn update(&self, f: impl FnOnce(&mut SeenState)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SeenState> {
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }
}

/// Core options a scenario sets on top of the adapter's builder.
pub type Configure = Arc<dyn Fn(ConsumerConfigBuilder) -> ConsumerConfigBuilder + Send + Sync>;

/// Everything an adapter needs to start one consumer.
#[derive(Clone)]
pub struct Spec {
    /// `redis://` URL (often a proxy's).
    pub url: String,
    /// Stream key.
    pub stream: String,
    /// Group name.
    pub group: String,
    /// Consumer name.
    pub consumer: String,
    /// Options to apply.
    pub configure: Configure,
    /// What the handler does.
    pub behavior: Behavior,
    /// Where the handler records what it saw.
    pub seen: Arc<Seen>,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("url", &self.url)
            .field("stream", &self.stream)
            .field("consumer", &self.consumer)
            .field("behavior", &self.behavior)
            .finish()
    }
}

/// An adapter under test.
pub trait Adapter {
    /// Starts a consumer for `spec` in the background (its own thread or
    /// task) and returns control over it.
    fn start(spec: Spec) -> Box<dyn Running>;

    /// Adds each of `values` to `stream` at `url` with the adapter's
    /// `Connection::xadd_serialized` (default options), over one
    /// connection; stops at the first error.
    fn xadd_serialized<T: serde::Serialize>(
        url: &str,
        stream: &str,
        values: &[T],
    ) -> Result<Vec<StreamId>, Error>;

    /// Adds `value` to `stream` at `url` in `payload`'s field with the
    /// adapter's `Connection::xadd_payload` (default options).
    fn xadd_payload<T: serde::Serialize>(
        url: &str,
        stream: &str,
        payload: &Payload<Json>,
        value: &T,
    ) -> Result<StreamId, Error>;
}

/// A consumer started by an [`Adapter`].
pub trait Running: Send {
    /// Asks for a graceful stop.
    fn stop(&self);
    /// What its handle's `info()` says.
    fn info(&self) -> ConsumerInfo;
    /// Its counters.
    fn stats(&self) -> Stats {
        self.info().stats
    }
    /// Waits for `run` to return, at most `timeout`; `None` if still running.
    fn wait(&mut self, timeout: Duration) -> Option<Result<(), Error>>;
    /// Ends it abruptly where the runtime allows (abort the task); a
    /// scenario has already cut its network. May leave a thread behind.
    fn kill(self: Box<Self>);
}

pub(crate) const WAIT: Duration = Duration::from_secs(15);

pub(crate) fn fast(c: ConsumerConfigBuilder) -> ConsumerConfigBuilder {
    c.count(10)
        .block(Duration::from_millis(200))
        .claim_interval(Duration::from_millis(200))
        .claim_min_idle(Duration::from_millis(600))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(500))
        .drain_timeout(Duration::from_secs(5))
}

pub(crate) fn spec(url: &str, consumer: &str, behavior: Behavior, configure: Configure) -> Spec {
    Spec {
        url: url.to_owned(),
        stream: "s".into(),
        group: "g".into(),
        consumer: consumer.into(),
        configure,
        behavior,
        seen: Arc::new(Seen::default()),
    }
}

pub(crate) fn opts(
    f: impl Fn(ConsumerConfigBuilder) -> ConsumerConfigBuilder + Send + Sync + 'static,
) -> Configure {
    Arc::new(f)
}

pub(crate) fn produce(server: &RedisServer, n: usize) -> Vec<String> {
    produce_to(server, "s", n)
}

/// Waits until nothing is pending on any of `keys`, as `pending` counts
/// a key's group's pending entries.
pub(crate) fn wait_nothing_pending_on<K: AsRef<str>>(
    keys: impl IntoIterator<Item = K>,
    pending: impl Fn(&str) -> i64,
) {
    for key in keys {
        let key = key.as_ref();
        let deadline = Instant::now() + WAIT;
        while pending(key) != 0 {
            assert!(Instant::now() < deadline, "{key}: entries left pending");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The (stream, id) of each delivery: an id alone names no entry when
/// several streams are read.
pub(crate) fn stream_ids(ds: &[Delivery]) -> BTreeSet<(String, String)> {
    ds.iter()
        .map(|d| (d.stream.clone(), d.id.clone()))
        .collect()
}

pub(crate) fn produce_to(server: &RedisServer, stream: &str, n: usize) -> Vec<String> {
    let mut conn = server.connect().expect("connect to the test server");
    (0..n)
        .map(|i| {
            let reply = conn
                .cmd(&["XADD", stream, "*", "n", &i.to_string(), "tag", "t"])
                .expect("XADD");
            reply.as_str().expect("XADD returns an id").to_owned()
        })
        .collect()
}

fn pending(server: &RedisServer) -> i64 {
    pending_on(server, "s")
}

fn pending_on(server: &RedisServer, stream: &str) -> i64 {
    match server.cmd(&["XPENDING", stream, "g"]) {
        RespValue::Array(items) => items.first().and_then(RespValue::as_int).unwrap_or(-1),
        _ => -1,
    }
}

fn pending_ids(server: &RedisServer) -> BTreeSet<String> {
    match server.cmd(&["XPENDING", "s", "g", "-", "+", "1000"]) {
        RespValue::Array(rows) => rows
            .iter()
            .filter_map(|r| r.as_array()?.first()?.as_str().map(str::to_owned))
            .collect(),
        _ => BTreeSet::new(),
    }
}

pub(crate) fn wait_pending(server: &RedisServer, want: i64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = pending(server);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pending stayed {got}, wanted {want}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn all_seen(ids: &[String]) -> impl Fn(&[Delivery]) -> bool + '_ {
    move |ds: &[Delivery]| {
        let seen: BTreeSet<&str> = ds.iter().map(|d| d.id.as_str()).collect();
        ids.iter().all(|id| seen.contains(id.as_str()))
    }
}

pub(crate) fn stop_ok(mut running: Box<dyn Running>) -> Stats {
    running.stop();
    match running.wait(WAIT) {
        Some(Ok(())) => running.stats(),
        Some(Err(e)) => panic!("run ended with an error: {e}"),
        None => panic!("run did not return after stop"),
    }
}

/// Messages are delivered in order with their fields, acked, counted.
pub fn consume_and_ack<A: Adapter>() {
    consume_and_ack_with::<A>("");
}

/// The same over RESP3 (`?protocol=resp3`): map-shaped replies, RESP3 nulls.
pub fn consume_and_ack_over_resp3<A: Adapter>() {
    consume_and_ack_with::<A>("?protocol=resp3");
}

fn consume_and_ack_with<A: Adapter>(url_options: &str) {
    let server = RedisServer::start();
    let ids = produce(&server, 25);
    let url = format!("{}{url_options}", server.url());
    let s = spec(&url, "c1", Behavior::AckAll, opts(fast));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(
        seen.wait_for(WAIT, all_seen(&ids)),
        "not all delivered: {:?}",
        seen.ids()
    );
    wait_pending(&server, 0);
    let stats = stop_ok(running);
    let ds = seen.deliveries();
    assert_eq!(
        ds.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        ids,
        "order"
    );
    assert!(ds.iter().all(|d| d.attempt == 1 && d.source == Source::New));
    assert_eq!(
        ds[3].fields,
        vec![("n".into(), "3".into()), ("tag".into(), "t".into())]
    );
    assert_eq!(stats.delivered, 25);
    assert_eq!(stats.acked, 25);
}

/// One consumer reads three streams: every entry of each is delivered
/// once, from its own stream, and acked there; the one in-flight limit
/// holds over all of them and is shared in turn (no stream is drained
/// before another starts).
pub fn consumes_several_streams_under_one_in_flight_limit<A: Adapter>() {
    let server = RedisServer::start();
    // Two share the first one's hash tag, and so its heartbeat key.
    let streams = ["s", "{s}:t", "{s}:u"];
    // Some entries are there before the start, the rest come while it
    // reads (interleaved, so each stream has entries waiting at once).
    let mut produced: BTreeSet<(String, String)> = streams
        .iter()
        .flat_map(|&key| {
            produce_to(&server, key, 5)
                .into_iter()
                .map(|id| (key.to_owned(), id))
        })
        .collect();
    let configure = opts(move |c| fast(c).streams(streams).max_in_flight_batches(2));
    let s = spec(&server.url(), "c1", Behavior::SleepMs(40), configure);
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(
        seen.wait_for(WAIT, |ds| ds.len() >= 15),
        "the first entries"
    );
    let mut conn = server.connect().expect("connect to the test server");
    for i in 0..20 {
        for key in streams {
            let reply = conn
                .cmd(&["XADD", key, "*", "n", &i.to_string()])
                .expect("XADD");
            let id = reply.as_str().expect("XADD returns an id").to_owned();
            produced.insert((key.to_owned(), id));
        }
    }
    assert!(
        seen.wait_for(WAIT, |ds| ds.len() >= produced.len()),
        "not all delivered: {} of {}",
        seen.deliveries().len(),
        produced.len()
    );
    wait_nothing_pending_on(streams, |key| pending_on(&server, key));
    // On one server every stream waits in one blocked read: a control
    // connection per stream and one read connection. (The model server
    // has no `CLIENT LIST`; the model's own tests count its blocked reads.)
    let deadline = Instant::now() + WAIT;
    while !server.is_model() {
        let clients = match server.cmd(&["CLIENT", "LIST"]) {
            RespValue::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("CLIENT LIST: {other:?}"),
        };
        let ours: Vec<String> = (clients.lines())
            .filter(|l| l.contains(" name=c1 "))
            .map(str::to_owned)
            .collect();
        let blocked = ours.iter().filter(|l| l.contains(" flags=b ")).count();
        assert!(blocked <= 1, "a read per stream: {clients}");
        if blocked == 1 {
            assert_eq!(ours.len(), 4, "{clients}");
            break;
        }
        assert!(Instant::now() < deadline, "no read waits: {clients}");
        thread::sleep(Duration::from_millis(20));
    }
    let info = running.info();
    let stats = stop_ok(running);
    let ds = seen.deliveries();
    let got = stream_ids(&ds);
    assert_eq!(got, produced, "each entry from its own stream");
    assert_eq!(ds.len(), produced.len(), "each delivered once");
    assert!(ds.iter().all(|d| d.attempt == 1 && d.source == Source::New));
    assert_eq!((stats.delivered, stats.acked), (75, 75));
    assert_eq!(info.stream, "s,{s}:t,{s}:u");
    let most = seen.most_running();
    assert!(most <= 2, "{most} handlers ran at once, the limit is 2");
    // Among the entries produced while it read (interleaved), in the
    // order the handlers finished them: every stream is served within the
    // first half; one served only after another drained would start in
    // the last third.
    let mut ds = ds[15..].to_vec();
    ds.sort_by_key(|d| d.at);
    for key in streams {
        let first = ds.iter().position(|d| d.stream == key);
        assert!(
            first.is_some_and(|i| i < ds.len() / 2),
            "{key} waited while the others were served: {:?}",
            ds.iter().map(|d| d.stream.as_str()).collect::<Vec<_>>()
        );
    }
}

/// The ordered mode: two consumers read a sharded stream of 4 shards.
/// The first takes every shard; once the second joins they share them;
/// once the first stops the second takes them all. Each shard's entries
/// are handled in id order across both processes (never two of its
/// batches at once), each once, with a fencing token that grows with each
/// change of holder, and nothing is left pending.
pub fn ordered_mode_hands_each_stream_to_one_consumer_at_a_time<A: Adapter>() {
    let server = RedisServer::start();
    let keys = shard_keys("o", 4);
    ordered_hand_over::<A>(
        &server.url(),
        &keys,
        |key, n| produce_to(&server, key, n),
        |key| pending_on(&server, key),
    );
}

/// The keys of the sharded stream `name` with `shards` shards.
pub(crate) fn shard_keys(name: &str, shards: usize) -> Vec<String> {
    let sharded = xgroup_core::ShardedStream::new(name, shards).expect("a sharded stream");
    sharded
        .keys()
        .iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

/// The body of [`ordered_mode_hands_each_stream_to_one_consumer_at_a_time`]
/// at `url` (a server or a cluster) with the streams `keys`; `produce`
/// adds entries to a key, `pending` counts its group's pending entries.
pub(crate) fn ordered_hand_over<A: Adapter>(
    url: &str,
    keys: &[String],
    produce: impl Fn(&str, usize) -> Vec<String>,
    pending: impl Fn(&str) -> i64,
) {
    let mut produced = BTreeSet::new();
    let produce_all = |produced: &mut BTreeSet<(String, String)>, n: usize| {
        for key in keys {
            let ids = produce(key, n);
            produced.extend(ids.into_iter().map(|id| (key.clone(), id)));
        }
    };
    produce_all(&mut produced, 20);
    let streams = keys.to_vec();
    let configure = opts(move |c| {
        fast(c)
            .streams(&streams)
            .ordered(true)
            .count(5)
            .heartbeat(Duration::from_millis(100), 3)
            .max_in_flight_batches(4)
    });
    let a = spec(url, "a", Behavior::SleepMs(10), configure.clone());
    let (seen_a, running_a) = (a.seen.clone(), A::start(a));
    assert!(seen_a.wait_for(WAIT, |ds| ds.len() >= 40), "a consumes");
    let b = spec(url, "b", Behavior::SleepMs(10), configure);
    let (seen_b, running_b) = (b.seen.clone(), A::start(b));
    // Once b holds shards it handles some of what is added.
    let deadline = Instant::now() + WAIT;
    while seen_b.deliveries().is_empty() {
        assert!(Instant::now() < deadline, "b got no shard");
        produce_all(&mut produced, 2);
        thread::sleep(Duration::from_millis(100));
    }
    // Then both hold shards: each handles entries added while both run.
    let both_from = seen_a.deliveries().len();
    produce_all(&mut produced, 20);
    let total = produced.len();
    let all = |seen: &[&Seen]| seen.iter().map(|s| s.deliveries().len()).sum::<usize>();
    let deadline = Instant::now() + WAIT;
    while all(&[&seen_a, &seen_b]) < total {
        assert!(Instant::now() < deadline, "not all handled while both run");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        seen_a.deliveries().len() > both_from,
        "a kept some shards once b joined"
    );
    stop_ok(running_a);
    produce_all(&mut produced, 10);
    let total = produced.len();
    let deadline = Instant::now() + WAIT;
    while all(&[&seen_a, &seen_b]) < total {
        assert!(Instant::now() < deadline, "b did not take a's shards over");
        thread::sleep(Duration::from_millis(20));
    }
    wait_nothing_pending_on(keys, &pending);
    stop_ok(running_b);
    let mut ds: Vec<Delivery> = seen_a.deliveries();
    ds.extend(seen_b.deliveries());
    let got = stream_ids(&ds);
    assert_eq!(got, produced, "every entry handled");
    assert_eq!(ds.len(), produced.len(), "each handled once");
    ds.sort_by_key(|d| d.at);
    for key in keys {
        let shard: Vec<&Delivery> = ds.iter().filter(|d| &d.stream == key).collect();
        let ids: Vec<StreamId> = shard.iter().map(|d| d.id.parse().expect("an id")).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{key}: handled out of order: {ids:?}"
        );
        let fences: Vec<u64> = shard
            .iter()
            .map(|d| d.lease.expect("a fencing token"))
            .collect();
        assert!(
            fences.windows(2).all(|w| w[0] <= w[1]),
            "{key}: the fencing token went back: {fences:?}"
        );
    }
}

/// The ordered mode after a crash: a consumer holding every stream of a
/// sharded stream hangs in its handler, then its network is cut and it is
/// killed. The other, waiting meanwhile (the hung one never finishes its
/// batch, so it cannot hand a stream over), takes every stream once the
/// dead one's lease lapses: the entries the dead one held first (claimed,
/// second attempt), then the rest, each stream in id order, under a newer
/// fencing token.
pub fn ordered_mode_takes_over_a_dead_consumers_streams<A: Adapter>() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let sharded = xgroup_core::ShardedStream::new("d", 2).expect("a sharded stream");
    let keys: Vec<String> = sharded
        .keys()
        .iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let mut produced = BTreeSet::new();
    for key in &keys {
        produced.extend(
            produce_to(&server, key, 3)
                .into_iter()
                .map(|id| (key.clone(), id)),
        );
    }
    let streams = keys.clone();
    let configure = opts(move |c| {
        fast(c)
            .streams(&streams)
            .ordered(true)
            .heartbeat(Duration::from_millis(100), 3)
            .max_in_flight_batches(2)
    });
    let dead = spec(
        &proxy.url(),
        "dead",
        Behavior::SleepMs(60_000),
        configure.clone(),
    );
    let dead_seen = dead.seen.clone();
    let dead = A::start(dead);
    assert!(
        dead_seen.wait_started(2, WAIT),
        "the first takes both streams"
    );
    let alive = spec(&server.url(), "alive", Behavior::AckAll, configure);
    let seen = alive.seen.clone();
    let alive = A::start(alive);
    for key in &keys {
        produced.extend(
            produce_to(&server, key, 5)
                .into_iter()
                .map(|id| (key.clone(), id)),
        );
    }
    thread::sleep(Duration::from_millis(300));
    assert!(
        seen.deliveries().is_empty(),
        "nothing while the other holds the leases"
    );
    proxy.set_refusing(true);
    proxy.cut_all();
    dead.kill();
    let killed = Instant::now();
    assert!(
        seen.wait_for(WAIT, |ds| ds.len() >= produced.len()),
        "{:?}",
        seen.deliveries()
    );
    let took = killed.elapsed();
    // The lease lapses 300 ms after the last beat; a beat or two more.
    assert!(took < Duration::from_secs(5), "takeover took {took:?}");
    wait_nothing_pending_on(&keys, |key| pending_on(&server, key));
    stop_ok(alive);
    let ds = seen.deliveries();
    let got = stream_ids(&ds);
    assert_eq!(got, produced);
    assert_eq!(ds.len(), produced.len(), "each handled once");
    for key in &keys {
        let shard: Vec<&Delivery> = ds.iter().filter(|d| &d.stream == key).collect();
        let ids: Vec<StreamId> = shard.iter().map(|d| d.id.parse().expect("an id")).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{key}: handled out of order: {ids:?}"
        );
        // The dead one's batch first, on its second attempt.
        assert_eq!((shard[0].source, shard[0].attempt), (Source::Claimed, 2));
        assert!(
            shard.iter().all(|d| d.lease.is_some_and(|f| f >= 2)),
            "{key}: not under a newer fencing token: {:?}",
            shard.iter().map(|d| d.lease).collect::<Vec<_>>()
        );
    }
}

/// `AckOnly` acknowledges exactly those ids.
pub fn ack_only_some<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 10);
    let s = spec(
        &server.url(),
        "c1",
        Behavior::AckEveryOther,
        opts(|c| fast(c).no_claiming()),
    );
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&ids)));
    wait_pending(&server, 5);
    let expected: BTreeSet<String> = ids.iter().skip(1).step_by(2).cloned().collect();
    assert_eq!(pending_ids(&server), expected);
    stop_ok(running);
}

/// `AckNone` leaves entries pending; they come back (attempt 2) and get acked.
pub fn ack_none_is_redelivered<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 5);
    let s = spec(
        &server.url(),
        "c1",
        Behavior::AckNoneFirstAttempt,
        opts(fast),
    );
    let seen = s.seen.clone();
    let running = A::start(s);
    let again = |ds: &[Delivery]| {
        ids.iter()
            .all(|id| ds.iter().any(|d| &d.id == id && d.attempt == 2))
    };
    assert!(seen.wait_for(WAIT, again), "{:?}", seen.deliveries());
    wait_pending(&server, 0);
    let stats = stop_ok(running);
    assert!(stats.redelivered >= 5);
}

/// The group and the stream are created when missing.
pub fn creates_group_and_stream<A: Adapter>() {
    let server = RedisServer::start();
    let s = spec(&server.url(), "c1", Behavior::AckAll, opts(fast));
    let seen = s.seen.clone();
    let running = A::start(s);
    let deadline = Instant::now() + WAIT;
    while server.cmd(&["EXISTS", "s"]).as_int() != Some(1) {
        assert!(Instant::now() < deadline, "stream never created");
        thread::sleep(Duration::from_millis(20));
    }
    let ids = produce(&server, 3);
    assert!(seen.wait_for(WAIT, all_seen(&ids)));
    stop_ok(running);
}

/// With auto-create off, a missing group is a clear error from `run`.
pub fn missing_group_without_auto_create_is_an_error<A: Adapter>() {
    let server = RedisServer::start();
    produce(&server, 1);
    let s = spec(
        &server.url(),
        "c1",
        Behavior::AckAll,
        opts(|c| fast(c).auto_create_group(false)),
    );
    let mut running = A::start(s);
    match running.wait(WAIT) {
        Some(Err(Error::GroupMissing { .. })) => {}
        other => panic!("expected GroupMissing, got {other:?}"),
    }
}

/// A consumer that crashed comes back under its name and replays its own
/// pending entries first (attempt 2), without waiting for a claim.
pub fn restart_replays_own_pending_first<A: Adapter>() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let ids = produce(&server, 5);
    let slow = opts(|c| fast(c).claim_min_idle(Duration::from_secs(600)));
    let first = spec(&proxy.url(), "c1", Behavior::SleepMs(60_000), slow.clone());
    let first_seen = first.seen.clone();
    let running = A::start(first);
    assert!(first_seen.wait_started(1, WAIT));
    proxy.set_refusing(true);
    proxy.cut_all();
    running.kill();
    assert_eq!(pending(&server), 5);

    let again = spec(&server.url(), "c1", Behavior::AckAll, slow);
    let seen = again.seen.clone();
    let running = A::start(again);
    assert!(seen.wait_for(WAIT, all_seen(&ids)));
    let ds = seen.deliveries();
    assert!(
        ds[..5]
            .iter()
            .all(|d| d.source == Source::OwnPending && d.attempt == 2),
        "{ds:?}"
    );
    wait_pending(&server, 0);
    stop_ok(running);
}

/// A second process started under a running consumer's name refuses to
/// start (a typed error from `run`, within about one heartbeat interval);
/// the first keeps consuming and acking.
pub fn same_name_while_running_is_refused<A: Adapter>() {
    let server = RedisServer::start();
    let beat = opts(|c| fast(c).heartbeat(Duration::from_millis(300), 3));
    let first = spec(&server.url(), "c1", Behavior::AckAll, beat.clone());
    let first_seen = first.seen.clone();
    let mut c1 = A::start(first);
    let mut ids = produce(&server, 5);
    assert!(first_seen.wait_for(WAIT, all_seen(&ids)));
    let second = spec(&server.url(), "c1", Behavior::AckAll, beat);
    let second_seen = second.seen.clone();
    let started = Instant::now();
    let mut c2 = A::start(second);
    match c2.wait(WAIT) {
        Some(Err(Error::DuplicateConsumer { consumer })) => assert_eq!(&consumer[..], b"c1"),
        other => panic!("expected DuplicateConsumer, got {other:?}"),
    }
    // A watch of 450 ms; generous for slow machines.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "refused after {took:?}");
    assert!(second_seen.deliveries().is_empty());
    ids.extend(produce(&server, 5));
    assert!(first_seen.wait_for(WAIT, all_seen(&ids)));
    wait_pending(&server, 0);
    assert!(
        c1.wait(Duration::ZERO).is_none(),
        "the first process stopped"
    );
    stop_ok(c1);
}

/// A process killed without a graceful stop comes back under its name: the
/// newcomer finds the dead process's heartbeat key unchanged for about one
/// interval, takes the name over before the key expires (so no other
/// consumer fails the name over), and replays its pending entries.
pub fn crash_restart_takes_the_name_over_before_its_key_expires<A: Adapter>() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let ids = produce(&server, 3);
    // Beats every second, the key lives 10 s: the watch lasts 1.5 s.
    let beat = opts(|c| {
        fast(c)
            .heartbeat(Duration::from_secs(1), 10)
            .claim_min_idle(Duration::from_secs(600))
    });
    let first = spec(&proxy.url(), "c1", Behavior::SleepMs(60_000), beat.clone());
    let first_seen = first.seen.clone();
    let running = A::start(first);
    assert!(first_seen.wait_started(1, WAIT));
    proxy.set_refusing(true);
    proxy.cut_all();
    running.kill();
    let other = spec(&server.url(), "other", Behavior::AckAll, beat.clone());
    let other_seen = other.seen.clone();
    let other = A::start(other);
    let again = spec(&server.url(), "c1", Behavior::AckAll, beat);
    let seen = again.seen.clone();
    let restarted = Instant::now();
    let running = A::start(again);
    assert!(
        seen.wait_for(WAIT, all_seen(&ids)),
        "{:?}",
        seen.deliveries()
    );
    let took = restarted.elapsed();
    assert!(took < Duration::from_secs(8), "resumed after {took:?}");
    assert!(seen
        .deliveries()
        .iter()
        .all(|d| d.source == Source::OwnPending && d.attempt == 2));
    assert!(other_seen.deliveries().is_empty());
    wait_pending(&server, 0);
    stop_ok(running);
    let stats = stop_ok(other);
    assert_eq!(stats.dead_consumers, 0, "{stats:?}");
}

/// After a graceful stop the name is free at once: a new process under it
/// starts without watching.
pub fn graceful_restart_starts_at_once<A: Adapter>() {
    let server = RedisServer::start();
    // The key would live a minute: only its release makes this quick.
    let beat = opts(|c| fast(c).heartbeat(Duration::from_secs(20), 3));
    let first = spec(&server.url(), "c1", Behavior::SleepMs(300), beat.clone());
    let first_seen = first.seen.clone();
    let running = A::start(first);
    let mut ids = produce(&server, 1);
    assert!(first_seen.wait_started(1, WAIT));
    stop_ok(running);
    assert!(first_seen.wait_for(WAIT, all_seen(&ids)));
    assert_eq!(
        server.cmd(&["EXISTS", "{s}:xgroup:hb:g:c1"]).as_int(),
        Some(0),
        "the heartbeat key was left"
    );
    let again = spec(&server.url(), "c1", Behavior::AckAll, beat);
    let seen = again.seen.clone();
    let restarted = Instant::now();
    let running = A::start(again);
    ids = produce(&server, 2);
    assert!(seen.wait_for(WAIT, all_seen(&ids)));
    let took = restarted.elapsed();
    assert!(took < Duration::from_secs(10), "started after {took:?}");
    stop_ok(running);
}

/// Another consumer claims a dead one's entries after the min idle time
/// (without heartbeats: with them, once its heartbeat key is gone — see
/// `killed_consumer_is_taken_over_after_its_heartbeat_timeout`).
pub fn dead_consumers_entries_are_claimed<A: Adapter>() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let ids = produce(&server, 5);
    let fast = |c| fast(c).no_heartbeat();
    let dead = spec(&proxy.url(), "dead", Behavior::SleepMs(60_000), opts(fast));
    let dead_seen = dead.seen.clone();
    let running = A::start(dead);
    assert!(dead_seen.wait_started(1, WAIT));
    proxy.set_refusing(true);
    proxy.cut_all();
    running.kill();

    let alive = spec(&server.url(), "alive", Behavior::AckAll, opts(fast));
    let seen = alive.seen.clone();
    let started = Instant::now();
    let running = A::start(alive);
    let claimed = |ds: &[Delivery]| {
        ids.iter().all(|id| {
            ds.iter()
                .any(|d| &d.id == id && d.source == Source::Claimed && d.attempt == 2)
        })
    };
    assert!(seen.wait_for(WAIT, claimed), "{:?}", seen.deliveries());
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "claimed before min idle"
    );
    wait_pending(&server, 0);
    let stats = stop_ok(running);
    assert_eq!(stats.claimed, 5);
}

/// A graceful stop waits for the handler in progress and acks its batch.
pub fn graceful_stop_waits_for_the_handler<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 3);
    let s = spec(&server.url(), "c1", Behavior::SleepMs(700), opts(fast));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(seen.wait_started(1, WAIT));
    let asked = Instant::now();
    stop_ok(running);
    assert!(
        asked.elapsed() >= Duration::from_millis(300),
        "stop did not wait for the handler"
    );
    assert!(all_seen(&ids)(&seen.deliveries()));
    assert_eq!(pending(&server), 0);
}

/// The server dies and comes back on its data (AOF): the consumer reconnects
/// and goes on; nothing is lost.
pub fn server_restart_loses_nothing<A: Adapter>() {
    let mut server = RedisServer::builder()
        .aof(true)
        .appendfsync_always(true)
        .start();
    let mut ids = produce(&server, 10);
    let s = spec(&server.url(), "c1", Behavior::AckAll, opts(fast));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&ids)));
    wait_pending(&server, 0);
    server.kill();
    thread::sleep(Duration::from_millis(300));
    server.restart();
    ids.extend(produce(&server, 10));
    assert!(seen.wait_for(WAIT, all_seen(&ids)), "{:?}", seen.ids());
    wait_pending(&server, 0);
    let stats = stop_ok(running);
    assert!(stats.connections >= 2);
}

/// Every connection is cut, twice, mid-stream: nothing is lost.
pub fn proxy_cut_loses_nothing<A: Adapter>() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let ids = produce(&server, 200);
    let s = spec(&proxy.url(), "c1", Behavior::SleepMs(5), opts(fast));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(seen.wait_for(WAIT, |ds| ds.len() >= 50));
    assert!(proxy.cut_all() >= 1);
    assert!(seen.wait_for(WAIT, |ds| ds.len() >= 120));
    proxy.cut_all();
    assert!(
        seen.wait_for(WAIT, all_seen(&ids)),
        "{} of 200",
        seen.ids().len()
    );
    wait_pending(&server, 0);
    let stats = stop_ok(running);
    assert!(stats.connections >= 3, "{stats:?}");
}

/// The group is deleted while running: it is created again and consumption
/// goes on (from the start id, so earlier entries come again).
pub fn deleted_group_is_recreated<A: Adapter>() {
    let server = RedisServer::start();
    let mut ids = produce(&server, 5);
    let s = spec(&server.url(), "c1", Behavior::AckAll, opts(fast));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&ids)));
    wait_pending(&server, 0);
    assert_eq!(
        server.cmd(&["XGROUP", "DESTROY", "s", "g"]).as_int(),
        Some(1)
    );
    ids.extend(produce(&server, 5));
    assert!(seen.wait_for(WAIT, all_seen(&ids)), "{:?}", seen.ids());
    wait_pending(&server, 0);
    stop_ok(running);
}

/// Options that keep the consumer waiting in one long `BLOCK` read.
fn long_block(c: ConsumerConfigBuilder) -> ConsumerConfigBuilder {
    fast(c)
        .block(Duration::from_secs(3))
        .claim_interval(Duration::from_secs(30))
        .claim_min_idle(Duration::from_secs(60))
        .no_heartbeat()
}

/// Deletes the stream while the consumer waits in `BLOCK` (answered with
/// `-UNBLOCKED`), and returns what `run` did within a second after.
fn delete_stream_while_blocked(
    server: &RedisServer,
    running: &mut Box<dyn Running>,
) -> Option<Result<(), Error>> {
    // Let the consumer settle into its blocking read.
    thread::sleep(Duration::from_millis(500));
    assert_eq!(server.cmd(&["DEL", "s"]).as_int(), Some(1));
    running.wait(Duration::from_secs(1))
}

/// The stream deleted while the consumer waits in `BLOCK` is recreated
/// (with its group), as when it is deleted at any other time; nothing stops.
pub fn stream_deleted_during_a_blocked_read_is_recreated<A: Adapter>() {
    let server = RedisServer::start();
    let first = produce(&server, 2);
    let s = spec(&server.url(), "c1", Behavior::AckAll, opts(long_block));
    let seen = s.seen.clone();
    let mut running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&first)));
    wait_pending(&server, 0);
    let ended = delete_stream_while_blocked(&server, &mut running);
    assert!(ended.is_none(), "run ended: {ended:?}");
    let later = produce(&server, 3);
    assert!(seen.wait_for(WAIT, all_seen(&later)), "{:?}", seen.ids());
    wait_pending(&server, 0);
    stop_ok(running);
}

/// With auto-create off, the same deletion stops `run` with the typed
/// reason (the group is gone), not a raw server error.
pub fn stream_deleted_during_a_blocked_read_without_auto_create_is_a_typed_error<A: Adapter>() {
    let server = RedisServer::start();
    server.cmd(&["XGROUP", "CREATE", "s", "g", "0", "MKSTREAM"]);
    let s = spec(
        &server.url(),
        "c1",
        Behavior::AckAll,
        opts(|c| long_block(c).auto_create_group(false)),
    );
    let mut running = A::start(s);
    match delete_stream_while_blocked(&server, &mut running).or_else(|| running.wait(WAIT)) {
        Some(Err(Error::GroupMissing { .. })) => {}
        other => panic!("expected GroupMissing, got {other:?}"),
    }
}

/// At `maxmemory` the server refuses the heartbeat's `SET` and `XGROUP
/// CREATE` (even of a group that exists), while reads and acks still work:
/// a consumer started then consumes and acks everything and keeps running.
pub fn out_of_memory_does_not_stop_consuming<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 20);
    server.cmd(&["XGROUP", "CREATE", "s", "g", "0"]);
    let limited = server.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
    assert!(!matches!(limited, RespValue::Error(_)), "{limited:?}");
    let s = spec(
        &server.url(),
        "c1",
        Behavior::AckAll,
        opts(|c| fast(c).heartbeat(Duration::from_millis(100), 2)),
    );
    let seen = s.seen.clone();
    let mut running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&ids)), "{:?}", seen.ids());
    wait_pending(&server, 0);
    // Several refused heartbeats later it still runs.
    let ended = running.wait(Duration::from_millis(600));
    assert!(ended.is_none(), "run ended: {ended:?}");
    server.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    stop_ok(running);
}

/// A dead-letter move whose `XADD` fails (the dead-letter key holds a
/// string) acknowledges nothing: the entry stays pending, `run` goes on, and
/// once the key is usable the move is tried again and succeeds.
pub fn failed_dead_letter_move_keeps_the_entry_pending<A: Adapter>() {
    let server = RedisServer::start();
    produce(&server, 1);
    server.cmd(&["SET", "dlq", "not a stream"]);
    let configure = opts(|c| {
        fast(c)
            .retry_backoff(Duration::from_millis(50), Duration::from_millis(200))
            .max_deliveries(2, DeadLetter::Stream("dlq".into()))
    });
    let s = spec(&server.url(), "c1", Behavior::RetryAlways, configure);
    let seen = s.seen.clone();
    let mut running = A::start(s);
    assert!(
        seen.wait_for(WAIT, |ds| ds.len() >= 2),
        "{:?}",
        seen.deliveries()
    );
    // Several failed moves later: still pending, still running.
    let ended = running.wait(Duration::from_millis(800));
    assert!(ended.is_none(), "run ended: {ended:?}");
    assert_eq!(pending(&server), 1);
    assert_eq!(running.stats().dead_lettered, 0);
    server.cmd(&["DEL", "dlq"]);
    let deadline = Instant::now() + WAIT;
    while server.cmd(&["XLEN", "dlq"]).as_int() != Some(1) {
        assert!(
            Instant::now() < deadline,
            "never moved once the key was free"
        );
        thread::sleep(Duration::from_millis(20));
    }
    wait_pending(&server, 0);
    assert_eq!(stop_ok(running).dead_lettered, 1);
}

/// A stop while the consumer idles in a long `BLOCK` read does not wait the
/// read out (it used to, up to `block`).
pub fn idle_consumer_stops_without_waiting_out_its_blocked_read<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 1);
    let s = spec(
        &server.url(),
        "c1",
        Behavior::AckAll,
        opts(|c| long_block(c).block(Duration::from_secs(10))),
    );
    let seen = s.seen.clone();
    let mut running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&ids)));
    wait_pending(&server, 0);
    thread::sleep(Duration::from_millis(300));
    running.stop();
    // Well under the 10 s the read may block for.
    match running.wait(Duration::from_secs(3)) {
        Some(Ok(())) => {}
        other => panic!("expected a prompt graceful stop, got {other:?}"),
    }
}

/// A handler working while a read of new entries blocks for 20 s (a free
/// in-flight slot lets that read go out meanwhile).
fn busy_with_a_long_block(c: ConsumerConfigBuilder) -> ConsumerConfigBuilder {
    long_block(c)
        .block(Duration::from_secs(20))
        .max_in_flight_batches(2)
}

/// Polls until nothing is pending or `within` has passed; returns how long
/// it took, or `None`.
fn pending_gone_within(server: &RedisServer, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if pending(server) == 0 {
            return Some(start.elapsed());
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The ack of a finished batch reaches the server at once, not after the
/// blocked read of new entries that went out while the handler worked.
pub fn acks_do_not_wait_behind_a_blocked_read<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 1);
    let s = spec(
        &server.url(),
        "c1",
        Behavior::SleepMs(500),
        opts(busy_with_a_long_block),
    );
    let seen = s.seen.clone();
    let mut running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&ids)));
    // The handler works 0.5 s; its ack must not wait out the 20 s BLOCK.
    let took = pending_gone_within(&server, Duration::from_secs(5));
    assert!(took.is_some(), "the ack waited behind the blocked read");
    assert!(
        running.wait(Duration::ZERO).is_none(),
        "the consumer stopped"
    );
    running.stop();
    assert!(matches!(running.wait(WAIT), Some(Ok(()))));
}

/// A stop while a handler works: `run` returns once the handler is done and
/// its ack confirmed, without waiting out the blocked read.
pub fn busy_consumer_stops_once_its_acks_are_confirmed<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 1);
    let s = spec(
        &server.url(),
        "c1",
        Behavior::SleepMs(1000),
        opts(busy_with_a_long_block),
    );
    let seen = s.seen.clone();
    let mut running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&ids)));
    running.stop();
    // The handler's second, then the ack: well under the 20 s BLOCK.
    match running.wait(Duration::from_secs(6)) {
        Some(Ok(())) => {}
        other => panic!("expected a prompt graceful stop, got {other:?}"),
    }
    assert_eq!(
        pending(&server),
        0,
        "the ack was not confirmed before the stop"
    );
}

/// `info()` shows the gauges: the group's pending count and lag sampled
/// from the server, and the entries held, while a handler works and after.
pub fn info_shows_the_groups_counts<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 3);
    let s = spec(
        &server.url(),
        "c1",
        Behavior::SleepMs(1500),
        opts(|c| fast(c).sample_group_stats(Duration::from_millis(50))),
    );
    let seen = s.seen.clone();
    let running = A::start(s);
    // Redis before 7.0 has no lag in `XINFO GROUPS`: unknown, never 0.
    let lag = (!server.version().starts_with("redis 6.")).then_some(0);
    let sampled = |want: GroupCounts, held: usize| {
        let deadline = Instant::now() + WAIT;
        loop {
            let info = running.info();
            if info.group_counts == Some(want) && info.held_entries == held {
                return;
            }
            assert!(Instant::now() < deadline, "{info:?}");
            thread::sleep(Duration::from_millis(20));
        }
    };
    // The handler holds all three for 1.5 s: all delivered, none acked.
    sampled(GroupCounts { pending: 3, lag }, 3);
    assert!(seen.wait_for(WAIT, all_seen(&ids)));
    sampled(GroupCounts { pending: 0, lag }, 0);
    stop_ok(running);
}

/// With the default read-ahead, entries are read well past `count` while a
/// handler works (held, and shown in `info()`), and handed out in batches of
/// at most `count`, each exactly once.
pub fn read_ahead_hands_out_batches_of_count<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 50);
    let s = spec(&server.url(), "c1", Behavior::SleepMs(100), opts(fast));
    let seen = s.seen.clone();
    let running = A::start(s);
    let deadline = Instant::now() + WAIT;
    let mut most_held = 0;
    while !all_seen(&ids)(&seen.deliveries()) {
        assert!(Instant::now() < deadline, "{:?}", running.info());
        most_held = most_held.max(running.info().held_entries);
        thread::sleep(Duration::from_millis(10));
    }
    assert!(
        most_held > 10,
        "nothing read ahead: at most {most_held} held"
    );
    // Fifty entries in batches of at most ten: five handler calls or more.
    assert!(seen.wait_started(5, Duration::ZERO));
    assert_eq!(seen.deliveries().len(), 50, "each entry exactly once");
    wait_pending(&server, 0);
    stop_ok(running);
}

/// A wrong password is a typed error from `run`, not a retry loop.
pub fn wrong_password_is_an_error<A: Adapter>() {
    let server = RedisServer::builder().password(Some("right")).start();
    let url = format!("redis://:wrong@127.0.0.1:{}", server.port());
    let mut running = A::start(spec(&url, "c1", Behavior::AckAll, opts(fast)));
    match running.wait(WAIT) {
        Some(Err(Error::Server(e))) => assert_eq!(e.kind, ServerErrorKind::WrongPass, "{e}"),
        other => panic!("expected WRONGPASS, got {other:?}"),
    }
}

/// A stream key holding another type is a typed error.
pub fn wrong_key_type_is_an_error<A: Adapter>() {
    let server = RedisServer::start();
    server.cmd(&["SET", "s", "not a stream"]);
    let mut running = A::start(spec(&server.url(), "c1", Behavior::AckAll, opts(fast)));
    match running.wait(WAIT) {
        Some(Err(Error::Server(e))) => assert_eq!(e.kind, ServerErrorKind::WrongType, "{e}"),
        other => panic!("expected WRONGTYPE, got {other:?}"),
    }
}

/// A handler that panics does not kill the consumer or lose the batch.
pub fn handler_panic_is_survived<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 3);
    let s = spec(&server.url(), "c1", Behavior::PanicFirstAttempt, opts(fast));
    let seen = s.seen.clone();
    let mut running = A::start(s);
    let again = |ds: &[Delivery]| {
        ids.iter()
            .all(|id| ds.iter().any(|d| &d.id == id && d.attempt >= 2))
    };
    assert!(seen.wait_for(WAIT, again), "{:?}", seen.deliveries());
    wait_pending(&server, 0);
    assert!(
        running.wait(Duration::ZERO).is_none(),
        "consumer stopped after a panic"
    );
    let stats = stop_ok(running);
    assert!(stats.handler_failures >= 1);
}

/// A consumer killed with work in hand is taken over within about its
/// heartbeat timeout (interval × allowed misses), not `claim_min_idle`.
pub fn killed_consumer_is_taken_over_after_its_heartbeat_timeout<A: Adapter>() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let ids = produce(&server, 5);
    let failover = opts(|c| {
        fast(c)
            .heartbeat(Duration::from_millis(200), 3)
            .claim_min_idle(Duration::from_secs(60))
            .claim_interval(Duration::from_secs(60))
    });
    let dead = spec(
        &proxy.url(),
        "dead",
        Behavior::SleepMs(60_000),
        failover.clone(),
    );
    let dead_seen = dead.seen.clone();
    let running = A::start(dead);
    assert!(dead_seen.wait_started(1, WAIT));
    let alive = spec(&server.url(), "alive", Behavior::AckAll, failover);
    let seen = alive.seen.clone();
    let alive = A::start(alive);
    proxy.set_refusing(true);
    proxy.cut_all();
    running.kill();
    let killed = Instant::now();
    let taken = |ds: &[Delivery]| {
        ids.iter().all(|id| {
            ds.iter()
                .any(|d| &d.id == id && d.source == Source::Claimed && d.attempt == 2)
        })
    };
    assert!(seen.wait_for(WAIT, taken), "{:?}", seen.deliveries());
    let took = killed.elapsed();
    // 600 ms of missed beats, one liveness check (200 ms), and slack.
    assert!(took < Duration::from_secs(5), "takeover took {took:?}");
    wait_pending(&server, 0);
    let stats = stop_ok(alive);
    assert!(stats.dead_consumers >= 1, "{stats:?}");
}

/// An entry that always fails ends in the dead-letter stream after
/// `max_deliveries` attempts, with nothing left pending.
pub fn always_failing_entry_is_dead_lettered<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 1);
    let configure = opts(|c| {
        fast(c)
            .retry_backoff(Duration::from_millis(50), Duration::from_millis(200))
            .max_deliveries(3, DeadLetter::Stream("dlq".into()))
    });
    let s = spec(&server.url(), "c1", Behavior::RetryAlways, configure);
    let seen = s.seen.clone();
    let running = A::start(s);
    let deadline = Instant::now() + WAIT;
    while server.cmd(&["XLEN", "dlq"]).as_int() != Some(1) {
        assert!(
            Instant::now() < deadline,
            "never dead-lettered: {:?}",
            seen.deliveries()
        );
        thread::sleep(Duration::from_millis(20));
    }
    wait_pending(&server, 0);
    let attempts: Vec<u64> = seen.deliveries().iter().map(|d| d.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    let entry = server.cmd(&["XRANGE", "dlq", "-", "+"]);
    let fields = entry.as_array().and_then(|e| {
        e.first()?
            .as_array()?
            .get(1)?
            .as_array()
            .map(<[RespValue]>::to_vec)
    });
    let fields: Vec<String> = fields
        .expect("a dead-letter entry")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect();
    let get = |name: &str| {
        fields
            .chunks(2)
            .find(|kv| kv[0] == name)
            .map(|kv| kv[1].clone())
    };
    assert_eq!(
        get("n").as_deref(),
        Some("0"),
        "original fields kept: {fields:?}"
    );
    assert_eq!(get("dlq_id"), Some(ids[0].clone()));
    assert_eq!(get("dlq_deliveries").as_deref(), Some("3"));
    assert_eq!(get("dlq_stream").as_deref(), Some("s"));
    assert_eq!(get("dlq_group").as_deref(), Some("g"));
    assert_eq!(get("dlq_consumer").as_deref(), Some("c1"));
    assert!(get("dlq_reason").is_some());
    let stats = stop_ok(running);
    assert_eq!(stats.dead_lettered, 1);
}

/// A retry-after is respected by a second consumer: it does not get the
/// entry before the time, even with a short claim min idle.
pub fn retry_after_is_respected_by_another_consumer<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 3);
    let eager = opts(|c| {
        fast(c)
            .claim_min_idle(Duration::from_millis(300))
            .claim_interval(Duration::from_millis(100))
    });
    let first = spec(
        &server.url(),
        "c1",
        Behavior::RetryAfterMs(1500),
        eager.clone(),
    );
    let first_seen = first.seen.clone();
    let started = Instant::now();
    let c1 = A::start(first);
    assert!(first_seen.wait_for(WAIT, all_seen(&ids)));
    let other = spec(&server.url(), "c2", Behavior::AckAll, eager);
    let other_seen = other.seen.clone();
    let c2 = A::start(other);
    let retried = |ds: &[Delivery]| {
        ids.iter()
            .all(|id| ds.iter().any(|d| &d.id == id && d.attempt == 2))
    };
    assert!(
        first_seen.wait_for(WAIT, retried),
        "{:?}",
        first_seen.deliveries()
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "retried too early"
    );
    assert!(
        other_seen.deliveries().is_empty(),
        "another consumer got them before their retry time: {:?}",
        other_seen.deliveries()
    );
    assert!(first_seen
        .deliveries()
        .iter()
        .filter(|d| d.attempt == 2)
        .all(|d| d.source == Source::Retry));
    wait_pending(&server, 0);
    stop_ok(c1);
    stop_ok(c2);
}

/// A retry-after holds group-wide whatever the other consumers' settings:
/// with heartbeats on, a consumer whose claim min idle (500 ms) is far
/// shorter than the retrying consumer refreshes its entries for does not
/// sweep them while their owner is alive.
pub fn retry_after_holds_against_a_shorter_claim_min_idle<A: Adapter>() {
    let server = RedisServer::start();
    let patient = opts(|c| {
        fast(c)
            .heartbeat(Duration::from_millis(500), 3)
            .claim_min_idle(Duration::from_secs(60))
            .claim_interval(Duration::from_secs(60))
    });
    let first = spec(
        &server.url(),
        "patient",
        Behavior::RetryAfterMs(3000),
        patient,
    );
    let first_seen = first.seen.clone();
    let c1 = A::start(first);
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let ids = produce(&server, 3);
    assert!(first_seen.wait_for(WAIT, all_seen(&ids)));
    let eager = opts(|c| {
        fast(c)
            .heartbeat(Duration::from_millis(500), 3)
            .claim_min_idle(Duration::from_millis(500))
            .claim_interval(Duration::from_millis(100))
    });
    let other = spec(&server.url(), "eager", Behavior::AckAll, eager);
    let other_seen = other.seen.clone();
    let c2 = A::start(other);
    let retried = |ds: &[Delivery]| {
        ids.iter()
            .all(|id| ds.iter().any(|d| &d.id == id && d.attempt == 2))
    };
    assert!(
        first_seen.wait_for(WAIT, retried),
        "not retried by its owner: {:?}; the eager consumer got {:?}",
        first_seen.deliveries(),
        other_seen.deliveries()
    );
    assert!(
        started.elapsed() >= Duration::from_millis(2900),
        "retried too early"
    );
    assert!(
        other_seen.deliveries().is_empty(),
        "another consumer got them before their retry time: {:?}",
        other_seen.deliveries()
    );
    wait_pending(&server, 0);
    stop_ok(c1);
    stop_ok(c2);
}

/// Delete-on-ack leaves the stream empty.
pub fn delete_on_ack_empties_the_stream<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 10);
    let s = spec(
        &server.url(),
        "c1",
        Behavior::AckAll,
        opts(|c| fast(c).delete_on_ack(true)),
    );
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&ids)));
    wait_pending(&server, 0);
    let deadline = Instant::now() + WAIT;
    while server.cmd(&["XLEN", "s"]).as_int() != Some(0) {
        assert!(Instant::now() < deadline, "stream not emptied");
        thread::sleep(Duration::from_millis(20));
    }
    let stats = stop_ok(running);
    assert_eq!(stats.acked, 10);
}

/// A handler working longer than `claim_min_idle` keeps its entries: their
/// idle time is refreshed and heartbeats go on, so another consumer with
/// eager claim sweeps never gets them.
pub fn long_handler_keeps_its_entries<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 3);
    let eager = opts(|c| {
        fast(c)
            .heartbeat(Duration::from_millis(100), 3)
            .claim_min_idle(Duration::from_millis(400))
            .claim_interval(Duration::from_millis(100))
    });
    let slow = spec(
        &server.url(),
        "slow",
        Behavior::SleepMs(1500),
        eager.clone(),
    );
    let slow_seen = slow.seen.clone();
    let c1 = A::start(slow);
    assert!(slow_seen.wait_started(1, WAIT));
    let other = spec(&server.url(), "other", Behavior::AckAll, eager);
    let other_seen = other.seen.clone();
    let c2 = A::start(other);
    assert!(slow_seen.wait_for(WAIT, all_seen(&ids)));
    wait_pending(&server, 0);
    assert!(
        other_seen.deliveries().is_empty(),
        "entries of a working handler were claimed: {:?}",
        other_seen.deliveries()
    );
    assert!(slow_seen.deliveries().iter().all(|d| d.attempt == 1));
    stop_ok(c1);
    stop_ok(c2);
}

/// Entries deleted from the stream while pending for a dead consumer are
/// cleaned up, not delivered: Redis 7.0+ lists their ids in XAUTOCLAIM's
/// reply, 6.2 claims them as nils (then the own-pending replay finds and
/// acks them).
pub fn deleted_pending_entries_are_cleaned_up<A: Adapter>() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let ids = produce(&server, 4);
    let no_hb = opts(|c| {
        fast(c)
            .no_heartbeat()
            .claim_min_idle(Duration::from_millis(300))
    });
    let dead = spec(
        &proxy.url(),
        "dead",
        Behavior::SleepMs(60_000),
        no_hb.clone(),
    );
    let dead_seen = dead.seen.clone();
    let running = A::start(dead);
    assert!(dead_seen.wait_started(1, WAIT));
    proxy.set_refusing(true);
    proxy.cut_all();
    running.kill();
    assert_eq!(
        server.cmd(&["XDEL", "s", &ids[1], &ids[2]]).as_int(),
        Some(2)
    );
    let alive = spec(&server.url(), "alive", Behavior::AckAll, no_hb);
    let seen = alive.seen.clone();
    let running = A::start(alive);
    let live = [ids[0].clone(), ids[3].clone()];
    assert!(
        seen.wait_for(WAIT, all_seen(&live)),
        "{:?}",
        seen.deliveries()
    );
    wait_pending(&server, 0);
    assert_eq!(
        seen.ids().len(),
        2,
        "deleted entries reached the handler: {:?}",
        seen.ids()
    );
    stop_ok(running);
}

/// A handler that hangs past the handler timeout loses its entries to other
/// consumers: its consumer, alive, releases them (heartbeats are on, so
/// others' sweeps skip a live consumer's entries), and another's sweep takes
/// them after `claim_min_idle`; the hung consumer keeps running.
pub fn hung_handler_entries_go_to_others<A: Adapter>() {
    let server = RedisServer::start();
    let ids = produce(&server, 2);
    let eager = opts(|c| {
        fast(c)
            .claim_min_idle(Duration::from_millis(400))
            .claim_interval(Duration::from_millis(100))
            .handler_timeout(Duration::from_millis(500))
    });
    let hung = spec(
        &server.url(),
        "hung",
        Behavior::SleepMs(60_000),
        eager.clone(),
    );
    let hung_seen = hung.seen.clone();
    let mut c1 = A::start(hung);
    assert!(hung_seen.wait_started(1, WAIT));
    let started = Instant::now();
    let other = spec(&server.url(), "other", Behavior::AckAll, eager);
    let seen = other.seen.clone();
    let c2 = A::start(other);
    let taken = |ds: &[Delivery]| {
        ids.iter()
            .all(|id| ds.iter().any(|d| &d.id == id && d.attempt == 2))
    };
    assert!(seen.wait_for(WAIT, taken), "{:?}", seen.deliveries());
    assert!(started.elapsed() >= Duration::from_millis(400));
    wait_pending(&server, 0);
    assert!(
        c1.wait(Duration::ZERO).is_none(),
        "the hung consumer stopped"
    );
    stop_ok(c2);
    c1.kill();
}

/// An unreachable server: the consumer retries with backoff (no hot loop)
/// and still stops when asked.
pub fn unreachable_server_is_retried_without_spinning<A: Adapter>() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("redis://127.0.0.1:{port}");
    let mut running = A::start(spec(&url, "c1", Behavior::AckAll, opts(fast)));
    thread::sleep(Duration::from_millis(1500));
    assert!(
        running.wait(Duration::ZERO).is_none(),
        "gave up on a server that may come back"
    );
    let stats = running.stats();
    // Backoff 20 ms doubling to 500 ms: about 7 attempts in 1.5 s.
    assert!((2..=15).contains(&stats.errors), "{stats:?}");
    let stats = stop_ok(running);
    assert_eq!(stats.connections, 0);
}

/// An ACL user without permission for XREADGROUP: a typed error from
/// `run` that names the command.
pub fn missing_permission_is_an_error<A: Adapter>() {
    let server = RedisServer::start();
    let reply = server.cmd(&[
        "ACL",
        "SETUSER",
        "limited",
        "on",
        ">pw",
        "~*",
        "&*",
        "+@all",
        "-xreadgroup",
    ]);
    assert!(!reply.is_error(), "{reply:?}");
    let url = format!("redis://limited:pw@127.0.0.1:{}", server.port());
    let mut running = A::start(spec(&url, "c1", Behavior::AckAll, opts(fast)));
    match running.wait(WAIT) {
        Some(Err(e @ Error::NoPermission { command, .. })) => {
            assert_eq!(command, "XREADGROUP", "{e}");
            let text = e.to_string();
            assert!(
                text.starts_with("the ACL user lacks permission for XREADGROUP: NOPERM"),
                "{text}"
            );
            assert!(!text.contains(">pw"), "{text}");
        }
        other => panic!("expected NOPERM for XREADGROUP, got {other:?}"),
    }
}

/// Polling mode: reads without BLOCK, waiting between empty reads.
pub fn polling_mode_consumes<A: Adapter>() {
    let server = RedisServer::start();
    let s = spec(
        &server.url(),
        "c1",
        Behavior::AckAll,
        opts(|c| fast(c).receive_interval(Duration::from_millis(100))),
    );
    let seen = s.seen.clone();
    let running = A::start(s);
    thread::sleep(Duration::from_millis(300));
    let ids = produce(&server, 4);
    assert!(seen.wait_for(WAIT, all_seen(&ids)));
    wait_pending(&server, 0);
    stop_ok(running);
}

/// Instantiates every scenario as a `#[test]` for an [`Adapter`] type.
#[macro_export]
macro_rules! adapter_scenarios {
    ($adapter:ty) => {
        $crate::adapter_scenarios!(@each $adapter;
            consume_and_ack, consume_and_ack_over_resp3, consumes_several_streams_under_one_in_flight_limit,
            ordered_mode_hands_each_stream_to_one_consumer_at_a_time,
            ordered_mode_takes_over_a_dead_consumers_streams, ack_only_some, ack_none_is_redelivered, creates_group_and_stream,
            missing_group_without_auto_create_is_an_error, restart_replays_own_pending_first,
            dead_consumers_entries_are_claimed, graceful_stop_waits_for_the_handler,
            server_restart_loses_nothing, proxy_cut_loses_nothing, deleted_group_is_recreated,
            wrong_password_is_an_error, wrong_key_type_is_an_error, handler_panic_is_survived,
            killed_consumer_is_taken_over_after_its_heartbeat_timeout,
            always_failing_entry_is_dead_lettered, retry_after_is_respected_by_another_consumer,
            retry_after_holds_against_a_shorter_claim_min_idle,
            same_name_while_running_is_refused,
            crash_restart_takes_the_name_over_before_its_key_expires,
            graceful_restart_starts_at_once,
            delete_on_ack_empties_the_stream, polling_mode_consumes, long_handler_keeps_its_entries,
            deleted_pending_entries_are_cleaned_up, hung_handler_entries_go_to_others,
            unreachable_server_is_retried_without_spinning, missing_permission_is_an_error,
            stream_deleted_during_a_blocked_read_is_recreated,
            stream_deleted_during_a_blocked_read_without_auto_create_is_a_typed_error,
            out_of_memory_does_not_stop_consuming, failed_dead_letter_move_keeps_the_entry_pending,
            idle_consumer_stops_without_waiting_out_its_blocked_read,
            acks_do_not_wait_behind_a_blocked_read, busy_consumer_stops_once_its_acks_are_confirmed,
            info_shows_the_groups_counts, read_ahead_hands_out_batches_of_count);
        $crate::adapter_scenarios!(@typed $adapter;
            typed_messages_are_produced_and_deserialized_in_the_handler,
            malformed_typed_fields_are_errors_naming_the_field);
        $crate::adapter_scenarios!(@tls $adapter;
            consumes_over_tls, consumes_over_mutual_tls_as_an_acl_user_over_resp3,
            acl_user_with_an_encoded_password_consumes,
            tls_untrusted_server_certificate_stops_the_consumer,
            tls_wrong_host_name_stops_the_consumer_and_server_name_mends_it,
            tls_expired_server_certificate_stops_the_consumer,
            tls_plaintext_server_stops_the_consumer,
            tls_missing_or_unknown_client_certificate_stops_the_consumer,
            tls_without_verification_accepts_an_expired_certificate,
            tls_server_down_and_restarted_is_retried_and_loses_nothing);
        $crate::adapter_scenarios!(@sentinel $adapter;
            follows_the_master_through_a_failover, keeps_consuming_with_every_sentinel_down,
            no_sentinel_at_start_is_retried_without_spinning,
            separate_sentinel_and_data_passwords, follows_a_manual_failover);
        $crate::adapter_scenarios!(@cluster $adapter;
            consumes_through_any_seed_node, consumes_every_shard_of_a_sharded_stream,
            ordered_mode_on_a_cluster,
            follows_a_slot_migration,
            follows_a_primary_killed_and_its_replica_promoted,
            resumes_after_the_whole_cluster_restarts);
    };
    // Against the model served over TCP: every scenario but those that
    // need a server process (restart) or what the model does not have
    // (ACL users, `maxmemory`).
    (on_the_model $adapter:ty) => {
        $crate::adapter_scenarios!(@model $adapter;
            consume_and_ack, consume_and_ack_over_resp3, consumes_several_streams_under_one_in_flight_limit, ack_only_some, ack_none_is_redelivered, creates_group_and_stream,
            missing_group_without_auto_create_is_an_error, restart_replays_own_pending_first,
            dead_consumers_entries_are_claimed, graceful_stop_waits_for_the_handler,
            proxy_cut_loses_nothing, deleted_group_is_recreated,
            wrong_password_is_an_error, wrong_key_type_is_an_error, handler_panic_is_survived,
            killed_consumer_is_taken_over_after_its_heartbeat_timeout,
            always_failing_entry_is_dead_lettered, retry_after_is_respected_by_another_consumer,
            retry_after_holds_against_a_shorter_claim_min_idle,
            same_name_while_running_is_refused,
            crash_restart_takes_the_name_over_before_its_key_expires,
            graceful_restart_starts_at_once,
            delete_on_ack_empties_the_stream, polling_mode_consumes, long_handler_keeps_its_entries,
            deleted_pending_entries_are_cleaned_up, hung_handler_entries_go_to_others,
            unreachable_server_is_retried_without_spinning,
            stream_deleted_during_a_blocked_read_is_recreated,
            stream_deleted_during_a_blocked_read_without_auto_create_is_a_typed_error,
            failed_dead_letter_move_keeps_the_entry_pending,
            idle_consumer_stops_without_waiting_out_its_blocked_read,
            acks_do_not_wait_behind_a_blocked_read, busy_consumer_stops_once_its_acks_are_confirmed,
            read_ahead_hands_out_batches_of_count);
    };
    (@model $adapter:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::serve_the_model();
                $crate::scenarios::$name::<$adapter>();
            }
        )*
    };
    (@sentinel $adapter:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::sentinel_scenarios::$name::<$adapter>();
            }
        )*
    };
    (@cluster $adapter:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::cluster_scenarios::$name::<$adapter>();
            }
        )*
    };
    (@typed $adapter:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::typed::$name::<$adapter>();
            }
        )*
    };
    (@tls $adapter:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::tls_scenarios::$name::<$adapter>();
            }
        )*
    };
    (@each $adapter:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::scenarios::$name::<$adapter>();
            }
        )*
    };
}
