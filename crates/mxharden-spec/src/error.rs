//! Errors that point at a place in a desired-state file.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

/// A line and column in one file, both starting at 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The desired-state file.
    pub file: PathBuf,
    /// Line, from 1; 0 when unknown.
    pub line: u64,
    /// Column, from 1; 0 when unknown.
    pub column: u64,
}

impl Position {
    /// Builds a position from a YAML location in `file`.
    pub fn at(file: &Path, location: Location) -> Position {
        Position {
            file: file.to_path_buf(),
            line: location.line(),
            column: location.column(),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One problem in a desired-state file: where, which field, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputError {
    /// The desired-state file.
    pub file: PathBuf,
    /// Line, from 1; 0 when the problem concerns the whole file.
    pub line: u64,
    /// Column, from 1; 0 when the problem concerns the whole file.
    pub column: u64,
    /// Dotted path of the field, e.g. `app.proxy.tls.key`; empty for the whole file.
    pub field: String,
    /// What is wrong and what is expected.
    pub message: String,
    /// The other place involved in a conflict, as `file:line:column`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related: Option<String>,
}

impl InputError {
    /// Builds an error at `position` for `field`.
    pub fn new(position: &Position, field: &str, message: impl Into<String>) -> InputError {
        InputError {
            file: position.file.clone(),
            line: position.line,
            column: position.column,
            field: field.to_owned(),
            message: message.into(),
            related: None,
        }
    }

    /// Names the other place of a conflict.
    pub fn with_related(mut self, other: &Position) -> InputError {
        self.related = Some(other.to_string());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if let Some(related) = &self.related {
            write!(f, " (conflicts with {related})")?;
        }
        Ok(())
    }
}

/// Every problem found in the desired-state files of one call.
#[derive(Debug, thiserror::Error)]
pub struct SpecErrors(pub Vec<InputError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}
