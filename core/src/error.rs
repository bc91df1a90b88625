//! Typed errors, split by origin: the server said no ([`ServerError`]), the
//! bytes on the wire were wrong ([`ProtocolError`]), or the caller asked for
//! something invalid ([`ConfigError`]).

use bytes::Bytes;

use crate::tls::TlsFailure;

/// An error reply from the server (`-ERR ...`, `-NOGROUP ...`, `!<len>...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server error {kind:?}: {message}")]
pub struct ServerError {
    /// What kind of error, from the reply's first word.
    pub kind: ServerErrorKind,
    /// The whole error text as the server sent it (lossy UTF-8).
    pub message: String,
}

/// The kinds of server error replies the consumer tells apart.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerErrorKind {
    /// `NOGROUP`: the stream or the consumer group does not exist.
    NoGroup,
    /// `BUSYGROUP`: the consumer group already exists.
    BusyGroup,
    /// `WRONGTYPE`: the key holds another type than a stream.
    WrongType,
    /// `NOAUTH`: authentication required.
    NoAuth,
    /// `WRONGPASS` (or the pre-6 `ERR invalid password`): bad credentials.
    WrongPass,
    /// `NOPERM`: the ACL user may not run this command or touch this key.
    NoPerm,
    /// `LOADING`: the server is loading its data set.
    Loading,
    /// `BUSY`: a script or function is running.
    Busy,
    /// `TRYAGAIN`: cluster resharding in progress.
    TryAgain,
    /// `CLUSTERDOWN`: the cluster is down.
    ClusterDown,
    /// `MASTERDOWN`: a replica lost its link to its master.
    MasterDown,
    /// `READONLY`: a write was sent to a replica.
    ReadOnly,
    /// `MOVED <slot> <addr>`: the slot lives elsewhere.
    Moved {
        /// Hash slot.
        slot: u16,
        /// `host:port` of the node that owns it.
        addr: String,
    },
    /// `ASK <slot> <addr>`: ask that node once.
    Ask {
        /// Hash slot.
        slot: u16,
        /// `host:port` of the node to ask.
        addr: String,
    },
    /// `ERR unknown command` / `ERR unknown subcommand`.
    UnknownCommand,
    /// `ERR The XGROUP subcommand requires the key to exist`: the stream is
    /// missing and `MKSTREAM` was not given.
    StreamMissing,
    /// `EXECABORT`: a transaction was discarded.
    ExecAbort,
    /// `UNBLOCKED`: a blocked read ended because its stream was deleted (or
    /// its key replaced).
    Unblocked,
    /// `OOM`: the server is at `maxmemory` and refuses writes that may grow
    /// memory (reads, acks and claims still work).
    OutOfMemory,
    /// Any other error; the prefix is in the message.
    Other,
}

impl ServerError {
    /// Classifies an error reply by its text.
    pub fn from_message(message: &[u8]) -> Self {
        let text = String::from_utf8_lossy(message).into_owned();
        let mut words = text.split_ascii_whitespace();
        let first = words.next().unwrap_or("");
        let kind = match first {
            "NOGROUP" => ServerErrorKind::NoGroup,
            "BUSYGROUP" => ServerErrorKind::BusyGroup,
            "WRONGTYPE" => ServerErrorKind::WrongType,
            "NOAUTH" => ServerErrorKind::NoAuth,
            "WRONGPASS" => ServerErrorKind::WrongPass,
            "NOPERM" => ServerErrorKind::NoPerm,
            "LOADING" => ServerErrorKind::Loading,
            "BUSY" => ServerErrorKind::Busy,
            "TRYAGAIN" => ServerErrorKind::TryAgain,
            "CLUSTERDOWN" => ServerErrorKind::ClusterDown,
            "MASTERDOWN" => ServerErrorKind::MasterDown,
            "READONLY" => ServerErrorKind::ReadOnly,
            "EXECABORT" => ServerErrorKind::ExecAbort,
            "UNBLOCKED" => ServerErrorKind::Unblocked,
            "OOM" => ServerErrorKind::OutOfMemory,
            "MOVED" | "ASK" => {
                let slot = words.next().and_then(|s| s.parse::<u16>().ok());
                let addr = words.next().map(str::to_owned);
                match (first, slot, addr) {
                    ("MOVED", Some(slot), Some(addr)) => ServerErrorKind::Moved { slot, addr },
                    ("ASK", Some(slot), Some(addr)) => ServerErrorKind::Ask { slot, addr },
                    _ => ServerErrorKind::Other,
                }
            }
            "ERR" => {
                let rest = text[3..].trim_start().to_ascii_lowercase();
                if rest.starts_with("unknown command") || rest.starts_with("unknown subcommand") {
                    ServerErrorKind::UnknownCommand
                } else if rest.starts_with("invalid password")
                    || rest.starts_with("invalid username-password")
                {
                    ServerErrorKind::WrongPass
                } else if rest.contains("requires the key to exist") {
                    ServerErrorKind::StreamMissing
                } else {
                    ServerErrorKind::Other
                }
            }
            _ => ServerErrorKind::Other,
        };
        ServerError {
            kind,
            message: text,
        }
    }

    /// Whether this is a blocked command cut because the node stopped
    /// being the master (`UNBLOCKED ... master -> replica`).
    pub fn is_role_change(&self) -> bool {
        self.kind == ServerErrorKind::Unblocked
            && (self.message.contains("master -> replica")
                || self.message.contains("instance state changed"))
    }

    /// Whether waiting and trying again may succeed without anyone changing
    /// configuration (the server is loading, busy, resharding or failing over).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ServerErrorKind::Loading
                | ServerErrorKind::Busy
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
        )
    }
}

/// The bytes from the server were not what the protocol allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Not valid RESP.
    #[error("malformed RESP: {0}")]
    Malformed(String),
    /// Valid RESP, but not the shape this command's reply has.
    #[error("unexpected reply to {command}: {detail}")]
    UnexpectedReply {
        /// The command whose reply it was.
        command: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// A reply arrived when no command was waiting for one.
    #[error("reply with no command waiting for it")]
    UnsolicitedReply,
    /// A frame was larger than the configured limit.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// Declared or seen size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

impl ProtocolError {
    /// A reply of the wrong shape for `command`.
    pub fn unexpected(command: &'static str, detail: impl Into<String>) -> Self {
        ProtocolError::UnexpectedReply {
            command,
            detail: detail.into(),
        }
    }
}

/// An invalid option, found before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid option `{option}`: {reason}")]
pub struct ConfigError {
    /// The option's name, as the builder method is called.
    pub option: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

impl ConfigError {
    /// `option` is invalid because of `reason`.
    pub fn new(option: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            option,
            reason: reason.into(),
        }
    }
}

/// A typed message could not be read from an entry's fields, or written
/// as fields (feature `serde`): which field, and why.
///
/// ```
/// use xgroup_core::{FieldsError, FieldsErrorKind};
///
/// let e = FieldsError::new(
///     Some("amount".into()),
///     FieldsErrorKind::Invalid { value: "abc".into(), expected: "a number" },
/// );
/// assert_eq!(e.to_string(), r#"field "amount": "abc" is not a number"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldsError {
    /// The field the error is about (lossy UTF-8), when there is one.
    pub field: Option<String>,
    /// What is wrong.
    pub kind: FieldsErrorKind,
}

/// What is wrong with a field (see [`FieldsError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldsErrorKind {
    /// A field the type needs is not in the entry.
    Missing,
    /// The value's text is not what the type needs: `"abc" is not a
    /// number`. The value is shown up to 64 characters.
    Invalid {
        /// The value, lossy UTF-8, shortened.
        value: String,
        /// What it should have been, e.g. `a number`.
        expected: &'static str,
    },
    /// The value is not UTF-8 text, and the type wants text.
    NotText,
    /// A nested structure (a struct, map, sequence other than bytes, or an
    /// enum variant with data) cannot be one field's value: put it in a
    /// payload field (`Payload`) instead.
    Nested,
    /// The value as a whole is not a struct or a map, so it has no field
    /// names: `what` it is instead.
    NotAnEntry {
        /// What was given, e.g. `a sequence`.
        what: &'static str,
    },
    /// A field the type does not know, with `#[serde(deny_unknown_fields)]`.
    Unknown,
    /// The payload field's format could not encode or decode the value.
    Payload {
        /// The format's name, e.g. `JSON`.
        format: String,
        /// The format's own words.
        detail: String,
    },
    /// Any other error, in the words of the type's `Deserialize` or
    /// `Serialize` implementation.
    Other(String),
}

impl FieldsError {
    /// An error about `field` (or the entry as a whole, with `None`).
    pub fn new(field: Option<String>, kind: FieldsErrorKind) -> Self {
        FieldsError { field, kind }
    }

    /// This error, about `field` unless it already names one.
    pub fn in_field(mut self, field: &[u8]) -> Self {
        if self.field.is_none() {
            self.field = Some(String::from_utf8_lossy(field).into_owned());
        }
        self
    }
}

impl std::fmt::Display for FieldsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(field) = &self.field {
            write!(f, "field {field:?}")?;
            if matches!(
                self.kind,
                FieldsErrorKind::Missing | FieldsErrorKind::Unknown
            ) {
                f.write_str(" ")?;
            } else {
                f.write_str(": ")?;
            }
        }
        match &self.kind {
            FieldsErrorKind::Missing => f.write_str("is missing"),
            FieldsErrorKind::Invalid { value, expected } => {
                write!(f, "{value:?} is not {expected}")
            }
            FieldsErrorKind::NotText => f.write_str("the value is not UTF-8 text"),
            FieldsErrorKind::Nested => f.write_str(
                "a nested structure cannot be a field's value (put it in a payload field)",
            ),
            FieldsErrorKind::NotAnEntry { what } => write!(
                f,
                "{what} cannot be an entry's fields (a struct or a map can)"
            ),
            FieldsErrorKind::Unknown => f.write_str("is not a field of the type"),
            FieldsErrorKind::Payload { format, detail } => {
                write!(f, "invalid {format} payload: {detail}")
            }
            FieldsErrorKind::Other(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for FieldsError {}

/// Everything that can stop a consumer or fail a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The server's bytes broke the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The consumer group is missing and creating it is switched off.
    #[error("consumer group {group:?} on stream {stream:?} does not exist and auto-create is off")]
    GroupMissing {
        /// Stream key.
        stream: Bytes,
        /// Group name.
        group: Bytes,
    },
    /// The stream is missing and creating it is switched off: by the
    /// consumer's `make_stream(false)` (no `MKSTREAM` on `XGROUP CREATE`), or
    /// by `XADD ... NOMKSTREAM` (`XAddOptions::no_mkstream`).
    #[error("stream {stream:?} does not exist and creating it is off (NOMKSTREAM on XADD, or make_stream(false) for a consumer)")]
    StreamMissing {
        /// Stream key.
        stream: Bytes,
    },
    /// The connection was lost (or never opened); the text says why.
    #[error("connection failed: {0}")]
    Connection(String),
    /// A reply did not arrive in time; the connection is taken for dead.
    #[error("no reply to {command} within the reply timeout")]
    ReplyTimeout {
        /// The command that got no reply.
        command: &'static str,
    },
    /// Another live process holds this consumer name: its heartbeat key
    /// holds another token and is refreshed (a newcomer refuses to start),
    /// or it took the name over while this one's heartbeats did not get
    /// through (this one stops).
    #[error("consumer name {consumer:?} is held by another live process (its heartbeat key holds another token, refreshed)")]
    DuplicateConsumer {
        /// The consumer name.
        consumer: Bytes,
    },
    /// The server is a cluster node pointing elsewhere (`MOVED`/`ASK`);
    /// cluster routing is not supported.
    #[error("cluster redirection is not supported: {0}")]
    Redirected(ServerError),
    /// TLS failed: the handshake (an untrusted, expired or misnamed
    /// certificate, a plaintext server, a client certificate missing or
    /// rejected) or, rarely, the session after it. Permanent unless the
    /// cause is [`TlsFailure::Other`]: a consumer stops with it.
    #[error("TLS with {server} failed: {cause} ({detail})")]
    Tls {
        /// Why, as far as the user can act on it.
        cause: TlsFailure,
        /// The server (`host:port`).
        server: String,
        /// The TLS library's own words.
        detail: String,
    },
    /// The ACL user may not run a command the consumer needs (`NOPERM`):
    /// give the user that command (`ACL SETUSER name +xreadgroup`), or the
    /// keys it touches.
    #[error("the ACL user lacks permission for {command}: {}", error.message)]
    NoPermission {
        /// The consumer's command the server refused (e.g. `XREADGROUP`).
        command: &'static str,
        /// The server's `NOPERM` reply.
        error: ServerError,
    },
    /// A typed message could not be written as fields or read from them
    /// (feature `serde`): the error names the field and says why.
    #[error(transparent)]
    Fields(#[from] FieldsError),
}

impl Error {
    /// Whether this error stops a consumer instead of being retried after
    /// a backoff when a connection fails with it: a TLS failure that no
    /// retry can mend (see [`TlsFailure::is_permanent`]).
    pub fn is_permanent_connection_failure(&self) -> bool {
        matches!(self, Error::Tls { cause, .. } if cause.is_permanent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_errors() {
        let kind = |m: &str| ServerError::from_message(m.as_bytes()).kind;
        assert_eq!(
            kind("NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option"),
            ServerErrorKind::NoGroup
        );
        assert_eq!(
            kind("BUSYGROUP Consumer Group name already exists"),
            ServerErrorKind::BusyGroup
        );
        assert_eq!(
            kind("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ServerErrorKind::WrongType
        );
        assert_eq!(
            kind("NOAUTH Authentication required."),
            ServerErrorKind::NoAuth
        );
        assert_eq!(
            kind("WRONGPASS invalid username-password pair or user is disabled."),
            ServerErrorKind::WrongPass
        );
        assert_eq!(kind("ERR invalid password"), ServerErrorKind::WrongPass);
        assert_eq!(
            kind("NOPERM this user has no permissions to run the 'xreadgroup' command"),
            ServerErrorKind::NoPerm
        );
        assert_eq!(
            kind("LOADING Redis is loading the dataset in memory"),
            ServerErrorKind::Loading
        );
        assert_eq!(
            kind("BUSY Redis is busy running a script."),
            ServerErrorKind::Busy
        );
        assert_eq!(
            kind("TRYAGAIN Multiple keys request during rehashing of slot"),
            ServerErrorKind::TryAgain
        );
        assert_eq!(
            kind("CLUSTERDOWN The cluster is down"),
            ServerErrorKind::ClusterDown
        );
        assert_eq!(
            kind("UNBLOCKED the stream key no longer exists"),
            ServerErrorKind::Unblocked
        );
        assert_eq!(
            kind("OOM command not allowed when used memory > 'maxmemory'."),
            ServerErrorKind::OutOfMemory
        );
        assert_eq!(
            kind("MOVED 3999 127.0.0.1:6381"),
            ServerErrorKind::Moved {
                slot: 3999,
                addr: "127.0.0.1:6381".into()
            }
        );
        assert_eq!(
            kind("ASK 3999 127.0.0.1:6381"),
            ServerErrorKind::Ask {
                slot: 3999,
                addr: "127.0.0.1:6381".into()
            }
        );
        assert_eq!(kind("MOVED x"), ServerErrorKind::Other);
        assert_eq!(
            kind("ERR unknown command 'XAUTOCLAIM', with args beginning with: "),
            ServerErrorKind::UnknownCommand
        );
        assert_eq!(
            kind("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."),
            ServerErrorKind::StreamMissing
        );
        assert_eq!(kind("ERR syntax error"), ServerErrorKind::Other);
        assert_eq!(kind(""), ServerErrorKind::Other);
        assert!(ServerError::from_message(b"LOADING x").is_transient());
        assert!(!ServerError::from_message(b"NOPERM x").is_transient());
    }

    #[test]
    fn tls_and_permission_errors_say_what_to_do() {
        let e = Error::Tls {
            cause: TlsFailure::UnknownIssuer,
            server: "127.0.0.1:6380".into(),
            detail: "invalid peer certificate: UnknownIssuer".into(),
        };
        let text = e.to_string();
        assert!(text.contains("127.0.0.1:6380"), "{text}");
        assert!(text.contains("not signed by a trusted CA"), "{text}");
        assert!(e.is_permanent_connection_failure());
        let retried = Error::Tls {
            cause: TlsFailure::Other,
            server: String::new(),
            detail: String::new(),
        };
        assert!(!retried.is_permanent_connection_failure());
        assert!(!Error::Connection("refused".into()).is_permanent_connection_failure());
        let e = Error::NoPermission {
            command: "XREADGROUP",
            error: ServerError::from_message(
                b"NOPERM this user has no permissions to run the 'xreadgroup' command",
            ),
        };
        assert!(e
            .to_string()
            .starts_with("the ACL user lacks permission for XREADGROUP: NOPERM this user"));
    }

    #[test]
    fn a_missing_stream_names_both_ways_it_is_not_created() {
        let e = Error::StreamMissing {
            stream: Bytes::from_static(b"s"),
        };
        let text = e.to_string();
        assert!(text.contains("NOMKSTREAM"), "{text}");
        assert!(text.contains("make_stream(false)"), "{text}");
    }
}
