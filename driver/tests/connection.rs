//! `AsyncConnection` and `BlockingConnection` over scripted sockets: the
//! replies, the timeouts (a silent server is an error, not a hang) and the
//! reconnection after one.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{pending, ready, Future};
use std::io;
use std::time::{Duration, Instant};

use futures_util::future::{Either, FutureExt};
use xgroup_driver::exports::*;
use xgroup_driver::{AsyncConnection, AsyncIo, BlockingConnection, BlockingIo, TlsSetup};

/// A socket that answers with the chunks it was given, then stays silent.
#[derive(Debug, Default)]
struct Script {
    chunks: VecDeque<Vec<u8>>,
    written: Vec<u8>,
}

impl Script {
    fn next_chunk(&mut self, buf: &mut [u8]) -> Option<usize> {
        let chunk = self.chunks.pop_front()?;
        buf[..chunk.len()].copy_from_slice(&chunk);
        Some(chunk.len())
    }
}

thread_local! {
    /// What the next connection will answer.
    static REPLIES: RefCell<Vec<&'static [u8]>> = const { RefCell::new(Vec::new()) };
    /// Connections opened since the last `script`.
    static OPENED: Cell<usize> = const { Cell::new(0) };
    /// The timeouts the blocking runtime was given, and how far off the last
    /// async timer was set.
    static LIMITS: RefCell<Vec<Duration>> = const { RefCell::new(Vec::new()) };
}

fn script(replies: &[&'static [u8]]) {
    REPLIES.with(|r| *r.borrow_mut() = replies.to_vec());
    OPENED.set(0);
    LIMITS.with(|l| l.borrow_mut().clear());
}

fn opened() -> usize {
    OPENED.get()
}

fn limits() -> Vec<Duration> {
    LIMITS.with(|l| l.borrow().clone())
}

fn scripted() -> Script {
    OPENED.set(OPENED.get() + 1);
    Script {
        chunks: REPLIES.with(|r| r.borrow().iter().map(|c| c.to_vec()).collect()),
        written: Vec::new(),
    }
}

/// An async runtime whose timer fires at once and whose silent reads never
/// complete: a call that waits for a reply times out on its first poll.
struct Instantly;

impl AsyncIo for Instantly {
    type Socket = Script;

    fn connect(
        _: &ServerAddr,
        _: Option<&TlsSetup>,
    ) -> impl Future<Output = io::Result<Script>> + Send {
        ready(Ok(scripted()))
    }

    fn write_all(socket: &mut Script, bytes: &[u8]) -> impl Future<Output = io::Result<()>> + Send {
        socket.written.extend_from_slice(bytes);
        ready(Ok(()))
    }

    fn read(socket: &mut Script, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> + Send {
        match socket.next_chunk(buf) {
            Some(n) => Either::Left(ready(Ok(n))),
            None => Either::Right(pending()),
        }
    }

    fn sleep_until(at: Instant) -> impl Future<Output = ()> + Send {
        let left = at.saturating_duration_since(Instant::now());
        LIMITS.with(|l| l.borrow_mut().push(left));
        ready(())
    }
}

/// Blocking sockets whose silent reads time out at once, the way a socket
/// with a read timeout reports it (`WouldBlock`).
struct Impatient;

impl io::Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.next_chunk(buf)
            .ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }
}

impl io::Write for Script {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlockingIo for Impatient {
    type Socket = Script;

    fn connect(
        _: &ServerAddr,
        _: Option<&TlsSetup>,
        timeout: Duration,
        io_timeout: Duration,
    ) -> io::Result<Script> {
        LIMITS.with(|l| l.borrow_mut().extend([timeout, io_timeout]));
        Ok(scripted())
    }
}

const URL: &str = "redis://127.0.0.1:1";

#[test]
fn async_calls_get_their_replies_in_order() {
    script(&[
        b"+PONG\r\n",
        b":3\r\n",
        b"$15\r\n1700000000000-0\r\n-ERR no such",
        b" thing\r\n",
    ]);
    let mut conn = AsyncConnection::<Instantly>::connect(URL)
        .now_or_never()
        .unwrap()
        .unwrap();
    let len = conn.command(["XLEN", "s"]).now_or_never().unwrap();
    assert_eq!(len, Ok(Value::Int(3)));
    let id = conn
        .xadd("s", [("k", "v")], &XAddOptions::default())
        .now_or_never()
        .unwrap();
    assert_eq!(id.unwrap().to_string(), "1700000000000-0");
    let err = conn.command(["NOPE"]).now_or_never().unwrap();
    assert!(matches!(err, Err(Error::Server(e)) if e.message == "ERR no such thing"));
}

#[test]
fn an_async_call_without_a_reply_times_out_and_the_next_call_reconnects() {
    script(&[b"+PONG\r\n"]);
    let mut conn = AsyncConnection::<Instantly>::connect(URL)
        .now_or_never()
        .unwrap()
        .unwrap();
    let timed_out = conn.command(["BLPOP", "k", "0"]).now_or_never().unwrap();
    assert!(
        matches!(timed_out, Err(Error::ReplyTimeout { .. })),
        "{timed_out:?}"
    );
    assert_eq!(opened(), 1);
    let after = conn.command(["PING"]).now_or_never().unwrap();
    assert_eq!(after, Ok(Value::Simple("PONG".into())));
    assert_eq!(opened(), 2);
}

#[test]
fn async_timeouts_are_the_defaults_or_the_ones_given() {
    script(&[b"+PONG\r\n"]);
    AsyncConnection::<Instantly>::connect(URL)
        .now_or_never()
        .unwrap()
        .unwrap();
    let near = |got: Duration, want: Duration| want.saturating_sub(got) < Duration::from_secs(1);
    let seen = limits();
    assert!(
        near(seen[0], CONNECT_TIMEOUT) && near(seen[1], IO_TIMEOUT),
        "{seen:?}"
    );
    script(&[b"+PONG\r\n"]);
    let options = ConnectionOptions::default()
        .connect_timeout(Duration::from_secs(70))
        .io_timeout(Duration::from_secs(90));
    AsyncConnection::<Instantly>::connect_with(URL, options)
        .now_or_never()
        .unwrap()
        .unwrap();
    let seen = limits();
    let (connect, io) = (Duration::from_secs(70), Duration::from_secs(90));
    assert!(near(seen[0], connect) && near(seen[1], io), "{seen:?}");
    let zero = ConnectionOptions::default().io_timeout(Duration::ZERO);
    let refused = AsyncConnection::<Instantly>::connect_with(URL, zero)
        .now_or_never()
        .unwrap();
    assert!(matches!(refused, Err(Error::Config(_))), "{refused:?}");
}

#[test]
fn an_async_connect_to_a_silent_server_times_out() {
    script(&[]);
    let connected = AsyncConnection::<Instantly>::connect(URL)
        .now_or_never()
        .unwrap();
    assert!(
        matches!(connected, Err(Error::ReplyTimeout { .. })),
        "{connected:?}"
    );
}

#[test]
fn blocking_calls_get_their_replies_and_time_out_without_one() {
    script(&[b"+PONG\r\n", b"+OK\r\n:1\r\n"]);
    let mut conn = BlockingConnection::<Impatient>::connect(URL).unwrap();
    assert_eq!(limits(), [CONNECT_TIMEOUT, IO_TIMEOUT]);
    let replies = conn.pipeline(&[
        Command::from_args(["SET", "k", "v"]),
        Command::from_args(["INCR", "n"]),
    ]);
    assert_eq!(replies, Ok(vec![Value::Simple("OK".into()), Value::Int(1)]));
    let timed_out = conn.command(["GET", "k"]);
    assert!(
        matches!(timed_out, Err(Error::ReplyTimeout { .. })),
        "{timed_out:?}"
    );
    // A new connection (answering as scripted: PONG first).
    assert_eq!(conn.command(["PING"]), Ok(Value::Simple("PONG".into())));
    assert_eq!(opened(), 2);
}

#[test]
fn blocking_timeouts_given_reach_the_socket() {
    script(&[b"+PONG\r\n"]);
    let (connect, io) = (Duration::from_millis(1500), Duration::from_millis(2500));
    let options = ConnectionOptions::default()
        .connect_timeout(connect)
        .io_timeout(io);
    BlockingConnection::<Impatient>::connect_with(URL, options).unwrap();
    assert_eq!(limits(), [connect, io]);
    let zero = ConnectionOptions::default().connect_timeout(Duration::ZERO);
    let refused = BlockingConnection::<Impatient>::connect_with(URL, zero);
    assert!(matches!(refused, Err(Error::Config(_))), "{refused:?}");
}

#[test]
fn a_bad_url_fails_before_connecting() {
    let connected = BlockingConnection::<Impatient>::connect("http://x");
    assert!(matches!(connected, Err(Error::Config(_))), "{connected:?}");
}
