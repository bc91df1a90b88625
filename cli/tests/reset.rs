//! `xgroup reset` against a real server.

mod common;

use common::{cmd, xgroup};
use xgroup_testkit::RedisServer;

/// Entries at 12:00:00.000, 12:00:00.999, 12:00:01.000, 12:00:01.001 and
/// 12:00:02.000 on 2024-05-01; group g has read the first three.
fn setup(server: &RedisServer) {
    for (ms, n) in [(0, "a"), (999, "b"), (1000, "c"), (1001, "d"), (2000, "e")] {
        let id = format!("{}-0", 1_714_564_800_000u64 + ms);
        cmd(server, &["XADD", "s", &id, "n", n]);
    }
    cmd(server, &["XGROUP", "CREATE", "s", "g", "0"]);
    cmd(
        server,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "3",
            "STREAMS",
            "s",
            ">",
        ],
    );
}

fn last_delivered(server: &RedisServer) -> String {
    let info = server.cmd(&["XINFO", "GROUPS", "s"]);
    let g = info
        .as_array()
        .and_then(|g| g.first())
        .and_then(|g| g.as_array())
        .expect("group");
    let at = g
        .iter()
        .position(|v| v.as_str() == Some("last-delivered-id"))
        .expect("field");
    g[at + 1].as_str().expect("id").to_owned()
}

/// What the group reads next.
fn next_read(server: &RedisServer) -> Vec<String> {
    let reply = server.cmd(&["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"]);
    reply
        .as_array()
        .and_then(|s| s.first())
        .and_then(|s| s.as_array())
        .and_then(|s| s.get(1))
        .and_then(|e| e.as_array())
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    e.as_array().expect("entry")[1].as_array().expect("fields")[1]
                        .as_str()
                        .expect("n")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn dry_run_by_default() {
    let server = RedisServer::start();
    setup(&server);
    let out = xgroup(
        &server,
        &["reset", "s", "g", "--to-datetime", "2024-05-01T12:00:01Z"],
    );
    insta::assert_snapshot!(out.ok(), @r"
    group g of stream s
      last delivered now    1714564801000-0  2024-05-01T12:00:01.000Z
      last delivered after  1714564800999-18446744073709551615  2024-05-01T12:00:00.999Z
      entries re-read       1 (1714564801000-0 .. 1714564801000-0)
      pending               3 (a reset leaves pending entries as they are)
    dry run: nothing changed; add --execute to apply
    ");
    assert_eq!(last_delivered(&server), "1714564801000-0");
    let out = xgroup(&server, &["reset", "s", "g", "--to-latest"]);
    insta::assert_snapshot!(out.ok(), @r"
    group g of stream s
      last delivered now    1714564801000-0  2024-05-01T12:00:01.000Z
      last delivered after  1714564802000-0  2024-05-01T12:00:02.000Z
      entries skipped       2 (1714564801001-0 .. 1714564802000-0) (the group will not read these)
      pending               3 (a reset leaves pending entries as they are)
    dry run: nothing changed; add --execute to apply
    ");
    let out = xgroup(&server, &["reset", "s", "g", "--to-id", "1714564801000-0"]);
    assert_eq!(
        out.ok(),
        "group g of stream s\n  last delivered now    1714564801000-0  2024-05-01T12:00:01.000Z\n  \
         last delivered after  1714564801000-0  2024-05-01T12:00:01.000Z\n  \
         no change: the group is already there\n  \
         pending               3 (a reset leaves pending entries as they are)\n"
    );
    assert_eq!(last_delivered(&server), "1714564801000-0");
}

/// A time maps exactly: after `--to-datetime T`, the group reads the
/// entries from T on (T itself included, the millisecond before not).
#[test]
fn to_datetime_maps_exactly() {
    let server = RedisServer::start();
    setup(&server);
    let doc = xgroup(
        &server,
        &[
            "reset",
            "s",
            "g",
            "--to-datetime",
            "2024-05-01T14:00:00.999+02:00",
            "--execute",
            "--json",
        ],
    )
    .json();
    assert_eq!(doc["executed"], true);
    assert_eq!(doc["direction"], "re-read");
    assert_eq!(doc["entries"], 2);
    assert_eq!(doc["to_id"], "1714564800998-18446744073709551615");
    assert_eq!(
        last_delivered(&server),
        "1714564800998-18446744073709551615"
    );
    assert_eq!(next_read(&server), ["b", "c", "d", "e"]);
}

/// Arguments, direction, entries counted, new last-delivered id, what the
/// group reads next.
type Case<'a> = (&'a [&'a str], &'a str, u64, &'a str, &'a [&'a str]);

#[test]
fn each_target() {
    let cases: [Case; 4] = [
        (
            &["--to-earliest"],
            "re-read",
            3,
            "0-0",
            &["a", "b", "c", "d", "e"],
        ),
        (&["--to-latest"], "skip", 2, "1714564802000-0", &[]),
        (
            &["--to-id", "1714564800000-0"],
            "re-read",
            2,
            "1714564800000-0",
            &["b", "c", "d", "e"],
        ),
        // An hour ago is after every entry (they are from 2024): the rest
        // is skipped.
        (&["--by-duration", "1h"], "skip", 2, "", &[]),
    ];
    for (args, direction, entries, to_id, reads) in cases {
        let server = RedisServer::start();
        setup(&server);
        let mut all = vec!["reset", "s", "g", "--json", "--execute"];
        all.extend_from_slice(args);
        let doc = xgroup(&server, &all).json();
        assert_eq!(doc["direction"], direction, "{args:?}: {doc}");
        assert_eq!(doc["entries"], entries, "{args:?}: {doc}");
        assert_eq!(doc["entries_exact"], true);
        if !to_id.is_empty() {
            assert_eq!(doc["to_id"], to_id, "{args:?}");
            assert_eq!(last_delivered(&server), to_id);
        }
        assert_eq!(next_read(&server), reads, "{args:?}");
    }
}

#[test]
fn bad_resets_fail_in_one_line() {
    let server = RedisServer::start();
    setup(&server);
    let cases: [(&[&str], &str); 4] = [
        (&["s", "nope", "--to-earliest"], "xgroup: no group \"nope\" on stream \"s\""),
        (&["missing", "g", "--to-earliest"], "xgroup: no stream \"missing\": the key does not exist"),
        (&["s", "g", "--to-id", "12-x"], "xgroup: invalid value '12-x' for '--to-id <ID>': bad stream id \"12-x\": expected <ms>-<seq> (e.g. 1714564800000-0) (see xgroup --help)"),
        (&["s", "g", "--by-duration", "10"], "xgroup: invalid value '10' for '--by-duration <DURATION>': bad duration \"10\": a unit is needed after 10 (ms, s, m, h, d) (see xgroup --help)"),
    ];
    for (args, message) in cases {
        let mut all = vec!["reset"];
        all.extend_from_slice(args);
        assert_eq!(xgroup(&server, &all).one_line_error(), message);
    }
    let none = xgroup(&server, &["reset", "s", "g"]);
    assert!(none.one_line_error().contains("--to-datetime"), "{none:?}");
    let two = xgroup(
        &server,
        &["reset", "s", "g", "--to-earliest", "--to-latest"],
    );
    assert_eq!(two.code, 2);
    two.one_line_error();
    assert_eq!(last_delivered(&server), "1714564801000-0");
}
