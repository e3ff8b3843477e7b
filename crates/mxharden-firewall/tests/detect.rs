//! Choosing the backend from the host's files, and rejecting raw rules under ufw or firewalld.

use mxharden_firewall::{Backend, resolve_backend};
use mxharden_fs::RootDir;
use mxharden_spec::FirewallBackend;

fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    root
}

fn resolve(root: &tempfile::TempDir, requested: FirewallBackend) -> Result<Option<Backend>, String> {
    resolve_backend(&RootDir::open(root.path()).unwrap(), false, requested).map_err(|e| e.to_string())
}

#[test]
fn auto_picks_nftables_by_default() {
    let root = tree(&[]);

    assert_eq!(resolve(&root, FirewallBackend::Auto), Ok(Some(Backend::Nftables)));
}

#[test]
fn auto_picks_iptables_with_saved_rules() {
    let root = tree(&[("etc/iptables/rules.v4", "*filter\nCOMMIT\n")]);

    assert_eq!(resolve(&root, FirewallBackend::Auto), Ok(Some(Backend::Iptables)));
}

#[test]
fn explicit_backend_kept() {
    let root = tree(&[("etc/iptables/rules.v4", "*filter\nCOMMIT\n")]);

    assert_eq!(resolve(&root, FirewallBackend::Nftables), Ok(Some(Backend::Nftables)));
    assert_eq!(resolve(&root, FirewallBackend::None), Ok(None));
}

#[test]
fn active_ufw_rejected() {
    let root = tree(&[("etc/ufw/ufw.conf", "# comment\nENABLED=yes\nLOGLEVEL=low\n")]);

    for requested in [FirewallBackend::Nftables, FirewallBackend::Iptables] {
        let error = resolve(&root, requested).expect_err("raw rules under ufw are rejected");
        assert!(error.contains("ufw manages this host's firewall"), "{error}");
        assert!(error.contains("ENABLED=yes in /etc/ufw/ufw.conf"), "{error}");
        assert!(error.contains("set firewall.backend to ufw or auto"), "{error}");
    }
}

#[test]
fn auto_picks_active_ufw() {
    let root = tree(&[("etc/ufw/ufw.conf", "ENABLED=yes
"), ("etc/iptables/rules.v4", "*filter\nCOMMIT\n")]);

    assert_eq!(resolve(&root, FirewallBackend::Auto), Ok(Some(Backend::Ufw)));
    assert_eq!(resolve(&root, FirewallBackend::Ufw), Ok(Some(Backend::Ufw)));
}

#[test]
fn inactive_ufw_backend_rejected() {
    let root = tree(&[("etc/ufw/ufw.conf", "ENABLED=no
")]);

    let error = resolve(&root, FirewallBackend::Ufw).expect_err("mxharden never enables ufw");

    assert!(error.contains("ufw is not enabled"), "{error}");
}

#[test]
fn inactive_ufw_ignored() {
    let root = tree(&[("etc/ufw/ufw.conf", "ENABLED=no\n")]);

    assert_eq!(resolve(&root, FirewallBackend::Auto), Ok(Some(Backend::Nftables)));
}

#[test]
fn raw_rules_under_firewalld_rejected() {
    let root = tree(&[("etc/systemd/system/multi-user.target.wants/firewalld.service", "")]);

    let error = resolve(&root, FirewallBackend::Nftables).expect_err("raw rules under firewalld are rejected");

    assert!(error.contains("firewalld manages this host's firewall"), "{error}");
    assert!(error.contains("set firewall.backend to firewalld or auto"), "{error}");
}

#[test]
fn auto_picks_enabled_firewalld() {
    let root = tree(&[("etc/systemd/system/multi-user.target.wants/firewalld.service", "")]);

    assert_eq!(resolve(&root, FirewallBackend::Auto), Ok(Some(Backend::Firewalld)));
    assert_eq!(resolve(&root, FirewallBackend::Firewalld), Ok(Some(Backend::Firewalld)));
}

#[test]
fn stopped_firewalld_backend_rejected() {
    let root = tree(&[]);

    let error = resolve(&root, FirewallBackend::Firewalld).expect_err("firewalld must run or be enabled");

    assert!(error.contains("firewalld is not running"), "{error}");
}

#[test]
fn windows_ignores_local_manager() {
    let root = tree(&[("etc/ufw/ufw.conf", "ENABLED=yes\n")]);

    assert_eq!(resolve(&root, FirewallBackend::Windows), Ok(Some(Backend::Windows)));
}
