//! The agent's gmond-compatible port over real TCP on 127.0.0.1, read by the manager's poller:
//! this machine's /proc figures, VMs in their virtual clusters, state changes at the next
//! sample, and a stuck reader that does not hold up others.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vcds_monitor::poll::poll_endpoint;
use vcds_monitor::{GangliaXml, PollConfig};
use vcds_site::gmond::{self, GmondConfig, VmInfo, PNODE_CLUSTER};

fn vm(name: &str, network_id: u32, state: &str) -> VmInfo {
    VmInfo {
        name: name.to_string(),
        network_id,
        // This test process stands in for QEMU: its CPU ticks are real.
        pid: std::process::id(),
        state: state.to_string(),
        vcpus: 2,
        memory_mib: 512,
    }
}

async fn poll(endpoint: &str) -> GangliaXml {
    let report = poll_endpoint(endpoint, &PollConfig::default()).await;
    report.result.expect("the agent's document parses")
}

fn vm_state(doc: &GangliaXml, name: &str) -> Option<String> {
    doc.clusters
        .iter()
        .flat_map(|c| &c.hosts)
        .find(|h| h.name == name)
        .and_then(|h| h.metric("vm_state"))
        .map(|m| m.val.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_reads_the_pnode_and_its_vms() {
    let vms = Arc::new(Mutex::new(vec![
        vm("c300-n0", 300, "running"),
        vm("c300-n1", 300, "unknown: QMP did not answer"),
        vm("c301-n0", 301, "running"),
    ]));
    let shared = vms.clone();
    let config = GmondConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        pnode: "pnode1".to_string(),
        interval: Duration::from_millis(100),
    };
    let addr =
        gmond::serve(&config, None, move || shared.lock().expect("lock").clone()).expect("serve");
    let endpoint = addr.to_string();

    // A reader that connects and never reads does not hold up the next poll.
    let _stuck = std::net::TcpStream::connect(addr).expect("connect");
    let doc = poll(&endpoint).await;
    let names: Vec<&str> = doc.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [PNODE_CLUSTER, "vcds-net-300", "vcds-net-301"]);
    let pnode = &doc.clusters[0].hosts[0];
    assert_eq!(pnode.name, "pnode1");
    let mem_total = pnode.value("mem_total").expect("mem_total");
    assert!(mem_total > 0.0 && pnode.value("mem_free").expect("mem_free") <= mem_total);
    assert!(pnode.value("load_one").is_some() && pnode.value("bytes_in").is_some());
    assert_eq!(pnode.value("vm_count"), Some(3.0));
    assert_eq!(pnode.value("vm_running"), Some(2.0));
    assert_eq!(doc.clusters[1].hosts.len(), 2);
    assert_eq!(vm_state(&doc, "c300-n1").as_deref(), Some("unknown"));
    let n0 = &doc.clusters[1].hosts[0];
    assert_eq!(n0.value("mem_total"), Some(512.0 * 1024.0));
    assert_eq!(
        n0.metric("vm_pnode").map(|m| m.val.as_str()),
        Some("pnode1")
    );

    // A VM paused between samples shows as paused within a few sampling intervals.
    vms.lock().expect("lock")[0].state = "paused".to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    while vm_state(&poll(&endpoint).await, "c300-n0").as_deref() != Some("paused") {
        assert!(Instant::now() < deadline, "the pause never showed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
