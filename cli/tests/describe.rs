//! `xgroup describe` against a real server: the human output as a
//! snapshot (clock-dependent parts masked, widths kept) and `--json`.

mod common;

use common::{cmd, mask, now_ms, xgroup};
use xgroup_testkit::RedisServer;

/// A stream of 8 entries, 3 hours old (30 s to spare), and three groups:
/// `processors` (c1 alive by heartbeat with 3 pending, one delivered 7
/// times; c2 dead with 1; c2's released name with 1), `audit` (created at
/// the end), `late` (nothing delivered yet).
fn setup(server: &RedisServer) -> Vec<String> {
    let base = now_ms(server) - 3 * 3_600_000 + 30_000;
    let ids: Vec<String> = (0..8).map(|i| format!("{}-0", base + i * 1000)).collect();
    for (i, id) in ids.iter().enumerate() {
        cmd(server, &["XADD", "orders", id, "n", &i.to_string()]);
    }
    cmd(server, &["XGROUP", "CREATE", "orders", "processors", "0"]);
    cmd(server, &["XGROUP", "CREATE", "orders", "audit", "$"]);
    cmd(server, &["XGROUP", "CREATE", "orders", "late", "0"]);
    let read = |consumer: &str, count: &str| {
        cmd(
            server,
            &[
                "XREADGROUP",
                "GROUP",
                "processors",
                consumer,
                "COUNT",
                count,
                "STREAMS",
                "orders",
                ">",
            ],
        );
    };
    read("c1", "3");
    read("c2", "2");
    // c1 is alive: its heartbeat key is there.
    let key = xgroup_core::heartbeat_key(b"orders", b"processors", b"c1");
    let set: [&[u8]; 5] = [b"SET", &key, b"tok:1", b"PX", b"600000"];
    assert!(!server.cmd(&set).is_error());
    // One of c1's entries was delivered 7 times.
    cmd(
        server,
        &[
            "XCLAIM",
            "orders",
            "processors",
            "c1",
            "0",
            &ids[0],
            "RETRYCOUNT",
            "7",
        ],
    );
    // A hung handler of c2 released one entry.
    cmd(
        server,
        &[
            "XCLAIM",
            "orders",
            "processors",
            "c2~xgroup-released",
            "0",
            &ids[4],
        ],
    );
    ids
}

#[test]
fn describe_shows_groups_consumers_and_deliveries() {
    let server = RedisServer::start();
    setup(&server);
    let out = xgroup(&server, &["describe", "orders"]);
    insta::assert_snapshot!(mask(out.ok()));
}

#[test]
fn describe_json_has_the_numbers() {
    let server = RedisServer::start();
    let ids = setup(&server);
    let doc = xgroup(&server, &["describe", "orders", "--json"]).json();
    assert_eq!(doc["stream"], "orders");
    assert_eq!(doc["length"], 8);
    assert_eq!(doc["first_id"], ids[0].as_str());
    assert_eq!(doc["last_id"], ids[7].as_str());
    let groups = doc["groups"].as_array().expect("groups");
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["audit", "late", "processors"]);
    let p = &groups[2];
    assert_eq!(p["lag"], 3);
    assert_eq!(p["lag_source"], "server");
    assert_eq!(p["entries_read"], 5);
    assert_eq!(p["pending"], 5);
    assert_eq!(p["last_delivered_id"], ids[4].as_str());
    assert_eq!(p["oldest_pending"]["id"], ids[0].as_str());
    let age = p["oldest_pending"]["age_ms"].as_u64().expect("age");
    assert!(
        (3 * 3_600_000 - 30_000..3 * 3_600_000).contains(&age),
        "{age}"
    );
    let consumers: Vec<(String, String, u64)> = p["consumers"]
        .as_array()
        .expect("consumers")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_owned(),
                c["state"].as_str().unwrap_or("").to_owned(),
                c["pending"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    assert_eq!(
        consumers,
        [
            ("c1".into(), "alive".into(), 3),
            ("c2".into(), "dead".into(), 1),
            ("c2~xgroup-released".into(), "released".into(), 1),
        ]
    );
    // Delivery counts: 3 entries once, the released one twice (a claim
    // counts as a delivery), one 7 times.
    assert_eq!(
        p["deliveries"],
        serde_json::json!([
            {"deliveries": "1", "entries": 3},
            {"deliveries": "2", "entries": 1},
            {"deliveries": "6-10", "entries": 1},
        ])
    );
    assert_eq!(p["deliveries_complete"], true);
    let late = &groups[1];
    assert_eq!(late["lag"], 8);
    assert_eq!(late["last_delivered_id"], "0-0");
    assert_eq!(late["last_delivered_time"], serde_json::Value::Null);
    assert_eq!(late["pending"], 0);
    assert_eq!(late["oldest_pending"], serde_json::Value::Null);
    assert_eq!(groups[0]["lag"], 0);
    // --group picks one.
    let one = xgroup(
        &server,
        &["describe", "orders", "--group", "late", "--json"],
    )
    .json();
    assert_eq!(one["groups"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["groups"][0]["name"], "late");
}

/// When the server gives no lag (an entry deleted after the group's
/// position), the entries still to deliver are counted: never a made-up 0.
#[test]
fn lag_is_counted_when_the_server_gives_none() {
    let server = RedisServer::start();
    let ids = setup(&server);
    cmd(&server, &["XDEL", "orders", &ids[6]]);
    let info = server.cmd(&["XINFO", "GROUPS", "orders"]);
    let first = info
        .as_array()
        .and_then(|g| {
            g.iter().find(|g| {
                g.as_array().and_then(|f| f.get(1)).and_then(|n| n.as_str()) == Some("processors")
            })
        })
        .and_then(|g| g.as_array())
        .expect("group");
    let lag_at = first
        .iter()
        .position(|v| v.as_str() == Some("lag"))
        .expect("a lag field");
    assert!(
        first[lag_at + 1].is_nil(),
        "the server still gives a lag: {info:?}"
    );
    let doc = xgroup(
        &server,
        &["describe", "orders", "--group", "processors", "--json"],
    )
    .json();
    assert_eq!(doc["groups"][0]["lag"], 2);
    assert_eq!(doc["groups"][0]["lag_source"], "counted");
    let text = xgroup(&server, &["describe", "orders", "--group", "processors"]);
    assert!(
        text.ok()
            .contains("  lag             2 (counted: the server gives none)\n"),
        "{}",
        text.stdout
    );
}
