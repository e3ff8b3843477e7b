//! Reading one desired-state file into the typed model.

use std::path::Path;

use serde_saphyr::{Error as YamlError, Options};

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
    let metadata = std::fs::metadata(file)
        .map_err(|e| InputError::new(&whole_file, "", format!("cannot read the file: {e}")))?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(InputError::new(
            &whole_file,
            "",
            format!(
                "the file has {} bytes; a desired-state file may have at most {MAX_FILE_BYTES}",
                metadata.len()
            ),
        ));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| InputError::new(&whole_file, "", format!("cannot read the file as UTF-8 text: {e}")))?;
    parse_desired_state(file, &text)
}

/// Parses `text`, read from `file`.
///
/// The text is parsed twice with YAML 1.2 rules. The first pass accepts only
/// `true` and `false` as booleans. The second pass rejects unquoted strings
/// that YAML 1.1 tools read as booleans or numbers (`yes`, `off`, `0644`), so
/// such a value means the same to mxharden as to every other reader.
pub fn parse_desired_state(file: &Path, text: &str) -> Result<DesiredState, InputError> {
    let state = parse_with(file, text, strict_options(true))?;
    parse_with(file, text, strict_options(false))?;
    Ok(state)
}

fn strict_options(strict_booleans: bool) -> Options {
    serde_saphyr::options! {
        strict_booleans: strict_booleans,
        no_schema: true,
        with_snippet: false,
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
    let field = field.trim_end_matches(".?").trim_end_matches('?');
    let field = if field == "." { "" } else { field };
    InputError::new(&position, &without_span_segments(field), clean_message(error))
}

/// Removes the `value` segments that serde-saphyr's `Spanned` wrapper adds
/// to a field path (`app.runtime.port.value`), so the path names the field
/// as the user wrote it. No field of the model is called `value`.
fn without_span_segments(field: &str) -> String {
    field.split('.').filter(|segment| *segment != "value").collect::<Vec<_>>().join(".")
}

/// Drops the ` at line L, column C` suffix that the YAML library appends,
/// because the position leads the message already.
fn clean_message(error: &YamlError) -> String {
    let text = error.to_string();
    let text = match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    };
    // The library suggests one of its own options; say what the user can do.
    match text.split_once(", set DuplicateKeyPolicy") {
        Some((duplicate, _)) => format!("{duplicate}; each key may appear once in a mapping, so remove one of them"),
        None => text,
    }
}
