//! Unified diffs of file changes, with secrets hidden.

use similar::TextDiff;

use crate::steps::{FileKind, FileStep};

/// The text shown in place of a diff of a file that contains a secret.
pub const HIDDEN: &str = "(contents hidden: holds a secret)";

/// Returns the unified diff of `step`, or `None` when its contents do not change.
pub fn file_diff(step: &FileStep) -> Option<String> {
    if !step.content_changes {
        return None;
    }
    if step.secret || step.kind == FileKind::State {
        let what = if step.before.is_none() { "created" } else { "changed" };
        return Some(format!("--- {path}\n+++ {path}\n{HIDDEN}; the file is {what}\n", path = step.path));
    }
    let before = step.before.as_deref().unwrap_or("");
    let old_header = if step.before.is_some() { step.path.to_string() } else { "/dev/null".to_owned() };
    // The operator's m2ee.yaml may hold database passwords; mxharden only
    // appends to it, so showing no context lines shows only mxharden's text.
    let context_lines = if step.kind == FileKind::M2eeMain { 0 } else { 3 };
    let diff = TextDiff::from_lines(before, step.after.as_str());
    let text = diff
        .unified_diff()
        .context_radius(context_lines)
        .header(&old_header, step.path.as_str())
        .to_string();
    Some(text)
}
