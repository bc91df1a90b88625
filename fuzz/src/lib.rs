//! Bodies of the fuzz targets, shared by the libFuzzer targets in
//! `fuzz_targets/` and by `core/tests/fuzz_corpus.rs`, which replays the
//! committed corpus through the same checks in a plain `cargo test`.
//!
//! Every function takes the raw fuzzer input and panics when a check fails.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use xgroup_core::reply;
use xgroup_core::resp::DEFAULT_MAX_FRAME;
use xgroup_core::{
    BatchId, Conn, ConnectOptions, Consumer, ConsumerConfig, Decoder, Event, GroupStart, Outcome,
    StreamId, Value,
};

// ---- decode_frames ---------------------------------------------------------

/// Frame size limits the decoder target picks from (small ones reach the
/// `FrameTooLarge` paths with short inputs).
const MAX_FRAMES: [usize; 4] = [DEFAULT_MAX_FRAME, DEFAULT_MAX_FRAME, 64, 1024];

/// Splits a `decode_frames` input into (chunk sizes, frame limit, RESP bytes).
///
/// Byte 0: low 3 bits = number `k` of chunk-size bytes that follow, bits 3-4
/// pick the frame limit. The next `k` bytes are chunk sizes (`b + 1`, used
/// in turn, cycling); `k == 0` means one byte at a time.
fn split_decode_input(data: &[u8]) -> (Vec<usize>, usize, &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return (vec![1], DEFAULT_MAX_FRAME, data);
    };
    let k = usize::from(head & 7).min(rest.len());
    let max_frame = MAX_FRAMES[usize::from((head >> 3) & 3)];
    let (sizes, payload) = rest.split_at(k);
    let mut sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b) + 1).collect();
    if sizes.is_empty() {
        sizes.push(1);
    }
    (sizes, max_frame, payload)
}

/// Frames, as the exact bytes the scan cut out, until the first error (of
/// the scan, or of decoding a frame) or until more bytes are needed, and
/// whether it stopped on an error. Comparing raw frames is exact and
/// repeatable (decoded maps are not: redis-protocol keeps a random one of
/// duplicate keys); every frame is decoded too, which must not panic.
fn drain_frames(decoder: &mut Decoder, frames: &mut Vec<String>) -> bool {
    loop {
        match decoder.next_raw() {
            Ok(Some(raw)) => {
                frames.push(format!("{:?}", raw.bytes()));
                if raw.decode().is_err() {
                    return true;
                }
            }
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

/// `decode_frames`: the decoder never panics, and the frames it returns do
/// not depend on how the bytes were split into reads (up to the first error,
/// which must happen in both or in neither).
pub fn decode_frames(data: &[u8]) {
    let (sizes, max_frame, payload) = split_decode_input(data);

    let mut whole = Decoder::with_max_frame(max_frame);
    whole.feed(payload);
    let mut whole_frames = Vec::new();
    let whole_failed = drain_frames(&mut whole, &mut whole_frames);

    let mut chunked = Decoder::with_max_frame(max_frame);
    let mut chunked_frames = Vec::new();
    let mut chunked_failed = false;
    let mut rest = payload;
    let mut size = sizes.iter().cycle();
    while !rest.is_empty() && !chunked_failed {
        let n = size.next().copied().unwrap_or(1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        chunked.feed(chunk);
        chunked_failed = drain_frames(&mut chunked, &mut chunked_frames);
    }

    if whole_frames != chunked_frames {
        let i = whole_frames
            .iter()
            .zip(&chunked_frames)
            .take_while(|(a, b)| a == b)
            .count();
        panic!(
            "frames depend on the read sizes {sizes:?} (max_frame {max_frame}): \
             {} frames whole (error: {whole_failed}), {} chunked (error: {chunked_failed}); \
             frame {i} whole: {:?}, chunked: {:?}",
            whole_frames.len(),
            chunked_frames.len(),
            whole_frames.get(i),
            chunked_frames.get(i),
        );
    }
    assert_eq!(
        whole_failed, chunked_failed,
        "error depends on the read sizes {sizes:?} (max_frame {max_frame}); frames {whole_frames:?}"
    );
    if !whole_failed {
        assert_eq!(whole.buffered(), chunked.buffered());
    }
}

// ---- parse_replies ---------------------------------------------------------

/// `parse_replies`: (and the XREADGROUP fast path agrees with the frame path) every frame decoded from the input goes through every
/// typed parser and `Value::from_frame`; none may panic.
pub fn parse_replies(data: &[u8]) {
    let mut decoder = Decoder::new();
    decoder.feed(data);
    while let Ok(Some(raw)) = decoder.next_raw() {
        // The XREADGROUP fast path, where it applies, agrees with the frame
        // path exactly.
        let fast = reply::xreadgroup_raw(raw.bytes(), b"s");
        // And the one for several streams (a combined read's).
        let streams: [&[u8]; 2] = [b"s", b"t"];
        let fast_streams = reply::xreadgroup_streams_raw(raw.bytes(), &streams);
        let Ok(frame) = raw.decode() else {
            // Both may refuse a broken frame, each in its own words (the
            // consumer drops the connection either way); the fast path must
            // never return entries from one.
            assert!(
                !matches!(fast, Some(Ok(_))) && !matches!(fast_streams, Some(Ok(_))),
                "fast path accepted a frame the decoder rejects"
            );
            continue;
        };
        if let Some(fast) = fast {
            assert_eq!(
                fast,
                reply::xreadgroup(frame.clone(), b"s"),
                "fast and frame paths differ"
            );
        }
        if let Some(fast) = fast_streams {
            assert_eq!(
                fast,
                reply::xreadgroup_streams(frame.clone(), &streams),
                "fast and frame paths differ over several streams"
            );
        }
        let _ = reply::check_error(frame.clone());
        let _ = reply::ok(frame.clone(), "SET");
        let _ = reply::integer(frame.clone(), "XACK");
        let _ = reply::group_create(frame.clone());
        let _ = reply::xreadgroup(frame.clone(), b"s");
        let _ = reply::xreadgroup(frame.clone(), b"");
        let _ = reply::xautoclaim(frame.clone());
        let _ = reply::xautoclaim_justid(frame.clone());
        let _ = reply::xclaim(frame.clone());
        let _ = reply::id_list(frame.clone(), "XCLAIM");
        let _ = reply::xpending_summary(frame.clone());
        let _ = reply::xpending_extended(frame.clone());
        let _ = reply::hello(frame.clone());
        let value = Value::from_frame(frame);
        let _ = format!("{value:?}");
    }
}

// ---- stream_id -------------------------------------------------------------

/// `stream_id`: parsing never panics; a parsed id prints as text that parses
/// back to the same id (via `Display` and via `IdBuf` encoding).
pub fn stream_id(data: &[u8]) {
    let Ok(id) = StreamId::parse(data) else {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = text.parse::<GroupStart>();
        }
        return;
    };
    let text = id.to_string();
    assert_eq!(StreamId::parse(text.as_bytes()), Ok(id), "{text}");
    let mut buf = xgroup_core::IdBuf::new();
    assert_eq!(id.encode(&mut buf), text.as_bytes());
    if let Some(next) = id.successor() {
        assert!(next > id);
    }
    // Canonical text (`<ms>-<seq>`, no leading zeros) prints back as itself.
    let canonical = |part: &[u8]| part == b"0" || part.first().is_some_and(|&b| b != b'0');
    if let Some(dash) = data.iter().position(|&b| b == b'-') {
        if canonical(&data[..dash]) && canonical(&data[dash + 1..]) {
            assert_eq!(text.as_bytes(), data);
        }
    }
}

// ---- consumer --------------------------------------------------------------

/// Configuration variants picked by the fuzzer.
#[derive(Debug, Arbitrary)]
pub struct ConfigChoice {
    /// `COUNT` 1..=5.
    count: u8,
    /// `max_in_flight_batches` 1..=3.
    in_flight: u8,
    resp3: bool,
    /// AUTH (RESP2) or HELLO AUTH (RESP3) in the handshake.
    auth: bool,
    claim: bool,
    replay: bool,
    auto_create: bool,
    /// Reads of new entries on a connection of their own.
    read_connection: bool,
    /// Where the data connections go: the server given (0), the master
    /// two sentinels name (1), the primary of the stream's slot in a
    /// cluster of two seeds (2).
    discovery: u8,
}

impl ConfigChoice {
    fn build(&self) -> ConsumerConfig {
        let mut b = ConsumerConfig::builder("s", "g", "c")
            .count(u64::from(self.count % 5) + 1)
            .max_in_flight_batches(usize::from(self.in_flight % 3) + 1)
            .replay_pending(self.replay)
            .auto_create_group(self.auto_create)
            .separate_read_connection(self.read_connection)
            .connect_options(ConnectOptions {
                resp3: self.resp3,
                password: self.auth.then(|| "pw".to_owned()),
                ..ConnectOptions::default()
            });
        if !self.claim {
            b = b.no_claiming();
        }
        match self.discovery % 3 {
            1 => match xgroup_core::parse_target("redis+sentinel://127.0.0.1:1,127.0.0.1:2/m") {
                Ok((xgroup_core::Target::Sentinel(target), _)) => b = b.sentinel(target),
                other => panic!("a sentinel URL: {other:?}"),
            },
            2 => match xgroup_core::parse_target("redis+cluster://127.0.0.1:1,127.0.0.1:2") {
                Ok((xgroup_core::Target::Cluster(target), _)) => b = b.cluster(target),
                other => panic!("a cluster URL: {other:?}"),
            },
            _ => {}
        }
        match b.build() {
            Ok(cfg) => cfg,
            Err(e) => panic!("fuzz config rejected: {e}"),
        }
    }
}

/// What the handler decides for the oldest delivered batch.
#[derive(Debug, Arbitrary)]
pub enum Completion {
    /// `Outcome::AckAll`.
    All,
    /// `Outcome::AckNone`.
    Nothing,
    /// `Outcome::AckOnly`: ids picked from the batch (by index, repeats
    /// allowed), plus ids that are in no batch.
    Only {
        /// Indexes into the batch's ids.
        pick: Vec<u8>,
        /// Ids `<10000 + n>-7`, never in a batch.
        unknown: Vec<u8>,
    },
}

/// Shapes of generated stream replies (ids `<first>-0` upwards).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Shape {
    /// `XREADGROUP`, RESP2 array.
    ReadResp2,
    /// `XREADGROUP`, RESP3 map.
    ReadResp3,
    /// `XAUTOCLAIM` 7.0+ (cursor, entries, deleted ids).
    Claim7,
    /// `XAUTOCLAIM` 6.2 (cursor, entries with bare nils for deleted ones).
    Claim62,
}

/// One step of the adapter around the consumer.
#[derive(Debug, Arbitrary)]
pub enum Op {
    /// Arbitrary bytes from the server.
    Bytes(Vec<u8>),
    /// A realistic reply from [`CANNED`], fed in two reads split at
    /// `split % len`.
    Reply {
        /// Index into [`CANNED`] (modulo its length).
        which: u8,
        /// Where to split it.
        split: u8,
    },
    /// A generated stream reply with `n % 6` entries.
    Entries {
        /// Reply shape.
        shape: Shape,
        /// First id's milliseconds.
        first: u8,
        /// Number of entries (modulo 6).
        n: u8,
        /// Bit i set: entry i was deleted (nil body / deleted-id list).
        deleted: u8,
        /// `XAUTOCLAIM` cursor milliseconds (0: scan complete).
        cursor: u8,
    },
    /// A generated `XPENDING` extended reply: rows for ids `<first>-0`...
    Pending {
        /// First id's milliseconds.
        first: u8,
        /// Number of rows (modulo 6).
        n: u8,
        /// Delivery count of each row.
        deliveries: u8,
        /// Rows owned by another consumer.
        other: bool,
    },
    /// The handler finished the oldest delivered batch.
    Complete(Completion),
    /// A completion for a batch that was never delivered.
    CompleteUnknown(u16),
    /// Time passes; then `handle_timeout`.
    Advance(u16),
    /// Time jumps to the next deadline; then `handle_timeout`.
    ToDeadline,
    /// The connection asked for by `Event::Connect` opened.
    Connect,
    /// It failed to open.
    ConnectFailed,
    /// The open connection dropped.
    Disconnect,
    /// Graceful shutdown.
    Shutdown,
    /// Later inputs and connection steps are about the next connection
    /// (control, read, discovery, in turn).
    Switch,
}

/// The `consumer` target's input.
#[derive(Debug, Arbitrary)]
pub struct ConsumerInput {
    /// Configuration variant.
    pub config: ConfigChoice,
    /// Steps, in order.
    pub ops: Vec<Op>,
}

/// Realistic replies for stream `s`, consumer `c` (recorded from
/// redis-server 7.0 or hand-written 6.2 shapes).
pub const CANNED: &[&[u8]] = &[
    b"+OK\r\n",
    b"-BUSYGROUP Consumer Group name already exists\r\n",
    // XREADGROUP: empty history (replay done), timeout (RESP2, RESP3).
    b"*1\r\n*2\r\n$1\r\ns\r\n*0\r\n",
    b"%1\r\n$1\r\ns\r\n*0\r\n",
    b"*-1\r\n",
    b"_\r\n",
    // XREADGROUP with entries, RESP2 and RESP3.
    b"*1\r\n*2\r\n$1\r\ns\r\n*3\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$7\r\nuser_id\r\n$2\r\n42\r\n$4\r\nitem\r\n$3\r\nmug\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
    b"%1\r\n$1\r\ns\r\n*2\r\n*2\r\n$3\r\n4-0\r\n*2\r\n$1\r\nz\r\n$1\r\nw\r\n*2\r\n$3\r\n5-0\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n",
    // Pending replay with an entry deleted from the stream.
    b"*1\r\n*2\r\n$1\r\ns\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$3\r\n2-0\r\n*-1\r\n",
    // Another stream's entries only.
    b"*1\r\n*2\r\n$1\r\nt\r\n*1\r\n*2\r\n$3\r\n9-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n",
    // XAUTOCLAIM 7.0: complete scan, one entry, one deleted id.
    b"*3\r\n$3\r\n0-0\r\n*1\r\n*2\r\n$3\r\n6-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*1\r\n$3\r\n7-0\r\n",
    // XAUTOCLAIM 7.0, more to scan.
    b"*3\r\n$3\r\n8-0\r\n*1\r\n*2\r\n$3\r\n6-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*0\r\n",
    // XAUTOCLAIM 6.2 with a bare nil.
    b"*2\r\n$3\r\n0-0\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*-1\r\n",
    // XAUTOCLAIM empty.
    b"*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n",
    // XPENDING extended for consumer c, and empty.
    b"*3\r\n*4\r\n$3\r\n1-0\r\n$1\r\nc\r\n:1054\r\n:2\r\n*4\r\n$3\r\n2-0\r\n$1\r\nc\r\n:2128\r\n:1\r\n*4\r\n$3\r\n3-0\r\n$1\r\nc\r\n:1054\r\n:3\r\n",
    b"*0\r\n",
    b"-NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option\r\n",
    b"-LOADING Redis is loading the dataset in memory\r\n",
    b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    b":1\r\n",
    b":3\r\n",
    // HELLO, RESP3 and RESP2.
    b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
    b"*6\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n6.2.0\r\n$5\r\nproto\r\n:2\r\n",
    b"-ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.\r\n",
    b"-MOVED 3999 127.0.0.1:6381\r\n",
    b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.\r\n",
    b"-READONLY You can't write against a read only replica.\r\n",
    // Sentinel: the master's address, the subscription, a failover, ROLE.
    b"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n",
    b"*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n",
    b"*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$31\r\nm 127.0.0.1 6380 127.0.0.1 6381\r\n",
    // A cluster's map (CLUSTER SLOTS: all slots on one node), an unknown
    // CLUSTER SHARDS (6.2), and its redirects.
    b"*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:6381\r\n$2\r\nid\r\n",
    b"-ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.\r\n",
    b"-MOVED 8455 127.0.0.1:6382\r\n",
    b"-ASK 8455 127.0.0.1:6383\r\n",
    b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n",
    b"*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6380\r\n$9\r\nconnected\r\n:0\r\n",
    b"-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n",
    b"-NOAUTH Authentication required.\r\n",
    b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    // RESP3 push (ignored by the consumer).
    b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
];

fn bulk(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

fn entry(out: &mut Vec<u8>, ms: u64, deleted: bool) {
    out.extend_from_slice(b"*2\r\n");
    bulk(out, format!("{ms}-0").as_bytes());
    if deleted {
        out.extend_from_slice(b"*-1\r\n");
    } else {
        out.extend_from_slice(b"*4\r\n");
        bulk(out, b"user_id");
        bulk(out, ms.to_string().as_bytes());
        bulk(out, b"item");
        bulk(out, b"mug");
    }
}

fn gen_entries(shape: Shape, first: u8, n: u8, deleted: u8, cursor: u8) -> Vec<u8> {
    let n = usize::from(n % 6);
    let ids = (0..n).map(|i| (u64::from(first) + i as u64, deleted & (1 << i) != 0));
    let mut out = Vec::new();
    match shape {
        Shape::ReadResp2 | Shape::ReadResp3 => {
            if matches!(shape, Shape::ReadResp2) {
                out.extend_from_slice(b"*1\r\n*2\r\n");
            } else {
                out.extend_from_slice(b"%1\r\n");
            }
            bulk(&mut out, b"s");
            out.extend_from_slice(format!("*{n}\r\n").as_bytes());
            for (ms, del) in ids {
                entry(&mut out, ms, del);
            }
        }
        Shape::Claim7 => {
            out.extend_from_slice(b"*3\r\n");
            bulk(&mut out, format!("{cursor}-0").as_bytes());
            let live: Vec<u64> = ids.clone().filter(|e| !e.1).map(|e| e.0).collect();
            out.extend_from_slice(format!("*{}\r\n", live.len()).as_bytes());
            for &ms in &live {
                entry(&mut out, ms, false);
            }
            let gone: Vec<u64> = ids.filter(|e| e.1).map(|e| e.0).collect();
            out.extend_from_slice(format!("*{}\r\n", gone.len()).as_bytes());
            for ms in gone {
                bulk(&mut out, format!("{ms}-0").as_bytes());
            }
        }
        Shape::Claim62 => {
            out.extend_from_slice(b"*2\r\n");
            bulk(&mut out, format!("{cursor}-0").as_bytes());
            out.extend_from_slice(format!("*{n}\r\n").as_bytes());
            for (ms, del) in ids {
                if del {
                    out.extend_from_slice(b"*-1\r\n");
                } else {
                    entry(&mut out, ms, false);
                }
            }
        }
    }
    out
}

fn gen_pending(first: u8, n: u8, deliveries: u8, other: bool) -> Vec<u8> {
    let n = u64::from(n % 6);
    let mut out = format!("*{n}\r\n").into_bytes();
    for i in 0..n {
        out.extend_from_slice(b"*4\r\n");
        bulk(&mut out, format!("{}-0", u64::from(first) + i).as_bytes());
        bulk(&mut out, if other { b"other" } else { b"c" });
        out.extend_from_slice(format!(":1000\r\n:{deliveries}\r\n").as_bytes());
    }
    out
}

/// The adapter's view of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// No connection, none asked for.
    Closed,
    /// `Event::Connect` seen, not yet answered.
    Requested,
    /// `handle_connected` called.
    Open,
}

/// A consumer driven the way an adapter drives it, checking invariants.
#[derive(Debug)]
struct Harness {
    c: Consumer,
    now: Instant,
    max_in_flight: usize,
    /// The control connection's, the read connection's and the discovery one's.
    links: [Link; 3],
    /// Which one inputs and connection steps are about.
    target: usize,
    stopped: bool,
    /// Delivered and not yet completed: batch id and its message ids.
    batches: VecDeque<(BatchId, Vec<StreamId>)>,
}

impl Harness {
    fn new(cfg: ConsumerConfig) -> Self {
        let max_in_flight = cfg.max_in_flight_batches();
        // The consumer only sees differences between instants.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut h = Harness {
            c: Consumer::new(cfg),
            now,
            max_in_flight,
            links: [Link::Closed; 3],
            target: 0,
            stopped: false,
            batches: VecDeque::new(),
        };
        h.drain();
        h
    }

    /// Takes every event and transmit, checking what must always hold.
    fn drain(&mut self) {
        while let Some(event) = self.c.poll_event() {
            assert!(!self.stopped, "event after Stopped: {event:?}");
            match event {
                Event::Connect(conn) => {
                    let link = &mut self.links[conn.index()];
                    assert_ne!(*link, Link::Open, "Connect while connected");
                    *link = Link::Requested;
                }
                Event::Disconnect(conn) => self.links[conn.index()] = Link::Closed,
                Event::Deliver(batch) => {
                    assert!(!batch.messages.is_empty(), "empty batch {batch:?}");
                    assert_eq!(&batch.stream[..], b"s");
                    let ids = batch.messages.iter().map(|m| m.id).collect();
                    self.batches.push_back((batch.id, ids));
                }
                Event::Stopped(_) => self.stopped = true,
                _ => {}
            }
        }
        while self.c.poll_transmit().is_some() {
            assert!(!self.stopped, "bytes to send after Stopped");
        }
        assert!(
            self.c.in_flight() <= self.max_in_flight,
            "{} batches in flight, limit {}",
            self.c.in_flight(),
            self.max_in_flight
        );
        assert_eq!(self.stopped, self.c.is_stopped());
        if self.stopped {
            assert_eq!(self.c.poll_timeout(), None, "deadline after Stopped");
        } else if self.links.iter().all(|&l| l == Link::Closed) {
            // Not connected and not asking to: only a timer can move it on.
            assert!(
                self.c.poll_timeout().is_some(),
                "disconnected with no deadline: stuck"
            );
        }
    }

    fn input(&mut self, bytes: &[u8]) {
        self.c.handle_input(self.now, self.conn(), bytes);
        self.drain();
    }

    /// The connection inputs and connection steps are about.
    fn conn(&self) -> Conn {
        [Conn::Control, Conn::Read, Conn::Discovery][self.target]
    }

    fn timeout(&mut self) {
        self.c.handle_timeout(self.now);
        if let Some((at, kind)) = self.c.poll_timeout() {
            assert!(
                at > self.now,
                "after handle_timeout, {kind:?} deadline is not in the future"
            );
        }
        self.drain();
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Bytes(bytes) => self.input(&bytes),
            Op::Reply { which, split } => {
                let reply = CANNED[usize::from(which) % CANNED.len()];
                let (a, b) = reply.split_at(usize::from(split) % reply.len());
                self.input(a);
                self.input(b);
            }
            Op::Entries {
                shape,
                first,
                n,
                deleted,
                cursor,
            } => self.input(&gen_entries(shape, first, n, deleted, cursor)),
            Op::Pending {
                first,
                n,
                deliveries,
                other,
            } => self.input(&gen_pending(first, n, deliveries, other)),
            Op::Complete(completion) => {
                let Some((batch, ids)) = self.batches.pop_front() else {
                    return;
                };
                let outcome = match completion {
                    Completion::All => Outcome::AckAll,
                    Completion::Nothing => Outcome::AckNone,
                    Completion::Only { pick, unknown } => Outcome::AckOnly(
                        pick.iter()
                            .map(|&i| ids[usize::from(i) % ids.len()])
                            .chain(
                                unknown
                                    .iter()
                                    .map(|&u| StreamId::new(10_000 + u64::from(u), 7)),
                            )
                            .collect(),
                    ),
                };
                self.c.handle_completion(self.now, batch, outcome);
                self.drain();
            }
            Op::CompleteUnknown(n) => {
                let batch = BatchId(1_000_000 + u64::from(n));
                self.c.handle_completion(self.now, batch, Outcome::AckAll);
                self.drain();
            }
            Op::Advance(ms) => {
                self.now += Duration::from_millis(u64::from(ms));
                self.timeout();
            }
            Op::ToDeadline => {
                if let Some((at, _)) = self.c.poll_timeout() {
                    self.now = self.now.max(at);
                }
                self.timeout();
            }
            Op::Connect => {
                if self.links[self.target] == Link::Requested {
                    self.links[self.target] = Link::Open;
                    self.c.handle_connected(self.now, self.conn());
                    self.drain();
                }
            }
            Op::ConnectFailed => {
                if self.links[self.target] == Link::Requested {
                    self.links[self.target] = Link::Closed;
                    self.c
                        .handle_connect_failed(self.now, self.conn(), "connection refused");
                    self.drain();
                }
            }
            Op::Disconnect => {
                if self.links[self.target] == Link::Open {
                    self.links[self.target] = Link::Closed;
                    self.c
                        .handle_disconnected(self.now, self.conn(), "connection reset");
                    self.drain();
                }
            }
            Op::Shutdown => {
                self.c.handle_shutdown(self.now);
                self.drain();
            }
            Op::Switch => self.target = (self.target + 1) % 3,
        }
    }
}

/// `consumer`: a consumer driven through fuzzer-chosen steps never panics;
/// after `handle_timeout(now)` the next deadline is later than `now`; no
/// more than `max_in_flight_batches` batches are in flight; nothing comes
/// after `Event::Stopped`; a consumer that is neither connected nor asking
/// to connect always has a deadline.
pub fn consumer(data: &[u8]) {
    let Ok(input) = ConsumerInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut h = Harness::new(input.config.build());
    for op in input.ops {
        h.step(op);
    }
}

// ---- model -----------------------------------------------------------------

#[cfg(feature = "sim")]
#[allow(clippy::disallowed_methods, clippy::unwrap_used)]
#[path = "../../core/tests/support/world.rs"]
mod world;

/// One operation of the `model` target (see `core/tests/support/world.rs`).
#[cfg(feature = "sim")]
#[derive(Debug, Arbitrary)]
enum ModelOp {
    Produce(u8),
    Step(u8),
    Complete(u8, u8),
    Disconnect(u8),
    Crash(u8),
    Advance(u16),
    Delete(u16),
}

/// Input of the `model` target: world shape and fuzzer-chosen operations.
#[cfg(feature = "sim")]
#[derive(Debug, Arbitrary)]
struct ModelInput {
    consumers: u8,
    count: u8,
    chunks: Vec<u8>,
    v62: bool,
    features: (bool, bool, bool, bool, bool, bool),
    ops: Vec<ModelOp>,
}

/// `model`: consumers against the in-memory model under fuzzer-chosen
/// operations, with the property tests' invariants checked as it runs and
/// at the end (everything acknowledged or dead-lettered, no stray acks, no
/// redelivery of held entries, delivery counts from the model, no deadline
/// in the past, retry-after respected).
#[cfg(feature = "sim")]
pub fn model(data: &[u8]) {
    use world::{Features, Op, World};
    let Ok(input) = ModelInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let (heartbeat, dead_letters, delete_on_ack, polling, one_connection, no_read_ahead) =
        input.features;
    let features = Features {
        heartbeat,
        dead_letters,
        delete_on_ack,
        polling,
        one_connection,
        no_read_ahead,
        // (The cluster in front of the model, and several streams, are
        // the property tests'.)
        cluster: false,
        streams: 1,
        own_tags: false,
    };
    let consumers = 1 + usize::from(input.consumers % 3);
    let count = 1 + u64::from(input.count % 4);
    let chunks: Vec<usize> = input
        .chunks
        .iter()
        .take(4)
        .map(|&c| 1 + usize::from(c % 63))
        .collect();
    let ops: Vec<Op> = input
        .ops
        .iter()
        .take(120)
        .map(|op| match *op {
            ModelOp::Produce(n) => Op::Produce(1 + n % 5),
            ModelOp::Step(i) => Op::Step(usize::from(i)),
            ModelOp::Complete(i, how) => Op::Complete(usize::from(i), how % 7),
            ModelOp::Disconnect(i) => Op::Disconnect(usize::from(i)),
            ModelOp::Crash(i) => Op::Crash(usize::from(i)),
            ModelOp::Advance(ms) => Op::Advance(1 + ms % 1500),
            ModelOp::Delete(pick) => Op::Delete(pick),
        })
        .collect();
    let mut world = World::with(consumers, count, chunks, input.v62, features);
    world.run(&ops);
    world.quiesce();
    world.check_final();
}
