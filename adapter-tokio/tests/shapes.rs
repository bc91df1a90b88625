//! The per-message handler and the message stream against a real server,
//! on tokio's multi-thread runtime (two workers: handlers run as tasks of
//! their own).

use std::sync::mpsc;

use futures_lite::StreamExt;
use xgroup_testkit::scenarios::Running;
use xgroup_testkit::shapes::{Background, EachSpec, Shapes};
use xgroup_tokio::Consumer;

struct Tokio;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

impl Shapes for Tokio {
    fn start_each(spec: EachSpec) -> Box<dyn Running> {
        let handler = spec.clone();
        let builder = Consumer::builder(&spec.url, &spec.stream, &spec.group, &spec.consumer)
            .handler_each(move |message| {
                let spec = handler.clone();
                async move { spec.handle(message) }
            });
        let consumer = spec.apply(builder).build().expect("valid options");
        let handle = consumer.handle();
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(runtime().block_on(consumer.run()));
        });
        Background::watch(handle, done)
    }

    fn start_stream(spec: EachSpec) -> Box<dyn Running> {
        let builder = Consumer::builder(&spec.url, &spec.stream, &spec.group, &spec.consumer);
        let consumer = spec.apply(builder).build().expect("valid options");
        let handle = consumer.handle();
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let mut messages = consumer.messages();
                let mut result = Ok(());
                while let Some(delivery) = messages.next().await {
                    match delivery {
                        Ok(delivery) => spec.decide_apart(delivery),
                        Err(e) => result = Err(e),
                    }
                }
                let _ = tx.send(result);
            })
        });
        Background::watch(handle, done)
    }

    fn start_batches(spec: EachSpec) -> Box<dyn Running> {
        let handler = spec.clone();
        let builder = Consumer::builder(&spec.url, &spec.stream, &spec.group, &spec.consumer)
            .configure(|c| (spec.configure)(c))
            .handler_fn(move |batch| {
                let spec = handler.clone();
                async move { spec.handle_batch(batch) }
            });
        let builder = match spec.concurrency {
            Some(n) => builder.concurrency(n),
            None => builder,
        };
        let consumer = builder.build().expect("valid options");
        let handle = consumer.handle();
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(runtime().block_on(consumer.run()));
        });
        Background::watch(handle, done)
    }
}

xgroup_testkit::shape_scenarios!(Tokio);

/// `messages()` spawns the consumer on the current runtime: outside of one,
/// the stream's only item says so.
#[test]
fn messages_outside_a_runtime_is_a_config_error() {
    let consumer = Consumer::builder("redis://127.0.0.1:1", "s", "g", "c")
        .build()
        .expect("valid options");
    let mut messages = consumer.messages();
    let first = futures_lite::future::block_on(messages.next());
    assert!(
        matches!(&first, Some(Err(xgroup_tokio::Error::Config(e))) if e.to_string().contains("tokio runtime")),
        "{first:?}"
    );
    assert!(futures_lite::future::block_on(messages.next()).is_none());
}

/// On a current-thread runtime per-message handlers run inside the
/// consumer's task (not spawned), and still decide each message.
#[test]
fn each_on_a_current_thread_runtime() {
    let server = xgroup_testkit::RedisServer::start();
    for n in 0..3 {
        server.cmd(&["XADD", "s", "*", "n", &n.to_string()]);
    }
    let consumer = Consumer::builder(&server.url(), "s", "g", "c")
        .configure(|c| c.block(std::time::Duration::from_millis(100)))
        .concurrency(3)
        .handler_each(|m| async move {
            tokio::task::yield_now().await;
            match m.fields.get("n") {
                Some(b"1") => Err(xgroup_tokio::Failure::dead_letter("one")),
                _ => Ok(()),
            }
        })
        .build()
        .expect("valid options");
    let handle = consumer.handle();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stats = rt.block_on(async move {
        let run = tokio::spawn(consumer.run());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while handle.info().stats.acked + handle.info().stats.dead_lettered < 3 {
            assert!(std::time::Instant::now() < deadline, "{:?}", handle.info());
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        handle.stop();
        let result = tokio::time::timeout(std::time::Duration::from_secs(10), run).await;
        assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
        handle.info().stats
    });
    assert_eq!((stats.acked, stats.dead_lettered), (2, 1));
}
