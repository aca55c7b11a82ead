//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::PathBuf;

/// The shared gmond fixture, or `None` (after a visible SKIP) on a clone without `../shared`.
pub fn fixture() -> Option<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/ganglia");
    match std::fs::read(dir.join("rocks-sample-set1.xml")) {
        Ok(bytes) => Some(bytes),
        Err(_) => {
            {
                // Past the test harness's capture, so a skip is seen.
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "SKIP: ../shared/fixtures not present");
            }
            None
        }
    }
}

pub fn fixture_dtd() -> Option<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/ganglia");
    std::fs::read_to_string(dir.join("gmond-dtd.h")).ok()
}

/// A P-node with two VMs, as an agent would sample it.
pub fn sample_pnode() -> vcds_monitor::export::PnodeSample {
    use vcds_monitor::export::{PnodeSample, VmSample};
    let vm = |name: &str, ip: &str, state: &str| VmSample {
        name: name.to_string(),
        ip: ip.to_string(),
        cluster: "vc-7 \"alpha\" <Müller>".to_string(),
        state: state.to_string(),
        vcpus: 2,
        mem_kb: 1_048_576,
        cpu_percent: 12.5,
        load_one: Some(0.25),
    };
    PnodeSample {
        name: "pnode-0".to_string(),
        ip: "10.1.255.254".to_string(),
        cpu_num: 8,
        cpu_user: 22.5,
        cpu_system: 3.25,
        cpu_idle: 74.25,
        load_one: 1.5,
        load_five: 1.25,
        load_fifteen: 0.75,
        mem_total_kb: 16_000_000,
        mem_free_kb: 6_000_000,
        mem_buffers_kb: 500_000,
        mem_cached_kb: 1_500_000,
        bytes_in: 1234.5,
        bytes_out: 987.25,
        boottime: 1_700_000_000,
        vms: vec![
            vm("vc7-compute-0-0", "10.7.0.10", "running"),
            vm("vc7-compute-0-1", "10.7.0.11", "suspended"),
        ],
    }
}
