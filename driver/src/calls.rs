//! The request/response logic of every adapter's `Connection`, sans-IO: a
//! call is some commands written together and their replies read back; the
//! adapter only opens, writes and reads what [`Calls::step`] asks for.
//!
//! A connection that failed (closed by the server, timed out, sent bad
//! bytes, refused the login, or left half-written by a call whose future was
//! dropped) is not reused: the next call opens a new one first, with the same
//! handshake. A call abandoned while waiting for its replies leaves the
//! connection as it is: its late replies are told apart by their request ids
//! and skipped, so no call ever gets another call's reply.

use std::fmt;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use xgroup_core::{
    Client, Command, ConfigError, ConnectOptions, Error, MasterQuestion, RequestId, SentinelTarget,
    ServerAddr, ServerErrorKind, Target, TlsOptions, Value,
};

use crate::tls;

/// How long opening a `Connection` may take, unless
/// [`ConnectionOptions::connect_timeout`] says otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one read or one write of a `Connection` call may take, unless
/// [`ConnectionOptions::io_timeout`] says otherwise; past it the call fails
/// with [`Error::ReplyTimeout`] and the next call opens a new connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`Error::ReplyTimeout`] names for a `Connection` call.
const CALL: &str = "a Connection call";

/// How a `Connection` connects: how long it waits on the network (the same
/// defaults in every adapter, [`CONNECT_TIMEOUT`] and [`IO_TIMEOUT`]; zero
/// is invalid), and its TLS settings.
///
/// ```
/// use std::time::Duration;
/// use xgroup_driver::ConnectionOptions;
///
/// let quick = ConnectionOptions::default().io_timeout(Duration::from_secs(2));
/// assert_eq!(quick.connect_timeout, Duration::from_secs(10));
/// assert!(quick.validate().is_ok());
/// assert!(quick.io_timeout(Duration::ZERO).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// How long opening a connection (TCP) may take, default 10 s. The
    /// handshake is the first write and read of the call that opened it.
    pub connect_timeout: Duration,
    /// How long each read and each write of a call may take, default 30 s.
    /// A reply slower than this (a `BLPOP` blocking longer, a busy server)
    /// fails the call with [`Error::ReplyTimeout`].
    pub io_timeout: Duration,
    /// TLS settings for a `rediss://` URL (what to trust, a client
    /// certificate, the name to verify); `None` for the defaults. With a
    /// `redis://` URL they are an [`Error::Config`]: TLS is never silently
    /// off.
    pub tls: Option<TlsOptions>,
}

/// Calls over one connection, reopened when needed: commands out, replies
/// in, in order.
///
/// ```
/// use xgroup_driver::{Calls, Step};
/// use xgroup_core::{Command, Value};
///
/// let (addr, opts) = xgroup_core::parse_url("redis://127.0.0.1:6380").unwrap();
/// let mut calls = Calls::new(addr, opts);
/// calls.start(&[Command::new("PING")]);
/// let Step::Connect(addr) = calls.step() else { panic!() };
/// assert_eq!(addr.port, 6380); // open a connection to it
/// calls.opened(Ok(()));
/// let Step::Write(bytes) = calls.step() else { panic!() };
/// assert!(bytes.ends_with(b"PING\r\n")); // write these
/// calls.wrote(Ok(()));
/// let Step::Read(buf) = calls.step() else { panic!() };
/// buf[..7].copy_from_slice(b"+PONG\r\n"); // read into this
/// calls.read(Ok(7));
/// let Step::Done(replies) = calls.step() else { panic!() };
/// assert_eq!(replies.unwrap(), [Value::Simple("PONG".into())]);
/// ```
pub struct Calls {
    addr: ServerAddr,
    client: Client,
    buf: Vec<u8>,
    call: Option<Call>,
    /// Why there is no usable connection, while there is none: the next
    /// call opens one first.
    down: Option<String>,
    /// With sentinels: who to ask for the master, and the asking under way.
    sentinels: Option<Sentinels>,
}

/// A `Connection` that follows a Sentinel-monitored master: every new
/// connection first asks the sentinels (in turn) where the master is.
#[derive(Debug)]
struct Sentinels {
    target: SentinelTarget,
    /// The sentinel to ask next.
    next: usize,
    /// `addr` is what a sentinel named since the last connection failed.
    named: bool,
    asking: Option<Asking>,
}

/// One round of questions: the sentinel asked, where it stands, and why
/// the others asked failed.
#[derive(Debug)]
struct Asking {
    tried: usize,
    stage: Stage,
    reasons: Vec<String>,
}

#[derive(Debug)]
enum Stage {
    Connect,
    Write(MasterQuestion, Bytes),
    Read(MasterQuestion),
}

/// What the current call needs next.
#[derive(Debug)]
pub enum Step<'a> {
    /// Drop the current socket, if any, and open a new one to this address
    /// (within the connect timeout); then report with [`Calls::opened`].
    Connect(&'a ServerAddr),
    /// Write all of these bytes (within the I/O timeout), then report with
    /// [`Calls::wrote`].
    Write(Bytes),
    /// Read into this buffer (within the I/O timeout), then report with
    /// [`Calls::read`].
    Read(&'a mut [u8]),
    /// The call is over: its replies in order (error replies as
    /// [`Value::Error`]), or why there are none. If [`Calls::is_down`] now
    /// says so, drop the socket: the next call opens a new one.
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

impl ConnectionOptions {
    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`io_timeout`](Self::io_timeout).
    #[must_use]
    pub fn io_timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = timeout;
        self
    }

    /// Sets the TLS settings (needs a `rediss://` URL).
    #[must_use]
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.tls = Some(options);
        self
    }

    /// Puts these options' TLS settings into `opts` (parsed from the URL):
    /// an [`Error::Config`] if the URL did not say `rediss://`.
    pub fn apply_tls(&self, opts: &mut ConnectOptions) -> Result<(), Error> {
        let Some(tls) = &self.tls else {
            return Ok(());
        };
        if opts.tls.is_none() {
            let why = "TLS options are set but the URL says redis://; use rediss:// for TLS";
            return Err(ConfigError::new("tls", why).into());
        }
        opts.tls = Some(tls.clone());
        Ok(())
    }

    /// Checks the options: a zero timeout is an [`Error::Config`].
    pub fn validate(&self) -> Result<(), Error> {
        for (option, timeout) in [
            ("connect_timeout", self.connect_timeout),
            ("io_timeout", self.io_timeout),
        ] {
            if timeout.is_zero() {
                return Err(ConfigError::new(option, "must be more than zero").into());
            }
        }
        Ok(())
    }
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            connect_timeout: CONNECT_TIMEOUT,
            io_timeout: IO_TIMEOUT,
            tls: None,
        }
    }
}

impl Calls {
    /// Calls to `addr`, each connection set up with `opts` (login, database,
    /// ...). Nothing is open yet: the first call opens a connection.
    pub fn new(addr: ServerAddr, opts: ConnectOptions) -> Self {
        Calls {
            addr,
            client: Client::new(opts),
            buf: vec![0; 64 * 1024],
            call: None,
            down: Some("not connected yet".into()),
            sentinels: None,
        }
    }

    /// Calls to the master `target`'s sentinels name: each new connection
    /// asks them first (in turn, until one answers), checks with `ROLE`
    /// that the node is the master, and a `READONLY` reply (the master
    /// moved) makes the next call ask again.
    pub fn with_sentinels(target: SentinelTarget, opts: ConnectOptions) -> Self {
        let first = target.sentinels[0].clone();
        let mut calls = Calls::new(first, opts);
        calls.client =
            std::mem::replace(&mut calls.client, Client::new(Default::default())).check_role(true);
        calls.sentinels = Some(Sentinels {
            target,
            next: 0,
            named: false,
            asking: None,
        });
        calls
    }

    /// Calls to where `url` says: a server, or the master its sentinels
    /// name.
    pub fn for_target(target: Target, opts: ConnectOptions) -> Self {
        match target {
            Target::Server(addr) => Calls::new(addr, opts),
            Target::Sentinel(target) => Calls::with_sentinels(target, opts),
            // (Refused before: see `cluster_unsupported`.)
            Target::Cluster(target) => Calls::new(target.seeds[0].clone(), opts),
        }
    }

    /// Why a `Connection` cannot take this target yet: routing each call
    /// to the node of its keys' slot is still to come.
    pub fn cluster_unsupported(target: &Target) -> Result<(), Error> {
        match target {
            Target::Cluster(_) => Err(ConfigError::new(
                "url",
                "a Connection to a Redis Cluster (redis+cluster://) is not supported yet: \
                 connect to the primary of the key's slot (consumers take cluster URLs)",
            )
            .into()),
            _ => Ok(()),
        }
    }

    /// Starts a call with these commands (none is fine: no IO, no replies).
    /// A command without a name fails the call before anything is sent.
    pub fn start(&mut self, commands: &[Command]) {
        if let Some(abandoned) = self.call.take() {
            // Its future was dropped. Half-written, it left garbage for the
            // server to read: reconnect. Before its connection opened, its
            // commands were never sent: forget them. While reading, the
            // connection is fine: its late replies are skipped by id.
            if abandoned.writing && self.down.is_none() {
                self.fail("an earlier call was abandoned while writing".into());
            } else if self.down.is_some() {
                self.client
                    .handle_disconnected("an earlier call was abandoned");
            }
        }
        let mut call = Call {
            first: RequestId(u64::MAX),
            expected: commands.len(),
            replies: Vec::with_capacity(commands.len()),
            writing: false,
            failed: None,
        };
        if commands.iter().any(|c| c.args().is_empty()) {
            let e = ConfigError::new("command", "a command needs at least its name");
            call.failed = Some(e.into());
        } else {
            for (i, command) in commands.iter().enumerate() {
                let id = self.client.send(command);
                if i == 0 {
                    call.first = id;
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
        if call.expected == 0 {
            self.call = None;
            return Step::Done(Ok(Vec::new()));
        }
        if self.down.is_some() {
            if let Some(s) = self.sentinels.as_mut().filter(|s| !s.named) {
                let asking = s.asking.get_or_insert_with(|| Asking {
                    tried: 0,
                    stage: Stage::Connect,
                    reasons: Vec::new(),
                });
                return match &asking.stage {
                    Stage::Connect => {
                        let n = s.target.sentinels.len();
                        Step::Connect(&s.target.sentinels[s.next % n])
                    }
                    Stage::Write(_, bytes) => Step::Write(bytes.clone()),
                    Stage::Read(_) => Step::Read(&mut self.buf),
                };
            }
            return Step::Connect(&self.addr);
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
        let replies: Result<Vec<Value>, Error> = replies.into_iter().collect();
        if let Err(e) = &replies {
            // No reply: the login failed (or the connection was lost). Try
            // a fresh connection next time rather than fail forever.
            self.fail(e.to_string());
        }
        // The master moved: the next call asks the sentinels again.
        let moved = |v: &Value| matches!(v, Value::Error(e) if e.kind == ServerErrorKind::ReadOnly);
        if self.sentinels.is_some() && replies.as_ref().is_ok_and(|r| r.iter().any(moved)) {
            self.fail("the node is no longer the master (READONLY)".into());
        }
        Step::Done(replies)
    }

    /// How opening the connection asked for by [`Step::Connect`] went.
    pub fn opened(&mut self, result: io::Result<()>) {
        if let Some(s) = self.sentinels.as_mut().filter(|s| s.asking.is_some()) {
            return match result {
                Ok(()) => {
                    let (question, bytes) = MasterQuestion::new(&s.target);
                    if let Some(asking) = s.asking.as_mut() {
                        asking.stage = Stage::Write(question, bytes);
                    }
                }
                Err(e) => self.sentinel_failed(e.to_string()),
            };
        }
        match result {
            Ok(()) => {
                self.down = None;
                // The handshake goes out first, then the call's commands.
                self.client.handle_connected();
            }
            Err(e) => {
                self.down = None;
                self.fail(format!("{}: {e}", self.addr.to_socket_string()));
                // A failed TLS handshake says why, typed.
                if let e @ Error::Tls { .. } = tls::connect_error(&self.addr, &e) {
                    self.set_failed(e);
                }
            }
        }
    }

    /// How the write asked for by [`Step::Write`] went.
    pub fn wrote(&mut self, result: io::Result<()>) {
        if let Some(asking) = self.asking() {
            return match result {
                Ok(()) => {
                    let stage = std::mem::replace(&mut asking.stage, Stage::Connect);
                    asking.stage = match stage {
                        Stage::Write(question, _) => Stage::Read(question),
                        other => other,
                    };
                }
                Err(e) => self.sentinel_failed(e.to_string()),
            };
        }
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
        if self.asking().is_some() {
            return self.sentinel_read(result);
        }
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

    /// Whether there is no usable connection: drop the socket, the next call
    /// opens a new one.
    pub fn is_down(&self) -> bool {
        self.down.is_some()
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
        } else if let e @ Error::Tls { .. } = tls::session_error(&self.addr, &e) {
            // A TLS 1.3 server rejects a client certificate with an alert
            // the first read meets.
            self.set_failed(e);
        }
    }

    /// The connection is done for: this call fails with `why` (unless it
    /// has a more precise error), and the next one opens a new connection.
    /// The round of questions under way, if any.
    fn asking(&mut self) -> Option<&mut Asking> {
        self.sentinels.as_mut()?.asking.as_mut()
    }

    fn sentinel_read(&mut self, result: io::Result<usize>) {
        let n = match result {
            Ok(0) => return self.sentinel_failed("connection closed".into()),
            Ok(n) => n.min(self.buf.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) => return self.sentinel_failed(e.to_string()),
        };
        let Some(s) = self.sentinels.as_mut() else {
            return;
        };
        let Some(Asking {
            stage: Stage::Read(question),
            ..
        }) = s.asking.as_mut()
        else {
            return;
        };
        match question.input(&self.buf[..n]) {
            Ok(None) => {}
            Ok(Some(master)) => {
                s.asking = None;
                s.named = true;
                self.addr = master;
            }
            Err(reason) => self.sentinel_failed(reason),
        }
    }

    /// The sentinel asked is of no use: the next is asked, and once all
    /// have failed the call fails, saying why for each.
    fn sentinel_failed(&mut self, reason: String) {
        let Some(s) = self.sentinels.as_mut() else {
            return;
        };
        let n = s.target.sentinels.len();
        let asked = s.target.sentinels[s.next % n].to_socket_string();
        s.next = (s.next + 1) % n;
        let Some(asking) = s.asking.as_mut() else {
            return;
        };
        // Some sockets' errors already name the address.
        match reason.starts_with(&asked) {
            true => asking.reasons.push(reason),
            false => asking.reasons.push(format!("{asked}: {reason}")),
        }
        asking.tried += 1;
        asking.stage = Stage::Connect;
        if asking.tried < n {
            return;
        }
        let why = format!(
            "no sentinel named the master {:?} ({})",
            s.target.master_name,
            asking.reasons.join("; ")
        );
        s.asking = None;
        self.fail(why);
    }

    fn fail(&mut self, why: String) {
        if let Some(s) = self.sentinels.as_mut() {
            // The next connection asks the sentinels again.
            s.named = false;
            s.asking = None;
        }
        self.client.handle_disconnected(&why);
        if let Some(call) = self.call.as_mut() {
            call.failed.get_or_insert(Error::Connection(why.clone()));
        }
        self.down.get_or_insert(why);
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
            .field("addr", &self.addr)
            .field("client", &self.client)
            .field("call", &self.call)
            .field("down", &self.down)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls with the default handshake (none): the first call connects.
    fn open() -> Calls {
        Calls::new(addr(), ConnectOptions::default())
    }

    fn addr() -> ServerAddr {
        ServerAddr {
            host: "127.0.0.1".into(),
            port: 7,
        }
    }

    /// Expects a `Connect` step (and reports the connection opened).
    fn connect(calls: &mut Calls) {
        match calls.step() {
            Step::Connect(to) => assert_eq!(*to, addr()),
            other => panic!("expected a connect, got {other:?}"),
        }
        calls.opened(Ok(()));
    }

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

    /// A PING call over a connection already open.
    fn ping_pong(calls: &mut Calls) {
        calls.start(&[ping()]);
        write(calls);
        feed(calls, b"+PONG\r\n");
        assert_eq!(
            Calls::one(done(calls).unwrap()).unwrap(),
            Value::Simple("PONG".into())
        );
    }

    fn ping() -> Command {
        Command::new("PING")
    }

    #[test]
    fn a_pipeline_ends_when_every_reply_is_in_however_the_bytes_are_cut() {
        let mut calls = Calls::new(addr(), ConnectOptions::default());
        calls.start(&[ping(), Command::from_args(["GET", "k"]), ping()]);
        connect(&mut calls);
        let written = write(&mut calls);
        assert_eq!(written.matches_count(b"PING"), 2);
        feed(&mut calls, b"+PONG\r\n-ERR no");
        feed(&mut calls, b"pe\r\n+PO");
        feed(&mut calls, b"NG\r\n");
        let replies = done(&mut calls).unwrap();
        assert_eq!(replies.len(), 3);
        assert!(matches!(&replies[1], Value::Error(e) if e.message == "ERR nope"));
        // The next call goes on over the same connection.
        ping_pong(&mut calls);
        assert!(!calls.is_down());
    }

    #[test]
    fn an_empty_pipeline_needs_no_io() {
        let mut calls = Calls::new(addr(), ConnectOptions::default());
        calls.start(&[]);
        assert_eq!(done(&mut calls).unwrap(), []);
    }

    #[test]
    fn a_command_without_a_name_fails_the_call_before_anything_is_sent() {
        let mut calls = open();
        calls.start(&[ping(), Command::from_args(Vec::<&str>::new())]);
        assert!(matches!(done(&mut calls), Err(Error::Config(_))));
        calls.start(&[ping()]);
        connect(&mut calls);
        assert_eq!(write(&mut calls).matches_count(b"PING"), 1);
    }

    #[test]
    fn a_timed_out_read_is_a_reply_timeout_and_the_next_call_reconnects() {
        for kind in [io::ErrorKind::TimedOut, io::ErrorKind::WouldBlock] {
            let mut calls = open();
            calls.start(&[Command::from_args(["GET", "a"])]);
            connect(&mut calls);
            write(&mut calls);
            assert!(matches!(calls.step(), Step::Read(_)));
            calls.read(Err(kind.into()));
            assert_eq!(done(&mut calls), Err(Error::ReplyTimeout { command: CALL }));
            assert!(calls.is_down());
            // The late reply is on the old socket, never read: the next call
            // gets its own over a new connection.
            calls.start(&[Command::from_args(["GET", "b"])]);
            connect(&mut calls);
            write(&mut calls);
            feed(&mut calls, b"$1\r\nb\r\n");
            assert_eq!(done(&mut calls), Ok(vec![Value::Bulk("b".into())]));
        }
    }

    #[test]
    fn a_timed_out_write_is_a_reply_timeout() {
        let mut calls = open();
        calls.start(&[ping()]);
        connect(&mut calls);
        assert!(matches!(calls.step(), Step::Write(_)));
        calls.wrote(Err(io::ErrorKind::TimedOut.into()));
        assert_eq!(done(&mut calls), Err(Error::ReplyTimeout { command: CALL }));
        calls.start(&[ping()]);
        connect(&mut calls);
    }

    #[test]
    fn a_closed_connection_fails_this_call_and_the_next_one_reconnects() {
        let mut calls = open();
        calls.start(&[ping()]);
        connect(&mut calls);
        write(&mut calls);
        assert!(matches!(calls.step(), Step::Read(_)));
        calls.read(Ok(0));
        assert_eq!(
            done(&mut calls),
            Err(Error::Connection("connection closed by the server".into()))
        );
        calls.start(&[ping()]);
        connect(&mut calls);
        write(&mut calls);
        feed(&mut calls, b"+PONG\r\n");
        assert!(done(&mut calls).is_ok());
    }

    #[test]
    fn a_failed_connect_fails_the_call_and_the_next_one_tries_again() {
        let mut calls = Calls::new(addr(), ConnectOptions::default());
        calls.start(&[ping()]);
        assert!(matches!(calls.step(), Step::Connect(_)));
        calls.opened(Err(io::ErrorKind::ConnectionRefused.into()));
        assert!(
            matches!(done(&mut calls), Err(Error::Connection(m)) if m.starts_with("127.0.0.1:7: "))
        );
        // The refused call's command is never sent.
        calls.start(&[Command::from_args(["GET", "k"])]);
        connect(&mut calls);
        let written = write(&mut calls);
        assert_eq!(written.matches_count(b"PING"), 0, "{written:?}");
        assert_eq!(written.matches_count(b"GET"), 1);
    }

    #[test]
    fn a_failed_tls_handshake_or_a_rejected_client_certificate_is_a_typed_error() {
        use xgroup_core::TlsFailure;
        let rustls = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let mut calls = open();
        calls.start(&[ping()]);
        assert!(matches!(calls.step(), Step::Connect(_)));
        let unknown = rustls::CertificateError::UnknownIssuer;
        calls.opened(Err(rustls(rustls::Error::InvalidCertificate(unknown))));
        let e = done(&mut calls).unwrap_err();
        assert!(
            matches!(&e, Error::Tls { cause: TlsFailure::UnknownIssuer, server, .. } if server == "127.0.0.1:7"),
            "{e:?}"
        );
        // TLS 1.3: the server's verdict on the client certificate comes as
        // an alert on the first read.
        calls.start(&[ping()]);
        connect(&mut calls);
        write(&mut calls);
        assert!(matches!(calls.step(), Step::Read(_)));
        let alert = rustls::AlertDescription::CertificateRequired;
        calls.read(Err(rustls(rustls::Error::AlertReceived(alert))));
        let e = done(&mut calls).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Tls {
                    cause: TlsFailure::ClientCertificateRequired,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(calls.is_down());
    }

    #[test]
    fn bad_bytes_are_a_protocol_error_and_the_next_call_reconnects() {
        let mut calls = open();
        calls.start(&[ping()]);
        connect(&mut calls);
        write(&mut calls);
        feed(&mut calls, b"?what\r\n");
        assert!(matches!(done(&mut calls), Err(Error::Protocol(_))));
        calls.start(&[ping()]);
        connect(&mut calls);
    }

    #[test]
    fn an_interrupted_read_is_retried() {
        let mut calls = open();
        calls.start(&[ping()]);
        connect(&mut calls);
        write(&mut calls);
        assert!(matches!(calls.step(), Step::Read(_)));
        calls.read(Err(io::ErrorKind::Interrupted.into()));
        feed(&mut calls, b"+PONG\r\n");
        assert!(done(&mut calls).is_ok());
    }

    #[test]
    fn the_replies_of_a_call_abandoned_while_reading_are_skipped() {
        let mut calls = open();
        calls.start(&[Command::from_args(["GET", "a"])]);
        connect(&mut calls);
        write(&mut calls);
        assert!(matches!(calls.step(), Step::Read(_)));
        // The caller gave up (its future was dropped) and calls again, over
        // the same connection.
        calls.start(&[Command::from_args(["GET", "b"])]);
        write(&mut calls);
        feed(&mut calls, b"$1\r\na\r\n$1\r\nb\r\n");
        assert_eq!(done(&mut calls).unwrap(), [Value::Bulk("b".into())]);
    }

    #[test]
    fn a_call_abandoned_while_writing_makes_the_next_one_reconnect() {
        let mut calls = open();
        calls.start(&[ping()]);
        connect(&mut calls);
        assert!(matches!(calls.step(), Step::Write(_)));
        calls.start(&[Command::from_args(["GET", "b"])]);
        connect(&mut calls);
        let written = write(&mut calls);
        assert_eq!(written.matches_count(b"PING"), 0, "{written:?}");
        feed(&mut calls, b"$1\r\nb\r\n");
        assert_eq!(done(&mut calls).unwrap(), [Value::Bulk("b".into())]);
    }

    #[test]
    fn a_call_abandoned_while_connecting_is_never_sent() {
        let mut calls = Calls::new(addr(), ConnectOptions::default());
        calls.start(&[Command::from_args(["INCR", "n"])]);
        assert!(matches!(calls.step(), Step::Connect(_)));
        calls.start(&[Command::from_args(["GET", "k"])]);
        connect(&mut calls);
        let written = write(&mut calls);
        assert_eq!(written.matches_count(b"INCR"), 0, "{written:?}");
        feed(&mut calls, b"$-1\r\n");
        assert_eq!(done(&mut calls).unwrap(), [Value::Nil]);
    }

    #[test]
    fn a_failed_login_fails_the_call_and_the_next_one_logs_in_again() {
        let opts = ConnectOptions {
            password: Some("secret".into()),
            ..ConnectOptions::default()
        };
        let mut calls = Calls::new(addr(), opts);
        calls.start(&[ping()]);
        connect(&mut calls);
        let written = write(&mut calls);
        assert!(written.starts_with(b"*2\r\n$4\r\nAUTH\r\n"));
        feed(&mut calls, b"-WRONGPASS invalid\r\n+PONG\r\n");
        assert!(matches!(done(&mut calls), Err(Error::Server(_))));
        assert!(calls.is_down());
        calls.start(&[ping()]);
        connect(&mut calls);
        let written = write(&mut calls);
        assert!(written.starts_with(b"*2\r\n$4\r\nAUTH\r\n"));
        feed(&mut calls, b"+OK\r\n+PONG\r\n");
        assert!(done(&mut calls).is_ok());
    }

    #[test]
    fn debug_output_never_shows_the_password_even_with_the_login_unwritten() {
        let opts = ConnectOptions {
            password: Some("pw-9c2e".into()),
            ..ConnectOptions::default()
        };
        let mut calls = Calls::new(addr(), opts);
        calls.start(&[ping()]);
        connect(&mut calls);
        // The AUTH is queued, not yet taken by a write.
        let shown = format!("{calls:?}");
        assert!(!shown.contains("pw-9c2e"), "{shown}");
        assert!(write(&mut calls).matches_count(b"pw-9c2e") == 1);
    }

    #[test]
    fn timeouts_default_to_10_and_30_seconds_and_zero_is_invalid() {
        let options = ConnectionOptions::default();
        assert_eq!(options.connect_timeout, Duration::from_secs(10));
        assert_eq!(options.io_timeout, Duration::from_secs(30));
        for bad in [
            options.clone().connect_timeout(Duration::ZERO),
            options.io_timeout(Duration::ZERO),
        ] {
            assert!(matches!(bad.validate(), Err(Error::Config(_))));
        }
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
