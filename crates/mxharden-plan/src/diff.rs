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
    let old_header = if step.before.is_some() { step.path.to_string() } else { "/dev/null".to_owned() };
    if step.secret || step.kind == FileKind::State {
        let what = if step.before.is_none() { "created" } else { "changed" };
        return Some(format!("--- {old_header}\n+++ {path}\n{HIDDEN}; the file is {what}\n", path = step.path));
    }
    if let (FileKind::M2eeMain, Some(before)) = (step.kind, step.before.as_deref()) {
        return Some(appended_lines(step, before));
    }
    let before = step.before.as_deref().unwrap_or("");
    let diff = TextDiff::from_lines(before, step.after.as_str());
    let text = diff.unified_diff().context_radius(3).header(&old_header, step.path.as_str()).to_string();
    Some(text)
}

/// Shows only the lines mxharden appends to the operator's `m2ee.yaml`.
/// The operator's own lines may hold database passwords, and a line diff
/// would repeat the last of them when the file lacks a final newline.
fn appended_lines(step: &FileStep, before: &str) -> String {
    let path = step.path.as_str();
    let Some(appended) = step.after.strip_prefix(before) else {
        return format!("--- {path}\n+++ {path}\n{HIDDEN}; the file is changed\n");
    };
    let mut text = format!("--- {path}\n+++ {path}\n@@ lines appended by mxharden @@\n");
    for line in appended.trim_start_matches('\n').lines() {
        text.push('+');
        text.push_str(line);
        text.push('\n');
    }
    text
}
