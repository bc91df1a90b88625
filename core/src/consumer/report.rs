//! What the consumer reports: events, warnings, dead letters, counters.

use std::time::Duration;

use bytes::Bytes;

use crate::config::ConsumerConfig;
use crate::error::{Error, ServerError};
use crate::id::StreamId;
use crate::url::ServerAddr;

use super::batch::{Batch, BatchId};
use super::lifecycle::Conn;
#[cfg(doc)]
use super::Consumer;

/// What happened to a dead-lettered entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLettered {
    /// Entry id.
    pub id: StreamId,
    /// Its delivery count.
    pub deliveries: u64,
    /// Why.
    pub reason: String,
    /// Where it went.
    pub action: DeadLetterAction,
}

/// Where a dead-lettered entry went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterAction {
    /// Written to this stream and acknowledged, atomically.
    Moved(Bytes),
    /// Acknowledged and dropped.
    Dropped,
    /// Left pending (no dead-letter stream configured, or `KeepPending`).
    KeptPending,
}

/// Something the application or the adapter must act on.
///
/// Not `#[non_exhaustive]` on purpose: a driver that matches every variant
/// fails to compile when a new one is added, instead of dropping it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Open this connection, then call [`Consumer::handle_connected`] or
    /// [`Consumer::handle_connect_failed`] for it.
    Connect(Conn),
    /// Close this connection. Do not call
    /// [`Consumer::handle_disconnected`] for it: the core already knows.
    Disconnect(Conn),
    /// Hand this batch to the handler.
    Deliver(Batch),
    /// An entry was dead-lettered (the failure callback's input).
    DeadLettered(DeadLettered),
    /// Something went wrong and was handled; worth logging.
    Warning(Warning),
    /// The consumer stopped: `None` after a graceful shutdown, the cause
    /// otherwise. No further events follow.
    Stopped(Option<Error>),
}

/// A problem the consumer handled by itself.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Warning {
    /// The connection failed or was given up; reconnecting after `delay`.
    Reconnecting {
        /// Consecutive attempts so far.
        attempt: u32,
        /// Wait before the next attempt.
        delay: Duration,
        /// Why.
        cause: Error,
    },
    /// The group vanished while running (`NOGROUP`) and was created again.
    GroupRecreated,
    /// Pending entries deleted from the stream were acknowledged without
    /// reaching the handler.
    DeletedEntriesAcked {
        /// How many.
        count: usize,
    },
    /// A completion named a batch that is not in flight (already completed,
    /// or never delivered).
    UnknownBatch(BatchId),
    /// `AckOnly` named ids that were not in the batch; they were not acked.
    AckIdsNotInBatch {
        /// The batch.
        batch: BatchId,
        /// The ignored ids.
        ids: Vec<StreamId>,
    },
    /// This consumer's heartbeat key had expired: it was stalled longer than
    /// the heartbeat timeout, and others may have claimed its entries.
    HeartbeatLapsed,
    /// In the ordered mode: the lease of this stream was found gone (this
    /// consumer stalled past the heartbeat timeout, and another may hold
    /// it now). Nothing more is read from the stream until a beat takes
    /// the lease again; a batch in flight may overlap the new holder's
    /// (its fencing token, [`Batch::lease`](crate::Batch::lease), is the
    /// older).
    LeaseLost {
        /// The stream.
        stream: Bytes,
    },
    /// A consumer whose heartbeat stopped was taken for dead; its pending
    /// entries are being claimed.
    ConsumerDead {
        /// Its name.
        consumer: Bytes,
    },
    /// A dead consumer with nothing pending left was removed from the group.
    ConsumerRemoved {
        /// Its name.
        consumer: Bytes,
    },
    /// A handler has worked on a batch longer than the handler timeout: its
    /// entries are no longer kept from other consumers' claims.
    HandlerHung {
        /// The batch.
        batch: BatchId,
        /// How long it has been working.
        after: Duration,
    },
    /// The handler failed (e.g. panicked) on a batch; it was not
    /// acknowledged and will be redelivered.
    HandlerFailed {
        /// The batch.
        batch: BatchId,
        /// What happened (the panic message, for a panic).
        reason: String,
    },
    /// The server refused a write the consumer can do without for a while
    /// (out of memory: a heartbeat, re-creating a group that exists);
    /// consuming and acking go on, and the write is tried again later.
    WriteRefused {
        /// The command refused.
        command: &'static str,
        /// The server's error.
        error: ServerError,
    },
    /// Dead letters could not be moved (the `XADD` to the dead-letter stream
    /// failed: wrong key type, out of memory, no permission, ...). They were
    /// not acknowledged, stay pending, and are moved again after `retry_in`.
    DeadLetterFailed {
        /// The entries.
        ids: Vec<StreamId>,
        /// The first error.
        error: ServerError,
        /// When the move is tried again.
        retry_in: Duration,
    },
    /// A sentinel could not name the master (unreachable, no answer in
    /// time, an error, a master it does not monitor). The next one is
    /// asked; after all have failed in a row, the round starts over after
    /// `retry_in`. Consuming goes on meanwhile if the master is known.
    SentinelFailed {
        /// The sentinel.
        sentinel: ServerAddr,
        /// What went wrong.
        reason: String,
        /// `None`: the next sentinel is asked at once.
        retry_in: Option<Duration>,
    },
    /// A cluster node could not say which primary serves the stream's slot
    /// (unreachable, no answer in time, an error, a map without that slot).
    /// The next node is asked (the nodes of the last map, then the URL's);
    /// after all have failed in a row, the round starts over after
    /// `retry_in`. Consuming goes on meanwhile if the primary is known.
    ClusterNodeFailed {
        /// The node.
        node: ServerAddr,
        /// What went wrong.
        reason: String,
        /// `None`: the next node is asked at once.
        retry_in: Option<Duration>,
    },
    /// The sentinels named a new master, or in a cluster another primary
    /// serves the stream's slot (a failover, a `MOVED` after a slot
    /// migration): the data connections
    /// moved there, and entries this consumer held are replayed from it.
    MasterMoved {
        /// The old master.
        from: ServerAddr,
        /// The new one.
        to: ServerAddr,
    },
    /// A sample of the group's counts failed (the server refused or does
    /// not know the command, or its reply was not understood); the next is
    /// tried after the interval.
    SampleFailed {
        /// The command.
        command: &'static str,
        /// Why.
        error: Error,
    },
    /// The drain deadline passed with work unfinished; it stays pending for
    /// this consumer's next start or another consumer's claim.
    DrainTimedOut {
        /// Batches still in the handler.
        batches: usize,
        /// Acknowledgements not confirmed by the server.
        unacked: usize,
    },
}

impl Warning {
    /// The error this warning reports, as text, if it reports one (for
    /// `info()`'s last error and for metrics by kind).
    pub fn error(&self) -> Option<String> {
        match self {
            Warning::Reconnecting { cause, .. } => Some(cause.to_string()),
            Warning::HandlerFailed { reason, .. } => Some(reason.clone()),
            Warning::WriteRefused { command, error } => Some(format!("{command}: {error}")),
            Warning::DeadLetterFailed { error, .. } => Some(format!("dead-letter move: {error}")),
            Warning::SampleFailed { command, error } => Some(format!("{command}: {error}")),
            Warning::SentinelFailed {
                sentinel, reason, ..
            } => Some(format!(
                "sentinel {}: {reason}",
                sentinel.to_socket_string()
            )),
            _ => None,
        }
    }

    /// A short, fixed name for the warning's kind (a metric label).
    pub fn kind(&self) -> &'static str {
        match self {
            Warning::Reconnecting { .. } => "reconnecting",
            Warning::GroupRecreated => "group_recreated",
            Warning::DeletedEntriesAcked { .. } => "deleted_entries_acked",
            Warning::UnknownBatch(_) => "unknown_batch",
            Warning::AckIdsNotInBatch { .. } => "ack_ids_not_in_batch",
            Warning::HeartbeatLapsed => "heartbeat_lapsed",
            Warning::LeaseLost { .. } => "lease_lost",
            Warning::ConsumerDead { .. } => "consumer_dead",
            Warning::ConsumerRemoved { .. } => "consumer_removed",
            Warning::HandlerHung { .. } => "handler_hung",
            Warning::HandlerFailed { .. } => "handler_failed",
            Warning::WriteRefused { .. } => "write_refused",
            Warning::DeadLetterFailed { .. } => "dead_letter_failed",
            Warning::SampleFailed { .. } => "sample_failed",
            Warning::SentinelFailed { .. } => "sentinel_failed",
            Warning::ClusterNodeFailed { .. } => "cluster_node_failed",
            Warning::MasterMoved { .. } => "master_moved",
            Warning::DrainTimedOut { .. } => "drain_timed_out",
        }
    }
}

/// Counters since the consumer was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages handed to the handler.
    pub delivered: u64,
    /// Acknowledgements the server confirmed (sum of `XACK` replies),
    /// including those of entries moved to a dead-letter stream (acked in
    /// the same transaction as the move).
    pub acked: u64,
    /// Messages handed out with an attempt above 1.
    pub redelivered: u64,
    /// Entries claimed from other consumers.
    pub claimed: u64,
    /// Deleted pending entries acknowledged without delivery.
    pub deleted_acked: u64,
    /// Errors met (connection failures, protocol errors, server errors).
    pub errors: u64,
    /// Times the consumer connected (its control connection opened; the
    /// read connection, when there is one, opens and closes with it).
    pub connections: u64,
    /// Batches whose handler failed (panicked).
    pub handler_failures: u64,
    /// Messages the handler asked to retry.
    pub retried: u64,
    /// Messages dead-lettered (moved, dropped or kept).
    pub dead_lettered: u64,
    /// Consumers taken for dead after their heartbeat stopped.
    pub dead_consumers: u64,
    /// Held entries an idle refresh found claimed by another consumer (this
    /// one stalled past the min-idle time): no longer refreshed or retried
    /// here; a handler's ack of them is still sent.
    pub lost_to_others: u64,
}

impl Stats {
    /// Adds `other`'s counters to these (a consumer of several streams
    /// reports the sum of its streams').
    pub fn add(&mut self, other: &Stats) {
        let Stats {
            delivered,
            acked,
            redelivered,
            claimed,
            deleted_acked,
            errors,
            connections,
            handler_failures,
            retried,
            dead_lettered,
            dead_consumers,
            lost_to_others,
        } = *other;
        self.delivered += delivered;
        self.acked += acked;
        self.redelivered += redelivered;
        self.claimed += claimed;
        self.deleted_acked += deleted_acked;
        self.errors += errors;
        self.connections += connections;
        self.handler_failures += handler_failures;
        self.retried += retried;
        self.dead_lettered += dead_lettered;
        self.dead_consumers += dead_consumers;
        self.lost_to_others += lost_to_others;
    }
}

/// What a consumer is and has done, as adapters report it from `info()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// Stream key (lossy UTF-8); with several streams, their keys joined
    /// with commas.
    pub stream: String,
    /// Group name (lossy UTF-8).
    pub group: String,
    /// Consumer name (lossy UTF-8).
    pub consumer: String,
    /// Type name of the handler.
    pub handler: &'static str,
    /// Counters: delivered, acked, redelivered, claimed, errors, ...
    pub stats: Stats,
    /// Whether a connection is up.
    pub connected: bool,
    /// Batches with the handler now.
    pub in_flight_batches: usize,
    /// Entries held now: with the handler, waiting for a retry, being
    /// acknowledged or dead-lettered.
    pub held_entries: usize,
    /// The last error met (a failed connection, a refused command, the
    /// cause of a stop), as text; `None` until one happens.
    pub last_error: Option<String>,
    /// The group's pending count and lag at the last sample
    /// ([`sample_group_stats`](crate::ConsumerConfigBuilder::sample_group_stats));
    /// `None` when sampling is off or before the first sample.
    pub group_counts: Option<crate::reply::GroupCounts>,
}

impl ConsumerInfo {
    /// Info for a consumer with `config` and a handler of type name `handler`.
    pub fn new(config: &ConsumerConfig, handler: &'static str) -> Self {
        ConsumerInfo {
            stream: config
                .streams()
                .iter()
                .map(|s| String::from_utf8_lossy(s))
                .collect::<Vec<_>>()
                .join(","),
            group: String::from_utf8_lossy(config.group()).into_owned(),
            consumer: String::from_utf8_lossy(config.consumer()).into_owned(),
            handler,
            stats: Stats::default(),
            connected: false,
            in_flight_batches: 0,
            held_entries: 0,
            last_error: None,
            group_counts: None,
        }
    }
}

/// The message of a caught handler panic, for
/// [`Consumer::handle_handler_failed`].
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        format!("handler panicked: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        format!("handler panicked: {s}")
    } else {
        "handler panicked".to_owned()
    }
}
