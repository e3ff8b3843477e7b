//! Finding container engines that publish the app's runtime port.
//!
//! Docker and Podman publish a port with a DNAT rule in a `nat` table's
//! prerouting path. Packets to such a port are rewritten to the container's
//! address before the INPUT hook and then forwarded, so no INPUT rule of any
//! backend filters them.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

use crate::command::{self, find_program};
use crate::error::FirewallError;

/// A NAT rule that redirects packets for the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Location of the rule, e.g. `nftables table ip nat, chain DOCKER`.
    pub location: String,
    /// The engine that the chain name points to, e.g. `Docker`.
    pub engine: &'static str,
}

fn engine_of(chain: &str, table: &str) -> &'static str {
    let names = format!("{chain} {table}").to_ascii_lowercase();
    if names.contains("docker") {
        "Docker"
    } else if names.contains("netavark") || names.contains("cni-") || names.contains("podman") {
        "Podman"
    } else {
        "a container engine or another NAT rule"
    }
}

/// Tells whether an nft JSON value matched against `tcp dport` covers `port`.
fn value_covers(value: &Value, port: u16) -> bool {
    match value {
        Value::Number(number) => number.as_u64() == Some(u64::from(port)),
        Value::Object(object) => {
            if let Some(Value::Array(range)) = object.get("range") {
                let bound = |i: usize| range.get(i).and_then(Value::as_u64);
                return matches!((bound(0), bound(1)), (Some(low), Some(high)) if low <= u64::from(port) && u64::from(port) <= high);
            }
            object.get("set").is_some_and(|set| value_covers(set, port))
        }
        Value::Array(items) => items.iter().any(|item| value_covers(item, port)),
        _ => false,
    }
}

fn matches_tcp_dport(expression: &Value, port: u16) -> bool {
    let Some(found) = expression.get("match") else {
        return false;
    };
    let is_dport = found
        .pointer("/left/payload")
        .is_some_and(|payload| payload.get("protocol") == Some(&Value::from("tcp")) && payload.get("field") == Some(&Value::from("dport")));
    let op = found.get("op").and_then(Value::as_str).unwrap_or("==");
    is_dport && (op == "==" || op == "in") && found.get("right").is_some_and(|right| value_covers(right, port))
}

/// Finds NAT rules for `port` in the output of `nft -j list ruleset`. Such a
/// rule is in a table that has a `nat` base chain and matches `tcp dport` on
/// the port. It rewrites the destination (`dnat`, `redirect`), or jumps to a
/// chain that may, as Podman's netavark does.
pub fn publications_in_ruleset(ruleset: &Value, port: u16) -> Vec<Publication> {
    let items = ruleset.get("nftables").and_then(Value::as_array).cloned().unwrap_or_default();
    let nat_tables: BTreeSet<(String, String)> = items
        .iter()
        .filter_map(|item| item.get("chain"))
        .filter(|chain| chain.get("type").and_then(Value::as_str) == Some("nat"))
        .filter_map(|chain| Some((chain.get("family")?.as_str()?.to_owned(), chain.get("table")?.as_str()?.to_owned())))
        .collect();
    let mut found = Vec::new();
    for rule in items.iter().filter_map(|item| item.get("rule")) {
        let text = |key: &str| rule.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (family, table, chain) = (text("family"), text("table"), text("chain"));
        if !nat_tables.contains(&(family.clone(), table.clone())) {
            continue;
        }
        let expressions = rule.get("expr").and_then(Value::as_array).cloned().unwrap_or_default();
        let matches_port = expressions.iter().any(|e| matches_tcp_dport(e, port));
        let redirects = expressions
            .iter()
            .any(|e| ["dnat", "redirect", "jump", "goto"].iter().any(|key| e.get(key).is_some()));
        if matches_port && redirects {
            found.push(Publication {
                location: format!("nftables table {family} {table}, chain {chain}"),
                engine: engine_of(&chain, &table),
            });
        }
    }
    found
}

/// Finds DNAT rules for `port` in the output of `iptables-save -t nat`.
pub fn publications_in_iptables_save(text: &str, port: u16, source: &str) -> Vec<Publication> {
    let mut found = Vec::new();
    for line in text.lines().filter(|line| line.starts_with("-A ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let chain = words.get(1).copied().unwrap_or_default();
        let dnat = words.windows(2).any(|pair| pair[0] == "-j" && (pair[1] == "DNAT" || pair[1] == "REDIRECT"));
        let covers = words.windows(2).any(|pair| {
            (pair[0] == "--dport" || pair[0] == "--dports")
                && pair[1].split(',').any(|item| match item.split_once(':') {
                    Some((low, high)) => low.parse::<u16>().is_ok_and(|low| low <= port) && high.parse::<u16>().is_ok_and(|high| port <= high),
                    None => item.parse::<u16>() == Ok(port),
                })
        });
        if dnat && covers {
            found.push(Publication {
                location: format!("{source} table nat, chain {chain}"),
                engine: engine_of(chain, "nat"),
            });
        }
    }
    found
}

/// Finds every NAT rule on the live host that publishes `port`: in the
/// nftables ruleset (which includes iptables-nft's rules) and, when the
/// legacy iptables tools are installed, in the legacy tables.
pub fn live_publications(port: u16) -> Result<Vec<Publication>, FirewallError> {
    let mut found = Vec::new();
    if find_program("nft").is_some() {
        found.extend(publications_in_ruleset(&crate::nftables::ruleset_json()?, port));
    }
    for (program, source) in [("iptables-legacy-save", "iptables-legacy"), ("ip6tables-legacy-save", "ip6tables-legacy")] {
        if let Some(path) = find_program(program) {
            let finished = command::output(Command::new(path).args(["-t", "nat"]))?;
            if finished.success {
                found.extend(publications_in_iptables_save(&finished.stdout, port, source));
            }
        }
    }
    Ok(found)
}

/// Fails when a container engine publishes `port`, explaining why the
/// firewall cannot protect it.
pub fn reject_published(port: u16, publications: &[Publication]) -> Result<(), FirewallError> {
    let Some(first) = publications.first() else {
        return Ok(());
    };
    let places: Vec<String> = publications.iter().map(|p| format!("{} ({})", p.location, p.engine)).collect();
    Err(FirewallError::Conflict(format!(
        "port {port} is published by {engine}: a NAT rule in {places} rewrites packets for it before the INPUT hook, \
         so no host firewall rule can restrict who reaches the runtime. Publish the container on 127.0.0.1 only \
         (docker run -p 127.0.0.1:{port}:...), or choose another runtime port",
        engine = first.engine,
        places = places.join("; "),
    )))
}
