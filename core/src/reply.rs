//! Typed replies: one parser per command the consumer sends.
//!
//! Parsers take the [`Frame`] by value so strings move out without copies;
//! ids and field values stay `Bytes` slices of the receive buffer. Error
//! frames become [`ServerError`]s, wrong shapes [`ProtocolError`]s — never a
//! panic.

use bytes::Bytes;

use crate::error::{Error, ProtocolError, ServerError, ServerErrorKind};
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
    match frame {
        Frame::SimpleError { data, .. } => Err(ServerError::from_message(data.as_bytes())),
        Frame::BlobError { data, .. } => Err(ServerError::from_message(&data)),
        other => Ok(other),
    }
}

/// `+OK` (any simple string) for `command`.
pub fn ok(frame: Frame, command: &'static str) -> Result<(), ReplyError> {
    match check_error(frame)? {
        Frame::SimpleString { .. } => Ok(()),
        other => Err(bad(
            command,
            format!("expected +OK, got {}", describe(&other)),
        )),
    }
}

/// An integer reply (e.g. `XACK`'s count).
pub fn integer(frame: Frame, command: &'static str) -> Result<i64, ReplyError> {
    match check_error(frame)? {
        Frame::Number { data, .. } => Ok(data),
        other => Err(bad(
            command,
            format!("expected an integer, got {}", describe(&other)),
        )),
    }
}

/// `XGROUP CREATE`: OK, or `BUSYGROUP` as [`GroupCreated::AlreadyExisted`].
pub fn group_create(frame: Frame) -> Result<GroupCreated, ReplyError> {
    match check_error(frame) {
        Ok(Frame::SimpleString { .. }) => Ok(GroupCreated::Created),
        Ok(other) => Err(bad(
            "XGROUP CREATE",
            format!("expected +OK, got {}", describe(&other)),
        )),
        Err(e) if e.kind == ServerErrorKind::BusyGroup => Ok(GroupCreated::AlreadyExisted),
        Err(e) => Err(ReplyError::Server(e)),
    }
}

/// `XREADGROUP` entries of `stream`: RESP2 array or RESP3 map shape; a null
/// reply (timeout, nothing new) is an empty list.
pub fn xreadgroup(frame: Frame, stream: &[u8]) -> Result<Vec<Entry>, ReplyError> {
    const CMD: &str = "XREADGROUP";
    let mut found = Vec::new();
    let mut take = |name: Frame, entries: Frame| -> Result<(), ReplyError> {
        let name = string(name, CMD, "stream name")?;
        if name.as_ref() == stream {
            let list = array(entries, CMD, "stream entries")?;
            found.reserve(list.len());
            for item in list {
                found.push(entry(item, CMD)?);
            }
        }
        Ok(())
    };
    match check_error(frame)? {
        Frame::Null => {}
        Frame::Map { data, .. } => {
            for (name, entries) in data {
                take(name, entries)?;
            }
        }
        Frame::Array { data, .. } => {
            for pair in data {
                let [name, entries] = tuple(pair, CMD, "stream reply")?;
                take(name, entries)?;
            }
        }
        other => {
            return Err(bad(
                CMD,
                format!("expected a map, an array or null, got {}", describe(&other)),
            ))
        }
    }
    Ok(found)
}

/// `XAUTOCLAIM` without `JUSTID`, 6.2 and 7.0+ shapes.
pub fn xautoclaim(frame: Frame) -> Result<AutoClaimed, ReplyError> {
    const CMD: &str = "XAUTOCLAIM";
    let (next, entries, deleted) = autoclaim_parts(frame, CMD)?;
    let mut out = AutoClaimed {
        next,
        entries: Vec::with_capacity(entries.len()),
        deleted,
        nil_entries: 0,
    };
    for item in entries {
        match item {
            Frame::Null => out.nil_entries += 1,
            item => out.entries.push(entry(item, CMD)?),
        }
    }
    Ok(out)
}

/// `XAUTOCLAIM ... JUSTID`.
pub fn xautoclaim_justid(frame: Frame) -> Result<AutoClaimedIds, ReplyError> {
    const CMD: &str = "XAUTOCLAIM JUSTID";
    let (next, ids, deleted) = autoclaim_parts(frame, CMD)?;
    Ok(AutoClaimedIds {
        next,
        ids: ids
            .into_iter()
            .map(|f| id(f, CMD, "claimed id"))
            .collect::<Result<_, _>>()?,
        deleted,
    })
}

/// `XCLAIM` without `JUSTID`.
pub fn xclaim(frame: Frame) -> Result<Claimed, ReplyError> {
    const CMD: &str = "XCLAIM";
    let items = array(check_error(frame)?, CMD, "reply")?;
    let mut out = Claimed {
        entries: Vec::with_capacity(items.len()),
        nil_entries: 0,
    };
    for item in items {
        match item {
            Frame::Null => out.nil_entries += 1,
            item => out.entries.push(entry(item, CMD)?),
        }
    }
    Ok(out)
}

/// An array of ids (`XCLAIM ... JUSTID`).
pub fn id_list(frame: Frame, command: &'static str) -> Result<Vec<StreamId>, ReplyError> {
    array(check_error(frame)?, command, "reply")?
        .into_iter()
        .map(|f| id(f, command, "id"))
        .collect()
}

/// `XPENDING stream group` (summary).
pub fn xpending_summary(frame: Frame) -> Result<PendingSummary, ReplyError> {
    const CMD: &str = "XPENDING";
    let [count, min, max, consumers] = tuple(check_error(frame)?, CMD, "summary")?;
    let count = uint(count, CMD, "pending count")?;
    let range = match (min, max) {
        (Frame::Null, Frame::Null) => None,
        (min, max) => Some((
            id(min, CMD, "smallest pending id")?,
            id(max, CMD, "largest pending id")?,
        )),
    };
    let consumers = match consumers {
        Frame::Null => Vec::new(),
        list => array(list, CMD, "consumer list")?
            .into_iter()
            .map(|pair| {
                let [name, n] = tuple(pair, CMD, "consumer")?;
                Ok((
                    string(name, CMD, "consumer name")?,
                    uint(n, CMD, "consumer pending count")?,
                ))
            })
            .collect::<Result<_, ReplyError>>()?,
    };
    Ok(PendingSummary {
        count,
        range,
        consumers,
    })
}

/// `XPENDING stream group [IDLE ms] start end count [consumer]` (extended).
pub fn xpending_extended(frame: Frame) -> Result<Vec<PendingEntry>, ReplyError> {
    const CMD: &str = "XPENDING";
    array(check_error(frame)?, CMD, "reply")?
        .into_iter()
        .map(|row| {
            let [entry_id, consumer, idle, deliveries] = tuple(row, CMD, "pending entry")?;
            Ok(PendingEntry {
                id: id(entry_id, CMD, "pending entry id")?,
                consumer: string(consumer, CMD, "consumer name")?,
                idle_ms: uint(idle, CMD, "idle time")?,
                deliveries: uint(deliveries, CMD, "delivery count")?,
            })
        })
        .collect()
}

/// `HELLO` reply: RESP3 map or RESP2 flat array.
pub fn hello(frame: Frame) -> Result<Hello, ReplyError> {
    const CMD: &str = "HELLO";
    let mut out = Hello::default();
    let mut field = |key: Frame, value: Frame| -> Result<(), ReplyError> {
        let Some(key) = text(&key) else {
            return Ok(());
        };
        match key.as_ref() {
            b"server" => out.server = Some(lossy(string(value, CMD, "server")?)),
            b"version" => out.version = Some(lossy(string(value, CMD, "version")?)),
            b"proto" => out.proto = Some(int(value, CMD, "proto")?),
            _ => {}
        }
        Ok(())
    };
    match check_error(frame)? {
        Frame::Map { data, .. } => {
            for (key, value) in data {
                field(key, value)?;
            }
        }
        Frame::Array { data, .. } => {
            if data.len() % 2 != 0 {
                return Err(bad(
                    CMD,
                    format!("flat key/value array of odd length {}", data.len()),
                ));
            }
            let mut items = data.into_iter();
            while let (Some(key), Some(value)) = (items.next(), items.next()) {
                field(key, value)?;
            }
        }
        other => {
            return Err(bad(
                CMD,
                format!("expected a map or an array, got {}", describe(&other)),
            ))
        }
    }
    Ok(out)
}

impl Value {
    /// Converts a frame; error frames become [`Value::Error`].
    pub fn from_frame(frame: Frame) -> Value {
        match frame {
            Frame::BlobString { data, .. } | Frame::VerbatimString { data, .. } => {
                Value::Bulk(data)
            }
            Frame::ChunkedString(data) => Value::Bulk(data),
            Frame::SimpleString { data, .. } => Value::Simple(data),
            Frame::SimpleError { data, .. } => {
                Value::Error(ServerError::from_message(data.as_bytes()))
            }
            Frame::BlobError { data, .. } => Value::Error(ServerError::from_message(&data)),
            Frame::Boolean { data, .. } => Value::Bool(data),
            Frame::Null => Value::Nil,
            Frame::Number { data, .. } => Value::Int(data),
            Frame::Double { data, .. } => Value::Double(data),
            Frame::BigNumber { data, .. } => Value::BigNumber(data),
            Frame::Array { data, .. } | Frame::Push { data, .. } => {
                Value::Array(data.into_iter().map(Value::from_frame).collect())
            }
            Frame::Set { data, .. } => {
                Value::Array(data.into_iter().map(Value::from_frame).collect())
            }
            Frame::Map { data, .. } => Value::Map(
                data.into_iter()
                    .map(|(k, v)| (Value::from_frame(k), Value::from_frame(v)))
                    .collect(),
            ),
            // A client-to-server frame; the decoder never produces it.
            Frame::Hello { .. } => Value::Nil,
        }
    }
}

// ---- private helpers -------------------------------------------------------

fn bad(command: &'static str, detail: impl Into<String>) -> ReplyError {
    ReplyError::Protocol(ProtocolError::unexpected(command, detail))
}

/// A short description of a frame for error messages.
fn describe(frame: &Frame) -> String {
    match frame {
        Frame::BlobString { data, .. } | Frame::SimpleString { data, .. } => {
            let shown = data.get(..data.len().min(32)).unwrap_or_default();
            format!("string {:?}", String::from_utf8_lossy(shown))
        }
        Frame::Number { data, .. } => format!("integer {data}"),
        Frame::Array { data, .. } => format!("array of {}", data.len()),
        Frame::Map { data, .. } => format!("map of {}", data.len()),
        Frame::Set { data, .. } => format!("set of {}", data.len()),
        Frame::Push { data, .. } => format!("push of {}", data.len()),
        Frame::Null => "null".to_owned(),
        Frame::SimpleError { .. } | Frame::BlobError { .. } => "nested error".to_owned(),
        Frame::Boolean { .. } => "boolean".to_owned(),
        Frame::Double { .. } => "double".to_owned(),
        Frame::BigNumber { .. } => "big number".to_owned(),
        Frame::VerbatimString { .. } => "verbatim string".to_owned(),
        Frame::Hello { .. } => "HELLO frame".to_owned(),
        Frame::ChunkedString(_) => "string chunk".to_owned(),
    }
}

fn array(frame: Frame, command: &'static str, what: &str) -> Result<Vec<Frame>, ReplyError> {
    match frame {
        Frame::Array { data, .. } => Ok(data),
        other => Err(bad(
            command,
            format!("{what}: expected an array, got {}", describe(&other)),
        )),
    }
}

/// An array of exactly `N` elements.
fn tuple<const N: usize>(
    frame: Frame,
    command: &'static str,
    what: &str,
) -> Result<[Frame; N], ReplyError> {
    array(frame, command, what)?
        .try_into()
        .map_err(|v: Vec<Frame>| {
            bad(
                command,
                format!("{what}: expected {N} elements, got {}", v.len()),
            )
        })
}

/// The bytes of a string frame, without consuming it.
fn text(frame: &Frame) -> Option<&Bytes> {
    match frame {
        Frame::BlobString { data, .. }
        | Frame::SimpleString { data, .. }
        | Frame::VerbatimString { data, .. } => Some(data),
        _ => None,
    }
}

fn string(frame: Frame, command: &'static str, what: &str) -> Result<Bytes, ReplyError> {
    match frame {
        Frame::BlobString { data, .. }
        | Frame::SimpleString { data, .. }
        | Frame::VerbatimString { data, .. } => Ok(data),
        other => Err(bad(
            command,
            format!("{what}: expected a string, got {}", describe(&other)),
        )),
    }
}

fn lossy(bytes: Bytes) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

fn id(frame: Frame, command: &'static str, what: &str) -> Result<StreamId, ReplyError> {
    let raw = string(frame, command, what)?;
    StreamId::parse(&raw).map_err(|e| bad(command, format!("{what}: {e}")))
}

/// An integer sent as a RESP integer or as a decimal string.
fn int(frame: Frame, command: &'static str, what: &str) -> Result<i64, ReplyError> {
    match frame {
        Frame::Number { data, .. } => Ok(data),
        other => {
            let parsed = text(&other)
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| t.parse::<i64>().ok());
            parsed.ok_or_else(|| {
                bad(
                    command,
                    format!("{what}: expected an integer, got {}", describe(&other)),
                )
            })
        }
    }
}

fn uint(frame: Frame, command: &'static str, what: &str) -> Result<u64, ReplyError> {
    let n = int(frame, command, what)?;
    u64::try_from(n).map_err(|_| bad(command, format!("{what}: negative value {n}")))
}

/// `[id, [field, value, ...]]` or `[id, nil]`.
fn entry(frame: Frame, command: &'static str) -> Result<Entry, ReplyError> {
    let [entry_id, body] = tuple(frame, command, "entry")?;
    let id = id(entry_id, command, "entry id")?;
    let fields = match body {
        Frame::Null => None,
        body => {
            let items = array(body, command, "entry fields")?;
            if items.len() % 2 != 0 {
                return Err(bad(
                    command,
                    format!("entry {id}: odd number of field items ({})", items.len()),
                ));
            }
            let mut fields = Vec::with_capacity(items.len() / 2);
            let mut items = items.into_iter();
            while let (Some(f), Some(v)) = (items.next(), items.next()) {
                fields.push((
                    string(f, command, "field name")?,
                    string(v, command, "field value")?,
                ));
            }
            Some(fields)
        }
    };
    Ok(Entry { id, fields })
}

/// `[cursor, [items...]]` (6.2) or `[cursor, [items...], [deleted ids...]]`.
fn autoclaim_parts(
    frame: Frame,
    command: &'static str,
) -> Result<(StreamId, Vec<Frame>, Vec<StreamId>), ReplyError> {
    let parts = array(check_error(frame)?, command, "reply")?;
    let n = parts.len();
    let mut parts = parts.into_iter();
    let (Some(cursor), Some(items), deleted, None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(
            command,
            format!("reply: expected 2 or 3 elements, got {n}"),
        ));
    };
    let next = id(cursor, command, "cursor")?;
    let items = array(items, command, "claimed entries")?;
    let deleted = match deleted {
        None => Vec::new(),
        Some(list) => array(list, command, "deleted ids")?
            .into_iter()
            .map(|f| id(f, command, "deleted id"))
            .collect::<Result<_, _>>()?,
    };
    Ok((next, items, deleted))
}
