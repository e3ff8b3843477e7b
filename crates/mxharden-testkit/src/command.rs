//! Running helper commands (`ip`, `openssl`) and turning their failures into `io::Error`s.

use std::io;
use std::process::{Command, Output, Stdio};

/// Runs `command` to completion and returns its output.
///
/// Returns an error that names the command, its exit status and its stderr when the command
/// cannot be started or exits with a non-zero status.
pub(crate) fn run_checked(command: &mut Command) -> io::Result<Output> {
    let output = command.stdin(Stdio::null()).output().map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("failed to start {command:?}: {error}"),
        )
    })?;

    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{command:?} failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output)
}
