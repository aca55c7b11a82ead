//! Pure summaries over polled data: host staleness, per-host and per-cluster figures, and the
//! [`Monitor`] state that folds poll cycles into last-known data plus bounded history.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use crate::history::History;
use crate::model::{GangliaXml, Host};
use crate::poll::EndpointReport;

/// gmetad's rule: a host is down once it has been silent for more than four reporting periods.
pub fn host_is_stale(host: &Host) -> bool {
    u64::from(host.tn) > 4 * u64::from(host.tmax)
}

/// One host's figures as a UI or resource property wants them.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSummary {
    /// The gmond endpoint (`host:port`) that reported it.
    pub endpoint: String,
    pub cluster: String,
    pub name: String,
    pub ip: String,
    /// Why the host counts as down, or `None` when its data is fresh.
    pub stale: Option<String>,
    pub load_one: Option<f64>,
    pub cpu_num: Option<f64>,
    pub mem_total_kb: Option<f64>,
    /// Total minus free, buffers and cache, as `free` reports "used".
    pub mem_used_kb: Option<f64>,
    pub cpu_user: Option<f64>,
    /// Bytes per second.
    pub bytes_in: Option<f64>,
    pub bytes_out: Option<f64>,
    /// A virtual node's lifecycle state as its P-node's agent reports it (`vm_state`).
    pub vm_state: Option<String>,
}

impl HostSummary {
    pub fn of(endpoint: &str, cluster: &str, host: &Host, unreachable: Option<&str>) -> Self {
        let stale = match unreachable {
            Some(reason) => Some(reason.to_string()),
            None if host_is_stale(host) => Some(format!(
                "silent for {} s, over 4 x TMAX ({} s)",
                host.tn, host.tmax
            )),
            None => None,
        };
        let mem_total_kb = host.value("mem_total");
        let mem_used_kb = mem_total_kb.map(|total| {
            let unused: f64 = ["mem_free", "mem_buffers", "mem_cached"]
                .iter()
                .filter_map(|m| host.value(m))
                .sum();
            (total - unused).max(0.0)
        });
        HostSummary {
            endpoint: endpoint.to_string(),
            cluster: cluster.to_string(),
            name: host.name.clone(),
            ip: host.ip.clone(),
            stale,
            load_one: host.value("load_one"),
            cpu_num: host.value("cpu_num"),
            mem_total_kb,
            mem_used_kb,
            cpu_user: host.value("cpu_user"),
            bytes_in: host.value("bytes_in"),
            bytes_out: host.value("bytes_out"),
            vm_state: host.metric("vm_state").map(|m| m.val.clone()),
        }
    }

    pub fn is_up(&self) -> bool {
        self.stale.is_none()
    }

    /// What a state-change notification is about: up or stale, and the VM state.
    pub fn state(&self) -> String {
        match (&self.stale, &self.vm_state) {
            (Some(_), _) => "stale".to_string(),
            (None, Some(vm)) => vm.clone(),
            (None, None) => "up".to_string(),
        }
    }
}

/// Figures for one cluster name across every endpoint reporting it. Load and memory cover the
/// hosts that are up.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterSummary {
    pub name: String,
    pub hosts_up: usize,
    pub hosts_down: usize,
    pub load_one_avg: Option<f64>,
    pub load_one_max: Option<f64>,
    pub mem_used_kb: f64,
    pub mem_total_kb: f64,
}

/// Groups host summaries by cluster name (sorted by name).
pub fn cluster_summaries(hosts: &[HostSummary]) -> Vec<ClusterSummary> {
    let mut by_name: BTreeMap<&str, (ClusterSummary, f64, usize)> = BTreeMap::new();
    for h in hosts {
        let (c, load_sum, load_n) = by_name.entry(&h.cluster).or_insert_with(|| {
            let c = ClusterSummary {
                name: h.cluster.clone(),
                ..ClusterSummary::default()
            };
            (c, 0.0, 0)
        });
        if !h.is_up() {
            c.hosts_down += 1;
            continue;
        }
        c.hosts_up += 1;
        if let Some(load) = h.load_one {
            *load_sum += load;
            *load_n += 1;
            c.load_one_max = Some(c.load_one_max.map_or(load, |m| m.max(load)));
        }
        c.mem_used_kb += h.mem_used_kb.unwrap_or(0.0);
        c.mem_total_kb += h.mem_total_kb.unwrap_or(0.0);
    }
    by_name
        .into_values()
        .map(|(mut c, sum, n)| {
            c.load_one_avg = (n > 0).then(|| sum / n as f64);
            c
        })
        .collect()
}

/// What the monitor knows about one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointState {
    /// The last document that parsed, kept when later polls fail.
    pub last: Option<GangliaXml>,
    /// Unix seconds of the last successful poll.
    pub last_ok: Option<u64>,
    /// Why the latest poll failed; `None` after a success.
    pub error: Option<String>,
}

/// Last-known data per endpoint plus history, fed one poll cycle at a time.
#[derive(Debug, Clone)]
pub struct Monitor {
    endpoints: BTreeMap<String, EndpointState>,
    history: History,
    /// Metrics recorded in the history (recording everything would multiply its memory).
    tracked: Vec<String>,
}

/// The metrics a sparkline usually wants.
pub const DEFAULT_TRACKED: &[&str] = &[
    "load_one",
    "cpu_user",
    "cpu_system",
    "mem_free",
    "bytes_in",
    "bytes_out",
];

impl Monitor {
    pub fn new(history: History, tracked: &[&str]) -> Monitor {
        Monitor {
            endpoints: BTreeMap::new(),
            history,
            tracked: tracked.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Folds one cycle in: fresh data replaces the endpoint's last document and extends the
    /// history of its live hosts; a failure keeps the old document but marks it stale.
    pub fn apply(&mut self, reports: Vec<EndpointReport>, now_unix: u64) {
        for report in reports {
            let state = self
                .endpoints
                .entry(report.endpoint)
                .or_insert(EndpointState {
                    last: None,
                    last_ok: None,
                    error: None,
                });
            match report.result {
                Ok(doc) => {
                    for host in doc.clusters.iter().flat_map(|c| &c.hosts) {
                        if host_is_stale(host) {
                            continue;
                        }
                        for metric in &self.tracked {
                            if let Some(v) = host.value(metric) {
                                self.history.push(&host.name, metric, now_unix, v);
                            }
                        }
                    }
                    *state = EndpointState {
                        last: Some(doc),
                        last_ok: Some(now_unix),
                        error: None,
                    };
                }
                Err(e) => state.error = Some(e.to_string()),
            }
        }
    }

    pub fn endpoint(&self, endpoint: &str) -> Option<&EndpointState> {
        self.endpoints.get(endpoint)
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Every known host once, sorted by cluster and name; hosts of a failing endpoint are stale
    /// with its error. A host several endpoints report (gmonds sharing a multicast channel all
    /// know the whole cluster) is taken from a fresh report, the most recent one.
    pub fn host_summaries(&self) -> Vec<HostSummary> {
        let mut best: BTreeMap<(&str, &str), (HostSummary, u64)> = BTreeMap::new();
        for (endpoint, state) in &self.endpoints {
            let unreachable = state
                .error
                .as_ref()
                .map(|e| format!("endpoint {endpoint}: {e}"));
            for cluster in state.last.iter().flat_map(|d| &d.clusters) {
                for host in &cluster.hosts {
                    let s = HostSummary::of(endpoint, &cluster.name, host, unreachable.as_deref());
                    let rank = |s: &HostSummary, reported: u64| (s.is_up(), reported);
                    match best.entry((&cluster.name, &host.name)) {
                        Entry::Occupied(mut e)
                            if rank(&e.get().0, e.get().1) < rank(&s, host.reported) =>
                        {
                            e.insert((s, host.reported));
                        }
                        Entry::Occupied(_) => {}
                        Entry::Vacant(e) => {
                            e.insert((s, host.reported));
                        }
                    }
                }
            }
        }
        best.into_values().map(|(s, _)| s).collect()
    }

    pub fn cluster_summaries(&self) -> Vec<ClusterSummary> {
        cluster_summaries(&self.host_summaries())
    }
}
