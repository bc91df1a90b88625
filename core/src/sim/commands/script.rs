//! `EVAL` of xgroup's scripts, modelled natively (no Lua here): the
//! dead-letter script (per entry an `XADD` to the dead-letter stream and,
//! only when it worked, the entry's `XACK` and `XDEL`), and the heartbeat's
//! compare-and-set and release. Any other script is refused by name.

use bytes::Bytes;

use super::{arg, parse_i64, Core, Reply, Value};
use crate::consumer::{
    DEAD_LETTER_SCRIPT, HEARTBEAT_RELEASE_SCRIPT, HEARTBEAT_SCRIPT, REMOVE_DEAD_SCRIPT,
};

impl Core {
    /// `EVAL <script> ...`: one of xgroup's scripts.
    pub(super) fn eval_cmd(&mut self, db: usize, args: &[Bytes]) -> Reply {
        let script = arg(args, 1);
        if script == HEARTBEAT_SCRIPT.as_bytes() {
            return self.heartbeat_script(db, args);
        }
        if script == HEARTBEAT_RELEASE_SCRIPT.as_bytes() {
            return self.heartbeat_release_script(db, args);
        }
        if script == REMOVE_DEAD_SCRIPT.as_bytes() {
            return self.remove_dead_script(db, args);
        }
        if script != DEAD_LETTER_SCRIPT.as_bytes() {
            return Reply::err("ERR the model runs no script but xgroup's own");
        }
        self.dead_letter_script(db, args)
    }

    /// The string under `key`, if any (`Err`: another type, as `GET` says).
    fn script_get(&self, db: usize, key: &[u8]) -> Result<Option<Bytes>, Reply> {
        match self.live(db, key) {
            None => Ok(None),
            Some(Value::Str { value, .. }) => Ok(Some(value.clone())),
            Some(_) => Err(Reply::wrongtype()),
        }
    }

    /// `EVAL <heartbeat script> 1 <key> <token> <value> <ttl> [<expected>]`.
    fn heartbeat_script(&mut self, db: usize, args: &[Bytes]) -> Reply {
        if parse_i64(arg(args, 2)) != Some(1) || !(7..=8).contains(&args.len()) {
            return Reply::err("ERR the heartbeat script takes 1 key and 3 or 4 arguments");
        }
        let (key, token) = (&args[3], &args[4]);
        let cur = match self.script_get(db, key) {
            Ok(cur) => cur,
            Err(e) => return e,
        };
        let ours =
            |v: &Bytes| v.len() > token.len() && v.starts_with(token) && v[token.len()] == b':';
        let set = match &cur {
            None => true,
            Some(v) => ours(v) || args.get(7) == Some(v),
        };
        if set {
            let cmd = [
                Bytes::from_static(b"SET"),
                key.clone(),
                args[5].clone(),
                Bytes::from_static(b"PX"),
                args[6].clone(),
            ];
            if let Err(e) = self.set(db, &cmd) {
                return e;
            }
        }
        cur.map_or(Reply::NilBulk, Reply::Bulk)
    }

    /// `EVAL <release script> 1 <key> <token>`.
    fn heartbeat_release_script(&mut self, db: usize, args: &[Bytes]) -> Reply {
        if parse_i64(arg(args, 2)) != Some(1) || args.len() != 5 {
            return Reply::err("ERR the release script takes 1 key and 1 argument");
        }
        let (key, token) = (&args[3], &args[4]);
        let ours = match self.script_get(db, key) {
            Ok(Some(v)) => v.len() > token.len() && v.starts_with(token) && v[token.len()] == b':',
            Ok(None) => false,
            Err(e) => return e,
        };
        Reply::Int(i64::from(ours && self.remove_key(db, key)))
    }

    /// `EVAL <removal script> 2 <stream> <heartbeat key> <group>
    /// <consumer>`: `XGROUP DELCONSUMER` only when the key is gone and the
    /// consumer holds nothing; else -1.
    fn remove_dead_script(&mut self, db: usize, args: &[Bytes]) -> Reply {
        if parse_i64(arg(args, 2)) != Some(2) || args.len() != 7 {
            return Reply::err("ERR the removal script takes 2 keys and 2 arguments");
        }
        let (stream, key, group, consumer) = (&args[3], &args[4], &args[5], &args[6]);
        if self.live(db, key).is_some() {
            return Reply::Int(-1);
        }
        let pending = [
            Bytes::from_static(b"XPENDING"),
            stream.clone(),
            group.clone(),
            Bytes::from_static(b"-"),
            Bytes::from_static(b"+"),
            Bytes::from_static(b"1"),
            consumer.clone(),
        ];
        match self.xpending_cmd(db, &pending) {
            Ok(Reply::Array(rows)) if rows.is_empty() => {}
            Ok(Reply::Array(_)) => return Reply::Int(-1),
            Ok(other) | Err(other) => return other,
        }
        let del = [
            Bytes::from_static(b"XGROUP"),
            Bytes::from_static(b"DELCONSUMER"),
            stream.clone(),
            group.clone(),
            consumer.clone(),
        ];
        self.xgroup_cmd(db, &del).unwrap_or_else(|e| e)
    }

    /// `EVAL <dead-letter script> 2 <stream> <dead-letter stream> <group>
    /// <delete> [<id> <n> <field> <value>...]...`.
    fn dead_letter_script(&mut self, db: usize, args: &[Bytes]) -> Reply {
        if parse_i64(arg(args, 2)) != Some(2) || args.len() < 7 {
            return Reply::err("ERR the dead-letter script takes 2 keys, a group and a flag");
        }
        let (stream, dlq, group) = (&args[3], &args[4], &args[5]);
        let delete = arg(args, 6) == b"1";
        let mut out = Vec::new();
        let mut i = 7;
        while i < args.len() {
            let id = &args[i];
            let pairs = parse_i64(arg(args, i + 1))
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| i + 2 + 2 * n <= args.len());
            let Some(n) = pairs else {
                return Reply::err("ERR malformed dead-letter script arguments");
            };
            let fields = &args[i + 2..i + 2 + 2 * n];
            i += 2 + 2 * n;
            let mut add = vec![
                Bytes::from_static(b"XADD"),
                dlq.clone(),
                Bytes::from_static(b"*"),
            ];
            add.extend(fields.iter().cloned());
            if let Err(e) = self.xadd_cmd(db, &add) {
                out.push(e);
                continue;
            }
            let ack = [
                Bytes::from_static(b"XACK"),
                stream.clone(),
                group.clone(),
                id.clone(),
            ];
            match self.xack_cmd(db, &ack) {
                Ok(acked) => out.push(acked),
                // `redis.call` raises: the script ends with that error.
                Err(e) => return e,
            }
            if delete {
                let del = [Bytes::from_static(b"XDEL"), stream.clone(), id.clone()];
                if let Err(e) = self.xdel_cmd(db, &del) {
                    return e;
                }
            }
        }
        Reply::Array(out)
    }
}
