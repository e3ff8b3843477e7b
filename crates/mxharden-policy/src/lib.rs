//! The runtime version policy: which Mendix runtime versions count as patched.

mod version;

use std::path::Path;

pub use version::Version;

/// The policy shipped with mxharden, from `policies/runtime-versions.yaml`.
pub const BUILT_IN_POLICY: &str = include_str!("../../../policies/runtime-versions.yaml");

/// A failure to load a policy file.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{path}: cannot read the policy file: {source}")]
    Read {
        /// The policy file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid policy.
    #[error("{origin}: invalid policy: {message}")]
    Invalid {
        /// The policy file, or `built-in policy`.
        origin: String,
        /// The problem.
        message: String,
    },
}

/// Largest policy file read, in bytes; the shipped one has about 1 KiB.
const MAX_POLICY_BYTES: u64 = 1024 * 1024;

/// Minimum versions per release line.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimePolicy {
    /// Schema version of the policy file; only `1` exists.
    pub version: u32,
    /// One entry per release line.
    pub lines: Vec<ReleaseLine>,
}

/// The minimum patched version of one release line.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseLine {
    /// Leading version components that select the line, e.g. `10.24`.
    pub line: Version,
    /// Lowest version of the line with every known security fix.
    pub minimum: Version,
    /// Whether the vendor still publishes fixes for the line.
    pub supported: bool,
}

/// The policy's judgement of a runtime version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// At or above the minimum of a supported line.
    Patched {
        /// The matched line.
        line: String,
        /// Its minimum.
        minimum: String,
    },
    /// At or above the minimum, but the line receives no more fixes.
    OutOfSupport {
        /// The matched line.
        line: String,
        /// Its minimum.
        minimum: String,
    },
    /// Below the minimum of its line.
    BelowMinimum {
        /// The matched line.
        line: String,
        /// Its minimum.
        minimum: String,
    },
    /// No line of the policy matches.
    UnknownLine,
}

impl Verdict {
    /// Tells whether the version must be refused unless a waiver accepts it.
    pub fn is_refused(&self) -> bool {
        matches!(self, Verdict::BelowMinimum { .. } | Verdict::UnknownLine)
    }
}

impl RuntimePolicy {
    /// Returns the policy built into the binary.
    pub fn built_in() -> RuntimePolicy {
        RuntimePolicy::parse("built-in policy", BUILT_IN_POLICY).expect("the built-in policy is valid")
    }

    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<RuntimePolicy, PolicyError> {
        let origin = path.display().to_string();
        let read_error = |source| PolicyError::Read { path: origin.clone(), source };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let metadata = file.metadata().map_err(read_error)?;
        if !metadata.is_file() || metadata.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::Invalid {
                origin,
                message: format!("expected a regular file of at most {MAX_POLICY_BYTES} bytes"),
            });
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_POLICY_BYTES), &mut text).map_err(read_error)?;
        RuntimePolicy::parse(&origin, &text)
    }

    /// Parses policy text; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<RuntimePolicy, PolicyError> {
        let invalid = |message: String| PolicyError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let options = serde_saphyr::options! { strict_booleans: true, no_schema: true, with_snippet: false };
        let policy: RuntimePolicy = serde_saphyr::from_str_with_options(text, options).map_err(|e| invalid(e.to_string()))?;
        if policy.version != 1 {
            return Err(invalid(format!("unsupported policy version {}; expected 1", policy.version)));
        }
        for (index, entry) in policy.lines.iter().enumerate() {
            if policy.lines[..index].iter().any(|earlier| earlier.line == entry.line && earlier.line.parts().len() == entry.line.parts().len()) {
                return Err(invalid(format!("line {} is listed twice; keep one entry per release line", entry.line)));
            }
            if !entry.minimum.has_prefix(&entry.line) {
                return Err(invalid(format!("minimum {} does not belong to line {}", entry.minimum, entry.line)));
            }
        }
        Ok(policy)
    }

    /// Judges `version` by the entry with the longest matching line.
    pub fn evaluate(&self, version: &Version) -> Verdict {
        let best = self
            .lines
            .iter()
            .filter(|entry| version.has_prefix(&entry.line))
            .max_by_key(|entry| entry.line.parts().len());
        let Some(entry) = best else {
            return Verdict::UnknownLine;
        };
        let line = entry.line.to_string();
        let minimum = entry.minimum.to_string();
        if version < &entry.minimum {
            Verdict::BelowMinimum { line, minimum }
        } else if entry.supported {
            Verdict::Patched { line, minimum }
        } else {
            Verdict::OutOfSupport { line, minimum }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(version: &str) -> Verdict {
        RuntimePolicy::built_in().evaluate(&version.parse().unwrap())
    }

    #[test]
    fn policy_refuses_old_lines_below_minimum() {
        assert!(judge("3.3.2").is_refused());
        assert!(judge("4.2.9").is_refused());
        assert!(matches!(judge("4.3.0"), Verdict::OutOfSupport { .. }));
    }

    #[test]
    fn policy_longest_line_wins() {
        assert!(matches!(judge("10.24.3.75271"), Verdict::Patched { ref line, .. } if line == "10.24"));
        assert_eq!(judge("10.18.1"), Verdict::UnknownLine);
        assert!(judge("9.24.33").is_refused());
        assert!(!judge("9.24.34.1").is_refused());
    }

    #[test]
    fn policy_rejects_duplicate_line() {
        let entry = "  - line: \"10.24\"\n    minimum: \"10.24.9\"\n    supported: true\n";
        let text = format!("version: 1\nlines:\n{entry}{}", entry.replace("10.24.9", "10.24.0"));
        assert!(RuntimePolicy::parse("test", &text).is_err());
    }

    #[test]
    fn policy_rejects_device_file() {
        assert!(RuntimePolicy::load(Path::new("/dev/zero")).is_err());
    }

    #[test]
    fn policy_rejects_minimum_outside_line() {
        let text = "version: 1\nlines:\n  - line: \"9.24\"\n    minimum: \"9.23.1\"\n    supported: true\n";
        assert!(RuntimePolicy::parse("test", text).is_err());
    }
}
