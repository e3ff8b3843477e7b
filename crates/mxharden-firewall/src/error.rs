//! Failures of the firewall stage.

/// A failure while planning, loading or removing firewall rules.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] mxharden_fs::FsError),
    /// A template failed.
    #[error(transparent)]
    Render(#[from] mxharden_render::RenderError),
    /// A firewall program failed.
    #[error("{command} failed: {output}")]
    Command {
        /// The command, as its program and arguments.
        command: String,
        /// Its error output, or how it ended.
        output: String,
    },
    /// The host is in a state where changing the firewall is unsafe.
    #[error("{0}")]
    Conflict(String),
    /// A rendered rules file failed its tool's check mode.
    #[error("{tool} rejected the generated {what}:\n{output}")]
    CheckFailed {
        /// The check, e.g. `nft -c`.
        tool: String,
        /// The checked file.
        what: String,
        /// The tool's output.
        output: String,
    },
    /// A required program is missing.
    #[error("{program} is not installed or not on PATH; {hint}")]
    MissingTool {
        /// The program.
        program: String,
        /// The next step for the operator.
        hint: String,
    },
    /// A temporary file for a check could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}
