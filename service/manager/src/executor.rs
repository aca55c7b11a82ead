//! What carries deployments out on a site, seen from the manager: an [`Executor`] builds and
//! takes down what a System's allocation says and reports what happened as [`Event`]s through
//! its [`Reporter`]; it never changes a deployment itself. The manager decides what the site
//! should hold ([`Reporter::live`]) and what is left over ([`orphans`]); the executor acts.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;
use vcds_model::{system_of_host, Event, Lifecycle, Phase, Resource};

use crate::registry::Registry;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A failure of the site, in its own words.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ExecError(pub Box<dyn std::error::Error + Send + Sync>);

impl ExecError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> ExecError {
        ExecError(Box::new(e))
    }
}

/// A System's deployment as the site needs it.
#[derive(Debug, Clone)]
pub struct Job {
    pub system: String,
    pub lifecycle: Lifecycle,
    pub phase: Option<Phase>,
    pub spec: Option<Arc<vcds_cdl::cluster::ClusterSpec>>,
    pub allocation: Option<Arc<vcds_placement::Allocation>>,
    /// The Debian packages each appliance of the cluster installs, by appliance (what its
    /// kickstart's `%packages` names).
    pub packages: BTreeMap<String, Vec<String>>,
}

impl Job {
    /// The job of System `r`, without its packages (see `Manager::job_of`).
    pub fn of(r: &Resource) -> Option<Job> {
        let d = r.deployment()?;
        Some(Job {
            system: r.id.clone(),
            lifecycle: d.lifecycle,
            phase: d.phase,
            spec: d.spec.as_deref().cloned().map(Arc::new),
            allocation: d.allocation.as_deref().cloned().map(Arc::new),
            packages: BTreeMap::new(),
        })
    }
}

/// The executor's line to the manager: what happened, and what the site should hold.
#[derive(Clone)]
pub struct Reporter {
    pub(crate) tx: mpsc::UnboundedSender<(String, Event)>,
    pub(crate) registry: Arc<Registry>,
}

/// The Systems the site should hold now, by id, with their network ids.
pub type Live = BTreeMap<String, u32>;

impl Reporter {
    /// Reports `event` for System `system`; the manager applies it if the deployment may take
    /// it (an event that arrives after, say, a Terminate is dropped).
    pub fn report(&self, system: &str, event: Event) {
        // The manager outlives its executors; a closed channel means it is shutting down.
        let _ = self.tx.send((system.to_owned(), event));
    }

    /// Where System `system`'s deployment is now; `None` once it is gone.
    pub fn state_of(&self, system: &str) -> Option<(Lifecycle, Option<Phase>)> {
        let r = self.registry.get(system)?;
        let d = r.deployment()?;
        Some((d.lifecycle, d.phase))
    }

    /// The Systems whose allocation the site should hold.
    pub fn live(&self) -> Live {
        self.registry
            .systems()
            .iter()
            .filter_map(|r| {
                let d = r.deployment()?;
                if !d.site_holds() {
                    return None;
                }
                Some((r.id.clone(), d.allocation.as_ref()?.network_id.id))
            })
            .collect()
    }
}

/// Something a site holds for a cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SiteObject {
    /// A VM, named by `vcds_model::host_name`, on the cluster network `network_id`;
    /// `stopped`: its QEMU ended, its disk stays.
    Vm {
        pnode: String,
        name: String,
        network_id: u32,
        stopped: bool,
    },
    /// A cluster's GW-node.
    Gateway { pnode: String, network_id: u32 },
    /// A cluster network on a P-node (bridge, VXLAN device) and the taps on it.
    Network {
        pnode: String,
        network_id: u32,
        taps: Vec<String>,
    },
}

/// What the site holds that no System in `live` owns: a VM of another System, or on another
/// network than its System's; a GW-node or network of a network id nobody holds.
pub fn orphans(live: &Live, held: &[SiteObject]) -> Vec<SiteObject> {
    let ids: BTreeSet<u32> = live.values().copied().collect();
    held.iter()
        .filter(|o| match o {
            SiteObject::Vm {
                name, network_id, ..
            } => system_of_host(name).and_then(|s| live.get(s)) != Some(network_id),
            SiteObject::Gateway { network_id, .. } | SiteObject::Network { network_id, .. } => {
                !ids.contains(network_id)
            }
        })
        .cloned()
        .collect()
}

/// The stopped VMs of live Systems: they boot from their disks again.
pub fn restarts(live: &Live, held: &[SiteObject]) -> Vec<SiteObject> {
    let gone = orphans(live, held);
    held.iter()
        .filter(|o| matches!(o, SiteObject::Vm { stopped: true, .. }) && !gone.contains(o))
        .cloned()
        .collect()
}

/// One reconcile pass: what it removed, and each P-node's monitoring port (`host:port`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub removed: usize,
    pub gmond: BTreeMap<String, String>,
}

/// Where the cluster's user logs in from outside: the address and port that reach the
/// frontend's sshd (the GW-node forwards it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub host: std::net::IpAddr,
    pub port: u16,
}

pub trait Executor: Send + Sync + 'static {
    /// Where the user of `job`'s cluster reaches its frontend's sshd, where the site forwards
    /// one; `None` when it gives no such access (the simulated site).
    fn access(&self, _job: &Job) -> Option<Access> {
        None
    }

    /// Why this site cannot provision what `spec` asks for (naming the descriptor's field), if
    /// it cannot: asked at Initialize, before anything is reserved.
    fn refuses(&self, _spec: &vcds_cdl::cluster::ClusterSpec) -> Option<String> {
        None
    }

    /// The one address the install requests of the nodes of a cluster allocated `allocation`
    /// come from (its GW-node's outside address, say), when the site knows it: no one else may
    /// ask for their kickstarts.
    fn installs_from(&self, _allocation: &vcds_placement::Allocation) -> Option<std::net::IpAddr> {
        None
    }

    /// The (vCPUs, memory MiB) a VM of a node that booked `booked` gets, when the site runs
    /// VMs (a site setting may cap them).
    fn vm_size(&self, _booked: vcds_placement::Resources) -> Option<(u32, u32)> {
        None
    }

    /// Carries `job` on from its phase: a running deployment through provisioning → installing
    /// → ready, a terminated one from tearing down to released, reporting each step (or the
    /// failure) through `reporter`. Does nothing for a phase with nothing for the site to do.
    /// The manager has registered the nodes as installing hosts before provisioning.
    fn carry_on(self: Arc<Self>, job: Job, reporter: Reporter);

    /// Pauses (Suspend) or continues (Resume) the nodes of `job`, before the change shows.
    fn pause(self: Arc<Self>, job: Job, pause: bool) -> BoxFuture<'static, Result<(), ExecError>>;

    /// Removes what the site holds that the Systems `reporter.live()` gives at the time of the
    /// pass do not own (see [`orphans`]); no deployment interleaves with the pass.
    fn reconcile(
        self: Arc<Self>,
        reporter: Reporter,
    ) -> BoxFuture<'static, Result<Reconciled, ExecError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_are_what_no_live_system_owns() {
        let live: Live = [("s1".to_string(), 7)].into_iter().collect();
        let vm = |name: &str, network_id| SiteObject::Vm {
            pnode: "p1".into(),
            name: name.into(),
            network_id,
            stopped: false,
        };
        let held = vec![
            vm("frontend.s1", 7),
            vm("compute-0-0.s1", 8),
            vm("frontend.s2", 7),
            vm("stray", 7),
            SiteObject::Gateway {
                pnode: "p1".into(),
                network_id: 7,
            },
            SiteObject::Gateway {
                pnode: "p2".into(),
                network_id: 9,
            },
            SiteObject::Network {
                pnode: "p2".into(),
                network_id: 9,
                taps: vec!["vt9-0".into()],
            },
        ];
        let gone = orphans(&live, &held);
        assert_eq!(
            gone,
            vec![
                vm("compute-0-0.s1", 8),
                vm("frontend.s2", 7),
                vm("stray", 7),
                held[5].clone(),
                held[6].clone(),
            ]
        );
        assert_eq!(orphans(&Live::new(), &held).len(), held.len());
        let stopped = |name: &str| SiteObject::Vm {
            pnode: "p2".into(),
            name: name.into(),
            network_id: 7,
            stopped: true,
        };
        let held = vec![
            stopped("compute-0-1.s1"),
            stopped("frontend.s9"),
            vm("frontend.s1", 7),
        ];
        assert_eq!(restarts(&live, &held), vec![stopped("compute-0-1.s1")]);
        assert_eq!(orphans(&live, &held), vec![stopped("frontend.s9")]);
    }
}
