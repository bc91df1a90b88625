//! Typed replies: one parser per command the consumer sends.
//!
//! Parsers take the [`Frame`] by value so strings move out without copies;
//! ids and field values stay `Bytes` slices of the receive buffer. Error
//! frames become [`ServerError`]s, wrong shapes [`ProtocolError`]s — never a
//! panic.

use bytes::Bytes;

use crate::error::{Error, ProtocolError, ServerError};
use crate::id::StreamId;
use crate::resp::Frame;

/// Field/value pairs of an entry, in the order the server sent them.
pub type Fields = Vec<(Bytes, Bytes)>;

/// One stream entry as returned by `XREADGROUP`, `XCLAIM`, `XAUTOCLAIM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's id.
    pub id: StreamId,
    /// Its fields; `None` when the entry was deleted from the stream but is
    /// still in the pending list (nil body).
    pub fields: Option<Fields>,
}

/// A reply that was an error, or not the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The server answered with an error.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The reply had the wrong shape.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

impl From<ReplyError> for Error {
    fn from(e: ReplyError) -> Self {
        match e {
            ReplyError::Server(s) => Error::Server(s),
            ReplyError::Protocol(p) => Error::Protocol(p),
        }
    }
}

/// What `XGROUP CREATE` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupCreated {
    /// The group was created.
    Created,
    /// `BUSYGROUP`: it already existed (success for the consumer).
    AlreadyExisted,
}

/// `XAUTOCLAIM` reply, both shapes (6.2: two elements, nil entries for
/// deleted ones; 7.0+: three elements, deleted ids listed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AutoClaimed {
    /// Cursor for the next call; `0-0` when the scan is complete.
    pub next: StreamId,
    /// Entries now owned by the claiming consumer.
    pub entries: Vec<Entry>,
    /// 7.0+: ids that were pending but deleted from the stream (the server
    /// removed them from the pending list).
    pub deleted: Vec<StreamId>,
    /// 6.2: how many claimed entries came back as bare nils (deleted, ids
    /// unknown, still pending for the claimer).
    pub nil_entries: usize,
}

/// `XAUTOCLAIM ... JUSTID` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AutoClaimedIds {
    /// Cursor for the next call; `0-0` when the scan is complete.
    pub next: StreamId,
    /// Ids now owned by the claiming consumer.
    pub ids: Vec<StreamId>,
    /// 7.0+: deleted ids removed from the pending list.
    pub deleted: Vec<StreamId>,
}

/// `XCLAIM` reply (without `JUSTID`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claimed {
    /// Claimed entries.
    pub entries: Vec<Entry>,
    /// Entries that came back as bare nils (6.2, deleted).
    pub nil_entries: usize,
}

/// `XPENDING stream group` (summary form).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PendingSummary {
    /// Number of pending entries.
    pub count: u64,
    /// Smallest and largest pending id, when any.
    pub range: Option<(StreamId, StreamId)>,
    /// Consumers with pending entries, and how many each.
    pub consumers: Vec<(Bytes, u64)>,
}

/// One row of `XPENDING stream group [IDLE ms] start end count [consumer]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    /// Entry id.
    pub id: StreamId,
    /// Consumer that owns it.
    pub consumer: Bytes,
    /// Milliseconds since it was last delivered.
    pub idle_ms: u64,
    /// How many times it was delivered.
    pub deliveries: u64,
}

/// What `HELLO` told about the server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hello {
    /// `server` field (`redis`, `valkey`).
    pub server: Option<String>,
    /// `version` field.
    pub version: Option<String>,
    /// `proto` field (2 or 3).
    pub proto: Option<i64>,
}

/// A generic reply value, for `command(..)`: RESP2 and RESP3 types.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// Null / nil.
    Nil,
    /// Integer.
    Int(i64),
    /// Bulk (blob) string or verbatim string.
    Bulk(Bytes),
    /// Simple string (`+OK`).
    Simple(Bytes),
    /// Double (RESP3).
    Double(f64),
    /// Boolean (RESP3).
    Bool(bool),
    /// Big number (RESP3), as its decimal text.
    BigNumber(Bytes),
    /// Array, set or push.
    Array(Vec<Value>),
    /// Map (RESP3), in the order received.
    Map(Vec<(Value, Value)>),
    /// An error nested in an aggregate (e.g. in an `EXEC` reply).
    Error(ServerError),
}

/// An error frame as `Err`, any other frame unchanged.
pub fn check_error(frame: Frame) -> Result<Frame, ServerError> {
    let _ = frame;
    unimplemented!()
}

/// `+OK` (any simple string) for `command`.
pub fn ok(frame: Frame, command: &'static str) -> Result<(), ReplyError> {
    let _ = (frame, command);
    unimplemented!()
}

/// An integer reply (e.g. `XACK`'s count).
pub fn integer(frame: Frame, command: &'static str) -> Result<i64, ReplyError> {
    let _ = (frame, command);
    unimplemented!()
}

/// `XGROUP CREATE`: OK, or `BUSYGROUP` as [`GroupCreated::AlreadyExisted`].
pub fn group_create(frame: Frame) -> Result<GroupCreated, ReplyError> {
    let _ = frame;
    unimplemented!()
}

/// `XREADGROUP` entries of `stream`: RESP2 array or RESP3 map shape; a null
/// reply (timeout, nothing new) is an empty list.
pub fn xreadgroup(frame: Frame, stream: &[u8]) -> Result<Vec<Entry>, ReplyError> {
    let _ = (frame, stream);
    unimplemented!()
}

/// `XAUTOCLAIM` without `JUSTID`, 6.2 and 7.0+ shapes.
pub fn xautoclaim(frame: Frame) -> Result<AutoClaimed, ReplyError> {
    let _ = frame;
    unimplemented!()
}

/// `XAUTOCLAIM ... JUSTID`.
pub fn xautoclaim_justid(frame: Frame) -> Result<AutoClaimedIds, ReplyError> {
    let _ = frame;
    unimplemented!()
}

/// `XCLAIM` without `JUSTID`.
pub fn xclaim(frame: Frame) -> Result<Claimed, ReplyError> {
    let _ = frame;
    unimplemented!()
}

/// An array of ids (`XCLAIM ... JUSTID`).
pub fn id_list(frame: Frame, command: &'static str) -> Result<Vec<StreamId>, ReplyError> {
    let _ = (frame, command);
    unimplemented!()
}

/// `XPENDING stream group` (summary).
pub fn xpending_summary(frame: Frame) -> Result<PendingSummary, ReplyError> {
    let _ = frame;
    unimplemented!()
}

/// `XPENDING stream group [IDLE ms] start end count [consumer]` (extended).
pub fn xpending_extended(frame: Frame) -> Result<Vec<PendingEntry>, ReplyError> {
    let _ = frame;
    unimplemented!()
}

/// `HELLO` reply: RESP3 map or RESP2 flat array.
pub fn hello(frame: Frame) -> Result<Hello, ReplyError> {
    let _ = frame;
    unimplemented!()
}

impl Value {
    /// Converts a frame; error frames become [`Value::Error`].
    pub fn from_frame(frame: Frame) -> Value {
        let _ = frame;
        unimplemented!()
    }
}
