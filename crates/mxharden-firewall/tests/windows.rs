//! The Windows Firewall script: a snapshot, and the structure that makes a second run create
//! no duplicates. No PowerShell runs here, so the script's behaviour on Windows is untested.

use mxharden_firewall::{Backend, render_artifacts};
use mxharden_render::{ArtifactKind, Engine, RenderContext};
use mxharden_spec::AppSpec;
use mxharden_testkit::spec::load_app;

fn app(remote_addresses: &str, listen: &str) -> AppSpec {
    let text = format!(
        r#"version: 1
app:
  name: sales
  base: /srv/mendix/sales
  runtime:
    port: 8000
    admin_port: 8090
    listen: {listen}
  proxy:
    kind: iis
    server_name: sales.example.com
    tls:
      certificate: /etc/ssl/certs/sales.pem
      key: /etc/ssl/private/sales.key
    remote_addresses: {remote_addresses}
  firewall:
    backend: windows
"#
    );
    load_app(&text)
}

fn script_for(spec: &AppSpec, engine: &Engine) -> String {
    let artifacts = render_artifacts(engine, spec, Some(Backend::Windows), &RenderContext::new(spec, None)).unwrap();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert_eq!(artifacts[0].kind, ArtifactKind::WindowsFirewallScript);
    assert_eq!(artifacts[0].path.as_str(), "/etc/mxharden/windows/sales/firewall.ps1");
    artifacts[0].contents.clone()
}

fn with_proxies() -> String {
    let spec = app(r#"["192.0.2.20/32", "2001:db8:1::/64"]"#, r#"["127.0.0.1", "::1", "192.0.2.10"]"#);
    script_for(&spec, &Engine::load(None).unwrap())
}

#[test]
fn snapshot_windows_script() {
    insta::assert_snapshot!("windows_script", with_proxies());
}

#[test]
fn every_rule_created_only_when_missing() {
    let script = with_proxies();

    assert_eq!(script.matches("New-NetFirewallRule").count(), 1, "one creation, inside the loop:\n{script}");
    let lookup = script.find("$existing = Get-NetFirewallRule -Name $rule.Name").expect("each rule is looked up by name");
    let update = script.find("Set-NetFirewallRule -Name $rule.Name").expect("an existing rule is updated in place");
    let create = script.find("New-NetFirewallRule -Name $rule.Name").expect("a missing rule is created");
    assert!(lookup < update, "look up, then update:\n{script}");
    assert!(update < create, "update an existing rule, else create it:\n{script}");
    assert!(script.contains("-Group $group"), "new rules join the group:\n{script}");
}

#[test]
fn stale_group_rules_removed() {
    let script = with_proxies();

    assert!(
        script.contains("Get-NetFirewallRule -Group $group -ErrorAction SilentlyContinue |\n    Where-Object { $names -notcontains $_.Name } |\n    Remove-NetFirewallRule"),
        "rules of the group that the script no longer defines must go:\n{script}"
    );
    let removals = script.matches("Remove-NetFirewallRule").count();
    assert_eq!(removals, 2, "only a misplaced rule and stale rules are removed, never the whole group first:\n{script}");
}

#[test]
fn rule_names_unique() {
    let script = with_proxies();

    let names: Vec<&str> = script.lines().filter_map(|line| line.trim().strip_prefix("Name = ")).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(names.len(), 3, "{names:?}");
    for name in &names {
        assert!(name.starts_with("$prefix + '-"), "not the prefix and a suffix: {name}");
        assert!(name.ends_with('\''), "the suffix is not quoted: {name}");
        assert_eq!(name.matches('\'').count(), 2, "not one quoted suffix: {name}");
    }
    assert_eq!(unique.len(), names.len(), "{names:?}");
}

#[test]
fn proxies_left_out_of_block() {
    let script = with_proxies();

    assert!(script.contains("'192.0.2.20/32'"), "{script}");
    assert!(script.contains("'0.0.0.0-192.0.2.19'"), "{script}");
    assert!(script.contains("'192.0.2.21-255.255.255.255'"), "{script}");
    assert!(script.contains("'2001:db8:1:1::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'"), "{script}");
    assert!(script.contains("'::-2001:db8:0:ffff:ffff:ffff:ffff:ffff'"), "{script}");
}

#[test]
fn local_proxy_blocks_every_remote_host() {
    let spec = app("[]", r#"["127.0.0.1", "::1"]"#);

    let script = script_for(&spec, &Engine::load(None).unwrap());

    assert!(!script.contains("'Allow'"), "no allow rule without remote proxies:\n{script}");
    assert!(script.contains("'0.0.0.0-255.255.255.255'"), "{script}");
    assert!(script.contains("'::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'"), "{script}");
}

#[test]
fn loopback_limit_stated() {
    let script = with_proxies();

    assert!(script.contains("Windows Firewall does not filter loopback traffic"), "{script}");
}

#[test]
fn powershell_filter_doubles_quotes() {
    let overrides = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(overrides.path().join("firewall")).unwrap();
    std::fs::write(overrides.path().join("firewall/windows.ps1.tera"), "{{ proxy.server_name | powershell }}").unwrap();
    let engine = Engine::load(Some(overrides.path())).unwrap();

    // Parsing rejects a quote in every field, so the value with the characters that the filter
    // must escape goes straight into the render context.
    let spec = app("[]", r#"["127.0.0.1"]"#);
    let mut context = RenderContext::new(&spec, None);
    context.proxy.server_name = "it's’s.example.com".to_owned();
    let text = render_artifacts(&engine, &spec, Some(Backend::Windows), &context).unwrap().remove(0).contents;

    assert_eq!(text, "'it''s’’s.example.com'");
}
