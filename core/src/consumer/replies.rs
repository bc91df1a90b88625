//! Replies: each goes to the part that sent its command, in the order sent;
//! set-up replies (handshake, `INFO`, `XGROUP CREATE`) and failures are
//! handled here.

use std::time::Instant;

use crate::error::{Error, ProtocolError, ServerError, ServerErrorKind};
use crate::id::StreamId;
use crate::reply::{self, GroupCreated, ReplyError, Value};
use crate::resp::Frame;

use super::acks::server_has_xackdel;
use super::discovery::Discovery;
use super::lifecycle::{Conn, Phase};
use super::outbox::{Fetch, Sent};
use super::report::Warning;
use super::{Consumer, State};

impl Consumer {
    /// Takes every whole reply `conn`'s decoder has; at a quiet point
    /// decides what to send next. Returns `false` when a reply ended the
    /// connection (or the consumer).
    pub(super) fn read_replies(&mut self, now: Instant, conn: Conn) -> bool {
        let mut completed = false;
        loop {
            let Some(session) = self.links.session_mut(conn) else {
                return false;
            };
            let raw = match session.decoder.next_raw() {
                Ok(Some(raw)) => raw,
                Ok(None) => break,
                Err(e) => {
                    self.protocol_failure(now, e);
                    return false;
                }
            };
            completed = true;
            if raw.bytes().first() == Some(&b'>') {
                continue; // a RESP3 push, not a reply
            }
            let Some(cmd) = self.outbox.next_answered(conn) else {
                self.protocol_failure(now, ProtocolError::UnsolicitedReply);
                return false;
            };
            self.replying_to = cmd.what.name();
            match cmd.what {
                // Hot path: new entries parsed straight from the bytes.
                Sent::Fetch(kind @ (Fetch::Read | Fetch::Replay)) => {
                    match reply::xreadgroup_raw(raw.bytes(), &self.cfg.stream) {
                        Some(parsed) => {
                            self.on_fetched(now, kind, parsed.map(|entries| (entries, None)))
                        }
                        None => match raw.decode() {
                            Ok(frame) => self.on_fetch_reply(now, kind, frame),
                            Err(e) => {
                                self.protocol_failure(now, e);
                                return false;
                            }
                        },
                    }
                }
                what => match raw.decode() {
                    Ok(frame) => self.on_reply(now, conn, what, frame),
                    Err(e) => {
                        self.protocol_failure(now, e);
                        return false;
                    }
                },
            }
            if !self.links.get(conn).is_up() || self.state == State::Stopped {
                return false;
            }
        }
        // Decide what to send next only at a quiet point of this
        // connection's reply stream: some reply completed, no frame
        // half-read, and everything pipelined on it answered (a fetch may
        // stay out). Decisions then do not depend on how the reply bytes
        // were cut into reads.
        let quiet = self
            .links
            .get(conn)
            .session()
            .is_some_and(|s| s.decoder.buffered() == 0);
        if completed && quiet && self.outbox.only_fetches_out(conn) {
            self.pump(now);
        }
        true
    }

    fn on_reply(&mut self, now: Instant, conn: Conn, what: Sent, frame: Frame) {
        match what {
            Sent::Handshake(step) => match step.check(frame) {
                Ok(()) => self.handshake_step(conn),
                Err(e) => self.command_failed(now, e),
            },
            Sent::Info => {
                if let (Value::Bulk(text), Some(session)) =
                    (Value::from_frame(frame), self.links.control_mut())
                {
                    session.has_xackdel = server_has_xackdel(&text);
                }
                self.handshake_step(conn);
            }
            Sent::GroupCreate => self.on_group_created(now, frame),
            // `+OK`; an error fails the connection like any other.
            Sent::Asking => {
                if let Err(e) = reply::check_error(frame) {
                    self.command_failed(now, ReplyError::Server(e));
                }
            }
            Sent::Fetch(kind) => self.on_fetch_reply(now, kind, frame),
            Sent::Counts => match reply::xpending_extended(frame) {
                Ok(rows) => self.on_counts(now, rows),
                Err(e) => self.command_failed(now, e),
            },
            Sent::Ack => self.on_ack(now, frame),
            Sent::AckDel => self.on_ack_delete(now, frame),
            Sent::Tx { left, failed } => self.on_tx_frame(now, (left, failed), frame),
            Sent::DeadLetters => self.on_dead_letters(now, frame),
            Sent::Heartbeat => self.on_heartbeat(now, frame),
            Sent::LeaseBeat => self.on_lease(now, frame),
            Sent::LeaseRelease => self.on_lease_released(now, frame),
            // 1 or 0 (the read had returned already); a server that refuses
            // it leaves the combined read to return at its BLOCK time.
            Sent::Unblock => {}
            Sent::NameWatch => self.on_name_watch(now, frame),
            Sent::NameRelease => self.on_name_released(now, frame),
            Sent::PendingSummary => self.on_pending_summary(now, frame),
            Sent::Liveness(consumer) => self.on_liveness(now, consumer, frame),
            Sent::DeadPending(consumer) => self.on_dead_pending(now, consumer, frame),
            Sent::DelConsumer(consumer) => self.on_del_consumer(now, consumer, frame),
            Sent::GroupStats => self.on_group_stats(frame),
            Sent::Refresh(sent) => match reply::id_list(frame, "XCLAIM") {
                Ok(claimed) => self.refreshed(now, &sent, &claimed),
                Err(ReplyError::Server(e)) if e.kind == ServerErrorKind::NoGroup => {}
                Err(e) => self.command_failed(now, e),
            },
            Sent::SweepPage => self.on_sweep_page(now, frame),
            Sent::SweepLiveness(owner) => self.on_sweep_liveness(now, owner, frame),
            Sent::Release(sent) => match reply::id_list(frame, "XCLAIM") {
                Ok(_) => self.released(&sent),
                Err(ReplyError::Server(e)) if e.kind == ServerErrorKind::NoGroup => {}
                Err(e) => self.command_failed(now, e),
            },
        }
    }

    fn on_fetch_reply(&mut self, now: Instant, kind: Fetch, frame: Frame) {
        let parsed = match kind {
            Fetch::Replay | Fetch::Read => {
                reply::xreadgroup(frame, &self.cfg.stream).map(|entries| (entries, None))
            }
            Fetch::Claim => reply::xautoclaim(frame).map(|c| {
                let more = (c.next, c.nil_entries, c.deleted.len());
                (c.entries, Some(more))
            }),
            Fetch::Redeliver | Fetch::Failover(_) | Fetch::Sweep => reply::xclaim(frame).map(|c| {
                let more = (StreamId::ZERO, c.nil_entries, 0);
                (c.entries, Some(more))
            }),
        };
        self.on_fetched(now, kind, parsed);
    }

    // ----- set-up -----

    fn handshake_step(&mut self, conn: Conn) {
        if self
            .links
            .session_mut(conn)
            .is_some_and(|s| s.handshake_answered())
        {
            self.handshake_done(conn);
        }
    }

    /// Every handshake reply is in: on the control connection the group
    /// next, or straight to work; the read connection is ready.
    pub(super) fn handshake_done(&mut self, conn: Conn) {
        let create =
            conn == Conn::Control && self.state == State::Running && self.cfg.auto_create_group;
        if let Some(session) = self.links.session_mut(conn) {
            session.phase = if create { Phase::Group } else { Phase::Running };
        }
    }

    fn on_group_created(&mut self, now: Instant, frame: Frame) {
        match reply::group_create(frame) {
            Ok(GroupCreated::Created | GroupCreated::AlreadyExisted) => self.group_ensured(),
            Err(ReplyError::Server(e)) if e.kind == ServerErrorKind::StreamMissing => {
                let stream = self.cfg.stream.clone();
                self.fatal(Error::StreamMissing { stream });
            }
            // At maxmemory the server refuses `XGROUP CREATE` even for a
            // group that exists: go on as if it did (if it does not, reads
            // answer NOGROUP and it is created again, with backoff).
            Err(ReplyError::Server(error)) if error.kind == ServerErrorKind::OutOfMemory => {
                self.warn(Warning::WriteRefused {
                    command: "XGROUP CREATE",
                    error,
                });
                self.group_ensured();
            }
            Err(e) => self.command_failed(now, e),
        }
    }

    /// The group is there: on to work.
    fn group_ensured(&mut self) {
        if let Some(session) = self.links.control_mut() {
            if session.phase == Phase::Group {
                session.phase = Phase::Running;
            }
        }
    }

    /// `NOGROUP` on a fetch: the group was deleted while running.
    pub(super) fn group_vanished(&mut self, now: Instant, e: ServerError) {
        if self.state != State::Running {
            return;
        }
        if !self.cfg.auto_create_group {
            let (stream, group) = (self.cfg.stream.clone(), self.cfg.group.clone());
            return self.fatal(Error::GroupMissing { stream, group });
        }
        if self.links.control().phase() == Some(Phase::Group) {
            // Already re-creating; later NOGROUP replies were pipelined.
            return;
        }
        if self.reads.group_recreated() > 2 {
            // Created and gone again without a successful read in between:
            // back off instead of looping.
            self.stats.errors += 1;
            return self.connection_failed(now, Error::Server(e));
        }
        self.warn(Warning::GroupRecreated);
        if let Some(session) = self.links.control_mut() {
            session.phase = Phase::Group;
        }
        let start = self.cfg.group_start.to_arg();
        self.outbox.group_create(now, &start, self.cfg.make_stream);
    }

    // ----- failures -----

    pub(super) fn command_failed(&mut self, now: Instant, e: ReplyError) {
        self.stats.errors += 1;
        match e {
            ReplyError::Protocol(p) => self.protocol_failure(now, p),
            // With sentinels, a node that is no longer the master (or a
            // read cut because it stopped being one) means a failover.
            ReplyError::Server(s)
                if self.discovery.is_some()
                    && matches!(
                        s.kind,
                        ServerErrorKind::ReadOnly | ServerErrorKind::Unblocked
                    ) =>
            {
                self.master_moved(now, Error::Server(s))
            }
            ReplyError::Server(s) if s.is_transient() => {
                self.connection_failed(now, Error::Server(s))
            }
            // The ACL user lacks a command the consumer needs: say which.
            ReplyError::Server(error) if error.kind == ServerErrorKind::NoPerm => {
                let command = self.replying_to;
                self.fatal(Error::NoPermission { command, error })
            }
            // In a cluster: the stream's slot moved (a migration, a
            // failover), or is being migrated (`ASK`: tried again after a
            // backoff, at the node that owns it, until the migration ends
            // with a `MOVED`).
            ReplyError::Server(s)
                if self.discovery.as_ref().is_some_and(Discovery::is_cluster)
                    && matches!(
                        s.kind,
                        ServerErrorKind::Moved { .. } | ServerErrorKind::Ask { .. }
                    ) =>
            {
                self.slot_moved(now, s)
            }
            // A plain URL that points at a cluster node: the node that
            // answered is a cluster's, and the one it names a seed.
            ReplyError::Server(s)
                if self.discovery.is_none()
                    && matches!(
                        s.kind,
                        ServerErrorKind::Moved { .. } | ServerErrorKind::Ask { .. }
                    ) =>
            {
                self.discover_cluster_from(now, s)
            }
            ReplyError::Server(s)
                if matches!(
                    s.kind,
                    ServerErrorKind::Moved { .. } | ServerErrorKind::Ask { .. }
                ) =>
            {
                self.fatal(Error::Redirected(s))
            }
            ReplyError::Server(s) => self.fatal(Error::Server(s)),
        }
    }

    pub(super) fn protocol_failure(&mut self, now: Instant, e: ProtocolError) {
        self.stats.errors += 1;
        self.connection_failed(now, Error::Protocol(e));
    }
}
