//! firewalld policy names and rich rules, which need no running firewalld.

use mxharden_firewall::firewalld::{desired_rules, policy_name};
use mxharden_spec::AppSpec;
use mxharden_testkit::spec::load_app;

fn app(name: &str) -> AppSpec {
    let text = format!(
        "version: 1\napp:\n  name: {name}\n  base: /srv/mendix/{name}\n  runtime:\n    port: 8000\n    admin_port: 8090\n    listen: [\"127.0.0.1\", \"192.0.2.10\"]\n  proxy:\n    kind: nginx\n    server_name: {name}.example.com\n    tls:\n      certificate: /etc/ssl/certs/a.pem\n      key: /etc/ssl/private/a.key\n    remote_addresses: [\"192.0.2.20/32\", \"2001:db8::/64\"]\n  firewall:\n    backend: firewalld\n"
    );
    load_app(&text)
}

#[test]
fn short_name_kept() {
    assert_eq!(policy_name(&app("sales")), "mxh-sales");
}

#[test]
fn long_names_fit_and_differ() {
    let first = policy_name(&app("warehouse-management-eu"));
    let second = policy_name(&app("warehouse-management-us"));

    assert!(first.len() <= 17, "{first}");
    assert!(second.len() <= 17, "{second}");
    assert_ne!(first, second);
    assert!(first.starts_with("mxh-warehouse"), "{first}");
}

#[test]
fn accepts_ordered_before_drops() {
    let rules = desired_rules(&app("sales"));

    assert_eq!(
        rules,
        [
            r#"rule priority="-32000" family="ipv4" source address="192.0.2.20/32" port port="8000" protocol="tcp" accept"#,
            r#"rule priority="-32000" family="ipv6" source address="2001:db8::/64" port port="8000" protocol="tcp" accept"#,
            r#"rule priority="-31999" port port="8000" protocol="tcp" drop"#,
            r#"rule priority="-31999" port port="8090" protocol="tcp" drop"#,
        ]
    );
}
