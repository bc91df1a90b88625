//! Consumer options, validated when built.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::cluster::{key_slot, ClusterTarget};
use crate::error::ConfigError;
use crate::id::GroupStart;
use crate::sentinel::SentinelTarget;
use crate::tls::TlsOptions;

/// How to log in and set up each new connection.
///
/// Its `Debug` output never shows the password:
///
/// ```
/// let opts = xgroup_core::ConnectOptions {
///     password: Some("hunter2".into()),
///     ..Default::default()
/// };
/// assert!(!format!("{opts:?}").contains("hunter2"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// ACL user name for `AUTH`/`HELLO AUTH` (`None`: the default user).
    pub username: Option<String>,
    /// Password; `None` sends no `AUTH`.
    pub password: Option<String>,
    /// Database index (`SELECT`), 0 by default.
    pub db: u32,
    /// Speak RESP3 (`HELLO 3`) instead of RESP2.
    pub resp3: bool,
    /// `CLIENT SETNAME` value; `None` names the connection after the
    /// consumer (spaces replaced, as Redis forbids them).
    pub client_name: Option<String>,
    /// Speak TLS, with these settings (`rediss://` sets the defaults);
    /// `None` for plain TCP. The adapters do the TLS; the core only carries
    /// the settings.
    pub tls: Option<TlsOptions>,
}

/// What happens to an entry that is dead-lettered (by the handler, or
/// because it was delivered more than `max_deliveries` times).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeadLetter {
    /// Write it to this stream (original fields, then `dlq_stream`, `dlq_id`,
    /// `dlq_group`, `dlq_consumer`, `dlq_deliveries`, `dlq_reason`) and ack
    /// the original in the same `MULTI`/`EXEC`: never lost, never both. In a
    /// cluster, give this key the stream's hash tag.
    Stream(Bytes),
    /// Acknowledge it and drop it (reported as an event).
    Drop,
    /// Leave it pending (reported as an event each time); it will be claimed
    /// and dead-lettered again.
    KeepPending,
}

/// Liveness keys and fast failover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Time between heartbeats, default 5 s.
    pub interval: Duration,
    /// Heartbeats a consumer may miss before it is taken for dead, default 3.
    pub allowed_missed: u32,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Stands in for a secret in `Debug` output.
        struct Redacted;
        impl fmt::Debug for Redacted {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("<redacted>")
            }
        }
        f.debug_struct("ConnectOptions")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| Redacted))
            .field("db", &self.db)
            .field("resp3", &self.resp3)
            .field("client_name", &self.client_name)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Heartbeat {
    /// How long a liveness key lives: interval × allowed misses.
    pub fn timeout(&self) -> Duration {
        self.interval.saturating_mul(self.allowed_missed)
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            interval: Duration::from_secs(5),
            allowed_missed: 3,
        }
    }
}

/// Validated options of a [`Consumer`](crate::Consumer).
///
/// Defaults follow the first reference consumer (block 5000 ms, claim
/// interval 30 s, claim min idle 60 s) but for `count`: 100 where it has 10
/// (see [`ConsumerConfigBuilder::count`]). The group (and the stream) are
/// created when missing, starting at `0` so nothing already in the stream is
/// skipped silently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerConfig {
    pub(crate) stream: Bytes,
    /// Every stream read, `stream` first (see
    /// [`ConsumerConfigBuilder::streams`]).
    pub(crate) streams: Vec<Bytes>,
    pub(crate) group: Bytes,
    pub(crate) consumer: Bytes,
    pub(crate) count: u64,
    pub(crate) block: Duration,
    pub(crate) claim_interval: Option<Duration>,
    pub(crate) claim_min_idle: Duration,
    pub(crate) auto_create_group: bool,
    pub(crate) group_start: GroupStart,
    pub(crate) make_stream: bool,
    pub(crate) replay_pending: bool,
    pub(crate) max_in_flight_batches: usize,
    pub(crate) reconnect_initial: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) reply_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) seed: Option<u64>,
    pub(crate) connect: ConnectOptions,
    pub(crate) retry_backoff: (Duration, Duration),
    pub(crate) max_deliveries: Option<u64>,
    pub(crate) dead_letter: Option<DeadLetter>,
    pub(crate) delete_on_ack: bool,
    pub(crate) heartbeat: Option<Heartbeat>,
    pub(crate) receive_interval: Option<Duration>,
    pub(crate) handler_timeout: Option<Duration>,
    pub(crate) separate_read_connection: bool,
    pub(crate) group_stats_interval: Option<Duration>,
    pub(crate) read_ahead: Option<ReadAhead>,
    pub(crate) sentinel: Option<SentinelTarget>,
    pub(crate) cluster: Option<ClusterTarget>,
    pub(crate) ordered: bool,
}

/// How far ahead of the handler new entries are read (see
/// [`ConsumerConfigBuilder::read_ahead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAhead {
    /// Entries read and not yet handed to the handler, at most.
    pub entries: usize,
    /// Their field and value bytes, at most (a read may pass it once).
    pub bytes: usize,
}

impl Default for ReadAhead {
    /// 1,000 entries or 16 MiB.
    fn default() -> Self {
        ReadAhead {
            entries: 1000,
            bytes: 16 << 20,
        }
    }
}

/// Builder for [`ConsumerConfig`]; see each method for the option it sets.
#[derive(Clone, Debug)]
pub struct ConsumerConfigBuilder {
    cfg: ConsumerConfig,
}

impl ConsumerConfig {
    /// Starts a builder for consumer `consumer` of group `group` on `stream`.
    pub fn builder(
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
    ) -> ConsumerConfigBuilder {
        ConsumerConfigBuilder {
            cfg: ConsumerConfig {
                stream: Bytes::copy_from_slice(stream.as_ref()),
                streams: vec![Bytes::copy_from_slice(stream.as_ref())],
                group: Bytes::copy_from_slice(group.as_ref()),
                consumer: Bytes::copy_from_slice(consumer.as_ref()),
                count: 100,
                block: Duration::from_millis(5000),
                claim_interval: Some(Duration::from_secs(30)),
                claim_min_idle: Duration::from_secs(60),
                auto_create_group: true,
                group_start: GroupStart::Beginning,
                make_stream: true,
                replay_pending: true,
                max_in_flight_batches: 1,
                reconnect_initial: Duration::from_millis(100),
                reconnect_max: Duration::from_secs(10),
                reply_timeout: Duration::from_secs(10),
                connect_timeout: Duration::from_secs(5),
                drain_timeout: Duration::from_secs(30),
                seed: None,
                connect: ConnectOptions::default(),
                retry_backoff: (Duration::from_secs(1), Duration::from_secs(60)),
                max_deliveries: None,
                dead_letter: None,
                delete_on_ack: false,
                heartbeat: Some(Heartbeat::default()),
                receive_interval: None,
                handler_timeout: Some(Duration::from_secs(300)),
                separate_read_connection: true,
                group_stats_interval: None,
                read_ahead: Some(ReadAhead::default()),
                sentinel: None,
                cluster: None,
                ordered: false,
            },
        }
    }

    /// Stream key (the first, with several streams).
    pub fn stream(&self) -> &Bytes {
        &self.stream
    }

    /// Whether the ordered mode is on ([`ConsumerConfigBuilder::ordered`]).
    pub fn ordered(&self) -> bool {
        self.ordered
    }

    /// Every stream key read, in the order given (one, unless
    /// [`ConsumerConfigBuilder::streams`] named several).
    pub fn streams(&self) -> &[Bytes] {
        &self.streams
    }

    /// The options for reading the `i`th stream alone: a
    /// [`MultiConsumer`](crate::MultiConsumer) runs one part per stream.
    /// Each part's random seed differs (its backoff's jitter); the parts
    /// share one heartbeat token.
    pub(crate) fn for_stream(&self, i: usize) -> ConsumerConfig {
        let stream = self.streams[i].clone();
        ConsumerConfig {
            stream: stream.clone(),
            streams: vec![stream],
            seed: self.seed.map(|s| s.wrapping_add(i as u64)),
            ..self.clone()
        }
    }
    /// Consumer group name.
    pub fn group(&self) -> &Bytes {
        &self.group
    }
    /// Consumer name within the group.
    pub fn consumer(&self) -> &Bytes {
        &self.consumer
    }
    /// Entries per read (`COUNT`).
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Longest wait of a blocking read (`BLOCK`).
    pub fn block(&self) -> Duration {
        self.block
    }
    /// Whether blocking reads of new entries go on a connection of their
    /// own (see [`ConsumerConfigBuilder::separate_read_connection`]): set,
    /// and not in polling mode.
    pub fn uses_read_connection(&self) -> bool {
        self.separate_read_connection && self.receive_interval.is_none()
    }
    /// Time between claim sweeps, `None` when claiming is off.
    pub fn claim_interval(&self) -> Option<Duration> {
        self.claim_interval
    }
    /// Minimum idle time of entries claimed from other consumers.
    pub fn claim_min_idle(&self) -> Duration {
        self.claim_min_idle
    }
    /// Batches handed out and not yet completed, at most.
    pub fn max_in_flight_batches(&self) -> usize {
        self.max_in_flight_batches
    }
    /// How long a reply may be late; adapters also bound socket writes by it.
    pub fn reply_timeout(&self) -> Duration {
        self.reply_timeout
    }
    /// How long an adapter may take to open a connection.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// Connection set-up options.
    pub fn connect_options(&self) -> &ConnectOptions {
        &self.connect
    }
    /// The sentinels that name the master to connect to, `None` when the
    /// adapter's own address is the server.
    pub fn sentinel(&self) -> Option<&SentinelTarget> {
        self.sentinel.as_ref()
    }
    /// The cluster whose primary of the stream's slot is connected to,
    /// `None` when the adapter's own address is the server.
    pub fn cluster(&self) -> Option<&ClusterTarget> {
        self.cluster.as_ref()
    }
    /// Heartbeat settings, `None` when off.
    pub fn heartbeat(&self) -> Option<Heartbeat> {
        self.heartbeat
    }
    /// Deliveries after which an entry is dead-lettered, and where it goes.
    pub fn max_deliveries(&self) -> Option<u64> {
        self.max_deliveries
    }
    /// What happens to dead-lettered entries.
    pub fn dead_letter(&self) -> Option<&DeadLetter> {
        self.dead_letter.as_ref()
    }
}

impl ConsumerConfigBuilder {
    /// Max entries per handler call and per `XREADGROUP`/`XAUTOCLAIM` call
    /// (`COUNT`; with read-ahead, reads of new entries ask for the
    /// read-ahead's room instead), default 100.
    ///
    /// The reference consumers' 10 made the per-batch costs (a handler call,
    /// an `XACK`, a hand-off to the handler's thread or task) the bottleneck
    /// while a backlog drains: at 10 the adapters drained about half as fast
    /// as at 1000, at 100 about as fast (see the README's Performance
    /// section). When the stream is nearly idle a batch holds what has
    /// arrived, so a larger `count` adds no latency; it bounds how many
    /// entries one handler call sees, and so how many are redelivered when
    /// it fails.
    pub fn count(mut self, count: u64) -> Self {
        self.cfg.count = count;
        self
    }
    /// Longest wait of a blocking read (`BLOCK`), default 5 s. Capped at run
    /// time so that no other deadline (claim sweep, shutdown) is overshot.
    pub fn block(mut self, block: Duration) -> Self {
        self.cfg.block = block;
        self
    }
    /// Time between claim sweeps, default 30 s. Without heartbeats a sweep
    /// is `XAUTOCLAIM`; with them it skips entries whose owner is alive (its
    /// heartbeat key is there), so a consumer's retry-after times and long
    /// handlers hold whatever the other consumers' `claim_min_idle`.
    pub fn claim_interval(mut self, interval: Duration) -> Self {
        self.cfg.claim_interval = Some(interval);
        self
    }
    /// Never claim other consumers' pending entries.
    pub fn no_claiming(mut self) -> Self {
        self.cfg.claim_interval = None;
        self
    }
    /// Minimum idle time of entries to claim, default 60 s (with heartbeats,
    /// only entries of consumers that are not alive are claimed).
    pub fn claim_min_idle(mut self, min_idle: Duration) -> Self {
        self.cfg.claim_min_idle = min_idle;
        self
    }
    /// Create the group when it is missing (default on). Off: a missing group
    /// stops the consumer with [`Error::GroupMissing`](crate::Error::GroupMissing).
    pub fn auto_create_group(mut self, on: bool) -> Self {
        self.cfg.auto_create_group = on;
        self
    }
    /// Where a newly created group starts, default `0` (everything).
    pub fn group_start(mut self, start: GroupStart) -> Self {
        self.cfg.group_start = start;
        self
    }
    /// Reads these streams instead of the builder's one: one consumer (one
    /// name in one group on each stream, one handler, one in-flight limit)
    /// over all of them. Each stream has its own replay of pending entries,
    /// claim sweep, heartbeat and connections; batches say which stream
    /// they came from ([`Batch::stream`](crate::Batch::stream)). The
    /// handler slots are shared fairly: a slot freed on one stream goes to
    /// the next stream with entries waiting, in turn.
    ///
    /// On a cluster each stream's connections go to the primary of its
    /// slot, so the streams of a [`ShardedStream`](crate::ShardedStream)
    /// are read from every primary that holds one.
    pub fn streams<I, S>(mut self, streams: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.cfg.streams = streams
            .into_iter()
            .map(|s| Bytes::copy_from_slice(s.as_ref()))
            .collect();
        if let Some(first) = self.cfg.streams.first() {
            self.cfg.stream = first.clone();
        }
        self
    }

    /// The ordered mode, default off: each stream is read by at most one
    /// live consumer of the group at a time, one batch at a time, so its
    /// entries are handled in order across processes (per key, with a
    /// [`ShardedStream`](crate::ShardedStream), whose keys each go to one
    /// shard). The streams are shared out among the consumers reading them
    /// in this mode, and shared out again when one joins, stops or dies
    /// (after its heartbeat timeout). Each batch carries the fencing token
    /// of its stream's lease ([`Batch::lease`](crate::Batch::lease)),
    /// which grows with every change of holder: writes elsewhere that
    /// carry it can refuse an older holder's. A retry holds back the
    /// entries after it; an entry that always fails needs
    /// [`max_deliveries`](Self::max_deliveries) to let the others pass.
    ///
    /// It needs heartbeats (the lease is renewed with them). Without it
    /// every consumer reads every stream, and entries of one stream may be
    /// handled at once by several consumers.
    pub fn ordered(mut self, on: bool) -> Self {
        self.cfg.ordered = on;
        self
    }

    /// Create the stream with the group (`MKSTREAM`), default on.
    pub fn make_stream(mut self, on: bool) -> Self {
        self.cfg.make_stream = on;
        self
    }
    /// Replay this consumer's own pending entries on every connection before
    /// reading new ones (default on).
    pub fn replay_pending(mut self, on: bool) -> Self {
        self.cfg.replay_pending = on;
        self
    }
    /// Batches handed out and not yet completed, at most (default 1). More
    /// lets the next read run while a handler works.
    pub fn max_in_flight_batches(mut self, n: usize) -> Self {
        self.cfg.max_in_flight_batches = n;
        self
    }
    /// First and longest delay between reconnection attempts (exponential
    /// backoff with jitter in between), default 100 ms and 10 s.
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.cfg.reconnect_initial = initial;
        self.cfg.reconnect_max = max;
        self
    }
    /// How long past its expected time a reply may be late before the
    /// connection is taken for dead, default 10 s.
    pub fn reply_timeout(mut self, timeout: Duration) -> Self {
        self.cfg.reply_timeout = timeout;
        self
    }
    /// How long adapters may take to open a connection, default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.cfg.connect_timeout = timeout;
        self
    }
    /// On shutdown, how long to wait for in-flight batches, default 30 s.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.cfg.drain_timeout = timeout;
        self
    }
    /// Seed of the reconnect jitter and of this instance's heartbeat token,
    /// so runs can be replayed. Without it both come from a per-process
    /// random seed (two processes must not share a token).
    pub fn seed(mut self, seed: u64) -> Self {
        self.cfg.seed = Some(seed);
        self
    }
    /// Backoff of [`Disposition::Retry`](crate::Disposition::Retry):
    /// `initial × 2^(attempt-1)`, at most `max`; default 1 s and 60 s.
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.cfg.retry_backoff = (initial, max);
        self
    }
    /// Dead-letter an entry once it was delivered `n` times without success
    /// (a retry asked on the `n`th attempt, or a delivery count above `n`),
    /// doing what `dead_letter` says. There is no default: say it.
    pub fn max_deliveries(mut self, n: u64, dead_letter: DeadLetter) -> Self {
        self.cfg.max_deliveries = Some(n);
        self.cfg.dead_letter = Some(dead_letter);
        self
    }
    /// What handler-requested dead letters do (also set by `max_deliveries`).
    /// Without it, they stay pending and are reported.
    pub fn dead_letter(mut self, dead_letter: DeadLetter) -> Self {
        self.cfg.dead_letter = Some(dead_letter);
        self
    }
    /// Delete entries from the stream when acknowledging them (`XACK`+`XDEL`
    /// in one `MULTI`/`EXEC`, or `XACKDEL` where the server has it).
    pub fn delete_on_ack(mut self, on: bool) -> Self {
        self.cfg.delete_on_ack = on;
        self
    }
    /// Heartbeats: interval and allowed misses (default 5 s and 3).
    pub fn heartbeat(mut self, interval: Duration, allowed_missed: u32) -> Self {
        self.cfg.heartbeat = Some(Heartbeat {
            interval,
            allowed_missed,
        });
        self
    }
    /// No heartbeats (and no fast failover of consumers that stop beating).
    pub fn no_heartbeat(mut self) -> Self {
        self.cfg.heartbeat = None;
        self
    }
    /// How long a handler may work on a batch before it is taken for hung
    /// (default 5 minutes): its entries' idle time is then no longer
    /// refreshed, so other consumers claim them after `claim_min_idle`, and
    /// the hang is reported. With heartbeats (others' sweeps skip a live
    /// consumer's entries) the consumer also releases them: they are handed
    /// to `<consumer>~xgroup-released`, a name that never beats, which the
    /// others take for dead (and remove from the group once nothing is
    /// pending for it). The handler may still finish: its acks are sent, its
    /// retries are not. Until then a long handler keeps its entries.
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.cfg.handler_timeout = Some(timeout);
        self
    }
    /// Never take a handler for hung: its entries stay with it however long
    /// it works.
    pub fn no_handler_timeout(mut self) -> Self {
        self.cfg.handler_timeout = None;
        self
    }
    /// Polling mode: reads without `BLOCK`; after an empty read, wait this
    /// long before the next.
    pub fn receive_interval(mut self, interval: Duration) -> Self {
        self.cfg.receive_interval = Some(interval);
        self
    }
    /// Whether blocking reads of new entries get a connection of their own
    /// (default `true`): acks, claims, heartbeats and dead letters then go
    /// on the other (control) connection and never wait behind a read's
    /// `BLOCK`, and a stop does not wait one out. With `false` the consumer
    /// uses one connection: an ack of a finished batch waits until the
    /// blocked read in front of it returns (up to `block`). Polling mode
    /// ([`receive_interval`](Self::receive_interval)) never blocks and uses
    /// one connection either way.
    pub fn separate_read_connection(mut self, separate: bool) -> Self {
        self.cfg.separate_read_connection = separate;
        self
    }
    /// Reads new entries up to this far ahead of the handler (default
    /// 1,000 entries or 16 MiB), so the server stays busy while handlers
    /// work; the handler still gets batches of at most `count`. A read asks
    /// for all the room left, once at least half the entries are free (so
    /// reads stay large while a backlog drains). Entries read ahead are this
    /// consumer's pending entries like any it holds: kept fresh, counted in
    /// `info()`, and left pending (for this consumer's next start or
    /// another's claim) by a stop.
    pub fn read_ahead(mut self, entries: usize, bytes: usize) -> Self {
        self.cfg.read_ahead = Some(ReadAhead { entries, bytes });
        self
    }
    /// No read-ahead: each read asks for `count` entries and is one batch,
    /// and no read goes out while every in-flight slot is taken.
    pub fn no_read_ahead(mut self) -> Self {
        self.cfg.read_ahead = None;
        self
    }
    /// Samples the group's pending count and lag (`XINFO GROUPS`, on the
    /// consumer's control connection) this often, for `info()` and the
    /// metrics gauges (off by default). A failed sample is a warning.
    pub fn sample_group_stats(mut self, interval: Duration) -> Self {
        self.cfg.group_stats_interval = Some(interval);
        self
    }
    /// Connect to the master these sentinels name, and follow it through
    /// failovers (a `redis+sentinel://` URL sets this). The data nodes'
    /// login and TLS are still [`connect_options`](Self::connect_options)'.
    pub fn sentinel(mut self, target: SentinelTarget) -> Self {
        self.cfg.sentinel = Some(target);
        self
    }
    /// Connect to the primary that serves the stream's hash slot in this
    /// Redis Cluster, and follow it through failovers and slot migrations
    /// (a `redis+cluster://` URL sets this). The nodes' login and TLS are
    /// [`connect_options`](Self::connect_options)'. Every key the consumer
    /// writes besides the stream (heartbeats, a dead-letter stream) must
    /// share the stream's slot: give them its hash tag.
    pub fn cluster(mut self, target: ClusterTarget) -> Self {
        self.cfg.cluster = Some(target);
        self
    }
    /// Connection set-up: credentials, database, protocol, client name,
    /// TLS. Replaces what the URL said (TLS included).
    pub fn connect_options(mut self, options: ConnectOptions) -> Self {
        self.cfg.connect = options;
        self
    }
    /// Speak TLS with these settings (what to trust, a client certificate,
    /// the name to verify). Needs a `rediss://` URL when the consumer was
    /// built from one (a `redis://` URL with TLS options is an
    /// `Error::Config`, so TLS is never silently off); with `builder_for`,
    /// this alone turns TLS on.
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.cfg.connect.tls = Some(options);
        self
    }

    /// Checks every option and returns the config, or the first bad option.
    pub fn build(self) -> Result<ConsumerConfig, ConfigError> {
        let c = self.cfg;
        for (option, value) in [
            ("stream", &c.stream),
            ("group", &c.group),
            ("consumer", &c.consumer),
        ] {
            if value.is_empty() {
                return Err(ConfigError::new(option, "must not be empty"));
            }
        }
        if c.streams.is_empty() {
            return Err(ConfigError::new("streams", "must name at least one stream"));
        }
        for (i, stream) in c.streams.iter().enumerate() {
            if stream.is_empty() {
                return Err(ConfigError::new(
                    "streams",
                    "a stream key must not be empty",
                ));
            }
            if c.streams[..i].contains(stream) {
                return Err(ConfigError::new(
                    "streams",
                    format!("{} is named twice", String::from_utf8_lossy(stream)),
                ));
            }
        }
        if c.count == 0 {
            return Err(ConfigError::new("count", "must be at least 1"));
        }
        if c.block.is_zero() {
            return Err(ConfigError::new(
                "block",
                "must be at least 1 ms (BLOCK 0 would wait forever and starve every timer)",
            ));
        }
        if c.block > Duration::from_secs(24 * 3600) {
            return Err(ConfigError::new("block", "must be at most 24 hours"));
        }
        if let Some(interval) = c.claim_interval {
            if interval < Duration::from_millis(1) {
                return Err(ConfigError::new("claim_interval", "must be at least 1 ms"));
            }
            if c.claim_min_idle < Duration::from_millis(1) {
                return Err(ConfigError::new(
                    "claim_min_idle",
                    "must be at least 1 ms when claiming is on (0 would steal entries other consumers are still working on)",
                ));
            }
        }
        if c.max_in_flight_batches == 0 {
            return Err(ConfigError::new(
                "max_in_flight_batches",
                "must be at least 1",
            ));
        }
        if let Some(s) = &c.sentinel {
            if s.sentinels.is_empty() || s.master_name.is_empty() {
                return Err(ConfigError::new(
                    "sentinel",
                    "needs at least one sentinel and the master's name",
                ));
            }
        }
        if let Some(cluster) = &c.cluster {
            if c.sentinel.is_some() {
                return Err(ConfigError::new(
                    "cluster",
                    "a consumer follows either sentinels or a cluster, not both",
                ));
            }
            if cluster.seeds.is_empty() {
                return Err(ConfigError::new("cluster", "needs at least one seed node"));
            }
            if c.connect.db != 0 {
                return Err(ConfigError::new("db", "a cluster has only database 0"));
            }
            if let Some(DeadLetter::Stream(key)) = &c.dead_letter {
                if let Some(stream) = c.streams.iter().find(|s| key_slot(key) != key_slot(s)) {
                    return Err(ConfigError::new(
                        "dead_letter",
                        format!(
                            "in a cluster the dead-letter stream must share the stream's hash slot \
                             ({} is in slot {}, the stream {} in slot {}): give it the stream's hash tag, \
                             e.g. {{{}}}:dead",
                            String::from_utf8_lossy(key),
                            key_slot(key),
                            String::from_utf8_lossy(stream),
                            key_slot(stream),
                            String::from_utf8_lossy(
                                crate::cluster::hash_tag(stream).unwrap_or(stream)
                            ),
                        ),
                    ));
                }
            }
        }
        if c.reconnect_initial.is_zero() || c.reconnect_max < c.reconnect_initial {
            return Err(ConfigError::new(
                "reconnect_backoff",
                "initial delay must be positive and at most the maximum delay",
            ));
        }
        for (option, value) in [
            ("reply_timeout", c.reply_timeout),
            ("connect_timeout", c.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(option, "must be positive"));
            }
        }
        if c.retry_backoff.0.is_zero() || c.retry_backoff.1 < c.retry_backoff.0 {
            return Err(ConfigError::new(
                "retry_backoff",
                "initial delay must be positive and at most the maximum delay",
            ));
        }
        if c.max_deliveries == Some(0) {
            return Err(ConfigError::new("max_deliveries", "must be at least 1"));
        }
        if let Some(DeadLetter::Stream(key)) = &c.dead_letter {
            if key.is_empty() {
                return Err(ConfigError::new(
                    "dead_letter",
                    "the stream key must not be empty",
                ));
            }
            if c.streams.contains(key) {
                return Err(ConfigError::new(
                    "dead_letter",
                    "the dead-letter stream must differ from the consumed stream",
                ));
            }
        }
        if let Some(hb) = c.heartbeat {
            if hb.interval < Duration::from_millis(10) {
                return Err(ConfigError::new(
                    "heartbeat",
                    "interval must be at least 10 ms",
                ));
            }
            if hb.allowed_missed == 0 {
                return Err(ConfigError::new(
                    "heartbeat",
                    "allowed misses must be at least 1",
                ));
            }
        }
        if c.streams.len() > 1 && c.read_ahead.is_none() {
            return Err(ConfigError::new(
                "read_ahead",
                "several streams need read-ahead: their one in-flight limit is shared by handing \
                 read-ahead entries out in turn (without it a stream's blocked read would hold a slot)",
            ));
        }
        if c.ordered && c.heartbeat.is_none() {
            return Err(ConfigError::new(
                "ordered",
                "the ordered mode needs heartbeats (its stream leases are renewed with them)",
            ));
        }
        if c.handler_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::new("handler_timeout", "must be positive"));
        }
        if c.read_ahead.is_some_and(|r| r.entries == 0 || r.bytes == 0) {
            return Err(ConfigError::new(
                "read_ahead",
                "entries and bytes must be positive",
            ));
        }
        if c.group_stats_interval
            .is_some_and(|i| i < Duration::from_millis(10))
        {
            return Err(ConfigError::new(
                "sample_group_stats",
                "must be at least 10 ms",
            ));
        }
        if c.receive_interval.is_some_and(|i| i.is_zero()) {
            return Err(ConfigError::new("receive_interval", "must be positive"));
        }
        if c.connect.username.is_some() && c.connect.password.is_none() {
            return Err(ConfigError::new("username", "a user name needs a password"));
        }
        if c.connect.db > i32::MAX as u32 {
            return Err(ConfigError::new("db", "out of range"));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_first_references() {
        let c = ConsumerConfig::builder("s", "g", "c").build().unwrap();
        // The one default that differs from the reference's 10 (see `count`).
        assert_eq!(c.count(), 100);
        assert_eq!(c.block(), Duration::from_millis(5000));
        assert_eq!(c.claim_interval(), Some(Duration::from_secs(30)));
        assert_eq!(c.claim_min_idle(), Duration::from_secs(60));
        assert_eq!(c.group_start, GroupStart::Beginning);
        assert_eq!(
            c.heartbeat(),
            Some(Heartbeat {
                interval: Duration::from_secs(5),
                allowed_missed: 3
            })
        );
        assert_eq!(c.max_deliveries(), None);
    }

    #[test]
    fn bad_options_are_named() {
        let err = |b: ConsumerConfigBuilder| b.build().unwrap_err().option;
        assert_eq!(err(ConsumerConfig::builder("", "g", "c")), "stream");
        assert_eq!(err(ConsumerConfig::builder("s", "", "c")), "group");
        assert_eq!(err(ConsumerConfig::builder("s", "g", "")), "consumer");
        let b = || ConsumerConfig::builder("s", "g", "c");
        assert_eq!(err(b().count(0)), "count");
        assert_eq!(err(b().block(Duration::ZERO)), "block");
        assert_eq!(err(b().claim_min_idle(Duration::ZERO)), "claim_min_idle");
        assert!(b()
            .claim_min_idle(Duration::ZERO)
            .no_claiming()
            .build()
            .is_ok());
        assert_eq!(err(b().max_in_flight_batches(0)), "max_in_flight_batches");
        assert_eq!(
            err(b().reconnect_backoff(Duration::from_secs(2), Duration::from_secs(1))),
            "reconnect_backoff"
        );
        let user_only = ConnectOptions {
            username: Some("u".into()),
            ..Default::default()
        };
        assert_eq!(err(b().connect_options(user_only)), "username");
        assert_eq!(
            err(b().max_deliveries(0, DeadLetter::Drop)),
            "max_deliveries"
        );
        assert_eq!(
            err(b().dead_letter(DeadLetter::Stream("s".into()))),
            "dead_letter"
        );
        assert_eq!(err(b().heartbeat(Duration::from_secs(1), 0)), "heartbeat");
        assert_eq!(
            err(b().receive_interval(Duration::ZERO)),
            "receive_interval"
        );
        assert_eq!(
            err(b().retry_backoff(Duration::ZERO, Duration::ZERO)),
            "retry_backoff"
        );
    }
}
