//! Reading the proxy options of a desired-state file: defaults, checked
//! values and errors with their position.

use std::path::{Path, PathBuf};

use mxharden_spec::{FrameAncestors, InputError, TlsProfile, load_apps, today_utc};

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
