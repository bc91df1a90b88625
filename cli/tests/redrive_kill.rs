//! A redrive killed with SIGKILL at random points loses and duplicates
//! nothing: after every kill each dead letter is in exactly one of the two
//! streams, and runs after it move the rest.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::cmd;
use xgroup_testkit::RedisServer;

const LETTERS: usize = 600;

/// How many times each `n` is in `key`.
fn count_ns(server: &RedisServer, key: &str, into: &mut BTreeMap<String, usize>) {
    let reply = server.cmd(&["XRANGE", key, "-", "+"]);
    for e in reply.as_array().unwrap_or_default() {
        let fields = e.as_array().expect("entry")[1]
            .as_array()
            .expect("fields")
            .to_vec();
        for kv in fields.chunks(2) {
            if kv[0].as_str() == Some("n") {
                *into
                    .entry(kv[1].as_str().expect("n").to_owned())
                    .or_default() += 1;
            }
        }
    }
}

fn check_each_once(server: &RedisServer) -> (usize, usize) {
    let mut seen = BTreeMap::new();
    count_ns(server, "dlq", &mut seen);
    let in_dlq: usize = seen.values().sum();
    count_ns(server, "s", &mut seen);
    assert_eq!(seen.len(), LETTERS, "some dead letter was lost");
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c != 1).collect();
    assert!(twice.is_empty(), "duplicated: {twice:?}");
    (in_dlq, LETTERS - in_dlq)
}

#[test]
fn redrive_killed_at_random_points_loses_and_duplicates_nothing() {
    let server = RedisServer::start();
    for i in 0..LETTERS {
        cmd(
            &server,
            &[
                "XADD",
                "dlq",
                "*",
                "n",
                &i.to_string(),
                "dlq_stream",
                "s",
                "dlq_id",
                "1-0",
                "dlq_group",
                "g",
                "dlq_consumer",
                "c",
                "dlq_deliveries",
                "3",
                "dlq_reason",
                "boom",
            ],
        );
    }
    cmd(&server, &["XADD", "s", "*", "seed", "1"]);
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    println!("seed {seed}");
    let mut random = move |below: u64| {
        // xorshift64
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut kills = 0;
    loop {
        let (left, _) = check_each_once(&server);
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "redrive did not finish: {left} left"
        );
        // At 300 a second a whole run takes 2 s: kills land anywhere in
        // it, from before the connection to mid-script.
        let mut child = Command::new(env!("CARGO_BIN_EXE_xgroup"))
            .args([
                "--url",
                &server.url(),
                "dead-letters",
                "redrive",
                "dlq",
                "--to",
                "s",
                "--rate",
                "300/s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn xgroup");
        if kills < 8 {
            std::thread::sleep(Duration::from_millis(5 + random(500)));
            child.kill().expect("SIGKILL");
            kills += 1;
        }
        let status = child.wait().expect("wait");
        let (left, moved) = check_each_once(&server);
        println!("run {kills}: {status}; {moved} moved, {left} left");
    }
    assert!(kills > 0);
}
