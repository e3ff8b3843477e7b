//! The SSH ports that the firewall must never filter.

use mxharden_fs::RootDir;

use crate::error::FirewallError;

/// Largest sshd configuration file read, in bytes.
const FILE_LIMIT: u64 = 1024 * 1024;

/// Returns the ports that OpenSSH's sshd listens on, from the `Port` and
/// `ListenAddress host:port` lines of `/etc/ssh/sshd_config` and
/// `/etc/ssh/sshd_config.d/*.conf`; `22` when no file names one.
///
/// NOTE: `Include` lines other than Debian's default `sshd_config.d` and
/// `Match` blocks are not followed.
pub fn sshd_ports(root: &RootDir) -> Result<Vec<u16>, FirewallError> {
    let mut files = vec!["/etc/ssh/sshd_config".to_owned()];
    let drop_ins = root.host_path("/etc/ssh/sshd_config.d");
    if let Ok(entries) = std::fs::read_dir(&drop_ins) {
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.ends_with(".conf"))
            .collect();
        names.sort();
        files.extend(names.into_iter().map(|name| format!("/etc/ssh/sshd_config.d/{name}")));
    }
    let mut ports = Vec::new();
    for file in files {
        let Some(bytes) = root.read_file(&file, FILE_LIMIT)? else {
            continue;
        };
        ports.extend(ports_in_config(&String::from_utf8_lossy(&bytes)));
    }
    if ports.is_empty() {
        ports.push(22);
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}

/// Returns the ports named by `Port` and `ListenAddress` lines of one file.
pub fn ports_in_config(text: &str) -> Vec<u16> {
    let mut ports = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(keyword), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        if keyword.eq_ignore_ascii_case("Port") {
            ports.extend(value.parse::<u16>().ok());
        } else if keyword.eq_ignore_ascii_case("ListenAddress") {
            // `host:port` or `[v6]:port`; a bare IPv6 address has colons but no port.
            if let Some((host, port)) = value.rsplit_once(':') {
                if !host.contains(':') || host.ends_with(']') {
                    ports.extend(port.parse::<u16>().ok());
                }
            }
        }
    }
    ports
}

/// Fails when the runtime or admin port is an SSH port, because the rules
/// drop that port for every host but loopback and the proxies.
pub fn reject_ssh_overlap(ssh_ports: &[u16], runtime_port: u16, admin_port: u16) -> Result<(), FirewallError> {
    for (name, port) in [("runtime port", runtime_port), ("admin port", admin_port)] {
        if ssh_ports.contains(&port) {
            return Err(FirewallError::Conflict(format!(
                "the {name} {port} is also an SSH port of this host (sshd_config); its firewall rules would cut SSH sessions: choose another port"
            )));
        }
    }
    Ok(())
}
