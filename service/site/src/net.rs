//! Per-cluster network driver of a P-node.
//!
//! Each virtual cluster gets a cluster bridge on every P-node that hosts one of its nodes; the
//! nodes' taps are ports of that bridge, and the bridge's uplink joins it to the same cluster's
//! bridges on other P-nodes:
//! - [`L2Mode::Vxlan`]: a VXLAN device with VNI = the cluster's network id over the underlay,
//!   with one static flood entry per peer P-node (no multicast needed on the underlay);
//! - [`L2Mode::Dot1q`]: an 802.1Q sub-interface of the physical NIC, VLAN id = network id
//!   (production; this development kernel has no 802.1Q support, so unit tests cover it).
//!
//! Planning is pure: [`plan_up`] and [`plan_down`] turn the desired [`ClusterNet`] and the
//! [`Observed`] state into the missing `ip`/`bridge` commands. [`ensure`] and [`remove`] observe
//! (via `ip -j` JSON), plan and run.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::process::Command;

use serde::{Deserialize, Serialize};
use vcds_placement::MacAddr;

use crate::Error;

/// VXLAN's IANA port; peers must agree on it.
pub const VXLAN_PORT: u16 = 4789;
/// Largest VNI (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;
/// Largest usable 802.1Q VLAN id (4095 is reserved).
pub const MAX_VLAN_ID: u32 = 4094;
/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// How a cluster bridge reaches the same cluster's bridges on other P-nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum L2Mode {
    /// VXLAN over the underlay: `local` is this P-node's underlay address on `underlay_dev`,
    /// `peers` the underlay addresses of the other P-nodes hosting the cluster.
    Vxlan {
        underlay_dev: String,
        underlay_ip: Ipv4Addr,
        peers: Vec<Ipv4Addr>,
    },
    /// 802.1Q tagged sub-interface of `phys_dev`.
    Dot1q { phys_dev: String },
}

/// Desired network state of one cluster on one P-node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNet {
    /// The P-node's network namespace; `None` for the current one (a real P-node).
    pub netns: Option<String>,
    /// The cluster's network id: VNI in VXLAN mode, VLAN id in 802.1Q mode.
    pub network_id: u32,
    pub mode: L2Mode,
    /// Taps of this cluster's virtual nodes on this P-node (see [`tap_name`]).
    pub taps: Vec<String>,
}

impl ClusterNet {
    /// The cluster bridge's name.
    pub fn bridge(&self) -> String {
        bridge_name(self.network_id)
    }

    /// The bridge's uplink: the VXLAN device or the 802.1Q sub-interface.
    pub fn uplink(&self) -> String {
        match &self.mode {
            L2Mode::Vxlan { .. } => vxlan_name(self.network_id),
            L2Mode::Dot1q { phys_dev } => vlan_dev_name(phys_dev, self.network_id),
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let (max, what) = match self.mode {
            L2Mode::Vxlan { .. } => (MAX_VNI, "VNI"),
            L2Mode::Dot1q { .. } => (MAX_VLAN_ID, "VLAN id"),
        };
        if self.network_id == 0 || self.network_id > max {
            return Err(Error::InvalidSpec(format!(
                "{what} {} outside 1..={max}",
                self.network_id
            )));
        }
        for name in self.taps.iter().chain([&self.uplink()]) {
            if name.is_empty() || name.len() > MAX_IFNAME {
                return Err(Error::InvalidSpec(format!(
                    "interface name {name:?} is empty or longer than {MAX_IFNAME} bytes"
                )));
            }
        }
        Ok(())
    }
}

/// Cluster bridge name, e.g. `vcbr100` (at most 12 bytes for any VNI).
pub fn bridge_name(network_id: u32) -> String {
    format!("vcbr{network_id}")
}

/// The network id of cluster bridge `name` (the inverse of [`bridge_name`]).
pub fn bridge_network_id(name: &str) -> Option<u32> {
    name.strip_prefix("vcbr")?.parse().ok()
}

/// VXLAN device name, e.g. `vcvx100`.
pub fn vxlan_name(network_id: u32) -> String {
    format!("vcvx{network_id}")
}

/// 802.1Q sub-interface name: the conventional `PHYDEV.VID` when it fits in 15 bytes, else
/// `vcvlVID` (long predictable NIC names such as `enp130s0f0np0` would not fit).
pub fn vlan_dev_name(phys_dev: &str, vlan_id: u32) -> String {
    let conventional = format!("{phys_dev}.{vlan_id}");
    if conventional.len() <= MAX_IFNAME {
        conventional
    } else {
        format!("vcvl{vlan_id}")
    }
}

/// Tap of the `node`-th virtual node of a cluster on a P-node, e.g. `vt100x0` (at most 14 bytes).
pub fn tap_name(network_id: u32, node: u8) -> String {
    format!("vt{network_id}x{node}")
}

/// MAC of a virtual node: QEMU's locally administered 52:54 prefix, the 24-bit network id and
/// the node's index, so it is unique across clusters and stable across restarts.
pub fn node_mac(network_id: u32, node: u8) -> MacAddr {
    let [_, a, b, c] = network_id.to_be_bytes();
    MacAddr([0x52, 0x54, a, b, c, node])
}

/// One `ip` or `bridge` invocation, program first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd(pub Vec<String>);

impl Cmd {
    fn new(program: &str, netns: Option<&str>, args: &[&str]) -> Cmd {
        let mut argv = vec![program.to_owned()];
        if let Some(ns) = netns {
            argv.extend(["-n".to_owned(), ns.to_owned()]);
        }
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        Cmd(argv)
    }

    /// `ip [-n NETNS] ARGS…`
    pub fn ip(netns: Option<&str>, args: &[&str]) -> Cmd {
        Cmd::new("ip", netns, args)
    }

    /// `bridge [-n NETNS] ARGS…`
    pub fn bridge(netns: Option<&str>, args: &[&str]) -> Cmd {
        Cmd::new("bridge", netns, args)
    }

    /// Runs the command; a non-zero exit becomes [`Error::Command`] carrying stderr.
    pub fn run(&self) -> Result<String, Error> {
        let (program, args) = self
            .0
            .split_first()
            .ok_or_else(|| Error::InvalidSpec("empty command".to_owned()))?;
        let output = Command::new(program)
            .args(args)
            .output()
            .map_err(|source| Error::Spawn {
                cmd: self.to_string(),
                source,
            })?;
        if !output.status.success() {
            return Err(Error::Command {
                cmd: self.to_string(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// A link as `ip -d -j link show` reports it (only the fields the driver looks at).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Link {
    pub ifname: String,
    /// Lower device (a VLAN's NIC, a veth's peer).
    pub link: Option<String>,
    #[serde(default)]
    pub flags: Vec<String>,
    pub master: Option<String>,
    pub linkinfo: Option<LinkInfo>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct LinkInfo {
    pub info_kind: Option<String>,
    pub info_data: Option<serde_json::Value>,
}

impl Link {
    /// The device kind: `bridge`, `vxlan`, `vlan`, `tun`, `veth`…
    pub fn kind(&self) -> Option<&str> {
        self.linkinfo.as_ref()?.info_kind.as_deref()
    }

    /// VNI of a vxlan link or VLAN id of a vlan link.
    pub fn id(&self) -> Option<u64> {
        self.linkinfo
            .as_ref()?
            .info_data
            .as_ref()?
            .get("id")?
            .as_u64()
    }

    pub fn is_up(&self) -> bool {
        self.flags.iter().any(|f| f == "UP")
    }
}

#[derive(Debug, Deserialize)]
struct FdbEntry {
    mac: String,
    dst: Option<String>,
}

/// What a P-node namespace currently has, as far as one cluster is concerned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub links: Vec<Link>,
    /// Underlay addresses in the VXLAN device's all-zero (flood) FDB entries.
    pub flood_peers: BTreeSet<Ipv4Addr>,
}

impl Observed {
    /// Builds the observation from `ip -d -j link show` and `bridge -j fdb show dev VXLAN`
    /// output (`fdb_json` empty when there is no VXLAN device).
    pub fn parse(links_json: &str, fdb_json: &str) -> Result<Observed, Error> {
        let links = serde_json::from_str(links_json).map_err(|source| Error::Json {
            what: "ip -j link show".to_owned(),
            source,
        })?;
        let mut flood_peers = BTreeSet::new();
        if !fdb_json.trim().is_empty() {
            let entries: Vec<FdbEntry> =
                serde_json::from_str(fdb_json).map_err(|source| Error::Json {
                    what: "bridge -j fdb show".to_owned(),
                    source,
                })?;
            flood_peers.extend(
                entries
                    .iter()
                    .filter(|e| e.mac == "00:00:00:00:00:00")
                    .filter_map(|e| e.dst.as_deref()?.parse::<Ipv4Addr>().ok()),
            );
        }
        Ok(Observed { links, flood_peers })
    }

    fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.ifname == name)
    }
}

/// Checks that an existing device is what the plan would have created.
fn check_existing(link: &Link, kind: &str, id: Option<u32>) -> Result<(), Error> {
    if link.kind() != Some(kind) {
        return Err(Error::Conflict {
            dev: link.ifname.clone(),
            reason: format!("is a {:?} device, not {kind}", link.kind()),
        });
    }
    if let Some(id) = id {
        if link.id() != Some(u64::from(id)) {
            return Err(Error::Conflict {
                dev: link.ifname.clone(),
                reason: format!("has id {:?}, not {id}", link.id()),
            });
        }
    }
    Ok(())
}

/// Checks that an existing uplink carries this cluster's id over the intended underlay or NIC;
/// a mismatch would silently join the cluster bridge to the wrong network.
fn check_uplink(desired: &ClusterNet, link: &Link) -> Result<(), Error> {
    let conflict = |reason: String| Error::Conflict {
        dev: link.ifname.clone(),
        reason,
    };
    match &desired.mode {
        L2Mode::Vxlan {
            underlay_dev,
            underlay_ip,
            ..
        } => {
            check_existing(link, "vxlan", Some(desired.network_id))?;
            let data = |key: &str| {
                link.linkinfo
                    .as_ref()
                    .and_then(|i| i.info_data.as_ref())
                    .and_then(|d| d.get(key))
                    .cloned()
                    .unwrap_or_default()
            };
            let (local, dev, port) = (data("local"), data("link"), data("port"));
            if local.as_str() != Some(&underlay_ip.to_string())
                || dev.as_str() != Some(underlay_dev)
                || port.as_u64() != Some(u64::from(VXLAN_PORT))
            {
                return Err(conflict(format!(
                    "runs local {local} dev {dev} port {port}, not {underlay_ip} {underlay_dev} {VXLAN_PORT}"
                )));
            }
        }
        L2Mode::Dot1q { phys_dev } => {
            check_existing(link, "vlan", Some(desired.network_id))?;
            if link.link.as_deref() != Some(phys_dev) {
                return Err(conflict(format!("sits on {:?}, not {phys_dev}", link.link)));
            }
        }
    }
    Ok(())
}

/// Commands that bring `observed` to `desired`: create what is missing, enslave what is not on
/// the cluster bridge, set links up, and reconcile VXLAN flood entries with the peer list.
/// Empty when the P-node already matches. Fails on name clashes with foreign devices.
pub fn plan_up(desired: &ClusterNet, observed: &Observed) -> Result<Vec<Cmd>, Error> {
    desired.validate()?;
    let ns = desired.netns.as_deref();
    let id = desired.network_id.to_string();
    let bridge = desired.bridge();
    let uplink = desired.uplink();
    let mut cmds = Vec::new();

    match observed.link(&bridge) {
        Some(link) => check_existing(link, "bridge", None)?,
        None => cmds.push(Cmd::ip(ns, &["link", "add", &bridge, "type", "bridge"])),
    }

    match (&desired.mode, observed.link(&uplink)) {
        (_, Some(link)) => check_uplink(desired, link)?,
        (
            L2Mode::Vxlan {
                underlay_dev,
                underlay_ip,
                ..
            },
            None,
        ) => {
            let local = underlay_ip.to_string();
            let port = VXLAN_PORT.to_string();
            // nolearning: remote MACs are reached by flooding to the static peer list, so a
            // spoofed packet on the underlay cannot redirect a cluster's traffic.
            cmds.push(Cmd::ip(
                ns,
                &[
                    "link",
                    "add",
                    &uplink,
                    "type",
                    "vxlan",
                    "id",
                    &id,
                    "dstport",
                    &port,
                    "local",
                    &local,
                    "dev",
                    underlay_dev,
                    "nolearning",
                ],
            ));
        }
        (L2Mode::Dot1q { phys_dev }, None) => cmds.push(Cmd::ip(
            ns,
            &[
                "link", "add", "link", phys_dev, "name", &uplink, "type", "vlan", "id", &id,
            ],
        )),
    }

    if let L2Mode::Vxlan { peers, .. } = &desired.mode {
        let wanted: BTreeSet<Ipv4Addr> = peers.iter().copied().collect();
        for peer in wanted.difference(&observed.flood_peers) {
            let dst = peer.to_string();
            cmds.push(Cmd::bridge(
                ns,
                &[
                    "fdb",
                    "append",
                    "00:00:00:00:00:00",
                    "dev",
                    &uplink,
                    "dst",
                    &dst,
                ],
            ));
        }
        for stale in observed.flood_peers.difference(&wanted) {
            let dst = stale.to_string();
            cmds.push(Cmd::bridge(
                ns,
                &[
                    "fdb",
                    "del",
                    "00:00:00:00:00:00",
                    "dev",
                    &uplink,
                    "dst",
                    &dst,
                ],
            ));
        }
    }

    for tap in &desired.taps {
        match observed.link(tap) {
            Some(link) => check_existing(link, "tun", None)?,
            None => cmds.push(Cmd::ip(ns, &["tuntap", "add", tap, "mode", "tap"])),
        }
    }

    for port in std::iter::once(&uplink).chain(&desired.taps) {
        let link = observed.link(port);
        if link.and_then(|l| l.master.as_deref()) != Some(bridge.as_str()) {
            cmds.push(Cmd::ip(ns, &["link", "set", port, "master", &bridge]));
        }
        if !link.is_some_and(Link::is_up) {
            cmds.push(Cmd::ip(ns, &["link", "set", port, "up"]));
        }
    }
    if !observed.link(&bridge).is_some_and(Link::is_up) {
        cmds.push(Cmd::ip(ns, &["link", "set", &bridge, "up"]));
    }
    Ok(cmds)
}

/// Commands that remove the cluster's taps, uplink and bridge from the P-node; devices that
/// are already gone are skipped. The physical NIC of 802.1Q mode is left alone.
pub fn plan_down(desired: &ClusterNet, observed: &Observed) -> Vec<Cmd> {
    let ns = desired.netns.as_deref();
    desired
        .taps
        .iter()
        .cloned()
        .chain([desired.uplink(), desired.bridge()])
        .filter(|name| observed.link(name).is_some())
        .map(|name| Cmd::ip(ns, &["link", "del", &name]))
        .collect()
}

/// Reads the P-node's current links and, if the VXLAN device exists, its flood entries.
pub fn observe(desired: &ClusterNet) -> Result<Observed, Error> {
    let ns = desired.netns.as_deref();
    let links = Cmd::ip(ns, &["-d", "-j", "link", "show"]).run()?;
    let mut observed = Observed::parse(&links, "")?;
    if matches!(desired.mode, L2Mode::Vxlan { .. }) {
        let vxlan = desired.uplink();
        if observed.link(&vxlan).is_some() {
            let fdb = Cmd::bridge(ns, &["-j", "fdb", "show", "dev", &vxlan]).run()?;
            observed = Observed::parse(&links, &fdb)?;
        }
    }
    Ok(observed)
}

/// Brings the cluster's network on this P-node to the desired state; returns the commands it
/// had to run (none when nothing was missing).
pub fn ensure(desired: &ClusterNet) -> Result<Vec<Cmd>, Error> {
    let cmds = plan_up(desired, &observe(desired)?)?;
    for cmd in &cmds {
        cmd.run()?;
    }
    Ok(cmds)
}

/// Removes the cluster's network from this P-node; returns the commands it ran. A device that
/// disappears between observing and deleting (a concurrent teardown) is not an error.
pub fn remove(desired: &ClusterNet) -> Result<Vec<Cmd>, Error> {
    let cmds = plan_down(desired, &observe(desired)?);
    for cmd in &cmds {
        match cmd.run() {
            Err(Error::Command { stderr, .. }) if stderr.contains("Cannot find device") => {}
            other => {
                other?;
            }
        }
    }
    Ok(cmds)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn argv(cmds: &[Cmd]) -> Vec<String> {
        cmds.iter().map(Cmd::to_string).collect()
    }

    fn vxlan_net() -> ClusterNet {
        ClusterNet {
            netns: Some("pn1".to_owned()),
            network_id: 100,
            mode: L2Mode::Vxlan {
                underlay_dev: "ul0".to_owned(),
                underlay_ip: Ipv4Addr::new(198, 18, 0, 1),
                peers: vec![Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 3)],
            },
            taps: vec![tap_name(100, 0), tap_name(100, 1)],
        }
    }

    fn dot1q_net() -> ClusterNet {
        ClusterNet {
            netns: None,
            network_id: 100,
            mode: L2Mode::Dot1q {
                phys_dev: "eth1".to_owned(),
            },
            taps: vec![tap_name(100, 0)],
        }
    }

    #[test]
    fn names_are_short_and_deterministic() {
        assert_eq!(bridge_name(100), "vcbr100");
        assert_eq!(vxlan_name(MAX_VNI), "vcvx16777215");
        assert_eq!(tap_name(MAX_VNI, 255), "vt16777215x255");
        assert!(tap_name(MAX_VNI, 255).len() <= MAX_IFNAME);
        assert_eq!(vlan_dev_name("eth1", 4094), "eth1.4094");
        assert_eq!(vlan_dev_name("enp130s0f0np0", 4094), "vcvl4094");
        assert_eq!(node_mac(100, 1).to_string(), "52:54:00:00:64:01");
        assert_eq!(node_mac(0x123456, 0xab).to_string(), "52:54:12:34:56:ab");
    }

    #[test]
    fn vxlan_plan_from_scratch() {
        let cmds = plan_up(&vxlan_net(), &Observed::default()).unwrap();
        assert_eq!(
            argv(&cmds),
            [
                "ip -n pn1 link add vcbr100 type bridge",
                "ip -n pn1 link add vcvx100 type vxlan id 100 dstport 4789 local 198.18.0.1 dev ul0 nolearning",
                "bridge -n pn1 fdb append 00:00:00:00:00:00 dev vcvx100 dst 198.18.0.2",
                "bridge -n pn1 fdb append 00:00:00:00:00:00 dev vcvx100 dst 198.18.0.3",
                "ip -n pn1 tuntap add vt100x0 mode tap",
                "ip -n pn1 tuntap add vt100x1 mode tap",
                "ip -n pn1 link set vcvx100 master vcbr100",
                "ip -n pn1 link set vcvx100 up",
                "ip -n pn1 link set vt100x0 master vcbr100",
                "ip -n pn1 link set vt100x0 up",
                "ip -n pn1 link set vt100x1 master vcbr100",
                "ip -n pn1 link set vt100x1 up",
                "ip -n pn1 link set vcbr100 up",
            ]
        );
    }

    #[test]
    fn dot1q_plan_from_scratch() {
        let cmds = plan_up(&dot1q_net(), &Observed::default()).unwrap();
        assert_eq!(
            argv(&cmds),
            [
                "ip link add vcbr100 type bridge",
                "ip link add link eth1 name eth1.100 type vlan id 100",
                "ip tuntap add vt100x0 mode tap",
                "ip link set eth1.100 master vcbr100",
                "ip link set eth1.100 up",
                "ip link set vt100x0 master vcbr100",
                "ip link set vt100x0 up",
                "ip link set vcbr100 up",
            ]
        );
    }

    #[test]
    fn dot1q_plan_down_keeps_the_nic() {
        let observed = Observed::parse(
            r#"[{"ifname":"eth1","flags":["UP"]},
                {"ifname":"eth1.100","link":"eth1","flags":["UP"],"master":"vcbr100",
                 "linkinfo":{"info_kind":"vlan","info_data":{"protocol":"802.1Q","id":100}}},
                {"ifname":"vcbr100","flags":["UP"],"linkinfo":{"info_kind":"bridge"}}]"#,
            "",
        )
        .unwrap();
        assert!(plan_up(&dot1q_net(), &observed).unwrap().len() == 3); // only the missing tap
        assert_eq!(
            argv(&plan_down(&dot1q_net(), &observed)),
            ["ip link del eth1.100", "ip link del vcbr100"]
        );
    }

    // Shapes taken from `ip -d -j link show` / `bridge -j fdb show` on this machine.
    const LINKS: &str = r#"[
      {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536},
      {"ifindex":3,"link":"ul1","ifname":"ul0","flags":["BROADCAST","UP"],"linkinfo":{"info_kind":"veth"}},
      {"ifindex":4,"ifname":"vcbr100","flags":["BROADCAST","MULTICAST","UP"],
       "linkinfo":{"info_kind":"bridge","info_data":{"stp_state":0,"vlan_filtering":0}}},
      {"ifindex":5,"ifname":"vcvx100","flags":["BROADCAST","MULTICAST","UP"],"master":"vcbr100",
       "linkinfo":{"info_kind":"vxlan","info_data":{"id":100,"local":"198.18.0.1","link":"ul0","port":4789,"learning":false},
                   "info_slave_kind":"bridge"}},
      {"ifindex":6,"ifname":"vt100x0","flags":["NO-CARRIER","BROADCAST","UP"],"master":"vcbr100",
       "linkinfo":{"info_kind":"tun","info_data":{"type":"tap","pi":false}}}
    ]"#;
    const FDB: &str = r#"[
      {"mac":"a2:e3:02:7f:6e:89","flags":[],"master":"vcbr100","state":"permanent"},
      {"mac":"00:00:00:00:00:00","dst":"198.18.0.2","flags":["self"],"state":"permanent"},
      {"mac":"00:00:00:00:00:00","dst":"198.18.0.9","flags":["self"],"state":"permanent"}
    ]"#;

    #[test]
    fn vxlan_plan_adds_only_what_is_missing() {
        let observed = Observed::parse(LINKS, FDB).unwrap();
        assert_eq!(
            observed.flood_peers,
            BTreeSet::from([Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 9)])
        );
        let cmds = plan_up(&vxlan_net(), &observed).unwrap();
        assert_eq!(
            argv(&cmds),
            [
                "bridge -n pn1 fdb append 00:00:00:00:00:00 dev vcvx100 dst 198.18.0.3",
                "bridge -n pn1 fdb del 00:00:00:00:00:00 dev vcvx100 dst 198.18.0.9",
                "ip -n pn1 tuntap add vt100x1 mode tap",
                "ip -n pn1 link set vt100x1 master vcbr100",
                "ip -n pn1 link set vt100x1 up",
            ]
        );
    }

    #[test]
    fn plan_down_skips_absent_devices() {
        let observed = Observed::parse(LINKS, FDB).unwrap();
        assert_eq!(
            argv(&plan_down(&vxlan_net(), &observed)),
            [
                "ip -n pn1 link del vt100x0",
                "ip -n pn1 link del vcvx100",
                "ip -n pn1 link del vcbr100",
            ]
        );
        assert!(plan_down(&vxlan_net(), &Observed::default()).is_empty());
    }

    #[test]
    fn foreign_devices_are_conflicts() {
        let wrong_vni = LINKS.replace(r#""id":100"#, r#""id":101"#);
        let observed = Observed::parse(&wrong_vni, "").unwrap();
        assert!(matches!(
            plan_up(&vxlan_net(), &observed),
            Err(Error::Conflict { dev, .. }) if dev == "vcvx100"
        ));
        let wrong_local = LINKS.replace(r#""local":"198.18.0.1""#, r#""local":"198.18.0.7""#);
        let observed = Observed::parse(&wrong_local, "").unwrap();
        assert!(matches!(
            plan_up(&vxlan_net(), &observed),
            Err(Error::Conflict { reason, .. }) if reason.contains("198.18.0.7")
        ));
        let wrong_nic = r#"[{"ifname":"eth1.100","link":"eth2",
            "linkinfo":{"info_kind":"vlan","info_data":{"protocol":"802.1Q","id":100}}}]"#;
        let observed = Observed::parse(wrong_nic, "").unwrap();
        assert!(matches!(
            plan_up(&dot1q_net(), &observed),
            Err(Error::Conflict { dev, .. }) if dev == "eth1.100"
        ));
        let observed = Observed::parse(
            r#"[{"ifname":"vcbr100","linkinfo":{"info_kind":"veth"}}]"#,
            "",
        )
        .unwrap();
        assert!(matches!(
            plan_up(&vxlan_net(), &observed),
            Err(Error::Conflict { .. })
        ));
    }

    #[test]
    fn invalid_ids_and_names_are_rejected() {
        let mut net = dot1q_net();
        net.network_id = 4095;
        assert!(matches!(
            plan_up(&net, &Observed::default()),
            Err(Error::InvalidSpec(_))
        ));
        let mut net = vxlan_net();
        net.network_id = MAX_VNI + 1;
        assert!(plan_up(&net, &Observed::default()).is_err());
        let mut net = vxlan_net();
        net.taps.push("a-very-long-tap-name".to_owned());
        assert!(plan_up(&net, &Observed::default()).is_err());
    }

    #[test]
    fn garbage_json_is_an_error() {
        assert!(matches!(
            Observed::parse("Device \"x\" does not exist.", ""),
            Err(Error::Json { .. })
        ));
    }

    #[test]
    fn failing_command_reports_stderr() {
        let err = Cmd(vec![
            "sh".into(),
            "-c".into(),
            "echo boom >&2; exit 3".into(),
        ])
        .run()
        .unwrap_err();
        match err {
            Error::Command { stderr, status, .. } => {
                assert_eq!(stderr, "boom");
                assert!(status.contains('3'));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
