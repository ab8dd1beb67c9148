//! rustls configurations from PEM material. (STUB: to be implemented.)

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
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what}: {message}")]
    Material { what: String, message: String },
}

/// Server configuration: presents `identity`, verifies client certificates against `ca_pem`.
pub fn server_config(
    _ca_pem: &str,
    _identity: &Identity,
    _auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    todo!()
}

/// Client configuration: trusts only `ca_pem`, presents `identity` if given.
pub fn client_config(
    _ca_pem: &str,
    _identity: Option<&Identity>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    todo!()
}

/// `CN=…, O=…` subject of the first certificate of a DER chain.
pub fn subject_of(_der: &[u8]) -> Option<String> {
    todo!()
}

/// The CN alone.
pub fn common_name_of(_der: &[u8]) -> Option<String> {
    todo!()
}
