//! Rendering the nginx files of an example app into a sandbox tree that
//! real nginx, gixy-ng and sslyze can read.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use mxharden_render::{Engine, RenderContext};
use mxharden_spec::AppSpec;
use mxharden_testkit::spec::load_app_file;
use mxharden_testkit::{Pki, make_test_pki};

/// The workspace root, two levels above this crate.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("the crate lies two levels below the root").to_path_buf()
}

/// Loads one desired-state file from `examples/`.
pub fn example(name: &str) -> AppSpec {
    load_app_file(&workspace_root().join("examples").join(name))
}

/// Finds a program that scripts/install-test-deps installs into the
/// workspace's `.venv`, or fails with the command that installs it.
pub fn venv_tool(name: &str) -> PathBuf {
    let path = workspace_root().join(".venv/bin").join(name);
    assert!(path.is_file(), "{} is missing; run scripts/install-test-deps (as root) to install gixy-ng and sslyze", path.display());
    path
}

/// The shared http file and the site, rendered for `app`.
pub struct Rendered {
    pub http: String,
    pub site: String,
}

/// Renders both nginx files with the file paths unchanged, for snapshots.
pub fn render(app: &AppSpec, context: &RenderContext) -> Rendered {
    let engine = Engine::load(None).expect("built-in templates load");
    let _ = app;
    Rendered {
        http: engine.render("nginx/http.conf.tera", context).expect("http file renders"),
        site: engine.render("nginx/site.conf.tera", context).expect("site renders"),
    }
}

/// A sandbox holding an app's files beneath `prefix`, a test PKI for its
/// server name and the two nginx files, included by `nginx.conf`.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub prefix: PathBuf,
    pub pki: Pki,
    pub main_conf: PathBuf,
    /// Main configuration without Debian's http-level TLS lines, for gixy.
    pub plain_conf: PathBuf,
}

/// The user and password of the htpasswd file that [`sandbox`] writes for
/// every `basic_auth` rule.
pub const BASIC_AUTH_USER: &str = "partner";
pub const BASIC_AUTH_PASSWORD: &str = "partner-test-password";

/// Text of a file that lies next to `web/`, for the path traversal checks.
pub const OUTSIDE_WEB_MARKER: &str = "mxharden-outside-web-marker";

/// Builds the sandbox for `app` and writes its nginx files.
pub fn sandbox(app: &AppSpec, context: &RenderContext) -> Sandbox {
    let dir = tempfile::Builder::new().prefix("mxharden-proxy").tempdir().expect("temporary folder");
    // nginx's workers run as nobody and must read web/.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod sandbox");
    let prefix = dir.path().join("root");
    let base = prefix.join(app.base.relative());
    let web = base.join("web");
    fs::create_dir_all(web.join("mxclientsystem")).unwrap();
    fs::write(web.join("index.html"), "mxharden-index\n").unwrap();
    fs::write(web.join("login.html"), "mxharden-login\n").unwrap();
    fs::write(web.join("app.js"), "mxharden-static\n").unwrap();
    fs::write(web.join("mxclientsystem/mxui.js"), "mxharden-web-copy\n").unwrap();
    fs::create_dir_all(base.join("model")).unwrap();
    fs::write(base.join("model/secret.txt"), OUTSIDE_WEB_MARKER).unwrap();
    if let Some(version) = context.runtime.version.as_deref() {
        let runtime = base.join(format!("runtimes/{version}/runtime/mxclientsystem"));
        fs::create_dir_all(&runtime).unwrap();
        fs::write(runtime.join("mxui.js"), "mxharden-runtime-copy\n").unwrap();
    }

    let pki_dir = dir.path().join("pki");
    fs::create_dir_all(&pki_dir).unwrap();
    let pki = make_test_pki(&pki_dir, app.server_name.as_str()).expect("test PKI");
    let certificate = prefix.join(app.tls_certificate.relative());
    let key = prefix.join(app.tls_key.relative());
    fs::create_dir_all(certificate.parent().unwrap()).unwrap();
    fs::create_dir_all(key.parent().unwrap()).unwrap();
    fs::copy(&pki.leaf_chain, &certificate).unwrap();
    fs::copy(&pki.leaf_key, &key).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    write_access_files(app, &prefix, &pki);

    let beneath = context.beneath(&prefix.display().to_string());
    let rendered = render(app, &beneath);
    let conf_d = dir.path().join("conf.d");
    fs::create_dir_all(&conf_d).unwrap();
    fs::write(conf_d.join("mxharden-00-http.conf"), &rendered.http).unwrap();
    fs::write(conf_d.join(format!("mxharden-{}.conf", app.name)), &rendered.site).unwrap();

    let main_conf = dir.path().join("nginx.conf");
    let plain_conf = dir.path().join("nginx-plain.conf");
    // The first mirrors Debian 12's stock nginx.conf, whose http block
    // enables TLS 1.0 and server cipher order for every server that does
    // not set its own.
    fs::write(&main_conf, main_config(dir.path(), true)).unwrap();
    fs::write(&plain_conf, main_config(dir.path(), false)).unwrap();
    Sandbox {
        dir,
        prefix,
        pki,
        main_conf,
        plain_conf,
    }
}

/// Writes the files that the app's access rules name beneath `prefix`: the
/// test CA as the client CA, and an htpasswd file with one apr1 hash of
/// [`BASIC_AUTH_PASSWORD`] that nginx's workers can read.
fn write_access_files(app: &AppSpec, prefix: &Path, pki: &Pki) {
    for rule in &app.proxy.access {
        if let Some(ca) = &rule.client_certificate {
            let target = prefix.join(ca.relative());
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::copy(&pki.ca_cert, &target).unwrap();
        }
        if let Some(file) = &rule.basic_auth {
            let output = Command::new("openssl").args(["passwd", "-apr1", BASIC_AUTH_PASSWORD]).output().expect("openssl runs");
            assert!(output.status.success(), "openssl passwd failed: {}", String::from_utf8_lossy(&output.stderr));
            let hash = String::from_utf8(output.stdout).unwrap();
            let target = prefix.join(file.relative());
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::write(&target, format!("{BASIC_AUTH_USER}:{}\n", hash.trim())).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// Returns an access rule for `prefix` with the given checks.
pub fn access_rule(prefix: &str, allow_from: &[&str], client_certificate: Option<&str>, basic_auth: Option<&str>, satisfy: mxharden_spec::Satisfy) -> mxharden_spec::AccessRule {
    mxharden_spec::AccessRule {
        prefix: prefix.parse().unwrap(),
        allow_from: allow_from.iter().map(|network| network.parse().unwrap()).collect(),
        client_certificate: client_certificate.map(|path| path.parse().unwrap()),
        basic_auth: basic_auth.map(|path| path.parse().unwrap()),
        satisfy,
        field: "app.proxy.access[0]".to_owned(),
        client_certificate_position: None,
        basic_auth_position: None,
    }
}

fn main_config(dir: &Path, debian_tls_lines: bool) -> String {
    let dir = dir.display();
    let debian = if debian_tls_lines {
        "    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;\n    ssl_prefer_server_ciphers on;\n"
    } else {
        ""
    };
    format!(
        "pid {dir}/nginx.pid;\nerror_log {dir}/error.log;\nevents {{}}\nhttp {{\n    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n{debian}    access_log {dir}/access.log;\n    client_body_temp_path {dir}/client;\n    proxy_temp_path {dir}/proxy;\n    fastcgi_temp_path {dir}/fastcgi;\n    uwsgi_temp_path {dir}/uwsgi;\n    scgi_temp_path {dir}/scgi;\n    include {dir}/conf.d/*.conf;\n}}\n"
    )
}

impl Sandbox {
    /// Runs `nginx -t` on the Debian-like main configuration.
    pub fn nginx_test(&self) -> std::process::Output {
        Command::new("nginx")
            .arg("-t")
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(&self.main_conf)
            .args(["-e", "stderr"])
            .output()
            .expect("nginx runs; install it with scripts/install-test-deps")
    }
}

/// Runs gixy-ng on `conf` and returns its findings as JSON.
pub fn gixy_findings(conf: &Path) -> Vec<serde_json::Value> {
    let output = Command::new(venv_tool("gixy")).arg("-f").arg("json").arg(conf).output().expect("gixy runs");
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("gixy printed no JSON ({e}); stdout: {text}; stderr: {}", String::from_utf8_lossy(&output.stderr))
    })
}
