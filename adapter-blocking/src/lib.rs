//! # xgroup-blocking
//!
//! Runs an [`xgroup_core::Consumer`] over `std::net::TcpStream` (and rustls
//! over it for `rediss://`), with std threads and channels and no async
//! runtime. All policy (what to send, when,
//! what to retry) is the core's, and everything that does not depend on the
//! runtime is `xgroup-driver`'s; this crate opens sockets, moves bytes, runs
//! handlers on threads of their own, reused from batch to batch (as many as
//! batches in flight), and waits for the core's deadline.
//!
//! The calling thread of `run` drives the core: it writes to the socket and
//! waits on one channel, fed by a reader thread per connection, by the
//! handler threads and by `stop()`. With TLS, the reader thread and the
//! driving thread share the connection's rustls session, never across
//! socket IO (see the `tls` module). Handlers still running when the drain
//! timeout ends `run` are left to finish on their threads.
//!
//! ```no_run
//! use xgroup_blocking::{Consumer, Outcome};
//!
//! # fn demo() -> Result<(), xgroup_blocking::Error> {
//! let consumer = Consumer::builder("redis://127.0.0.1:6379", "orders", "processors", "proc-1")
//!     .configure(|c| c.count(100))
//!     .handler_fn(|batch| {
//!         for m in &batch.messages {
//!             println!("{} {:?}", m.id, m.fields);
//!         }
//!         Outcome::AckAll
//!     })
//!     .build()?;
//! let handle = consumer.handle();
//! std::thread::spawn(move || {
//!     std::thread::sleep(std::time::Duration::from_secs(60));
//!     handle.stop();
//! });
//! consumer.run()
//! # }
//! ```
//!
//! One message at a time (`Ok(())` acknowledges; a [`Failure`] retries,
//! dead-letters or keeps it), or an iterator of deliveries: `messages()`
//! runs the consumer on a thread of its own.
//!
//! ```no_run
//! use xgroup_blocking::{Consumer, Failure};
//!
//! # fn demo() -> Result<(), xgroup_blocking::Error> {
//! let each = Consumer::builder("redis://127.0.0.1:6379", "orders", "processors", "proc-1")
//!     .concurrency(4)
//!     .handler_each(|m| match m.fields.get("user_id") {
//!         None => Err(Failure::dead_letter("no user_id")),
//!         Some(_) => Ok(()),
//!     })
//!     .build()?;
//! # drop(each);
//! for delivery in Consumer::builder("redis://127.0.0.1:6379", "orders", "processors", "proc-2")
//!     .build()?
//!     .messages()
//! {
//!     let delivery = delivery?;
//!     println!("{} {:?}", delivery.id, delivery.fields);
//!     delivery.ack();
//! }
//! # Ok(())
//! # }
//! ```

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use xgroup_driver::{
    connect_std, Action, BlockingIo, Deliveries, Done, Driver, HandlerThreads, MessageJob, Parts,
    Run, Runtime, Spawn, Ticket, TlsSetup, Worker,
};

pub use tls::Socket;
pub use xgroup_driver::exports::*;

mod tls;

use tls::Link;

/// A consumer-group consumer on std threads; [`run`](xgroup_driver::Consumer::run)
/// blocks the calling thread until the consumer stops.
pub type Consumer<H = NoHandler> = xgroup_driver::Consumer<Blocking, H>;

/// Builds a [`Consumer`].
pub type ConsumerBuilder<H = NoHandler> = xgroup_driver::ConsumerBuilder<Blocking, H>;

/// Controls a consumer from other threads and signal handlers: `info()`, `stop()`.
pub type ConsumerHandle = xgroup_driver::ConsumerHandle<Blocking>;

/// A plain blocking connection for commands and producing: `command(..)`,
/// `xadd(..)`.
pub type Connection = xgroup_driver::BlockingConnection<Blocking>;

/// The messages of a consumer, from `consumer.messages()`: an `Iterator` of
/// `Result<Delivery, Error>` whose `next()` blocks until the next delivery.
pub type Messages = xgroup_driver::Messages<Blocking>;

/// Handles batches of stream entries, each on a thread of its own.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an xgroup-blocking handler",
    note = "implement `xgroup_blocking::Handler` for it, or give `handler_fn` a closure returning an `Outcome`"
)]
pub trait Handler: Send + Sync + 'static {
    /// Handles one batch and says what to acknowledge. A panic is caught:
    /// the batch stays pending (redelivered) and the panic is reported.
    fn handle(&self, batch: Batch) -> Outcome;
}

/// Std threads and blocking sockets (the marker the driver's types are
/// generic over).
#[derive(Debug, Clone, Copy)]
pub struct Blocking;

/// The channel `run` waits on: stops (queued, so none is lost), handler
/// results, what the reader thread read.
#[derive(Debug)]
pub struct Inbox {
    tx: Sender<Input>,
    rx: Mutex<Receiver<Input>>,
}

impl<F: Fn(Batch) -> Outcome + Send + Sync + 'static> Handler for FnHandler<F> {
    fn handle(&self, batch: Batch) -> Outcome {
        (self.0)(batch)
    }
}

impl Default for Inbox {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel();
        let rx = Mutex::new(rx);
        Inbox { tx, rx }
    }
}

impl Runtime for Blocking {
    type Stop = Inbox;

    fn stop(inbox: &Inbox) {
        let _ = inbox.tx.send(Input::Stop);
    }
}

/// How this adapter runs each shape of handler: a [`Handler`] (batches), a
/// per-message closure (`handler_each`), the message stream
/// (`messages()`). Implemented for those; not meant to be implemented
/// elsewhere.
pub trait Shape: Send + Sync + 'static {
    /// Handles a batch (batch handlers only; the driver hands others
    /// messages).
    fn batch(&self, batch: Batch) -> Outcome;
    /// Handles one message (per-message handlers only).
    fn message(&self, job: MessageJob) -> Result<(), Failure>;
}

impl<H: Handler> Shape for H {
    fn batch(&self, batch: Batch) -> Outcome {
        self.handle(batch)
    }
    fn message(&self, _: MessageJob) -> Result<(), Failure> {
        // Never asked: a batch handler gets batches.
        Err(Failure::keep())
    }
}

impl<F> Shape for EachFn<F>
where
    F: Fn(Message) -> Result<(), Failure> + Send + Sync + 'static,
{
    fn batch(&self, _: Batch) -> Outcome {
        // Never asked: a per-message handler gets messages.
        Outcome::AckNone
    }
    fn message(&self, job: MessageJob) -> Result<(), Failure> {
        (self.0)(job.message)
    }
}

impl Shape for Deliveries {
    fn batch(&self, _: Batch) -> Outcome {
        // Never asked: the stream gets messages.
        Outcome::AckNone
    }
    fn message(&self, job: MessageJob) -> Result<(), Failure> {
        self.deliver_blocking(job)
    }
}

impl<H: Shape> Run<H> for Blocking {
    type Output = Result<(), Error>;

    fn run(consumer: Consumer<H>) -> Result<(), Error> {
        drive(consumer.into_parts())
    }
}

/// `messages()` runs the consumer on a thread of its own.
impl Spawn for Blocking {
    fn spawn(consumer: Consumer<Deliveries>, done: Done) -> Result<(), Error> {
        thread::Builder::new()
            .name("xgroup-consumer".into())
            .spawn(move || done(consumer.run()))
            .map(drop)
            .map_err(|e| Error::Connection(format!("cannot start the consumer's thread: {e}")))
    }
}

impl BlockingIo for Blocking {
    type Socket = Socket;

    fn connect(
        addr: &ServerAddr,
        tls: Option<&TlsSetup>,
        timeout: Duration,
        io: Duration,
    ) -> io::Result<Socket> {
        let started = Instant::now();
        let tcp = connect_std(addr, timeout)?;
        // The TCP connect and the TLS handshake share the timeout.
        let left = timeout.saturating_sub(started.elapsed());
        tls::wrap(tcp, tls, left, io).map_err(|e| tls::no_answer(e, addr, timeout))
    }
}

/// One input for the driving thread. Socket inputs carry the generation of
/// their connection: those of a connection already closed are dropped.
#[derive(Debug)]
enum Input {
    /// What the reader thread of this connection read (no bytes: the end).
    Read(StreamConn, u64, io::Result<Vec<u8>>),
    Done(BatchId, thread::Result<Outcome>, Worker),
    Handled(Ticket, thread::Result<Result<(), Failure>>, Worker),
    Stop,
}

fn drive<H: Shape>(parts: Parts<Blocking, H>) -> Result<(), Error> {
    let (mut driver, handler, stop) = (parts.driver, parts.handler, parts.stop);
    // `stop` holds a sender, so the channel never closes.
    let inbox = stop.rx.lock().unwrap_or_else(PoisonError::into_inner);
    let mut handlers = HandlerThreads::default();
    // The current connections (each stream's control, read and discovery
    // ones, at `StreamConn::index`), each with its generation.
    let mut sockets: Sockets = Sockets::default();
    let mut generation = 0;
    loop {
        while let Some(action) = driver.next_action() {
            match action {
                Action::Connect(conn, addr) => {
                    let socket = sockets.get(conn);
                    close(socket);
                    generation += 1;
                    match open(&addr, &driver, (conn, generation), &stop.tx) {
                        Ok(s) => {
                            *socket = Some((generation, s));
                            driver.connected(conn);
                        }
                        Err(e) => driver.connect_failed(conn, e),
                    }
                }
                Action::Write(conn, bytes) => {
                    let socket = sockets.get(conn);
                    let written = socket.as_mut().map(|(_, s)| s.write_all(&bytes));
                    if let Some(Err(e)) = written {
                        close(socket);
                        driver.disconnected(conn, &e);
                    }
                }
                Action::Disconnect(conn) => close(sockets.get(conn)),
                Action::Deliver(batch) => {
                    let (handler, tx, id) = (handler.clone(), stop.tx.clone(), batch.id);
                    let span = driver.batch_span(&batch);
                    let spawned = handlers.run(move |worker| {
                        let call = || span.in_scope(|| handler.batch(batch));
                        let result = catch_unwind(AssertUnwindSafe(call));
                        let _ = tx.send(Input::Done(id, result, worker));
                    });
                    if let Err(e) = spawned {
                        driver.handler_failed(id, format!("cannot start a handler thread: {e}"));
                    }
                }
                Action::Handle(job) => {
                    let (handler, tx, ticket) = (handler.clone(), stop.tx.clone(), job.ticket());
                    let spawned = handlers.run(move |worker| {
                        let span = job.span.clone();
                        let call = || span.in_scope(|| handler.message(job));
                        let result = catch_unwind(AssertUnwindSafe(call));
                        let _ = tx.send(Input::Handled(ticket, result, worker));
                    });
                    if let Err(e) = spawned {
                        driver
                            .message_failed(ticket, format!("cannot start a handler thread: {e}"));
                    }
                }
                Action::Stopped(result) => {
                    sockets.0.iter_mut().for_each(close);
                    return result;
                }
            }
        }
        let input = match driver.deadline() {
            Some(at) => inbox
                .recv_timeout(at.saturating_duration_since(Instant::now()))
                .ok(),
            None => inbox.recv().ok(),
        };
        match input {
            None => driver.timeout(),
            Some(Input::Stop) => driver.shutdown(),
            Some(Input::Done(id, result, worker)) => {
                handlers.done(worker);
                driver.completed(id, result);
            }
            Some(Input::Handled(ticket, result, worker)) => {
                handlers.done(worker);
                driver.handled(ticket, result);
            }
            Some(Input::Read(conn, g, read))
                if sockets.get(conn).as_ref().map(|(g, _)| *g) == Some(g) =>
            {
                if !driver.received(conn, read.as_deref()) {
                    close(sockets.get(conn));
                }
            }
            Some(Input::Read(..)) => {}
        }
    }
}

/// The consumer's sockets, each with its generation, at
/// [`StreamConn::index`].
#[derive(Default)]
struct Sockets(Vec<Option<(u64, Link)>>);

impl Sockets {
    /// `conn`'s place (none yet: `None`).
    fn get(&mut self, conn: StreamConn) -> &mut Option<(u64, Link)> {
        let i = conn.index();
        if self.0.len() <= i {
            self.0.resize_with(i + 1, || None);
        }
        &mut self.0[i]
    }
}

/// Opens one of the consumer's connections (TLS if the driver says so) and
/// starts its reader thread.
fn open(
    addr: &ServerAddr,
    driver: &Driver,
    (conn, generation): (StreamConn, u64),
    tx: &Sender<Input>,
) -> io::Result<Link> {
    let started = Instant::now();
    let timeout = driver.connect_timeout();
    let tcp = connect_std(addr, timeout)?;
    // The TCP connect and the TLS handshake share the connect timeout; a
    // peer that stops reading must not stall the driving thread.
    let left = timeout.saturating_sub(started.elapsed());
    let (link, mut source) = tls::link(
        tcp,
        driver.tls_for(addr).as_ref(),
        left,
        driver.write_timeout(),
    )
    .map_err(|e| tls::no_answer(e, addr, timeout))?;
    let tx = tx.clone();
    let mut buf = vec![0u8; 64 * 1024];
    thread::Builder::new()
        .name("xgroup-reader".into())
        .spawn(move || loop {
            let read = source.read(&mut buf);
            let end = !matches!(&read, Ok(bytes) if !bytes.is_empty());
            if tx.send(Input::Read(conn, generation, read)).is_err() || end {
                return;
            }
        })?;
    Ok(link)
}

/// Drops the connection; the shutdown ends its reader thread.
fn close(socket: &mut Option<(u64, Link)>) {
    if let Some((_, link)) = socket.take() {
        link.close();
    }
}
