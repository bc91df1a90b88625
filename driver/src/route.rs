//! Which keys a command touches, for a `Connection` to a Redis Cluster to
//! send each call to the node of its keys' hash slot: a small table of key
//! positions (the commands this library's users send, and the common
//! others), with the first argument after the name for any other command.

use bytes::Bytes;
use xgroup_core::{key_slot, Command, ConfigError, Error};

/// Where a command's keys are among its arguments (the name is argument 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keys {
    /// None: any node can run it.
    None,
    /// The one at this index (none when the command is shorter).
    At(usize),
    /// Every argument from this index on.
    From(usize),
    /// Arguments from the first index up to (not including) the second.
    Range(usize, usize),
    /// Every argument from this index on but the last (a timeout).
    FromButLast(usize),
    /// Every other argument from this index on (`MSET key value ...`).
    EveryOther(usize),
    /// A key count at this index, then that many keys (`EVAL script
    /// numkeys key ...`).
    Counted(usize),
    /// After the `STREAMS` word, the first half of the rest (`XREAD ...
    /// STREAMS key ... id ...`).
    Streams,
}

/// The key positions of the commands that are not "one key, right after
/// the name".
fn keys_of(name: &[u8]) -> Keys {
    let mut upper = [0u8; 24];
    let Some(upper) = upper.get_mut(..name.len()) else {
        return Keys::At(1);
    };
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    match &*upper {
        b"PING" | b"ECHO" | b"INFO" | b"CLUSTER" | b"HELLO" | b"CONFIG" | b"AUTH" | b"CLIENT"
        | b"COMMAND" | b"TIME" | b"DBSIZE" | b"FLUSHALL" | b"FLUSHDB" | b"SCRIPT" | b"FUNCTION"
        | b"DEBUG" | b"ROLE" | b"LASTSAVE" | b"SAVE" | b"BGSAVE" | b"BGREWRITEAOF" | b"SLOWLOG"
        | b"LATENCY" | b"ACL" | b"MODULE" | b"MONITOR" | b"SHUTDOWN" | b"SELECT" | b"QUIT"
        | b"RESET" | b"READONLY" | b"READWRITE" | b"ASKING" | b"WAIT" | b"WAITAOF" | b"MULTI"
        | b"EXEC" | b"DISCARD" | b"UNWATCH" | b"RANDOMKEY" | b"SCAN" | b"KEYS" | b"PUBLISH"
        | b"PUBSUB" | b"SWAPDB" | b"FAILOVER" | b"REPLICAOF" | b"SLAVEOF" | b"LOLWUT" => Keys::None,
        // A subcommand, then the key (none for `HELP`, `MEMORY STATS`...).
        b"XGROUP" | b"XINFO" | b"OBJECT" | b"MEMORY" => Keys::At(2),
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" | b"BLMPOP"
        | b"BZMPOP" => Keys::Counted(2),
        b"LMPOP" | b"ZMPOP" | b"ZUNION" | b"ZINTER" | b"ZDIFF" | b"ZINTERCARD" | b"SINTERCARD" => {
            Keys::Counted(1)
        }
        b"XREAD" | b"XREADGROUP" => Keys::Streams,
        b"DEL" | b"UNLINK" | b"EXISTS" | b"TOUCH" | b"MGET" | b"WATCH" | b"SINTER" | b"SUNION"
        | b"SDIFF" | b"SINTERSTORE" | b"SUNIONSTORE" | b"SDIFFSTORE" | b"PFCOUNT" | b"PFMERGE"
        | b"RENAME" | b"RENAMENX" | b"RPOPLPUSH" => Keys::From(1),
        b"SMOVE" | b"LMOVE" | b"BLMOVE" | b"COPY" => Keys::Range(1, 3),
        b"BLPOP" | b"BRPOP" | b"BZPOPMIN" | b"BZPOPMAX" | b"BRPOPLPUSH" => Keys::FromButLast(1),
        b"MSET" | b"MSETNX" => Keys::EveryOther(1),
        _ => Keys::At(1),
    }
}

/// The keys among `args` (the name first).
pub(crate) fn command_keys(args: &[Bytes]) -> Vec<&Bytes> {
    let Some(name) = args.first() else {
        return Vec::new();
    };
    let from = |start: usize, end: usize| {
        args.get(start..end.min(args.len()).max(start))
            .unwrap_or_default()
            .iter()
            .collect()
    };
    match keys_of(name) {
        Keys::None => Vec::new(),
        Keys::At(i) => args.get(i).into_iter().collect(),
        Keys::From(i) => from(i, args.len()),
        Keys::Range(i, end) => from(i, end),
        Keys::FromButLast(i) => from(i, args.len().saturating_sub(1)),
        Keys::EveryOther(i) => args.iter().skip(i).step_by(2).collect(),
        Keys::Counted(i) => {
            let count = args
                .get(i)
                .and_then(|n| std::str::from_utf8(n).ok())
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
            from(i + 1, (i + 1).saturating_add(count))
        }
        Keys::Streams => {
            let streams = args
                .iter()
                .skip(1)
                .position(|a| a.eq_ignore_ascii_case(b"STREAMS"));
            match streams {
                Some(at) => {
                    let rest = args.len() - (at + 2);
                    from(at + 2, at + 2 + rest / 2)
                }
                None => Vec::new(),
            }
        }
    }
}

/// The one hash slot of every key of `commands` (`None` when they have
/// none: any node can run them). Keys in different slots are an
/// [`Error::Config`] naming both: a cluster cannot run them together.
pub(crate) fn call_slot(commands: &[Command]) -> Result<Option<u16>, Error> {
    let mut first: Option<(u16, &Bytes)> = None;
    for command in commands {
        for key in command_keys(command.args()) {
            let slot = key_slot(key);
            match first {
                None => first = Some((slot, key)),
                Some((known, _)) if known == slot => {}
                Some((known, other)) => {
                    let why = format!(
                        "the call's keys are in different hash slots of the cluster \
                         ({:?} in slot {known}, {:?} in slot {slot}): a Redis Cluster \
                         runs commands together only on keys of one slot; give the keys \
                         one hash tag (as in {{tag}}:a, {{tag}}:b) or make separate calls",
                        String::from_utf8_lossy(other),
                        String::from_utf8_lossy(key),
                    );
                    return Err(ConfigError::new("command", why).into());
                }
            }
        }
    }
    Ok(first.map(|(slot, _)| slot))
}

/// Whether one of `commands` starts a transaction (`MULTI`): redirected,
/// it is sent again whole.
pub(crate) fn has_multi(commands: &[&Command]) -> bool {
    commands.iter().any(|c| {
        c.args()
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(b"MULTI"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(args: &[&str]) -> Vec<String> {
        let command = Command::from_args(args);
        command_keys(command.args())
            .into_iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    #[test]
    fn the_keys_of_the_commands_connection_users_send() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["XADD", "s", "*", "k", "v"], &["s"]),
            (&["xadd", "s", "MAXLEN", "~", "10", "*", "k", "v"], &["s"]),
            (&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"], &["s"]),
            (&["XGROUP", "HELP"], &[]),
            (&["XINFO", "STREAM", "s"], &["s"]),
            (&["XLEN", "s"], &["s"]),
            (&["XRANGE", "s", "-", "+"], &["s"]),
            (&["XPENDING", "s", "g"], &["s"]),
            (&["XACK", "s", "g", "1-1", "1-2"], &["s"]),
            (&["XDEL", "s", "1-1"], &["s"]),
            (&["XTRIM", "s", "MAXLEN", "5"], &["s"]),
            (&["DEL", "a", "b"], &["a", "b"]),
            (&["GET", "k"], &["k"]),
            (&["SET", "k", "v", "EX", "5"], &["k"]),
            (&["EVAL", "return 1", "2", "a", "b", "arg"], &["a", "b"]),
            (&["EVALSHA", "abc", "0", "arg"], &[]),
            (&["EVAL", "return 1", "9", "a"], &["a"]),
            (&["EVAL", "return 1", "x", "a"], &[]),
            (
                &["XREAD", "COUNT", "2", "STREAMS", "a", "b", "0", "0"],
                &["a", "b"],
            ),
            (
                &["XREADGROUP", "GROUP", "g", "c", "streams", "a", ">"],
                &["a"],
            ),
            (&["XREAD", "STREAMS"], &[]),
            (&["XREAD", "COUNT", "1"], &[]),
            (&["BLPOP", "a", "b", "5"], &["a", "b"]),
            (&["MSET", "a", "1", "b", "2"], &["a", "b"]),
            (&["LMOVE", "a", "b", "LEFT", "RIGHT"], &["a", "b"]),
            (&["PING"], &[]),
            (&["INFO", "server"], &[]),
            (&["CLUSTER", "SHARDS"], &[]),
            (&["HELLO", "3"], &[]),
            (&["CONFIG", "GET", "maxmemory"], &[]),
            (&["CLIENT", "LIST"], &[]),
            (&["MULTI"], &[]),
            // Unknown: the first argument.
            (&["MY.MODULECMD", "k", "x"], &["k"]),
            (&["A-VERY-LONG-UNKNOWN-COMMAND-NAME", "k"], &["k"]),
            (&["NOARGS"], &[]),
        ];
        for (args, expected) in cases {
            assert_eq!(keys(args), *expected, "{args:?}");
        }
    }

    #[test]
    fn a_call_has_the_slot_of_its_keys_or_none_and_keys_in_two_slots_are_refused() {
        let cmd = |args: &[&str]| Command::from_args(args);
        assert_eq!(call_slot(&[cmd(&["PING"])]), Ok(None));
        assert_eq!(call_slot(&[]), Ok(None));
        let slot = key_slot(b"{o}:a");
        let same = [
            cmd(&["MULTI"]),
            cmd(&["XADD", "{o}:a", "*", "k", "v"]),
            cmd(&["XACK", "{o}:b", "g", "1-1"]),
            cmd(&["EXEC"]),
        ];
        assert_eq!(call_slot(&same), Ok(Some(slot)));
        assert_ne!(key_slot(b"a"), key_slot(b"b"));
        for refused in [
            vec![cmd(&["GET", "a"]), cmd(&["GET", "b"])],
            vec![cmd(&["DEL", "a", "b"])],
        ] {
            let Err(Error::Config(e)) = call_slot(&refused) else {
                panic!("{refused:?} accepted");
            };
            let (a, b) = (key_slot(b"a"), key_slot(b"b"));
            assert!(e.reason.contains(&format!("slot {a}")), "{e}");
            assert!(e.reason.contains(&format!("slot {b}")), "{e}");
        }
    }
}
