//! The TLS and ACL scenarios every adapter passes (run with the others by
//! [`adapter_scenarios!`](crate::adapter_scenarios)): consuming over TLS and
//! mutual TLS, as an ACL user, and each way a handshake fails, with the
//! typed error `run` ends with. Each spawns its own TLS server with
//! certificates made by the test.

use std::time::Duration;

use rustls::crypto::CryptoProvider;
use xgroup_core::{Error, TlsFailure, TlsOptions};

use crate::scenarios::{
    all_seen, fast, opts, produce, spec, stop_ok, wait_pending, Adapter, Behavior, Configure,
    Running, WAIT,
};
use crate::tls::{ServerCert, TlsServer};
use crate::{RedisServer, RespValue};

/// The TLS server, or `None` (the test then passes, having printed why)
/// when the server binary has no TLS.
fn tls_server(tls: TlsServer) -> Option<RedisServer> {
    crate::tls::server(tls)
}

/// Trusts the server's test CA.
fn trusting(server: &RedisServer) -> TlsOptions {
    TlsOptions::new().ca_cert_file(server.certs().ca_cert())
}

fn with(tls: TlsOptions) -> Configure {
    opts(move |c| fast(c).tls(tls.clone()))
}

/// Consumes everything in the stream at `url` and stops cleanly.
fn consumes<A: Adapter>(server: &RedisServer, url: &str, tls: TlsOptions) {
    let ids = produce(server, 12);
    let s = spec(url, "c1", Behavior::AckAll, with(tls));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(
        seen.wait_for(WAIT, all_seen(&ids)),
        "not all delivered over TLS: {:?}",
        seen.ids()
    );
    wait_pending(server, 0);
    let stats = stop_ok(running);
    assert_eq!(stats.acked, 12);
    assert_no_process_provider();
}

/// The crypto provider came from xgroup's feature: none was ever installed
/// for the process (rustls would panic without one had xgroup relied on it).
fn assert_no_process_provider() {
    assert!(
        CryptoProvider::get_default().is_none(),
        "a process-level crypto provider was installed"
    );
}

/// `run` ends at once with this TLS failure, its text naming the cause and
/// the server, never the password.
fn stops_with(mut running: Box<dyn Running>, want: TlsFailure) -> String {
    match running.wait(WAIT) {
        Some(Err(e @ Error::Tls { .. })) => {
            let Error::Tls { cause, server, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*cause, want, "{e}");
            let text = e.to_string();
            assert!(text.contains(server.as_str()), "{text}");
            assert!(text.contains(&want.to_string()), "{text}");
            assert!(!text.contains("s3cret"), "{text}");
            text
        }
        other => panic!("expected the TLS failure {want:?}, got {other:?}"),
    }
}

fn failing<A: Adapter>(url: &str, tls: TlsOptions) -> Box<dyn Running> {
    A::start(spec(url, "c1", Behavior::AckAll, with(tls)))
}

/// Consumes over TLS (`rediss://`, the test CA trusted).
pub fn consumes_over_tls<A: Adapter>() {
    let Some(server) = tls_server(TlsServer::default()) else {
        return;
    };
    consumes::<A>(&server, &server.tls_url(), trusting(&server));
}

/// Mutual TLS (the server verifies the client's certificate) as an ACL
/// user whose password needs percent-encoding, over RESP3 (`HELLO 3 AUTH`).
pub fn consumes_over_mutual_tls_as_an_acl_user_over_resp3<A: Adapter>() {
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
        ">s3cret@:/%",
        "~*",
        "&*",
        "+@all",
    ]);
    assert!(!reply.is_error(), "{reply:?}");
    let port = server.tls_port().expect("TLS port");
    let url = format!("rediss://app:s3cret%40%3A%2F%25@127.0.0.1:{port}?protocol=resp3");
    let certs = server.certs();
    let tls = trusting(&server).client_cert_files(certs.client_cert(), certs.client_key());
    let ids = produce(&server, 12);
    let s = spec(&url, "c1", Behavior::AckAll, with(tls));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&ids)), "{:?}", seen.ids());
    wait_pending(&server, 0);
    // Both connections logged in as the ACL user, with RESP3.
    let clients = match server.cmd(&["CLIENT", "LIST"]) {
        RespValue::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("CLIENT LIST: {other:?}"),
    };
    let ours: Vec<&str> = clients
        .lines()
        .filter(|l| l.contains(" name=c1 "))
        .collect();
    assert_eq!(ours.len(), 2, "{clients}");
    assert!(
        ours.iter()
            .all(|l| l.contains(" user=app ") && l.contains(" resp=3")),
        "{clients}"
    );
    stop_ok(running);
    assert_no_process_provider();
}

/// An ACL user whose password needs percent-encoding, over RESP2
/// (`AUTH user pass`) and plain TCP.
pub fn acl_user_with_an_encoded_password_consumes<A: Adapter>() {
    let server = RedisServer::start();
    let reply = server.cmd(&[
        "ACL",
        "SETUSER",
        "app",
        "on",
        ">s3cret@:/%",
        "~*",
        "&*",
        "+@all",
    ]);
    assert!(!reply.is_error(), "{reply:?}");
    let url = format!("redis://app:s3cret%40%3A%2F%25@127.0.0.1:{}", server.port());
    let ids = produce(&server, 5);
    let s = spec(&url, "c1", Behavior::AckAll, opts(fast));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&ids)), "{:?}", seen.ids());
    wait_pending(&server, 0);
    stop_ok(running);
}

/// The server's certificate is not signed by a trusted CA: the Mozilla
/// roots (the default) or another CA. `run` stops with `UnknownIssuer`.
pub fn tls_untrusted_server_certificate_stops_the_consumer<A: Adapter>() {
    let Some(server) = tls_server(TlsServer::default()) else {
        return;
    };
    let running = failing::<A>(&server.tls_url(), TlsOptions::new());
    stops_with(running, TlsFailure::UnknownIssuer);
    let other = TlsOptions::new().ca_cert_file(server.certs().other_ca_cert());
    let running = failing::<A>(&server.tls_url(), other);
    stops_with(running, TlsFailure::UnknownIssuer);
}

/// The server's certificate names another host: `NameMismatch`; with that
/// name to verify (`server_name`, sent as SNI) the same server is fine.
pub fn tls_wrong_host_name_stops_the_consumer_and_server_name_mends_it<A: Adapter>() {
    let Some(server) = tls_server(TlsServer {
        cert: ServerCert::ForName("redis.test"),
        ..TlsServer::default()
    }) else {
        return;
    };
    let running = failing::<A>(&server.tls_url(), trusting(&server));
    stops_with(running, TlsFailure::NameMismatch);
    let named = trusting(&server).server_name("redis.test");
    consumes::<A>(&server, &server.tls_url(), named);
}

/// The server's certificate has expired: `Expired`.
pub fn tls_expired_server_certificate_stops_the_consumer<A: Adapter>() {
    let Some(server) = tls_server(TlsServer {
        cert: ServerCert::Expired,
        ..TlsServer::default()
    }) else {
        return;
    };
    let running = failing::<A>(&server.tls_url(), trusting(&server));
    stops_with(running, TlsFailure::Expired);
}

/// `rediss://` to a plaintext port: `NotTls`. Redis never answers a TLS
/// client hello on a plaintext port, so this takes the connect timeout
/// (then a plaintext `PING` tells it from a slow TLS server).
pub fn tls_plaintext_server_stops_the_consumer<A: Adapter>() {
    let Some(server) = tls_server(TlsServer::default()) else {
        return;
    };
    let url = format!("rediss://127.0.0.1:{}", server.port());
    let started = std::time::Instant::now();
    let tls = trusting(&server);
    let quick = opts(move |c| {
        fast(c)
            .tls(tls.clone())
            .connect_timeout(Duration::from_secs(1))
    });
    let running = A::start(spec(&url, "c1", Behavior::AckAll, quick));
    let text = stops_with(running, TlsFailure::NotTls);
    assert!(text.contains("PONG"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A server that verifies clients: without a client certificate,
/// `ClientCertificateRequired`; with one from a CA it does not know,
/// `ClientCertificateRejected`. (Under TLS 1.3 the server says so after the
/// client's side of the handshake, with an alert the first read meets.)
pub fn tls_missing_or_unknown_client_certificate_stops_the_consumer<A: Adapter>() {
    let Some(server) = tls_server(TlsServer {
        verify_clients: true,
        ..TlsServer::default()
    }) else {
        return;
    };
    let running = failing::<A>(&server.tls_url(), trusting(&server));
    stops_with(running, TlsFailure::ClientCertificateRequired);
    let certs = server.certs();
    let stranger = trusting(&server).client_cert_files(certs.stranger_cert(), certs.stranger_key());
    let running = failing::<A>(&server.tls_url(), stranger);
    stops_with(running, TlsFailure::ClientCertificateRejected);
}

/// The development opt-out: an expired certificate from an unknown CA is
/// accepted.
pub fn tls_without_verification_accepts_an_expired_certificate<A: Adapter>() {
    let Some(server) = tls_server(TlsServer {
        cert: ServerCert::Expired,
        ..TlsServer::default()
    }) else {
        return;
    };
    let tls = TlsOptions::new().danger_accept_invalid_certs();
    consumes::<A>(&server, &server.tls_url(), tls);
}

/// The TLS server goes away (connections reset, then refused) and comes
/// back: retried with backoff, never stopped, nothing lost.
pub fn tls_server_down_and_restarted_is_retried_and_loses_nothing<A: Adapter>() {
    let Some(mut server) = tls_server(TlsServer::default()) else {
        return;
    };
    let first = produce(&server, 5);
    let s = spec(
        &server.tls_url(),
        "c1",
        Behavior::AckAll,
        with(trusting(&server)),
    );
    let seen = s.seen.clone();
    let mut running = A::start(s);
    assert!(seen.wait_for(WAIT, all_seen(&first)), "{:?}", seen.ids());
    wait_pending(&server, 0);
    server.kill();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        running.wait(Duration::ZERO).is_none(),
        "gave up on a TLS server that may come back"
    );
    server.restart();
    let second = produce(&server, 5);
    assert!(seen.wait_for(WAIT, all_seen(&second)), "{:?}", seen.ids());
    wait_pending(&server, 0);
    let stats = stop_ok(running);
    assert!(stats.connections >= 2, "{stats:?}");
}
