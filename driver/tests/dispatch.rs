//! The dispatch and the builder, with a real core against the in-memory
//! server (`xgroup_core::sim`), driven the way an adapter drives them.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xgroup_core::sim::{ConnId, SimOptions, SimServer};
use xgroup_driver::exports::*;
use xgroup_driver::{Action, Parts, Run, Runtime};

/// A runtime for tests: `run` hands the parts back, the test drives them.
struct Sim;

impl Runtime for Sim {
    type Stop = AtomicBool;

    fn stop(signal: &AtomicBool) {
        signal.store(true, Ordering::SeqCst);
    }
}

impl<F: Fn(Batch) -> Outcome + Send + Sync + 'static> Run<FnHandler<F>> for Sim {
    type Output = Parts<Sim, FnHandler<F>>;

    fn run(consumer: xgroup_driver::Consumer<Sim, FnHandler<F>>) -> Self::Output {
        consumer.into_parts()
    }
}

type Consumer<H = NoHandler> = xgroup_driver::Consumer<Sim, H>;

/// An adapter's drive loop, against a `SimServer` instead of a socket.
struct Harness<F> {
    parts: Parts<Sim, FnHandler<F>>,
    server: SimServer,
    /// The server's connection for each of the consumer's (at
    /// `StreamConn::index`).
    conns: Vec<Option<ConnId>>,
    /// Fail this many connection attempts before connecting.
    refuse: usize,
}

impl<F: Fn(Batch) -> Outcome + Send + Sync + 'static> Harness<F> {
    fn new(consumer: Consumer<FnHandler<F>>, server: SimServer) -> Self {
        Harness {
            parts: consumer.run(),
            server,
            conns: Vec::new(),
            refuse: 0,
        }
    }

    /// Carries out every action and feeds every reply until nothing moves:
    /// `Some` once the consumer stopped.
    fn settle(&mut self) -> Option<Result<(), Error>> {
        let driver = &mut self.parts.driver;
        loop {
            while let Some(action) = driver.next_action() {
                match action {
                    Action::Connect(to, _) if self.refuse > 0 => {
                        self.refuse -= 1;
                        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
                        driver.connect_failed(to, refused);
                    }
                    Action::Connect(to, _) => {
                        if self.conns.len() <= to.index() {
                            self.conns.resize(to.index() + 1, None);
                        }
                        self.conns[to.index()] = Some(self.server.connect(Instant::now()));
                        driver.connected(to);
                    }
                    Action::Write(to, bytes) => {
                        if let Some(&Some(conn)) = self.conns.get(to.index()) {
                            self.server.receive(conn, Instant::now(), &bytes);
                        }
                    }
                    Action::Disconnect(to) => {
                        if let Some(conn) = self.conns.get_mut(to.index()).and_then(Option::take) {
                            self.server.disconnect(conn);
                        }
                    }
                    Action::Deliver(batch) => {
                        let handler = &self.parts.handler.0;
                        let id = batch.id;
                        let result = catch_unwind(AssertUnwindSafe(|| handler(batch)));
                        driver.completed(id, result);
                    }
                    Action::Handle(job) => panic!("a batch handler was given a message: {job:?}"),
                    Action::Stopped(result) => return Some(result),
                }
            }
            if self.parts.stop.swap(false, Ordering::SeqCst) {
                driver.shutdown();
                continue;
            }
            let ready = self.conns.iter().enumerate().find_map(|(i, conn)| {
                let to = StreamConn {
                    stream: i / Conn::COUNT,
                    conn: [Conn::Control, Conn::Read, Conn::Discovery][i % Conn::COUNT],
                };
                Some((to, (*conn)?)).filter(|&(_, c)| self.server.has_output(c))
            });
            match ready {
                Some((to, conn)) => {
                    let bytes = self.server.take_output(conn);
                    assert!(driver.received(to, Ok::<_, io::Error>(&bytes)));
                }
                None => return None,
            }
        }
    }

    /// Lets the deadline pass (sleeping for it), then settles.
    fn wait_deadline(&mut self) -> Option<Result<(), Error>> {
        let at = self.parts.driver.deadline().expect("a deadline");
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        self.parts.driver.timeout();
        self.settle()
    }
}

fn server_with(entries: usize) -> SimServer {
    let mut server = SimServer::new(SimOptions::default(), Instant::now());
    for i in 0..entries {
        server.xadd(Instant::now(), b"s", &[(b"n", i.to_string().as_bytes())]);
    }
    server
}

/// Fast timers: the tests sleep through some deadlines.
fn quick(c: ConsumerConfigBuilder) -> ConsumerConfigBuilder {
    c.reconnect_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .drain_timeout(Duration::from_millis(200))
        .no_heartbeat()
}

/// Collects what is logged while `f` runs.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink(Arc::default());
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned();
    (out, text)
}

#[test]
fn delivers_acks_publishes_info_and_a_stop_returns_ok() {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let consumer = Consumer::builder("redis://127.0.0.1:1", "s", "g", "c")
        .configure(quick)
        .handler_fn(move |batch| {
            counter.fetch_add(batch.messages.len(), Ordering::SeqCst);
            Outcome::AckAll
        })
        .build()
        .unwrap();
    let handle = consumer.handle();
    assert_eq!(handle.info().stream, "s");
    assert!(
        handle.info().handler.contains("closure"),
        "{:?}",
        handle.info()
    );
    let mut h = Harness::new(consumer, server_with(3));
    assert!(h.settle().is_none());
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    let info = handle.info();
    assert!(info.connected);
    assert_eq!((info.stats.delivered, info.stats.acked), (3, 3));
    assert_eq!(h.server.pending(b"s", b"g"), []);

    handle.stop();
    let mut stopped = h.settle();
    while stopped.is_none() {
        // The drain waits for the blocked read or the drain timeout.
        stopped = h.wait_deadline();
    }
    assert_eq!(stopped, Some(Ok(())));
}

/// `builder_sharded` reads every shard key in the group: each shard's
/// entries are delivered from its own key and acked there.
#[test]
fn a_sharded_stream_is_read_from_every_shard() {
    let sharded = ShardedStream::new("orders", 3).unwrap();
    let mut server = SimServer::new(SimOptions::default(), Instant::now());
    for (i, key) in sharded.keys().iter().enumerate() {
        for n in 0..=i {
            server.xadd(Instant::now(), key, &[(b"n", n.to_string().as_bytes())]);
        }
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let consumer = Consumer::builder_sharded("redis://127.0.0.1:1", &sharded, "g", "c")
        .configure(quick)
        .handler_fn(move |batch| {
            let mut seen = record.lock().unwrap();
            seen.extend(batch.messages.iter().map(|_| batch.stream.clone()));
            Outcome::AckAll
        })
        .build()
        .unwrap();
    let handle = consumer.handle();
    assert_eq!(handle.info().stream, "{orders:0},{orders:1},{orders:2}");
    let mut h = Harness::new(consumer, server);
    assert!(h.settle().is_none());
    let mut got = seen.lock().unwrap().clone();
    got.sort();
    let want: Vec<Bytes> = sharded
        .keys()
        .iter()
        .enumerate()
        .flat_map(|(i, key)| std::iter::repeat(key.clone()).take(i + 1))
        .collect();
    assert_eq!(got, want);
    for key in sharded.keys() {
        assert_eq!(h.server.pending(key, b"g"), []);
    }
    let info = handle.info();
    assert_eq!((info.stats.delivered, info.stats.acked), (6, 6));
}

#[test]
fn a_stop_asked_before_running_is_kept() {
    let consumer = Consumer::builder("redis://127.0.0.1:1", "s", "g", "c")
        .configure(quick)
        .handler_fn(|_| Outcome::AckAll)
        .build()
        .unwrap();
    consumer.handle().stop();
    let mut h = Harness::new(consumer, server_with(0));
    let mut stopped = h.settle();
    while stopped.is_none() {
        stopped = h.wait_deadline();
    }
    assert_eq!(stopped, Some(Ok(())));
}

#[test]
fn a_permanent_error_stops_with_its_cause() {
    let consumer = Consumer::builder("redis://127.0.0.1:1", "s", "g", "c")
        .configure(|c| quick(c).auto_create_group(false))
        .handler_fn(|_| Outcome::AckAll)
        .build()
        .unwrap();
    let mut h = Harness::new(consumer, server_with(1));
    match h.settle() {
        Some(Err(Error::GroupMissing { group, .. })) => assert_eq!(&group[..], b"g"),
        other => panic!("expected GroupMissing, got {other:?}"),
    }
}

#[test]
fn dead_letters_go_to_the_hook() {
    let dead = Arc::new(Mutex::new(Vec::new()));
    let hook = dead.clone();
    let consumer = Consumer::builder("redis://127.0.0.1:1", "s", "g", "c")
        .configure(|c| quick(c).dead_letter(DeadLetter::Drop))
        .on_dead_letter(move |d| hook.lock().unwrap().push(d.clone()))
        .handler_fn(|batch| {
            let each = batch.messages.iter();
            Outcome::Each(
                each.map(|m| (m.id, Disposition::DeadLetter("unreadable".into())))
                    .collect(),
            )
        })
        .build()
        .unwrap();
    let handle = consumer.handle();
    let mut h = Harness::new(consumer, server_with(2));
    assert!(h.settle().is_none());
    let dead = dead.lock().unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().all(|d| d.reason == "unreadable"));
    assert!(dead.iter().all(|d| d.action == DeadLetterAction::Dropped));
    assert_eq!(handle.info().stats.dead_lettered, 2);
}

#[test]
fn dead_letters_without_a_hook_are_logged() {
    let consumer = Consumer::builder("redis://127.0.0.1:1", "s", "g", "c")
        .configure(|c| quick(c).dead_letter(DeadLetter::Drop))
        .handler_fn(|batch| {
            let id = batch.messages[0].id;
            Outcome::Each(vec![(id, Disposition::DeadLetter("unreadable".into()))])
        })
        .build()
        .unwrap();
    let mut h = Harness::new(consumer, server_with(1));
    let (stopped, log) = logged(|| h.settle());
    assert!(stopped.is_none());
    assert!(log.contains("xgroup entry dead-lettered"), "{log}");
    assert!(log.contains("reason=unreadable"), "{log}");
    assert!(log.contains("consumer=c"), "{log}");
}

#[test]
fn a_handler_panic_is_a_counted_failure_and_the_consumer_goes_on() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let consumer = Consumer::builder("redis://127.0.0.1:1", "s", "g", "c")
        .configure(|c| quick(c).count(1))
        .handler_fn(move |_| {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("boom");
            }
            Outcome::AckAll
        })
        .build()
        .unwrap();
    let handle = consumer.handle();
    let mut h = Harness::new(consumer, server_with(2));
    let (stopped, log) = logged(|| h.settle());
    assert!(stopped.is_none());
    let stats = handle.info().stats;
    assert_eq!(stats.handler_failures, 1);
    // The second entry was handled after the panic; the first stays pending.
    assert_eq!((stats.delivered, stats.acked), (2, 1));
    assert_eq!(h.server.pending(b"s", b"g").len(), 1);
    assert!(log.contains("HandlerFailed"), "{log}");
    assert!(log.contains("handler panicked: boom"), "{log}");
    assert!(log.contains("stream=s") && log.contains("group=g"), "{log}");
}

#[test]
fn a_failed_connection_is_a_warning_and_is_retried() {
    let consumer = Consumer::builder("redis://127.0.0.1:1", "s", "g", "c")
        .configure(quick)
        .handler_fn(|_| Outcome::AckAll)
        .build()
        .unwrap();
    let handle = consumer.handle();
    let mut h = Harness::new(consumer, server_with(1));
    h.refuse = 2;
    // (Read from info(), not the log: a test binary's threads share
    // tracing's callsite cache, which makes captured logs flaky.)
    assert!(h.settle().is_none());
    let refused = handle.info().last_error.expect("the warning's cause");
    assert!(refused.contains("refused"), "{refused}");
    assert!(!handle.info().connected);
    while h.refuse > 0 || h.conns.first().copied().flatten().is_none() {
        assert!(h.wait_deadline().is_none());
    }
    let info = handle.info();
    assert!(info.connected);
    assert_eq!((info.stats.errors, info.stats.acked), (2, 1));
}

#[test]
fn a_bad_url_fails_at_build() {
    let built = Consumer::builder("http://127.0.0.1", "s", "g", "c")
        .handler_fn(|_| Outcome::AckAll)
        .build();
    assert!(matches!(built, Err(Error::Config(_))), "{built:?}");
    let built = Consumer::builder("redis://127.0.0.1", "s", "g", "c")
        .configure(|c| c.count(0))
        .handler_fn(|_| Outcome::AckAll)
        .build();
    assert!(
        matches!(&built, Err(Error::Config(e)) if e.option == "count"),
        "{built:?}"
    );
}

#[test]
fn the_handle_goes_to_other_threads_and_signal_handlers() {
    fn shareable<T: Clone + Send + Sync + 'static>(_: &T) {}
    let consumer = Consumer::builder("redis://127.0.0.1:1", "s", "g", "c")
        .handler_fn(|_| Outcome::AckAll)
        .build()
        .unwrap();
    shareable(&consumer.handle());
    std::thread::spawn(move || drop(consumer)).join().unwrap();
}

#[test]
fn info_shows_the_gauges_and_the_last_error() {
    let consumer = Consumer::builder("redis://127.0.0.1:1", "s", "g", "c")
        .configure(|c| quick(c).max_in_flight_batches(2))
        .handler_fn(|_| Outcome::AckAll)
        .build()
        .unwrap();
    let handle = consumer.handle();
    let mut h = Harness::new(consumer, server_with(2));
    h.refuse = 1;
    assert!(h.settle().is_none());
    while h.conns.first().copied().flatten().is_none() {
        assert!(h.wait_deadline().is_none());
    }
    let info = handle.info();
    assert_eq!((info.in_flight_batches, info.held_entries), (0, 0));
    let last = info.last_error.expect("the refused connection");
    assert!(last.contains("refused"), "{last}");
}

/// Counters, histograms and gauges through the `metrics` facade, labelled by
/// stream and group (and consumer only when asked for).
#[cfg(feature = "metrics")]
#[test]
fn metrics_count_deliveries_acks_and_time_handlers() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use metrics_util::MetricKind;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let consumer = Consumer::builder("redis://127.0.0.1:1", "s", "g", "c")
        .configure(quick)
        .handler_fn(|_| Outcome::AckAll)
        .build()
        .unwrap();
    // Entries whose ids carry the wall clock's time, as a server's do.
    let mut server = server_with(0);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let producer = server.connect(Instant::now());
    for i in 0..3 {
        let xadd = format!("XADD s {now_ms}-{i} n {i}\r\n");
        server.receive(producer, Instant::now(), xadd.as_bytes());
    }
    let mut h = Harness::new(consumer, server);
    metrics::with_local_recorder(&recorder, || assert!(h.settle().is_none()));
    let snapshot = snapshotter.snapshot().into_vec();
    let find = |kind: MetricKind, name: &str| {
        snapshot
            .iter()
            .find(|(key, ..)| key.kind() == kind && key.key().name() == name)
            .map(|(key, _, _, value)| (key.key().clone(), value))
            .unwrap_or_else(|| panic!("no {name} in {snapshot:#?}"))
    };
    let (key, delivered) = find(MetricKind::Counter, "xgroup_messages_delivered_total");
    assert_eq!(delivered, &DebugValue::Counter(3));
    let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
    assert_eq!(labels, [("stream", "s"), ("group", "g")]);
    assert_eq!(
        find(MetricKind::Counter, "xgroup_messages_acked_total").1,
        &DebugValue::Counter(3)
    );
    match find(MetricKind::Histogram, "xgroup_batch_size").1 {
        DebugValue::Histogram(sizes) => assert_eq!(sizes.iter().map(|s| s.0).sum::<f64>(), 3.0),
        other => panic!("{other:?}"),
    }
    match find(MetricKind::Histogram, "xgroup_message_age_seconds").1 {
        DebugValue::Histogram(ages) => {
            assert_eq!(ages.len(), 3);
            // The entries were added moments ago (ids from the real clock).
            assert!(ages.iter().all(|a| a.0 >= 0.0 && a.0 < 60.0), "{ages:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        find(MetricKind::Histogram, "xgroup_handler_duration_seconds").1,
        DebugValue::Histogram(d) if !d.is_empty()
    ));
    assert_eq!(
        find(MetricKind::Gauge, "xgroup_batches_in_flight").1,
        &DebugValue::Gauge(0.0.into())
    );
}

#[test]
fn a_failed_tls_handshake_stops_the_consumer_with_its_cause_and_a_refusal_is_retried() {
    let consumer = Consumer::builder("rediss://127.0.0.1:6380", "s", "g", "c")
        .handler_fn(|_| Outcome::AckAll)
        .build()
        .expect("TLS defaults build");
    let mut parts = consumer.run();
    let driver = &mut parts.driver;
    assert!(driver.tls().is_some(), "rediss:// speaks TLS");
    // A refused connection: retried after a backoff.
    let Some(Action::Connect(to, _)) = driver.next_action() else {
        panic!("expected a connect")
    };
    driver.connect_failed(to, io::Error::from(io::ErrorKind::ConnectionRefused));
    while let Some(action) = driver.next_action() {
        assert!(!matches!(action, Action::Stopped(_)), "{action:?}");
    }
    driver.timeout();
    std::thread::sleep(
        driver
            .deadline()
            .expect("a reconnect")
            .saturating_duration_since(Instant::now()),
    );
    driver.timeout();
    // An untrusted certificate: the consumer stops with it.
    let untrusted = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
    let mut stopped = None;
    while let Some(action) = driver.next_action() {
        match action {
            Action::Connect(to, _) if stopped.is_none() => {
                let e = io::Error::new(io::ErrorKind::InvalidData, untrusted.clone());
                driver.connect_failed(to, e);
            }
            Action::Stopped(result) => stopped = Some(result),
            _ => {}
        }
    }
    match stopped {
        Some(Err(Error::Tls { cause, server, .. })) => {
            assert_eq!(cause, TlsFailure::UnknownIssuer);
            assert_eq!(server, "127.0.0.1:6380");
        }
        other => panic!("expected a TLS stop, got {other:?}"),
    }
    let plain = Consumer::builder("redis://127.0.0.1:6379", "s", "g", "c")
        .handler_fn(|_| Outcome::AckAll)
        .build()
        .expect("plain");
    assert!(plain.run().driver.tls().is_none());
}
