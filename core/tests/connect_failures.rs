//! How the core treats typed connection failures the adapters report (TLS
//! handshakes) and a `NOPERM` reply: which stop the consumer, which are
//! retried.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use xgroup_core::{Conn, Consumer, ConsumerConfig, Error, Event, TlsFailure, Warning};

fn consumer() -> Consumer {
    let cfg = ConsumerConfig::builder("s", "g", "c")
        .no_heartbeat()
        .seed(7)
        .build()
        .unwrap();
    Consumer::new(cfg)
}

fn events(c: &mut Consumer) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn tls(cause: TlsFailure) -> Error {
    Error::Tls {
        cause,
        server: "127.0.0.1:6380".into(),
        detail: "rustls said so".into(),
    }
}

#[test]
fn a_permanent_tls_failure_on_connect_stops_the_consumer_with_it() {
    for cause in [
        TlsFailure::UnknownIssuer,
        TlsFailure::NameMismatch,
        TlsFailure::Expired,
        TlsFailure::NotTls,
        TlsFailure::ClientCertificateRequired,
    ] {
        let now = Instant::now();
        let mut c = consumer();
        assert_eq!(
            events(&mut c),
            [Event::Connect(Conn::Control), Event::Connect(Conn::Read)]
        );
        c.handle_connected(now, Conn::Read);
        c.handle_connect_error(now, Conn::Control, tls(cause.clone()));
        let evs = events(&mut c);
        // The read connection that opened is closed, and the consumer stops.
        assert_eq!(
            evs,
            [
                Event::Disconnect(Conn::Read),
                Event::Stopped(Some(tls(cause)))
            ]
        );
        assert!(c.is_stopped());
        assert_eq!(c.stats().errors, 1);
    }
}

#[test]
fn a_retryable_failure_on_connect_reconnects_after_a_backoff() {
    let now = Instant::now();
    let mut c = consumer();
    let _ = events(&mut c);
    c.handle_connect_error(now, Conn::Control, tls(TlsFailure::Other));
    // The read connection asked for is closed too; both are retried.
    let evs = events(&mut c);
    assert!(
        matches!(&evs[..], [Event::Disconnect(Conn::Read), Event::Warning(Warning::Reconnecting { attempt: 1, cause, .. })] if *cause == tls(TlsFailure::Other)),
        "{evs:?}"
    );
    assert!(!c.is_stopped());
    let refused = Error::Connection("127.0.0.1:1: connection refused".into());
    let (at, _) = c.poll_timeout().unwrap();
    c.handle_timeout(at);
    let _ = events(&mut c);
    c.handle_connect_error(at, Conn::Control, refused.clone());
    let evs = events(&mut c);
    assert!(
        matches!(&evs[..], [Event::Disconnect(Conn::Read), Event::Warning(Warning::Reconnecting { attempt: 2, cause, .. })] if *cause == refused),
        "{evs:?}"
    );
}

#[test]
fn a_tls_alert_after_the_handshake_stops_the_consumer_too() {
    // TLS 1.3: a server that wants a client certificate says so with an
    // alert after the client's side of the handshake is done.
    let now = Instant::now();
    let mut c = consumer();
    let _ = events(&mut c);
    c.handle_connected(now, Conn::Control);
    c.handle_connected(now, Conn::Read);
    let cause = tls(TlsFailure::ClientCertificateRequired);
    c.handle_connection_error(now, Conn::Read, cause.clone());
    let evs = events(&mut c);
    assert_eq!(
        evs,
        [
            Event::Disconnect(Conn::Control),
            Event::Stopped(Some(cause))
        ]
    );
    // A plain read error on an open connection is retried.
    let mut c = consumer();
    let _ = events(&mut c);
    c.handle_connected(now, Conn::Control);
    c.handle_connection_error(now, Conn::Control, Error::Connection("reset".into()));
    assert!(!c.is_stopped());
}

#[test]
fn noperm_names_the_command_and_stops() {
    let now = Instant::now();
    let cfg = ConsumerConfig::builder("s", "g", "c")
        .no_heartbeat()
        .seed(7)
        .separate_read_connection(false)
        .build()
        .unwrap();
    let mut c = Consumer::new(cfg);
    let _ = events(&mut c);
    c.handle_connected(now, Conn::Control);
    while c.poll_transmit().is_some() {}
    // CLIENT SETNAME and XGROUP CREATE pass; the replay's XREADGROUP is refused.
    c.handle_input(now, Conn::Control, b"+OK\r\n+OK\r\n");
    while c.poll_transmit().is_some() {}
    c.handle_input(
        now,
        Conn::Control,
        b"-NOPERM this user has no permissions to run the 'xreadgroup' command\r\n",
    );
    let evs = events(&mut c);
    let Some(Event::Stopped(Some(e))) = evs.last() else {
        panic!("{evs:?}")
    };
    assert!(
        matches!(
            e,
            Error::NoPermission {
                command: "XREADGROUP",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("the ACL user lacks permission for XREADGROUP: "),
        "{e}"
    );
}

#[test]
fn noperm_in_the_handshake_names_that_command() {
    let now = Instant::now();
    let mut c = consumer();
    let _ = events(&mut c);
    c.handle_connected(now, Conn::Control);
    while c.poll_transmit().is_some() {}
    c.handle_input(
        now,
        Conn::Control,
        b"-NOPERM this user has no permissions to run the 'client|setname' command\r\n",
    );
    let evs = events(&mut c);
    assert!(
        matches!(
            evs.last(),
            Some(Event::Stopped(Some(Error::NoPermission {
                command: "CLIENT SETNAME",
                ..
            })))
        ),
        "{evs:?}"
    );
}
