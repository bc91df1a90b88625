//! The scenarios of the per-message handler (`handler_each`) and the
//! message stream (`messages()`), written once for every adapter.
//!
//! An adapter's test file implements [`Shapes`] (start a consumer from an
//! [`EachSpec`] with a per-message handler that calls [`EachSpec::handle`],
//! or take its `messages()` and hand them to [`consume`]) and instantiates
//! every scenario with [`shape_scenarios!`](crate::shape_scenarios). Each
//! scenario spawns its own server and is bounded in time.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use xgroup_core::{Batch, ConsumerInfo, DeadLetter, Error, Message, Outcome, ServerErrorKind};
use xgroup_driver::{ConsumerBuilder, ConsumerHandle, Delivery, Failure, PerMessage, Runtime};

use crate::scenarios::{fast, opts, produce, wait_pending, Configure, Running, WAIT};
use crate::{RedisServer, RespValue};

/// What the handler (or the code taking deliveries) does with one message,
/// after its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Acknowledge it.
    Ack,
    /// Retry after the configured backoff.
    Retry,
    /// Retry not before this many ms from the decision.
    RetryAfterMs(u64),
    /// Dead-letter it with this reason.
    DeadLetter(&'static str),
    /// Leave it pending.
    Keep,
    /// Panic (per-message handlers).
    Panic,
    /// Drop the delivery undecided (the stream).
    Drop,
    /// Hold it this long, reporting progress every 100 ms, then ack (the
    /// stream).
    ProgressFor(u64),
    /// Hold it this long without a word, then ack (the stream).
    HoldFor(u64),
}

/// What to do with one message: busy-loop for `spin_ms` (CPU-bound work,
/// not a sleep), then decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// CPU-bound work, in ms.
    pub spin_ms: u64,
    /// The decision.
    pub decision: Decision,
}

/// One handler call (or one delivery taken), as recorded.
#[derive(Debug, Clone)]
pub struct Call {
    /// The message's `n` field (its position in what the scenario produced).
    pub n: usize,
    /// Its `key` field.
    pub key: String,
    /// Its id, as text.
    pub id: String,
    /// Delivery count.
    pub attempt: u64,
    /// The thread it ran on.
    pub thread: ThreadId,
    /// When its work started.
    pub start: Instant,
    /// When its work ended (before the decision).
    pub end: Instant,
}

/// The calls of one consumer, shared with the test.
#[derive(Debug, Default)]
pub struct Calls {
    calls: Mutex<Vec<Call>>,
    changed: Condvar,
}

impl Calls {
    fn push(&self, call: Call) {
        self.lock().push(call);
        self.changed.notify_all();
    }

    /// Everything recorded so far, in the order the calls ended.
    pub fn all(&self) -> Vec<Call> {
        self.lock().clone()
    }

    /// Waits until `done` holds for what was recorded, at most `timeout`.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Call]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut calls = self.lock();
        while !done(&calls) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            calls = match self.changed.wait_timeout(calls, deadline - now) {
                Ok((c, _)) => c,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Call>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Decides the plan of a message.
pub type Planner = Arc<dyn Fn(usize, u64) -> Plan + Send + Sync>;

/// Everything an adapter needs to start one consumer of a scenario.
#[derive(Clone)]
pub struct EachSpec {
    /// `redis://` URL.
    pub url: String,
    /// Stream key (`s`).
    pub stream: String,
    /// Group name (`g`).
    pub group: String,
    /// Consumer name.
    pub consumer: String,
    /// Core options.
    pub configure: Configure,
    /// `concurrency(n)`, if set.
    pub concurrency: Option<usize>,
    /// `order_by` the `key` field.
    pub order_by_key: bool,
    /// What to do with each message (by its `n` and attempt).
    pub plan: Planner,
    /// Where calls are recorded.
    pub calls: Arc<Calls>,
}

impl std::fmt::Debug for EachSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EachSpec")
            .field("url", &self.url)
            .field("consumer", &self.consumer)
            .field("concurrency", &self.concurrency)
            .field("order_by_key", &self.order_by_key)
            .finish()
    }
}

impl EachSpec {
    /// Applies the spec's options to a builder with a per-message handler
    /// (or none yet, for the stream).
    pub fn apply<R: Runtime, H: PerMessage>(
        &self,
        b: ConsumerBuilder<R, H>,
    ) -> ConsumerBuilder<R, H> {
        let configure = self.configure.clone();
        let mut b = b.configure(|c| configure(c));
        if let Some(n) = self.concurrency {
            b = b.concurrency(n);
        }
        if self.order_by_key {
            b = b.order_by(|m: &Message| m.fields.get("key").map(<[u8]>::to_vec));
        }
        b
    }

    /// The per-message handler's body: the work, recorded, then the
    /// decision (a panic for [`Decision::Panic`]).
    pub fn handle(&self, message: Message) -> Result<(), Failure> {
        let plan = self.work(&message);
        match plan.decision {
            Decision::Ack => Ok(()),
            Decision::Retry => Err(Failure::retry()),
            Decision::RetryAfterMs(ms) => Err(Failure::retry_after(Duration::from_millis(ms))),
            Decision::DeadLetter(reason) => Err(Failure::dead_letter(reason)),
            Decision::Keep | Decision::Drop => Err(Failure::keep()),
            Decision::Panic => panic!("planned handler panic on message {}", message.id),
            Decision::ProgressFor(ms) | Decision::HoldFor(ms) => {
                thread::sleep(Duration::from_millis(ms));
                Ok(())
            }
        }
    }

    /// What the code taking a delivery from the stream does with it.
    pub fn decide(&self, delivery: Delivery) {
        let plan = self.work(delivery.message());
        match plan.decision {
            Decision::Ack => delivery.ack(),
            Decision::Retry => delivery.retry(),
            Decision::RetryAfterMs(ms) => {
                delivery.retry_at(Instant::now() + Duration::from_millis(ms));
            }
            Decision::DeadLetter(reason) => delivery.dead_letter(reason),
            Decision::Keep => delivery.keep(),
            Decision::Panic | Decision::Drop => drop(delivery),
            Decision::ProgressFor(ms) => {
                let until = Instant::now() + Duration::from_millis(ms);
                while Instant::now() < until {
                    delivery.in_progress();
                    thread::sleep(Duration::from_millis(100));
                }
                delivery.ack();
            }
            Decision::HoldFor(ms) => {
                thread::sleep(Duration::from_millis(ms));
                delivery.ack();
            }
        }
    }

    /// A batch handler's body: each message's work, recorded, then
    /// everything acknowledged (the decisions are the per-message shapes').
    pub fn handle_batch(&self, batch: Batch) -> Outcome {
        for m in &batch.messages {
            self.work(m);
        }
        Outcome::AckAll
    }

    /// [`decide`](Self::decide) on a thread of its own.
    pub fn decide_apart(&self, delivery: Delivery) {
        let spec = self.clone();
        thread::spawn(move || spec.decide(delivery));
    }

    fn work(&self, m: &Message) -> Plan {
        let field = |name: &str| {
            String::from_utf8_lossy(m.fields.get(name).unwrap_or_default()).into_owned()
        };
        let n: usize = field("n").parse().unwrap_or(usize::MAX);
        let plan = (self.plan)(n, m.attempt);
        let start = Instant::now();
        spin(Duration::from_millis(plan.spin_ms));
        let call = Call {
            n,
            key: field("key"),
            id: m.id.to_string(),
            attempt: m.attempt,
            thread: thread::current().id(),
            start,
            end: Instant::now(),
        };
        self.calls.push(call);
        plan
    }
}

/// Burns CPU for `d`: work that holds its thread, unlike a sleep.
pub fn spin(d: Duration) {
    let until = Instant::now() + d;
    let mut x = 0u64;
    while Instant::now() < until {
        for i in 0..1000 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
    std::hint::black_box(x);
}

/// Takes every delivery of a message iterator (the blocking adapter's) and
/// decides each on a thread of its own; returns how it ended (`Ok` after a
/// graceful stop). Async adapters loop over their stream the same way.
pub fn consume(
    spec: &EachSpec,
    messages: impl Iterator<Item = Result<Delivery, Error>>,
) -> Result<(), Error> {
    for delivery in messages {
        spec.decide_apart(delivery?);
    }
    Ok(())
}

/// A consumer (or its stream) running in the background, by its handle
/// and where its result arrives.
#[derive(Debug)]
pub struct Background<R: Runtime> {
    handle: ConsumerHandle<R>,
    done: mpsc::Receiver<Result<(), Error>>,
    result: Option<Result<(), Error>>,
}

impl<R: Runtime> Background<R> {
    /// Watches the consumer of `handle`, whose result `done` receives.
    pub fn watch(
        handle: ConsumerHandle<R>,
        done: mpsc::Receiver<Result<(), Error>>,
    ) -> Box<dyn Running> {
        Box::new(Background {
            handle,
            done,
            result: None,
        })
    }
}

impl<R: Runtime> Running for Background<R> {
    fn stop(&self) {
        self.handle.stop();
    }
    fn info(&self) -> ConsumerInfo {
        self.handle.info()
    }
    fn wait(&mut self, timeout: Duration) -> Option<Result<(), Error>> {
        if self.result.is_none() {
            self.result = self.done.recv_timeout(timeout).ok();
        }
        self.result.clone()
    }
    /// Not needed by these scenarios: a stop.
    fn kill(self: Box<Self>) {
        self.handle.stop();
    }
}

/// An adapter under test with the per-message shapes.
pub trait Shapes {
    /// Starts a consumer for `spec` with `handler_each` calling
    /// [`EachSpec::handle`].
    fn start_each(spec: EachSpec) -> Box<dyn Running>;
    /// Starts a consumer for `spec` and hands its `messages()` to
    /// [`consume`] (or the same loop over its stream).
    fn start_stream(spec: EachSpec) -> Box<dyn Running>;
    /// Starts a consumer for `spec` with a batch handler calling
    /// [`EachSpec::handle_batch`] (`order_by` does not apply).
    fn start_batches(spec: EachSpec) -> Box<dyn Running>;
}

/// Which shape a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `handler_each`.
    Each,
    /// `messages()`.
    Stream,
    /// A batch handler (`handler_fn`).
    Batches,
}

fn start<A: Shapes>(shape: Shape, spec: EachSpec) -> Box<dyn Running> {
    match shape {
        Shape::Each => A::start_each(spec),
        Shape::Stream => A::start_stream(spec),
        Shape::Batches => A::start_batches(spec),
    }
}

fn each_spec(
    server: &RedisServer,
    consumer: &str,
    configure: Configure,
    plan: impl Fn(usize, u64) -> Plan + Send + Sync + 'static,
) -> EachSpec {
    EachSpec {
        url: server.url(),
        stream: "s".into(),
        group: "g".into(),
        consumer: consumer.into(),
        configure,
        concurrency: None,
        order_by_key: false,
        plan: Arc::new(plan),
        calls: Arc::default(),
    }
}

fn decide(decision: Decision) -> Plan {
    Plan {
        spin_ms: 0,
        decision,
    }
}

/// Produces `keys.len()` entries, `n` = position and `key` as given.
fn produce_keyed(server: &RedisServer, keys: &[&str]) -> Vec<String> {
    let mut conn = server.connect().expect("connect to the test server");
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            let reply = conn
                .cmd(&["XADD", "s", "*", "n", &i.to_string(), "key", key])
                .expect("XADD");
            reply.as_str().expect("XADD returns an id").to_owned()
        })
        .collect()
}

fn stop_ok(mut running: Box<dyn Running>) -> xgroup_core::Stats {
    running.stop();
    match running.wait(WAIT) {
        Some(Ok(())) => running.stats(),
        Some(Err(e)) => panic!("run ended with an error: {e}"),
        None => panic!("run did not return after stop"),
    }
}

fn attempts_of(calls: &[Call], n: usize) -> Vec<u64> {
    calls
        .iter()
        .filter(|c| c.n == n)
        .map(|c| c.attempt)
        .collect()
}

/// `Ok(())` / `ack()` acknowledges each message, handled once.
pub fn acks<A: Shapes>(shape: Shape) {
    let server = RedisServer::start();
    let ids = produce(&server, 5);
    let spec = each_spec(&server, "c1", opts(fast), |_, _| decide(Decision::Ack));
    let calls = spec.calls.clone();
    let running = start::<A>(shape, spec);
    assert!(calls.wait_for(WAIT, |c| c.len() == 5), "{:?}", calls.all());
    wait_pending(&server, 0);
    let stats = stop_ok(running);
    let mut seen: Vec<String> = calls.all().iter().map(|c| c.id.clone()).collect();
    seen.sort();
    assert_eq!(seen, ids);
    assert_eq!(stats.acked, 5);
    assert_eq!(stats.redelivered, 0);
}

/// A retry redelivers the message to this consumer after the backoff.
pub fn retry<A: Shapes>(shape: Shape) {
    let server = RedisServer::start();
    produce(&server, 2);
    let configure =
        opts(|c| fast(c).retry_backoff(Duration::from_millis(50), Duration::from_millis(200)));
    let spec = each_spec(&server, "c1", configure, |n, attempt| {
        decide(match (n, attempt) {
            (0, 1) => Decision::Retry,
            _ => Decision::Ack,
        })
    });
    let calls = spec.calls.clone();
    let running = start::<A>(shape, spec);
    assert!(calls.wait_for(WAIT, |c| c.len() == 3), "{:?}", calls.all());
    wait_pending(&server, 0);
    let stats = stop_ok(running);
    let calls = calls.all();
    assert_eq!(attempts_of(&calls, 0), [1, 2]);
    assert_eq!(attempts_of(&calls, 1), [1]);
    assert_eq!(stats.retried, 1);
}

/// A retry at a time comes back no earlier.
pub fn retry_at<A: Shapes>(shape: Shape) {
    let server = RedisServer::start();
    produce(&server, 1);
    let spec = each_spec(&server, "c1", opts(fast), |_, attempt| {
        decide(match attempt {
            1 => Decision::RetryAfterMs(700),
            _ => Decision::Ack,
        })
    });
    let calls = spec.calls.clone();
    let running = start::<A>(shape, spec);
    assert!(calls.wait_for(WAIT, |c| c.len() == 2), "{:?}", calls.all());
    wait_pending(&server, 0);
    stop_ok(running);
    let calls = calls.all();
    assert_eq!(attempts_of(&calls, 0), [1, 2]);
    // The core's timers keep a millisecond of slack.
    let waited = calls[1].start.duration_since(calls[0].end);
    assert!(
        waited >= Duration::from_millis(698),
        "back after {waited:?}"
    );
}

/// A dead letter goes to the dead-letter stream with its reason, at once.
pub fn dead_letter<A: Shapes>(shape: Shape) {
    let server = RedisServer::start();
    let ids = produce(&server, 2);
    let configure = opts(|c| fast(c).dead_letter(DeadLetter::Stream("dlq".into())));
    let spec = each_spec(&server, "c1", configure, |n, _| {
        decide(match n {
            1 => Decision::DeadLetter("bad input"),
            _ => Decision::Ack,
        })
    });
    let calls = spec.calls.clone();
    let running = start::<A>(shape, spec);
    let deadline = Instant::now() + WAIT;
    while server.cmd(&["XLEN", "dlq"]).as_int() != Some(1) {
        assert!(
            Instant::now() < deadline,
            "never dead-lettered: {:?}",
            calls.all()
        );
        thread::sleep(Duration::from_millis(20));
    }
    wait_pending(&server, 0);
    let stats = stop_ok(running);
    assert_eq!(stats.dead_lettered, 1);
    assert_eq!(calls.all().len(), 2, "nothing redelivered");
    let entry = server.cmd(&["XRANGE", "dlq", "-", "+"]);
    let fields: Vec<String> = entry
        .as_array()
        .and_then(|e| {
            e.first()?
                .as_array()?
                .get(1)?
                .as_array()
                .map(<[RespValue]>::to_vec)
        })
        .expect("a dead-letter entry")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect();
    let fields: BTreeMap<&str, &str> = fields
        .chunks(2)
        .filter_map(|kv| Some((kv.first()?.as_str(), kv.get(1)?.as_str())))
        .collect();
    assert_eq!(fields.get("dlq_id"), Some(&ids[1].as_str()), "{fields:?}");
    assert_eq!(fields.get("dlq_reason"), Some(&"bad input"), "{fields:?}");
}

/// A message kept (or, on the stream, a delivery dropped undecided) stays
/// pending while the others are acknowledged, and is redelivered later
/// (by the consumer's own claim of it, once idle for `claim_min_idle`).
pub fn keep<A: Shapes>(shape: Shape, decision: Decision) {
    let server = RedisServer::start();
    produce(&server, 3);
    let spec = each_spec(&server, "c1", opts(fast), move |n, attempt| {
        decide(match (n, attempt) {
            (1, 1) => decision.clone(),
            _ => Decision::Ack,
        })
    });
    let calls = spec.calls.clone();
    let running = start::<A>(shape, spec);
    // The others are acknowledged; the kept one stays pending...
    assert!(calls.wait_for(WAIT, |c| c.len() >= 3), "{:?}", calls.all());
    wait_pending(&server, 1);
    // ...until redelivered, and acknowledged then.
    assert!(calls.wait_for(WAIT, |c| c.len() == 4), "{:?}", calls.all());
    wait_pending(&server, 0);
    stop_ok(running);
    let calls = calls.all();
    assert_eq!(attempts_of(&calls, 1), [1, 2]);
    assert_eq!(attempts_of(&calls, 0), [1]);
    assert_eq!(attempts_of(&calls, 2), [1]);
}

/// A panic in one message's handler keeps that message pending (reported
/// as a handler failure); the batch's other messages are acknowledged, and
/// the consumer goes on.
pub fn each_panic_keeps_only_its_message<A: Shapes>() {
    let server = RedisServer::start();
    produce(&server, 3);
    let spec = each_spec(&server, "c1", opts(fast), |n, attempt| {
        decide(match (n, attempt) {
            (1, 1) => Decision::Panic,
            _ => Decision::Ack,
        })
    });
    let calls = spec.calls.clone();
    let mut running = A::start_each(spec);
    assert!(calls.wait_for(WAIT, |c| c.len() >= 3), "{:?}", calls.all());
    wait_pending(&server, 1);
    assert!(calls.wait_for(WAIT, |c| c.len() == 4), "{:?}", calls.all());
    wait_pending(&server, 0);
    assert!(
        running.wait(Duration::ZERO).is_none(),
        "stopped after a panic"
    );
    let stats = stop_ok(running);
    let calls = calls.all();
    assert_eq!(attempts_of(&calls, 1), [1, 2]);
    assert_eq!(attempts_of(&calls, 0), [1]);
    assert_eq!(attempts_of(&calls, 2), [1]);
    assert_eq!(stats.handler_failures, 1);
}

/// Whether two calls' work overlapped in time.
fn overlap(a: &Call, b: &Call) -> bool {
    a.start < b.end && b.start < a.end
}

/// With `concurrency(2)`, two CPU-bound calls (busy loops) run at the same
/// time on two threads: two messages of a batch (two deliveries out, for
/// the stream), or two batches of one message with two batches in flight.
pub fn runs_cpu_bound_calls_in_parallel<A: Shapes>(shape: Shape) {
    let server = RedisServer::start();
    produce(&server, 2);
    let configure = match shape {
        Shape::Batches => opts(|c| fast(c).count(1).max_in_flight_batches(2)),
        Shape::Each | Shape::Stream => opts(fast),
    };
    let mut spec = each_spec(&server, "c1", configure, |_, _| Plan {
        spin_ms: 600,
        decision: Decision::Ack,
    });
    spec.concurrency = Some(2);
    let calls = spec.calls.clone();
    let running = start::<A>(shape, spec);
    assert!(calls.wait_for(WAIT, |c| c.len() == 2), "{:?}", calls.all());
    wait_pending(&server, 0);
    stop_ok(running);
    let calls = calls.all();
    assert_ne!(calls[0].thread, calls[1].thread, "{calls:?}");
    assert!(overlap(&calls[0], &calls[1]), "{calls:?}");
}

/// `concurrency(1)` with two batches in flight (or a batch of two, per
/// message): the calls never overlap.
pub fn concurrency_one_runs_one_call_at_a_time<A: Shapes>(shape: Shape) {
    let server = RedisServer::start();
    produce(&server, 3);
    let configure = opts(|c| fast(c).count(1).max_in_flight_batches(3));
    let mut spec = each_spec(&server, "c1", configure, |_, _| Plan {
        spin_ms: 150,
        decision: Decision::Ack,
    });
    spec.concurrency = Some(1);
    let calls = spec.calls.clone();
    let running = start::<A>(shape, spec);
    assert!(calls.wait_for(WAIT, |c| c.len() == 3), "{:?}", calls.all());
    wait_pending(&server, 0);
    stop_ok(running);
    let calls = calls.all();
    for (i, a) in calls.iter().enumerate() {
        for b in &calls[i + 1..] {
            assert!(!overlap(a, b), "overlapped: {a:?} {b:?}");
        }
    }
}

/// `order_by`: messages of one key never overlap and run in id order;
/// different keys overlap.
pub fn each_order_by_keeps_each_keys_order<A: Shapes>() {
    let server = RedisServer::start();
    let keys = ["a", "b", "a", "c", "b", "a", "c", "b"];
    produce_keyed(&server, &keys);
    let mut spec = each_spec(&server, "c1", opts(fast), |_, _| Plan {
        spin_ms: 150,
        decision: Decision::Ack,
    });
    spec.concurrency = Some(3);
    spec.order_by_key = true;
    let calls = spec.calls.clone();
    let running = A::start_each(spec);
    assert!(
        calls.wait_for(WAIT, |c| c.len() == keys.len()),
        "{:?}",
        calls.all()
    );
    wait_pending(&server, 0);
    stop_ok(running);
    let calls = calls.all();
    let mut parallel = false;
    for (i, a) in calls.iter().enumerate() {
        for b in &calls[i + 1..] {
            if a.key == b.key {
                assert!(!overlap(a, b), "same key overlapped: {a:?} {b:?}");
                // In id order: the earlier entry ran first.
                let (first, second) = if a.n < b.n { (a, b) } else { (b, a) };
                assert!(
                    first.end <= second.start,
                    "out of order: {first:?} {second:?}"
                );
            } else {
                parallel |= overlap(a, b);
            }
        }
    }
    assert!(parallel, "no two keys ran at once: {calls:?}");
}

/// A delivery held past `handler_timeout` while it reports
/// `in_progress()` stays with this consumer: another one with a short
/// `claim_min_idle` never gets it. One held as long without a word is
/// taken for hung and handed to the other consumer.
pub fn stream_in_progress_keeps_the_entry<A: Shapes>() {
    let server = RedisServer::start();
    produce(&server, 2);
    let configure = opts(|c| {
        fast(c)
            .count(1)
            .max_in_flight_batches(2)
            .claim_min_idle(Duration::from_millis(300))
            .claim_interval(Duration::from_millis(100))
            .handler_timeout(Duration::from_millis(800))
    });
    let spec = each_spec(&server, "holder", configure.clone(), |n, _| {
        decide(match n {
            0 => Decision::ProgressFor(2500),
            _ => Decision::HoldFor(2500),
        })
    });
    let held = spec.calls.clone();
    let holder = A::start_stream(spec);
    assert!(held.wait_for(WAIT, |c| c.len() == 2), "{:?}", held.all());
    let other = each_spec(&server, "other", configure, |_, _| decide(Decision::Ack));
    let taken = other.calls.clone();
    let other = A::start_each(other);
    // The silent one goes to the other consumer...
    assert!(
        taken.wait_for(WAIT, |c| c.iter().any(|c| c.n == 1)),
        "{:?}",
        taken.all()
    );
    // ...and the one in progress never does, until acked by its holder.
    wait_pending(&server, 0);
    stop_ok(other);
    stop_ok(holder);
    assert_eq!(attempts_of(&taken.all(), 0), Vec::<u64>::new());
    assert_eq!(attempts_of(&held.all(), 0), [1]);
}

/// A graceful stop ends the stream (and `handle()` works after
/// `messages()`): `run`'s result is `Ok`.
pub fn stream_ends_after_a_graceful_stop<A: Shapes>() {
    let server = RedisServer::start();
    produce(&server, 2);
    let spec = each_spec(&server, "c1", opts(fast), |_, _| decide(Decision::Ack));
    let calls = spec.calls.clone();
    let running = A::start_stream(spec);
    assert!(calls.wait_for(WAIT, |c| c.len() == 2), "{:?}", calls.all());
    wait_pending(&server, 0);
    let stats = stop_ok(running);
    assert_eq!(stats.acked, 2);
}

/// A permanent error that stops the consumer (a wrong password) is the
/// stream's last item.
pub fn stream_ends_with_the_error_that_stopped_the_consumer<A: Shapes>() {
    let server = RedisServer::builder().password(Some("right")).start();
    let mut spec = each_spec(&server, "c1", opts(fast), |_, _| decide(Decision::Ack));
    spec.url = format!("redis://:wrong@127.0.0.1:{}", server.port());
    let mut running = A::start_stream(spec);
    match running.wait(WAIT) {
        Some(Err(Error::Server(e))) => assert_eq!(e.kind, ServerErrorKind::WrongPass, "{e}"),
        other => panic!("expected WRONGPASS, got {other:?}"),
    }
}

/// Instantiates every per-message and stream scenario for an adapter that
/// implements [`Shapes`].
#[macro_export]
macro_rules! shape_scenarios {
    ($adapter:ty) => {
        mod each {
            use super::*;
            use $crate::shapes::{self, Decision, Shape};

            #[test]
            fn acks() {
                shapes::acks::<$adapter>(Shape::Each)
            }
            #[test]
            fn retry() {
                shapes::retry::<$adapter>(Shape::Each)
            }
            #[test]
            fn retry_at() {
                shapes::retry_at::<$adapter>(Shape::Each)
            }
            #[test]
            fn dead_letter() {
                shapes::dead_letter::<$adapter>(Shape::Each)
            }
            #[test]
            fn keep() {
                shapes::keep::<$adapter>(Shape::Each, Decision::Keep)
            }
            #[test]
            fn panic_keeps_only_its_message() {
                shapes::each_panic_keeps_only_its_message::<$adapter>()
            }
            #[test]
            fn runs_cpu_bound_calls_in_parallel() {
                shapes::runs_cpu_bound_calls_in_parallel::<$adapter>(Shape::Each)
            }
            #[test]
            fn order_by_keeps_each_keys_order() {
                shapes::each_order_by_keeps_each_keys_order::<$adapter>()
            }
            #[test]
            fn concurrency_one_runs_one_call_at_a_time() {
                shapes::concurrency_one_runs_one_call_at_a_time::<$adapter>(Shape::Each)
            }
        }
        mod stream {
            use super::*;
            use $crate::shapes::{self, Decision, Shape};

            #[test]
            fn acks() {
                shapes::acks::<$adapter>(Shape::Stream)
            }
            #[test]
            fn retry() {
                shapes::retry::<$adapter>(Shape::Stream)
            }
            #[test]
            fn retry_at() {
                shapes::retry_at::<$adapter>(Shape::Stream)
            }
            #[test]
            fn dead_letter() {
                shapes::dead_letter::<$adapter>(Shape::Stream)
            }
            #[test]
            fn keep() {
                shapes::keep::<$adapter>(Shape::Stream, Decision::Keep)
            }
            #[test]
            fn dropped_delivery_is_redelivered() {
                shapes::keep::<$adapter>(Shape::Stream, Decision::Drop)
            }
            #[test]
            fn runs_cpu_bound_calls_in_parallel() {
                shapes::runs_cpu_bound_calls_in_parallel::<$adapter>(Shape::Stream)
            }
            #[test]
            fn in_progress_keeps_the_entry() {
                shapes::stream_in_progress_keeps_the_entry::<$adapter>()
            }
            #[test]
            fn ends_after_a_graceful_stop() {
                shapes::stream_ends_after_a_graceful_stop::<$adapter>()
            }
            #[test]
            fn ends_with_the_error_that_stopped_the_consumer() {
                shapes::stream_ends_with_the_error_that_stopped_the_consumer::<$adapter>()
            }
        }
        mod batches {
            use super::*;
            use $crate::shapes::{self, Shape};

            #[test]
            fn runs_cpu_bound_calls_in_parallel() {
                shapes::runs_cpu_bound_calls_in_parallel::<$adapter>(Shape::Batches)
            }
            #[test]
            fn concurrency_one_runs_one_call_at_a_time() {
                shapes::concurrency_one_runs_one_call_at_a_time::<$adapter>(Shape::Batches)
            }
        }
    };
}
