//! Differential test: the same command scripts against a real `redis-server`
//! and against [`SimServer`]; replies must match once timing-dependent fields
//! (idle times, HELLO's id and version) are normalised.
//!
//! Needs `redis-server` on PATH (or its path in `XGROUP_REDIS_SERVER`).
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The real server runs on the real clock; the sim only sees a base instant.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use xgroup_core::sim::{ConnId, SimOptions, SimServer};

#[path = "support/redis.rs"]
mod redis;
use redis::RedisProcess;

/// A RESP2/RESP3 reply tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum V {
    Simple(String),
    Err(String),
    Int(i64),
    Bulk(Vec<u8>),
    NilBulk,
    NilArray,
    Null,
    Array(Vec<V>),
    Map(Vec<(V, V)>),
}

/// Parses one reply from `buf`; `None` if incomplete.
fn parse(buf: &[u8]) -> Option<(V, usize)> {
    let cr = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[1..cr]).unwrap();
    let rest = cr + 2;
    let kind = *buf.first()?;
    match kind {
        b'+' => Some((V::Simple(line.into()), rest)),
        b'-' => Some((V::Err(line.into()), rest)),
        b':' => Some((V::Int(line.parse().unwrap()), rest)),
        b'_' => Some((V::Null, rest)),
        b'$' => {
            let n: i64 = line.parse().unwrap();
            if n < 0 {
                return Some((V::NilBulk, rest));
            }
            let n = n as usize;
            if buf.len() < rest + n + 2 {
                return None;
            }
            Some((V::Bulk(buf[rest..rest + n].to_vec()), rest + n + 2))
        }
        b'*' | b'%' => {
            let n: i64 = line.parse().unwrap();
            if n < 0 {
                return Some((V::NilArray, rest));
            }
            let items = if kind == b'%' { n * 2 } else { n };
            let mut pos = rest;
            let mut out = Vec::new();
            for _ in 0..items {
                let (v, used) = parse(&buf[pos..])?;
                out.push(v);
                pos += used;
            }
            if kind == b'%' {
                let mut pairs = Vec::new();
                let mut it = out.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                Some((V::Map(pairs), pos))
            } else {
                Some((V::Array(out), pos))
            }
        }
        other => panic!("unexpected reply type byte {:?}", other as char),
    }
}

fn parse_all(mut buf: &[u8]) -> Vec<V> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (v, used) = parse(buf).expect("sim output must hold complete replies");
        out.push(v);
        buf = &buf[used..];
    }
    out
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
    }
    out
}

/// One client connection to the real server.
struct RealConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RealConn {
    fn new(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        RealConn {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, args: &[&str]) {
        self.stream.write_all(&encode(args)).unwrap();
    }

    fn read(&mut self) -> V {
        loop {
            if let Some((v, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return v;
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .stream
                .read(&mut chunk)
                .expect("reply from redis-server");
            assert!(n > 0, "redis-server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// How a reply is normalised before comparing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Norm {
    Exact,
    /// `XPENDING` extended form: idle times set to 0.
    PendingIdle,
    /// `HELLO`: id and version blanked.
    Hello,
}

fn normalise(v: V, norm: Norm) -> V {
    match (norm, v) {
        (Norm::PendingIdle, V::Array(items)) => V::Array(
            items
                .into_iter()
                .map(|item| match item {
                    V::Array(mut e) if e.len() == 4 => {
                        e[2] = V::Int(0);
                        V::Array(e)
                    }
                    other => other,
                })
                .collect(),
        ),
        (Norm::Hello, V::Map(pairs)) => V::Map(
            pairs
                .into_iter()
                .map(|(k, v)| match &k {
                    V::Bulk(name) if name == b"id" || name == b"version" => (k, V::Null),
                    _ => (k, v),
                })
                .collect(),
        ),
        (Norm::Hello, V::Array(mut items)) => {
            for i in (0..items.len()).step_by(2) {
                if matches!(&items[i], V::Bulk(n) if n == b"id" || n == b"version") {
                    if let Some(v) = items.get_mut(i + 1) {
                        *v = V::Null;
                    }
                }
            }
            V::Array(items)
        }
        (_, v) => v,
    }
}

/// The real server and the sim side by side, with matching connections.
struct Pair {
    _redis: RedisProcess,
    port: u16,
    real: Vec<RealConn>,
    sim: SimServer,
    sim_conns: Vec<ConnId>,
    /// Sim replies taken from the output but not compared yet, per connection.
    sim_queue: Vec<std::collections::VecDeque<V>>,
    t0: Instant,
    sim_ms: u64,
    checked: usize,
}

impl Pair {
    fn new(conns: usize) -> Self {
        let redis = RedisProcess::start();
        let port = redis.port;
        let t0 = Instant::now();
        let mut sim = SimServer::new(SimOptions::default(), t0);
        let real = (0..conns).map(|_| RealConn::new(port)).collect();
        let sim_conns = (0..conns).map(|_| sim.connect(t0)).collect();
        let mut pair = Pair {
            _redis: redis,
            port,
            real,
            sim,
            sim_conns,
            sim_queue: vec![Default::default(); conns],
            t0,
            sim_ms: 0,
            checked: 0,
        };
        pair.real[0].send(&["FLUSHALL"]);
        pair.real[0].read();
        pair
    }

    fn sim_now(&self) -> Instant {
        self.t0 + Duration::from_millis(self.sim_ms)
    }

    /// Sends a command on connection `c` to both, without reading.
    fn send(&mut self, c: usize, args: &[&str]) {
        self.real[c].send(args);
        let now = self.sim_now();
        self.sim.receive(self.sim_conns[c], now, &encode(args));
    }

    /// Reads one reply on connection `c` from both and compares them.
    fn expect_same(&mut self, c: usize, what: &str, norm: Norm) -> V {
        let real = normalise(self.real[c].read(), norm);
        let out = self.sim.take_output(self.sim_conns[c]);
        self.sim_queue[c].extend(parse_all(&out));
        let sim = self.sim_queue[c]
            .pop_front()
            .unwrap_or_else(|| panic!("{what}: no reply from the sim"));
        let sim = normalise(sim, norm);
        assert_eq!(
            sim, real,
            "{what}: sim (left) differs from redis-server (right)"
        );
        self.checked += 1;
        real
    }

    fn check_on(&mut self, c: usize, args: &[&str], norm: Norm) -> V {
        self.send(c, args);
        self.expect_same(c, &args.join(" "), norm)
    }

    /// Sends all commands, then compares the replies in order.
    fn check_pipeline(&mut self, c: usize, cmds: &[&[&str]]) {
        let mut bytes = Vec::new();
        for args in cmds {
            self.real[c].send(args);
            bytes.extend(encode(args));
        }
        let now = self.sim_now();
        self.sim.receive(self.sim_conns[c], now, &bytes);
        let sim = parse_all(&self.sim.take_output(self.sim_conns[c]));
        assert_eq!(sim.len(), cmds.len(), "pipelined replies: {sim:?}");
        for (args, sim) in cmds.iter().zip(sim) {
            let real = self.real[c].read();
            assert_eq!(sim, real, "pipelined {}", args.join(" "));
            self.checked += 1;
        }
    }

    fn check(&mut self, args: &[&str]) -> V {
        self.check_on(0, args, Norm::Exact)
    }

    fn check_pending(&mut self, args: &[&str]) -> V {
        self.check_on(0, args, Norm::PendingIdle)
    }

    /// Asserts neither side answered on `c` yet.
    fn expect_silent(&mut self, c: usize) {
        assert!(self.sim_queue[c].is_empty());
        assert!(self.sim.take_output(self.sim_conns[c]).is_empty());
        self.real[c]
            .stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut chunk = [0u8; 64];
        let got = self.real[c].stream.read(&mut chunk);
        assert!(got.is_err(), "redis-server answered a blocked read early");
        self.real[c]
            .stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
    }
}

#[test]
fn streams_and_groups_match_redis() {
    let mut p = Pair::new(1);
    // XADD
    for cmd in [
        &["XADD", "s", "1-1", "f", "v1"][..],
        &["XADD", "s", "1-2", "f", "v2", "g", "w"],
        &["XADD", "s", "1-*", "f", "v3"],
        &["XADD", "s", "2", "f", "v4"],
        &["XADD", "s", "1-9", "f", "x"],
        &["XADD", "s", "2-0", "f", "x"],
        &["XADD", "s", "0-0", "f", "x"],
        &["XADD", "t", "0", "f", "x"],
        &["XADD", "s", "bad", "f", "x"],
        &["XADD", "s", "3-1", "f"],
        &["XADD", "s"],
        &["XADD", "nokey", "NOMKSTREAM", "5-1", "f", "x"],
        &["XADD", "s", "MAXLEN", "10", "LIMIT", "5", "5-2", "f", "v"],
        &["XADD", "s", "MAXLEN", "-1", "5-2", "f", "v"],
        &["XADD", "s", "MAXLEN", "1", "MINID", "1", "5-2", "f", "v"],
        &["XADD", "s", "MAXLEN", "=", "100", "3-1", "f", "v5"],
        &["XADD", "s", "MINID", "=", "0", "3-2", "f", "v6"],
        &["XLEN", "s"],
        &["XLEN", "nokey"],
        &["XRANGE", "s", "-", "+"],
        &["XRANGE", "s", "(1-1", "3", "COUNT", "2"],
        &["XRANGE", "s", "-", "+", "COUNT", "0"],
        &["XRANGE", "s", "-", "(0-0"],
        &["XREVRANGE", "s", "+", "-", "COUNT", "2"],
        &["EXISTS", "s", "nokey", "s"],
        &["TYPE", "s"],
        &["TYPE", "nokey"],
    ] {
        p.check(cmd);
    }
    // XGROUP CREATE, every case.
    for cmd in [
        &["XGROUP", "CREATE", "s", "g", "0"][..],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["XGROUP", "CREATE", "s", "late", "$"],
        &["XGROUP", "CREATE", "s", "mid", "1-2"],
        &["XGROUP", "CREATE", "s", "bad", "x-y"],
        &["XGROUP", "CREATE", "nokey", "g", "0"],
        &["XGROUP", "CREATE", "new", "g", "$", "MKSTREAM"],
        &[
            "XGROUP",
            "CREATE",
            "new2",
            "g",
            "0",
            "MKSTREAM",
            "ENTRIESREAD",
            "0",
        ],
        &["XGROUP", "CREATE", "s", "g2", "0", "BOGUS"],
        &["XGROUP", "CREATE", "s", "g2"],
        &["XGROUP", "NOPE", "s", "g"],
        &["XLEN", "new"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "alice"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "alice"],
        &["XGROUP", "CREATECONSUMER", "s", "nog", "alice"],
        &["XGROUP", "DESTROY", "new2", "g"],
        &["XGROUP", "DESTROY", "new2", "g"],
        &["XGROUP", "DESTROY", "nokey", "g"],
        &["XGROUP", "SETID", "s", "nog", "0"],
    ] {
        p.check(cmd);
    }
    // XREADGROUP `>`.
    for cmd in [
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ][..],
        &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"],
        &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"],
        &[
            "XREADGROUP",
            "GROUP",
            "mid",
            "carol",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            ">",
        ],
        &["XREADGROUP", "GROUP", "late", "dave", "STREAMS", "s", ">"],
        &["XREADGROUP", "GROUP", "nog", "x", "STREAMS", "s", ">"],
        &["XREADGROUP", "GROUP", "g", "x", "STREAMS", "nokey", ">"],
        &["XREADGROUP", "GROUP", "g", "x", "STREAMS", "s", "$"],
        &["XREADGROUP", "GROUP", "g", "x", "STREAMS", "s", "bad"],
        &["XREADGROUP", "GROUP", "g", "x", "STREAMS", "s"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "x",
            "COUNT",
            "z",
            "STREAMS",
            "s",
            ">",
        ],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "x",
            "BLOCK",
            "-1",
            "STREAMS",
            "s",
            ">",
        ],
        &["XREADGROUP", "GROUP", "g", "x", "FOO", "STREAMS", "s", ">"],
        &["XREADGROUP", "GROUP", "g", "x", "STREAMS", "s", "t", ">"],
        // Consumers: who exists now?
        &["XGROUP", "CREATECONSUMER", "s", "late", "dave"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "bob"],
    ] {
        p.check(cmd);
    }
    p.check(&["XPENDING", "s", "g"]);
    p.check_pending(&["XPENDING", "s", "g", "-", "+", "100"]);
    // History with a deleted entry.
    p.check(&["XDEL", "s", "1-2", "9-9"]);
    p.check(&["XDEL", "s", "bad"]);
    p.check(&["XDEL", "nokey", "1-1"]);
    for cmd in [
        &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"][..],
        &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "1-1"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "bob",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            "0-0",
        ],
        &["XREADGROUP", "GROUP", "g", "nobody", "STREAMS", "s", "0"],
    ] {
        p.check(cmd);
    }
    p.check(&["XPENDING", "s", "g"]);
    p.check_pending(&["XPENDING", "s", "g", "-", "+", "100"]);
    p.check_pending(&["XPENDING", "s", "g", "(1-1", "3", "2"]);
    p.check_pending(&["XPENDING", "s", "g", "-", "+", "10", "bob"]);
    p.check_pending(&["XPENDING", "s", "g", "-", "+", "10", "nobody"]);
    p.check_pending(&["XPENDING", "s", "g", "IDLE", "0", "-", "+", "10"]);
    p.check(&["XPENDING", "s", "g", "-", "+"]);
    p.check(&["XPENDING", "s", "g", "-", "+", "x"]);
    p.check(&["XPENDING", "s", "nog"]);
    p.check(&["XPENDING", "nokey", "g"]);
    p.check(&["XPENDING", "s", "late"]);
    // XCLAIM.
    for cmd in [
        &["XCLAIM", "s", "g", "carol", "0", "1-1"][..],
        &["XCLAIM", "s", "g", "carol", "0", "1-2"],
        &["XCLAIM", "s", "g", "carol", "0", "2-0", "3-1", "JUSTID"],
        &[
            "XCLAIM",
            "s",
            "g",
            "carol",
            "0",
            "3-1",
            "RETRYCOUNT",
            "5",
            "JUSTID",
        ],
        &["XCLAIM", "s", "g", "carol", "3600000", "3-1"],
        &["XCLAIM", "s", "late", "erin", "0", "3-2", "FORCE"],
        &["XCLAIM", "s", "late", "erin", "0", "3-1", "FORCE", "JUSTID"],
        &["XCLAIM", "s", "late", "erin", "0", "9-9", "FORCE"],
        &["XCLAIM", "s", "g", "carol", "0", "1-1", "BOGUS"],
        &["XCLAIM", "s", "g", "carol", "x", "1-1"],
        &["XCLAIM", "s", "nog", "carol", "0", "1-1"],
        &[
            "XCLAIM", "s", "g", "carol", "0", "1-1", "LASTID", "9-0", "JUSTID",
        ],
    ] {
        p.check(cmd);
    }
    p.check(&["XPENDING", "s", "g"]);
    p.check_pending(&["XPENDING", "s", "g", "-", "+", "100"]);
    p.check_pending(&["XPENDING", "s", "late", "-", "+", "100"]);
    // XAUTOCLAIM, min-idle 0, with the cursor and a deleted entry.
    p.check(&["XDEL", "s", "2-0"]);
    for cmd in [
        &["XAUTOCLAIM", "s", "g", "frank", "0", "0", "COUNT", "1"][..],
        &["XAUTOCLAIM", "s", "g", "frank", "0", "1-2", "COUNT", "1"],
        &[
            "XAUTOCLAIM",
            "s",
            "g",
            "frank",
            "0",
            "(1-1",
            "COUNT",
            "2",
            "JUSTID",
        ],
        &["XAUTOCLAIM", "s", "g", "frank", "0", "0"],
        &["XAUTOCLAIM", "s", "g", "frank", "0", "0", "COUNT", "0"],
        &["XAUTOCLAIM", "s", "g", "frank", "0", "0", "BAD"],
        &["XAUTOCLAIM", "s", "g", "frank", "x", "0"],
        &["XAUTOCLAIM", "s", "nog", "frank", "0", "0"],
        &["XAUTOCLAIM", "s", "late", "frank", "0", "-", "JUSTID"],
    ] {
        p.check(cmd);
    }
    p.check(&["XPENDING", "s", "g"]);
    p.check_pending(&["XPENDING", "s", "g", "-", "+", "100"]);
    // XACK.
    for cmd in [
        &["XACK", "s", "g", "1-1", "1-1", "3-1", "9-9"][..],
        &["XACK", "s", "g", "bad"],
        &["XACK", "s", "nog", "1-1"],
        &["XACK", "nokey", "g", "bad"],
        &["XGROUP", "DELCONSUMER", "s", "g", "frank"],
        &["XGROUP", "DELCONSUMER", "s", "g", "frank"],
        &["XPENDING", "s", "g"],
        &["XGROUP", "SETID", "s", "g", "0"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "gina",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ],
        &["XPENDING", "s", "g"],
    ] {
        p.check(cmd);
    }
    // XTRIM.
    for cmd in [
        &["XTRIM", "s", "MAXLEN", "=", "2"][..],
        &["XTRIM", "s", "MINID", "3-2"],
        &["XTRIM", "s", "MAXLEN", "0", "LIMIT", "1"],
        &["XTRIM", "s", "FOO", "1"],
        &["XTRIM", "s", "MAXLEN"],
        &["XTRIM", "nokey", "MAXLEN", "0"],
        &["XRANGE", "s", "-", "+"],
        &["XTRIM", "s", "MAXLEN", "0"],
        &["XLEN", "s"],
        &["EXISTS", "s"],
    ] {
        p.check(cmd);
    }
    // WRONGTYPE and other errors.
    for cmd in [
        &["SET", "str", "x"][..],
        &["XADD", "str", "1-1", "f", "v"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "str", ">"],
        &["XGROUP", "CREATE", "str", "g", "$"],
        &["XACK", "str", "g", "1-1"],
        &["XPENDING", "str", "g"],
        &["XCLAIM", "str", "g", "c", "0", "1-1"],
        &["XAUTOCLAIM", "str", "g", "c", "0", "0"],
        &["XLEN", "str"],
        &["XDEL", "str", "1-1"],
        &["XTRIM", "str", "MAXLEN", "0"],
        &["TYPE", "str"],
        &["GET", "str"],
        &["GET", "s"],
        &["DEL", "str", "s", "nokey"],
        &["NOSUCHCMD", "a", "b"],
        &["PING"],
        &["PING", "hello"],
        &["ECHO", "x"],
        &["SELECT", "99"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", "worker-1"],
        &["CLIENT", "GETNAME"],
        &["AUTH", "pw"],
        &["AUTH", "someone", "pw"],
    ] {
        p.check(cmd);
    }
    // MULTI / EXEC.
    for cmd in [
        &["MULTI"][..],
        &["XADD", "m", "1-1", "f", "v"],
        &["XADD", "m", "1-1", "f", "v"],
        &["XLEN", "m"],
        &["EXEC"],
        &["MULTI"],
        &["XADD", "m"],
        &["EXEC"],
        &["EXEC"],
        &["DISCARD"],
    ] {
        p.check(cmd);
    }
    // Pipelined: all sent before any reply is read.
    p.check_pipeline(
        0,
        &[
            &["XADD", "pipe", "1-1", "a", "b"],
            &["XGROUP", "CREATE", "pipe", "g", "0"],
            &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "pipe", ">"],
            &["XPENDING", "pipe", "g"],
            &["XACK", "pipe", "g", "1-1"],
        ],
    );
    assert!(p.checked > 150, "checked {}", p.checked);
}

#[test]
fn blocking_reads_match_redis() {
    let mut p = Pair::new(3);
    p.check(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    // Two blocked consumers, served in order by two XADDs from a third.
    p.send(
        1,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    p.send(1, &["PING"]);
    std::thread::sleep(Duration::from_millis(20));
    p.send(
        2,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c2",
            "BLOCK",
            "0",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            ">",
        ],
    );
    std::thread::sleep(Duration::from_millis(20));
    p.expect_silent(1);
    p.check(&["XADD", "s", "1-1", "f", "v"]);
    p.expect_same(1, "woken XREADGROUP", Norm::Exact);
    p.expect_same(1, "PING after the blocked read", Norm::Exact);
    p.expect_silent(2);
    p.check(&["XADD", "s", "1-2", "f", "v"]);
    p.expect_same(2, "second woken XREADGROUP", Norm::Exact);
    p.check(&["XPENDING", "s", "g"]);
    // Timeout: the real one sleeps 50 ms, the sim's clock is advanced.
    p.send(
        1,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "50",
            "STREAMS",
            "s",
            ">",
        ],
    );
    p.sim_ms += 60;
    let now = p.sim_now();
    p.sim.advance(now);
    p.expect_same(1, "timed out XREADGROUP", Norm::Exact);
    // History reads never block.
    p.check_on(
        1,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            "0",
        ],
        Norm::Exact,
    );
    // Group destroyed, key deleted, key overwritten while blocked.
    p.send(
        1,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    std::thread::sleep(Duration::from_millis(20));
    p.check(&["XGROUP", "DESTROY", "s", "g"]);
    p.expect_same(1, "XREADGROUP blocked on a destroyed group", Norm::Exact);
    p.check(&["XGROUP", "CREATE", "s", "g", "$"]);
    p.send(
        1,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    std::thread::sleep(Duration::from_millis(20));
    p.check(&["DEL", "s"]);
    p.expect_same(1, "XREADGROUP blocked on a deleted key", Norm::Exact);
    p.check(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    p.send(
        1,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    std::thread::sleep(Duration::from_millis(20));
    p.check(&["SET", "s", "x"]);
    p.expect_same(1, "XREADGROUP blocked on an overwritten key", Norm::Exact);
    // Deleted and re-created inside one transaction: served normally.
    p.check(&["DEL", "s"]);
    p.check(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    p.send(
        1,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    std::thread::sleep(Duration::from_millis(20));
    for cmd in [
        &["MULTI"][..],
        &["DEL", "s"],
        &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
        &["XADD", "s", "3-1", "x", "y"],
        &["EXEC"],
    ] {
        p.check(cmd);
    }
    p.expect_same(1, "XREADGROUP woken after EXEC", Norm::Exact);
    // BLOCK inside MULTI answers nil at once.
    for cmd in [
        &["MULTI"][..],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
        &["EXEC"],
    ] {
        p.check(cmd);
    }
    // An XADD trimmed away at once still wakes the reader with no entries.
    p.send(
        1,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    std::thread::sleep(Duration::from_millis(20));
    p.check(&["XADD", "s", "MAXLEN", "0", "4-1", "x", "y"]);
    p.expect_same(1, "XREADGROUP woken by a trimmed XADD", Norm::Exact);
}

#[test]
fn resp3_and_hello_match_redis() {
    let mut p = Pair::new(1);
    p.check_on(0, &["HELLO"], Norm::Hello);
    p.check_on(0, &["HELLO", "3", "SETNAME", "me"], Norm::Hello);
    for cmd in [
        &["CLIENT", "GETNAME"][..],
        &["HELLO", "4"],
        &["HELLO", "x"],
        &["HELLO", "3", "FOO"],
        &["XADD", "s", "1-1", "a", "b"],
        &["XADD", "s", "1-2", "a", "b", "c", "d"],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["XGROUP", "CREATE", "s", "empty", "$"],
        &["XPENDING", "s", "empty"],
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"],
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"],
        &["XDEL", "s", "1-1"],
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"],
        &["XPENDING", "s", "g"],
        &["XRANGE", "s", "-", "+", "COUNT", "0"],
        &["XADD", "n", "NOMKSTREAM", "*", "a", "b"],
        &["XAUTOCLAIM", "s", "g", "c2", "0", "0"],
        &["XCLAIM", "s", "g", "c2", "0", "1-2"],
        &["GET", "nokey"],
        &["XREAD", "COUNT", "1", "STREAMS", "s", "0"],
    ] {
        p.check(cmd);
    }
    p.check_pending(&["XPENDING", "s", "g", "-", "+", "10"]);
    p.check_on(0, &["HELLO", "2"], Norm::Hello);
    p.check(&["XPENDING", "s", "empty"]);
    let _ = p.port;
}

#[test]
fn the_dead_letter_script_matches_redis() {
    let mut p = Pair::new(1);
    let script = xgroup_core::DEAD_LETTER_SCRIPT;
    for cmd in [
        &["XADD", "s", "1-1", "f", "v1"][..],
        &["XADD", "s", "1-2", "f", "v2"],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"],
        &["SET", "str", "x"],
        // The dead-letter key holds a string: each add fails, nothing acked.
        &[
            "EVAL", script, "2", "s", "str", "g", "0", "1-1", "1", "a", "b", "1-2", "1", "a", "c",
        ],
        &["XPENDING", "s", "g"],
        // A stream (created by the first add): moved, acked, deleted.
        &[
            "EVAL", script, "2", "s", "dlq", "g", "1", "1-1", "1", "a", "b", "1-2", "2", "a", "c",
            "d", "e",
        ],
        &["XLEN", "dlq"],
        &["XLEN", "s"],
        &["XPENDING", "s", "g"],
        // An id not pending any more: added again, acked 0.
        &[
            "EVAL", script, "2", "s", "dlq", "g", "0", "1-1", "1", "a", "b",
        ],
        &["XLEN", "dlq"],
    ] {
        p.check(cmd);
    }
}

/// The commands of a liveness-aware claim sweep: `XPENDING` pages filtered
/// by idle time (`IDLE`, exclusive and inclusive starts, a consumer), the
/// `XCLAIM` whose min-idle leaves out what was touched since, and the
/// release of entries to another name (`JUSTID`: the count stays).
#[test]
fn idle_filtered_pending_pages_and_claims_match_redis() {
    let mut p = Pair::new(1);
    for cmd in [
        &["XADD", "s", "1-1", "f", "v1"][..],
        &["XADD", "s", "1-2", "f", "v2"],
        &["XADD", "s", "1-3", "f", "v3"],
        &["XADD", "s", "1-4", "f", "v4"],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ],
    ] {
        p.check(cmd);
    }
    // alice's two entries get old; bob's are fresh. Generous margins: the
    // real server's idle times are the real ones.
    std::thread::sleep(Duration::from_millis(600));
    p.sim_ms += 600;
    let now = p.sim_now();
    p.sim.advance(now);
    p.check(&["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"]);
    for cmd in [
        &["XPENDING", "s", "g", "IDLE", "300", "-", "+", "10"][..],
        &["XPENDING", "s", "g", "IDLE", "300", "0-0", "+", "1"],
        &["XPENDING", "s", "g", "IDLE", "300", "1-2", "+", "1"],
        &["XPENDING", "s", "g", "IDLE", "300", "(1-1", "+", "10"],
        &["XPENDING", "s", "g", "IDLE", "300", "1-3", "+", "10"],
        &["XPENDING", "s", "g", "IDLE", "300", "-", "+", "10", "bob"],
        &["XPENDING", "s", "g", "IDLE", "300", "-", "+", "10", "alice"],
        &["XPENDING", "s", "g", "IDLE", "0", "1-2", "+", "2"],
        &["XPENDING", "s", "g", "IDLE", "-5", "-", "+", "10"],
    ] {
        p.check_pending(cmd);
    }
    // Only what is idle past the min-idle is claimed.
    p.check(&["XCLAIM", "s", "g", "carol", "300", "1-1", "1-3"]);
    p.check(&[
        "XCLAIM",
        "s",
        "g",
        "alice~xgroup-released",
        "300",
        "1-2",
        "1-4",
        "JUSTID",
    ]);
    p.check_pending(&["XPENDING", "s", "g", "-", "+", "10"]);
    p.check(&["XPENDING", "s", "g"]);
    p.check_pending(&["XPENDING", "s", "g", "IDLE", "300", "-", "+", "10"]);
}

/// The heartbeat's compare-and-set and release scripts: set when absent,
/// ours, or the expected value of a takeover; never over another token;
/// deleted only while ours.
#[test]
fn the_heartbeat_scripts_match_redis() {
    let mut p = Pair::new(1);
    let beat = xgroup_core::HEARTBEAT_SCRIPT;
    let release = xgroup_core::HEARTBEAT_RELEASE_SCRIPT;
    for cmd in [
        &["EVAL", beat, "1", "hb", "tok", "tok:1", "60000"][..],
        &["GET", "hb"],
        &["EVAL", beat, "1", "hb", "tok", "tok:2", "60000"],
        // Another token: not set, whatever it expects of another value.
        &["EVAL", beat, "1", "hb", "oth", "oth:1", "60000"],
        &["EVAL", beat, "1", "hb", "oth", "oth:1", "60000", "tok:1"],
        &["EVAL", beat, "1", "hb", "to", "to:1", "60000"],
        &["GET", "hb"],
        // A takeover of exactly the value seen.
        &["EVAL", beat, "1", "hb", "oth", "oth:2", "60000", "tok:2"],
        &["GET", "hb"],
        // Release: not another's, only ours.
        &["EVAL", release, "1", "hb", "tok"],
        &["GET", "hb"],
        &["EVAL", release, "1", "hb", "oth"],
        &["EXISTS", "hb"],
        &["EVAL", release, "1", "hb", "oth"],
        &["SET", "str", "tok:1"],
        &["EVAL", release, "1", "str", "tok"],
        &["EXISTS", "str"],
    ] {
        p.check(cmd);
    }
    // The expiry is set (the time left is the real server's).
    p.check(&["EVAL", beat, "1", "hb", "tok", "tok:1", "60000"]);
    p.real[0].send(&["PTTL", "hb"]);
    let real = p.real[0].read();
    assert!(
        matches!(real, V::Int(ms) if ms > 50_000 && ms <= 60_000),
        "{real:?}"
    );
    let now = p.sim_now();
    p.sim.receive(p.sim_conns[0], now, &encode(&["PTTL", "hb"]));
    let sim = parse_all(&p.sim.take_output(p.sim_conns[0]));
    assert_eq!(sim, [V::Int(60_000)]);
}

#[test]
fn client_unblock_of_a_read_on_several_streams_matches_redis() {
    let mut p = Pair::new(2);
    p.check(&["XGROUP", "CREATE", "a", "g", "$", "MKSTREAM"]);
    p.check(&["XGROUP", "CREATE", "b", "g", "$", "MKSTREAM"]);
    // Each side's id of connection 1, to unblock it from connection 0.
    p.real[1].send(&["CLIENT", "ID"]);
    let V::Int(real_id) = p.real[1].read() else {
        panic!("CLIENT ID")
    };
    let now = p.sim_now();
    let sim_conn = p.sim_conns[1];
    p.sim.receive(sim_conn, now, &encode(&["CLIENT", "ID"]));
    let V::Int(sim_id) = parse_all(&p.sim.take_output(sim_conn))[0].clone() else {
        panic!("the sim's CLIENT ID")
    };
    let read = [
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "a",
        "b",
        ">",
        ">",
    ];
    let unblock = |p: &mut Pair, reason: Option<&str>| {
        let (real, sim) = (real_id.to_string(), sim_id.to_string());
        let mut real_args = vec!["CLIENT", "UNBLOCK", real.as_str()];
        let mut sim_args = vec!["CLIENT", "UNBLOCK", sim.as_str()];
        real_args.extend(reason);
        sim_args.extend(reason);
        p.real[0].send(&real_args);
        let real_reply = p.real[0].read();
        let now = p.sim_now();
        let sim_conn = p.sim_conns[0];
        p.sim.receive(sim_conn, now, &encode(&sim_args));
        let sim_reply = parse_all(&p.sim.take_output(sim_conn));
        assert_eq!(sim_reply, [real_reply], "CLIENT UNBLOCK {reason:?}");
    };
    p.send(1, &read);
    p.send(1, &["PING"]);
    std::thread::sleep(Duration::from_millis(20));
    p.expect_silent(1);
    unblock(&mut p, None);
    p.expect_same(1, "unblocked read", Norm::Exact);
    p.expect_same(1, "PING behind it", Norm::Exact);
    unblock(&mut p, None);
    p.send(1, &read);
    std::thread::sleep(Duration::from_millis(20));
    unblock(&mut p, Some("ERROR"));
    p.expect_same(1, "read unblocked with an error", Norm::Exact);
    // An entry on either stream serves a read of both.
    p.send(1, &read);
    std::thread::sleep(Duration::from_millis(20));
    p.check(&["XADD", "b", "1-1", "f", "v"]);
    p.expect_same(1, "read woken by the second stream", Norm::Exact);
}
