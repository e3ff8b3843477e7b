use std::path::PathBuf;

/// A failed file operation, naming the path it concerned.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A system call failed.
    #[error("{path}: {action} failed: {source}")]
    Io {
        /// The path, as seen from the managed root.
        path: PathBuf,
        /// The attempted operation, e.g. `open`, `rename`.
        action: &'static str,
        /// The error from the kernel.
        source: std::io::Error,
    },
    /// A component of the path is a symbolic link or not a folder.
    #[error("{path}: refusing to follow {component:?}: it is {found}, expected a folder; remove it or fix the path")]
    NotAFolder {
        /// The full path.
        path: PathBuf,
        /// The offending component.
        component: String,
        /// The kind of entry found there.
        found: &'static str,
    },
    /// The final entry has the wrong type.
    #[error("{path}: expected {expected}, found {found}; remove or rename it, then run again")]
    WrongType {
        /// The path.
        path: PathBuf,
        /// The expected type.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A file is larger than the caller accepts.
    #[error("{path}: the file is larger than {limit} bytes")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// Another process holds the run lock.
    #[error("{path}: another mxharden run ({holder}) holds the lock; waited {waited_seconds} s; wait for it to finish or stop it")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The holder, as written in the lock file.
        holder: String,
        /// How long this run waited.
        waited_seconds: u64,
    },
}

impl FsError {
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: rustix::io::Errno) -> FsError {
        FsError::Io {
            path: path.into(),
            action,
            source: source.into(),
        }
    }
}
