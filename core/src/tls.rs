//! TLS settings as plain data: what to trust, what to present, which name to
//! verify. The core never touches TLS itself; the adapters (through
//! `xgroup-driver`) build a rustls client from these and tell the core how
//! a handshake failed ([`TlsFailure`]).

use std::fmt;
use std::path::PathBuf;

use bytes::Bytes;

/// TLS settings of a `rediss://` connection.
///
/// Without roots, the server's certificate is checked against the Mozilla
/// root store (compiled in); name the CA of a private deployment with
/// [`ca_cert_file`](Self::ca_cert_file). Roots add up: a CA file and the
/// platform's store trust both.
///
/// Its `Debug` output never shows key material (PEM given as bytes shows as
/// its length):
///
/// ```
/// use xgroup_core::TlsOptions;
///
/// let tls = TlsOptions::new()
///     .ca_cert_file("/etc/redis/ca.pem")
///     .client_cert_pem(b"-----BEGIN CERTIFICATE-----...".to_vec(), b"-----BEGIN PRIVATE KEY-----secret".to_vec())
///     .server_name("redis.internal");
/// assert!(!format!("{tls:?}").contains("secret"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    roots: Vec<TlsRoots>,
    client_cert: Option<(Pem, Pem)>,
    server_name: Option<String>,
    accept_invalid_certs: bool,
}

/// Certificates to trust when verifying the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsRoots {
    /// The Mozilla root store, compiled in (the `webpki-roots` crate).
    Mozilla,
    /// The platform's store (the `rustls-native-certs` crate: the system's
    /// CA bundle on Linux, the keychain on macOS, the store on Windows).
    Platform,
    /// Every certificate in this PEM bundle (a private CA).
    Ca(Pem),
}

/// PEM text, in a file or in memory.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// Read from this file when the consumer or connection is built.
    File(PathBuf),
    /// These bytes. `Debug` shows only their length: they may be a key.
    Bytes(Bytes),
}

impl TlsOptions {
    /// Default settings: verify the server against the Mozilla roots, for
    /// the URL's host name, presenting no client certificate.
    pub fn new() -> Self {
        TlsOptions::default()
    }

    /// Trusts the CA certificates in this PEM file (read at build time; a
    /// missing or unparsable file is an `Error::Config` then).
    #[must_use]
    pub fn ca_cert_file(self, path: impl Into<PathBuf>) -> Self {
        self.root(TlsRoots::Ca(Pem::File(path.into())))
    }

    /// Trusts the CA certificates in this PEM text.
    #[must_use]
    pub fn ca_cert_pem(self, pem: impl Into<Bytes>) -> Self {
        self.root(TlsRoots::Ca(Pem::Bytes(pem.into())))
    }

    /// Trusts the platform's root store.
    #[must_use]
    pub fn platform_roots(self) -> Self {
        self.root(TlsRoots::Platform)
    }

    /// Trusts the Mozilla root store (the default when no root is given).
    #[must_use]
    pub fn mozilla_roots(self) -> Self {
        self.root(TlsRoots::Mozilla)
    }

    /// Presents this client certificate (chain) and its private key, both
    /// PEM files, for servers that verify clients (mutual TLS,
    /// `tls-auth-clients yes`).
    #[must_use]
    pub fn client_cert_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((Pem::File(cert.into()), Pem::File(key.into())));
        self
    }

    /// [`client_cert_files`](Self::client_cert_files) from PEM text.
    #[must_use]
    pub fn client_cert_pem(mut self, cert: impl Into<Bytes>, key: impl Into<Bytes>) -> Self {
        self.client_cert = Some((Pem::Bytes(cert.into()), Pem::Bytes(key.into())));
        self
    }

    /// Verifies the server's certificate for this name (and sends it as
    /// SNI) instead of the URL's host: for connecting by IP address or
    /// through a tunnel to a server whose certificate names its DNS name.
    #[must_use]
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// **Development only**: accepts any server certificate (expired,
    /// self-signed, for another name) without verifying it. Anyone on the
    /// path can then read and change the traffic, and take the password.
    /// Every consumer or connection built with it logs a warning.
    #[must_use]
    pub fn danger_accept_invalid_certs(mut self) -> Self {
        self.accept_invalid_certs = true;
        self
    }

    /// The roots to trust, in the order given (empty: the Mozilla roots).
    pub fn roots(&self) -> &[TlsRoots] {
        &self.roots
    }

    /// The client certificate and key, if any.
    pub fn client_cert(&self) -> Option<(&Pem, &Pem)> {
        self.client_cert.as_ref().map(|(cert, key)| (cert, key))
    }

    /// The name to verify, if not the URL's host.
    pub fn name_to_verify(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// Whether certificates go unverified
    /// ([`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs)).
    pub fn accepts_invalid_certs(&self) -> bool {
        self.accept_invalid_certs
    }

    fn root(mut self, root: TlsRoots) -> Self {
        self.roots.push(root);
        self
    }
}

/// Why a TLS handshake (or the TLS session after it) failed, as far as the
/// user can act on it. Every cause but [`Other`](Self::Other) is permanent:
/// trying again cannot help until someone changes a certificate or the
/// options, so a consumer stops with it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server's certificate is not signed by a trusted CA.
    UnknownIssuer,
    /// The server's certificate is not valid for the name verified.
    NameMismatch,
    /// The server's certificate has expired.
    Expired,
    /// The server's certificate is not valid yet.
    NotYetValid,
    /// The server's certificate was revoked.
    Revoked,
    /// The server's certificate is unusable for another reason.
    BadCertificate,
    /// The server did not answer in TLS: a plaintext port.
    NotTls,
    /// The server asks for a client certificate and none was given.
    ClientCertificateRequired,
    /// The server rejected the client certificate (unknown CA, expired,
    /// wrong use).
    ClientCertificateRejected,
    /// The server refused the handshake (no common protocol version or
    /// cipher suite, or another fatal alert).
    Refused,
    /// Anything else (a corrupt record, an internal error): retried.
    Other,
}

impl TlsFailure {
    /// Whether trying again cannot help (everything but [`Other`](Self::Other)).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, TlsFailure::Other)
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::UnknownIssuer => {
                "the server's certificate is not signed by a trusted CA (trust its CA with \
                 TlsOptions::ca_cert_file, or --tls-ca-cert in the examples)"
            }
            TlsFailure::NameMismatch => {
                "the server's certificate is not valid for the name verified (the URL's host; \
                 set TlsOptions::server_name if the certificate names another)"
            }
            TlsFailure::Expired => "the server's certificate has expired",
            TlsFailure::NotYetValid => "the server's certificate is not valid yet",
            TlsFailure::Revoked => "the server's certificate was revoked",
            TlsFailure::BadCertificate => "the server's certificate is invalid",
            TlsFailure::NotTls => {
                "the server did not answer in TLS (a plaintext port? use redis:// for it)"
            }
            TlsFailure::ClientCertificateRequired => {
                "the server requires a client certificate (TlsOptions::client_cert_files, or \
                 --tls-cert and --tls-key in the examples)"
            }
            TlsFailure::ClientCertificateRejected => "the server rejected the client certificate",
            TlsFailure::Refused => "the server refused the TLS handshake",
            TlsFailure::Other => "TLS failed",
        })
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("roots", &self.roots)
            .field("client_cert", &self.client_cert)
            .field("server_name", &self.server_name)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .finish()
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => f.debug_tuple("File").field(path).finish(),
            Pem::Bytes(bytes) => write!(f, "Bytes(<{} bytes>)", bytes.len()),
        }
    }
}

impl fmt::Display for Pem {
    /// The file's path, or "PEM text" (never its contents).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => write!(f, "{}", path.display()),
            Pem::Bytes(_) => f.write_str("the PEM text given"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_material_never_shows() {
        let tls = TlsOptions::new()
            .ca_cert_pem(&b"CA-PEM-9d1c"[..])
            .client_cert_pem(&b"CERT-PEM-77aa"[..], &b"KEY-PEM-41f0"[..]);
        let shown = format!("{tls:?}");
        for secret in ["KEY-PEM-41f0", "CERT-PEM-77aa", "CA-PEM-9d1c"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("<12 bytes>"), "{shown}");
        let (_, key) = tls.client_cert().unwrap();
        assert_eq!(key.to_string(), "the PEM text given");
    }

    #[test]
    fn roots_add_up_and_only_other_failures_are_retried() {
        let tls = TlsOptions::new().ca_cert_file("ca.pem").platform_roots();
        assert_eq!(
            tls.roots(),
            [TlsRoots::Ca(Pem::File("ca.pem".into())), TlsRoots::Platform]
        );
        assert!(TlsOptions::new().roots().is_empty());
        assert!(TlsFailure::UnknownIssuer.is_permanent());
        assert!(TlsFailure::NotTls.is_permanent());
        assert!(!TlsFailure::Other.is_permanent());
    }
}
