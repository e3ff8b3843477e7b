//! Throwaway certificates made with the `openssl` CLI: a CA with a server certificate it
//! signed ([`make_test_pki`]), and self-signed server and CA certificates.

use std::fs::{self, OpenOptions};
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::run_checked;

/// Validity of both certificates, in days.
const VALIDITY_DAYS: &str = "30";

/// Maximum length of an X.509 commonName (RFC 5280, `ub-common-name`).
const MAX_COMMON_NAME_LEN: usize = 64;

/// Paths of the files written by [`make_test_pki`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pki {
    /// CA certificate (PEM). Clients trust it, for example with `curl --cacert`.
    pub ca_cert: PathBuf,
    /// CA private key (PEM, mode 0600), for signing further test certificates.
    pub ca_key: PathBuf,
    /// Server certificate alone (PEM).
    pub leaf_cert: PathBuf,
    /// Server certificate followed by the CA certificate (PEM), for nginx's `ssl_certificate`,
    /// which expects the server certificate first.
    pub leaf_chain: PathBuf,
    /// Server private key (PEM, mode 0600).
    pub leaf_key: PathBuf,
}

/// Creates a CA and a server certificate for `server_name` in `dir`, signed by that CA.
///
/// Both keys are EC P-256 and both certificates are valid for 30 days from now. The CA has
/// `basicConstraints=critical,CA:TRUE` and `keyUsage=critical,keyCertSign,cRLSign`. The server
/// certificate has `CA:FALSE`, `keyUsage=digitalSignature`, `extendedKeyUsage=serverAuth` and
/// one subjectAltName: `IP:server_name` when it parses as an IP address, else `DNS:server_name`.
///
/// `server_name` must be an IP address or a DNS name (labels of letters, digits and `-`, with
/// an optional leading `*.` label). Besides the files in [`Pki`], `dir` gets the OpenSSL
/// configuration files, the certificate signing request and the CA serial file.
pub fn make_test_pki(dir: &Path, server_name: &str) -> io::Result<Pki> {
    let subject_alt_name = subject_alt_name(server_name)?;
    let common_name = if server_name.len() <= MAX_COMMON_NAME_LEN {
        server_name
    } else {
        "mxharden test server"
    };

    let pki = Pki {
        ca_cert: dir.join("ca.pem"),
        ca_key: dir.join("ca.key"),
        leaf_cert: dir.join("leaf.pem"),
        leaf_chain: dir.join("leaf.fullchain.pem"),
        leaf_key: dir.join("leaf.key"),
    };
    let ca_config = dir.join("ca.cnf");
    let leaf_config = dir.join("leaf.cnf");
    let leaf_request = dir.join("leaf.csr");

    fs::write(&ca_config, CA_CONFIG)?;
    fs::write(
        &leaf_config,
        LEAF_CONFIG
            .replace("@COMMON_NAME@", common_name)
            .replace("@SUBJECT_ALT_NAME@", &subject_alt_name),
    )?;

    generate_p256_key(&pki.ca_key)?;
    run_checked(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-new",
                "-sha256",
                "-days",
                VALIDITY_DAYS,
                "-config",
            ])
            .arg(&ca_config)
            .arg("-key")
            .arg(&pki.ca_key)
            .arg("-out")
            .arg(&pki.ca_cert),
    )?;

    generate_p256_key(&pki.leaf_key)?;
    run_checked(
        Command::new("openssl")
            .args(["req", "-new", "-sha256", "-config"])
            .arg(&leaf_config)
            .arg("-key")
            .arg(&pki.leaf_key)
            .arg("-out")
            .arg(&leaf_request),
    )?;
    run_checked(
        Command::new("openssl")
            .args(["x509", "-req", "-sha256", "-days", VALIDITY_DAYS, "-in"])
            .arg(&leaf_request)
            .arg("-CA")
            .arg(&pki.ca_cert)
            .arg("-CAkey")
            .arg(&pki.ca_key)
            .arg("-CAcreateserial")
            .arg("-CAserial")
            .arg(dir.join("ca.srl"))
            .arg("-extfile")
            .arg(&leaf_config)
            .args(["-extensions", "leaf_extensions", "-out"])
            .arg(&pki.leaf_cert),
    )?;

    let mut chain = fs::read(&pki.leaf_cert)?;
    chain.extend(fs::read(&pki.ca_cert)?);
    fs::write(&pki.leaf_chain, chain)?;

    Ok(pki)
}

/// Writes a self-signed server certificate for `server_name` to `certificate` and its EC P-256
/// key to `key` (mode 0600), both PEM.
///
/// The certificate is valid for 30 days from now and has `server_name` as its commonName and
/// as its one subjectAltName (`IP:` or `DNS:`, as in [`make_test_pki`]). Its other extensions
/// come from the host's OpenSSL configuration, as with `openssl req -x509`.
pub fn write_self_signed_certificate(certificate: &Path, key: &Path, server_name: &str) -> io::Result<()> {
    let subject_alt_name = subject_alt_name(server_name)?;
    let common_name = if server_name.len() <= MAX_COMMON_NAME_LEN {
        server_name
    } else {
        "mxharden test server"
    };
    write_self_signed(certificate, key, common_name, &format!("subjectAltName={subject_alt_name}"))
}

/// Writes a self-signed CA certificate with the commonName `common_name` to `certificate` and
/// its EC P-256 key to `key` (mode 0600), both PEM, valid for 30 days from now.
///
/// Use it where a test needs a CA file, such as the client CA of an access rule. The name
/// must not contain `/`, which `openssl req -subj` reads as a separator.
pub fn write_self_signed_ca(certificate: &Path, key: &Path, common_name: &str) -> io::Result<()> {
    write_self_signed(certificate, key, common_name, "basicConstraints=critical,CA:TRUE")
}

/// Generates `key` and a certificate for it, signed by itself, with one added extension.
fn write_self_signed(certificate: &Path, key: &Path, common_name: &str, extension: &str) -> io::Result<()> {
    generate_p256_key(key)?;
    run_checked(
        Command::new("openssl")
            .args(["req", "-x509", "-new", "-sha256", "-days", VALIDITY_DAYS])
            .arg("-subj")
            .arg(format!("/CN={common_name}"))
            .arg("-addext")
            .arg(extension)
            .arg("-key")
            .arg(key)
            .arg("-out")
            .arg(certificate),
    )?;
    Ok(())
}

/// OpenSSL configuration for the self-signed CA certificate.
///
/// A configuration file of our own keeps the result independent of the host's
/// `/etc/ssl/openssl.cnf`, whose default `v3_ca` section would add extensions.
const CA_CONFIG: &str = "\
[req]
prompt = no
distinguished_name = ca_subject
x509_extensions = ca_extensions

[ca_subject]
CN = mxharden test CA

[ca_extensions]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
";

/// OpenSSL configuration for the server certificate request and its extensions.
const LEAF_CONFIG: &str = "\
[req]
prompt = no
distinguished_name = leaf_subject

[leaf_subject]
CN = @COMMON_NAME@

[leaf_extensions]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = @SUBJECT_ALT_NAME@
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
";

/// Writes a new EC P-256 private key to `path` with mode 0600.
fn generate_p256_key(path: &Path) -> io::Result<()> {
    // Creating the file first means the key is never readable by others, whatever the umask.
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    run_checked(
        Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
            ])
            .arg(path),
    )?;
    // `open` leaves the mode of an existing file unchanged, so set it explicitly.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
}

/// Returns the subjectAltName value for `server_name`, rejecting names that are not valid
/// DNS names or IP addresses. The check also keeps the name from injecting configuration
/// lines into the OpenSSL config file.
fn subject_alt_name(server_name: &str) -> io::Result<String> {
    if let Ok(ip) = server_name.parse::<IpAddr>() {
        return Ok(format!("IP:{ip}"));
    }
    if is_dns_name(server_name) {
        return Ok(format!("DNS:{server_name}"));
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "invalid server name {server_name:?}: expected a DNS name such as app.example.test or an IP address"
        ),
    ))
}

fn is_dns_name(name: &str) -> bool {
    let without_wildcard = name.strip_prefix("*.").unwrap_or(name);
    let label_is_valid = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    name.len() <= 253 && without_wildcard.split('.').all(label_is_valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_alt_name_kinds() {
        assert_eq!(
            subject_alt_name("app.example.test").unwrap(),
            "DNS:app.example.test"
        );
        assert_eq!(
            subject_alt_name("*.example.test").unwrap(),
            "DNS:*.example.test"
        );
        assert_eq!(subject_alt_name("localhost").unwrap(), "DNS:localhost");
        assert_eq!(subject_alt_name("10.1.2.3").unwrap(), "IP:10.1.2.3");
        assert_eq!(subject_alt_name("fd00::1").unwrap(), "IP:fd00::1");
    }

    #[test]
    fn subject_alt_name_rejects_invalid_names() {
        for name in [
            "",
            "app..test",
            "-app.test",
            "app-.test",
            "app.test\nkeyUsage = keyCertSign",
            "app test",
            "a*.example.test",
            "example.*",
            &format!("{}.test", "a".repeat(64)),
        ] {
            assert!(subject_alt_name(name).is_err(), "{name:?} was accepted");
        }
    }
}
