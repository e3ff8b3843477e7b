//! SSH ports read from sshd's configuration, which the firewall must never filter.

use mxharden_firewall::ssh::{ports_in_config, reject_ssh_overlap, sshd_ports};
use mxharden_fs::RootDir;

#[test]
fn port_and_listen_address_read() {
    let config = "# comment\nPort 2222\nport 2200\nListenAddress 10.0.0.1:2300\nListenAddress [fd00::1]:2400\nListenAddress fd00::2\nListenAddress 10.0.0.3\n";

    assert_eq!(ports_in_config(config), vec![2222, 2200, 2300, 2400]);
}

#[test]
fn default_port_when_none_named() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc/ssh")).unwrap();
    std::fs::write(root.path().join("etc/ssh/sshd_config"), "PermitRootLogin no\n").unwrap();

    let ports = sshd_ports(&RootDir::open(root.path()).unwrap()).unwrap();

    assert_eq!(ports, vec![22]);
}

#[test]
fn drop_in_ports_read() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc/ssh/sshd_config.d")).unwrap();
    std::fs::write(root.path().join("etc/ssh/sshd_config"), "Include /etc/ssh/sshd_config.d/*.conf\n").unwrap();
    std::fs::write(root.path().join("etc/ssh/sshd_config.d/port.conf"), "Port 8000\n").unwrap();
    std::fs::write(root.path().join("etc/ssh/sshd_config.d/ignored.txt"), "Port 9000\n").unwrap();

    let ports = sshd_ports(&RootDir::open(root.path()).unwrap()).unwrap();

    assert_eq!(ports, vec![8000]);
}

#[test]
fn runtime_port_on_ssh_rejected() {
    let error = reject_ssh_overlap(&[22, 8000], 8000, 8090).expect_err("overlap is rejected").to_string();

    assert!(error.contains("runtime port 8000 is also an SSH port"), "{error}");
    assert!(reject_ssh_overlap(&[22, 8090], 8000, 8090).is_err(), "the admin port is checked too");
    assert!(reject_ssh_overlap(&[22], 8000, 8090).is_ok());
}
