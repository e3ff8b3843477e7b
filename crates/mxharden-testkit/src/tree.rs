//! Snapshots of a folder tree, for checking that a run changed nothing or only what it should.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Type, owner, mode, inode and contents (or link target) of one entry, as `lstat` reports it.
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
    pub contents: Vec<u8>,
}

impl EntryRecord {
    /// Returns true when both records match in everything but the inode, as a file that was
    /// replaced by an identical copy does.
    pub fn same_except_inode(&self, other: &EntryRecord) -> bool {
        self.kind == other.kind
            && self.uid == other.uid
            && self.gid == other.gid
            && self.mode == other.mode
            && self.contents == other.contents
    }
}

impl fmt::Display for EntryRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}:{} {:04o} inode {}, {} bytes",
            self.kind,
            self.uid,
            self.gid,
            self.mode,
            self.inode,
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
    snapshot.insert(
        relative.to_owned(),
        EntryRecord {
            kind,
            uid: metadata.uid(),
            gid: metadata.gid(),
            mode: metadata.mode() & 0o7777,
            inode: metadata.ino(),
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

/// Lists every difference between two snapshots, one line each, inodes included.
pub fn snapshot_differences(before: &TreeSnapshot, after: &TreeSnapshot) -> Vec<String> {
    let mut differences = Vec::new();
    for (path, old) in before {
        match after.get(path) {
            None => differences.push(format!("{path:?} was removed")),
            Some(new) if new != old => {
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
