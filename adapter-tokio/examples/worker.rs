//! A consumer for real use and for black-box tests. For every message it
//! handles it prints `<stream> <id> <attempt>` to stdout, flushed before the
//! message's ack is sent; SIGINT/SIGTERM stop it gracefully (exit 0). Flags,
//! decisions and output are shared by every adapter's worker
//! (`xgroup_testkit::examples::worker`).

use std::sync::Arc;

use xgroup_testkit::examples::{init_tracing, worker};
use xgroup_tokio::Consumer;

#[tokio::main]
async fn main() {
    init_tracing();
    let args = worker::Args::parse_for("tokio");
    let w = Arc::new(worker::Worker::new(&args));
    let consumer = Consumer::builder(&args.url, args.stream(), &args.group, &args.consumer)
        .configure(|c| args.configure(c))
        .on_dead_letter(worker::dead_lettered)
        .handler_fn(move |batch| {
            let w = w.clone();
            async move { w.handle(&batch, tokio::time::sleep).await }
        })
        .build();
    let consumer = worker::built(consumer);
    let handle = consumer.handle();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("worker: cannot watch SIGTERM: {e}");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        handle.stop();
    });
    worker::ran(consumer.run().await);
}
