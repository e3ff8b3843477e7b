//! One apply at a time: an exclusive `flock` on a lock file.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::error::FsError;
use crate::root::{EntryKind, RootDir};

/// Width of the holder record written at the start of the lock file.
const HOLDER_RECORD: usize = 96;

/// The held run lock. Dropping it removes the lock file and releases the
/// lock, so a run leaves no file behind.
pub struct RunLock {
    /// The locked file, held open until the lock is released.
    _fd: OwnedFd,
    parent: OwnedFd,
    name: String,
}

impl RunLock {
    /// Takes the lock at `path` beneath `root`, waiting up to `timeout`.
    /// `holder` (e.g. `pid 4242`) is recorded so a waiting run can name it.
    pub fn acquire(root: &RootDir, path: &str, holder: &str, timeout: Duration) -> Result<RunLock, FsError> {
        let host_path = root.host_path(path);
        let Some((parent, name)) = root.open_parent(path)? else {
            return Err(FsError::io(host_path, "open lock folder", Errno::NOENT));
        };
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let started = Instant::now();
        loop {
            let fd = rustix::fs::openat(&parent, name, flags, Mode::from_raw_mode(0o600))
                .map_err(|e| FsError::io(&host_path, "open lock file", e))?;
            // The holder record is written into the file, so it must be this
            // lock file alone and not a hard link to some other file.
            let stat = rustix::fs::fstat(&fd).map_err(|e| FsError::io(&host_path, "stat lock file", e))?;
            let kind = EntryKind::of(&stat);
            if kind != EntryKind::File || stat.st_nlink != 1 {
                return Err(FsError::WrongType {
                    path: host_path,
                    expected: "a regular file with one link",
                    found: if kind == EntryKind::File { "a file with several hard links" } else { kind.describe() },
                });
            }
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) if started.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(Errno::WOULDBLOCK) => {
                    return Err(FsError::Locked {
                        path: host_path,
                        holder: read_holder(&fd),
                        waited_seconds: started.elapsed().as_secs(),
                    });
                }
                Err(e) => return Err(FsError::io(&host_path, "lock", e)),
            }
            // The previous holder removes the file before it releases the
            // lock, so a lock won on a removed file is stale: open again.
            if !still_linked(&parent, name, &fd) {
                continue;
            }
            if let Err(e) = write_holder(&fd, holder) {
                // A full disk fails here; the file goes while still locked.
                let _ = rustix::fs::unlinkat(&parent, name, AtFlags::empty());
                return Err(FsError::io(&host_path, "write lock holder", e));
            }
            return Ok(RunLock {
                _fd: fd,
                parent,
                name: name.to_owned(),
            });
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked; closing `_fd` afterwards releases it.
        // A file that cannot be removed is harmless: the next run locks it.
        let _ = rustix::fs::unlinkat(&self.parent, self.name.as_str(), AtFlags::empty());
    }
}

/// Tells whether `name` in `parent` is still the file open as `fd`.
fn still_linked(parent: &OwnedFd, name: &str, fd: &OwnedFd) -> bool {
    let (Ok(open), Ok(linked)) = (rustix::fs::fstat(fd), rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)) else {
        return false;
    };
    open.st_dev == linked.st_dev && open.st_ino == linked.st_ino
}

/// Writes a fixed-width record in place with `pwrite`, so the file never
/// contains a shorter, truncated record.
fn write_holder(fd: &OwnedFd, holder: &str) -> rustix::io::Result<()> {
    let mut record = [b' '; HOLDER_RECORD];
    let text = holder.as_bytes();
    let length = text.len().min(HOLDER_RECORD - 1);
    record[..length].copy_from_slice(&text[..length]);
    record[HOLDER_RECORD - 1] = b'\n';
    rustix::io::pwrite(fd, &record, 0).map(|_| ())
}

fn read_holder(fd: &OwnedFd) -> String {
    let mut record = [0u8; HOLDER_RECORD];
    match rustix::io::pread(fd, &mut record, 0) {
        Ok(length) => String::from_utf8_lossy(&record[..length]).trim().to_owned(),
        Err(_) => "unknown holder".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "/run/mxharden.lock";

    fn root_with_run() -> (tempfile::TempDir, RootDir) {
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir(folder.path().join("run")).unwrap();
        let root = RootDir::open(folder.path()).unwrap();
        (folder, root)
    }

    #[test]
    fn release_removes_lock_file() {
        let (folder, root) = root_with_run();
        let lock = RunLock::acquire(&root, LOCK, "pid 1", Duration::from_secs(1)).unwrap();
        assert!(folder.path().join("run/mxharden.lock").exists());
        drop(lock);
        assert!(!folder.path().join("run/mxharden.lock").exists());
    }

    #[test]
    fn waiter_takes_lock_after_release() {
        let (folder, root) = root_with_run();
        let first = RunLock::acquire(&root, LOCK, "pid 1", Duration::from_secs(1)).unwrap();
        let path = folder.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let root = RootDir::open(&path).unwrap();
            let lock = RunLock::acquire(&root, LOCK, "pid 2", Duration::from_secs(10)).unwrap();
            let record = std::fs::read_to_string(path.join("run/mxharden.lock")).unwrap();
            drop(lock);
            record
        });
        std::thread::sleep(Duration::from_millis(300));
        drop(first);
        let record = waiter.join().unwrap();
        assert_eq!(record.trim(), "pid 2");
    }

    #[test]
    fn second_acquire_times_out_naming_holder() {
        let (_folder, root) = root_with_run();
        let _first = RunLock::acquire(&root, LOCK, "pid 1", Duration::from_secs(1)).unwrap();
        match RunLock::acquire(&root, LOCK, "pid 2", Duration::from_millis(200)) {
            Err(FsError::Locked { holder, .. }) => assert_eq!(holder, "pid 1"),
            Err(other) => panic!("expected a lock timeout, got {other}"),
            Ok(_) => panic!("expected a lock timeout, got the lock"),
        }
    }
}
