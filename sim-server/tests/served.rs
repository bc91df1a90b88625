//! The model server over real sockets.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use xgroup_sim::SimServer;

fn client(server: &SimServer) -> TcpStream {
    let s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Sends one command (inline form) and reads until `want` bytes arrived.
fn call(s: &mut TcpStream, command: &str, want: usize) -> String {
    s.write_all(format!("{command}\r\n").as_bytes()).unwrap();
    read_n(s, want)
}

fn read_n(s: &mut TcpStream, want: usize) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want {
        let n = s.read(&mut buf).expect("a reply in time");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

#[test]
fn answers_like_redis_and_names_what_it_does_not_model() {
    let server = SimServer::start().unwrap();
    assert!(server.url().starts_with("redis://127.0.0.1:"));
    let mut c = client(&server);
    assert_eq!(call(&mut c, "PING", 7), "+PONG\r\n");
    let unknown = "-ERR unknown command 'GEOADD', with args beginning with: 'k' \r\n";
    assert_eq!(call(&mut c, "GEOADD k", unknown.len()), unknown);
    let info = call(&mut c, "INFO server", 10);
    assert!(info.starts_with('$'), "{info}");
}

#[test]
fn a_blocked_read_wakes_on_another_clients_xadd_and_times_out_on_real_time() {
    let server = SimServer::start().unwrap();
    let (mut reader, mut producer) = (client(&server), client(&server));
    assert_eq!(
        call(&mut reader, "XGROUP CREATE s g $ MKSTREAM", 5),
        "+OK\r\n"
    );
    reader
        .write_all(b"XREADGROUP GROUP g c BLOCK 5000 STREAMS s >\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let id = call(&mut producer, "XADD s 5-1 k v", 9);
    assert_eq!(id, "$3\r\n5-1\r\n");
    let woke = read_n(&mut reader, 20);
    assert!(woke.starts_with("*1\r\n*2\r\n$1\r\ns\r\n"), "{woke}");
    // Nothing more: a BLOCK of 200 ms runs out on the real clock.
    let start = Instant::now();
    let nil = call(&mut reader, "XREADGROUP GROUP g c BLOCK 200 STREAMS s >", 5);
    assert_eq!(nil, "*-1\r\n");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(190), "{took:?}");
    assert_eq!(
        server.with_model(|m| m.pending(b"s", b"g").len()),
        1,
        "the woken read's entry is pending"
    );
}

#[test]
fn cut_clients_are_gone_for_the_model_and_a_dropped_server_stops() {
    let server = SimServer::builder().password(None, "pw").start().unwrap();
    assert!(server.url().contains(":pw@"));
    let mut c = client(&server);
    let refused = call(&mut c, "PING", 8);
    assert!(refused.starts_with("-NOAUTH"), "{refused}");
    assert_eq!(call(&mut c, "AUTH pw", 5), "+OK\r\n");
    assert_eq!(server.clients(), 1);
    server.disconnect_clients();
    let mut buf = [0u8; 16];
    assert_eq!(c.read(&mut buf).unwrap_or(0), 0, "the client was cut");
    assert_eq!(server.clients(), 0);
    let addr = server.addr();
    drop(server);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn the_binary_serves_on_the_port_it_prints() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_xgroup-sim"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("xgroup-sim starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("its stdout");
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a line");
    let addr = line
        .trim()
        .strip_prefix("xgroup-sim listening on redis://")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let mut c = TcpStream::connect(&addr).expect("connect to the printed address");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(call(&mut c, "PING", 7), "+PONG\r\n");
    child.kill().unwrap();
    child.wait().unwrap();
}
