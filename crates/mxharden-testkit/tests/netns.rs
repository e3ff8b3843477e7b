//! Tests of namespace creation, deletion, veth links and the client helpers.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use mxharden_testkit::{Netns, curl, require_root_or_skip, veth_pair, wait_for_tcp};

use common::{CLIENT_V4, CLIENT_V6, SERVER_V4, SERVER_V6, linked_pair};

fn listed_namespaces() -> String {
    let output = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip netns list");
    assert!(output.status.success(), "ip netns list failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn ip_in(ns: &Netns, args: &[&str]) -> String {
    let output = Command::new("ip")
        .arg("-n")
        .arg(ns.name())
        .args(args)
        .output()
        .expect("run ip");
    assert!(
        output.status.success(),
        "ip -n {} {args:?} failed: {output:?}",
        ns.name()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn create_rejects_invalid_prefix() {
    // Validation happens before any `ip` command, so this test needs no root.
    for prefix in [
        "",
        "Upper",
        "with space",
        "a/b",
        "this-prefix-is-far-too-long",
    ] {
        let error = Netns::create(prefix).expect_err(prefix);
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::InvalidInput,
            "prefix {prefix:?}"
        );
    }
}

#[test]
fn namespace_deleted_on_drop() {
    if !require_root_or_skip("namespace_deleted_on_drop") {
        return;
    }
    let ns = Netns::create("tk-drop").expect("create namespace");
    let name = ns.name().to_owned();

    assert!(
        name.starts_with(&format!("tk-drop-{}-", std::process::id())),
        "unexpected name {name}"
    );
    assert!(
        listed_namespaces()
            .lines()
            .any(|line| line.split_whitespace().next() == Some(&name))
    );
    assert!(
        ip_in(&ns, &["link", "show", "lo"]).contains("UP"),
        "lo is not up in {name}"
    );

    drop(ns);

    assert!(
        !listed_namespaces().contains(&name),
        "{name} still listed after drop"
    );
    assert!(
        !Path::new("/run/netns").join(&name).exists(),
        "/run/netns/{name} still exists"
    );
}

#[test]
fn namespace_names_unique() {
    if !require_root_or_skip("namespace_names_unique") {
        return;
    }
    let first = Netns::create("tk-uniq").expect("create first namespace");
    let second = Netns::create("tk-uniq").expect("create second namespace");

    assert_ne!(first.name(), second.name());
}

#[test]
fn drop_kills_processes_inside() {
    if !require_root_or_skip("drop_kills_processes_inside") {
        return;
    }
    let ns = Netns::create("tk-kill").expect("create namespace");
    let log = tempfile::NamedTempFile::new().expect("create log file");
    // A bare Child, not a Guarded one, so only the namespace's Drop can stop it.
    let mut child = ns
        .command(
            mxharden_testkit::stub::stub_runtime_path().expect("find stub runtime"),
            ["--listen", "127.0.0.1:8000", "--log"],
        )
        .arg(log.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start stub runtime");
    wait_for_tcp(
        Some(&ns),
        "127.0.0.1:8000".parse().unwrap(),
        Duration::from_secs(10),
    )
    .expect("stub runtime listens");

    drop(ns);

    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "child {} still running after the namespace was dropped",
            child.id()
        );
        thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "child ended with {status}, expected SIGKILL"
    );
}

#[test]
fn veth_pair_assigns_addresses() {
    if !require_root_or_skip("veth_pair_assigns_addresses") {
        return;
    }
    let pair = linked_pair();

    let client_addresses = ip_in(
        &pair.client,
        &["addr", "show", "dev", &pair.veth.a_interface],
    );
    let server_addresses = ip_in(
        &pair.server,
        &["addr", "show", "dev", &pair.veth.b_interface],
    );

    assert!(
        client_addresses.contains(&format!("inet {CLIENT_V4}/24")),
        "{client_addresses}"
    );
    assert!(
        client_addresses.contains(&format!("inet6 {CLIENT_V6}/64")),
        "{client_addresses}"
    );
    assert!(
        server_addresses.contains(&format!("inet {SERVER_V4}/24")),
        "{server_addresses}"
    );
    assert!(
        server_addresses.contains(&format!("inet6 {SERVER_V6}/64")),
        "{server_addresses}"
    );
    // `nodad` makes the ULA address usable at once. The kernel's own link-local address may
    // still be tentative, which does not matter for the tests.
    let server_v6_line = server_addresses
        .lines()
        .find(|line| line.contains(SERVER_V6))
        .unwrap();
    assert!(
        !server_v6_line.contains("tentative"),
        "{SERVER_V6} still in DAD: {server_v6_line}"
    );
    assert!(pair.veth.a_interface.len() <= 15);
}

#[test]
fn veth_pair_carries_tcp_both_families() {
    if !require_root_or_skip("veth_pair_carries_tcp_both_families") {
        return;
    }
    let pair = linked_pair();

    for (server_address, client_address) in [
        (format!("{SERVER_V4}:9000"), CLIENT_V4),
        (format!("[{SERVER_V6}]:9000"), CLIENT_V6),
    ] {
        let server_address: SocketAddr = server_address.parse().unwrap();
        // The listening socket stays in the server namespace after run_in returns.
        let listener = pair
            .server
            .run_in(|| TcpListener::bind(server_address))
            .expect("enter server namespace")
            .expect("bind in server namespace");

        let sender = thread::scope(|scope| {
            let sender = scope.spawn(|| {
                pair.client
                    .run_in(|| -> std::io::Result<()> {
                        let mut stream =
                            TcpStream::connect_timeout(&server_address, Duration::from_secs(5))?;
                        stream.write_all(b"hello")
                    })
                    .expect("enter client namespace")
            });
            let (mut accepted, peer) = listener.accept().expect("accept from client namespace");
            let mut received = String::new();
            accepted
                .read_to_string(&mut received)
                .expect("read from client");

            assert_eq!(received, "hello");
            assert_eq!(peer.ip().to_string(), client_address);
            sender.join().unwrap()
        });
        sender.expect("send from client namespace");
    }
}

#[test]
fn veth_pair_rejects_non_test_addresses() {
    if !require_root_or_skip("veth_pair_rejects_non_test_addresses") {
        return;
    }
    let a = Netns::create("tk-bad").expect("create namespace a");
    let b = Netns::create("tk-bad").expect("create namespace b");

    let cases = [
        ("192.168.1.1", "10.0.0.2", "fd00::1", "fd00::2"),
        ("10.0.0.1", "8.8.8.8", "fd00::1", "fd00::2"),
        ("10.0.0.1", "10.0.0.2", "2001:db8::1", "fd00::2"),
        ("10.0.0.1/24", "10.0.0.2", "fd00::1", "fd00::2"),
    ];
    for (a_v4, b_v4, a_v6, b_v6) in cases {
        let error =
            veth_pair(&a, &b, a_v4, b_v4, a_v6, b_v6).expect_err("non-test address accepted");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
    }
    assert!(veth_pair(&a, &a, "10.0.0.1", "10.0.0.2", "fd00::1", "fd00::2").is_err());
    assert!(
        !ip_in(&a, &["link", "show"]).contains("veth"),
        "a rejected call created an interface"
    );
}

#[test]
fn run_in_isolates_loopback() {
    if !require_root_or_skip("run_in_isolates_loopback") {
        return;
    }
    let host_listener = TcpListener::bind("127.0.0.1:0").expect("bind on host loopback");
    let host_address = host_listener.local_addr().unwrap();
    let ns = Netns::create("tk-iso").expect("create namespace");

    let result = ns
        .run_in(|| TcpStream::connect_timeout(&host_address, Duration::from_secs(1)))
        .expect("enter namespace");

    assert!(
        result.is_err(),
        "connected to the host's loopback {host_address} from inside {}",
        ns.name()
    );
    assert!(
        TcpStream::connect(host_address).is_ok(),
        "the calling thread left the host namespace"
    );
}

#[test]
fn wait_for_tcp_times_out() {
    if !require_root_or_skip("wait_for_tcp_times_out") {
        return;
    }
    let ns = Netns::create("tk-wait").expect("create namespace");
    let started = Instant::now();

    let error = wait_for_tcp(
        Some(&ns),
        "127.0.0.1:9".parse().unwrap(),
        Duration::from_millis(500),
    )
    .expect_err("nothing listens on port 9");

    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    assert!(error.to_string().contains(ns.name()), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn wait_for_tcp_on_loopback() {
    // Uses only the host's loopback, so this test needs no root.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind on loopback");

    wait_for_tcp(None, listener.local_addr().unwrap(), Duration::from_secs(2))
        .expect("listener accepts");
}

#[test]
fn curl_runs_inside_namespace() {
    if !require_root_or_skip("curl_runs_inside_namespace") {
        return;
    }
    let ns = Netns::create("tk-curl").expect("create namespace");

    let command = curl(&ns);
    let args: Vec<_> = command
        .get_args()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let output = curl(&ns)
        .arg("http://127.0.0.1:9/")
        .output()
        .expect("run curl");

    assert_eq!(command.get_program(), "ip");
    assert_eq!(&args[..4], ["netns", "exec", ns.name(), "curl"]);
    assert!(args.contains(&"--max-time".to_owned()));
    assert_eq!(
        output.status.code(),
        Some(7),
        "expected curl's 'failed to connect' exit code: {output:?}"
    );
}
