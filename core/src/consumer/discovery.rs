//! Discovery: where the data connections go. With a `redis+sentinel://`
//! target, the link to one sentinel at a time (asked for the master, then
//! subscribed to `+switch-master`); with a `redis+cluster://` one, a link
//! to one cluster node at a time, asked for the slot map whenever the
//! primary of the stream's slot may have changed, and closed once it
//! answered. Either way: the node last named, and what the consumer does
//! when it moves.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::cluster::{self, ClusterTarget, SlotMap, SlotMapQuestion};
use crate::config::ConnectOptions;
use crate::error::{Error, ServerErrorKind};
use crate::resp::Decoder;
use crate::sentinel::{hear, write_questions, Asked, Heard, SentinelTarget};
use crate::url::ServerAddr;

use super::lifecycle::{Backoff, Conn, Link};
use super::report::{Event, Warning};
use super::timers::Timer;
use super::{Consumer, State};

/// How often a cluster's slot map is asked for again while the data
/// connections are up (a `MOVED` reply or a lost connection asks at once).
pub(super) const CLUSTER_REFRESH: Duration = Duration::from_secs(15);

/// While the data connections are down, how often the cluster is asked
/// whether another node now serves the stream's slot (a promotion).
const CLUSTER_REASK: Duration = Duration::from_millis(500);

/// The link that finds the data node, and what it found.
#[derive(Debug)]
pub(super) struct Discovery {
    asks: Asks,
    /// The node asked, or to ask next (an index into the candidates).
    index: usize,
    /// Nodes that failed in a row since one last answered.
    failed_in_row: usize,
    link: DiscoveryLink,
    out: BytesMut,
    /// The data node last named.
    master: Option<ServerAddr>,
    /// In a cluster, while the stream's slot is being migrated and its key
    /// already moved (an `ASK`): the node it is moving to, where the data
    /// connections go, each command after an `ASKING`.
    asking: Option<ServerAddr>,
    /// Between rounds of nodes that all failed.
    backoff: Backoff,
}

/// Whom discovery asks, and what for.
#[derive(Debug)]
enum Asks {
    Sentinels(SentinelTarget),
    Cluster(ClusterAsk),
}

/// Asking a cluster for the primary of one slot.
#[derive(Debug)]
struct ClusterAsk {
    target: ClusterTarget,
    /// The stream's slot.
    slot: u16,
    /// The data nodes' login (cluster nodes are data nodes).
    login: ConnectOptions,
    /// Whether the nodes are spoken to over TLS (their TLS ports).
    tls: bool,
    /// The nodes of the last map, asked before the seeds.
    known: Vec<ServerAddr>,
}

#[derive(Debug)]
enum DiscoveryLink {
    /// None; one is asked for when [`Timer::Discovery`] passes.
    Down,
    Connecting,
    /// Open to a sentinel: replies awaited for `asked`; none left means
    /// subscribed.
    Sentinel {
        decoder: Decoder,
        asked: VecDeque<Asked>,
    },
    /// Open to a cluster node, asked for the slot map (closed once it
    /// answered).
    Cluster(SlotMapQuestion),
}

/// What the bytes on the link said.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Said {
    /// Nothing to act on.
    Nothing,
    /// The data node is there (an answer, or a failover's new master).
    Master(ServerAddr),
    /// This node is of no use (an error, a bad reply, a master it does
    /// not know, a slot it knows no primary of): close it and try the next.
    Failed(String),
}

impl Discovery {
    pub(super) fn sentinels(target: SentinelTarget, seed: u64) -> Self {
        Discovery::new(Asks::Sentinels(target), seed)
    }

    /// Asks the cluster `target` for the primary of `stream`'s slot, logged
    /// in as the data connections are.
    pub(super) fn cluster(
        target: ClusterTarget,
        stream: &[u8],
        login: &ConnectOptions,
        seed: u64,
    ) -> Self {
        Discovery::new(
            Asks::Cluster(ClusterAsk {
                target,
                slot: cluster::key_slot(stream),
                login: ConnectOptions {
                    username: login.username.clone(),
                    password: login.password.clone(),
                    ..ConnectOptions::default()
                },
                tls: login.tls.is_some(),
                known: Vec::new(),
            }),
            seed,
        )
    }

    fn new(asks: Asks, seed: u64) -> Self {
        Discovery {
            asks,
            index: 0,
            failed_in_row: 0,
            link: DiscoveryLink::Connecting,
            out: BytesMut::new(),
            master: None,
            asking: None,
            backoff: Backoff::new(seed),
        }
    }

    /// Whether this asks a cluster (not sentinels).
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.asks, Asks::Cluster(_))
    }

    /// How many nodes a round asks.
    fn candidates(&self) -> usize {
        match &self.asks {
            Asks::Sentinels(t) => t.sentinels.len(),
            Asks::Cluster(c) => c.round().count(),
        }
    }

    /// The node to connect to (or connected to).
    pub(super) fn address(&self) -> &ServerAddr {
        let i = self.index % self.candidates().max(1);
        match &self.asks {
            Asks::Sentinels(t) => &t.sentinels[i],
            Asks::Cluster(c) => c.candidate(i),
        }
    }

    /// The data node last named, if any.
    pub(super) fn master(&self) -> Option<&ServerAddr> {
        self.master.as_ref()
    }

    /// Where the data connections go: the node a migrating slot's key
    /// moved to (see [`ask_at`](Self::ask_at)), else the one last named.
    pub(super) fn data_node(&self) -> Option<&ServerAddr> {
        self.asking.as_ref().or(self.master.as_ref())
    }

    /// Whether the data connections are at a migration's target, each
    /// command after an `ASKING`.
    pub(super) fn is_asking_target(&self) -> bool {
        self.asking.is_some()
    }

    /// An `ASK`: the data connections go to `node` (each command after an
    /// `ASKING`) until the migration ends; the map stays as it was. Returns
    /// `false` when they are there already.
    pub(super) fn ask_at(&mut self, node: ServerAddr) -> bool {
        if self.asking.as_ref() == Some(&node) {
            return false;
        }
        self.asking = Some(node);
        true
    }

    /// The migration ended (a `MOVED`, or a map naming another node).
    pub(super) fn stop_asking(&mut self) {
        self.asking = None;
    }

    /// Whether a connection was asked for.
    pub(super) fn is_connecting(&self) -> bool {
        matches!(self.link, DiscoveryLink::Connecting)
    }

    /// Whether a link is open or being opened.
    pub(super) fn is_open(&self) -> bool {
        !matches!(self.link, DiscoveryLink::Down)
    }

    /// Whether the question is still unanswered.
    pub(super) fn is_asking(&self) -> bool {
        match &self.link {
            DiscoveryLink::Down => false,
            DiscoveryLink::Connecting => true,
            DiscoveryLink::Sentinel { asked, .. } => asked.contains(&Asked::Master),
            DiscoveryLink::Cluster(_) => true,
        }
    }

    /// A connection is asked for.
    pub(super) fn connecting(&mut self) {
        self.link = DiscoveryLink::Connecting;
    }

    /// The connection is open: the questions go out.
    pub(super) fn connected(&mut self) {
        self.out.clear();
        self.link = match &self.asks {
            Asks::Sentinels(target) => DiscoveryLink::Sentinel {
                asked: write_questions(&mut self.out, target, true).into(),
                decoder: Decoder::new(),
            },
            Asks::Cluster(c) => {
                let mut question = SlotMapQuestion::new(&c.login, self.address());
                if let Some(bytes) = question.take_bytes() {
                    self.out.extend_from_slice(&bytes);
                }
                DiscoveryLink::Cluster(question)
            }
        };
    }

    /// Bytes to write on the link.
    pub(super) fn take_bytes(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// Bytes from the link: what they said, the first failure or the
    /// last node named.
    pub(super) fn input(&mut self, bytes: &[u8]) -> Said {
        let heard = match (&mut self.link, &mut self.asks) {
            (DiscoveryLink::Sentinel { decoder, asked }, Asks::Sentinels(target)) => {
                hear_sentinel(decoder, asked, bytes, &target.master_name)
            }
            (DiscoveryLink::Cluster(question), Asks::Cluster(c)) => match question.input(bytes) {
                Ok(None) => {
                    // (`CLUSTER SLOTS`, where `CLUSTER SHARDS` is unknown.)
                    if let Some(more) = question.take_bytes() {
                        self.out.extend_from_slice(&more);
                    }
                    Ok(None)
                }
                Ok(Some(map)) => {
                    // Answered: nothing more is asked on this link.
                    self.link = DiscoveryLink::Down;
                    c.primary_in(&map).map(Some)
                }
                Err(reason) => Err(reason),
            },
            _ => Ok(None),
        };
        match heard {
            Ok(Some(addr)) => {
                self.failed_in_row = 0;
                self.backoff.reset();
                Said::Master(addr)
            }
            Ok(None) => Said::Nothing,
            Err(reason) => Said::Failed(reason),
        }
    }

    /// The data node named now; returns the one named before if it differs.
    pub(super) fn named(&mut self, master: ServerAddr) -> Option<Option<ServerAddr>> {
        if self.master.as_ref() == Some(&master) {
            return None;
        }
        self.asking = None;
        Some(self.master.replace(master))
    }

    /// The link is gone (or given up): the next node is tried, at once
    /// or, after a whole round failed, after the returned backoff.
    pub(super) fn lost(&mut self, initial: Duration, max: Duration) -> Option<Duration> {
        self.link = DiscoveryLink::Down;
        self.out.clear();
        let n = self.candidates().max(1);
        self.index = (self.index + 1) % n;
        self.failed_in_row += 1;
        if self.failed_in_row < n {
            return None;
        }
        self.failed_in_row = 0;
        Some(self.backoff.next(initial, max).1)
    }

    /// Asks the same node again (the data node seems to have moved):
    /// the link is dropped and opened anew.
    pub(super) fn ask_again(&mut self) {
        self.link = DiscoveryLink::Connecting;
        self.out.clear();
    }

    /// Closed (for good, or until the next question).
    pub(super) fn close(&mut self) {
        self.link = DiscoveryLink::Down;
        self.out.clear();
    }
}

impl ClusterAsk {
    /// A round's nodes: the last map's, then the seeds it did not name.
    fn round(&self) -> impl Iterator<Item = &ServerAddr> + '_ {
        let seeds = self.target.seeds.iter();
        self.known
            .iter()
            .chain(seeds.filter(|seed| !self.known.contains(seed)))
    }

    /// The node at `index` of a round.
    fn candidate(&self, index: usize) -> &ServerAddr {
        let n = self.round().count().max(1);
        self.round().nth(index % n).unwrap_or(&self.target.seeds[0])
    }

    /// The primary of the stream's slot in `map`; the map's nodes are asked
    /// first next time (the seeds may be gone by then).
    fn primary_in(&mut self, map: &SlotMap) -> Result<ServerAddr, String> {
        let mut known: Vec<ServerAddr> = Vec::new();
        for node in map.primaries().chain(map.replicas(self.slot)) {
            let addr = node.connect_addr(self.tls);
            if !known.contains(&addr) {
                known.push(addr);
            }
        }
        self.known = known;
        match map.owner(self.slot) {
            Some(owner) => Ok(owner.connect_addr(self.tls)),
            None => Err(format!(
                "its slot map has no primary for slot {} (the stream's): the cluster may be \
                 failing over",
                self.slot
            )),
        }
    }
}

/// A sentinel's replies in `bytes`: the last master named, nothing, or why
/// it is of no use.
fn hear_sentinel(
    decoder: &mut Decoder,
    asked: &mut VecDeque<Asked>,
    bytes: &[u8],
    master_name: &str,
) -> Result<Option<ServerAddr>, String> {
    decoder.feed(bytes);
    let mut named = None;
    loop {
        let frame = match decoder.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(named),
            Err(e) => return Err(e.to_string()),
        };
        match hear(asked.pop_front(), frame, master_name) {
            Ok(Heard::Master(addr)) => named = Some(addr),
            Ok(Heard::UnknownMaster) => {
                return Err(format!("it monitors no master named {master_name:?}"))
            }
            Ok(Heard::Ok | Heard::Other) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

impl Consumer {
    /// Where `conn` is to be opened: the sentinel or cluster node being
    /// asked, or the data node it named; `None` when nothing is discovered
    /// (the adapter's own address).
    pub fn connect_address(&self, conn: Conn) -> Option<&ServerAddr> {
        let discovery = self.discovery.as_ref()?;
        match conn {
            Conn::Discovery => Some(discovery.address()),
            Conn::Control | Conn::Read => discovery.data_node(),
        }
    }

    pub(super) fn discovery_connected(&mut self, now: Instant) {
        let Some(d) = self.discovery.as_mut().filter(|d| d.is_connecting()) else {
            return;
        };
        d.connected();
        self.timers
            .set(Timer::Discovery, now + self.cfg.reply_timeout);
    }

    pub(super) fn discovery_input(&mut self, now: Instant, bytes: &[u8]) {
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        match d.input(bytes) {
            Said::Nothing => {}
            Said::Master(addr) => {
                let cluster = d.is_cluster();
                if cluster {
                    // Answered: closed until the next question.
                    d.close();
                    self.events.push_back(Event::Disconnect(Conn::Discovery));
                } else if !d.is_asking() {
                    self.timers.cancel(Timer::Discovery);
                }
                let moved = self.master_named(addr);
                if cluster {
                    // While the data connections are down at a node still
                    // named, a promotion is waited for: asked again soon.
                    let waiting = !moved && !self.links.control().is_up();
                    let next = if waiting {
                        CLUSTER_REASK.max(self.cfg.reconnect_initial)
                    } else {
                        CLUSTER_REFRESH
                    };
                    self.timers.set(Timer::Discovery, now + next);
                }
            }
            Said::Failed(reason) => {
                self.events.push_back(Event::Disconnect(Conn::Discovery));
                self.discovery_lost(now, reason);
            }
        }
    }

    /// Opening or reading the discovery link failed with `error`: one
    /// retrying cannot mend (an untrusted certificate) stops the consumer,
    /// any other passes the question to the next node.
    pub(super) fn discovery_failed(&mut self, now: Instant, error: Error) {
        self.stats.errors += 1;
        if error.is_permanent_connection_failure() {
            return self.fatal(error);
        }
        if let Some(d) = self.discovery.as_mut() {
            d.close();
        }
        self.discovery_lost(now, error.to_string());
    }

    /// The discovery link failed (or was given up): the next node is
    /// asked, at once or after a backoff once all have failed.
    pub(super) fn discovery_lost(&mut self, now: Instant, reason: String) {
        let (initial, max) = (self.cfg.reconnect_initial, self.cfg.reconnect_max);
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        let node = d.address().clone();
        let cluster = d.is_cluster();
        let retry_in = d.lost(initial, max);
        self.warn(if cluster {
            Warning::ClusterNodeFailed {
                node,
                reason,
                retry_in,
            }
        } else {
            Warning::SentinelFailed {
                sentinel: node,
                reason,
                retry_in,
            }
        });
        match retry_in {
            None => self.connect_discovery(now),
            Some(delay) => self.timers.set(Timer::Discovery, now + delay),
        }
    }

    fn connect_discovery(&mut self, now: Instant) {
        if let Some(d) = self.discovery.as_mut() {
            d.connecting();
            self.events.push_back(Event::Connect(Conn::Discovery));
            // A node that accepts and never answers is given up too.
            self.timers.set(
                Timer::Discovery,
                now + self.cfg.connect_timeout + self.cfg.reply_timeout,
            );
        }
    }

    /// [`Timer::Discovery`] passed: the next node is asked (or the cluster
    /// again, for a fresh map), or the one being asked took too long.
    pub(super) fn discovery_timer(&mut self, now: Instant) {
        let Some(d) = self.discovery.as_ref() else {
            return;
        };
        if d.is_asking() {
            // Given up, being opened or open: the adapter closes it either
            // way, so a late `handle_connected` cannot leave it open.
            self.events.push_back(Event::Disconnect(Conn::Discovery));
            return self.discovery_lost(now, "no answer in time".into());
        }
        if !d.is_open() {
            self.connect_discovery(now);
        }
    }

    /// Discovery named the data node: the data connections go there (at
    /// once when it moved, dropping the old ones); whether it was another
    /// node than the one named before.
    fn master_named(&mut self, master: ServerAddr) -> bool {
        let Some(d) = self.discovery.as_mut() else {
            return false;
        };
        let Some(before) = d.named(master.clone()) else {
            return false;
        };
        if let Some(from) = before {
            self.warn(Warning::MasterMoved { from, to: master });
        }
        if self.state != State::Stopped {
            self.move_data_connections();
        }
        true
    }

    /// The data connections start over (at a new node), whatever they
    /// were doing: a read blocked on the old one is cut, not waited out.
    fn move_data_connections(&mut self) {
        if self.state == State::Stopped {
            return;
        }
        let open = self
            .links
            .used()
            .any(|c| !matches!(self.links.get(c), Link::Down));
        if open && self.drop_data_connections() {
            return;
        }
        self.timers.cancel(Timer::Reconnect);
        self.backoff.reset();
        let conns = self.links.all_connecting();
        self.events.extend(conns.into_iter().map(Event::Connect));
    }

    /// A data connection found the node no longer serves the stream
    /// (`READONLY`, `UNBLOCKED`, `ROLE`; in a cluster, a lost connection
    /// too): it is dropped as for any lost connection, and discovery asks
    /// again, so a new node is connected to as soon as it is named.
    pub(super) fn master_moved(&mut self, now: Instant, cause: Error) {
        self.connection_failed(now, cause);
        self.ask_again(now);
    }

    /// Discovery asks again now (a link open to a sentinel is dropped:
    /// its subscription may have missed the switch).
    fn ask_again(&mut self, now: Instant) {
        if self.state == State::Stopped {
            return;
        }
        if let Some(d) = self.discovery.as_mut() {
            if d.is_open() {
                self.events.push_back(Event::Disconnect(Conn::Discovery));
            }
            d.ask_again();
            self.connect_discovery(now);
        }
    }

    /// A `MOVED` or `ASK` reply in a cluster. `MOVED`: the stream's slot
    /// is served by another node now; the data connections go there at
    /// once, and the map is asked for again. `ASK`: the slot is being
    /// migrated and the stream's key has moved; the data connections go to
    /// the target, each command after an `ASKING`, until a `MOVED` or a map
    /// says the migration ended. Anything that cannot be acted on by moving
    /// (a redirect to where the connections are) is a lost connection.
    pub(super) fn slot_moved(&mut self, now: Instant, error: crate::error::ServerError) {
        let answered = self.connect_address(Conn::Control).cloned();
        let (to, ask) = match &error.kind {
            ServerErrorKind::Moved { addr, .. } => (parse_node(addr, answered.as_ref()), false),
            ServerErrorKind::Ask { addr, .. } => (parse_node(addr, answered.as_ref()), true),
            _ => (None, false),
        };
        let (Some(to), Some(d)) = (to, self.discovery.as_mut().filter(|d| d.is_cluster())) else {
            return self.master_moved(now, Error::Server(error));
        };
        if ask {
            if !d.ask_at(to) {
                return self.master_moved(now, Error::Server(error));
            }
            return self.move_data_connections();
        }
        if d.master() == Some(&to) {
            // Back where the connections were, or sent back by a target
            // that did not take the migration (aborted, or never set up:
            // an `ASK` and a `MOVED` could then send them to and fro):
            // a lost connection, with a backoff.
            d.stop_asking();
            return self.master_moved(now, Error::Server(error));
        }
        self.master_named(to);
        self.ask_again(now);
    }
}

impl Consumer {
    /// A redirect from the node a plain URL names: it is a cluster node.
    /// The consumer follows the cluster from now on, as if given a
    /// `redis+cluster://` URL seeded with the node the redirect names
    /// (whose map is asked for next), and follows the redirect.
    pub(super) fn discover_cluster_from(&mut self, now: Instant, error: crate::error::ServerError) {
        let seed = match &error.kind {
            ServerErrorKind::Moved { addr, .. } | ServerErrorKind::Ask { addr, .. } => {
                parse_node(addr, None)
            }
            _ => None,
        };
        let Some(seed) = seed else {
            return self.fatal(Error::Redirected(error));
        };
        let target = ClusterTarget { seeds: vec![seed] };
        let mut discovery = Discovery::cluster(
            target,
            &self.cfg.stream,
            &self.cfg.connect,
            self.backoff.random(),
        );
        // Not asking yet: the redirect names where to go, and a question
        // follows it.
        discovery.close();
        self.discovery = Some(discovery);
        self.slot_moved(now, error);
        // The map is asked for (an `ASK` alone does not ask).
        if !self.discovery.as_ref().is_some_and(Discovery::is_open) {
            self.ask_again(now);
        }
    }
}

/// `host:port` (a `MOVED`/`ASK` target; the host may be an IPv6 address
/// in brackets, or empty when the node knows no endpoint for itself: the
/// host of the node that answered).
fn parse_node(addr: &str, answered: Option<&ServerAddr>) -> Option<ServerAddr> {
    let (host, port) = cluster::split_redirect_addr(addr)?;
    let host = match host {
        "" => answered?.host.clone(),
        host => host.to_owned(),
    };
    Some(ServerAddr { host, port })
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
        let mut s = Discovery::sentinels(target(1), 1);
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
        let mut s = Discovery::sentinels(target(2), 1);
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

    #[test]
    fn a_cluster_node_is_asked_for_the_map_and_names_the_primary_of_the_slot() {
        let (target, _) =
            crate::parse_cluster_target("redis+cluster://127.0.0.1:7000,127.0.0.1:7001").unwrap();
        let login = ConnectOptions {
            username: Some("app".into()),
            password: Some("pw".into()),
            ..ConnectOptions::default()
        };
        // "foo" is in slot 12182, in 10923..16383 of the captured map:
        // 31003's.
        assert_eq!(cluster::key_slot(b"foo"), 12182);
        let mut d = Discovery::cluster(target, b"foo", &login, 1);
        assert!(d.is_cluster() && d.is_asking());
        assert_eq!(d.address().port, 7000);
        d.connected();
        let out = d.take_bytes().unwrap();
        assert_eq!(
            &out[..],
            &b"*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$2\r\npw\r\n*2\r\n$7\r\nCLUSTER\r\n$6\r\nSHARDS\r\n"[..]
        );
        assert_eq!(d.input(b"+OK\r\n"), Said::Nothing);
        assert!(d.is_asking());
        // The captured reply, split across reads.
        let reply = cluster::fixtures::SHARDS_RESP2;
        assert_eq!(d.input(&reply[..100]), Said::Nothing);
        let Said::Master(owner) = d.input(&reply[100..]) else {
            panic!("no primary named")
        };
        assert_eq!(owner.port, 31003);
        assert!(!d.is_asking());
        // The next round asks the map's nodes first, then the seeds.
        d.close();
        let (initial, max) = (Duration::from_millis(100), Duration::from_secs(1));
        let mut asked = vec![d.address().port];
        while d.lost(initial, max).is_none() {
            asked.push(d.address().port);
        }
        assert_eq!(asked.len(), 5, "{asked:?}");
        assert!(asked.contains(&31001) && asked.contains(&7000) && asked.contains(&7001));
        // An error or garbage is a failed node, not a panic.
        d.connecting();
        d.connected();
        d.take_bytes();
        d.input(b"+OK\r\n");
        assert!(
            matches!(d.input(b"-CLUSTERDOWN down\r\n"), Said::Failed(r) if r.contains("CLUSTERDOWN"))
        );
        d.connecting();
        d.connected();
        d.input(b"+OK\r\n");
        assert!(matches!(
            d.input(b"*1\r\n*3\r\n:0\r\n:5\r\n:7\r\n"),
            Said::Failed(_)
        ));
    }
}
