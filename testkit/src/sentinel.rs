//! A Sentinel-monitored master for tests: a master, a replica and three
//! sentinels (quorum 2), each a real `redis-server` process on a free
//! port in its own temporary directory.

use std::thread;
use std::time::{Duration, Instant};

use crate::resp::RespValue;
use crate::server::RedisServer;

/// How long the sentinels may take to find each other and the replica.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// A master, its replica and three sentinels monitoring it as
/// [`SentinelSet::MASTER_NAME`]. Dropping it kills every process.
///
/// ```no_run
/// use xgroup_testkit::SentinelSet;
///
/// let mut set = SentinelSet::start();
/// let url = set.url(); // redis+sentinel://127.0.0.1:p1,.../xgroup-master
/// let old = set.kill_master();
/// let new = set.wait_for_promotion(old);
/// assert_ne!(old, new);
/// ```
#[derive(Debug)]
pub struct SentinelSet {
    /// The data nodes: the first started as the master.
    nodes: Vec<RedisServer>,
    sentinels: Vec<RedisServer>,
}

impl SentinelSet {
    /// The name the sentinels monitor the master under.
    pub const MASTER_NAME: &'static str = "xgroup-master";

    /// Starts the master, a replica of it and three sentinels, and waits
    /// until the replica is in sync and every sentinel knows it and the
    /// other two sentinels (so a failover can be agreed on).
    ///
    /// # Panics
    ///
    /// If a process does not come up, or the sentinels do not settle
    /// within 20 s.
    pub fn start() -> SentinelSet {
        Self::start_with_passwords(None, None)
    }

    /// [`start`](Self::start) with the data nodes requiring `data` and the
    /// sentinels requiring `sentinels` (each `None` for no password).
    pub fn start_with_passwords(data: Option<&str>, sentinels: Option<&str>) -> SentinelSet {
        let node = |extra: &[&str]| {
            // A replica syncs at once, not after the default 5 s wait for
            // others to share a diskless transfer.
            let mut args: Vec<&str> = vec!["--repl-diskless-sync-delay", "0"];
            args.extend(extra);
            if let Some(pw) = data {
                // A master that comes back as a replica logs in too.
                args.extend(["--masterauth", pw]);
            }
            RedisServer::builder()
                .password(data)
                .extra_args(&args)
                .start()
        };
        let master = node(&[]);
        let port = master.port().to_string();
        let replica = node(&["--replicaof", "127.0.0.1", &port]);
        let sentinels: Vec<RedisServer> = (0..3)
            .map(|_| {
                let mut b = RedisServer::builder()
                    .sentinel_of(Self::MASTER_NAME, master.port(), 2)
                    .password(sentinels);
                if let Some(pw) = data {
                    b = b.sentinel_auth_pass(pw);
                }
                b.start()
            })
            .collect();
        let set = SentinelSet {
            nodes: vec![master, replica],
            sentinels,
        };
        set.settle();
        set
    }

    fn settle(&self) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let settled = self.sentinels.iter().all(|s| {
                let count = |what: &str| {
                    s.try_cmd(&["SENTINEL", what, Self::MASTER_NAME])
                        .ok()
                        .and_then(|v| v.as_array().map(<[RespValue]>::len))
                        .unwrap_or(0)
                };
                count("REPLICAS") >= 1 && count("SENTINELS") >= 2
            });
            // And the replica holds the master's data.
            let synced = self.nodes[1]
                .try_cmd(&["INFO", "replication"])
                .ok()
                .and_then(|r| r.as_str().map(|t| t.contains("master_link_status:up")))
                .unwrap_or(false);
            let settled = settled && synced;
            if settled {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinels did not find the replica and each other within {SETTLE_TIMEOUT:?}; \
                 first sentinel's log:\n{}",
                self.sentinels[0].log_tail()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `redis+sentinel://` with every sentinel, naming the master.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        format!("redis+sentinel://{}/{}", hosts.join(","), Self::MASTER_NAME)
    }

    /// The master's port, as the first sentinel that answers says.
    ///
    /// # Panics
    ///
    /// If no sentinel answers.
    pub fn master_port(&self) -> u16 {
        self.sentinels
            .iter()
            .filter(|s| s.is_running())
            .find_map(Self::named_master)
            .expect("no sentinel named the master")
    }

    /// The master's port as `sentinel` names it, if it answers.
    fn named_master(sentinel: &RedisServer) -> Option<u16> {
        let reply = sentinel
            .try_cmd(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::MASTER_NAME])
            .ok()?;
        reply.as_array()?.get(1)?.as_str()?.parse().ok()
    }

    /// The data node on `port`.
    ///
    /// # Panics
    ///
    /// If none of the set's nodes has that port.
    pub fn node(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.port() == port)
            .unwrap_or_else(|| panic!("no node of the set is on port {port}"))
    }

    /// The port of a node that is not the master now.
    pub fn replica_port(&self) -> u16 {
        let master = self.master_port();
        self.nodes
            .iter()
            .map(RedisServer::port)
            .find(|&p| p != master)
            .expect("two nodes")
    }

    /// The node the sentinels call the master.
    pub fn master(&self) -> &RedisServer {
        self.node(self.master_port())
    }

    /// Kills the master (SIGKILL) and returns its port.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_port();
        let node = self.nodes.iter_mut().find(|n| n.port() == port);
        node.expect("the master is one of the set's nodes").kill();
        port
    }

    /// Starts a killed node again as a replica of the current master, and
    /// one the sentinels may not promote until
    /// [`wait_for_sync`](Self::wait_for_sync) sees it in sync: it comes back
    /// empty (no persistence), and a failover the sentinels start on a
    /// loaded machine must not make it the master.
    pub fn restart_node(&mut self, port: u16) {
        let master = self.master_port();
        let node = self.nodes.iter_mut().find(|n| n.port() == port);
        let node = node.expect("a node of the set");
        node.restart();
        if master != port {
            node.cmd(&["CONFIG", "SET", "replica-priority", "0"]);
            node.cmd(&["REPLICAOF", "127.0.0.1", &master.to_string()]);
        }
    }

    /// Waits until every running sentinel names the same master other than
    /// `old` and it says it is one; returns its port.
    ///
    /// # Panics
    ///
    /// If that takes more than 30 s.
    pub fn wait_for_promotion(&self, old: u16) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let port = self.master_port();
            // Every running sentinel names it: a sentinel still naming the
            // old master when it comes back would make the promoted node
            // its replica again (and, without persistence, empty).
            let agreed = self
                .sentinels
                .iter()
                .filter(|s| s.is_running())
                .all(|s| Self::named_master(s) == Some(port));
            let is_master = port != old
                && agreed
                && self
                    .node(port)
                    .try_cmd(&["ROLE"])
                    .ok()
                    .and_then(|r| r.as_array()?.first()?.as_str().map(|s| s == "master"))
                    .unwrap_or(false);
            if is_master {
                return port;
            }
            assert!(
                Instant::now() < deadline,
                "no new master within 30 s; a sentinel's log:\n{}",
                self.sentinels[0].log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the node on `port` is a replica in sync with the
    /// master (after [`restart_node`](Self::restart_node)).
    ///
    /// # Panics
    ///
    /// If that takes more than 30 s.
    pub fn wait_for_sync(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let synced = self
                .node(port)
                .try_cmd(&["INFO", "replication"])
                .ok()
                .and_then(|r| {
                    r.as_str()
                        .map(|t| t.contains("role:slave") && t.contains("master_link_status:up"))
                })
                .unwrap_or(false);
            if synced {
                // Promotable again (see `restart_node`).
                self.node(port)
                    .cmd(&["CONFIG", "SET", "replica-priority", "100"]);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the node on {port} did not sync within 30 s; its log:\n{}\nthe first \
                 sentinel's log:\n{}",
                self.node(port).log_tail(),
                self.sentinels[0].log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The sentinels' addresses.
    pub fn sentinel_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.sentinels.iter().map(RedisServer::addr).collect()
    }

    /// The sentinels, to stop or restart some.
    pub fn sentinels(&mut self) -> &mut [RedisServer] {
        &mut self.sentinels
    }
}
