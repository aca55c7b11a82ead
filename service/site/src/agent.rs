//! The P-node agent: one process per P-node, serving the manager's idempotent operations on
//! cluster networks and virtual nodes over [`crate::rpc`], and reporting what really exists so
//! the manager can reconcile.
//!
//! The agent owns its P-node: it runs every command in its own namespace (whatever the
//! request says) and keeps each VM's QMP socket and console log in its state directory. VMs
//! outlive the agent: their records (name, cluster, pid, spec) are in `agent-state.json`, so an
//! agent restarted after a crash (kill -9) re-adopts the VMs that still run and forgets the
//! dead ones. A VM with a disk is not forgotten when its QEMU ends (a crash, StopVm, an
//! agent restart that finds it dead): it is kept as stopped, with its overlay (`NAME.disk.qcow2`
//! in the state directory), and `RestartVm` boots the system installed on its disk without
//! reinstalling. Only DestroyVm removes the disk.
//!
//! GW-nodes ([`crate::gateway`]) are kept the same way: their specs are in the state file and
//! their files in `gw-<network id>/` of the state directory; dnsmasq runs daemonized in the GW
//! namespace, so a restarted agent finds it again by its pid file (and restarts it only when
//! asked to ensure a changed configuration). An agent serving GW-nodes must run in the host's
//! mount namespace (on a real P-node, or with `--netns` rather than under `ip netns exec`),
//! where the named GW namespaces are.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vcds_placement::MacAddr;

pub use crate::failure::{AgentFailure, FailureKind};
use crate::gateway::{self, GatewaySpec, GatewayStatus};
use crate::net::{self, bridge_name, ClusterNet, Cmd, Observed};
use crate::process::{self, live_argv};
use crate::rpc::{self, Client, Endpoint, Key, RpcError};
use crate::vm::{self, Boot, Qmp, VmSpec};
use crate::Error;

const STATE_FILE: &str = "agent-state.json";
/// What [`Error::Json`] names when the state does not serialize.
const STATE_WHAT: &str = "agent state";
const QMP_TIMEOUT: Duration = Duration::from_secs(2);
/// From spawning QEMU to its QMP socket answering (TCG on a busy 2-core machine included).
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Grace time for QMP `quit` before the VM is killed, and for the kill to take effect.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// VM names become file names in the state directory.
const MAX_VM_NAME: usize = 64;

/// What the manager asks of an agent. Every operation is idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Create what is missing of the cluster bridge, its uplink and the taps.
    EnsureNetwork(ClusterNet),
    /// Remove the cluster's taps, uplink and bridge; refused while VMs of the cluster run.
    RemoveNetwork(ClusterNet),
    /// Start the VM on cluster `cluster` (its tap must be a port of that cluster bridge); a
    /// VM of that name that already runs is left alone. With a disk: any boot but
    /// [`Boot::Disk`] installs, so the VM gets a fresh overlay on its base image; `Disk` boots
    /// the overlay it has.
    StartVm {
        cluster: u32,
        spec: VmSpec,
    },
    /// Start a stopped VM again from its disk ([`Boot::Disk`], no installer); one that runs is
    /// left alone.
    RestartVm {
        name: String,
    },
    /// End QEMU, keeping the console log.
    StopVm {
        name: String,
    },
    /// Pause the VM's CPUs (QMP `stop`).
    SuspendVm {
        name: String,
    },
    /// Continue a paused VM (QMP `cont`).
    ResumeVm {
        name: String,
    },
    /// End QEMU and delete its disk, console log and other files.
    DestroyVm {
        name: String,
    },
    /// Create or repair the cluster's GW-node (namespace, legs, NAT, dnsmasq); the bridges
    /// must exist on the P-node. dnsmasq is restarted only when its configuration changed.
    EnsureGateway(GatewaySpec),
    /// Remove the cluster's GW-node: dnsmasq, namespace, legs, table and files.
    RemoveGateway {
        network_id: u32,
    },
    Inventory,
}

/// The agent's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The commands the agent ran; empty when the network already matched.
    Network {
        commands: Vec<String>,
    },
    Vm(VmStatus),
    /// Whether there was anything to do.
    Done {
        changed: bool,
    },
    Inventory(Inventory),
    /// The operation failed: what kind of failure, and the agent's message (an older agent's
    /// bare message reads as [`FailureKind::Other`]).
    Failed(AgentFailure),
}

/// A VM the agent runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmStatus {
    pub name: String,
    /// The cluster's network id.
    pub cluster: u32,
    pub pid: u32,
    pub tap: String,
    #[serde(with = "vcds_placement::mac_text")]
    pub mac: MacAddr,
    /// QMP's run state (`running`, `paused`…), or `unknown: REASON`.
    pub qmp_status: String,
}

/// A cluster network device as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetDevice {
    pub name: String,
    /// `bridge`, `vxlan`, `vlan` or `tun` (taps).
    pub kind: String,
    /// VNI of a VXLAN device, VLAN id of a VLAN device.
    pub id: Option<u64>,
    pub master: Option<String>,
    pub up: bool,
}

/// What really exists on the P-node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub netns: Option<String>,
    /// Bridges, VXLAN and VLAN devices and taps (`ip -d -j link show`).
    pub devices: Vec<NetDevice>,
    /// VMs the agent runs (checked against `/proc`, status from QMP).
    pub vms: Vec<VmStatus>,
    /// Pids of QEMU processes using the agent's state directory that the agent has no record
    /// of (a lost state file): the manager decides their fate.
    pub unknown_qemu: Vec<u32>,
    /// The GW-nodes the agent keeps, as they really are.
    #[serde(default)]
    pub gateways: Vec<GatewayStatus>,
    /// Network ids of GW-node directories in the state directory that the agent has no record
    /// of: `RemoveGateway` clears them.
    #[serde(default)]
    pub unknown_gateways: Vec<u32>,
    /// Where the agent serves its gmond-compatible port, when it does: the manager polls it.
    #[serde(default)]
    pub gmond: Option<std::net::SocketAddr>,
    /// VMs whose QEMU has ended and whose disk stays: `RestartVm` boots them again.
    #[serde(default)]
    pub stopped: Vec<StoppedVm>,
}

/// A VM that does not run but keeps its disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoppedVm {
    pub name: String,
    /// The cluster's network id.
    pub cluster: u32,
    pub tap: String,
    #[serde(with = "vcds_placement::mac_text")]
    pub mac: MacAddr,
    /// Its disk, the overlay it boots from.
    pub overlay: PathBuf,
}

impl Inventory {
    /// Network ids of every GW-node on the P-node, kept or unknown.
    pub fn gateway_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.gateways
            .iter()
            .map(|g| g.network_id)
            .chain(self.unknown_gateways.iter().copied())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct VmRecord {
    cluster: u32,
    pid: u32,
    spec: VmSpec,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    vms: BTreeMap<String, VmRecord>,
    /// GW-nodes by network id (absent in state files of older agents).
    #[serde(default)]
    gateways: BTreeMap<u32, GatewaySpec>,
    /// VMs with a disk whose QEMU has ended (their pid is stale), by name.
    #[serde(default)]
    stopped: BTreeMap<String, VmRecord>,
}

/// The agent's state and operations, independent of the transport.
#[derive(Debug)]
pub struct Agent {
    state_dir: PathBuf,
    netns: Option<String>,
    state: State,
    /// QEMU processes started by this instance, so they are reaped; VMs adopted from a
    /// previous instance are reaped by init.
    children: HashMap<String, Child>,
    /// The bound gmond-compatible port, reported in the inventory.
    gmond: Option<std::net::SocketAddr>,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

impl Agent {
    /// Opens (creating it owner-only) the state directory, re-adopts the recorded VMs that
    /// still run and forgets the others. `netns` is the P-node's namespace when the agent
    /// does not run inside it.
    pub fn open(state_dir: &Path, netns: Option<String>) -> Result<Agent, Error> {
        fs::create_dir_all(state_dir)
            .map_err(io_err(format!("creating {}", state_dir.display())))?;
        fs::set_permissions(state_dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err(format!("chmod {}", state_dir.display())))?;
        let state_dir = state_dir
            .canonicalize()
            .map_err(io_err(format!("resolving {}", state_dir.display())))?;
        let path = state_dir.join(STATE_FILE);
        let state = match fs::read(&path) {
            // A corrupt state file stops the agent rather than orphaning the VMs it lists.
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                what: path.display().to_string(),
                source,
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
        };
        let mut agent = Agent {
            state_dir,
            netns,
            state,
            children: HashMap::new(),
            gmond: None,
        };
        agent.reap()?;
        for (name, record) in &agent.state.vms {
            tracing::info!("re-adopted VM {name} (pid {})", record.pid);
        }
        for name in agent.state.stopped.keys() {
            tracing::info!("VM {name} is stopped; RestartVm boots it from its disk");
        }
        for id in agent.state.gateways.keys() {
            match gateway::dnsmasq_pid(*id, &agent.state_dir) {
                Some(pid) => tracing::info!("re-adopted the dnsmasq of GW-node {id} (pid {pid})"),
                None => tracing::warn!(
                    "the dnsmasq of GW-node {id} is not running; EnsureGateway restarts it"
                ),
            }
        }
        Ok(agent)
    }

    /// Carries out one request; failures become [`Reply::Failed`].
    pub fn handle(&mut self, request: Request) -> Reply {
        let result = self.reap().and_then(|()| match request {
            Request::EnsureNetwork(net) => self.ensure_network(net),
            Request::RemoveNetwork(net) => self.remove_network(net),
            Request::StartVm { cluster, spec } => self.start_vm(cluster, spec),
            Request::RestartVm { name } => self.restart_vm(&name),
            Request::StopVm { name } => self.end_vm(&name, false),
            Request::DestroyVm { name } => self.end_vm(&name, true),
            Request::SuspendVm { name } => self.qmp_op(&name, Qmp::stop),
            Request::ResumeVm { name } => self.qmp_op(&name, Qmp::cont),
            Request::EnsureGateway(spec) => self.ensure_gateway(spec),
            Request::RemoveGateway { network_id } => self.remove_gateway(network_id),
            Request::Inventory => self.inventory().map(Reply::Inventory),
        });
        result.unwrap_or_else(|e| {
            tracing::warn!("request failed: {e}");
            Reply::Failed(failure(&e))
        })
    }

    fn save(&self) -> Result<(), Error> {
        let path = self.state_dir.join(STATE_FILE);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.state).map_err(|source| Error::Json {
            what: STATE_WHAT.to_owned(),
            source,
        })?;
        // Write-then-rename: a crash leaves the old or the new state, never half of one.
        fs::write(&tmp, bytes).map_err(io_err(format!("writing {}", tmp.display())))?;
        fs::rename(&tmp, &path).map_err(io_err(format!("writing {}", path.display())))
    }

    fn vm_file(&self, name: &str, ext: &str) -> PathBuf {
        self.state_dir.join(format!("{name}.{ext}"))
    }

    fn is_running(&mut self, name: &str, pid: u32) -> bool {
        match self.children.get_mut(name) {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => qemu_alive(pid, name),
        }
    }

    /// Forgets the VMs whose QEMU has ended (reaping those this instance started), keeping
    /// those with a disk as stopped.
    fn reap(&mut self) -> Result<(), Error> {
        let recorded: Vec<(String, u32)> = self
            .state
            .vms
            .iter()
            .map(|(n, r)| (n.clone(), r.pid))
            .collect();
        let mut changed = false;
        for (name, pid) in recorded {
            if !self.is_running(&name, pid) {
                tracing::warn!("VM {name} (pid {pid}) is no longer running");
                self.retire(&name);
                changed = true;
            }
        }
        if changed {
            self.save()?;
        }
        Ok(())
    }

    /// Drops the running record of `name`; one with a disk becomes stopped.
    fn retire(&mut self, name: &str) {
        self.children.remove(name);
        let _ = fs::remove_file(self.vm_file(name, "qmp"));
        if let Some(record) = self.state.vms.remove(name) {
            if record.spec.disk.is_some() {
                tracing::info!("VM {name} keeps its disk: stopped");
                self.state.stopped.insert(name.to_owned(), record);
            }
        }
    }

    fn overlay_file(&self, name: &str) -> PathBuf {
        self.vm_file(name, "disk.qcow2")
    }

    fn ensure_network(&mut self, mut net: ClusterNet) -> Result<Reply, Error> {
        net.netns.clone_from(&self.netns);
        let commands = net::ensure(&net)?;
        Ok(Reply::Network {
            commands: commands.iter().map(Cmd::to_string).collect(),
        })
    }

    fn remove_network(&mut self, mut net: ClusterNet) -> Result<Reply, Error> {
        let users: Vec<String> = self
            .state
            .vms
            .iter()
            .filter(|(_, r)| r.cluster == net.network_id)
            .map(|(n, _)| n.clone())
            .collect();
        if !users.is_empty() {
            return Err(Error::InUse {
                what: format!("cluster network {}", net.network_id),
                users,
            });
        }
        net.netns.clone_from(&self.netns);
        let commands = net::remove(&net)?;
        Ok(Reply::Network {
            commands: commands.iter().map(Cmd::to_string).collect(),
        })
    }

    fn ensure_gateway(&mut self, mut spec: GatewaySpec) -> Result<Reply, Error> {
        spec.netns.clone_from(&self.netns);
        spec.validate()?;
        // Recorded before the work: an agent killed halfway still knows what to clean up.
        if self.state.gateways.get(&spec.network_id) != Some(&spec) {
            self.state.gateways.insert(spec.network_id, spec.clone());
            self.save()?;
        }
        let commands = gateway::ensure(&spec, &self.state_dir)?;
        Ok(Reply::Network { commands })
    }

    fn remove_gateway(&mut self, network_id: u32) -> Result<Reply, Error> {
        let actions = gateway::remove(network_id, self.netns.as_deref(), &self.state_dir)?;
        let recorded = self.state.gateways.remove(&network_id).is_some();
        if recorded {
            self.save()?;
        }
        Ok(Reply::Done {
            changed: recorded || !actions.is_empty(),
        })
    }

    /// Network ids of `gw-<id>` directories in the state directory without a record.
    fn unknown_gateways(&self) -> Vec<u32> {
        let Ok(entries) = fs::read_dir(&self.state_dir) else {
            return Vec::new();
        };
        let mut ids: Vec<u32> = entries
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("gw-")?.parse().ok()
            })
            .filter(|id| !self.state.gateways.contains_key(id))
            .collect();
        ids.sort_unstable();
        ids
    }

    fn links(&self) -> Result<Observed, Error> {
        let json = Cmd::ip(self.netns.as_deref(), &["-d", "-j", "link", "show"]).run()?;
        Observed::parse(&json, "")
    }

    fn start_vm(&mut self, cluster: u32, mut spec: VmSpec) -> Result<Reply, Error> {
        check_vm_name(&spec.name)?;
        if !spec.mac.is_unicast() || spec.mac.0 == [0; 6] {
            return Err(Error::InvalidSpec(format!(
                "VM {}: {} is not a unicast MAC address",
                spec.name, spec.mac
            )));
        }
        let name = spec.name.clone();
        if let Some(record) = self.state.vms.get(&name) {
            if record.cluster != cluster || record.spec.tap != spec.tap {
                return Err(Error::Conflict {
                    dev: name,
                    reason: format!("runs on cluster {} tap {}", record.cluster, record.spec.tap),
                });
            }
            return self.status(&name).map(Reply::Vm);
        }
        // A tap outside the cluster bridge would put the VM on another network, or none.
        let bridge = bridge_name(cluster);
        let on_bridge = self
            .links()?
            .links
            .iter()
            .any(|l| l.ifname == spec.tap && l.master.as_deref() == Some(bridge.as_str()));
        if !on_bridge {
            return Err(Error::InvalidSpec(format!(
                "tap {} is not a port of cluster bridge {bridge}; ensure the network first",
                spec.tap
            )));
        }
        spec.netns.clone_from(&self.netns);
        spec.qmp_socket = self.vm_file(&name, "qmp");
        spec.console_log = self.vm_file(&name, "console");
        let overlay = self.overlay_file(&name);
        // Which disk the VM starts with: the one it has (booting an installed system, or a
        // cloud image's that is already made), or a fresh overlay of its base image (an install
        // starts from the base image: the VM's old disk, if any, goes).
        let fresh = match spec.boot {
            Boot::Disk => {
                if spec.disk.is_none() || !overlay.is_file() {
                    return Err(Error::InvalidSpec(format!(
                        "VM {name} has no installed disk to boot: start it with an installer first"
                    )));
                }
                false
            }
            Boot::Image => !overlay.is_file(),
            Boot::Direct { .. } | Boot::Pxe => {
                vcds_image::remove_overlay(&overlay)?;
                true
            }
        };
        if let Some(disk) = &mut spec.disk {
            disk.overlay = overlay;
            if fresh {
                vcds_image::create_overlay(&disk.base, &disk.overlay, disk.size_bytes)?;
            }
        }
        let stderr_path = self.vm_file(&name, "stderr");
        let stderr = fs::File::create(&stderr_path)
            .map_err(io_err(format!("creating {}", stderr_path.display())))?;
        let child = vm::spawn(&spec, Stdio::from(stderr), true)?;
        let pid = child.id();
        self.children.insert(name.clone(), child);
        self.state.stopped.remove(&name);
        self.state
            .vms
            .insert(name.clone(), VmRecord { cluster, pid, spec });
        // Recorded before waiting: an agent killed now re-adopts the VM instead of orphaning it.
        self.save()?;
        if let Err(e) = self.wait_for_qmp(&name, pid) {
            let _ = self.end_vm(&name, false);
            return Err(e);
        }
        tracing::info!("started VM {name} (pid {pid}) on cluster {cluster}");
        self.status(&name).map(Reply::Vm)
    }

    fn restart_vm(&mut self, name: &str) -> Result<Reply, Error> {
        check_vm_name(name)?;
        if self.state.vms.contains_key(name) {
            return self.status(name).map(Reply::Vm);
        }
        let record = self
            .state
            .stopped
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NoSuchVm(name.to_owned()))?;
        let mut spec = record.spec;
        spec.boot = Boot::Disk;
        self.start_vm(record.cluster, spec)
    }

    fn wait_for_qmp(&mut self, name: &str, pid: u32) -> Result<(), Error> {
        let socket = self.vm_file(name, "qmp");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if Qmp::connect(&socket, QMP_TIMEOUT).is_ok() {
                return Ok(());
            }
            if !self.is_running(name, pid) {
                let stderr = fs::read_to_string(self.vm_file(name, "stderr")).unwrap_or_default();
                let console = fs::read_to_string(self.vm_file(name, "console")).unwrap_or_default();
                return Err(Error::VmExited {
                    vm: name.to_owned(),
                    status: format!("stderr: {}", stderr.trim()),
                    what: "its QMP socket".to_owned(),
                    tail: console
                        .chars()
                        .rev()
                        .take(400)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect(),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("the QMP socket of VM {name}"),
                    after: START_TIMEOUT,
                });
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Status of a recorded VM; QMP trouble is reported in the status, not as an error.
    fn status(&self, name: &str) -> Result<VmStatus, Error> {
        let record = self
            .state
            .vms
            .get(name)
            .ok_or_else(|| Error::NoSuchVm(name.to_owned()))?;
        let qmp_status = Qmp::connect(&record.spec.qmp_socket, QMP_TIMEOUT)
            .and_then(|mut qmp| qmp.status())
            .unwrap_or_else(|e| format!("unknown: {e}"));
        Ok(VmStatus {
            name: name.to_owned(),
            cluster: record.cluster,
            pid: record.pid,
            tap: record.spec.tap.clone(),
            mac: record.spec.mac,
            qmp_status,
        })
    }

    fn qmp_op(
        &mut self,
        name: &str,
        op: fn(&mut Qmp) -> Result<(), Error>,
    ) -> Result<Reply, Error> {
        let record = self
            .state
            .vms
            .get(name)
            .ok_or_else(|| Error::NoSuchVm(name.to_owned()))?;
        {
            // QEMU serves one QMP client at a time: close before asking the status.
            let mut qmp = Qmp::connect(&record.spec.qmp_socket, QMP_TIMEOUT)?;
            op(&mut qmp)?;
        }
        self.status(name).map(Reply::Vm)
    }

    /// Ends the VM (QMP `quit`, then SIGKILL) and forgets it, or keeps it as stopped when it
    /// has a disk; `destroy` forgets it in any case and deletes its disk, console log and
    /// stderr.
    fn end_vm(&mut self, name: &str, destroy: bool) -> Result<Reply, Error> {
        check_vm_name(name)?;
        let record = self.state.vms.get(name).cloned();
        if let Some(record) = &record {
            let _ = Qmp::connect(&record.spec.qmp_socket, QMP_TIMEOUT).and_then(|mut q| q.quit());
            if !self.wait_gone(name, record.pid) {
                // It may exit on its own meanwhile: the second wait decides.
                let _ = Cmd(vec!["kill".into(), "-KILL".into(), record.pid.to_string()]).run();
                if !self.wait_gone(name, record.pid) {
                    return Err(Error::Timeout {
                        what: format!("VM {name} (pid {}) to end", record.pid),
                        after: STOP_TIMEOUT,
                    });
                }
            }
            self.retire(name);
            self.save()?;
            tracing::info!("ended VM {name} (pid {})", record.pid);
        }
        let mut had_disk = false;
        if destroy {
            if self.state.stopped.remove(name).is_some() {
                had_disk = true;
                self.save()?;
            }
            had_disk |= vcds_image::remove_overlay(&self.overlay_file(name))?;
            for ext in ["console", "stderr"] {
                match fs::remove_file(self.vm_file(name, ext)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(io_err(format!("removing the {ext} of VM {name}"))(e))
                    }
                    _ => {}
                }
            }
        }
        Ok(Reply::Done {
            changed: record.is_some() || had_disk,
        })
    }

    fn wait_gone(&mut self, name: &str, pid: u32) -> bool {
        let deadline = Instant::now() + STOP_TIMEOUT;
        while self.is_running(name, pid) {
            if Instant::now() >= deadline {
                return false;
            }
            sleep(Duration::from_millis(50));
        }
        true
    }

    /// The VMs with their QMP state, for the gmond port ([`crate::gmond`]).
    /// The VMs and GW-nodes the gmond port reports, each in its virtual cluster.
    fn vm_infos(&self) -> Vec<crate::gmond::VmInfo> {
        let status = |name: &str| self.status(name).map(|s| s.qmp_status);
        let vms = (self.state.vms.iter()).map(|(name, r)| crate::gmond::VmInfo {
            name: name.clone(),
            network_id: r.cluster,
            pid: r.pid,
            state: status(name).unwrap_or_else(|e| format!("unknown: {e}")),
            vcpus: r.spec.cpus,
            memory_mib: r.spec.memory_mib,
        });
        let gateways = self.state.gateways.keys().map(|&id| {
            let observed = gateway::observe(id, self.netns.as_deref(), &self.state_dir);
            crate::gmond::VmInfo {
                name: gateway::netns_name(id),
                network_id: id,
                // Its CPU is its dnsmasq's; NAT and forwarding run in the P-node's kernel.
                pid: observed
                    .as_ref()
                    .ok()
                    .and_then(|g| g.dnsmasq_pid)
                    .unwrap_or(0),
                state: match observed {
                    Ok(g) => gateway_state(&g),
                    Err(e) => format!("unknown: {e}"),
                },
                vcpus: 1,
                memory_mib: 0,
            }
        });
        vms.chain(gateways).collect()
    }

    fn inventory(&self) -> Result<Inventory, Error> {
        let devices = self
            .links()?
            .links
            .iter()
            .filter_map(|l| {
                let kind = l.kind()?;
                ["bridge", "vxlan", "vlan", "tun"]
                    .contains(&kind)
                    .then(|| NetDevice {
                        name: l.ifname.clone(),
                        kind: kind.to_owned(),
                        id: l.id(),
                        master: l.master.clone(),
                        up: l.is_up(),
                    })
            })
            .collect();
        let vms = self
            .state
            .vms
            .keys()
            .map(|name| self.status(name))
            .collect::<Result<_, _>>()?;
        let known: Vec<u32> = self.state.vms.values().map(|r| r.pid).collect();
        let unknown_qemu = qemu_pids_using(&self.state_dir)
            .into_iter()
            .filter(|pid| !known.contains(pid))
            .collect();
        let gateways = self
            .state
            .gateways
            .keys()
            .map(|id| gateway::observe(*id, self.netns.as_deref(), &self.state_dir))
            .collect::<Result<_, _>>()?;
        Ok(Inventory {
            netns: self.netns.clone(),
            devices,
            vms,
            unknown_qemu,
            gateways,
            unknown_gateways: self.unknown_gateways(),
            gmond: self.gmond,
            stopped: (self.state.stopped.iter())
                .map(|(name, r)| StoppedVm {
                    name: name.clone(),
                    cluster: r.cluster,
                    tap: r.spec.tap.clone(),
                    mac: r.spec.mac,
                    overlay: self.overlay_file(name),
                })
                .collect(),
        })
    }
}

/// The failure `e` is to the manager.
fn failure(e: &Error) -> AgentFailure {
    let kind = match e {
        Error::NoSuchVm(_) => FailureKind::NotFound,
        Error::InvalidSpec(_) | Error::Gateway(_) => FailureKind::InvalidSpec,
        Error::Conflict { .. } => FailureKind::Conflict,
        Error::InUse { .. } => FailureKind::Busy,
        Error::Command { cmd, .. } | Error::Spawn { cmd, .. } => FailureKind::Command {
            command: cmd.clone(),
        },
        Error::Json { what, .. } if what == STATE_WHAT => FailureKind::State,
        // The output of a command it cannot read: `what` is the command.
        Error::Json { what, .. } => FailureKind::Command {
            command: what.clone(),
        },
        Error::Qmp(_) | Error::VmExited { .. } => FailureKind::Qemu,
        Error::Timeout { .. } => FailureKind::Timeout,
        Error::Image(_) => FailureKind::Disk,
        // The agent's files: its state file, and what it keeps in its state directory.
        Error::Io { .. } => FailureKind::State,
        Error::Rpc(_) => FailureKind::Other,
    };
    AgentFailure::new(kind, e.to_string())
}

fn check_vm_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_VM_NAME
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSpec(format!(
            "VM name {name:?} must be 1 to {MAX_VM_NAME} letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}

fn is_qemu(argv: &[String]) -> bool {
    argv.first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|f| f.to_string_lossy().starts_with("qemu-system"))
}

/// Whether `pid` is still the QEMU of VM `name` (and not a reused pid).
fn qemu_alive(pid: u32, name: &str) -> bool {
    live_argv(&pid.to_string()).is_some_and(|argv| {
        is_qemu(&argv) && argv.windows(2).any(|w| w[0] == "-name" && w[1] == name)
    })
}

/// Pids of live QEMU processes with a file in `state_dir` on their command line.
fn qemu_pids_using(state_dir: &Path) -> Vec<u32> {
    let needle = format!("{}/", state_dir.display());
    process::pids_where(|argv| is_qemu(argv) && argv.iter().any(|a| a.contains(&needle)))
}

/// How `vcds agent` is started.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub endpoint: Endpoint,
    pub key_file: PathBuf,
    pub state_dir: PathBuf,
    /// The P-node's namespace, when the agent does not run inside it.
    pub netns: Option<String>,
    /// The gmond-compatible port, when it is served.
    pub gmond: Option<crate::gmond::GmondConfig>,
}

/// Runs the agent: loads the key, re-adopts VMs, listens and serves forever. Returns only
/// when it cannot start.
pub fn run(config: &AgentConfig) -> Result<(), Error> {
    let key = Key::load(&config.key_file)?;
    let agent = Agent::open(&config.state_dir, config.netns.clone())?;
    let listener = config.endpoint.bind()?;
    tracing::info!(
        "P-node agent listening on {} (state in {}, {} VMs adopted)",
        config.endpoint,
        agent.state_dir.display(),
        agent.state.vms.len()
    );
    let agent = std::sync::Arc::new(Mutex::new(agent));
    if let Some(gmond) = &config.gmond {
        let sampled = agent.clone();
        let addr = crate::gmond::serve(gmond, config.netns.clone(), move || {
            sampled
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .vm_infos()
        })?;
        agent.lock().unwrap_or_else(PoisonError::into_inner).gmond = Some(addr);
    }
    rpc::serve(&listener, &key, move |request| {
        agent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .handle(request)
    })
}

/// A GW-node's state in the gmond port: `running` when its namespace, NAT table and dnsmasq
/// are all there, else `degraded: WHAT IS MISSING`.
fn gateway_state(g: &gateway::GatewayStatus) -> String {
    let missing: Vec<&str> = [
        (g.netns_exists, "namespace"),
        (g.nft_table, "NAT table"),
        (g.dnsmasq_pid.is_some(), "dnsmasq"),
    ]
    .into_iter()
    .filter_map(|(there, what)| (!there).then_some(what))
    .collect();
    if missing.is_empty() {
        "running".to_owned()
    } else {
        format!("degraded: no {}", missing.join(", no "))
    }
}

/// The manager's handle on one agent: typed calls over an authenticated connection. After an
/// error other than [`RpcError::Agent`] (the operation failed) the connection is closed:
/// connect again.
#[derive(Debug)]
pub struct AgentClient(Client);

fn unexpected(reply: Reply) -> RpcError {
    RpcError::UnexpectedReply(format!("{reply:?}"))
}

impl AgentClient {
    pub fn connect(endpoint: &Endpoint, key: Key) -> Result<AgentClient, RpcError> {
        Client::connect(endpoint, key).map(AgentClient)
    }

    fn call(&mut self, request: &Request) -> Result<Reply, RpcError> {
        match self.0.call(request)? {
            Reply::Failed(failure) => Err(RpcError::Agent(failure)),
            reply => Ok(reply),
        }
    }

    fn network(&mut self, request: &Request) -> Result<Vec<String>, RpcError> {
        match self.call(request)? {
            Reply::Network { commands } => Ok(commands),
            other => Err(unexpected(other)),
        }
    }

    fn vm(&mut self, request: &Request) -> Result<VmStatus, RpcError> {
        match self.call(request)? {
            Reply::Vm(status) => Ok(status),
            other => Err(unexpected(other)),
        }
    }

    fn done(&mut self, request: &Request) -> Result<bool, RpcError> {
        match self.call(request)? {
            Reply::Done { changed } => Ok(changed),
            other => Err(unexpected(other)),
        }
    }

    /// Returns the commands the agent ran (none: it already matched).
    pub fn ensure_network(&mut self, net: &ClusterNet) -> Result<Vec<String>, RpcError> {
        self.network(&Request::EnsureNetwork(net.clone()))
    }

    pub fn remove_network(&mut self, net: &ClusterNet) -> Result<Vec<String>, RpcError> {
        self.network(&Request::RemoveNetwork(net.clone()))
    }

    pub fn start_vm(&mut self, cluster: u32, spec: &VmSpec) -> Result<VmStatus, RpcError> {
        self.vm(&Request::StartVm {
            cluster,
            spec: spec.clone(),
        })
    }

    /// Boots a stopped VM from its disk (see [`Request::RestartVm`]).
    pub fn restart_vm(&mut self, name: &str) -> Result<VmStatus, RpcError> {
        self.vm(&Request::RestartVm {
            name: name.to_owned(),
        })
    }

    pub fn suspend_vm(&mut self, name: &str) -> Result<VmStatus, RpcError> {
        self.vm(&Request::SuspendVm {
            name: name.to_owned(),
        })
    }

    pub fn resume_vm(&mut self, name: &str) -> Result<VmStatus, RpcError> {
        self.vm(&Request::ResumeVm {
            name: name.to_owned(),
        })
    }

    /// Returns whether the VM was running.
    pub fn stop_vm(&mut self, name: &str) -> Result<bool, RpcError> {
        self.done(&Request::StopVm {
            name: name.to_owned(),
        })
    }

    /// Returns whether the VM was running.
    pub fn destroy_vm(&mut self, name: &str) -> Result<bool, RpcError> {
        self.done(&Request::DestroyVm {
            name: name.to_owned(),
        })
    }

    /// Returns what the agent did (none: the GW-node already matched).
    pub fn ensure_gateway(&mut self, spec: &GatewaySpec) -> Result<Vec<String>, RpcError> {
        self.network(&Request::EnsureGateway(spec.clone()))
    }

    /// Returns whether there was anything to remove.
    pub fn remove_gateway(&mut self, network_id: u32) -> Result<bool, RpcError> {
        self.done(&Request::RemoveGateway { network_id })
    }

    pub fn inventory(&mut self) -> Result<Inventory, RpcError> {
        match self.call(&Request::Inventory)? {
            Reply::Inventory(inventory) => Ok(inventory),
            other => Err(unexpected(other)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use std::process::Command;
    use std::thread;

    use crate::vm::Accel;

    fn spec(name: &str) -> VmSpec {
        VmSpec {
            name: name.to_owned(),
            netns: None,
            accel: Accel::Tcg,
            memory_mib: 128,
            cpus: 1,
            boot: Boot::Pxe,
            disk: None,
            seed: None,
            tap: "vt999x0".to_owned(),
            mac: net::node_mac(999, 0),
            qmp_socket: PathBuf::from("/ignored.qmp"),
            console_log: PathBuf::from("/ignored.log"),
        }
    }

    /// An agent over a Unix socket, in the test's own namespace (read-only operations only).
    fn agent_at(state_dir: &Path) -> (Endpoint, Key) {
        let key = Key::new(vec![7; rpc::MIN_KEY_LEN]).unwrap();
        let endpoint = Endpoint::Unix(state_dir.join("agent.sock"));
        let listener = endpoint.bind().unwrap();
        let agent = Mutex::new(Agent::open(state_dir, None).unwrap());
        let server_key = key.clone();
        thread::spawn(move || {
            rpc::serve(&listener, &server_key, move |r| {
                agent.lock().unwrap().handle(r)
            })
        });
        (endpoint, key)
    }

    #[test]
    fn dead_vms_are_forgotten_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut exited = Command::new("true").spawn().unwrap();
        let pid = exited.id();
        exited.wait().unwrap();
        let mut state = State::default();
        state.vms.insert(
            "gone".to_owned(),
            VmRecord {
                cluster: 999,
                pid,
                spec: spec("gone"),
            },
        );
        fs::write(
            dir.path().join(STATE_FILE),
            serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
        let agent = Agent::open(dir.path(), None).unwrap();
        assert!(agent.state.vms.is_empty());
        let saved: State =
            serde_json::from_slice(&fs::read(dir.path().join(STATE_FILE)).unwrap()).unwrap();
        assert!(saved.vms.is_empty());
    }

    #[test]
    fn dead_vms_with_a_disk_are_kept_stopped_until_destroyed() {
        let dir = tempfile::tempdir().unwrap();
        let mut exited = Command::new("true").spawn().unwrap();
        let pid = exited.id();
        exited.wait().unwrap();
        let mut with_disk = spec("n1");
        with_disk.disk = Some(vm::VmDisk {
            base: PathBuf::from("/nonexistent/disk.qcow2"),
            size_bytes: 1 << 30,
            overlay: PathBuf::from("/ignored"),
            kernel: PathBuf::from("/nonexistent/vmlinuz"),
            initrd: PathBuf::from("/nonexistent/initrd.img"),
            append: "root=/dev/vda rw".to_owned(),
        });
        let mut state = State::default();
        state.vms.insert(
            "n1".to_owned(),
            VmRecord {
                cluster: 999,
                pid,
                spec: with_disk,
            },
        );
        fs::write(
            dir.path().join(STATE_FILE),
            serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
        let mut agent = Agent::open(dir.path(), None).unwrap();
        assert!(agent.state.vms.is_empty());
        assert_eq!(agent.state.stopped.keys().collect::<Vec<_>>(), ["n1"]);
        let Reply::Inventory(inventory) = agent.handle(Request::Inventory) else {
            panic!("no inventory");
        };
        assert_eq!(
            inventory.stopped,
            [StoppedVm {
                name: "n1".to_owned(),
                cluster: 999,
                tap: "vt999x0".to_owned(),
                mac: net::node_mac(999, 0),
                overlay: dir.path().canonicalize().unwrap().join("n1.disk.qcow2"),
            }]
        );
        // Its disk is gone (it never existed here): a restart says so, and keeps the record.
        let Reply::Failed(failure) = agent.handle(Request::RestartVm {
            name: "n1".to_owned(),
        }) else {
            panic!("restarted without a disk");
        };
        assert_eq!(failure.kind, FailureKind::InvalidSpec);
        assert!(
            failure.message.contains("tap vt999x0 is not a port"),
            "{failure}"
        );
        assert!(agent.state.stopped.contains_key("n1"));
        let destroyed = agent.handle(Request::DestroyVm {
            name: "n1".to_owned(),
        });
        assert_eq!(destroyed, Reply::Done { changed: true });
        assert!(agent.state.stopped.is_empty());
        let saved: State =
            serde_json::from_slice(&fs::read(dir.path().join(STATE_FILE)).unwrap()).unwrap();
        assert!(saved.stopped.is_empty());
    }

    #[test]
    fn a_pid_counts_as_the_vm_only_while_it_is_that_qemu() {
        // This test process is alive but not QEMU (a reused pid looks like this).
        assert!(!qemu_alive(std::process::id(), "gone"));
        assert!(!qemu_alive(u32::MAX, "gone"));
        assert!(qemu_pids_using(Path::new("/nonexistent-state-dir")).is_empty());
    }

    #[test]
    fn corrupt_state_file_stops_the_agent() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), "{").unwrap();
        assert!(matches!(
            Agent::open(dir.path(), None),
            Err(Error::Json { .. })
        ));
    }

    #[test]
    fn operations_on_absent_vms_are_idempotent_or_precise() {
        let dir = tempfile::tempdir().unwrap();
        let (endpoint, key) = agent_at(dir.path());
        let mut client = AgentClient::connect(&endpoint, key).unwrap();
        assert!(!client.stop_vm("nothing").unwrap());
        assert!(!client.destroy_vm("nothing").unwrap());
        let err = client.suspend_vm("nothing").unwrap_err();
        assert!(
            matches!(&err, RpcError::Agent(f) if f.kind == FailureKind::NotFound),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the agent could not do it: no VM named nothing runs on this P-node"
        );
        let err = client.restart_vm("nothing").unwrap_err().to_string();
        assert!(
            err.ends_with("no VM named nothing runs on this P-node"),
            "{err}"
        );
        let err = client.start_vm(999, &spec("../x")).unwrap_err();
        assert!(
            matches!(&err, RpcError::Agent(f) if f.kind == FailureKind::InvalidSpec),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(err.contains("VM name \"../x\" must be"), "{err}");
        let mut multicast = spec("n0");
        multicast.mac = "01:00:5e:00:00:01".parse().unwrap();
        let err = client.start_vm(999, &multicast).unwrap_err().to_string();
        assert!(
            err.ends_with("VM n0: 01:00:5e:00:00:01 is not a unicast MAC address"),
            "{err}"
        );
        let err = client.start_vm(999, &spec("n0")).unwrap_err().to_string();
        assert!(
            err.contains("tap vt999x0 is not a port of cluster bridge vcbr999"),
            "{err}"
        );
        let inventory = client.inventory().unwrap();
        assert!(inventory.vms.is_empty());
        assert!(inventory.unknown_qemu.is_empty());
        // The connection survives failed operations.
        assert!(!client.stop_vm("nothing").unwrap());
    }

    fn gateway_spec(network_id: u32) -> GatewaySpec {
        GatewaySpec {
            network_id,
            netns: None,
            cluster_bridge: bridge_name(network_id),
            subnet: std::net::Ipv4Addr::new(10, 7, 0, 0),
            prefix: 24,
            outside: gateway::OutsideLeg {
                bridge: "extbr".to_owned(),
                address: std::net::Ipv4Addr::new(192, 0, 2, 7),
                prefix: 24,
                gateway: None,
            },
            nodes: vec![gateway::GatewayNode {
                hostname: "frontend".to_owned(),
                mac: net::node_mac(network_id, 0),
                ip: std::net::Ipv4Addr::new(10, 7, 0, 2),
            }],
            dns_servers: Vec::new(),
            pxe: None,
            kickstart_url: None,
            forwards: Vec::new(),
        }
    }

    #[test]
    fn gateway_operations_are_precise_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let (endpoint, key) = agent_at(dir.path());
        let mut client = AgentClient::connect(&endpoint, key).unwrap();
        // Nothing to remove (a network id no test uses).
        assert!(!client.remove_gateway(16_777_001).unwrap());
        let mut spec = gateway_spec(16_777_001);
        spec.nodes[0].ip = std::net::Ipv4Addr::new(10, 8, 0, 2);
        let err = client.ensure_gateway(&spec).unwrap_err();
        assert!(
            matches!(&err, RpcError::Agent(f) if f.kind == FailureKind::InvalidSpec),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(
            err.contains("node frontend: 10.8.0.2 is outside the cluster subnet 10.7.0.0/24"),
            "{err}"
        );
        // A refused spec is not recorded.
        let inventory = client.inventory().unwrap();
        assert!(inventory.gateways.is_empty() && inventory.unknown_gateways.is_empty());
        // A GW-node directory without a record is reported.
        fs::create_dir(dir.path().join("gw-16777002")).unwrap();
        fs::create_dir(dir.path().join("gw-junk")).unwrap();
        assert_eq!(client.inventory().unwrap().unknown_gateways, [16_777_002]);
        assert!(client.remove_gateway(16_777_002).unwrap());
        assert!(client.inventory().unwrap().unknown_gateways.is_empty());
    }

    #[test]
    fn failures_are_typed_by_what_went_wrong() {
        let kind = |e: Error| failure(&e).kind;
        assert_eq!(kind(Error::NoSuchVm("x".to_owned())), FailureKind::NotFound);
        assert_eq!(
            kind(Error::InUse {
                what: "cluster network 7".to_owned(),
                users: vec!["x".to_owned()],
            }),
            FailureKind::Busy
        );
        let failed = Error::Command {
            cmd: "ip link add vcbr7 type bridge".to_owned(),
            status: "exit status: 2".to_owned(),
            stderr: "RTNETLINK answers: File exists".to_owned(),
        };
        let message = failed.to_string();
        assert_eq!(
            failure(&failed),
            AgentFailure::new(
                FailureKind::Command {
                    command: "ip link add vcbr7 type bridge".to_owned()
                },
                message
            )
        );
        assert_eq!(kind(Error::Qmp("x".to_owned())), FailureKind::Qemu);
        let unreadable = serde_json::from_str::<u8>("x").unwrap_err();
        assert_eq!(
            kind(Error::Json {
                what: STATE_WHAT.to_owned(),
                source: unreadable,
            }),
            FailureKind::State
        );
    }

    #[test]
    fn an_older_agents_failure_still_reads() {
        // An agent from before the failure kinds answers the message alone.
        let reply: Reply = serde_json::from_str(r#"{"failed":"no VM named x"}"#).unwrap();
        assert_eq!(
            reply,
            Reply::Failed(AgentFailure::new(FailureKind::Other, "no VM named x"))
        );
        let dir = tempfile::tempdir().unwrap();
        let key = Key::new(vec![7; rpc::MIN_KEY_LEN]).unwrap();
        let endpoint = Endpoint::Unix(dir.path().join("agent.sock"));
        let listener = endpoint.bind().unwrap();
        let server_key = key.clone();
        thread::spawn(move || {
            rpc::serve(
                &listener,
                &server_key,
                |_: serde_json::Value| serde_json::json!({ "failed": "no VM named x runs on this P-node" }),
            )
        });
        let mut client = AgentClient::connect(&endpoint, key).unwrap();
        let err = client.suspend_vm("x").unwrap_err();
        assert!(
            matches!(&err, RpcError::Agent(f) if f.kind == FailureKind::Other),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the agent could not do it: no VM named x runs on this P-node"
        );
        // And the new form, kinds and all.
        let failed = Reply::Failed(AgentFailure::new(FailureKind::Busy, "in use"));
        let json = serde_json::to_string(&failed).unwrap();
        assert_eq!(json, r#"{"failed":{"kind":"busy","message":"in use"}}"#);
        assert_eq!(serde_json::from_str::<Reply>(&json).unwrap(), failed);
    }

    #[test]
    fn state_files_of_older_agents_load() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), r#"{"vms":{}}"#).unwrap();
        let agent = Agent::open(dir.path(), None).unwrap();
        assert!(agent.state.gateways.is_empty());
        assert!(agent.state.stopped.is_empty());
    }

    #[test]
    fn requests_have_a_stable_wire_form() {
        let json = serde_json::to_string(&Request::SuspendVm {
            name: "c100-n1".to_owned(),
        })
        .unwrap();
        assert_eq!(json, r#"{"suspend_vm":{"name":"c100-n1"}}"#);
        assert_eq!(
            serde_json::to_string(&Request::Inventory).unwrap(),
            r#""inventory""#
        );
        let start = Request::StartVm {
            cluster: 100,
            spec: spec("n0"),
        };
        let json = serde_json::to_string(&start).unwrap();
        // MACs travel (and are kept in state files) as text.
        assert!(json.contains(r#""mac":"52:54:00:03:e7:00""#), "{json}");
        let back: Request = serde_json::from_str(&json).unwrap();
        assert_eq!(back, start);
        assert_eq!(
            serde_json::to_string(&Request::RemoveGateway { network_id: 100 }).unwrap(),
            r#"{"remove_gateway":{"network_id":100}}"#
        );
        let ensure = Request::EnsureGateway(gateway_spec(100));
        let json = serde_json::to_string(&ensure).unwrap();
        assert!(
            json.starts_with(r#"{"ensure_gateway":{"network_id":100,"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), ensure);
    }

    #[test]
    fn a_gateway_is_running_only_with_namespace_nat_and_dnsmasq() {
        let mut g = gateway::GatewayStatus {
            network_id: 7,
            netns: gateway::netns_name(7),
            netns_exists: true,
            legs: Vec::new(),
            default_via: None,
            ip_forward: true,
            nft_table: true,
            dnsmasq_pid: Some(42),
            stray_dnsmasq: Vec::new(),
            files: Vec::new(),
        };
        assert_eq!(gateway_state(&g), "running");
        g.dnsmasq_pid = None;
        assert_eq!(gateway_state(&g), "degraded: no dnsmasq");
        g.netns_exists = false;
        g.nft_table = false;
        assert_eq!(
            gateway_state(&g),
            "degraded: no namespace, no NAT table, no dnsmasq"
        );
    }
}
