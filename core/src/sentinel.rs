//! Redis Sentinel: which sentinels to ask for a named master, the
//! `redis+sentinel://` URL, and the commands and replies spoken to a
//! sentinel (shared by the consumer and the request/response client).

use std::fmt;

use bytes::BytesMut;

use crate::cluster::{parse_cluster_target, ClusterTarget};
use crate::command::CommandWriter;
use crate::config::ConnectOptions;
use crate::error::{ConfigError, ProtocolError, ServerError};
use crate::reply::{check_error, ReplyError, Value};
use crate::resp::Frame;
use crate::url::{parse_url, redacted, ServerAddr};

/// The port a sentinel listens on unless the URL says otherwise.
pub const SENTINEL_PORT: u16 = 26379;

/// Where the master of a Sentinel-monitored set is asked for: the
/// sentinels (tried in turn) and the name they know the master by.
///
/// The sentinels' own login, when they need one, is separate from the data
/// nodes' (the URL's user and password are the data nodes'; the sentinels'
/// come from `sentinel_username` and `sentinel_password` in its query).
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelTarget {
    /// The sentinels, in the order they are tried (at least one).
    pub sentinels: Vec<ServerAddr>,
    /// The name the sentinels monitor the master under.
    pub master_name: String,
    /// ACL user for `AUTH` on the sentinels (`None`: the default user).
    pub username: Option<String>,
    /// Password for the sentinels; `None` sends no `AUTH`.
    pub password: Option<String>,
}

impl fmt::Debug for SentinelTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelTarget")
            .field("sentinels", &self.sentinels)
            .field("master_name", &self.master_name)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Where a URL says to connect: one server, or the master the sentinels
/// name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `redis://` and `rediss://`: this server.
    Server(ServerAddr),
    /// `redis+sentinel://` and `rediss+sentinel://`: the master these
    /// sentinels name, followed through failovers.
    Sentinel(SentinelTarget),
    /// `redis+cluster://` and `rediss+cluster://`: a Redis Cluster, known
    /// by these seed nodes; each key's slot decides the node.
    Cluster(ClusterTarget),
}

/// Parses any URL the library takes: `redis[s]://` (see [`parse_url`]) or
/// `redis[s]+sentinel://[user:password@]host[:port][,host[:port]...]/<master-name>[/db]`
/// with optional `sentinel_username`, `sentinel_password` and `protocol`
/// query parameters. Sentinels listen on 26379 unless a port is given.
/// `rediss+sentinel://` speaks TLS to the sentinels and to the data nodes,
/// with the same settings. `redis[s]+cluster://` URLs are
/// [`parse_cluster_target`]'s.
///
/// ```
/// use xgroup_core::{parse_target, Target};
///
/// let (target, opts) = xgroup_core::parse_target(
///     "redis+sentinel://app:pw@s1:26380,s2/mymaster/2?sentinel_password=spw",
/// ).unwrap();
/// let Target::Sentinel(s) = target else { panic!() };
/// assert_eq!(s.master_name, "mymaster");
/// assert_eq!((s.sentinels[0].port, s.sentinels[1].port), (26380, 26379));
/// assert_eq!(s.password.as_deref(), Some("spw"));
/// assert_eq!((opts.password.as_deref(), opts.db), (Some("pw"), 2));
/// ```
pub fn parse_target(input: &str) -> Result<(Target, ConnectOptions), ConfigError> {
    let bad = |reason: String| ConfigError::new("url", reason);
    let Some(parts) = MultiHostUrl::split(input) else {
        let (addr, opts) = parse_url(input)?;
        return Ok((Target::Server(addr), opts));
    };
    let scheme = parts.scheme;
    if matches!(
        scheme,
        "redis+cluster" | "rediss+cluster" | "valkey+cluster" | "valkeys+cluster"
    ) {
        let (target, opts) = parse_cluster_target(input)?;
        return Ok((Target::Cluster(target), opts));
    }
    let data_scheme = match scheme {
        "redis+sentinel" | "valkey+sentinel" => "redis",
        "rediss+sentinel" | "valkeys+sentinel" => "rediss",
        _ => {
            let (addr, opts) = parse_url(input)?;
            return Ok((Target::Server(addr), opts));
        }
    };
    let mut segments = parts.path.split('/').filter(|s| !s.is_empty());
    let master_name = match segments.next() {
        Some(name) => percent_encoding::percent_decode_str(name)
            .decode_utf8()
            .map_err(|_| bad("the master name is not valid UTF-8".into()))?
            .into_owned(),
        None => {
            return Err(bad(format!(
                "{:?} names no master: use {scheme}://host:port/<master-name>",
                redacted(input)
            )))
        }
    };
    let db = segments.next().unwrap_or("");
    if segments.next().is_some() {
        return Err(bad(
            "the path must be /<master-name> or /<master-name>/<db>".into(),
        ));
    }
    let sentinels = parts.hosts("sentinel", SENTINEL_PORT)?;
    // The data nodes' options: the same URL as a plain one, without the
    // sentinels' parameters.
    let (mut username, mut password) = (None, None);
    let mut kept = Vec::new();
    for (key, value) in parts.query_pairs() {
        match &*key {
            "sentinel_username" => username = Some(value.into_owned()),
            "sentinel_password" => password = Some(value.into_owned()),
            _ => kept.push((key.into_owned(), value.into_owned())),
        }
    }
    if username.is_some() && password.is_none() {
        return Err(bad(
            "sentinel_username needs a sentinel_password as well".into()
        ));
    }
    let opts = parts.options(data_scheme, &sentinels[0], db, kept)?;
    Ok((
        Target::Sentinel(SentinelTarget {
            sentinels,
            master_name,
            username,
            password,
        }),
        opts,
    ))
}

/// A URL that names several hosts
/// (`scheme://[userinfo@]host[:port][,host[:port]...][/path][?query]`),
/// which `url::Url` does not parse, cut into its parts: shared by the
/// sentinel and cluster URLs.
pub(crate) struct MultiHostUrl<'a> {
    /// The URL as given, for error messages (redacted).
    input: &'a str,
    /// Everything before `://`.
    pub(crate) scheme: &'a str,
    /// Up to the last `@`, if any.
    userinfo: Option<&'a str>,
    /// The comma-separated hosts.
    hosts: &'a str,
    /// After the first `/` following the hosts (without it).
    pub(crate) path: &'a str,
    /// After the first `?`.
    query: Option<&'a str>,
}

impl<'a> MultiHostUrl<'a> {
    /// The parts of `input`; `None` when it has no `://`.
    pub(crate) fn split(input: &'a str) -> Option<Self> {
        let (scheme, rest) = input.split_once("://")?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (userinfo, hosts_and_path) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (hosts, path) = hosts_and_path
            .split_once('/')
            .unwrap_or((hosts_and_path, ""));
        Some(MultiHostUrl {
            input,
            scheme,
            userinfo,
            hosts,
            path,
            query,
        })
    }

    /// The hosts (at least one), `default_port` where none is given;
    /// `what` names them in errors (`sentinel`, `seed`).
    pub(crate) fn hosts(
        &self,
        what: &str,
        default_port: u16,
    ) -> Result<Vec<ServerAddr>, ConfigError> {
        let bad = |reason: String| ConfigError::new("url", reason);
        let mut addrs = Vec::new();
        for host in self.hosts.split(',') {
            if host.is_empty() {
                return Err(bad(format!("{:?} has an empty host", redacted(self.input))));
            }
            let url = url::Url::parse(&format!("redis://{host}"))
                .map_err(|e| bad(format!("{what} {host:?} is not a host[:port]: {e}")))?;
            let (addr, _) = parse_url(url.as_str())?;
            let port = url.port().unwrap_or(default_port);
            addrs.push(ServerAddr { port, ..addr });
        }
        Ok(addrs)
    }

    /// The query's key/value pairs, percent-decoded.
    pub(crate) fn query_pairs(&self) -> url::form_urlencoded::Parse<'a> {
        url::form_urlencoded::parse(self.query.unwrap_or("").as_bytes())
    }

    /// The data nodes' connection options: those [`parse_url`] gives for
    /// `data_scheme://<userinfo>@<host>/<db>?<query>` (the user info as
    /// given), its errors quoting this URL rather than the one rebuilt.
    pub(crate) fn options(
        &self,
        data_scheme: &str,
        host: &ServerAddr,
        db: &str,
        query: Vec<(String, String)>,
    ) -> Result<ConnectOptions, ConfigError> {
        let mut plain = format!("{data_scheme}://");
        if let Some(userinfo) = self.userinfo {
            plain.push_str(userinfo);
            plain.push('@');
        }
        plain.push_str(&host.to_socket_string());
        if !db.is_empty() {
            plain.push('/');
            plain.push_str(db);
        }
        if !query.is_empty() {
            plain.push('?');
            plain.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
        }
        let (_, opts) = parse_url(&plain).map_err(|e| {
            // Quote the URL given, not the one rebuilt from it.
            ConfigError::new(
                "url",
                e.reason.replace(&redacted(&plain), &redacted(self.input)),
            )
        })?;
        Ok(opts)
    }
}

/// One sentinel asked for the master's address, request/response (for a
/// client that opens a connection per question, like `Connection`): write
/// the bytes [`new`](Self::new) gives, then feed what comes back to
/// [`input`](Self::input).
///
/// ```
/// use xgroup_core::{parse_target, MasterQuestion, Target};
///
/// let (Target::Sentinel(target), _) = parse_target("redis+sentinel://s1/m").unwrap() else {
///     panic!()
/// };
/// let (mut question, bytes) = MasterQuestion::new(&target);
/// assert!(bytes.ends_with(b"GET-MASTER-ADDR-BY-NAME\r\n$1\r\nm\r\n"));
/// assert_eq!(question.input(b"*2\r\n$2\r\n10"), Ok(None));
/// let master = question.input(b"\r\n$4\r\n6380\r\n").unwrap().unwrap();
/// assert_eq!((master.host.as_str(), master.port), ("10", 6380));
/// ```
#[derive(Debug)]
pub struct MasterQuestion {
    decoder: crate::resp::Decoder,
    asked: std::collections::VecDeque<Asked>,
    master_name: String,
}

impl MasterQuestion {
    /// The question for `target`'s master (with `AUTH` first when the
    /// sentinels need it), and the bytes to write.
    pub fn new(target: &SentinelTarget) -> (Self, bytes::Bytes) {
        let mut out = BytesMut::new();
        let asked = write_questions(&mut out, target, false).into();
        let question = MasterQuestion {
            decoder: crate::resp::Decoder::new(),
            asked,
            master_name: target.master_name.clone(),
        };
        (question, out.freeze())
    }

    /// Bytes from the sentinel: `Ok(None)` until the answer is whole, then
    /// the master's address; `Err` says why this sentinel is of no use (an
    /// error reply, a master it does not monitor, a bad reply).
    pub fn input(&mut self, bytes: &[u8]) -> Result<Option<ServerAddr>, String> {
        self.decoder.feed(bytes);
        while let Some(frame) = self.decoder.next_frame().map_err(|e| e.to_string())? {
            let asked = self.asked.pop_front();
            match hear(asked, frame, &self.master_name).map_err(|e| e.to_string())? {
                Heard::Master(addr) => return Ok(Some(addr)),
                Heard::UnknownMaster => {
                    return Err(format!(
                        "it monitors no master named {:?}",
                        self.master_name
                    ))
                }
                Heard::Ok | Heard::Other => {}
            }
        }
        Ok(None)
    }
}

/// One command sent to a sentinel whose reply is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    /// `AUTH`.
    Auth,
    /// `SENTINEL GET-MASTER-ADDR-BY-NAME`.
    Master,
    /// `SUBSCRIBE +switch-master`.
    Subscribe,
}

/// Writes `AUTH` (if the sentinels need it), the master question and,
/// with `subscribe`, `SUBSCRIBE +switch-master`; returns what was asked,
/// in order.
pub(crate) fn write_questions(
    out: &mut BytesMut,
    target: &SentinelTarget,
    subscribe: bool,
) -> Vec<Asked> {
    let mut asked = Vec::with_capacity(3);
    if let Some(pass) = &target.password {
        let mut w = CommandWriter::begin(out, if target.username.is_some() { 3 } else { 2 });
        w.arg(b"AUTH");
        if let Some(user) = &target.username {
            w.arg(user.as_bytes());
        }
        w.arg(pass.as_bytes());
        asked.push(Asked::Auth);
    }
    CommandWriter::begin(out, 3)
        .arg(b"SENTINEL")
        .arg(b"GET-MASTER-ADDR-BY-NAME")
        .arg(target.master_name.as_bytes());
    asked.push(Asked::Master);
    if subscribe {
        CommandWriter::begin(out, 2)
            .arg(b"SUBSCRIBE")
            .arg(b"+switch-master");
        asked.push(Asked::Subscribe);
    }
    asked
}

/// What a sentinel's reply (or message) said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Heard {
    /// `AUTH` or the subscription was accepted.
    Ok,
    /// The master's address (an answer or a `+switch-master` message).
    Master(ServerAddr),
    /// The sentinel does not monitor a master of that name.
    UnknownMaster,
    /// A `+switch-master` message about another master, or another push.
    Other,
}

/// Reads the reply to `asked` (`None`: a message after the subscription).
pub(crate) fn hear(asked: Option<Asked>, frame: Frame, master: &str) -> Result<Heard, ReplyError> {
    let frame = check_error(frame).map_err(ReplyError::Server)?;
    let value = Value::from_frame(frame);
    match asked {
        Some(Asked::Auth) => match value {
            Value::Simple(_) => Ok(Heard::Ok),
            other => Err(unexpected("AUTH", &other)),
        },
        Some(Asked::Master) => match value {
            Value::Nil => Ok(Heard::UnknownMaster),
            Value::Array(items) if items.len() == 2 => {
                let host = text(&items[0]);
                let port = text(&items[1]).and_then(|p| p.parse::<u16>().ok());
                match (host, port) {
                    (Some(host), Some(port)) => Ok(Heard::Master(ServerAddr { host, port })),
                    _ => Err(unexpected(
                        "SENTINEL GET-MASTER-ADDR-BY-NAME",
                        &Value::Array(items),
                    )),
                }
            }
            other => Err(unexpected("SENTINEL GET-MASTER-ADDR-BY-NAME", &other)),
        },
        Some(Asked::Subscribe) => match value {
            Value::Array(items) if items.first().and_then(text).as_deref() == Some("subscribe") => {
                Ok(Heard::Ok)
            }
            other => Err(unexpected("SUBSCRIBE", &other)),
        },
        None => Ok(switch_message(&value, master).map_or(Heard::Other, Heard::Master)),
    }
}

/// The new address in a `+switch-master` message about `master`:
/// `message +switch-master "<name> <old ip> <old port> <new ip> <new port>"`.
fn switch_message(value: &Value, master: &str) -> Option<ServerAddr> {
    let Value::Array(items) = value else {
        return None;
    };
    let [kind, channel, body] = items.as_slice() else {
        return None;
    };
    if text(kind)? != "message" || text(channel)? != "+switch-master" {
        return None;
    }
    let body = text(body)?;
    let words: Vec<&str> = body.split_ascii_whitespace().collect();
    match words.as_slice() {
        [name, _, _, host, port] if *name == master => Some(ServerAddr {
            host: (*host).to_owned(),
            port: port.parse().ok()?,
        }),
        _ => None,
    }
}

/// Whether a `ROLE` reply says master.
pub(crate) fn role_is_master(frame: Frame) -> Result<bool, ReplyError> {
    let frame = check_error(frame).map_err(ReplyError::Server)?;
    match Value::from_frame(frame) {
        Value::Array(items) => match items.first().and_then(text) {
            Some(role) => Ok(role == "master"),
            None => Err(unexpected("ROLE", &Value::Array(items))),
        },
        other => Err(unexpected("ROLE", &other)),
    }
}

/// The error a data node that is not the master gives (its `ROLE` said
/// replica): the same kind as a write it refused.
pub(crate) fn not_master(addr: Option<&ServerAddr>) -> ServerError {
    let at = addr.map_or(String::new(), |a| format!(" {}", a.to_socket_string()));
    ServerError::from_message(
        format!("READONLY the node{at} is not the master (ROLE says replica)").as_bytes(),
    )
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::Bulk(b) | Value::Simple(b) => std::str::from_utf8(b).ok().map(str::to_owned),
        _ => None,
    }
}

fn unexpected(command: &'static str, value: &Value) -> ReplyError {
    ReplyError::Protocol(ProtocolError::unexpected(command, format!("{value:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::Decoder;

    fn frame(bytes: &[u8]) -> Frame {
        let mut d = Decoder::new();
        d.feed(bytes);
        d.next_frame().unwrap().unwrap()
    }

    #[test]
    fn sentinel_urls_name_the_sentinels_the_master_and_both_logins() {
        let (t, o) = parse_target(
            "rediss+sentinel://app:p%40ss@10.0.0.1:26380,[::1],s3/my%20master/3?sentinel_username=sen&sentinel_password=s%26p&protocol=resp3",
        )
        .unwrap();
        let Target::Sentinel(s) = t else {
            panic!("{t:?}")
        };
        let shown: Vec<String> = s.sentinels.iter().map(|a| a.to_socket_string()).collect();
        assert_eq!(shown, ["10.0.0.1:26380", "[::1]:26379", "s3:26379"]);
        assert_eq!(s.master_name, "my master");
        assert_eq!(
            (s.username.as_deref(), s.password.as_deref()),
            (Some("sen"), Some("s&p"))
        );
        assert_eq!(
            (o.username.as_deref(), o.password.as_deref()),
            (Some("app"), Some("p@ss"))
        );
        assert_eq!(o.db, 3);
        assert!(o.resp3 && o.tls.is_some());
        let (t, o) = parse_target("redis+sentinel://s1/m").unwrap();
        assert!(matches!(t, Target::Sentinel(ref s) if s.password.is_none()));
        assert!(o.tls.is_none() && o.password.is_none() && o.db == 0);
        let (t, _) = parse_target("redis://h:1").unwrap();
        assert!(matches!(t, Target::Server(ServerAddr { port: 1, .. })));
    }

    #[test]
    fn bad_sentinel_urls_are_refused_without_showing_secrets() {
        for bad in [
            "redis+sentinel://s1",
            "redis+sentinel://s1/",
            "redis+sentinel://s1,,s2/m",
            "redis+sentinel://s1:99999/m",
            "redis+sentinel://u:pw-7f3a9c@s1/m/x",
            "redis+sentinel://s1/m/1/2",
            "redis+sentinel://s1/m?sentinel_username=u",
            "redis+sentinel://u:pw-7f3a9c@s1/m?nope=pw-7f3a9c",
            "redis+sentinel://user@s1/m",
        ] {
            let e = parse_target(bad).expect_err(bad);
            assert_eq!(e.option, "url");
            assert!(!e.to_string().contains("pw-7f3a9c"), "{bad}: {e}");
        }
        let e = parse_url("redis+sentinel://s1/m").unwrap_err();
        assert!(e.reason.contains("redis+sentinel"), "{e}");
    }

    #[test]
    fn questions_and_answers() {
        let target = SentinelTarget {
            sentinels: vec![],
            master_name: "m".into(),
            username: None,
            password: Some("p".into()),
        };
        let mut out = BytesMut::new();
        let asked = write_questions(&mut out, &target, true);
        assert_eq!(asked, [Asked::Auth, Asked::Master, Asked::Subscribe]);
        assert_eq!(
            &out[..],
            b"*2\r\n$4\r\nAUTH\r\n$1\r\np\r\n*3\r\n$8\r\nSENTINEL\r\n$23\r\nGET-MASTER-ADDR-BY-NAME\r\n$1\r\nm\r\n*2\r\n$9\r\nSUBSCRIBE\r\n$14\r\n+switch-master\r\n"
        );
        let addr = |port| ServerAddr {
            host: "10.0.0.2".into(),
            port,
        };
        assert_eq!(
            hear(Some(Asked::Auth), frame(b"+OK\r\n"), "m"),
            Ok(Heard::Ok)
        );
        assert_eq!(
            hear(
                Some(Asked::Master),
                frame(b"*2\r\n$8\r\n10.0.0.2\r\n$4\r\n6380\r\n"),
                "m"
            ),
            Ok(Heard::Master(addr(6380)))
        );
        assert_eq!(
            hear(Some(Asked::Master), frame(b"*-1\r\n"), "m"),
            Ok(Heard::UnknownMaster)
        );
        assert!(hear(Some(Asked::Master), frame(b"*1\r\n$1\r\nx\r\n"), "m").is_err());
        assert!(hear(Some(Asked::Master), frame(b"-ERR nope\r\n"), "m").is_err());
        assert_eq!(
            hear(
                Some(Asked::Subscribe),
                frame(b"*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n"),
                "m"
            ),
            Ok(Heard::Ok)
        );
        let message = |body: &str| {
            frame(
                format!(
                    "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n${}\r\n{body}\r\n",
                    body.len()
                )
                .as_bytes(),
            )
        };
        assert_eq!(
            hear(None, message("m 10.0.0.1 6379 10.0.0.2 6381"), "m"),
            Ok(Heard::Master(addr(6381)))
        );
        assert_eq!(
            hear(None, message("other 10.0.0.1 6379 10.0.0.2 6381"), "m"),
            Ok(Heard::Other)
        );
        assert_eq!(
            hear(None, message("m 10.0.0.1 6379 10.0.0.2 x"), "m"),
            Ok(Heard::Other)
        );
    }

    #[test]
    fn role_replies() {
        assert_eq!(
            role_is_master(frame(b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n")),
            Ok(true)
        );
        assert_eq!(
            role_is_master(frame(
                b"*5\r\n$5\r\nslave\r\n$1\r\nh\r\n:1\r\n$9\r\nconnected\r\n:0\r\n"
            )),
            Ok(false)
        );
        assert!(role_is_master(frame(b"+OK\r\n")).is_err());
        let e = not_master(None);
        assert_eq!(e.kind, crate::error::ServerErrorKind::ReadOnly);
    }
}
