//! Drains a stream through a group and reports the rate. With `--fill`, first
//! writes M messages of three fields (about 30 bytes of payload), pipelined.
//! `--stream` may be repeated, and `--shards N` reads every shard of the
//! sharded stream `--stream` names (filled in turn, a pipeline per shard);
//! the group is created on each.
//! The last line is exactly `consumed=M secs=S rate=R msgs/s`. Flags, fill
//! and report are shared by every adapter (`xgroup_testkit::examples::throughput`).

use std::time::Instant;

use xgroup_async_std::{Connection, Consumer, Outcome};
use xgroup_testkit::examples::throughput::{self, Seen};

#[async_std::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = throughput::Args::parse_for("async-std");
    let mut conn = Connection::connect_with(&args.url, args.tls.connection()).await?;
    if args.fill {
        for round in args.fill_rounds() {
            conn.pipeline(&round?).await?;
        }
        args.filled();
    }
    for create in args.create_groups() {
        throughput::group_created(conn.command(create).await)?;
    }

    let seen = Seen::new(&args);
    let (all_seen, all_seen_rx) = async_channel::bounded(1);
    let consumer = Consumer::builder(&args.url, args.stream(), &args.group, &args.consumer)
        .configure(|c| args.configure(c))
        .handler_fn(move |batch| {
            if seen.add(batch.messages.len()) {
                let _ = all_seen.try_send(());
            }
            async { Outcome::AckAll }
        })
        .build()?;
    let handle = consumer.handle();
    let start = Instant::now();
    let run = async_std::task::spawn(consumer.run());
    // Stop once every message was handed out; the graceful stop flushes the acks.
    let stopper = handle.clone();
    async_std::task::spawn(async move {
        if all_seen_rx.recv().await.is_ok() {
            stopper.stop();
        }
    });
    run.await?;
    throughput::report(start, handle.info().stats.acked);
    Ok(())
}
