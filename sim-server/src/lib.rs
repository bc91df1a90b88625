//! # xgroup-sim
//!
//! xgroup's in-memory model of Redis Streams ([`xgroup_core::sim`]) served
//! over TCP on a loopback port: a stand-in for `redis-server` in tests and
//! demos, with nothing to install.
//!
//! ```
//! let server = xgroup_sim::SimServer::start()?;
//! let url = server.url(); // "redis://127.0.0.1:<port>": give it to any client
//! # assert!(url.starts_with("redis://127.0.0.1:"));
//! // ... run consumers and producers against `url` ...
//! drop(server); // stopped, its clients disconnected
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The model answers RESP2 and RESP3 (after `HELLO 3`) with Redis 7.0's
//! reply shapes and error texts, several clients at once, on real time:
//! blocked `XREADGROUP`/`XREAD` calls wake up when entries arrive or when
//! their `BLOCK` runs out, and idle times advance. It is checked against
//! real servers by the core's `sim_vs_redis` and differential tests.
//!
//! What it models: streams (`XADD` with trimming, `XDEL`, `XTRIM`, `XLEN`,
//! `XRANGE`, `XREVRANGE`, `XREAD`), consumer groups (`XGROUP CREATE`,
//! `DESTROY`, `DELCONSUMER`, `SETID`, `CREATECONSUMER`; `XREADGROUP`,
//! `XACK`, `XPENDING`, `XCLAIM`, `XAUTOCLAIM`), transactions (`MULTI`,
//! `EXEC`, `DISCARD`), the consumer's dead-letter script (`EVAL`), a few
//! keyspace and string commands (`DEL`, `EXISTS`, `TYPE`, `SET`, `GET`,
//! `PTTL`, `FLUSHDB`, `FLUSHALL`) and the connection basics (`PING`,
//! `ECHO`, `HELLO`, `AUTH`, `SELECT`, `INFO`, `CLIENT SETNAME`/`GETNAME`/
//! `ID`, `QUIT`). Anything else is answered with `ERR unknown command`
//! naming it, so a client knows where the model ends.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use xgroup_core::sim::SimOptions;
use xgroup_core::sim::{ConnId, SimServer as Model};

/// How long a write to one client may take before that client is dropped
/// (one that stops reading must not stall the others).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The model served on a loopback port. Dropping it stops it and
/// disconnects its clients.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    password: Option<String>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// Options for [`SimServer::builder`].
#[derive(Debug, Clone, Default)]
pub struct SimServerBuilder {
    options: SimOptions,
    port: u16,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the timer thread: a deadline may have changed, or a stop.
    changed: Condvar,
}

#[derive(Debug)]
struct State {
    model: Model,
    /// Each client's socket, to write its replies to.
    clients: HashMap<ConnId, TcpStream>,
    stopping: bool,
}

impl SimServerBuilder {
    /// Clients must `AUTH` (or `HELLO 3 AUTH`) with this password first, as
    /// `user` (`default` when `None`).
    pub fn password(mut self, user: Option<&str>, password: &str) -> Self {
        self.options.username = user.map(str::to_owned);
        self.options.password = Some(password.to_owned());
        self
    }

    /// Listen on this loopback port (default 0: a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Answer `XAUTOCLAIM` like Redis 6.2 (no list of deleted ids).
    pub fn redis_6_2_autoclaim(mut self, on: bool) -> Self {
        self.options.autoclaim_v62 = on;
        self
    }

    /// Starts serving.
    pub fn start(self) -> io::Result<SimServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, self.port))?;
        let addr = listener.local_addr()?;
        let password = self.options.password.clone();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                model: Model::new(self.options, Instant::now()),
                clients: HashMap::new(),
                stopping: false,
            }),
            changed: Condvar::new(),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("xgroup-sim-accept".into())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        let timers = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("xgroup-sim-timers".into())
                .spawn(move || timer_loop(&shared))?
        };
        Ok(SimServer {
            addr,
            password,
            shared,
            threads: vec![accept, timers],
        })
    }
}

impl SimServer {
    /// Serves a fresh model on a free loopback port.
    pub fn start() -> io::Result<SimServer> {
        SimServerBuilder::default().start()
    }

    /// Options: a password, a fixed port, Redis 6.2's `XAUTOCLAIM`.
    pub fn builder() -> SimServerBuilder {
        SimServerBuilder::default()
    }

    /// `redis://127.0.0.1:<port>` (with the password, if any).
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@{}", self.addr),
            None => format!("redis://{}", self.addr),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.shared.lock().clients.len()
    }

    /// Cuts every client's connection (like `CLIENT KILL` of all): the model
    /// forgets their blocked reads and transactions at once.
    pub fn disconnect_clients(&self) {
        let mut state = self.shared.lock();
        let ids: Vec<ConnId> = state.clients.keys().copied().collect();
        for id in ids {
            state.drop_client(id);
        }
        self.shared.changed.notify_all();
    }

    /// Runs `f` on the model (to look at streams, groups and pending
    /// entries without going through RESP, or to change them); replies it
    /// unblocks are sent.
    pub fn with_model<T>(&self, f: impl FnOnce(&mut Model) -> T) -> T {
        let mut state = self.shared.lock();
        let out = f(&mut state.model);
        state.flush();
        self.shared.changed.notify_all();
        out
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.stopping = true;
            let ids: Vec<ConnId> = state.clients.keys().copied().collect();
            for id in ids {
                state.drop_client(id);
            }
        }
        self.shared.changed.notify_all();
        // Wakes the accept loop, which sees `stopping` and ends.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Sends every client what the model has for it; a client that cannot
    /// take it is dropped.
    fn flush(&mut self) {
        let ready: Vec<ConnId> = self
            .clients
            .keys()
            .copied()
            .filter(|&id| self.model.has_output(id))
            .collect();
        for id in ready {
            let bytes = self.model.take_output(id);
            let written = match self.clients.get_mut(&id) {
                Some(socket) => socket.write_all(&bytes),
                None => continue,
            };
            if written.is_err() || self.model.is_closed(id) {
                self.drop_client(id);
            }
        }
    }

    fn drop_client(&mut self, id: ConnId) {
        self.model.disconnect(id);
        if let Some(socket) = self.clients.remove(&id) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for socket in listener.incoming() {
        if shared.lock().stopping {
            return;
        }
        let Ok(socket) = socket else {
            // Out of descriptors and the like: wait instead of spinning.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = socket.set_nodelay(true);
        let _ = socket.set_write_timeout(Some(WRITE_TIMEOUT));
        let Ok(reader) = socket.try_clone() else {
            continue;
        };
        let id = {
            let mut state = shared.lock();
            let id = state.model.connect(Instant::now());
            state.clients.insert(id, socket);
            id
        };
        let worker = Arc::clone(shared);
        let started = thread::Builder::new()
            .name("xgroup-sim-client".into())
            .spawn(move || client_loop(id, reader, &worker));
        if started.is_err() {
            shared.lock().drop_client(id);
        }
    }
}

/// Reads one client's commands and hands them to the model.
fn client_loop(id: ConnId, mut socket: TcpStream, shared: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = socket.read(&mut buf);
        let mut state = shared.lock();
        match read {
            Ok(n) if n > 0 && state.clients.contains_key(&id) => {
                state.model.receive(id, Instant::now(), &buf[..n]);
                state.flush();
                if state.model.is_closed(id) {
                    state.drop_client(id);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            _ => {
                state.drop_client(id);
                shared.changed.notify_all();
                return;
            }
        }
        // A read may now block until a deadline the timer must know of.
        shared.changed.notify_all();
    }
}

/// Lets the model's time pass: blocked reads time out when their `BLOCK`
/// runs out.
fn timer_loop(shared: &Shared) {
    let mut state = shared.lock();
    loop {
        if state.stopping {
            return;
        }
        let now = Instant::now();
        state = match state.model.next_deadline() {
            Some(at) if at <= now => {
                state.model.advance(now);
                state.flush();
                state
            }
            Some(at) => {
                shared
                    .changed
                    .wait_timeout(state, at - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => shared
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner),
        };
    }
}
