//! The admin password file under `umask 000`: an unprivileged watcher that tries to open
//! every entry appearing in `<base>/.m2ee` while apply rewrites the file never opens the
//! file or its temporary files.
//!
//! What the test shows: apply runs ten times with umask 000, each time writing a new
//! password. The watcher is a thread running as a uid that no sandbox account has. It gets
//! every name created in `.m2ee` from inotify and tries to open it at once, read-only. A
//! writer that created its temporary file with a mode that depends on the umask (for
//! example `open(path, O_CREAT, 0666)`) would leave a window in which the watcher opens the
//! file and later reads the password through that descriptor. A control writer that does
//! exactly that runs between the applies, and the test checks that the watcher catches it.
//!
//! What it cannot show: the watcher samples; a window shorter than the time between an
//! inotify event and the watcher's `openat` could be missed. The control shows that windows
//! of the size a create-write-fsync-rename sequence has are caught. The reason that no
//! window exists at all is in `mxharden-fs`: temporary files are created with mode 0 and
//! get owner and mode on the descriptor before any byte is written. The test also does not
//! cover the app user itself (which owns the file) or root.
//!
//! `.m2ee` is 0700 after apply, so nobody else could even look up a name in it. To test
//! the file modes alone, a keeper thread opens the folder to 0755 whenever apply closes it.
//! That makes apply's own verification report `.m2ee` as not converged, so the applies here
//! may exit with 1 after writing every file.

mod support;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::fs::{AtFlags, Mode, OFlags, inotify};
use rustix::io::Errno;
use support::{BASE, FOREIGN_UID, Sandbox, describe, root_or_skip};

/// Number of applies, each writing a new password.
const RUNS: usize = 10;

/// The watcher's uid and gid: no sandbox account has them.
const WATCHER_ID: u32 = FOREIGN_UID + 1;

/// A file of mode 0644 in `.m2ee` that the watcher must be able to read, which shows that
/// it can reach the folder.
const READABLE_NAME: &str = "readable-control.txt";

/// The file that the control writer replaces with a umask-dependent temporary file.
const NAIVE_NAME: &str = "naive.yaml";
const NAIVE_TEMPORARY: &str = ".naive.yaml.tmp";
const NAIVE_SECRET: &str = "naive-secret-value";

/// Name whose creation stops the watcher.
const STOP_NAME: &str = "stop-watcher";

/// What the watcher saw for one name.
#[derive(Default, Clone)]
struct Sightings {
    /// Open attempts refused with EACCES.
    refused: usize,
    /// Refusals right after which the readable control file could be looked up, so the
    /// folder was open (give or take the keeper's reaction time) and the file's own mode
    /// refused.
    refused_by_file_mode: usize,
    /// Successful opens.
    opened: usize,
    /// Every byte read through the opened descriptors, after the last run.
    read: Vec<u8>,
}

#[test]
fn secret_unreadable_with_umask_000() {
    if !root_or_skip("secret_unreadable_with_umask_000") {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.apply_ok(&[]);
    let (app_uid, _) = sandbox.app_ids();
    assert_ne!(app_uid, WATCHER_ID, "the watcher must not run as the app user");
    let m2ee = sandbox.path(&format!("{BASE}/.m2ee"));
    let readable = m2ee.join(READABLE_NAME);
    std::fs::write(&readable, "readable\n").expect("write the readable control file");
    std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o644)).expect("chmod the control file");
    std::fs::set_permissions(&m2ee, std::fs::Permissions::from_mode(0o755)).expect("open .m2ee");

    let stop_keeper = Arc::new(AtomicBool::new(false));
    let keeper = {
        let (stop, m2ee) = (Arc::clone(&stop_keeper), m2ee.clone());
        std::thread::spawn(move || keep_open(&m2ee, &stop))
    };
    let watcher = {
        let m2ee = m2ee.clone();
        support::spawn_unprivileged("umask-watcher", WATCHER_ID, WATCHER_ID, move || watch(&m2ee))
    };
    // The watcher adds its inotify watch in this time. A name that it missed would only
    // weaken the test, and the checks below count that it saw every run.
    std::thread::sleep(Duration::from_millis(200));

    let mut passwords = Vec::new();
    for run in 0..RUNS {
        // Without the file, apply generates a new password and writes the file again.
        std::fs::remove_file(sandbox.path(support::SECRET_FILE)).expect("remove the password file");
        let output = Command::new("sh")
            .arg("-c")
            .arg(r#"umask 000 && exec "$0" "$@""#)
            .arg(support::mxharden_binary())
            .args(["apply", "--root"])
            .arg(sandbox.root())
            .arg(sandbox.spec())
            .output()
            .expect("run mxharden under umask 000");
        let secret = std::fs::read_to_string(sandbox.path(support::SECRET_FILE))
            .unwrap_or_else(|e| panic!("run {run} wrote no password file ({e}):\n{}", describe(&output)));
        passwords.push(admin_password(&secret));
        eprintln!("run {run} under umask 000 ended with {}", output.status);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() || stderr.contains("verification failed"),
            "run {run} failed for another reason than the opened .m2ee:\n{}",
            describe(&output)
        );
        write_naively(&m2ee);
    }

    std::fs::write(m2ee.join(STOP_NAME), "").expect("create the stop file");
    let sightings = watcher.join().expect("the watcher thread panicked");
    stop_keeper.store(true, Ordering::SeqCst);
    keeper.join().expect("the keeper thread panicked");

    let summary: Vec<String> = sightings
        .iter()
        .map(|(name, seen)| {
            format!(
                "{name}: opened {} times, refused {} times ({} by the file's mode), {} bytes read",
                seen.opened,
                seen.refused,
                seen.refused_by_file_mode,
                seen.read.len()
            )
        })
        .collect();
    let summary = summary.join("\n");
    eprintln!("watcher sightings:\n{summary}");

    let secret_names: Vec<&String> = sightings.keys().filter(|name| is_secret_name(name)).collect();
    let secret_temporaries = secret_names.iter().filter(|name| name.as_str() != "mxharden.yaml").count();
    assert!(secret_temporaries >= RUNS, "the watcher saw {secret_temporaries} temporary password files in {RUNS} runs:\n{summary}");
    for name in &secret_names {
        let seen = &sightings[*name];
        assert_eq!(seen.opened, 0, "the watcher opened {name}:\n{summary}");
        assert!(seen.read.is_empty(), "the watcher read {} bytes of {name}", seen.read.len());
    }
    let everything_read: Vec<u8> = sightings.values().flat_map(|seen| seen.read.clone()).collect();
    for password in &passwords {
        let leaked = everything_read.windows(password.len()).any(|window| window == password.as_bytes());
        assert!(!leaked, "the watcher read an admin password");
    }
    let refused_by_file_mode: usize = secret_names.iter().map(|name| sightings[*name].refused_by_file_mode).sum();
    eprintln!("open attempts on password files refused by the file's own mode: {refused_by_file_mode}");
    assert!(refused_by_file_mode > 0, "no open attempt reached a password file while .m2ee was open:\n{summary}");

    let readable_seen = sightings.get(READABLE_NAME).cloned().unwrap_or_default();
    assert!(readable_seen.opened > 0, "the watcher never opened the readable control file:\n{summary}");
    let naive_temporary = sightings.get(NAIVE_TEMPORARY).cloned().unwrap_or_default();
    assert!(
        naive_temporary.opened > 0,
        "the watcher never opened the control writer's temporary file, so it would miss a umask-dependent writer:\n{summary}"
    );
    let naive_leak = String::from_utf8_lossy(&naive_temporary.read).contains(NAIVE_SECRET);
    assert!(naive_leak, "the watcher opened the control writer's temporary file but read no secret from it:\n{summary}");
}

/// Returns the admin password from the include file's `admin_pass: "..."` line.
fn admin_password(include_file: &str) -> String {
    let line = include_file
        .lines()
        .find_map(|line| line.trim().strip_prefix("admin_pass:"))
        .unwrap_or_else(|| panic!("no admin_pass in the include file"));
    line.trim().trim_matches('"').to_owned()
}

/// Tells whether `name` is the password file or one of its temporary files.
fn is_secret_name(name: &str) -> bool {
    name == "mxharden.yaml" || name.starts_with(".mxharden.yaml.mxharden-")
}

/// Replaces `naive.yaml` the way a writer that trusts the umask would: the temporary file
/// is created with mode 0666 under umask 000 and renamed after writing and syncing.
fn write_naively(m2ee: &Path) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = m2ee.join(NAIVE_TEMPORARY);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&temporary)
        .expect("create the naive temporary file");
    // The test process keeps its own umask, so this sets what umask 000 would have left.
    file.set_permissions(std::fs::Permissions::from_mode(0o666)).expect("chmod the naive temporary file");
    file.write_all(NAIVE_SECRET.as_bytes()).expect("write the naive temporary file");
    file.sync_all().expect("sync the naive temporary file");
    drop(file);
    std::fs::rename(&temporary, m2ee.join(NAIVE_NAME)).expect("rename the naive temporary file");
}

/// Sets `m2ee` back to mode 0755 whenever it has another mode, until `stop` is set.
fn keep_open(m2ee: &Path, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let mode = std::fs::metadata(m2ee).map(|m| m.permissions().mode() & 0o7777);
        if mode.is_ok_and(|mode| mode != 0o755) {
            let _ = std::fs::set_permissions(m2ee, std::fs::Permissions::from_mode(0o755));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Watches `m2ee` with inotify and tries to open every name that appears, until the stop
/// file appears. Runs as the unprivileged watcher. Returns what it saw per name.
fn watch(m2ee: &Path) -> BTreeMap<String, Sightings> {
    let folder = rustix::fs::open(m2ee, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .expect("the watcher opens .m2ee");
    let notify = inotify::init(inotify::CreateFlags::CLOEXEC).expect("create an inotify instance");
    let events = inotify::WatchFlags::CREATE | inotify::WatchFlags::MOVED_TO | inotify::WatchFlags::MODIFY | inotify::WatchFlags::CLOSE_WRITE;
    inotify::add_watch(&notify, m2ee, events).expect("watch .m2ee");

    let mut sightings: BTreeMap<String, Sightings> = BTreeMap::new();
    let mut opened: Vec<(String, OwnedFd)> = Vec::new();
    let mut buffer = [MaybeUninit::<u8>::uninit(); 64 * 1024];
    let mut reader = inotify::Reader::new(&notify, &mut buffer);
    'events: loop {
        let event = reader.next().expect("read an inotify event");
        let Some(name) = event.file_name() else { continue };
        let name = name.to_string_lossy().into_owned();
        if name == STOP_NAME {
            break 'events;
        }
        try_open(&folder, &name, &mut sightings, &mut opened);
        // The readable control file shows on every pass that the folder can be reached.
        try_open(&folder, READABLE_NAME, &mut sightings, &mut opened);
    }

    // Reading at the end, from offset 0, also returns what was written after the open.
    for (name, descriptor) in &opened {
        let mut contents = vec![0u8; 64 * 1024];
        let length = rustix::io::pread(descriptor, &mut contents, 0).unwrap_or(0);
        sightings.get_mut(name).expect("a sighting per opened name").read.extend_from_slice(&contents[..length]);
    }
    sightings
}

fn try_open(folder: &OwnedFd, name: &str, sightings: &mut BTreeMap<String, Sightings>, opened: &mut Vec<(String, OwnedFd)>) {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let path = CString::new(name).expect("file names hold no NUL byte");
    let attempt = rustix::fs::openat(folder, path.as_c_str(), flags, Mode::empty());
    let seen = sightings.entry(name.to_owned()).or_default();
    match attempt {
        Ok(descriptor) => {
            seen.opened += 1;
            opened.push((name.to_owned(), descriptor));
        }
        Err(Errno::ACCESS) => {
            seen.refused += 1;
            let reachable = rustix::fs::statat(folder, READABLE_NAME, AtFlags::SYMLINK_NOFOLLOW).is_ok();
            seen.refused_by_file_mode += usize::from(reachable);
        }
        Err(_) => {}
    }
}
