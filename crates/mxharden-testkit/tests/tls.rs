//! Tests of the test PKI: certificate contents, file modes and a real TLS handshake.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mxharden_testkit::{
    Pki, curl, make_test_pki, require_root_or_skip, spawn_until_line, wait_for_tcp,
};
use tempfile::TempDir;

use common::{SERVER_V4, linked_pair};

const SERVER_NAME: &str = "app.mxharden.test";

fn openssl(args: &[&str], file: &Path) -> String {
    let output = Command::new("openssl")
        .args(args)
        .arg(file)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?} {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn certificate_text(certificate: &Path) -> String {
    openssl(&["x509", "-noout", "-text", "-in"], certificate)
}

fn make_pki() -> (TempDir, Pki) {
    let dir = TempDir::new().expect("create temporary directory");
    let pki = make_test_pki(dir.path(), SERVER_NAME).expect("make test PKI");
    (dir, pki)
}

#[test]
fn ca_can_sign_certificates() {
    let (_dir, pki) = make_pki();

    let text = certificate_text(&pki.ca_cert);

    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(text.contains("Subject: CN = mxharden test CA"), "{text}");
}

#[test]
fn leaf_is_server_certificate_for_name() {
    let (_dir, pki) = make_pki();

    let text = certificate_text(&pki.leaf_cert);

    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains(&format!("DNS:{SERVER_NAME}")), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
    assert!(text.contains("Issuer: CN = mxharden test CA"), "{text}");
}

#[test]
fn leaf_verifies_against_ca() {
    let (_dir, pki) = make_pki();
    let ca = pki.ca_cert.to_str().unwrap();

    let output = openssl(
        &[
            "verify",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            SERVER_NAME,
            "-CAfile",
            ca,
        ],
        &pki.leaf_cert,
    );

    assert!(output.contains(": OK"), "{output}");
}

#[test]
fn certificates_valid_for_30_days() {
    let (_dir, pki) = make_pki();

    for certificate in [&pki.ca_cert, &pki.leaf_cert] {
        // 29 days from now the certificate is still valid, 31 days from now it has expired.
        let still_valid = Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-checkend",
                &(29 * 86400).to_string(),
                "-in",
            ])
            .arg(certificate)
            .output()
            .unwrap()
            .status;
        let expired = Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-checkend",
                &(31 * 86400).to_string(),
                "-in",
            ])
            .arg(certificate)
            .output()
            .unwrap()
            .status;

        assert!(
            still_valid.success(),
            "{} expires within 29 days",
            certificate.display()
        );
        assert!(
            !expired.success(),
            "{} is valid for more than 31 days",
            certificate.display()
        );
    }
}

#[test]
fn chain_is_leaf_then_ca() {
    let (_dir, pki) = make_pki();

    let chain = fs::read_to_string(&pki.leaf_chain).unwrap();
    let leaf = fs::read_to_string(&pki.leaf_cert).unwrap();
    let ca = fs::read_to_string(&pki.ca_cert).unwrap();

    assert_eq!(chain.matches("-----BEGIN CERTIFICATE-----").count(), 2);
    assert_eq!(chain, format!("{leaf}{ca}"));
}

#[test]
fn private_keys_mode_0600() {
    let (_dir, pki) = make_pki();

    for key in [&pki.ca_key, &pki.leaf_key] {
        let mode = fs::metadata(key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", key.display());
        assert!(fs::read_to_string(key).unwrap().contains("PRIVATE KEY"));
    }
}

#[test]
fn ip_address_gets_ip_subject_alt_name() {
    let dir = TempDir::new().unwrap();

    let pki = make_test_pki(dir.path(), "10.231.0.2").expect("make PKI for an IP address");

    let text = certificate_text(&pki.leaf_cert);
    assert!(text.contains("IP Address:10.231.0.2"), "{text}");
    assert!(!text.contains("DNS:"), "{text}");
}

#[test]
fn invalid_server_name_rejected() {
    let dir = TempDir::new().unwrap();

    let error =
        make_test_pki(dir.path(), "bad name\n[injected]").expect_err("invalid name accepted");

    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        !dir.path().join("ca.key").exists(),
        "files were written for a rejected name"
    );
}

#[test]
fn curl_trusts_leaf_served_in_namespace() {
    if !require_root_or_skip("curl_trusts_leaf_served_in_namespace") {
        return;
    }
    let (_dir, pki) = make_pki();
    let pair = linked_pair();
    let mut server = pair.server.command(
        "openssl",
        [
            "s_server".as_ref(),
            "-www".as_ref(),
            "-accept".as_ref(),
            "8443".as_ref(),
            "-cert".as_ref(),
            pki.leaf_chain.as_os_str(),
            "-key".as_ref(),
            pki.leaf_key.as_os_str(),
        ] as [&std::ffi::OsStr; 8],
    );
    // `openssl s_server` prints ACCEPT once it listens.
    let (_server, _) = spawn_until_line(&mut server, "ACCEPT", Duration::from_secs(10))
        .expect("start openssl s_server");
    wait_for_tcp(
        Some(&pair.client),
        format!("{SERVER_V4}:8443").parse().unwrap(),
        Duration::from_secs(5),
    )
    .expect("s_server reachable from client namespace");
    let resolve = format!("{SERVER_NAME}:8443:{SERVER_V4}");
    let url = format!("https://{SERVER_NAME}:8443/");
    let wrong_name_resolve = format!("other.mxharden.test:8443:{SERVER_V4}");

    let trusted = curl(&pair.client)
        .arg("--cacert")
        .arg(&pki.ca_cert)
        .args(["--resolve", &resolve, &url])
        .output()
        .unwrap();
    let untrusted = curl(&pair.client)
        .args(["--resolve", &resolve, &url])
        .output()
        .unwrap();
    let wrong_name = curl(&pair.client)
        .arg("--cacert")
        .arg(&pki.ca_cert)
        .args([
            "--resolve",
            &wrong_name_resolve,
            "https://other.mxharden.test:8443/",
        ])
        .output()
        .unwrap();

    assert!(
        trusted.status.success(),
        "curl with the test CA failed: {}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(
        String::from_utf8_lossy(&trusted.stdout).contains("s_server"),
        "unexpected body"
    );
    // curl exit code 60: peer certificate cannot be authenticated with known CA certificates.
    assert_eq!(untrusted.status.code(), Some(60), "{untrusted:?}");
    assert_eq!(wrong_name.status.code(), Some(60), "{wrong_name:?}");
}
