//! Crash tests of `mxharden apply --root`: a run stopped at some point must leave every
//! generated file either as it was before the run or as an uninterrupted run writes it,
//! never partly written, and a later run must converge.
//!
//! - `random_kills_converge` sends SIGKILL after a random delay, spread over a whole run
//!   that walks a 10,000-file data tree, 30 times with a fixed seed.
//! - `syscall_kills_converge` uses strace's fault injection, for every N that a run
//!   reaches. It kills apply at the entry of the N-th `fsync` and `renameat`. In runs that
//!   replace files, it also fails the N-th `renameat` with EIO and the N-th `write` with
//!   ENOSPC. This hits the steps between writing, syncing and renaming each temporary file
//!   and syncing its folder, which random delays rarely do, and the rollback after a failed
//!   step.
//!
//! Half of the runs start from a fresh copy of examples/root, so every file is created, and
//! half from a sandbox applied with other ports, so every generated file is replaced. The
//! admin password differs between sandboxes. So the password in the include file is checked
//! to be 32 or more letters and digits, the hash in the state record to be an argon2id PHC
//! string, and the rest of those two files is compared byte for byte.
//!
//! A killed apply's children (useradd, nginx -t) run on to their end, as they would after a
//! crash of mxharden alone; every check waits until no process of the killed run is left.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    BASE, SECRET_FILE, STATE_FILE, Sandbox, SplitMix64, build_foreign_tree, describe, example_spec, find_temporaries,
    reset_foreign_tree, root_or_skip,
};

/// Seed of the random delays unless `MXHARDEN_CRASH_SEED` sets another.
const DEFAULT_SEED: u64 = 20_261_204;

/// Number of runs killed after a random delay.
const RANDOM_KILLS: usize = 30;

/// Files in the data tree of the random kills, so that a run lasts long enough to be
/// killed in the middle of the walk.
const TREE_FILES: usize = 10_000;

/// Maximum time that the processes of a killed run may take to end.
const CHILDREN_TIMEOUT: Duration = Duration::from_secs(30);

/// Every generated file as an uninterrupted run leaves it.
struct FinalState {
    /// Contents with the secret values masked, by managed path.
    contents: BTreeMap<String, Vec<u8>>,
    /// Owner, group and mode, by managed path.
    meta: BTreeMap<String, (u32, u32, u32)>,
}

/// Starting points of the crashed runs, with the app's desired state from examples/app.yaml.
struct Templates {
    /// A copy of examples/root.
    fresh: Sandbox,
    /// A sandbox applied once with other ports, so every generated file changes.
    previous: Sandbox,
}

impl Templates {
    fn new() -> Templates {
        let fresh = Sandbox::new();
        let previous_spec = example_spec().replace("port: 8000", "port: 8001").replace("admin_port: 8090", "admin_port: 8091");
        assert_ne!(previous_spec, example_spec(), "examples/app.yaml no longer sets port 8000 and admin_port 8090");
        let previous = Sandbox::with_spec(&previous_spec);
        previous.apply_ok(&[]);
        previous.write_spec(&example_spec());
        Templates { fresh, previous }
    }

    fn pick(&self, index: usize) -> (&'static str, &Sandbox) {
        if index.is_multiple_of(2) { ("fresh", &self.fresh) } else { ("previous", &self.previous) }
    }
}

#[test]
fn random_kills_converge() {
    if !root_or_skip("random_kills_converge") {
        return;
    }
    let seed = std::env::var("MXHARDEN_CRASH_SEED")
        .map(|text| text.parse().expect("MXHARDEN_CRASH_SEED is a number"))
        .unwrap_or(DEFAULT_SEED);
    let mut random = SplitMix64::new(seed);
    let templates = Templates::new();
    let bulk_home = tempfile::tempdir().expect("create the folder of the data tree");
    let bulk = bulk_home.path().join("bulk");
    std::fs::create_dir(&bulk).expect("create the data tree");
    build_foreign_tree(&bulk, TREE_FILES, 200);

    // An uninterrupted run from each template gives the final state and the span of time
    // that the kills are spread over.
    let mut final_state = None;
    let mut run_times = Vec::new();
    for index in 0..2 {
        let (_, template) = templates.pick(index);
        let reference = Sandbox::copy_of(template);
        let data = move_tree_in(&reference, &bulk);
        let started = Instant::now();
        let output = reference.apply_ok(&["--format", "json"]);
        run_times.push(started.elapsed());
        final_state.get_or_insert_with(|| learn_final_state(&reference, &output.stdout));
        move_tree_out(&data, &bulk);
    }
    let final_state = final_state.expect("the fresh template ran first");
    eprintln!("seed {seed}: uninterrupted runs from the fresh and previous sandboxes take {run_times:?}");

    let mut killed = 0;
    for iteration in 0..RANDOM_KILLS {
        let (template_name, template) = templates.pick(iteration);
        let sandbox = Sandbox::copy_of(template);
        let data = move_tree_in(&sandbox, &bulk);
        let before = read_generated(&sandbox, &final_state);
        let span = run_times[iteration % 2].as_millis() as u64;
        let delay = Duration::from_millis(random.below(span.max(1)));
        let context = format!("seed {seed} (set MXHARDEN_CRASH_SEED to repeat), kill {iteration} from the {template_name} sandbox after {delay:?}");

        let mut command = sandbox.apply_command(&[]);
        let child = spawn_in_own_group(&mut command);
        std::thread::sleep(delay);
        let status = kill_and_wait(child);

        check_interrupted_state(&sandbox, &before, &final_state, &context);
        check_convergence(&sandbox, &final_state, &context);
        eprintln!("{context}: the killed run ended with {status}");
        killed += usize::from(status.code().is_none());
        move_tree_out(&data, &bulk);
    }
    // Runs that ended before their kill test nothing. A loaded machine makes runs longer,
    // not shorter, so most delays fall inside a run.
    assert!(killed >= RANDOM_KILLS / 3, "seed {seed}: only {killed} of {RANDOM_KILLS} runs were killed before they ended");
}

/// One fault to inject with strace: an action on the `when`-th call of `syscall`.
#[derive(Debug, Clone, Copy)]
struct Fault {
    syscall: &'static str,
    action: &'static str,
    /// Injected only in runs from the previous sandbox, where a failed run must restore
    /// the files that it already replaced.
    previous_only: bool,
}

const FAULTS: &[Fault] = &[
    Fault { syscall: "fsync", action: "signal=KILL", previous_only: false },
    Fault { syscall: "renameat", action: "signal=KILL", previous_only: false },
    Fault { syscall: "renameat", action: "error=EIO", previous_only: true },
    Fault { syscall: "write", action: "error=ENOSPC", previous_only: true },
];

#[test]
fn syscall_kills_converge() {
    if !root_or_skip("syscall_kills_converge") {
        return;
    }
    let strace = Command::new("strace").arg("-V").output();
    assert!(
        strace.is_ok_and(|output| output.status.success()),
        "strace is missing: install it (Debian: apt-get install strace, or scripts/install-test-deps)"
    );
    let templates = Templates::new();
    let reference = Sandbox::copy_of(&templates.fresh);
    let output = reference.apply_ok(&["--format", "json"]);
    let final_state = learn_final_state(&reference, &output.stdout);

    let mut cases = Vec::new();
    for template_index in 0..2 {
        let (template_name, template) = templates.pick(template_index);
        let counts = count_syscalls(template);
        for fault in FAULTS.iter().filter(|fault| template_index == 1 || !fault.previous_only) {
            let calls = counts.get(fault.syscall).copied().unwrap_or(0);
            assert!(calls > 0, "a run from the {template_name} sandbox made no {} call", fault.syscall);
            for when in 1..=calls {
                cases.push((template_index, *fault, when));
            }
        }
    }
    eprintln!("{} injected faults", cases.len());

    // Two workers, because each run mostly waits for nginx, nft and useradd.
    let queue = std::sync::Mutex::new(cases);
    let failed_runs = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().expect("lock the case queue").pop();
                    let Some((template_index, fault, when)) = next else { break };
                    let (template_name, template) = templates.pick(template_index);
                    let context = format!("{}:{}:when={when} from the {template_name} sandbox", fault.syscall, fault.action);
                    let sandbox = Sandbox::copy_of(template);
                    let before = read_generated(&sandbox, &final_state);

                    let mut command = strace_command(&sandbox, &["-e", &format!("inject={}:{}:when={when}", fault.syscall, fault.action)]);
                    let child = spawn_in_own_group(&mut command);
                    let status = wait_for_group(child);
                    // strace ends itself with the signal that ended its tracee.
                    if fault.action == "signal=KILL" {
                        assert_eq!(status.signal(), Some(9), "{context}: the run was not killed: {status}");
                    }
                    if status.code() == Some(1) {
                        failed_runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }

                    check_interrupted_state(&sandbox, &before, &final_state, &context);
                    check_convergence(&sandbox, &final_state, &context);
                }
            });
        }
    });
    let failed_runs = failed_runs.into_inner();
    eprintln!("{failed_runs} runs failed with an error, the others were killed or succeeded");
    assert!(failed_runs > 0, "no injected error made a run fail, so the rollback was never exercised");
}

/// Returns how often an uninterrupted run from a copy of `template` calls each system call
/// that [`FAULTS`] names.
fn count_syscalls(template: &Sandbox) -> BTreeMap<String, usize> {
    let sandbox = Sandbox::copy_of(template);
    let trace = sandbox.folder().join("strace.txt");
    let syscalls: Vec<&str> = FAULTS.iter().map(|fault| fault.syscall).collect();
    let mut command = strace_command(&sandbox, &["-o", trace.to_str().expect("temporary paths are UTF-8"), "-e", &format!("trace={}", syscalls.join(","))]);
    let output = command.output().expect("run strace");
    assert!(output.status.success(), "apply under strace failed:\n{}", describe(&output));
    let text = std::fs::read_to_string(&trace).expect("read the strace output");
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        if let Some((name, _)) = line.split_once('(') {
            *counts.entry(name.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

/// Returns a command that runs apply on `sandbox` under strace with `options`. strace
/// follows no child, so only mxharden's own calls are counted and injected.
fn strace_command(sandbox: &Sandbox, options: &[&str]) -> Command {
    let mut command = Command::new("strace");
    command.arg("-qq").args(options);
    if !options.contains(&"-o") {
        command.args(["-o", "/dev/null"]);
    }
    command.arg("--").arg(support::mxharden_binary()).arg("apply").arg("--root").arg(sandbox.root()).arg(sandbox.spec());
    command
}

/// Returns the final state from an uninterrupted run's JSON report and files. The generated
/// files are the report's file resources.
fn learn_final_state(sandbox: &Sandbox, report: &[u8]) -> FinalState {
    let report: Value = serde_json::from_slice(report).expect("apply prints one JSON document");
    let mut contents = BTreeMap::new();
    let mut meta = BTreeMap::new();
    for resource in report["apps"][0]["resources"].as_array().expect("the report lists resources") {
        if resource["kind"] != "file" {
            continue;
        }
        let managed = resource["id"].as_str().expect("every resource has an id").to_owned();
        let path = sandbox.path(&managed);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let masked = mask_secrets(&managed, &bytes).unwrap_or_else(|problem| panic!("reference {managed}: {problem}"));
        let metadata = std::fs::symlink_metadata(&path).expect("stat a generated file");
        contents.insert(managed.clone(), masked);
        meta.insert(managed, (metadata.uid(), metadata.gid(), metadata.mode() & 0o7777));
    }
    for expected in [SECRET_FILE, STATE_FILE] {
        assert!(contents.contains_key(expected), "the reference run did not write {expected}");
    }
    FinalState { contents, meta }
}

/// Replaces the admin password in the include file and the password hash in the state
/// record with placeholders, after checking their shape. Other files are returned as they
/// are.
fn mask_secrets(managed: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let (key, placeholder, valid): (&str, &str, fn(&str) -> bool) = match managed {
        SECRET_FILE => ("admin_pass: \"", "<password>", |value| {
            value.len() >= 32 && value.chars().all(|c| c.is_ascii_alphanumeric())
        }),
        STATE_FILE => ("\"admin_pass_argon2id\": \"", "<hash>", |value| value.starts_with("$argon2id$")),
        _ => return Ok(bytes.to_vec()),
    };
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let start = text.find(key).ok_or_else(|| format!("no {key:?}"))? + key.len();
    let length = text[start..].find('"').ok_or_else(|| format!("{key:?} has no closing quote"))?;
    let value = &text[start..start + length];
    if !valid(value) {
        return Err(format!("the value after {key:?} has the wrong shape"));
    }
    Ok(format!("{}{placeholder}{}", &text[..start], &text[start + length..]).into_bytes())
}

/// Reads every generated file that exists in `sandbox`.
fn read_generated(sandbox: &Sandbox, final_state: &FinalState) -> BTreeMap<String, Option<Vec<u8>>> {
    final_state
        .contents
        .keys()
        .map(|managed| (managed.clone(), std::fs::read(sandbox.path(managed)).ok()))
        .collect()
}

/// Checks that each generated file is as before the run or as an uninterrupted run leaves
/// it, and that a leftover temporary file is no more open than its target.
fn check_interrupted_state(
    sandbox: &Sandbox,
    before: &BTreeMap<String, Option<Vec<u8>>>,
    final_state: &FinalState,
    context: &str,
) {
    for (managed, final_contents) in &final_state.contents {
        let current = std::fs::read(sandbox.path(managed)).ok();
        let previous = &before[managed];
        match &current {
            None => assert!(previous.is_none(), "{context}: {managed} existed before the run and is gone"),
            Some(bytes) if Some(bytes) == previous.as_ref() => {}
            Some(bytes) => {
                let masked = mask_secrets(managed, bytes);
                assert!(
                    masked.as_ref() == Ok(final_contents),
                    "{context}: {managed} is neither its previous nor its final version ({}):\n{}",
                    masked.err().unwrap_or_else(|| "contents differ".to_owned()),
                    String::from_utf8_lossy(bytes)
                );
            }
        }
    }
    for temporary in find_temporaries(&sandbox.root()) {
        let target = target_of_temporary(&temporary);
        let managed = format!("/{}", target.strip_prefix(sandbox.root()).expect("beneath the root").display());
        let Some(&(uid, gid, mode)) = final_state.meta.get(&managed) else {
            panic!("{context}: temporary file {} belongs to no generated file", temporary.display());
        };
        let metadata = std::fs::symlink_metadata(&temporary).expect("stat a temporary file");
        let temporary_mode = metadata.mode() & 0o7777;
        assert_eq!(
            temporary_mode & !mode,
            0,
            "{context}: temporary file {} has mode {temporary_mode:04o}, more open than {managed}'s {mode:04o}",
            temporary.display()
        );
        let owner = (metadata.uid(), metadata.gid());
        assert!(
            owner == (0, 0) || owner == (uid, gid),
            "{context}: temporary file {} is owned by {owner:?}, neither root nor {managed}'s owner",
            temporary.display()
        );
    }
}

/// Returns the file that a temporary file `.<name>.mxharden-<random>` replaces.
fn target_of_temporary(temporary: &Path) -> PathBuf {
    let name = temporary.file_name().expect("a file name").to_string_lossy();
    let target = name
        .strip_prefix('.')
        .and_then(|rest| rest.rsplit_once(".mxharden-"))
        .map(|(target, _)| target.to_owned())
        .unwrap_or_else(|| panic!("{name} is not a temporary file name"));
    temporary.with_file_name(target)
}

/// Runs apply to the end, then checks that a further run changes nothing, that no
/// temporary file is left, and that the generated files match the reference run's.
fn check_convergence(sandbox: &Sandbox, final_state: &FinalState, context: &str) {
    let output = sandbox.apply(&[]);
    assert_eq!(output.status.code(), Some(0), "{context}: the run after the crash failed:\n{}", describe(&output));
    let output = sandbox.apply(&["--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{context}: a second run after the crash still changed something:\n{}", describe(&output));
    let temporaries = find_temporaries(&sandbox.root());
    assert!(temporaries.is_empty(), "{context}: temporary files are left after convergence: {temporaries:?}");
    for (managed, final_contents) in &final_state.contents {
        let path = sandbox.path(managed);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{context}: {}: {e}", path.display()));
        let masked = mask_secrets(managed, &bytes).unwrap_or_else(|problem| panic!("{context}: {managed}: {problem}"));
        assert!(&masked == final_contents, "{context}: {managed} differs from an uninterrupted run's:\n{}", String::from_utf8_lossy(&bytes));
        let metadata = std::fs::symlink_metadata(&path).expect("stat a generated file");
        let meta = (metadata.uid(), metadata.gid(), metadata.mode() & 0o7777);
        assert_eq!(meta, final_state.meta[managed], "{context}: owner, group and mode of {managed}");
    }
}

/// Moves the shared data tree into the sandbox's data folder and gives it back its foreign
/// owner and open modes, so that the walk has every entry to fix. Returns where it is now.
fn move_tree_in(sandbox: &Sandbox, bulk: &Path) -> PathBuf {
    let data = sandbox.path(&format!("{BASE}/data"));
    std::fs::rename(bulk, data.join("bulk")).expect("move the data tree into the sandbox");
    reset_foreign_tree(&data);
    data
}

fn move_tree_out(data: &Path, bulk: &Path) {
    std::fs::rename(data.join("bulk"), bulk).expect("move the data tree out of the sandbox");
}

/// Starts `command` as the leader of a new process group, with its output discarded.
fn spawn_in_own_group(command: &mut Command) -> Child {
    command.process_group(0).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    command.spawn().expect("start apply")
}

/// Sends SIGKILL to the leader alone, then waits until every process of its group ended.
/// Returns how the leader ended.
fn kill_and_wait(mut child: Child) -> ExitStatus {
    // Fails harmlessly when the run already ended.
    let _ = child.kill();
    wait_for_group(child)
}

/// Waits for the leader and then for every other live process of its group.
fn wait_for_group(mut child: Child) -> ExitStatus {
    let group = child.id();
    let status = child.wait().expect("wait for apply");
    let deadline = Instant::now() + CHILDREN_TIMEOUT;
    while group_has_live_members(group) {
        assert!(Instant::now() < deadline, "processes of group {group} still run after {CHILDREN_TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    status
}

/// Tells whether a process other than a zombie belongs to process group `group`, by
/// reading /proc/<pid>/stat (fields 3 and 5 are the state and the group).
fn group_has_live_members(group: u32) -> bool {
    let Ok(listing) = std::fs::read_dir("/proc") else { return false };
    for entry in listing.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The command name in field 2 is in parentheses and may contain spaces.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == group.to_string() {
            return true;
        }
    }
    false
}
