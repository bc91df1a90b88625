//! `xgroup dead-letters list` and `redrive` against a real server.

mod common;

use std::time::{Duration, Instant};

use common::{cmd, xgroup};
use xgroup_testkit::{RedisServer, RespValue};

/// Adds a dead letter in the library's layout at a fixed id.
fn dead_letter(
    server: &RedisServer,
    dlq: &str,
    id: &str,
    fields: &[(&str, &str)],
    meta: [&str; 6],
) {
    let mut args = vec!["XADD", dlq, id];
    for (f, v) in fields {
        args.extend([*f, *v]);
    }
    let names = [
        "dlq_stream",
        "dlq_id",
        "dlq_group",
        "dlq_consumer",
        "dlq_deliveries",
        "dlq_reason",
    ];
    for (name, value) in names.iter().zip(meta) {
        args.extend([*name, value]);
    }
    cmd(server, &args);
}

fn setup(server: &RedisServer) {
    cmd(server, &["XADD", "orders", "1714564700000-0", "n", "start"]);
    dead_letter(
        server,
        "orders:dlq",
        "1714564800000-0",
        &[("user", "1"), ("item", "widget")],
        [
            "orders",
            "1714564600000-0",
            "processors",
            "c1",
            "5",
            "handler timeout",
        ],
    );
    dead_letter(
        server,
        "orders:dlq",
        "1714564801000-0",
        &[("user", "2"), ("item", "gadget")],
        [
            "orders",
            "1714564600001-0",
            "processors",
            "c2",
            "3",
            "panic: bad input",
        ],
    );
    dead_letter(
        server,
        "orders:dlq",
        "1714564802000-0",
        &[("user", "3"), ("item", "widget")],
        [
            "orders",
            "1714564600002-0",
            "processors",
            "c1",
            "5",
            "handler timeout",
        ],
    );
    // Not written by xgroup.
    cmd(
        server,
        &["XADD", "orders:dlq", "1714564803000-0", "note", "by hand"],
    );
}

/// The entries of a stream: (id, fields as "f=v" strings).
fn entries(server: &RedisServer, key: &str) -> Vec<(String, Vec<String>)> {
    let reply = server.cmd(&["XRANGE", key, "-", "+"]);
    reply
        .as_array()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let parts = e.as_array().expect("entry");
            let id = parts[0].as_str().expect("id").to_owned();
            let flat: Vec<&str> = parts[1]
                .as_array()
                .expect("fields")
                .iter()
                .map(|v| v.as_str().expect("field"))
                .collect();
            let fields = flat
                .chunks(2)
                .map(|kv| format!("{}={}", kv[0], kv[1]))
                .collect();
            (id, fields)
        })
        .collect()
}

#[test]
fn list_shows_origin_reason_and_fields() {
    let server = RedisServer::start();
    setup(&server);
    let out = xgroup(&server, &["dead-letters", "list", "orders:dlq"]);
    insta::assert_snapshot!(out.ok(), @r"
    4 dead letters in orders:dlq (showing 4)

    1714564800000-0  2024-05-01T12:00:00.000Z
      from        orders 1714564600000-0 (group processors, consumer c1, 5 deliveries)
      reason      handler timeout
      fields      user=1 item=widget

    1714564801000-0  2024-05-01T12:00:01.000Z
      from        orders 1714564600001-0 (group processors, consumer c2, 3 deliveries)
      reason      panic: bad input
      fields      user=2 item=gadget

    1714564802000-0  2024-05-01T12:00:02.000Z
      from        orders 1714564600002-0 (group processors, consumer c1, 5 deliveries)
      reason      handler timeout
      fields      user=3 item=widget

    1714564803000-0  2024-05-01T12:00:03.000Z
      (not an xgroup dead letter: no dlq_* fields at its end)
      fields      note=by hand
    ");
    let doc = xgroup(
        &server,
        &[
            "dead-letters",
            "list",
            "orders:dlq",
            "--limit",
            "1",
            "--json",
        ],
    )
    .json();
    assert_eq!(
        doc,
        serde_json::json!({
            "dlq": "orders:dlq",
            "length": 4,
            "entries": [{
                "id": "1714564800000-0",
                "time": "2024-05-01T12:00:00.000Z",
                "xgroup": true,
                "stream": "orders",
                "entry_id": "1714564600000-0",
                "group": "processors",
                "consumer": "c1",
                "deliveries": "5",
                "reason": "handler timeout",
                "fields": [["user", "1"], ["item", "widget"]],
            }]
        })
    );
}

#[test]
fn dry_run_changes_nothing() {
    let server = RedisServer::start();
    setup(&server);
    let before = entries(&server, "orders:dlq");
    let out = xgroup(
        &server,
        &[
            "dead-letters",
            "redrive",
            "orders:dlq",
            "--to",
            "orders",
            "--filter",
            "reason~timeout",
            "--dry-run",
        ],
    );
    insta::assert_snapshot!(out.ok(), @r"
    would move 1714564800000-0 -> orders (from orders 1714564600000-0, reason: handler timeout)
    would move 1714564802000-0 -> orders (from orders 1714564600002-0, reason: handler timeout)
    skipped 1714564803000-0: not an xgroup dead letter (no dlq_* fields at its end)
    dry run: would move 2 dead letters from orders:dlq to orders; left: 1 not matching the filters, 1 not xgroup dead letters; nothing changed
    ");
    assert_eq!(entries(&server, "orders:dlq"), before);
    assert_eq!(entries(&server, "orders").len(), 1);
}

#[test]
fn redrive_restores_the_fields_and_keeps_the_history() {
    let server = RedisServer::start();
    setup(&server);
    let doc = xgroup(
        &server,
        &[
            "dead-letters",
            "redrive",
            "orders:dlq",
            "--to",
            "orders",
            "--filter",
            "consumer=c1",
            "--filter",
            "item=widget",
            "--json",
        ],
    )
    .json();
    assert_eq!(doc["moved"].as_array().map(Vec::len), Some(2), "{doc}");
    assert_eq!(doc["not_matching"], 1);
    assert_eq!(
        doc["not_dead_letters"],
        serde_json::json!(["1714564803000-0"])
    );
    // Left in the dead letters: the one that did not match, the foreign one.
    let left: Vec<String> = entries(&server, "orders:dlq")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(left, ["1714564801000-0", "1714564803000-0"]);
    let target = entries(&server, "orders");
    assert_eq!(target.len(), 3);
    assert_eq!(
        target[1].0,
        doc["moved"][0]["new_id"].as_str().expect("new id")
    );
    // The original fields in order, then the history.
    assert_eq!(&target[1].1[..2], ["user=1", "item=widget"]);
    let history = target[1].1[2]
        .strip_prefix("xgroup_history=")
        .expect("history field");
    let history: serde_json::Value = serde_json::from_str(history).expect("JSON history");
    let item = &history[0];
    assert_eq!(item["stream"], "orders");
    assert_eq!(item["id"], "1714564600000-0");
    assert_eq!(item["group"], "processors");
    assert_eq!(item["consumer"], "c1");
    assert_eq!(item["deliveries"], 5);
    assert_eq!(item["reason"], "handler timeout");
    assert_eq!(item["dead_letter_stream"], "orders:dlq");
    assert_eq!(item["dead_letter_id"], "1714564800000-0");
    assert!(item["redriven_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert_eq!(target[1].1.len(), 3);

    // Dead-lettered again (the library copies every field, the history
    // too) and redriven again: the history has both.
    let again: Vec<(String, String)> = target[1]
        .1
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("f=v");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let fields: Vec<(&str, &str)> = again
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    dead_letter(
        &server,
        "orders:dlq",
        "1714564900000-0",
        &fields,
        [
            "orders",
            &target[1].0,
            "processors",
            "c3",
            "2",
            "still failing",
        ],
    );
    xgroup(
        &server,
        &[
            "dead-letters",
            "redrive",
            "orders:dlq",
            "--to",
            "orders",
            "--filter",
            "reason=still failing",
        ],
    )
    .ok();
    let target = entries(&server, "orders");
    let last = &target.last().expect("redriven").1;
    assert_eq!(&last[..2], ["user=1", "item=widget"]);
    assert_eq!(last.len(), 3, "{last:?}");
    let history: serde_json::Value =
        serde_json::from_str(last[2].strip_prefix("xgroup_history=").expect("history"))
            .expect("JSON");
    let reasons: Vec<&str> = history
        .as_array()
        .expect("array")
        .iter()
        .map(|h| h["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reasons, ["handler timeout", "still failing"]);
}

#[test]
fn no_history_restores_exactly_the_original_fields() {
    let server = RedisServer::start();
    setup(&server);
    let out = xgroup(
        &server,
        &[
            "dead-letters",
            "redrive",
            "orders:dlq",
            "--to",
            "fresh",
            "--create",
            "--no-history",
            "--limit",
            "2",
        ],
    );
    let text = out.ok();
    assert!(
        text.ends_with("moved 2 dead letters from orders:dlq to fresh\n"),
        "{text}"
    );
    let target: Vec<Vec<String>> = entries(&server, "fresh")
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    assert_eq!(
        target,
        [vec!["user=1", "item=widget"], vec!["user=2", "item=gadget"]]
    );
    assert_eq!(entries(&server, "orders:dlq").len(), 2);
}

#[test]
fn rate_limits_entries_per_second() {
    let server = RedisServer::start();
    for i in 0..6 {
        dead_letter(
            &server,
            "dlq",
            "*",
            &[("n", &i.to_string())],
            ["s", "1-0", "g", "c", "1", "x"],
        );
    }
    cmd(&server, &["XADD", "s", "*", "n", "x"]);
    let started = Instant::now();
    xgroup(
        &server,
        &[
            "dead-letters",
            "redrive",
            "dlq",
            "--to",
            "s",
            "--rate",
            "20/s",
        ],
    )
    .ok();
    // Six entries at 20 per second: the sixth not before 250 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(entries(&server, "s").len(), 7);
    assert_eq!(entries(&server, "dlq").len(), 0);
}

#[test]
fn redrive_refuses_bad_targets() {
    let server = RedisServer::start();
    setup(&server);
    cmd(&server, &["SET", "text", "x"]);
    let cases: [(&[&str], &str); 3] = [
        (
            &["--to", "missing"],
            "xgroup: no stream \"missing\" to redrive to (pass --create to create it)",
        ),
        (
            &["--to", "text"],
            "xgroup: \"text\" is not a stream: it holds a string",
        ),
        (
            &["--to", "orders:dlq"],
            "xgroup: --to names the dead-letter stream itself (\"orders:dlq\")",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["dead-letters", "redrive", "orders:dlq"];
        all.extend_from_slice(args);
        assert_eq!(xgroup(&server, &all).one_line_error(), message);
    }
    assert_eq!(entries(&server, "orders:dlq").len(), 4);
}

/// Dead letters written by the library itself (a blocking consumer whose
/// handler gives up on every entry) go back with their fields as produced.
#[test]
fn redrives_what_the_library_dead_lettered() {
    use xgroup_blocking::{Consumer, DeadLetter, Disposition, Outcome};
    let server = RedisServer::start();
    let mut produced = Vec::new();
    for i in 0..5 {
        let user = format!("u{i}");
        cmd(
            &server,
            &["XADD", "jobs", "*", "user", &user, "payload", "p\u{e9}"],
        );
        produced.push(vec![format!("user={user}"), "payload=p\u{e9}".to_owned()]);
    }
    let consumer = Consumer::builder(&server.url(), "jobs", "workers", "w1")
        .configure(|c| c.max_deliveries(3, DeadLetter::Stream("jobs:dlq".into())))
        .handler_fn(|batch| {
            Outcome::Each(
                batch
                    .messages
                    .iter()
                    .map(|m| (m.id, Disposition::DeadLetter("cannot parse".into())))
                    .collect(),
            )
        })
        .build()
        .expect("consumer");
    let handle = consumer.handle();
    let running = std::thread::spawn(move || consumer.run());
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.cmd(&["XLEN", "jobs:dlq"]).as_int() != Some(5) {
        assert!(Instant::now() < deadline, "not dead-lettered");
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.stop();
    running
        .join()
        .expect("consumer thread")
        .expect("consumer run");
    let listed = xgroup(&server, &["dead-letters", "list", "jobs:dlq", "--json"]).json();
    assert_eq!(listed["entries"][0]["reason"], "cannot parse");
    assert_eq!(listed["entries"][0]["consumer"], "w1");
    assert_eq!(listed["entries"][0]["group"], "workers");
    cmd(&server, &["DEL", "jobs"]);
    xgroup(
        &server,
        &[
            "dead-letters",
            "redrive",
            "jobs:dlq",
            "--to",
            "jobs",
            "--create",
            "--no-history",
        ],
    )
    .ok();
    let back: Vec<Vec<String>> = entries(&server, "jobs")
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    assert_eq!(back, produced);
    assert_eq!(server.cmd(&["XLEN", "jobs:dlq"]), RespValue::Int(0));
}
