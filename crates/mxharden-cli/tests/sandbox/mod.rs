//! Sandbox host trees for tests that run the real `mxharden` binary with
//! `--root`, and a manifest of a whole tree to prove that a run changed
//! nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use mxharden_testkit::tree::{Ignored, TreeSnapshot, snapshot_differences, snapshot_tree};
use mxharden_testkit::write_self_signed_certificate;
use tempfile::TempDir;

/// Returns the repository's top folder.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository folder exists")
}

/// A copy of `examples/root` with a throw-away certificate and key, inside
/// a temporary folder that is removed on drop.
pub struct Sandbox {
    /// The temporary folder that contains `root`, removed on drop.
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

/// Every entry beneath a folder, by path relative to it.
pub type Manifest = TreeSnapshot;

/// Records the state of every entry beneath `top`, without following links.
pub fn manifest(top: &Path) -> Manifest {
    snapshot_tree(top)
}

/// Lists the paths whose type, permission bits, owner, group, contents or link target, or
/// modification time differ between two manifests. Returns an empty list when they are equal.
/// Inodes are left out. Folders have no modification time (see [`mxharden_testkit::tree::EntryRecord::modified_ns`]).
pub fn differences(before: &Manifest, after: &Manifest) -> Vec<String> {
    snapshot_differences(before, after, Ignored { inode: true, modified: false })
}
