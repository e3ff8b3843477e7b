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
    /// Rules added with ufw's own commands.
    Ufw,
    /// A firewalld policy added with `firewall-cmd`.
    Firewalld,
    /// A PowerShell script of Windows Firewall rules for another host.
    Windows,
}

impl Backend {
    /// Returns the name used in the desired state and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Nftables => "nftables",
            Backend::Iptables => "iptables",
            Backend::Ufw => "ufw",
            Backend::Firewalld => "firewalld",
            Backend::Windows => "windows",
        }
    }
}

/// A firewall manager that owns the host's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    /// `ufw` or `firewalld`.
    pub name: &'static str,
    /// Evidence of it, e.g. `ENABLED=yes in /etc/ufw/ufw.conf`.
    pub evidence: String,
}

fn read_text(root: &RootDir, path: &str) -> Result<Option<String>, FirewallError> {
    Ok(root.read_file(path, FILE_LIMIT)?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// Finds an active ufw or firewalld from its files, which works on a
/// `--root` tree too. ufw is active when `/etc/ufw/ufw.conf` contains
/// `ENABLED=yes`. firewalld is active when its unit is enabled or, on the
/// live host, when `firewall-cmd --state` succeeds or its PID file names a
/// running process.
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
    if live && crate::firewalld::running() {
        return Ok(Some(Manager {
            name: "firewalld",
            evidence: "firewall-cmd --state reports it running".to_owned(),
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
/// `none`. `auto` picks ufw when ufw is active, iptables when the host keeps
/// iptables rules in `/etc/iptables/rules.v4` (Debian's
/// iptables-persistent), and nftables otherwise. Under an active ufw or
/// firewalld the raw backends are rejected, because their rules would change
/// the host behind the manager's back. `ufw` and `firewalld` are rejected
/// unless that manager is active.
pub fn resolve_backend(root: &RootDir, live: bool, requested: FirewallBackend) -> Result<Option<Backend>, FirewallError> {
    let manager = active_manager(root, live)?;
    let ufw_active = manager.as_ref().is_some_and(|m| m.name == "ufw");
    let firewalld_active = manager.as_ref().is_some_and(|m| m.name == "firewalld");
    let backend = match requested {
        FirewallBackend::None => return Ok(None),
        // The rules are for the Windows host, so this host's manager does not matter.
        FirewallBackend::Windows => return Ok(Some(Backend::Windows)),
        FirewallBackend::Nftables => Backend::Nftables,
        FirewallBackend::Iptables => Backend::Iptables,
        FirewallBackend::Ufw if ufw_active => return Ok(Some(Backend::Ufw)),
        FirewallBackend::Ufw => {
            return Err(FirewallError::Conflict(
                "firewall.backend is ufw but ufw is not enabled (ENABLED=yes in /etc/ufw/ufw.conf); mxharden does not enable ufw, \
                 because that sets ufw's default-deny policy for the whole host: enable ufw yourself after allowing SSH, or choose nftables"
                    .to_owned(),
            ));
        }
        FirewallBackend::Firewalld if firewalld_active => return Ok(Some(Backend::Firewalld)),
        FirewallBackend::Firewalld => {
            return Err(FirewallError::Conflict(
                "firewall.backend is firewalld but firewalld is not running (firewall-cmd --state) nor enabled; start firewalld, or choose nftables"
                    .to_owned(),
            ));
        }
        FirewallBackend::Auto if ufw_active => return Ok(Some(Backend::Ufw)),
        FirewallBackend::Auto if firewalld_active => return Ok(Some(Backend::Firewalld)),
        FirewallBackend::Auto => {
            if root.meta("/etc/iptables/rules.v4")?.is_some() {
                Backend::Iptables
            } else {
                Backend::Nftables
            }
        }
    };
    if let Some(manager) = manager {
        return Err(FirewallError::Conflict(format!(
            "{name} manages this host's firewall ({evidence}); mxharden does not write raw {backend} rules beside it{advice}",
            name = manager.name,
            evidence = manager.evidence,
            backend = backend.name(),
            advice = format!(": set firewall.backend to {} or auto", manager.name),
        )));
    }
    Ok(Some(backend))
}
