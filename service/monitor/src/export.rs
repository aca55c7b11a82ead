//! What a P-node agent reports: its own CPU, memory and network figures and one spoofed HOST per
//! VM (the way gmond reports spoofed hosts), all under gmond's standard metric names so gmetad
//! and its web front end understand them.

use crate::model::{Cluster, GangliaXml, Host, Metric, MetricType};

/// Figures an agent has sampled from its P-node.
#[derive(Debug, Clone, PartialEq)]
pub struct PnodeSample {
    pub name: String,
    pub ip: String,
    pub cpu_num: u32,
    /// Percentages, as /proc/stat deltas give them.
    pub cpu_user: f64,
    pub cpu_system: f64,
    pub cpu_idle: f64,
    pub load_one: f64,
    pub load_five: f64,
    pub load_fifteen: f64,
    pub mem_total_kb: u64,
    pub mem_free_kb: u64,
    pub mem_buffers_kb: u64,
    pub mem_cached_kb: u64,
    /// Bytes per second over all non-loopback interfaces.
    pub bytes_in: f64,
    pub bytes_out: f64,
    pub boottime: u64,
    pub vms: Vec<VmSample>,
}

/// One VM hosted by the P-node.
#[derive(Debug, Clone, PartialEq)]
pub struct VmSample {
    pub name: String,
    pub ip: String,
    /// The virtual cluster it belongs to.
    pub cluster: String,
    /// Lifecycle state as the agent knows it ("running", "paused", "installing"…).
    pub state: String,
    pub vcpus: u32,
    pub mem_kb: u64,
    pub cpu_percent: f64,
    /// The guest's one-minute load, when something inside it reports one (a gmond in the
    /// node, the simulated site); QEMU alone cannot tell.
    pub load_one: Option<f64>,
}

/// The Ganglia cluster of the site's P-nodes, as agents and the simulated site report them.
pub const PNODE_CLUSTER: &str = "vcds-pnodes";

/// The Ganglia cluster name of a virtual cluster's nodes, from its network id (VXLAN VNI or
/// VLAN id): what the manager maps back to the System.
pub fn vm_cluster_name(network_id: u32) -> String {
    format!("vcds-net-{network_id}")
}

/// The network id in a cluster name made by [`vm_cluster_name`].
pub fn network_id_of(cluster: &str) -> Option<u32> {
    cluster.strip_prefix("vcds-net-")?.parse().ok()
}

/// gmond 3.x defaults: TMAX per metric and the host's reporting interval.
const HOST_TMAX: u32 = 20;

/// Builds the document an agent serves on its gmond-compatible TCP port: the P-node in CLUSTER
/// `cluster`, and the VMs of each virtual cluster in a CLUSTER named by [`VmSample::cluster`]
/// (in order of first appearance), so the manager and a stock gmetad both see every virtual
/// cluster as a cluster of its own.
pub fn agent_document(
    cluster: &str,
    owner: &str,
    now_unix: u64,
    pnode: &PnodeSample,
) -> GangliaXml {
    let new_cluster = |name: &str, hosts| Cluster {
        name: name.to_string(),
        owner: Some(owner.to_string()),
        latlong: None,
        url: None,
        localtime: now_unix,
        hosts,
    };
    let mut clusters = vec![new_cluster(cluster, vec![pnode_host(now_unix, pnode)])];
    for vm in &pnode.vms {
        let host = vm_host(now_unix, &pnode.name, vm);
        match clusters.iter_mut().find(|c| c.name == vm.cluster) {
            Some(c) => c.hosts.push(host),
            None => clusters.push(new_cluster(&vm.cluster, vec![host])),
        }
    }
    GangliaXml {
        version: "3.7.2".to_string(),
        source: "gmond".to_string(),
        clusters,
    }
}

fn host(name: &str, ip: &str, now_unix: u64, metrics: Vec<Metric>) -> Host {
    Host {
        name: name.to_string(),
        ip: ip.to_string(),
        location: None,
        tags: None,
        reported: now_unix,
        tn: 0,
        tmax: HOST_TMAX,
        dmax: 0,
        gmond_started: None,
        metrics,
    }
}

fn pnode_host(now: u64, p: &PnodeSample) -> Host {
    use MetricType::{Float, Timestamp, Uint32};
    let f = |name: &str, v: f64, units: &str, tmax: u32, group: &str, title: &str| {
        Metric::new(name, format!("{v:.2}"), Float, units, tmax).described(group, title, title)
    };
    let kb = |name: &str, v: u64, title: &str| {
        Metric::new(name, v, Float, "KB", 180).described("memory", title, title)
    };
    let running = p.vms.iter().filter(|vm| vm.state == "running").count();
    let mut host = host(
        &p.name,
        &p.ip,
        now,
        vec![
            Metric::new("cpu_num", p.cpu_num, Uint32, "CPUs", 1200).described(
                "cpu",
                "CPU Count",
                "Total number of CPUs",
            ),
            f("cpu_user", p.cpu_user, "%", 90, "cpu", "CPU User"),
            f("cpu_system", p.cpu_system, "%", 90, "cpu", "CPU System"),
            f("cpu_idle", p.cpu_idle, "%", 90, "cpu", "CPU Idle"),
            f(
                "load_one",
                p.load_one,
                " ",
                70,
                "load",
                "One Minute Load Average",
            ),
            f(
                "load_five",
                p.load_five,
                " ",
                325,
                "load",
                "Five Minute Load Average",
            ),
            f(
                "load_fifteen",
                p.load_fifteen,
                " ",
                950,
                "load",
                "Fifteen Minute Load Average",
            ),
            kb("mem_total", p.mem_total_kb, "Memory Total"),
            kb("mem_free", p.mem_free_kb, "Free Memory"),
            kb("mem_buffers", p.mem_buffers_kb, "Memory Buffers"),
            kb("mem_cached", p.mem_cached_kb, "Cached Memory"),
            f(
                "bytes_in",
                p.bytes_in,
                "bytes/sec",
                300,
                "network",
                "Bytes Received",
            ),
            f(
                "bytes_out",
                p.bytes_out,
                "bytes/sec",
                300,
                "network",
                "Bytes Sent",
            ),
            Metric::new("boottime", p.boottime, Timestamp, "s", 1200).described(
                "system",
                "Last Boot Time",
                "The last time that the system was started",
            ),
            Metric::new("vm_count", p.vms.len(), Uint32, "VMs", 60).described(
                "vcds",
                "Hosted VMs",
                "Virtual nodes placed on this P-node",
            ),
            Metric::new("vm_running", running, Uint32, "VMs", 60).described(
                "vcds",
                "Running VMs",
                "Virtual nodes running on this P-node",
            ),
        ],
    );
    host.gmond_started = Some(p.boottime);
    host
}

fn vm_host(now: u64, pnode: &str, vm: &VmSample) -> Host {
    use MetricType::{Float, String as Text, Uint32};
    let spoof = format!("{}:{}", vm.ip, vm.name);
    let metrics = vec![
        Metric::new("vm_state", &vm.state, Text, "", 60).described(
            "vcds",
            "VM State",
            "Lifecycle state of the virtual node",
        ),
        Metric::new("vm_pnode", pnode, Text, "", 1200).described(
            "vcds",
            "P-node",
            "Physical host running the virtual node",
        ),
        Metric::new("vm_cluster", &vm.cluster, Text, "", 1200).described(
            "vcds",
            "Virtual Cluster",
            "Virtual cluster of the node",
        ),
        Metric::new("cpu_num", vm.vcpus, Uint32, "CPUs", 1200).described(
            "cpu",
            "CPU Count",
            "Virtual CPUs",
        ),
        Metric::new("mem_total", vm.mem_kb, Float, "KB", 1200).described(
            "memory",
            "Memory Total",
            "Memory assigned",
        ),
        Metric::new("cpu_user", format!("{:.2}", vm.cpu_percent), Float, "%", 90).described(
            "cpu",
            "CPU User",
            "CPU used by the VM",
        ),
    ];
    let load = vm.load_one.map(|load| {
        Metric::new("load_one", format!("{load:.2}"), Float, " ", 70).described(
            "load",
            "One Minute Load Average",
            "One Minute Load Average",
        )
    });
    let metrics = metrics.into_iter().chain(load);
    // gmond marks metrics of spoofed hosts with SPOOF_HOST so gmetad keeps them apart.
    let metrics = metrics
        .map(|mut m| {
            m.extra.push(("SPOOF_HOST".to_string(), spoof.clone()));
            m
        })
        .collect();
    host(&vm.name, &vm.ip, now, metrics)
}
