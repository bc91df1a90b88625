//! TLS on std sockets, with rustls' own state machine.
//!
//! A `Connection` is one thread reading and writing in turn: it uses
//! `rustls::StreamOwned` as it is.
//!
//! A consumer's connection is read by a reader thread (blocked in `read`
//! until bytes come) while the driving thread writes, and a rustls session
//! cannot be split in two like a `TcpStream`. So the session is shared
//! under a mutex that is never held across socket IO:
//!
//! - the reader thread reads raw bytes from its clone of the socket
//!   without the lock, then, under the lock, hands them to rustls
//!   (`read_tls`, `process_new_packets`) and takes the plaintext out;
//! - the driving thread, under the lock, gives rustls the plaintext to send
//!   (`writer()`) and takes the encrypted records out into a buffer
//!   (`write_tls` into a `Vec`), then writes that buffer to the socket
//!   without the lock, with the socket's write timeout.
//!
//! Only the driving thread writes to the socket, so records go out in the
//! order rustls sealed them; what rustls wants to send in answer to what
//! it read (a key update) goes out with the next write. Neither thread
//! waits for the other across IO, so they cannot deadlock, and neither
//! polls: the reader blocks in `read`, the driver on its channel.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};
use xgroup_core::ServerAddr;
use xgroup_driver::{plaintext_answer_std, TlsSetup};

const HANDSHAKE_TIMED_OUT: &str = "TLS handshake timed out";

/// A `Connection`'s socket: plain TCP, or rustls' `StreamOwned` over it.
pub enum Socket {
    /// `redis://`.
    Plain(TcpStream),
    /// `rediss://`.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// One of a consumer's connections, as the driving thread holds it.
pub(crate) enum Link {
    Plain(TcpStream),
    Tls {
        tcp: TcpStream,
        session: Arc<Mutex<ClientConnection>>,
        /// Records sealed under the lock, written after it.
        sealed: Vec<u8>,
    },
}

/// What a consumer's reader thread reads from.
pub(crate) enum Source {
    Plain(TcpStream),
    Tls {
        tcp: TcpStream,
        session: Arc<Mutex<ClientConnection>>,
        raw: Vec<u8>,
    },
}

/// Does the TLS handshake over `tcp` within `timeout` (rustls'
/// `complete_io`, with the socket's timeouts bounding each step) and returns
/// the session, ready for application data. The socket's timeouts are left
/// as the handshake set them: the caller sets its own.
pub(crate) fn handshake(
    setup: &TlsSetup,
    tcp: &mut TcpStream,
    timeout: Duration,
) -> io::Result<ClientConnection> {
    let mut session = setup.client()?;
    // Writes of any size are sealed whole (the driving thread writes them
    // out after): no short writes into rustls' buffer.
    session.set_buffer_limit(None);
    let deadline = Instant::now() + timeout;
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, HANDSHAKE_TIMED_OUT);
    while session.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        match session.complete_io(tcp) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out())
            }
            Err(e) => return Err(e),
        }
    }
    // The client's last handshake flight, if `complete_io` left it queued.
    while session.wants_write() {
        session.write_tls(tcp)?;
    }
    Ok(session)
}

/// A `Connection`'s socket to `addr`, TLS with `setup`, each read and write
/// then bounded by `io_timeout`.
pub(crate) fn wrap(
    mut tcp: TcpStream,
    setup: Option<&TlsSetup>,
    timeout: Duration,
    io_timeout: Duration,
) -> io::Result<Socket> {
    let socket = match setup {
        None => Socket::Plain(tcp),
        Some(setup) => {
            let session = handshake(setup, &mut tcp, timeout)?;
            Socket::Tls(Box::new(StreamOwned::new(session, tcp)))
        }
    };
    let tcp = socket.tcp();
    tcp.set_read_timeout(Some(io_timeout))?;
    tcp.set_write_timeout(Some(io_timeout))?;
    Ok(socket)
}

/// A consumer's connection over `tcp` (TLS with `setup`, the handshake
/// within `timeout`), and what its reader thread reads from. The socket
/// has no read timeout (the reader waits for the server) and writes give
/// up after `write_timeout`.
pub(crate) fn link(
    mut tcp: TcpStream,
    setup: Option<&TlsSetup>,
    timeout: Duration,
    write_timeout: Duration,
) -> io::Result<(Link, Source)> {
    let link = match setup {
        None => {
            let source = Source::Plain(tcp.try_clone()?);
            (Link::Plain(tcp), source)
        }
        Some(setup) => {
            let session = Arc::new(Mutex::new(handshake(setup, &mut tcp, timeout)?));
            let source = Source::Tls {
                tcp: tcp.try_clone()?,
                session: session.clone(),
                raw: vec![0; 64 * 1024],
            };
            let link = Link::Tls {
                tcp,
                session,
                sealed: Vec::new(),
            };
            (link, source)
        }
    };
    let tcp = match &link.0 {
        Link::Plain(tcp) | Link::Tls { tcp, .. } => tcp,
    };
    tcp.set_read_timeout(None)?;
    tcp.set_write_timeout(Some(write_timeout))?;
    Ok(link)
}

impl Link {
    /// Writes all of `bytes` (sealed first, with TLS).
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Link::Plain(tcp) => tcp.write_all(bytes),
            Link::Tls {
                tcp,
                session,
                sealed,
            } => {
                {
                    let mut session = lock(session);
                    session.writer().write_all(bytes)?;
                    while session.wants_write() {
                        session.write_tls(sealed)?;
                    }
                }
                let wrote = tcp.write_all(sealed);
                sealed.clear();
                wrote
            }
        }
    }

    /// Closes the socket: the reader thread's `read` returns, and it ends.
    pub(crate) fn close(self) {
        let (Link::Plain(tcp) | Link::Tls { tcp, .. }) = self;
        let _ = tcp.shutdown(Shutdown::Both);
    }
}

impl Source {
    /// The next bytes from the server: plaintext, empty at the end. With
    /// TLS, raw bytes that hold no application data (a session ticket) are
    /// not a read: it reads on.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<Vec<u8>> {
        match self {
            Source::Plain(tcp) => {
                let n = read_some(tcp, buf)?;
                Ok(buf[..n].to_vec())
            }
            Source::Tls { tcp, session, raw } => loop {
                let n = read_some(tcp, raw)?;
                let mut plain = Vec::new();
                let closed = open(&mut lock(session), &raw[..n], &mut plain)?;
                if n == 0 && !closed && plain.is_empty() {
                    // The server closed the TCP connection without a TLS
                    // close_notify: the end all the same.
                    return Ok(plain);
                }
                if !plain.is_empty() || closed {
                    return Ok(plain);
                }
            },
        }
    }
}

/// A TLS handshake that timed out: a plaintext server's, if a plaintext
/// `PING` gets RESP back (see `xgroup_driver::tls::not_tls`).
pub(crate) fn no_answer(e: io::Error, addr: &ServerAddr, timeout: Duration) -> io::Error {
    if e.kind() != io::ErrorKind::TimedOut || e.to_string() != HANDSHAKE_TIMED_OUT {
        return e;
    }
    let limit = xgroup_driver::tls::PLAINTEXT_PROBE.min(timeout);
    xgroup_driver::tls::not_tls(e, plaintext_answer_std(addr, limit))
}

/// `tcp.read`, retried when interrupted.
fn read_some(tcp: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match tcp.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            read => return read,
        }
    }
}

/// Feeds `raw` to the session and appends the plaintext it yields to
/// `plain`; `true` once the server has closed the session cleanly.
fn open(session: &mut ClientConnection, mut raw: &[u8], plain: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        if !raw.is_empty() {
            session.read_tls(&mut raw)?;
        }
        let state = session
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // All the plaintext rustls has, taken now so its buffer never fills.
        match session.reader().read_to_end(plain) {
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if raw.is_empty() {
            return Ok(state.peer_has_closed());
        }
    }
}

fn lock(session: &Mutex<ClientConnection>) -> MutexGuard<'_, ClientConnection> {
    session.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Socket {
    fn tcp(&self) -> &TcpStream {
        match self {
            Socket::Plain(tcp) => tcp,
            Socket::Tls(tls) => tls.get_ref(),
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Plain(tcp) => tcp.read(buf),
            Socket::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Plain(tcp) => tcp.write(buf),
            Socket::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Socket::Plain(tcp) => tcp.flush(),
            Socket::Tls(tls) => tls.flush(),
        }
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Socket::Plain(tcp) => f.debug_tuple("Plain").field(tcp).finish(),
            Socket::Tls(tls) => f.debug_tuple("Tls").field(tls.get_ref()).finish(),
        }
    }
}
