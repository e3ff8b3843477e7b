//! `mxharden schema`.

use std::process::ExitCode;

/// Prints the JSON Schema of a desired-state file.
pub fn run() -> anyhow::Result<ExitCode> {
    let schema = mxharden_spec::json_schema();
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
