//! Reading one desired-state file into the typed model.

use std::io::Read;
use std::path::Path;

use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::options::AliasLimits;
use serde_saphyr::{DuplicateKeyPolicy, Error as YamlError, Location, MergeKeyPolicy, Options};

use crate::error::{InputError, Position};
use crate::model::DesiredState;

/// Largest desired-state file accepted, in bytes. Real files are a few
/// hundred bytes; the cap keeps a hostile file from costing memory.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;

/// Reads and parses `file`. The error names the file, line, column and field.
pub fn read_desired_state(file: &Path) -> Result<DesiredState, InputError> {
    let whole_file = Position {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
    };
    let opened = std::fs::File::open(file).map_err(|e| InputError::new(&whole_file, "", format!("cannot read the file: {e}")))?;
    let metadata = opened
        .metadata()
        .map_err(|e| InputError::new(&whole_file, "", format!("cannot read the file: {e}")))?;
    // A device or FIFO (`/dev/zero`, `/dev/stdin`) could be read forever.
    if !metadata.is_file() {
        return Err(InputError::new(&whole_file, "", "not a regular file; give the path of a desired-state YAML file"));
    }
    let mut bytes = Vec::new();
    // Reading one byte past the limit separates a file that grew since the
    // metadata was read from one that fits.
    opened
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| InputError::new(&whole_file, "", format!("cannot read the file: {e}")))?;
    let size = metadata.len().max(bytes.len() as u64);
    if size > MAX_FILE_BYTES {
        return Err(InputError::new(
            &whole_file,
            "",
            format!("the file has {size} bytes; a desired-state file may have at most {MAX_FILE_BYTES}"),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| invalid_utf8_error(file, e.as_bytes(), e.utf8_error()))?;
    parse_desired_state(file, &text)
}

/// Names the line and column of the first byte that is not UTF-8.
fn invalid_utf8_error(file: &Path, bytes: &[u8], error: std::str::Utf8Error) -> InputError {
    let valid = String::from_utf8_lossy(&bytes[..error.valid_up_to()]);
    let line = valid.matches('\n').count() + 1;
    let column = valid.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    let position = Position {
        file: file.to_path_buf(),
        line: line as u64,
        column: column as u64,
    };
    let byte = bytes[error.valid_up_to()];
    InputError::new(&position, "", format!("byte 0x{byte:02x} is not valid UTF-8; save the file as UTF-8"))
}

/// Parses `text`, read from `file`.
///
/// The text is parsed twice with YAML 1.2 rules. The first pass accepts only
/// `true` and `false` as booleans. The second pass rejects unquoted strings
/// that YAML 1.1 tools read as booleans or numbers (`yes`, `off`, `0644`), so
/// such a value means the same to mxharden as to every other reader.
///
/// Integers (`version` and the ports) must then be written in plain decimal
/// digits, because YAML 1.1 and 1.2 readers disagree on `0644`, `0o17500`,
/// `8_000` and `0x1F40`, and a quoted `"8000"` is a string to other tools.
pub fn parse_desired_state(file: &Path, text: &str) -> Result<DesiredState, InputError> {
    let state = parse_with(file, text, strict_options(true))?;
    parse_with(file, text, strict_options(false))?;
    check_integer_spelling(file, text, "version", &state.version.defined)?;
    check_integer_spelling(file, text, "app.runtime.port", &state.app.runtime.port.defined)?;
    check_integer_spelling(file, text, "app.runtime.admin_port", &state.app.runtime.admin_port.defined)?;
    Ok(state)
}

/// Rejects an integer unless its source text is plain decimal digits
/// without a leading zero, sign, quotes, underscores or tag.
fn check_integer_spelling(file: &Path, text: &str, field: &str, location: &Location) -> Result<(), InputError> {
    let span = location.span();
    let raw = span
        .byte_offset()
        .zip(span.byte_len())
        .and_then(|(start, len)| text.get(usize::try_from(start).ok()?..usize::try_from(start + len).ok()?));
    // NOTE: a span the parser does not report is let through; the value was
    // already parsed as an integer of the field's type.
    let Some(raw) = raw else {
        return Ok(());
    };
    let plain = raw.bytes().all(|b| b.is_ascii_digit()) && !raw.is_empty() && (raw == "0" || !raw.starts_with('0'));
    if plain {
        return Ok(());
    }
    Err(InputError::new(
        &Position::at(file, *location),
        field,
        format!(
            "{raw} is not a plain decimal number; write the number as digits only, without quotes, sign, leading zeros, underscores, tags or a 0x/0o prefix, because YAML 1.1 and YAML 1.2 tools read such spellings differently"
        ),
    ))
}

/// Most YAML events that aliases may replay in one file. A complete desired
/// state has fewer than 100 nodes, so this bounds what a file of nested
/// aliases (a "billion laughs" file) can expand into.
const MAX_ALIAS_REPLAYED_EVENTS: usize = 10_000;

fn alias_limits() -> AliasLimits {
    let mut limits = AliasLimits::default();
    limits.max_total_replayed_events = MAX_ALIAS_REPLAYED_EVENTS;
    limits.max_replay_stack_depth = 8;
    limits.max_alias_expansions_per_anchor = 100;
    limits
}

fn strict_options(strict_booleans: bool) -> Options {
    serde_saphyr::options! {
        strict_booleans: strict_booleans,
        no_schema: true,
        with_snippet: false,
        duplicate_keys: DuplicateKeyPolicy::Error,
        merge_keys: MergeKeyPolicy::Error,
        reject_unsupported_tags: true,
        reject_tagged_field_names: true,
        alias_limits: alias_limits(),
        budget: serde_saphyr::budget! {
            max_depth: 32,
            max_nodes: 10_000,
            max_aliases: 100,
            max_anchors: 100,
            max_total_scalar_bytes: 1024 * 1024,
            max_documents: 1,
        },
    }
}

fn parse_with(file: &Path, text: &str, options: Options) -> Result<DesiredState, InputError> {
    let mut field = String::new();
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|error| {
            field = error.path().to_string();
            error.into_inner()
        })
    });
    result.map_err(|error| to_input_error(file, &field, &error))
}

fn to_input_error(file: &Path, field: &str, error: &YamlError) -> InputError {
    let position = match error.location() {
        Some(location) => Position::at(file, location),
        None => Position {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
        },
    };
    let field = clean_field(field, error);
    InputError::new(&position, &field, clean_message(&field, error))
}

/// Removes the `.value` segments that `Spanned` adds and the `?` that the
/// path library writes for an unknown position.
fn clean_field(field: &str, error: &YamlError) -> String {
    let field = field.trim_end_matches(".?").trim_end_matches('?');
    let field = if field == "." { "" } else { field };
    let unknown_field = matches!(error, YamlError::SerdeUnknownField { .. });
    let mut field = field.replace(".value[", "[").replace(".value.", ".");
    if !unknown_field && field.ends_with(".value") {
        field.truncate(field.len() - ".value".len());
    }
    field
}

/// Rewrites the YAML library's message into what is wrong and what to
/// write instead. The position leads the message already, so the library's
/// ` at line L, column C` suffix is dropped.
fn clean_message(field: &str, error: &YamlError) -> String {
    match error {
        YamlError::Budget { breach, .. } => return budget_message(breach),
        YamlError::DuplicateMappingKey { key: Some(key), .. } => {
            return format!("the key `{key}` appears twice in this mapping; keep one");
        }
        YamlError::DuplicateMappingKey { key: None, .. } => {
            return "a key appears twice in this mapping; keep one".to_owned();
        }
        YamlError::MergeKeyNotAllowed { .. } => {
            return "merge keys (<<) are not supported; write every field out".to_owned();
        }
        YamlError::Eof { .. } => {
            return "the file holds no YAML value; expected a mapping with the keys version and app".to_owned();
        }
        YamlError::NullIntoString { .. } => {
            return "the value is empty or null; write a value, or leave the key out where it is optional".to_owned();
        }
        _ => {}
    }
    let text = error.to_string();
    let text = text.replace("invalid u16", "invalid number").replace("invalid u32", "invalid number");
    // Cut at the first position suffix: messages about an alias add a
    // second one for the anchor.
    // An alias error adds " (defined at line ...)" for the anchor; cut there first.
    let text = match text.find(" (defined") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    };
    let text = match text.find(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    };
    if let Some(value) = text.strip_prefix("The string value [").and_then(|rest| rest.strip_suffix("] must be quoted")) {
        return format!(
            "unquoted {value} is read as a boolean, number or null by YAML 1.1 tools; quote it (\"{value}\") if it is meant as text"
        );
    }
    let text = match text.as_str() {
        "expected mapping start" => "expected a mapping of keys and values".to_owned(),
        "expected sequence start" => "expected a list".to_owned(),
        "expected string scalar" => "expected a single value, not a list or mapping".to_owned(),
        _ => text,
    };
    // Only value errors get the hint: after a syntax error the field path
    // names where the parser stopped, not a value that was written.
    if field.ends_with("expires") && !text.starts_with("unquoted") {
        let day_out_of_range = text.contains("parameter 'day'");
        let detail = if day_out_of_range { " (that month has fewer days)" } else { "" };
        return format!("invalid date{detail}: expected a calendar date written YYYY-MM-DD, e.g. 2027-03-31");
    }
    match expected_scalar(field) {
        // The library's own value errors are short ("invalid number"); the
        // checked types' messages have a colon and state what to write already.
        Some(expected) if text.starts_with("invalid ") && !text.contains(':') => format!("{text}: expected {expected}"),
        _ => text,
    }
}

/// Describes the value a field takes, for type errors.
fn expected_scalar(field: &str) -> Option<&'static str> {
    let last = field.rsplit('.').next().unwrap_or(field);
    let last = last.split('[').next().unwrap_or(last);
    match last {
        "version" => Some("the number 1"),
        "port" | "admin_port" => Some("a port number from 1024 to 65535, written in decimal digits"),
        "listen" => Some("an IPv4 or IPv6 address such as 127.0.0.1 or ::1"),
        "remote_addresses" => Some("an address or network such as 10.0.0.5/32 or fd00::/64"),
        _ => None,
    }
}

fn budget_message(breach: &BudgetBreach) -> String {
    let excess = match breach {
        BudgetBreach::Documents { .. } => {
            return "the file has more than one YAML document; put each app in a file of its own".to_owned();
        }
        BudgetBreach::Depth { .. } => "more than 32 levels of nesting".to_owned(),
        BudgetBreach::Aliases { .. } => "more than 100 aliases".to_owned(),
        BudgetBreach::Anchors { .. } => "more than 100 anchors".to_owned(),
        BudgetBreach::Nodes { .. } => "more than 10000 nodes".to_owned(),
        BudgetBreach::ScalarBytes { .. } => "more than 1 MiB of scalar text".to_owned(),
        other => format!("more than a YAML parser limit allows ({other:?})"),
    };
    format!("the file has {excess}, far more than a desired-state file needs; write the values out")
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "version: 1
app:
  name: sales
  base: /srv/mendix/sales
  runtime:
    port: 8000
    admin_port: 8090
  proxy:
    kind: nginx
    server_name: sales.example.com
    tls:
      certificate: /etc/ssl/certs/sales.pem
      key: /etc/ssl/private/sales.key
";

    fn parse(text: &str) -> Result<DesiredState, InputError> {
        parse_desired_state(Path::new("app.yaml"), text)
    }

    #[test]
    fn valid_file_parses() {
        let state = parse(VALID).unwrap();
        assert_eq!(state.app.runtime.port.value.get(), 8000);
    }

    #[test]
    fn port_spellings_other_than_decimal_fail() {
        for spelling in ["\"8000\"", "'8000'", "0x1F40", "0o17500", "8_000", "+8000", "!!int \"8000\""] {
            let text = VALID.replace("port: 8000", &format!("port: {spelling}"));
            let error = parse(&text).expect_err(spelling);
            assert_eq!(error.field, "app.runtime.port", "{spelling}");
            // A tagged value is located at its scalar, after the tag.
            assert_eq!(error.line, 6, "{spelling}");
            assert!(error.column >= 11, "{spelling}");
            assert!(error.message.contains("plain decimal"), "{spelling}: {}", error.message);
        }
    }

    #[test]
    fn version_quoted_fails() {
        let error = parse(&VALID.replace("version: 1", "version: \"1\"")).unwrap_err();
        assert_eq!(error.field, "version");
    }

    #[test]
    fn field_path_has_no_value_segment() {
        let error = parse(&VALID.replace("name: sales", "name: Sales")).unwrap_err();
        assert_eq!(error.field, "app.name");
        let error = parse(&VALID.replace("    admin_port: 8090", "    admin_port: 8090\n    listen: [\"x\"]")).unwrap_err();
        assert_eq!(error.field, "app.runtime.listen[0]");
    }

    #[test]
    fn merge_keys_and_custom_tags_fail() {
        let merge = VALID.replace("    port: 8000\n", "    <<: {port: 8000}\n");
        assert!(parse(&merge).unwrap_err().message.contains("merge keys"));
        let tagged = VALID.replace("name: sales", "name: !secret sales");
        assert!(parse(&tagged).unwrap_err().message.contains("unsupported tag"));
    }

    #[test]
    fn duplicate_key_message_names_key() {
        let error = parse(&VALID.replace("  name: sales\n", "  name: sales\n  name: crm\n")).unwrap_err();
        assert_eq!(error.message, "the key `name` appears twice in this mapping; keep one");
    }

    #[test]
    fn device_file_is_rejected() {
        let error = read_desired_state(Path::new("/dev/zero")).unwrap_err();
        assert!(error.message.contains("not a regular file"), "{}", error.message);
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let folder = std::env::temp_dir().join(format!("mxharden-parse-test-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let file = folder.join("app.yaml");
        std::fs::write(&file, b"version: 1\napp:\n  name: s\xffles\n").unwrap();
        let error = read_desired_state(&file).unwrap_err();
        std::fs::remove_dir_all(&folder).unwrap();
        assert_eq!((error.line, error.column), (3, 10));
        assert!(error.message.contains("0xff"), "{}", error.message);
    }
}
