//! Snapshots of a folder tree, for checking that a run changed nothing or only what it should.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Type, owner, mode, inode, modification time and contents (or link target) of one entry,
/// as `lstat` reports it.
///
/// `kind` is `"file"`, `"folder"`, `"symlink"` or `"special"`. Only regular files and links
/// have `contents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord {
    pub kind: &'static str,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits, including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub inode: u64,
    /// Modification time in nanoseconds since the Unix epoch, or 0 for a folder. Creating and
    /// removing a temporary entry (a run lock, a tool's temporary file) changes a folder's
    /// modification time while leaving the tree as it was.
    pub modified_ns: i128,
    pub contents: Vec<u8>,
}

/// Fields of [`EntryRecord`] that a comparison leaves out. The default compares every field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ignored {
    /// Leave out the inode, which changes when a file is replaced by an identical copy.
    pub inode: bool,
    /// Leave out the modification time, which changes when a file is rewritten unchanged.
    pub modified: bool,
}

impl EntryRecord {
    /// Returns true when both records are equal in every field that `ignored` does not name.
    pub fn matches(&self, other: &EntryRecord, ignored: Ignored) -> bool {
        self.kind == other.kind
            && self.uid == other.uid
            && self.gid == other.gid
            && self.mode == other.mode
            && (ignored.inode || self.inode == other.inode)
            && (ignored.modified || self.modified_ns == other.modified_ns)
            && self.contents == other.contents
    }
}

impl fmt::Display for EntryRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}:{} {:04o} inode {}, modified {} ns, {} bytes",
            self.kind,
            self.uid,
            self.gid,
            self.mode,
            self.inode,
            self.modified_ns,
            self.contents.len()
        )?;
        if self.kind == "symlink" {
            write!(f, " -> {}", String::from_utf8_lossy(&self.contents))?;
        }
        Ok(())
    }
}

/// Entries by path relative to the snapshot's top. The top itself has the key `""`.
pub type TreeSnapshot = BTreeMap<String, EntryRecord>;

/// Records `top` and every entry beneath it without following links.
///
/// # Panics
///
/// Panics when an entry cannot be read, for example because it vanished during the walk.
pub fn snapshot_tree(top: &Path) -> TreeSnapshot {
    snapshot_tree_except(top, &[])
}

/// Records `top` and every entry beneath it without following links, except the relative
/// paths in `ignored` and, for an ignored folder, everything beneath it.
///
/// # Panics
///
/// Panics when an entry cannot be read, for example because it vanished during the walk.
pub fn snapshot_tree_except(top: &Path, ignored: &[&str]) -> TreeSnapshot {
    let mut snapshot = TreeSnapshot::new();
    record_entry(top, "", ignored, &mut snapshot);
    snapshot
}

fn record_entry(path: &Path, relative: &str, ignored: &[&str], snapshot: &mut TreeSnapshot) {
    if ignored.contains(&relative) {
        return;
    }
    let metadata = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file_type = metadata.file_type();
    let (kind, contents) = if file_type.is_symlink() {
        let target = fs::read_link(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        ("symlink", target.into_os_string().into_encoded_bytes())
    } else if file_type.is_dir() {
        ("folder", Vec::new())
    } else if file_type.is_file() {
        ("file", fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    } else {
        ("special", Vec::new())
    };
    let modified_ns = if kind == "folder" {
        0
    } else {
        i128::from(metadata.mtime()) * 1_000_000_000 + i128::from(metadata.mtime_nsec())
    };
    snapshot.insert(
        relative.to_owned(),
        EntryRecord {
            kind,
            uid: metadata.uid(),
            gid: metadata.gid(),
            mode: metadata.mode() & 0o7777,
            inode: metadata.ino(),
            modified_ns,
            contents,
        },
    );
    if kind == "folder" {
        let mut names: Vec<_> = fs::read_dir(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|entry| entry.expect("read an entry").file_name())
            .collect();
        names.sort();
        for name in names {
            let child = if relative.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{relative}/{}", name.to_string_lossy())
            };
            record_entry(&path.join(&name), &child, ignored, snapshot);
        }
    }
}

/// Lists every difference between two snapshots, one line each, leaving out the fields in
/// `ignored`. Returns an empty list when the trees match.
pub fn snapshot_differences(before: &TreeSnapshot, after: &TreeSnapshot, ignored: Ignored) -> Vec<String> {
    let mut differences = Vec::new();
    for (path, old) in before {
        match after.get(path) {
            None => differences.push(format!("{path:?} was removed")),
            Some(new) if !new.matches(old, ignored) => {
                let contents = if new.contents == old.contents { "same contents" } else { "different contents" };
                differences.push(format!("{path:?} changed from {old} to {new} ({contents})"));
            }
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|path| !before.contains_key(*path)) {
        differences.push(format!("{path:?} appeared: {}", after[path]));
    }
    differences
}
