//! The nftables backend: one `inet` table per app, named `mxharden_<name>`,
//! replaced in one transaction by loading its file with `nft -f`.
//!
//! The file declares the table, deletes it and defines it again, because
//! nftables 1.0.6 (Debian 12) has no `destroy table`: declaring first makes
//! the delete succeed on a first load, and `nft -f` applies the whole file
//! as one transaction.

use std::process::Command;

use crate::command::{self, find_program, require_program};
use crate::error::FirewallError;

fn nft() -> Result<std::path::PathBuf, FirewallError> {
    require_program("nft", "nftables")
}

/// Runs `nft -c -f` on `rules`. On a `--root` tree (`live` false) the
/// check runs in a new, empty network namespace, so it never reads the
/// host's rules. Returns `Ok(Err(reason))` when the check cannot run here.
pub fn check(rules: &str, live: bool) -> Result<Result<(), String>, FirewallError> {
    let Some(nft) = find_program("nft") else {
        if live {
            nft()?;
        }
        return Ok(Err("nft is not installed".to_owned()));
    };
    if !command::is_root() {
        return Ok(Err("nft -c needs root".to_owned()));
    }
    let (_folder, path) = command::private_file("rules.nft", rules)?;
    let mut check = in_new_netns_unless(live, &nft)?;
    check.arg("-c").arg("-f").arg(&path);
    let finished = command::output(&mut check)?;
    if !finished.success {
        return Err(FirewallError::CheckFailed {
            tool: "nft -c".to_owned(),
            what: "nftables rules".to_owned(),
            output: format!("{}{}", finished.stderr, finished.stdout).trim().to_owned(),
        });
    }
    Ok(Ok(()))
}

/// Builds a command that runs `program` in the current network namespace
/// when `live`, or in a new, empty one otherwise.
fn in_new_netns_unless(live: bool, program: &std::path::Path) -> Result<Command, FirewallError> {
    if live {
        return Ok(Command::new(program));
    }
    let unshare = require_program("unshare", "util-linux")?;
    let mut command = Command::new(unshare);
    command.arg("--net").arg("--").arg(program);
    Ok(command)
}

/// Returns the table as `nft -s list table` prints it after loading
/// `rules` into a new, empty network namespace: the form in which the live
/// table is compared, without counters and comments.
pub fn canonical(rules: &str, table: &str) -> Result<String, FirewallError> {
    let nft = nft()?;
    let unshare = require_program("unshare", "util-linux")?;
    let (_folder, path) = command::private_file("rules.nft", rules)?;
    // Both commands must run in the same new namespace, so a shell joins
    // them; the paths and the table name come in as positional parameters.
    let mut load_and_list = Command::new(unshare);
    load_and_list
        .args(["--net", "--", "sh", "-c", r#""$1" -f "$2" && "$1" -s list table inet "$3""#, "sh"])
        .arg(&nft)
        .arg(&path)
        .arg(table);
    command::run(&mut load_and_list)
}

/// Returns the live table as `nft -s list table` prints it, or `None`
/// when the table does not exist.
pub fn live_table(table: &str) -> Result<Option<String>, FirewallError> {
    let nft = nft()?;
    let finished = command::output(Command::new(nft).args(["-s", "list", "table", "inet", table]))?;
    if finished.success {
        return Ok(Some(finished.stdout));
    }
    if finished.stderr.contains("No such file or directory") {
        return Ok(None);
    }
    Err(FirewallError::Command {
        command: format!("nft -s list table inet {table}"),
        output: finished.stderr,
    })
}

/// Loads a rules file with `nft -f`, which replaces the app's table in one transaction.
pub fn load(path: &std::path::Path) -> Result<(), FirewallError> {
    command::run(Command::new(nft()?).arg("-f").arg(path)).map(drop)
}

/// Puts back the table as `previous` lists it, or deletes the table when
/// it did not exist before.
pub fn restore(table: &str, previous: Option<&str>) -> Result<(), FirewallError> {
    match previous {
        Some(text) => {
            let file = format!("table inet {table}\ndelete table inet {table}\n{text}");
            let (_folder, path) = command::private_file("restore.nft", &file)?;
            load(&path)
        }
        None => delete(table),
    }
}

/// Deletes the table when it exists.
pub fn delete(table: &str) -> Result<(), FirewallError> {
    if live_table(table)?.is_none() {
        return Ok(());
    }
    command::run(Command::new(nft()?).args(["delete", "table", "inet", table])).map(drop)
}

/// Returns the live ruleset as `nft -j list ruleset` prints it.
pub fn ruleset_json() -> Result<serde_json::Value, FirewallError> {
    let text = command::run(Command::new(nft()?).args(["-j", "list", "ruleset"]))?;
    serde_json::from_str(&text).map_err(|e| FirewallError::Command {
        command: "nft -j list ruleset".to_owned(),
        output: format!("the output is not JSON: {e}"),
    })
}
