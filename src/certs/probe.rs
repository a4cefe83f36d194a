//! TLS probe: read the certificate a host serves, even expired or self-signed, and judge its trust.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, aws_lc_rs};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use x509_parser::extensions::GeneralName;
use x509_parser::parse_x509_certificate;

/// Whether a verifying client (web PKI roots plus any extra roots) accepts the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verification {
    Valid,
    Expired,
    NotYetValid,
    /// The certificate does not cover the name asked for.
    NameMismatch,
    /// The chain does not lead to a trusted root, or is otherwise unacceptable; why.
    Untrusted(String),
}

/// What a TLS probe read from the served leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// SHA-256 of the leaf's DER, lowercase hex without colons.
    pub fingerprint_sha256: String,
    /// The issuer's common name, or its whole distinguished name when it has none.
    pub issuer: String,
    /// The DNS names of the subject alternative names.
    pub names: Vec<String>,
    pub verification: Verification,
}

/// Why no certificate could be read.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0:?} is not a valid TLS server name")]
    InvalidName(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("no TLS handshake with {addr} within {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("TLS handshake with {addr} failed: {source}")]
    Handshake {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr} presented no certificate")]
    NoCertificate { addr: SocketAddr },
    #[error("cannot read the certificate: {0}")]
    Parse(String),
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// Connects to `addr`, asks for `host` by SNI, and reads the leaf certificate it presents.
/// Trust is judged as a verifying client would (web PKI roots plus `extra_roots`), but the
/// handshake goes on whatever the verdict, so expired and self-signed certificates are read.
pub async fn probe(
    host: &str,
    addr: SocketAddr,
    timeout: Duration,
    extra_roots: &[CertificateDer<'_>],
) -> Result<Probe, ProbeError> {
    let name = ServerName::try_from(host.trim_end_matches('.').to_string())
        .map_err(|_| ProbeError::InvalidName(host.to_string()))?;
    let provider = Arc::new(aws_lc_rs::default_provider());
    let verifier = Arc::new(Inspect {
        inner: verifier(provider.clone(), extra_roots)?,
        verdict: Mutex::new(None),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let handshake = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| ProbeError::Connect { addr, source })?;
        connector
            .connect(name, tcp)
            .await
            .map_err(|source| ProbeError::Handshake { addr, source })
    };
    let tls = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| ProbeError::Timeout { addr, timeout })??;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .cloned()
        .ok_or(ProbeError::NoCertificate { addr })?;
    drop(tls);
    let verification = verifier
        .verdict
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_else(|| Verification::Untrusted("the certificate was never verified".into()));
    read_leaf(&leaf, verification)
}

/// Parses the leaf: validity, fingerprint, issuer and DNS names.
pub fn read_leaf(
    der: &CertificateDer<'_>,
    verification: Verification,
) -> Result<Probe, ProbeError> {
    let (_, cert) =
        parse_x509_certificate(der.as_ref()).map_err(|e| ProbeError::Parse(e.to_string()))?;
    let time = |t: i64| {
        DateTime::<Utc>::from_timestamp(t, 0)
            .ok_or_else(|| ProbeError::Parse(format!("timestamp {t} is out of range")))
    };
    let validity = cert.validity();
    let issuer = cert
        .issuer()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(String::from)
        .unwrap_or_else(|| cert.issuer().to_string());
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(s) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        Ok(None) => vec![],
        Err(e) => return Err(ProbeError::Parse(e.to_string())),
    };
    Ok(Probe {
        issued_at: time(validity.not_before.timestamp())?,
        expires_at: time(validity.not_after.timestamp())?,
        fingerprint_sha256: hex::encode(Sha256::digest(der.as_ref())),
        issuer,
        names,
        verification,
    })
}

/// The web PKI roots, parsed once.
fn webpki_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
}

fn verifier(
    provider: Arc<CryptoProvider>,
    extra_roots: &[CertificateDer<'_>],
) -> Result<Arc<WebPkiServerVerifier>, ProbeError> {
    let mut roots = webpki_roots().clone();
    for root in extra_roots {
        roots
            .add(root.clone().into_owned())
            .map_err(|e| ProbeError::Setup(format!("extra root: {e}")))?;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| ProbeError::Setup(e.to_string()))
}

/// Records what the verifying check says and lets the handshake go on regardless. Handshake
/// signatures are still checked, so the peer must hold the key of the certificate it shows.
#[derive(Debug)]
struct Inspect {
    inner: Arc<WebPkiServerVerifier>,
    verdict: Mutex<Option<Verification>>,
}

impl ServerCertVerifier for Inspect {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(_) => Verification::Valid,
            Err(e) => verdict_of(e),
        };
        *self.verdict.lock().unwrap_or_else(|e| e.into_inner()) = Some(verdict);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn verdict_of(e: rustls::Error) -> Verification {
    use CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired | C::ExpiredContext { .. } => Verification::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => Verification::NotYetValid,
            C::NotValidForName | C::NotValidForNameContext { .. } => Verification::NameMismatch,
            C::UnknownIssuer => {
                Verification::Untrusted("issued by an unknown certificate authority".into())
            }
            C::BadSignature => Verification::Untrusted("its signature does not verify".into()),
            other => Verification::Untrusted(other.to_string()),
        },
        other => Verification::Untrusted(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_from_rustls_errors() {
        let v = |c: CertificateError| verdict_of(rustls::Error::InvalidCertificate(c));
        assert_eq!(v(CertificateError::Expired), Verification::Expired);
        assert_eq!(v(CertificateError::NotValidYet), Verification::NotYetValid);
        assert_eq!(
            v(CertificateError::NotValidForName),
            Verification::NameMismatch
        );
        assert_eq!(
            v(CertificateError::UnknownIssuer),
            Verification::Untrusted("issued by an unknown certificate authority".into())
        );
        assert!(matches!(
            v(CertificateError::Revoked),
            Verification::Untrusted(s) if s == "Revoked"
        ));
    }

    #[test]
    fn garbage_is_a_parse_error() {
        let der = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(matches!(
            read_leaf(&der, Verification::Valid),
            Err(ProbeError::Parse(_))
        ));
    }

    #[test]
    fn webpki_roots_load() {
        assert!(webpki_roots().len() > 50);
    }
}
