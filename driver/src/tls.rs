//! TLS for every adapter, written once: the rustls client configuration
//! built from [`TlsOptions`] (roots, client certificate, server name, the
//! dangerous no-verify verifier, the crypto provider), and the reading of a
//! failed handshake as a typed [`Error::Tls`]. Each adapter only wraps its
//! socket with its runtime's rustls wrapper (`tokio-rustls`,
//! `futures-rustls`, `rustls::StreamOwned`); the TLS state machine is
//! rustls'.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    RootCertStore, SignatureScheme,
};
use xgroup_core::{
    ConfigError, ConnectOptions, Error, Pem, ServerAddr, TlsFailure, TlsOptions, TlsRoots,
};

/// A rustls client configuration and the name to verify, built once per
/// consumer or `Connection` (files are read then) and shared by all its
/// connections. Cloning shares the configuration.
#[derive(Clone)]
pub struct TlsSetup {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    server: String,
    /// The options named the server to verify: it is the same whatever the
    /// address.
    named: bool,
}

impl TlsSetup {
    /// The setup `opts` ask for: `None` without TLS. Bad settings (a
    /// missing or unparsable PEM file, a key that does not match its
    /// certificate, an invalid server name, no crypto provider) are an
    /// [`Error::Config`] naming the option `tls`.
    pub fn for_connection(opts: &ConnectOptions, addr: &ServerAddr) -> Result<Option<Self>, Error> {
        opts.tls
            .as_ref()
            .map(|tls| Self::new(tls, addr))
            .transpose()
    }

    /// The setup for connecting to `addr` with these settings.
    pub fn new(options: &TlsOptions, addr: &ServerAddr) -> Result<Self, Error> {
        Self::with_provider(options, addr, provider()?)
    }

    /// [`new`](Self::new) with this crypto provider.
    pub fn with_provider(
        options: &TlsOptions,
        addr: &ServerAddr,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, Error> {
        let host = options.name_to_verify().unwrap_or(&addr.host);
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| bad(format!("{host:?} is not a valid server name to verify")))?;
        if options.accepts_invalid_certs() {
            tracing::warn!(
                server = %addr.to_socket_string(),
                "TLS certificate verification is OFF (danger_accept_invalid_certs): \
                 anyone on the path can read and change this traffic; development only"
            );
        }
        Ok(TlsSetup {
            config: Arc::new(client_config(options, provider)?),
            name,
            server: addr.to_socket_string(),
            named: options.name_to_verify().is_some(),
        })
    }

    /// This setup for a connection to `addr` (a master a sentinel named,
    /// a sentinel): the name verified is `addr`'s host, unless the options
    /// named the server. The configuration is shared.
    pub fn for_address(&self, addr: &ServerAddr) -> TlsSetup {
        let name = match ServerName::try_from(addr.host.clone()) {
            Ok(name) if !self.named => name,
            _ => self.name.clone(),
        };
        TlsSetup {
            config: self.config.clone(),
            name,
            server: addr.to_socket_string(),
            named: self.named,
        }
    }

    /// The rustls client configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The name the server's certificate is verified for (and sent as SNI).
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.name
    }

    /// A new rustls client session for one connection (for code that
    /// drives rustls itself, like the blocking adapter).
    pub fn client(&self) -> io::Result<ClientConnection> {
        ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// How long a plaintext `PING` may take to answer when a TLS handshake got
/// no answer (see [`not_tls`]).
pub const PLAINTEXT_PROBE: Duration = Duration::from_secs(1);

/// The typed error for a failed connect: [`Error::Tls`] when the TLS
/// handshake failed (its cause read from rustls' error inside `e`, or
/// [`not_tls`]'s), else [`Error::Connection`].
pub fn connect_error(addr: &ServerAddr, e: &io::Error) -> Error {
    if let Some(NotTls(answer)) = e.get_ref().and_then(|e| e.downcast_ref::<NotTls>()) {
        return Error::Tls {
            cause: TlsFailure::NotTls,
            server: addr.to_socket_string(),
            detail: format!("no TLS answer to the client hello, but a plaintext PING got {answer}"),
        };
    }
    match rustls_error(e) {
        Some(tls) => Error::Tls {
            cause: handshake_cause(tls),
            server: addr.to_socket_string(),
            detail: tls.to_string(),
        },
        None => Error::Connection(e.to_string()),
    }
}

/// A Redis server on a plaintext port never answers a TLS client hello (it
/// reads it as an inline command and waits for its end), so the handshake
/// times out. Then a plaintext `PING` on a new connection tells a plaintext
/// server (it answers in RESP: the handshake failed for good) from a slow
/// one: the error for a timed-out handshake, `timed_out`, becomes
/// [`TlsFailure::NotTls`] if `answer` (the first bytes the `PING` got)
/// is RESP.
pub fn not_tls(timed_out: io::Error, answer: io::Result<Vec<u8>>) -> io::Error {
    match answer {
        Ok(bytes)
            if bytes
                .first()
                .is_some_and(|b| b"+-:$*%_#,(=!~>|".contains(b)) =>
        {
            let line = bytes.split(|&b| b == b'\r').next().unwrap_or_default();
            let line: String = String::from_utf8_lossy(line).chars().take(60).collect();
            io::Error::new(io::ErrorKind::InvalidData, NotTls(format!("{line:?}")))
        }
        _ => timed_out,
    }
}

/// A plaintext server answered where TLS was expected.
#[derive(Debug)]
struct NotTls(String);

impl fmt::Display for NotTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the server answered a plaintext PING with {}", self.0)
    }
}

impl std::error::Error for NotTls {}

/// The typed error for an open connection that failed: [`Error::Tls`] when
/// the server ended the TLS session with an alert about this client's
/// certificate (TLS 1.3 servers check it after the client's side of the
/// handshake is done), else [`Error::Connection`] (retried).
pub fn session_error(addr: &ServerAddr, e: &io::Error) -> Error {
    match rustls_error(e) {
        Some(tls @ rustls::Error::AlertReceived(alert)) => match alert_cause(*alert) {
            cause @ (TlsFailure::ClientCertificateRequired
            | TlsFailure::ClientCertificateRejected) => Error::Tls {
                cause,
                server: addr.to_socket_string(),
                detail: tls.to_string(),
            },
            _ => Error::Connection(e.to_string()),
        },
        _ => Error::Connection(e.to_string()),
    }
}

/// The crypto provider the cargo features choose: `aws-lc-rs` if on, else
/// `ring` if on, else the process-level default (set by the application
/// with `CryptoProvider::install_default`); never rustls' panic.
pub fn provider() -> Result<Arc<CryptoProvider>, Error> {
    #[cfg(feature = "aws-lc-rs")]
    return Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return Ok(Arc::new(rustls::crypto::ring::default_provider()));
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    return CryptoProvider::get_default().cloned().ok_or_else(|| {
        bad(
            "no rustls crypto provider: enable xgroup's `ring` (default) or `aws-lc-rs` \
             feature, or install one with rustls::crypto::CryptoProvider::install_default"
                .into(),
        )
    });
}

fn client_config(
    options: &TlsOptions,
    provider: Arc<CryptoProvider>,
) -> Result<ClientConfig, Error> {
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("the crypto provider cannot do TLS 1.2 or 1.3: {e}")))?;
    let builder = if options.accepts_invalid_certs() {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        builder.with_root_certificates(roots(options)?)
    };
    match options.client_cert() {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = certificates(cert)?;
            if chain.is_empty() {
                return Err(bad(format!(
                    "no certificate in the client certificate {cert}"
                )));
            }
            let key = private_key(key)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                bad(format!(
                    "the client certificate {cert} and its key cannot be used together: {e}"
                ))
            })
        }
    }
}

fn roots(options: &TlsOptions) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    let mozilla = [TlsRoots::Mozilla];
    let wanted = match options.roots() {
        [] => &mozilla[..],
        given => given,
    };
    for root in wanted {
        match root {
            TlsRoots::Mozilla => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            TlsRoots::Platform => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _unusable) = store.add_parsable_certificates(found.certs);
                if added == 0 {
                    let why = found.errors.first().map(ToString::to_string);
                    return Err(bad(format!(
                        "no usable certificate in the platform's root store{}",
                        why.map(|w| format!(": {w}")).unwrap_or_default()
                    )));
                }
            }
            TlsRoots::Ca(pem) => {
                let certs = certificates(pem)?;
                if certs.is_empty() {
                    return Err(bad(format!("no certificate in the CA bundle {pem}")));
                }
                for cert in certs {
                    store
                        .add(cert)
                        .map_err(|e| bad(format!("unusable CA certificate in {pem}: {e}")))?;
                }
            }
        }
    }
    Ok(store)
}

fn certificates(pem: &Pem) -> Result<Vec<CertificateDer<'static>>, Error> {
    let text = read(pem)?;
    CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            bad(format!(
                "{pem} is not a valid PEM certificate file: {}",
                why(&e)
            ))
        })
}

fn private_key(pem: &Pem) -> Result<PrivateKeyDer<'static>, Error> {
    let text = read(pem)?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
        pem::Error::NoItemsFound => bad(format!(
            "no private key (PKCS#8, PKCS#1 or SEC1 PEM) in the client key {pem}"
        )),
        e => bad(format!(
            "the client key {pem} is not valid PEM: {}",
            why(&e)
        )),
    })
}

fn read(pem: &Pem) -> Result<Cow<'_, [u8]>, Error> {
    match pem {
        Pem::File(path) => std::fs::read(path)
            .map(Cow::Owned)
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display()))),
        Pem::Bytes(bytes) => Ok(Cow::Borrowed(&bytes[..])),
    }
}

/// What is wrong with a PEM file, in words that never quote it (a key
/// file's lines are secret).
fn why(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "bad base64",
        pem::Error::Io(_) => "unreadable",
        pem::Error::NoItemsFound => "nothing found",
        _ => "unparsable",
    }
}

fn bad(reason: String) -> Error {
    ConfigError::new("tls", reason).into()
}

fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

fn handshake_cause(e: &rustls::Error) -> TlsFailure {
    use CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => TlsFailure::UnknownIssuer,
            C::NotValidForName | C::NotValidForNameContext { .. } => TlsFailure::NameMismatch,
            C::Expired | C::ExpiredContext { .. } => TlsFailure::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => TlsFailure::NotYetValid,
            C::Revoked => TlsFailure::Revoked,
            _ => TlsFailure::BadCertificate,
        },
        // Not a TLS record where the server's hello should be: a plaintext
        // server answering the client hello (Redis with `-ERR ...`).
        rustls::Error::InvalidMessage(_) => TlsFailure::NotTls,
        rustls::Error::AlertReceived(alert) => alert_cause(*alert),
        rustls::Error::PeerIncompatible(_) => TlsFailure::Refused,
        rustls::Error::NoCertificatesPresented => TlsFailure::BadCertificate,
        _ => TlsFailure::Other,
    }
}

fn alert_cause(alert: AlertDescription) -> TlsFailure {
    use AlertDescription as A;
    match alert {
        A::CertificateRequired => TlsFailure::ClientCertificateRequired,
        A::BadCertificate
        | A::UnsupportedCertificate
        | A::CertificateRevoked
        | A::CertificateExpired
        | A::CertificateUnknown
        | A::UnknownCA
        | A::AccessDenied => TlsFailure::ClientCertificateRejected,
        A::InternalError => TlsFailure::Other,
        _ => TlsFailure::Refused,
    }
}

/// `danger_accept_invalid_certs`: any certificate is taken as valid; the
/// handshake's signatures are still checked, by the provider's own code.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the config: its Debug is long, and says nothing secret, but
        // nothing useful either.
        f.debug_struct("TlsSetup")
            .field("server", &self.server)
            .field("server_name", &self.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> ServerAddr {
        ServerAddr {
            host: "127.0.0.1".into(),
            port: 6380,
        }
    }

    fn config_error(options: &TlsOptions) -> String {
        match TlsSetup::new(options, &addr()) {
            Err(Error::Config(e)) => {
                assert_eq!(e.option, "tls");
                e.reason
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_build_and_verify_the_urls_host() {
        let setup = TlsSetup::new(&TlsOptions::new(), &addr()).unwrap();
        assert_eq!(
            setup.server_name(),
            &ServerName::try_from("127.0.0.1").unwrap()
        );
        let named = TlsOptions::new().server_name("redis.internal");
        let setup = TlsSetup::new(&named, &addr()).unwrap();
        assert_eq!(
            setup.server_name(),
            &ServerName::try_from("redis.internal").unwrap()
        );
        assert!(setup.client().is_ok());
    }

    #[test]
    fn bad_options_are_config_errors_that_never_quote_a_key() {
        let missing = config_error(&TlsOptions::new().ca_cert_file("/nonexistent/ca.pem"));
        assert!(
            missing.contains("cannot read /nonexistent/ca.pem"),
            "{missing}"
        );
        let empty = config_error(&TlsOptions::new().ca_cert_pem(&b"hello"[..]));
        assert!(empty.contains("no certificate in the CA bundle"), "{empty}");
        let broken =
            "-----BEGIN CERTIFICATE-----\nnot*base64*SECRET-1f2e\n-----END CERTIFICATE-----\n";
        let e = config_error(&TlsOptions::new().ca_cert_pem(broken.as_bytes().to_vec()));
        assert!(
            e.contains("bad base64") && !e.contains("SECRET-1f2e"),
            "{e}"
        );
        let key = "-----BEGIN PRIVATE KEY-----\nSECRET-1f2e***\n-----END PRIVATE KEY-----\n";
        let e = config_error(&TlsOptions::new().client_cert_pem(&b""[..], key.as_bytes().to_vec()));
        assert!(
            e.contains("no certificate in the client certificate"),
            "{e}"
        );
        let bad_name = config_error(&TlsOptions::new().server_name("not a name!"));
        assert!(bad_name.contains("not a valid server name"), "{bad_name}");
    }

    #[test]
    fn the_no_verify_opt_out_builds() {
        let setup = TlsSetup::new(&TlsOptions::new().danger_accept_invalid_certs(), &addr());
        assert!(setup.is_ok());
    }

    #[test]
    fn handshake_errors_are_typed_by_cause() {
        let io = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let cases = [
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                TlsFailure::UnknownIssuer,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                TlsFailure::NameMismatch,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Expired),
                TlsFailure::Expired,
            ),
            (
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
                TlsFailure::NotTls,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                TlsFailure::ClientCertificateRequired,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::UnknownCA),
                TlsFailure::ClientCertificateRejected,
            ),
            (rustls::Error::DecryptError, TlsFailure::Other),
        ];
        for (rustls, want) in cases {
            match connect_error(&addr(), &io(rustls)) {
                Error::Tls { cause, server, .. } => {
                    assert_eq!(cause, want);
                    assert_eq!(server, "127.0.0.1:6380");
                }
                other => panic!("{other:?}"),
            }
        }
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            connect_error(&addr(), &refused),
            Error::Connection(_)
        ));
        // After the handshake only a verdict on the client certificate is
        // a TLS failure; a corrupt record is a lost connection (retried).
        let alert = io(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired,
        ));
        assert!(matches!(
            session_error(&addr(), &alert),
            Error::Tls {
                cause: TlsFailure::ClientCertificateRequired,
                ..
            }
        ));
        let corrupt = io(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        assert!(matches!(
            session_error(&addr(), &corrupt),
            Error::Connection(_)
        ));
    }

    #[test]
    fn every_compiled_in_provider_builds_a_config() {
        let providers: Vec<Arc<CryptoProvider>> = vec![
            #[cfg(feature = "ring")]
            Arc::new(rustls::crypto::ring::default_provider()),
            #[cfg(feature = "aws-lc-rs")]
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        ];
        for p in providers {
            assert!(TlsSetup::with_provider(&TlsOptions::new(), &addr(), p).is_ok());
        }
        // And no process-level default was needed for any of this.
        #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
        assert!(CryptoProvider::get_default().is_none());
    }
}
