//! The recursive owner and mode pass over `model/` and `data/`.
//!
//! The walk keeps a descriptor for every folder on the current path and
//! opens each child relative to its parent with `O_NOFOLLOW`, so renames,
//! swaps and planted links by the app user cannot lead it outside the tree.
//! Memory grows with the depth of the tree, not with the number of entries.

use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{AtFlags, Dir, Mode, OFlags};
use rustix::io::Errno;

use crate::error::FsError;
use crate::root::{EntryKind, Meta, RootDir, open_entry_nofollow, set_fd_meta};

/// Deepest folder nesting the walk descends into.
pub const MAX_DEPTH: usize = 512;

/// At most this many skipped entries are listed one by one; the rest are counted.
pub const MAX_LISTED_SKIPS: usize = 100;

/// The owner and modes a tree must have.
#[derive(Debug, Clone, Copy)]
pub struct TreePolicy {
    /// Owner of every entry.
    pub uid: u32,
    /// Group of every entry.
    pub gid: u32,
    /// Mode of every folder.
    pub dir_mode: u32,
    /// Permission bits removed from every regular file (e.g. `0o077`).
    pub file_clear_bits: u32,
}

impl TreePolicy {
    fn wanted_mode(&self, meta: &Meta) -> u32 {
        match meta.kind {
            EntryKind::Dir => self.dir_mode,
            _ => meta.mode & !self.file_clear_bits & 0o777,
        }
    }

    fn complies(&self, meta: &Meta) -> bool {
        meta.uid == self.uid && meta.gid == self.gid && meta.mode == self.wanted_mode(meta)
    }
}

/// An entry the walk did not touch, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Host path of the entry.
    pub path: PathBuf,
    /// The reason it was left alone.
    pub reason: String,
}

/// Counts and skipped entries of one walk.
#[derive(Debug, Clone, Default)]
pub struct TreeReport {
    /// Entries examined, the top folder included.
    pub examined: u64,
    /// Entries that did not comply (changed, unless the walk only looked).
    pub noncompliant: u64,
    /// Entries left alone, up to [`MAX_LISTED_SKIPS`].
    pub skipped: Vec<Skipped>,
    /// Entries left alone beyond those listed.
    pub skipped_unlisted: u64,
    /// Symbolic links left alone. A folder that the app user swaps for a
    /// link during the walk is counted here, and its entries are not reached.
    pub links: u64,
}

impl TreeReport {
    fn skip(&mut self, path: PathBuf, reason: impl Into<String>) {
        if self.skipped.len() < MAX_LISTED_SKIPS {
            self.skipped.push(Skipped {
                path,
                reason: reason.into(),
            });
        } else {
            self.skipped_unlisted += 1;
        }
    }
}

struct Level {
    dir: Dir,
    fd: OwnedFd,
    path: PathBuf,
}

/// Walks the folder at `path` beneath `root`, counting entries that do not
/// follow `policy` and, when `fix` is true, changing them. `progress` is
/// called every 65,536 entries with the count so far.
pub fn walk_tree(
    root: &RootDir,
    path: &str,
    policy: TreePolicy,
    fix: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<TreeReport, FsError> {
    let mut report = TreeReport::default();
    let host_path = root.host_path(path);
    let Some(top) = root.open_dir(path)? else {
        return Ok(report);
    };
    let stat = rustix::fs::fstat(&top).map_err(|e| FsError::io(&host_path, "stat", e))?;
    visit_fd(&top, &Meta::of(&stat), &host_path, policy, fix, &mut report)?;
    let mut stack = vec![open_level(top, host_path)?];

    while let Some(level) = stack.last_mut() {
        let Some(entry) = level.dir.read() else {
            stack.pop();
            continue;
        };
        let entry = entry.map_err(|e| FsError::io(&level.path, "read folder", e))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let child_path = level.path.join(name.to_string_lossy().as_ref());
        report.examined += 1;
        if report.examined % 65_536 == 0 {
            progress(report.examined);
        }
        let descend = visit_child(&level.fd, name, &child_path, policy, fix, &mut report)?;
        if let Some(child_fd) = descend {
            if stack.len() >= MAX_DEPTH {
                report.skip(child_path, format!("nested deeper than {MAX_DEPTH} folders"));
                continue;
            }
            stack.push(open_level(child_fd, child_path)?);
        }
    }
    report.examined += 1;
    Ok(report)
}

fn open_level(fd: OwnedFd, path: PathBuf) -> Result<Level, FsError> {
    let reader = rustix::io::dup(&fd).map_err(|e| FsError::io(&path, "dup", e))?;
    let dir = Dir::new(reader).map_err(|e| FsError::io(&path, "read folder", e))?;
    Ok(Level { dir, fd, path })
}

/// Checks one entry with a single `lstat`; opens it only when it must
/// change or is a folder to descend into. Returns the folder to descend into.
fn visit_child(
    parent: &OwnedFd,
    name: &CStr,
    path: &PathBuf,
    policy: TreePolicy,
    fix: bool,
    report: &mut TreeReport,
) -> Result<Option<OwnedFd>, FsError> {
    let stat = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(FsError::io(path, "stat", e)),
    };
    let meta = Meta::of(&stat);
    match meta.kind {
        EntryKind::Symlink => {
            // A link's own owner does not grant access to its target; leave it.
            report.links += 1;
            return Ok(None);
        }
        EntryKind::Other => {
            report.skip(path.clone(), format!("{} is neither a regular file nor a folder", meta.kind.describe()));
            return Ok(None);
        }
        EntryKind::File if meta.links > 1 && meta.uid != policy.uid => {
            report.skip(
                path.clone(),
                "a hard-linked file owned by another account; changing it would change every link",
            );
            return Ok(None);
        }
        _ => {}
    }
    let is_dir = meta.kind == EntryKind::Dir;
    if policy.complies(&meta) && !is_dir {
        return Ok(None);
    }

    let opened = if is_dir {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rustix::fs::openat(parent, name, flags, Mode::empty())
    } else {
        open_entry_nofollow(parent, name)
    };
    let fd = match opened {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
            report.skip(path.clone(), "replaced by another type of entry during the walk");
            return Ok(None);
        }
        Err(e) => return Err(FsError::io(path, "open", e)),
    };
    let opened_stat = rustix::fs::fstat(&fd).map_err(|e| FsError::io(path, "stat", e))?;
    if opened_stat.st_ino != stat.st_ino || opened_stat.st_dev != stat.st_dev {
        report.skip(path.clone(), "replaced by another entry during the walk");
        return Ok(None);
    }
    visit_fd(&fd, &Meta::of(&opened_stat), path, policy, fix, report)?;
    Ok(is_dir.then_some(fd))
}

fn visit_fd(
    fd: impl AsFd,
    meta: &Meta,
    path: &PathBuf,
    policy: TreePolicy,
    fix: bool,
    report: &mut TreeReport,
) -> Result<(), FsError> {
    if policy.complies(meta) {
        return Ok(());
    }
    report.noncompliant += 1;
    if fix {
        set_fd_meta(fd, policy.uid, policy.gid, policy.wanted_mode(meta)).map_err(|e| FsError::io(path, "chown", e))?;
    }
    Ok(())
}
