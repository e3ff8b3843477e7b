//! Reachability of the runtime and admin ports after a live `mxharden apply`, for each Linux
//! firewall backend, between hosts built from network namespaces.
//!
//! Three namespaces stand for three hosts: the server, a proxy host that the desired state
//! lists in `proxy.remote_addresses`, and an outside host. The server is linked to each of
//! the others by its own veth pair. Listeners on every address of the server accept on the
//! runtime port, the admin port and the SSH port 22, so only the firewall can keep a host out.
//!
//! `mxharden apply` runs as on a live host, but inside the server's network namespace and a
//! private mount namespace in which `/etc` and `/lib/ufw` are copies of the host's, and
//! `/srv`, `/var/lib`, `/var/log` and `/run` are folders of the test. So it loads its rules
//! into the server namespace only, and its accounts and files land in the copies. ufw, which
//! the ufw tests enable as an operator would, runs the same way, with its sysctl file
//! switched off in the copy, so it never changes a setting outside the namespace. For the
//! firewalld tests, a D-Bus system bus and firewalld run in such a mount namespace, and
//! every command enters it with `nsenter`.
//!
//! The tests need root (they skip without it, and fail under `CI=true`), iproute2, nftables,
//! iptables, ufw, firewalld, util-linux and passwd.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use mxharden_testkit::{Guarded, Netns, connect_from, describe, require_root_or_skip, veth_pair};
use tempfile::TempDir;

const PROXY_V4: &str = "10.93.1.1";
const SERVER_PROXY_SIDE_V4: &str = "10.93.1.2";
const PROXY_V6: &str = "fd00:93:1::1";
const SERVER_PROXY_SIDE_V6: &str = "fd00:93:1::2";
const OUTSIDE_V4: &str = "10.93.2.1";
const SERVER_OUTSIDE_SIDE_V4: &str = "10.93.2.2";
const OUTSIDE_V6: &str = "fd00:93:2::1";
const SERVER_OUTSIDE_SIDE_V6: &str = "fd00:93:2::2";

const RUNTIME_PORT: u16 = 8000;
const ADMIN_PORT: u16 = 8090;
const SSH_PORT: u16 = 22;
const NFT_TABLE: &str = "mxharden_sales";
const IPTABLES_CHAIN: &str = "MXH-SALES";

/// Maximum time for one TCP connection attempt. The firewall drops the SYN packets to a
/// blocked port, so each blocked check takes this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Programs that the tests run, besides `ip`, which `require_root_or_skip` checks.
const REQUIRED_PROGRAMS: [&str; 12] =
    ["nft", "iptables", "ip6tables", "iptables-restore", "ufw", "firewalld", "firewall-cmd", "dbus-daemon", "nsenter", "unshare", "mount", "useradd"];

/// The firewalld policy that mxharden derives from the app name.
const FIREWALLD_POLICY: &str = "mxh-sales";

/// Mounts the sandbox's folders as `LIVE_APPLY_SCRIPT` does, then starts a D-Bus system bus
/// and becomes firewalld.
const FIREWALLD_SCRIPT: &str = r#"mount --bind "$1" /etc && mount --bind "$2" /srv && mount --bind "$3" /var/lib && mount --bind "$4" /var/log && mount --bind "$5" /lib/ufw && mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/dbus && dbus-daemon --system --fork --nopidfile && exec firewalld --nofork --nopid"#;

/// Maximum time that firewalld gets to reply to `firewall-cmd --state`.
const FIREWALLD_START_TIMEOUT: Duration = Duration::from_secs(60);

/// The comment `mxharden-sales` as ufw stores it in its rule files, in hexadecimal.
const UFW_COMMENT_HEX: &str = "6d7868617264656e2d73616c6573";

/// Folders of the sandbox that the live apply finds at the host paths in `LIVE_APPLY_SCRIPT`.
const SANDBOX_MOUNTS: [&str; 5] = ["etc", "srv", "var/lib", "var/log", "lib/ufw"];

/// Mounts the test's folders over the host paths that a live apply writes, then runs the
/// command given after the four folders. The paths come in as positional parameters.
const LIVE_APPLY_SCRIPT: &str = r#"mount --bind "$1" /etc && mount --bind "$2" /srv && mount --bind "$3" /var/lib && mount --bind "$4" /var/log && mount --bind "$5" /lib/ufw && mount -t tmpfs -o mode=0755 tmpfs /run && shift 5 && exec "$@""#;

/// A firewall backend under test, with the commands that inspect it in the server namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Nftables,
    Iptables,
    Ufw,
    Firewalld,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Nftables => "nftables",
            Backend::Iptables => "iptables",
            Backend::Ufw => "ufw",
            Backend::Firewalld => "firewalld",
        }
    }

    /// Returns the check that `apply` reports for this backend's rules files.
    fn check_name(self) -> &'static str {
        match self {
            Backend::Nftables => "check passed: nft -c",
            Backend::Iptables => "check passed: iptables-restore --test, ip6tables-restore --test",
            Backend::Ufw => "check passed: ufw --dry-run",
            Backend::Firewalld => "check passed: firewall-cmd --query-rich-rule",
        }
    }
}

/// Three hosts, the test's copies of the server's folders, and the listeners.
struct Lab {
    /// firewalld, in the mount namespace that every command enters; only for firewalld tests.
    firewalld: Option<Guarded>,
    _listeners: Vec<Listener>,
    server: Netns,
    proxy: Netns,
    outside: Netns,
    sandbox: PathBuf,
    app_file: PathBuf,
    _work: TempDir,
}

impl Lab {
    /// Builds the hosts and the sandbox, writes the desired state for `backend` and starts
    /// the listeners. Returns `None` when the test is skipped.
    fn start(test_name: &str, backend: Backend) -> Option<Lab> {
        if !require_root_or_skip(test_name) || !require_programs_or_skip(test_name) {
            return None;
        }
        let work = TempDir::new().expect("create temporary directory");
        let sandbox = work.path().join("sandbox");
        prepare_sandbox(&sandbox);
        let app_file = work.path().join("sales.yaml");
        fs::write(&app_file, desired_state(backend.name())).expect("write the desired state");

        let server = Netns::create("fw-srv").expect("create server namespace");
        let proxy = Netns::create("fw-proxy").expect("create proxy namespace");
        let outside = Netns::create("fw-out").expect("create outside namespace");
        veth_pair(&proxy, &server, PROXY_V4, SERVER_PROXY_SIDE_V4, PROXY_V6, SERVER_PROXY_SIDE_V6)
            .expect("link proxy and server");
        veth_pair(&outside, &server, OUTSIDE_V4, SERVER_OUTSIDE_SIDE_V4, OUTSIDE_V6, SERVER_OUTSIDE_SIDE_V6)
            .expect("link outside host and server");

        // The runtime and admin listeners belong to the app's account, as the
        // real runtime's would: apply rejects a port held by another account.
        let listeners = [(RUNTIME_PORT, APP_UID), (ADMIN_PORT, APP_UID), (SSH_PORT, 0)]
            .into_iter()
            .map(|(port, uid)| Listener::start(&server, port, uid))
            .collect();
        let mut lab = Lab {
            firewalld: None,
            _listeners: listeners,
            server,
            proxy,
            outside,
            sandbox,
            app_file,
            _work: work,
        };
        if backend == Backend::Firewalld {
            lab.start_firewalld();
        }
        // mxharden never enables ufw or starts firewalld, so the operator has.
        if matches!(backend, Backend::Ufw | Backend::Firewalld) {
            lab.add_operator_rules(backend);
        }
        Some(lab)
    }

    /// Builds a command that runs `program args...` in the server namespace with the
    /// sandbox's folders: in firewalld's mount namespace when it runs, else in a new one.
    fn live_command(&self, program: &str, args: &[&str]) -> Command {
        if let Some(firewalld) = &self.firewalld {
            let mut command = Command::new("nsenter");
            command.args(["--target", &firewalld.id().to_string(), "--mount", "--net", "--", program]).args(args);
            return command;
        }
        let mut command = self.server.command(
            "unshare",
            ["--mount", "--propagation", "private", "--", "sh", "-c", LIVE_APPLY_SCRIPT, "sh"],
        );
        for folder in SANDBOX_MOUNTS {
            command.arg(self.sandbox.join(folder));
        }
        command.arg(program).args(args);
        command
    }

    /// Starts a D-Bus system bus and firewalld in the server namespace and waits until
    /// firewalld replies.
    fn start_firewalld(&mut self) {
        let mut command = self.server.command(
            "unshare",
            ["--mount", "--propagation", "private", "--", "sh", "-c", FIREWALLD_SCRIPT, "sh"],
        );
        for folder in SANDBOX_MOUNTS {
            command.arg(self.sandbox.join(folder));
        }
        let log = fs::File::create(self.sandbox.join("firewalld.log")).expect("create the firewalld log");
        command.stdout(log.try_clone().unwrap()).stderr(log);
        self.firewalld = Some(Guarded::spawn(command.stdin(Stdio::null())).expect("start firewalld"));
        let deadline = std::time::Instant::now() + FIREWALLD_START_TIMEOUT;
        loop {
            let state = self.live_command("firewall-cmd", &["--state"]).stdin(Stdio::null()).output().expect("run firewall-cmd");
            if state.status.success() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "firewalld did not start within {FIREWALLD_START_TIMEOUT:?}: {}\nlog:\n{}",
                describe(&state),
                fs::read_to_string(self.sandbox.join("firewalld.log")).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `firewall-cmd ARGS...` in firewalld's namespaces and panics when it fails.
    fn firewall_cmd(&self, args: &[&str]) -> String {
        let output = self.live_command("firewall-cmd", args).stdin(Stdio::null()).output().expect("run firewall-cmd");
        assert!(output.status.success(), "firewall-cmd {args:?} failed: {}", describe(&output));
        stdout(&output)
    }

    /// Runs `mxharden ARGS... APP_FILE` as on a live host, inside the server namespace.
    fn mxharden(&self, args: &[&str], stdin: Stdio) -> Output {
        let mut command = self.live_command(env!("CARGO_BIN_EXE_mxharden"), args);
        command.arg(&self.app_file);
        command.stdin(stdin).output().expect("run mxharden in the server namespace")
    }

    /// Runs `mxharden apply` and asserts that it succeeds.
    fn apply(&self) -> Output {
        let output = self.mxharden(&["apply"], Stdio::null());
        assert!(output.status.success(), "mxharden apply failed: {}", describe(&output));
        output
    }

    /// Runs `program args...` in the server namespace and returns its stdout; panics when it fails.
    fn server_run(&self, program: &str, args: &[&str]) -> String {
        let output = self.server.command(program, args).stdin(Stdio::null()).output().expect("run a command in the server namespace");
        assert!(output.status.success(), "{program} {args:?} failed: {}", describe(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Returns the server namespace's whole firewall: the nftables ruleset, which includes
    /// the rules that iptables-nft writes.
    fn ruleset(&self) -> String {
        self.server_run("nft", &["-s", "list", "ruleset"])
    }

    /// Runs `ufw ARGS...` in the server namespace with the sandbox's folders, and panics when
    /// it fails.
    fn ufw(&self, args: &[&str]) {
        let output = self.live_command("ufw", args).stdin(Stdio::null()).output().expect("run ufw");
        assert!(output.status.success(), "ufw {args:?} failed: {}", describe(&output));
    }

    /// Adds rules of the operator's own that mxharden must leave alone: an nftables table and
    /// an iptables rule, each dropping the discard port 9. Under ufw, the operator's ufw rules
    /// instead: SSH open to everyone, both app ports open to the test networks, and ufw
    /// enabled.
    fn add_operator_rules(&self, backend: Backend) {
        if backend == Backend::Firewalld {
            self.firewall_cmd(&["--permanent", "--add-port=8000/tcp", "--add-port=8090/tcp"]);
            self.firewall_cmd(&["--reload"]);
            return;
        }
        if backend == Backend::Ufw {
            self.ufw(&["allow", "22/tcp"]);
            for network in ["10.93.0.0/16", "fd00:93::/32"] {
                for port in ["8000", "8090"] {
                    self.ufw(&["allow", "proto", "tcp", "from", network, "to", "any", "port", port]);
                }
            }
            self.ufw(&["--force", "enable"]);
            return;
        }
        let table = "table inet operator {\n chain input {\n  type filter hook input priority 10; policy accept;\n  tcp dport 9 drop\n }\n}\n";
        let path = self.sandbox.join("operator.nft");
        fs::write(&path, table).expect("write the operator's table");
        self.server_run("nft", &["-f", path.to_str().unwrap()]);
        self.server_run("iptables", &["-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "DROP"]);
        self.server_run("ip6tables", &["-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "DROP"]);
    }

    /// Asserts the full reachability matrix over IPv4 and IPv6.
    fn assert_matrix(&self, proxy_allowed: bool) {
        let proxy_targets = [SERVER_PROXY_SIDE_V4, SERVER_PROXY_SIDE_V6];
        let outside_targets = [SERVER_OUTSIDE_SIDE_V4, SERVER_OUTSIDE_SIDE_V6];
        let loopback_targets = ["127.0.0.1", "::1"];

        for (address, outcome) in connect_from(&self.proxy, &addresses(&proxy_targets, RUNTIME_PORT), CONNECT_TIMEOUT) {
            if proxy_allowed {
                assert!(outcome.is_ok(), "the proxy host should reach the runtime port at {address}, got {outcome:?}");
            } else {
                assert_dropped(&outcome, &format!("the proxy host to {address}"));
            }
        }
        for (address, outcome) in connect_from(&self.proxy, &addresses(&proxy_targets, ADMIN_PORT), CONNECT_TIMEOUT) {
            assert_dropped(&outcome, &format!("the proxy host to the admin port at {address}"));
        }
        for port in [RUNTIME_PORT, ADMIN_PORT] {
            for (address, outcome) in connect_from(&self.outside, &addresses(&outside_targets, port), CONNECT_TIMEOUT) {
                assert_dropped(&outcome, &format!("the outside host to {address}"));
            }
            for (address, outcome) in connect_from(&self.server, &addresses(&loopback_targets, port), CONNECT_TIMEOUT) {
                assert!(outcome.is_ok(), "the server should reach {address} over loopback, got {outcome:?}");
            }
        }
        for (address, outcome) in connect_from(&self.outside, &addresses(&outside_targets, SSH_PORT), CONNECT_TIMEOUT) {
            assert!(outcome.is_ok(), "SSH at {address} should stay reachable from the outside host, got {outcome:?}");
        }
    }

    fn rules_file_paths(&self, backend: Backend) -> Vec<PathBuf> {
        match backend {
            Backend::Nftables => vec![self.sandbox.join("etc/mxharden/nftables/sales.nft")],
            Backend::Iptables => vec![
                self.sandbox.join("etc/mxharden/iptables/sales.v4"),
                self.sandbox.join("etc/mxharden/iptables/sales.v6"),
            ],
            Backend::Ufw | Backend::Firewalld => Vec::new(),
        }
    }

    /// Tells whether the server namespace has the app's table or chains loaded.
    fn app_rules_loaded(&self, backend: Backend) -> bool {
        match backend {
            Backend::Nftables => self.ruleset().contains(NFT_TABLE),
            Backend::Iptables => {
                let v4 = self.server.command("iptables", ["-S", IPTABLES_CHAIN]).output().unwrap().status.success();
                let v6 = self.server.command("ip6tables", ["-S", IPTABLES_CHAIN]).output().unwrap().status.success();
                assert_eq!(v4, v6, "the IPv4 and IPv6 chains should come and go together");
                v4
            }
            Backend::Ufw => ["etc/ufw/user.rules", "etc/ufw/user6.rules"].iter().any(|file| {
                fs::read_to_string(self.sandbox.join(file)).expect("read ufw's rule file").contains(UFW_COMMENT_HEX)
            }),
            Backend::Firewalld => self
                .live_command("firewall-cmd", &[&format!("--info-policy={FIREWALLD_POLICY}")])
                .stdin(Stdio::null())
                .output()
                .expect("run firewall-cmd")
                .status
                .success(),
        }
    }

    /// Changes the live rules behind mxharden's back: removes the rule that drops the
    /// admin port for other hosts, as an operator experimenting by hand might.
    fn tamper(&self, backend: Backend) {
        match backend {
            Backend::Nftables => {
                self.server_run("nft", &["flush", "chain", "inet", NFT_TABLE, "input"]);
            }
            Backend::Iptables => {
                self.server_run("iptables", &["-F", IPTABLES_CHAIN]);
                self.server_run("ip6tables", &["-F", IPTABLES_CHAIN]);
            }
            Backend::Ufw => {
                self.ufw(&["delete", "deny", "proto", "tcp", "from", "0.0.0.0/0", "to", "0.0.0.0/0", "port", "8090"]);
                self.ufw(&["delete", "deny", "proto", "tcp", "from", "::/0", "to", "::/0", "port", "8090"]);
            }
            Backend::Firewalld => {
                self.firewall_cmd(&[
                    &format!("--policy={FIREWALLD_POLICY}"),
                    r#"--remove-rich-rule=rule priority="-31999" port port="8090" protocol="tcp" drop"#,
                ]);
            }
        }
    }
}

/// Accepts connections on `[::]:PORT` (IPv4 and IPv6) in a namespace and echoes what it
/// reads, until dropped.
struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Listener {
    fn start(ns: &Netns, port: u16, uid: u32) -> Listener {
        let address: SocketAddr = format!("[::]:{port}").parse().unwrap();
        let listener = ns
            .run_in(|| {
                // Only this short-lived thread changes its ids; the socket
                // records them as its owner.
                let gid = rustix::process::Gid::from_raw(uid);
                rustix::thread::set_thread_res_gid(gid, gid, gid).expect("set the thread's gid");
                let user = rustix::process::Uid::from_raw(uid);
                rustix::thread::set_thread_res_uid(user, user, user).expect("set the thread's uid");
                TcpListener::bind(address)
            })
            .and_then(|bound| bound)
            .unwrap_or_else(|error| panic!("listen on {address} in the server namespace: {error}"));
        listener.set_nonblocking(true).expect("make the listener non-blocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        thread::spawn(move || echo(stream));
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(10)),
                    Err(error) => panic!("accept on port {port} failed: {error}"),
                }
            }
        });
        Listener { stop, thread: Some(thread) }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Echoes one connection until the peer closes it or 60 seconds pass without data.
fn echo(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut buffer = [0u8; 256];
    while let Ok(count) = stream.read(&mut buffer) {
        if count == 0 || stream.write_all(&buffer[..count]).is_err() {
            return;
        }
    }
}

fn require_programs_or_skip(test_name: &str) -> bool {
    let missing: Vec<&str> = REQUIRED_PROGRAMS.into_iter().filter(|program| find_program(program).is_none()).collect();
    if missing.is_empty() {
        return true;
    }
    let problem = format!("programs {missing:?} not found; on Debian run scripts/install-test-deps");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test_name}: cannot run because {problem}. CI=true forbids skipping");
    }
    eprintln!("SKIPPED {test_name}: {problem}");
    false
}

fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|directory| directory.join(program))
        .find(|candidate| candidate.is_file())
}

/// Returns the desired state: the runtime listens on loopback and on the server's address on
/// the proxy link, and the proxy host's addresses are the remote proxies.
fn desired_state(backend: &str) -> String {
    format!(
        r#"version: 1
app:
  name: sales
  base: /srv/mendix/sales
  runtime:
    port: {RUNTIME_PORT}
    admin_port: {ADMIN_PORT}
    listen: ["127.0.0.1", "::1", "{SERVER_PROXY_SIDE_V4}", "{SERVER_PROXY_SIDE_V6}"]
  proxy:
    kind: iis
    server_name: sales.example.com
    tls:
      certificate: /etc/ssl/certs/sales.pem
      key: /etc/ssl/private/sales.key
    remote_addresses: ["{PROXY_V4}/32", "{PROXY_V6}/128"]
  firewall:
    backend: {backend}
"#
    )
}

/// Makes the folders that the live apply mounts at `/etc`, `/srv`, `/var/lib`, `/var/log` and
/// `/lib/ufw`: copies of the host's `/etc` and `/lib/ufw`, the example app's `srv/`, and two
/// empty folders.
/// uid and gid of the app's account in the sandbox; the test checks that
/// the copied passwd file does not use them.
const APP_UID: u32 = 987;

fn append(file: &Path, line: &str) {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(!text.contains(&format!(":{APP_UID}:")), "{} already uses id {APP_UID}", file.display());
    fs::write(file, format!("{text}{line}")).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
}

fn prepare_sandbox(sandbox: &Path) {
    fs::create_dir_all(sandbox).expect("create the sandbox");
    let copied = Command::new("cp").arg("-a").arg("/etc").arg(sandbox.join("etc")).status().expect("run cp");
    assert!(copied.success(), "copying /etc into the sandbox failed");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/root");
    let copied = Command::new("cp").arg("-a").arg(examples.join("srv")).arg(sandbox.join("srv")).status().expect("run cp");
    assert!(copied.success(), "copying the example app into the sandbox failed");
    // The app's account exists already, as after an earlier apply, so the
    // listeners can run under its uid.
    append(&sandbox.join("etc/passwd"), &format!("mx-sales:x:{APP_UID}:{APP_UID}::/srv/mendix/sales:/usr/sbin/nologin\n"));
    append(&sandbox.join("etc/group"), &format!("mx-sales:x:{APP_UID}:\n"));
    for folder in ["var/lib", "var/log"] {
        fs::create_dir_all(sandbox.join(folder)).expect("create a sandbox folder");
    }
    // An IIS proxy runs elsewhere, so mxharden never reads these; they only need to exist
    // for the desired state to describe a complete app.
    fs::create_dir_all(sandbox.join("etc/ssl/private")).expect("create the key folder");
    // ufw state: its scripts, and no sysctl file, because some settings in ufw's
    // sysctl.conf are not per network namespace.
    fs::create_dir_all(sandbox.join("lib")).expect("create the lib folder");
    let copied = Command::new("cp").arg("-a").arg("/lib/ufw").arg(sandbox.join("lib/ufw")).status().expect("run cp");
    assert!(copied.success(), "copying /lib/ufw into the sandbox failed");
    let defaults = sandbox.join("etc/default/ufw");
    let text = fs::read_to_string(&defaults).expect("read the copy of /etc/default/ufw");
    let without_sysctl: String = text
        .lines()
        .map(|line| if line.starts_with("IPT_SYSCTL=") { "IPT_SYSCTL=/dev/null" } else { line })
        .map(|line| format!("{line}\n"))
        .collect();
    fs::write(&defaults, without_sysctl).expect("switch off ufw's sysctl file in the copy");
}

fn addresses(hosts: &[&str], port: u16) -> Vec<SocketAddr> {
    hosts
        .iter()
        .map(|host| {
            if host.contains(':') {
                format!("[{host}]:{port}").parse().unwrap()
            } else {
                format!("{host}:{port}").parse().unwrap()
            }
        })
        .collect()
}

/// Asserts that a connection attempt timed out: a refused connection would mean that nothing
/// listens, which would leave the firewall untested.
fn assert_dropped(outcome: &io::Result<()>, what: &str) {
    assert!(
        matches!(outcome, Err(error) if error.kind() == io::ErrorKind::TimedOut),
        "a connection from {what} should time out, got {outcome:?}"
    );
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// An open SSH-port connection from the outside host, used to show that an apply never cuts
/// an established session.
struct Session(TcpStream);

impl Session {
    fn open(lab: &Lab) -> Session {
        let address: SocketAddr = format!("{SERVER_OUTSIDE_SIDE_V4}:{SSH_PORT}").parse().unwrap();
        let stream = lab
            .outside
            .run_in(|| TcpStream::connect_timeout(&address, CONNECT_TIMEOUT))
            .and_then(|result| result)
            .expect("open a session to the SSH port from the outside host");
        stream.set_read_timeout(Some(CONNECT_TIMEOUT)).unwrap();
        Session(stream)
    }

    /// Sends a line and asserts that it comes back.
    fn assert_alive(&mut self, what: &str) {
        let line = b"still here\n";
        self.0.write_all(line).unwrap_or_else(|error| panic!("{what}: writing to the SSH session failed: {error}"));
        let mut reply = [0u8; 11];
        self.0.read_exact(&mut reply).unwrap_or_else(|error| panic!("{what}: the SSH session stopped answering: {error}"));
        assert_eq!(&reply, line, "{what}: the SSH session echoed something else");
    }
}

/// Runs an apply while a thread opens new connections to the SSH port from the outside host
/// every 50 ms. Returns the apply's output and every failed attempt.
fn apply_while_probing_ssh(lab: &Lab) -> (Output, Vec<String>) {
    let done = AtomicBool::new(false);
    let address: SocketAddr = format!("[{SERVER_OUTSIDE_SIDE_V6}]:{SSH_PORT}").parse().unwrap();
    thread::scope(|scope| {
        let prober = scope.spawn(|| {
            let mut failures = Vec::new();
            let mut attempts = 0;
            while !done.load(Ordering::Relaxed) || attempts == 0 {
                attempts += 1;
                let outcome = lab.outside.run_in(|| TcpStream::connect_timeout(&address, CONNECT_TIMEOUT).map(drop));
                if let Err(error) = outcome.and_then(|result| result) {
                    failures.push(format!("attempt {attempts}: {error}"));
                }
                thread::sleep(Duration::from_millis(50));
            }
            failures
        });
        let output = lab.mxharden(&["apply"], Stdio::null());
        done.store(true, Ordering::Relaxed);
        (output, prober.join().expect("SSH probe thread panicked"))
    })
}

fn full_matrix_after_apply(test_name: &str, backend: Backend) {
    let Some(lab) = Lab::start(test_name, backend) else {
        return;
    };
    lab.add_operator_rules(backend);
    let operator_rules = lab.ruleset();
    // Control: before the apply every host reaches both ports, so the rules are what blocks.
    for (address, outcome) in connect_from(&lab.outside, &addresses(&[SERVER_OUTSIDE_SIDE_V4, SERVER_OUTSIDE_SIDE_V6], ADMIN_PORT), CONNECT_TIMEOUT) {
        assert!(outcome.is_ok(), "before the apply the outside host should reach {address}, got {outcome:?}");
    }
    let mut session = Session::open(&lab);

    let (output, ssh_failures) = apply_while_probing_ssh(&lab);

    assert!(output.status.success(), "mxharden apply failed: {}", describe(&output));
    assert!(ssh_failures.is_empty(), "new SSH connections failed during the apply: {ssh_failures:?}");
    session.assert_alive("after the apply");
    let report = stdout(&output);
    assert!(report.contains(backend.check_name()), "the rules were not checked with the tool's check mode:\n{report}");
    lab.assert_matrix(true);
    let ruleset = lab.ruleset();
    for line in operator_rules.lines() {
        assert!(ruleset.contains(line), "the apply changed the operator's rule {line:?}; ruleset now:\n{ruleset}");
    }
    // ufw's own default-deny, which the operator enabled, is in the rules before the apply.
    assert_eq!(
        ruleset.matches("policy drop").count(),
        operator_rules.matches("policy drop").count(),
        "the apply set a default-deny policy:\n{ruleset}"
    );
}

fn second_apply_changes_nothing(test_name: &str, backend: Backend) {
    let Some(lab) = Lab::start(test_name, backend) else {
        return;
    };
    lab.apply();
    let ruleset = lab.ruleset();

    let output = lab.mxharden(&["apply", "--detailed-exitcode"], Stdio::null());

    assert_eq!(output.status.code(), Some(0), "the second apply changed something: {}", describe(&output));
    assert!(stdout(&output).contains("1 app: no changes"), "{}", describe(&output));
    assert_eq!(lab.ruleset(), ruleset, "the second apply changed the live rules");
}

fn drift_shown_and_corrected(test_name: &str, backend: Backend) {
    let Some(lab) = Lab::start(test_name, backend) else {
        return;
    };
    lab.apply();
    lab.tamper(backend);
    for (address, outcome) in connect_from(&lab.outside, &addresses(&[SERVER_OUTSIDE_SIDE_V4], ADMIN_PORT), CONNECT_TIMEOUT) {
        assert!(outcome.is_ok(), "after tampering the outside host should reach {address}, got {outcome:?}");
    }

    let dry_run = lab.mxharden(&["apply", "--dry-run", "--detailed-exitcode"], Stdio::null());

    assert_eq!(dry_run.status.code(), Some(2), "the dry run should report the drift: {}", describe(&dry_run));
    let report = stdout(&dry_run);
    assert!(report.contains("differ from the desired ones"), "no drift line in:\n{report}");
    assert!(report.contains(&format!("--- live {} rules", backend.name())), "no drift diff in:\n{report}");
    assert!(report.contains(&ADMIN_PORT.to_string()), "the diff does not show the admin port:\n{report}");

    let applied = lab.mxharden(&["apply", "--detailed-exitcode"], Stdio::null());

    assert_eq!(applied.status.code(), Some(2), "the apply should correct the drift: {}", describe(&applied));
    lab.assert_matrix(true);
}

fn remove_deletes_only_app_rules(test_name: &str, backend: Backend) {
    let Some(lab) = Lab::start(test_name, backend) else {
        return;
    };
    lab.add_operator_rules(backend);
    let before = lab.ruleset();
    lab.apply();
    assert!(lab.app_rules_loaded(backend), "the apply loaded no rules");

    let output = lab.mxharden(&["remove"], Stdio::null());

    assert!(output.status.success(), "mxharden remove failed: {}", describe(&output));
    assert!(!lab.app_rules_loaded(backend), "the app's rules are still loaded");
    assert_eq!(lab.ruleset(), before, "remove left the ruleset different from before the apply");
    for path in lab.rules_file_paths(backend) {
        assert!(!path.exists(), "remove left {}", path.display());
    }
    let unit = lab.sandbox.join("etc/systemd/system/mxharden-firewall-sales.service");
    assert!(!unit.exists(), "remove left {}", unit.display());
    let link = lab.sandbox.join("etc/systemd/system/sysinit.target.wants/mxharden-firewall-sales.service");
    assert!(fs::symlink_metadata(&link).is_err(), "remove left {}", link.display());
    let web_config = lab.sandbox.join("etc/mxharden/iis/sales/web.config");
    assert!(web_config.exists(), "remove deleted the proxy configuration, which is not a firewall file");
    // Without the rules the outside host reaches the admin port again.
    for (address, outcome) in connect_from(&lab.outside, &addresses(&[SERVER_OUTSIDE_SIDE_V4], ADMIN_PORT), CONNECT_TIMEOUT) {
        assert!(outcome.is_ok(), "after remove the outside host should reach {address}, got {outcome:?}");
    }
}

fn unconfirmed_change_rolled_back(test_name: &str, backend: Backend) {
    let Some(lab) = Lab::start(test_name, backend) else {
        return;
    };
    // The operator's rules make iptables-nft create its tables before the apply, as on a
    // host that uses iptables, so the comparison below shows only mxharden's changes.
    lab.add_operator_rules(backend);
    let before = lab.ruleset();

    // stdin is closed, so no confirmation can come.
    let output = lab.mxharden(&["apply", "--confirm-timeout", "1"], Stdio::null());

    assert!(!output.status.success(), "an unconfirmed apply should fail: {}", describe(&output));
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(errors.contains("not confirmed within 1 s"), "{errors}");
    assert_eq!(lab.ruleset(), before, "the live rules were not rolled back");
    for path in lab.rules_file_paths(backend) {
        assert!(!path.exists(), "the rollback left {}", path.display());
    }
}

fn confirmed_change_kept(test_name: &str, backend: Backend) {
    let Some(lab) = Lab::start(test_name, backend) else {
        return;
    };
    let mut command = lab.live_command(env!("CARGO_BIN_EXE_mxharden"), &["apply", "--confirm-timeout", "30"]);
    command
        .arg(&lab.app_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start mxharden apply");
    child.stdin.take().unwrap().write_all(b"yes\n").expect("confirm on stdin");

    let output = child.wait_with_output().expect("wait for mxharden apply");

    assert!(output.status.success(), "a confirmed apply should succeed: {}", describe(&output));
    assert!(lab.app_rules_loaded(backend), "the confirmed rules are not loaded");
    lab.assert_matrix(true);
}

fn published_port_rejected(test_name: &str, backend: Backend) {
    let Some(lab) = Lab::start(test_name, backend) else {
        return;
    };
    // The rules that Docker 24 writes through iptables-nft for `docker run -p 8000:8080`.
    let docker = format!(
        "table ip nat {{\n chain PREROUTING {{\n  type nat hook prerouting priority dstnat; policy accept;\n  fib daddr type local counter jump DOCKER\n }}\n chain DOCKER {{\n  iifname != \"docker0\" meta l4proto tcp tcp dport {RUNTIME_PORT} counter dnat to 10.93.9.2:8080\n }}\n}}\n"
    );
    let path = lab.sandbox.join("docker.nft");
    fs::write(&path, docker).expect("write the Docker rules");
    lab.server_run("nft", &["-f", path.to_str().unwrap()]);

    let output = lab.mxharden(&["apply"], Stdio::null());

    assert!(!output.status.success(), "the apply should fail while Docker publishes the port: {}", describe(&output));
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(errors.contains("published by Docker"), "{errors}");
    assert!(errors.contains("chain DOCKER"), "{errors}");
    assert!(!lab.app_rules_loaded(backend), "rules were loaded although the apply failed");
}

#[test]
fn nftables_full_matrix_after_apply() {
    full_matrix_after_apply("nftables_full_matrix_after_apply", Backend::Nftables);
}

#[test]
fn iptables_full_matrix_after_apply() {
    full_matrix_after_apply("iptables_full_matrix_after_apply", Backend::Iptables);
}

#[test]
fn nftables_second_apply_changes_nothing() {
    second_apply_changes_nothing("nftables_second_apply_changes_nothing", Backend::Nftables);
}

#[test]
fn iptables_second_apply_changes_nothing() {
    second_apply_changes_nothing("iptables_second_apply_changes_nothing", Backend::Iptables);
}

#[test]
fn nftables_drift_shown_and_corrected() {
    drift_shown_and_corrected("nftables_drift_shown_and_corrected", Backend::Nftables);
}

#[test]
fn iptables_drift_shown_and_corrected() {
    drift_shown_and_corrected("iptables_drift_shown_and_corrected", Backend::Iptables);
}

#[test]
fn nftables_remove_deletes_only_app_rules() {
    remove_deletes_only_app_rules("nftables_remove_deletes_only_app_rules", Backend::Nftables);
}

#[test]
fn iptables_remove_deletes_only_app_rules() {
    remove_deletes_only_app_rules("iptables_remove_deletes_only_app_rules", Backend::Iptables);
}

#[test]
fn nftables_unconfirmed_change_rolled_back() {
    unconfirmed_change_rolled_back("nftables_unconfirmed_change_rolled_back", Backend::Nftables);
}

#[test]
fn iptables_unconfirmed_change_rolled_back() {
    unconfirmed_change_rolled_back("iptables_unconfirmed_change_rolled_back", Backend::Iptables);
}

#[test]
fn nftables_confirmed_change_kept() {
    confirmed_change_kept("nftables_confirmed_change_kept", Backend::Nftables);
}

#[test]
fn ufw_full_matrix_after_apply() {
    full_matrix_after_apply("ufw_full_matrix_after_apply", Backend::Ufw);
}

#[test]
fn ufw_second_apply_changes_nothing() {
    second_apply_changes_nothing("ufw_second_apply_changes_nothing", Backend::Ufw);
}

#[test]
fn ufw_drift_shown_and_corrected() {
    drift_shown_and_corrected("ufw_drift_shown_and_corrected", Backend::Ufw);
}

#[test]
fn ufw_remove_deletes_only_app_rules() {
    remove_deletes_only_app_rules("ufw_remove_deletes_only_app_rules", Backend::Ufw);
}

#[test]
fn ufw_unconfirmed_change_rolled_back() {
    unconfirmed_change_rolled_back("ufw_unconfirmed_change_rolled_back", Backend::Ufw);
}

#[test]
fn ufw_conflicting_rule_rejected() {
    let Some(lab) = Lab::start("ufw_conflicting_rule_rejected", Backend::Ufw) else {
        return;
    };
    lab.ufw(&["allow", "8000/tcp"]);
    let before = lab.ruleset();

    let output = lab.mxharden(&["apply"], Stdio::null());

    assert!(!output.status.success(), "the apply should fail on a rule that ufw would overwrite: {}", describe(&output));
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(errors.contains("ufw keeps one rule for them"), "{errors}");
    assert!(errors.contains("ufw delete allow proto tcp from 0.0.0.0/0 to 0.0.0.0/0 port 8000"), "{errors}");
    assert_eq!(lab.ruleset(), before, "the failed apply changed the live rules");
}

#[test]
fn firewalld_full_matrix_after_apply() {
    full_matrix_after_apply("firewalld_full_matrix_after_apply", Backend::Firewalld);
}

#[test]
fn firewalld_second_apply_changes_nothing() {
    second_apply_changes_nothing("firewalld_second_apply_changes_nothing", Backend::Firewalld);
}

#[test]
fn firewalld_drift_shown_and_corrected() {
    drift_shown_and_corrected("firewalld_drift_shown_and_corrected", Backend::Firewalld);
}

#[test]
fn firewalld_remove_deletes_only_app_rules() {
    remove_deletes_only_app_rules("firewalld_remove_deletes_only_app_rules", Backend::Firewalld);
}

#[test]
fn firewalld_unconfirmed_change_rolled_back() {
    unconfirmed_change_rolled_back("firewalld_unconfirmed_change_rolled_back", Backend::Firewalld);
}

#[test]
fn nftables_published_port_rejected() {
    published_port_rejected("nftables_published_port_rejected", Backend::Nftables);
}

#[test]
fn iptables_published_port_rejected() {
    published_port_rejected("iptables_published_port_rejected", Backend::Iptables);
}
