//! Site model: P-nodes, resources, reservation windows and the site's pool configuration.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// UTC seconds since the Unix epoch (`DateTime<Utc>::timestamp()` on the service side).
pub type Timestamp = i64;

/// Identifier of a virtual cluster's reservation, chosen by the caller (e.g. the System's UUID).
pub type ReservationId = String;

/// Half-open reservation window `[start, end)` in UTC seconds: a window ending at `t` and one
/// starting at `t` do not overlap, so P-node capacity and pool ids can be handed over at `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        Window { start, end }
    }

    pub fn duration(&self) -> i64 {
        self.end.saturating_sub(self.start)
    }

    pub fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The same duration starting at `start`.
    pub fn shifted_to(&self, start: Timestamp) -> Window {
        Window {
            start,
            end: start.saturating_add(self.duration()),
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// One of the three capacities a P-node offers and a node consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Dimension {
    Cpu,
    Memory,
    Disk,
}

impl Dimension {
    /// Fixed order used when diagnosing a refusal, so the reported shortage is deterministic.
    pub const ALL: [Dimension; 3] = [Dimension::Cpu, Dimension::Memory, Dimension::Disk];
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dimension::Cpu => "cpu",
            Dimension::Memory => "memory",
            Dimension::Disk => "disk",
        })
    }
}

/// The role of a node inside a virtual cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Frontend,
    Compute,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Frontend => "frontend",
            Role::Compute => "compute",
        })
    }
}

/// CPU cores, memory in MiB, disk in GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub struct Resources {
    pub cpu: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
}

impl Resources {
    pub const ZERO: Resources = Resources {
        cpu: 0,
        memory_mib: 0,
        disk_gib: 0,
    };

    pub fn new(cpu: u32, memory_mib: u64, disk_gib: u64) -> Self {
        Resources {
            cpu,
            memory_mib,
            disk_gib,
        }
    }

    pub fn get(&self, dimension: Dimension) -> u64 {
        match dimension {
            Dimension::Cpu => u64::from(self.cpu),
            Dimension::Memory => self.memory_mib,
            Dimension::Disk => self.disk_gib,
        }
    }

    /// True when every dimension of `self` is at most that of `capacity`.
    pub fn fits_within(&self, capacity: &Resources) -> bool {
        self.cpu <= capacity.cpu
            && self.memory_mib <= capacity.memory_mib
            && self.disk_gib <= capacity.disk_gib
    }

    /// The first dimension (in [`Dimension::ALL`] order) where `self` exceeds `capacity`.
    pub fn exceeded_dimension(&self, capacity: &Resources) -> Option<Dimension> {
        Dimension::ALL
            .into_iter()
            .find(|d| self.get(*d) > capacity.get(*d))
    }

    pub fn saturating_add(&self, other: &Resources) -> Resources {
        Resources {
            cpu: self.cpu.saturating_add(other.cpu),
            memory_mib: self.memory_mib.saturating_add(other.memory_mib),
            disk_gib: self.disk_gib.saturating_add(other.disk_gib),
        }
    }

    pub fn saturating_sub(&self, other: &Resources) -> Resources {
        Resources {
            cpu: self.cpu.saturating_sub(other.cpu),
            memory_mib: self.memory_mib.saturating_sub(other.memory_mib),
            disk_gib: self.disk_gib.saturating_sub(other.disk_gib),
        }
    }

    /// Per-dimension maximum.
    pub fn max_each(&self, other: &Resources) -> Resources {
        Resources {
            cpu: self.cpu.max(other.cpu),
            memory_mib: self.memory_mib.max(other.memory_mib),
            disk_gib: self.disk_gib.max(other.disk_gib),
        }
    }

    /// How many nodes of `shape` fit into `self`; a dimension the shape does not use (0) never
    /// limits the count.
    pub fn count_fitting(&self, shape: &Resources) -> u64 {
        Dimension::ALL
            .iter()
            .filter_map(|d| self.get(*d).checked_div(shape.get(*d)))
            .min()
            .unwrap_or(u64::MAX)
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cpu, {} MiB, {} GiB",
            self.cpu, self.memory_mib, self.disk_gib
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PNodeState {
    #[default]
    Up,
    Down,
    Maintenance,
}

/// A physical host that runs the virtual machines of virtual clusters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PNode {
    pub name: String,
    pub capacity: Resources,
    #[serde(default)]
    pub labels: BTreeSet<String>,
    /// Can host a virtual cluster's GW-node (has a leg on the outside network).
    #[serde(default)]
    pub gw_capable: bool,
    #[serde(default)]
    pub state: PNodeState,
}

impl PNode {
    pub fn new(name: impl Into<String>, capacity: Resources) -> Self {
        PNode {
            name: name.into(),
            capacity,
            labels: BTreeSet::new(),
            gw_capable: false,
            state: PNodeState::Up,
        }
    }

    pub fn with_labels<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.labels.extend(labels.into_iter().map(Into::into));
        self
    }

    pub fn gw_capable(mut self, gw_capable: bool) -> Self {
        self.gw_capable = gw_capable;
        self
    }

    pub fn has_labels(&self, required: &BTreeSet<String>) -> bool {
        required.is_subset(&self.labels)
    }
}

/// Which kind of network id isolates a virtual cluster's private L2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetworkKind {
    /// 802.1Q VLAN id; 0, 1 and 4095 are never handed out.
    Vlan,
    /// VXLAN VNI, 1 ..= 2^24-1.
    Vxlan,
}

impl NetworkKind {
    /// The whole id space of this kind (12-bit VLAN id, 24-bit VNI).
    pub fn id_space(&self) -> IdRange {
        match self {
            NetworkKind::Vlan => IdRange::new(0, 4095),
            NetworkKind::Vxlan => IdRange::new(0, (1 << 24) - 1),
        }
    }

    /// Ids never handed out whatever the pool says: VLAN 0 (priority tag), 1 (default VLAN)
    /// and 4095 (reserved by 802.1Q); VNI 0.
    pub fn always_excluded(&self) -> &'static [u32] {
        match self {
            NetworkKind::Vlan => &[0, 1, 4095],
            NetworkKind::Vxlan => &[0],
        }
    }
}

/// Inclusive range of ids `first ..= last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdRange {
    pub first: u32,
    pub last: u32,
}

impl IdRange {
    pub fn new(first: u32, last: u32) -> Self {
        IdRange { first, last }
    }

    pub fn single(id: u32) -> Self {
        IdRange {
            first: id,
            last: id,
        }
    }
}

/// Pool of network ids (OpenNebula `VLAN_IDS=[START, RESERVED]` semantics, narrowed by a range
/// like Eucalyptus' `maxnetworktag`): the lowest free id in `range` outside `reserved` is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPool {
    pub kind: NetworkKind,
    pub range: IdRange,
    pub reserved: Vec<IdRange>,
}

impl NetworkPool {
    pub fn vlan(range: IdRange, reserved: Vec<IdRange>) -> Self {
        NetworkPool {
            kind: NetworkKind::Vlan,
            range,
            reserved,
        }
    }

    pub fn vxlan(range: IdRange, reserved: Vec<IdRange>) -> Self {
        NetworkPool {
            kind: NetworkKind::Vxlan,
            range,
            reserved,
        }
    }
}

/// A virtual cluster's network id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkId {
    pub kind: NetworkKind,
    pub id: u32,
}

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            NetworkKind::Vlan => write!(f, "VLAN id {}", self.id),
            NetworkKind::Vxlan => write!(f, "VNI {}", self.id),
        }
    }
}

/// Longest cluster subnet: a /30 still holds the GW-node and the frontend.
pub const MAX_PREFIX_LEN: u8 = 30;

/// An IPv4 prefix `addr/prefix_len`; `addr` is the network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

impl Ipv4Net {
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Self {
        Ipv4Net { addr, prefix_len }
    }

    /// Number of addresses, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_len.min(32)))
    }

    pub fn first(&self) -> u32 {
        u32::from(self.addr)
    }

    pub fn last(&self) -> u32 {
        // size >= 1 and the network is aligned, so this stays inside u32.
        let last = u64::from(self.first()) + self.size() - 1;
        u32::try_from(last).unwrap_or(u32::MAX)
    }

    pub fn is_aligned(&self) -> bool {
        u64::from(self.first()) % self.size() == 0
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.first()..=self.last()).contains(&u32::from(ip))
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// Whether a `/prefix_len` cluster subnet can be cut from this supernet.
    pub fn can_hold(&self, prefix_len: u8) -> bool {
        (self.prefix_len..=MAX_PREFIX_LEN).contains(&prefix_len)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The locally administered bit of the first octet (IEEE 802: U/L bit).
    pub fn is_locally_administered(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    pub fn is_unicast(&self) -> bool {
        self.0[0] & 0x01 == 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// A text that is not `xx:xx:xx:xx:xx:xx` (or with `-`), hex digits in either case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a MAC address: {0:?}")]
pub struct BadMac(pub String);

impl std::str::FromStr for MacAddr {
    type Err = BadMac;

    /// `52:54:00:AB:cd:ef` or `52-54-00-ab-cd-ef`.
    fn from_str(s: &str) -> Result<MacAddr, BadMac> {
        let mut octets = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for octet in &mut octets {
            let part = parts.next().ok_or_else(|| BadMac(s.to_owned()))?;
            if part.len() != 2 {
                return Err(BadMac(s.to_owned()));
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| BadMac(s.to_owned()))?;
        }
        if parts.next().is_some() {
            return Err(BadMac(s.to_owned()));
        }
        Ok(MacAddr(octets))
    }
}

/// Serde as text (`52:54:00:ab:cd:ef`), for formats people read and write; the derived
/// form (six numbers) stays what stored allocations hold.
pub mod mac_text {
    use super::MacAddr;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mac: &MacAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(mac)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MacAddr, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }

    /// The same for an optional MAC.
    pub mod option {
        use super::MacAddr;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(mac: &Option<MacAddr>, s: S) -> Result<S::Ok, S::Error> {
            match mac {
                Some(mac) => s.collect_str(mac),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MacAddr>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|t| t.parse().map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// How P-nodes are ranked after filtering (OpenNebula's packing / striping policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Policy {
    /// Fill the most-used P-nodes first (best fit): keeps whole P-nodes free for big clusters.
    Pack,
    /// Use the least-used P-nodes first, one compute per P-node per round: spreads load and
    /// failure impact.
    #[default]
    Spread,
}

/// Rocks-style host names of compute nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum NamingScheme {
    /// `compute-0-0`, `compute-0-1`, … (one rack).
    #[default]
    SingleRack,
    /// `compute-R-N`: rack R = rank of the hosting P-node among the cluster's P-nodes (by name),
    /// N = rank within that P-node, so the name tells which computes share a P-node.
    RackPerPNode,
}

/// Site-wide configuration of pools and placement; fields left out of a stored or written
/// configuration take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    pub network_pool: NetworkPool,
    /// Supernet that virtual-cluster subnets are cut from.
    pub supernet: Ipv4Net,
    /// Subnet prefix length used when a request names none.
    pub default_prefix_len: u8,
    /// First three octets of every MAC handed out; must be unicast and locally administered.
    pub mac_prefix: [u8; 3],
    pub policy: Policy,
    pub naming: NamingScheme,
    /// How far past the requested start the earliest feasible start is searched.
    pub search_horizon_secs: i64,
    /// Bound on candidate starts tried, so a refusal costs at most this many placement runs.
    pub max_probes: usize,
    /// A request naming its subnet gets it even while a concurrent cluster has an overlapping
    /// one: every cluster has its own L2 network and its GW-node NATs it, so private ranges
    /// may repeat. Subnets the site chooses stay disjoint either way.
    pub overlapping_subnets: bool,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            // VXLAN is what this deployment's network driver uses by default (see BRIEF).
            network_pool: NetworkPool::vxlan(NetworkKind::Vxlan.id_space(), Vec::new()),
            supernet: Ipv4Net::new(Ipv4Addr::new(10, 128, 0, 0), 9),
            default_prefix_len: 24,
            // 0x02 = locally administered unicast; "VC" in ASCII.
            mac_prefix: [0x02, 0x56, 0x43],
            policy: Policy::Spread,
            naming: NamingScheme::SingleRack,
            search_horizon_secs: 90 * 24 * 3600,
            max_probes: 64,
            overlapping_subnets: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_half_open() {
        let a = Window::new(0, 10);
        assert!(!a.overlaps(&Window::new(10, 20)));
        assert!(a.overlaps(&Window::new(9, 20)));
        assert!(Window::new(2, 3).overlaps(&a));
        assert_eq!(a.shifted_to(5), Window::new(5, 15));
    }

    #[test]
    fn count_fitting_ignores_unused_dimensions() {
        let free = Resources::new(8, 4096, 0);
        let shape = Resources::new(2, 1024, 0);
        assert_eq!(free.count_fitting(&shape), 4);
        assert_eq!(free.count_fitting(&Resources::new(3, 0, 0)), 2);
        assert_eq!(free.count_fitting(&Resources::new(1, 0, 1)), 0);
        assert_eq!(free.count_fitting(&Resources::ZERO), u64::MAX);
    }

    #[test]
    fn exceeded_dimension_in_fixed_order() {
        let cap = Resources::new(4, 100, 10);
        assert_eq!(
            Resources::new(5, 200, 20).exceeded_dimension(&cap),
            Some(Dimension::Cpu)
        );
        assert_eq!(
            Resources::new(4, 100, 11).exceeded_dimension(&cap),
            Some(Dimension::Disk)
        );
        assert_eq!(Resources::new(4, 100, 10).exceeded_dimension(&cap), None);
    }

    #[test]
    fn ipv4_net_arithmetic() {
        let net = Ipv4Net::new(Ipv4Addr::new(10, 128, 0, 0), 9);
        assert_eq!(net.size(), 1 << 23);
        assert_eq!(Ipv4Addr::from(net.last()), Ipv4Addr::new(10, 255, 255, 255));
        assert!(net.is_aligned());
        assert!(!Ipv4Net::new(Ipv4Addr::new(10, 1, 0, 0), 8).is_aligned());
        let a = Ipv4Net::new(Ipv4Addr::new(10, 128, 0, 0), 24);
        let b = Ipv4Net::new(Ipv4Addr::new(10, 128, 0, 128), 25);
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&Ipv4Net::new(Ipv4Addr::new(10, 128, 1, 0), 24)));
    }

    #[test]
    fn mac_display_and_bits() {
        let mac = MacAddr([0x02, 0x56, 0x43, 0, 1, 0xab]);
        assert_eq!(mac.to_string(), "02:56:43:00:01:ab");
        assert!(mac.is_locally_administered() && mac.is_unicast());
        assert!(!MacAddr([0x01, 0, 0, 0, 0, 0]).is_unicast());
        assert!(!MacAddr([0x00, 0x16, 0x3e, 0, 0, 0]).is_locally_administered());
    }
}

#[cfg(test)]
mod mac_tests {
    use super::MacAddr;

    #[test]
    fn macs_parse_in_either_notation_and_print_canonically() {
        let mac: MacAddr = "52-54-00-AB-cd-EF".parse().unwrap_or(MacAddr([0; 6]));
        assert_eq!(mac.to_string(), "52:54:00:ab:cd:ef");
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:eg",
            "525:4:00:ab:cd:ef",
            "52:54:00:ab:cd:ef:00",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }
}
