//! Commands out: RESP arrays of bulk strings, and a builder for `XADD`.
//!
//! Commands are always arrays of bulk strings, so they are written straight
//! into the output buffer instead of building a frame tree first: no
//! allocation per argument, ids formatted in place.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ConfigError;
use crate::id::{IdBuf, StreamId};

/// A command as a list of arguments, for `Connection::command`-style use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    args: Vec<Bytes>,
}

impl Command {
    /// A command whose first argument is `name` (e.g. `"XADD"`).
    pub fn new(name: impl AsRef<[u8]>) -> Self {
        Command {
            args: vec![Bytes::copy_from_slice(name.as_ref())],
        }
    }

    /// A command from all its arguments, name first.
    pub fn from_args<I, A>(args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        Command {
            args: args
                .into_iter()
                .map(|a| Bytes::copy_from_slice(a.as_ref()))
                .collect(),
        }
    }

    /// Appends an argument.
    pub fn arg(mut self, arg: impl AsRef<[u8]>) -> Self {
        self.args.push(Bytes::copy_from_slice(arg.as_ref()));
        self
    }

    /// Appends an argument without copying it.
    pub fn arg_bytes(mut self, arg: Bytes) -> Self {
        self.args.push(arg);
        self
    }

    /// Appends an integer argument.
    pub fn arg_u64(self, n: u64) -> Self {
        let mut buf = itoa::Buffer::new();
        let s = buf.format(n).to_owned();
        self.arg(s)
    }

    /// The arguments, name first.
    pub fn args(&self) -> &[Bytes] {
        &self.args
    }

    /// The command name, upper-cased, for error messages.
    pub fn name(&self) -> String {
        self.args
            .first()
            .map(|n| String::from_utf8_lossy(n).to_ascii_uppercase())
            .unwrap_or_default()
    }

    /// Writes the command as RESP into `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let mut w = CommandWriter::begin(out, self.args.len());
        for a in &self.args {
            w.arg(a);
        }
    }

    /// The command as RESP bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }
}

/// Writes one command of a known argument count straight into a buffer.
///
/// The argument count is declared up front; writing more or fewer arguments
/// than declared is a bug in the caller, caught in debug builds.
#[derive(Debug)]
pub struct CommandWriter<'a> {
    out: &'a mut BytesMut,
    remaining: usize,
}

impl<'a> CommandWriter<'a> {
    /// Starts a command of `argc` arguments.
    pub fn begin(out: &'a mut BytesMut, argc: usize) -> Self {
        out.put_u8(b'*');
        put_decimal(out, argc as u64);
        out.put_slice(b"\r\n");
        CommandWriter {
            out,
            remaining: argc,
        }
    }

    /// Writes one bulk-string argument.
    pub fn arg(&mut self, arg: &[u8]) -> &mut Self {
        debug_assert!(self.remaining > 0, "more arguments than declared");
        self.remaining = self.remaining.saturating_sub(1);
        self.out.reserve(arg.len() + 16);
        self.out.put_u8(b'$');
        put_decimal(self.out, arg.len() as u64);
        self.out.put_slice(b"\r\n");
        self.out.put_slice(arg);
        self.out.put_slice(b"\r\n");
        self
    }

    /// Writes an integer argument.
    pub fn arg_u64(&mut self, n: u64) -> &mut Self {
        let mut buf = itoa::Buffer::new();
        let s = buf.format(n);
        self.arg(s.as_bytes())
    }

    /// Writes a stream id argument.
    pub fn arg_id(&mut self, id: StreamId) -> &mut Self {
        let mut buf = IdBuf::new();
        let s = id.encode(&mut buf);
        self.arg(s)
    }
}

impl Drop for CommandWriter<'_> {
    fn drop(&mut self) {
        debug_assert_eq!(self.remaining, 0, "fewer arguments than declared");
    }
}

fn put_decimal(out: &mut BytesMut, n: u64) {
    let mut buf = itoa::Buffer::new();
    out.put_slice(buf.format(n).as_bytes());
}

/// How `XADD` trims the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trim {
    /// `MAXLEN [~] n`: keep at most `n` entries.
    MaxLen {
        /// Entries to keep.
        len: u64,
        /// `~`: let Redis trim in whole macro nodes (cheaper, may keep more).
        approximate: bool,
    },
    /// `MINID [~] id`: drop entries with ids below `id`.
    MinId {
        /// Smallest id to keep.
        id: StreamId,
        /// `~`: let Redis trim in whole macro nodes.
        approximate: bool,
    },
}

/// Options of `XADD` besides the stream and the fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XAddOptions {
    /// The entry's id; `None` means `*` (the server picks one).
    pub id: Option<StreamId>,
    /// Trimming to apply with the add.
    pub trim: Option<Trim>,
    /// `LIMIT n` for approximate trimming.
    pub trim_limit: Option<u64>,
    /// `NOMKSTREAM`: fail (nil reply) instead of creating the stream.
    pub no_mkstream: bool,
}

/// Builds `XADD stream [NOMKSTREAM] [MAXLEN|MINID [~] n [LIMIT l]] id field value ...`.
///
/// Fields are written in the order given. At least one field is required.
pub fn xadd<F, V>(
    stream: impl AsRef<[u8]>,
    fields: impl IntoIterator<Item = (F, V)>,
    options: &XAddOptions,
) -> Result<Command, ConfigError>
where
    F: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut cmd = Command::new("XADD").arg(stream);
    if options.no_mkstream {
        cmd = cmd.arg("NOMKSTREAM");
    }
    if let Some(trim) = &options.trim {
        let (kind, approx, threshold) = match trim {
            Trim::MaxLen { len, approximate } => ("MAXLEN", *approximate, len.to_string()),
            Trim::MinId { id, approximate } => ("MINID", *approximate, id.to_string()),
        };
        cmd = cmd
            .arg(kind)
            .arg(if approx { "~" } else { "=" })
            .arg(threshold);
        if let Some(limit) = options.trim_limit {
            if !approx {
                return Err(ConfigError::new(
                    "trim_limit",
                    "LIMIT is only allowed with approximate (~) trimming",
                ));
            }
            cmd = cmd.arg("LIMIT").arg_u64(limit);
        }
    } else if options.trim_limit.is_some() {
        return Err(ConfigError::new(
            "trim_limit",
            "LIMIT needs a MAXLEN or MINID trim",
        ));
    }
    cmd = match options.id {
        Some(id) => {
            if id.is_zero() {
                return Err(ConfigError::new("id", "0-0 is not a valid id for XADD"));
            }
            cmd.arg(id.to_string())
        }
        None => cmd.arg("*"),
    };
    let before = cmd.args.len();
    for (f, v) in fields {
        cmd = cmd.arg(f).arg(v);
    }
    if cmd.args.len() == before {
        return Err(ConfigError::new("fields", "XADD needs at least one field"));
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(cmd: &Command) -> String {
        String::from_utf8(cmd.to_bytes().to_vec()).unwrap()
    }

    #[test]
    fn encodes_resp_arrays() {
        let cmd = Command::new("SET").arg("k").arg("").arg_u64(42);
        assert_eq!(
            text(&cmd),
            "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n$2\r\n42\r\n"
        );
        let mut out = BytesMut::new();
        CommandWriter::begin(&mut out, 2)
            .arg(b"XACK")
            .arg_id(StreamId::new(12, 3));
        assert_eq!(&out[..], b"*2\r\n$4\r\nXACK\r\n$4\r\n12-3\r\n");
    }

    #[test]
    fn xadd_variants() {
        let plain = xadd("s", [("a", "1"), ("b", "2")], &XAddOptions::default()).unwrap();
        assert_eq!(
            plain.args(),
            &["XADD", "s", "*", "a", "1", "b", "2"]
                .map(|s: &'static str| Bytes::from_static(s.as_bytes()))[..]
        );
        let opts = XAddOptions {
            id: Some(StreamId::new(5, 1)),
            trim: Some(Trim::MaxLen {
                len: 100,
                approximate: true,
            }),
            trim_limit: Some(10),
            no_mkstream: true,
        };
        let full = xadd("s", [("a", "1")], &opts).unwrap();
        assert_eq!(
            full.args(),
            &[
                "XADD",
                "s",
                "NOMKSTREAM",
                "MAXLEN",
                "~",
                "100",
                "LIMIT",
                "10",
                "5-1",
                "a",
                "1"
            ]
            .map(|s: &'static str| Bytes::from_static(s.as_bytes()))[..]
        );
        let minid = XAddOptions {
            trim: Some(Trim::MinId {
                id: StreamId::new(9, 0),
                approximate: false,
            }),
            ..Default::default()
        };
        assert_eq!(
            xadd("s", [("a", "1")], &minid).unwrap().args(),
            &["XADD", "s", "MINID", "=", "9-0", "*", "a", "1"]
                .map(|s: &'static str| Bytes::from_static(s.as_bytes()))[..]
        );
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            xadd("s", none, &XAddOptions::default()).unwrap_err().option,
            "fields"
        );
        let exact_limit = XAddOptions {
            trim: Some(Trim::MaxLen {
                len: 1,
                approximate: false,
            }),
            trim_limit: Some(1),
            ..Default::default()
        };
        assert_eq!(
            xadd("s", [("a", "1")], &exact_limit).unwrap_err().option,
            "trim_limit"
        );
    }
}
