//! RESP in: a decoder that stays linear in the bytes received.
//!
//! `redis-protocol`'s decoders re-parse an incomplete frame from its start on
//! every call, so a large reply arriving in many small reads costs quadratic
//! time. [`Decoder`] first finds where a frame ends with a resumable scan that
//! remembers how far it got, and only hands complete frames to
//! `redis-protocol`, which then decodes them once, as zero-copy [`Frame`]s
//! whose strings are `Bytes` slices of the receive buffer.
//!
//! RESP2 replies are a subset of RESP3, so one decoder serves both protocols.
//! The one RESP2 encoding `redis-protocol`'s RESP3 decoder does not accept is
//! the RESP2 null (`$-1` and `*-1`, which it takes for the start of a streamed
//! frame): frames that contain one are rewritten with RESP3 nulls (`_`) before
//! decoding, at the cost of one copy of that frame.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp3::decode::complete::decode_bytes;

use crate::error::ProtocolError;

/// A decoded reply frame (RESP2 or RESP3), strings as `Bytes` slices of the
/// receive buffer.
pub type Frame = redis_protocol::resp3::types::BytesFrame;

/// Default limit on the size of one frame (512 MiB, Redis's own bulk limit).
pub const DEFAULT_MAX_FRAME: usize = 512 * 1024 * 1024;

/// How deeply aggregates (arrays, maps, sets, pushes, attributes) may nest.
///
/// Redis replies nest a handful of levels; the limit keeps hostile input from
/// growing the scan stack (and `redis-protocol`'s recursive decoder) without
/// bound.
pub const MAX_DEPTH: usize = 128;

/// Longest length header accepted (`-1` or up to 20 digits, plus slack).
const MAX_LENGTH_HEADER: usize = 24;

/// Where the scan of the current frame stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The next byte (at `pos`) is the type byte of an element.
    Type,
    /// Inside the header or simple line of an element whose type byte is at
    /// `start`; bytes up to `pos` hold no line feed.
    Line { start: usize, kind: u8 },
    /// Skipping the payload of a blob and its CRLF, which end at `end`.
    Blob { end: usize },
}

/// The resumable scan of the frame at the start of the buffer.
#[derive(Debug)]
struct Scan {
    /// Offset (from the buffer's start, which is the frame's start) of the
    /// next byte not yet examined.
    pos: usize,
    step: Step,
    /// Elements still missing in each open aggregate, outermost first.
    stack: Vec<u64>,
    /// Offsets of RESP2 null headers (`$-1\r\n`, `*-1\r\n`) in this frame.
    nulls: Vec<usize>,
    /// Bytes examined since the decoder was created (work counter for tests
    /// of linearity; wrapping, never checked in release code paths).
    examined: u64,
}

impl Scan {
    fn new() -> Self {
        Scan {
            pos: 0,
            step: Step::Type,
            stack: Vec::new(),
            nulls: Vec::new(),
            examined: 0,
        }
    }

    /// Prepares for the next frame, keeping allocations.
    fn restart(&mut self) {
        self.pos = 0;
        self.step = Step::Type;
        self.stack.clear();
        self.nulls.clear();
    }

    /// Scans on from where the last call stopped; `Some(len)` when the frame
    /// at the start of `buf` is complete and `len` bytes long.
    fn advance(&mut self, buf: &[u8], max_frame: usize) -> Result<Option<usize>, ProtocolError> {
        loop {
            if self.pos > max_frame {
                return Err(too_large(self.pos as u64, max_frame));
            }
            match self.step {
                Step::Type => {
                    let Some(&kind) = buf.get(self.pos) else {
                        return Ok(None);
                    };
                    self.examined = self.examined.wrapping_add(1);
                    match kind {
                        b'+' | b'-' | b':' | b'$' | b'*' | b'_' | b',' | b'#' | b'!' | b'='
                        | b'(' | b'%' | b'~' | b'>' | b'|' => {
                            self.step = Step::Line {
                                start: self.pos,
                                kind,
                            };
                            self.pos += 1;
                        }
                        b';' | b'.' => {
                            return Err(malformed(format!(
                                "streamed string chunk `{}` at offset {} is not supported",
                                char::from(kind),
                                self.pos
                            )))
                        }
                        _ => {
                            return Err(malformed(format!(
                                "unknown type byte {:?} at offset {}",
                                char::from(kind),
                                self.pos
                            )))
                        }
                    }
                }
                Step::Line { start, kind } => {
                    let rest = buf.get(self.pos..).unwrap_or_default();
                    let Some(i) = rest.iter().position(|&b| b == b'\n') else {
                        self.examined = self.examined.wrapping_add(rest.len() as u64);
                        self.pos = buf.len();
                        if has_length(kind) && self.pos - start > MAX_LENGTH_HEADER {
                            return Err(malformed(format!(
                                "`{}` length header at offset {start} is too long",
                                char::from(kind)
                            )));
                        }
                        if self.pos > max_frame {
                            return Err(too_large(self.pos as u64, max_frame));
                        }
                        return Ok(None);
                    };
                    self.examined = self.examined.wrapping_add(i as u64 + 1);
                    let lf = self.pos + i;
                    self.pos = lf + 1;
                    let body = match lf.checked_sub(1) {
                        Some(cr) if cr > start && buf.get(cr) == Some(&b'\r') => {
                            buf.get(start + 1..cr).unwrap_or_default()
                        }
                        _ => {
                            return Err(malformed(format!(
                                "line feed without carriage return at offset {lf}"
                            )))
                        }
                    };
                    if let Some(len) = self.header(start, kind, body, max_frame)? {
                        return Ok(Some(len));
                    }
                }
                Step::Blob { end } => {
                    if buf.len() < end {
                        return Ok(None);
                    }
                    if buf.get(end - 2..end) != Some(b"\r\n".as_slice()) {
                        return Err(malformed(format!(
                            "blob ending at offset {end} is not terminated by CRLF"
                        )));
                    }
                    self.examined = self.examined.wrapping_add((end - self.pos) as u64);
                    self.pos = end;
                    self.step = Step::Type;
                    if self.element_done() {
                        return Ok(Some(end));
                    }
                }
            }
        }
    }

    /// Acts on a complete header or simple line; `Some(len)` when that
    /// completed the frame.
    fn header(
        &mut self,
        start: usize,
        kind: u8,
        body: &[u8],
        max_frame: usize,
    ) -> Result<Option<usize>, ProtocolError> {
        self.step = Step::Type;
        let done = match kind {
            b'$' | b'!' | b'=' => match parse_length(kind, body, start, kind == b'$')? {
                None => {
                    self.nulls.push(start);
                    self.element_done()
                }
                Some(len) => {
                    if kind == b'=' && len < 4 {
                        return Err(malformed(format!(
                            "verbatim string at offset {start} shorter than its format prefix"
                        )));
                    }
                    let limit = max_frame as u64;
                    if len > limit {
                        return Err(too_large(len, max_frame));
                    }
                    let end = (self.pos as u64).saturating_add(len).saturating_add(2);
                    if end > limit {
                        return Err(too_large(end, max_frame));
                    }
                    // end <= max_frame, which is a usize.
                    let end = usize::try_from(end).map_err(|_| too_large(end, max_frame))?;
                    self.step = Step::Blob { end };
                    false
                }
            },
            b'*' | b'%' | b'~' | b'>' | b'|' => {
                match parse_length(kind, body, start, kind == b'*')? {
                    None => {
                        self.nulls.push(start);
                        self.element_done()
                    }
                    Some(n) => {
                        let elements = match kind {
                            b'%' => n.saturating_mul(2),
                            // An attribute is followed by the frame it annotates.
                            b'|' => n.saturating_mul(2).saturating_add(1),
                            _ => n,
                        };
                        // Each element takes at least three bytes (`_\r\n`).
                        let least = elements.saturating_mul(3);
                        if least > max_frame as u64 {
                            return Err(too_large(least, max_frame));
                        }
                        if elements == 0 {
                            self.element_done()
                        } else if self.stack.len() >= MAX_DEPTH {
                            return Err(malformed(format!(
                                "aggregates nested deeper than {MAX_DEPTH} at offset {start}"
                            )));
                        } else {
                            self.stack.push(elements);
                            false
                        }
                    }
                }
            }
            // + - : _ , # ( : simple lines, contents checked by the decoder.
            _ => self.element_done(),
        };
        Ok(done.then_some(self.pos))
    }

    /// Counts one finished element against the open aggregates; true when
    /// that finished the frame.
    fn element_done(&mut self) -> bool {
        while let Some(top) = self.stack.last_mut() {
            *top -= 1;
            if *top > 0 {
                return false;
            }
            self.stack.pop();
        }
        true
    }
}

fn has_length(kind: u8) -> bool {
    matches!(kind, b'$' | b'!' | b'=' | b'*' | b'%' | b'~' | b'>' | b'|')
}

/// Parses a length header: `Ok(None)` for the RESP2 null `-1` (when
/// `null_ok`), else a non-negative decimal.
fn parse_length(
    kind: u8,
    body: &[u8],
    start: usize,
    null_ok: bool,
) -> Result<Option<u64>, ProtocolError> {
    let kind = char::from(kind);
    match body {
        b"-1" if null_ok => return Ok(None),
        b"?" => {
            return Err(malformed(format!(
                "streamed `{kind}?` frame at offset {start} is not supported"
            )))
        }
        [] => {
            return Err(malformed(format!(
                "empty `{kind}` length at offset {start}"
            )))
        }
        _ => {}
    }
    let mut n: u64 = 0;
    for &b in body {
        if !b.is_ascii_digit() {
            return Err(malformed(format!(
                "invalid `{kind}` length {:?} at offset {start}",
                String::from_utf8_lossy(body)
            )));
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| malformed(format!("`{kind}` length at offset {start} overflows")))?;
    }
    Ok(Some(n))
}

fn malformed(msg: String) -> ProtocolError {
    ProtocolError::Malformed(msg)
}

fn too_large(size: u64, limit: usize) -> ProtocolError {
    ProtocolError::FrameTooLarge {
        size,
        limit: limit as u64,
    }
}

/// Copies `frame`, replacing the 5-byte RESP2 null headers at `nulls` with
/// RESP3 nulls (`_\r\n`).
fn rewrite_nulls(frame: &[u8], nulls: &[usize]) -> Bytes {
    let mut out = BytesMut::with_capacity(frame.len());
    let mut last = 0;
    for &at in nulls {
        out.extend_from_slice(frame.get(last..at).unwrap_or_default());
        out.extend_from_slice(b"_\r\n");
        last = at + 5;
    }
    out.extend_from_slice(frame.get(last..).unwrap_or_default());
    out.freeze()
}

/// Incremental RESP decoder: feed bytes as they arrive, take frames out.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max_frame: usize,
    scan: Scan,
    /// The scan error, repeated until [`Decoder::reset`].
    failed: Option<ProtocolError>,
}

impl Decoder {
    /// A decoder with the default frame size limit.
    pub fn new() -> Self {
        Decoder::with_max_frame(DEFAULT_MAX_FRAME)
    }

    /// A decoder that rejects frames larger than `max_frame` bytes (declared
    /// blob lengths included) with [`ProtocolError::FrameTooLarge`].
    pub fn with_max_frame(max_frame: usize) -> Self {
        Decoder {
            buf: BytesMut::new(),
            max_frame,
            scan: Scan::new(),
            failed: None,
        }
    }

    /// The frame size limit.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    ///
    /// After an error the stream is out of sync: drop the connection and
    /// [`reset`](Self::reset) the decoder. Until then every call returns the
    /// same error.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let len = match self.scan.advance(&self.buf, self.max_frame) {
            Ok(Some(len)) => len,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.failed = Some(e.clone());
                return Err(e);
            }
        };
        let raw = self.buf.split_to(len).freeze();
        let bytes = if self.scan.nulls.is_empty() {
            raw
        } else {
            rewrite_nulls(&raw, &self.scan.nulls)
        };
        self.scan.restart();
        match decode_bytes(&bytes) {
            Ok(Some((frame, used))) if used == bytes.len() => Ok(Some(frame)),
            Ok(Some((_, used))) => Err(malformed(format!(
                "frame of {} bytes decoded from only {used} bytes",
                bytes.len()
            ))),
            Ok(None) => Err(malformed(format!(
                "frame of {} bytes decoded as incomplete",
                bytes.len()
            ))),
            Err(e) => Err(malformed(format!("invalid frame: {}", e.details()))),
        }
    }

    /// Forgets buffered bytes and scan state (after a disconnect).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.scan.restart();
        self.failed = None;
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}
