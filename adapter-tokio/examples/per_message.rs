//! A per-message worker with retries and a dead-letter stream: each payment
//! is parsed, charged and acknowledged; a malformed one goes to the dead
//! letters at once, with the reason; a failed charge is retried (after the
//! backoff, or when the provider says to come back); one that keeps failing
//! is dead-lettered after `MAX_DELIVERIES` deliveries.
//!
//! ```sh
//! cargo run -p xgroup-tokio --example per_message
//! ```
//!
//! It produces its own sample payments (some malformed, some whose charge
//! fails for a while), runs until every one is acknowledged or
//! dead-lettered, and prints a summary with the dead letters. Uses `--url`
//! or `REDIS_URL` if given (it deletes the streams `payments` and
//! `payments:dead` first), else a private `redis-server` from `PATH`, else
//! xgroup's in-memory model server. The sample input, the stand-in payment
//! provider and the summary are shared with the blocking version
//! (`xgroup_testkit::examples::payments`); the handler is all here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xgroup_testkit::examples::payments::{self, GatewayError, GROUP, MAX_DELIVERIES, STREAM};
use xgroup_tokio::{Connection, Consumer, DeadLetter, Failure, Message};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args =
        payments::Args::parse_for("per-message worker with retries and dead letters (tokio)");
    let (_private, url) = args.server.server();

    let mut conn = Connection::connect_with(&url, args.server.tls.connection()).await?;
    conn.command(payments::RESET).await?;
    conn.pipeline(&payments::sample()?).await?;
    payments::produced();

    let charged = Arc::new(AtomicU64::new(0)); // for the summary
    let consumer = Consumer::builder(&url, STREAM, GROUP, "per-message-1")
        .configure(|c| {
            args.server
                .tls
                .configure(c)
                // Retry after 100 ms, 200 ms, 400 ms, ... (at most 2 s);
                // dead-letter on the 4th failed delivery.
                .retry_backoff(Duration::from_millis(100), Duration::from_secs(2))
                .max_deliveries(
                    MAX_DELIVERIES,
                    DeadLetter::Stream(payments::DEAD_LETTERS.into()),
                )
        })
        .concurrency(4) // four payments charged at once
        .handler_each({
            let charged = charged.clone();
            move |m| {
                let charged = charged.clone();
                async move {
                    charge(m).await?;
                    charged.fetch_add(1, Ordering::Relaxed);
                    Ok(()) // acknowledged
                }
            }
        })
        .build()?;
    let handle = consumer.handle();
    let run = tokio::spawn(consumer.run());

    // Wait until every payment is acknowledged or dead-lettered.
    let deadline = Instant::now() + payments::SETTLE_TIMEOUT;
    while !payments::settled(charged.load(Ordering::Relaxed), &handle.info().stats) {
        if Instant::now() > deadline {
            payments::timed_out();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.stop();
    run.await??;

    let pending = conn.command(payments::XPENDING).await?;
    let dead_letters = conn.command(payments::DEAD_LETTER_RANGE).await?;
    let charged = charged.load(Ordering::Relaxed);
    if !payments::report(charged, &handle.info().stats, &pending, &dead_letters) {
        std::process::exit(1);
    }
    Ok(())
}

/// One payment: `Ok(())` acknowledges it; a `Failure` says what else to do.
async fn charge(m: Message) -> Result<(), Failure> {
    let label = payments::label(&m);
    // Malformed input will not get better: dead-letter it, with the reason.
    let Some(account) = m.fields.get("account") else {
        println!("{label}: no account, dead-lettered");
        return Err(Failure::dead_letter("no account field"));
    };
    let raw = m.fields.get("amount_cents").unwrap_or_default();
    let Some(cents) = std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        let amount = String::from_utf8_lossy(raw);
        println!("{label}: amount {amount:?} is no number of cents, dead-lettered");
        return Err(Failure::dead_letter(format!(
            "amount_cents {amount:?} is not a whole number"
        )));
    };

    tokio::time::sleep(Duration::from_millis(5)).await; // the call's latency
    match payments::charge(account, cents, m.attempt) {
        Ok(()) => Ok(()),
        // The provider says when to come back: retry then, not before.
        Err(GatewayError::RateLimited { retry_after }) => {
            println!("{label}: rate-limited, retry in {retry_after:?}");
            Err(Failure::retry_after(retry_after))
        }
        // Any other error (`?` would do the same): retry after the backoff;
        // past MAX_DELIVERIES deliveries the consumer dead-letters it.
        Err(e) => {
            if m.attempt < MAX_DELIVERIES {
                println!("{label}: {e}, retry after the backoff");
            } else {
                println!("{label}: {e}, no deliveries left: dead-lettered");
            }
            Err(Failure::from(e))
        }
    }
}
