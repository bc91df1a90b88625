//! The TLS tests of every adapter's `Connection` (run with the others by
//! [`adapter_connection_tests!`](crate::adapter_connection_tests)), and of
//! its consumer builder's TLS options, against real TLS servers whose
//! certificates the test makes.

use std::fs;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use xgroup_core::{Command, Error, TlsFailure, TlsOptions, Value};
use xgroup_driver::ConnectionOptions;

use crate::connection::Conn;
use crate::tls::{ServerCert, TlsServer};
use crate::RedisServer;

/// A password no output may show.
const SECRET: &str = "pw-77c3-SECRET";

fn cmd(args: &[&str]) -> Command {
    Command::from_args(args)
}

fn quick(tls: TlsOptions) -> ConnectionOptions {
    ConnectionOptions::default()
        .connect_timeout(Duration::from_secs(2))
        .io_timeout(Duration::from_secs(5))
        .tls(tls)
}

/// Whether the server binary has no TLS (the test then passes, having
/// printed why).
fn no_tls() -> bool {
    match crate::tls::unsupported() {
        Some(why) => {
            eprintln!("skipped: this server binary has no TLS ({why})");
            true
        }
        None => false,
    }
}

fn trusting(server: &RedisServer) -> TlsOptions {
    TlsOptions::new().ca_cert_file(server.certs().ca_cert())
}

/// The TLS server, or `None` (the test then passes, having printed why)
/// when the server binary has no TLS.
fn tls_server(tls: TlsServer) -> Option<RedisServer> {
    crate::tls::server(tls)
}

/// Commands and `XADD` over TLS with a password and a database; after a
/// server restart the first call fails and the next one reconnects, over
/// TLS again. No process-level crypto provider is ever needed.
pub fn a_connection_over_tls_works_and_reconnects_after_a_restart<C: Conn>() {
    if no_tls() {
        return;
    }
    let mut server = RedisServer::builder()
        .password(Some(SECRET))
        .tls(TlsServer::default())
        .start();
    let url = format!("{}/2", server.tls_url());
    let mut conn = C::connect_with(&url, quick(trusting(&server))).expect("connect over TLS");
    assert_eq!(
        conn.send(&cmd(&["SET", "k", "v"])),
        Ok(Value::Simple("OK".into()))
    );
    let id = conn
        .xadd("s", &[("f", "x")], &Default::default())
        .expect("XADD over TLS");
    assert!(id.ms > 0, "{id}");
    // A big value crosses many TLS records both ways.
    let big = "y".repeat(300_000);
    assert_eq!(
        conn.send(&cmd(&["SET", "big", &big])),
        Ok(Value::Simple("OK".into()))
    );
    assert_eq!(
        conn.send(&cmd(&["GET", "big"])),
        Ok(Value::Bulk(big.clone().into_bytes().into()))
    );
    server.restart();
    let first = conn.send(&cmd(&["PING"]));
    assert!(matches!(first, Err(Error::Connection(_))), "{first:?}");
    assert_eq!(conn.send(&cmd(&["PING"])), Ok(Value::Simple("PONG".into())));
    let db = conn.send(&cmd(&["CLIENT", "INFO"]));
    assert!(
        matches!(&db, Ok(Value::Bulk(info)) if String::from_utf8_lossy(info).contains(" db=2 ")),
        "{db:?}"
    );
    assert!(CryptoProvider::get_default().is_none());
}

/// Mutual TLS as an ACL user with a percent-encoded password, over RESP3
/// (`HELLO 3 AUTH`).
pub fn a_connection_over_mutual_tls_as_an_acl_user_over_resp3<C: Conn>() {
    let Some(server) = tls_server(TlsServer {
        verify_clients: true,
        ..TlsServer::default()
    }) else {
        return;
    };
    let reply = server.cmd(&[
        "ACL",
        "SETUSER",
        "app",
        "on",
        ">p@ss/w:rd",
        "~*",
        "&*",
        "+@all",
    ]);
    assert!(!reply.is_error(), "{reply:?}");
    let port = server.tls_port().expect("TLS port");
    let url = format!("rediss://app:p%40ss%2Fw%3Ard@127.0.0.1:{port}?protocol=resp3");
    let certs = server.certs();
    let tls = trusting(&server).client_cert_files(certs.client_cert(), certs.client_key());
    let mut conn = C::connect_with(&url, quick(tls)).expect("mutual TLS as app");
    assert_eq!(
        conn.send(&cmd(&["ACL", "WHOAMI"])),
        Ok(Value::Bulk("app".as_bytes().to_vec().into()))
    );
    let info = conn.send(&cmd(&["CLIENT", "INFO"]));
    assert!(
        matches!(&info, Ok(Value::Bulk(i)) if String::from_utf8_lossy(i).contains("resp=3")),
        "{info:?}"
    );
}

/// Each failed handshake is an `Error::Tls` naming its cause: the server's
/// certificate from an unknown CA, for another name, expired; a plaintext
/// server; a client certificate missing or from an unknown CA. None shows
/// the password.
pub fn tls_handshake_failures_are_typed_errors<C: Conn>() {
    if no_tls() {
        return;
    }
    let valid = RedisServer::builder()
        .password(Some(SECRET))
        .tls(TlsServer::default())
        .start();
    let Some(expired) = tls_server(TlsServer {
        cert: ServerCert::Expired,
        ..TlsServer::default()
    }) else {
        return;
    };
    let Some(mutual) = tls_server(TlsServer {
        verify_clients: true,
        ..TlsServer::default()
    }) else {
        return;
    };
    let plaintext = format!("rediss://:{SECRET}@127.0.0.1:{}", valid.port());
    let certs = mutual.certs();
    let cases = [
        (
            "Mozilla roots only",
            valid.tls_url(),
            TlsOptions::new(),
            TlsFailure::UnknownIssuer,
        ),
        (
            "another CA",
            valid.tls_url(),
            TlsOptions::new().ca_cert_file(valid.certs().other_ca_cert()),
            TlsFailure::UnknownIssuer,
        ),
        (
            "another name",
            valid.tls_url(),
            trusting(&valid).server_name("redis.example"),
            TlsFailure::NameMismatch,
        ),
        (
            "expired",
            expired.tls_url(),
            trusting(&expired),
            TlsFailure::Expired,
        ),
        (
            "plaintext server",
            plaintext,
            trusting(&valid),
            TlsFailure::NotTls,
        ),
        (
            "no client certificate",
            mutual.tls_url(),
            trusting(&mutual),
            TlsFailure::ClientCertificateRequired,
        ),
        (
            "a client certificate from an unknown CA",
            mutual.tls_url(),
            trusting(&mutual).client_cert_files(certs.stranger_cert(), certs.stranger_key()),
            TlsFailure::ClientCertificateRejected,
        ),
    ];
    for (what, url, tls, want) in cases {
        match C::connect_with(&url, quick(tls)) {
            Err(e @ Error::Tls { .. }) => {
                let Error::Tls { cause, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(*cause, want, "{what}: {e}");
                let shown = format!("{e} / {e:?}");
                assert!(!shown.contains(SECRET), "{what}: {shown}");
            }
            other => panic!("{what}: expected {want:?}, got {other:?}"),
        }
    }
}

/// A missing CA file, one without a certificate, a client key that does
/// not match its certificate or is no key, an invalid name to verify, and
/// TLS options with a `redis://` URL: each an `Error::Config` for `tls`
/// when the connection or the consumer is built, before anything is sent.
pub fn bad_tls_options_are_config_errors_when_built<C: Conn>() {
    let Some(server) = tls_server(TlsServer::default()) else {
        return;
    };
    let certs = server.certs();
    let dir = server.data_dir();
    let not_pem = dir.join("not.pem");
    fs::write(&not_pem, "hello").expect("write a file");
    let cases = [
        (
            server.tls_url(),
            TlsOptions::new().ca_cert_file(dir.join("missing.pem")),
            "cannot read",
        ),
        (
            server.tls_url(),
            TlsOptions::new().ca_cert_file(&not_pem),
            "no certificate in the CA bundle",
        ),
        (
            server.tls_url(),
            trusting(&server).client_cert_files(certs.client_cert(), certs.stranger_key()),
            "cannot be used together",
        ),
        (
            server.tls_url(),
            trusting(&server).client_cert_files(certs.client_cert(), certs.ca_cert()),
            "no private key",
        ),
        (
            server.tls_url(),
            trusting(&server).client_cert_files(&not_pem, certs.client_key()),
            "no certificate in the client certificate",
        ),
        (
            server.tls_url(),
            trusting(&server).server_name("not a host name"),
            "not a valid server name",
        ),
        (server.url(), trusting(&server), "use rediss://"),
    ];
    for (url, tls, says) in cases {
        match C::connect_with(&url, quick(tls.clone())) {
            Err(Error::Config(e)) => {
                assert_eq!(e.option, "tls", "{e}");
                assert!(e.reason.contains(says), "{e}");
            }
            other => panic!("{tls:?}: expected a config error, got {other:?}"),
        }
        let consumer = C::consumer_debug(&url, Some(tls));
        assert!(
            consumer.contains("invalid option `tls`") && consumer.contains(says),
            "{consumer}"
        );
    }
}

/// Key material given as PEM text never shows in the `Debug` of the
/// options, a connection, a consumer builder or a consumer, nor in errors.
pub fn key_material_never_shows_in_errors_or_debug_output<C: Conn>() {
    let Some(server) = tls_server(TlsServer {
        verify_clients: true,
        ..TlsServer::default()
    }) else {
        return;
    };
    let certs = server.certs();
    let key = fs::read_to_string(certs.client_key()).expect("client key");
    let cert = fs::read(certs.client_cert()).expect("client cert");
    // A line of the key's base64 body: secret.
    let secret = key
        .lines()
        .find(|l| !l.starts_with("-----") && l.len() > 20)
        .expect("a body line")
        .to_owned();
    let tls = trusting(&server).client_cert_pem(cert, key.clone().into_bytes());
    let check = |what: &str, shown: &str| {
        assert!(!shown.contains(&secret), "{what} shows the key: {shown}");
    };
    check("the options", &format!("{tls:?}"));
    check(
        "the connection options",
        &format!("{:?}", quick(tls.clone())),
    );
    let mut conn = C::connect_with(&server.tls_url(), quick(tls.clone())).expect("mutual TLS");
    assert_eq!(conn.send(&cmd(&["PING"])), Ok(Value::Simple("PONG".into())));
    check("a connection", &format!("{conn:?}"));
    check(
        "a consumer",
        &C::consumer_debug(&server.tls_url(), Some(tls.clone())),
    );
    // A key that does not fit its certificate, and a broken one.
    let other_key = fs::read(certs.stranger_key()).expect("stranger key");
    let mismatched = trusting(&server).client_cert_pem(
        fs::read(certs.client_cert()).expect("client cert"),
        other_key,
    );
    let broken = trusting(&server).client_cert_pem(
        fs::read(certs.client_cert()).expect("client cert"),
        key.replace('A', "*").into_bytes(),
    );
    for tls in [mismatched, broken] {
        let e = C::connect_with(&server.tls_url(), quick(tls.clone())).expect_err("bad key");
        check("an error", &format!("{e} / {e:?}"));
        check(
            "a consumer's error",
            &C::consumer_debug(&server.tls_url(), Some(tls)),
        );
    }
}
