//! Running firewall programs with argument vectors, never through a shell.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::FirewallError;

/// Finds `name` on `PATH`, then in `/usr/sbin` and `/sbin`, where Debian
/// keeps `nft` and `iptables` even when root's `PATH` lacks them.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(Into::into))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Finds `name` or fails with an install hint.
pub fn require_program(name: &str, package: &str) -> Result<PathBuf, FirewallError> {
    find_program(name).ok_or_else(|| FirewallError::MissingTool {
        program: name.to_owned(),
        hint: format!("install it (Debian: apt-get install {package}) or set firewall.backend to another manager"),
    })
}

/// Tells whether this process runs as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The result of a finished command.
pub struct Finished {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error, or its exit status when that is empty.
    pub stderr: String,
}

fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `command` with stdin closed and returns its output, whatever its status.
pub fn output(command: &mut Command) -> Result<Finished, FirewallError> {
    tracing::debug!(command = %describe(command), "running");
    let output = command.stdin(Stdio::null()).output().map_err(|e| FirewallError::Command {
        command: describe(command),
        output: e.to_string(),
    })?;
    let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if stderr.is_empty() && !output.status.success() {
        stderr = format!("exited with {}", output.status);
    }
    Ok(Finished {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    })
}

/// Runs `command` and returns its standard output, or fails with its error output.
pub fn run(command: &mut Command) -> Result<String, FirewallError> {
    let finished = output(command)?;
    if finished.success {
        return Ok(finished.stdout);
    }
    Err(FirewallError::Command {
        command: describe(command),
        output: finished.stderr,
    })
}

/// Writes `contents` to a new 0600 file `name` in a new private temporary folder.
pub fn private_file(name: &str, contents: &str) -> Result<(tempfile::TempDir, PathBuf), FirewallError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let folder = tempfile::Builder::new().prefix("mxharden-firewall").tempdir().map_err(|source| FirewallError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let path = folder.path().join(name);
    let io_error = |source| FirewallError::Io { path: path.clone(), source };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_error)?;
    file.write_all(contents.as_bytes()).map_err(io_error)?;
    Ok((folder, path))
}
