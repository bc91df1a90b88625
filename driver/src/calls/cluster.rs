//! [`Calls`] to a Redis Cluster (`redis+cluster://`): each call goes to
//! the primary of its keys' hash slot, over that node's own connection
//! (kept from call to call, one per node), after a node was asked for the
//! slot map.
//!
//! The map is asked for by the first call, and again by the first call
//! after it may have gone out of date (a connection to a node failed: a
//! failover may have happened; `TRYAGAIN`, `CLUSTERDOWN`, a redirect it
//! could not follow): the seeds, then the other nodes of the last map, are
//! asked in turn (starting with the last that answered), each over a
//! connection of its own (number 0), closed once it answered. `MOVED`
//! updates the map and sends the command again to the new owner (it was
//! not run); `ASK` sends it once to the node named, after `ASKING`, the map
//! unchanged.

use std::fmt;
use std::io;

use bytes::Bytes;
use xgroup_core::{
    Client, ClusterTarget, ConnectOptions, Error, ServerAddr, ServerError, ServerErrorKind,
    SlotMap, SlotMapQuestion,
};

use super::{send_round, Calls, Link, Step, Tried};
use crate::tls;

/// How many times one call's commands are sent again after `MOVED` or
/// `ASK`: past that, the redirect is the reply.
pub(super) const MAX_REDIRECTS: usize = 5;

/// The cluster a [`Calls`] sends to: the map, and how to ask for it.
pub(super) struct Cluster {
    target: ClusterTarget,
    /// Every node connection's login, protocol and TLS, as the URL says.
    opts: ConnectOptions,
    /// Whether the nodes are spoken to over TLS (their TLS ports).
    tls: bool,
    /// The slot map last given, kept current by `MOVED`.
    map: Option<SlotMap>,
    /// The map may be out of date: the next call asks for a new one
    /// first.
    pub(super) stale: bool,
    /// The nodes of the last map that are not seeds: asked after them.
    known: Vec<ServerAddr>,
    /// The node to ask first (the last that answered), an index into the
    /// seeds then `known`.
    next: usize,
    /// The asking under way.
    asking: Option<MapAsking>,
}

/// One round of asking for the map: the node asked, where it stands, and
/// why the others asked were of no use.
struct MapAsking {
    tried: Tried,
    stage: MapStage,
}

enum MapStage {
    Connect,
    Write(SlotMapQuestion, Bytes),
    Read(SlotMapQuestion),
}

impl Calls {
    /// Calls to the nodes of the cluster `target`'s seeds belong to: the
    /// first call asks a node for the slot map, and each call goes to the
    /// primary of its keys' slot (any primary for keyless commands) over
    /// that node's connection, opened with `opts` (login, protocol, TLS)
    /// and kept for the calls after. Keys in two slots fail the call before
    /// anything is sent.
    pub fn with_cluster(target: ClusterTarget, opts: ConnectOptions) -> Self {
        // Connection 0 only asks for the map: its client is never used.
        let mut calls = Calls::new(target.seeds[0].clone(), ConnectOptions::default());
        calls.cluster = Some(Box::new(Cluster {
            target,
            tls: opts.tls.is_some(),
            opts,
            map: None,
            stale: true,
            known: Vec::new(),
            next: 0,
            asking: None,
        }));
        calls
    }

    /// Whether the current call must ask for the map first.
    pub(super) fn map_needed(&self) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| c.map.is_none() || c.stale)
    }

    /// Whether a node is being asked for the map (what the adapter reports
    /// is about connection 0 then).
    pub(super) fn map_asking(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.asking.is_some())
    }

    /// The next step of asking for the map.
    pub(super) fn map_step(&mut self) -> Step<'_> {
        self.at = 0;
        let Some(c) = self.cluster.as_deref_mut() else {
            return Step::Done(Err(Error::Connection("not a cluster".into())));
        };
        let node = c.candidate(c.next).clone();
        let asking = c.asking.get_or_insert_with(|| MapAsking {
            tried: Tried::default(),
            stage: MapStage::Connect,
        });
        match &asking.stage {
            MapStage::Connect => {
                self.links[0].addr = node;
                Step::Connect(0, &self.links[0].addr)
            }
            MapStage::Write(_, bytes) => Step::Write(0, bytes.clone()),
            MapStage::Read(_) => Step::Read(0, &mut self.buf),
        }
    }

    pub(super) fn map_opened(&mut self, result: io::Result<()>) {
        let addr = self.links[0].addr.clone();
        let Some(c) = self.cluster.as_deref_mut() else {
            return;
        };
        let Some(asking) = c.asking.as_mut() else {
            return;
        };
        match result {
            Ok(()) => {
                self.links[0].down = None;
                let mut question = SlotMapQuestion::new(&c.opts, &addr);
                let bytes = question.take_bytes().unwrap_or_default();
                asking.stage = MapStage::Write(question, bytes);
            }
            Err(e) => {
                // A failed TLS handshake says why (a certificate for
                // another host, an unknown issuer...).
                let why = match tls::connect_error(&addr, &e) {
                    e @ Error::Tls { .. } => e.to_string(),
                    _ => e.to_string(),
                };
                self.map_failed(why);
            }
        }
    }

    pub(super) fn map_wrote(&mut self, result: io::Result<()>) {
        let Some(asking) = self.cluster.as_deref_mut().and_then(|c| c.asking.as_mut()) else {
            return;
        };
        match result {
            Ok(()) => {
                asking.stage = match std::mem::replace(&mut asking.stage, MapStage::Connect) {
                    MapStage::Write(question, _) => MapStage::Read(question),
                    other => other,
                };
            }
            Err(e) => self.map_failed(e.to_string()),
        }
    }

    pub(super) fn map_read(&mut self, result: io::Result<usize>) {
        let n = match result {
            Ok(0) => return self.map_failed("connection closed".into()),
            Ok(n) => n.min(self.buf.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) => return self.map_failed(e.to_string()),
        };
        let Some(asking) = self.cluster.as_deref_mut().and_then(|c| c.asking.as_mut()) else {
            return;
        };
        let MapStage::Read(question) = &mut asking.stage else {
            return;
        };
        match question.input(&self.buf[..n]) {
            Ok(None) => {
                // `CLUSTER SLOTS` after an unknown `CLUSTER SHARDS`.
                if let Some(bytes) = question.take_bytes() {
                    asking.stage = match std::mem::replace(&mut asking.stage, MapStage::Connect) {
                        MapStage::Read(question) => MapStage::Write(question, bytes),
                        other => other,
                    };
                }
            }
            Ok(Some(map)) => self.map_arrived(map),
            Err(reason) => self.map_failed(reason),
        }
    }

    /// The node asked is of no use: the next is asked, and once all have
    /// failed the call fails, saying why for each.
    fn map_failed(&mut self, reason: String) {
        let Some(c) = self.cluster.as_deref_mut() else {
            return;
        };
        let asked = c.candidate(c.next).clone();
        let candidates = c.candidates();
        c.next = (c.next + 1) % candidates;
        self.links[0].client.handle_disconnected(&reason);
        self.links[0].down = Some(reason.clone());
        let Some(asking) = c.asking.as_mut() else {
            return;
        };
        asking.stage = MapStage::Connect;
        let Some(reasons) = asking.tried.failed(&asked, reason, candidates) else {
            return;
        };
        let why = format!("no cluster node gave the slot map ({reasons})");
        c.asking = None;
        self.set_failed(Error::Connection(why));
    }

    /// A node gave the map: it is the one used from now on (and its nodes
    /// are asked next time, after the seeds); connections to nodes that
    /// are no longer primaries are closed.
    fn map_arrived(&mut self, map: SlotMap) {
        let Some(c) = self.cluster.as_deref_mut() else {
            return;
        };
        let asked = c.candidate(c.next).clone();
        let mut known = Vec::new();
        let nodes = map.ranges().flat_map(|(slots, primary)| {
            std::iter::once(primary).chain(map.replicas(*slots.start()))
        });
        for node in nodes {
            let addr = node.connect_addr(c.tls);
            if !c.target.seeds.contains(&addr) && !known.contains(&addr) {
                known.push(addr);
            }
        }
        c.known = known;
        c.next = (0..c.candidates())
            .find(|&i| *c.candidate(i) == asked)
            .unwrap_or(0);
        let primaries: Vec<ServerAddr> = map.primaries().map(|n| n.connect_addr(c.tls)).collect();
        c.map = Some(map);
        c.stale = false;
        c.asking = None;
        // The question's connection is closed: its job is done.
        self.links[0].down = Some("the slot map was given".into());
        for link in self.links.iter_mut().skip(1) {
            if link.down.is_none() && !primaries.contains(&link.addr) {
                let why = "the node is no longer a primary of the cluster";
                link.client.handle_disconnected(why);
                link.down = Some(why.into());
            }
        }
    }

    /// A call abandoned while asking for the map: the next asks anew.
    pub(super) fn abandon_map_question(&mut self) {
        if let Some(c) = self.cluster.as_deref_mut() {
            if c.asking.take().is_some() {
                self.links[0].down =
                    Some("a call was abandoned while asking for the slot map".into());
            }
        }
    }

    /// Sends the next commands of the call (those going to one node) to
    /// their node, over its connection.
    pub(super) fn route(&mut self) {
        let (Some(call), Some(c)) = (self.call.as_mut(), self.cluster.as_deref_mut()) else {
            return;
        };
        let Some((_, to)) = call.pending.first() else {
            return;
        };
        let to = to.clone();
        let (addr, asking) = match &to {
            Some((addr, asking)) => (addr.clone(), *asking),
            None => match c.node_for(call.slot, &self.links) {
                Ok(addr) => (addr, false),
                Err(why) => {
                    c.stale = true;
                    call.failed = Some(Error::Connection(why));
                    return;
                }
            },
        };
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut call.pending)
            .into_iter()
            .partition(|(_, t)| *t == to);
        call.pending = later;
        let i = link_for(&mut self.links, addr, &c.opts, &c.map, c.tls);
        let commands = now.iter().map(|&(n, _)| (n, &call.commands[n]));
        call.round = Some(send_round(i, &mut self.links[i].client, commands, asking));
        call.writing = false;
    }
}

impl Cluster {
    /// How many nodes a round of asking asks.
    fn candidates(&self) -> usize {
        self.target.seeds.len() + self.known.len()
    }

    /// The node at `index` of a round: the seeds, then the last map's
    /// other nodes.
    fn candidate(&self, index: usize) -> &ServerAddr {
        let index = index % self.candidates().max(1);
        match self.target.seeds.get(index) {
            Some(seed) => seed,
            None => &self.known[index - self.target.seeds.len()],
        }
    }

    /// Where commands of `slot` go: its primary; keyless ones (`None`) to
    /// a primary already connected to, or the first.
    fn node_for(&self, slot: Option<u16>, links: &[Link]) -> Result<ServerAddr, String> {
        let Some(map) = &self.map else {
            return Err("no slot map".into());
        };
        let Some(slot) = slot else {
            let mut primaries = map.primaries().map(|n| n.connect_addr(self.tls));
            let first = primaries.next();
            let connected = first.iter().cloned().chain(primaries).find(|addr| {
                links
                    .iter()
                    .skip(1)
                    .any(|l| l.addr == *addr && l.down.is_none())
            });
            return connected
                .or(first)
                .ok_or_else(|| "the cluster's slot map has no primary".into());
        };
        match map.owner(slot) {
            Some(node) => Ok(node.connect_addr(self.tls)),
            None => Err(format!(
                "no node of the cluster serves slot {slot} (the call's keys'): it may be \
                 failing over"
            )),
        }
    }

    /// Where a command answered with `e` by a node on `asked_host` goes
    /// again, if it does (with `redirect`, while the call may be sent
    /// again): `MOVED` updates the map and names the new owner, `ASK` the
    /// node to ask once (after `ASKING`). `TRYAGAIN`, `CLUSTERDOWN` and a
    /// redirect not followed leave the reply as it is and the map to be
    /// asked for again.
    pub(super) fn redirect(
        &mut self,
        e: &ServerError,
        asked_host: &str,
        redirect: bool,
    ) -> Option<(ServerAddr, bool)> {
        let followed = match &e.kind {
            ServerErrorKind::Moved { slot, addr } => {
                let map = self.map.get_or_insert_with(SlotMap::default);
                match map.moved(*slot, addr, asked_host) {
                    true => map.owner(*slot).map(|n| (n.connect_addr(self.tls), false)),
                    false => None,
                }
            }
            ServerErrorKind::Ask { slot, addr } => {
                let mut there = self.map.clone().unwrap_or_default();
                match there.moved(*slot, addr, asked_host) {
                    true => there.owner(*slot).map(|n| (n.connect_addr(self.tls), true)),
                    false => None,
                }
            }
            ServerErrorKind::TryAgain | ServerErrorKind::ClusterDown => {
                self.stale = true;
                return None;
            }
            _ => return None,
        };
        match followed {
            Some(to) if redirect => Some(to),
            _ => {
                self.stale = true;
                None
            }
        }
    }
}

/// The connection to `addr` (opened by the call if it is down): the one
/// it has, or a connection no longer in use (to a node that is not a
/// primary now), or a new one.
fn link_for(
    links: &mut Vec<Link>,
    addr: ServerAddr,
    opts: &ConnectOptions,
    map: &Option<SlotMap>,
    tls: bool,
) -> usize {
    if let Some(i) = (1..links.len()).find(|&i| links[i].addr == addr) {
        return i;
    }
    let in_use = |link: &Link| {
        link.down.is_none()
            || map
                .iter()
                .flat_map(SlotMap::primaries)
                .any(|n| n.connect_addr(tls) == link.addr)
    };
    let link = Link::new(addr, Client::new(opts.clone()));
    match (1..links.len()).find(|&i| !in_use(&links[i])) {
        Some(i) => {
            links[i] = link;
            i
        }
        None => {
            links.push(link);
            links.len() - 1
        }
    }
}

// By hand: the bytes of a question not yet written may hold the `AUTH`.
impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let asking = self.asking.as_ref().map(|a| {
            let stage = match a.stage {
                MapStage::Connect => "connect",
                MapStage::Write(..) => "write",
                MapStage::Read(_) => "read",
            };
            (&a.tried, stage)
        });
        f.debug_struct("Cluster")
            .field("target", &self.target)
            .field("opts", &self.opts)
            .field("map", &self.map)
            .field("stale", &self.stale)
            .field("known", &self.known)
            .field("next", &self.next)
            .field("asking", &asking)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use xgroup_core::{key_slot, Command, ConnectOptions, Error, ServerAddr, Value};

    use super::super::Step;
    use super::*;

    fn node(port: u16) -> ServerAddr {
        ServerAddr {
            host: "127.0.0.1".into(),
            port,
        }
    }

    /// Two seeds, 7000 and 7001, no login.
    fn cluster() -> Calls {
        cluster_with(ConnectOptions::default())
    }

    fn cluster_with(opts: ConnectOptions) -> Calls {
        let target = ClusterTarget {
            seeds: vec![node(7000), node(7001)],
        };
        Calls::with_cluster(target, opts)
    }

    /// `CLUSTER SLOTS` (RESP2): each range and its primary's port.
    fn slots(ranges: &[(u16, u16, u16)]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", ranges.len());
        for (start, end, port) in ranges {
            out += &format!("*3\r\n:{start}\r\n:{end}\r\n*2\r\n$9\r\n127.0.0.1\r\n:{port}\r\n");
        }
        out.into_bytes()
    }

    /// Slots 0-8191 on 7000 ("b" is in 3300), 8192-16383 on 7001 ("a" is
    /// in 15495).
    fn halves() -> Vec<u8> {
        assert!(key_slot(b"b") < 8192 && key_slot(b"a") >= 8192);
        slots(&[(0, 8191, 7000), (8192, 16383, 7001)])
    }

    fn get(key: &str) -> Command {
        Command::from_args(["GET", key])
    }

    /// Expects a `Connect` of connection `conn` to `port` (and reports it
    /// opened).
    fn connect(calls: &mut Calls, conn: usize, port: u16) {
        match calls.step() {
            Step::Connect(c, to) => assert_eq!((c, to.port), (conn, port)),
            other => panic!("expected a connect of {conn} to {port}, got {other:?}"),
        }
        calls.opened(Ok(()));
    }

    /// Expects a write on `conn` (and reports it written).
    fn write(calls: &mut Calls, conn: usize) -> Bytes {
        match calls.step() {
            Step::Write(c, bytes) => {
                assert_eq!(c, conn, "{bytes:?}");
                calls.wrote(Ok(()));
                bytes
            }
            other => panic!("expected a write on {conn}, got {other:?}"),
        }
    }

    fn feed(calls: &mut Calls, conn: usize, reply: &[u8]) {
        match calls.step() {
            Step::Read(c, buf) => {
                assert_eq!(c, conn);
                buf[..reply.len()].copy_from_slice(reply)
            }
            other => panic!("expected a read on {conn}, got {other:?}"),
        }
        calls.read(Ok(reply.len()));
    }

    fn done(calls: &mut Calls) -> Result<Vec<Value>, Error> {
        match calls.step() {
            Step::Done(result) => result,
            other => panic!("expected the end, got {other:?}"),
        }
    }

    /// The seed on `port` is asked for the map (over connection 0), says
    /// it does not know `CLUSTER SHARDS` (Redis 6.2), and gives `map` as
    /// `CLUSTER SLOTS`.
    fn give_map(calls: &mut Calls, port: u16, map: &[u8]) {
        connect(calls, 0, port);
        let asked = write(calls, 0);
        assert!(
            asked.ends_with(b"$7\r\nCLUSTER\r\n$6\r\nSHARDS\r\n"),
            "{asked:?}"
        );
        feed(
            calls,
            0,
            b"-ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.\r\n",
        );
        assert!(write(calls, 0).ends_with(b"$5\r\nSLOTS\r\n"));
        feed(calls, 0, map);
    }

    fn bulk(text: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(text.as_bytes()))
    }

    fn count(bytes: &[u8], needle: &[u8]) -> usize {
        bytes.windows(needle.len()).filter(|w| *w == needle).count()
    }

    #[test]
    fn the_map_is_asked_for_first_and_two_slots_go_to_two_nodes_each_over_its_own_connection() {
        let mut calls = cluster();
        calls.start(&[get("b")]);
        give_map(&mut calls, 7000, &halves());
        connect(&mut calls, 1, 7000);
        assert_eq!(count(&write(&mut calls, 1), b"GET"), 1);
        feed(&mut calls, 1, b"$2\r\nvb\r\n");
        assert_eq!(done(&mut calls), Ok(vec![bulk("vb")]));
        // The question's connection is closed, the node's kept.
        assert!(calls.is_down(0));
        assert!(!calls.is_down(1));

        calls.start(&[get("a")]);
        connect(&mut calls, 2, 7001);
        write(&mut calls, 2);
        feed(&mut calls, 2, b"$2\r\nva\r\n");
        assert_eq!(done(&mut calls), Ok(vec![bulk("va")]));

        // From now on, no connect and no question: each node's connection.
        for (key, conn, reply) in [("b", 1, "vb"), ("a", 2, "va"), ("{b}x", 1, "vb")] {
            calls.start(&[get(key)]);
            write(&mut calls, conn);
            feed(&mut calls, conn, format!("$2\r\n{reply}\r\n").as_bytes());
            assert_eq!(done(&mut calls), Ok(vec![bulk(reply)]));
        }
        // Keyless: over a connection already open.
        calls.start(&[Command::new("PING")]);
        write(&mut calls, 1);
        feed(&mut calls, 1, b"+PONG\r\n");
        assert!(done(&mut calls).is_ok());
        assert!(!calls.is_down(1) && !calls.is_down(2));
    }

    #[test]
    fn the_node_connections_log_in_and_no_debug_output_shows_the_password() {
        let opts = ConnectOptions {
            password: Some("pw-31c0".into()),
            ..ConnectOptions::default()
        };
        let mut calls = cluster_with(opts);
        calls.start(&[get("b")]);
        connect(&mut calls, 0, 7000);
        assert!(!format!("{calls:?}").contains("pw-31c0"));
        let asked = write(&mut calls, 0);
        assert!(asked.starts_with(b"*2\r\n$4\r\nAUTH\r\n$7\r\npw-31c0\r\n"));
        feed(&mut calls, 0, b"+OK\r\n");
        feed(&mut calls, 0, b"-ERR unknown subcommand\r\n");
        write(&mut calls, 0);
        feed(&mut calls, 0, &halves());
        connect(&mut calls, 1, 7000);
        assert!(!format!("{calls:?}").contains("pw-31c0"));
        let sent = write(&mut calls, 1);
        assert!(sent.starts_with(b"*2\r\n$4\r\nAUTH\r\n"), "{sent:?}");
        feed(&mut calls, 1, b"+OK\r\n$-1\r\n");
        assert_eq!(done(&mut calls), Ok(vec![Value::Nil]));
    }

    #[test]
    fn moved_sends_the_command_again_to_the_new_owner_and_updates_the_map() {
        let mut calls = cluster();
        calls.start(&[get("b")]);
        give_map(&mut calls, 7000, &halves());
        connect(&mut calls, 1, 7000);
        write(&mut calls, 1);
        feed(&mut calls, 1, b"-MOVED 3300 127.0.0.1:7001\r\n");
        connect(&mut calls, 2, 7001);
        assert_eq!(count(&write(&mut calls, 2), b"GET"), 1);
        feed(&mut calls, 2, b"$2\r\nvb\r\n");
        assert_eq!(done(&mut calls), Ok(vec![bulk("vb")]));
        // The map says so now: straight to 7001, no question asked.
        calls.start(&[get("b")]);
        write(&mut calls, 2);
        feed(&mut calls, 2, b"$2\r\nvb\r\n");
        assert_eq!(done(&mut calls), Ok(vec![bulk("vb")]));
        // The rest of the old owner's slots stay with it.
        calls.start(&[get("{b}2")]);
        assert_eq!(key_slot(b"{b}2"), 3300);
        write(&mut calls, 2);
        feed(&mut calls, 2, b"$-1\r\n");
        done(&mut calls).unwrap();
        calls.start(&[get("c")]);
        assert!(key_slot(b"c") < 8192);
        write(&mut calls, 1);
    }

    #[test]
    fn moved_is_followed_a_few_times_then_it_is_the_reply() {
        let mut calls = cluster();
        calls.start(&[get("b")]);
        give_map(&mut calls, 7000, &halves());
        connect(&mut calls, 1, 7000);
        write(&mut calls, 1);
        let mut conn = 1;
        for round in 0..=MAX_REDIRECTS {
            let (to, port) = if conn == 1 { (2, 7001) } else { (1, 7000) };
            feed(
                &mut calls,
                conn,
                format!("-MOVED 3300 127.0.0.1:{port}\r\n").as_bytes(),
            );
            if round == MAX_REDIRECTS {
                break;
            }
            if round == 0 {
                connect(&mut calls, 2, 7001);
            }
            write(&mut calls, to);
            conn = to;
        }
        let replies = done(&mut calls).unwrap();
        assert!(
            matches!(&replies[..], [Value::Error(e)] if e.message.starts_with("MOVED")),
            "{replies:?}"
        );
        // The map is asked for again before the next call.
        calls.start(&[get("b")]);
        assert!(matches!(calls.step(), Step::Connect(0, _)));
    }

    #[test]
    fn ask_sends_asking_and_the_command_once_to_the_node_named_and_leaves_the_map() {
        let mut calls = cluster();
        calls.start(&[get("b")]);
        give_map(&mut calls, 7000, &halves());
        connect(&mut calls, 1, 7000);
        write(&mut calls, 1);
        feed(&mut calls, 1, b"-ASK 3300 127.0.0.1:7002\r\n");
        connect(&mut calls, 2, 7002);
        let sent = write(&mut calls, 2);
        assert!(
            sent.starts_with(b"*1\r\n$6\r\nASKING\r\n*2\r\n$3\r\nGET\r\n"),
            "{sent:?}"
        );
        feed(&mut calls, 2, b"+OK\r\n$2\r\nvb\r\n");
        assert_eq!(done(&mut calls), Ok(vec![bulk("vb")]));
        // The map is unchanged: the slot's next call goes to 7000 again.
        calls.start(&[get("b")]);
        write(&mut calls, 1);
        feed(&mut calls, 1, b"$2\r\nvb\r\n");
        assert_eq!(done(&mut calls), Ok(vec![bulk("vb")]));
    }

    #[test]
    fn a_redirected_transaction_goes_again_whole() {
        let mut calls = cluster();
        let transaction = [
            Command::new("MULTI"),
            Command::from_args(["SET", "b", "1"]),
            Command::new("EXEC"),
        ];
        calls.start(&transaction);
        give_map(&mut calls, 7000, &halves());
        connect(&mut calls, 1, 7000);
        write(&mut calls, 1);
        feed(
            &mut calls,
            1,
            b"+OK\r\n-MOVED 3300 127.0.0.1:7001\r\n-EXECABORT Transaction discarded\r\n",
        );
        connect(&mut calls, 2, 7001);
        let sent = write(&mut calls, 2);
        for name in [&b"MULTI"[..], b"SET", b"EXEC"] {
            assert_eq!(count(&sent, name), 1, "{sent:?}");
        }
        feed(&mut calls, 2, b"+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n");
        let ok = || Value::Simple("OK".into());
        assert_eq!(
            done(&mut calls),
            Ok(vec![
                ok(),
                Value::Simple("QUEUED".into()),
                Value::Array(vec![ok()])
            ])
        );
    }

    #[test]
    fn keys_in_two_slots_fail_the_call_before_anything_is_sent() {
        let mut calls = cluster();
        calls.start(&[get("a"), get("b")]);
        let e = done(&mut calls).unwrap_err();
        let Error::Config(e) = e else {
            panic!("{e:?}");
        };
        assert!(
            e.reason.contains("slot 15495") && e.reason.contains("slot 3300"),
            "{e}"
        );
        // Nothing was asked either: the next call asks for the map.
        calls.start(&[get("a")]);
        give_map(&mut calls, 7000, &halves());
        connect(&mut calls, 1, 7001);
        let sent = write(&mut calls, 1);
        assert_eq!(count(&sent, b"GET"), 1, "{sent:?}");
    }

    #[test]
    fn when_no_seed_answers_the_call_fails_naming_each_and_why() {
        let mut calls = cluster();
        calls.start(&[get("a")]);
        assert!(matches!(calls.step(), Step::Connect(0, to) if to.port == 7000));
        calls.opened(Err(io::ErrorKind::ConnectionRefused.into()));
        connect(&mut calls, 0, 7001);
        write(&mut calls, 0);
        feed(
            &mut calls,
            0,
            b"-ERR This instance has cluster support disabled\r\n",
        );
        let Err(Error::Connection(why)) = done(&mut calls) else {
            panic!("expected a connection error");
        };
        assert!(
            why.starts_with("no cluster node gave the slot map ("),
            "{why}"
        );
        assert!(why.contains("127.0.0.1:7000: "), "{why}");
        assert!(
            why.contains("127.0.0.1:7001: ERR This instance has cluster support disabled"),
            "{why}"
        );
        // The next call asks again, from the seed after the last asked.
        calls.start(&[get("a")]);
        assert!(matches!(calls.step(), Step::Connect(0, to) if to.port == 7000));
    }

    #[test]
    fn a_seed_down_is_skipped_and_the_map_s_nodes_are_asked_after_the_seeds() {
        let mut calls = cluster();
        calls.start(&[get("b")]);
        assert!(matches!(calls.step(), Step::Connect(0, _)));
        calls.opened(Err(io::ErrorKind::ConnectionRefused.into()));
        // 7001 answers, with a third node, 7002, owning "a".
        give_map(
            &mut calls,
            7001,
            &slots(&[(0, 8191, 7000), (8192, 16383, 7002)]),
        );
        connect(&mut calls, 1, 7000);
        write(&mut calls, 1);
        // 7000 goes away: the call fails, the next asks for the map again,
        // first from the node that answered last (7001).
        calls.read(Ok(0));
        assert!(matches!(done(&mut calls), Err(Error::Connection(_))));
        assert!(calls.is_down(1));
        calls.start(&[get("b")]);
        for port in [7001, 7002, 7000] {
            assert!(matches!(calls.step(), Step::Connect(0, to) if to.port == port));
            calls.opened(Err(io::ErrorKind::ConnectionRefused.into()));
        }
        let Err(Error::Connection(why)) = done(&mut calls) else {
            panic!("expected a connection error");
        };
        assert_eq!(why.matches("127.0.0.1:").count(), 3, "{why}");
    }

    #[test]
    fn garbage_from_a_node_is_an_error_never_a_panic() {
        let mut calls = cluster();
        calls.start(&[get("b")]);
        // From the node asked for the map: the next is asked.
        connect(&mut calls, 0, 7000);
        write(&mut calls, 0);
        feed(&mut calls, 0, b"?garbage\r\n");
        connect(&mut calls, 0, 7001);
        write(&mut calls, 0);
        feed(
            &mut calls,
            0,
            b"*1\r\n*3\r\n:0\r\n:99999\r\n*2\r\n$1\r\nx\r\n:1\r\n",
        );
        let Err(Error::Connection(why)) = done(&mut calls) else {
            panic!("expected a connection error");
        };
        assert!(
            why.contains("127.0.0.1:7000: ") && why.contains("127.0.0.1:7001: "),
            "{why}"
        );
        // From a data node: a protocol error, and the map is asked for again.
        calls.start(&[get("b")]);
        give_map(&mut calls, 7000, &halves());
        connect(&mut calls, 1, 7000);
        write(&mut calls, 1);
        feed(&mut calls, 1, b"!what\r\n");
        assert!(matches!(done(&mut calls), Err(Error::Protocol(_))));
        assert!(calls.is_down(1));
        calls.start(&[get("b")]);
        give_map(&mut calls, 7000, &halves());
        connect(&mut calls, 1, 7000);
        // Redirects that make no sense are the reply.
        write(&mut calls, 1);
        feed(&mut calls, 1, b"-MOVED 99999 nowhere\r\n");
        let replies = done(&mut calls).unwrap();
        assert!(matches!(&replies[..], [Value::Error(_)]), "{replies:?}");
    }

    #[test]
    fn tryagain_and_clusterdown_are_replies_and_the_map_is_asked_for_again() {
        for error in [
            &b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"[..],
            b"-CLUSTERDOWN The cluster is down\r\n",
        ] {
            let mut calls = cluster();
            calls.start(&[get("b")]);
            give_map(&mut calls, 7000, &halves());
            connect(&mut calls, 1, 7000);
            write(&mut calls, 1);
            feed(&mut calls, 1, error);
            let replies = done(&mut calls).unwrap();
            assert!(
                matches!(&replies[..], [Value::Error(e)] if e.is_transient()),
                "{replies:?}"
            );
            // A new map first; the node's connection is still the one.
            calls.start(&[get("b")]);
            give_map(&mut calls, 7000, &halves());
            write(&mut calls, 1);
        }
    }

    #[test]
    fn a_call_abandoned_while_asking_for_the_map_leaves_the_next_one_asking_anew() {
        let mut calls = cluster();
        calls.start(&[get("b")]);
        connect(&mut calls, 0, 7000);
        write(&mut calls, 0);
        assert!(matches!(calls.step(), Step::Read(0, _)));
        calls.start(&[get("a")]);
        assert!(calls.is_down(0));
        give_map(&mut calls, 7000, &halves());
        connect(&mut calls, 1, 7001);
        let sent = write(&mut calls, 1);
        assert_eq!(count(&sent, b"GET"), 1, "{sent:?}");
        assert_eq!(count(&sent, b"$1\r\nb"), 0, "{sent:?}");
    }

    #[test]
    fn a_new_map_closes_the_connections_to_nodes_no_longer_primaries() {
        let mut calls = cluster();
        calls.start(&[get("a")]);
        give_map(&mut calls, 7000, &halves());
        connect(&mut calls, 1, 7001);
        write(&mut calls, 1);
        feed(&mut calls, 1, b"-CLUSTERDOWN The cluster is down\r\n");
        done(&mut calls).unwrap();
        // 7001 failed over to 7003.
        calls.start(&[get("a")]);
        give_map(
            &mut calls,
            7000,
            &slots(&[(0, 8191, 7000), (8192, 16383, 7003)]),
        );
        assert!(calls.is_down(1));
        // Its connection's number is used again.
        connect(&mut calls, 1, 7003);
        write(&mut calls, 1);
    }

    #[test]
    fn over_tls_each_node_is_connected_to_on_its_tls_port_under_its_own_name() {
        let opts = ConnectOptions {
            tls: Some(xgroup_core::TlsOptions::new()),
            ..ConnectOptions::default()
        };
        let mut calls = cluster_with(opts);
        calls.start(&[get("b")]);
        connect(&mut calls, 0, 7000);
        write(&mut calls, 0);
        let shards = b"*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n\
            *1\r\n*10\r\n$8\r\nendpoint\r\n$14\r\nnode-a.example\r\n$4\r\nport\r\n:7000\r\n\
            $8\r\ntls-port\r\n:7100\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$6\r\nhealth\r\n\
            $6\r\nonline\r\n";
        feed(&mut calls, 0, shards);
        // The adapter verifies the certificate for the address it is given.
        match calls.step() {
            Step::Connect(1, to) => assert_eq!(to.to_socket_string(), "node-a.example:7100"),
            other => panic!("expected a connect, got {other:?}"),
        }
    }
}
