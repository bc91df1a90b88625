use std::time::{Duration, Instant};

use super::*;

fn enc(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
    }
    out
}

struct H {
    s: SimServer,
    t0: Instant,
    now: Instant,
}

impl H {
    fn new() -> Self {
        Self::with(SimOptions::default())
    }
    // Tests need some base instant; the sim itself never reads the clock.
    #[allow(clippy::disallowed_methods)]
    fn with(o: SimOptions) -> Self {
        let t0 = Instant::now();
        H {
            s: SimServer::new(o, t0),
            t0,
            now: t0,
        }
    }
    fn conn(&mut self) -> ConnId {
        self.s.connect(self.now)
    }
    fn at(&mut self, ms: u64) {
        self.now = self.t0 + Duration::from_millis(ms);
    }
    fn send(&mut self, c: ConnId, args: &[&str]) {
        let bytes = enc(args);
        self.s.receive(c, self.now, &bytes);
    }
    fn out(&mut self, c: ConnId) -> String {
        String::from_utf8_lossy(&self.s.take_output(c)).into_owned()
    }
    fn run(&mut self, c: ConnId, args: &[&str]) -> String {
        self.send(c, args);
        self.out(c)
    }
}

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId::new(ms, seq)
}

const E1: &str = "*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n";

/// Stream `s` with entries 1-1, 1-2, 1-3 (field f=v) and group `g` at 0.
fn setup() -> (H, ConnId) {
    let mut h = H::new();
    let c = h.conn();
    for i in 1..=3 {
        let i = format!("1-{i}");
        assert_eq!(
            h.run(c, &["XADD", "s", &i, "f", "v"]),
            format!("$3\r\n{i}\r\n")
        );
    }
    assert_eq!(h.run(c, &["XGROUP", "CREATE", "s", "g", "0"]), "+OK\r\n");
    (h, c)
}

#[test]
fn ping_echo_select_client() {
    let mut h = H::new();
    let c = h.conn();
    assert_eq!(h.run(c, &["ping"]), "+PONG\r\n");
    assert_eq!(h.run(c, &["PING", "x"]), "$1\r\nx\r\n");
    assert_eq!(h.run(c, &["ECHO", "hi"]), "$2\r\nhi\r\n");
    assert_eq!(
        h.run(c, &["ECHO"]),
        "-ERR wrong number of arguments for 'echo' command\r\n"
    );
    assert_eq!(
        h.run(c, &["NOPE", "a", "b"]),
        "-ERR unknown command 'NOPE', with args beginning with: 'a' 'b' \r\n"
    );
    assert_eq!(
        h.run(c, &["SELECT", "16"]),
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(h.run(c, &["CLIENT", "GETNAME"]), "$-1\r\n");
    assert_eq!(h.run(c, &["CLIENT", "SETNAME", "w1"]), "+OK\r\n");
    assert_eq!(h.run(c, &["CLIENT", "GETNAME"]), "$2\r\nw1\r\n");
    assert_eq!(
        h.run(c, &["CLIENT", "FOO"]),
        "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n"
    );
    // Separate keyspaces.
    h.run(c, &["SET", "k", "0"]);
    assert_eq!(h.run(c, &["SELECT", "1"]), "+OK\r\n");
    assert_eq!(h.run(c, &["GET", "k"]), "$-1\r\n");
    h.run(c, &["SELECT", "0"]);
    assert_eq!(h.run(c, &["GET", "k"]), "$1\r\n0\r\n");
    assert_eq!(h.run(c, &["QUIT"]), "+OK\r\n");
    assert!(h.s.is_closed(c));
    assert_eq!(h.run(c, &["PING"]), "");
}

#[test]
fn pipelined_and_split_input() {
    let mut h = H::new();
    let c = h.conn();
    let mut all = enc(&["PING"]);
    all.extend(enc(&["XADD", "s", "1-1", "f", "v"]));
    all.extend(enc(&["XLEN", "s"]));
    all.extend(b"ECHO inline\r\n");
    let expected = "+PONG\r\n$3\r\n1-1\r\n:1\r\n$6\r\ninline\r\n";
    h.s.receive(c, h.now, &all);
    assert_eq!(h.out(c), expected);
    // Byte by byte.
    let c2 = h.conn();
    let mut all = enc(&["PING"]);
    all.extend(enc(&["XADD", "s", "1-2", "f", "v"]));
    all.extend(enc(&["XLEN", "s"]));
    all.extend(b"ECHO inline\r\n");
    for b in &all {
        h.s.receive(c2, h.now, std::slice::from_ref(b));
    }
    assert_eq!(
        h.out(c2),
        expected.replace("1-1", "1-2").replace(":1", ":2")
    );
}

#[test]
fn protocol_errors_close() {
    let mut h = H::new();
    let c = h.conn();
    h.s.receive(c, h.now, b"*1\r\nxx\r\n");
    assert_eq!(h.out(c), "-ERR Protocol error: expected '$', got 'x'\r\n");
    assert!(h.s.is_closed(c));
    for garbage in [
        &b"*x\r\n"[..],
        b"*1\r\n$-5\r\n",
        b"*1\r\n$abc\r\n",
        b"\"unbalanced\r\n",
    ] {
        let c = h.conn();
        h.s.receive(c, h.now, garbage);
        assert!(h.out(c).starts_with("-ERR Protocol error: "), "{garbage:?}");
        assert!(h.s.is_closed(c));
    }
    // Empty arrays and blank lines are ignored.
    let c = h.conn();
    h.s.receive(c, h.now, b"*0\r\n\r\n*-1\r\nPING\r\n");
    assert_eq!(h.out(c), "+PONG\r\n");
}

#[test]
fn never_panics_on_garbage() {
    let mut h = H::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let words: [&[u8]; 14] = [
        b"*",
        b"$",
        b"\r\n",
        b"3",
        b"-1",
        b"XADD",
        b"XREADGROUP",
        b"XCLAIM",
        b"XAUTOCLAIM",
        b"GROUP",
        b">",
        b"0",
        b"BLOCK",
        b"\"",
    ];
    for _ in 0..300 {
        let c = h.conn();
        let mut buf = Vec::new();
        for _ in 0..40 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let w = words[(seed % words.len() as u64) as usize];
            buf.extend_from_slice(w);
            if seed % 5 == 0 {
                buf.push((seed >> 8) as u8);
            }
        }
        h.s.receive(c, h.now, &buf);
        let _ = h.s.take_output(c);
    }
    // Valid commands with random arguments.
    let c = h.conn();
    h.run(c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let args = [
        "-",
        "+",
        "(0-0",
        "(+",
        "0",
        "18446744073709551615-18446744073709551615",
        "x",
        "COUNT",
        "JUSTID",
        "-1",
        "IDLE",
        "FORCE",
    ];
    for cmd in [
        "XADD",
        "XCLAIM",
        "XAUTOCLAIM",
        "XPENDING",
        "XRANGE",
        "XTRIM",
        "XGROUP",
        "XACK",
        "XREADGROUP",
        "SET",
    ] {
        for i in 0..args.len() {
            for j in 0..args.len() {
                let v = [
                    cmd,
                    "s",
                    "g",
                    "c",
                    args[i],
                    args[j],
                    args[(i + j) % args.len()],
                ];
                h.run(c, &v);
            }
        }
    }
}

#[test]
fn xadd_ids_and_errors() {
    let mut h = H::new();
    let c = h.conn();
    h.at(5);
    let out = h.run(c, &["XADD", "s", "*", "a", "1"]);
    assert_eq!(out, "$15\r\n1700000000005-0\r\n");
    assert_eq!(
        h.run(c, &["XADD", "s", "*", "a", "1"]),
        "$15\r\n1700000000005-1\r\n"
    );
    // An explicit id far ahead: auto ids keep increasing.
    assert_eq!(
        h.run(c, &["XADD", "s", "1800000000000-7", "a", "1"]),
        "$15\r\n1800000000000-7\r\n"
    );
    assert_eq!(
        h.run(c, &["XADD", "s", "*", "a", "1"]),
        "$15\r\n1800000000000-8\r\n"
    );
    assert_eq!(
        h.run(c, &["XADD", "s", "1800000000000-*", "a", "1"]),
        "$15\r\n1800000000000-9\r\n"
    );
    assert_eq!(
        h.run(c, &["XADD", "s", "5-1", "a", "1"]),
        "-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n"
    );
    assert_eq!(
        h.run(c, &["XADD", "t", "0-0", "a", "1"]),
        "-ERR The ID specified in XADD must be greater than 0-0\r\n"
    );
    assert_eq!(
        h.run(c, &["XADD", "t", "NOMKSTREAM", "*", "a", "1"]),
        "$-1\r\n"
    );
    assert_eq!(h.run(c, &["EXISTS", "t"]), ":0\r\n");
    assert_eq!(
        h.run(c, &["XADD", "s", "*", "a"]),
        "-ERR wrong number of arguments for 'xadd' command\r\n"
    );
    assert_eq!(
        h.run(c, &["XADD", "s", "x-1", "a", "1"]),
        "-ERR Invalid stream ID specified as stream command argument\r\n"
    );
    // Trimming.
    assert_eq!(
        h.run(c, &["XADD", "s", "MAXLEN", "2", "*", "a", "1"]),
        "$15\r\n1800000000000-10\r\n".replace("$15", "$16")
    );
    assert_eq!(h.run(c, &["XLEN", "s"]), ":2\r\n");
    assert_eq!(
        h.run(c, &["XTRIM", "s", "MINID", "=", "1800000000000-10"]),
        ":1\r\n"
    );
    assert_eq!(h.run(c, &["XTRIM", "s", "MAXLEN", "~", "0"]), ":1\r\n");
    assert_eq!(h.run(c, &["XLEN", "s"]), ":0\r\n");
    // Direct xadd uses the same clock rule.
    h.at(10);
    let d = h.s.xadd(h.now, b"u", &[(b"k", b"v")]);
    assert_eq!(d, id(1_700_000_000_010, 0));
    assert_eq!(
        h.s.xadd(h.now, b"u", &[(b"k", b"v")]),
        id(1_700_000_000_010, 1)
    );
    assert_eq!(h.s.entries(b"u").len(), 2);
    assert!(h.s.xdel(b"u", d));
    assert!(!h.s.xdel(b"u", d));
}

#[test]
fn wrongtype_and_strings() {
    let mut h = H::new();
    let c = h.conn();
    h.s.set_string(b"str", b"x");
    let wt = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    for cmd in [
        &["XADD", "str", "*", "a", "b"][..],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "str", ">"],
        &["XGROUP", "CREATE", "str", "g", "$"],
        &["XACK", "str", "g", "1"],
        &["XPENDING", "str", "g"],
        &["XCLAIM", "str", "g", "c", "0", "1"],
        &["XAUTOCLAIM", "str", "g", "c", "0", "0"],
        &["XLEN", "str"],
        &["XRANGE", "str", "-", "+"],
    ] {
        assert_eq!(h.run(c, cmd), wt, "{cmd:?}");
    }
    assert_eq!(h.run(c, &["TYPE", "str"]), "+string\r\n");
    h.run(c, &["XADD", "s", "1", "a", "b"]);
    assert_eq!(h.run(c, &["TYPE", "s"]), "+stream\r\n");
    assert_eq!(h.run(c, &["GET", "s"]), wt);
    assert_eq!(h.run(c, &["EXISTS", "s", "str", "s", "none"]), ":3\r\n");
    // Expiry on the virtual clock.
    assert_eq!(h.run(c, &["SET", "hb", "1", "PX", "100"]), "+OK\r\n");
    assert_eq!(h.run(c, &["SET", "hb", "2", "NX"]), "$-1\r\n");
    h.at(50);
    assert_eq!(h.run(c, &["PTTL", "hb"]), ":50\r\n");
    h.at(100);
    assert_eq!(h.run(c, &["GET", "hb"]), "$-1\r\n");
    assert_eq!(h.run(c, &["SET", "hb", "3", "NX"]), "+OK\r\n");
    assert_eq!(h.run(c, &["DEL", "hb", "s", "nope"]), ":2\r\n");
    assert!(h.s.delete_key(b"str"));
    assert!(!h.s.delete_key(b"str"));
}

/// Found by the differential test: `XGROUP CREATE ... MKSTREAM` on a string
/// must answer WRONGTYPE (before parsing the id), not replace the string.
#[test]
fn xgroup_create_mkstream_on_string_is_wrongtype() {
    let mut h = H::new();
    let c = h.conn();
    h.s.set_string(b"str", b"x");
    let wt = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    for cmd in [
        &["XGROUP", "CREATE", "str", "g", "0", "MKSTREAM"][..],
        &["XGROUP", "CREATE", "str", "g", "$", "MKSTREAM"],
        &["XGROUP", "CREATE", "str", "g", "bad", "MKSTREAM"],
        &["XGROUP", "CREATECONSUMER", "str", "g", "c"],
        &["XGROUP", "DESTROY", "str", "g"],
    ] {
        assert_eq!(h.run(c, cmd), wt, "{cmd:?}");
    }
    assert_eq!(h.run(c, &["TYPE", "str"]), "+string\r\n");
    assert_eq!(h.run(c, &["GET", "str"]), "$1\r\nx\r\n");
}

#[test]
fn xgroup_subcommands() {
    let mut h = H::new();
    let c = h.conn();
    assert_eq!(h.run(c, &["XGROUP", "CREATE", "s", "g", "$"]), "-ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.\r\n");
    assert_eq!(
        h.run(c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]),
        "+OK\r\n"
    );
    assert_eq!(
        h.run(c, &["XGROUP", "CREATE", "s", "g", "0"]),
        "-BUSYGROUP Consumer Group name already exists\r\n"
    );
    assert_eq!(
        h.run(c, &["XGROUP", "CREATE", "s", "g"]),
        "-ERR wrong number of arguments for 'xgroup|create' command\r\n"
    );
    assert_eq!(
        h.run(c, &["XGROUP", "CREATE", "s", "g2", "0", "BAD"]),
        "-ERR unknown subcommand or wrong number of arguments for 'CREATE'. Try XGROUP HELP.\r\n"
    );
    assert_eq!(
        h.run(c, &["XGROUP", "CREATECONSUMER", "s", "nog", "c"]),
        "-NOGROUP No such consumer group 'nog' for key name 's'\r\n"
    );
    assert_eq!(
        h.run(c, &["XGROUP", "CREATECONSUMER", "s", "g", "c"]),
        ":1\r\n"
    );
    assert_eq!(
        h.run(c, &["XGROUP", "CREATECONSUMER", "s", "g", "c"]),
        ":0\r\n"
    );
    h.run(c, &["XADD", "s", "1-1", "f", "v"]);
    h.run(c, &["XADD", "s", "1-2", "f", "v"]);
    assert_eq!(h.run(c, &["XGROUP", "SETID", "s", "g", "0"]), "+OK\r\n");
    assert_eq!(h.s.group_last_delivered(b"s", b"g"), Some(StreamId::ZERO));
    h.run(c, &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]);
    assert_eq!(h.s.group_last_delivered(b"s", b"g"), Some(id(1, 2)));
    assert_eq!(
        h.run(c, &["XGROUP", "DELCONSUMER", "s", "g", "c"]),
        ":2\r\n"
    );
    assert!(h.s.pending(b"s", b"g").is_empty());
    assert_eq!(
        h.run(c, &["XGROUP", "DELCONSUMER", "s", "g", "c"]),
        ":0\r\n"
    );
    assert_eq!(h.run(c, &["XGROUP", "SETID", "s", "g", "$"]), "+OK\r\n");
    assert_eq!(
        h.run(c, &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]),
        "*-1\r\n"
    );
    assert_eq!(h.run(c, &["XGROUP", "DESTROY", "s", "g"]), ":1\r\n");
    assert_eq!(h.run(c, &["XGROUP", "DESTROY", "s", "g"]), ":0\r\n");
    assert_eq!(h.run(c, &["XGROUP", "CREATE", "s", "g", "1-1"]), "+OK\r\n");
    assert!(h.s.destroy_group(b"s", b"g"));
    assert!(!h.s.destroy_group(b"s", b"g"));
}

#[test]
fn xreadgroup_new_and_history() {
    let (mut h, c) = setup();
    assert_eq!(
        h.run(c, &["XREADGROUP", "GROUP", "nog", "c", "STREAMS", "s", ">"]),
        "-NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option\r\n"
    );
    assert_eq!(
        h.run(
            c,
            &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "nokey", ">"]
        ),
        "-NOGROUP No such key 'nokey' or consumer group 'g' in XREADGROUP with GROUP option\r\n"
    );
    h.at(10);
    let out = h.run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert_eq!(out, format!("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n{E1}"));
    h.run(c, &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"]);
    let p = h.s.pending(b"s", b"g");
    assert_eq!(
        p.iter()
            .map(|p| (p.id, &p.consumer[..], p.delivery_count))
            .collect::<Vec<_>>(),
        vec![
            (id(1, 1), &b"alice"[..], 1),
            (id(1, 2), b"bob", 1),
            (id(1, 3), b"bob", 1)
        ]
    );
    assert_eq!(
        h.run(c, &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"]),
        "*-1\r\n"
    );
    // History: own entries only, count += 1, deleted entries as nil.
    h.s.xdel(b"s", id(1, 2));
    h.at(20);
    assert_eq!(
        h.run(c, &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", "0"]),
        "*1\r\n*2\r\n$1\r\ns\r\n*2\r\n*2\r\n$3\r\n1-2\r\n*-1\r\n*2\r\n$3\r\n1-3\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    );
    let p = h.s.pending(b"s", b"g");
    assert_eq!(p[1].delivery_count, 1, "deleted entry is not counted");
    assert_eq!(p[2].delivery_count, 2);
    assert_eq!(p[2].last_delivery, h.t0 + Duration::from_millis(20));
    assert_eq!(
        h.run(
            c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "bob",
                "COUNT",
                "1",
                "STREAMS",
                "s",
                "1-2"
            ]
        ),
        "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-3\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    );
    assert_eq!(
        h.run(
            c,
            &["XREADGROUP", "GROUP", "g", "carol", "STREAMS", "s", "0"]
        ),
        "*1\r\n*2\r\n$1\r\ns\r\n*0\r\n"
    );
    // NOACK: delivered, not pending.
    h.run(c, &["XADD", "s", "2-1", "f", "v"]);
    h.run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "dave",
            "NOACK",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert_eq!(h.s.pending(b"s", b"g").len(), 3);
    assert_eq!(h.s.group_last_delivered(b"s", b"g"), Some(id(2, 1)));
    // A read with nothing new does not create the consumer.
    h.run(
        c,
        &["XREADGROUP", "GROUP", "g", "erin", "STREAMS", "s", ">"],
    );
    assert!(!h.s.consumers(b"s", b"g").contains(&Bytes::from("erin")));
}

#[test]
fn blocking_wakeup_timeout_and_pipeline_order() {
    let mut h = H::new();
    let c = h.conn();
    let p = h.conn();
    h.run(p, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let mut buf = enc(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
    buf.extend(enc(&["PING"]));
    h.s.receive(c, h.now, &buf);
    assert!(h.s.is_blocked(c));
    assert_eq!(h.out(c), "", "PING waits behind the blocked read");
    assert_eq!(h.s.next_deadline(), None);
    h.at(1);
    assert_eq!(h.run(p, &["XADD", "s", "1-1", "f", "v"]), "$3\r\n1-1\r\n");
    assert_eq!(
        h.out(c),
        format!("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n{E1}+PONG\r\n")
    );
    assert!(!h.s.is_blocked(c));
    assert_eq!(h.s.pending(b"s", b"g")[0].consumer, "c");
    // Timeout.
    h.at(100);
    h.send(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "50",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert_eq!(h.s.next_deadline(), Some(h.t0 + Duration::from_millis(150)));
    h.s.advance(h.t0 + Duration::from_millis(149));
    assert_eq!(h.out(c), "");
    h.s.advance(h.t0 + Duration::from_millis(150));
    assert_eq!(h.out(c), "*-1\r\n");
    assert!(!h.s.is_blocked(c));
    // Two blocked consumers: first come first served; direct xadd wakes.
    let c2 = h.conn();
    h.send(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    h.send(
        c2,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c2",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    let first = h.s.xadd(h.now, b"s", &[(b"f", b"v")]);
    assert!(h.out(c).contains(&first.to_string()));
    assert!(h.s.is_blocked(c2));
    let second = h.s.xadd(h.now, b"s", &[(b"f", b"v")]);
    assert!(h.out(c2).contains(&second.to_string()));
    // Group destroyed / key deleted while blocked.
    h.send(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    h.s.destroy_group(b"s", b"g");
    assert_eq!(
        h.out(c),
        "-NOGROUP the consumer group this client was blocked on no longer exists\r\n"
    );
    h.run(p, &["XGROUP", "CREATE", "s", "g", "$"]);
    h.send(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert_eq!(h.run(p, &["DEL", "s"]), ":1\r\n");
    assert_eq!(h.out(c), "-UNBLOCKED the stream key no longer exists\r\n");
    // BLOCK inside MULTI does not block.
    h.run(p, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    h.run(c, &["MULTI"]);
    h.run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert_eq!(h.run(c, &["EXEC"]), "*1\r\n*-1\r\n");
    // Disconnect forgets the blocked read.
    h.send(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "10",
            "STREAMS",
            "s",
            ">",
        ],
    );
    h.s.disconnect(c);
    assert_eq!(h.s.next_deadline(), None);
    assert!(!h.s.is_blocked(c));
}

#[test]
fn xack_and_log() {
    let (mut h, c) = setup();
    h.run(c, &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]);
    assert_eq!(h.run(c, &["XACK", "s", "g", "1-1", "1-1", "9-9"]), ":1\r\n");
    assert_eq!(h.run(c, &["XACK", "s", "nog", "1-2"]), ":0\r\n");
    assert_eq!(h.run(c, &["XACK", "nokey", "g", "bad"]), ":0\r\n");
    assert_eq!(
        h.run(c, &["XACK", "s", "g", "bad"]),
        "-ERR Invalid stream ID specified as stream command argument\r\n"
    );
    let log: Vec<_> =
        h.s.acks()
            .iter()
            .map(|(_, g, id, p)| (g.clone(), *id, *p))
            .collect();
    assert_eq!(
        log,
        vec![
            (Bytes::from("g"), id(1, 1), true),
            (Bytes::from("g"), id(1, 1), false),
            (Bytes::from("g"), id(9, 9), false),
            (Bytes::from("nog"), id(1, 2), false),
        ]
    );
    assert_eq!(h.s.command_counts().get("XACK"), Some(&4));
    assert_eq!(h.s.command_counts().get("XADD"), Some(&3));
}

#[test]
fn xpending_forms() {
    let (mut h, c) = setup();
    assert_eq!(
        h.run(c, &["XPENDING", "s", "g"]),
        "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n"
    );
    h.run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "b",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            ">",
        ],
    );
    h.at(100);
    h.run(c, &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]);
    h.at(250);
    assert_eq!(
        h.run(c, &["XPENDING", "s", "g"]),
        "*4\r\n:3\r\n$3\r\n1-1\r\n$3\r\n1-3\r\n*2\r\n*2\r\n$1\r\na\r\n$1\r\n2\r\n*2\r\n$1\r\nb\r\n$1\r\n1\r\n"
    );
    assert_eq!(
        h.run(c, &["XPENDING", "s", "g", "-", "+", "10"]),
        "*3\r\n*4\r\n$3\r\n1-1\r\n$1\r\nb\r\n:250\r\n:1\r\n*4\r\n$3\r\n1-2\r\n$1\r\na\r\n:150\r\n:1\r\n*4\r\n$3\r\n1-3\r\n$1\r\na\r\n:150\r\n:1\r\n"
    );
    assert_eq!(
        h.run(c, &["XPENDING", "s", "g", "IDLE", "200", "-", "+", "10"]),
        "*1\r\n*4\r\n$3\r\n1-1\r\n$1\r\nb\r\n:250\r\n:1\r\n"
    );
    assert_eq!(
        h.run(c, &["XPENDING", "s", "g", "(1-1", "+", "1", "a"]),
        "*1\r\n*4\r\n$3\r\n1-2\r\n$1\r\na\r\n:150\r\n:1\r\n"
    );
    assert_eq!(
        h.run(c, &["XPENDING", "s", "g", "-", "+", "10", "nobody"]),
        "*0\r\n"
    );
    assert_eq!(
        h.run(c, &["XPENDING", "s", "g", "-", "+"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        h.run(c, &["XPENDING", "s", "nog"]),
        "-NOGROUP No such key 's' or consumer group 'nog'\r\n"
    );
}

#[test]
fn xclaim_semantics() {
    let (mut h, c) = setup();
    h.run(c, &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]);
    h.at(100);
    // Not idle enough: nothing claimed.
    assert_eq!(h.run(c, &["XCLAIM", "s", "g", "b", "200", "1-1"]), "*0\r\n");
    assert_eq!(
        h.run(c, &["XCLAIM", "s", "g", "b", "50", "1-1"]),
        format!("*1\r\n{E1}")
    );
    let p = h.s.pending(b"s", b"g");
    assert_eq!((&p[0].consumer[..], p[0].delivery_count), (&b"b"[..], 2));
    assert_eq!(p[0].last_delivery, h.now);
    // JUSTID: count unchanged; IDLE sets the delivery time back.
    assert_eq!(
        h.run(
            c,
            &["XCLAIM", "s", "g", "b", "0", "1-2", "JUSTID", "IDLE", "40"]
        ),
        "*1\r\n$3\r\n1-2\r\n"
    );
    let p = h.s.pending(b"s", b"g");
    assert_eq!(p[1].delivery_count, 1);
    assert_eq!(p[1].last_delivery, h.t0 + Duration::from_millis(60));
    // RETRYCOUNT sets it.
    h.run(
        c,
        &[
            "XCLAIM",
            "s",
            "g",
            "b",
            "0",
            "1-2",
            "RETRYCOUNT",
            "7",
            "JUSTID",
        ],
    );
    assert_eq!(h.s.pending(b"s", b"g")[1].delivery_count, 7);
    // Deleted entry: dropped from the PEL, not returned.
    h.s.xdel(b"s", id(1, 3));
    assert_eq!(h.run(c, &["XCLAIM", "s", "g", "b", "0", "1-3"]), "*0\r\n");
    assert_eq!(h.s.pending(b"s", b"g").len(), 2);
    // FORCE creates a PEL entry for an existing but unpending entry.
    h.run(c, &["XACK", "s", "g", "1-1"]);
    assert_eq!(
        h.run(c, &["XCLAIM", "s", "g", "c", "0", "1-1", "FORCE"]),
        format!("*1\r\n{E1}")
    );
    assert_eq!(h.s.pending(b"s", b"g")[0].delivery_count, 2);
    assert_eq!(
        h.run(
            c,
            &["XCLAIM", "s", "g", "b", "0", "1-1", "LASTID", "5-0", "JUSTID"]
        ),
        "*1\r\n$3\r\n1-1\r\n"
    );
    assert_eq!(h.s.group_last_delivered(b"s", b"g"), Some(id(5, 0)));
    assert_eq!(
        h.run(c, &["XCLAIM", "s", "g", "b", "0", "1-1", "BOGUS"]),
        "-ERR Unrecognized XCLAIM option 'BOGUS'\r\n"
    );
    assert_eq!(
        h.run(c, &["XCLAIM", "s", "nog", "b", "0", "1-1"]),
        "-NOGROUP No such key 's' or consumer group 'nog'\r\n"
    );
}

#[test]
fn xautoclaim_cursor_and_deleted() {
    let mut h = H::new();
    let c = h.conn();
    for i in 1..=5 {
        h.run(c, &["XADD", "s", &format!("1-{i}"), "f", "v"]);
    }
    h.run(c, &["XGROUP", "CREATE", "s", "g", "0"]);
    h.run(c, &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]);
    h.s.xdel(b"s", id(1, 2));
    h.at(100);
    // COUNT 2: examines 1-1 (claimed) and 1-2 (deleted): cursor 1-3.
    assert_eq!(
        h.run(
            c,
            &[
                "XAUTOCLAIM",
                "s",
                "g",
                "b",
                "50",
                "0",
                "COUNT",
                "2",
                "JUSTID"
            ]
        ),
        "*3\r\n$3\r\n1-3\r\n*1\r\n$3\r\n1-1\r\n*1\r\n$3\r\n1-2\r\n"
    );
    assert_eq!(h.s.pending(b"s", b"g").len(), 4);
    assert_eq!(h.s.pending(b"s", b"g")[0].delivery_count, 1, "JUSTID");
    // Continue from the cursor.
    assert_eq!(
        h.run(c, &["XAUTOCLAIM", "s", "g", "b", "50", "1-3", "COUNT", "2"]),
        "*3\r\n$3\r\n1-5\r\n*2\r\n*2\r\n$3\r\n1-3\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$3\r\n1-4\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*0\r\n"
    );
    assert_eq!(
        h.run(
            c,
            &[
                "XAUTOCLAIM",
                "s",
                "g",
                "b",
                "50",
                "1-5",
                "COUNT",
                "2",
                "JUSTID"
            ]
        ),
        "*3\r\n$3\r\n0-0\r\n*1\r\n$3\r\n1-5\r\n*0\r\n"
    );
    let p = h.s.pending(b"s", b"g");
    assert!(p.iter().all(|p| p.consumer == "b"));
    assert_eq!(
        p.iter().map(|p| p.delivery_count).collect::<Vec<_>>(),
        vec![1, 2, 2, 1]
    );
    // Idle filter: just claimed, so nothing is idle enough; the scan
    // examines at most COUNT*10 entries.
    assert_eq!(
        h.run(c, &["XAUTOCLAIM", "s", "g", "c", "50", "0", "COUNT", "1"]),
        "*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n"
    );
    assert_eq!(
        h.run(c, &["XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT", "0"]),
        "-ERR COUNT must be > 0\r\n"
    );
    assert_eq!(
        h.run(c, &["XAUTOCLAIM", "s", "nog", "c", "0", "0"]),
        "-NOGROUP No such key 's' or consumer group 'nog'\r\n"
    );
}

#[test]
fn xautoclaim_attempts_limit() {
    let mut h = H::new();
    let c = h.conn();
    for i in 1..=30 {
        h.run(c, &["XADD", "s", &format!("1-{i}"), "f", "v"]);
    }
    h.run(c, &["XGROUP", "CREATE", "s", "g", "0"]);
    h.run(c, &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]);
    // None idle enough: COUNT 1 examines 10 entries, cursor is the 11th.
    assert_eq!(
        h.run(c, &["XAUTOCLAIM", "s", "g", "b", "1000", "0", "COUNT", "1"]),
        "*3\r\n$4\r\n1-11\r\n*0\r\n*0\r\n"
    );
}

#[test]
fn xautoclaim_v62_shape() {
    let mut h = H::with(SimOptions {
        autoclaim_v62: true,
        ..Default::default()
    });
    let c = h.conn();
    h.run(c, &["XADD", "s", "1-1", "f", "v"]);
    h.run(c, &["XADD", "s", "1-2", "f", "v"]);
    h.run(c, &["XGROUP", "CREATE", "s", "g", "0"]);
    h.run(c, &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]);
    h.s.xdel(b"s", id(1, 1));
    assert_eq!(
        h.run(c, &["XAUTOCLAIM", "s", "g", "b", "0", "0"]),
        "*2\r\n$3\r\n0-0\r\n*2\r\n$-1\r\n*2\r\n$3\r\n1-2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    );
    let p = h.s.pending(b"s", b"g");
    assert_eq!(p.len(), 2, "6.2 keeps deleted entries pending");
    assert_eq!((&p[0].consumer[..], p[0].delivery_count), (&b"b"[..], 2));
}

#[test]
fn resp3_shapes() {
    let (mut h, c) = setup();
    let hello = h.run(c, &["HELLO", "3"]);
    assert!(hello.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"), "{hello}");
    assert!(hello.ends_with(
        "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    ));
    assert_eq!(
        h.run(c, &["XPENDING", "s", "g"]),
        "*4\r\n:0\r\n_\r\n_\r\n_\r\n"
    );
    assert_eq!(
        h.run(
            c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "a",
                "COUNT",
                "1",
                "STREAMS",
                "s",
                ">"
            ]
        ),
        format!("%1\r\n$1\r\ns\r\n*1\r\n{E1}")
    );
    h.s.xdel(b"s", id(1, 1));
    assert_eq!(
        h.run(c, &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", "0"]),
        "%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n_\r\n"
    );
    h.run(c, &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]);
    assert_eq!(
        h.run(c, &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]),
        "_\r\n"
    );
    assert_eq!(h.run(c, &["GET", "nokey"]), "_\r\n");
    let hello2 = h.run(c, &["HELLO", "2"]);
    assert!(hello2.starts_with("*14\r\n"));
    assert_eq!(h.run(c, &["GET", "nokey"]), "$-1\r\n");
    assert_eq!(
        h.run(c, &["HELLO", "4"]),
        "-NOPROTO unsupported protocol version\r\n"
    );
}

#[test]
fn auth_required() {
    let mut h = H::with(SimOptions {
        password: Some("sekret".into()),
        ..Default::default()
    });
    let c = h.conn();
    assert_eq!(h.run(c, &["PING"]), "-NOAUTH Authentication required.\r\n");
    assert!(h
        .run(c, &["HELLO", "3"])
        .starts_with("-NOAUTH HELLO must be called"));
    assert_eq!(
        h.run(c, &["AUTH", "bad"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(h.run(c, &["AUTH", "sekret"]), "+OK\r\n");
    assert_eq!(h.run(c, &["PING"]), "+PONG\r\n");
    let c2 = h.conn();
    assert!(h
        .run(
            c2,
            &["HELLO", "3", "AUTH", "default", "sekret", "SETNAME", "x"]
        )
        .starts_with("%7"));
    assert_eq!(h.run(c2, &["CLIENT", "GETNAME"]), "$1\r\nx\r\n");
    // Unauthenticated clients may not send big requests.
    let c3 = h.conn();
    h.s.receive(c3, h.now, b"*20\r\n");
    assert_eq!(
        h.out(c3),
        "-ERR Protocol error: unauthenticated multibulk length\r\n"
    );

    let mut h = H::with(SimOptions {
        password: Some("pw".into()),
        username: Some("app".into()),
        ..Default::default()
    });
    let c = h.conn();
    assert!(h.run(c, &["AUTH", "pw"]).starts_with("-WRONGPASS"));
    assert_eq!(h.run(c, &["AUTH", "app", "pw"]), "+OK\r\n");

    let mut h = H::new();
    let c = h.conn();
    assert_eq!(h.run(c, &["AUTH", "x"]), "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n");
    assert_eq!(h.run(c, &["AUTH", "default", "x"]), "+OK\r\n");
}

#[test]
fn multi_exec() {
    let mut h = H::new();
    let c = h.conn();
    let w = h.conn();
    h.run(w, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    h.send(
        w,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "w",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert_eq!(h.run(c, &["EXEC"]), "-ERR EXEC without MULTI\r\n");
    assert_eq!(h.run(c, &["MULTI"]), "+OK\r\n");
    assert_eq!(h.run(c, &["XADD", "s", "1-1", "f", "v"]), "+QUEUED\r\n");
    assert_eq!(h.run(c, &["XADD", "s", "1-1", "f", "v"]), "+QUEUED\r\n");
    assert_eq!(h.run(c, &["XLEN", "s"]), "+QUEUED\r\n");
    assert_eq!(h.out(w), "", "nothing runs before EXEC");
    assert_eq!(
        h.run(c, &["EXEC"]),
        "*3\r\n$3\r\n1-1\r\n-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n:1\r\n"
    );
    assert_eq!(h.out(w), format!("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n{E1}"));
    h.run(c, &["MULTI"]);
    h.run(c, &["XADD", "s"]);
    assert_eq!(
        h.run(c, &["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    h.run(c, &["MULTI"]);
    h.run(c, &["XADD", "s", "2-1", "f", "v"]);
    assert_eq!(h.run(c, &["DISCARD"]), "+OK\r\n");
    assert_eq!(h.run(c, &["XLEN", "s"]), ":1\r\n");
}

#[test]
fn xrange_bounds() {
    let (mut h, c) = setup();
    assert_eq!(
        h.run(c, &["XRANGE", "s", "(1-1", "(1-3"]),
        "*1\r\n*2\r\n$3\r\n1-2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    );
    assert_eq!(
        h.run(c, &["XRANGE", "s", "-", "+", "COUNT", "1"]),
        format!("*1\r\n{E1}")
    );
    assert_eq!(
        h.run(c, &["XRANGE", "s", "1", "1"]).matches("1-").count(),
        3
    );
    assert_eq!(
        h.run(c, &["XRANGE", "s", "-", "(0-0"]),
        "-ERR invalid end ID for the interval\r\n"
    );
    assert!(h
        .run(c, &["XREVRANGE", "s", "+", "-", "COUNT", "1"])
        .contains("1-3"));
    assert_eq!(h.run(c, &["XRANGE", "nokey", "-", "+"]), "*0\r\n");
}

#[test]
fn the_dead_letter_script_moves_and_acks_each_entry_only_if_its_add_worked() {
    let (mut h, c) = setup();
    h.run(c, &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]);
    let script = crate::consumer::DEAD_LETTER_SCRIPT;
    let eval = |dlq: &'static str, delete: &'static str| {
        vec![
            "EVAL", script, "2", "s", dlq, "g", delete, "1-1", "1", "f", "v", "1-2", "1", "f", "w",
        ]
    };
    // The dead-letter key holds a string: nothing is acked.
    h.run(c, &["SET", "str", "x"]);
    let refused = h.run(c, &eval("str", "0"));
    assert_eq!(
        refused,
        "*2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n\
         -WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    assert_eq!(h.run(c, &["XPENDING", "s", "g"]).lines().nth(1), Some(":3"));
    // A stream: both moved, acked and (delete flag) deleted.
    assert_eq!(h.run(c, &eval("dlq", "1")), "*2\r\n:1\r\n:1\r\n");
    assert_eq!(h.run(c, &["XLEN", "dlq"]), ":2\r\n");
    assert_eq!(h.run(c, &["XLEN", "s"]), ":1\r\n");
    assert_eq!(h.run(c, &["XPENDING", "s", "g"]).lines().nth(1), Some(":1"));
    // Any other script is refused by name.
    let other = h.run(c, &["EVAL", "return 1", "0"]);
    assert!(
        other.starts_with("-ERR the model runs no script"),
        "{other}"
    );
}

#[test]
fn client_unblock_returns_a_blocked_read_and_its_pipeline_goes_on() {
    let mut h = H::new();
    let c = h.conn();
    let other = h.conn();
    h.run(other, &["XGROUP", "CREATE", "a", "g", "$", "MKSTREAM"]);
    h.run(other, &["XGROUP", "CREATE", "b", "g", "$", "MKSTREAM"]);
    let id = h.run(c, &["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim_end().to_owned();
    let mut buf = enc(&[
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
    ]);
    buf.extend(enc(&["PING"]));
    h.s.receive(c, h.now, &buf);
    assert!(h.s.is_blocked(c));
    assert_eq!(h.run(other, &["CLIENT", "UNBLOCK", &id]), ":1\r\n");
    assert_eq!(
        h.out(c),
        "*-1\r\n+PONG\r\n",
        "a timeout's null, then the rest"
    );
    assert!(!h.s.is_blocked(c));
    assert_eq!(
        h.run(other, &["CLIENT", "UNBLOCK", &id]),
        ":0\r\n",
        "not blocked"
    );
    // With ERROR, the read fails instead.
    h.send(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "b",
            ">",
        ],
    );
    assert_eq!(h.run(other, &["CLIENT", "UNBLOCK", &id, "error"]), ":1\r\n");
    assert!(h.out(c).starts_with("-UNBLOCKED"));
    assert!(h
        .run(other, &["CLIENT", "UNBLOCK", "x"])
        .starts_with("-ERR value is not an integer"));
    assert!(h
        .run(other, &["CLIENT", "UNBLOCK", &id, "later"])
        .starts_with("-ERR CLIENT UNBLOCK reason"));
    // Several streams, one blocked read: an entry on any of them serves it.
    h.send(
        c,
        &[
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
        ],
    );
    h.s.xadd(h.now, b"b", &[(b"f", b"v")]);
    let served = h.out(c);
    assert!(served.starts_with("*1\r\n*2\r\n$1\r\nb\r\n"), "{served}");
}
