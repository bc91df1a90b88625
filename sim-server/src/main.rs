//! `xgroup-sim`: xgroup's in-memory model of Redis Streams on a TCP port,
//! for tests in any language. Runs until killed.

use std::process::ExitCode;

use clap::Parser;

/// Serves xgroup's in-memory model of Redis Streams (a Redis stand-in for
/// tests: streams, consumer groups, pending entries; see the crate docs for
/// what it models).
#[derive(Debug, Parser)]
#[command(name = "xgroup-sim", version)]
struct Args {
    /// Loopback port to listen on (0: a free one, printed).
    #[arg(long, default_value_t = 6390)]
    port: u16,
    /// Require this password (`AUTH` / `HELLO 3 AUTH`).
    #[arg(long)]
    password: Option<String>,
    /// The ACL user the password belongs to (default: `default`).
    #[arg(long, requires = "password")]
    user: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = xgroup_sim::SimServer::builder().port(args.port);
    if let Some(password) = &args.password {
        builder = builder.password(args.user.as_deref(), password);
    }
    match builder.start() {
        Ok(server) => {
            println!("xgroup-sim listening on redis://{}", server.addr());
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("xgroup-sim: cannot listen on 127.0.0.1:{}: {e}", args.port);
            ExitCode::FAILURE
        }
    }
}
