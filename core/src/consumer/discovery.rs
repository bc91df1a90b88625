//! Following a Sentinel-monitored master: the link to one sentinel at a
//! time (asked for the master, then subscribed to `+switch-master`), the
//! master it named, and what the consumer does when the master moves.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::error::Error;
use crate::resp::Decoder;
use crate::sentinel::{hear, write_questions, Asked, Heard, SentinelTarget};
use crate::url::ServerAddr;

use super::lifecycle::{Backoff, Conn, Link};
use super::report::{Event, Warning};
use super::timers::Timer;
use super::{Consumer, State};

/// The link to the sentinels and what they said.
#[derive(Debug)]
pub(super) struct Discovery {
    target: SentinelTarget,
    /// The sentinel asked, or to ask next.
    index: usize,
    /// Discovery that failed in a row since one last answered.
    failed_in_row: usize,
    link: SentinelLink,
    out: BytesMut,
    /// The master last named.
    master: Option<ServerAddr>,
    /// Between rounds of sentinels that all failed.
    backoff: Backoff,
}

#[derive(Debug)]
enum SentinelLink {
    /// None; one is asked for when [`Timer::Discovery`] passes.
    Down,
    Connecting,
    /// Open: replies awaited for `asked`; none left means subscribed.
    Up {
        decoder: Decoder,
        asked: VecDeque<Asked>,
    },
}

/// What a sentinel's bytes said.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Said {
    /// Nothing to act on.
    Nothing,
    /// The master is there (an answer, or a failover's new master).
    Master(ServerAddr),
    /// This sentinel is of no use (an error, a bad reply, a master it does
    /// not know): close it and try the next.
    Failed(String),
}

impl Discovery {
    pub(super) fn new(target: SentinelTarget, seed: u64) -> Self {
        Discovery {
            target,
            index: 0,
            failed_in_row: 0,
            link: SentinelLink::Connecting,
            out: BytesMut::new(),
            master: None,
            backoff: Backoff::new(seed),
        }
    }

    /// The sentinel to connect to (or connected to).
    pub(super) fn address(&self) -> &ServerAddr {
        &self.target.sentinels[self.index % self.target.sentinels.len()]
    }

    /// The master last named, if any.
    pub(super) fn master(&self) -> Option<&ServerAddr> {
        self.master.as_ref()
    }

    /// Whether a connection was asked for.
    pub(super) fn is_connecting(&self) -> bool {
        matches!(self.link, SentinelLink::Connecting)
    }

    /// Whether a link is open or being opened.
    pub(super) fn is_open(&self) -> bool {
        !matches!(self.link, SentinelLink::Down)
    }

    /// Whether the master question is still unanswered.
    pub(super) fn is_asking(&self) -> bool {
        match &self.link {
            SentinelLink::Down => false,
            SentinelLink::Connecting => true,
            SentinelLink::Up { asked, .. } => asked.contains(&Asked::Master),
        }
    }

    /// A connection is asked for.
    pub(super) fn connecting(&mut self) {
        self.link = SentinelLink::Connecting;
    }

    /// The connection is open: the questions go out.
    pub(super) fn connected(&mut self) {
        self.out.clear();
        let asked = write_questions(&mut self.out, &self.target, true).into();
        self.link = SentinelLink::Up {
            decoder: Decoder::new(),
            asked,
        };
    }

    /// Bytes to write to the sentinel.
    pub(super) fn take_bytes(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// Bytes from the sentinel: what they said, the first failure or the
    /// last master named.
    pub(super) fn input(&mut self, bytes: &[u8]) -> Said {
        let SentinelLink::Up { decoder, asked } = &mut self.link else {
            return Said::Nothing;
        };
        decoder.feed(bytes);
        let mut said = Said::Nothing;
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return said,
                Err(e) => return Said::Failed(e.to_string()),
            };
            let question = asked.pop_front();
            match hear(question, frame, &self.target.master_name) {
                Ok(Heard::Master(addr)) => {
                    self.failed_in_row = 0;
                    self.backoff.reset();
                    said = Said::Master(addr);
                }
                Ok(Heard::UnknownMaster) => {
                    return Said::Failed(format!(
                        "it monitors no master named {:?}",
                        self.target.master_name
                    ))
                }
                Ok(Heard::Ok | Heard::Other) => {}
                Err(e) => return Said::Failed(e.to_string()),
            }
        }
    }

    /// The master named now; returns the one named before if it differs.
    pub(super) fn named(&mut self, master: ServerAddr) -> Option<Option<ServerAddr>> {
        if self.master.as_ref() == Some(&master) {
            return None;
        }
        Some(self.master.replace(master))
    }

    /// The link is gone (or given up): the next sentinel is tried, at once
    /// or, after a whole round failed, after the returned backoff.
    pub(super) fn lost(&mut self, initial: Duration, max: Duration) -> Option<Duration> {
        self.link = SentinelLink::Down;
        self.out.clear();
        self.index = (self.index + 1) % self.target.sentinels.len();
        self.failed_in_row += 1;
        if self.failed_in_row < self.target.sentinels.len() {
            return None;
        }
        self.failed_in_row = 0;
        Some(self.backoff.next(initial, max).1)
    }

    /// Asks the same sentinel again (the master seems to have moved):
    /// the link is dropped and opened anew.
    pub(super) fn ask_again(&mut self) {
        self.link = SentinelLink::Connecting;
        self.out.clear();
    }

    /// Closed for good.
    pub(super) fn close(&mut self) {
        self.link = SentinelLink::Down;
        self.out.clear();
    }
}

impl Consumer {
    /// Where `conn` is to be opened: the sentinel being asked, or the
    /// master it named; `None` when the consumer follows no sentinels (the
    /// adapter's own address).
    pub fn connect_address(&self, conn: Conn) -> Option<&ServerAddr> {
        let sentinels = self.discovery.as_ref()?;
        match conn {
            Conn::Discovery => Some(sentinels.address()),
            Conn::Control | Conn::Read => sentinels.master(),
        }
    }

    pub(super) fn sentinel_connected(&mut self, now: Instant) {
        let Some(s) = self.discovery.as_mut().filter(|s| s.is_connecting()) else {
            return;
        };
        s.connected();
        self.timers
            .set(Timer::Discovery, now + self.cfg.reply_timeout);
    }

    pub(super) fn sentinel_input(&mut self, now: Instant, bytes: &[u8]) {
        let Some(s) = self.discovery.as_mut() else {
            return;
        };
        match s.input(bytes) {
            Said::Nothing => {}
            Said::Master(addr) => {
                if !self.discovery.as_ref().is_some_and(Discovery::is_asking) {
                    self.timers.cancel(Timer::Discovery);
                }
                self.master_named(addr);
            }
            Said::Failed(reason) => {
                self.events.push_back(Event::Disconnect(Conn::Discovery));
                self.sentinel_lost(now, reason);
            }
        }
    }

    /// Opening or reading the sentinel link failed with `error`: one
    /// retrying cannot mend (an untrusted certificate) stops the consumer,
    /// any other passes the question to the next sentinel.
    pub(super) fn sentinel_failed(&mut self, now: Instant, error: Error) {
        self.stats.errors += 1;
        if error.is_permanent_connection_failure() {
            return self.fatal(error);
        }
        if let Some(s) = self.discovery.as_mut() {
            s.close();
        }
        self.sentinel_lost(now, error.to_string());
    }

    /// The sentinel link failed (or was given up): the next sentinel is
    /// asked, at once or after a backoff once all have failed.
    pub(super) fn sentinel_lost(&mut self, now: Instant, reason: String) {
        let (initial, max) = (self.cfg.reconnect_initial, self.cfg.reconnect_max);
        let Some(s) = self.discovery.as_mut() else {
            return;
        };
        let sentinel = s.address().clone();
        let retry_in = s.lost(initial, max);
        self.warn(Warning::SentinelFailed {
            sentinel,
            reason,
            retry_in,
        });
        match retry_in {
            None => self.connect_sentinel(now),
            Some(delay) => self.timers.set(Timer::Discovery, now + delay),
        }
    }

    fn connect_sentinel(&mut self, now: Instant) {
        if let Some(s) = self.discovery.as_mut() {
            s.connecting();
            self.events.push_back(Event::Connect(Conn::Discovery));
            // A sentinel that accepts and never answers is given up too.
            self.timers.set(
                Timer::Discovery,
                now + self.cfg.connect_timeout + self.cfg.reply_timeout,
            );
        }
    }

    /// [`Timer::Discovery`] passed: the next sentinel is asked, or the one
    /// being asked took too long.
    pub(super) fn sentinel_timer(&mut self, now: Instant) {
        let Some(s) = self.discovery.as_ref() else {
            return;
        };
        if s.is_asking() {
            // Given up, being opened or open: the adapter closes it either
            // way, so a late `handle_connected` cannot leave it open.
            self.events.push_back(Event::Disconnect(Conn::Discovery));
            return self.sentinel_lost(now, "no answer in time".into());
        }
        if !s.is_open() {
            self.connect_sentinel(now);
        }
    }

    /// A sentinel named the master: the data connections go there (at
    /// once when it moved, dropping the old ones).
    fn master_named(&mut self, master: ServerAddr) {
        let Some(s) = self.discovery.as_mut() else {
            return;
        };
        let Some(before) = s.named(master.clone()) else {
            return;
        };
        if let Some(from) = before {
            self.warn(Warning::MasterMoved { from, to: master });
        }
        if self.state == State::Stopped {
            return;
        }
        // Whatever the data connections were doing, they start over at the
        // new master: a read blocked on the old one is cut, not waited out.
        let open = self
            .links
            .used()
            .any(|c| !matches!(self.links.get(c), Link::Down));
        if open {
            self.close_all();
            self.outbox.clear();
            self.ledger.connection_lost();
            self.timers.disarm_connection();
            if self.state == State::Draining && self.ledger.is_settled() {
                return self.finish(None);
            }
        }
        self.timers.cancel(Timer::Reconnect);
        self.backoff.reset();
        let conns = self.links.all_connecting();
        self.events.extend(conns.into_iter().map(Event::Connect));
    }

    /// A data connection found the node is no longer the master
    /// (`READONLY`, `UNBLOCKED`, `ROLE`): it is dropped as for any lost
    /// connection, and the sentinel is asked again, so a new master is
    /// connected to as soon as it is named.
    pub(super) fn master_moved(&mut self, now: Instant, cause: Error) {
        self.connection_failed(now, cause);
        if let Some(s) = self.discovery.as_mut() {
            if s.is_open() {
                self.events.push_back(Event::Disconnect(Conn::Discovery));
            }
            s.ask_again();
            self.connect_sentinel(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(n: u16) -> SentinelTarget {
        SentinelTarget {
            sentinels: (0..n)
                .map(|i| ServerAddr {
                    host: "127.0.0.1".into(),
                    port: 26379 + i,
                })
                .collect(),
            master_name: "m".into(),
            username: None,
            password: None,
        }
    }

    #[test]
    fn asks_subscribes_and_hears_the_master_then_its_switches() {
        let mut s = Discovery::new(target(1), 1);
        assert!(s.is_connecting() && s.is_asking());
        s.connected();
        let out = s.take_bytes().unwrap();
        assert!(out.starts_with(b"*3\r\n$8\r\nSENTINEL\r\n"), "{out:?}");
        assert!(s.take_bytes().is_none());
        // An answer split across reads.
        assert_eq!(s.input(b"*2\r\n$9\r\n127.0.0.1\r\n"), Said::Nothing);
        let first = ServerAddr {
            host: "127.0.0.1".into(),
            port: 6380,
        };
        assert_eq!(s.input(b"$4\r\n6380\r\n"), Said::Master(first.clone()));
        assert!(!s.is_asking());
        assert_eq!(s.named(first.clone()), Some(None));
        assert_eq!(s.named(first.clone()), None);
        let switch = b"*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$34\r\nm 127.0.0.1 6380 127.0.0.1 6381 xx\r\n*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$31\r\nm 127.0.0.1 6380 127.0.0.1 6381\r\n";
        let second = ServerAddr {
            host: "127.0.0.1".into(),
            port: 6381,
        };
        assert_eq!(s.input(switch), Said::Master(second.clone()));
        assert_eq!(s.named(second), Some(Some(first)));
    }

    #[test]
    fn a_sentinel_that_fails_passes_the_question_to_the_next_and_a_failed_round_backs_off() {
        let mut s = Discovery::new(target(2), 1);
        s.connected();
        assert!(matches!(s.input(b"*-1\r\n"), Said::Failed(r) if r.contains("no master named")));
        let (initial, max) = (Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(s.lost(initial, max), None);
        assert_eq!(s.address().port, 26380);
        s.connecting();
        s.connected();
        assert!(matches!(s.input(b"-ERR no\r\n"), Said::Failed(_)));
        let wait = s.lost(initial, max).expect("a round failed");
        assert!(wait <= initial);
        assert_eq!(s.address().port, 26379);
        assert!(!s.is_open());
        // An answer ends the streak.
        s.connecting();
        s.connected();
        assert!(matches!(
            s.input(b"*2\r\n$1\r\nh\r\n$1\r\n1\r\n"),
            Said::Master(_)
        ));
        assert_eq!(s.lost(initial, max), None);
        // Garbage is a failure, not a panic.
        s.connecting();
        s.connected();
        assert!(matches!(s.input(b"*2\r\n$x\r\n"), Said::Failed(_)));
    }
}
