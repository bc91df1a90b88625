//! A consumer for real use and for black-box tests. For every message it
//! handles it prints `<stream> <id> <attempt>` to stdout, flushed before the
//! message's ack is sent; SIGINT/SIGTERM stop it gracefully (exit 0). Flags,
//! decisions and output are shared by every adapter's worker
//! (`xgroup_testkit::examples::worker`).

use std::sync::Arc;

use async_signal::{Signal, Signals};
use futures_lite::StreamExt;
use xgroup_async_std::Consumer;
use xgroup_testkit::examples::{init_tracing, worker};

#[async_std::main]
async fn main() {
    init_tracing();
    let args = worker::Args::parse_for("async-std");
    let w = Arc::new(worker::Worker::new(&args));
    let consumer = Consumer::builder(&args.url, args.stream(), &args.group, &args.consumer)
        .configure(|c| args.configure(c))
        .on_dead_letter(worker::dead_lettered)
        .handler_fn(move |batch| {
            let w = w.clone();
            async move { w.handle(&batch, async_std::task::sleep).await }
        })
        .build();
    let consumer = worker::built(consumer);
    let handle = consumer.handle();
    let mut signals = match Signals::new([Signal::Int, Signal::Term]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("worker: cannot watch SIGINT/SIGTERM: {e}");
            std::process::exit(2);
        }
    };
    async_std::task::spawn(async move {
        signals.next().await;
        handle.stop();
    });
    worker::ran(consumer.run().await);
}
