//! Finding processes that already listen on an app's ports, on the live
//! host. A port held by anything but the app's own runtime is a conflict:
//! the proxy and the firewall rules would send traffic to that process.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mxharden_spec::AppSpec;

use crate::build::AppIds;
use crate::error::PlanError;

/// A TCP socket in the LISTEN state, from `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Local address.
    pub address: IpAddr,
    /// Local port.
    pub port: u16,
    /// Owner's user id.
    pub uid: u32,
    /// Socket inode, which links the socket to its process.
    pub inode: u64,
}

/// The `st` value of a listening socket in `/proc/net/tcp` (`TCP_LISTEN`).
const TCP_LISTEN: &str = "0A";

/// Parses the text of `/proc/net/tcp` (`ipv6` false) or `/proc/net/tcp6`.
pub fn parse_listeners(text: &str, ipv6: bool) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != TCP_LISTEN {
                return None;
            }
            let (address, port) = fields[1].split_once(':')?;
            Some(Listener {
                address: parse_address(address, ipv6)?,
                port: u16::from_str_radix(port, 16).ok()?,
                uid: fields[7].parse().ok()?,
                inode: fields[9].parse().ok()?,
            })
        })
        .collect()
}

/// Decodes an address as the kernel prints it: each 32-bit word of the
/// address as a hexadecimal number in the host's byte order.
fn parse_address(hex: &str, ipv6: bool) -> Option<IpAddr> {
    let mut bytes = Vec::with_capacity(16);
    for start in (0..hex.len()).step_by(8) {
        let word = u32::from_str_radix(hex.get(start..start + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    match (ipv6, bytes.len()) {
        (false, 4) => Some(IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))),
        (true, 16) => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?))),
        _ => None,
    }
}

/// Returns every listening TCP socket on this host's network namespace.
pub fn host_listeners() -> Vec<Listener> {
    let mut listeners = Vec::new();
    for (path, ipv6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        if let Ok(text) = std::fs::read_to_string(path) {
            listeners.extend(parse_listeners(&text, ipv6));
        }
    }
    listeners
}

/// Names the process that owns the socket `inode`, as `name (pid N)`, by
/// searching `/proc/<pid>/fd`; `None` when it cannot be seen.
pub fn socket_owner(inode: u64) -> Option<String> {
    let target = format!("socket:[{inode}]");
    for process in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = process.file_name();
        let Some(pid) = pid.to_str().filter(|pid| pid.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let Ok(descriptors) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        let holds = descriptors
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == target.as_str()));
        if holds {
            let name = std::fs::read_to_string(process.path().join("comm")).unwrap_or_default();
            return Some(format!("{} (pid {pid})", name.trim()));
        }
    }
    None
}

/// Fails when a process other than the app's own runtime (a process of the
/// app's account) listens on the app's runtime or admin port.
pub fn check_ports_free(app: &AppSpec, ids: Option<AppIds>, listeners: &[Listener]) -> Result<(), PlanError> {
    for (port, field) in [(app.runtime_port.get(), "app.runtime.port"), (app.admin_port.get(), "app.runtime.admin_port")] {
        let conflicting = listeners
            .iter()
            .find(|listener| listener.port == port && ids.is_none_or(|ids| ids.uid != listener.uid));
        if let Some(listener) = conflicting {
            let owner = socket_owner(listener.inode).unwrap_or_else(|| "a process".to_owned());
            return Err(PlanError::Conflict(format!(
                "{}: {field}: port {port} is already in use by {owner} of uid {} on {}; stop it or choose another port",
                app.source.display(),
                listener.uid,
                listener.address
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F9A 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5151 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn parses_ipv4_listeners_only() {
        let listeners = parse_listeners(TCP, false);
        assert_eq!(
            listeners,
            vec![Listener {
                address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 8000,
                uid: 998,
                inode: 4242,
            }]
        );
    }

    #[test]
    fn parses_ipv6_loopback() {
        let listeners = parse_listeners(TCP6, true);
        assert_eq!(listeners.len(), 1);
        assert_eq!(listeners[0].address, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(listeners[0].port, 8000);
    }

    fn app() -> AppSpec {
        let text = "version: 1\napp:\n  name: sales\n  base: /srv/mendix/sales\n  runtime:\n    port: 8000\n    admin_port: 8090\n  proxy:\n    kind: nginx\n    server_name: sales.example.com\n    tls:\n      certificate: /etc/ssl/certs/sales.pem\n      key: /etc/ssl/private/sales.key\n";
        let file = std::path::Path::new("app.yaml");
        let state = mxharden_spec::parse::parse_desired_state(file, text).unwrap();
        mxharden_spec::resolve::resolve_app(file, state, mxharden_spec::today_utc()).unwrap()
    }

    #[test]
    fn port_of_app_account_is_not_a_conflict() {
        let listeners = parse_listeners(TCP, false);
        let ids = AppIds { uid: 998, gid: 998 };
        assert!(check_ports_free(&app(), Some(ids), &listeners).is_ok());
    }

    #[test]
    fn port_of_another_account_is_a_conflict() {
        let listeners = parse_listeners(TCP, false);
        let ids = AppIds { uid: 997, gid: 997 };
        let message = check_ports_free(&app(), Some(ids), &listeners).unwrap_err().to_string();
        assert!(message.contains("app.runtime.port: port 8000 is already in use by"), "{message}");
        assert!(message.contains("of uid 998 on 127.0.0.1"), "{message}");
        assert!(check_ports_free(&app(), None, &listeners).is_err());
    }

    #[test]
    fn finds_a_real_listener_and_its_process() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let found: Vec<Listener> = host_listeners().into_iter().filter(|l| l.port == port).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(found[0].uid, nix::unistd::geteuid().as_raw());
        let owner = socket_owner(found[0].inode).expect("this process holds the socket");
        assert!(owner.contains(&format!("pid {}", std::process::id())), "{owner}");
    }
}
