//! IPv4 address management: subnets, the pool new networks take theirs from (docker's
//! default pools), and the lowest free address in a network's range.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        let mask = Subnet::mask_of(prefix);
        Subnet { base: Ipv4Addr::from(u32::from(addr) & mask), prefix }
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        }
    }

    pub fn mask(&self) -> u32 {
        Subnet::mask_of(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.base)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.base) || other.contains(self.base)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) | !self.mask())
    }

    /// The first usable host address (docker's default gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;

    /// `a.b.c.d/n`; host bits must be zero, as docker requires.
    fn from_str(s: &str) -> Result<Subnet, String> {
        let (addr, prefix) = s.split_once('/').ok_or_else(|| format!("invalid CIDR address: {s}"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| format!("invalid CIDR address: {s} (only IPv4 is supported)"))?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(|| format!("invalid CIDR address: {s}"))?;
        let subnet = Subnet::new(addr, prefix);
        if subnet.base != addr {
            return Err(format!("invalid subnet {s}: it has host bits set (did you mean {subnet}?)"));
        }
        if prefix > 30 {
            return Err(format!("invalid subnet {s}: it is too small for containers (at most /30)"));
        }
        Ok(subnet)
    }
}

/// The subnets networks get when none is given: 172.17-31.0.0/16, then
/// 192.168.0.0/20 blocks (docker's default address pools).
pub fn default_pool() -> impl Iterator<Item = Subnet> {
    (17u8..=31).map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16)).chain((0u8..16).map(|i| Subnet::new(Ipv4Addr::new(192, 168, i * 16, 0), 20)))
}

/// The first pool subnet that overlaps none of `taken`.
pub fn pick_subnet(taken: &[Subnet]) -> Option<Subnet> {
    default_pool().find(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
}

/// The lowest address of `range` (within `subnet`) not in `used`, skipping the network
/// and broadcast addresses.
pub fn allocate(subnet: &Subnet, range: &Subnet, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let first = u32::from(range.base).max(u32::from(subnet.base) + 1);
    let last = u32::from(range.broadcast()).min(u32::from(subnet.broadcast()) - 1);
    (first..=last).map(Ipv4Addr::from).find(|ip| !used.contains(ip))
}

/// Docker's MAC for a container address: 02:42 followed by the IPv4 bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// A MAC address as `--mac-address` takes it (six hex pairs, `:`-separated), unicast.
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let invalid = || format!("{text} is not a valid mac address");
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return Err(invalid());
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return Err(invalid());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
    }
    if mac[0] & 1 == 1 {
        return Err(format!("{text} is a multicast address, not one a container can have"));
    }
    Ok(mac)
}

pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// The IPv4 routes of the current network namespace (from /proc/net/route), so a new
/// network avoids subnets already in use there.
pub fn routed_subnets() -> Vec<Subnet> {
    let Ok(table) = std::fs::read_to_string("/proc/net/route") else { return Vec::new() };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(fields.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?;
            // /proc/net/route prints the address's network-order bytes as a native u32.
            let prefix = mask.count_ones() as u8;
            (prefix > 0).then(|| Subnet::new(Ipv4Addr::from(dest.to_ne_bytes()), prefix))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_strictly_and_overlap() {
        let s: Subnet = "10.1.0.0/16".parse().expect("parse");
        assert_eq!(s.to_string(), "10.1.0.0/16");
        assert!("10.1.0.1/16".parse::<Subnet>().expect_err("host bits").contains("did you mean 10.1.0.0/16"));
        assert!("10.1.0.0".parse::<Subnet>().is_err());
        assert!("10.1.0.0/33".parse::<Subnet>().is_err());
        assert!("fd00::/64".parse::<Subnet>().expect_err("v6").contains("IPv4"));
        assert!(s.overlaps(&"10.1.2.0/24".parse().expect("parse")));
        assert!(!s.overlaps(&"10.2.0.0/16".parse().expect("parse")));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 1, 255, 255));
    }

    #[test]
    fn the_pool_skips_taken_subnets_and_addresses_skip_used_ones() {
        let taken = ["172.17.0.0/16".parse().expect("p"), "172.18.5.0/24".parse().expect("p")];
        assert_eq!(pick_subnet(&taken).expect("free").to_string(), "172.19.0.0/16");
        let subnet: Subnet = "10.0.0.0/29".parse().expect("p");
        let mut used = BTreeSet::from([Ipv4Addr::new(10, 0, 0, 1)]);
        assert_eq!(allocate(&subnet, &subnet, &used), Some(Ipv4Addr::new(10, 0, 0, 2)));
        used.extend((2..=6).map(|i| Ipv4Addr::new(10, 0, 0, i)));
        assert_eq!(allocate(&subnet, &subnet, &used), None, "broadcast is never handed out");
        let range: Subnet = "10.0.0.4/30".parse().expect("p");
        assert_eq!(allocate(&subnet, &range, &BTreeSet::new()), Some(Ipv4Addr::new(10, 0, 0, 4)));
        assert_eq!(mac_string(mac_for(Ipv4Addr::new(172, 17, 0, 2))), "02:42:ac:11:00:02");
    }
}
