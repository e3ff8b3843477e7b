//! The deployed runtime version and how the policy judges it.

use mxharden_policy::{RuntimePolicy, Verdict, Version};
use mxharden_spec::{AppSpec, CheckId};

use crate::error::PlanError;
use crate::host::Host;

/// Largest `model/metadata.json` read, in bytes.
const METADATA_LIMIT: u64 = 64 * 1024 * 1024;

/// The runtime check's outcome for one app.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuntimeFinding {
    /// `RuntimeVersion` from `model/metadata.json`; `None` while no model is deployed.
    pub version: Option<String>,
    /// The policy's judgement, when a version is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// The reason of the waiver that accepts a refused version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waived_because: Option<String>,
}

/// Reads the deployed version and judges it; a refused version without a
/// waiver is an error that stops the run before any change.
pub fn check_runtime(host: &Host, app: &AppSpec, policy: &RuntimePolicy) -> Result<RuntimeFinding, PlanError> {
    let path = format!("{}/model/metadata.json", app.base);
    let Some(bytes) = host.root.read_file(&path, METADATA_LIMIT)? else {
        return Ok(RuntimeFinding {
            version: None,
            verdict: None,
            waived_because: None,
        });
    };
    let host_path = host.host_path(&path);
    let metadata: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| PlanError::Conflict(format!("{}: invalid JSON: {e}", host_path.display())))?;
    let text = metadata
        .get("RuntimeVersion")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| PlanError::Conflict(format!("{}: no RuntimeVersion string; redeploy the app's model", host_path.display())))?;
    let version: Version = text
        .parse()
        .map_err(|e| PlanError::Conflict(format!("{}: RuntimeVersion: {e}", host_path.display())))?;
    let verdict = policy.evaluate(&version);
    let waiver = app.waivers.iter().find(|w| w.check == CheckId::RuntimeVersion);
    if verdict.is_refused() {
        let Some(waiver) = waiver else {
            return Err(PlanError::Conflict(refusal_message(app, &version, &verdict)));
        };
        return Ok(RuntimeFinding {
            version: Some(version.to_string()),
            verdict: Some(verdict),
            waived_because: Some(waiver.reason.to_string()),
        });
    }
    Ok(RuntimeFinding {
        version: Some(version.to_string()),
        verdict: Some(verdict),
        waived_because: None,
    })
}

fn refusal_message(app: &AppSpec, version: &Version, verdict: &Verdict) -> String {
    let why = match verdict {
        Verdict::BelowMinimum { line, minimum } => {
            format!("is below {minimum}, the minimum patched version of release line {line}")
        }
        _ => "belongs to a release line the policy does not list, so its patch level is unknown".to_owned(),
    };
    format!(
        "{}: app {}: runtime {version} {why}; upgrade the app, or add a waiver for check runtime-version with a reason and an expiry date",
        app.source.display(),
        app.name
    )
}
