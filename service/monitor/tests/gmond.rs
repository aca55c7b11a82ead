//! Against the real thing: Debian's gmond (ganglia-monitor) polled by our poller, and Debian's
//! gmetad (gmetad) polling our agent's output. Both run on 127.0.0.1 with unicast channels only.
//! Skipped with a message when the tools are absent, unless VCDS_REQUIRE_TOOLS=1.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use vcds_monitor::export::agent_document;
use vcds_monitor::poll::poll_endpoint;
use vcds_monitor::summary::HostSummary;
use vcds_monitor::{parse_str, write_document, GangliaXml, MetricType, PollConfig};

/// Kills the daemon when the test ends, however it ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tool(name: &str) -> Option<PathBuf> {
    let found = ["/usr/sbin", "/usr/bin", "/usr/local/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("VCDS_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{name} is required (VCDS_REQUIRE_TOOLS=1): apt-get install ganglia-monitor gmetad"
        );
        {
            // Past the test harness's capture, so a skip is seen.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: {name} not installed (apt-get install ganglia-monitor gmetad)"
            );
        }
    }
    found
}

fn free_port() -> u16 {
    // UDP and TCP both free on the same number, so one number serves either channel.
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn spawn(program: &Path, args: &[&str]) -> Daemon {
    Daemon(
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start daemon"),
    )
}

/// Polls `endpoint` until `ready` accepts a parsed document or 30 s pass.
async fn poll_until(endpoint: &str, ready: impl Fn(&GangliaXml) -> bool) -> GangliaXml {
    let cfg = PollConfig::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        let report = poll_endpoint(endpoint, &cfg).await;
        match report.result {
            Ok(doc) if ready(&doc) => return doc,
            other => last = Some(other),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{endpoint} never became ready; last poll: {last:?}");
}

fn gmond_module_dir() -> Option<&'static str> {
    [
        "/usr/lib/x86_64-linux-gnu/ganglia",
        "/usr/lib64/ganglia",
        "/usr/lib/ganglia",
    ]
    .into_iter()
    .find(|d| Path::new(d).join("modcpu.so").exists())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_a_real_gmond() {
    let Some(gmond) = tool("gmond") else { return };
    let Some(modules) = gmond_module_dir() else {
        {
            // Past the test harness's capture, so a skip is seen.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "SKIP: gmond metric modules not found");
        }
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (udp, tcp) = (free_port(), free_port());
    let conf = dir.path().join("gmond.conf");
    std::fs::write(&conf, format!(r#"
globals {{ daemonize = no setuid = no debug_level = 0 max_udp_msg_len = 1472 mute = no deaf = no
  host_dmax = 0 cleanup_threshold = 300 gexec = no send_metadata_interval = 5 }}
cluster {{ name = "vcds-test" owner = "vcds" }}
host {{ location = "rack1,0,0" }}
udp_send_channel {{ host = 127.0.0.1 port = {udp} ttl = 1 }}
udp_recv_channel {{ port = {udp} bind = 127.0.0.1 }}
tcp_accept_channel {{ port = {tcp} bind = 127.0.0.1 }}
modules {{
  module {{ name = "core_metrics" }}
  module {{ name = "cpu_module" path = "{modules}/modcpu.so" }}
  module {{ name = "load_module" path = "{modules}/modload.so" }}
  module {{ name = "mem_module" path = "{modules}/modmem.so" }}
  module {{ name = "net_module" path = "{modules}/modnet.so" }}
}}
collection_group {{ collect_once = yes time_threshold = 20 metric {{ name = "heartbeat" }} }}
collection_group {{ collect_every = 1 time_threshold = 2
  metric {{ name = "cpu_num" }} metric {{ name = "mem_total" }}
  metric {{ name = "load_one" value_threshold = 0 }} metric {{ name = "mem_free" value_threshold = 0 }}
  metric {{ name = "cpu_user" value_threshold = 0 }} metric {{ name = "bytes_in" value_threshold = 0 }}
}}
"#)).expect("write conf");
    let conf = conf.to_string_lossy().into_owned();
    let _gmond = spawn(&gmond, &["-c", &conf, "-f"]);
    let endpoint = format!("127.0.0.1:{tcp}");
    let doc = poll_until(&endpoint, |d| {
        d.clusters
            .iter()
            .flat_map(|c| &c.hosts)
            .any(|h| h.value("load_one").is_some() && h.value("mem_total").is_some())
    })
    .await;
    assert!(doc.version.starts_with('3'), "gmond 3.x: {}", doc.version);
    let cluster = &doc.clusters[0];
    assert_eq!(
        (cluster.name.as_str(), cluster.owner.as_deref()),
        ("vcds-test", Some("vcds"))
    );
    let host = &cluster.hosts[0];
    assert!(host.location.is_some());
    assert!(host.gmond_started.is_some() && host.tmax > 0);
    let load = host.metric("load_one").expect("load_one");
    assert_eq!(load.ty, MetricType::Float);
    assert_eq!(load.extra("GROUP"), Some("load"));
    assert_eq!(load.source, "gmond", "DTD default applied");
    let summary = HostSummary::of(&endpoint, &cluster.name, host, None);
    assert!(
        summary.is_up() && summary.mem_used_kb.is_some_and(|m| m > 0.0),
        "{summary:?}"
    );
    // What gmond sent survives our writer.
    assert_eq!(
        parse_str(&write_document(&doc), &Default::default()).expect("reparse"),
        doc
    );
    println!(
        "real gmond {}: {} metrics on {}",
        doc.version,
        host.metrics.len(),
        host.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_gmetad_polls_our_agent() {
    let Some(gmetad) = tool("gmetad") else { return };
    // gmetad re-emits attribute values without escaping them again, so markup characters
    // (which our writer escapes correctly) would come back malformed: keep values plain here.
    let mut sample = common::sample_pnode();
    for vm in &mut sample.vms {
        vm.cluster = "vc-7".to_string();
    }
    let agent = write_document(&agent_document("pnodes", "provider", now(), &sample));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let agent_port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(agent.as_bytes()).await;
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let rrds = dir.path().join("rrds");
    std::fs::create_dir(&rrds).expect("rrd dir");
    let (xml, interactive) = (free_port(), free_port());
    let conf = dir.path().join("gmetad.conf");
    std::fs::write(
        &conf,
        format!(
            "data_source \"pnode-0\" 1 127.0.0.1:{agent_port}\ngridname \"vcds-grid\"\nsetuid off\n\
         xml_port {xml}\ninteractive_port {interactive}\nrrd_rootdir \"{}\"\nserver_threads 2\n",
            rrds.display()
        ),
    )
    .expect("write conf");
    let conf = conf.to_string_lossy().into_owned();
    let _gmetad = spawn(&gmetad, &["-c", &conf, "-d", "1"]);
    // gmetad re-serves what it polled, wrapped in a GRID; our parser flattens the GRID. The
    // P-node's cluster and the virtual cluster of its VMs come back as clusters of their own.
    let doc = poll_until(&format!("127.0.0.1:{xml}"), |d| {
        d.clusters.iter().any(|c| c.hosts.len() == 2)
            && d.clusters.iter().any(|c| c.hosts.len() == 1)
    })
    .await;
    assert_eq!(doc.source, "gmetad");
    let cluster = doc
        .clusters
        .iter()
        .find(|c| c.name == "vc-7")
        .expect("our cluster");
    let vm = cluster
        .hosts
        .iter()
        .find(|h| h.name == "vc7-compute-0-1")
        .expect("VM host");
    assert_eq!(
        vm.metric("vm_state").map(|m| m.val.as_str()),
        Some("suspended")
    );
    let pnodes = doc
        .clusters
        .iter()
        .find(|c| c.name == "pnodes")
        .expect("the P-nodes' cluster");
    let pnode = pnodes
        .hosts
        .iter()
        .find(|h| h.name == "pnode-0")
        .expect("P-node host");
    assert_eq!(pnode.value("load_one"), Some(1.5));
    println!(
        "stock gmetad re-served {} hosts of our agent",
        cluster.hosts.len()
    );
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
