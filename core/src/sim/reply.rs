//! Replies the simulated server sends, and their RESP2/RESP3 encodings.

use bytes::{BufMut, Bytes, BytesMut};

use crate::id::{IdBuf, StreamId};

/// One reply, encoded per the connection's protocol when written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `+<text>`.
    Simple(&'static str),
    /// `-<text>` (text includes the error code, e.g. `ERR ...`).
    Error(String),
    /// `:<n>`.
    Int(i64),
    /// `$<len>` bulk string.
    Bulk(Bytes),
    /// Null bulk string: `$-1` (RESP2) / `_` (RESP3).
    NilBulk,
    /// Null array: `*-1` (RESP2) / `_` (RESP3).
    NilArray,
    /// `*<n>`.
    Array(Vec<Reply>),
    /// `%<n>` in RESP3, a flat array of 2n elements in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// `%<n>` in RESP3, an array of n two-element arrays in RESP2 (the
    /// `XREAD`/`XREADGROUP` shape).
    PairMap(Vec<(Reply, Reply)>),
}

impl Reply {
    pub(crate) fn ok() -> Reply {
        Reply::Simple("OK")
    }

    pub(crate) fn err(text: impl Into<String>) -> Reply {
        Reply::Error(text.into())
    }

    pub(crate) fn syntax() -> Reply {
        Reply::err("ERR syntax error")
    }

    pub(crate) fn not_integer() -> Reply {
        Reply::err("ERR value is not an integer or out of range")
    }

    pub(crate) fn invalid_id() -> Reply {
        Reply::err("ERR Invalid stream ID specified as stream command argument")
    }

    pub(crate) fn wrongtype() -> Reply {
        Reply::err("WRONGTYPE Operation against a key holding the wrong kind of value")
    }

    pub(crate) fn bulk(data: &[u8]) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(data))
    }

    pub(crate) fn id(id: StreamId) -> Reply {
        let mut buf = IdBuf::new();
        Reply::bulk(id.encode(&mut buf))
    }

    /// Appends the encoding of this reply to `out`.
    pub(crate) fn encode(&self, resp3: bool, out: &mut BytesMut) {
        match self {
            Reply::Simple(text) => {
                out.put_u8(b'+');
                out.put_slice(text.as_bytes());
                out.put_slice(b"\r\n");
            }
            Reply::Error(text) => {
                out.put_u8(b'-');
                // Redis replaces newlines in error texts with spaces.
                for b in text.bytes() {
                    out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
                }
                out.put_slice(b"\r\n");
            }
            Reply::Int(n) => {
                out.put_u8(b':');
                put_int(out, *n);
                out.put_slice(b"\r\n");
            }
            Reply::Bulk(data) => {
                out.put_u8(b'$');
                put_int(out, data.len() as i64);
                out.put_slice(b"\r\n");
                out.put_slice(data);
                out.put_slice(b"\r\n");
            }
            Reply::NilBulk => out.put_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
            Reply::NilArray => out.put_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
            Reply::Array(items) => {
                out.put_u8(b'*');
                put_int(out, items.len() as i64);
                out.put_slice(b"\r\n");
                for item in items {
                    item.encode(resp3, out);
                }
            }
            Reply::Map(pairs) => {
                if resp3 {
                    out.put_u8(b'%');
                    put_int(out, pairs.len() as i64);
                } else {
                    out.put_u8(b'*');
                    put_int(out, pairs.len() as i64 * 2);
                }
                out.put_slice(b"\r\n");
                for (k, v) in pairs {
                    k.encode(resp3, out);
                    v.encode(resp3, out);
                }
            }
            Reply::PairMap(pairs) => {
                out.put_u8(if resp3 { b'%' } else { b'*' });
                put_int(out, pairs.len() as i64);
                out.put_slice(b"\r\n");
                for (k, v) in pairs {
                    if !resp3 {
                        out.put_slice(b"*2\r\n");
                    }
                    k.encode(resp3, out);
                    v.encode(resp3, out);
                }
            }
        }
    }
}

fn put_int(out: &mut BytesMut, n: i64) {
    let mut buf = itoa::Buffer::new();
    out.put_slice(buf.format(n).as_bytes());
}
