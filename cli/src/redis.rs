//! The server: a connection (xgroup's blocking `Connection`) and typed
//! reads of the replies the tool needs. Nothing here panics on a reply: a
//! reply of an unexpected shape is an error naming the command.

use std::time::Duration;

use xgroup_blocking::{Command, Connection, ConnectionOptions, Error, TlsOptions, Value};
use xgroup_core::StreamId;

use crate::error::CliError;
use crate::fail;
use crate::text::show;

/// The suffix of the consumer names that hold entries released by hung
/// handlers (never alive: no heartbeat is written for them).
pub const RELEASED_SUFFIX: &str = "~xgroup-released";

/// A connection to the server.
#[derive(Debug)]
pub struct Redis {
    conn: Connection,
}

/// One stream entry: id and fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Id.
    pub id: StreamId,
    /// Field/value pairs, in order.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What `XINFO STREAM` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Entries in the stream now.
    pub length: u64,
    /// The last id ever given out (`0-0` for none).
    pub last_generated_id: StreamId,
    /// Entries ever added (7.0+).
    pub entries_added: Option<u64>,
    /// First entry's id.
    pub first_id: Option<StreamId>,
    /// Last entry's id.
    pub last_id: Option<StreamId>,
    /// Consumer groups.
    pub groups: u64,
}

/// What `XINFO GROUPS` tells of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// Group name.
    pub name: String,
    /// Consumers.
    pub consumers: u64,
    /// Pending entries.
    pub pending: u64,
    /// Last-delivered id.
    pub last_delivered: StreamId,
    /// Entries read (7.0+; absent or invalid after some changes).
    pub entries_read: Option<u64>,
    /// Lag (7.0+; null when the server cannot tell).
    pub lag: Option<u64>,
}

/// What `XINFO CONSUMERS` tells of one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// Consumer name.
    pub name: String,
    /// Its pending entries.
    pub pending: u64,
    /// Milliseconds since it last did anything.
    pub idle_ms: u64,
    /// Milliseconds since it last read or claimed something (7.2+).
    pub inactive_ms: Option<u64>,
}

/// A count of entries, exact or stopped at a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Entries counted.
    pub n: u64,
    /// Whether all were counted (false: there are at least `n`).
    pub complete: bool,
    /// First and last id counted.
    pub first: Option<StreamId>,
    /// Last id counted.
    pub last: Option<StreamId>,
}

/// Whether a consumer is alive, by its heartbeat key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    /// Its heartbeat key is there.
    Alive,
    /// No heartbeat key: crashed, stopped, or run without heartbeats.
    Dead,
    /// A name that holds the entries of hung handlers (never alive).
    Released,
}

impl Liveness {
    /// As shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Alive => "alive",
            Liveness::Dead => "dead",
            Liveness::Released => "released",
        }
    }
}

impl Redis {
    /// Connects (and checks the login with a `PING`), with these TLS
    /// settings for a `rediss://` URL.
    pub fn connect(url: &str, tls: Option<TlsOptions>) -> Result<Self, CliError> {
        let mut options = ConnectionOptions::default()
            .connect_timeout(Duration::from_secs(5))
            .io_timeout(Duration::from_secs(30));
        if let Some(tls) = tls {
            options = options.tls(tls);
        }
        let conn = Connection::connect_with(url, options).map_err(|e| match e {
            Error::Config(c) if c.option == "tls" => {
                CliError::new(format!("bad --tls-* option: {}", c.reason))
            }
            Error::Config(c) => CliError::new(format!("bad --url: {c}")),
            Error::Connection(why) => CliError::new(format!(
                "cannot connect to {} ({})",
                crate::text::redact_url(url),
                crate::error::dedupe_segments(&why)
            )),
            other => CliError::from(other),
        })?;
        Ok(Redis { conn })
    }

    /// One command; an error reply is an `Err`.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value, CliError> {
        Ok(self.conn.command(args)?)
    }

    /// Commands in one write; error replies come back as [`Value::Error`].
    pub fn pipeline(&mut self, commands: &[Command]) -> Result<Vec<Value>, CliError> {
        Ok(self.conn.pipeline(commands)?)
    }

    /// The server's clock (`TIME`) in Unix milliseconds: ages are measured
    /// on the clock that made the ids.
    pub fn now_ms(&mut self) -> Result<u64, CliError> {
        let reply = self.cmd(&["TIME"])?;
        let parts = array(&reply, "TIME")?;
        match parts {
            [s, us] => match (uint(s), uint(us)) {
                (Some(s), Some(us)) => Ok(s * 1000 + us / 1000),
                _ => Err(unexpected("TIME", &reply)),
            },
            _ => Err(unexpected("TIME", &reply)),
        }
    }

    /// Checks that `key` is a stream: a missing key and another type are
    /// errors saying so.
    pub fn require_stream(&mut self, key: &str) -> Result<(), CliError> {
        match self.key_type(key)?.as_str() {
            "stream" => Ok(()),
            "none" => fail!("no stream {key:?}: the key does not exist"),
            other => fail!("{key:?} is not a stream: it holds a {other}"),
        }
    }

    /// The type of `key` (`none` when missing).
    pub fn key_type(&mut self, key: &str) -> Result<String, CliError> {
        let reply = self.cmd(&["TYPE", key])?;
        text(&reply).ok_or_else(|| unexpected("TYPE", &reply))
    }

    /// `XINFO STREAM`.
    pub fn stream_info(&mut self, key: &str) -> Result<StreamInfo, CliError> {
        const CMD: &str = "XINFO STREAM";
        let reply = self.cmd(&["XINFO", "STREAM", key])?;
        let info = Info::new(&reply, CMD)?;
        let entry_id = |name: &str| -> Option<StreamId> {
            match info.get(name) {
                Some(Value::Array(parts)) => parts.first().and_then(id),
                _ => None,
            }
        };
        Ok(StreamInfo {
            length: info.uint("length").ok_or_else(|| unexpected(CMD, &reply))?,
            last_generated_id: info
                .get("last-generated-id")
                .and_then(id)
                .unwrap_or(StreamId::ZERO),
            entries_added: info.uint("entries-added"),
            first_id: entry_id("first-entry"),
            last_id: entry_id("last-entry"),
            groups: info.uint("groups").unwrap_or(0),
        })
    }

    /// `XINFO GROUPS`.
    pub fn groups(&mut self, key: &str) -> Result<Vec<GroupInfo>, CliError> {
        const CMD: &str = "XINFO GROUPS";
        let reply = self.cmd(&["XINFO", "GROUPS", key])?;
        let mut out = Vec::new();
        for g in array(&reply, CMD)? {
            let info = Info::new(g, CMD)?;
            let (Some(name), Some(pending), Some(last)) = (
                info.text("name"),
                info.uint("pending"),
                info.get("last-delivered-id").and_then(id),
            ) else {
                return Err(unexpected(CMD, g));
            };
            out.push(GroupInfo {
                name,
                consumers: info.uint("consumers").unwrap_or(0),
                pending,
                last_delivered: last,
                entries_read: info.uint("entries-read"),
                lag: info.uint("lag"),
            });
        }
        Ok(out)
    }

    /// One group of `XINFO GROUPS`; an unknown group is an error.
    pub fn group(&mut self, key: &str, group: &str) -> Result<GroupInfo, CliError> {
        match self.groups(key)?.into_iter().find(|g| g.name == group) {
            Some(g) => Ok(g),
            None => fail!("no group {group:?} on stream {key:?}"),
        }
    }

    /// `XINFO CONSUMERS` (`inactive` only from Redis 7.2 on).
    pub fn consumers(&mut self, key: &str, group: &str) -> Result<Vec<ConsumerInfo>, CliError> {
        const CMD: &str = "XINFO CONSUMERS";
        let reply = self.cmd(&["XINFO", "CONSUMERS", key, group])?;
        let mut out = Vec::new();
        for c in array(&reply, CMD)? {
            let info = Info::new(c, CMD)?;
            let (Some(name), Some(pending), Some(idle_ms)) =
                (info.text("name"), info.uint("pending"), info.uint("idle"))
            else {
                return Err(unexpected(CMD, c));
            };
            out.push(ConsumerInfo {
                name,
                pending,
                idle_ms,
                // -1 (never active) reads as absent.
                inactive_ms: info.uint("inactive"),
            });
        }
        Ok(out)
    }

    /// Liveness of each consumer of `group`, by its heartbeat key (one
    /// pipelined `EXISTS` each).
    pub fn liveness(
        &mut self,
        stream: &str,
        group: &str,
        consumers: &[String],
    ) -> Result<Vec<Liveness>, CliError> {
        let commands: Vec<Command> = consumers
            .iter()
            .map(|c| {
                let key =
                    xgroup_core::heartbeat_key(stream.as_bytes(), group.as_bytes(), c.as_bytes());
                Command::from_args([&b"EXISTS"[..], &key[..]])
            })
            .collect();
        let replies = if commands.is_empty() {
            Vec::new()
        } else {
            self.pipeline(&commands)?
        };
        consumers
            .iter()
            .zip(replies.iter())
            .map(|(name, reply)| {
                if name.ends_with(RELEASED_SUFFIX) {
                    return Ok(Liveness::Released);
                }
                match reply {
                    Value::Int(0) => Ok(Liveness::Dead),
                    Value::Int(_) => Ok(Liveness::Alive),
                    Value::Error(e) => {
                        Err(CliError::new(format!("the server said: {}", e.message)))
                    }
                    other => Err(unexpected("EXISTS", other)),
                }
            })
            .collect()
    }

    /// `XRANGE key start end COUNT count`.
    pub fn xrange(
        &mut self,
        key: &str,
        start: &str,
        end: &str,
        count: u64,
    ) -> Result<Vec<Entry>, CliError> {
        let reply = self.cmd(&["XRANGE", key, start, end, "COUNT", &count.to_string()])?;
        entries(&reply, "XRANGE")
    }

    /// Counts the entries with `after < id <= upto` (`upto` `None`: to the
    /// end), stopping at `cap`.
    pub fn count_range(
        &mut self,
        key: &str,
        after: Option<StreamId>,
        upto: Option<StreamId>,
        cap: u64,
    ) -> Result<Count, CliError> {
        const PAGE: u64 = 1000;
        let end = upto.map_or_else(|| "+".to_owned(), |id| id.to_string());
        let mut start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let mut count = Count {
            n: 0,
            complete: false,
            first: None,
            last: None,
        };
        loop {
            let want = PAGE.min(cap - count.n);
            if want == 0 {
                // At the cap: complete only if nothing is left.
                count.complete = self.xrange(key, &start, &end, 1)?.is_empty();
                return Ok(count);
            }
            let page = self.xrange(key, &start, &end, want)?;
            if let Some(first) = page.first() {
                count.first.get_or_insert(first.id);
            }
            if let Some(last) = page.last() {
                count.last = Some(last.id);
                start = format!("({}", last.id);
            }
            count.n += page.len() as u64;
            if (page.len() as u64) < want {
                count.complete = true;
                return Ok(count);
            }
        }
    }
}

/// A reply of an unexpected shape, as an error.
pub fn unexpected(command: &str, reply: &Value) -> CliError {
    if let Value::Error(e) = reply {
        return CliError::new(format!("the server said: {}", e.message));
    }
    let mut shown = format!("{reply:?}");
    if shown.len() > 80 {
        let mut end = 80;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
        shown.push_str("...");
    }
    CliError::new(format!("unexpected reply to {command}: {shown}"))
}

/// The items of an array reply.
pub fn array<'a>(reply: &'a Value, command: &str) -> Result<&'a [Value], CliError> {
    match reply {
        Value::Array(items) => Ok(items),
        other => Err(unexpected(command, other)),
    }
}

/// A string-ish reply as text (lossy UTF-8; integers as their digits).
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::Bulk(b) | Value::Simple(b) | Value::BigNumber(b) => Some(show(b)),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Raw bytes of a string reply.
pub fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Bulk(b) | Value::Simple(b) => Some(b),
        _ => None,
    }
}

/// A non-negative integer (also from a string of digits, as some servers
/// send); a negative one or null is `None`.
pub fn uint(v: &Value) -> Option<u64> {
    match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::Bulk(b) | Value::Simple(b) | Value::BigNumber(b) => {
            std::str::from_utf8(b).ok()?.parse().ok()
        }
        _ => None,
    }
}

/// A stream id reply.
pub fn id(v: &Value) -> Option<StreamId> {
    bytes(v).and_then(|b| StreamId::parse(b).ok())
}

/// Entries (`XRANGE`, `XREVRANGE`): `[[id, [f, v, ...]], ...]`.
pub fn entries(reply: &Value, command: &str) -> Result<Vec<Entry>, CliError> {
    let mut out = Vec::new();
    for item in array(reply, command)? {
        let Value::Array(parts) = item else {
            return Err(unexpected(command, item));
        };
        let (Some(entry_id), fields) = (parts.first().and_then(id), parts.get(1)) else {
            return Err(unexpected(command, item));
        };
        let mut pairs = Vec::new();
        match fields {
            Some(Value::Array(flat)) => {
                for pair in flat.chunks(2) {
                    match pair {
                        [f, v] => match (bytes(f), bytes(v)) {
                            (Some(f), Some(v)) => pairs.push((f.to_vec(), v.to_vec())),
                            _ => return Err(unexpected(command, item)),
                        },
                        _ => return Err(unexpected(command, item)),
                    }
                }
            }
            Some(Value::Map(map)) => {
                for (f, v) in map {
                    match (bytes(f), bytes(v)) {
                        (Some(f), Some(v)) => pairs.push((f.to_vec(), v.to_vec())),
                        _ => return Err(unexpected(command, item)),
                    }
                }
            }
            // A deleted entry (in XCLAIM-like replies): no fields.
            Some(Value::Nil) | None => {}
            Some(_) => return Err(unexpected(command, item)),
        }
        out.push(Entry {
            id: entry_id,
            fields: pairs,
        });
    }
    Ok(out)
}

/// A RESP2 flat name/value array or a RESP3 map, read by name.
#[derive(Debug)]
pub struct Info<'a> {
    pairs: Vec<(String, &'a Value)>,
}

impl<'a> Info<'a> {
    /// Reads `reply` as name/value pairs.
    pub fn new(reply: &'a Value, command: &str) -> Result<Self, CliError> {
        let mut pairs = Vec::new();
        match reply {
            Value::Map(map) => {
                for (k, v) in map {
                    pairs.push((text(k).ok_or_else(|| unexpected(command, reply))?, v));
                }
            }
            Value::Array(flat) if flat.len() % 2 == 0 => {
                for pair in flat.chunks(2) {
                    if let [k, v] = pair {
                        pairs.push((text(k).ok_or_else(|| unexpected(command, reply))?, v));
                    }
                }
            }
            other => return Err(unexpected(command, other)),
        }
        Ok(Info { pairs })
    }

    /// The value named `name`.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    /// A non-negative integer named `name`.
    pub fn uint(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(uint)
    }

    /// A string named `name`.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).and_then(text)
    }
}
