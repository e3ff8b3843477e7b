//! Sandbox host trees for tests that run the real `mxharden` binary with
//! `--root`, and a manifest of a whole tree to prove that a run changed
//! nothing.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use mxharden_testkit::write_self_signed_certificate;
use tempfile::TempDir;

/// Returns the repository's top folder.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository folder exists")
}

/// A copy of `examples/root` with a throw-away certificate and key, inside
/// a temporary folder that is removed on drop.
pub struct Sandbox {
    /// The temporary folder that holds `root`; removed on drop.
    _work: TempDir,
    /// The host tree to pass as `--root`.
    pub root: PathBuf,
}

impl Sandbox {
    /// Copies `examples/root`, adds `run/` (which every host has) and
    /// `etc/ssl/certs/sales.pem` and `etc/ssl/private/sales.key`, made with
    /// the openssl CLI.
    pub fn new() -> Sandbox {
        let work = tempfile::Builder::new().prefix("mxharden-sandbox").tempdir().expect("a temporary folder");
        let root = work.path().join("root");
        run(Command::new("cp").arg("-a").arg(repository().join("examples/root")).arg(&root));
        std::fs::create_dir(root.join("run")).expect("create run/");
        let key = root.join("etc/ssl/private/sales.key");
        write_self_signed_certificate(&root.join("etc/ssl/certs/sales.pem"), &key, "sales.example.com")
            .expect("make the test certificate");
        Sandbox { _work: work, root }
    }
}

/// Runs `command` and panics with its output when it fails.
pub fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?} could not start: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What a tree entry is, with everything a change could touch: type,
/// permission bits, owner, group, contents or link target, and for files
/// and links the modification time. A folder's modification time is left
/// out, because creating and removing a temporary entry (the run lock, a
/// tool's temporary file) changes it while leaving the tree as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryState {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    modified_ns: i128,
    contents: Vec<u8>,
}

/// Every entry beneath a folder, by path relative to it.
pub type Manifest = BTreeMap<PathBuf, EntryState>;

/// Records the state of every entry beneath `top`, without following links.
pub fn manifest(top: &Path) -> Manifest {
    let mut entries = Manifest::new();
    record(top, top, &mut entries);
    entries
}

fn record(top: &Path, path: &Path, entries: &mut Manifest) {
    let meta = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file_type = meta.file_type();
    let (kind, contents) = if file_type.is_symlink() {
        let target = std::fs::read_link(path).expect("read a link");
        ("link", target.into_os_string().into_encoded_bytes())
    } else if file_type.is_dir() {
        ("dir", Vec::new())
    } else if file_type.is_file() {
        ("file", std::fs::read(path).expect("read a file"))
    } else {
        ("other", Vec::new())
    };
    let modified_ns = if file_type.is_dir() { 0 } else { i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()) };
    let relative = path.strip_prefix(top).expect("beneath the top").to_path_buf();
    entries.insert(
        relative,
        EntryState {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            modified_ns,
            contents,
        },
    );
    if file_type.is_dir() {
        let mut children: Vec<PathBuf> = std::fs::read_dir(path)
            .expect("list a folder")
            .map(|entry| entry.expect("a folder entry").path())
            .collect();
        children.sort();
        for child in children {
            record(top, &child, entries);
        }
    }
}

/// Lists the paths whose state differs between two manifests; empty when equal.
pub fn differences(before: &Manifest, after: &Manifest) -> Vec<String> {
    let mut changed = Vec::new();
    for (path, state) in before {
        match after.get(path) {
            None => changed.push(format!("removed {}", path.display())),
            Some(now) if now != state => changed.push(format!("changed {}", path.display())),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|path| !before.contains_key(*path)) {
        changed.push(format!("added {}", path.display()));
    }
    changed
}
