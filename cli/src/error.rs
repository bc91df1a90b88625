//! One error type for the whole tool: a one-line message.

use std::fmt;

/// An error the tool reports as one line (`xgroup: <message>`) before it
/// exits with a non-zero status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    message: String,
    broken_pipe: bool,
}

impl CliError {
    /// An error with this message (newlines are folded into spaces).
    pub fn new(message: impl Into<String>) -> Self {
        let message: String = message.into();
        CliError {
            message: one_line(&message),
            broken_pipe: false,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether writing the output failed because the reader went away
    /// (`xgroup ... | head`): not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        self.broken_pipe
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        let mut err = CliError::new(format!("cannot write the output: {e}"));
        err.broken_pipe = e.kind() == std::io::ErrorKind::BrokenPipe;
        err
    }
}

impl From<xgroup_core::Error> for CliError {
    fn from(e: xgroup_core::Error) -> Self {
        use xgroup_core::Error;
        match e {
            Error::Server(s) => CliError::new(format!("the server said: {}", s.message)),
            Error::Connection(why) => CliError::new(format!("cannot reach the server: {why}")),
            Error::ReplyTimeout { command } => {
                CliError::new(format!("the server did not answer {command} in time"))
            }
            other => CliError::new(other.to_string()),
        }
    }
}

/// Folds a multi-line text into one line.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(line);
    }
    out
}

/// The first line of a clap error, without its `error: ` prefix (clap's
/// usage and "try --help" lines are left out: one line in all).
pub fn one_line_clap(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    // The message is the first paragraph (it may go on over indented
    // lines); usage and "try --help" come after a blank line.
    let message: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    if message.is_empty() {
        return "bad command line (see xgroup --help)".into();
    }
    format!("{message} (see xgroup --help)")
}

/// `a: a: b` as `a: b` (the connection errors repeat the address).
pub fn dedupe_segments(text: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// Returns early with a [`CliError`] made from a format string.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::error::CliError::new(format!($($arg)*)))
    };
}
