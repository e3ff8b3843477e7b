//! Finding container engines that publish the runtime port, in rulesets that
//! `nft -j list ruleset` (nftables 1.0.6) printed for the `.nft` files beside them.

use mxharden_firewall::docker::{publications_in_iptables_save, publications_in_ruleset, reject_published};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text).expect("the fixture is JSON")
}

#[test]
fn docker_dnat_rule_found() {
    let found = publications_in_ruleset(&fixture("docker-iptables-nft.json"), 8000);

    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].engine, "Docker");
    assert_eq!(found[0].location, "nftables table ip nat, chain DOCKER");
}

#[test]
fn docker_other_port_ignored() {
    let found = publications_in_ruleset(&fixture("docker-iptables-nft.json"), 8001);

    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn filter_accept_rule_ignored() {
    // The fixture's inet filter table accepts tcp dport 8000 too; only NAT publishes.
    let found = publications_in_ruleset(&fixture("docker-iptables-nft.json"), 8000);

    assert!(found.iter().all(|p| p.location.contains("nat")), "{found:?}");
}

#[test]
fn podman_set_and_range_found() {
    let ruleset = fixture("podman-netavark.json");

    let exact = publications_in_ruleset(&ruleset, 8000);
    let in_range = publications_in_ruleset(&ruleset, 7050);
    let outside = publications_in_ruleset(&ruleset, 7200);

    assert_eq!(exact.len(), 1, "{exact:?}");
    assert_eq!(exact[0].engine, "Podman");
    assert_eq!(exact[0].location, "nftables table inet netavark, chain NETAVARK-HOSTPORT-DNAT");
    assert_eq!(in_range.len(), 1, "{in_range:?}");
    assert!(outside.is_empty(), "{outside:?}");
}

#[test]
fn legacy_iptables_dnat_found() {
    let save = "*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
                -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8000 -j DNAT --to-destination 172.17.0.2:8080\n\
                -A DOCKER ! -i docker0 -p tcp -m multiport --dports 9000:9100,9443 -j DNAT --to-destination 172.17.0.3:80\nCOMMIT\n";

    let exact = publications_in_iptables_save(save, 8000, "iptables-legacy");
    let in_range = publications_in_iptables_save(save, 9050, "iptables-legacy");
    let listed = publications_in_iptables_save(save, 9443, "iptables-legacy");
    let other = publications_in_iptables_save(save, 8080, "iptables-legacy");

    assert_eq!(exact.len(), 1, "{exact:?}");
    assert_eq!(exact[0].location, "iptables-legacy table nat, chain DOCKER");
    assert_eq!(exact[0].engine, "Docker");
    assert_eq!(in_range.len(), 1, "{in_range:?}");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(other.is_empty(), "the container's own port is not the host's: {other:?}");
}

#[test]
fn rejection_explains_bypass() {
    let found = publications_in_ruleset(&fixture("docker-iptables-nft.json"), 8000);

    let error = reject_published(8000, &found).expect_err("a published port is rejected").to_string();

    assert!(error.contains("port 8000 is published by Docker"), "{error}");
    assert!(error.contains("before the INPUT hook"), "{error}");
    assert!(error.contains("127.0.0.1"), "the message should name the fix: {error}");
    assert!(reject_published(8000, &[]).is_ok());
}
