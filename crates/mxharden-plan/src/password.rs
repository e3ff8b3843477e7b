//! The admin API password: generated once from the OS CSPRNG and kept.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::SysRng;
use rand::TryRng;
use rand::rand_core::UnwrapErr;

use mxharden_render::AdminPassword;

use crate::error::PlanError;

/// Length of a generated password. 48 characters from 62 symbols carry
/// about 285 bits.
pub const GENERATED_LENGTH: usize = 48;

/// Shortest existing password that mxharden keeps instead of replacing.
pub const MIN_KEPT_LENGTH: usize = 32;

/// Origin of this run's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PasswordOrigin {
    /// Kept: it matches the recorded hash.
    Kept,
    /// Found in the m2ee file without a matching record; kept and recorded.
    Adopted,
    /// Newly generated.
    Generated,
}

/// Generates a new password from the OS random source.
pub fn generate() -> Result<AdminPassword, PlanError> {
    // Ask once with error handling, so a missing entropy source is an
    // error here rather than a panic inside the sampler below.
    let mut probe = [0u8; 1];
    SysRng
        .try_fill_bytes(&mut probe)
        .map_err(|e| PlanError::Conflict(format!("the OS random number generator failed: {e}")))?;
    let text = Alphanumeric.sample_string(&mut UnwrapErr(SysRng), GENERATED_LENGTH);
    Ok(AdminPassword::new(text))
}

/// Tells whether `candidate` is strong enough to keep.
pub fn acceptable(candidate: &str) -> bool {
    candidate.chars().count() >= MIN_KEPT_LENGTH
        && candidate.chars().all(|c| c.is_ascii_graphic())
        && candidate != "password"
}

/// Hashes `password` with argon2id and a random salt, as a PHC string.
pub fn hash(password: &AdminPassword) -> Result<String, PlanError> {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PlanError::Conflict(format!("hashing the admin password failed: {e}")))
}

/// Tells whether `password` matches the PHC string `recorded`.
pub fn matches(password: &AdminPassword, recorded: &str) -> bool {
    PasswordHash::new(recorded)
        .map(|parsed| Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// Chooses this run's password from the one in the m2ee file (if any) and
/// the recorded hash (if any).
pub fn choose(existing: Option<AdminPassword>, recorded_hash: Option<&str>) -> Result<(AdminPassword, PasswordOrigin), PlanError> {
    match existing {
        Some(password) if acceptable(password.expose()) => {
            let origin = match recorded_hash {
                Some(hash) if matches(&password, hash) => PasswordOrigin::Kept,
                _ => PasswordOrigin::Adopted,
            };
            Ok((password, origin))
        }
        _ => Ok((generate()?, PasswordOrigin::Generated)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_password_is_long_and_alphanumeric() {
        let password = generate().unwrap();
        assert_eq!(password.expose().len(), GENERATED_LENGTH);
        assert!(password.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(generate().unwrap(), password);
    }

    #[test]
    fn hash_matches_only_its_password() {
        let password = generate().unwrap();
        let recorded = hash(&password).unwrap();
        assert!(recorded.starts_with("$argon2id$"));
        assert!(matches(&password, &recorded));
        assert!(!matches(&generate().unwrap(), &recorded));
    }

    #[test]
    fn choose_keeps_adopts_or_generates() {
        let password = generate().unwrap();
        let recorded = hash(&password).unwrap();
        assert_eq!(choose(Some(password.clone()), Some(&recorded)).unwrap().1, PasswordOrigin::Kept);
        assert_eq!(choose(Some(password.clone()), None).unwrap().1, PasswordOrigin::Adopted);
        let (weak_replaced, origin) = choose(Some(AdminPassword::new("1".into())), Some(&recorded)).unwrap();
        assert_eq!(origin, PasswordOrigin::Generated);
        assert_ne!(weak_replaced, password);
    }
}
