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

    // A host the site says installs from one address (its GW-node's) is that address's only:
    // neither its MAC nor its own address gets its kickstart (its secrets) from elsewhere.
    let fenced = host_json(r#"{"vcds_console":"serial","vcds_installs_from":"198.19.1.1"}"#);
    assert_eq!(
        send(&app, post("/admin/hosts", fenced), ADMIN).await.status,
        201
    );
    for (uri, peer) in [
        (
            "/install/sbin/kickstart.cgi?mac=52:54:00:00:00:11",
            "10.9.9.9:1",
        ),
        ("/install/sbin/kickstart.cgi", NODE),
        (
            "/install/progress?state=failed&mac=52:54:00:00:00:11",
            "10.9.9.9:1",
        ),
    ] {
        let r = send(&app, get(uri), peer).await;
        assert_eq!(r.status, 403, "{uri} from {peer}: {}", r.text);
        assert!(
            r.text.contains("may not act for host c100-n1"),
            "{}",
            r.text
        );
    }
    let r = send(
        &app,
        get("/install/sbin/kickstart.cgi?mac=52:54:00:00:00:11"),
        "198.19.1.1:4000",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let unfenced = host_json(r#"{"vcds_console":"serial"}"#);
    assert_eq!(
        send(&app, post("/admin/hosts", unfenced), ADMIN)
            .await
            .status,
        201
    );

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

/// `POST /install/scheduler`: only the cluster's frontend (the host its nodes know as
/// `Kickstart_PrivateHostname`), from the address it installs from, about its own cluster's
/// nodes; a change is announced once, a repeat is not; bad reports change nothing.
#[actix_web::test]
async fn scheduler_reports_come_from_the_frontend_about_its_own_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let state = web::Data::new(AppState::open(&config(&dir)).unwrap());
    let app = app!(state);
    let host = |name: &str, node: &str, mac: &str, ip: &str| {
        format!(
            r#"{{"name":"{name}","mac":"{mac}","ip":"{ip}","cluster":"sys-9","appliance":"compute","attributes":{{"hostname":"{node}","Kickstart_PrivateHostname":"frontend-0-0","vcds_installs_from":"198.19.1.9"}}}}"#
        )
    };
    for (name, node, mac, ip) in [
        (
            "fe.sys-9",
            "frontend-0-0",
            "52:54:00:00:09:01",
            "10.9.0.254",
        ),
        ("c0.sys-9", "compute-0-0", "52:54:00:00:09:02", "10.9.0.253"),
        ("c1.sys-9", "compute-0-1", "52:54:00:00:09:03", "10.9.0.252"),
    ] {
        let r = send(&app, post("/admin/hosts", host(name, node, mac, ip)), ADMIN).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let mut changes = state.kickstarts.scheduler_events();
    let gw = "198.19.1.9:5000";
    let from_frontend = "/install/scheduler?mac=52:54:00:00:09:01";
    let report = "node compute-0-0 idle\nnode compute-0-1 allocated\njobs 1 2\n";

    for (uri, body, peer, status, words) in [
        (
            "/install/scheduler?mac=52:54:00:00:09:02",
            report,
            gw,
            403,
            "c0.sys-9 is not its cluster's frontend",
        ),
        (
            from_frontend,
            report,
            "10.9.9.9:1",
            403,
            "may not act for host fe.sys-9",
        ),
        (
            from_frontend,
            "node compute-0-0 idle\n",
            gw,
            400,
            "no `jobs",
        ),
        (
            from_frontend,
            "node compute-9-9 idle\njobs 0 0\n",
            gw,
            400,
            "node compute-9-9 is not a node of fe.sys-9's cluster",
        ),
        (
            from_frontend,
            "node compute-0-0 <b>\njobs 0 0",
            gw,
            400,
            "line 1: node state",
        ),
    ] {
        let r = send(&app, post(uri, body), peer).await;
        assert_eq!(r.status, status, "{body:?} from {peer}: {}", r.text);
        assert!(r.text.contains(words), "{}", r.text);
    }
    let r = send(&app, post(from_frontend, vec![b'x'; 70 * 1024]), gw).await;
    assert!(r.status >= 400 && r.status < 500, "{}", r.status);
    assert!(state.kickstarts.scheduler_view("sys-9").is_none());
    assert!(changes.try_recv().is_err(), "nothing announced");

    let r = send(&app, post(from_frontend, report), gw).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let view = state.kickstarts.scheduler_view("sys-9").unwrap().view;
    assert_eq!(view.nodes["compute-0-1"], "allocated");
    assert_eq!((view.running, view.pending), (1, 2));
    let first = changes.try_recv().unwrap();
    assert_eq!((first.cluster.as_str(), first.before), ("sys-9", None));
    // The same view again: kept (its time moves), not announced.
    assert_eq!(
        send(&app, post(from_frontend, report), gw).await.status,
        204
    );
    assert!(changes.try_recv().is_err());
    let done = "node compute-0-0 idle\nnode compute-0-1 idle*\njobs 0 0\n";
    assert_eq!(send(&app, post(from_frontend, done), gw).await.status, 204);
    let change = changes.try_recv().unwrap();
    assert_eq!(change.before.unwrap().view, view);
    assert_eq!(change.after.view.nodes["compute-0-1"], "down");

    // The cluster's hosts gone, its view goes with them.
    for name in ["fe.sys-9", "c0.sys-9", "c1.sys-9"] {
        let delete = test::TestRequest::delete().uri(&format!("/admin/hosts/{name}"));
        assert_eq!(send(&app, delete, ADMIN).await.status, 204);
    }
    assert!(state.kickstarts.scheduler_view("sys-9").is_none());
}

/// Built-in rolls follow the binary: a stored copy that differs (an older vcds's) is replaced
/// at start, and no admin replaces one under its name.
#[actix_web::test]
async fn built_in_rolls_follow_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let files = |state: &AppState| {
        let r = state.kickstarts.rolls();
        r.into_iter()
            .find(|r| r.name == "vcds-base")
            .map(|r| r.files)
    };
    // An older vcds stored a vcds-base with one file more.
    {
        let state = web::Data::new(AppState::open(&config(&dir)).unwrap());
        let app = app!(state);
        let older = archive(
            Some(&rolls_dir().join("vcds-base")),
            "vcds-base",
            &[("nodes/vcds-old.xml", "<kickstart></kickstart>\n")],
        );
        let r = send(&app, post("/admin/rolls", older), ADMIN).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let built_in = vcds_install::builtin_rolls()
        .into_iter()
        .find(|r| r.name == "vcds-base")
        .unwrap()
        .files
        .len();
    let with_builtins = |dir: &tempfile::TempDir| Config {
        builtin_rolls: true,
        ..config(dir)
    };
    let state = web::Data::new(AppState::open(&with_builtins(&dir)).unwrap());
    assert_eq!(files(&state), Some(built_in));
    let app = app!(state);
    let mine = archive(Some(&rolls_dir().join("vcds-base")), "vcds-base", &[]);
    let r = send(&app, post("/admin/rolls", mine), ADMIN).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(
        r.text.contains("roll vcds-base is built into this vcds"),
        "{}",
        r.text
    );
}
