//! The rendered firewall files: snapshots, and each tool's own check mode.
//!
//! The check-mode tests need root, because they run the checks in a new network namespace;
//! they skip without it and fail under `CI=true`.

use mxharden_firewall::{Backend, FirewallError, iptables, nftables, render_artifacts};
use mxharden_render::{AdminPassword, Artifact, ArtifactKind, Engine, RenderContext, render_app};
use mxharden_spec::AppSpec;
use mxharden_testkit::require_root_or_skip;
use mxharden_testkit::spec::load_app;

/// Loads a desired state with remote proxies over IPv4 and IPv6.
fn app(backend: &str) -> AppSpec {
    let text = format!(
        r#"version: 1
app:
  name: sales
  base: /srv/mendix/sales
  runtime:
    port: 8000
    admin_port: 8090
    listen: ["127.0.0.1", "::1", "192.0.2.10", "2001:db8::10"]
  proxy:
    kind: nginx
    server_name: sales.example.com
    tls:
      certificate: /etc/ssl/certs/sales.pem
      key: /etc/ssl/private/sales.key
    remote_addresses: ["192.0.2.0/24", "2001:db8:1::/64"]
  firewall:
    backend: {backend}
"#
    );
    load_app(&text)
}

fn render(backend: Backend) -> Vec<Artifact> {
    let engine = Engine::load(None).unwrap();
    let spec = app(backend.name());
    let context = RenderContext::new(&spec, None);
    let mut artifacts = render_app(&engine, &spec, &context, &AdminPassword::new("x".repeat(48))).unwrap();
    artifacts.extend(render_artifacts(&engine, &spec, Some(backend), &context).unwrap());
    artifacts
}

fn contents(artifacts: &[Artifact], kind: ArtifactKind) -> String {
    artifacts
        .iter()
        .find(|a| a.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} artifact"))
        .contents
        .clone()
}

#[test]
fn snapshot_iptables_rules() {
    let artifacts = render(Backend::Iptables);

    insta::assert_snapshot!("iptables_v4", contents(&artifacts, ArtifactKind::IptablesRules));
    insta::assert_snapshot!("iptables_v6", contents(&artifacts, ArtifactKind::Ip6tablesRules));
    insta::assert_snapshot!("iptables_unit", contents(&artifacts, ArtifactKind::FirewallUnit));
}

#[test]
fn snapshot_nftables_unit() {
    let artifacts = render(Backend::Nftables);

    insta::assert_snapshot!("nftables_unit", contents(&artifacts, ArtifactKind::FirewallUnit));
}

#[test]
fn iptables_writes_no_nft_file() {
    let artifacts = render(Backend::Iptables);

    assert!(artifacts.iter().all(|a| a.kind != ArtifactKind::NftRules), "{artifacts:?}");
}

#[test]
fn file_modes() {
    for artifact in render(Backend::Iptables) {
        let expected = match artifact.kind {
            ArtifactKind::FirewallUnit => 0o644,
            ArtifactKind::IptablesRules | ArtifactKind::Ip6tablesRules => 0o600,
            _ => continue,
        };
        assert_eq!(artifact.mode, expected, "{artifact:?}");
    }
}

#[test]
fn iptables_check_mode_accepts_rules() {
    if !require_root_or_skip("iptables_check_mode_accepts_rules") {
        return;
    }
    let artifacts = render(Backend::Iptables);

    let outcome = iptables::check(&contents(&artifacts, ArtifactKind::IptablesRules), &contents(&artifacts, ArtifactKind::Ip6tablesRules), false);

    assert!(matches!(outcome, Ok(Ok(()))), "{outcome:?}");
}

#[test]
fn iptables_check_mode_rejects_swapped_families() {
    if !require_root_or_skip("iptables_check_mode_rejects_swapped_families") {
        return;
    }
    let artifacts = render(Backend::Iptables);

    // IPv6 networks in the IPv4 file must fail iptables-restore --test.
    let outcome = iptables::check(&contents(&artifacts, ArtifactKind::Ip6tablesRules), &contents(&artifacts, ArtifactKind::IptablesRules), false);

    assert!(matches!(outcome, Err(FirewallError::CheckFailed { .. })), "{outcome:?}");
}

#[test]
fn nft_check_mode_accepts_rules() {
    if !require_root_or_skip("nft_check_mode_accepts_rules") {
        return;
    }
    let artifacts = render(Backend::Nftables);

    let outcome = nftables::check(&contents(&artifacts, ArtifactKind::NftRules), false);

    assert!(matches!(outcome, Ok(Ok(()))), "{outcome:?}");
}

#[test]
fn nft_check_mode_rejects_broken_rules() {
    if !require_root_or_skip("nft_check_mode_rejects_broken_rules") {
        return;
    }
    let broken = contents(&render(Backend::Nftables), ArtifactKind::NftRules).replace("tcp dport", "tcp dprot");

    let outcome = nftables::check(&broken, false);

    assert!(matches!(outcome, Err(FirewallError::CheckFailed { .. })), "{outcome:?}");
}

#[test]
fn iptables_canonical_lists_chain_and_jump() {
    if !require_root_or_skip("iptables_canonical_lists_chain_and_jump") {
        return;
    }
    let artifacts = render(Backend::Iptables);

    let listing = iptables::canonical(&contents(&artifacts, ArtifactKind::IptablesRules), &contents(&artifacts, ArtifactKind::Ip6tablesRules), "MXH-SALES").unwrap();

    assert!(listing.starts_with("# iptables\n-N MXH-SALES\n"), "{listing}");
    assert!(listing.contains("-A MXH-SALES -s 192.0.2.0/24 -p tcp -m tcp --dport 8000 -j RETURN"), "{listing}");
    assert!(listing.contains("-A MXH-SALES -s 2001:db8:1::/64 -p tcp -m tcp --dport 8000 -j RETURN"), "{listing}");
    assert_eq!(listing.matches("-A INPUT -j MXH-SALES").count(), 2, "{listing}");
}

#[test]
fn nft_canonical_has_no_counters() {
    if !require_root_or_skip("nft_canonical_has_no_counters") {
        return;
    }
    let rules = contents(&render(Backend::Nftables), ArtifactKind::NftRules);

    let listing = nftables::canonical(&rules, "mxharden_sales").unwrap();

    assert!(listing.starts_with("table inet mxharden_sales {"), "{listing}");
    assert!(listing.contains("ip6 saddr 2001:db8:1::/64 tcp dport 8000 accept"), "{listing}");
    assert!(!listing.contains("packets"), "counters would make every comparison differ: {listing}");
}
