//! The local site: this machine as a few P-nodes, each a network namespace served by its own
//! `vcds agent`, joined by an underlay (for the clusters' VXLAN) and by an outside network
//! (for the GW-nodes' outside legs, the manager's install endpoint, and this machine's own
//! leg, from which a user on the host reaches the GW-nodes' outside addresses as on a real
//! site).
//!
//! Layout for prefix `vcds` and two P-nodes:
//!
//! ```text
//!  vcds-ul: bridge ulbr ── ul0 198.18.0.1 (vcds-p1)    ul0 198.18.0.2 (vcds-p2)
//!  vcds-out: bridge outbr 198.19.0.1/16 (the manager's install listener, the "internet")
//!            ├─ host ── vcds-out 198.19.0.2/16 (in the host's namespace; route 198.19.0.0/16)
//!            ├─ ext1 ── extup ─ extbr (in vcds-p1) ─ GW-node outside legs
//!            └─ ext2 ── extup ─ extbr (in vcds-p2)
//! ```
//!
//! Everything here persists across manager restarts: [`LocalSite::bootstrap`] adopts the
//! namespaces and the agents that are already there (a manager killed with -9 finds its
//! P-nodes, VMs and GW-nodes as it left them), and creates what is missing. Only
//! [`LocalSite::teardown`] removes it.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::agent::AgentClient;
use sha2::{Digest as _, Sha256};

use crate::net::{ClusterNet, Cmd, L2Mode, MAX_IFNAME};
use crate::netns::{Namespaces, UNDERLAY_DEV};
use crate::process::{live_argv, pids_where};
use crate::rpc::{Endpoint, Key};
use crate::Error;

/// The outside bridge in every P-node namespace: the GW-nodes' outside legs join it.
pub const OUTSIDE_BRIDGE: &str = "extbr";
/// The outside network (RFC 2544's second /16: never routed, so it cannot clash with a real
/// network) and its prefix length.
pub const OUTSIDE_NET: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
pub const OUTSIDE_PREFIX: u8 = 16;
/// The manager's address on the outside network: GW-nodes route to it, installing nodes fetch
/// their kickstarts from it.
pub const MANAGER_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
/// This machine's address on the outside network, on its leg into the outside namespace
/// ([`LocalSite::host_leg`]): the host reaches the GW-nodes' outside addresses (and the
/// manager's install listener) from it, and only 198.19.0.0/16 through it. No GW-node gets it:
/// theirs start at 198.19.1.0 ([`LocalSite::gateway_outside_ip`]).
pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
/// The outside bridge in the outside namespace.
pub const OUTSIDE_HUB: &str = "outbr";
/// The host leg's end in the outside namespace, a port of [`OUTSIDE_HUB`].
const HOST_PORT: &str = "host";
/// From spawning an agent to its socket answering.
const AGENT_START_TIMEOUT: Duration = Duration::from_secs(10);

/// How the local site is laid out.
#[derive(Debug, Clone)]
pub struct LocalSiteConfig {
    /// Prefix of the namespaces (`{prefix}-ul`, `{prefix}-out`, `{prefix}-p1`…).
    pub prefix: String,
    pub pnodes: u8,
    /// Agents' sockets, keys, state and logs.
    pub state_root: PathBuf,
    /// The `vcds` executable the agents run.
    pub vcds_exe: PathBuf,
}

/// Where each local site's public directory lives (see [`LocalSite::public_dir`]).
const PUBLIC_ROOT: &str = "/run/vcds";

/// One P-node of the local site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPnode {
    /// The P-node's name in placement (`pnode1`, …).
    pub name: String,
    pub netns: String,
    pub underlay_ip: Ipv4Addr,
    pub endpoint: Endpoint,
}

impl LocalPnode {
    /// The desired network of cluster `network_id` on this P-node, VXLAN to `peers`.
    pub fn cluster_net(
        &self,
        network_id: u32,
        peers: Vec<Ipv4Addr>,
        taps: Vec<String>,
    ) -> ClusterNet {
        ClusterNet {
            netns: Some(self.netns.clone()),
            network_id,
            mode: L2Mode::Vxlan {
                underlay_dev: UNDERLAY_DEV.to_owned(),
                underlay_ip: self.underlay_ip,
                peers,
            },
            taps,
        }
    }
}

/// The local site as bootstrapped.
#[derive(Debug, Clone)]
pub struct LocalSite {
    pub prefix: String,
    pub pnodes: Vec<LocalPnode>,
    /// The namespace of the outside network, where the manager's install listener lives.
    pub outside_netns: String,
    pub key_file: PathBuf,
    pub state_root: PathBuf,
    /// The `vcds` binary agents are started from.
    pub vcds_exe: PathBuf,
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

impl LocalSite {
    /// The layout of `config` without touching anything.
    pub fn layout(config: &LocalSiteConfig) -> LocalSite {
        let prefix = config.prefix.clone();
        LocalSite {
            pnodes: (0..config.pnodes)
                .map(|i| {
                    let n = u16::from(i) + 1;
                    LocalPnode {
                        name: format!("pnode{n}"),
                        netns: format!("{prefix}-p{n}"),
                        underlay_ip: crate::netns::underlay_ip(i),
                        endpoint: Endpoint::Unix(
                            config
                                .state_root
                                .join(format!("pnode{n}"))
                                .join("agent.sock"),
                        ),
                    }
                })
                .collect(),
            outside_netns: format!("{prefix}-out"),
            key_file: config.state_root.join("agent.key"),
            state_root: config.state_root.clone(),
            vcds_exe: config.vcds_exe.clone(),
            prefix,
        }
    }

    /// Makes the site exist: the namespaces and links (adopted when all are there, else made
    /// anew), the agents' key, and one running agent per P-node (adopted when its socket
    /// answers). Needs root.
    pub fn bootstrap(config: &LocalSiteConfig) -> Result<LocalSite, Error> {
        let site = LocalSite::layout(config);
        fs::create_dir_all(&site.state_root)
            .map_err(io_err(format!("creating {}", site.state_root.display())))?;
        fs::set_permissions(&site.state_root, fs::Permissions::from_mode(0o700))
            .map_err(io_err(format!("chmod {}", site.state_root.display())))?;
        site.ensure_key()?;
        if !site.namespaces().iter().all(|n| netns_exists(n)) {
            // Half a site (a crash during bootstrap) is removed and made again.
            site.teardown()?;
            fs::create_dir_all(&site.state_root)
                .map_err(io_err(format!("creating {}", site.state_root.display())))?;
            site.ensure_key()?;
            site.build_namespaces()?;
        }
        site.ensure_host_leg()?;
        for pnode in &site.pnodes {
            site.ensure_agent(pnode)?;
        }
        Ok(site)
    }

    /// The device in the host's namespace that is this machine's leg on the site's outside
    /// network: `{prefix}-out` (the namespace it leads into) when that fits an interface
    /// name, else `out-` and 11 hex digits of a SHA-256 of the prefix. Different prefixes get
    /// different names (a long prefix's never ends in `-out`); a clash of hashes, or a device
    /// of that name that is not this site's, is refused at bootstrap.
    pub fn host_leg(&self) -> String {
        host_leg_name(&self.prefix)
    }

    /// What the host leg's alias says: the mark by which bootstrap adopts, and teardown
    /// removes, only this site's device.
    fn host_leg_alias(&self) -> String {
        format!(
            "vcds local site {}: the host's leg on the outside network",
            self.prefix
        )
    }

    /// Makes the host's leg on the outside network exist (or adopts it): a veth from the
    /// host's namespace into the outside namespace, enslaved to its bridge, with [`HOST_IP`]
    /// and so the route to the outside network; no default route, nothing else.
    fn ensure_host_leg(&self) -> Result<(), Error> {
        let dev = self.host_leg();
        let alias = self.host_leg_alias();
        match host_link_alias(&dev)? {
            Some(found) if found == alias => {}
            Some(found) => {
                return Err(Error::Conflict {
                    dev,
                    reason: format!(
                        "is not the host leg of local site {} (its alias: {found:?})",
                        self.prefix
                    ),
                })
            }
            None => {
                let out = self.outside_netns.as_str();
                let veth = ["type", "veth", "peer", "name", HOST_PORT, "netns", out];
                let add = [&["link", "add", dev.as_str()][..], &veth].concat();
                Cmd::ip(None, &add).run()?;
                Cmd::ip(None, &["link", "set", &dev, "alias", &alias]).run()?;
            }
        }
        // No IPv6 on it (best effort: the kernel may have none): the outside network is IPv4,
        // and a host that autoconfigures or solicits routers there gains nothing.
        let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"), "1");
        let cidr = format!("{HOST_IP}/{OUTSIDE_PREFIX}");
        Cmd::ip(None, &["addr", "replace", &cidr, "dev", &dev]).run()?;
        Cmd::ip(None, &["link", "set", &dev, "up"]).run()?;
        Cmd::ip(
            Some(&self.outside_netns),
            &["link", "set", HOST_PORT, "master", OUTSIDE_HUB, "up"],
        )
        .run()?;
        // Another local site (or a network of the host's own) may hold the route already.
        let route = Cmd::ip(None, &["-j", "route", "get", &MANAGER_IP.to_string()]).run()?;
        let via: Option<String> = serde_json::from_str::<serde_json::Value>(&route)
            .ok()
            .and_then(|r| Some(r.get(0)?.get("dev")?.as_str()?.to_owned()));
        if via.as_deref() != Some(dev.as_str()) {
            tracing::warn!(
                prefix = %self.prefix,
                "the host reaches {OUTSIDE_NET}/{OUTSIDE_PREFIX} through {}, not through this \
                 site's leg {dev}: GW-nodes of this site are not reachable from the host",
                via.as_deref().unwrap_or("nothing")
            );
        }
        Ok(())
    }

    /// Removes the host's leg when it is this site's (both ends go: it is a veth pair).
    fn remove_host_leg(&self) -> Result<(), Error> {
        let dev = self.host_leg();
        if host_link_alias(&dev)?.as_deref() == Some(self.host_leg_alias().as_str()) {
            Cmd::ip(None, &["link", "del", &dev]).run()?;
        }
        Ok(())
    }

    fn namespaces(&self) -> Vec<String> {
        let mut names = vec![format!("{}-ul", self.prefix), self.outside_netns.clone()];
        names.extend(self.pnodes.iter().map(|p| p.netns.clone()));
        names
    }

    fn ensure_key(&self) -> Result<(), Error> {
        if self.key_file.exists() {
            return Ok(());
        }
        let mut bytes = [0u8; 32];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(io_err("reading /dev/urandom"))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.key_file)
            .and_then(|mut f| f.write_all(hex.as_bytes()))
            .map_err(io_err(format!("writing {}", self.key_file.display())))
    }

    pub fn key(&self) -> Result<Key, Error> {
        Ok(Key::load(&self.key_file)?)
    }

    /// The underlay, the outside network and every P-node's outside bridge; all or nothing.
    fn build_namespaces(&self) -> Result<(), Error> {
        let mut made = Namespaces::new();
        let count = u8::try_from(self.pnodes.len())
            .map_err(|_| Error::InvalidSpec("too many P-nodes".to_owned()))?;
        made.build_underlay(&self.prefix, count)?;
        let out = self.outside_netns.as_str();
        made.create(out)?;
        let hub_ip = format!("{MANAGER_IP}/{OUTSIDE_PREFIX}");
        for args in [
            &["link", "add", OUTSIDE_HUB, "type", "bridge"][..],
            &["addr", "add", &hub_ip, "dev", OUTSIDE_HUB],
            &["link", "set", OUTSIDE_HUB, "up"],
        ] {
            Cmd::ip(Some(out), args).run()?;
        }
        for (i, pnode) in self.pnodes.iter().enumerate() {
            let port = format!("ext{}", i + 1);
            let ns = Some(pnode.netns.as_str());
            Cmd::ip(ns, &["link", "add", OUTSIDE_BRIDGE, "type", "bridge"]).run()?;
            Cmd::ip(ns, &["link", "set", OUTSIDE_BRIDGE, "up"]).run()?;
            Cmd::ip(
                Some(out),
                &[
                    "link",
                    "add",
                    &port,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "extup",
                    "netns",
                    &pnode.netns,
                ],
            )
            .run()?;
            Cmd::ip(
                Some(out),
                &["link", "set", &port, "master", OUTSIDE_HUB, "up"],
            )
            .run()?;
            Cmd::ip(
                ns,
                &["link", "set", "extup", "master", OUTSIDE_BRIDGE, "up"],
            )
            .run()?;
        }
        made.keep();
        Ok(())
    }

    /// Connects to P-node `pnode`'s agent.
    pub fn connect(&self, pnode: &LocalPnode) -> Result<AgentClient, Error> {
        Ok(AgentClient::connect(&pnode.endpoint, self.key()?)?)
    }

    fn agent_dir(&self, pnode: &LocalPnode) -> PathBuf {
        self.state_root.join(&pnode.name)
    }

    /// Makes P-node `pnode`'s agent run: adopts the one that answers, else starts one (after
    /// a crash or kill -9 it re-adopts its VMs and GW-nodes from its state file).
    pub fn ensure_agent(&self, pnode: &LocalPnode) -> Result<(), Error> {
        let vcds_exe = &self.vcds_exe;
        if self
            .connect(pnode)
            .and_then(|mut c| Ok(c.inventory()?))
            .is_ok()
        {
            tracing::info!(pnode = %pnode.name, "adopted the running P-node agent");
            return Ok(());
        }
        let dir = self.agent_dir(pnode);
        fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("agent.log"))
            .map_err(io_err(format!("opening {}/agent.log", dir.display())))?;
        let stderr = log
            .try_clone()
            .map_err(io_err("duplicating the agent log"))?;
        let mut cmd = Command::new(vcds_exe);
        cmd.arg("agent")
            .arg("--socket")
            .arg(pnode.endpoint.to_string())
            .arg("--key-file")
            .arg(&self.key_file)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--netns")
            .arg(&pnode.netns)
            // Metrics on a loopback port of the kernel's choosing; the inventory says which.
            .args(["--gmond-listen", "127.0.0.1:0", "--gmond-host", &pnode.name])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            // Its own process group: Ctrl-C to the manager leaves the P-nodes running.
            .process_group(0);
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            cmd: format!("{} agent", vcds_exe.display()),
            source,
        })?;
        let pid = child.id();
        fs::write(dir.join("agent.pid"), pid.to_string())
            .map_err(io_err(format!("writing {}/agent.pid", dir.display())))?;
        // Reaped here while the manager lives; after that by init.
        std::thread::spawn(move || child.wait());
        let started = Instant::now();
        loop {
            match self.connect(pnode).and_then(|mut c| Ok(c.inventory()?)) {
                Ok(_) => {
                    tracing::info!(pnode = %pnode.name, pid, "started the P-node agent");
                    return Ok(());
                }
                Err(e) if started.elapsed() > AGENT_START_TIMEOUT => {
                    let log = fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(5).collect();
                    return Err(Error::Timeout {
                        what: format!(
                            "the agent of {} ({e}; log ends: {})",
                            pnode.name,
                            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                        ),
                        after: AGENT_START_TIMEOUT,
                    });
                }
                Err(_) => sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Pids of the agents of this site (found by their socket on the command line).
    pub fn agent_pids(&self) -> Vec<u32> {
        let sockets: Vec<String> = self.pnodes.iter().map(|p| p.endpoint.to_string()).collect();
        pids_where(|argv| {
            argv.iter().any(|a| a == "agent") && argv.iter().any(|a| sockets.contains(a))
        })
    }

    /// Removes the whole site: each agent removes its VMs and GW-nodes (they live in
    /// namespaces of their own), then the agents stop and the namespaces go with every link in
    /// them, then the state directory.
    pub fn teardown(&self) -> Result<(), Error> {
        for pnode in &self.pnodes {
            let Endpoint::Unix(socket) = &pnode.endpoint else {
                continue;
            };
            if !socket.exists() {
                continue; // never started, or already gone
            }
            if let Err(e) = self.clear_pnode(pnode) {
                tracing::warn!(pnode = %pnode.name, error = %e, "agent cleanup");
            }
        }
        for pid in self.agent_pids() {
            let _ = Cmd(vec!["kill".into(), "-KILL".into(), pid.to_string()]).run();
        }
        // Removed by itself: the outside namespace can outlive its name while a process holds
        // it (the manager's install listener), and the host's address with it.
        self.remove_host_leg()?;
        let mut made = Namespaces::new();
        for name in self.namespaces() {
            made.adopt(&name);
        }
        made.delete_all()?;
        for dir in [&self.state_root, &self.public_dir()] {
            if dir.exists() {
                fs::remove_dir_all(dir).map_err(io_err(format!("removing {}", dir.display())))?;
            }
        }
        Ok(())
    }

    /// Files the site serves to anyone on its networks (the PXE boot files), in a directory
    /// dnsmasq can read after it drops to `nobody`: the state directory and the data directory
    /// above it may be private to root.
    pub fn public_dir(&self) -> PathBuf {
        Path::new(PUBLIC_ROOT).join(&self.prefix)
    }

    /// Destroys every VM and GW-node an agent keeps.
    fn clear_pnode(&self, pnode: &LocalPnode) -> Result<(), Error> {
        let mut agent = self.connect(pnode)?;
        let inventory = agent.inventory()?;
        for vm in &inventory.vms {
            agent.destroy_vm(&vm.name)?;
        }
        for id in inventory.gateway_ids() {
            agent.remove_gateway(id)?;
        }
        Ok(())
    }

    /// The outside address of the GW-node of cluster `network_id`: one per network id, above
    /// the manager's first /24.
    pub fn gateway_outside_ip(network_id: u32) -> Ipv4Addr {
        let span = (1u32 << (32 - u32::from(OUTSIDE_PREFIX))) - 256 - 1;
        Ipv4Addr::from(u32::from(OUTSIDE_NET) + 256 + network_id % span)
    }
}

/// The host leg's name for `prefix` (see [`LocalSite::host_leg`]).
pub fn host_leg_name(prefix: &str) -> String {
    let literal = format!("{prefix}-out");
    let plain = prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if plain && !prefix.is_empty() && literal.len() <= MAX_IFNAME {
        return literal;
    }
    let digest = Sha256::digest(prefix.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("out-{}", &hex[..MAX_IFNAME - 4])
}

/// The alias of device `dev` in the host's namespace (empty when it has none); `None` when
/// there is no such device.
fn host_link_alias(dev: &str) -> Result<Option<String>, Error> {
    let json = match Cmd::ip(None, &["-j", "link", "show", "dev", dev]).run() {
        Ok(json) => json,
        Err(Error::Command { stderr, .. }) if stderr.contains("does not exist") => return Ok(None),
        Err(e) => return Err(e),
    };
    let links: Vec<serde_json::Value> =
        serde_json::from_str(&json).map_err(|source| Error::Json {
            what: format!("ip -j link show dev {dev}"),
            source,
        })?;
    Ok(links.first().map(|l| {
        l.get("ifalias")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }))
}

/// Whether `pid` is a live process whose command line names `needle`.
pub fn process_mentions(pid: u32, needle: &str) -> bool {
    live_argv(&pid.to_string()).is_some_and(|argv| argv.iter().any(|a| a.contains(needle)))
}

/// A TCP listener bound inside network namespace `netns` (the socket stays in that namespace
/// whatever thread later accepts on it): the manager serves installing nodes on the outside
/// network this way without an address on the host.
pub fn bind_tcp_in(netns: &str, addr: SocketAddr) -> Result<TcpListener, Error> {
    let path = Path::new("/run/netns").join(netns);
    let what = format!("listening on {addr} in namespace {netns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = fs::File::open(&path)?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            TcpListener::bind(addr)
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the binding thread panicked")))
    })
    .map_err(io_err(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_names_and_addresses() {
        let site = LocalSite::layout(&LocalSiteConfig {
            prefix: "vcds".into(),
            pnodes: 2,
            state_root: PathBuf::from("/var/lib/vcds/site"),
            vcds_exe: PathBuf::from("vcds"),
        });
        assert_eq!(site.outside_netns, "vcds-out");
        assert_eq!(site.pnodes[1].name, "pnode2");
        assert_eq!(site.pnodes[1].netns, "vcds-p2");
        assert_eq!(site.pnodes[1].underlay_ip, Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(
            site.pnodes[0].endpoint.to_string(),
            "unix:/var/lib/vcds/site/pnode1/agent.sock"
        );
        assert_eq!(
            site.namespaces(),
            ["vcds-ul", "vcds-out", "vcds-p1", "vcds-p2"]
        );
    }

    #[test]
    fn host_leg_names_fit_and_differ_by_prefix() {
        assert_eq!(host_leg_name("vcds"), "vcds-out");
        assert_eq!(host_leg_name("vcdsh12345"), "vcdsh12345-out");
        assert_eq!(host_leg_name("abcdefghijk"), "abcdefghijk-out");
        let long = host_leg_name("abcdefghijkl");
        assert!(
            long.starts_with("out-") && long.len() == MAX_IFNAME,
            "{long}"
        );
        assert_ne!(long, host_leg_name("abcdefghijkm"));
        assert_eq!(long, host_leg_name("abcdefghijkl"));
        // Not a plain prefix: hashed as well.
        assert!(host_leg_name("a b").starts_with("out-"));
        assert!(host_leg_name("").starts_with("out-"));
        let mut seen = std::collections::BTreeSet::new();
        for prefix in [
            "vcds",
            "vcds2",
            "vcdsh1",
            "vcdsh1-out",
            "x",
            "vcdstest-long-prefix-1",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain((0..1000).map(|i| format!("vcds-test-site-{i}")))
        {
            let name = host_leg_name(&prefix);
            assert!(name.len() <= MAX_IFNAME, "{prefix}: {name}");
            assert!(seen.insert(name.clone()), "{prefix}: {name} again");
        }
        // The host's address is no GW-node's.
        for id in [0, 1, 65_279, 65_280, u32::MAX] {
            assert_ne!(LocalSite::gateway_outside_ip(id), HOST_IP);
            assert_ne!(LocalSite::gateway_outside_ip(id), MANAGER_IP);
        }
    }

    #[test]
    fn gateway_addresses_stay_on_the_outside_network_off_the_manager() {
        for id in [1, 100, 65_000, 65_279, 65_280, 16_777_215] {
            let ip = u32::from(LocalSite::gateway_outside_ip(id));
            assert!(ip >= u32::from(OUTSIDE_NET) + 256, "{id}");
            assert!(ip < u32::from(OUTSIDE_NET) + (1 << 16) - 1, "{id}");
        }
        assert_ne!(
            LocalSite::gateway_outside_ip(100),
            LocalSite::gateway_outside_ip(101)
        );
    }
}
