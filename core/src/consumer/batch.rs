//! What the consumer hands the application and what the handler answers.

use std::time::Instant;

use bytes::Bytes;

use crate::id::StreamId;
use crate::reply::Fields;

#[cfg(doc)]
use super::Consumer;
#[cfg(doc)]
use crate::config::DeadLetter;

/// Identifies a batch handed to the application until it is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub u64);

/// Where the entries of a batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// Never delivered before (`XREADGROUP ... >`).
    New,
    /// This consumer's own pending entries, replayed after a (re)connection.
    OwnPending,
    /// Claimed from a consumer that left them idle (`XAUTOCLAIM`), or from
    /// one whose heartbeat stopped.
    Claimed,
    /// Redelivered to this consumer because its handler asked for a retry.
    Retry,
}

/// One stream entry handed to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Entry id.
    pub id: StreamId,
    /// Field/value pairs in the order the server sent them.
    pub fields: Fields,
    /// Delivery count from the server: 1 for new entries, the server's count
    /// (`XPENDING`) for replayed and claimed ones.
    pub attempt: u64,
}

/// Entries to handle; complete it with [`Consumer::handle_completion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Its id, to complete it with.
    pub id: BatchId,
    /// Stream key.
    pub stream: Bytes,
    /// Where the entries came from.
    pub source: Source,
    /// The entries, in id order.
    pub messages: Vec<Message>,
    /// In the ordered mode: the fencing token of the stream's lease this
    /// batch was handed out under ([`ConsumerConfigBuilder::ordered`](crate::ConsumerConfigBuilder::ordered)).
    /// It grows with every change of holder: a write elsewhere that
    /// carries it can be refused when a newer holder's has been seen.
    /// `None` outside the ordered mode.
    pub lease: Option<u64>,
}

/// What the handler decided for a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Acknowledge every entry of the batch.
    AckAll,
    /// Acknowledge these ids only; the rest stay pending (redelivered later).
    /// Ids that are not in the batch are ignored with a warning.
    AckOnly(Vec<StreamId>),
    /// Acknowledge nothing; every entry stays pending and is redelivered
    /// (by this consumer's replay or another's claim).
    AckNone,
    /// One decision per message. Messages not listed stay pending, like
    /// [`Disposition::Keep`]; ids not in the batch are ignored with a warning.
    Each(Vec<(StreamId, Disposition)>),
}

/// What to do with one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disposition {
    /// Acknowledge it.
    Ack,
    /// Leave it pending (redelivered by a replay or a claim, later).
    Keep,
    /// Redeliver it to this consumer after the configured retry backoff.
    Retry,
    /// Redeliver it to this consumer, not before this instant; meanwhile its
    /// idle time is kept fresh so no other consumer claims it while this one
    /// is alive.
    RetryAt(Instant),
    /// Move it to the dead letters (see [`DeadLetter`]), with a reason.
    DeadLetter(String),
}
