//! The request/response logic of every adapter's `Connection`, sans-IO: a
//! call is some commands written together and their replies read back; the
//! adapter only writes and reads what [`Calls::step`] asks for.

use std::fmt;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use xgroup_core::{Client, Command, ConnectOptions, Error, RequestId, ServerAddr, Value};

/// How long opening a `Connection` may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one read or one write of a `Connection` call may take; past it
/// the call fails with [`Error::ReplyTimeout`] and the connection is done.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`Error::ReplyTimeout`] names for a `Connection` call.
const CALL: &str = "a Connection call";

/// Calls over one connection: commands out, replies in, in order.
///
/// ```
/// use xgroup_driver::{Calls, Step};
/// use xgroup_core::{Command, ConnectOptions, Value};
///
/// let mut calls = Calls::new(ConnectOptions::default());
/// calls.start(&[Command::new("PING")]);
/// let Step::Write(bytes) = calls.step() else { panic!() };
/// assert!(bytes.ends_with(b"PING\r\n")); // write these
/// let Step::Read(buf) = calls.step() else { panic!() };
/// buf[..7].copy_from_slice(b"+PONG\r\n"); // read into this
/// calls.read(Ok(7));
/// let Step::Done(replies) = calls.step() else { panic!() };
/// assert_eq!(replies.unwrap(), [Value::Simple("PONG".into())]);
/// ```
pub struct Calls {
    client: Client,
    buf: Vec<u8>,
    call: Option<Call>,
    /// Why the connection can no longer be used, once it cannot.
    broken: Option<String>,
}

/// What the current call needs next.
#[derive(Debug)]
pub enum Step<'a> {
    /// Write all of these bytes (within [`IO_TIMEOUT`]), then report with
    /// [`Calls::wrote`].
    Write(Bytes),
    /// Read into this buffer (within [`IO_TIMEOUT`]), then report with
    /// [`Calls::read`].
    Read(&'a mut [u8]),
    /// The call is over: its replies in order (error replies as
    /// [`Value::Error`]), or why there are none.
    Done(Result<Vec<Value>, Error>),
}

#[derive(Debug)]
struct Call {
    /// Replies to requests before this one belong to an abandoned call.
    first: RequestId,
    expected: usize,
    replies: Vec<Result<Value, Error>>,
    /// Some of its bytes may be written but not all.
    writing: bool,
    failed: Option<Error>,
}

impl Calls {
    /// Calls over a connection just opened, set up with `opts` (login,
    /// database, ...: the handshake goes out with the first call).
    pub fn new(opts: ConnectOptions) -> Self {
        let mut client = Client::new(opts);
        client.handle_connected();
        Calls {
            client,
            buf: vec![0; 64 * 1024],
            call: None,
            broken: None,
        }
    }

    /// Starts a call with these commands (none is fine: no IO, no replies).
    pub fn start(&mut self, commands: &[Command]) {
        if let Some(abandoned) = self.call.take() {
            // An abandoned call (its future dropped) left bytes half-written:
            // what the server reads next is garbage. Its late replies are
            // told apart by their ids.
            if abandoned.writing && self.broken.is_none() {
                self.fail("an earlier call was abandoned while writing".into());
            }
        }
        let mut call = Call {
            first: RequestId(u64::MAX),
            expected: commands.len(),
            replies: Vec::with_capacity(commands.len()),
            writing: false,
            failed: None,
        };
        match &self.broken {
            Some(why) => {
                call.failed = Some(Error::Connection(format!("connection unusable: {why}")))
            }
            None => {
                for (i, command) in commands.iter().enumerate() {
                    let id = self.client.send(command);
                    if i == 0 {
                        call.first = id;
                    }
                }
            }
        }
        self.call = Some(call);
    }

    /// What the current call needs next (`Done` once, then a new call must
    /// be started).
    pub fn step(&mut self) -> Step<'_> {
        let Some(call) = self.call.as_mut() else {
            return Step::Done(Err(Error::Connection("no call started".into())));
        };
        if let Some(e) = call.failed.take() {
            self.call = None;
            return Step::Done(Err(e));
        }
        if let Some(bytes) = self.client.poll_transmit() {
            call.writing = true;
            return Step::Write(bytes);
        }
        while let Some((id, reply)) = self.client.poll_reply() {
            if id >= call.first {
                call.replies.push(reply);
            }
        }
        if call.replies.len() < call.expected {
            return Step::Read(&mut self.buf);
        }
        let replies = std::mem::take(&mut call.replies);
        self.call = None;
        Step::Done(replies.into_iter().collect())
    }

    /// How the write asked for by [`Step::Write`] went.
    pub fn wrote(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => {
                if let Some(call) = self.call.as_mut() {
                    call.writing = false;
                }
            }
            Err(e) => self.io_failed(e),
        }
    }

    /// How the read asked for by [`Step::Read`] went: how many bytes it put
    /// in the buffer. A timed-out read may report `TimedOut` or `WouldBlock`.
    pub fn read(&mut self, result: io::Result<usize>) {
        match result {
            Ok(0) => self.fail("connection closed by the server".into()),
            Ok(n) => {
                let Some(bytes) = self.buf.get(..n) else {
                    return self.fail(format!("read reported {n} bytes, more than asked"));
                };
                if let Err(e) = self.client.handle_input(bytes) {
                    self.fail(e.to_string());
                    self.set_failed(Error::Protocol(e));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => self.io_failed(e),
        }
    }

    /// The error for a connection that could not be opened.
    pub fn connect_error(addr: &ServerAddr, e: io::Error) -> Error {
        Error::Connection(format!("{}: {e}", addr.to_socket_string()))
    }

    /// The only reply of a one-command call: an error reply as `Err`.
    pub fn one(replies: Vec<Value>) -> Result<Value, Error> {
        match replies.into_iter().next() {
            Some(reply) => xgroup_core::into_result(reply),
            None => Err(Error::Connection("no reply".into())),
        }
    }

    fn io_failed(&mut self, e: io::Error) {
        let timed_out = matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        );
        self.fail(e.to_string());
        if timed_out {
            self.set_failed(Error::ReplyTimeout { command: CALL });
        }
    }

    /// The connection is done for: this call fails with `why` (unless it
    /// has a more precise error) and every later one at once.
    fn fail(&mut self, why: String) {
        self.client.handle_disconnected(&why);
        if let Some(call) = self.call.as_mut() {
            call.failed.get_or_insert(Error::Connection(why.clone()));
        }
        self.broken.get_or_insert(why);
    }

    fn set_failed(&mut self, e: Error) {
        if let Some(call) = self.call.as_mut() {
            call.failed = Some(e);
        }
    }
}

impl fmt::Debug for Calls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calls")
            .field("client", &self.client)
            .field("call", &self.call)
            .field("broken", &self.broken)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(calls: &mut Calls) -> Bytes {
        match calls.step() {
            Step::Write(bytes) => {
                calls.wrote(Ok(()));
                bytes
            }
            other => panic!("expected a write, got {other:?}"),
        }
    }

    fn feed(calls: &mut Calls, reply: &[u8]) {
        match calls.step() {
            Step::Read(buf) => buf[..reply.len()].copy_from_slice(reply),
            other => panic!("expected a read, got {other:?}"),
        }
        calls.read(Ok(reply.len()));
    }

    fn done(calls: &mut Calls) -> Result<Vec<Value>, Error> {
        match calls.step() {
            Step::Done(result) => result,
            other => panic!("expected the end, got {other:?}"),
        }
    }

    fn ping() -> Command {
        Command::new("PING")
    }

    #[test]
    fn a_pipeline_ends_when_every_reply_is_in_however_the_bytes_are_cut() {
        let mut calls = Calls::new(ConnectOptions::default());
        calls.start(&[ping(), Command::from_args(["GET", "k"]), ping()]);
        let written = write(&mut calls);
        assert_eq!(written.matches_count(b"PING"), 2);
        feed(&mut calls, b"+PONG\r\n-ERR no");
        feed(&mut calls, b"pe\r\n+PO");
        feed(&mut calls, b"NG\r\n");
        let replies = done(&mut calls).unwrap();
        assert_eq!(replies.len(), 3);
        assert!(matches!(&replies[1], Value::Error(e) if e.message == "ERR nope"));
        // The next call goes on over the same connection.
        calls.start(&[ping()]);
        write(&mut calls);
        feed(&mut calls, b"+PONG\r\n");
        assert_eq!(
            Calls::one(done(&mut calls).unwrap()).unwrap(),
            Value::Simple("PONG".into())
        );
    }

    #[test]
    fn an_empty_pipeline_needs_no_io() {
        let mut calls = Calls::new(ConnectOptions::default());
        calls.start(&[]);
        assert_eq!(done(&mut calls).unwrap(), []);
    }

    #[test]
    fn a_timed_out_read_is_a_reply_timeout_and_the_connection_is_done() {
        for kind in [io::ErrorKind::TimedOut, io::ErrorKind::WouldBlock] {
            let mut calls = Calls::new(ConnectOptions::default());
            calls.start(&[ping()]);
            write(&mut calls);
            assert!(matches!(calls.step(), Step::Read(_)));
            calls.read(Err(kind.into()));
            assert_eq!(done(&mut calls), Err(Error::ReplyTimeout { command: CALL }));
            calls.start(&[ping()]);
            assert!(matches!(done(&mut calls), Err(Error::Connection(_))));
        }
    }

    #[test]
    fn a_timed_out_write_is_a_reply_timeout() {
        let mut calls = Calls::new(ConnectOptions::default());
        calls.start(&[ping()]);
        assert!(matches!(calls.step(), Step::Write(_)));
        calls.wrote(Err(io::ErrorKind::TimedOut.into()));
        assert_eq!(done(&mut calls), Err(Error::ReplyTimeout { command: CALL }));
    }

    #[test]
    fn a_closed_or_failed_connection_fails_this_call_and_every_later_one() {
        let mut calls = Calls::new(ConnectOptions::default());
        calls.start(&[ping()]);
        write(&mut calls);
        assert!(matches!(calls.step(), Step::Read(_)));
        calls.read(Ok(0));
        assert_eq!(
            done(&mut calls),
            Err(Error::Connection("connection closed by the server".into()))
        );
        calls.start(&[ping()]);
        assert!(matches!(done(&mut calls), Err(Error::Connection(m)) if m.contains("closed")));
    }

    #[test]
    fn bad_bytes_are_a_protocol_error() {
        let mut calls = Calls::new(ConnectOptions::default());
        calls.start(&[ping()]);
        write(&mut calls);
        feed(&mut calls, b"?what\r\n");
        assert!(matches!(done(&mut calls), Err(Error::Protocol(_))));
    }

    #[test]
    fn an_interrupted_read_is_retried() {
        let mut calls = Calls::new(ConnectOptions::default());
        calls.start(&[ping()]);
        write(&mut calls);
        assert!(matches!(calls.step(), Step::Read(_)));
        calls.read(Err(io::ErrorKind::Interrupted.into()));
        feed(&mut calls, b"+PONG\r\n");
        assert!(done(&mut calls).is_ok());
    }

    #[test]
    fn the_replies_of_a_call_abandoned_while_reading_are_skipped() {
        let mut calls = Calls::new(ConnectOptions::default());
        calls.start(&[Command::from_args(["GET", "a"])]);
        write(&mut calls);
        assert!(matches!(calls.step(), Step::Read(_)));
        // The caller gave up (its future was dropped) and calls again.
        calls.start(&[Command::from_args(["GET", "b"])]);
        write(&mut calls);
        feed(&mut calls, b"$1\r\na\r\n$1\r\nb\r\n");
        assert_eq!(done(&mut calls).unwrap(), [Value::Bulk("b".into())]);
    }

    #[test]
    fn a_call_abandoned_while_writing_leaves_the_connection_unusable() {
        let mut calls = Calls::new(ConnectOptions::default());
        calls.start(&[ping()]);
        assert!(matches!(calls.step(), Step::Write(_)));
        calls.start(&[ping()]);
        assert!(matches!(done(&mut calls), Err(Error::Connection(m)) if m.contains("abandoned")));
    }

    #[test]
    fn a_failed_login_fails_the_call() {
        let mut calls = Calls::new(ConnectOptions {
            password: Some("secret".into()),
            ..ConnectOptions::default()
        });
        calls.start(&[ping()]);
        let written = write(&mut calls);
        assert!(written.starts_with(b"*2\r\n$4\r\nAUTH\r\n"));
        feed(&mut calls, b"-WRONGPASS invalid\r\n+PONG\r\n");
        assert!(matches!(done(&mut calls), Err(Error::Server(_))));
    }

    trait Count {
        fn matches_count(&self, needle: &[u8]) -> usize;
    }

    impl Count for Bytes {
        fn matches_count(&self, needle: &[u8]) -> usize {
            self.windows(needle.len()).filter(|w| *w == needle).count()
        }
    }
}
