//! # xgroup-async-std
//!
//! Runs an [`xgroup_core::Consumer`] over `async_io::Async<std::net::TcpStream>`
//! with `futures-io` traits and `async_io::Timer`, so the same code runs under
//! async-std and smol (any executor, with async-io's reactor). All policy
//! (what to send, when, what to retry) is the core's; this crate connects,
//! moves bytes, runs handler futures concurrently up to the in-flight limit
//! (inside `run`, never spawned) and arms the core's timer.
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

use std::future::{pending, Future};
use std::net::TcpStream;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};
use futures_util::stream::FuturesUnordered;

pub use xgroup_core::xadd;
pub use xgroup_core::{
    Batch, BatchId, Command, ConfigError, ConnectOptions, ConsumerConfig, ConsumerConfigBuilder,
    ConsumerInfo, DeadLetter, DeadLetterAction, DeadLettered, Disposition, Error, Event,
    GroupStart, Message, Outcome, ServerAddr, ServerErrorKind, Source, Stats, StreamId, Trim,
    Value, Warning, XAddOptions,
};
use xgroup_core::{ConsumerSetup, PreparedConsumer};

mod connection;
pub use connection::Connection;

/// Handles batches of stream entries.
pub trait Handler: Send + Sync + 'static {
    /// Handles one batch and says what to acknowledge. A panic is caught:
    /// the batch stays pending (redelivered) and the panic is reported.
    fn handle(&self, batch: Batch) -> impl Future<Output = Outcome> + Send;
}

/// A closure as a [`Handler`] (see [`ConsumerBuilder::handler_fn`]).
#[derive(Debug, Clone)]
pub struct FnHandler<F>(pub F);

impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(Batch) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    fn handle(&self, batch: Batch) -> impl Future<Output = Outcome> + Send {
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

    /// Sets a closure `Fn(Batch) -> impl Future<Output = Outcome>` as handler.
    pub fn handler_fn<F, Fut>(self, f: F) -> ConsumerBuilder<FnHandler<F>>
    where
        F: Fn(Batch) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send,
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
        Ok(Consumer {
            prepared,
            handler: Arc::new(self.handler),
            shared: Arc::new(Shared {
                info: Mutex::new(info),
                stop: async_channel::bounded(1),
            }),
        })
    }
}

#[derive(Debug)]
struct Shared {
    info: Mutex<ConsumerInfo>,
    /// One slot: a stop asked before `run` waits is kept, not lost.
    stop: (async_channel::Sender<()>, async_channel::Receiver<()>),
}

/// Controls a consumer from elsewhere: [`info`](Self::info), [`stop`](Self::stop).
#[derive(Debug, Clone)]
pub struct ConsumerHandle {
    shared: Arc<Shared>,
}

impl ConsumerHandle {
    /// Names and counters, as of the consumer's last step.
    pub fn info(&self) -> ConsumerInfo {
        match self.shared.info.lock() {
            Ok(info) => info.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Asks for a graceful stop: no new reads, in-flight handlers finish (up
    /// to the drain timeout), their acks are flushed, then `run` returns.
    pub fn stop(&self) {
        let _ = self.shared.stop.0.try_send(());
    }
}

/// A consumer-group consumer on async-io (async-std, smol, ...).
#[derive(Debug)]
pub struct Consumer<H> {
    prepared: PreparedConsumer,
    handler: Arc<H>,
    shared: Arc<Shared>,
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
            shared: self.shared.clone(),
        }
    }

    /// Runs until stopped: `Ok(())` after a graceful [`ConsumerHandle::stop`],
    /// the cause when a permanent error stopped it (wrong password, missing
    /// group with auto-create off, wrong key type, ...). Transient failures
    /// are retried by the core with backoff and never end `run`.
    pub async fn run(self) -> Result<(), Error> {
        let Consumer {
            prepared,
            handler,
            shared,
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
        let mut sock: Option<Async<TcpStream>> = None;
        let mut handlers = FuturesUnordered::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut stop_seen = false;
        loop {
            // One input happened: drain every output.
            loop {
                let mut progressed = false;
                while let Some(event) = core.poll_event() {
                    progressed = true;
                    match event {
                        Event::Connect => {
                            match connection::connect_tcp(&addr, connect_timeout).await {
                                Ok(s) => {
                                    sock = Some(s);
                                    core.handle_connected(Instant::now());
                                }
                                Err(e) => core.handle_connect_failed(Instant::now(), e),
                            }
                        }
                        Event::Disconnect => sock = None,
                        Event::Deliver(batch) => {
                            let handler = handler.clone();
                            let id = batch.id;
                            handlers.push(async move {
                                let result =
                                    AssertUnwindSafe(handler.handle(batch)).catch_unwind().await;
                                (id, result)
                            });
                        }
                        Event::Warning(w) => tracing::warn!(warning = ?w, "xgroup consumer"),
                        Event::DeadLettered(d) => match &on_dead_letter {
                            Some(hook) => hook(&d),
                            None => tracing::warn!(dead_letter = ?d, "xgroup consumer"),
                        },
                        Event::Stopped(result) => {
                            publish(&shared, &core);
                            return match result {
                                None => Ok(()),
                                Some(e) => Err(e),
                            };
                        }
                    }
                }
                while let Some(bytes) = core.poll_transmit() {
                    progressed = true;
                    if let Some(s) = sock.as_mut() {
                        // A peer that stops reading must not stall the loop.
                        let write = async { s.write_all(&bytes).await.map_err(|e| e.to_string()) };
                        let expire = async {
                            Timer::after(write_timeout).await;
                            Err("write timed out".to_owned())
                        };
                        if let Err(e) = write.or(expire).await {
                            sock = None;
                            core.handle_disconnected(Instant::now(), e);
                        }
                    }
                }
                if !progressed {
                    break;
                }
            }
            publish(&shared, &core);
            // Wait for the first of (in this order): stop, a handler done,
            // bytes, deadline.
            let deadline = core.poll_timeout().map(|(at, _)| at);
            let input = async {
                stop_requested(&shared, stop_seen).await;
                Input::Stop
            }
            .or(async {
                let (id, result) = next_done(&mut handlers).await;
                Input::Done(id, result)
            })
            .or(async { Input::Read(read_some(&mut sock, &mut buf).await) })
            .or(async {
                sleep_until(deadline).await;
                Input::Timeout
            })
            .await;
            match input {
                Input::Stop => {
                    stop_seen = true;
                    core.handle_shutdown(Instant::now());
                }
                Input::Done(id, Ok(outcome)) => core.handle_completion(Instant::now(), id, outcome),
                Input::Done(id, Err(panic)) => core.handle_handler_failed(
                    Instant::now(),
                    id,
                    xgroup_core::panic_message(&*panic),
                ),
                Input::Read(Ok(0)) => {
                    sock = None;
                    core.handle_disconnected(Instant::now(), "connection closed by the server");
                }
                Input::Read(Ok(n)) => core.handle_input(Instant::now(), &buf[..n]),
                Input::Read(Err(e)) => {
                    sock = None;
                    core.handle_disconnected(Instant::now(), e);
                }
                Input::Timeout => core.handle_timeout(Instant::now()),
            }
        }
    }
}

/// The one input `run` waits for.
enum Input {
    Stop,
    Done(BatchId, std::thread::Result<Outcome>),
    Read(std::io::Result<usize>),
    Timeout,
}

async fn stop_requested(shared: &Shared, seen: bool) {
    if seen {
        pending::<()>().await;
    }
    let _ = shared.stop.1.recv().await;
}

async fn next_done<F: Future>(handlers: &mut FuturesUnordered<F>) -> F::Output {
    match handlers.next().await {
        Some(done) => done,
        None => pending().await,
    }
}

async fn read_some(sock: &mut Option<Async<TcpStream>>, buf: &mut [u8]) -> std::io::Result<usize> {
    match sock {
        Some(s) => s.read(buf).await,
        None => pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => {
            Timer::at(at).await;
        }
        None => pending().await,
    }
}

fn publish(shared: &Shared, core: &xgroup_core::Consumer) {
    match shared.info.lock() {
        Ok(mut info) => info.update(core),
        Err(poisoned) => poisoned.into_inner().update(core),
    }
}
