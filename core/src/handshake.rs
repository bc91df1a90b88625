//! Connection set-up shared by the consumer and the request/response client:
//! `HELLO 3` or `AUTH`, `CLIENT SETNAME`, `SELECT`, and `ROLE` when the
//! node must be a master a sentinel named.

use bytes::BytesMut;

use crate::command::CommandWriter;
use crate::config::ConnectOptions;
use crate::reply::{self, ReplyError};
use crate::resp::Frame;
use crate::sentinel;

/// One handshake command whose reply is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeStep {
    Hello,
    Auth,
    SetName,
    Select,
    /// The node must still be the master (a sentinel named it).
    Role,
}

impl HandshakeStep {
    pub(crate) fn name(self) -> &'static str {
        match self {
            HandshakeStep::Hello => "HELLO",
            HandshakeStep::Auth => "AUTH",
            HandshakeStep::SetName => "CLIENT SETNAME",
            HandshakeStep::Select => "SELECT",
            HandshakeStep::Role => "ROLE",
        }
    }

    /// Checks the step's reply.
    pub(crate) fn check(self, frame: Frame) -> Result<(), ReplyError> {
        match self {
            HandshakeStep::Hello => reply::hello(frame).map(drop),
            HandshakeStep::Role => match sentinel::role_is_master(frame)? {
                true => Ok(()),
                false => Err(ReplyError::Server(sentinel::not_master(None))),
            },
            other => reply::ok(frame, other.name()),
        }
    }
}

/// Writes the handshake commands, pipelined, and returns the steps in order.
/// `default_name` names the connection when no client name is configured;
/// with `check_role` the node's `ROLE` must say master.
pub(crate) fn write_handshake(
    out: &mut BytesMut,
    opts: &ConnectOptions,
    default_name: &[u8],
    check_role: bool,
) -> Vec<HandshakeStep> {
    let name = match &opts.client_name {
        Some(name) => name.clone(),
        None => client_name_for(default_name),
    };
    let mut steps = Vec::with_capacity(3);
    if opts.resp3 {
        let auth = opts
            .password
            .as_ref()
            .map(|p| (opts.username.as_deref().unwrap_or("default"), p));
        let argc = 2 + if auth.is_some() { 3 } else { 0 } + if name.is_empty() { 0 } else { 2 };
        let mut w = CommandWriter::begin(out, argc);
        w.arg(b"HELLO").arg(b"3");
        if let Some((user, pass)) = auth {
            w.arg(b"AUTH").arg(user.as_bytes()).arg(pass.as_bytes());
        }
        if !name.is_empty() {
            w.arg(b"SETNAME").arg(name.as_bytes());
        }
        steps.push(HandshakeStep::Hello);
    } else {
        if let Some(pass) = &opts.password {
            let argc = if opts.username.is_some() { 3 } else { 2 };
            let mut w = CommandWriter::begin(out, argc);
            w.arg(b"AUTH");
            if let Some(user) = &opts.username {
                w.arg(user.as_bytes());
            }
            w.arg(pass.as_bytes());
            steps.push(HandshakeStep::Auth);
        }
        if !name.is_empty() {
            CommandWriter::begin(out, 3)
                .arg(b"CLIENT")
                .arg(b"SETNAME")
                .arg(name.as_bytes());
            steps.push(HandshakeStep::SetName);
        }
    }
    if opts.db != 0 {
        CommandWriter::begin(out, 2)
            .arg(b"SELECT")
            .arg_u64(u64::from(opts.db));
        steps.push(HandshakeStep::Select);
    }
    if check_role {
        CommandWriter::begin(out, 1).arg(b"ROLE");
        steps.push(HandshakeStep::Role);
    }
    steps
}

/// Redis rejects client names with spaces or newlines.
fn client_name_for(name: &[u8]) -> String {
    String::from_utf8_lossy(name)
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_and_resp3_handshakes() {
        let mut out = BytesMut::new();
        let opts = ConnectOptions {
            username: Some("u".into()),
            password: Some("p".into()),
            db: 3,
            resp3: false,
            client_name: None,
            tls: None,
        };
        let steps = write_handshake(&mut out, &opts, b"my consumer", false);
        assert_eq!(
            steps,
            [
                HandshakeStep::Auth,
                HandshakeStep::SetName,
                HandshakeStep::Select
            ]
        );
        assert_eq!(
            &out[..],
            &b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$11\r\nmy_consumer\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"[..]
        );
        let mut out = BytesMut::new();
        let opts = ConnectOptions {
            password: Some("p".into()),
            resp3: true,
            client_name: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(
            write_handshake(&mut out, &opts, b"c", false),
            [HandshakeStep::Hello]
        );
        assert_eq!(
            &out[..],
            &b"*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$1\r\np\r\n"[..]
        );
    }
}
