//! The one place the core's events become what an adapter must do.

use std::borrow::Borrow;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use bytes::Bytes;
use xgroup_core::{
    Batch, BatchId, ConsumerInfo, DeadLetterHook, DeadLettered, Disposition, Error, Event,
    MultiConsumer, Outcome, PreparedConsumer, ServerAddr, StreamConn, Warning,
};

use crate::consumer::Work;
use crate::each::{Failure, MessageJob, ProgressSet, Ticket};
use crate::schedule::{Job, Scheduler};
use crate::tls::{self, TlsSetup};

/// What the adapter must do next (from [`Driver::next_action`]). Not
/// `#[non_exhaustive]`: an adapter matches every variant, so a new one fails
/// to compile there instead of being dropped.
#[must_use]
pub enum Action {
    /// Open this connection (closing any it replaces) to this address,
    /// with TLS if [`Driver::tls`] says so, within
    /// [`Driver::connect_timeout`], then call [`Driver::connected`] or
    /// [`Driver::connect_failed`] for it.
    Connect(StreamConn, ServerAddr),
    /// Write these bytes on this connection, in order, within
    /// [`Driver::write_timeout`]; on failure close it and call
    /// [`Driver::disconnected`]. Without that connection, drop them.
    Write(StreamConn, Bytes),
    /// Close this connection (the core knows: call nothing).
    Disconnect(StreamConn),
    /// Run the (batch) handler on this batch and report with
    /// [`Driver::completed`] (or [`Driver::handler_failed`] if it could not
    /// be started).
    Deliver(Batch),
    /// Run the per-message handler on this message and report with
    /// [`Driver::handled`] (or [`Driver::message_failed`] if it could not be
    /// started).
    Handle(MessageJob),
    /// The consumer stopped: `run` returns this. No action follows.
    Stopped(Result<(), Error>),
}

// By hand: the bytes of a write may hold the handshake's `AUTH`.
impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Connect(conn, addr) => {
                f.debug_tuple("Connect").field(conn).field(addr).finish()
            }
            Action::Write(conn, bytes) => write!(f, "Write({conn:?}, {} bytes)", bytes.len()),
            Action::Disconnect(conn) => f.debug_tuple("Disconnect").field(conn).finish(),
            Action::Deliver(batch) => f.debug_tuple("Deliver").field(batch).finish(),
            Action::Handle(job) => f.debug_tuple("Handle").field(&job.ticket()).finish(),
            Action::Stopped(result) => f.debug_tuple("Stopped").field(result).finish(),
        }
    }
}

/// The core with everything runtime-independent around it: logging, the
/// failure callback, handler failures, `info()` publishing. Every input
/// method reads the clock itself.
pub struct Driver {
    core: MultiConsumer,
    addr: ServerAddr,
    tls: Option<TlsSetup>,
    on_dead_letter: Option<DeadLetterHook>,
    info: Arc<Mutex<ConsumerInfo>>,
    /// Who this is, for the logs.
    names: [String; 3],
    stopping: bool,
    /// The last error met, for `info()`.
    last_error: Option<String>,
    metrics: Metrics,
    /// Which handler calls run when.
    work: Scheduler,
    /// Batches with progress reported since the last timer.
    progress: ProgressSet,
}

impl Driver {
    pub(crate) fn new(
        prepared: PreparedConsumer,
        tls: Option<TlsSetup>,
        info: Arc<Mutex<ConsumerInfo>>,
        metrics_per_consumer: bool,
        work: Work,
    ) -> Self {
        let PreparedConsumer {
            addr,
            config,
            info: names,
            on_dead_letter,
        } = prepared;
        let names = [names.stream, names.group, names.consumer];
        let concurrency = work
            .concurrency
            .unwrap_or_else(|| config.max_in_flight_batches());
        Driver {
            work: Scheduler::new(concurrency, work.per_message, work.order_by),
            progress: ProgressSet::default(),
            core: MultiConsumer::new(config),
            addr,
            tls,
            on_dead_letter,
            info,
            metrics: Metrics::new(&names, metrics_per_consumer),
            names,
            stopping: false,
            last_error: None,
        }
    }

    /// The next thing to do: events first, then bytes to write. `None` once
    /// all is done for the last input (and `info()` is then up to date):
    /// wait for the next one.
    pub fn next_action(&mut self) -> Option<Action> {
        while let Some((stream, event)) = self.core.poll_event() {
            match event {
                Event::Connect(conn) => {
                    let conn = StreamConn { stream, conn };
                    let addr = self.core.connect_address(conn).unwrap_or(&self.addr);
                    return Some(Action::Connect(conn, addr.clone()));
                }
                Event::Disconnect(conn) => {
                    return Some(Action::Disconnect(StreamConn { stream, conn }));
                }
                Event::Deliver(batch) => {
                    self.metrics.delivered(&batch);
                    let span = match self.work.per_message() {
                        true => self.batch_span(&batch),
                        false => tracing::Span::none(),
                    };
                    if let Some((id, outcome)) = self.work.deliver(batch, &span, &self.progress) {
                        self.finished(id, outcome);
                    }
                }
                Event::Warning(warning) => self.warn(stream, &warning),
                Event::DeadLettered(dead) => self.dead_lettered(&dead),
                Event::Stopped(cause) => {
                    if let Some(e) = &cause {
                        self.last_error = Some(e.to_string());
                    }
                    self.publish();
                    return Some(Action::Stopped(cause.map_or(Ok(()), Err)));
                }
            }
        }
        if let Some(job) = self.work.next() {
            return Some(match job {
                Job::Batch(batch) => Action::Deliver(batch),
                Job::Message(job) => Action::Handle(job),
            });
        }
        if let Some((conn, bytes)) = self.core.poll_transmit() {
            return Some(Action::Write(conn, bytes));
        }
        self.publish();
        None
    }

    /// The span a batch's handler runs in (its own spans nest under it):
    /// stream, group, consumer, where the batch came from, its size and its
    /// range of attempts. Adapters enter it around the handler call.
    ///
    /// Without a subscriber interested in it, this is a disabled span and
    /// costs next to nothing (its fields are worked out only for one).
    pub fn batch_span(&self, batch: &Batch) -> tracing::Span {
        let [stream, group, consumer] = &self.names;
        let attempts = || batch.messages.iter().map(|m| m.attempt);
        tracing::info_span!(
            "xgroup.batch",
            %stream,
            %group,
            %consumer,
            batch = batch.id.0,
            source = ?batch.source,
            size = batch.messages.len(),
            first_attempt = attempts().min().unwrap_or(0),
            last_attempt = attempts().max().unwrap_or(0),
        )
    }

    /// When to call [`timeout`](Self::timeout), if ever.
    pub fn deadline(&self) -> Option<Instant> {
        self.core.poll_timeout().map(|(at, _)| at)
    }

    /// The TLS to speak over each connection (`rediss://`), built once.
    pub fn tls(&self) -> Option<&TlsSetup> {
        self.tls.as_ref()
    }

    /// The TLS to speak to `addr` (from [`Action::Connect`]): the name
    /// verified is its host, unless the options named the server.
    pub fn tls_for(&self, addr: &ServerAddr) -> Option<TlsSetup> {
        self.tls.as_ref().map(|tls| tls.for_address(addr))
    }

    /// How long opening a connection may take.
    pub fn connect_timeout(&self) -> Duration {
        self.core.config().connect_timeout()
    }

    /// How long one write may take: a peer that stops reading must not stall
    /// the consumer.
    pub fn write_timeout(&self) -> Duration {
        self.core.config().reply_timeout()
    }

    /// Whether a stop was asked for ([`shutdown`](Self::shutdown)): no need
    /// to wait for another.
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// The connection asked for by [`Action::Connect`] is open.
    pub fn connected(&mut self, conn: StreamConn) {
        self.core.handle_connected(Instant::now(), conn);
    }

    /// Opening the connection failed: a TLS handshake that failed for
    /// good (an untrusted certificate, a plaintext server) stops the
    /// consumer with [`Error::Tls`]; anything else is retried.
    pub fn connect_failed(&mut self, conn: StreamConn, error: io::Error) {
        let error = tls::connect_error(&self.addr, &error);
        self.core.handle_connect_error(Instant::now(), conn, error);
    }

    /// The connection failed; the adapter has dropped it.
    pub fn disconnected(&mut self, conn: StreamConn, error: &io::Error) {
        let error = tls::session_error(&self.addr, error);
        self.core
            .handle_connection_error(Instant::now(), conn, error);
    }

    /// What a read from the connection gave: bytes, the end (no bytes) or
    /// an error. Returns whether the connection is still up: after the end
    /// or an error, drop it.
    pub fn received<E: Borrow<io::Error>>(
        &mut self,
        conn: StreamConn,
        read: Result<&[u8], E>,
    ) -> bool {
        let now = Instant::now();
        match read {
            Ok([]) => {
                self.core
                    .handle_disconnected(now, conn, "connection closed by the server");
            }
            Ok(bytes) => {
                self.core.handle_input(now, conn, bytes);
                return true;
            }
            Err(e) => self.disconnected(conn, e.borrow()),
        }
        false
    }

    /// A handler finished with `batch`: its outcome, or the panic it raised
    /// (counted, reported and the batch left pending for redelivery).
    pub fn completed(&mut self, batch: BatchId, result: thread::Result<Outcome>) {
        self.work.batch_done();
        match result {
            Ok(outcome) => self.finished(batch, outcome),
            Err(panic) => self.failed(batch, xgroup_core::panic_message(&*panic)),
        }
    }

    /// The handler could not run on `batch` (e.g. no thread for it).
    pub fn handler_failed(&mut self, batch: BatchId, reason: impl Into<String>) {
        self.work.batch_done();
        self.failed(batch, reason);
    }

    /// The per-message handler finished the message of `ticket`: `Ok(())`
    /// acknowledges it, a [`Failure`] says what else to do, a panic keeps
    /// it pending (counted and reported; its batch's other messages go on).
    /// The batch is completed once each of its messages has its decision.
    pub fn handled(&mut self, ticket: Ticket, result: thread::Result<Result<(), Failure>>) {
        let disposition = match result {
            Ok(Ok(())) => Disposition::Ack,
            Ok(Err(failure)) => {
                if let Some(cause) = failure.cause() {
                    tracing::debug!(id = %ticket.id(), %cause, "xgroup message not acknowledged");
                }
                failure.disposition().clone()
            }
            Err(panic) => {
                let reason = xgroup_core::panic_message(&*panic);
                return self.message_failed(ticket, reason);
            }
        };
        if let Some(outcome) = self.work.message_done(ticket, disposition) {
            self.finished(ticket.batch(), outcome);
        }
    }

    /// The per-message handler failed on the message of `ticket` (it
    /// panicked, or could not be started): it stays pending, and the
    /// failure is counted and reported.
    pub fn message_failed(&mut self, ticket: Ticket, reason: impl Into<String>) {
        let reason: String = reason.into();
        self.core
            .handle_message_failed(ticket.batch(), ticket.id(), reason);
        if let Some(outcome) = self.work.message_done(ticket, Disposition::Keep) {
            self.finished(ticket.batch(), outcome);
        }
    }

    fn finished(&mut self, batch: BatchId, outcome: Outcome) {
        self.metrics.completed(batch);
        self.core.handle_completion(Instant::now(), batch, outcome);
    }

    fn failed(&mut self, batch: BatchId, reason: impl Into<String>) {
        self.metrics.completed(batch);
        self.core
            .handle_handler_failed(Instant::now(), batch, reason);
    }

    /// The [`deadline`](Self::deadline) passed (an early call is harmless).
    pub fn timeout(&mut self) {
        let now = Instant::now();
        // Progress reported since the last timer counts before the core
        // looks for hung handlers (only its timers do).
        let progressed =
            std::mem::take(&mut *self.progress.lock().unwrap_or_else(PoisonError::into_inner));
        for batch in progressed {
            self.core.handle_progress(now, batch);
        }
        self.core.handle_timeout(now);
    }

    /// A stop was asked for: drain and stop gracefully. Handler calls not
    /// started yet are not started: their entries stay pending.
    pub fn shutdown(&mut self) {
        self.stopping = true;
        self.core.handle_shutdown(Instant::now());
        for (batch, outcome) in self.work.drop_queued() {
            self.finished(batch, outcome);
        }
    }

    /// A warning about stream `i`.
    fn warn(&mut self, i: usize, warning: &Warning) {
        self.metrics.warned(warning);
        if let Some(error) = warning.error() {
            self.last_error = Some(error);
        }
        let [_, group, consumer] = &self.names;
        let stream = self
            .core
            .config()
            .streams()
            .get(i)
            .map(|s| String::from_utf8_lossy(s));
        let stream = stream.unwrap_or_default();
        tracing::warn!(%stream, %group, %consumer, ?warning, "xgroup consumer warning");
    }

    fn dead_lettered(&self, dead: &DeadLettered) {
        match &self.on_dead_letter {
            Some(hook) => hook(dead),
            None => {
                let [stream, group, consumer] = &self.names;
                tracing::warn!(
                    %stream, %group, %consumer,
                    id = %dead.id,
                    deliveries = dead.deliveries,
                    reason = %dead.reason,
                    action = ?dead.action,
                    "xgroup entry dead-lettered"
                );
            }
        }
    }

    fn publish(&mut self) {
        self.metrics.publish(&self.core);
        let mut info = self.info.lock().unwrap_or_else(PoisonError::into_inner);
        info.update(&self.core);
        info.last_error.clone_from(&self.last_error);
    }
}

impl Drop for Driver {
    /// `run` returned, or its future was dropped (the task cancelled) with
    /// the core still connected: either way the connection is gone with it,
    /// and `info()` must say so.
    fn drop(&mut self) {
        self.info
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .connected = false;
    }
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("core", &self.core)
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .field("on_dead_letter", &self.on_dead_letter.is_some())
            .field("stopping", &self.stopping)
            .finish()
    }
}
