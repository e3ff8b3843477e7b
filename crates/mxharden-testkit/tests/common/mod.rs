//! Network layout shared by the namespace tests: a client and a server namespace linked by
//! one veth pair.

#![allow(dead_code)]

use mxharden_testkit::{Netns, VethPair, veth_pair};

pub const CLIENT_V4: &str = "10.231.0.1";
pub const SERVER_V4: &str = "10.231.0.2";
pub const CLIENT_V6: &str = "fd00:231::1";
pub const SERVER_V6: &str = "fd00:231::2";

pub struct LinkedPair {
    pub client: Netns,
    pub server: Netns,
    pub veth: VethPair,
}

/// Creates a client and a server namespace and links them with the addresses above.
pub fn linked_pair() -> LinkedPair {
    let client = Netns::create("tk-cli").expect("create client namespace");
    let server = Netns::create("tk-srv").expect("create server namespace");
    let veth = veth_pair(&client, &server, CLIENT_V4, SERVER_V4, CLIENT_V6, SERVER_V6)
        .expect("link client and server namespaces");
    LinkedPair {
        client,
        server,
        veth,
    }
}
