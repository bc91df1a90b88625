//! Redis Cluster, the pure parts: which hash slot a key is in, how a
//! sharded stream's keys are named, which node owns which slot (from
//! `CLUSTER SHARDS` or `CLUSTER SLOTS`, kept current by `MOVED`), and the
//! `redis+cluster://` URL.

use std::ops::RangeInclusive;

use bytes::{Bytes, BytesMut};

use crate::command::CommandWriter;
use crate::config::ConnectOptions;
use crate::error::ConfigError;
use crate::reply::{array, bad, check_error, describe, int, pairs, text, ReplyError};
use crate::resp::Frame;
use crate::sentinel::MultiHostUrl;
use crate::url::ServerAddr;

/// How many hash slots a Redis Cluster has.
pub const SLOT_COUNT: u16 = 16384;

/// The port a seed node listens on unless the URL says otherwise.
pub const CLUSTER_PORT: u16 = 6379;

// ---- key slots --------------------------------------------------------------

/// CRC16/XMODEM (polynomial 0x1021, initial value 0, no reflection, no
/// final XOR), one table entry per byte value.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// A hash tag whose slot is `slot`: for keys derived from one that has no
/// hash tag and cannot be wrapped in braces whole (it holds a `}`). The
/// first `xgroup-slot-<n>` in that slot; about 16384 checksums of a few
/// bytes to find it.
pub(crate) fn tag_for_slot(slot: u16) -> Vec<u8> {
    let slot = slot % SLOT_COUNT;
    (0u32..)
        .map(|n| format!("xgroup-slot-{n}").into_bytes())
        .find(|tag| key_slot(tag) == slot)
        .unwrap_or_default()
}

/// CRC16/XMODEM of `data`, the checksum Redis Cluster hashes keys with.
fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0, |crc, &byte| {
        (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ byte)]
    })
}

/// Redis Cluster's hash tag of `key`: the bytes between its first `{` and
/// the first `}` after it, when there is such a `}` and at least one byte
/// between them. Keys with the same hash tag are in the same slot.
///
/// ```
/// use xgroup_core::hash_tag;
///
/// assert_eq!(hash_tag(b"{user1000}.following"), Some(&b"user1000"[..]));
/// assert_eq!(hash_tag(b"foo{{bar}}zap"), Some(&b"{bar"[..]));
/// assert_eq!(hash_tag(b"foo{}{bar}"), None); // empty: the whole key is hashed
/// assert_eq!(hash_tag(b"plain"), None);
/// ```
pub fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let after = key.get(open + 1..)?;
    let len = after.iter().position(|&b| b == b'}')?;
    (len > 0).then(|| after.get(..len)).flatten()
}

/// The hash slot (0 to 16383) Redis Cluster stores `key` in: CRC16 of the
/// key's [`hash_tag`] (or of the whole key when it has none), modulo
/// [`SLOT_COUNT`] — what `CLUSTER KEYSLOT` answers.
///
/// ```
/// use xgroup_core::key_slot;
///
/// assert_eq!(key_slot(b"foo"), 12182);
/// assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
/// ```
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key).unwrap_or(key)) % SLOT_COUNT
}

// ---- sharded streams --------------------------------------------------------

/// The key of shard `shard` of the logical stream `name`:
/// `{<name>:<shard>}`, with every `}` in the name written `%7D` and every
/// `%` written `%25` (so `orders` shard 2 is `{orders:2}`, and `a}b`
/// shard 0 is `{a%7Db:0}`).
///
/// Why this form: the whole key is its own hash tag, so
///
/// - the shards of one name differ in their tag and spread over slots
///   (a `{name}:<i>` key would put every shard in the name's one slot,
///   and `name:{<i>}` shard `i` of every stream in the same slot);
/// - any name works: the escape keeps a `}` in the name from ending the
///   tag early (a `{` in it is harmless, the tag is opened already), and
///   escaping `%` as well keeps distinct names apart (`a}b` and `a%7Db`);
///   a hash tag inside the name is overridden (its purpose, one slot,
///   is what sharding undoes);
/// - keys derived from a shard's key by its hash tag (its heartbeat keys,
///   `{orders:2}:xgroup:{orders:2}:hb:...`) share the shard's slot.
///
/// Distinct slots are not distinct nodes, and for large shard counts not
/// even certain: shards 0 to 9 of any name are on 10 distinct slots (their
/// keys differ in one byte, and CRC16 tells all such keys apart), and so
/// are shards 10 to 99 among themselves, but a one-digit and a two-digit
/// shard may share a slot (for 16 shards, about 1 name in 1000 has such
/// a pair).
///
/// ```
/// use xgroup_core::{key_slot, shard_key};
///
/// assert_eq!(&shard_key(b"orders", 2)[..], b"{orders:2}");
/// assert_ne!(key_slot(&shard_key(b"orders", 0)), key_slot(&shard_key(b"orders", 1)));
/// ```
pub fn shard_key(name: &[u8], shard: usize) -> Bytes {
    let mut index = itoa::Buffer::new();
    let index = index.format(shard).as_bytes();
    let mut key = Vec::with_capacity(name.len() + index.len() + 3);
    key.push(b'{');
    for &byte in name {
        match byte {
            b'}' => key.extend_from_slice(b"%7D"),
            b'%' => key.extend_from_slice(b"%25"),
            _ => key.push(byte),
        }
    }
    key.push(b':');
    key.extend_from_slice(index);
    key.push(b'}');
    Bytes::from(key)
}

/// Which of `shards` shards (numbered from 0) the entries with this
/// partition key go to: the key's CRC16 (of all of it: braces mean nothing
/// here) modulo `shards`. The same key always goes to the same shard, in
/// every process and version (no per-process random seed), as long as the
/// shard count stays the same; changing the count moves most keys.
///
/// The CRC has 65536 values, so the shards are equally likely to within
/// 1 in 65536 for any count up to that (more shards than that leaves the
/// ones above 65535 empty); 0 shards is taken for 1.
///
/// ```
/// use xgroup_core::shard_for;
///
/// let shard = shard_for(b"customer-42", 8);
/// assert!(shard < 8);
/// assert_eq!(shard, shard_for(b"customer-42", 8));
/// ```
pub fn shard_for(partition_key: &[u8], shards: usize) -> usize {
    usize::from(crc16(partition_key)) % shards.max(1)
}

/// A logical stream stored as `shards` stream keys ([`shard_key`]), for a
/// producer: which shard an entry goes to. With a partition key, always
/// the same shard for the same key ([`shard_for`]: per-key order holds
/// within the shard); without one, the shards in turn.
///
/// ```
/// use xgroup_core::ShardedStream;
///
/// let orders = ShardedStream::new("orders", 4).unwrap();
/// let shard = orders.pick(Some(b"customer-42"));
/// assert_eq!(shard, orders.pick(Some(b"customer-42")));
/// assert_eq!(&orders.key(2)[..], b"{orders:2}");
/// let turns: Vec<usize> = (0..4).map(|_| orders.pick(None)).collect();
/// assert_eq!(turns, [0, 1, 2, 3]);
/// ```
#[derive(Debug)]
pub struct ShardedStream {
    name: Bytes,
    keys: Vec<Bytes>,
    /// The next shard of the round-robin.
    next: std::sync::atomic::AtomicUsize,
}

impl ShardedStream {
    /// The logical stream `name` in `shards` shards (1 to 1024); an empty
    /// name or a shard count out of range is an [`ConfigError`].
    pub fn new(name: impl AsRef<[u8]>, shards: usize) -> Result<Self, ConfigError> {
        let name = name.as_ref();
        if name.is_empty() {
            return Err(ConfigError::new("stream", "must not be empty"));
        }
        if !(1..=1024).contains(&shards) {
            return Err(ConfigError::new("shards", "must be 1 to 1024"));
        }
        Ok(ShardedStream {
            name: Bytes::copy_from_slice(name),
            keys: (0..shards).map(|i| shard_key(name, i)).collect(),
            next: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The logical stream's name.
    pub fn name(&self) -> &Bytes {
        &self.name
    }

    /// How many shards.
    pub fn shards(&self) -> usize {
        self.keys.len()
    }

    /// Shard `shard`'s stream key (modulo the shard count).
    pub fn key(&self, shard: usize) -> &Bytes {
        &self.keys[shard % self.keys.len()]
    }

    /// Every shard's stream key, shard 0 first.
    pub fn keys(&self) -> &[Bytes] {
        &self.keys
    }

    /// The shard an entry goes to: `partition_key`'s, or the next in turn.
    pub fn pick(&self, partition_key: Option<&[u8]>) -> usize {
        match partition_key {
            Some(key) => shard_for(key, self.keys.len()),
            None => {
                let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                n % self.keys.len()
            }
        }
    }
}

/// The host and port of a `MOVED`/`ASK` target, `host:port`: the host
/// without an IPv6 address's brackets, possibly empty (the node knows no
/// endpoint for itself: the host asked) or `?`; `None` for a missing or
/// zero port.
pub(crate) fn split_redirect_addr(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|&p| p != 0)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port))
}

// ---- topology ---------------------------------------------------------------

/// A cluster node, as `CLUSTER SHARDS` or `CLUSTER SLOTS` describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// Where to connect: the node's preferred endpoint (its IP address or
    /// host name; its IP when the endpoint is `?`; the host asked when the
    /// endpoint is unknown) and its plain-TCP port. From `CLUSTER SHARDS`
    /// of a node without a plain port, the TLS port; from `CLUSTER SLOTS`,
    /// the port for connections like the one that asked (the server
    /// reports TLS ports to TLS connections).
    pub addr: ServerAddr,
    /// The TLS port `CLUSTER SHARDS` gave (`tls-port`), when the node has
    /// one; see [`connect_addr`](Self::connect_addr).
    pub tls_port: Option<u16>,
    /// The node's id (40 hex characters), when the reply gave it.
    pub id: Option<String>,
}

impl ClusterNode {
    /// Where to connect over TLS (`tls: true`: the TLS port when known)
    /// or plain TCP.
    pub fn connect_addr(&self, tls: bool) -> ServerAddr {
        match self.tls_port {
            Some(port) if tls => ServerAddr {
                host: self.addr.host.clone(),
                port,
            },
            _ => self.addr.clone(),
        }
    }

    /// Whether the node listens at `host:port` (either of its ports).
    fn listens_at(&self, host: &str, port: u16) -> bool {
        self.addr.host == host && (self.addr.port == port || self.tls_port == Some(port))
    }

    /// Whether either of the node's ports is `port`.
    fn has_port(&self, port: u16) -> bool {
        self.addr.port == port || self.tls_port == Some(port)
    }
}

/// A primary and its replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shard {
    primary: ClusterNode,
    /// Those that can serve reads: not failed, not still loading.
    replicas: Vec<ClusterNode>,
}

/// One slot range and the shard that owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SlotRange {
    start: u16,
    end: u16,
    shard: usize,
}

/// Which primary (and which replicas) each hash slot belongs to.
///
/// Kept as the ranges the server reports, sorted and disjoint, each naming
/// one entry of a table of shards (primary and replicas): a cluster has a
/// handful of ranges, so the map is a few hundred bytes where a per-slot
/// index would be 32 KiB, a lookup is a binary search over those few, and
/// a `MOVED` splits at most one range in three (neighbouring ranges of the
/// same shard are merged again, so a slot-by-slot migration ends up as one
/// range).
///
/// ```
/// use xgroup_core::{key_slot, Decoder, SlotMap};
///
/// let mut decoder = Decoder::new();
/// decoder.feed(b"*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$8\r\n10.0.0.1\r\n:6379\r\n$2\r\nid\r\n");
/// let frame = decoder.next_frame().unwrap().unwrap();
/// let mut map = SlotMap::from_cluster_slots(frame, "seed.example").unwrap();
/// assert!(map.is_complete());
/// let slot = key_slot(b"orders");
/// assert_eq!(map.owner(slot).unwrap().addr.to_socket_string(), "10.0.0.1:6379");
/// assert!(map.moved(slot, "10.0.0.2:6379", "10.0.0.1"));
/// assert_eq!(map.owner(slot).unwrap().addr.host, "10.0.0.2");
/// assert_eq!(map.primaries().count(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotMap {
    shards: Vec<Shard>,
    ranges: Vec<SlotRange>,
}

impl SlotMap {
    /// The map a `CLUSTER SHARDS` reply (Redis 7.0+) describes, RESP2 or
    /// RESP3; `asked_host` is the host the command was sent to.
    ///
    /// In each shard the primary is the node whose `role` is `master`,
    /// among those whose `health` is not `fail` (the first, should there be
    /// two); a shard without one leaves its slots unassigned (the cluster
    /// is failing over: ask again later). Replicas that have failed, or are
    /// still `loading` (not yet synced, as `CLUSTER SLOTS` leaves them out),
    /// are left out. A node's host is its `endpoint`; for an endpoint of
    /// `?` (host names preferred, none set) its `ip`; for an empty one
    /// (`cluster-preferred-endpoint-type unknown-endpoint`), `asked_host`,
    /// as Redis documents.
    ///
    /// An error reply is [`ReplyError::Server`]; a reply of another shape,
    /// slots out of range or claimed twice, or a node without a port,
    /// [`ReplyError::Protocol`].
    pub fn from_cluster_shards(frame: Frame, asked_host: &str) -> Result<SlotMap, ReplyError> {
        const CMD: &str = "CLUSTER SHARDS";
        let mut map = SlotMap::default();
        let mut ranges = Vec::new();
        for shard in array(check_error(frame)?, CMD, "the reply")? {
            let (mut slots, mut nodes) = (Vec::new(), Vec::new());
            for (key, value) in pairs(shard, CMD)? {
                match text(&key).map(|k| &k[..]) {
                    Some(b"slots") => slots = array(value, CMD, "slots")?,
                    Some(b"nodes") => nodes = array(value, CMD, "nodes")?,
                    _ => {}
                }
            }
            if slots.len() % 2 != 0 {
                return Err(bad(CMD, format!("{} slot bounds, not pairs", slots.len())));
            }
            let mut primary = None;
            let mut replicas = Vec::new();
            for node in nodes {
                let node = ShardsNode::parse(node, asked_host)?;
                match (node.health.as_deref(), node.role.as_deref()) {
                    (Some(b"fail"), _) => {}
                    (_, Some(b"master")) if primary.is_none() => primary = Some(node.node),
                    (_, Some(b"master")) => {}
                    (Some(b"loading"), _) => {}
                    _ => replicas.push(node.node),
                }
            }
            let Some(primary) = primary else {
                continue;
            };
            let mut bounds = slots.into_iter();
            let mut shard = None;
            while let (Some(start), Some(end)) = (bounds.next(), bounds.next()) {
                let index = *shard.get_or_insert_with(|| map.shard_of(primary.clone()));
                ranges.push(range(start, end, index, CMD)?);
            }
            if let Some(index) = shard {
                merge_replicas(&mut map.shards, index, replicas);
            }
        }
        map.set_ranges(ranges, CMD)?;
        Ok(map)
    }

    /// The map a `CLUSTER SLOTS` reply describes (Redis 6.2's form, the
    /// 7.0 one with each node's extra networking metadata, RESP2 or
    /// RESP3); `asked_host` is the host the command was sent to.
    ///
    /// A node's host is the endpoint given; for `?` the `ip` in its
    /// metadata; for a null or empty endpoint, `asked_host`. The ports are
    /// those for connections like the one that asked (TLS or not). The
    /// server lists only replicas that have synced and not failed. It
    /// does not say when a primary has failed: `CLUSTER SHARDS` does.
    ///
    /// Errors as for [`from_cluster_shards`](Self::from_cluster_shards).
    pub fn from_cluster_slots(frame: Frame, asked_host: &str) -> Result<SlotMap, ReplyError> {
        const CMD: &str = "CLUSTER SLOTS";
        let mut map = SlotMap::default();
        let mut ranges = Vec::new();
        for entry in array(check_error(frame)?, CMD, "the reply")? {
            let mut items = array(entry, CMD, "a slot range")?.into_iter();
            let (Some(start), Some(end), Some(primary)) =
                (items.next(), items.next(), items.next())
            else {
                return Err(bad(CMD, "a slot range without start, end and primary"));
            };
            let primary = slots_node(primary, asked_host)?;
            let replicas = items
                .map(|node| slots_node(node, asked_host))
                .collect::<Result<Vec<_>, _>>()?;
            let index = map.shard_of(primary);
            merge_replicas(&mut map.shards, index, replicas);
            ranges.push(range(start, end, index, CMD)?);
        }
        map.set_ranges(ranges, CMD)?;
        Ok(map)
    }

    /// The primary that owns `slot`; `None` when no node does (or `slot`
    /// is not below [`SLOT_COUNT`]).
    pub fn owner(&self, slot: u16) -> Option<&ClusterNode> {
        self.shard(slot).map(|shard| &shard.primary)
    }

    /// The replicas of `slot`'s primary that can serve reads (none when no
    /// node owns the slot, or when it moved to a node the map learnt of
    /// from a `MOVED`).
    pub fn replicas(&self, slot: u16) -> &[ClusterNode] {
        self.shard(slot).map_or(&[], |shard| &shard.replicas)
    }

    /// The primaries that own at least one slot, each once, in the order
    /// the reply first named them.
    pub fn primaries(&self) -> impl Iterator<Item = &ClusterNode> + '_ {
        // Shards that own no range are dropped as they lose their last
        // one, and a primary has one shard, so each is listed once.
        self.shards.iter().map(|shard| &shard.primary)
    }

    /// The slot ranges and their primaries, in slot order (adjacent ranges
    /// of one primary joined).
    pub fn ranges(&self) -> impl Iterator<Item = (RangeInclusive<u16>, &ClusterNode)> + '_ {
        self.ranges.iter().filter_map(|range| {
            let shard = self.shards.get(range.shard)?;
            Some((range.start..=range.end, &shard.primary))
        })
    }

    /// How many of the [`SLOT_COUNT`] slots have an owner.
    pub fn slots_covered(&self) -> usize {
        self.ranges
            .iter()
            .map(|r| usize::from(r.end - r.start) + 1)
            .sum()
    }

    /// Whether every slot has an owner (a map that is not complete is
    /// worth asking for again: the cluster is failing over, or resharding,
    /// or down).
    pub fn is_complete(&self) -> bool {
        self.slots_covered() == usize::from(SLOT_COUNT)
    }

    /// Applies a `MOVED <slot> <addr>` redirect ([`ServerErrorKind::Moved`]):
    /// `slot` now belongs to the node at `addr` (`host:port`, the host
    /// possibly an IPv6 address, bracketed or not), and only that slot is
    /// changed. `asked_host` is the host the redirected command went to:
    /// an empty host (`:6380`, an unknown endpoint) means that host; a
    /// host of `?` (host names preferred, none set) means the one node
    /// in the map listening on that port.
    ///
    /// A node the map does not know becomes the primary of a new shard,
    /// with no replicas known (one `MOVED` seldom comes alone: a client
    /// also asks for a new map soon after). Returns `false`, changing nothing, when
    /// `slot` or `addr` is not valid or a `?` host matches no single node:
    /// ask the cluster for a new map then.
    ///
    /// [`ServerErrorKind::Moved`]: crate::ServerErrorKind::Moved
    pub fn moved(&mut self, slot: u16, addr: &str, asked_host: &str) -> bool {
        if slot >= SLOT_COUNT {
            return false;
        }
        let Some((host, port)) = split_redirect_addr(addr) else {
            return false;
        };
        let node = match host {
            "?" => {
                let mut known = self
                    .shards
                    .iter()
                    .flat_map(|s| std::iter::once(&s.primary).chain(&s.replicas))
                    .filter(|n| n.has_port(port));
                match (known.next(), known.next()) {
                    (Some(node), None) => node.clone(),
                    _ => return false,
                }
            }
            host => {
                let host = if host.is_empty() { asked_host } else { host };
                let known = self
                    .shards
                    .iter()
                    .flat_map(|s| std::iter::once(&s.primary).chain(&s.replicas))
                    .find(|n| n.listens_at(host, port));
                match known {
                    Some(node) => node.clone(),
                    None => ClusterNode {
                        addr: ServerAddr {
                            host: host.to_owned(),
                            port,
                        },
                        tls_port: None,
                        id: None,
                    },
                }
            }
        };
        let shard = self.shard_of(node);
        let at = self.ranges.partition_point(|r| r.end < slot);
        match self.ranges.get(at).copied() {
            Some(r) if r.start <= slot => {
                if r.shard == shard {
                    return true;
                }
                let mut pieces = Vec::with_capacity(3);
                if r.start < slot {
                    pieces.push(SlotRange { end: slot - 1, ..r });
                }
                pieces.push(SlotRange {
                    start: slot,
                    end: slot,
                    shard,
                });
                if slot < r.end {
                    pieces.push(SlotRange {
                        start: slot + 1,
                        ..r
                    });
                }
                self.ranges.splice(at..=at, pieces);
            }
            _ => self.ranges.insert(
                at,
                SlotRange {
                    start: slot,
                    end: slot,
                    shard,
                },
            ),
        }
        self.tidy();
        true
    }

    fn shard(&self, slot: u16) -> Option<&Shard> {
        let at = self.ranges.partition_point(|r| r.end < slot);
        let range = self.ranges.get(at).filter(|r| r.start <= slot)?;
        self.shards.get(range.shard)
    }

    /// The index of the shard whose primary is at `node`'s address, added
    /// when there is none.
    fn shard_of(&mut self, node: ClusterNode) -> usize {
        let found = self.shards.iter().position(|s| {
            s.primary.addr == node.addr || s.primary.listens_at(&node.addr.host, node.addr.port)
        });
        found.unwrap_or_else(|| {
            self.shards.push(Shard {
                primary: node,
                replicas: Vec::new(),
            });
            self.shards.len() - 1
        })
    }

    /// Takes `ranges` (from a reply) as the map's: sorted, checked for
    /// overlaps, tidied.
    fn set_ranges(
        &mut self,
        mut ranges: Vec<SlotRange>,
        command: &'static str,
    ) -> Result<(), ReplyError> {
        ranges.sort_unstable_by_key(|r| r.start);
        for pair in ranges.windows(2) {
            if let [a, b] = pair {
                if b.start <= a.end {
                    return Err(bad(
                        command,
                        format!(
                            "slots {}-{} and {}-{} overlap",
                            a.start, a.end, b.start, b.end
                        ),
                    ));
                }
            }
        }
        self.ranges = ranges;
        self.tidy();
        Ok(())
    }

    /// Joins adjacent ranges of one shard and drops shards that own no
    /// range (renumbering the rest, order kept).
    fn tidy(&mut self) {
        let mut joined: Vec<SlotRange> = Vec::with_capacity(self.ranges.len());
        for r in self.ranges.drain(..) {
            match joined.last_mut() {
                Some(last)
                    if last.shard == r.shard && u32::from(last.end) + 1 == u32::from(r.start) =>
                {
                    last.end = r.end;
                }
                _ => joined.push(r),
            }
        }
        self.ranges = joined;
        let mut used = vec![false; self.shards.len()];
        for r in &self.ranges {
            if let Some(u) = used.get_mut(r.shard) {
                *u = true;
            }
        }
        if used.iter().all(|&u| u) {
            return;
        }
        let mut renumbered = Vec::with_capacity(self.shards.len());
        let mut next = 0;
        for &u in &used {
            renumbered.push(next);
            next += usize::from(u);
        }
        let mut index = 0;
        self.shards.retain(|_| {
            let keep = used.get(index).copied().unwrap_or(false);
            index += 1;
            keep
        });
        for r in &mut self.ranges {
            r.shard = renumbered.get(r.shard).copied().unwrap_or(0);
        }
    }
}

/// Adds `replicas` not yet listed to shard `index`'s.
fn merge_replicas(shards: &mut [Shard], index: usize, replicas: Vec<ClusterNode>) {
    if let Some(shard) = shards.get_mut(index) {
        for replica in replicas {
            if !shard.replicas.iter().any(|r| r.addr == replica.addr) {
                shard.replicas.push(replica);
            }
        }
    }
}

/// A slot range from its bounds.
fn range(
    start: Frame,
    end: Frame,
    shard: usize,
    command: &'static str,
) -> Result<SlotRange, ReplyError> {
    let slot = |frame: Frame| -> Result<u16, ReplyError> {
        let n = int(frame, command, "slot")?;
        u16::try_from(n)
            .ok()
            .filter(|&s| s < SLOT_COUNT)
            .ok_or_else(|| bad(command, format!("slot {n} is out of range")))
    };
    let (start, end) = (slot(start)?, slot(end)?);
    if start > end {
        return Err(bad(
            command,
            format!("slot range {start}-{end} is reversed"),
        ));
    }
    Ok(SlotRange { start, end, shard })
}

/// A TCP port from a reply; 0 is none.
fn port(frame: Frame, command: &'static str) -> Result<Option<u16>, ReplyError> {
    let n = int(frame, command, "port")?;
    match u16::try_from(n) {
        Ok(0) => Ok(None),
        Ok(port) => Ok(Some(port)),
        Err(_) => Err(bad(command, format!("port {n} is out of range"))),
    }
}

/// A string frame as UTF-8 text (`None`: not a string, or not UTF-8).
fn utf8(frame: &Frame) -> Option<&str> {
    text(frame).and_then(|t| std::str::from_utf8(t).ok())
}

/// The host to connect to, from an endpoint (`None`: null), the node's ip
/// (when known) and the host the command was sent to.
fn host_of(endpoint: Option<&str>, ip: Option<&str>, asked_host: &str) -> String {
    match endpoint {
        Some("?") => match ip {
            Some(ip) if !ip.is_empty() => ip.to_owned(),
            _ => asked_host.to_owned(),
        },
        Some(endpoint) if !endpoint.is_empty() => endpoint.to_owned(),
        _ => asked_host.to_owned(),
    }
}

/// One node of a `CLUSTER SHARDS` shard.
struct ShardsNode {
    node: ClusterNode,
    role: Option<Bytes>,
    health: Option<Bytes>,
}

impl ShardsNode {
    fn parse(frame: Frame, asked_host: &str) -> Result<ShardsNode, ReplyError> {
        const CMD: &str = "CLUSTER SHARDS";
        let (mut id, mut endpoint, mut ip) = (None, None, None);
        let (mut plain_port, mut tls_port) = (None, None);
        let (mut role, mut health) = (None, None);
        for (key, value) in pairs(frame, CMD)? {
            let Some(key) = text(&key) else { continue };
            match &key[..] {
                b"id" => id = utf8(&value).map(str::to_owned),
                b"endpoint" => endpoint = utf8(&value).map(str::to_owned),
                b"ip" => ip = utf8(&value).map(str::to_owned),
                b"port" => plain_port = port(value, CMD)?,
                b"tls-port" => tls_port = port(value, CMD)?,
                b"role" => role = text(&value).cloned(),
                b"health" => health = text(&value).cloned(),
                _ => {}
            }
        }
        let port = plain_port.or(tls_port).ok_or_else(|| {
            bad(
                CMD,
                format!(
                    "node {} has neither a port nor a TLS port",
                    id.as_deref().unwrap_or("?")
                ),
            )
        })?;
        let host = host_of(
            Some(endpoint.as_deref().unwrap_or("?")),
            ip.as_deref(),
            asked_host,
        );
        Ok(ShardsNode {
            node: ClusterNode {
                addr: ServerAddr { host, port },
                tls_port,
                id,
            },
            role,
            health,
        })
    }
}

/// One node of a `CLUSTER SLOTS` range: `[endpoint, port, id?, metadata?]`.
fn slots_node(frame: Frame, asked_host: &str) -> Result<ClusterNode, ReplyError> {
    const CMD: &str = "CLUSTER SLOTS";
    let mut items = array(frame, CMD, "a node")?.into_iter();
    let (Some(endpoint), Some(node_port)) = (items.next(), items.next()) else {
        return Err(bad(CMD, "a node without endpoint and port"));
    };
    let endpoint = match endpoint {
        Frame::Null => None,
        other => Some(
            utf8(&other)
                .ok_or_else(|| bad(CMD, format!("endpoint: {}", describe(&other))))?
                .to_owned(),
        ),
    };
    let port = port(node_port, CMD)?.ok_or_else(|| bad(CMD, "a node with port 0"))?;
    let id = items.next().and_then(|id| utf8(&id).map(str::to_owned));
    let mut ip = None;
    if let Some(metadata) = items.next() {
        for (key, value) in pairs(metadata, CMD)? {
            if text(&key).map(|k| &k[..]) == Some(b"ip") {
                ip = utf8(&value).map(str::to_owned);
            }
        }
    }
    Ok(ClusterNode {
        addr: ServerAddr {
            host: host_of(endpoint.as_deref(), ip.as_deref(), asked_host),
            port,
        },
        tls_port: None,
        id,
    })
}

// ---- the URL ----------------------------------------------------------------

/// Where a Redis Cluster is found: the seed nodes asked for the slot map
/// (tried in turn). The connection options (login, TLS, protocol) are the
/// same for every node of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterTarget {
    /// The seed nodes, in the order they are tried (at least one).
    pub seeds: Vec<ServerAddr>,
}

/// Parses a cluster URL:
/// `redis+cluster://[user:password@]host[:port][,host[:port]...][/0][?query]`,
/// `rediss+cluster://` for TLS (to every node, with the same settings), or
/// the same with `valkey+cluster` / `valkeys+cluster`. Seeds listen on
/// 6379 unless a port is given. The login and the query parameters are
/// those of [`parse_url`](crate::parse_url); the path may name only
/// database 0, the only one a cluster has.
///
/// Errors never show the password (nor the query, which may hold one).
///
/// ```
/// use xgroup_core::parse_cluster_target;
///
/// let (target, opts) =
///     parse_cluster_target("rediss+cluster://app:pw@n1:7000,n2,[::1]:7002?protocol=resp3").unwrap();
/// let seeds: Vec<String> = target.seeds.iter().map(|s| s.to_socket_string()).collect();
/// assert_eq!(seeds, ["n1:7000", "n2:6379", "[::1]:7002"]);
/// assert_eq!(opts.password.as_deref(), Some("pw"));
/// assert!(opts.tls.is_some() && opts.resp3);
/// assert!(parse_cluster_target("redis+cluster://n1/2").is_err());
/// ```
pub fn parse_cluster_target(input: &str) -> Result<(ClusterTarget, ConnectOptions), ConfigError> {
    let bad = |reason: String| ConfigError::new("url", reason);
    let Some(parts) = MultiHostUrl::split(input) else {
        return Err(bad(
            "a cluster URL starts redis+cluster:// (or rediss+cluster:// for TLS)".into(),
        ));
    };
    let data_scheme = match parts.scheme {
        "redis+cluster" | "valkey+cluster" => "redis",
        "rediss+cluster" | "valkeys+cluster" => "rediss",
        other => {
            return Err(bad(format!(
                "scheme {other:?} is not a cluster URL's; use redis+cluster:// \
                 (or rediss+cluster:// for TLS)"
            )))
        }
    };
    let seeds = parts.hosts("seed", CLUSTER_PORT)?;
    let query = parts
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let opts = parts.options(data_scheme, &seeds[0], parts.path, query)?;
    if opts.db != 0 {
        return Err(bad(format!(
            "cluster mode has only database 0 (the URL names database {})",
            opts.db
        )));
    }
    Ok((ClusterTarget { seeds }, opts))
}

// ---- asking a node for the map ---------------------------------------------

/// One cluster node asked for the slot map, request/response (for a client
/// that opens a connection per question, like `Connection`): write what
/// [`take_bytes`](Self::take_bytes) gives, feed what comes back to
/// [`input`](Self::input), and again, until it gives the map.
///
/// It logs in as the data connections do (`AUTH`, when the URL has a
/// password) and asks `CLUSTER SHARDS`; a node that does not know it
/// (`ERR unknown subcommand`: Redis 6.2) is asked `CLUSTER SLOTS` next.
///
/// ```
/// use xgroup_core::{ConnectOptions, ServerAddr, SlotMapQuestion};
///
/// let node = ServerAddr { host: "10.0.0.1".into(), port: 6379 };
/// let mut question = SlotMapQuestion::new(&ConnectOptions::default(), &node);
/// assert!(question.take_bytes().unwrap().ends_with(b"CLUSTER\r\n$6\r\nSHARDS\r\n"));
/// // Redis 6.2: CLUSTER SLOTS then.
/// assert_eq!(question.input(b"-ERR unknown subcommand 'SHARDS'.\r\n"), Ok(None));
/// assert!(question.take_bytes().unwrap().ends_with(b"SLOTS\r\n"));
/// let map = question
///     .input(b"*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$0\r\n\r\n:6379\r\n")
///     .unwrap()
///     .unwrap();
/// assert_eq!(map.owner(0).unwrap().addr, node); // (an empty host: the one asked)
/// assert!(question.take_bytes().is_none());
/// ```
pub struct SlotMapQuestion {
    decoder: crate::resp::Decoder,
    /// Bytes not yet taken (may hold the `AUTH`).
    out: BytesMut,
    asked: std::collections::VecDeque<MapAsked>,
    asked_host: String,
}

/// One command sent to the node asked whose reply is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MapAsked {
    Auth,
    Shards,
    Slots,
}

impl SlotMapQuestion {
    /// The question for the node at `asked`, logged in with `opts`'s
    /// user and password.
    pub fn new(opts: &ConnectOptions, asked: &ServerAddr) -> Self {
        let mut out = BytesMut::new();
        let mut asked_now = std::collections::VecDeque::with_capacity(2);
        if let Some(pass) = &opts.password {
            let argc = if opts.username.is_some() { 3 } else { 2 };
            let mut w = CommandWriter::begin(&mut out, argc);
            w.arg(b"AUTH");
            if let Some(user) = &opts.username {
                w.arg(user.as_bytes());
            }
            w.arg(pass.as_bytes());
            asked_now.push_back(MapAsked::Auth);
        }
        CommandWriter::begin(&mut out, 2)
            .arg(b"CLUSTER")
            .arg(b"SHARDS");
        asked_now.push_back(MapAsked::Shards);
        SlotMapQuestion {
            decoder: crate::resp::Decoder::new(),
            out,
            asked: asked_now,
            asked_host: asked.host.clone(),
        }
    }

    /// Bytes to write to the node, if any.
    pub fn take_bytes(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// Bytes from the node: `Ok(None)` until the answer is whole (check
    /// [`take_bytes`](Self::take_bytes) then: a question may follow), then
    /// the map; `Err` says why this node is of no use (a refused login,
    /// an error reply, bytes that are not RESP or not a map).
    pub fn input(&mut self, bytes: &[u8]) -> Result<Option<SlotMap>, String> {
        self.decoder.feed(bytes);
        while let Some(frame) = self.decoder.next_frame().map_err(|e| e.to_string())? {
            let Some(asked) = self.asked.pop_front() else {
                return Err("a reply to nothing asked".into());
            };
            let frame = match check_error(frame) {
                Ok(frame) => frame,
                Err(e)
                    if asked == MapAsked::Shards
                        && e.kind == crate::error::ServerErrorKind::UnknownCommand =>
                {
                    CommandWriter::begin(&mut self.out, 2)
                        .arg(b"CLUSTER")
                        .arg(b"SLOTS");
                    self.asked.push_back(MapAsked::Slots);
                    continue;
                }
                Err(e) => return Err(e.message),
            };
            let map = match asked {
                MapAsked::Auth => continue,
                MapAsked::Shards => SlotMap::from_cluster_shards(frame, &self.asked_host),
                MapAsked::Slots => SlotMap::from_cluster_slots(frame, &self.asked_host),
            };
            return map.map(Some).map_err(|e| e.to_string());
        }
        Ok(None)
    }
}

// By hand: the bytes not yet taken may hold the `AUTH`.
impl std::fmt::Debug for SlotMapQuestion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotMapQuestion")
            .field("unwritten_bytes", &self.out.len())
            .field("asked", &self.asked)
            .field("asked_host", &self.asked_host)
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::Decoder;

    fn frame(bytes: &[u8]) -> Frame {
        let mut d = Decoder::new();
        d.feed(bytes);
        let frame = d.next_frame().unwrap().unwrap();
        assert_eq!(d.buffered(), 0, "one frame");
        frame
    }

    fn node(host: &str, port: u16) -> ServerAddr {
        ServerAddr {
            host: host.into(),
            port,
        }
    }

    /// The map as `(start, end, primary port, replica ports)`.
    fn layout(map: &SlotMap) -> Vec<(u16, u16, u16, Vec<u16>)> {
        map.ranges()
            .map(|(r, primary)| {
                let replicas = map
                    .replicas(*r.start())
                    .iter()
                    .map(|n| n.addr.port)
                    .collect();
                (*r.start(), *r.end(), primary.addr.port, replicas)
            })
            .collect()
    }

    #[test]
    fn crc16_is_xmodem() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn key_slots_match_the_server() {
        // Each checked with CLUSTER KEYSLOT on Redis 7.0.15.
        for (key, slot) in [
            (&b"123456789"[..], 12739),
            (b"foo", 12182),
            (b"bar", 5061),
            (b"", 0),
            (b"{user1000}.following", 3443),
            (b"{user1000}.followers", 3443),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}zap", 4015),
            (b"foo{bar}{zap}", 5061),
            (b"a{b", 13340),
            (b"x}y{z}", 8157),
            (b"{orders:0}", 8578),
            (b"\xff\x00\x01", 8002),
        ] {
            assert_eq!(key_slot(key), slot, "{:?}", String::from_utf8_lossy(key));
        }
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOT_COUNT);
    }

    #[test]
    fn hash_tags_follow_the_rule() {
        assert_eq!(hash_tag(b"{user1000}.following"), Some(&b"user1000"[..]));
        assert_eq!(hash_tag(b"foo{}{bar}"), None);
        assert_eq!(hash_tag(b"foo{{bar}}zap"), Some(&b"{bar"[..]));
        assert_eq!(hash_tag(b"foo{bar}{zap}"), Some(&b"bar"[..]));
        assert_eq!(hash_tag(b"x{y}z{w}"), Some(&b"y"[..]));
        assert_eq!(hash_tag(b"a{}b"), None);
        assert_eq!(hash_tag(b"a}b{c"), None);
        assert_eq!(hash_tag(b"{"), None);
        assert_eq!(hash_tag(b"}{"), None);
        assert_eq!(hash_tag(b"{}"), None);
        assert_eq!(hash_tag(b"{x}"), Some(&b"x"[..]));
    }

    #[test]
    fn shard_keys_are_their_own_hash_tag_whatever_the_name() {
        assert_eq!(&shard_key(b"orders", 0)[..], b"{orders:0}");
        assert_eq!(&shard_key(b"orders", 15)[..], b"{orders:15}");
        assert_eq!(&shard_key(b"", 3)[..], b"{:3}");
        assert_eq!(&shard_key(b"a}b", 1)[..], b"{a%7Db:1}");
        assert_eq!(&shard_key(b"a%7Db", 1)[..], b"{a%257Db:1}");
        assert_eq!(&shard_key(b"{tenant}.x", 0)[..], b"{{tenant%7D.x:0}");
        for name in [&b"orders"[..], b"a}b", b"{tenant}.x", b"}}}", b"%", b""] {
            for i in [0, 1, 9, 10, 12345] {
                let key = shard_key(name, i);
                let tag = hash_tag(&key).unwrap();
                assert_eq!(tag.len(), key.len() - 2, "{key:?}");
                // And keys derived by the tag, like the heartbeat keys,
                // share the slot.
                let mut derived = b"{".to_vec();
                derived.extend_from_slice(tag);
                derived.extend_from_slice(b"}:xgroup:hb:g:c");
                assert_eq!(key_slot(&derived), key_slot(&key));
            }
        }
    }

    #[test]
    fn shard_keys_spread_over_slots() {
        for name in [
            &b"orders"[..],
            b"events",
            b"",
            b"a}b",
            b"{tenant1}.orders",
            b"x",
        ] {
            let slots: std::collections::BTreeSet<u16> =
                (0..16).map(|i| key_slot(&shard_key(name, i))).collect();
            assert_eq!(slots.len(), 16, "{:?}", String::from_utf8_lossy(name));
        }
        // Checked with CLUSTER KEYSLOT.
        assert_eq!(key_slot(&shard_key(b"orders", 0)), 8578);
    }

    #[test]
    fn three_shards_on_the_default_three_primary_layout() {
        // `redis-cli --cluster create` with three primaries: 0-5460,
        // 5461-10922, 10923-16383. Distinct slots are not distinct
        // primaries: how many of the three each name's three shards hit.
        let primary = |slot: u16| match slot {
            0..=5460 => 0,
            5461..=10922 => 1,
            _ => 2,
        };
        let hit = |name: &[u8]| {
            (0..3)
                .map(|i| primary(key_slot(&shard_key(name, i))))
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        assert_eq!(hit(b"orders"), 3);
        assert_eq!(hit(b"events"), 2);
        assert_eq!(hit(b"mystream"), 2);
        assert_eq!(hit(b"payments"), 3);
        let names = 1000;
        let all_three = (0..names)
            .filter(|i| hit(format!("stream-{i}").as_bytes()) == 3)
            .count();
        // 3! / 3^3 = 22% if slots were independent; CRC16 does better.
        assert!(all_three > names / 5, "{all_three} of {names}");
    }

    proptest::proptest! {
        #[test]
        fn up_to_ten_shards_are_always_on_distinct_slots(name: Vec<u8>) {
            let slots: std::collections::BTreeSet<u16> =
                (0..10).map(|i| key_slot(&shard_key(&name, i))).collect();
            proptest::prop_assert_eq!(slots.len(), 10);
        }

        #[test]
        fn shard_for_is_in_range(key: Vec<u8>, shards in 0usize..100) {
            let shard = shard_for(&key, shards);
            proptest::prop_assert!(shard < shards.max(1));
            proptest::prop_assert_eq!(shard, shard_for(&key, shards));
        }
    }

    #[test]
    fn shard_for_is_stable_and_even() {
        // Fixed values: a change here moves every partition key.
        assert_eq!(shard_for(b"123456789", 1 << 16), 0x31C3);
        assert_eq!(
            shard_for(b"customer-42", 8),
            usize::from(crc16(b"customer-42")) % 8
        );
        assert_eq!(shard_for(b"x", 0), 0);
        assert_eq!(shard_for(b"x", 1), 0);
        for shards in [2, 3, 4, 7, 16] {
            let mut counts = vec![0u32; shards];
            for i in 0..10_000 {
                counts[shard_for(format!("order-{i}").as_bytes(), shards)] += 1;
            }
            let expected = 10_000 / shards as u32;
            for &c in &counts {
                assert!(c.abs_diff(expected) * 10 < expected, "{shards}: {counts:?}");
            }
        }
    }

    // ---- topology -----------------------------------------------------------

    use super::fixtures::*;

    const HEALTHY: [(u16, u16, u16, &[u16]); 3] = [
        (0, 5460, 31001, &[31004]),
        (5461, 10922, 31002, &[31005]),
        (10923, 16383, 31003, &[31006]),
    ];

    fn expect(layout: Vec<(u16, u16, u16, Vec<u16>)>, expected: &[(u16, u16, u16, &[u16])]) {
        let expected: Vec<(u16, u16, u16, Vec<u16>)> = expected
            .iter()
            .map(|&(a, b, p, r)| (a, b, p, r.to_vec()))
            .collect();
        assert_eq!(layout, expected);
    }

    fn ports<'a>(nodes: impl Iterator<Item = &'a ClusterNode>) -> Vec<u16> {
        nodes.map(|n| n.addr.port).collect()
    }

    #[test]
    fn cluster_shards_from_a_real_server_in_both_protocols() {
        // RESP3: maps; the replicas online.
        let map = SlotMap::from_cluster_shards(frame(SHARDS_RESP3), "seed").unwrap();
        expect(layout(&map), &HEALTHY);
        assert!(map.is_complete());
        assert_eq!(map.slots_covered(), 16384);
        // In the reply's order, each once.
        assert_eq!(ports(map.primaries()), [31001, 31003, 31002]);
        let owner = map.owner(key_slot(b"foo")).unwrap();
        assert_eq!(owner.addr, node("127.0.0.1", 31003));
        assert_eq!(
            owner.id.as_deref(),
            Some("aa029cd5ad619bf83e1427c6f1e5d18af1dc9a21")
        );
        assert_eq!(owner.tls_port, None);
        assert_eq!(owner.connect_addr(true), owner.addr);
        assert_eq!(map.owner(0).unwrap().addr.port, 31001);
        assert_eq!(map.owner(5460).unwrap().addr.port, 31001);
        assert_eq!(map.owner(5461).unwrap().addr.port, 31002);
        assert_eq!(map.owner(16383).unwrap().addr.port, 31003);
        assert_eq!(map.owner(16384), None);
        assert!(map.replicas(16384).is_empty());
        // RESP2: flat arrays; captured while the replicas were `loading`,
        // so none is listed.
        let map = SlotMap::from_cluster_shards(frame(SHARDS_RESP2), "seed").unwrap();
        expect(
            layout(&map),
            &[
                (0, 5460, 31001, &[]),
                (5461, 10922, 31002, &[]),
                (10923, 16383, 31003, &[]),
            ],
        );
    }

    #[test]
    fn cluster_slots_from_a_real_server_in_both_protocols() {
        let map = SlotMap::from_cluster_slots(frame(SLOTS_RESP3), "seed").unwrap();
        expect(layout(&map), &HEALTHY);
        assert_eq!(ports(map.primaries()), [31001, 31002, 31003]);
        assert_eq!(
            map.owner(0).unwrap().id.as_deref(),
            Some("0784d568d8aefca3c1ffdc3ea156e2c5e32b8eb3")
        );
        // The same nodes as CLUSTER SHARDS gives.
        let shards = SlotMap::from_cluster_shards(frame(SHARDS_RESP3), "seed").unwrap();
        for slot in [0, 5460, 5461, 10922, 10923, 16383] {
            assert_eq!(map.owner(slot), shards.owner(slot));
            assert_eq!(map.replicas(slot), shards.replicas(slot));
        }
        // RESP2, 31004 synced, the other replicas not yet (left out).
        let map = SlotMap::from_cluster_slots(frame(SLOTS_RESP2), "seed").unwrap();
        expect(
            layout(&map),
            &[
                (0, 5460, 31001, &[31004]),
                (5461, 10922, 31002, &[]),
                (10923, 16383, 31003, &[]),
            ],
        );
        // Redis 6.2: no metadata element.
        let map = SlotMap::from_cluster_slots(
            frame(b"*1\r\n*4\r\n:0\r\n:16383\r\n*3\r\n$8\r\n10.0.0.1\r\n:6379\r\n$2\r\nn1\r\n*3\r\n$8\r\n10.0.0.2\r\n:6379\r\n$2\r\nn2\r\n"),
            "seed",
        )
        .unwrap();
        assert!(map.is_complete());
        assert_eq!(map.owner(0).unwrap().addr, node("10.0.0.1", 6379));
        assert_eq!(map.replicas(0)[0].addr, node("10.0.0.2", 6379));
        assert_eq!(map.replicas(0)[0].id.as_deref(), Some("n2"));
    }

    #[test]
    fn tls_ports_are_offered() {
        let map = SlotMap::from_cluster_shards(frame(TLS_SHARDS_RESP3), "seed").unwrap();
        assert!(map.is_complete());
        let owner = map.owner(0).unwrap();
        assert_eq!(owner.addr, node("127.0.0.1", 31021));
        assert_eq!(owner.tls_port, Some(31031));
        assert_eq!(owner.connect_addr(true), node("127.0.0.1", 31031));
        assert_eq!(owner.connect_addr(false), node("127.0.0.1", 31021));
        // A node with only a TLS port (`port` 0 or absent).
        let map = SlotMap::from_cluster_shards(
            frame(b"*1\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n%5\r\n$4\r\nport\r\n:0\r\n$8\r\ntls-port\r\n:6380\r\n$2\r\nip\r\n$2\r\nh1\r\n$8\r\nendpoint\r\n$2\r\nh1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"),
            "seed",
        )
        .unwrap();
        let owner = map.owner(0).unwrap();
        assert_eq!(owner.addr, node("h1", 6380));
        assert_eq!(owner.connect_addr(true), node("h1", 6380));
    }

    #[test]
    fn endpoints_host_names_and_unknown_endpoints() {
        // Host names preferred: node2.example has one, the others `?` (their ip).
        let shards = SlotMap::from_cluster_shards(frame(HOSTNAME_SHARDS_RESP3), "seed").unwrap();
        let slots = SlotMap::from_cluster_slots(frame(HOSTNAME_SLOTS_RESP2), "seed").unwrap();
        for map in [&shards, &slots] {
            expect(layout(map), &HEALTHY);
            assert_eq!(map.owner(0).unwrap().addr, node("127.0.0.1", 31001));
            assert_eq!(map.owner(6000).unwrap().addr, node("node2.example", 31002));
            assert_eq!(map.replicas(6000)[0].addr, node("127.0.0.1", 31005));
        }
        // Unknown endpoints: the host asked, whatever the ip.
        for map in [
            SlotMap::from_cluster_shards(frame(UNKNOWN_SHARDS_RESP3), "seed.example").unwrap(),
            SlotMap::from_cluster_slots(frame(UNKNOWN_SLOTS_RESP2), "seed.example").unwrap(),
            SlotMap::from_cluster_slots(frame(UNKNOWN_SLOTS_RESP3), "seed.example").unwrap(),
        ] {
            expect(layout(&map), &HEALTHY);
            for (_, primary) in map.ranges() {
                assert_eq!(primary.addr.host, "seed.example");
            }
            assert_eq!(map.replicas(0)[0].addr, node("seed.example", 31004));
        }
        // Redis 6 answers a single-node cluster with an empty ip.
        let map = SlotMap::from_cluster_slots(
            frame(b"*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$0\r\n\r\n:7000\r\n$2\r\nn1\r\n"),
            "10.1.1.1",
        )
        .unwrap();
        assert_eq!(map.owner(0).unwrap().addr, node("10.1.1.1", 7000));
    }

    #[test]
    fn failed_nodes_are_left_out() {
        // 31003 failed and 31006 took over: 31003 is a failed master of a
        // shard without slots.
        for map in [
            SlotMap::from_cluster_shards(frame(FAILOVER_SHARDS_RESP2), "seed").unwrap(),
            SlotMap::from_cluster_slots(frame(FAILOVER_SLOTS_RESP2), "seed").unwrap(),
        ] {
            expect(
                layout(&map),
                &[
                    (0, 5460, 31001, &[31004]),
                    (5461, 10922, 31002, &[31005]),
                    (10923, 16383, 31006, &[]),
                ],
            );
            assert!(map.is_complete());
            assert_eq!(map.primaries().count(), 3);
        }
        // Then 31002 failed and its replica may not fail over: its slots
        // have no owner until one does.
        let map = SlotMap::from_cluster_shards(frame(DOWN_SHARDS_RESP3), "seed").unwrap();
        expect(
            layout(&map),
            &[(0, 5460, 31001, &[31004]), (10923, 16383, 31006, &[])],
        );
        assert!(!map.is_complete());
        assert_eq!(map.slots_covered(), 16384 - 5462);
        assert_eq!(map.owner(6000), None);
        assert!(map.replicas(6000).is_empty());
        assert_eq!(ports(map.primaries()), [31001, 31006]);
    }

    #[test]
    fn moved_changes_one_slot() {
        let original = SlotMap::from_cluster_shards(frame(SHARDS_RESP3), "127.0.0.1").unwrap();
        let mut map = original.clone();
        // As the server says it: `MOVED 12182 127.0.0.1:31001`.
        let e = crate::error::ServerError::from_message(b"MOVED 12182 127.0.0.1:31001");
        let crate::error::ServerErrorKind::Moved { slot, addr } = e.kind else {
            panic!("{e:?}")
        };
        assert!(map.moved(slot, &addr, "127.0.0.1"));
        expect(
            layout(&map),
            &[
                (0, 5460, 31001, &[31004]),
                (5461, 10922, 31002, &[31005]),
                (10923, 12181, 31003, &[31006]),
                (12182, 12182, 31001, &[31004]),
                (12183, 16383, 31003, &[31006]),
            ],
        );
        assert!(map.is_complete());
        assert_eq!(map.primaries().count(), 3);
        // Moved again (no change), then back: the ranges join again.
        assert!(map.moved(12182, "127.0.0.1:31001", "x"));
        assert!(map.moved(12182, "127.0.0.1:31003", "x"));
        assert_eq!(map, original);
        // At the edges of a range, and next to a range of the same node.
        assert!(map.moved(5461, "127.0.0.1:31001", "x"));
        assert!(map.moved(16383, "127.0.0.1:31002", "x"));
        expect(
            layout(&map),
            &[
                (0, 5461, 31001, &[31004]),
                (5462, 10922, 31002, &[31005]),
                (10923, 16382, 31003, &[31006]),
                (16383, 16383, 31002, &[31005]),
            ],
        );
        // A whole range moved slot by slot ends as one range, and the
        // node that lost its last slot is no longer a primary.
        let mut map = original.clone();
        for slot in 10923..=16383 {
            assert!(map.moved(slot, "127.0.0.1:31002", "x"));
        }
        expect(
            layout(&map),
            &[(0, 5460, 31001, &[31004]), (5461, 16383, 31002, &[31005])],
        );
        assert_eq!(ports(map.primaries()), [31001, 31002]);
    }

    #[test]
    fn moved_to_new_nodes_and_odd_addresses() {
        let original =
            SlotMap::from_cluster_shards(frame(HOSTNAME_SHARDS_RESP3), "127.0.0.1").unwrap();
        let mut map = original.clone();
        // A node not in the map: a new primary, no replicas.
        assert!(map.moved(100, "10.0.0.9:7000", "127.0.0.1"));
        assert_eq!(map.owner(100).unwrap().addr, node("10.0.0.9", 7000));
        assert!(map.replicas(100).is_empty());
        assert_eq!(map.primaries().count(), 4);
        assert!(map.moved(100, "127.0.0.1:31001", "127.0.0.1"));
        assert_eq!(map, original);
        // IPv6, bracketed or not.
        assert!(map.moved(7, "::1:7000", "x"));
        assert_eq!(map.owner(7).unwrap().addr, node("::1", 7000));
        assert!(map.moved(7, "[::1]:7000", "x"));
        assert_eq!(map.primaries().count(), 4);
        // `?` (as captured: `MOVED 12182 ?:31003`): the node on that port.
        let mut map = original.clone();
        assert!(map.moved(0, "?:31003", "127.0.0.1"));
        assert_eq!(map.owner(0).unwrap().addr, node("127.0.0.1", 31003));
        assert!(!map.moved(0, "?:9999", "127.0.0.1"));
        // Empty (as captured: `MOVED 12182 :31003`): the host asked.
        let mut map = SlotMap::from_cluster_shards(frame(UNKNOWN_SHARDS_RESP3), "seed").unwrap();
        assert!(map.moved(0, ":31003", "seed"));
        assert_eq!(map.owner(0).unwrap().addr, node("seed", 31003));
        assert_eq!(map.primaries().count(), 3);
        // To a TLS port (as captured over TLS: `MOVED 12182 127.0.0.1:31033`).
        let mut map = SlotMap::from_cluster_shards(frame(TLS_SHARDS_RESP3), "seed").unwrap();
        assert!(map.moved(0, "127.0.0.1:31033", "seed"));
        assert_eq!(map.owner(0).unwrap().addr, node("127.0.0.1", 31023));
        assert_eq!(map.primaries().count(), 3);
        // Redirects that cannot be applied change nothing.
        let mut map = original.clone();
        for (slot, addr) in [
            (16384, "127.0.0.1:31001"),
            (0, "127.0.0.1"),
            (0, "127.0.0.1:0"),
            (0, "127.0.0.1:x"),
            (0, "127.0.0.1:99999"),
            (0, ""),
        ] {
            assert!(!map.moved(slot, addr, "127.0.0.1"), "{slot} {addr}");
            assert_eq!(map, original);
        }
        // An empty map learns slot by slot.
        let mut map = SlotMap::default();
        assert_eq!(map.owner(5), None);
        assert!(map.moved(5, "h:1", "x"));
        assert!(map.moved(3, "h:1", "x"));
        assert!(map.moved(4, "h:1", "x"));
        assert!(map.moved(16383, "h:2", "x"));
        assert_eq!(
            map.ranges()
                .map(|(r, n)| (r, n.addr.port))
                .collect::<Vec<_>>(),
            [(3..=5, 1), (16383..=16383, 2)]
        );
        assert_eq!(map.slots_covered(), 4);
    }

    #[test]
    fn malformed_replies_are_errors() {
        let shards = |bytes: &[u8]| SlotMap::from_cluster_shards(frame(bytes), "seed");
        let slots = |bytes: &[u8]| SlotMap::from_cluster_slots(frame(bytes), "seed");
        let disabled = b"-ERR This instance has cluster support disabled\r\n";
        assert!(matches!(shards(disabled), Err(ReplyError::Server(_))));
        assert!(matches!(slots(disabled), Err(ReplyError::Server(_))));
        let node =
            "%3\r\n$4\r\nport\r\n:1\r\n$8\r\nendpoint\r\n$1\r\nh\r\n$4\r\nrole\r\n$6\r\nmaster\r\n";
        let shard = |slots: &str, node: &str| {
            format!("%2\r\n$5\r\nslots\r\n{slots}$5\r\nnodes\r\n*1\r\n{node}")
        };
        let good = format!("*1\r\n{}", shard("*2\r\n:0\r\n:16383\r\n", node));
        assert!(shards(good.as_bytes()).unwrap().is_complete());
        for bad in [
            "+OK\r\n".to_owned(),
            ":1\r\n".to_owned(),
            "*1\r\n:1\r\n".to_owned(),
            "*1\r\n*3\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n".to_owned(),
            format!("*1\r\n{}", shard("*1\r\n:0\r\n", node)),
            format!("*1\r\n{}", shard("*2\r\n:0\r\n:16384\r\n", node)),
            format!("*1\r\n{}", shard("*2\r\n:-1\r\n:5\r\n", node)),
            format!("*1\r\n{}", shard("*2\r\n:9\r\n:5\r\n", node)),
            format!("*1\r\n{}", shard("*2\r\n$1\r\nx\r\n:5\r\n", node)),
            format!("*1\r\n{}", shard(":1\r\n", node)),
            format!("*1\r\n{}", shard("*2\r\n:0\r\n:5\r\n", ":1\r\n")),
            format!(
                "*1\r\n{}",
                shard("*2\r\n:0\r\n:5\r\n", "%1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n")
            ),
            format!(
                "*1\r\n{}",
                shard("*2\r\n:0\r\n:5\r\n", "%1\r\n$4\r\nport\r\n:70000\r\n")
            ),
            format!(
                "*1\r\n{}",
                shard("*2\r\n:0\r\n:5\r\n", "*1\r\n$4\r\nport\r\n")
            ),
            format!(
                "*2\r\n{}{}",
                shard("*2\r\n:0\r\n:100\r\n", node),
                shard("*2\r\n:100\r\n:200\r\n", node)
            ),
        ] {
            assert!(
                matches!(shards(bad.as_bytes()), Err(ReplyError::Protocol(_))),
                "{bad:?}"
            );
        }
        let node = "*3\r\n$1\r\nh\r\n:1\r\n$2\r\nid\r\n";
        for bad in [
            "$2\r\nno\r\n".to_owned(),
            "*1\r\n:1\r\n".to_owned(),
            "*1\r\n*2\r\n:0\r\n:5\r\n".to_owned(),
            "*1\r\n*3\r\n:0\r\n:5\r\n*1\r\n$1\r\nh\r\n".to_owned(),
            "*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n:0\r\n".to_owned(),
            "*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n:1\r\n:1\r\n".to_owned(),
            "*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n$1\r\nx\r\n".to_owned(),
            "*1\r\n*3\r\n:0\r\n:5\r\n*4\r\n$1\r\nh\r\n:1\r\n$2\r\nid\r\n:1\r\n".to_owned(),
            format!("*1\r\n*4\r\n:0\r\n:5\r\n{node}:1\r\n"),
            format!("*1\r\n*3\r\n:0\r\n:99999\r\n{node}"),
            format!("*2\r\n*3\r\n:0\r\n:5\r\n{node}*3\r\n:5\r\n:6\r\n{node}"),
        ] {
            assert!(
                matches!(slots(bad.as_bytes()), Err(ReplyError::Protocol(_))),
                "{bad:?}"
            );
        }
        // Empty replies are empty maps (a cluster with no slots assigned).
        assert_eq!(shards(b"*0\r\n").unwrap(), SlotMap::default());
        assert_eq!(slots(b"*0\r\n").unwrap(), SlotMap::default());
    }

    #[test]
    fn damaged_real_replies_never_panic() {
        for fixture in [SHARDS_RESP2, SHARDS_RESP3, SLOTS_RESP3, UNKNOWN_SLOTS_RESP2] {
            for at in 0..fixture.len() {
                for byte in [b'0', b'9', b'-', b'x', b'%', b'*', b'_'] {
                    let mut damaged = fixture.to_vec();
                    damaged[at] = byte;
                    let mut d = Decoder::new();
                    d.feed(&damaged);
                    if let Ok(Some(frame)) = d.next_frame() {
                        let _ = SlotMap::from_cluster_shards(frame.clone(), "seed");
                        let _ = SlotMap::from_cluster_slots(frame, "seed");
                    }
                }
            }
        }
    }

    // ---- the URL ------------------------------------------------------------

    #[test]
    fn cluster_urls_name_the_seeds_and_the_options() {
        let (t, o) = parse_cluster_target("redis+cluster://n1").unwrap();
        assert_eq!(t.seeds, [node("n1", 6379)]);
        assert_eq!(o, ConnectOptions::default());
        let (t, o) = parse_cluster_target(
            "rediss+cluster://app:p%40ss@10.0.0.1:7000,[::1],n3:7002/0?protocol=resp3&name=worker%201",
        )
        .unwrap();
        let shown: Vec<String> = t.seeds.iter().map(|a| a.to_socket_string()).collect();
        assert_eq!(shown, ["10.0.0.1:7000", "[::1]:6379", "n3:7002"]);
        assert_eq!(
            (o.username.as_deref(), o.password.as_deref()),
            (Some("app"), Some("p@ss"))
        );
        assert!(o.tls.is_some() && o.resp3);
        assert_eq!((o.db, o.client_name.as_deref()), (0, Some("worker 1")));
        for (url, tls) in [
            ("valkey+cluster://h/", false),
            ("valkeys+cluster://:pw@h:1", true),
            ("redis+cluster://h:1,h:2", false),
        ] {
            let (_, o) = parse_cluster_target(url).unwrap();
            assert_eq!(o.tls.is_some(), tls, "{url}");
        }
        // parse_target takes them too.
        assert!(matches!(
            crate::parse_target("redis+cluster://h"),
            Ok((crate::Target::Cluster(_), _))
        ));
    }

    #[test]
    fn bad_cluster_urls_are_refused_without_showing_secrets() {
        for bad in [
            "redis+cluster://",
            "redis+cluster://u:pw-7f3a9c@",
            "redis+cluster://h1,,h2",
            "redis+cluster://h1,",
            "redis+cluster://h:99999",
            "redis+cluster://u:pw-7f3a9c@h/x",
            "redis+cluster://u:pw-7f3a9c@h/0/1",
            "redis+cluster://u:pw-7f3a9c@h?nope=pw-7f3a9c",
            "redis+cluster://h?password=pw-7f3a9c",
            "redis+cluster://user@h",
            "redis+cluster://u:pw-7f3a9c%FF@h",
            "redis://u:pw-7f3a9c@h",
            "redis+sentinel://u:pw-7f3a9c@h/m",
            "u:pw-7f3a9c@h:6379",
        ] {
            let e = parse_cluster_target(bad).expect_err(bad);
            assert_eq!(e.option, "url");
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains("pw-7f3a9c"), "{bad}: {shown}");
            }
        }
        let e = parse_cluster_target("rediss+cluster://u:pw-7f3a9c@h1,h2/3").unwrap_err();
        assert!(e.reason.contains("only database 0"), "{e}");
        assert!(!e.to_string().contains("pw-7f3a9c"));
        let e = parse_cluster_target("redis://h").unwrap_err();
        assert!(e.reason.contains("redis+cluster://"), "{e}");
    }

    #[test]
    fn a_slot_map_question_logs_in_asks_shards_and_takes_the_answer_in_any_cut() {
        let opts = ConnectOptions {
            username: Some("app".into()),
            password: Some("pw-5be1".into()),
            ..ConnectOptions::default()
        };
        let mut q = SlotMapQuestion::new(&opts, &node("127.0.0.1", 31001));
        assert!(!format!("{q:?}").contains("pw-5be1"));
        let bytes = q.take_bytes().unwrap();
        assert!(bytes.starts_with(b"*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$7\r\npw-5be1\r\n"));
        assert!(bytes.ends_with(b"*2\r\n$7\r\nCLUSTER\r\n$6\r\nSHARDS\r\n"));
        assert_eq!(q.take_bytes(), None);
        assert_eq!(q.input(b"+OK\r\n"), Ok(None));
        let (head, tail) = SHARDS_RESP3.split_at(100);
        assert_eq!(q.input(head), Ok(None));
        let map = q.input(tail).unwrap().unwrap();
        assert_eq!(
            map,
            SlotMap::from_cluster_shards(frame(SHARDS_RESP3), "x").unwrap()
        );
        assert_eq!(q.take_bytes(), None);
    }

    #[test]
    fn a_slot_map_question_falls_back_to_cluster_slots_on_redis_6_2() {
        let mut q = SlotMapQuestion::new(&ConnectOptions::default(), &node("127.0.0.1", 31001));
        assert!(q.take_bytes().unwrap().starts_with(b"*2\r\n$7\r\nCLUSTER"));
        let unknown = b"-ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.\r\n";
        assert_eq!(q.input(unknown), Ok(None));
        let again = q.take_bytes().unwrap();
        assert_eq!(&again[..], b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n");
        let map = q.input(SLOTS_RESP2).unwrap().unwrap();
        assert!(map.is_complete());
    }

    #[test]
    fn a_slot_map_question_says_why_a_node_is_of_no_use_and_never_panics() {
        let asked = node("127.0.0.1", 7000);
        let opts = ConnectOptions {
            password: Some("pw".into()),
            ..ConnectOptions::default()
        };
        let mut q = SlotMapQuestion::new(&opts, &asked);
        let e = q
            .input(b"-WRONGPASS invalid username-password pair\r\n")
            .unwrap_err();
        assert!(e.starts_with("WRONGPASS"), "{e}");
        let mut q = SlotMapQuestion::new(&ConnectOptions::default(), &asked);
        let e = q
            .input(b"-ERR This instance has cluster support disabled\r\n")
            .unwrap_err();
        assert!(e.contains("cluster support disabled"), "{e}");
        for garbage in [
            &b"?what\r\n"[..],
            b":12\r\n",
            b"*1\r\n$3\r\nabc\r\n",
            b"+OK\r\n+OK\r\n",
        ] {
            let mut q = SlotMapQuestion::new(&ConnectOptions::default(), &asked);
            assert!(q.input(garbage).is_err(), "{garbage:?}");
        }
    }
}
