//! `xgroup pending <stream> <group> [--consumer C] [--min-idle D] [--limit N]`.

use std::io::Write;

use serde::Serialize;
use xgroup_blocking::Value;

use crate::cli::PendingArgs;
use crate::error::CliError;
use crate::redis::{self, Redis};
use crate::table::{Align, Table};
use crate::text::{datetime_ms, human_ms};

/// The pending entries shown.
#[derive(Debug, Clone, Serialize)]
pub struct PendingReport {
    /// Stream key.
    pub stream: String,
    /// Group.
    pub group: String,
    /// Pending entries in the whole group.
    pub group_pending: u64,
    /// The entries that matched (oldest first, at most `--limit`).
    pub entries: Vec<PendingRow>,
}

/// One pending entry.
#[derive(Debug, Clone, Serialize)]
pub struct PendingRow {
    /// Entry id.
    pub id: String,
    /// Consumer holding it.
    pub consumer: String,
    /// Milliseconds since it was last delivered.
    pub idle_ms: u64,
    /// Times delivered.
    pub deliveries: u64,
    /// The entry's time (from its id).
    pub time: String,
}

/// Runs `pending`.
pub fn run(
    redis: &mut Redis,
    args: &PendingArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    redis.require_stream(&args.stream)?;
    let group = redis.group(&args.stream, &args.group)?;
    let mut cmd: Vec<String> = vec!["XPENDING".into(), args.stream.clone(), args.group.clone()];
    if let Some(idle) = args.min_idle {
        cmd.push("IDLE".into());
        cmd.push(idle.as_millis().to_string());
    }
    cmd.extend(["-".into(), "+".into(), args.limit.to_string()]);
    if let Some(c) = &args.consumer {
        cmd.push(c.clone());
    }
    let reply = redis.cmd(&cmd)?;
    let mut entries = Vec::new();
    for row in redis::array(&reply, "XPENDING")? {
        let parsed = match row {
            Value::Array(p) if p.len() == 4 => (
                redis::id(&p[0]),
                redis::text(&p[1]),
                redis::uint(&p[2]),
                redis::uint(&p[3]),
            ),
            _ => (None, None, None, None),
        };
        let (Some(id), Some(consumer), Some(idle_ms), Some(deliveries)) = parsed else {
            return Err(redis::unexpected("XPENDING", row));
        };
        entries.push(PendingRow {
            id: id.to_string(),
            consumer,
            idle_ms,
            deliveries,
            time: datetime_ms(id.ms),
        });
    }
    let report = PendingReport {
        stream: args.stream.clone(),
        group: args.group.clone(),
        group_pending: group.pending,
        entries,
    };
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::new(format!("cannot write JSON: {e}")))?;
        writeln!(out, "{text}")?;
    } else {
        out.write_all(render(&report).as_bytes())?;
    }
    Ok(())
}

/// The human form.
pub fn render(r: &PendingReport) -> String {
    let mut s = String::new();
    if r.entries.is_empty() {
        s.push_str(&format!(
            "no pending entries match ({} pending in group {} of {})\n",
            r.group_pending, r.group, r.stream
        ));
        return s;
    }
    let mut t = Table::new(&[
        ("ID", Align::Left),
        ("CONSUMER", Align::Left),
        ("IDLE", Align::Right),
        ("DELIVERIES", Align::Right),
        ("TIME", Align::Left),
    ]);
    for e in &r.entries {
        t.row(vec![
            e.id.clone(),
            e.consumer.clone(),
            human_ms(e.idle_ms),
            e.deliveries.to_string(),
            e.time.clone(),
        ]);
    }
    s.push_str(&t.render(""));
    s.push_str(&format!(
        "{} shown, {} pending in group {} of {}\n",
        r.entries.len(),
        r.group_pending,
        r.group,
        r.stream
    ));
    s
}
