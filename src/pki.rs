//! Test PKI (rcgen): lab CA, establishment client certificate, server certificates, and the
//! negative material (expired, untrusted CA, wrong name).
//!
//! Every key is ECDSA P-256 (fast to generate). Valid certificates run from one day ago to
//! two years ahead; expired ones from 2024-01-01 to 2025-01-01.

use crate::net::tls::Identity;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// Every certificate of the lab, PEM.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The lab's test CA (certificate only is shared; key kept to sign).
    pub ca_cert_pem: String,
    /// The lab CA's private key (PKCS#8 PEM), to sign more certificates later.
    pub ca_key_pem: String,
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

/// File names written by [`write()`] (relative to the directory).
pub mod files {
    pub const CA: &str = "ca.pem";
    pub const CA_KEY: &str = "ca.key";
    pub const CLIENT_CERT: &str = "client.pem";
    pub const CLIENT_KEY: &str = "client.key";
    pub const AMC_SERVER_CERT: &str = "amc-server.pem";
    pub const AMC_SERVER_KEY: &str = "amc-server.key";
    pub const ANNUAIRE_SERVER_CERT: &str = "annuaire-server.pem";
    pub const ANNUAIRE_SERVER_KEY: &str = "annuaire-server.key";
    pub const CLIENT_EXPIRED_CERT: &str = "client-expired.pem";
    pub const CLIENT_EXPIRED_KEY: &str = "client-expired.key";
    pub const UNTRUSTED_CA: &str = "untrusted-ca.pem";
    pub const CLIENT_UNTRUSTED_CERT: &str = "client-untrusted.pem";
    pub const CLIENT_UNTRUSTED_KEY: &str = "client-untrusted.key";
    pub const SERVER_UNTRUSTED_CERT: &str = "server-untrusted.pem";
    pub const SERVER_UNTRUSTED_KEY: &str = "server-untrusted.key";
    pub const SERVER_WRONG_NAME_CERT: &str = "server-wrong-name.pem";
    pub const SERVER_WRONG_NAME_KEY: &str = "server-wrong-name.key";
    pub const SERVER_EXPIRED_CERT: &str = "server-expired.pem";
    pub const SERVER_EXPIRED_KEY: &str = "server-expired.key";
    pub const README: &str = "README.txt";
}

/// Organisation of the establishment client certificate.
pub const CLIENT_ORGANIZATION: &str = "CH Modèle";
/// Subject CN of the lab CA.
pub const CA_COMMON_NAME: &str = "roclab test CA";
/// Subject CN of the untrusted CA.
pub const UNTRUSTED_CA_COMMON_NAME: &str = "roclab untrusted CA";
/// The only SAN of the wrong-name server certificate.
pub const WRONG_NAME: &str = "wrong.example.invalid";

#[derive(Clone, Copy)]
enum Validity {
    Current,
    Expired,
}

#[derive(Clone, Copy)]
enum Usage {
    Client,
    Server,
}

fn err(what: &str) -> impl Fn(rcgen::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn new_key(what: &str) -> Result<KeyPair, String> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err(what))
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    match validity {
        Validity::Current => {
            let now = OffsetDateTime::now_utc();
            params.not_before = now - Duration::days(1);
            params.not_after = now + Duration::days(2 * 365);
        }
        Validity::Expired => {
            params.not_before = rcgen::date_time_ymd(2024, 1, 1);
            params.not_after = rcgen::date_time_ymd(2025, 1, 1);
        }
    }
}

fn dn(cn: &str, o: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = o {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

/// A self-signed CA: its certificate PEM and an issuer to sign leaves with.
fn make_ca(cn: &str, o: Option<&str>) -> Result<(String, Issuer<'static, KeyPair>), String> {
    let key = new_key(cn)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn, o);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, Validity::Current);
    let cert = params.self_signed(&key).map_err(err(cn))?;
    Ok((cert.pem(), Issuer::new(params, key)))
}

fn make_leaf(
    issuer: &Issuer<'_, KeyPair>,
    subject: DistinguishedName,
    sans: &[&str],
    usage: Usage,
    validity: Validity,
    what: &str,
) -> Result<Identity, String> {
    let key = new_key(what)?;
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<String>>())
            .map_err(err(what))?;
    params.distinguished_name = subject;
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match usage {
        Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
    }];
    set_validity(&mut params, validity);
    let cert = params.signed_by(&key, issuer).map_err(err(what))?;
    Ok(Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

const LOCAL_SANS: &[&str] = &["localhost", "127.0.0.1"];

/// Generate the whole lab PKI for the establishment `finess` (client certificate CN).
pub fn generate(finess: &str) -> Result<Pki, String> {
    if finess.trim().is_empty() {
        return Err("FINESS number (client certificate CN) is empty".to_string());
    }
    let (ca_cert_pem, ca) = make_ca(CA_COMMON_NAME, Some("roclab"))?;
    let ca_key_pem = ca.key().serialize_pem();
    let client_dn = || dn(finess, Some(CLIENT_ORGANIZATION));

    let client = make_leaf(
        &ca,
        client_dn(),
        &[],
        Usage::Client,
        Validity::Current,
        "client certificate",
    )?;
    let amc_server = make_leaf(
        &ca,
        dn("amc.localhost", None),
        LOCAL_SANS,
        Usage::Server,
        Validity::Current,
        "AMC server certificate",
    )?;
    let annuaire_server = make_leaf(
        &ca,
        dn("annuaire.localhost", None),
        LOCAL_SANS,
        Usage::Server,
        Validity::Current,
        "annuaire server certificate",
    )?;
    let expired_client = make_leaf(
        &ca,
        client_dn(),
        &[],
        Usage::Client,
        Validity::Expired,
        "expired client certificate",
    )?;
    let wrong_name_server = make_leaf(
        &ca,
        dn(WRONG_NAME, None),
        &[WRONG_NAME],
        Usage::Server,
        Validity::Current,
        "wrong-name server certificate",
    )?;
    let expired_server = make_leaf(
        &ca,
        dn("localhost", None),
        LOCAL_SANS,
        Usage::Server,
        Validity::Expired,
        "expired server certificate",
    )?;

    let (untrusted_ca_cert_pem, untrusted_ca) = make_ca(UNTRUSTED_CA_COMMON_NAME, None)?;
    let untrusted_client = make_leaf(
        &untrusted_ca,
        dn(finess, None),
        &[],
        Usage::Client,
        Validity::Current,
        "untrusted client certificate",
    )?;
    let untrusted_server = make_leaf(
        &untrusted_ca,
        dn("localhost", None),
        LOCAL_SANS,
        Usage::Server,
        Validity::Current,
        "untrusted server certificate",
    )?;

    Ok(Pki {
        ca_cert_pem,
        ca_key_pem,
        client,
        amc_server,
        annuaire_server,
        expired_client,
        untrusted_ca_cert_pem,
        untrusted_client,
        wrong_name_server,
        expired_server,
        untrusted_server,
    })
}

/// Every file of the PKI: (file name, content, is a private key, purpose).
fn entries(pki: &Pki) -> Vec<(&'static str, &str, bool, &'static str)> {
    use files::*;
    vec![
        (
            CA,
            pki.ca_cert_pem.as_str(),
            false,
            "lab test CA certificate: trust anchor for every peer of the lab",
        ),
        (
            CA_KEY,
            pki.ca_key_pem.as_str(),
            true,
            "lab test CA private key (to sign more test certificates)",
        ),
        (
            CLIENT_CERT,
            pki.client.cert_pem.as_str(),
            false,
            "establishment client certificate (CN = FINESS, O = CH Modèle), issued by the lab CA",
        ),
        (
            CLIENT_KEY,
            pki.client.key_pem.as_str(),
            true,
            "private key of client.pem",
        ),
        (
            AMC_SERVER_CERT,
            pki.amc_server.cert_pem.as_str(),
            false,
            "AMC endpoints server certificate (SAN localhost, 127.0.0.1), issued by the lab CA",
        ),
        (
            AMC_SERVER_KEY,
            pki.amc_server.key_pem.as_str(),
            true,
            "private key of amc-server.pem",
        ),
        (
            ANNUAIRE_SERVER_CERT,
            pki.annuaire_server.cert_pem.as_str(),
            false,
            "annuaire server certificate (SAN localhost, 127.0.0.1), issued by the lab CA",
        ),
        (
            ANNUAIRE_SERVER_KEY,
            pki.annuaire_server.key_pem.as_str(),
            true,
            "private key of annuaire-server.pem",
        ),
        (
            CLIENT_EXPIRED_CERT,
            pki.expired_client.cert_pem.as_str(),
            false,
            "NEGATIVE: client certificate with the establishment subject, expired (2024-01-01 to 2025-01-01)",
        ),
        (
            CLIENT_EXPIRED_KEY,
            pki.expired_client.key_pem.as_str(),
            true,
            "private key of client-expired.pem",
        ),
        (
            UNTRUSTED_CA,
            pki.untrusted_ca_cert_pem.as_str(),
            false,
            "NEGATIVE: a second CA that no peer of the lab trusts",
        ),
        (
            CLIENT_UNTRUSTED_CERT,
            pki.untrusted_client.cert_pem.as_str(),
            false,
            "NEGATIVE: client certificate (CN = FINESS) issued by the untrusted CA",
        ),
        (
            CLIENT_UNTRUSTED_KEY,
            pki.untrusted_client.key_pem.as_str(),
            true,
            "private key of client-untrusted.pem",
        ),
        (
            SERVER_UNTRUSTED_CERT,
            pki.untrusted_server.cert_pem.as_str(),
            false,
            "NEGATIVE: server certificate (SAN localhost, 127.0.0.1) issued by the untrusted CA",
        ),
        (
            SERVER_UNTRUSTED_KEY,
            pki.untrusted_server.key_pem.as_str(),
            true,
            "private key of server-untrusted.pem",
        ),
        (
            SERVER_WRONG_NAME_CERT,
            pki.wrong_name_server.cert_pem.as_str(),
            false,
            "NEGATIVE: server certificate from the lab CA whose only SAN is wrong.example.invalid",
        ),
        (
            SERVER_WRONG_NAME_KEY,
            pki.wrong_name_server.key_pem.as_str(),
            true,
            "private key of server-wrong-name.pem",
        ),
        (
            SERVER_EXPIRED_CERT,
            pki.expired_server.cert_pem.as_str(),
            false,
            "NEGATIVE: server certificate from the lab CA (SAN localhost, 127.0.0.1), expired (2024-01-01 to 2025-01-01)",
        ),
        (
            SERVER_EXPIRED_KEY,
            pki.expired_server.key_pem.as_str(),
            true,
            "private key of server-expired.pem",
        ),
    ]
}

fn readme(pki: &Pki) -> String {
    let mut text = String::from(
        "roclab test PKI: FOR TESTING ONLY, never use these certificates or keys in production.\n\
         Every key is ECDSA P-256; every .key file is a PKCS#8 PEM private key (mode 0600).\n\
         Certificate files hold the leaf certificate only: peers know the lab CA (ca.pem).\n\n",
    );
    let entries = entries(pki);
    let width = entries.iter().map(|e| e.0.len()).max().unwrap_or(0);
    for (name, _, _, purpose) in entries {
        text.push_str(&format!("{name:<width$}  {purpose}\n"));
    }
    text.push_str(&format!("{:<width$}  this file\n", files::README));
    text
}

/// Create `path` (replacing any existing file) and write `content`; private keys are created
/// with mode 0600 from the start.
fn write_file(path: &Path, content: &str, private: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        // An existing file would keep its mode: remove it so the key is created afresh.
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        options.create_new(true).mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
    })?;
    file.write_all(content.as_bytes())?;
    file.sync_all()
}

/// What to do about a missing file of the lab PKI in `dir`: the command that writes one there.
pub fn init_hint(dir: &Path) -> String {
    let d = dir.display().to_string();
    let d = if d.is_empty() { ".".to_string() } else { d };
    let slash = if d.ends_with('/') { "" } else { "/" };
    format!("create the lab PKI with: roclab pki init {d}{slash}")
}

/// The message for a PKI file `path` that cannot be read: the path and the error, and for a
/// missing file the command that creates the PKI in its folder.
pub fn read_error(path: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        let dir = path.parent().unwrap_or(Path::new("."));
        format!("{}: {e} — {}", path.display(), init_hint(dir))
    } else {
        format!("{}: {e}", path.display())
    }
}

/// Read back a PKI written by [`write()`]. Errors name the file that cannot be read (and, when
/// it is missing, the command that creates it).
pub fn load(dir: &Path) -> Result<Pki, String> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| read_error(&p, &e))
    };
    let id = |cert: &str, key: &str| -> Result<Identity, String> {
        Ok(Identity {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        })
    };
    Ok(Pki {
        ca_cert_pem: read(files::CA)?,
        ca_key_pem: read(files::CA_KEY)?,
        client: id(files::CLIENT_CERT, files::CLIENT_KEY)?,
        amc_server: id(files::AMC_SERVER_CERT, files::AMC_SERVER_KEY)?,
        annuaire_server: id(files::ANNUAIRE_SERVER_CERT, files::ANNUAIRE_SERVER_KEY)?,
        expired_client: id(files::CLIENT_EXPIRED_CERT, files::CLIENT_EXPIRED_KEY)?,
        untrusted_ca_cert_pem: read(files::UNTRUSTED_CA)?,
        untrusted_client: id(files::CLIENT_UNTRUSTED_CERT, files::CLIENT_UNTRUSTED_KEY)?,
        wrong_name_server: id(files::SERVER_WRONG_NAME_CERT, files::SERVER_WRONG_NAME_KEY)?,
        expired_server: id(files::SERVER_EXPIRED_CERT, files::SERVER_EXPIRED_KEY)?,
        untrusted_server: id(files::SERVER_UNTRUSTED_CERT, files::SERVER_UNTRUSTED_KEY)?,
    })
}

/// Write every file of the PKI into `dir` (created if needed); keys with mode 0600.
/// Returns the written paths (certificates, keys, then `README.txt`).
pub fn write(pki: &Pki, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
    })?;
    let mut written = Vec::new();
    for (name, content, private, _) in entries(pki) {
        let path = dir.join(name);
        write_file(&path, content, private)?;
        written.push(path);
    }
    let path = dir.join(files::README);
    write_file(&path, &readme(pki), false)?;
    written.push(path);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::tls::{certs_from_pem, common_name_of, subject_of};

    fn parse(pem: &str) -> Vec<u8> {
        certs_from_pem(pem, "test").unwrap().remove(0).to_vec()
    }

    #[test]
    fn generates_expected_subjects_and_validity() {
        let pki = generate("750712184").unwrap();
        let client = parse(&pki.client.cert_pem);
        assert_eq!(
            subject_of(&client).as_deref(),
            Some("CN=750712184, O=CH Modèle")
        );
        assert_eq!(
            subject_of(&parse(&pki.expired_client.cert_pem)).as_deref(),
            Some("CN=750712184, O=CH Modèle")
        );
        assert_eq!(
            common_name_of(&parse(&pki.untrusted_client.cert_pem)).as_deref(),
            Some("750712184")
        );
        assert_eq!(
            subject_of(&parse(&pki.ca_cert_pem)).as_deref(),
            Some("CN=roclab test CA, O=roclab")
        );
        assert_eq!(
            subject_of(&parse(&pki.untrusted_ca_cert_pem)).as_deref(),
            Some("CN=roclab untrusted CA")
        );
        // Leaf only.
        assert_eq!(certs_from_pem(&pki.client.cert_pem, "t").unwrap().len(), 1);

        let expired_der = parse(&pki.expired_server.cert_pem);
        let (_, expired) = x509_parser::parse_x509_certificate(&expired_der).unwrap();
        assert!(!expired.validity().is_valid());
        let der = parse(&pki.amc_server.cert_pem);
        let (_, amc) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(amc.validity().is_valid());
        let san = amc.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = san
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let ca_der = parse(&pki.ca_cert_pem);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert!(ca.is_ca());
        assert!(!amc.is_ca());
        // The CA key can sign more certificates.
        let key = KeyPair::from_pem(&pki.ca_key_pem).unwrap();
        Issuer::from_ca_cert_pem(&pki.ca_cert_pem, key).unwrap();
    }

    #[test]
    fn rejects_empty_finess() {
        assert!(generate("  ").is_err());
    }

    #[test]
    fn write_creates_files_and_private_keys_0600() {
        use std::os::unix::fs::PermissionsExt;
        let pki = generate("750712184").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        // A pre-existing key with a wide mode is replaced by a 0600 one.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(files::CLIENT_KEY), "old").unwrap();
        std::fs::set_permissions(
            dir.join(files::CLIENT_KEY),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();

        let written = write(&pki, &dir).unwrap();
        assert_eq!(written.len(), 20);
        for path in &written {
            assert!(path.exists(), "{}", path.display());
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            if path.extension().is_some_and(|e| e == "key") {
                assert_eq!(mode, 0o600, "{}", path.display());
            }
        }
        assert_eq!(
            std::fs::read_to_string(dir.join(files::CLIENT_KEY)).unwrap(),
            pki.client.key_pem
        );
        let readme = std::fs::read_to_string(dir.join(files::README)).unwrap();
        for name in [files::CA, files::SERVER_EXPIRED_KEY, files::UNTRUSTED_CA] {
            assert!(readme.contains(name), "{readme}");
        }
        // Writing again works (replaces the files).
        write(&pki, &dir).unwrap();
    }
}
