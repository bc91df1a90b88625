//! Drains a stream through a group and reports the rate. With `--fill`, first
//! writes M messages of three fields (about 30 bytes of payload), pipelined.
//! `--stream` may be repeated, and `--shards N` reads every shard of the
//! sharded stream `--stream` names (filled in turn, a pipeline per shard);
//! the group is created on each.
//! The last line is exactly `consumed=M secs=S rate=R msgs/s`. Flags, fill
//! and report are shared by every adapter (`xgroup_testkit::examples::throughput`).

use std::sync::mpsc;
use std::time::Instant;

use xgroup_blocking::{Connection, Consumer, Outcome};
use xgroup_testkit::examples::throughput::{self, Seen};

/// What the main thread waits for.
enum Done {
    AllSeen,
    Ran(Result<(), xgroup_blocking::Error>),
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = throughput::Args::parse_for("blocking");
    let mut conn = Connection::connect_with(&args.url, args.tls.connection())?;
    if args.fill {
        for round in args.fill_rounds() {
            conn.pipeline(&round?)?;
        }
        args.filled();
    }
    for create in args.create_groups() {
        throughput::group_created(conn.command(create))?;
    }

    let seen = Seen::new(&args);
    let (done_tx, done) = mpsc::channel();
    let consumer = Consumer::builder(&args.url, args.stream(), &args.group, &args.consumer)
        .configure(|c| args.configure(c))
        .handler_fn({
            let done_tx = done_tx.clone();
            move |batch| {
                if seen.add(batch.messages.len()) {
                    let _ = done_tx.send(Done::AllSeen);
                }
                Outcome::AckAll
            }
        })
        .build()?;
    let handle = consumer.handle();
    let start = Instant::now();
    let run = std::thread::spawn(move || {
        let _ = done_tx.send(Done::Ran(consumer.run()));
    });
    // Stop once every message was handed out; the graceful stop flushes the acks.
    let mut result = done.recv()?;
    if let Done::AllSeen = result {
        handle.stop();
        while let Done::AllSeen = result {
            result = done.recv()?;
        }
    }
    if let Done::Ran(ran) = result {
        ran?;
    }
    let _ = run.join();
    throughput::report(start, handle.info().stats.acked);
    Ok(())
}
