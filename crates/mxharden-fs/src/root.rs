//! Resolving paths beneath a root directory without following links.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Stat, Uid};
use rustix::io::Errno;

use crate::error::FsError;

/// The type of a directory entry, as `lstat` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else: FIFO, socket or device.
    Other,
}

impl EntryKind {
    pub(crate) fn of(stat: &Stat) -> EntryKind {
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => EntryKind::File,
            FileType::Directory => EntryKind::Dir,
            FileType::Symlink => EntryKind::Symlink,
            _ => EntryKind::Other,
        }
    }

    /// Describes the kind in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            EntryKind::File => "a regular file",
            EntryKind::Dir => "a folder",
            EntryKind::Symlink => "a symbolic link",
            EntryKind::Other => "a special file",
        }
    }
}

/// Owner, group, permission bits and type of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Entry type.
    pub kind: EntryKind,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Permission bits, `0o7777` at most.
    pub mode: u32,
    /// Number of hard links.
    pub links: u64,
}

impl Meta {
    pub(crate) fn of(stat: &Stat) -> Meta {
        Meta {
            kind: EntryKind::of(stat),
            uid: stat.st_uid,
            gid: stat.st_gid,
            mode: stat.st_mode & 0o7777,
            links: stat.st_nlink as u64,
        }
    }
}

/// A directory that every managed path is resolved beneath: `/` on a live
/// host, or the folder given with `--root`.
pub struct RootDir {
    fd: OwnedFd,
    prefix: PathBuf,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl RootDir {
    /// Opens `prefix`, which the caller trusts (it is given by root).
    pub fn open(prefix: &Path) -> Result<RootDir, FsError> {
        let fd = rustix::fs::open(prefix, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| FsError::io(prefix, "open", e))?;
        Ok(RootDir {
            fd,
            prefix: prefix.to_path_buf(),
        })
    }

    /// Returns the host path of `path` beneath the root, for messages and tools.
    pub fn host_path(&self, path: &str) -> PathBuf {
        let relative = path.trim_start_matches('/');
        if relative.is_empty() { self.prefix.clone() } else { self.prefix.join(relative) }
    }

    /// Splits an absolute path into its components, rejecting `.` and `..`.
    fn components(path: &str) -> Vec<&str> {
        path.split('/').filter(|c| !c.is_empty()).collect()
    }

    /// Opens the folder at `path`. Returns `Ok(None)` when a component is missing.
    pub fn open_dir(&self, path: &str) -> Result<Option<OwnedFd>, FsError> {
        let components = Self::components(path);
        self.open_dir_components(path, &components)
    }

    fn open_dir_components(&self, path: &str, components: &[&str]) -> Result<Option<OwnedFd>, FsError> {
        // Fast path: one openat2 call that the kernel resolves without
        // following any link and without leaving the root. Any failure other
        // than success or a missing entry falls through to the walk below,
        // which names the offending component (and works on kernels before
        // 5.6, which lack openat2).
        if !components.is_empty() {
            let joined = components.join("/");
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&self.fd, joined.as_str(), DIR_FLAGS, Mode::empty(), resolve) {
                Ok(fd) => return Ok(Some(fd)),
                Err(Errno::NOENT) => return Ok(None),
                Err(_) => {}
            }
        }
        let mut current = rustix::io::dup(&self.fd).map_err(|e| FsError::io(self.host_path(path), "dup", e))?;
        for component in components {
            assert_ne!(*component, ".", "paths reaching the file layer are normalized");
            assert_ne!(*component, "..", "paths reaching the file layer are normalized");
            match rustix::fs::openat(&current, *component, DIR_FLAGS, Mode::empty()) {
                Ok(next) => current = next,
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                    let found = rustix::fs::statat(&current, *component, AtFlags::SYMLINK_NOFOLLOW)
                        .map(|stat| EntryKind::of(&stat).describe())
                        .unwrap_or("not a folder");
                    return Err(FsError::NotAFolder {
                        path: self.host_path(path),
                        component: component.to_string(),
                        found,
                    });
                }
                Err(e) => return Err(FsError::io(self.host_path(path), "open", e)),
            }
        }
        Ok(Some(current))
    }

    /// Opens the parent folder of `path` and returns it with the last component.
    pub fn open_parent<'p>(&self, path: &'p str) -> Result<Option<(OwnedFd, &'p str)>, FsError> {
        let components = Self::components(path);
        let Some((name, parents)) = components.split_last() else {
            return Err(FsError::WrongType {
                path: self.host_path(path),
                expected: "a path below the root",
                found: "the root itself",
            });
        };
        Ok(self.open_dir_components(path, parents)?.map(|fd| (fd, *name)))
    }

    /// Returns the metadata of `path` without following a final link, or
    /// `None` when it or a parent is missing.
    pub fn meta(&self, path: &str) -> Result<Option<Meta>, FsError> {
        if Self::components(path).is_empty() {
            let stat = rustix::fs::fstat(&self.fd).map_err(|e| FsError::io(self.host_path(path), "stat", e))?;
            return Ok(Some(Meta::of(&stat)));
        }
        let Some((parent, name)) = self.open_parent(path)? else {
            return Ok(None);
        };
        match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(Meta::of(&stat))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(FsError::io(self.host_path(path), "stat", e)),
        }
    }

    /// Reads a regular file of at most `limit` bytes, or `None` when missing.
    pub fn read_file(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, FsError> {
        let Some((parent, name)) = self.open_parent(path)? else {
            return Ok(None);
        };
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&parent, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => {
                return Err(FsError::WrongType {
                    path: self.host_path(path),
                    expected: "a regular file",
                    found: "a symbolic link",
                });
            }
            Err(e) => return Err(FsError::io(self.host_path(path), "open", e)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| FsError::io(self.host_path(path), "stat", e))?;
        let kind = EntryKind::of(&stat);
        if kind != EntryKind::File {
            return Err(FsError::WrongType {
                path: self.host_path(path),
                expected: "a regular file",
                found: kind.describe(),
            });
        }
        if stat.st_size as u64 > limit {
            return Err(FsError::TooLarge {
                path: self.host_path(path),
                limit,
            });
        }
        let mut contents = Vec::with_capacity(stat.st_size as usize);
        let mut file = std::fs::File::from(fd);
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, limit + 1), &mut contents)
            .map_err(|source| FsError::Io {
                path: self.host_path(path),
                action: "read",
                source,
            })?;
        if contents.len() as u64 > limit {
            return Err(FsError::TooLarge {
                path: self.host_path(path),
                limit,
            });
        }
        Ok(Some(contents))
    }

    /// Creates every missing folder of `path`. Missing parents get root
    /// ownership and mode 0755; the last folder gets `uid`, `gid` and `mode`.
    /// An existing folder keeps its owner and mode: use [`RootDir::set_meta`].
    pub fn create_dir_all(&self, path: &str, uid: u32, gid: u32, mode: u32) -> Result<(), FsError> {
        let components = Self::components(path);
        let mut current = rustix::io::dup(&self.fd).map_err(|e| FsError::io(self.host_path(path), "dup", e))?;
        for (index, component) in components.iter().enumerate() {
            let last = index + 1 == components.len();
            match rustix::fs::openat(&current, *component, DIR_FLAGS, Mode::empty()) {
                Ok(next) => {
                    current = next;
                    continue;
                }
                Err(Errno::NOENT) => {}
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                    return Err(FsError::NotAFolder {
                        path: self.host_path(path),
                        component: component.to_string(),
                        found: "a symbolic link or a file",
                    });
                }
                Err(e) => return Err(FsError::io(self.host_path(path), "open", e)),
            }
            // Created for its creator alone, so no other account can use it
            // before its owner and mode are set on the descriptor below.
            match rustix::fs::mkdirat(&current, *component, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(FsError::io(self.host_path(path), "mkdir", e)),
            }
            let next = rustix::fs::openat(&current, *component, DIR_FLAGS, Mode::empty())
                .map_err(|e| FsError::io(self.host_path(path), "open", e))?;
            let (owner, group, bits) = if last { (uid, gid, mode) } else { (0, 0, 0o755) };
            set_fd_meta(&next, owner, group, bits).map_err(|e| FsError::io(self.host_path(path), "chown", e))?;
            rustix::fs::fsync(&current).map_err(|e| FsError::io(self.host_path(path), "fsync", e))?;
            current = next;
        }
        Ok(())
    }

    /// Sets owner, group and mode of the folder or regular file at `path`,
    /// on an opened descriptor whose type was checked first.
    pub fn set_meta(&self, path: &str, uid: u32, gid: u32, mode: u32) -> Result<(), FsError> {
        let Some((parent, name)) = self.open_parent(path)? else {
            return Err(FsError::io(self.host_path(path), "open", Errno::NOENT));
        };
        let fd = open_entry_nofollow(&parent, name).map_err(|e| FsError::io(self.host_path(path), "open", e))?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| FsError::io(self.host_path(path), "stat", e))?;
        let kind = EntryKind::of(&stat);
        if kind != EntryKind::File && kind != EntryKind::Dir {
            return Err(FsError::WrongType {
                path: self.host_path(path),
                expected: "a regular file or a folder",
                found: kind.describe(),
            });
        }
        set_fd_meta(&fd, uid, gid, mode).map_err(|e| FsError::io(self.host_path(path), "chown", e))
    }

    /// Removes the regular file at `path`; a missing file is not an error.
    pub fn remove_file(&self, path: &str) -> Result<(), FsError> {
        let Some((parent, name)) = self.open_parent(path)? else {
            return Ok(());
        };
        match rustix::fs::unlinkat(&parent, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(FsError::io(self.host_path(path), "unlink", e)),
        }
        rustix::fs::fsync(&parent).map_err(|e| FsError::io(self.host_path(path), "fsync", e))
    }
}

/// Opens a folder or file for `fchown`/`fchmod`, never following a link and
/// never blocking on a FIFO that replaced the entry.
pub(crate) fn open_entry_nofollow<P: rustix::path::Arg>(parent: impl AsFd, name: P) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    rustix::fs::openat(parent, name, flags, Mode::empty())
}

/// Sets owner first, then mode, because `chown` clears set-id bits.
pub(crate) fn set_fd_meta(fd: impl AsFd, uid: u32, gid: u32, mode: u32) -> rustix::io::Result<()> {
    let fd = fd.as_fd();
    rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))
}
