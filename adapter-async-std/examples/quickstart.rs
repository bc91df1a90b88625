//! The main demo: two consumers share a group; one dies mid-way with work in
//! hand, and the other takes its pending entries over. Nothing is lost.
//!
//! Uses `REDIS_URL` if set (`rediss://` for TLS, with `--tls-ca-cert`,
//! `--tls-cert`, `--tls-key`), else starts a private `redis-server` from
//! `PATH` on a free port (removed at the end; with `--tls` it serves TLS,
//! with certificates made on the spot), else xgroup's in-memory model
//! server. The orders, the tally and every line
//! printed are shared by every adapter (`xgroup_testkit::examples::quickstart`).

use std::sync::Arc;
use std::time::Instant;

use async_std::task::{self, sleep};
use xgroup_async_std::{Connection, Consumer, Outcome};
use xgroup_testkit::examples::quickstart::{self as demo, Tally, GROUP, ORDERS, STREAM};
use xgroup_testkit::examples::{connection_options, with_tls};

const RUNTIME: &str = "async-std";

#[async_std::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = demo::Args::parse_for(RUNTIME);
    let demo::Target {
        private: _private,
        url,
        tls,
    } = demo::target(&args);

    // Produce the orders, pipelined.
    let mut conn = Connection::connect_with(&url, connection_options(tls.clone())).await?;
    conn.command(demo::RESET).await?;
    for chunk in demo::orders()?.chunks(500) {
        conn.pipeline(chunk).await?;
    }
    demo::produced();

    let tally = Arc::new(Tally::default());

    // bob works slowly and dies (his task is cancelled) with a batch in hand.
    let bob_tally = tally.clone();
    let bob = Consumer::builder(&url, STREAM, GROUP, "bob")
        .configure(|c| with_tls(demo::configure(c), tls.clone()))
        .handler_fn(move |batch| {
            let tally = bob_tally.clone();
            async move {
                sleep(demo::BOB_WORK).await;
                tally.record(&batch, "bob");
                Outcome::AckAll
            }
        })
        .build()?;
    let alice_tally = tally.clone();
    let alice = Consumer::builder(&url, STREAM, GROUP, "alice")
        .configure(|c| with_tls(demo::configure(c), tls.clone()))
        .handler_fn(move |batch| {
            let tally = alice_tally.clone();
            async move {
                demo::announce_takeover(&batch);
                sleep(demo::ALICE_WORK).await;
                tally.record(&batch, "alice");
                Outcome::AckAll
            }
        })
        .build()?;
    let alice_handle = alice.handle();
    let bob_handle = bob.handle();
    let bob_task = task::spawn(bob.run());
    let alice_task = task::spawn(alice.run());

    // Let them share the work, then kill bob without a graceful stop.
    loop {
        sleep(demo::SHARED_TICK).await;
        if tally.progress() >= ORDERS / 3 {
            break;
        }
    }
    bob_task.cancel().await;
    demo::bob_died(&bob_handle.info().stats);

    let deadline = Instant::now() + demo::BACKLOG_TIMEOUT;
    loop {
        sleep(demo::BACKLOG_TICK).await;
        if tally.progress() >= ORDERS
            && conn
                .command(demo::XPENDING)
                .await
                .is_ok_and(|r| demo::pending_count(&r) == 0)
        {
            break;
        }
        if Instant::now() > deadline {
            demo::timed_out();
            break;
        }
    }
    alice_handle.stop();
    alice_task.await?;
    tally.finish(&alice_handle.info().stats);
    Ok(())
}
