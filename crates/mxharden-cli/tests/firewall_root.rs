//! The firewall files that `mxharden apply --root` writes and `mxharden remove --root`
//! deletes, for each Linux backend, and the host states in which apply refuses to write
//! firewall rules. `--root` never touches a live firewall, so these tests need no namespace;
//! they run as root because apply sets owners (they skip without root, and fail under
//! `CI=true`).

mod support;

use std::path::Path;

use support::{Sandbox, describe, example_spec, root_or_skip};

const NFT_FILE: &str = "/etc/mxharden/nftables/sales.nft";
const IPTABLES_FILE: &str = "/etc/mxharden/iptables/sales.v4";
const IP6TABLES_FILE: &str = "/etc/mxharden/iptables/sales.v6";
const UNIT: &str = "/etc/systemd/system/mxharden-firewall-sales.service";
const UNIT_LINK: &str = "/etc/systemd/system/sysinit.target.wants/mxharden-firewall-sales.service";

fn spec_with_backend(backend: &str) -> String {
    example_spec().replace("backend: nftables", &format!("backend: {backend}"))
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

fn remove(sandbox: &Sandbox, arguments: &[&str]) -> std::process::Output {
    std::process::Command::new(support::mxharden_binary())
        .arg("remove")
        .arg("--root")
        .arg(sandbox.root())
        .args(arguments)
        .arg(sandbox.spec())
        .output()
        .expect("run mxharden remove")
}

#[test]
fn nftables_unit_enabled_at_boot() {
    if !root_or_skip("nftables_unit_enabled_at_boot") {
        return;
    }
    let sandbox = Sandbox::new();

    sandbox.apply_ok(&[]);

    let unit = std::fs::read_to_string(sandbox.path(UNIT)).expect("the boot unit is written");
    assert!(unit.contains(&format!("ExecStart=/usr/sbin/nft -f {NFT_FILE}")), "{unit}");
    let target = std::fs::read_link(sandbox.path(UNIT_LINK)).expect("the boot unit is enabled");
    assert_eq!(target, Path::new(UNIT), "the link must name the unit as systemctl enable does");
}

#[test]
fn iptables_files_written_once() {
    if !root_or_skip("iptables_files_written_once") {
        return;
    }
    let sandbox = Sandbox::with_spec(&spec_with_backend("iptables"));

    sandbox.apply_ok(&[]);
    let second = sandbox.apply(&["--detailed-exitcode"]);

    for path in [IPTABLES_FILE, IP6TABLES_FILE, UNIT, UNIT_LINK] {
        assert!(exists(&sandbox.path(path)), "{path} is missing");
    }
    assert!(!exists(&sandbox.path(NFT_FILE)), "the iptables backend wrote nftables rules");
    let rules = std::fs::read_to_string(sandbox.path(IPTABLES_FILE)).unwrap();
    assert!(rules.contains("-A MXH-SALES -p tcp -m multiport --dports 8000,8090 -j DROP"), "{rules}");
    assert!(!rules.contains("ACCEPT"), "the chain may only return or drop, never accept:\n{rules}");
    assert_eq!(second.status.code(), Some(0), "the second apply changed something:\n{}", describe(&second));
}

#[test]
fn backend_switch_removes_old_rules() {
    if !root_or_skip("backend_switch_removes_old_rules") {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.apply_ok(&[]);
    sandbox.write_spec(&spec_with_backend("iptables"));

    let output = sandbox.apply_ok(&[]);

    assert!(!exists(&sandbox.path(NFT_FILE)), "the nftables rules of the old backend are left:\n{}", describe(&output));
    assert!(exists(&sandbox.path(IPTABLES_FILE)));
    let unit = std::fs::read_to_string(sandbox.path(UNIT)).unwrap();
    assert!(unit.contains("iptables-restore"), "the boot unit still loads the old backend:\n{unit}");
}

#[test]
fn remove_deletes_only_firewall_files() {
    if !root_or_skip("remove_deletes_only_firewall_files") {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.apply_ok(&[]);

    let dry_run = remove(&sandbox, &["--dry-run", "--detailed-exitcode"]);
    assert_eq!(dry_run.status.code(), Some(2), "{}", describe(&dry_run));
    assert!(exists(&sandbox.path(NFT_FILE)), "a dry run deleted the rules");
    let output = remove(&sandbox, &[]);
    let again = remove(&sandbox, &["--detailed-exitcode"]);

    assert!(output.status.success(), "{}", describe(&output));
    for path in [NFT_FILE, UNIT, UNIT_LINK] {
        assert!(!exists(&sandbox.path(path)), "remove left {path}");
    }
    for path in ["/etc/nginx/conf.d/mxharden-sales.conf", "/etc/systemd/system/mendix-sales.service", "/srv/mendix/sales/.m2ee/mxharden.yaml"] {
        assert!(exists(&sandbox.path(path)), "remove deleted {path}, which is not a firewall file");
    }
    assert_eq!(again.status.code(), Some(0), "a second remove found something:\n{}", describe(&again));
}

#[test]
fn ssh_port_overlap_rejected() {
    if !root_or_skip("ssh_port_overlap_rejected") {
        return;
    }
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path("/etc/ssh")).unwrap();
    std::fs::write(sandbox.path("/etc/ssh/sshd_config"), "Port 22\nPort 8000\n").unwrap();

    let output = sandbox.apply(&[]);

    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(errors.contains("runtime port 8000 is also an SSH port"), "{errors}");
    assert!(!exists(&sandbox.path(NFT_FILE)), "rules were written although the plan failed");
}

#[test]
fn raw_rules_under_ufw_rejected() {
    if !root_or_skip("raw_rules_under_ufw_rejected") {
        return;
    }
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path("/etc/ufw")).unwrap();
    std::fs::write(sandbox.path("/etc/ufw/ufw.conf"), "ENABLED=yes\n").unwrap();

    let output = sandbox.apply(&[]);

    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(errors.contains("ufw manages this host's firewall"), "{errors}");
}

#[test]
fn auto_follows_saved_iptables_rules() {
    if !root_or_skip("auto_follows_saved_iptables_rules") {
        return;
    }
    let sandbox = Sandbox::with_spec(&spec_with_backend("auto"));
    std::fs::create_dir_all(sandbox.path("/etc/iptables")).unwrap();
    std::fs::write(sandbox.path("/etc/iptables/rules.v4"), "*filter\nCOMMIT\n").unwrap();

    sandbox.apply_ok(&[]);

    assert!(exists(&sandbox.path(IPTABLES_FILE)), "auto did not choose iptables");
    assert!(!exists(&sandbox.path(NFT_FILE)));
}

#[test]
fn unfiltered_listen_needs_waiver() {
    let exposed = example_spec()
        .replace("backend: nftables", "backend: none")
        .replace("    admin_port: 8090\n", "    admin_port: 8090\n    listen: [\"127.0.0.1\", \"192.0.2.10\"]\n")
        .replace("      key: /etc/ssl/private/sales.key\n", "      key: /etc/ssl/private/sales.key\n    remote_addresses: [\"192.0.2.20/32\"]\n");
    let waived = format!(
        "{exposed}  waivers:\n    - check: unfiltered-runtime-port\n      reason: \"A hardware firewall in front of the host filters the port\"\n      expires: 2999-12-31\n"
    );
    let folder = tempfile::tempdir().unwrap();
    let validate = |text: &str| {
        let file = folder.path().join("app.yaml");
        std::fs::write(&file, text).unwrap();
        std::process::Command::new(support::mxharden_binary()).arg("validate").arg(&file).output().unwrap()
    };

    let rejected = validate(&exposed);
    let accepted = validate(&waived);

    assert_eq!(rejected.status.code(), Some(1), "{}", describe(&rejected));
    assert!(String::from_utf8_lossy(&rejected.stderr).contains("unfiltered-runtime-port"), "{}", describe(&rejected));
    assert!(accepted.status.success(), "{}", describe(&accepted));
}

#[test]
fn windows_script_written_with_loopback_warning() {
    if !root_or_skip("windows_script_written_with_loopback_warning") {
        return;
    }
    let sandbox = Sandbox::with_spec(&spec_with_backend("windows").replace("kind: nginx", "kind: iis"));

    let output = sandbox.apply_ok(&[]);
    let second = sandbox.apply(&["--detailed-exitcode"]);

    let script = std::fs::read_to_string(sandbox.path("/etc/mxharden/windows/sales/firewall.ps1")).expect("the script is written");
    assert!(script.contains("New-NetFirewallRule"), "{script}");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("Windows Firewall does not filter loopback traffic"), "{report}");
    for path in [NFT_FILE, UNIT, UNIT_LINK] {
        assert!(!exists(&sandbox.path(path)), "the windows backend wrote {path}");
    }
    assert_eq!(second.status.code(), Some(0), "the second apply changed something:\n{}", describe(&second));
}
