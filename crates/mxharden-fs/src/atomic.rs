//! Replacing a file so that readers see the old or the new contents, never a mix.

use std::io::Write;

use rand::RngExt;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::FsError;
use crate::root::{RootDir, set_fd_meta};

/// Owner, group and mode of a file being written.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
}

/// Writes `contents` to `path` through a temporary file in the same folder.
/// The temporary file is created with no permissions, then gets its final
/// owner and mode, is written, synced and renamed over the target, and the
/// folder is synced. The parent folder must exist. On failure the temporary
/// file is removed.
pub fn write_atomic(root: &RootDir, path: &str, contents: &[u8], options: WriteOptions) -> Result<(), FsError> {
    let host_path = root.host_path(path);
    let Some((parent, name)) = root.open_parent(path)? else {
        return Err(FsError::io(host_path, "open parent folder", Errno::NOENT));
    };
    remove_stale_temporaries(&parent, name, &host_path)?;
    let temp_name = format!("{}{:016x}", temp_prefix(name), rand::rng().random::<u64>());
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(&parent, temp_name.as_str(), flags, Mode::empty())
        .map_err(|e| FsError::io(&host_path, "create temporary file", e))?;

    let result = (|| {
        set_fd_meta(&fd, options.uid, options.gid, options.mode).map_err(|e| FsError::io(&host_path, "chown", e))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(contents).map_err(|source| FsError::Io {
            path: host_path.clone(),
            action: "write",
            source,
        })?;
        file.sync_all().map_err(|source| FsError::Io {
            path: host_path.clone(),
            action: "fsync",
            source,
        })?;
        drop(file);
        rustix::fs::renameat(&parent, temp_name.as_str(), &parent, name)
            .map_err(|e| FsError::io(&host_path, "rename", e))?;
        rustix::fs::fsync(&parent).map_err(|e| FsError::io(&host_path, "fsync folder", e))
    })();

    if result.is_err() {
        // The rename may not have happened; a leftover temporary file is removed.
        let _ = rustix::fs::unlinkat(&parent, temp_name.as_str(), AtFlags::empty());
    }
    result
}

fn temp_prefix(name: &str) -> String {
    format!(".{name}.mxharden-")
}

/// Removes temporary files that an earlier run left when it was killed
/// between creating and renaming them. Only regular files with this
/// target's temporary prefix are removed.
fn remove_stale_temporaries(parent: &std::os::fd::OwnedFd, name: &str, host_path: &std::path::Path) -> Result<(), FsError> {
    let prefix = temp_prefix(name);
    let reader = rustix::io::dup(parent).map_err(|e| FsError::io(host_path, "dup", e))?;
    let mut dir = rustix::fs::Dir::new(reader).map_err(|e| FsError::io(host_path, "read folder", e))?;
    let mut stale = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(|e| FsError::io(host_path, "read folder", e))?;
        let entry_name = entry.file_name().to_string_lossy();
        if entry_name.starts_with(&prefix) && entry.file_type() == rustix::fs::FileType::RegularFile {
            stale.push(entry.file_name().to_owned());
        }
    }
    for entry_name in stale {
        match rustix::fs::unlinkat(parent, entry_name.as_c_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(FsError::io(host_path, "remove stale temporary file", e)),
        }
    }
    Ok(())
}
