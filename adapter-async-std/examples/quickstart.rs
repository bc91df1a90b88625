//! The main demo: two consumers share a group; one dies mid-way with work in
//! hand, and the other takes its pending entries over. Nothing is lost.
//!
//! Uses `REDIS_URL` if set, else starts a private `redis-server` from `PATH`
//! on a free port (removed at the end).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_std::task;

use xgroup_async_std::{Connection, Consumer, Outcome, Source, StreamId};

const ORDERS: usize = 3000;
const STREAM: &str = "orders";
const GROUP: &str = "processors";

#[derive(Default)]
struct Tally {
    processed: HashSet<StreamId>,
    deliveries: usize,
    redelivered: usize,
    taken_over: usize,
}

#[async_std::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let private;
    let url = match std::env::var("REDIS_URL") {
        Ok(url) => url,
        Err(_) => {
            private = xgroup_testkit::RedisServer::start();
            println!(
                "started a private redis-server ({}) at {}",
                private.version(),
                private.url()
            );
            private.url()
        }
    };

    // Produce the orders, pipelined.
    let mut conn = Connection::connect(&url).await?;
    conn.command(["DEL", STREAM]).await?;
    let mut batch = Vec::new();
    for n in 0..ORDERS {
        let fields = [
            ("order", n.to_string()),
            ("item", format!("widget-{}", n % 7)),
            ("qty", (1 + n % 5).to_string()),
        ];
        batch.push(xgroup_core_xadd(STREAM, &fields)?);
    }
    for chunk in batch.chunks(500) {
        conn.pipeline(chunk).await?;
    }
    println!("produced {ORDERS} orders into stream {STREAM:?}");

    let tally = Arc::new(Mutex::new(Tally::default()));
    let configure = |c: xgroup_async_std::ConsumerConfigBuilder| {
        c.count(50)
            .claim_interval(Duration::from_millis(500))
            .claim_min_idle(Duration::from_millis(1500))
    };

    // bob works slowly and dies (his task is cancelled) with a batch in hand.
    let bob_tally = tally.clone();
    let bob = Consumer::builder(&url, STREAM, GROUP, "bob")
        .configure(configure)
        .handler_fn(move |batch| {
            let tally = bob_tally.clone();
            async move {
                task::sleep(Duration::from_millis(20)).await;
                record(&tally, &batch, "bob");
                Outcome::AckAll
            }
        })
        .build()?;
    let alice_tally = tally.clone();
    let alice = Consumer::builder(&url, STREAM, GROUP, "alice")
        .configure(configure)
        .handler_fn(move |batch| {
            let tally = alice_tally.clone();
            async move {
                if batch.source == Source::Claimed {
                    println!(
                        "alice took over {} pending entries left by a dead consumer (attempt {})",
                        batch.messages.len(),
                        batch.messages[0].attempt
                    );
                }
                task::sleep(Duration::from_millis(5)).await;
                record(&tally, &batch, "alice");
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
        task::sleep(Duration::from_millis(100)).await;
        let done = tally.lock().map(|t| t.processed.len()).unwrap_or(0);
        println!("progress: {done}/{ORDERS} processed");
        if done >= ORDERS / 3 {
            break;
        }
    }
    bob_task.cancel().await;
    let bob_info = bob_handle.info();
    println!(
        "bob died after handling {} messages; his unacknowledged batch stays pending",
        bob_info.stats.delivered
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        task::sleep(Duration::from_millis(250)).await;
        let done = tally.lock().map(|t| t.processed.len()).unwrap_or(0);
        println!("progress: {done}/{ORDERS} processed");
        if done >= ORDERS && pending(&mut conn).await? == 0 {
            break;
        }
        if Instant::now() > deadline {
            println!("timed out waiting for the backlog");
            break;
        }
    }
    alice_handle.stop();
    alice_task.await?;

    let info = alice_handle.info();
    let t = tally.lock().map_err(|_| "tally poisoned")?;
    let lost = ORDERS - t.processed.len();
    println!(
        "summary: produced={ORDERS} processed={} deliveries={} redelivered={} taken_over={} lost={lost} (alice: delivered={} acked={} claimed={})",
        t.processed.len(),
        t.deliveries,
        t.redelivered,
        t.taken_over,
        info.stats.delivered,
        info.stats.acked,
        info.stats.claimed,
    );
    if lost != 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn xgroup_core_xadd(
    stream: &str,
    fields: &[(&str, String); 3],
) -> Result<xgroup_async_std::Command, xgroup_async_std::ConfigError> {
    xgroup_async_std::xadd(
        stream,
        fields.iter().map(|(f, v)| (*f, v.as_str())),
        &Default::default(),
    )
}

fn record(tally: &Mutex<Tally>, batch: &xgroup_async_std::Batch, who: &str) {
    let Ok(mut t) = tally.lock() else { return };
    for m in &batch.messages {
        t.deliveries += 1;
        if m.attempt > 1 {
            t.redelivered += 1;
        }
        if batch.source == Source::Claimed && who == "alice" {
            t.taken_over += 1;
        }
        t.processed.insert(m.id);
    }
}

async fn pending(conn: &mut Connection) -> Result<i64, xgroup_async_std::Error> {
    match conn.command(["XPENDING", STREAM, GROUP]).await? {
        xgroup_async_std::Value::Array(items) => match items.first() {
            Some(xgroup_async_std::Value::Int(n)) => Ok(*n),
            _ => Ok(-1),
        },
        _ => Ok(-1),
    }
}
