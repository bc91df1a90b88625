//! The latency consumer on xgroup's tokio adapter: for every message its
//! handler computes the time from the `sent_ns` field (written by
//! `latency_producer`) to the handler's call; prints p50/p99/max once M were
//! seen (or at the timeout).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use tokio::sync::Notify;
use xgroup_bench::{now_ns, Latencies, SENT_FIELD};
use xgroup_tokio::{Consumer, Outcome};

#[derive(Parser, Debug)]
#[command(about = "xgroup (tokio) latency consumer")]
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
    /// Batches in flight.
    #[arg(long, default_value_t = 2)]
    in_flight: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// The tokio runtime: `multi-thread` (what `#[tokio::main]` gives) or
    /// `current-thread`.
    #[arg(long, value_enum, default_value_t = Runtime::MultiThread)]
    runtime: Runtime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Runtime {
    MultiThread,
    CurrentThread,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let runtime = match args.runtime {
        Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread(),
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let lat = Arc::new(Mutex::new(Latencies::with_capacity(args.messages as usize)));
    let all_seen = Arc::new(Notify::new());
    let target = args.messages as usize;
    let consumer = Consumer::builder(&args.url, &args.stream, &args.group, &args.consumer)
        .configure(|c| {
            c.count(args.count)
                .block(Duration::from_millis(1000))
                .max_in_flight_batches(args.in_flight)
        })
        .handler_fn({
            let lat = lat.clone();
            let all_seen = all_seen.clone();
            move |batch| {
                let now = now_ns();
                let mut l = lat.lock().unwrap_or_else(|p| p.into_inner());
                for m in &batch.messages {
                    let sent = m
                        .fields
                        .get(SENT_FIELD)
                        .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
                    if let Some(sent) = sent {
                        l.record(sent, now);
                    }
                }
                if l.len() >= target {
                    all_seen.notify_one();
                }
                async { Outcome::AckAll }
            }
        })
        .build()?;
    let handle = consumer.handle();
    let mut run = tokio::spawn(consumer.run());
    tokio::select! {
        _ = all_seen.notified() => {}
        _ = tokio::time::sleep(Duration::from_secs(args.timeout_secs)) => {}
        result = &mut run => result??,
    }
    handle.stop();
    if !run.is_finished() {
        run.await??;
    }
    let summary = lat
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .summary(match args.runtime {
            Runtime::MultiThread => "xgroup-tokio",
            Runtime::CurrentThread => "xgroup-tokio-current-thread",
        });
    println!("{summary}");
    Ok(())
}
