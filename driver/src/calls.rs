//! The request/response logic of every adapter's `Connection`, sans-IO: a
//! call is some commands written together and their replies read back; the
//! adapter only opens, writes and reads what [`Calls::step`] asks for.
//!
//! A connection that failed (closed by the server, timed out, sent bad
//! bytes, refused the login, or left half-written by a call whose future was
//! dropped) is not reused: the next call opens a new one first, with the same
//! handshake. A call abandoned while waiting for its replies leaves the
//! connection as it is: its late replies are told apart by their request ids
//! and skipped, so no call ever gets another call's reply.
//!
//! To a Redis Cluster there is a connection per node (and one to ask a
//! node for the slot map): each [`Step`] names its connection, and the
//! adapter keeps a socket per number (see the `cluster` module).

use std::fmt;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use xgroup_core::{
    Client, Command, ConfigError, ConnectOptions, Error, MasterQuestion, RequestId, SentinelTarget,
    ServerAddr, ServerErrorKind, Target, TlsOptions, Value,
};

use crate::route;
use crate::tls;

mod cluster;

use cluster::{Cluster, MAX_REDIRECTS};

/// How long opening a `Connection` may take, unless
/// [`ConnectionOptions::connect_timeout`] says otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one read or one write of a `Connection` call may take, unless
/// [`ConnectionOptions::io_timeout`] says otherwise; past it the call fails
/// with [`Error::ReplyTimeout`] and the next call opens a new connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`Error::ReplyTimeout`] names for a `Connection` call.
const CALL: &str = "a Connection call";

/// How a `Connection` connects: how long it waits on the network (the same
/// defaults in every adapter, [`CONNECT_TIMEOUT`] and [`IO_TIMEOUT`]; zero
/// is invalid), and its TLS settings.
///
/// ```
/// use std::time::Duration;
/// use xgroup_driver::ConnectionOptions;
///
/// let quick = ConnectionOptions::default().io_timeout(Duration::from_secs(2));
/// assert_eq!(quick.connect_timeout, Duration::from_secs(10));
/// assert!(quick.validate().is_ok());
/// assert!(quick.io_timeout(Duration::ZERO).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// How long opening a connection (TCP) may take, default 10 s. The
    /// handshake is the first write and read of the call that opened it.
    pub connect_timeout: Duration,
    /// How long each read and each write of a call may take, default 30 s.
    /// A reply slower than this (a `BLPOP` blocking longer, a busy server)
    /// fails the call with [`Error::ReplyTimeout`].
    pub io_timeout: Duration,
    /// TLS settings for a `rediss://` URL (what to trust, a client
    /// certificate, the name to verify); `None` for the defaults. With a
    /// `redis://` URL they are an [`Error::Config`]: TLS is never silently
    /// off.
    pub tls: Option<TlsOptions>,
}

/// Calls over one connection (or, to a Redis Cluster, one per node),
/// reopened when needed: commands out, replies in, in order.
///
/// ```
/// use xgroup_driver::{Calls, Step};
/// use xgroup_core::{Command, Value};
///
/// let (addr, opts) = xgroup_core::parse_url("redis://127.0.0.1:6380").unwrap();
/// let mut calls = Calls::new(addr, opts);
/// calls.start(&[Command::new("PING")]);
/// let Step::Connect(0, addr) = calls.step() else { panic!() };
/// assert_eq!(addr.port, 6380); // open connection 0 to it
/// calls.opened(Ok(()));
/// let Step::Write(0, bytes) = calls.step() else { panic!() };
/// assert!(bytes.ends_with(b"PING\r\n")); // write these on connection 0
/// calls.wrote(Ok(()));
/// let Step::Read(0, buf) = calls.step() else { panic!() };
/// buf[..7].copy_from_slice(b"+PONG\r\n"); // read into this from connection 0
/// calls.read(Ok(7));
/// let Step::Done(replies) = calls.step() else { panic!() };
/// assert_eq!(replies.unwrap(), [Value::Simple("PONG".into())]);
/// assert!(!calls.is_down(0)); // keep the socket for the next call
/// ```
pub struct Calls {
    /// The connections, by the number [`Step`] gives them: one (0) to a
    /// server or to the master a sentinel named (0 also asks the
    /// sentinels); with a cluster, 0 asks a node for the slot map and each
    /// node the calls go to has its own, from 1 on.
    links: Vec<Link>,
    /// The connection the last step was about: the one `opened`, `wrote`
    /// and `read` report on.
    at: usize,
    buf: Vec<u8>,
    call: Option<Call>,
    /// With sentinels: who to ask for the master, and the asking under way.
    sentinels: Option<Sentinels>,
    /// With a cluster: the slot map, and the asking for it under way.
    cluster: Option<Box<Cluster>>,
}

/// One connection's requests and replies.
#[derive(Debug)]
struct Link {
    addr: ServerAddr,
    client: Client,
    /// Why there is no usable connection, while there is none: a call
    /// over it opens one first.
    down: Option<String>,
}

/// A `Connection` that follows a Sentinel-monitored master: every new
/// connection first asks the sentinels (in turn) where the master is.
#[derive(Debug)]
struct Sentinels {
    target: SentinelTarget,
    /// The sentinel to ask next.
    next: usize,
    /// The link's address is what a sentinel named since the last
    /// connection failed.
    named: bool,
    asking: Option<Asking>,
}

/// One round of questions: the sentinel asked, where it stands, and why
/// the others asked failed.
#[derive(Debug)]
struct Asking {
    tried: Tried,
    stage: Stage,
}

/// The nodes a round of questions (sentinels for the master, cluster nodes
/// for the slot map) has tried, and why each was of no use.
#[derive(Debug, Default)]
struct Tried {
    count: usize,
    reasons: Vec<String>,
}

impl Tried {
    /// The node at `asked` was of no use for `reason`; once all `of` have
    /// been, every reason, for the call's error.
    fn failed(&mut self, asked: &ServerAddr, reason: String, of: usize) -> Option<String> {
        let asked = asked.to_socket_string();
        // Some sockets' errors already name the address.
        match reason.starts_with(&asked) {
            true => self.reasons.push(reason),
            false => self.reasons.push(format!("{asked}: {reason}")),
        }
        self.count += 1;
        (self.count >= of).then(|| self.reasons.join("; "))
    }
}

enum Stage {
    Connect,
    Write(MasterQuestion, Bytes),
    Read(MasterQuestion),
}

/// What the current call needs next. The `usize` is the connection: 0 for
/// a server or a sentinel-followed master; with a cluster, one per node
/// (and 0 to ask a node for the slot map). Keep a socket per number.
#[derive(Debug)]
pub enum Step<'a> {
    /// Drop this connection's socket, if any, and open a new one to this
    /// address (within the connect timeout; with TLS, verifying that
    /// address's host); then report with [`Calls::opened`].
    Connect(usize, &'a ServerAddr),
    /// Write all of these bytes on this connection (within the I/O
    /// timeout), then report with [`Calls::wrote`].
    Write(usize, Bytes),
    /// Read from this connection into this buffer (within the I/O
    /// timeout), then report with [`Calls::read`].
    Read(usize, &'a mut [u8]),
    /// The call is over: its replies in order (error replies as
    /// [`Value::Error`]), or why there are none. Drop the socket of each
    /// connection [`Calls::is_down`] now says is down: a call over it opens
    /// a new one.
    Done(Result<Vec<Value>, Error>),
}

struct Call {
    /// With a cluster: the commands, sent in rounds (to their slot's
    /// node, then again where a redirect says); empty otherwise (all were
    /// sent at the start).
    commands: Vec<Command>,
    /// With a cluster: the hash slot of the commands' keys (`None`: they
    /// have none, any node runs them).
    slot: Option<u16>,
    /// Each command's reply, once in.
    results: Vec<Option<Result<Value, Error>>>,
    /// Commands to send in a next round, each with the node a redirect
    /// named and whether to send `ASKING` first (`None`: to the primary
    /// of the call's slot).
    pending: Vec<(usize, Option<(ServerAddr, bool)>)>,
    /// The commands out on one connection, their replies awaited.
    round: Option<Round>,
    /// Rounds sent again after `MOVED` or `ASK`.
    redirects: usize,
    /// Some of its bytes may be written but not all.
    writing: bool,
    failed: Option<Error>,
}

/// Requests sent together on one connection.
#[derive(Debug)]
struct Round {
    link: usize,
    /// Replies to requests before this one belong to an abandoned call.
    first: RequestId,
    /// Each request: a command of the call (its index), or the `ASKING`
    /// before one (`None`).
    of: Vec<Option<usize>>,
    replies: Vec<Result<Value, Error>>,
}

impl ConnectionOptions {
    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`io_timeout`](Self::io_timeout).
    #[must_use]
    pub fn io_timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = timeout;
        self
    }

    /// Sets the TLS settings (needs a `rediss://` URL).
    #[must_use]
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.tls = Some(options);
        self
    }

    /// Puts these options' TLS settings into `opts` (parsed from the URL):
    /// an [`Error::Config`] if the URL did not say `rediss://`.
    pub fn apply_tls(&self, opts: &mut ConnectOptions) -> Result<(), Error> {
        let Some(tls) = &self.tls else {
            return Ok(());
        };
        if opts.tls.is_none() {
            let why = "TLS options are set but the URL says redis://; use rediss:// for TLS";
            return Err(ConfigError::new("tls", why).into());
        }
        opts.tls = Some(tls.clone());
        Ok(())
    }

    /// Checks the options: a zero timeout is an [`Error::Config`].
    pub fn validate(&self) -> Result<(), Error> {
        for (option, timeout) in [
            ("connect_timeout", self.connect_timeout),
            ("io_timeout", self.io_timeout),
        ] {
            if timeout.is_zero() {
                return Err(ConfigError::new(option, "must be more than zero").into());
            }
        }
        Ok(())
    }
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            connect_timeout: CONNECT_TIMEOUT,
            io_timeout: IO_TIMEOUT,
            tls: None,
        }
    }
}

impl Calls {
    /// Calls to `addr`, each connection set up with `opts` (login, database,
    /// ...). Nothing is open yet: the first call opens a connection.
    pub fn new(addr: ServerAddr, opts: ConnectOptions) -> Self {
        Calls {
            links: vec![Link::new(addr, Client::new(opts))],
            at: 0,
            buf: vec![0; 64 * 1024],
            call: None,
            sentinels: None,
            cluster: None,
        }
    }

    /// Calls to the master `target`'s sentinels name: each new connection
    /// asks them first (in turn, until one answers), checks with `ROLE`
    /// that the node is the master, and a `READONLY` reply (the master
    /// moved) makes the next call ask again.
    pub fn with_sentinels(target: SentinelTarget, opts: ConnectOptions) -> Self {
        let first = target.sentinels[0].clone();
        let mut calls = Calls::new(first, ConnectOptions::default());
        calls.links[0].client = Client::new(opts).check_role(true);
        calls.sentinels = Some(Sentinels {
            target,
            next: 0,
            named: false,
            asking: None,
        });
        calls
    }

    /// Calls to where `url` says: a server, the master its sentinels
    /// name, or the nodes of a cluster (see [`with_cluster`](Self::with_cluster)).
    pub fn for_target(target: Target, opts: ConnectOptions) -> Self {
        match target {
            Target::Server(addr) => Calls::new(addr, opts),
            Target::Sentinel(target) => Calls::with_sentinels(target, opts),
            Target::Cluster(target) => Calls::with_cluster(target, opts),
        }
    }

    /// Starts a call with these commands (none is fine: no IO, no replies).
    /// A command without a name, or (to a cluster) keys in two hash
    /// slots, fail the call before anything is sent.
    pub fn start(&mut self, commands: &[Command]) {
        self.abandon();
        let mut call = Call {
            commands: Vec::new(),
            slot: None,
            results: commands.iter().map(|_| None).collect(),
            pending: Vec::new(),
            round: None,
            redirects: 0,
            writing: false,
            failed: None,
        };
        if commands.iter().any(|c| c.args().is_empty()) {
            let e = ConfigError::new("command", "a command needs at least its name");
            call.failed = Some(e.into());
        } else if self.cluster.is_some() {
            // Sent once the slot's node is known.
            match route::call_slot(commands) {
                Ok(slot) => {
                    call.slot = slot;
                    call.commands = commands.to_vec();
                    call.pending = (0..commands.len()).map(|n| (n, None)).collect();
                }
                Err(e) => call.failed = Some(e),
            }
        } else if !commands.is_empty() {
            let client = &mut self.links[0].client;
            call.round = Some(send_round(0, client, commands.iter().enumerate(), false));
        }
        self.call = Some(call);
    }

    /// What the current call needs next (`Done` once, then a new call must
    /// be started).
    pub fn step(&mut self) -> Step<'_> {
        loop {
            let Some(call) = self.call.as_mut() else {
                return Step::Done(Err(Error::Connection("no call started".into())));
            };
            if let Some(e) = call.failed.take() {
                self.call = None;
                return Step::Done(Err(e));
            }
            let Some(round) = call.round.as_mut() else {
                if call.pending.is_empty() {
                    return self.finish();
                }
                // A cluster call, between rounds: where to send them?
                if self.map_needed() {
                    return self.map_step();
                }
                self.route();
                continue;
            };
            let i = round.link;
            self.at = i;
            let link = &mut self.links[i];
            if link.down.is_some() {
                if let Some(s) = self.sentinels.as_mut().filter(|s| !s.named) {
                    let asking = s.asking.get_or_insert_with(|| Asking {
                        tried: Tried::default(),
                        stage: Stage::Connect,
                    });
                    return match &asking.stage {
                        Stage::Connect => {
                            let n = s.target.sentinels.len();
                            Step::Connect(i, &s.target.sentinels[s.next % n])
                        }
                        Stage::Write(_, bytes) => Step::Write(i, bytes.clone()),
                        Stage::Read(_) => Step::Read(i, &mut self.buf),
                    };
                }
                return Step::Connect(i, &self.links[i].addr);
            }
            if let Some(bytes) = link.client.poll_transmit() {
                call.writing = true;
                return Step::Write(i, bytes);
            }
            while let Some((id, reply)) = link.client.poll_reply() {
                if id >= round.first {
                    round.replies.push(reply);
                }
            }
            if round.replies.len() < round.of.len() {
                return Step::Read(i, &mut self.buf);
            }
            self.end_round();
        }
    }

    /// How opening the connection asked for by [`Step::Connect`] went.
    pub fn opened(&mut self, result: io::Result<()>) {
        if self.map_asking() {
            return self.map_opened(result);
        }
        if let Some(s) = self.sentinels.as_mut().filter(|s| s.asking.is_some()) {
            return match result {
                Ok(()) => {
                    let (question, bytes) = MasterQuestion::new(&s.target);
                    if let Some(asking) = s.asking.as_mut() {
                        asking.stage = Stage::Write(question, bytes);
                    }
                }
                Err(e) => self.sentinel_failed(e.to_string()),
            };
        }
        let i = self.at;
        let Some(link) = self.links.get_mut(i) else {
            return;
        };
        link.down = None;
        match result {
            // The handshake goes out first, then the call's commands.
            Ok(()) => link.client.handle_connected(),
            Err(e) => {
                let addr = link.addr.clone();
                self.link_failed(i, format!("{}: {e}", addr.to_socket_string()));
                // A failed TLS handshake says why, typed.
                if let e @ Error::Tls { .. } = tls::connect_error(&addr, &e) {
                    self.set_failed(e);
                }
            }
        }
    }

    /// How the write asked for by [`Step::Write`] went.
    pub fn wrote(&mut self, result: io::Result<()>) {
        if self.map_asking() {
            return self.map_wrote(result);
        }
        if let Some(asking) = self.asking() {
            return match result {
                Ok(()) => {
                    let stage = std::mem::replace(&mut asking.stage, Stage::Connect);
                    asking.stage = match stage {
                        Stage::Write(question, _) => Stage::Read(question),
                        other => other,
                    };
                }
                Err(e) => self.sentinel_failed(e.to_string()),
            };
        }
        match result {
            Ok(()) => {
                if let Some(call) = self.call.as_mut() {
                    call.writing = false;
                }
            }
            Err(e) => self.io_failed(e),
        }
    }

    /// How the read asked for by [`Step::Read`] went: how many bytes it put
    /// in the buffer. A timed-out read may report `TimedOut` or `WouldBlock`.
    pub fn read(&mut self, result: io::Result<usize>) {
        if self.map_asking() {
            return self.map_read(result);
        }
        if self.asking().is_some() {
            return self.sentinel_read(result);
        }
        let i = self.at;
        match result {
            Ok(0) => self.link_failed(i, "connection closed by the server".into()),
            Ok(n) => {
                let Some(bytes) = self.buf.get(..n) else {
                    return self
                        .link_failed(i, format!("read reported {n} bytes, more than asked"));
                };
                let Some(link) = self.links.get_mut(i) else {
                    return;
                };
                if let Err(e) = link.client.handle_input(bytes) {
                    self.link_failed(i, e.to_string());
                    self.set_failed(Error::Protocol(e));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => self.io_failed(e),
        }
    }

    /// Whether connection `conn` (as [`Step`] numbers them) is unusable:
    /// drop its socket, a call over it opens a new one. A number never
    /// given is down.
    pub fn is_down(&self, conn: usize) -> bool {
        self.links
            .get(conn)
            .map_or(true, |link| link.down.is_some())
    }

    /// The only reply of a one-command call: an error reply as `Err`.
    pub fn one(replies: Vec<Value>) -> Result<Value, Error> {
        match replies.into_iter().next() {
            Some(reply) => xgroup_core::into_result(reply),
            None => Err(Error::Connection("no reply".into())),
        }
    }

    /// The call before this one is still under way: its future was dropped.
    fn abandon(&mut self) {
        let Some(abandoned) = self.call.take() else {
            return;
        };
        if let Some(round) = abandoned.round {
            let i = round.link;
            // Half-written, it left garbage for the server to read:
            // reconnect. Before its connection opened, its commands were
            // never sent: forget them. While reading, the connection is
            // fine: its late replies are skipped by id.
            if abandoned.writing && self.links[i].down.is_none() {
                self.drop_link(i, "an earlier call was abandoned while writing".into());
            } else if self.links[i].down.is_some() {
                self.links[i]
                    .client
                    .handle_disconnected("an earlier call was abandoned");
            }
        }
        self.abandon_map_question();
    }

    /// Every reply of the round is in: each command's reply is kept, or
    /// (redirected by a cluster) the command goes again in a next round.
    fn end_round(&mut self) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let Some(round) = call.round.take() else {
            return;
        };
        let i = round.link;
        let asked_host = &self.links[i].addr.host;
        let (mut lost, mut readonly) = (None, false);
        let mut again = Vec::new();
        for (of, reply) in round.of.iter().zip(round.replies) {
            // (The `ASKING`'s own reply: the command's says how it went.)
            let Some(n) = *of else {
                continue;
            };
            let reply = match reply {
                Err(e) => {
                    lost.get_or_insert_with(|| e.to_string());
                    Err(e)
                }
                Ok(Value::Error(e)) => {
                    readonly |= e.kind == ServerErrorKind::ReadOnly;
                    let to = self
                        .cluster
                        .as_deref_mut()
                        .and_then(|c| c.redirect(&e, asked_host, call.redirects < MAX_REDIRECTS));
                    if let Some(to) = to {
                        again.push((n, Some(to)));
                        continue;
                    }
                    Ok(Value::Error(e))
                }
                Ok(v) => Ok(v),
            };
            call.results[n] = Some(reply);
        }
        if let Some((_, to)) = again.first() {
            call.redirects += 1;
            // A transaction with a redirected command was discarded
            // (`EXECABORT`): all of it goes again.
            let sent: Vec<&Command> = round
                .of
                .iter()
                .flatten()
                .map(|&n| &call.commands[n])
                .collect();
            if route::has_multi(&sent) {
                let to = to.clone();
                again = round
                    .of
                    .iter()
                    .flatten()
                    .map(|&n| (n, to.clone()))
                    .collect();
            }
            for (n, _) in &again {
                call.results[*n] = None;
            }
            call.pending.extend(again);
        }
        if let Some(why) = lost {
            // No reply: the login failed (or the connection was lost). Try
            // a fresh connection next time rather than fail forever.
            self.drop_link(i, why);
        } else if readonly && self.sentinels.is_some() {
            // The master moved: the next call asks the sentinels again.
            self.drop_link(i, "the node is no longer the master (READONLY)".into());
        }
    }

    /// The call is over: its replies, or the first reason one is missing.
    fn finish(&mut self) -> Step<'_> {
        let Some(call) = self.call.take() else {
            return Step::Done(Err(Error::Connection("no call started".into())));
        };
        let no_reply = || Err(Error::Connection("no reply".into()));
        let replies = call.results.into_iter().map(|r| r.unwrap_or_else(no_reply));
        Step::Done(replies.collect())
    }

    fn io_failed(&mut self, e: io::Error) {
        let i = self.at;
        let timed_out = matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        );
        self.link_failed(i, e.to_string());
        if timed_out {
            self.set_failed(Error::ReplyTimeout { command: CALL });
        } else if let Some(link) = self.links.get(i) {
            // A TLS 1.3 server rejects a client certificate with an alert
            // the first read meets.
            if let e @ Error::Tls { .. } = tls::session_error(&link.addr, &e) {
                self.set_failed(e);
            }
        }
    }

    /// Connection `i` is done for: the call over it fails with `why`
    /// (unless it has a more precise error), and the next call over it
    /// opens a new connection.
    fn link_failed(&mut self, i: usize, why: String) {
        if let Some(call) = self.call.as_mut() {
            if call.round.as_ref().is_some_and(|r| r.link == i) {
                call.failed.get_or_insert(Error::Connection(why.clone()));
            }
        }
        self.drop_link(i, why);
    }

    /// Connection `i` is not to be used again: the next call over it opens
    /// a new one (a sentinel-followed master: asking the sentinels first;
    /// a cluster node: asking for the slot map first, a failover may have
    /// happened).
    fn drop_link(&mut self, i: usize, why: String) {
        if let Some(s) = self.sentinels.as_mut() {
            s.named = false;
            s.asking = None;
        }
        if let Some(c) = self.cluster.as_mut() {
            c.stale = true;
        }
        if let Some(link) = self.links.get_mut(i) {
            link.client.handle_disconnected(&why);
            link.down.get_or_insert(why);
        }
    }

    /// The round of questions to the sentinels under way, if any.
    fn asking(&mut self) -> Option<&mut Asking> {
        self.sentinels.as_mut()?.asking.as_mut()
    }

    fn sentinel_read(&mut self, result: io::Result<usize>) {
        let n = match result {
            Ok(0) => return self.sentinel_failed("connection closed".into()),
            Ok(n) => n.min(self.buf.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) => return self.sentinel_failed(e.to_string()),
        };
        let Some(s) = self.sentinels.as_mut() else {
            return;
        };
        let Some(Asking {
            stage: Stage::Read(question),
            ..
        }) = s.asking.as_mut()
        else {
            return;
        };
        match question.input(&self.buf[..n]) {
            Ok(None) => {}
            Ok(Some(master)) => {
                s.asking = None;
                s.named = true;
                self.links[0].addr = master;
            }
            Err(reason) => self.sentinel_failed(reason),
        }
    }

    /// The sentinel asked is of no use: the next is asked, and once all
    /// have failed the call fails, saying why for each.
    fn sentinel_failed(&mut self, reason: String) {
        let Some(s) = self.sentinels.as_mut() else {
            return;
        };
        let n = s.target.sentinels.len();
        let asked = s.target.sentinels[s.next % n].clone();
        s.next = (s.next + 1) % n;
        let Some(asking) = s.asking.as_mut() else {
            return;
        };
        asking.stage = Stage::Connect;
        let Some(reasons) = asking.tried.failed(&asked, reason, n) else {
            return;
        };
        let why = format!(
            "no sentinel named the master {:?} ({reasons})",
            s.target.master_name
        );
        s.asking = None;
        self.link_failed(0, why);
    }

    fn set_failed(&mut self, e: Error) {
        if let Some(call) = self.call.as_mut() {
            call.failed = Some(e);
        }
    }
}

impl Link {
    fn new(addr: ServerAddr, client: Client) -> Self {
        Link {
            addr,
            client,
            down: Some("not connected yet".into()),
        }
    }
}

/// Sends `commands` (each with its index in the call) on `client`, each
/// after an `ASKING` with `asking`: a round over connection `link`.
fn send_round<'c>(
    link: usize,
    client: &mut Client,
    commands: impl IntoIterator<Item = (usize, &'c Command)>,
    asking: bool,
) -> Round {
    let mut round = Round {
        link,
        first: RequestId(u64::MAX),
        of: Vec::new(),
        replies: Vec::new(),
    };
    for (n, command) in commands {
        if asking {
            let id = client.send(&Command::new("ASKING"));
            round.first = round.first.min(id);
            round.of.push(None);
        }
        let id = client.send(command);
        round.first = round.first.min(id);
        round.of.push(Some(n));
    }
    round
}

// By hand: the bytes of a question not yet written may hold the `AUTH`.
impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Connect => f.write_str("Connect"),
            Stage::Write(question, bytes) => f
                .debug_struct("Write")
                .field("question", question)
                .field("bytes", &bytes.len())
                .finish(),
            Stage::Read(question) => f.debug_tuple("Read").field(question).finish(),
        }
    }
}

// By hand: only the commands' names (an argument may be a secret).
impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.commands.iter().map(Command::name).collect();
        f.debug_struct("Call")
            .field("commands", &names)
            .field("slot", &self.slot)
            .field("results", &self.results)
            .field("pending", &self.pending)
            .field("round", &self.round)
            .field("redirects", &self.redirects)
            .field("writing", &self.writing)
            .field("failed", &self.failed)
            .finish()
    }
}

impl fmt::Debug for Calls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calls")
            .field("links", &self.links)
            .field("call", &self.call)
            .field("sentinels", &self.sentinels)
            .field("cluster", &self.cluster)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls with the default handshake (none): the first call connects.
    fn open() -> Calls {
        Calls::new(addr(), ConnectOptions::default())
    }

    fn addr() -> ServerAddr {
        ServerAddr {
            host: "127.0.0.1".into(),
            port: 7,
        }
    }

    /// Expects a `Connect` step (and reports the connection opened).
    fn connect(calls: &mut Calls) {
        match calls.step() {
            Step::Connect(0, to) => assert_eq!(*to, addr()),
            other => panic!("expected a connect, got {other:?}"),
        }
        calls.opened(Ok(()));
    }

    fn write(calls: &mut Calls) -> Bytes {
        match calls.step() {
            Step::Write(0, bytes) => {
                calls.wrote(Ok(()));
                bytes
            }
            other => panic!("expected a write, got {other:?}"),
        }
    }

    fn feed(calls: &mut Calls, reply: &[u8]) {
        match calls.step() {
            Step::Read(0, buf) => buf[..reply.len()].copy_from_slice(reply),
            other => panic!("expected a read, got {other:?}"),
        }
        calls.read(Ok(reply.len()));
    }

    fn done(calls: &mut Calls) -> Result<Vec<Value>, Error> {
        match calls.step() {
            Step::Done(result) => result,
            other => panic!("expected the end, got {other:?}"),
        }
    }

    /// A PING call over a connection already open.
    fn ping_pong(calls: &mut Calls) {
        calls.start(&[ping()]);
        write(calls);
        feed(calls, b"+PONG\r\n");
        assert_eq!(
            Calls::one(done(calls).unwrap()).unwrap(),
            Value::Simple("PONG".into())
        );
    }

    fn ping() -> Command {
        Command::new("PING")
    }

    #[test]
    fn a_pipeline_ends_when_every_reply_is_in_however_the_bytes_are_cut() {
        let mut calls = Calls::new(addr(), ConnectOptions::default());
        calls.start(&[ping(), Command::from_args(["GET", "k"]), ping()]);
        connect(&mut calls);
        let written = write(&mut calls);
        assert_eq!(written.matches_count(b"PING"), 2);
        feed(&mut calls, b"+PONG\r\n-ERR no");
        feed(&mut calls, b"pe\r\n+PO");
        feed(&mut calls, b"NG\r\n");
        let replies = done(&mut calls).unwrap();
        assert_eq!(replies.len(), 3);
        assert!(matches!(&replies[1], Value::Error(e) if e.message == "ERR nope"));
        // The next call goes on over the same connection.
        ping_pong(&mut calls);
        assert!(!calls.is_down(0));
    }

    #[test]
    fn an_empty_pipeline_needs_no_io() {
        let mut calls = Calls::new(addr(), ConnectOptions::default());
        calls.start(&[]);
        assert_eq!(done(&mut calls).unwrap(), []);
    }

    #[test]
    fn a_command_without_a_name_fails_the_call_before_anything_is_sent() {
        let mut calls = open();
        calls.start(&[ping(), Command::from_args(Vec::<&str>::new())]);
        assert!(matches!(done(&mut calls), Err(Error::Config(_))));
        calls.start(&[ping()]);
        connect(&mut calls);
        assert_eq!(write(&mut calls).matches_count(b"PING"), 1);
    }

    #[test]
    fn a_timed_out_read_is_a_reply_timeout_and_the_next_call_reconnects() {
        for kind in [io::ErrorKind::TimedOut, io::ErrorKind::WouldBlock] {
            let mut calls = open();
            calls.start(&[Command::from_args(["GET", "a"])]);
            connect(&mut calls);
            write(&mut calls);
            assert!(matches!(calls.step(), Step::Read(..)));
            calls.read(Err(kind.into()));
            assert_eq!(done(&mut calls), Err(Error::ReplyTimeout { command: CALL }));
            assert!(calls.is_down(0));
            // The late reply is on the old socket, never read: the next call
            // gets its own over a new connection.
            calls.start(&[Command::from_args(["GET", "b"])]);
            connect(&mut calls);
            write(&mut calls);
            feed(&mut calls, b"$1\r\nb\r\n");
            assert_eq!(done(&mut calls), Ok(vec![Value::Bulk("b".into())]));
        }
    }

    #[test]
    fn a_timed_out_write_is_a_reply_timeout() {
        let mut calls = open();
        calls.start(&[ping()]);
        connect(&mut calls);
        assert!(matches!(calls.step(), Step::Write(..)));
        calls.wrote(Err(io::ErrorKind::TimedOut.into()));
        assert_eq!(done(&mut calls), Err(Error::ReplyTimeout { command: CALL }));
        calls.start(&[ping()]);
        connect(&mut calls);
    }

    #[test]
    fn a_closed_connection_fails_this_call_and_the_next_one_reconnects() {
        let mut calls = open();
        calls.start(&[ping()]);
        connect(&mut calls);
        write(&mut calls);
        assert!(matches!(calls.step(), Step::Read(..)));
        calls.read(Ok(0));
        assert_eq!(
            done(&mut calls),
            Err(Error::Connection("connection closed by the server".into()))
        );
        calls.start(&[ping()]);
        connect(&mut calls);
        write(&mut calls);
        feed(&mut calls, b"+PONG\r\n");
        assert!(done(&mut calls).is_ok());
    }

    #[test]
    fn a_failed_connect_fails_the_call_and_the_next_one_tries_again() {
        let mut calls = Calls::new(addr(), ConnectOptions::default());
        calls.start(&[ping()]);
        assert!(matches!(calls.step(), Step::Connect(..)));
        calls.opened(Err(io::ErrorKind::ConnectionRefused.into()));
        assert!(
            matches!(done(&mut calls), Err(Error::Connection(m)) if m.starts_with("127.0.0.1:7: "))
        );
        // The refused call's command is never sent.
        calls.start(&[Command::from_args(["GET", "k"])]);
        connect(&mut calls);
        let written = write(&mut calls);
        assert_eq!(written.matches_count(b"PING"), 0, "{written:?}");
        assert_eq!(written.matches_count(b"GET"), 1);
    }

    #[test]
    fn a_failed_tls_handshake_or_a_rejected_client_certificate_is_a_typed_error() {
        use xgroup_core::TlsFailure;
        let rustls = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let mut calls = open();
        calls.start(&[ping()]);
        assert!(matches!(calls.step(), Step::Connect(..)));
        let unknown = rustls::CertificateError::UnknownIssuer;
        calls.opened(Err(rustls(rustls::Error::InvalidCertificate(unknown))));
        let e = done(&mut calls).unwrap_err();
        assert!(
            matches!(&e, Error::Tls { cause: TlsFailure::UnknownIssuer, server, .. } if server == "127.0.0.1:7"),
            "{e:?}"
        );
        // TLS 1.3: the server's verdict on the client certificate comes as
        // an alert on the first read.
        calls.start(&[ping()]);
        connect(&mut calls);
        write(&mut calls);
        assert!(matches!(calls.step(), Step::Read(..)));
        let alert = rustls::AlertDescription::CertificateRequired;
        calls.read(Err(rustls(rustls::Error::AlertReceived(alert))));
        let e = done(&mut calls).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Tls {
                    cause: TlsFailure::ClientCertificateRequired,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(calls.is_down(0));
    }

    #[test]
    fn bad_bytes_are_a_protocol_error_and_the_next_call_reconnects() {
        let mut calls = open();
        calls.start(&[ping()]);
        connect(&mut calls);
        write(&mut calls);
        feed(&mut calls, b"?what\r\n");
        assert!(matches!(done(&mut calls), Err(Error::Protocol(_))));
        calls.start(&[ping()]);
        connect(&mut calls);
    }

    #[test]
    fn an_interrupted_read_is_retried() {
        let mut calls = open();
        calls.start(&[ping()]);
        connect(&mut calls);
        write(&mut calls);
        assert!(matches!(calls.step(), Step::Read(..)));
        calls.read(Err(io::ErrorKind::Interrupted.into()));
        feed(&mut calls, b"+PONG\r\n");
        assert!(done(&mut calls).is_ok());
    }

    #[test]
    fn the_replies_of_a_call_abandoned_while_reading_are_skipped() {
        let mut calls = open();
        calls.start(&[Command::from_args(["GET", "a"])]);
        connect(&mut calls);
        write(&mut calls);
        assert!(matches!(calls.step(), Step::Read(..)));
        // The caller gave up (its future was dropped) and calls again, over
        // the same connection.
        calls.start(&[Command::from_args(["GET", "b"])]);
        write(&mut calls);
        feed(&mut calls, b"$1\r\na\r\n$1\r\nb\r\n");
        assert_eq!(done(&mut calls).unwrap(), [Value::Bulk("b".into())]);
    }

    #[test]
    fn a_call_abandoned_while_writing_makes_the_next_one_reconnect() {
        let mut calls = open();
        calls.start(&[ping()]);
        connect(&mut calls);
        assert!(matches!(calls.step(), Step::Write(..)));
        calls.start(&[Command::from_args(["GET", "b"])]);
        connect(&mut calls);
        let written = write(&mut calls);
        assert_eq!(written.matches_count(b"PING"), 0, "{written:?}");
        feed(&mut calls, b"$1\r\nb\r\n");
        assert_eq!(done(&mut calls).unwrap(), [Value::Bulk("b".into())]);
    }

    #[test]
    fn a_call_abandoned_while_connecting_is_never_sent() {
        let mut calls = Calls::new(addr(), ConnectOptions::default());
        calls.start(&[Command::from_args(["INCR", "n"])]);
        assert!(matches!(calls.step(), Step::Connect(..)));
        calls.start(&[Command::from_args(["GET", "k"])]);
        connect(&mut calls);
        let written = write(&mut calls);
        assert_eq!(written.matches_count(b"INCR"), 0, "{written:?}");
        feed(&mut calls, b"$-1\r\n");
        assert_eq!(done(&mut calls).unwrap(), [Value::Nil]);
    }

    #[test]
    fn a_failed_login_fails_the_call_and_the_next_one_logs_in_again() {
        let opts = ConnectOptions {
            password: Some("secret".into()),
            ..ConnectOptions::default()
        };
        let mut calls = Calls::new(addr(), opts);
        calls.start(&[ping()]);
        connect(&mut calls);
        let written = write(&mut calls);
        assert!(written.starts_with(b"*2\r\n$4\r\nAUTH\r\n"));
        feed(&mut calls, b"-WRONGPASS invalid\r\n+PONG\r\n");
        assert!(matches!(done(&mut calls), Err(Error::Server(_))));
        assert!(calls.is_down(0));
        calls.start(&[ping()]);
        connect(&mut calls);
        let written = write(&mut calls);
        assert!(written.starts_with(b"*2\r\n$4\r\nAUTH\r\n"));
        feed(&mut calls, b"+OK\r\n+PONG\r\n");
        assert!(done(&mut calls).is_ok());
    }

    #[test]
    fn debug_output_never_shows_the_password_even_with_the_login_unwritten() {
        let opts = ConnectOptions {
            password: Some("pw-9c2e".into()),
            ..ConnectOptions::default()
        };
        let mut calls = Calls::new(addr(), opts);
        calls.start(&[ping()]);
        connect(&mut calls);
        // The AUTH is queued, not yet taken by a write.
        let shown = format!("{calls:?}");
        assert!(!shown.contains("pw-9c2e"), "{shown}");
        assert!(write(&mut calls).matches_count(b"pw-9c2e") == 1);
    }

    #[test]
    fn timeouts_default_to_10_and_30_seconds_and_zero_is_invalid() {
        let options = ConnectionOptions::default();
        assert_eq!(options.connect_timeout, Duration::from_secs(10));
        assert_eq!(options.io_timeout, Duration::from_secs(30));
        for bad in [
            options.clone().connect_timeout(Duration::ZERO),
            options.io_timeout(Duration::ZERO),
        ] {
            assert!(matches!(bad.validate(), Err(Error::Config(_))));
        }
    }

    trait Count {
        fn matches_count(&self, needle: &[u8]) -> usize;
    }

    impl Count for Bytes {
        fn matches_count(&self, needle: &[u8]) -> usize {
            self.windows(needle.len()).filter(|w| *w == needle).count()
        }
    }
}
