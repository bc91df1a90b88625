//! # xgroup-blocking
//!
//! Runs an [`xgroup_core::Consumer`] over `std::net::TcpStream`, with std
//! threads and channels and no async runtime. All policy (what to send, when,
//! what to retry) is the core's; this crate connects, moves bytes, runs
//! handlers on threads of their own, reused from batch to batch (as many as
//! batches in flight), and waits for the core's deadline.
//!
//! The calling thread of [`Consumer::run`] drives the core: it writes to the
//! socket and waits on one channel, fed by a reader thread per connection,
//! by the handler threads and by [`ConsumerHandle::stop`].
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

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use xgroup_core::xadd;
pub use xgroup_core::{
    Batch, BatchId, Command, ConfigError, ConnectOptions, ConsumerConfig, ConsumerConfigBuilder,
    ConsumerInfo, DeadLetter, DeadLetterAction, DeadLettered, Disposition, Error, Event,
    GroupStart, Message, Outcome, ServerAddr, ServerErrorKind, Source, Stats, StreamId, Trim,
    Value, Warning, XAddOptions,
};
use xgroup_core::{ConsumerSetup, PreparedConsumer};

mod pool;
use pool::Pool;

mod connection;
pub use connection::Connection;

/// Handles batches of stream entries, each on its own thread.
pub trait Handler: Send + Sync + 'static {
    /// Handles one batch and says what to acknowledge. A panic is caught:
    /// the batch stays pending (redelivered) and the panic is reported.
    fn handle(&self, batch: Batch) -> Outcome;
}

/// A closure as a [`Handler`] (see [`ConsumerBuilder::handler_fn`]).
#[derive(Debug, Clone)]
pub struct FnHandler<F>(pub F);

impl<F> Handler for FnHandler<F>
where
    F: Fn(Batch) -> Outcome + Send + Sync + 'static,
{
    fn handle(&self, batch: Batch) -> Outcome {
        (self.0)(batch)
    }
}

/// Builds a [`Consumer`].
#[derive(Debug)]
pub struct ConsumerBuilder<H> {
    setup: ConsumerSetup,
    handler: H,
    handler_name: &'static str,
}

/// No handler chosen yet.
#[derive(Debug, Clone, Copy)]
pub struct NoHandler;

impl ConsumerBuilder<NoHandler> {
    /// Sets the handler.
    pub fn handler<H: Handler>(self, handler: H) -> ConsumerBuilder<H> {
        ConsumerBuilder {
            setup: self.setup,
            handler,
            handler_name: std::any::type_name::<H>(),
        }
    }

    /// Sets a closure `Fn(Batch) -> Outcome` as handler.
    pub fn handler_fn<F>(self, f: F) -> ConsumerBuilder<FnHandler<F>>
    where
        F: Fn(Batch) -> Outcome + Send + Sync + 'static,
    {
        ConsumerBuilder {
            setup: self.setup,
            handler: FnHandler(f),
            handler_name: std::any::type_name::<F>(),
        }
    }
}

impl<H> ConsumerBuilder<H> {
    /// Changes core options (count, block, claim interval and min idle,
    /// auto-create, in-flight limit, heartbeats, dead letters, ...).
    pub fn configure(self, f: impl FnOnce(ConsumerConfigBuilder) -> ConsumerConfigBuilder) -> Self {
        ConsumerBuilder {
            setup: self.setup.configure(f),
            ..self
        }
    }

    /// The failure callback: called for every dead-lettered entry.
    pub fn on_dead_letter(self, f: impl Fn(&DeadLettered) + Send + Sync + 'static) -> Self {
        ConsumerBuilder {
            setup: self.setup.on_dead_letter(f),
            ..self
        }
    }
}

impl<H: Handler> ConsumerBuilder<H> {
    /// Checks every option; nothing is sent before this succeeds.
    pub fn build(self) -> Result<Consumer<H>, Error> {
        let prepared = self.setup.prepare(self.handler_name)?;
        let info = prepared.info.clone();
        let (tx, rx) = mpsc::channel();
        Ok(Consumer {
            prepared,
            handler: Arc::new(self.handler),
            info: Arc::new(Mutex::new(info)),
            tx,
            rx,
        })
    }
}

/// One input for the driver thread. Socket inputs carry the generation of
/// their connection: those of a connection already closed are dropped.
enum Input {
    Bytes(u64, Vec<u8>),
    Closed(u64, String),
    Done(BatchId, std::thread::Result<Outcome>),
    Stop,
}

/// Controls a consumer from elsewhere: [`info`](Self::info), [`stop`](Self::stop).
#[derive(Debug, Clone)]
pub struct ConsumerHandle {
    info: Arc<Mutex<ConsumerInfo>>,
    tx: Sender<Input>,
}

// The handle is shared with signal handlers and other threads.
const _: fn() = || {
    fn shareable<T: Clone + Send + Sync>() {}
    shareable::<ConsumerHandle>();
};

impl ConsumerHandle {
    /// Names and counters, as of the consumer's last step.
    pub fn info(&self) -> ConsumerInfo {
        match self.info.lock() {
            Ok(info) => info.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Asks for a graceful stop: no new reads, in-flight handlers finish (up
    /// to the drain timeout), their acks are flushed, then `run` returns.
    /// Queued, so a stop asked before `run` starts is not lost.
    pub fn stop(&self) {
        let _ = self.tx.send(Input::Stop);
    }
}

/// A consumer-group consumer on std threads.
#[derive(Debug)]
pub struct Consumer<H> {
    prepared: PreparedConsumer,
    handler: Arc<H>,
    info: Arc<Mutex<ConsumerInfo>>,
    tx: Sender<Input>,
    rx: Receiver<Input>,
}

impl Consumer<NoHandler> {
    /// A builder for consumer `consumer` of `group` on `stream`, at `url`
    /// (`redis://[user:password@]host[:port][/db]`).
    pub fn builder(
        url: &str,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
    ) -> ConsumerBuilder<NoHandler> {
        ConsumerBuilder {
            setup: ConsumerSetup::from_url(url, stream, group, consumer),
            handler: NoHandler,
            handler_name: "",
        }
    }

    /// A builder from host and port (no credentials; set them with
    /// [`ConsumerBuilder::configure`] and `connect_options`).
    pub fn builder_for(
        host: &str,
        port: u16,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
    ) -> ConsumerBuilder<NoHandler> {
        ConsumerBuilder {
            setup: ConsumerSetup::from_host(host, port, stream, group, consumer),
            handler: NoHandler,
            handler_name: "",
        }
    }
}

impl<H: Handler> Consumer<H> {
    /// A handle to watch and stop the consumer.
    pub fn handle(&self) -> ConsumerHandle {
        ConsumerHandle {
            info: self.info.clone(),
            tx: self.tx.clone(),
        }
    }

    /// Runs on the calling thread until stopped: `Ok(())` after a graceful
    /// [`ConsumerHandle::stop`], the cause when a permanent error stopped it
    /// (wrong password, missing group with auto-create off, wrong key type,
    /// ...). Transient failures are retried by the core with backoff and
    /// never end `run`. Handlers still running when the drain timeout ends
    /// it are left to finish on their threads.
    pub fn run(self) -> Result<(), Error> {
        let Consumer {
            prepared,
            handler,
            info,
            tx,
            rx,
        } = self;
        let PreparedConsumer {
            addr,
            config,
            on_dead_letter,
            ..
        } = prepared;
        let connect_timeout = config.connect_timeout();
        let write_timeout = config.reply_timeout();
        let mut core = xgroup_core::Consumer::new(config);
        let handlers = Pool::new();
        // The current connection and its generation.
        let mut sock: Option<(u64, TcpStream)> = None;
        let mut generation = 0u64;
        loop {
            // One input happened: drain every output.
            loop {
                let mut progressed = false;
                while let Some(event) = core.poll_event() {
                    progressed = true;
                    match event {
                        Event::Connect => {
                            close(&mut sock);
                            generation += 1;
                            match open(&addr, connect_timeout, generation, &tx) {
                                Ok(s) => {
                                    // A peer that stops reading must not stall the loop.
                                    let _ = s.set_write_timeout(Some(write_timeout));
                                    sock = Some((generation, s));
                                    core.handle_connected(Instant::now());
                                }
                                Err(e) => core.handle_connect_failed(Instant::now(), e),
                            }
                        }
                        Event::Disconnect => close(&mut sock),
                        Event::Deliver(batch) => {
                            let (handler, tx, id) = (handler.clone(), tx.clone(), batch.id);
                            let spawned = handlers.run(Box::new(move || {
                                let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                                    handler.handle(batch)
                                }));
                                let _ = tx.send(Input::Done(id, result));
                            }));
                            if let Err(e) = spawned {
                                let reason = format!("cannot start a handler thread: {e}");
                                core.handle_handler_failed(Instant::now(), id, reason);
                            }
                        }
                        Event::Warning(w) => tracing::warn!(warning = ?w, "xgroup consumer"),
                        Event::DeadLettered(d) => match &on_dead_letter {
                            Some(hook) => hook(&d),
                            None => tracing::warn!(dead_letter = ?d, "xgroup consumer"),
                        },
                        Event::Stopped(result) => {
                            close(&mut sock);
                            publish(&info, &core);
                            return match result {
                                None => Ok(()),
                                Some(e) => Err(e),
                            };
                        }
                    }
                }
                while let Some(bytes) = core.poll_transmit() {
                    progressed = true;
                    if let Some((_, s)) = sock.as_mut() {
                        if let Err(e) = s.write_all(&bytes) {
                            close(&mut sock);
                            core.handle_disconnected(Instant::now(), e);
                        }
                    }
                }
                if !progressed {
                    break;
                }
            }
            publish(&info, &core);
            // Wait for the first of: stop, a handler done, bytes, deadline.
            let deadline = core.poll_timeout().map(|(at, _)| at);
            // (The driver holds a sender, so the channel never closes.)
            let input = match deadline {
                Some(at) => rx
                    .recv_timeout(at.saturating_duration_since(Instant::now()))
                    .ok(),
                None => rx.recv().ok(),
            };
            let now = Instant::now();
            let current = sock.as_ref().map(|(g, _)| *g);
            match input {
                None => {
                    if deadline.is_some_and(|at| at <= now) {
                        core.handle_timeout(now);
                    }
                }
                Some(Input::Stop) => core.handle_shutdown(now),
                Some(Input::Done(id, Ok(outcome))) => core.handle_completion(now, id, outcome),
                Some(Input::Done(id, Err(panic))) => {
                    core.handle_handler_failed(now, id, xgroup_core::panic_message(&*panic))
                }
                Some(Input::Bytes(g, bytes)) if Some(g) == current => {
                    core.handle_input(now, &bytes)
                }
                Some(Input::Closed(g, reason)) if Some(g) == current => {
                    close(&mut sock);
                    core.handle_disconnected(now, reason);
                }
                Some(Input::Bytes(..) | Input::Closed(..)) => {}
            }
        }
    }
}

/// Opens a connection within `timeout` (trying each resolved address) and
/// starts its reader thread.
fn open(
    addr: &ServerAddr,
    timeout: Duration,
    generation: u64,
    tx: &Sender<Input>,
) -> Result<TcpStream, String> {
    let target = addr.to_socket_string();
    let deadline = Instant::now() + timeout;
    let mut last = format!("{target}: no address");
    for a in target
        .to_socket_addrs()
        .map_err(|e| format!("{target}: {e}"))?
    {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{target}: connect timed out"));
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                spawn_reader(&s, generation, tx.clone()).map_err(|e| e.to_string())?;
                return Ok(s);
            }
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    Err(last)
}

/// Starts the thread that forwards what `sock` reads to the driver.
fn spawn_reader(sock: &TcpStream, generation: u64, tx: Sender<Input>) -> std::io::Result<()> {
    let mut sock = sock.try_clone()?;
    std::thread::Builder::new()
        .name("xgroup-reader".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let input = match sock.read(&mut buf) {
                    Ok(0) => Input::Closed(generation, "connection closed by the server".into()),
                    Ok(n) => Input::Bytes(generation, buf[..n].to_vec()),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => Input::Closed(generation, e.to_string()),
                };
                let last = matches!(input, Input::Closed(..));
                if tx.send(input).is_err() || last {
                    return;
                }
            }
        })?;
    Ok(())
}

/// Drops the connection; the shutdown ends its reader thread.
fn close(sock: &mut Option<(u64, TcpStream)>) {
    if let Some((_, s)) = sock.take() {
        let _ = s.shutdown(Shutdown::Both);
    }
}

fn publish(info: &Mutex<ConsumerInfo>, core: &xgroup_core::Consumer) {
    match info.lock() {
        Ok(mut info) => info.update(core),
        Err(poisoned) => poisoned.into_inner().update(core),
    }
}
