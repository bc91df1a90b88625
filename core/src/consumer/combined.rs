//! The combined read of a consumer of several streams on one server: one
//! `XREADGROUP ... BLOCK ms STREAMS a b c > > >` on one read connection
//! (the first stream's) instead of a blocked read per stream.
//!
//! Each part still decides when it reads new entries and how many (its
//! replay, read-ahead room and lease say so), but asks instead of writing
//! (see `Outbox::read`). [`CombinedReads`] puts the asks waiting into one
//! command: `COUNT` the least any asks for, `BLOCK` only if every ask
//! blocks. Its reply is split per stream and each part answered. A part
//! that asks while a blocked combined read leaves it out has that read
//! returned at once (`CLIENT UNBLOCK` on the first part's control
//! connection), so no stream waits out another's `BLOCK`. A lost read
//! connection loses every part's read in it: each replays its own pending
//! entries, where whatever that read delivered is.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::command::CommandWriter;
use crate::config::ConsumerConfig;
use crate::error::{Error, ProtocolError};
use crate::id::ReadFrom;
use crate::reply::{self, Entry, ReplyError};
use crate::resp::Decoder;

use super::lifecycle::{Conn, Phase};
use super::outbox::{block_ms, Fetch, ReadAsk, XReadGroup};
use super::{Consumer, Event, State};

/// The combined read's connection, commands out and what each answers.
#[derive(Debug)]
pub(super) struct CombinedReads {
    group: Bytes,
    consumer: Bytes,
    /// Every part's stream key, by part.
    keys: Vec<Bytes>,
    reply_timeout: Duration,
    /// The first part's read connection is set up and carries these reads.
    live: bool,
    decoder: Decoder,
    wire: BytesMut,
    out: VecDeque<Out>,
    /// The read connection's `CLIENT ID`, once known: what `CLIENT UNBLOCK`
    /// names.
    client_id: Option<u64>,
    /// A `CLIENT UNBLOCK` went out for the blocked read out.
    unblocking: bool,
}

/// A command out on the combined read's connection.
#[derive(Debug)]
struct Out {
    what: OutKind,
    deadline: Instant,
}

#[derive(Debug)]
enum OutKind {
    ClientId,
    /// One combined read: the parts in it and the epoch each one's answer
    /// must name (see `Outbox::read_ask_answered`).
    Read {
        parts: Vec<(usize, u64)>,
        blocking: bool,
    },
}

/// What to do with the asks waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Nothing now.
    Wait,
    /// One combined read of every stream that asks; `unblock`: first
    /// unblock the read out (`CLIENT UNBLOCK` of this id), which leaves
    /// one of them out.
    Send {
        count: u64,
        block: Option<Duration>,
        unblock: Option<u64>,
    },
}

/// One part's share of a combined read's reply: the part, the epoch it
/// asked in, its stream's entries (or the error every part gets).
pub(super) type ReadAnswer = (usize, u64, Result<Vec<Entry>, ReplyError>);

/// A reply on the combined read's connection.
#[derive(Debug)]
pub(super) enum Answer {
    /// `CLIENT ID` (kept inside).
    ClientId,
    /// A combined read's reply, split: each part in it and its entries (or
    /// the error every part gets).
    Read(Vec<ReadAnswer>),
}

impl CombinedReads {
    pub(super) fn new(cfg: &ConsumerConfig) -> Self {
        CombinedReads {
            group: cfg.group.clone(),
            consumer: cfg.consumer.clone(),
            keys: cfg.streams().to_vec(),
            reply_timeout: cfg.reply_timeout,
            live: false,
            decoder: Decoder::new(),
            wire: BytesMut::new(),
            out: VecDeque::new(),
            client_id: None,
            unblocking: false,
        }
    }

    /// Whether the read connection is set up and carries combined reads.
    pub(super) fn is_live(&self) -> bool {
        self.live
    }

    /// The read connection is set up: asks for its id first (for
    /// `CLIENT UNBLOCK`).
    pub(super) fn start(&mut self, now: Instant) {
        self.live = true;
        self.decoder = Decoder::new();
        CommandWriter::begin(&mut self.wire, 2)
            .arg(b"CLIENT")
            .arg(b"ID");
        self.out.push_back(Out {
            what: OutKind::ClientId,
            deadline: now + self.reply_timeout,
        });
    }

    /// The read connection is gone: returns the parts (and epochs) of every
    /// read that was out, lost.
    pub(super) fn stop(&mut self) -> Vec<(usize, u64)> {
        self.live = false;
        self.wire.clear();
        self.client_id = None;
        self.unblocking = false;
        self.out
            .drain(..)
            .flat_map(|o| match o.what {
                OutKind::Read { parts, .. } => parts,
                OutKind::ClientId => Vec::new(),
            })
            .collect()
    }

    fn reads(&self) -> impl Iterator<Item = (&[(usize, u64)], bool)> {
        self.out.iter().filter_map(|o| match &o.what {
            OutKind::Read { parts, blocking } => Some((parts.as_slice(), *blocking)),
            OutKind::ClientId => None,
        })
    }

    /// What to do with `asks` (each asking part's oldest waiting ask): at
    /// most two reads out, so the server has the next one queued while the
    /// client takes in the last. Behind a read that may block, the next
    /// one does not, and if it reads a stream that one leaves out, that
    /// one is unblocked (else it would hold this one back for its whole
    /// `BLOCK`).
    pub(super) fn plan(&self, asks: &[(usize, ReadAsk)]) -> Plan {
        let reads: Vec<_> = self.reads().collect();
        if !self.live || asks.is_empty() || reads.len() >= 2 {
            return Plan::Wait;
        }
        let count = asks.iter().map(|(_, a)| a.count).min().unwrap_or(1);
        let Some((parts, _)) = reads.iter().find(|(_, blocking)| *blocking) else {
            let blocks: Option<Vec<Duration>> = asks.iter().map(|(_, a)| a.block).collect();
            let block = blocks.and_then(|b| b.into_iter().min());
            return Plan::Send {
                count,
                block,
                unblock: None,
            };
        };
        let left_out = asks
            .iter()
            .any(|&(i, _)| parts.iter().all(|&(p, _)| p != i));
        let unblock = self.client_id.filter(|_| left_out && !self.unblocking);
        Plan::Send {
            count,
            block: None,
            unblock,
        }
    }

    /// `CLIENT UNBLOCK` went out for the blocked read.
    pub(super) fn unblock_sent(&mut self) {
        self.unblocking = true;
    }

    /// Writes `XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS <keys> > ...`
    /// for `parts` (each with the epoch its answer names).
    pub(super) fn send(
        &mut self,
        now: Instant,
        parts: Vec<(usize, u64)>,
        count: u64,
        block: Option<Duration>,
    ) {
        let block_ms = block_ms(block);
        let read = XReadGroup {
            group: &self.group,
            consumer: &self.consumer,
            count,
            block_ms,
        };
        let keys: Vec<&[u8]> = parts.iter().map(|(i, _)| self.keys[*i].as_ref()).collect();
        let w = CommandWriter::begin(&mut self.wire, read.argc(keys.len()));
        read.write(w, &keys, ReadFrom::New);
        let extra = block_ms.map_or(Duration::ZERO, Duration::from_millis);
        // Behind another read, its reply comes after that one's.
        let behind = self.out.back().map(|o| o.deadline + self.reply_timeout);
        let own = now + self.reply_timeout + extra;
        self.out.push_back(Out {
            what: OutKind::Read {
                parts,
                blocking: block_ms.is_some(),
            },
            deadline: behind.map_or(own, |b| b.max(own)),
        });
    }

    /// Bytes to write on the read connection.
    pub(super) fn take_bytes(&mut self) -> Option<Bytes> {
        (!self.wire.is_empty()).then(|| self.wire.split().freeze())
    }

    /// The reply due first, if any is out.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.out.front().map(|o| o.deadline)
    }

    pub(super) fn feed(&mut self, bytes: &[u8]) {
        self.decoder.feed(bytes);
    }

    /// The next whole reply, answered.
    pub(super) fn next_answer(&mut self) -> Result<Option<Answer>, ProtocolError> {
        let Some(raw) = self.decoder.next_raw()? else {
            return Ok(None);
        };
        let out = self
            .out
            .pop_front()
            .ok_or(ProtocolError::UnsolicitedReply)?;
        match out.what {
            OutKind::ClientId => {
                let frame = raw.decode()?;
                // A server that will not say leaves reads to their BLOCK.
                self.client_id = reply::integer(frame, "CLIENT ID")
                    .ok()
                    .and_then(|id| u64::try_from(id).ok());
                Ok(Some(Answer::ClientId))
            }
            OutKind::Read { parts, blocking } => {
                if blocking {
                    self.unblocking = false;
                }
                let keys: Vec<&[u8]> = parts.iter().map(|(i, _)| self.keys[*i].as_ref()).collect();
                // Hot path: entries parsed straight from the bytes.
                let split = match reply::xreadgroup_streams_raw(raw.bytes(), &keys) {
                    Some(split) => split,
                    None => reply::xreadgroup_streams(raw.decode()?, &keys),
                };
                let answers = match split {
                    Ok(split) => parts
                        .into_iter()
                        .zip(split)
                        .map(|((i, epoch), entries)| (i, epoch, Ok(entries)))
                        .collect(),
                    Err(e) => parts
                        .into_iter()
                        .map(|(i, epoch)| (i, epoch, Err(e.clone())))
                        .collect(),
                };
                Ok(Some(Answer::Read(answers)))
            }
        }
    }
}

impl Consumer {
    /// Reads of new entries go in the combined read: on this part's read
    /// connection (`own`, the first part's) or another's.
    pub(super) fn combine_reads(&mut self, own: bool) {
        self.links.combine_reads(own);
        self.outbox.ask_reads();
        if !own {
            self.events
                .retain(|e| !matches!(e, Event::Connect(Conn::Read)));
        }
    }

    /// Reads of new entries go on this part's own connections again (a
    /// cluster found behind a plain URL: its streams live on different
    /// nodes). Whatever was asked is lost with the connections, which are
    /// being opened again.
    pub(super) fn uncombine_reads(&mut self) {
        self.links.uncombine_reads();
        self.outbox.stop_asking();
    }

    /// Whether this part's connections go to a cluster's nodes.
    pub(super) fn in_cluster(&self) -> bool {
        self.discovery.as_ref().is_some_and(|d| d.is_cluster())
    }

    /// Whether this part's own read connection is set up (the one the
    /// combined read goes on, for the first part).
    pub(super) fn read_connection_running(&self) -> bool {
        self.state != State::Stopped && self.links.get(Conn::Read).phase() == Some(Phase::Running)
    }

    /// Whether the control connection is set up (for `CLIENT UNBLOCK`).
    pub(super) fn control_running(&self) -> bool {
        self.state != State::Stopped && self.links.control().phase() == Some(Phase::Running)
    }

    /// The combined read's connection is (or is no longer) ready; returns
    /// whether that changed.
    pub(super) fn set_combined_ready(&mut self, ready: bool) -> bool {
        self.links.set_combined_ready(ready)
    }

    /// The oldest read this part asks for and no combined read carries yet.
    pub(super) fn read_ask(&self) -> Option<ReadAsk> {
        if self.state != State::Running {
            return None;
        }
        self.outbox.read_ask()
    }

    /// Stopping: reads asked for and not yet sent never will be.
    pub(super) fn forget_read_asks(&mut self) {
        let dropped = self.outbox.drop_waiting_asks();
        self.reads.unsent(dropped);
    }

    /// That read goes out in a combined read asking for `count` entries per
    /// stream; returns the epoch its answer names.
    pub(super) fn take_read_ask(&mut self, count: u64) -> Option<u64> {
        let index = self.outbox.read_asks_out();
        let epoch = self.outbox.take_read_ask()?;
        self.reads.asked_at_most(index, count);
        Some(epoch)
    }

    /// A combined read this part was in is answered (`None`: lost with its
    /// connection).
    pub(super) fn combined_read_answered(
        &mut self,
        now: Instant,
        epoch: u64,
        answer: Option<Result<Vec<Entry>, ReplyError>>,
    ) {
        if self.state == State::Stopped {
            return;
        }
        match (self.outbox.read_ask_answered(epoch), answer) {
            (true, Some(parsed)) => {
                self.replying_to = "XREADGROUP";
                self.on_fetched(now, Fetch::Read, parsed.map(|entries| (entries, None)));
            }
            (true, None) => {
                self.reads.read_lost();
                self.read_lost();
            }
            // Asked before this part's connections were lost.
            (false, _) => self.read_lost(),
        }
        if self.state == State::Stopped || !self.links.control().is_up() {
            return;
        }
        self.pump(now);
        self.try_finish(now);
    }

    /// What a read lost (or answered too late) delivered is pending under
    /// this name: the replay finds it, with what was read ahead (handed
    /// back to be found in order).
    fn read_lost(&mut self) {
        self.ledger.drop_read_ahead();
        if self.state == State::Running {
            self.reads.replay_from_start(&self.cfg);
        }
    }

    /// The combined read's reply did not come in time: its connection
    /// (this part's read connection) fails like any timed-out reply's.
    pub(super) fn combined_read_timed_out(&mut self, now: Instant) {
        self.stats.errors += 1;
        self.connection_failed(
            now,
            Error::ReplyTimeout {
                command: "XREADGROUP",
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combined() -> CombinedReads {
        let cfg = ConsumerConfig::builder("a", "g", "c")
            .streams(["a", "b", "c"])
            .build()
            .unwrap();
        CombinedReads::new(&cfg)
    }

    fn ask(count: u64, block_ms: Option<u64>) -> ReadAsk {
        ReadAsk {
            count,
            block: block_ms.map(Duration::from_millis),
        }
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test's instant
    fn one_read_carries_every_stream_that_asks() {
        let now = Instant::now();
        let mut c = combined();
        assert_eq!(c.plan(&[(0, ask(10, Some(2000)))]), Plan::Wait, "not live");
        c.start(now);
        let asks = [(0, ask(10, Some(2000))), (2, ask(6, Some(500)))];
        assert_eq!(
            c.plan(&asks),
            Plan::Send {
                count: 6,
                block: Some(Duration::from_millis(500)),
                unblock: None,
            }
        );
        c.send(
            now,
            vec![(0, 1), (2, 1)],
            6,
            Some(Duration::from_millis(500)),
        );
        let bytes = c.take_bytes().unwrap();
        assert_eq!(
            bytes.as_ref(),
            b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n*13\r\n$10\r\nXREADGROUP\r\n$5\r\nGROUP\r\n$1\r\ng\r\n\
              $1\r\nc\r\n$5\r\nCOUNT\r\n$1\r\n6\r\n$5\r\nBLOCK\r\n$3\r\n500\r\n$7\r\nSTREAMS\r\n\
              $1\r\na\r\n$1\r\nc\r\n$1\r\n>\r\n$1\r\n>\r\n"
        );
        // A read that does not block, beside one that does: no BLOCK.
        let mut d = combined();
        d.start(now);
        let mixed = [(0, ask(10, None)), (1, ask(10, Some(2000)))];
        assert_eq!(
            d.plan(&mixed),
            Plan::Send {
                count: 10,
                block: None,
                unblock: None,
            }
        );
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test's instant
    fn behind_a_read_that_may_block_the_next_does_not_and_unblocks_it_once() {
        let now = Instant::now();
        let mut c = combined();
        c.start(now);
        c.feed(b":42\r\n");
        assert!(matches!(c.next_answer(), Ok(Some(Answer::ClientId))));
        c.send(now, vec![(0, 0)], 10, Some(Duration::from_secs(2)));
        let send = |block, unblock| Plan::Send {
            count: 10,
            block,
            unblock,
        };
        // A prefetch of its own stream goes behind it as it is.
        assert_eq!(c.plan(&[(0, ask(10, None))]), send(None, None));
        // Another stream's read goes behind it without BLOCK, and unblocks
        // it: it would hold that read back for its whole BLOCK.
        assert_eq!(c.plan(&[(1, ask(10, Some(2000)))]), send(None, Some(42)));
        let mixed = [(0, ask(10, None)), (1, ask(10, Some(2000)))];
        assert_eq!(c.plan(&mixed), send(None, Some(42)));
        c.unblock_sent();
        assert_eq!(
            c.plan(&[(1, ask(10, Some(2000)))]),
            send(None, None),
            "once"
        );
        c.send(now, vec![(1, 0)], 10, None);
        assert_eq!(
            c.plan(&[(2, ask(10, Some(2000)))]),
            Plan::Wait,
            "two out at most"
        );
        // Unblocked: a timeout's null answers every part with nothing.
        c.feed(b"*-1\r\n");
        let Ok(Some(Answer::Read(answers))) = c.next_answer() else {
            panic!("a read's answer")
        };
        assert_eq!(answers.len(), 1);
        assert!(matches!(&answers[0], (0, 0, Ok(e)) if e.is_empty()));
        // Behind a read that does not block, one that may.
        assert_eq!(
            c.plan(&[(2, ask(4, Some(2000)))]),
            Plan::Send {
                count: 4,
                block: Some(Duration::from_secs(2)),
                unblock: None,
            }
        );
        // No id known (not yet, or refused): no unblocking.
        let mut b = combined();
        b.start(now);
        b.send(now, vec![(0, 0)], 10, Some(Duration::from_secs(1)));
        assert_eq!(b.plan(&[(2, ask(10, None))]), send(None, None));
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test's instant
    fn replies_are_split_per_stream_and_errors_go_to_every_part() {
        let now = Instant::now();
        let mut c = combined();
        c.start(now);
        c.feed(b"-ERR no CLIENT here\r\n");
        assert!(matches!(c.next_answer(), Ok(Some(Answer::ClientId))));
        assert_eq!(c.client_id, None, "no id: no unblocking");
        c.send(now, vec![(1, 3), (2, 4)], 10, Some(Duration::from_secs(1)));
        c.feed(b"*1\r\n*2\r\n$1\r\nc\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nk\r\n$1\r\nv\r\n");
        let Ok(Some(Answer::Read(answers))) = c.next_answer() else {
            panic!("a read's answer")
        };
        let got: Vec<(usize, u64, usize)> = answers
            .iter()
            .map(|(i, e, r)| (*i, *e, r.as_ref().map_or(usize::MAX, Vec::len)))
            .collect();
        assert_eq!(got, [(1, 3, 0), (2, 4, 1)]);
        c.send(now, vec![(0, 0), (1, 3)], 10, None);
        c.feed(b"-NOGROUP No such key 'b'\r\n");
        let Ok(Some(Answer::Read(answers))) = c.next_answer() else {
            panic!("a read's answer")
        };
        assert!(answers.iter().all(|(_, _, r)| r.is_err()));
        // A reply nothing asked for.
        c.feed(b"+OK\r\n");
        assert!(c.next_answer().is_err());
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test's instant
    fn a_lost_connection_loses_every_read_out() {
        let now = Instant::now();
        let mut c = combined();
        c.start(now);
        c.send(now, vec![(0, 0), (2, 5)], 10, Some(Duration::from_secs(30)));
        c.send(now, vec![(2, 5)], 10, None);
        // A read behind a blocked one is not due before that one.
        let due: Vec<Instant> = c.out.iter().map(|o| o.deadline).collect();
        assert!(due[1] > due[0], "{due:?}");
        assert_eq!(c.deadline(), Some(due[0]));
        assert_eq!(c.stop(), [(0, 0), (2, 5), (2, 5)]);
        assert!(!c.is_live() && c.deadline().is_none() && c.take_bytes().is_none());
    }
}
