//! A tiny blocking RESP2 client: command encoding, a reply parser and a
//! connection over a std [`TcpStream`].
//!
//! This is test support: it is deliberately small and independent of the
//! core crate's decoder, so tests can use it to set up and check server state
//! without trusting the code under test.

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Default connect, read and write timeout of a [`RespConnection`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest bulk string or array the parser accepts (guards against garbage).
const MAX_LEN: i64 = 512 * 1024 * 1024;

/// A parsed RESP2 reply.
#[derive(Clone, PartialEq, Eq)]
pub enum RespValue {
    /// A null bulk string (`$-1`) or null array (`*-1`).
    Nil,
    /// An integer (`:`).
    Int(i64),
    /// A simple string (`+`).
    Simple(String),
    /// A bulk string (`$`).
    Bulk(Vec<u8>),
    /// An error reply (`-`), without the leading dash.
    Error(String),
    /// An array (`*`).
    Array(Vec<RespValue>),
}

impl RespValue {
    /// The integer, if this is an [`Int`](RespValue::Int).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            RespValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The text of a [`Simple`](RespValue::Simple) string, or of a
    /// [`Bulk`](RespValue::Bulk) string that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            RespValue::Simple(s) => Some(s),
            RespValue::Bulk(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The bytes of a [`Bulk`](RespValue::Bulk) or
    /// [`Simple`](RespValue::Simple) string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            RespValue::Simple(s) => Some(s.as_bytes()),
            RespValue::Bulk(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an [`Array`](RespValue::Array).
    pub fn as_array(&self) -> Option<&[RespValue]> {
        match self {
            RespValue::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The message, if this is an [`Error`](RespValue::Error).
    pub fn as_error(&self) -> Option<&str> {
        match self {
            RespValue::Error(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is [`Nil`](RespValue::Nil).
    pub fn is_nil(&self) -> bool {
        matches!(self, RespValue::Nil)
    }

    /// Whether this is an [`Error`](RespValue::Error).
    pub fn is_error(&self) -> bool {
        matches!(self, RespValue::Error(_))
    }
}

/// Bulk strings are shown as text when they are UTF-8, so test failures read well.
impl fmt::Debug for RespValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespValue::Nil => f.write_str("Nil"),
            RespValue::Int(i) => write!(f, "Int({i})"),
            RespValue::Simple(s) => write!(f, "Simple({s:?})"),
            RespValue::Bulk(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "Bulk({s:?})"),
                Err(_) => write!(f, "Bulk({b:?})"),
            },
            RespValue::Error(e) => write!(f, "Error({e:?})"),
            RespValue::Array(items) => {
                f.write_str("Array")?;
                f.debug_list().entries(items).finish()
            }
        }
    }
}

/// Encodes one command as a RESP2 array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one line without its CRLF; EOF before any byte is `UnexpectedEof`.
fn read_line<R: BufRead>(reader: &mut R) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = reader.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by peer",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed in the middle of a reply",
        ));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_int(bytes: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            invalid(format!(
                "bad RESP integer {:?}",
                String::from_utf8_lossy(bytes)
            ))
        })
}

/// Reads one RESP2 value from `reader` (blocking).
///
/// A peer that closes the connection gives an error of kind
/// [`UnexpectedEof`](io::ErrorKind::UnexpectedEof); a malformed reply gives
/// [`InvalidData`](io::ErrorKind::InvalidData).
pub fn read_value<R: BufRead>(reader: &mut R) -> io::Result<RespValue> {
    let line = read_line(reader)?;
    let (&kind, rest) = line
        .split_first()
        .ok_or_else(|| invalid("empty RESP line"))?;
    let text = || String::from_utf8_lossy(rest).into_owned();
    match kind {
        b'+' => Ok(RespValue::Simple(text())),
        b'-' => Ok(RespValue::Error(text())),
        b':' => Ok(RespValue::Int(parse_int(rest)?)),
        b'$' => {
            let len = parse_int(rest)?;
            if len < 0 {
                return Ok(RespValue::Nil);
            }
            if len > MAX_LEN {
                return Err(invalid(format!("bulk string too long: {len}")));
            }
            let mut buf = vec![0; len as usize + 2];
            reader.read_exact(&mut buf)?;
            if !buf.ends_with(b"\r\n") {
                return Err(invalid("bulk string not terminated by CRLF"));
            }
            buf.truncate(len as usize);
            Ok(RespValue::Bulk(buf))
        }
        b'*' => {
            let len = parse_int(rest)?;
            if len < 0 {
                return Ok(RespValue::Nil);
            }
            if len > MAX_LEN {
                return Err(invalid(format!("array too long: {len}")));
            }
            let mut items = Vec::with_capacity(len.min(1024) as usize);
            for _ in 0..len {
                items.push(read_value(reader)?);
            }
            Ok(RespValue::Array(items))
        }
        other => Err(invalid(format!(
            "unexpected RESP2 type byte {:?}",
            char::from(other)
        ))),
    }
}

/// A blocking RESP2 connection over a std [`TcpStream`].
///
/// Connect, read and write timeouts default to [`DEFAULT_TIMEOUT`] (10 s).
#[derive(Debug)]
pub struct RespConnection {
    reader: BufReader<TcpStream>,
}

impl RespConnection {
    /// Connects to `addr` (no authentication).
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        Self::connect_with_password(addr, None)
    }

    /// Connects to `addr`, and sends `AUTH password` first when `password`
    /// is set; an `AUTH` error reply becomes an error of kind
    /// [`PermissionDenied`](io::ErrorKind::PermissionDenied).
    pub fn connect_with_password(addr: SocketAddr, password: Option<&str>) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, DEFAULT_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(DEFAULT_TIMEOUT))?;
        stream.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
        let mut conn = RespConnection {
            reader: BufReader::new(stream),
        };
        if let Some(password) = password {
            if let RespValue::Error(e) = conn.cmd(&["AUTH", password])? {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("AUTH failed: {e}"),
                ));
            }
        }
        Ok(conn)
    }

    /// Sends one command without waiting for its reply (for pipelining).
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        let bytes = encode_command(args);
        let stream = self.reader.get_mut();
        stream.write_all(&bytes)?;
        stream.flush()
    }

    /// Reads the next reply.
    pub fn read_reply(&mut self) -> io::Result<RespValue> {
        read_value(&mut self.reader)
    }

    /// Sends one command and reads its reply. Error replies are returned as
    /// [`RespValue::Error`], not as `Err`.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<RespValue> {
        self.send(args)?;
        self.read_reply()
    }

    /// Sets the read timeout (`None`: block forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(timeout)
    }

    /// The underlying stream (e.g. to `shutdown` it or read its local address).
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> io::Result<RespValue> {
        read_value(&mut &bytes[..])
    }

    #[test]
    fn encodes_commands() {
        assert_eq!(
            encode_command(&["SET", "k", ""]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn parses_every_type() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), RespValue::Simple("OK".into()));
        assert_eq!(
            parse(b"-ERR no\r\n").unwrap(),
            RespValue::Error("ERR no".into())
        );
        assert_eq!(parse(b":-42\r\n").unwrap().as_int(), Some(-42));
        assert_eq!(parse(b"$-1\r\n").unwrap(), RespValue::Nil);
        assert_eq!(parse(b"*-1\r\n").unwrap(), RespValue::Nil);
        assert_eq!(parse(b"$4\r\na\r\nb\r\n").unwrap().as_str(), Some("a\r\nb"));
        let v = parse(b"*3\r\n:1\r\n*1\r\n$1\r\nx\r\n$-1\r\n").unwrap();
        let items = v.as_array().unwrap();
        assert_eq!(items[0].as_int(), Some(1));
        assert_eq!(items[1].as_array().unwrap()[0].as_str(), Some("x"));
        assert!(items[2].is_nil());
    }

    #[test]
    fn truncated_input_is_eof_and_garbage_is_invalid() {
        assert_eq!(parse(b"").unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(
            parse(b"$5\r\nab").unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert_eq!(
            parse(b"?x\r\n").unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert_eq!(
            parse(b":x\r\n").unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
