//! Handlers on tokio's multi-thread runtime run as tasks of their own.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use xgroup_testkit::RedisServer;
use xgroup_tokio::{Consumer, ConsumerHandle, Outcome, StreamId};

fn consumer(
    rt: &tokio::runtime::Runtime,
    url: &str,
    name: &str,
    block_for: Duration,
    seen: Arc<Mutex<Vec<StreamId>>>,
) -> (
    ConsumerHandle,
    tokio::task::JoinHandle<Result<(), xgroup_tokio::Error>>,
) {
    let consumer = Consumer::builder(url, "s", "g", name)
        .configure(|c| {
            c.block(Duration::from_millis(100))
                .claim_interval(Duration::from_millis(100))
                .claim_min_idle(Duration::from_secs(60))
                .heartbeat(Duration::from_millis(100), 2)
        })
        .handler_fn(move |batch| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .extend(batch.messages.iter().map(|m| m.id));
                // Blocks its thread, as careless handlers do.
                std::thread::sleep(block_for);
                Outcome::AckAll
            }
        })
        .build()
        .expect("valid options");
    let handle = consumer.handle();
    (handle, rt.spawn(consumer.run()))
}

/// A handler that blocks its thread for 2 s stalls neither the consumer's
/// heartbeats (100 ms, dead after 200 ms) nor anything else: no other
/// consumer takes its entry for a dead consumer's and handles it again.
/// The tests of this binary run one at a time: a span or event first hit
/// on another thread while a test's scoped subscriber is being registered
/// can have its interest cached without that subscriber (tracing's
/// callsite cache), and the captured log then misses it.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn a_thread_blocking_handler_does_not_stall_heartbeats() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let server = RedisServer::start();
    server.cmd(&["XADD", "s", "*", "n", "1"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (first, second) = (Arc::default(), Arc::default());
    let (h1, t1) = consumer(
        &rt,
        &server.url(),
        "c1",
        Duration::from_secs(2),
        Arc::clone(&first),
    );
    std::thread::sleep(Duration::from_millis(300));
    let (h2, t2) = consumer(
        &rt,
        &server.url(),
        "c2",
        Duration::ZERO,
        Arc::clone(&second),
    );
    std::thread::sleep(Duration::from_millis(2500));
    h1.stop();
    h2.stop();
    for task in [t1, t2] {
        let result =
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await });
        assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    }
    assert_eq!(first.lock().unwrap().len(), 1, "c1 handled the entry");
    assert!(
        second.lock().unwrap().is_empty(),
        "c2 took c1 for dead and handled its entry again: {:?}",
        second.lock().unwrap()
    );
}

/// On a current-thread runtime a handler runs inside the consumer's task: a
/// handler that blocks the thread is reported (nothing else of the consumer
/// runs meanwhile), naming the batch; the handler's events carry the batch's
/// span.
#[test]
fn on_a_current_thread_runtime_a_blocking_handler_is_reported() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let server = RedisServer::start();
    server.cmd(&["XADD", "s", "*", "n", "1"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let seen: Arc<Mutex<Vec<StreamId>>> = Arc::default();
    let consumer = Consumer::builder(&server.url(), "s", "g", "c1")
        .configure(|c| c.block(Duration::from_millis(100)))
        .handler_fn({
            let seen = Arc::clone(&seen);
            move |batch| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .extend(batch.messages.iter().map(|m| m.id));
                    tracing::info!("handling the batch");
                    std::thread::sleep(Duration::from_millis(300));
                    Outcome::AckAll
                }
            }
        })
        .build()
        .expect("valid options");
    let handle = consumer.handle();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        handle.stop();
    });
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, || rt.block_on(consumer.run()));
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    let log = String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned();
    assert!(log.contains("blocked the consumer's thread"), "{log}");
    assert!(log.contains("batch=0"), "{log}");
    // The handler's own events nest under the batch's span.
    let span = "xgroup.batch{stream=s group=g consumer=c1 batch=0 source=New size=1 \
                first_attempt=1 last_attempt=1}";
    assert!(
        log.lines()
            .any(|l| l.contains(span) && l.contains("handling the batch")),
        "{log}"
    );
}
