/// A failure while carrying out a plan.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] mxharden_fs::FsError),
    /// Observing the host failed.
    #[error(transparent)]
    Plan(#[from] mxharden_plan::PlanError),
    /// Changing the firewall failed.
    #[error(transparent)]
    Firewall(#[from] mxharden_firewall::FirewallError),
    /// A program mxharden runs failed.
    #[error("{command} failed: {output}")]
    Command {
        /// The command, as its program and arguments.
        command: String,
        /// Its error output, or how it ended.
        output: String,
    },
    /// A check before the first change found that the run could not finish.
    #[error("{0} (nothing was changed)")]
    Preflight(String),
    /// A step failed after earlier steps had changed the host.
    #[error("{cause}\nrolled back: {}", if rolled_back.is_empty() { "nothing".to_owned() } else { rolled_back.join(", ") })]
    RolledBack {
        /// The failure.
        cause: Box<ApplyError>,
        /// Files restored to their previous contents or removed.
        rolled_back: Vec<String>,
    },
}
