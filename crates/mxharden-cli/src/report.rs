//! The report of `apply`: plan lines and diffs for people, one JSON document
//! for tools. Secrets never reach either: diffs of files that hold one are
//! replaced by a notice before printing.

use std::process::ExitCode;

use mxharden_plan::AppPlan;
use mxharden_plan::checks::CheckOutcome;
use mxharden_plan::diff::file_diff;
use mxharden_plan::steps::{Activation, Step};
use serde_json::{Value, json};

use crate::cli::{Format, GlobalOptions};

/// One app's plan, after it ran when not a dry run.
pub struct AppOutcome {
    /// The plan, with tree counts filled in by the run.
    pub plan: AppPlan,
    /// Notes from the run.
    pub notes: Vec<String>,
    /// Verification findings after the run; empty for a dry run.
    pub verified: Vec<mxharden_verify::Finding>,
}

/// The whole run.
pub struct Report {
    dry_run: bool,
    /// Per app.
    pub apps: Vec<AppOutcome>,
    /// The reason the run stopped after it began to change the host.
    pub failure: Option<String>,
    /// True once a failed app began to change the host, so `changed` stays
    /// true even though that app's plan is not in `apps`.
    pub partly_changed: bool,
}

/// An error whose report was printed already; `main` only sets the exit
/// code (and, for text output, repeats the error on stderr).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Reported(pub String);

impl Report {
    /// Starts an empty report.
    pub fn new(dry_run: bool) -> Report {
        Report {
            dry_run,
            apps: Vec::new(),
            failure: None,
            partly_changed: false,
        }
    }

    /// Returns the failed verification checks, if any, as one line.
    pub fn failed_verification(&self) -> Option<String> {
        let failed: Vec<String> = self
            .apps
            .iter()
            .flat_map(|outcome| {
                outcome
                    .verified
                    .iter()
                    .filter(|f| !f.passed)
                    .map(move |f| format!("app {}: {}: {}", outcome.plan.app.name, f.check, f.detail))
            })
            .collect();
        (!failed.is_empty()).then(|| failed.join("; "))
    }

    /// Tells whether anything changed (or would change).
    pub fn changed(&self) -> bool {
        self.partly_changed || self.apps.iter().any(|outcome| outcome.plan.changes())
    }

    /// Prints the report to stdout.
    pub fn print(&self, format: Format) {
        match format {
            Format::Text => print!("{}", self.to_text()),
            Format::Json => println!("{}", self.to_json()),
        }
    }

    fn summary(&self) -> String {
        let changes: usize = self.apps.iter().map(|o| o.plan.steps.iter().filter(|s| s.changes()).count()).sum();
        let apps = self.apps.len();
        let app_word = if apps == 1 { "app" } else { "apps" };
        match (changes, self.dry_run) {
            (0, _) => format!("{apps} {app_word}: no changes"),
            (n, true) => format!("{apps} {app_word}: {n} changes planned (dry run: nothing was changed)"),
            (n, false) => format!("{apps} {app_word}: {n} changes made"),
        }
    }

    /// Renders the text report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for outcome in &self.apps {
            let plan = &outcome.plan;
            out.push_str(&format!("app {} ({})\n", plan.app.name, plan.app.source.display()));
            out.push_str(&format!("  runtime: {}\n", runtime_line(plan)));
            let user = plan.app.user.as_str();
            for step in plan.steps.iter().filter(|s| s.changes() || s.has_notes()) {
                for line in step.describe(user) {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            for step in &plan.steps {
                if let Step::File(file) = step {
                    if let Some(diff) = file_diff(file) {
                        out.push_str(&diff);
                    }
                }
                if let Some(drift) = firewall_drift(step) {
                    out.push_str(drift);
                }
            }
            for check in &plan.checks {
                match check {
                    CheckOutcome::Passed(tool) => out.push_str(&format!("  check passed: {tool}\n")),
                    CheckOutcome::Skipped(why) => out.push_str(&format!("  check skipped: {why}\n")),
                }
            }
            for warning in &plan.warnings {
                out.push_str(&format!("  warning: {warning}\n"));
            }
            for note in &outcome.notes {
                out.push_str(&format!("  note: {note}\n"));
            }
            for finding in &outcome.verified {
                let mark = if finding.passed { "ok" } else { "FAILED" };
                out.push_str(&format!("  verify {mark}: {}: {}\n", finding.check, finding.detail));
            }
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// Renders the JSON report.
    pub fn to_json(&self) -> Value {
        let apps: Vec<Value> = self
            .apps
            .iter()
            .map(|outcome| {
                let plan = &outcome.plan;
                json!({
                    "name": plan.app.name.as_str(),
                    "source": plan.app.source.display().to_string(),
                    "changed": plan.changes(),
                    "runtime": plan.runtime,
                    "admin_password": plan.password_origin,
                    "checks": plan.checks,
                    "warnings": plan.warnings,
                    "notes": outcome.notes,
                    "verified": outcome.verified,
                    "resources": plan.steps.iter().filter(|s| s.changes()).map(resource_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut report = json!({
            "changed": self.changed(),
            "dry_run": self.dry_run,
            "msg": self.summary(),
            "apps": apps,
        });
        if let Some(failure) = &self.failure {
            // The same fields as the error document of a run that changed nothing.
            report["failed"] = Value::Bool(true);
            report["msg"] = Value::String(failure.clone());
            report["errors"] = json!(failure.lines().collect::<Vec<_>>());
        }
        report
    }
}

fn runtime_line(plan: &AppPlan) -> String {
    let Some(version) = &plan.runtime.version else {
        return "no model deployed".to_owned();
    };
    let verdict = plan
        .runtime
        .verdict
        .as_ref()
        .map(|v| serde_json::to_value(v).ok().and_then(|v| v["verdict"].as_str().map(str::to_owned)).unwrap_or_default())
        .unwrap_or_default();
    match &plan.runtime.waived_because {
        Some(reason) => format!("{version}: {verdict}, waived: {reason}"),
        None => format!("{version}: {verdict}"),
    }
}

fn resource_json(step: &Step) -> Value {
    match step {
        Step::Account(account) => json!({"kind": "user", "id": account.user, "action": "create"}),
        Step::Dir(dir) => json!({
            "kind": "dir",
            "id": dir.path.as_str(),
            "action": if dir.create { "create" } else { "update" },
            "owner": dir.owner,
            "mode": format!("{:04o}", dir.mode),
            "owner_from": dir.owner_from,
            "mode_from": dir.mode_from.map(|m| format!("{m:04o}")),
        }),
        Step::Tree(tree) => json!({
            "kind": "tree",
            "id": tree.path.as_str(),
            "action": "update",
            "noncompliant": tree.noncompliant,
            "examined": tree.examined,
            "skipped": tree.skipped,
            "skipped_unlisted": tree.skipped_unlisted,
            "links": tree.links,
        }),
        Step::File(file) => json!({
            "kind": "file",
            "id": file.path.as_str(),
            "action": if file.before.is_none() { "create" } else { "update" },
            "secret": file.secret,
            "content_changes": file.content_changes,
            "diff": file_diff(file),
        }),
        Step::Activate(activation) => json!({
            "kind": "service",
            "id": match activation {
                Activation::ReloadNginx => "nginx".to_owned(),
                Activation::ReloadSystemd => "systemd".to_owned(),
            },
            "action": "reload",
        }),
        Step::Firewall(change) => firewall_json(change),
    }
}

/// Returns the diff of live firewall rules that drifted from the saved ones.
fn firewall_drift(step: &Step) -> Option<&str> {
    match step {
        Step::Firewall(mxharden_firewall::Change::Load { drift: Some(diff), .. }) => Some(diff),
        _ => None,
    }
}

fn firewall_json(change: &mxharden_firewall::Change) -> Value {
    use mxharden_firewall::Change;
    match change {
        Change::EnableUnit { link, target } => json!({"kind": "link", "id": link.as_str(), "action": "create", "target": target.as_str()}),
        Change::Load { backend, name, drift, .. } => json!({
            "kind": "firewall",
            "id": format!("{}:{name}", backend.name()),
            "action": "load",
            "diff": drift,
        }),
        Change::Unload { backend, name } => json!({"kind": "firewall", "id": format!("{}:{name}", backend.name()), "action": "delete"}),
        Change::Remove { path } => json!({"kind": "file", "id": path.as_str(), "action": "delete"}),
    }
}

/// Prints an error (each cause on its own line, or as JSON) and returns exit code 1.
pub fn print_error(options: &GlobalOptions, error: &anyhow::Error) -> ExitCode {
    if let Some(reported) = error.downcast_ref::<Reported>() {
        // The JSON report carries the failure already; text gets it on stderr.
        if options.format == Format::Text {
            for line in reported.0.lines() {
                eprintln!("error: {line}");
            }
        }
        return ExitCode::FAILURE;
    }
    let lines: Vec<String> = error.to_string().lines().map(str::to_owned).collect();
    let mut causes: Vec<String> = error.chain().skip(1).map(ToString::to_string).collect();
    causes.dedup();
    match options.format {
        Format::Json => {
            let specs = error.downcast_ref::<mxharden_spec::SpecErrors>().map(|e| json!(e.0));
            println!(
                "{}",
                json!({"changed": false, "failed": true, "msg": error.to_string(), "errors": specs.unwrap_or_else(|| json!(lines)), "causes": causes})
            );
        }
        Format::Text => {
            for line in lines {
                eprintln!("error: {line}");
            }
            for cause in causes {
                eprintln!("  caused by: {cause}");
            }
        }
    }
    ExitCode::FAILURE
}
