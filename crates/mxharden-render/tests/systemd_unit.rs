//! The generated systemd unit, checked by systemd's own tools.

use std::path::Path;
use std::process::Command;

use mxharden_render::{AdminPassword, ArtifactKind, Engine, RenderContext, render_app};
use mxharden_testkit::sandbox::example_spec;
use mxharden_testkit::spec::load_app;

/// Highest `systemd-analyze security` exposure accepted; systemd rates a
/// unit with only `User=` about 9.2 and rates 1.x as "OK".
const MAX_EXPOSURE: f64 = 2.0;

/// Renders the unit for the example app, with `/usr/bin/true` standing in
/// for m2ee because `verify` requires the executable to exist.
fn render_unit(folder: &Path) -> std::path::PathBuf {
    let text = format!("{}  service:\n    m2ee: /usr/bin/true\n", example_spec());
    let app = load_app(&text);
    let context = RenderContext::new(&app, None);
    let engine = Engine::load(None).unwrap();
    let artifacts = render_app(&engine, &app, &context, &AdminPassword::new("x".repeat(48))).unwrap();
    let unit = artifacts.iter().find(|a| a.kind == ArtifactKind::SystemdUnit).unwrap();
    let path = folder.join(unit.path.file_name());
    std::fs::write(&path, &unit.contents).unwrap();
    path
}

fn systemd_analyze_available() -> bool {
    let found = Command::new("systemd-analyze").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found && std::env::var("CI").as_deref() == Ok("true") {
        panic!("systemd-analyze is missing; scripts/install-test-deps installs it");
    }
    found
}

#[test]
fn unit_passes_systemd_verify() {
    if !systemd_analyze_available() {
        eprintln!("SKIPPED unit_passes_systemd_verify: systemd-analyze is not installed");
        return;
    }
    let folder = tempfile::tempdir().unwrap();
    let unit = render_unit(folder.path());
    let output = Command::new("systemd-analyze").arg("verify").arg(&unit).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "systemd-analyze verify failed:\n{stderr}");
    assert!(stderr.trim().is_empty(), "systemd-analyze verify warned:\n{stderr}");
}

#[test]
fn unit_exposure_is_low() {
    if !systemd_analyze_available() {
        eprintln!("SKIPPED unit_exposure_is_low: systemd-analyze is not installed");
        return;
    }
    let folder = tempfile::tempdir().unwrap();
    let unit = render_unit(folder.path());
    let output = Command::new("systemd-analyze").args(["security", "--offline=true"]).arg(&unit).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|line| line.split("Overall exposure level for ").nth(1))
        .and_then(|rest| rest.split(':').nth(1))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(exposure <= MAX_EXPOSURE, "exposure {exposure} above {MAX_EXPOSURE}:\n{text}");
}
