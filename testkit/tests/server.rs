//! `RedisServer` against the real `redis-server` (or `$XGROUP_REDIS_SERVER`).

use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::time::{Duration, Instant};

use xgroup_testkit::{RedisServer, RespValue};

fn ok() -> RespValue {
    RespValue::Simple("OK".into())
}

#[test]
fn starts_answers_ping_and_reports_version() {
    let server = RedisServer::start();
    assert_ne!(server.port(), 6379);
    assert_eq!(server.addr().port(), server.port());
    assert_eq!(server.url(), format!("redis://127.0.0.1:{}", server.port()));
    assert!(server.is_running());
    assert_eq!(server.cmd(&["PING"]), RespValue::Simple("PONG".into()));
    let version = server.version();
    assert!(
        version.starts_with("redis ") || version.starts_with("valkey "),
        "{version}"
    );
    assert!(version.chars().any(|c| c.is_ascii_digit()), "{version}");
    assert!(server.data_dir().is_dir());

    // A few reply shapes through `cmd`.
    assert_eq!(server.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(server.cmd(&["GET", "k"]).as_str(), Some("v"));
    assert!(server.cmd(&["GET", "missing"]).is_nil());
    assert!(server.cmd(&["XADD", "s", "*", "f", "v"]).as_str().is_some());
    assert_eq!(server.cmd(&["XLEN", "s"]).as_int(), Some(1));
    assert!(server.cmd(&["XGROUP", "CREATE", "s", "g", "0"]) == ok());
    let read = server.cmd(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]);
    assert_eq!(read.as_array().map(<[_]>::len), Some(1), "{read:?}");
    let pending = server.cmd(&["XPENDING", "s", "g"]);
    assert_eq!(pending.as_array().unwrap()[0].as_int(), Some(1));
    assert!(server.cmd(&["NOSUCHCOMMAND"]).is_error());
}

#[test]
fn aof_survives_kill_and_restart() {
    let mut server = RedisServer::builder()
        .aof(true)
        .appendfsync_always(true)
        .start();
    let port = server.port();
    assert_eq!(server.cmd(&["SET", "durable", "yes"]), ok());
    server.cmd(&["XADD", "s", "1-1", "f", "v"]);

    server.kill();
    assert!(!server.is_running());
    assert!(server.try_cmd(&["PING"]).is_err());

    server.restart();
    assert_eq!(server.port(), port);
    assert!(server.is_running());
    assert_eq!(server.cmd(&["GET", "durable"]).as_str(), Some("yes"));
    assert_eq!(server.cmd(&["XLEN", "s"]).as_int(), Some(1));
}

#[test]
fn without_aof_data_is_gone_after_kill_and_restart() {
    let mut server = RedisServer::start();
    assert_eq!(server.cmd(&["SET", "volatile", "1"]), ok());
    server.kill();
    server.restart();
    assert!(server.cmd(&["GET", "volatile"]).is_nil());
}

#[test]
fn stop_then_restart_on_the_same_port() {
    let mut server = RedisServer::builder().aof(true).start();
    let port = server.port();
    server.cmd(&["SET", "k", "v"]);
    // An open client connection must not keep the port from being reused.
    let mut client = server.connect().unwrap();
    assert_eq!(client.cmd(&["PING"]).unwrap().as_str(), Some("PONG"));

    server.stop();
    assert!(!server.is_running());
    assert!(client.cmd(&["PING"]).is_err());
    server.stop(); // idempotent

    server.restart();
    assert_eq!(server.port(), port);
    // Graceful SHUTDOWN flushed the AOF (fsync every second otherwise).
    assert_eq!(server.cmd(&["GET", "k"]).as_str(), Some("v"));

    // restart() of a running server stops it first.
    server.restart();
    assert_eq!(server.cmd(&["GET", "k"]).as_str(), Some("v"));
}

#[test]
fn password_server_authenticates() {
    let server = RedisServer::builder().password(Some("s3cret/pw")).start();
    assert_eq!(server.password(), Some("s3cret/pw"));
    assert_eq!(
        server.url(),
        format!("redis://:s3cret%2Fpw@127.0.0.1:{}", server.port())
    );
    assert_eq!(server.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(server.cmd(&["GET", "k"]).as_str(), Some("v"));

    // Without AUTH the server refuses.
    let mut anonymous = xgroup_testkit::RespConnection::connect(server.addr()).unwrap();
    let reply = anonymous.cmd(&["GET", "k"]).unwrap();
    assert!(
        reply.as_error().is_some_and(|e| e.starts_with("NOAUTH")),
        "{reply:?}"
    );
    // A wrong password is reported as an error.
    let err = xgroup_testkit::RespConnection::connect_with_password(server.addr(), Some("wrong"))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
}

#[test]
fn extra_args_are_passed() {
    let server = RedisServer::builder()
        .extra_args(&["--maxmemory", "12345678"])
        .start();
    let reply = server.cmd(&["CONFIG", "GET", "maxmemory"]);
    assert_eq!(reply.as_array().unwrap()[1].as_str(), Some("12345678"));
}

#[test]
fn drop_kills_the_server_and_removes_its_dir() {
    let server = RedisServer::start();
    let dir = server.data_dir().to_path_buf();
    let addr = server.addr();
    drop(server);
    assert!(!dir.exists());
    assert!(xgroup_testkit::RespConnection::connect(addr).is_err());
}

#[test]
fn missing_binary_panics_with_a_clear_message() {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        RedisServer::builder().binary("/nonexistent").start()
    }));
    let payload = result.expect_err("start must panic without a binary");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        message.starts_with("no redis-server found: install one (`apt-get install redis-server`) or set XGROUP_REDIS_SERVER to a redis-server/valkey-server binary"),
        "{message}"
    );
    assert!(message.contains("/nonexistent"), "{message}");
}

#[test]
fn bad_arguments_panic_with_the_log() {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        RedisServer::builder()
            .extra_args(&["--no-such-option", "1"])
            .start()
    }));
    let payload = result.expect_err("start must panic on a bad option");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("exited during startup"), "{message}");
    assert!(message.contains("no-such-option"), "{message}");
}

#[test]
fn restart_waits_for_its_port_to_be_free() {
    let mut server = RedisServer::start();
    server.kill();
    // Someone else holds the port for a while: restart retries until it is free.
    let squatter = std::net::TcpListener::bind(server.addr()).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        drop(squatter);
    });
    server.restart();
    release.join().unwrap();
    assert_eq!(server.cmd(&["PING"]), RespValue::Simple("PONG".into()));
}

/// Set for the child process of `kill_on_exit_outlives_no_process`.
const EXIT_HELPER_ENV: &str = "XGROUP_TESTKIT_EXIT_HELPER";

/// Run in a child process by `kill_on_exit_outlives_no_process`: starts a
/// server, prints where it is and exits without dropping it.
#[test]
#[ignore = "run in a child process by kill_on_exit_outlives_no_process"]
fn kill_on_exit_helper() {
    if std::env::var_os(EXIT_HELPER_ENV).is_none() {
        return;
    }
    let server = RedisServer::builder().kill_on_exit(true).start();
    println!("port={} dir={}", server.port(), server.data_dir().display());
    std::io::stdout().flush().unwrap();
    std::mem::forget(server);
    std::process::exit(0);
}

#[test]
fn kill_on_exit_outlives_no_process() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_on_exit_helper", "--ignored", "--nocapture"])
        .env(EXIT_HELPER_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("port="))
        .unwrap_or_else(|| panic!("the helper printed no port: {output:?}"));
    let (port, dir) = line.split_once(" dir=").unwrap();
    let port: u16 = port.trim_start_matches("port=").parse().unwrap();
    let dir = std::path::PathBuf::from(dir);
    // The helper has exited: its watchdog kills the server, removes its dir.
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    while xgroup_testkit::RespConnection::connect(addr).is_ok() || dir.exists() {
        assert!(
            Instant::now() < deadline,
            "the server on {port} (dir {}) outlived the process that started it",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
