//! One apply at a time: an exclusive `flock` on a lock file.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::error::FsError;
use crate::root::{EntryKind, RootDir};

/// Width of the holder record written at the start of the lock file.
const HOLDER_RECORD: usize = 96;

/// The held run lock; dropping it releases the lock.
pub struct RunLock {
    _fd: OwnedFd,
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
        let fd = rustix::fs::openat(&parent, name, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| FsError::io(&host_path, "open lock file", e))?;
        // The holder record is written into the file, so it must be this lock file alone and
        // not a hard link to some other file.
        let stat = rustix::fs::fstat(&fd).map_err(|e| FsError::io(&host_path, "stat lock file", e))?;
        let kind = EntryKind::of(&stat);
        if kind != EntryKind::File || stat.st_nlink != 1 {
            return Err(FsError::WrongType {
                path: host_path,
                expected: "a regular file with one link",
                found: if kind == EntryKind::File { "a file with several hard links" } else { kind.describe() },
            });
        }
        let started = Instant::now();
        loop {
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(Errno::WOULDBLOCK) if started.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(100));
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
        }
        write_holder(&fd, holder).map_err(|e| FsError::io(&host_path, "write lock holder", e))?;
        Ok(RunLock { _fd: fd })
    }
}

/// Writes a fixed-width record in place with `pwrite`, so the file never
/// holds a shorter, truncated record.
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
