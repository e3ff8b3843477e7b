//! The certificate and key checks that run before an nginx site is written.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mxharden_plan::Host;
use mxharden_plan::certs::{CertificateFindings, check_certificate};
use mxharden_plan::checks::check_foreign_default_servers;
use mxharden_spec::AppSpec;
use mxharden_testkit::spec::example_app;
use mxharden_testkit::{Pki, make_test_pki};

/// A sandbox host whose certificate and key files, at the example app's
/// paths, are copies of the given files.
struct Tree {
    dir: tempfile::TempDir,
    app: AppSpec,
}

impl Tree {
    fn new(cert: &Path, key: &Path) -> Tree {
        let tree = Tree {
            dir: tempfile::tempdir().unwrap(),
            app: example_app(),
        };
        let cert_file = tree.host_file(tree.app.tls_certificate.as_str());
        let key_file = tree.host_file(tree.app.tls_key.as_str());
        fs::create_dir_all(cert_file.parent().unwrap()).unwrap();
        fs::create_dir_all(key_file.parent().unwrap()).unwrap();
        fs::copy(cert, &cert_file).unwrap();
        fs::copy(key, &key_file).unwrap();
        fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
        tree
    }

    fn host_file(&self, path: &str) -> PathBuf {
        self.dir.path().join(path.trim_start_matches('/'))
    }

    fn check_at(&self, now: jiff::Timestamp) -> Result<CertificateFindings, String> {
        let host = Host::sandbox(self.dir.path()).unwrap();
        check_certificate(&host, &self.app, now).map_err(|e| e.to_string())
    }

    fn check(&self) -> Result<CertificateFindings, String> {
        self.check_at(jiff::Timestamp::now())
    }
}

fn pki(dir: &Path, folder: &str, name: &str) -> Pki {
    let folder = dir.join(folder);
    fs::create_dir_all(&folder).unwrap();
    make_test_pki(&folder, name).expect("test PKI")
}

#[test]
fn certificate_with_chain_passes() {
    let work = tempfile::tempdir().unwrap();
    let pki = pki(work.path(), "a", "sales.example.com");
    let tree = Tree::new(&pki.leaf_chain, &pki.leaf_key);
    let findings = tree.check().expect("a complete, matching certificate passes");
    assert!(findings.ocsp_responder.is_none());

    // The test PKI's certificates live 30 days: five days on, 24 or 25 are left.
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 5);
    let findings = tree.check_at(later).expect("a certificate that expires soon passes");
    assert_eq!(findings.warnings.len(), 1, "{:?}", findings.warnings);
    let warning = &findings.warnings[0];
    assert!(warning.contains("sales.pem: the certificate expires in 2"), "{warning}");
}

#[test]
fn key_of_other_certificate_fails() {
    let work = tempfile::tempdir().unwrap();
    let pki_a = pki(work.path(), "a", "sales.example.com");
    let pki_b = pki(work.path(), "b", "sales.example.com");
    let tree = Tree::new(&pki_a.leaf_chain, &pki_b.leaf_key);
    let error = tree.check().unwrap_err();
    assert!(error.contains("sales.key: the private key does not belong to the certificate"), "{error}");
}

#[test]
fn certificate_for_other_name_fails() {
    let work = tempfile::tempdir().unwrap();
    let pki = pki(work.path(), "a", "crm.example.com");
    let tree = Tree::new(&pki.leaf_chain, &pki.leaf_key);
    let error = tree.check().unwrap_err();
    assert!(error.contains("sales.pem: the certificate covers crm.example.com but not server_name sales.example.com"), "{error}");
}

#[test]
fn wildcard_certificate_covers_name() {
    let work = tempfile::tempdir().unwrap();
    let pki = pki(work.path(), "a", "*.example.com");
    let tree = Tree::new(&pki.leaf_chain, &pki.leaf_key);
    tree.check().expect("*.example.com covers sales.example.com");
}

#[test]
fn expired_certificate_fails() {
    let work = tempfile::tempdir().unwrap();
    let pki = pki(work.path(), "a", "sales.example.com");
    let tree = Tree::new(&pki.leaf_chain, &pki.leaf_key);
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 40);
    let error = tree.check_at(later).unwrap_err();
    assert!(error.contains("sales.pem: the certificate expired on"), "{error}");
}

#[test]
fn leaf_without_issuer_fails() {
    let work = tempfile::tempdir().unwrap();
    let pki = pki(work.path(), "a", "sales.example.com");
    let tree = Tree::new(&pki.leaf_cert, &pki.leaf_key);
    let error = tree.check().unwrap_err();
    assert!(error.contains("sales.pem: the chain is incomplete"), "{error}");
}

#[test]
fn readable_key_fails() {
    let work = tempfile::tempdir().unwrap();
    let pki = pki(work.path(), "a", "sales.example.com");
    let tree = Tree::new(&pki.leaf_chain, &pki.leaf_key);
    let key = tree.host_file(tree.app.tls_key.as_str());
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let error = tree.check().unwrap_err();
    assert!(error.contains("sales.key: the private key has mode 0644 and other users may read it"), "{error}");
}

#[test]
fn missing_certificate_names_file() {
    let work = tempfile::tempdir().unwrap();
    let pki = pki(work.path(), "a", "sales.example.com");
    let tree = Tree::new(&pki.leaf_chain, &pki.leaf_key);
    fs::remove_file(tree.host_file(tree.app.tls_certificate.as_str())).unwrap();
    let error = tree.check().unwrap_err();
    assert!(error.contains("sales.pem: the file does not exist"), "{error}");
}

#[test]
fn stock_default_site_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let sites = dir.path().join("etc/nginx/sites-enabled");
    fs::create_dir_all(&sites).unwrap();
    fs::write(sites.join("other"), "server {\n    listen 8080;\n    # listen 80 default_server;\n}\n").unwrap();
    let host = Host::sandbox(dir.path()).unwrap();
    check_foreign_default_servers(&host).expect("a commented default_server does not count");

    fs::write(sites.join("default"), "server {\n\tlisten 80 default_server;\n\tlisten [::]:80 default_server;\n}\n").unwrap();
    let error = check_foreign_default_servers(&host).unwrap_err().to_string();
    assert!(error.contains("sites-enabled/default declares a default_server"), "{error}");
}

#[test]
fn ocsp_responder_is_found() {
    let work = tempfile::tempdir().unwrap();
    let pki = pki(work.path(), "a", "sales.example.com");
    let folder = pki.leaf_cert.parent().unwrap();
    let extensions = folder.join("ocsp.ext");
    fs::write(
        &extensions,
        "subjectAltName = DNS:sales.example.com\nauthorityInfoAccess = OCSP;URI:http://ocsp.example.test/\n",
    )
    .unwrap();
    let leaf = folder.join("leaf-ocsp.pem");
    let status = std::process::Command::new("openssl")
        .args(["x509", "-req", "-days", "30", "-in"])
        .arg(folder.join("leaf.csr"))
        .arg("-CA")
        .arg(&pki.ca_cert)
        .arg("-CAkey")
        .arg(&pki.ca_key)
        .arg("-extfile")
        .arg(&extensions)
        .arg("-out")
        .arg(&leaf)
        .status()
        .expect("openssl runs");
    assert!(status.success());
    let chain = folder.join("chain-ocsp.pem");
    fs::write(&chain, [fs::read(&leaf).unwrap(), fs::read(&pki.ca_cert).unwrap()].concat()).unwrap();

    let tree = Tree::new(&chain, &pki.leaf_key);
    let findings = tree.check().expect("the certificate passes");
    assert_eq!(findings.ocsp_responder.as_deref(), Some("http://ocsp.example.test/"));

    let resolv = tree.host_file("/etc/resolv.conf");
    fs::write(&resolv, "# local\nnameserver 192.0.2.53\nnameserver fd00::53\nsearch example.com\n").unwrap();
    let host = Host::sandbox(tree.dir.path()).unwrap();
    assert_eq!(mxharden_plan::certs::resolvers(&host).unwrap(), ["192.0.2.53", "[fd00::53]"]);
}
