//! A TCP proxy in front of a server that can cut, refuse and stall
//! connections on demand (std threads only).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How often blocked threads wake up to look at the flags.
const POLL: Duration = Duration::from_millis(20);
/// How long the proxy waits to connect to the upstream.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Both sockets of one proxied connection (clones used to shut them down).
#[derive(Debug)]
struct Conn {
    client: TcpStream,
    upstream: TcpStream,
}

impl Conn {
    fn close(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }
}

#[derive(Debug, Default)]
struct Shared {
    stopping: AtomicBool,
    refusing: AtomicBool,
    paused: AtomicBool,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Conn>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn conns(&self) -> MutexGuard<'_, HashMap<u64, Conn>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn threads(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.threads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spawn(self: &Arc<Self>, name: &str, f: impl FnOnce(Arc<Shared>) + Send + 'static) {
        let shared = Arc::clone(self);
        let handle = thread::Builder::new()
            .name(name.into())
            .spawn(move || f(shared))
            .expect("spawn a proxy thread");
        let mut threads = self.threads();
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
    }

    /// Whether connection `id` was cut (or the proxy is stopping).
    fn is_closed(&self, id: u64) -> bool {
        self.stopping.load(Ordering::SeqCst) || !self.conns().contains_key(&id)
    }

    fn remove(&self, id: u64) {
        if let Some(conn) = self.conns().remove(&id) {
            conn.close();
        }
    }
}

/// A TCP proxy on `127.0.0.1:<free port>` forwarding every connection to an
/// upstream server, with switches to inject network faults: cut every
/// connection ([`cut_all`](Self::cut_all)), refuse new ones
/// ([`set_refusing`](Self::set_refusing)), or stall traffic
/// ([`pause`](Self::pause)).
///
/// Dropping it stops its listener and closes every connection; all its
/// threads are joined.
///
/// ```no_run
/// use xgroup_testkit::{FaultProxy, RedisServer};
///
/// let server = RedisServer::start();
/// let proxy = FaultProxy::start(server.addr());
/// // ... connect the code under test to proxy.url(), then:
/// proxy.cut_all();
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a free loopback port.
    ///
    /// # Panics
    ///
    /// If it cannot bind a loopback port.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("proxy cannot bind 127.0.0.1:0: {e}"));
        listener
            .set_nonblocking(true)
            .expect("set the proxy listener non-blocking");
        let addr = listener.local_addr().expect("proxy listener address");
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("fault-proxy-{}", addr.port()))
                .spawn(move || accept_loop(listener, upstream, shared))
                .expect("spawn the proxy's accept thread")
        };
        FaultProxy {
            addr,
            upstream,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `redis://127.0.0.1:PORT` (no password: add one yourself if needed).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.addr.port())
    }

    /// The server connections are forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Closes every current connection at once (both sockets, both
    /// directions); new connections are still accepted. Returns how many
    /// connections were cut.
    pub fn cut_all(&self) -> usize {
        let cut: Vec<Conn> = self.shared.conns().drain().map(|(_, c)| c).collect();
        for conn in &cut {
            conn.close();
        }
        cut.len()
    }

    /// When `true`, new connections are accepted and closed at once (the
    /// server looks down through the proxy); current ones are left alone.
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// When `true`, stops forwarding bytes in both directions without closing
    /// anything (a stalled network); `false` resumes. Data in flight is held,
    /// not lost.
    pub fn pause(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::SeqCst);
    }

    /// How many connections are currently open through the proxy.
    pub fn connections(&self) -> usize {
        self.shared.conns().len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.cut_all();
        // Threads that were starting connections may still register one: loop
        // until every thread is done.
        loop {
            let threads: Vec<JoinHandle<()>> = self.shared.threads().drain(..).collect();
            if threads.is_empty() {
                break;
            }
            for t in threads {
                let _ = t.join();
            }
            self.cut_all();
        }
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    while !shared.stopping.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                if shared.refusing.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                shared.spawn("fault-proxy-conn", move |shared| {
                    handle_connection(client, upstream, shared)
                });
            }
            // WouldBlock (nothing to accept) or a transient error.
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Connects to the upstream, registers the connection, and forwards client
/// to upstream on this thread (upstream to client on another).
fn handle_connection(client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) {
    let setup = |client: &TcpStream| -> io::Result<(TcpStream, Conn)> {
        // Accepted sockets may inherit the listener's non-blocking mode.
        client.set_nonblocking(false)?;
        let server = TcpStream::connect_timeout(&upstream, UPSTREAM_CONNECT_TIMEOUT)?;
        for s in [client, &server] {
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(POLL))?;
            s.set_write_timeout(Some(POLL))?;
        }
        let conn = Conn {
            client: client.try_clone()?,
            upstream: server.try_clone()?,
        };
        Ok((server, conn))
    };
    let (server, conn) = match setup(&client) {
        Ok(parts) => parts,
        Err(_) => {
            // Upstream down: the client sees its connection closed.
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    };
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    {
        let mut conns = shared.conns();
        if shared.stopping.load(Ordering::SeqCst) {
            conn.close();
            return;
        }
        conns.insert(id, conn);
    }
    let (client_r, server_w) = match (client.try_clone(), server.try_clone()) {
        (Ok(c), Ok(s)) => (c, s),
        _ => {
            shared.remove(id);
            return;
        }
    };
    let live = Arc::new(AtomicUsize::new(2));
    let live2 = Arc::clone(&live);
    shared.spawn("fault-proxy-down", move |shared| {
        pump(server, client, Direction::ToClient, id, live2, &shared)
    });
    pump(client_r, server_w, Direction::ToUpstream, id, live, &shared);
}

/// Which way a [`pump`] copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToUpstream,
    ToClient,
}

/// Copies bytes from `from` to `to` until EOF, an error, a cut or a stop.
///
/// EOF from the client half-closes the upstream (replies still flow back);
/// EOF from the upstream (the server closed the connection) and errors close
/// the whole connection. The last of the two directions to finish
/// unregisters the connection.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    direction: Direction,
    id: u64,
    live: Arc<AtomicUsize>,
    shared: &Shared,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if shared.is_closed(id) {
            break;
        }
        if shared.paused.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(5));
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) if direction == Direction::ToUpstream => {
                let _ = to.shutdown(Shutdown::Write);
                break;
            }
            Ok(0) => {
                shared.remove(id);
                break;
            }
            Ok(n) => n,
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                shared.remove(id);
                break;
            }
        };
        // Hold the bytes while paused.
        while shared.paused.load(Ordering::SeqCst) && !shared.is_closed(id) {
            thread::sleep(Duration::from_millis(5));
        }
        if write_all(&mut to, &buf[..n], id, shared).is_err() {
            shared.remove(id);
            break;
        }
    }
    if live.fetch_sub(1, Ordering::SeqCst) == 1 {
        shared.remove(id);
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// `write_all` that keeps checking for cuts and stops while the peer is slow.
fn write_all(to: &mut TcpStream, mut data: &[u8], id: u64, shared: &Shared) -> io::Result<()> {
    while !data.is_empty() {
        if shared.is_closed(id) {
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
        match to.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
