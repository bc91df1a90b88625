//! The keyspace: streams with consumer groups, and strings with expiry.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::id::StreamId;

use super::reply::Reply;

/// Milliseconds of the virtual Unix clock at the server's creation instant.
pub(crate) const EPOCH_MS: u64 = 1_700_000_000_000;

/// A value in the keyspace.
#[derive(Debug)]
pub(crate) enum Value {
    Stream(Stream),
    Str {
        value: Bytes,
        expires: Option<Instant>,
    },
}

/// A stream: entries, last id, groups.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub(crate) entries: BTreeMap<StreamId, Vec<(Bytes, Bytes)>>,
    pub(crate) last_id: StreamId,
    pub(crate) groups: BTreeMap<Bytes, Group>,
    pub(crate) entries_added: u64,
}

/// A consumer group.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) last_id: StreamId,
    pub(crate) pel: BTreeMap<StreamId, Nack>,
    pub(crate) consumers: BTreeMap<Bytes, Consumer>,
    /// `ENTRIESREAD` (-1 = unknown); kept for completeness.
    pub(crate) entries_read: i64,
}

/// A pending entry.
#[derive(Debug, Clone)]
pub(crate) struct Nack {
    pub(crate) consumer: Bytes,
    pub(crate) delivery_time: Instant,
    pub(crate) delivery_count: u64,
}

/// A consumer of a group (its pending entries live in the group's PEL).
#[derive(Debug, Clone)]
pub(crate) struct Consumer {
    pub(crate) seen: Instant,
}

impl Group {
    pub(crate) fn new(last_id: StreamId, entries_read: i64) -> Self {
        Group {
            last_id,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
            entries_read,
        }
    }

    /// Looks the consumer up, creating it if needed.
    pub(crate) fn touch_consumer(&mut self, name: &Bytes, now: Instant) {
        self.consumers
            .entry(name.clone())
            .and_modify(|c| c.seen = now)
            .or_insert(Consumer { seen: now });
    }
}

impl Stream {
    /// Id of the last entry still in the stream (`0-0` if empty).
    pub(crate) fn last_valid_id(&self) -> StreamId {
        self.entries
            .keys()
            .next_back()
            .copied()
            .unwrap_or(StreamId::ZERO)
    }

    /// Deletes entries by `MAXLEN` or `MINID`; returns how many.
    pub(crate) fn trim(&mut self, trim: Trim) -> u64 {
        let mut removed = 0;
        match trim {
            Trim::MaxLen(max) => {
                while self.entries.len() as u64 > max {
                    if self.entries.pop_first().is_none() {
                        break;
                    }
                    removed += 1;
                }
            }
            Trim::MinId(min) => {
                while let Some(entry) = self.entries.first_entry() {
                    if *entry.key() >= min {
                        break;
                    }
                    entry.remove();
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// A trimming strategy.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// `[id, [f, v, ...]]`.
pub(crate) fn entry_reply(id: StreamId, fields: &[(Bytes, Bytes)]) -> Reply {
    let mut flat = Vec::with_capacity(fields.len() * 2);
    for (f, v) in fields {
        flat.push(Reply::Bulk(f.clone()));
        flat.push(Reply::Bulk(v.clone()));
    }
    Reply::Array(vec![Reply::id(id), Reply::Array(flat)])
}

/// One numbered database.
#[derive(Debug, Default)]
pub(crate) struct Db {
    pub(crate) keys: BTreeMap<Bytes, Value>,
}

/// Milliseconds between two instants, saturating at 0.
pub(crate) fn ms_between(earlier: Instant, later: Instant) -> u64 {
    u64::try_from(later.saturating_duration_since(earlier).as_millis()).unwrap_or(u64::MAX)
}

/// `now` moved back by `ms` milliseconds (or `floor` if that is not representable).
pub(crate) fn instant_minus(now: Instant, ms: u64, floor: Instant) -> Instant {
    now.checked_sub(Duration::from_millis(ms)).unwrap_or(floor)
}
