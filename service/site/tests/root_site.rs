//! Root integration tests of the local site, on network namespaces standing in for P-nodes.
//!
//! - Two P-nodes on an underlay, two virtual clusters (VNI 100 and 200) with the same subnet
//!   10.1.0.0/24, one VM of each cluster on each P-node: VMs of one cluster reach each other
//!   across P-nodes; the clusters are isolated even with overlapping addresses (answers come from
//!   the right cluster's MACs, and a stopped node's address is not answered by the other
//!   cluster's node of the same address); QMP stop/cont; teardown leaves no namespace, link or
//!   process.
//! - A VM network-boots (`-boot n`, iPXE) from a frontend namespace running dnsmasq on the
//!   cluster bridge, which decides its host name and address.
//! - The namespace guard cleans up when a test panics.
//! - A P-node agent in its namespace, driven over its socket: cluster network, one VM, kill -9
//!   and restart of the agent (the VM is re-adopted), suspend/resume, destroy, zero leftovers.
//! - The local site (`vcds_site::local`, one P-node, its agent this test binary behind a
//!   `vcds agent` stand-in): the host's own leg on the outside network reaches a GW-node-like
//!   namespace on the P-node's outside bridge at a GW-node's outside address; only
//!   198.19.0.0/16 goes through it; bootstrap adopts it; teardown leaves no device.
//! - The GW-node of a cluster (outside test host 192.0.2.1, GW outside 192.0.2.10, RFC 5737):
//!   node namespaces take the plan's address, host name, router, name server and kickstart URL
//!   by DHCP (a MAC outside the plan gets nothing); nodes reach the outside host, which sees the
//!   GW's address (masquerade); the forwarded port reaches the frontend, nothing else does; TFTP
//!   works from the cluster and not from outside; ensure is idempotent, repairs drift and
//!   restarts dnsmasq only for a changed configuration; remove leaves nothing.
//! - The same GW-node kept by an agent across kill -9 (dnsmasq re-adopted by its pid file).
//! - A VM network-boots through the GW-node's dnsmasq (PXE with iPXE's IPv6 wait cut short).
//! - A real node: a base image of vcds-image (built into `$VCDS_CACHE_DIR/images`, default
//!   /var/cache/vcds, when the cache lacks it: minutes the first time), the node's disk an
//!   overlay of it made by the agent; the installer installs onto it from a kickstart served in
//!   a frontend namespace (a package the image lacks fails the install), the disk's systemd
//!   answers SSH with the key %post installed, a file under /root survives kill -9 of agent and
//!   QEMU and the restart from the disk; prints build, install, boot and size figures.
//!
//! Needs root, /dev/net/tun, qemu-system-x86_64, ping, dnsmasq and the node image, for the
//! GW-node nft, busybox (udhcpc), socat and curl, for the disk mmdebstrap, apt-ftparchive,
//! mke2fs, qemu-img and ssh, all from scripts/build-node-image.sh; otherwise prints `SKIP: …`
//! (fails instead when VCDS_REQUIRE_ROOT_TESTS=1).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vcds_site::agent::{self, AgentClient, AgentConfig};
use vcds_site::gateway::{
    self, GatewayNode, GatewaySpec, OutsideLeg, PortForward, Protocol, PxeBoot,
};
use vcds_site::local::{LocalSite, LocalSiteConfig, HOST_IP, OUTSIDE_HUB};
use vcds_site::net::{self, ClusterNet, L2Mode};
use vcds_site::netns::{add_leg, Leg, Namespaces};
use vcds_site::rpc::{Endpoint, Key};
use vcds_site::vm::{Accel, Boot, Vm, VmSpec};

const CLUSTERS: [u32; 2] = [100, 200];
const SUBNET_PREFIX: &str = "10.1.0";
const PROBE_IP: &str = "10.1.0.250";
/// Every wait of a VM test is bounded by what is left of this (an idle 2-core machine needs
/// ~10 s for the two-cluster test; a busy one several times that).
const TEST_BUDGET: Duration = Duration::from_secs(100);

/// VM tests run one at a time: TCG VMs of two tests at once would slow each other down.
static ONE_VM_TEST: Mutex<()> = Mutex::new(());

fn image_dir() -> PathBuf {
    std::env::var_os("VCDS_NODE_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/vcds/node"))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn skip_reason(extra_programs: &[&str]) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|uids| uids.split_whitespace().nth(1))
        == Some("0");
    if !root {
        return Some("not running as root".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    for program in ["qemu-system-x86_64", "ping", "dnsmasq"]
        .iter()
        .chain(extra_programs)
    {
        if !on_path(program) {
            return Some(format!(
                "{program} not found (scripts/build-node-image.sh installs it)"
            ));
        }
    }
    let dir = image_dir();
    if !dir.join("vmlinuz").is_file() || !dir.join("initrd.img").is_file() {
        return Some(format!(
            "no node image in {} (run scripts/build-node-image.sh)",
            dir.display()
        ));
    }
    None
}

fn ping(netns: &str, ip: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", netns, "ping", "-c", "1", "-W", "1", ip])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ping_within(netns: &str, ip: &str, tries: u32) -> bool {
    (0..tries).any(|_| ping(netns, ip))
}

/// MAC that answered ARP for `ip` in `netns`, from `ip -j neigh` JSON.
fn neighbour_mac(netns: &str, ip: &str) -> Option<String> {
    let out = Command::new("ip")
        .args(["-n", netns, "-j", "neigh", "show", ip])
        .output()
        .ok()?;
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    entries.get(0)?.get("lladdr")?.as_str().map(str::to_owned)
}

fn flush_neighbours(netns: &str) {
    let _ = Command::new("ip")
        .args(["-n", netns, "neigh", "flush", "all"])
        .status();
}

/// What is left of the test's budget.
fn left(started: Instant) -> Duration {
    TEST_BUDGET.saturating_sub(started.elapsed())
}

fn node_ip(node: u8) -> String {
    format!("{SUBNET_PREFIX}.{}", 11 + node)
}

/// Interface names in the test's own (host) namespace, from `ip -j link` JSON.
fn host_links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-j", "link", "show"])
        .output()
        .unwrap();
    let links: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    links
        .iter()
        .filter_map(|l| l.get("ifname")?.as_str().map(str::to_owned))
        .collect()
}

fn netns_list() -> String {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Teardown left no namespace named with `prefix`, none of the QEMU `pids`, and none of the
/// `links` (nor the underlay's) in the host namespace.
fn assert_clean(prefix: &str, pids: &[u32], links: &[String]) {
    assert!(
        !netns_list().contains(prefix),
        "namespaces left: {}",
        netns_list()
    );
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "QEMU {pid} still running"
        );
    }
    let underlay = ["ulbr", "ulp0", "ulp1", "ul0"].map(str::to_owned);
    let left_behind: Vec<String> = host_links()
        .into_iter()
        .filter(|name| links.contains(name) || underlay.contains(name))
        .collect();
    assert!(
        left_behind.is_empty(),
        "links left on the host: {left_behind:?}"
    );
}

/// True when the test may run; otherwise says why on stderr (or fails when root tests are
/// required).
fn can_run() -> bool {
    can_run_with(&[])
}

/// [`can_run`], also needing `extra_programs` on the PATH.
fn can_run_with(extra_programs: &[&str]) -> bool {
    skip_reason(extra_programs).is_none_or(skip)
}

/// Says why a test does not run (false), or fails when root tests are required.
fn skip(reason: String) -> bool {
    if std::env::var("VCDS_REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
        panic!("VCDS_REQUIRE_ROOT_TESTS=1 but: {reason}");
    }
    // Written to the real stderr: libtest would swallow eprintln! of a passing test.
    let _ = writeln!(std::io::stderr(), "SKIP: {reason}");
    false
}

/// The namespace guard removes namespaces and kills what runs in them when a test panics.
#[test]
fn namespace_guard_cleans_up_on_panic() {
    if !can_run() {
        return;
    }
    let prefix = format!("vcdsg{}", std::process::id());
    let (tx, rx) = std::sync::mpsc::channel();
    let thread_prefix = prefix.clone();
    let outcome = std::thread::spawn(move || {
        let mut namespaces = Namespaces::new();
        let underlay = namespaces.build_underlay(&thread_prefix, 2).unwrap();
        let sleeper = Command::new("ip")
            .args(["netns", "exec", &underlay.pnodes[0].netns, "sleep", "600"])
            .spawn()
            .unwrap();
        tx.send(sleeper).unwrap();
        assert_eq!(namespaces.names().len(), 3);
        panic!("deliberate panic: the guard must clean up");
    })
    .join();
    assert!(outcome.is_err());
    assert!(!netns_list().contains(&prefix), "left: {}", netns_list());
    let mut sleeper = rx.recv().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sleeper.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "process in the namespace survived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_clusters_on_two_pnodes() {
    if !can_run() {
        return;
    }
    let _one = ONE_VM_TEST.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let prefix = format!("vcds{}", std::process::id());
    let run_dir = tempfile::tempdir().unwrap();
    let mut pids = Vec::new();
    {
        let mut namespaces = Namespaces::new();
        let vms = scenario(&mut namespaces, &prefix, run_dir.path(), started);
        // Guards: VMs die first (declared later), then the namespaces, also on panic.
        pids.extend(vms.iter().map(Vm::pid));
        drop(vms);
        namespaces.delete_all().unwrap();
    }

    let links: Vec<String> = CLUSTERS
        .iter()
        .flat_map(|&c| {
            [
                net::bridge_name(c),
                net::vxlan_name(c),
                net::tap_name(c, 0),
                net::tap_name(c, 1),
                format!("pr{c}"),
            ]
        })
        .collect();
    assert_clean(&prefix, &pids, &links);
    eprintln!(
        "two clusters on two P-nodes: {:?} in total",
        started.elapsed()
    );
    assert!(started.elapsed() < TEST_BUDGET + Duration::from_secs(10));
}

/// Builds everything, runs the checks and returns the VMs (the caller tears down).
fn scenario(
    namespaces: &mut Namespaces,
    prefix: &str,
    run_dir: &Path,
    started: Instant,
) -> Vec<Vm> {
    let underlay = namespaces.build_underlay(prefix, 2).unwrap();
    let image = image_dir();

    // Cluster networks: every P-node hosts one node of every cluster.
    let mut cluster_nets = Vec::new();
    for cluster in CLUSTERS {
        for (i, pnode) in underlay.pnodes.iter().enumerate() {
            let node = u8::try_from(i).unwrap();
            let desired = ClusterNet {
                netns: Some(pnode.netns.clone()),
                network_id: cluster,
                mode: L2Mode::Vxlan {
                    underlay_dev: pnode.underlay_dev.clone(),
                    underlay_ip: pnode.underlay_ip,
                    peers: underlay
                        .pnodes
                        .iter()
                        .filter(|p| p.netns != pnode.netns)
                        .map(|p| p.underlay_ip)
                        .collect(),
                },
                taps: vec![net::tap_name(cluster, node)],
            };
            assert!(!net::ensure(&desired).unwrap().is_empty());
            // Ensure-semantics: a second pass finds nothing missing.
            assert_eq!(net::ensure(&desired).unwrap(), Vec::new());
            cluster_nets.push(desired);
        }
    }

    // One probe namespace per cluster, on the cluster bridge of P-node 1, with the same address.
    let p1 = underlay.pnodes[0].netns.clone();
    let probes: Vec<String> = CLUSTERS
        .iter()
        .map(|cluster| {
            let probe = format!("{prefix}-pr{cluster}");
            namespaces.create(&probe).unwrap();
            add_leg(
                &Leg {
                    bridge_netns: &p1,
                    bridge: &net::bridge_name(*cluster),
                    port: &format!("pr{cluster}"),
                    netns: &probe,
                    dev: "pr0",
                    cidr: &format!("{PROBE_IP}/24"),
                },
                1500,
            )
            .unwrap();
            probe
        })
        .collect();

    // Node 0 of each cluster on P-node 1 pings node 1 on P-node 2 from inside the VM.
    let mut vms = Vec::new();
    for cluster in CLUSTERS {
        for (i, pnode) in underlay.pnodes.iter().enumerate() {
            let node = u8::try_from(i).unwrap();
            let name = format!("c{cluster}-n{node}");
            let mut append = format!(
                "console=ttyS0 quiet panic=1 vcds.hostname={name} vcds.ip={}/24",
                node_ip(node)
            );
            if node == 0 {
                append.push_str(&format!(" vcds.ping={}", node_ip(1)));
            }
            vms.push(
                Vm::start(VmSpec {
                    name: name.clone(),
                    netns: Some(pnode.netns.clone()),
                    accel: Accel::Tcg,
                    memory_mib: 160,
                    cpus: 1,
                    boot: Boot::Direct {
                        kernel: image.join("vmlinuz"),
                        initrd: image.join("initrd.img"),
                        append,
                    },
                    disk: None,
                    seed: None,
                    tap: net::tap_name(cluster, node),
                    mac: net::node_mac(cluster, node),
                    qmp_socket: run_dir.join(format!("{name}.qmp")),
                    console_log: run_dir.join(format!("{name}.log")),
                })
                .unwrap(),
            );
        }
    }
    for vm in &mut vms {
        let marker = format!("VCDS-NODE-UP {}", vm.spec().name);
        let boot = vm.wait_for_console(&marker, left(started)).unwrap();
        eprintln!("{} up after {boot:?}", vm.spec().name);
    }

    // Same cluster, across P-nodes, VM to VM.
    for vm in vms.iter_mut().filter(|vm| vm.spec().name.ends_with("-n0")) {
        let ok = format!("VCDS-PING-OK {}", node_ip(1));
        vm.wait_for_console(&ok, left(started))
            .unwrap_or_else(|e| panic!("{e}\n{}", vm.console()));
    }

    // Overlapping subnets: each probe reaches both nodes, and the answers come from its own
    // cluster's MACs (node 1's answer crossed the VXLAN of that VNI only).
    for (cluster, probe) in CLUSTERS.iter().zip(&probes) {
        for node in 0..2u8 {
            let ip = node_ip(node);
            assert!(ping_within(probe, &ip, 5), "{probe} cannot reach {ip}");
            assert_eq!(
                neighbour_mac(probe, &ip),
                Some(net::node_mac(*cluster, node).to_string()),
                "{ip} answered from the wrong cluster"
            );
        }
    }

    // Suspend: cluster 100's node 1 stops answering, and cluster 200's node with the same
    // address does not answer in its place; cluster 200 is unaffected. Resume: it answers.
    let c100_n1 = vms
        .iter_mut()
        .find(|vm| vm.spec().name == "c100-n1")
        .unwrap();
    let mut qmp = c100_n1.qmp(Duration::from_secs(5)).unwrap();
    assert_eq!(qmp.status().unwrap(), "running");
    qmp.stop().unwrap();
    assert_eq!(qmp.status().unwrap(), "paused");
    flush_neighbours(&probes[0]);
    assert!(
        !ping_within(&probes[0], &node_ip(1), 2),
        "stopped VM or another cluster answered"
    );
    assert!(
        ping_within(&probes[1], &node_ip(1), 3),
        "cluster 200 affected"
    );
    qmp.cont().unwrap();
    assert_eq!(qmp.status().unwrap(), "running");
    let resumed = Instant::now();
    assert!(
        ping_within(&probes[0], &node_ip(1), 10),
        "no answer after cont"
    );
    eprintln!("c100-n1 answers {:?} after cont", resumed.elapsed());
    assert_eq!(
        neighbour_mac(&probes[0], &node_ip(1)),
        Some(net::node_mac(100, 1).to_string())
    );
    drop(qmp);

    // Explicit teardown of the cluster networks (the namespaces' deletion would also do it).
    for vm in &mut vms {
        vm.shutdown(Duration::from_secs(5)).unwrap();
    }
    for desired in &cluster_nets {
        assert!(!net::remove(desired).unwrap().is_empty());
        assert_eq!(net::remove(desired).unwrap(), Vec::new());
    }
    assert!(
        started.elapsed() < TEST_BUDGET,
        "too slow: {:?}",
        started.elapsed()
    );
    vms
}

/// dnsmasq serving DHCP and TFTP in the frontend namespace; killed when dropped.
struct Frontend(Child);

impl Frontend {
    /// dnsmasq on `fe0` of `netns`, without DNS, its leases in `leases`, with `args`.
    fn start(netns: &str, leases: &Path, args: &[&str]) -> Frontend {
        Frontend(
            Command::new("ip")
                .args(["netns", "exec", netns, "dnsmasq", "--keep-in-foreground"])
                .args([
                    "--conf-file=/dev/null",
                    "--port=0",
                    "--interface=fe0",
                    "--bind-interfaces",
                    "--user=root",
                    "--pid-file=",
                ])
                .arg(format!("--dhcp-leasefile={}", leases.display()))
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

/// A frontend namespace `{prefix}-fe` with `fe0` (address `cidr`) on the bridge of
/// `cluster` in `pnode_netns`.
fn frontend_on(
    namespaces: &mut Namespaces,
    prefix: &str,
    pnode_netns: &str,
    cluster: u32,
    cidr: &str,
) -> String {
    let fe = format!("{prefix}-fe");
    namespaces.create(&fe).unwrap();
    add_leg(
        &Leg {
            bridge_netns: pnode_netns,
            bridge: &net::bridge_name(cluster),
            port: &format!("fe{cluster}"),
            netns: &fe,
            dev: "fe0",
            cidr,
        },
        1500,
    )
    .unwrap();
    fe
}

impl Drop for Frontend {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A node boots over the network Rocks-style: the frontend's DHCP decides its host name and
/// address by MAC, iPXE fetches kernel and initramfs over TFTP, and /init takes its address by
/// DHCP.
#[test]
fn pxe_boot_from_a_frontend_on_the_cluster_bridge() {
    if !can_run() {
        return;
    }
    let _one = ONE_VM_TEST.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let prefix = format!("vcdsx{}", std::process::id());
    let cluster = 300;
    let run_dir = tempfile::tempdir().unwrap();
    let tftp = run_dir.path().join("tftp");
    std::fs::create_dir(&tftp).unwrap();
    for file in ["vmlinuz", "initrd.img"] {
        std::fs::copy(image_dir().join(file), tftp.join(file)).unwrap();
    }
    std::fs::write(
        tftp.join("boot.ipxe"),
        "#!ipxe\n\
         kernel tftp://10.1.0.1/vmlinuz console=ttyS0 quiet panic=1 \
         vcds.hostname=${hostname} vcds.ip=dhcp\n\
         initrd tftp://10.1.0.1/initrd.img\n\
         boot\n",
    )
    .unwrap();

    let mut pids = Vec::new();
    {
        let mut namespaces = Namespaces::new();
        let underlay = namespaces.build_underlay(&prefix, 1).unwrap();
        let pnode = &underlay.pnodes[0];
        let tap = net::tap_name(cluster, 0);
        net::ensure(&ClusterNet {
            netns: Some(pnode.netns.clone()),
            network_id: cluster,
            mode: L2Mode::Vxlan {
                underlay_dev: pnode.underlay_dev.clone(),
                underlay_ip: pnode.underlay_ip,
                peers: Vec::new(),
            },
            taps: vec![tap.clone()],
        })
        .unwrap();
        let frontend_ns = frontend_on(
            &mut namespaces,
            &prefix,
            &pnode.netns,
            cluster,
            "10.1.0.1/24",
        );
        let ula = Command::new("ip")
            .args([
                "-n",
                &frontend_ns,
                "addr",
                "add",
                "fd00:10:1::1/64",
                "dev",
                "fe0",
            ])
            .status()
            .unwrap();
        assert!(ula.success());
        let mac = net::node_mac(cluster, 0);
        let _frontend = Frontend::start(
            &frontend_ns,
            &run_dir.path().join("leases"),
            &[
                "--dhcp-range=10.1.0.100,10.1.0.199,255.255.255.0,1h",
                &format!("--dhcp-host={mac},10.1.0.11,c300-n0"),
                // iPXE announces itself with option 175: hand it the script directly.
                "--dhcp-match=set:ipxe,175",
                "--dhcp-boot=tag:ipxe,boot.ipxe",
                // iPXE also configures IPv6 and, with no router advertisement, waits ~15 s
                // for one before it fetches its script: advertise the ULA prefix.
                "--enable-ra",
                "--dhcp-range=fd00:10:1::,ra-only",
                "--enable-tftp",
                &format!("--tftp-root={}", tftp.display()),
            ],
        );

        let mut vm = Vm::start(VmSpec {
            name: "c300-n0".to_owned(),
            netns: Some(pnode.netns.clone()),
            accel: Accel::Tcg,
            memory_mib: 160,
            cpus: 1,
            boot: Boot::Pxe,
            disk: None,
            seed: None,
            tap,
            mac,
            qmp_socket: run_dir.path().join("c300-n0.qmp"),
            console_log: run_dir.path().join("c300-n0.log"),
        })
        .unwrap();
        pids.push(vm.pid());
        let up = vm
            .wait_for_console("VCDS-NODE-UP c300-n0", left(started))
            .unwrap_or_else(|e| panic!("{e}\n{}", vm.console()));
        eprintln!("c300-n0 network-booted in {up:?}");
        assert!(
            ping_within(&frontend_ns, "10.1.0.11", 5),
            "node did not take its address by DHCP:\n{}",
            vm.console()
        );
        vm.shutdown(Duration::from_secs(5)).unwrap();
        namespaces.delete_all().unwrap();
    }
    assert_clean(
        &prefix,
        &pids,
        &[net::bridge_name(cluster), "fe300".to_owned()],
    );
}

/// Set (to a directory) in the agent child process the agent test starts.
const AGENT_DIR_ENV: &str = "VCDS_TEST_AGENT_DIR";
/// Set in that process when it runs outside the P-node namespace (`--netns`).
const AGENT_NETNS_ENV: &str = "VCDS_TEST_AGENT_NETNS";
/// Set in that process (to HOST:PORT) when it serves its gmond port.
const AGENT_GMOND_ENV: &str = "VCDS_TEST_AGENT_GMOND";
/// Set in that process when its key file is not `key` in its directory.
const AGENT_KEY_ENV: &str = "VCDS_TEST_AGENT_KEY";

/// Not a test of its own: the body of the agent process that `agent_in_a_pnode` starts (this
/// test binary re-executed); without the variable it does nothing.
#[test]
fn agent_process() {
    let Some(dir) = std::env::var_os(AGENT_DIR_ENV).map(PathBuf::from) else {
        return;
    };
    let config = AgentConfig {
        endpoint: Endpoint::Unix(dir.join("agent.sock")),
        key_file: std::env::var_os(AGENT_KEY_ENV).map_or_else(|| dir.join("key"), PathBuf::from),
        state_dir: dir.join("state"),
        netns: std::env::var(AGENT_NETNS_ENV).ok(),
        gmond: std::env::var(AGENT_GMOND_ENV)
            .ok()
            .map(|listen| vcds_site::gmond::GmondConfig {
                listen: listen.parse().unwrap(),
                pnode: "pnode-under-test".to_owned(),
                interval: Duration::from_millis(100),
            }),
    };
    agent::run(&config).unwrap();
}

/// The agent process; SIGKILLed when dropped (also when the test panics).
struct AgentProc(Child);

impl Drop for AgentProc {
    fn drop(&mut self) {
        // SIGKILL: the agent gets no chance to clean up.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where the agent process runs relative to its P-node's namespace.
enum Placement<'a> {
    /// `ip netns exec NETNS` (the local site's way).
    Inside(&'a str),
    /// In the host namespace with `--netns NETNS`.
    Outside(&'a str),
}

/// A directory for an agent process, with its key.
fn agent_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "0123456789abcdef0123456789abcdef-test-key\n").unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    dir
}

/// The agent of `dir` left nothing in its state directory but its state file.
fn assert_state_dir_clean(dir: &Path) {
    let state: Vec<_> = std::fs::read_dir(dir.join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        state,
        ["agent-state.json"],
        "files left in the state directory"
    );
}

/// Starts the agent and connects to it once it listens.
fn start_agent(placement: Placement<'_>, dir: &Path) -> (AgentProc, AgentClient) {
    start_agent_with(placement, dir, None)
}

/// [`start_agent`], serving the gmond port on `gmond` (outside placement only).
fn start_agent_with(
    placement: Placement<'_>,
    dir: &Path,
    gmond: Option<&str>,
) -> (AgentProc, AgentClient) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match placement {
        Placement::Inside(netns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", netns]).arg(exe);
            cmd
        }
        Placement::Outside(netns) => {
            let mut cmd = Command::new(exe);
            cmd.env(AGENT_NETNS_ENV, netns);
            if let Some(addr) = gmond {
                cmd.env(AGENT_GMOND_ENV, addr);
            }
            cmd
        }
    };
    let child = cmd
        .args([
            "--exact",
            "agent_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(AGENT_DIR_ENV, dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let agent = AgentProc(child);
    let endpoint = Endpoint::Unix(dir.join("agent.sock"));
    let key = Key::load(&dir.join("key")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match AgentClient::connect(&endpoint, key.clone()) {
            Ok(client) => return (agent, client),
            Err(e) if Instant::now() >= deadline => panic!("agent does not answer: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn free_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The `vm_state` of VM `name` on the agent's gmond port (in cluster `vcds-net-300`), once it
/// is `want` or 5 s have passed.
fn gmond_vm_state(endpoint: &str, name: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut bytes = Vec::new();
        let state = std::net::TcpStream::connect(endpoint)
            .and_then(|mut s| std::io::Read::read_to_end(&mut s, &mut bytes))
            .ok()
            .and_then(|_| vcds_monitor::parse_bytes(&bytes, &Default::default()).ok())
            .and_then(|doc| {
                let cluster = doc.clusters.iter().find(|c| c.name == "vcds-net-300")?;
                let host = cluster.hosts.iter().find(|h| h.name == name)?;
                Some(host.metric("vm_state")?.val.clone())
            })
            .unwrap_or_default();
        if state == want || Instant::now() >= deadline {
            return state;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Alive and not a zombie (an orphaned QEMU is reaped by whatever init this machine has).
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

#[test]
fn agent_in_a_pnode() {
    if !can_run() {
        return;
    }
    let _one = ONE_VM_TEST.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let prefix = format!("vcdsa{}", std::process::id());
    let dir = agent_dir();
    const CLUSTER: u32 = 300;
    let name = "c300-n0";
    let qemu_pid;
    {
        let mut namespaces = Namespaces::new();
        let underlay = namespaces.build_underlay(&prefix, 2).unwrap();
        let pnode = &underlay.pnodes[0];
        let (agent_proc, mut client) = start_agent(Placement::Inside(&pnode.netns), dir.path());
        let cluster_net = ClusterNet {
            // The agent runs inside the P-node: its own namespace, whatever the request says.
            netns: Some("ignored".to_owned()),
            network_id: CLUSTER,
            mode: L2Mode::Vxlan {
                underlay_dev: pnode.underlay_dev.clone(),
                underlay_ip: pnode.underlay_ip,
                peers: vec![underlay.pnodes[1].underlay_ip],
            },
            taps: vec![net::tap_name(CLUSTER, 0)],
        };
        assert!(!client.ensure_network(&cluster_net).unwrap().is_empty());
        assert_eq!(
            client.ensure_network(&cluster_net).unwrap(),
            Vec::<String>::new()
        );

        let image = image_dir();
        let spec = VmSpec {
            name: name.to_owned(),
            netns: None,
            accel: Accel::Tcg,
            memory_mib: 160,
            cpus: 1,
            boot: Boot::Direct {
                kernel: image.join("vmlinuz"),
                initrd: image.join("initrd.img"),
                append: format!(
                    "console=ttyS0 quiet panic=1 vcds.hostname={name} vcds.ip=10.3.0.11/24"
                ),
            },
            disk: None,
            seed: None,
            tap: net::tap_name(CLUSTER, 0),
            mac: net::node_mac(CLUSTER, 0),
            // The agent keeps these in its state directory.
            qmp_socket: PathBuf::from("/nonexistent/ignored.qmp"),
            console_log: PathBuf::from("/nonexistent/ignored.log"),
        };
        let status = client.start_vm(CLUSTER, &spec).unwrap();
        assert_eq!(status.qmp_status, "running");
        qemu_pid = status.pid;
        assert_eq!(
            client.start_vm(CLUSTER, &spec).unwrap().pid,
            qemu_pid,
            "not idempotent"
        );
        eprintln!("agent: VM started after {:?}", started.elapsed());

        let inventory = client.inventory().unwrap();
        assert_eq!(inventory.vms, vec![status.clone()]);
        let device = |inv: &agent::Inventory, name: &str| {
            inv.devices.iter().find(|d| d.name == name).cloned()
        };
        let vxlan = device(&inventory, &net::vxlan_name(CLUSTER)).unwrap();
        assert_eq!(
            (vxlan.kind.as_str(), vxlan.id),
            ("vxlan", Some(u64::from(CLUSTER)))
        );
        let tap = device(&inventory, &net::tap_name(CLUSTER, 0)).unwrap();
        assert_eq!(tap.master, Some(net::bridge_name(CLUSTER)));
        assert!(inventory.unknown_qemu.is_empty());

        // kill -9 of the agent leaves the VM running; the restarted agent re-adopts it.
        // The new agent runs outside the P-node's namespace (`--netns`), which must not matter.
        drop(agent_proc);
        assert!(process_alive(qemu_pid), "the VM died with the agent");
        let gmond = format!("127.0.0.1:{}", free_tcp_port());
        let (agent_proc, mut client) =
            start_agent_with(Placement::Outside(&pnode.netns), dir.path(), Some(&gmond));
        assert_eq!(client.inventory().unwrap().vms, vec![status]);
        assert_eq!(gmond_vm_state(&gmond, name, "running"), "running");

        // The node boots to its marker while we go on.
        let console = dir.path().join("state").join(format!("{name}.console"));
        let marker = format!("VCDS-NODE-UP {name}");
        while !std::fs::read_to_string(&console)
            .unwrap_or_default()
            .contains(&marker)
        {
            assert!(left(started) > Duration::ZERO, "{name} did not boot");
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("agent: VM booted after {:?}", started.elapsed());

        assert_eq!(client.suspend_vm(name).unwrap().qmp_status, "paused");
        assert_eq!(client.suspend_vm(name).unwrap().qmp_status, "paused");
        // The gmond port shows the pause at its next sample, in the VM's virtual cluster.
        assert_eq!(gmond_vm_state(&gmond, name, "paused"), "paused");
        assert_eq!(client.resume_vm(name).unwrap().qmp_status, "running");

        // The network stays while its VM runs.
        let err = client.remove_network(&cluster_net).unwrap_err().to_string();
        assert!(err.contains("still used by [\"c300-n0\"]"), "{err}");

        assert!(client.destroy_vm(name).unwrap());
        assert!(!client.destroy_vm(name).unwrap());
        assert!(!process_alive(qemu_pid), "QEMU survived DestroyVm");
        assert!(!client.remove_network(&cluster_net).unwrap().is_empty());
        assert_eq!(
            client.remove_network(&cluster_net).unwrap(),
            Vec::<String>::new()
        );
        let inventory = client.inventory().unwrap();
        assert!(
            inventory.vms.is_empty() && inventory.devices.is_empty(),
            "{inventory:?}"
        );
        drop(agent_proc);
        namespaces.delete_all().unwrap();
    }
    assert_clean(&prefix, &[], &[]);
    assert!(!process_alive(qemu_pid));
    assert_state_dir_clean(dir.path());
    eprintln!("agent in a P-node: {:?} in total", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(60));
}

// ---------------------------------------------------------------------------------------------
// GW-node

/// Tools the GW-node tests need besides the common ones.
const GW_TOOLS: [&str; 4] = ["nft", "busybox", "socat", "curl"];
const OUTSIDE_HOST: &str = "192.0.2.1";
const GW_OUTSIDE: &str = "192.0.2.10";
const KICKSTART_URL: &str = "http://10.5.0.2/install/sbin/kickstart.cgi";
/// The outside bridge of the GW P-node.
const OUTSIDE_BRIDGE: &str = "extbr";

/// A network id of this test process (GW namespaces are named by it, host-wide).
fn gw_network_id(offset: u32) -> u32 {
    4_000_000 * offset + std::process::id() % 4_000_000
}

fn gw_spec(network_id: u32, pnode: &str, tftp_root: Option<&Path>) -> GatewaySpec {
    GatewaySpec {
        network_id,
        netns: Some(pnode.to_owned()),
        cluster_bridge: net::bridge_name(network_id),
        subnet: "10.5.0.0".parse().unwrap(),
        prefix: 24,
        outside: OutsideLeg {
            bridge: OUTSIDE_BRIDGE.to_owned(),
            address: GW_OUTSIDE.parse().unwrap(),
            prefix: 24,
            gateway: Some(OUTSIDE_HOST.parse().unwrap()),
        },
        nodes: vec![
            GatewayNode {
                hostname: "frontend".to_owned(),
                mac: net::node_mac(network_id, 0),
                ip: "10.5.0.2".parse().unwrap(),
            },
            GatewayNode {
                hostname: "compute-0-0".to_owned(),
                mac: net::node_mac(network_id, 1),
                ip: "10.5.0.3".parse().unwrap(),
            },
        ],
        dns_servers: vec!["10.5.0.2".parse().unwrap()],
        pxe: tftp_root.map(|root| PxeBoot {
            tftp_root: root.to_owned(),
            bios_file: None,
            ipxe_file: Some("boot.ipxe".to_owned()),
        }),
        kickstart_url: Some(KICKSTART_URL.to_owned()),
        forwards: vec![PortForward {
            protocol: Protocol::Tcp,
            external_port: 2222,
            to: "10.5.0.2".parse().unwrap(),
            to_port: 22,
        }],
    }
}

/// Runs `argv` in `netns`; returns (success, stdout).
fn run_in(netns: &str, argv: &[&str]) -> (bool, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", netns])
        .args(argv)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {args:?}");
}

/// The GW P-node: one namespace on an underlay with the cluster bridge (VXLAN without peers),
/// the outside bridge, and the outside test host on it. Returns (P-node, outside host).
fn gw_pnode(
    namespaces: &mut Namespaces,
    prefix: &str,
    network_id: u32,
    taps: Vec<String>,
) -> (String, String) {
    let underlay = namespaces.build_underlay(prefix, 1).unwrap();
    let pnode = underlay.pnodes[0].clone();
    net::ensure(&ClusterNet {
        netns: Some(pnode.netns.clone()),
        network_id,
        mode: L2Mode::Vxlan {
            underlay_dev: pnode.underlay_dev.clone(),
            underlay_ip: pnode.underlay_ip,
            peers: Vec::new(),
        },
        taps,
    })
    .unwrap();
    let outside_bridge = |args: &[&str]| {
        let mut full = vec!["-n", &pnode.netns, "link"];
        full.extend(args);
        ip(&full);
    };
    outside_bridge(&["add", OUTSIDE_BRIDGE, "type", "bridge"]);
    outside_bridge(&["set", OUTSIDE_BRIDGE, "up"]);
    let host = format!("{prefix}-ext");
    namespaces.create(&host).unwrap();
    add_leg(
        &Leg {
            bridge_netns: &pnode.netns,
            bridge: OUTSIDE_BRIDGE,
            port: "exthost",
            netns: &host,
            dev: "eth0",
            cidr: &format!("{OUTSIDE_HOST}/24"),
        },
        1500,
    )
    .unwrap();
    (pnode.netns, host)
}

/// A node namespace on the cluster bridge: `eth0` with `mac`, no address.
fn node_ns(
    namespaces: &mut Namespaces,
    pnode: &str,
    name: &str,
    port: &str,
    bridge: &str,
    mac: &str,
) {
    namespaces.create(name).unwrap();
    ip(&[
        "-n", pnode, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name,
        "address", mac,
    ]);
    ip(&["-n", pnode, "link", "set", port, "master", bridge, "up"]);
    ip(&["-n", name, "link", "set", "eth0", "up"]);
}

/// The udhcpc hook: applies the lease and writes what it got to `$VCDS_LEASE_OUT`.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    { echo "ip=$ip"; echo "mask=$mask"; echo "hostname=$hostname"; echo "router=$router"
      echo "dns=$dns"; echo "opt224=$opt224"; } > "$VCDS_LEASE_OUT"
    ;;
esac
exit 0
"#;

/// The lease a node namespace gets by DHCP (busybox udhcpc asking for the kickstart option),
/// as `key=value` pairs; `None` when no server answered.
fn dhcp_lease(
    netns: &str,
    dir: &Path,
    tries: u32,
) -> Option<std::collections::BTreeMap<String, String>> {
    let script = dir.join("udhcpc.script");
    if !script.exists() {
        std::fs::write(&script, UDHCPC_SCRIPT).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let out = dir.join(format!("{netns}.lease"));
    let tries = tries.to_string();
    let status = Command::new("ip")
        .args([
            "netns", "exec", netns, "busybox", "udhcpc", "-i", "eth0", "-q", "-n", "-T", "1",
        ])
        .args(["-t", &tries, "-O", "224", "-s"])
        .arg(&script)
        .env("VCDS_LEASE_OUT", &out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    if !status.success() {
        return None;
    }
    let text = std::fs::read_to_string(&out).unwrap();
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A background process (a listener); killed when dropped.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP listener in `netns` on `addr:port` that answers every connection with
/// `{tag} peer=<client address>` and closes.
fn tcp_listener(netns: &str, addr: &str, port: u16, tag: &str) -> Background {
    Background(
        Command::new("ip")
            .args(["netns", "exec", netns, "socat"])
            .arg(format!("TCP-LISTEN:{port},bind={addr},reuseaddr,fork"))
            .arg(format!("SYSTEM:echo {tag} peer=$SOCAT_PEERADDR"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// What a TCP connection from `netns` to `addr:port` reads, `None` when it fails.
fn tcp_read(netns: &str, addr: &str, port: u16) -> Option<String> {
    let target = format!("TCP:{addr}:{port},connect-timeout=1");
    let (ok, out) = run_in(netns, &["socat", "-T", "3", "-", &target]);
    (ok && !out.is_empty()).then(|| out.trim().to_owned())
}

/// [`tcp_read`], retried while the listener starts.
fn tcp_read_within(netns: &str, addr: &str, port: u16, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(answer) = tcp_read(netns, addr, port) {
            return Some(answer);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Pids of live dnsmasq processes with a path under `dir` on their command line.
fn dnsmasq_pids_under(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            process_alive(*pid)
                && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    let c = String::from_utf8_lossy(&c);
                    c.starts_with("dnsmasq\0") && c.contains(&needle)
                })
        })
        .collect()
}

/// nftables tables in a namespace (`None`: the current one), from `nft -j list tables`.
fn nft_tables(netns: Option<&str>) -> Vec<String> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "nft"]);
            c
        }
        None => Command::new("nft"),
    };
    let out = cmd.args(["-j", "list", "tables"]).output().unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("table")?.get("name")?.as_str().map(str::to_owned))
        .collect()
}

fn links_of(netns: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-n", netns, "-j", "link", "show"])
        .output()
        .unwrap();
    let links: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    links
        .iter()
        .filter_map(|l| l.get("ifname")?.as_str().map(str::to_owned))
        .collect()
}

/// A directory dnsmasq (which drops root) can read.
fn world_readable_dir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[test]
fn gateway_of_a_cluster() {
    if !can_run_with(&GW_TOOLS) {
        return;
    }
    let started = Instant::now();
    let prefix = format!("vcdsw{}", std::process::id());
    let id = gw_network_id(1);
    let gw_ns = gateway::netns_name(id);
    let run_dir = tempfile::tempdir().unwrap();
    world_readable_dir(run_dir.path());
    let tftp = run_dir.path().join("tftp");
    world_readable_dir(&tftp);
    std::fs::write(tftp.join("hello.txt"), "hello from the GW-node\n").unwrap();
    let state = run_dir.path().join("state");
    let pnode;
    {
        let mut namespaces = Namespaces::new();
        let (p, host) = gw_pnode(&mut namespaces, &prefix, id, Vec::new());
        pnode = p;
        let bridge = net::bridge_name(id);
        let spec = gw_spec(id, &pnode, Some(&tftp));
        namespaces.adopt(&gw_ns);
        let actions = gateway::ensure(&spec, &state).unwrap();
        assert!(actions.iter().any(|a| a.contains("nft -f")), "{actions:?}");
        assert!(
            actions.iter().any(|a| a.contains("dnsmasq --conf-file")),
            "{actions:?}"
        );
        eprintln!("GW-node up after {:?}", started.elapsed());
        assert_eq!(
            gateway::ensure(&spec, &state).unwrap(),
            Vec::<String>::new()
        );
        let status = gateway::observe(id, Some(&pnode), &state).unwrap();
        let dnsmasq = status.dnsmasq_pid.expect("dnsmasq runs");
        assert!(
            status.netns_exists && status.ip_forward && status.nft_table,
            "{status:?}"
        );
        assert_eq!(status.legs.len(), 2, "{status:?}");
        assert_eq!(status.legs[0].port_master.as_deref(), Some(bridge.as_str()));
        assert_eq!(status.legs[1].port_master.as_deref(), Some(OUTSIDE_BRIDGE));
        assert!(status.stray_dnsmasq.is_empty());

        // (a) DHCP: the plan's address, host name, router, name server and kickstart URL.
        let fe = format!("{prefix}-fe");
        let c0 = format!("{prefix}-c0");
        let stranger = format!("{prefix}-x");
        node_ns(
            &mut namespaces,
            &pnode,
            &fe,
            "nfe",
            &bridge,
            &net::node_mac(id, 0).to_string(),
        );
        node_ns(
            &mut namespaces,
            &pnode,
            &c0,
            "nc0",
            &bridge,
            &net::node_mac(id, 1).to_string(),
        );
        node_ns(
            &mut namespaces,
            &pnode,
            &stranger,
            "nx",
            &bridge,
            &net::node_mac(id, 9).to_string(),
        );
        for (ns, ip, name) in [
            (&fe, "10.5.0.2", "frontend"),
            (&c0, "10.5.0.3", "compute-0-0"),
        ] {
            let lease = dhcp_lease(ns, run_dir.path(), 5).expect("no DHCP lease");
            assert_eq!(lease["ip"], ip);
            assert_eq!(lease["mask"], "24");
            assert_eq!(lease["hostname"], name);
            assert_eq!(lease["router"], "10.5.0.1");
            assert_eq!(lease["dns"].trim(), "10.5.0.2");
            assert_eq!(lease["opt224"], hex(KICKSTART_URL));
        }
        assert!(
            dhcp_lease(&stranger, run_dir.path(), 2).is_none(),
            "a MAC outside the plan got an address"
        );
        eprintln!("DHCP checked after {:?}", started.elapsed());

        // (b) Outbound NAT: the outside host sees the GW's outside address.
        assert!(
            ping_within(&c0, OUTSIDE_HOST, 3),
            "node cannot ping the outside host"
        );
        let _outside_listener = tcp_listener(&host, OUTSIDE_HOST, 7000, "outside");
        assert_eq!(
            tcp_read_within(&c0, OUTSIDE_HOST, 7000, Duration::from_secs(5)).as_deref(),
            Some(format!("outside peer={GW_OUTSIDE}").as_str())
        );

        // (c) The forwarded port reaches the frontend (which sees the real client); the
        // frontend's own port and the other node are not reachable directly.
        let _frontend_listener = tcp_listener(&fe, "10.5.0.2", 22, "frontend");
        let _compute_listener = tcp_listener(&c0, "10.5.0.3", 22, "compute");
        assert_eq!(
            tcp_read_within(&host, GW_OUTSIDE, 2222, Duration::from_secs(5)).as_deref(),
            Some(format!("frontend peer={OUTSIDE_HOST}").as_str())
        );
        ip(&[
            "-n",
            &host,
            "route",
            "add",
            "10.5.0.0/24",
            "via",
            GW_OUTSIDE,
        ]);
        assert_eq!(
            tcp_read(&host, "10.5.0.2", 22),
            None,
            "frontend reachable directly"
        );
        assert_eq!(
            tcp_read(&host, "10.5.0.3", 22),
            None,
            "node reachable directly"
        );
        assert_eq!(tcp_read(&host, GW_OUTSIDE, 2223), None);

        // (d) TFTP from the cluster, not from outside.
        let (ok, body) = run_in(
            &c0,
            &[
                "curl",
                "-sS",
                "--max-time",
                "10",
                "tftp://10.5.0.1/hello.txt",
            ],
        );
        assert!(ok, "TFTP from the node failed");
        assert_eq!(body, "hello from the GW-node\n");
        let url = format!("tftp://{GW_OUTSIDE}/hello.txt");
        let (ok, _) = run_in(&host, &["curl", "-sS", "--max-time", "2", &url]);
        assert!(!ok, "TFTP answered on the outside leg");
        eprintln!(
            "NAT, forward and TFTP checked after {:?}",
            started.elapsed()
        );

        // Drift is repaired with exactly the missing commands; dnsmasq keeps running.
        let table = gateway::table_name(id);
        let (ok, _) = run_in(&gw_ns, &["nft", "delete", "table", "inet", &table]);
        assert!(ok);
        ip(&[
            "-n",
            &gw_ns,
            "addr",
            "del",
            &format!("{GW_OUTSIDE}/24"),
            "dev",
            "out0",
        ]);
        let actions = gateway::ensure(&spec, &state).unwrap();
        assert_eq!(
            actions,
            [
                format!("ip -n {gw_ns} addr add {GW_OUTSIDE}/24 dev out0"),
                format!("ip -n {gw_ns} route replace default via {OUTSIDE_HOST} dev out0"),
                format!(
                    "ip netns exec {gw_ns} nft -f {}",
                    state.join(&gw_ns).join("nftables.conf").display()
                ),
            ]
        );
        assert_eq!(
            gateway::observe(id, Some(&pnode), &state)
                .unwrap()
                .dnsmasq_pid,
            Some(dnsmasq)
        );
        assert_eq!(
            tcp_read_within(&c0, OUTSIDE_HOST, 7000, Duration::from_secs(5)).as_deref(),
            Some(format!("outside peer={GW_OUTSIDE}").as_str())
        );

        // A changed plan restarts dnsmasq (and only that); the new node gets its address.
        let mut grown = spec.clone();
        grown.nodes.push(GatewayNode {
            hostname: "compute-0-1".to_owned(),
            mac: net::node_mac(id, 9),
            ip: "10.5.0.4".parse().unwrap(),
        });
        let actions = gateway::ensure(&grown, &state).unwrap();
        assert_eq!(actions.len(), 2, "{actions:?}");
        assert_eq!(actions[0], format!("kill -TERM {dnsmasq}"));
        assert!(actions[1].contains("dnsmasq --conf-file"), "{actions:?}");
        let restarted = gateway::observe(id, Some(&pnode), &state)
            .unwrap()
            .dnsmasq_pid
            .unwrap();
        assert_ne!(restarted, dnsmasq);
        assert!(!process_alive(dnsmasq));
        let lease = dhcp_lease(&stranger, run_dir.path(), 5).expect("new node got no lease");
        assert_eq!(
            (lease["ip"].as_str(), lease["hostname"].as_str()),
            ("10.5.0.4", "compute-0-1")
        );

        // (e) Remove leaves nothing.
        assert!(!gateway::remove(id, Some(&pnode), &state)
            .unwrap()
            .is_empty());
        assert_eq!(
            gateway::remove(id, Some(&pnode), &state).unwrap(),
            Vec::<String>::new()
        );
        assert!(!netns_list().contains(&gw_ns), "{}", netns_list());
        let pnode_links = links_of(&pnode);
        for port in [gateway::cluster_port(id), gateway::outside_port(id)] {
            assert!(
                !pnode_links.contains(&port),
                "{port} left in {pnode_links:?}"
            );
        }
        assert!(
            dnsmasq_pids_under(run_dir.path()).is_empty(),
            "dnsmasq left running"
        );
        assert!(!process_alive(restarted));
        for tables in [nft_tables(None), nft_tables(Some(&pnode))] {
            assert!(!tables.contains(&table), "{tables:?}");
        }
        assert!(!state.join(&gw_ns).exists(), "GW files left");
        let status = gateway::observe(id, Some(&pnode), &state).unwrap();
        assert!(!status.netns_exists && status.dnsmasq_pid.is_none() && status.files.is_empty());
        namespaces.delete_all().unwrap();
    }
    assert_clean(&prefix, &[], &[]);
    assert!(!netns_list().contains(&gw_ns));
    eprintln!("GW-node of a cluster: {:?} in total", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(90));
}

/// The agent keeps a GW-node: ensure, kill -9 of the agent (dnsmasq keeps serving and is
/// re-adopted by its pid file), a changed forward reloads only the ruleset, remove. The agent
/// runs with `--netns` (see `gateway`: named namespaces live in the host's mount namespace).
#[test]
fn agent_keeps_a_gateway() {
    if !can_run_with(&GW_TOOLS) {
        return;
    }
    let started = Instant::now();
    let prefix = format!("vcdsv{}", std::process::id());
    let id = gw_network_id(2);
    let gw_ns = gateway::netns_name(id);
    let dir = agent_dir();
    let dnsmasq;
    {
        let mut namespaces = Namespaces::new();
        let (pnode, host) = gw_pnode(&mut namespaces, &prefix, id, Vec::new());
        namespaces.adopt(&gw_ns);
        let (agent_proc, mut client) = start_agent(Placement::Outside(&pnode), dir.path());
        let mut spec = gw_spec(id, "ignored-the-agent-uses-its-own", None);
        assert!(!client.ensure_gateway(&spec).unwrap().is_empty());
        assert_eq!(client.ensure_gateway(&spec).unwrap(), Vec::<String>::new());
        let inventory = client.inventory().unwrap();
        assert_eq!(inventory.gateways.len(), 1, "{inventory:?}");
        let status = &inventory.gateways[0];
        assert_eq!(status.netns, gw_ns);
        assert!(
            status.nft_table && status.ip_forward && status.legs.len() == 2,
            "{status:?}"
        );
        dnsmasq = status.dnsmasq_pid.expect("dnsmasq runs");

        // kill -9: dnsmasq lives on; the new agent re-adopts it and finds nothing to do.
        drop(agent_proc);
        assert!(process_alive(dnsmasq), "dnsmasq died with the agent");
        let (agent_proc, mut client) = start_agent(Placement::Outside(&pnode), dir.path());
        assert_eq!(
            client.inventory().unwrap().gateways[0].dnsmasq_pid,
            Some(dnsmasq)
        );
        assert_eq!(client.ensure_gateway(&spec).unwrap(), Vec::<String>::new());
        let fe = format!("{prefix}-fe");
        node_ns(
            &mut namespaces,
            &pnode,
            &fe,
            "nfe",
            &net::bridge_name(id),
            &net::node_mac(id, 0).to_string(),
        );
        let lease = dhcp_lease(&fe, dir.path(), 5).expect("no lease from the re-adopted dnsmasq");
        assert_eq!(lease["ip"], "10.5.0.2");

        // A new forward changes the ruleset only.
        spec.forwards.push(PortForward {
            protocol: Protocol::Tcp,
            external_port: 8080,
            to: "10.5.0.2".parse().unwrap(),
            to_port: 80,
        });
        let actions = client.ensure_gateway(&spec).unwrap();
        assert_eq!(actions.len(), 1, "{actions:?}");
        assert!(actions[0].contains("nft -f"), "{actions:?}");
        let _web = tcp_listener(&fe, "10.5.0.2", 80, "web");
        assert_eq!(
            tcp_read_within(&host, GW_OUTSIDE, 8080, Duration::from_secs(5)).as_deref(),
            Some(format!("web peer={OUTSIDE_HOST}").as_str())
        );
        assert_eq!(
            client.inventory().unwrap().gateways[0].dnsmasq_pid,
            Some(dnsmasq)
        );

        assert!(client.remove_gateway(id).unwrap());
        assert!(!client.remove_gateway(id).unwrap());
        let inventory = client.inventory().unwrap();
        assert!(inventory.gateways.is_empty() && inventory.unknown_gateways.is_empty());
        assert!(!process_alive(dnsmasq), "dnsmasq survived RemoveGateway");
        assert!(!netns_list().contains(&gw_ns));
        drop(agent_proc);
        namespaces.delete_all().unwrap();
    }
    assert_clean(&prefix, &[], &[]);
    assert_state_dir_clean(dir.path());
    eprintln!("agent keeps a GW-node: {:?} in total", started.elapsed());
}

/// Seconds of the day of a dnsmasq log line (`Nov 24 21:32:48 dnsmasq…`).
fn log_seconds(line: &str) -> Option<i64> {
    let time = line.split_whitespace().nth(2)?;
    let mut parts = time.split(':').map(|p| p.parse::<i64>().ok());
    Some(parts.next()?? * 3600 + parts.next()?? * 60 + parts.next()??)
}

/// A VM network-boots through the GW-node's dnsmasq: iPXE gets its script right after the
/// DHCPACK (the router advertisements end its IPv6 wait), the node takes the plan's host name
/// and address by DHCP and reaches the outside host through the GW's NAT.
#[test]
fn vm_network_boots_through_the_gateway() {
    if !can_run_with(&GW_TOOLS) {
        return;
    }
    let _one = ONE_VM_TEST.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let prefix = format!("vcdsb{}", std::process::id());
    let id = gw_network_id(3);
    let gw_ns = gateway::netns_name(id);
    let run_dir = tempfile::tempdir().unwrap();
    world_readable_dir(run_dir.path());
    let tftp = run_dir.path().join("tftp");
    world_readable_dir(&tftp);
    for file in ["vmlinuz", "initrd.img"] {
        std::fs::copy(image_dir().join(file), tftp.join(file)).unwrap();
    }
    std::fs::write(
        tftp.join("boot.ipxe"),
        format!(
            "#!ipxe\n\
             kernel tftp://10.5.0.1/vmlinuz console=ttyS0 quiet panic=1 \
             vcds.hostname=${{hostname}} vcds.ip=dhcp vcds.ping={OUTSIDE_HOST}\n\
             initrd tftp://10.5.0.1/initrd.img\n\
             boot\n"
        ),
    )
    .unwrap();
    let state = run_dir.path().join("state");
    let tap = net::tap_name(id, 1);
    let mut pids = Vec::new();
    {
        let mut namespaces = Namespaces::new();
        let (pnode, _host) = gw_pnode(&mut namespaces, &prefix, id, vec![tap.clone()]);
        namespaces.adopt(&gw_ns);
        gateway::ensure(&gw_spec(id, &pnode, Some(&tftp)), &state).unwrap();
        let mut vm = Vm::start(VmSpec {
            name: "compute-0-0".to_owned(),
            netns: Some(pnode.clone()),
            accel: Accel::Tcg,
            memory_mib: 160,
            cpus: 1,
            boot: Boot::Pxe,
            disk: None,
            seed: None,
            tap,
            mac: net::node_mac(id, 1),
            qmp_socket: run_dir.path().join("vm.qmp"),
            console_log: run_dir.path().join("vm.log"),
        })
        .unwrap();
        pids.push(vm.pid());
        let up = vm
            .wait_for_console("VCDS-NODE-UP compute-0-0", left(started))
            .unwrap_or_else(|e| panic!("{e}\n{}", vm.console()));
        eprintln!("compute-0-0 network-booted through the GW-node in {up:?}");
        assert!(
            vm.console().contains("VCDS-NODE-ADDR 10.5.0.3/24"),
            "{}",
            vm.console()
        );
        vm.wait_for_console(&format!("VCDS-PING-OK {OUTSIDE_HOST}"), left(started))
            .unwrap_or_else(|e| panic!("{e}\n{}", vm.console()));

        // iPXE asked for its script within seconds of its DHCPACK (13 s or more without RAs).
        let log = std::fs::read_to_string(state.join(&gw_ns).join("dnsmasq.log")).unwrap();
        let mac = net::node_mac(id, 1).to_string();
        let ack = log
            .lines()
            .find(|l| l.contains("DHCPACK") && l.contains(&mac))
            .and_then(log_seconds)
            .unwrap_or_else(|| panic!("no DHCPACK in\n{log}"));
        let script = log
            .lines()
            .find(|l| l.contains("sent") && l.contains("boot.ipxe"))
            .and_then(log_seconds)
            .unwrap_or_else(|| panic!("boot.ipxe not sent:\n{log}"));
        let gap = (script - ack).rem_euclid(86_400);
        eprintln!("iPXE: {gap} s from DHCPACK to its script");
        assert!(gap <= 5, "iPXE waited {gap} s for its script:\n{log}");

        vm.shutdown(Duration::from_secs(5)).unwrap();
        assert!(!gateway::remove(id, Some(&pnode), &state)
            .unwrap()
            .is_empty());
        namespaces.delete_all().unwrap();
    }
    assert_clean(&prefix, &pids, &[]);
    assert!(!netns_list().contains(&gw_ns));
    assert!(dnsmasq_pids_under(run_dir.path()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// A real node: a Debian base image on a persistent disk, reachable by SSH

/// What the disk test needs besides the common tools: vcds-image's builders and the SSH
/// client (all installed by scripts/build-node-image.sh).
const DISK_TOOLS: [&str; 6] = [
    "mmdebstrap",
    "apt-ftparchive",
    "mke2fs",
    "qemu-img",
    "ssh",
    "ssh-keygen",
];
/// A cold image build fetches ~150 packages and runs mmdebstrap: minutes on a busy 2-core
/// machine; a cached one takes a second.
const IMAGE_BUILD_BUDGET: Duration = Duration::from_secs(900);
/// Everything after the image: two installs, two boots of the disk, SSH (TCG, 2 busy cores).
const DISK_TEST_BUDGET: Duration = Duration::from_secs(300);
const DISK_CLUSTER: u32 = 310;
const DISK_FRONTEND_IP: &str = "10.9.0.1";
const DISK_NODE_IP: &str = "10.9.0.11";
const DISK_NODE: &str = "d310-n0";
/// The node's booked disk.
const DISK_BYTES: u64 = 4 << 30;

/// The base image of the mandatory packages, from vcds-image's cache
/// (`$VCDS_CACHE_DIR/images`, built there from the local repository in `repo/` if missing),
/// within [`IMAGE_BUILD_BUDGET`].
fn base_image() -> vcds_image::BuildReport {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let built = (|| {
            let root = vcds_image::cache_root();
            let (suite, arch) = vcds_image::build::host_release()?;
            let set = vcds_image::PackageSet::new(&suite, &arch, Vec::<String>::new())?;
            let cache = vcds_image::ImageCache::open(&root.join("images"), 20 << 30)?;
            let repo = vcds_image::LocalRepo::open(&root.join("repo"))?;
            cache.build(&set, &repo, &vcds_image::AptIndex::load(&arch)?)
        })();
        let _ = tx.send(built);
    });
    rx.recv_timeout(IMAGE_BUILD_BUDGET)
        .expect("the base image was not built in time")
        .unwrap()
}

/// The install server of the frontend namespace: `GET /install/sbin/kickstart.cgi` answers
/// the current kickstart, `GET /install/progress?…` is recorded; stopped when dropped.
struct InstallServer {
    kickstart: std::sync::Arc<Mutex<String>>,
    progress: std::sync::Arc<Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InstallServer {
    fn start(netns: &str, addr: &str) -> InstallServer {
        use std::io::{BufRead, BufReader};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let listener =
            vcds_site::local::bind_tcp_in(netns, format!("{addr}:80").parse().unwrap()).unwrap();
        listener.set_nonblocking(true).unwrap();
        let kickstart = Arc::new(Mutex::new(String::new()));
        let progress = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ks, log, done) = (kickstart.clone(), progress.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(&stream);
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                // The headers are read and ignored.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let target = request.split_whitespace().nth(1).unwrap_or("");
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let (status, body) = match path {
                    "/install/sbin/kickstart.cgi" => ("200 OK", ks.lock().unwrap().clone()),
                    "/install/progress" => {
                        log.lock().unwrap().push(query.to_owned());
                        ("200 OK", "ok\n".to_owned())
                    }
                    _ => ("404 Not Found", String::new()),
                };
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.0 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        InstallServer {
            kickstart,
            progress,
            stop,
            thread: Some(thread),
        }
    }

    fn serve(&self, kickstart: String) {
        *self.kickstart.lock().unwrap() = kickstart;
    }

    /// The first progress report with `state=` one of `states` since `from` reports, within
    /// `wait`.
    fn wait_for(&self, from: usize, states: &[&str], wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        loop {
            let found = self.progress.lock().unwrap()[from..]
                .iter()
                .find(|q| states.iter().any(|s| q.contains(&format!("state={s}&"))))
                .cloned();
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn reports(&self) -> usize {
        self.progress.lock().unwrap().len()
    }
}

impl Drop for InstallServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A kickstart the Rocks way: `network` names the host, %packages what the image must hold,
/// %post (bash, chrooted into the disk) installs the login key and leaves a marker.
fn disk_kickstart(packages: &[&str], public_key: &str) -> String {
    format!(
        "# vcds disk test\n\
         network --bootproto=dhcp --hostname={DISK_NODE}\n\
         \n%packages --ignoremissing\n@base\n-nano\n{}\n%end\n\
         \n%post --interpreter=/bin/bash --log=/var/log/vcds-test.log\n\
         mkdir -p -m 700 /root/.ssh\n\
         echo '{public_key}' > /root/.ssh/authorized_keys\n\
         chmod 600 /root/.ssh/authorized_keys\n\
         echo \"post ran in bash $BASH_VERSION\" > /root/post-marker\n\
         ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key\n\
         %end\n",
        packages.join("\n")
    )
}

/// `command` on the node over SSH from `netns` (each try bounded); its stdout on success.
fn ssh(netns: &str, key: &Path, command: &str) -> Option<String> {
    let out = Command::new("timeout")
        .args(["20", "ip", "netns", "exec", netns, "ssh", "-i"])
        .arg(key)
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=2",
            "-o",
            "LogLevel=ERROR",
            &format!("root@{DISK_NODE_IP}"),
            command,
        ])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// [`ssh`] retried until it answers or `wait` has passed.
fn ssh_within(netns: &str, key: &Path, command: &str, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    loop {
        let answer = ssh(netns, key, command);
        if answer.is_some() || Instant::now() >= deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Resident memory of a process in MiB.
fn rss_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

/// A node installs onto its own disk (an overlay on a cached base image) through the
/// installer and a kickstart served from the frontend namespace (its %post makes the host key,
/// as the vcds-login roll's installs the manager's): a package the image lacks
/// fails the install, naming it; the good kickstart finishes, the disk's systemd boots and
/// answers SSH with the key %post installed; a file written under /root survives a kill -9 of
/// the agent and of QEMU, and the restart from the disk (no installer). Prints the figures.
#[test]
fn a_node_installs_onto_its_disk_and_boots_it_again() {
    if !can_run_with(&DISK_TOOLS) {
        return;
    }
    // Older installer images have no virtio_blk: they would install diskless.
    let initrd = image_dir().join("initrd.img");
    let has_disk_driver = Command::new("sh")
        .arg("-c")
        .arg("gzip -dc \"$1\" | cpio -it --quiet | grep -qx lib/modules/virtio_blk.ko")
        .arg("sh")
        .arg(&initrd)
        .status()
        .is_ok_and(|s| s.success());
    if !has_disk_driver {
        skip(format!(
            "{} has no virtio_blk (run scripts/build-node-image.sh)",
            initrd.display()
        ));
        return;
    }
    let _one = ONE_VM_TEST.lock().unwrap_or_else(|e| e.into_inner());
    let report = base_image();
    let image = &report.image;
    eprintln!(
        "disk: base image {} {} in {:.1} s ({} packages fetched, {} bytes), disk {} MiB \
         (filesystem {} MiB), {} packages installed, kernel {}",
        image.key(),
        if report.built { "built" } else { "cached" },
        report.seconds,
        report.fetched.packages,
        report.fetched.bytes,
        vcds_image::overlay_info(&image.disk()).unwrap().actual_size >> 20,
        image.manifest().filesystem_bytes >> 20,
        image.manifest().installed.len(),
        image.manifest().kernel_release
    );
    let started = Instant::now();
    let left = || DISK_TEST_BUDGET.saturating_sub(started.elapsed());
    let prefix = format!("vcdsd{}", std::process::id());
    let dir = agent_dir();
    let key = dir.path().join("id_ed25519");
    let keygen = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "vcds-disk-test",
            "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(keygen.success());
    let public_key = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let installer = image_dir();
    let (qemu_pids, overlay);
    {
        let mut namespaces = Namespaces::new();
        let underlay = namespaces.build_underlay(&prefix, 1).unwrap();
        let pnode = &underlay.pnodes[0];
        let (agent_proc, mut client) = start_agent(Placement::Inside(&pnode.netns), dir.path());
        let cluster_net = ClusterNet {
            netns: None,
            network_id: DISK_CLUSTER,
            mode: L2Mode::Vxlan {
                underlay_dev: pnode.underlay_dev.clone(),
                underlay_ip: pnode.underlay_ip,
                peers: Vec::new(),
            },
            taps: vec![net::tap_name(DISK_CLUSTER, 0)],
        };
        client.ensure_network(&cluster_net).unwrap();
        // The frontend: DHCP (the node's address and name by MAC) and the install server.
        let fe = frontend_on(
            &mut namespaces,
            &prefix,
            &pnode.netns,
            DISK_CLUSTER,
            &format!("{DISK_FRONTEND_IP}/24"),
        );
        let mac = net::node_mac(DISK_CLUSTER, 0);
        let _dhcp = Frontend::start(
            &fe,
            &dir.path().join("leases"),
            &[
                "--dhcp-range=10.9.0.100,10.9.0.199,255.255.255.0,1h",
                &format!("--dhcp-host={mac},{DISK_NODE_IP},{DISK_NODE}"),
            ],
        );
        let server = InstallServer::start(&fe, DISK_FRONTEND_IP);
        let spec = VmSpec {
            name: DISK_NODE.to_owned(),
            netns: None,
            accel: Accel::Tcg,
            memory_mib: 512,
            cpus: 2,
            boot: Boot::Direct {
                kernel: installer.join("vmlinuz"),
                initrd: installer.join("initrd.img"),
                append: format!(
                    "console=ttyS0 quiet panic=1 vcds.ip=dhcp \
                     vcds.ks=http://{DISK_FRONTEND_IP}/install/sbin/kickstart.cgi"
                ),
            },
            // The agent puts the overlay in its state directory.
            disk: Some(vcds_site::vm::VmDisk::of_image(
                image,
                DISK_BYTES,
                PathBuf::from("/ignored"),
            )),
            seed: None,
            tap: net::tap_name(DISK_CLUSTER, 0),
            mac,
            qmp_socket: PathBuf::from("/nonexistent/ignored.qmp"),
            console_log: PathBuf::from("/nonexistent/ignored.log"),
        };
        let console = dir
            .path()
            .join("state")
            .join(format!("{DISK_NODE}.console"));
        let console_text = || std::fs::read_to_string(&console).unwrap_or_default();
        let mut pids = Vec::new();

        // A package the image lacks: the install fails, naming it.
        server.serve(disk_kickstart(
            &["openssh-server", "vcds-no-such-package"],
            &public_key,
        ));
        pids.push(client.start_vm(DISK_CLUSTER, &spec).unwrap().pid);
        let failed = server
            .wait_for(0, &["failed", "finished"], left())
            .unwrap_or_else(|| panic!("no report from the installer:\n{}", console_text()));
        assert!(
            failed.starts_with("state=failed&")
                && failed.contains("the+image+lacks+packages:+vcds-no-such-package"),
            "{failed}\n{}",
            console_text()
        );
        assert!(client.destroy_vm(DISK_NODE).unwrap());

        // The good kickstart: installed, the disk's systemd boots and answers SSH.
        server.serve(disk_kickstart(&["openssh-server", "iproute2"], &public_key));
        let from = server.reports();
        let install_started = Instant::now();
        let status = client.start_vm(DISK_CLUSTER, &spec).unwrap();
        pids.push(status.pid);
        let finished = server
            .wait_for(from, &["failed", "finished"], left())
            .unwrap_or_else(|| panic!("no report from the installer:\n{}", console_text()));
        let install_time = install_started.elapsed();
        assert!(
            finished.starts_with("state=finished&"),
            "{finished}\n{}",
            console_text()
        );
        assert!(
            console_text().contains(&format!(
                "VCDS-INSTALL image {} holds the 2 packages",
                image.key()
            )),
            "the installer did not install onto the disk (an installer image without virtio_blk? \
             run scripts/build-node-image.sh):\n{}",
            console_text()
        );
        let answers = ssh_within(&fe, &key, "cat /etc/debian_version", left())
            .unwrap_or_else(|| panic!("no SSH after the install:\n{}", console_text()));
        let ssh_after_install = install_started.elapsed();
        assert!(!answers.trim().is_empty());
        let facts = ssh(
            &fe,
            &key,
            "hostname; nproc; cat /root/post-marker; df -B1 --output=size / | tail -n 1; \
             dpkg-query -W -f '${Status}\\n' openssh-server; cat /var/lib/vcds/installed; \
             free -m | awk '/^Mem:/ {print $3}'; test -c /dev/net/tun && echo tun; \
             echo survives > /root/survivor && sync",
        )
        .unwrap();
        let facts: Vec<&str> = facts.lines().collect();
        assert_eq!(facts[0], DISK_NODE, "{facts:?}");
        assert_eq!(facts[1], "2", "vCPUs: {facts:?}");
        assert!(facts[2].starts_with("post ran in bash 5"), "{facts:?}");
        let size: u64 = facts[3].trim().parse().unwrap();
        assert!(size > DISK_BYTES * 9 / 10, "not grown: {facts:?}");
        assert_eq!(facts[4], "install ok installed", "{facts:?}");
        let installed_marker = facts[5].to_owned();
        // The static device nodes the builder wrote (kmod-static-nodes is masked).
        assert_eq!(facts[7], "tun", "{facts:?}");
        assert!(installed_marker.starts_with("installed "), "{facts:?}");
        let qemu_rss = rss_mib(status.pid);
        overlay = dir
            .path()
            .join("state")
            .join(format!("{DISK_NODE}.disk.qcow2"));
        let overlay_bytes = vcds_image::overlay_info(&overlay).unwrap().actual_size;
        eprintln!(
            "disk: installer boot → finished {install_time:?}, → SSH {ssh_after_install:?}; \
             overlay {} KiB written (virtual {} MiB); QEMU RSS {qemu_rss} MiB, guest uses {} MiB \
             of {} MiB",
            overlay_bytes >> 10,
            DISK_BYTES >> 20,
            facts[6],
            spec.memory_mib
        );

        // kill -9 of the agent and of QEMU: the restarted agent keeps the VM as stopped, and
        // boots it from its disk, without the installer.
        drop(agent_proc);
        let _ = Command::new("kill")
            .args(["-KILL", &status.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while process_alive(status.pid) {
            assert!(Instant::now() < deadline, "QEMU survived kill -9");
            std::thread::sleep(Duration::from_millis(50));
        }
        let (agent_proc, mut client) = start_agent(Placement::Inside(&pnode.netns), dir.path());
        let inventory = client.inventory().unwrap();
        assert!(inventory.vms.is_empty(), "{inventory:?}");
        assert_eq!(inventory.stopped.len(), 1, "{inventory:?}");
        assert_eq!(inventory.stopped[0].overlay, overlay);
        let reports = server.reports();
        let restarted = Instant::now();
        let status = client.restart_vm(DISK_NODE).unwrap();
        pids.push(status.pid);
        assert_eq!(
            client.restart_vm(DISK_NODE).unwrap().pid,
            status.pid,
            "not idempotent"
        );
        let read_back = ssh_within(
            &fe,
            &key,
            "cat /root/survivor /var/lib/vcds/installed",
            left(),
        )
        .unwrap_or_else(|| panic!("no SSH after the restart:\n{}", console_text()));
        let ssh_after_restart = restarted.elapsed();
        assert_eq!(read_back, format!("survives\n{installed_marker}\n"));
        assert!(
            !console_text().contains("VCDS-INSTALL"),
            "the installer ran again"
        );
        assert_eq!(server.reports(), reports, "the installer reported again");
        // The tuning leaves no unit failed.
        let state = ssh(
            &fe,
            &key,
            "systemctl is-system-running --wait; systemd-analyze",
        );
        let state = state.unwrap_or_default();
        assert!(state.starts_with("running\n"), "{state}");
        eprintln!(
            "disk: boot from the disk → SSH {ssh_after_restart:?} ({})",
            state.lines().nth(1).unwrap_or("")
        );

        assert!(client.destroy_vm(DISK_NODE).unwrap());
        assert!(!overlay.exists(), "DestroyVm left the disk");
        assert!(client.inventory().unwrap().stopped.is_empty());
        client.remove_network(&cluster_net).unwrap();
        drop(agent_proc);
        drop(server);
        namespaces.delete_all().unwrap();
        qemu_pids = pids;
    }
    assert_clean(&prefix, &qemu_pids, &[]);
    assert_state_dir_clean(dir.path());
    // The cache no longer counts the node as a user of its image.
    assert!(
        vcds_image::ImageCache::open(&vcds_image::cache_root().join("images"), u64::MAX)
            .unwrap()
            .list()
            .unwrap()
            .iter()
            .all(|i| !i.users.contains(&overlay))
    );
    eprintln!("disk test: {:?} after the image", started.elapsed());
}

/// A stand-in for `vcds agent` as the local site starts it: this test binary's
/// `agent_process`, with the agent's socket on its command line (a test filter that matches
/// nothing), where teardown looks for it.
fn agent_stand_in(dir: &Path) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        r#"#!/bin/sh
# vcds agent --socket unix:DIR/agent.sock --key-file KEY --state-dir DIR/state --netns NETNS ...
while [ $# -gt 0 ]; do
  case "$1" in
    --socket) socket=$2; shift ;;
    --key-file) key=$2; shift ;;
    --netns) netns=$2; shift ;;
  esac
  shift
done
dir=$(dirname "${{socket#unix:}}")
export {AGENT_DIR_ENV}="$dir" {AGENT_KEY_ENV}="$key" {AGENT_NETNS_ENV}="$netns"
exec '{exe}' --exact agent_process --nocapture --test-threads=1 agent "$socket"
"#,
        exe = exe.display()
    );
    let path = dir.join("vcds");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// Tears the local site down when dropped (also when the test panics).
struct SiteGuard(LocalSite);

impl Drop for SiteGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.teardown() {
            eprintln!("local site teardown: {e}");
        }
    }
}

/// `ip -j` output of `args` in the host's namespace.
fn ip_json(args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new("ip").arg("-j").args(args).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// What a TCP connection from the host's namespace to `addr:port` reads; through device
/// `dev` when given (whatever the routes say), else as the host routes it.
fn host_tcp_read(dev: Option<&str>, addr: &str, port: u16, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    loop {
        let mut target = format!("TCP:{addr}:{port},connect-timeout=1");
        if let Some(dev) = dev {
            target.push_str(&format!(",so-bindtodevice={dev}"));
        }
        let out = Command::new("socat")
            .args(["-T", "3", "-", &target])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !text.is_empty() {
            return Some(text);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_host_reaches_the_outside_network() {
    if !can_run_with(&["socat"]) {
        return;
    }
    let prefix = format!("vch{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let config = LocalSiteConfig {
        prefix: prefix.clone(),
        pnodes: 1,
        state_root: dir.path().join("site"),
        vcds_exe: agent_stand_in(dir.path()),
    };
    let outside: &str = "198.19.0.0/16";
    // Another local site on this machine may hold the route to the outside network already.
    let routed_before = ip_json(&["route", "show", outside]);
    let agent_pid;
    {
        let site = SiteGuard(LocalSite::bootstrap(&config).unwrap());
        let dev = site.0.host_leg();
        assert_eq!(dev, format!("{prefix}-out"));
        agent_pid = std::fs::read_to_string(dir.path().join("site/pnode1/agent.pid"))
            .unwrap()
            .trim()
            .parse::<u32>()
            .unwrap();

        // The leg: HOST_IP/16, up, a port of the outside bridge at its other end.
        let addrs = ip_json(&["addr", "show", "dev", &dev]);
        let inet: Vec<String> = addrs[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["family"] == "inet")
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect();
        assert_eq!(inet, [format!("{HOST_IP}/16")]);
        let port = ip_json(&["-n", &site.0.outside_netns, "link", "show", "host"]);
        assert_eq!(port[0]["master"], OUTSIDE_HUB, "{port:?}");
        // Only the outside network goes through it.
        let routes = ip_json(&["route", "show", "dev", &dev]);
        let dsts: Vec<&str> = routes.iter().filter_map(|r| r["dst"].as_str()).collect();
        assert_eq!(dsts, [outside], "{routes:?}");
        assert!(ip_json(&["route", "show", "default", "dev", &dev]).is_empty());

        // A GW-node's outside leg on the P-node's outside bridge, a listener behind it.
        let mut namespaces = Namespaces::new();
        let gw = format!("{prefix}-gw");
        namespaces.create(&gw).unwrap();
        let gw_ip = LocalSite::gateway_outside_ip(4242).to_string();
        add_leg(
            &Leg {
                bridge_netns: &site.0.pnodes[0].netns,
                bridge: OUTSIDE_BRIDGE,
                port: "gwx4242",
                netns: &gw,
                dev: "out0",
                cidr: &format!("{gw_ip}/16"),
            },
            1500,
        )
        .unwrap();
        let _listener = tcp_listener(&gw, &gw_ip, 2222, "gw-node");
        let wait = Duration::from_secs(10);
        let want = format!("gw-node peer={HOST_IP}");
        assert_eq!(
            host_tcp_read(Some(&dev), &gw_ip, 2222, wait).as_deref(),
            Some(want.as_str())
        );
        if routed_before.is_empty() {
            // The host's own routing takes it there.
            assert_eq!(
                host_tcp_read(None, &gw_ip, 2222, wait).as_deref(),
                Some(want.as_str())
            );
        } else {
            let _ = writeln!(
                std::io::stderr(),
                "NOTE: another device routes {outside} ({routed_before:?}): \
                 reached the GW-node through {dev} explicitly"
            );
        }

        // Bootstrap again: the leg and the agent are adopted, nothing is made twice.
        let again = LocalSite::bootstrap(&config).unwrap();
        assert_eq!(again.host_leg(), dev);
        assert_eq!(
            host_links().iter().filter(|l| **l == dev).count(),
            1,
            "{:?}",
            host_links()
        );
        assert!(process_alive(agent_pid), "the agent was not adopted");
        assert_eq!(
            host_tcp_read(Some(&dev), &gw_ip, 2222, wait).as_deref(),
            Some(want.as_str())
        );
        namespaces.delete_all().unwrap();
    }
    // Teardown (the guard's): no namespace, no agent, no leg.
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(agent_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!process_alive(agent_pid), "the agent outlived teardown");
    assert_clean(&prefix, &[], &[format!("{prefix}-out")]);
    assert!(ip_json(&["addr", "show", "to", &format!("{HOST_IP}/32")])
        .iter()
        .all(|l| l["ifname"] != format!("{prefix}-out")));
}
