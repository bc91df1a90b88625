//! Drains a stream through a group and reports the rate. With `--fill`, first
//! writes M messages of three fields (about 30 bytes of payload), pipelined.
//! The last line is exactly `consumed=M secs=S rate=R msgs/s`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use clap::Parser;
use xgroup_blocking::{Connection, Consumer, Outcome, ServerErrorKind};

#[derive(Parser, Debug)]
#[command(about = "xgroup throughput (blocking)")]
struct Args {
    #[arg(long)]
    url: String,
    #[arg(long)]
    stream: String,
    #[arg(long)]
    group: String,
    #[arg(long)]
    consumer: String,
    #[arg(long, default_value_t = 1000)]
    count: u64,
    #[arg(long)]
    messages: u64,
    #[arg(long)]
    fill: bool,
    /// Batches in flight (the next read runs while the handler works).
    #[arg(long, default_value_t = 2)]
    in_flight: usize,
}

/// What the main thread waits for.
enum Done {
    AllSeen,
    Ran(Result<(), xgroup_blocking::Error>),
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut conn = Connection::connect(&args.url)?;
    if args.fill {
        let mut cmds = Vec::with_capacity(10_000);
        let mut written = 0;
        while written < args.messages {
            cmds.clear();
            for n in written..(written + 10_000).min(args.messages) {
                let fields = [
                    ("user_id", format!("{:08}", n % 100_000_000)),
                    ("item", format!("sku-{:06}", n % 1_000_000)),
                    ("qty", format!("{}", 1 + n % 9)),
                ];
                cmds.push(xgroup_blocking::xadd(
                    &args.stream,
                    fields.iter().map(|(f, v)| (*f, v.as_str())),
                    &Default::default(),
                )?);
            }
            written += cmds.len() as u64;
            conn.pipeline(&cmds)?;
        }
        eprintln!("filled {written} messages");
    }
    match conn.command([
        "XGROUP",
        "CREATE",
        &args.stream,
        &args.group,
        "0",
        "MKSTREAM",
    ]) {
        Ok(_) => {}
        Err(xgroup_blocking::Error::Server(e)) if e.kind == ServerErrorKind::BusyGroup => {}
        Err(e) => return Err(e.into()),
    }

    let seen = Arc::new(AtomicU64::new(0));
    let (done_tx, done) = mpsc::channel();
    let target = args.messages;
    let consumer = Consumer::builder(&args.url, &args.stream, &args.group, &args.consumer)
        .configure(|c| {
            c.count(args.count)
                .block(Duration::from_millis(1000))
                .max_in_flight_batches(args.in_flight)
        })
        .handler_fn({
            let (seen, done_tx) = (seen.clone(), done_tx.clone());
            move |batch| {
                let n = batch.messages.len() as u64;
                if seen.fetch_add(n, Ordering::Relaxed) + n >= target {
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
    let secs = start.elapsed().as_secs_f64();
    let acked = handle.info().stats.acked;
    println!(
        "consumed={acked} secs={secs:.3} rate={:.0} msgs/s",
        acked as f64 / secs
    );
    Ok(())
}
