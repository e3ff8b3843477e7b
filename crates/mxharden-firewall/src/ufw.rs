//! The ufw backend: rules added with ufw's own commands, so ufw stays the
//! manager of the host's rules and keeps them across reboots itself.
//!
//! Each rule carries the comment `mxharden-<name>`. The app's rules are the
//! first ones of each family in `/etc/ufw/user.rules` and `user6.rules`,
//! because ufw stops at the first rule that matches. Their order is the
//! proxies' allow rules, then the runtime port's deny, then the admin port's. Loopback needs no rule, because ufw's `before.rules` accept every
//! packet on `lo` before the user rules. mxharden never enables ufw, since
//! that would set ufw's default-deny policy for the whole host.

use std::net::IpAddr;
use std::process::Command;

use mxharden_fs::RootDir;
use mxharden_spec::AppSpec;
use mxharden_spec::values::IpNet;

use crate::command::{self, require_program};
use crate::error::FirewallError;

/// ufw's rule files, IPv4 then IPv6.
const RULE_FILES: [&str; 2] = ["/etc/ufw/user.rules", "/etc/ufw/user6.rules"];

/// Largest ufw rule file read, in bytes.
const FILE_LIMIT: u64 = 4 * 1024 * 1024;

/// The marker before each rule in ufw's rule files.
const TUPLE_MARK: &str = "### tuple ### ";

fn ufw() -> Result<std::path::PathBuf, FirewallError> {
    require_program("ufw", "ufw")
}

/// Returns the comment that marks the app's rules.
pub fn comment(app: &AppSpec) -> String {
    format!("mxharden-{}", app.name)
}

fn hex(text: &str) -> String {
    text.bytes().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

fn any(v6: bool) -> &'static str {
    if v6 { "::/0" } else { "0.0.0.0/0" }
}

/// Writes a network as ufw stores it: a single host without its prefix length.
fn ufw_address(network: &IpNet) -> String {
    if network.prefix_len() == network.max_prefix_len() { network.addr().to_string() } else { network.to_string() }
}

/// Returns the app's rules as ufw's rule files store them (`### tuple ###`
/// lines without the marker), IPv4 first, each family in match order.
pub fn desired_tuples(app: &AppSpec) -> Vec<String> {
    let marker = format!("comment={}", hex(&comment(app)));
    let runtime = app.runtime_port.get();
    let admin = app.admin_port.get();
    let mut tuples = Vec::new();
    for v6 in [false, true] {
        for network in app.remote_addresses.iter().filter(|n| matches!(n.addr(), IpAddr::V6(_)) == v6) {
            tuples.push(format!("allow tcp {runtime} {} any {} in {marker}", any(v6), ufw_address(network)));
        }
        for port in [runtime, admin] {
            tuples.push(format!("deny tcp {port} {dst} any {dst} in {marker}", dst = any(v6)));
        }
    }
    tuples
}

/// Returns every rule in ufw's rule files under `root`, per family.
pub fn live_tuples(root: &RootDir) -> Result<[Vec<String>; 2], FirewallError> {
    let mut families = [Vec::new(), Vec::new()];
    for (index, file) in RULE_FILES.iter().enumerate() {
        let Some(bytes) = root.read_file(file, FILE_LIMIT)? else {
            continue;
        };
        families[index] = String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| line.strip_prefix(TUPLE_MARK))
            .map(str::to_owned)
            .collect();
    }
    Ok(families)
}

fn is_ours(tuple: &str, marker: &str) -> bool {
    tuple.split_whitespace().any(|word| word == marker)
}

fn is_v6(tuple: &str) -> bool {
    tuple.split_whitespace().nth(3) == Some("::/0")
}

/// Returns ufw's rules as they are (`live`) and as they should be
/// (`desired`): the app's rules first in each family, then every other
/// rule in its current order. Each listing has a `# user.rules` and a
/// `# user6.rules` section.
pub fn listings(app: &AppSpec, live: &[Vec<String>; 2]) -> (String, String) {
    let marker = format!("comment={}", hex(&comment(app)));
    let desired = desired_tuples(app);
    let mut current_text = String::new();
    let mut desired_text = String::new();
    for (index, file) in RULE_FILES.iter().enumerate() {
        let name = file.rsplit('/').next().unwrap_or(file);
        current_text.push_str(&format!("# {name}\n"));
        desired_text.push_str(&format!("# {name}\n"));
        for tuple in &live[index] {
            current_text.push_str(&format!("{tuple}\n"));
        }
        for tuple in desired.iter().filter(|t| is_v6(t) == (index == 1)) {
            desired_text.push_str(&format!("{tuple}\n"));
        }
        for tuple in live[index].iter().filter(|t| !is_ours(t, &marker)) {
            desired_text.push_str(&format!("{tuple}\n"));
        }
    }
    (current_text, desired_text)
}

/// Fails when another rule has the same protocol, port and addresses as
/// one of the app's rules. ufw keeps one rule per such tuple, so adding the
/// app's rule would change the other rule's action in place, or be skipped
/// when the actions match. Either way the app's rule would not be first,
/// and the other rule would be lost on removal.
pub fn reject_conflicts(app: &AppSpec, live: &[Vec<String>; 2]) -> Result<(), FirewallError> {
    let marker = format!("comment={}", hex(&comment(app)));
    let key = |tuple: &str| tuple.split_whitespace().skip(1).take(6).collect::<Vec<_>>().join(" ");
    let desired: Vec<String> = desired_tuples(app).iter().map(|t| key(t)).collect();
    for tuple in live.iter().flatten().filter(|t| !is_ours(t, &marker)) {
        if desired.contains(&key(tuple)) {
            let arguments = rule_arguments("delete", tuple).map(|a| a.join(" ")).unwrap_or_else(|| tuple.clone());
            return Err(FirewallError::Conflict(format!(
                "the ufw rule {tuple:?} covers the same port and addresses as a rule that mxharden adds, and ufw keeps one rule for them: \
                 delete it with `ufw {arguments}` and run again"
            )));
        }
    }
    Ok(())
}

/// Builds the ufw arguments that add (`prepend`) or delete a rule stored as `tuple`.
fn rule_arguments(verb: &str, tuple: &str) -> Option<Vec<String>> {
    let words: Vec<&str> = tuple.split_whitespace().collect();
    let [action, protocol, port, destination, _source_port, source, direction, rest @ ..] = words.as_slice() else {
        return None;
    };
    if *direction != "in" {
        return None;
    }
    let mut arguments: Vec<String> = [verb, action, "proto", protocol, "from", source, "to", destination, "port", port]
        .iter()
        .map(|word| (*word).to_owned())
        .collect();
    if verb == "prepend" {
        if let Some(text) = rest.iter().find_map(|word| word.strip_prefix("comment=")).and_then(unhex) {
            arguments.extend(["comment".to_owned(), text]);
        }
    }
    Some(arguments)
}

fn run_ufw(arguments: &[String]) -> Result<(), FirewallError> {
    command::run(Command::new(ufw()?).args(arguments)).map(drop)
}

/// Runs `ufw --dry-run prepend` for each rule, ufw's own check of a rule.
pub fn check(app: &AppSpec) -> Result<(), FirewallError> {
    for tuple in desired_tuples(app) {
        let arguments = rule_arguments("prepend", &tuple).expect("desired rules are well formed");
        let finished = command::output(Command::new(ufw()?).arg("--dry-run").args(&arguments))?;
        if !finished.success {
            return Err(FirewallError::CheckFailed {
                tool: "ufw --dry-run".to_owned(),
                what: format!("ufw rule {}", arguments.join(" ")),
                output: finished.stderr,
            });
        }
    }
    Ok(())
}

/// Replaces the rules marked with `marker_comment` by `tuples`: deletes
/// every marked rule, then prepends `tuples` so they end up first, in order.
pub fn replace(root: &RootDir, marker_comment: &str, tuples: &[String]) -> Result<(), FirewallError> {
    delete_marked(root, marker_comment)?;
    for tuple in tuples.iter().rev() {
        let arguments = rule_arguments("prepend", tuple).ok_or_else(|| FirewallError::Conflict(format!("cannot turn the ufw rule {tuple:?} into a command")))?;
        run_ufw(&arguments)?;
    }
    Ok(())
}

/// Deletes every ufw rule marked with `marker_comment`.
pub fn delete_marked(root: &RootDir, marker_comment: &str) -> Result<(), FirewallError> {
    let marker = format!("comment={}", hex(marker_comment));
    for tuple in live_tuples(root)?.iter().flatten().filter(|t| is_ours(t, &marker)) {
        let arguments = rule_arguments("delete", tuple).ok_or_else(|| FirewallError::Conflict(format!("cannot turn the ufw rule {tuple:?} into a command")))?;
        run_ufw(&arguments)?;
    }
    Ok(())
}

/// Returns the rules marked with `marker_comment`, IPv4 first, or `None` when there are none.
pub fn marked_tuples(root: &RootDir, marker_comment: &str) -> Result<Option<Vec<String>>, FirewallError> {
    let marker = format!("comment={}", hex(marker_comment));
    let marked: Vec<String> = live_tuples(root)?.into_iter().flatten().filter(|t| is_ours(t, &marker)).collect();
    Ok((!marked.is_empty()).then_some(marked))
}
