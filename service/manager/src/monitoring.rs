//! The site's monitoring data as the manager holds it: the last Ganglia poll of every P-node and
//! GW-node gmond folded into a [`vcds_monitor::summary::Monitor`] (last-known documents plus
//! bounded history). Readers (resource properties, `/metrics`, the web UI) take a snapshot under
//! a read lock; only the poll loop writes.
//!
//! The poll loop ([`run_poller`]) runs on a thread of its own with its own runtime, so parsing a
//! thousand hosts' XML never competes with request handlers, the sweeper or the reservation
//! clock. After each cycle it works out every System's node and cluster figures once (virtual
//! nodes are found by their Ganglia cluster, named by the System's network id), keeps them for
//! the resource properties `vcds:NodeMetrics` and `vcds:ClusterMetrics`, and publishes a
//! [`DomainEvent::MetricsChanged`] when a node's monitored state (up, stale, running,
//! paused…) changes — not on every new load figure.

pub mod metrics;
pub mod sim;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vcds_monitor::export::vm_cluster_name;
use vcds_monitor::history::{History, Sample};
use vcds_monitor::summary::{cluster_summaries, HostSummary, Monitor, DEFAULT_TRACKED};
use vcds_monitor::PollConfig;
use vcds_placement::Allocation;

use crate::events::DomainEvent;
use crate::Manager;

pub use metrics::{ClusterMetrics, NodeMetrics, SystemMetrics};

/// Samples kept per (host, metric) series, and the most series kept.
const SAMPLES_PER_SERIES: usize = 240;
const MAX_SERIES: usize = 200_000;

/// What `vcds serve` is told about monitoring.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// gmond endpoints (`host:port`) polled from the start; more may be added at run time
    /// ([`Monitoring::add_endpoint`]).
    pub gmond: Vec<String>,
    /// Time from the start of one poll cycle to the start of the next.
    pub interval: Duration,
    pub poll: PollConfig,
    /// Serve synthetic gmond XML for the simulated site's P-nodes and virtual nodes on
    /// 127.0.0.1 and poll it like any gmond (`--site sim`).
    pub simulate: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            gmond: Vec::new(),
            interval: Duration::from_secs(5),
            poll: PollConfig {
                connect_timeout: Duration::from_secs(1),
                read_timeout: Duration::from_secs(2),
                ..PollConfig::default()
            },
            simulate: false,
        }
    }
}

/// How the poll loop is doing, for `/metrics` and the UI.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollFigures {
    pub cycles: u64,
    pub last_cycle: Duration,
    pub endpoints: usize,
    pub endpoints_failed: usize,
    pub hosts: usize,
    pub hosts_stale: usize,
    /// Samples the history refused because it holds as many series as it may.
    pub history_refused: u64,
}

pub struct Monitoring {
    monitor: RwLock<Monitor>,
    config: MonitorConfig,
    endpoints: RwLock<Vec<String>>,
    figures: Mutex<PollFigures>,
    systems: RwLock<HashMap<String, Arc<SystemMetrics>>>,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring::new(MonitorConfig::default())
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Monitoring {
    pub fn new(config: MonitorConfig) -> Monitoring {
        Monitoring {
            monitor: RwLock::new(Monitor::new(
                History::new(SAMPLES_PER_SERIES, MAX_SERIES),
                DEFAULT_TRACKED,
            )),
            endpoints: RwLock::new(config.gmond.clone()),
            config,
            figures: Mutex::new(PollFigures::default()),
            systems: RwLock::new(HashMap::new()),
        }
    }

    /// Every known host (P-nodes, GW-nodes, virtual nodes), stale ones with the reason.
    pub fn host_summaries(&self) -> Vec<HostSummary> {
        self.read(|m| m.host_summaries())
    }

    /// One host's recorded samples of one metric, oldest first.
    pub fn series(&self, host: &str, metric: &str) -> Vec<Sample> {
        self.read(|m| m.history().series(host, metric).copied().collect())
    }

    /// Folds one poll cycle in (the poll loop's only entry).
    pub fn apply(&self, reports: Vec<vcds_monitor::EndpointReport>, now_unix: u64) {
        write(&self.monitor).apply(reports, now_unix);
    }

    fn read<T>(&self, f: impl FnOnce(&Monitor) -> T) -> T {
        f(&read(&self.monitor))
    }

    /// The gmond endpoints the next cycle polls.
    pub fn endpoints(&self) -> Vec<String> {
        read(&self.endpoints).clone()
    }

    /// Adds a gmond endpoint (a local-site agent's port, a GW-node's gmond) to the polled list;
    /// false when it is already there.
    pub fn add_endpoint(&self, endpoint: impl Into<String>) -> bool {
        let endpoint = endpoint.into();
        let mut endpoints = write(&self.endpoints);
        if endpoints.contains(&endpoint) {
            return false;
        }
        endpoints.push(endpoint);
        true
    }

    /// Stops polling an endpoint; its hosts keep their last data, marked stale from then on
    /// only if another endpoint does not report them.
    pub fn remove_endpoint(&self, endpoint: &str) -> bool {
        let mut endpoints = write(&self.endpoints);
        let before = endpoints.len();
        endpoints.retain(|e| e != endpoint);
        endpoints.len() != before
    }

    pub fn figures(&self) -> PollFigures {
        self.figures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// System `id`'s monitoring properties as of the last cycle (none before its nodes report).
    pub fn system(&self, id: &str) -> Option<Arc<SystemMetrics>> {
        read(&self.systems).get(id).cloned()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Starts the poll loop on a thread of its own ("vcds-poller"); with `simulate`, also the
/// simulated site's gmond listeners on that thread's runtime. The thread ends once the state
/// is dropped.
pub fn run_poller(state: &Arc<Manager>) -> std::io::Result<()> {
    let weak = Arc::downgrade(state);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("vcds-poller".into())
        .spawn(move || rt.block_on(poll_loop(weak)))?;
    Ok(())
}

async fn poll_loop(weak: Weak<Manager>) {
    let Some(config) = weak.upgrade().map(|s| s.monitoring.config.clone()) else {
        return;
    };
    if config.simulate {
        match sim::start(weak.clone()).await {
            Ok(endpoints) => {
                if let Some(state) = weak.upgrade() {
                    for e in endpoints {
                        state.monitoring.add_endpoint(e);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "the simulated site's gmond ports did not start"),
        }
    }
    loop {
        let started = Instant::now();
        let Some(endpoints) = weak.upgrade().map(|s| s.monitoring.endpoints()) else {
            return;
        };
        // The state is not held across the cycle, so dropping it ends the loop.
        let reports = vcds_monitor::poll_cycle(&endpoints, &config.poll).await;
        let Some(state) = weak.upgrade() else { return };
        let failed = reports.iter().filter(|r| r.result.is_err()).count();
        for r in &reports {
            if let Err(e) = &r.result {
                tracing::debug!(endpoint = %r.endpoint, error = %e, "gmond poll failed");
            }
        }
        state.monitoring.apply(reports, unix_now());
        let hosts = state.monitoring.host_summaries();
        refresh_systems(&state, &hosts);
        let took = started.elapsed();
        {
            let mut f = state
                .monitoring
                .figures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *f = PollFigures {
                cycles: f.cycles + 1,
                last_cycle: took,
                endpoints: endpoints.len(),
                endpoints_failed: failed,
                hosts: hosts.len(),
                hosts_stale: hosts.iter().filter(|h| !h.is_up()).count(),
                history_refused: state.monitoring.read(|m| m.history().refused()),
            };
        }
        drop(state);
        tokio::time::sleep(
            config
                .interval
                .saturating_sub(took)
                .max(Duration::from_millis(10)),
        )
        .await;
    }
}

/// Works out every deployed System's monitoring properties from `hosts` and announces the
/// Systems whose node states changed.
pub fn refresh_systems(state: &Manager, hosts: &[HostSummary]) {
    let mut by_cluster: HashMap<&str, Vec<&HostSummary>> = HashMap::new();
    for h in hosts {
        by_cluster.entry(h.cluster.as_str()).or_default().push(h);
    }
    let mut fresh = HashMap::new();
    let mut changed = Vec::new();
    for r in state.registry.systems() {
        let Some(d) = r.deployment() else { continue };
        let (Some(allocation), true) =
            (&d.allocation, d.phase.is_some_and(|p| p.nodes_may_exist()))
        else {
            continue;
        };
        let reported = by_cluster
            .get(vm_cluster_name(allocation.network_id.id).as_str())
            .map_or(&[][..], Vec::as_slice);
        let metrics = Arc::new(system_metrics(&r.id, allocation, reported));
        let before = state.monitoring.system(&r.id);
        if before
            .as_ref()
            .map_or(!metrics.states.is_empty(), |b| b.states != metrics.states)
        {
            changed.push((r.clone(), before, metrics.clone()));
        }
        fresh.insert(r.id.clone(), metrics);
    }
    *write(&state.monitoring.systems) = fresh;
    for (system, before, after) in changed {
        state.events.publish(DomainEvent::MetricsChanged {
            system,
            before,
            after,
        });
    }
}

/// The node of `allocation` a reported host is: by name (`compute-0-0`, or the host name the
/// node installs as), else by address.
fn node_of<'a>(
    id: &str,
    allocation: &'a Allocation,
    host: &HostSummary,
) -> Option<&'a vcds_placement::NodeAllocation> {
    allocation
        .nodes
        .iter()
        .find(|n| host.name == n.name || host.name == vcds_model::host_name(&n.name, id))
        .or_else(|| {
            allocation
                .nodes
                .iter()
                .find(|n| !host.ip.is_empty() && host.ip == n.ip.to_string())
        })
}

fn system_metrics(id: &str, allocation: &Allocation, reported: &[&HostSummary]) -> SystemMetrics {
    let mut nodes: BTreeMap<&str, (&vcds_placement::NodeAllocation, &HostSummary)> =
        BTreeMap::new();
    for host in reported {
        if let Some(node) = node_of(id, allocation, host) {
            nodes.insert(node.name.as_str(), (node, host));
        }
    }
    let round = |v: f64| (v * 100.0).round() / 100.0;
    let metrics = nodes
        .values()
        .map(|(node, h)| NodeMetrics {
            name: node.name.clone(),
            pnode: node.pnode.clone(),
            state: h.state(),
            load_one: h.load_one.map(round),
            cpu_user: h.cpu_user.map(round),
            mem_used_kb: h.mem_used_kb.map(round),
            mem_total_kb: h.mem_total_kb.map(round),
            bytes_in: h.bytes_in.map(round),
            bytes_out: h.bytes_out.map(round),
            stale: h.stale.clone(),
        })
        .collect();
    let hosts: Vec<HostSummary> = nodes.values().map(|(_, h)| (*h).clone()).collect();
    let summary = cluster_summaries(&hosts)
        .into_iter()
        .next()
        .unwrap_or_default();
    let cluster = ClusterMetrics {
        nodes: allocation.nodes.len(),
        nodes_up: summary.hosts_up,
        nodes_stale: summary.hosts_down,
        load_one_avg: summary.load_one_avg.map(round),
        load_one_max: summary.load_one_max.map(round),
        mem_used_kb: round(summary.mem_used_kb),
        mem_total_kb: round(summary.mem_total_kb),
    };
    SystemMetrics {
        states: nodes
            .iter()
            .map(|(name, (_, h))| (name.to_string(), h.state()))
            .collect(),
        nodes: metrics,
        cluster,
    }
}
