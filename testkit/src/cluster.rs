//! A Redis Cluster for tests: primaries and their replicas, each a real
//! `redis-server --cluster-enabled yes` process on a free port in its own
//! temporary directory, joined by hand (`CLUSTER ADDSLOTS`, `MEET`,
//! `REPLICATE`) so that any size works, one primary included, on Redis 6.2
//! too.

use std::collections::HashMap;
use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use crate::resp::RespValue;
use crate::server::{RedisServer, RedisServerBuilder};

/// Hash slots of a Redis Cluster.
const SLOTS: u16 = 16384;
/// How long the cluster may take to form, fail over, rejoin or settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the waits ask again.
const POLL: Duration = Duration::from_millis(50);
/// `--cluster-node-timeout`: a primary is failed over about 2 s after it
/// stops answering.
const NODE_TIMEOUT_MS: &str = "1000";
/// Keys per `MIGRATE` in [`Migration::finish`].
const MIGRATE_BATCH: usize = 100;
/// `MIGRATE`'s own timeout, in milliseconds.
const MIGRATE_TIMEOUT_MS: &str = "5000";

/// Options of a [`ClusterSet`]; see [`ClusterSet::builder`].
#[derive(Debug, Clone)]
pub struct ClusterSetBuilder {
    primaries: usize,
    replicas_per_primary: usize,
    persistent: bool,
}

impl Default for ClusterSetBuilder {
    fn default() -> Self {
        ClusterSetBuilder {
            primaries: 3,
            replicas_per_primary: 1,
            persistent: false,
        }
    }
}

impl ClusterSetBuilder {
    /// How many primaries share the 16384 slots (evenly, in ranges, in
    /// order of creation); 3 by default.
    ///
    /// # Panics
    ///
    /// If `n` is 0 or more than 16384.
    pub fn primaries(mut self, n: usize) -> Self {
        assert!(
            (1..=usize::from(SLOTS)).contains(&n),
            "a cluster has 1 to 16384 primaries, not {n}"
        );
        self.primaries = n;
        self
    }

    /// How many replicas each primary gets; 1 by default, 0 for none (no
    /// failover then).
    pub fn replicas_per_primary(mut self, r: usize) -> Self {
        self.replicas_per_primary = r;
        self
    }

    /// Whether each node keeps its data across a restart (an append-only
    /// file, fsynced on every write); off by default (a restarted node
    /// comes back empty).
    pub fn persistent(mut self, on: bool) -> Self {
        self.persistent = on;
        self
    }

    /// Starts every node, makes them one cluster and waits until it is
    /// settled (see [`ClusterSet::wait_for_ok`]).
    ///
    /// # Panics
    ///
    /// If a node does not come up, or the cluster does not settle within
    /// 20 s (the message names the node and what it says).
    pub fn start(self) -> ClusterSet {
        let node_options = ClusterSet::node_builder()
            .aof(self.persistent)
            .appendfsync_always(self.persistent);
        let count = self.primaries * (1 + self.replicas_per_primary);
        let nodes: Vec<RedisServer> = (0..count).map(|_| node_options.clone().start()).collect();
        let ids = nodes
            .iter()
            .map(|node| {
                let reply = node.cmd(&["CLUSTER", "MYID"]);
                reply
                    .as_str()
                    .unwrap_or_else(|| panic!("CLUSTER MYID on {} answered {reply:?}", node.port()))
                    .to_owned()
            })
            .collect();
        let set = ClusterSet {
            nodes,
            ids,
            killed_slots: HashMap::new(),
        };
        set.create(self.primaries);
        set
    }
}

/// A Redis Cluster of real `redis-server` processes: by default 3
/// primaries with 1 replica each. Dropping it kills every process; the
/// processes are also killed when the test process exits, so a
/// `ClusterSet` may live in a `static` shared by a binary's tests.
///
/// The nodes fail over quickly (`--cluster-node-timeout 1000`: about 2 s
/// after a primary dies), a replica may always be promoted
/// (`--cluster-replica-validity-factor 0`), replicas stay with their
/// primary (`--cluster-allow-replica-migration no`), and nothing is
/// persisted (`--save '' --appendonly no`): a restarted node comes back
/// empty, but as the same node (its `nodes.conf` is kept).
///
/// Questions about the topology (which node is a primary, which serves a
/// slot) are answered by the first running node's `CLUSTER NODES`: right
/// after a failover or migration, wait for the cluster to agree first
/// ([`wait_for_promotion`](Self::wait_for_promotion),
/// [`wait_for_ok`](Self::wait_for_ok)).
///
/// ```no_run
/// use xgroup_testkit::ClusterSet;
///
/// let mut cluster = ClusterSet::start();
/// let url = cluster.url(); // redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...
/// let old = cluster.primary_for_key("orders");
/// cluster.kill(old);
/// let new = cluster.wait_for_promotion(old);
/// assert_eq!(cluster.primary_for_key("orders"), new);
/// cluster.restart(old); // back as a replica of `new`
/// ```
#[derive(Debug)]
pub struct ClusterSet {
    /// Primaries first (as created), then each primary's replicas in turn.
    nodes: Vec<RedisServer>,
    /// Node ids, by the index in `nodes` (they survive restarts).
    ids: Vec<String>,
    /// The slot ranges each killed primary served when it was killed.
    killed_slots: HashMap<u16, Vec<(u16, u16)>>,
}

impl ClusterSet {
    /// Starts 3 primaries with 1 replica each; see
    /// [`ClusterSetBuilder::start`].
    pub fn start() -> ClusterSet {
        Self::builder().start()
    }

    /// Options: how many primaries, how many replicas each.
    pub fn builder() -> ClusterSetBuilder {
        ClusterSetBuilder::default()
    }

    /// The options of every node.
    fn node_builder() -> RedisServerBuilder {
        RedisServer::builder()
            .cluster_enabled(true)
            .kill_on_exit(true)
            .extra_args(&[
                "--cluster-node-timeout",
                NODE_TIMEOUT_MS,
                "--cluster-replica-validity-factor",
                "0",
                "--cluster-allow-replica-migration",
                "no",
                // A replica syncs at once, not after the default 5 s wait
                // for others to share a diskless transfer.
                "--repl-diskless-sync-delay",
                "0",
            ])
    }

    /// Gives the first `primaries` nodes their slots, has every node meet
    /// the first, makes the others replicas and waits until it is settled.
    fn create(&self, primaries: usize) {
        let total = usize::from(SLOTS);
        for (i, node) in self.nodes.iter().enumerate() {
            // Distinct epochs from the start, as `redis-cli --cluster create`
            // does, rather than collisions resolved later.
            expect_ok(node, &["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()]);
            if i < primaries {
                let first = i * total / primaries;
                let last = (i + 1) * total / primaries - 1;
                // `ADDSLOTS` with every slot: Redis 6.2 has no
                // `ADDSLOTSRANGE`.
                let slots: Vec<String> = (first..=last).map(|s| s.to_string()).collect();
                let mut args = vec!["CLUSTER", "ADDSLOTS"];
                args.extend(slots.iter().map(String::as_str));
                expect_ok(node, &args);
            }
        }
        let seed = &self.nodes[0];
        let seed_port = seed.port().to_string();
        let seed_bus = cluster_port(seed).to_string();
        for node in &self.nodes[1..] {
            expect_ok(
                node,
                &["CLUSTER", "MEET", "127.0.0.1", &seed_port, &seed_bus],
            );
        }
        // A replica must know its primary before it can replicate it: retry
        // until the meeting has reached it.
        let replicas = self.nodes.len() / primaries - 1;
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        for (i, node) in self.nodes.iter().enumerate().skip(primaries) {
            let primary = &self.ids[(i - primaries) / replicas];
            loop {
                let reply = node.cmd(&["CLUSTER", "REPLICATE", primary]);
                if reply.as_str() == Some("OK") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} did not learn of its primary {primary} within {SETTLE_TIMEOUT:?}: \
                     CLUSTER REPLICATE answered {reply:?}; its log:\n{}",
                    node.port(),
                    node.log_tail()
                );
                thread::sleep(POLL);
            }
        }
        self.wait_for_ok();
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`: every primary (see
    /// [`primary_ports`](Self::primary_ports)) as a seed.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .primary_ports()
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// `redis://127.0.0.1:PORT`, to talk to one node.
    ///
    /// # Panics
    ///
    /// If no node of the cluster has that port.
    pub fn node_url(&self, port: u16) -> String {
        self.node(port).url()
    }

    /// Every node's port, running or not: primaries as created first, then
    /// their replicas (the roles may have changed since).
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// The running nodes that are primaries serving slots now.
    pub fn primary_ports(&self) -> Vec<u16> {
        self.view()
            .iter()
            .filter(|line| line.primary && !line.slots.is_empty())
            .filter_map(|line| self.port_of_id(&line.id))
            .filter(|&port| self.node(port).is_running())
            .collect()
    }

    /// The running nodes that are replicas now.
    pub fn replica_ports(&self) -> Vec<u16> {
        self.view()
            .iter()
            .filter(|line| line.primary_id.is_some())
            .filter_map(|line| self.port_of_id(&line.id))
            .filter(|&port| self.node(port).is_running())
            .collect()
    }

    /// The running replicas of the node on `primary_port`.
    pub fn replicas_of(&self, primary_port: u16) -> Vec<u16> {
        let id = self.node_id(primary_port);
        self.view()
            .iter()
            .filter(|line| line.primary_id.as_deref() == Some(id))
            .filter_map(|line| self.port_of_id(&line.id))
            .filter(|&port| self.node(port).is_running())
            .collect()
    }

    /// A running replica of the node on `primary_port`.
    ///
    /// # Panics
    ///
    /// If it has none.
    pub fn replica_of(&self, primary_port: u16) -> u16 {
        *self
            .replicas_of(primary_port)
            .first()
            .unwrap_or_else(|| panic!("the node on {primary_port} has no running replica"))
    }

    /// The primary serving `slot`.
    ///
    /// # Panics
    ///
    /// If the slot is out of range or served by no node.
    pub fn primary_for_slot(&self, slot: u16) -> u16 {
        assert!(slot < SLOTS, "slot {slot} is out of range (0-16383)");
        let view = self.view();
        let owner = view
            .iter()
            .find(|line| line.primary && line.serves(slot))
            .unwrap_or_else(|| panic!("no node serves slot {slot}: {view:?}"));
        self.port_of_id(&owner.id)
            .unwrap_or_else(|| panic!("slot {slot} is served by {}, not in the set", owner.id))
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`).
    pub fn key_slot(&self, key: impl AsRef<[u8]>) -> u16 {
        let reply = self
            .any_node()
            .cmd(&[b"CLUSTER".as_slice(), b"KEYSLOT", key.as_ref()]);
        reply
            .as_int()
            .and_then(|slot| u16::try_from(slot).ok())
            .unwrap_or_else(|| panic!("CLUSTER KEYSLOT answered {reply:?}"))
    }

    /// The primary serving `key`'s slot.
    pub fn primary_for_key(&self, key: impl AsRef<[u8]>) -> u16 {
        self.primary_for_slot(self.key_slot(key))
    }

    /// The node on `port`, to send it commands or read its log.
    ///
    /// # Panics
    ///
    /// If no node of the cluster has that port.
    pub fn node(&self, port: u16) -> &RedisServer {
        &self.nodes[self.index(port)]
    }

    /// The cluster node id of the node on `port` (it survives restarts).
    pub fn node_id(&self, port: u16) -> &str {
        &self.ids[self.index(port)]
    }

    /// Kills the node on `port` (SIGKILL: a crash). Does nothing if it is
    /// not running. Does not wait: see
    /// [`wait_for_promotion`](Self::wait_for_promotion).
    pub fn kill(&mut self, port: u16) {
        let i = self.index(port);
        if !self.nodes[i].is_running() {
            return;
        }
        // What it serves, for wait_for_promotion: from itself, while it can say.
        if let Ok(view) = self.view_of(&self.nodes[i]) {
            if let Some(me) = view.iter().find(|line| line.myself) {
                if me.primary && !me.slots.is_empty() {
                    self.killed_slots.insert(port, me.slots.clone());
                }
            }
        }
        self.nodes[i].kill();
    }

    /// Starts the node on `port` again (same port, directory and
    /// `nodes.conf`, so it rejoins as the same node; stopping it first if
    /// it runs), then waits until the cluster is settled with it
    /// ([`wait_for_ok`](Self::wait_for_ok)). A primary that was failed
    /// over comes back as a replica of the node that replaced it.
    ///
    /// # Panics
    ///
    /// If it does not come up or the cluster does not settle within 20 s.
    pub fn restart(&mut self, port: u16) {
        let i = self.index(port);
        self.nodes[i].restart();
        self.killed_slots.remove(&port);
        self.wait_for_ok();
    }

    /// Stops every node (replicas first, so that no failover starts) and
    /// starts them again on the same ports and directories, then waits
    /// until the cluster is settled ([`wait_for_ok`](Self::wait_for_ok)).
    /// Nothing is persisted: the data is gone, the topology stays.
    pub fn restart_all(&mut self) {
        let replicas = self.replica_ports();
        for node in &mut self.nodes {
            if replicas.contains(&node.port()) {
                node.stop();
            }
        }
        for node in &mut self.nodes {
            node.stop();
        }
        for node in &mut self.nodes {
            node.restart();
        }
        self.killed_slots.clear();
        self.wait_for_ok();
    }

    /// Waits until the slots the primary on `old` served when it was
    /// [`kill`](Self::kill)ed are served by another primary that every
    /// running node agrees on, and every running node says
    /// `cluster_state:ok`; returns that primary's port.
    ///
    /// # Panics
    ///
    /// If `old` served no slots (or was not killed with
    /// [`kill`](Self::kill) and serves none now), or that takes more than
    /// 20 s.
    pub fn wait_for_promotion(&self, old: u16) -> u16 {
        let slots = match self.killed_slots.get(&old) {
            Some(slots) => slots.clone(),
            None => self
                .view()
                .into_iter()
                .find(|line| line.id == self.node_id(old))
                .map(|line| line.slots)
                .unwrap_or_default(),
        };
        assert!(
            !slots.is_empty(),
            "the node on {old} served no slots when it was killed: no promotion to wait for"
        );
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let problem = match self.promoted(old, &slots) {
                Ok(port) => return port,
                Err(problem) => problem,
            };
            if Instant::now() >= deadline {
                panic!(
                    "no primary took over the slots of {old} within {SETTLE_TIMEOUT:?}: \
                     {problem}; the node's log:\n{}",
                    self.node(problem.port).log_tail()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Who serves `slots` now, if every running node agrees, it is not
    /// `old` and it is up; or what is not so yet.
    fn promoted(&self, old: u16, slots: &[(u16, u16)]) -> Result<u16, Problem> {
        let mut agreed: Option<(u16, u16)> = None; // (owner, asked)
        for node in self.running() {
            let port = node.port();
            let state = cluster_info(node, "cluster_state")?;
            if state != "ok" {
                return Err(Problem::new(port, format!("cluster_state:{state}")));
            }
            let view = self.view_of(node)?;
            for &(first, last) in slots {
                for slot in [first, last] {
                    let owner = view
                        .iter()
                        .find(|line| line.primary && line.serves(slot))
                        .and_then(|line| self.port_of_id(&line.id));
                    let owner = match owner {
                        Some(owner) if owner != old => owner,
                        _ => {
                            return Err(Problem::new(
                                port,
                                format!("slot {slot} is served by {owner:?}"),
                            ))
                        }
                    };
                    match agreed {
                        Some((agreed, asked)) if agreed != owner => {
                            return Err(Problem::new(
                                port,
                                format!(
                                    "slot {slot} is served by {owner}, but {asked} says {agreed}"
                                ),
                            ))
                        }
                        Some(_) => {}
                        None => agreed = Some((owner, port)),
                    }
                }
            }
        }
        let (owner, _) = agreed.ok_or_else(|| Problem::new(old, "no node is running".into()))?;
        if !self.node(owner).is_running() {
            return Err(Problem::new(owner, "is down".into()));
        }
        Ok(owner)
    }

    /// Waits until the cluster is settled: every running node says
    /// `cluster_state:ok`, knows every node of the set, and agrees with the
    /// others on who serves each of the 16384 slots (a running primary) and
    /// on each running node's role; no running node is taken for failing;
    /// and every running replica is in sync (`master_link_status:up`).
    ///
    /// # Panics
    ///
    /// If that takes more than 20 s; the message names a node that is not
    /// there yet and what it says.
    pub fn wait_for_ok(&self) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let problem = match self.settled() {
                Ok(()) => return,
                Err(problem) => problem,
            };
            if Instant::now() >= deadline {
                let log = self
                    .nodes
                    .iter()
                    .find(|node| node.port() == problem.port)
                    .map(RedisServer::log_tail)
                    .unwrap_or_default();
                panic!(
                    "the cluster did not settle within {SETTLE_TIMEOUT:?}: {problem}; \
                     the node's log:\n{log}"
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Ok when settled (see [`wait_for_ok`](Self::wait_for_ok)), else the
    /// first thing found that is not.
    fn settled(&self) -> Result<(), Problem> {
        let running: Vec<&RedisServer> = self.running().collect();
        if running.is_empty() {
            return Err(Problem::new(
                self.nodes[0].port(),
                "no node is running".into(),
            ));
        }
        let mut views = Vec::with_capacity(running.len());
        for node in &running {
            let port = node.port();
            let state = cluster_info(node, "cluster_state")?;
            if state != "ok" {
                return Err(Problem::new(port, format!("cluster_state:{state}")));
            }
            let known = cluster_info(node, "cluster_known_nodes")?;
            if known != self.nodes.len().to_string() {
                return Err(Problem::new(
                    port,
                    format!("knows {known} nodes, not {}", self.nodes.len()),
                ));
            }
            let view = self.view_of(node)?;
            for line in &view {
                let Some(other) = self.port_of_id(&line.id) else {
                    return Err(Problem::new(port, format!("knows a stranger: {line:?}")));
                };
                if line.failing && self.node(other).is_running() {
                    return Err(Problem::new(port, format!("takes {other} for failing")));
                }
            }
            views.push((port, view));
        }
        // Everyone agrees on who serves each slot, and it is up.
        let (first_port, first_view) = &views[0];
        let owners = self.slot_owners(*first_port, first_view)?;
        for (port, view) in &views[1..] {
            let theirs = self.slot_owners(*port, view)?;
            if let Some(slot) =
                (0..SLOTS).find(|&s| owners[usize::from(s)] != theirs[usize::from(s)])
            {
                return Err(Problem::new(
                    *port,
                    format!(
                        "says slot {slot} is served by {}, but {first_port} says {}",
                        theirs[usize::from(slot)],
                        owners[usize::from(slot)]
                    ),
                ));
            }
        }
        // Everyone sees each node in the role it says it has.
        for (port, view) in &views {
            let me = view
                .iter()
                .find(|line| line.myself)
                .ok_or_else(|| Problem::new(*port, "CLUSTER NODES has no `myself`".into()))?;
            for (other, other_view) in &views {
                let seen = other_view.iter().find(|line| line.id == me.id);
                if seen.map(|line| (line.primary, &line.primary_id))
                    != Some((me.primary, &me.primary_id))
                {
                    return Err(Problem::new(
                        *other,
                        format!(
                            "sees {port} as {}, but it says it is {}",
                            seen.map_or_else(|| "unknown".into(), NodeLine::role),
                            me.role()
                        ),
                    ));
                }
            }
            if let Some(owner) = owners.iter().find(|&&owner| owner == *port) {
                if !me.primary {
                    return Err(Problem::new(*owner, "serves slots but is a replica".into()));
                }
            }
        }
        for owner in owners.iter().copied() {
            if !self.node(owner).is_running() {
                return Err(Problem::new(owner, "serves slots but is down".into()));
            }
        }
        // Every replica is in sync.
        for (port, view) in &views {
            if view.iter().any(|line| line.myself && !line.primary) {
                let link = info_field(self.node(*port), "replication", "master_link_status")?;
                if link != "up" {
                    return Err(Problem::new(*port, format!("master_link_status:{link}")));
                }
            }
        }
        Ok(())
    }

    /// Who serves each slot as `view` (from the node on `port`) has it.
    fn slot_owners(&self, port: u16, view: &[NodeLine]) -> Result<Vec<u16>, Problem> {
        let mut owners = vec![0u16; usize::from(SLOTS)];
        for line in view.iter().filter(|line| line.primary) {
            let Some(owner) = self.port_of_id(&line.id) else {
                continue;
            };
            for &(first, last) in &line.slots {
                for slot in first..=last {
                    owners[usize::from(slot)] = owner;
                }
            }
        }
        match owners.iter().position(|&owner| owner == 0) {
            Some(slot) => Err(Problem::new(port, format!("has no node for slot {slot}"))),
            None => Ok(owners),
        }
    }

    /// Starts moving `slot` from the primary serving it to the primary on
    /// `to`: `CLUSTER SETSLOT slot IMPORTING` on `to`, `MIGRATING` on the
    /// source. No key has moved yet; the source answers `-ASK` for keys of
    /// the slot it no longer has. Move keys with [`Migration::move_keys`],
    /// end with [`Migration::finish`].
    ///
    /// # Panics
    ///
    /// If `to` is not a primary, already serves the slot, or a node refuses.
    pub fn begin_migration(&self, slot: u16, to: u16) -> Migration<'_> {
        let from = self.primary_for_slot(slot);
        assert_ne!(from, to, "slot {slot} is already served by {to}");
        let target_is_primary = self
            .view()
            .iter()
            .any(|line| line.id == self.node_id(to) && line.primary);
        assert!(target_is_primary, "the node on {to} is not a primary");
        let slot_arg = slot.to_string();
        expect_ok(
            self.node(to),
            &[
                "CLUSTER",
                "SETSLOT",
                &slot_arg,
                "IMPORTING",
                self.node_id(from),
            ],
        );
        expect_ok(
            self.node(from),
            &[
                "CLUSTER",
                "SETSLOT",
                &slot_arg,
                "MIGRATING",
                self.node_id(to),
            ],
        );
        Migration {
            set: self,
            slot,
            source: from,
            target: to,
        }
    }

    /// Moves `slot` with its keys to the primary on `to`, live (see
    /// [`begin_migration`](Self::begin_migration)), and waits until every
    /// running node says `to` serves it.
    pub fn migrate_slot(&self, slot: u16, to: u16) {
        self.begin_migration(slot, to).finish();
    }

    fn index(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no node of the cluster is on port {port}"))
    }

    fn port_of_id(&self, id: &str) -> Option<u16> {
        let i = self.ids.iter().position(|known| known == id)?;
        Some(self.nodes[i].port())
    }

    fn running(&self) -> impl Iterator<Item = &RedisServer> {
        self.nodes.iter().filter(|node| node.is_running())
    }

    /// The first running node.
    fn any_node(&self) -> &RedisServer {
        self.running()
            .next()
            .expect("no node of the cluster is running")
    }

    /// `CLUSTER NODES` from the first running node that answers.
    fn view(&self) -> Vec<NodeLine> {
        let mut last = None;
        for node in self.running() {
            match self.view_of(node) {
                Ok(view) => return view,
                Err(problem) => last = Some(problem),
            }
        }
        panic!("no node of the cluster answers CLUSTER NODES: {last:?}")
    }

    fn view_of(&self, node: &RedisServer) -> Result<Vec<NodeLine>, Problem> {
        let port = node.port();
        let reply = node
            .try_cmd(&["CLUSTER", "NODES"])
            .map_err(|e| Problem::new(port, format!("CLUSTER NODES: {e}")))?;
        let text = reply
            .as_str()
            .ok_or_else(|| Problem::new(port, format!("CLUSTER NODES answered {reply:?}")))?;
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                NodeLine::parse(line).ok_or_else(|| {
                    Problem::new(port, format!("unexpected CLUSTER NODES line {line:?}"))
                })
            })
            .collect()
    }
}

/// A slot being moved between primaries, from
/// [`ClusterSet::begin_migration`] to [`finish`](Self::finish). Dropped
/// unfinished, the slot stays half-moved.
#[derive(Debug)]
#[must_use = "a migration is only begun: move the keys and finish it"]
pub struct Migration<'a> {
    set: &'a ClusterSet,
    slot: u16,
    source: u16,
    target: u16,
}

impl Migration<'_> {
    /// The slot being moved.
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The port of the primary the slot is moving from.
    pub fn source(&self) -> u16 {
        self.source
    }

    /// The port of the primary the slot is moving to.
    pub fn target(&self) -> u16 {
        self.target
    }

    /// Moves up to `max` of the slot's keys still on the source to the
    /// target (`CLUSTER GETKEYSINSLOT`, then `MIGRATE ... KEYS`); returns
    /// how many moved (0 once none are left).
    ///
    /// # Panics
    ///
    /// If the source refuses.
    pub fn move_keys(&self, max: usize) -> usize {
        let source = self.set.node(self.source);
        let reply = source.cmd(&[
            "CLUSTER",
            "GETKEYSINSLOT",
            &self.slot.to_string(),
            &max.to_string(),
        ]);
        let keys = reply.as_array().unwrap_or_else(|| {
            panic!(
                "CLUSTER GETKEYSINSLOT on {} answered {reply:?}",
                self.source
            )
        });
        if keys.is_empty() {
            return 0;
        }
        let target_port = self.target.to_string();
        let mut args: Vec<&[u8]> = vec![
            b"MIGRATE",
            b"127.0.0.1",
            target_port.as_bytes(),
            b"",
            b"0",
            MIGRATE_TIMEOUT_MS.as_bytes(),
            b"KEYS",
        ];
        for key in keys {
            args.push(key.as_bytes().unwrap_or_else(|| {
                panic!(
                    "CLUSTER GETKEYSINSLOT on {} answered {reply:?}",
                    self.source
                )
            }));
        }
        let migrated = source.cmd(&args);
        assert!(
            migrated.as_str() == Some("OK"),
            "MIGRATE of {} keys of slot {} from {} to {} answered {migrated:?}",
            keys.len(),
            self.slot,
            self.source,
            self.target
        );
        keys.len()
    }

    /// Moves the keys left, then gives the slot to the target (`CLUSTER
    /// SETSLOT slot NODE` on the target, the source and every other running
    /// primary) and waits until every running node says the target serves
    /// it.
    ///
    /// # Panics
    ///
    /// If a node refuses, or the nodes do not agree within 20 s.
    pub fn finish(self) {
        while self.move_keys(MIGRATE_BATCH) > 0 {}
        let set = self.set;
        let slot = self.slot.to_string();
        let target_id = set.node_id(self.target);
        let node_args = ["CLUSTER", "SETSLOT", &slot, "NODE", target_id];
        expect_ok(set.node(self.target), &node_args);
        expect_ok(set.node(self.source), &node_args);
        for port in set.primary_ports() {
            if port != self.target && port != self.source {
                expect_ok(set.node(port), &node_args);
            }
        }
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        for node in set.running() {
            loop {
                let served_by = set.view_of(node).map(|view| {
                    view.iter()
                        .find(|line| line.primary && line.serves(self.slot))
                        .and_then(|line| set.port_of_id(&line.id))
                });
                if matches!(served_by, Ok(Some(port)) if port == self.target) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} still says slot {slot} is served by {served_by:?}, not {}, \
                     {SETTLE_TIMEOUT:?} after the migration",
                    node.port(),
                    self.target
                );
                thread::sleep(POLL);
            }
        }
    }
}

/// A node that is not where it should be yet, and what it says.
#[derive(Debug)]
struct Problem {
    port: u16,
    what: String,
}

impl Problem {
    fn new(port: u16, what: String) -> Self {
        Problem { port, what }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node 127.0.0.1:{} {}", self.port, self.what)
    }
}

/// One line of `CLUSTER NODES`:
/// `<id> <ip:port@cport> <flags> <primary id or -> <ping> <pong> <epoch> <link> <slots>...`.
#[derive(Debug, Clone)]
struct NodeLine {
    id: String,
    myself: bool,
    primary: bool,
    /// `fail` or `fail?`.
    failing: bool,
    primary_id: Option<String>,
    /// Slot ranges served (not the `[slot->-id]` migrations).
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    fn parse(line: &str) -> Option<NodeLine> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            return None;
        }
        let flags: Vec<&str> = fields[2].split(',').collect();
        let mut slots = Vec::new();
        for range in &fields[8..] {
            if range.starts_with('[') {
                continue;
            }
            let (first, last) = range.split_once('-').unwrap_or((range, range));
            slots.push((first.parse().ok()?, last.parse().ok()?));
        }
        Some(NodeLine {
            id: fields[0].to_owned(),
            myself: flags.contains(&"myself"),
            primary: flags.contains(&"master"),
            failing: flags.contains(&"fail") || flags.contains(&"fail?"),
            primary_id: (fields[3] != "-").then(|| fields[3].to_owned()),
            slots,
        })
    }

    fn serves(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|&(first, last)| (first..=last).contains(&slot))
    }

    fn role(&self) -> String {
        match (&self.primary_id, self.primary) {
            (Some(id), _) => format!("a replica of {id}"),
            (None, true) => "a primary".into(),
            (None, false) => "neither primary nor replica".into(),
        }
    }
}

fn cluster_port(node: &RedisServer) -> u16 {
    node.cluster_port().expect("a cluster node has a bus port")
}

/// Sends `args` to `node` and panics unless it answers `+OK`.
fn expect_ok(node: &RedisServer, args: &[&str]) {
    let reply = node.cmd(args);
    assert!(
        reply == RespValue::Simple("OK".into()),
        "{} on 127.0.0.1:{} answered {reply:?}",
        args.join(" "),
        node.port()
    );
}

/// A field of `CLUSTER INFO`.
fn cluster_info(node: &RedisServer, field: &str) -> Result<String, Problem> {
    let reply = node
        .try_cmd(&["CLUSTER", "INFO"])
        .map_err(|e| Problem::new(node.port(), format!("CLUSTER INFO: {e}")))?;
    find_field(&reply, field)
        .ok_or_else(|| Problem::new(node.port(), format!("CLUSTER INFO answered {reply:?}")))
}

/// A field of an `INFO` section.
fn info_field(node: &RedisServer, section: &str, field: &str) -> Result<String, Problem> {
    let reply = node
        .try_cmd(&["INFO", section])
        .map_err(|e| Problem::new(node.port(), format!("INFO {section}: {e}")))?;
    find_field(&reply, field)
        .ok_or_else(|| Problem::new(node.port(), format!("INFO {section} has no {field}")))
}

fn find_field(reply: &RespValue, field: &str) -> Option<String> {
    reply.as_str()?.lines().find_map(|line| {
        line.strip_prefix(field)?
            .strip_prefix(':')
            .map(|value| value.trim().to_owned())
    })
}
