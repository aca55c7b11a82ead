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
//!
//! Needs root, /dev/net/tun, qemu-system-x86_64, ping, dnsmasq and the node image, all from
//! scripts/build-node-image.sh; otherwise prints `SKIP: …` (fails instead when
//! VCDS_REQUIRE_ROOT_TESTS=1).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vcds_site::agent::{self, AgentClient, AgentConfig};
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

fn skip_reason() -> Option<String> {
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
    for program in ["qemu-system-x86_64", "ping", "dnsmasq"] {
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
    let Some(reason) = skip_reason() else {
        return true;
    };
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
                Some(net::node_mac(*cluster, node)),
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
        Some(net::node_mac(100, 1))
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
        let frontend_ns = format!("{prefix}-fe");
        namespaces.create(&frontend_ns).unwrap();
        add_leg(
            &Leg {
                bridge_netns: &pnode.netns,
                bridge: &net::bridge_name(cluster),
                port: "fe300",
                netns: &frontend_ns,
                dev: "fe0",
                cidr: "10.1.0.1/24",
            },
            1500,
        )
        .unwrap();
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
        let _frontend = Frontend(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &frontend_ns,
                    "dnsmasq",
                    "--keep-in-foreground",
                ])
                .args([
                    "--conf-file=/dev/null",
                    "--port=0",
                    "--interface=fe0",
                    "--bind-interfaces",
                    "--user=root",
                    "--pid-file=",
                    "--dhcp-range=10.1.0.100,10.1.0.199,255.255.255.0,1h",
                    &format!("--dhcp-host={mac},10.1.0.11,c300-n0"),
                    &format!(
                        "--dhcp-leasefile={}",
                        run_dir.path().join("leases").display()
                    ),
                    // iPXE announces itself with option 175: hand it the script directly.
                    "--dhcp-match=set:ipxe,175",
                    "--dhcp-boot=tag:ipxe,boot.ipxe",
                    // iPXE also configures IPv6 and, with no router advertisement, waits ~15 s
                    // for one before it fetches its script: advertise the ULA prefix.
                    "--enable-ra",
                    "--dhcp-range=fd00:10:1::,ra-only",
                    "--enable-tftp",
                    &format!("--tftp-root={}", tftp.display()),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );

        let mut vm = Vm::start(VmSpec {
            name: "c300-n0".to_owned(),
            netns: Some(pnode.netns.clone()),
            accel: Accel::Tcg,
            memory_mib: 160,
            cpus: 1,
            boot: Boot::Pxe,
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

/// Not a test of its own: the body of the agent process that `agent_in_a_pnode` starts (this
/// test binary re-executed); without the variable it does nothing.
#[test]
fn agent_process() {
    let Some(dir) = std::env::var_os(AGENT_DIR_ENV).map(PathBuf::from) else {
        return;
    };
    let config = AgentConfig {
        endpoint: Endpoint::Unix(dir.join("agent.sock")),
        key_file: dir.join("key"),
        state_dir: dir.join("state"),
        netns: std::env::var(AGENT_NETNS_ENV).ok(),
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

/// Starts the agent and connects to it once it listens.
fn start_agent(placement: Placement<'_>, dir: &Path) -> (AgentProc, AgentClient) {
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
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "0123456789abcdef0123456789abcdef-test-key\n").unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
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
        let (agent_proc, mut client) = start_agent(Placement::Outside(&pnode.netns), dir.path());
        assert_eq!(client.inventory().unwrap().vms, vec![status]);

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
    let state: Vec<_> = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        state,
        ["agent-state.json"],
        "files left in the state directory"
    );
    eprintln!("agent in a P-node: {:?} in total", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(60));
}
