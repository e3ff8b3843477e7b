//! `mxharden apply`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use mxharden_fs::RunLock;
use mxharden_plan::{Host, PlanOptions};

use crate::cli::{ApplyArgs, GlobalOptions};
use crate::report::{AppOutcome, Report, Reported};

/// Plans every app, then (unless `--dry-run`) carries the plans out.
///
/// Every app is parsed, checked, rendered and validated before the first
/// change, so a bad file stops the run with nothing changed.
pub fn run(options: &GlobalOptions, args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let apps = mxharden_spec::load_apps(&args.files, mxharden_spec::today_utc())?;
    let engine = super::load_engine(options)?;
    let policy = super::load_policy(options)?;
    let host = match &args.root {
        Some(root) => {
            check_root_path(root)?;
            Host::sandbox(root)?
        }
        None => Host::live()?,
    };
    if !args.dry_run {
        require_root()?;
    }
    let _lock = if args.dry_run { None } else { Some(take_lock(&host, args.lock_timeout)?) };

    let plan_options = PlanOptions {
        engine: &engine,
        policy: &policy,
        scan_trees: args.dry_run,
    };
    let mut plans = Vec::new();
    for app in &apps {
        plans.push(mxharden_plan::plan_app(&host, app, &plan_options)?);
    }

    if !args.dry_run {
        mxharden_apply::preflight(&host, &plans)?;
    }
    let mut report = Report::new(args.dry_run);
    let mut firewall_changes = Vec::new();
    for mut plan in plans {
        if args.dry_run {
            report.apps.push(AppOutcome { plan, notes: Vec::new(), verified: Vec::new() });
            continue;
        }
        // From here the host may change, so a failure is reported with
        // what was done before it, in one document.
        let applied = match mxharden_apply::apply_plan(&host, &mut plan) {
            Ok(applied) => applied,
            Err(error) => {
                report.partly_changed = true;
                report.failure = Some(format!("app {}: {error}", plan.app.name));
                break;
            }
        };
        let verified = match mxharden_verify::verify_app(&host, &plan.app, &plan_options) {
            Ok(verified) => verified,
            Err(error) => {
                report.failure = Some(format!("app {}: verification could not run: {error}", plan.app.name));
                Vec::new()
            }
        };
        let notes = applied.notes.clone();
        firewall_changes.push((report.apps.len(), applied));
        report.apps.push(AppOutcome { plan, notes, verified });
        if report.failure.is_some() {
            break;
        }
    }
    if report.failure.is_none() {
        if let Some(seconds) = args.confirm_timeout {
            super::confirm::confirm_or_roll_back(&host, &report, &firewall_changes, seconds)?;
        }
    }
    if report.failure.is_none() {
        if let Some(failed) = report.failed_verification() {
            report.failure = Some(format!("the apply finished but verification failed: {failed}"));
        }
    }
    report.print(options.format);
    if let Some(failure) = report.failure.take() {
        return Err(Reported(failure).into());
    }

    let changed = report.changed();
    Ok(if args.detailed_exitcode && changed { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

fn require_root() -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("apply changes accounts and root-owned files, so it must run as root; use --dry-run to see the plan without root");
    }
    Ok(())
}

pub(crate) fn take_lock(host: &Host, timeout_seconds: u64) -> anyhow::Result<RunLock> {
    let lock_folder = Path::new(mxharden_render::layout::LOCK_FILE).parent().expect("the lock file has a folder");
    host.root.create_dir_all(&lock_folder.display().to_string(), 0, 0, 0o755)?;
    let holder = format!("pid {}", std::process::id());
    Ok(RunLock::acquire(
        &host.root,
        mxharden_render::layout::LOCK_FILE,
        &holder,
        Duration::from_secs(timeout_seconds),
    )?)
}

/// Rejects a `--root` folder whose absolute path has a character that the
/// generated files could not carry: the nginx check copy names files beneath it.
fn check_root_path(root: &Path) -> anyhow::Result<()> {
    let absolute = std::path::absolute(root)?;
    let text = absolute.to_str().unwrap_or_default();
    let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._+@-".contains(c));
    if !plain {
        anyhow::bail!(
            "--root {}: use a folder whose absolute path has only letters, digits and / . _ + @ -",
            absolute.display()
        );
    }
    Ok(())
}
