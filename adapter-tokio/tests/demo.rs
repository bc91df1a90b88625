//! The README's demo on a machine without Redis: it runs against xgroup's
//! in-memory model server, to its summary, with nothing lost.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use xgroup_testkit::examples::harness::build;

/// The tokio quickstart example's binary (built here: `cargo test` of one
/// test target does not rebuild examples, and the other adapters'
/// quickstarts share its file name).
fn quickstart() -> PathBuf {
    build("xgroup-tokio", "quickstart", &[])
}

#[test]
fn the_demo_runs_without_redis_against_the_model_server() {
    let start = Instant::now();
    let out = Command::new(quickstart())
        .env_remove("REDIS_URL")
        .env_remove("XGROUP_REDIS_SERVER")
        // No redis-server (nor anything else) on PATH.
        .env("PATH", "")
        .output()
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("no REDIS_URL and no redis-server on PATH: running against xgroup's in-memory model server"),
        "{stdout}"
    );
    assert!(
        stdout.contains("summary: produced=3000 processed=3000") && stdout.contains("lost=0"),
        "{stdout}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(60));
}
