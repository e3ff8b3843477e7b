//! Copies of the repository's example host tree for tests that run mxharden with `--root`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Returns the repository's top folder.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Returns the text of `examples/app.yaml`, the desired state for `examples/root`.
pub fn example_spec() -> String {
    fs::read_to_string(repository_root().join("examples/app.yaml")).expect("read examples/app.yaml")
}

/// Copies the folders and regular files beneath `from` to `to`, which must not exist yet,
/// keeping permission bits.
///
/// # Panics
///
/// Panics when an entry cannot be read or written, or when `from` contains an entry that is
/// neither a folder nor a regular file, such as a symbolic link.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir(to).unwrap_or_else(|error| panic!("failed to create {}: {error}", to.display()));
    let entries = fs::read_dir(from).unwrap_or_else(|error| panic!("failed to read {}: {error}", from.display()));
    for entry in entries {
        let entry = entry.expect("read a folder entry");
        let file_type = entry.file_type().expect("read an entry's type");
        let target = to.join(entry.file_name());
        if file_type.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if file_type.is_file() {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|error| panic!("failed to copy {}: {error}", entry.path().display()));
        } else {
            panic!(
                "{} is neither a file nor a folder; copy_tree copies only those",
                entry.path().display()
            );
        }
        let mode = entry.metadata().expect("read an entry's metadata").permissions().mode();
        fs::set_permissions(&target, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|error| panic!("failed to chmod {}: {error}", target.display()));
    }
}
