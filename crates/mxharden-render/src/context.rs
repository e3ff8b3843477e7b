//! The typed context that every template renders from.
//!
//! Fields are plain strings, numbers and lists. Optional values are left out
//! of the serialized context instead of being `null`, so a template must test
//! them with `is defined`.

use std::net::IpAddr;

use serde::Serialize;

use mxharden_spec::AppSpec;

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
}

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
    /// Windows Firewall rule group that holds the app's rules.
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
        context
    }
}
