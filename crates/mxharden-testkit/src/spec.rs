//! Desired states loaded from files or text, the way `mxharden` loads them.

use std::path::Path;

use mxharden_spec::{AppSpec, SpecErrors};

/// Loads the desired-state file `file` with [`mxharden_spec::load_apps`], dated today in UTC.
///
/// Returns the one app that the file describes, or the errors that the loader reports.
///
/// # Panics
///
/// Panics when a file that loads describes more or fewer than one app.
pub fn try_load_app_file(file: &Path) -> Result<AppSpec, SpecErrors> {
    let mut apps = mxharden_spec::load_apps(&[file.to_path_buf()], mxharden_spec::today_utc())?;
    assert_eq!(apps.len(), 1, "expected one app from {}", file.display());
    Ok(apps.remove(0))
}

/// Loads the one app that the desired-state file `file` describes, like
/// [`try_load_app_file`].
///
/// # Panics
///
/// Panics with the loader's errors when the file is not a valid desired state.
pub fn load_app_file(file: &Path) -> AppSpec {
    try_load_app_file(file).unwrap_or_else(|errors| panic!("{} is invalid:\n{errors}", file.display()))
}

/// Writes `text` to `app.yaml` in a temporary folder and loads it like [`try_load_app_file`].
pub fn try_load_app(text: &str) -> Result<AppSpec, SpecErrors> {
    let folder = tempfile::tempdir().expect("create a temporary folder");
    let file = folder.path().join("app.yaml");
    std::fs::write(&file, text).expect("write the desired-state file");
    try_load_app_file(&file)
}

/// Loads the one app that the desired-state `text` describes, like [`try_load_app`].
///
/// # Panics
///
/// Panics with the loader's errors when the text is not a valid desired state.
pub fn load_app(text: &str) -> AppSpec {
    try_load_app(text).unwrap_or_else(|errors| panic!("the desired state is invalid:\n{errors}"))
}

/// Loads `examples/app.yaml`, the desired state for the example host tree `examples/root`.
pub fn example_app() -> AppSpec {
    load_app_file(&crate::sandbox::repository_root().join("examples/app.yaml"))
}
