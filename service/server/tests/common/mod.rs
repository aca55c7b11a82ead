//! Helpers shared by the server's integration tests: namespaces, parsed replies and a
//! notification consumer on 127.0.0.1.

// Each test binary uses a different part of this module.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use actix_web::test;

pub mod ops;
pub mod secure;

pub const WSA: &str = "http://www.w3.org/2005/08/addressing";
pub const S11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const S12: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const RP: &str = "http://docs.oasis-open.org/wsrf/rp-2";
pub const RL: &str = "http://docs.oasis-open.org/wsrf/rl-2";
pub const WSNT: &str = "http://docs.oasis-open.org/wsn/b-2";

/// A SOAP envelope (`ns`: S11 or S12) with wsa:Action, a MessageID and, for a System or
/// Subscription, the `vcds:ResourceId` reference parameter.
pub fn envelope(ns: &str, action: &str, resource: Option<&str>, body: &str) -> String {
    let rid = resource
        .map(|id| format!("<v:ResourceId xmlns:v=\"urn:vcds:2026\" wsa:IsReferenceParameter=\"true\">{id}</v:ResourceId>"))
        .unwrap_or_default();
    format!(
        "<s:Envelope xmlns:s=\"{ns}\" xmlns:wsa=\"{WSA}\"><s:Header><wsa:Action>{action}</wsa:Action><wsa:MessageID>urn:uuid:m1</wsa:MessageID>{rid}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    )
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub text: String,
}

impl Reply {
    pub fn doc(&self) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    pub fn ok(self) -> Reply {
        assert_eq!(self.status, 200, "{}", self.text);
        self
    }

    /// The fault element's local name (e.g. `LifecycleFault`).
    pub fn fault_detail(&self) -> String {
        assert_eq!(self.status, 500, "not a fault: {}", self.text);
        let doc = self.doc();
        let detail = doc
            .descendants()
            .find(|n| matches!(n.tag_name().name(), "detail" | "Detail"))
            .unwrap_or_else(|| panic!("not a fault: {}", self.text));
        detail
            .first_element_child()
            .map(|e| e.tag_name().name().to_string())
            .unwrap_or_default()
    }

    pub fn text_of(&self, local: &str) -> Option<String> {
        self.doc()
            .descendants()
            .find(|n| n.tag_name().name() == local)
            .and_then(|n| n.text().map(str::to_string))
    }

    pub fn has(&self, local: &str) -> bool {
        self.doc()
            .descendants()
            .any(|n| n.tag_name().name() == local)
    }
}

/// A consumer on 127.0.0.1 that hands every received HTTP body to the test.
pub fn consumer() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}/consumer", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            // Read headers, then Content-Length bytes of body.
            let body = loop {
                let n = match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body.to_string());
                    }
                }
            };
            let _ = s.write_all(
                b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            if let Some(b) = body {
                if tx.send(b).is_err() {
                    return;
                }
            }
        }
    });
    (address, rx)
}

/// The in-process app, as the helpers take it.
pub trait Svc:
    actix_web::dev::Service<
    actix_http::Request,
    Response = actix_web::dev::ServiceResponse,
    Error = actix_web::Error,
>
{
}
impl<S> Svc for S where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >
{
}

/// An admin route's answer, asked from loopback (where plain mode lets admins in).
pub async fn admin(app: &impl Svc, req: test::TestRequest) -> Reply {
    let peer: std::net::SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let resp = test::call_service(app, req.peer_addr(peer).to_request()).await;
    let status = resp.status().as_u16();
    let bytes = test::read_body(resp).await;
    Reply {
        status,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A test that cannot run here says so, past the harness's output capture.
pub fn skip(reason: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIP: {reason}");
}

/// POSTs `body` to a SOAP endpoint of the in-process app.
pub async fn post(app: &impl Svc, endpoint: &str, content_type: &str, body: String) -> Reply {
    let req = test::TestRequest::post()
        .uri(&format!("/wsrf/services/{endpoint}"))
        .insert_header(("Content-Type", content_type))
        .set_payload(body)
        .to_request();
    let resp = test::call_service(app, req).await;
    let status = resp.status().as_u16();
    let bytes = test::read_body(resp).await;
    Reply {
        status,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A SOAP 1.1 request of `action` to `endpoint`, addressed to `resource` when given.
pub async fn call(
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

/// Creates a System through the Portal; its ResourceId.
pub async fn create(app: &impl Svc) -> String {
    let r = call(
        app,
        "Portal",
        vcds_api::ops::CREATE,
        None,
        &ops::create_body(),
    )
    .await
    .ok();
    r.text_of("ResourceId").expect("ResourceId")
}

/// The in-process app over `$state` (a `web::Data<AppState>`) with every route.
#[macro_export]
macro_rules! app {
    ($state:expr) => {
        actix_web::test::init_service(actix_web::App::new().configure(|c| $state.configure(c)))
            .await
    };
}
