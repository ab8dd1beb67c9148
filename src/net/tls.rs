//! rustls configurations from PEM material, and certificate subject helpers.
//!
//! Every configuration uses the *ring* provider explicitly (no process-wide default provider
//! is needed) and the safe default protocol versions (TLS 1.2 and TLS 1.3). Session
//! resumption is disabled on both sides: every connection is a full handshake, so every
//! exchange carries its own certificate evidence.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::sync::Arc;

/// A certificate chain and its private key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Handshake fails without a client certificate issued by the CA.
    Required,
    /// A client certificate is verified if sent, but may be absent.
    Optional,
    /// A client certificate is required, but any certificate is accepted without
    /// checking its issuer or validity (the handshake signature is still verified). For a
    /// reference server simulating a defective peer.
    AcceptAny,
    /// No client certificate is requested at all.
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what}: {message}")]
    Material { what: String, message: String },
}

fn material(what: &str, message: impl Into<String>) -> TlsError {
    TlsError::Material {
        what: what.to_string(),
        message: message.into(),
    }
}

/// The crypto provider of every configuration built here (*ring*).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate of a PEM text, in order. Fails when there is none or one is malformed.
pub fn certs_from_pem(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| material(what, format!("malformed PEM: {e}")))?;
    if certs.is_empty() {
        return Err(material(
            what,
            "no certificate found in PEM (expected a -----BEGIN CERTIFICATE----- block)",
        ));
    }
    Ok(certs)
}

/// The private key of a PEM text (PKCS#8, SEC1 or PKCS#1).
pub fn key_from_pem(pem: &str, what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => material(
            what,
            "no private key found in PEM (expected a -----BEGIN PRIVATE KEY----- block)",
        ),
        e => material(what, format!("unparseable private key: {e}")),
    })
}

fn roots_from_pem(ca_pem: &str) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs_from_pem(ca_pem, "CA certificate")?
        .into_iter()
        .enumerate()
    {
        roots.add(cert).map_err(|e| {
            material(
                "CA certificate",
                format!("certificate #{} is not a usable trust anchor: {e}", i + 1),
            )
        })?;
    }
    Ok(Arc::new(roots))
}

fn identity_material(
    identity: &Identity,
    role: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = certs_from_pem(&identity.cert_pem, &format!("{role} certificate"))?;
    let key = key_from_pem(&identity.key_pem, &format!("{role} private key"))?;
    Ok((chain, key))
}

/// Server configuration: presents `identity`, verifies client certificates against `ca_pem`.
///
/// `ca_pem` is only read for [`ClientAuth::Required`] and [`ClientAuth::Optional`].
pub fn server_config(
    ca_pem: &str,
    identity: &Identity,
    auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let verifier: Arc<dyn ClientCertVerifier> = match auth {
        ClientAuth::Required | ClientAuth::Optional => {
            let roots = roots_from_pem(ca_pem)?;
            let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots,
                provider.clone(),
            );
            let builder = if auth == ClientAuth::Optional {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| material("client certificate verifier", e.to_string()))?
        }
        ClientAuth::AcceptAny => Arc::new(AcceptAnyClientCert {
            algorithms: provider.signature_verification_algorithms,
        }),
        ClientAuth::None => Arc::new(rustls::server::NoClientAuth),
    };
    let (chain, key) = identity_material(identity, "server")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| material("TLS protocol versions", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| material("server identity", e.to_string()))?;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(config))
}

/// Client configuration: trusts only `ca_pem`, presents `identity` if given.
pub fn client_config(
    ca_pem: &str,
    identity: Option<&Identity>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = roots_from_pem(ca_pem)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| material("TLS protocol versions", e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(identity) => {
            let (chain, key) = identity_material(identity, "client")?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| material("client identity", e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Client configuration that accepts ANY server certificate (no chain, name or validity
/// check; the handshake signature is still verified). Presents `identity` if given.
/// For negative scenarios simulating a defective client.
pub fn client_config_insecure(
    identity: Option<&Identity>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(AcceptAnyServerCert {
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| material("TLS protocol versions", e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(identity) => {
            let (chain, key) = identity_material(identity, "client")?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| material("client identity", e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Requires a client certificate and accepts any chain, whatever its issuer.
#[derive(Debug)]
struct AcceptAnyClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AcceptAnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Accepts any server certificate.
#[derive(Debug)]
struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyServerCert {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `TLSv1.3`, `TLSv1.2`, … for a negotiated protocol version.
pub fn version_name(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
        rustls::ProtocolVersion::TLSv1_1 => "TLSv1.1".to_string(),
        rustls::ProtocolVersion::TLSv1_0 => "TLSv1.0".to_string(),
        other => format!("{other:?}"),
    }
}

fn short_name(oid: &x509_parser::oid_registry::Oid<'_>) -> String {
    use x509_parser::oid_registry as reg;
    let known = [
        (reg::OID_X509_COMMON_NAME, "CN"),
        (reg::OID_X509_ORGANIZATION_NAME, "O"),
        (reg::OID_X509_ORGANIZATIONAL_UNIT, "OU"),
        (reg::OID_X509_COUNTRY_NAME, "C"),
        (reg::OID_X509_LOCALITY_NAME, "L"),
        (reg::OID_X509_STATE_OR_PROVINCE_NAME, "ST"),
    ];
    known
        .iter()
        .find(|(o, _)| o == oid)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| oid.to_id_string())
}

fn attribute_value(attr: &x509_parser::x509::AttributeTypeAndValue<'_>) -> String {
    match attr.as_str() {
        Ok(s) => s.to_string(),
        Err(_) => {
            // BMPString (UTF-16BE) is not handled by `as_str`; anything else is shown as hex.
            let raw = attr.attr_value().data;
            if attr.attr_value().tag() == x509_parser::asn1_rs::Tag::BmpString && raw.len() % 2 == 0
            {
                let units: Vec<u16> = raw
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                if let Ok(s) = String::from_utf16(&units) {
                    return s;
                }
            }
            format!("#{}", hex::encode(raw))
        }
    }
}

fn with_subject<T>(
    der: &[u8],
    f: impl FnOnce(&x509_parser::x509::X509Name<'_>) -> Option<T>,
) -> Option<T> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    f(cert.subject())
}

/// `CN=…, O=…` subject of the first certificate of a DER chain (RDNs in certificate order).
pub fn subject_of(der: &[u8]) -> Option<String> {
    with_subject(der, |name| {
        let parts: Vec<String> = name
            .iter()
            .flat_map(|rdn| rdn.iter())
            .map(|attr| format!("{}={}", short_name(attr.attr_type()), attribute_value(attr)))
            .collect();
        Some(parts.join(", "))
    })
}

/// The CN alone.
pub fn common_name_of(der: &[u8]) -> Option<String> {
    with_subject(der, |name| {
        name.iter_common_name().next().map(attribute_value)
    })
}

/// Subject of the first certificate of a PEM text.
pub fn subject_of_pem(pem: &str) -> Option<String> {
    let cert = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()?;
    subject_of(&cert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_build_from_generated_pki() {
        let pki = crate::pki::generate("750712184").unwrap();
        for auth in [
            ClientAuth::Required,
            ClientAuth::Optional,
            ClientAuth::AcceptAny,
            ClientAuth::None,
        ] {
            server_config(&pki.ca_cert_pem, &pki.amc_server, auth).unwrap();
        }
        client_config(&pki.ca_cert_pem, Some(&pki.client)).unwrap();
        client_config(&pki.ca_cert_pem, None).unwrap();
        client_config_insecure(Some(&pki.untrusted_client)).unwrap();
        // Several CA certificates in one PEM.
        let both = format!("{}{}", pki.ca_cert_pem, pki.untrusted_ca_cert_pem);
        client_config(&both, None).unwrap();
    }

    #[test]
    fn material_errors_name_what_is_wrong() {
        let pki = crate::pki::generate("750712184").unwrap();
        let err = client_config("not a pem", None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("CA certificate: no certificate"),
            "{err}"
        );
        let bad_key = Identity {
            cert_pem: pki.client.cert_pem.clone(),
            key_pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
        };
        let err = client_config(&pki.ca_cert_pem, Some(&bad_key)).unwrap_err();
        assert!(err.to_string().starts_with("client "), "{err}");
        let no_key = Identity {
            cert_pem: pki.client.cert_pem.clone(),
            key_pem: String::new(),
        };
        let err = server_config(&pki.ca_cert_pem, &no_key, ClientAuth::Required).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("server private key: no private key"),
            "{err}"
        );
        let no_cert = Identity {
            cert_pem: String::new(),
            key_pem: pki.amc_server.key_pem.clone(),
        };
        let err = server_config(&pki.ca_cert_pem, &no_cert, ClientAuth::None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("server certificate: no certificate"),
            "{err}"
        );
        // Mismatched key and certificate.
        let mismatched = Identity {
            cert_pem: pki.client.cert_pem.clone(),
            key_pem: pki.amc_server.key_pem.clone(),
        };
        assert!(client_config(&pki.ca_cert_pem, Some(&mismatched)).is_err());
    }

    #[test]
    fn subjects() {
        let pki = crate::pki::generate("750712184").unwrap();
        let der = certs_from_pem(&pki.client.cert_pem, "x").unwrap().remove(0);
        assert_eq!(
            subject_of(&der).as_deref(),
            Some("CN=750712184, O=CH Modèle")
        );
        assert_eq!(common_name_of(&der).as_deref(), Some("750712184"));
        assert_eq!(
            subject_of_pem(&pki.ca_cert_pem).as_deref(),
            Some("CN=roclab test CA, O=roclab")
        );
        assert_eq!(subject_of(b"garbage"), None);
        assert_eq!(common_name_of(b"garbage"), None);
        assert_eq!(
            version_name(rustls::ProtocolVersion::TLSv1_3),
            "TLSv1.3".to_string()
        );
    }
}
