//! # xgroup-tokio
//!
//! Runs an [`xgroup_core::Consumer`] over `tokio::net::TcpStream` (and
//! `tokio-rustls` over it for `rediss://`). All policy
//! (what to send, when, what to retry) is the core's, and everything that
//! does not depend on the runtime is `xgroup-driver`'s; this crate opens
//! sockets, moves bytes, runs handler futures concurrently up to the
//! configured concurrency (by default the in-flight limit; as tasks of their
//! own on a multi-thread runtime) and
//! arms tokio's timer.
//!
//! ```no_run
//! use xgroup_tokio::{Consumer, Outcome};
//!
//! # async fn demo() -> Result<(), xgroup_tokio::Error> {
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
//! tokio::spawn(async move {
//!     tokio::signal::ctrl_c().await.ok();
//!     handle.stop();
//! });
//! consumer.run().await
//! # }
//! ```
//!
//! One message at a time, up to eight at once, each user's in order
//! (`Ok(())` acknowledges; a [`Failure`] retries, dead-letters or keeps):
//!
//! ```no_run
//! use std::time::Duration;
//! use xgroup_tokio::{Consumer, Failure};
//!
//! # async fn demo() -> Result<(), xgroup_tokio::Error> {
//! let consumer = Consumer::builder("redis://127.0.0.1:6379", "orders", "processors", "proc-1")
//!     .concurrency(8)
//!     .order_by(|m| m.fields.get_bytes("user_id"))
//!     .handler_each(|m| async move {
//!         match m.fields.get("user_id") {
//!             None => Err(Failure::dead_letter("no user_id")),
//!             Some(_) if m.attempt < 3 => Err(Failure::retry_after(Duration::from_secs(1))),
//!             Some(_) => Ok(()),
//!         }
//!     })
//!     .build()?;
//! consumer.run().await
//! # }
//! ```
//!
//! Or a stream of deliveries, each decided by the code that takes it; the
//! consumer runs as a task of its own (started by `messages()`):
//!
//! ```no_run
//! use futures_lite::StreamExt;
//! use xgroup_tokio::Consumer;
//!
//! # async fn demo() -> Result<(), xgroup_tokio::Error> {
//! let mut messages = Consumer::builder("redis://127.0.0.1:6379", "orders", "processors", "proc-1")
//!     .build()?
//!     .messages();
//! while let Some(delivery) = messages.next().await {
//!     let delivery = delivery?;
//!     println!("{} {:?}", delivery.id, delivery.fields);
//!     delivery.ack();
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::panic::resume_unwind;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Notify;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use xgroup_driver::{
    sleep_until, Action, AsyncIo, Deliveries, Done, Handlers, Instrument, Links, MessageJob, Parts,
    Run, Runtime, Span, Spawn, TlsSetup, WatchedHandler,
};

pub use xgroup_driver::exports::*;
pub use xgroup_driver::{Handler, Shape};

/// A consumer-group consumer on tokio; [`run`](xgroup_driver::Consumer::run)
/// returns a future to await or spawn.
pub type Consumer<H = NoHandler> = xgroup_driver::Consumer<Tokio, H>;

/// Builds a [`Consumer`].
pub type ConsumerBuilder<H = NoHandler> = xgroup_driver::ConsumerBuilder<Tokio, H>;

/// Controls a consumer from elsewhere: `info()`, `stop()`.
pub type ConsumerHandle = xgroup_driver::ConsumerHandle<Tokio>;

/// A plain connection for commands and producing: `command(..)`, `xadd(..)`.
pub type Connection = xgroup_driver::AsyncConnection<Tokio>;

/// The messages of a consumer, from `consumer.messages()`: a
/// `futures::Stream` of `Result<Delivery, Error>`.
pub type Messages = xgroup_driver::Messages<Tokio>;

/// The tokio runtime (the marker the driver's types are generic over).
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

/// A connection to the server: plain TCP, or TLS over it (`rediss://`).
/// The TLS stream is boxed (it is large); the plain path stays as it was.
pub enum Socket {
    /// `redis://`.
    Plain(TcpStream),
    /// `rediss://`: `tokio-rustls` over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Runtime for Tokio {
    /// A stored permit: a stop before `run` waits is kept.
    type Stop = Notify;

    fn stop(signal: &Notify) {
        signal.notify_one();
    }
}

impl<H: Shape> Run<H> for Tokio {
    type Output = RunFuture;

    fn run(consumer: Consumer<H>) -> RunFuture {
        Box::pin(drive(consumer.into_parts()))
    }
}

/// `messages()` runs the consumer as a task of the current runtime.
impl Spawn for Tokio {
    fn spawn(consumer: Consumer<Deliveries>, done: Done) -> Result<(), Error> {
        let runtime = Handle::try_current().map_err(|_| {
            ConfigError::new(
                "messages",
                "call it within a tokio runtime (it spawns the consumer)",
            )
        })?;
        runtime.spawn(async move { done(consumer.run().await) });
        Ok(())
    }
}

impl AsyncIo for Tokio {
    type Socket = Socket;

    async fn connect(addr: &ServerAddr, tls: Option<&TlsSetup>) -> io::Result<Socket> {
        let socket = TcpStream::connect(addr.to_socket_string()).await?;
        let _ = socket.set_nodelay(true);
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
        tokio::time::sleep_until(at.into()).await;
    }
}

async fn drive<H: Shape>(parts: Parts<Tokio, H>) -> Result<(), Error> {
    let (mut driver, handler, stop) = (parts.driver, parts.handler, parts.stop);
    let mut links = Links::<Tokio>::default();
    let mut handlers = Handlers::default();
    let mut messages = Handlers::default();
    let spawn = Handle::current().runtime_flavor() != RuntimeFlavor::CurrentThread;
    loop {
        // One input happened: carry out everything it led to.
        while let Some(action) = driver.next_action() {
            match action {
                Action::Connect(conn, addr) => links.connect(&mut driver, conn, &addr).await,
                Action::Write(conn, bytes) => links.write(&mut driver, conn, &bytes).await,
                Action::Disconnect(conn) => links.close(conn),
                Action::Deliver(batch) => {
                    let (id, span) = (batch.id, driver.batch_span(&batch));
                    handlers.push(id, run_handler(handler.clone(), batch, spawn, span));
                }
                Action::Handle(job) => {
                    messages.push(job.ticket(), run_message(handler.clone(), job, spawn));
                }
                Action::Stopped(result) => return result,
            }
        }
        // Wait for the first of: stop, a handler done, bytes, the deadline.
        tokio::select! {
            biased;
            () = stop.notified(), if !driver.is_stopping() => driver.shutdown(),
            (batch, result) = handlers.next() => driver.completed(batch, result),
            (ticket, result) = messages.next() => driver.handled(ticket, result),
            read = links.read() => links.received(&mut driver, read),
            () = sleep_until::<Tokio>(driver.deadline()) => driver.timeout(),
        }
    }
}

/// On a multi-thread runtime a handler runs as a task of its own, so one
/// that blocks its thread (or burns CPU) stalls neither the heartbeats nor
/// the acks of the consumer's task; on a current-thread runtime it runs
/// inside that task, must not block it, and is reported when it does.
/// The handler's own spans nest under the batch's `span`.
async fn run_handler<H: Shape>(handler: Arc<H>, batch: Batch, spawn: bool, span: Span) -> Outcome {
    if !spawn {
        let id = batch.id;
        return WatchedHandler::new(id, handler.batch(batch).instrument(span)).await;
    }
    match tokio::spawn(async move { handler.batch(batch).instrument(span).await }).await {
        Ok(outcome) => outcome,
        // Re-raised where the driver catches it: reported as a failure.
        Err(e) if e.is_panic() => resume_unwind(e.into_panic()),
        // The runtime is shutting down: the batch stays pending.
        Err(_) => Outcome::AckNone,
    }
}

/// One message for a per-message handler, run as [`run_handler`] runs a
/// batch; a runtime shutting down keeps the message pending.
async fn run_message<H: Shape>(
    handler: Arc<H>,
    job: MessageJob,
    spawn: bool,
) -> Result<(), Failure> {
    let span = job.span.clone();
    if !spawn {
        let id = job.ticket().batch();
        return WatchedHandler::new(id, handler.message(job).instrument(span)).await;
    }
    match tokio::spawn(async move { handler.message(job).instrument(span).await }).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => resume_unwind(e.into_panic()),
        Err(_) => Err(Failure::keep()),
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Socket::Plain(tcp) => f.debug_tuple("Plain").field(tcp).finish(),
            Socket::Tls(tls) => f.debug_tuple("Tls").field(tls.get_ref().0).finish(),
        }
    }
}
