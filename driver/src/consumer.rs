//! The builder, the consumer and its handle, generic over a runtime marker.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use xgroup_core::{
    Batch, ConfigError, ConsumerConfigBuilder, ConsumerInfo, ConsumerSetup, DeadLettered, Error,
    Message, PreparedConsumer, ShardedStream, TlsOptions,
};

use crate::dispatch::Driver;
use crate::each::{EachFn, OrderBy};
use crate::tls::TlsSetup;

/// A runtime an adapter runs consumers on (its marker type implements this).
pub trait Runtime: Sized + 'static {
    /// What [`ConsumerHandle::stop`] signals and `run` waits on. It must keep
    /// a stop signalled before `run` waits for it: a stop is never lost.
    type Stop: Default + Send + Sync + fmt::Debug;

    /// Signals a stop.
    fn stop(signal: &Self::Stop);
}

/// Running a consumer whose handler is `H` on this runtime. Each adapter
/// implements it for the handlers its `Handler` trait covers.
#[diagnostic::on_unimplemented(
    message = "`{H}` is not a handler for the `{Self}` runtime",
    label = "not a handler here",
    note = "implement the adapter's `Handler` trait for `{H}`, or pass a closure to `handler_fn` (a batch at a time) or `handler_each` (a message at a time); without a handler, take `consumer.messages()`"
)]
pub trait Run<H>: Runtime {
    /// What [`Consumer::run`] returns: a [`RunFuture`] on async runtimes,
    /// `Result<(), Error>` itself on blocking ones.
    type Output;

    /// Runs `consumer` until it stops.
    fn run(consumer: Consumer<Self, H>) -> Self::Output;
}

/// What `run` returns on async runtimes: spawn it or await it.
pub type RunFuture = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'static>>;

/// No handler chosen yet: set one with [`ConsumerBuilder::handler`] or
/// [`ConsumerBuilder::handler_fn`].
#[derive(Debug, Clone, Copy)]
pub struct NoHandler;

/// A closure as a handler (see [`ConsumerBuilder::handler_fn`]); each adapter
/// implements its `Handler` trait for it.
#[derive(Debug, Clone)]
pub struct FnHandler<F>(pub F);

/// Builds a [`Consumer`]: where to connect, the core options, the handler
/// and the failure callback. Nothing is checked or sent before
/// [`build`](Self::build).
pub struct ConsumerBuilder<R, H = NoHandler> {
    setup: ConsumerSetup,
    handler: H,
    handler_name: &'static str,
    metrics_per_consumer: bool,
    work: Work,
    runtime: PhantomData<fn() -> R>,
}

/// How handler calls are run: how many at once, per message or per batch,
/// in which order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Work {
    /// `None`: the in-flight limit.
    pub(crate) concurrency: Option<usize>,
    pub(crate) per_message: bool,
    pub(crate) order_by: Option<OrderBy>,
}

/// A handler that takes one message at a time (a per-message handler, or
/// the message stream before [`Consumer::messages`]): the ones
/// [`ConsumerBuilder::order_by`] applies to.
pub trait PerMessage {}

impl PerMessage for NoHandler {}

impl<F> PerMessage for EachFn<F> {}

/// A consumer-group consumer, ready to [`run`](Self::run).
pub struct Consumer<R: Runtime, H = NoHandler> {
    prepared: PreparedConsumer,
    metrics_per_consumer: bool,
    work: Work,
    tls: Option<TlsSetup>,
    handler: H,
    info: Arc<Mutex<ConsumerInfo>>,
    stop: Arc<R::Stop>,
}

/// Controls a consumer from elsewhere (any thread, a signal handler):
/// [`info`](Self::info), [`stop`](Self::stop).
pub struct ConsumerHandle<R: Runtime> {
    info: Arc<Mutex<ConsumerInfo>>,
    stop: Arc<R::Stop>,
}

/// What an adapter's `run` works with (see [`Consumer::into_parts`]).
pub struct Parts<R: Runtime, H> {
    /// The core and all the runtime-independent work around it.
    pub driver: Driver,
    /// The handler, to share with the tasks or threads that run it.
    pub handler: Arc<H>,
    /// What [`ConsumerHandle::stop`] signals.
    pub stop: Arc<R::Stop>,
}

impl<R: Runtime> Consumer<R, NoHandler> {
    /// A builder for consumer `consumer` of `group` on `stream`, at `url`
    /// (`redis://[user:password@]host[:port][/db]`, or `rediss://` for
    /// TLS). A bad URL is reported by [`ConsumerBuilder::build`].
    pub fn builder(
        url: &str,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
    ) -> ConsumerBuilder<R, NoHandler> {
        ConsumerBuilder::new(ConsumerSetup::from_url(url, stream, group, consumer))
    }

    /// A builder for consumer `consumer` of `group` reading every shard of
    /// `sharded` (each shard key, in the same group: every process that
    /// reads the sharded stream shares every shard, so scaling out is
    /// adding processes). On a `redis+cluster://` URL each shard is read
    /// from the primary that holds it. See
    /// [`ConsumerConfigBuilder::streams`](xgroup_core::ConsumerConfigBuilder::streams).
    pub fn builder_sharded(
        url: &str,
        sharded: &ShardedStream,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
    ) -> ConsumerBuilder<R, NoHandler> {
        let keys = sharded.keys().to_vec();
        let setup = ConsumerSetup::from_url(url, sharded.key(0), group, consumer);
        ConsumerBuilder::new(setup.configure(|c| c.streams(keys)))
    }

    /// A builder from host and port (no credentials; set them with
    /// [`ConsumerBuilder::configure`] and `connect_options`).
    pub fn builder_for(
        host: &str,
        port: u16,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
    ) -> ConsumerBuilder<R, NoHandler> {
        ConsumerBuilder::new(ConsumerSetup::from_host(
            host, port, stream, group, consumer,
        ))
    }
}

impl<R: Runtime> ConsumerBuilder<R, NoHandler> {
    fn new(setup: ConsumerSetup) -> Self {
        ConsumerBuilder {
            setup,
            handler: NoHandler,
            handler_name: "",
            metrics_per_consumer: false,
            work: Work::default(),
            runtime: PhantomData,
        }
    }

    /// Sets the handler: a type implementing the adapter's `Handler` trait.
    pub fn handler<H>(self, handler: H) -> ConsumerBuilder<R, H>
    where
        R: Run<H>,
    {
        self.with(handler, std::any::type_name::<H>())
    }

    /// Sets a closure as handler: `Fn(Batch) -> impl Future<Output = Outcome>`
    /// on async runtimes, `Fn(Batch) -> Outcome` on blocking ones.
    pub fn handler_fn<F, T>(self, f: F) -> ConsumerBuilder<R, FnHandler<F>>
    where
        F: Fn(Batch) -> T,
        R: Run<FnHandler<F>>,
    {
        self.with(FnHandler(f), std::any::type_name::<F>())
    }

    /// Sets a per-message handler: `Fn(Message) -> impl Future<Output =
    /// Result<(), Failure>>` on async runtimes, `Fn(Message) -> Result<(),
    /// Failure>` on blocking ones. `Ok(())` acknowledges the message; a
    /// [`Failure`](crate::Failure) retries it (after the configured backoff,
    /// or at a time of its choosing), dead-letters it or keeps it pending.
    ///
    /// The messages of each batch are handled up to
    /// [`concurrency`](Self::concurrency) at once (across batches too), and
    /// the batch is completed once each has its decision. A handler that
    /// panics keeps its message pending (redelivered later) and is reported
    /// as a handler failure; the batch's other messages are not affected.
    pub fn handler_each<F, T>(self, f: F) -> ConsumerBuilder<R, EachFn<F>>
    where
        F: Fn(Message) -> T,
        R: Run<EachFn<F>>,
    {
        let mut builder = self.with(EachFn(f), std::any::type_name::<F>());
        builder.work.per_message = true;
        builder
    }

    fn with<H>(self, handler: H, handler_name: &'static str) -> ConsumerBuilder<R, H> {
        ConsumerBuilder {
            setup: self.setup,
            handler,
            handler_name,
            metrics_per_consumer: self.metrics_per_consumer,
            work: self.work,
            runtime: PhantomData,
        }
    }
}

impl<R: Runtime, H: PerMessage> ConsumerBuilder<R, H> {
    /// Messages with the same key (what `f` returns for them) are handled
    /// one at a time, in the order they were delivered (id order, for new
    /// entries); messages of different keys in parallel, up to the
    /// concurrency. Like Broadway's `partition_by`: per-key order without
    /// giving up parallelism. A message waits (in the consumer, already
    /// delivered to it) while an earlier one of its key is handled.
    ///
    /// For per-message handlers ([`handler_each`](Self::handler_each)) and
    /// the message stream ([`Consumer::messages`], where a delivery is
    /// handed out once the previous one of its key is decided).
    pub fn order_by<K: std::hash::Hash>(
        mut self,
        f: impl Fn(&Message) -> K + Send + Sync + 'static,
    ) -> Self {
        self.work.order_by = Some(OrderBy::new(f));
        self
    }
}

impl<R: Runtime, H> ConsumerBuilder<R, H> {
    /// How many handler calls run at once, each a task of the runtime (or a
    /// handler thread): batches for a batch handler, messages for a
    /// per-message handler, deliveries out at once for the message stream.
    ///
    /// By default the in-flight limit (`max_in_flight_batches`, 1 unless
    /// configured). The in-flight limit bounds the batches the consumer
    /// holds at once; concurrency bounds the calls running. A batch handler
    /// never has more calls than batches in flight, so raise both for
    /// parallel batches; a per-message handler has up to `in_flight ×
    /// count` messages to choose from, so `concurrency(8)` runs eight
    /// messages of one batch at once. With a lower concurrency than
    /// in-flight batches, batches wait for a free slot (their handler
    /// timeout runs meanwhile). Zero is an [`Error::Config`] at
    /// [`build`](Self::build).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.work.concurrency = Some(n);
        self
    }

    /// Changes core options (count, block, claim interval and min idle,
    /// auto-create, in-flight limit, heartbeats, dead letters, ...).
    pub fn configure(self, f: impl FnOnce(ConsumerConfigBuilder) -> ConsumerConfigBuilder) -> Self {
        ConsumerBuilder {
            setup: self.setup.configure(f),
            ..self
        }
    }

    /// Label metrics with the consumer's name too (feature `metrics`; off
    /// by default: stream and group only, since consumer names change with
    /// every deploy and each one makes new series).
    pub fn metrics_per_consumer(self, on: bool) -> Self {
        ConsumerBuilder {
            metrics_per_consumer: on,
            ..self
        }
    }

    /// TLS settings: what to trust, a client certificate, the name to
    /// verify (see [`TlsOptions`]). Needs a `rediss://` URL (TLS options
    /// with `redis://` fail `build`, so TLS is never silently off); with
    /// `builder_for`, this turns TLS on.
    pub fn tls(self, options: TlsOptions) -> Self {
        self.configure(|c| c.tls(options))
    }

    /// The failure callback: called for every dead-lettered entry (without
    /// one, dead letters are logged).
    pub fn on_dead_letter(self, f: impl Fn(&DeadLettered) + Send + Sync + 'static) -> Self {
        ConsumerBuilder {
            setup: self.setup.on_dead_letter(f),
            ..self
        }
    }

    /// Checks the URL and every option, and reads the TLS files (a missing
    /// or unparsable one is an [`Error::Config`]); nothing is sent before
    /// this succeeds.
    pub fn build(self) -> Result<Consumer<R, H>, Error> {
        if self.work.concurrency == Some(0) {
            return Err(ConfigError::new("concurrency", "must be positive").into());
        }
        let prepared = self.setup.prepare(self.handler_name)?;
        let tls = TlsSetup::for_connection(prepared.config.connect_options(), &prepared.addr)?;
        Ok(Consumer {
            tls,
            info: Arc::new(Mutex::new(prepared.info.clone())),
            stop: Arc::default(),
            prepared,
            metrics_per_consumer: self.metrics_per_consumer,
            work: self.work,
            handler: self.handler,
        })
    }
}

impl<R: Runtime, H> Consumer<R, H> {
    /// A handle to watch and stop the consumer.
    pub fn handle(&self) -> ConsumerHandle<R> {
        ConsumerHandle {
            info: self.info.clone(),
            stop: self.stop.clone(),
        }
    }

    /// Runs until stopped: `Ok(())` after a graceful [`ConsumerHandle::stop`],
    /// the cause when a permanent error stopped it (wrong password, missing
    /// group with auto-create off, wrong key type, ...). Transient failures
    /// are retried by the core with backoff and never end `run`. On async
    /// runtimes this is a future to await or spawn.
    pub fn run(self) -> R::Output
    where
        R: Run<H>,
    {
        R::run(self)
    }

    /// For adapters: the same consumer with a per-message handler `each`
    /// instead (how [`Consumer::messages`] runs).
    pub fn with_each<E>(self, each: E) -> Consumer<R, E> {
        Consumer {
            prepared: self.prepared,
            metrics_per_consumer: self.metrics_per_consumer,
            work: Work {
                per_message: true,
                ..self.work
            },
            tls: self.tls,
            handler: each,
            info: self.info,
            stop: self.stop,
        }
    }

    /// For adapters: splits the consumer into what its `run` works with.
    pub fn into_parts(self) -> Parts<R, H> {
        Parts {
            driver: Driver::new(
                self.prepared,
                self.tls,
                self.info,
                self.metrics_per_consumer,
                self.work,
            ),
            handler: Arc::new(self.handler),
            stop: self.stop,
        }
    }
}

impl<R: Runtime> ConsumerHandle<R> {
    /// Names and counters, as of the consumer's last step.
    pub fn info(&self) -> ConsumerInfo {
        self.info
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Asks for a graceful stop: no new reads, in-flight handlers finish (up
    /// to the drain timeout), their acks are flushed, then `run` returns.
    /// Queued, so a stop asked before `run` starts is not lost.
    pub fn stop(&self) {
        R::stop(&self.stop);
    }
}

impl<R: Runtime> Clone for ConsumerHandle<R> {
    fn clone(&self) -> Self {
        ConsumerHandle {
            info: self.info.clone(),
            stop: self.stop.clone(),
        }
    }
}

// Debug by hand: neither the runtime marker nor the handler need be Debug.

impl<R, H> fmt::Debug for ConsumerBuilder<R, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerBuilder")
            .field("setup", &self.setup)
            .field("handler", &self.handler_name)
            .field("work", &self.work)
            .finish()
    }
}

impl<R: Runtime, H> fmt::Debug for Consumer<R, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("prepared", &self.prepared)
            .field("tls", &self.tls)
            .field("stop", &self.stop)
            .finish()
    }
}

impl<R: Runtime> fmt::Debug for ConsumerHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerHandle")
            .field("info", &self.info)
            .field("stop", &self.stop)
            .finish()
    }
}

impl<R: Runtime, H> fmt::Debug for Parts<R, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parts")
            .field("driver", &self.driver)
            .field("stop", &self.stop)
            .finish()
    }
}
