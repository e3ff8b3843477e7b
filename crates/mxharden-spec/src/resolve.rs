//! Turning a parsed file into an [`AppSpec`] with every default filled in,
//! and the checks that need more than one field.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use jiff::civil::Date;

use crate::error::{InputError, Position};
use crate::model::{CheckId, DesiredState, FirewallBackend, FrameAncestors, ProxyKind, TlsProfile};
use crate::values::{AbsPath, AccountName, AppName, DnsName, HeaderName, HeaderValue, HttpsUrl, Port, Reason, UploadMegabytes};

/// The default `Content-Security-Policy`. The Mendix web client needs
/// `'unsafe-inline'` and `'unsafe-eval'` unless the app's theme was changed
/// for a strict policy, as Mendix's guide "Content Security Policy" shows.
/// Everything else is limited to the app's own origin.
pub const DEFAULT_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'";

/// One app with every default filled in and every check passed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppSpec {
    /// The desired-state file this app came from.
    pub source: PathBuf,
    /// App name.
    pub name: AppName,
    /// `app_base`.
    pub base: AbsPath,
    /// Account and group that run the app; both have this name.
    pub user: AccountName,
    /// Home folder of the account; m2ee-tools reads `<home>/.m2ee/m2ee.yaml`.
    pub home: AbsPath,
    /// Runtime HTTP port.
    pub runtime_port: Port,
    /// Admin API port.
    pub admin_port: Port,
    /// Addresses the runtime port binds.
    pub runtime_listen: Vec<IpAddr>,
    /// Addresses the admin port binds; always loopback.
    pub admin_listen: Vec<IpAddr>,
    /// `ApplicationRootUrl`.
    pub root_url: HttpsUrl,
    /// The proxy to configure.
    pub proxy_kind: ProxyKind,
    /// Public host name.
    pub server_name: DnsName,
    /// TLS certificate path.
    pub tls_certificate: AbsPath,
    /// TLS key path.
    pub tls_key: AbsPath,
    /// Remote proxy hosts allowed to reach the runtime port.
    pub remote_addresses: Vec<IpNet>,
    /// TLS profile, response headers and path rules of the proxy.
    pub proxy: ProxyOptions,
    /// Firewall backend.
    pub firewall: FirewallBackend,
    /// The m2ee program.
    pub m2ee: AbsPath,
    /// Waivers that have not expired.
    pub waivers: Vec<ActiveWaiver>,
    /// Positions of fields that later stages may report on.
    #[serde(skip)]
    pub positions: FieldPositions,
}

/// Proxy options with every default filled in.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProxyOptions {
    /// Mozilla TLS profile.
    pub tls_profile: TlsProfile,
    /// Adds `includeSubDomains` to Strict-Transport-Security.
    pub hsts_include_subdomains: bool,
    /// Adds `preload` to Strict-Transport-Security.
    pub hsts_preload: bool,
    /// Pages allowed to frame the app.
    pub frame_ancestors: FrameAncestors,
    /// `Content-Security-Policy` value.
    pub content_security_policy: HeaderValue,
    /// Further response headers, sorted by name.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Request body limit on `/file`.
    pub max_upload: UploadMegabytes,
    /// Serve `*-doc` paths instead of denying them.
    pub expose_docs: bool,
    /// Serve `/debugger/` instead of denying it.
    pub expose_debugger: bool,
    /// Per-path access rules, in file order.
    pub access: Vec<crate::access::AccessRule>,
}

/// A waiver in force.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActiveWaiver {
    /// The waived check.
    pub check: CheckId,
    /// Why.
    pub reason: Reason,
    /// Last day it holds.
    pub expires: Date,
}

/// Positions of fields that checks after parsing may need to name.
#[derive(Debug, Clone)]
pub struct FieldPositions {
    /// `app.name`.
    pub name: Position,
    /// `app.base`.
    pub base: Position,
    /// `app.user`, or `app.name` when the user is derived from it.
    pub user: Position,
    /// `app.runtime.port`.
    pub runtime_port: Position,
    /// `app.runtime.admin_port`.
    pub admin_port: Position,
    /// `app.proxy.server_name`.
    pub server_name: Position,
    /// `app.proxy.tls.certificate`.
    pub tls_certificate: Position,
    /// `app.proxy.tls.key`.
    pub tls_key: Position,
    /// `app.service.m2ee`, or `app.name` when the default is used.
    pub m2ee: Position,
    /// `app.proxy.tls.profile`, or `app.proxy.server_name` when left out.
    pub tls_profile: Position,
}

/// Folders that an app base must neither be nor lie under.
const FORBIDDEN_BASE_ROOTS: &[&str] = &[
    "/proc", "/sys", "/dev", "/run", "/boot", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/tmp", "/var/tmp", "/root",
    "/var/spool", "/var/lib/mxharden",
];

/// Folders that the generated unit's `ProtectHome=yes` hides from the app.
const HOME_ROOTS: &[&str] = &["/home", "/run/user"];

/// Longest app base, in bytes. mxharden derives paths up to a few hundred
/// bytes longer (`<base>/runtimes/<version>/runtime/mxclientsystem`,
/// `<base>/.m2ee/mxharden.yaml`), and each must stay below Linux's
/// 4095-byte path limit.
pub const BASE_MAX: usize = 1024;

/// Folders too broad to become one app's base.
const FORBIDDEN_BASE_EXACT: &[&str] = &["/srv", "/opt", "/var", "/home", "/var/lib", "/mnt", "/media"];

/// Kernel file systems. A path there is no file that an operator placed, and
/// reading one (e.g. `/proc/self/environ`) could leak another process's data.
const KERNEL_ROOTS: &[&str] = &["/proc", "/sys", "/dev"];

/// Resolves defaults and checks one parsed file; `today` decides waiver expiry.
pub fn resolve_app(source: &Path, state: DesiredState, today: Date) -> Result<AppSpec, Vec<InputError>> {
    let mut errors = Vec::new();
    let at = |location| Position::at(source, location);

    if state.version.value != 1 {
        errors.push(InputError::new(
            &at(state.version.referenced),
            "version",
            format!("unsupported schema version {}; this mxharden reads version 1", state.version.value),
        ));
    }

    let app = state.app;
    let name = app.name.value.clone();
    let base = app.base.value.clone();
    let base_position = at(app.base.referenced);
    check_base(&base, &base_position, &mut errors);

    let (user, user_position) = match &app.user {
        Some(user) => (user.value.clone(), at(user.referenced)),
        None => {
            let derived: AccountName = format!("mx-{}", name.as_str())
                .parse()
                .expect("an app name of at most 24 characters gives a valid account name");
            (derived, at(app.name.referenced))
        }
    };

    let runtime_port = app.runtime.port.value;
    let admin_port = app.runtime.admin_port.value;
    let runtime_port_position = at(app.runtime.port.referenced);
    let admin_port_position = at(app.runtime.admin_port.referenced);
    if runtime_port == admin_port {
        errors.push(
            InputError::new(
                &admin_port_position,
                "app.runtime.admin_port",
                format!("the admin port {admin_port} equals the runtime port; choose two different ports"),
            )
            .with_related(&runtime_port_position),
        );
    }

    let (remote_addresses, remote_position) = match &app.proxy.remote_addresses {
        Some(remote) => (remote.value.clone(), at(remote.referenced)),
        None => (Vec::new(), at(app.proxy.server_name.referenced)),
    };
    let (runtime_listen, listen_position) = match &app.runtime.listen {
        Some(listen) => (listen.value.clone(), at(listen.referenced)),
        None => (loopback_addresses(), runtime_port_position.clone()),
    };
    check_listen(&runtime_listen, &listen_position, &remote_addresses, &remote_position, &mut errors);
    check_remote_addresses(&remote_addresses, &remote_position, &mut errors);

    let waivers = resolve_waivers(source, &app.waivers, today, &mut errors);
    let unfiltered_waived = waivers.iter().any(|w| w.check == CheckId::UnfilteredRuntimePort);
    if app.firewall.backend == FirewallBackend::None && runtime_listen.iter().any(|a| !a.is_loopback()) && !unfiltered_waived {
        errors.push(
            InputError::new(
                &listen_position,
                "app.runtime.listen",
                "the runtime listens on a non-loopback address but firewall.backend is none; choose a firewall backend so only the proxy reaches the runtime port, or waive the unfiltered-runtime-port check",
            ),
        );
    }

    let tls_certificate_position = at(app.proxy.tls.certificate.referenced);
    let tls_key_position = at(app.proxy.tls.key.referenced);
    let (m2ee, m2ee_position) = match &app.service.m2ee {
        Some(m2ee) => (m2ee.value.clone(), at(m2ee.referenced)),
        None => (crate::model::default_m2ee(), at(app.name.referenced)),
    };
    for (path, position, field) in [
        (&app.proxy.tls.certificate.value, &tls_certificate_position, "app.proxy.tls.certificate"),
        (&app.proxy.tls.key.value, &tls_key_position, "app.proxy.tls.key"),
        (&m2ee, &m2ee_position, "app.service.m2ee"),
    ] {
        check_not_kernel_path(path, position, field, &mut errors);
    }
    for (path, position, field) in [
        (&app.proxy.tls.certificate.value, &tls_certificate_position, "app.proxy.tls.certificate"),
        (&app.proxy.tls.key.value, &tls_key_position, "app.proxy.tls.key"),
    ] {
        if path.is_within(&base) {
            errors.push(
                InputError::new(
                    position,
                    field,
                    format!("{path} lies inside the app's base folder {base}, where mxharden hands files to the app user; keep TLS files outside it, e.g. under /etc/ssl"),
                )
                .with_related(&base_position),
            );
        }
    }

    let proxy = resolve_proxy(source, &app.proxy, &mut errors);
    let server_name = app.proxy.server_name.value.clone();
    let root_url = match app.runtime.root_url.clone() {
        Some(url) => url,
        None => format!("https://{}", server_name.as_str())
            .parse()
            .expect("https:// and a checked host name form a valid URL"),
    };

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(AppSpec {
        source: source.to_path_buf(),
        name,
        home: base.clone(),
        base,
        user,
        runtime_port,
        admin_port,
        runtime_listen,
        admin_listen: loopback_addresses(),
        root_url,
        proxy_kind: app.proxy.kind,
        server_name,
        tls_certificate: app.proxy.tls.certificate.value.clone(),
        tls_key: app.proxy.tls.key.value.clone(),
        remote_addresses,
        proxy,
        firewall: app.firewall.backend,
        m2ee,
        waivers,
        positions: FieldPositions {
            name: at(app.name.referenced),
            base: base_position,
            user: user_position,
            runtime_port: runtime_port_position,
            admin_port: admin_port_position,
            server_name: at(app.proxy.server_name.referenced),
            tls_certificate: tls_certificate_position,
            tls_key: tls_key_position,
            m2ee: m2ee_position,
            tls_profile: at(app.proxy.tls.profile.as_ref().map_or(app.proxy.server_name.referenced, |p| p.referenced)),
        },
    })
}

/// `127.0.0.1` and `::1`.
pub fn loopback_addresses() -> Vec<IpAddr> {
    vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)]
}

fn check_base(base: &AbsPath, position: &Position, errors: &mut Vec<InputError>) {
    if base.as_str().len() > BASE_MAX {
        errors.push(InputError::new(
            position,
            "app.base",
            format!(
                "the base folder has {} bytes; use at most {BASE_MAX}, so that the paths mxharden derives from it stay within Linux's 4095-byte limit",
                base.as_str().len()
            ),
        ));
        return;
    }
    let under_system = FORBIDDEN_BASE_ROOTS
        .iter()
        .any(|root| base.is_within(&root.parse().expect("constant path is valid")));
    let too_broad = FORBIDDEN_BASE_EXACT.contains(&base.as_str());
    if under_system || too_broad {
        errors.push(InputError::new(
            position,
            "app.base",
            format!("{base} is a system folder; give the app a folder of its own, e.g. /srv/mendix/<name>"),
        ));
        return;
    }
    let under_home = HOME_ROOTS.iter().any(|root| base.is_within(&root.parse().expect("constant path is valid")));
    if under_home {
        errors.push(InputError::new(
            position,
            "app.base",
            format!("{base} lies under a home folder, which the app's systemd unit hides (ProtectHome=yes); use a folder such as /srv/mendix/<name>"),
        ));
    }
}

fn check_not_kernel_path(path: &AbsPath, position: &Position, field: &str, errors: &mut Vec<InputError>) {
    let in_kernel_fs = KERNEL_ROOTS
        .iter()
        .any(|root| path.is_within(&root.parse().expect("constant path is valid")));
    if in_kernel_fs {
        errors.push(InputError::new(
            position,
            field,
            format!("{path} lies in a kernel file system (/proc, /sys or /dev); give the path of a regular file"),
        ));
    }
}

fn check_listen(
    listen: &[IpAddr],
    listen_position: &Position,
    remote: &[IpNet],
    remote_position: &Position,
    errors: &mut Vec<InputError>,
) {
    if listen.is_empty() {
        errors.push(InputError::new(
            listen_position,
            "app.runtime.listen",
            "the list of listen addresses is empty; leave the field out to listen on loopback",
        ));
        return;
    }
    for (index, address) in listen.iter().enumerate() {
        if let Some(problem) = unusable_listen_address(address) {
            errors.push(InputError::new(listen_position, "app.runtime.listen", format!("{address} {problem}")));
        }
        if listen[..index].contains(address) {
            errors.push(InputError::new(
                listen_position,
                "app.runtime.listen",
                format!("{address} is listed twice; list each address once"),
            ));
        }
    }
    let exposed = listen.iter().any(|address| !address.is_loopback());
    if exposed && remote.is_empty() {
        errors.push(InputError::new(
            listen_position,
            "app.runtime.listen",
            "the runtime listens on a non-loopback address but no remote proxy is configured; leave listen out, or list the proxy hosts in app.proxy.remote_addresses",
        ));
    }
    let unspecified = listen.iter().any(|address| address.is_unspecified());
    if unspecified && !remote.is_empty() {
        errors.push(InputError::new(
            listen_position,
            "app.runtime.listen",
            "0.0.0.0 and :: name no address a remote proxy can connect to; list this host's address that the proxy uses",
        ));
    }
    if !exposed && !remote.is_empty() {
        errors.push(
            InputError::new(
                remote_position,
                "app.proxy.remote_addresses",
                "a remote proxy cannot reach a runtime that listens on loopback only; add this host's address to app.runtime.listen",
            )
            .with_related(listen_position),
        );
    }
}

/// Says why the runtime cannot bind `address`, or `None` when it can.
fn unusable_listen_address(address: &IpAddr) -> Option<String> {
    match address {
        IpAddr::V4(v4) if v4.is_multicast() || v4.is_broadcast() => {
            Some("is a multicast or broadcast address; give an address of this host".to_owned())
        }
        IpAddr::V6(v6) if v6.is_multicast() => Some("is a multicast address; give an address of this host".to_owned()),
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(|v4| format!("is an IPv4-mapped IPv6 address, which the firewall rules would not match; write it as {v4}")),
        _ => None,
    }
}

fn check_remote_addresses(remote: &[IpNet], position: &Position, errors: &mut Vec<InputError>) {
    for (index, network) in remote.iter().enumerate() {
        if remote[..index].contains(network) {
            errors.push(InputError::new(
                position,
                "app.proxy.remote_addresses",
                format!("{network} is listed twice; list each network once"),
            ));
        }
        let address = network.addr();
        let special = address.is_loopback() || address.is_unspecified() || address.is_multicast();
        if special && network.prefix_len() > 0 {
            errors.push(InputError::new(
                position,
                "app.proxy.remote_addresses",
                format!("{network} is a loopback, unspecified or multicast network, not a remote proxy host; list the proxy hosts' own addresses"),
            ));
        }
        if network.prefix_len() == 0 {
            errors.push(InputError::new(
                position,
                "app.proxy.remote_addresses",
                format!("{network} admits every host; list the proxy hosts' addresses"),
            ));
        }
        if network.trunc() != *network {
            errors.push(InputError::new(
                position,
                "app.proxy.remote_addresses",
                format!("{network} has host bits set; write the network as {}", network.trunc()),
            ));
        }
    }
}

fn resolve_proxy(source: &Path, proxy: &crate::model::Proxy, errors: &mut Vec<InputError>) -> ProxyOptions {
    let preload = proxy.hsts.preload.as_ref().is_some_and(|p| p.value);
    if let Some(flag) = proxy.hsts.preload.as_ref().filter(|p| p.value && !proxy.hsts.include_subdomains) {
        errors.push(InputError::new(
            &Position::at(source, flag.referenced),
            "app.proxy.hsts.preload",
            "browsers accept a host into the HSTS preload list only with includeSubDomains; set hsts.include_subdomains: true as well",
        ));
    }
    let content_security_policy = match &proxy.content_security_policy {
        Some(policy) => policy.value.clone(),
        None => DEFAULT_CONTENT_SECURITY_POLICY.parse().expect("the default policy is a valid header value"),
    };
    ProxyOptions {
        tls_profile: proxy.tls.profile.as_ref().map(|p| p.value).unwrap_or_default(),
        hsts_include_subdomains: proxy.hsts.include_subdomains,
        hsts_preload: preload,
        frame_ancestors: proxy.frame_ancestors,
        content_security_policy,
        headers: proxy.headers.as_ref().map(|h| h.value.clone().into_iter().collect()).unwrap_or_default(),
        max_upload: proxy.max_upload_mb.as_ref().map_or(UploadMegabytes::DEFAULT, |m| m.value),
        expose_docs: proxy.expose.docs,
        expose_debugger: proxy.expose.debugger,
        access: crate::access::resolve_access(source, proxy.kind, &proxy.access, errors),
    }
}

fn resolve_waivers(
    source: &Path,
    waivers: &[crate::model::Waiver],
    today: Date,
    errors: &mut Vec<InputError>,
) -> Vec<ActiveWaiver> {
    let mut active = Vec::new();
    for (index, waiver) in waivers.iter().enumerate() {
        let expires = waiver.expires.value;
        if expires < today {
            errors.push(InputError::new(
                &Position::at(source, waiver.expires.referenced),
                &format!("app.waivers[{index}].expires"),
                format!("the waiver expired on {expires}; fix the failing check or renew the waiver with a new date and reason"),
            ));
            continue;
        }
        let duplicate = active.iter().any(|w: &ActiveWaiver| w.check == waiver.check.value);
        if duplicate {
            errors.push(InputError::new(
                &Position::at(source, waiver.check.referenced),
                &format!("app.waivers[{index}].check"),
                "this check is waived twice; keep one waiver per check",
            ));
            continue;
        }
        active.push(ActiveWaiver {
            check: waiver.check.value,
            reason: waiver.reason.clone(),
            expires,
        });
    }
    active
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with_base(base: &str) -> DesiredState {
        let text = format!(
            "version: 1\napp:\n  name: sales\n  base: {base}\n  runtime:\n    port: 8000\n    admin_port: 8090\n  proxy:\n    kind: nginx\n    server_name: sales.example.com\n    tls:\n      certificate: /etc/ssl/certs/sales.pem\n      key: /etc/ssl/private/sales.key\n"
        );
        crate::parse::parse_desired_state(Path::new("app.yaml"), &text).expect("the file parses")
    }

    fn today() -> Date {
        Date::new(2026, 1, 1).unwrap()
    }

    #[test]
    fn base_near_path_limit_is_rejected() {
        // A base that AbsPath accepts but whose derived paths would not fit:
        // found by the parse_validate fuzz target, which panicked in join().
        let base = format!("/srv/{}", vec!["a".repeat(200); 19].join("/"));
        assert!(base.len() > BASE_MAX);
        assert!(base.len() < 4095);
        let errors = resolve_app(Path::new("app.yaml"), state_with_base(&base), today()).unwrap_err();
        assert_eq!(errors[0].field, "app.base");
        assert!(errors[0].message.contains("at most 1024"), "{}", errors[0].message);
    }

    #[test]
    fn longest_base_derives_valid_paths() {
        let mut base = format!("/srv/{}", vec!["a".repeat(200); 5].join("/"));
        base.push_str(&"/b".repeat((BASE_MAX - base.len()) / 2));
        let app = resolve_app(Path::new("app.yaml"), state_with_base(&base), today()).expect("a base of BASE_MAX bytes is valid");
        assert!(app.base.as_str().len() + 2 > BASE_MAX);
        let derived = app.base.join("runtimes").join(&"9".repeat(200)).join("runtime").join("mxclientsystem");
        assert!(derived.as_str().len() < 4095);
    }
}
