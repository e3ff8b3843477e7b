//! `mxharden apply`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use mxharden_fs::RunLock;
use mxharden_plan::{Host, PlanOptions};

use crate::cli::{ApplyArgs, GlobalOptions};
use crate::report::{AppOutcome, Report};

/// Plans every app, then (unless `--dry-run`) carries the plans out.
///
/// Every app is parsed, checked, rendered and validated before the first
/// change, so a bad file stops the run with nothing changed.
pub fn run(options: &GlobalOptions, args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let apps = mxharden_spec::load_apps(&args.files, mxharden_spec::today_utc())?;
    let engine = super::load_engine(options)?;
    let policy = super::load_policy(options)?;
    let host = match &args.root {
        Some(root) => Host::sandbox(root)?,
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
        let (notes, verified) = if args.dry_run {
            (Vec::new(), Vec::new())
        } else {
            let applied = mxharden_apply::apply_plan(&host, &mut plan)?;
            let verified = mxharden_verify::verify_app(&host, &plan.app, &plan_options)?;
            let notes = applied.notes.clone();
            firewall_changes.push((report.apps.len(), applied));
            (notes, verified)
        };
        report.apps.push(AppOutcome { plan, notes, verified });
    }
    if let Some(seconds) = args.confirm_timeout {
        super::confirm::confirm_or_roll_back(&host, &report, &firewall_changes, seconds)?;
    }
    report.print(options.format);
    if let Some(failed) = report.failed_verification() {
        anyhow::bail!("the apply finished but verification failed: {failed}");
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
