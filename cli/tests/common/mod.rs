//! Test helpers: run the `xgroup` binary against a throwaway server, and
//! mask the parts of its output that depend on the clock.
#![allow(dead_code, unreachable_pub)]

use std::process::{Command, Stdio};

use xgroup_testkit::{RedisServer, RespValue};

/// What one run of `xgroup` printed, and its exit code.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Run {
    /// Asserts a zero exit and nothing on stderr; returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "xgroup failed: {self:?}");
        assert_eq!(self.stderr, "", "xgroup wrote to stderr: {self:?}");
        &self.stdout
    }

    /// Asserts the one-line error contract: a non-zero exit, nothing on
    /// stdout, exactly one line on stderr starting with `xgroup: `, no
    /// panic, no backtrace. Returns that line.
    pub fn one_line_error(&self) -> &str {
        assert_ne!(self.code, 0, "expected a failure: {self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        assert!(self.stderr.ends_with('\n'), "{self:?}");
        let line = self.stderr.trim_end_matches('\n');
        assert!(!line.contains('\n'), "more than one line: {self:?}");
        assert!(line.starts_with("xgroup: "), "{self:?}");
        assert!(
            !line.contains("panicked") && !line.contains("backtrace"),
            "{self:?}"
        );
        line
    }

    /// Stdout parsed as JSON (after checking the run succeeded).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Runs `xgroup --url <url> <args>` (REDIS_URL cleared).
pub fn xgroup_at(url: &str, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_xgroup"))
        .arg("--url")
        .arg(url)
        .args(args)
        .env_remove("REDIS_URL")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .expect("run xgroup");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Runs `xgroup` against `server`.
pub fn xgroup(server: &RedisServer, args: &[&str]) -> Run {
    xgroup_at(&server.url(), args)
}

/// The server's clock in Unix milliseconds.
pub fn now_ms(server: &RedisServer) -> u64 {
    let t = server.cmd(&["TIME"]);
    let parts = t.as_array().expect("TIME");
    let s: u64 = parts[0].as_str().expect("secs").parse().expect("secs");
    let us: u64 = parts[1].as_str().expect("usecs").parse().expect("usecs");
    s * 1000 + us / 1000
}

/// A command that must succeed.
pub fn cmd(server: &RedisServer, args: &[&str]) -> RespValue {
    let reply = server.cmd(args);
    assert!(!reply.is_error(), "{args:?}: {reply:?}");
    reply
}

/// Masks what depends on the clock, keeping every width (so the tables'
/// alignment is checked as printed): 13-digit millisecond times (in ids)
/// become `TTTTTTTTTTTTT`, RFC 3339 times `YYYY-MM-DDTHH:MM:SS.mmmZ`, and
/// durations under ten seconds (`0s`..`9s`, a consumer's idle time)
/// `Ns`. Ages in minutes or hours are left as they are: the tests make
/// them from the server's clock with seconds to spare.
pub fn mask(text: &str) -> String {
    mask_with(text, true)
}

/// Masks only the durations under ten seconds (for output whose ids and
/// times are fixed by the test).
pub fn mask_idle(text: &str) -> String {
    mask_with(text, false)
}

fn mask_with(text: &str, times: bool) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let digit = |j: usize| b.get(j).is_some_and(u8::is_ascii_digit);
    let word = |j: Option<usize>| {
        j.and_then(|j| b.get(j))
            .is_some_and(u8::is_ascii_alphanumeric)
    };
    while i < b.len() {
        // 2024-05-01T12:00:00.000Z
        let shape = b"dddd-dd-ddTdd:dd:dd.dddZ";
        if times
            && i + shape.len() <= b.len()
            && shape.iter().enumerate().all(|(k, &c)| {
                if c == b'd' {
                    digit(i + k)
                } else {
                    b[i + k] == c
                }
            })
        {
            out.push_str("YYYY-MM-DDTHH:MM:SS.mmmZ");
            i += shape.len();
            continue;
        }
        if digit(i) && !word(i.checked_sub(1)) {
            let mut j = i;
            while digit(j) {
                j += 1;
            }
            let run = j - i;
            if times && run == 13 && !word(Some(j)) {
                out.push_str("TTTTTTTTTTTTT");
                i = j;
                continue;
            }
            if run == 1 && b.get(j) == Some(&b's') && !word(Some(j + 1)) {
                out.push_str("Ns");
                i = j + 1;
                continue;
            }
            out.push_str(&text[i..j]);
            i = j;
            continue;
        }
        let ch = text[i..].chars().next().expect("a char");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[test]
fn mask_keeps_widths() {
    assert_eq!(
        mask("1714564800000-0  2024-05-01T12:00:00.250Z  0s 12s 1m05s 3s\n"),
        "TTTTTTTTTTTTT-0  YYYY-MM-DDTHH:MM:SS.mmmZ  Ns 12s 1m05s Ns\n"
    );
}
