//! `xgroup describe <stream> [--group G]`.

use std::io::Write;

use serde::Serialize;
use xgroup_core::StreamId;

use crate::cli::DescribeArgs;
use crate::error::CliError;
use crate::redis::{self, GroupInfo, Liveness, Redis, StreamInfo};
use crate::table::{Align, Table};
use crate::text::{datetime_ms, human_ms};

/// How many entries `describe` counts when the server gives no lag, and
/// how many pending entries it reads for the histogram, at most.
pub const SCAN_CAP: u64 = 100_000;

/// Where a lag comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LagSource {
    /// `XINFO GROUPS` gave it.
    Server,
    /// The server gave none (entries were deleted, or Redis < 7): the
    /// entries after the last-delivered id were counted.
    Counted,
    /// Counted, but the count stopped at its cap: there are at least this
    /// many.
    AtLeast,
}

/// A stream and its groups.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    /// Stream key.
    pub stream: String,
    /// Entries in it.
    pub length: u64,
    /// Entries ever added (Redis 7+).
    pub entries_added: Option<u64>,
    /// First entry's id.
    pub first_id: Option<String>,
    /// Last entry's id.
    pub last_id: Option<String>,
    /// The server's clock when this was read (RFC 3339).
    pub server_time: String,
    /// The same in Unix milliseconds.
    pub server_time_ms: u64,
    /// How many groups it has.
    pub group_count: u64,
    /// Its groups (or the one asked for).
    pub groups: Vec<GroupReport>,
}

/// One group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// Group name.
    pub name: String,
    /// Entries not yet delivered to the group (see `lag_source`).
    pub lag: u64,
    /// Where `lag` comes from.
    pub lag_source: LagSource,
    /// Entries read, as the server counts them (Redis 7+; null when it
    /// cannot tell).
    pub entries_read: Option<u64>,
    /// Entries delivered and not acknowledged.
    pub pending: u64,
    /// The oldest pending entry.
    pub oldest_pending: Option<OldestPending>,
    /// Last id delivered to the group.
    pub last_delivered_id: String,
    /// Its time (null for `0-0`: nothing delivered yet).
    pub last_delivered_time: Option<String>,
    /// How long ago that was, on the server's clock.
    pub last_delivered_age_ms: Option<u64>,
    /// Consumers.
    pub consumers: Vec<ConsumerReport>,
    /// Pending entries by delivery count (non-empty buckets only).
    pub deliveries: Vec<Bucket>,
    /// Pending entries read for `deliveries`.
    pub deliveries_scanned: u64,
    /// Whether that was all of them (false past the scan cap).
    pub deliveries_complete: bool,
}

/// The oldest pending entry of a group.
#[derive(Debug, Clone, Serialize)]
pub struct OldestPending {
    /// Its id.
    pub id: String,
    /// Its age (server clock minus the id's time).
    pub age_ms: u64,
}

/// One consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerReport {
    /// Name.
    pub name: String,
    /// Alive, dead or released, by heartbeat.
    pub state: Liveness,
    /// Its pending entries.
    pub pending: u64,
    /// Milliseconds since it last did anything.
    pub idle_ms: u64,
    /// Milliseconds since it last read or claimed (Redis 7.2+; null before).
    pub inactive_ms: Option<u64>,
}

/// Pending entries delivered a number of times in a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// `1`, `2`, ..., `6-10`, `11-100`, `101+`.
    pub deliveries: &'static str,
    /// How many entries.
    pub entries: u64,
}

const BUCKETS: [(&str, u64, u64); 8] = [
    ("1", 1, 1),
    ("2", 2, 2),
    ("3", 3, 3),
    ("4", 4, 4),
    ("5", 5, 5),
    ("6-10", 6, 10),
    ("11-100", 11, 100),
    ("101+", 101, u64::MAX),
];

/// Runs `describe`.
pub fn run(
    redis: &mut Redis,
    args: &DescribeArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let report = collect(redis, &args.stream, args.group.as_deref())?;
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::new(format!("cannot write JSON: {e}")))?;
        writeln!(out, "{text}")?;
    } else {
        out.write_all(render(&report).as_bytes())?;
    }
    Ok(())
}

/// Reads everything `describe` shows.
pub fn collect(
    redis: &mut Redis,
    stream: &str,
    group: Option<&str>,
) -> Result<StreamReport, CliError> {
    redis.require_stream(stream)?;
    let now = redis.now_ms()?;
    let info = redis.stream_info(stream)?;
    let groups = match group {
        Some(name) => vec![redis.group(stream, name)?],
        None => redis.groups(stream)?,
    };
    let mut reports = Vec::new();
    for g in groups {
        reports.push(group_report(redis, stream, &g, now)?);
    }
    Ok(stream_report(stream, &info, now, reports))
}

fn stream_report(
    stream: &str,
    info: &StreamInfo,
    now: u64,
    groups: Vec<GroupReport>,
) -> StreamReport {
    StreamReport {
        stream: stream.to_owned(),
        length: info.length,
        entries_added: info.entries_added,
        first_id: info.first_id.map(|id| id.to_string()),
        last_id: info.last_id.map(|id| id.to_string()),
        server_time: datetime_ms(now),
        server_time_ms: now,
        group_count: info.groups,
        groups,
    }
}

/// The lag of a group: the server's, else counted (see [`LagSource`]).
/// Never a made-up 0.
pub fn lag(
    redis: &mut Redis,
    stream: &str,
    g: &GroupInfo,
    cap: u64,
) -> Result<(u64, LagSource), CliError> {
    if let Some(lag) = g.lag {
        return Ok((lag, LagSource::Server));
    }
    let count = redis.count_range(stream, Some(g.last_delivered), None, cap)?;
    let source = if count.complete {
        LagSource::Counted
    } else {
        LagSource::AtLeast
    };
    Ok((count.n, source))
}

/// One group's consumers with their liveness.
pub fn consumers(
    redis: &mut Redis,
    stream: &str,
    group: &str,
) -> Result<Vec<ConsumerReport>, CliError> {
    let consumers = redis.consumers(stream, group)?;
    let names: Vec<String> = consumers.iter().map(|c| c.name.clone()).collect();
    let states = redis.liveness(stream, group, &names)?;
    Ok(consumers
        .into_iter()
        .zip(states)
        .map(|(c, state)| ConsumerReport {
            name: c.name,
            state,
            pending: c.pending,
            idle_ms: c.idle_ms,
            inactive_ms: c.inactive_ms,
        })
        .collect())
}

fn group_report(
    redis: &mut Redis,
    stream: &str,
    g: &GroupInfo,
    now: u64,
) -> Result<GroupReport, CliError> {
    let (lag, lag_source) = lag(redis, stream, g, SCAN_CAP)?;
    let consumers = consumers(redis, stream, &g.name)?;

    // The histogram (and the oldest pending entry): XPENDING, page by page.
    let mut counts = [0u64; BUCKETS.len()];
    let mut scanned = 0u64;
    let mut oldest: Option<StreamId> = None;
    let mut start = "-".to_owned();
    let mut complete = false;
    while scanned < SCAN_CAP {
        let page = 1000.min(SCAN_CAP - scanned);
        let reply = redis.cmd(&["XPENDING", stream, &g.name, &start, "+", &page.to_string()])?;
        let rows = redis::array(&reply, "XPENDING")?;
        for row in rows {
            let (id, deliveries) = match row {
                Value::Array(parts) if parts.len() == 4 => {
                    (redis::id(&parts[0]), redis::uint(&parts[3]))
                }
                _ => (None, None),
            };
            let (Some(id), Some(deliveries)) = (id, deliveries) else {
                return Err(redis::unexpected("XPENDING", row));
            };
            oldest.get_or_insert(id);
            if let Some(i) = BUCKETS
                .iter()
                .position(|&(_, lo, hi)| (lo..=hi).contains(&deliveries))
            {
                counts[i] += 1;
            }
            start = format!("({id}");
        }
        scanned += rows.len() as u64;
        if (rows.len() as u64) < page {
            complete = true;
            break;
        }
    }
    let deliveries = BUCKETS
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(&(label, _, _), n)| Bucket {
            deliveries: label,
            entries: n,
        })
        .collect();
    let last = g.last_delivered;
    Ok(GroupReport {
        name: g.name.clone(),
        lag,
        lag_source,
        entries_read: g.entries_read,
        pending: g.pending,
        oldest_pending: oldest.map(|id| OldestPending {
            id: id.to_string(),
            age_ms: now.saturating_sub(id.ms),
        }),
        last_delivered_id: last.to_string(),
        last_delivered_time: (!last.is_zero()).then(|| datetime_ms(last.ms)),
        last_delivered_age_ms: (!last.is_zero()).then(|| now.saturating_sub(last.ms)),
        consumers,
        deliveries,
        deliveries_scanned: scanned,
        deliveries_complete: complete,
    })
}

use xgroup_blocking::Value;

/// A lag for people: `12`, `at least 100000`.
pub fn show_lag(lag: u64, source: LagSource) -> String {
    match source {
        LagSource::Server => lag.to_string(),
        LagSource::Counted => format!("{lag} (counted: the server gives none)"),
        LagSource::AtLeast => format!("at least {lag} (counted up to a cap)"),
    }
}

/// The human form of a report.
pub fn render(r: &StreamReport) -> String {
    let mut s = String::new();
    let id_and_time = |id: &Option<String>| match id {
        Some(id) => {
            let ms = StreamId::parse(id.as_bytes()).map_or(0, |i| i.ms);
            format!("{id}  {}", datetime_ms(ms))
        }
        None => "-".to_owned(),
    };
    s.push_str(&format!("stream {}\n", r.stream));
    s.push_str(&format!("  length          {}\n", r.length));
    if let Some(added) = r.entries_added {
        s.push_str(&format!("  entries added   {added}\n"));
    }
    s.push_str(&format!("  first entry     {}\n", id_and_time(&r.first_id)));
    s.push_str(&format!("  last entry      {}\n", id_and_time(&r.last_id)));
    if r.groups.len() as u64 == r.group_count {
        s.push_str(&format!("  groups          {}\n", r.group_count));
    } else {
        s.push_str(&format!(
            "  groups          {} ({} shown)\n",
            r.group_count,
            r.groups.len()
        ));
    }
    for g in &r.groups {
        s.push('\n');
        s.push_str(&format!("group {}\n", g.name));
        let delivered = match (&g.last_delivered_time, g.last_delivered_age_ms) {
            (Some(t), Some(age)) => format!("{}  {t} ({} ago)", g.last_delivered_id, human_ms(age)),
            _ => format!("{}  (nothing delivered yet)", g.last_delivered_id),
        };
        s.push_str(&format!("  last delivered  {delivered}\n"));
        if let Some(read) = g.entries_read {
            s.push_str(&format!("  entries read    {read}\n"));
        }
        s.push_str(&format!(
            "  lag             {}\n",
            show_lag(g.lag, g.lag_source)
        ));
        let pending = match &g.oldest_pending {
            Some(o) => format!(
                "{}, oldest {} ({} old)",
                g.pending,
                o.id,
                human_ms(o.age_ms)
            ),
            None => g.pending.to_string(),
        };
        s.push_str(&format!("  pending         {pending}\n"));
        let alive = g
            .consumers
            .iter()
            .filter(|c| c.state == Liveness::Alive)
            .count();
        s.push_str(&format!(
            "  consumers       {} ({alive} alive)\n",
            g.consumers.len()
        ));
        if !g.consumers.is_empty() {
            let mut t = Table::new(&[
                ("CONSUMER", Align::Left),
                ("STATE", Align::Left),
                ("PENDING", Align::Right),
                ("IDLE", Align::Right),
                ("INACTIVE", Align::Right),
            ]);
            for c in &g.consumers {
                t.row(vec![
                    c.name.clone(),
                    c.state.as_str().to_owned(),
                    c.pending.to_string(),
                    human_ms(c.idle_ms),
                    c.inactive_ms.map_or_else(|| "-".to_owned(), human_ms),
                ]);
            }
            s.push('\n');
            s.push_str(&t.render("  "));
        }
        if !g.deliveries.is_empty() {
            let max = g
                .deliveries
                .iter()
                .map(|b| b.entries)
                .max()
                .unwrap_or(1)
                .max(1);
            let mut t = Table::new(&[
                ("DELIVERIES", Align::Right),
                ("ENTRIES", Align::Right),
                ("", Align::Left),
            ]);
            for b in &g.deliveries {
                let bar = (b.entries * 30).div_ceil(max) as usize;
                t.row(vec![
                    b.deliveries.to_owned(),
                    b.entries.to_string(),
                    "#".repeat(bar),
                ]);
            }
            s.push('\n');
            s.push_str(&t.render("  "));
            if !g.deliveries_complete {
                s.push_str(&format!(
                    "  (the first {} pending entries only)\n",
                    g.deliveries_scanned
                ));
            }
        }
    }
    s
}
