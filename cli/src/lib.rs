//! # xgroup-cli
//!
//! The `xgroup` command-line tool: inspect and operate Redis Streams
//! consumer groups. It talks to the server through xgroup's own client (the
//! blocking adapter's [`Connection`](xgroup_blocking::Connection)), so it
//! takes every URL form the library takes.
//!
//! - `xgroup describe <stream> [--group G]`: per group lag, pending, oldest
//!   pending, last-delivered id and its time, consumers (pending, idle,
//!   inactive, alive or dead by heartbeat) and a histogram of delivery
//!   counts;
//! - `xgroup pending <stream> <group> [--consumer C] [--min-idle D] [--limit N]`;
//! - `xgroup dead-letters list <dlq>` and `xgroup dead-letters redrive <dlq>
//!   --to <stream>` (each entry moved back atomically by a script);
//! - `xgroup reset <stream> <group> --to-...` (dry run unless `--execute`);
//! - `xgroup top <stream>`: a live terminal view.
//!
//! Every subcommand takes `--url` (any URL the library takes, `rediss://`
//! for TLS) and, for TLS, `--tls-ca-cert FILE`, `--tls-cert FILE` and
//! `--tls-key FILE`.
//!
//! The library half is public so that the tests can drive the pieces (the
//! `top` view is rendered into ratatui's `TestBackend`); the binary is
//! `src/main.rs`.
#![forbid(unsafe_code)]
// Replies from the server must never panic the tool.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod cli;
pub mod dead_letters;
pub mod describe;
pub mod error;
pub mod pending;
pub mod redis;
pub mod reset;
pub mod table;
pub mod text;
pub mod top;

pub use error::CliError;

use std::io::Write;

/// Runs one parsed command line, writing its output to `out`.
pub fn run(cli: cli::Cli, out: &mut dyn Write) -> Result<(), CliError> {
    use cli::{Command, DeadLetterCommand};
    let json = cli.json;
    let tls = cli.tls.options();
    if let Command::Top(args) = &cli.command {
        return top::run(&cli.url, tls, args);
    }
    let mut redis = redis::Redis::connect(&cli.url, tls)?;
    match cli.command {
        Command::Describe(args) => describe::run(&mut redis, &args, json, out),
        Command::Pending(args) => pending::run(&mut redis, &args, json, out),
        Command::DeadLetters(DeadLetterCommand::List(args)) => {
            dead_letters::list(&mut redis, &args, json, out)
        }
        Command::DeadLetters(DeadLetterCommand::Redrive(args)) => {
            dead_letters::redrive(&mut redis, &args, json, out)
        }
        Command::Reset(args) => reset::run(&mut redis, &args, json, out),
        Command::Top(_) => Ok(()),
    }
}
