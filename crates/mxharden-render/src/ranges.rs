//! Address ranges for firewalls that match a list of ranges, such as
//! Windows Firewall's `-RemoteAddress`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mxharden_spec::values::IpNet;

/// Returns the ranges of one family that none of `networks` covers, as
/// `first-last` (or a single address), in ascending order. `v6` picks the family.
pub fn uncovered_ranges(networks: &[IpNet], v6: bool) -> Vec<String> {
    let max: u128 = if v6 { u128::MAX } else { u128::from(u32::MAX) };
    let mut covered: Vec<(u128, u128)> = networks
        .iter()
        .filter(|network| matches!(network.addr(), IpAddr::V6(_)) == v6)
        .map(|network| (number(network.network()), number(network.broadcast())))
        .collect();
    covered.sort_unstable();

    let mut gaps = Vec::new();
    let mut next: Option<u128> = Some(0);
    for (start, end) in covered {
        let Some(first) = next else {
            break;
        };
        if start > first {
            gaps.push((first, start - 1));
        }
        if end >= first {
            next = end.checked_add(1).filter(|n| *n <= max);
        }
    }
    if let Some(first) = next {
        gaps.push((first, max));
    }
    gaps.into_iter()
        .map(|(first, last)| {
            let (first, last) = (address(first, v6), address(last, v6));
            if first == last { first.to_string() } else { format!("{first}-{last}") }
        })
        .collect()
}

fn number(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn address(number: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(number))
    } else {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(number).expect("IPv4 ranges stay below 2^32")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn no_network_leaves_whole_family() {
        assert_eq!(uncovered_ranges(&[], false), ["0.0.0.0-255.255.255.255"]);
        assert_eq!(uncovered_ranges(&nets(&["10.0.0.1/32"]), true), ["::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]);
    }

    #[test]
    fn host_splits_family() {
        assert_eq!(uncovered_ranges(&nets(&["10.0.0.5/32"]), false), ["0.0.0.0-10.0.0.4", "10.0.0.6-255.255.255.255"]);
    }

    #[test]
    fn overlapping_and_edge_networks_merge() {
        let networks = nets(&["0.0.0.0/8", "10.0.0.0/8", "10.1.0.0/16", "255.255.255.255/32"]);

        assert_eq!(uncovered_ranges(&networks, false), ["1.0.0.0-9.255.255.255", "11.0.0.0-255.255.255.254"]);
    }

    #[test]
    fn ipv6_network_splits_family() {
        assert_eq!(
            uncovered_ranges(&nets(&["fd00::/8"]), true),
            ["::-fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe00::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
        );
    }
}
