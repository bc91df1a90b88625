//! The main demo: two consumers share a group; one dies mid-way with work in
//! hand, and the other takes its pending entries over. Nothing is lost.
//!
//! Uses `REDIS_URL` if set (`rediss://` for TLS, with `--tls-ca-cert`,
//! `--tls-cert`, `--tls-key`), else starts a private `redis-server` from
//! `PATH` on a free port (removed at the end; with `--tls` it serves TLS,
//! with certificates made on the spot), else xgroup's in-memory model
//! server. The orders, the tally and every line
//! printed are shared by every adapter (`xgroup_testkit::examples::quickstart`).

use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::Instant;

use xgroup_blocking::{Connection, Consumer, Outcome};
use xgroup_testkit::examples::quickstart::{self as demo, Tally, GROUP, ORDERS, STREAM};
use xgroup_testkit::examples::{connection_options, with_tls};
use xgroup_testkit::FaultProxy;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = demo::Args::parse_for("blocking");
    let demo::Target {
        private: _private,
        url,
        tls,
    } = demo::target(&args);

    // Produce the orders, pipelined.
    let mut conn = Connection::connect_with(&url, connection_options(tls.clone()))?;
    conn.command(demo::RESET)?;
    for chunk in demo::orders()?.chunks(500) {
        conn.pipeline(chunk)?;
    }
    demo::produced();

    let tally = Arc::new(Tally::default());

    // bob works slowly and dies with a batch in hand. A blocking consumer
    // cannot be aborted, so bob talks to the server through a proxy: killing
    // him is cutting his network for good. His thread stays behind, blocked
    // in his slow handler or in reconnect backoff against the refusing proxy,
    // until the demo exits; that is fine for the demo. A batch he finishes
    // after his "death" is not counted: a dead process finishes nothing.
    let (target, mut options) = xgroup_core::parse_target(&url)?;
    let addr = match target {
        xgroup_core::Target::Server(addr) => addr,
        // With sentinels, bob's proxy leads to the master they name now.
        xgroup_core::Target::Sentinel(s) => master_now(&s)?,
        xgroup_core::Target::Cluster(_) => {
            return Err("the demo runs on one server or through sentinels, not on a cluster".into())
        }
    };
    // Over TLS through the proxy, the certificate is still the server's:
    // verify it for the server's host, not the proxy's address.
    if let Some(url_tls) = options.tls.take() {
        let bobs = tls.clone().unwrap_or(url_tls);
        options.tls = Some(match bobs.name_to_verify() {
            Some(_) => bobs,
            None => bobs.server_name(addr.host.clone()),
        });
    }
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
        .configure(|c| demo::configure(c).connect_options(options))
        .handler_fn(move |batch| {
            sleep(demo::BOB_WORK);
            if alive.load(Ordering::SeqCst) {
                bob_tally.record(&batch, "bob");
            }
            Outcome::AckAll
        })
        .build()?;
    let alice_tally = tally.clone();
    let alice = Consumer::builder(&url, STREAM, GROUP, "alice")
        .configure(|c| with_tls(demo::configure(c), tls.clone()))
        .handler_fn(move |batch| {
            demo::announce_takeover(&batch);
            sleep(demo::ALICE_WORK);
            alice_tally.record(&batch, "alice");
            Outcome::AckAll
        })
        .build()?;
    let alice_handle = alice.handle();
    let bob_handle = bob.handle();
    std::thread::spawn(move || bob.run());
    let alice_thread = std::thread::spawn(move || alice.run());

    // Let them share the work, then kill bob without a graceful stop.
    loop {
        sleep(demo::SHARED_TICK);
        if tally.progress() >= ORDERS / 3 {
            break;
        }
    }
    bobs_network.set_refusing(true);
    bob_alive.store(false, Ordering::SeqCst);
    bobs_network.cut_all();
    demo::bob_died(&bob_handle.info().stats);

    let deadline = Instant::now() + demo::BACKLOG_TIMEOUT;
    loop {
        sleep(demo::BACKLOG_TICK);
        if tally.progress() >= ORDERS
            && conn
                .command(demo::XPENDING)
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
    alice_thread
        .join()
        .map_err(|_| "alice's thread panicked")??;
    tally.finish(&alice_handle.info().stats);
    Ok(())
}

/// The master the first sentinel names (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
fn master_now(
    sentinels: &xgroup_core::SentinelTarget,
) -> Result<xgroup_core::ServerAddr, Box<dyn std::error::Error>> {
    let at = sentinels.sentinels[0].to_socket_string();
    let mut sentinel = Connection::connect(&format!("redis://{at}"))?;
    let reply = sentinel.command([
        "SENTINEL",
        "GET-MASTER-ADDR-BY-NAME",
        &sentinels.master_name,
    ])?;
    let text = |v: &xgroup_core::Value| match v {
        xgroup_core::Value::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    match reply {
        xgroup_core::Value::Array(items) if items.len() == 2 => Ok(xgroup_core::ServerAddr {
            host: text(&items[0]).ok_or("a bad host from the sentinel")?,
            port: text(&items[1])
                .and_then(|p| p.parse().ok())
                .ok_or("a bad port from the sentinel")?,
        }),
        other => Err(format!("the sentinel named no master: {other:?}").into()),
    }
}
