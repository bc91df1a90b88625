//! The consumer state machine against scripted server replies: exact bytes
//! out, exact events back.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use xgroup_core::{
    BatchId, Conn, Consumer, ConsumerConfig, Disposition, Error, Event, Outcome, ServerErrorKind,
    Source, StreamId, TimerKind, Warning,
};

struct Script {
    c: Consumer,
    now: Instant,
}

impl Script {
    fn new(cfg: ConsumerConfig) -> Self {
        let now = Instant::now();
        let mut c = Consumer::new(cfg);
        let used = c.config().uses_read_connection();
        assert_eq!(c.poll_event(), Some(Event::Connect(Conn::Control)));
        c.handle_connected(now, Conn::Control);
        if used {
            assert_eq!(c.poll_event(), Some(Event::Connect(Conn::Read)));
            c.handle_connected(now, Conn::Read);
        }
        Script { c, now }
    }

    /// What was written, as commands separated by " | "; those on the read
    /// connection (when there is one) start with "read: ".
    fn sent(&mut self) -> String {
        let mut out = String::new();
        while let Some((conn, b)) = self.c.poll_transmit() {
            let commands = decode_commands(&b);
            match conn {
                Conn::Control => out.push_str(&commands),
                Conn::Read | Conn::Discovery => {
                    let on = if conn == Conn::Read {
                        "read"
                    } else {
                        "discovery"
                    };
                    for c in commands.split_terminator(" | ") {
                        out.push_str(&format!("{on}: {c} | "));
                    }
                }
            }
        }
        // The heartbeat's scripts by name.
        out.replace(xgroup_core::HEARTBEAT_SCRIPT, "HB_SCRIPT")
            .replace(xgroup_core::HEARTBEAT_RELEASE_SCRIPT, "HB_RELEASE")
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.c.poll_event()).collect()
    }

    /// Replies on the control connection.
    fn reply(&mut self, bytes: &str) {
        self.c
            .handle_input(self.now, Conn::Control, bytes.as_bytes());
    }

    /// Replies on the read connection.
    fn reply_read(&mut self, bytes: &str) {
        self.c.handle_input(self.now, Conn::Read, bytes.as_bytes());
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.c.handle_timeout(self.now);
    }

    /// Default start-up: SETNAME, group create, empty replay, empty sweep.
    fn started(cfg: ConsumerConfig) -> Self {
        let mut s = Script::new(cfg);
        assert_eq!(
            s.sent(),
            "CLIENT SETNAME c | XGROUP CREATE s g 0 MKSTREAM | "
        );
        s.reply("+OK\r\n+OK\r\n");
        assert_eq!(s.sent(), "XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | ");
        s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
        assert_eq!(s.sent(), "XAUTOCLAIM s g c 60000 0-0 COUNT 10 | ");
        s.reply("*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
        assert_eq!(
            s.sent(),
            "XREADGROUP GROUP g c COUNT 10 BLOCK 5000 STREAMS s > | "
        );
        assert!(s.events().is_empty());
        s
    }
}

/// Renders RESP arrays of bulk strings as `ARG ARG | ARG ... | `.
fn decode_commands(mut b: &[u8]) -> String {
    let mut out = String::new();
    let line = |b: &mut &[u8]| -> String {
        let end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let l = String::from_utf8(b[..end].to_vec()).unwrap();
        *b = &b[end + 2..];
        l
    };
    while !b.is_empty() {
        let h = line(&mut b);
        let argc: usize = h[1..].parse().unwrap();
        let mut args = Vec::new();
        for _ in 0..argc {
            let len: usize = line(&mut b)[1..].parse().unwrap();
            args.push(String::from_utf8(b[..len].to_vec()).unwrap());
            b = &b[len + 2..];
        }
        out.push_str(&args.join(" "));
        out.push_str(" | ");
    }
    out
}

/// Count 10 (the scripts' reads and batches are written for it), heartbeats
/// off, a fixed seed, one connection and no read-ahead: these scripts check
/// exact bytes in order (the read connection's scripts use
/// [`cfg_two`], the read-ahead's [`cfg_ahead`]).
fn cfg() -> xgroup_core::ConsumerConfigBuilder {
    ConsumerConfig::builder("s", "g", "c")
        .count(10)
        .no_heartbeat()
        .seed(7)
        .separate_read_connection(false)
        .no_read_ahead()
}

/// As [`cfg`], with reads of new entries on a connection of their own.
fn cfg_two() -> xgroup_core::ConsumerConfigBuilder {
    cfg().separate_read_connection(true)
}

fn entry(id: &str, f: &str, v: &str) -> String {
    format!(
        "*2\r\n${}\r\n{}\r\n*2\r\n${}\r\n{}\r\n${}\r\n{}\r\n",
        id.len(),
        id,
        f.len(),
        f,
        v.len(),
        v
    )
}

fn read_reply(entries: &[String]) -> String {
    format!(
        "*1\r\n*2\r\n$1\r\ns\r\n*{}\r\n{}",
        entries.len(),
        entries.concat()
    )
}

#[test]
fn consume_and_ack_pipelines_the_next_read() {
    let mut s = Script::started(cfg().build().unwrap());
    s.reply(&read_reply(&[
        entry("1-1", "a", "1"),
        entry("1-2", "b", "2"),
    ]));
    let events = s.events();
    let [Event::Deliver(batch)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(batch.source, Source::New);
    assert_eq!(batch.messages.len(), 2);
    assert_eq!(batch.messages[0].id, StreamId::new(1, 1));
    assert_eq!(batch.messages[1].fields.get("b"), Some(&b"2"[..]));
    assert_eq!(batch.messages[1].attempt, 1);
    // In-flight limit 1: no read while the batch is out.
    assert_eq!(s.sent(), "");
    s.c.handle_completion(s.now, batch.id, Outcome::AckAll);
    assert_eq!(
        s.sent(),
        "XACK s g 1-1 1-2 | XREADGROUP GROUP g c COUNT 10 BLOCK 5000 STREAMS s > | "
    );
    s.reply(":2\r\n*-1\r\n");
    assert_eq!(s.c.stats().acked, 2);
    assert_eq!(
        s.sent(),
        "XREADGROUP GROUP g c COUNT 10 BLOCK 5000 STREAMS s > | "
    );
}

#[test]
fn ack_only_some_ids_and_warn_about_strangers() {
    let mut s = Script::started(cfg().build().unwrap());
    s.reply(&read_reply(&[
        entry("1-1", "a", "1"),
        entry("1-2", "b", "2"),
    ]));
    let Event::Deliver(batch) = s.events().remove(0) else {
        panic!()
    };
    s.c.handle_completion(
        s.now,
        batch.id,
        Outcome::AckOnly(vec![StreamId::new(1, 2), StreamId::new(9, 9)]),
    );
    assert_eq!(
        s.events(),
        vec![Event::Warning(Warning::AckIdsNotInBatch {
            batch: batch.id,
            ids: vec![StreamId::new(9, 9)]
        })]
    );
    assert!(s.sent().starts_with("XACK s g 1-2 | XREADGROUP"));
    // A second completion of the same batch is refused.
    s.c.handle_completion(s.now, batch.id, Outcome::AckAll);
    assert_eq!(
        s.events(),
        vec![Event::Warning(Warning::UnknownBatch(batch.id))]
    );
    assert_eq!(s.sent(), "");
}

#[test]
fn block_is_capped_by_the_next_claim_sweep() {
    let mut s = Script::new(
        cfg()
            .claim_interval(Duration::from_millis(2000))
            .build()
            .unwrap(),
    );
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    s.sent();
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    s.sent();
    s.reply("*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
    assert_eq!(
        s.sent(),
        "XREADGROUP GROUP g c COUNT 10 BLOCK 2000 STREAMS s > | "
    );
    assert_eq!(s.c.poll_timeout().unwrap().1, TimerKind::ClaimSweep);
    s.now += Duration::from_millis(1500);
    s.reply("*-1\r\n");
    assert_eq!(
        s.sent(),
        "XREADGROUP GROUP g c COUNT 10 BLOCK 500 STREAMS s > | "
    );
    s.advance(Duration::from_millis(500));
    // The sweep is due but the read is outstanding: it waits for the reply.
    assert_eq!(s.sent(), "");
    s.reply("*-1\r\n");
    assert_eq!(s.sent(), "XAUTOCLAIM s g c 60000 0-0 COUNT 10 | ");
    // The cursor is kept between calls until the server says 0-0.
    s.reply("*3\r\n$3\r\n5-0\r\n*0\r\n*0\r\n");
    assert_eq!(s.sent(), "XAUTOCLAIM s g c 60000 5-0 COUNT 10 | ");
    s.reply("*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
    assert!(s.sent().starts_with("XREADGROUP"));
    let (at, kind) = s.c.poll_timeout().unwrap();
    assert!(at > s.now);
    assert!(matches!(kind, TimerKind::ClaimSweep | TimerKind::Reply));
}

#[test]
fn replayed_entries_carry_server_delivery_counts_and_deleted_ones_are_acked() {
    let mut s = Script::new(cfg().build().unwrap());
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    s.sent();
    s.reply(&format!(
        "*1\r\n*2\r\n$1\r\ns\r\n*2\r\n{}*2\r\n$3\r\n1-2\r\n*-1\r\n",
        entry("1-1", "a", "1")
    ));
    // The deleted entry's ack waits for the pipelined counts query's reply.
    assert_eq!(s.sent(), "XPENDING s g 1-1 1-1 17 c | ");
    assert_eq!(
        s.events(),
        vec![Event::Warning(Warning::DeletedEntriesAcked { count: 1 })]
    );
    s.reply("*1\r\n*4\r\n$3\r\n1-1\r\n$1\r\nc\r\n:5\r\n:3\r\n");
    assert_eq!(s.sent(), "XACK s g 1-2 | ");
    s.reply(":1\r\n");
    let events = s.events();
    let [Event::Deliver(batch)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(batch.source, Source::OwnPending);
    assert_eq!(batch.messages[0].attempt, 3);
    assert_eq!(s.c.stats().deleted_acked, 1);
    assert_eq!(s.c.stats().redelivered, 1);
}

#[test]
fn missing_group_is_recreated_with_a_warning() {
    let mut s = Script::started(cfg().build().unwrap());
    s.reply("-NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option\r\n");
    assert_eq!(s.events(), vec![Event::Warning(Warning::GroupRecreated)]);
    assert_eq!(s.sent(), "XGROUP CREATE s g 0 MKSTREAM | ");
    s.reply("+OK\r\n");
    assert!(s.sent().starts_with("XREADGROUP"));
}

#[test]
fn missing_group_without_auto_create_stops_with_a_clear_error() {
    let mut s = Script::new(cfg().auto_create_group(false).build().unwrap());
    assert_eq!(s.sent(), "CLIENT SETNAME c | ");
    s.reply("+OK\r\n");
    s.sent();
    s.reply("-NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option\r\n");
    let events = s.events();
    assert_eq!(events[0], Event::Disconnect(Conn::Control));
    assert!(matches!(
        events[1],
        Event::Stopped(Some(Error::GroupMissing { .. }))
    ));
    assert_eq!(s.c.poll_timeout(), None);
}

#[test]
fn wrong_password_stops_without_retrying() {
    let opts = xgroup_core::ConnectOptions {
        password: Some("nope".into()),
        ..Default::default()
    };
    let mut s = Script::new(cfg().connect_options(opts).build().unwrap());
    assert_eq!(
        s.sent(),
        "AUTH nope | CLIENT SETNAME c | XGROUP CREATE s g 0 MKSTREAM | "
    );
    s.reply("-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    let events = s.events();
    let Event::Stopped(Some(Error::Server(e))) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(e.kind, ServerErrorKind::WrongPass);
    assert!(s.c.is_stopped());
    s.advance(Duration::from_secs(60));
    assert!(s.events().is_empty());
}

#[test]
fn connection_loss_reconnects_with_growing_backoff_and_resends_acks() {
    let mut s = Script::started(cfg().build().unwrap());
    s.reply(&read_reply(&[entry("1-1", "a", "1")]));
    let Event::Deliver(batch) = s.events().remove(0) else {
        panic!()
    };
    s.c.handle_completion(s.now, batch.id, Outcome::AckAll);
    assert!(s.sent().starts_with("XACK s g 1-1 | "));
    s.c.handle_disconnected(s.now, Conn::Control, "reset by peer");
    let mut delays = Vec::new();
    for attempt in 1..=4u32 {
        let events = s.events();
        let [Event::Warning(Warning::Reconnecting {
            attempt: a, delay, ..
        })] = &events[..]
        else {
            panic!("{events:?}")
        };
        assert_eq!(*a, attempt);
        delays.push(*delay);
        let (at, kind) = s.c.poll_timeout().unwrap();
        assert_eq!(kind, TimerKind::Reconnect);
        s.now = at;
        s.c.handle_timeout(s.now);
        assert_eq!(s.events(), vec![Event::Connect(Conn::Control)]);
        if attempt < 4 {
            s.c.handle_connect_failed(s.now, Conn::Control, "refused");
        }
    }
    // Exponential within jitter: each delay in [base/2, base], base doubling.
    for (i, d) in delays.iter().enumerate() {
        let base = Duration::from_millis(100) * (1 << i);
        assert!(*d >= base / 2 && *d <= base, "{i}: {d:?}");
    }
    s.c.handle_connected(s.now, Conn::Control);
    // The unconfirmed ack goes out again after the start-up commands.
    assert_eq!(
        s.sent(),
        "CLIENT SETNAME c | XGROUP CREATE s g 0 MKSTREAM | "
    );
    s.reply("+OK\r\n+OK\r\n");
    assert_eq!(
        s.sent(),
        "XACK s g 1-1 | XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | "
    );
}

#[test]
fn held_entries_are_refreshed_first_thing_after_a_reconnect() {
    // Claim min idle 60 s: held entries are refreshed every 30 s.
    let mut s = Script::started(cfg().build().unwrap());
    s.reply(&read_reply(&[entry("1-1", "a", "1")]));
    assert!(matches!(s.events()[..], [Event::Deliver(_)]));
    // 25 s later, before the first refresh, the connection drops.
    s.advance(Duration::from_secs(25));
    s.sent();
    s.c.handle_disconnected(s.now, Conn::Control, "reset by peer");
    s.events();
    let (at, kind) = s.c.poll_timeout().unwrap();
    assert_eq!(kind, TimerKind::Reconnect);
    s.now = at;
    s.c.handle_timeout(s.now);
    assert_eq!(s.events(), vec![Event::Connect(Conn::Control)]);
    s.c.handle_connected(s.now, Conn::Control);
    assert_eq!(
        s.sent(),
        "CLIENT SETNAME c | XGROUP CREATE s g 0 MKSTREAM | "
    );
    s.reply("+OK\r\n+OK\r\n");
    // The entry's idle time ran on at the server: it is refreshed at once,
    // not 30 s after the reconnect (55 s idle by then, 5 s short of the
    // min idle at which another consumer may claim it).
    let sent = s.sent();
    assert!(sent.starts_with("XCLAIM s g c 25"), "{sent}");
    assert!(sent.contains(" 1-1 JUSTID | "), "{sent}");
}

#[test]
fn malformed_reply_drops_the_connection() {
    let mut s = Script::started(cfg().build().unwrap());
    s.reply("?what\r\n");
    let events = s.events();
    assert_eq!(events[0], Event::Disconnect(Conn::Control));
    assert!(matches!(
        events[1],
        Event::Warning(Warning::Reconnecting {
            cause: Error::Protocol(_),
            ..
        })
    ));
}

#[test]
fn silent_server_times_out() {
    let mut s = Script::started(cfg().reply_timeout(Duration::from_secs(2)).build().unwrap());
    let (at, kind) = s.c.poll_timeout().unwrap();
    assert_eq!(kind, TimerKind::Reply);
    assert_eq!(at, s.now + Duration::from_secs(7));
    s.now = at;
    s.c.handle_timeout(s.now);
    let events = s.events();
    assert_eq!(events[0], Event::Disconnect(Conn::Control));
    assert!(matches!(
        events[1],
        Event::Warning(Warning::Reconnecting {
            cause: Error::ReplyTimeout { .. },
            ..
        })
    ));
}

#[test]
fn graceful_shutdown_waits_for_the_handler_and_flushes_acks() {
    let mut s = Script::started(cfg().build().unwrap());
    s.reply(&read_reply(&[entry("1-1", "a", "1")]));
    let Event::Deliver(batch) = s.events().remove(0) else {
        panic!()
    };
    s.c.handle_shutdown(s.now);
    assert!(s.events().is_empty());
    assert_eq!(s.c.poll_timeout().unwrap().1, TimerKind::Drain);
    s.c.handle_completion(s.now, batch.id, Outcome::AckAll);
    // No new read while stopping.
    assert_eq!(s.sent(), "XACK s g 1-1 | ");
    s.reply(":1\r\n");
    assert_eq!(
        s.events(),
        vec![Event::Disconnect(Conn::Control), Event::Stopped(None)]
    );
}

#[test]
fn drain_deadline_abandons_unfinished_work() {
    let mut s = Script::started(cfg().drain_timeout(Duration::from_secs(1)).build().unwrap());
    s.reply(&read_reply(&[entry("1-1", "a", "1")]));
    s.events();
    s.c.handle_shutdown(s.now);
    s.advance(Duration::from_secs(1));
    assert_eq!(
        s.events(),
        vec![
            Event::Warning(Warning::DrainTimedOut {
                batches: 1,
                unacked: 0
            }),
            Event::Disconnect(Conn::Control),
            Event::Stopped(None)
        ]
    );
}

#[test]
fn entries_claimed_by_another_are_given_up_and_not_retried() {
    let mut s = Script::started(cfg().build().unwrap());
    s.reply(&read_reply(&[
        entry("1-1", "a", "1"),
        entry("1-2", "b", "2"),
    ]));
    let Event::Deliver(batch) = s.events().remove(0) else {
        panic!()
    };
    // Half the 60 s min idle later, the idle refresh asks for both back with
    // min-idle = the time since they were delivered (less 1 ms).
    s.advance(Duration::from_secs(30));
    let sent = s.sent();
    assert!(
        sent.starts_with("XCLAIM s g c 29999 1-1 1-2 JUSTID | "),
        "{sent}"
    );
    // Only 1-1 is still ours: another consumer claimed 1-2 meanwhile.
    s.reply("*1\r\n$3\r\n1-1\r\n");
    assert_eq!(s.c.stats().lost_to_others, 1);
    s.c.handle_completion(
        s.now,
        batch.id,
        Outcome::Each(vec![
            (StreamId::new(1, 1), Disposition::Retry),
            (StreamId::new(1, 2), Disposition::Retry),
        ]),
    );
    // The retry (1 s backoff) claims back 1-1 alone, with min-idle = the time
    // since the refresh showed it ours: nothing another consumer took since.
    s.advance(Duration::from_secs(1));
    // (After the claim sweep that was due too.)
    assert_eq!(s.sent(), "XAUTOCLAIM s g c 60000 0-0 COUNT 10 | ");
    s.reply("*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
    let sent = s.sent();
    assert!(sent.contains("XCLAIM s g c 999 1-1 | "), "{sent}");
    assert!(!sent.contains("1-2"), "{sent}");
}

#[test]
fn drain_timeout_counts_unconfirmed_acks_with_delete_on_ack() {
    let cfg = cfg()
        .delete_on_ack(true)
        .drain_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut s = Script::new(cfg);
    assert_eq!(
        s.sent(),
        "CLIENT SETNAME c | INFO server | XGROUP CREATE s g 0 MKSTREAM | "
    );
    // Redis 7.0: no XACKDEL, so acks go out as MULTI XACK XDEL EXEC.
    s.reply("+OK\r\n$20\r\nredis_version:7.0.15\r\n+OK\r\n");
    assert_eq!(s.sent(), "XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | ");
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    assert_eq!(s.sent(), "XAUTOCLAIM s g c 60000 0-0 COUNT 10 | ");
    s.reply("*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
    s.sent();
    s.reply(&read_reply(&[
        entry("1-1", "a", "1"),
        entry("1-2", "b", "2"),
    ]));
    let Event::Deliver(batch) = s.events().remove(0) else {
        panic!()
    };
    s.c.handle_shutdown(s.now);
    s.c.handle_completion(s.now, batch.id, Outcome::AckAll);
    assert_eq!(
        s.sent(),
        "MULTI | XACK s g 1-1 1-2 | XDEL s 1-1 1-2 | EXEC | "
    );
    // The server never answers: both acks are unconfirmed at the deadline.
    s.advance(Duration::from_secs(1));
    assert_eq!(
        s.events(),
        vec![
            Event::Warning(Warning::DrainTimedOut {
                batches: 0,
                unacked: 2
            }),
            Event::Disconnect(Conn::Control),
            Event::Stopped(None)
        ]
    );
}

#[test]
fn while_disconnected_only_the_reconnect_timer_is_armed() {
    let cfg = cfg()
        .claim_interval(Duration::from_secs(1))
        .heartbeat(Duration::from_secs(1), 2)
        .reconnect_backoff(Duration::from_secs(20), Duration::from_secs(20))
        .build()
        .unwrap();
    let mut s = Script::new(cfg);
    assert_eq!(
        s.sent(),
        "CLIENT SETNAME c | XGROUP CREATE s g 0 MKSTREAM | "
    );
    s.reply("+OK\r\n+OK\r\n");
    // The first heartbeat goes out at once, the next is a second away.
    let sent = s.sent();
    assert!(
        sent.starts_with("EVAL HB_SCRIPT 1 {s}:xgroup:hb:g:c "),
        "{sent}"
    );
    s.c.handle_disconnected(s.now, Conn::Control, "reset by peer");
    s.events();
    // Down: none of the connection's timers wakes the adapter before the
    // reconnect (20 s away, the others 1 s or less).
    let (at, kind) = s.c.poll_timeout().unwrap();
    assert_eq!(kind, TimerKind::Reconnect);
    assert!(at >= s.now + Duration::from_secs(10));
}

#[test]
fn an_idle_consumer_stops_without_waiting_out_its_blocked_read() {
    let mut s = Script::started(cfg().build().unwrap());
    // `started` left an XREADGROUP ... BLOCK 5000 out; nothing else is held.
    s.c.handle_shutdown(s.now);
    assert_eq!(
        s.events(),
        vec![Event::Disconnect(Conn::Control), Event::Stopped(None)]
    );
}

#[test]
fn held_entries_are_refreshed_faster_than_failover_would_claim_them() {
    // A consumer whose heartbeat key lapsed (it stalled, or the server
    // refused its SET) is failed over with its heartbeat timeout (1 s x 3)
    // as min-idle, much shorter than the 60 s claim min idle: its held
    // entries are refreshed at half of the shorter one.
    let cfg = cfg().heartbeat(Duration::from_secs(1), 3).build().unwrap();
    let s = Script::new(cfg);
    assert_eq!(
        s.c.poll_timeout(),
        Some((s.now + Duration::from_millis(1500), TimerKind::Refresh))
    );
}

#[test]
fn the_consumers_debug_output_never_shows_the_password() {
    let (_, opts) = xgroup_core::parse_url("redis://user:pw-SECRET-77@127.0.0.1:6379").unwrap();
    let mut c = Consumer::new(cfg().connect_options(opts).build().unwrap());
    assert_eq!(c.poll_event(), Some(Event::Connect(Conn::Control)));
    // The handshake (AUTH with the password) is written, not yet taken.
    c.handle_connected(Instant::now(), Conn::Control);
    let shown = format!("{c:?}");
    assert!(!shown.contains("pw-SECRET-77"), "{shown}");
    let (_, bytes) = c.poll_transmit().unwrap();
    assert!(bytes.windows(12).any(|w| w == b"pw-SECRET-77"));
}

/// Start-up with a read connection: set-up, replay and sweep on the control
/// connection, then the blocking read of new entries on the read one.
fn started_two(cfg: ConsumerConfig) -> Script {
    let mut s = Script::new(cfg);
    assert_eq!(
        s.sent(),
        "CLIENT SETNAME c | XGROUP CREATE s g 0 MKSTREAM | read: CLIENT SETNAME c | "
    );
    s.reply("+OK\r\n+OK\r\n");
    assert_eq!(s.sent(), "XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | ");
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    assert_eq!(s.sent(), "XAUTOCLAIM s g c 60000 0-0 COUNT 10 | ");
    s.reply("*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
    // The read connection is still in its handshake: no read yet.
    assert_eq!(s.sent(), "");
    s.reply_read("+OK\r\n");
    assert_eq!(
        s.sent(),
        "read: XREADGROUP GROUP g c COUNT 10 BLOCK 5000 STREAMS s > | "
    );
    assert!(s.events().is_empty());
    s
}

fn pending_row(id: &str, owner: &str, idle: u64, count: u64) -> String {
    format!(
        "*4\r\n${}\r\n{id}\r\n${}\r\n{owner}\r\n:{idle}\r\n:{count}\r\n",
        id.len(),
        owner.len()
    )
}

fn rows(rows: &[String]) -> String {
    format!("*{}\r\n{}", rows.len(), rows.concat())
}

/// Heartbeats on: SETNAME and group create answered; the first heartbeat
/// (no previous key), the pending summary (nothing pending) and the replay
/// (empty) answered.
fn started_with_heartbeats(cfg: ConsumerConfig) -> Script {
    let ttl = cfg.heartbeat().map(|h| h.timeout().as_millis()).unwrap();
    let mut s = Script::new(cfg);
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    // The name is claimed first: nothing is read before the answer.
    assert_eq!(
        s.sent(),
        format!(
            "EVAL HB_SCRIPT 1 {{s}}:xgroup:hb:g:c 63cbe1e459320dd7 63cbe1e459320dd7:1 {ttl} | "
        )
    );
    s.reply("$-1\r\n");
    assert_eq!(s.sent(), "XREADGROUP GROUP g c COUNT 3 STREAMS s 0-0 | ");
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    s
}

#[test]
fn acks_go_out_at_once_while_a_read_blocks_on_its_own_connection() {
    let mut s = started_two(cfg_two().max_in_flight_batches(2).build().unwrap());
    s.reply_read(&read_reply(&[entry("1-1", "a", "1")]));
    let Event::Deliver(batch) = s.events().remove(0) else {
        panic!()
    };
    // A free slot: the next blocking read goes out while the handler works.
    assert_eq!(
        s.sent(),
        "read: XREADGROUP GROUP g c COUNT 10 BLOCK 5000 STREAMS s > | "
    );
    s.c.handle_completion(s.now, batch.id, Outcome::AckAll);
    // On the control connection, not behind the blocked read.
    assert_eq!(s.sent(), "XACK s g 1-1 | ");
    s.reply(":1\r\n");
    assert_eq!(s.c.stats().acked, 1);
    assert_eq!(s.sent(), "");
    assert!(s.events().is_empty());
}

#[test]
fn with_a_read_connection_heartbeats_do_not_shorten_the_blocking_read() {
    let mut s = Script::new(
        cfg_two()
            .heartbeat(Duration::from_millis(1000), 3)
            .build()
            .unwrap(),
    );
    let setup = s.sent();
    assert!(setup.starts_with("CLIENT SETNAME c | XGROUP CREATE s g 0 MKSTREAM | "));
    s.reply("+OK\r\n+OK\r\n");
    s.reply_read("+OK\r\n");
    let sent = s.sent();
    assert!(
        sent.starts_with("EVAL HB_SCRIPT 1 {s}:xgroup:hb:g:c"),
        "{sent}"
    );
    // The name was free; then the replay and the sweep (nothing idle).
    s.reply("$-1\r\n");
    assert_eq!(s.sent(), "XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | ");
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    assert_eq!(s.sent(), "XPENDING s g IDLE 60000 0-0 + 10 | ");
    s.reply("*0\r\n");
    // On one connection BLOCK would end by the next heartbeat (1 s).
    assert_eq!(
        s.sent(),
        "read: XREADGROUP GROUP g c COUNT 10 BLOCK 5000 STREAMS s > | "
    );
    s.advance(Duration::from_millis(1000));
    let sent = s.sent();
    assert!(
        sent.starts_with("EVAL HB_SCRIPT 1 {s}:xgroup:hb:g:c"),
        "{sent}"
    );
}

#[test]
fn a_busy_consumer_stops_once_its_acks_are_confirmed_not_its_read() {
    let mut s = started_two(cfg_two().max_in_flight_batches(2).build().unwrap());
    s.reply_read(&read_reply(&[entry("1-1", "a", "1")]));
    let Event::Deliver(batch) = s.events().remove(0) else {
        panic!()
    };
    assert!(s.sent().starts_with("read: XREADGROUP"));
    s.c.handle_shutdown(s.now);
    assert!(s.events().is_empty());
    s.c.handle_completion(s.now, batch.id, Outcome::AckAll);
    assert_eq!(s.sent(), "XACK s g 1-1 | ");
    s.reply(":1\r\n");
    assert_eq!(
        s.events(),
        vec![
            Event::Disconnect(Conn::Control),
            Event::Disconnect(Conn::Read),
            Event::Stopped(None)
        ]
    );
}

#[test]
fn losing_the_read_connection_closes_and_reopens_both() {
    let mut s = started_two(cfg_two().max_in_flight_batches(2).build().unwrap());
    s.reply_read(&read_reply(&[entry("1-1", "a", "1")]));
    let Event::Deliver(batch) = s.events().remove(0) else {
        panic!()
    };
    s.sent();
    s.c.handle_disconnected(s.now, Conn::Read, "reset by peer");
    let events = s.events();
    assert_eq!(events[0], Event::Disconnect(Conn::Control));
    assert!(matches!(
        events[1],
        Event::Warning(Warning::Reconnecting { .. })
    ));
    let (at, kind) = s.c.poll_timeout().unwrap();
    assert_eq!(kind, TimerKind::Reconnect);
    s.now = at;
    s.c.handle_timeout(s.now);
    assert_eq!(
        s.events(),
        vec![Event::Connect(Conn::Control), Event::Connect(Conn::Read)]
    );
    s.c.handle_connected(s.now, Conn::Control);
    s.c.handle_connected(s.now, Conn::Read);
    // The batch still with its handler; its ack goes out once it is done.
    s.c.handle_completion(s.now, batch.id, Outcome::AckAll);
    let sent = s.sent();
    assert!(
        sent.starts_with("CLIENT SETNAME c | XGROUP CREATE s g 0 MKSTREAM | "),
        "{sent}"
    );
    assert!(sent.contains("read: CLIENT SETNAME c"), "{sent}");
    s.reply("+OK\r\n+OK\r\n");
    assert!(s.sent().starts_with("XACK s g 1-1 | "));
}

#[test]
fn with_heartbeats_the_sweep_claims_only_entries_of_dead_owners() {
    let cfg = cfg()
        .heartbeat(Duration::from_secs(1), 3)
        .count(3)
        .claim_min_idle(Duration::from_millis(500))
        .build()
        .unwrap();
    let mut s = started_with_heartbeats(cfg);
    // A page of entries idle past the claim min idle, with their owners.
    assert_eq!(s.sent(), "XPENDING s g IDLE 500 0-0 + 3 | ");
    s.reply(&rows(&[
        pending_row("1-1", "alive", 900, 1),
        pending_row("1-2", "dead", 800, 2),
        pending_row("1-3", "c", 700, 1),
    ]));
    // Each other owner's heartbeat key; ours is not checked.
    assert_eq!(
        s.sent(),
        "GET {s}:xgroup:hb:g:alive | GET {s}:xgroup:hb:g:dead | "
    );
    s.reply("$5\r\ntoken\r\n");
    assert_eq!(s.sent(), "");
    s.reply("$-1\r\n");
    // The dead owner's entry and ours (held by nobody here), with the min
    // idle again: an entry touched since the page is not taken.
    assert_eq!(s.sent(), "XCLAIM s g c 500 1-2 1-3 | ");
    s.reply(&format!(
        "*2\r\n{}{}",
        entry("1-2", "a", "1"),
        entry("1-3", "b", "2")
    ));
    assert_eq!(s.sent(), "XPENDING s g 1-2 1-3 18 c | ");
    s.reply(&rows(&[
        pending_row("1-2", "c", 0, 3),
        pending_row("1-3", "c", 0, 2),
    ]));
    let events = s.events();
    let [Event::Deliver(batch)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(batch.source, Source::Claimed);
    let attempts: Vec<u64> = batch.messages.iter().map(|m| m.attempt).collect();
    assert_eq!(attempts, [3, 2]);
    s.c.handle_completion(s.now, batch.id, Outcome::AckAll);
    // The page was full: the sweep goes on right after its last row.
    assert_eq!(
        s.sent(),
        "XACK s g 1-2 1-3 | XPENDING s g IDLE 500 1-4 + 3 | "
    );
    s.reply(":2\r\n");
    // Only a live owner's entry: nothing to claim, and a short page ends
    // the sweep.
    s.reply(&rows(&[pending_row("1-5", "alive", 900, 1)]));
    assert_eq!(s.sent(), "GET {s}:xgroup:hb:g:alive | ");
    s.reply("$5\r\ntoken\r\n");
    let sent = s.sent();
    assert!(
        sent.starts_with("XREADGROUP GROUP g c COUNT 3 BLOCK "),
        "{sent}"
    );
    assert!(s.events().is_empty());
}

#[test]
fn a_hung_handlers_entries_are_released_to_a_name_that_never_beats() {
    let cfg = cfg()
        .heartbeat(Duration::from_secs(10), 3)
        .count(3)
        .claim_min_idle(Duration::from_millis(1000))
        .no_claiming()
        .handler_timeout(Duration::from_millis(1200))
        .build()
        .unwrap();
    let mut s = started_with_heartbeats(cfg);
    let sent = s.sent();
    assert!(
        sent.starts_with("XREADGROUP GROUP g c COUNT 3 BLOCK "),
        "{sent}"
    );
    s.reply(&read_reply(&[
        entry("1-1", "a", "1"),
        entry("1-2", "b", "2"),
    ]));
    let events = s.events();
    let [Event::Deliver(batch)] = &events[..] else {
        panic!("{events:?}")
    };
    // Refreshed every 500 ms (half the claim min idle) while it works.
    s.advance(Duration::from_millis(500));
    assert_eq!(s.sent(), "XCLAIM s g c 499 1-1 1-2 JUSTID | ");
    s.reply("*2\r\n$3\r\n1-1\r\n$3\r\n1-2\r\n");
    s.advance(Duration::from_millis(500));
    assert_eq!(s.sent(), "XCLAIM s g c 499 1-1 1-2 JUSTID | ");
    s.reply("*2\r\n$3\r\n1-1\r\n$3\r\n1-2\r\n");
    // Past the handler timeout: reported, and handed over, since others'
    // sweeps skip a live consumer's entries.
    s.advance(Duration::from_millis(500));
    let events = s.events();
    assert!(
        matches!(&events[..], [Event::Warning(Warning::HandlerHung { .. })]),
        "{events:?}"
    );
    assert_eq!(
        s.sent(),
        "XCLAIM s g c~xgroup-released 499 1-1 1-2 JUSTID | "
    );
    s.reply("*2\r\n$3\r\n1-1\r\n$3\r\n1-2\r\n");
    // Given up: neither refreshed nor released again.
    s.advance(Duration::from_millis(500));
    assert_eq!(s.sent(), "");
    // The handler still finishes: its acks go out, its retries do not.
    let outcome = Outcome::Each(vec![
        (StreamId::new(1, 1), Disposition::Ack),
        (StreamId::new(1, 2), Disposition::Retry),
    ]);
    s.c.handle_completion(s.now, batch.id, outcome);
    let sent = s.sent();
    assert!(sent.starts_with("XACK s g 1-1 | "), "{sent}");
}

fn bulk(v: &str) -> String {
    format!("${}\r\n{v}\r\n", v.len())
}

/// Heartbeats every second (3 s expiry), claiming off: only the name's
/// commands and reads go out.
fn fenced() -> ConsumerConfig {
    cfg()
        .heartbeat(Duration::from_secs(1), 3)
        .no_claiming()
        .build()
        .unwrap()
}

const CLAIM: &str =
    "EVAL HB_SCRIPT 1 {s}:xgroup:hb:g:c 63cbe1e459320dd7 63cbe1e459320dd7:1 3000 | ";

#[test]
fn a_newcomer_watches_a_held_name_and_stops_when_its_holder_beats() {
    let mut s = Script::new(fenced());
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    assert_eq!(s.sent(), CLAIM);
    // Another process's token: not overwritten, and nothing is read,
    // replayed or claimed.
    s.reply(&bulk("0123456789abcdef:41"));
    assert_eq!(s.sent(), "");
    // The key is looked at four times a heartbeat interval.
    s.advance(Duration::from_millis(250));
    assert_eq!(s.sent(), "GET {s}:xgroup:hb:g:c | ");
    s.reply(&bulk("0123456789abcdef:41"));
    assert_eq!(s.sent(), "");
    assert!(s.events().is_empty());
    s.advance(Duration::from_millis(250));
    assert_eq!(s.sent(), "GET {s}:xgroup:hb:g:c | ");
    // Its holder beat: alive. The newcomer stops, the holder goes on.
    s.reply(&bulk("0123456789abcdef:42"));
    let events = s.events();
    assert!(
        matches!(
            &events[..],
            [Event::Disconnect(Conn::Control), Event::Stopped(Some(Error::DuplicateConsumer { consumer }))]
                if &consumer[..] == b"c"
        ),
        "{events:?}"
    );
    assert_eq!(s.sent(), "");
}

#[test]
fn a_restart_after_a_crash_takes_the_name_over_and_replays_at_once() {
    let mut s = Script::new(fenced());
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    assert_eq!(s.sent(), CLAIM);
    s.reply(&bulk("0123456789abcdef:41"));
    // Unchanged for an interval and a half: its holder is dead.
    for _ in 0..5 {
        s.advance(Duration::from_millis(250));
        assert_eq!(s.sent(), "GET {s}:xgroup:hb:g:c | ");
        s.reply(&bulk("0123456789abcdef:41"));
    }
    s.advance(Duration::from_millis(250));
    // Taken over only if it still holds the value seen.
    assert_eq!(
        s.sent(),
        "EVAL HB_SCRIPT 1 {s}:xgroup:hb:g:c 63cbe1e459320dd7 63cbe1e459320dd7:2 3000 \
         0123456789abcdef:41 | "
    );
    s.reply(&bulk("0123456789abcdef:41"));
    // Ours: the replay of the name's own pending entries starts at once.
    assert_eq!(s.sent(), "XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | ");
    assert!(s.events().is_empty());
    // The next beat is ours.
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    s.sent();
    s.advance(Duration::from_secs(1));
    let sent = s.sent();
    assert!(
        sent.starts_with(
            "EVAL HB_SCRIPT 1 {s}:xgroup:hb:g:c 63cbe1e459320dd7 63cbe1e459320dd7:3 3000 | "
        ),
        "{sent}"
    );
}

#[test]
fn a_takeover_that_finds_the_value_changed_stops() {
    let mut s = Script::new(fenced());
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    s.sent();
    s.reply(&bulk("0123456789abcdef:41"));
    for _ in 0..5 {
        s.advance(Duration::from_millis(250));
        s.sent();
        s.reply(&bulk("0123456789abcdef:41"));
    }
    s.advance(Duration::from_millis(250));
    assert!(s.sent().contains(" 0123456789abcdef:41 | "));
    // It beat just before the compare-and-set: alive after all.
    s.reply(&bulk("0123456789abcdef:42"));
    let events = s.events();
    assert!(
        matches!(
            &events[..],
            [
                Event::Disconnect(Conn::Control),
                Event::Stopped(Some(Error::DuplicateConsumer { .. }))
            ]
        ),
        "{events:?}"
    );
}

#[test]
fn a_watched_key_that_vanishes_is_claimed_at_once() {
    let mut s = Script::new(fenced());
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    s.sent();
    s.reply(&bulk("0123456789abcdef:41"));
    s.advance(Duration::from_millis(250));
    assert_eq!(s.sent(), "GET {s}:xgroup:hb:g:c | ");
    s.reply("$-1\r\n");
    assert_eq!(
        s.sent(),
        "EVAL HB_SCRIPT 1 {s}:xgroup:hb:g:c 63cbe1e459320dd7 63cbe1e459320dd7:2 3000 | "
    );
    s.reply("$-1\r\n");
    assert_eq!(s.sent(), "XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | ");
}

#[test]
fn a_holder_whose_name_was_taken_over_stops() {
    let mut s = Script::new(fenced());
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    s.sent();
    s.reply("$-1\r\n");
    s.sent();
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    s.sent();
    s.advance(Duration::from_secs(1));
    let sent = s.sent();
    assert!(sent.starts_with("EVAL HB_SCRIPT "), "{sent}");
    // The blocked read answers first, then the beat finds another token.
    s.reply("*-1\r\n");
    s.reply(&bulk("0123456789abcdef:1"));
    let events = s.events();
    assert!(
        matches!(
            &events[..],
            [
                Event::Disconnect(Conn::Control),
                Event::Stopped(Some(Error::DuplicateConsumer { .. }))
            ]
        ),
        "{events:?}"
    );
}

#[test]
fn a_graceful_stop_frees_the_name_for_a_restart() {
    let mut s = Script::new(fenced());
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    s.sent();
    s.reply("$-1\r\n");
    assert_eq!(s.sent(), "XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | ");
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    s.sent();
    s.reply(&read_reply(&[entry("1-1", "a", "1")]));
    let events = s.events();
    let [Event::Deliver(batch)] = &events[..] else {
        panic!("{events:?}")
    };
    s.c.handle_shutdown(s.now);
    assert_eq!(s.sent(), "");
    s.c.handle_completion(s.now, batch.id, Outcome::AckAll);
    assert_eq!(s.sent(), "XACK s g 1-1 | ");
    s.reply(":1\r\n");
    // Drained: the key goes while it holds our token; then the stop.
    assert_eq!(
        s.sent(),
        "EVAL HB_RELEASE 1 {s}:xgroup:hb:g:c 63cbe1e459320dd7 | "
    );
    assert!(s.events().is_empty());
    s.reply(":1\r\n");
    assert_eq!(
        s.events(),
        vec![Event::Disconnect(Conn::Control), Event::Stopped(None)]
    );
}

#[test]
fn an_idle_fenced_consumer_stops_without_waiting_out_its_blocked_read() {
    let mut s = Script::new(fenced());
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    s.sent();
    s.reply("$-1\r\n");
    s.sent();
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    let sent = s.sent();
    assert!(
        sent.starts_with("XREADGROUP GROUP g c COUNT 10 BLOCK "),
        "{sent}"
    );
    // The release would wait behind the blocked read: the key is left to
    // lapse, and the stop is immediate.
    s.c.handle_shutdown(s.now);
    assert_eq!(
        s.events(),
        vec![Event::Disconnect(Conn::Control), Event::Stopped(None)]
    );
}

#[test]
fn with_a_read_connection_an_idle_stop_frees_the_name_at_once() {
    let mut s = Script::new(
        cfg_two()
            .heartbeat(Duration::from_millis(1000), 3)
            .build()
            .unwrap(),
    );
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    s.reply_read("+OK\r\n");
    s.sent();
    s.reply("$-1\r\n");
    s.sent();
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    s.sent();
    s.reply("*0\r\n");
    assert!(s.sent().starts_with("read: XREADGROUP"));
    // The blocked read is on the read connection: the release goes out on
    // the control one at once, and the stop follows its answer.
    s.c.handle_shutdown(s.now);
    let sent = s.sent();
    assert!(
        sent.starts_with("EVAL HB_RELEASE 1 {s}:xgroup:hb:g:c"),
        "{sent}"
    );
    assert!(s.events().is_empty());
    s.reply(":1\r\n");
    assert_eq!(
        s.events(),
        vec![
            Event::Disconnect(Conn::Control),
            Event::Disconnect(Conn::Read),
            Event::Stopped(None)
        ]
    );
}

#[test]
fn the_groups_counts_are_sampled_and_a_failed_sample_is_only_a_warning() {
    let mut s = Script::new(
        cfg()
            .sample_group_stats(Duration::from_secs(2))
            .build()
            .unwrap(),
    );
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    assert_eq!(
        s.sent(),
        "XINFO GROUPS s | XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | "
    );
    assert_eq!(s.c.group_counts(), None);
    // Group g: 4 pending, lag unknown (RESP2 nil); another group is ignored.
    let group = |name: &str, pending: u64, lag: &str| {
        format!(
            "*6\r\n$4\r\nname\r\n${}\r\n{name}\r\n$7\r\npending\r\n:{pending}\r\n$3\r\nlag\r\n{lag}",
            name.len()
        )
    };
    s.reply(&format!(
        "*2\r\n{}{}",
        group("other", 9, ":1\r\n"),
        group("g", 4, "$-1\r\n")
    ));
    assert_eq!(
        s.c.group_counts(),
        Some(xgroup_core::GroupCounts {
            pending: 4,
            lag: None
        })
    );
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    s.reply("*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
    s.sent();
    // The next sample after the interval: the server does not know the
    // command (an older or partial server): a warning, and it goes on.
    s.advance(Duration::from_secs(2));
    let sent = s.sent();
    assert!(sent.starts_with("XINFO GROUPS s | "), "{sent}");
    // (One connection: the blocked read in front of it answers first.)
    s.reply("*-1\r\n-ERR unknown command 'XINFO'\r\n");
    let events = s.events();
    assert!(
        matches!(
            &events[..],
            [Event::Warning(Warning::SampleFailed {
                command: "XINFO GROUPS",
                ..
            })]
        ),
        "{events:?}"
    );
    assert!(!s.c.is_stopped() && s.c.is_connected());
    assert_eq!(
        s.c.group_counts(),
        Some(xgroup_core::GroupCounts {
            pending: 4,
            lag: None
        }),
        "the last good sample is kept"
    );
}

/// As [`cfg`], with read-ahead.
fn cfg_ahead() -> xgroup_core::ConsumerConfigBuilder {
    cfg().read_ahead(30, 1 << 20)
}

#[test]
fn read_ahead_reads_past_count_and_hands_out_batches_of_count() {
    let mut s = Script::new(cfg_ahead().build().unwrap());
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    s.sent();
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    s.sent();
    s.reply("*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
    // The first read asks for the whole budget.
    assert_eq!(
        s.sent(),
        "XREADGROUP GROUP g c COUNT 30 BLOCK 5000 STREAMS s > | "
    );
    let entries: Vec<String> = (1..=25)
        .map(|i| entry(&format!("1-{i}"), "k", "v"))
        .collect();
    s.reply(&read_reply(&entries));
    let events = s.events();
    let [Event::Deliver(first)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(first.messages.len(), 10, "a batch is at most count");
    assert_eq!(s.c.held_entries(), 25);
    // The handler works; the budget has room for 15 more.
    assert_eq!(
        s.sent(),
        "XREADGROUP GROUP g c COUNT 15 BLOCK 5000 STREAMS s > | "
    );
    s.c.handle_completion(s.now, first.id, Outcome::AckAll);
    let events = s.events();
    let [Event::Deliver(second)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(second.messages[0].id, StreamId::new(1, 11));
    assert_eq!(second.messages.len(), 10);
    // (One connection: the ack goes out behind the blocked read.)
    assert_eq!(
        s.sent(),
        "XACK s g 1-1 1-2 1-3 1-4 1-5 1-6 1-7 1-8 1-9 1-10 | "
    );
    // A stop leaves what is read ahead pending, for the next start.
    s.c.handle_shutdown(s.now);
    assert_eq!(s.c.held_entries(), 10 + 10, "the acks and the batch");
}

#[test]
fn read_ahead_is_refilled_once_half_its_budget_is_free_in_one_read() {
    // Budget 30, count 10, reads on a connection of their own.
    let cfg = cfg_ahead().separate_read_connection(true).build().unwrap();
    let mut s = Script::new(cfg);
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    s.sent();
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    s.sent();
    s.reply("*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
    s.reply_read("+OK\r\n");
    assert_eq!(
        s.sent(),
        "read: XREADGROUP GROUP g c COUNT 30 BLOCK 5000 STREAMS s > | "
    );
    let ids = |from: u64, to: u64| -> Vec<String> {
        (from..=to)
            .map(|i| entry(&format!("1-{i}"), "k", "v"))
            .collect()
    };
    let acks = |from: u64, to: u64| -> String {
        let ids: Vec<String> = (from..=to).map(|i| format!("1-{i}")).collect();
        format!("XACK s g {} | ", ids.join(" "))
    };
    let batch = |s: &mut Script| -> BatchId {
        let events = s.events();
        let [Event::Deliver(batch)] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(batch.messages.len(), 10);
        batch.id
    };
    // A full read (a backlog): one batch goes to the handler, 20 stay read
    // ahead. The 10 free are less than half the budget: no read yet.
    s.reply_read(&read_reply(&ids(1, 30)));
    let first = batch(&mut s);
    assert_eq!(s.sent(), "");
    // The next batch leaves 20 free: one read asks for all of them.
    s.c.handle_completion(s.now, first, Outcome::AckAll);
    let second = batch(&mut s);
    assert_eq!(
        s.sent(),
        acks(1, 10) + "read: XREADGROUP GROUP g c COUNT 20 BLOCK 5000 STREAMS s > | "
    );
    s.reply_read(&read_reply(&ids(31, 50)));
    assert!(s.events().is_empty(), "one batch in flight");
    assert_eq!(s.sent(), "", "the budget is full");
    s.c.handle_completion(s.now, second, Outcome::AckAll);
    let third = batch(&mut s);
    assert_eq!(s.sent(), acks(11, 20), "10 free: not yet");
    s.c.handle_completion(s.now, third, Outcome::AckAll);
    batch(&mut s);
    assert_eq!(
        s.sent(),
        acks(21, 30) + "read: XREADGROUP GROUP g c COUNT 20 BLOCK 5000 STREAMS s > | "
    );
}

fn sentinel_target() -> xgroup_core::SentinelTarget {
    let (target, _) =
        xgroup_core::parse_target("redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/m").unwrap();
    match target {
        xgroup_core::Target::Sentinel(s) => s,
        other => panic!("{other:?}"),
    }
}

fn switch_master(to_port: u16) -> String {
    let body = format!("m 127.0.0.1 6379 127.0.0.1 {to_port}");
    format!(
        "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n${}\r\n{body}\r\n",
        body.len()
    )
}

#[test]
fn sentinel_names_the_master_checked_with_role_and_a_switch_moves_the_connections_at_once() {
    let now = Instant::now();
    let mut c = Consumer::new(cfg().sentinel(sentinel_target()).build().unwrap());
    // Only the sentinel first: the data connection waits for the master.
    assert_eq!(c.poll_event(), Some(Event::Connect(Conn::Discovery)));
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.connect_address(Conn::Discovery).unwrap().port, 26379);
    assert_eq!(c.connect_address(Conn::Control), None);
    c.handle_connected(now, Conn::Discovery);
    let mut s = Script { c, now };
    assert_eq!(
        s.sent(),
        "discovery: SENTINEL GET-MASTER-ADDR-BY-NAME m | discovery: SUBSCRIBE +switch-master | "
    );
    s.c.handle_input(
        now,
        Conn::Discovery,
        b"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n",
    );
    assert_eq!(s.events(), [Event::Connect(Conn::Control)]);
    assert_eq!(s.c.connect_address(Conn::Control).unwrap().port, 6379);
    s.c.handle_connected(now, Conn::Control);
    assert_eq!(
        s.sent(),
        "CLIENT SETNAME c | ROLE | XGROUP CREATE s g 0 MKSTREAM | "
    );
    s.reply("+OK\r\n*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n+OK\r\n");
    assert_eq!(s.sent(), "XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | ");
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    assert_eq!(s.sent(), "XAUTOCLAIM s g c 60000 0-0 COUNT 10 | ");
    s.reply("*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
    assert_eq!(
        s.sent(),
        "XREADGROUP GROUP g c COUNT 10 BLOCK 5000 STREAMS s > | "
    );
    // A failover: the blocked read on the old master is cut at once and
    // the connection opened at the new one, no backoff.
    s.c.handle_input(now, Conn::Discovery, switch_master(6380).as_bytes());
    let events = s.events();
    assert_eq!(
        events[1..],
        [
            Event::Disconnect(Conn::Control),
            Event::Connect(Conn::Control)
        ]
    );
    assert!(
        matches!(&events[0], Event::Warning(Warning::MasterMoved { from, to }) if from.port == 6379 && to.port == 6380),
        "{events:?}"
    );
    assert_eq!(s.c.connect_address(Conn::Control).unwrap().port, 6380);
    // The same master again changes nothing.
    s.c.handle_input(now, Conn::Discovery, switch_master(6380).as_bytes());
    assert!(s.events().is_empty());
}

#[test]
fn a_node_that_is_no_longer_the_master_sends_the_question_back_to_the_sentinel() {
    let now = Instant::now();
    let mut c = Consumer::new(cfg().sentinel(sentinel_target()).build().unwrap());
    assert_eq!(c.poll_event(), Some(Event::Connect(Conn::Discovery)));
    c.handle_connected(now, Conn::Discovery);
    let mut s = Script { c, now };
    s.sent();
    s.c.handle_input(
        now,
        Conn::Discovery,
        b"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n",
    );
    assert_eq!(s.events(), [Event::Connect(Conn::Control)]);
    s.c.handle_connected(now, Conn::Control);
    s.sent();
    // ROLE says replica: the connection goes, and the sentinel is asked
    // again on a new connection.
    s.reply("+OK\r\n*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6380\r\n$9\r\nconnected\r\n:0\r\n");
    let events = s.events();
    assert!(
        events.contains(&Event::Disconnect(Conn::Control)),
        "{events:?}"
    );
    assert!(
        events.contains(&Event::Disconnect(Conn::Discovery)),
        "{events:?}"
    );
    assert_eq!(
        events.last(),
        Some(&Event::Connect(Conn::Discovery)),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e, Event::Warning(Warning::Reconnecting { cause: Error::Server(e), .. }) if e.kind == ServerErrorKind::ReadOnly)),
        "{events:?}"
    );
    s.c.handle_connected(now, Conn::Discovery);
    s.sent();
    // It names a new master: connected at once, the backoff not waited.
    s.c.handle_input(
        now,
        Conn::Discovery,
        b"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n",
    );
    let events = s.events();
    assert_eq!(
        events.last(),
        Some(&Event::Connect(Conn::Control)),
        "{events:?}"
    );
    assert_eq!(s.c.connect_address(Conn::Control).unwrap().port, 6380);
}

#[test]
fn sentinels_that_all_fail_are_asked_again_after_a_backoff() {
    let now = Instant::now();
    let cfg = cfg()
        .sentinel(sentinel_target())
        .reconnect_backoff(Duration::from_millis(100), Duration::from_secs(1));
    let mut c = Consumer::new(cfg.build().unwrap());
    assert_eq!(c.poll_event(), Some(Event::Connect(Conn::Discovery)));
    let mut s = Script { c, now };
    s.c.handle_connect_failed(now, Conn::Discovery, "refused");
    let events = s.events();
    assert!(
        matches!(&events[0], Event::Warning(Warning::SentinelFailed { sentinel, retry_in: None, .. }) if sentinel.port == 26379),
        "{events:?}"
    );
    // The second sentinel at once.
    assert_eq!(events[1..], [Event::Connect(Conn::Discovery)]);
    assert_eq!(s.c.connect_address(Conn::Discovery).unwrap().port, 26380);
    s.c.handle_connected(now, Conn::Discovery);
    s.sent();
    // It does not know the master: the round failed, the next waits.
    s.c.handle_input(now, Conn::Discovery, b"*-1\r\n");
    let events = s.events();
    assert_eq!(events[0], Event::Disconnect(Conn::Discovery));
    assert!(
        matches!(&events[1], Event::Warning(Warning::SentinelFailed { reason, retry_in: Some(d), .. }) if reason.contains("no master named") && *d <= Duration::from_millis(100)),
        "{events:?}"
    );
    assert_eq!(events.len(), 2);
    let (at, kind) = s.c.poll_timeout().unwrap();
    assert_eq!(kind, TimerKind::Discovery);
    s.now = at;
    s.c.handle_timeout(at);
    assert_eq!(s.events(), [Event::Connect(Conn::Discovery)]);
    assert_eq!(s.c.connect_address(Conn::Discovery).unwrap().port, 26379);
    // A stop closes the sentinel link too.
    s.c.handle_connected(at, Conn::Discovery);
    s.c.handle_shutdown(at);
    let events = s.events();
    assert!(
        events.contains(&Event::Disconnect(Conn::Discovery)),
        "{events:?}"
    );
    assert!(
        matches!(events.last(), Some(Event::Stopped(None))),
        "{events:?}"
    );
}

fn cluster_target() -> xgroup_core::ClusterTarget {
    let (target, _) =
        xgroup_core::parse_target("redis+cluster://127.0.0.1:7000,127.0.0.1:7001").unwrap();
    match target {
        xgroup_core::Target::Cluster(c) => c,
        other => panic!("{other:?}"),
    }
}

/// A `CLUSTER SLOTS` reply (RESP2): each range served by the primary on
/// that port.
fn slots_reply(ranges: &[(u16, u16, u16)]) -> String {
    let mut out = format!("*{}\r\n", ranges.len());
    for (i, (from, to, port)) in ranges.iter().enumerate() {
        let id = format!("{i:040}");
        out.push_str(&format!(
            "*3\r\n:{from}\r\n:{to}\r\n*3\r\n$9\r\n127.0.0.1\r\n:{port}\r\n$40\r\n{id}\r\n"
        ));
    }
    out
}

/// The stream's slot, served by the node on `port` (the others by 7009).
fn stream_on(port: u16) -> String {
    let slot = xgroup_core::key_slot(b"s");
    let mut ranges = Vec::new();
    if slot > 0 {
        ranges.push((0, slot - 1, 7009));
    }
    ranges.push((slot, slot, port));
    if slot < 16383 {
        ranges.push((slot + 1, 16383, 7009));
    }
    slots_reply(&ranges)
}

#[test]
fn a_cluster_names_the_primary_of_the_streams_slot_and_a_moved_reply_moves_the_connections_at_once()
{
    let now = Instant::now();
    let mut c = Consumer::new(cfg().cluster(cluster_target()).build().unwrap());
    // Only a seed node first: the data connection waits for the map.
    assert_eq!(c.poll_event(), Some(Event::Connect(Conn::Discovery)));
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.connect_address(Conn::Discovery).unwrap().port, 7000);
    assert_eq!(c.connect_address(Conn::Control), None);
    c.handle_connected(now, Conn::Discovery);
    let mut s = Script { c, now };
    assert_eq!(s.sent(), "discovery: CLUSTER SHARDS | ");
    // A 6.2 node: the map comes from CLUSTER SLOTS.
    s.c.handle_input(
        now,
        Conn::Discovery,
        b"-ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.\r\n",
    );
    assert_eq!(s.sent(), "discovery: CLUSTER SLOTS | ");
    s.c.handle_input(now, Conn::Discovery, stream_on(7001).as_bytes());
    // Answered: the link closes, the data connection goes to the slot's
    // primary.
    assert_eq!(
        s.events(),
        [
            Event::Disconnect(Conn::Discovery),
            Event::Connect(Conn::Control)
        ]
    );
    assert_eq!(s.c.connect_address(Conn::Control).unwrap().port, 7001);
    s.c.handle_connected(now, Conn::Control);
    // No ROLE: a node that no longer serves the slot says MOVED.
    assert_eq!(
        s.sent(),
        "CLIENT SETNAME c | XGROUP CREATE s g 0 MKSTREAM | "
    );
    s.reply("+OK\r\n+OK\r\n");
    assert_eq!(s.sent(), "XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | ");
    // The slot moved (a migration): the connection goes to the new owner
    // at once, no backoff, and the map is asked for again.
    s.reply("-MOVED 1234 127.0.0.1:7002\r\n");
    let events = s.events();
    assert!(
        matches!(&events[0], Event::Warning(Warning::MasterMoved { from, to }) if from.port == 7001 && to.port == 7002),
        "{events:?}"
    );
    assert_eq!(
        events[1..],
        [
            Event::Disconnect(Conn::Control),
            Event::Connect(Conn::Control),
            Event::Connect(Conn::Discovery)
        ]
    );
    assert_eq!(s.c.connect_address(Conn::Control).unwrap().port, 7002);
    s.c.handle_connected(now, Conn::Control);
    assert_eq!(
        s.sent(),
        "CLIENT SETNAME c | XGROUP CREATE s g 0 MKSTREAM | "
    );
    // The fresh map agrees: nothing moves; the next question is a
    // periodic refresh, seconds away.
    s.c.handle_connected(now, Conn::Discovery);
    assert_eq!(s.sent(), "discovery: CLUSTER SHARDS | ");
    s.c.handle_input(now, Conn::Discovery, b"-ERR unknown subcommand\r\n");
    s.sent();
    s.c.handle_input(now, Conn::Discovery, stream_on(7002).as_bytes());
    assert_eq!(s.events(), [Event::Disconnect(Conn::Discovery)]);
    // A MOVED naming the node already connected to cannot be acted on by
    // moving: it is a lost connection, with a backoff, and a new question.
    s.reply("+OK\r\n+OK\r\n");
    s.sent();
    s.reply("-MOVED 1234 127.0.0.1:7002\r\n");
    let events = s.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Warning(Warning::Reconnecting { .. }))),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&Event::Connect(Conn::Discovery)));
    assert!(
        !events.contains(&Event::Connect(Conn::Control)),
        "{events:?}"
    );
}

/// A consumer connected to the primary of its stream's slot, running.
fn cluster_consumer_at(port: u16) -> Script {
    let now = Instant::now();
    let mut c = Consumer::new(cfg().cluster(cluster_target()).build().unwrap());
    assert_eq!(c.poll_event(), Some(Event::Connect(Conn::Discovery)));
    c.handle_connected(now, Conn::Discovery);
    let mut s = Script { c, now };
    s.sent();
    s.c.handle_input(now, Conn::Discovery, b"-ERR unknown subcommand\r\n");
    s.sent();
    s.c.handle_input(now, Conn::Discovery, stream_on(port).as_bytes());
    s.events();
    s.c.handle_connected(now, Conn::Control);
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    s
}

#[test]
fn an_ask_during_a_migration_sends_each_command_after_asking_at_the_target_until_moved() {
    let mut s = cluster_consumer_at(7001);
    assert_eq!(s.sent(), "XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | ");
    // The stream's key moved to 7002; the slot is still 7001's.
    s.reply("-ASK 1234 127.0.0.1:7002\r\n");
    assert_eq!(
        s.events(),
        [
            Event::Disconnect(Conn::Control),
            Event::Connect(Conn::Control)
        ]
    );
    assert_eq!(s.c.connect_address(Conn::Control).unwrap().port, 7002);
    s.c.handle_connected(s.now, Conn::Control);
    assert_eq!(
        s.sent(),
        "CLIENT SETNAME c | ASKING | XGROUP CREATE s g 0 MKSTREAM | "
    );
    s.reply("+OK\r\n+OK\r\n-BUSYGROUP Consumer Group name already exists\r\n");
    assert_eq!(
        s.sent(),
        "ASKING | XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | "
    );
    s.reply("+OK\r\n*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    assert_eq!(s.sent(), "ASKING | XAUTOCLAIM s g c 60000 0-0 COUNT 10 | ");
    // The map still says 7001: nothing moves.
    s.reply("+OK\r\n*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
    s.sent();
    assert!(s.events().is_empty());
    // The migration ended: 7002 owns the slot; plain commands from now on.
    s.reply("-MOVED 1234 127.0.0.1:7002\r\n");
    let events = s.events();
    assert!(
        matches!(&events[0], Event::Warning(Warning::MasterMoved { from, to }) if from.port == 7001 && to.port == 7002),
        "{events:?}"
    );
    assert_eq!(events[events.len() - 2], Event::Connect(Conn::Control));
    s.c.handle_connected(s.now, Conn::Control);
    assert_eq!(
        s.sent(),
        "CLIENT SETNAME c | XGROUP CREATE s g 0 MKSTREAM | "
    );
}

#[test]
fn a_migration_that_goes_back_returns_the_connections_to_the_owner_after_a_backoff() {
    let mut s = cluster_consumer_at(7001);
    s.sent();
    s.reply("-ASK 1234 127.0.0.1:7002\r\n");
    s.events();
    s.c.handle_connected(s.now, Conn::Control);
    s.sent();
    // The target never took the slot: it sends us back. Back to the owner,
    // after a backoff: a source and a target that disagree must not send
    // the connections to and fro in a loop.
    s.reply("+OK\r\n+OK\r\n-MOVED 1234 127.0.0.1:7001\r\n");
    let events = s.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Warning(Warning::Reconnecting { .. }))),
        "{events:?}"
    );
    assert!(
        !events.contains(&Event::Connect(Conn::Control)),
        "{events:?}"
    );
    assert_eq!(s.c.connect_address(Conn::Control).unwrap().port, 7001);
    let at = loop {
        let (at, kind) = s.c.poll_timeout().unwrap();
        s.c.handle_timeout(at);
        if kind == TimerKind::Reconnect {
            break at;
        }
    };
    let events = s.events();
    assert!(
        events.contains(&Event::Connect(Conn::Control)),
        "{events:?}"
    );
    s.c.handle_connected(at, Conn::Control);
    assert_eq!(
        s.sent(),
        "CLIENT SETNAME c | XGROUP CREATE s g 0 MKSTREAM | "
    );
    // An ASK to where the connections already are cannot be followed:
    // a lost connection, with a backoff.
    s.reply("+OK\r\n-ASK 1234 127.0.0.1:7002\r\n");
    s.events();
    s.c.handle_connected(at, Conn::Control);
    s.sent();
    s.reply("+OK\r\n+OK\r\n-ASK 1234 127.0.0.1:7002\r\n");
    let events = s.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Warning(Warning::Reconnecting { .. }))),
        "{events:?}"
    );
}

/// A plain URL that points at a cluster node that does not serve the
/// stream: its `MOVED` turns cluster discovery on, seeded with the node
/// it names; the connections go there at once and its map is asked for.
#[test]
fn a_plain_url_at_a_cluster_node_follows_its_redirect_and_asks_for_the_map() {
    let mut s = Script::new(cfg().build().unwrap());
    assert_eq!(s.c.connect_address(Conn::Control), None);
    s.sent();
    s.reply("+OK\r\n-MOVED 1234 127.0.0.1:7002\r\n");
    let events = s.events();
    assert_eq!(
        events,
        [
            Event::Disconnect(Conn::Control),
            Event::Connect(Conn::Control),
            Event::Connect(Conn::Discovery)
        ],
        "{events:?}"
    );
    assert_eq!(s.c.connect_address(Conn::Control).unwrap().port, 7002);
    assert_eq!(s.c.connect_address(Conn::Discovery).unwrap().port, 7002);
    s.c.handle_connected(s.now, Conn::Control);
    assert_eq!(
        s.sent(),
        "CLIENT SETNAME c | XGROUP CREATE s g 0 MKSTREAM | "
    );
    s.c.handle_connected(s.now, Conn::Discovery);
    assert_eq!(s.sent(), "discovery: CLUSTER SHARDS | ");
    assert!(!s.c.is_stopped());
}

#[test]
fn a_connection_lost_in_a_cluster_asks_again_until_a_replica_is_promoted() {
    let now = Instant::now();
    let cfg = cfg()
        .cluster(cluster_target())
        .reconnect_backoff(Duration::from_millis(100), Duration::from_secs(10));
    let mut c = Consumer::new(cfg.build().unwrap());
    assert_eq!(c.poll_event(), Some(Event::Connect(Conn::Discovery)));
    c.handle_connected(now, Conn::Discovery);
    let mut s = Script { c, now };
    s.sent();
    s.c.handle_input(now, Conn::Discovery, b"-ERR unknown subcommand\r\n");
    s.sent();
    s.c.handle_input(now, Conn::Discovery, stream_on(7001).as_bytes());
    s.events();
    s.c.handle_connected(now, Conn::Control);
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    s.sent();
    // The primary dies: a backoff for the data connection, and the cluster
    // asked at once (the seeds and the nodes of the last map, in turn).
    s.c.handle_disconnected(now, Conn::Control, "connection reset");
    let events = s.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Warning(Warning::Reconnecting { .. }))),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&Event::Connect(Conn::Discovery)));
    s.c.handle_connected(now, Conn::Discovery);
    s.sent();
    s.c.handle_input(now, Conn::Discovery, b"-ERR unknown subcommand\r\n");
    s.sent();
    // Not failed over yet: the same primary. The data connection waits for
    // its backoff; each attempt that fails asks the cluster again at once,
    // and while the answer stays the same it is asked again within 500 ms,
    // however long the backoff grows.
    fn answer(s: &mut Script, at: Instant, port: u16) {
        s.c.handle_connected(at, Conn::Discovery);
        s.sent();
        s.c.handle_input(at, Conn::Discovery, b"-ERR unknown subcommand\r\n");
        s.sent();
        s.c.handle_input(at, Conn::Discovery, stream_on(port).as_bytes());
    }
    s.c.handle_input(now, Conn::Discovery, stream_on(7001).as_bytes());
    assert_eq!(s.events(), [Event::Disconnect(Conn::Discovery)]);
    let mut answered = now;
    let mut attempts = 0;
    let at = loop {
        let (at, kind) = s.c.poll_timeout().unwrap();
        s.now = at;
        s.c.handle_timeout(at);
        if kind == TimerKind::Discovery {
            assert!(
                at - answered <= Duration::from_millis(500),
                "{:?}",
                at - answered
            );
            assert_eq!(s.events(), [Event::Connect(Conn::Discovery)]);
            break at;
        }
        assert_eq!(kind, TimerKind::Reconnect);
        assert_eq!(s.events(), [Event::Connect(Conn::Control)]);
        assert_eq!(s.c.connect_address(Conn::Control).unwrap().port, 7001);
        s.c.handle_connect_failed(at, Conn::Control, "refused");
        attempts += 1;
        let events = s.events();
        assert_eq!(events.last(), Some(&Event::Connect(Conn::Discovery)));
        answer(&mut s, at, 7001);
        assert_eq!(s.events(), [Event::Disconnect(Conn::Discovery)]);
        answered = at;
        assert!(attempts < 10, "the cluster was not asked again in time");
    };
    // The replica on 7003 was promoted: connected to at once.
    answer(&mut s, at, 7003);
    let events = s.events();
    assert!(
        matches!(&events[1], Event::Warning(Warning::MasterMoved { from, to }) if from.port == 7001 && to.port == 7003),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&Event::Connect(Conn::Control)));
    assert_eq!(s.c.connect_address(Conn::Control).unwrap().port, 7003);
}

#[test]
fn cluster_nodes_that_all_fail_are_asked_again_after_a_backoff() {
    let now = Instant::now();
    let cfg = cfg()
        .cluster(cluster_target())
        .reconnect_backoff(Duration::from_millis(100), Duration::from_secs(1));
    let mut c = Consumer::new(cfg.build().unwrap());
    assert_eq!(c.poll_event(), Some(Event::Connect(Conn::Discovery)));
    let mut s = Script { c, now };
    s.c.handle_connect_failed(now, Conn::Discovery, "refused");
    let events = s.events();
    assert!(
        matches!(&events[0], Event::Warning(Warning::ClusterNodeFailed { node, retry_in: None, .. }) if node.port == 7000),
        "{events:?}"
    );
    assert_eq!(events[1..], [Event::Connect(Conn::Discovery)]);
    assert_eq!(s.c.connect_address(Conn::Discovery).unwrap().port, 7001);
    s.c.handle_connected(now, Conn::Discovery);
    s.sent();
    // A node of a cluster that is down: the round failed, the next waits.
    s.c.handle_input(
        now,
        Conn::Discovery,
        b"-CLUSTERDOWN The cluster is down\r\n",
    );
    let events = s.events();
    assert_eq!(events[0], Event::Disconnect(Conn::Discovery));
    assert!(
        matches!(&events[1], Event::Warning(Warning::ClusterNodeFailed { reason, retry_in: Some(d), .. }) if reason.contains("CLUSTERDOWN") && *d <= Duration::from_millis(100)),
        "{events:?}"
    );
    assert_eq!(events.len(), 2);
    let (at, kind) = s.c.poll_timeout().unwrap();
    assert_eq!(kind, TimerKind::Discovery);
    s.c.handle_timeout(at);
    assert_eq!(s.events(), [Event::Connect(Conn::Discovery)]);
    assert_eq!(s.c.connect_address(Conn::Discovery).unwrap().port, 7000);
    // Garbage from a node is a failed node, not a panic.
    s.c.handle_connected(at, Conn::Discovery);
    s.sent();
    s.c.handle_input(at, Conn::Discovery, b"*2\r\n$x\r\n");
    let events = s.events();
    assert_eq!(events[0], Event::Disconnect(Conn::Discovery));
}

/// Progress reported on a batch (a stream delivery's `in_progress`) starts
/// its handler timeout again: its entries stay refreshed past the timeout
/// counted from the delivery, and are taken for hung only once progress
/// stops for a whole timeout.
#[test]
fn progress_on_a_batch_starts_its_handler_timeout_again() {
    // Refreshed every 30 s (half the default claim min idle).
    let cfg = cfg()
        .claim_interval(Duration::from_secs(3600))
        .handler_timeout(Duration::from_secs(70))
        .build()
        .unwrap();
    let mut s = Script::started(cfg);
    s.reply(&read_reply(&[entry("1-1", "a", "1")]));
    let events = s.events();
    let [Event::Deliver(batch)] = &events[..] else {
        panic!("{events:?}")
    };
    let step = Duration::from_secs(30);
    let refreshed = |s: &mut Script| {
        s.advance(step);
        assert_eq!(s.sent(), "XCLAIM s g c 29999 1-1 JUSTID | ");
        s.reply("*1\r\n$3\r\n1-1\r\n");
    };
    // Progress at 60 s and 120 s: past 70 s from the delivery, still fresh.
    for _ in 0..2 {
        refreshed(&mut s);
        refreshed(&mut s);
        s.c.handle_progress(s.now, batch.id);
    }
    refreshed(&mut s);
    refreshed(&mut s);
    assert!(s.events().is_empty());
    // No progress since 120 s: hung at 210 s, no longer refreshed.
    s.advance(step);
    let events = s.events();
    assert!(
        matches!(&events[..], [Event::Warning(Warning::HandlerHung { .. })]),
        "{events:?}"
    );
    assert_eq!(s.sent(), "");
    // Progress after the fact does not bring it back.
    s.c.handle_progress(s.now, batch.id);
    s.advance(step);
    assert_eq!(s.sent(), "");
}

/// One message's handler failing is counted and reported while its batch
/// stays in flight; the batch's completion decides each message.
#[test]
fn a_failed_message_is_reported_and_its_batch_goes_on() {
    let mut s = Script::started(cfg().build().unwrap());
    s.reply(&read_reply(&[
        entry("1-1", "a", "1"),
        entry("1-2", "b", "2"),
    ]));
    let events = s.events();
    let [Event::Deliver(batch)] = &events[..] else {
        panic!("{events:?}")
    };
    s.c.handle_message_failed(batch.id, StreamId::new(1, 2), "panicked: boom");
    let events = s.events();
    let [Event::Warning(Warning::HandlerFailed { batch: b, reason })] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (*b, reason.as_str()),
        (batch.id, "message 1-2: panicked: boom")
    );
    assert_eq!(s.c.stats().handler_failures, 1);
    assert_eq!(s.c.in_flight(), 1);
    let outcome = Outcome::Each(vec![
        (StreamId::new(1, 1), Disposition::Ack),
        (StreamId::new(1, 2), Disposition::Keep),
    ]);
    s.c.handle_completion(s.now, batch.id, outcome);
    let sent = s.sent();
    assert!(sent.starts_with("XACK s g 1-1 | "), "{sent}");
    assert_eq!(s.c.in_flight(), 0);
    // Unknown batches are ignored.
    s.c.handle_message_failed(batch.id, StreamId::new(1, 2), "late");
    assert!(s.events().is_empty());
    assert_eq!(s.c.stats().handler_failures, 1);
}

/// The ordered mode with `fenced`'s heartbeats: claiming on (it takes what
/// previous lease holders left).
fn ordered() -> ConsumerConfig {
    cfg()
        .heartbeat(Duration::from_secs(1), 3)
        .ordered(true)
        .build()
        .unwrap()
}

const LEASE: &str = "EVAL LEASE_SCRIPT 3 {s}:xgroup:members:g {s}:xgroup:lease:g \
                     {s}:xgroup:fence:g c 63cbe1e459320dd7 3000 0";

fn lease_answer(held: bool, fence: &str, rightful: bool, free: bool) -> String {
    format!(
        "*4\r\n:{}\r\n{}:{}\r\n:{}\r\n",
        u8::from(held),
        bulk(fence),
        u8::from(rightful),
        u8::from(free)
    )
}

#[test]
fn ordered_mode_reads_only_under_the_lease_and_takes_the_previous_holders_entries_first() {
    let mut s = Script::new(ordered());
    s.sent();
    s.reply("+OK\r\n+OK\r\n");
    // The name's claim and the lease beat go together; nothing is read
    // before both are answered.
    let sent = s.sent().replace(xgroup_core::LEASE_SCRIPT, "LEASE_SCRIPT");
    assert_eq!(sent, format!("{CLAIM}{LEASE} 0 | "));
    s.reply("$-1\r\n");
    // Another holds the lease: nothing is read.
    s.reply(&lease_answer(false, "", false, false));
    assert_eq!(s.sent(), "");
    // The next beat: the lease is ours (fencing token 8).
    s.advance(Duration::from_secs(1));
    let sent = s.sent().replace(xgroup_core::LEASE_SCRIPT, "LEASE_SCRIPT");
    assert!(sent.ends_with(&format!("{LEASE} 0 | ")), "{sent}");
    assert!(!sent.contains("XPENDING"), "no liveness checks: {sent}");
    s.reply(&bulk("63cbe1e459320dd7:1"));
    s.reply(&lease_answer(true, "8", true, false));
    // Our own pending entries first,
    assert_eq!(s.sent(), "XREADGROUP GROUP g c COUNT 10 STREAMS s 0-0 | ");
    s.reply("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
    // then whatever the previous holders left, whatever its idle time,
    assert_eq!(s.sent(), "XPENDING s g IDLE 0 0-0 + 10 | ");
    s.reply(&rows(&[pending_row("1-1", "old", 5, 1)]));
    assert_eq!(s.sent(), "XCLAIM s g c 0 1-1 | ");
    s.reply(&format!("*1\r\n{}", entry("1-1", "k", "v")));
    // (Its delivery count, as for every claim.)
    assert_eq!(s.sent(), "XPENDING s g 1-1 1-1 17 c | ");
    s.reply(&rows(&[pending_row("1-1", "c", 0, 2)]));
    let events = s.events();
    let [Event::Deliver(batch)] = &events[..] else {
        panic!("{events:?}");
    };
    assert_eq!((batch.source, batch.lease), (Source::Claimed, Some(8)));
    assert_eq!(batch.messages[0].attempt, 2);
    // New entries only once that batch is done: one batch at a time.
    assert_eq!(s.sent(), "");
    s.c.handle_completion(s.now, batch.id, Outcome::AckAll);
    let sent = s.sent();
    assert!(
        sent.starts_with("XACK s g 1-1 | XREADGROUP GROUP g c COUNT 10 BLOCK "),
        "{sent}"
    );
    assert_eq!(s.c.lease(), Some(8));
}
