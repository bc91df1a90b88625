//! The pieces of an async adapter's drive loop that do not depend on the
//! runtime: the connection and the running handlers.

use std::fmt;
use std::future::{pending, Future};
use std::io;
use std::panic::AssertUnwindSafe;
use std::thread;

use futures_util::future::{join, ready, CatchUnwind, FutureExt, Join, Ready};
use futures_util::stream::{FuturesUnordered, StreamExt};
use xgroup_core::{BatchId, Outcome, ServerAddr};

use crate::dispatch::Driver;
use crate::io::{within, AsyncIo};

/// The consumer's connection on an async runtime: at most one socket, and
/// the buffer it is read into. Each method carries out one
/// [`Action`](crate::Action) and tells the [`Driver`] how it went.
pub struct Link<R: AsyncIo> {
    socket: Option<R::Socket>,
    buf: Vec<u8>,
}

/// Handler futures running inside `run` (never spawned), each with its
/// batch; a panic is caught and reported as the handler's result.
pub struct Handlers<F: Future<Output = Outcome>> {
    running: FuturesUnordered<Join<Ready<BatchId>, CatchUnwind<AssertUnwindSafe<F>>>>,
}

impl<R: AsyncIo> Link<R> {
    /// [`Action::Connect`](crate::Action::Connect): opens a connection
    /// within the driver's connect timeout.
    pub async fn connect(&mut self, driver: &mut Driver, addr: &ServerAddr) {
        self.socket = None;
        match within::<R, _>("connect", driver.connect_timeout(), R::connect(addr)).await {
            Ok(socket) => {
                self.socket = Some(socket);
                driver.connected();
            }
            Err(e) => driver.connect_failed(e),
        }
    }

    /// [`Action::Write`](crate::Action::Write), within the driver's write
    /// timeout.
    pub async fn write(&mut self, driver: &mut Driver, bytes: &[u8]) {
        let Some(socket) = self.socket.as_mut() else {
            return;
        };
        let write = R::write_all(socket, bytes);
        if let Err(e) = within::<R, _>("write", driver.write_timeout(), write).await {
            self.socket = None;
            driver.disconnected(e);
        }
    }

    /// [`Action::Disconnect`](crate::Action::Disconnect).
    pub fn close(&mut self) {
        self.socket = None;
    }

    /// Reads from the connection; never completes without one. Hand the
    /// result to [`received`](Self::received).
    pub async fn read(&mut self) -> io::Result<usize> {
        match self.socket.as_mut() {
            Some(socket) => R::read(socket, &mut self.buf).await,
            None => pending().await,
        }
    }

    /// Gives the driver what [`read`](Self::read) returned.
    pub fn received(&mut self, driver: &mut Driver, read: io::Result<usize>) {
        // A count past the buffer (a broken reader) must not panic.
        let bytes = read.map(|n| &self.buf[..n.min(self.buf.len())]);
        if !driver.received(bytes) {
            self.socket = None;
        }
    }
}

impl<F: Future<Output = Outcome>> Handlers<F> {
    /// Starts running `handler` on `batch`.
    pub fn push(&mut self, batch: BatchId, handler: F) {
        let guarded = AssertUnwindSafe(handler).catch_unwind();
        self.running.push(join(ready(batch), guarded));
    }

    /// The next handler to finish, with its outcome or its panic; never
    /// completes while none runs. Hand it to
    /// [`Driver::completed`](crate::Driver::completed).
    pub async fn next(&mut self) -> (BatchId, thread::Result<Outcome>) {
        match self.running.next().await {
            Some(done) => done,
            None => pending().await,
        }
    }
}

impl<R: AsyncIo> Default for Link<R> {
    fn default() -> Self {
        Link {
            socket: None,
            buf: vec![0; 64 * 1024],
        }
    }
}

impl<F: Future<Output = Outcome>> Default for Handlers<F> {
    fn default() -> Self {
        Handlers {
            running: FuturesUnordered::new(),
        }
    }
}

impl<R: AsyncIo> fmt::Debug for Link<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("socket", &self.socket)
            .finish()
    }
}

impl<F: Future<Output = Outcome>> fmt::Debug for Handlers<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handlers")
            .field("running", &self.running.len())
            .finish()
    }
}
