//! The firewalld backend: a firewalld policy of mxharden's own per app,
//! changed only with `firewall-cmd`, so firewalld stays the manager of the
//! host's rules and keeps them across reboots itself.
//!
//! The policy applies to traffic from every zone to the host itself
//! (`ingress-zones: ANY`, `egress-zones: HOST`) with a negative priority, so
//! it runs before the zones' rules. Its rich rules carry priorities because
//! firewalld otherwise puts every `drop` before every `accept`: the proxies'
//! accepts come first, then a drop of each port. Loopback needs no rule,
//! because firewalld accepts packets on `lo` before any policy or zone.

use std::net::IpAddr;
use std::process::Command;

use mxharden_spec::AppSpec;

use crate::command::{self, require_program};
use crate::error::FirewallError;

/// Priority of the policy; negative priorities run before the zones.
const POLICY_PRIORITY: i32 = -100;

/// Maximum length of a policy name in firewalld 1.3 (`max_policy_name_len`:
/// iptables' 28-character chain names less firewalld's longest chain prefix and suffix).
const MAX_POLICY_NAME: usize = 17;

fn firewall_cmd() -> Result<std::path::PathBuf, FirewallError> {
    require_program("firewall-cmd", "firewalld")
}

/// Returns the app's policy name: `mxh-<name>`, or, when that is longer
/// than firewalld allows, its first 13 characters and a 4-digit checksum of
/// the whole name, so two long app names stay apart.
pub fn policy_name(app: &AppSpec) -> String {
    let full = format!("mxh-{}", app.name);
    if full.len() <= MAX_POLICY_NAME {
        return full;
    }
    let checksum = full.bytes().fold(0u16, |sum, byte| sum.rotate_left(5) ^ u16::from(byte));
    format!("{}{checksum:04x}", &full[..MAX_POLICY_NAME - 4])
}

/// Returns the policy's rich rules in the form `firewall-cmd --list-rich-rules` prints them.
pub fn desired_rules(app: &AppSpec) -> Vec<String> {
    let runtime = app.runtime_port.get();
    let mut rules = Vec::new();
    for network in &app.remote_addresses {
        let family = if matches!(network.addr(), IpAddr::V6(_)) { "ipv6" } else { "ipv4" };
        rules.push(format!(
            r#"rule priority="-32000" family="{family}" source address="{network}" port port="{runtime}" protocol="tcp" accept"#
        ));
    }
    for port in [runtime, app.admin_port.get()] {
        rules.push(format!(r#"rule priority="-31999" port port="{port}" protocol="tcp" drop"#));
    }
    rules
}

/// Returns the policy as the comparison lists it: priority, zones and rich rules.
pub fn desired_listing(app: &AppSpec) -> String {
    listing(POLICY_PRIORITY.to_string().as_str(), "ANY", "HOST", &desired_rules(app))
}

fn listing(priority: &str, ingress: &str, egress: &str, rules: &[String]) -> String {
    let mut sorted = rules.to_vec();
    sorted.sort();
    let mut text = format!("priority: {priority}\ningress-zones: {ingress}\negress-zones: {egress}\nrich rules:\n");
    for rule in sorted {
        text.push_str(&format!("  {rule}\n"));
    }
    text
}

/// Tells whether firewalld is running, with `firewall-cmd --state`.
pub fn running() -> bool {
    let Some(program) = command::find_program("firewall-cmd") else {
        return false;
    };
    command::output(Command::new(program).arg("--state")).is_ok_and(|finished| finished.success)
}

/// Returns the live policy in the form of [`desired_listing`], or `None`
/// when firewalld has no such policy.
pub fn live_policy(name: &str) -> Result<Option<String>, FirewallError> {
    let finished = command::output(Command::new(firewall_cmd()?).arg(format!("--info-policy={name}")))?;
    if !finished.success {
        if finished.stderr.contains("INVALID_POLICY") {
            return Ok(None);
        }
        return Err(FirewallError::Command {
            command: format!("firewall-cmd --info-policy={name}"),
            output: finished.stderr,
        });
    }
    let mut fields = std::collections::BTreeMap::new();
    let mut rules = Vec::new();
    let mut in_rules = false;
    for line in finished.stdout.lines() {
        if in_rules && line.starts_with('\t') {
            rules.push(line.trim().to_owned());
            continue;
        }
        in_rules = false;
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        if key == "rich rules" {
            in_rules = true;
        } else {
            fields.insert(key.to_owned(), value.trim().to_owned());
        }
    }
    let field = |key: &str| fields.get(key).cloned().unwrap_or_default();
    Ok(Some(listing(&field("priority"), &field("ingress-zones"), &field("egress-zones"), &rules)))
}

/// Checks each rich rule with firewalld's own parser, by querying it in
/// the permanent default zone, which changes nothing.
pub fn check(app: &AppSpec) -> Result<(), FirewallError> {
    let program = firewall_cmd()?;
    for rule in desired_rules(app) {
        let finished = command::output(Command::new(&program).args(["--permanent"]).arg(format!("--query-rich-rule={rule}")))?;
        // 0 is "yes" and 1 is "no": both mean that the rule parsed.
        let parsed = finished.success || (finished.stdout.trim() == "no");
        if !parsed {
            return Err(FirewallError::CheckFailed {
                tool: "firewall-cmd --query-rich-rule".to_owned(),
                what: format!("firewalld rich rule {rule}"),
                output: finished.stderr,
            });
        }
    }
    Ok(())
}

fn permanent(name: &str, arguments: &[String]) -> Result<(), FirewallError> {
    let mut command = Command::new(firewall_cmd()?);
    command.arg("--permanent").arg(format!("--policy={name}")).args(arguments);
    command::run(&mut command).map(drop)
}

/// Replaces the policy `name` by one with `rules`, permanently and at
/// runtime: the policy is deleted, created again and firewalld reloaded.
pub fn replace(name: &str, rules: &[String]) -> Result<(), FirewallError> {
    delete_permanent(name)?;
    command::run(Command::new(firewall_cmd()?).args(["--permanent"]).arg(format!("--new-policy={name}")))?;
    // firewall-cmd rejects some of these options together, so each runs alone.
    let mut arguments = vec![
        "--add-ingress-zone=ANY".to_owned(),
        "--add-egress-zone=HOST".to_owned(),
        format!("--set-priority={POLICY_PRIORITY}"),
    ];
    arguments.extend(rules.iter().map(|rule| format!("--add-rich-rule={rule}")));
    for argument in arguments {
        permanent(name, std::slice::from_ref(&argument))?;
    }
    reload()
}

fn delete_permanent(name: &str) -> Result<bool, FirewallError> {
    let program = firewall_cmd()?;
    let exists = command::output(Command::new(&program).args(["--permanent"]).arg(format!("--info-policy={name}")))?.success;
    if exists {
        command::run(Command::new(&program).args(["--permanent"]).arg(format!("--delete-policy={name}")))?;
    }
    Ok(exists)
}

fn reload() -> Result<(), FirewallError> {
    command::run(Command::new(firewall_cmd()?).arg("--reload")).map(drop)
}

/// Deletes the policy, permanently and at runtime; a missing policy is not an error.
pub fn delete(name: &str) -> Result<(), FirewallError> {
    if delete_permanent(name)? {
        reload()?;
    }
    Ok(())
}

/// Puts back the policy as `previous` (a listing) shows its rich rules, or
/// deletes it when there was none.
pub fn restore(name: &str, previous: Option<&str>) -> Result<(), FirewallError> {
    let Some(previous) = previous else {
        return delete(name);
    };
    let rules: Vec<String> = previous.lines().filter_map(|line| line.strip_prefix("  ")).map(str::to_owned).collect();
    replace(name, &rules)
}
