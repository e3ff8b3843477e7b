//! The last stage: after an apply, read the host again and check that it
//! is in the desired state. Two checks run:
//!
//! - a new plan (without the tree passes) must find nothing to change;
//! - the m2ee-tools configuration that the app user's m2ee would load,
//!   merged by m2ee-tools' own rules, must carry mxharden's values.

use std::net::IpAddr;

use mxharden_plan::m2ee::{merge_config, parse_yaml};
use mxharden_plan::password;
use mxharden_plan::state::read_state;
use mxharden_plan::{AppPlan, Host, PlanError, PlanOptions, Step};
use mxharden_render::{AdminPassword, layout};
use mxharden_spec::AppSpec;
use serde_json::Value;

/// Largest m2ee-tools file read, in bytes.
const FILE_LIMIT: u64 = 4 * 1024 * 1024;

/// One verified property of an app.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Short name of the property, e.g. `m2ee.admin_pass`.
    pub check: String,
    /// Whether the host has it.
    pub passed: bool,
    /// The value found; never a secret.
    pub detail: String,
}

fn finding(check: &str, passed: bool, detail: impl Into<String>) -> Finding {
    Finding {
        check: check.to_owned(),
        passed,
        detail: detail.into(),
    }
}

/// Verifies `app` on `host` after an apply.
pub fn verify_app(host: &Host, app: &AppSpec, options: &PlanOptions<'_>) -> Result<Vec<Finding>, PlanError> {
    let mut findings = Vec::new();
    let options = PlanOptions {
        engine: options.engine,
        policy: options.policy,
        scan_trees: false,
    };
    let plan = mxharden_plan::plan_app(host, app, &options)?;
    findings.push(converged(&plan));
    findings.extend(effective_m2ee(host, app)?);
    Ok(findings)
}

/// Tells whether a new plan finds anything left to change.
fn converged(plan: &AppPlan) -> Finding {
    let user = plan.app.user.as_str();
    let left: Vec<String> = plan
        .steps
        .iter()
        .filter(|step| !matches!(step, Step::Tree(_)))
        .flat_map(|step| step.describe(user))
        .collect();
    if left.is_empty() {
        finding("converged", true, "a new plan finds nothing to change")
    } else {
        finding("converged", false, format!("still to change: {}", left.join("; ")))
    }
}

fn read_yaml(host: &Host, path: &str) -> Result<Value, PlanError> {
    match host.root.read_file(path, FILE_LIMIT)? {
        Some(bytes) => parse_yaml(&host.host_path(path).display().to_string(), &String::from_utf8_lossy(&bytes)),
        None => Ok(Value::Null),
    }
}

/// Merges `/etc/m2ee/m2ee.yaml`, the app user's `m2ee.yaml` and every
/// included file in the order m2ee-tools loads them, then checks the values
/// that the checklist depends on.
fn effective_m2ee(host: &Host, app: &AppSpec) -> Result<Vec<Finding>, PlanError> {
    let mut merged = Value::Null;
    for path in ["/etc/m2ee/m2ee.yaml", layout::m2ee_main(app).as_str()] {
        merged = merge_config(&merged, &read_yaml(host, path)?);
    }
    if let Some(Value::Array(includes)) = merged.get("include").cloned() {
        for include in includes.iter().filter_map(Value::as_str) {
            if include.starts_with('/') {
                merged = merge_config(&merged, &read_yaml(host, include)?);
            }
        }
    }

    let m2ee = merged.get("m2ee").cloned().unwrap_or(Value::Null);
    let runtime = merged.get("mxruntime").cloned().unwrap_or(Value::Null);
    let text = |section: &Value, key: &str| section.get(key).map(value_text).unwrap_or_default();
    let mut findings = Vec::new();

    let recorded = read_state(host, layout::state_file(app).as_str())?;
    let password_ok = match (m2ee.get("admin_pass").and_then(Value::as_str), recorded) {
        (Some(pass), Some(record)) => password::matches(&AdminPassword::new(pass.to_owned()), &record.admin_pass_argon2id),
        _ => false,
    };
    findings.push(finding(
        "m2ee.admin_pass",
        password_ok,
        if password_ok { "matches the recorded argon2id hash" } else { "missing, or differs from the recorded hash" },
    ));

    let dtap = text(&runtime, "DTAPMode");
    findings.push(finding("mxruntime.DTAPMode", dtap == "P", format!("DTAPMode is {dtap:?}")));

    let root_url = text(&runtime, "ApplicationRootUrl");
    findings.push(finding("mxruntime.ApplicationRootUrl", root_url.starts_with("https://"), format!("ApplicationRootUrl is {root_url:?}")));

    let admin_listen = text(&m2ee, "admin_listen_addresses");
    let admin_loopback = !admin_listen.is_empty()
        && admin_listen.split(',').all(|a| a.trim().parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    findings.push(finding("m2ee.admin_listen_addresses", admin_loopback, format!("admin port listens on {admin_listen:?}")));

    let runtime_listen = text(&m2ee, "runtime_listen_addresses");
    let expected_listen = app.runtime_listen.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(",");
    findings.push(finding(
        "m2ee.runtime_listen_addresses",
        runtime_listen == expected_listen,
        format!("runtime port listens on {runtime_listen:?}"),
    ));

    for (key, expected) in [("runtime_port", app.runtime_port.get()), ("admin_port", app.admin_port.get())] {
        let found = text(&m2ee, key);
        findings.push(finding(&format!("m2ee.{key}"), found == expected.to_string(), format!("{key} is {found:?}")));
    }
    Ok(findings)
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
