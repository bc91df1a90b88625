//! Resource bounds of the tokio adapter, black-box through its examples
//! (built in release from here, each copied right after its build since every
//! adapter's examples share output names). Needs only a redis-server.
//!
//! - memory: draining a backlog of 1,000,000 messages peaks within 8 MB of
//!   draining one of 200,000 (memory must not grow with the backlog);
//! - no spin: the `worker` example against a closed port burns < 0.3 s of CPU
//!   in 3 s, and exits 0 within 10 s of a SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xgroup_bench::{parse_report, procfs, watch};
use xgroup_testkit::RedisServer;

/// Entries beyond what a drain consumes, so that the read kept in flight
/// finds data instead of blocking for a second before the graceful stop.
const HEADROOM: u64 = 10_000;
const MB: f64 = 1024.0 * 1024.0;

/// The target directory this test was built into (`<target>/debug/deps/<exe>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .expect("exe under <target>/<profile>/deps")
        .to_path_buf()
}

/// Builds xgroup-tokio's example `name` in release and copies it into `dir`
/// right away (the other adapters' examples share its output name).
fn build_example(name: &str, dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let target = target_dir();
    let status = Command::new(cargo)
        .args(["build", "--release", "-j", "2", "-q", "-p", "xgroup-tokio"])
        .args(["--example", name])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(workspace)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the {name} example failed");
    let copy = dir.join(format!("{name}-tokio"));
    std::fs::copy(target.join("release/examples").join(name), &copy).expect("copy the example");
    copy
}

fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("xgroup-bench-{tag}-"))
        .tempdir()
        .expect("temp dir")
}

fn throughput(bin: &Path, url: &str, stream: &str, group: &str, messages: u64) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["--url", url, "--stream", stream, "--group", group])
        .args(["--consumer", "c", "--count", "1000"])
        .args(["--messages", &messages.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

/// Fills `stream` with `messages` + headroom, then drains `messages` in a
/// fresh process, returning its peak RSS in bytes.
fn drain_peak(bin: &Path, url: &str, stream: &str, messages: u64) -> u64 {
    let fill = throughput(bin, url, stream, "fill", messages + HEADROOM)
        .arg("--fill")
        .output()
        .expect("run the fill");
    assert!(fill.status.success(), "fill of {stream} failed");

    let started = Instant::now();
    let mut child = throughput(bin, url, stream, "drain", messages)
        .spawn()
        .expect("run the drain");
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let (status, usage) = watch(&mut child, started, Duration::from_millis(20)).expect("watch");
    let out = reader.join().expect("reader");
    assert!(status.success(), "drain of {stream} failed: {out}");
    let last = out.lines().last().unwrap_or_default();
    let (consumed, _, rate) = parse_report(last).expect("a rate line");
    assert!(consumed >= messages, "{last}");
    eprintln!(
        "  drained {consumed} at {rate:.0} msgs/s, peak RSS {:.1} MB",
        usage.peak_rss as f64 / MB
    );
    usage.peak_rss
}

#[test]
fn memory_does_not_grow_with_the_backlog() {
    let dir = temp_dir("mem");
    let bin = build_example("throughput", dir.path());
    let server = RedisServer::start();
    let url = server.url();
    let small = drain_peak(&bin, &url, "backlog-200k", 200_000);
    let large = drain_peak(&bin, &url, "backlog-1m", 1_000_000);
    println!(
        "resources: memory: peak RSS draining 200k = {:.1} MB, 1M = {:.1} MB (growth {:+.1} MB, limit +8 MB)",
        small as f64 / MB,
        large as f64 / MB,
        (large as f64 - small as f64) / MB
    );
    assert!(
        large <= small + 8 * 1024 * 1024,
        "peak RSS grew with the backlog: {small} -> {large} bytes"
    );
}

fn sigterm(child: &Child) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our child.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill(SIGTERM)");
}

/// The child's exit status if it exits within `limit`; else it is killed
/// (and reaped) and the answer is `None`.
fn exit_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn no_spin_while_the_server_is_down() {
    let dir = temp_dir("spin");
    let bin = build_example("worker", dir.path());
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }; // closed again: nothing listens there
    let url = format!("redis://127.0.0.1:{port}");
    let mut child = Command::new(&bin)
        .args([
            "--url",
            &url,
            "--stream",
            "s",
            "--group",
            "g",
            "--consumer",
            "c",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the worker");
    std::thread::sleep(Duration::from_secs(3));
    let stat = procfs::stat(child.id()).expect("worker's /proc stat");
    let alive = stat.state != 'Z';
    let cpu = stat.cpu.as_secs_f64();

    let stop = Instant::now();
    if alive {
        sigterm(&child);
    }
    let exit = exit_within(&mut child, Duration::from_secs(10));
    println!(
        "resources: no spin: worker used {cpu:.2} s CPU in 3 s against a closed port (limit 0.3 s); \
         SIGTERM -> {} after {:.2} s (limit 10 s)",
        exit.map_or("no exit".to_string(), |s| s.to_string()),
        stop.elapsed().as_secs_f64()
    );
    assert!(
        alive,
        "the worker exited on its own ({exit:?}) while the server was down"
    );
    assert!(cpu < 0.3, "the worker spun: {cpu:.2} s CPU in 3 s");
    let exit = exit.expect("the worker did not exit within 10 s of SIGTERM");
    assert!(exit.success(), "the worker's exit after SIGTERM: {exit}");
}
