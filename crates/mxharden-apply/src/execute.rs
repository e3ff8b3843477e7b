//! Carrying out one app's plan, with rollback of replaced files on failure.

use mxharden_fs::{WriteOptions, write_atomic};
use mxharden_plan::{Activation, AppIds, AppPlan, Host, NOLOGIN, OwnerSpec, Step, tree_policy};
use mxharden_plan::steps::FileStep;

use crate::commands::{nginx_running, run, systemd_running};
use crate::error::ApplyError;

/// The state of a file before this run replaced it.
struct Backup {
    path: String,
    before: Option<(String, u32, u32, u32)>,
}

/// Outcome of one app's apply.
#[derive(Debug, Default)]
pub struct Applied {
    /// Notes for the report, e.g. a reload skipped because nginx is not running.
    pub notes: Vec<String>,
    /// How to undo the firewall changes made, in the order they were made.
    pub firewall_undo: Vec<mxharden_firewall::Undo>,
}

/// Carries out `plan` on `host`. Steps run in plan order. When a step fails
/// after files were replaced, those files get their previous contents back
/// (or are removed when this run created them) and no service is reloaded.
pub fn apply_plan(host: &Host, plan: &mut AppPlan) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    let mut backups: Vec<Backup> = Vec::new();
    let result = run_steps(host, plan, &mut backups, &mut applied);
    match result {
        Ok(()) => Ok(applied),
        Err(cause) if backups.is_empty() && applied.firewall_undo.is_empty() => Err(cause),
        Err(cause) => {
            let mut rolled_back = roll_back(host, &backups);
            rolled_back.extend(crate::firewall::undo_changes(host, &applied.firewall_undo));
            Err(ApplyError::RolledBack {
                cause: Box::new(cause),
                rolled_back,
            })
        }
    }
}

fn run_steps(host: &Host, plan: &mut AppPlan, backups: &mut Vec<Backup>, applied: &mut Applied) -> Result<(), ApplyError> {
    let mut ids = plan.ids;
    let user = plan.app.user.to_string();
    for index in 0..plan.steps.len() {
        match &mut plan.steps[index] {
            Step::Account(account) => {
                create_account(host, &account.user, &account.home)?;
                ids = Some(look_up_ids(host, &user)?);
            }
            Step::Dir(dir) => {
                let (uid, gid) = resolve(dir.owner, ids, &user)?;
                if dir.create {
                    host.root.create_dir_all(dir.path.as_str(), uid, gid, dir.mode)?;
                } else {
                    host.root.set_meta(dir.path.as_str(), uid, gid, dir.mode)?;
                }
            }
            Step::Tree(tree) => {
                let app_ids = ids.ok_or_else(|| missing_account(&user))?;
                let mut progress = Progress::new(tree.path.as_str());
                let report = mxharden_fs::walk_tree(&host.root, tree.path.as_str(), tree_policy(app_ids), true, &mut |count| {
                    progress.show(count)
                })?;
                progress.finish();
                tree.noncompliant = Some(report.noncompliant);
                tree.examined = Some(report.examined);
                tree.skipped = report.skipped.iter().map(Into::into).collect();
                tree.skipped_unlisted = report.skipped_unlisted;
                tree.links = report.links;
            }
            Step::File(file) => {
                let (uid, gid) = resolve(file.owner, ids, &user)?;
                write_file(host, file, uid, gid, backups)?;
            }
            Step::Activate(activation) => activate(activation, applied)?,
            Step::Firewall(change) => {
                if let Some(undo) = mxharden_firewall::execute(&host.root, host.live, change)? {
                    applied.firewall_undo.push(undo);
                }
            }
        }
    }
    plan.ids = ids;
    Ok(())
}

fn missing_account(user: &str) -> ApplyError {
    ApplyError::Command {
        command: format!("look-up of account {user}"),
        output: "the account does not exist".to_owned(),
    }
}

fn resolve(owner: OwnerSpec, ids: Option<AppIds>, user: &str) -> Result<(u32, u32), ApplyError> {
    match owner {
        OwnerSpec::Root => Ok((0, 0)),
        OwnerSpec::App => ids.map(|i| (i.uid, i.gid)).ok_or_else(|| missing_account(user)),
    }
}

fn create_account(host: &Host, user: &str, home: &str) -> Result<(), ApplyError> {
    let prefix = host.prefix.display().to_string();
    let mut args = vec!["--system", "--user-group", "--shell", NOLOGIN, "--home-dir", home, "--no-create-home"];
    if !host.live {
        args.extend(["--prefix", prefix.as_str()]);
    }
    args.push(user);
    run("useradd", &args)
}

fn look_up_ids(host: &Host, user: &str) -> Result<AppIds, ApplyError> {
    let account = host.accounts.user(user)?.ok_or_else(|| missing_account(user))?;
    if account.uid == 0 || account.gid == 0 {
        return Err(ApplyError::Command {
            command: format!("useradd {user}"),
            output: "the new account has uid or gid 0".to_owned(),
        });
    }
    Ok(AppIds {
        uid: account.uid,
        gid: account.gid,
    })
}

fn write_file(host: &Host, file: &FileStep, uid: u32, gid: u32, backups: &mut Vec<Backup>) -> Result<(), ApplyError> {
    let path = file.path.as_str();
    if !file.content_changes {
        // Only the owner or mode is wrong. Writing the same contents to a new file, instead
        // of chowning the existing one, leaves alone whatever else a hard link planted here
        // names: the app user can plant one in the folders it owns.
        write_atomic(&host.root, path, file.after.as_bytes(), WriteOptions { uid, gid, mode: file.mode })?;
        return Ok(());
    }
    let before = match (&file.before, host.root.meta(path)?) {
        (Some(text), Some(meta)) => Some((text.clone(), meta.uid, meta.gid, meta.mode)),
        _ => None,
    };
    write_atomic(&host.root, path, file.after.as_bytes(), WriteOptions { uid, gid, mode: file.mode })?;
    backups.push(Backup {
        path: path.to_owned(),
        before,
    });
    Ok(())
}

fn activate(activation: &Activation, applied: &mut Applied) -> Result<(), ApplyError> {
    match activation {
        Activation::ReloadSystemd => {
            if systemd_running() {
                run("systemctl", &["daemon-reload"])
            } else {
                applied.notes.push("systemd is not running: the unit takes effect when it starts".to_owned());
                Ok(())
            }
        }
        Activation::ReloadNginx => {
            // The site passed nginx -t alone; this checks it with the rest of
            // the host's configuration before the running nginx sees it.
            run("nginx", &["-t", "-q"])?;
            if nginx_running() {
                run("nginx", &["-s", "reload"])
            } else {
                applied.notes.push("nginx is not running: the site takes effect when it starts".to_owned());
                Ok(())
            }
        }
    }
}

/// Restores replaced files in reverse order; returns what was restored.
fn roll_back(host: &Host, backups: &[Backup]) -> Vec<String> {
    let mut restored = Vec::new();
    for backup in backups.iter().rev() {
        let result = match &backup.before {
            Some((text, uid, gid, mode)) => write_atomic(
                &host.root,
                &backup.path,
                text.as_bytes(),
                WriteOptions {
                    uid: *uid,
                    gid: *gid,
                    mode: *mode,
                },
            ),
            None => host.root.remove_file(&backup.path),
        };
        match result {
            Ok(()) => restored.push(backup.path.clone()),
            Err(error) => tracing::error!(path = %backup.path, %error, "rollback of a file failed"),
        }
    }
    restored
}

/// Progress of a long tree pass: a line redrawn on a terminal, a log
/// record otherwise.
struct Progress<'a> {
    path: &'a str,
    terminal: bool,
    shown: bool,
}

impl<'a> Progress<'a> {
    fn new(path: &'a str) -> Progress<'a> {
        Progress {
            path,
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            shown: false,
        }
    }

    fn show(&mut self, examined: u64) {
        if self.terminal {
            eprint!("\r  {}: {examined} entries examined", self.path);
            self.shown = true;
        } else {
            tracing::info!(path = self.path, examined, "correcting owner and modes");
        }
    }

    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}
