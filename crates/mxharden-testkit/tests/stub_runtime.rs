//! Tests of the `mxharden-stub-runtime` binary, over loopback and across namespaces.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use mxharden_testkit::{LogEntry, StubRuntime, curl, require_root_or_skip, wait_for_tcp};
use tempfile::TempDir;

use common::{CLIENT_V4, CLIENT_V6, SERVER_V4, SERVER_V6, linked_pair};

/// A stub runtime on an ephemeral loopback port, with its log in a temporary directory.
struct LoopbackStub {
    stub: StubRuntime,
    _dir: TempDir,
}

impl LoopbackStub {
    fn start() -> LoopbackStub {
        let dir = TempDir::new().expect("create temporary directory");
        let stub = StubRuntime::start(None, &["127.0.0.1:0"], &dir.path().join("requests.log"))
            .expect("start stub runtime on loopback");
        LoopbackStub { stub, _dir: dir }
    }

    fn address(&self) -> SocketAddr {
        self.stub.listening[0]
    }

    /// Sends `request` as is and returns everything the server sent until it closed.
    fn exchange_bytes(&self, request: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(self.address()).expect("connect to stub runtime");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request).expect("send request");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("read response");
        response
    }

    /// Like `exchange_bytes`, for responses that are text.
    fn exchange(&self, request: &[u8]) -> String {
        String::from_utf8(self.exchange_bytes(request)).expect("response is UTF-8")
    }
}

/// Splits a response into its head lines and its body.
fn split_response(response: &str) -> (Vec<&str>, &str) {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("response has a blank line after its head");
    (head.split("\r\n").collect(), body)
}

fn header<'a>(head: &[&'a str], name: &str) -> Vec<&'a str> {
    head[1..]
        .iter()
        .filter_map(|line| line.split_once(": "))
        .filter(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
        .collect()
}

#[test]
fn echoes_request_line_and_headers() {
    let stub = LoopbackStub::start();

    let response = stub
        .exchange(b"GET /xas/?a=1 HTTP/1.1\r\nHost: app.test\r\nX-Dup: one\r\nx-dup:  two\r\n\r\n");

    let (head, body) = split_response(&response);
    assert_eq!(head[0], "HTTP/1.1 200 OK");
    assert_eq!(header(&head, "Content-Type"), ["text/plain"]);
    assert_eq!(header(&head, "Connection"), ["close"]);
    assert_eq!(header(&head, "Content-Length"), [body.len().to_string()]);
    assert_eq!(
        body,
        "GET /xas/?a=1 HTTP/1.1\nHost: app.test\nX-Dup: one\nx-dup:  two\n"
    );
}

#[test]
fn session_cookie_secure_only_for_forwarded_https() {
    let stub = LoopbackStub::start();
    let cases: [(&str, &str); 5] = [
        ("", "XASSESSIONID=stub; Path=/; HttpOnly"),
        (
            "X-Forwarded-Scheme: https\r\n",
            "XASSESSIONID=stub; Path=/; HttpOnly; Secure",
        ),
        (
            "x-forwarded-scheme: https\r\n",
            "XASSESSIONID=stub; Path=/; HttpOnly; Secure",
        ),
        (
            "X-Forwarded-Scheme: http\r\n",
            "XASSESSIONID=stub; Path=/; HttpOnly",
        ),
        (
            "X-Forwarded-Proto: https\r\n",
            "XASSESSIONID=stub; Path=/; HttpOnly",
        ),
    ];

    for (extra_header, expected_cookie) in cases {
        let request = format!("GET / HTTP/1.1\r\nHost: app.test\r\n{extra_header}\r\n");
        let response = stub.exchange(request.as_bytes());

        let (head, _) = split_response(&response);
        assert_eq!(
            header(&head, "Set-Cookie"),
            [expected_cookie],
            "for extra header {extra_header:?}"
        );
    }
}

#[test]
fn head_request_has_no_body() {
    let stub = LoopbackStub::start();

    let response = stub.exchange(b"HEAD / HTTP/1.1\r\nHost: app.test\r\n\r\n");

    let (head, body) = split_response(&response);
    assert_eq!(head[0], "HTTP/1.1 200 OK");
    assert_ne!(header(&head, "Content-Length"), ["0"]);
    assert_eq!(body, "");
}

#[test]
fn request_bodies_read_before_response() {
    let stub = LoopbackStub::start();

    let fixed =
        stub.exchange(b"POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world");
    let chunked = stub.exchange(b"POST /api HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");

    assert!(fixed.starts_with("HTTP/1.1 200 OK\r\n"), "{fixed}");
    assert!(chunked.starts_with("HTTP/1.1 200 OK\r\n"), "{chunked}");
    assert!(
        !split_response(&fixed).1.contains("hello world"),
        "the body is not echoed"
    );
}

#[test]
fn malformed_request_gets_400() {
    let stub = LoopbackStub::start();

    let response = stub.exchange(b"GARBAGE\r\n\r\n");

    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{response}"
    );
    assert!(response.contains("invalid request line"), "{response}");
}

#[test]
fn websocket_upgrade_switches_protocols() {
    let stub = LoopbackStub::start();

    // The key and accept value are the example in RFC 6455, section 1.3.
    let response = stub.exchange_bytes(
        b"GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );

    let head_end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("end of head");
    let head_text = String::from_utf8(response[..head_end].to_vec()).expect("head is UTF-8");
    let head: Vec<&str> = head_text.split("\r\n").collect();
    let frames = &response[head_end + 4..];
    assert_eq!(head[0], "HTTP/1.1 101 Switching Protocols");
    assert_eq!(header(&head, "Upgrade"), ["websocket"]);
    assert_eq!(header(&head, "Connection"), ["Upgrade"]);
    assert_eq!(
        header(&head, "Sec-WebSocket-Accept"),
        ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]
    );
    // A text frame with the greeting, then a close frame with status 1000.
    assert_eq!(frames, b"\x81\x0cstub-runtime\x88\x02\x03\xe8");
}

#[test]
fn websocket_upgrade_without_key_gets_400() {
    let stub = LoopbackStub::start();

    let response = stub.exchange(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );

    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{response}"
    );
    assert!(response.contains("Sec-WebSocket-Key"), "{response}");
}

#[test]
fn log_records_each_request() {
    let stub = LoopbackStub::start();
    // A readiness probe connects and closes without a request, which must not be logged.
    wait_for_tcp(None, stub.address(), Duration::from_secs(2)).expect("stub runtime listens");

    stub.exchange(b"GET /first HTTP/1.1\r\nHost: a\r\nX-Odd: tab\there\r\n\r\n");
    stub.exchange(b"POST /second HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n");

    let entries = stub.stub.log_entries().expect("read log");
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].peer.ip().to_string(), "127.0.0.1");
    assert_eq!(entries[0].method, "GET");
    assert_eq!(entries[0].target, "/first");
    assert_eq!(entries[0].header_values("x-odd"), ["tab\there"]);
    assert_eq!(entries[1].method, "POST");
    assert_eq!(entries[1].target, "/second");
    assert_eq!(entries[1].header_values("Host"), ["b"]);
}

#[test]
fn start_fails_on_port_in_use() {
    let dir = TempDir::new().unwrap();
    let occupied = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = occupied.local_addr().unwrap().to_string();

    let error =
        StubRuntime::start(None, &[&address], &dir.path().join("log")).expect_err("port is in use");

    assert!(
        error.to_string().contains("before printing \"ready\""),
        "{error}"
    );
    assert!(
        error.to_string().contains("Address already in use"),
        "stderr not quoted: {error}"
    );
}

/// Runs curl from the client namespace and returns its output, failing the test if curl fails.
fn curl_ok(ns: &mxharden_testkit::Netns, args: &[&str]) -> Output {
    let output = curl(ns)
        .arg("--include")
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn stub_serves_other_namespace_over_both_families() {
    if !require_root_or_skip("stub_serves_other_namespace_over_both_families") {
        return;
    }
    let pair = linked_pair();
    let dir = TempDir::new().unwrap();
    let log: PathBuf = dir.path().join("requests.log");
    let stub = StubRuntime::start(Some(&pair.server), &["0.0.0.0:8000", "[::]:8000"], &log)
        .expect("start stub runtime in server namespace");
    assert_eq!(
        stub.listening,
        [
            "0.0.0.0:8000".parse().unwrap(),
            "[::]:8000".parse::<SocketAddr>().unwrap()
        ]
    );

    let ipv4_url = format!("http://{SERVER_V4}:8000/ipv4");
    let ipv6_url = format!("http://[{SERVER_V6}]:8000/ipv6");
    let plain = curl_ok(&pair.client, &["-H", "X-Test: one", &ipv4_url]);
    let forwarded = curl_ok(
        &pair.client,
        &[
            "-H",
            "X-Forwarded-Scheme: https",
            "-H",
            "X-Forwarded-Scheme: https",
            &ipv6_url,
        ],
    );

    let plain = String::from_utf8_lossy(&plain.stdout);
    let (plain_head, plain_body) = split_response(&plain);
    assert_eq!(plain_head[0], "HTTP/1.1 200 OK");
    assert!(
        plain_body.starts_with("GET /ipv4 HTTP/1.1\n"),
        "{plain_body}"
    );
    assert!(
        plain_body.lines().any(|line| line == "X-Test: one"),
        "{plain_body}"
    );
    assert_eq!(
        header(&plain_head, "Set-Cookie"),
        ["XASSESSIONID=stub; Path=/; HttpOnly"]
    );

    let forwarded = String::from_utf8_lossy(&forwarded.stdout);
    let (forwarded_head, forwarded_body) = split_response(&forwarded);
    assert!(
        forwarded_body.starts_with("GET /ipv6 HTTP/1.1\n"),
        "{forwarded_body}"
    );
    assert_eq!(
        forwarded_body
            .matches("X-Forwarded-Scheme: https\n")
            .count(),
        2,
        "{forwarded_body}"
    );
    assert_eq!(
        header(&forwarded_head, "Set-Cookie"),
        ["XASSESSIONID=stub; Path=/; HttpOnly; Secure"]
    );

    let entries: Vec<LogEntry> = stub.log_entries().expect("read log");
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].peer.ip().to_string(), CLIENT_V4);
    assert_eq!(entries[0].target, "/ipv4");
    assert_eq!(entries[0].header_values("X-Test"), ["one"]);
    assert_eq!(entries[1].peer.ip().to_string(), CLIENT_V6);
    assert_eq!(entries[1].target, "/ipv6");
    assert_eq!(
        entries[1].header_values("x-forwarded-scheme"),
        ["https", "https"]
    );
}

#[test]
fn stub_killed_when_dropped() {
    if !require_root_or_skip("stub_killed_when_dropped") {
        return;
    }
    let pair = linked_pair();
    let dir = TempDir::new().unwrap();
    let stub = StubRuntime::start(
        Some(&pair.server),
        &["0.0.0.0:8000"],
        &dir.path().join("log"),
    )
    .expect("start stub runtime");
    let pid = stub.process.id();
    assert!(PathBuf::from(format!("/proc/{pid}")).exists());

    drop(stub);

    assert!(
        !PathBuf::from(format!("/proc/{pid}")).exists(),
        "stub runtime {pid} still exists"
    );
    let output = curl(&pair.client)
        .arg(format!("http://{SERVER_V4}:8000/"))
        .output()
        .expect("run curl");
    assert_eq!(
        output.status.code(),
        Some(7),
        "expected curl's 'failed to connect' exit code: {output:?}"
    );
}
