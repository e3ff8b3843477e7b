//! `mxharden apply --root <sandbox>` on hosts it cannot change as planned: a
//! missing `useradd`, a read-only file system, a full disk, and accounts that
//! exist with the wrong shell or uid. Each run must exit 1 with a message
//! that names the problem and leave the sandbox tree as it was.
//!
//! The read-only and full-disk cases mount inside a private mount namespace
//! (`unshare --mount`), so the host's mounts never change. These tests need
//! root and util-linux; without root they skip, except under `CI=true`,
//! where they fail.

mod sandbox;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sandbox::{Sandbox, differences, manifest, repository, run};

/// Makes `$1/etc` read-only inside the namespace, then runs the command
/// that follows. Paths come in as positional parameters, never as shell code.
const READ_ONLY_ETC_SCRIPT: &str = r#"root=$1; shift
mount --bind "$root/etc" "$root/etc" && mount -o remount,ro,bind "$root/etc" && exec "$@""#;

/// Makes the whole tree `$1` read-only inside the namespace, then runs the command.
const READ_ONLY_ROOT_SCRIPT: &str = r#"root=$1; shift
mount --bind "$root" "$root" && mount -o remount,ro,bind "$root" && exec "$@""#;

/// Mounts a 4 MiB tmpfs at `$2`, copies the tree `$1` onto it, fills it up
/// to `$3` KiB of free space, runs the command that follows, removes the
/// filler and copies the tree back out to `$4` for comparison.
const FULL_DISK_SCRIPT: &str = r#"source=$1 disk=$2 free_kib=$3 out=$4; shift 4
mount -t tmpfs -o size=4m,mode=0755 tmpfs "$disk" || exit 90
cp -a "$source/." "$disk/" || exit 91
dd if=/dev/zero of="$disk/filler" bs=4k 2>/dev/null
truncate -s "-$((free_kib * 1024))" "$disk/filler" || exit 92
"$@"
status=$?
rm "$disk/filler"
cp -a "$disk/." "$out/" || exit 93
exit $status"#;

fn can_run_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{test}: CI=true forbids skipping; run the tests as root");
    eprintln!("SKIPPED {test}: needs root for accounts, mounts and ownership in the sandbox");
    false
}

fn example_app() -> PathBuf {
    repository().join("examples/app.yaml")
}

/// Builds the argument vector of `mxharden apply --root <root> examples/app.yaml`.
fn apply_arguments(root: &Path) -> Vec<String> {
    vec![
        env!("CARGO_BIN_EXE_mxharden").to_owned(),
        "apply".to_owned(),
        "--root".to_owned(),
        root.display().to_string(),
        example_app().display().to_string(),
    ]
}

/// Runs `script` in a new mount namespace with `parameters`.
fn in_mount_namespace(script: &str, parameters: &[String]) -> Output {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script, "mxharden-test"])
        .args(parameters)
        .output()
        .expect("unshare runs")
}

/// Checks the exit code and that stderr has a line with `expected`, and
/// returns the problems found.
fn check_failure(output: &Output, expected: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if output.status.code() != Some(1) {
        problems.push(format!("exit code {:?}, expected 1", output.status.code()));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.lines().any(|line| line.starts_with("error: ") && line.contains(expected)) {
        problems.push(format!("no stderr line `error: ...{expected}...`; stderr:\n{stderr}"));
    }
    problems
}

fn assert_unchanged(before: &sandbox::Manifest, after_root: &Path, problems: &mut Vec<String>) {
    let changed = differences(before, &manifest(after_root));
    if !changed.is_empty() {
        problems.push(format!("the tree changed: {}", changed.join(", ")));
    }
}

/// Adds an account `mx-sales` with `shell` and `uid` to the sandbox, as if
/// an earlier run or an operator had created it.
fn add_account(sandbox: &Sandbox, uid: u32, shell: &str) {
    let passwd = sandbox.root.join("etc/passwd");
    let group = sandbox.root.join("etc/group");
    let mut text = std::fs::read_to_string(&passwd).expect("read passwd");
    text.push_str(&format!("mx-sales:x:{uid}:{uid}::/srv/mendix/sales:{shell}\n"));
    std::fs::write(&passwd, text).expect("write passwd");
    if uid != 0 {
        let mut text = std::fs::read_to_string(&group).expect("read group");
        text.push_str(&format!("mx-sales:x:{uid}:\n"));
        std::fs::write(&group, text).expect("write group");
    }
}

#[test]
fn missing_useradd_changes_nothing() {
    if !can_run_or_skip("missing_useradd_changes_nothing") {
        return;
    }
    let sandbox = Sandbox::new();
    let before = manifest(&sandbox.root);
    let empty_path = tempfile::tempdir().expect("a temporary folder");
    let arguments = apply_arguments(&sandbox.root);
    let output = Command::new(&arguments[0]).args(&arguments[1..]).env("PATH", empty_path.path()).output().expect("mxharden runs");
    let mut problems = check_failure(&output, "useradd is not installed or not on PATH");
    assert_unchanged(&before, &sandbox.root, &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Runs apply with `script` making part of the sandbox read-only, and
/// returns the problems found.
fn read_only_problems(script: &str, account_exists: bool) -> Vec<String> {
    let sandbox = Sandbox::new();
    if account_exists {
        add_account(&sandbox, 990, "/usr/sbin/nologin");
    }
    let before = manifest(&sandbox.root);
    let mut parameters = vec![sandbox.root.display().to_string()];
    parameters.extend(apply_arguments(&sandbox.root));
    let output = in_mount_namespace(script, &parameters);
    let expected = if account_exists { "is on a read-only file system" } else { "Read-only file system" };
    let mut problems = check_failure(&output, expected);
    assert_unchanged(&before, &sandbox.root, &mut problems);
    problems
}

#[test]
fn read_only_etc_changes_nothing() {
    if !can_run_or_skip("read_only_etc_changes_nothing") {
        return;
    }
    // With the account in place, the first steps would change folders under
    // srv/, which stays writable, before the first write to etc/ failed.
    let problems = read_only_problems(READ_ONLY_ETC_SCRIPT, true);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn read_only_tree_changes_nothing() {
    if !can_run_or_skip("read_only_tree_changes_nothing") {
        return;
    }
    let problems = read_only_problems(READ_ONLY_ROOT_SCRIPT, false);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn full_disk_changes_nothing() {
    if !can_run_or_skip("full_disk_changes_nothing") {
        return;
    }
    let sandbox = Sandbox::new();
    let before = manifest(&sandbox.root);
    let work = tempfile::tempdir().expect("a temporary folder");
    let disk = work.path().join("disk");
    let out = work.path().join("out");
    std::fs::create_dir(&disk).expect("create the mount point");
    std::fs::create_dir(&out).expect("create the copy folder");
    // With no space, taking the run lock fails. 64 KiB is enough for the
    // lock file but not for the account, folders and files. Without the
    // check before the first change, the account and folders were created
    // before a file write failed.
    for free_kib in ["0", "64"] {
        let mut parameters = vec![sandbox.root.display().to_string(), disk.display().to_string(), free_kib.to_owned(), out.display().to_string()];
        parameters.extend(apply_arguments(&disk));
        let output = in_mount_namespace(FULL_DISK_SCRIPT, &parameters);
        let expected = if free_kib == "0" { "No space left on device" } else { "KiB free, and the changes need about" };
        let mut problems = check_failure(&output, expected);
        assert_unchanged(&before, &out, &mut problems);
        assert!(problems.is_empty(), "{free_kib} KiB free:\n{}", problems.join("\n"));
        run(Command::new("rm").arg("-rf").arg(&out));
        std::fs::create_dir(&out).expect("create the copy folder");
    }
}

#[test]
fn wrong_existing_account_changes_nothing() {
    if !can_run_or_skip("wrong_existing_account_changes_nothing") {
        return;
    }
    for (uid, shell, expected) in [(990, "/bin/bash", "its shell is /bin/bash"), (0, "/usr/sbin/nologin", "it has uid or gid 0")] {
        let sandbox = Sandbox::new();
        add_account(&sandbox, uid, shell);
        let before = manifest(&sandbox.root);
        let arguments = apply_arguments(&sandbox.root);
        let output = Command::new(&arguments[0]).args(&arguments[1..]).output().expect("mxharden runs");
        let mut problems = check_failure(&output, expected);
        assert_unchanged(&before, &sandbox.root, &mut problems);
        assert!(problems.is_empty(), "uid {uid}, shell {shell}:\n{}", problems.join("\n"));
    }
}
