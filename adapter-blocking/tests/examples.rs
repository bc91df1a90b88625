//! The blocking examples a user would copy, run as a user would (`cargo run
//! -p xgroup-blocking --example <name>`) against a private redis-server, to
//! their end, their output checked.

use std::process::Command;
use std::time::Duration;

use xgroup_testkit::examples::harness::{build, Running};
use xgroup_testkit::examples::payments;

/// Each example's run, from start to exit.
const RUN_LIMIT: Duration = Duration::from_secs(30);

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn blocking_worker_settles_every_payment_and_stops_gracefully_on_sigterm() {
    let mut command = Command::new(build("xgroup-blocking", "blocking_worker", &[]));
    command.env_remove("REDIS_URL");
    let mut run = Running::start(command);
    run.wait_for_line(
        |l| l == "all 30 payments settled; waiting for more (Ctrl-C to stop)",
        RUN_LIMIT,
    );
    run.signal("TERM");
    let (status, stdout, stderr) = run.wait(Duration::from_secs(15));
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("started a private redis-server"),
        "{stdout}"
    );
    assert!(
        stdout.contains("SIGTERM: stopping gracefully\nstopped gracefully\n"),
        "{stdout}"
    );
    let summary = format!(
        "summary: produced={} acked={} retried=15 dead_lettered={} pending=0",
        payments::PAYMENTS,
        payments::EXPECTED_ACKED,
        payments::EXPECTED_DEAD_LETTERED
    );
    assert!(stdout.contains(&summary), "{stdout}");
    assert!(
        stdout.contains("dead letters in \"payments:dead\": 8"),
        "{stdout}"
    );
    assert_eq!(
        count(&stdout, "reason: no account field (deliveries: 1)"),
        3
    );
    assert_eq!(
        count(
            &stdout,
            "reason: failed 4 times, max_deliveries reached (deliveries: 4)"
        ),
        2
    );
    assert_eq!(count(&stdout, "rate-limited, retry in 200ms"), 3);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn throughput_fills_and_drains_a_stream_on_a_cluster() {
    xgroup_testkit::examples::on_a_cluster::throughput_fills_and_drains(build(
        "xgroup-blocking",
        "throughput",
        &[],
    ));
}

#[test]
fn throughput_fills_and_drains_a_sharded_stream_on_a_cluster() {
    xgroup_testkit::examples::on_a_cluster::throughput_fills_and_drains_a_sharded_stream(build(
        "xgroup-blocking",
        "throughput",
        &[],
    ));
}

#[test]
fn worker_reads_every_stream_given() {
    xgroup_testkit::examples::on_one_server::worker_reads_every_stream_given(build(
        "xgroup-blocking",
        "worker",
        &[],
    ));
}
