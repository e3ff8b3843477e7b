//! The iptables backend: one chain per app, `MXH-<NAME>`, in the `filter`
//! table of iptables and of ip6tables, jumped to from the top of `INPUT`.
//!
//! `iptables-restore --noflush` replaces the chain in one commit: declaring
//! an existing user-defined chain in a restore file flushes it, and no other
//! chain is touched. The chain only drops and returns, so the host's own
//! rules in `INPUT` still decide about every packet it lets through.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::{self, find_program, require_program};
use crate::error::FirewallError;

/// The two families, with their programs.
const FAMILIES: [Family; 2] = [
    Family {
        label: "iptables",
        list: "iptables",
        restore: "iptables-restore",
    },
    Family {
        label: "ip6tables",
        list: "ip6tables",
        restore: "ip6tables-restore",
    },
];

#[derive(Clone, Copy)]
struct Family {
    label: &'static str,
    list: &'static str,
    restore: &'static str,
}

fn program(name: &str) -> Result<PathBuf, FirewallError> {
    require_program(name, "iptables")
}

/// Runs `iptables-restore --test --noflush` and `ip6tables-restore --test
/// --noflush` on the two files. On a `--root` tree (`live` false) each
/// check runs in a new, empty network namespace. Returns `Ok(Err(reason))`
/// when the check cannot run here.
pub fn check(rules_v4: &str, rules_v6: &str, live: bool) -> Result<Result<(), String>, FirewallError> {
    if find_program("iptables-restore").is_none() {
        if live {
            program("iptables-restore")?;
        }
        return Ok(Err("iptables-restore is not installed".to_owned()));
    }
    if !command::is_root() {
        return Ok(Err("iptables-restore --test needs root".to_owned()));
    }
    for (family, rules) in FAMILIES.iter().zip([rules_v4, rules_v6]) {
        let (_folder, path) = command::private_file("rules", rules)?;
        let restore = program(family.restore)?;
        let mut check = if live {
            Command::new(&restore)
        } else {
            let mut command = Command::new(require_program("unshare", "util-linux")?);
            command.arg("--net").arg("--").arg(&restore);
            command
        };
        check.args(["--test", "--noflush"]).arg(&path);
        let finished = command::output(&mut check)?;
        if !finished.success {
            return Err(FirewallError::CheckFailed {
                tool: format!("{} --test", family.restore),
                what: format!("{} rules", family.label),
                output: format!("{}{}", finished.stderr, finished.stdout).trim().to_owned(),
            });
        }
    }
    Ok(Ok(()))
}

/// Shell code that prints the chain `$2` and its jump from INPUT for the
/// listing program `$1`, in `iptables -S` form. It prints nothing when the
/// chain is missing.
const LIST_SCRIPT: &str = r#""$1" -w -S "$2" 2>/dev/null || exit 0; if "$1" -w -C INPUT -j "$2" 2>/dev/null; then echo "-A INPUT -j $2"; fi"#;

fn listing(family: &Family, chain: &str, wrapper: Option<&Path>) -> Result<String, FirewallError> {
    let list = program(family.list)?;
    let mut script = match wrapper {
        Some(unshare) => {
            let mut command = Command::new(unshare);
            command.args(["--net", "--"]);
            command.arg("sh");
            command
        }
        None => Command::new("sh"),
    };
    script.args(["-c", LIST_SCRIPT, "sh"]).arg(&list).arg(chain);
    command::run(&mut script)
}

fn join_listings(parts: [String; 2]) -> Option<String> {
    if parts.iter().all(|part| part.trim().is_empty()) {
        return None;
    }
    let mut text = String::new();
    for (family, part) in FAMILIES.iter().zip(parts) {
        text.push_str(&format!("# {}\n{part}", family.label));
    }
    Some(text)
}

/// Returns the live chain and its jump from INPUT in both families, in
/// `iptables -S` form, or `None` when neither family has the chain.
pub fn live_chains(chain: &str) -> Result<Option<String>, FirewallError> {
    let parts = [listing(&FAMILIES[0], chain, None)?, listing(&FAMILIES[1], chain, None)?];
    Ok(join_listings(parts))
}

/// Returns the listing that [`live_chains`] would print after loading the
/// two files into a new, empty network namespace.
pub fn canonical(rules_v4: &str, rules_v6: &str, chain: &str) -> Result<String, FirewallError> {
    let unshare = require_program("unshare", "util-linux")?;
    let mut parts = Vec::new();
    for (family, rules) in FAMILIES.iter().zip([rules_v4, rules_v6]) {
        let (_folder, path) = command::private_file("rules", rules)?;
        // Loading and listing must share the new namespace, so one shell runs both.
        let load_list = r#""$3" -w --noflush "$4" && "$1" -w -I INPUT 1 -j "$2" && "$1" -w -S "$2" && echo "-A INPUT -j $2""#;
        let mut command = Command::new(&unshare);
        command
            .args(["--net", "--", "sh", "-c", load_list, "sh"])
            .arg(program(family.list)?)
            .arg(chain)
            .arg(program(family.restore)?)
            .arg(&path);
        parts.push(command::run(&mut command)?);
    }
    let parts: [String; 2] = parts.try_into().expect("two families");
    Ok(join_listings(parts).unwrap_or_default())
}

fn ensure_jump(family: &Family, chain: &str) -> Result<(), FirewallError> {
    let list = program(family.list)?;
    let present = command::output(Command::new(&list).args(["-w", "-C", "INPUT", "-j", chain]))?.success;
    if !present {
        command::run(Command::new(&list).args(["-w", "-I", "INPUT", "1", "-j", chain]))?;
    }
    Ok(())
}

/// Loads the IPv4 and IPv6 files (in that order) and adds the jumps from
/// INPUT that are missing.
pub fn load(chain: &str, files: &[PathBuf]) -> Result<(), FirewallError> {
    for (family, file) in FAMILIES.iter().zip(files) {
        command::run(Command::new(program(family.restore)?).args(["-w", "--noflush"]).arg(file))?;
        ensure_jump(family, chain)?;
    }
    Ok(())
}

/// Deletes the jumps from INPUT and the chain in both families; a missing
/// chain is not an error.
pub fn delete(chain: &str) -> Result<(), FirewallError> {
    for family in &FAMILIES {
        let list = program(family.list)?;
        while command::output(Command::new(&list).args(["-w", "-C", "INPUT", "-j", chain]))?.success {
            command::run(Command::new(&list).args(["-w", "-D", "INPUT", "-j", chain]))?;
        }
        if command::output(Command::new(&list).args(["-w", "-S", chain]))?.success {
            command::run(Command::new(&list).args(["-w", "-F", chain]))?;
            command::run(Command::new(&list).args(["-w", "-X", chain]))?;
        }
    }
    Ok(())
}

/// Puts back the chains as `previous` (a [`live_chains`] listing) shows
/// them, or deletes them when there were none.
pub fn restore(chain: &str, previous: Option<&str>) -> Result<(), FirewallError> {
    let Some(previous) = previous else {
        return delete(chain);
    };
    delete(chain)?;
    let mut sections = previous.split("# ").filter(|s| !s.is_empty());
    for family in &FAMILIES {
        let section = sections.next().unwrap_or_default();
        let lines: Vec<&str> = section.lines().skip(1).collect();
        if !lines.iter().any(|line| *line == format!("-N {chain}")) {
            continue;
        }
        let mut file = format!("*filter\n:{chain} - [0:0]\n");
        for line in lines.iter().filter(|line| line.starts_with(&format!("-A {chain} "))) {
            file.push_str(line);
            file.push('\n');
        }
        file.push_str("COMMIT\n");
        let (_folder, path) = command::private_file("restore", &file)?;
        command::run(Command::new(program(family.restore)?).args(["-w", "--noflush"]).arg(&path))?;
        if lines.iter().any(|line| *line == format!("-A INPUT -j {chain}")) {
            ensure_jump(family, chain)?;
        }
    }
    Ok(())
}
