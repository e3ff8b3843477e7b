//! Choosing the firewall backend, and rejecting raw rules on a host whose
//! firewall belongs to ufw or firewalld.

use mxharden_fs::RootDir;
use mxharden_spec::FirewallBackend;

use crate::error::FirewallError;

/// Largest configuration file read while detecting, in bytes.
const FILE_LIMIT: u64 = 1024 * 1024;

/// A firewall backend that writes rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A table of mxharden's own per app.
    Nftables,
    /// Chains of mxharden's own per app in the iptables and ip6tables `filter` tables.
    Iptables,
}

impl Backend {
    /// Returns the name used in the desired state and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Nftables => "nftables",
            Backend::Iptables => "iptables",
        }
    }
}

/// A firewall manager that owns the host's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    /// `ufw` or `firewalld`.
    pub name: &'static str,
    /// What showed it, e.g. `ENABLED=yes in /etc/ufw/ufw.conf`.
    pub evidence: String,
}

fn read_text(root: &RootDir, path: &str) -> Result<Option<String>, FirewallError> {
    Ok(root.read_file(path, FILE_LIMIT)?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// Finds an active ufw or firewalld from its files, which works on a
/// `--root` tree too: ufw is active when `/etc/ufw/ufw.conf` says
/// `ENABLED=yes`, and firewalld when its unit is enabled or, on the live
/// host, its PID file names a running process.
pub fn active_manager(root: &RootDir, live: bool) -> Result<Option<Manager>, FirewallError> {
    if let Some(text) = read_text(root, "/etc/ufw/ufw.conf")? {
        let enabled = text.lines().any(|line| {
            let line = line.trim();
            line == "ENABLED=yes" || line == "ENABLED=\"yes\""
        });
        if enabled {
            return Ok(Some(Manager {
                name: "ufw",
                evidence: "ENABLED=yes in /etc/ufw/ufw.conf".to_owned(),
            }));
        }
    }
    let enabled_link = "/etc/systemd/system/multi-user.target.wants/firewalld.service";
    if root.meta(enabled_link)?.is_some() {
        return Ok(Some(Manager {
            name: "firewalld",
            evidence: format!("{enabled_link} exists, so the unit is enabled"),
        }));
    }
    if live {
        if let Some(pid) = read_text(root, "/run/firewalld.pid")? {
            let running = pid.trim().parse::<u32>().is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
            if running {
                return Ok(Some(Manager {
                    name: "firewalld",
                    evidence: "/run/firewalld.pid names a running process".to_owned(),
                }));
            }
        }
    }
    Ok(None)
}

/// Resolves `requested` to the backend that writes rules, or `None` for
/// `none`. `auto` picks iptables when the host keeps iptables rules in
/// `/etc/iptables/rules.v4` (Debian's iptables-persistent), nftables
/// otherwise. Under an active ufw or firewalld every backend is rejected,
/// because raw rules beside them would be changed behind the manager's back.
pub fn resolve_backend(root: &RootDir, live: bool, requested: FirewallBackend) -> Result<Option<Backend>, FirewallError> {
    let backend = match requested {
        FirewallBackend::None => return Ok(None),
        FirewallBackend::Nftables => Backend::Nftables,
        FirewallBackend::Iptables => Backend::Iptables,
        FirewallBackend::Auto => {
            if root.meta("/etc/iptables/rules.v4")?.is_some() {
                Backend::Iptables
            } else {
                Backend::Nftables
            }
        }
    };
    if let Some(manager) = active_manager(root, live)? {
        return Err(FirewallError::Conflict(format!(
            "{name} manages this host's firewall ({evidence}); mxharden does not write raw {backend} rules beside it and has no {name} backend yet: \
             open the runtime port to the proxy hosts with {name} itself, or disable {name}",
            name = manager.name,
            evidence = manager.evidence,
            backend = backend.name(),
        )));
    }
    Ok(Some(backend))
}
