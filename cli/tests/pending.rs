//! `xgroup pending` against a real server.

mod common;

use common::{cmd, mask_idle, xgroup};
use xgroup_testkit::RedisServer;

/// Five entries at fixed times; c1 holds three (two idle for 3 hours, one
/// delivered 4 times), c2 one (just read), one not delivered.
fn setup(server: &RedisServer) {
    for i in 0..5 {
        let id = format!("{}-0", 1_714_564_800_000u64 + i * 1000);
        cmd(server, &["XADD", "orders", &id, "n", &i.to_string()]);
    }
    cmd(server, &["XGROUP", "CREATE", "orders", "g", "0"]);
    cmd(
        server,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "COUNT",
            "3",
            "STREAMS",
            "orders",
            ">",
        ],
    );
    cmd(
        server,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c2",
            "COUNT",
            "1",
            "STREAMS",
            "orders",
            ">",
        ],
    );
    // Idle 3 hours (and 30 s to spare); one of them delivered 4 times.
    let three_hours = (3 * 3_600_000 + 30_000).to_string();
    for (id, count) in [("1714564800000-0", "4"), ("1714564801000-0", "1")] {
        cmd(
            server,
            &[
                "XCLAIM",
                "orders",
                "g",
                "c1",
                "0",
                id,
                "IDLE",
                &three_hours,
                "RETRYCOUNT",
                count,
                "JUSTID",
            ],
        );
    }
}

#[test]
fn pending_lists_the_entries() {
    let server = RedisServer::start();
    setup(&server);
    let out = xgroup(&server, &["pending", "orders", "g"]);
    insta::assert_snapshot!(mask_idle(out.ok()), @r"
    ID               CONSUMER   IDLE  DELIVERIES  TIME
    1714564800000-0  c1        3h00m           4  2024-05-01T12:00:00.000Z
    1714564801000-0  c1        3h00m           1  2024-05-01T12:00:01.000Z
    1714564802000-0  c1           Ns           1  2024-05-01T12:00:02.000Z
    1714564803000-0  c2           Ns           1  2024-05-01T12:00:03.000Z
    4 shown, 4 pending in group g of orders
    ");
}

#[test]
fn pending_filters_by_consumer_idle_and_limit() {
    let server = RedisServer::start();
    setup(&server);
    let run = |args: &[&str]| {
        let mut all = vec!["pending", "orders", "g", "--json"];
        all.extend_from_slice(args);
        let doc = xgroup(&server, &all).json();
        assert_eq!(doc["group_pending"], 4);
        doc["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e["id"].as_str().unwrap_or(""),
                    e["consumer"].as_str().unwrap_or(""),
                    e["deliveries"]
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(&["--consumer", "c2"]), ["1714564803000-0 c2 1"]);
    assert_eq!(
        run(&["--min-idle", "1h"]),
        ["1714564800000-0 c1 4", "1714564801000-0 c1 1"]
    );
    assert_eq!(
        run(&["--min-idle", "1h", "--limit", "1"]),
        ["1714564800000-0 c1 4"]
    );
    assert_eq!(
        run(&["--min-idle", "1h", "--consumer", "c2"]),
        Vec::<String>::new()
    );
    let none = xgroup(&server, &["pending", "orders", "g", "--consumer", "nobody"]);
    assert_eq!(
        none.ok(),
        "no pending entries match (4 pending in group g of orders)\n"
    );
    let doc = xgroup(
        &server,
        &["pending", "orders", "g", "--limit", "1", "--json"],
    )
    .json();
    let idle = doc["entries"][0]["idle_ms"].as_u64().expect("idle");
    assert!(idle >= 3 * 3_600_000, "{idle}");
    assert_eq!(doc["entries"][0]["time"], "2024-05-01T12:00:00.000Z");
}
