//! A plain connection for commands and producing: `command(..)`, `xadd(..)`.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use xgroup_core::{Client, Command, Error, ServerAddr, StreamId, Value, XAddOptions};

/// One connection to the server, for any command (the first reference's
/// `Redis.command`) and for producing (`Stream.xadd`).
#[derive(Debug)]
pub struct Connection {
    sock: Async<TcpStream>,
    client: Client,
    buf: Vec<u8>,
}

impl Connection {
    /// Connects to `redis://[user:password@]host[:port][/db]`, logs in and
    /// checks the login with a `PING`, so bad credentials fail here.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let (addr, opts) = xgroup_core::parse_url(url)?;
        let sock = match connect_tcp(&addr, Duration::from_secs(10)).await {
            Ok(sock) => sock,
            Err(e) => {
                return Err(Error::Connection(format!(
                    "{}: {e}",
                    addr.to_socket_string()
                )))
            }
        };
        let mut client = Client::new(opts);
        client.handle_connected();
        let mut conn = Connection {
            sock,
            client,
            buf: vec![0; 64 * 1024],
        };
        conn.command(["PING"]).await?;
        Ok(conn)
    }

    /// Sends one command; an error reply is `Err(Error::Server)`.
    pub async fn command<I, A>(&mut self, args: I) -> Result<Value, Error>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        self.send(&Command::from_args(args)).await
    }

    /// Sends one prepared command.
    pub async fn send(&mut self, command: &Command) -> Result<Value, Error> {
        let mut replies = self.pipeline(std::slice::from_ref(command)).await?;
        match replies.pop() {
            Some(reply) => xgroup_core::into_result(reply),
            None => Err(Error::Connection("no reply".into())),
        }
    }

    /// Sends commands in one write and returns their replies in order (error
    /// replies as [`Value::Error`]); `Err` only when the connection failed.
    pub async fn pipeline(&mut self, commands: &[Command]) -> Result<Vec<Value>, Error> {
        for c in commands {
            self.client.send(c);
        }
        while let Some(bytes) = self.client.poll_transmit() {
            if let Err(e) = self.sock.write_all(&bytes).await {
                self.client.handle_disconnected(&e);
                return Err(Error::Connection(e.to_string()));
            }
        }
        let mut replies = Vec::with_capacity(commands.len());
        loop {
            while let Some((_, reply)) = self.client.poll_reply() {
                replies.push(reply?);
            }
            if replies.len() >= commands.len() {
                return Ok(replies);
            }
            let n = match self.sock.read(&mut self.buf).await {
                Ok(0) => {
                    self.client.handle_disconnected("closed by the server");
                    return Err(Error::Connection("connection closed by the server".into()));
                }
                Ok(n) => n,
                Err(e) => {
                    self.client.handle_disconnected(&e);
                    return Err(Error::Connection(e.to_string()));
                }
            };
            if let Err(e) = self.client.handle_input(&self.buf[..n]) {
                self.client.handle_disconnected(&e);
                return Err(Error::Protocol(e));
            }
        }
    }

    /// `XADD` with fields in order and the given options; returns the id.
    pub async fn xadd<F, V>(
        &mut self,
        stream: impl AsRef<[u8]>,
        fields: impl IntoIterator<Item = (F, V)>,
        options: &XAddOptions,
    ) -> Result<StreamId, Error>
    where
        F: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let stream = stream.as_ref();
        let cmd = xgroup_core::xadd(stream, fields, options)?;
        let mut replies = self.pipeline(std::slice::from_ref(&cmd)).await?;
        match replies.pop() {
            Some(reply) => xgroup_core::xadd_reply(reply, stream),
            None => Err(Error::Connection("no reply".into())),
        }
    }
}

/// Opens a TCP connection to `addr` with `TCP_NODELAY`, giving up after
/// `timeout`. Tries each resolved address in turn.
pub(crate) async fn connect_tcp(
    addr: &ServerAddr,
    timeout: Duration,
) -> io::Result<Async<TcpStream>> {
    let target = addr.to_socket_string();
    let attempt = async {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
        for a in resolve(target).await? {
            match Async::<TcpStream>::connect(a).await {
                Ok(sock) => {
                    let _ = sock.get_ref().set_nodelay(true);
                    return Ok(sock);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    let expired = async {
        Timer::after(timeout).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
    };
    attempt.or(expired).await
}

/// An IP address as is; a host name on a helper thread, since async-io has
/// no resolver and a blocking lookup must not stall the executor.
async fn resolve(target: String) -> io::Result<Vec<SocketAddr>> {
    if let Ok(a) = target.parse() {
        return Ok(vec![a]);
    }
    let (tx, rx) = async_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send_blocking(target.to_socket_addrs().map(Vec::from_iter));
    });
    rx.recv()
        .await
        .unwrap_or_else(|_| Err(io::Error::other("resolver thread failed")))
}
