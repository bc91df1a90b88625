//! Writes messages at a steady rate for the latency comparison: each has a
//! `sent_ns` field (nanoseconds since the Unix epoch, `CLOCK_REALTIME`, read
//! just before its `XADD` is sent) and a small payload. Every millisecond it
//! pipelines the messages that are due, so the rate stays steady.

use std::time::{Duration, Instant};

use clap::Parser;
use redis::RedisResult;
use xgroup_bench::{now_ns, SENT_FIELD};

#[derive(Parser, Debug)]
#[command(about = "steady-rate producer for the latency benchmark")]
struct Args {
    #[arg(long)]
    url: String,
    #[arg(long)]
    stream: String,
    /// Messages per second.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// How long to produce.
    #[arg(long, default_value_t = 10)]
    secs: u64,
}

fn main() -> RedisResult<()> {
    let args = Args::parse();
    let mut con = redis::Client::open(args.url.as_str())?.get_connection()?;
    let total = args.rate * args.secs;
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * args.rate as f64) as u64).min(total);
        if due > sent {
            let mut pipe = redis::pipe();
            for n in sent..due {
                pipe.xadd(
                    &args.stream,
                    "*",
                    &[
                        (SENT_FIELD, now_ns().to_string()),
                        ("item", format!("sku-{:06}", n % 1_000_000)),
                    ],
                )
                .ignore();
            }
            pipe.query::<()>(&mut con)?;
            sent = due;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!(
        "produced {sent} messages in {:.3} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
