//! `top` drawn into ratatui's `TestBackend`: from samples made here (the
//! whole screen checked) and from a real server.

mod common;

use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use xgroup_cli::describe::ConsumerReport;
use xgroup_cli::redis::{Liveness, Redis};
use xgroup_cli::top::{render, sample, GroupSample, Sample, TopState};
use xgroup_testkit::RedisServer;

fn screen(state: &TopState, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|f| render(f, state)).expect("draw");
    let buffer = terminal.backend().buffer();
    let mut lines = Vec::new();
    for y in 0..height {
        let line: String = (0..width).map(|x| buffer[(x, y)].symbol()).collect();
        lines.push(line.trim_end().to_owned());
    }
    lines.join("\n")
}

fn consumer(name: &str, state: Liveness, pending: u64, idle_ms: u64) -> ConsumerReport {
    ConsumerReport {
        name: name.into(),
        state,
        pending,
        idle_ms,
        inactive_ms: None,
    }
}

fn sample_at(i: u64) -> Sample {
    Sample {
        at_ms: 1_714_564_800_000 + i * 1000,
        length: 1000 + 50 * i,
        entries_added: Some(1000 + 50 * i),
        groups: vec![
            GroupSample {
                name: "processors".into(),
                lag: [0, 40, 80, 120, 60, 20][i as usize],
                lag_exact: true,
                entries_read: Some(1000 + 50 * i - [0, 40, 80, 120, 60, 20][i as usize]),
                pending: [2, 5, 9, 12, 7, 3][i as usize],
                consumers: vec![
                    consumer("proc-1", Liveness::Alive, 2, 150),
                    consumer("proc-2", Liveness::Dead, 1, 75_000),
                    consumer("proc-2~xgroup-released", Liveness::Released, 0, 4_000),
                ],
            },
            GroupSample {
                name: "audit".into(),
                lag: 10_000,
                lag_exact: false,
                entries_read: None,
                pending: 0,
                consumers: vec![],
            },
        ],
    }
}

#[test]
fn renders_rates_sparklines_and_consumers() {
    let mut state = TopState::new(
        "orders",
        "redis://user:pw@10.0.0.1:6379/0",
        Duration::from_secs(1),
        None,
    );
    for i in 0..6 {
        state.push(sample_at(i));
    }
    assert_eq!(state.rate_in(), Some(50.0));
    assert_eq!(state.rate_out("processors"), Some(90.0));
    assert_eq!(state.rate_out("audit"), None);
    insta::assert_snapshot!(screen(&state, 80, 24));
    // Tab: the next group.
    state.select(1);
    let next = screen(&state, 80, 24);
    assert!(next.contains(" lag audit: >=10000 "), "{next}");
    assert!(next.contains("consumers audit"), "{next}");
    state.select(1);
    assert!(screen(&state, 80, 24).contains("consumers processors"));
    // An error is shown, the last sample kept.
    state.set_error("cannot reach the server: connection refused".into());
    let failed = screen(&state, 80, 24);
    assert!(
        failed.contains(" error: cannot reach the server: connection refused (retrying)"),
        "{failed}"
    );
    assert!(failed.contains("proc-1"), "{failed}");
}

#[test]
fn renders_a_real_server() {
    let server = RedisServer::start();
    for i in 0..20 {
        common::cmd(&server, &["XADD", "orders", "*", "n", &i.to_string()]);
    }
    common::cmd(&server, &["XGROUP", "CREATE", "orders", "processors", "0"]);
    common::cmd(
        &server,
        &[
            "XREADGROUP",
            "GROUP",
            "processors",
            "c1",
            "COUNT",
            "5",
            "STREAMS",
            "orders",
            ">",
        ],
    );
    let mut redis = Redis::connect(&server.url(), None).expect("connect");
    let mut state = TopState::new(
        "orders",
        &server.url(),
        Duration::from_secs(1),
        Some("processors"),
    );
    state.push(sample(&mut redis, "orders").expect("sample"));
    for i in 0..10 {
        common::cmd(&server, &["XADD", "orders", "*", "n", &i.to_string()]);
    }
    std::thread::sleep(Duration::from_millis(200));
    state.push(sample(&mut redis, "orders").expect("sample"));
    let rate = state.rate_in().expect("a rate in");
    assert!(rate > 0.0, "{rate}");
    let text = screen(&state, 80, 24);
    assert!(text.contains(" length 30   in "), "{text}");
    assert!(text.contains(" lag processors: 25 "), "{text}");
    assert!(text.contains(" pending processors: 5 "), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("│c1"))
        .expect("a row for c1");
    assert!(row.contains("dead") && row.contains(" 5 "), "{row}");
    let groups = text
        .lines()
        .find(|l| l.contains("> processors"))
        .expect("the group row");
    assert!(
        groups.contains(" 25 ") && groups.contains("0/1"),
        "{groups}"
    );
}
