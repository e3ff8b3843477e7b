//! apply with access rules on a sandbox tree: the files the rules name are
//! checked before anything is written, and the site passes nginx -t with
//! them.

mod support;

use std::os::unix::fs::PermissionsExt;

use mxharden_testkit::write_self_signed_ca;
use support::{Sandbox, describe, example_spec};

const RULES: &str = "    access:
      - prefix: /rest/
        allow_from: [\"198.51.100.0/24\"]
        client_certificate: /etc/ssl/certs/partner-ca.pem
        basic_auth: /etc/nginx/partner.htpasswd
        satisfy: any
";

fn spec_with_rules() -> String {
    example_spec().replace("  firewall:\n", &format!("{RULES}  firewall:\n"))
}

/// Writes a CA certificate made with the openssl CLI and an htpasswd file
/// where the rules expect them.
fn write_access_files(sandbox: &Sandbox) {
    let ca = sandbox.path("/etc/ssl/certs/partner-ca.pem");
    let key = sandbox.folder().join("partner-ca.key");
    write_self_signed_ca(&ca, &key, "partner CA").expect("make the partner CA");
    let htpasswd = sandbox.path("/etc/nginx/partner.htpasswd");
    std::fs::create_dir_all(htpasswd.parent().unwrap()).unwrap();
    std::fs::write(&htpasswd, "partner:$apr1$mM1vSYw9$4mYZ5u4Nb1LMWm3Ae3mM3/\n").unwrap();
    std::fs::set_permissions(&htpasswd, std::fs::Permissions::from_mode(0o640)).unwrap();
}

#[test]
fn missing_client_ca_stops_apply() {
    let sandbox = Sandbox::with_spec(&spec_with_rules());
    write_access_files(&sandbox);
    std::fs::remove_file(sandbox.path("/etc/ssl/certs/partner-ca.pem")).unwrap();
    let output = sandbox.apply(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("app.proxy.access[0].client_certificate"), "{stderr}");
    assert!(stderr.contains("partner-ca.pem: the file does not exist"), "{stderr}");
    assert!(!sandbox.path("/etc/nginx/conf.d/mxharden-sales.conf").exists(), "apply wrote the site");
}

#[test]
fn access_rule_site_passes_nginx() {
    let sandbox = Sandbox::with_spec(&spec_with_rules());
    write_access_files(&sandbox);
    let output = sandbox.apply_ok(&["--format", "json"]);
    let report = String::from_utf8_lossy(&output.stdout);
    if nix::unistd::geteuid().is_root() {
        // nginx -t ran on a copy whose CA path points into the sandbox.
        assert!(report.contains("\"passed\""), "{report}");
    }
    let site = std::fs::read_to_string(sandbox.path("/etc/nginx/conf.d/mxharden-sales.conf")).unwrap();
    assert!(site.contains("    ssl_client_certificate /etc/ssl/certs/partner-ca.pem;\n    ssl_verify_client optional;\n"), "{site}");
    assert!(site.contains("location ^~ /rest/ {"), "{site}");
    assert!(site.contains("auth_basic_user_file /etc/nginx/partner.htpasswd;"), "{site}");
}

#[test]
fn iis_rejects_basic_auth_rule() {
    let spec = spec_with_rules().replace("kind: nginx", "kind: iis");
    let sandbox = Sandbox::with_spec(&spec);
    let output = sandbox.apply(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("app.proxy.access[0].basic_auth: basic authentication is not supported with kind iis"), "{stderr}");
    assert!(stderr.contains("app.proxy.access[0].client_certificate: client certificates are not supported with kind iis"), "{stderr}");
}
