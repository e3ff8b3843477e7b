//! Checks made before the first change of a run: the programs that the
//! steps run are installed, and every file system that the steps write to
//! is writable and has room. A run that would fail on these stops here with
//! nothing changed, instead of failing halfway, where the account, folders
//! and modes already changed could not be rolled back.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mxharden_plan::steps::FileStep;
use mxharden_plan::{Activation, AppPlan, Host, Step};
use mxharden_spec::values::AbsPath;
use mxharden_firewall::{Backend, Change};
use rustix::fs::{StatVfs, StatVfsMountFlags};

use crate::commands::systemd_running;
use crate::error::ApplyError;

/// Blocks kept free on every file system written to, beyond the estimate,
/// for metadata (folder entries, journal) that the estimate does not count.
const HEADROOM_BLOCKS: u64 = 16;

/// Files that `useradd` rewrites, each next to a backup copy (`passwd-`).
const ACCOUNT_FILES: &[&str] = &["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"];

/// Demand of the steps on one file system, with its statistics.
struct Demand {
    /// A path on it that a step changes, for the message.
    example: PathBuf,
    /// Estimated blocks written.
    blocks: u64,
    /// Entries created.
    inodes: u64,
    /// The file system's statistics.
    stats: StatVfs,
}

/// Checks that every plan can run to its end: the programs its steps run
/// are on `PATH`, and the file systems it writes to are writable and have
/// room for the estimated writes.
pub fn preflight(host: &Host, plans: &[AppPlan]) -> Result<(), ApplyError> {
    let mut programs: Vec<(&str, &str)> = Vec::new();
    let mut demands: BTreeMap<u64, Demand> = BTreeMap::new();
    for step in plans.iter().flat_map(|plan| &plan.steps) {
        match step {
            Step::Account(_) => {
                programs.push(("useradd", "create the app's account"));
                for file in ACCOUNT_FILES {
                    let size = std::fs::metadata(host.host_path(file)).map(|m| m.len()).unwrap_or(0);
                    // The rewritten file and its backup copy.
                    add_demand(host, &abs(file), &[size, size], &mut demands)?;
                }
            }
            Step::Dir(dir) if dir.create => add_demand(host, &dir.path, &[0], &mut demands)?,
            Step::Dir(dir) => add_demand(host, &dir.path, &[], &mut demands)?,
            Step::Tree(tree) => add_demand(host, &tree.path, &[], &mut demands)?,
            Step::File(file) => add_file_demand(host, file, &mut demands)?,
            Step::Activate(Activation::ReloadNginx) => programs.push(("nginx", "check and reload the nginx site")),
            Step::Firewall(Change::Load { backend, .. } | Change::Unload { backend, .. }) => {
                programs.extend(firewall_programs(*backend).iter().map(|program| (*program, "change the firewall rules")));
            }
            Step::Firewall(_) => {}
            Step::Activate(Activation::ReloadSystemd) if systemd_running() => {
                programs.push(("systemctl", "make systemd read the unit"));
            }
            Step::Activate(Activation::ReloadSystemd) => {}
        }
    }
    for (program, purpose) in programs {
        if find_on_path(program).is_none() {
            return Err(ApplyError::Preflight(format!(
                "{program} is not installed or not on PATH, and it is needed to {purpose}; install it and run again"
            )));
        }
    }
    demands.values().try_for_each(check_room)
}

/// Returns the programs that load or unload rules of `backend` on a live host.
fn firewall_programs(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Nftables => &["nft"],
        Backend::Iptables => &["iptables-restore", "ip6tables-restore"],
        Backend::Ufw => &["ufw"],
        Backend::Firewalld => &["firewall-cmd"],
        Backend::Windows => &[],
    }
}

fn abs(path: &str) -> AbsPath {
    path.parse().expect("constant paths are valid")
}

fn add_file_demand(host: &Host, file: &FileStep, demands: &mut BTreeMap<u64, Demand>) -> Result<(), ApplyError> {
    if file.content_changes {
        // The new contents go to a temporary file next to the old one.
        add_demand(host, &file.path, &[file.after.len() as u64], demands)
    } else {
        add_demand(host, &file.path, &[], demands)
    }
}

/// Adds one new entry per size in `new_entries` to the file system that
/// contains `path`, or will contain it: the file system of its nearest existing
/// folder. With no entries, only checks that the file system is writable.
fn add_demand(host: &Host, path: &AbsPath, new_entries: &[u64], demands: &mut BTreeMap<u64, Demand>) -> Result<(), ApplyError> {
    let existing = nearest_existing(host, path)?;
    let host_path = host.host_path(&existing);
    let stats = rustix::fs::statvfs(&host_path)
        .map_err(|e| ApplyError::Preflight(format!("{}: cannot read the file system's free space: {e}", host_path.display())))?;
    if stats.f_flag.contains(StatVfsMountFlags::RDONLY) {
        let changed = host.host_path(path.as_str());
        let holder = if existing == path.as_str() { String::new() } else { format!(" (in {})", host_path.display()) };
        return Err(ApplyError::Preflight(format!(
            "{} must change, but it is on a read-only file system{holder}; remount it read-write and run again",
            changed.display()
        )));
    }
    let block = stats.f_frsize.max(512);
    let demand = demands.entry(stats.f_fsid).or_insert_with(|| Demand {
        example: host.host_path(path.as_str()),
        blocks: 0,
        inodes: 0,
        stats,
    });
    for size in new_entries {
        // Every new entry takes at least one block (a folder, or a file's
        // first block) on the file systems mxharden is used on.
        demand.blocks += size.div_ceil(block).max(1);
        demand.inodes += 1;
    }
    Ok(())
}

fn check_room(demand: &Demand) -> Result<(), ApplyError> {
    let stats = &demand.stats;
    let block = stats.f_frsize.max(512);
    let needed = demand.blocks + if demand.blocks > 0 { HEADROOM_BLOCKS } else { 0 };
    if needed > stats.f_bavail {
        return Err(ApplyError::Preflight(format!(
            "the file system that contains {} has {} KiB free, and the changes need about {} KiB; free some space and run again",
            demand.example.display(),
            stats.f_bavail * block / 1024,
            needed * block / 1024
        )));
    }
    // File systems without an inode limit report no inodes at all.
    if stats.f_files > 0 && demand.inodes > stats.f_favail {
        return Err(ApplyError::Preflight(format!(
            "the file system that contains {} has {} free inodes, and the changes create {} entries; remove some files and run again",
            demand.example.display(),
            stats.f_favail,
            demand.inodes
        )));
    }
    Ok(())
}

/// Returns `path` or its nearest ancestor that exists beneath the root.
fn nearest_existing(host: &Host, path: &AbsPath) -> Result<String, ApplyError> {
    let mut current = Some(path.clone());
    while let Some(candidate) = current {
        if host.root.meta(candidate.as_str())?.is_some() {
            return Ok(candidate.as_str().to_owned());
        }
        current = candidate.parent();
    }
    Ok("/".to_owned())
}

/// Finds `program` as `std::process::Command` does: in the folders of `PATH`.
fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}
