//! Clients that tests use to reach servers inside namespaces.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::netns::Netns;

/// Maximum time for one connection attempt in [`wait_for_tcp`].
const CONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(250);

/// Pause between connection attempts in [`wait_for_tcp`].
const RETRY_INTERVAL: Duration = Duration::from_millis(50);

/// Waits until a TCP connection to `addr` succeeds, then closes it.
///
/// With `Some(ns)` the connection is made from inside that namespace, otherwise from the
/// test process's own namespace, which should then only be used for loopback addresses.
/// Fails with `TimedOut`, naming the last connection error, when `timeout` passes first.
pub fn wait_for_tcp(ns: Option<&Netns>, addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    match ns {
        Some(ns) => ns
            .run_in(|| connect_until(addr, timeout))?
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("{error} (from network namespace {})", ns.name()),
                )
            }),
        None => connect_until(addr, timeout),
    }
}

fn connect_until(addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let last_error = match TcpStream::connect_timeout(&addr, CONNECT_ATTEMPT_TIMEOUT) {
            Ok(_stream) => return Ok(()),
            Err(error) => error,
        };
        if Instant::now() + RETRY_INTERVAL >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no TCP listener accepted a connection to {addr} within {timeout:?}; last error: {last_error}"
                ),
            ));
        }
        thread::sleep(RETRY_INTERVAL);
    }
}

/// Builds `ip netns exec NAME curl --silent --show-error --max-time 5 --noproxy *`.
///
/// Append the URL and any other options. `--noproxy *` makes curl ignore `http_proxy` and
/// `https_proxy` in the test environment and connect to the URL's host directly.
pub fn curl(ns: &Netns) -> Command {
    ns.command(
        "curl",
        [
            "--silent",
            "--show-error",
            "--max-time",
            "5",
            "--noproxy",
            "*",
        ],
    )
}

/// Tries a TCP connection from inside `ns` to each address at the same time, each with
/// `timeout`, and returns every address with its outcome, in the order of `addresses`.
pub fn connect_from(
    ns: &Netns,
    addresses: &[SocketAddr],
    timeout: Duration,
) -> Vec<(SocketAddr, io::Result<()>)> {
    thread::scope(|scope| {
        let attempts: Vec<_> = addresses
            .iter()
            .map(|&address| {
                let attempt = scope.spawn(move || {
                    ns.run_in(|| TcpStream::connect_timeout(&address, timeout).map(drop))
                        .and_then(|result| result)
                });
                (address, attempt)
            })
            .collect();
        attempts
            .into_iter()
            .map(|(address, attempt)| (address, attempt.join().expect("connect thread panicked")))
            .collect()
    })
}
