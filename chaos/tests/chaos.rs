//! The chaos test: nothing acknowledged by the server is lost, whatever
//! happens to the workers, the server or the network.
//!
//! 1. Builds the `worker` example of the three adapters (`$CARGO build`).
//! 2. Starts a server (AOF, `appendfsync always`) and a [`FaultProxy`] in
//!    front of it. Workers connect through the proxy; the producer and the
//!    checks connect directly.
//! 3. A producer thread adds 100,000 entries in small pipelined batches
//!    at a steady rate. An entry counts as produced once its `XADD` reply
//!    (the id) arrived; an `XADD` whose fate is unknown is added again.
//! 4. Two workers of each adapter run at any time; each handled message is a
//!    line `<stream> <id> <attempt>` on their stdout, printed before its ack.
//! 5. Faults at seeded random moments: `kill -9` of a worker (restarted under
//!    the same or a new name), server crash and restart on the same data,
//!    cut of every proxied connection, a worker stalled (`SIGSTOP`) past
//!    `claim_min_idle`. After each, the time until a worker first handles an
//!    entry added after the fault is the time to resume.
//! 6. Then: wait until every produced id was printed and nothing is pending,
//!    stop the workers with SIGTERM (they must exit 0), and check.
//!
//! The same runs over TLS ([`chaos_over_tls`]), shorter: the server also
//! serves TLS (certificates made by the testkit), the proxy sits in front
//! of its TLS port (it forwards TLS bytes as they are, and cuts them as it
//! cuts any), and the workers connect with `rediss://` and `--tls-ca-cert`;
//! the producer and the checks stay on the plaintext port.
//!
//! And through Sentinel ([`chaos_through_sentinel`]): a master, a replica
//! and three sentinels; the workers connect with `redis+sentinel://`
//! (no proxy), and the faults are worker kills, stalls and two failovers
//! (the master killed, the replica promoted, the old master back as a
//! replica and in sync). The producer follows the master through the
//! sentinels and counts an entry as produced once the replica confirmed
//! it (`WAIT 1`): a failover may lose what the master had not passed on,
//! and that is the server's loss, not the consumers'.
//!
//! And on a Redis Cluster ([`chaos_on_a_cluster`]): 3 primaries with a
//! replica each; the workers connect with `redis+cluster://` (no proxy),
//! and the faults are a worker kill, a stall, the primary of the stream's
//! slot killed (its replica promoted, the old primary back as a replica)
//! and the stream's slot migrated live to another primary. The producer
//! writes to the slot's primary (asked of the cluster again after every
//! refusal: `MOVED`, `ASK`, `CLUSTERDOWN`) and counts an entry once its
//! replica confirmed it (`WAIT 1`).
//!
//! And on a sharded stream in a Redis Cluster
//! ([`chaos_on_a_sharded_cluster`]): the same 6 nodes, the stream `chaos`
//! in 4 shards (`{chaos:0}` to `{chaos:3}`, each its own hash tag; they
//! must be on at least two primaries, else the first of `chaos-1`,
//! `chaos-2`... whose shards are is used), every worker reading every
//! shard (`--stream chaos --shards 4`). The producer sends each batch to
//! one shard, in turn, on the primary of that shard's slot (asked again
//! after every refusal or broken connection), and counts an entry once the
//! replica confirmed it. The faults are a worker kill, a stall, the primary
//! of one shard killed (its replica promoted, the old primary back as a
//! replica) and another shard's slot migrated live to another primary. An
//! entry is its shard key and its id (two shards may hold the same id);
//! nothing may be pending on any shard at the end, each asked on its
//! primary then; a fault's time to resume is until the first entry added
//! after it is handled, on any shard, and a failover's or migration's also
//! until one of the shard it hit is (both within the same bound).
//!
//! The tests take turns, never run at once.
//!
//! `XGROUP_CHAOS_SEED` overrides the seed of the fault schedule;
//! `XGROUP_CHAOS_KEEP=1` keeps the temporary directory with the workers'
//! stderr (`RUST_LOG`, default `warn`, is passed on to them);
//! `XGROUP_CHAOS_RELEASE=1` builds the workers in release mode and
//! `XGROUP_CHAOS_JOBS` sets the build's `-j` (default 2).

use std::collections::{hash_map, BTreeMap, HashMap, HashSet, VecDeque};
use std::env;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xgroup_core::shard_key;
use xgroup_testkit::tls::TlsServer;
use xgroup_testkit::{
    encode_command, ClusterSet, FaultProxy, RedisServer, RespConnection, RespValue, SentinelSet,
};

/// The stream of the runs on one stream, and the name of the sharded
/// stream of the sharded run (if its shards spread over the primaries).
const STREAM: &str = "chaos";
const GROUP: &str = "g";

/// `XADD`s per pipelined batch.
const PRODUCE_BATCH: usize = 20;
/// The producer gives up (and the test fails) past this.
const PRODUCE_DEADLINE: Duration = Duration::from_secs(150);

const ADAPTERS: [&str; 3] = ["tokio", "async-std", "blocking"];
const WORKERS_PER_ADAPTER: usize = 2;
const WORKERS: usize = ADAPTERS.len() * WORKERS_PER_ADAPTER;
const COUNT: u64 = 50;
const BLOCK_MS: u64 = 500;
const CLAIM_INTERVAL_MS: u64 = 500;
const CLAIM_MIN_IDLE_MS: u64 = 2000;

/// How long a stalled worker stays stopped: past `claim_min_idle`, so its
/// entries are claimed by the others meanwhile.
const STALL: Duration = Duration::from_secs(3);
/// Faults happen from this offset from the start of production (until the
/// run's `faults_until`).
const FAULTS_FROM: Duration = Duration::from_secs(5);

/// Longest time from a fault until a worker first handles an entry added
/// after it. The slowest case is a server restart: the server is down for
/// at most 1.5 s plus its restart (about 1 s, AOF loading included), and a
/// worker's reconnect backoff (default 100 ms doubling, at most 10 s) may
/// make it wait up to 10 s more before it tries again; then one read (block
/// 0.5 s). That is 1.5 + 1 + 10 + 0.5 = 13 s; 15 s leaves some slack for this
/// loaded 2-core machine. Worker kills and stalls need no failover to
/// resume (the other workers read new entries; a killed victim's entries
/// are claimed once its heartbeat key expires, 5 s x 3 misses, or by its
/// successor under the same name after a 7.5 s watch; a stalled one keeps
/// them), and a cut only costs reconnects.
const RESUME_BOUND: Duration = Duration::from_secs(15);
/// Bounded wait, after production, for every id to be handled and nothing
/// pending.
const QUIET_TIMEOUT: Duration = Duration::from_secs(60);
/// Workers must exit within this after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

const DEFAULT_SEED: u64 = 0x00c4_a05e_ed01;

/// Kinds of faults and how many of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fault {
    WorkerKill,
    ServerRestart,
    ProxyCut,
    Stall,
    /// The master killed; the sentinels promote the replica; the old master
    /// comes back as a replica and syncs (Sentinel runs). In a cluster: the
    /// primary of the stream's slot killed, its replica promoted, the old
    /// primary back as a replica (of one shard's slot, on a sharded
    /// stream).
    Failover,
    /// The stream's slot migrated live to another primary (cluster runs; on
    /// a sharded stream, another shard's slot than a failover's).
    SlotMigration,
}

/// One chaos run: how much is produced, over how long, and which faults.
#[derive(Debug)]
struct Run {
    /// Entries the producer must get acknowledged (ids returned by `XADD`).
    messages: usize,
    /// The producer spreads them over this long.
    produce_time: Duration,
    /// Faults happen between [`FAULTS_FROM`] and this offset from the start
    /// of production.
    faults_until: Duration,
    /// Kinds of faults and how many of each.
    faults: [(Fault, usize); 4],
    /// Whether the workers connect over TLS.
    tls: bool,
    /// Whether the server is a Sentinel-monitored master and replica.
    sentinel: bool,
    /// Whether the servers are a Redis Cluster (3 primaries, a replica
    /// each).
    cluster: bool,
    /// The stream is a sharded stream of this many shards (`None`: the one
    /// stream [`STREAM`]).
    shards: Option<usize>,
}

/// The main run, in plaintext.
static PLAINTEXT: Run = Run {
    messages: 100_000,
    produce_time: Duration::from_secs(70),
    faults_until: Duration::from_secs(62),
    faults: [
        (Fault::WorkerKill, 4),
        (Fault::ServerRestart, 3),
        (Fault::ProxyCut, 4),
        (Fault::Stall, 3),
    ],
    tls: false,
    sentinel: false,
    cluster: false,
    shards: None,
};

/// The same over TLS, shorter (CI's time is short): every kind of fault
/// once.
static OVER_TLS: Run = Run {
    messages: 20_000,
    produce_time: Duration::from_secs(20),
    faults_until: Duration::from_secs(17),
    faults: [
        (Fault::WorkerKill, 1),
        (Fault::ServerRestart, 1),
        (Fault::ProxyCut, 1),
        (Fault::Stall, 1),
    ],
    tls: true,
    sentinel: false,
    cluster: false,
    shards: None,
};

/// Through Sentinel: two failovers, a worker kill and a stall.
static THROUGH_SENTINEL: Run = Run {
    messages: 20_000,
    produce_time: Duration::from_secs(20),
    faults_until: Duration::from_secs(17),
    faults: [
        (Fault::WorkerKill, 1),
        (Fault::Failover, 2),
        (Fault::ProxyCut, 0),
        (Fault::Stall, 1),
    ],
    tls: false,
    sentinel: true,
    cluster: false,
    shards: None,
};

/// On a Redis Cluster: the primary of the stream's slot killed and its
/// replica promoted, the slot migrated live to another primary, a worker
/// kill and a stall.
static ON_A_CLUSTER: Run = Run {
    messages: 20_000,
    produce_time: Duration::from_secs(20),
    faults_until: Duration::from_secs(17),
    faults: [
        (Fault::WorkerKill, 1),
        (Fault::Failover, 1),
        (Fault::SlotMigration, 1),
        (Fault::Stall, 1),
    ],
    tls: false,
    sentinel: false,
    cluster: true,
    shards: None,
};

/// On a Redis Cluster, a sharded stream of 4 shards spread over the
/// primaries: one shard's primary killed and its replica promoted, another
/// shard's slot migrated live, a worker kill and a stall.
static ON_A_SHARDED_CLUSTER: Run = Run {
    messages: 20_000,
    produce_time: Duration::from_secs(20),
    faults_until: Duration::from_secs(17),
    faults: [
        (Fault::WorkerKill, 1),
        (Fault::Failover, 1),
        (Fault::SlotMigration, 1),
        (Fault::Stall, 1),
    ],
    tls: false,
    sentinel: false,
    cluster: true,
    shards: Some(4),
};

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::WorkerKill => "worker_kill",
            Fault::ServerRestart => "server_restart",
            Fault::ProxyCut => "proxy_cut",
            Fault::Stall => "stall",
            Fault::Failover => "failover",
            Fault::SlotMigration => "slot_migration",
        }
    }
}

/// splitmix64: a tiny seeded PRNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// An entry: its stream key (a shard's key, on a sharded stream) and its id.
/// Two shards may hold the same id: an id alone names no entry.
type Entry = (String, String);

/// The stream keys of a run: the one stream, or every shard of a sharded
/// stream.
#[derive(Debug, Clone)]
struct Streams {
    /// The workers' `--stream`: the stream's key, or the sharded stream's
    /// name.
    name: String,
    /// The workers' `--shards`, on a sharded stream.
    shards: Option<usize>,
    /// Every key: the stream's, or each shard's in order.
    keys: Vec<String>,
}

impl Streams {
    fn new(name: &str, shards: Option<usize>) -> Streams {
        let keys = match shards {
            None => vec![name.to_owned()],
            Some(n) => (0..n)
                .map(|i| String::from_utf8_lossy(&shard_key(name.as_bytes(), i)).into_owned())
                .collect(),
        };
        Streams {
            name: name.to_owned(),
            shards,
            keys,
        }
    }

    /// The workers' flags naming the streams.
    fn args(&self) -> Vec<String> {
        let mut args = vec!["--stream".to_owned(), self.name.clone()];
        if let Some(n) = self.shards {
            args.push("--shards".to_owned());
            args.push(n.to_string());
        }
        args
    }
}

/// The sharded stream of `shards` shards the sharded cluster run uses:
/// [`STREAM`] if its shards are on at least two primaries, else the first
/// of `chaos-1`, `chaos-2`... whose shards are.
fn spread_streams(set: &ClusterSet, shards: usize) -> Streams {
    let names = std::iter::once(STREAM.to_owned()).chain((1..100).map(|i| format!("{STREAM}-{i}")));
    for name in names {
        let streams = Streams::new(&name, Some(shards));
        let primaries: HashSet<u16> = streams
            .keys
            .iter()
            .map(|key| set.primary_for_key(key))
            .collect();
        if primaries.len() >= 2 {
            return streams;
        }
    }
    panic!("no name found whose {shards} shards are on two primaries or more");
}

// ---------------------------------------------------------------------------
// Building the workers

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the chaos crate lives in the workspace")
        .to_path_buf()
}

fn target_dir(workspace: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// Builds each adapter's `worker` example and copies it to
/// `dir/worker-<adapter>` (they share the output name, so one at a time).
fn build_workers(dir: &Path) -> HashMap<&'static str, PathBuf> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = workspace_dir();
    let target = target_dir(&workspace);
    let release = env::var_os("XGROUP_CHAOS_RELEASE").is_some_and(|v| !v.is_empty());
    let jobs = env::var("XGROUP_CHAOS_JOBS").unwrap_or_else(|_| "2".into());
    let profile = if release { "release" } else { "debug" };
    let mut bins = HashMap::new();
    for adapter in ADAPTERS {
        let started = Instant::now();
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&workspace).args([
            "build",
            "-j",
            &jobs,
            "-p",
            &format!("xgroup-{adapter}"),
            "--example",
            "worker",
        ]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("cannot run {cargo:?} build: {e}"));
        assert!(
            status.success(),
            "building the {adapter} worker failed: {status}"
        );
        let built = target.join(profile).join("examples").join("worker");
        let copy = dir.join(format!("worker-{adapter}"));
        fs::copy(&built, &copy).unwrap_or_else(|e| {
            panic!("cannot copy {} to {}: {e}", built.display(), copy.display())
        });
        eprintln!(
            "chaos: built worker-{adapter} ({profile}) in {}",
            secs(started.elapsed())
        );
        bins.insert(adapter, copy);
    }
    bins
}

// ---------------------------------------------------------------------------
// What the workers print

#[derive(Default)]
struct Seen {
    /// The run's stream keys: a line naming another is malformed.
    keys: HashSet<String>,
    /// Times each entry was printed, by any worker.
    counts: HashMap<Entry, u32>,
    lines: u64,
    malformed: Vec<String>,
    max_attempt: u64,
    /// Lines of second or later deliveries.
    redelivered: u64,
    /// Faults waiting for their time to resume: (fault index, when, and
    /// when as Unix milliseconds).
    watchers: Vec<(usize, Instant, u64)>,
    /// Time to resume of each fault, once known.
    resumes: HashMap<usize, Duration>,
    /// On a sharded stream, failovers and migrations waiting for their time
    /// to resume on the shard they hit: (fault index, the shard's key, when,
    /// and when as Unix milliseconds).
    shard_watchers: Vec<(usize, String, Instant, u64)>,
    /// Time to resume on the shard it hit of each of those, once known.
    shard_resumes: HashMap<usize, Duration>,
}

impl Seen {
    fn record(&mut self, line: &str) {
        self.lines += 1;
        let parts: Vec<&str> = line.split_whitespace().collect();
        let parsed = match parts.as_slice() {
            [stream, id, attempt] if self.keys.contains(*stream) => id
                .split_once('-')
                .and_then(|(ms, _)| ms.parse::<u64>().ok())
                .zip(attempt.parse::<u64>().ok())
                .map(|(ms, attempt)| (stream, id, ms, attempt)),
            _ => None,
        };
        let Some((stream, id, id_ms, attempt)) = parsed else {
            self.malformed.push(line.to_owned());
            return;
        };
        self.max_attempt = self.max_attempt.max(attempt);
        if attempt > 1 {
            self.redelivered += 1;
        }
        let count = self
            .counts
            .entry(((*stream).to_owned(), (*id).to_owned()))
            .or_insert(0);
        *count += 1;
        // Time to resume: the first entry handled (on any stream) that was
        // added after the fault (its id's milliseconds are later), so that
        // batches already read before the fault and printed just after it do
        // not count.
        if *count == 1 {
            let now = Instant::now();
            let resumes = &mut self.resumes;
            self.watchers.retain(|&(fault, at, at_ms)| {
                if id_ms > at_ms {
                    resumes.insert(fault, now.saturating_duration_since(at));
                    false
                } else {
                    true
                }
            });
            let shard_resumes = &mut self.shard_resumes;
            self.shard_watchers.retain(|(fault, key, at, at_ms)| {
                if key == stream && id_ms > *at_ms {
                    shard_resumes.insert(*fault, now.saturating_duration_since(*at));
                    false
                } else {
                    true
                }
            });
        }
    }
}

// ---------------------------------------------------------------------------
// Worker processes

struct Worker {
    adapter: &'static str,
    name: String,
    child: Child,
    reader: Option<JoinHandle<()>>,
    stderr: PathBuf,
}

impl Worker {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

/// Every worker process ever started; all are killed on drop (panics too).
struct Workers {
    bins: HashMap<&'static str, PathBuf>,
    dir: PathBuf,
    url: String,
    /// The flags naming the streams (`--stream`, `--shards`).
    stream_args: Vec<String>,
    /// More flags for every worker (the TLS files).
    extra_args: Vec<String>,
    seen: Arc<Mutex<Seen>>,
    live: Vec<Worker>,
    gone: Vec<Worker>,
    restarts: usize,
}

impl Workers {
    fn spawn(&self, adapter: &'static str, name: String) -> Worker {
        let stderr_path = self.dir.join(format!("{name}.stderr"));
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .expect("worker stderr file");
        let count = COUNT.to_string();
        let block = BLOCK_MS.to_string();
        let interval = CLAIM_INTERVAL_MS.to_string();
        let idle = CLAIM_MIN_IDLE_MS.to_string();
        let mut child = Command::new(&self.bins[adapter])
            .args(["--url", &self.url])
            .args(&self.stream_args)
            .args([
                "--group",
                GROUP,
                "--consumer",
                &name,
                "--count",
                &count,
                "--block-ms",
                &block,
                "--claim-interval-ms",
                &interval,
                "--claim-min-idle-ms",
                &idle,
            ])
            .args(&self.extra_args)
            .env(
                "RUST_LOG",
                env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start worker {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let seen = Arc::clone(&self.seen);
        let reader = thread::Builder::new()
            .name(format!("read-{name}"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    match line {
                        Ok(line) => lock(&seen).record(&line),
                        Err(_) => break,
                    }
                }
            })
            .expect("spawn a reader thread");
        Worker {
            adapter,
            name,
            child,
            reader: Some(reader),
            stderr: stderr_path,
        }
    }

    /// `kill -9` of live worker `i`, then a new one of the same adapter under
    /// the same name or a new one.
    fn kill_and_restart(&mut self, i: usize, same_name: bool) -> String {
        let mut old = self.live.remove(i);
        let _ = old.child.kill();
        let _ = old.child.wait();
        let name = if same_name {
            old.name.clone()
        } else {
            self.restarts += 1;
            format!("{}-r{}", old.adapter, self.restarts)
        };
        let report = format!("{} (pid {}) -> {name}", old.name, old.pid());
        let adapter = old.adapter;
        self.gone.push(old);
        let new = self.spawn(adapter, name);
        self.live.push(new);
        report
    }

    fn stderr_tails(&self) -> String {
        let mut out = String::new();
        for w in self.live.iter().chain(&self.gone) {
            let text = fs::read_to_string(&w.stderr).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(8)..].join("\n    ");
            let _ = writeln!(out, "  {} stderr:\n    {tail}", w.name);
        }
        out
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for w in self.live.iter_mut().chain(self.gone.iter_mut()) {
            // SIGKILL also ends a stopped process.
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
    }
}

fn signal(pid: &str, sig: &str) {
    let status = Command::new("kill")
        .args([sig, pid])
        .status()
        .unwrap_or_else(|e| panic!("cannot run kill {sig} {pid}: {e}"));
    assert!(status.success(), "kill {sig} {pid} failed: {status}");
}

// ---------------------------------------------------------------------------
// The producer

struct Produced {
    /// Entries whose `XADD` reply arrived (and, through Sentinel or on a
    /// cluster, that the replica confirmed): stream key and id.
    entries: Vec<Entry>,
    /// `XADD`s sent again because their fate was unknown (or refused).
    resent: u64,
    /// Problems met, and how often (connect errors, refused `XADD`s...).
    errors: BTreeMap<String, u64>,
}

/// Wall-clock milliseconds, as in stream ids (the server shares the clock).
fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Where the producer writes: one server, or the master the sentinels name
/// (asked again after every broken connection), or the primary of a key's
/// slot.
#[derive(Debug, Clone)]
enum Upstream {
    Server(SocketAddr),
    Sentinels(Vec<SocketAddr>),
    /// The cluster's nodes: the primary of the key's slot is asked for.
    Cluster(Vec<SocketAddr>),
}

impl Upstream {
    /// The server to write `key` to.
    fn master(&self, key: &str) -> Result<SocketAddr, String> {
        let sentinels = match self {
            Upstream::Server(addr) => return Ok(*addr),
            Upstream::Sentinels(sentinels) => sentinels,
            Upstream::Cluster(nodes) => return slot_owner(nodes, key),
        };
        for sentinel in sentinels {
            let Ok(mut c) = RespConnection::connect(*sentinel) else {
                continue;
            };
            let reply = c.cmd(&[
                "SENTINEL",
                "GET-MASTER-ADDR-BY-NAME",
                SentinelSet::MASTER_NAME,
            ]);
            let port = reply
                .ok()
                .and_then(|r| r.as_array()?.get(1)?.as_str()?.parse::<u16>().ok());
            if let Some(port) = port {
                return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
            }
        }
        Err("no sentinel named the master".into())
    }
}

/// The primary serving `key`'s slot, as the first node that answers
/// `CLUSTER SLOTS` says.
fn slot_owner(nodes: &[SocketAddr], key: &str) -> Result<SocketAddr, String> {
    for node in nodes {
        let Ok(mut c) = RespConnection::connect(*node) else {
            continue;
        };
        let slot = c
            .cmd(&["CLUSTER", "KEYSLOT", key])
            .ok()
            .and_then(|r| r.as_int());
        let Some(slot) = slot else {
            continue;
        };
        let Ok(RespValue::Array(ranges)) = c.cmd(&["CLUSTER", "SLOTS"]) else {
            continue;
        };
        for range in &ranges {
            let Some([start, end, primary, ..]) = range.as_array() else {
                continue;
            };
            let (Some(start), Some(end)) = (start.as_int(), end.as_int()) else {
                continue;
            };
            let port = primary
                .as_array()
                .and_then(|p| p.get(1)?.as_int())
                .and_then(|p| u16::try_from(p).ok());
            if (start..=end).contains(&slot) {
                if let Some(port) = port {
                    return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
                }
            }
        }
    }
    Err(format!("no cluster node named the primary of {key}"))
}

/// Adds the run's `messages` entries at a steady rate, retrying through
/// server restarts and failovers. Each pipelined batch goes to one of
/// `keys`, in turn, on the server that takes that key's writes (asked
/// again after a broken connection or a refusal). Sequence numbers whose
/// `XADD` failed, got no reply or (through Sentinel or on a cluster) was
/// not confirmed by the replica are added again (with a new id, in a later
/// batch, maybe to another key).
fn produce(upstream: Upstream, keys: &[String], stop: &AtomicBool, run: &Run) -> Produced {
    let started = Instant::now();
    let per_message = run.produce_time.as_secs_f64() / run.messages as f64;
    let mut out = Produced {
        entries: Vec::with_capacity(run.messages),
        resent: 0,
        errors: BTreeMap::new(),
    };
    let mut retry: VecDeque<u64> = VecDeque::new();
    let mut next_seq: u64 = 0;
    // Where each key's writes go, once asked; the connections, by server
    // (keys on one server share one).
    let mut owners: HashMap<&str, SocketAddr> = HashMap::new();
    let mut conns: HashMap<SocketAddr, RespConnection> = HashMap::new();
    let mut turn = 0usize;
    while out.entries.len() < run.messages {
        if stop.load(Ordering::SeqCst) || started.elapsed() > PRODUCE_DEADLINE {
            break;
        }
        let due = started + Duration::from_secs_f64(out.entries.len() as f64 * per_message);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        let key = keys[turn % keys.len()].as_str();
        turn += 1;
        let addr = match owners.get(key) {
            Some(addr) => Ok(*addr),
            None => upstream.master(key),
        };
        let addr = match addr {
            Ok(addr) => addr,
            Err(e) => {
                *out.errors.entry(format!("connect: {e}")).or_default() += 1;
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let c = match conns.entry(addr) {
            hash_map::Entry::Occupied(c) => c.into_mut(),
            hash_map::Entry::Vacant(slot) => match RespConnection::connect(addr) {
                Ok(c) => {
                    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                    slot.insert(c)
                }
                Err(e) => {
                    *out.errors.entry(format!("connect: {e}")).or_default() += 1;
                    owners.remove(key);
                    thread::sleep(Duration::from_millis(100));
                    continue;
                }
            },
        };
        owners.insert(key, addr);
        let want = PRODUCE_BATCH.min(run.messages - out.entries.len());
        let mut batch = Vec::with_capacity(want);
        while batch.len() < want {
            batch.push(retry.pop_front().unwrap_or_else(|| {
                next_seq += 1;
                next_seq
            }));
        }
        let mut bytes = Vec::new();
        let ts = unix_millis().to_string();
        for seq in &batch {
            let seq = seq.to_string();
            bytes.extend(encode_command(&[
                "XADD", key, "*", "seq", &seq, "src", "chaos", "ts", &ts,
            ]));
        }
        let mut sent = c.stream().write_all(&bytes);
        let mut broken = false;
        let mut refused = false;
        let before = out.entries.len();
        let mut landed = Vec::new();
        for (i, seq) in batch.iter().enumerate() {
            let reply = match sent {
                Ok(()) => c.read_reply(),
                Err(e) => Err(e),
            };
            match reply {
                Ok(RespValue::Bulk(id)) => {
                    let id = String::from_utf8_lossy(&id).into_owned();
                    out.entries.push((key.to_owned(), id));
                    landed.push(*seq);
                }
                Ok(other) => {
                    // Refused (e.g. -LOADING, -MOVED): not added; add it
                    // again.
                    *out.errors
                        .entry(format!("XADD answered {other:?}"))
                        .or_default() += 1;
                    refused = true;
                    retry.push_back(*seq);
                    out.resent += 1;
                }
                Err(e) => {
                    // Fate unknown from here on: add the rest again.
                    *out.errors.entry(format!("XADD: {e}")).or_default() += 1;
                    for seq in &batch[i..] {
                        retry.push_back(*seq);
                        out.resent += 1;
                    }
                    broken = true;
                    break;
                }
            }
            sent = Ok(());
        }
        // Through Sentinel or on a cluster an entry counts once the replica
        // has it: what a killed master had not passed on is lost by the
        // server.
        if (run.sentinel || run.cluster) && !landed.is_empty() {
            let confirmed =
                !broken && matches!(c.cmd(&["WAIT", "1", "1000"]), Ok(RespValue::Int(n)) if n >= 1);
            if !confirmed {
                // Fate unknown: added again, these entries not counted.
                out.entries.truncate(before);
                *out.errors
                    .entry("XADD not confirmed by the replica".into())
                    .or_default() += landed.len() as u64;
                out.resent += landed.len() as u64;
                retry.extend(landed);
                refused = true;
            }
        }
        // Through Sentinel or on a cluster a refusal (READONLY: the node was
        // demoted; MOVED, ASK, CLUSTERDOWN) or an unconfirmed write sends the
        // producer to ask again where the key's writes go.
        if (run.sentinel || run.cluster) && refused {
            broken = true;
        }
        if broken {
            conns.remove(&addr);
            owners.remove(key);
        }
        if broken || refused {
            thread::sleep(Duration::from_millis(100));
        }
    }
    out
}

/// Sets the flag on drop, so that the producer stops if the test panics.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------
// Checks

/// Pending entries of the group on each key (`XPENDING key g`, asked of
/// the server that serves the key now), `None` for a key whose server
/// cannot be asked right now.
fn pending_counts(servers: &Servers, keys: &[String]) -> Vec<Option<i64>> {
    keys.iter()
        .map(|key| {
            let reply = servers
                .server_for(key)
                .try_cmd(&["XPENDING", key, GROUP])
                .ok()?;
            reply.as_array()?.first()?.as_int()
        })
        .collect()
}

/// Whether every key was asked and has nothing pending.
fn none_pending(counts: &[Option<i64>]) -> bool {
    counts.iter().all(|&n| n == Some(0))
}

/// The first pending entries of each key (with its server, on a cluster).
fn pending_detail(servers: &Servers, keys: &[String]) -> String {
    let mut out = String::new();
    for key in keys {
        let server = servers.server_for(key);
        let detail = match server.try_cmd(&["XPENDING", key, GROUP, "-", "+", "10"]) {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("<XPENDING failed: {e}>"),
        };
        if keys.len() == 1 {
            return detail;
        }
        let _ = write!(out, "\n  {key} on {}: {detail}", server.port());
    }
    out
}

/// The produced entries no worker printed.
fn missing_entries(produced: &[Entry], seen: &Seen) -> Vec<Entry> {
    produced
        .iter()
        .filter(|entry| !seen.counts.contains_key(*entry))
        .cloned()
        .collect()
}

fn wait_exit(child: &mut Child, until: Instant) -> Option<ExitStatus> {
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= until {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The chaos tests take turns: each loads the machine on its own.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn chaos() {
    let _turn = lock(&ONE_AT_A_TIME);
    run_chaos(&PLAINTEXT);
}

/// The same workers over TLS, through the proxy, under every kind of fault.
#[test]
fn chaos_over_tls() {
    let _turn = lock(&ONE_AT_A_TIME);
    if let Some(why) = xgroup_testkit::tls::unsupported() {
        eprintln!("chaos: skipped over TLS: this server binary has no TLS ({why})");
        return;
    }
    run_chaos(&OVER_TLS);
}

/// The same workers through Sentinel, under two failovers.
#[test]
fn chaos_through_sentinel() {
    let _turn = lock(&ONE_AT_A_TIME);
    run_chaos(&THROUGH_SENTINEL);
}

/// The same workers on a Redis Cluster, under a failover and a live slot
/// migration.
#[test]
fn chaos_on_a_cluster() {
    let _turn = lock(&ONE_AT_A_TIME);
    run_chaos(&ON_A_CLUSTER);
}

/// The same workers reading every shard of a sharded stream spread over a
/// Redis Cluster's primaries, under a failover of one shard's primary and
/// a live migration of another shard's slot.
#[test]
fn chaos_on_a_sharded_cluster() {
    let _turn = lock(&ONE_AT_A_TIME);
    run_chaos(&ON_A_SHARDED_CLUSTER);
}

/// The servers of a run: one behind the fault proxy, or a Sentinel set.
enum Servers {
    Single {
        server: Box<RedisServer>,
        proxy: FaultProxy,
    },
    Sentinel(SentinelSet),
    Cluster(ClusterSet),
}

impl Servers {
    /// The server the checks ask about `key`: the master now (in a
    /// cluster, the primary of the key's slot).
    fn server_for(&self, key: &str) -> &RedisServer {
        match self {
            Servers::Single { server, .. } => server,
            Servers::Sentinel(set) => set.master(),
            Servers::Cluster(set) => set.node(set.primary_for_key(key)),
        }
    }
}

fn run_chaos(run: &'static Run) {
    let test_started = Instant::now();
    let seed = match env::var("XGROUP_CHAOS_SEED") {
        Ok(s) if !s.trim().is_empty() => s
            .trim()
            .parse::<u64>()
            .unwrap_or_else(|e| panic!("XGROUP_CHAOS_SEED={s:?}: {e}")),
        _ => DEFAULT_SEED,
    };
    eprintln!("chaos: seed={seed} (set XGROUP_CHAOS_SEED to change)");
    let mut rng = Rng(seed);

    let tmp = env::temp_dir().join(format!("xgroup-chaos-{}", std::process::id()));
    fs::create_dir_all(&tmp).expect("create the chaos temp dir");
    let _cleanup = RemoveDir(tmp.clone());
    let bins = build_workers(&tmp);

    let mut servers = if run.cluster {
        Servers::Cluster(ClusterSet::start())
    } else if run.sentinel {
        Servers::Sentinel(SentinelSet::start())
    } else {
        let mut builder = RedisServer::builder().aof(true).appendfsync_always(true);
        if run.tls {
            builder = builder.tls(TlsServer::default());
        }
        let server = builder.start();
        // The workers' way in: the TLS port when the run is over TLS.
        let workers_port = match server.tls_port() {
            Some(port) => port,
            None => server.addr().port(),
        };
        let proxy = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], workers_port)));
        Servers::Single {
            server: Box::new(server),
            proxy,
        }
    };
    let (url, extra_args, upstream) = match &servers {
        Servers::Sentinel(set) => {
            let sentinels = set.sentinel_addrs();
            (set.url(), Vec::new(), Upstream::Sentinels(sentinels))
        }
        Servers::Cluster(set) => {
            let nodes = set
                .ports()
                .into_iter()
                .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
                .collect();
            (set.url(), Vec::new(), Upstream::Cluster(nodes))
        }
        Servers::Single { server, proxy } if run.tls => {
            let ca = server.certs().ca_cert().display().to_string();
            let url = format!("rediss://{}", proxy.addr());
            let upstream = Upstream::Server(server.addr());
            (url, vec!["--tls-ca-cert".to_owned(), ca], upstream)
        }
        Servers::Single { server, proxy } => {
            (proxy.url(), Vec::new(), Upstream::Server(server.addr()))
        }
    };
    // The streams: the one stream, or a sharded stream whose shards are on
    // at least two primaries.
    let streams = match (&servers, run.shards) {
        (_, None) => Streams::new(STREAM, None),
        (Servers::Cluster(set), Some(n)) => spread_streams(set, n),
        (_, Some(n)) => Streams::new(STREAM, Some(n)),
    };
    let keys = streams.keys.clone();
    let first = servers.server_for(&keys[0]);
    eprintln!(
        "chaos: {} at {}, workers at {url}; {run:?}",
        first.version(),
        first.addr(),
    );
    if let (Servers::Cluster(set), Some(_)) = (&servers, run.shards) {
        let placed: Vec<String> = keys
            .iter()
            .map(|key| {
                format!(
                    "{key} (slot {}) on {}",
                    set.key_slot(key),
                    set.primary_for_key(key)
                )
            })
            .collect();
        eprintln!("chaos: shards: {}", placed.join(", "));
    }
    for key in &keys {
        let created = servers
            .server_for(key)
            .cmd(&["XGROUP", "CREATE", key, GROUP, "0", "MKSTREAM"]);
        assert!(!created.is_error(), "XGROUP CREATE {key}: {created:?}");
    }

    let seen = Arc::new(Mutex::new(Seen {
        keys: keys.iter().cloned().collect(),
        ..Seen::default()
    }));
    let mut workers = Workers {
        bins,
        dir: tmp.clone(),
        url,
        stream_args: streams.args(),
        extra_args,
        seen: Arc::clone(&seen),
        live: Vec::new(),
        gone: Vec::new(),
        restarts: 0,
    };
    for adapter in ADAPTERS {
        for k in 0..WORKERS_PER_ADAPTER {
            let w = workers.spawn(adapter, format!("{adapter}-{k}"));
            workers.live.push(w);
        }
    }

    // The fault schedule: kinds shuffled, one per slot, at a random moment
    // in the first 60% of its slot.
    let mut kinds: Vec<Fault> = run
        .faults
        .iter()
        .flat_map(|&(kind, n)| std::iter::repeat(kind).take(n))
        .collect();
    for i in (1..kinds.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        kinds.swap(i, j);
    }
    let slot = (run.faults_until - FAULTS_FROM).as_secs_f64() / kinds.len() as f64;
    let schedule: Vec<(Duration, Fault)> = kinds
        .iter()
        .enumerate()
        .map(|(i, &kind)| {
            let at = FAULTS_FROM.as_secs_f64() + slot * (i as f64 + 0.6 * rng.unit());
            (Duration::from_secs_f64(at), kind)
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let _stop_producer = StopOnDrop(Arc::clone(&stop));
    let produce_started = Instant::now();
    let producer = {
        let stop = Arc::clone(&stop);
        let keys = keys.clone();
        thread::Builder::new()
            .name("producer".into())
            .spawn(move || produce(upstream, &keys, &stop, run))
            .expect("spawn the producer")
    };

    // Inject the faults.
    let mut injected: Vec<(Fault, Duration, String)> = Vec::new();
    // On a sharded stream, the shards a failover or a migration already
    // hit: each hits another.
    let mut hit: Vec<usize> = Vec::new();
    // And (fault index, the key of the shard it hit), whose time to resume
    // on that shard is watched too.
    let mut shard_hits: Vec<(usize, String)> = Vec::new();
    for (at, kind) in &schedule {
        let due = produce_started + *at;
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        let index = injected.len();
        let t0 = Instant::now();
        let t0_ms = unix_millis();
        lock(&seen).watchers.push((index, t0, t0_ms));
        let detail = match kind {
            Fault::WorkerKill => {
                let i = rng.below(workers.live.len() as u64) as usize;
                let same = rng.below(2) == 0;
                workers.kill_and_restart(i, same)
            }
            Fault::ServerRestart => {
                let Servers::Single { server, .. } = &mut servers else {
                    unreachable!("no server restarts in Sentinel runs")
                };
                let down = Duration::from_millis(200 + rng.below(1300));
                server.kill();
                thread::sleep(down);
                server.restart();
                format!(
                    "down {}ms, back after {}",
                    down.as_millis(),
                    secs(t0.elapsed())
                )
            }
            Fault::ProxyCut => {
                let Servers::Single { proxy, .. } = &servers else {
                    unreachable!("no proxy in Sentinel runs")
                };
                format!("{} connections cut", proxy.cut_all())
            }
            Fault::Failover if run.cluster => {
                let Servers::Cluster(set) = &mut servers else {
                    unreachable!("a cluster run has a cluster")
                };
                let key = &keys[pick_shard(&mut rng, keys.len(), &mut hit)];
                if keys.len() > 1 {
                    lock(&seen)
                        .shard_watchers
                        .push((index, key.clone(), t0, t0_ms));
                    shard_hits.push((index, key.clone()));
                }
                let old = set.primary_for_key(key);
                set.kill(old);
                let new = set.wait_for_promotion(old);
                let promoted = t0.elapsed();
                set.restart(old);
                format!(
                    "primary {old} of {key} killed, {new} promoted after {}, {old} back as a \
                     replica after {}",
                    secs(promoted),
                    secs(t0.elapsed())
                )
            }
            Fault::SlotMigration => {
                let Servers::Cluster(set) = &mut servers else {
                    unreachable!("slot migrations only in cluster runs")
                };
                let key = &keys[pick_shard(&mut rng, keys.len(), &mut hit)];
                if keys.len() > 1 {
                    lock(&seen)
                        .shard_watchers
                        .push((index, key.clone(), t0, t0_ms));
                    shard_hits.push((index, key.clone()));
                }
                let slot = set.key_slot(key);
                let from = set.primary_for_slot(slot);
                let to = set
                    .primary_ports()
                    .into_iter()
                    .find(|&p| p != from)
                    .expect("another primary");
                set.migrate_slot(slot, to);
                format!(
                    "slot {slot} of {key} moved from {from} to {to} in {}",
                    secs(t0.elapsed())
                )
            }
            Fault::Failover => {
                let Servers::Sentinel(set) = &mut servers else {
                    unreachable!("failovers only in Sentinel runs")
                };
                let old = set.kill_master();
                let new = set.wait_for_promotion(old);
                let promoted = t0.elapsed();
                set.restart_node(old);
                set.wait_for_sync(old);
                format!(
                    "master {old} killed, {new} promoted after {}, {old} back in sync after {}",
                    secs(promoted),
                    secs(t0.elapsed())
                )
            }
            Fault::Stall => {
                let i = rng.below(workers.live.len() as u64) as usize;
                let (pid, name) = (workers.live[i].pid(), workers.live[i].name.clone());
                signal(&pid, "-STOP");
                thread::sleep(STALL);
                signal(&pid, "-CONT");
                format!("{name} (pid {pid}) stopped for {}", secs(STALL))
            }
        };
        eprintln!(
            "chaos: t={} fault #{index} {} {detail}",
            secs(t0 - produce_started),
            kind.name()
        );
        injected.push((*kind, t0 - produce_started, detail));
        let exited = workers
            .live
            .iter_mut()
            .find_map(|w| Some((w.name.clone(), w.child.try_wait().ok()??)));
        if let Some((name, status)) = exited {
            panic!(
                "worker {name} exited on its own with {status}\n{}",
                workers.stderr_tails()
            );
        }
    }

    let produced = producer.join().expect("the producer panicked");
    let production = produce_started.elapsed();
    assert_eq!(
        produced.entries.len(),
        run.messages,
        "the producer got only {} ids in {}; errors: {:?}",
        produced.entries.len(),
        secs(production),
        produced.errors
    );
    eprintln!(
        "chaos: produced {} in {} ({} XADDs sent again; errors: {:?})",
        produced.entries.len(),
        secs(production),
        produced.resent,
        produced.errors
    );
    let unique: HashSet<&Entry> = produced.entries.iter().collect();
    assert_eq!(
        unique.len(),
        produced.entries.len(),
        "XADD returned an id twice on one stream"
    );

    // Quiet period: every produced entry handled, nothing pending on any
    // stream.
    let quiet_started = Instant::now();
    loop {
        let missing = missing_entries(&produced.entries, &lock(&seen));
        let pending = pending_counts(&servers, &keys);
        if missing.is_empty() && none_pending(&pending) {
            break;
        }
        if quiet_started.elapsed() >= QUIET_TIMEOUT {
            panic!(
                "after {} of quiet: {} produced entries never printed (first: {:?}), \
                 XPENDING {:?}: {}\n{}\nfaults: {injected:#?}\n{}",
                secs(QUIET_TIMEOUT),
                missing.len(),
                &missing[..missing.len().min(10)],
                pending,
                pending_detail(&servers, &keys),
                missing_by_stream(&keys, &produced.entries, &missing),
                workers.stderr_tails()
            );
        }
        thread::sleep(Duration::from_millis(250));
    }
    eprintln!("chaos: quiet after {}", secs(quiet_started.elapsed()));

    // Graceful stop: SIGTERM, exit 0 within 30 s.
    for w in &workers.live {
        signal(&w.pid(), "-TERM");
    }
    let until = Instant::now() + EXIT_TIMEOUT;
    let mut bad_exits = Vec::new();
    for w in workers.live.iter_mut() {
        match wait_exit(&mut w.child, until) {
            Some(status) if status.success() => {}
            Some(status) => bad_exits.push(format!("{} exited with {status}", w.name)),
            None => bad_exits.push(format!(
                "{} still running {} after SIGTERM",
                w.name,
                secs(EXIT_TIMEOUT)
            )),
        }
    }
    assert!(
        bad_exits.is_empty(),
        "workers did not stop cleanly: {bad_exits:?}\n{}",
        workers.stderr_tails()
    );
    for w in workers.live.iter_mut().chain(workers.gone.iter_mut()) {
        if let Some(reader) = w.reader.take() {
            reader.join().expect("a reader thread panicked");
        }
    }

    // The checks.
    let seen = lock(&seen);
    let produced_set: HashSet<&Entry> = produced.entries.iter().collect();
    let lost = missing_entries(&produced.entries, &seen);
    let pending = pending_counts(&servers, &keys);
    let duplicates = seen.counts.values().filter(|&&n| n > 1).count();
    let extra = seen
        .counts
        .keys()
        .filter(|entry| !produced_set.contains(entry))
        .count();
    let faults = injected.len();
    // Duplicates come from messages in flight at a fault: a worker holds at
    // most one batch (max_in_flight_batches 1) of at most COUNT entries, and
    // each fault can make every live worker's batch be handled again, once
    // by a claimer and once by a replay: faults x workers x count x 2.
    let duplicate_bound = faults * WORKERS * COUNT as usize * 2;
    let mut resumes = Vec::new();
    let mut unresumed = Vec::new();
    for (i, (kind, at, detail)) in injected.iter().enumerate() {
        match seen.resumes.get(&i) {
            Some(d) => resumes.push((*d, i)),
            None => unresumed.push(format!("#{i} {} at {} ({detail})", kind.name(), secs(*at))),
        }
    }
    let worst = resumes.iter().max().copied();
    let mut by_kind = String::new();
    for (kind, _) in run.faults {
        let n = injected.iter().filter(|(k, _, _)| *k == kind).count();
        let worst_kind = resumes
            .iter()
            .filter(|(_, i)| injected[*i].0 == kind)
            .map(|(d, _)| *d)
            .max()
            .unwrap_or_default();
        let _ = write!(by_kind, " {}={n}/worst {}", kind.name(), secs(worst_kind));
    }
    eprintln!(
        "chaos: lines={} distinct={} extra(unknown-fate XADDs that landed)={extra} max_attempt={} redelivered={} \
         malformed={} faults:{by_kind}",
        seen.lines,
        seen.counts.len(),
        seen.max_attempt,
        seen.redelivered,
        seen.malformed.len()
    );
    if keys.len() > 1 {
        eprintln!(
            "chaos: by stream: {}",
            by_stream(&keys, &produced.entries, &seen, &pending)
        );
    }
    // On a sharded stream, a failover's or migration's time to resume on
    // the shard it hit (the other shards may go on meanwhile).
    let mut shard_resumes = Vec::new();
    let mut shard_unresumed = Vec::new();
    for (i, key) in &shard_hits {
        let (kind, at, detail) = &injected[*i];
        match seen.shard_resumes.get(i) {
            Some(d) => shard_resumes.push((*d, *i, key)),
            None => shard_unresumed.push(format!(
                "#{i} {} at {} on {key} ({detail})",
                kind.name(),
                secs(*at)
            )),
        }
    }
    if !shard_hits.is_empty() {
        let lines: Vec<String> = shard_resumes
            .iter()
            .map(|(d, i, key)| format!("#{i} {} {key} {}", injected[*i].0.name(), secs(*d)))
            .collect();
        eprintln!("chaos: resume on the shard hit: {}", lines.join(", "));
    }

    assert!(
        lost.is_empty(),
        "{} produced entries were never handled (first: {:?}){}\nfaults: {injected:#?}",
        lost.len(),
        &lost[..lost.len().min(10)],
        missing_by_stream(&keys, &produced.entries, &lost)
    );
    assert!(
        none_pending(&pending),
        "pending entries left ({pending:?}): {}",
        pending_detail(&servers, &keys)
    );
    assert!(
        seen.malformed.is_empty(),
        "malformed worker lines: {:?}",
        &seen.malformed[..seen.malformed.len().min(10)]
    );
    assert!(
        duplicates <= duplicate_bound,
        "{duplicates} entries handled more than once, more than {duplicate_bound} \
         ({faults} faults x {WORKERS} workers x count {COUNT} x 2)"
    );
    assert!(
        unresumed.is_empty(),
        "no new id was handled after these faults: {unresumed:?}"
    );
    assert!(
        shard_unresumed.is_empty(),
        "no new entry of the shard hit was handled after these faults: {shard_unresumed:?}"
    );
    if let Some((slowest, i, key)) = shard_resumes.iter().max() {
        assert!(
            *slowest <= RESUME_BOUND,
            "fault #{i} ({:?}) took {} to resume on {key}, more than {}",
            injected[*i],
            secs(*slowest),
            secs(RESUME_BOUND)
        );
    }
    let (worst, worst_index) = worst.expect("at least one fault");
    assert!(
        worst <= RESUME_BOUND,
        "fault #{worst_index} ({:?}) took {} to resume, more than {}",
        injected[worst_index],
        secs(worst),
        secs(RESUME_BOUND)
    );

    let summary_faults: Vec<String> = run
        .faults
        .iter()
        .map(|&(kind, _)| {
            let n = injected.iter().filter(|(k, _, _)| *k == kind).count();
            format!("{}:{n}", kind.name())
        })
        .collect();
    println!(
        "chaos: tls={} sentinel={} cluster={} messages={} faults={} lost={} \
         duplicates={duplicates} worst_resume={} seed={seed} elapsed={}",
        run.tls,
        run.sentinel,
        run.cluster,
        produced.entries.len(),
        summary_faults.join(","),
        lost.len(),
        secs(worst),
        secs(test_started.elapsed())
    );
}

/// A shard for a failover or a migration on a sharded stream: one at random
/// that no earlier one hit (any, once every shard was hit), noted in `hit`.
/// The one stream draws nothing (the fault schedule of a seed stays as it
/// was).
fn pick_shard(rng: &mut Rng, shards: usize, hit: &mut Vec<usize>) -> usize {
    if shards == 1 {
        return 0;
    }
    let fresh: Vec<usize> = (0..shards).filter(|i| !hit.contains(i)).collect();
    let shard = if fresh.is_empty() {
        rng.below(shards as u64) as usize
    } else {
        fresh[rng.below(fresh.len() as u64) as usize]
    };
    hit.push(shard);
    shard
}

/// On several streams, how many of `missing` each stream has (of how many
/// produced on it); nothing on one stream.
fn missing_by_stream(keys: &[String], produced: &[Entry], missing: &[Entry]) -> String {
    if keys.len() == 1 {
        return String::new();
    }
    let mut out = String::from("\nmissing by stream:");
    for key in keys {
        let of = produced.iter().filter(|(k, _)| k == key).count();
        let gone = missing.iter().filter(|(k, _)| k == key).count();
        let _ = write!(out, " {key}={gone}/{of}");
    }
    out
}

/// Each stream's produced entries, distinct entries handled and pending
/// count at the end.
fn by_stream(keys: &[String], produced: &[Entry], seen: &Seen, pending: &[Option<i64>]) -> String {
    let mut parts = Vec::new();
    for (key, pending) in keys.iter().zip(pending) {
        let of = produced.iter().filter(|(k, _)| k == key).count();
        let handled = seen.counts.keys().filter(|(k, _)| k == key).count();
        parts.push(format!(
            "{key} produced={of} handled={handled} pending={pending:?}"
        ));
    }
    parts.join(", ")
}

/// Removes a directory on drop, unless `XGROUP_CHAOS_KEEP` is set (to read
/// the workers' stderr, `<name>.stderr`, afterwards).
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        if env::var_os("XGROUP_CHAOS_KEEP").is_some_and(|v| !v.is_empty()) {
            eprintln!("chaos: kept {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}
