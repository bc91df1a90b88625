//! The main demo: two consumers share a group; one dies mid-way with work in
//! hand, and the other takes its pending entries over. Nothing is lost.
//!
//! Uses `REDIS_URL` if set, else starts a private `redis-server` from `PATH`
//! on a free port (removed at the end).

use std::collections::HashSet;
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xgroup_blocking::{Connection, Consumer, Outcome, Source, StreamId};
use xgroup_testkit::FaultProxy;

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let mut conn = Connection::connect(&url)?;
    conn.command(["DEL", STREAM])?;
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
        conn.pipeline(chunk)?;
    }
    println!("produced {ORDERS} orders into stream {STREAM:?}");

    let tally = Arc::new(Mutex::new(Tally::default()));
    let configure = |c: xgroup_blocking::ConsumerConfigBuilder| {
        c.count(50)
            .claim_interval(Duration::from_millis(500))
            .claim_min_idle(Duration::from_millis(1500))
    };

    // bob works slowly and dies with a batch in hand. A blocking consumer
    // cannot be aborted, so bob talks to the server through a proxy: killing
    // him is cutting his network for good. His thread stays behind, blocked
    // in his slow handler or in reconnect backoff against the refusing proxy,
    // until the demo exits; that is fine for the demo. A batch he finishes
    // after his "death" is not counted: a dead process finishes nothing.
    let (addr, options) = xgroup_core::parse_url(&url)?;
    let upstream = addr
        .to_socket_string()
        .to_socket_addrs()?
        .next()
        .ok_or("cannot resolve the server's address")?;
    let bobs_network = FaultProxy::start(upstream);
    let bob_alive = Arc::new(AtomicBool::new(true));
    let bob_tally = tally.clone();
    let alive = bob_alive.clone();
    let bob = Consumer::builder_for("127.0.0.1", bobs_network.port(), STREAM, GROUP, "bob")
        .configure(|c| configure(c).connect_options(options))
        .handler_fn(move |batch| {
            std::thread::sleep(Duration::from_millis(20));
            if alive.load(Ordering::SeqCst) {
                record(&bob_tally, &batch, "bob");
            }
            Outcome::AckAll
        })
        .build()?;
    let alice_tally = tally.clone();
    let alice = Consumer::builder(&url, STREAM, GROUP, "alice")
        .configure(configure)
        .handler_fn(move |batch| {
            if batch.source == Source::Claimed {
                println!(
                    "alice took over {} pending entries left by a dead consumer (attempt {})",
                    batch.messages.len(),
                    batch.messages[0].attempt
                );
            }
            std::thread::sleep(Duration::from_millis(5));
            record(&alice_tally, &batch, "alice");
            Outcome::AckAll
        })
        .build()?;
    let alice_handle = alice.handle();
    let bob_handle = bob.handle();
    std::thread::spawn(move || bob.run());
    let alice_thread = std::thread::spawn(move || alice.run());

    // Let them share the work, then kill bob without a graceful stop.
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let done = tally.lock().map(|t| t.processed.len()).unwrap_or(0);
        println!("progress: {done}/{ORDERS} processed");
        if done >= ORDERS / 3 {
            break;
        }
    }
    bobs_network.set_refusing(true);
    bob_alive.store(false, Ordering::SeqCst);
    bobs_network.cut_all();
    let bob_info = bob_handle.info();
    println!(
        "bob died after handling {} messages; his unacknowledged batch stays pending",
        bob_info.stats.delivered
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let done = tally.lock().map(|t| t.processed.len()).unwrap_or(0);
        println!("progress: {done}/{ORDERS} processed");
        if done >= ORDERS && pending(&mut conn)? == 0 {
            break;
        }
        if Instant::now() > deadline {
            println!("timed out waiting for the backlog");
            break;
        }
    }
    alice_handle.stop();
    alice_thread
        .join()
        .map_err(|_| "alice's thread panicked")??;

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
) -> Result<xgroup_blocking::Command, xgroup_blocking::ConfigError> {
    xgroup_blocking::xadd(
        stream,
        fields.iter().map(|(f, v)| (*f, v.as_str())),
        &Default::default(),
    )
}

fn record(tally: &Mutex<Tally>, batch: &xgroup_blocking::Batch, who: &str) {
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

fn pending(conn: &mut Connection) -> Result<i64, xgroup_blocking::Error> {
    match conn.command(["XPENDING", STREAM, GROUP])? {
        xgroup_blocking::Value::Array(items) => match items.first() {
            Some(xgroup_blocking::Value::Int(n)) => Ok(*n),
            _ => Ok(-1),
        },
        _ => Ok(-1),
    }
}
