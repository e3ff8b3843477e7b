//! `mxharden remove`: deletes each app's firewall rules and nothing else.

use std::process::ExitCode;

use mxharden_plan::Host;
use serde_json::json;

use crate::cli::{Format, GlobalOptions, RemoveArgs};

/// Deletes the live rules (on the live host), the rules files, and the boot
/// unit with its link, of every app in `args.files`. The app's other
/// files, its account and its data stay.
pub fn run(options: &GlobalOptions, args: &RemoveArgs) -> anyhow::Result<ExitCode> {
    let apps = mxharden_spec::load_apps(&args.files, mxharden_spec::today_utc())?;
    let host = match &args.root {
        Some(root) => Host::sandbox(root)?,
        None => Host::live()?,
    };
    if !args.dry_run && !nix::unistd::geteuid().is_root() {
        anyhow::bail!("remove deletes root-owned files and firewall rules, so it must run as root; use --dry-run to see what it would delete");
    }
    let _lock = if args.dry_run { None } else { Some(super::apply::take_lock(&host, args.lock_timeout)?) };

    let mut plans = Vec::new();
    for app in &apps {
        plans.push((app, mxharden_firewall::plan_removal(&host.root, host.live, app)?));
    }
    let mut text = String::new();
    let mut reports = Vec::new();
    let mut total = 0;
    for (app, changes) in &plans {
        if !args.dry_run {
            for change in changes {
                mxharden_firewall::execute(&host.root, host.live, change)?;
            }
        }
        total += changes.len();
        text.push_str(&format!("app {} ({})\n", app.name, app.source.display()));
        for line in changes.iter().flat_map(mxharden_firewall::Change::describe) {
            text.push_str(&format!("  {line}\n"));
        }
        reports.push(json!({"name": app.name.as_str(), "changed": !changes.is_empty(), "resources": changes}));
    }
    let app_word = if apps.len() == 1 { "app" } else { "apps" };
    let summary = match (total, args.dry_run) {
        (0, _) => format!("{} {app_word}: no firewall rules to remove", apps.len()),
        (n, true) => format!("{} {app_word}: {n} removals planned (dry run: nothing was changed)", apps.len()),
        (n, false) => format!("{} {app_word}: {n} removals made; the apps' other files, accounts and data are left in place", apps.len()),
    };
    match options.format {
        Format::Text => print!("{text}{summary}\n"),
        Format::Json => println!("{}", json!({"changed": total > 0, "dry_run": args.dry_run, "msg": summary, "apps": reports})),
    }
    Ok(if args.detailed_exitcode && total > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
