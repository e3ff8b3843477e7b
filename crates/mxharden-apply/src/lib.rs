//! Carrying out plans: the only stage that changes the managed tree.

mod commands;
mod error;
mod execute;
mod preflight;

pub use error::ApplyError;
pub use execute::{Applied, apply_plan};
pub use preflight::preflight;
