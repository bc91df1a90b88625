//! The `Connection` tests every adapter passes, written once, against real
//! servers.
//!
//! An adapter's test file implements [`Conn`] for its `Connection` (an async
//! one blocks on its runtime in each method; it also implements [`Cancel`])
//! and instantiates the tests with
//! [`adapter_connection_tests!`](crate::adapter_connection_tests). Each test
//! spawns its own server and takes a few seconds at most: timeouts are short.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xgroup_core::{
    key_slot, Command, Error, ShardedStream, StreamId, TlsOptions, Value, XAddOptions,
};
use xgroup_driver::ConnectionOptions;

use crate::{ClusterSet, RedisServer, RespValue};

/// An adapter's `Connection`, made blocking.
pub trait Conn: Sized + fmt::Debug {
    /// `Connection::connect(url)`.
    fn connect(url: &str) -> Result<Self, Error>;

    /// `Connection::connect_with(url, options)`.
    fn connect_with(url: &str, options: ConnectionOptions) -> Result<Self, Error>;

    /// `Connection::send(command)`.
    fn send(&mut self, command: &Command) -> Result<Value, Error>;

    /// `Connection::xadd(stream, fields, options)`.
    fn xadd(
        &mut self,
        stream: &str,
        fields: &[(&str, &str)],
        options: &XAddOptions,
    ) -> Result<StreamId, Error>;

    /// `Connection::xadd_sharded(stream, partition_key, fields, options)`.
    fn xadd_sharded(
        &mut self,
        stream: &ShardedStream,
        partition_key: Option<&str>,
        fields: &[(&str, &str)],
        options: &XAddOptions,
    ) -> Result<(usize, StreamId), Error>;

    /// `Debug` of this adapter's consumer builder for `url` (stream `s`,
    /// group `g`, consumer `c`, any handler, these TLS settings), then of
    /// what `build()` gave (the consumer or the error, also as text), then
    /// of the consumer's `into_parts()`.
    fn consumer_debug(url: &str, tls: Option<TlsOptions>) -> String;
}

/// An async adapter's `Connection`: a call's future can be dropped.
pub trait Cancel: Conn {
    /// `Connection::send(command)`, its future dropped once `after` has
    /// passed (on the runtime's timer); `None` when it was.
    fn send_for(&mut self, command: &Command, after: Duration) -> Option<Result<Value, Error>>;
}

/// A password no output may show.
const SECRET: &str = "pw-4e1d-SECRET";

fn cmd(args: &[&str]) -> Command {
    Command::from_args(args)
}

fn bulk(text: &str) -> Value {
    Value::Bulk(text.as_bytes().to_vec().into())
}

fn quick(io_timeout: Duration) -> ConnectionOptions {
    ConnectionOptions::default()
        .connect_timeout(Duration::from_secs(2))
        .io_timeout(io_timeout)
}

/// After a server restart the first call fails (its connection is gone);
/// the next one opens a new connection with the same password and
/// database, and goes on.
pub fn a_call_after_a_server_restart_reconnects_with_the_same_login_and_database<C: Conn>() {
    let mut server = RedisServer::builder().password(Some(SECRET)).start();
    let url = format!("redis://:{SECRET}@127.0.0.1:{}/2", server.port());
    let mut conn = C::connect_with(&url, quick(Duration::from_secs(5))).expect("connect");
    assert_eq!(
        conn.send(&cmd(&["SET", "k", "before"])),
        Ok(Value::Simple("OK".into()))
    );
    server.restart();
    let first = conn.send(&cmd(&["PING"]));
    assert!(matches!(first, Err(Error::Connection(_))), "{first:?}");
    let info = match conn.send(&cmd(&["CLIENT", "INFO"])) {
        Ok(Value::Bulk(info)) => String::from_utf8_lossy(&info).into_owned(),
        other => panic!("CLIENT INFO over a new connection: {other:?}"),
    };
    assert!(info.contains(" db=2 "), "{info}");
    assert_eq!(
        conn.send(&cmd(&["SET", "k", "after"])),
        Ok(Value::Simple("OK".into()))
    );
    let mut admin = server.connect().expect("admin connection");
    assert_eq!(
        admin.cmd(&["SELECT", "2"]).ok(),
        Some(RespValue::Simple("OK".into()))
    );
    assert_eq!(
        admin.cmd(&["GET", "k"]).ok(),
        Some(RespValue::Bulk(b"after".to_vec()))
    );
}

/// While the server is down every call fails (at once: connection
/// refused); once it is back, the next call succeeds.
pub fn calls_fail_while_the_server_is_down_and_succeed_once_it_is_back<C: Conn>() {
    let mut server = RedisServer::start();
    let mut conn = C::connect_with(&server.url(), quick(Duration::from_secs(5))).expect("connect");
    server.kill();
    for _ in 0..3 {
        let started = Instant::now();
        let down = conn.send(&cmd(&["PING"]));
        assert!(matches!(down, Err(Error::Connection(_))), "{down:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    server.restart();
    assert_eq!(conn.send(&cmd(&["PING"])), Ok(Value::Simple("PONG".into())));
}

/// A call whose reply is later than the I/O timeout fails within it; its
/// reply, arriving later, is never taken for the next call's (the bug: a
/// `GET` after a timed-out `BLPOP` returned the `BLPOP`'s nil).
pub fn a_timed_out_call_never_hands_its_reply_to_the_next_call<C: Conn>() {
    let server = RedisServer::start();
    let mut conn =
        C::connect_with(&server.url(), quick(Duration::from_millis(300))).expect("connect");
    let started = Instant::now();
    let timed_out = conn.send(&cmd(&["BLPOP", "list", "1"]));
    assert!(
        matches!(timed_out, Err(Error::ReplyTimeout { .. })),
        "{timed_out:?}"
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the 300 ms timeout took {took:?}"
    );
    // The BLPOP's nil is due now (on the connection it was sent on).
    thread::sleep(Duration::from_millis(1200));
    server.cmd(&["SET", "g", "value"]);
    assert_eq!(conn.send(&cmd(&["GET", "g"])), Ok(bulk("value")));
    assert_eq!(conn.send(&cmd(&["INCR", "n"])), Ok(Value::Int(1)));
}

/// A server that answers nothing (`CLIENT PAUSE`) makes a call fail after
/// the I/O timeout, not the 30 s default; once it answers again, so does the
/// connection.
pub fn a_paused_server_times_out_within_the_io_timeout_and_the_connection_recovers<C: Conn>() {
    let server = RedisServer::start();
    let mut conn =
        C::connect_with(&server.url(), quick(Duration::from_millis(400))).expect("connect");
    server.cmd(&["SET", "y", "why"]);
    server.cmd(&["CLIENT", "PAUSE", "1000", "ALL"]);
    let started = Instant::now();
    let timed_out = conn.send(&cmd(&["INCR", "x"]));
    assert!(
        matches!(timed_out, Err(Error::ReplyTimeout { .. })),
        "{timed_out:?}"
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the 400 ms timeout took {took:?}"
    );
    thread::sleep(Duration::from_millis(1300).saturating_sub(took));
    // Whatever became of the timed-out INCR, this call gets its own reply.
    assert_eq!(conn.send(&cmd(&["GET", "y"])), Ok(bulk("why")));
}

/// Zero timeouts are refused before anything is sent.
pub fn zero_timeouts_are_a_config_error<C: Conn>() {
    let server = RedisServer::start();
    for options in [
        ConnectionOptions::default().connect_timeout(Duration::ZERO),
        ConnectionOptions::default().io_timeout(Duration::ZERO),
    ] {
        let refused = C::connect_with(&server.url(), options);
        assert!(matches!(refused, Err(Error::Config(_))), "{refused:?}");
    }
    assert!(C::connect_with(&server.url(), ConnectionOptions::default()).is_ok());
}

/// No password shows in the `Display` or `Debug` of an error for a bad URL,
/// a wrong password or a refused connection, nor in the `Debug` of a
/// connection, a consumer builder, a consumer or its parts.
pub fn passwords_never_show_in_errors_or_debug_output<C: Conn>() {
    let server = RedisServer::builder().password(Some(SECRET)).start();
    let port = server.port();
    let check = |what: &str, shown: &str| {
        assert!(
            !shown.contains(SECRET),
            "{what} shows the password: {shown}"
        );
        assert!(
            !shown.contains("4e1d"),
            "{what} shows part of the password: {shown}"
        );
    };
    let bad_urls = [
        format!("redis://user:{SECRET}@:{port}"),
        format!("redis://user:{SECRET}@127.0.0.1:notaport"),
        format!("redis://:{SECRET}@[::1"),
        format!("redis://:{SECRET}@127.0.0.1:{port}/notadb"),
        format!("redis://:{SECRET}@127.0.0.1:{port}?foo=bar"),
        format!("redis://127.0.0.1:{port}?password={SECRET}"),
        format!("rediss://:{SECRET}@127.0.0.1:{port}/notadb"),
        format!("http://:{SECRET}@127.0.0.1:{port}"),
        format!(":{SECRET}@127.0.0.1:{port}"),
        format!("redis://us/er:{SECRET}@127.0.0.1:{port}"),
        format!("redis://:{SECRET}%FF@127.0.0.1:{port}"),
        format!("redis://:{SECRET}@127.0.0.1:{port}@"),
        // Wrong password (the server says so), nothing listening.
        format!("redis://:{SECRET}x@127.0.0.1:{port}"),
        format!("redis://:{SECRET}@127.0.0.1:1"),
    ];
    for url in &bad_urls {
        let e = C::connect(url).expect_err(url);
        check(&format!("the error for {url}"), &format!("{e} / {e:?}"));
        check(
            &format!("the consumer for {url}"),
            &C::consumer_debug(url, None),
        );
    }
    let url = format!("redis://:{SECRET}@127.0.0.1:{port}/1");
    let mut conn = C::connect(&url).expect("the right password");
    check("a connection", &format!("{conn:?}"));
    conn.send(&cmd(&["PING"])).expect("ping");
    check("a used connection", &format!("{conn:?}"));
    let consumer = C::consumer_debug(&url, None);
    assert!(consumer.contains("127.0.0.1"), "{consumer}");
    check("a consumer", &consumer);
    let user = format!("redis://default:{SECRET}@127.0.0.1:{port}");
    check("a consumer with a user", &C::consumer_debug(&user, None));
}

/// `XADD ... NOMKSTREAM` on a missing stream fails with
/// [`Error::StreamMissing`], which speaks of `NOMKSTREAM` (not of the
/// consumer's `make_stream`).
pub fn xadd_without_mkstream_on_a_missing_stream_speaks_of_nomkstream<C: Conn>() {
    let server = RedisServer::start();
    let mut conn = C::connect(&server.url()).expect("connect");
    let options = XAddOptions {
        no_mkstream: true,
        ..XAddOptions::default()
    };
    let e = conn
        .xadd("missing", &[("k", "v")], &options)
        .expect_err("no stream");
    assert!(matches!(e, Error::StreamMissing { .. }), "{e:?}");
    assert!(e.to_string().contains("NOMKSTREAM"), "{e}");
    assert_eq!(server.cmd(&["EXISTS", "missing"]), RespValue::Int(0));
}

/// A call dropped while it waits for a blocked reply (`BLPOP k 5`) leaves
/// its reply to be skipped: the next call (`INCR x`) gets its own.
pub fn a_cancelled_blocking_call_never_hands_its_reply_to_the_next_call<C: Cancel>() {
    let server = RedisServer::start();
    let mut conn = C::connect(&server.url()).expect("connect");
    let cancelled = conn.send_for(&cmd(&["BLPOP", "k", "5"]), Duration::from_millis(200));
    assert_eq!(cancelled, None, "BLPOP should still be blocked");
    // Wake the BLPOP: its reply ([k, v]) now precedes INCR's on the wire.
    server.cmd(&["RPUSH", "k", "v"]);
    assert_eq!(conn.send(&cmd(&["INCR", "x"])), Ok(Value::Int(1)));
    assert_eq!(conn.send(&cmd(&["GET", "x"])), Ok(bulk("1")));
    assert_eq!(server.cmd(&["LLEN", "k"]), RespValue::Int(0));
}

/// A call dropped while the server is paused (`CLIENT PAUSE`): the next
/// call waits for its own reply, not the dropped one's.
pub fn a_call_cancelled_while_the_server_is_paused_never_hands_its_reply_to_the_next_call<
    C: Cancel,
>() {
    let server = RedisServer::start();
    let mut conn = C::connect(&server.url()).expect("connect");
    server.cmd(&["SET", "y", "41"]);
    server.cmd(&["CLIENT", "PAUSE", "500", "ALL"]);
    let cancelled = conn.send_for(&cmd(&["INCR", "x"]), Duration::from_millis(100));
    assert_eq!(cancelled, None, "the server should be paused");
    assert_eq!(conn.send(&cmd(&["INCR", "y"])), Ok(Value::Int(42)));
    assert_eq!(conn.send(&cmd(&["GET", "x"])), Ok(bulk("1")));
}

/// A call dropped part-way through writing (a 64 MiB value to a server
/// asleep in `DEBUG SLEEP`) leaves half a command on its connection: the
/// next call opens a new one and gets its own reply.
pub fn a_call_cancelled_while_writing_leaves_the_next_call_working<C: Cancel>() {
    let server = RedisServer::builder()
        .extra_args(&["--enable-debug-command", "yes"])
        .start();
    let mut conn = C::connect_with(&server.url(), quick(Duration::from_secs(5))).expect("connect");
    assert_eq!(
        conn.send(&cmd(&["SET", "k", "v"])),
        Ok(Value::Simple("OK".into()))
    );
    let mut admin = server.connect().expect("admin connection");
    admin.send(&["DEBUG", "SLEEP", "1.5"]).expect("DEBUG SLEEP");
    asleep(&server);
    let big = Command::from_args([&b"SET"[..], b"big", &vec![b'x'; 64 << 20]]);
    let cancelled = conn.send_for(&big, Duration::from_millis(300));
    assert_eq!(
        cancelled, None,
        "64 MiB cannot be written to a sleeping server"
    );
    assert_eq!(conn.send(&cmd(&["GET", "k"])), Ok(bulk("v")));
    assert_eq!(
        admin.read_reply().ok(),
        Some(RespValue::Simple("OK".into()))
    );
    assert_eq!(server.cmd(&["EXISTS", "big"]), RespValue::Int(0));
}

/// Returns once `server` no longer answers (a `PING` gets no reply within
/// 50 ms), so that what is written next waits.
fn asleep(server: &RedisServer) {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut probe = server.connect().expect("probe connection");
    probe
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("probe timeout");
    loop {
        assert!(Instant::now() < deadline, "the server never fell asleep");
        if probe.cmd(&["PING"]).is_err() {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Through `redis+sentinel://`: calls go to the master; after it is
/// killed and the replica promoted, calls fail for a while (never hang),
/// then reach the new master: an `XADD` lands there. With no sentinel
/// reachable, a call fails saying so for each sentinel.
pub fn a_connection_through_sentinels_follows_the_master<C: Conn>() {
    let mut set = crate::SentinelSet::start();
    let mut conn = C::connect_with(&set.url(), quick(Duration::from_secs(2))).expect("connect");
    let fields = [("k", "v")];
    conn.xadd("s", &fields, &XAddOptions::default())
        .expect("XADD");
    let old = set.kill_master();
    let new = set.wait_for_promotion(old);
    let deadline = Instant::now() + Duration::from_secs(15);
    let id = loop {
        match conn.xadd("s", &fields, &XAddOptions::default()) {
            Ok(id) => break id,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "never reached the new master: {e}"
                );
                thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let on_new = set.node(new).cmd(&["XRANGE", "s", "-", "+"]);
    let ids: Vec<&str> = on_new
        .as_array()
        .expect("XRANGE")
        .iter()
        .filter_map(|e| e.as_array()?.first()?.as_str())
        .collect();
    assert!(ids.contains(&id.to_string().as_str()), "{ids:?} lacks {id}");
    for sentinel in set.sentinels() {
        sentinel.kill();
    }
    // The connection to the master is still up: calls go on.
    assert_eq!(conn.send(&cmd(&["PING"])), Ok(Value::Simple("PONG".into())));
    let url = set.url();
    match C::connect_with(&url, quick(Duration::from_secs(2))) {
        Err(Error::Connection(why)) => {
            assert!(why.contains("no sentinel named the master"), "{why}");
            assert_eq!(why.matches("127.0.0.1:").count(), 3, "{why}");
        }
        other => panic!("expected a connection error naming the sentinels, got {other:?}"),
    }
}

/// The Redis Cluster (3 primaries, 1 replica each) every cluster test of
/// this test binary shares: started by the first (about 2 s), locked for
/// each test's duration. A node a failed test left down is started again
/// first, so each test finds the cluster whole.
fn shared_cluster() -> MutexGuard<'static, ClusterSet> {
    static CLUSTER: OnceLock<Mutex<ClusterSet>> = OnceLock::new();
    let mut cluster = CLUSTER
        .get_or_init(|| Mutex::new(ClusterSet::start()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    for port in cluster.ports() {
        if !cluster.node(port).is_running() {
            cluster.restart(port);
        }
    }
    cluster
}

/// A name no other test (of this binary, or of another run on the shared
/// cluster) uses: `prefix` and a unique suffix.
fn unique(prefix: &str) -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

/// The ids of the entries of `stream` on the node on `port`.
fn entry_ids(cluster: &ClusterSet, port: u16, stream: &str) -> Vec<String> {
    let reply = cluster.node(port).cmd(&["XRANGE", stream, "-", "+"]);
    reply
        .as_array()
        .unwrap_or_else(|| panic!("XRANGE {stream} on {port}: {reply:?}"))
        .iter()
        .filter_map(|e| Some(e.as_array()?.first()?.as_str()?.to_owned()))
        .collect()
}

/// The ids of the connections named `name` on the node on `port`
/// (`CLIENT LIST`).
fn client_ids(cluster: &ClusterSet, port: u16, name: &str) -> Vec<String> {
    let reply = cluster.node(port).cmd(&["CLIENT", "LIST"]);
    let list = reply
        .as_str()
        .unwrap_or_else(|| panic!("CLIENT LIST on {port}: {reply:?}"));
    let named = format!(" name={name} ");
    list.lines()
        .filter(|line| line.contains(&named))
        .filter_map(|line| Some(line.split(' ').next()?.to_owned()))
        .collect()
}

/// Calls until one succeeds (each failure within `bound`, never a hang),
/// for at most 15 s.
fn until_ok<T: fmt::Debug>(bound: Duration, mut call: impl FnMut() -> Result<T, Error>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let started = Instant::now();
        let result = call();
        let took = started.elapsed();
        assert!(took < bound, "a call took {took:?}: {result:?}");
        match result {
            Ok(value) => return value,
            Err(e) => {
                assert!(Instant::now() < deadline, "still failing after 15 s: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// A sharded stream produced through a cluster URL: each partition key's
/// entries all land in one shard (in order), entries without a key go to
/// the shards in turn, and the shards spread over more than one primary,
/// each entry on its shard's primary.
pub fn a_sharded_stream_spreads_over_the_cluster_and_keeps_each_key_on_its_shard<C: Conn>() {
    let cluster = shared_cluster();
    let mut conn = C::connect_with(&cluster.url(), quick(Duration::from_secs(2))).expect("connect");
    let stream = ShardedStream::new(unique("sharded"), 8).expect("a sharded stream");
    let options = XAddOptions::default();
    let mut by_key: std::collections::BTreeMap<String, (usize, Vec<String>)> = Default::default();
    for round in 0..3 {
        for customer in 0..10 {
            let key = format!("customer-{customer}");
            let (shard, id) = conn
                .xadd_sharded(
                    &stream,
                    Some(&key),
                    &[("round", &round.to_string())],
                    &options,
                )
                .expect("XADD to a shard");
            let entry = by_key.entry(key).or_insert((shard, Vec::new()));
            assert_eq!(entry.0, shard, "a key changed shards");
            entry.1.push(id.to_string());
        }
    }
    let turns: Vec<usize> = (0..16)
        .map(|_| {
            conn.xadd_sharded(&stream, None, &[("k", "v")], &options)
                .expect("XADD in turn")
                .0
        })
        .collect();
    assert_eq!(turns, (0..16).map(|i| i % 8).collect::<Vec<_>>());
    let mut owners = std::collections::BTreeSet::new();
    for shard in 0..stream.shards() {
        let key = String::from_utf8_lossy(stream.key(shard)).into_owned();
        let owner = cluster.primary_for_key(&key);
        owners.insert(owner);
        let ids = entry_ids(&cluster, owner, &key);
        assert_eq!(
            ids.len(),
            2 + by_key.values().filter(|(s, _)| *s == shard).count() * 3,
            "shard {shard} ({key}) on {owner}"
        );
        for (s, key_ids) in by_key.values() {
            if *s == shard {
                let positions: Vec<usize> = key_ids
                    .iter()
                    .map(|id| {
                        ids.iter()
                            .position(|x| x == id)
                            .expect("the entry is there")
                    })
                    .collect();
                assert!(positions.windows(2).all(|w| w[0] < w[1]), "out of order");
            }
        }
    }
    assert!(owners.len() >= 2, "8 shards on one primary: {owners:?}");
}

/// Through `redis+cluster://`: an `XADD` to a stream in each primary's
/// slots lands on that primary, each node over one connection kept from
/// call to call (the same `CLIENT LIST` id on every node after 5 rounds);
/// keys in two slots are refused before anything is sent; with no seed
/// reachable, connecting fails naming each.
pub fn a_cluster_connection_sends_each_key_to_its_primary_over_one_connection_per_node<C: Conn>() {
    let cluster = shared_cluster();
    let name = unique("xgroup-cluster-conn");
    let url = format!("{}?client_name={name}", cluster.url());
    let mut conn = C::connect_with(&url, quick(Duration::from_secs(2))).expect("connect");
    let prefix = unique("s");
    let streams: Vec<(String, u16)> = cluster
        .primary_ports()
        .into_iter()
        .map(|port| {
            let stream = (0..)
                .map(|i| format!("{prefix}:{i}"))
                .find(|s| cluster.primary_for_slot(key_slot(s.as_bytes())) == port)
                .expect("a key in every primary's slots");
            (stream, port)
        })
        .collect();
    assert_eq!(streams.len(), 3, "{streams:?}");
    let mut added: Vec<Vec<String>> = vec![Vec::new(); streams.len()];
    let mut first_connections = Vec::new();
    for round in 0..5 {
        for (i, (stream, _)) in streams.iter().enumerate() {
            let round = round.to_string();
            let id = conn
                .xadd(stream, &[("round", &round)], &XAddOptions::default())
                .unwrap_or_else(|e| panic!("XADD {stream}: {e}"));
            added[i].push(id.to_string());
        }
        let connections: Vec<Vec<String>> = streams
            .iter()
            .map(|(_, port)| client_ids(&cluster, *port, &name))
            .collect();
        if round == 0 {
            for (ids, (_, port)) in connections.iter().zip(&streams) {
                assert_eq!(ids.len(), 1, "connections to {port}: {ids:?}");
            }
            first_connections = connections;
        } else {
            assert_eq!(connections, first_connections, "after round {round}");
        }
    }
    for ((stream, port), ids) in streams.iter().zip(&added) {
        assert_eq!(
            &entry_ids(&cluster, *port, stream),
            ids,
            "{stream} on {port}"
        );
    }
    // Two slots in one call: refused, nothing sent, the connections kept.
    let (a, b) = (&streams[0].0, &streams[1].0);
    match conn.send(&cmd(&["DEL", a, b])) {
        Err(Error::Config(e)) => {
            for key in [a, b] {
                let slot = key_slot(key.as_bytes());
                assert!(e.reason.contains(&format!("slot {slot}")), "{e}");
            }
        }
        other => panic!("DEL of keys in two slots: {other:?}"),
    }
    assert_eq!(
        cluster.node(streams[0].1).cmd(&["EXISTS", a]),
        RespValue::Int(1)
    );
    for ((_, port), ids) in streams.iter().zip(&first_connections) {
        assert_eq!(&client_ids(&cluster, *port, &name), ids);
    }
    match C::connect_with(
        "redis+cluster://127.0.0.1:1,127.0.0.1:2",
        quick(Duration::from_secs(2)),
    ) {
        Err(Error::Connection(why)) => {
            assert!(why.contains("no cluster node gave the slot map"), "{why}");
            assert_eq!(why.matches("127.0.0.1:").count(), 2, "{why}");
        }
        other => panic!("expected a connection error naming the seeds, got {other:?}"),
    }
}

/// Through `redis+cluster://`, a stream's slot moved to another primary
/// while in use: with its keys moved and the move not finished, the next
/// `XADD` is redirected (`ASK`) and lands on the new owner; once the move
/// is finished, the next is (`MOVED`) too.
pub fn a_cluster_connection_follows_a_slot_migrated_mid_way<C: Conn>() {
    let cluster = shared_cluster();
    let mut conn = C::connect_with(&cluster.url(), quick(Duration::from_secs(2))).expect("connect");
    let stream = unique("migrating");
    let slot = key_slot(stream.as_bytes());
    let fields = [("k", "v")];
    let first = conn
        .xadd(&stream, &fields, &XAddOptions::default())
        .expect("XADD");
    let from = cluster.primary_for_slot(slot);
    let to = cluster
        .primary_ports()
        .into_iter()
        .find(|&port| port != from)
        .expect("another primary");
    let migration = cluster.begin_migration(slot, to);
    while migration.move_keys(100) > 0 {}
    let asked = conn
        .xadd(&stream, &fields, &XAddOptions::default())
        .expect("XADD (ASK)");
    migration.finish();
    let moved = conn
        .xadd(&stream, &fields, &XAddOptions::default())
        .expect("XADD (MOVED)");
    let expected: Vec<String> = [first, asked, moved]
        .iter()
        .map(|id| id.to_string())
        .collect();
    assert_eq!(entry_ids(&cluster, to, &stream), expected);
    let left = cluster
        .node(from)
        .cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]);
    assert_eq!(
        left,
        RespValue::Int(0),
        "keys of slot {slot} left on {from}"
    );
}

/// Through `redis+cluster://`, the primary of a stream's slot killed: calls
/// fail (each within the timeouts, never hanging) until its replica is
/// promoted, then an `XADD` lands on it. The node is started again after.
pub fn a_cluster_connection_follows_a_failover<C: Conn>() {
    let mut cluster = shared_cluster();
    let (connect, io) = (Duration::from_secs(2), Duration::from_secs(2));
    let options = ConnectionOptions::default()
        .connect_timeout(connect)
        .io_timeout(io);
    let mut conn = C::connect_with(&cluster.url(), options).expect("connect");
    let stream = unique("failover");
    let fields = [("k", "v")];
    conn.xadd(&stream, &fields, &XAddOptions::default())
        .expect("XADD");
    let old = cluster.primary_for_key(&stream);
    cluster.kill(old);
    let bound = connect + io + Duration::from_secs(1);
    let started = Instant::now();
    let down = conn.xadd(&stream, &fields, &XAddOptions::default());
    assert!(matches!(down, Err(Error::Connection(_))), "{down:?}");
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());
    let new = cluster.wait_for_promotion(old);
    let id = until_ok(bound, || {
        conn.xadd(&stream, &fields, &XAddOptions::default())
    });
    assert!(
        entry_ids(&cluster, new, &stream).contains(&id.to_string()),
        "{id} is not on the promoted node {new}"
    );
    cluster.restart(old);
}

/// Instantiates every `Connection` test for an adapter's [`Conn`] type;
/// with `, cancel` also those that drop a call's future (its type then
/// implements [`Cancel`]).
#[macro_export]
macro_rules! adapter_connection_tests {
    ($conn:ty) => {
        $crate::adapter_connection_tests!(@each $conn;
            a_call_after_a_server_restart_reconnects_with_the_same_login_and_database,
            calls_fail_while_the_server_is_down_and_succeed_once_it_is_back,
            a_timed_out_call_never_hands_its_reply_to_the_next_call,
            a_paused_server_times_out_within_the_io_timeout_and_the_connection_recovers,
            zero_timeouts_are_a_config_error,
            passwords_never_show_in_errors_or_debug_output,
            xadd_without_mkstream_on_a_missing_stream_speaks_of_nomkstream,
            a_connection_through_sentinels_follows_the_master,
            a_cluster_connection_sends_each_key_to_its_primary_over_one_connection_per_node,
            a_sharded_stream_spreads_over_the_cluster_and_keeps_each_key_on_its_shard,
            a_cluster_connection_follows_a_slot_migrated_mid_way,
            a_cluster_connection_follows_a_failover);
        $crate::adapter_connection_tests!(@tls $conn;
            a_connection_over_tls_works_and_reconnects_after_a_restart,
            a_connection_over_mutual_tls_as_an_acl_user_over_resp3,
            tls_handshake_failures_are_typed_errors,
            bad_tls_options_are_config_errors_when_built,
            key_material_never_shows_in_errors_or_debug_output);
    };
    (@tls $conn:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::tls_connection::$name::<$conn>();
            }
        )*
    };
    ($conn:ty, cancel) => {
        $crate::adapter_connection_tests!($conn);
        $crate::adapter_connection_tests!(@each $conn;
            a_cancelled_blocking_call_never_hands_its_reply_to_the_next_call,
            a_call_cancelled_while_the_server_is_paused_never_hands_its_reply_to_the_next_call,
            a_call_cancelled_while_writing_leaves_the_next_call_working);
    };
    (@each $conn:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::connection::$name::<$conn>();
            }
        )*
    };
}
