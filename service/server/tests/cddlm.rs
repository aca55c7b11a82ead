//! The CDDLM System endpoint end to end in-process: Initialize/AddFile/Run/Terminate/Ping/Resolve
//! and Suspend/Resume over a real actix-web app and a real SQLite store.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;
use common::ops::{initialize_inline, small_cluster};
use common::*;
use std::time::{Duration, Instant};

use actix_web::{test, web, App};
use base64::Engine as _;
use vcds_server::{routes, AppState, Config};

const API: &str = "http://www.gridforum.org/cddlm/deployapi/2005/02";
const CDL: &str = "http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0";
const CREATE: &str =
    "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/PortalEPR/CreateRequest";
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
    c.simulated_step = step;
    c
}

macro_rules! app {
    ($state:expr) => {
        test::init_service(App::new().app_data($state.clone()).configure(routes)).await
    };
}

async fn call(
    app: &impl Svc,
    endpoint: &str,
    action: &str,
    resource: Option<&str>,
    body: &str,
) -> Reply {
    post(
        app,
        endpoint,
        "text/xml; charset=utf-8",
        envelope(S11, action, resource, body),
    )
    .await
}

async fn system(app: &impl Svc, id: &str, op: &str, body: &str) -> Reply {
    call(app, "System", &action(op), Some(id), body).await
}

async fn create(app: &impl Svc) -> String {
    let r = call(
        app,
        "Portal",
        CREATE,
        None,
        &format!("<api:createRequest xmlns:api=\"{API}\"/>"),
    )
    .await
    .ok();
    r.text_of("ResourceId").unwrap()
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
    let big = "x".repeat(vcds_server::system::MAX_FILE_BYTES + 1);
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
        vcds_server::system::VALIDATE_ONLY
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
    shared.simulated_site.resume_all(&shared);
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
    let state: vcds_server::registry::State = serde_json::from_str(old).unwrap();
    let vcds_server::registry::State::System { deployment, .. } = state else {
        panic!("not a system");
    };
    assert_eq!(
        deployment.lifecycle,
        vcds_server::registry::Lifecycle::Instantiated
    );
    assert_eq!(deployment.phase, None);
}
