//! A worker in a plain `main`, no async anywhere: a per-message handler on
//! handler threads, retries and a dead-letter stream, and a graceful stop
//! on Ctrl-C or SIGTERM (in-flight payments finish and are acknowledged,
//! then `run` returns).
//!
//! ```sh
//! cargo run -p xgroup-blocking --example blocking_worker    # Ctrl-C to stop
//! ```
//!
//! It produces its own sample payments (some malformed, some whose charge
//! fails for a while), says when all of them are settled, keeps waiting for
//! more until stopped, then prints a summary with the dead letters. Uses
//! `--url` or `REDIS_URL` if given (it deletes the streams `payments` and
//! `payments:dead` first), else a private `redis-server` from `PATH` (in a
//! process group of its own, so Ctrl-C reaches only the worker, which
//! removes the server after its graceful stop), else xgroup's in-memory
//! model server. The tokio version, which stops by itself once everything
//! is settled, is `cargo run -p xgroup-tokio --example per_message`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use xgroup_blocking::{Connection, Consumer, DeadLetter, Failure, Message};
use xgroup_testkit::examples::payments::{
    self, GatewayError, GROUP, MAX_DELIVERIES, PAYMENTS, STREAM,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = payments::Args::parse_for("blocking worker with retries and dead letters");
    let (_private, url) = args.server.server_kept_through_ctrl_c();

    let mut conn = Connection::connect_with(&url, args.server.tls.connection())?;
    conn.command(payments::RESET)?;
    conn.pipeline(&payments::sample()?)?;
    payments::produced();

    let charged = Arc::new(AtomicU64::new(0)); // for the summary
    let consumer = Consumer::builder(&url, STREAM, GROUP, "blocking-1")
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
        .concurrency(4) // four handler threads
        .handler_each({
            let charged = charged.clone();
            move |m| {
                charge(&m)?;
                charged.fetch_add(1, Ordering::Relaxed);
                Ok(()) // acknowledged
            }
        })
        .build()?;
    let handle = consumer.handle();

    // Ctrl-C or SIGTERM: stop reading, let the handlers finish, flush the
    // acknowledgements; `run` then returns.
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let stopper = handle.clone();
    thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let name = if signal == SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            println!("{name}: stopping gracefully");
            stopper.stop();
        }
    });

    // Say once when the sample is worked off (the worker keeps waiting for
    // new payments).
    let watched = handle.clone();
    let settled = charged.clone();
    thread::spawn(move || {
        while !payments::settled(settled.load(Ordering::Relaxed), &watched.info().stats) {
            thread::sleep(Duration::from_millis(50));
        }
        println!("all {PAYMENTS} payments settled; waiting for more (Ctrl-C to stop)");
    });

    consumer.run()?; // blocks until stopped
    println!("stopped gracefully");

    let pending = conn.command(payments::XPENDING)?;
    let dead_letters = conn.command(payments::DEAD_LETTER_RANGE)?;
    // Stopped before the end, what is left stays pending for the next
    // worker of the group: a graceful stop all the same (exit status 0).
    let charged = charged.load(Ordering::Relaxed);
    payments::report(charged, &handle.info().stats, &pending, &dead_letters);
    Ok(())
}

/// One payment, on a handler thread: `Ok(())` acknowledges it; a `Failure`
/// says what else to do.
fn charge(m: &Message) -> Result<(), Failure> {
    let label = payments::label(m);
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

    thread::sleep(Duration::from_millis(5)); // the call's latency
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
