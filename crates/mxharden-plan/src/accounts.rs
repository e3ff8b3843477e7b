//! Looking up system accounts, on the live system or in a `--root` tree.

use std::path::{Path, PathBuf};

use crate::error::PlanError;

/// A user account as `/etc/passwd` records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home folder.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// A group as `/etc/group` records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Supplementary members.
    pub members: Vec<String>,
}

/// Account and group look-ups.
pub trait Accounts {
    /// Finds a user by name.
    fn user(&self, name: &str) -> Result<Option<Account>, PlanError>;
    /// Finds a group by name.
    fn group(&self, name: &str) -> Result<Option<GroupEntry>, PlanError>;
    /// Finds a group by id.
    fn group_by_id(&self, gid: u32) -> Result<Option<GroupEntry>, PlanError>;
}

/// The live system's name service, through `nix`.
pub struct NssAccounts;

impl Accounts for NssAccounts {
    fn user(&self, name: &str) -> Result<Option<Account>, PlanError> {
        let user = nix::unistd::User::from_name(name).map_err(|e| PlanError::Lookup(format!("user {name}: {e}")))?;
        Ok(user.map(|u| Account {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir.display().to_string(),
            shell: u.shell.display().to_string(),
        }))
    }

    fn group(&self, name: &str) -> Result<Option<GroupEntry>, PlanError> {
        let group = nix::unistd::Group::from_name(name).map_err(|e| PlanError::Lookup(format!("group {name}: {e}")))?;
        Ok(group.map(to_group_entry))
    }

    fn group_by_id(&self, gid: u32) -> Result<Option<GroupEntry>, PlanError> {
        let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
            .map_err(|e| PlanError::Lookup(format!("group {gid}: {e}")))?;
        Ok(group.map(to_group_entry))
    }
}

fn to_group_entry(group: nix::unistd::Group) -> GroupEntry {
    GroupEntry {
        name: group.name,
        gid: group.gid.as_raw(),
        members: group.mem,
    }
}

/// The `etc/passwd` and `etc/group` files of a `--root` tree. The name
/// service reads only the live system's files, so these are read directly.
pub struct FileAccounts {
    passwd: PathBuf,
    group: PathBuf,
}

impl FileAccounts {
    /// Reads accounts beneath `prefix`.
    pub fn new(prefix: &Path) -> FileAccounts {
        FileAccounts {
            passwd: prefix.join("etc/passwd"),
            group: prefix.join("etc/group"),
        }
    }

    fn lines(path: &Path) -> Result<Vec<Vec<String>>, PlanError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(PlanError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| line.split(':').map(str::to_owned).collect())
            .collect())
    }

    fn groups(&self) -> Result<Vec<GroupEntry>, PlanError> {
        Ok(Self::lines(&self.group)?
            .into_iter()
            .filter(|fields| fields.len() >= 4)
            .filter_map(|fields| {
                Some(GroupEntry {
                    name: fields[0].clone(),
                    gid: fields[2].parse().ok()?,
                    members: fields[3].split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect(),
                })
            })
            .collect())
    }
}

impl Accounts for FileAccounts {
    fn user(&self, name: &str) -> Result<Option<Account>, PlanError> {
        Ok(Self::lines(&self.passwd)?
            .into_iter()
            .find(|fields| fields.len() >= 7 && fields[0] == name)
            .and_then(|fields| {
                Some(Account {
                    name: fields[0].clone(),
                    uid: fields[2].parse().ok()?,
                    gid: fields[3].parse().ok()?,
                    home: fields[5].clone(),
                    shell: fields[6].clone(),
                })
            }))
    }

    fn group(&self, name: &str) -> Result<Option<GroupEntry>, PlanError> {
        Ok(self.groups()?.into_iter().find(|g| g.name == name))
    }

    fn group_by_id(&self, gid: u32) -> Result<Option<GroupEntry>, PlanError> {
        Ok(self.groups()?.into_iter().find(|g| g.gid == gid))
    }
}
