//! Reference consumers written with redis-rs (sync API), the way a skilled
//! user would, to compare with xgroup's `throughput` examples. Same flags and
//! same last line (`consumed=M secs=S rate=R msgs/s`).
//!
//! - `--mode idiomatic`: `XREADGROUP GROUP g c COUNT n BLOCK 1000 STREAMS s >`
//!   parsed into a `StreamReadReply`, then one `XACK` of all its ids; repeat.
//! - `--mode pipelined`: the `XACK` of batch k goes in one pipeline with the
//!   `XREADGROUP` of batch k+1 (one round trip per batch).
//! - `--latency` (`--mode` ignored): the idiomatic loop, reading with
//!   `BLOCK`; for each message computes the time from its `sent_ns` field
//!   (nanoseconds since the Unix epoch, written by `latency_producer`) to now;
//!   prints p50/p99/max once M were seen.
//!
//! Over TLS (`rediss://` URL): `--tls-ca-cert FILE` trusts that CA
//! (else the platform's roots), `--tls-cert`/`--tls-key` present a client
//! certificate; redis-rs's `tls-rustls`, with ring as the process's crypto
//! provider.
//!
//! - `--shards N` (idiomatic only): reads every shard of the sharded stream
//!   `--stream` (keys `{NAME:0}` to `{NAME:N-1}`, as xgroup's
//!   `ShardedStream`), a user's loop over them: one `XREADGROUP` (no
//!   `BLOCK`) per shard in turn, each batch acked with one `XACK` to its
//!   shard; a round that finds nothing anywhere waits 10 ms. On a
//!   `redis+cluster://host:port[,host:port...]` URL it goes through
//!   redis-rs's cluster client (`ClusterClient`, `cluster` feature), which
//!   sends each call to the primary of its key's slot; on a `redis://` URL
//!   through one connection. The group is created on every shard.
//!
//! `--in-flight` is accepted for flag compatibility and ignored: redis-rs's
//! sync connection has one batch in hand (idiomatic) or one read overlapping
//! one ack (pipelined).

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use redis::cluster::ClusterClient;
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{Commands, Connection, ConnectionLike, RedisResult};
use xgroup_bench::{now_ns, report, Latencies, SENT_FIELD};
use xgroup_tokio::ShardedStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Idiomatic,
    Pipelined,
}

#[derive(Parser, Debug)]
#[command(about = "redis-rs reference consumer (sync API)")]
struct Args {
    #[arg(long)]
    url: String,
    #[arg(long)]
    stream: String,
    #[arg(long)]
    group: String,
    #[arg(long)]
    consumer: String,
    #[arg(long, default_value_t = 1000)]
    count: usize,
    #[arg(long)]
    messages: u64,
    /// First write M messages of three fields (as the throughput examples).
    #[arg(long)]
    fill: bool,
    /// Ignored (flag compatibility with the throughput examples).
    #[arg(long, default_value_t = 2)]
    in_flight: usize,
    #[arg(long, value_enum, default_value_t = Mode::Idiomatic)]
    mode: Mode,
    /// Measure produce→read latency instead of draining a backlog.
    #[arg(long)]
    latency: bool,
    /// Give up (latency mode) after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// CA certificate (PEM) to trust for a rediss:// URL.
    #[arg(long, value_name = "FILE")]
    tls_ca_cert: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Read every shard of the sharded stream --stream in N shards (idiomatic
    /// loop; a redis+cluster:// URL goes through redis-rs's cluster client).
    #[arg(long, value_name = "N", conflicts_with_all = ["latency", "fill"])]
    shards: Option<usize>,
}

/// The seeds of a `redis+cluster://host:port[,host:port...]` URL as
/// `redis://host:port` URLs; `None` for any other URL.
fn cluster_seeds(url: &str) -> Option<Vec<String>> {
    let hosts = url.strip_prefix("redis+cluster://")?;
    Some(
        hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("redis://{h}"))
            .collect(),
    )
}

/// The client for `args.url`: with the TLS files given, if any.
fn client(args: &Args) -> RedisResult<redis::Client> {
    if args.url.starts_with("rediss://") {
        // redis-rs builds its rustls configuration with the process's provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| {
            redis::RedisError::from((
                redis::ErrorKind::Io,
                "cannot read a TLS file",
                format!("{}: {e}", path.display()),
            ))
        })
    };
    if args.tls_ca_cert.is_none() && args.tls_cert.is_none() {
        return redis::Client::open(args.url.as_str());
    }
    let root_cert = args.tls_ca_cert.as_deref().map(read).transpose()?;
    let client_tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        _ => None,
    };
    let certs = redis::TlsCertificates {
        client_tls,
        root_cert,
    };
    redis::Client::build_with_tls(args.url.as_str(), certs)
}

/// Messages per pipelined fill round (as the throughput examples).
const FILL_CHUNK: u64 = 10_000;
/// `BLOCK` of every read, in milliseconds (as the throughput examples).
const BLOCK_MS: usize = 1000;

fn fill(con: &mut Connection, args: &Args) -> RedisResult<()> {
    let mut from = 0;
    while from < args.messages {
        let to = (from + FILL_CHUNK).min(args.messages);
        let mut pipe = redis::pipe();
        for n in from..to {
            pipe.xadd(
                &args.stream,
                "*",
                &[
                    ("user_id", format!("{:08}", n % 100_000_000)),
                    ("item", format!("sku-{:06}", n % 1_000_000)),
                    ("qty", format!("{}", 1 + n % 9)),
                ],
            )
            .ignore();
        }
        pipe.query::<()>(con)?;
        from = to;
    }
    eprintln!("filled {} messages", args.messages);
    Ok(())
}

fn create_group(con: &mut impl ConnectionLike, stream: &[u8], args: &Args) -> RedisResult<()> {
    let created: RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(&args.group)
        .arg("0")
        .arg("MKSTREAM")
        .query(con);
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

fn ids_of(reply: &Option<StreamReadReply>) -> Vec<String> {
    reply
        .iter()
        .flat_map(|r| &r.keys)
        .flat_map(|k| &k.ids)
        .map(|e| e.id.clone())
        .collect()
}

/// Read a batch, ack it, repeat.
fn idiomatic(con: &mut Connection, args: &Args, opts: &StreamReadOptions) -> RedisResult<u64> {
    let mut acked = 0u64;
    while acked < args.messages {
        let reply: Option<StreamReadReply> = con.xread_options(&[&args.stream], &[">"], opts)?;
        let ids = ids_of(&reply);
        if ids.is_empty() {
            continue;
        }
        let n: u64 = con.xack(&args.stream, &args.group, &ids)?;
        acked += n;
    }
    Ok(acked)
}

fn read_cmd(args: &Args, opts: &StreamReadOptions) -> redis::Cmd {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg(opts).arg("STREAMS").arg(&args.stream).arg(">");
    cmd
}

/// Ack batch k in the same round trip as the read of batch k+1.
fn pipelined(con: &mut Connection, args: &Args, opts: &StreamReadOptions) -> RedisResult<u64> {
    let read = read_cmd(args, opts);
    let mut acked = 0u64;
    let first: Option<StreamReadReply> = read.query(con)?;
    let mut pending = ids_of(&first);
    let mut delivered = pending.len() as u64;
    while delivered < args.messages {
        if pending.is_empty() {
            let reply: Option<StreamReadReply> = read.query(con)?;
            pending = ids_of(&reply);
            delivered += pending.len() as u64;
            continue;
        }
        let (n, reply): (u64, Option<StreamReadReply>) = redis::pipe()
            .xack(&args.stream, &args.group, &pending)
            .add_command(read.clone())
            .query(con)?;
        acked += n;
        pending = ids_of(&reply);
        delivered += pending.len() as u64;
    }
    if !pending.is_empty() {
        let n: u64 = con.xack(&args.stream, &args.group, &pending)?;
        acked += n;
    }
    Ok(acked)
}

/// A round over the shards: per shard one read (no `BLOCK`) and one ack of
/// what it returned; repeat, waiting 10 ms after a round that found nothing.
fn sharded(
    con: &mut impl ConnectionLike,
    keys: &[&[u8]],
    args: &Args,
    opts: &StreamReadOptions,
) -> RedisResult<u64> {
    let mut acked = 0u64;
    while acked < args.messages {
        let mut found = false;
        for key in keys {
            let reply: Option<StreamReadReply> = con.xread_options(&[key], &[">"], opts)?;
            let ids = ids_of(&reply);
            if ids.is_empty() {
                continue;
            }
            found = true;
            let n: u64 = con.xack(key, &args.group, &ids)?;
            acked += n;
        }
        if !found {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(acked)
}

/// `--shards`: every shard of the sharded stream, through redis-rs's
/// cluster client on a `redis+cluster://` URL, else one connection.
fn run_sharded(args: &Args, shards: usize) -> RedisResult<()> {
    if args.mode != Mode::Idiomatic {
        return Err(redis::RedisError::from((
            redis::ErrorKind::Client,
            "--shards reads with the idiomatic loop only",
        )));
    }
    let stream = ShardedStream::new(&args.stream, shards).map_err(|e| {
        redis::RedisError::from((redis::ErrorKind::Client, "bad --shards", e.to_string()))
    })?;
    let keys: Vec<&[u8]> = stream.keys().iter().map(|k| &k[..]).collect();
    let opts = StreamReadOptions::default()
        .group(&args.group, &args.consumer)
        .count(args.count);
    // The clock starts once the groups exist, as in the other loops.
    let start;
    let acked = match cluster_seeds(&args.url) {
        Some(seeds) => {
            let mut con = ClusterClient::new(seeds)?.get_connection()?;
            for key in &keys {
                create_group(&mut con, key, args)?;
            }
            start = Instant::now();
            sharded(&mut con, &keys, args, &opts)?
        }
        None => {
            let mut con = client(args)?.get_connection()?;
            for key in &keys {
                create_group(&mut con, key, args)?;
            }
            start = Instant::now();
            sharded(&mut con, &keys, args, &opts)?
        }
    };
    report(start, acked);
    Ok(())
}

/// Read with BLOCK, note each message's produce→read latency, ack.
fn latency(con: &mut Connection, args: &Args, opts: &StreamReadOptions) -> RedisResult<()> {
    let mut lat = Latencies::with_capacity(args.messages as usize);
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    while (lat.len() as u64) < args.messages && Instant::now() < deadline {
        let reply: Option<StreamReadReply> = con.xread_options(&[&args.stream], &[">"], opts)?;
        let now = now_ns();
        let mut ids = Vec::new();
        for e in reply.iter().flat_map(|r| &r.keys).flat_map(|k| &k.ids) {
            if let Some(sent) = e.get::<u64>(SENT_FIELD) {
                lat.record(sent, now);
            }
            ids.push(e.id.clone());
        }
        if !ids.is_empty() {
            let _: u64 = con.xack(&args.stream, &args.group, &ids)?;
        }
    }
    println!("{}", lat.summary("redis-rs"));
    Ok(())
}

fn main() -> RedisResult<()> {
    let args = Args::parse();
    if let Some(shards) = args.shards {
        return run_sharded(&args, shards);
    }
    let mut con = client(&args)?.get_connection()?;
    if args.fill {
        fill(&mut con, &args)?;
    }
    create_group(&mut con, args.stream.as_bytes(), &args)?;
    let opts = StreamReadOptions::default()
        .group(&args.group, &args.consumer)
        .count(args.count)
        .block(BLOCK_MS);
    if args.latency {
        return latency(&mut con, &args, &opts);
    }
    let start = Instant::now();
    let acked = match args.mode {
        Mode::Idiomatic => idiomatic(&mut con, &args, &opts)?,
        Mode::Pipelined => pipelined(&mut con, &args, &opts)?,
    };
    report(start, acked);
    Ok(())
}
