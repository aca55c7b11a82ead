//! Between a System and the site's reservation book: the resolved cluster spec becomes a
//! placement request (pure: [`cluster_request`]); the reservation is made at Initialize,
//! extended with SetTerminationTime, and released at Terminate, Destroy, failure or its end.
//! Book calls block on the store, so they run on the blocking pool.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use vcds_cdl::cluster::{ClusterSpec, Isolation, Scheduler, Subnet};
use vcds_install::{
    Host, KickstartError, CLUSTER_KEY, CLUSTER_KEY_PUB, HOST_KEY, HOST_KEY_PUB, INSTALLS_FROM,
};
use vcds_placement::{
    Allocation, ClusterRequest, Ipv4Net, NetworkKind, Resources, Role, SiteConfig, Window,
};
use vcds_rolls::Attributes;
use vcds_rolls::RollError;
use vcds_store::{BookError, ReservationBook};

use crate::executor::Job;
use crate::secrets::{munge_key, ssh_key_pair, KeyPair};
use crate::{Manager, ManagerError};

/// The placement request for System `id`'s cluster, with "now" taken as `now`.
pub fn cluster_request(
    id: &str,
    spec: &ClusterSpec,
    now: DateTime<Utc>,
    config: &SiteConfig,
) -> Result<ClusterRequest, ManagerError> {
    let (start, end) = spec.reservation.window(now).ok_or_else(|| {
        ManagerError::BadArgument("the reservation's end is beyond the representable time".into())
    })?;
    let offered = config.network_pool.kind;
    let wanted = match spec.network.isolation {
        Isolation::Vxlan => NetworkKind::Vxlan,
        Isolation::Vlan => NetworkKind::Vlan,
    };
    if wanted != offered {
        return Err(ManagerError::BadArgument(format!(
            "the descriptor asks for {} isolation; this site's network pool gives {} ids",
            spec.network.isolation.as_str(),
            kind_name(offered)
        )));
    }
    if spec.frontend.count != 1 {
        return Err(ManagerError::BadArgument(format!(
            "a virtual cluster has exactly one frontend; the descriptor asks for {}",
            spec.frontend.count
        )));
    }
    let shape = |g: &vcds_cdl::cluster::NodeGroup| {
        Resources::new(g.cpus, u64::from(g.memory_mib), u64::from(g.disk_gib))
    };
    let mut request = ClusterRequest::new(
        id,
        Window::new(start.timestamp(), end.timestamp()),
        shape(&spec.frontend),
        shape(&spec.compute),
        spec.compute.count,
    );
    match spec.network.subnet {
        Subnet::PrefixLength(p) => request.prefix_len = Some(p),
        Subnet::Cidr { network, prefix } => request.subnet = Some(Ipv4Net::new(network, prefix)),
    }
    Ok(request)
}

/// A cluster's keys: its user's, and each node's host key (in the allocation's node order).
struct ClusterKeys {
    user: KeyPair,
    hosts: Vec<KeyPair>,
    /// The munge key (base64), for a cluster whose scheduler is Slurm.
    munge: Option<String>,
}

/// The roll that carries `vc:scheduler slurm`.
const SLURM_ROLL: &str = "vcds-slurm";
/// The cluster's munge key (base64): in its nodes' kickstarts only.
pub const MUNGE_KEY: &str = "vcds_munge_key_b64";

/// The rolls a cluster of `spec` installs from: those it names, with its scheduler's roll (none
/// named: the whole catalog, which holds it).
fn rolls_of(spec: &ClusterSpec) -> Vec<String> {
    let mut rolls: Vec<String> = spec.rolls.iter().map(|r| r.name.clone()).collect();
    if !rolls.is_empty()
        && spec.scheduler == Scheduler::Slurm
        && !rolls.iter().any(|r| r == SLURM_ROLL)
    {
        rolls.push(SLURM_ROLL.to_owned());
    }
    rolls
}

/// Slurm's `NodeName` lines for the cluster's compute nodes: their vCPUs and memory as the site
/// sizes their VMs (`vm_size`, else as booked), the memory a tenth under it for what the kernel
/// keeps (slurmd refuses a node with less than its RealMemory).
fn slurm_nodes(a: &Allocation, vm_size: &dyn Fn(Resources) -> Option<(u32, u32)>) -> String {
    a.nodes
        .iter()
        .filter(|n| n.role == Role::Compute)
        .map(|n| {
            let booked = (
                n.resources.cpu,
                u32::try_from(n.resources.memory_mib).unwrap_or(u32::MAX),
            );
            let (cpus, memory) = vm_size(n.resources).unwrap_or(booked);
            format!(
                "NodeName={} CPUs={cpus} RealMemory={}\n",
                n.name,
                memory / 10 * 9
            )
        })
        .collect()
}

/// What every node of the cluster shares, as Rocks attributes: its private network as the
/// allocation placed it (the site's own `Kickstart_Private*`, over the descriptor's), every
/// node by name (`/etc/hosts`, the SSH known hosts), and the login.
fn cluster_attributes(spec: &ClusterSpec, a: &Allocation, keys: &ClusterKeys) -> Attributes {
    let domain = "local";
    let frontend = a.nodes.first();
    let frontend_ip = frontend.map_or(a.gateway.ip, |n| n.ip).to_string();
    let prefix = a.subnet.prefix_len;
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let network = std::net::Ipv4Addr::from(u32::from(a.subnet.addr) & mask);
    let broadcast = std::net::Ipv4Addr::from(u32::from(network) | !mask);
    let gateway = a.gateway.ip.to_string();
    let hosts: String = a
        .nodes
        .iter()
        .map(|n| format!("{}\t{}.{domain} {}\n", n.ip, n.name, n.name))
        .collect();
    let known: String = a
        .nodes
        .iter()
        .zip(&keys.hosts)
        .map(|(n, k)| {
            format!(
                "{},{}.{domain},{} {}\n",
                n.name,
                n.name,
                n.ip,
                key_only(&k.public)
            )
        })
        .collect();
    let authorized: String = spec
        .login
        .authorized_keys
        .iter()
        .cloned()
        .chain(std::iter::once(keys.user.public.clone()))
        .map(|k| k + "\n")
        .collect();
    [
        ("Info_ClusterName", spec.name.clone()),
        ("Kickstart_PrivateAddress", frontend_ip.clone()),
        ("Kickstart_PrivateKickstartHost", frontend_ip.clone()),
        ("Kickstart_PrivateNTPHost", frontend_ip.clone()),
        ("Kickstart_PrivateSyslogHost", frontend_ip),
        (
            "Kickstart_PrivateHostname",
            frontend.map_or("frontend", |n| n.name.as_str()).to_string(),
        ),
        ("Kickstart_PrivateDNSDomain", domain.to_string()),
        ("Kickstart_PrivateGateway", gateway.clone()),
        ("Kickstart_PrivateDNSServers", gateway),
        ("Kickstart_PrivateNetwork", network.to_string()),
        (
            "Kickstart_PrivateNetmask",
            std::net::Ipv4Addr::from(mask).to_string(),
        ),
        ("Kickstart_PrivateNetmaskCIDR", prefix.to_string()),
        ("Kickstart_PrivateBroadcast", broadcast.to_string()),
        ("vcds_hosts_b64", b64(&hosts)),
        ("vcds_known_hosts_b64", b64(&known)),
        ("vcds_user", spec.login.user.clone()),
        ("vcds_authorized_keys_b64", b64(&authorized)),
        (CLUSTER_KEY, b64(&keys.user.private)),
        (CLUSTER_KEY_PUB, keys.user.public.clone()),
    ]
    .into_iter()
    .chain(keys.munge.clone().map(|key| (MUNGE_KEY, key)))
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A file's text as one line, as attribute values are (the roll's `%post` decodes it).
fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn unb64(text: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// `TYPE BASE64` of a public key line, without its comment.
fn key_only(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Node `node` of System `id` as a host that may install (no MAC or address yet).
/// The host attribute naming the descriptor's `vc:installer`.
pub const INSTALLER_ATTRIBUTE: &str = "vcds_installer";

fn host_of(id: &str, spec: &ClusterSpec, node: &str, role: Role) -> Host {
    let appliance = match role {
        Role::Frontend => &spec.frontend.appliance,
        Role::Compute => &spec.compute.appliance,
    };
    let mut attributes: Attributes = spec
        .attributes
        .iter()
        .map(|a| (a.key.clone(), a.value.clone()))
        .collect();
    attributes.insert("hostname".into(), node.to_string());
    attributes.insert("os".into(), spec.os.name.clone());
    // The rolls' graphs add what an installer needs (cloud-init for `image`) and what the
    // scheduler is made of by these.
    attributes.insert(INSTALLER_ATTRIBUTE.into(), spec.installer.as_str().into());
    attributes.insert("vcds_scheduler".into(), spec.scheduler.as_str().into());
    Host {
        name: vcds_model::host_name(node, id),
        mac: None,
        ip: None,
        cluster: id.to_string(),
        appliance: appliance.clone(),
        attributes,
    }
}

pub fn kind_name(kind: NetworkKind) -> &'static str {
    match kind {
        NetworkKind::Vlan => "802.1Q VLAN",
        NetworkKind::Vxlan => "VXLAN",
    }
}

impl Manager {
    /// Runs `f` on the reservation book, on the blocking pool.
    pub async fn with_book<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReservationBook) -> Result<T, BookError> + Send + 'static,
    ) -> Result<T, ManagerError> {
        let book = self.book.clone();
        Ok(vcds_store::blocking::run(move || f(&book)).await??)
    }

    /// Reserves for `request`, or only checks when `dry_run` (Initialize's validate-only).
    pub(crate) async fn reserve(
        &self,
        request: ClusterRequest,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Allocation, ManagerError> {
        self.with_book(move |book| {
            if dry_run {
                book.check(&request, now.timestamp())
            } else {
                book.admit(&request, now.timestamp())
            }
        })
        .await
    }

    /// Ends System `id`'s reservation now, if it holds one, and forgets its nodes as installing
    /// hosts (their MACs and addresses may go to the next cluster). Errors are logged, since
    /// whatever asked (Terminate, Destroy, a failure, the end) has happened regardless.
    pub(crate) async fn release(&self, id: &str, reason: &'static str) {
        let owned = id.to_string();
        let now = Utc::now().timestamp();
        match self
            .with_book(move |book| book.release(&owned, now, reason))
            .await
        {
            Ok(Some(_)) => {
                tracing::info!(id, reason, "reservation released");
                self.reconciler.notify_one();
            }
            Ok(None) => {}
            Err(e) => tracing::error!(id, error = %e, "could not release the reservation"),
        }
        for row in self.install.node_table(id) {
            if let Err(e) = self.install.remove_host(&row.host).await {
                tracing::error!(id, host = %row.host, error = %e, "could not remove an installing host");
            }
        }
        if self.install.enabled().contains_key(id) {
            if let Err(e) = self.install.enable_rolls(id, Vec::new()).await {
                tracing::error!(id, error = %e, "could not forget the cluster's rolls");
            }
        }
    }

    /// Releases reservations whose System is gone: a manager killed between removing a
    /// System and releasing its reservation leaves one behind.
    pub(crate) async fn release_orphan_reservations(&self) -> Result<usize, ManagerError> {
        let held: Vec<String> = self
            .with_book(|book| {
                book.read(|s| s.reservations().map(|r| r.reservation.clone()).collect())
            })
            .await?;
        let mut released = 0;
        for id in held.iter().filter(|id| self.registry.get(id).is_none()) {
            tracing::warn!(id, "a reservation outlived its System: releasing it");
            self.release(id, "its System is gone").await;
            released += 1;
        }
        Ok(released)
    }

    /// Registers every node of the admitted cluster as a host that may install: its MAC and
    /// address, appliance, and the descriptor's Rocks attributes with the node's own host name
    /// and what the site decides for the cluster (its network, the hosts, the login, the SSH
    /// keys); the rolls the descriptor names are enabled for the cluster. Keys are made once:
    /// registering again (a restart while provisioning) keeps them.
    pub(crate) async fn register_hosts(&self, job: &Job) -> Result<(), ManagerError> {
        let (Some(spec), Some(allocation)) = (&job.spec, &job.allocation) else {
            return Ok(());
        };
        let unavailable =
            |e: vcds_install::KickstartError| ManagerError::Unavailable(e.to_string());
        let names = rolls_of(spec);
        if !names.is_empty() {
            self.install
                .enable_rolls(&job.system, names)
                .await
                .map_err(unavailable)?;
        }
        let keys = self.cluster_keys(&job.system, spec, allocation)?;
        let mut shared = cluster_attributes(spec, allocation, &keys);
        if let Some(from) = self.executor.installs_from(allocation) {
            shared.insert(INSTALLS_FROM.into(), from.to_string());
        }
        if spec.scheduler == Scheduler::Slurm {
            let nodes = slurm_nodes(allocation, &|booked| self.executor.vm_size(booked));
            shared.insert("vcds_slurm_nodes_b64".into(), b64(&nodes));
        }
        for (node, host_key) in allocation.nodes.iter().zip(&keys.hosts) {
            let mut host = Host {
                mac: node.macs.first().copied(),
                ip: Some(IpAddr::V4(node.ip)),
                ..host_of(&job.system, spec, &node.name, node.role)
            };
            host.attributes.extend(shared.clone());
            host.attributes
                .insert(HOST_KEY.into(), b64(&host_key.private));
            host.attributes
                .insert(HOST_KEY_PUB.into(), host_key.public.clone());
            self.install.register_host(host).await.map_err(|e| {
                ManagerError::Unavailable(format!("registering node {}: {e}", node.name))
            })?;
        }
        Ok(())
    }

    /// The cluster's SSH keys: those of its earlier registration, else new ones.
    fn cluster_keys(
        &self,
        id: &str,
        spec: &ClusterSpec,
        allocation: &Allocation,
    ) -> Result<ClusterKeys, ManagerError> {
        let registered = |node: &str| self.install.host(&vcds_model::host_name(node, id));
        let kept = |node: &str, private: &str, public: &str| {
            let host = registered(node)?;
            Some(KeyPair {
                private: unb64(host.attributes.get(private)?)?,
                public: host.attributes.get(public)?.clone(),
            })
        };
        let made = |comment: String| {
            ssh_key_pair(&comment).map_err(|e| ManagerError::Unavailable(e.to_string()))
        };
        let first = allocation
            .nodes
            .first()
            .map_or("frontend", |n| n.name.as_str());
        let user = match kept(first, CLUSTER_KEY, CLUSTER_KEY_PUB) {
            Some(k) => k,
            None => made(format!("cluster {id}"))?,
        };
        let hosts = allocation
            .nodes
            .iter()
            .map(|n| match kept(&n.name, HOST_KEY, HOST_KEY_PUB) {
                Some(k) => Ok(k),
                None => made(vcds_model::host_name(&n.name, id)),
            })
            .collect::<Result<_, _>>()?;
        let munge = (spec.scheduler == Scheduler::Slurm).then(|| {
            registered(first)
                .and_then(|h| h.attributes.get(MUNGE_KEY).cloned())
                .unwrap_or_else(|| {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.encode(munge_key())
                })
        });
        Ok(ClusterKeys { user, hosts, munge })
    }

    /// Whether the site can install `spec`'s nodes: the rolls it names are in the catalog,
    /// its appliances are defined by them, and every package they install is held by the
    /// package sources. Asked before anything is reserved.
    pub(crate) fn check_installable(
        &self,
        id: &str,
        spec: &ClusterSpec,
    ) -> Result<(), ManagerError> {
        if let Some(why) = spec.unprovisioned() {
            return Err(ManagerError::BadArgument(why));
        }
        if let Some(why) = self.executor.refuses(spec) {
            return Err(ManagerError::BadArgument(why));
        }
        self.packages_of(id, spec).map(|_| ())
    }

    /// The Debian packages each of `spec`'s appliances installs, by appliance.
    pub(crate) fn packages_of(
        &self,
        id: &str,
        spec: &ClusterSpec,
    ) -> Result<BTreeMap<String, Vec<String>>, ManagerError> {
        let mut hosts = vec![host_of(id, spec, "frontend", Role::Frontend)];
        if spec.compute.count > 0 {
            hosts.push(host_of(id, spec, "compute-0-0", Role::Compute));
        }
        let rolls = rolls_of(spec);
        self.install
            .check_install(&rolls, &hosts)
            .map(|by_appliance| {
                by_appliance
                    .into_iter()
                    .map(|(appliance, packages)| {
                        (appliance, packages.names().map(str::to_string).collect())
                    })
                    .collect()
            })
            .map_err(|e| match e {
                KickstartError::Roll(RollError::Unavailable(u)) => {
                    ManagerError::Packages(u.to_string())
                }
                KickstartError::Roll(RollError::UnknownAppliance { name, known }) => {
                    ManagerError::BadArgument(format!(
                        "no enabled roll defines appliance {name:?} (the rolls define {known})"
                    ))
                }
                KickstartError::Roll(RollError::NoRolls) => ManagerError::BadArgument(
                    "this site's roll catalog is empty: no appliance can be installed".into(),
                ),
                KickstartError::NotFound(why) => ManagerError::BadArgument(why),
                e => ManagerError::Unavailable(e.to_string()),
            })
    }

    /// Moves the end of System `id`'s reservation to `end`.
    pub(crate) async fn extend(&self, id: &str, end: DateTime<Utc>) -> Result<(), ManagerError> {
        let owned = id.to_string();
        let now = Utc::now().timestamp();
        self.with_book(move |book| book.extend(&owned, end.timestamp(), now))
            .await
    }
}
