//! The desired state of Mendix apps: parsing, value checks and defaults.
//!
//! [`load_apps`] is the entry point: it reads every file, resolves defaults
//! and checks each app alone and all apps together, returning either apps
//! that later stages can trust or every problem found, each with its file,
//! line, column and field.

pub mod access;
pub mod cross;
pub mod error;
pub mod model;
pub mod parse;
pub mod resolve;
pub mod values;

use std::path::PathBuf;

pub use error::{InputError, Position, SpecErrors};
pub use model::{CheckId, FirewallBackend, FrameAncestors, ProxyKind, Satisfy, TlsProfile};
pub use access::AccessRule;
pub use resolve::{ActiveWaiver, AppSpec, DEFAULT_CONTENT_SECURITY_POLICY, ProxyOptions};

/// Reads, resolves and cross-checks the apps in `files`.
pub fn load_apps(files: &[PathBuf], today: jiff::civil::Date) -> Result<Vec<AppSpec>, SpecErrors> {
    let mut apps = Vec::new();
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for file in files {
        // The same file twice would report every field as a conflict with itself.
        let identity = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        if seen.contains(&identity) {
            let whole_file = Position {
                file: file.clone(),
                line: 0,
                column: 0,
            };
            errors.push(InputError::new(&whole_file, "", "the file is given more than once; give each file once"));
            continue;
        }
        seen.push(identity);
        let state = match parse::read_desired_state(file) {
            Ok(state) => state,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        match resolve::resolve_app(file, state, today) {
            Ok(app) => apps.push(app),
            Err(found) => errors.extend(found),
        }
    }
    errors.extend(cross::check_apps_distinct(&apps));
    if errors.is_empty() { Ok(apps) } else { Err(SpecErrors(errors)) }
}

/// Returns the JSON Schema of a desired-state file.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(model::DesiredState)).expect("a schema serializes to JSON")
}

/// Returns today's date in UTC, the clock that waiver expiry uses.
pub fn today_utc() -> jiff::civil::Date {
    jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date()
}
