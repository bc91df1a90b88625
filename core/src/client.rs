//! A request/response client as a sans-IO state machine: send any command,
//! get its reply. Adapters build `Connection::command(..)` and `xadd(..)` on it.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::command::Command;
use crate::config::ConnectOptions;
use crate::error::{Error, ProtocolError};
use crate::handshake::{self, HandshakeStep};
use crate::id::StreamId;
use crate::reply::{ReplyError, Value};
use crate::resp::{Decoder, Frame};

/// Identifies a request until its reply is polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Pipelined request/response over one connection.
///
/// ```
/// use xgroup_core::{Client, Command, ConnectOptions, Value};
///
/// let mut client = Client::new(ConnectOptions::default());
/// client.handle_connected();
/// let id = client.send(&Command::new("PING"));
/// let bytes = client.poll_transmit().unwrap(); // write these to the socket
/// assert!(bytes.ends_with(b"PING\r\n"));
/// client.handle_input(b"+PONG\r\n"); // what the socket returned
/// let (got, reply) = client.poll_reply().unwrap();
/// assert_eq!(got, id);
/// assert_eq!(reply.unwrap(), Value::Simple("PONG".into()));
/// ```
pub struct Client {
    opts: ConnectOptions,
    decoder: Decoder,
    out: BytesMut,
    waiting: VecDeque<Waiting>,
    replies: VecDeque<(RequestId, Result<Value, Error>)>,
    next_id: u64,
    connected: bool,
    handshake_error: Option<Error>,
    /// Each connection's handshake checks the node is a master.
    check_role: bool,
}

#[derive(Debug)]
enum Waiting {
    Handshake(HandshakeStep),
    Request(RequestId),
}

impl Client {
    /// A client that will set up each connection with `opts`.
    pub fn new(opts: ConnectOptions) -> Self {
        Client {
            opts,
            decoder: Decoder::new(),
            out: BytesMut::new(),
            waiting: VecDeque::new(),
            replies: VecDeque::new(),
            next_id: 0,
            connected: false,
            handshake_error: None,
            check_role: false,
        }
    }

    /// Every connection's handshake checks with `ROLE` that the node is a
    /// master (one a sentinel named): a replica fails the requests with
    /// a `READONLY` [`Error::Server`].
    pub fn check_role(mut self, on: bool) -> Self {
        self.check_role = on;
        self
    }

    /// A connection is open: the handshake is written (requests sent before
    /// this are kept and follow it).
    pub fn handle_connected(&mut self) {
        let pending = self.out.split();
        self.decoder.reset();
        self.handshake_error = None;
        let steps = handshake::write_handshake(&mut self.out, &self.opts, b"", self.check_role);
        let requests: Vec<Waiting> = self.waiting.drain(..).collect();
        self.waiting
            .extend(steps.into_iter().map(Waiting::Handshake));
        self.waiting.extend(requests);
        self.out.extend_from_slice(&pending);
        self.connected = true;
    }

    /// The connection closed: every request without a reply fails.
    pub fn handle_disconnected(&mut self, reason: impl std::fmt::Display) {
        self.connected = false;
        self.decoder.reset();
        self.out.clear();
        let reason = reason.to_string();
        for w in self.waiting.drain(..) {
            if let Waiting::Request(id) = w {
                self.replies
                    .push_back((id, Err(Error::Connection(reason.clone()))));
            }
        }
    }

    /// Queues a command; its reply comes back under the returned id.
    pub fn send(&mut self, command: &Command) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        if command.args().is_empty() {
            self.replies.push_back((
                id,
                Err(Error::Config(crate::error::ConfigError::new(
                    "command",
                    "a command needs at least its name",
                ))),
            ));
            return id;
        }
        command.encode(&mut self.out);
        self.waiting.push_back(Waiting::Request(id));
        id
    }

    /// Bytes arrived. Returns an error when the stream broke the protocol:
    /// the connection must then be closed (and
    /// [`handle_disconnected`](Self::handle_disconnected) called).
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.decoder.feed(bytes);
        while let Some(frame) = self.decoder.next_frame()? {
            if matches!(frame, Frame::Push { .. }) {
                continue;
            }
            match self.waiting.pop_front() {
                Some(Waiting::Handshake(step)) => {
                    if let Err(e) = step.check(frame) {
                        self.handshake_error.get_or_insert(match e {
                            ReplyError::Server(s) => Error::Server(s),
                            ReplyError::Protocol(p) => Error::Protocol(p),
                        });
                    }
                }
                Some(Waiting::Request(id)) => {
                    let result = match &self.handshake_error {
                        Some(e) => Err(e.clone()),
                        None => Ok(Value::from_frame(frame)),
                    };
                    self.replies.push_back((id, result));
                }
                None => return Err(ProtocolError::UnsolicitedReply),
            }
        }
        Ok(())
    }

    /// Bytes to write, in order (only while connected).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if !self.connected || self.out.is_empty() {
            return None;
        }
        Some(self.out.split().freeze())
    }

    /// The next reply, in the order the commands were sent. A reply that is
    /// an error is `Ok(Value::Error(..))`; `Err` means no reply (connection
    /// lost, handshake failed).
    #[must_use]
    pub fn poll_reply(&mut self) -> Option<(RequestId, Result<Value, Error>)> {
        self.replies.pop_front()
    }

    /// Requests sent and not answered yet.
    pub fn waiting(&self) -> usize {
        self.waiting
            .iter()
            .filter(|w| matches!(w, Waiting::Request(_)))
            .count()
    }
}

/// A reply as `Ok`, or its error reply as `Err(Error::Server)`.
pub fn into_result(value: Value) -> Result<Value, Error> {
    match value {
        Value::Error(e) => Err(Error::Server(e)),
        other => Ok(other),
    }
}

/// The id in an `XADD` reply; a nil reply (`NOMKSTREAM` on a missing
/// stream) is [`Error::StreamMissing`].
pub fn xadd_reply(value: Value, stream: &[u8]) -> Result<StreamId, Error> {
    match into_result(value)? {
        Value::Bulk(id) | Value::Simple(id) => StreamId::parse(&id)
            .map_err(|e| Error::Protocol(ProtocolError::unexpected("XADD", e.to_string()))),
        Value::Nil => Err(Error::StreamMissing {
            stream: Bytes::copy_from_slice(stream),
        }),
        other => Err(Error::Protocol(ProtocolError::unexpected(
            "XADD",
            format!("expected an id, got {other:?}"),
        ))),
    }
}

// By hand: the bytes not yet written may hold the handshake's `AUTH`, so
// only their length is shown (and the options hide the password).
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("opts", &self.opts)
            .field("unwritten_bytes", &self.out.len())
            .field("waiting", &self.waiting)
            .field("replies", &self.replies.len())
            .field("next_id", &self.next_id)
            .field("connected", &self.connected)
            .field("handshake_error", &self.handshake_error)
            .finish()
    }
}
