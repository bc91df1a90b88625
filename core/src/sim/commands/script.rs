//! `EVAL` of xgroup's dead-letter script, modelled natively (no Lua here):
//! per entry an `XADD` to the dead-letter stream and, only when it worked,
//! the entry's `XACK` (and `XDEL`). Any other script is refused by name.

use bytes::Bytes;

use super::{arg, parse_i64, Core, Reply};
use crate::consumer::DEAD_LETTER_SCRIPT;

impl Core {
    /// `EVAL <script> 2 <stream> <dead-letter stream> <group> <delete>
    /// [<id> <n> <field> <value>...]...`.
    pub(super) fn eval_cmd(&mut self, db: usize, args: &[Bytes]) -> Reply {
        if arg(args, 1) != DEAD_LETTER_SCRIPT.as_bytes() {
            return Reply::err("ERR the model runs no script but xgroup's dead-letter script");
        }
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
