//! Carrying out plans: the only stage that changes the managed tree.

mod commands;
mod error;
mod execute;
mod firewall;
mod preflight;

pub use error::ApplyError;
pub use execute::{Applied, apply_plan};
pub use firewall::roll_back_firewall;
pub use preflight::preflight;
