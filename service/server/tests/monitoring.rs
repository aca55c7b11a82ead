//! Ganglia monitoring end to end in-process: the real poll loop over TCP on 127.0.0.1 (the
//! simulated site's gmond ports, or test gmonds that behave well, hang, refuse or turn to
//! garbage), the System's vcds:NodeMetrics and vcds:ClusterMetrics properties and XPath
//! queries over them, value-change notifications on node state, and `/metrics`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;
use common::ops::{initialize_inline, small_cluster, subscribe_body, API, VCDS, XPATH};
use common::*;

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{test, web};
use vcds_manager::monitoring::{run_poller, MonitorConfig};
use vcds_manager::sim::Simulated;
use vcds_monitor::export::{agent_document, vm_cluster_name, PnodeSample, VmSample};
use vcds_server::Site;
use vcds_server::{AppState, Config};

fn system_action(op: &str) -> String {
    match op {
        "Suspend" | "Resume" => format!("urn:vcds:2026/SystemEPR/{op}Request"),
        _ => format!("{API}/wsdl/SystemEPR/{op}Request"),
    }
}

fn config(dir: &tempfile::TempDir, monitor: MonitorConfig) -> Config {
    let mut c = Config::new(
        "127.0.0.1:0",
        format!("sqlite://{}", dir.path().join("vcds.db").display()),
    );
    c.site = Site::Simulated(Simulated {
        step: Duration::from_millis(30),
        ..Simulated::default()
    });
    c.pnodes = vcds_manager::pnodes::simulated_pnodes(20);
    c.monitor = monitor;
    c
}

/// The app over a state whose poll loop runs.
fn polled_state(dir: &tempfile::TempDir, monitor: MonitorConfig) -> web::Data<AppState> {
    let state = web::Data::new(AppState::open(&config(dir, monitor)).unwrap());
    run_poller(&state.manager).unwrap();
    state
}

/// Create, Initialize (examples/small-cluster.cdl), Subscribe to vcds:NodeMetrics and Run;
/// the System id once it is ready.
async fn ready_cluster(app: &impl Svc, consumer: &str) -> String {
    let id = create(app).await;
    call(
        app,
        "System",
        vcds_wsrf::actions::SUBSCRIBE,
        Some(&id),
        &subscribe_body(consumer, Some("v:NodeMetrics")),
    )
    .await
    .ok();
    let system = |op: &'static str, body: String| {
        let id = id.clone();
        async move { call(app, "System", &system_action(op), Some(&id), &body).await }
    };
    system("Initialize", initialize_inline(&small_cluster()))
        .await
        .ok();
    system("Run", format!("<api:runRequest xmlns:api=\"{API}\"/>"))
        .await
        .ok();
    wait_for(app, &id, "v:Phase", |r| {
        r.text_of("Phase").as_deref() == Some("ready")
    })
    .await;
    id
}

async fn property(app: &impl Svc, id: &str, qname: &str) -> Reply {
    let body = format!("<rp:GetResourceProperty xmlns:rp=\"{RP}\" xmlns:v=\"{VCDS}\">{qname}</rp:GetResourceProperty>");
    call(app, "System", vcds_wsrf::actions::GET_RP, Some(id), &body).await
}

/// Reads property `qname` until `ready` accepts it (10 s at most).
async fn wait_for(app: &impl Svc, id: &str, qname: &str, ready: impl Fn(&Reply) -> bool) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = property(app, id, qname).await.ok();
        if ready(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "never ready: {}", r.text);
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn query(app: &impl Svc, id: &str, xpath: &str) -> Reply {
    let body = format!("<rp:QueryResourceProperties xmlns:rp=\"{RP}\"><rp:QueryExpression Dialect=\"{XPATH}\" xmlns:v=\"{VCDS}\">{xpath}</rp:QueryExpression></rp:QueryResourceProperties>");
    call(app, "System", vcds_wsrf::actions::QUERY_RP, Some(id), &body)
        .await
        .ok()
}

/// Child texts of every element named `parent`: [(child local name, text)] per element.
fn records(xml: &str, parent: &str) -> Vec<Vec<(String, String)>> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.tag_name().name() == parent)
        .map(|n| {
            n.children()
                .filter(|c| c.is_element())
                .map(|c| {
                    (
                        c.tag_name().name().to_string(),
                        c.text().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .collect()
}

fn field<'a>(record: &'a [(String, String)], name: &str) -> Option<&'a str> {
    record
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// States of the nodes in a value-change notification's old or new values.
fn notified_states(notify: &str, values: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(notify).unwrap();
    doc.descendants()
        .filter(|n| n.tag_name().name() == values)
        .flat_map(|v| v.descendants().filter(|n| n.tag_name().name() == "State"))
        .map(|s| s.text().unwrap_or("").to_string())
        .collect()
}

/// The next notification whose new values satisfy `wanted` (10 s at most).
fn notification_where(
    received: &std::sync::mpsc::Receiver<String>,
    wanted: impl Fn(&[String]) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = received
            .recv_timeout(left)
            .expect("the expected notification never came");
        if wanted(&notified_states(&n, "NewValues")) {
            return n;
        }
    }
}

async fn get_metrics(app: &impl Svc) -> String {
    let req = test::TestRequest::get()
        .uri("/metrics")
        .peer_addr("127.0.0.1:40000".parse().unwrap())
        .to_request();
    let resp = test::call_service(app, req).await;
    assert_eq!(resp.status().as_u16(), 200);
    String::from_utf8(test::read_body(resp).await.to_vec()).unwrap()
}

/// The value of the sample `name{labels}` in Prometheus text, checking the line's syntax.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == series).then(|| value.parse::<f64>().unwrap())
    })
}

#[actix_web::test]
async fn the_simulated_site_is_monitored_queried_and_notified() {
    let dir = tempfile::tempdir().unwrap();
    let state = polled_state(
        &dir,
        MonitorConfig {
            interval: Duration::from_millis(100),
            simulate: true,
            ..MonitorConfig::default()
        },
    );
    let app = app!(state);
    let (consumer, received) = consumer();
    let id = ready_cluster(&app, &consumer).await;
    let nodes = property(&app, &id, "v:Nodes").await.ok();
    let placed: Vec<String> = records(&nodes.text, "Node")
        .iter()
        .map(|n| field(n, "name").unwrap().to_string())
        .collect();
    assert!(placed.len() >= 2, "{}", nodes.text);

    // Every node reports through the simulated gmonds, running.
    let metrics = wait_for(&app, &id, "v:NodeMetrics", |r| {
        let nodes = records(&r.text, "NodeMetrics");
        nodes.len() == placed.len() && nodes.iter().all(|n| field(n, "State") == Some("running"))
    })
    .await;
    let nodes = records(&metrics.text, "NodeMetrics");
    let names: Vec<&str> = nodes.iter().map(|n| field(n, "Name").unwrap()).collect();
    assert_eq!(names.len(), placed.len());
    assert!(
        names.iter().all(|n| placed.iter().any(|p| p == n)),
        "{names:?}"
    );
    let cluster = property(&app, &id, "v:ClusterMetrics").await.ok();
    let c = &records(&cluster.text, "ClusterMetrics")[0];
    assert_eq!(field(c, "Nodes"), Some(placed.len().to_string().as_str()));
    assert_eq!(field(c, "NodesUp"), Some(placed.len().to_string().as_str()));
    assert_eq!(field(c, "NodesStale"), Some("0"));

    // XPath over the metrics: the nodes above a load, split at the widest gap between loads so
    // the slow drift of the simulated figures cannot move a node across.
    let mut loads: Vec<(f64, &str)> = nodes
        .iter()
        .map(|n| {
            (
                field(n, "LoadOne").unwrap().parse().unwrap(),
                field(n, "Name").unwrap(),
            )
        })
        .collect();
    loads.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (at, _) = loads
        .windows(2)
        .enumerate()
        .max_by(|a, b| (a.1[1].0 - a.1[0].0).total_cmp(&(b.1[1].0 - b.1[0].0)))
        .unwrap();
    let threshold = (loads[at].0 + loads[at + 1].0) / 2.0;
    let mut above: Vec<&str> = loads[at + 1..].iter().map(|(_, n)| *n).collect();
    above.sort_unstable();
    let r = query(
        &app,
        &id,
        &format!("//v:NodeMetrics[v:LoadOne &gt; {threshold}]/v:Name"),
    )
    .await;
    let doc = r.doc();
    let mut found: Vec<&str> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "Name")
        .filter_map(|n| n.text())
        .collect();
    found.sort_unstable();
    assert_eq!(found, above, "threshold {threshold}: {}", r.text);
    let r = query(&app, &id, "count(//v:NodeMetrics[v:State='running'])").await;
    assert!(
        r.text.contains(&format!(">{}<", placed.len())),
        "{}",
        r.text
    );

    // Suspend: the nodes' VMs pause, and the subscriber hears it from the monitoring.
    let suspend = call(
        &app,
        "System",
        &system_action("Suspend"),
        Some(&id),
        "<v:suspendRequest xmlns:v=\"urn:vcds:2026\"/>",
    )
    .await;
    suspend.ok();
    let n = notification_where(&received, |s| {
        !s.is_empty() && s.iter().all(|s| s == "paused")
    });
    assert!(
        notified_states(&n, "OldValues")
            .iter()
            .all(|s| s == "running"),
        "{n}"
    );
    assert!(n.contains("NodeMetrics"), "{n}");

    // /metrics: requests by operation and outcome, clusters by phase, capacity, the poller.
    let bad = property(&app, &id, "v:NoSuchProperty").await;
    assert_eq!(bad.fault_detail(), "InvalidResourcePropertyQNameFault");
    let text = get_metrics(&app).await;
    let get_ok = sample(
        &text,
        "vcds_soap_requests_total{operation=\"GetResourceProperty\",outcome=\"ok\"}",
    )
    .unwrap();
    assert!(get_ok >= 5.0, "{text}");
    assert_eq!(
        sample(&text, "vcds_soap_requests_total{operation=\"GetResourceProperty\",outcome=\"InvalidResourcePropertyQNameFault\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "vcds_soap_requests_total{operation=\"Suspend\",outcome=\"ok\"}"
        ),
        Some(1.0)
    );
    let count = sample(
        &text,
        "vcds_soap_request_duration_seconds_count{operation=\"GetResourceProperty\"}",
    )
    .unwrap();
    assert!(count > get_ok, "faults are timed too: {text}");
    assert_eq!(
        sample(&text, "vcds_systems{phase=\"suspended\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "vcds_systems{phase=\"ready\"}"), Some(0.0));
    assert_eq!(
        sample(&text, "vcds_pnode_capacity{resource=\"cpu\",of=\"total\"}"),
        Some(20.0 * 64.0)
    );
    assert!(sample(&text, "vcds_pnode_capacity{resource=\"cpu\",of=\"used\"}").unwrap() > 0.0);
    assert_eq!(sample(&text, "vcds_pnodes{state=\"up\"}"), Some(20.0));
    // 20 P-nodes and the cluster's virtual nodes.
    let hosts = sample(&text, "vcds_ganglia_poll{figure=\"hosts\"}").unwrap();
    assert_eq!(hosts, (20 + placed.len()) as f64, "{text}");
    assert_eq!(
        sample(&text, "vcds_ganglia_poll{figure=\"hosts_stale\"}"),
        Some(0.0)
    );
    assert!(text.contains("# TYPE vcds_soap_request_duration_seconds histogram"));
}

/// A gmond on 127.0.0.1 answering every connection with the current `doc`.
fn gmond(doc: Arc<Mutex<Vec<u8>>>) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let bytes = doc.lock().unwrap().clone();
            let _ = s.write_all(&bytes);
        }
    });
    addr
}

/// A gmond that accepts and never answers.
fn hung_gmond() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            held.push(s);
        }
    });
    addr
}

fn pnode(name: &str, vms: Vec<VmSample>) -> Vec<u8> {
    let sample = PnodeSample {
        name: name.to_string(),
        ip: "10.0.0.1".to_string(),
        cpu_num: 8,
        cpu_user: 10.0,
        cpu_system: 1.0,
        cpu_idle: 89.0,
        load_one: 0.5,
        load_five: 0.5,
        load_fifteen: 0.5,
        mem_total_kb: 8_000_000,
        mem_free_kb: 4_000_000,
        mem_buffers_kb: 0,
        mem_cached_kb: 0,
        bytes_in: 10.0,
        bytes_out: 10.0,
        boottime: 1_700_000_000,
        vms,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    vcds_monitor::write_document(&agent_document("vcds-pnodes", "test", now, &sample)).into_bytes()
}

#[actix_web::test]
async fn a_garbage_or_dead_gmond_marks_its_nodes_stale_and_holds_up_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let agent_doc = Arc::new(Mutex::new(b"<GANGLIA_XML>not yet".to_vec()));
    let agent = gmond(agent_doc.clone());
    let other = gmond(Arc::new(Mutex::new(pnode("pnode-ok", Vec::new()))));
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let timeout = Duration::from_millis(300);
    let state = polled_state(
        &dir,
        MonitorConfig {
            gmond: vec![agent.clone(), hung_gmond(), refused, other.clone()],
            interval: Duration::from_millis(100),
            poll: vcds_monitor::PollConfig {
                connect_timeout: timeout,
                read_timeout: timeout,
                ..vcds_monitor::PollConfig::default()
            },
            simulate: false,
        },
    );
    let app = app!(state);
    let (consumer, received) = consumer();
    let id = ready_cluster(&app, &consumer).await;
    let network = property(&app, &id, "v:Network").await.ok();
    let network_id: u32 = network.text_of("networkId").unwrap().parse().unwrap();
    let nodes = property(&app, &id, "v:Nodes").await.ok();
    let placed = records(&nodes.text, "Node");

    // The agent reports the cluster's VMs (by the host names they install as, as the
    // simulated site does; here by address for the first, to show both ways match).
    let vms: Vec<VmSample> = placed
        .iter()
        .enumerate()
        .map(|(i, n)| VmSample {
            name: if i == 0 {
                "some-vm".to_string()
            } else {
                format!("{}.{id}", field(n, "name").unwrap())
            },
            ip: field(n, "ip").unwrap().to_string(),
            cluster: vm_cluster_name(network_id),
            state: "running".to_string(),
            vcpus: 1,
            mem_kb: 1024,
            cpu_percent: 5.0,
            load_one: Some(0.75),
        })
        .collect();
    *agent_doc.lock().unwrap() = pnode("pnode-agent", vms);
    let up = wait_for(&app, &id, "v:NodeMetrics", |r| {
        let n = records(&r.text, "NodeMetrics");
        n.len() == placed.len() && n.iter().all(|n| field(n, "State") == Some("running"))
    })
    .await;
    assert!(
        up.text.contains("<v:LoadOne>0.75</v:LoadOne>") || up.text.contains(">0.75<"),
        "{}",
        up.text
    );
    // The hung and the refusing gmond cost one timeout per cycle, not one each, and never
    // more than a cycle's bound.
    let figures = state.manager.monitoring().figures();
    assert_eq!(
        (figures.endpoints, figures.endpoints_failed),
        (4, 2),
        "{figures:?}"
    );
    assert!(
        figures.last_cycle < timeout * 2 + Duration::from_millis(700),
        "{figures:?}"
    );

    // The agent starts speaking garbage: its nodes go stale with the reason, the subscriber
    // hears of it, and the other gmond's host stays up.
    *agent_doc.lock().unwrap() = b"<GANGLIA_XML VERSION=\"3\" SOURCE=\"gmond\"><CLUSTER".to_vec();
    let stale = wait_for(&app, &id, "v:NodeMetrics", |r| {
        records(&r.text, "NodeMetrics")
            .iter()
            .all(|n| field(n, "State") == Some("stale"))
    })
    .await;
    let first = &records(&stale.text, "NodeMetrics")[0];
    let why = field(first, "Stale").unwrap();
    assert!(why.contains(&agent) && why.contains("garbage"), "{why}");
    let cluster = property(&app, &id, "v:ClusterMetrics").await.ok();
    let c = &records(&cluster.text, "ClusterMetrics")[0];
    assert_eq!(
        field(c, "NodesStale"),
        Some(placed.len().to_string().as_str())
    );
    let n = notification_where(&received, |s| {
        !s.is_empty() && s.iter().all(|s| s == "stale")
    });
    assert!(
        notified_states(&n, "OldValues")
            .iter()
            .all(|s| s == "running"),
        "{n}"
    );
    let hosts = state.manager.monitoring().host_summaries();
    let ok = hosts.iter().find(|h| h.name == "pnode-ok").unwrap();
    assert!(ok.is_up(), "{ok:?}");
    assert_eq!(state.manager.monitoring().endpoints()[3], other);
}
