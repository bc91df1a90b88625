//! A throwaway `redis-server` for the model-vs-server checks
//! (`sim_vs_redis.rs`, `differential.rs`); `XGROUP_REDIS_SERVER` picks
//! another binary (Redis 6.2, Valkey).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process on a free port, killed on drop.
pub(crate) struct RedisProcess {
    child: Child,
    pub(crate) port: u16,
}

impl RedisProcess {
    pub(crate) fn start() -> Self {
        let binary = std::env::var("XGROUP_REDIS_SERVER")
            .ok()
            .unwrap_or_else(|| {
                let path = std::env::var_os("PATH").unwrap_or_default();
                std::env::split_paths(&path)
                    .map(|dir| dir.join("redis-server"))
                    .find(|p| p.is_file())
                    .unwrap_or_else(|| {
                        panic!(
                            "redis-server not found on PATH: install it (e.g. `apt-get install \
                             redis-server`) or set XGROUP_REDIS_SERVER to its path"
                        )
                    })
                    .to_string_lossy()
                    .into_owned()
            });
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&binary)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let proc = RedisProcess { child, port };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                s.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
                let mut buf = [0u8; 16];
                if matches!(s.read(&mut buf), Ok(n) if n > 0) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "{binary} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        proc
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
