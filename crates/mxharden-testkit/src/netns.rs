//! Named network namespaces (`ip netns`) and veth links between them.
//!
//! Every namespace is created by this process and deleted when its [`Netns`] value is
//! dropped, together with any process still running inside it.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use rustix::thread::LinkNameSpaceType;

use crate::command::run_checked;
pub use crate::process::{Guarded, spawn_until_line};

/// Directory where `ip netns add` bind-mounts the namespaces it creates.
const NETNS_RUN_DIR: &str = "/run/netns";

/// Maximum prefix length, which keeps names short in `ip netns list` and test output.
const MAX_PREFIX_LEN: usize = 20;

/// Maximum time that dropping a [`Netns`] waits for killed processes to leave it.
const PROCESS_EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Number of candidate names that [`Netns::create`] tries before it gives up.
const MAX_NAME_ATTEMPTS: u32 = 100;

/// Suffix of the next namespace name. Together with the pid it makes names unique on the host.
static NEXT_NETNS_INDEX: AtomicU32 = AtomicU32::new(0);

/// Number in the interface names of the next veth pair.
static NEXT_VETH_INDEX: AtomicU32 = AtomicU32::new(0);

/// A network namespace that is deleted, with the processes inside it, on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace named `{prefix}-{pid}-{counter}` and brings its `lo` up.
    ///
    /// `prefix` must be 1 to 20 characters of `a-z`, `0-9` and `-`. A name that already
    /// exists, left behind by an earlier process with the same pid, is skipped, not reused.
    pub fn create(prefix: &str) -> io::Result<Netns> {
        validate_prefix(prefix)?;

        for _ in 0..MAX_NAME_ATTEMPTS {
            let index = NEXT_NETNS_INDEX.fetch_add(1, Ordering::Relaxed);
            let name = format!("{prefix}-{}-{index}", std::process::id());
            if Path::new(NETNS_RUN_DIR).join(&name).exists() {
                continue;
            }

            run_checked(Command::new("ip").args(["netns", "add", &name]))?;
            // From here on, dropping `netns` deletes the namespace if a later step fails.
            let netns = Netns { name };
            netns.ip(["link", "set", "lo", "up"])?;
            return Ok(netns);
        }

        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{MAX_NAME_ATTEMPTS} namespace names with prefix {prefix:?} already exist in \
                 {NETNS_RUN_DIR}; delete stale ones with `ip netns del NAME`"
            ),
        ))
    }

    /// Returns the namespace name as `ip netns list` shows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Builds `ip netns exec NAME program args...`, which runs `program` inside the namespace.
    ///
    /// `ip netns exec` replaces itself with `program` (iproute2 6.1 forks only in batch mode),
    /// so the child's pid is the program's pid and killing the child kills the program.
    pub fn command<I, S>(&self, program: impl AsRef<OsStr>, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec"])
            .arg(&self.name)
            .arg(program)
            .args(args);
        command
    }

    /// Starts `program` inside the namespace with stdin closed and stdout and stderr inherited.
    ///
    /// Use [`spawn_until_line`] with [`Netns::command`] to wait for a readiness line instead.
    pub fn spawn<I, S>(&self, program: impl AsRef<OsStr>, args: I) -> io::Result<Guarded>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Guarded::spawn(self.command(program, args).stdin(Stdio::null()))
    }

    /// Runs `f` on a new thread that has joined this namespace and returns its result.
    ///
    /// Sockets that `f` creates belong to the namespace, so `f` can use `std::net` to reach
    /// addresses that exist only inside it. The calling thread's namespace does not change.
    /// A panic in `f` is propagated to the caller.
    pub fn run_in<T, F>(&self, f: F) -> io::Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let path = Path::new(NETNS_RUN_DIR).join(&self.name);
        let namespace = File::open(&path).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("failed to open {}: {error}", path.display()),
            )
        })?;

        thread::scope(|scope| {
            let worker = scope.spawn(move || -> io::Result<T> {
                rustix::thread::move_into_link_name_space(
                    namespace.as_fd(),
                    Some(LinkNameSpaceType::Network),
                )?;
                Ok(f())
            });
            match worker.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Runs `ip -n NAME args...` and fails with its stderr when it exits non-zero.
    fn ip<I, S>(&self, args: I) -> io::Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_checked(Command::new("ip").arg("-n").arg(&self.name).args(args)).map(drop)
    }

    /// Returns the pids of the processes inside the namespace, without this process.
    fn pids(&self) -> io::Result<Vec<i32>> {
        let output = run_checked(Command::new("ip").args(["netns", "pids", &self.name]))?;
        let own_pid = std::process::id() as i32;
        let pids = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.trim().parse::<i32>().ok())
            .filter(|&pid| pid != own_pid)
            .collect();
        Ok(pids)
    }

    /// Sends SIGKILL to every process inside the namespace until none is left.
    fn kill_processes(&self) -> io::Result<()> {
        let deadline = Instant::now() + PROCESS_EXIT_TIMEOUT;
        loop {
            let pids = self.pids()?;
            if pids.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "processes {pids:?} are still running {PROCESS_EXIT_TIMEOUT:?} after SIGKILL"
                    ),
                ));
            }

            for pid in pids {
                let Some(pid) = Pid::from_raw(pid) else {
                    continue;
                };
                // ESRCH means the process exited between listing and killing, which is the goal.
                match rustix::process::kill_process(pid, Signal::KILL) {
                    Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn delete(&self) -> io::Result<()> {
        self.kill_processes()?;
        run_checked(Command::new("ip").args(["netns", "del", &self.name])).map(drop)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(error) = self.delete() {
            eprintln!(
                "mxharden-testkit: failed to delete network namespace {}: {error}",
                self.name
            );
        }
    }
}

/// Interface names of a veth pair created by [`veth_pair`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethPair {
    /// The end inside namespace `a`, named `veth{N}a`.
    pub a_interface: String,
    /// The end inside namespace `b`, named `veth{N}b`.
    pub b_interface: String,
}

/// Links namespaces `a` and `b` with a veth pair and brings both ends up.
///
/// Each end gets its IPv4 address with prefix length /24 and its IPv6 address with /64 and
/// `nodad`, so IPv6 works at once without waiting for duplicate address detection. Pass bare
/// addresses: IPv4 ones must be in 10.0.0.0/8 and IPv6 ones in fd00::/8 (ULA), so that test
/// traffic can never be addressed to a real network.
///
/// The interface names are `veth{N}a` and `veth{N}b` with a per-process counter `N`, which
/// keeps them within the kernel's 15-byte limit. The pair is created directly inside the two
/// namespaces and never appears in the host's namespace.
pub fn veth_pair(
    a: &Netns,
    b: &Netns,
    a_v4: &str,
    b_v4: &str,
    a_v6: &str,
    b_v6: &str,
) -> io::Result<VethPair> {
    if a.name == b.name {
        return Err(invalid_input(format!(
            "veth_pair needs two different namespaces, got {} twice",
            a.name
        )));
    }
    for address in [a_v4, b_v4] {
        validate_test_ipv4(address)?;
    }
    for address in [a_v6, b_v6] {
        validate_test_ipv6(address)?;
    }

    let index = NEXT_VETH_INDEX.fetch_add(1, Ordering::Relaxed);
    let pair = VethPair {
        a_interface: format!("veth{index}a"),
        b_interface: format!("veth{index}b"),
    };

    a.ip([
        "link",
        "add",
        &pair.a_interface,
        "type",
        "veth",
        "peer",
        "name",
        &pair.b_interface,
        "netns",
        &b.name,
    ])?;

    for (netns, interface, v4, v6) in [
        (a, &pair.a_interface, a_v4, a_v6),
        (b, &pair.b_interface, b_v4, b_v6),
    ] {
        netns.ip(["addr", "add", &format!("{v4}/24"), "dev", interface])?;
        netns.ip([
            "addr",
            "add",
            &format!("{v6}/64"),
            "dev",
            interface,
            "nodad",
        ])?;
        netns.ip(["link", "set", interface, "up"])?;
    }
    Ok(pair)
}

fn validate_prefix(prefix: &str) -> io::Result<()> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN || !prefix.chars().all(allowed) {
        return Err(invalid_input(format!(
            "invalid namespace prefix {prefix:?}: expected 1 to {MAX_PREFIX_LEN} characters of a-z, 0-9 and -"
        )));
    }
    Ok(())
}

/// Checks that `address` is a bare IPv4 address in 10.0.0.0/8.
fn validate_test_ipv4(address: &str) -> io::Result<()> {
    let parsed: Ipv4Addr = address.parse().map_err(|_| {
        invalid_input(format!(
            "invalid IPv4 address {address:?}: pass a bare address such as 10.80.0.1, without a prefix length"
        ))
    })?;
    if parsed.octets()[0] != 10 {
        return Err(invalid_input(format!(
            "IPv4 address {address} is outside 10.0.0.0/8, the only range allowed for test networks"
        )));
    }
    Ok(())
}

/// Checks that `address` is a bare IPv6 address in fd00::/8.
fn validate_test_ipv6(address: &str) -> io::Result<()> {
    let parsed: Ipv6Addr = address.parse().map_err(|_| {
        invalid_input(format!(
            "invalid IPv6 address {address:?}: pass a bare address such as fd00:80::1, without a prefix length"
        ))
    })?;
    if parsed.octets()[0] != 0xfd {
        return Err(invalid_input(format!(
            "IPv6 address {address} is outside fd00::/8, the only range allowed for test networks"
        )));
    }
    Ok(())
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_validation() {
        assert!(validate_prefix("srv").is_ok());
        assert!(validate_prefix("e2e-client-1").is_ok());
        assert!(validate_prefix("").is_err());
        assert!(validate_prefix("Upper").is_err());
        assert!(validate_prefix("has space").is_err());
        assert!(validate_prefix("slash/").is_err());
        assert!(validate_prefix(&"a".repeat(MAX_PREFIX_LEN)).is_ok());
        assert!(validate_prefix(&"a".repeat(MAX_PREFIX_LEN + 1)).is_err());
    }

    #[test]
    fn ipv4_outside_ten_slash_eight_rejected() {
        assert!(validate_test_ipv4("10.0.0.1").is_ok());
        assert!(validate_test_ipv4("10.255.255.254").is_ok());
        assert!(validate_test_ipv4("192.168.1.1").is_err());
        assert!(validate_test_ipv4("172.16.0.1").is_err());
        assert!(validate_test_ipv4("8.8.8.8").is_err());
        assert!(validate_test_ipv4("10.0.0.1/24").is_err());
        assert!(validate_test_ipv4("fd00::1").is_err());
    }

    #[test]
    fn ipv6_outside_ula_fd_rejected() {
        assert!(validate_test_ipv6("fd00::1").is_ok());
        assert!(validate_test_ipv6("fdab:cd::2").is_ok());
        assert!(validate_test_ipv6("fc00::1").is_err());
        assert!(validate_test_ipv6("2001:db8::1").is_err());
        assert!(validate_test_ipv6("::1").is_err());
        assert!(validate_test_ipv6("fd00::1/64").is_err());
        assert!(validate_test_ipv6("10.0.0.1").is_err());
    }

    #[test]
    fn veth_interface_names_fit_ifnamsiz() {
        // Linux interface names hold at most 15 bytes plus the terminating NUL.
        assert!(format!("veth{}a", u32::MAX).len() <= 15);
    }
}
