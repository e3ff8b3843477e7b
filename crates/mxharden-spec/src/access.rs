//! Per-path access rules of the proxy: resolving them and the checks that
//! need more than one rule or field.

use std::path::Path;

use ipnet::IpNet;

use crate::error::{InputError, Position};
use crate::model::{self, ProxyKind, Satisfy};
use crate::values::{AbsPath, PathPrefix};

/// Maximum number of access rules per app.
const MAX_RULES: usize = 64;

/// First path segments that the proxy serves from its own folders, so a
/// rule there would need a different kind of location. `/` fences them.
const RESERVED_SEGMENTS: &[&str] = &["index.html", "login.html", "mxclientsystem"];

/// One access rule with its defaults filled in.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccessRule {
    /// The fenced path; covers the path itself and everything beneath it.
    pub prefix: PathPrefix,
    /// Client networks that pass the address check; empty when the rule
    /// has none.
    pub allow_from: Vec<IpNet>,
    /// CA file that client certificates must verify against.
    pub client_certificate: Option<AbsPath>,
    /// htpasswd file for HTTP basic authentication.
    pub basic_auth: Option<AbsPath>,
    /// Combination of the checks: `all` or `any`.
    pub satisfy: Satisfy,
    /// Field path of the rule, e.g. `app.proxy.access[0]`.
    #[serde(skip)]
    pub field: String,
    /// Position of `client_certificate` in the desired-state file, for
    /// errors about the file.
    #[serde(skip)]
    pub client_certificate_position: Option<Position>,
    /// Position of `basic_auth` in the desired-state file, for errors
    /// about the file.
    #[serde(skip)]
    pub basic_auth_position: Option<Position>,
}

/// Resolves and checks the access rules of one app.
pub(crate) fn resolve_access(source: &Path, kind: ProxyKind, rules: &[model::AccessRule], errors: &mut Vec<InputError>) -> Vec<AccessRule> {
    let at = |location| Position::at(source, location);
    let mut resolved: Vec<AccessRule> = Vec::new();
    let mut seen_prefixes: Vec<(String, Position)> = Vec::new();
    let mut client_ca: Option<(AbsPath, Position, String)> = None;

    if rules.len() > MAX_RULES {
        let position = at(rules[MAX_RULES].prefix.referenced);
        errors.push(InputError::new(&position, "app.proxy.access", format!("at most {MAX_RULES} access rules are allowed; merge rules that share their checks")));
    }

    for (index, rule) in rules.iter().enumerate() {
        let field = format!("app.proxy.access[{index}]");
        let prefix = rule.prefix.value.clone();
        let prefix_position = at(rule.prefix.referenced);
        let before = errors.len();

        if RESERVED_SEGMENTS.contains(&prefix.first_segment()) {
            errors.push(InputError::new(
                &prefix_position,
                &format!("{field}.prefix"),
                format!("{prefix} is served by the proxy from its own files and cannot have a rule of its own; fence the whole site with prefix /"),
            ));
        }
        if let Some((_, earlier)) = seen_prefixes.iter().find(|(base, _)| base == prefix.base()) {
            errors.push(
                InputError::new(&prefix_position, &format!("{field}.prefix"), format!("{prefix} has a rule already; merge the two rules"))
                    .with_related(earlier),
            );
        }
        seen_prefixes.push((prefix.base().to_owned(), prefix_position.clone()));

        let allow_from = match &rule.allow_from {
            Some(networks) => {
                let position = at(networks.referenced);
                check_allow_from(&networks.value, &position, &format!("{field}.allow_from"), errors);
                if let (Some(v6), ProxyKind::Iis) = (networks.value.iter().find(|n| matches!(n, IpNet::V6(_))), kind) {
                    // IIS documents ipSecurity ranges for IPv4 only.
                    errors.push(InputError::new(
                        &position,
                        &format!("{field}.allow_from"),
                        format!("{v6}: IIS's ipSecurity takes IPv4 networks only; list IPv4 networks with kind iis"),
                    ));
                }
                networks.value.clone()
            }
            None => Vec::new(),
        };
        let client_certificate = rule.client_certificate.as_ref().map(|ca| ca.value.clone());
        let basic_auth = rule.basic_auth.as_ref().map(|file| file.value.clone());
        if allow_from.is_empty() && client_certificate.is_none() && basic_auth.is_none() {
            errors.push(InputError::new(
                &prefix_position,
                &field,
                "the rule sets no check; add allow_from, client_certificate or basic_auth",
            ));
        }

        if let Some(ca) = &rule.client_certificate {
            let position = at(ca.referenced);
            let ca_field = format!("{field}.client_certificate");
            match &client_ca {
                Some((first, first_position, first_field)) if *first != ca.value => errors.push(
                    InputError::new(
                        &position,
                        &ca_field,
                        format!("{} differs from {first} in {first_field}; nginx verifies client certificates once per server, so every rule of an app must name the same CA file", ca.value),
                    )
                    .with_related(first_position),
                ),
                Some(_) => {}
                None => client_ca = Some((ca.value.clone(), position.clone(), ca_field.clone())),
            }
            if kind == ProxyKind::Iis {
                errors.push(InputError::new(
                    &position,
                    &ca_field,
                    "client certificates are not supported with kind iis: IIS checks them against the Windows host's trusted roots, so web.config cannot limit them to this CA",
                ));
            }
        }
        if let (Some(file), ProxyKind::Iis) = (&rule.basic_auth, kind) {
            errors.push(InputError::new(
                &at(file.referenced),
                &format!("{field}.basic_auth"),
                "basic authentication is not supported with kind iis: IIS checks basic credentials against Windows accounts, not an htpasswd file",
            ));
        }

        if errors.len() > before {
            continue;
        }
        resolved.push(AccessRule {
            prefix,
            allow_from,
            client_certificate,
            basic_auth,
            satisfy: rule.satisfy.as_ref().map(|s| s.value).unwrap_or_default(),
            field,
            client_certificate_position: rule.client_certificate.as_ref().map(|ca| at(ca.referenced)),
            basic_auth_position: rule.basic_auth.as_ref().map(|file| at(file.referenced)),
        });
    }
    resolved
}

fn check_allow_from(networks: &[IpNet], position: &Position, field: &str, errors: &mut Vec<InputError>) {
    if networks.is_empty() {
        errors.push(InputError::new(position, field, "the list is empty; list the client networks, or leave allow_from out"));
    }
    for network in networks {
        if network.prefix_len() == 0 {
            errors.push(InputError::new(position, field, format!("{network} admits every client; list the networks that may pass")));
        }
        if network.trunc() != *network {
            errors.push(InputError::new(position, field, format!("{network} has host bits set; write the network as {}", network.trunc())));
        }
    }
}
