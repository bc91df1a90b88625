//! The Redis Cluster scenarios every adapter passes (run with the others by
//! [`adapter_scenarios!`](crate::adapter_scenarios)): a consumer given a
//! `redis+cluster://` URL consumes through any seed node, follows a live
//! migration of its stream's slot, and follows a primary killed and its
//! replica promoted, losing nothing.
//!
//! A cluster is expensive to start: the scenarios of one test binary share
//! one ([`shared_cluster`]), one scenario at a time, each on streams of its
//! own, and leave it as they found it (a killed node restarted, back as a
//! replica). They run on Redis 6.2 (its `CLUSTER SLOTS`), 7 and Valkey.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::scenarios::{
    all_seen, fast, opts, stop_ok, Adapter, Behavior, Running, Seen, Spec, WAIT,
};
use crate::{ClusterSet, RedisServer, RespValue};
use xgroup_core::ShardedStream;

/// How soon after the promotion (or the migration) consuming must go on.
const RESUME_WITHIN: Duration = Duration::from_secs(5);

/// The test binary's cluster (3 primaries with a replica each), started by
/// the first scenario that asks, held by one scenario at a time.
pub fn shared_cluster() -> MutexGuard<'static, ClusterSet> {
    static CLUSTER: OnceLock<Mutex<ClusterSet>> = OnceLock::new();
    let cluster = CLUSTER.get_or_init(|| Mutex::new(ClusterSet::start()));
    // A scenario that failed left it as it was: still usable.
    let guard = cluster
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard.wait_for_ok();
    guard
}

/// A stream name no other scenario on the shared cluster uses (two
/// adapters may share a test binary).
fn unique_stream(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A spec on `stream` (group `g`), through `url`.
fn cluster_spec(url: &str, stream: &str, behavior: Behavior) -> Spec {
    let mut s = crate::scenarios::spec(url, "c1", behavior, opts(fast));
    s.stream = stream.to_owned();
    s
}

/// Adds `n` entries to `stream` on `node` (the primary of its slot).
fn produce_on(node: &RedisServer, stream: &str, n: usize) -> Vec<String> {
    produce(node, stream, n, false)
}

/// Adds `n` entries to `stream` at the target of its slot's migration,
/// each `XADD` after an `ASKING`.
fn produce_asking(node: &RedisServer, stream: &str, n: usize) -> Vec<String> {
    produce(node, stream, n, true)
}

fn produce(node: &RedisServer, stream: &str, n: usize, asking: bool) -> Vec<String> {
    let mut conn = node.connect().expect("connect to a cluster node");
    (0..n)
        .map(|i| {
            if asking {
                let ok = conn.cmd(&["ASKING"]).expect("ASKING");
                assert_eq!(ok.as_str(), Some("OK"), "ASKING: {ok:?}");
            }
            let reply = conn
                .cmd(&["XADD", stream, "*", "n", &i.to_string()])
                .expect("XADD");
            match reply.as_str() {
                Some(id) => id.to_owned(),
                None => panic!("XADD to {stream} on port {}: {reply:?}", node.port()),
            }
        })
        .collect()
}

/// Adds `n` entries to `stream` on the primary of its slot, and waits until
/// its replica has them (so a failover cannot lose them on the server's
/// side).
fn produce_replicated(cluster: &ClusterSet, stream: &str, n: usize) -> Vec<String> {
    let node = cluster.node(cluster.primary_for_key(stream));
    let ids = produce_on(node, stream, n);
    let acked = node.cmd(&["WAIT", "1", "5000"]).as_int();
    assert_eq!(acked, Some(1), "the replica did not confirm the writes");
    ids
}

fn pending(node: &RedisServer, stream: &str) -> i64 {
    match node.cmd(&["XPENDING", stream, "g"]) {
        RespValue::Array(items) => items.first().and_then(RespValue::as_int).unwrap_or(-1),
        other => panic!("XPENDING {stream} on port {}: {other:?}", node.port()),
    }
}

/// Waits until the group of `stream` has nothing pending on the primary of
/// its slot.
fn wait_nothing_pending(cluster: &ClusterSet, stream: &str) {
    crate::scenarios::wait_nothing_pending_on([stream], |key| {
        pending(cluster.node(cluster.primary_for_key(key)), key)
    });
}

/// A URL whose only seed is a node that does not serve `stream`'s slot.
fn url_through_another_node(cluster: &ClusterSet, stream: &str) -> String {
    let owner = cluster.primary_for_key(stream);
    let other = cluster
        .primary_ports()
        .into_iter()
        .find(|&p| p != owner)
        .expect("another primary");
    format!("redis+cluster://127.0.0.1:{other}")
}

/// One consumer reads every shard of a sharded stream whose shards are
/// spread over the cluster's primaries: each shard's entries are delivered
/// once, from its own key, and acked on the primary that holds it.
pub fn consumes_every_shard_of_a_sharded_stream<A: Adapter>() {
    let cluster = shared_cluster();
    let sharded = ShardedStream::new(unique_stream("cl-sharded"), 6).expect("a sharded stream");
    let keys: Vec<String> = sharded
        .keys()
        .iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let owners: BTreeSet<u16> = keys.iter().map(|k| cluster.primary_for_key(k)).collect();
    assert!(
        owners.len() > 1,
        "the shards are all on one primary: {keys:?}"
    );
    let mut produced = BTreeSet::new();
    for key in &keys {
        let node = cluster.node(cluster.primary_for_key(key));
        produced.extend(
            produce_on(node, key, 20)
                .into_iter()
                .map(|id| (key.clone(), id)),
        );
    }
    let mut s = cluster_spec(&cluster.url(), &keys[0], Behavior::AckAll);
    let streams = keys.clone();
    s.configure = opts(move |c| fast(c).streams(&streams));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(
        seen.wait_for(WAIT, |ds| ds.len() >= produced.len()),
        "{} of {} delivered",
        seen.deliveries().len(),
        produced.len()
    );
    for key in &keys {
        wait_nothing_pending(&cluster, key);
    }
    let stats = stop_ok(running);
    let ds = seen.deliveries();
    let got = crate::scenarios::stream_ids(&ds);
    assert_eq!(got, produced, "each entry from its own shard");
    assert_eq!(ds.len(), produced.len(), "each delivered once");
    assert_eq!(stats.acked, produced.len() as u64);
}

/// The ordered mode on a cluster: two consumers share the shards of a
/// sharded stream spread over the primaries (each shard's lease beside it,
/// on its primary), hand them over when one stops, and each shard's
/// entries are handled in order, each once (see
/// [`ordered_mode_hands_each_stream_to_one_consumer_at_a_time`](crate::scenarios::ordered_mode_hands_each_stream_to_one_consumer_at_a_time)).
pub fn ordered_mode_on_a_cluster<A: Adapter>() {
    let cluster = shared_cluster();
    let keys = crate::scenarios::shard_keys(&unique_stream("cl-ordered"), 4);
    let owners: BTreeSet<u16> = keys.iter().map(|k| cluster.primary_for_key(k)).collect();
    assert!(
        owners.len() > 1,
        "the shards are all on one primary: {keys:?}"
    );
    crate::scenarios::ordered_hand_over::<A>(
        &cluster.url(),
        &keys,
        |key, n| produce_on(cluster.node(cluster.primary_for_key(key)), key, n),
        |key| pending(cluster.node(cluster.primary_for_key(key)), key),
    );
}

/// Seeded with a node that does not serve the stream's slot (and with a
/// replica of the one that does, and given a plain `redis://` URL of a
/// node that does not: its `MOVED` turns cluster discovery on), the
/// consumer finds the slot's primary, consumes everything, and leaves
/// nothing pending.
pub fn consumes_through_any_seed_node<A: Adapter>() {
    let cluster = shared_cluster();
    let seeds = [
        "another primary",
        "the owner's replica",
        "a plain redis:// URL of another primary",
    ];
    for (i, seed) in seeds.iter().enumerate() {
        let stream = unique_stream("cl-seed");
        let url = match i {
            0 => url_through_another_node(&cluster, &stream),
            1 => {
                let replica = cluster.replica_of(cluster.primary_for_key(&stream));
                format!("redis+cluster://127.0.0.1:{replica}")
            }
            _ => url_through_another_node(&cluster, &stream).replace("redis+cluster", "redis"),
        };
        let ids = produce_on(cluster.node(cluster.primary_for_key(&stream)), &stream, 50);
        let s = cluster_spec(&url, &stream, Behavior::AckAll);
        let seen = s.seen.clone();
        let running = A::start(s);
        assert!(
            seen.wait_for(WAIT, all_seen(&ids)),
            "seeded with {seed}: {} of {} seen: {:?}",
            seen.ids().len(),
            ids.len(),
            running.info()
        );
        wait_nothing_pending(&cluster, &stream);
        stop_ok(running);
    }
}

/// The stream's slot is migrated to another primary while the consumer
/// works through a backlog. Half-way (the stream's key moved, the slot
/// still the source's), the consumer follows the `ASK` and consumes at the
/// target what is produced there meanwhile; once the migration ends it
/// follows the `MOVED`. Every entry is seen, with nothing left pending at
/// the new owner.
pub fn follows_a_slot_migration<A: Adapter>() {
    let cluster = shared_cluster();
    let stream = unique_stream("cl-migrate");
    let slot = cluster.key_slot(&stream);
    let from = cluster.primary_for_slot(slot);
    let to = cluster
        .primary_ports()
        .into_iter()
        .find(|&p| p != from)
        .expect("another primary");
    let mut ids = produce_on(cluster.node(from), &stream, 200);
    let s = cluster_spec(&cluster.url(), &stream, Behavior::SleepMs(5));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(
        seen.wait_for(WAIT, |ds| ds.len() >= 20),
        "nothing consumed through the cluster: {:?}",
        running.info()
    );
    let migration = cluster.begin_migration(slot, to);
    while migration.move_keys(100) > 0 {}
    let moved = Instant::now();
    // Mid-migration: only a client that says ASKING may use the key.
    let during = produce_asking(cluster.node(to), &stream, 20);
    let consumed_mid_way = seen.wait_for(RESUME_WITHIN, all_seen(&during));
    eprintln!(
        "mid-migration entries consumed: {consumed_mid_way} ({:?} after the key moved)",
        moved.elapsed()
    );
    migration.finish();
    assert!(
        consumed_mid_way,
        "nothing produced at the target consumed while the slot was migrating: {:?}",
        running.info()
    );
    ids.extend(during);
    ids.extend(produce_on(cluster.node(to), &stream, 20));
    assert!(
        seen.wait_for(WAIT, all_seen(&ids)),
        "lost across the migration: {} of {} seen: {:?}",
        seen.ids().len(),
        ids.len(),
        running.info()
    );
    eprintln!("every entry seen {:?} after the key moved", moved.elapsed());
    wait_nothing_pending(&cluster, &stream);
    let info = running.info();
    stop_ok(running);
    // Put the slot back for the next scenario.
    cluster.migrate_slot(slot, from);
    assert!(info.connected, "{info:?}");
}

/// The primary serving the stream's slot is killed (SIGKILL) while the
/// consumer works through a backlog: its replica is promoted, the consumer
/// moves there within seconds of the promotion, replays what it held, and
/// consumes what is produced on the new primary. Nothing is lost.
pub fn follows_a_primary_killed_and_its_replica_promoted<A: Adapter>() {
    let mut cluster = shared_cluster();
    let stream = unique_stream("cl-failover");
    let old = cluster.primary_for_key(&stream);
    let mut ids = produce_replicated(&cluster, &stream, 60);
    let s = cluster_spec(&cluster.url(), &stream, Behavior::SleepMs(20));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(
        seen.wait_for(WAIT, |ds| ds.len() >= 20),
        "nothing consumed through the cluster: {:?}",
        running.info()
    );
    cluster.kill(old);
    let new = cluster.wait_for_promotion(old);
    let promoted = Instant::now();
    let after = produce_on(cluster.node(new), &stream, 20);
    let resumed = seen.wait_for(RESUME_WITHIN, |ds| ds.iter().any(|d| after.contains(&d.id)));
    let resumed_in = promoted.elapsed();
    eprintln!("consuming resumed {resumed_in:?} after the promotion");
    // Bring the old primary back (as a replica) whatever happened, so the
    // next scenario finds the cluster whole.
    cluster.restart(old);
    assert!(
        resumed,
        "nothing consumed from the new primary within {RESUME_WITHIN:?} of its promotion \
         ({resumed_in:?} after it): {:?}",
        running.info()
    );
    ids.extend(after);
    all_seen_then_stop(&cluster, &stream, &seen, &ids, running, "the failover");
    cluster.wait_for_ok();
}

/// The whole cluster (every primary and replica) is stopped and started
/// again while the consumer runs: it keeps asking (with a backoff, never
/// spinning), finds the slot's primary again once the cluster is back, and
/// consumes what was produced before and after, replaying what it held.
/// The nodes keep their data (an append-only file), as a restarted
/// production cluster does.
pub fn resumes_after_the_whole_cluster_restarts<A: Adapter>() {
    let mut cluster = ClusterSet::builder()
        .primaries(2)
        .replicas_per_primary(0)
        .persistent(true)
        .start();
    let stream = unique_stream("cl-restart");
    let node = |c: &ClusterSet| c.primary_for_key(&stream);
    let mut ids = produce_on(cluster.node(node(&cluster)), &stream, 50);
    let s = cluster_spec(&cluster.url(), &stream, Behavior::SleepMs(10));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(
        seen.wait_for(WAIT, |ds| ds.len() >= 10),
        "nothing consumed through the cluster: {:?}",
        running.info()
    );
    cluster.restart_all();
    let restarted = Instant::now();
    let after = produce_on(cluster.node(node(&cluster)), &stream, 20);
    assert!(
        seen.wait_for(WAIT, |ds| ds.iter().any(|d| after.contains(&d.id))),
        "nothing consumed after the restart: {:?}",
        running.info()
    );
    eprintln!(
        "consuming resumed {:?} after the cluster was back",
        restarted.elapsed()
    );
    ids.extend(after);
    all_seen_then_stop(&cluster, &stream, &seen, &ids, running, "the restart");
}

/// After `what` (which made the consumer connect again): every one of `ids`
/// seen, nothing pending, and a clean stop.
fn all_seen_then_stop(
    cluster: &ClusterSet,
    stream: &str,
    seen: &Seen,
    ids: &[String],
    running: Box<dyn Running>,
    what: &str,
) {
    assert!(
        seen.wait_for(WAIT, all_seen(ids)),
        "lost across {what}: {} of {} seen",
        seen.ids().len(),
        ids.len()
    );
    wait_nothing_pending(cluster, stream);
    let stats = stop_ok(running);
    assert!(stats.connections >= 2, "{stats:?}");
}
