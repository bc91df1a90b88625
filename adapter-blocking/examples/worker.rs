//! A consumer for real use and for black-box tests. For every message it
//! handles it prints `<stream> <id> <attempt>` to stdout, flushed before the
//! message's ack is sent; SIGINT/SIGTERM stop it gracefully (exit 0).

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use xgroup_blocking::{Consumer, Outcome};

#[derive(Parser, Debug)]
#[command(about = "xgroup worker (blocking)")]
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

fn main() {
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
        .handler_fn(move |batch| {
            let stream = String::from_utf8_lossy(&batch.stream).into_owned();
            for m in &batch.messages {
                if !sleep.is_zero() {
                    std::thread::sleep(sleep);
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
    match Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                for _ in signals.forever() {
                    handle.stop();
                }
            });
        }
        Err(e) => eprintln!("worker: cannot watch SIGINT/SIGTERM: {e}"),
    }
    match consumer.run() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("worker: {e}");
            std::process::exit(1);
        }
    }
}
