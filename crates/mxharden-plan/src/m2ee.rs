//! The app user's m2ee-tools files: reading the current password and
//! making `m2ee.yaml` list mxharden's file under `include`.
//!
//! m2ee-tools (src/m2ee/config.py in mendix/m2ee-tools) reads
//! `/etc/m2ee/m2ee.yaml`, then `~/.m2ee/m2ee.yaml`, then every file of the
//! merged top-level `include` list, merging dicts, concatenating lists and
//! letting later scalars win. A file it cannot read is skipped with a
//! warning, so the include file must be readable by the app user.

use mxharden_render::AdminPassword;

use crate::error::PlanError;

/// Parses YAML text into a generic value. The error gives only the line and
/// column, because these files hold passwords and the parser's own message
/// may quote the text around the mistake.
pub fn parse_yaml(origin: &str, text: &str) -> Result<serde_json::Value, PlanError> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options(text, options).map_err(|error| {
        let place = match error.location() {
            Some(location) => format!("line {}, column {}", location.line(), location.column()),
            None => "an unknown place".to_owned(),
        };
        PlanError::Conflict(format!("{origin}: invalid YAML at {place}; correct the file or move it away"))
    })
}

/// Returns `m2ee.admin_pass` from mxharden's include file, if present.
pub fn read_admin_pass(origin: &str, text: &str) -> Result<Option<AdminPassword>, PlanError> {
    let value = parse_yaml(origin, text)?;
    let pass = value.get("m2ee").and_then(|m2ee| m2ee.get("admin_pass"));
    Ok(match pass {
        Some(serde_json::Value::String(text)) => Some(AdminPassword::new(text.clone())),
        Some(serde_json::Value::Number(number)) => Some(AdminPassword::new(number.to_string())),
        _ => None,
    })
}

/// The change `m2ee.yaml` needs so that m2ee-tools loads mxharden's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MainFileUpdate {
    /// It lists the include file already.
    Unchanged,
    /// It needs these new contents.
    Rewrite(String),
}

/// Works out the new `m2ee.yaml`: a fresh file when there is none, the
/// operator's file with an `include` block appended when it has no
/// `include` key, or unchanged when it lists `include_path` already.
/// Appending keeps every byte the operator wrote, comments included.
pub fn update_main_file(
    origin: &str,
    existing: Option<&str>,
    fresh: &str,
    include_path: &str,
) -> Result<MainFileUpdate, PlanError> {
    let Some(text) = existing else {
        return Ok(MainFileUpdate::Rewrite(fresh.to_owned()));
    };
    let value = parse_yaml(origin, text)?;
    let include = match &value {
        serde_json::Value::Null => None,
        serde_json::Value::Object(map) => map.get("include"),
        _ => {
            return Err(PlanError::Conflict(format!(
                "{origin}: the top level must be a mapping of sections (m2ee, mxruntime, ...)"
            )));
        }
    };
    match include {
        None => {
            let mut updated = text.to_owned();
            if !updated.is_empty() && !updated.ends_with('\n') {
                updated.push('\n');
            }
            updated.push_str(&format!(
                "\n# Added by mxharden: load mxharden's settings last, so they win.\ninclude:\n  - {}\n",
                serde_json::to_string(include_path).expect("a string serializes")
            ));
            check_appended(origin, &value, &updated, include_path)?;
            Ok(MainFileUpdate::Rewrite(updated))
        }
        Some(serde_json::Value::Array(items)) if items.iter().any(|item| item.as_str() == Some(include_path)) => {
            Ok(MainFileUpdate::Unchanged)
        }
        Some(_) => Err(PlanError::Conflict(format!(
            "{origin}: its include list does not name {include_path}; add \"- {include_path}\" to that list so m2ee-tools loads mxharden's settings"
        ))),
    }
}

/// Checks that appending the include block kept the file's meaning: the
/// result parses, every original key keeps its value, and `include` lists
/// only mxharden's file. A file that ends with a document end marker (`...`),
/// uses a flow mapping at the top or indents its top-level keys would lose
/// the operator's settings, so it is an error before anything is written.
fn check_appended(origin: &str, original: &serde_json::Value, updated: &str, include_path: &str) -> Result<(), PlanError> {
    let refuse = || {
        PlanError::Conflict(format!(
            "{origin}: mxharden cannot append its include entry without changing the file's meaning (it may end with `...`, use a flow mapping at the top level or indent its top-level keys); add the line `include: [\"{include_path}\"]` at the top level yourself and run again"
        ))
    };
    let parsed = parse_yaml(origin, updated).map_err(|_| refuse())?;
    let serde_json::Value::Object(mut map) = parsed else {
        return Err(refuse());
    };
    let include = map.remove("include");
    let expected_include = serde_json::json!([include_path]);
    let original_map = original.as_object().cloned().unwrap_or_default();
    if include != Some(expected_include) || map != original_map {
        return Err(refuse());
    }
    Ok(())
}

/// Tells whether the operator's `m2ee.yaml` sets its own `admin_pass`.
pub fn main_file_sets_admin_pass(origin: &str, text: &str) -> bool {
    parse_yaml(origin, text)
        .ok()
        .and_then(|value| value.get("m2ee").and_then(|m| m.get("admin_pass")).cloned())
        .is_some()
}

/// Merges `overlay` into `base` by m2ee-tools' rules: mappings merge, lists
/// concatenate, any other value of `overlay` replaces the one in `base`.
pub fn merge_config(base: &serde_json::Value, overlay: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (base, overlay) {
        (_, Value::Null) => base.clone(),
        (Value::Object(left), Value::Object(right)) => {
            let mut merged = left.clone();
            for (key, value) in right {
                let next = match (left.get(key), value) {
                    (Some(old @ Value::Object(_)), Value::Object(_)) => merge_config(old, value),
                    (Some(Value::Array(old)), Value::Array(new)) => Value::Array(old.iter().chain(new).cloned().collect()),
                    _ => value.clone(),
                };
                merged.insert(key.clone(), next);
            }
            Value::Object(merged)
        }
        _ => overlay.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INCLUDE: &str = "/srv/mendix/sales/.m2ee/mxharden.yaml";

    #[test]
    fn main_file_created_when_missing() {
        let update = update_main_file("m2ee.yaml", None, "fresh\n", INCLUDE).unwrap();
        assert_eq!(update, MainFileUpdate::Rewrite("fresh\n".into()));
    }

    #[test]
    fn main_file_keeps_operator_text() {
        let text = "# database\nmxruntime:\n  DatabaseHost: db:5432\n";
        let MainFileUpdate::Rewrite(updated) = update_main_file("m2ee.yaml", Some(text), "", INCLUDE).unwrap() else {
            panic!("expected a rewrite");
        };
        assert!(updated.starts_with(text));
        let value = parse_yaml("updated", &updated).unwrap();
        assert_eq!(value["include"], json!([INCLUDE]));
        assert_eq!(value["mxruntime"]["DatabaseHost"], json!("db:5432"));
        let again = update_main_file("m2ee.yaml", Some(&updated), "", INCLUDE).unwrap();
        assert_eq!(again, MainFileUpdate::Unchanged);
    }

    #[test]
    fn main_file_unsafe_append_rejected() {
        for text in [
            "mxruntime:\n  DatabaseHost: db\n...\n",
            "{mxruntime: {DatabaseHost: db}}\n",
            "  mxruntime:\n    DatabaseHost: db\n",
        ] {
            let result = update_main_file("m2ee.yaml", Some(text), "", INCLUDE);
            assert!(result.is_err(), "{text:?} gave {result:?}");
        }
    }

    #[test]
    fn main_file_without_final_newline_kept() {
        let text = "mxruntime:\n  DatabasePassword: \"secret\"";
        let MainFileUpdate::Rewrite(updated) = update_main_file("m2ee.yaml", Some(text), "", INCLUDE).unwrap() else {
            panic!("expected a rewrite");
        };
        assert!(updated.starts_with(text));
    }

    #[test]
    fn main_file_foreign_include_rejected() {
        let text = "include:\n  - /etc/other.yaml\n";
        assert!(update_main_file("m2ee.yaml", Some(text), "", INCLUDE).is_err());
    }

    #[test]
    fn merge_follows_m2ee_rules() {
        let base = json!({"m2ee": {"admin_pass": "1", "javaopts": ["-Xmx1g"]}, "mxruntime": {"DTAPMode": "D", "Db": "x"}});
        let overlay = json!({"m2ee": {"admin_pass": "long", "javaopts": ["-Xss1m"]}, "mxruntime": {"DTAPMode": "P"}});
        let merged = merge_config(&base, &overlay);
        assert_eq!(merged["m2ee"]["admin_pass"], json!("long"));
        assert_eq!(merged["m2ee"]["javaopts"], json!(["-Xmx1g", "-Xss1m"]));
        assert_eq!(merged["mxruntime"], json!({"DTAPMode": "P", "Db": "x"}));
    }
}
