//! Link attacks on `mxharden apply --root`, each watched by a canary folder outside the
//! sandbox whose entries (type, owner, mode, contents, and the set of names) must never
//! change.
//!
//! - `planted_links_leave_canary_alone` plants a symbolic link (and, for files, also a hard
//!   link) at every position of every path that apply creates, opens, chowns or writes. It
//!   does so in a fresh sandbox and in one that was applied before, and runs apply once per
//!   position.
//! - `swap_race_leaves_canary_alone` lets a thread running as the app user swap folders and
//!   files of a 20,000-file tree for links to the canary, in a tight loop, while apply walks
//!   the tree.
//!
//! The canary entries are owned by a uid that no sandbox account has, with modes 0755 and
//! 0644. So a followed link would show up as a changed owner or mode (the app user's ids and
//! 0700 or 0600), as changed contents, or as a new entry.

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use mxharden_testkit::tree::Ignored;
use serde_json::Value;
use support::{
    BASE, Canary, FOREIGN_UID, Sandbox, build_foreign_tree, describe, find_temporaries, relative, reset_foreign_tree,
    root_or_skip, snapshot_differences, snapshot_tree,
};

/// Paths from the table "What apply writes" in docs/configuration.md, for the example app.
/// The IIS file is planned only for `kind: iis`, so a link there must simply stay unused.
const DOCUMENTED_PATHS: &[&str] = &[
    "/srv/mendix/sales",
    "/srv/mendix/sales/model",
    "/srv/mendix/sales/data",
    "/srv/mendix/sales/web",
    "/srv/mendix/sales/.m2ee",
    "/srv/mendix/sales/.m2ee/mxharden.yaml",
    "/srv/mendix/sales/.m2ee/m2ee.yaml",
    "/etc/nginx/conf.d/mxharden-sales.conf",
    "/etc/mxharden/iis/sales/web.config",
    "/etc/mxharden/nftables/sales.nft",
    "/etc/systemd/system/mendix-sales.service",
    "/var/lib/mxharden/apps/sales.json",
];

/// Paths that apply touches but does not list as resources: the account files that
/// `useradd --prefix` rewrites and the run lock.
const UNLISTED_PATHS: &[&str] = &["/etc/passwd", "/etc/group", "/run/mxharden.lock"];

/// Which sandbox a planted link goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// A copy of examples/root: the first apply creates the account and every file.
    Fresh,
    /// A sandbox applied once, as an app user would find it before a later run.
    Applied,
}

/// What is planted at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plant {
    /// A symbolic link to the canary folder.
    LinkToFolder,
    /// A symbolic link to a file in the canary folder.
    LinkToFile,
    /// A hard link to a canary file with the contents that apply writes there, so that apply
    /// finds the right contents with the wrong owner and mode.
    HardLink,
}

#[derive(Debug, Clone)]
struct Case {
    position: String,
    stage: Stage,
    plant: Plant,
}

/// Everything learned from one uninterrupted apply of the example app.
struct Reference {
    /// Positions to attack, parents first.
    positions: Vec<String>,
    /// Positions with a folder (or above one) after the apply.
    folders: BTreeSet<String>,
    /// Contents of every regular file at a position after the apply.
    files: Vec<(String, Vec<u8>)>,
}

#[test]
fn planted_links_leave_canary_alone() {
    if !root_or_skip("planted_links_leave_canary_alone") {
        return;
    }
    let reference = learn_reference();
    let mut cases = Vec::new();
    for stage in [Stage::Fresh, Stage::Applied] {
        for position in &reference.positions {
            let plant = if reference.folders.contains(position) { Plant::LinkToFolder } else { Plant::LinkToFile };
            cases.push(Case {
                position: position.clone(),
                stage,
                plant,
            });
        }
    }
    for (position, _) in &reference.files {
        cases.push(Case {
            position: position.clone(),
            stage: Stage::Applied,
            plant: Plant::HardLink,
        });
    }

    // Two workers, because each apply mostly waits for nginx, nft and useradd.
    let reference = Arc::new(reference);
    let queue = Arc::new(std::sync::Mutex::new(cases));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let queue = Arc::clone(&queue);
            let reference = Arc::clone(&reference);
            thread::spawn(move || {
                let mut failures = Vec::new();
                let mut outcomes = Vec::new();
                loop {
                    let next = queue.lock().expect("lock the case queue").pop();
                    let Some(case) = next else { break };
                    match run_case(&case, &reference) {
                        Ok(outcome) => outcomes.push(format!("{case:?}: {outcome}")),
                        Err(failure) => failures.push(format!("{case:?}:\n{failure}")),
                    }
                }
                (outcomes, failures)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for worker in workers {
        let (done, failed) = worker.join().expect("a case worker panicked");
        outcomes.extend(done);
        failures.extend(failed);
    }
    outcomes.sort();
    eprintln!("{} cases:\n{}", outcomes.len() + failures.len(), outcomes.join("\n"));
    assert!(failures.is_empty(), "{} of the planted-link cases failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// Applies the example app to a fresh sandbox and lists every position to attack. These are
/// the resources of the JSON report, the documented and the unlisted paths, and every entry
/// of the example's model/ and data/ trees, each with every parent folder.
fn learn_reference() -> Reference {
    let sandbox = Sandbox::new();
    let mut paths: BTreeSet<String> = BTreeSet::new();
    for managed in tree_entries(&sandbox) {
        paths.insert(managed);
    }
    let output = sandbox.apply_ok(&["--format", "json"]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}\n{}", describe(&output)));
    let resources = report["apps"][0]["resources"].as_array().expect("the report lists resources");
    for resource in resources {
        let kind = resource["kind"].as_str().expect("every resource has a kind");
        if matches!(kind, "dir" | "tree" | "file") {
            paths.insert(resource["id"].as_str().expect("every resource has an id").to_owned());
        }
    }
    paths.extend(DOCUMENTED_PATHS.iter().map(|path| path.to_string()));
    paths.extend(UNLISTED_PATHS.iter().map(|path| path.to_string()));

    let mut positions: BTreeSet<String> = BTreeSet::new();
    let mut folders: BTreeSet<String> = BTreeSet::new();
    for path in &paths {
        let mut prefix = String::new();
        let components: Vec<&str> = relative(path).split('/').collect();
        for (index, component) in components.iter().enumerate() {
            prefix.push('/');
            prefix.push_str(component);
            positions.insert(prefix.clone());
            if index + 1 < components.len() {
                folders.insert(prefix.clone());
            }
        }
    }
    let mut files = Vec::new();
    for position in &positions {
        let host_path = sandbox.path(position);
        match std::fs::symlink_metadata(&host_path) {
            Ok(metadata) if metadata.is_dir() => {
                folders.insert(position.clone());
            }
            Ok(metadata) if metadata.is_file() => {
                files.push((position.clone(), std::fs::read(&host_path).expect("read a reference file")));
            }
            _ => {}
        }
    }
    for expected in ["/etc", "/srv/mendix/sales/.m2ee/mxharden.yaml", "/srv/mendix/sales/data/files/report.txt", "/run"] {
        assert!(positions.contains(expected), "the attacked positions lack {expected}: {positions:?}");
    }
    Reference {
        positions: positions.into_iter().collect(),
        folders,
        files,
    }
}

/// Lists every entry beneath the example's model/ and data/ as managed paths.
fn tree_entries(sandbox: &Sandbox) -> Vec<String> {
    let mut entries = Vec::new();
    for top in ["model", "data"] {
        let managed_top = format!("{BASE}/{top}");
        for (path, _) in snapshot_tree(&sandbox.path(&managed_top)) {
            if !path.is_empty() {
                entries.push(format!("{managed_top}/{path}"));
            }
        }
    }
    entries
}

/// Plants the link of `case` in a new sandbox, runs apply and returns how apply ended, or
/// why the case failed.
fn run_case(case: &Case, reference: &Reference) -> Result<String, String> {
    let sandbox = Sandbox::new();
    if case.stage == Stage::Applied {
        sandbox.apply_ok(&[]);
    }
    let canary = Canary::create(&sandbox.folder().join("canary"));
    let host_path = sandbox.path(&case.position);
    remove_entry(&host_path);
    let parent = host_path.parent().expect("positions lie beneath the root");
    std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    match case.plant {
        Plant::LinkToFolder => symlink(&canary.dir, &host_path),
        Plant::LinkToFile => symlink(canary.target_file(), &host_path),
        Plant::HardLink => {
            let (_, contents) = reference
                .files
                .iter()
                .find(|(position, _)| *position == case.position)
                .expect("hard links are planted only at file positions");
            let linked = canary.dir.join("linked.txt");
            std::fs::write(&linked, contents).expect("write the linked canary file");
            support::chown_tree(&linked, support::FOREIGN_UID, support::FOREIGN_UID);
            std::fs::set_permissions(&linked, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .expect("chmod the linked canary file");
            std::fs::hard_link(&linked, &host_path)
        }
    }
    .unwrap_or_else(|e| panic!("plant at {}: {e}", host_path.display()));
    let before = canary.snapshot();

    let output = sandbox.apply(&["--format", "json"]);

    let mut problems = Vec::new();
    let differences = snapshot_differences(&before, &canary.snapshot(), Ignored::default());
    if !differences.is_empty() {
        problems.push(format!("the canary changed:\n  {}", differences.join("\n  ")));
    }
    let outcome = match (output.status.code(), clean_error(&output)) {
        (Some(0), _) => "succeeded".to_owned(),
        (Some(1), Some(error)) => format!("failed: {error}"),
        _ => {
            problems.push("apply neither succeeded nor failed with an error message".to_owned());
            String::new()
        }
    };
    let temporaries = find_temporaries(&sandbox.root());
    if !temporaries.is_empty() {
        problems.push(format!("temporary files were left: {temporaries:?}"));
    }
    if problems.is_empty() {
        Ok(outcome)
    } else {
        Err(format!("{}\n{}", problems.join("\n"), describe(&output)))
    }
}

/// Returns the error message of a run that failed cleanly: one JSON document on stdout with
/// `failed: true` and at least one error, and no panic.
fn clean_error(output: &std::process::Output) -> Option<String> {
    if String::from_utf8_lossy(&output.stderr).contains("panicked") {
        return None;
    }
    let report: Value = serde_json::from_slice(&output.stdout).ok()?;
    if report["failed"] != Value::Bool(true) {
        return None;
    }
    report["errors"].as_array()?.first()?.as_str().map(str::to_owned)
}

/// Removes whatever is at `path`, without following a link.
fn remove_entry(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    }
    .unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
}

/// Number of files in the data tree of the swap race.
const RACE_TREE_FILES: usize = 20_000;

/// Number of applies, each racing a fresh attacker, in the swap race.
const RACE_ROUNDS: usize = 3;

#[test]
fn swap_race_leaves_canary_alone() {
    if !root_or_skip("swap_race_leaves_canary_alone") {
        return;
    }
    let sandbox = Sandbox::new();
    // After a first apply the app user owns data/ and may rename anything in it.
    sandbox.apply_ok(&[]);
    let (uid, gid) = sandbox.app_ids();
    let canary = Canary::create(&sandbox.folder().join("canary"));
    let data = sandbox.path(&format!("{BASE}/data"));
    build_foreign_tree(&data, RACE_TREE_FILES, 200);
    for index in 0..20 {
        let file = data.join(format!("s{index:02}"));
        std::fs::write(&file, "foreign file\n").expect("write a top-level file");
    }
    reset_foreign_tree(&data);
    let before = canary.snapshot();

    for round in 0..RACE_ROUNDS {
        reset_foreign_tree(&data);
        let stop = Arc::new(AtomicBool::new(false));
        let exchanges = Arc::new(AtomicU64::new(0));
        let attacker = {
            let (stop, exchanges) = (Arc::clone(&stop), Arc::clone(&exchanges));
            let (data, canary_dir, canary_file) = (data.clone(), canary.dir.clone(), canary.target_file());
            support::spawn_unprivileged("swap-attacker", uid, gid, move || {
                swap_until_stopped(&data, &canary_dir, &canary_file, &stop, &exchanges)
            })
        };

        let output = sandbox.apply(&["--format", "json"]);

        stop.store(true, Ordering::SeqCst);
        let leftovers = attacker.join().expect("the attacker thread panicked");
        let differences = snapshot_differences(&before, &canary.snapshot(), Ignored::default());
        assert!(
            differences.is_empty(),
            "round {round}: the canary changed:\n  {}\n{}",
            differences.join("\n  "),
            describe(&output)
        );
        assert!(leftovers.is_empty(), "round {round}: the attacker could not restore {leftovers:?}");
        assert_eq!(output.status.code(), Some(0), "round {round}: apply failed:\n{}", describe(&output));
        let swapped = exchanges.load(Ordering::SeqCst);
        assert!(swapped > 100, "round {round}: the attacker made only {swapped} swaps, so the race did not run");
        let report: Value = serde_json::from_slice(&output.stdout).expect("apply prints one JSON document");
        let mut skipped_reasons = Vec::new();
        for resource in report["apps"][0]["resources"].as_array().expect("resources") {
            for skipped in resource["skipped"].as_array().into_iter().flatten() {
                skipped_reasons.push(skipped["reason"].as_str().unwrap_or_default().to_owned());
            }
        }
        // An entry that was a link when the walk reached it keeps its foreign owner, so the
        // attacker demonstrably reached the walk when some entries were skipped or left.
        let left_foreign = snapshot_tree(&data).values().filter(|entry| entry.uid == FOREIGN_UID).count();
        eprintln!(
            "round {round}: {swapped} swaps during the apply; {left_foreign} entries left to their foreign owner; skipped by the walk: {skipped_reasons:?}"
        );
        assert!(
            left_foreign + skipped_reasons.len() > 0,
            "round {round}: the walk met none of the attacker's links, so the race did not reach it"
        );
    }
    let temporaries = find_temporaries(&sandbox.root());
    assert!(temporaries.is_empty(), "temporary files were left: {temporaries:?}");
}

/// Swaps each folder and file of the race tree with a link to the canary, using
/// `renameat2(RENAME_EXCHANGE)` so that the name always exists, then swaps it back, over
/// and over until `stop` is set. Returns the names it could not restore.
///
/// The targets are data/'s own entries, which the app user may rename from the start, and
/// the second-level folders, which it may rename once the walk has given it their parents.
fn swap_until_stopped(data: &Path, canary_dir: &Path, canary_file: &Path, stop: &AtomicBool, exchanges: &AtomicU64) -> Vec<PathBuf> {
    let mut targets: Vec<(PathBuf, PathBuf)> = Vec::new();
    for first in 0..10 {
        let folder = data.join(format!("d{first:02}"));
        targets.push((folder.clone(), canary_dir.to_path_buf()));
        for second in 0..10 {
            targets.push((folder.join(format!("e{second:02}")), canary_dir.to_path_buf()));
        }
    }
    for index in 0..20 {
        targets.push((data.join(format!("s{index:02}")), canary_file.to_path_buf()));
    }
    let decoy = |target: &Path| target.with_extension("swap");

    // Swapping every target, then every target back, keeps each name a link about half of
    // the time. So the walk meets links where it expects folders and files, and a swap can
    // also fall between its lstat and its open of an entry.
    while !stop.load(Ordering::SeqCst) {
        for (target, link_target) in &targets {
            let decoy = decoy(target);
            // Fails with EACCES until the walk has handed the parent to the app user.
            if std::fs::symlink_metadata(&decoy).is_err() && symlink(link_target, &decoy).is_err() {
                continue;
            }
            if exchange(target, &decoy) {
                exchanges.fetch_add(1, Ordering::Relaxed);
            }
        }
        for (target, _) in &targets {
            if std::fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink()) {
                exchange(target, &decoy(target));
            }
        }
    }

    let mut leftovers = Vec::new();
    for (target, _) in &targets {
        let decoy = decoy(target);
        let target_is_link = std::fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink());
        if target_is_link && !exchange(target, &decoy) {
            leftovers.push(target.clone());
        }
        if std::fs::symlink_metadata(&decoy).is_ok_and(|m| m.file_type().is_symlink()) && std::fs::remove_file(&decoy).is_err() {
            leftovers.push(decoy);
        }
    }
    leftovers
}

fn exchange(first: &Path, second: &Path) -> bool {
    rustix::fs::renameat_with(rustix::fs::CWD, first, rustix::fs::CWD, second, rustix::fs::RenameFlags::EXCHANGE).is_ok()
}
