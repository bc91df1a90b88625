//! Makes the certificates of `bench/run.sh tls`'s server into a directory
//! (as the tests make theirs): `ca.pem` (trust it), `server.pem` and
//! `server.key` (for `127.0.0.1` and `localhost`), `client.pem` and
//! `client.key`.
//!
//! Usage: `bench_certs DIR`

use std::path::PathBuf;
use std::process::ExitCode;

use xgroup_testkit::tls::{ServerCert, TestCerts};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: bench_certs DIR");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("bench_certs: cannot make {}: {e}", dir.display());
        return ExitCode::from(1);
    }
    TestCerts::generate(&dir, ServerCert::Valid);
    ExitCode::SUCCESS
}
