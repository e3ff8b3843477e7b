//! Turning a parsed file into an [`AppSpec`] with every default filled in,
//! and the checks that need more than one field.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use jiff::civil::Date;

use crate::error::{InputError, Position};
use crate::model::{CheckId, DesiredState, FirewallBackend, ProxyKind};
use crate::values::{AbsPath, AccountName, AppName, DnsName, HttpsUrl, Port, Reason};

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
    /// Which proxy to configure.
    pub proxy_kind: ProxyKind,
    /// Public host name.
    pub server_name: DnsName,
    /// TLS certificate path.
    pub tls_certificate: AbsPath,
    /// TLS key path.
    pub tls_key: AbsPath,
    /// Remote proxy hosts allowed to reach the runtime port.
    pub remote_addresses: Vec<IpNet>,
    /// Firewall backend.
    pub firewall: FirewallBackend,
    /// The m2ee program.
    pub m2ee: AbsPath,
    /// Waivers that have not expired.
    pub waivers: Vec<ActiveWaiver>,
    /// Where fields that later stages may report on were written.
    #[serde(skip)]
    pub positions: FieldPositions,
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
}

/// Folders that an app base must neither be nor lie under.
const FORBIDDEN_BASE_ROOTS: &[&str] = &["/proc", "/sys", "/dev", "/run", "/boot", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/tmp", "/var/tmp", "/root"];

/// Folders too broad to become one app's base.
const FORBIDDEN_BASE_EXACT: &[&str] = &["/srv", "/opt", "/var", "/home", "/var/lib", "/mnt", "/media"];

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
        tls_certificate: app.proxy.tls.certificate.clone(),
        tls_key: app.proxy.tls.key.clone(),
        remote_addresses,
        firewall: app.firewall.backend,
        m2ee: app.service.m2ee.clone(),
        waivers,
        positions: FieldPositions {
            name: at(app.name.referenced),
            base: base_position,
            user: user_position,
            runtime_port: runtime_port_position,
            admin_port: admin_port_position,
            server_name: at(app.proxy.server_name.referenced),
        },
    })
}

/// `127.0.0.1` and `::1`.
pub fn loopback_addresses() -> Vec<IpAddr> {
    vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)]
}

fn check_base(base: &AbsPath, position: &Position, errors: &mut Vec<InputError>) {
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

fn check_remote_addresses(remote: &[IpNet], position: &Position, errors: &mut Vec<InputError>) {
    for network in remote {
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
