//! Acceptance of the local site, as root: `vcds serve` bootstraps two P-nodes with agents and
//! builds real virtual clusters — QEMU VMs installed from their kickstarts, one VXLAN network
//! per cluster across the P-nodes, a GW-node each — driven by the outside client
//! `conformance/vcctl.py` (the independent Python vcctl, which needs no build); the user's
//! logins are the Rust vcctl's `vcctl ssh` from this machine.
//!
//! Prints `SKIP:` without root, QEMU, dnsmasq, tcpdump or the node image
//! (scripts/build-node-image.sh); `VCDS_REQUIRE_ROOT_TESTS=1` makes that a failure. Whatever
//! happens, the guard stops the manager and runs `vcds site-down`, and the test checks that
//! nothing of the site is left.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use vcds_site::netns::{add_leg, Leg, Namespaces};

const VCDS: &str = env!("CARGO_BIN_EXE_vcds");

/// The Rust vcctl beside `vcds` (`cargo build --workspace` builds it; CI does first).
fn vcctl_bin() -> PathBuf {
    let bin = Path::new(VCDS).with_file_name("vcctl");
    assert!(
        bin.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        bin.display()
    );
    bin
}
/// Both clusters ask for this subnet: their addresses are identical.
const SUBNET: &str = "10.128.50";
const FRONTEND_IP: &str = "10.128.50.254";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn image_dir() -> PathBuf {
    std::env::var_os("VCDS_CACHE_DIR")
        .map_or_else(|| PathBuf::from("/var/cache/vcds"), PathBuf::from)
        .join("node")
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
    for program in [
        "qemu-system-x86_64",
        "dnsmasq",
        "nft",
        "tcpdump",
        "socat",
        "python3",
    ] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
        if !found {
            return Some(format!(
                "{program} not found (scripts/build-node-image.sh installs it)"
            ));
        }
    }
    if !image_dir().join("initrd.img").is_file() {
        return Some("no node image (run scripts/build-node-image.sh)".into());
    }
    None
}

/// One local site at a time: GW-node namespaces are named by network id machine-wide, so two
/// sites' first clusters would both be `gw-1`, and only one site's leg can carry the host's
/// route to the outside network. The mutex orders this binary's tests; the lock file, which
/// bench/local-site-bench.sh takes too, orders them against any other site on this machine.
static ONE_SITE: std::sync::Mutex<()> = std::sync::Mutex::new(());
const HOST_LEG_LOCK: &str = "/run/vcds-local-site.lock";

fn alone() -> (std::sync::MutexGuard<'static, ()>, Option<std::fs::File>) {
    let order = ONE_SITE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let file = std::fs::File::create(HOST_LEG_LOCK).ok();
    if let Some(file) = &file {
        file.lock().expect("lock the local-site lock file");
    }
    (order, file)
}

fn can_run() -> bool {
    let Some(reason) = skip_reason() else {
        return true;
    };
    if std::env::var("VCDS_REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
        panic!("VCDS_REQUIRE_ROOT_TESTS=1 but: {reason}");
    }
    let _ = writeln!(std::io::stderr(), "SKIP: {reason}");
    false
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap()
}

fn netns_list() -> String {
    text(&run("ip", &["netns", "list"]))
}

fn ping(netns: &str, ip: &str) -> bool {
    run(
        "ip",
        &["netns", "exec", netns, "ping", "-c", "1", "-W", "1", ip],
    )
    .status
    .success()
}

fn ping_within(netns: &str, ip: &str, tries: u32) -> bool {
    (0..tries).any(|_| ping(netns, ip))
}

/// `vcds serve` on the local site `prefix`, and the guard that takes it all down.
struct Site {
    prefix: String,
    data: tempfile::TempDir,
    port: u16,
    manager: Option<Child>,
    /// The manager's `--boot` mode.
    boot: &'static str,
    /// The manager's `--nodes`: `diskless` (network tests) or `installed`.
    nodes: &'static str,
}

impl Site {
    fn new(prefix: &str) -> Site {
        let data = tempfile::tempdir().unwrap();
        std::fs::write(
            data.path().join("site.json"),
            r#"{"config": {"overlapping_subnets": true}}"#,
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Site {
            prefix: prefix.to_owned(),
            data,
            port,
            manager: None,
            boot: "direct",
            nodes: "diskless",
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let rolls = repo().join("rolls");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.path().join("manager.log"))
            .unwrap();
        let child = Command::new(VCDS)
            .args(["serve", "--local-prefix", &self.prefix, "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.data.path())
            .arg("--site-config")
            .arg(self.data.path().join("site.json"))
            .arg("--roll-root")
            .arg(&rolls)
            .arg("--roll")
            .arg(rolls.join("vcds-base"))
            .arg("--roll")
            .arg(rolls.join("vcds-compute"))
            .args(["--install-timeout-secs", "600", "--boot", self.boot])
            .args(["--nodes", self.nodes])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.manager = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "vcds serve did not start:\n{}",
                self.log()
            );
            if let Some(status) = self.manager.as_mut().unwrap().try_wait().unwrap() {
                panic!("vcds serve exited ({status}):\n{}", self.log());
            }
            sleep(Duration::from_millis(100));
        }
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.manager.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("manager.log")).unwrap_or_default()
    }

    fn vcctl(&self, args: &[&str]) -> Output {
        Command::new("python3")
            .arg(repo().join("conformance/vcctl.py"))
            .args(["--url", &self.url()])
            .args(args)
            .output()
            .unwrap()
    }

    /// `vcctl status`: (phase, VXLAN network id, node table lines).
    fn status(&self, id: &str) -> (String, u32, String) {
        let out = self.vcctl(&["status", id]);
        let text = text(&out);
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let network = field("Network");
        let vni = network
            .strip_prefix("VXLAN ")
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (field("Phase"), vni, text)
    }

    /// `vcctl metrics`: node → (P-node, state) from the System's vcds:NodeMetrics.
    fn node_metrics(&self, id: &str) -> BTreeMap<String, (String, String)> {
        text(&self.vcctl(&["metrics", id]))
            .lines()
            .skip_while(|l| !l.starts_with("Name "))
            .skip(1)
            .filter_map(|l| {
                let mut cols = l.split_whitespace();
                let (name, pnode, state) = (cols.next()?, cols.next()?, cols.next()?);
                Some((name.to_owned(), (pnode.to_owned(), state.to_owned())))
            })
            .collect()
    }

    /// Waits (up to `secs`) until every node of `id` reports `state` through Ganglia.
    fn wait_for_node_states(&self, id: &str, nodes: usize, state: &str, secs: u64) {
        let started = Instant::now();
        loop {
            let metrics = self.node_metrics(id);
            if metrics.len() == nodes && metrics.values().all(|(_, s)| s == state) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(secs),
                "nodes of {id} not all {state} in Ganglia: {metrics:?}\n{}",
                self.log()
            );
            sleep(Duration::from_millis(500));
        }
    }

    /// Pid of P-node `pnode`'s agent (its pid file).
    fn agent_pid(&self, pnode: &str) -> u32 {
        let file = self.data.path().join("site").join(pnode).join("agent.pid");
        std::fs::read_to_string(file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn deploy(&self, descriptor: &Path) -> String {
        let out = self.vcctl(&["deploy", descriptor.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "deploy: {}\n{}",
            text(&out),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_owned()
    }

    fn descriptor(&self, name: &str) -> PathBuf {
        let path = self.data.path().join(format!("{name}.cdl"));
        std::fs::write(
            &path,
            format!(
                r#"<?xml version="1.0"?>
<cdl:cdl xmlns:cdl="http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0"
    xmlns:vc="urn:vcds:2026:cdl">
  <cdl:import location="vcds:cluster"/>
  <cdl:system>
    <{name} cdl:extends="vc:Cluster">
      <vc:name>{name}</vc:name>
      <vc:reservation><vc:duration>PT2H</vc:duration></vc:reservation>
      <vc:network><vc:subnet>{SUBNET}.0/24</vc:subnet></vc:network>
      <vc:gateway><vc:forward protocol="tcp" port="22" external="2222"/></vc:gateway>
    </{name}>
  </cdl:system>
</cdl:cdl>
"#
            ),
        )
        .unwrap();
        path
    }

    /// `descriptor(name)` with alice's login (the public key of `key`), `installer` and
    /// `scheduler`.
    fn login_descriptor(
        &self,
        name: &str,
        key: &Path,
        installer: &str,
        scheduler: &str,
    ) -> PathBuf {
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let descriptor = self.descriptor(name);
        let with_login = std::fs::read_to_string(&descriptor).unwrap().replace(
            "</vc:gateway>",
            &format!(
                "</vc:gateway><vc:login><vc:user>alice</vc:user><vc:authorizedKey>{}</vc:authorizedKey></vc:login>\
                 <vc:installer>{installer}</vc:installer><vc:scheduler>{scheduler}</vc:scheduler>",
                public.trim()
            ),
        );
        std::fs::write(&descriptor, with_login).unwrap();
        descriptor
    }

    fn state_dir(&self, pnode: &str) -> PathBuf {
        self.data.path().join("site").join(pnode).join("state")
    }

    /// QMP `query-status` of a VM, through its socket in the agent's state directory.
    fn qmp_status(&self, pnode: &str, vm: &str) -> String {
        let socket = self.state_dir(pnode).join(format!("{vm}.qmp"));
        let mut child = Command::new("socat")
            .arg("-")
            .arg(format!("UNIX-CONNECT:{}", socket.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(br#"{"execute":"qmp_capabilities"}{"execute":"query-status"}"#)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Namespaces, agents, QEMUs and dnsmasqs of this site still there.
    fn leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = netns_list()
            .lines()
            .filter(|l| l.starts_with(&format!("{}-", self.prefix)))
            .map(str::to_owned)
            .collect();
        let needle = self.data.path().display().to_string();
        for proc in text(&run("ps", &["-eo", "pid,args"])).lines() {
            if proc.contains(&needle) && !proc.contains(" ps ") {
                left.push(proc.trim().to_owned());
            }
        }
        left
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.kill9();
        let out = Command::new(VCDS)
            .args(["site-down", "--local-prefix", &self.prefix, "--data-dir"])
            .arg(self.data.path())
            .output();
        if let Ok(out) = out {
            if !out.status.success() {
                eprintln!("vcds site-down: {}", text(&out));
            }
        }
    }
}

/// A test host on cluster bridge `vcbr<vni>` of P-node namespace `pnode`.
fn probe(namespaces: &mut Namespaces, pnode: &str, vni: u32, name: &str, ip: &str) {
    namespaces.create(name).unwrap();
    add_leg(
        &Leg {
            bridge_netns: pnode,
            bridge: &format!("vcbr{vni}"),
            port: &format!("pr{vni}"),
            netns: name,
            dev: "eth0",
            cidr: &format!("{ip}/24"),
        },
        1500,
    )
    .unwrap();
    let out = run(
        "ip",
        &[
            "-n",
            name,
            "route",
            "add",
            "default",
            "via",
            &format!("{SUBNET}.1"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
}

/// The MAC that answered ARP for `ip` in `netns`.
fn neighbour_mac(netns: &str, ip: &str) -> Option<String> {
    let out = run("ip", &["-n", netns, "-j", "neigh", "show", ip]);
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    entries.get(0)?.get("lladdr")?.as_str().map(str::to_owned)
}

/// MAC column of the node table for `node`.
fn node_mac(status: &str, node: &str) -> String {
    node_field(status, node, |w| {
        w.len() == 17 && w.matches(':').count() == 5
    })
}

/// P-node column of the node table for `node`.
fn node_pnode(status: &str, node: &str) -> String {
    node_field(status, node, |w| w.starts_with("pnode"))
}

fn node_field(status: &str, node: &str, is_field: impl Fn(&str) -> bool) -> String {
    status
        .lines()
        .find(|l| l.starts_with(&format!("{node} ")))
        .and_then(|l| l.split_whitespace().find(|w| is_field(w)))
        .unwrap_or_else(|| panic!("no such field of {node} in\n{status}"))
        .to_owned()
}

/// The namespace of the P-node that does not host `node` (of the two).
fn other_pnode_ns(prefix: &str, status: &str, node: &str) -> String {
    match node_pnode(status, node).as_str() {
        "pnode1" => format!("{prefix}-p2"),
        _ => format!("{prefix}-p1"),
    }
}

#[test]
fn two_clusters_installed_isolated_natted_suspended_and_gone() {
    let _alone = alone();
    if !can_run() {
        return;
    }
    let prefix = format!("vl{}", std::process::id() % 100_000);
    let mut site = Site::new(&prefix);
    site.start();

    // A cloud image needs a disk: a diskless site refuses it at Initialize, naming the field.
    let imaged = site.descriptor("imaged");
    let text_of = std::fs::read_to_string(&imaged).unwrap().replace(
        "</vc:gateway>",
        "</vc:gateway><vc:installer>image</vc:installer>",
    );
    std::fs::write(&imaged, text_of).unwrap();
    let refused = site.vcctl(&["deploy", imaged.to_str().unwrap()]);
    assert!(
        !refused.status.success() && text(&refused).contains("vc:installer image"),
        "{}",
        text(&refused)
    );

    // Two clusters of three nodes, both on 10.128.50.0/24, at the same time.
    let (da, db) = (site.descriptor("alpha"), site.descriptor("beta"));
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| site.deploy(&da));
        let b = s.spawn(|| site.deploy(&db));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (phase_a, vni_a, status_a) = site.status(&a);
    let (phase_b, vni_b, status_b) = site.status(&b);
    assert_eq!(phase_a, "ready", "{status_a}");
    assert_eq!(phase_b, "ready", "{status_b}");
    assert_ne!(vni_a, vni_b);
    // A node's kickstart holds its secrets: only its cluster's GW-node may ask for it, not
    // this machine on the outside network stating the node's MAC.
    let kickstart = format!(
        "http://198.19.0.1/install/sbin/kickstart.cgi?mac={}",
        node_mac(&status_a, "frontend")
    );
    let out = run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
            &kickstart,
        ],
    );
    assert_eq!(text(&out).trim(), "403", "{kickstart}");
    for status in [&status_a, &status_b] {
        let nodes: Vec<&str> = status
            .lines()
            .filter(|l| l.starts_with("frontend ") || l.starts_with("compute-"))
            .collect();
        assert_eq!(nodes.len(), 3, "{status}");
        // Installed through the kickstart endpoint: each reported finished after fetching it.
        assert!(nodes.iter().all(|l| l.ends_with("finished")), "{status}");
        assert!(
            status.contains("pnode1") && status.contains("pnode2"),
            "{status}"
        );
    }
    let consoles: String = ["pnode1", "pnode2"]
        .iter()
        .flat_map(|p| std::fs::read_dir(site.state_dir(p)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "console"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(consoles.matches("VCDS-INSTALLED").count(), 6, "{consoles}");

    // Monitoring: each P-node's agent serves its VMs in gmond's XML; the manager polls it and
    // the System's vcds:NodeMetrics shows every node running on the P-node placement chose.
    for (id, status) in [(&a, &status_a), (&b, &status_b)] {
        site.wait_for_node_states(id, 3, "running", 60);
        for (node, (pnode, _)) in site.node_metrics(id) {
            assert_eq!(pnode, node_pnode(status, &node), "{node}");
        }
    }

    // Each probe sits on the P-node without its cluster's frontend: it reaches that
    // frontend across the VXLAN, and only it.
    let mut namespaces = Namespaces::new();
    let (pa, pb) = (format!("{prefix}-pa"), format!("{prefix}-pb"));
    probe(
        &mut namespaces,
        &other_pnode_ns(&prefix, &status_a, "frontend"),
        vni_a,
        &pa,
        &format!("{SUBNET}.250"),
    );
    probe(
        &mut namespaces,
        &other_pnode_ns(&prefix, &status_b, "frontend"),
        vni_b,
        &pb,
        &format!("{SUBNET}.250"),
    );
    let capture = site.data.path().join("beta.pcap");
    let mut tcpdump = Command::new("ip")
        .args([
            "netns", "exec", &pb, "tcpdump", "-i", "eth0", "-n", "-U", "-w",
        ])
        .arg(&capture)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    sleep(Duration::from_secs(1));
    for (probe, status, cluster) in [(&pa, &status_a, "alpha"), (&pb, &status_b, "beta")] {
        assert!(
            ping_within(probe, FRONTEND_IP, 20),
            "{cluster}'s frontend unreachable"
        );
        assert_eq!(
            neighbour_mac(probe, FRONTEND_IP).as_deref(),
            Some(node_mac(status, "frontend").as_str()),
            "{cluster}'s probe reached another frontend"
        );
    }
    // ARP (broadcast) for every address, and a broadcast ping, from alpha's side.
    for host in [1, 2, 3, 250, 252, 253, 254] {
        ping(&pa, &format!("{SUBNET}.{host}"));
    }
    let _ = run(
        "ip",
        &[
            "netns",
            "exec",
            &pa,
            "ping",
            "-b",
            "-c",
            "2",
            "-W",
            "1",
            &format!("{SUBNET}.255"),
        ],
    );
    sleep(Duration::from_secs(1));
    let _ = Command::new("kill").arg(tcpdump.id().to_string()).status();
    let _ = tcpdump.wait();
    let seen = text(&run(
        "tcpdump",
        &["-r", capture.to_str().unwrap(), "-e", "-n"],
    ));
    let probe_a_mac = text(&run("ip", &["-n", &pa, "-br", "link", "show", "eth0"]))
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_owned();
    let alpha_macs: Vec<String> = ["frontend", "compute-0-0", "compute-0-1"]
        .iter()
        .map(|n| node_mac(&status_a, n))
        .chain([probe_a_mac])
        .collect();
    for mac in &alpha_macs {
        assert!(
            !seen.contains(mac.as_str()),
            "a frame of alpha ({mac}) reached beta:\n{seen}"
        );
    }
    assert!(
        seen.contains("ARP") || seen.contains("ICMP"),
        "the capture saw nothing at all:\n{seen}"
    );

    // Outbound through alpha's GW-node: a test host on the outside network sees the GW's
    // outside address, not the cluster's.
    let out_ns = format!("{prefix}-out");
    let peer_file = site.data.path().join("peer");
    let mut listener = Command::new("ip")
        .args([
            "netns",
            "exec",
            &out_ns,
            "socat",
            "-u",
            "TCP-LISTEN:9000,bind=198.19.0.1,reuseaddr",
        ])
        .arg(format!(
            "SYSTEM:echo $SOCAT_PEERADDR > {}",
            peer_file.display()
        ))
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(500));
    let sent = run(
        "ip",
        &[
            "netns",
            "exec",
            &pa,
            "socat",
            "-u",
            "OPEN:/dev/null",
            "TCP:198.19.0.1:9000,connect-timeout=5",
        ],
    );
    assert!(sent.status.success(), "{}", text(&sent));
    let _ = listener.wait();
    let peer = std::fs::read_to_string(&peer_file).unwrap();
    assert_eq!(
        peer.trim(),
        vcds_site::local::LocalSite::gateway_outside_ip(vni_a).to_string(),
        "the outside host saw {peer}"
    );

    // Suspend: alpha's frontend stops answering and QEMU says paused; Resume brings it back.
    let frontend_vm = format!("frontend.{a}");
    let frontend_pnode = node_pnode(&status_a, "frontend");
    assert!(site.vcctl(&["suspend", &a]).status.success());
    assert_eq!(site.status(&a).0, "suspended");
    assert!(site
        .qmp_status(&frontend_pnode, &frontend_vm)
        .contains("\"paused\""));
    assert!(
        !ping_within(&pa, FRONTEND_IP, 3),
        "a suspended frontend answered"
    );
    site.wait_for_node_states(&a, 3, "paused", 60);
    assert!(site.vcctl(&["resume", &a]).status.success());
    assert_eq!(site.status(&a).0, "ready");
    assert!(site
        .qmp_status(&frontend_pnode, &frontend_vm)
        .contains("\"running\""));
    assert!(
        ping_within(&pa, FRONTEND_IP, 10),
        "the resumed frontend did not answer"
    );
    namespaces.delete_all().unwrap();

    // kill -9 of the manager while a cluster installs: after the restart it gets ready.
    assert!(site.vcctl(&["destroy", &b]).status.success());
    let gamma = site.descriptor("gamma");
    let created = site.vcctl(&["create"]);
    let c = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    assert!(site
        .vcctl(&["initialize", &c, gamma.to_str().unwrap()])
        .status
        .success());
    assert!(site.vcctl(&["run", &c]).status.success(), "{}", site.log());
    let started = Instant::now();
    while site.status(&c).0 != "installing" {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            site.log()
        );
        sleep(Duration::from_millis(100));
    }
    // kill -9 of a P-node agent while the manager is up: the executor starts it again, the
    // new agent re-adopts its VMs and its new gmond port is polled.
    let old_agent = site.agent_pid("pnode1");
    assert!(run("kill", &["-9", &old_agent.to_string()])
        .status
        .success());
    let started = Instant::now();
    while site.agent_pid("pnode1") == old_agent {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the agent of pnode1 was not started again:\n{}",
            site.log()
        );
        sleep(Duration::from_millis(200));
    }
    site.kill9();
    site.start();
    let started = Instant::now();
    let phase = loop {
        let phase = site.status(&c).0;
        if phase == "ready" || phase == "failed" || started.elapsed() > Duration::from_secs(240) {
            break phase;
        }
        sleep(Duration::from_millis(500));
    };
    assert_eq!(phase, "ready", "{}", site.log());
    site.wait_for_node_states(&c, 3, "running", 60);

    // Network boot: restarted in PXE mode, the manager builds the next cluster through iPXE,
    // DHCP and TFTP from the GW-node's dnsmasq; each node fetches its kickstart as before.
    for id in [&a, &c] {
        assert!(site.vcctl(&["destroy", id]).status.success());
    }
    site.kill9();
    site.boot = "pxe";
    site.start();
    let d = site.deploy(&site.descriptor("delta"));
    let (phase_d, vni_d, status_d) = site.status(&d);
    assert_eq!(phase_d, "ready", "{status_d}\n{}", site.log());
    let dnsmasq_log: String = ["pnode1", "pnode2"]
        .iter()
        .map(|p| {
            site.state_dir(p)
                .join(format!("gw-{vni_d}"))
                .join("dnsmasq.log")
        })
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    for node in ["frontend", "compute-0-0", "compute-0-1"] {
        let ip = node_field(&status_d, node, |w| w.parse::<std::net::Ipv4Addr>().is_ok());
        // Installed: its kickstart fetched and `finished` reported (the node table's last column).
        assert!(
            status_d
                .lines()
                .any(|l| l.starts_with(&format!("{node} ")) && l.ends_with("finished")),
            "{status_d}"
        );
        assert!(
            dnsmasq_log
                .lines()
                .any(|l| l.contains(&format!("/boot.ipxe to {ip}"))),
            "{node} ({ip}) did not get its boot script over TFTP:\n{dnsmasq_log}"
        );
    }
    // The script has iPXE fetch the installer over HTTP from the install listener, through the
    // GW-node's NAT: once per node and file.
    let gw = vcds_site::local::LocalSite::gateway_outside_ip(vni_d).to_string();
    for file in ["vmlinuz", "initrd.img"] {
        let served = site
            .log()
            .lines()
            .filter(|l| l.contains("boot file served") && l.contains(file) && l.contains(&gw))
            .count();
        assert_eq!(served, 3, "{file} to {gw}:\n{}", site.log());
    }

    // Destroy: nothing of the clusters is left on the P-nodes.
    assert!(site.vcctl(&["destroy", &d]).status.success());
    let started = Instant::now();
    let cluster_things = || {
        let mut things: Vec<String> = netns_list()
            .lines()
            .filter(|l| l.starts_with("gw-"))
            .map(str::to_owned)
            .collect();
        for pnode in ["p1", "p2"] {
            let links = text(&run(
                "ip",
                &["-n", &format!("{prefix}-{pnode}"), "-br", "link"],
            ));
            things.extend(
                links
                    .lines()
                    .filter(|l| {
                        l.starts_with("vcbr") || l.starts_with("vcvx") || l.starts_with("vt")
                    })
                    .map(str::to_owned),
            );
        }
        things.extend(
            text(&run("ps", &["-eo", "args"]))
                .lines()
                .filter(|l| {
                    (l.contains("qemu-system") || l.contains("dnsmasq"))
                        && l.contains(&site.data.path().display().to_string())
                })
                .map(str::to_owned),
        );
        for pnode in ["pnode1", "pnode2"] {
            things.extend(
                std::fs::read_dir(site.state_dir(pnode))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|f| f != "agent-state.json"),
            );
        }
        things
    };
    while !cluster_things().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "left after Destroy: {:?}",
            cluster_things()
        );
        sleep(Duration::from_millis(200));
    }

    // The whole site goes with `vcds site-down`.
    site.kill9();
    let out = Command::new(VCDS)
        .args(["site-down", "--local-prefix", &prefix, "--data-dir"])
        .arg(site.data.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let left = site.leftovers();
    assert!(left.is_empty(), "left after site-down: {left:?}");
    assert!(!site.data.path().join("site").exists());
    assert!(!Path::new("/run/vcds").join(&prefix).exists());
}

/// The System's resource property document, parsed: (vcds:Access host and port, each node's
/// host key, each node's vmMemoryMiB).
struct Login {
    system: String,
    user: String,
    host: String,
    port: String,
    host_keys: BTreeMap<String, String>,
    vm_memory: BTreeMap<String, String>,
}

impl Site {
    fn login(&self, id: &str) -> Login {
        let out = self.vcctl(&["--xml", "status", id]);
        let xml = String::from_utf8_lossy(&out.stdout).into_owned();
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
        let text = |n: roxmltree::Node<'_, '_>, local: &str| {
            n.children()
                .find(|c| c.tag_name().name() == local)
                .and_then(|c| c.text())
                .unwrap_or_default()
                .to_owned()
        };
        let access = doc
            .descendants()
            .find(|n| n.tag_name().name() == "Access")
            .unwrap_or_else(|| panic!("no vcds:Access in {xml}"));
        let nodes: Vec<_> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "Node")
            .collect();
        Login {
            system: id.to_owned(),
            user: text(access, "user"),
            host: text(access, "host"),
            port: text(access, "port"),
            host_keys: nodes
                .iter()
                .map(|n| (text(*n, "name"), text(*n, "hostKey")))
                .collect(),
            vm_memory: nodes
                .iter()
                .map(|n| (text(*n, "name"), text(*n, "vmMemoryMiB")))
                .collect(),
        }
    }

    /// `COMMAND` on the frontend of the cluster `login` describes, as its user runs it: `vcctl
    /// ssh` from this machine (its leg on the site's outside network) through the GW-node,
    /// checking the frontend's host key.
    fn ssh(&self, login: &Login, key: &Path, command: &str) -> Output {
        Command::new(vcctl_bin())
            .args(["--url", &self.url(), "ssh", &login.system, "-i"])
            .arg(key)
            .args(["--", command])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Retries `command` over SSH until it succeeds (a node still booting), up to `secs`.
    fn ssh_until(&self, login: &Login, key: &Path, command: &str, secs: u64) -> String {
        let started = Instant::now();
        loop {
            let out = self.ssh(login, key, command);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(secs),
                "ssh {command}: {}\n{}",
                text(&out),
                self.log()
            );
            sleep(Duration::from_secs(2));
        }
    }

    /// Create, Initialize and Run, without waiting for the cluster.
    fn deploy_started(&self, descriptor: &Path) -> String {
        let out = self.vcctl(&["create"]);
        assert!(out.status.success(), "create: {}", text(&out));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        for args in [
            vec!["initialize", id.as_str(), descriptor.to_str().unwrap()],
            vec!["run", id.as_str()],
        ] {
            let out = self.vcctl(&args);
            assert!(
                out.status.success(),
                "{args:?}: {}\n{}",
                text(&out),
                self.log()
            );
        }
        id
    }

    /// Waits (up to `secs`) until System `id`'s properties show its computes in the scheduler
    /// `states` (compute-0-0, compute-0-1…) and `running` jobs, in both vcds:Scheduler and
    /// the nodes' schedulerState.
    fn wait_for_scheduler(&self, id: &str, states: &[&str], running: &str, secs: u64) {
        let started = Instant::now();
        loop {
            let out = Command::new(vcctl_bin())
                .args(["--url", &self.url(), "--xml", "status", id])
                .output()
                .unwrap();
            let xml = text(&out);
            let shown = states
                .iter()
                .enumerate()
                .all(|(i, state)| xml.contains(&format!("name=\"compute-0-{i}\">{state}</")))
                && xml.contains(&format!(":running>{running}</"))
                && states.iter().all(|state| {
                    xml.matches(&format!(":schedulerState>{state}</")).count()
                        >= states.iter().filter(|s| *s == state).count()
                });
            if shown {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(secs),
                "the scheduler view never showed {states:?} and {running} running:\n{xml}"
            );
            sleep(Duration::from_secs(2));
        }
    }

    fn wait_for_phase(&self, id: &str, phase: &str, secs: u64) {
        let started = Instant::now();
        loop {
            let (now, _, status) = self.status(id);
            if now == phase {
                return;
            }
            assert!(
                now != "failed" && started.elapsed() < Duration::from_secs(secs),
                "{id} is {now}, not {phase}:\n{status}\n{}",
                self.log()
            );
            sleep(Duration::from_secs(1));
        }
    }
}

/// The Debian packages `appliance` installs from the project's rolls with host attributes
/// `attrs` (`KEY=VALUE`), as `vcds kickstart` resolves them.
fn debian_packages(appliance: &str, attrs: &[String]) -> Vec<String> {
    let rolls = repo().join("rolls");
    let out = Command::new(VCDS)
        .arg("kickstart")
        .arg("--roll")
        .arg(rolls.join("vcds-base"))
        .arg("--roll")
        .arg(rolls.join("vcds-compute"))
        .arg("--roll")
        .arg(rolls.join("vcds-slurm"))
        .args(["--appliance", appliance, "--debian-packages"])
        .args(attrs.iter().flat_map(|a| ["--attr", a.as_str()]))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// A site of installed nodes with a 3-node cluster whose nodes `installer` installs, with
/// `scheduler` as its `vc:scheduler`, ready,
/// and alice's login to it (her key in the descriptor); checked as its user meets it: sized as
/// booked, Debian, every mapped package of each appliance installed, the frontend reaching the
/// computes by name with the cluster's key and knowing their host keys. `None`: skipped.
fn usable_cluster(installer: &str, scheduler: &str) -> Option<(Site, String, Login, PathBuf)> {
    if !can_run() {
        return None;
    }
    for program in ["ssh", "ssh-keygen", "genisoimage"] {
        if !run("sh", &["-c", &format!("command -v {program}")])
            .status
            .success()
        {
            if std::env::var("VCDS_REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
                panic!(
                    "VCDS_REQUIRE_ROOT_TESTS=1 but {program} is missing (scripts/build-node-image.sh)"
                );
            }
            let _ = writeln!(std::io::stderr(), "SKIP: {program} not found");
            return None;
        }
    }
    let prefix = format!("vr{}", std::process::id() % 100_000);
    let mut site = Site::new(&prefix);
    site.nodes = "installed";
    site.start();
    let key = site.data.path().join("key");
    let out = run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let descriptor = site.login_descriptor("real", &key, installer, scheduler);

    // Ready is usable: the nodes report finished once their installed systems serve logins.
    let started = Instant::now();
    let id = site.deploy(&descriptor);
    site.wait_for_phase(&id, "ready", 900);
    let login = site.login(&id);
    let _ = writeln!(
        std::io::stderr(),
        "{installer}: descriptor to ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Reached on the GW-node's outside address, which this machine's leg is on.
    assert!(login.host.starts_with("198.19."), "{}", login.host);
    assert_eq!(
        (login.user.as_str(), login.port.as_str()),
        ("alice", "2222")
    );
    // Sized as booked: the frontend's 2 GiB, the computes' 1 GiB.
    assert_eq!(
        login.vm_memory.get("frontend").map(String::as_str),
        Some("2048")
    );
    assert_eq!(
        login.vm_memory.get("compute-0-0").map(String::as_str),
        Some("1024")
    );
    let release = site.ssh_until(&login, &key, "cat /etc/debian_version", 30);
    assert!(release.trim().starts_with("12."), "{release}");

    let installed = |host: &str, packages: &[String]| {
        let via = if host == "frontend" {
            String::new()
        } else {
            format!("ssh -o BatchMode=yes {host} ")
        };
        // `dpkg -s` (no quoting to survive a second shell): a paragraph per package.
        let command = format!("{via}dpkg -s {}", packages.join(" "));
        let listed = site.ssh_until(&login, &key, &command, 60);
        for p in packages {
            let paragraph = listed
                .split("\n\n")
                .find(|par| par.lines().any(|l| l == format!("Package: {p}")))
                .unwrap_or_else(|| panic!("{p} not known on {host}:\n{listed}"));
            assert!(
                paragraph
                    .lines()
                    .any(|l| l == "Status: install ok installed"),
                "{p} not installed on {host}:\n{paragraph}"
            );
        }
    };
    let attrs = [
        format!("vcds_installer={installer}"),
        format!("vcds_scheduler={scheduler}"),
    ];
    installed("frontend", &debian_packages("frontend", &attrs));
    for compute in ["compute-0-0", "compute-0-1"] {
        installed(compute, &debian_packages("compute", &attrs));
        let name = site.ssh_until(
            &login,
            &key,
            &format!("ssh -o BatchMode=yes {compute} hostname"),
            60,
        );
        assert_eq!(name.trim(), compute);
    }
    Some((site, id, login, key))
}

#[test]
fn installed_nodes_answer_ssh_keep_their_disks_and_have_their_own_keys() {
    let _alone = alone();
    let Some((site, id, login, key)) = usable_cluster("rocks", "none") else {
        return;
    };

    // The disk keeps what was written: after the P-node agent's kill -9 and the frontend
    // VM's death, the VM boots from its disk again (not the installer: the file is there).
    site.ssh_until(&login, &key, "echo kept > ~/marker && sync", 30);
    let (_, _, status) = site.status(&id);
    let pnode = node_pnode(&status, "frontend");
    let agent = site.agent_pid(&pnode);
    run("kill", &["-9", &agent.to_string()]);
    let vm = format!("frontend.{id}");
    let qemu = text(&run(
        "pgrep",
        &["-f", &format!("^[^ ]*qemu-system-x86_64 -name {vm}")],
    ));
    let qemu = qemu.trim();
    assert!(!qemu.is_empty(), "no QEMU of {vm}");
    run("kill", &["-9", qemu]);
    let marker = site.ssh_until(&login, &key, "cat ~/marker", 180);
    assert_eq!(marker.trim(), "kept");
    let console = std::fs::read_to_string(site.state_dir(&pnode).join(format!("{vm}.console")))
        .unwrap_or_default();
    assert!(
        !console.contains("VCDS-INSTALL fetching"),
        "the frontend was installed again:\n{console}"
    );

    // Another cluster's nodes get host keys of their own.
    let other = site.deploy_started(&site.descriptor("other"));
    let started = Instant::now();
    let keys = loop {
        let keys = site.login(&other).host_keys;
        if keys.values().all(|k| k.starts_with("ssh-ed25519 "))
            || started.elapsed() > Duration::from_secs(120)
        {
            break keys;
        }
        sleep(Duration::from_secs(1));
    };
    for (node, k) in &keys {
        assert!(
            k.starts_with("ssh-ed25519 "),
            "{node} of the other cluster has no host key"
        );
        assert!(
            !login.host_keys.values().any(|mine| mine == k),
            "{node} shares a host key"
        );
    }
    site.vcctl(&["destroy", &other]);
    site.vcctl(&["destroy", &id]);
}

/// The other installer: the same cluster from cloud images seeded by the manager (NoCloud),
/// cloud-init then the rolls' %post on the node: the same usable cluster.
#[test]
fn cloud_image_nodes_are_the_same_usable_cluster() {
    let _alone = alone();
    let Some((site, id, login, key)) = usable_cluster("image", "none") else {
        return;
    };
    let facts = site.ssh_until(
        &login,
        &key,
        "cloud-init status --long; cat /var/lib/vcds/installed; dpkg -s cloud-init | grep ^Status; \
         ssh -o BatchMode=yes compute-0-1 cloud-init status --long; \
         grep -h -m 8 -E 'WARNING|ERROR|Traceback' /var/log/cloud-init.log; true",
        30,
    );
    assert_eq!(facts.matches("status: done").count(), 2, "{facts}");
    assert!(facts.contains("(cloud image)"), "{facts}");
    assert!(facts.contains("Status: install ok installed"), "{facts}");
    site.vcctl(&["destroy", &id]);
}

/// MPI's hello world: each rank says where it runs.
const MPI_HELLO: &str = r#"#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
    int rank, size, len;
    char host[MPI_MAX_PROCESSOR_NAME];
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Get_processor_name(host, &len);
    printf("hello from rank %d of %d on %s\n", rank, size, host);
    MPI_Finalize();
    return 0;
}
"#;

/// `vc:scheduler slurm`: ready means slurmctld sees both computes idle; jobs run across them
/// (srun, an sbatch job on both nodes, MPI over the cluster network); after suspend and resume
/// the nodes take jobs again; another cluster's munge key is its own.
#[test]
fn slurm_runs_jobs_across_the_cluster() {
    let _alone = alone();
    let Some((site, id, login, key)) = usable_cluster("rocks", "slurm") else {
        return;
    };
    let started = Instant::now();
    let sinfo = site.ssh_until(&login, &key, "sinfo -h -N -o '%N %t'", 30);
    assert_eq!(
        sinfo.trim(),
        "compute-0-0 idle\ncompute-0-1 idle",
        "{sinfo}"
    );
    let hosts = site.ssh_until(&login, &key, "srun -N2 hostname | sort", 60);
    assert_eq!(hosts.trim(), "compute-0-0\ncompute-0-1", "{hosts}");
    let first_job = started.elapsed();
    let latency = Instant::now();
    site.ssh_until(&login, &key, "srun -N2 true", 30);
    let srun_true = latency.elapsed();

    // The scheduler's view is the System's: vcds:Scheduler and each node's schedulerState,
    // as the frontend reports them every 10 s: idle, then allocated while a job runs.
    site.wait_for_scheduler(&id, &["idle", "idle"], "0", 60);
    let job = site.ssh_until(&login, &key, "sbatch -N2 --parsable --wrap 'sleep 60'", 30);
    site.wait_for_scheduler(&id, &["allocated", "allocated"], "1", 60);
    site.ssh_until(&login, &key, &format!("scancel {}", job.trim()), 30);

    // A batch job on both nodes; its output (on the first node, no shared /home yet) read back.
    let out = site.ssh_until(
        &login,
        &key,
        "sbatch -N2 --wait -o job.out --wrap 'srun -N2 sh -c \"echo on \\$(hostname)\"' && \
         ssh -o BatchMode=yes compute-0-0 cat job.out | sort",
        120,
    );
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("on ")).collect();
    assert_eq!(lines, ["on compute-0-0", "on compute-0-1"], "{out}");

    // MPI over the cluster network: compiled on each node, two ranks on two nodes.
    let source = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(MPI_HELLO)
    };
    let out = site.ssh_until(
        &login,
        &key,
        &format!(
            "srun -N2 sh -c 'echo {source} | base64 -d > /tmp/hello.c && mpicc -o /tmp/hello /tmp/hello.c' && \
             sbatch -N2 --ntasks-per-node=1 --wait -o mpi.out --wrap 'mpirun --mca btl tcp,self /tmp/hello' && \
             ssh -o BatchMode=yes compute-0-0 cat mpi.out | sort"
        ),
        180,
    );
    let ranks: Vec<&str> = out.lines().filter(|l| l.starts_with("hello ")).collect();
    assert_eq!(
        ranks,
        [
            "hello from rank 0 of 2 on compute-0-0",
            "hello from rank 1 of 2 on compute-0-1"
        ],
        "{out}"
    );

    // Suspend and resume: the scheduler's state is kept, the nodes take jobs again.
    let out = site.vcctl(&["suspend", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let out = site.vcctl(&["resume", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let hosts = site.ssh_until(&login, &key, "srun -N2 hostname | sort", 180);
    assert_eq!(hosts.trim(), "compute-0-0\ncompute-0-1", "{hosts}");

    // Another Slurm cluster: a munge credential of this one means nothing there.
    let other = site.deploy(&site.login_descriptor("other", &key, "rocks", "slurm"));
    site.wait_for_phase(&other, "ready", 900);
    let other_login = site.login(&other);
    let credential = site.ssh_until(&login, &key, "munge -n", 30);
    let here = site.ssh(
        &login,
        &key,
        &format!("echo {} | unmunge", credential.trim()),
    );
    assert!(here.status.success(), "{}", text(&here));
    let there = site.ssh(
        &other_login,
        &key,
        &format!("echo {} | unmunge", credential.trim()),
    );
    assert!(
        !there.status.success() && text(&there).contains("Invalid credential"),
        "{}",
        text(&there)
    );
    let _ = writeln!(
        std::io::stderr(),
        "slurm: ready to the first srun -N2 in {:.1} s; srun -N2 true on the ready cluster in \
         {:.2} s (with the ssh login around it)",
        first_job.as_secs_f64(),
        srun_true.as_secs_f64()
    );
    site.vcctl(&["destroy", &other]);
    site.vcctl(&["destroy", &id]);
}
