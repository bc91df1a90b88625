//! A plain connection for commands and producing: `command(..)`, `xadd(..)`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use xgroup_core::{Client, Command, Error, StreamId, Value, XAddOptions};

/// One connection to the server, for any command (the first reference's
/// `Redis.command`) and for producing (`Stream.xadd`).
#[derive(Debug)]
pub struct Connection {
    sock: TcpStream,
    client: Client,
    buf: Vec<u8>,
}

impl Connection {
    /// Connects to `redis://[user:password@]host[:port][/db]`, logs in and
    /// checks the login with a `PING`, so bad credentials fail here.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let (addr, opts) = xgroup_core::parse_url(url)?;
        let connect = TcpStream::connect(addr.to_socket_string());
        let sock = match tokio::time::timeout(Duration::from_secs(10), connect).await {
            Ok(Ok(sock)) => sock,
            Ok(Err(e)) => {
                return Err(Error::Connection(format!(
                    "{}: {e}",
                    addr.to_socket_string()
                )))
            }
            Err(_) => {
                return Err(Error::Connection(format!(
                    "{}: connect timed out",
                    addr.to_socket_string()
                )))
            }
        };
        let _ = sock.set_nodelay(true);
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
