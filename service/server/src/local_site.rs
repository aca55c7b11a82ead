//! The local site's executor: the manager driving P-node agents (`vcds-site`) to build what a
//! System's allocation says — the cluster network on every P-node it touches (VXLAN with
//! VNI = network id), its GW-node (NAT, forwards, DHCP/TFTP with the plan's addresses and the
//! kickstart URL), and one QEMU VM per node that boots the installer, fetches its kickstart
//! from this service and reports its progress — and taking it all down again.
//!
//! Desired state is the registry (Systems whose deployment is under way, ready or suspended);
//! actual state is what the agents report. [`LocalExecutor::reconcile`] removes whatever runs
//! without a live System behind it (after Destroy, a failure, or a manager killed half-way),
//! and [`LocalExecutor::carry_on`] redoes a deployment's idempotent steps after a restart.
//! Agent calls block, so they run on the blocking pool, one pass at a time (`agents` lock):
//! a deployment never interleaves with a reconcile pass that could remove its network.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use vcds_placement::Allocation;
use vcds_site::agent::{AgentClient, Inventory};
use vcds_site::gateway::{GatewayNode, GatewaySpec, OutsideLeg, PortForward, Protocol, PxeBoot};
use vcds_site::local::{LocalPnode, LocalSite, MANAGER_IP, OUTSIDE_BRIDGE, OUTSIDE_PREFIX};
use vcds_site::net::{bridge_name, bridge_network_id, tap_name};
use vcds_site::vm::{Accel, Boot, VmSpec};

use crate::kickstart::InstallState;
use crate::kinds::Endpoints;
use crate::registry::{Deployment, Lifecycle, Phase, Resource, State};
use crate::AppState;

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

/// What the local executor is told.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub site: LocalSite,
    pub boot: BootMode,
    pub image: NodeImage,
    pub accel: Accel,
    /// Memory of every VM (the installer image needs about 160 MiB); the plan's node size is
    /// what placement books.
    pub vm_memory_mib: u32,
    /// From a node's VM start to its `finished` report.
    pub install_timeout: Duration,
    /// Port of the manager's install listener on the outside network.
    pub install_port: u16,
}

impl LocalConfig {
    /// Where installing nodes fetch their kickstarts.
    pub fn kickstart_url(&self) -> String {
        format!(
            "http://{MANAGER_IP}:{}/install/sbin/kickstart.cgi",
            self.install_port
        )
    }

    /// Where iPXE fetches the installer's boot file `file` (see [`boot_file`]).
    fn boot_url(&self, file: &str) -> String {
        format!(
            "http://{MANAGER_IP}:{}/install/boot/{file}",
            self.install_port
        )
    }

    /// The directory of the PXE boot files (TFTP root and [`boot_file`]'s source).
    pub fn tftp_root(&self) -> PathBuf {
        self.site.public_dir().join("tftp")
    }
}

/// The installer image's files, as iPXE fetches them.
const BOOT_FILES: [&str; 2] = ["vmlinuz", "initrd.img"];

/// `GET /install/boot/{vmlinuz|initrd.img}` on the install listener: iPXE fetches the installer
/// over HTTP, seconds faster than TFTP's 512-byte lock-step under TCG (TFTP keeps them too, for
/// firmware without HTTP).
pub async fn boot_file(
    config: actix_web::web::Data<LocalConfig>,
    file: actix_web::web::Path<String>,
    req: actix_web::HttpRequest,
) -> actix_web::HttpResponse {
    use actix_web::HttpResponse;
    let file = file.into_inner();
    if !BOOT_FILES.contains(&file.as_str()) {
        return HttpResponse::NotFound().body("no such boot file\n");
    }
    let path = config.tftp_root().join(&file);
    match actix_web::web::block(move || std::fs::read(path)).await {
        Ok(Ok(bytes)) => {
            let peer = req
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            tracing::info!(%file, %peer, bytes = bytes.len(), "boot file served over HTTP");
            HttpResponse::Ok()
                .content_type("application/octet-stream")
                .body(bytes)
        }
        Ok(Err(e)) => {
            tracing::error!(%file, error = %e, "boot file unreadable");
            HttpResponse::InternalServerError().body("boot file unreadable\n")
        }
        Err(_) => HttpResponse::ServiceUnavailable().body("busy\n"),
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
    #[error("node {node} failed to install: {reason}")]
    InstallFailed { node: String, reason: String },
    #[error("node {0} did not finish installing within {1:?}")]
    InstallTimeout(String, Duration),
    #[error("the VM of node {0} is gone")]
    VmGone(String),
    #[error("{0}")]
    Blocking(String),
}

/// One node of the allocation as the site builds it.
#[derive(Debug, Clone)]
struct NodePlan {
    node: String,
    vm: String,
    pnode: String,
    tap: String,
    mac: String,
    ip: Ipv4Addr,
}

/// The VM of node `node` of System `system_id`: the kickstart host name, unique across
/// clusters (all have a `frontend`), so a VM always says whose it is.
pub fn vm_name(node: &str, system_id: &str) -> String {
    crate::reservation::host_name(node, system_id)
}

/// The System a VM belongs to.
fn vm_system(vm: &str) -> Option<&str> {
    vm.split_once('.').map(|(_, system)| system)
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
                vm: vm_name(&n.name, id),
                pnode: n.pnode.clone(),
                tap: tap_name(allocation.network_id.id, index),
                mac: n.macs.first().map(ToString::to_string).unwrap_or_default(),
                ip: n.ip,
            })
        })
        .collect()
}

#[derive(Debug)]
pub struct LocalExecutor {
    config: LocalConfig,
    /// One pass of agent work at a time.
    agents: Mutex<()>,
    /// Wakes the reconciler (after a release).
    kick: tokio::sync::Notify,
    /// The gmond endpoint of each P-node's agent, as last polled.
    gmond: Mutex<BTreeMap<String, String>>,
}

/// What one reconcile pass did and found.
struct Reconciled {
    removed: usize,
    /// Each P-node's agent's gmond port (`host:port`).
    gmond: BTreeMap<String, String>,
}

fn agent_err(pnode: &str) -> impl FnOnce(vcds_site::rpc::RpcError) -> LocalError + '_ {
    move |e| LocalError::Agent {
        pnode: pnode.to_owned(),
        source: e.into(),
    }
}

/// A System's allocation and the phase it is in, when it has one.
fn deployment(r: &Resource) -> Option<&Deployment> {
    match &r.state {
        State::System { deployment, .. } => Some(deployment),
        _ => None,
    }
}

/// Whether the site should hold what System `d` was allocated.
fn holds(d: &Deployment) -> bool {
    d.allocation.is_some()
        && matches!(d.lifecycle, Lifecycle::Running | Lifecycle::Suspended)
        && matches!(
            d.phase,
            Some(Phase::Provisioning | Phase::Installing | Phase::Ready | Phase::Suspended)
        )
}

impl LocalExecutor {
    pub fn new(config: LocalConfig) -> LocalExecutor {
        LocalExecutor {
            config,
            agents: Mutex::new(()),
            kick: tokio::sync::Notify::new(),
            gmond: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn config(&self) -> &LocalConfig {
        &self.config
    }

    fn pnode(&self, name: &str) -> Result<&LocalPnode, LocalError> {
        self.config
            .site
            .pnodes
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| LocalError::UnknownPnode(name.to_owned()))
    }

    /// Connects to `pnode`'s agent, starting it again when it does not answer (a crash or
    /// kill -9): the new agent re-adopts its VMs and GW-nodes, and the work carries on.
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

    /// Runs blocking agent work on the blocking pool under the agents lock.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&LocalExecutor) -> Result<T, LocalError> + Send + 'static,
    ) -> Result<T, LocalError> {
        let this = self.clone();
        actix_web::web::block(move || {
            let _one = this.agents.lock().unwrap_or_else(PoisonError::into_inner);
            work(&this)
        })
        .await
        .map_err(|e| LocalError::Blocking(e.to_string()))?
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

    fn gateway_spec(
        &self,
        r: &Resource,
        allocation: &Allocation,
        nodes: &[NodePlan],
    ) -> GatewaySpec {
        let id = allocation.network_id.id;
        let frontend = nodes.first().map(|n| n.ip);
        let forwards = deployment(r)
            .and_then(|d| d.spec.as_ref())
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
                    mac: n.mac.clone(),
                    ip: n.ip,
                })
                .collect(),
            dns_servers: Vec::new(),
            pxe: (self.config.boot == BootMode::Pxe).then(|| PxeBoot {
                tftp_root: self.config.tftp_root(),
                bios_file: None,
                ipxe_file: Some(IPXE_SCRIPT.to_owned()),
            }),
            kickstart_url: Some(self.config.kickstart_url()),
            forwards,
        }
    }

    fn vm_spec(&self, n: &NodePlan) -> VmSpec {
        let boot = match self.config.boot {
            BootMode::Direct => Boot::Direct {
                kernel: self.config.image.kernel.clone(),
                initrd: self.config.image.initrd.clone(),
                append: format!(
                    "console=ttyS0 quiet panic=1 vcds.hostname={} vcds.ip=dhcp vcds.ks={}",
                    n.node,
                    self.config.kickstart_url()
                ),
            },
            BootMode::Pxe => Boot::Pxe,
        };
        VmSpec {
            name: n.vm.clone(),
            netns: None,
            accel: self.config.accel,
            memory_mib: self.config.vm_memory_mib,
            cpus: 1,
            boot,
            tap: n.tap.clone(),
            mac: n.mac.clone(),
            // The agent puts them in its state directory.
            qmp_socket: PathBuf::new(),
            console_log: PathBuf::new(),
        }
    }

    /// The PXE boot files, world-readable for dnsmasq: the installer image and an iPXE script
    /// that boots it with the kickstart URL the GW-node hands out (DHCP option 224).
    pub fn prepare_tftp(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let root = self.config.tftp_root();
        std::fs::create_dir_all(&root)?;
        for dir in root.ancestors().take(3) {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        }
        for (from, to) in [&self.config.image.kernel, &self.config.image.initrd]
            .into_iter()
            .zip(BOOT_FILES)
        {
            std::fs::copy(from, root.join(to))?;
            std::fs::set_permissions(root.join(to), std::fs::Permissions::from_mode(0o644))?;
        }
        let [kernel, initrd] = BOOT_FILES.map(|f| self.config.boot_url(f));
        std::fs::write(
            root.join(IPXE_SCRIPT),
            format!(
                "#!ipxe\n\
                 kernel {kernel} console=ttyS0 quiet panic=1 \
                 vcds.hostname=${{hostname}} vcds.ip=dhcp vcds.ks=${{224:string}}\n\
                 initrd {initrd}\n\
                 boot\n"
            ),
        )?;
        std::fs::set_permissions(
            root.join(IPXE_SCRIPT),
            std::fs::Permissions::from_mode(0o644),
        )
    }

    /// Builds (or repairs) everything of System `r`: networks, GW-node, VMs. Idempotent.
    fn build(&self, r: &Resource) -> Result<(), LocalError> {
        let Some(allocation) = deployment(r).and_then(|d| d.allocation.as_ref()) else {
            return Ok(());
        };
        let nodes = plan_nodes(&r.id, allocation)?;
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
            let mut agent = self.connect(pnode)?;
            // A VM of an earlier cluster with this network id still on the bridge would share
            // its taps: it goes first.
            for vm in agent.inventory().map_err(agent_err(name))?.vms {
                if vm.cluster == id && vm_system(&vm.name) != Some(r.id.as_str()) {
                    agent.destroy_vm(&vm.name).map_err(agent_err(name))?;
                }
            }
            agent
                .ensure_network(&pnode.cluster_net(id, peers, taps.clone()))
                .map_err(agent_err(name))?;
        }
        let gw = self.pnode(&allocation.gateway.pnode)?;
        self.connect(gw)?
            .ensure_gateway(&self.gateway_spec(r, allocation, &nodes))
            .map_err(agent_err(&gw.name))?;
        for n in &nodes {
            let pnode = self.pnode(&n.pnode)?;
            self.connect(pnode)?
                .start_vm(id, &self.vm_spec(n))
                .map_err(agent_err(&n.pnode))?;
        }
        Ok(())
    }

    /// Removes everything the site holds that no System in `live` owns: VMs of other
    /// Systems, GW-nodes and cluster networks of network ids nobody holds.
    fn remove_orphans(&self, live: &BTreeMap<String, u32>) -> Result<Reconciled, LocalError> {
        let ids: BTreeSet<u32> = live.values().copied().collect();
        let mut removed = 0;
        let mut gmond = BTreeMap::new();
        for pnode in &self.config.site.pnodes {
            let mut agent = self.connect(pnode)?;
            let inventory: Inventory = agent.inventory().map_err(agent_err(&pnode.name))?;
            if let Some(addr) = inventory.gmond {
                gmond.insert(pnode.name.clone(), addr.to_string());
            }
            for vm in &inventory.vms {
                let owner = vm_system(&vm.name).and_then(|s| live.get(s));
                if owner != Some(&vm.cluster) {
                    tracing::info!(pnode = %pnode.name, vm = %vm.name, "removing a VM no System holds");
                    agent.destroy_vm(&vm.name).map_err(agent_err(&pnode.name))?;
                    removed += 1;
                }
            }
            for gw in inventory.gateway_ids().filter(|id| !ids.contains(id)) {
                tracing::info!(pnode = %pnode.name, network_id = gw, "removing a GW-node no System holds");
                agent.remove_gateway(gw).map_err(agent_err(&pnode.name))?;
                removed += 1;
            }
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
            for (id, taps) in nets.into_iter().filter(|(id, _)| !ids.contains(id)) {
                tracing::info!(pnode = %pnode.name, network_id = id, "removing a cluster network no System holds");
                agent
                    .remove_network(&pnode.cluster_net(id, Vec::new(), taps))
                    .map_err(agent_err(&pnode.name))?;
                removed += 1;
            }
        }
        Ok(Reconciled { removed, gmond })
    }

    /// Polls each agent's gmond port: a restarted agent's new port replaces its old one.
    fn watch_gmond(&self, state: &AppState, now: BTreeMap<String, String>) {
        let mut known = self.gmond.lock().unwrap_or_else(PoisonError::into_inner);
        for (pnode, old) in known.iter() {
            if now.get(pnode) != Some(old) {
                state.monitoring.remove_endpoint(old);
            }
        }
        for (pnode, endpoint) in &now {
            if state.monitoring.add_endpoint(endpoint.clone()) {
                tracing::info!(pnode = %pnode, %endpoint, "polling the P-node agent's gmond port");
            }
        }
        *known = now;
    }

    /// The Systems the site should hold now, by id, with their network ids.
    fn live(state: &AppState) -> BTreeMap<String, u32> {
        state
            .registry
            .select(|r| deployment(r).is_some_and(holds))
            .iter()
            .filter_map(|r| {
                let id = deployment(r)?.allocation.as_ref()?.network_id.id;
                Some((r.id.clone(), id))
            })
            .collect()
    }

    /// One reconcile pass: whatever runs without a live System is removed.
    /// Also keeps the poller on every agent's gmond port.
    pub async fn reconcile(self: &Arc<Self>, state: &Arc<AppState>) -> Result<usize, LocalError> {
        let live = state.clone();
        // The live set is read under the agents lock, so no deployment is half-built then.
        let pass = self
            .blocking(move |this| this.remove_orphans(&Self::live(&live)))
            .await?;
        self.watch_gmond(state, pass.gmond);
        Ok(pass.removed)
    }

    /// Reconciles now and after every release, and every `period` in case an agent drifted.
    pub async fn run_reconciler(self: Arc<Self>, state: Arc<AppState>, period: Duration) {
        loop {
            match self.reconcile(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "reconciled the local site"),
                Err(e) => tracing::warn!(error = %e, "reconciling the local site"),
            }
            let _ = actix_rt::time::timeout(period, self.kick.notified()).await;
        }
    }

    /// Something was released: take it down soon.
    pub fn released(&self) {
        self.kick.notify_one();
    }

    /// Moves System `r` on from its phase (see `site::Executor::carry_on`).
    pub fn carry_on(self: &Arc<Self>, state: Arc<AppState>, endpoints: Endpoints, r: &Resource) {
        let Some(d) = deployment(r) else { return };
        let (lifecycle, phase) = (d.lifecycle, d.phase);
        let this = self.clone();
        let id = r.id.clone();
        match (lifecycle, phase) {
            (Lifecycle::Running, Some(Phase::Provisioning | Phase::Installing)) => {
                actix_rt::spawn(async move { this.deploy(&state, &endpoints, &id).await });
            }
            (Lifecycle::Terminated, Some(Phase::TearingDown)) => {
                actix_rt::spawn(async move {
                    if let Err(e) = this.reconcile(&state).await {
                        tracing::warn!(id, error = %e, "tearing down; the reconciler retries");
                    }
                    crate::site::advance(
                        &state,
                        &endpoints,
                        &id,
                        Lifecycle::Terminated,
                        Phase::TearingDown,
                        Phase::Released,
                    )
                    .await;
                });
            }
            _ => {}
        }
    }

    /// Provisioning → installing → ready, or failed with the reason.
    async fn deploy(self: &Arc<Self>, state: &Arc<AppState>, endpoints: &Endpoints, id: &str) {
        let started = Instant::now();
        if let Err(e) = crate::site::provision(state, id).await {
            let why = format!("provisioning failed: {e}");
            crate::site::fail(
                state,
                endpoints,
                id,
                Lifecycle::Running,
                Phase::Provisioning,
                why,
            )
            .await;
            return;
        }
        let Some(r) = state.registry.get(id) else {
            return;
        };
        let phase = deployment(&r).and_then(|d| d.phase);
        let built = self.blocking(move |this| this.build(&r)).await;
        if let Err(e) = built {
            let from = phase.unwrap_or(Phase::Provisioning);
            let why = format!("provisioning failed: {e}");
            crate::site::fail(state, endpoints, id, Lifecycle::Running, from, why).await;
            return;
        }
        if phase == Some(Phase::Provisioning)
            && !crate::site::advance(
                state,
                endpoints,
                id,
                Lifecycle::Running,
                Phase::Provisioning,
                Phase::Installing,
            )
            .await
        {
            return;
        }
        tracing::info!(id, elapsed = ?started.elapsed(), "VMs started; installing");
        match self.watch_install(state, id).await {
            Ok(true) => {
                crate::site::advance(
                    state,
                    endpoints,
                    id,
                    Lifecycle::Running,
                    Phase::Installing,
                    Phase::Ready,
                )
                .await;
                tracing::info!(id, elapsed = ?started.elapsed(), "cluster ready");
            }
            Ok(false) => {}
            Err(e) => {
                crate::site::fail(
                    state,
                    endpoints,
                    id,
                    Lifecycle::Running,
                    Phase::Installing,
                    e.to_string(),
                )
                .await;
            }
        }
    }

    /// Waits until every node reported `finished` (true), the System left installing
    /// (false), a node failed, its VM vanished, or the install timed out.
    async fn watch_install(
        self: &Arc<Self>,
        state: &Arc<AppState>,
        id: &str,
    ) -> Result<bool, LocalError> {
        let deadline = Instant::now() + self.config.install_timeout;
        let mut last_vm_check = Instant::now();
        loop {
            let Some(r) = state.registry.get(id) else {
                return Ok(false);
            };
            let d = deployment(&r);
            if d.map(|d| (d.lifecycle, d.phase))
                != Some((Lifecycle::Running, Some(Phase::Installing)))
            {
                return Ok(false);
            }
            let rows = state.kickstarts.node_table(id);
            if let Some(row) = rows.iter().find(|row| {
                row.install
                    .as_ref()
                    .is_some_and(|i| i.state == InstallState::Failed)
            }) {
                let reason = row
                    .install
                    .as_ref()
                    .and_then(|i| i.message.clone())
                    .unwrap_or_else(|| "no reason given".into());
                return Err(LocalError::InstallFailed {
                    node: row.host.clone(),
                    reason,
                });
            }
            if !rows.is_empty()
                && rows.iter().all(|row| {
                    row.install
                        .as_ref()
                        .is_some_and(|i| i.state == InstallState::Finished)
                })
            {
                return Ok(true);
            }
            if Instant::now() > deadline {
                let waiting = rows
                    .iter()
                    .find(|row| {
                        row.install.as_ref().map(|i| i.state) != Some(InstallState::Finished)
                    })
                    .map_or_else(|| "?".to_owned(), |row| row.host.clone());
                return Err(LocalError::InstallTimeout(
                    waiting,
                    self.config.install_timeout,
                ));
            }
            if last_vm_check.elapsed() > VM_CHECK_PERIOD {
                last_vm_check = Instant::now();
                let r = r.clone();
                self.blocking(move |this| this.check_vms(&r)).await?;
            }
            actix_rt::time::sleep(INSTALL_POLL).await;
        }
    }

    /// Every VM of System `r` still runs.
    fn check_vms(&self, r: &Resource) -> Result<(), LocalError> {
        let Some(allocation) = deployment(r).and_then(|d| d.allocation.as_ref()) else {
            return Ok(());
        };
        let nodes = plan_nodes(&r.id, allocation)?;
        let mut running = BTreeSet::new();
        for name in self.cluster_pnodes(allocation, &nodes)?.keys() {
            let inventory = self
                .connect(self.pnode(name)?)?
                .inventory()
                .map_err(agent_err(name))?;
            running.extend(inventory.vms.into_iter().map(|vm| vm.name));
        }
        match nodes.iter().find(|n| !running.contains(&n.vm)) {
            Some(n) => Err(LocalError::VmGone(n.node.clone())),
            None => Ok(()),
        }
    }

    /// Pauses (`pause`) or continues every VM of System `r` over QMP.
    pub async fn pause(self: &Arc<Self>, r: Arc<Resource>, pause: bool) -> Result<(), LocalError> {
        self.blocking(move |this| {
            let Some(allocation) = deployment(&r).and_then(|d| d.allocation.as_ref()) else {
                return Ok(());
            };
            for n in plan_nodes(&r.id, allocation)? {
                let mut agent = this.connect(this.pnode(&n.pnode)?)?;
                if pause {
                    agent.suspend_vm(&n.vm)
                } else {
                    agent.resume_vm(&n.vm)
                }
                .map_err(agent_err(&n.pnode))?;
            }
            Ok(())
        })
        .await
    }
}

/// The iPXE script in the TFTP root.
const IPXE_SCRIPT: &str = "boot.ipxe";
const INSTALL_POLL: Duration = Duration::from_millis(250);
const VM_CHECK_PERIOD: Duration = Duration::from_secs(3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_names_say_whose_they_are() {
        let name = vm_name("compute-0-1", "3f6c2a9e-1b7d-4c55-9d1e-0a2b3c4d5e6f");
        assert_eq!(name, "compute-0-1.3f6c2a9e-1b7d-4c55-9d1e-0a2b3c4d5e6f");
        assert_eq!(
            vm_system(&name),
            Some("3f6c2a9e-1b7d-4c55-9d1e-0a2b3c4d5e6f")
        );
        assert_eq!(vm_system("stray"), None);
    }
}
