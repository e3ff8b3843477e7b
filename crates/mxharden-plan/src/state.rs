//! mxharden's record of an app under `/var/lib/mxharden/apps`.

use serde::{Deserialize, Serialize};

use crate::error::PlanError;
use crate::host::Host;

/// Largest state file read, in bytes.
const STATE_LIMIT: u64 = 64 * 1024;

/// mxharden's record of an app between runs. It has no timestamp,
/// so an unchanged app gives a byte-identical record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppState {
    /// App name.
    pub app: String,
    /// The account that runs it.
    pub user: String,
    /// argon2id PHC string of the admin API password.
    pub admin_pass_argon2id: String,
}

impl AppState {
    /// Serializes the record as the file stores it.
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("the state record serializes");
        text.push('\n');
        text
    }
}

/// Reads the record at `path`, if any.
pub fn read_state(host: &Host, path: &str) -> Result<Option<AppState>, PlanError> {
    let Some(bytes) = host.root.read_file(path, STATE_LIMIT)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        PlanError::Conflict(format!(
            "{}: invalid mxharden state record: {e}; move it away to let mxharden record the app again",
            host.host_path(path).display()
        ))
    })
}

/// Reads every other app's record, to find an account already in use.
pub fn other_apps_using(host: &Host, folder: &str, app: &str, user: &str) -> Result<Option<String>, PlanError> {
    let listing = match std::fs::read_dir(host.host_path(folder)) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PlanError::Io {
                path: host.host_path(folder),
                source,
            });
        }
    };
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(other) = name.strip_suffix(".json") else { continue };
        if other == app || other.starts_with('.') {
            continue;
        }
        if let Some(state) = read_state(host, &format!("{folder}/{name}"))? {
            if state.user == user {
                return Ok(Some(state.app));
            }
        }
    }
    Ok(None)
}
