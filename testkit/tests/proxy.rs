//! `FaultProxy` in front of a real server.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use xgroup_testkit::{FaultProxy, RedisServer, RespConnection, RespValue};

fn pong() -> RespValue {
    RespValue::Simple("PONG".into())
}

/// Polls `cond` for up to 5 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A read that fails or hits EOF (not a timeout) within 2 s.
fn assert_closed(conn: &mut RespConnection) {
    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let err = conn
        .cmd(&["PING"])
        .expect_err("the connection must be closed");
    assert!(
        !matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "expected EOF or reset, got a timeout: {err}"
    );
}

#[test]
fn forwards_commands() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    assert_eq!(proxy.upstream(), server.addr());
    assert_eq!(proxy.url(), format!("redis://127.0.0.1:{}", proxy.port()));
    assert_eq!(proxy.addr().port(), proxy.port());

    let mut conn = RespConnection::connect(proxy.addr()).unwrap();
    assert_eq!(conn.cmd(&["PING"]).unwrap(), pong());
    assert_eq!(conn.cmd(&["SET", "k", "v"]).unwrap().as_str(), Some("OK"));
    // A big value crosses several reads.
    let big = "x".repeat(1 << 20);
    conn.cmd(&["SET", "big", &big]).unwrap();
    assert_eq!(
        conn.cmd(&["GET", "big"])
            .unwrap()
            .as_bytes()
            .map(<[u8]>::len),
        Some(1 << 20)
    );
    assert_eq!(server.cmd(&["GET", "k"]).as_str(), Some("v"));
    assert_eq!(proxy.connections(), 1);

    // A client that goes away is unregistered.
    drop(conn);
    eventually("the connection to close", || proxy.connections() == 0);
}

#[test]
fn cut_all_closes_current_connections_only() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let mut a = RespConnection::connect(proxy.addr()).unwrap();
    let mut b = RespConnection::connect(proxy.addr()).unwrap();
    assert_eq!(a.cmd(&["PING"]).unwrap(), pong());
    assert_eq!(b.cmd(&["PING"]).unwrap(), pong());
    assert_eq!(proxy.connections(), 2);

    assert_eq!(proxy.cut_all(), 2);
    assert_eq!(proxy.connections(), 0);
    assert_closed(&mut a);
    assert_closed(&mut b);

    // The upstream side was closed too.
    eventually("the server to see the clients go", || {
        let clients = server.cmd(&["CLIENT", "LIST"]);
        clients.as_str().unwrap().lines().count() == 1
    });

    let mut c = RespConnection::connect(proxy.addr()).unwrap();
    assert_eq!(c.cmd(&["PING"]).unwrap(), pong());
    assert_eq!(proxy.cut_all(), 1);
    assert_eq!(proxy.cut_all(), 0);
}

#[test]
fn refusing_closes_new_connections_at_once() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let mut old = RespConnection::connect(proxy.addr()).unwrap();
    assert_eq!(old.cmd(&["PING"]).unwrap(), pong());

    proxy.set_refusing(true);
    let mut raw = TcpStream::connect(proxy.addr()).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 16];
    match raw.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("read {n} bytes from a refused connection"),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "expected EOF or reset, got a timeout: {e}"
        ),
    }
    let mut refused = RespConnection::connect(proxy.addr()).unwrap();
    assert_closed(&mut refused);
    // Existing connections are left alone.
    assert_eq!(old.cmd(&["PING"]).unwrap(), pong());

    proxy.set_refusing(false);
    let mut new = RespConnection::connect(proxy.addr()).unwrap();
    assert_eq!(new.cmd(&["PING"]).unwrap(), pong());
}

#[test]
fn pause_stalls_without_closing() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let mut conn = RespConnection::connect(proxy.addr()).unwrap();
    assert_eq!(conn.cmd(&["PING"]).unwrap(), pong());

    proxy.pause(true);
    conn.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    conn.send(&["INCR", "n"]).unwrap();
    let err = conn.read_reply().expect_err("no reply while paused");
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    // The command did not reach the server.
    assert!(server.cmd(&["GET", "n"]).is_nil());
    assert_eq!(proxy.connections(), 1);

    proxy.pause(false);
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(conn.read_reply().unwrap().as_int(), Some(1));
}

#[test]
fn server_down_behind_the_proxy() {
    let mut server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let mut conn = RespConnection::connect(proxy.addr()).unwrap();
    assert_eq!(conn.cmd(&["PING"]).unwrap(), pong());

    server.kill();
    assert_closed(&mut conn);
    eventually("the proxy to drop the connection", || {
        proxy.connections() == 0
    });
    // New connections are closed since the upstream refuses them.
    let mut refused = RespConnection::connect(proxy.addr()).unwrap();
    assert_closed(&mut refused);

    server.restart();
    let mut conn = RespConnection::connect(proxy.addr()).unwrap();
    assert_eq!(conn.cmd(&["PING"]).unwrap(), pong());
}

#[test]
fn drop_closes_everything() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let addr = proxy.addr();
    let mut conn = RespConnection::connect(addr).unwrap();
    assert_eq!(conn.cmd(&["PING"]).unwrap(), pong());
    proxy.pause(true);

    let started = Instant::now();
    drop(proxy);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_closed(&mut conn);
    assert!(TcpStream::connect(addr).is_err());
}
