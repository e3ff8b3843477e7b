//! Carrying out plans: the only stage that changes the managed tree.

mod commands;
mod error;
mod execute;

pub use error::ApplyError;
pub use execute::{Applied, apply_plan};
