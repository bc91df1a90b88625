//! Parsing what clients send: RESP request arrays (and inline commands),
//! integers and stream ids the way Redis parses them.

use bytes::Bytes;

use crate::id::StreamId;

/// Longest header line / inline command Redis buffers before giving up.
const MAX_INLINE: usize = 64 * 1024;
/// Largest bulk argument Redis accepts (`proto-max-bulk-len`).
const MAX_BULK: i64 = 512 * 1024 * 1024;

/// Result of looking at the start of a connection's input buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// `n` bytes hold nothing to execute (empty array, blank line).
    Skip(usize),
    /// A command and the number of bytes it used.
    Command(Vec<Bytes>, usize),
    /// Protocol violation: reply `-ERR Protocol error: <msg>` and close.
    Error(String),
}

/// Parses the next request in `buf`. `unauthenticated` applies Redis's
/// tighter size limits for clients that still must AUTH.
pub(crate) fn parse_request(buf: &[u8], unauthenticated: bool) -> Parsed {
    match buf.first() {
        None => Parsed::Incomplete,
        Some(b'*') => parse_multibulk(buf, unauthenticated),
        Some(_) => parse_inline(buf),
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .iter()
        .position(|&b| b == b'\r')
        .map(|p| p + from)
}

fn parse_multibulk(buf: &[u8], unauthenticated: bool) -> Parsed {
    let Some(cr) = find_crlf(buf, 0) else {
        if buf.len() > MAX_INLINE {
            return Parsed::Error("too big mbulk count string".into());
        }
        return Parsed::Incomplete;
    };
    // The "\r\n" itself must be complete.
    if cr + 2 > buf.len() {
        return Parsed::Incomplete;
    }
    let count = match parse_i64(&buf[1..cr]) {
        Some(n) if n <= i64::from(i32::MAX) => n,
        _ => return Parsed::Error("invalid multibulk length".into()),
    };
    if count > 10 && unauthenticated {
        return Parsed::Error("unauthenticated multibulk length".into());
    }
    let mut pos = cr + 2;
    if count <= 0 {
        return Parsed::Skip(pos);
    }
    let mut args = Vec::new();
    for _ in 0..count {
        if pos >= buf.len() {
            return Parsed::Incomplete;
        }
        let Some(cr) = find_crlf(buf, pos) else {
            if buf.len() - pos > MAX_INLINE {
                return Parsed::Error("too big bulk count string".into());
            }
            return Parsed::Incomplete;
        };
        if cr + 2 > buf.len() {
            return Parsed::Incomplete;
        }
        if buf[pos] != b'$' {
            return Parsed::Error(format!(
                "expected '$', got '{}'",
                char::from(buf[pos]).escape_default()
            ));
        }
        let len = match parse_i64(&buf[pos + 1..cr]) {
            Some(n) if (0..=MAX_BULK).contains(&n) => n,
            _ => return Parsed::Error("invalid bulk length".into()),
        };
        if unauthenticated && len > 16384 {
            return Parsed::Error("unauthenticated bulk length".into());
        }
        let start = cr + 2;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let Some(end) = start.checked_add(len) else {
            return Parsed::Incomplete;
        };
        // Redis skips the two bytes after the payload without checking them.
        if end.saturating_add(2) > buf.len() {
            return Parsed::Incomplete;
        }
        args.push(Bytes::copy_from_slice(&buf[start..end]));
        pos = end + 2;
    }
    Parsed::Command(args, pos)
}

fn parse_inline(buf: &[u8]) -> Parsed {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_INLINE {
            return Parsed::Error("too big inline request".into());
        }
        return Parsed::Incomplete;
    };
    let mut line = &buf[..nl];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    match split_args(line) {
        None => Parsed::Error("unbalanced quotes in request".into()),
        Some(args) if args.is_empty() => Parsed::Skip(nl + 1),
        Some(args) => Parsed::Command(args, nl + 1),
    }
}

/// Splits an inline command like `sdssplitargs`: whitespace separated,
/// `"..."` with backslash escapes, `'...'` with `\'`.
fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            let c = line.get(i).copied();
            if in_dq {
                match c {
                    None => return None,
                    Some(b'\\') if i + 3 < line.len() && line[i + 1] == b'x' => {
                        match (hex(line[i + 2]), hex(line[i + 3])) {
                            (Some(h), Some(l)) => {
                                cur.push(h * 16 + l);
                                i += 3;
                            }
                            _ => cur.push(b'\\'),
                        }
                    }
                    Some(b'\\') if i + 1 < line.len() => {
                        i += 1;
                        cur.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        // The closing quote must be followed by a space or the end.
                        if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(b) => cur.push(b),
                }
            } else if in_sq {
                match c {
                    None => return None,
                    Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(b) => cur.push(b),
                }
            } else {
                match c {
                    None => break,
                    Some(b) if b.is_ascii_whitespace() => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(b) => cur.push(b),
                }
            }
            i += 1;
        }
        args.push(Bytes::from(cur));
    }
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Redis's `string2ll`: optional `-`, digits, no leading zeros, no `+`,
/// no spaces, in range.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    if digits[0] == b'0' {
        return if digits.len() == 1 && !neg {
            Some(0)
        } else {
            None
        };
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if v == 1u64 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(v).ok().map(|v| -v)
        }
    } else {
        i64::try_from(v).ok()
    }
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(v)
}

/// A parsed id argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParsedId {
    pub(crate) id: StreamId,
    /// `false` for the `<ms>-*` form (only when allowed).
    pub(crate) seq_given: bool,
}

/// Redis's `streamGenericParseIDOrReply`. `strict` rejects `-` and `+`;
/// `missing_seq` is used for `<ms>` alone; `seq_star` allows `<ms>-*`.
pub(crate) fn parse_id(
    arg: &[u8],
    strict: bool,
    missing_seq: u64,
    seq_star: bool,
) -> Option<ParsedId> {
    if arg.len() > 127 {
        return None;
    }
    match arg {
        b"-" | b"+" if strict => return None,
        b"-" => {
            return Some(ParsedId {
                id: StreamId::ZERO,
                seq_given: true,
            })
        }
        b"+" => {
            return Some(ParsedId {
                id: StreamId::MAX,
                seq_given: true,
            })
        }
        _ => {}
    }
    let (ms, seq) = match arg.iter().position(|&b| b == b'-') {
        Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
        None => (arg, None),
    };
    let ms = parse_u64(ms)?;
    match seq {
        None => Some(ParsedId {
            id: StreamId::new(ms, missing_seq),
            seq_given: true,
        }),
        Some(b"*") if seq_star => Some(ParsedId {
            id: StreamId::new(ms, 0),
            seq_given: false,
        }),
        Some(seq) => Some(ParsedId {
            id: StreamId::new(ms, parse_u64(seq)?),
            seq_given: true,
        }),
    }
}

/// A strict id (`<ms>[-<seq>]`, no `-`/`+`), sequence 0 when missing.
pub(crate) fn strict_id(arg: &[u8]) -> Option<StreamId> {
    parse_id(arg, false, 0, false)
        .filter(|_| arg != b"-" && arg != b"+")
        .map(|p| p.id)
}

/// Outcome of parsing a range bound.
pub(crate) enum Bound {
    Ok(StreamId),
    Invalid,
    /// The exclusive bound cannot be moved (`(` of the max / min id).
    Exhausted,
}

/// Redis's `streamParseIntervalIDOrReply` plus the `(` adjustment:
/// `start` bounds move up, end bounds move down.
pub(crate) fn range_bound(arg: &[u8], start: bool) -> Bound {
    let missing_seq = if start { 0 } else { u64::MAX };
    if arg.len() > 1 && arg[0] == b'(' {
        let Some(p) = parse_id(&arg[1..], true, missing_seq, false) else {
            return Bound::Invalid;
        };
        let moved = if start {
            p.id.successor()
        } else {
            predecessor(p.id)
        };
        match moved {
            Some(id) => Bound::Ok(id),
            None => Bound::Exhausted,
        }
    } else {
        match parse_id(arg, false, missing_seq, false) {
            Some(p) => Bound::Ok(p.id),
            None => Bound::Invalid,
        }
    }
}

/// The largest id smaller than `id`, if any.
pub(crate) fn predecessor(id: StreamId) -> Option<StreamId> {
    if id.seq > 0 {
        Some(StreamId::new(id.ms, id.seq - 1))
    } else if id.ms > 0 {
        Some(StreamId::new(id.ms - 1, u64::MAX))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_like_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-5"), Some(-5));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"01",
            b"-0",
            b"+1",
            b" 1",
            b"1x",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn requests() {
        let p = parse_request(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*1", false);
        assert_eq!(
            p,
            Parsed::Command(vec![Bytes::from("ECHO"), Bytes::from("hi")], 22)
        );
        assert_eq!(
            parse_request(b"*2\r\n$4\r\nECHO\r\n$2\r\nh", false),
            Parsed::Incomplete
        );
        assert_eq!(parse_request(b"*0\r\n", false), Parsed::Skip(4));
        assert_eq!(parse_request(b"*-1\r\n", false), Parsed::Skip(5));
        assert!(matches!(parse_request(b"*x\r\n", false), Parsed::Error(_)));
        assert!(matches!(
            parse_request(b"*1\r\nx\r\n", false),
            Parsed::Error(_)
        ));
        assert!(matches!(
            parse_request(b"*1\r\n$-1\r\n", false),
            Parsed::Error(_)
        ));
        assert!(matches!(parse_request(b"*20\r\n", true), Parsed::Error(_)));
        assert_eq!(
            parse_request(b"ECHO \"a b\" 'c'\r\n", false),
            Parsed::Command(
                vec![Bytes::from("ECHO"), Bytes::from("a b"), Bytes::from("c")],
                16
            )
        );
        assert!(matches!(
            parse_request(b"ECHO \"a\r\n", false),
            Parsed::Error(_)
        ));
        assert_eq!(parse_request(b"  \r\n", false), Parsed::Skip(4));
        assert_eq!(parse_request(b"PING", false), Parsed::Incomplete);
    }

    #[test]
    fn ids() {
        assert_eq!(strict_id(b"5"), Some(StreamId::new(5, 0)));
        assert_eq!(strict_id(b"-"), None);
        assert_eq!(strict_id(b"1-2-3"), None);
        let star = parse_id(b"5-*", true, 0, true).unwrap();
        assert_eq!((star.id, star.seq_given), (StreamId::new(5, 0), false));
        assert!(matches!(range_bound(b"(5-1", true), Bound::Ok(id) if id == StreamId::new(5, 2)));
        assert!(
            matches!(range_bound(b"5", false), Bound::Ok(id) if id == StreamId::new(5, u64::MAX))
        );
        assert!(matches!(range_bound(b"(0-0", false), Bound::Exhausted));
        assert!(matches!(range_bound(b"(+", true), Bound::Invalid));
    }
}
