//! `mxharden validate`.

use std::path::Path;
use std::process::ExitCode;

use mxharden_plan::Host;

use crate::cli::{Format, GlobalOptions, ValidateArgs};

/// Parses and checks the files, and judges each deployed runtime version.
pub fn run(options: &GlobalOptions, args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let apps = mxharden_spec::load_apps(&args.files, mxharden_spec::today_utc())?;
    let policy = super::load_policy(options)?;
    let host = Host::sandbox(args.root.as_deref().unwrap_or(Path::new("/")))?;
    let mut findings = Vec::new();
    for app in &apps {
        let finding = mxharden_plan::runtime::check_runtime(&host, app, &policy)?;
        findings.push(serde_json::json!({
            "name": app.name.as_str(),
            "source": app.source.display().to_string(),
            "runtime": finding,
        }));
    }
    match options.format {
        Format::Json => println!("{}", serde_json::json!({"changed": false, "valid": true, "apps": findings})),
        Format::Text => {
            for app in &apps {
                println!("{}: app {} is valid", app.source.display(), app.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
