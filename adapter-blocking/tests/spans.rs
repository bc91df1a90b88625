//! A handler runs inside its batch's span, on its handler thread (a test
//! binary of its own: the subscriber is process-wide).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use xgroup_blocking::{Consumer, Outcome};
use xgroup_testkit::RedisServer;

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

#[test]
fn a_handlers_events_carry_its_batchs_span() {
    let sink = Sink::default();
    let writer = sink.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    )
    .expect("the only subscriber of this test binary");
    let server = RedisServer::start();
    server.cmd(&["XADD", "s", "*", "n", "1"]);
    server.cmd(&["XADD", "s", "*", "n", "2"]);
    let consumer = Consumer::builder(&server.url(), "s", "g", "c1")
        .configure(|c| c.block(Duration::from_millis(100)).count(10))
        .handler_fn(|batch| {
            tracing::info!(n = batch.messages.len(), "handling the batch");
            Outcome::AckAll
        })
        .build()
        .expect("valid options");
    let handle = consumer.handle();
    let running = std::thread::spawn(move || consumer.run());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handle.info().stats.acked < 2 {
        assert!(std::time::Instant::now() < deadline, "{:?}", handle.info());
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.stop();
    running.join().unwrap().expect("a graceful stop");
    let log = String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned();
    let span = "xgroup.batch{stream=s group=g consumer=c1 batch=0 source=New size=2 \
                first_attempt=1 last_attempt=1}";
    assert!(
        log.lines()
            .any(|l| l.contains(span) && l.contains("handling the batch n=2")),
        "{log}"
    );
}
