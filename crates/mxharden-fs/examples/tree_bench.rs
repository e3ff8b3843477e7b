//! Generates benchmark trees and runs mxharden's tree pass on them, one pass per process,
//! so that `scripts/bench-tree` can time each pass with GNU time.
//!
//! ```text
//! tree_bench generate DIR FILES   create DIR with FILES empty files, 1,000 per folder
//! tree_bench walk DIR UID GID     count entries that differ from the policy (no change)
//! tree_bench fix DIR UID GID      change every entry that differs from the policy
//! ```
//!
//! The policy is the one apply uses for `model/` and `data/`: owner UID:GID, folders 0700,
//! files without group and other bits.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mxharden_fs::{RootDir, TreePolicy, walk_tree};

/// Files per folder of a generated tree.
const FILES_PER_FOLDER: usize = 1_000;

/// Folders per second-level folder of a generated tree.
const FOLDERS_PER_PARENT: usize = 100;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let result = match arguments.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["generate", dir, files] => parse(files, "FILES").and_then(|files| generate(Path::new(dir), files)),
        ["walk", dir, uid, gid] => run_pass(Path::new(dir), uid, gid, false),
        ["fix", dir, uid, gid] => run_pass(Path::new(dir), uid, gid, true),
        _ => Err("usage: tree_bench generate DIR FILES | walk DIR UID GID | fix DIR UID GID".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tree_bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse<T: std::str::FromStr>(text: &str, name: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("invalid {name} {text:?}: expected a non-negative integer"))
}

/// Creates `dir` with `files` empty files in folders `aNNN/bNNN` of 1,000 files each.
/// Empty files need no data blocks; the tree passes read only metadata.
fn generate(dir: &Path, files: usize) -> Result<(), String> {
    std::fs::create_dir(dir).map_err(|e| format!("{}: create failed: {e}", dir.display()))?;
    let folders = files.div_ceil(FILES_PER_FOLDER);
    for index in 0..folders {
        let folder: PathBuf = dir
            .join(format!("a{:03}", index / FOLDERS_PER_PARENT))
            .join(format!("b{:03}", index % FOLDERS_PER_PARENT));
        std::fs::create_dir_all(&folder).map_err(|e| format!("{}: create failed: {e}", folder.display()))?;
        let count = FILES_PER_FOLDER.min(files - index * FILES_PER_FOLDER);
        for file in 0..count {
            let path = folder.join(format!("f{file:04}"));
            std::fs::File::create(&path).map_err(|e| format!("{}: create failed: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Runs one tree pass over `dir` and prints the counts.
fn run_pass(dir: &Path, uid: &str, gid: &str, fix: bool) -> Result<(), String> {
    let policy = TreePolicy {
        uid: parse(uid, "UID")?,
        gid: parse(gid, "GID")?,
        dir_mode: 0o700,
        file_clear_bits: 0o077,
    };
    let parent = dir.parent().ok_or_else(|| format!("{}: has no parent folder", dir.display()))?;
    let name = dir.file_name().ok_or_else(|| format!("{}: has no file name", dir.display()))?;
    let root = RootDir::open(parent).map_err(|e| e.to_string())?;
    let report = walk_tree(&root, &format!("/{}", name.to_string_lossy()), policy, fix, &mut |_| {}).map_err(|e| e.to_string())?;
    println!(
        "examined {} noncompliant {} skipped {}",
        report.examined,
        report.noncompliant,
        report.skipped.len() as u64 + report.skipped_unlisted
    );
    Ok(())
}
