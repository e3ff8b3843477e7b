use std::path::PathBuf;

/// A failure while observing the host or planning.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] mxharden_fs::FsError),
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An account look-up failed.
    #[error("account look-up failed: {0}")]
    Lookup(String),
    /// A template failed.
    #[error(transparent)]
    Render(#[from] mxharden_render::RenderError),
    /// The host is not in a state mxharden can safely change.
    #[error("{0}")]
    Conflict(String),
    /// A generated file failed its tool's check.
    #[error("{tool} rejected the generated {what}:\n{output}")]
    CheckFailed {
        /// The checker, e.g. `nginx -t`.
        tool: String,
        /// The checked file.
        what: String,
        /// The checker's output.
        output: String,
    },
    /// The TLS certificate or key cannot serve the app.
    #[error("{path}: {message}")]
    InvalidCertificate {
        /// The certificate or key file, at its path on the host.
        path: PathBuf,
        /// The problem and the next step.
        message: String,
    },
    /// A file that an access rule names cannot serve it.
    #[error("{position}: {field}: {path}: {message}")]
    InvalidAccessFile {
        /// Position of the field in the desired-state file, as `file:line:column`.
        position: String,
        /// The field, e.g. `app.proxy.access[0].basic_auth`.
        field: String,
        /// The file's path on the host.
        path: PathBuf,
        /// The problem and the next step.
        message: String,
    },
    /// Planning the firewall failed.
    #[error(transparent)]
    Firewall(#[from] mxharden_firewall::FirewallError),
    /// A required program is missing.
    #[error("{program} is not installed or not on PATH; {hint}")]
    MissingTool {
        /// The program.
        program: String,
        /// The next step for the operator.
        hint: String,
    },
}
