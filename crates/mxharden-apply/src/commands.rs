//! Running system programs with argument vectors; no shell, no secrets.

use std::process::Command;

use crate::error::ApplyError;

/// Runs `program` with `args` and fails with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> Result<(), ApplyError> {
    let describe = || std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    tracing::debug!(command = %describe(), "running");
    let output = Command::new(program).args(args).output().map_err(|e| ApplyError::Command {
        command: describe(),
        output: e.to_string(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if text.is_empty() {
        text = format!("exited with {}", output.status);
    }
    Err(ApplyError::Command {
        command: describe(),
        output: text,
    })
}

/// Tells whether systemd is the running init system.
pub fn systemd_running() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

/// Tells whether an nginx master process is running, by its PID file.
pub fn nginx_running() -> bool {
    std::fs::read_to_string("/run/nginx.pid")
        .ok()
        .and_then(|pid| pid.trim().parse::<i32>().ok())
        .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
}
