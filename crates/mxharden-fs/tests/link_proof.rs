//! The file layer against links, swaps and leftovers planted in the tree.
//! Each test keeps a canary outside the managed root and checks that its
//! owner, mode and contents never change.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mxharden_fs::{FsError, RootDir, RunLock, TreePolicy, WriteOptions, walk_tree, write_atomic};

struct Canary {
    path: PathBuf,
    contents: Vec<u8>,
    mode: u32,
    uid: u32,
}

impl Canary {
    fn plant(dir: &Path) -> Canary {
        let path = dir.join("canary");
        fs::write(&path, b"do not touch\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let meta = fs::metadata(&path).unwrap();
        Canary {
            contents: fs::read(&path).unwrap(),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            path,
        }
    }

    fn assert_untouched(&self) {
        let meta = fs::symlink_metadata(&self.path).unwrap();
        assert_eq!(fs::read(&self.path).unwrap(), self.contents, "canary contents changed");
        assert_eq!(meta.mode() & 0o7777, self.mode, "canary mode changed");
        assert_eq!(meta.uid(), self.uid, "canary owner changed");
    }
}

fn sandbox() -> (tempfile::TempDir, tempfile::TempDir, Canary) {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let canary = Canary::plant(outside.path());
    (root, outside, canary)
}

const OPTIONS: WriteOptions = WriteOptions { uid: 0, gid: 0, mode: 0o600 };

#[test]
fn write_refuses_linked_parent() {
    let (root, outside, canary) = sandbox();
    fs::create_dir_all(root.path().join("etc")).unwrap();
    symlink(outside.path(), root.path().join("etc/app")).unwrap();
    let dir = RootDir::open(root.path()).unwrap();
    let error = write_atomic(&dir, "/etc/app/canary", b"evil", OPTIONS).unwrap_err();
    assert!(matches!(error, FsError::NotAFolder { .. }), "{error}");
    canary.assert_untouched();
}

#[test]
fn write_replaces_planted_link_itself() {
    let (root, _outside, canary) = sandbox();
    symlink(&canary.path, root.path().join("target")).unwrap();
    let dir = RootDir::open(root.path()).unwrap();
    write_atomic(&dir, "/target", b"new\n", OPTIONS).unwrap();
    let written = root.path().join("target");
    assert!(fs::symlink_metadata(&written).unwrap().file_type().is_file());
    assert_eq!(fs::read(&written).unwrap(), b"new\n");
    canary.assert_untouched();
}

#[test]
fn write_sets_mode_whatever_umask() {
    let root = tempfile::tempdir().unwrap();
    let dir = RootDir::open(root.path()).unwrap();
    let old = rustix::process::umask(rustix::fs::Mode::empty());
    write_atomic(&dir, "/secret", b"x", WriteOptions { uid: 0, gid: 0, mode: 0o600 }).unwrap();
    rustix::process::umask(old);
    let meta = fs::metadata(root.path().join("secret")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
}

#[test]
fn write_removes_stale_temporaries() {
    let root = tempfile::tempdir().unwrap();
    let stale = root.path().join(".app.conf.mxharden-0123456789abcdef");
    fs::write(&stale, b"half written").unwrap();
    let dir = RootDir::open(root.path()).unwrap();
    write_atomic(&dir, "/app.conf", b"whole\n", OPTIONS).unwrap();
    assert!(!stale.exists(), "stale temporary file was left behind");
    let names: Vec<_> = fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("app.conf")]);
}

#[test]
fn read_refuses_linked_file() {
    let (root, _outside, canary) = sandbox();
    symlink(&canary.path, root.path().join("config")).unwrap();
    let dir = RootDir::open(root.path()).unwrap();
    let error = dir.read_file("/config", 1024).unwrap_err();
    assert!(matches!(error, FsError::WrongType { .. }), "{error}");
}

#[test]
fn create_dir_refuses_linked_component() {
    let (root, outside, canary) = sandbox();
    fs::create_dir_all(root.path().join("srv")).unwrap();
    symlink(outside.path(), root.path().join("srv/mendix")).unwrap();
    let dir = RootDir::open(root.path()).unwrap();
    assert!(dir.create_dir_all("/srv/mendix/sales", 0, 0, 0o700).is_err());
    assert!(!outside.path().join("sales").exists(), "a folder was created through the link");
    canary.assert_untouched();
}

#[test]
fn set_meta_refuses_linked_entry() {
    let (root, _outside, canary) = sandbox();
    symlink(&canary.path, root.path().join("data")).unwrap();
    let dir = RootDir::open(root.path()).unwrap();
    assert!(dir.set_meta("/data", 0, 0, 0o777).is_err());
    canary.assert_untouched();
}

#[test]
fn walk_does_not_follow_links() {
    let (root, outside, canary) = sandbox();
    let data = root.path().join("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::write(data.join("sub/file"), b"x").unwrap();
    fs::set_permissions(data.join("sub/file"), fs::Permissions::from_mode(0o666)).unwrap();
    symlink(&canary.path, data.join("link-to-file")).unwrap();
    symlink(outside.path(), data.join("sub/link-to-dir")).unwrap();
    let outside_mode = fs::metadata(outside.path()).unwrap().mode() & 0o7777;
    let dir = RootDir::open(root.path()).unwrap();
    let policy = TreePolicy { uid: 0, gid: 0, dir_mode: 0o700, file_clear_bits: 0o077 };
    let report = walk_tree(&dir, "/data", policy, true, &mut |_| {}).unwrap();
    assert_eq!(fs::metadata(data.join("sub/file")).unwrap().mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(data.join("sub")).unwrap().mode() & 0o777, 0o700);
    assert!(report.examined >= 5, "examined {}", report.examined);
    canary.assert_untouched();
    assert_eq!(fs::metadata(outside.path()).unwrap().mode() & 0o7777, outside_mode, "outside folder mode changed");
}

#[test]
fn walk_skips_foreign_hard_links_and_fifos() {
    let (root, _outside, _canary) = sandbox();
    let data = root.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let foreign = root.path().join("foreign");
    fs::write(&foreign, b"owned by someone else").unwrap();
    rustix::fs::chown(&foreign, Some(rustix::fs::Uid::from_raw(4242)), None).unwrap();
    fs::hard_link(&foreign, data.join("linked")).unwrap();
    rustix::fs::mknodat(rustix::fs::CWD, &data.join("pipe"), rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o666), 0).unwrap();
    let dir = RootDir::open(root.path()).unwrap();
    let policy = TreePolicy { uid: 0, gid: 0, dir_mode: 0o700, file_clear_bits: 0o077 };
    let report = walk_tree(&dir, "/data", policy, true, &mut |_| {}).unwrap();
    assert_eq!(fs::metadata(&foreign).unwrap().uid(), 4242, "a hard-linked foreign file changed owner");
    let reasons: Vec<_> = report.skipped.iter().map(|s| s.reason.clone()).collect();
    assert_eq!(report.skipped.len(), 2, "{reasons:?}");
}

#[test]
fn walk_counts_without_changing() {
    let (root, _outside, _canary) = sandbox();
    let data = root.path().join("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("file"), b"x").unwrap();
    fs::set_permissions(data.join("file"), fs::Permissions::from_mode(0o644)).unwrap();
    let dir = RootDir::open(root.path()).unwrap();
    let policy = TreePolicy { uid: 0, gid: 0, dir_mode: 0o700, file_clear_bits: 0o077 };
    let report = walk_tree(&dir, "/data", policy, false, &mut |_| {}).unwrap();
    assert_eq!(report.noncompliant, 2);
    assert_eq!(fs::metadata(data.join("file")).unwrap().mode() & 0o777, 0o644);
}

#[test]
fn lock_names_holder_after_timeout() {
    let root = tempfile::tempdir().unwrap();
    let dir = RootDir::open(root.path()).unwrap();
    let _held = RunLock::acquire(&dir, "/mxharden.lock", "pid 4242", Duration::from_secs(1)).unwrap();
    let other = RootDir::open(root.path()).unwrap();
    let error = RunLock::acquire(&other, "/mxharden.lock", "pid 5353", Duration::from_millis(300)).err().expect("second lock must fail");
    let message = error.to_string();
    assert!(message.contains("pid 4242"), "{message}");
}

#[test]
fn lock_rejects_hard_linked_file() {
    let (root, _outside, canary) = sandbox();
    fs::hard_link(&canary.path, root.path().join("mxharden.lock")).unwrap();
    let dir = RootDir::open(root.path()).unwrap();
    let error = RunLock::acquire(&dir, "/mxharden.lock", "pid 4242", Duration::from_secs(1))
        .err()
        .expect("a lock file with a second link must be rejected");
    assert!(matches!(error, FsError::WrongType { .. }), "{error}");
    canary.assert_untouched();
}
