//! The web UI under /ui/: pages in-process (plain mode: the local admin), actions through the
//! SOAP operations' functions, sessions and CSRF refusals, bad input, and in secure mode with
//! mutual TLS what alice, bob and an admin each see and may do.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;
use common::ops::{initialize_inline, small_cluster};
use common::secure::{create_as, http_request, https_raw, Secure};
use common::*;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix_web::cookie::Cookie;
use actix_web::{test, web};
use openssl::ssl::SslVersion;
use vcds_model::{Lifecycle, Phase, Resource, State};
use vcds_server::{AppState, Config};

const SYSTEM: &str = "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/";
const API: &str = "http://www.gridforum.org/cddlm/deployapi/2005/02";

/// A site of two P-nodes, `pa` and `pb`, whose simulated executor takes `step` per phase.
fn state(dir: &tempfile::TempDir, step: Duration) -> web::Data<AppState> {
    let mut c = Config::new(
        "127.0.0.1:0",
        format!("sqlite://{}", dir.path().join("vcds.db").display()),
    );
    c.site = vcds_server::Site::Simulated(vcds_manager::sim::Simulated {
        step,
        ..Default::default()
    });
    c.pnodes = ["pa", "pb"]
        .into_iter()
        .map(|n| {
            vcds_placement::PNode::new(n, vcds_placement::Resources::new(16, 65536, 1000))
                .gw_capable(true)
        })
        .collect();
    c.security.audit_log = Some(dir.path().join("audit.log"));
    web::Data::new(AppState::open(&c).unwrap())
}

fn deployment(state: &AppState, id: &str) -> Option<(Lifecycle, Option<Phase>)> {
    match &state.manager.registry().get(id)?.state {
        State::System { deployment, .. } => Some((deployment.lifecycle, deployment.phase)),
        _ => None,
    }
}

fn phase(state: &AppState, id: &str) -> Option<Phase> {
    deployment(state, id).and_then(|(_, p)| p)
}

/// A System initialized with examples/small-cluster.cdl and run until its phase is ready.
async fn ready_cluster(app: &impl Svc, state: &AppState) -> String {
    let id = create(app).await;
    let op = |name: &str| format!("{SYSTEM}{name}Request");
    call(
        app,
        "System",
        &op("Initialize"),
        Some(&id),
        &initialize_inline(&small_cluster()),
    )
    .await
    .ok();
    let run = format!("<api:runRequest xmlns:api=\"{API}\"/>");
    call(app, "System", &op("Run"), Some(&id), &run).await.ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while phase(state, &id) != Some(Phase::Ready) {
        assert!(
            Instant::now() < deadline,
            "not ready: {:?}",
            phase(state, &id)
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    id
}

/// A new session and its CSRF token, from a confirmation page (which changes nothing).
async fn session(app: &impl Svc, id: &str) -> (Cookie<'static>, String) {
    let page = get(app, &format!("/ui/clusters/{id}/destroy"), None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    (page.session(), page.csrf())
}

/// An answer of the UI.
#[derive(Debug)]
struct Page {
    status: u16,
    text: String,
    /// `Set-Cookie` headers.
    cookies: Vec<String>,
    location: Option<String>,
}

impl Page {
    /// The session cookie it set.
    fn session(&self) -> Cookie<'static> {
        let raw = self
            .cookies
            .iter()
            .find(|c| c.contains("vcds-ui="))
            .unwrap_or_else(|| panic!("no session cookie: {self:?}"));
        Cookie::parse(raw.clone()).unwrap()
    }

    /// The CSRF token of its forms.
    fn csrf(&self) -> String {
        let at = self
            .text
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field: {}", self.text));
        let rest = &self.text[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

async fn send(app: &impl Svc, req: test::TestRequest) -> Page {
    let resp = test::call_service(app, req.to_request()).await;
    let status = resp.status().as_u16();
    let header = |name| {
        resp.headers()
            .get_all(name)
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let cookies = header("set-cookie");
    let location = header("location").into_iter().next();
    let bytes = test::read_body(resp).await;
    Page {
        status,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        cookies,
        location,
    }
}

async fn get(app: &impl Svc, uri: &str, session: Option<&Cookie<'static>>) -> Page {
    let mut req = test::TestRequest::get().uri(uri);
    if let Some(c) = session {
        req = req.cookie(c.clone());
    }
    send(app, req).await
}

fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

async fn post(
    app: &impl Svc,
    uri: &str,
    session: Option<&Cookie<'static>>,
    fields: &[(&str, &str)],
    origin: Option<&str>,
) -> Page {
    let mut req = test::TestRequest::post()
        .uri(uri)
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .set_payload(form(fields));
    if let Some(c) = session {
        req = req.cookie(c.clone());
    }
    if let Some(o) = origin {
        req = req.insert_header(("Origin", o));
    }
    send(app, req).await
}

/// Everything stored, for "nothing changed" checks.
fn snapshot(state: &AppState) -> Vec<Resource> {
    state
        .manager
        .registry()
        .select(|_| true)
        .iter()
        .map(|r| (**r).clone())
        .collect()
}

fn gmond(hosts: &[(&str, f64)]) -> vcds_monitor::EndpointReport {
    let hosts: String = hosts
        .iter()
        .map(|(name, load)| {
            format!("<HOST NAME=\"{name}\" IP=\"10.0.0.1\" REPORTED=\"0\" TN=\"1\" TMAX=\"20\" DMAX=\"0\"><METRIC NAME=\"load_one\" VAL=\"{load}\" TYPE=\"float\" UNITS=\"\" TN=\"1\" TMAX=\"70\" DMAX=\"0\" SLOPE=\"both\"/><METRIC NAME=\"cpu_num\" VAL=\"16\" TYPE=\"uint16\" UNITS=\"CPUs\" TN=\"1\" TMAX=\"1200\" DMAX=\"0\" SLOPE=\"zero\"/></HOST>")
        })
        .collect();
    let xml = format!("<GANGLIA_XML VERSION=\"3.7.2\" SOURCE=\"gmond\"><CLUSTER NAME=\"site\" LOCALTIME=\"0\" OWNER=\"\" LATLONG=\"\" URL=\"\">{hosts}</CLUSTER></GANGLIA_XML>");
    let doc = vcds_monitor::parse::parse_str(&xml, &Default::default()).unwrap();
    vcds_monitor::EndpointReport {
        endpoint: "127.0.0.1:8649".into(),
        elapsed: Duration::ZERO,
        result: Ok(doc),
    }
}

#[actix_web::test]
async fn the_dashboard_and_cluster_page_show_pnodes_clusters_nodes_load_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir, Duration::from_millis(20));
    let app = app!(state);
    assert_eq!(
        get(&app, "/ui", None).await.location.as_deref(),
        Some("/ui/")
    );
    let empty = get(&app, "/ui/", None).await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert!(
        empty.text.contains("No virtual clusters."),
        "{}",
        empty.text
    );
    assert!(empty.text.contains("no Ganglia data yet"), "{}", empty.text);

    let id = ready_cluster(&app, &state).await;
    // Two Ganglia polls of the P-nodes: a load now and a history to draw.
    let now = chrono::Utc::now().timestamp() as u64;
    state
        .manager
        .monitoring()
        .apply(vec![gmond(&[("pa", 0.5), ("pb", 1.0)])], now - 15);
    state
        .manager
        .monitoring()
        .apply(vec![gmond(&[("pa", 1.5), ("pb", 0.25)])], now);

    let page = get(&app, "/ui/", None).await;
    assert_eq!(page.status, 200);
    let html = &page.text;
    for expected in [
        "P-nodes",
        "data-pnode=\"pa\"",
        "data-pnode=\"pb\"",
        "1.50",
        "<svg class=\"spark\"",
        &format!("data-cluster=\"{id}\""),
        "data-phase=\"ready\"",
        "VXLAN",
        "GW-node",
        "frontend@",
        "local",
    ] {
        assert!(
            html.contains(expected),
            "dashboard lacks {expected:?}: {html}"
        );
    }
    let cookie = page.session();
    let set = &page.cookies[0];
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(
        !set.contains("Secure"),
        "plain HTTP cookie marked Secure: {set}"
    );

    let cluster = get(&app, &format!("/ui/clusters/{id}"), Some(&cookie)).await;
    assert_eq!(cluster.status, 200, "{}", cluster.text);
    assert!(cluster.cookies.is_empty(), "a valid session is kept");
    let html = &cluster.text;
    for expected in [
        "data-node=\"frontend\"",
        "data-node=\"compute-0-0\"",
        "data-node=\"compute-0-1\"",
        "install-up",
        "phase installing → ready",
        "lifecycle initialized → running",
        "created by local",
        "Ganglia reports no such host",
        "/ui/clusters/",
        "btn-suspend",
        "btn-destroy",
    ] {
        assert!(
            html.contains(expected),
            "cluster page lacks {expected:?}: {html}"
        );
    }
    assert!(
        !html.contains("btn-resume"),
        "resume offered on a ready cluster"
    );

    // Static parts and headers.
    let css = get(&app, "/ui/static/ui.css", None).await;
    assert_eq!(css.status, 200);
    let js = get(&app, "/ui/static/ui.js", None).await;
    assert!(js.text.contains("data-live"));
    let resp = test::call_service(&app, test::TestRequest::get().uri("/ui/").to_request()).await;
    let csp = resp.headers().get("content-security-policy").unwrap();
    assert!(csp.to_str().unwrap().contains("script-src 'self'"));
}

#[actix_web::test]
async fn suspend_resume_extend_terminate_and_destroy_go_through_a_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir, Duration::from_millis(20));
    let app = app!(state);
    let id = ready_cluster(&app, &state).await;
    let (cookie, token) = session(&app, &id).await;
    let at = |action: &str| format!("/ui/clusters/{id}/{action}");
    let cluster_page = format!("/ui/clusters/{id}");

    // The confirmation step changes nothing, on GET or on a POST without confirm=yes.
    let confirm = get(&app, &at("suspend"), Some(&cookie)).await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert!(confirm.text.contains("id=\"confirm\""), "{}", confirm.text);
    assert_eq!(confirm.csrf(), token);
    let unconfirmed = post(
        &app,
        &at("suspend"),
        Some(&cookie),
        &[("csrf", &token)],
        None,
    )
    .await;
    assert_eq!(unconfirmed.status, 200);
    assert!(unconfirmed.text.contains("id=\"confirm\""));
    assert_eq!(phase(&state, &id), Some(Phase::Ready));

    let yes = [("csrf", token.as_str()), ("confirm", "yes")];
    let done = post(
        &app,
        &at("suspend"),
        Some(&cookie),
        &yes,
        Some("http://localhost:8080"),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert_eq!(done.location.as_deref(), Some(cluster_page.as_str()));
    assert_eq!(
        deployment(&state, &id),
        Some((Lifecycle::Suspended, Some(Phase::Suspended)))
    );
    let page = get(&app, &cluster_page, Some(&cookie)).await;
    assert!(
        page.text.contains("data-phase=\"suspended\""),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("phase ready → suspended"),
        "{}",
        page.text
    );
    assert!(page.text.contains("btn-resume"));

    // Suspending twice is the SOAP operation's refusal, shown, with nothing changed.
    let before = snapshot(&state);
    let again = post(&app, &at("suspend"), Some(&cookie), &yes, None).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(
        again
            .text
            .contains("Suspend is not allowed in state suspended"),
        "{}",
        again.text
    );
    assert!(again.text.contains("Nothing was changed."));
    assert_eq!(snapshot(&state), before);

    assert_eq!(
        post(&app, &at("resume"), Some(&cookie), &yes, None)
            .await
            .status,
        303
    );
    assert_eq!(phase(&state, &id), Some(Phase::Ready));

    // Extend by 48 hours: the reservation's end and the termination time move.
    let end_of = |state: &AppState| match &state.manager.registry().get(&id).unwrap().state {
        State::System { deployment, .. } => deployment.allocation.as_ref().unwrap().window.end,
        _ => unreachable!(),
    };
    let end = end_of(&state);
    let confirm = get(&app, &format!("{}?hours=48", at("extend")), Some(&cookie)).await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert!(confirm.text.contains("New end:"));
    let extend = [
        ("csrf", token.as_str()),
        ("confirm", "yes"),
        ("hours", "48"),
    ];
    let done = post(&app, &at("extend"), Some(&cookie), &extend, None).await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert_eq!(end_of(&state), end + 48 * 3600);
    let termination = state
        .manager
        .registry()
        .get(&id)
        .unwrap()
        .termination
        .unwrap();
    assert_eq!(termination.timestamp(), end + 48 * 3600);

    assert_eq!(
        post(&app, &at("terminate"), Some(&cookie), &yes, None)
            .await
            .status,
        303
    );
    assert_eq!(deployment(&state, &id).unwrap().0, Lifecycle::Terminated);
    let gone = post(&app, &at("destroy"), Some(&cookie), &yes, None).await;
    assert_eq!(gone.status, 303);
    assert_eq!(gone.location.as_deref(), Some("/ui/"));
    assert!(state.manager.registry().get(&id).is_none());
    assert!(
        state.ui.events.recent(&id).is_empty(),
        "the event ring goes with the System"
    );

    // Every action is in the audit log under its SOAP operation's name.
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    for op in [
        "\"Suspend\"",
        "\"Resume\"",
        "\"SetTerminationTime\"",
        "\"Terminate\"",
        "\"Destroy\"",
    ] {
        assert!(audit.contains(op), "audit lacks {op}: {audit}");
    }
    assert!(audit.contains("LifecycleFault"), "{audit}");
}

#[actix_web::test]
async fn forged_posts_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir, Duration::from_millis(20));
    let app = app!(state);
    let id = ready_cluster(&app, &state).await;
    let (cookie, token) = session(&app, &id).await;
    let (other_cookie, other_token) = session(&app, &id).await;
    assert_ne!(token, other_token);
    let uri = format!("/ui/clusters/{id}/destroy");
    let before = snapshot(&state);
    let good = [("csrf", token.as_str()), ("confirm", "yes")];
    let (mine, others) = (Some(&cookie), Some(&other_cookie));
    // (what is forged, session cookie, form, Origin)
    let cases = [
        ("no session", None, &good[..], None),
        ("no token", mine, &[("confirm", "yes")][..], None),
        (
            "wrong token",
            mine,
            &[("csrf", "00ff"), ("confirm", "yes")][..],
            None,
        ),
        ("another session's token", others, &good[..], None),
        ("another site", mine, &good[..], Some("http://evil.example")),
        ("opaque origin", mine, &good[..], Some("null")),
    ];
    for (name, session, fields, origin) in cases {
        let r = post(&app, &uri, session, fields, origin).await;
        assert_eq!(r.status, 403, "{name}: {}", r.text);
        assert!(r.text.contains("Refused"), "{name}: {}", r.text);
        assert_eq!(snapshot(&state), before, "{name} changed something");
    }
    // A tampered cookie is no session either.
    let mut forged = cookie.clone();
    forged.set_value(format!("{}0", cookie.value()));
    let r = post(
        &app,
        &uri,
        Some(&forged),
        &[("csrf", &token), ("confirm", "yes")],
        None,
    )
    .await;
    assert_eq!(r.status, 403);
    // A non-form body is bad input, not an action.
    let r = send(
        &app,
        test::TestRequest::post()
            .uri(&uri)
            .cookie(cookie.clone())
            .insert_header(("Content-Type", "application/json"))
            .set_payload("{\"csrf\":\"x\"}"),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(snapshot(&state), before);
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(audit.contains("AccessDenied"), "{audit}");
}

#[actix_web::test]
async fn bad_input_gets_a_clear_error_page_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir, Duration::from_millis(20));
    let app = app!(state);
    let id = ready_cluster(&app, &state).await;
    let (cookie, token) = session(&app, &id).await;
    let before = snapshot(&state);

    let unknown = get(&app, "/ui/clusters/no-such-cluster", Some(&cookie)).await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown
            .text
            .contains("there is no virtual cluster &quot;no-such-cluster&quot;"),
        "{}",
        unknown.text
    );
    let escaped = get(
        &app,
        "/ui/clusters/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        None,
    )
    .await;
    assert_eq!(escaped.status, 404);
    assert!(!escaped.text.contains("<script>alert"), "{}", escaped.text);
    for (uri, status, says) in [
        (format!("/ui/clusters/{id}/explode"), 404, "no such page"),
        (
            format!("/ui/clusters/{id}/extend?hours=abc"),
            400,
            "whole number of hours",
        ),
        (
            format!("/ui/clusters/{id}/extend?hours=0"),
            400,
            "whole number of hours",
        ),
        (
            format!("/ui/clusters/{id}/extend"),
            400,
            "whole number of hours",
        ),
        ("/ui/?page=zz".to_string(), 400, "page number"),
        ("/ui/?page=99".to_string(), 400, "does not exist"),
        ("/ui/nothing/here".to_string(), 404, "no such page"),
    ] {
        let r = get(&app, &uri, Some(&cookie)).await;
        assert_eq!(r.status, status, "{uri}: {}", r.text);
        assert!(r.text.contains(says), "{uri}: {}", r.text);
    }
    for hours in ["-5", "1e3", "99999999", "", "24; DROP"] {
        let fields = [
            ("csrf", token.as_str()),
            ("confirm", "yes"),
            ("hours", hours),
        ];
        let r = post(
            &app,
            &format!("/ui/clusters/{id}/extend"),
            Some(&cookie),
            &fields,
            None,
        )
        .await;
        assert_eq!(r.status, 400, "{hours:?}: {}", r.text);
        assert!(r.text.contains("whole number of hours"), "{}", r.text);
    }
    // An extension past the longest lifetime is the SetTerminationTime refusal.
    let fields = [
        ("csrf", token.as_str()),
        ("confirm", "yes"),
        ("hours", "8784"),
    ];
    let r = post(
        &app,
        &format!("/ui/clusters/{id}/extend"),
        Some(&cookie),
        &fields,
        None,
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("days away"), "{}", r.text);
    let fields = [("csrf", token.as_str()), ("confirm", "yes")];
    let r = post(
        &app,
        "/ui/clusters/no-such-cluster/suspend",
        Some(&cookie),
        &fields,
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(snapshot(&state), before);
}

// ---- Secure mode: alice, bob and an admin over mutual TLS.

/// Status, `Set-Cookie` values and body of a GET or POST as `credential`.
fn https_page(
    addr: SocketAddr,
    credential: &str,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> Page {
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(c) = cookie {
        headers.push(("Cookie", c));
    }
    let request = http_request(method, path, &headers, body.as_bytes());
    let raw = https_raw(addr, Some(credential), SslVersion::TLS1_3, &request).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let all = |name: &str| {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    Page {
        status,
        text: body.to_string(),
        cookies: all("set-cookie"),
        location: all("location").into_iter().next(),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    actix_rt::task::spawn_blocking(f).await.unwrap()
}

#[actix_rt::test]
async fn users_see_and_act_on_their_own_clusters_and_admins_on_all() {
    let server = Secure::start(|_| {}).await;
    let addr = server.addr;
    let before_and_after = blocking(move || {
        let alices = create_as(addr, "alice.pem");
        let bobs = create_as(addr, "bob.pem");
        let get = |who: &str, path: &str, cookie: Option<&str>| {
            https_page(addr, who, "GET", path, cookie, "")
        };

        let alice = get("alice.pem", "/ui/", None);
        assert_eq!(alice.status, 200, "{}", alice.text);
        assert!(
            alice.text.contains(&alices) && !alice.text.contains(&bobs),
            "{}",
            alice.text
        );
        assert!(
            !alice.text.contains("P-nodes"),
            "a user sees no P-node dashboard"
        );
        let set = &alice.cookies[0];
        assert!(
            set.starts_with("__Host-vcds-ui=") && set.contains("Secure"),
            "{set}"
        );
        let admin = get("admin.pem", "/ui/", None);
        assert!(admin.text.contains("P-nodes"), "{}", admin.text);
        assert!(admin.text.contains(&alices) && admin.text.contains(&bobs));

        // Bob's cluster is, to alice, exactly an unknown one.
        let foreign = get("alice.pem", &format!("/ui/clusters/{bobs}"), None);
        let unknown = get(
            "alice.pem",
            "/ui/clusters/00000000-0000-0000-0000-000000000000",
            None,
        );
        assert_eq!(foreign.status, 404);
        assert_eq!(
            foreign.text.replace(&bobs, "ID"),
            unknown
                .text
                .replace("00000000-0000-0000-0000-000000000000", "ID")
        );
        assert_eq!(
            get("admin.pem", &format!("/ui/clusters/{bobs}"), None).status,
            200
        );

        // Alice's session: on her own cluster it works.
        let mine = get("alice.pem", &format!("/ui/clusters/{alices}/destroy"), None);
        let session = mine.cookies[0].split(';').next().unwrap().to_string();
        let token = mine.csrf();
        let body = form(&[("csrf", &token), ("confirm", "yes")]);
        let before = body.clone();
        // Alice's session and token are worthless on bob's connection...
        let stolen = https_page(
            addr,
            "bob.pem",
            "POST",
            &format!("/ui/clusters/{bobs}/destroy"),
            Some(&session),
            &body,
        );
        assert_eq!(stolen.status, 403, "{}", stolen.text);
        // ...and with them alice cannot reach bob's cluster.
        let reach = https_page(
            addr,
            "alice.pem",
            "POST",
            &format!("/ui/clusters/{bobs}/destroy"),
            Some(&session),
            &body,
        );
        assert_eq!(reach.status, 404, "{}", reach.text);
        let own = https_page(
            addr,
            "alice.pem",
            "POST",
            &format!("/ui/clusters/{alices}/destroy"),
            Some(&session),
            &before,
        );
        assert_eq!(own.status, 303, "{}", own.text);
        (alices, bobs)
    })
    .await;
    let (alices, bobs) = before_and_after;
    assert!(server.state.manager.registry().get(&alices).is_none());
    assert!(
        server.state.manager.registry().get(&bobs).is_some(),
        "bob's cluster survived"
    );
    let audit = server.audit_records();
    let destroy = audit
        .iter()
        .find(|r| r["action"] == "Destroy" && r["result"] == "ok")
        .unwrap_or_else(|| panic!("no Destroy record: {audit:?}"));
    assert_eq!(destroy["account"], "alice");
    server.handle.stop(true).await;
}
