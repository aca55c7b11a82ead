//! The CDDLM System endpoint end to end in-process: Initialize/AddFile/Run/Terminate/Ping/Resolve
//! and Suspend/Resume over a real actix-web app and a real SQLite store.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;
use common::ops::{initialize_inline, small_cluster};
use common::*;
use std::time::{Duration, Instant};

use actix_web::{test, web};
use base64::Engine as _;
use vcds_manager::sim::Simulated;
use vcds_server::Site;
use vcds_server::{AppState, Config};

const API: &str = "http://www.gridforum.org/cddlm/deployapi/2005/02";
const CDL: &str = "http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0";
const GET_RP: &str =
    "http://docs.oasis-open.org/wsrf/rpw-2/GetResourceProperty/GetResourcePropertyRequest";

fn action(op: &str) -> String {
    match op {
        "Suspend" | "Resume" => format!("urn:vcds:2026/SystemEPR/{op}Request"),
        _ => format!("http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/{op}Request"),
    }
}

fn config(dir: &tempfile::TempDir, step: Duration) -> Config {
    let mut c = Config::new(
        "127.0.0.1:0",
        format!("sqlite://{}", dir.path().join("vcds.db").display()),
    );
    c.site = Site::Simulated(Simulated {
        step,
        ..Simulated::default()
    });
    c
}

async fn system(app: &impl Svc, id: &str, op: &str, body: &str) -> Reply {
    call(app, "System", &action(op), Some(id), body).await
}

fn initialize_reference(name: &str, options: &str) -> String {
    format!("<api:initializeRequest xmlns:api=\"{API}\"><api:descriptor api:language=\"{CDL}\"><api:reference>{name}</api:reference></api:descriptor>{options}</api:initializeRequest>")
}

fn add_file(name: &str, content: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(content);
    format!("<api:addFileRequest xmlns:api=\"{API}\"><api:name>{name}</api:name><api:mimetype>application/xml</api:mimetype><api:data>{data}</api:data></api:addFileRequest>")
}

fn empty(local: &str) -> String {
    format!("<api:{local} xmlns:api=\"{API}\"/>")
}

async fn property(app: &impl Svc, id: &str, qname: &str) -> Reply {
    let body = format!("<rp:GetResourceProperty xmlns:rp=\"http://docs.oasis-open.org/wsrf/rp-2\" xmlns:v=\"urn:vcds:2026\" xmlns:api=\"{API}\">{qname}</rp:GetResourceProperty>");
    call(app, "System", GET_RP, Some(id), &body).await.ok()
}

/// The local name of the state element in `vcds:SystemState/cmp:State`.
async fn state_of(app: &impl Svc, id: &str) -> String {
    let r = property(app, id, "v:SystemState").await;
    let doc = r.doc();
    let state = doc
        .descendants()
        .find(|n| n.tag_name().name() == "State")
        .unwrap_or_else(|| panic!("no cmp:State: {}", r.text));
    state
        .first_element_child()
        .unwrap()
        .tag_name()
        .name()
        .to_string()
}

async fn phase_of(app: &impl Svc, id: &str) -> Option<String> {
    property(app, id, "v:Phase").await.text_of("Phase")
}

async fn wait_for_phase(app: &impl Svc, id: &str, phase: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if phase_of(app, id).await.as_deref() == Some(phase) {
            return;
        }
        assert!(Instant::now() < deadline, "phase {phase} not reached");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

fn subscribe(address: &str, topic: &str) -> String {
    format!(
        "<wsnt:Subscribe xmlns:wsnt=\"{WSNT}\" xmlns:wsa=\"{WSA}\" xmlns:cmp=\"http://www.gridforum.org/cddlm/components/2005/02\"><wsnt:ConsumerReference><wsa:Address>{address}</wsa:Address></wsnt:ConsumerReference><wsnt:Filter><wsnt:TopicExpression Dialect=\"http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple\">{topic}</wsnt:TopicExpression></wsnt:Filter></wsnt:Subscribe>"
    )
}

/// The entered state of a lifecycle notification.
fn entered_state(notify: &str) -> String {
    let doc = roxmltree::Document::parse(notify).unwrap();
    let entered = doc
        .descendants()
        .find(|n| n.tag_name().name() == "EnteredState")
        .unwrap_or_else(|| panic!("no EnteredState: {notify}"));
    entered
        .first_element_child()
        .unwrap()
        .tag_name()
        .name()
        .to_string()
}

#[actix_web::test]
async fn a_cluster_walks_the_whole_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir, Duration::from_millis(30))).unwrap());
    let app = app!(state);
    let id = create(&app).await;
    assert_eq!(state_of(&app, &id).await, "InstantiatedState");
    assert_eq!(phase_of(&app, &id).await, None);
    let (address, received) = consumer();
    call(
        &app,
        "System",
        vcds_wsrf::actions::SUBSCRIBE,
        Some(&id),
        &subscribe(&address, "cmp:LifecycleTransition"),
    )
    .await
    .ok();

    system(
        &app,
        &id,
        "Initialize",
        &initialize_inline(&small_cluster()),
    )
    .await
    .ok();
    assert_eq!(state_of(&app, &id).await, "InitializedState");
    assert_eq!(phase_of(&app, &id).await.as_deref(), Some("reserved"));
    let spec = property(&app, &id, "v:ClusterSpec").await;
    assert_eq!(
        spec.text_of("name").as_deref(),
        Some("small"),
        "{}",
        spec.text
    );
    let nodes = property(&app, &id, "v:Nodes").await;
    assert!(nodes.has("Nodes"), "{}", nodes.text);
    assert!(!property(&app, &id, "api:StartedTime")
        .await
        .has("StartedTime"));

    let r = system(
        &app,
        &id,
        "Resolve",
        &format!("<api:resolveRequest xmlns:api=\"{API}\" xmlns:vc=\"urn:vcds:2026:cdl\"><api:path>/small/vc:name</api:path></api:resolveRequest>"),
    )
    .await
    .ok();
    assert_eq!(r.text_of("name").as_deref(), Some("small"), "{}", r.text);

    system(&app, &id, "Run", &empty("runRequest")).await.ok();
    assert!(property(&app, &id, "api:StartedTime")
        .await
        .has("StartedTime"));
    wait_for_phase(&app, &id, "ready").await;
    let ping = system(&app, &id, "Ping", &empty("pingRequest")).await.ok();
    assert!(ping.has("RunningState"), "{}", ping.text);

    system(
        &app,
        &id,
        "Suspend",
        "<v:suspendRequest xmlns:v=\"urn:vcds:2026\"/>",
    )
    .await
    .ok();
    assert_eq!(state_of(&app, &id).await, "SuspendedState");
    assert_eq!(phase_of(&app, &id).await.as_deref(), Some("suspended"));
    system(
        &app,
        &id,
        "Resume",
        "<v:resumeRequest xmlns:v=\"urn:vcds:2026\"/>",
    )
    .await
    .ok();
    assert_eq!(state_of(&app, &id).await, "RunningState");
    assert_eq!(phase_of(&app, &id).await.as_deref(), Some("ready"));

    system(
        &app,
        &id,
        "Terminate",
        &format!("<api:terminateRequest xmlns:api=\"{API}\"><api:reason>done</api:reason></api:terminateRequest>"),
    )
    .await
    .ok();
    assert_eq!(state_of(&app, &id).await, "TerminatedState");
    assert!(property(&app, &id, "api:TerminatedTime")
        .await
        .has("TerminatedTime"));
    wait_for_phase(&app, &id, "released").await;
    // Terminate is idempotent.
    system(&app, &id, "Terminate", &empty("terminateRequest"))
        .await
        .ok();

    let entered: Vec<String> = (0..5)
        .map(|_| entered_state(&received.recv_timeout(Duration::from_secs(5)).unwrap()))
        .collect();
    assert_eq!(
        entered,
        [
            "InitializedState",
            "RunningState",
            "SuspendedState",
            "RunningState",
            "TerminatedState"
        ]
    );

    call(
        &app,
        "System",
        vcds_wsrf::actions::DESTROY,
        Some(&id),
        "<rl:Destroy xmlns:rl=\"http://docs.oasis-open.org/wsrf/rl-2\"/>",
    )
    .await
    .ok();
    let r = system(&app, &id, "Ping", &empty("pingRequest")).await;
    assert_eq!(r.fault_detail(), "ResourceUnknownFault");
}

#[actix_web::test]
async fn destroying_a_live_system_announces_terminated() {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir, Duration::from_secs(60))).unwrap());
    let app = app!(state);
    let id = create(&app).await;
    let (address, received) = consumer();
    call(
        &app,
        "System",
        vcds_wsrf::actions::SUBSCRIBE,
        Some(&id),
        &subscribe(&address, "cmp:LifecycleTransition"),
    )
    .await
    .ok();
    call(
        &app,
        "System",
        vcds_wsrf::actions::DESTROY,
        Some(&id),
        "<rl:Destroy xmlns:rl=\"http://docs.oasis-open.org/wsrf/rl-2\"/>",
    )
    .await
    .ok();
    let event = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(entered_state(&event), "TerminatedState");
}

#[actix_web::test]
async fn operations_in_the_wrong_state_name_the_state_and_the_operation() {
    let dir = tempfile::tempdir().unwrap();
    // Long steps: the cluster stays in provisioning for the whole test.
    let state = web::Data::new(AppState::open(&config(&dir, Duration::from_secs(60))).unwrap());
    let app = app!(state);
    let id = create(&app).await;

    let r = system(&app, &id, "Run", &empty("runRequest")).await;
    assert_eq!(r.fault_detail(), "LifecycleFault");
    assert_eq!(r.text_of("state").as_deref(), Some("instantiated"));
    assert_eq!(r.text_of("operation").as_deref(), Some("Run"));
    let r = system(
        &app,
        &id,
        "Resolve",
        &format!(
            "<api:resolveRequest xmlns:api=\"{API}\"><api:path>/x</api:path></api:resolveRequest>"
        ),
    )
    .await;
    assert_eq!(r.fault_detail(), "LifecycleFault");

    system(
        &app,
        &id,
        "Initialize",
        &initialize_inline(&small_cluster()),
    )
    .await
    .ok();
    let r = system(
        &app,
        &id,
        "Initialize",
        &initialize_inline(&small_cluster()),
    )
    .await;
    assert_eq!(r.fault_detail(), "LifecycleFault");
    assert_eq!(r.text_of("state").as_deref(), Some("initialized"));
    let r = system(
        &app,
        &id,
        "Resume",
        "<v:resumeRequest xmlns:v=\"urn:vcds:2026\"/>",
    )
    .await;
    assert_eq!(r.fault_detail(), "LifecycleFault");

    system(&app, &id, "Run", &empty("runRequest")).await.ok();
    // Suspend needs a ready cluster, not one still provisioning.
    let r = system(
        &app,
        &id,
        "Suspend",
        "<v:suspendRequest xmlns:v=\"urn:vcds:2026\"/>",
    )
    .await;
    assert_eq!(r.fault_detail(), "LifecycleFault");
    assert!(r.text.contains("provisioning"), "{}", r.text);

    system(&app, &id, "Terminate", &empty("terminateRequest"))
        .await
        .ok();
    let r = system(&app, &id, "Run", &empty("runRequest")).await;
    assert_eq!(r.fault_detail(), "LifecycleFault");
    assert_eq!(r.text_of("state").as_deref(), Some("terminated"));
    // Terminate of a provisioning cluster tears it down.
    assert_eq!(phase_of(&app, &id).await.as_deref(), Some("tearing-down"));
}

#[actix_web::test]
async fn a_reservation_in_the_future_waits_for_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir, Duration::from_millis(30))).unwrap());
    let app = app!(state);
    let id = create(&app).await;
    let start = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let later = small_cluster().replace(
        "<vc:duration>",
        &format!("<vc:start>{start}</vc:start><vc:duration>"),
    );
    system(&app, &id, "Initialize", &initialize_inline(&later))
        .await
        .ok();
    system(&app, &id, "Run", &empty("runRequest")).await.ok();
    actix_rt::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        phase_of(&app, &id).await.as_deref(),
        Some("waiting-for-start")
    );
    system(&app, &id, "Terminate", &empty("terminateRequest"))
        .await
        .ok();
    wait_for_phase(&app, &id, "released").await;
}

#[actix_web::test]
async fn languages_and_options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir, Duration::from_secs(60))).unwrap());
    let app = app!(state);
    let id = create(&app).await;
    let cdl15 = initialize_inline(&small_cluster()).replace(
        CDL,
        "http://www.gridforum.org/namespaces/2008/02/cddlm/CDL-1.5",
    );
    // The body's own namespace changed too; the language attribute is what is checked first.
    let r = system(&app, &id, "Initialize", &cdl15).await;
    assert_eq!(r.fault_detail(), "UnsupportedLanguageFault");

    let no_language =
        initialize_inline(&small_cluster()).replace(&format!(" api:language=\"{CDL}\""), "");
    let r = system(&app, &id, "Initialize", &no_language).await;
    assert_eq!(r.fault_detail(), "BadArgumentFault");

    let with_option = |name: &str, mu: bool| {
        initialize_inline(&small_cluster()).replace(
            "</api:initializeRequest>",
            &format!("<api:options><api:option api:name=\"{name}\" api:mustUnderstand=\"{mu}\"><api:string>x</api:string></api:option></api:options></api:initializeRequest>"),
        )
    };
    let r = system(
        &app,
        &id,
        "Initialize",
        &with_option("urn:example:unknown", true),
    )
    .await;
    assert_eq!(r.fault_detail(), "NotUnderstoodFault");
    assert_eq!(state_of(&app, &id).await, "InstantiatedState");
    // Unknown options without mustUnderstand are ignored.
    system(
        &app,
        &id,
        "Initialize",
        &with_option("urn:example:unknown", false),
    )
    .await
    .ok();
    assert_eq!(state_of(&app, &id).await, "InitializedState");
}

#[actix_web::test]
async fn bad_descriptors_fault_with_where_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir, Duration::from_secs(60))).unwrap());
    let app = app!(state);
    let id = create(&app).await;

    let wrong_order = format!(
        "<cdl:cdl xmlns:cdl=\"{CDL}\">\n  <cdl:system/>\n  <cdl:configuration/>\n</cdl:cdl>\n"
    );
    system(&app, &id, "AddFile", &add_file("order.cdl", &wrong_order))
        .await
        .ok();
    let r = system(
        &app,
        &id,
        "Initialize",
        &initialize_reference("order.cdl", ""),
    )
    .await;
    assert_eq!(r.fault_detail(), "DescriptorParseFault");
    assert_eq!(r.text_of("line").as_deref(), Some("3"), "{}", r.text);
    assert_eq!(r.text_of("column").as_deref(), Some("3"), "{}", r.text);
    assert_eq!(r.text_of("document").as_deref(), Some("order.cdl"));

    let dangling = format!(
        "<cdl:cdl xmlns:cdl=\"{CDL}\">\n<cdl:system>\n  <app>\n    <user cdl:ref=\"/nowhere\"/>\n  </app>\n</cdl:system>\n</cdl:cdl>\n"
    );
    system(&app, &id, "AddFile", &add_file("dangling.cdl", &dangling))
        .await
        .ok();
    let r = system(
        &app,
        &id,
        "Initialize",
        &initialize_reference("dangling.cdl", ""),
    )
    .await;
    assert_eq!(r.fault_detail(), "ResolutionFault");
    assert_eq!(r.text_of("line").as_deref(), Some("4"), "{}", r.text);
    assert!(r.text_of("path").is_some(), "{}", r.text);

    // Valid CDL that is no cluster request.
    let no_cluster =
        format!("<cdl:cdl xmlns:cdl=\"{CDL}\"><cdl:system><app/></cdl:system></cdl:cdl>");
    let r = system(&app, &id, "Initialize", &initialize_inline(&no_cluster)).await;
    assert_eq!(r.fault_detail(), "InitializationFault");

    let r = system(
        &app,
        &id,
        "Initialize",
        &initialize_reference("missing.cdl", ""),
    )
    .await;
    assert_eq!(r.fault_detail(), "BadArgumentFault");

    assert_eq!(state_of(&app, &id).await, "InstantiatedState");
    assert_eq!(phase_of(&app, &id).await, None);
    assert!(!property(&app, &id, "v:ClusterSpec")
        .await
        .has("ClusterSpec"));
}

#[actix_web::test]
async fn added_files_are_checked_and_initialize_by_reference() {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir, Duration::from_secs(60))).unwrap());
    let app = app!(state);
    let id = create(&app).await;
    for bad in ["../etc/passwd", "a/b.cdl", "c:x", ""] {
        let r = system(&app, &id, "AddFile", &add_file(bad, "x")).await;
        assert_eq!(r.fault_detail(), "BadArgumentFault", "{bad:?}");
    }
    let r = system(&app, &id, "AddFile", &format!("<api:addFileRequest xmlns:api=\"{API}\"><api:name>x</api:name><api:data>!!notbase64</api:data></api:addFileRequest>")).await;
    assert_eq!(r.fault_detail(), "BadArgumentFault");
    let r = system(&app, &id, "AddFile", &add_file("empty", "")).await;
    assert_eq!(r.fault_detail(), "BadArgumentFault");
    let big = "x".repeat(vcds_manager::MAX_FILE_BYTES + 1);
    let r = system(&app, &id, "AddFile", &add_file("big", &big)).await;
    assert_eq!(r.fault_detail(), "BadArgumentFault");

    let r = system(
        &app,
        &id,
        "AddFile",
        &add_file("small.cdl", &small_cluster()),
    )
    .await
    .ok();
    assert_eq!(r.text_of("item").as_deref(), Some("small.cdl"));

    // Validate-only resolves and checks, and changes nothing.
    let validate = format!(
        "<api:options><api:option api:name=\"{}\" api:mustUnderstand=\"true\"/></api:options>",
        vcds_api::cddlm::VALIDATE_ONLY
    );
    system(
        &app,
        &id,
        "Initialize",
        &initialize_reference("small.cdl", &validate),
    )
    .await
    .ok();
    assert_eq!(state_of(&app, &id).await, "InstantiatedState");
    assert_eq!(phase_of(&app, &id).await, None);

    system(
        &app,
        &id,
        "Initialize",
        &initialize_reference("small.cdl", ""),
    )
    .await
    .ok();
    assert_eq!(state_of(&app, &id).await, "InitializedState");
    let spec = property(&app, &id, "v:ClusterSpec").await;
    assert_eq!(spec.text_of("name").as_deref(), Some("small"));
}

#[actix_web::test]
async fn the_lifecycle_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, Duration::from_secs(60));
    let id;
    {
        let state = web::Data::new(AppState::open(&cfg).unwrap());
        let app = app!(state);
        id = create(&app).await;
        system(
            &app,
            &id,
            "AddFile",
            &add_file("small.cdl", &small_cluster()),
        )
        .await
        .ok();
        system(
            &app,
            &id,
            "Initialize",
            &initialize_reference("small.cdl", ""),
        )
        .await
        .ok();
        system(&app, &id, "Run", &empty("runRequest")).await.ok();
    }
    let state = web::Data::new(AppState::open(&config(&dir, Duration::from_millis(30))).unwrap());
    let app = app!(state);
    assert_eq!(state_of(&app, &id).await, "RunningState");
    assert_eq!(phase_of(&app, &id).await.as_deref(), Some("provisioning"));
    // The timeline the first run left half-way carries on.
    let shared = state.clone().into_inner();
    shared.manager.resume_all().await;
    wait_for_phase(&app, &id, "ready").await;
    assert!(property(&app, &id, "api:StartedTime")
        .await
        .has("StartedTime"));
    assert_eq!(
        property(&app, &id, "v:ClusterSpec")
            .await
            .text_of("name")
            .as_deref(),
        Some("small")
    );
    // The descriptor and its files came back too: Resolve still works.
    let r = system(
        &app,
        &id,
        "Resolve",
        &format!("<api:resolveRequest xmlns:api=\"{API}\"><api:path>/small/vc:name</api:path></api:resolveRequest>"),
    )
    .await
    .ok();
    assert_eq!(r.text_of("name").as_deref(), Some("small"), "{}", r.text);
}

#[actix_web::test]
async fn systems_stored_before_the_cddlm_operations_still_load() {
    let old = r#"{"kind":"system","props":[]}"#;
    let state: vcds_model::State = serde_json::from_str(old).unwrap();
    let vcds_model::State::System { deployment, .. } = state else {
        panic!("not a system");
    };
    assert_eq!(deployment.lifecycle, vcds_model::Lifecycle::Instantiated);
    assert_eq!(deployment.phase, None);
}

// ---- Reservations: placement in the store, wired into Initialize, Run, Terminate, Destroy,
// ---- SetTerminationTime, the clock, and failures of the site.

/// Two P-nodes of 8 cores, 32 GiB and 1 TB; four VNIs.
fn site_config(dir: &tempfile::TempDir, step: Duration) -> Config {
    let mut c = config(dir, step);
    c.pnodes = ["pa", "pb"]
        .into_iter()
        .map(|n| {
            vcds_placement::PNode::new(n, vcds_placement::Resources::new(8, 32768, 1000))
                .gw_capable(true)
        })
        .collect();
    c.site_config.network_pool =
        vcds_placement::NetworkPool::vxlan(vcds_placement::IdRange::new(100, 103), Vec::new());
    c
}

/// A cluster of a 2-core frontend and `computes` computes of `cpus` cores, for `duration`
/// from `start` (now when `None`).
fn cluster(
    computes: u32,
    cpus: u32,
    start: Option<chrono::DateTime<chrono::Utc>>,
    duration: &str,
) -> String {
    let start = start.map_or(String::new(), |t| {
        format!("<vc:start>{}</vc:start>", t.to_rfc3339())
    });
    format!(
        "<cdl:cdl xmlns:cdl=\"{CDL}\" xmlns:vc=\"urn:vcds:2026:cdl\"><cdl:import location=\"vcds:cluster\"/><cdl:system><c cdl:extends=\"vc:Cluster\"><vc:name>c</vc:name><vc:compute><vc:count>{computes}</vc:count><vc:cpus>{cpus}</vc:cpus></vc:compute><vc:reservation>{start}<vc:duration>{duration}</vc:duration></vc:reservation></c></cdl:system></cdl:cdl>"
    )
}

/// The state of a service on the two-P-node test site.
fn site_state(dir: &tempfile::TempDir, step: Duration) -> web::Data<AppState> {
    web::Data::new(AppState::open(&site_config(dir, step)).unwrap())
}

/// Each `vcds:Node` of the System's node table as (field name → text), in table order.
async fn node_fields(app: &impl Svc, id: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let nodes = property(app, id, "v:Nodes").await;
    nodes
        .doc()
        .descendants()
        .filter(|n| n.tag_name().name() == "Node")
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

async fn reservations(app: &impl Svc) -> Vec<serde_json::Value> {
    let r = admin(app, test::TestRequest::get().uri("/admin/reservations")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    serde_json::from_str(&r.text).unwrap()
}

/// Initialize with `cdl`; a fault's reply as is.
async fn initialize(app: &impl Svc, id: &str, cdl: &str) -> Reply {
    system(app, id, "Initialize", &initialize_inline(cdl)).await
}

#[actix_web::test]
async fn initialize_reserves_and_the_system_shows_its_placement() {
    let dir = tempfile::tempdir().unwrap();
    let state = site_state(&dir, Duration::from_millis(20));
    let app = app!(state);
    let id = create(&app).await;
    initialize(&app, &id, &cluster(4, 2, None, "P2D"))
        .await
        .ok();

    let nodes = node_fields(&app, &id).await;
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "frontend",
            "compute-0-0",
            "compute-0-1",
            "compute-0-2",
            "compute-0-3"
        ]
    );
    for node in &nodes {
        assert!(["pa", "pb"].contains(&node["pnode"].as_str()));
        assert!(node["ip"].starts_with("10.128."));
        assert!(node["mac"].starts_with("02:56:43:"));
        assert_eq!(node["state"], "planned");
    }
    let network = property(&app, &id, "v:Network").await;
    assert_eq!(network.text_of("networkId").as_deref(), Some("100"));
    assert_eq!(network.text_of("subnet").as_deref(), Some("10.128.0.0/24"));
    assert_eq!(network.text_of("isolation").as_deref(), Some("VXLAN"));
    let window = property(&app, &id, "v:Reservation").await;
    assert_eq!(window.text_of("state").as_deref(), Some("active"));

    // The admin view lists it; each node may fetch its kickstart by MAC (a host of the cluster).
    let all = reservations(&app).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["reservation"], id.as_str());
    assert!(
        state.kickstarts.node_table(&id).is_empty(),
        "nodes install only in their reservation's time"
    );

    // A query over the nodes: which sit on P-node pa?
    let on_pa = call(&app, "System", "http://docs.oasis-open.org/wsrf/rpw-2/QueryResourceProperties/QueryResourcePropertiesRequest", Some(&id),
        &format!("<rp:QueryResourceProperties xmlns:rp=\"{RP}\"><rp:QueryExpression Dialect=\"http://www.w3.org/TR/1999/REC-xpath-19991116\" xmlns:v=\"urn:vcds:2026\">count(//v:Node[v:pnode='pa'])</rp:QueryExpression></rp:QueryResourceProperties>")).await.ok();
    let on_pa: usize = on_pa
        .doc()
        .descendants()
        .find(|n| n.tag_name().name() == "QueryResourcePropertiesResponse")
        .and_then(|n| n.text())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let placed_on_pa = all[0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["pnode"] == "pa")
        .count();
    assert_eq!(on_pa, placed_on_pa);
}

#[actix_web::test]
async fn a_refusal_names_the_shortage_and_the_earliest_start_and_reserves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = site_state(&dir, Duration::from_millis(20));
    let app = app!(state);
    // 2 + 6×2 = 14 of 16 cores for two days.
    let first = create(&app).await;
    initialize(&app, &first, &cluster(6, 2, None, "P2D"))
        .await
        .ok();
    let second = create(&app).await;
    let r = initialize(&app, &second, &cluster(2, 2, None, "P1D")).await;
    assert_eq!(r.fault_detail(), "ReservationRefusedFault", "{}", r.text);
    assert_eq!(r.text_of("shortage").as_deref(), Some("cpu"));
    assert_eq!(
        r.text_of("ErrorCode").as_deref(),
        Some("reservation-refused")
    );
    let first_end = property(&app, &first, "v:Reservation")
        .await
        .text_of("end")
        .unwrap();
    let earliest = r.text_of("earliestStart").unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&earliest).unwrap(),
        chrono::DateTime::parse_from_rfc3339(&first_end).unwrap(),
        "fits when the first ends"
    );
    assert_eq!(
        state_of(&app, &second).await,
        "InstantiatedState",
        "nothing changed"
    );
    assert_eq!(reservations(&app).await.len(), 1, "nothing reserved");

    // Asking for that start is admitted; validate-only answers the same and reserves nothing.
    let later = cluster(
        2,
        2,
        Some(
            chrono::DateTime::parse_from_rfc3339(&earliest)
                .unwrap()
                .into(),
        ),
        "P1D",
    );
    let check =
        "<api:options><api:option api:name=\"urn:vcds:2026:option:validate-only\"/></api:options>";
    let body = initialize_inline(&later).replace(
        "</api:initializeRequest>",
        &format!("{check}</api:initializeRequest>"),
    );
    system(&app, &second, "Initialize", &body).await.ok();
    assert_eq!(reservations(&app).await.len(), 1);
    initialize(&app, &second, &later).await.ok();
    assert_eq!(reservations(&app).await.len(), 2);

    // Bad requests: more nodes than the site holds, a window in the past, an isolation kind
    // the site does not offer.
    for (cdl, code) in [
        (cluster(40, 2, None, "P1D"), "invalid-reservation"),
        (cluster(1, 9, None, "P1D"), "invalid-reservation"),
        (
            cluster(
                1,
                1,
                Some(chrono::Utc::now() - chrono::Duration::days(1)),
                "PT1H",
            ),
            "invalid-cluster",
        ),
        (
            cluster(1, 1, None, "P1D").replace(
                "<vc:compute>",
                "<vc:network><vc:isolation>vlan</vc:isolation></vc:network><vc:compute>",
            ),
            "bad-argument",
        ),
    ] {
        let id = create(&app).await;
        let r = initialize(&app, &id, &cdl).await;
        assert_eq!(r.text_of("ErrorCode").as_deref(), Some(code), "{}", r.text);
        assert_eq!(state_of(&app, &id).await, "InstantiatedState");
    }
    assert_eq!(
        reservations(&app).await.len(),
        2,
        "no bad request reserved anything"
    );
}

#[actix_web::test]
async fn terminate_and_destroy_release_at_once_and_extension_checks_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let state = site_state(&dir, Duration::from_millis(20));
    let app = app!(state);
    let a = create(&app).await;
    initialize(&app, &a, &cluster(6, 2, None, "P1D")).await.ok();
    let a_end = property(&app, &a, "v:Reservation")
        .await
        .text_of("end")
        .unwrap();
    let a_end = chrono::DateTime::parse_from_rfc3339(&a_end).unwrap();
    // B books the same capacity right after A.
    let b = create(&app).await;
    initialize(&app, &b, &cluster(6, 2, Some(a_end.into()), "P1D"))
        .await
        .ok();

    // Growing A into B's window is refused naming B; A is unchanged.
    let set_tt = |t: chrono::DateTime<chrono::FixedOffset>| {
        format!("<rl:SetTerminationTime xmlns:rl=\"{RL}\"><rl:RequestedTerminationTime>{}</rl:RequestedTerminationTime></rl:SetTerminationTime>", t.to_rfc3339())
    };
    let set_action = "http://docs.oasis-open.org/wsrf/rlw-2/ImmediateResourceTermination/SetTerminationTimeRequest".replace("ImmediateResourceTermination", "ScheduledResourceTermination");
    let r = call(
        &app,
        "System",
        &set_action,
        Some(&a),
        &set_tt(a_end + chrono::Duration::hours(2)),
    )
    .await;
    assert_eq!(
        r.fault_detail(),
        "TerminationTimeChangeRejectedFault",
        "{}",
        r.text
    );
    assert!(
        r.text.contains(&b),
        "names the conflicting reservation: {}",
        r.text
    );
    let end = property(&app, &a, "v:Reservation")
        .await
        .text_of("end")
        .unwrap();
    assert_eq!(chrono::DateTime::parse_from_rfc3339(&end).unwrap(), a_end);

    // Destroying B frees its window at once: now A may grow into it.
    call(
        &app,
        "System",
        "http://docs.oasis-open.org/wsrf/rlw-2/ImmediateResourceTermination/DestroyRequest",
        Some(&b),
        &format!("<rl:Destroy xmlns:rl=\"{RL}\"/>"),
    )
    .await
    .ok();
    assert!(
        state.kickstarts.node_table(&b).is_empty(),
        "B's installing hosts are gone"
    );
    let new_end = a_end + chrono::Duration::hours(2);
    call(&app, "System", &set_action, Some(&a), &set_tt(new_end))
        .await
        .ok();
    let end = property(&app, &a, "v:Reservation")
        .await
        .text_of("end")
        .unwrap();
    assert_eq!(chrono::DateTime::parse_from_rfc3339(&end).unwrap(), new_end);

    // Terminating A releases it at once: the whole site is free again.
    system(&app, &a, "Terminate", &empty("terminateRequest"))
        .await
        .ok();
    assert!(reservations(&app).await.is_empty());
    assert_eq!(
        property(&app, &a, "v:Reservation")
            .await
            .text_of("state")
            .as_deref(),
        Some("released")
    );
    let c = create(&app).await;
    initialize(&app, &c, &cluster(7, 2, None, "P1D")).await.ok();
}

#[actix_web::test]
async fn the_clock_deploys_at_the_start_and_takes_down_at_the_end_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = site_config(&dir, Duration::from_millis(20));
    // Starts in 2 s, for the shortest reservation a descriptor may ask: an hour.
    let start = chrono::Utc::now() + chrono::Duration::seconds(2);
    let id = {
        let state = web::Data::new(AppState::open(&cfg).unwrap());
        let app = app!(state);
        let id = create(&app).await;
        initialize(&app, &id, &cluster(1, 1, Some(start), "PT1H"))
            .await
            .ok();
        system(&app, &id, "Run", &empty("runRequest")).await.ok();
        assert_eq!(
            phase_of(&app, &id).await.as_deref(),
            Some("waiting-for-start")
        );
        assert!(state.kickstarts.node_table(&id).is_empty());
        id
        // The service stops here, before the start.
    };
    actix_rt::time::sleep(Duration::from_millis(2500)).await;
    let state = web::Data::new(AppState::open(&cfg).unwrap());
    let shared = state.clone().into_inner();
    shared.manager.resume_all().await;
    actix_rt::spawn(shared.manager.clone().run_clock());
    let app = app!(state);
    // The start passed while the service was down: the clock deploys at once.
    wait_for_phase(&app, &id, "ready").await;
    assert_eq!(
        state.kickstarts.node_table(&id).len(),
        2,
        "its nodes may install"
    );
    let states: Vec<String> = node_fields(&app, &id)
        .await
        .into_iter()
        .map(|n| n["state"].clone())
        .collect();
    assert_eq!(states, ["up", "up"]);
    assert_eq!(reservations(&app).await.len(), 1);
    // The clock as of the end takes the cluster down and releases the reservation.
    let next = shared
        .manager
        .tick(start + chrono::Duration::minutes(59))
        .await;
    assert_eq!(
        next.map(|t| t.timestamp()),
        Some((start + chrono::Duration::hours(1)).timestamp())
    );
    assert_eq!(
        phase_of(&app, &id).await.as_deref(),
        Some("ready"),
        "not before its end"
    );
    shared
        .manager
        .tick(start + chrono::Duration::hours(1))
        .await;
    wait_for_phase(&app, &id, "released").await;
    assert_eq!(state_of(&app, &id).await, "TerminatedState");
    assert!(reservations(&app).await.is_empty());
    assert!(state.kickstarts.node_table(&id).is_empty());
}

#[actix_web::test]
async fn an_injected_failure_fails_the_cluster_releases_its_reservation_and_ping_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = site_config(&dir, Duration::from_millis(20));
    cfg.site = Site::Simulated(Simulated {
        step: Duration::from_millis(20),
        failures: vec!["installing:1.0".parse().unwrap()],
        ..Simulated::default()
    });
    let state = web::Data::new(AppState::open(&cfg).unwrap());
    let app = app!(state);
    let id = create(&app).await;
    initialize(&app, &id, &cluster(1, 1, None, "P1D"))
        .await
        .ok();
    system(&app, &id, "Run", &empty("runRequest")).await.ok();
    wait_for_phase(&app, &id, "failed").await;
    assert_eq!(state_of(&app, &id).await, "FailedState");
    assert!(reservations(&app).await.is_empty());
    assert!(state.kickstarts.node_table(&id).is_empty());
    // Ping on it is a liveness fault with the reason.
    let r = system(&app, &id, "Ping", &empty("pingRequest")).await;
    assert_eq!(r.fault_detail(), "LivenessFault", "{}", r.text);
    assert_eq!(r.text_of("ErrorCode").as_deref(), Some("not-alive"));
    assert!(
        r.text.contains("failed the cluster while installing"),
        "{}",
        r.text
    );
}

#[actix_web::test]
async fn a_pnode_going_down_reports_the_reservations_it_hits() {
    let dir = tempfile::tempdir().unwrap();
    let state = site_state(&dir, Duration::from_millis(20));
    let app = app!(state);
    let id = create(&app).await;
    initialize(&app, &id, &cluster(4, 1, None, "P1D"))
        .await
        .ok();
    let r = admin(
        &app,
        test::TestRequest::put()
            .uri("/admin/pnodes/pb/state")
            .set_payload("down"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v: serde_json::Value = serde_json::from_str(&r.text).unwrap();
    assert_eq!(v["affected"][0]["reservation"], id.as_str());
    let on_pb = reservations(&app).await[0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["pnode"] == "pb")
        .count();
    assert_eq!(v["affected"][0]["nodes"].as_array().unwrap().len(), on_pb);
    let r = admin(
        &app,
        test::TestRequest::put()
            .uri("/admin/pnodes/nowhere/state")
            .set_payload("down"),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = admin(
        &app,
        test::TestRequest::put()
            .uri("/admin/pnodes/pa/state")
            .set_payload("sideways"),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = admin(&app, test::TestRequest::get().uri("/admin/pnodes")).await;
    let pnodes: Vec<serde_json::Value> = serde_json::from_str(&r.text).unwrap();
    assert_eq!(pnodes[1]["state"], "Down");
}

fn add_file_uri(name: &str, uri: &str) -> String {
    format!("<api:addFileRequest xmlns:api=\"{API}\"><api:name>{name}</api:name><api:uri>{uri}</api:uri></api:addFileRequest>")
}

/// An HTTP server on 127.0.0.1 answering every request with `status` and `body`, once per
/// connection; its base URL.
fn http_file_server(status: &'static str, body: String) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

#[actix_web::test]
async fn add_file_fetches_only_from_allowed_sources() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let allowed = files.path().join("cdl");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::write(allowed.join("small.cdl"), small_cluster()).unwrap();
    std::fs::write(files.path().join("secret.cdl"), "secret").unwrap();
    std::os::unix::fs::symlink(files.path().join("secret.cdl"), allowed.join("link.cdl")).unwrap();
    let http = http_file_server("200 OK", small_cluster());
    let missing = http_file_server("404 Not Found", "no".into());
    let mut cfg = site_config(&dir, Duration::from_secs(60));
    let file_source = format!("file://{}/", allowed.display());
    cfg.addfile_sources = vec![
        vcds_api::fetch::parse_source(&file_source).unwrap(),
        vcds_api::fetch::parse_source(&http).unwrap(),
        vcds_api::fetch::parse_source(&missing).unwrap(),
    ];
    let state = web::Data::new(AppState::open(&cfg).unwrap());
    let app = app!(state);
    let id = create(&app).await;

    // Refused: outside every source (Api_27), traversal, a symlink out, an unknown scheme
    // (Api_40), HTTP errors, not a URI.
    let outside = format!("file://{}/secret.cdl", files.path().display());
    let traversal = format!("{file_source}../secret.cdl");
    let link = format!("{file_source}link.cdl");
    let not_found = format!("{missing}x.cdl");
    for (uri, says) in [
        (outside.as_str(), "not under a source"),
        (traversal.as_str(), "not under a source"),
        (link.as_str(), "is not a file under"),
        ("ftp://127.0.0.1/x.cdl", "ftp&quot; is not supported"),
        ("http://127.0.0.1:9/x.cdl", "not under a source"),
        (not_found.as_str(), "HTTP 404"),
        ("not a uri", "is not a URI"),
    ] {
        let r = system(&app, &id, "AddFile", &add_file_uri("f.cdl", uri)).await;
        assert_eq!(r.fault_detail(), "BadArgumentFault", "{uri}: {}", r.text);
        assert!(r.text.contains(says), "{uri}: {}", r.text);
    }
    // Accepted from a file source and an HTTP source; Initialize by reference works.
    system(
        &app,
        &id,
        "AddFile",
        &add_file_uri("a.cdl", &format!("{file_source}small.cdl")),
    )
    .await
    .ok();
    system(
        &app,
        &id,
        "AddFile",
        &add_file_uri("b.cdl", &format!("{http}small.cdl")),
    )
    .await
    .ok();
    system(&app, &id, "Initialize", &initialize_reference("b.cdl", ""))
        .await
        .ok();
    assert_eq!(state_of(&app, &id).await, "InitializedState");
}

#[actix_web::test]
async fn install_progress_of_a_provisioned_node_shows_in_the_node_table() {
    let dir = tempfile::tempdir().unwrap();
    let state = site_state(&dir, Duration::from_secs(60));
    let app = app!(state);
    let id = create(&app).await;
    initialize(&app, &id, &cluster(1, 1, None, "P1D"))
        .await
        .ok();
    system(&app, &id, "Run", &empty("runRequest")).await.ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.kickstarts.node_table(&id).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "nodes not registered at provisioning"
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    let nodes = node_fields(&app, &id).await;
    let mac = nodes[1]["mac"].clone();
    assert_eq!(nodes[1]["name"], "compute-0-0");
    let r = admin(
        &app,
        test::TestRequest::post().uri(&format!("/install/progress?state=finished&mac={mac}")),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let states: Vec<(String, String)> = node_fields(&app, &id)
        .await
        .into_iter()
        .map(|n| (n["name"].clone(), n["state"].clone()))
        .collect();
    assert_eq!(
        states,
        [
            ("frontend".to_string(), "provisioning".to_string()),
            ("compute-0-0".to_string(), "finished".to_string())
        ]
    );
}

#[actix_web::test]
async fn an_exhausted_pool_is_named_and_suspend_keeps_the_reservation() {
    let dir = tempfile::tempdir().unwrap();
    let state = site_state(&dir, Duration::from_millis(10));
    let app = app!(state);
    // Four VNIs: four small clusters fit (12 of 16 cores), the fifth finds no network id.
    let mut ids = Vec::new();
    for _ in 0..4 {
        let id = create(&app).await;
        initialize(&app, &id, &cluster(1, 1, None, "P1D"))
            .await
            .ok();
        ids.push(id);
    }
    let fifth = create(&app).await;
    let r = initialize(&app, &fifth, &cluster(1, 1, None, "P1D")).await;
    assert_eq!(r.fault_detail(), "ReservationRefusedFault", "{}", r.text);
    assert_eq!(r.text_of("shortage").as_deref(), Some("network ids"));
    assert_eq!(state_of(&app, &fifth).await, "InstantiatedState");

    // Suspend keeps the reservation; Resume finds it still held.
    let id = &ids[0];
    system(&app, id, "Run", &empty("runRequest")).await.ok();
    wait_for_phase(&app, id, "ready").await;
    system(
        &app,
        id,
        "Suspend",
        "<v:suspendRequest xmlns:v=\"urn:vcds:2026\"/>",
    )
    .await
    .ok();
    assert_eq!(phase_of(&app, id).await.as_deref(), Some("suspended"));
    assert_eq!(reservations(&app).await.len(), 4);
    assert_eq!(
        property(&app, id, "v:Reservation")
            .await
            .text_of("state")
            .as_deref(),
        Some("active")
    );
    system(
        &app,
        id,
        "Resume",
        "<v:resumeRequest xmlns:v=\"urn:vcds:2026\"/>",
    )
    .await
    .ok();
    assert_eq!(phase_of(&app, id).await.as_deref(), Some("ready"));
}

#[actix_web::test]
async fn background_eprs_use_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir, Duration::from_secs(60));
    cfg.public_url = Some("https://vcds.example.org:8443/".parse().unwrap());
    let state = AppState::open(&cfg).unwrap();
    let portal = state.manager.registry().get("portal").unwrap();
    let epr = state.api.endpoints.of(&portal);
    assert_eq!(
        epr.address,
        "https://vcds.example.org:8443/wsrf/services/Portal"
    );
}
