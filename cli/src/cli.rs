//! The command line (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use xgroup_blocking::TlsOptions;

use crate::text;

/// Inspect and operate Redis Streams consumer groups.
#[derive(Debug, Parser)]
#[command(name = "xgroup", version, about, max_term_width = 100)]
pub struct Cli {
    /// Server URL, any form the library takes (e.g. redis://user:password@host:6379/0)
    #[arg(
        long,
        global = true,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub url: String,
    /// Print JSON (one document) instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// TLS files, for a rediss:// URL.
    #[command(flatten)]
    pub tls: TlsFiles,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The TLS files of a `rediss://` URL (as the library's examples take them).
#[derive(Debug, Args, Default)]
pub struct TlsFiles {
    /// CA certificates (PEM) to trust for a rediss:// URL (else the Mozilla roots)
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --tls-key
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsFiles {
    /// The TLS settings these files make; `None` without any (a
    /// `rediss://` URL then trusts the Mozilla roots).
    pub fn options(&self) -> Option<TlsOptions> {
        if self.tls_ca_cert.is_none() && self.tls_cert.is_none() {
            return None;
        }
        let mut tls = TlsOptions::new();
        if let Some(ca) = &self.tls_ca_cert {
            tls = tls.ca_cert_file(ca);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            tls = tls.client_cert_files(cert, key);
        }
        Some(tls)
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Per group: lag, pending, oldest pending, last delivered; per consumer:
    /// pending, idle, inactive, alive or dead by heartbeat; delivery counts.
    Describe(DescribeArgs),
    /// The pending entries of a group (oldest first).
    Pending(PendingArgs),
    /// Dead-letter streams: list them, move them back.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
    /// Move a group's last-delivered id (dry run unless --execute).
    Reset(ResetArgs),
    /// A live view of a stream and its groups (q quits).
    Top(TopArgs),
}

/// `describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Stream key.
    pub stream: String,
    /// Only this group.
    #[arg(long)]
    pub group: Option<String>,
}

/// `pending`.
#[derive(Debug, Args)]
pub struct PendingArgs {
    /// Stream key.
    pub stream: String,
    /// Consumer group.
    pub group: String,
    /// Only entries held by this consumer.
    #[arg(long)]
    pub consumer: Option<String>,
    /// Only entries idle at least this long (500ms, 10s, 5m, 2h, 1d).
    #[arg(long, value_name = "DURATION", value_parser = text::parse_duration)]
    pub min_idle: Option<Duration>,
    /// At most this many entries.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
}

/// `dead-letters ...`.
#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// The entries of a dead-letter stream (oldest first).
    List(ListArgs),
    /// Move dead letters back to a stream, each atomically (the add and the
    /// delete in one script): a crash never loses nor duplicates one.
    Redrive(RedriveArgs),
}

/// `dead-letters list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Dead-letter stream key.
    pub dlq: String,
    /// At most this many entries.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
}

/// `dead-letters redrive`.
#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// Dead-letter stream key.
    pub dlq: String,
    /// Stream to add the entries to (usually the one they came from).
    #[arg(long, value_name = "STREAM")]
    pub to: String,
    /// Only entries matching: FIELD=VALUE (equal) or FIELD~TEXT (contains).
    /// FIELD is an entry field, or reason, consumer, group, stream, id,
    /// deliveries for what the dead letter records. Repeat to require all.
    #[arg(long, value_name = "EXPR", value_parser = text::parse_filter)]
    pub filter: Vec<text::Filter>,
    /// At most this many entries per second (N, N/s or N/m).
    #[arg(long, value_name = "N/s", value_parser = text::parse_rate)]
    pub rate: Option<f64>,
    /// At most this many entries in all.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Show what would be moved, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Restore the original fields only (no xgroup_history field).
    #[arg(long)]
    pub no_history: bool,
    /// Create the target stream if it does not exist (else that is an error,
    /// to catch a mistyped name).
    #[arg(long)]
    pub create: bool,
}

/// `reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Stream key.
    pub stream: String,
    /// Consumer group.
    pub group: String,
    /// Where to.
    #[command(flatten)]
    pub target: ResetTarget,
    /// Apply the change (without it, only show what would change).
    #[arg(long)]
    pub execute: bool,
}

/// Where `reset` moves the group: exactly one of these.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ResetTarget {
    /// Deliver entries from this time on (RFC 3339, e.g. 2024-05-01T12:00:00Z).
    #[arg(long, value_name = "RFC3339", value_parser = text::parse_datetime_ms)]
    pub to_datetime: Option<u64>,
    /// Deliver entries from this long ago on (10s, 5m, 2h, 1d).
    #[arg(long, value_name = "DURATION", value_parser = text::parse_duration)]
    pub by_duration: Option<Duration>,
    /// Deliver the whole stream again.
    #[arg(long)]
    pub to_earliest: bool,
    /// Skip everything in the stream now.
    #[arg(long)]
    pub to_latest: bool,
    /// Set the last-delivered id to ID (entries after it are delivered
    /// next), as XGROUP SETID does.
    #[arg(long, value_name = "ID", value_parser = text::parse_id)]
    pub to_id: Option<xgroup_core::StreamId>,
}

/// `top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Stream key.
    pub stream: String,
    /// Group shown first (Tab switches).
    #[arg(long)]
    pub group: Option<String>,
    /// Time between refreshes.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = text::parse_duration)]
    pub interval: Duration,
}
