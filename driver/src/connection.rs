//! Every adapter's `Connection`: [`Calls`] over a runtime's socket. The
//! async and the blocking one differ only in `.await`.

use std::fmt;
use std::io::{self, Read, Write};
use std::slice;

use xgroup_core::{
    Command, Error, ServerAddr, ShardedStream, StreamId, Target, Value, XAddOptions,
};

use crate::calls::{Calls, ConnectionOptions, Step};
use crate::io::{open, within, AsyncIo, BlockingIo};
use crate::tls::TlsSetup;

/// One connection to the server, for any command (the first reference's
/// `Redis.command`) and for producing (`Stream.xadd`), on an async runtime.
///
/// Connecting may take [`CONNECT_TIMEOUT`](crate::CONNECT_TIMEOUT), each read
/// or write of a call [`IO_TIMEOUT`](crate::IO_TIMEOUT) (or what
/// [`connect_with`](Self::connect_with) says); past that the call fails with
/// [`Error::ReplyTimeout`].
///
/// A call that fails because the connection did (the server went away, a
/// timeout, bad bytes) fails with that error; the next call opens a new
/// connection, with the same login and database, and goes on. A call whose
/// future is dropped (a timeout around it, a `select!`) never makes a later
/// call get its reply: if it was waiting for replies they are read and
/// skipped; if it was part-way through writing, the next call reconnects.
///
/// To a Redis Cluster (`redis+cluster://`), a call's commands must have
/// their keys in one hash slot (else the call fails with
/// [`Error::Config`] before anything is sent); `MOVED` and `ASK` are
/// followed, and after a failed call to a node the slot map is asked for
/// again.
pub struct AsyncConnection<R: AsyncIo> {
    /// By the number [`Calls`] gives each connection (one per cluster
    /// node); `None` while it has no usable one.
    sockets: Vec<Option<R::Socket>>,
    calls: Calls,
    options: ConnectionOptions,
    /// Built once, for every connection this one opens.
    tls: Option<TlsSetup>,
}

/// One blocking connection to the server, for any command (the first
/// reference's `Redis.command`) and for producing (`Stream.xadd`).
///
/// Connecting may take [`CONNECT_TIMEOUT`](crate::CONNECT_TIMEOUT), each read
/// or write of a call [`IO_TIMEOUT`](crate::IO_TIMEOUT) (or what
/// [`connect_with`](Self::connect_with) says); past that the call fails with
/// [`Error::ReplyTimeout`]. A call that fails because the connection did (the
/// server went away, a timeout, bad bytes) fails with that error; the next
/// call opens a new connection, with the same login and database, and goes
/// on (a late reply to the failed call is never taken for another's).
///
/// To a Redis Cluster (`redis+cluster://`), a call's commands must have
/// their keys in one hash slot (else the call fails with
/// [`Error::Config`] before anything is sent); `MOVED` and `ASK` are
/// followed, and after a failed call to a node the slot map is asked for
/// again.
pub struct BlockingConnection<R: BlockingIo> {
    /// By the number [`Calls`] gives each connection (one per cluster
    /// node); `None` while it has no usable one.
    sockets: Vec<Option<R::Socket>>,
    calls: Calls,
    options: ConnectionOptions,
    /// Built once, for every connection this one opens.
    tls: Option<TlsSetup>,
}

impl<R: AsyncIo> AsyncConnection<R> {
    /// Connects to `redis://[user:password@]host[:port][/db]` (or
    /// `rediss://` for TLS, `redis[s]+sentinel://` for the master a
    /// Sentinel set names, followed through failovers, or
    /// `redis[s]+cluster://` for a Redis Cluster: each call goes to the
    /// primary of its keys' slot, one connection per node), logs in and
    /// checks the login with a `PING`, so bad credentials and failed TLS
    /// handshakes fail here.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, ConnectionOptions::default()).await
    }

    /// [`connect`](Self::connect) with other timeouts or TLS settings; a
    /// zero timeout, TLS settings with a `redis://` URL, or an unreadable
    /// TLS file is an [`Error::Config`].
    pub async fn connect_with(url: &str, options: ConnectionOptions) -> Result<Self, Error> {
        options.validate()?;
        let (target, mut opts) = xgroup_core::parse_target(url)?;
        options.apply_tls(&mut opts)?;
        let tls = TlsSetup::for_connection(&opts, target_addr(&target))?;
        let mut conn = AsyncConnection {
            sockets: Vec::new(),
            calls: Calls::for_target(target, opts),
            options,
            tls,
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

    /// Sends one prepared command; an error reply is `Err(Error::Server)`.
    pub async fn send(&mut self, command: &Command) -> Result<Value, Error> {
        Calls::one(self.pipeline(slice::from_ref(command)).await?)
    }

    /// Sends commands in one write and returns their replies in order (error
    /// replies as [`Value::Error`]); `Err` only when the call failed.
    pub async fn pipeline(&mut self, commands: &[Command]) -> Result<Vec<Value>, Error> {
        let (connect_timeout, io_timeout) = (self.options.connect_timeout, self.options.io_timeout);
        self.calls.start(commands);
        loop {
            match self.calls.step() {
                Step::Connect(conn, addr) => {
                    let socket = slot(&mut self.sockets, conn);
                    *socket = None;
                    // The TCP connect and the TLS handshake share the timeout.
                    let opened = open::<R>(
                        addr,
                        self.tls.as_ref().map(|t| t.for_address(addr)).as_ref(),
                        connect_timeout,
                    )
                    .await;
                    let opened = opened.map(|opened| *socket = Some(opened));
                    self.calls.opened(opened);
                }
                Step::Write(conn, bytes) => {
                    let wrote = match slot(&mut self.sockets, conn) {
                        Some(socket) => {
                            let write = R::write_all(socket, &bytes);
                            within::<R, _>("write", io_timeout, write).await
                        }
                        None => Err(not_open()),
                    };
                    self.calls.wrote(wrote);
                }
                Step::Read(conn, buf) => {
                    let read = match slot(&mut self.sockets, conn) {
                        Some(socket) => {
                            let read = R::read(socket, buf);
                            within::<R, _>("read", io_timeout, read).await
                        }
                        None => Err(not_open()),
                    };
                    self.calls.read(read);
                }
                Step::Done(replies) => {
                    close_down(&mut self.sockets, &self.calls);
                    return replies;
                }
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

    /// `XADD` to one shard of `stream`: `partition_key`'s (the same key,
    /// the same shard, so per-key order holds), or the next in turn without
    /// one. Returns the shard and the id. On a cluster the shards spread
    /// over the nodes, each `XADD` sent to its shard's primary.
    pub async fn xadd_sharded<F, V>(
        &mut self,
        stream: &ShardedStream,
        partition_key: Option<&[u8]>,
        fields: impl IntoIterator<Item = (F, V)>,
        options: &XAddOptions,
    ) -> Result<(usize, StreamId), Error>
    where
        F: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let shard = stream.pick(partition_key);
        let id = self.xadd(stream.key(shard), fields, options).await?;
        Ok((shard, id))
    }

    /// `XADD` of a struct (or map), its fields as the entry's fields (see
    /// [`to_fields`](xgroup_core::to_fields)): numbers and bools as text,
    /// strings, bytes; a `None` is left out. A nested structure is an
    /// [`Error::Fields`] naming the field, before anything is sent.
    #[cfg(feature = "serde")]
    pub async fn xadd_serialized<T: serde::Serialize + ?Sized>(
        &mut self,
        stream: impl AsRef<[u8]>,
        value: &T,
        options: &XAddOptions,
    ) -> Result<StreamId, Error> {
        let fields = xgroup_core::to_fields(value)?;
        self.xadd(stream, &fields, options).await
    }

    /// `XADD` of one field, `payload`'s, holding `value` in its format
    /// (e.g. [`Payload::json`](xgroup_core::Payload::json)); a value the
    /// format cannot encode is an [`Error::Fields`].
    #[cfg(feature = "serde")]
    pub async fn xadd_payload<T, F>(
        &mut self,
        stream: impl AsRef<[u8]>,
        payload: &xgroup_core::Payload<F>,
        value: &T,
        options: &XAddOptions,
    ) -> Result<StreamId, Error>
    where
        T: serde::Serialize + ?Sized,
        F: xgroup_core::PayloadFormat,
    {
        let fields = payload.to_fields(value)?;
        self.xadd(stream, &fields, options).await
    }
}

impl<R: BlockingIo> BlockingConnection<R> {
    /// Connects to `redis://[user:password@]host[:port][/db]` (or
    /// `rediss://` for TLS, `redis[s]+sentinel://` for the master a
    /// Sentinel set names, followed through failovers, or
    /// `redis[s]+cluster://` for a Redis Cluster: each call goes to the
    /// primary of its keys' slot, one connection per node), logs in and
    /// checks the login with a `PING`, so bad credentials and failed TLS
    /// handshakes fail here.
    pub fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, ConnectionOptions::default())
    }

    /// [`connect`](Self::connect) with other timeouts or TLS settings; a
    /// zero timeout, TLS settings with a `redis://` URL, or an unreadable
    /// TLS file is an [`Error::Config`].
    pub fn connect_with(url: &str, options: ConnectionOptions) -> Result<Self, Error> {
        options.validate()?;
        let (target, mut opts) = xgroup_core::parse_target(url)?;
        options.apply_tls(&mut opts)?;
        let tls = TlsSetup::for_connection(&opts, target_addr(&target))?;
        let mut conn = BlockingConnection {
            sockets: Vec::new(),
            calls: Calls::for_target(target, opts),
            options,
            tls,
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

    /// Sends one prepared command; an error reply is `Err(Error::Server)`.
    pub fn send(&mut self, command: &Command) -> Result<Value, Error> {
        Calls::one(self.pipeline(slice::from_ref(command))?)
    }

    /// Sends commands in one write and returns their replies in order (error
    /// replies as [`Value::Error`]); `Err` only when the call failed.
    pub fn pipeline(&mut self, commands: &[Command]) -> Result<Vec<Value>, Error> {
        let (connect_timeout, io_timeout) = (self.options.connect_timeout, self.options.io_timeout);
        self.calls.start(commands);
        loop {
            match self.calls.step() {
                Step::Connect(conn, addr) => {
                    let socket = slot(&mut self.sockets, conn);
                    *socket = None;
                    let tls = self.tls.as_ref().map(|t| t.for_address(addr));
                    let opened = R::connect(addr, tls.as_ref(), connect_timeout, io_timeout);
                    let opened = opened.map(|opened| *socket = Some(opened));
                    self.calls.opened(opened);
                }
                Step::Write(conn, bytes) => {
                    let wrote = match slot(&mut self.sockets, conn) {
                        // Through TLS, only a flush sends it all.
                        Some(socket) => socket.write_all(&bytes).and_then(|()| socket.flush()),
                        None => Err(not_open()),
                    };
                    self.calls.wrote(wrote);
                }
                Step::Read(conn, buf) => {
                    let read = match slot(&mut self.sockets, conn) {
                        Some(socket) => socket.read(buf),
                        None => Err(not_open()),
                    };
                    self.calls.read(read);
                }
                Step::Done(replies) => {
                    close_down(&mut self.sockets, &self.calls);
                    return replies;
                }
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

    /// `XADD` to one shard of `stream`: `partition_key`'s (the same key,
    /// the same shard, so per-key order holds), or the next in turn without
    /// one. Returns the shard and the id. On a cluster the shards spread
    /// over the nodes, each `XADD` sent to its shard's primary.
    pub fn xadd_sharded<F, V>(
        &mut self,
        stream: &ShardedStream,
        partition_key: Option<&[u8]>,
        fields: impl IntoIterator<Item = (F, V)>,
        options: &XAddOptions,
    ) -> Result<(usize, StreamId), Error>
    where
        F: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let shard = stream.pick(partition_key);
        let id = self.xadd(stream.key(shard), fields, options)?;
        Ok((shard, id))
    }

    /// `XADD` of a struct (or map), its fields as the entry's fields (see
    /// [`to_fields`](xgroup_core::to_fields)): numbers and bools as text,
    /// strings, bytes; a `None` is left out. A nested structure is an
    /// [`Error::Fields`] naming the field, before anything is sent.
    #[cfg(feature = "serde")]
    pub fn xadd_serialized<T: serde::Serialize + ?Sized>(
        &mut self,
        stream: impl AsRef<[u8]>,
        value: &T,
        options: &XAddOptions,
    ) -> Result<StreamId, Error> {
        let fields = xgroup_core::to_fields(value)?;
        self.xadd(stream, &fields, options)
    }

    /// `XADD` of one field, `payload`'s, holding `value` in its format
    /// (e.g. [`Payload::json`](xgroup_core::Payload::json)); a value the
    /// format cannot encode is an [`Error::Fields`].
    #[cfg(feature = "serde")]
    pub fn xadd_payload<T, F>(
        &mut self,
        stream: impl AsRef<[u8]>,
        payload: &xgroup_core::Payload<F>,
        value: &T,
        options: &XAddOptions,
    ) -> Result<StreamId, Error>
    where
        T: serde::Serialize + ?Sized,
        F: xgroup_core::PayloadFormat,
    {
        let fields = payload.to_fields(value)?;
        self.xadd(stream, &fields, options)
    }
}

/// The socket of connection `conn`, made room for.
fn slot<S>(sockets: &mut Vec<Option<S>>, conn: usize) -> &mut Option<S> {
    if sockets.len() <= conn {
        sockets.resize_with(conn + 1, || None);
    }
    &mut sockets[conn]
}

/// Drops the sockets of the connections [`Calls`] says are down.
fn close_down<S>(sockets: &mut [Option<S>], calls: &Calls) {
    for (conn, socket) in sockets.iter_mut().enumerate() {
        if socket.is_some() && calls.is_down(conn) {
            *socket = None;
        }
    }
}

/// The address TLS settings are first built for: the server, the first
/// sentinel or the first seed (each connection then verifies its own
/// host).
fn target_addr(target: &Target) -> &ServerAddr {
    match target {
        Target::Server(addr) => addr,
        Target::Sentinel(s) => &s.sentinels[0],
        Target::Cluster(c) => &c.seeds[0],
    }
}

/// [`Calls`] asked for IO without a socket: cannot happen, as it asks to
/// connect first, but must not panic.
fn not_open() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "no connection open")
}

impl<R: AsyncIo> fmt::Debug for AsyncConnection<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("sockets", &self.sockets)
            .field("calls", &self.calls)
            .field("options", &self.options)
            .field("tls", &self.tls)
            .finish()
    }
}

impl<R: BlockingIo> fmt::Debug for BlockingConnection<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("sockets", &self.sockets)
            .field("calls", &self.calls)
            .field("options", &self.options)
            .field("tls", &self.tls)
            .finish()
    }
}
