//! The rendered nginx files served live by Debian's nginx in a network
//! namespace, in front of the stub runtime, reached by curl and sslyze from
//! a second namespace.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use mxharden_render::RenderContext;
use mxharden_spec::{AppSpec, TlsProfile};
use mxharden_testkit::{Guarded, Netns, StubRuntime, curl, require_root_or_skip, veth_pair, wait_for_tcp};
use support::{OUTSIDE_WEB_MARKER, Sandbox, example, sandbox, venv_tool};

const CLIENT_V4: &str = "10.232.0.1";
const SERVER_V4: &str = "10.232.0.2";

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
    _server: Netns,
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
        _server: server,
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
        let port = if scheme == "https" { 443 } else { 80 };
        curl(&self.client)
            .arg("--cacert")
            .arg(&self.sandbox.pki.ca_cert)
            .arg("--resolve")
            .arg(format!("{host}:{port}:{SERVER_V4}"))
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
