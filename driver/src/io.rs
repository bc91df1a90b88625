//! What the driver needs of a runtime's sockets and timer. An adapter
//! implements [`AsyncIo`] or [`BlockingIo`] on its runtime marker.

use std::fmt;
use std::future::{pending, Future};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::pin::pin;
use std::time::{Duration, Instant};

use futures_util::future::{select, Either};
use xgroup_core::ServerAddr;

use crate::tls::{self, TlsSetup, PLAINTEXT_PROBE};

/// The sockets and timer of an async runtime.
pub trait AsyncIo: 'static {
    /// A connected socket: plain TCP, or TLS over it.
    type Socket: Send + fmt::Debug;

    /// Opens a connection to `addr` with `TCP_NODELAY` and, with `tls`,
    /// does the TLS handshake over it with the runtime's rustls wrapper
    /// (the caller bounds how long both may take). A failed handshake is
    /// an error holding rustls' error (as the wrappers give it), which
    /// [`connect_error`](crate::tls::connect_error) reads.
    fn connect(
        addr: &ServerAddr,
        tls: Option<&TlsSetup>,
    ) -> impl Future<Output = io::Result<Self::Socket>> + Send;

    /// Writes all of `bytes`, flushed through TLS if there is any.
    fn write_all(
        socket: &mut Self::Socket,
        bytes: &[u8],
    ) -> impl Future<Output = io::Result<()>> + Send;

    /// Reads what has arrived, at most `buf.len()` bytes; 0 at the end.
    fn read(
        socket: &mut Self::Socket,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send;

    /// Completes once `at` has passed.
    fn sleep_until(at: Instant) -> impl Future<Output = ()> + Send;
}

/// The sockets of a blocking runtime (std threads).
pub trait BlockingIo: 'static {
    /// A connected socket: plain TCP, or TLS over it. Writes are complete
    /// once `flush` returns.
    type Socket: Read + Write + Send + fmt::Debug;

    /// Opens a connection to `addr` (with `TCP_NODELAY`) and, with `tls`,
    /// does the TLS handshake over it, both within `timeout`; each later
    /// read or write gives up after `io_timeout` (with `TimedOut` or
    /// `WouldBlock`).
    fn connect(
        addr: &ServerAddr,
        tls: Option<&TlsSetup>,
        timeout: Duration,
        io_timeout: Duration,
    ) -> io::Result<Self::Socket>;
}

/// Opens a connection to `addr` on runtime `R` (TLS with `tls`) within
/// `limit`. A TLS handshake that got no answer in time is told apart from
/// a plaintext server (see [`tls::not_tls`]).
pub async fn open<R: AsyncIo>(
    addr: &ServerAddr,
    tls: Option<&TlsSetup>,
    limit: Duration,
) -> io::Result<R::Socket> {
    match within::<R, _>("connect", limit, R::connect(addr, tls)).await {
        Err(e) if tls.is_some() && e.kind() == io::ErrorKind::TimedOut => {
            let probe = async {
                let mut socket = R::connect(addr, None).await?;
                R::write_all(&mut socket, b"PING\r\n").await?;
                let mut buf = [0; 64];
                let n = R::read(&mut socket, &mut buf).await?;
                Ok(buf[..n.min(buf.len())].to_vec())
            };
            let limit = PLAINTEXT_PROBE.min(limit);
            Err(tls::not_tls(e, within::<R, _>("probe", limit, probe).await))
        }
        opened => opened,
    }
}

/// What a plaintext `PING` to `addr` gets first, within `limit`, on std
/// sockets (see [`tls::not_tls`]).
pub fn plaintext_answer_std(addr: &ServerAddr, limit: Duration) -> io::Result<Vec<u8>> {
    let mut socket = connect_std(addr, limit)?;
    socket.set_read_timeout(Some(limit))?;
    socket.set_write_timeout(Some(limit))?;
    socket.write_all(b"PING\r\n")?;
    let mut buf = [0; 64];
    let n = socket.read(&mut buf)?;
    Ok(buf[..n].to_vec())
}

/// `work`, or a `TimedOut` error (saying `what` timed out) once `limit` has
/// passed, on runtime `R`'s timer.
pub async fn within<R: AsyncIo, T>(
    what: &str,
    limit: Duration,
    work: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let Some(at) = Instant::now().checked_add(limit) else {
        return work.await;
    };
    match select(pin!(work), pin!(R::sleep_until(at))).await {
        Either::Left((done, _)) => done,
        Either::Right(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} timed out after {limit:?}"),
        )),
    }
}

/// Completes once `deadline` has passed; never without one.
pub async fn sleep_until<R: AsyncIo>(deadline: Option<Instant>) {
    match deadline {
        Some(at) => R::sleep_until(at).await,
        None => pending().await,
    }
}

/// A std TCP connection to `addr` within `timeout` (one deadline for every
/// resolved address, tried in turn), with `TCP_NODELAY`.
pub fn connect_std(addr: &ServerAddr, timeout: Duration) -> io::Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
    for a in addr.to_socket_string().to_socket_addrs()? {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(socket) => {
                let _ = socket.set_nodelay(true);
                return Ok(socket);
            }
            Err(e) => last = io::Error::new(e.kind(), format!("{a}: {e}")),
        }
    }
    Err(last)
}
