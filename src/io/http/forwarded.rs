//! Who sent a request: the TCP peer, or, behind a trusted reverse proxy, the client its
//! `X-Forwarded-For` names (`--trusted-proxy`). A pure function, so every spoofing and
//! parsing case is a unit test.

use std::net::{IpAddr, SocketAddr};

use crate::config::Cidr;

/// The address of the client behind a request: the TCP `peer`, unless the peer is one of the
/// `trusted` reverse proxies. Then `X-Forwarded-For` (every occurrence, in order, each a
/// comma-separated list; each proxy appends the address it got the request from) is read
/// from the right, skipping addresses that are themselves trusted proxies, and the first
/// one that is not is the client. An entry that is not an address stops the walk: the last
/// address read (a trusted proxy, or the peer) is the client, since nothing left of a
/// garbled entry can be believed. If every entry is a trusted proxy, the left-most is.
///
/// The header of a peer that is not a trusted proxy is ignored: anyone can write one.
/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are returned as IPv4.
pub fn client_address<S: AsRef<str>>(peer: IpAddr, forwarded_for: &[S], trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|proxy| proxy.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    let entries = forwarded_for.iter().flat_map(|header| header.as_ref().split(','));
    for entry in entries.rev() {
        let Some(ip) = forwarded_ip(entry) else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`) or in brackets (`[2001:db8::1]`), as some proxies write it.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_its_header_says() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let spoofed = ["10.0.0.5, 192.0.2.1"];
        assert_eq!(client_address(ip("203.0.113.9"), &spoofed, &trusted), ip("203.0.113.9"));
        assert_eq!(client_address(ip("203.0.113.9"), &spoofed, &[]), ip("203.0.113.9"), "no proxy trusted");
        assert_eq!(client_address::<&str>(ip("10.0.0.1"), &[], &[]), ip("10.0.0.1"));
    }

    #[test]
    fn a_trusted_proxy_gives_the_address_it_got_the_request_from() {
        let trusted = cidrs(&["127.0.0.1"]);
        assert_eq!(client_address(ip("127.0.0.1"), &["198.51.100.7"], &trusted), ip("198.51.100.7"));
        // What the client wrote itself, left of what the proxy appended, is not believed.
        assert_eq!(client_address(ip("127.0.0.1"), &["1.2.3.4, 198.51.100.7"], &trusted), ip("198.51.100.7"));
        // No header from a trusted proxy: the proxy is the client (say, a health check).
        assert_eq!(client_address::<&str>(ip("127.0.0.1"), &[], &trusted), ip("127.0.0.1"));
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked_from_the_right() {
        let trusted = cidrs(&["127.0.0.1", "10.0.0.0/8"]);
        let chain = ["6.6.6.6, 198.51.100.7, 10.1.1.1", "10.2.2.2"];
        assert_eq!(client_address(ip("127.0.0.1"), &chain, &trusted), ip("198.51.100.7"));
        let chain = ["6.6.6.6,198.51.100.7,10.1.1.1,10.2.2.2"];
        assert_eq!(client_address(ip("127.0.0.1"), &chain, &trusted), ip("198.51.100.7"), "one header or several");
        // All trusted: the left-most.
        assert_eq!(client_address(ip("127.0.0.1"), &["10.3.3.3, 10.1.1.1"], &trusted), ip("10.3.3.3"));
    }

    #[test]
    fn ipv6_and_ports_and_mapped_addresses() {
        let trusted = cidrs(&["::1", "fd00::/8"]);
        let chain = ["2001:db8::42, fd00::1"];
        assert_eq!(client_address(ip("::1"), &chain, &trusted), ip("2001:db8::42"));
        assert_eq!(client_address(ip("::1"), &["[2001:db8::42]:4711"], &trusted), ip("2001:db8::42"));
        assert_eq!(client_address(ip("::1"), &["[2001:db8::42]"], &trusted), ip("2001:db8::42"));
        assert_eq!(client_address(ip("::1"), &["192.0.2.1:4711"], &trusted), ip("192.0.2.1"));
        assert_eq!(client_address(ip("::1"), &["::ffff:192.0.2.1"], &trusted), ip("192.0.2.1"));
        // A dual-stack socket reports an IPv4 peer as IPv4-mapped IPv6.
        let v4 = cidrs(&["127.0.0.1"]);
        assert_eq!(client_address(ip("::ffff:127.0.0.1"), &["192.0.2.1"], &v4), ip("192.0.2.1"));
        assert_eq!(client_address::<&str>(ip("::ffff:192.0.2.9"), &[], &v4), ip("192.0.2.9"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_good_address() {
        let trusted = cidrs(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = ip("127.0.0.1");
        assert_eq!(client_address(peer, &["198.51.100.7, unknown"], &trusted), peer);
        assert_eq!(client_address(peer, &["198.51.100.7, garbage, 10.1.1.1"], &trusted), ip("10.1.1.1"));
        assert_eq!(client_address(peer, &["198.51.100.7,,10.1.1.1"], &trusted), ip("10.1.1.1"));
        assert_eq!(client_address(peer, &[""], &trusted), peer);
        assert_eq!(client_address(peer, &["fe80::1%eth0"], &trusted), peer);
        assert_eq!(client_address(peer, &["198.51.100.7 10.1.1.1"], &trusted), peer);
        // Garbage left of the client does not matter.
        assert_eq!(client_address(peer, &["<script>, 198.51.100.7"], &trusted), ip("198.51.100.7"));
    }
}
