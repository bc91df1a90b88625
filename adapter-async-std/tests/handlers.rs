//! Handlers run on threads of their own under async-std and smol.

use std::future::Future;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use xgroup_async_std::{Consumer, ConsumerHandle, Error, Outcome, StreamId};
use xgroup_testkit::RedisServer;

/// Spawns a consumer's `run` on the runtime; its result arrives on the
/// channel.
type Spawn = fn(Pin<Box<dyn Future<Output = ()> + Send>>);

fn consumer(
    spawn: Spawn,
    url: &str,
    name: &str,
    block_for: Duration,
    seen: Arc<Mutex<Vec<StreamId>>>,
) -> (ConsumerHandle, mpsc::Receiver<Result<(), Error>>) {
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
    let (tx, rx) = mpsc::channel();
    spawn(Box::pin(async move {
        let _ = tx.send(consumer.run().await);
    }));
    (handle, rx)
}

/// A handler that blocks its thread for 2 s stalls neither the consumer's
/// heartbeats (100 ms, dead after 200 ms) nor anything else: no other
/// consumer takes its entry for a dead consumer's and handles it again.
fn a_thread_blocking_handler_does_not_stall_heartbeats(spawn: Spawn) {
    let server = RedisServer::start();
    server.cmd(&["XADD", "s", "*", "n", "1"]);
    let (first, second) = (Arc::default(), Arc::default());
    let (h1, r1) = consumer(
        spawn,
        &server.url(),
        "c1",
        Duration::from_secs(2),
        Arc::clone(&first),
    );
    std::thread::sleep(Duration::from_millis(300));
    let (h2, r2) = consumer(
        spawn,
        &server.url(),
        "c2",
        Duration::ZERO,
        Arc::clone(&second),
    );
    std::thread::sleep(Duration::from_millis(2500));
    h1.stop();
    h2.stop();
    for result in [r1, r2] {
        let result = result.recv_timeout(Duration::from_secs(10));
        assert!(matches!(result, Ok(Ok(()))), "{result:?}");
    }
    assert_eq!(first.lock().unwrap().len(), 1, "c1 handled the entry");
    assert!(
        second.lock().unwrap().is_empty(),
        "c2 took c1 for dead and handled its entry again: {:?}",
        second.lock().unwrap()
    );
}

#[test]
fn on_async_std_a_thread_blocking_handler_does_not_stall_heartbeats() {
    a_thread_blocking_handler_does_not_stall_heartbeats(|run| {
        async_std::task::spawn(run);
    });
}

#[test]
fn on_smol_a_thread_blocking_handler_does_not_stall_heartbeats() {
    // Each consumer in `smol::block_on` on a thread of its own, as a smol
    // program's main does.
    a_thread_blocking_handler_does_not_stall_heartbeats(|run| {
        std::thread::spawn(move || smol::block_on(run));
    });
}
