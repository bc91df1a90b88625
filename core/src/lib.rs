//! # xgroup-core
//!
//! The sans-IO core of xgroup: a Redis Streams consumer-group state machine.
//! It emits RESP commands and consumes replies; it opens no sockets, reads no
//! clock, sleeps never and spawns nothing. Runtime adapters (tokio,
//! async-std/smol, blocking std) drive it over their own sockets.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Network input must never panic the core.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod client;
mod cluster;
mod command;
mod config;
mod consumer;
mod error;
mod fields;
mod handshake;
mod id;
#[doc(hidden)] // the reply parsers, for fuzzing, tests and benchmarks
pub mod reply;
#[doc(hidden)] // the frame scanner's limits, for fuzzing
pub mod resp;
mod sentinel;
mod setup;
#[cfg(feature = "sim")]
pub mod sim;
mod tls;
#[cfg(feature = "serde")]
mod typed;
mod url;

pub use client::{into_result, xadd_reply, Client, RequestId};
pub use cluster::{
    hash_tag, key_slot, parse_cluster_target, shard_for, shard_key, ClusterNode, ClusterTarget,
    ShardedStream, SlotMap, SlotMapQuestion, CLUSTER_PORT, SLOT_COUNT,
};
pub use command::{xadd, Command, CommandWriter, Trim, XAddOptions};
pub use config::{
    ConnectOptions, ConsumerConfig, ConsumerConfigBuilder, DeadLetter, Heartbeat, ReadAhead,
};
pub use consumer::{
    heartbeat_key, panic_message, Batch, BatchId, Conn, Consumer, ConsumerInfo, DeadLetterAction,
    DeadLettered, Disposition, Event, Message, MultiConsumer, Outcome, Source, Stats, StreamConn,
    TimerKind, Warning,
};
#[doc(hidden)] // for the model-vs-server tests
pub use consumer::{
    DEAD_LETTER_SCRIPT, HEARTBEAT_RELEASE_SCRIPT, HEARTBEAT_SCRIPT, LEASE_RELEASE_SCRIPT,
    LEASE_SCRIPT, REMOVE_DEAD_SCRIPT,
};
pub use error::{
    ConfigError, Error, FieldsError, FieldsErrorKind, ProtocolError, ServerError, ServerErrorKind,
};
pub use fields::{Fields, FieldsIter};
#[doc(hidden)] // a stack buffer for formatting ids, for fuzzing
pub use id::IdBuf;
pub use id::{GroupStart, InvalidStreamId, ReadFrom, StreamId};
pub use reply::{Entry, GroupCounts, ReplyError, Value};
pub use resp::{Decoder, Frame, RawFrame};
pub use sentinel::{parse_target, MasterQuestion, SentinelTarget, Target, SENTINEL_PORT};
pub use setup::{ConsumerSetup, DeadLetterHook, PreparedConsumer};
pub use tls::{Pem, TlsFailure, TlsOptions, TlsRoots};
#[cfg(feature = "json")]
pub use typed::Json;
#[cfg(feature = "serde")]
pub use typed::{from_fields, to_fields, Payload, PayloadFormat, PayloadFormatError};
pub use url::{parse_url, ServerAddr};
