//! Checks of the TLS certificate and key before nginx is given them: the
//! key matches the certificate, the certificate covers the server name and
//! is valid now, the chain is complete and the key is private.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP;
use x509_parser::pem::Pem;

use mxharden_spec::AppSpec;
use mxharden_spec::values::AbsPath;

use crate::error::PlanError;
use crate::host::Host;

/// A certificate that expires within this many days draws a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Largest certificate or key file read, in bytes.
const PEM_LIMIT: u64 = 1024 * 1024;

/// The system's trusted roots on Debian, where a chain may end.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Findings of the certificate check that do not stop the run.
#[derive(Debug, Default)]
pub struct CertificateFindings {
    /// Warnings for the report.
    pub warnings: Vec<String>,
    /// The OCSP responder that the certificate names, if any.
    pub ocsp_responder: Option<String>,
}

fn invalid(host: &Host, path: &AbsPath, message: impl Into<String>) -> PlanError {
    PlanError::InvalidCertificate {
        path: host.host_path(path.as_str()),
        message: message.into(),
    }
}

/// Resolves symbolic links in the last component of `path` (as certbot's
/// `live/` folder uses them) without leaving the host root, and returns the
/// path of the file itself.
pub(crate) fn resolve_links(host: &Host, path: &AbsPath) -> Result<String, PlanError> {
    let mut current = path.as_str().to_owned();
    for _ in 0..8 {
        match host.root.meta(&current)? {
            None => return Err(invalid(host, path, "the file does not exist")),
            Some(meta) if meta.kind == mxharden_fs::EntryKind::Symlink => {
                let target = std::fs::read_link(host.host_path(&current)).map_err(|source| PlanError::Io {
                    path: host.host_path(&current),
                    source,
                })?;
                let target = target.to_string_lossy().into_owned();
                current = if target.starts_with('/') {
                    normalize(&target)
                } else {
                    let parent = current.rsplit_once('/').map_or("", |(parent, _)| parent);
                    normalize(&format!("{parent}/{target}"))
                };
            }
            Some(_) => return Ok(current),
        }
    }
    Err(invalid(host, path, "too many levels of symbolic links"))
}

/// Reads the file at `path` after following its links as
/// [`resolve_links`] does; `None` when nothing exists at `path`.
pub(crate) fn read_linked_file(host: &Host, path: &AbsPath, limit: u64) -> Result<Option<Vec<u8>>, PlanError> {
    if host.root.meta(path.as_str())?.is_none() {
        return Ok(None);
    }
    let file = resolve_links(host, path)?;
    Ok(host.root.read_file(&file, limit)?)
}

fn read_pem_file(host: &Host, path: &AbsPath) -> Result<Vec<u8>, PlanError> {
    let file = resolve_links(host, path)?;
    host.root.read_file(&file, PEM_LIMIT)?.ok_or_else(|| invalid(host, path, "the file does not exist"))
}

fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Checks the certificate and key of `app`; `now` is the current time.
pub fn check_certificate(host: &Host, app: &AppSpec, now: jiff::Timestamp) -> Result<CertificateFindings, PlanError> {
    let mut findings = CertificateFindings::default();
    let cert_path = &app.tls_certificate;
    let key_path = &app.tls_key;

    let cert_bytes = read_pem_file(host, cert_path)?;
    let blocks: Vec<Pem> = Pem::iter_from_buffer(&cert_bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(host, cert_path, format!("not a PEM file: {e}")))?;
    let cert_blocks: Vec<&Pem> = blocks.iter().filter(|block| block.label == "CERTIFICATE").collect();
    if cert_blocks.is_empty() {
        return Err(invalid(host, cert_path, "no CERTIFICATE block found; expected the server certificate, then its intermediates, in PEM"));
    }
    let mut chain = Vec::new();
    for (index, block) in cert_blocks.iter().enumerate() {
        let certificate = block
            .parse_x509()
            .map_err(|e| invalid(host, cert_path, format!("certificate {} of the file cannot be parsed: {e}", index + 1)))?;
        chain.push(certificate);
    }
    let leaf = &chain[0];

    check_validity(host, cert_path, leaf, now, &mut findings)?;
    check_names(host, cert_path, leaf, app.server_name.as_str())?;
    check_chain(host, cert_path, &chain)?;
    check_key(host, key_path, cert_path, leaf)?;
    findings.ocsp_responder = ocsp_responder(leaf);
    Ok(findings)
}

fn check_validity(host: &Host, path: &AbsPath, leaf: &X509Certificate<'_>, now: jiff::Timestamp, findings: &mut CertificateFindings) -> Result<(), PlanError> {
    let now = now.as_second();
    let not_before = leaf.validity().not_before.timestamp();
    let not_after = leaf.validity().not_after.timestamp();
    if now < not_before {
        return Err(invalid(host, path, format!("the certificate is not valid before {}; check the host's clock or the certificate", leaf.validity().not_before)));
    }
    if now > not_after {
        return Err(invalid(host, path, format!("the certificate expired on {}; renew it", leaf.validity().not_after)));
    }
    let days_left = (not_after - now) / 86_400;
    if days_left < EXPIRY_WARNING_DAYS {
        findings.warnings.push(format!(
            "{}: the certificate expires in {days_left} days, on {}; renew it",
            host.host_path(path.as_str()).display(),
            leaf.validity().not_after
        ));
    }
    Ok(())
}

/// Tells whether the DNS name pattern of a certificate covers `name`. A
/// wildcard stands for exactly one whole leftmost label (RFC 6125, 6.4.3).
fn dns_pattern_covers(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => name.split_once('.').is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => pattern == name,
    }
}

fn check_names(host: &Host, path: &AbsPath, leaf: &X509Certificate<'_>, server_name: &str) -> Result<(), PlanError> {
    let names: Vec<String> = match leaf.subject_alternative_name() {
        Ok(Some(extension)) => extension
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(invalid(host, path, format!("the subjectAltName extension cannot be parsed: {e}"))),
    };
    if names.is_empty() {
        return Err(invalid(host, path, format!("the certificate has no DNS subjectAltName; browsers ignore the common name, so it does not cover {server_name}")));
    }
    if !names.iter().any(|pattern| dns_pattern_covers(pattern, server_name)) {
        return Err(invalid(host, path, format!("the certificate covers {} but not server_name {server_name}", names.join(", "))));
    }
    Ok(())
}

/// Checks that each certificate is issued by the next one and that the last
/// is a root: self-signed, or issued by a root in the system bundle.
fn check_chain(host: &Host, path: &AbsPath, chain: &[X509Certificate<'_>]) -> Result<(), PlanError> {
    for (index, pair) in chain.windows(2).enumerate() {
        if pair[0].issuer().as_raw() != pair[1].subject().as_raw() {
            return Err(invalid(
                host,
                path,
                format!(
                    "certificate {} is issued by {}, but the next certificate is {}; put the chain in order: server certificate first, then each issuer",
                    index + 1,
                    pair[0].issuer(),
                    pair[1].subject()
                ),
            ));
        }
    }
    let last = chain.last().expect("the chain has a certificate");
    if last.issuer().as_raw() == last.subject().as_raw() {
        return Ok(());
    }
    let bundle = host.root.read_file(SYSTEM_CA_BUNDLE, 16 * PEM_LIMIT)?.unwrap_or_default();
    let trusted = Pem::iter_from_buffer(&bundle)
        .filter_map(Result::ok)
        .filter_map(|block| block.parse_x509().ok().map(|root| root.subject().as_raw() == last.issuer().as_raw()))
        .any(|found| found);
    if trusted {
        return Ok(());
    }
    Err(invalid(
        host,
        path,
        format!(
            "the chain is incomplete: the last certificate is issued by {}, which is neither in the file nor a trusted root in {SYSTEM_CA_BUNDLE}; append the intermediate certificates",
            last.issuer()
        ),
    ))
}

fn check_key(host: &Host, key_path: &AbsPath, cert_path: &AbsPath, leaf: &X509Certificate<'_>) -> Result<(), PlanError> {
    let file = resolve_links(host, key_path)?;
    let meta = host.root.meta(&file)?.ok_or_else(|| invalid(host, key_path, "the file does not exist"))?;
    if meta.mode & 0o007 != 0 {
        return Err(invalid(
            host,
            key_path,
            format!("the private key has mode {:04o} and other users may read it; run chmod 0600 (or 0640 with group ssl-cert)", meta.mode),
        ));
    }
    let bytes = read_pem_file(host, key_path)?;
    let block = Pem::iter_from_buffer(&bytes)
        .filter_map(Result::ok)
        .find(|block| block.label.ends_with("PRIVATE KEY"))
        .ok_or_else(|| invalid(host, key_path, "no PRIVATE KEY block found; expected a PEM private key"))?;
    let public = public_key_of(&block).map_err(|message| invalid(host, key_path, message))?;
    if public.as_slice() != leaf.public_key().raw {
        return Err(invalid(
            host,
            key_path,
            format!("the private key does not belong to the certificate in {}; give the key that the certificate was issued for", host.host_path(cert_path.as_str()).display()),
        ));
    }
    Ok(())
}

/// Derives the DER SubjectPublicKeyInfo of a PEM private key.
fn public_key_of(block: &Pem) -> Result<Vec<u8>, String> {
    use pkcs8::{DecodePrivateKey, EncodePublicKey};
    use rsa::pkcs1::DecodeRsaPrivateKey;

    let der = block.contents.as_slice();
    let encoded = match block.label.as_str() {
        "PRIVATE KEY" => {
            if let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_der(der) {
                key.to_public_key().to_public_key_der()
            } else if let Ok(key) = p256::SecretKey::from_pkcs8_der(der) {
                key.public_key().to_public_key_der()
            } else if let Ok(key) = p384::SecretKey::from_pkcs8_der(der) {
                key.public_key().to_public_key_der()
            } else {
                return Err("the key type is not supported; use an RSA, P-256 or P-384 key".to_owned());
            }
        }
        "RSA PRIVATE KEY" => rsa::RsaPrivateKey::from_pkcs1_der(der).map_err(|e| format!("invalid RSA key: {e}"))?.to_public_key().to_public_key_der(),
        "EC PRIVATE KEY" => {
            if let Ok(key) = p256::SecretKey::from_sec1_der(der) {
                key.public_key().to_public_key_der()
            } else if let Ok(key) = p384::SecretKey::from_sec1_der(der) {
                key.public_key().to_public_key_der()
            } else {
                return Err("the EC key is not on P-256 or P-384".to_owned());
            }
        }
        "ENCRYPTED PRIVATE KEY" => return Err("the private key is encrypted; nginx needs it unencrypted to start unattended".to_owned()),
        other => return Err(format!("unexpected PEM block {other:?}; expected a private key")),
    };
    encoded.map(|document| document.as_bytes().to_vec()).map_err(|e| format!("cannot encode the public key: {e}"))
}

fn ocsp_responder(leaf: &X509Certificate<'_>) -> Option<String> {
    leaf.extensions().iter().find_map(|extension| match extension.parsed_extension() {
        ParsedExtension::AuthorityInfoAccess(access) => access.accessdescs.iter().find_map(|description| {
            match (&description.access_method, &description.access_location) {
                (method, GeneralName::URI(uri)) if *method == OID_PKIX_ACCESS_DESCRIPTOR_OCSP => Some((*uri).to_owned()),
                _ => None,
            }
        }),
        _ => None,
    })
}

/// Returns the name servers of the host's `/etc/resolv.conf`, in nginx's
/// `resolver` syntax, for OCSP stapling.
pub fn resolvers(host: &Host) -> Result<Vec<String>, PlanError> {
    let text = host.root.read_file("/etc/resolv.conf", PEM_LIMIT).ok().flatten().unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    Ok(text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<std::net::IpAddr>().ok())
        .map(|address| match address {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_covers_one_label() {
        assert!(dns_pattern_covers("sales.example.com", "sales.example.com"));
        assert!(dns_pattern_covers("*.example.com", "sales.example.com"));
        assert!(dns_pattern_covers("*.Example.com", "sales.example.com"));
        assert!(!dns_pattern_covers("*.example.com", "a.sales.example.com"));
        assert!(!dns_pattern_covers("*.example.com", "example.com"));
        assert!(!dns_pattern_covers("crm.example.com", "sales.example.com"));
    }

    #[test]
    fn normalize_resolves_dot_dot() {
        assert_eq!(normalize("/etc/letsencrypt/live/a/../../archive/a/cert1.pem"), "/etc/letsencrypt/archive/a/cert1.pem");
        assert_eq!(normalize("/../../x"), "/x");
    }
}
