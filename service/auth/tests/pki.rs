//! Against a real test PKI from scripts/make-test-ca.sh: proxy chain identities, and mutual TLS
//! through a real actix-web server on 127.0.0.1 with a real openssl client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVersion};
use openssl::x509::X509;
use vcds_auth::gridmap::{Admins, GridMap};
use vcds_auth::tls::TrustRoots;
use vcds_auth::x509::{chain_identity, ChainError};
use vcds_auth::{on_connect, server_acceptor, Authorizer, Dn, Principal};

const ALICE: &str = "/C=US/O=Grid/OU=vcds-test/CN=Alice";

/// The PKI, made once per test binary.
fn pki() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-test-ca.sh");
        let status = Command::new("bash")
            .arg(script)
            .arg(dir.path())
            .status()
            .expect("run make-test-ca.sh");
        assert!(status.success(), "make-test-ca.sh failed");
        dir
    })
    .path()
}

fn file(name: &str) -> PathBuf {
    pki().join(name)
}

/// The credentials a server must refuse in the handshake (`None`: no certificate) and the TLS 1.2
/// alert for each, from the PKI's `refused` file.
fn refused() -> Vec<(Option<String>, String)> {
    let text = std::fs::read_to_string(file("refused")).expect("refused");
    let rows = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    rows.filter_map(|l| l.split_once(' '))
        .map(|(name, alert)| {
            (
                (name != "-").then(|| name.to_string()),
                format!("alert {}", alert.trim()),
            )
        })
        .collect()
}

/// The certificates of a PEM file (leaf first), as DER.
fn chain(name: &str) -> Vec<Vec<u8>> {
    let pem = std::fs::read(file(name)).expect("read pem");
    X509::stack_from_pem(&pem)
        .expect("parse pem")
        .iter()
        .map(|cert| cert.to_der().expect("der"))
        .collect()
}

#[test]
fn end_entity_and_proxies_share_one_identity() {
    let alice = Dn::parse(ALICE).expect("dn");
    for (name, depth) in [
        ("alice.pem", 0),
        ("alice-proxy.pem", 1),
        ("alice-proxy2.pem", 2),
        ("alice-pathlen0.pem", 1),
        ("alice-legacy.pem", 1),
    ] {
        let identity = chain_identity(&chain(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(identity.subject, alice, "{name}");
        assert_eq!(identity.proxy_depth, depth, "{name}");
        assert!(!identity.limited, "{name}");
    }
    let limited = chain_identity(&chain("alice-limited.pem")).expect("limited proxy");
    assert_eq!((limited.subject, limited.proxy_depth), (alice, 1));
    assert!(limited.limited);
}

#[test]
fn proxy_rules_are_enforced() {
    let proxy = chain("alice-proxy.pem").remove(0);
    let toodeep = chain("alice-toodeep.pem");
    assert_eq!(
        chain_identity(&toodeep),
        Err(ChainError::PathLength { index: 1, limit: 0 })
    );
    assert_eq!(
        chain_identity(std::slice::from_ref(&proxy)),
        Err(ChainError::MissingIssuer { index: 0 })
    );
    let bob = chain("bob.pem").remove(0);
    assert_eq!(
        chain_identity(&[proxy.clone(), bob]),
        Err(ChainError::IssuerMismatch { index: 0 })
    );
    // Same DN as alice, different key: the proxy's signature must not verify.
    let rogue = chain("rogue.pem").remove(0);
    assert_eq!(
        chain_identity(&[proxy, rogue]),
        Err(ChainError::Signature { index: 0 })
    );
}

/// Hostile input: every truncation and many single-bit flips of a proxy chain yield a result or
/// an error, never a panic.
#[test]
fn mangled_chains_do_not_panic() {
    let good = chain("alice-proxy.pem");
    let leaf = &good[0];
    for end in 0..leaf.len() {
        let mut mangled = good.clone();
        mangled[0].truncate(end);
        assert!(chain_identity(&mangled).is_err(), "truncated at {end}");
    }
    for bit in (0..leaf.len() * 8).step_by(7) {
        let mut mangled = good.clone();
        mangled[0][bit / 8] ^= 1 << (bit % 8);
        let _ = chain_identity(&mangled);
    }
}

#[test]
fn trust_roots_accept_plain_and_hashed_names() {
    let hashed = TrustRoots::load(&file("trust")).expect("hashed dir");
    assert_eq!((hashed.cas.len(), hashed.crl_files.len()), (1, 1));
    let plain = tempfile::tempdir().expect("tempdir");
    for name in ["ca.pem", "ca.crl.pem"] {
        std::fs::copy(file(name), plain.path().join(name)).expect("copy");
    }
    let loaded = TrustRoots::load(plain.path()).expect("plain dir");
    assert_eq!((loaded.cas.len(), loaded.crl_files.len()), (1, 1));
    server_acceptor(&file("server.pem"), &file("server.key"), plain.path()).expect("acceptor");
}

/// GET /whoami over TLS with an optional client credential file (cert, key and chain in one PEM,
/// as a Globus proxy file). `Err` is a TLS or I/O failure. TLS 1.2 is used on request because
/// there the server's refusal arrives as an alert inside the handshake, so the client can tell
/// why; with TLS 1.3 it arrives after the client's handshake is done, often as a reset.
fn whoami(
    addr: SocketAddr,
    credential: Option<&str>,
    version: SslVersion,
) -> Result<(u16, String), String> {
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    builder
        .set_max_proto_version(Some(version))
        .map_err(|e| e.to_string())?;
    builder
        .set_ca_file(file("ca.pem"))
        .map_err(|e| e.to_string())?;
    if let Some(name) = credential {
        builder
            .set_certificate_chain_file(file(name))
            .map_err(|e| e.to_string())?;
        let key = file(name).with_extension("key");
        builder
            .set_private_key_file(key, SslFiletype::PEM)
            .map_err(|e| e.to_string())?;
    }
    let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut tls = builder
        .build()
        .connect("localhost", stream)
        .map_err(|e| e.to_string())?;
    tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    tls.read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP response: {response:?}"))?;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok((status, body.to_string()))
}

/// One `openssl s_client` GET /whoami as alice, saving (`-sess_out`) or resuming (`-sess_in`) the
/// TLS session in `session`; returns what s_client printed.
fn s_client_whoami(addr: SocketAddr, session_flag: &str, session: &Path) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-ign_eof", "-connect", &addr.to_string()])
        .args(["-servername", "localhost", "-CAfile"])
        .arg(file("ca.pem"))
        .arg("-cert")
        .arg(file("alice.pem"))
        .arg("-key")
        .arg(file("alice.key"))
        .arg(session_flag)
        .arg(session)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("write request");
    let output = child.wait_with_output().expect("s_client output");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[actix_rt::test]
async fn mutual_tls_maps_certificates_to_principals() {
    let authorizer = Arc::new(Authorizer::new(
        GridMap::load(&file("grid-mapfile")).expect("grid-mapfile"),
        Admins::load(&file("admins")).expect("admins"),
    ));
    let acceptor =
        server_acceptor(&file("server.pem"), &file("server.key"), &file("trust")).expect("tls");
    let server = HttpServer::new(|| {
        App::new().route(
            "/whoami",
            web::get().to(|who: Principal| async move {
                let limited = if who.limited_proxy { " (limited)" } else { "" };
                format!("{} admin={} {}{limited}", who.account, who.admin, who.dn)
            }),
        )
    })
    .on_connect(on_connect(authorizer))
    .workers(1)
    .bind_openssl("127.0.0.1:0", acceptor)
    .expect("bind");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);

    let call = |credential: Option<&'static str>| {
        actix_rt::task::spawn_blocking(move || whoami(addr, credential, SslVersion::TLS1_3))
    };
    let ok =
        |account: &str, admin: bool, dn: &str| Ok((200, format!("{account} admin={admin} {dn}")));

    let alice = ok("alice", false, ALICE);
    assert_eq!(call(Some("alice.pem")).await.expect("join"), alice);
    assert_eq!(call(Some("alice-proxy.pem")).await.expect("join"), alice);
    assert_eq!(call(Some("alice-proxy2.pem")).await.expect("join"), alice);
    assert_eq!(
        call(Some("alice-limited.pem")).await.expect("join"),
        ok("alice", false, &format!("{ALICE} (limited)"))
    );
    assert_eq!(
        call(Some("bob.pem")).await.expect("join"),
        ok("bob", false, "/C=US/O=Grid/OU=vcds-test/CN=Bob")
    );
    assert_eq!(
        call(Some("admin.pem")).await.expect("join"),
        ok("vcdsadmin", true, "/C=US/O=Grid/OU=vcds-test/CN=Admin")
    );
    let (status, body) = call(Some("mallory.pem"))
        .await
        .expect("join")
        .expect("http");
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("CN=Mallory is not in the grid-mapfile"),
        "{body}"
    );

    // Refused in the handshake, with the alerts make-test-ca.sh lists.
    for (credential, alert) in refused() {
        for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
            let name = credential.clone();
            let result =
                actix_rt::task::spawn_blocking(move || whoami(addr, name.as_deref(), version))
                    .await
                    .expect("join");
            match result {
                Err(e) if version == SslVersion::TLS1_3 || e.contains(&alert) => {}
                other => {
                    panic!("{credential:?} over {version:?}: expected {alert:?}, got {other:?}")
                }
            }
        }
    }
    // A resumed session has no verified chain; the identity must come from the session's
    // certificates (the other CLI client also shows interoperability).
    let transcripts = actix_rt::task::spawn_blocking(move || {
        let session = pki().join("work/alice.session");
        let first = s_client_whoami(addr, "-sess_out", &session);
        (first, s_client_whoami(addr, "-sess_in", &session))
    })
    .await
    .expect("join");
    for transcript in [&transcripts.0, &transcripts.1] {
        assert!(
            transcript.contains(&format!("alice admin=false {ALICE}")),
            "{transcript}"
        );
    }
    assert!(
        transcripts.1.contains("Reused, TLSv1.3"),
        "{}",
        transcripts.1
    );
    handle.stop(true).await;
}
