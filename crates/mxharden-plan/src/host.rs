//! The system tree that mxharden acts on: `/` or a `--root` folder.

use std::path::{Path, PathBuf};

use mxharden_fs::RootDir;

use crate::accounts::{Accounts, FileAccounts, NssAccounts};
use crate::error::PlanError;

/// The host being planned for and changed.
pub struct Host {
    /// Descriptor-based access beneath the root.
    pub root: RootDir,
    /// The root folder: `/`, or the `--root` folder.
    pub prefix: PathBuf,
    /// True when acting on the live system, so services may be reloaded.
    pub live: bool,
    /// Account look-ups for this tree.
    pub accounts: Box<dyn Accounts>,
}

impl Host {
    /// Opens the live system at `/`.
    pub fn live() -> Result<Host, PlanError> {
        Ok(Host {
            root: RootDir::open(Path::new("/"))?,
            prefix: PathBuf::from("/"),
            live: true,
            accounts: Box::new(NssAccounts),
        })
    }

    /// Opens the tree beneath `prefix`, as `useradd --prefix` does.
    pub fn sandbox(prefix: &Path) -> Result<Host, PlanError> {
        let prefix = std::path::absolute(prefix).map_err(|source| PlanError::Io {
            path: prefix.to_path_buf(),
            source,
        })?;
        Ok(Host {
            root: RootDir::open(&prefix)?,
            accounts: Box::new(FileAccounts::new(&prefix)),
            prefix,
            live: false,
        })
    }

    /// Returns the host path of an absolute managed path.
    pub fn host_path(&self, path: &str) -> PathBuf {
        self.root.host_path(path)
    }

    /// Returns the `--root` prefix as a string to put before managed paths,
    /// or an empty string on the live system.
    pub fn path_prefix(&self) -> String {
        if self.live { String::new() } else { self.prefix.display().to_string() }
    }
}
