//! The checks of the client CA and htpasswd files that access rules name.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use mxharden_plan::access::check_access_files;
use mxharden_plan::{Host, PlanError};
use mxharden_spec::AppSpec;
use mxharden_testkit::make_test_pki;
use mxharden_testkit::spec::load_app_file;

const CA_PATH: &str = "/etc/ssl/certs/partner-ca.pem";
const HTPASSWD_PATH: &str = "/etc/nginx/partner.htpasswd";

/// An apr1 hash as `openssl passwd -apr1` writes it.
const APR1_LINE: &str = "partner:$apr1$mM1vSYw9$4mYZ5u4Nb1LMWm3Ae3mM3/\n";

const SPEC: &str = "version: 1
app:
  name: sales
  base: /srv/mendix/sales
  runtime:
    port: 8000
    admin_port: 8090
  proxy:
    kind: nginx
    server_name: sales.example.com
    tls:
      certificate: /etc/ssl/certs/sales.pem
      key: /etc/ssl/private/sales.key
    access:
      - prefix: /rest/
        client_certificate: /etc/ssl/certs/partner-ca.pem
        basic_auth: /etc/nginx/partner.htpasswd
";

/// A sandbox tree with the desired-state file beside it.
struct Tree {
    dir: tempfile::TempDir,
    app: AppSpec,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("sales.yaml");
        fs::write(&spec, SPEC).unwrap();
        let app = load_app_file(&spec);
        fs::create_dir(dir.path().join("root")).unwrap();
        Tree { dir, app }
    }

    fn file(&self, path: &str) -> PathBuf {
        let file = self.dir.path().join("root").join(path.trim_start_matches('/'));
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        file
    }

    fn write(&self, path: &str, contents: &[u8], mode: u32) {
        let file = self.file(path);
        fs::write(&file, contents).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Writes a test CA as the client CA and a valid htpasswd file.
    fn with_valid_files(self) -> Tree {
        let pki_dir = self.dir.path().join("pki");
        fs::create_dir(&pki_dir).unwrap();
        let pki = make_test_pki(&pki_dir, "sales.example.com").unwrap();
        fs::copy(&pki.ca_cert, self.file(CA_PATH)).unwrap();
        self.write(HTPASSWD_PATH, APR1_LINE.as_bytes(), 0o640);
        self
    }

    fn pki_file(&self, name: &str) -> PathBuf {
        self.dir.path().join("pki").join(name)
    }

    fn check(&self) -> Result<Vec<String>, PlanError> {
        let host = Host::sandbox(&self.dir.path().join("root")).unwrap();
        check_access_files(&host, &self.app)
    }
}

fn error_of(tree: &Tree) -> (String, String, String) {
    match tree.check() {
        Err(PlanError::InvalidAccessFile { position, field, message, .. }) => (position, field, message),
        other => panic!("expected an access file error, got {other:?}"),
    }
}

fn spec_file(tree: &Tree) -> String {
    tree.dir.path().join("sales.yaml").display().to_string()
}

#[test]
fn valid_files_pass() {
    let tree = Tree::new().with_valid_files();
    assert_eq!(tree.check().unwrap(), Vec::<String>::new());
}

#[test]
fn missing_ca_names_file_and_field() {
    let tree = Tree::new().with_valid_files();
    fs::remove_file(tree.file(CA_PATH)).unwrap();
    let error = tree.check().unwrap_err().to_string();
    assert!(error.starts_with(&format!("{}:16:29: app.proxy.access[0].client_certificate: ", spec_file(&tree))), "{error}");
    assert!(error.contains("partner-ca.pem: the file does not exist"), "{error}");
}

#[test]
fn ca_must_be_pem_certificate() {
    let tree = Tree::new().with_valid_files();
    tree.write(CA_PATH, b"not a certificate\n", 0o644);
    let (_, field, message) = error_of(&tree);
    assert_eq!(field, "app.proxy.access[0].client_certificate");
    assert!(message.contains("no CERTIFICATE block found"), "{message}");
}

#[test]
fn server_certificate_is_no_ca() {
    let tree = Tree::new().with_valid_files();
    fs::copy(tree.pki_file("leaf.pem"), tree.file(CA_PATH)).unwrap();
    let (_, _, message) = error_of(&tree);
    assert!(message.contains("no certificate in the file is a CA"), "{message}");
}

#[test]
fn missing_htpasswd_names_field() {
    let tree = Tree::new().with_valid_files();
    fs::remove_file(tree.file(HTPASSWD_PATH)).unwrap();
    let (position, field, message) = error_of(&tree);
    assert_eq!(position, format!("{}:17:21", spec_file(&tree)));
    assert_eq!(field, "app.proxy.access[0].basic_auth");
    assert!(message.contains("does not exist"), "{message}");
}

#[test]
fn htpasswd_lines_must_be_user_hash() {
    let cases: [(&str, &str); 5] = [
        ("# only a comment\n\n", "lists no user"),
        ("partner\n", "line 1 is not user:hash"),
        ("# users\npartner:\n", "line 2: the password hash of partner is empty"),
        (":$apr1$x$y\n", "line 1: the user name is empty"),
        ("partner:{PLAIN}secret\n", "stored in plain text"),
    ];
    for (contents, expected) in cases {
        let tree = Tree::new().with_valid_files();
        tree.write(HTPASSWD_PATH, contents.as_bytes(), 0o640);
        let (_, field, message) = error_of(&tree);
        assert_eq!(field, "app.proxy.access[0].basic_auth", "{contents:?}");
        assert!(message.contains(expected), "{contents:?}: {message}");
    }
}

#[test]
fn htpasswd_mode_draws_warnings() {
    let tree = Tree::new().with_valid_files();
    tree.write(HTPASSWD_PATH, APR1_LINE.as_bytes(), 0o644);
    let warnings = tree.check().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("every user may read the password hashes"), "{}", warnings[0]);

    // The file of a sandbox tree belongs to the user who runs the test, and
    // the warning is for a file that only root may read.
    if nix::unistd::geteuid().is_root() {
        tree.write(HTPASSWD_PATH, APR1_LINE.as_bytes(), 0o600);
        let warnings = tree.check().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("would answer 500"), "{}", warnings[0]);
    }
}
