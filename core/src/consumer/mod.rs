//! The consumer-group state machine.
//!
//! [`Consumer`] routes inputs to the parts that own the state:
//!
//! - `ledger`: every entry held (with the handler, retrying, being acked or
//!   dead-lettered, waiting for delivery counts);
//! - `lifecycle`: the connections (the control one and, for blocking reads
//!   of new entries, the read one; each down, connecting, or up with its
//!   session) and the consumer (running, draining, stopped), and the
//!   reconnect backoff;
//! - `timers`: the timer table;
//! - `outbox`: the commands written and the replies awaited;
//! - `reads` (new entries, own-pending replay, polling, prefetch, delivery
//!   counts), `claims` (sweeps, idle refreshes, retry claims), `heartbeat`
//!   (heartbeats and failover), `acks` (acks and dead letters);
//! - `replies`: which part a reply goes to; `schedule`: what to send next.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::config::ConsumerConfig;
use crate::error::Error;
use crate::id::StreamId;

mod acks;
mod batch;
mod claims;
mod combined;
mod discovery;
mod group_stats;
mod heartbeat;
mod lease;
mod ledger;
mod lifecycle;
mod outbox;
mod reads;
mod replies;
mod report;
mod schedule;
mod several;
mod timers;

pub use batch::{Batch, BatchId, Disposition, Message, Outcome, Source};
pub use heartbeat::{
    heartbeat_key, HEARTBEAT_RELEASE_SCRIPT, HEARTBEAT_SCRIPT, REMOVE_DEAD_SCRIPT,
};
pub use lifecycle::Conn;
pub use report::{
    panic_message, ConsumerInfo, DeadLetterAction, DeadLettered, Event, Stats, Warning,
};
pub use several::{MultiConsumer, StreamConn};
pub use timers::TimerKind;

pub use lease::{LEASE_RELEASE_SCRIPT, LEASE_SCRIPT};
pub use outbox::DEAD_LETTER_SCRIPT;

use claims::Claims;
use discovery::Discovery;
use heartbeat::Heartbeat;
use lease::Lease;
use ledger::{Completed, Ledger};
use lifecycle::{Backoff, Link, Links, Session, State};
use outbox::Outbox;
use reads::Reads;
use timers::{Timer, Timers};

/// A Redis Streams consumer-group consumer as a sans-IO state machine.
///
/// Drive it with one input at a time, each with the current time, and after
/// every input drain all outputs: events, bytes to write, the next deadline.
/// Inputs after [`Event::Stopped`] are ignored; a spurious
/// [`handle_timeout`](Self::handle_timeout) is harmless.
///
/// ```no_run
/// use std::time::Instant;
/// use xgroup_core::{Consumer, ConsumerConfig, Event, Outcome};
///
/// # use xgroup_core::Conn;
/// # fn connect(_: Conn) {} fn write(_: Conn, _: &[u8]) {} fn read_or_timeout(_: Option<Instant>) -> Option<(Conn, Vec<u8>)> { None }
/// let config = ConsumerConfig::builder("orders", "processors", "proc-1").build()?;
/// let mut consumer = Consumer::new(config);
/// loop {
///     // Drain every output after each input.
///     while let Some(event) = consumer.poll_event() {
///         match event {
///             Event::Connect(conn) => { connect(conn); consumer.handle_connected(Instant::now(), conn); }
///             Event::Deliver(batch) => {
///                 // ... handle batch.messages ...
///                 consumer.handle_completion(Instant::now(), batch.id, Outcome::AckAll);
///             }
///             Event::Stopped(_) => return Ok(()),
///             _ => {}
///         }
///     }
///     while let Some((conn, bytes)) = consumer.poll_transmit() { write(conn, &bytes); }
///     // Then wait for one input: bytes on either connection, or the deadline.
///     match read_or_timeout(consumer.poll_timeout().map(|(at, _)| at)) {
///         Some((conn, bytes)) => consumer.handle_input(Instant::now(), conn, &bytes),
///         None => consumer.handle_timeout(Instant::now()),
///     }
/// }
/// # Ok::<(), xgroup_core::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Consumer {
    cfg: ConsumerConfig,
    state: State,
    links: Links,
    outbox: Outbox,
    events: VecDeque<Event>,
    timers: Timers,
    ledger: Ledger,
    backoff: Backoff,
    reads: Reads,
    claims: Claims,
    heartbeat: Heartbeat,
    /// With a sentinel target: the link to the sentinels and the master
    /// they named.
    discovery: Option<Discovery>,
    stats: Stats,
    /// The group's counts at the last sample (see `group_stats`).
    group_counts: Option<crate::reply::GroupCounts>,
    /// The command whose reply is being handled, for errors that name it.
    replying_to: &'static str,
    /// Handler slots the other streams of a [`MultiConsumer`] take (see
    /// [`slots_taken`](Self::slots_taken)): the in-flight limit is shared.
    others_in_flight: usize,
    /// In ordered mode: the stream's lease.
    lease: Option<Lease>,
}

impl Consumer {
    /// A consumer that will ask for its connections first
    /// ([`Event::Connect`]).
    pub fn new(config: ConsumerConfig) -> Self {
        Consumer::part(config, 0, 1)
    }

    /// Part `index` of `parts` of a [`MultiConsumer`]: its batch ids are
    /// `index, index + parts, ...`.
    fn part(config: ConsumerConfig, index: usize, parts: usize) -> Self {
        let mut backoff = Backoff::new(config.seed.unwrap_or_else(process_seed));
        let token = Bytes::from(format!("{:016x}", backoff.random()));
        let discovery = match (&config.sentinel, &config.cluster) {
            (Some(target), _) => Some(Discovery::sentinels(target.clone(), backoff.random())),
            (None, Some(target)) => Some(Discovery::cluster(
                target.clone(),
                &config.stream,
                &config.connect,
                backoff.random(),
            )),
            (None, None) => None,
        };
        // With discovery, the data connections wait for the node's name.
        let (links, events) = match discovery {
            Some(_) => (
                Links::down(config.uses_read_connection()),
                [Event::Connect(Conn::Discovery)].into(),
            ),
            None => {
                let links = Links::connecting(config.uses_read_connection());
                let events = links.used().map(Event::Connect).collect();
                (links, events)
            }
        };
        Consumer {
            lease: config.ordered.then(|| Lease::new(&config, index)),
            heartbeat: Heartbeat::new(&config, token),
            outbox: Outbox::new(&config),
            cfg: config,
            state: State::Running,
            links,
            events,
            timers: Timers::default(),
            ledger: Ledger::default(),
            backoff,
            reads: Reads::numbered(index as u64, parts as u64),
            claims: Claims::default(),
            discovery,
            stats: Stats::default(),
            group_counts: None,
            replying_to: "",
            others_in_flight: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Batches handed out and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.ledger.batches()
    }

    /// Entries this consumer holds: with the handler, waiting for a retry,
    /// being acknowledged or dead-lettered.
    pub fn held_entries(&self) -> usize {
        self.ledger.held()
    }

    /// Handler slots in use: this stream's batches and those the other
    /// streams of a [`MultiConsumer`] take.
    fn slots_in_use(&self) -> usize {
        // In ordered mode a stream's batch takes every slot it may use:
        // one batch at a time.
        if self.lease.is_some() && self.ledger.batches() > 0 {
            return self.cfg.max_in_flight_batches;
        }
        self.ledger.batches() + self.others_in_flight
    }

    /// Handler slots this consumer takes or may fill without asking again:
    /// its batches, a slot kept for a control fetch out (a replay, retry
    /// or claim, whose entries skip the read-ahead) and, without
    /// read-ahead, each read of new entries out.
    fn slots_taken(&self) -> usize {
        let fetching = if self.cfg.read_ahead.is_some() {
            usize::from(!self.outbox.only_new_reads_out())
        } else {
            self.outbox.fetches_out()
        };
        self.ledger.batches() + fetching + usize::from(self.ledger.awaiting_counts())
    }

    /// In the ordered mode: the fencing token of the stream's lease while
    /// this consumer holds it (`None` otherwise, and outside that mode).
    pub fn lease(&self) -> Option<u64> {
        self.lease.as_ref().and_then(Lease::fence)
    }

    /// Whether the control connection is up (set up or being set up).
    pub fn is_connected(&self) -> bool {
        self.links.control().is_up()
    }

    /// Whether the consumer has stopped for good.
    pub fn is_stopped(&self) -> bool {
        self.state == State::Stopped
    }

    // ----- inputs -----

    /// The connection asked for by [`Event::Connect`] is open.
    pub fn handle_connected(&mut self, now: Instant, conn: Conn) {
        if self.state == State::Stopped {
            return;
        }
        if conn == Conn::Discovery {
            return self.discovery_connected(now);
        }
        if !matches!(self.links.get(conn), Link::Connecting) {
            return;
        }
        // A master a sentinel named must still be one (a cluster node
        // that no longer serves the slot answers `MOVED`).
        let check_role = self.discovery.as_ref().is_some_and(|d| !d.is_cluster());
        // At a migrating slot's target, every command after an `ASKING`.
        let asking = self
            .discovery
            .as_ref()
            .is_some_and(Discovery::is_asking_target);
        self.outbox.set_asking(asking);
        if conn == Conn::Read {
            let handshake = self
                .outbox
                .handshake(now, conn, &self.cfg.connect, check_role);
            self.links.set(conn, Link::Up(Session::new(handshake)));
            if handshake == 0 {
                self.handshake_done(conn);
            }
            return self.pump(now);
        }
        self.stats.connections += 1;
        self.outbox.clear();
        let draining = self.state == State::Draining;
        self.reads.connected(&self.cfg);
        self.claims.connected();
        self.heartbeat.connected();
        if let Some(lease) = self.lease.as_mut() {
            lease.connected();
        }
        self.timers.set_due(
            Timer::ClaimSweep,
            self.cfg.claim_interval.is_some() && !self.cfg.replay_pending,
        );
        self.timers
            .set_due(Timer::Heartbeat, self.cfg.heartbeat.is_some() && !draining);
        self.timers
            .set_due(Timer::GroupStats, self.cfg.group_stats_interval.is_some());
        // Entries the handler still holds were last refreshed on the lost
        // connection: refresh them first thing (their idle time ran on).
        let refresh_at = match self.ledger.held() {
            0 => now + self.refresh_interval(),
            _ => now,
        };
        self.timers.set(Timer::Refresh, refresh_at);
        let mut handshake = self
            .outbox
            .handshake(now, conn, &self.cfg.connect, check_role);
        if self.cfg.delete_on_ack {
            self.outbox.info_server(now);
            handshake += 1;
        }
        self.links.set(conn, Link::Up(Session::new(handshake)));
        if !draining && self.cfg.auto_create_group {
            let start = self.cfg.group_start.to_arg();
            self.outbox.group_create(now, &start, self.cfg.make_stream);
        }
        if handshake == 0 {
            self.handshake_done(conn);
        }
        self.pump(now);
    }

    /// Opening a connection failed: the others are closed too, and all are
    /// opened again after a backoff.
    pub fn handle_connect_failed(
        &mut self,
        now: Instant,
        conn: Conn,
        reason: impl std::fmt::Display,
    ) {
        self.handle_connect_error(now, conn, Error::Connection(reason.to_string()));
    }

    /// Opening a connection failed with this error (an adapter's typed
    /// one, e.g. [`Error::Tls`]). One that retrying cannot mend
    /// ([`Error::is_permanent_connection_failure`]: an untrusted
    /// certificate, a plaintext server) stops the consumer with it; any
    /// other is [`handle_connect_failed`](Self::handle_connect_failed).
    pub fn handle_connect_error(&mut self, now: Instant, conn: Conn, error: Error) {
        if conn == Conn::Discovery {
            let connecting = self.discovery.as_ref().is_some_and(|s| s.is_connecting());
            if self.state != State::Stopped && connecting {
                self.discovery_failed(now, error);
            }
            return;
        }
        if self.state == State::Stopped || !matches!(self.links.get(conn), Link::Connecting) {
            return;
        }
        self.stats.errors += 1;
        self.links.set(conn, Link::Down);
        self.lost(now, error);
    }

    /// A connection closed or failed (read/write error, EOF): the others
    /// are closed too, and all are opened again after a backoff.
    pub fn handle_disconnected(
        &mut self,
        now: Instant,
        conn: Conn,
        reason: impl std::fmt::Display,
    ) {
        self.handle_connection_error(now, conn, Error::Connection(reason.to_string()));
    }

    /// An open connection failed with this error (an adapter's typed one:
    /// a TLS 1.3 server rejects a client certificate only after the
    /// handshake, with an alert the first read meets). Permanent ones stop
    /// the consumer as in [`handle_connect_error`](Self::handle_connect_error);
    /// any other is [`handle_disconnected`](Self::handle_disconnected).
    pub fn handle_connection_error(&mut self, now: Instant, conn: Conn, error: Error) {
        if conn == Conn::Discovery {
            let open = self.discovery.as_ref().is_some_and(|s| s.is_open());
            if self.state != State::Stopped && open {
                self.discovery_failed(now, error);
            }
            return;
        }
        if self.state == State::Stopped || matches!(self.links.get(conn), Link::Down) {
            return;
        }
        self.links.set(conn, Link::Down);
        self.lost(now, error);
    }

    /// Bytes arrived on a connection.
    pub fn handle_input(&mut self, now: Instant, conn: Conn, bytes: &[u8]) {
        if conn == Conn::Discovery {
            if self.state != State::Stopped {
                self.discovery_input(now, bytes);
            }
            return;
        }
        let Some(session) = self.links.session_mut(conn) else {
            return;
        };
        if self.state == State::Stopped {
            return;
        }
        session.decoder.feed(bytes);
        if !self.read_replies(now, conn) {
            return;
        }
        self.try_finish(now);
    }

    /// The handler finished a batch. After the consumer stopped (on an
    /// error, with batches out), the batch's slot is freed and nothing is
    /// acknowledged: its entries stay pending.
    pub fn handle_completion(&mut self, now: Instant, batch: BatchId, outcome: Outcome) {
        if self.state == State::Stopped {
            self.ledger.forget(batch);
            return;
        }
        match self.ledger.complete(now, batch, outcome, &self.cfg) {
            Completed::UnknownBatch => return self.warn(Warning::UnknownBatch(batch)),
            Completed::Done { strangers } if !strangers.is_empty() => {
                self.warn(Warning::AckIdsNotInBatch {
                    batch,
                    ids: strangers,
                });
            }
            Completed::Done { .. } => {}
        }
        self.hand_out_read_ahead(now);
        self.pump(now);
        self.try_finish(now);
    }

    /// The handler failed on a batch (it panicked, or returned an error the
    /// adapter could not map): nothing of the batch is acknowledged, so it is
    /// redelivered; the failure is counted and reported.
    pub fn handle_handler_failed(
        &mut self,
        now: Instant,
        batch: BatchId,
        reason: impl Into<String>,
    ) {
        if self.state == State::Stopped {
            return;
        }
        if self.ledger.has_batch(batch) {
            self.stats.handler_failures += 1;
            self.warn(Warning::HandlerFailed {
                batch,
                reason: reason.into(),
            });
        }
        self.handle_completion(now, batch, Outcome::AckNone);
    }

    /// One message's handler failed (it panicked) while the rest of its
    /// batch goes on (a per-message handler): counted and reported like a
    /// handler failure ([`Warning::HandlerFailed`], the message's id in the
    /// reason). The batch is still in flight; the message's decision is the
    /// caller's, in the batch's completion (leaving it out keeps it pending).
    pub fn handle_message_failed(
        &mut self,
        batch: BatchId,
        id: StreamId,
        reason: impl std::fmt::Display,
    ) {
        if self.state == State::Stopped || !self.ledger.has_batch(batch) {
            return;
        }
        self.stats.handler_failures += 1;
        self.warn(Warning::HandlerFailed {
            batch,
            reason: format!("message {id}: {reason}"),
        });
    }

    /// The application is still working on `batch` (a stream delivery's
    /// `in_progress`): its handler timeout starts again from `now`, so its
    /// entries keep being refreshed against others' claims. No effect on a
    /// batch already taken for hung (its entries may be given up) or not in
    /// flight.
    pub fn handle_progress(&mut self, now: Instant, batch: BatchId) {
        if self.state == State::Stopped {
            return;
        }
        self.ledger.progress(now, batch);
    }

    /// A deadline from [`poll_timeout`](Self::poll_timeout) passed (spurious
    /// calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Stopped {
            return;
        }
        if self.timers.expired(Timer::Drain, now) {
            let warning = Warning::DrainTimedOut {
                batches: self.ledger.batches(),
                unacked: self.ledger.unacked(),
            };
            self.warn(warning);
            return self.finish(None);
        }
        self.fire_due_timers(now);
        if self.timers.expired(Timer::Discovery, now) {
            self.discovery_timer(now);
        }
        // With sentinels, only once one has named the master.
        let unnamed = self
            .discovery
            .as_ref()
            .is_some_and(|s| s.master().is_none());
        if self.timers.expired(Timer::Reconnect, now) && !unnamed {
            let conns = self.links.all_connecting();
            self.events.extend(conns.into_iter().map(Event::Connect));
        }
        if self.links.control().is_up() {
            if let Some(oldest) = self.outbox.oldest().filter(|c| c.deadline <= now) {
                let command = oldest.what.name();
                self.stats.errors += 1;
                return self.connection_failed(now, Error::ReplyTimeout { command });
            }
        }
        self.pump(now);
    }

    /// Stop gracefully: no new reads; wait for in-flight batches until the
    /// drain timeout, flush their acknowledgements, then report
    /// [`Event::Stopped`].
    pub fn handle_shutdown(&mut self, now: Instant) {
        if self.state != State::Running {
            return;
        }
        self.state = State::Draining;
        self.timers.set(Timer::Drain, now + self.cfg.drain_timeout);
        self.forget_read_asks();
        self.reads.stop_replay();
        self.claims.stop();
        self.ledger.drop_read_ahead();
        self.timers.cancel(Timer::ClaimSweep);
        self.try_finish(now);
    }

    // ----- outputs -----

    /// Bytes to write, in order for each connection, and the connection to
    /// write them on.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(Conn, Bytes)> {
        if let Some(bytes) = self.discovery.as_mut().and_then(Discovery::take_bytes) {
            return Some((Conn::Discovery, bytes));
        }
        self.outbox.take_bytes()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next deadline and what it is for; call
    /// [`handle_timeout`](Self::handle_timeout) when it passes.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<(Instant, TimerKind)> {
        if self.state == State::Stopped {
            return None;
        }
        let reply = self
            .outbox
            .oldest()
            .filter(|_| self.links.control().is_up())
            .map(|c| (c.deadline, TimerKind::Reply));
        let retry = self.ledger.next_retry().map(|at| (at, TimerKind::Retry));
        [self.timers.next(), retry, reply]
            .into_iter()
            .flatten()
            .min_by_key(|&(at, _)| at)
    }

    // ----- failures and the end -----

    /// A connection was lost with `cause`: the consumer stops if no retry
    /// can help, else all connections are opened again after a backoff.
    fn lost(&mut self, now: Instant, cause: Error) {
        if cause.is_permanent_connection_failure() {
            return self.fatal(cause);
        }
        // In a cluster, a node lost may be a primary failing over: the
        // cluster is asked who serves the slot now.
        if self.discovery.as_ref().is_some_and(Discovery::is_cluster) {
            return self.master_moved(now, cause);
        }
        self.connection_failed(now, cause);
    }

    /// A connection failed: all are closed (those still open with
    /// [`Event::Disconnect`]) and opened again after a backoff.
    fn connection_failed(&mut self, now: Instant, cause: Error) {
        if self.drop_data_connections() {
            return;
        }
        self.schedule_reconnect(now, cause);
    }

    /// The data connections closed, and what was out on them forgotten (the
    /// ledger takes back what it had sent); returns whether that ended a
    /// drain (nothing left to wait for).
    fn drop_data_connections(&mut self) -> bool {
        self.close_all();
        self.outbox.clear();
        self.ledger.connection_lost();
        self.timers.disarm_connection();
        if self.state == State::Draining && self.ledger.is_settled() {
            self.finish(None);
            return true;
        }
        false
    }

    /// Every connection down: those open or being opened are closed, and
    /// a connection asked for but not yet handed out is no longer wanted.
    fn close_all(&mut self) {
        self.events
            .retain(|e| !matches!(e, Event::Connect(Conn::Control | Conn::Read)));
        let open = self.links.all_down();
        self.events.extend(open.into_iter().map(Event::Disconnect));
    }

    fn schedule_reconnect(&mut self, now: Instant, cause: Error) {
        let (attempt, delay) = self
            .backoff
            .next(self.cfg.reconnect_initial, self.cfg.reconnect_max);
        self.timers.set(Timer::Reconnect, now + delay);
        self.warn(Warning::Reconnecting {
            attempt,
            delay,
            cause,
        });
    }

    fn fatal(&mut self, error: Error) {
        self.finish(Some(error));
    }

    fn finish(&mut self, error: Option<Error>) {
        if self.state == State::Stopped {
            return;
        }
        self.close_all();
        if let Some(s) = self.discovery.as_mut() {
            self.events
                .retain(|e| !matches!(e, Event::Connect(Conn::Discovery)));
            if s.is_open() {
                self.events.push_back(Event::Disconnect(Conn::Discovery));
            }
            s.close();
        }
        self.state = State::Stopped;
        self.outbox.clear();
        self.timers.clear();
        self.events.push_back(Event::Stopped(error));
    }

    /// A draining consumer stops once nothing is left to wait for. A read of
    /// new entries still out (a `BLOCK` that may last seconds) is not waited
    /// for: the connection is closed, and whatever it delivered stays pending
    /// for this consumer's next start or another's claim. With heartbeats,
    /// the name is freed first where it can be (see `release_name`).
    fn try_finish(&mut self, now: Instant) {
        if self.state == State::Draining
            && self.ledger.is_settled()
            && self.outbox.only_new_reads_out()
            && !self.ledger.awaiting_counts()
            && !self.heartbeat.releasing()
            && !self.lease.as_ref().is_some_and(Lease::releasing)
            && !self.lease_waits_for_reads()
            && !self.release_lease(now)
            && !self.release_name(now)
        {
            self.finish(None);
        }
    }

    fn warn(&mut self, warning: Warning) {
        self.events.push_back(Event::Warning(warning));
    }
}

/// A per-process random seed, for instances that were given none: two
/// processes must not share a heartbeat token.
fn process_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish()
}
