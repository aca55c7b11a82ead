//! Boot-to-marker time of virtual nodes started in parallel on one P-node namespace.
//!
//! `cargo run -p vcds-site --example boot_bench -- [COUNT…]` (root; default counts `1 4`;
//! VCDS_NODE_IMAGE_DIR defaults to /var/cache/vcds/node, built by scripts/build-node-image.sh).
//! Prints, per count, the slowest and mean time from QEMU start to `VCDS-NODE-UP`, then the
//! ratio of each count's slowest boot to the single VM's.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vcds_site::net::{self, ClusterNet, L2Mode};
use vcds_site::netns::Namespaces;
use vcds_site::vm::{Accel, Boot, Vm, VmSpec};

const NETWORK_ID: u32 = 900;

fn boot_times(image: &Path, count: u8) -> Result<Vec<Duration>, Box<dyn Error>> {
    let run_dir = tempfile::tempdir()?;
    let mut namespaces = Namespaces::new();
    let underlay = namespaces.build_underlay(&format!("vcdsb{}", std::process::id()), 1)?;
    let pnode = &underlay.pnodes[0];
    net::ensure(&ClusterNet {
        netns: Some(pnode.netns.clone()),
        network_id: NETWORK_ID,
        mode: L2Mode::Vxlan {
            underlay_dev: pnode.underlay_dev.clone(),
            underlay_ip: pnode.underlay_ip,
            peers: Vec::new(),
        },
        taps: (0..count).map(|n| net::tap_name(NETWORK_ID, n)).collect(),
    })?;
    let mut vms = (0..count)
        .map(|n| {
            let name = format!("bench-n{n}");
            Vm::start(VmSpec {
                name: name.clone(),
                netns: Some(pnode.netns.clone()),
                accel: Accel::Tcg,
                memory_mib: 160,
                cpus: 1,
                boot: Boot::Direct {
                    kernel: image.join("vmlinuz"),
                    initrd: image.join("initrd.img"),
                    append: format!(
                        "console=ttyS0 quiet panic=1 vcds.hostname={name} vcds.ip=10.1.0.{}/24",
                        11 + u16::from(n)
                    ),
                },
                disk: None,
                seed: None,
                tap: net::tap_name(NETWORK_ID, n),
                mac: net::node_mac(NETWORK_ID, n),
                qmp_socket: run_dir.path().join(format!("{name}.qmp")),
                console_log: run_dir.path().join(format!("{name}.log")),
            })
        })
        .collect::<Result<Vec<Vm>, _>>()?;
    let times = vms
        .iter_mut()
        .map(|vm| {
            let marker = format!("VCDS-NODE-UP {}", vm.spec().name);
            vm.wait_for_console(&marker, Duration::from_secs(120))
        })
        .collect::<Result<Vec<_>, _>>()?;
    drop(vms);
    namespaces.delete_all()?;
    Ok(times)
}

fn main() -> Result<(), Box<dyn Error>> {
    let image = std::env::var_os("VCDS_NODE_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/vcds/node"));
    let mut counts = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u8>())
        .collect::<Result<Vec<_>, _>>()?;
    if counts.is_empty() {
        counts = vec![1, 4];
    }
    // Other work on the machine skews the numbers: show how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", load.trim());
    let mut slowest = Vec::new();
    for count in counts {
        let times = boot_times(&image, count)?;
        let max = times.iter().max().copied().unwrap_or_default();
        let mean = times.iter().sum::<Duration>() / u32::from(count.max(1));
        println!(
            "{count} VM(s) in parallel: slowest {:.2} s, mean {:.2} s",
            max.as_secs_f64(),
            mean.as_secs_f64()
        );
        slowest.push((count, max));
    }
    if let Some((1, single)) = slowest.first().copied() {
        for (count, max) in &slowest[1..] {
            println!(
                "ratio {count} VMs / 1 VM: {:.2}",
                max.as_secs_f64() / single.as_secs_f64()
            );
        }
    }
    Ok(())
}
