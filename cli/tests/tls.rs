//! `xgroup` over TLS: a `rediss://` URL with `--tls-ca-cert`, and with a
//! client certificate (`--tls-cert`, `--tls-key`) for a server that asks
//! for one; what a user sees when one is missing or wrong.

mod common;

use std::path::Path;

use common::{cmd, xgroup_at};
use xgroup_testkit::tls::TlsServer;

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

#[test]
fn commands_work_over_tls_with_the_tls_flags() {
    let Some(server) = xgroup_testkit::tls::server(TlsServer::default()) else {
        return;
    };
    cmd(&server, &["XADD", "orders", "1-0", "n", "1"]);
    cmd(&server, &["XADD", "orders", "2-0", "n", "2"]);
    cmd(&server, &["XGROUP", "CREATE", "orders", "processors", "0"]);
    cmd(
        &server,
        &[
            "XREADGROUP",
            "GROUP",
            "processors",
            "c1",
            "COUNT",
            "1",
            "STREAMS",
            "orders",
            ">",
        ],
    );
    let url = server.tls_url();
    let ca = path(&server.certs().ca_cert()).to_owned();

    let described = xgroup_at(
        &url,
        &["describe", "orders", "--json", "--tls-ca-cert", &ca],
    );
    let json = described.json();
    let group = &json["groups"][0];
    assert_eq!(group["name"], "processors", "{json}");
    assert_eq!(group["pending"], 1, "{json}");

    // The flags go before the subcommand too.
    let pending = xgroup_at(
        &url,
        &[
            "--tls-ca-cert",
            &ca,
            "pending",
            "orders",
            "processors",
            "--json",
        ],
    );
    let json = pending.json();
    assert_eq!(json["entries"][0]["id"], "1-0", "{json}");

    // Without the CA the server's certificate is not trusted: one line
    // that says so and names the flag.
    let untrusted = xgroup_at(&url, &["describe", "orders"]);
    let line = untrusted.one_line_error();
    assert!(
        line.contains("not signed by a trusted CA") && line.contains("--tls-ca-cert"),
        "{line}"
    );
    // A CA file that is not there.
    let missing = xgroup_at(
        &url,
        &["describe", "orders", "--tls-ca-cert", "/nonexistent/ca.pem"],
    );
    let line = missing.one_line_error();
    assert!(
        line.starts_with("xgroup: bad --tls-* option: cannot read /nonexistent/ca.pem"),
        "{line}"
    );
    // TLS files with a plaintext URL: refused, not ignored.
    let plain = xgroup_at(&server.url(), &["describe", "orders", "--tls-ca-cert", &ca]);
    let line = plain.one_line_error();
    assert!(
        line.starts_with(
            "xgroup: bad --tls-* option: TLS options are set but the URL says redis://"
        ),
        "{line}"
    );
}

#[test]
fn a_client_certificate_is_presented_with_tls_cert_and_tls_key() {
    let tls = TlsServer {
        verify_clients: true,
        ..TlsServer::default()
    };
    let Some(server) = xgroup_testkit::tls::server(tls) else {
        return;
    };
    cmd(&server, &["XADD", "orders", "1-0", "n", "1"]);
    cmd(&server, &["XGROUP", "CREATE", "orders", "processors", "0"]);
    let url = server.tls_url();
    let certs = server.certs();
    let (ca, cert, key) = (
        path(&certs.ca_cert()).to_owned(),
        path(&certs.client_cert()).to_owned(),
        path(&certs.client_key()).to_owned(),
    );

    let run = xgroup_at(
        &url,
        &[
            "describe",
            "orders",
            "--json",
            "--tls-ca-cert",
            &ca,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
    );
    assert_eq!(run.json()["groups"][0]["name"], "processors");

    let without = xgroup_at(&url, &["describe", "orders", "--tls-ca-cert", &ca]);
    let line = without.one_line_error();
    assert!(line.contains("requires a client certificate"), "{line}");
    // A certificate without its key is a usage error.
    let half = xgroup_at(
        &url,
        &[
            "describe",
            "orders",
            "--tls-ca-cert",
            &ca,
            "--tls-cert",
            &cert,
        ],
    );
    assert_eq!(half.code, 2, "{half:?}");
    assert!(half.one_line_error().contains("--tls-key"), "{half:?}");
}
