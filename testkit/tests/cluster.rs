//! `ClusterSet` against real `redis-server` processes (or
//! `$XGROUP_REDIS_SERVER`). The tests that do not kill or restart nodes
//! share one cluster; they use keys of slots no other test touches.

use std::sync::OnceLock;
use std::time::Instant;

use xgroup_testkit::{ClusterSet, RedisServer, RespConnection, RespValue};

/// The cluster shared by the tests that leave its nodes alone (its
/// processes die with the test binary: see `kill_on_exit`).
fn shared() -> &'static ClusterSet {
    static SHARED: OnceLock<ClusterSet> = OnceLock::new();
    SHARED.get_or_init(|| {
        let started = Instant::now();
        let cluster = ClusterSet::start();
        eprintln!("shared 3x1 cluster up in {:?}", started.elapsed());
        cluster
    })
}

fn ok() -> RespValue {
    RespValue::Simple("OK".into())
}

fn info_field(node: &RedisServer, command: &[&str], field: &str) -> String {
    let reply = node.cmd(command);
    let text = reply.as_str().unwrap_or_else(|| panic!("{reply:?}"));
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .trim()
        .to_owned()
}

fn cluster_info(node: &RedisServer, field: &str) -> String {
    info_field(node, &["CLUSTER", "INFO"], field)
}

/// The error of a reply, or a panic naming what came instead.
fn error(reply: RespValue) -> String {
    match reply {
        RespValue::Error(e) => e,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

/// Asserts every node but `owner` redirects `args` (about a key of `slot`)
/// to `owner` with MOVED.
fn assert_moved_to(cluster: &ClusterSet, owner: u16, slot: u16, args: &[&str]) {
    for port in cluster.ports() {
        if port != owner {
            let reply = error(cluster.node(port).cmd(args));
            assert_eq!(
                reply,
                format!("MOVED {slot} 127.0.0.1:{owner}"),
                "{args:?} on {port}"
            );
        }
    }
}

#[test]
fn comes_up_with_three_primaries_three_replicas_and_every_slot() {
    let cluster = shared();
    let ports = cluster.ports();
    assert_eq!(ports.len(), 6);
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 6, "{ports:?}");
    assert!(!ports.contains(&6379));

    let primaries = cluster.primary_ports();
    let replicas = cluster.replica_ports();
    assert_eq!(primaries.len(), 3, "{primaries:?}");
    assert_eq!(replicas.len(), 3, "{replicas:?}");
    for node in ports.iter().map(|&p| cluster.node(p)) {
        assert_eq!(cluster_info(node, "cluster_state"), "ok");
        assert_eq!(cluster_info(node, "cluster_slots_assigned"), "16384");
        assert_eq!(cluster_info(node, "cluster_slots_ok"), "16384");
        assert_eq!(cluster_info(node, "cluster_size"), "3");
        assert_eq!(cluster_info(node, "cluster_known_nodes"), "6");
    }
    // Each primary has its own replica, in sync with it.
    let mut seen = Vec::new();
    for &primary in &primaries {
        let replica = cluster.replica_of(primary);
        assert_eq!(cluster.replicas_of(primary), vec![replica]);
        assert!(replicas.contains(&replica));
        seen.push(replica);
        let node = cluster.node(replica);
        assert_eq!(
            info_field(node, &["INFO", "replication"], "master_port"),
            primary.to_string()
        );
        assert_eq!(
            info_field(node, &["INFO", "replication"], "master_link_status"),
            "up"
        );
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 3);
    // The first and last slots are served by primaries. (Other tests
    // migrate single slots of the shared cluster, never these.)
    assert!(primaries.contains(&cluster.primary_for_slot(0)));
    assert!(primaries.contains(&cluster.primary_for_slot(16383)));

    let url = cluster.url();
    let seeds: Vec<String> = primaries.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    assert_eq!(url, format!("redis+cluster://{}", seeds.join(",")));
    assert_eq!(
        cluster.node_url(replicas[0]),
        format!("redis://127.0.0.1:{}", replicas[0])
    );
    for &port in &ports {
        assert_eq!(cluster.node_id(port).len(), 40);
        assert!(cluster.node(port).cluster_port().is_some());
    }
}

#[test]
fn primary_for_key_is_the_only_node_that_takes_a_write() {
    let cluster = shared();
    // Not in a slot the migration tests move meanwhile.
    let migrated = [
        cluster.key_slot("{migrate-full}"),
        cluster.key_slot("{migrate-half}"),
    ];
    let mut owners = Vec::new();
    for i in 0..12 {
        let key = format!("user:{i}");
        let slot = cluster.key_slot(&key);
        assert!(slot < 16384 && !migrated.contains(&slot), "{key}: {slot}");
        let owner = cluster.primary_for_key(&key);
        assert_eq!(owner, cluster.primary_for_slot(slot));
        owners.push(owner);
        assert_eq!(cluster.node(owner).cmd(&["SET", &key, "v"]), ok(), "{key}");
        assert_eq!(cluster.node(owner).cmd(&["GET", &key]).as_str(), Some("v"));
        // Every other node, replicas included, sends the client there.
        assert_moved_to(cluster, owner, slot, &["SET", &key, "v"]);
    }
    owners.sort_unstable();
    owners.dedup();
    assert!(owners.len() > 1, "12 keys all on one primary: {owners:?}");
}

#[test]
fn migrate_slot_moves_a_stream_with_its_group() {
    let cluster = shared();
    let key = "{migrate-full}orders";
    let slot = cluster.key_slot(key);
    let source = cluster.primary_for_slot(slot);
    let node = cluster.node(source);
    for i in 0..100 {
        assert!(node
            .cmd(&["XADD", key, "*", "n", &i.to_string()])
            .as_str()
            .is_some());
    }
    assert_eq!(node.cmd(&["XGROUP", "CREATE", key, "g", "0"]), ok());
    let read = node.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "COUNT",
        "10",
        "STREAMS",
        key,
        ">",
    ]);
    assert!(read.as_array().is_some(), "{read:?}");
    let before = node.cmd(&["XRANGE", key, "-", "+"]);

    let target = *cluster
        .primary_ports()
        .iter()
        .find(|&&p| p != source)
        .expect("another primary");
    let started = Instant::now();
    cluster.migrate_slot(slot, target);
    eprintln!("migrate_slot took {:?}", started.elapsed());

    assert_eq!(cluster.primary_for_slot(slot), target);
    let moved = cluster.node(target);
    assert_eq!(moved.cmd(&["XLEN", key]).as_int(), Some(100));
    assert_eq!(moved.cmd(&["XRANGE", key, "-", "+"]), before);
    let pending = moved.cmd(&["XPENDING", key, "g"]);
    assert_eq!(pending.as_array().unwrap()[0].as_int(), Some(10));
    assert_moved_to(cluster, target, slot, &["XLEN", key]);
    assert_eq!(
        error(cluster.node(source).cmd(&["XLEN", key])),
        format!("MOVED {slot} 127.0.0.1:{target}")
    );
}

#[test]
fn mid_migration_the_source_answers_ask_for_a_moved_key() {
    let cluster = shared();
    let keys = ["{migrate-half}a", "{migrate-half}b"];
    let slot = cluster.key_slot(keys[0]);
    let source = cluster.primary_for_slot(slot);
    for key in keys {
        for _ in 0..5 {
            cluster.node(source).cmd(&["XADD", key, "*", "f", "v"]);
        }
    }
    let target = *cluster
        .primary_ports()
        .iter()
        .find(|&&p| p != source)
        .expect("another primary");

    let migration = cluster.begin_migration(slot, target);
    assert_eq!(
        (migration.slot(), migration.source(), migration.target()),
        (slot, source, target)
    );
    // Nothing moved yet: the source still serves both keys.
    for key in keys {
        assert_eq!(cluster.node(source).cmd(&["XLEN", key]).as_int(), Some(5));
    }
    assert_eq!(migration.move_keys(1), 1);

    let ask = format!("ASK {slot} 127.0.0.1:{target}");
    let answers: Vec<RespValue> = keys
        .iter()
        .map(|key| cluster.node(source).cmd(&["XLEN", key]))
        .collect();
    let moved: Vec<&str> = keys
        .iter()
        .zip(&answers)
        .filter(|(_, a)| a.as_error() == Some(ask.as_str()))
        .map(|(k, _)| *k)
        .collect();
    let stayed: Vec<&str> = keys
        .iter()
        .zip(&answers)
        .filter(|(_, a)| a.as_int() == Some(5))
        .map(|(k, _)| *k)
        .collect();
    assert_eq!((moved.len(), stayed.len()), (1, 1), "{answers:?}");
    // A new key of the slot goes to the target too.
    assert_eq!(
        error(
            cluster
                .node(source)
                .cmd(&["XADD", "{migrate-half}new", "*", "f", "v"])
        ),
        ask
    );
    // The target serves the moved key only after ASKING, else it sends
    // the client back to the source.
    assert_eq!(
        error(cluster.node(target).cmd(&["XLEN", moved[0]])),
        format!("MOVED {slot} 127.0.0.1:{source}")
    );
    let mut conn = RespConnection::connect(cluster.node(target).addr()).unwrap();
    assert_eq!(conn.cmd(&["ASKING"]).unwrap(), ok());
    assert_eq!(conn.cmd(&["XLEN", moved[0]]).unwrap().as_int(), Some(5));

    migration.finish();
    assert_eq!(cluster.primary_for_slot(slot), target);
    for key in keys {
        assert_eq!(cluster.node(target).cmd(&["XLEN", key]).as_int(), Some(5));
        assert_moved_to(cluster, target, slot, &["XLEN", key]);
    }
}

#[test]
fn a_killed_primary_is_replaced_by_its_replica_and_rejoins_as_a_replica() {
    let started = Instant::now();
    let mut cluster = ClusterSet::start();
    eprintln!("3x1 cluster up in {:?}", started.elapsed());
    let key = "failover-key";
    let slot = cluster.key_slot(key);
    let old = cluster.primary_for_key(key);
    let replica = cluster.replica_of(old);
    assert_eq!(cluster.node(old).cmd(&["SET", key, "before"]), ok());

    cluster.kill(old);
    assert!(!cluster.node(old).is_running());
    let killed = Instant::now();
    let new = cluster.wait_for_promotion(old);
    eprintln!("promotion took {:?}", killed.elapsed());
    assert_eq!(new, replica);
    assert_eq!(cluster.primary_for_key(key), new);
    assert_eq!(cluster.node(new).cmd(&["SET", key, "after"]), ok());
    assert!(cluster.primary_ports().contains(&new));
    assert!(!cluster.primary_ports().contains(&old));
    assert!(!cluster.url().contains(&old.to_string()));
    for node in cluster.primary_ports() {
        assert_eq!(cluster_info(cluster.node(node), "cluster_state"), "ok");
    }

    let restarting = Instant::now();
    cluster.restart(old);
    eprintln!("restart took {:?}", restarting.elapsed());
    assert!(cluster.replica_ports().contains(&old));
    assert_eq!(cluster.replica_of(new), old);
    let back = cluster.node(old);
    assert_eq!(
        info_field(back, &["INFO", "replication"], "master_port"),
        new.to_string()
    );
    // It holds the new primary's data, and sends writers there.
    let mut conn = back.connect().unwrap();
    assert_eq!(conn.cmd(&["READONLY"]).unwrap(), ok());
    assert_eq!(conn.cmd(&["GET", key]).unwrap().as_str(), Some("after"));
    assert_eq!(
        error(back.cmd(&["SET", key, "x"])),
        format!("MOVED {slot} 127.0.0.1:{new}")
    );
}

#[test]
fn one_primary_without_replicas() {
    let started = Instant::now();
    let cluster = ClusterSet::builder()
        .primaries(1)
        .replicas_per_primary(0)
        .start();
    eprintln!("1x0 cluster up in {:?}", started.elapsed());
    let ports = cluster.ports();
    assert_eq!(ports.len(), 1);
    let port = ports[0];
    assert_eq!(cluster.primary_ports(), ports);
    assert!(cluster.replica_ports().is_empty());
    assert!(cluster.replicas_of(port).is_empty());
    assert_eq!(cluster.url(), format!("redis+cluster://127.0.0.1:{port}"));
    assert_eq!(cluster.primary_for_slot(0), port);
    assert_eq!(cluster.primary_for_slot(16383), port);
    assert_eq!(cluster.primary_for_key("any"), port);
    let node = cluster.node(port);
    assert_eq!(cluster_info(node, "cluster_state"), "ok");
    assert_eq!(cluster_info(node, "cluster_slots_assigned"), "16384");
    assert_eq!(node.cmd(&["SET", "a", "1"]), ok());
    assert_eq!(node.cmd(&["SET", "b", "2"]), ok());

    // Dropping it kills the node and removes its directory.
    let dir = node.data_dir().to_path_buf();
    let addr = node.addr();
    drop(cluster);
    assert!(!dir.exists());
    assert!(RespConnection::connect(addr).is_err());
}

#[test]
fn restart_all_comes_back_ok_on_the_same_ports() {
    let started = Instant::now();
    let mut cluster = ClusterSet::builder()
        .primaries(2)
        .replicas_per_primary(1)
        .start();
    eprintln!("2x1 cluster up in {:?}", started.elapsed());
    let ports = cluster.ports();
    let mut primaries = cluster.primary_ports();
    primaries.sort_unstable();
    let key = "restart-all";
    let owner = cluster.primary_for_key(key);
    assert_eq!(cluster.node(owner).cmd(&["SET", key, "v"]), ok());

    let restarting = Instant::now();
    cluster.restart_all();
    eprintln!("restart_all took {:?}", restarting.elapsed());
    assert_eq!(cluster.ports(), ports);
    let mut after = cluster.primary_ports();
    after.sort_unstable();
    assert_eq!(after, primaries);
    assert_eq!(cluster.replica_ports().len(), 2);
    for &port in &ports {
        let node = cluster.node(port);
        assert!(node.is_running());
        assert_eq!(cluster_info(node, "cluster_state"), "ok");
        assert_eq!(cluster_info(node, "cluster_slots_ok"), "16384");
    }
    // Nothing is persisted: the data is gone, the cluster takes writes.
    assert!(cluster.node(owner).cmd(&["GET", key]).is_nil());
    assert_eq!(cluster.node(owner).cmd(&["SET", key, "again"]), ok());
}
