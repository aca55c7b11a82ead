//! Rolls in the service end to end, in-process: our own rolls added to the catalog (by path and
//! as a tar archive), hosts registered, kickstarts fetched the way installing nodes fetch them,
//! progress reported, broken rolls refused, and all of it kept across a restart (real SQLite).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use actix_web::{test, web, App};
use vcds_install::InstallState;
use vcds_server::{AppState, Config};

const ADMIN: &str = "127.0.0.1:50000";
const NODE: &str = "10.1.0.11:40000";
const MAC: &str = "52:54:00:00:00:11";

fn rolls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rolls")
}

fn config(dir: &tempfile::TempDir) -> Config {
    let mut config = Config::new(
        "127.0.0.1:0",
        format!("sqlite://{}", dir.path().join("vcds.db").display()),
    );
    config.roll_roots = vec![rolls_dir()];
    // The catalog starts empty here: these tests add and remove rolls themselves.
    config.builtin_rolls = false;
    config
}

/// A tar archive of `dir`'s files under the top directory `top`, plus `extra` files.
fn archive(dir: Option<&Path>, top: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    if let Some(dir) = dir {
        builder.append_dir_all(top, dir).unwrap();
    }
    for (path, text) in extra {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("{top}/{path}"), text.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

struct Reply {
    status: u16,
    content_type: String,
    text: String,
}

macro_rules! app {
    ($state:expr) => {
        test::init_service(App::new().configure(|c| $state.configure(c))).await
    };
}

async fn send<S>(app: &S, req: test::TestRequest, peer: &str) -> Reply
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let peer: SocketAddr = peer.parse().unwrap();
    let resp = test::call_service(app, req.peer_addr(peer).to_request()).await;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = test::read_body(resp).await;
    Reply {
        status,
        content_type,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn get(uri: &str) -> test::TestRequest {
    test::TestRequest::get().uri(uri)
}

fn post(uri: &str, body: impl Into<actix_web::web::Bytes>) -> test::TestRequest {
    test::TestRequest::post().uri(uri).set_payload(body.into())
}

fn host_json(attributes: &str) -> String {
    format!(
        r#"{{"name":"c100-n1","mac":"52:54:00:00:00:11","ip":"10.1.0.11","cluster":"sys-1","appliance":"compute","attributes":{attributes}}}"#
    )
}

fn listing(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[actix_web::test]
async fn rolls_hosts_kickstarts_and_progress() {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir)).unwrap());
    let app = app!(state);

    // Admin routes are loopback only.
    let r = send(&app, get("/admin/rolls"), NODE).await;
    assert_eq!(r.status, 403, "{}", r.text);

    // No rolls yet: a registered node is told so, not given an empty kickstart.
    let r = send(&app, post("/admin/hosts", host_json("{}")), ADMIN).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = send(&app, get("/install/sbin/kickstart.cgi"), NODE).await;
    assert_eq!(r.status, 503, "{}", r.text);

    // vcds-base by path (under a configured roll root), vcds-compute as an archive.
    let base = rolls_dir().join("vcds-base");
    let r = send(
        &app,
        post(&format!("/admin/rolls?path={}", base.display()), ""),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = send(&app, post("/admin/rolls?path=/etc", ""), ADMIN).await;
    assert_eq!(r.status, 403, "outside the roll roots: {}", r.text);
    let compute = archive(Some(&rolls_dir().join("vcds-compute")), "vcds-compute", &[]);
    let r = send(&app, post("/admin/rolls", compute), ADMIN).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(listing(&r.text)["version"], "7.0");

    let r = send(&app, get("/admin/rolls"), ADMIN).await;
    assert_eq!(r.status, 200);
    let catalog = listing(&r.text);
    let names: Vec<&str> = catalog["rolls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["vcds-base", "vcds-compute"]);
    let appliances: Vec<&str> = catalog["appliances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        appliances.contains(&"compute") && appliances.contains(&"frontend"),
        "{appliances:?}"
    );

    // The node fetches its kickstart from its own address.
    let r = send(&app, get("/install/sbin/kickstart.cgi"), NODE).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.content_type.starts_with("text/plain"),
        "{}",
        r.content_type
    );
    assert!(r.text.contains("appliance compute"), "{}", r.text);
    assert!(
        r.text.contains("%packages") && r.text.contains("c100-n1") && r.text.contains("10.1.0.11")
    );
    assert!(!r.text.contains("ttyS0"));
    let first = r.text;
    // Cached, and the same by MAC (query or anaconda's header) from anywhere.
    let again = send(&app, get("/install/sbin/kickstart.cgi"), NODE).await;
    assert_eq!(again.text, first);
    let by_mac = send(
        &app,
        get("/install/sbin/kickstart.cgi?mac=52-54-00-00-00-11"),
        "10.9.9.9:1",
    )
    .await;
    assert_eq!((by_mac.status, by_mac.text.as_str()), (200, first.as_str()));
    let by_header = send(
        &app,
        get("/install/sbin/kickstart.cgi")
            .insert_header(("X-RHN-Provisioning-MAC-0", format!("eth0 {MAC}"))),
        "10.9.9.9:1",
    )
    .await;
    assert_eq!(by_header.status, 200, "{}", by_header.text);

    // Unknown nodes are refused with a reason.
    let r = send(&app, get("/install/sbin/kickstart.cgi"), "10.1.0.99:40000").await;
    assert_eq!(r.status, 403);
    assert!(
        r.text.contains("unknown host") && r.text.contains("10.1.0.99"),
        "{}",
        r.text
    );
    let r = send(
        &app,
        get("/install/sbin/kickstart.cgi?mac=52:54:00:00:00:99"),
        NODE,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);

    // A change of host attributes is seen at once (the cached profile is dropped).
    let r = send(
        &app,
        post("/admin/hosts", host_json(r#"{"vcds_console":"serial"}"#)),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = send(&app, get("/install/sbin/kickstart.cgi"), NODE).await;
    assert!(r.text.contains("ttyS0"), "{}", r.text);
    let serial = r.text;

    // A MAC belongs to one host; an address to one host per cluster.
    let other = r#"{"name":"c100-n2","mac":"52:54:00:00:00:11","ip":"10.1.0.12","cluster":"sys-1","appliance":"compute"}"#;
    assert_eq!(
        send(&app, post("/admin/hosts", other), ADMIN).await.status,
        409
    );
    let other = r#"{"name":"c100-n2","mac":"52:54:00:00:00:12","ip":"10.1.0.11","cluster":"sys-1","appliance":"compute"}"#;
    assert_eq!(
        send(&app, post("/admin/hosts", other), ADMIN).await.status,
        409
    );

    // Progress, from the node's address; it shows in the System's node table.
    let r = send(&app, get("/install/progress?state=started"), NODE).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let rows = state.kickstarts.node_table("sys-1");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].install.as_ref().unwrap().state,
        InstallState::Started
    );
    let r = send(
        &app,
        post(
            "/install/progress?state=finished&msg=installed%20in%2042s",
            "",
        ),
        NODE,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let rows = state.kickstarts.node_table("sys-1");
    let install = rows[0].install.as_ref().unwrap();
    assert_eq!(install.state, InstallState::Finished);
    assert_eq!(install.message.as_deref(), Some("installed in 42s"));
    assert_eq!(
        send(&app, get("/install/progress?state=done"), NODE)
            .await
            .status,
        400
    );
    assert_eq!(
        send(&app, get("/install/progress?state=failed"), "10.1.0.99:1")
            .await
            .status,
        403
    );
    assert!(state.kickstarts.node_table("sys-2").is_empty());

    // A broken roll is refused whole, with roll, file and line; nothing changes.
    let broken = archive(
        Some(&rolls_dir().join("vcds-compute")),
        "vcds-compute",
        &[(
            "nodes/vcds-broken.xml",
            "<kickstart>\n<package>x</package>\n<post>\n</kickstart>\n",
        )],
    );
    let r = send(&app, post("/admin/rolls", broken), ADMIN).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(
        r.text.contains("roll vcds-compute") && r.text.contains("nodes/vcds-broken.xml:"),
        "{}",
        r.text
    );
    let r = send(&app, get("/admin/rolls"), ADMIN).await;
    assert_eq!(listing(&r.text), catalog, "catalog unchanged");
    let r = send(&app, get("/install/sbin/kickstart.cgi"), NODE).await;
    assert_eq!(r.text, serial);
    let r = send(
        &app,
        post("/admin/rolls", b"not a tar archive".to_vec()),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        send(
            &app,
            test::TestRequest::delete().uri("/admin/rolls/nope"),
            ADMIN
        )
        .await
        .status,
        404
    );

    // A restart keeps the catalog, the hosts and their progress.
    drop(app);
    drop(state);
    let state = web::Data::new(AppState::open(&config(&dir)).unwrap());
    let app = app!(state);
    let r = send(&app, get("/admin/rolls"), ADMIN).await;
    assert_eq!(listing(&r.text), catalog);
    let r = send(&app, get("/install/sbin/kickstart.cgi"), NODE).await;
    assert_eq!((r.status, r.text.as_str()), (200, serial.as_str()));
    let rows = state.kickstarts.node_table("sys-1");
    assert_eq!(
        rows[0].install.as_ref().unwrap().state,
        InstallState::Finished
    );

    // Rolls enabled per cluster: only vcds-base for sys-1 leaves its compute host without an
    // appliance; both again, and the kickstart is what it was. Kept across a restart.
    let enable = |rolls: &str| {
        test::TestRequest::put()
            .uri("/admin/clusters/sys-1/rolls")
            .set_payload(rolls.to_string())
    };
    assert_eq!(
        send(&app, enable(r#"["vcds-base"]"#), ADMIN).await.status,
        204
    );
    let r = send(&app, get("/install/sbin/kickstart.cgi"), NODE).await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert!(r.text.contains("unknown appliance"), "{}", r.text);
    let r = send(
        &app,
        enable(r#"["vcds-compute","vcds-base","vcds-base"]"#),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = send(&app, get("/install/sbin/kickstart.cgi"), NODE).await;
    assert_eq!((r.status, r.text.as_str()), (200, serial.as_str()));
    assert_eq!(send(&app, enable(r#"["nope"]"#), ADMIN).await.status, 404);
    let r = send(
        &app,
        test::TestRequest::delete().uri("/admin/rolls/vcds-compute"),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, 409, "enabled for sys-1: {}", r.text);
    drop(app);
    drop(state);
    let state = web::Data::new(AppState::open(&config(&dir)).unwrap());
    let app = app!(state);
    let r = send(&app, get("/admin/rolls"), ADMIN).await;
    assert_eq!(
        listing(&r.text)["clusters"],
        serde_json::json!({"sys-1": ["vcds-base", "vcds-compute"]})
    );
    assert_eq!(send(&app, enable("[]"), ADMIN).await.status, 204);
    let r = send(&app, get("/admin/rolls"), ADMIN).await;
    assert_eq!(listing(&r.text), catalog);

    // A removed host is unknown again; registered anew, it installs.
    let delete_host = || test::TestRequest::delete().uri("/admin/hosts/c100-n1");
    assert_eq!(send(&app, delete_host(), ADMIN).await.status, 204);
    assert_eq!(send(&app, delete_host(), ADMIN).await.status, 404);
    let r = send(&app, get("/install/sbin/kickstart.cgi"), NODE).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(state.kickstarts.node_table("sys-1").is_empty());
    let r = send(
        &app,
        post("/admin/hosts", host_json(r#"{"vcds_console":"serial"}"#)),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = send(&app, get("/install/sbin/kickstart.cgi"), NODE).await;
    assert_eq!((r.status, r.text.as_str()), (200, serial.as_str()));

    // Removing a roll changes what the node gets.
    let r = send(
        &app,
        test::TestRequest::delete().uri("/admin/rolls/vcds-compute"),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = send(&app, get("/install/sbin/kickstart.cgi"), NODE).await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert!(
        r.text.contains("c100-n1") && r.text.contains("unknown appliance"),
        "{}",
        r.text
    );
}
