//! A consumer for real use and for black-box tests. For every message it
//! handles it prints `<stream> <id> <attempt>` to stdout, flushed before the
//! message's ack is sent; SIGINT/SIGTERM stop it gracefully (exit 0).

use std::io::Write;
use std::time::Duration;

use async_signal::{Signal, Signals};
use clap::Parser;
use futures_lite::StreamExt;
use xgroup_async_std::{Consumer, Outcome};

#[derive(Parser, Debug)]
#[command(about = "xgroup worker (async-std)")]
struct Args {
    #[arg(long)]
    url: String,
    #[arg(long)]
    stream: String,
    #[arg(long)]
    group: String,
    #[arg(long)]
    consumer: String,
    #[arg(long, default_value_t = 10)]
    count: u64,
    #[arg(long, default_value_t = 5000)]
    block_ms: u64,
    #[arg(long, default_value_t = 30_000)]
    claim_interval_ms: u64,
    #[arg(long, default_value_t = 60_000)]
    claim_min_idle_ms: u64,
    /// Work time per message.
    #[arg(long, default_value_t = 0)]
    sleep_ms: u64,
}

#[async_std::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let sleep = Duration::from_millis(args.sleep_ms);
    let consumer = Consumer::builder(&args.url, &args.stream, &args.group, &args.consumer)
        .configure(|c| {
            c.count(args.count)
                .block(Duration::from_millis(args.block_ms))
                .claim_interval(Duration::from_millis(args.claim_interval_ms))
                .claim_min_idle(Duration::from_millis(args.claim_min_idle_ms))
        })
        .handler_fn(move |batch| async move {
            let stream = String::from_utf8_lossy(&batch.stream).into_owned();
            for m in &batch.messages {
                if !sleep.is_zero() {
                    async_std::task::sleep(sleep).await;
                }
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{stream} {} {}", m.id, m.attempt);
                let _ = out.flush();
            }
            Outcome::AckAll
        })
        .build();
    let consumer = match consumer {
        Ok(c) => c,
        Err(e) => {
            eprintln!("worker: {e}");
            std::process::exit(2);
        }
    };
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
    match consumer.run().await {
        Ok(()) => {}
        Err(e) => {
            eprintln!("worker: {e}");
            std::process::exit(1);
        }
    }
}
