//! Sandboxes, canaries and unprivileged threads shared by the attack, crash and umask tests.
//!
//! Every sandbox is a copy of `examples/root` with a throwaway certificate, in its own
//! temporary folder, and `mxharden apply --root` only ever runs on such a copy. These tests
//! run as root, because apply sets owners.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code, unused_imports)]

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};

use mxharden_testkit::write_self_signed_certificate;
use rustix::fs::{Gid, Uid};

pub use mxharden_testkit::describe;
pub use mxharden_testkit::sandbox::{copy_tree, example_spec, repository_root};
pub use mxharden_testkit::tree::{TreeSnapshot, snapshot_differences, snapshot_tree};

/// Owner of the canary entries and of the foreign trees: an id that no sandbox account has.
pub const FOREIGN_UID: u32 = 4242;

/// The example app's base folder, from examples/app.yaml.
pub const BASE: &str = "/srv/mendix/sales";

/// The app's account name, derived from the app name `sales`.
pub const APP_USER: &str = "mx-sales";

/// The generated file that contains the admin password.
pub const SECRET_FILE: &str = "/srv/mendix/sales/.m2ee/mxharden.yaml";

/// mxharden's record of the app, which contains the argon2id hash of the admin password.
pub const STATE_FILE: &str = "/var/lib/mxharden/apps/sales.json";

/// Returns `managed` (an absolute path such as `/etc/passwd`) as a path relative to a root.
pub fn relative(managed: &str) -> &str {
    managed.trim_start_matches('/')
}

/// A copy of `examples/root` with a test certificate, and a folder beside it for the
/// desired-state file and for canaries, all in one temporary folder.
pub struct Sandbox {
    folder: tempfile::TempDir,
}

impl Sandbox {
    /// Creates a sandbox whose desired state is examples/app.yaml.
    pub fn new() -> Sandbox {
        Sandbox::with_spec(&example_spec())
    }

    /// Creates a sandbox whose desired state is `spec`.
    pub fn with_spec(spec: &str) -> Sandbox {
        let folder = tempfile::tempdir().expect("create a temporary folder");
        // Unprivileged attacker and watcher threads must reach the sandbox's folders.
        std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755))
            .expect("make the temporary folder traversable");
        copy_tree(&repository_root().join("examples/root"), &folder.path().join("root"));
        let sandbox = Sandbox { folder };
        let pair = certificate_pair();
        std::fs::write(sandbox.path("/etc/ssl/certs/sales.pem"), &pair.certificate).expect("write the certificate");
        let key = sandbox.path("/etc/ssl/private/sales.key");
        std::fs::write(&key, &pair.key).expect("write the key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod the key");
        sandbox.write_spec(spec);
        sandbox
    }

    /// Creates a sandbox with a copy of `template`'s root and desired-state file, keeping
    /// owners and modes (`cp -a`).
    pub fn copy_of(template: &Sandbox) -> Sandbox {
        let folder = tempfile::tempdir().expect("create a temporary folder");
        std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755))
            .expect("make the temporary folder traversable");
        let output = Command::new("cp")
            .arg("-a")
            .arg(template.root())
            .arg(folder.path().join("root"))
            .output()
            .expect("run cp");
        assert!(output.status.success(), "cp -a failed: {}", describe(&output));
        std::fs::copy(template.spec(), folder.path().join("app.yaml")).expect("copy the desired-state file");
        Sandbox { folder }
    }

    /// Returns the temporary folder that contains the root, the desired-state file and
    /// canaries.
    pub fn folder(&self) -> &Path {
        self.folder.path()
    }

    pub fn root(&self) -> PathBuf {
        self.folder.path().join("root")
    }

    /// Host path of the managed path `managed` beneath the sandbox root.
    pub fn path(&self, managed: &str) -> PathBuf {
        self.root().join(relative(managed))
    }

    pub fn spec(&self) -> PathBuf {
        self.folder.path().join("app.yaml")
    }

    pub fn write_spec(&self, text: &str) {
        std::fs::write(self.spec(), text).expect("write the desired-state file");
    }

    /// Returns a command that runs `mxharden apply --root <sandbox> ARGS <spec>`.
    pub fn apply_command(&self, arguments: &[&str]) -> Command {
        let mut command = Command::new(mxharden_binary());
        command.arg("apply").arg("--root").arg(self.root()).args(arguments).arg(self.spec());
        command
    }

    /// Runs apply to the end and returns its output.
    pub fn apply(&self, arguments: &[&str]) -> Output {
        self.apply_command(arguments).output().expect("run mxharden")
    }

    /// Runs apply and fails the test unless it exits with 0.
    pub fn apply_ok(&self, arguments: &[&str]) -> Output {
        let output = self.apply(arguments);
        assert_eq!(output.status.code(), Some(0), "apply {arguments:?} failed:\n{}", describe(&output));
        output
    }

    /// Returns the uid and gid that the sandbox's `etc/passwd` gives the app user.
    pub fn app_ids(&self) -> (u32, u32) {
        let passwd = std::fs::read_to_string(self.path("/etc/passwd")).expect("read the sandbox's etc/passwd");
        passwd
            .lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|fields| fields.len() >= 7 && fields[0] == APP_USER)
            .map(|fields| (fields[2].parse().expect("numeric uid"), fields[3].parse().expect("numeric gid")))
            .unwrap_or_else(|| panic!("{APP_USER} is missing from the sandbox's etc/passwd:\n{passwd}"))
    }
}

/// Path of the `mxharden` binary that cargo built for these tests.
pub fn mxharden_binary() -> &'static str {
    env!("CARGO_BIN_EXE_mxharden")
}

struct CertificatePair {
    certificate: Vec<u8>,
    key: Vec<u8>,
}

/// Returns a self-signed certificate and key for sales.example.com, made once per test
/// process with the `openssl` CLI.
fn certificate_pair() -> &'static CertificatePair {
    static PAIR: OnceLock<CertificatePair> = OnceLock::new();
    PAIR.get_or_init(|| {
        let folder = tempfile::tempdir().expect("create a temporary folder");
        let key = folder.path().join("sales.key");
        let certificate = folder.path().join("sales.pem");
        write_self_signed_certificate(&certificate, &key, "sales.example.com").expect("make the test certificate");
        CertificatePair {
            certificate: std::fs::read(&certificate).expect("read the certificate"),
            key: std::fs::read(&key).expect("read the key"),
        }
    })
}

/// A folder outside every sandbox that no run may change: mode 0755 and files of mode 0644,
/// all owned by [`FOREIGN_UID`].
pub struct Canary {
    pub dir: PathBuf,
}

impl Canary {
    /// Name of the file that links at file positions point to.
    pub const TARGET_FILE: &'static str = "target.txt";

    /// Creates the canary folder at `dir`, which must not exist yet.
    pub fn create(dir: &Path) -> Canary {
        std::fs::create_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        std::fs::create_dir(dir.join("nested")).expect("create a canary subfolder");
        let files = [
            (Self::TARGET_FILE, "canary target file\n"),
            ("notes.txt", "canary notes\n"),
            ("nested/deep.txt", "canary deep file\n"),
        ];
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write a canary file");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod a canary file");
        }
        for folder in [dir.to_path_buf(), dir.join("nested")] {
            std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).expect("chmod a canary folder");
        }
        chown_tree(dir, FOREIGN_UID, FOREIGN_UID);
        Canary { dir: dir.to_path_buf() }
    }

    pub fn target_file(&self) -> PathBuf {
        self.dir.join(Self::TARGET_FILE)
    }

    pub fn snapshot(&self) -> TreeSnapshot {
        snapshot_tree(&self.dir)
    }
}

/// Sets the owner of `top` and of every entry beneath it, without following links.
pub fn chown_tree(top: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(top, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("{}: {e}", top.display()));
    if std::fs::symlink_metadata(top).expect("stat an entry").is_dir() {
        for entry in std::fs::read_dir(top).expect("read a folder") {
            chown_tree(&entry.expect("read an entry").path(), uid, gid);
        }
    }
}

/// Returns the host path of every temporary file that write_atomic names
/// `.<target>.mxharden-<random>`, anywhere beneath `top`, without following links.
pub fn find_temporaries(top: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![top.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display())) {
            let entry = entry.expect("read an entry");
            if is_temporary_name(&entry.file_name()) {
                found.push(entry.path());
            }
            if entry.file_type().expect("entry type").is_dir() {
                pending.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

pub fn is_temporary_name(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') && name.contains(".mxharden-")
}

/// Spawns a thread that runs `work` with the kernel credentials of `uid` and `gid` and no
/// supplementary groups.
///
/// `setresuid(2)`, `setresgid(2)` and `setgroups(2)`, called as raw system calls, change
/// only the calling thread's credentials, and the kernel checks every file access against
/// the calling thread's credentials. Leaving uid 0 also clears the thread's capabilities
/// (capabilities(7)). So the thread has
/// exactly the file access of a process running as `uid`, while the rest of the test process
/// stays root. The thread checks this before `work` starts: it must fail to list a folder of
/// mode 0700 owned by root.
pub fn spawn_unprivileged<T: Send + 'static>(
    name: &str,
    uid: u32,
    gid: u32,
    work: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    assert_ne!(uid, 0, "an unprivileged thread needs a uid other than 0");
    let probe = tempfile::tempdir().expect("create the privilege probe folder");
    std::fs::set_permissions(probe.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod the probe folder");
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            rustix::thread::set_thread_groups(&[]).expect("clear the thread's supplementary groups");
            let gid = Gid::from_raw(gid);
            rustix::thread::set_thread_res_gid(gid, gid, gid).expect("set the thread's gid");
            let uid = Uid::from_raw(uid);
            rustix::thread::set_thread_res_uid(uid, uid, uid).expect("set the thread's uid");
            assert_eq!(rustix::process::geteuid(), uid, "the thread's effective uid did not change");
            let listing = std::fs::read_dir(probe.path());
            assert!(
                listing.is_err(),
                "a thread running as uid {} could list a root-only folder: it is still privileged",
                uid.as_raw()
            );
            work()
        })
        .expect("spawn an unprivileged thread")
}

/// A small seeded pseudo-random generator (SplitMix64), so that a failing run can be
/// repeated with the seed it prints.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Returns a number in `0..bound`; `bound` must not be 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// Builds a tree of `files` regular files spread over nested folders beneath `top` (which
/// must exist), owned by [`FOREIGN_UID`] with folders 0755 and files 0644, so that every
/// entry needs a fix. Folders are `dNN/eNN`, each holding up to `per_folder` files.
pub fn build_foreign_tree(top: &Path, files: usize, per_folder: usize) {
    let folders = files.div_ceil(per_folder);
    for index in 0..folders {
        let folder = top.join(format!("d{:02}/e{:02}", index / 10, index % 10));
        std::fs::create_dir_all(&folder).expect("create a tree folder");
        let count = per_folder.min(files - index * per_folder);
        for file in 0..count {
            std::fs::write(folder.join(format!("f{file:04}")), b"x").expect("write a tree file");
        }
    }
    reset_foreign_tree(top);
}

/// Gives every entry beneath `top` (not `top` itself) the foreign owner, folders mode 0755
/// and files mode 0644.
pub fn reset_foreign_tree(top: &Path) {
    for entry in std::fs::read_dir(top).expect("read the tree") {
        let path = entry.expect("read an entry").path();
        reset_entry(&path);
    }
}

fn reset_entry(path: &Path) {
    let metadata = std::fs::symlink_metadata(path).expect("stat a tree entry");
    if metadata.file_type().is_symlink() {
        return;
    }
    std::os::unix::fs::lchown(path, Some(FOREIGN_UID), Some(FOREIGN_UID)).expect("chown a tree entry");
    let mode = if metadata.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod a tree entry");
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path).expect("read a tree folder") {
            reset_entry(&entry.expect("read an entry").path());
        }
    }
}

/// Returns true when the test runs as root, which apply and the ownership checks need.
/// Otherwise prints a skip line and returns false, or panics when `CI` is `true`, so that a
/// CI run cannot pass by skipping.
pub fn root_or_skip(test_name: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test_name} must run as root under CI=true: apply sets owners, and the test runs parts of itself as other uids"
    );
    eprintln!("SKIPPED {test_name}: not running as root");
    false
}
