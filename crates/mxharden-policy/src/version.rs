//! Mendix version numbers such as `10.24.3.75271`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A dotted version of one to four numeric components. Missing components
/// compare as zero, so `9.24` equals `9.24.0.0`.
#[derive(Debug, Clone, Eq)]
pub struct Version {
    parts: Vec<u32>,
    text: String,
}

impl Version {
    /// Returns the numeric components as written.
    pub fn parts(&self) -> &[u32] {
        &self.parts
    }

    /// Tells whether `prefix` (e.g. `10.24`) matches this version's leading components.
    pub fn has_prefix(&self, prefix: &Version) -> bool {
        prefix.parts.len() <= self.parts.len() && self.parts[..prefix.parts.len()] == prefix.parts[..]
    }

    fn part(&self, index: usize) -> u32 {
        self.parts.get(index).copied().unwrap_or(0)
    }
}

impl FromStr for Version {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || format!("invalid version {text:?}: expected 1 to 4 dot-separated numbers, e.g. 10.24.3.75271");
        let parts = text
            .split('.')
            .map(|part| {
                let digits_only = !part.is_empty() && part.len() <= 9 && part.bytes().all(|b| b.is_ascii_digit());
                if digits_only { part.parse::<u32>().map_err(|_| invalid()) } else { Err(invalid()) }
            })
            .collect::<Result<Vec<u32>, String>>()?;
        if parts.len() > 4 {
            return Err(invalid());
        }
        Ok(Version {
            parts,
            text: text.to_owned(),
        })
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (0..4)
            .map(|index| self.part(index).cmp(&other.part(index)))
            .find(|ordering| ordering.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn version_orders_numerically() {
        assert!(v("9.24.34") > v("9.24.4"));
        assert!(v("10.24.0.1") > v("10.24"));
        assert_eq!(v("9.24"), v("9.24.0.0"));
        assert!(v("3.3.2") < v("3.3.3"));
    }

    #[test]
    fn version_prefix_matches_components() {
        assert!(v("10.24.3").has_prefix(&v("10.24")));
        assert!(!v("10.2.3").has_prefix(&v("10.24")));
        assert!(!v("10").has_prefix(&v("10.24")));
    }

    #[test]
    fn version_rejects_malformed() {
        for text in ["", "10.", ".1", "1..2", "a.b", "1.2.3.4.5", "-1", "1.2-rc", " 1", "9999999999"] {
            assert!(text.parse::<Version>().is_err(), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn version_roundtrips_and_orders(a in proptest::collection::vec(0u32..100_000, 1..=4),
                                         b in proptest::collection::vec(0u32..100_000, 1..=4)) {
            let text_a = a.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
            let text_b = b.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
            let va: Version = text_a.parse().unwrap();
            let vb: Version = text_b.parse().unwrap();
            let pad = |mut p: Vec<u32>| { p.resize(4, 0); p };
            prop_assert_eq!(va.cmp(&vb), pad(a).cmp(&pad(b)));
            prop_assert_eq!(va.to_string(), text_a);
        }
    }
}
