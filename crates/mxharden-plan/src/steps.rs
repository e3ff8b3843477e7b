//! The steps of a plan, and how each is shown to the operator.

use mxharden_fs::Skipped;
use mxharden_render::ArtifactKind;
use mxharden_spec::values::AbsPath;

/// Owner of an entry, resolved to ids only when the step runs, because the
/// app's account may not exist before the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OwnerSpec {
    /// root:root.
    Root,
    /// The app's account and group.
    App,
}

/// Purpose of a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    /// A rendered file.
    Generated(ArtifactKind),
    /// The operator's `m2ee.yaml`, with the include entry.
    M2eeMain,
    /// mxharden's state record for the app.
    State,
}

/// Creating the app's account and group.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountStep {
    /// Account and group name.
    pub user: String,
    /// Home folder.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// Creating a folder or correcting its owner and mode.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DirStep {
    /// The folder.
    pub path: AbsPath,
    /// Wanted owner.
    pub owner: OwnerSpec,
    /// Wanted mode.
    pub mode: u32,
    /// True when the folder does not exist yet.
    pub create: bool,
    /// Current owner as `uid:gid`, when it must change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_from: Option<String>,
    /// Current mode, when it must change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode_from: Option<u32>,
}

/// The recursive owner and mode pass over a folder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TreeStep {
    /// The top folder.
    pub path: AbsPath,
    /// Entries found not to comply; known after a scan or after the pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noncompliant: Option<u64>,
    /// Entries examined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub examined: Option<u64>,
    /// Entries left alone, with reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedEntry>,
    /// Entries left alone beyond those listed in `skipped`.
    pub skipped_unlisted: u64,
    /// Symbolic links left alone.
    pub links: u64,
}

/// An entry the tree pass left alone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SkippedEntry {
    /// Host path.
    pub path: String,
    /// Why.
    pub reason: String,
}

impl From<&Skipped> for SkippedEntry {
    fn from(skipped: &Skipped) -> SkippedEntry {
        SkippedEntry {
            path: skipped.path.display().to_string(),
            reason: skipped.reason.clone(),
        }
    }
}

/// Writing a file, or correcting its owner and mode.
#[derive(Clone, serde::Serialize)]
pub struct FileStep {
    /// The file.
    pub path: AbsPath,
    /// Its purpose.
    pub kind: FileKind,
    /// Current contents; `None` when the file is missing.
    #[serde(skip)]
    pub before: Option<String>,
    /// Wanted contents.
    #[serde(skip)]
    pub after: String,
    /// Wanted owner.
    pub owner: OwnerSpec,
    /// Wanted mode.
    pub mode: u32,
    /// Whether the contents hold a secret.
    pub secret: bool,
    /// Whether the contents change.
    pub content_changes: bool,
    /// Current owner as `uid:gid`, when it must change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_from: Option<String>,
    /// Current mode, when it must change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode_from: Option<u32>,
}

impl std::fmt::Debug for FileStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStep")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("content_changes", &self.content_changes)
            .finish_non_exhaustive()
    }
}

/// Making a running service pick up a changed file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Activation {
    /// `nginx -t`, then a reload.
    ReloadNginx,
    /// `systemctl daemon-reload`.
    ReloadSystemd,
}

/// One change of a plan.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Step {
    /// Create the account.
    Account(AccountStep),
    /// Create or correct a folder.
    Dir(DirStep),
    /// Correct a folder tree.
    Tree(TreeStep),
    /// Write or correct a file.
    File(FileStep),
    /// Reload or load something.
    Activate(Activation),
    /// Change the firewall: enable its boot unit, load or delete rules.
    Firewall(mxharden_firewall::Change),
}

fn owner_name(owner: OwnerSpec, user: &str) -> String {
    match owner {
        OwnerSpec::Root => "root:root".to_owned(),
        OwnerSpec::App => format!("{user}:{user}"),
    }
}

impl Step {
    /// Tells whether the step changes anything.
    pub fn changes(&self) -> bool {
        match self {
            Step::Tree(tree) => tree.noncompliant != Some(0),
            _ => true,
        }
    }

    /// Tells whether the step has something to report even without a change:
    /// a tree pass that left entries alone.
    pub fn has_notes(&self) -> bool {
        matches!(self, Step::Tree(tree) if !tree.skipped.is_empty() || tree.skipped_unlisted > 0 || tree.links > 0)
    }

    /// Returns the plan lines for this step, e.g. `~ mode /srv/x 0755 -> 0700`.
    pub fn describe(&self, user: &str) -> Vec<String> {
        match self {
            Step::Account(account) => vec![format!(
                "+ user {} (group {}, home {}, shell {})",
                account.user, account.user, account.home, account.shell
            )],
            Step::Dir(dir) => describe_meta(
                "dir",
                &dir.path,
                dir.create,
                owner_name(dir.owner, user),
                dir.mode,
                &dir.owner_from,
                dir.mode_from,
            ),
            Step::Tree(tree) => {
                let mut lines = vec![match tree.noncompliant {
                    Some(0) => format!("  tree {}: nothing to correct", tree.path),
                    Some(count) => format!("~ tree {}: {count} entries to correct", tree.path),
                    None => format!("~ tree {}: correct owner and modes", tree.path),
                }];
                for skipped in &tree.skipped {
                    lines.push(format!("  left alone: {}: {}", skipped.path, skipped.reason));
                }
                if tree.skipped_unlisted > 0 {
                    lines.push(format!("  left alone: {} more entries", tree.skipped_unlisted));
                }
                if tree.links > 0 {
                    lines.push(format!("  left alone: {} symbolic links", tree.links));
                }
                lines
            }
            Step::File(file) => {
                let mut lines = Vec::new();
                if file.content_changes {
                    let sign = if file.before.is_none() { '+' } else { '~' };
                    lines.push(format!("{sign} file {}", file.path));
                }
                if file.before.is_some() {
                    lines.extend(describe_meta("file", &file.path, false, owner_name(file.owner, user), file.mode, &file.owner_from, file.mode_from));
                }
                lines
            }
            Step::Activate(Activation::ReloadNginx) => vec!["! reload nginx".to_owned()],
            Step::Activate(Activation::ReloadSystemd) => vec!["! systemctl daemon-reload".to_owned()],
            Step::Firewall(change) => change.describe(),
        }
    }
}

fn describe_meta(
    what: &str,
    path: &AbsPath,
    create: bool,
    owner: String,
    mode: u32,
    owner_from: &Option<String>,
    mode_from: Option<u32>,
) -> Vec<String> {
    if create {
        return vec![format!("+ {what} {path} ({owner} {mode:04o})")];
    }
    let mut lines = Vec::new();
    if let Some(from) = owner_from {
        lines.push(format!("~ owner {path} {from} -> {owner}"));
    }
    if let Some(from) = mode_from {
        lines.push(format!("~ mode {path} {from:04o} -> {mode:04o}"));
    }
    lines
}
