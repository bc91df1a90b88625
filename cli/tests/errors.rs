//! Bad input gets one line on stderr and a non-zero exit: never a panic,
//! a backtrace or a usage screen.

mod common;

use std::net::TcpListener;

use common::{cmd, xgroup, xgroup_at};
use xgroup_testkit::RedisServer;

#[test]
fn bad_input_is_one_line_and_a_non_zero_exit() {
    let server = RedisServer::start();
    cmd(&server, &["XADD", "s", "1-0", "n", "1"]);
    cmd(&server, &["XGROUP", "CREATE", "s", "g", "0"]);
    cmd(&server, &["SET", "text", "x"]);
    let cases: [(&[&str], i32, &str); 12] = [
        (&["describe", "missing"], 1, "xgroup: no stream \"missing\": the key does not exist"),
        (&["describe", "text"], 1, "xgroup: \"text\" is not a stream: it holds a string"),
        (&["describe", "s", "--group", "nope"], 1, "xgroup: no group \"nope\" on stream \"s\""),
        (&["pending", "s", "nope"], 1, "xgroup: no group \"nope\" on stream \"s\""),
        (&["pending", "text", "g"], 1, "xgroup: \"text\" is not a stream: it holds a string"),
        (&["pending", "s", "g", "--min-idle", "5x"], 2, "xgroup: invalid value '5x' for '--min-idle <DURATION>': bad duration \"5x\": unknown unit \"x\" (use ms, s, m, h, d) (see xgroup --help)"),
        (&["pending", "s", "g", "--limit", "0"], 2, "xgroup: invalid value '0' for '--limit <LIMIT>': 0 is not in 1..18446744073709551615 (see xgroup --help)"),
        (&["dead-letters", "list", "missing"], 1, "xgroup: no stream \"missing\": the key does not exist"),
        (&["dead-letters", "redrive", "s", "--to", "t", "--rate", "fast"], 2, "xgroup: invalid value 'fast' for '--rate <N/s>': bad rate \"fast\": expected N/s or N/m (e.g. 50/s) (see xgroup --help)"),
        (&["dead-letters", "redrive", "s", "--to", "t", "--filter", "oops"], 2, "xgroup: invalid value 'oops' for '--filter <EXPR>': bad filter \"oops\": expected FIELD=VALUE or FIELD~TEXT (see xgroup --help)"),
        (&["top", "missing"], 1, "xgroup: no stream \"missing\": the key does not exist"),
        (&["frobnicate"], 2, "xgroup: unrecognized subcommand 'frobnicate' (see xgroup --help)"),
    ];
    for (args, code, message) in cases {
        let run = xgroup(&server, args);
        assert_eq!(run.one_line_error(), message, "{args:?}");
        assert_eq!(run.code, code, "{args:?}");
    }
}

#[test]
fn an_unreachable_server_is_one_line() {
    // A port nobody listens on: bound, then freed.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let url = format!("redis://user:secret@127.0.0.1:{port}/0");
    for args in [
        &["describe", "s"][..],
        &["pending", "s", "g"],
        &["top", "s"],
        &["reset", "s", "g", "--to-earliest"],
    ] {
        let run = xgroup_at(&url, args);
        let line = run.one_line_error();
        assert_eq!(run.code, 1);
        assert!(
            line.starts_with(&format!(
                "xgroup: cannot connect to redis://***@127.0.0.1:{port}/0 ("
            )),
            "{line}"
        );
        assert!(!line.contains("secret"), "{line}");
    }
    let run = xgroup_at("http://example.invalid", &["describe", "s"]);
    assert!(
        run.one_line_error().starts_with("xgroup: bad --url: "),
        "{run:?}"
    );
}

#[test]
fn top_without_a_terminal_says_so() {
    let server = RedisServer::start();
    cmd(&server, &["XADD", "s", "1-0", "n", "1"]);
    let run = xgroup(&server, &["top", "s"]);
    assert_eq!(
        run.one_line_error(),
        "xgroup: top needs a terminal (standard output is not one); see describe --json for scripts"
    );
}

#[test]
fn help_and_version_succeed() {
    let run = xgroup_at("redis://127.0.0.1:1", &["--help"]);
    assert_eq!(run.code, 0);
    for sub in ["describe", "pending", "dead-letters", "reset", "top"] {
        assert!(
            run.stdout.contains(sub),
            "{sub} not in --help: {}",
            run.stdout
        );
    }
    let run = xgroup_at("redis://127.0.0.1:1", &["--version"]);
    assert_eq!(
        run.stdout,
        format!("xgroup {}\n", env!("CARGO_PKG_VERSION"))
    );
}
