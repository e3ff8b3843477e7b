//! The typed context that every template renders from.
//!
//! Fields are plain strings, numbers and lists. Optional values are left out
//! of the serialized context instead of being `null`, so a template must test
//! them with `is defined`.

use std::net::IpAddr;

use serde::Serialize;

use mxharden_spec::{AccessRule, AppSpec, FrameAncestors, Satisfy, TlsProfile};

use crate::layout;

/// The admin API password. It has no `Display` and a redacted `Debug`, so it
/// cannot reach a log or message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminPassword(String);

impl AdminPassword {
    /// Wraps a password.
    pub fn new(value: String) -> AdminPassword {
        AdminPassword(value)
    }

    /// Returns the password, for the m2ee file and hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminPassword(<hidden>)")
    }
}

/// Everything a template may use.
#[derive(Debug, Clone, Serialize)]
pub struct RenderContext {
    /// The app and its folders.
    pub app: AppView,
    /// Runtime ports and addresses.
    pub runtime: RuntimeView,
    /// Proxy settings.
    pub proxy: ProxyView,
    /// Per-path access rules of the proxy.
    pub access: AccessView,
    /// Settings that nginx applies to every site on the host.
    pub nginx: NginxHostView,
    /// Firewall settings.
    pub firewall: FirewallView,
    /// systemd settings.
    pub service: ServiceView,
    /// Present only for templates that write the admin password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretView>,
}

/// The app and its folders.
#[derive(Debug, Clone, Serialize)]
pub struct AppView {
    /// App name.
    pub name: String,
    /// `app_base`.
    pub base: String,
    /// Account name.
    pub user: String,
    /// Group name.
    pub group: String,
    /// Home folder of the account.
    pub home: String,
    /// `<base>/model`.
    pub model_dir: String,
    /// `<base>/data`.
    pub data_dir: String,
    /// `<base>/web`.
    pub web_dir: String,
    /// `<home>/.m2ee`.
    pub m2ee_dir: String,
    /// mxharden's m2ee file.
    pub m2ee_include: String,
    /// Folder served at `/mxclientsystem/`: the runtime's own copy for the
    /// deployed version, or `web/mxclientsystem` while no version is known.
    pub mxclientsystem_dir: String,
}

/// Runtime ports and addresses.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeView {
    /// Runtime HTTP port.
    pub port: u16,
    /// Admin API port.
    pub admin_port: u16,
    /// Runtime listen addresses, comma-separated as m2ee-tools expects.
    pub listen: String,
    /// Admin listen addresses, comma-separated.
    pub admin_listen: String,
    /// `host:port` where the proxy reaches the runtime.
    pub upstream: String,
    /// `ApplicationRootUrl`.
    pub root_url: String,
    /// Deployed runtime version, when `model/metadata.json` names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Proxy settings.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyView {
    /// Public host name.
    pub server_name: String,
    /// TLS certificate path.
    pub certificate: String,
    /// TLS key path.
    pub key: String,
    /// Adds `includeSubDomains` to Strict-Transport-Security.
    pub hsts_include_subdomains: bool,
    /// Adds `preload` to Strict-Transport-Security.
    pub hsts_preload: bool,
    /// `X-Frame-Options` value: `SAMEORIGIN` or `DENY`.
    pub frame_options: String,
    /// `Content-Security-Policy` value.
    pub content_security_policy: String,
    /// Further response headers, sorted by name.
    pub headers: Vec<HeaderView>,
    /// Request body limit on `/file`, in MiB.
    pub max_upload_mb: u32,
    /// The same limit in bytes, for IIS.
    pub max_upload_bytes: u64,
    /// Serve `*-doc` paths.
    pub expose_docs: bool,
    /// Serve `/debugger/`.
    pub expose_debugger: bool,
    /// DNS resolvers for OCSP stapling; empty when the certificate names no
    /// OCSP responder, which turns stapling off.
    pub ocsp_resolvers: Vec<String>,
}

/// Per-path access rules, split by how the nginx site applies them.
#[derive(Debug, Clone, Serialize)]
pub struct AccessView {
    /// The rule with prefix `/`, if any, as a list of at most one, so that
    /// each location of the site loops over it. Every location applies it
    /// unless a rule with a longer prefix covers the path.
    pub site_rules: Vec<AccessRuleView>,
    /// The other rules, each rendered as locations of its own. Rules on
    /// paths that the site denies are left out, so those paths keep
    /// returning 404.
    pub rules: Vec<AccessRuleView>,
    /// The CA file that client certificates must verify against, when a
    /// rule checks them; nginx takes it once per server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<String>,
}

/// One access rule, as the templates use it.
#[derive(Debug, Clone, Serialize)]
pub struct AccessRuleView {
    /// The fenced path without its trailing `/`, or `/` for the whole site.
    pub prefix: String,
    /// Kind of the built-in location that the path would reach without the
    /// rule, which decides how the rule's locations pass requests on:
    /// `runtime` (static files from `web/`, else the runtime), `websocket`
    /// or `upload`.
    pub kind: String,
    /// Name of the rule's named location, without the `@`.
    pub name: String,
    /// `all` or `any`: nginx's `satisfy` value.
    pub satisfy: String,
    /// Client networks that pass the address check.
    pub allow_from: Vec<String>,
    /// The IPv4 networks of `allow_from` as address and subnet mask, as
    /// IIS's `ipSecurity` takes them.
    pub allow_from_masks: Vec<AddressMaskView>,
    /// The prefix without its leading `/`, as IIS's `location path` takes it.
    pub location_path: String,
    /// htpasswd file for basic authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<String>,
    /// Whether a verified client certificate passes this rule's check.
    pub client_certificate: bool,
}

/// An IPv4 network as address and subnet mask.
#[derive(Debug, Clone, Serialize)]
pub struct AddressMaskView {
    /// Network address, e.g. `198.51.100.0`.
    pub address: String,
    /// Subnet mask, e.g. `255.255.255.0`.
    pub mask: String,
}

/// One response header.
#[derive(Debug, Clone, Serialize)]
pub struct HeaderView {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// Settings that nginx applies to every site on the host, so every app
/// writes them identically.
#[derive(Debug, Clone, Serialize)]
pub struct NginxHostView {
    /// Mozilla TLS profile, `intermediate` or `modern`.
    pub tls_profile: String,
    /// `ssl_ecdh_curve` value: the groups the host's OpenSSL offers.
    pub ecdh_curve: String,
    /// The shared file with the http-level directives.
    pub http_file: String,
}

/// Key exchange groups of Mozilla's profiles, in order of preference, that
/// every OpenSSL from 1.1.1 on supports.
pub const CLASSIC_GROUPS: &str = "X25519:prime256v1:secp384r1";

/// The same list headed by the hybrid post-quantum group of Mozilla's
/// guidelines 6.0, which OpenSSL has from 3.5 on.
pub const HYBRID_GROUPS: &str = "X25519MLKEM768:X25519:prime256v1:secp384r1";

/// Firewall settings.
#[derive(Debug, Clone, Serialize)]
pub struct FirewallView {
    /// nftables table name.
    pub table: String,
    /// The nftables rules file.
    pub rules_file: String,
    /// The iptables and ip6tables chain name.
    pub iptables_chain: String,
    /// The iptables rules file.
    pub iptables_rules_file: String,
    /// The ip6tables rules file.
    pub ip6tables_rules_file: String,
    /// Windows Firewall rule group that contains the app's rules.
    pub windows_group: String,
    /// Prefix of the Windows Firewall rule names, e.g. `mxharden-sales`.
    pub windows_rule_prefix: String,
    /// Remote proxy networks, IPv4 and IPv6, as Windows Firewall matches them.
    pub windows_proxy_addresses: Vec<String>,
    /// Every remote address that is not a proxy, as ranges, IPv4 then IPv6.
    pub windows_other_addresses: Vec<String>,
    /// Remote proxy networks, IPv4.
    pub ipv4_sources: Vec<String>,
    /// Remote proxy networks, IPv6.
    pub ipv6_sources: Vec<String>,
}

/// systemd settings.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    /// Unit name.
    pub unit: String,
    /// The m2ee program.
    pub m2ee: String,
    /// m2ee-tools' PID file.
    pub pid_file: String,
}

/// The secret, for the m2ee template only.
#[derive(Clone, Serialize)]
pub struct SecretView {
    /// Admin API password.
    pub admin_pass: String,
}

impl std::fmt::Debug for SecretView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretView(<hidden>)")
    }
}

fn join_addresses(addresses: &[IpAddr]) -> String {
    addresses.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(",")
}

/// Builds the access view. A rule whose path the site denies (`*-doc` and
/// `/debugger` unless exposed) is left out, because the denying location
/// must keep returning 404 to every client.
fn access_view(app: &AppSpec) -> AccessView {
    let denied = |rule: &AccessRule| {
        let segment = rule.prefix.first_segment();
        (segment.ends_with("-doc") && !app.proxy.expose_docs) || (segment == "debugger" && !app.proxy.expose_debugger)
    };
    let view = |index: usize, rule: &AccessRule| AccessRuleView {
        prefix: rule.prefix.base().to_owned(),
        kind: match rule.prefix.first_segment() {
            "ws" | "mxdevtools" => "websocket",
            "file" => "upload",
            _ => "runtime",
        }
        .to_owned(),
        name: format!("mxharden_access_{index}"),
        satisfy: match rule.satisfy {
            Satisfy::All => "all".to_owned(),
            Satisfy::Any => "any".to_owned(),
        },
        allow_from: rule.allow_from.iter().map(ToString::to_string).collect(),
        allow_from_masks: rule
            .allow_from
            .iter()
            .filter_map(|network| match network {
                mxharden_spec::values::IpNet::V4(v4) => Some(AddressMaskView {
                    address: v4.network().to_string(),
                    mask: v4.netmask().to_string(),
                }),
                mxharden_spec::values::IpNet::V6(_) => None,
            })
            .collect(),
        location_path: rule.prefix.base().trim_start_matches('/').to_owned(),
        basic_auth: rule.basic_auth.as_ref().map(ToString::to_string),
        client_certificate: rule.client_certificate.is_some(),
    };
    let applied: Vec<(usize, &AccessRule)> = app.proxy.access.iter().enumerate().filter(|(_, rule)| !denied(rule)).collect();
    AccessView {
        site_rules: applied.iter().filter(|(_, rule)| rule.prefix.is_root()).map(|(index, rule)| view(*index, rule)).collect(),
        rules: applied.iter().filter(|(_, rule)| !rule.prefix.is_root()).map(|(index, rule)| view(*index, rule)).collect(),
        client_ca: applied.iter().find_map(|(_, rule)| rule.client_certificate.as_ref()).map(ToString::to_string),
    }
}

/// Picks the address the proxy uses: loopback when the proxy is local,
/// otherwise the first address that a remote proxy can reach.
fn upstream(app: &AppSpec) -> String {
    let remote = !app.remote_addresses.is_empty();
    let chosen = app
        .runtime_listen
        .iter()
        .find(|address| address.is_loopback() != remote)
        .or_else(|| app.runtime_listen.first())
        .copied()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let port = app.runtime_port.get();
    match chosen {
        IpAddr::V4(v4) if v4.is_unspecified() => format!("127.0.0.1:{port}"),
        IpAddr::V6(v6) if v6.is_unspecified() => format!("[::1]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

impl RenderContext {
    /// Builds the context for `app`; `runtime_version` comes from the app's
    /// `model/metadata.json` and must already be checked.
    pub fn new(app: &AppSpec, runtime_version: Option<&str>) -> RenderContext {
        let base = app.base.as_str();
        let mxclientsystem_dir = match runtime_version {
            Some(version) => format!("{base}/runtimes/{version}/runtime/mxclientsystem"),
            None => format!("{base}/web/mxclientsystem"),
        };
        let (ipv4, ipv6): (Vec<&mxharden_spec::values::IpNet>, Vec<_>) = app.remote_addresses.iter().partition(|n| matches!(n, mxharden_spec::values::IpNet::V4(_)));
        RenderContext {
            app: AppView {
                name: app.name.to_string(),
                base: base.to_owned(),
                user: app.user.to_string(),
                group: app.user.to_string(),
                home: app.home.to_string(),
                model_dir: format!("{base}/model"),
                data_dir: format!("{base}/data"),
                web_dir: format!("{base}/web"),
                m2ee_dir: layout::m2ee_dir(app).to_string(),
                m2ee_include: layout::m2ee_include(app).to_string(),
                mxclientsystem_dir,
            },
            runtime: RuntimeView {
                port: app.runtime_port.get(),
                admin_port: app.admin_port.get(),
                listen: join_addresses(&app.runtime_listen),
                admin_listen: join_addresses(&app.admin_listen),
                upstream: upstream(app),
                root_url: app.root_url.to_string(),
                version: runtime_version.map(str::to_owned),
            },
            proxy: ProxyView {
                server_name: app.server_name.to_string(),
                certificate: app.tls_certificate.to_string(),
                key: app.tls_key.to_string(),
                hsts_include_subdomains: app.proxy.hsts_include_subdomains,
                hsts_preload: app.proxy.hsts_preload,
                frame_options: match app.proxy.frame_ancestors {
                    FrameAncestors::SameOrigin => "SAMEORIGIN".to_owned(),
                    FrameAncestors::None => "DENY".to_owned(),
                },
                content_security_policy: app.proxy.content_security_policy.to_string(),
                headers: app
                    .proxy
                    .headers
                    .iter()
                    .map(|(name, value)| HeaderView {
                        name: name.to_string(),
                        value: value.to_string(),
                    })
                    .collect(),
                max_upload_mb: app.proxy.max_upload.get(),
                max_upload_bytes: u64::from(app.proxy.max_upload.get()) * 1024 * 1024,
                expose_docs: app.proxy.expose_docs,
                expose_debugger: app.proxy.expose_debugger,
                ocsp_resolvers: Vec::new(),
            },
            access: access_view(app),
            nginx: NginxHostView {
                tls_profile: match app.proxy.tls_profile {
                    TlsProfile::Intermediate => "intermediate".to_owned(),
                    TlsProfile::Modern => "modern".to_owned(),
                },
                ecdh_curve: CLASSIC_GROUPS.to_owned(),
                http_file: layout::NGINX_HTTP_FILE.to_owned(),
            },
            firewall: FirewallView {
                table: layout::nft_table(app),
                rules_file: layout::nft_rules(app).to_string(),
                iptables_chain: layout::iptables_chain(app),
                iptables_rules_file: layout::iptables_rules(app).to_string(),
                ip6tables_rules_file: layout::ip6tables_rules(app).to_string(),
                windows_group: format!("mxharden {}", app.name),
                windows_rule_prefix: format!("mxharden-{}", app.name),
                windows_proxy_addresses: app.remote_addresses.iter().map(ToString::to_string).collect(),
                windows_other_addresses: [false, true]
                    .into_iter()
                    .flat_map(|v6| crate::ranges::uncovered_ranges(&app.remote_addresses, v6))
                    .collect(),
                ipv4_sources: ipv4.iter().map(ToString::to_string).collect(),
                ipv6_sources: ipv6.iter().map(ToString::to_string).collect(),
            },
            service: ServiceView {
                unit: layout::unit_name(app),
                m2ee: app.m2ee.to_string(),
                pid_file: layout::m2ee_pid_file(app).to_string(),
            },
            secret: None,
        }
    }

    /// Sets the key exchange groups that the host's OpenSSL offers.
    pub fn set_ecdh_curve(&mut self, groups: &str) {
        self.nginx.ecdh_curve = groups.to_owned();
    }

    /// Turns OCSP stapling on with these DNS resolvers; an empty list turns it off.
    pub fn set_ocsp_resolvers(&mut self, resolvers: Vec<String>) {
        self.proxy.ocsp_resolvers = resolvers;
    }

    /// Returns a copy that also carries the admin password.
    pub fn with_secret(&self, password: &AdminPassword) -> RenderContext {
        let mut context = self.clone();
        context.secret = Some(SecretView {
            admin_pass: password.expose().to_owned(),
        });
        context
    }

    /// Returns a copy whose file paths point beneath `prefix`, so a
    /// checker such as `nginx -t` finds the files of a `--root` tree.
    pub fn beneath(&self, prefix: &str) -> RenderContext {
        let mut context = self.clone();
        let move_path = |path: &mut String| *path = format!("{prefix}{path}");
        move_path(&mut context.app.web_dir);
        move_path(&mut context.app.mxclientsystem_dir);
        move_path(&mut context.proxy.certificate);
        move_path(&mut context.proxy.key);
        if let Some(ca) = context.access.client_ca.as_mut() {
            move_path(ca);
        }
        for rule in context.access.site_rules.iter_mut().chain(context.access.rules.iter_mut()) {
            if let Some(file) = rule.basic_auth.as_mut() {
                move_path(file);
            }
        }
        context
    }
}
