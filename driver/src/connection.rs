//! Every adapter's `Connection`: [`Calls`] over a runtime's socket. The
//! async and the blocking one differ only in `.await`.

use std::fmt;
use std::io::{Read, Write};
use std::slice;

use xgroup_core::{Command, Error, StreamId, Value, XAddOptions};

use crate::calls::{Calls, Step, CONNECT_TIMEOUT, IO_TIMEOUT};
use crate::io::{within, AsyncIo, BlockingIo};

/// One connection to the server, for any command (the first reference's
/// `Redis.command`) and for producing (`Stream.xadd`), on an async runtime.
/// Connecting may take [`CONNECT_TIMEOUT`], each read or write of a call
/// [`IO_TIMEOUT`]; past that the call fails with [`Error::ReplyTimeout`].
pub struct AsyncConnection<R: AsyncIo> {
    socket: R::Socket,
    calls: Calls,
}

/// One blocking connection to the server, for any command (the first
/// reference's `Redis.command`) and for producing (`Stream.xadd`).
/// Connecting may take [`CONNECT_TIMEOUT`], each read or write of a call
/// [`IO_TIMEOUT`]; past that the call fails with [`Error::ReplyTimeout`].
pub struct BlockingConnection<R: BlockingIo> {
    socket: R::Socket,
    calls: Calls,
}

impl<R: AsyncIo> AsyncConnection<R> {
    /// Connects to `redis://[user:password@]host[:port][/db]`, logs in and
    /// checks the login with a `PING`, so bad credentials fail here.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let (addr, opts) = xgroup_core::parse_url(url)?;
        let socket = within::<R, _>("connect", CONNECT_TIMEOUT, R::connect(&addr))
            .await
            .map_err(|e| Calls::connect_error(&addr, e))?;
        let calls = Calls::new(opts);
        let mut conn = AsyncConnection { socket, calls };
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

    /// Sends one prepared command; an error reply is `Err(Error::Server)`.
    pub async fn send(&mut self, command: &Command) -> Result<Value, Error> {
        Calls::one(self.pipeline(slice::from_ref(command)).await?)
    }

    /// Sends commands in one write and returns their replies in order (error
    /// replies as [`Value::Error`]); `Err` only when the call failed.
    pub async fn pipeline(&mut self, commands: &[Command]) -> Result<Vec<Value>, Error> {
        self.calls.start(commands);
        loop {
            match self.calls.step() {
                Step::Write(bytes) => {
                    let write = R::write_all(&mut self.socket, &bytes);
                    let wrote = within::<R, _>("write", IO_TIMEOUT, write).await;
                    self.calls.wrote(wrote);
                }
                Step::Read(buf) => {
                    let read = within::<R, _>("read", IO_TIMEOUT, R::read(&mut self.socket, buf));
                    let read = read.await;
                    self.calls.read(read);
                }
                Step::Done(replies) => return replies,
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
        let command = xgroup_core::xadd(stream.as_ref(), fields, options)?;
        let reply = self.send(&command).await?;
        xgroup_core::xadd_reply(reply, stream.as_ref())
    }
}

impl<R: BlockingIo> BlockingConnection<R> {
    /// Connects to `redis://[user:password@]host[:port][/db]`, logs in and
    /// checks the login with a `PING`, so bad credentials fail here.
    pub fn connect(url: &str) -> Result<Self, Error> {
        let (addr, opts) = xgroup_core::parse_url(url)?;
        let socket = R::connect(&addr, CONNECT_TIMEOUT, IO_TIMEOUT)
            .map_err(|e| Calls::connect_error(&addr, e))?;
        let calls = Calls::new(opts);
        let mut conn = BlockingConnection { socket, calls };
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

    /// Sends one prepared command; an error reply is `Err(Error::Server)`.
    pub fn send(&mut self, command: &Command) -> Result<Value, Error> {
        Calls::one(self.pipeline(slice::from_ref(command))?)
    }

    /// Sends commands in one write and returns their replies in order (error
    /// replies as [`Value::Error`]); `Err` only when the call failed.
    pub fn pipeline(&mut self, commands: &[Command]) -> Result<Vec<Value>, Error> {
        self.calls.start(commands);
        loop {
            match self.calls.step() {
                Step::Write(bytes) => {
                    let wrote = self.socket.write_all(&bytes);
                    self.calls.wrote(wrote);
                }
                Step::Read(buf) => {
                    let read = self.socket.read(buf);
                    self.calls.read(read);
                }
                Step::Done(replies) => return replies,
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
        let command = xgroup_core::xadd(stream.as_ref(), fields, options)?;
        let reply = self.send(&command)?;
        xgroup_core::xadd_reply(reply, stream.as_ref())
    }
}

impl<R: AsyncIo> fmt::Debug for AsyncConnection<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("socket", &self.socket)
            .field("calls", &self.calls)
            .finish()
    }
}

impl<R: BlockingIo> fmt::Debug for BlockingConnection<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("socket", &self.socket)
            .field("calls", &self.calls)
            .finish()
    }
}
