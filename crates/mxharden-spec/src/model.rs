//! The desired state of one app, as written in YAML.
//!
//! Optional fields are `Option` or carry a serde default, so that a template
//! is never handed `null`: the render stage fills every default before rendering.

use std::net::IpAddr;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::values::{AbsPath, AccountName, AppName, DnsName, HeaderName, HeaderValue, HttpsUrl, PathPrefix, Port, Reason, UploadMegabytes};

/// One desired-state file: a schema version and one app.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DesiredState {
    /// Schema version of this file; only `1` exists.
    #[schemars(with = "u32")]
    pub version: Spanned<u32>,
    /// The app to harden.
    pub app: App,
}

/// One Mendix app on this host.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Short name; derives the account `mx-<name>`, the unit `mendix-<name>.service`
    /// and the nftables table `mxharden_<name>`.
    #[schemars(with = "AppName")]
    pub name: Spanned<AppName>,
    /// The app's `app_base`, holding `model/`, `data/` and `web/`.
    #[schemars(with = "AbsPath")]
    pub base: Spanned<AbsPath>,
    /// System account that runs the app. Default: `mx-<name>`.
    #[serde(default)]
    #[schemars(with = "Option<AccountName>")]
    pub user: Option<Spanned<AccountName>>,
    /// Runtime ports and listen addresses.
    pub runtime: Runtime,
    /// The TLS reverse proxy in front of the runtime.
    pub proxy: Proxy,
    /// Host firewall rules for the runtime and admin ports.
    #[serde(default)]
    pub firewall: Firewall,
    /// The systemd unit that runs the app.
    #[serde(default)]
    pub service: Service,
    /// Checks accepted as failing, each with a reason and an expiry date.
    #[serde(default)]
    pub waivers: Vec<Waiver>,
}

/// Ports and listen addresses of the Mendix runtime.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// Port where the runtime serves HTTP to the proxy.
    #[schemars(with = "Port")]
    pub port: Spanned<Port>,
    /// Port of the runtime's admin API.
    #[schemars(with = "Port")]
    pub admin_port: Spanned<Port>,
    /// Addresses the runtime port binds. Default: `127.0.0.1` and `::1`.
    /// A non-loopback address needs `proxy.remote_addresses`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<IpAddr>>")]
    pub listen: Option<Spanned<Vec<IpAddr>>>,
    /// Root URL the runtime uses for links and cookies. Default: `https://<server_name>`.
    #[serde(default)]
    pub root_url: Option<HttpsUrl>,
}

/// The reverse proxy to configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    /// nginx on this host.
    Nginx,
    /// IIS on a Windows host: mxharden writes `web.config` for it.
    Iis,
}

/// The TLS reverse proxy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// `nginx` or `iis`.
    pub kind: ProxyKind,
    /// Host name that clients use; the certificate must cover it.
    #[schemars(with = "DnsName")]
    pub server_name: Spanned<DnsName>,
    /// Certificate and key for TLS.
    pub tls: Tls,
    /// Addresses or networks of proxy hosts other than this one that may
    /// reach the runtime port. Empty: the proxy runs on this host.
    #[serde(default)]
    #[schemars(with = "Option<Vec<IpNet>>")]
    pub remote_addresses: Option<Spanned<Vec<IpNet>>>,
    /// Strict-Transport-Security options. The header is always sent, with a
    /// `max-age` of two years.
    #[serde(default)]
    pub hsts: Hsts,
    /// Pages allowed to show the app in a frame: `self` (default) or `none`.
    /// Sets `X-Frame-Options`.
    #[serde(default)]
    pub frame_ancestors: FrameAncestors,
    /// The `Content-Security-Policy` header. Default: a baseline that the
    /// Mendix web client runs under without changes to its theme.
    #[serde(default)]
    #[schemars(with = "Option<HeaderValue>")]
    pub content_security_policy: Option<Spanned<HeaderValue>>,
    /// Further response headers, by name. Only names from a fixed list are
    /// accepted; the headers above have fields of their own.
    #[serde(default)]
    #[schemars(with = "Option<std::collections::BTreeMap<HeaderName, HeaderValue>>")]
    pub headers: Option<Spanned<std::collections::BTreeMap<HeaderName, HeaderValue>>>,
    /// Largest request body on `/file`, in MiB. Default: 1024.
    #[serde(default)]
    #[schemars(with = "Option<UploadMegabytes>")]
    pub max_upload_mb: Option<Spanned<UploadMegabytes>>,
    /// Runtime paths that are denied by default and may be opened.
    #[serde(default)]
    pub expose: Expose,
    /// Per-path access rules: IP allow-lists, client certificates and basic
    /// authentication. A path is governed by the rule with the longest
    /// matching prefix alone.
    #[serde(default)]
    pub access: Vec<AccessRule>,
}

/// One access rule of the proxy: who may request the paths under `prefix`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// The path the rule fences, with every path beneath it: `/rest/` (or
    /// `/rest`) covers `/rest` and `/rest/...` but not `/restricted`. `/`
    /// fences the whole site.
    #[schemars(with = "PathPrefix")]
    pub prefix: Spanned<PathPrefix>,
    /// Client networks that may pass, e.g. a partner's `198.51.100.0/24`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<IpNet>>")]
    pub allow_from: Option<Spanned<Vec<IpNet>>>,
    /// PEM file of the CA that issues the client certificates to accept
    /// (mutual TLS). Every rule of an app names the same file, because
    /// nginx verifies client certificates once per server.
    #[serde(default)]
    #[schemars(with = "Option<AbsPath>")]
    pub client_certificate: Option<Spanned<AbsPath>>,
    /// htpasswd file (`user:hash` lines) that the operator maintains. The
    /// proxy requires HTTP basic authentication against it.
    #[serde(default)]
    #[schemars(with = "Option<AbsPath>")]
    pub basic_auth: Option<Spanned<AbsPath>>,
    /// `all` (default): a request must pass every check the rule sets.
    /// `any`: one passing check is enough.
    #[serde(default)]
    #[schemars(with = "Option<Satisfy>")]
    pub satisfy: Option<Spanned<Satisfy>>,
}

/// Combination of the checks of one access rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Satisfy {
    /// Every check must pass.
    #[default]
    All,
    /// One passing check is enough.
    Any,
}

/// Strict-Transport-Security directives beyond `max-age`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hsts {
    /// Adds `includeSubDomains`: every subdomain must then serve HTTPS too.
    #[serde(default)]
    pub include_subdomains: bool,
    /// Adds `preload`, the request that browsers ship the name in their
    /// HSTS list. Needs `include_subdomains`.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub preload: Option<Spanned<bool>>,
}

/// Pages that may embed the app in a frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FrameAncestors {
    /// Pages of the same origin (`X-Frame-Options: SAMEORIGIN`).
    #[default]
    #[serde(rename = "self")]
    SameOrigin,
    /// No page (`X-Frame-Options: DENY`).
    None,
}

/// Runtime paths that the proxy denies unless opened here.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expose {
    /// Serve the runtime's API documentation (`/api-doc/`, `/rest-doc/`,
    /// `/odata-doc/`, `/ws-doc/` and every other path whose first segment
    /// ends in `-doc`).
    #[serde(default)]
    pub docs: bool,
    /// Serve `/debugger/`, the remote debugger endpoint.
    #[serde(default)]
    pub debugger: bool,
}

/// A Mozilla TLS configuration profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsProfile {
    /// TLS 1.2 and 1.3 with ECDHE AEAD cipher suites.
    #[default]
    Intermediate,
    /// TLS 1.3 only.
    Modern,
}

/// Certificate and private key files, at their paths on the proxy host.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate, leaf first, then intermediates.
    #[schemars(with = "AbsPath")]
    pub certificate: Spanned<AbsPath>,
    /// PEM private key, readable by root only.
    #[schemars(with = "AbsPath")]
    pub key: Spanned<AbsPath>,
    /// Mozilla profile: `intermediate` (default) or `modern`. nginx picks
    /// the protocol version in its default server, before it reads the host
    /// name, so every nginx app on one host must use the same profile.
    #[serde(default)]
    #[schemars(with = "Option<TlsProfile>")]
    pub profile: Option<Spanned<TlsProfile>>,
}

/// Host firewall settings.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Firewall {
    /// `nftables` (default), `iptables`, `ufw`, `firewalld`, `windows`, `auto` or `none`.
    #[serde(default)]
    pub backend: FirewallBackend,
}

/// The firewall that mxharden manages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FirewallBackend {
    /// The manager found on the host: ufw when it is enabled, firewalld when
    /// it runs, iptables when the host keeps rules in
    /// `/etc/iptables/rules.v4`, nftables otherwise.
    Auto,
    /// A table of mxharden's own per app, replaced atomically.
    #[default]
    Nftables,
    /// Chains of mxharden's own per app in the iptables and ip6tables
    /// `filter` tables, jumped to from `INPUT`.
    Iptables,
    /// Rules added with ufw's own commands; ufw must be enabled.
    Ufw,
    /// A firewalld policy added with `firewall-cmd`; firewalld must run.
    Firewalld,
    /// A PowerShell script of Windows Firewall rules, written to
    /// `/etc/mxharden/windows/<name>/firewall.ps1` to run on the Windows host.
    Windows,
    /// No firewall rules; only allowed while every port listens on loopback,
    /// unless the `unfiltered-runtime-port` check is waived.
    None,
}

/// The systemd unit that runs the app.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The m2ee program that starts and stops the runtime. Default: `/usr/bin/m2ee`.
    #[serde(default)]
    #[schemars(with = "Option<AbsPath>")]
    pub m2ee: Option<Spanned<AbsPath>>,
}

/// The m2ee program used when `service.m2ee` is left out.
pub fn default_m2ee() -> AbsPath {
    "/usr/bin/m2ee".parse().expect("default m2ee path is valid")
}

/// A check that may be waived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckId {
    /// The runtime version is below the minimum of its release line.
    RuntimeVersion,
    /// The runtime listens on a non-loopback address with `firewall.backend: none`.
    UnfilteredRuntimePort,
}

/// An accepted failure of one check, for a limited time.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// The check to waive.
    #[schemars(with = "CheckId")]
    pub check: Spanned<CheckId>,
    /// The reason the failure is accepted, and who decided.
    pub reason: Reason,
    /// Last day (`YYYY-MM-DD`) the waiver holds; after it the check fails again.
    #[schemars(with = "String")]
    pub expires: Spanned<jiff::civil::Date>,
}
