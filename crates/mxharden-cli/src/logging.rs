//! Logs go to stderr through `tracing`; user-facing output does not.

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalOptions, LogFormat};

/// Installs the log subscriber. `RUST_LOG` overrides the level from `-v`.
pub fn init(options: &GlobalOptions) {
    let level = match options.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match options.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.without_time().init(),
    }
}
