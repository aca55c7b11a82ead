//! vcctl as a person runs it, against the real `vcds serve --site sim` on 127.0.0.1: plain
//! HTTP, and mutual TLS with user and proxy certificates from scripts/make-test-ca.sh.
//!
//! The server binary is $VCDS_BIN or `vcds` beside this vcctl (`cargo build -p vcds`). Each test
//! starts its own server; the guard kills it when the test ends, failed or not.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const VCCTL: &str = env!("CARGO_BIN_EXE_vcctl");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn small_cluster() -> String {
    repo()
        .join("examples/small-cluster.cdl")
        .display()
        .to_string()
}

fn vcds_bin() -> PathBuf {
    let bin = std::env::var_os("VCDS_BIN")
        .map_or_else(|| Path::new(VCCTL).with_file_name("vcds"), PathBuf::from);
    assert!(
        bin.is_file(),
        "{} not found: build the server with `cargo build -p vcds` or set VCDS_BIN",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `vcds serve --site sim` child process on 127.0.0.1, killed on drop.
struct Server {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(scheme: &str, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let child = Command::new(vcds_bin())
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--db")
            .arg(format!("sqlite://{}", dir.path().join("vcds.db").display()))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--site", "sim", "--sim-pnodes", "8", "--sim-step-ms", "100"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            url: format!("{scheme}://127.0.0.1:{port}"),
            dir,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("vcds serve exited with {status}:\n{}", server.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "vcds serve did not listen within 60 s:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn plain() -> Server {
        Server::start("http", &[])
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn vcctl(&self, args: &[&str]) -> Run {
        vcctl(&[&["--url", &self.url], args].concat())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One finished vcctl run.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "{}", self.describe());
        self
    }

    fn code(self, code: i32) -> Run {
        assert_eq!(self.code, Some(code), "{}", self.describe());
        self
    }

    fn describe(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.describe()))
    }

    fn last_line(&self) -> String {
        self.stdout.lines().last().unwrap_or("").trim().to_string()
    }

    /// The value of a `vcctl status` field line.
    fn field(&self, name: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(name).filter(|v| v.starts_with(' ')))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {}", self.describe()))
    }
}

fn vcctl(args: &[&str]) -> Run {
    let out: Output = Command::new(VCCTL)
        .args(args)
        // Only 127.0.0.1, never through a proxy; no inherited default service.
        .env_remove("VCDS_URL")
        .env("NO_PROXY", "*")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Polls `vcctl status` until the phase is `phase`.
fn wait_phase(server: &Server, id: &str, phase: &str) {
    let started = Instant::now();
    loop {
        let status = server.vcctl(&["status", id]).ok();
        if status.field("Phase") == phase {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{id} never reached {phase}: {}",
            status.describe()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn deploy_inspect_and_control_a_cluster() {
    let server = Server::plain();
    let deploy = server.vcctl(&["deploy", &small_cluster()]).ok();
    let id = deploy.last_line();
    assert!(
        deploy.stderr.contains(&format!("created {id}")),
        "{}",
        deploy.describe()
    );
    assert!(
        deploy.stderr.contains("running      ready"),
        "{}",
        deploy.describe()
    );
    // No progress bar without a terminal: the captured lines are plain.
    assert!(
        !deploy.stderr.contains("nodes installed"),
        "{}",
        deploy.describe()
    );

    let status = server.vcctl(&["status", &id]).ok();
    assert_eq!(status.field("ResourceId"), id);
    assert_eq!(status.field("State"), "running");
    assert_eq!(status.field("Phase"), "ready");
    assert_eq!(status.field("Cluster"), "small");
    assert!(
        status.field("Reservation").ends_with("(active)"),
        "{}",
        status.describe()
    );
    assert!(
        status.field("Network").contains("GW-node"),
        "{}",
        status.describe()
    );
    let table: Vec<&str> = status
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Node "))
        .collect();
    assert!(table[0].contains("P-node") && table[0].contains("CPU/MiB/GiB"));
    assert_eq!(
        table.len(),
        4,
        "frontend + 2 computes: {}",
        status.describe()
    );
    assert!(
        table[1..].iter().all(|l| l.ends_with(" up")),
        "{}",
        status.describe()
    );

    let list = server.vcctl(&["list"]).ok();
    assert!(list.stdout.starts_with("ResourceId"), "{}", list.describe());
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("ready")),
        "{}",
        list.describe()
    );
    let metrics = server.vcctl(&["metrics", &id]).ok();
    assert!(
        metrics.stdout.starts_with("Nodes 3"),
        "{}",
        metrics.describe()
    );

    let extended = server.vcctl(&["extend", &id, "PT6H"]).ok().last_line();
    let at = chrono::DateTime::parse_from_rfc3339(&extended).unwrap();
    let hours = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((5.9..=6.0).contains(&hours), "{extended}");

    server.vcctl(&["suspend", &id]).ok();
    wait_phase(&server, &id, "suspended");
    assert_eq!(
        server.vcctl(&["status", &id]).ok().field("State"),
        "suspended"
    );
    server.vcctl(&["resume", &id]).ok();
    wait_phase(&server, &id, "ready");
    server
        .vcctl(&["terminate", &id, "--reason", "done <here>"])
        .ok();
    let watch = server.vcctl(&["watch", &id]).ok();
    assert!(
        watch
            .stdout
            .lines()
            .last()
            .unwrap()
            .ends_with("terminated   released"),
        "{}",
        watch.describe()
    );
    server.vcctl(&["destroy", &id]).ok();
    let gone = server.vcctl(&["status", &id]).code(1);
    assert!(
        gone.stderr.starts_with("vcctl: fault"),
        "{}",
        gone.describe()
    );
    assert!(!server.vcctl(&["list"]).ok().stdout.contains(&id));
}

#[test]
fn create_initialize_run_step_by_step() {
    let server = Server::plain();
    let id = server.vcctl(&["create"]).ok().last_line();
    assert_eq!(
        server.vcctl(&["status", &id]).ok().field("State"),
        "instantiated"
    );
    // Run before Initialize is the client's mistake: a fault, with the server's reason.
    let early = server.vcctl(&["run", &id]).code(1);
    assert!(
        early.stderr.starts_with("vcctl: fault ["),
        "{}",
        early.describe()
    );
    server
        .vcctl(&["initialize", &id, &small_cluster(), "--validate-only"])
        .ok();
    assert_eq!(
        server.vcctl(&["status", &id]).ok().field("State"),
        "instantiated"
    );
    server.vcctl(&["initialize", &id, &small_cluster()]).ok();
    assert_eq!(
        server.vcctl(&["status", &id]).ok().field("State"),
        "initialized"
    );
    server.vcctl(&["run", &id]).ok();
    wait_phase(&server, &id, "ready");
    let again = server.vcctl(&["run", &id]).code(1);
    assert!(
        again.stderr.contains("[wrong-state]"),
        "{}",
        again.describe()
    );
    let sub = server
        .vcctl(&[
            "subscribe",
            &id,
            "http://127.0.0.1:9/events",
            "--topic",
            "vcds:Phase",
        ])
        .ok();
    assert!(
        !sub.last_line().is_empty() && sub.last_line() != id,
        "{}",
        sub.describe()
    );
}

#[test]
fn deploy_of_a_cluster_that_fails_exits_3() {
    let server = Server::start("http", &["--sim-failure", "installing:1.0"]);
    let deploy = server.vcctl(&["deploy", &small_cluster()]).code(3);
    assert!(
        deploy.stderr.contains("failed       failed"),
        "{}",
        deploy.describe()
    );
    let id = deploy.last_line();
    assert_eq!(server.vcctl(&["status", &id]).ok().field("State"), "failed");
    let json = server
        .vcctl(&["deploy", &small_cluster(), "--json"])
        .code(3)
        .json();
    assert_eq!(json["phase"], "failed");
}

#[test]
fn xml_and_json_outputs() {
    let server = Server::plain();
    let created = server.vcctl(&["create", "--json"]).ok().json();
    let id = created["resource_id"].as_str().unwrap().to_string();

    let xml = server.vcctl(&["status", &id, "--xml"]).ok();
    let doc = roxmltree::Document::parse(xml.stdout.trim()).unwrap();
    assert!(doc.root_element().has_tag_name((
        "http://docs.oasis-open.org/wsrf/rp-2",
        "GetResourcePropertyDocumentResponse"
    )));
    assert!(!xml.stdout.contains("ResourceId  "), "no table with --xml");

    server.vcctl(&["initialize", &id, &small_cluster()]).ok();
    let init = server.vcctl(&["run", &id, "--json"]).ok().json();
    assert_eq!(init["operation"], "Run");
    wait_phase(&server, &id, "ready");
    let status = server.vcctl(&["status", &id, "--json"]).ok().json();
    assert_eq!(status["resource_id"], id.as_str());
    assert_eq!(status["state"], "running");
    assert_eq!(status["phase"], "ready");
    assert_eq!(status["cluster"], "small");
    assert_eq!(status["nodes"].as_array().unwrap().len(), 3);
    assert!(status["network"]["gateway"]["ip"].is_string());
    let list = server.vcctl(&["list", "--json"]).ok().json();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["resource_id"] == id.as_str()));
    let metrics = server.vcctl(&["metrics", &id, "--json"]).ok().json();
    assert_eq!(metrics["cluster"]["Nodes"], "3");
    let extend = server.vcctl(&["extend", &id, "P1D", "--json"]).ok().json();
    assert!(extend["termination_time"].is_string());

    let fault = server.vcctl(&["run", &id, "--json"]).code(1);
    let error = &fault.json()["error"];
    assert_eq!(error["exit"], 1);
    assert_eq!(error["fault"]["error_code"], "wrong-state");
    assert!(error["fault"]["element"]
        .as_str()
        .unwrap()
        .ends_with("}LifecycleFault"));

    server.vcctl(&["terminate", &id]).ok();
    let watch = server.vcctl(&["watch", &id, "--json"]).ok();
    let last: serde_json::Value =
        serde_json::from_str(watch.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["phase"], "released");
}

#[test]
fn transport_failures_and_usage_errors() {
    // Nothing listens on a port just released.
    let url = format!("http://127.0.0.1:{}", free_port());
    let refused = vcctl(&["--url", &url, "list"]).code(2);
    assert!(
        refused
            .stderr
            .starts_with(&format!("vcctl: cannot talk to {url}")),
        "{}",
        refused.describe()
    );
    let json = vcctl(&["--url", &url, "list", "--json"]).code(2).json();
    assert_eq!(json["error"]["exit"], 2);

    // The service's URL from the environment.
    let env = Command::new(VCCTL)
        .args(["list"])
        .env("VCDS_URL", &url)
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    assert_eq!(env.status.code(), Some(2));

    let no_url = vcctl(&["list"]).code(64);
    assert!(no_url.stderr.contains("VCDS_URL"), "{}", no_url.describe());
    vcctl(&["--url", &url, "--cert", "x.pem", "list"]).code(64);
    vcctl(&["--url", "ftp://127.0.0.1", "list"]).code(64);
    vcctl(&["--url", &url, "frobnicate"]).code(64);
    vcctl(&["--url", &url, "list", "--xml", "--json"]).code(64);
    let missing = vcctl(&["--url", &url, "deploy", "/nonexistent.cdl"]).code(64);
    assert!(
        missing.stderr.contains("/nonexistent.cdl"),
        "{}",
        missing.describe()
    );

    let help = vcctl(&["--help"]).ok();
    for needed in [
        "VCDS_URL",
        "Exit status",
        "--cert",
        "--json",
        "deploy",
        "Examples",
    ] {
        assert!(
            help.stdout.contains(needed),
            "{needed} missing:\n{}",
            help.stdout
        );
    }
    let deploy_help = vcctl(&["deploy", "--help"]).ok();
    assert!(
        deploy_help.stdout.contains("Example"),
        "{}",
        deploy_help.stdout
    );
}

/// The test PKI of scripts/make-test-ca.sh.
fn pki(dir: &Path) {
    let status = Command::new("bash")
        .arg(repo().join("scripts/make-test-ca.sh"))
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "make-test-ca.sh failed");
}

#[test]
fn mutual_tls_with_user_and_proxy_certificates() {
    let pki_dir = tempfile::tempdir().unwrap();
    pki(pki_dir.path());
    let file = |name: &str| pki_dir.path().join(name).display().to_string();
    let server = Server::start(
        "https",
        &[
            "--tls-cert",
            &file("server.pem"),
            "--tls-key",
            &file("server.key"),
            "--trust-roots",
            &file("trust"),
            "--grid-mapfile",
            &file("grid-mapfile"),
            "--admins",
            &file("admins"),
        ],
    );
    let ca = file("ca.pem");
    let as_user = |cert: &str, key: Option<&str>, args: &[&str]| {
        let mut all = vec!["--ca", ca.as_str(), "--cert", cert];
        if let Some(key) = key {
            all.extend(["--key", key]);
        }
        server.vcctl(&[all.as_slice(), args].concat())
    };
    let (alice, alice_key) = (file("alice.pem"), file("alice.key"));
    let (proxy, proxy_key) = (file("alice-proxy.pem"), file("alice-proxy.key"));

    // Alice deploys with her proxy (the proxy, its key and her certificate in one file).
    let deploy = as_user(&proxy, Some(&proxy_key), &["deploy", &small_cluster()]).ok();
    let id = deploy.last_line();
    // The proxy stands for Alice: her own certificate sees the System, a second-level proxy too
    // (its key read from the proxy file itself), and the trust-roots directory serves as --ca.
    let list = as_user(&alice, Some(&alice_key), &["list"]).ok();
    assert!(list.stdout.contains(&id), "{}", list.describe());
    as_user(&file("alice-proxy2.pem"), None, &["status", &id]).ok();
    let trust = file("trust");
    server
        .vcctl(&["--ca", &trust, "--cert", &proxy, "status", &id])
        .ok();

    // Keys in the traditional SEC1 form (as older grid tools write them) work as well.
    let sec1 = pki_dir.path().join("alice-sec1.key");
    let converted = Command::new("openssl")
        .args(["ec", "-in", &alice_key, "-out"])
        .arg(&sec1)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(converted.success());
    assert!(std::fs::read_to_string(&sec1)
        .unwrap()
        .starts_with("-----BEGIN EC PRIVATE KEY-----"));
    as_user(&alice, Some(&sec1.display().to_string()), &["status", &id]).ok();

    // Bob is another account: Alice's System is unknown to him.
    let bob = as_user(&file("bob.pem"), Some(&file("bob.key")), &["status", &id]).code(1);
    assert!(bob.stderr.contains("fault"), "{}", bob.describe());
    // Mallory's certificate is valid but the grid-mapfile does not map her.
    let mallory = as_user(&file("mallory.pem"), Some(&file("mallory.key")), &["list"]).code(1);
    assert!(mallory.stderr.contains("fault"), "{}", mallory.describe());

    // Refused in the handshake: no certificate, an untrusted one; a server whose CA we do not
    // trust is refused by us.
    server.vcctl(&["--ca", &ca, "list"]).code(2);
    as_user(&file("rogue.pem"), Some(&file("rogue.key")), &["list"]).code(2);
    server
        .vcctl(&["--cert", &alice, "--key", &alice_key, "list"])
        .code(2);
    // A key that is not the certificate's is caught before anything is sent.
    let wrong = as_user(&alice, Some(&file("bob.key")), &["list"]).code(64);
    assert!(wrong.stderr.contains("not the key"), "{}", wrong.describe());

    as_user(&proxy, None, &["destroy", &id]).ok();
}

/// An OpenSSH public key line as `ssh-keygen -t ed25519 -C alice@laptop` writes it.
const ALICE_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJ9zIHvxZ+n2juKrrBwRThLECh7tY5UYJan8bBQo3wr alice@laptop";
const ALICE_FINGERPRINT: &str = "SHA256:/BjqzeYfBuZ07Dl6STGbVqWo6pfxMP4w8mbmUmAJij4";

#[test]
fn deploy_adds_ssh_keys_to_the_login() {
    let server = Server::plain();
    let pub_file = server.dir.path().join("id_ed25519.pub");
    std::fs::write(&pub_file, format!("{ALICE_KEY}\n")).unwrap();
    let key = pub_file.display().to_string();
    let deploy = server
        .vcctl(&[
            "deploy",
            &small_cluster(),
            "--ssh-key",
            &key,
            "--user",
            "alice",
        ])
        .ok();
    let id = deploy.last_line();
    // The service read the key into the cluster's login.
    let status = server.vcctl(&["status", &id, "--json"]).ok().json();
    assert_eq!(status["login"]["user"], "alice");
    let keys = status["login"]["authorized_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{status}");
    assert_eq!(keys[0]["key"], ALICE_KEY);
    assert_eq!(keys[0]["fingerprint"], ALICE_FINGERPRINT);
    let text = server.vcctl(&["status", &id]).ok();
    assert_eq!(
        text.field("User"),
        format!("alice (1 authorized key: {ALICE_FINGERPRINT})")
    );
    // The same, as the vcds:ClusterSpec property says it.
    let xml = server.vcctl(&["status", &id, "--xml"]).ok();
    assert!(
        xml.stdout.contains(&format!(
            "fingerprint=\"{ALICE_FINGERPRINT}\">{ALICE_KEY}</vc:authorizedKey>"
        )),
        "{}",
        xml.describe()
    );

    // Only the key: the default user stays; initialize takes --ssh-key too.
    let id2 = server.vcctl(&["create"]).ok().last_line();
    server
        .vcctl(&["initialize", &id2, &small_cluster(), "--ssh-key", &key])
        .ok();
    let status = server.vcctl(&["status", &id2, "--json"]).ok().json();
    assert_eq!(status["login"]["user"], "vcds");
    assert_eq!(status["login"]["authorized_keys"][0]["key"], ALICE_KEY);
    // Without a key, a login without keys.
    let plain = server.vcctl(&["deploy", &small_cluster()]).ok().last_line();
    assert_eq!(
        server.vcctl(&["status", &plain]).ok().field("User"),
        "vcds (no authorized key)"
    );
}

#[test]
fn ssh_keys_that_are_not_one_public_key_are_refused_before_anything_is_sent() {
    let server = Server::plain();
    let dir = server.dir.path();
    let private = dir.join("id_ed25519");
    std::fs::write(
        &private,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    let two = dir.join("authorized_keys");
    std::fs::write(&two, format!("{ALICE_KEY}\n{ALICE_KEY}\n")).unwrap();
    let junk = dir.join("junk.pub");
    std::fs::write(&junk, "ssh-ed25519 not-base64!\n").unwrap();
    let cases = [
        (private.display().to_string(), "private key"),
        (two.display().to_string(), "2 lines"),
        (junk.display().to_string(), "base64"),
        (dir.join("missing.pub").display().to_string(), "cannot read"),
    ];
    for (file, says) in &cases {
        let refused = server
            .vcctl(&["deploy", &small_cluster(), "--ssh-key", file])
            .code(64);
        assert!(
            refused.stderr.contains(file) && refused.stderr.contains(says),
            "{}",
            refused.describe()
        );
    }
    let bad_user = server
        .vcctl(&["deploy", &small_cluster(), "--user", "root"])
        .code(64);
    assert!(
        bad_user.stderr.contains("--user root"),
        "{}",
        bad_user.describe()
    );
    // Nothing was created.
    let list = server.vcctl(&["list", "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
}

#[test]
fn ssh_without_access_says_why() {
    let server = Server::plain();
    let id = server.vcctl(&["create"]).ok().last_line();
    let early = server.vcctl(&["ssh", &id, "--", "hostname"]).code(3);
    assert!(
        early.stderr.contains("not built yet"),
        "{}",
        early.describe()
    );
    server.vcctl(&["initialize", &id, &small_cluster()]).ok();
    server.vcctl(&["run", &id]).ok();
    wait_phase(&server, &id, "ready");
    // The simulated site gives no vcds:Access: no Login line, and ssh says so.
    let status = server.vcctl(&["status", &id]).ok();
    assert!(!status.stdout.contains("Login "), "{}", status.describe());
    for args in [
        vec!["ssh", &id, "--", "hostname"],
        vec!["ssh", &id, "--print"],
        vec!["ssh", &id, "--node", "compute-0-0", "--", "true"],
    ] {
        let ssh = server.vcctl(&args).code(3);
        assert!(
            ssh.stderr.contains("gives no SSH access"),
            "{}",
            ssh.describe()
        );
        assert!(ssh.stdout.is_empty(), "{}", ssh.describe());
    }
    let json = server.vcctl(&["ssh", &id, "--json"]).code(3).json();
    assert_eq!(json["error"]["exit"], 3);
    // Usage: the command after --, no --xml, -i names a file.
    server.vcctl(&["ssh", &id, "hostname"]).code(64);
    server.vcctl(&["ssh", &id, "--xml"]).code(64);
    server
        .vcctl(&["ssh", &id, "-i", "/nonexistent/key", "--", "true"])
        .code(64);
    let unknown = server
        .vcctl(&["ssh", "no-such-system", "--", "true"])
        .code(1);
    assert!(unknown.stderr.contains("fault"), "{}", unknown.describe());

    let help = vcctl(&["ssh", "--help"]).ok();
    for needed in [
        "Examples",
        "vcctl ssh SYSTEM -- hostname",
        "known_hosts",
        "--node",
    ] {
        assert!(help.stdout.contains(needed), "{needed}:\n{}", help.stdout);
    }
    let deploy_help = vcctl(&["deploy", "--help"]).ok();
    assert!(
        deploy_help.stdout.contains("--ssh-key"),
        "{}",
        deploy_help.stdout
    );
}
