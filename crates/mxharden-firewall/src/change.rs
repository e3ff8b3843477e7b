//! Firewall changes of a plan, how each is carried out, and how each is undone.

use std::path::PathBuf;

use mxharden_fs::RootDir;
use mxharden_spec::values::AbsPath;

use crate::detect::Backend;
use crate::error::FirewallError;
use crate::{firewalld, iptables, nftables, ufw};

/// One firewall change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Change {
    /// Enable the unit that loads the rules at boot with a link in
    /// `sysinit.target.wants`, as `systemctl enable` does.
    EnableUnit {
        /// The link.
        link: AbsPath,
        /// The unit file it points to.
        target: AbsPath,
    },
    /// Load the app's rules into the live firewall.
    Load {
        /// The backend.
        backend: Backend,
        /// The nftables table, iptables chain, ufw comment or firewalld policy.
        name: String,
        /// The rules files to load: one for nftables, IPv4 then IPv6 for
        /// iptables, none for ufw and firewalld.
        files: Vec<AbsPath>,
        /// The ufw rules, as ufw's rule files store them, in order, or the
        /// firewalld rich rules.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        rules: Vec<String>,
        /// Unified diff from the live rules to the desired ones, when the
        /// saved rules file is unchanged (or there is none) and the live rules differ.
        #[serde(skip_serializing_if = "Option::is_none")]
        drift: Option<String>,
    },
    /// Delete the app's rules from the live firewall.
    Unload {
        /// The backend.
        backend: Backend,
        /// The nftables table, iptables chain, ufw comment or firewalld policy.
        name: String,
    },
    /// Delete a file or link of the app's firewall.
    Remove {
        /// The file or link.
        path: AbsPath,
    },
}

impl Change {
    /// Returns the plan lines for this change.
    pub fn describe(&self) -> Vec<String> {
        match self {
            Change::EnableUnit { link, target } => vec![format!("+ link {link} -> {target}")],
            Change::Load { backend, name, drift, .. } => {
                let mut lines = vec![format!("! load {} rules {name}", backend.name())];
                if drift.is_some() {
                    lines.push(format!("  the live {} rules {name} differ from the desired ones (diff below)", backend.name()));
                }
                lines
            }
            Change::Unload { backend, name } => vec![format!("- {} rules {name}", backend.name())],
            Change::Remove { path } => vec![format!("- file {path}")],
        }
    }
}

/// The inverse of one change, which restores the state before it.
#[derive(Debug, Clone)]
pub enum Undo {
    /// Remove a link this run created.
    RemoveLink {
        /// The link.
        link: AbsPath,
    },
    /// Put back the live rules as they were before a load.
    RestoreLive {
        /// The backend.
        backend: Backend,
        /// The nftables table, iptables chain, ufw comment or firewalld policy.
        name: String,
        /// The live rules before the load, in the backend's own listing
        /// format (for ufw, its rule lines); `None` when there were none.
        previous: Option<String>,
    },
}

impl Undo {
    /// Restores the state before the change.
    pub fn run(&self, root: &RootDir) -> Result<(), FirewallError> {
        match self {
            Undo::RemoveLink { link } => root.remove_file(link.as_str()).map_err(Into::into),
            Undo::RestoreLive { backend: Backend::Nftables, name, previous } => nftables::restore(name, previous.as_deref()),
            Undo::RestoreLive { backend: Backend::Iptables, name, previous } => iptables::restore(name, previous.as_deref()),
            // NOTE: restored ufw rules go to the top of each family, wherever they were before.
            Undo::RestoreLive { backend: Backend::Ufw, name, previous } => {
                let tuples: Vec<String> = previous.iter().flat_map(|text| text.lines().map(str::to_owned)).collect();
                ufw::replace(root, name, &tuples)
            }
            Undo::RestoreLive { backend: Backend::Firewalld, name, previous } => firewalld::restore(name, previous.as_deref()),
            Undo::RestoreLive { backend: Backend::Windows, .. } => Ok(()),
        }
    }

    /// Describes what the undo restores, for the report.
    pub fn describe(&self) -> String {
        match self {
            Undo::RemoveLink { link } => link.to_string(),
            Undo::RestoreLive { backend, name, .. } => format!("live {} rules {name}", backend.name()),
        }
    }
}

/// Carries out `change` on the tree under `root`; returns how to undo it.
/// Changes to the live firewall run only when `live` is true.
pub fn execute(root: &RootDir, live: bool, change: &Change) -> Result<Option<Undo>, FirewallError> {
    match change {
        Change::EnableUnit { link, target } => {
            enable_link(root, link, target)?;
            Ok(Some(Undo::RemoveLink { link: link.clone() }))
        }
        Change::Load { .. } | Change::Unload { .. } if !live => Ok(None),
        // Windows rules run on another host, so nothing is loaded or unloaded here.
        Change::Unload { backend: Backend::Windows, .. } => Ok(None),
        Change::Load { backend, name, files, rules, .. } => {
            let host_files: Vec<PathBuf> = files.iter().map(|file| root.host_path(file.as_str())).collect();
            let previous = match backend {
                Backend::Nftables => nftables::live_table(name)?,
                Backend::Iptables => iptables::live_chains(name)?,
                Backend::Ufw => ufw::marked_tuples(root, name)?.map(|tuples| tuples.join("\n")),
                Backend::Firewalld => firewalld::live_policy(name)?,
                Backend::Windows => return Ok(None),
            };
            let undo = Undo::RestoreLive {
                backend: *backend,
                name: name.clone(),
                previous,
            };
            let loaded = match backend {
                Backend::Nftables => nftables::load(&host_files[0]),
                Backend::Iptables => iptables::load(name, &host_files),
                Backend::Ufw => ufw::replace(root, name, rules),
                Backend::Firewalld => firewalld::replace(name, rules),
                Backend::Windows => unreachable!("returned above"),
            };
            if let Err(error) = loaded {
                // A load of several commands may have run some of them.
                if let Err(undo_error) = undo.run(root) {
                    tracing::error!(what = %undo.describe(), error = %undo_error, "restoring the rules after a failed load failed");
                }
                return Err(error);
            }
            Ok(Some(undo))
        }
        Change::Unload { backend: Backend::Nftables, name } => nftables::delete(name).map(|()| None),
        Change::Unload { backend: Backend::Iptables, name } => iptables::delete(name).map(|()| None),
        Change::Unload { backend: Backend::Ufw, name } => ufw::delete_marked(root, name).map(|()| None),
        Change::Unload { backend: Backend::Firewalld, name } => firewalld::delete(name).map(|()| None),
        Change::Remove { path } => {
            root.remove_file(path.as_str())?;
            Ok(None)
        }
    }
}

/// Makes `link` a symbolic link to `target`, replacing a link that points elsewhere.
fn enable_link(root: &RootDir, link: &AbsPath, target: &AbsPath) -> Result<(), FirewallError> {
    let parent = link.parent().expect("unit links have a parent");
    root.create_dir_all(parent.as_str(), 0, 0, 0o755)?;
    if let Some(meta) = root.meta(link.as_str())? {
        if meta.kind != mxharden_fs::EntryKind::Symlink {
            return Err(FirewallError::Conflict(format!(
                "{} is {}, expected a link to {target}; move it away and run again",
                root.host_path(link.as_str()).display(),
                meta.kind.describe()
            )));
        }
        root.remove_file(link.as_str())?;
    }
    let (folder, name) = root.open_parent(link.as_str())?.expect("the link's folder was just created");
    rustix::fs::symlinkat(target.as_str(), &folder, name).map_err(|e| FirewallError::Io {
        path: root.host_path(link.as_str()),
        source: e.into(),
    })?;
    Ok(())
}

/// Returns where `link` points, or `None` when it is missing or not a link.
pub fn link_target(root: &RootDir, link: &AbsPath) -> Result<Option<String>, FirewallError> {
    let Some(meta) = root.meta(link.as_str())? else {
        return Ok(None);
    };
    if meta.kind != mxharden_fs::EntryKind::Symlink {
        return Ok(None);
    }
    let (folder, name) = root.open_parent(link.as_str())?.expect("an existing link has a folder");
    let target = rustix::fs::readlinkat(&folder, name, Vec::new()).map_err(|e| FirewallError::Io {
        path: root.host_path(link.as_str()),
        source: e.into(),
    })?;
    Ok(Some(target.to_string_lossy().into_owned()))
}
