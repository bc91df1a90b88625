//! The pieces of an async adapter's drive loop that do not depend on the
//! runtime: the connections and the running handlers.

use std::fmt;
use std::future::{pending, Future};
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use futures_util::future::{
    join, ready, select, select_all, CatchUnwind, Either, FutureExt, Join, Ready,
};
use futures_util::stream::{FuturesUnordered, StreamExt};
use xgroup_core::{BatchId, Conn, ServerAddr, StreamConn};

use crate::dispatch::Driver;
use crate::io::{open, within, AsyncIo};

/// The consumer's connections on an async runtime (for each stream the
/// control one, the read one and the discovery one), each at most one
/// socket with the buffer it is read into. Each method carries out one
/// [`Action`](crate::Action) and tells the [`Driver`] how it went.
pub struct Links<R: AsyncIo> {
    /// Each stream's connections, in the order of the streams.
    streams: Vec<StreamLinks<R>>,
}

/// One stream's connections.
struct StreamLinks<R: AsyncIo> {
    control: Link<R>,
    read: Link<R>,
    discovery: Link<R>,
}

/// One connection: at most one socket, and the buffer it is read into
/// (allocated when it first opens).
struct Link<R: AsyncIo> {
    socket: Option<R::Socket>,
    buf: Vec<u8>,
}

/// Handler futures running inside `run` (never spawned), each with what
/// it works on (`K`: a batch's id, a message's [`Ticket`](crate::Ticket));
/// a panic is caught and reported as the handler's result.
pub struct Handlers<K, F: Future> {
    running: FuturesUnordered<Join<Ready<K>, CatchUnwind<AssertUnwindSafe<F>>>>,
}

impl<R: AsyncIo> Links<R> {
    /// [`Action::Connect`](crate::Action::Connect): opens a connection
    /// within the driver's connect timeout.
    pub async fn connect(&mut self, driver: &mut Driver, conn: StreamConn, addr: &ServerAddr) {
        let link = self.get(conn);
        link.socket = None;
        if link.buf.is_empty() {
            link.buf = vec![0; 64 * 1024];
        }
        // The TCP connect and the TLS handshake share the connect timeout.
        let tls = driver.tls_for(addr);
        match open::<R>(addr, tls.as_ref(), driver.connect_timeout()).await {
            Ok(socket) => {
                link.socket = Some(socket);
                driver.connected(conn);
            }
            Err(e) => driver.connect_failed(conn, e),
        }
    }

    /// [`Action::Write`](crate::Action::Write), within the driver's write
    /// timeout.
    pub async fn write(&mut self, driver: &mut Driver, conn: StreamConn, bytes: &[u8]) {
        let link = self.get(conn);
        let Some(socket) = link.socket.as_mut() else {
            return;
        };
        let write = R::write_all(socket, bytes);
        if let Err(e) = within::<R, _>("write", driver.write_timeout(), write).await {
            link.socket = None;
            driver.disconnected(conn, &e);
        }
    }

    /// [`Action::Disconnect`](crate::Action::Disconnect).
    pub fn close(&mut self, conn: StreamConn) {
        self.get(conn).socket = None;
    }

    /// Reads from whichever connection has bytes first (with one stream,
    /// the control one when several do); never completes without one.
    /// Hand the result to [`received`](Self::received).
    pub async fn read(&mut self) -> (StreamConn, io::Result<usize>) {
        let (stream, (conn, read)) = match &mut self.streams[..] {
            [] => pending().await,
            [only] => (0, only.read().await),
            several => {
                let reads = several.iter_mut().map(|s| Box::pin(s.read()));
                let (done, stream, _) = select_all(reads).await;
                (stream, done)
            }
        };
        (StreamConn { stream, conn }, read)
    }

    /// Gives the driver what [`read`](Self::read) returned.
    pub fn received(&mut self, driver: &mut Driver, (conn, read): (StreamConn, io::Result<usize>)) {
        let link = self.get(conn);
        // A count past the buffer (a broken reader) must not panic.
        let bytes = read.map(|n| &link.buf[..n.min(link.buf.len())]);
        if !driver.received(conn, bytes) {
            link.socket = None;
        }
    }

    fn get(&mut self, conn: StreamConn) -> &mut Link<R> {
        if self.streams.len() <= conn.stream {
            self.streams
                .resize_with(conn.stream + 1, StreamLinks::default);
        }
        let links = &mut self.streams[conn.stream];
        match conn.conn {
            Conn::Control => &mut links.control,
            Conn::Read => &mut links.read,
            Conn::Discovery => &mut links.discovery,
        }
    }
}

impl<R: AsyncIo> StreamLinks<R> {
    /// Reads from whichever of this stream's connections has bytes first
    /// (the control one when several do).
    async fn read(&mut self) -> (Conn, io::Result<usize>) {
        let control = pin!(self.control.read());
        let read = pin!(self.read.read());
        let discovery = pin!(self.discovery.read());
        let data = pin!(async {
            match select(control, read).await {
                Either::Left((done, _)) => (Conn::Control, done),
                Either::Right((done, _)) => (Conn::Read, done),
            }
        });
        match select(data, discovery).await {
            Either::Left((done, _)) => done,
            Either::Right((done, _)) => (Conn::Discovery, done),
        }
    }
}

impl<R: AsyncIo> Link<R> {
    async fn read(&mut self) -> io::Result<usize> {
        match self.socket.as_mut() {
            Some(socket) => R::read(socket, &mut self.buf).await,
            None => pending().await,
        }
    }
}

/// How long one poll of a handler running on the consumer's own task may
/// hold the thread before it is reported: nothing else of the consumer
/// (heartbeats, acks, reads) runs meanwhile.
pub const BLOCKING_POLL_WARNING: Duration = Duration::from_millis(100);

/// A handler future that runs on the consumer's own task (tokio's
/// current-thread runtime): a poll that holds the thread longer than
/// [`BLOCKING_POLL_WARNING`] is logged as a warning, once per call, naming
/// the batch and how long it blocked.
pub struct WatchedHandler<F> {
    handler: Pin<Box<F>>,
    batch: BatchId,
    warned: bool,
}

impl<F: Future> WatchedHandler<F> {
    /// Watches `handler`, running on `batch`.
    pub fn new(batch: BatchId, handler: F) -> Self {
        WatchedHandler {
            handler: Box::pin(handler),
            batch,
            warned: false,
        }
    }
}

impl<F: Future> Future for WatchedHandler<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let start = Instant::now();
        let done = self.handler.as_mut().poll(cx);
        let held = start.elapsed();
        if held > BLOCKING_POLL_WARNING && !self.warned {
            self.warned = true;
            tracing::warn!(
                batch = self.batch.0,
                ?held,
                "an xgroup handler blocked the consumer's thread: on a current-thread runtime \
                 nothing else of the consumer (heartbeats, acks) runs meanwhile; use a \
                 multi-thread runtime or move blocking work to spawn_blocking"
            );
        }
        done
    }
}

impl<F> fmt::Debug for WatchedHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedHandler")
            .field("batch", &self.batch)
            .field("warned", &self.warned)
            .finish()
    }
}

impl<K, F: Future> Handlers<K, F> {
    /// Starts running `handler` on `work`.
    pub fn push(&mut self, work: K, handler: F) {
        let guarded = AssertUnwindSafe(handler).catch_unwind();
        self.running.push(join(ready(work), guarded));
    }

    /// The next handler to finish, with its result or its panic; never
    /// completes while none runs. Hand it to
    /// [`Driver::completed`](crate::Driver::completed) (a batch) or
    /// [`Driver::handled`](crate::Driver::handled) (a message).
    pub async fn next(&mut self) -> (K, thread::Result<F::Output>) {
        match self.running.next().await {
            Some(done) => done,
            None => pending().await,
        }
    }
}

impl<R: AsyncIo> Default for Links<R> {
    fn default() -> Self {
        Links {
            streams: vec![StreamLinks::default()],
        }
    }
}

impl<R: AsyncIo> Default for StreamLinks<R> {
    fn default() -> Self {
        let link = || Link {
            socket: None,
            buf: Vec::new(),
        };
        StreamLinks {
            control: link(),
            read: link(),
            discovery: link(),
        }
    }
}

impl<K, F: Future> Default for Handlers<K, F> {
    fn default() -> Self {
        Handlers {
            running: FuturesUnordered::new(),
        }
    }
}

impl<R: AsyncIo> fmt::Debug for Links<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.streams).finish()
    }
}

impl<R: AsyncIo> fmt::Debug for StreamLinks<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamLinks")
            .field("control", &self.control.socket)
            .field("read", &self.read.socket)
            .field("discovery", &self.discovery.socket)
            .finish()
    }
}

impl<K, F: Future> fmt::Debug for Handlers<K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handlers")
            .field("running", &self.running.len())
            .finish()
    }
}
