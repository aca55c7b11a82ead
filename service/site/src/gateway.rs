//! The GW-node of a virtual cluster: a network namespace `gw-<network id>` on the GW P-node
//! with one leg on the cluster network and one on the outside network.
//!
//! - Legs: a veth pair from the cluster bridge (port `gwc<id>` in the P-node's namespace) to
//!   [`CLUSTER_LEG`] (the cluster's network address + 1), and one from the P-node's outside
//!   bridge (port `gwo<id>`) to [`OUTSIDE_LEG`] (the outside address, default route via the
//!   outside gateway). IPv4 forwarding is on inside the namespace only.
//! - nftables: one table `inet vcds_gw_<id>` in the namespace, replaced atomically by `nft -f`:
//!   masquerade of the cluster subnet out of the outside leg, DNAT of each port forward to its
//!   node, a forward chain that drops everything else (the outside reaches nodes only through a
//!   forward), and an input chain that keeps DHCP/TFTP off the outside leg.
//! - dnsmasq (Debian's, started inside the namespace with `--conf-file` and `--pid-file`):
//!   DHCP on the cluster leg only, static leases only (`dhcp-range=<net>,static`): one
//!   `dhcp-host=MAC,IP,hostname` per node of the plan, so no unknown machine gets an address;
//!   the GW as router; no DNS (`port=0`: the cluster's frontend is its name server, handed out
//!   with `dns_servers`); the kickstart URL as private option [`KICKSTART_OPTION`] (an iPXE
//!   script reads it as `${224:string}`); TFTP and PXE boot files when [`PxeBoot`] is set.
//!
//! iPXE's wait: the virtio NIC's iPXE ROM (QEMU's `ipxe-qemu`) configures IPv6 as well as
//! IPv4, and waits for a router advertisement before it fetches its boot file. Measured on
//! this machine with this module's configuration (PXE boot to the node's marker): no RA 27.0 s
//! (13 s between DHCPACK and the boot file request); with `dhcp-option=vendor:PXEClient,6,2b`
//! and `dhcp-no-override` 22.3 s (16 s: the gap is not ProxyDHCP, dnsmasq offers no PXE menu
//! so iPXE never waits for one); with router advertisements 9.6 s (0 s). So when PXE is on,
//! the cluster leg gets a per-cluster ULA ([`ula_address`]) and dnsmasq sends RAs with router
//! lifetime 0 (`ra-param=cl0,60,0`, `ra-only`): they end iPXE's wait and make the GW nobody's
//! IPv6 router; IPv6 is not forwarded (the forward chain drops it).
//!
//! Pure part: [`plan`] turns a [`GatewaySpec`] into the from-scratch leg commands, the ruleset
//! text, the dnsmasq configuration and the file paths, after checking every field (see
//! [`GatewayError`]); [`plan_legs`] reconciles the legs with an [`Observed`] state. Executor:
//! [`ensure`] (idempotent; restarts dnsmasq only when its configuration changed or it is not
//! running), [`remove`] (nothing left behind) and [`observe`].
//!
//! Named namespaces live in the host's mount namespace (`/run/netns`): the process calling
//! [`ensure`] must run there, as an agent on a real P-node or one started with `--netns` does,
//! not under `ip netns exec` (a name added from inside it is not visible outside it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vcds_placement::MacAddr;

use crate::net::{Cmd, Link, LinkInfo, MAX_IFNAME, MAX_VNI};
use crate::process;
use crate::Error;

/// The GW namespace's leg on the cluster network.
pub const CLUSTER_LEG: &str = "cl0";
/// The GW namespace's leg on the outside network.
pub const OUTSIDE_LEG: &str = "out0";
/// DHCP option (site-specific range 224–254) that carries the kickstart URL.
pub const KICKSTART_OPTION: u8 = 224;
/// DHCP lease time of the nodes' fixed addresses.
pub const LEASE_TIME: &str = "12h";
/// Longest boot file name (the BOOTP `file` field holds 128 bytes with its NUL).
pub const MAX_BOOT_FILE: usize = 127;
/// Longest kickstart URL (a DHCP option holds 255 bytes).
pub const MAX_URL: usize = 255;
/// Grace time for dnsmasq to end after SIGTERM, and for SIGKILL to take effect.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// From dnsmasq's start returning to its pid file being written.
const PID_FILE_TIMEOUT: Duration = Duration::from_secs(3);

/// Transport protocol of a port forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A port of the GW's outside address forwarded to a node (usually the frontend).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortForward {
    pub protocol: Protocol,
    /// Port on the GW's outside address.
    pub external_port: u16,
    /// The node's address; must be a node of the plan.
    pub to: Ipv4Addr,
    pub to_port: u16,
}

/// A node of the plan: DHCP gives `mac` the address `ip` and the host name `hostname`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayNode {
    pub hostname: String,
    /// Text on the wire and in state files (`52:54:00:00:64:00`).
    #[serde(with = "vcds_placement::mac_text")]
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
}

/// The GW's leg on the outside network: a port of `bridge` in the P-node's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutsideLeg {
    pub bridge: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// Default route of the GW namespace.
    pub gateway: Option<Ipv4Addr>,
}

/// Network boot served by the GW's dnsmasq over TFTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PxeBoot {
    /// Absolute; dnsmasq serves it after dropping root, so it must be world-readable.
    pub tftp_root: PathBuf,
    /// Boot file for PXE clients that are not iPXE (e.g. `undionly.kpxe` to chain-load iPXE).
    pub bios_file: Option<String>,
    /// Boot file (or http URL) for iPXE, recognised by its DHCP option 175 (e.g. an iPXE
    /// script that fetches the installer and passes `${224:string}` as the kickstart URL).
    pub ipxe_file: Option<String>,
}

/// Desired GW-node of one virtual cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewaySpec {
    /// The cluster's network id (VNI / VLAN id).
    pub network_id: u32,
    /// The GW P-node's namespace, which holds both bridges; `None` for the current one (a real
    /// P-node). An agent replaces it with its own.
    pub netns: Option<String>,
    /// The cluster bridge on the GW P-node (see [`crate::net::bridge_name`]).
    pub cluster_bridge: String,
    /// The cluster subnet's network address and prefix; the GW takes network + 1.
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    pub outside: OutsideLeg,
    pub nodes: Vec<GatewayNode>,
    /// Name servers handed out by DHCP (e.g. the frontend); none when empty.
    #[serde(default)]
    pub dns_servers: Vec<Ipv4Addr>,
    pub pxe: Option<PxeBoot>,
    /// Handed out as DHCP option [`KICKSTART_OPTION`].
    pub kickstart_url: Option<String>,
    #[serde(default)]
    pub forwards: Vec<PortForward>,
}

/// Why a [`GatewaySpec`] (or the state directory it is planned into) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("network id {0} outside 1..={MAX_VNI}")]
    NetworkId(u32),
    #[error("cluster subnet {subnet}/{prefix}: {reason}")]
    Subnet {
        subnet: Ipv4Addr,
        prefix: u8,
        reason: String,
    },
    #[error("P-node namespace {0:?} is not a namespace name")]
    Namespace(String),
    #[error("{what} {name:?} is not an interface name (1 to {MAX_IFNAME} bytes, no '/', ':' or whitespace)")]
    InterfaceName { what: &'static str, name: String },
    #[error("outside leg {address}/{prefix}: {reason}")]
    Outside {
        address: Ipv4Addr,
        prefix: u8,
        reason: String,
    },
    #[error("node {host:?}: {mac} is not a unicast MAC address")]
    Mac { host: String, mac: MacAddr },
    #[error("{0:?} is not a host name (1 to 63 letters, digits or '-', not starting or ending with '-')")]
    HostName(String),
    #[error("node {host}: {ip} is outside the cluster subnet {subnet}")]
    IpOutsideSubnet {
        host: String,
        ip: Ipv4Addr,
        subnet: String,
    },
    #[error("node {host}: {ip} is {what}")]
    ReservedIp {
        host: String,
        ip: Ipv4Addr,
        what: &'static str,
    },
    #[error("host name {0} is given to two nodes")]
    DuplicateHostName(String),
    #[error("MAC {mac} is given to both {first} and {second}")]
    DuplicateMac {
        mac: MacAddr,
        first: String,
        second: String,
    },
    #[error("address {ip} is given to both {first} and {second}")]
    DuplicateIp {
        ip: Ipv4Addr,
        first: String,
        second: String,
    },
    #[error("port forward {protocol} {external_port} -> {to}:{to_port} uses port 0")]
    PortZero {
        protocol: Protocol,
        external_port: u16,
        to: Ipv4Addr,
        to_port: u16,
    },
    #[error(
        "port forward {protocol} {external_port} goes to {to}, which is not a node of the cluster"
    )]
    ForwardToNonNode {
        protocol: Protocol,
        external_port: u16,
        to: Ipv4Addr,
    },
    #[error("{protocol} port {port} is forwarded twice")]
    DuplicateForward { protocol: Protocol, port: u16 },
    #[error(
        "{what} {path:?} must be an absolute UTF-8 path without ',', '\"' or control characters"
    )]
    Path { what: &'static str, path: PathBuf },
    #[error("PXE boot needs a BIOS or an iPXE boot file")]
    NoBootFile,
    #[error("boot file {0:?} must be 1 to {MAX_BOOT_FILE} printable ASCII bytes without whitespace, ',', '\"', '#', '\\\\', a leading '/' or '..'")]
    BootFile(String),
    #[error("kickstart URL {0:?} must be an http(s) URL of at most {MAX_URL} printable ASCII bytes without whitespace, ',', '\"' or '\\\\'")]
    KickstartUrl(String),
    #[error("TFTP root {0:?} is not a directory")]
    TftpRoot(PathBuf),
}

/// The GW namespace of a cluster, e.g. `gw-100`.
pub fn netns_name(network_id: u32) -> String {
    format!("gw-{network_id}")
}

/// The cluster leg's bridge port in the P-node's namespace, e.g. `gwc100` (at most 11 bytes).
pub fn cluster_port(network_id: u32) -> String {
    format!("gwc{network_id}")
}

/// The outside leg's bridge port in the P-node's namespace, e.g. `gwo100`.
pub fn outside_port(network_id: u32) -> String {
    format!("gwo{network_id}")
}

/// The nftables table (family `inet`) in the GW namespace.
pub fn table_name(network_id: u32) -> String {
    format!("vcds_gw_{network_id}")
}

/// The cluster leg's IPv6 address when PXE is on (see the module documentation): the ULA
/// prefix `fd76:6364:73` ("vcds") followed by the 24-bit network id, host 1.
pub fn ula_address(network_id: u32) -> String {
    // Built as an address so the text is canonical, as `ip -j addr` reports it.
    let ula = Ipv6Addr::new(
        0xfd76,
        0x6364,
        0x7300 | ((network_id >> 16) & 0xff) as u16,
        (network_id & 0xffff) as u16,
        0,
        0,
        0,
        1,
    );
    format!("{ula}/64")
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn network_of(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip) & mask(prefix))
}

fn broadcast_of(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip) | !mask(prefix))
}

impl GatewaySpec {
    /// The GW's address on the cluster network: network + 1.
    pub fn gateway_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet).wrapping_add(1))
    }

    fn subnet_text(&self) -> String {
        format!("{}/{}", self.subnet, self.prefix)
    }

    /// Checks every field; see [`GatewayError`].
    pub fn validate(&self) -> Result<(), GatewayError> {
        if self.network_id == 0 || self.network_id > MAX_VNI {
            return Err(GatewayError::NetworkId(self.network_id));
        }
        let subnet_err = |reason: &str| GatewayError::Subnet {
            subnet: self.subnet,
            prefix: self.prefix,
            reason: reason.to_owned(),
        };
        if !(8..=30).contains(&self.prefix) {
            return Err(subnet_err("the prefix must be 8 to 30"));
        }
        if network_of(self.subnet, self.prefix) != self.subnet {
            return Err(subnet_err("not a network address (host bits set)"));
        }
        check_ifname("cluster bridge", &self.cluster_bridge)?;
        check_ifname("outside bridge", &self.outside.bridge)?;
        if let Some(ns) = &self.netns {
            let ok = !ns.is_empty()
                && ns.len() <= 255
                && ns != "."
                && ns != ".."
                && ns.chars().all(|c| c.is_ascii_graphic() && c != '/');
            if !ok {
                return Err(GatewayError::Namespace(ns.clone()));
            }
        }
        self.validate_outside()?;
        self.validate_nodes()?;
        self.validate_forwards()?;
        if let Some(pxe) = &self.pxe {
            check_path("TFTP root", &pxe.tftp_root)?;
            if pxe.bios_file.is_none() && pxe.ipxe_file.is_none() {
                return Err(GatewayError::NoBootFile);
            }
            for file in pxe.bios_file.iter().chain(&pxe.ipxe_file) {
                check_boot_file(file)?;
            }
        }
        if let Some(url) = &self.kickstart_url {
            check_url(url)?;
        }
        Ok(())
    }

    fn validate_outside(&self) -> Result<(), GatewayError> {
        let out = &self.outside;
        let err = |reason: String| GatewayError::Outside {
            address: out.address,
            prefix: out.prefix,
            reason,
        };
        if !(1..=30).contains(&out.prefix) {
            return Err(err("the prefix must be 1 to 30".to_owned()));
        }
        if out.address == network_of(out.address, out.prefix)
            || out.address == broadcast_of(out.address, out.prefix)
        {
            return Err(err(
                "is its subnet's network or broadcast address".to_owned()
            ));
        }
        let shorter = out.prefix.min(self.prefix);
        if network_of(out.address, shorter) == network_of(self.subnet, shorter) {
            return Err(err(format!(
                "overlaps the cluster subnet {}",
                self.subnet_text()
            )));
        }
        if let Some(gw) = out.gateway {
            if network_of(gw, out.prefix) != network_of(out.address, out.prefix)
                || gw == out.address
            {
                return Err(err(format!(
                    "gateway {gw} is not another address of the outside subnet"
                )));
            }
        }
        Ok(())
    }

    fn validate_nodes(&self) -> Result<(), GatewayError> {
        let mut names: BTreeSet<String> = BTreeSet::new();
        let mut macs: BTreeMap<MacAddr, &str> = BTreeMap::new();
        let mut ips: BTreeMap<Ipv4Addr, &str> = BTreeMap::new();
        for node in &self.nodes {
            check_hostname(&node.hostname)?;
            let host = node.hostname.as_str();
            let mac = node.mac;
            // A group address, or none, would never be a node's: DHCP could not tell it apart.
            if !mac.is_unicast() || mac.0 == [0; 6] {
                return Err(GatewayError::Mac {
                    host: host.to_owned(),
                    mac,
                });
            }
            if network_of(node.ip, self.prefix) != self.subnet {
                return Err(GatewayError::IpOutsideSubnet {
                    host: host.to_owned(),
                    ip: node.ip,
                    subnet: self.subnet_text(),
                });
            }
            let reserved = if node.ip == self.subnet {
                Some("the network address")
            } else if node.ip == broadcast_of(self.subnet, self.prefix) {
                Some("the broadcast address")
            } else if node.ip == self.gateway_ip() {
                Some("the GW-node's address")
            } else {
                None
            };
            if let Some(what) = reserved {
                return Err(GatewayError::ReservedIp {
                    host: host.to_owned(),
                    ip: node.ip,
                    what,
                });
            }
            if !names.insert(host.to_ascii_lowercase()) {
                return Err(GatewayError::DuplicateHostName(host.to_owned()));
            }
            if let Some(first) = macs.insert(mac, host) {
                return Err(GatewayError::DuplicateMac {
                    mac,
                    first: first.to_owned(),
                    second: host.to_owned(),
                });
            }
            if let Some(first) = ips.insert(node.ip, host) {
                return Err(GatewayError::DuplicateIp {
                    ip: node.ip,
                    first: first.to_owned(),
                    second: host.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn validate_forwards(&self) -> Result<(), GatewayError> {
        let mut seen = BTreeSet::new();
        for f in &self.forwards {
            if f.external_port == 0 || f.to_port == 0 {
                return Err(GatewayError::PortZero {
                    protocol: f.protocol,
                    external_port: f.external_port,
                    to: f.to,
                    to_port: f.to_port,
                });
            }
            if !self.nodes.iter().any(|n| n.ip == f.to) {
                return Err(GatewayError::ForwardToNonNode {
                    protocol: f.protocol,
                    external_port: f.external_port,
                    to: f.to,
                });
            }
            if !seen.insert((f.protocol, f.external_port)) {
                return Err(GatewayError::DuplicateForward {
                    protocol: f.protocol,
                    port: f.external_port,
                });
            }
        }
        Ok(())
    }
}

fn check_ifname(what: &'static str, name: &str) -> Result<(), GatewayError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '/' | ':'));
    if ok {
        Ok(())
    } else {
        Err(GatewayError::InterfaceName {
            what,
            name: name.to_owned(),
        })
    }
}

fn check_hostname(name: &str) -> Result<(), GatewayError> {
    let ok = (1..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(GatewayError::HostName(name.to_owned()))
    }
}

fn check_path(what: &'static str, path: &Path) -> Result<(), GatewayError> {
    let ok = path.is_absolute()
        && path
            .to_str()
            .is_some_and(|s| !s.chars().any(|c| c.is_control() || matches!(c, ',' | '"')));
    if ok {
        Ok(())
    } else {
        Err(GatewayError::Path {
            what,
            path: path.to_owned(),
        })
    }
}

fn check_boot_file(file: &str) -> Result<(), GatewayError> {
    let ok = (1..=MAX_BOOT_FILE).contains(&file.len())
        && file
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, ',' | '"' | '#' | '\\'))
        && !file.starts_with('/')
        && !file.split('/').any(|segment| segment == "..");
    if ok {
        Ok(())
    } else {
        Err(GatewayError::BootFile(file.to_owned()))
    }
}

fn check_url(url: &str) -> Result<(), GatewayError> {
    let ok = url.len() <= MAX_URL
        && (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() > "https://".len()
        && url
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, ',' | '"' | '\\'));
    if ok {
        Ok(())
    } else {
        Err(GatewayError::KickstartUrl(url.to_owned()))
    }
}

/// Where a GW-node keeps its files: `<state dir>/gw-<id>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayFiles {
    pub dir: PathBuf,
    pub dnsmasq_conf: PathBuf,
    pub dnsmasq_pid: PathBuf,
    pub leases: PathBuf,
    pub log: PathBuf,
    /// The ruleset text last loaded.
    pub ruleset: PathBuf,
    /// The table as `nft -j` listed it right after loading (handles removed): a differing
    /// live table has been changed behind the GW's back and is reloaded.
    pub ruleset_json: PathBuf,
}

impl GatewayFiles {
    pub fn new(state_dir: &Path, network_id: u32) -> GatewayFiles {
        let dir = state_dir.join(netns_name(network_id));
        GatewayFiles {
            dnsmasq_conf: dir.join("dnsmasq.conf"),
            dnsmasq_pid: dir.join("dnsmasq.pid"),
            leases: dir.join("dnsmasq.leases"),
            log: dir.join("dnsmasq.log"),
            ruleset: dir.join("nftables.conf"),
            ruleset_json: dir.join("nftables.json"),
            dir,
        }
    }
}

/// Everything [`ensure`] would set up from scratch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayPlan {
    pub netns: String,
    /// Namespace, legs, addresses, default route and IPv4 forwarding, in order.
    pub legs: Vec<Cmd>,
    /// `nft -f` input replacing the GW's table atomically.
    pub ruleset: String,
    pub dnsmasq_conf: String,
    /// Starts dnsmasq inside the namespace; it daemonizes and writes its pid file.
    pub dnsmasq_argv: Vec<String>,
    pub files: GatewayFiles,
}

/// Checks the spec and produces the from-scratch plan for a GW-node keeping its files under
/// `state_dir` (absolute).
pub fn plan(spec: &GatewaySpec, state_dir: &Path) -> Result<GatewayPlan, Error> {
    spec.validate()?;
    check_path("state directory", state_dir)?;
    let files = GatewayFiles::new(state_dir, spec.network_id);
    let netns = netns_name(spec.network_id);
    let legs = plan_legs(spec, &Observed::default())?;
    Ok(GatewayPlan {
        dnsmasq_argv: dnsmasq_argv(&netns, &files.dnsmasq_conf, &files.dnsmasq_pid),
        netns,
        legs,
        ruleset: ruleset(spec),
        dnsmasq_conf: dnsmasq_conf(spec, &files),
        files,
    })
}

fn dnsmasq_argv(netns: &str, conf: &Path, pid: &Path) -> Vec<String> {
    vec![
        "ip".to_owned(),
        "netns".to_owned(),
        "exec".to_owned(),
        netns.to_owned(),
        "dnsmasq".to_owned(),
        format!("--conf-file={}", conf.display()),
        format!("--pid-file={}", pid.display()),
    ]
}

/// The nftables ruleset of the GW namespace: only its own table, replaced in one transaction
/// (the empty `table` line makes the `delete` valid when the table does not exist yet).
pub fn ruleset(spec: &GatewaySpec) -> String {
    let table = table_name(spec.network_id);
    let subnet = spec.subnet_text();
    let outside = spec.outside.address;
    let mut dnat = String::new();
    let mut accept = String::new();
    for f in &spec.forwards {
        let _ = writeln!(
            dnat,
            "\t\tiifname \"{OUTSIDE_LEG}\" ip daddr {outside} {} dport {} dnat ip to {}:{}",
            f.protocol, f.external_port, f.to, f.to_port
        );
        let _ = writeln!(
            accept,
            "\t\tiifname \"{OUTSIDE_LEG}\" oifname \"{CLUSTER_LEG}\" ct status dnat ip daddr {} {} dport {} accept",
            f.to, f.protocol, f.to_port
        );
    }
    format!(
        "# vcds GW-node of cluster network {id}: generated; loaded with nft -f in namespace {ns}.\n\
         table inet {table}\n\
         delete table inet {table}\n\
         table inet {table} {{\n\
         \tchain prerouting {{\n\
         \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         {dnat}\
         \t}}\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\toifname \"{OUTSIDE_LEG}\" ip saddr {subnet} masquerade\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy drop;\n\
         \t\tct state established,related accept\n\
         \t\tiifname \"{CLUSTER_LEG}\" oifname \"{OUTSIDE_LEG}\" ip saddr {subnet} accept\n\
         {accept}\
         \t}}\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority filter; policy drop;\n\
         \t\tct state established,related accept\n\
         \t\tiifname \"lo\" accept\n\
         \t\tiifname \"{CLUSTER_LEG}\" accept\n\
         \t\tiifname \"{OUTSIDE_LEG}\" icmp type echo-request accept\n\
         \t}}\n\
         }}\n",
        id = spec.network_id,
        ns = netns_name(spec.network_id),
    )
}

/// The dnsmasq configuration (see the module documentation for each choice).
pub fn dnsmasq_conf(spec: &GatewaySpec, files: &GatewayFiles) -> String {
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# vcds GW-node of cluster network {}: generated, do not edit.",
        spec.network_id
    );
    let _ = writeln!(c, "# DHCP (and TFTP) on the cluster leg only; no DNS.");
    let _ = writeln!(c, "interface={CLUSTER_LEG}");
    let _ = writeln!(c, "bind-interfaces");
    let _ = writeln!(c, "port=0");
    let _ = writeln!(c, "dhcp-authoritative");
    let _ = writeln!(
        c,
        "dhcp-range={},static,{},{LEASE_TIME}",
        spec.subnet,
        Ipv4Addr::from(mask(spec.prefix))
    );
    let _ = writeln!(c, "dhcp-option=option:router,{}", spec.gateway_ip());
    if !spec.dns_servers.is_empty() {
        let servers: Vec<String> = spec.dns_servers.iter().map(ToString::to_string).collect();
        let _ = writeln!(c, "dhcp-option=option:dns-server,{}", servers.join(","));
    }
    let _ = writeln!(c, "dhcp-leasefile={}", files.leases.display());
    let _ = writeln!(c, "log-facility={}", files.log.display());
    let _ = writeln!(c, "# The plan's nodes: MAC, fixed address, host name.");
    for node in &spec.nodes {
        let _ = writeln!(c, "dhcp-host={},{},{}", node.mac, node.ip, node.hostname);
    }
    if let Some(url) = &spec.kickstart_url {
        let _ = writeln!(c, "# Kickstart URL (iPXE: ${{{KICKSTART_OPTION}:string}}).");
        let _ = writeln!(c, "dhcp-option-force={KICKSTART_OPTION},\"{url}\"");
    }
    if let Some(pxe) = &spec.pxe {
        let _ = writeln!(
            c,
            "# PXE: boot files over TFTP; iPXE announces itself with option 175."
        );
        let _ = writeln!(c, "enable-tftp");
        let _ = writeln!(c, "tftp-root={}", pxe.tftp_root.display());
        let _ = writeln!(c, "dhcp-match=set:ipxe,175");
        if let Some(file) = &pxe.ipxe_file {
            let _ = writeln!(c, "dhcp-boot=tag:ipxe,{file}");
        }
        if let Some(file) = &pxe.bios_file {
            let _ = writeln!(c, "dhcp-boot=tag:!ipxe,{file}");
        }
        let _ = writeln!(
            c,
            "# Router advertisements with router lifetime 0 end iPXE's IPv6 wait (~13 s)."
        );
        let _ = writeln!(c, "enable-ra");
        let _ = writeln!(c, "dhcp-range=::,constructor:{CLUSTER_LEG},ra-only,64");
        let _ = writeln!(c, "ra-param={CLUSTER_LEG},60,0");
    }
    c
}

/// An address as `ip -j addr show` reports it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct AddrInfo {
    pub family: String,
    pub local: IpAddr,
    pub prefixlen: u8,
    pub scope: Option<String>,
    /// Configured by the kernel (SLAAC from the GW's own router advertisements), not by us.
    #[serde(default)]
    pub dynamic: bool,
}

/// A link of the GW namespace with its addresses (`ip -d -j addr show`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct AddrLink {
    pub ifname: String,
    #[serde(default)]
    pub flags: Vec<String>,
    pub linkinfo: Option<LinkInfo>,
    #[serde(default)]
    pub addr_info: Vec<AddrInfo>,
}

impl AddrLink {
    fn kind(&self) -> Option<&str> {
        self.linkinfo.as_ref()?.info_kind.as_deref()
    }

    fn is_up(&self) -> bool {
        self.flags.iter().any(|f| f == "UP")
    }

    /// Addresses other than link-local and autoconfigured ones, as `ADDR/PREFIX`.
    fn addresses(&self) -> Vec<String> {
        self.addr_info
            .iter()
            .filter(|a| a.scope.as_deref() != Some("link") && !a.dynamic)
            .map(|a| format!("{}/{}", a.local, a.prefixlen))
            .collect()
    }
}

#[derive(Debug, Deserialize)]
struct NetnsEntry {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Route {
    gateway: Option<Ipv4Addr>,
}

/// What the P-node and the GW namespace currently have, as far as one GW-node is concerned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub netns_exists: bool,
    /// The P-node namespace's links (`ip -d -j link show`).
    pub pnode_links: Vec<Link>,
    /// The GW namespace's links and addresses (`ip -d -j addr show`).
    pub gw_links: Vec<AddrLink>,
    /// The GW namespace's IPv4 default route.
    pub default_via: Option<Ipv4Addr>,
    pub ip_forward: bool,
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, Error> {
    // `ip -j` prints nothing at all for some empty lists (e.g. `netns list`).
    let json = if json.trim().is_empty() { "[]" } else { json };
    serde_json::from_str(json).map_err(|source| Error::Json {
        what: what.to_owned(),
        source,
    })
}

impl Observed {
    /// Builds the observation from `ip -j netns list`, the P-node's `ip -d -j link show`, and
    /// (empty when the namespace does not exist) the GW namespace's `ip -d -j addr show`,
    /// `ip -4 -j route show default` and `net.ipv4.ip_forward`.
    pub fn parse(
        network_id: u32,
        netns_json: &str,
        pnode_links_json: &str,
        gw_addrs_json: &str,
        gw_routes_json: &str,
        ip_forward: &str,
    ) -> Result<Observed, Error> {
        let netns: Vec<NetnsEntry> = parse_json("ip -j netns list", netns_json)?;
        let name = netns_name(network_id);
        let routes: Vec<Route> = parse_json("ip -j route show default", gw_routes_json)?;
        Ok(Observed {
            netns_exists: netns.iter().any(|n| n.name == name),
            pnode_links: parse_json("ip -j link show", pnode_links_json)?,
            gw_links: parse_json("ip -j addr show", gw_addrs_json)?,
            default_via: routes.iter().find_map(|r| r.gateway),
            ip_forward: ip_forward.trim() == "1",
        })
    }

    fn pnode_link(&self, name: &str) -> Option<&Link> {
        self.pnode_links.iter().find(|l| l.ifname == name)
    }

    fn gw_link(&self, name: &str) -> Option<&AddrLink> {
        self.gw_links.iter().find(|l| l.ifname == name)
    }
}

fn conflict(dev: &str, reason: String) -> Error {
    Error::Conflict {
        dev: dev.to_owned(),
        reason,
    }
}

/// Checks that both bridges the legs attach to exist on the P-node.
pub fn check_bridges(spec: &GatewaySpec, observed: &Observed) -> Result<(), Error> {
    for bridge in [&spec.cluster_bridge, &spec.outside.bridge] {
        match observed.pnode_link(bridge) {
            Some(link) if link.kind() == Some("bridge") => {}
            Some(link) => {
                return Err(conflict(
                    bridge,
                    format!("is a {:?} device, not a bridge", link.kind()),
                ))
            }
            None => {
                return Err(Error::InvalidSpec(format!(
                    "bridge {bridge} does not exist on the P-node (ensure the cluster network and the outside bridge first)"
                )))
            }
        }
    }
    Ok(())
}

/// Commands that bring the namespace, the legs, their addresses, the default route and IPv4
/// forwarding from `observed` to `spec`; empty when everything matches. A leg whose other end
/// is missing is recreated; foreign devices under the legs' names are conflicts.
pub fn plan_legs(spec: &GatewaySpec, observed: &Observed) -> Result<Vec<Cmd>, Error> {
    let pn = spec.netns.as_deref();
    let gw = netns_name(spec.network_id);
    let gwns = Some(gw.as_str());
    let mut cmds = Vec::new();
    if !observed.netns_exists {
        cmds.push(Cmd::ip(None, &["netns", "add", &gw]));
    }
    if !observed.gw_link("lo").is_some_and(AddrLink::is_up) {
        cmds.push(Cmd::ip(gwns, &["link", "set", "lo", "up"]));
    }
    let mut cluster_addrs = vec![format!("{}/{}", spec.gateway_ip(), spec.prefix)];
    if spec.pxe.is_some() {
        cluster_addrs.push(ula_address(spec.network_id));
    }
    let outside_addrs = vec![format!("{}/{}", spec.outside.address, spec.outside.prefix)];
    let legs = [
        (
            cluster_port(spec.network_id),
            CLUSTER_LEG,
            &spec.cluster_bridge,
            cluster_addrs,
        ),
        (
            outside_port(spec.network_id),
            OUTSIDE_LEG,
            &spec.outside.bridge,
            outside_addrs,
        ),
    ];
    let mut address_cmds = Vec::new();
    // A recreated outside leg or a changed outside address takes the default route with it.
    let mut outside_changed = false;
    for (port, leg, bridge, wanted) in &legs {
        let planned = address_cmds.len();
        let outer = observed.pnode_link(port);
        let inner = observed.gw_link(leg);
        if let Some(link) = outer.filter(|l| l.kind() != Some("veth")) {
            return Err(conflict(
                port,
                format!("is a {:?} device, not veth", link.kind()),
            ));
        }
        if let Some(link) = inner.filter(|l| l.kind() != Some("veth")) {
            return Err(conflict(
                leg,
                format!("is a {:?} device in {gw}, not veth", link.kind()),
            ));
        }
        let whole = outer.is_some() && inner.is_some();
        if !whole {
            if outer.is_some() {
                cmds.push(Cmd::ip(pn, &["link", "del", port]));
            }
            if inner.is_some() {
                cmds.push(Cmd::ip(gwns, &["link", "del", leg]));
            }
            cmds.push(Cmd::ip(
                pn,
                &[
                    "link", "add", port, "type", "veth", "peer", "name", leg, "netns", &gw,
                ],
            ));
        }
        let (outer, inner) = if whole { (outer, inner) } else { (None, None) };
        if outer.and_then(|l| l.master.as_deref()) != Some(bridge.as_str()) {
            cmds.push(Cmd::ip(pn, &["link", "set", port, "master", bridge]));
        }
        if !outer.is_some_and(Link::is_up) {
            cmds.push(Cmd::ip(pn, &["link", "set", port, "up"]));
        }
        let present = inner.map(AddrLink::addresses).unwrap_or_default();
        for addr in present.iter().filter(|a| !wanted.contains(a)) {
            address_cmds.push(Cmd::ip(gwns, &["addr", "del", addr, "dev", leg]));
        }
        for addr in wanted.iter().filter(|a| !present.contains(a)) {
            let mut args = vec!["addr", "add", addr.as_str(), "dev", leg];
            if addr.contains(':') {
                // No duplicate address detection: dnsmasq's RA needs the address at once.
                args.push("nodad");
            }
            address_cmds.push(Cmd::ip(gwns, &args));
        }
        if !inner.is_some_and(AddrLink::is_up) {
            address_cmds.push(Cmd::ip(gwns, &["link", "set", leg, "up"]));
        }
        if *leg == OUTSIDE_LEG && address_cmds.len() > planned {
            outside_changed = true;
        }
    }
    cmds.extend(address_cmds);
    match spec.outside.gateway {
        Some(via) if outside_changed || observed.default_via != Some(via) => {
            let via = via.to_string();
            cmds.push(Cmd::ip(
                gwns,
                &[
                    "route",
                    "replace",
                    "default",
                    "via",
                    &via,
                    "dev",
                    OUTSIDE_LEG,
                ],
            ));
        }
        None if observed.default_via.is_some() => {
            cmds.push(Cmd::ip(gwns, &["-4", "route", "del", "default"]));
        }
        _ => {}
    }
    if !observed.ip_forward {
        cmds.push(Cmd([
            "ip",
            "netns",
            "exec",
            &gw,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ]
        .map(str::to_owned)
        .to_vec()));
    }
    Ok(cmds)
}

/// A `nft -j list …` document without handles and metainfo, in a canonical text form: equal
/// for equal rulesets, whatever handles the kernel assigned.
pub fn normalize_nft_json(json: &str) -> Result<String, Error> {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove("handle");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut doc: serde_json::Value = parse_json("nft -j list", json)?;
    if let Some(items) = doc.get_mut("nftables").and_then(|v| v.as_array_mut()) {
        items.retain(|item| item.get("metainfo").is_none());
    }
    strip(&mut doc);
    Ok(doc.to_string())
}

/// Whether `nft -j list tables` lists the GW's table.
pub fn has_table(tables_json: &str, network_id: u32) -> Result<bool, Error> {
    let doc: serde_json::Value = parse_json("nft -j list tables", tables_json)?;
    let name = table_name(network_id);
    Ok(doc
        .get("nftables")
        .and_then(|v| v.as_array())
        .is_some_and(|items| {
            items.iter().filter_map(|i| i.get("table")).any(|t| {
                t.get("family").and_then(|f| f.as_str()) == Some("inet")
                    && t.get("name").and_then(|n| n.as_str()) == Some(name.as_str())
            })
        }))
}

fn in_netns(netns: &str, argv: &[&str]) -> Cmd {
    let mut full: Vec<String> = ["ip", "netns", "exec", netns].map(str::to_owned).to_vec();
    full.extend(argv.iter().map(|a| (*a).to_owned()));
    Cmd(full)
}

fn io_err(what: String) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { what, source }
}

fn netns_exists(name: &str) -> Result<bool, Error> {
    let json = Cmd::ip(None, &["-j", "netns", "list"]).run()?;
    let list: Vec<NetnsEntry> = parse_json("ip -j netns list", &json)?;
    Ok(list.iter().any(|n| n.name == name))
}

/// Reads the P-node's links and, when the GW namespace exists, its addresses, default route
/// and forwarding switch.
pub fn observe_legs(spec: &GatewaySpec) -> Result<Observed, Error> {
    let netns = Cmd::ip(None, &["-j", "netns", "list"]).run()?;
    let pnode = Cmd::ip(spec.netns.as_deref(), &["-d", "-j", "link", "show"]).run()?;
    let gw = netns_name(spec.network_id);
    let mut observed = Observed::parse(spec.network_id, &netns, &pnode, "", "", "")?;
    if observed.netns_exists {
        let addrs = Cmd::ip(Some(&gw), &["-d", "-j", "addr", "show"]).run()?;
        let routes = Cmd::ip(Some(&gw), &["-4", "-j", "route", "show", "default"]).run()?;
        let forward = in_netns(&gw, &["sysctl", "-n", "net.ipv4.ip_forward"]).run()?;
        observed = Observed::parse(spec.network_id, &netns, &pnode, &addrs, &routes, &forward)?;
    }
    Ok(observed)
}

/// Pids of live dnsmasq processes started with this configuration file.
fn dnsmasq_pids(conf: &Path) -> Vec<u32> {
    let arg = format!("--conf-file={}", conf.display());
    process::pids_where(|argv| process::program_is(argv, "dnsmasq") && argv.contains(&arg))
}

/// The pid in the pid file, when it is a live dnsmasq of this configuration.
fn recorded_dnsmasq(files: &GatewayFiles) -> Option<u32> {
    let pid: u32 = fs::read_to_string(&files.dnsmasq_pid)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    dnsmasq_pids(&files.dnsmasq_conf)
        .contains(&pid)
        .then_some(pid)
}

/// The pid of the GW-node's dnsmasq, when its pid file names a live dnsmasq of its
/// configuration (how a restarted agent finds it again).
pub fn dnsmasq_pid(network_id: u32, state_dir: &Path) -> Option<u32> {
    recorded_dnsmasq(&GatewayFiles::new(state_dir, network_id))
}

/// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]; returns the commands it ran.
fn stop_dnsmasq(files: &GatewayFiles) -> Result<Vec<String>, Error> {
    let mut actions = Vec::new();
    for signal in ["-TERM", "-KILL"] {
        let pids = dnsmasq_pids(&files.dnsmasq_conf);
        if pids.is_empty() {
            return Ok(actions);
        }
        for pid in &pids {
            let kill = Cmd(vec!["kill".into(), signal.into(), pid.to_string()]);
            // It may end on its own meanwhile; the wait below decides.
            let _ = kill.run();
            actions.push(kill.to_string());
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while !dnsmasq_pids(&files.dnsmasq_conf).is_empty() && Instant::now() < deadline {
            sleep(Duration::from_millis(20));
        }
    }
    if dnsmasq_pids(&files.dnsmasq_conf).is_empty() {
        Ok(actions)
    } else {
        Err(Error::Timeout {
            what: format!("dnsmasq of {} to end", files.dnsmasq_conf.display()),
            after: STOP_TIMEOUT * 2,
        })
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).map_err(io_err(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(io_err(format!("writing {}", path.display())))
}

/// Loads the ruleset unless the live table is exactly the one last loaded from the same text.
fn ensure_ruleset(plan: &GatewayPlan, network_id: u32) -> Result<Vec<String>, Error> {
    let files = &plan.files;
    let table = table_name(network_id);
    let list_table = in_netns(&plan.netns, &["nft", "-j", "list", "table", "inet", &table]);
    let tables = in_netns(&plan.netns, &["nft", "-j", "list", "tables"]).run()?;
    if has_table(&tables, network_id)?
        && fs::read_to_string(&files.ruleset).ok().as_deref() == Some(plan.ruleset.as_str())
    {
        let live = normalize_nft_json(&list_table.run()?)?;
        if fs::read_to_string(&files.ruleset_json).ok() == Some(live) {
            return Ok(Vec::new());
        }
    }
    write_file(&files.ruleset, &plan.ruleset)?;
    let ruleset_path = files.ruleset.display().to_string();
    let load = in_netns(&plan.netns, &["nft", "-f", &ruleset_path]);
    load.run()?;
    let live = normalize_nft_json(&list_table.run()?)?;
    write_file(&files.ruleset_json, &live)?;
    Ok(vec![load.to_string()])
}

/// Starts dnsmasq unless one runs with the same configuration; a changed configuration is
/// checked (`dnsmasq --test`) before the running one is stopped.
fn ensure_dnsmasq(plan: &GatewayPlan) -> Result<Vec<String>, Error> {
    let files = &plan.files;
    let running = dnsmasq_pids(&files.dnsmasq_conf);
    let recorded = recorded_dnsmasq(files);
    let current = fs::read_to_string(&files.dnsmasq_conf).ok();
    if current.as_deref() == Some(plan.dnsmasq_conf.as_str())
        && recorded.is_some()
        && running.len() == 1
    {
        return Ok(Vec::new());
    }
    let candidate = files.dnsmasq_conf.with_extension("conf.new");
    write_file(&candidate, &plan.dnsmasq_conf)?;
    Cmd(vec![
        "dnsmasq".into(),
        "--test".into(),
        format!("--conf-file={}", candidate.display()),
    ])
    .run()?;
    let mut actions = stop_dnsmasq(files)?;
    fs::rename(&candidate, &files.dnsmasq_conf)
        .map_err(io_err(format!("writing {}", files.dnsmasq_conf.display())))?;
    match fs::remove_file(&files.dnsmasq_pid) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(io_err(format!("removing {}", files.dnsmasq_pid.display()))(
                e,
            ))
        }
        _ => {}
    }
    let start = Cmd(plan.dnsmasq_argv.clone());
    start.run()?;
    let deadline = Instant::now() + PID_FILE_TIMEOUT;
    let pid = loop {
        if let Some(pid) = recorded_dnsmasq(files) {
            break pid;
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("dnsmasq's pid file {}", files.dnsmasq_pid.display()),
                after: PID_FILE_TIMEOUT,
            });
        }
        sleep(Duration::from_millis(20));
    };
    tracing::info!("started dnsmasq (pid {pid}) in {}", plan.netns);
    actions.push(start.to_string());
    Ok(actions)
}

/// Brings the GW-node to `spec`: namespace, legs, forwarding, ruleset, dnsmasq. Returns what it
/// did (commands), empty when everything already matched.
pub fn ensure(spec: &GatewaySpec, state_dir: &Path) -> Result<Vec<String>, Error> {
    let plan = plan(spec, state_dir)?;
    if let Some(pxe) = &spec.pxe {
        if !pxe.tftp_root.is_dir() {
            return Err(GatewayError::TftpRoot(pxe.tftp_root.clone()).into());
        }
    }
    fs::create_dir_all(&plan.files.dir)
        .map_err(io_err(format!("creating {}", plan.files.dir.display())))?;
    let observed = observe_legs(spec)?;
    check_bridges(spec, &observed)?;
    let mut actions = Vec::new();
    for cmd in plan_legs(spec, &observed)? {
        cmd.run()?;
        actions.push(cmd.to_string());
    }
    actions.extend(ensure_ruleset(&plan, spec.network_id)?);
    actions.extend(ensure_dnsmasq(&plan)?);
    Ok(actions)
}

/// Removes the GW-node: dnsmasq, every other process in the namespace, the namespace (its
/// legs, addresses and nftables table go with it), leftover bridge ports in the P-node's
/// namespace `netns`, and the files. Returns what it did, empty when nothing was there.
pub fn remove(
    network_id: u32,
    netns: Option<&str>,
    state_dir: &Path,
) -> Result<Vec<String>, Error> {
    let files = GatewayFiles::new(state_dir, network_id);
    let gw = netns_name(network_id);
    let mut actions = stop_dnsmasq(&files)?;
    if netns_exists(&gw)? {
        let pids = Cmd::ip(None, &["netns", "pids", &gw]).run()?;
        for pid in pids.split_whitespace() {
            let kill = Cmd(vec!["kill".into(), "-KILL".into(), pid.into()]);
            let _ = kill.run();
            actions.push(kill.to_string());
        }
        let del = Cmd::ip(None, &["netns", "del", &gw]);
        del.run()?;
        actions.push(del.to_string());
    }
    // A P-node namespace that is gone took the ports with it.
    let links: Vec<Link> = match netns {
        Some(ns) if !netns_exists(ns)? => Vec::new(),
        _ => parse_json(
            "ip -j link show",
            &Cmd::ip(netns, &["-j", "link", "show"]).run()?,
        )?,
    };
    for port in [cluster_port(network_id), outside_port(network_id)] {
        if links.iter().any(|l| l.ifname == port) {
            let del = Cmd::ip(netns, &["link", "del", &port]);
            match del.run() {
                // Gone with its peer meanwhile.
                Err(Error::Command { stderr, .. }) if stderr.contains("Cannot find device") => {}
                other => {
                    other?;
                }
            }
            actions.push(del.to_string());
        }
    }
    match fs::remove_dir_all(&files.dir) {
        Ok(()) => actions.push(format!("rm -r {}", files.dir.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("removing {}", files.dir.display()))(e)),
    }
    Ok(actions)
}

/// One leg of the GW namespace as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegStatus {
    pub name: String,
    pub up: bool,
    /// Non-link-local addresses, `ADDR/PREFIX`.
    pub addresses: Vec<String>,
    /// The bridge port's master in the P-node's namespace (`None`: no port or no master).
    pub port_master: Option<String>,
}

/// What exists of a GW-node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayStatus {
    pub network_id: u32,
    pub netns: String,
    pub netns_exists: bool,
    pub legs: Vec<LegStatus>,
    pub default_via: Option<Ipv4Addr>,
    pub ip_forward: bool,
    /// The `inet vcds_gw_<id>` table exists in the namespace.
    pub nft_table: bool,
    /// The dnsmasq of the pid file, when it is alive.
    pub dnsmasq_pid: Option<u32>,
    /// Other live dnsmasq processes with this GW's configuration file.
    pub stray_dnsmasq: Vec<u32>,
    /// Names of the files in the GW's state directory.
    pub files: Vec<String>,
}

/// Reports what exists of the GW-node of `network_id` whose bridge ports live in `netns`.
pub fn observe(
    network_id: u32,
    netns: Option<&str>,
    state_dir: &Path,
) -> Result<GatewayStatus, Error> {
    let files = GatewayFiles::new(state_dir, network_id);
    let gw = netns_name(network_id);
    let pnode_json = Cmd::ip(netns, &["-d", "-j", "link", "show"]).run()?;
    let pnode: Vec<Link> = parse_json("ip -j link show", &pnode_json)?;
    let netns_exists = netns_exists(&gw)?;
    let (mut legs, mut default_via, mut ip_forward, mut nft_table) =
        (Vec::new(), None, false, false);
    if netns_exists {
        let addrs = Cmd::ip(Some(&gw), &["-d", "-j", "addr", "show"]).run()?;
        let routes = Cmd::ip(Some(&gw), &["-4", "-j", "route", "show", "default"]).run()?;
        let forward = in_netns(&gw, &["sysctl", "-n", "net.ipv4.ip_forward"]).run()?;
        let observed = Observed::parse(network_id, "", &pnode_json, &addrs, &routes, &forward)?;
        default_via = observed.default_via;
        ip_forward = observed.ip_forward;
        for (leg, port) in [
            (CLUSTER_LEG, cluster_port(network_id)),
            (OUTSIDE_LEG, outside_port(network_id)),
        ] {
            if let Some(link) = observed.gw_link(leg) {
                legs.push(LegStatus {
                    name: leg.to_owned(),
                    up: link.is_up(),
                    addresses: link.addresses(),
                    port_master: pnode
                        .iter()
                        .find(|l| l.ifname == port)
                        .and_then(|l| l.master.clone()),
                });
            }
        }
        let tables = in_netns(&gw, &["nft", "-j", "list", "tables"]).run()?;
        nft_table = has_table(&tables, network_id)?;
    }
    let dnsmasq_pid = recorded_dnsmasq(&files);
    let stray_dnsmasq = dnsmasq_pids(&files.dnsmasq_conf)
        .into_iter()
        .filter(|pid| Some(*pid) != dnsmasq_pid)
        .collect();
    let mut names: Vec<String> = match fs::read_dir(&files.dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    Ok(GatewayStatus {
        network_id,
        netns: gw,
        netns_exists,
        legs,
        default_via,
        ip_forward,
        nft_table,
        dnsmasq_pid,
        stray_dnsmasq,
        files: names,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn spec() -> GatewaySpec {
        GatewaySpec {
            network_id: 100,
            netns: Some("pn1".to_owned()),
            cluster_bridge: "vcbr100".to_owned(),
            subnet: Ipv4Addr::new(10, 1, 0, 0),
            prefix: 24,
            outside: OutsideLeg {
                bridge: "extbr".to_owned(),
                address: Ipv4Addr::new(192, 0, 2, 10),
                prefix: 24,
                gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
            },
            nodes: vec![
                GatewayNode {
                    hostname: "frontend".to_owned(),
                    mac: crate::net::node_mac(100, 0),
                    ip: Ipv4Addr::new(10, 1, 0, 2),
                },
                GatewayNode {
                    hostname: "compute-0-0".to_owned(),
                    mac: crate::net::node_mac(100, 1),
                    ip: Ipv4Addr::new(10, 1, 0, 3),
                },
            ],
            dns_servers: vec![Ipv4Addr::new(10, 1, 0, 2)],
            pxe: Some(PxeBoot {
                tftp_root: PathBuf::from("/srv/tftp"),
                bios_file: Some("undionly.kpxe".to_owned()),
                ipxe_file: Some("boot.ipxe".to_owned()),
            }),
            kickstart_url: Some("http://10.1.0.2/install/sbin/kickstart.cgi".to_owned()),
            forwards: vec![PortForward {
                protocol: Protocol::Tcp,
                external_port: 2222,
                to: Ipv4Addr::new(10, 1, 0, 2),
                to_port: 22,
            }],
        }
    }

    fn argv(cmds: &[Cmd]) -> Vec<String> {
        cmds.iter().map(Cmd::to_string).collect()
    }

    fn err(spec: &GatewaySpec) -> GatewayError {
        spec.validate().unwrap_err()
    }

    #[test]
    fn names_are_short_and_deterministic() {
        assert_eq!(netns_name(100), "gw-100");
        assert_eq!(cluster_port(MAX_VNI), "gwc16777215");
        assert!(outside_port(MAX_VNI).len() <= MAX_IFNAME);
        assert_eq!(table_name(100), "vcds_gw_100");
        assert_eq!(ula_address(100), "fd76:6364:7300:64::1/64");
        assert_eq!(ula_address(0x12_3456), "fd76:6364:7312:3456::1/64");
        assert_eq!(spec().gateway_ip(), Ipv4Addr::new(10, 1, 0, 1));
    }

    #[test]
    fn legs_from_scratch() {
        let plan = plan(&spec(), Path::new("/var/lib/vcds")).unwrap();
        assert_eq!(plan.netns, "gw-100");
        assert_eq!(
            argv(&plan.legs),
            [
                "ip netns add gw-100",
                "ip -n gw-100 link set lo up",
                "ip -n pn1 link add gwc100 type veth peer name cl0 netns gw-100",
                "ip -n pn1 link set gwc100 master vcbr100",
                "ip -n pn1 link set gwc100 up",
                "ip -n pn1 link add gwo100 type veth peer name out0 netns gw-100",
                "ip -n pn1 link set gwo100 master extbr",
                "ip -n pn1 link set gwo100 up",
                "ip -n gw-100 addr add 10.1.0.1/24 dev cl0",
                "ip -n gw-100 addr add fd76:6364:7300:64::1/64 dev cl0 nodad",
                "ip -n gw-100 link set cl0 up",
                "ip -n gw-100 addr add 192.0.2.10/24 dev out0",
                "ip -n gw-100 link set out0 up",
                "ip -n gw-100 route replace default via 192.0.2.1 dev out0",
                "ip netns exec gw-100 sysctl -q -w net.ipv4.ip_forward=1",
            ]
        );
        assert_eq!(
            plan.dnsmasq_argv.join(" "),
            "ip netns exec gw-100 dnsmasq --conf-file=/var/lib/vcds/gw-100/dnsmasq.conf \
             --pid-file=/var/lib/vcds/gw-100/dnsmasq.pid"
        );
        assert_eq!(
            plan.files.leases,
            Path::new("/var/lib/vcds/gw-100/dnsmasq.leases")
        );
    }

    #[test]
    fn ruleset_text() {
        assert_eq!(
            ruleset(&spec()),
            "# vcds GW-node of cluster network 100: generated; loaded with nft -f in namespace gw-100.
table inet vcds_gw_100
delete table inet vcds_gw_100
table inet vcds_gw_100 {
\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tiifname \"out0\" ip daddr 192.0.2.10 tcp dport 2222 dnat ip to 10.1.0.2:22
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname \"out0\" ip saddr 10.1.0.0/24 masquerade
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy drop;
\t\tct state established,related accept
\t\tiifname \"cl0\" oifname \"out0\" ip saddr 10.1.0.0/24 accept
\t\tiifname \"out0\" oifname \"cl0\" ct status dnat ip daddr 10.1.0.2 tcp dport 22 accept
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tiifname \"lo\" accept
\t\tiifname \"cl0\" accept
\t\tiifname \"out0\" icmp type echo-request accept
\t}
}
"
        );
    }

    #[test]
    fn dnsmasq_configuration_text() {
        let mut spec = spec();
        spec.nodes[1].mac = crate::net::node_mac(100, 10);
        let plan = plan(&spec, Path::new("/var/lib/vcds")).unwrap();
        assert_eq!(
            plan.dnsmasq_conf,
            "# vcds GW-node of cluster network 100: generated, do not edit.
# DHCP (and TFTP) on the cluster leg only; no DNS.
interface=cl0
bind-interfaces
port=0
dhcp-authoritative
dhcp-range=10.1.0.0,static,255.255.255.0,12h
dhcp-option=option:router,10.1.0.1
dhcp-option=option:dns-server,10.1.0.2
dhcp-leasefile=/var/lib/vcds/gw-100/dnsmasq.leases
log-facility=/var/lib/vcds/gw-100/dnsmasq.log
# The plan's nodes: MAC, fixed address, host name.
dhcp-host=52:54:00:00:64:00,10.1.0.2,frontend
dhcp-host=52:54:00:00:64:0a,10.1.0.3,compute-0-0
# Kickstart URL (iPXE: ${224:string}).
dhcp-option-force=224,\"http://10.1.0.2/install/sbin/kickstart.cgi\"
# PXE: boot files over TFTP; iPXE announces itself with option 175.
enable-tftp
tftp-root=/srv/tftp
dhcp-match=set:ipxe,175
dhcp-boot=tag:ipxe,boot.ipxe
dhcp-boot=tag:!ipxe,undionly.kpxe
# Router advertisements with router lifetime 0 end iPXE's IPv6 wait (~13 s).
enable-ra
dhcp-range=::,constructor:cl0,ra-only,64
ra-param=cl0,60,0
"
        );
    }

    #[test]
    fn without_pxe_no_tftp_no_ra_and_no_ula() {
        let mut spec = spec();
        spec.pxe = None;
        spec.kickstart_url = None;
        spec.dns_servers.clear();
        spec.outside.gateway = None;
        let plan = plan(&spec, Path::new("/s")).unwrap();
        for absent in ["tftp", "dhcp-boot", "enable-ra", "224", "dns-server"] {
            assert!(!plan.dnsmasq_conf.contains(absent), "{absent}");
        }
        let legs = argv(&plan.legs);
        assert!(!legs
            .iter()
            .any(|c| c.contains("fd76") || c.contains("route")));
    }

    // Shapes taken from `ip -d -j link show`, `ip -d -j addr show`, `ip -j netns list` and
    // `ip -4 -j route show default` on this machine.
    const NETNS: &str = r#"[{"name":"gw-100","id":3},{"name":"pn1","id":0}]"#;
    const PNODE: &str = r#"[
      {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"]},
      {"ifindex":4,"ifname":"vcbr100","flags":["BROADCAST","UP"],"linkinfo":{"info_kind":"bridge"}},
      {"ifindex":5,"ifname":"extbr","flags":["BROADCAST","UP"],"linkinfo":{"info_kind":"bridge"}},
      {"ifindex":6,"link_index":2,"ifname":"gwc100","flags":["BROADCAST","UP","LOWER_UP"],
       "master":"vcbr100","link_netnsid":3,"linkinfo":{"info_kind":"veth","info_slave_kind":"bridge"}},
      {"ifindex":7,"link_index":3,"ifname":"gwo100","flags":["BROADCAST","UP","LOWER_UP"],
       "master":"extbr","link_netnsid":3,"linkinfo":{"info_kind":"veth","info_slave_kind":"bridge"}}
    ]"#;
    const GW: &str = r#"[
      {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],
       "addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
      {"ifindex":2,"link_index":6,"ifname":"cl0","flags":["BROADCAST","UP","LOWER_UP"],
       "linkinfo":{"info_kind":"veth"},
       "addr_info":[{"family":"inet","local":"10.1.0.1","prefixlen":24,"scope":"global"},
                    {"family":"inet6","local":"fd76:6364:7300:64:aceb:c6ff:fe53:b13d","prefixlen":64,
                     "scope":"global","dynamic":true,"mngtmpaddr":true},
                    {"family":"inet6","local":"fd76:6364:7300:64::1","prefixlen":64,"scope":"global"},
                    {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]},
      {"ifindex":3,"link_index":7,"ifname":"out0","flags":["BROADCAST","UP","LOWER_UP"],
       "linkinfo":{"info_kind":"veth"},
       "addr_info":[{"family":"inet","local":"192.0.2.10","prefixlen":24,"scope":"global"}]}
    ]"#;
    const ROUTES: &str = r#"[{"dst":"default","gateway":"192.0.2.1","dev":"out0","flags":[]}]"#;

    fn observed(gw: &str) -> Observed {
        Observed::parse(100, NETNS, PNODE, gw, ROUTES, "1\n").unwrap()
    }

    #[test]
    fn complete_gateway_needs_no_commands() {
        let observed = observed(GW);
        assert!(observed.netns_exists && observed.ip_forward);
        assert_eq!(observed.default_via, Some(Ipv4Addr::new(192, 0, 2, 1)));
        check_bridges(&spec(), &observed).unwrap();
        assert_eq!(plan_legs(&spec(), &observed).unwrap(), Vec::new());
    }

    #[test]
    fn drifted_gateway_is_repaired() {
        let mut spec = spec();
        spec.outside.address = Ipv4Addr::new(192, 0, 2, 11);
        spec.outside.gateway = Some(Ipv4Addr::new(192, 0, 2, 254));
        spec.cluster_bridge = "vcbr101".to_owned();
        let mut observed = observed(&GW.replace(
            r#""ifname":"cl0","flags":["BROADCAST","UP""#,
            r#""ifname":"cl0","flags":["BROADCAST""#,
        ));
        observed.ip_forward = false;
        assert_eq!(
            argv(&plan_legs(&spec, &observed).unwrap()),
            [
                "ip -n pn1 link set gwc100 master vcbr101",
                "ip -n gw-100 link set cl0 up",
                "ip -n gw-100 addr del 192.0.2.10/24 dev out0",
                "ip -n gw-100 addr add 192.0.2.11/24 dev out0",
                "ip -n gw-100 route replace default via 192.0.2.254 dev out0",
                "ip netns exec gw-100 sysctl -q -w net.ipv4.ip_forward=1",
            ]
        );
    }

    #[test]
    fn half_a_leg_is_recreated() {
        let gw_without_out0 = r#"[{"ifname":"lo","flags":["UP"]},
            {"ifname":"cl0","flags":["UP"],"linkinfo":{"info_kind":"veth"},
             "addr_info":[{"family":"inet","local":"10.1.0.1","prefixlen":24,"scope":"global"},
                          {"family":"inet6","local":"fd76:6364:7300:64::1","prefixlen":64,"scope":"global"}]}]"#;
        assert_eq!(
            argv(&plan_legs(&spec(), &observed(gw_without_out0)).unwrap()),
            [
                "ip -n pn1 link del gwo100",
                "ip -n pn1 link add gwo100 type veth peer name out0 netns gw-100",
                "ip -n pn1 link set gwo100 master extbr",
                "ip -n pn1 link set gwo100 up",
                "ip -n gw-100 addr add 192.0.2.10/24 dev out0",
                "ip -n gw-100 link set out0 up",
                "ip -n gw-100 route replace default via 192.0.2.1 dev out0",
            ]
        );
        // Same gateway, new outside address: deleting the old one drops the route too.
        let mut moved = spec();
        moved.outside.address = Ipv4Addr::new(192, 0, 2, 12);
        assert_eq!(
            argv(&plan_legs(&moved, &observed(GW)).unwrap()),
            [
                "ip -n gw-100 addr del 192.0.2.10/24 dev out0",
                "ip -n gw-100 addr add 192.0.2.12/24 dev out0",
                "ip -n gw-100 route replace default via 192.0.2.1 dev out0",
            ]
        );
    }

    #[test]
    fn foreign_devices_and_missing_bridges_are_refused() {
        let foreign = r#"[{"ifname":"vcbr100","linkinfo":{"info_kind":"bridge"}},
            {"ifname":"extbr","linkinfo":{"info_kind":"bridge"}},
            {"ifname":"gwc100","linkinfo":{"info_kind":"bridge"}}]"#;
        let observed = Observed::parse(100, NETNS, foreign, GW, ROUTES, "1").unwrap();
        assert!(matches!(
            plan_legs(&spec(), &observed),
            Err(Error::Conflict { dev, .. }) if dev == "gwc100"
        ));
        let mut spec = spec();
        spec.outside.bridge = "nosuchbr".to_owned();
        let err = check_bridges(&spec, &observed).unwrap_err().to_string();
        assert!(err.contains("bridge nosuchbr does not exist"), "{err}");
    }

    #[test]
    fn nothing_observed_parses_from_empty_output() {
        let observed = Observed::parse(100, "", "[]", "", "", "").unwrap();
        assert_eq!(observed, Observed::default());
        assert!(matches!(
            Observed::parse(100, "Object \"netns\" is unknown", "[]", "", "", ""),
            Err(Error::Json { .. })
        ));
    }

    #[test]
    fn nft_listings_compare_without_handles() {
        let a = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "vcds_gw_100", "handle": 3}},
            {"chain": {"family": "inet", "table": "vcds_gw_100", "name": "forward", "handle": 1, "policy": "drop"}}]}"#;
        let b = a
            .replace(r#""handle": 3"#, r#""handle": 9"#)
            .replace("1.0.6", "1.0.9");
        assert_eq!(
            normalize_nft_json(a).unwrap(),
            normalize_nft_json(&b).unwrap()
        );
        let c = a.replace("drop", "accept");
        assert_ne!(
            normalize_nft_json(a).unwrap(),
            normalize_nft_json(&c).unwrap()
        );
        assert!(has_table(a, 100).unwrap());
        assert!(!has_table(a, 101).unwrap());
        assert!(!has_table(r#"{"nftables": [{"metainfo": {}}]}"#, 100).unwrap());
    }

    #[test]
    fn invalid_specs_are_refused_precisely() {
        let mut s = spec();
        s.network_id = 0;
        assert_eq!(err(&s), GatewayError::NetworkId(0));

        let mut s = spec();
        s.subnet = Ipv4Addr::new(10, 1, 0, 5);
        assert!(
            matches!(err(&s), GatewayError::Subnet { reason, .. } if reason.contains("host bits"))
        );
        s.subnet = Ipv4Addr::new(10, 1, 0, 0);
        s.prefix = 31;
        assert!(matches!(err(&s), GatewayError::Subnet { .. }));

        let mut s = spec();
        s.nodes[1].mac = "01:00:5e:00:00:01".parse().unwrap();
        assert_eq!(
            err(&s).to_string(),
            "node \"compute-0-0\": 01:00:5e:00:00:01 is not a unicast MAC address"
        );
        s.nodes[1].mac = MacAddr([0; 6]);
        assert!(matches!(err(&s), GatewayError::Mac { .. }));
        // What is not a MAC at all does not make a spec: the text form is checked when read.
        let json = serde_json::to_string(&spec()).unwrap();
        assert!(json.contains(r#""mac":"52:54:00:00:64:01""#), "{json}");
        for bad in ["52:54:00:00:64", "52:54:00:00:64:0g", "52:54:00:00:64:001"] {
            let bad_json = json.replace("52:54:00:00:64:01", bad);
            assert!(
                serde_json::from_str::<GatewaySpec>(&bad_json).is_err(),
                "{bad}"
            );
        }
        // Either notation and case is read, and written back canonically.
        let read: GatewaySpec =
            serde_json::from_str(&json.replace("52:54:00:00:64:01", "52-54-00-00-64-01")).unwrap();
        assert_eq!(read, spec());

        let mut s = spec();
        s.nodes[1].ip = Ipv4Addr::new(10, 2, 0, 3);
        assert_eq!(
            err(&s).to_string(),
            "node compute-0-0: 10.2.0.3 is outside the cluster subnet 10.1.0.0/24"
        );
        for (ip, what) in [
            (Ipv4Addr::new(10, 1, 0, 1), "the GW-node's address"),
            (Ipv4Addr::new(10, 1, 0, 0), "the network address"),
            (Ipv4Addr::new(10, 1, 0, 255), "the broadcast address"),
        ] {
            s.nodes[1].ip = ip;
            assert!(matches!(err(&s), GatewayError::ReservedIp { what: w, .. } if w == what));
        }

        let mut s = spec();
        s.nodes[1].hostname = "Frontend".to_owned();
        assert_eq!(
            err(&s),
            GatewayError::DuplicateHostName("Frontend".to_owned())
        );
        for bad in ["", "-x", "x-", "a.b", "a b", "a,b", &"x".repeat(64)] {
            s.nodes[1].hostname = bad.to_owned();
            assert!(matches!(err(&s), GatewayError::HostName(_)), "{bad:?}");
        }

        let mut s = spec();
        s.nodes[1].mac = "52:54:00:00:64:00".to_uppercase().parse().unwrap();
        assert_eq!(
            err(&s).to_string(),
            "MAC 52:54:00:00:64:00 is given to both frontend and compute-0-0"
        );
        let mut s = spec();
        s.nodes[1].ip = s.nodes[0].ip;
        assert!(matches!(err(&s), GatewayError::DuplicateIp { .. }));

        let mut s = spec();
        s.forwards[0].external_port = 0;
        assert!(matches!(err(&s), GatewayError::PortZero { .. }));
        let mut s = spec();
        s.forwards[0].to_port = 0;
        assert!(matches!(err(&s), GatewayError::PortZero { .. }));
        let mut s = spec();
        s.forwards[0].to = Ipv4Addr::new(10, 1, 0, 99);
        assert_eq!(
            err(&s).to_string(),
            "port forward tcp 2222 goes to 10.1.0.99, which is not a node of the cluster"
        );
        let mut s = spec();
        s.forwards.push(s.forwards[0].clone());
        assert_eq!(
            err(&s),
            GatewayError::DuplicateForward {
                protocol: Protocol::Tcp,
                port: 2222
            }
        );
        s.forwards[1].protocol = Protocol::Udp;
        s.validate().unwrap();
    }

    #[test]
    fn invalid_outside_legs_names_and_boot_options_are_refused() {
        let mut s = spec();
        s.outside.address = Ipv4Addr::new(10, 1, 0, 200);
        assert!(
            matches!(err(&s), GatewayError::Outside { reason, .. } if reason.contains("overlaps"))
        );
        s.outside.address = Ipv4Addr::new(10, 0, 0, 1);
        s.outside.prefix = 8; // contains the cluster subnet
        assert!(matches!(err(&s), GatewayError::Outside { .. }));
        let mut s = spec();
        s.outside.gateway = Some(Ipv4Addr::new(198, 51, 100, 1));
        assert!(
            matches!(err(&s), GatewayError::Outside { reason, .. } if reason.contains("gateway"))
        );
        s.outside.gateway = Some(s.outside.address);
        assert!(matches!(err(&s), GatewayError::Outside { .. }));
        let mut s = spec();
        s.outside.address = Ipv4Addr::new(192, 0, 2, 255);
        assert!(matches!(err(&s), GatewayError::Outside { .. }));

        let mut s = spec();
        s.cluster_bridge = "a-very-long-bridge".to_owned();
        assert!(matches!(
            err(&s),
            GatewayError::InterfaceName {
                what: "cluster bridge",
                ..
            }
        ));
        s.cluster_bridge = "../x".to_owned();
        assert!(matches!(err(&s), GatewayError::InterfaceName { .. }));

        let mut s = spec();
        let pxe = s.pxe.as_mut().unwrap();
        pxe.tftp_root = PathBuf::from("relative/tftp");
        assert!(matches!(
            err(&s),
            GatewayError::Path {
                what: "TFTP root",
                ..
            }
        ));
        let pxe = s.pxe.as_mut().unwrap();
        pxe.tftp_root = PathBuf::from("/srv/tftp\nenable-dbus");
        assert!(matches!(err(&s), GatewayError::Path { .. }));
        let pxe = s.pxe.as_mut().unwrap();
        pxe.tftp_root = PathBuf::from("/srv/tftp");
        pxe.bios_file = None;
        pxe.ipxe_file = None;
        assert_eq!(err(&s), GatewayError::NoBootFile);
        for bad in ["", "/abs", "../up", "a/../b", "a b", "a,b", "x\ny", "a#b"] {
            let pxe = s.pxe.as_mut().unwrap();
            pxe.ipxe_file = Some(bad.to_owned());
            assert!(matches!(err(&s), GatewayError::BootFile(_)), "{bad:?}");
        }
        let pxe = s.pxe.as_mut().unwrap();
        pxe.ipxe_file = Some("http://10.1.0.2/boot.ipxe".to_owned());
        s.validate().unwrap();

        for bad in [
            "ftp://x/ks",
            "http://",
            "http://a b",
            "http://x/\"ks",
            "http://x/ks\n",
            &format!("http://{}", "x".repeat(250)),
        ] {
            s.kickstart_url = Some(bad.to_owned());
            assert!(matches!(err(&s), GatewayError::KickstartUrl(_)), "{bad:?}");
        }
        s.kickstart_url = None;
        assert!(matches!(
            plan(&s, Path::new("state")),
            Err(Error::Gateway(GatewayError::Path {
                what: "state directory",
                ..
            }))
        ));
        s.netns = Some("a/b".to_owned());
        assert_eq!(err(&s), GatewayError::Namespace("a/b".to_owned()));
    }

    #[test]
    fn spec_has_a_stable_wire_form() {
        let json = serde_json::to_value(spec()).unwrap();
        assert_eq!(json["forwards"][0]["protocol"], "tcp");
        assert_eq!(json["outside"]["address"], "192.0.2.10");
        let back: GatewaySpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec());
        // Optional lists may be left out.
        let minimal = r#"{"network_id":7,"netns":null,"cluster_bridge":"vcbr7","subnet":"10.7.0.0",
            "prefix":24,"outside":{"bridge":"extbr","address":"192.0.2.7","prefix":24,"gateway":null},
            "nodes":[],"pxe":null,"kickstart_url":null}"#;
        let minimal: GatewaySpec = serde_json::from_str(minimal).unwrap();
        assert!(minimal.forwards.is_empty() && minimal.dns_servers.is_empty());
        minimal.validate().unwrap();
    }
}
