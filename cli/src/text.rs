//! Parsing and printing of durations, times, ids, filters and bytes.

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use xgroup_core::StreamId;

/// Parses `500ms`, `10s`, `5m`, `2h`, `1d`, or several in a row (`1h30m`).
/// A bare number is refused: the unit is always written.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty duration (e.g. 500ms, 10s, 5m, 2h, 1d)".into());
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!(
                "bad duration {input:?}: expected a number then a unit (ms, s, m, h, d)"
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration {input:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms_per: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(format!(
                    "bad duration {input:?}: a unit is needed after {n} (ms, s, m, h, d)"
                ))
            }
            other => {
                return Err(format!(
                    "bad duration {input:?}: unknown unit {other:?} (use ms, s, m, h, d)"
                ))
            }
        };
        total = n
            .checked_mul(ms_per)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("bad duration {input:?}: too large"))?;
    }
    Ok(Duration::from_millis(total))
}

/// A duration in milliseconds for people: `0s`..`59s`, `4m05s`, `3h20m`,
/// `2d04h` (rounded down; under a second is `0s`).
pub fn human_ms(ms: u64) -> String {
    let s = ms / 1000;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// Parses an RFC 3339 date and time (`2024-05-01T12:00:00Z`,
/// `2024-05-01T14:00:00.250+02:00`) into Unix milliseconds.
pub fn parse_datetime_ms(input: &str) -> Result<u64, String> {
    let t = OffsetDateTime::parse(input.trim(), &Rfc3339).map_err(|e| {
        format!("bad date and time {input:?}: {e} (expected RFC 3339, e.g. 2024-05-01T12:00:00Z)")
    })?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms).map_err(|_| format!("bad date and time {input:?}: before 1970"))
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds
/// (`2024-05-01T12:00:00.000Z`).
pub fn datetime_ms(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        Err(_) => format!("(time {ms} ms out of range)"),
    }
}

/// Parses a stream id (`<ms>-<seq>` or `<ms>`).
pub fn parse_id(input: &str) -> Result<StreamId, String> {
    StreamId::parse(input.trim().as_bytes())
        .map_err(|_| format!("bad stream id {input:?}: expected <ms>-<seq> (e.g. 1714564800000-0)"))
}

/// The id just before `id` (`None` before `0-0`).
pub fn predecessor(id: StreamId) -> Option<StreamId> {
    if id.seq > 0 {
        Some(StreamId::new(id.ms, id.seq - 1))
    } else if id.ms > 0 {
        Some(StreamId::new(id.ms - 1, u64::MAX))
    } else {
        None
    }
}

/// How a filter compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `FIELD=VALUE`: the value is exactly this.
    Equals(String),
    /// `FIELD~TEXT`: the value contains this.
    Contains(String),
}

/// A `--filter` of `dead-letters redrive`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The field (the aliases are resolved: `reason` is `dlq_reason`, ...).
    pub field: String,
    /// How it is compared.
    pub matches: Match,
}

impl Filter {
    /// Whether `value` (the field's value; `None` when absent) passes.
    pub fn accepts(&self, value: Option<&[u8]>) -> bool {
        let Some(value) = value else { return false };
        match &self.matches {
            Match::Equals(want) => value == want.as_bytes(),
            Match::Contains(part) => {
                part.is_empty() || value.windows(part.len()).any(|w| w == part.as_bytes())
            }
        }
    }
}

/// Parses `FIELD=VALUE` or `FIELD~TEXT`.
pub fn parse_filter(input: &str) -> Result<Filter, String> {
    let at = input
        .find(['=', '~'])
        .ok_or_else(|| format!("bad filter {input:?}: expected FIELD=VALUE or FIELD~TEXT"))?;
    let (name, rest) = input.split_at(at);
    let name = name.trim();
    if name.is_empty() {
        return Err(format!(
            "bad filter {input:?}: no field name before {:?}",
            &rest[..1]
        ));
    }
    let value = rest[1..].to_owned();
    let field = match name {
        "reason" | "consumer" | "group" | "stream" | "id" | "deliveries" => format!("dlq_{name}"),
        other => other.to_owned(),
    };
    let matches = if rest.starts_with('=') {
        Match::Equals(value)
    } else {
        Match::Contains(value)
    };
    Ok(Filter { field, matches })
}

/// Parses a rate: `N`, `N/s` or `N/m` (entries per second or minute), as
/// entries per second.
pub fn parse_rate(input: &str) -> Result<f64, String> {
    let s = input.trim();
    let (number, per) = match s.split_once('/') {
        Some((n, "s")) => (n, 1.0),
        Some((n, "m")) => (n, 60.0),
        Some(_) => {
            return Err(format!(
                "bad rate {input:?}: expected N/s or N/m (e.g. 50/s)"
            ))
        }
        None => (s, 1.0),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("bad rate {input:?}: expected N/s or N/m (e.g. 50/s)"))?;
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("bad rate {input:?}: must be above zero"));
    }
    Ok(n / per)
}

/// Bytes for people: UTF-8 as it is, other bytes as `\xNN`.
pub fn show(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// A URL with its user info hidden (`redis://***@host:port/0`), for showing.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let shown_query = rest[authority_end..].split(['?', '#']).next().unwrap_or("");
    let tail = if rest[authority_end..].len() > shown_query.len() {
        "?***"
    } else {
        ""
    };
    match authority.rfind('@') {
        Some(at) => format!(
            "{}://***@{}{}{}",
            &url[..scheme_end],
            &authority[at + 1..],
            shown_query,
            tail
        ),
        None => format!(
            "{}://{}{}{}",
            &url[..scheme_end],
            authority,
            shown_query,
            tail
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        for bad in [
            "",
            "10",
            "5x",
            "ms",
            "-1s",
            "1.5s",
            "99999999999999999999s",
            "10s5",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(human_ms(999), "0s");
        assert_eq!(human_ms(59_999), "59s");
        assert_eq!(human_ms(245_000), "4m05s");
        assert_eq!(human_ms(12_000_000), "3h20m");
        assert_eq!(human_ms(187_200_000), "2d04h");
    }

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(
            parse_datetime_ms("2024-05-01T14:00:00.250+02:00"),
            Ok(1_714_564_800_250)
        );
        assert!(parse_datetime_ms("2024-05-01").is_err());
        assert!(parse_datetime_ms("1969-12-31T23:59:59Z").is_err());
        assert_eq!(datetime_ms(1_714_564_800_250), "2024-05-01T12:00:00.250Z");
    }

    #[test]
    fn ids() {
        assert_eq!(parse_id("5-1"), Ok(StreamId::new(5, 1)));
        assert_eq!(parse_id("5"), Ok(StreamId::new(5, 0)));
        assert!(parse_id("x").is_err());
        assert_eq!(predecessor(StreamId::new(5, 1)), Some(StreamId::new(5, 0)));
        assert_eq!(
            predecessor(StreamId::new(5, 0)),
            Some(StreamId::new(4, u64::MAX))
        );
        assert_eq!(predecessor(StreamId::ZERO), None);
    }

    #[test]
    fn filters_and_rates() {
        let f = parse_filter("reason~time").unwrap();
        assert_eq!(f.field, "dlq_reason");
        assert!(f.accepts(Some(b"handler timeout")));
        assert!(!f.accepts(Some(b"panic")));
        assert!(!f.accepts(None));
        let f = parse_filter("user=42").unwrap();
        assert!(f.accepts(Some(b"42")) && !f.accepts(Some(b"420")));
        assert!(parse_filter("nothing").is_err());
        assert!(parse_filter("=x").is_err());
        assert_eq!(parse_rate("50/s"), Ok(50.0));
        assert_eq!(parse_rate("120/m"), Ok(2.0));
        assert_eq!(parse_rate("3"), Ok(3.0));
        for bad in ["0", "-1/s", "x/s", "5/h", "inf"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn shown_bytes_and_urls() {
        assert_eq!(show(b"ok \xff"), "ok \\xff");
        assert_eq!(
            redact_url("redis://u:p@h:1/0?protocol=resp3"),
            "redis://***@h:1/0?***"
        );
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
    }
}
