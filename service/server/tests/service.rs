//! The service end to end in-process: real actix-web app, real SQLite store, real HTTP consumers.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;
use common::*;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::web;
use vcds_api::ops::CREATE;
use vcds_server::{AppState, Config};

fn config(dir: &tempfile::TempDir) -> Config {
    Config::new(
        "127.0.0.1:0",
        format!("sqlite://{}", dir.path().join("vcds.db").display()),
    )
}

fn set_termination(duration: &str) -> String {
    format!("<rl:SetTerminationTime xmlns:rl=\"{RL}\"><rl:RequestedLifetimeDuration>{duration}</rl:RequestedLifetimeDuration></rl:SetTerminationTime>")
}

const GET_DESCRIPTION: &str = "<rp:GetResourceProperty xmlns:rp=\"http://docs.oasis-open.org/wsrf/rp-2\" xmlns:v=\"urn:vcds:2026\">v:Description</rp:GetResourceProperty>";

fn update_description(text: &str) -> String {
    format!("<rp:SetResourceProperties xmlns:rp=\"{RP}\"><rp:Update><v:Description xmlns:v=\"urn:vcds:2026\">{text}</v:Description></rp:Update></rp:SetResourceProperties>")
}

#[actix_web::test]
async fn resources_and_termination_times_survive_a_restart_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    survive_restart(config(&dir)).await;
}

#[actix_web::test]
async fn resources_and_termination_times_survive_a_restart_postgres() {
    let Some(db) = vcds_store::testing::PgDatabase::create() else {
        return;
    };
    survive_restart(Config::new("127.0.0.1:0", db.url())).await;
}

async fn survive_restart(config: Config) {
    let (keeper, doomed);
    {
        let state = web::Data::new(AppState::open(&config).unwrap());
        let app = app!(state);
        keeper = create(&app).await;
        doomed = create(&app).await;
        let r = call(
            &app,
            "System",
            vcds_wsrf::actions::SET_RP,
            Some(&keeper),
            &update_description("kept"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = call(
            &app,
            "System",
            vcds_wsrf::actions::SET_TERMINATION_TIME,
            Some(&doomed),
            &set_termination("PT1S"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // The service is down while the termination time passes.
    std::thread::sleep(Duration::from_millis(1200));
    let state = web::Data::new(AppState::open(&config).unwrap());
    assert_eq!(state.manager.sweep().await.unwrap(), 1);
    let app = app!(state);
    let r = call(
        &app,
        "System",
        vcds_wsrf::actions::GET_RP,
        Some(&keeper),
        GET_DESCRIPTION,
    )
    .await;
    assert_eq!(
        r.text_of("Description").as_deref(),
        Some("kept"),
        "{}",
        r.text
    );
    let r = call(
        &app,
        "System",
        vcds_wsrf::actions::GET_RP,
        Some(&doomed),
        GET_DESCRIPTION,
    )
    .await;
    assert_eq!(r.fault_detail(), "ResourceUnknownFault");
}

#[actix_web::test]
async fn the_sweeper_destroys_at_the_termination_time() {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir)).unwrap());
    actix_rt::spawn(state.manager.clone().run_sweeper());
    let app = app!(state);
    let id = create(&app).await;
    let r = call(
        &app,
        "System",
        vcds_wsrf::actions::SET_TERMINATION_TIME,
        Some(&id),
        &set_termination("PT1S"),
    )
    .await;
    let new = r.text_of("NewTerminationTime").unwrap();
    let current = r.text_of("CurrentTime").unwrap();
    let gap = chrono::DateTime::parse_from_rfc3339(&new).unwrap()
        - chrono::DateTime::parse_from_rfc3339(&current).unwrap();
    assert_eq!(gap.num_milliseconds(), 1000);
    let r = call(
        &app,
        "System",
        vcds_wsrf::actions::GET_RP,
        Some(&id),
        GET_DESCRIPTION,
    )
    .await;
    assert_eq!(r.status, 200, "alive before its time: {}", r.text);
    actix_rt::time::sleep(Duration::from_millis(2500)).await;
    let r = call(
        &app,
        "System",
        vcds_wsrf::actions::GET_RP,
        Some(&id),
        GET_DESCRIPTION,
    )
    .await;
    assert_eq!(r.fault_detail(), "ResourceUnknownFault");
    // Beyond the maximum lifetime: rejected, and the old value stays.
    let id = create(&app).await;
    let r = call(
        &app,
        "System",
        vcds_wsrf::actions::SET_TERMINATION_TIME,
        Some(&id),
        &set_termination("P2Y"),
    )
    .await;
    assert_eq!(r.fault_detail(), "TerminationTimeChangeRejectedFault");
}

fn subscribe(address: &str, topic: &str) -> String {
    format!(
        "<wsnt:Subscribe xmlns:wsnt=\"{WSNT}\" xmlns:wsa=\"{WSA}\" xmlns:v=\"urn:vcds:2026\"><wsnt:ConsumerReference><wsa:Address>{address}</wsa:Address><wsa:ReferenceParameters><k:Key xmlns:k=\"urn:k\">42</k:Key></wsa:ReferenceParameters></wsnt:ConsumerReference><wsnt:Filter><wsnt:TopicExpression Dialect=\"http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple\">{topic}</wsnt:TopicExpression></wsnt:Filter><wsnt:InitialTerminationTime>PT10M</wsnt:InitialTerminationTime></wsnt:Subscribe>"
    )
}

#[actix_web::test]
async fn value_changes_reach_subscribers_until_they_unsubscribe() {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir)).unwrap());
    let app = app!(state);
    let id = create(&app).await;
    let (address, received) = consumer();
    let r = call(
        &app,
        "System",
        vcds_wsrf::actions::SUBSCRIBE,
        Some(&id),
        &subscribe(&address, "v:Description"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sub_id = r
        .doc()
        .descendants()
        .find(|n| n.has_tag_name(("urn:vcds:2026", "ResourceId")))
        .and_then(|n| n.text().map(str::to_string))
        .unwrap();
    call(
        &app,
        "System",
        vcds_wsrf::actions::SET_RP,
        Some(&id),
        &update_description("one"),
    )
    .await;
    let notify = received
        .recv_timeout(Duration::from_secs(10))
        .expect("a Notify");
    let doc = roxmltree::Document::parse(&notify).unwrap();
    let new_value = doc
        .descendants()
        .find(|n| n.has_tag_name((RP, "NewValues")))
        .unwrap();
    assert_eq!(new_value.first_element_child().unwrap().text(), Some("one"));
    let key = doc
        .descendants()
        .find(|n| n.has_tag_name(("urn:k", "Key")))
        .expect("reference parameter echoed");
    assert_eq!(key.attribute((WSA, "IsReferenceParameter")), Some("true"));
    // A change of another property is not on this topic.
    let tag = format!("<rp:SetResourceProperties xmlns:rp=\"{RP}\"><rp:Insert><v:Tag xmlns:v=\"urn:vcds:2026\">t</v:Tag></rp:Insert></rp:SetResourceProperties>");
    call(&app, "System", vcds_wsrf::actions::SET_RP, Some(&id), &tag).await;
    let r = call(
        &app,
        "Subscription",
        vcds_wsrf::actions::UNSUBSCRIBE,
        Some(&sub_id),
        &format!("<wsnt:Unsubscribe xmlns:wsnt=\"{WSNT}\"/>"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    call(
        &app,
        "System",
        vcds_wsrf::actions::SET_RP,
        Some(&id),
        &update_description("two"),
    )
    .await;
    assert!(
        received.recv_timeout(Duration::from_millis(1500)).is_err(),
        "nothing after Tag or after Unsubscribe"
    );
}

#[actix_web::test]
async fn a_dead_consumer_never_slows_requests() {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir)).unwrap());
    let app = app!(state);
    let id = create(&app).await;
    // A port that was just free: nothing listens there.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/gone", l.local_addr().unwrap())
    };
    call(
        &app,
        "System",
        vcds_wsrf::actions::SUBSCRIBE,
        Some(&id),
        &subscribe(&dead, "v:Description"),
    )
    .await;
    let start = Instant::now();
    for i in 0..300 {
        let r = call(
            &app,
            "System",
            vcds_wsrf::actions::SET_RP,
            Some(&id),
            &update_description(&i.to_string()),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    // Counted, not waited for: the updates never waited on delivery (each retry cycle alone takes seconds).
    assert!(start.elapsed() < Duration::from_secs(60));
    let c = &state.api.notifier.counters;
    let handed = c.delivered.load(std::sync::atomic::Ordering::Relaxed)
        + c.failed.load(std::sync::atomic::Ordering::Relaxed)
        + c.dropped.load(std::sync::atomic::Ordering::Relaxed);
    assert!(handed <= 300);
    let r = call(
        &app,
        "System",
        vcds_wsrf::actions::GET_RP,
        Some(&id),
        GET_DESCRIPTION,
    )
    .await;
    assert_eq!(r.text_of("Description").as_deref(), Some("299"));
}

#[actix_web::test]
async fn hostile_input_gets_sender_faults_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir)).unwrap());
    let app = app!(state);
    let before = state.manager.registry().select(|_| true).len();
    let deep = "<a>".repeat(10_000) + &"</a>".repeat(10_000);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "doctype",
            format!(
                "<!DOCTYPE x [<!ENTITY a \"b\">]>{}",
                envelope(S11, CREATE, None, "&a;")
            ),
            "xml-doctype",
        ),
        ("deep", envelope(S11, CREATE, None, &deep), "xml-too-deep"),
        (
            "huge",
            envelope(S11, CREATE, None, &"x".repeat(5 * 1024 * 1024)),
            "body-too-large",
        ),
        ("malformed", "<s:Envelope".to_string(), "xml-malformed"),
        (
            "wrong body",
            envelope(S11, CREATE, None, "<x:createRequest xmlns:x=\"urn:evil\"/>"),
            "body-mismatch",
        ),
    ];
    for (name, body, code) in cases {
        let r = post(&app, "Portal", "text/xml", body).await;
        assert_eq!(
            r.status,
            500,
            "{name}: {}",
            &r.text[..r.text.len().min(300)]
        );
        assert_eq!(r.text_of("ErrorCode").as_deref(), Some(code), "{name}");
        assert_eq!(
            r.text_of("faultcode").as_deref(),
            Some("s:Client"),
            "{name}"
        );
    }
    let r = post(
        &app,
        "Portal",
        "text/xml",
        "\u{feff}<e>\u{0}</e>".to_string(),
    )
    .await;
    assert_eq!(r.status, 500);
    // SOAP 1.2: Sender faults are HTTP 400.
    let r = post(
        &app,
        "Portal",
        "application/soap+xml; charset=utf-8",
        envelope(S12, CREATE, None, &deep),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("s:Sender"), "{}", r.text);
    assert_eq!(
        state.manager.registry().select(|_| true).len(),
        before,
        "nothing created"
    );
    // And the service still serves.
    create(&app).await;
}

#[actix_web::test]
async fn addressing_and_dispatch_faults() {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir)).unwrap());
    let app = app!(state);
    let id = create(&app).await;
    let r = call(&app, "System", "urn:no-such-action", Some(&id), "<x/>").await;
    assert!(r.text.contains("ActionNotSupported"), "{}", r.text);
    assert!(
        r.text
            .contains("<wsa:Action>urn:no-such-action</wsa:Action>"),
        "ProblemAction: {}",
        r.text
    );
    let r = call(
        &app,
        "System",
        vcds_wsrf::actions::GET_RP,
        Some("nope"),
        GET_DESCRIPTION,
    )
    .await;
    assert_eq!(r.fault_detail(), "ResourceUnknownFault");
    let r = call(
        &app,
        "System",
        vcds_wsrf::actions::GET_RP,
        None,
        GET_DESCRIPTION,
    )
    .await;
    assert_eq!(r.fault_detail(), "ResourceUnknownFault");
    // A System id at the Subscription endpoint is not a subscription.
    let r = call(
        &app,
        "Subscription",
        vcds_wsrf::actions::GET_RP,
        Some(&id),
        GET_DESCRIPTION,
    )
    .await;
    assert_eq!(r.fault_detail(), "ResourceUnknownFault");
    let no_action = format!("<s:Envelope xmlns:s=\"{S11}\"><s:Body><x/></s:Body></s:Envelope>");
    let r = post(&app, "Portal", "text/xml", no_action).await;
    assert!(
        r.text.contains("MessageAddressingHeaderRequired"),
        "{}",
        r.text
    );
    // A fault about the addressing headers still relates to the message it answers.
    let dup = format!("<s:Envelope xmlns:s=\"{S11}\" xmlns:wsa=\"{WSA}\"><s:Header><wsa:MessageID>urn:uuid:dup</wsa:MessageID><wsa:Action>{CREATE}</wsa:Action><wsa:Action>{CREATE}</wsa:Action></s:Header><s:Body/></s:Envelope>");
    let r = post(&app, "Portal", "text/xml", dup).await;
    assert!(r.text.contains("fc:InvalidAddressingHeader"), "{}", r.text);
    assert_eq!(r.text_of("RelatesTo").as_deref(), Some("urn:uuid:dup"));
    let r = post(&app, "Portal", "application/json", "{}".to_string()).await;
    assert_eq!(r.text_of("ErrorCode").as_deref(), Some("content-type"));
    // Prefix-independent QNames, and the request's order in GetMultiple.
    let multi = format!("<rp:GetMultipleResourceProperties xmlns:rp=\"{RP}\" xmlns:a=\"{RL}\" xmlns:b=\"http://docs.oasis-open.org/wsdm/muws1-2.xsd\"><rp:ResourceProperty>a:TerminationTime</rp:ResourceProperty><rp:ResourceProperty>b:ResourceId</rp:ResourceProperty></rp:GetMultipleResourceProperties>");
    let r = call(
        &app,
        "System",
        vcds_wsrf::actions::GET_MULTIPLE_RP,
        Some(&id),
        &multi,
    )
    .await;
    let doc = r.doc();
    let resp = doc
        .descendants()
        .find(|n| n.tag_name().name() == "GetMultipleResourcePropertiesResponse")
        .unwrap();
    let names: Vec<&str> = resp
        .children()
        .filter(|c| c.is_element())
        .map(|c| c.tag_name().name())
        .collect();
    assert_eq!(names, ["TerminationTime", "ResourceId"]);
}
