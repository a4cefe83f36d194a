//! A test CA (rcgen) and an in-process TLS server on loopback serving one of its certificates.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Now, in whole seconds (certificate times have no fractions).
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

/// A certificate authority made for one test.
pub struct TestCa {
    pub name: String,
    pub cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf certificate and its key.
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

/// Sets the validity of `params` to `[from, to]`, through `rcgen::date_time_ymd` (rcgen's
/// time type comes from the `time` crate, which is not a dependency here).
fn set_validity(params: &mut CertificateParams, from: DateTime<Utc>, to: DateTime<Utc>) {
    let at = |t: DateTime<Utc>| {
        rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
            + Duration::from_secs(u64::from(t.num_seconds_from_midnight()))
    };
    params.not_before = at(from);
    params.not_after = at(to);
}

impl TestCa {
    /// A CA named `name`, valid from a year ago for ten years.
    pub fn new(name: &str) -> TestCa {
        let now = Utc::now();
        let mut params = CertificateParams::default();
        let year = chrono::TimeDelta::days(365);
        set_validity(&mut params, now - year, now + year * 10);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "tether tests");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            name: name.to_string(),
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names`, valid over `[not_before, not_after]` (whole seconds).
    pub fn issue(
        &self,
        names: &[&str],
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Leaf {
        let names_owned: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names_owned).unwrap();
        set_validity(&mut params, not_before, not_after);
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

impl Leaf {
    /// SHA-256 of the certificate's DER, lowercase hex.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.cert.as_ref()))
    }
}

/// A TLS server on 127.0.0.1 (port chosen by the OS) that completes handshakes and hangs up.
pub struct TlsServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TlsServer {
    /// Serves `leaf` followed by `chain` (intermediates) to every client, whatever its SNI.
    pub async fn start(leaf: &Leaf, chain: &[CertificateDer<'static>]) -> TlsServer {
        let mut certs = vec![leaf.cert.clone()];
        certs.extend(chain.iter().cloned());
        let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, leaf.key.clone_key())
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        tokio::io::AsyncWriteExt::shutdown(&mut tls).await.ok();
                    }
                });
            }
        });
        TlsServer { addr, task }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
