//! The firewall part of an app's plan, planned by `mxharden_firewall`.

use mxharden_firewall::Backend;
use mxharden_render::{Artifact, ArtifactKind};
use mxharden_spec::{AppSpec, FirewallBackend};

use crate::checks::CheckOutcome;
use crate::error::PlanError;
use crate::host::Host;
use crate::steps::{FileKind, Step};

/// Resolves `app.firewall` on `host`; `None` for `none`.
pub fn resolve(host: &Host, app: &AppSpec) -> Result<Option<Backend>, PlanError> {
    Ok(mxharden_firewall::resolve_backend(&host.root, host.live, app.firewall)?)
}

/// Returns a copy of `app` whose firewall is the resolved backend, so that
/// rendering writes the nftables file only when nftables was chosen.
pub fn with_backend(app: &AppSpec, backend: Option<Backend>) -> AppSpec {
    let mut resolved = app.clone();
    resolved.firewall = match backend {
        None => FirewallBackend::None,
        Some(Backend::Nftables) => FirewallBackend::Nftables,
        Some(Backend::Iptables) => FirewallBackend::Iptables,
        Some(Backend::Ufw) => FirewallBackend::Ufw,
        Some(Backend::Firewalld) => FirewallBackend::Firewalld,
        Some(Backend::Windows) => FirewallBackend::Windows,
    };
    resolved
}

/// Adds the firewall steps after the file steps and activations in `steps`.
pub fn plan_steps(
    host: &Host,
    app: &AppSpec,
    backend: Option<Backend>,
    artifacts: &[Artifact],
    checks: &mut Vec<CheckOutcome>,
    warnings: &mut Vec<String>,
    steps: &mut Vec<Step>,
) -> Result<(), PlanError> {
    let rules_kinds = [ArtifactKind::NftRules, ArtifactKind::IptablesRules, ArtifactKind::Ip6tablesRules];
    let rules_changed = steps.iter().any(|step| {
        matches!(step, Step::File(file) if file.content_changes && rules_kinds.iter().any(|kind| file.kind == FileKind::Generated(*kind)))
    });
    let plan = mxharden_firewall::plan_firewall(&host.root, host.live, app, backend, artifacts, rules_changed)?;
    checks.extend(plan.checks.into_iter().map(|check| match check {
        Ok(tool) => CheckOutcome::Passed(tool),
        Err(reason) => CheckOutcome::Skipped(reason),
    }));
    warnings.extend(plan.warnings);
    steps.extend(plan.changes.into_iter().map(Step::Firewall));
    Ok(())
}
