//! The P-nodes of the two built-in sites.

/// The local site's P-nodes: this machine split in two (`pnode1`, `pnode2`), each with its
/// share of memory and twice its share of cores (virtual CPUs are overcommitted 4:1 overall,
/// as small test clusters idle most of the time), both able to host a GW-node.
pub fn local_pnodes() -> Vec<vcds_placement::PNode> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    let memory_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(8192, |kib| kib / 1024);
    let share = vcds_placement::Resources::new(cores * 2, memory_mib / 2, 200);
    ["pnode1", "pnode2"]
        .into_iter()
        .map(|name| vcds_placement::PNode::new(name, share).gw_capable(true))
        .collect()
}

/// A simulated site of `count` P-nodes (`p00001`, …) of 64 cores, 256 GiB and 4 TiB; every
/// tenth can host a GW-node.
pub fn simulated_pnodes(count: usize) -> Vec<vcds_placement::PNode> {
    (0..count)
        .map(|i| {
            vcds_placement::PNode::new(
                format!("p{:05}", i + 1),
                vcds_placement::Resources::new(64, 256 * 1024, 4096),
            )
            .gw_capable(i % 10 == 0)
        })
        .collect()
}
