//! End-to-end tests of the files that `mxharden apply` writes for examples/app.yaml, run on
//! real components: the generated nginx site in a real nginx, the generated nftables rules in
//! a real kernel, and the stub Mendix runtime behind them.
//!
//! Each test applies the example app to its own sandbox tree, then builds two network
//! namespaces linked by a veth pair. The server namespace runs the stub runtime on every
//! address of ports 8000 and 8090, so that only the firewall can keep other hosts out, and an
//! nginx with the generated site. The client namespace sends requests with curl.
//!
//! The tests need root (they skip without it, and fail under `CI=true`), iproute2, nginx,
//! nftables, curl, openssl and util-linux, and the `mxharden-stub-runtime` binary: run
//! `cargo build -p mxharden-testkit --bins` first, or set `MXHARDEN_STUB_RUNTIME`.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mxharden_testkit::sandbox::{copy_tree, repository_root};
use mxharden_testkit::{
    Guarded, LogEntry, Netns, Pki, StubRuntime, connect_from, curl, describe, make_test_pki,
    require_root_or_skip, veth_pair, wait_for_tcp,
};
use tempfile::TempDir;

const CLIENT_V4: &str = "10.91.0.1";
const SERVER_V4: &str = "10.91.0.2";
const CLIENT_V6: &str = "fd00:91::1";
const SERVER_V6: &str = "fd00:91::2";

/// Values from examples/app.yaml, and the nftables table name that mxharden derives from the
/// app name.
const APP_NAME: &str = "sales";
const SERVER_NAME: &str = "sales.example.com";
const RUNTIME_PORT: u16 = 8000;
const ADMIN_PORT: u16 = 8090;
const NFT_TABLE: &str = "mxharden_sales";

/// Addresses that the stub runtime listens on. They include the wildcards on purpose, so that
/// only the firewall keeps the client away from the runtime ports.
const STUB_LISTEN: [&str; 4] = ["0.0.0.0:8000", "[::]:8000", "0.0.0.0:8090", "[::]:8090"];

/// Programs that the tests run, besides `ip`, which `require_root_or_skip` checks.
const REQUIRED_PROGRAMS: [&str; 6] = ["nginx", "nft", "curl", "openssl", "unshare", "mount"];

/// Maximum time that nginx gets to bind its listeners.
const NGINX_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Maximum time for one TCP connection attempt to a runtime port. The firewall drops the SYN
/// packets to a blocked port, so each blocked check takes this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts nginx in a private mount namespace where the sandbox's srv/ and etc/ssl/ appear at
/// /srv and /etc/ssl, the host paths that the generated site names. The paths come in as
/// positional parameters, so no path is ever parsed as shell code.
const NGINX_LAUNCH_SCRIPT: &str = r#"mount --bind "$1" /srv && mount --bind "$2" /etc/ssl && exec nginx -p "$3" -c "$4" -e "$5" -g "daemon off;""#;

/// Sandbox tree, namespaces and servers of one test, torn down on drop.
///
/// Fields drop in declaration order. The nginx master process and the stub runtime go first,
/// then the namespaces, whose drop kills the nginx workers, and then the files.
struct Scenario {
    _nginx: Guarded,
    stub: StubRuntime,
    client: Netns,
    server: Netns,
    pki: Pki,
    sandbox: PathBuf,
    nginx_dir: PathBuf,
    _work: TempDir,
}

impl Scenario {
    /// Applies the example app to a new sandbox and starts the namespaces, the firewall
    /// rules, the stub runtime and nginx. Returns `None` when the test is skipped.
    fn start(test_name: &str) -> Option<Scenario> {
        if !require_root_or_skip(test_name) || !require_programs_or_skip(test_name) {
            return None;
        }
        require_stub_runtime();

        let work = TempDir::new().expect("create temporary directory");
        // nginx's workers run as www-data and need to reach their temp folders in here.
        fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755))
            .expect("make the temporary directory traversable");
        let sandbox = work.path().join("root");
        let pki = prepare_sandbox(&sandbox, &work.path().join("pki"));
        apply_example_app(&sandbox);

        let server = Netns::create("e2e-srv").expect("create server namespace");
        let client = Netns::create("e2e-cli").expect("create client namespace");
        veth_pair(&client, &server, CLIENT_V4, SERVER_V4, CLIENT_V6, SERVER_V6)
            .expect("link client and server namespaces");

        load_firewall_rules(&server, &sandbox);

        let stub = StubRuntime::start(Some(&server), &STUB_LISTEN, &work.path().join("stub.log"))
            .expect("start stub runtime in the server namespace");

        let nginx_dir = work.path().join("nginx");
        let nginx = start_nginx(&server, &sandbox, &nginx_dir);

        Some(Scenario {
            _nginx: nginx,
            stub,
            client,
            server,
            pki,
            sandbox,
            nginx_dir,
            _work: work,
        })
    }

    /// Sends a request from the client namespace to `url`, whose host name `SERVER_NAME`
    /// resolves to `server_address`, and returns the parsed response.
    fn request(&self, url: &str, server_address: &str, extra_args: &[&str]) -> HttpResponse {
        let port = if url.starts_with("https://") { 443 } else { 80 };
        let resolved = if server_address.contains(':') {
            format!("{SERVER_NAME}:{port}:[{server_address}]")
        } else {
            format!("{SERVER_NAME}:{port}:{server_address}")
        };
        let output = curl(&self.client)
            .arg("--include")
            .arg("--resolve")
            .arg(&resolved)
            .arg("--cacert")
            .arg(&self.pki.ca_cert)
            .args(extra_args)
            .arg(url)
            .output()
            .expect("run curl in the client namespace");
        assert!(
            output.status.success(),
            "curl {url} (resolved as {resolved}) failed: {}\n{}",
            describe(&output),
            self.nginx_error_log()
        );
        HttpResponse::parse(&String::from_utf8_lossy(&output.stdout))
    }

    fn stub_log(&self) -> Vec<LogEntry> {
        self.stub.log_entries().expect("read stub runtime log")
    }

    /// Returns the stub runtime log entries whose request target is `target`.
    fn stub_requests_for(&self, target: &str) -> Vec<LogEntry> {
        self.stub_log()
            .into_iter()
            .filter(|entry| entry.target == target)
            .collect()
    }

    fn nginx_error_log(&self) -> String {
        read_for_message(&self.nginx_dir.join("error.log"))
    }

    fn web_index_html(&self) -> String {
        let path = self.sandbox.join("srv/mendix/sales/web/index.html");
        fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()))
    }
}

/// Response parsed from `curl --include` output.
#[derive(Debug)]
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    raw: String,
}

impl HttpResponse {
    fn parse(raw: &str) -> HttpResponse {
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("response has no blank line after its head: {raw:?}"));
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("invalid status line {status_line:?} in {raw:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect();
        HttpResponse {
            status,
            headers,
            body: body.to_owned(),
            raw: raw.to_owned(),
        }
    }

    /// Returns the values of every header named `name`, compared case-insensitively.
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// Checks that every program in `REQUIRED_PROGRAMS` is on `PATH`, with the same skip rule as
/// `require_root_or_skip`: print a skip line and return false, or panic under `CI=true`.
fn require_programs_or_skip(test_name: &str) -> bool {
    let missing: Vec<&str> = REQUIRED_PROGRAMS
        .into_iter()
        .filter(|program| find_in_path(program).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }

    let problem =
        format!("programs {missing:?} not found on PATH; on Debian run scripts/install-test-deps");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test_name}: cannot run because {problem}. CI=true forbids skipping");
    }
    eprintln!("SKIPPED {test_name}: {problem}");
    false
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(program))
        .find(|candidate| candidate.is_file())
}

/// Panics with the testkit's instructions when the stub runtime binary is missing. A missing
/// binary is a build step left out, not a host limit, so the test never skips for it.
fn require_stub_runtime() {
    if let Err(error) = mxharden_testkit::stub::stub_runtime_path() {
        panic!("the stub runtime binary is required: {error}");
    }
}

/// Copies examples/root to `sandbox` and installs a test certificate for `SERVER_NAME` where
/// examples/app.yaml expects it. Returns the PKI, whose CA certificate the client trusts.
fn prepare_sandbox(sandbox: &Path, pki_dir: &Path) -> Pki {
    copy_tree(&repository_root().join("examples/root"), sandbox);

    fs::create_dir(pki_dir).expect("create PKI directory");
    let pki = make_test_pki(pki_dir, SERVER_NAME).expect("create test PKI");
    let certificate = sandbox.join("etc/ssl/certs/sales.pem");
    let key = sandbox.join("etc/ssl/private/sales.key");
    fs::copy(&pki.leaf_chain, &certificate).expect("install the certificate chain");
    fs::copy(&pki.leaf_key, &key).expect("install the private key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod 0600 the key");
    pki
}

/// Runs `mxharden apply --root SANDBOX examples/app.yaml` and asserts that it succeeds.
fn apply_example_app(sandbox: &Path) {
    let app_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/app.yaml");
    let output = Command::new(env!("CARGO_BIN_EXE_mxharden"))
        .arg("apply")
        .arg("--root")
        .arg(sandbox)
        .arg(&app_file)
        .stdin(Stdio::null())
        .output()
        .expect("run mxharden apply");
    assert!(
        output.status.success(),
        "mxharden apply --root {} {} failed: {}",
        sandbox.display(),
        app_file.display(),
        describe(&output)
    );
}

/// Loads the generated nftables file into the server namespace's ruleset.
fn load_firewall_rules(server: &Netns, sandbox: &Path) {
    let rules = sandbox.join(format!("etc/mxharden/nftables/{APP_NAME}.nft"));
    let output = server
        .command("nft", ["-f"])
        .arg(&rules)
        .stdin(Stdio::null())
        .output()
        .expect("run nft in the server namespace");
    assert!(
        output.status.success(),
        "nft -f {} failed in the server namespace: {}\nrules:\n{}",
        rules.display(),
        describe(&output),
        read_for_message(&rules)
    );
}

/// Writes a main nginx.conf in `nginx_dir` that includes the generated site, starts nginx
/// with it in the server namespace and waits until it listens on ports 80 and 443.
fn start_nginx(server: &Netns, sandbox: &Path, nginx_dir: &Path) -> Guarded {
    fs::create_dir(nginx_dir).expect("create nginx directory");
    // The glob takes the site and the shared http-level file that every
    // generated site relies on (maps, catch-all servers).
    let site = sandbox.join("etc/nginx/conf.d/*.conf");
    let config = nginx_dir.join("nginx.conf");
    fs::write(&config, main_nginx_config(nginx_dir, &site)).expect("write nginx.conf");

    let error_log = nginx_dir.join("error.log");
    let stderr_path = nginx_dir.join("stderr.log");
    let stderr = fs::File::create(&stderr_path).expect("create nginx stderr file");
    let mut command = server.command(
        "unshare",
        ["--mount", "--propagation", "private", "--", "sh", "-c"],
    );
    command
        .arg(NGINX_LAUNCH_SCRIPT)
        .arg("sh")
        .arg(sandbox.join("srv"))
        .arg(sandbox.join("etc/ssl"))
        .arg(format!("{}/", nginx_dir.display()))
        .arg(&config)
        .arg(&error_log)
        .stdout(Stdio::null())
        .stderr(stderr);
    let mut nginx = Guarded::spawn(command.stdin(Stdio::null())).expect("start nginx");

    let deadline = Instant::now() + NGINX_START_TIMEOUT;
    let listeners: [SocketAddr; 4] = [
        "127.0.0.1:80".parse().unwrap(),
        "[::1]:80".parse().unwrap(),
        "127.0.0.1:443".parse().unwrap(),
        "[::1]:443".parse().unwrap(),
    ];
    for address in listeners {
        loop {
            let exit = nginx.0.try_wait().expect("check whether nginx is running");
            if let Some(status) = exit {
                panic!(
                    "nginx exited with {status} before it listened on {address}\n\
                     stderr: {}\nerror.log: {}",
                    read_for_message(&stderr_path),
                    read_for_message(&error_log)
                );
            }
            let attempt = wait_for_tcp(Some(server), address, Duration::from_millis(200));
            match attempt {
                Ok(()) => break,
                Err(error) if Instant::now() >= deadline => panic!(
                    "nginx did not listen on {address} within {NGINX_START_TIMEOUT:?}: {error}\n\
                     stderr: {}\nerror.log: {}",
                    read_for_message(&stderr_path),
                    read_for_message(&error_log)
                ),
                Err(_) => {}
            }
        }
    }
    nginx
}

/// Returns a minimal main nginx configuration that keeps every file nginx writes in
/// `nginx_dir` and includes `site`.
fn main_nginx_config(nginx_dir: &Path, site: &Path) -> String {
    let quoted = |path: &Path| {
        let text = path.to_str().expect("temporary paths are UTF-8");
        assert!(
            !text.contains(['"', '\\', '$', '\n']),
            "path {text:?} contains a character that nginx.conf would need escaped"
        );
        format!("\"{text}\"")
    };
    let dir = |name: &str| quoted(&nginx_dir.join(name));
    format!(
        "# Main configuration for the nginx that serves the generated site in e2e_proxy.rs.\n\
         # Debian's nginx package (nginx-common's /etc/nginx/nginx.conf) runs its workers\n\
         # as www-data. This one does too, which checks that web/ is readable by them.\n\
         user www-data;\n\
         worker_processes 1;\n\
         pid {pid};\n\
         error_log {error_log} info;\n\
         \n\
         events {{\n\
         \x20   worker_connections 64;\n\
         }}\n\
         \n\
         http {{\n\
         \x20   include /etc/nginx/mime.types;\n\
         \x20   default_type application/octet-stream;\n\
         \x20   access_log {access_log};\n\
         \x20   client_body_temp_path {client_body};\n\
         \x20   proxy_temp_path {proxy};\n\
         \x20   fastcgi_temp_path {fastcgi};\n\
         \x20   uwsgi_temp_path {uwsgi};\n\
         \x20   scgi_temp_path {scgi};\n\
         \x20   include {site};\n\
         }}\n",
        pid = dir("nginx.pid"),
        error_log = dir("error.log"),
        access_log = dir("access.log"),
        client_body = dir("client_body"),
        proxy = dir("proxy"),
        fastcgi = dir("fastcgi"),
        uwsgi = dir("uwsgi"),
        scgi = dir("scgi"),
        site = quoted(site),
    )
}

fn runtime_addresses(ipv4: &str, ipv6: &str) -> Vec<SocketAddr> {
    let mut addresses = Vec::new();
    for port in [RUNTIME_PORT, ADMIN_PORT] {
        addresses.push(format!("{ipv4}:{port}").parse().unwrap());
        addresses.push(format!("[{ipv6}]:{port}").parse().unwrap());
    }
    addresses
}

/// Returns the contents of `path` for a failure message, or why they could not be read.
fn read_for_message(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|error| format!("(failed to read {}: {error})", path.display()))
}

#[test]
fn static_index_served_by_nginx() {
    let Some(scenario) = Scenario::start("static_index_served_by_nginx") else {
        return;
    };

    let response = scenario.request(&format!("https://{SERVER_NAME}/"), SERVER_V4, &[]);

    assert_eq!(response.status, 200, "response: {}", response.raw);
    assert_eq!(
        response.body,
        scenario.web_index_html(),
        "body differs from web/index.html; response: {}",
        response.raw
    );
    assert_eq!(
        response.header_values("Content-Type"),
        ["text/html"],
        "response: {}",
        response.raw
    );
    let stub_log = scenario.stub_log();
    assert!(
        stub_log.is_empty(),
        "nginx should serve / from web/, but the stub runtime received requests: {stub_log:#?}"
    );
}

#[test]
fn runtime_paths_proxied_with_https_headers() {
    let Some(scenario) = Scenario::start("runtime_paths_proxied_with_https_headers") else {
        return;
    };

    let response = scenario.request(
        &format!("https://{SERVER_NAME}/xas/"),
        SERVER_V4,
        &[
            "--header",
            "X-Forwarded-Scheme: http",
            "--header",
            "X-Forwarded-Proto: http",
        ],
    );

    assert_eq!(response.status, 200, "response: {}", response.raw);
    let xas_requests = scenario.stub_requests_for("/xas/");
    assert_eq!(
        xas_requests.len(),
        1,
        "expected one /xas/ request at the stub runtime; log: {:#?}",
        scenario.stub_log()
    );
    let xas_request = &xas_requests[0];
    assert_eq!(
        xas_request.header_values("X-Forwarded-Scheme"),
        ["https"],
        "the client's X-Forwarded-Scheme must be replaced; stub saw: {xas_request:#?}"
    );
    assert_eq!(
        xas_request.header_values("X-Forwarded-Proto"),
        ["https"],
        "the client's X-Forwarded-Proto must be replaced; stub saw: {xas_request:#?}"
    );
    assert_eq!(
        xas_request.header_values("X-Real-IP"),
        [CLIENT_V4],
        "stub saw: {xas_request:#?}"
    );
    let session_cookies: Vec<&str> = response
        .header_values("Set-Cookie")
        .into_iter()
        .filter(|cookie| cookie.starts_with("XASSESSIONID="))
        .collect();
    assert_eq!(
        session_cookies.len(),
        1,
        "expected one XASSESSIONID cookie; response: {}",
        response.raw
    );
    assert!(
        session_cookies[0]
            .split(';')
            .any(|attribute| attribute.trim().eq_ignore_ascii_case("Secure")),
        "XASSESSIONID cookie lacks the Secure attribute; response: {}",
        response.raw
    );

    // The site has no fixed list of runtime paths: whatever is not a file in web/ goes to
    // the runtime, including custom request handlers.
    for path in ["/rest/orders", "/odata/x", "/custom-handler/report"] {
        let response = scenario.request(&format!("https://{SERVER_NAME}{path}"), SERVER_V4, &[]);

        assert_eq!(response.status, 200, "{path}: response: {}", response.raw);
        let requests = scenario.stub_requests_for(path);
        assert_eq!(
            requests.len(),
            1,
            "expected one {path} request at the stub runtime; log: {:#?}",
            scenario.stub_log()
        );
    }
}

#[test]
fn plain_http_redirects_to_https() {
    let Some(scenario) = Scenario::start("plain_http_redirects_to_https") else {
        return;
    };

    let response = scenario.request(&format!("http://{SERVER_NAME}/some/path"), SERVER_V4, &[]);

    assert_eq!(response.status, 301, "response: {}", response.raw);
    assert_eq!(
        response.header_values("Location"),
        [format!("https://{SERVER_NAME}/some/path").as_str()],
        "response: {}",
        response.raw
    );

    // A request for another host name gets no answer at all: the catch-all
    // server closes the connection, so the app is never served, nor
    // redirected to, under a name an attacker picks.
    let spoofed = curl(&scenario.client)
        .arg("--include")
        .arg("--resolve")
        .arg(format!("{SERVER_NAME}:80:{SERVER_V4}"))
        .args(["--header", "Host: attacker.example.net"])
        .arg(format!("http://{SERVER_NAME}/some/path"))
        .output()
        .expect("run curl in the client namespace");
    assert_eq!(spoofed.status.code(), Some(52), "expected an empty reply: {}", describe(&spoofed));
    let stub_log = scenario.stub_log();
    assert!(
        stub_log.is_empty(),
        "plain HTTP requests must not reach the runtime; stub log: {stub_log:#?}"
    );
}

#[test]
fn https_works_over_ipv6() {
    let Some(scenario) = Scenario::start("https_works_over_ipv6") else {
        return;
    };

    let index = scenario.request(&format!("https://{SERVER_NAME}/"), SERVER_V6, &["--ipv6"]);

    assert_eq!(index.status, 200, "response: {}", index.raw);
    assert_eq!(
        index.body,
        scenario.web_index_html(),
        "body differs from web/index.html; response: {}",
        index.raw
    );

    let proxied = scenario.request(
        &format!("https://{SERVER_NAME}/xas/"),
        SERVER_V6,
        &["--ipv6"],
    );

    assert_eq!(proxied.status, 200, "response: {}", proxied.raw);
    let xas_requests = scenario.stub_requests_for("/xas/");
    assert_eq!(
        xas_requests.len(),
        1,
        "expected one /xas/ request at the stub runtime; log: {:#?}",
        scenario.stub_log()
    );
    assert_eq!(
        xas_requests[0].header_values("X-Real-IP"),
        [CLIENT_V6],
        "the request should have reached nginx over IPv6; stub saw: {:#?}",
        xas_requests[0]
    );
}

#[test]
fn runtime_ports_closed_to_other_hosts() {
    let Some(scenario) = Scenario::start("runtime_ports_closed_to_other_hosts") else {
        return;
    };
    let from_client = runtime_addresses(SERVER_V4, SERVER_V6);
    let from_server = runtime_addresses("127.0.0.1", "::1");

    for (address, outcome) in connect_from(&scenario.client, &from_client, CONNECT_TIMEOUT) {
        // A refused connection would mean that nothing listens, so the firewall would be
        // untested. Dropped packets make the attempt time out.
        assert!(
            matches!(&outcome, Err(error) if error.kind() == io::ErrorKind::TimedOut),
            "a connection from the client to {address} should time out, got {outcome:?}"
        );
    }
    for (address, outcome) in connect_from(&scenario.server, &from_server, CONNECT_TIMEOUT) {
        assert!(
            outcome.is_ok(),
            "the server should reach its own {address} over loopback, got {outcome:?}"
        );
    }

    // Control: without the table, the same connections succeed, so the generated rules are
    // what blocked them and the stub runtime listens on the veth addresses.
    let output = scenario
        .server
        .command("nft", ["delete", "table", "inet", NFT_TABLE])
        .stdin(Stdio::null())
        .output()
        .expect("run nft in the server namespace");
    assert!(
        output.status.success(),
        "nft delete table inet {NFT_TABLE} failed: {}",
        describe(&output)
    );
    for (address, outcome) in connect_from(&scenario.client, &from_client, CONNECT_TIMEOUT) {
        assert!(
            outcome.is_ok(),
            "without the firewall table the client should reach {address}, got {outcome:?}"
        );
    }
}
