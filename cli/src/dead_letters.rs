//! `xgroup dead-letters list` and `xgroup dead-letters redrive`.
//!
//! A dead letter written by xgroup is the original entry's fields followed
//! by six fields saying where it came from and why: `dlq_stream`, `dlq_id`,
//! `dlq_group`, `dlq_consumer`, `dlq_deliveries`, `dlq_reason`.
//!
//! Redrive adds each dead letter back to a stream and deletes it from the
//! dead-letter stream in one script ([`REDRIVE_SCRIPT`]), which the server
//! runs atomically: after a crash at any point every dead letter is in
//! exactly one of the two streams, and running the redrive again moves the
//! rest. The added entry has the original fields in their order, then
//! (unless `--no-history`) one field `xgroup_history`: a JSON array with one
//! object per redrive (the dead letter's origin, consumer, deliveries,
//! reason, its id in the dead-letter stream and when it was redriven). An
//! entry redriven, dead-lettered and redriven again carries both.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;
use xgroup_blocking::{Command, Value};
use xgroup_core::StreamId;

use crate::cli::{ListArgs, RedriveArgs};
use crate::error::CliError;
use crate::fail;
use crate::redis::{self, Entry, Redis};
use crate::text::{datetime_ms, show};

/// The names of the fields xgroup adds to a dead letter, in order.
pub const META_FIELDS: [&str; 6] = [
    "dlq_stream",
    "dlq_id",
    "dlq_group",
    "dlq_consumer",
    "dlq_deliveries",
    "dlq_reason",
];

/// The field redrive adds with the history of an entry's redrives.
pub const HISTORY_FIELD: &str = "xgroup_history";

/// Moves one dead letter. KEYS: dead-letter stream, target stream. ARGV:
/// the dead letter's id, `1` to refuse to create the target (`NOMKSTREAM`)
/// or `0`, then the field/value pairs to add. Answers the new id, or nil
/// when the dead letter is no longer there (moved by another redrive):
/// the add and the delete happen together or not at all.
pub const REDRIVE_SCRIPT: &str = "\
-- xgroup redrive. KEYS: dead-letter stream, target. ARGV: id, nomkstream, pairs.
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return false end
local add = {'XADD', KEYS[2]}
if ARGV[2] == '1' then add[#add + 1] = 'NOMKSTREAM' end
add[#add + 1] = '*'
for i = 3, #ARGV do add[#add + 1] = ARGV[i] end
local id = redis.call(unpack(add))
if not id then return redis.error_reply('target stream ' .. KEYS[2] .. ' no longer exists') end
redis.call('XDEL', KEYS[1], ARGV[1])
return id
";

/// Where a dead letter came from and why (its trailing `dlq_*` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// `dlq_stream`, `dlq_id`, ..., `dlq_reason` values in order.
    pub values: [Vec<u8>; 6],
}

/// A dead-letter stream entry taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its id in the dead-letter stream.
    pub id: StreamId,
    /// The original entry's fields (all fields when `meta` is `None`).
    pub original: Vec<(Vec<u8>, Vec<u8>)>,
    /// What xgroup recorded; `None` when the entry does not end with the
    /// six `dlq_*` fields (not written by xgroup).
    pub meta: Option<Meta>,
}

impl DeadLetter {
    /// Splits an entry into its original fields and the dead-letter fields.
    pub fn from_entry(entry: Entry) -> Self {
        let n = entry.fields.len();
        let is_meta = n >= META_FIELDS.len()
            && entry.fields[n - META_FIELDS.len()..]
                .iter()
                .zip(META_FIELDS)
                .all(|((f, _), name)| f == name.as_bytes());
        if !is_meta {
            return DeadLetter {
                id: entry.id,
                original: entry.fields,
                meta: None,
            };
        }
        let mut fields = entry.fields;
        let tail = fields.split_off(n - META_FIELDS.len());
        let mut values: [Vec<u8>; 6] = Default::default();
        for (slot, (_, v)) in values.iter_mut().zip(tail) {
            *slot = v;
        }
        DeadLetter {
            id: entry.id,
            original: fields,
            meta: Some(Meta { values }),
        }
    }

    /// A field's value: a `dlq_*` name reads the dead-letter fields, any
    /// other the original fields (the first with that name).
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        if let (Some(meta), Some(i)) = (&self.meta, META_FIELDS.iter().position(|m| *m == name)) {
            return Some(&meta.values[i]);
        }
        self.original
            .iter()
            .find(|(f, _)| f == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    fn meta_text(&self, i: usize) -> Option<String> {
        self.meta.as_ref().map(|m| show(&m.values[i]))
    }
}

/// A dead letter as `list --json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ListedDeadLetter {
    /// Id in the dead-letter stream.
    pub id: String,
    /// When it was dead-lettered (from its id).
    pub time: String,
    /// Whether it ends with xgroup's `dlq_*` fields (the rest are null if not).
    pub xgroup: bool,
    /// The stream it came from.
    pub stream: Option<String>,
    /// Its id there.
    pub entry_id: Option<String>,
    /// Group.
    pub group: Option<String>,
    /// Consumer that gave up on it.
    pub consumer: Option<String>,
    /// Deliveries when it was dead-lettered.
    pub deliveries: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The original fields, in order, as `[name, value]` pairs.
    pub fields: Vec<(String, String)>,
}

/// `list --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
    /// Dead-letter stream.
    pub dlq: String,
    /// Entries in it.
    pub length: u64,
    /// The first `--limit` of them.
    pub entries: Vec<ListedDeadLetter>,
}

fn listed(d: &DeadLetter) -> ListedDeadLetter {
    ListedDeadLetter {
        id: d.id.to_string(),
        time: datetime_ms(d.id.ms),
        xgroup: d.meta.is_some(),
        stream: d.meta_text(0),
        entry_id: d.meta_text(1),
        group: d.meta_text(2),
        consumer: d.meta_text(3),
        deliveries: d.meta_text(4),
        reason: d.meta_text(5),
        fields: d.original.iter().map(|(f, v)| (show(f), show(v))).collect(),
    }
}

fn fields_line(fields: &[(String, String)]) -> String {
    if fields.is_empty() {
        return "(none)".into();
    }
    fields
        .iter()
        .map(|(f, v)| format!("{f}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `dead-letters list`.
pub fn list(
    redis: &mut Redis,
    args: &ListArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    redis.require_stream(&args.dlq)?;
    let length = redis.stream_info(&args.dlq)?.length;
    let entries = redis.xrange(&args.dlq, "-", "+", args.limit)?;
    let report = ListReport {
        dlq: args.dlq.clone(),
        length,
        entries: entries
            .into_iter()
            .map(|e| listed(&DeadLetter::from_entry(e)))
            .collect(),
    };
    if json {
        write_json(out, &report)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} dead letters in {} (showing {})",
        report.length,
        report.dlq,
        report.entries.len()
    )?;
    for e in &report.entries {
        writeln!(out)?;
        writeln!(out, "{}  {}", e.id, e.time)?;
        if e.xgroup {
            let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            writeln!(
                out,
                "  from        {} {} (group {}, consumer {}, {} deliveries)",
                or_dash(&e.stream),
                or_dash(&e.entry_id),
                or_dash(&e.group),
                or_dash(&e.consumer),
                or_dash(&e.deliveries)
            )?;
            writeln!(out, "  reason      {}", or_dash(&e.reason))?;
        } else {
            writeln!(
                out,
                "  (not an xgroup dead letter: no dlq_* fields at its end)"
            )?;
        }
        writeln!(out, "  fields      {}", fields_line(&e.fields))?;
    }
    Ok(())
}

fn write_json<T: Serialize>(out: &mut dyn Write, value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::new(format!("cannot write JSON: {e}")))?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// The fields a redriven dead letter is added with: the original fields,
/// then (with `history`) `xgroup_history` with this redrive appended.
pub fn redriven_fields(
    d: &DeadLetter,
    dlq: &str,
    now_ms: u64,
    history: bool,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut fields = d.original.clone();
    if !history {
        return fields;
    }
    let Some(meta) = &d.meta else {
        return fields;
    };
    let mut past: Vec<serde_json::Value> = Vec::new();
    if let Some(at) = fields
        .iter()
        .position(|(f, _)| f == HISTORY_FIELD.as_bytes())
    {
        let (_, old) = fields.remove(at);
        match serde_json::from_slice::<serde_json::Value>(&old) {
            Ok(serde_json::Value::Array(items)) => past = items,
            // Not ours after all: kept, as the first item.
            _ => past.push(serde_json::Value::String(show(&old))),
        }
    }
    let text = |i: usize| show(&meta.values[i]);
    let item = HistoryItem {
        stream: text(0),
        id: text(1),
        group: text(2),
        consumer: text(3),
        deliveries: std::str::from_utf8(&meta.values[4])
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map_or_else(|| text(4).into(), serde_json::Value::from),
        reason: text(5),
        dead_letter_stream: dlq.to_owned(),
        dead_letter_id: d.id.to_string(),
        redriven_at: datetime_ms(now_ms),
    };
    past.push(serde_json::to_value(item).unwrap_or_default());
    let history = serde_json::Value::Array(past).to_string();
    fields.push((HISTORY_FIELD.as_bytes().to_vec(), history.into_bytes()));
    fields
}

/// One item of the `xgroup_history` field: one redrive of the entry.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryItem {
    /// The stream the entry was dead-lettered from.
    pub stream: String,
    /// Its id there.
    pub id: String,
    /// The group.
    pub group: String,
    /// The consumer that gave up on it.
    pub consumer: String,
    /// Its deliveries then (a number; the text if it was not one).
    pub deliveries: serde_json::Value,
    /// Why.
    pub reason: String,
    /// The dead-letter stream.
    pub dead_letter_stream: String,
    /// Its id in the dead-letter stream.
    pub dead_letter_id: String,
    /// When it was redriven (server clock, RFC 3339).
    pub redriven_at: String,
}

/// What `redrive` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RedriveReport {
    /// Dead-letter stream.
    pub dlq: String,
    /// Target stream.
    pub to: String,
    /// Whether this was a dry run (nothing changed).
    pub dry_run: bool,
    /// The dead letters moved (or that would be), in order.
    pub moved: Vec<Moved>,
    /// Dead letters left where they are: they did not match `--filter`.
    pub not_matching: u64,
    /// Entries left where they are: not written by xgroup (no `dlq_*`
    /// fields), by id.
    pub not_dead_letters: Vec<String>,
    /// Dead letters gone before their turn (moved or deleted by someone
    /// else), by id.
    pub gone: Vec<String>,
}

/// One dead letter moved.
#[derive(Debug, Clone, Serialize)]
pub struct Moved {
    /// Its id in the dead-letter stream.
    pub dead_letter_id: String,
    /// Its new id in the target (null in a dry run).
    pub new_id: Option<String>,
    /// Where it first came from (`stream id`).
    pub from: String,
    /// Why it was dead-lettered.
    pub reason: String,
}

/// Runs `dead-letters redrive`.
pub fn redrive(
    redis: &mut Redis,
    args: &RedriveArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    const PAGE: u64 = 100;
    redis.require_stream(&args.dlq)?;
    if args.to == args.dlq {
        fail!("--to names the dead-letter stream itself ({:?})", args.dlq);
    }
    match redis.key_type(&args.to)?.as_str() {
        "stream" => {}
        "none" if args.create || args.dry_run => {}
        "none" => fail!(
            "no stream {:?} to redrive to (pass --create to create it)",
            args.to
        ),
        other => fail!("{:?} is not a stream: it holds a {other}", args.to),
    }
    // Only what is in the dead-letter stream now: dead letters added while
    // this runs wait for the next redrive.
    let end = redis.stream_info(&args.dlq)?.last_generated_id.to_string();
    let started_ms = redis.now_ms()?;
    let started = Instant::now();
    let mut report = RedriveReport {
        dlq: args.dlq.clone(),
        to: args.to.clone(),
        dry_run: args.dry_run,
        ..RedriveReport::default()
    };
    let mut start = "-".to_owned();
    let mut attempts: u64 = 0;
    'pages: loop {
        let page = redis.xrange(&args.dlq, &start, &end, PAGE)?;
        let full = page.len() as u64 == PAGE;
        if let Some(last) = page.last() {
            start = format!("({}", last.id);
        }
        for entry in page {
            if args
                .limit
                .is_some_and(|limit| report.moved.len() as u64 >= limit)
            {
                break 'pages;
            }
            let d = DeadLetter::from_entry(entry);
            if d.meta.is_none() {
                if !json {
                    writeln!(
                        out,
                        "skipped {}: not an xgroup dead letter (no dlq_* fields at its end)",
                        d.id
                    )?;
                }
                report.not_dead_letters.push(d.id.to_string());
                continue;
            }
            if !args.filter.iter().all(|f| f.accepts(d.field(&f.field))) {
                report.not_matching += 1;
                continue;
            }
            let from = format!(
                "{} {}",
                show(d.field("dlq_stream").unwrap_or_default()),
                show(d.field("dlq_id").unwrap_or_default())
            );
            let reason = show(d.field("dlq_reason").unwrap_or_default());
            if args.dry_run {
                if !json {
                    writeln!(
                        out,
                        "would move {} -> {} (from {from}, reason: {reason})",
                        d.id, args.to
                    )?;
                }
                report.moved.push(Moved {
                    dead_letter_id: d.id.to_string(),
                    new_id: None,
                    from,
                    reason,
                });
                continue;
            }
            if let Some(rate) = args.rate {
                let due = started + Duration::from_secs_f64(attempts as f64 / rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            attempts += 1;
            let now_ms = started_ms + started.elapsed().as_millis() as u64;
            let fields = redriven_fields(&d, &args.dlq, now_ms, !args.no_history);
            let id = d.id.to_string();
            let mut cmd: Vec<&[u8]> = vec![
                b"EVAL",
                REDRIVE_SCRIPT.as_bytes(),
                b"2",
                args.dlq.as_bytes(),
                args.to.as_bytes(),
                id.as_bytes(),
                if args.create { b"0" } else { b"1" },
            ];
            for (f, v) in &fields {
                cmd.push(f);
                cmd.push(v);
            }
            let reply = redis.pipeline(&[Command::from_args(cmd)])?;
            match reply.first() {
                Some(Value::Nil) => {
                    if !json {
                        writeln!(
                            out,
                            "skipped {id}: already gone (moved or deleted by someone else)"
                        )?;
                    }
                    report.gone.push(id);
                }
                Some(v @ (Value::Bulk(_) | Value::Simple(_))) => {
                    let new_id = redis::text(v).unwrap_or_default();
                    if !json {
                        writeln!(
                            out,
                            "moved {id} -> {} {new_id} (from {from}, reason: {reason})",
                            args.to
                        )?;
                    }
                    report.moved.push(Moved {
                        dead_letter_id: id,
                        new_id: Some(new_id),
                        from,
                        reason,
                    });
                }
                Some(other) => {
                    let moved = report.moved.len();
                    let e = redis::unexpected("EVAL (redrive)", other);
                    fail!(
                        "{e} (after moving {moved}; {id} and the rest are still in {})",
                        args.dlq
                    );
                }
                None => fail!("no reply to EVAL (redrive)"),
            }
        }
        if !full {
            break;
        }
    }
    if json {
        return write_json(out, &report);
    }
    let skipped = {
        let mut parts = Vec::new();
        if report.not_matching > 0 {
            parts.push(format!("{} not matching the filters", report.not_matching));
        }
        if !report.not_dead_letters.is_empty() {
            parts.push(format!(
                "{} not xgroup dead letters",
                report.not_dead_letters.len()
            ));
        }
        if !report.gone.is_empty() {
            parts.push(format!("{} already gone", report.gone.len()));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("; left: {}", parts.join(", "))
        }
    };
    if args.dry_run {
        writeln!(
            out,
            "dry run: would move {} from {} to {}{skipped}; nothing changed",
            letters(report.moved.len()),
            args.dlq,
            args.to
        )?;
    } else {
        writeln!(
            out,
            "moved {} from {} to {}{skipped}",
            letters(report.moved.len()),
            args.dlq,
            args.to
        )?;
    }
    Ok(())
}

fn letters(n: usize) -> String {
    if n == 1 {
        "1 dead letter".to_owned()
    } else {
        format!("{n} dead letters")
    }
}
