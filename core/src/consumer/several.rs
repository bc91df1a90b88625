//! One consumer of several streams: a part (a [`Consumer`]) per stream,
//! each with its own connections, replay, claims and heartbeat, sharing
//! one in-flight limit.
//!
//! The handler slots are shared through each part's `others_in_flight`:
//! after every input the slots each part takes are summed again and each
//! part told how many the others take. Free slots go round the streams
//! in turn (a cursor: after a stream takes one, the next stream is first
//! in line), and a completing stream does not take back the slot it
//! frees, so one busy stream cannot starve the others.
//!
//! On one server (no cluster), reads of new entries of every stream go in
//! one combined read on the first stream's read connection (see
//! `combined`); in a cluster each stream reads on its own.

use std::time::Instant;

use bytes::Bytes;

use crate::config::ConsumerConfig;
use crate::error::Error;
use crate::id::StreamId;
use crate::reply::GroupCounts;
use crate::url::ServerAddr;

use super::combined::{Answer, CombinedReads, Plan, ReadAnswer};
use super::{BatchId, Conn, Consumer, Event, Outcome, Stats, TimerKind};

/// One connection of one stream of a [`MultiConsumer`]: `stream` is the
/// stream's place in [`ConsumerConfig::streams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamConn {
    /// Which stream (its index in [`ConsumerConfig::streams`]).
    pub stream: usize,
    /// Which of that stream's connections.
    pub conn: Conn,
}

impl StreamConn {
    /// Where an adapter keeps this connection's socket in a flat list:
    /// `stream * Conn::COUNT + conn.index()`.
    pub const fn index(self) -> usize {
        self.stream * Conn::COUNT + self.conn.index()
    }
}

/// A consumer of every stream in [`ConsumerConfig::streams`] as a sans-IO
/// state machine, driven like [`Consumer`]: events and connections name
/// the stream they are about. With one stream it is that stream's
/// [`Consumer`], byte for byte.
#[derive(Debug)]
pub struct MultiConsumer {
    cfg: ConsumerConfig,
    parts: Vec<Consumer>,
    /// The first error a part stopped with: the consumer's.
    error: Option<Error>,
    /// [`Event::Stopped`] has been handed out.
    stop_reported: bool,
    /// On one server, every stream's reads of new entries in one command.
    combined: Option<CombinedReads>,
    /// The stream first in line for a free slot.
    turn: usize,
}

impl MultiConsumer {
    /// A consumer of each stream of `config`, asking for the connections
    /// of every one first.
    pub fn new(config: ConsumerConfig) -> Self {
        let n = config.streams().len().max(1);
        let mut parts: Vec<Consumer> = (0..n)
            .map(|i| Consumer::part(config.for_stream(i), i, n))
            .collect();
        // One process, one token: streams that share a hash tag share the
        // name's heartbeat key, and their parts must not take each other
        // for another process under the same name.
        let token = parts[0].heartbeat.token.clone();
        let leader_holds = parts[0].heartbeat.holds_name();
        for p in &mut parts[1..] {
            p.heartbeat.token = token.clone();
            p.heartbeat.follow();
            p.heartbeat.set_leader_holds(leader_holds);
        }
        // One server, blocking reads beside the control connection's work:
        // one read connection (the first stream's) reads every stream.
        let combined = (n > 1
            && config.cluster.is_none()
            && config.uses_read_connection()
            && config.read_ahead.is_some())
        .then(|| CombinedReads::new(&config));
        if combined.is_some() {
            for (i, p) in parts.iter_mut().enumerate() {
                p.combine_reads(i == 0);
            }
        }
        MultiConsumer {
            cfg: config,
            parts,
            error: None,
            stop_reported: false,
            combined,
            turn: 0,
        }
    }

    /// The configuration (every stream).
    pub fn config(&self) -> &ConsumerConfig {
        &self.cfg
    }

    /// How many streams are read.
    pub fn streams(&self) -> usize {
        self.parts.len()
    }

    /// The part reading stream `i` (`None` past the last).
    pub fn part(&self, i: usize) -> Option<&Consumer> {
        self.parts.get(i)
    }

    /// Which stream a batch came from.
    pub fn stream_of(&self, batch: BatchId) -> usize {
        (batch.0 % self.parts.len() as u64) as usize
    }

    /// Counters so far, summed over the streams.
    pub fn stats(&self) -> Stats {
        self.parts.iter().fold(Stats::default(), |mut sum, p| {
            sum.add(&p.stats());
            sum
        })
    }

    /// Batches handed out and not yet completed, over all streams.
    pub fn in_flight(&self) -> usize {
        self.parts.iter().map(Consumer::in_flight).sum()
    }

    /// Entries held, over all streams.
    pub fn held_entries(&self) -> usize {
        self.parts.iter().map(Consumer::held_entries).sum()
    }

    /// Whether every stream's control connection is up.
    pub fn is_connected(&self) -> bool {
        self.parts.iter().all(Consumer::is_connected)
    }

    /// Whether the consumer has stopped for good (every stream).
    pub fn is_stopped(&self) -> bool {
        self.parts.iter().all(Consumer::is_stopped)
    }

    /// The group's counts summed over the streams, once each has a sample
    /// (the lag is unknown if any stream's is).
    pub fn group_counts(&self) -> Option<GroupCounts> {
        self.parts.iter().try_fold(
            GroupCounts {
                pending: 0,
                lag: Some(0),
            },
            |sum, p| {
                let counts = p.group_counts()?;
                Some(GroupCounts {
                    pending: sum.pending + counts.pending,
                    lag: sum.lag.zip(counts.lag).map(|(a, b)| a + b),
                })
            },
        )
    }

    /// Where to open `conn` (see [`Consumer::connect_address`]).
    pub fn connect_address(&self, conn: StreamConn) -> Option<&ServerAddr> {
        self.parts.get(conn.stream)?.connect_address(conn.conn)
    }

    // ----- inputs -----

    /// See [`Consumer::handle_connected`].
    pub fn handle_connected(&mut self, now: Instant, conn: StreamConn) {
        self.on(now, conn.stream, |p| p.handle_connected(now, conn.conn));
    }

    /// See [`Consumer::handle_connect_failed`].
    pub fn handle_connect_failed(
        &mut self,
        now: Instant,
        conn: StreamConn,
        reason: impl std::fmt::Display,
    ) {
        let error = Error::Connection(reason.to_string());
        self.handle_connect_error(now, conn, error);
    }

    /// See [`Consumer::handle_connect_error`].
    pub fn handle_connect_error(&mut self, now: Instant, conn: StreamConn, error: Error) {
        self.on(now, conn.stream, |p| {
            p.handle_connect_error(now, conn.conn, error);
        });
    }

    /// See [`Consumer::handle_disconnected`].
    pub fn handle_disconnected(
        &mut self,
        now: Instant,
        conn: StreamConn,
        reason: impl std::fmt::Display,
    ) {
        let error = Error::Connection(reason.to_string());
        self.handle_connection_error(now, conn, error);
    }

    /// See [`Consumer::handle_connection_error`].
    pub fn handle_connection_error(&mut self, now: Instant, conn: StreamConn, error: Error) {
        self.on(now, conn.stream, |p| {
            p.handle_connection_error(now, conn.conn, error);
        });
    }

    /// See [`Consumer::handle_input`].
    pub fn handle_input(&mut self, now: Instant, conn: StreamConn, bytes: &[u8]) {
        let combined = self.combined.as_ref().is_some_and(CombinedReads::is_live);
        if combined && conn == Self::COMBINED_CONN {
            return self.combined_input(now, bytes);
        }
        self.on(now, conn.stream, |p| p.handle_input(now, conn.conn, bytes));
    }

    /// See [`Consumer::handle_completion`]. The slot it frees goes to the
    /// stream whose turn it is among those with entries waiting.
    pub fn handle_completion(&mut self, now: Instant, batch: BatchId, outcome: Outcome) {
        let i = self.stream_of(batch);
        self.completed(now, i, |p| p.handle_completion(now, batch, outcome));
        self.combine(now);
    }

    /// See [`Consumer::handle_handler_failed`].
    pub fn handle_handler_failed(
        &mut self,
        now: Instant,
        batch: BatchId,
        reason: impl Into<String>,
    ) {
        let i = self.stream_of(batch);
        let reason = reason.into();
        self.completed(now, i, |p| p.handle_handler_failed(now, batch, reason));
        self.combine(now);
    }

    /// See [`Consumer::handle_message_failed`].
    pub fn handle_message_failed(
        &mut self,
        batch: BatchId,
        id: StreamId,
        reason: impl std::fmt::Display,
    ) {
        let i = self.stream_of(batch);
        if let Some(p) = self.parts.get_mut(i) {
            p.handle_message_failed(batch, id, reason);
        }
    }

    /// See [`Consumer::handle_progress`].
    pub fn handle_progress(&mut self, now: Instant, batch: BatchId) {
        let i = self.stream_of(batch);
        if let Some(p) = self.parts.get_mut(i) {
            p.handle_progress(now, batch);
        }
    }

    /// See [`Consumer::handle_timeout`]: the streams whose deadline passed
    /// handle it.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.parts.len() {
            let due = self.parts[i]
                .poll_timeout()
                .is_some_and(|(at, _)| at <= now);
            if due || self.parts.len() == 1 {
                self.run(now, i, |p| p.handle_timeout(now));
            }
        }
        let late = self
            .combined
            .as_ref()
            .and_then(CombinedReads::deadline)
            .is_some_and(|at| at <= now);
        if late {
            self.run(now, 0, |p| p.combined_read_timed_out(now));
        }
        self.combine(now);
    }

    /// See [`Consumer::handle_shutdown`]: every stream drains.
    pub fn handle_shutdown(&mut self, now: Instant) {
        for p in &mut self.parts {
            p.handle_shutdown(now);
        }
        self.combine(now);
    }

    // ----- outputs -----

    /// Bytes to write, and the connection to write them on.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(StreamConn, Bytes)> {
        let parts = self.parts.iter_mut().enumerate().find_map(|(stream, p)| {
            p.poll_transmit()
                .map(|(conn, bytes)| (StreamConn { stream, conn }, bytes))
        });
        parts.or_else(|| {
            let bytes = self.combined.as_mut()?.take_bytes()?;
            Some((Self::COMBINED_CONN, bytes))
        })
    }

    /// The next event and the stream it is about. The streams' own
    /// [`Event::Stopped`] are kept back: one comes once every stream has
    /// stopped, with the first error one stopped with.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<(usize, Event)> {
        for (i, p) in self.parts.iter_mut().enumerate() {
            while let Some(event) = p.poll_event() {
                match event {
                    Event::Stopped(error) => {
                        if self.error.is_none() {
                            self.error = error;
                        }
                    }
                    event => return Some((i, event)),
                }
            }
        }
        if !self.stop_reported && self.is_stopped() {
            self.stop_reported = true;
            return Some((0, Event::Stopped(self.error.take())));
        }
        None
    }

    /// The next deadline over all streams.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<(Instant, TimerKind)> {
        let combined = self
            .combined
            .as_ref()
            .and_then(CombinedReads::deadline)
            .map(|at| (at, TimerKind::Reply));
        self.parts
            .iter()
            .filter_map(Consumer::poll_timeout)
            .chain(combined)
            .min_by_key(|&(at, _)| at)
    }

    // ----- sharing -----

    /// Runs one input on stream `i` (see [`run`](Self::run)), then puts
    /// the reads it asks for in a combined read.
    fn on(&mut self, now: Instant, i: usize, input: impl FnOnce(&mut Consumer)) {
        self.run(now, i, input);
        self.combine(now);
    }

    /// Runs one input on stream `i`, then shares the slots again: slots it
    /// freed go to the others in turn, and a stream that stopped on an
    /// error stops the others (they drain).
    fn run(&mut self, now: Instant, i: usize, input: impl FnOnce(&mut Consumer)) {
        if self.parts.len() == 1 {
            return input(&mut self.parts[0]);
        }
        if i >= self.parts.len() {
            return;
        }
        let before = self.taken();
        input(&mut self.parts[i]);
        self.after(now, i, before, None);
    }

    /// Runs a completion on stream `i`: it acks without taking the freed
    /// slot, then the streams in turn may take it.
    fn completed(&mut self, now: Instant, i: usize, input: impl FnOnce(&mut Consumer)) {
        if self.parts.len() == 1 {
            return input(&mut self.parts[0]);
        }
        let Some(part) = self.parts.get_mut(i) else {
            return;
        };
        part.others_in_flight = self.cfg.max_in_flight_batches;
        input(part);
        self.after(now, i, usize::MAX, Some(i));
    }

    /// After an input on stream `i`: shares the slots again; if fewer are
    /// taken than `before`, the free ones go round (`completing`, the
    /// stream whose completion freed them, last).
    fn after(&mut self, now: Instant, i: usize, before: usize, completing: Option<usize>) {
        if self.parts[i].is_stopped() {
            self.handle_shutdown(now);
        }
        let taken = self.share();
        // The first stream's part fences the name for all: the others
        // start (or stop) working with it.
        let holds = self.parts[0].heartbeat.holds_name();
        for j in 1..self.parts.len() {
            if self.parts[j].heartbeat.set_leader_holds(holds) && holds {
                let part = &mut self.parts[j];
                part.timers.set_due(super::timers::Timer::Heartbeat, true);
                part.pump(now);
                self.share();
            }
        }
        if taken >= before {
            return;
        }
        // Free slots go round: each stream in turn, from the one whose
        // turn it is, may take one per round, until a round takes none.
        let n = self.parts.len();
        let max = self.cfg.max_in_flight_batches;
        loop {
            let round_start = self.taken();
            let first = self.turn;
            // A completing stream comes last in its round.
            let last = completing.filter(|&c| c < n);
            let order = (0..n)
                .map(|k| (first + k) % n)
                .filter(|&j| Some(j) != last)
                .chain(last);
            for j in order {
                let total = self.taken();
                if total >= max {
                    return;
                }
                let part = &mut self.parts[j];
                if part.is_stopped() {
                    continue;
                }
                // One free slot for this stream.
                let had = part.slots_taken();
                part.others_in_flight = max - 1 - had.min(max - 1);
                part.pump(now);
                part.try_finish(now);
                if self.parts[j].slots_taken() > had {
                    self.turn = (j + 1) % n;
                }
                self.share();
            }
            if self.taken() <= round_start {
                return;
            }
        }
    }

    // ----- the combined read -----

    /// The connection the combined read goes on: the first stream's read
    /// connection.
    const COMBINED_CONN: StreamConn = StreamConn {
        stream: 0,
        conn: Conn::Read,
    };

    /// Follows the combined read's connection (its loss loses every read
    /// in it; once set up, each stream may read), then sends the reads
    /// the streams ask for.
    fn combine(&mut self, now: Instant) {
        let Some(mut combined) = self.combined.take() else {
            return;
        };
        // A cluster behind a plain URL: its streams live on different
        // nodes, and each reads on its own connections from now on.
        if self.parts.iter().any(Consumer::in_cluster) {
            for (i, epoch) in combined.stop() {
                self.run(now, i, |p| p.combined_read_answered(now, epoch, None));
            }
            for p in &mut self.parts {
                p.uncombine_reads();
            }
            return;
        }
        let ready = self.parts[0].read_connection_running();
        if combined.is_live() && !ready {
            for (i, epoch) in combined.stop() {
                self.run(now, i, |p| p.combined_read_answered(now, epoch, None));
            }
        } else if ready && !combined.is_live() {
            combined.start(now);
        }
        for j in 0..self.parts.len() {
            if self.parts[j].set_combined_ready(ready) && ready {
                let before = self.taken();
                self.parts[j].pump(now);
                self.after(now, j, before, None);
            }
        }
        loop {
            let asks: Vec<_> = (self.parts.iter().enumerate())
                .filter_map(|(i, p)| p.read_ask().map(|ask| (i, ask)))
                .collect();
            match combined.plan(&asks) {
                Plan::Wait => break,
                Plan::Send {
                    count,
                    block,
                    unblock,
                } => {
                    if let Some(id) = unblock.filter(|_| self.parts[0].control_running()) {
                        self.parts[0].outbox.client_unblock(now, id);
                        combined.unblock_sent();
                    }
                    let parts = (asks.iter())
                        .filter_map(|&(i, _)| Some((i, self.parts[i].take_read_ask(count)?)))
                        .collect();
                    combined.send(now, parts, count, block);
                }
            }
        }
        self.combined = Some(combined);
    }

    /// Replies on the combined read's connection: each part in a read gets
    /// its stream's entries.
    fn combined_input(&mut self, now: Instant, bytes: &[u8]) {
        if let Some(combined) = self.combined.as_mut() {
            combined.feed(bytes);
        }
        loop {
            let Some(combined) = self.combined.as_mut() else {
                return;
            };
            match combined.next_answer() {
                Ok(None) => break,
                Ok(Some(Answer::ClientId)) => {}
                Ok(Some(Answer::Read(answers))) => self.answer_read(now, answers),
                Err(e) => {
                    self.run(now, 0, |p| p.protocol_failure(now, e));
                    break;
                }
            }
        }
        self.combine(now);
    }

    /// Every stream in a combined read gets its entries, none taking a
    /// free slot yet; then the free slots go round the streams in turn
    /// (the first stream answered would otherwise take them all).
    fn answer_read(&mut self, now: Instant, answers: Vec<ReadAnswer>) {
        let max = self.cfg.max_in_flight_batches;
        let mut stopped = false;
        for (i, epoch, result) in answers {
            let Some(part) = self.parts.get_mut(i) else {
                continue;
            };
            part.others_in_flight = max;
            part.combined_read_answered(now, epoch, Some(result));
            stopped |= part.is_stopped();
        }
        if stopped {
            self.handle_shutdown(now);
        }
        self.after(now, self.turn, usize::MAX, None);
    }

    /// The slots every stream takes, summed.
    fn taken(&self) -> usize {
        self.parts.iter().map(Consumer::slots_taken).sum()
    }

    /// Tells each stream the slots the others take; returns the total.
    fn share(&mut self) -> usize {
        let total = self.taken();
        for p in &mut self.parts {
            p.others_in_flight = total - p.slots_taken();
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DeadLetter;

    fn two() -> MultiConsumer {
        let config = ConsumerConfig::builder("a", "g", "c")
            .streams(["a", "{b}"])
            .seed(7)
            .build()
            .unwrap();
        MultiConsumer::new(config)
    }

    #[test]
    fn each_stream_asks_for_a_control_connection_and_the_first_for_the_read_one() {
        let mut m = two();
        let mut asked = Vec::new();
        while let Some((stream, event)) = m.poll_event() {
            if let Event::Connect(conn) = event {
                asked.push(StreamConn { stream, conn });
            }
        }
        let conn = |stream, conn| StreamConn { stream, conn };
        let want = [
            conn(0, Conn::Control),
            conn(0, Conn::Read),
            conn(1, Conn::Control),
        ];
        assert_eq!(asked, want, "one read connection reads both streams");
        assert!(m.combined.is_some());
        assert_eq!(m.part(1).unwrap().config().stream().as_ref(), b"{b}");
        assert_eq!(m.config().streams().len(), 2);
    }

    #[test]
    fn batch_ids_name_their_stream() {
        let mut m = two();
        let ids: Vec<_> = m.parts.iter_mut().map(|p| p.reads.next_batch()).collect();
        assert_eq!(ids, [BatchId(0), BatchId(1)]);
        let again = m.parts[1].reads.next_batch();
        assert_eq!(again, BatchId(3));
        assert_eq!(m.stream_of(again), 1);
        assert_eq!(m.stream_of(BatchId(2)), 0);
    }

    #[test]
    fn the_parts_share_the_processs_heartbeat_token() {
        let m = two();
        assert_eq!(m.parts[0].heartbeat.token, m.parts[1].heartbeat.token);
    }

    #[test]
    fn several_streams_are_checked() {
        let twice = ConsumerConfig::builder("a", "g", "c").streams(["a", "b", "a"]);
        assert_eq!(twice.build().unwrap_err().option, "streams");
        let none = ConsumerConfig::builder("a", "g", "c").streams(Vec::<&str>::new());
        assert_eq!(none.build().unwrap_err().option, "streams");
        let dead = ConsumerConfig::builder("a", "g", "c")
            .streams(["a", "b"])
            .dead_letter(DeadLetter::Stream("b".into()));
        assert_eq!(dead.build().unwrap_err().option, "dead_letter");
        let unbuffered = ConsumerConfig::builder("a", "g", "c")
            .streams(["a", "b"])
            .no_read_ahead();
        assert_eq!(unbuffered.build().unwrap_err().option, "read_ahead");
        let one = ConsumerConfig::builder("a", "g", "c").no_read_ahead();
        assert!(one.build().is_ok(), "one stream needs none");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test's instant
    fn a_stream_stopped_on_an_error_drains_the_others_and_one_stop_is_reported() {
        let mut m = two();
        let now = Instant::now();
        while m.poll_event().is_some() {}
        let conn = |stream| StreamConn {
            stream,
            conn: Conn::Control,
        };
        m.handle_connected(now, conn(0));
        m.handle_connected(now, conn(1));
        while m.poll_transmit().is_some() {}
        // A wrong password on stream 0's connection stops it for good.
        m.handle_input(
            now,
            conn(0),
            b"-WRONGPASS invalid username-password pair\r\n",
        );
        let mut stopped = Vec::new();
        while let Some((_, event)) = m.poll_event() {
            if let Event::Stopped(e) = event {
                stopped.push(e);
            }
        }
        assert!(m.parts[0].is_stopped());
        assert!(m.is_stopped(), "the other stream had nothing in flight");
        assert_eq!(stopped.len(), 1);
        assert!(matches!(&stopped[0], Some(Error::Server(_))), "{stopped:?}");
    }
}
