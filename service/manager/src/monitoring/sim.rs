//! The simulated site's gmonds (`--site sim`): listeners on 127.0.0.1 that answer each
//! connection with gmond XML for a group of simulated P-nodes and the virtual nodes placed on
//! them, made by the same exporter and writer as a real agent's, so the poller's real TCP and
//! parse path is what runs.
//!
//! Cheap by construction: one listener per [`PNODES_PER_ENDPOINT`] P-nodes, at most
//! [`MAX_ENDPOINTS`] of them, so a 10,000-P-node site exports its first 1,000 P-nodes (virtual
//! nodes on the others go with the group of their P-node's index modulo the groups). Figures
//! are synthetic but follow the reservations: a P-node's CPU and memory use is what its
//! running clusters reserve, a virtual node's state follows its cluster's phase.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Weak;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use vcds_monitor::export::{agent_document, vm_cluster_name, PnodeSample, VmSample, PNODE_CLUSTER};
use vcds_placement::Resources;

use vcds_model::Phase;

use crate::Manager;

pub const PNODES_PER_ENDPOINT: usize = 250;
pub const MAX_ENDPOINTS: usize = 4;
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Binds the listeners (one per group of P-nodes) and serves them on the current runtime
/// until the state is dropped; their endpoints.
pub async fn start(state: Weak<Manager>) -> std::io::Result<Vec<String>> {
    let Some(pnodes) = state.upgrade().map(|s| pnode_count(&s)) else {
        return Ok(Vec::new());
    };
    let groups = pnodes.div_ceil(PNODES_PER_ENDPOINT).clamp(1, MAX_ENDPOINTS);
    let mut endpoints = Vec::new();
    for group in 0..groups {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        endpoints.push(listener.local_addr()?.to_string());
        let state = state.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let Some(s) = state.upgrade() else { return };
                let bytes = document(&s, group, groups);
                drop(s);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await;
                });
            }
        });
    }
    tracing::info!(
        ?endpoints,
        "simulated site: gmond ports for its P-nodes and virtual nodes"
    );
    Ok(endpoints)
}

fn pnode_count(state: &Manager) -> usize {
    state.book.read(|s| s.pnodes().count()).unwrap_or(0)
}

/// A stable number in 0..1 for `name`, and a slow wobble in 0.6..1.0 over time around it, so
/// figures move like real ones but each host keeps its character.
fn character(name: &str) -> f64 {
    let mut h = std::hash::DefaultHasher::new();
    name.hash(&mut h);
    (h.finish() % 1000) as f64 / 1000.0
}

fn wobble(name: &str, now: u64) -> f64 {
    0.8 + 0.2 * ((now as f64 / 30.0) + character(name) * std::f64::consts::TAU).sin()
}

/// The VM state a cluster in `phase` has, if its VMs exist.
fn vm_state(phase: Option<Phase>) -> Option<&'static str> {
    match phase? {
        Phase::Installing => Some("installing"),
        Phase::Ready => Some("running"),
        Phase::Suspended => Some("paused"),
        _ => None,
    }
}

/// The gmond XML of P-node group `group` of `groups`.
fn document(state: &Manager, group: usize, groups: usize) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let members = group * PNODES_PER_ENDPOINT..(group + 1) * PNODES_PER_ENDPOINT;
    let in_group = |index: usize| members.contains(&index) || index % groups == group;
    // P-node name → index, and capacity of this group's P-nodes.
    let Ok((index, capacity)) = state.book.read(|s| {
        let index: HashMap<String, usize> = s
            .pnodes()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        let capacity: Vec<(String, Resources)> = s
            .pnodes()
            .enumerate()
            .filter(|(i, _)| members.contains(i))
            .map(|(_, p)| (p.name.clone(), p.capacity))
            .collect();
        (index, capacity)
    }) else {
        return Vec::new();
    };
    let mut samples: HashMap<&str, PnodeSample> = capacity
        .iter()
        .map(|(name, cap)| (name.as_str(), pnode_sample(name, cap, now)))
        .collect();
    let mut used: HashMap<String, Resources> = HashMap::new();
    let mut extra: Vec<PnodeSample> = Vec::new();
    for r in state.registry.systems() {
        let Some(d) = r.deployment() else { continue };
        let (Some(a), Some(vm_state)) = (&d.allocation, vm_state(d.phase)) else {
            continue;
        };
        for node in &a.nodes {
            let Some(&i) = index.get(&node.pnode) else {
                continue;
            };
            if !in_group(i) {
                continue;
            }
            let host = vcds_model::host_name(&node.name, &r.id);
            let running = vm_state == "running";
            let vm = VmSample {
                name: host.clone(),
                ip: node.ip.to_string(),
                cluster: vm_cluster_name(a.network_id.id),
                state: vm_state.to_string(),
                vcpus: node.resources.cpu,
                mem_kb: node.resources.memory_mib * 1024,
                cpu_percent: if running {
                    60.0 * wobble(&host, now)
                } else {
                    0.0
                },
                load_one: Some(if running {
                    f64::from(node.resources.cpu)
                        * (0.1 + 0.8 * character(&host))
                        * wobble(&host, now)
                } else {
                    0.0
                }),
            };
            let u = used.entry(node.pnode.clone()).or_default();
            u.cpu += node.resources.cpu;
            u.memory_mib += node.resources.memory_mib;
            match samples.get_mut(node.pnode.as_str()) {
                Some(p) => p.vms.push(vm),
                // A P-node past the monitored ones: its VMs still report, through a host-less
                // sample that is not exported as a P-node.
                None => match extra.iter_mut().find(|p| p.name == node.pnode) {
                    Some(p) => p.vms.push(vm),
                    None => extra.push(PnodeSample {
                        vms: vec![vm],
                        ..pnode_sample(&node.pnode, &Resources::default(), now)
                    }),
                },
            }
        }
    }
    let mut doc = None::<vcds_monitor::GangliaXml>;
    let mut names: Vec<&str> = samples.keys().copied().collect();
    names.sort_unstable();
    let ordered = names
        .iter()
        .filter_map(|n| samples.get(n))
        .map(|p| (p, true))
        .chain(extra.iter().map(|p| (p, false)));
    for (p, is_monitored) in ordered {
        let mut p = p.clone();
        if let Some(u) = used.get(&p.name) {
            load(&mut p, u, now);
        }
        let mut part = agent_document(PNODE_CLUSTER, "vcds-sim", now, &p);
        if !is_monitored {
            part.clusters.remove(0);
        }
        match &mut doc {
            None => doc = Some(part),
            Some(d) => {
                for c in part.clusters {
                    match d.clusters.iter_mut().find(|x| x.name == c.name) {
                        Some(x) => x.hosts.extend(c.hosts),
                        None => d.clusters.push(c),
                    }
                }
            }
        }
    }
    let doc = doc.unwrap_or_else(|| {
        agent_document(
            PNODE_CLUSTER,
            "vcds-sim",
            now,
            &pnode_sample("none", &Resources::default(), now),
        )
    });
    vcds_monitor::write_document(&doc).into_bytes()
}

fn pnode_sample(name: &str, cap: &Resources, now: u64) -> PnodeSample {
    let idle_load = 0.05 + 0.1 * character(name);
    PnodeSample {
        name: name.to_string(),
        ip: String::new(),
        cpu_num: cap.cpu,
        cpu_user: 1.0,
        cpu_system: 0.5,
        cpu_idle: 98.5,
        load_one: idle_load,
        load_five: idle_load,
        load_fifteen: idle_load,
        mem_total_kb: cap.memory_mib * 1024,
        mem_free_kb: cap.memory_mib * 1024 * 9 / 10,
        mem_buffers_kb: 0,
        mem_cached_kb: 0,
        bytes_in: 1000.0 * wobble(name, now),
        bytes_out: 800.0 * wobble(name, now),
        boottime: 1_700_000_000,
        vms: Vec::new(),
    }
}

/// A P-node's figures with `used` of it reserved by running clusters.
fn load(p: &mut PnodeSample, used: &Resources, now: u64) {
    let share = f64::from(used.cpu) / f64::from(p.cpu_num.max(1));
    let w = wobble(&p.name, now);
    p.load_one += f64::from(used.cpu) * 0.7 * w;
    p.load_five = p.load_one * 0.9;
    p.load_fifteen = p.load_one * 0.8;
    p.cpu_user = (100.0 * share * 0.7 * w).min(97.0);
    p.cpu_idle = 100.0 - p.cpu_user - p.cpu_system;
    p.mem_free_kb = p.mem_free_kb.saturating_sub(used.memory_mib * 1024);
    p.bytes_in *= 1.0 + 10.0 * share;
    p.bytes_out *= 1.0 + 10.0 * share;
}
