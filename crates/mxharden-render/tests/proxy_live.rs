//! The rendered nginx files served live by Debian's nginx in a network
//! namespace, in front of the stub runtime, reached by curl and sslyze from
//! a second namespace. The access rule tests add a third namespace, an
//! outsider on another network.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use std::path::{Path, PathBuf};
use std::process::Command;

use mxharden_render::RenderContext;
use mxharden_spec::{AppSpec, Satisfy, TlsProfile};
use mxharden_testkit::{Guarded, Netns, Pki, StubRuntime, curl, make_test_pki, require_root_or_skip, veth_pair, wait_for_tcp};
use support::{BASIC_AUTH_PASSWORD, BASIC_AUTH_USER, OUTSIDE_WEB_MARKER, Sandbox, access_rule, example, sandbox, venv_tool};

const CLIENT_V4: &str = "10.232.0.1";
const SERVER_V4: &str = "10.232.0.2";
/// The outsider's link to the server: a network that no rule admits.
const OUTSIDER_V4: &str = "10.233.0.1";
const SERVER_OUTSIDER_V4: &str = "10.233.0.2";
/// The client's network, which the access rules of the tests admit.
const CLIENT_NETWORK: &str = "10.232.0.0/24";
const PARTNER_CA: &str = "/etc/ssl/certs/partner-ca.pem";
const PARTNER_HTPASSWD: &str = "/etc/nginx/partner.htpasswd";

/// Headers that every response of the proxy must carry.
const SECURITY_HEADERS: &[&str] = &[
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "content-security-policy",
];

struct LiveProxy {
    client: Netns,
    server: Netns,
    sandbox: Sandbox,
    stub: Option<StubRuntime>,
    _nginx: Guarded,
    server_name: String,
}

/// Starts the stub runtime and nginx with `app`'s rendered files in a
/// server namespace linked to a client namespace.
fn start(prefix: &str, app: &AppSpec, context: &RenderContext) -> LiveProxy {
    let client = Netns::create(&format!("{prefix}-cli")).expect("client namespace");
    let server = Netns::create(&format!("{prefix}-srv")).expect("server namespace");
    veth_pair(&client, &server, CLIENT_V4, SERVER_V4, "fd00:232::1", "fd00:232::2").expect("veth pair");

    let sandbox = sandbox(app, context);
    let log = sandbox.dir.path().join("stub.log");
    let listen = context.runtime.upstream.clone();
    let stub = StubRuntime::start(Some(&server), &[listen.as_str()], &log).expect("stub runtime starts");

    let nginx = server
        .spawn(
            "nginx",
            [
                "-p".as_ref(),
                sandbox.dir.path().as_os_str(),
                "-c".as_ref(),
                sandbox.main_conf.as_os_str(),
                "-e".as_ref(),
                "stderr".as_ref(),
                "-g".as_ref(),
                "daemon off;".as_ref(),
            ] as [&std::ffi::OsStr; 8],
        )
        .expect("nginx starts");
    for port in [80, 443] {
        let address: SocketAddr = format!("{SERVER_V4}:{port}").parse().unwrap();
        wait_for_tcp(Some(&client), address, Duration::from_secs(10)).expect("nginx listens");
    }
    LiveProxy {
        client,
        server,
        sandbox,
        stub: Some(stub),
        _nginx: nginx,
        server_name: app.server_name.to_string(),
    }
}

/// A response as curl saw it.
struct Response {
    status: u16,
    headers: BTreeMap<String, Vec<String>>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|values| values.first()).map(String::as_str)
    }
}

impl LiveProxy {
    /// Sends a request to `host` (resolved to the server) and `path`, with
    /// extra curl arguments.
    fn request(&self, scheme: &str, host: &str, path: &str, extra: &[&str]) -> Output {
        self.request_from(&self.client, SERVER_V4, scheme, host, path, extra)
    }

    /// Sends a request from namespace `from`, which reaches the server at
    /// `server_address`.
    fn request_from(&self, from: &Netns, server_address: &str, scheme: &str, host: &str, path: &str, extra: &[&str]) -> Output {
        let port = if scheme == "https" { 443 } else { 80 };
        curl(from)
            .arg("--cacert")
            .arg(&self.sandbox.pki.ca_cert)
            .arg("--resolve")
            .arg(format!("{host}:{port}:{server_address}"))
            .args(["--path-as-is", "--include"])
            .args(extra)
            .arg(format!("{scheme}://{host}{path}"))
            .output()
            .expect("curl runs")
    }

    fn get(&self, scheme: &str, path: &str, extra: &[&str]) -> Response {
        let output = self.request(scheme, &self.server_name.clone(), path, extra);
        assert!(output.status.success(), "curl {path} failed: {}", String::from_utf8_lossy(&output.stderr));
        parse_response(&String::from_utf8_lossy(&output.stdout))
    }

    fn stub_entries(&self, target_prefix: &str) -> Vec<mxharden_testkit::LogEntry> {
        let stub = self.stub.as_ref().expect("the stub runs");
        stub.log_entries().expect("stub log").into_iter().filter(|e| e.target.starts_with(target_prefix)).collect()
    }
}

fn parse_response(text: &str) -> Response {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|line| line.split_whitespace().nth(1)).and_then(|code| code.parse().ok()).unwrap_or(0);
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            headers.entry(name.trim().to_ascii_lowercase()).or_default().push(value.trim().to_owned());
        }
    }
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn assert_security_headers(what: &str, response: &Response) {
    for name in SECURITY_HEADERS {
        let values = response.headers.get(*name).cloned().unwrap_or_default();
        assert_eq!(values.len(), 1, "{what}: expected one {name} header, got {values:?}");
    }
    assert!(!response.header("server").unwrap_or("nginx").contains('/'), "{what}: the Server header names a version");
}

fn sslyze(live: &LiveProxy, profile: &str) -> Output {
    live.client
        .command(
            venv_tool("sslyze"),
            [
                format!("--mozilla_config={profile}"),
                "--certinfo_ca_file".to_owned(),
                live.sandbox.pki.ca_cert.display().to_string(),
                format!("{}:443{{{SERVER_V4}}}", live.server_name),
            ],
        )
        .output()
        .expect("sslyze runs")
}

#[test]
fn proxy_serves_app_securely() {
    if !require_root_or_skip("proxy_serves_app_securely") {
        return;
    }
    let app = example("app.yaml");
    let context = RenderContext::new(&app, Some("10.24.0.12345"));
    let mut live = start("pxlive", &app, &context);

    // Static file from web/, with the full header set.
    let index = live.get("https", "/", &[]);
    assert_eq!(index.status, 200);
    assert_eq!(index.body, "mxharden-index\n");
    assert_security_headers("GET /", &index);
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    let login = live.get("https", "/login.html", &[]);
    assert_eq!(login.header("cache-control"), Some("no-cache"));

    // The runtime's client, from the folder of the deployed version, cached
    // for a year when the request carries a cache-busting number.
    let client_js = live.get("https", "/mxclientsystem/mxui.js?637812", &[]);
    assert_eq!(client_js.body, "mxharden-runtime-copy\n");
    assert_eq!(client_js.header("cache-control"), Some("max-age=31536000"));
    assert_security_headers("GET /mxclientsystem/", &client_js);

    // A runtime path, with spoofed forwarded headers that nginx must replace.
    let xas = live.get(
        "https",
        "/xas/",
        &[
            "-H", "X-Forwarded-Scheme: http",
            "-H", "X-Forwarded-Proto: http",
            "-H", "X-Forwarded-For: 203.0.113.9",
            "-H", "X-Real-IP: 203.0.113.9",
        ],
    );
    assert_eq!(xas.status, 200);
    assert_security_headers("GET /xas/", &xas);
    let cookie = xas.header("set-cookie").expect("the runtime sets its session cookie");
    assert!(cookie.starts_with("XASSESSIONID="), "{cookie}");
    assert!(cookie.contains("; Secure"), "the session cookie lost Secure: {cookie}");
    let entries = live.stub_entries("/xas/");
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.header_values("X-Forwarded-Scheme"), ["https"]);
    assert_eq!(entry.header_values("X-Forwarded-Proto"), ["https"]);
    assert_eq!(entry.header_values("X-Forwarded-For"), [CLIENT_V4]);
    assert_eq!(entry.header_values("X-Real-IP"), [CLIENT_V4]);
    assert_eq!(entry.header_values("Host"), [live.server_name.as_str()]);

    // A REST call and a custom request handler reach the runtime unlisted.
    for path in ["/rest/orders/v1/orders", "/custom-handler/ping", "/p/overview"] {
        let response = live.get("https", path, &[]);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(live.stub_entries(path).len(), 1, "{path} did not reach the runtime");
    }

    // A WebSocket upgrade on both endpoints. curl prints the 101 and then
    // waits for data until its timeout.
    for path in ["/ws/echo", "/mxdevtools/"] {
        let output = live.request(
            "https",
            &live.server_name.clone(),
            path,
            &[
                "--http1.1", "--max-time", "2",
                "-H", "Connection: Upgrade",
                "-H", "Upgrade: websocket",
                "-H", "Sec-WebSocket-Version: 13",
                "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            ],
        );
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.starts_with("HTTP/1.1 101"), "{path}: no upgrade: {text}");
        let entries = live.stub_entries(path);
        assert_eq!(entries.len(), 1, "{path} did not reach the runtime");
        assert_eq!(entries[0].header_values("Upgrade"), ["websocket"]);
        assert_eq!(entries[0].header_values("X-Forwarded-Scheme"), ["https"]);
        assert_eq!(entries[0].header_values("X-Forwarded-For"), [CLIENT_V4]);
    }

    // Denied paths return 404 with the full header set.
    for path in ["/api-doc/", "/rest-doc/orders", "/debugger/"] {
        let response = live.get("https", path, &[]);
        assert_eq!(response.status, 404, "{path}");
        assert_security_headers(path, &response);
        assert!(live.stub_entries(path).is_empty(), "{path} reached the runtime");
    }

    // The HTTP redirect goes to the configured name and carries the headers.
    let redirect = live.get("http", "/xas/?a=1", &[]);
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("https://sales.example.com/xas/?a=1"));
    assert_security_headers("the HTTP redirect", &redirect);

    // Paths that try to leave web/ get nothing from outside it.
    for path in [
        "/../model/secret.txt",
        "/mxclientsystem/../../model/secret.txt",
        "/mxclientsystem/..%2f..%2fmodel/secret.txt",
        "/mxclientsystem..%2fmodel/secret.txt",
        "/%2e%2e/model/secret.txt",
        "/mxclientsystem/%2e%2e/%2e%2e/%2e%2e/model/secret.txt",
    ] {
        let output = live.request("https", &live.server_name.clone(), path, &[]);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(!text.contains(OUTSIDE_WEB_MARKER), "{path} served a file outside web/");
    }

    // Unknown host names are refused on both ports.
    let tls = live.request("https", "other.example.com", "/", &["--insecure"]);
    assert!(!tls.status.success(), "an unknown name got a TLS session");
    assert!(tls.stdout.is_empty());
    let plain = live.request("http", "other.example.com", "/", &[]);
    assert!(!plain.status.success(), "an unknown name got an HTTP response");
    assert!(plain.stdout.is_empty());

    // TLS as Mozilla's intermediate profile requires.
    let scan = sslyze(&live, "intermediate");
    assert!(scan.status.success(), "sslyze intermediate failed:\n{}", String::from_utf8_lossy(&scan.stdout));

    // With the runtime down, the 502 page carries the headers too.
    drop(live.stub.take());
    let down = live.get("https", "/xas/", &[]);
    assert_eq!(down.status, 502);
    assert_security_headers("the 502 page", &down);
}

#[test]
fn modern_profile_passes_sslyze() {
    if !require_root_or_skip("modern_profile_passes_sslyze") {
        return;
    }
    let app = example("app-modern.yaml");
    assert_eq!(app.proxy.tls_profile, TlsProfile::Modern);
    let context = RenderContext::new(&app, None);
    let live = start("pxmod", &app, &context);

    let scan = sslyze(&live, "modern");
    assert!(scan.status.success(), "sslyze modern failed:\n{}", String::from_utf8_lossy(&scan.stdout));

    let tls12 = live.request("https", &live.server_name.clone(), "/", &["--tls-max", "1.2"]);
    assert!(!tls12.status.success(), "the modern profile accepted TLS 1.2");

    // Opened documentation reaches the runtime; the debugger stays closed.
    let docs = live.get("https", "/rest-doc/", &[]);
    assert_eq!(docs.status, 200);
    assert_eq!(live.stub_entries("/rest-doc/").len(), 1);
    let debugger = live.get("https", "/debugger/", &[]);
    assert_eq!(debugger.status, 404);
    assert_eq!(docs.header("permissions-policy"), Some("camera=(), microphone=(), geolocation=()"));
    assert_eq!(docs.header("x-frame-options"), Some("DENY"));
}

/// Creates a namespace on a network of its own and links it to the server
/// of `live`.
fn link_outsider(live: &LiveProxy, prefix: &str) -> Netns {
    let outsider = Netns::create(&format!("{prefix}-out")).expect("outsider namespace");
    veth_pair(&outsider, &live.server, OUTSIDER_V4, SERVER_OUTSIDER_V4, "fd00:233::1", "fd00:233::2").expect("outsider veth pair");
    outsider
}

/// A client certificate and key issued by the CA of `pki`.
struct ClientCertificate {
    certificate: PathBuf,
    key: PathBuf,
}

/// Issues a client certificate for `name` with the CA of `pki`, using the
/// openssl CLI as an operator would.
fn issue_client_certificate(pki: &Pki, dir: &Path, name: &str) -> ClientCertificate {
    let openssl = |args: &[&std::ffi::OsStr]| {
        let output = Command::new("openssl").args(args).output().expect("openssl runs");
        assert!(output.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    };
    let key = dir.join(format!("{name}.key"));
    let request = dir.join(format!("{name}.csr"));
    let certificate = dir.join(format!("{name}.pem"));
    let extensions = dir.join(format!("{name}.ext"));
    std::fs::write(&extensions, "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n").unwrap();
    openssl(&["genpkey".as_ref(), "-algorithm".as_ref(), "EC".as_ref(), "-pkeyopt".as_ref(), "ec_paramgen_curve:P-256".as_ref(), "-out".as_ref(), key.as_os_str()]);
    let subject = format!("/CN={name}");
    openssl(&["req".as_ref(), "-new".as_ref(), "-key".as_ref(), key.as_os_str(), "-subj".as_ref(), subject.as_ref(), "-out".as_ref(), request.as_os_str()]);
    openssl(&[
        "x509".as_ref(), "-req".as_ref(), "-days".as_ref(), "2".as_ref(), "-in".as_ref(), request.as_os_str(),
        "-CA".as_ref(), pki.ca_cert.as_os_str(), "-CAkey".as_ref(), pki.ca_key.as_os_str(), "-CAcreateserial".as_ref(),
        "-CAserial".as_ref(), dir.join(format!("{name}.srl")).as_os_str(), "-extfile".as_ref(), extensions.as_os_str(), "-out".as_ref(), certificate.as_os_str(),
    ]);
    ClientCertificate { certificate, key }
}

/// curl arguments that present `client`.
fn cert_args(client: &ClientCertificate) -> Vec<String> {
    vec![
        "--cert".to_owned(),
        client.certificate.display().to_string(),
        "--key".to_owned(),
        client.key.display().to_string(),
    ]
}

impl LiveProxy {
    /// Sends a GET from `from` and returns the status and the response.
    fn get_from(&self, from: &Netns, path: &str, extra: &[String]) -> Response {
        let server_address = if std::ptr::eq(from, &self.client) { SERVER_V4 } else { SERVER_OUTSIDER_V4 };
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let output = self.request_from(from, server_address, "https", &self.server_name.clone(), path, &extra);
        assert!(output.status.success(), "curl {path} failed: {}", String::from_utf8_lossy(&output.stderr));
        parse_response(&String::from_utf8_lossy(&output.stdout))
    }
}

fn basic_credentials(password: &str) -> Vec<String> {
    vec!["--user".to_owned(), format!("{BASIC_AUTH_USER}:{password}")]
}

#[test]
fn access_rules_fence_paths() {
    if !require_root_or_skip("access_rules_fence_paths") {
        return;
    }
    let mut app = example("app.yaml");
    let every_check = |prefix, satisfy| access_rule(prefix, &[CLIENT_NETWORK], Some(PARTNER_CA), Some(PARTNER_HTPASSWD), satisfy);
    app.proxy.access = vec![
        access_rule("/rest/", &[CLIENT_NETWORK], None, None, Satisfy::All),
        access_rule("/mtls", &[], Some(PARTNER_CA), None, Satisfy::All),
        access_rule("/basic/", &[], None, Some(PARTNER_HTPASSWD), Satisfy::All),
        every_check("/any/", Satisfy::Any),
        every_check("/all/", Satisfy::All),
    ];
    let context = RenderContext::new(&app, None);
    let live = start("pxacc", &app, &context);
    let outsider = link_outsider(&live, "pxacc");
    let web = live.sandbox.prefix.join(app.base.relative()).join("web");
    std::fs::create_dir_all(web.join("rest")).unwrap();
    std::fs::write(web.join("rest/static.txt"), "mxharden-fenced-static\n").unwrap();
    let certificates = live.sandbox.dir.path().join("clients");
    std::fs::create_dir_all(&certificates).unwrap();
    let partner = issue_client_certificate(&live.sandbox.pki, &certificates, "partner");
    let foreign_pki_dir = live.sandbox.dir.path().join("foreign-pki");
    std::fs::create_dir_all(&foreign_pki_dir).unwrap();
    let foreign_pki = make_test_pki(&foreign_pki_dir, "foreign.example.com").expect("second PKI");
    let foreign = issue_client_certificate(&foreign_pki, &certificates, "foreign");
    let none: Vec<String> = Vec::new();

    // allow_from: the client's network reaches the runtime with the full
    // forwarded-header set. The outsider gets 403 and the runtime receives
    // nothing.
    let allowed = live.get_from(&live.client, "/rest/x", &none);
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert_security_headers("allowed /rest/x", &allowed);
    let entries = live.stub_entries("/rest/x");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].header_values("X-Forwarded-Scheme"), ["https"]);
    assert_eq!(entries[0].header_values("X-Forwarded-Proto"), ["https"]);
    assert_eq!(entries[0].header_values("X-Forwarded-For"), [CLIENT_V4]);
    assert_eq!(entries[0].header_values("Host"), [live.server_name.as_str()]);
    let denied = live.get_from(&outsider, "/rest/y", &none);
    assert_eq!(denied.status, 403);
    assert_security_headers("denied /rest/y", &denied);
    assert!(live.stub_entries("/rest/y").is_empty(), "a denied request reached the runtime");

    // The rule covers the path itself and whatever nginx normalizes into it.
    for path in ["/rest", "//rest/y", "/%72est/y", "/x/../rest/y", "/rest/./y"] {
        let response = live.get_from(&outsider, path, &none);
        assert_eq!(response.status, 403, "{path}");
    }
    let reached: Vec<String> = live.stub_entries("/").into_iter().map(|entry| entry.target).filter(|target| target.contains("est")).collect();
    assert_eq!(reached, ["/rest/x"], "a spelling of /rest reached the runtime");

    // Static files under the prefix: served to the client, fenced for the outsider.
    let static_file = live.get_from(&live.client, "/rest/static.txt", &none);
    assert_eq!(static_file.body, "mxharden-fenced-static\n");
    assert_eq!(live.get_from(&outsider, "/rest/static.txt", &none).status, 403);

    // Paths outside every rule are unaffected, for the outsider too, even
    // though the server requests a certificate from every client.
    assert_eq!(live.get_from(&outsider, "/", &none).body, "mxharden-index\n");
    assert_eq!(live.get_from(&outsider, "/xas/", &none).status, 200);
    assert_eq!(live.stub_entries("/xas/").len(), 1);
    assert_eq!(live.get_from(&outsider, "/restricted", &none).status, 200, "/rest must not cover /restricted");

    // client_certificate: a certificate from the CA passes and none gives
    // 403. One from another CA fails verification, so nginx returns 400 on
    // this path and on every other.
    assert_eq!(live.get_from(&outsider, "/mtls/x", &none).status, 403);
    assert!(live.stub_entries("/mtls/x").is_empty());
    let with_certificate = live.get_from(&outsider, "/mtls/x", &cert_args(&partner));
    assert_eq!(with_certificate.status, 200);
    assert_eq!(live.stub_entries("/mtls/x").len(), 1);
    assert_eq!(live.get_from(&outsider, "/mtls/x", &cert_args(&foreign)).status, 400);
    assert_eq!(live.get_from(&outsider, "/xas/foreign", &cert_args(&foreign)).status, 400);

    // basic_auth: 401 with a challenge without or with wrong credentials,
    // 200 with them. The runtime never receives the credentials.
    let challenge = live.get_from(&outsider, "/basic/x", &none);
    assert_eq!(challenge.status, 401);
    assert!(challenge.header("www-authenticate").is_some_and(|value| value.starts_with("Basic ")), "{:?}", challenge.headers);
    assert_security_headers("401 /basic/x", &challenge);
    assert_eq!(live.get_from(&outsider, "/basic/x", &basic_credentials("wrong-password")).status, 401);
    assert!(live.stub_entries("/basic/x").is_empty());
    assert_eq!(live.get_from(&outsider, "/basic/x", &basic_credentials(BASIC_AUTH_PASSWORD)).status, 200);
    let entries = live.stub_entries("/basic/x");
    assert_eq!(entries.len(), 1);
    assert!(entries[0].header_values("Authorization").is_empty(), "the runtime saw the proxy's credentials");

    // satisfy any: one passing check is enough. Without any, basic
    // authentication's 401 wins over the other checks' 403.
    assert_eq!(live.get_from(&live.client, "/any/address", &none).status, 200);
    assert_eq!(live.get_from(&outsider, "/any/certificate", &cert_args(&partner)).status, 200);
    assert_eq!(live.get_from(&outsider, "/any/password", &basic_credentials(BASIC_AUTH_PASSWORD)).status, 200);
    assert_eq!(live.get_from(&outsider, "/any/nothing", &none).status, 401);
    assert!(live.stub_entries("/any/nothing").is_empty());

    // satisfy all: every check must pass.
    let mut both = cert_args(&partner);
    both.extend(basic_credentials(BASIC_AUTH_PASSWORD));
    assert_eq!(live.get_from(&live.client, "/all/every", &both).status, 200);
    assert_eq!(live.get_from(&live.client, "/all/no-password", &cert_args(&partner)).status, 401);
    assert_eq!(live.get_from(&live.client, "/all/no-certificate", &basic_credentials(BASIC_AUTH_PASSWORD)).status, 403);
    assert_eq!(live.get_from(&outsider, "/all/outsider", &both).status, 403);
    // The first failing check sets the status, in the order allow_from,
    // basic_auth, client_certificate.
    assert_eq!(live.get_from(&outsider, "/all/nothing", &none).status, 403);
    assert_eq!(live.get_from(&live.client, "/all/nothing", &none).status, 401);
    for path in ["/all/no-password", "/all/no-certificate", "/all/outsider"] {
        assert!(live.stub_entries(path).is_empty(), "{path} reached the runtime");
    }
}

#[test]
fn site_rule_yields_to_longer_prefix() {
    if !require_root_or_skip("site_rule_yields_to_longer_prefix") {
        return;
    }
    let mut app = example("app.yaml");
    app.proxy.access = vec![
        access_rule("/", &[], None, Some(PARTNER_HTPASSWD), Satisfy::All),
        access_rule("/rest/", &[CLIENT_NETWORK], None, None, Satisfy::All),
    ];
    let context = RenderContext::new(&app, Some("10.24.0.12345"));
    let live = start("pxsite", &app, &context);
    let outsider = link_outsider(&live, "pxsite");
    let none: Vec<String> = Vec::new();
    let password = basic_credentials(BASIC_AUTH_PASSWORD);

    // The site rule fences static files, the client and runtime paths alike.
    for path in ["/", "/index.html", "/app.js", "/mxclientsystem/mxui.js", "/xas/", "/file/1", "/ws/echo"] {
        assert_eq!(live.get_from(&outsider, path, &none).status, 401, "{path}");
    }
    assert_eq!(live.get_from(&outsider, "/", &password).body, "mxharden-index\n");
    assert_eq!(live.get_from(&outsider, "/mxclientsystem/mxui.js", &password).body, "mxharden-runtime-copy\n");
    let xas = live.get_from(&outsider, "/xas/", &password);
    assert_eq!(xas.status, 200);
    assert!(live.stub_entries("/xas/")[0].header_values("Authorization").is_empty());
    // Denied paths stay 404 for everyone.
    assert_eq!(live.get_from(&outsider, "/debugger/", &password).status, 404);

    // /rest/ follows its own rule alone: the client's network passes without
    // a password, and a password does not let the outsider in.
    assert_eq!(live.get_from(&live.client, "/rest/x", &none).status, 200);
    assert_eq!(live.get_from(&outsider, "/rest/y", &password).status, 403);
    assert!(live.stub_entries("/rest/y").is_empty());
}
