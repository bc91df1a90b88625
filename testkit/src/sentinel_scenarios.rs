//! The Sentinel scenarios every adapter passes (run with the others by
//! [`adapter_scenarios!`](crate::adapter_scenarios)): a consumer given a
//! `redis+sentinel://` URL follows the master through a failover (the
//! master killed while consuming and producing) losing nothing, keeps
//! consuming with every sentinel down, and retries without spinning when
//! no sentinel answers at start-up. Each starts its own master, replica
//! and three sentinels.

use std::time::{Duration, Instant};

use crate::scenarios::{
    all_seen, fast, opts, produce, spec, stop_ok, wait_pending, Adapter, Behavior, WAIT,
};
use crate::{RedisServer, SentinelSet};

/// How soon after the promotion consuming must go on.
const RESUME_WITHIN: Duration = Duration::from_secs(5);

/// Produces `n` entries on the master and waits until the replica has
/// them, so a failover cannot lose them on the server's side.
fn produce_replicated(master: &RedisServer, n: usize) -> Vec<String> {
    let ids = produce(master, n);
    let acked = master.cmd(&["WAIT", "1", "5000"]).as_int();
    assert_eq!(acked, Some(1), "the replica did not confirm the writes");
    ids
}

/// The master is killed (SIGKILL) while the consumer works through a
/// backlog: the sentinels promote the replica, the consumer moves there
/// within seconds of the promotion (its `+switch-master` subscription),
/// replays what it held whose acks the old master took with it, and
/// consumes what is produced on the new master. Nothing is lost: every
/// entry is seen and the new master has nothing pending at the end.
pub fn follows_the_master_through_a_failover<A: Adapter>() {
    let mut set = SentinelSet::start();
    let mut ids = produce_replicated(set.master(), 60);
    let s = spec(&set.url(), "c1", Behavior::SleepMs(20), opts(fast));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(
        seen.wait_for(WAIT, |ds| ds.len() >= 20),
        "nothing consumed through the sentinels: {:?}",
        running.info()
    );
    let old = set.kill_master();
    let new = set.wait_for_promotion(old);
    let promoted = Instant::now();
    // The old master is dead: the new one has no replica to wait for.
    let after = produce(set.node(new), 20);
    assert!(
        seen.wait_for(RESUME_WITHIN, |ds| ds.iter().any(|d| after.contains(&d.id))),
        "nothing consumed from the new master within {RESUME_WITHIN:?} of its promotion \
         ({:?} after it): {:?}",
        promoted.elapsed(),
        running.info()
    );
    ids.extend(after);
    assert!(
        seen.wait_for(WAIT, all_seen(&ids)),
        "lost across the failover: {} of {} seen",
        seen.ids().len(),
        ids.len()
    );
    wait_pending(set.node(new), 0);
    let info = running.info();
    let stats = stop_ok(running);
    assert!(stats.connections >= 2, "{stats:?} {info:?}");
}

/// Every sentinel goes down while the master stays up: consuming goes on.
pub fn keeps_consuming_with_every_sentinel_down<A: Adapter>() {
    let mut set = SentinelSet::start();
    let mut ids = produce(set.master(), 10);
    let s = spec(&set.url(), "c1", Behavior::AckAll, opts(fast));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&ids)), "{:?}", seen.ids());
    let master_port = set.master_port();
    for sentinel in set.sentinels() {
        sentinel.kill();
    }
    std::thread::sleep(Duration::from_millis(300));
    let master = set.node(master_port);
    ids.extend(produce(master, 10));
    assert!(
        seen.wait_for(WAIT, all_seen(&ids)),
        "stopped consuming without sentinels: {:?}",
        running.info()
    );
    wait_pending(master, 0);
    let last_error = running.info().last_error.unwrap_or_default();
    assert!(last_error.contains("sentinel"), "{last_error:?}");
    stop_ok(running);
}

/// No sentinel answers at start-up: the consumer keeps asking with a
/// backoff (no busy loop), says why in `info()`, and stops cleanly.
pub fn no_sentinel_at_start_is_retried_without_spinning<A: Adapter>() {
    let ports: Vec<u16> = (0..3)
        .map(|_| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        })
        .collect();
    let url = format!(
        "redis+sentinel://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}/nowhere",
        ports[0], ports[1], ports[2]
    );
    let mut running = A::start(spec(&url, "c1", Behavior::AckAll, opts(fast)));
    std::thread::sleep(Duration::from_millis(1500));
    if let Some(result) = running.wait(Duration::ZERO) {
        panic!("gave up on sentinels that may come back: {result:?}");
    }
    let info = running.info();
    let stats = running.stats();
    // Three sentinels a round, rounds backed off from 20 ms to 500 ms: a
    // few dozen attempts at most in 1.5 s, never thousands.
    assert!((3..=60).contains(&stats.errors), "{stats:?}");
    let last_error = info.last_error.unwrap_or_default();
    assert!(last_error.contains("sentinel 127.0.0.1:"), "{last_error:?}");
    let stats = stop_ok(running);
    assert_eq!(stats.connections, 0);
}

/// The data nodes and the sentinels each need their own password: the
/// URL's login is the data nodes', `sentinel_password` the sentinels'.
/// With a wrong sentinel password the consumer says so (in `info()`) and
/// keeps asking with a backoff; with the right one it consumes.
pub fn separate_sentinel_and_data_passwords<A: Adapter>() {
    let set = SentinelSet::start_with_passwords(Some("data-pw"), Some("sentinel-pw"));
    let ids = produce(set.master(), 10);
    let hosts = set.url();
    let hosts = hosts
        .strip_prefix("redis+sentinel://")
        .expect("a sentinel URL");
    let wrong = format!("redis+sentinel://:data-pw@{hosts}?sentinel_password=nope");
    let mut running = A::start(spec(&wrong, "c1", Behavior::AckAll, opts(fast)));
    std::thread::sleep(Duration::from_millis(1000));
    if let Some(result) = running.wait(Duration::ZERO) {
        panic!("gave up on the sentinels: {result:?}");
    }
    let last_error = running.info().last_error.unwrap_or_default();
    assert!(
        last_error.contains("sentinel") && last_error.to_lowercase().contains("pass"),
        "{last_error:?}"
    );
    assert!(!last_error.contains("data-pw"), "{last_error:?}");
    stop_ok(running);
    let right = format!("redis+sentinel://:data-pw@{hosts}?sentinel_password=sentinel-pw");
    let s = spec(&right, "c2", Behavior::AckAll, opts(fast));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&ids)), "{:?}", running.info());
    wait_pending(set.master(), 0);
    stop_ok(running);
}

/// A manual failover (`SENTINEL FAILOVER`): the old master stays up and
/// becomes a replica, so the consumer's blocked read is cut (`UNBLOCKED`)
/// and writes there are refused (`READONLY`) rather than the connection
/// dropped; the consumer moves to the new master and loses nothing.
pub fn follows_a_manual_failover<A: Adapter>() {
    let mut set = SentinelSet::start();
    let mut ids = produce_replicated(set.master(), 30);
    let s = spec(&set.url(), "c1", Behavior::SleepMs(10), opts(fast));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(
        seen.wait_for(WAIT, |ds| ds.len() >= 10),
        "{:?}",
        running.info()
    );
    let old = set.master_port();
    let reply = set.sentinels()[0].cmd(&["SENTINEL", "FAILOVER", SentinelSet::MASTER_NAME]);
    assert!(!reply.is_error(), "SENTINEL FAILOVER: {reply:?}");
    let new = set.wait_for_promotion(old);
    let promoted = Instant::now();
    let after = produce(set.node(new), 20);
    assert!(
        seen.wait_for(RESUME_WITHIN, |ds| ds.iter().any(|d| after.contains(&d.id))),
        "nothing consumed from the new master within {RESUME_WITHIN:?} of its promotion ({:?}): {:?}",
        promoted.elapsed(),
        running.info()
    );
    ids.extend(after);
    assert!(
        seen.wait_for(WAIT, all_seen(&ids)),
        "lost across the failover: {} of {} seen",
        seen.ids().len(),
        ids.len()
    );
    wait_pending(set.node(new), 0);
    stop_ok(running);
}
