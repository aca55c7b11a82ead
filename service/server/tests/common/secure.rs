//! Secure mode for tests: a throw-away grid PKI from scripts/make-test-ca.sh, the real server
//! started with mutual TLS on 127.0.0.1, and a blocking openssl client that presents a chosen
//! credential (cert, key and chain in one PEM, as Globus proxy files are).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::web;
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVersion};
use vcds_api::security::{SecurityConfig, TlsFiles};
use vcds_server::{AppState, Config};

use super::ops::Op;
use super::{envelope, Reply, S11};

pub const ALICE: &str = "/C=US/O=Grid/OU=vcds-test/CN=Alice";

/// The PKI, made once per test binary.
pub fn pki() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-test-ca.sh");
        let status = Command::new("bash")
            .arg(script)
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run make-test-ca.sh");
        assert!(status.success(), "make-test-ca.sh failed");
        dir
    })
    .path()
}

pub fn file(name: &str) -> PathBuf {
    pki().join(name)
}

/// The credentials a server must refuse in the handshake (`None`: no certificate) and the TLS 1.2
/// alert for each, from the PKI's `refused` file.
pub fn refused() -> Vec<(Option<&'static str>, String)> {
    let text = std::fs::read_to_string(file("refused")).unwrap();
    let rows = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let leak = |name: &str| -> &'static str { Box::leak(name.to_string().into_boxed_str()) };
    rows.filter_map(|l| l.split_once(' '))
        .map(|(name, alert)| {
            (
                (name != "-").then(|| leak(name)),
                format!("alert {}", alert.trim()),
            )
        })
        .collect()
}

/// A server in secure mode on 127.0.0.1, its state, and where its audit log is.
pub struct Secure {
    pub state: web::Data<AppState>,
    pub addr: SocketAddr,
    pub handle: actix_web::dev::ServerHandle,
    pub audit: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Secure {
    /// Starts the server as `vcds serve --tls-cert … --admins …` would; `tweak` may change the
    /// configuration first. Call from an actix runtime.
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Secure {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.log");
        let mut config = Config::new(
            "127.0.0.1:0",
            format!("sqlite://{}", dir.path().join("vcds.db").display()),
        );
        // The simulated site must not move Systems while a test compares states.
        config.site = vcds_server::Site::Simulated(vcds_manager::sim::Simulated {
            step: Duration::from_secs(3600),
            ..Default::default()
        });
        config.workers = 2;
        config.security = SecurityConfig {
            tls: Some(TlsFiles {
                cert: file("server.pem"),
                key: file("server.key"),
                trust_roots: file("trust"),
                grid_mapfile: file("grid-mapfile"),
                admins: Some(file("admins")),
            }),
            audit_log: Some(audit.clone()),
            insecure_listen_any: false,
        };
        tweak(&mut config);
        let started = vcds_server::start(config).await.unwrap();
        let handle = started.server.handle();
        actix_rt::spawn(started.server);
        Secure {
            state: started.state,
            addr: started.addrs[0],
            handle,
            audit,
            dir,
        }
    }

    /// The audit log's records so far.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every stored resource, for "nothing changed" checks.
    pub fn snapshot(&self) -> Vec<vcds_model::Resource> {
        self.state
            .manager
            .registry()
            .select(|_| true)
            .iter()
            .map(|r| (**r).clone())
            .collect()
    }
}

/// One HTTPS request with an optional client credential file of the PKI; `Err` is a TLS or I/O
/// failure (no HTTP answer). With TLS 1.2 a refused certificate shows as a handshake alert; with
/// TLS 1.3 the refusal arrives after the client's handshake, as an alert or a reset on reading.
pub fn https(
    addr: SocketAddr,
    credential: Option<&str>,
    version: SslVersion,
    request: &[u8],
) -> Result<Reply, String> {
    parse_http(&https_raw(addr, credential, version, request)?)
}

/// Like [`https`], the whole answer as received (head and body).
pub fn https_raw(
    addr: SocketAddr,
    credential: Option<&str>,
    version: SslVersion,
    request: &[u8],
) -> Result<Vec<u8>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(|e| err(&e))?;
    builder
        .set_max_proto_version(Some(version))
        .map_err(|e| err(&e))?;
    builder.set_ca_file(file("ca.pem")).map_err(|e| err(&e))?;
    if let Some(name) = credential {
        builder
            .set_certificate_chain_file(file(name))
            .map_err(|e| err(&e))?;
        builder
            .set_private_key_file(file(name).with_extension("key"), SslFiletype::PEM)
            .map_err(|e| err(&e))?;
    }
    let stream = TcpStream::connect(addr).map_err(|e| err(&e))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| err(&e))?;
    let mut tls = builder
        .build()
        .connect("localhost", stream)
        .map_err(|e| err(&e))?;
    tls.write_all(request).map_err(|e| err(&e))?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response).map_err(|e| err(&e))?;
    Ok(response)
}

/// Status and body of a raw HTTP/1.1 answer (Content-Length framed, as vcds answers).
pub fn parse_http(answer: &[u8]) -> Result<Reply, String> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {:?}", &text[..text.len().min(200)]))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP status: {head:?}"))?;
    Ok(Reply {
        status,
        text: body.to_string(),
    })
}

/// An HTTP/1.1 request that closes the connection after the answer.
pub fn http_request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A SOAP 1.1 POST of `envelope` to an endpoint as `credential`, over TLS 1.3.
pub fn post_as(
    addr: SocketAddr,
    credential: &str,
    endpoint: &str,
    envelope: &str,
) -> Result<Reply, String> {
    let request = http_request(
        "POST",
        &format!("/wsrf/services/{endpoint}"),
        &[("Content-Type", "text/xml; charset=utf-8")],
        envelope.as_bytes(),
    );
    https(addr, Some(credential), SslVersion::TLS1_3, &request)
}

/// Runs `op` on `resource` as `credential`; panics if there is no HTTP answer.
pub fn call_as(addr: SocketAddr, credential: &str, op: &Op, resource: Option<&str>) -> Reply {
    let envelope = envelope(S11, &op.action, resource, &op.body);
    post_as(addr, credential, op.endpoint, &envelope)
        .unwrap_or_else(|e| panic!("{} as {credential}: {e}", op.name))
}

/// Creates a System as `credential`; its ResourceId.
pub fn create_as(addr: SocketAddr, credential: &str) -> String {
    let op = Op {
        name: "Create",
        endpoint: "Portal",
        action: vcds_api::ops::CREATE.to_string(),
        body: super::ops::create_body(),
    };
    call_as(addr, credential, &op, None)
        .ok()
        .text_of("ResourceId")
        .unwrap()
}
