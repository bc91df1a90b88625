//! # xgroup-async-std
//!
//! Runs an [`xgroup_core::Consumer`] over `async_io::Async<std::net::TcpStream>`
//! (and `futures-rustls` over it for `rediss://`) with `futures-io` traits
//! and `async_io::Timer`, so the same code runs under
//! async-std and smol (any executor, with async-io's reactor). All policy
//! (what to send, when, what to retry) is the core's, and everything that
//! does not depend on the runtime is `xgroup-driver`'s; this crate opens
//! sockets, moves bytes, runs handler futures concurrently up to the
//! configured concurrency (by default the in-flight limit) and arms
//! async-io's timer.
//!
//! Each handler call runs on a handler thread of its own (kept between
//! batches), driven there with `block_on`: the adapter knows no executor to
//! spawn on, and async-io's reactor (which async-std and smol share) serves
//! the handler's sockets and timers from any thread. So a handler that
//! blocks its thread or burns CPU stalls neither the consumer's heartbeats
//! nor its acks, and handlers run in parallel on several cores.
//!
//! ```no_run
//! use xgroup_async_std::{Consumer, Outcome};
//!
//! # async fn demo() -> Result<(), xgroup_async_std::Error> {
//! let consumer = Consumer::builder("redis://127.0.0.1:6379", "orders", "processors", "proc-1")
//!     .configure(|c| c.count(100))
//!     .handler_fn(|batch| async move {
//!         for m in &batch.messages {
//!             println!("{} {:?}", m.id, m.fields);
//!         }
//!         Outcome::AckAll
//!     })
//!     .build()?;
//! let handle = consumer.handle();
//! std::thread::spawn(move || {
//!     // ... wait for a reason to stop ...
//!     handle.stop();
//! });
//! consumer.run().await
//! # }
//! ```
//!
//! One message at a time (`Ok(())` acknowledges; a [`Failure`] retries,
//! dead-letters or keeps it), or a stream of deliveries: `messages()` runs
//! the consumer on a thread of its own, driven there with `block_on`.
//!
//! ```no_run
//! use futures_lite::StreamExt;
//! use xgroup_async_std::{Consumer, Failure};
//!
//! # async fn demo() -> Result<(), xgroup_async_std::Error> {
//! let each = Consumer::builder("redis://127.0.0.1:6379", "orders", "processors", "proc-1")
//!     .concurrency(4)
//!     .handler_each(|m| async move {
//!         if m.fields.get("user_id").is_none() {
//!             return Err(Failure::dead_letter("no user_id"));
//!         }
//!         Ok(())
//!     })
//!     .build()?;
//! # drop(each);
//! let mut messages = Consumer::builder("redis://127.0.0.1:6379", "orders", "processors", "proc-2")
//!     .build()?
//!     .messages();
//! while let Some(delivery) = messages.next().await {
//!     delivery?.ack();
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::pending;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread;
use std::time::Instant;

use async_io::{Async, Timer};
use futures_lite::{future::block_on, AsyncReadExt, AsyncWriteExt, FutureExt};
use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use xgroup_driver::{
    sleep_until, Action, AsyncIo, Deliveries, Done, HandlerThreads, Instrument, Links, Parts, Run,
    Runtime, Spawn, Ticket, TlsSetup, Worker,
};

pub use xgroup_driver::exports::*;
pub use xgroup_driver::{Handler, Shape};

/// A consumer-group consumer on async-io (async-std, smol, ...);
/// [`run`](xgroup_driver::Consumer::run) returns a future to await or spawn.
pub type Consumer<H = NoHandler> = xgroup_driver::Consumer<AsyncStd, H>;

/// Builds a [`Consumer`].
pub type ConsumerBuilder<H = NoHandler> = xgroup_driver::ConsumerBuilder<AsyncStd, H>;

/// Controls a consumer from elsewhere: `info()`, `stop()`.
pub type ConsumerHandle = xgroup_driver::ConsumerHandle<AsyncStd>;

/// A plain connection for commands and producing: `command(..)`, `xadd(..)`.
pub type Connection = xgroup_driver::AsyncConnection<AsyncStd>;

/// The messages of a consumer, from `consumer.messages()`: a
/// `futures::Stream` of `Result<Delivery, Error>`.
pub type Messages = xgroup_driver::Messages<AsyncStd>;

/// The async-io runtime of async-std and smol (the marker the driver's
/// types are generic over).
#[derive(Debug, Clone, Copy)]
pub struct AsyncStd;

/// A connection to the server: plain TCP, or TLS over it (`rediss://`).
/// The TLS stream is boxed (it is large); the plain path stays as it was.
pub enum Socket {
    /// `redis://`.
    Plain(Async<TcpStream>),
    /// `rediss://`: `futures-rustls` over TCP.
    Tls(Box<TlsStream<Async<TcpStream>>>),
}

/// A stop, kept until `run` takes it (a channel with one slot).
#[derive(Debug)]
pub struct StopSignal(async_channel::Sender<()>, async_channel::Receiver<()>);

impl Default for StopSignal {
    fn default() -> Self {
        let (tx, rx) = async_channel::bounded(1);
        StopSignal(tx, rx)
    }
}

impl Runtime for AsyncStd {
    type Stop = StopSignal;

    fn stop(signal: &StopSignal) {
        let _ = signal.0.try_send(());
    }
}

impl<H: Shape> Run<H> for AsyncStd {
    type Output = RunFuture;

    fn run(consumer: Consumer<H>) -> RunFuture {
        Box::pin(drive(consumer.into_parts()))
    }
}

/// `messages()` runs the consumer on a thread of its own, driven there with
/// `block_on` (the adapter knows no executor to spawn on; async-io's
/// reactor serves it from any thread).
impl Spawn for AsyncStd {
    fn spawn(consumer: Consumer<Deliveries>, done: Done) -> Result<(), Error> {
        thread::Builder::new()
            .name("xgroup-consumer".into())
            .spawn(move || done(block_on(consumer.run())))
            .map(drop)
            .map_err(|e| Error::Connection(format!("cannot start the consumer's thread: {e}")))
    }
}

impl AsyncIo for AsyncStd {
    type Socket = Socket;

    /// Tries each resolved address in turn.
    async fn connect(addr: &ServerAddr, tls: Option<&TlsSetup>) -> io::Result<Socket> {
        let socket = connect_tcp(addr).await?;
        let Some(tls) = tls else {
            return Ok(Socket::Plain(socket));
        };
        let connector = TlsConnector::from(tls.config().clone());
        let stream = connector.connect(tls.server_name().clone(), socket).await?;
        Ok(Socket::Tls(Box::new(stream)))
    }

    async fn write_all(socket: &mut Socket, bytes: &[u8]) -> io::Result<()> {
        match socket {
            Socket::Plain(tcp) => tcp.write_all(bytes).await,
            // rustls may hold encrypted bytes back until flushed.
            Socket::Tls(tls) => {
                tls.write_all(bytes).await?;
                tls.flush().await
            }
        }
    }

    async fn read(socket: &mut Socket, buf: &mut [u8]) -> io::Result<usize> {
        match socket {
            Socket::Plain(tcp) => tcp.read(buf).await,
            Socket::Tls(tls) => tls.read(buf).await,
        }
    }

    async fn sleep_until(at: Instant) {
        Timer::at(at).await;
    }
}

/// The one input `drive` waits for.
enum Input {
    Stop,
    Done(Finished),
    Read((StreamConn, io::Result<usize>)),
    Timeout,
}

async fn drive<H: Shape>(parts: Parts<AsyncStd, H>) -> Result<(), Error> {
    let (mut driver, handler, stop) = (parts.driver, parts.handler, parts.stop);
    let mut links = Links::<AsyncStd>::default();
    let mut handlers = HandlerThreads::default();
    // Handler results; `drive` holds a sender, so it never closes.
    let (finished, done) = async_channel::unbounded::<Finished>();
    loop {
        while let Some(action) = driver.next_action() {
            match action {
                Action::Connect(conn, addr) => links.connect(&mut driver, conn, &addr).await,
                Action::Write(conn, bytes) => links.write(&mut driver, conn, &bytes).await,
                Action::Disconnect(conn) => links.close(conn),
                Action::Deliver(batch) => {
                    let (handler, finished, id) = (handler.clone(), finished.clone(), batch.id);
                    let span = driver.batch_span(&batch);
                    let started = handlers.run(move |worker| {
                        let call = handler.batch(batch).instrument(span);
                        let work = AssertUnwindSafe(|| block_on(call));
                        let _ =
                            finished.send_blocking(Finished::Batch(id, catch_unwind(work), worker));
                    });
                    if let Err(e) = started {
                        driver.handler_failed(id, format!("cannot start a handler thread: {e}"));
                    }
                }
                Action::Handle(job) => {
                    let (handler, finished, ticket) =
                        (handler.clone(), finished.clone(), job.ticket());
                    let started = handlers.run(move |worker| {
                        let span = job.span.clone();
                        let call = handler.message(job).instrument(span);
                        let work = AssertUnwindSafe(|| block_on(call));
                        let result = catch_unwind(work);
                        let _ = finished.send_blocking(Finished::Message(ticket, result, worker));
                    });
                    if let Err(e) = started {
                        driver
                            .message_failed(ticket, format!("cannot start a handler thread: {e}"));
                    }
                }
                Action::Stopped(result) => return result,
            }
        }
        // The first of (in this order): stop, a handler done, bytes, deadline.
        let stopping = driver.is_stopping();
        let input = async {
            if stopping {
                pending::<()>().await;
            }
            let _ = stop.1.recv().await;
            Input::Stop
        }
        .or(async {
            match done.recv().await {
                Ok(finished) => Input::Done(finished),
                Err(_) => pending().await,
            }
        })
        .or(async { Input::Read(links.read().await) })
        .or(async {
            sleep_until::<AsyncStd>(driver.deadline()).await;
            Input::Timeout
        })
        .await;
        match input {
            Input::Stop => driver.shutdown(),
            Input::Done(Finished::Batch(batch, result, worker)) => {
                handlers.done(worker);
                driver.completed(batch, result);
            }
            Input::Done(Finished::Message(ticket, result, worker)) => {
                handlers.done(worker);
                driver.handled(ticket, result);
            }
            Input::Read(read) => links.received(&mut driver, read),
            Input::Timeout => driver.timeout(),
        }
    }
}

/// A handler call's batch or message, its result (or panic), and the
/// thread it ran on.
enum Finished {
    Batch(BatchId, thread::Result<Outcome>, Worker),
    Message(Ticket, thread::Result<Result<(), Failure>>, Worker),
}

/// A TCP connection to the first resolved address that takes one.
async fn connect_tcp(addr: &ServerAddr) -> io::Result<Async<TcpStream>> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
    for a in resolve(addr.to_socket_string()).await? {
        match Async::<TcpStream>::connect(a).await {
            Ok(socket) => {
                let _ = socket.get_ref().set_nodelay(true);
                return Ok(socket);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// An IP address as is; a host name on a helper thread, since async-io has
/// no resolver and a blocking lookup must not stall the executor.
async fn resolve(target: String) -> io::Result<Vec<SocketAddr>> {
    if let Ok(a) = target.parse() {
        return Ok(vec![a]);
    }
    let (tx, rx) = async_channel::bounded(1);
    thread::spawn(move || {
        let _ = tx.send_blocking(target.to_socket_addrs().map(Vec::from_iter));
    });
    rx.recv()
        .await
        .unwrap_or_else(|_| Err(io::Error::other("resolver thread failed")))
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Socket::Plain(tcp) => f.debug_tuple("Plain").field(tcp).finish(),
            Socket::Tls(tls) => f.debug_tuple("Tls").field(tls.get_ref().0).finish(),
        }
    }
}
