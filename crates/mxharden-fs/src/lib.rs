//! Link-proof file operations for a program that runs as root over folders
//! that unprivileged users write to.
//!
//! Every path is resolved one component at a time from a directory file
//! descriptor with `O_NOFOLLOW`, so a symbolic link planted at any component
//! makes the operation fail instead of redirecting it. Owner and mode are
//! changed on an opened descriptor after its type was checked, never by path.

mod atomic;
mod error;
mod lock;
mod root;
mod walk;

pub use atomic::{WriteOptions, write_atomic};
pub use error::FsError;
pub use lock::RunLock;
pub use root::{EntryKind, Meta, RootDir};
pub use walk::{TreePolicy, TreeReport, Skipped, walk_tree};
