//! A plain connection for commands and producing: `command(..)`, `xadd(..)`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use xgroup_core::{Client, Command, Error, StreamId, Value, XAddOptions};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one read or write may block, so a call never hangs forever.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// One blocking connection to the server, for any command (the first
/// reference's `Redis.command`) and for producing (`Stream.xadd`).
#[derive(Debug)]
pub struct Connection {
    sock: TcpStream,
    client: Client,
    buf: Vec<u8>,
}

impl Connection {
    /// Connects to `redis://[user:password@]host[:port][/db]`, logs in and
    /// checks the login with a `PING`, so bad credentials fail here.
    pub fn connect(url: &str) -> Result<Self, Error> {
        let (addr, opts) = xgroup_core::parse_url(url)?;
        let target = addr.to_socket_string();
        let failed = |e: &dyn std::fmt::Display| Error::Connection(format!("{target}: {e}"));
        let (mut sock, mut last) = (None, failed(&"no address"));
        for a in target.to_socket_addrs().map_err(|e| failed(&e))? {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = failed(&e),
            }
        }
        let sock = sock.ok_or(last)?;
        let _ = sock.set_nodelay(true);
        sock.set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| sock.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| failed(&e))?;
        let mut client = Client::new(opts);
        client.handle_connected();
        let mut conn = Connection {
            sock,
            client,
            buf: vec![0; 64 * 1024],
        };
        conn.command(["PING"])?;
        Ok(conn)
    }

    /// Sends one command; an error reply is `Err(Error::Server)`.
    pub fn command<I, A>(&mut self, args: I) -> Result<Value, Error>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        self.send(&Command::from_args(args))
    }

    /// Sends one prepared command.
    pub fn send(&mut self, command: &Command) -> Result<Value, Error> {
        let mut replies = self.pipeline(std::slice::from_ref(command))?;
        match replies.pop() {
            Some(reply) => xgroup_core::into_result(reply),
            None => Err(Error::Connection("no reply".into())),
        }
    }

    /// Sends commands in one write and returns their replies in order (error
    /// replies as [`Value::Error`]); `Err` only when the connection failed.
    pub fn pipeline(&mut self, commands: &[Command]) -> Result<Vec<Value>, Error> {
        for c in commands {
            self.client.send(c);
        }
        while let Some(bytes) = self.client.poll_transmit() {
            if let Err(e) = self.sock.write_all(&bytes) {
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
            let n = match self.sock.read(&mut self.buf) {
                Ok(0) => {
                    self.client.handle_disconnected("closed by the server");
                    return Err(Error::Connection("connection closed by the server".into()));
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
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
    pub fn xadd<F, V>(
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
        let mut replies = self.pipeline(std::slice::from_ref(&cmd))?;
        match replies.pop() {
            Some(reply) => xgroup_core::xadd_reply(reply, stream),
            None => Err(Error::Connection("no reply".into())),
        }
    }
}
