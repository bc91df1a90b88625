//! The tokio examples a user would copy, run as a user would (`cargo run -p
//! xgroup-tokio --example <name>`) against a private redis-server, to their
//! end, their output checked.

use std::process::Command;
use std::time::{Duration, Instant};

use xgroup_testkit::examples::harness::{build, Running};
use xgroup_testkit::examples::{payments, web_service};

/// Each example's run, from start to exit.
const RUN_LIMIT: Duration = Duration::from_secs(30);

fn example(name: &str) -> Command {
    let mut command = Command::new(build("xgroup-tokio", name, &[]));
    command.env_remove("REDIS_URL");
    command
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn per_message_acks_retries_and_dead_letters_every_payment() {
    let run = Running::start(example("per_message"));
    let start = Instant::now();
    let (status, stdout, stderr) = run.wait(RUN_LIMIT);
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(start.elapsed() < RUN_LIMIT);
    assert!(
        stdout.starts_with("started a private redis-server"),
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
    // Each dead letter with its reason: the handler's and the consumer's.
    assert_eq!(
        count(&stdout, "reason: no account field (deliveries: 1)"),
        3
    );
    assert_eq!(
        count(
            &stdout,
            "reason: amount_cents \"12,50\" is not a whole number (deliveries: 1)"
        ),
        3
    );
    assert_eq!(
        count(&stdout, "account=acct-down amount_cents="),
        2,
        "{stdout}"
    );
    assert_eq!(
        count(
            &stdout,
            "reason: failed 4 times, max_deliveries reached (deliveries: 4)"
        ),
        2
    );
    // Retried: the flaky account's timeouts and the rate limits.
    assert_eq!(
        count(&stdout, "(attempt 3): the payment provider timed out"),
        0
    );
    assert_eq!(
        count(&stdout, "(attempt 2): the payment provider timed out"),
        3
    );
    assert_eq!(count(&stdout, "rate-limited, retry in 200ms"), 3);
    assert_eq!(count(&stdout, "no deliveries left: dead-lettered"), 2);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn web_service_self_test_posts_orders_and_reports_health() {
    let mut command = example("web_service");
    command.arg("--self-test");
    let (status, stdout, stderr) = Running::start(command).wait(RUN_LIMIT);
    assert!(status.success(), "{stdout}\n{stderr}");
    let orders = web_service::ORDERS as usize;
    assert_eq!(
        count(&stdout, "POST /orders -> 202 {\"id\":\""),
        orders,
        "{stdout}"
    );
    assert_eq!(
        count(&stdout, "POST /orders -> 400 {\"error\":"),
        1,
        "{stdout}"
    );
    assert_eq!(count(&stdout, "fulfilled order "), orders, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "GET /health -> 200 {{\"acked\":{orders},\"connected\":true,"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("\"group_pending\":0,"), "{stdout}");
    assert!(
        stdout.contains("GET /health -> 503 {\"acked\":5,\"connected\":false,"),
        "{stdout}"
    );
    assert!(
        stdout.contains("self-test passed\nstopped gracefully"),
        "{stdout}"
    );
}

#[test]
fn web_service_stops_gracefully_on_sigterm() {
    let mut command = example("web_service");
    command.args(["--addr", "127.0.0.1:0"]);
    let mut run = Running::start(command);
    let listening = run.wait_for_line(|l| l.starts_with("listening on http://"), RUN_LIMIT);
    let addr = listening["listening on http://".len()..]
        .split(':')
        .take(2)
        .collect::<Vec<_>>()
        .join(":")
        .parse()
        .expect("the address listened on");
    let order = r#"{"user":"u7","item":"lamp","qty":1}"#;
    let (status, body) = web_service::request(addr, "POST", "/orders", order).expect("POST");
    assert_eq!(status, 202, "{body}");
    run.wait_for_line(|l| l.ends_with(": 1 x lamp for u7"), RUN_LIMIT);
    let (status, body) = web_service::request(addr, "GET", "/health", "").expect("GET");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"connected\":true"), "{body}");
    run.signal("TERM");
    let (status, stdout, stderr) = run.wait(Duration::from_secs(15));
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.ends_with("stopping: the consumer finishes the orders in hand\nstopped gracefully"),
        "{stdout}"
    );
}

#[test]
fn throughput_fills_and_drains_a_stream_on_a_cluster() {
    xgroup_testkit::examples::on_a_cluster::throughput_fills_and_drains(build(
        "xgroup-tokio",
        "throughput",
        &[],
    ));
}

#[test]
fn throughput_fills_and_drains_a_sharded_stream_on_a_cluster() {
    xgroup_testkit::examples::on_a_cluster::throughput_fills_and_drains_a_sharded_stream(build(
        "xgroup-tokio",
        "throughput",
        &[],
    ));
}

#[test]
fn worker_reads_every_stream_given() {
    xgroup_testkit::examples::on_one_server::worker_reads_every_stream_given(build(
        "xgroup-tokio",
        "worker",
        &[],
    ));
}
