//! Blocks of IP addresses (`--trusted-proxy`): `10.0.0.0/8`, `2001:db8::/32`, or one address.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A block of IP addresses: a network address and a prefix length. A bare address is the
/// block of that address alone (`/32` for IPv4, `/128` for IPv6).
///
/// An IPv4 block also holds the IPv4-mapped IPv6 form of its addresses (`::ffff:10.1.2.3`
/// is in `10.0.0.0/8`), which is how a dual-stack socket reports an IPv4 peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), ip) => match ip.to_canonical() {
                IpAddr::V4(ip) => same_prefix(u32::from(net).into(), u32::from(ip).into(), 32, self.prefix),
                IpAddr::V6(_) => false,
            },
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(net.into(), ip.into(), 128, self.prefix),
            (IpAddr::V6(net), IpAddr::V4(ip)) => same_prefix(net.into(), ip.to_ipv6_mapped().into(), 128, self.prefix),
        }
    }
}

/// Whether the first `prefix` of the `bits` low bits of `a` and `b` agree.
fn same_prefix(a: u128, b: u128, bits: u32, prefix: u8) -> bool {
    let host_bits = bits - u32::from(prefix);
    (a ^ b).checked_shr(host_bits).unwrap_or(0) == 0
}

/// Why a string is not a [`Cidr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("must be an IP address or a block like 10.0.0.0/8 or 2001:db8::/32")]
    Shape,
    #[error("the prefix length must be 0 to {0}")]
    Prefix(u8),
    #[error("has bits set after the prefix: the block is {0}")]
    HostBits(Cidr),
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| CidrError::Shape)?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().ok().filter(|&p| p <= max).ok_or(CidrError::Prefix(max))?
            }
            Some(_) => return Err(CidrError::Prefix(max)),
        };
        let cidr = Cidr { network, prefix };
        let masked = cidr.masked();
        if masked != cidr {
            return Err(CidrError::HostBits(masked));
        }
        Ok(cidr)
    }
}

impl Cidr {
    /// The block with the bits after the prefix cleared.
    fn masked(self) -> Cidr {
        let network = match self.network {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Cidr { network, prefix: self.prefix }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_blocks() {
        let private = cidr("10.0.0.0/8");
        assert!(private.contains(ip("10.0.0.0")) && private.contains(ip("10.255.255.255")));
        assert!(!private.contains(ip("11.0.0.0")) && !private.contains(ip("9.255.255.255")));
        assert!(cidr("192.168.1.0/24").contains(ip("192.168.1.77")));
        assert!(!cidr("192.168.1.0/24").contains(ip("192.168.2.77")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!cidr("0.0.0.0/0").contains(ip("2001:db8::1")), "an IPv4 block holds no IPv6 address");
    }

    #[test]
    fn a_bare_address_is_a_block_of_one() {
        let one = cidr("127.0.0.1");
        assert_eq!(one.to_string(), "127.0.0.1/32");
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let one = cidr("::1");
        assert_eq!(one.to_string(), "::1/128");
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
    }

    #[test]
    fn ipv6_blocks() {
        let doc = cidr("2001:db8::/32");
        assert!(doc.contains(ip("2001:db8:ffff::1")));
        assert!(!doc.contains(ip("2001:db9::1")));
        assert!(!doc.contains(ip("10.0.0.1")));
        assert!(cidr("::/0").contains(ip("fe80::1")));
        assert!(cidr("fc00::/7").contains(ip("fdff::1")) && !cidr("fc00::/7").contains(ip("fe00::1")));
    }

    #[test]
    fn ipv4_mapped_addresses_are_in_their_ipv4_block() {
        assert!(cidr("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(!cidr("10.0.0.0/8").contains(ip("::ffff:11.1.2.3")));
        assert!(cidr("::ffff:10.0.0.0/104").contains(ip("10.1.2.3")));
    }

    #[test]
    fn what_is_not_a_block_is_refused_with_a_reason() {
        for (bad, want) in [
            ("", CidrError::Shape),
            ("10.0.0", CidrError::Shape),
            ("proxy.example.com", CidrError::Shape),
            ("10.0.0.0/", CidrError::Prefix(32)),
            ("10.0.0.0/33", CidrError::Prefix(32)),
            ("10.0.0.0/-1", CidrError::Prefix(32)),
            ("10.0.0.0/+8", CidrError::Prefix(32)),
            ("10.0.0.0/8/8", CidrError::Prefix(32)),
            ("::/129", CidrError::Prefix(128)),
            ("10.0.0.0/999999999999", CidrError::Prefix(32)),
            ("fe80::1%eth0", CidrError::Shape),
        ] {
            assert_eq!(bad.parse::<Cidr>(), Err(want), "{bad:?}");
        }
        let e = "10.1.2.3/8".parse::<Cidr>().unwrap_err();
        assert_eq!(e.to_string(), "has bits set after the prefix: the block is 10.0.0.0/8");
        let e = "2001:db8::1/32".parse::<Cidr>().unwrap_err();
        assert_eq!(e.to_string(), "has bits set after the prefix: the block is 2001:db8::/32");
    }
}
