//! `xgroup reset <stream> <group> --to-...`: moves a group's last-delivered
//! id with `XGROUP SETID`. A dry run unless `--execute`: it prints the ids
//! before and after and how many entries would be read again or skipped.
//!
//! Stream ids start with their time in milliseconds, so a time maps
//! exactly to a position: `--to-datetime T` (and `--by-duration D`, which
//! is the server's clock minus D) sets the last-delivered id to the last
//! possible id before `T`, so the next entry delivered is the first one
//! added at or after `T`. `--to-id ID` sets it to `ID` itself, as
//! `XGROUP SETID` does (the next entry delivered is the first after `ID`).
//! Pending entries are not touched.

use std::io::Write;

use serde::Serialize;
use xgroup_core::StreamId;

use crate::cli::ResetArgs;
use crate::error::CliError;
use crate::redis::Redis;
use crate::text::{datetime_ms, predecessor};

/// How far `reset` counts the entries it would re-read or skip.
pub const COUNT_CAP: u64 = 1_000_000;

/// What a reset changes.
#[derive(Debug, Clone, Serialize)]
pub struct ResetReport {
    /// Stream.
    pub stream: String,
    /// Group.
    pub group: String,
    /// Whether it was applied (false: a dry run).
    pub executed: bool,
    /// Last-delivered id before.
    pub from_id: String,
    /// Last-delivered id after.
    pub to_id: String,
    /// `re-read` (moved back), `skip` (moved forward) or `none`.
    pub direction: &'static str,
    /// Entries between the two ids: delivered again, or never delivered.
    pub entries: u64,
    /// Whether `entries` is exact (false: at least that many).
    pub entries_exact: bool,
    /// First and last of those entries.
    pub first_id: Option<String>,
    /// Last of those entries.
    pub last_id: Option<String>,
    /// Pending entries of the group (unchanged by a reset).
    pub pending: u64,
}

/// Runs `reset`.
pub fn run(
    redis: &mut Redis,
    args: &ResetArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    redis.require_stream(&args.stream)?;
    let group = redis.group(&args.stream, &args.group)?;
    let t = &args.target;
    let before_time = |ms: u64| predecessor(StreamId::new(ms, 0)).unwrap_or(StreamId::ZERO);
    let target = if let Some(ms) = t.to_datetime {
        before_time(ms)
    } else if let Some(d) = t.by_duration {
        let now = redis.now_ms()?;
        before_time(now.saturating_sub(d.as_millis() as u64))
    } else if t.to_earliest {
        StreamId::ZERO
    } else if t.to_latest {
        redis.stream_info(&args.stream)?.last_generated_id
    } else if let Some(id) = t.to_id {
        id
    } else {
        crate::fail!(
            "say where to: --to-datetime, --by-duration, --to-earliest, --to-latest or --to-id"
        );
    };
    let from = group.last_delivered;
    let (direction, count) = if target < from {
        (
            "re-read",
            Some(redis.count_range(&args.stream, Some(target), Some(from), COUNT_CAP)?),
        )
    } else if target > from {
        (
            "skip",
            Some(redis.count_range(&args.stream, Some(from), Some(target), COUNT_CAP)?),
        )
    } else {
        ("none", None)
    };
    if args.execute && direction != "none" {
        redis.cmd(&[
            "XGROUP",
            "SETID",
            &args.stream,
            &args.group,
            &target.to_string(),
        ])?;
    }
    let report = ResetReport {
        stream: args.stream.clone(),
        group: args.group.clone(),
        executed: args.execute,
        from_id: from.to_string(),
        to_id: target.to_string(),
        direction,
        entries: count.map_or(0, |c| c.n),
        entries_exact: count.is_none_or(|c| c.complete),
        first_id: count.and_then(|c| c.first).map(|id| id.to_string()),
        last_id: count.and_then(|c| c.last).map(|id| id.to_string()),
        pending: group.pending,
    };
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::new(format!("cannot write JSON: {e}")))?;
        writeln!(out, "{text}")?;
        return Ok(());
    }
    out.write_all(render(&report).as_bytes())?;
    Ok(())
}

fn id_time(id: &str) -> String {
    match StreamId::parse(id.as_bytes()) {
        Ok(i) if i.is_zero() => format!("{id}  (the start)"),
        Ok(i) => format!("{id}  {}", datetime_ms(i.ms)),
        Err(_) => id.to_owned(),
    }
}

/// The human form.
pub fn render(r: &ResetReport) -> String {
    let mut s = format!("group {} of stream {}\n", r.group, r.stream);
    s.push_str(&format!(
        "  last delivered now    {}\n",
        id_time(&r.from_id)
    ));
    s.push_str(&format!("  last delivered after  {}\n", id_time(&r.to_id)));
    let n = if r.entries_exact {
        r.entries.to_string()
    } else {
        format!("at least {}", r.entries)
    };
    let range = match (&r.first_id, &r.last_id) {
        (Some(a), Some(b)) => format!(" ({a} .. {b})"),
        _ => String::new(),
    };
    match r.direction {
        "re-read" => s.push_str(&format!("  entries re-read       {n}{range}\n")),
        "skip" => s.push_str(&format!(
            "  entries skipped       {n}{range} (the group will not read these)\n"
        )),
        _ => s.push_str("  no change: the group is already there\n"),
    }
    s.push_str(&format!(
        "  pending               {} (a reset leaves pending entries as they are)\n",
        r.pending
    ));
    if r.direction == "none" {
        return s;
    }
    if r.executed {
        s.push_str(&format!(
            "done: XGROUP SETID {} {} {}\n",
            r.stream, r.group, r.to_id
        ));
    } else {
        s.push_str("dry run: nothing changed; add --execute to apply\n");
    }
    s
}
