//! Host firewall backends: the rules that let only loopback and the
//! configured proxy hosts reach an app's runtime port, and only loopback its
//! admin port.
//!
//! The nftables and iptables backends only restrict. Their rules drop
//! packets to the app's two ports from other sources and leave every other
//! packet to the host's own rules. So they set no default policy and touch
//! no other port, and an SSH session cannot be cut by them. The ufw and
//! firewalld backends also accept the runtime port from the proxies, because
//! those managers reject every port that is not opened.
//!
//! On a `--root` tree the backends write files and never run a firewall
//! command that reads or changes the live rules; the checks in
//! [`nftables::check`] run in a new, empty network namespace there.

pub mod change;
pub mod command;
pub mod detect;
pub mod docker;
pub mod error;
pub mod firewalld;
pub mod nftables;
pub mod plan;
pub mod iptables;
pub mod ssh;
pub mod ufw;

pub use change::{Change, Undo, execute};
pub use detect::{Backend, resolve_backend};
pub use error::FirewallError;
pub use plan::{FirewallPlan, plan_firewall, plan_removal, render_artifacts};
