//! What the adapters' examples share: arguments, configuration, the worker's
//! decisions and every line they print. Each example keeps only what depends
//! on its runtime (spawning, sleeping, signals, awaiting), so `quickstart`,
//! `worker` and `throughput` take the same flags and print the same lines on
//! every adapter.
//!
//! - [`quickstart`]: the demo's orders, its tally and its report.
//! - [`worker`]: the black-box worker: flags, config, per-message decisions
//!   (with injected failures) and the `<stream> <id> <attempt>` lines.
//! - [`throughput`]: flags, the fill commands and the final rate line.
//! - [`StreamArgs`]: the streams `worker` and `throughput` read: `--stream`
//!   (repeatable) and `--shards`.
//! - [`TlsArgs`]: the TLS flags of all three (`--tls-ca-cert`, `--tls-cert`,
//!   `--tls-key`), used with `rediss://` URLs.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches};
use xgroup_core::{shard_key, ConsumerConfigBuilder, ShardedStream, TlsOptions};
use xgroup_driver::ConnectionOptions;

use crate::{RedisServer, RedisServerBuilder};

/// The TLS flags every example takes. TLS is on when the URL says
/// `rediss://`; these flags with a `redis://` URL are refused (by the
/// library, when the consumer or connection is built).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// CA bundle (PEM) that signed the server's certificate
    #[arg(long, value_name = "FILE")]
    pub tls_ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The TLS settings the flags give; `None` without any (a `rediss://`
    /// URL then verifies the server against the Mozilla roots).
    pub fn options(&self) -> Option<TlsOptions> {
        let mut tls = match (&self.tls_ca_cert, &self.tls_cert) {
            (None, None) => return None,
            (Some(ca), _) => TlsOptions::new().ca_cert_file(ca),
            (None, Some(_)) => TlsOptions::new(),
        };
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            tls = tls.client_cert_files(cert, key);
        }
        Some(tls)
    }

    /// Applies the flags to a consumer's options.
    pub fn configure(&self, c: ConsumerConfigBuilder) -> ConsumerConfigBuilder {
        with_tls(c, self.options())
    }

    /// A `Connection`'s options with the flags.
    pub fn connection(&self) -> ConnectionOptions {
        connection_options(self.options())
    }
}

/// The streams `worker` and `throughput` read: each `--stream` given (in
/// order), or with `--shards N` every shard of each, as the sharded stream
/// of that name in N shards (`{NAME:0}` to `{NAME:N-1}`, see
/// [`ShardedStream`]). [`keys`](Self::keys) lists them; the examples' shared
/// `configure` has the consumer read them all
/// ([`ConsumerConfigBuilder::streams`]).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StreamArgs {
    /// Stream to read; repeat to read several
    #[arg(long = "stream", value_name = "KEY", required = true)]
    pub streams: Vec<String>,
    /// Each --stream is a sharded stream of N shards: read every shard
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
}

impl StreamArgs {
    /// Every stream key read, in order: each `--stream`, or with
    /// `--shards N` its N shard keys.
    pub fn keys(&self) -> Vec<String> {
        match self.shards {
            None => self.streams.clone(),
            Some(n) => self
                .streams
                .iter()
                .flat_map(|name| {
                    (0..n).map(move |i| {
                        String::from_utf8_lossy(&shard_key(name.as_bytes(), i)).into_owned()
                    })
                })
                .collect(),
        }
    }

    /// The first key read: the stream a consumer's builder is given (its
    /// options then name them all).
    pub fn first_key(&self) -> String {
        self.keys().into_iter().next().unwrap_or_default()
    }

    /// Applies the streams to a consumer's options.
    pub fn configure(&self, c: ConsumerConfigBuilder) -> ConsumerConfigBuilder {
        c.streams(self.keys())
    }

    /// Refuses a `--shards` that makes no sharded stream of some `--stream`
    /// (a count out of 1 to 1024, an empty name), as a usage error of `cmd`.
    fn check(&self, cmd: &mut clap::Command) -> Result<(), clap::Error> {
        let Some(n) = self.shards else {
            return Ok(());
        };
        for name in &self.streams {
            if let Err(e) = ShardedStream::new(name, n) {
                return Err(cmd.error(
                    clap::error::ErrorKind::ValueValidation,
                    format!("--stream {name:?} --shards {n}: {e}"),
                ));
            }
        }
        Ok(())
    }
}

/// `c` with these TLS settings, if any.
pub fn with_tls(c: ConsumerConfigBuilder, tls: Option<TlsOptions>) -> ConsumerConfigBuilder {
    match tls {
        Some(tls) => c.tls(tls),
        None => c,
    }
}

/// A `Connection`'s options with these TLS settings, if any.
pub fn connection_options(tls: Option<TlsOptions>) -> ConnectionOptions {
    let options = ConnectionOptions::default();
    match tls {
        Some(tls) => options.tls(tls),
        None => options,
    }
}

/// Parses `args` (the first is the binary name) into `T`, with `about` as the
/// help's description.
fn parse_from<T: CommandFactory + FromArgMatches>(
    about: String,
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<(T, clap::Command), clap::Error> {
    let mut cmd = T::command().about(about);
    let matches = cmd.try_get_matches_from_mut(args)?;
    let parsed = T::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    Ok((parsed, cmd))
}

/// The server an example runs against, to keep alive until the end:
/// `REDIS_URL` if set, else a private `redis-server` from `PATH` on a free
/// port (removed when dropped), else xgroup's in-memory model served over
/// TCP. Each is announced on stdout.
pub fn server() -> (Option<RedisServer>, String) {
    private_server(RedisServer::builder())
}

/// [`server`] for an example that stops gracefully on Ctrl-C: its private
/// `redis-server` runs in a process group of its own, so the terminal's
/// SIGINT does not stop it while the example still drains (the example
/// removes it once done).
pub fn server_kept_through_ctrl_c() -> (Option<RedisServer>, String) {
    private_server(RedisServer::builder().own_process_group(true))
}

fn private_server(builder: RedisServerBuilder) -> (Option<RedisServer>, String) {
    match std::env::var("REDIS_URL") {
        Ok(url) => (None, url),
        Err(_) if crate::redis_server_on_path() => {
            let private = builder.start();
            println!(
                "started a private redis-server ({}) at {}",
                private.version(),
                private.url()
            );
            let url = private.url();
            (Some(private), url)
        }
        Err(_) => {
            let model = RedisServer::builder().start_the_model();
            println!(
                "no REDIS_URL and no redis-server on PATH: running against xgroup's \
                 in-memory model server at {}",
                model.url()
            );
            let url = model.url();
            (Some(model), url)
        }
    }
}

/// The flags of the examples that bring their own input (`per_message`,
/// `blocking_worker`, `web_service`): where the server is, and TLS.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServerArgs {
    /// Server URL [default: REDIS_URL, else a private redis-server]
    #[arg(long)]
    pub url: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl ServerArgs {
    /// `--url` if given, else [`server`].
    pub fn server(&self) -> (Option<RedisServer>, String) {
        match &self.url {
            Some(url) => (None, url.clone()),
            None => server(),
        }
    }

    /// `--url` if given, else [`server_kept_through_ctrl_c`].
    pub fn server_kept_through_ctrl_c(&self) -> (Option<RedisServer>, String) {
        match &self.url {
            Some(url) => (None, url.clone()),
            None => server_kept_through_ctrl_c(),
        }
    }
}

/// Logs `tracing` events to stderr, filtered by `RUST_LOG`.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
}

/// The main demo: two consumers share a group; one dies mid-way with work in
/// hand, and the other takes its pending entries over. Nothing is lost.
pub mod quickstart {
    use std::collections::HashSet;
    use std::ffi::OsString;
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
    use std::thread;
    use std::time::{Duration, Instant};

    use clap::Parser;
    use xgroup_core::{
        xadd, Batch, Command, ConfigError, ConsumerConfigBuilder, Source, Stats, StreamId,
        TlsOptions, Value,
    };

    pub use super::server;
    use super::TlsArgs;
    use crate::tls::TlsServer;
    use crate::{RedisServer, SentinelSet};

    /// The demo's flags: TLS, or a Sentinel set.
    #[derive(Parser, Debug, Clone)]
    #[command(long_about = None)]
    pub struct Args {
        /// Without REDIS_URL: serve the private redis-server over TLS too
        /// (certificates made on the spot) and connect with rediss://
        #[arg(long)]
        pub tls: bool,
        /// Without REDIS_URL: start a private master, replica and three
        /// sentinels, connect with redis+sentinel://, and kill the master
        /// mid-way (the sentinels promote the replica; everyone follows)
        #[arg(long, conflicts_with = "tls")]
        pub sentinel: bool,
        #[command(flatten)]
        pub tls_files: TlsArgs,
    }

    impl Args {
        /// Parses the command line (help titled `xgroup demo (<runtime>)`);
        /// prints the usage error and exits if it is wrong.
        pub fn parse_for(runtime: &str) -> Self {
            Self::try_parse_for(runtime, std::env::args_os()).unwrap_or_else(|e| e.exit())
        }

        /// Parses `args` (the first is the binary name).
        pub fn try_parse_for(
            runtime: &str,
            args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
        ) -> Result<Self, clap::Error> {
            super::parse_from(format!("xgroup demo ({runtime})"), args).map(|(a, _)| a)
        }
    }

    /// Where the demo runs: the private server to keep alive until the end
    /// (if one was started), the URL, and the TLS settings (from the flags,
    /// or trusting the private server's CA).
    #[derive(Debug)]
    pub struct Target {
        /// The private server (or Sentinel set), if `REDIS_URL` was not set.
        pub private: Option<Private>,
        /// `redis://` or `rediss://`.
        pub url: String,
        /// TLS settings, if any were given or made.
        pub tls: Option<TlsOptions>,
    }

    /// The server to use: `REDIS_URL` if set, else a private `redis-server`
    /// (announced on stdout; served over TLS with `--tls`).
    pub fn target(args: &Args) -> Target {
        let tls = args.tls_files.options();
        if let Ok(url) = std::env::var("REDIS_URL") {
            return Target {
                private: None,
                url,
                tls,
            };
        }
        if args.sentinel {
            return sentinel_target();
        }
        if !args.tls {
            let (private, url) = server();
            let private = private.map(|p| Private::Server(Box::new(p)));
            return Target { private, url, tls };
        }
        let private = RedisServer::builder().tls(TlsServer::default()).start();
        let url = private.tls_url();
        println!(
            "started a private redis-server ({}) with TLS at {url}",
            private.version()
        );
        let trust = TlsOptions::new().ca_cert_file(private.certs().ca_cert());
        Target {
            private: Some(Private::Server(Box::new(private))),
            url,
            tls: Some(tls.unwrap_or(trust)),
        }
    }

    /// What the demo started for itself, kept alive until the end.
    #[derive(Debug)]
    pub enum Private {
        /// One server (or the model).
        Server(Box<RedisServer>),
        /// A master, a replica and three sentinels; the master is killed
        /// mid-way by a thread of its own.
        Sentinels(Arc<Mutex<SentinelSet>>),
    }

    /// A private Sentinel set, and a thread that kills its master once the
    /// consumers are at work (the orders replicated first, so the server
    /// loses none), then reports the promotion.
    fn sentinel_target() -> Target {
        let set = SentinelSet::start();
        let url = set.url();
        println!("started a private master, replica and three sentinels: {url}");
        let replica = set.replica_port();
        let set = Arc::new(Mutex::new(set));
        let killer = set.clone();
        thread::spawn(move || {
            let lock = || killer.lock().unwrap_or_else(PoisonError::into_inner);
            // As soon as the replica has every order and the group (the
            // consumers are at work): what the master had not passed on by
            // then (acks) is redelivered, nothing is lost.
            let ready = |set: &SentinelSet| {
                let node = set.node(replica);
                let len = node
                    .try_cmd(&["XLEN", STREAM])
                    .ok()
                    .and_then(|r| r.as_int());
                let groups = node.try_cmd(&["XINFO", "GROUPS", STREAM]);
                len == Some(ORDERS as i64)
                    && groups.is_ok_and(|r| r.as_array().is_some_and(|g| !g.is_empty()))
            };
            while !ready(&lock()) {
                thread::sleep(Duration::from_millis(10));
            }
            let old = lock().kill_master();
            let killed = Instant::now();
            println!("killed the master (127.0.0.1:{old}): the sentinels will promote the replica");
            let new = lock().wait_for_promotion(old);
            println!(
                "the sentinels promoted 127.0.0.1:{new} after {:.1} s; the consumers follow it",
                killed.elapsed().as_secs_f64()
            );
        });
        Target {
            private: Some(Private::Sentinels(set)),
            url,
            tls: None,
        }
    }

    /// Orders produced.
    pub const ORDERS: usize = 3000;
    /// The stream.
    pub const STREAM: &str = "orders";
    /// The group.
    pub const GROUP: &str = "processors";
    /// The command counting the group's pending entries (see [`pending_count`]).
    pub const XPENDING: [&str; 3] = ["XPENDING", STREAM, GROUP];
    /// How long to wait for the backlog after bob died.
    pub const BACKLOG_TIMEOUT: Duration = Duration::from_secs(60);
    /// Time between progress lines while both work.
    pub const SHARED_TICK: Duration = Duration::from_millis(100);
    /// Time between progress lines after bob died.
    pub const BACKLOG_TICK: Duration = Duration::from_millis(250);
    /// bob's work time per batch (he is the slow one).
    pub const BOB_WORK: Duration = Duration::from_millis(20);
    /// alice's work time per batch.
    pub const ALICE_WORK: Duration = Duration::from_millis(5);

    /// `DEL` of the stream, to start from scratch.
    pub const RESET: [&str; 2] = ["DEL", STREAM];

    /// The `XADD`s of the orders, to pipeline by 500; see [`produced`].
    pub fn orders() -> Result<Vec<Command>, ConfigError> {
        (0..ORDERS)
            .map(|n| {
                let fields = [
                    ("order", n.to_string()),
                    ("item", format!("widget-{}", n % 7)),
                    ("qty", (1 + n % 5).to_string()),
                ];
                xadd(
                    STREAM,
                    fields.iter().map(|(f, v)| (*f, v.as_str())),
                    &Default::default(),
                )
            })
            .collect()
    }

    /// Prints that the orders are in.
    pub fn produced() {
        println!("produced {ORDERS} orders into stream {STREAM:?}");
    }

    /// The options of both consumers: small batches, fast claiming, and
    /// heartbeats that take a dead consumer for dead within 1.5 s (idle
    /// sweeps leave a consumer's entries alone while its heartbeat lives).
    pub fn configure(c: ConsumerConfigBuilder) -> ConsumerConfigBuilder {
        c.count(50)
            .claim_interval(Duration::from_millis(500))
            .claim_min_idle(Duration::from_millis(1500))
            .heartbeat(Duration::from_millis(500), 3)
    }

    /// Prints alice's takeover of a claimed batch (nothing for other batches).
    pub fn announce_takeover(batch: &Batch) {
        if batch.source == Source::Claimed {
            println!(
                "alice took over {} pending entries left by a dead consumer (attempt {})",
                batch.messages.len(),
                batch.messages[0].attempt
            );
        }
    }

    /// Prints bob's death, with his counters at that time.
    pub fn bob_died(bob: &Stats) {
        println!(
            "bob died after handling {} messages; his unacknowledged batch stays pending",
            bob.delivered
        );
    }

    /// Prints that the backlog was not worked off in time.
    pub fn timed_out() {
        println!("timed out waiting for the backlog");
    }

    /// The count of an `XPENDING key group` reply, -1 if it is not one.
    pub fn pending_count(reply: &Value) -> i64 {
        match reply {
            Value::Array(items) => match items.first() {
                Some(Value::Int(n)) => *n,
                _ => -1,
            },
            _ => -1,
        }
    }

    #[derive(Debug, Default)]
    struct Counts {
        processed: HashSet<StreamId>,
        deliveries: usize,
        redelivered: usize,
        taken_over: usize,
    }

    /// What both consumers handled.
    #[derive(Debug, Default)]
    pub struct Tally(Mutex<Counts>);

    impl Tally {
        fn counts(&self) -> MutexGuard<'_, Counts> {
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        /// Counts a batch `who` handled ("alice" or "bob").
        pub fn record(&self, batch: &Batch, who: &str) {
            let mut t = self.counts();
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

        /// Prints the progress line and returns the orders processed so far.
        pub fn progress(&self) -> usize {
            let done = self.counts().processed.len();
            println!("progress: {done}/{ORDERS} processed");
            done
        }

        /// Prints the summary (with alice's counters) and exits with status 1
        /// if an order was lost.
        pub fn finish(&self, alice: &Stats) {
            let t = self.counts();
            let lost = ORDERS - t.processed.len();
            println!(
                "summary: produced={ORDERS} processed={} deliveries={} redelivered={} taken_over={} lost={lost} (alice: delivered={} acked={} claimed={})",
                t.processed.len(),
                t.deliveries,
                t.redelivered,
                t.taken_over,
                alice.delivered,
                alice.acked,
                alice.claimed,
            );
            if lost != 0 {
                std::process::exit(1);
            }
        }
    }
}

/// What the `per_message` (tokio) and `blocking_worker` examples share:
/// their sample input (payments, some malformed, some whose charge fails for
/// a while), a stand-in for the payment provider, and the summary with the
/// dead letters. Their handlers are theirs: that is the code to copy.
pub mod payments {
    use std::fmt;
    use std::time::Duration;

    use std::ffi::OsString;

    use clap::Parser;
    use xgroup_core::{xadd, Command, ConfigError, Message, Stats, Value};

    /// The flags of both examples: the server and TLS.
    #[derive(Parser, Debug, Clone)]
    #[command(long_about = None)]
    pub struct Args {
        #[command(flatten)]
        pub server: super::ServerArgs,
    }

    impl Args {
        /// Parses the command line (help titled `<what>`); prints the usage
        /// error and exits if it is wrong.
        pub fn parse_for(what: &str) -> Self {
            Self::try_parse_for(what, std::env::args_os()).unwrap_or_else(|e| e.exit())
        }

        /// Parses `args` (the first is the binary name).
        pub fn try_parse_for(
            what: &str,
            args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
        ) -> Result<Self, clap::Error> {
            super::parse_from(what.to_owned(), args).map(|(a, _)| a)
        }
    }

    /// The stream of payments.
    pub const STREAM: &str = "payments";
    /// The group charging them.
    pub const GROUP: &str = "billing";
    /// Where malformed payments and those that failed too often go.
    pub const DEAD_LETTERS: &str = "payments:dead";
    /// Deliveries after which a payment that keeps failing is dead-lettered.
    pub const MAX_DELIVERIES: u64 = 4;
    /// Payments produced.
    pub const PAYMENTS: usize = 30;
    /// Payments acknowledged in the end (see [`sample`]).
    pub const EXPECTED_ACKED: u64 = 22;
    /// Payments dead-lettered in the end (see [`sample`]).
    pub const EXPECTED_DEAD_LETTERED: u64 = 8;
    /// How long a run may take to settle.
    pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
    /// `DEL` of both streams, to start from scratch.
    pub const RESET: [&str; 3] = ["DEL", STREAM, DEAD_LETTERS];
    /// The group's pending summary (see [`super::quickstart::pending_count`]).
    pub const XPENDING: [&str; 3] = ["XPENDING", STREAM, GROUP];
    /// The dead letters, oldest first.
    pub const DEAD_LETTER_RANGE: [&str; 4] = ["XRANGE", DEAD_LETTERS, "-", "+"];

    /// The `XADD`s of the sample payments (fields `payment`, `account`,
    /// `amount_cents`). Of the 30: 16 go through at once; 3 have an
    /// amount that is no number and 3 no account (dead-lettered by the
    /// handler); 3 are on `acct-flaky` (the provider times out twice, then
    /// takes them), 3 on `acct-busy` (rate-limited once, with a time to come
    /// back) and 2 on `acct-down` (the provider never answers: dead-lettered
    /// after [`MAX_DELIVERIES`]).
    pub fn sample() -> Result<Vec<Command>, ConfigError> {
        (0..PAYMENTS)
            .map(|n| {
                let payment = n.to_string();
                let account = match n {
                    9 | 24 => "acct-down".to_owned(),
                    _ if n % 10 == 1 => "acct-flaky".to_owned(),
                    _ if n % 10 == 5 => "acct-busy".to_owned(),
                    _ => format!("acct-{:02}", n % 10),
                };
                let amount = match n % 10 {
                    3 => "12,50".to_owned(),
                    _ => (500 + 125 * n).to_string(),
                };
                let mut fields = vec![("payment", payment.as_str())];
                if n % 10 != 7 {
                    fields.push(("account", account.as_str()));
                }
                fields.push(("amount_cents", amount.as_str()));
                xadd(STREAM, fields, &Default::default())
            })
            .collect()
    }

    /// Prints that the payments are in.
    pub fn produced() {
        println!("produced {PAYMENTS} payments into stream {STREAM:?}");
    }

    /// `payment <n> (attempt <a>)`, to report a message by.
    pub fn label(m: &Message) -> String {
        let payment = m.fields.get("payment").unwrap_or(b"?");
        format!(
            "payment {} (attempt {})",
            String::from_utf8_lossy(payment),
            m.attempt
        )
    }

    /// Why the payment provider refused a charge.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum GatewayError {
        /// No answer in time: worth another try.
        Timeout,
        /// Too many requests: come back after this long.
        RateLimited {
            /// When to come back.
            retry_after: Duration,
        },
        /// The provider is down for this account.
        Unavailable,
    }

    impl fmt::Display for GatewayError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                GatewayError::Timeout => f.write_str("the payment provider timed out"),
                GatewayError::RateLimited { retry_after } => write!(
                    f,
                    "rate-limited by the payment provider for {} ms",
                    retry_after.as_millis()
                ),
                GatewayError::Unavailable => f.write_str("the payment provider is unavailable"),
            }
        }
    }

    impl std::error::Error for GatewayError {}

    /// A stand-in for the payment provider's API, decided by the account so
    /// that every run is alike: `acct-flaky` times out on the first two
    /// attempts, `acct-busy` is rate-limited (for 200 ms) on the first,
    /// `acct-down` always fails, every other account is charged.
    pub fn charge(account: &[u8], _cents: u64, attempt: u64) -> Result<(), GatewayError> {
        match account {
            b"acct-flaky" if attempt <= 2 => Err(GatewayError::Timeout),
            b"acct-busy" if attempt == 1 => Err(GatewayError::RateLimited {
                retry_after: Duration::from_millis(200),
            }),
            b"acct-down" => Err(GatewayError::Unavailable),
            _ => Ok(()),
        }
    }

    /// Whether every payment has been settled: `charged` (the handler's
    /// successes) and the consumer's dead letters make up all of them.
    pub fn settled(charged: u64, stats: &Stats) -> bool {
        charged + stats.dead_lettered >= PAYMENTS as u64
    }

    /// Prints that the run did not settle in time.
    pub fn timed_out() {
        println!("timed out waiting for every payment to settle");
    }

    /// Prints the summary and returns whether every payment was settled:
    /// none pending, each charged (and acknowledged) or dead-lettered.
    /// `charged` counts the handler's successes; retries and dead letters
    /// are the consumer's counters (its `acked` counts the dead letters'
    /// acknowledgements too); then the `XPENDING` reply and the dead
    /// letters (an `XRANGE` reply), each with its reason.
    pub fn report(charged: u64, stats: &Stats, xpending: &Value, dead_letters: &Value) -> bool {
        let pending = super::quickstart::pending_count(xpending);
        println!(
            "summary: produced={PAYMENTS} acked={charged} retried={} dead_lettered={} pending={pending}",
            stats.retried, stats.dead_lettered
        );
        let entries = match dead_letters {
            Value::Array(entries) => entries.as_slice(),
            _ => &[],
        };
        println!("dead letters in {DEAD_LETTERS:?}: {}", entries.len());
        for entry in entries {
            let (id, fields) = match entry {
                Value::Array(parts) => match parts.as_slice() {
                    [id, fields] => (text(id), pairs(fields)),
                    _ => continue,
                },
                _ => continue,
            };
            let (own, dlq): (Vec<_>, Vec<_>) =
                fields.iter().partition(|(f, _)| !f.starts_with("dlq_"));
            let dlq = |name: &str| {
                dlq.iter()
                    .find(|(f, _)| f == name)
                    .map_or("?", |(_, v)| v.as_str())
            };
            let own: Vec<String> = own.iter().map(|(f, v)| format!("{f}={v}")).collect();
            println!(
                "  {id}  {}  reason: {} (deliveries: {})",
                own.join(" "),
                dlq("dlq_reason"),
                dlq("dlq_deliveries")
            );
        }
        pending == 0 && charged + stats.dead_lettered == PAYMENTS as u64
    }

    fn text(v: &Value) -> String {
        match v {
            Value::Bulk(b) | Value::Simple(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Int(n) => n.to_string(),
            other => format!("{other:?}"),
        }
    }

    fn pairs(v: &Value) -> Vec<(String, String)> {
        match v {
            Value::Array(flat) => flat
                .chunks(2)
                .filter_map(|p| match p {
                    [f, v] => Some((text(f), text(v))),
                    _ => None,
                })
                .collect(),
            Value::Map(map) => map.iter().map(|(f, v)| (text(f), text(v))).collect(),
            _ => Vec::new(),
        }
    }
}

/// The web service example's flags and its self-test: a few requests to
/// itself over HTTP, answers printed, checked.
pub mod web_service {
    use std::ffi::OsString;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::thread;
    use std::time::{Duration, Instant};

    use clap::Parser;
    use serde_json::Value as Json;

    /// Orders posted by the self-test.
    pub const ORDERS: u64 = 5;
    /// How long the self-test waits for the consumer (each step).
    pub const TIMEOUT: Duration = Duration::from_secs(20);

    /// The web service's flags.
    #[derive(Parser, Debug, Clone)]
    #[command(long_about = None)]
    pub struct Args {
        #[command(flatten)]
        pub server: super::ServerArgs,
        /// Address to listen on [default: 127.0.0.1:9187; a free port with --self-test]
        #[arg(long)]
        pub addr: Option<String>,
        /// Post a few orders to itself, check /health, stop the consumer, then exit
        #[arg(long)]
        pub self_test: bool,
    }

    impl Args {
        /// Parses the command line (help titled `<what>`); prints the usage
        /// error and exits if it is wrong.
        pub fn parse_for(what: &str) -> Self {
            Self::try_parse_for(what, std::env::args_os()).unwrap_or_else(|e| e.exit())
        }

        /// Parses `args` (the first is the binary name).
        pub fn try_parse_for(
            what: &str,
            args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
        ) -> Result<Self, clap::Error> {
            super::parse_from(what.to_owned(), args).map(|(a, _)| a)
        }

        /// Where to listen.
        pub fn listen_addr(&self) -> &str {
            match (&self.addr, self.self_test) {
                (Some(addr), _) => addr,
                (None, false) => "127.0.0.1:9187",
                (None, true) => "127.0.0.1:0",
            }
        }
    }

    /// One HTTP/1.1 request (`Connection: close`): the status and the body.
    pub fn request(
        addr: SocketAddr,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<(u16, String), String> {
        let fail = |e: std::io::Error| format!("{method} {path}: {e}");
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(fail)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(fail)?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .map_err(fail)?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).map_err(fail)?;
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{method} {path}: no HTTP status in {answer:?}"))?;
        let body = answer
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
            .to_owned();
        Ok((status, body))
    }

    /// Prints `<method> <path> -> <status> <body>`.
    fn show(method: &str, path: &str, (status, body): &(u16, String)) {
        println!("{method} {path} -> {status} {body}");
    }

    /// Polls `GET /health` until `done` says so of the answer; the last one.
    fn health_until(
        addr: SocketAddr,
        done: impl Fn(u16, &Json) -> bool,
    ) -> Result<(u16, String), String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let (status, body) = request(addr, "GET", "/health", "")?;
            let json: Json = serde_json::from_str(&body)
                .map_err(|e| format!("GET /health: not JSON ({e}): {body}"))?;
            if done(status, &json) {
                return Ok((status, body));
            }
            if Instant::now() > deadline {
                return Err(format!("GET /health: still {status} {body}"));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The self-test: posts [`ORDERS`] orders (each answered 202 with its
    /// id) and a malformed one (400), waits for `/health` to show them all
    /// acknowledged and none pending in the group (200), stops the consumer
    /// with `stop_consumer` and waits for `/health` to say 503. Prints
    /// each answer.
    pub fn self_test(addr: SocketAddr, stop_consumer: impl FnOnce()) -> Result<(), String> {
        for n in 1..=ORDERS {
            let order = format!(r#"{{"user":"u{n}","item":"widget-{n}","qty":{n}}}"#);
            let answer = request(addr, "POST", "/orders", &order)?;
            show("POST", "/orders", &answer);
            if answer.0 != 202 {
                return Err(format!("POST /orders: expected 202, got {answer:?}"));
            }
        }
        let answer = request(addr, "POST", "/orders", r#"{"user":"u0"}"#)?;
        show("POST", "/orders", &answer);
        if answer.0 != 400 {
            return Err(format!(
                "POST /orders (no item): expected 400, got {answer:?}"
            ));
        }
        let answer = health_until(addr, |status, h| {
            status == 200
                && h["acked"].as_u64() >= Some(ORDERS)
                && h["group_pending"] == 0
                && h["lag"] == 0
        })?;
        show("GET", "/health", &answer);
        stop_consumer();
        let answer = health_until(addr, |status, _| status == 503)?;
        show("GET", "/health", &answer);
        println!("self-test passed");
        Ok(())
    }
}

/// A consumer for real use and for black-box tests. For every message it
/// handles it prints `<stream> <id> <attempt>` to stdout, flushed before the
/// outcome is returned (so before the message's ack is sent). It reads
/// every `--stream` given (with `--shards`, every shard): `<stream>` is the
/// key the entry came from (a shard's own key).
pub mod worker {
    use std::ffi::OsString;
    use std::future::Future;
    use std::io::Write;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use clap::error::ErrorKind;
    use clap::Parser;
    use xgroup_core::{
        Batch, ConsumerConfigBuilder, DeadLetter, Disposition, Error, Heartbeat, Message, Outcome,
        StreamId,
    };

    use super::SplitMix64;

    // Fields without doc comments have no help text (as before the shared
    // version); a doc comment here becomes the flag's `--help` line.
    /// The worker's flags; [`Args::parse_for`] reads and checks them.
    #[derive(Parser, Debug, Clone)]
    #[command(long_about = None)]
    pub struct Args {
        #[arg(long)]
        pub url: String,
        #[command(flatten)]
        pub streams: super::StreamArgs,
        #[arg(long)]
        pub group: String,
        #[arg(long)]
        pub consumer: String,
        #[arg(long, default_value_t = 100)]
        pub count: u64,
        #[arg(long, default_value_t = 5000)]
        pub block_ms: u64,
        #[arg(long, default_value_t = 30_000)]
        pub claim_interval_ms: u64,
        #[arg(long, default_value_t = 60_000)]
        pub claim_min_idle_ms: u64,
        /// Work time per message.
        #[arg(long, default_value_t = 0)]
        pub sleep_ms: u64,
        // Help lines stay short, so that clap keeps one line per flag.
        /// Heartbeat interval; 0: none [core default: 5000]
        #[arg(long, value_name = "N")]
        pub heartbeat_ms: Option<u64>,
        /// Dead-letter after N deliveries; needs --dead-letter
        #[arg(long, value_name = "N")]
        pub max_deliveries: Option<u64>,
        /// Stream that dead letters are moved to
        #[arg(long, value_name = "KEY")]
        pub dead_letter: Option<String>,
        /// Share of deliveries that fail, 0 to 1
        #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = probability)]
        pub fail_rate: f64,
        /// Seed of the failure draws
        #[arg(long, value_name = "S", default_value_t = 1)]
        pub seed: u64,
        /// Retry failures after N ms, not the core's backoff
        #[arg(long, value_name = "N")]
        pub retry_after_ms: Option<u64>,
        /// Delete entries from the stream when acking them
        #[arg(long)]
        pub delete_on_ack: bool,
        #[command(flatten)]
        pub tls: super::TlsArgs,
    }

    fn probability(s: &str) -> Result<f64, String> {
        match s.parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
            Ok(_) => Err("must be between 0 and 1".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    impl Args {
        /// Parses the command line (help titled `xgroup worker (<runtime>)`);
        /// prints the usage error and exits with status 2 if it is wrong.
        pub fn parse_for(runtime: &str) -> Self {
            Self::try_parse_for(runtime, std::env::args_os()).unwrap_or_else(|e| e.exit())
        }

        /// Parses `args` (the first is the binary name) and checks that they
        /// fit together.
        pub fn try_parse_for(
            runtime: &str,
            args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
        ) -> Result<Self, clap::Error> {
            let (parsed, mut cmd): (Self, _) =
                super::parse_from(format!("xgroup worker ({runtime})"), args)?;
            parsed.streams.check(&mut cmd)?;
            if parsed.max_deliveries.is_some() && parsed.dead_letter.is_none() {
                return Err(cmd.error(
                    ErrorKind::MissingRequiredArgument,
                    "--max-deliveries requires --dead-letter <KEY>: a dead-letter stream (an \
                     explicit dead-letter policy) is required; there is no default",
                ));
            }
            Ok(parsed)
        }

        /// The stream to give the consumer's builder: the first of those
        /// read ([`configure`](Self::configure) names them all).
        pub fn stream(&self) -> String {
            self.streams.first_key()
        }

        /// Applies the flags to the consumer's options: every stream
        /// given (see [`StreamArgs`](super::StreamArgs)) and the rest.
        ///
        /// # Panics
        ///
        /// If `max_deliveries` is set without `dead_letter` (which
        /// [`parse_for`](Self::parse_for) rejects).
        pub fn configure(&self, b: ConsumerConfigBuilder) -> ConsumerConfigBuilder {
            let ms = Duration::from_millis;
            let b = self.streams.configure(b);
            let mut b = self
                .tls
                .configure(b)
                .count(self.count)
                .block(ms(self.block_ms))
                .claim_interval(ms(self.claim_interval_ms))
                .claim_min_idle(ms(self.claim_min_idle_ms))
                .delete_on_ack(self.delete_on_ack);
            match self.heartbeat_ms {
                None => {}
                Some(0) => b = b.no_heartbeat(),
                Some(n) => b = b.heartbeat(ms(n), Heartbeat::default().allowed_missed),
            }
            let dead_letter = self
                .dead_letter
                .as_ref()
                .map(|key| DeadLetter::Stream(key.clone().into_bytes().into()));
            match (self.max_deliveries, dead_letter) {
                (Some(n), Some(dl)) => b.max_deliveries(n, dl),
                (None, Some(dl)) => b.dead_letter(dl),
                (None, None) => b,
                (Some(_), None) => panic!("--max-deliveries needs --dead-letter"),
            }
        }
    }

    /// Prints `worker: <error>` and exits with status 2 if the consumer could
    /// not be built.
    /// The failure callback: one line on stderr per dead-lettered entry.
    pub fn dead_lettered(d: &xgroup_core::DeadLettered) {
        eprintln!(
            "dead-lettered {} after {} deliveries ({}): {:?}",
            d.id, d.deliveries, d.reason, d.action
        );
    }

    pub fn built<T>(result: Result<T, Error>) -> T {
        result.unwrap_or_else(|e| {
            eprintln!("worker: {e}");
            std::process::exit(2)
        })
    }

    /// Prints `worker: <error>` and exits with status 1 if the consumer
    /// stopped on an error.
    pub fn ran(result: Result<(), Error>) {
        if let Err(e) = result {
            eprintln!("worker: {e}");
            std::process::exit(1);
        }
    }

    /// The handler's logic: work, print, decide (ack or, with `--fail-rate`,
    /// retry).
    #[derive(Debug)]
    pub struct Worker {
        sleep: Duration,
        fail_rate: f64,
        retry_after: Option<Duration>,
        rng: Mutex<SplitMix64>,
    }

    impl Worker {
        /// A worker following `args`.
        pub fn new(args: &Args) -> Self {
            Worker {
                sleep: Duration::from_millis(args.sleep_ms),
                fail_rate: args.fail_rate,
                retry_after: args.retry_after_ms.map(Duration::from_millis),
                rng: Mutex::new(SplitMix64::new(args.seed)),
            }
        }

        /// Handles a batch: per message, `sleep(--sleep-ms)` (skipped at 0),
        /// then its line, then its decision.
        pub async fn handle<F, Fut>(&self, batch: &Batch, mut sleep: F) -> Outcome
        where
            F: FnMut(Duration) -> Fut,
            Fut: Future<Output = ()>,
        {
            let stream = String::from_utf8_lossy(&batch.stream);
            let mut each = Vec::with_capacity(batch.messages.len());
            for m in &batch.messages {
                if !self.sleep.is_zero() {
                    sleep(self.sleep).await;
                }
                each.push(self.handled(&stream, m));
            }
            outcome(each)
        }

        /// [`handle`](Self::handle) for blocking code.
        pub fn handle_blocking(&self, batch: &Batch, mut sleep: impl FnMut(Duration)) -> Outcome {
            let stream = String::from_utf8_lossy(&batch.stream);
            let mut each = Vec::with_capacity(batch.messages.len());
            for m in &batch.messages {
                if !self.sleep.is_zero() {
                    sleep(self.sleep);
                }
                each.push(self.handled(&stream, m));
            }
            outcome(each)
        }

        /// Prints `<stream> <id> <attempt>` (flushed) and decides.
        fn handled(&self, stream: &str, m: &Message) -> (StreamId, Disposition) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{stream} {} {}", m.id, m.attempt);
            let _ = out.flush();
            (m.id, self.decide(Instant::now()))
        }

        /// One delivery's fate: a retry with probability `--fail-rate` (at
        /// `now + --retry-after-ms` if set), else an ack.
        pub fn decide(&self, now: Instant) -> Disposition {
            if self.fail_rate <= 0.0 {
                return Disposition::Ack;
            }
            let draw = self
                .rng
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .next_f64();
            if draw >= self.fail_rate {
                Disposition::Ack
            } else if let Some(after) = self.retry_after {
                Disposition::RetryAt(now + after)
            } else {
                Disposition::Retry
            }
        }
    }

    /// `AckAll` if every message is acked, else one disposition each.
    pub fn outcome(each: Vec<(StreamId, Disposition)>) -> Outcome {
        if each.iter().all(|(_, d)| *d == Disposition::Ack) {
            Outcome::AckAll
        } else {
            Outcome::Each(each)
        }
    }
}

/// Drains a stream (or several, or a sharded stream's shards) through a
/// group and reports the rate.
pub mod throughput {
    use std::ffi::OsString;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    use clap::Parser;
    use xgroup_core::{xadd, Command, ConfigError, ConsumerConfigBuilder, Error, ServerErrorKind};

    /// Messages per pipelined fill round.
    const FILL_CHUNK: u64 = 10_000;

    /// The throughput run's flags.
    #[derive(Parser, Debug, Clone)]
    #[command(long_about = None)]
    pub struct Args {
        #[arg(long)]
        pub url: String,
        #[command(flatten)]
        pub streams: super::StreamArgs,
        #[arg(long)]
        pub group: String,
        #[arg(long)]
        pub consumer: String,
        /// Entries per handler call (default: the library's, 100).
        #[arg(long)]
        pub count: Option<u64>,
        #[arg(long)]
        pub messages: u64,
        #[arg(long)]
        pub fill: bool,
        /// Batches in flight (default: the library's, 1).
        #[arg(long)]
        pub in_flight: Option<usize>,
        #[command(flatten)]
        pub tls: super::TlsArgs,
    }

    impl Args {
        /// Parses the command line (help titled `xgroup throughput
        /// (<runtime>)`); prints the usage error and exits if it is wrong.
        pub fn parse_for(runtime: &str) -> Self {
            Self::try_parse_for(runtime, std::env::args_os()).unwrap_or_else(|e| e.exit())
        }

        /// Parses `args` (the first is the binary name).
        pub fn try_parse_for(
            runtime: &str,
            args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
        ) -> Result<Self, clap::Error> {
            let (parsed, mut cmd): (Self, _) =
                super::parse_from(format!("xgroup throughput ({runtime})"), args)?;
            parsed.streams.check(&mut cmd)?;
            Ok(parsed)
        }

        /// The stream to give the consumer's builder: the first of those
        /// read ([`configure`](Self::configure) names them all).
        pub fn stream(&self) -> String {
            self.streams.first_key()
        }

        /// The `XADD`s of `--fill`, by pipelined round: `--messages` entries
        /// of three fields (about 30 bytes of payload), spread over the
        /// streams read in turn (entry `n` to the `n % K`th of K streams:
        /// the shards of a sharded stream get as many each, give or take
        /// one). Each round holds the `XADD`s of one stream only, so that on
        /// a cluster each goes to one node (a cluster connection refuses a
        /// pipeline whose keys are in two slots). See [`filled`](Self::filled).
        pub fn fill_rounds(&self) -> impl Iterator<Item = Result<Vec<Command>, ConfigError>> + '_ {
            let keys = self.streams.keys();
            let streams = keys.len().max(1) as u64;
            let messages = self.messages;
            keys.into_iter().zip(0..).flat_map(move |(key, first)| {
                // Entries first, first + K, first + 2K, ... go to `key`.
                let mine = messages.saturating_sub(first).div_ceil(streams);
                (0..mine)
                    .step_by(FILL_CHUNK as usize)
                    .map(move |from| (key.clone(), from..(from + FILL_CHUNK).min(mine)))
                    .map(move |(key, round)| {
                        round
                            .map(|j| fill_entry(&key, first + j * streams))
                            .collect::<Result<Vec<Command>, ConfigError>>()
                    })
            })
        }

        /// Reports the fill on stderr.
        pub fn filled(&self) {
            eprintln!("filled {} messages", self.messages);
        }

        /// `XGROUP CREATE <stream> <group> 0 MKSTREAM` for every stream
        /// read (each shard of a sharded stream); see [`group_created`].
        pub fn create_groups(&self) -> Vec<[String; 6]> {
            self.streams
                .keys()
                .into_iter()
                .map(|key| {
                    [
                        "XGROUP".into(),
                        "CREATE".into(),
                        key,
                        self.group.clone(),
                        "0".into(),
                        "MKSTREAM".into(),
                    ]
                })
                .collect()
        }

        /// The consumer's options: the library's defaults but for what the
        /// command line gives (every stream given, TLS), so a run measures
        /// what a user gets.
        pub fn configure(&self, c: ConsumerConfigBuilder) -> ConsumerConfigBuilder {
            let c = self.streams.configure(c);
            let mut c = self.tls.configure(c);
            if let Some(count) = self.count {
                c = c.count(count);
            }
            if let Some(in_flight) = self.in_flight {
                c = c.max_in_flight_batches(in_flight);
            }
            c
        }
    }

    /// `XADD` of fill entry `n` to `key`: three fields.
    fn fill_entry(key: &str, n: u64) -> Result<Command, ConfigError> {
        let fields = [
            ("user_id", format!("{:08}", n % 100_000_000)),
            ("item", format!("sku-{:06}", n % 1_000_000)),
            ("qty", format!("{}", 1 + n % 9)),
        ];
        xadd(
            key,
            fields.iter().map(|(f, v)| (*f, v.as_str())),
            &Default::default(),
        )
    }

    /// The result of one of [`Args::create_groups`], a group that already
    /// exists being fine.
    pub fn group_created<T>(result: Result<T, Error>) -> Result<(), Error> {
        match result {
            Ok(_) => Ok(()),
            Err(Error::Server(e)) if e.kind == ServerErrorKind::BusyGroup => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Counts messages handed out, up to a target.
    #[derive(Debug)]
    pub struct Seen {
        count: AtomicU64,
        target: u64,
    }

    impl Seen {
        /// Waits for `--messages` messages.
        pub fn new(args: &Args) -> Self {
            Seen {
                count: AtomicU64::new(0),
                target: args.messages,
            }
        }

        /// Counts `n` more; true once the target is reached.
        pub fn add(&self, n: usize) -> bool {
            let n = n as u64;
            self.count.fetch_add(n, Ordering::Relaxed) + n >= self.target
        }
    }

    /// Prints the last line: `consumed=M secs=S rate=R msgs/s`.
    pub fn report(start: Instant, acked: u64) {
        let secs = start.elapsed().as_secs_f64();
        println!(
            "consumed={acked} secs={secs:.3} rate={:.0} msgs/s",
            acked as f64 / secs
        );
    }
}

/// The examples on a Redis Cluster: `throughput --fill` through a
/// `redis+cluster://` URL whose only seed does not serve the stream, and
/// through every primary with a sharded stream whose shards spread over
/// them. The tests of one binary share one cluster.
pub mod on_a_cluster {
    use std::process::Command;
    use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
    use std::time::Duration;

    use xgroup_core::ShardedStream;

    use super::harness::Running;
    use crate::{ClusterSet, RedisServer, RespValue};

    /// Entries filled and drained through one stream.
    const MESSAGES: usize = 5000;
    /// Entries filled and drained through a sharded stream.
    const SHARDED_MESSAGES: usize = 20_000;
    /// Shards of that stream.
    const SHARDS: usize = 4;
    /// A run's time limit, from start to exit.
    const RUN_LIMIT: Duration = Duration::from_secs(60);

    /// The test binary's cluster (3 primaries, no replicas), started by the
    /// first test that asks, held by one test at a time; each test uses
    /// streams of its own.
    fn shared_cluster() -> MutexGuard<'static, ClusterSet> {
        static CLUSTER: OnceLock<Mutex<ClusterSet>> = OnceLock::new();
        let cluster = CLUSTER
            .get_or_init(|| Mutex::new(ClusterSet::builder().replicas_per_primary(0).start()))
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cluster.wait_for_ok();
        cluster
    }

    /// `throughput` (at `binary`) with `--fill` of `messages` entries and
    /// group `g` through `url`, with `extra` flags (`--stream` among them);
    /// its stdout, once it exited successfully.
    fn fill_and_drain(
        binary: std::path::PathBuf,
        url: &str,
        extra: &[&str],
        messages: usize,
    ) -> String {
        let mut command = Command::new(binary);
        command
            .env_remove("REDIS_URL")
            .args(["--url", url])
            .args(extra);
        command.args([
            "--group",
            "g",
            "--consumer",
            "c",
            "--messages",
            &messages.to_string(),
            "--fill",
        ]);
        let (status, stdout, stderr) = Running::start(command).wait(RUN_LIMIT);
        assert!(status.success(), "{stdout}\n{stderr}");
        stdout
    }

    /// Checks that the last line of `stdout` is the rate line of `messages`
    /// entries: `consumed=M secs=S rate=R msgs/s`, S and R positive.
    fn assert_rate_line(stdout: &str, messages: usize) {
        let last = stdout.lines().last().unwrap_or_default();
        let fields: Vec<&str> = last.split(' ').collect();
        let value = |i: usize, name: &str| -> f64 {
            fields
                .get(i)
                .and_then(|f| f.strip_prefix(name))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name}<number> in the rate line {last:?}"))
        };
        assert_eq!(fields.len(), 4, "not a rate line: {last:?}");
        assert_eq!(value(0, "consumed="), messages as f64, "{last:?}");
        assert!(value(1, "secs=") > 0.0, "{last:?}");
        assert!(value(2, "rate=") > 0.0, "{last:?}");
        assert_eq!(fields[3], "msgs/s", "{last:?}");
    }

    /// The entries of group `g` on `stream` still pending on `node`.
    fn pending(node: &RedisServer, stream: &str) -> Option<i64> {
        let reply = node.cmd(&["XPENDING", stream, "g"]);
        reply.as_array().and_then(|p| p.first()?.as_int())
    }

    /// Group `g`'s `last-delivered-id` on `stream` (`XINFO GROUPS`).
    fn last_delivered(node: &RedisServer, stream: &str) -> Option<String> {
        let reply = node.cmd(&["XINFO", "GROUPS", stream]);
        let group = reply.as_array()?.iter().find_map(|g| {
            let fields = g.as_array()?;
            let named = |name: &str| {
                fields
                    .chunks(2)
                    .find(|kv| kv[0].as_str() == Some(name))
                    .and_then(|kv| kv.get(1))
            };
            (named("name")?.as_str() == Some("g")).then_some(named("last-delivered-id")?)
        })?;
        group.as_str().map(str::to_owned)
    }

    /// The id of the last entry of `stream`.
    fn last_id(node: &RedisServer, stream: &str) -> Option<String> {
        let reply = node.cmd(&["XREVRANGE", stream, "+", "-", "COUNT", "1"]);
        let entry = reply.as_array()?.first()?.as_array()?;
        entry.first().and_then(RespValue::as_str).map(str::to_owned)
    }

    /// Runs `throughput` (built at `binary`) with `--fill` against the
    /// shared cluster, seeded with a node that does not serve the stream's
    /// slot; checks the run drained every entry and that they are on the
    /// slot's primary, acknowledged.
    ///
    /// # Panics
    ///
    /// If the run fails, times out, or leaves entries unconsumed.
    pub fn throughput_fills_and_drains(binary: std::path::PathBuf) {
        let cluster = shared_cluster();
        let stream = "tp-cluster";
        let owner = cluster.primary_for_key(stream);
        let seed = cluster
            .primary_ports()
            .into_iter()
            .find(|&p| p != owner)
            .expect("another primary");
        let url = format!("redis+cluster://127.0.0.1:{seed}");
        let stdout = fill_and_drain(binary, &url, &["--stream", stream], MESSAGES);
        assert!(
            stdout.contains(&format!("consumed={MESSAGES} ")),
            "{stdout}"
        );
        let node = cluster.node(owner);
        assert_eq!(
            node.cmd(&["XLEN", stream]).as_int(),
            Some(MESSAGES as i64),
            "the stream is not on its slot's primary"
        );
        assert_eq!(pending(node, stream), Some(0));
    }

    /// Runs `throughput --fill --shards 4` (built at `binary`) through the
    /// shared cluster's URL (every primary a seed) on a sharded stream
    /// whose shards are on more than one primary: the rate line counts
    /// every entry; each shard, on its slot's primary, got its quarter (the
    /// fill goes round the shards, a pipeline per shard); the group exists
    /// on each and was delivered its last entry, and nothing is pending.
    ///
    /// # Panics
    ///
    /// If the run fails, times out, or a shard was not filled or drained.
    pub fn throughput_fills_and_drains_a_sharded_stream(binary: std::path::PathBuf) {
        let cluster = shared_cluster();
        let name = "tp-sharded";
        let sharded = ShardedStream::new(name, SHARDS).expect("a sharded stream");
        let keys: Vec<String> = sharded
            .keys()
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        let owners: Vec<u16> = keys.iter().map(|k| cluster.primary_for_key(k)).collect();
        let mut distinct = owners.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 1, "every shard on one primary: {owners:?}");
        let shards = SHARDS.to_string();
        let stdout = fill_and_drain(
            binary,
            &cluster.url(),
            &["--stream", name, "--shards", &shards],
            SHARDED_MESSAGES,
        );
        assert_rate_line(&stdout, SHARDED_MESSAGES);
        for (key, owner) in keys.iter().zip(owners) {
            let node = cluster.node(owner);
            assert_eq!(
                node.cmd(&["XLEN", key]).as_int(),
                Some((SHARDED_MESSAGES / SHARDS) as i64),
                "shard {key} on its primary {owner}"
            );
            let last = last_id(node, key);
            assert!(last.is_some(), "shard {key} is empty");
            assert_eq!(last_delivered(node, key), last, "shard {key} not drained");
            assert_eq!(pending(node, key), Some(0), "shard {key}");
        }
    }
}

/// A worker reading several streams on one server.
pub mod on_one_server {
    use std::collections::BTreeSet;
    use std::process::Command;
    use std::time::Duration;

    use super::harness::Running;
    use crate::RedisServer;

    /// Entries produced to each stream.
    const PER_STREAM: usize = 5;
    /// How long the worker may take to print every line, then to stop.
    const WAIT: Duration = Duration::from_secs(30);

    /// Produces to two streams on a fresh server, runs `worker` (built at
    /// `binary`) with `--stream` given for each, and stops it with SIGTERM
    /// once it printed a line per entry: it exits 0, its lines are exactly
    /// `<stream> <id> 1` for each entry of both streams (both named), and
    /// nothing is left pending on either.
    ///
    /// # Panics
    ///
    /// If the worker fails, times out, or misses or repeats an entry.
    pub fn worker_reads_every_stream_given(binary: std::path::PathBuf) {
        let server = RedisServer::start();
        let streams = ["orders-eu", "orders-us"];
        let mut expected = BTreeSet::new();
        for stream in streams {
            for n in 0..PER_STREAM {
                let reply = server.cmd(&["XADD", stream, "*", "n", &n.to_string()]);
                let id = reply.as_str().expect("an XADD id").to_owned();
                expected.insert(format!("{stream} {id} 1"));
            }
        }
        let mut command = Command::new(binary);
        command.env_remove("REDIS_URL").args([
            "--url",
            &server.url(),
            "--stream",
            streams[0],
            "--stream",
            streams[1],
            "--group",
            "g",
            "--consumer",
            "c",
        ]);
        let mut run = Running::start(command);
        for _ in 0..expected.len() {
            run.wait_for_line(|l| l.starts_with("orders-"), WAIT);
        }
        run.signal("TERM");
        let (status, stdout, stderr) = run.wait(WAIT);
        assert!(status.success(), "{stdout}\n{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        let printed: BTreeSet<String> = lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(printed.len(), lines.len(), "an entry twice:\n{stdout}");
        assert_eq!(printed, expected, "{stderr}");
        for stream in streams {
            assert!(stdout.contains(&format!("{stream} ")), "{stream}: {stdout}");
            let pending = server.cmd(&["XPENDING", stream, "g"]);
            let pending = pending.as_array().and_then(|p| p.first()?.as_int());
            assert_eq!(pending, Some(0), "{stream}");
        }
    }
}

/// For the tests that run an example as a user would: build it, run it with
/// a time limit, read its output as it comes, signal it.
pub mod harness {
    use std::io::{BufRead, BufReader, Read};
    use std::path::PathBuf;
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    /// Builds `package`'s example `name` with the cargo running the tests
    /// (`cargo test` of a test target does not build examples) and returns
    /// its binary, next to the calling test's (`target/<profile>/examples`).
    ///
    /// # Panics
    ///
    /// If the build fails.
    pub fn build(package: &str, name: &str, features: &[&str]) -> PathBuf {
        let exe = std::env::current_exe().expect("the test's path");
        let dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>/deps");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(["build", "-p", package, "--example", name]);
        if !features.is_empty() {
            command.args(["--features", &features.join(",")]);
        }
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "cargo build of example {name} failed");
        dir.join("examples").join(name)
    }

    /// A running example: its stdout line by line, stderr kept.
    #[derive(Debug)]
    pub struct Running {
        child: Child,
        lines: Receiver<String>,
        stdout: Vec<String>,
        stderr: Option<JoinHandle<String>>,
    }

    impl Running {
        /// Starts `command` with stdout and stderr piped.
        ///
        /// # Panics
        ///
        /// If it cannot be started.
        pub fn start(mut command: Command) -> Running {
            let mut child = command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the example starts");
            let stdout = child.stdout.take().expect("piped stdout");
            let mut stderr = child.stderr.take().expect("piped stderr");
            let (tx, lines) = mpsc::channel();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let stderr = thread::spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                text
            });
            Running {
                child,
                lines,
                stdout: Vec::new(),
                stderr: Some(stderr),
            }
        }

        /// Reads stdout until a line satisfies `wanted` and returns it.
        ///
        /// # Panics
        ///
        /// After `timeout`, or if stdout ends first (the example is killed;
        /// the message holds its output).
        pub fn wait_for_line(
            &mut self,
            wanted: impl Fn(&str) -> bool,
            timeout: Duration,
        ) -> String {
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.lines.recv_timeout(left) {
                    Ok(line) => {
                        self.stdout.push(line.clone());
                        if wanted(&line) {
                            return line;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        self.fail(&format!("no awaited line within {timeout:?}"))
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        self.fail("stdout ended before the awaited line")
                    }
                }
            }
        }

        /// Sends `signal` (`TERM`, `INT`) with `kill`.
        ///
        /// # Panics
        ///
        /// If `kill` fails.
        pub fn signal(&mut self, signal: &str) {
            let status = Command::new("kill")
                .args([format!("-{signal}"), self.child.id().to_string()])
                .status()
                .expect("kill runs");
            assert!(status.success(), "kill -{signal} failed");
        }

        /// Waits for the exit; its status, all of stdout and stderr.
        ///
        /// # Panics
        ///
        /// After `timeout` (the example is killed; the message holds its
        /// output).
        pub fn wait(mut self, timeout: Duration) -> (ExitStatus, String, String) {
            let deadline = Instant::now() + timeout;
            let status = loop {
                match self.child.try_wait() {
                    Ok(Some(status)) => break status,
                    Ok(None) if Instant::now() < deadline => {
                        thread::sleep(Duration::from_millis(20))
                    }
                    Ok(None) => self.fail(&format!("still running after {timeout:?}")),
                    Err(e) => self.fail(&format!("cannot wait for it: {e}")),
                }
            };
            // The reader ends with the pipe (the example's children, such
            // as its private server, never hold it: their output is theirs).
            while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                self.stdout.push(line);
            }
            let stderr = self.stderr_text();
            (status, self.stdout.join("\n"), stderr)
        }

        fn stderr_text(&mut self) -> String {
            self.stderr
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_default()
        }

        fn fail(&mut self, why: &str) -> ! {
            let _ = self.child.kill();
            let _ = self.child.wait();
            while let Ok(line) = self.lines.try_recv() {
                self.stdout.push(line);
            }
            let stderr = self.stderr_text();
            panic!(
                "example {why}\n--- stdout\n{}\n--- stderr\n{stderr}",
                self.stdout.join("\n")
            )
        }
    }
}

/// SplitMix64: a tiny seeded PRNG, plenty for injecting failures.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use xgroup_core::{
        Batch, BatchId, ConsumerConfig, DeadLetter, Disposition, Heartbeat, Message, Outcome,
        Source, StreamId,
    };

    use super::{throughput, worker, SplitMix64};

    const BASE: [&str; 9] = [
        "worker",
        "--url",
        "redis://127.0.0.1:1",
        "--stream",
        "s",
        "--group",
        "g",
        "--consumer",
        "c",
    ];

    fn worker_args(extra: &[&str]) -> Result<worker::Args, clap::Error> {
        worker::Args::try_parse_for("test", BASE.iter().chain(extra))
    }

    #[test]
    fn tls_flags_give_tls_options_and_a_key_needs_its_certificate() {
        let args = worker_args(&[]).expect("no TLS flags");
        assert_eq!(args.tls.options(), None);
        let args = worker_args(&["--tls-ca-cert", "ca.pem"]).expect("a CA");
        assert_eq!(
            args.tls.options(),
            Some(super::TlsOptions::new().ca_cert_file("ca.pem"))
        );
        let both = [
            "--tls-ca-cert",
            "ca.pem",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "c.key",
        ];
        let args = worker_args(&both).expect("mutual TLS");
        assert_eq!(
            args.tls.options(),
            Some(
                super::TlsOptions::new()
                    .ca_cert_file("ca.pem")
                    .client_cert_files("c.pem", "c.key")
            )
        );
        let cfg = config(&both);
        assert_eq!(cfg.connect_options().tls, args.tls.options());
        assert_eq!(args.tls.connection().tls, args.tls.options());
        for lone in [["--tls-key", "c.key"], ["--tls-cert", "c.pem"]] {
            let e = worker_args(&lone).expect_err("half a client certificate");
            assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        }
        let demo =
            super::quickstart::Args::try_parse_for("test", ["demo", "--tls"]).expect("--tls");
        assert!(demo.tls && demo.tls_files.options().is_none());
    }

    fn config(extra: &[&str]) -> ConsumerConfig {
        let args = worker_args(extra).expect("valid flags");
        args.configure(ConsumerConfig::builder("s", "g", "c"))
            .build()
            .expect("valid config")
    }

    #[test]
    fn worker_defaults_are_the_cores() {
        let cfg = config(&[]);
        assert_eq!(cfg.count(), 100);
        assert_eq!(cfg.block(), Duration::from_millis(5000));
        assert_eq!(cfg.claim_interval(), Some(Duration::from_secs(30)));
        assert_eq!(cfg.claim_min_idle(), Duration::from_secs(60));
        assert_eq!(cfg.heartbeat(), Some(Heartbeat::default()));
        assert_eq!(cfg.max_deliveries(), None);
        assert_eq!(cfg.dead_letter(), None);
        let args = worker_args(&[]).expect("valid flags");
        assert_eq!(
            (args.fail_rate, args.seed, args.delete_on_ack),
            (0.0, 1, false)
        );
    }

    #[test]
    fn heartbeat_flag() {
        let cfg = config(&["--heartbeat-ms", "250"]);
        let hb = cfg.heartbeat().expect("heartbeats on");
        assert_eq!(hb.interval, Duration::from_millis(250));
        assert_eq!(hb.allowed_missed, Heartbeat::default().allowed_missed);
        assert_eq!(config(&["--heartbeat-ms", "0"]).heartbeat(), None);
    }

    #[test]
    fn dead_letter_flags() {
        let dlq = DeadLetter::Stream(b"dlq".to_vec().into());
        let cfg = config(&["--max-deliveries", "3", "--dead-letter", "dlq"]);
        assert_eq!(cfg.max_deliveries(), Some(3));
        assert_eq!(cfg.dead_letter(), Some(&dlq));
        let cfg = config(&["--dead-letter", "dlq"]);
        assert_eq!(cfg.max_deliveries(), None);
        assert_eq!(cfg.dead_letter(), Some(&dlq));
    }

    #[test]
    fn max_deliveries_alone_is_a_usage_error() {
        let err = worker_args(&["--max-deliveries", "3"]).expect_err("rejected");
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--dead-letter <KEY>"), "{err}");
    }

    #[test]
    fn fail_rate_must_be_a_probability() {
        for bad in ["1.5", "-0.1", "x"] {
            assert!(worker_args(&["--fail-rate", bad]).is_err(), "{bad}");
        }
        assert_eq!(
            worker_args(&["--fail-rate", "1"]).expect("ok").fail_rate,
            1.0
        );
    }

    #[test]
    fn failures_follow_the_seed_and_the_rate() {
        let draws = |seed: &str| {
            let args = worker_args(&["--fail-rate", "0.3", "--seed", seed]).expect("ok");
            let w = worker::Worker::new(&args);
            let now = Instant::now();
            (0..10_000)
                .map(|_| w.decide(now) == Disposition::Retry)
                .collect::<Vec<_>>()
        };
        let (a, b, c) = (draws("7"), draws("7"), draws("8"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let failed = a.iter().filter(|f| **f).count();
        assert!((2700..3300).contains(&failed), "{failed}");
    }

    #[test]
    fn retry_after_and_outcomes() {
        let now = Instant::now();
        let args = worker_args(&["--fail-rate", "1", "--retry-after-ms", "250"]).expect("ok");
        let w = worker::Worker::new(&args);
        assert_eq!(
            w.decide(now),
            Disposition::RetryAt(now + Duration::from_millis(250))
        );
        let never = worker::Worker::new(&worker_args(&[]).expect("ok"));
        assert_eq!(never.decide(now), Disposition::Ack);

        let batch = Batch {
            id: BatchId(1),
            stream: b"s".to_vec().into(),
            source: Source::New,
            messages: (1..=3)
                .map(|n| Message {
                    id: StreamId::new(n, 0),
                    fields: Default::default(),
                    attempt: 1,
                })
                .collect(),
            lease: None,
        };
        let mut slept = 0;
        assert_eq!(
            never.handle_blocking(&batch, |_| slept += 1),
            Outcome::AckAll
        );
        assert_eq!(slept, 0, "no --sleep-ms, no sleep");
        let args = worker_args(&["--fail-rate", "1", "--sleep-ms", "1"]).expect("ok");
        let always = worker::Worker::new(&args);
        let Outcome::Each(each) = always.handle_blocking(&batch, |_| slept += 1) else {
            panic!("one disposition per message");
        };
        assert_eq!(slept, 3);
        let ids: Vec<_> = batch.messages.iter().map(|m| m.id).collect();
        assert_eq!(each.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
        assert!(each.iter().all(|(_, d)| *d == Disposition::Retry));
    }

    #[test]
    fn fill_rounds_cover_every_message_once() {
        let args = throughput_args(&["--messages", "25001", "--fill"]).expect("valid flags");
        let rounds: Vec<usize> = args
            .fill_rounds()
            .map(|r| r.expect("valid xadd").len())
            .collect();
        assert_eq!(rounds, [10_000, 10_000, 5001]);
        let seen = throughput::Seen::new(&args);
        assert!(!seen.add(25_000));
        assert!(seen.add(1));
    }

    fn throughput_args(extra: &[&str]) -> Result<throughput::Args, clap::Error> {
        throughput::Args::try_parse_for(
            "test",
            BASE.iter()
                .chain(extra)
                .map(|a| a.replace("worker", "throughput")),
        )
    }

    #[test]
    fn every_stream_given_and_every_shard_is_read() {
        let streams = |cfg: &ConsumerConfig| -> Vec<String> {
            cfg.streams()
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        };
        assert_eq!(streams(&config(&[])), ["s"]);
        assert_eq!(streams(&config(&["--stream", "t"])), ["s", "t"]);
        let sharded = config(&["--stream", "t", "--shards", "3"]);
        let keys = ["{s:0}", "{s:1}", "{s:2}", "{t:0}", "{t:1}", "{t:2}"];
        assert_eq!(streams(&sharded), keys);
        let args = worker_args(&["--shards", "2"]).expect("valid flags");
        assert_eq!(args.stream(), "{s:0}");
        let args = throughput_args(&["--messages", "1", "--shards", "2"]).expect("valid flags");
        assert_eq!(args.streams.keys(), ["{s:0}", "{s:1}"]);
        let groups: Vec<String> = args.create_groups().iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            groups,
            [
                "XGROUP CREATE {s:0} g 0 MKSTREAM",
                "XGROUP CREATE {s:1} g 0 MKSTREAM"
            ]
        );
        for bad in ["0", "1025"] {
            let e = worker_args(&["--shards", bad]).expect_err("no such sharded stream");
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{e}");
            let e = throughput_args(&["--messages", "1", "--shards", bad]).expect_err("refused");
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{e}");
        }
    }

    #[test]
    fn fill_rounds_spread_over_the_shards_one_shard_a_round() {
        let args = throughput_args(&["--messages", "50001", "--fill", "--shards", "4"])
            .expect("valid flags");
        let mut per_key = std::collections::BTreeMap::<String, usize>::new();
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        for round in args.fill_rounds() {
            let round = round.expect("valid xadd");
            sizes.push(round.len());
            let key = round[0].args()[1].clone();
            for command in &round {
                let a = command.args();
                assert_eq!(a[1], key, "a round holds one shard's XADDs only");
                let at = a
                    .iter()
                    .position(|x| &x[..] == b"user_id")
                    .expect("user_id");
                let n: u64 = String::from_utf8_lossy(&a[at + 1])
                    .parse()
                    .expect("a number");
                // In turn: entry n to shard n % 4.
                assert_eq!(&key[..], format!("{{s:{}}}", n % 4).as_bytes());
                seen.push(n);
            }
            *per_key
                .entry(String::from_utf8_lossy(&key).into_owned())
                .or_default() += round.len();
        }
        assert_eq!(
            sizes,
            [10_000, 2501, 10_000, 2500, 10_000, 2500, 10_000, 2500]
        );
        let counts: Vec<(&str, usize)> = per_key.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        assert_eq!(
            counts,
            [
                ("{s:0}", 12_501),
                ("{s:1}", 12_500),
                ("{s:2}", 12_500),
                ("{s:3}", 12_500)
            ]
        );
        seen.sort_unstable();
        assert_eq!(seen, (0..50_001).collect::<Vec<u64>>());
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 1234567 (reference implementation).
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
        let f = SplitMix64::new(0).next_f64();
        assert!((0.0..1.0).contains(&f));
    }
}
