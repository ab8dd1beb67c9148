//! Test PKI (rcgen): lab CA, establishment client certificate, server certificates, and the
//! negative material (expired, untrusted CA, wrong name). (STUB: to be implemented.)

use crate::net::tls::Identity;
use std::path::Path;

/// Every certificate of the lab, PEM.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The lab's test CA (certificate only is shared; key kept to sign).
    pub ca_cert_pem: String,
    /// Establishment client: `CN=750712184, O=CH Modèle`.
    pub client: Identity,
    /// AMC endpoints server certificate (SAN localhost, 127.0.0.1).
    pub amc_server: Identity,
    /// Annuaire server certificate (SAN localhost, 127.0.0.1).
    pub annuaire_server: Identity,
    /// Client certificate, same subject, validity over.
    pub expired_client: Identity,
    /// Second, untrusted CA certificate.
    pub untrusted_ca_cert_pem: String,
    /// Client certificate `CN=750712184` from the untrusted CA.
    pub untrusted_client: Identity,
    /// Server certificate from the lab CA whose SAN is `wrong.example.invalid` only.
    pub wrong_name_server: Identity,
    /// Server certificate from the lab CA, expired.
    pub expired_server: Identity,
    /// Server certificate from the untrusted CA (SAN localhost, 127.0.0.1).
    pub untrusted_server: Identity,
}

/// File names written by [`write`] (relative to the directory).
pub mod files {
    pub const CA: &str = "ca.pem";
    pub const CLIENT_CERT: &str = "client.pem";
    pub const CLIENT_KEY: &str = "client.key";
}

pub fn generate(_finess: &str) -> Result<Pki, String> {
    todo!()
}

/// Write every file of the PKI into `dir` (created if needed); keys with mode 0600.
pub fn write(_pki: &Pki, _dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    todo!()
}
