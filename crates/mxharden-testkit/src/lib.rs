//! Test support for mxharden's end-to-end tests.
//!
//! The tests run real nginx and nftables between real TCP clients and servers, so they need
//! isolated networks, certificates and a backend to proxy to. This crate provides them:
//!
//! - [`netns`]: network namespaces ([`Netns`]) linked by veth pairs ([`veth_pair`]), and
//!   child processes that are killed on drop ([`Guarded`]).
//! - [`client`]: [`wait_for_tcp`], [`connect_from`] and a [`curl`] command that runs inside a
//!   namespace.
//! - [`process`]: guarded child processes and [`describe`], which formats a command's output.
//! - [`tls`]: throwaway certificates made with the `openssl` CLI: a CA and a server
//!   certificate ([`make_test_pki`]), and self-signed ones ([`write_self_signed_certificate`]).
//! - [`sandbox`]: the repository's `examples/root` and `examples/app.yaml`, and
//!   [`sandbox::copy_tree`] for copying a host tree.
//! - [`tree`]: snapshots of a folder tree for before-and-after comparisons.
//! - [`spec`]: desired states loaded from text ([`spec::load_app`]).
//! - [`stub`]: starts the `mxharden-stub-runtime` binary, an HTTP/1.1 stub of the Mendix
//!   runtime, and parses its request log ([`StubRuntime`], [`LogEntry`]).
//! - [`require_root_or_skip`]: the guard that every namespace test calls first.
//!
//! # Requirements
//!
//! Namespace tests need root and the `ip` tool from iproute2. The helpers also run `curl` and
//! `openssl`. On Debian: `apt-get install iproute2 curl openssl`.
//!
//! The stub runtime binary must be built before a test starts it. `cargo test -p
//! mxharden-testkit` builds it, and other packages' tests can run `cargo build -p
//! mxharden-testkit --bins` first or set `MXHARDEN_STUB_RUNTIME` (see
//! [`stub::stub_runtime_path`]).
//!
//! # Network safety
//!
//! [`veth_pair`] accepts only addresses in 10.0.0.0/8 and fd00::/8, and creates both veth ends
//! directly inside the test's namespaces, so the host's own network namespace never changes.
//! [`curl`] always runs inside a namespace. [`wait_for_tcp`] and [`StubRuntime::start`] with
//! `None` use the host's namespace and are meant for loopback addresses only.
//!
//! # Example
//!
//! ```no_run
//! use mxharden_testkit::{Netns, StubRuntime, curl, require_root_or_skip, veth_pair};
//!
//! if !require_root_or_skip("stub_answers_over_veth") {
//!     return;
//! }
//! let server = Netns::create("srv").unwrap();
//! let client = Netns::create("cli").unwrap();
//! veth_pair(&client, &server, "10.80.0.1", "10.80.0.2", "fd00:80::1", "fd00:80::2").unwrap();
//!
//! let log = std::env::temp_dir().join("stub.log");
//! let _stub = StubRuntime::start(Some(&server), &["0.0.0.0:8000"], &log).unwrap();
//! let output = curl(&client).arg("http://10.80.0.2:8000/").output().unwrap();
//! assert!(output.status.success());
//! ```

pub mod client;
pub mod netns;
pub mod process;
pub mod sandbox;
pub mod spec;
pub mod stub;
pub mod tls;
pub mod tree;

mod command;

use std::sync::OnceLock;

pub use client::{connect_from, curl, wait_for_tcp};
pub use netns::{Guarded, Netns, VethPair, spawn_until_line, veth_pair};
pub use stub::{LogEntry, StubRuntime};
pub use process::describe;
pub use tls::{Pki, make_test_pki, write_self_signed_ca, write_self_signed_certificate};

/// Checks that this process can create network namespaces.
///
/// Returns true when it runs as root and a probe namespace could be created and deleted.
/// Otherwise it prints a skip line to stderr and returns false, so the test can return early.
///
/// # Panics
///
/// Panics instead of skipping when the environment variable `CI` is `true`, so that a CI run
/// can never pass by skipping every namespace test.
pub fn require_root_or_skip(test_name: &str) -> bool {
    let Some(problem) = namespace_support_problem() else {
        return true;
    };

    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{test_name}: cannot run because {problem}. CI=true forbids skipping: \
             run the tests as root on a host with iproute2 installed"
        );
    }
    eprintln!("SKIPPED {test_name}: {problem} (run as root to include this test)");
    false
}

/// Returns why namespace tests cannot run here, or `None` when they can.
///
/// The probe runs once per process, because creating a namespace takes a few milliseconds
/// and every namespace test calls [`require_root_or_skip`].
fn namespace_support_problem() -> Option<&'static str> {
    static PROBLEM: OnceLock<Option<String>> = OnceLock::new();

    PROBLEM
        .get_or_init(|| {
            let euid = rustix::process::geteuid();
            if !euid.is_root() {
                return Some(format!(
                    "not running as root (effective uid {})",
                    euid.as_raw()
                ));
            }
            match Netns::create("probe") {
                Ok(probe) => {
                    drop(probe);
                    None
                }
                Err(error) => Some(format!("creating a network namespace failed: {error}")),
            }
        })
        .as_deref()
}
