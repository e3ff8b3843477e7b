//! Rendering of every file mxharden generates, from Tera templates and a
//! typed context. Rendering happens in full before anything is written.

pub mod artifacts;
pub mod context;
pub mod engine;
pub mod filters;
pub mod layout;
pub mod ranges;

pub use artifacts::{Artifact, ArtifactKind, Owner, render_app, render_m2ee_main, render_nginx_check_copy};
pub use context::{AdminPassword, RenderContext};
pub use engine::{BUILT_IN_TEMPLATES, Engine, RenderError};
