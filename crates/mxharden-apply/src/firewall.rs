//! Rolling back the firewall part of an apply.

use mxharden_fs::{WriteOptions, write_atomic};
use mxharden_plan::steps::FileKind;
use mxharden_plan::{AppPlan, Host, Step};
use mxharden_render::ArtifactKind;

use crate::execute::Applied;

/// Files that belong to the firewall.
const FIREWALL_KINDS: [ArtifactKind; 4] = [
    ArtifactKind::NftRules,
    ArtifactKind::IptablesRules,
    ArtifactKind::Ip6tablesRules,
    ArtifactKind::FirewallUnit,
];

/// Undoes firewall changes in reverse order; returns what was restored.
/// A failed undo is logged and the others still run.
pub(crate) fn undo_changes(host: &Host, undo: &[mxharden_firewall::Undo]) -> Vec<String> {
    let mut restored = Vec::new();
    for step in undo.iter().rev() {
        match step.run(&host.root) {
            Ok(()) => restored.push(step.describe()),
            Err(error) => tracing::error!(what = %step.describe(), %error, "rollback of a firewall change failed"),
        }
    }
    restored
}

/// Puts the firewall files of `plan` and the live rules back as they were
/// before `applied`, for an apply that the operator did not confirm.
/// Returns what was restored.
pub fn roll_back_firewall(host: &Host, plan: &AppPlan, applied: &Applied) -> Vec<String> {
    let mut restored = Vec::new();
    for step in &plan.steps {
        let Step::File(file) = step else {
            continue;
        };
        let is_firewall = FIREWALL_KINDS.iter().any(|kind| file.kind == FileKind::Generated(*kind));
        if !is_firewall || !file.content_changes {
            continue;
        }
        let path = file.path.as_str();
        let result = match &file.before {
            Some(text) => write_atomic(&host.root, path, text.as_bytes(), WriteOptions { uid: 0, gid: 0, mode: file.mode }),
            None => host.root.remove_file(path),
        };
        match result {
            Ok(()) => restored.push(path.to_owned()),
            Err(error) => tracing::error!(path, %error, "rollback of a firewall file failed"),
        }
    }
    restored.extend(undo_changes(host, &applied.firewall_undo));
    restored
}
