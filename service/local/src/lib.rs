//! The local site's executor: the manager's [`Executor`] over the P-node agents (`vcds-site`).
//! It builds what a System's allocation says — the cluster network on every P-node it touches
//! (VXLAN with VNI = network id), its GW-node (NAT, forwards, DHCP/TFTP with the plan's
//! addresses and the kickstart URL), and one QEMU VM per node that boots the installer, fetches
//! its kickstart and reports its progress to the install endpoints — and removes what the
//! manager finds no System holds.
//!
//! Each node's VM gets the vCPUs and memory it booked (the site may cap them) and a disk of its
//! booked size: an overlay of its appliance's base image ([`images`]), onto which the installer
//! puts the node; a VM whose QEMU ended boots from its disk again, without reinstalling.
//!
//! Agent calls block, so they run on the blocking pool. Builds of different clusters run side
//! by side; a reconcile pass runs alone (`passes` lock), so it never sees a network a
//! deployment is half-way through building. Connections to each agent are kept and reused.

pub mod images;
mod seed;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use vcds_cdl::cluster::{ClusterSpec, Installer, Scheduler};

use chrono::Utc;
use vcds_install::{BootFiles, InstallState, Kickstarts, IPXE_SCRIPT};
use vcds_manager::executor::{
    orphans, restarts, BoxFuture, ExecError, Executor, Job, Reconciled, Reporter, SiteObject,
};
use vcds_model::{Event, Lifecycle, Phase};
use vcds_placement::{Allocation, MacAddr};
use vcds_site::agent::{AgentClient, Inventory};
use vcds_site::gateway::{GatewayNode, GatewaySpec, OutsideLeg, PortForward, Protocol, PxeBoot};
use vcds_site::local::{LocalPnode, LocalSite, MANAGER_IP, OUTSIDE_BRIDGE, OUTSIDE_PREFIX};
use vcds_site::net::{bridge_name, bridge_network_id, tap_name};
use vcds_site::vm::{Accel, Boot, VmDisk, VmSpec};

use crate::images::{ImageConfig, ImageError, Images};
use crate::seed::SeedError;

/// How virtual nodes boot the installer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    /// QEMU loads the installer kernel and initramfs itself (`-kernel`/`-initrd`).
    Direct,
    /// iPXE → DHCP and TFTP from the GW-node's dnsmasq → the same kernel and initramfs.
    Pxe,
}

/// The installer image (`scripts/build-node-image.sh`).
#[derive(Debug, Clone)]
pub struct NodeImage {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// What a virtual node is.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// A Debian system installed onto a disk of its booked size (an overlay of its
    /// appliance's base image); boots from that disk once installed.
    Installed(ImageConfig),
    /// Diskless: the installer's busybox image in memory (`memory_mib` each) runs the
    /// kickstart's scripts into a tmpfs. Nothing to log in to: for tests of networks.
    Diskless { memory_mib: u32 },
}

/// What the local executor is told.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub site: LocalSite,
    pub boot: BootMode,
    pub image: NodeImage,
    pub accel: Accel,
    /// What a node is: an installed Debian system on its own disk, or only the installer's
    /// image in memory (a node for tests of the site's networks, not a usable one).
    pub nodes: NodeKind,
    /// The most vCPUs and memory a VM gets, whatever its node booked (`None`: as booked);
    /// placement books what the descriptor asks for either way.
    pub vm_max_cpus: Option<u32>,
    pub vm_max_memory_mib: Option<u32>,
    /// From a node's VM start to its `finished` report.
    pub install_timeout: Duration,
    /// Port of the manager's install listener on the outside network.
    pub install_port: u16,
}

impl LocalConfig {
    /// The install listener as installing nodes reach it.
    pub fn install_url(&self) -> String {
        format!("http://{MANAGER_IP}:{}", self.install_port)
    }

    /// Where installing nodes fetch their kickstarts.
    pub fn kickstart_url(&self) -> String {
        format!("{}/install/sbin/kickstart.cgi", self.install_url())
    }

    /// Where installing nodes report their progress.
    pub fn progress_url(&self) -> String {
        format!("{}/install/progress", self.install_url())
    }

    /// The PXE boot files, in the site's public directory (dnsmasq reads them as `nobody`).
    pub fn boot_files(&self) -> BootFiles {
        BootFiles {
            dir: self.site.public_dir().join("tftp"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("P-node {0} is not part of the local site")]
    UnknownPnode(String),
    #[error("P-node {pnode}: {source}")]
    Agent {
        pnode: String,
        source: vcds_site::Error,
    },
    #[error("the cluster has more than 255 nodes on one network")]
    TooManyNodes,
    #[error("node {0} has no MAC in its allocation")]
    NoMac(String),
    #[error("node {0} did not finish installing within {1:?}")]
    InstallTimeout(String, Duration),
    #[error("the VM of node {0} is gone")]
    VmGone(String),
    #[error("node {node}: {source}")]
    Image { node: String, source: ImageError },
    #[error("appliance {0} has no package set")]
    NoPackages(String),
    #[error("node {0} is not registered for installing")]
    NotRegistered(String),
    #[error("node {node}'s cloud-init seed: {source}")]
    Seed { node: String, source: SeedError },
    #[error(transparent)]
    Blocking(#[from] vcds_store::blocking::BlockingError),
}

/// One node of the allocation as the site builds it.
#[derive(Debug, Clone)]
struct NodePlan {
    node: String,
    vm: String,
    pnode: String,
    tap: String,
    mac: MacAddr,
    ip: Ipv4Addr,
    role: vcds_placement::Role,
    /// What the node booked.
    resources: vcds_placement::Resources,
}

fn plan_nodes(id: &str, allocation: &Allocation) -> Result<Vec<NodePlan>, LocalError> {
    allocation
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let index = u8::try_from(i).map_err(|_| LocalError::TooManyNodes)?;
            Ok(NodePlan {
                node: n.name.clone(),
                vm: vcds_model::host_name(&n.name, id),
                pnode: n.pnode.clone(),
                tap: tap_name(allocation.network_id.id, index),
                mac: n
                    .macs
                    .first()
                    .copied()
                    .ok_or_else(|| LocalError::NoMac(n.name.clone()))?,
                ip: n.ip,
                role: n.role,
                resources: n.resources,
            })
        })
        .collect()
}

fn agent_err(pnode: &str) -> impl FnOnce(vcds_site::rpc::RpcError) -> LocalError + '_ {
    move |e| LocalError::Agent {
        pnode: pnode.to_owned(),
        source: e.into(),
    }
}

pub struct LocalExecutor {
    config: LocalConfig,
    install: Arc<Kickstarts>,
    /// Builds hold it shared, a reconcile pass exclusively.
    passes: RwLock<()>,
    images: Option<Images>,
    /// Idle connections to each P-node's agent.
    connections: Mutex<HashMap<String, Vec<AgentClient>>>,
}

impl LocalExecutor {
    pub fn new(config: LocalConfig, install: Arc<Kickstarts>) -> LocalExecutor {
        LocalExecutor {
            images: match &config.nodes {
                NodeKind::Installed(images) => Some(Images::new(images.clone())),
                NodeKind::Diskless { .. } => None,
            },
            config,
            install,
            passes: RwLock::new(()),
            connections: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &LocalConfig {
        &self.config
    }

    /// The PXE boot files: the installer image and the iPXE script that boots it.
    pub fn prepare_boot_files(&self) -> std::io::Result<()> {
        self.config.boot_files().prepare(
            &self.config.image.kernel,
            &self.config.image.initrd,
            &self.config.install_url(),
        )
    }

    fn pnode(&self, name: &str) -> Result<&LocalPnode, LocalError> {
        self.config
            .site
            .pnodes
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| LocalError::UnknownPnode(name.to_owned()))
    }

    /// Runs `f` on a connection to `pnode`'s agent: an idle one, or a new one — starting the
    /// agent again when it does not answer (a crash or kill -9: the new agent re-adopts its
    /// VMs and GW-nodes, and the work carries on). A connection that failed is dropped.
    ///
    /// Every agent operation is idempotent, so one that failed on an idle connection (the
    /// agent was restarted since) is tried once more on a new one.
    fn with_agent<T>(
        &self,
        pnode: &str,
        mut f: impl FnMut(&mut AgentClient) -> Result<T, vcds_site::rpc::RpcError>,
    ) -> Result<T, LocalError> {
        let p = self.pnode(pnode)?;
        let idle = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(pnode)
            .and_then(Vec::pop);
        let (agent, result) = match idle {
            Some(mut agent) => match f(&mut agent) {
                Err(e) if !matches!(e, vcds_site::rpc::RpcError::Agent(_)) => {
                    tracing::debug!(pnode, error = %e, "an idle agent connection failed: reconnecting");
                    let mut fresh = self.connect(p)?;
                    let result = f(&mut fresh);
                    (fresh, result)
                }
                result => (agent, result),
            },
            None => {
                let mut fresh = self.connect(p)?;
                let result = f(&mut fresh);
                (fresh, result)
            }
        };
        // An operation that failed leaves the connection fine; a transport error does not.
        if matches!(&result, Ok(_) | Err(vcds_site::rpc::RpcError::Agent(_))) {
            self.connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(pnode.to_owned())
                .or_default()
                .push(agent);
        }
        result.map_err(agent_err(pnode))
    }

    fn connect(&self, pnode: &LocalPnode) -> Result<AgentClient, LocalError> {
        let site = &self.config.site;
        let in_pnode = |source| LocalError::Agent {
            pnode: pnode.name.clone(),
            source,
        };
        site.connect(pnode).or_else(|e| {
            tracing::warn!(pnode = %pnode.name, error = %e, "the P-node agent does not answer: starting it again");
            site.ensure_agent(pnode).map_err(in_pnode)?;
            site.connect(pnode).map_err(in_pnode)
        })
    }

    /// Runs blocking agent work on the blocking pool.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&LocalExecutor) -> Result<T, LocalError> + Send + 'static,
    ) -> Result<T, LocalError> {
        let this = self.clone();
        vcds_store::blocking::run(move || work(&this)).await?
    }

    /// P-nodes holding the cluster (its nodes' and its GW-node's), each with its taps.
    fn cluster_pnodes(
        &self,
        allocation: &Allocation,
        nodes: &[NodePlan],
    ) -> Result<BTreeMap<String, Vec<String>>, LocalError> {
        let mut pnodes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        pnodes.entry(allocation.gateway.pnode.clone()).or_default();
        for n in nodes {
            pnodes
                .entry(n.pnode.clone())
                .or_default()
                .push(n.tap.clone());
        }
        for name in pnodes.keys() {
            self.pnode(name)?;
        }
        Ok(pnodes)
    }

    fn gateway_spec(&self, job: &Job, allocation: &Allocation, nodes: &[NodePlan]) -> GatewaySpec {
        let id = allocation.network_id.id;
        let frontend = nodes.first().map(|n| n.ip);
        let forwards = job
            .spec
            .as_ref()
            .map(|spec| {
                spec.gateway
                    .forwards
                    .iter()
                    .filter_map(|f| {
                        Some(PortForward {
                            protocol: match f.protocol {
                                vcds_cdl::cluster::Protocol::Tcp => Protocol::Tcp,
                                vcds_cdl::cluster::Protocol::Udp => Protocol::Udp,
                            },
                            external_port: f.external,
                            to: frontend?,
                            to_port: f.port,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut forwards: Vec<PortForward> = forwards;
        let ssh = ssh_port(job);
        if let (Some(to), false) = (frontend, forwards.iter().any(|f| f.external_port == ssh)) {
            // The user always logs in: sshd is reachable even when the descriptor names no port.
            forwards.push(PortForward {
                protocol: Protocol::Tcp,
                external_port: ssh,
                to,
                to_port: SSH,
            });
        }
        GatewaySpec {
            network_id: id,
            netns: None,
            cluster_bridge: bridge_name(id),
            subnet: allocation.subnet.addr,
            prefix: allocation.subnet.prefix_len,
            outside: OutsideLeg {
                bridge: OUTSIDE_BRIDGE.to_owned(),
                address: LocalSite::gateway_outside_ip(id),
                prefix: OUTSIDE_PREFIX,
                gateway: Some(MANAGER_IP),
            },
            nodes: nodes
                .iter()
                .map(|n| GatewayNode {
                    hostname: n.node.clone(),
                    mac: n.mac,
                    ip: n.ip,
                })
                .collect(),
            dns_servers: Vec::new(),
            pxe: (self.config.boot == BootMode::Pxe).then(|| PxeBoot {
                tftp_root: self.config.boot_files().dir,
                bios_file: None,
                ipxe_file: Some(IPXE_SCRIPT.to_owned()),
            }),
            kickstart_url: Some(self.config.kickstart_url()),
            forwards,
        }
    }

    /// The vCPUs and memory a VM of a node that booked `booked` gets.
    fn vm_size(&self, booked: vcds_placement::Resources) -> (u32, u32) {
        let cap = |v: u32, max: Option<u32>| max.map_or(v, |m| v.min(m)).max(1);
        let memory = u32::try_from(booked.memory_mib).unwrap_or(u32::MAX);
        match self.config.nodes {
            NodeKind::Installed(_) => (
                cap(booked.cpu, self.config.vm_max_cpus),
                cap(memory, self.config.vm_max_memory_mib),
            ),
            NodeKind::Diskless { memory_mib } => (1, memory_mib),
        }
    }

    /// The base image of each appliance of `job` (built where none is cached), for the
    /// nodes' disks; none for diskless nodes.
    fn images_of(&self, job: &Job) -> Result<BTreeMap<String, vcds_image::BaseImage>, LocalError> {
        let (Some(images), Some(spec)) = (&self.images, &job.spec) else {
            return Ok(BTreeMap::new());
        };
        let mut out = BTreeMap::new();
        let appliances = std::iter::once(&spec.frontend.appliance)
            .chain((spec.compute.count > 0).then_some(&spec.compute.appliance));
        for appliance in appliances {
            let packages = job
                .packages
                .get(appliance)
                .ok_or_else(|| LocalError::NoPackages(appliance.clone()))?;
            let image = images
                .image_of(packages)
                .map_err(|source| LocalError::Image {
                    node: appliance.clone(),
                    source,
                })?;
            out.insert(appliance.clone(), image);
        }
        Ok(out)
    }

    /// The VM of node `n`: booting the installer (the Rocks way), or a cloud image with its
    /// `seed`.
    fn vm_spec(&self, n: &NodePlan, disk: Option<VmDisk>, seed: Option<PathBuf>) -> VmSpec {
        let boot = match (&seed, self.config.boot) {
            (Some(_), _) => Boot::Image,
            (None, BootMode::Direct) => Boot::Direct {
                kernel: self.config.image.kernel.clone(),
                initrd: self.config.image.initrd.clone(),
                append: format!(
                    "console=ttyS0 quiet panic=1 vcds.hostname={} vcds.ip=dhcp vcds.ks={}",
                    n.node,
                    self.config.kickstart_url()
                ),
            },
            (None, BootMode::Pxe) => Boot::Pxe,
        };
        let (cpus, memory_mib) = self.vm_size(n.resources);
        VmSpec {
            name: n.vm.clone(),
            netns: None,
            accel: self.config.accel,
            memory_mib,
            cpus,
            boot,
            disk,
            seed,
            tap: n.tap.clone(),
            mac: n.mac,
            // The agent puts them in its state directory.
            qmp_socket: PathBuf::new(),
            console_log: PathBuf::new(),
        }
    }

    /// Builds (or repairs) everything of `job`: networks, GW-node, VMs (each on a disk made
    /// from its appliance's image in `images`); a VM whose QEMU ended boots from its disk
    /// again. Idempotent.
    fn build(
        &self,
        job: &Job,
        images: &BTreeMap<String, vcds_image::BaseImage>,
    ) -> Result<(), LocalError> {
        let Some(allocation) = &job.allocation else {
            return Ok(());
        };
        let _shared = self.passes.read().unwrap_or_else(PoisonError::into_inner);
        let nodes = plan_nodes(&job.system, allocation)?;
        let pnodes = self.cluster_pnodes(allocation, &nodes)?;
        let id = allocation.network_id.id;
        let underlay: BTreeMap<&str, Ipv4Addr> = pnodes
            .keys()
            .map(|name| Ok((name.as_str(), self.pnode(name)?.underlay_ip)))
            .collect::<Result<_, LocalError>>()?;
        for (name, taps) in &pnodes {
            let pnode = self.pnode(name)?;
            let peers = underlay
                .iter()
                .filter(|(other, _)| *other != name)
                .map(|(_, ip)| *ip)
                .collect();
            let net = pnode.cluster_net(id, peers, taps.clone());
            self.with_agent(name, |agent| {
                // A VM of an earlier cluster with this network id still on the bridge would
                // share its taps: it goes first.
                for vm in agent.inventory()?.vms {
                    if vm.cluster == id
                        && vcds_model::system_of_host(&vm.name) != Some(job.system.as_str())
                    {
                        agent.destroy_vm(&vm.name)?;
                    }
                }
                agent.ensure_network(&net)
            })?;
        }
        let gateway = self.gateway_spec(job, allocation, &nodes);
        self.with_agent(&allocation.gateway.pnode, |agent| {
            agent.ensure_gateway(&gateway)
        })?;
        for n in &nodes {
            let appliance = job.spec.as_ref().map(|s| match n.role {
                vcds_placement::Role::Frontend => &s.frontend.appliance,
                vcds_placement::Role::Compute => &s.compute.appliance,
            });
            let disk = appliance.and_then(|a| images.get(a)).map(|image| {
                // The agent puts the overlay in its state directory.
                VmDisk::of_image(image, n.resources.disk_gib << 30, PathBuf::new())
            });
            let seed = match job.spec.as_ref().map(|s| s.installer) {
                Some(Installer::Image) => Some(self.write_seed(n)?),
                Some(Installer::Rocks) | None => None,
            };
            let spec = self.vm_spec(n, disk, seed);
            self.with_agent(&n.pnode, |agent| {
                let stopped = agent.inventory()?.stopped.iter().any(|v| v.name == n.vm);
                if stopped {
                    agent.restart_vm(&n.vm)
                } else {
                    agent.start_vm(id, &spec)
                }
            })?;
        }
        Ok(())
    }

    /// Where node `vm`'s cloud-init seed is kept while the VM exists (root's only: it holds
    /// the node's host key).
    fn seed_path(&self, vm: &str) -> PathBuf {
        self.config
            .site
            .state_root
            .join("seeds")
            .join(format!("{vm}.iso"))
    }

    /// Writes node `n`'s seed from its host registration, once (a VM restarted from its disk
    /// keeps it attached).
    fn write_seed(&self, n: &NodePlan) -> Result<PathBuf, LocalError> {
        let path = self.seed_path(&n.vm);
        if path.is_file() {
            return Ok(path);
        }
        let host = self
            .install
            .host(&n.vm)
            .ok_or_else(|| LocalError::NotRegistered(n.vm.clone()))?;
        let seed_err = |source| LocalError::Seed {
            node: n.node.clone(),
            source,
        };
        let seed = seed::seed_of(
            &n.node,
            &host,
            &self.config.kickstart_url(),
            &self.config.progress_url(),
        )
        .map_err(seed_err)?;
        seed::write(&seed, &path).map_err(seed_err)?;
        Ok(path)
    }

    /// What every P-node holds, as the manager reasons about it; and their gmond ports.
    fn site_objects(&self) -> Result<(Vec<SiteObject>, BTreeMap<String, String>), LocalError> {
        let mut held = Vec::new();
        let mut gmond = BTreeMap::new();
        for pnode in &self.config.site.pnodes {
            let inventory: Inventory = self.with_agent(&pnode.name, AgentClient::inventory)?;
            if let Some(addr) = inventory.gmond {
                gmond.insert(pnode.name.clone(), addr.to_string());
            }
            held.extend(inventory.vms.iter().map(|vm| SiteObject::Vm {
                pnode: pnode.name.clone(),
                name: vm.name.clone(),
                network_id: vm.cluster,
                stopped: false,
            }));
            held.extend(inventory.stopped.iter().map(|vm| SiteObject::Vm {
                pnode: pnode.name.clone(),
                name: vm.name.clone(),
                network_id: vm.cluster,
                stopped: true,
            }));
            held.extend(
                inventory
                    .gateway_ids()
                    .map(|network_id| SiteObject::Gateway {
                        pnode: pnode.name.clone(),
                        network_id,
                    }),
            );
            let mut nets: BTreeMap<u32, Vec<String>> = BTreeMap::new();
            for dev in &inventory.devices {
                if let Some(id) = bridge_network_id(&dev.name) {
                    nets.entry(id).or_default();
                }
            }
            for dev in &inventory.devices {
                let Some(master) = &dev.master else { continue };
                if let Some(taps) = bridge_network_id(master).and_then(|id| nets.get_mut(&id)) {
                    if dev.kind == "tun" {
                        taps.push(dev.name.clone());
                    }
                }
            }
            held.extend(
                nets.into_iter()
                    .map(|(network_id, taps)| SiteObject::Network {
                        pnode: pnode.name.clone(),
                        network_id,
                        taps,
                    }),
            );
        }
        Ok((held, gmond))
    }

    fn remove(&self, object: &SiteObject) -> Result<(), LocalError> {
        match object {
            SiteObject::Vm { pnode, name, .. } => {
                tracing::info!(%pnode, vm = %name, "removing a VM no System holds");
                self.with_agent(pnode, |agent| agent.destroy_vm(name))?;
                let seed = self.seed_path(name);
                if let Err(e) = std::fs::remove_file(&seed) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(seed = %seed.display(), "cannot remove a node's seed: {e}");
                    }
                }
            }
            SiteObject::Gateway { pnode, network_id } => {
                tracing::info!(%pnode, network_id, "removing a GW-node no System holds");
                self.with_agent(pnode, |agent| agent.remove_gateway(*network_id))?;
            }
            SiteObject::Network {
                pnode,
                network_id,
                taps,
            } => {
                tracing::info!(%pnode, network_id, "removing a cluster network no System holds");
                let net = self
                    .pnode(pnode)?
                    .cluster_net(*network_id, Vec::new(), taps.clone());
                self.with_agent(pnode, |agent| agent.remove_network(&net))?;
            }
        }
        Ok(())
    }

    /// Provisioning → installing, then watching the nodes' VMs until they all installed (the
    /// manager learns that from their reports), a VM vanished or the install timed out.
    async fn deploy(self: Arc<Self>, job: Job, reporter: Reporter) {
        let started = Instant::now();
        let id = job.system.clone();
        let to_build = job.clone();
        // Images first, outside the build: the first one of a package set takes minutes.
        let built = self
            .blocking(move |this| {
                let images = this.images_of(&to_build)?;
                this.build(&to_build, &images)
            })
            .await;
        if let Err(e) = built {
            let why = format!("provisioning failed: {e}");
            reporter.report(
                &id,
                Event::Fail {
                    now: Utc::now(),
                    why,
                },
            );
            return;
        }
        tracing::info!(id, elapsed = ?started.elapsed(), "VMs started; installing");
        if job.phase == Some(Phase::Provisioning) {
            reporter.report(&id, Event::Provisioned);
        }
        if let Err(e) = self.watch_install(&job, &reporter).await {
            reporter.report(
                &id,
                Event::Fail {
                    now: Utc::now(),
                    why: e.to_string(),
                },
            );
        }
    }

    /// While `job` is provisioning or installing: its VMs must run, and its nodes must finish
    /// within the install timeout.
    async fn watch_install(
        self: &Arc<Self>,
        job: &Job,
        reporter: &Reporter,
    ) -> Result<(), LocalError> {
        let deadline = Instant::now() + self.config.install_timeout;
        loop {
            tokio::time::sleep(VM_CHECK_PERIOD).await;
            let installing = matches!(
                reporter.state_of(&job.system),
                Some((
                    Lifecycle::Running,
                    Some(Phase::Provisioning | Phase::Installing)
                ))
            );
            if !installing {
                return Ok(());
            }
            if Instant::now() > deadline {
                let waiting = self
                    .install
                    .node_table(&job.system)
                    .into_iter()
                    .find(|row| {
                        row.install.as_ref().map(|i| i.state) != Some(InstallState::Finished)
                    })
                    .map_or_else(|| "?".to_owned(), |row| row.host);
                return Err(LocalError::InstallTimeout(
                    waiting,
                    self.config.install_timeout,
                ));
            }
            let checked = job.clone();
            self.blocking(move |this| this.check_vms(&checked)).await?;
        }
    }

    /// Every VM of `job` still runs.
    fn check_vms(&self, job: &Job) -> Result<(), LocalError> {
        let Some(allocation) = &job.allocation else {
            return Ok(());
        };
        let nodes = plan_nodes(&job.system, allocation)?;
        let mut running = BTreeSet::new();
        for name in self.cluster_pnodes(allocation, &nodes)?.keys() {
            let inventory = self.with_agent(name, AgentClient::inventory)?;
            running.extend(inventory.vms.into_iter().map(|vm| vm.name));
        }
        match nodes.iter().find(|n| !running.contains(&n.vm)) {
            Some(n) => Err(LocalError::VmGone(n.node.clone())),
            None => Ok(()),
        }
    }

    async fn pass(self: Arc<Self>, reporter: Reporter) -> Result<Reconciled, LocalError> {
        self.blocking(move |this| {
            let _alone = this.passes.write().unwrap_or_else(PoisonError::into_inner);
            // The live set is read inside the pass, so no deployment is half-built then.
            let live = reporter.live();
            let (held, gmond) = this.site_objects()?;
            let gone = orphans(&live, &held);
            for object in &gone {
                this.remove(object)?;
            }
            // A live System's VM whose QEMU ended boots from its disk again.
            for object in restarts(&live, &held) {
                if let SiteObject::Vm { pnode, name, .. } = &object {
                    tracing::info!(%pnode, vm = %name, "restarting a stopped VM from its disk");
                    this.with_agent(pnode, |agent| agent.restart_vm(name))?;
                }
            }
            Ok(Reconciled {
                removed: gone.len(),
                gmond,
            })
        })
        .await
    }
}

impl Executor for LocalExecutor {
    fn access(&self, job: &Job) -> Option<vcds_manager::executor::Access> {
        let allocation = job.allocation.as_ref()?;
        Some(vcds_manager::executor::Access {
            host: LocalSite::gateway_outside_ip(allocation.network_id.id).into(),
            port: ssh_port(job),
        })
    }

    fn refuses(&self, spec: &ClusterSpec) -> Option<String> {
        if !matches!(self.config.nodes, NodeKind::Diskless { .. }) {
            return None;
        }
        if spec.installer == Installer::Image {
            return Some(
                "vc:installer image: a cloud image boots from a disk, and this site runs \
                 diskless nodes (vcds serve --nodes diskless); use vc:installer rocks here"
                    .to_owned(),
            );
        }
        (spec.scheduler != Scheduler::None).then(|| {
            format!(
                "vc:scheduler {}: this site runs diskless nodes (vcds serve --nodes diskless), \
                 which install no packages; ask for vc:scheduler none here",
                spec.scheduler.as_str()
            )
        })
    }

    fn vm_size(&self, booked: vcds_placement::Resources) -> Option<(u32, u32)> {
        Some(LocalExecutor::vm_size(self, booked))
    }

    fn installs_from(&self, allocation: &Allocation) -> Option<std::net::IpAddr> {
        // The GW-node masquerades its cluster's traffic to the outside network.
        Some(LocalSite::gateway_outside_ip(allocation.network_id.id).into())
    }

    fn carry_on(self: Arc<Self>, job: Job, reporter: Reporter) {
        match (job.lifecycle, job.phase) {
            (Lifecycle::Running, Some(Phase::Provisioning | Phase::Installing)) => {
                tokio::spawn(self.deploy(job, reporter));
            }
            (Lifecycle::Terminated, Some(Phase::TearingDown)) => {
                tokio::spawn(async move {
                    if let Err(e) = self.pass(reporter.clone()).await {
                        tracing::warn!(id = %job.system, error = %e, "tearing down; the reconciler retries");
                    }
                    reporter.report(&job.system, Event::TornDown);
                });
            }
            _ => {}
        }
    }

    fn pause(self: Arc<Self>, job: Job, pause: bool) -> BoxFuture<'static, Result<(), ExecError>> {
        Box::pin(async move {
            let paused = self.blocking(move |this| {
                let Some(allocation) = &job.allocation else {
                    return Ok(());
                };
                for n in plan_nodes(&job.system, allocation)? {
                    this.with_agent(&n.pnode, |agent| {
                        if pause {
                            agent.suspend_vm(&n.vm)
                        } else {
                            agent.resume_vm(&n.vm)
                        }
                    })?;
                }
                Ok(())
            });
            paused.await.map_err(ExecError::new)
        })
    }

    fn reconcile(
        self: Arc<Self>,
        reporter: Reporter,
    ) -> BoxFuture<'static, Result<Reconciled, ExecError>> {
        Box::pin(async move { self.pass(reporter).await.map_err(ExecError::new) })
    }
}

const VM_CHECK_PERIOD: Duration = Duration::from_secs(3);

/// The frontend's sshd.
const SSH: u16 = 22;

/// The GW-node's outside port that reaches the frontend's sshd: the descriptor's forward of
/// TCP port 22, else 22 itself (the GW-node forwards it regardless: see `gateway_spec`).
fn ssh_port(job: &Job) -> u16 {
    job.spec
        .as_ref()
        .and_then(|s| {
            s.gateway
                .forwards
                .iter()
                .find(|f| f.port == SSH && f.protocol == vcds_cdl::cluster::Protocol::Tcp)
                .map(|f| f.external)
        })
        .unwrap_or(SSH)
}
