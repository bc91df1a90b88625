//! Stream entry ids (`<ms>-<seq>`) and the special ids `>` and `$`.

use std::fmt;
use std::str::FromStr;

/// A real stream entry id, `<milliseconds>-<sequence>`.
///
/// Ordered as Redis orders them: by milliseconds, then by sequence.
/// The special ids `>` and `$` are *not* `StreamId`s; see [`GroupStart`] and
/// [`ReadFrom`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

/// Why a byte string is not a stream id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream id {input:?}: expected <ms>-<seq> with two unsigned 64-bit integers")]
pub struct InvalidStreamId {
    /// The rejected input (lossy UTF-8, at most 64 bytes).
    pub input: String,
}

impl StreamId {
    /// `0-0`, the smallest id; also the "scan finished" cursor of `XAUTOCLAIM`.
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest id, `18446744073709551615-18446744073709551615`.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// An id from its two parts.
    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// Parses `<ms>-<seq>`, or `<ms>` alone (sequence 0), as Redis accepts.
    pub fn parse(input: &[u8]) -> Result<Self, InvalidStreamId> {
        let bad = || InvalidStreamId {
            input: String::from_utf8_lossy(&input[..input.len().min(64)]).into_owned(),
        };
        // One pass: `<digits>` or `<digits>-<digits>`.
        let (ms, used) = leading_u64(input).ok_or_else(bad)?;
        let seq = match input.get(used) {
            None => 0,
            Some(b'-') => {
                let rest = input.get(used + 1..).unwrap_or_default();
                match leading_u64(rest) {
                    Some((seq, n)) if n == rest.len() => seq,
                    _ => return Err(bad()),
                }
            }
            Some(_) => return Err(bad()),
        };
        Ok(StreamId { ms, seq })
    }

    /// The smallest id greater than this one, if any.
    pub fn successor(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// Whether this is `0-0`.
    pub fn is_zero(self) -> bool {
        self == StreamId::ZERO
    }

    /// Writes the id as `<ms>-<seq>` into `out` and returns the written part.
    pub fn encode<'a>(&self, out: &'a mut IdBuf) -> &'a [u8] {
        let mut ms = itoa::Buffer::new();
        let mut seq = itoa::Buffer::new();
        let ms = ms.format(self.ms).as_bytes();
        let seq = seq.format(self.seq).as_bytes();
        out.0[..ms.len()].copy_from_slice(ms);
        out.0[ms.len()] = b'-';
        out.0[ms.len() + 1..ms.len() + 1 + seq.len()].copy_from_slice(seq);
        &out.0[..ms.len() + 1 + seq.len()]
    }
}

/// Scratch space for [`StreamId::encode`]: large enough for any id.
#[derive(Debug)]
pub struct IdBuf([u8; 41]);

impl IdBuf {
    /// An empty buffer.
    pub const fn new() -> Self {
        IdBuf([0; 41])
    }
}

impl Default for IdBuf {
    fn default() -> Self {
        IdBuf::new()
    }
}

/// The decimal number at the start of `s` and how many digits it took: at
/// least one and at most 20 digits, no overflow.
#[inline]
fn leading_u64(s: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    let mut i = 0;
    while let Some(&d) = s.get(i) {
        if !d.is_ascii_digit() {
            break;
        }
        let d = u64::from(d - b'0');
        value = if i < 19 {
            // 19 digits always fit in a u64.
            value * 10 + d
        } else if i == 19 {
            value.checked_mul(10)?.checked_add(d)?
        } else {
            return None;
        };
        i += 1;
    }
    (i > 0).then_some((value, i))
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({}-{})", self.ms, self.seq)
    }
}

impl FromStr for StreamId {
    type Err = InvalidStreamId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StreamId::parse(s.as_bytes())
    }
}

/// Where a new consumer group starts reading (`XGROUP CREATE ... <id>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum GroupStart {
    /// `0`: every entry already in the stream is delivered (the default, so
    /// nothing is skipped silently).
    #[default]
    Beginning,
    /// `$`: only entries added after the group was created.
    Latest,
    /// Entries after this id.
    After(StreamId),
}

impl GroupStart {
    /// The argument as sent to Redis.
    pub fn to_arg(self) -> Vec<u8> {
        match self {
            GroupStart::Beginning => b"0".to_vec(),
            GroupStart::Latest => b"$".to_vec(),
            GroupStart::After(id) => id.to_string().into_bytes(),
        }
    }
}

impl FromStr for GroupStart {
    type Err = InvalidStreamId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "$" => Ok(GroupStart::Latest),
            "0" | "0-0" => Ok(GroupStart::Beginning),
            other => StreamId::parse(other.as_bytes()).map(GroupStart::After),
        }
    }
}

/// What an `XREADGROUP` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadFrom {
    /// `>`: entries never delivered to any consumer of the group.
    New,
    /// This consumer's own pending entries with ids greater than this one
    /// (`0-0` for all of them).
    PendingAfter(StreamId),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats() {
        let id = StreamId::parse(b"1526919030474-55").unwrap();
        assert_eq!(id, StreamId::new(1526919030474, 55));
        assert_eq!(id.to_string(), "1526919030474-55");
        assert_eq!(StreamId::parse(b"7").unwrap(), StreamId::new(7, 0));
        for bad in [
            &b""[..],
            b"-",
            b"1-",
            b"-1",
            b"a-1",
            b"1-2-3",
            b"18446744073709551616-0",
            b" 1-2",
        ] {
            assert!(StreamId::parse(bad).is_err(), "{:?}", bad);
        }
    }

    #[test]
    fn special_ids_are_not_stream_ids() {
        assert!(StreamId::parse(b">").is_err());
        assert!(StreamId::parse(b"$").is_err());
        assert_eq!("$".parse::<GroupStart>().unwrap(), GroupStart::Latest);
        assert_eq!("0".parse::<GroupStart>().unwrap(), GroupStart::Beginning);
    }

    #[test]
    fn successor_orders() {
        assert_eq!(
            StreamId::new(1, u64::MAX).successor(),
            Some(StreamId::new(2, 0))
        );
        assert_eq!(StreamId::MAX.successor(), None);
    }

    proptest! {
        #[test]
        fn roundtrip_and_order(a in any::<(u64, u64)>(), b in any::<(u64, u64)>()) {
            let x = StreamId::new(a.0, a.1);
            let y = StreamId::new(b.0, b.1);
            let mut buf = IdBuf::new();
            prop_assert_eq!(StreamId::parse(x.encode(&mut buf)).unwrap(), x);
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
        }
    }
}
