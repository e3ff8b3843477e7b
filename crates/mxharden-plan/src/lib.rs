//! Observing the host and planning the changes that bring each app to its
//! desired state. Nothing here writes to the managed tree.

pub mod access;
pub mod accounts;
pub mod build;
pub mod certs;
pub mod checks;
pub mod diff;
pub mod error;
pub mod firewall;
pub mod host;
pub mod m2ee;
pub mod password;
pub mod ports;
pub mod runtime;
pub mod state;
pub mod steps;

pub use build::{AppIds, AppPlan, NOLOGIN, PlanOptions, plan_app, tree_policy};
pub use error::PlanError;
pub use host::Host;
pub use steps::{Activation, FileKind, OwnerSpec, Step};
