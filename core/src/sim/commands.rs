//! The command table and every command's implementation.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;

use crate::id::StreamId;

use super::parse::{parse_i64, parse_id, range_bound, strict_id, Bound};
use super::reply::Reply;
use super::store::{
    entry_reply, instant_minus, ms_between, Group, Nack, Stream, Trim, Value, EPOCH_MS,
};
use super::{BlockGroup, Blocked, Conn, Core};

mod script;

/// What executing a command led to.
#[derive(Debug)]
pub(crate) enum Outcome {
    Reply(Reply),
    /// The client waits (only `XREAD[GROUP] ... BLOCK`).
    Block(Blocked),
    /// Reply, then close the connection (`QUIT`).
    Close(Reply),
}

impl From<Reply> for Outcome {
    fn from(r: Reply) -> Self {
        Outcome::Reply(r)
    }
}

/// A command's name, arity and flags, as in Redis's command table.
#[derive(Debug)]
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    arity: i32,
    /// May run before `AUTH`.
    pub(crate) no_auth: bool,
    /// Subcommands and their arities (container commands).
    subs: &'static [(&'static str, i32)],
}

const fn cmd(name: &'static str, arity: i32) -> Spec {
    Spec {
        name,
        arity,
        no_auth: false,
        subs: &[],
    }
}

const COMMANDS: &[Spec] = &[
    cmd("PING", -1),
    cmd("ECHO", 2),
    cmd("INFO", -1),
    cmd("SELECT", 2),
    Spec {
        name: "CLIENT",
        arity: -2,
        no_auth: false,
        subs: &[("SETNAME", 3), ("GETNAME", 2), ("ID", 2), ("UNBLOCK", -3)],
    },
    Spec {
        name: "AUTH",
        arity: -2,
        no_auth: true,
        subs: &[],
    },
    Spec {
        name: "HELLO",
        arity: -1,
        no_auth: true,
        subs: &[],
    },
    Spec {
        name: "QUIT",
        arity: -1,
        no_auth: true,
        subs: &[],
    },
    cmd("MULTI", 1),
    cmd("EXEC", 1),
    cmd("DISCARD", 1),
    cmd("DEL", -2),
    cmd("EXISTS", -2),
    cmd("TYPE", 2),
    cmd("SET", -3),
    cmd("GET", 2),
    cmd("PTTL", 2),
    cmd("FLUSHDB", -1),
    cmd("FLUSHALL", -1),
    cmd("XADD", -5),
    cmd("XDEL", -3),
    cmd("XTRIM", -4),
    cmd("XLEN", 2),
    cmd("XRANGE", -4),
    cmd("XREVRANGE", -4),
    Spec {
        name: "XGROUP",
        arity: -2,
        no_auth: false,
        subs: &[
            ("CREATE", -5),
            ("SETID", -5),
            ("DESTROY", 4),
            ("CREATECONSUMER", 5),
            ("DELCONSUMER", 5),
            ("HELP", 2),
        ],
    },
    cmd("XREAD", -4),
    cmd("XREADGROUP", -7),
    cmd("XACK", -4),
    cmd("XPENDING", -3),
    cmd("XCLAIM", -6),
    cmd("XAUTOCLAIM", -6),
    cmd("EVAL", -3),
];

/// Upper-cased, lossy name.
pub(crate) fn upper(name: &[u8]) -> String {
    String::from_utf8_lossy(name).to_ascii_uppercase()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn truncated(b: &[u8], max: usize) -> String {
    lossy(&b[..b.len().min(max)])
}

fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = i64::try_from(argc).unwrap_or(i64::MAX);
    let arity = i64::from(arity);
    if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

/// Finds the command and checks its arity, like `processCommand`.
pub(crate) fn check(args: &[Bytes]) -> Result<&'static Spec, Reply> {
    let name = args.first().map(|a| &a[..]).unwrap_or(b"");
    let upper_name = upper(name);
    let Some(spec) = COMMANDS.iter().find(|s| s.name == upper_name) else {
        let mut rest = String::new();
        for a in args.iter().skip(1) {
            if rest.len() >= 128 {
                break;
            }
            let room = 128 - rest.len();
            rest.push('\'');
            rest.push_str(&truncated(a, room));
            rest.push_str("' ");
        }
        return Err(Reply::err(format!(
            "ERR unknown command '{}', with args beginning with: {}",
            truncated(name, 128),
            rest
        )));
    };
    if !spec.subs.is_empty() && args.len() >= 2 {
        let sub = args.get(1).map(|a| &a[..]).unwrap_or(b"");
        let upper_sub = upper(sub);
        let Some((sub_name, sub_arity)) = spec.subs.iter().find(|(n, _)| *n == upper_sub) else {
            return Err(Reply::err(format!(
                "ERR unknown subcommand '{}'. Try {} HELP.",
                truncated(sub, 128),
                spec.name
            )));
        };
        if !arity_ok(*sub_arity, args.len()) {
            return Err(Reply::err(format!(
                "ERR wrong number of arguments for '{}|{}' command",
                spec.name.to_ascii_lowercase(),
                sub_name.to_ascii_lowercase()
            )));
        }
        return Ok(spec);
    }
    if !arity_ok(spec.arity, args.len()) {
        return Err(Reply::err(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name.to_ascii_lowercase()
        )));
    }
    Ok(spec)
}

fn arg(args: &[Bytes], i: usize) -> &[u8] {
    args.get(i).map(|a| &a[..]).unwrap_or(b"")
}

fn arg_bytes(args: &[Bytes], i: usize) -> Bytes {
    args.get(i).cloned().unwrap_or_default()
}

fn is(a: &[u8], word: &str) -> bool {
    a.eq_ignore_ascii_case(word.as_bytes())
}

fn int_arg(a: &[u8]) -> Result<i64, Reply> {
    parse_i64(a).ok_or_else(Reply::not_integer)
}

fn int_arg_msg(a: &[u8], msg: &str) -> Result<i64, Reply> {
    parse_i64(a).ok_or_else(|| Reply::err(format!("ERR {msg}")))
}

fn count_to_usize(n: i64) -> usize {
    usize::try_from(n.max(0)).unwrap_or(usize::MAX)
}

fn u64_of(n: i64) -> u64 {
    u64::try_from(n.max(0)).unwrap_or(0)
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unwrap_reply(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// Parsed `XREAD` / `XREADGROUP` request.
#[derive(Debug)]
struct ReadRequest {
    group: Option<BlockGroup>,
    count: usize,
    block_ms: Option<u64>,
    keys: Vec<Bytes>,
    ids: Vec<StreamId>,
}

/// `>` is represented like Redis does, by the maximal id.
const NEW_ID: StreamId = StreamId::MAX;

impl Core {
    /// Executes one command whose existence, arity and authentication were
    /// checked. `in_exec`: inside `EXEC` (blocking is not allowed).
    pub(crate) fn dispatch(&mut self, conn: &mut Conn, args: &[Bytes], in_exec: bool) -> Outcome {
        let name = upper(arg(args, 0));
        *self.counts.entry(name.clone()).or_insert(0) += 1;
        let db = conn.db;
        match name.as_str() {
            "PING" => match args.len() {
                1 => Reply::Simple("PONG").into(),
                2 => Reply::Bulk(arg_bytes(args, 1)).into(),
                _ => Reply::err("ERR wrong number of arguments for 'ping' command").into(),
            },
            "ECHO" => Reply::Bulk(arg_bytes(args, 1)).into(),
            // What clients read from it: the version (Redis 7.0's command
            // set is what the model answers) and that this is the model.
            "INFO" => Reply::Bulk(Bytes::from_static(
                b"# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\nxgroup_model:1\r\n",
            ))
            .into(),
            "SELECT" => match parse_i64(arg(args, 1)) {
                None => Reply::not_integer().into(),
                Some(n) if !(0..16).contains(&n) => {
                    Reply::err("ERR DB index is out of range").into()
                }
                Some(n) => {
                    conn.db = count_to_usize(n);
                    Reply::ok().into()
                }
            },
            "CLIENT" => self.client(conn, args).into(),
            "AUTH" => self.auth(conn, args).into(),
            "HELLO" => self.hello(conn, args).into(),
            "QUIT" => Outcome::Close(Reply::ok()),
            "MULTI" => {
                if conn.multi.is_some() {
                    Reply::err("ERR MULTI calls can not be nested").into()
                } else {
                    conn.multi = Some(Default::default());
                    Reply::ok().into()
                }
            }
            "DISCARD" => match conn.multi.take() {
                None => Reply::err("ERR DISCARD without MULTI").into(),
                Some(_) => Reply::ok().into(),
            },
            "EXEC" => self.exec(conn).into(),
            "DEL" => {
                let mut n = 0;
                for key in args.iter().skip(1) {
                    if self.remove_key(db, key) {
                        n += 1;
                    }
                }
                Reply::Int(n).into()
            }
            "EXISTS" => {
                let n = args
                    .iter()
                    .skip(1)
                    .filter(|k| self.live(db, k).is_some())
                    .count();
                Reply::Int(i64::try_from(n).unwrap_or(i64::MAX)).into()
            }
            "TYPE" => Reply::Simple(match self.live(db, arg(args, 1)) {
                None => "none",
                Some(Value::Stream(_)) => "stream",
                Some(Value::Str { .. }) => "string",
            })
            .into(),
            "SET" => unwrap_reply(self.set(db, args)).into(),
            "GET" => match self.live(db, arg(args, 1)) {
                None => Reply::NilBulk.into(),
                Some(Value::Str { value, .. }) => Reply::Bulk(value.clone()).into(),
                Some(Value::Stream(_)) => Reply::wrongtype().into(),
            },
            "PTTL" => Reply::Int(match self.live(db, arg(args, 1)) {
                None => -2,
                Some(Value::Str {
                    expires: Some(at), ..
                }) => i64_of(ms_between(self.now, *at)),
                Some(_) => -1,
            })
            .into(),
            "FLUSHDB" => {
                self.flush(db);
                Reply::ok().into()
            }
            "FLUSHALL" => {
                for d in 0..self.dbs.len() {
                    self.flush(d);
                }
                Reply::ok().into()
            }
            "XADD" => unwrap_reply(self.xadd_cmd(db, args)).into(),
            "XDEL" => unwrap_reply(self.xdel_cmd(db, args)).into(),
            "XTRIM" => unwrap_reply(self.xtrim_cmd(db, args)).into(),
            "XLEN" => match self.stream(db, arg(args, 1)) {
                Err(e) => e.into(),
                Ok(s) => Reply::Int(s.map_or(0, |s| i64_of(s.entries.len() as u64))).into(),
            },
            "XRANGE" => unwrap_reply(self.xrange_cmd(db, args, false)).into(),
            "XREVRANGE" => unwrap_reply(self.xrange_cmd(db, args, true)).into(),
            "XGROUP" => unwrap_reply(self.xgroup_cmd(db, args)).into(),
            "XREAD" => self.xread_cmd(db, args, false, in_exec),
            "XREADGROUP" => self.xread_cmd(db, args, true, in_exec),
            "XACK" => unwrap_reply(self.xack_cmd(db, args)).into(),
            "XPENDING" => unwrap_reply(self.xpending_cmd(db, args)).into(),
            "XCLAIM" => unwrap_reply(self.xclaim_cmd(db, args)).into(),
            "XAUTOCLAIM" => unwrap_reply(self.xautoclaim_cmd(db, args)).into(),
            "EVAL" => self.eval_cmd(db, args).into(),
            _ => Reply::err(format!("ERR unknown command '{name}'")).into(),
        }
    }

    fn client(&mut self, conn: &mut Conn, args: &[Bytes]) -> Reply {
        let sub = upper(arg(args, 1));
        match sub.as_str() {
            "SETNAME" => {
                let name = arg(args, 2);
                if !valid_client_name(name) {
                    return Reply::err(
                        "ERR Client names cannot contain spaces, newlines or special characters.",
                    );
                }
                conn.name = if name.is_empty() {
                    None
                } else {
                    Some(arg_bytes(args, 2))
                };
                Reply::ok()
            }
            "GETNAME" => conn.name.clone().map_or(Reply::NilBulk, Reply::Bulk),
            "ID" => Reply::Int(i64_of(conn.id)),
            _ => Reply::err(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                truncated(arg(args, 1), 128)
            )),
        }
    }

    /// Whether `user`/`pass` authenticate (ACL rules of a server with only
    /// the configured user).
    fn credentials_ok(&self, user: &[u8], pass: &[u8]) -> bool {
        let expected_user = self.options.username.as_deref().unwrap_or("default");
        match &self.options.password {
            None => user == b"default",
            Some(p) => user == expected_user.as_bytes() && pass == p.as_bytes(),
        }
    }

    fn auth(&mut self, conn: &mut Conn, args: &[Bytes]) -> Reply {
        let (user, pass) = match args.len() {
            2 => {
                if self.options.password.is_none() {
                    return Reply::err(
                        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                    );
                }
                (&b"default"[..], arg(args, 1))
            }
            3 => (arg(args, 1), arg(args, 2)),
            _ => return Reply::syntax(),
        };
        if self.credentials_ok(user, pass) {
            conn.authed = true;
            Reply::ok()
        } else {
            Reply::err("WRONGPASS invalid username-password pair or user is disabled.")
        }
    }

    fn hello(&mut self, conn: &mut Conn, args: &[Bytes]) -> Reply {
        let mut proto = None;
        let mut next = 1;
        if args.len() >= 2 {
            match parse_i64(arg(args, 1)) {
                None => {
                    return Reply::err("ERR Protocol version is not an integer or out of range")
                }
                Some(v) if !(2..=3).contains(&v) => {
                    return Reply::err("NOPROTO unsupported protocol version")
                }
                Some(v) => proto = Some(v),
            }
            next = 2;
        }
        let mut creds = None;
        let mut setname = None;
        let mut j = next;
        while j < args.len() {
            let more = args.len() - 1 - j;
            let opt = arg(args, j);
            if is(opt, "AUTH") && more >= 2 {
                creds = Some((arg(args, j + 1), arg(args, j + 2)));
                j += 2;
            } else if is(opt, "SETNAME") && more >= 1 {
                setname = Some(arg_bytes(args, j + 1));
                j += 1;
            } else {
                return Reply::err(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    truncated(opt, 128)
                ));
            }
            j += 1;
        }
        if let Some((user, pass)) = creds {
            if !self.credentials_ok(user, pass) {
                return Reply::err("WRONGPASS invalid username-password pair or user is disabled.");
            }
            conn.authed = true;
        }
        if !conn.authed {
            return Reply::err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        }
        if let Some(name) = setname {
            if !valid_client_name(&name) {
                return Reply::err(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            conn.name = if name.is_empty() { None } else { Some(name) };
        }
        if let Some(v) = proto {
            conn.resp3 = v == 3;
        }
        let b = |s: &'static str| Reply::Bulk(Bytes::from_static(s.as_bytes()));
        Reply::Map(vec![
            (b("server"), b("redis")),
            (b("version"), b("7.0.15")),
            (b("proto"), Reply::Int(if conn.resp3 { 3 } else { 2 })),
            (b("id"), Reply::Int(i64_of(conn.id))),
            (b("mode"), b("standalone")),
            (b("role"), b("master")),
            (b("modules"), Reply::Array(Vec::new())),
        ])
    }

    fn exec(&mut self, conn: &mut Conn) -> Reply {
        let Some(multi) = conn.multi.take() else {
            return Reply::err("ERR EXEC without MULTI");
        };
        if multi.failed {
            return Reply::err("EXECABORT Transaction discarded because of previous errors.");
        }
        let mut replies = Vec::with_capacity(multi.queued.len());
        for args in &multi.queued {
            match self.dispatch(conn, args, true) {
                Outcome::Reply(r) | Outcome::Close(r) => replies.push(r),
                // Cannot happen inside EXEC; answer like a timeout.
                Outcome::Block(_) => replies.push(Reply::NilArray),
            }
        }
        Reply::Array(replies)
    }

    fn set(&mut self, db: usize, args: &[Bytes]) -> Result<Reply, Reply> {
        let key = arg_bytes(args, 1);
        let value = arg_bytes(args, 2);
        let mut expires = None;
        let mut nx = false;
        let mut xx = false;
        let mut get = false;
        let mut keepttl = false;
        let mut j = 3;
        while j < args.len() {
            let opt = arg(args, j);
            let has_next = j + 1 < args.len();
            if is(opt, "NX") && !xx {
                nx = true;
            } else if is(opt, "XX") && !nx {
                xx = true;
            } else if is(opt, "GET") {
                get = true;
            } else if is(opt, "KEEPTTL") && expires.is_none() {
                keepttl = true;
            } else if (is(opt, "EX") || is(opt, "PX")) && has_next && expires.is_none() && !keepttl
            {
                let n = int_arg(arg(args, j + 1))?;
                let ms = if is(opt, "EX") {
                    n.checked_mul(1000)
                } else {
                    Some(n)
                };
                match ms {
                    Some(ms) if ms > 0 => {
                        expires = Some(self.now + std::time::Duration::from_millis(u64_of(ms)))
                    }
                    _ => return Err(Reply::err("ERR invalid expire time in 'set' command")),
                }
                j += 1;
            } else {
                return Err(Reply::syntax());
            }
            j += 1;
        }
        let old = match self.live(db, &key) {
            None => None,
            Some(Value::Str { value, expires }) => Some((value.clone(), *expires)),
            Some(Value::Stream(_)) if get => return Err(Reply::wrongtype()),
            Some(Value::Stream(_)) => Some((Bytes::new(), None)),
        };
        let exists = old.is_some();
        let old_reply = || match &old {
            Some((v, _)) => Reply::Bulk(v.clone()),
            None => Reply::NilBulk,
        };
        if (nx && exists) || (xx && !exists) {
            return Ok(if get { old_reply() } else { Reply::NilBulk });
        }
        if keepttl {
            expires = old.as_ref().and_then(|(_, e)| *e);
        }
        let reply = if get { old_reply() } else { Reply::ok() };
        self.remove_key(db, &key);
        if let Some(d) = self.dbs.get_mut(db) {
            d.keys.insert(key, Value::Str { value, expires });
        }
        Ok(reply)
    }

    fn flush(&mut self, db: usize) {
        let keys: Vec<Bytes> = match self.dbs.get(db) {
            Some(d) => d.keys.keys().cloned().collect(),
            None => return,
        };
        for k in keys {
            self.remove_key(db, &k);
        }
    }

    // ---- streams --------------------------------------------------------

    fn xadd_cmd(&mut self, db: usize, args: &[Bytes]) -> Result<Reply, Reply> {
        let parsed = parse_add_trim(args, true)?;
        let field_pos = parsed.next;
        let rest = args.len().saturating_sub(field_pos);
        if rest < 3 || rest % 2 == 0 {
            return Err(Reply::err(
                "ERR wrong number of arguments for 'xadd' command",
            ));
        }
        if let Some(p) = parsed.id {
            if p.seq_given && p.id.is_zero() {
                return Err(Reply::err(
                    "ERR The ID specified in XADD must be greater than 0-0",
                ));
            }
        }
        let key = arg_bytes(args, 1);
        let existing = self.stream(db, &key)?;
        let last = match existing {
            Some(s) => s.last_id,
            None if parsed.nomkstream => return Ok(Reply::NilBulk),
            None => StreamId::ZERO,
        };
        if last == StreamId::MAX {
            return Err(Reply::err(
                "ERR The stream has exhausted the last possible ID, unable to add more items",
            ));
        }
        let too_small = || {
            Reply::err(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            )
        };
        let id = match parsed.id {
            None => self.auto_id(last),
            Some(p) if p.seq_given => {
                if p.id <= last {
                    return Err(too_small());
                }
                p.id
            }
            Some(p) => {
                if p.id.ms > last.ms {
                    StreamId::new(p.id.ms, 0)
                } else if p.id.ms == last.ms && last.seq < u64::MAX {
                    StreamId::new(last.ms, last.seq + 1)
                } else {
                    return Err(too_small());
                }
            }
        };
        let mut fields = Vec::with_capacity(rest / 2);
        let mut j = field_pos + 1;
        while j + 1 < args.len() {
            fields.push((arg_bytes(args, j), arg_bytes(args, j + 1)));
            j += 2;
        }
        let Some(s) = self.stream_or_create(db, &key) else {
            return Err(Reply::err("ERR DB index is out of range"));
        };
        s.entries.insert(id, fields);
        s.last_id = id;
        s.entries_added += 1;
        if let Some(trim) = parsed.trim {
            s.trim(trim);
        }
        self.signal(db, &key);
        Ok(Reply::id(id))
    }

    /// The next automatic id after `last` on the virtual clock.
    pub(crate) fn auto_id(&self, last: StreamId) -> StreamId {
        let ms = EPOCH_MS.saturating_add(ms_between(self.created, self.now));
        if ms > last.ms {
            StreamId::new(ms, 0)
        } else {
            last.successor().unwrap_or(StreamId::MAX)
        }
    }

    fn xdel_cmd(&mut self, db: usize, args: &[Bytes]) -> Result<Reply, Reply> {
        let key = arg(args, 1);
        if self.stream(db, key)?.is_none() {
            return Ok(Reply::Int(0));
        }
        let mut ids = Vec::new();
        for a in args.iter().skip(2) {
            ids.push(strict_id(a).ok_or_else(Reply::invalid_id)?);
        }
        let mut n = 0;
        if let Some(s) = self.stream_mut(db, key)? {
            for id in ids {
                if s.entries.remove(&id).is_some() {
                    n += 1;
                }
            }
        }
        Ok(Reply::Int(n))
    }

    fn xtrim_cmd(&mut self, db: usize, args: &[Bytes]) -> Result<Reply, Reply> {
        let key = arg(args, 1);
        if self.stream(db, key)?.is_none() {
            return Ok(Reply::Int(0));
        }
        let parsed = parse_add_trim(args, false)?;
        let mut n = 0;
        if let (Some(s), Some(trim)) = (self.stream_mut(db, key)?, parsed.trim) {
            n = s.trim(trim);
        }
        Ok(Reply::Int(i64_of(n)))
    }

    fn xrange_cmd(&mut self, db: usize, args: &[Bytes], rev: bool) -> Result<Reply, Reply> {
        let (start_arg, end_arg) = if rev { (3, 2) } else { (2, 3) };
        let start = match range_bound(arg(args, start_arg), true) {
            Bound::Ok(id) => id,
            Bound::Invalid => return Err(Reply::invalid_id()),
            Bound::Exhausted => return Err(Reply::err("ERR invalid start ID for the interval")),
        };
        let end = match range_bound(arg(args, end_arg), false) {
            Bound::Ok(id) => id,
            Bound::Invalid => return Err(Reply::invalid_id()),
            Bound::Exhausted => return Err(Reply::err("ERR invalid end ID for the interval")),
        };
        let mut count: i64 = -1;
        let mut j = 4;
        while j < args.len() {
            if is(arg(args, j), "COUNT") && j + 1 < args.len() {
                count = int_arg(arg(args, j + 1))?.max(0);
                j += 2;
            } else {
                return Err(Reply::syntax());
            }
        }
        let Some(s) = self.stream(db, arg(args, 1))? else {
            return Ok(Reply::Array(Vec::new()));
        };
        if count == 0 {
            return Ok(Reply::NilArray);
        }
        let limit = if count < 0 {
            usize::MAX
        } else {
            count_to_usize(count)
        };
        if start > end {
            return Ok(Reply::Array(Vec::new()));
        }
        let range = s.entries.range(start..=end);
        let items: Vec<Reply> = if rev {
            range
                .rev()
                .take(limit)
                .map(|(id, f)| entry_reply(*id, f))
                .collect()
        } else {
            range
                .take(limit)
                .map(|(id, f)| entry_reply(*id, f))
                .collect()
        };
        Ok(Reply::Array(items))
    }

    fn xgroup_cmd(&mut self, db: usize, args: &[Bytes]) -> Result<Reply, Reply> {
        let sub_raw = arg(args, 1);
        let sub = upper(sub_raw);
        if sub == "HELP" {
            let lines = [
                "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CREATE <key> <groupname> <id|$> [option]",
                "CREATECONSUMER <key> <groupname> <consumer>",
                "DELCONSUMER <key> <groupname> <consumername>",
                "DESTROY <key> <groupname>",
                "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
                "HELP",
            ];
            return Ok(Reply::Array(
                lines
                    .iter()
                    .map(|l| Reply::Bulk(Bytes::from_static(l.as_bytes())))
                    .collect(),
            ));
        }
        let syntax = || {
            Reply::err(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try XGROUP HELP.",
                truncated(sub_raw, 128)
            ))
        };
        let mut mkstream = false;
        let mut entries_read: i64 = -1;
        if sub == "CREATE" || sub == "SETID" {
            let mut i = 5;
            while i < args.len() {
                if sub == "CREATE" && is(arg(args, i), "MKSTREAM") {
                    mkstream = true;
                    i += 1;
                } else if is(arg(args, i), "ENTRIESREAD") && i + 1 < args.len() {
                    entries_read = int_arg(arg(args, i + 1))?;
                    if entries_read < -1 {
                        return Err(Reply::err(
                            "ERR value for ENTRIESREAD must be positive or -1",
                        ));
                    }
                    i += 2;
                } else {
                    return Err(syntax());
                }
            }
        }
        let key = arg_bytes(args, 2);
        let group = arg_bytes(args, 3);
        // The key's type is checked first, MKSTREAM or not: CREATE ... MKSTREAM
        // on a string is WRONGTYPE, it does not replace the string.
        self.stream(db, &key)?;
        if !mkstream {
            let Some(s) = self.stream(db, &key)? else {
                return Err(Reply::err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
            };
            if !s.groups.contains_key(&group)
                && matches!(sub.as_str(), "SETID" | "CREATECONSUMER" | "DELCONSUMER")
            {
                return Err(Reply::err(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    lossy(&group),
                    lossy(&key)
                )));
            }
        }
        let now = self.now;
        match sub.as_str() {
            "CREATE" if args.len() <= 8 => {
                let id_arg = arg(args, 4);
                let id = if id_arg == b"$" {
                    self.stream(db, &key)?.map_or(StreamId::ZERO, |s| s.last_id)
                } else {
                    strict_id(id_arg).ok_or_else(Reply::invalid_id)?
                };
                let Some(s) = self.stream_or_create(db, &key) else {
                    return Err(Reply::err("ERR DB index is out of range"));
                };
                if s.groups.contains_key(&group) {
                    return Err(Reply::err("BUSYGROUP Consumer Group name already exists"));
                }
                s.groups.insert(group, Group::new(id, entries_read));
                Ok(Reply::ok())
            }
            "SETID" if args.len() == 5 || args.len() == 7 => {
                let id_arg = arg(args, 4);
                let Some(s) = self.stream_mut(db, &key)? else {
                    return Err(syntax());
                };
                let id = if id_arg == b"$" {
                    s.last_id
                } else {
                    parse_id(id_arg, false, 0, false)
                        .ok_or_else(Reply::invalid_id)?
                        .id
                };
                if let Some(g) = s.groups.get_mut(&group) {
                    g.last_id = id;
                    g.entries_read = entries_read;
                }
                Ok(Reply::ok())
            }
            "DESTROY" if args.len() == 4 => {
                let removed = self
                    .stream_mut(db, &key)?
                    .is_some_and(|s| s.groups.remove(&group).is_some());
                if removed {
                    self.signal(db, &key);
                }
                Ok(Reply::Int(i64::from(removed)))
            }
            "CREATECONSUMER" if args.len() == 5 => {
                let consumer = arg_bytes(args, 4);
                let created = match self.group_mut(db, &key, &group)? {
                    Some(g) if !g.consumers.contains_key(&consumer) => {
                        g.touch_consumer(&consumer, now);
                        true
                    }
                    _ => false,
                };
                Ok(Reply::Int(i64::from(created)))
            }
            "DELCONSUMER" if args.len() == 5 => {
                let consumer = arg_bytes(args, 4);
                let mut pending = 0;
                if let Some(g) = self.group_mut(db, &key, &group)? {
                    if g.consumers.remove(&consumer).is_some() {
                        let before = g.pel.len();
                        g.pel.retain(|_, n| n.consumer != consumer);
                        pending = before - g.pel.len();
                    }
                }
                Ok(Reply::Int(i64_of(pending as u64)))
            }
            _ => Err(syntax()),
        }
    }

    fn group_mut(
        &mut self,
        db: usize,
        key: &[u8],
        group: &[u8],
    ) -> Result<Option<&mut Group>, Reply> {
        Ok(self
            .stream_mut(db, key)?
            .and_then(|s| s.groups.get_mut(group)))
    }

    fn xread_cmd(&mut self, db: usize, args: &[Bytes], group: bool, in_exec: bool) -> Outcome {
        let req = match self.parse_read(db, args, group) {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        let served = self.serve_read(db, &req);
        if !served.is_empty() {
            return Outcome::Reply(read_reply(served));
        }
        match req.block_ms {
            Some(_) if in_exec => Reply::NilArray.into(),
            Some(ms) => Outcome::Block(Blocked {
                seq: 0,
                db,
                keys: req.keys,
                ids: req.ids,
                group: req.group,
                count: req.count,
                deadline: if ms == 0 {
                    None
                } else {
                    Some(self.now + std::time::Duration::from_millis(ms))
                },
            }),
            None => Reply::NilArray.into(),
        }
    }

    fn parse_read(
        &self,
        db: usize,
        args: &[Bytes],
        xreadgroup: bool,
    ) -> Result<ReadRequest, Reply> {
        let mut block_ms = None;
        let mut count: i64 = 0;
        let mut streams_arg = 0;
        let mut group: Option<(Bytes, Bytes)> = None;
        let mut noack = false;
        let mut i = 1;
        while i < args.len() {
            let more = args.len() - i - 1;
            let o = arg(args, i);
            if is(o, "BLOCK") && more > 0 {
                i += 1;
                let t = int_arg_msg(arg(args, i), "timeout is not an integer or out of range")?;
                if t < 0 {
                    return Err(Reply::err("ERR timeout is negative"));
                }
                block_ms = Some(u64_of(t));
            } else if is(o, "COUNT") && more > 0 {
                i += 1;
                count = int_arg(arg(args, i))?.max(0);
            } else if is(o, "STREAMS") && more > 0 {
                streams_arg = i + 1;
                if (args.len() - streams_arg) % 2 != 0 {
                    // Redis 7.0 names XREAD and '$' for XREADGROUP too.
                    return Err(Reply::err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
                }
                break;
            } else if is(o, "GROUP") && more >= 2 {
                if !xreadgroup {
                    return Err(Reply::err(
                        "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                    ));
                }
                group = Some((arg_bytes(args, i + 1), arg_bytes(args, i + 2)));
                i += 2;
            } else if is(o, "NOACK") {
                if !xreadgroup {
                    return Err(Reply::err(
                        "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                    ));
                }
                noack = true;
            } else {
                return Err(Reply::syntax());
            }
            i += 1;
        }
        if streams_arg == 0 {
            return Err(Reply::syntax());
        }
        if xreadgroup && group.is_none() {
            return Err(Reply::err("ERR Missing GROUP option for XREADGROUP"));
        }
        let n = (args.len() - streams_arg) / 2;
        let mut keys = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        for k in 0..n {
            let key = arg_bytes(args, streams_arg + k);
            let id_arg = arg(args, streams_arg + n + k);
            let s = self.stream(db, &key)?;
            if let Some((g, _)) = &group {
                if !s.is_some_and(|s| s.groups.contains_key(g)) {
                    return Err(Reply::err(format!(
                        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                        lossy(&key),
                        lossy(g)
                    )));
                }
            }
            let id = if id_arg == b"$" {
                if xreadgroup {
                    return Err(Reply::err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
                }
                s.map_or(StreamId::ZERO, |s| s.last_id)
            } else if id_arg == b">" {
                if !xreadgroup {
                    return Err(Reply::err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
                }
                NEW_ID
            } else {
                strict_id(id_arg).ok_or_else(Reply::invalid_id)?
            };
            keys.push(key);
            ids.push(id);
        }
        Ok(ReadRequest {
            group: group.map(|(group, consumer)| BlockGroup {
                group,
                consumer,
                noack,
            }),
            count: count_to_usize(count),
            block_ms,
            keys,
            ids,
        })
    }

    /// Serves a read synchronously: `(key, entries)` for every stream served.
    fn serve_read(&mut self, db: usize, req: &ReadRequest) -> Vec<(Bytes, Vec<Reply>)> {
        let now = self.now;
        let mut out = Vec::new();
        for (key, &id) in req.keys.iter().zip(&req.ids) {
            let Ok(Some(s)) = self.stream_mut(db, key) else {
                continue;
            };
            match &req.group {
                None => {
                    if s.last_valid_id() > id {
                        let entries = range_after(s, id, req.count);
                        out.push((key.clone(), entries));
                    }
                }
                Some(bg) => {
                    let last_valid = s.last_valid_id();
                    let Some(g) = s.groups.get(&bg.group) else {
                        continue;
                    };
                    if id != NEW_ID {
                        let entries = serve_history(s, bg, id, req.count, now);
                        out.push((key.clone(), entries));
                    } else if last_valid > g.last_id {
                        let after = g.last_id;
                        let entries = serve_new(s, bg, after, req.count, now);
                        out.push((key.clone(), entries));
                    }
                }
            }
        }
        out
    }

    /// Tries to serve a client blocked on `key` after the key was signaled.
    /// `None`: keep waiting.
    pub(crate) fn serve_blocked(&mut self, blocked: &Blocked, key: &Bytes) -> Option<Reply> {
        let now = self.now;
        let idx = blocked.keys.iter().position(|k| k == key)?;
        let s = match self.stream_mut(blocked.db, key) {
            Ok(Some(s)) => s,
            _ if blocked.group.is_some() => {
                return Some(Reply::err("UNBLOCKED the stream key no longer exists"))
            }
            _ => return None,
        };
        match &blocked.group {
            None => {
                let after = *blocked.ids.get(idx)?;
                if s.last_id > after {
                    let entries = range_after(s, after, blocked.count);
                    return Some(read_reply(vec![(key.clone(), entries)]));
                }
                None
            }
            Some(bg) => {
                let Some(g) = s.groups.get(&bg.group) else {
                    return Some(Reply::err(
                        "NOGROUP the consumer group this client was blocked on no longer exists",
                    ));
                };
                let after = g.last_id;
                if s.last_id > after {
                    let entries = serve_new(s, bg, after, blocked.count, now);
                    return Some(read_reply(vec![(key.clone(), entries)]));
                }
                None
            }
        }
    }

    fn xack_cmd(&mut self, db: usize, args: &[Bytes]) -> Result<Reply, Reply> {
        let key = arg_bytes(args, 1);
        let group = arg_bytes(args, 2);
        let has_group = self
            .stream(db, &key)?
            .is_some_and(|s| s.groups.contains_key(&group));
        if !has_group {
            for a in args.iter().skip(3) {
                if let Some(id) = strict_id(a) {
                    self.acks.push((key.clone(), group.clone(), id, false));
                }
            }
            return Ok(Reply::Int(0));
        }
        let mut ids = Vec::new();
        for a in args.iter().skip(3) {
            ids.push(strict_id(a).ok_or_else(Reply::invalid_id)?);
        }
        let mut records = Vec::with_capacity(ids.len());
        let mut n = 0;
        if let Some(g) = self.group_mut(db, &key, &group)? {
            for id in ids {
                let was = g.pel.remove(&id).is_some();
                if was {
                    n += 1;
                }
                records.push((key.clone(), group.clone(), id, was));
            }
        }
        self.acks.extend(records);
        Ok(Reply::Int(n))
    }

    fn xpending_cmd(&mut self, db: usize, args: &[Bytes]) -> Result<Reply, Reply> {
        let argc = args.len();
        let justinfo = argc == 3;
        if argc != 3 && !(6..=9).contains(&argc) {
            return Err(Reply::syntax());
        }
        let mut start = StreamId::ZERO;
        let mut end = StreamId::MAX;
        let mut count: i64 = 0;
        let mut min_idle: i64 = 0;
        let mut consumer = None;
        if argc >= 6 {
            let mut startidx = 3;
            if is(arg(args, 3), "IDLE") {
                min_idle = int_arg(arg(args, 4))?;
                if argc < 8 {
                    return Err(Reply::syntax());
                }
                startidx += 2;
            }
            count = int_arg(arg(args, startidx + 2))?.max(0);
            start = match range_bound(arg(args, startidx), true) {
                Bound::Ok(id) => id,
                Bound::Invalid => return Err(Reply::invalid_id()),
                Bound::Exhausted => {
                    return Err(Reply::err("ERR invalid start ID for the interval"))
                }
            };
            end = match range_bound(arg(args, startidx + 1), false) {
                Bound::Ok(id) => id,
                Bound::Invalid => return Err(Reply::invalid_id()),
                Bound::Exhausted => return Err(Reply::err("ERR invalid end ID for the interval")),
            };
            if startidx + 3 < argc {
                consumer = Some(arg_bytes(args, startidx + 3));
            }
        }
        let key = arg(args, 1);
        let group_name = arg(args, 2);
        let now = self.now;
        let s = self.stream(db, key)?;
        let Some(g) = s.and_then(|s| s.groups.get(group_name)) else {
            return Err(Reply::err(format!(
                "NOGROUP No such key '{}' or consumer group '{}'",
                lossy(key),
                lossy(group_name)
            )));
        };
        if justinfo {
            let (Some(first), Some(last)) = (g.pel.keys().next(), g.pel.keys().next_back()) else {
                return Ok(Reply::Array(vec![
                    Reply::Int(0),
                    Reply::NilBulk,
                    Reply::NilBulk,
                    Reply::NilArray,
                ]));
            };
            let mut per: BTreeMap<&Bytes, u64> = BTreeMap::new();
            for n in g.pel.values() {
                *per.entry(&n.consumer).or_insert(0) += 1;
            }
            let consumers = per
                .into_iter()
                .map(|(c, n)| {
                    Reply::Array(vec![
                        Reply::Bulk(c.clone()),
                        Reply::Bulk(Bytes::from(n.to_string())),
                    ])
                })
                .collect();
            return Ok(Reply::Array(vec![
                Reply::Int(i64_of(g.pel.len() as u64)),
                Reply::id(*first),
                Reply::id(*last),
                Reply::Array(consumers),
            ]));
        }
        if let Some(c) = &consumer {
            if !g.consumers.contains_key(c) {
                return Ok(Reply::Array(Vec::new()));
            }
        }
        let mut items = Vec::new();
        if start <= end {
            for (id, n) in g.pel.range(start..=end) {
                if count == 0 {
                    break;
                }
                if consumer.as_ref().is_some_and(|c| *c != n.consumer) {
                    continue;
                }
                let idle = ms_between(n.delivery_time, now);
                if min_idle > 0 && i64_of(idle) < min_idle {
                    continue;
                }
                count -= 1;
                items.push(Reply::Array(vec![
                    Reply::id(*id),
                    Reply::Bulk(n.consumer.clone()),
                    Reply::Int(i64_of(idle)),
                    Reply::Int(i64_of(n.delivery_count)),
                ]));
            }
        }
        Ok(Reply::Array(items))
    }

    fn xclaim_cmd(&mut self, db: usize, args: &[Bytes]) -> Result<Reply, Reply> {
        let key = arg_bytes(args, 1);
        let group_name = arg_bytes(args, 2);
        let consumer = arg_bytes(args, 3);
        let has_group = self
            .stream(db, &key)?
            .is_some_and(|s| s.groups.contains_key(&group_name));
        if !has_group {
            return Err(Reply::err(format!(
                "NOGROUP No such key '{}' or consumer group '{}'",
                lossy(&key),
                lossy(&group_name)
            )));
        }
        let min_idle =
            int_arg_msg(arg(args, 4), "Invalid min-idle-time argument for XCLAIM")?.max(0);
        let mut ids = Vec::new();
        let mut j = 5;
        while j < args.len() {
            match strict_id(arg(args, j)) {
                Some(id) => ids.push(id),
                None => break,
            }
            j += 1;
        }
        let now_ms = EPOCH_MS.saturating_add(ms_between(self.created, self.now));
        let now_ms = i64_of(now_ms);
        let mut force = false;
        let mut justid = false;
        let mut delivery: Option<i64> = None;
        let mut retrycount: Option<i64> = None;
        let mut last_id = StreamId::ZERO;
        while j < args.len() {
            let more = args.len() - 1 - j;
            let opt = arg(args, j);
            if is(opt, "FORCE") {
                force = true;
            } else if is(opt, "JUSTID") {
                justid = true;
            } else if is(opt, "IDLE") && more > 0 {
                j += 1;
                let idle = int_arg_msg(arg(args, j), "Invalid IDLE option argument for XCLAIM")?;
                delivery = Some(now_ms.saturating_sub(idle));
            } else if is(opt, "TIME") && more > 0 {
                j += 1;
                delivery = Some(int_arg_msg(
                    arg(args, j),
                    "Invalid TIME option argument for XCLAIM",
                )?);
            } else if is(opt, "RETRYCOUNT") && more > 0 {
                j += 1;
                retrycount = Some(int_arg_msg(
                    arg(args, j),
                    "Invalid RETRYCOUNT option argument for XCLAIM",
                )?);
            } else if is(opt, "LASTID") && more > 0 {
                j += 1;
                last_id = strict_id(arg(args, j)).ok_or_else(Reply::invalid_id)?;
            } else {
                return Err(Reply::err(format!(
                    "ERR Unrecognized XCLAIM option '{}'",
                    truncated(opt, 128)
                )));
            }
            j += 1;
        }
        let delivery_ms = match delivery {
            Some(d) if (0..=now_ms).contains(&d) => d,
            _ => now_ms,
        };
        let now = self.now;
        let delivery_time = instant_minus(now, u64_of(now_ms - delivery_ms), self.created);
        let Some(s) = self.stream_mut(db, &key)? else {
            return Ok(Reply::Array(Vec::new()));
        };
        let Stream {
            entries, groups, ..
        } = s;
        let Some(g) = groups.get_mut(&group_name) else {
            return Ok(Reply::Array(Vec::new()));
        };
        if last_id > g.last_id {
            g.last_id = last_id;
        }
        let mut out = Vec::new();
        for id in ids {
            if !entries.contains_key(&id) {
                g.pel.remove(&id);
                continue;
            }
            let mut fresh = false;
            if force && !g.pel.contains_key(&id) {
                g.pel.insert(
                    id,
                    Nack {
                        consumer: Bytes::new(),
                        delivery_time: now,
                        delivery_count: 1,
                    },
                );
                fresh = true;
            }
            let Some(nack) = g.pel.get_mut(&id) else {
                continue;
            };
            if !fresh && min_idle > 0 && i64_of(ms_between(nack.delivery_time, now)) < min_idle {
                continue;
            }
            nack.consumer = consumer.clone();
            nack.delivery_time = delivery_time;
            match retrycount {
                Some(n) if n >= 0 => nack.delivery_count = u64_of(n),
                _ if !justid => nack.delivery_count += 1,
                _ => {}
            }
            g.touch_consumer(&consumer, now);
            if justid {
                out.push(Reply::id(id));
            } else if let Some(fields) = entries.get(&id) {
                out.push(entry_reply(id, fields));
            }
        }
        Ok(Reply::Array(out))
    }

    fn xautoclaim_cmd(&mut self, db: usize, args: &[Bytes]) -> Result<Reply, Reply> {
        let min_idle = int_arg_msg(
            arg(args, 4),
            "Invalid min-idle-time argument for XAUTOCLAIM",
        )?
        .max(0);
        let start = match range_bound(arg(args, 5), true) {
            Bound::Ok(id) => id,
            Bound::Invalid => return Err(Reply::invalid_id()),
            Bound::Exhausted => return Err(Reply::err("ERR invalid start ID for the interval")),
        };
        let mut count: i64 = 100;
        let mut justid = false;
        let mut j = 6;
        while j < args.len() {
            let more = args.len() - 1 - j;
            let opt = arg(args, j);
            if is(opt, "COUNT") && more > 0 {
                count = match parse_i64(arg(args, j + 1)) {
                    Some(n) if (1..=i64::MAX / 16).contains(&n) => n,
                    _ => return Err(Reply::err("ERR COUNT must be > 0")),
                };
                j += 1;
            } else if is(opt, "JUSTID") {
                justid = true;
            } else {
                return Err(Reply::syntax());
            }
            j += 1;
        }
        let key = arg_bytes(args, 1);
        let group_name = arg_bytes(args, 2);
        let consumer = arg_bytes(args, 3);
        let has_group = self
            .stream(db, &key)?
            .is_some_and(|s| s.groups.contains_key(&group_name));
        if !has_group {
            return Err(Reply::err(format!(
                "NOGROUP No such key '{}' or consumer group '{}'",
                lossy(&key),
                lossy(&group_name)
            )));
        }
        let v62 = self.options.autoclaim_v62;
        let now = self.now;
        let Some(s) = self.stream_mut(db, &key)? else {
            return Err(Reply::syntax());
        };
        let Stream {
            entries, groups, ..
        } = s;
        let Some(g) = groups.get_mut(&group_name) else {
            return Err(Reply::syntax());
        };
        let mut attempts = count.saturating_mul(10);
        let mut claimed = Vec::new();
        let mut deleted = Vec::new();
        // The next PEL position to examine; `None` once past the largest id.
        let mut cursor = Some(start);
        let next_cursor = loop {
            let next = cursor.and_then(|c| g.pel.range(c..).next().map(|(id, _)| *id));
            if attempts == 0 || count == 0 {
                break next.unwrap_or(StreamId::ZERO);
            }
            attempts -= 1;
            let Some(id) = next else {
                break StreamId::ZERO;
            };
            cursor = id.successor();
            if !entries.contains_key(&id) && !v62 {
                g.pel.remove(&id);
                deleted.push(Reply::id(id));
                count -= 1;
                continue;
            }
            let Some(nack) = g.pel.get_mut(&id) else {
                continue;
            };
            if min_idle > 0 && i64_of(ms_between(nack.delivery_time, now)) < min_idle {
                continue;
            }
            nack.consumer = consumer.clone();
            nack.delivery_time = now;
            if !justid {
                nack.delivery_count += 1;
            }
            g.touch_consumer(&consumer, now);
            if justid {
                claimed.push(Reply::id(id));
            } else if let Some(fields) = entries.get(&id) {
                claimed.push(entry_reply(id, fields));
            } else {
                // Redis 6.2: a deleted entry is claimed and shown as nil.
                claimed.push(Reply::NilBulk);
            }
            count -= 1;
        };
        let mut reply = vec![Reply::id(next_cursor), Reply::Array(claimed)];
        if !v62 {
            reply.push(Reply::Array(deleted));
        }
        Ok(Reply::Array(reply))
    }
}

/// Entries of `s` with ids greater than `after`, at most `count` (0 = all).
fn range_after(s: &Stream, after: StreamId, count: usize) -> Vec<Reply> {
    let Some(start) = after.successor() else {
        return Vec::new();
    };
    let limit = if count == 0 { usize::MAX } else { count };
    s.entries
        .range(start..)
        .take(limit)
        .map(|(id, f)| entry_reply(*id, f))
        .collect()
}

/// Delivers entries after `after` to the consumer (`>` semantics).
fn serve_new(
    s: &mut Stream,
    bg: &BlockGroup,
    after: StreamId,
    count: usize,
    now: Instant,
) -> Vec<Reply> {
    let Stream {
        entries, groups, ..
    } = s;
    let Some(g) = groups.get_mut(&bg.group) else {
        return Vec::new();
    };
    g.touch_consumer(&bg.consumer, now);
    let Some(start) = after.successor() else {
        return Vec::new();
    };
    let limit = if count == 0 { usize::MAX } else { count };
    let mut out = Vec::new();
    for (id, fields) in entries.range(start..).take(limit) {
        if !bg.noack {
            g.pel.insert(
                *id,
                Nack {
                    consumer: bg.consumer.clone(),
                    delivery_time: now,
                    delivery_count: 1,
                },
            );
        }
        if *id > g.last_id {
            g.last_id = *id;
            if g.entries_read >= 0 {
                g.entries_read += 1;
            }
        }
        out.push(entry_reply(*id, fields));
    }
    out
}

/// The consumer's own pending entries after `after` (history read).
fn serve_history(
    s: &mut Stream,
    bg: &BlockGroup,
    after: StreamId,
    count: usize,
    now: Instant,
) -> Vec<Reply> {
    let Stream {
        entries, groups, ..
    } = s;
    let Some(g) = groups.get_mut(&bg.group) else {
        return Vec::new();
    };
    g.touch_consumer(&bg.consumer, now);
    let Some(start) = after.successor() else {
        return Vec::new();
    };
    let limit = if count == 0 { usize::MAX } else { count };
    let mut out = Vec::new();
    for (id, nack) in g
        .pel
        .range_mut(start..)
        .filter(|(_, n)| n.consumer == bg.consumer)
        .take(limit)
    {
        match entries.get(id) {
            Some(fields) => {
                nack.delivery_time = now;
                nack.delivery_count += 1;
                out.push(entry_reply(*id, fields));
            }
            None => out.push(Reply::Array(vec![Reply::id(*id), Reply::NilArray])),
        }
    }
    out
}

/// `[[key, entries], ...]` (RESP2) / `{key: entries, ...}` (RESP3).
fn read_reply(served: Vec<(Bytes, Vec<Reply>)>) -> Reply {
    Reply::PairMap(
        served
            .into_iter()
            .map(|(k, e)| (Reply::Bulk(k), Reply::Array(e)))
            .collect(),
    )
}

/// Parsed `XADD`/`XTRIM` options.
struct AddTrim {
    trim: Option<Trim>,
    nomkstream: bool,
    id: Option<super::parse::ParsedId>,
    /// Position of the id argument (XADD).
    next: usize,
}

fn parse_add_trim(args: &[Bytes], xadd: bool) -> Result<AddTrim, Reply> {
    let mut trim = None;
    let mut approx = false;
    let mut limit: i64 = 0;
    let mut limit_given = false;
    let mut nomkstream = false;
    let mut id = None;
    let mut i = 2;
    let both = || {
        Reply::err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
    };
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = arg(args, i);
        if xadd && opt == b"*" {
            break;
        } else if is(opt, "MAXLEN") && more > 0 {
            if trim.is_some() {
                return Err(both());
            }
            approx = false;
            let next = arg(args, i + 1);
            if more >= 2 && next == b"~" {
                approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let n = int_arg(arg(args, i + 1))?;
            if n < 0 {
                return Err(Reply::err("ERR The MAXLEN argument must be >= 0."));
            }
            trim = Some(Trim::MaxLen(u64_of(n)));
            i += 1;
        } else if is(opt, "MINID") && more > 0 {
            if trim.is_some() {
                return Err(both());
            }
            approx = false;
            let next = arg(args, i + 1);
            if more >= 2 && next == b"~" {
                approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let min = strict_id(arg(args, i + 1)).ok_or_else(Reply::invalid_id)?;
            trim = Some(Trim::MinId(min));
            i += 1;
        } else if is(opt, "LIMIT") && more > 0 {
            limit = int_arg(arg(args, i + 1))?;
            if limit < 0 {
                return Err(Reply::err("ERR The LIMIT argument must be >= 0."));
            }
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "NOMKSTREAM") {
            nomkstream = true;
        } else if xadd {
            id = Some(parse_id(opt, true, 0, true).ok_or_else(Reply::invalid_id)?);
            break;
        } else {
            return Err(Reply::syntax());
        }
        i += 1;
    }
    if limit != 0 && trim.is_none() {
        return Err(Reply::err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && trim.is_none() {
        return Err(Reply::err(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit_given && !approx {
        return Err(Reply::err(
            "ERR syntax error, LIMIT cannot be used without the special ~ option",
        ));
    }
    Ok(AddTrim {
        trim,
        nomkstream,
        id,
        next: i,
    })
}
