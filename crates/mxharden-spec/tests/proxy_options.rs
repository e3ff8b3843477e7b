//! Reading the proxy options of a desired-state file: defaults, checked
//! values and errors with their position.

use std::path::{Path, PathBuf};

use mxharden_spec::{FrameAncestors, InputError, Satisfy, TlsProfile, load_apps, today_utc};

const BASE: &str = "version: 1
app:
  name: NAME
  base: /srv/mendix/NAME
  runtime:
    port: PORT
    admin_port: ADMIN
  proxy:
    kind: nginx
    server_name: NAME.example.com
    tls:
      certificate: /etc/ssl/certs/NAME.pem
      key: /etc/ssl/private/NAME.key
";

fn write(dir: &Path, name: &str, port: u16, extra: &str) -> PathBuf {
    let text = BASE.replace("NAME", name).replace("ADMIN", &(port + 90).to_string()).replace("PORT", &port.to_string()) + extra;
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, text).unwrap();
    file
}

fn errors(files: &[PathBuf]) -> Vec<InputError> {
    load_apps(files, today_utc()).expect_err("the files are invalid").0
}

#[test]
fn proxy_defaults_apply() {
    let dir = tempfile::tempdir().unwrap();
    let app = load_apps(&[write(dir.path(), "sales", 8000, "")], today_utc()).unwrap().remove(0);
    assert_eq!(app.proxy.tls_profile, TlsProfile::Intermediate);
    assert_eq!(app.proxy.frame_ancestors, FrameAncestors::SameOrigin);
    assert_eq!(app.proxy.max_upload.get(), 1024);
    assert!(!app.proxy.hsts_include_subdomains);
    assert!(!app.proxy.hsts_preload);
    assert!(!app.proxy.expose_docs);
    assert!(!app.proxy.expose_debugger);
    assert!(app.proxy.headers.is_empty());
    assert_eq!(app.proxy.content_security_policy.as_str(), mxharden_spec::DEFAULT_CONTENT_SECURITY_POLICY);
}

#[test]
fn header_outside_allow_list_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sales", 8000, "    headers:\n      Set-Cookie: \"a=b\"\n");
    let found = errors(&[file]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].line, found[0].field.as_str()), (15, "app.proxy.headers.Set-Cookie"), "{}", found[0]);
    assert!(found[0].message.contains("header \"Set-Cookie\" is not allowed"), "{}", found[0]);
}

#[test]
fn header_value_with_variable_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sales", 8000, "    content_security_policy: \"default-src $host\"\n");
    let found = errors(&[file]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].line, found[0].field.as_str()), (14, "app.proxy.content_security_policy"), "{}", found[0]);
    assert!(found[0].message.contains("character '$' is not allowed"), "{}", found[0]);
}

#[test]
fn preload_needs_subdomains() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sales", 8000, "    hsts:\n      preload: true\n");
    let found = errors(&[file]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].line, found[0].column, found[0].field.as_str()), (15, 16, "app.proxy.hsts.preload"), "{}", found[0]);
}

#[test]
fn unknown_proxy_key_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sales", 8000, "    expose:\n      admin: true\n");
    let found = errors(&[file]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].message.contains("unknown field `admin`"), "{}", found[0]);
}

#[test]
fn field_path_omits_span_wrapper() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sales", 8000, "");
    let text = std::fs::read_to_string(&file).unwrap().replace("port: 8000", "port: 80");
    std::fs::write(&file, text).unwrap();
    let found = errors(&[file]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "app.runtime.port");
}

#[test]
fn upload_limit_out_of_range_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sales", 8000, "    max_upload_mb: 0\n");
    let found = errors(&[file]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].message.contains("invalid upload limit 0 MiB"), "{}", found[0]);
}

#[test]
fn tls_profiles_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let sales = write(dir.path(), "sales", 8000, "");
    let crm = write(dir.path(), "crm", 8100, "");
    let text = std::fs::read_to_string(&crm).unwrap().replace("key: /etc/ssl/private/crm.key\n", "key: /etc/ssl/private/crm.key\n      profile: modern\n");
    std::fs::write(&crm, text).unwrap();
    let found = errors(&[sales, crm]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "app.proxy.tls.profile");
    assert_eq!(found[0].line, 14);
    assert!(found[0].message.contains("different TLS profile"), "{}", found[0]);
    assert!(found[0].related.as_deref().is_some_and(|r| r.contains("sales.yaml")), "{}", found[0]);
}

fn access(rules: &str) -> String {
    format!("    access:\n{rules}")
}

#[test]
fn access_rule_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sales", 8000, &access("      - prefix: /rest/\n        allow_from: [\"198.51.100.0/24\"]\n"));
    let app = load_apps(&[file], today_utc()).unwrap().remove(0);
    assert_eq!(app.proxy.access.len(), 1);
    let rule = &app.proxy.access[0];
    assert_eq!(rule.prefix.base(), "/rest");
    assert_eq!(rule.satisfy, Satisfy::All);
    assert_eq!(rule.allow_from.len(), 1);
    assert!(rule.client_certificate.is_none());
    assert!(rule.basic_auth.is_none());
    assert_eq!(rule.field, "app.proxy.access[0]");
}

#[test]
fn access_prefix_rejects_regex() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sales", 8000, &access("      - prefix: \"~ ^/rest\"\n        allow_from: [\"198.51.100.0/24\"]\n"));
    let found = errors(&[file]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].line, found[0].field.as_str()), (15, "app.proxy.access[0].prefix"), "{}", found[0]);
    assert!(found[0].message.contains("invalid path prefix"), "{}", found[0]);
}

#[test]
fn access_rule_needs_a_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sales", 8000, &access("      - prefix: /rest/\n        satisfy: any\n"));
    let found = errors(&[file]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "app.proxy.access[0]");
    assert!(found[0].message.contains("sets no check"), "{}", found[0]);
}

#[test]
fn access_prefix_twice_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "      - prefix: /rest\n        allow_from: [\"198.51.100.0/24\"]\n      - prefix: /rest/\n        basic_auth: /etc/nginx/partner.htpasswd\n";
    let found = errors(&[write(dir.path(), "sales", 8000, &access(rules))]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].line, found[0].field.as_str()), (17, "app.proxy.access[1].prefix"), "{}", found[0]);
    assert!(found[0].related.as_deref().is_some_and(|r| r.ends_with(":15:17")), "{}", found[0]);
}

#[test]
fn access_rules_share_one_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "      - prefix: /rest/\n        client_certificate: /etc/ssl/a-ca.pem\n      - prefix: /odata/\n        client_certificate: /etc/ssl/b-ca.pem\n";
    let found = errors(&[write(dir.path(), "sales", 8000, &access(rules))]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "app.proxy.access[1].client_certificate");
    assert!(found[0].message.contains("nginx verifies client certificates once per server"), "{}", found[0]);
}

#[test]
fn access_allow_from_rejects_wide_networks() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "      - prefix: /rest/\n        allow_from: [\"0.0.0.0/0\", \"198.51.100.7/24\"]\n";
    let found = errors(&[write(dir.path(), "sales", 8000, &access(rules))]);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|e| e.field == "app.proxy.access[0].allow_from"), "{found:?}");
    assert!(found[0].message.contains("admits every client"), "{}", found[0]);
    assert!(found[1].message.contains("write the network as 198.51.100.0/24"), "{}", found[1]);
}

#[test]
fn access_on_proxy_files_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "      - prefix: /mxclientsystem/\n        allow_from: [\"198.51.100.0/24\"]\n";
    let found = errors(&[write(dir.path(), "sales", 8000, &access(rules))]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].message.contains("fence the whole site with prefix /"), "{}", found[0]);
}

#[test]
fn access_on_root_and_denied_paths_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "      - prefix: /\n        basic_auth: /etc/nginx/staff.htpasswd\n      - prefix: /debugger/\n        allow_from: [\"10.0.0.0/8\"]\n";
    let app = load_apps(&[write(dir.path(), "sales", 8000, &access(rules))], today_utc()).unwrap().remove(0);
    assert!(app.proxy.access[0].prefix.is_root());
    assert_eq!(app.proxy.access[1].prefix.first_segment(), "debugger");
}

#[test]
fn iis_rejects_what_it_cannot_express() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "      - prefix: /rest/\n        allow_from: [\"198.51.100.0/24\"]\n        client_certificate: /etc/ssl/partner-ca.pem\n        basic_auth: /etc/nginx/partner.htpasswd\n        satisfy: any\n";
    let file = write(dir.path(), "sales", 8000, &access(rules));
    let text = std::fs::read_to_string(&file).unwrap().replace("kind: nginx", "kind: iis");
    std::fs::write(&file, text).unwrap();
    let found = errors(std::slice::from_ref(&file));
    let fields: Vec<&str> = found.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["app.proxy.access[0].client_certificate", "app.proxy.access[0].basic_auth"], "{found:?}");
    assert!(found[0].message.contains("not supported with kind iis"), "{}", found[0]);

    // An allow-list alone is what IIS can express.
    let text = std::fs::read_to_string(&file).unwrap();
    let allow_list_only: String = text.lines().filter(|line| !line.contains("client_certificate") && !line.contains("basic_auth") && !line.contains("satisfy")).map(|line| format!("{line}\n")).collect();
    std::fs::write(&file, allow_list_only).unwrap();
    let app = load_apps(&[file], today_utc()).unwrap().remove(0);
    assert_eq!(app.proxy.access.len(), 1);
}

#[test]
fn documented_access_example_loads() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md")).unwrap();
    let section = docs.split_once("## Access rules").expect("the access rules section").1;
    let example = section.split_once("```yaml\n").unwrap().1.split_once("```").unwrap().0;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sales.yaml");
    let head = "version: 1\napp:\n  name: sales\n  base: /srv/mendix/sales\n  runtime:\n    port: 8000\n    admin_port: 8090\n";
    std::fs::write(&file, format!("{head}{example}")).unwrap();
    let app = load_apps(&[file], today_utc()).unwrap_or_else(|e| panic!("{e}")).remove(0);
    let rule = &app.proxy.access[0];
    assert_eq!(rule.prefix.base(), "/rest");
    assert_eq!(rule.allow_from.len(), 2);
    assert!(rule.client_certificate.is_some());
}

#[test]
fn iis_rejects_ipv6_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "sales", 8000, &access("      - prefix: /rest/\n        allow_from: [\"2001:db8:5::/48\"]\n"));
    let text = std::fs::read_to_string(&file).unwrap().replace("kind: nginx", "kind: iis");
    std::fs::write(&file, text).unwrap();
    let found = errors(&[file]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "app.proxy.access[0].allow_from");
    assert!(found[0].message.contains("IPv4 networks only"), "{}", found[0]);
}
