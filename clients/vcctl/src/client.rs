//! One SOAP 1.1 request per call, over a blocking HTTP(S) agent; replies are untrusted input and
//! pass through `vcds_xml`'s hardened parser and `vcds_soap`'s envelope checks.

use std::time::{Duration, Instant};

use roxmltree::Node;
use ureq::tls::TlsConfig;
use vcds_protocol::{Endpoint, Operation, PREFIXES};
use vcds_soap::{Envelope, ReceivedFault, SoapVersion};
use vcds_xml::{serialize_element, Limits, QName};

use crate::error::Error;

/// A whole reply; a status document of a large cluster is a few MiB.
const MAX_REPLY_BYTES: u64 = 32 * 1024 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

fn reply_limits() -> Limits {
    Limits {
        max_bytes: usize::try_from(MAX_REPLY_BYTES).unwrap_or(usize::MAX),
        max_nodes: 4_000_000,
        ..Limits::default()
    }
}

/// The resource a request is for.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Portal,
    System(&'a str),
}

pub struct Client {
    agent: ureq::Agent,
    /// `http(s)://host:port`, no trailing slash.
    base: String,
    /// `--xml`: print every reply body as received.
    echo_xml: bool,
}

impl Client {
    pub fn new(base: &str, tls: TlsConfig, echo_xml: bool) -> Client {
        let agent = ureq::Agent::config_builder()
            // SOAP faults come with HTTP 500 (and 400): their bodies are the answer.
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .tls_config(tls)
            .user_agent(concat!("vcctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client {
            agent,
            base: base.trim_end_matches('/').to_string(),
            echo_xml,
        }
    }

    /// A reply that is SOAP but does not say what it must.
    pub fn bad_reply(&self, reason: &str) -> Error {
        Error::Transport {
            url: self.base.clone(),
            reason: reason.to_string(),
        }
    }

    /// Sends `op` with `inner` (serialized XML, any prefix of [`PREFIXES`]) as the content of
    /// its request element, and hands the reply's body element to `read`.
    pub fn call<T>(
        &self,
        op: Operation,
        target: Target<'_>,
        inner: &str,
        read: impl FnOnce(Node<'_, '_>) -> T,
    ) -> Result<T, Error> {
        let spec = op.spec();
        let (endpoint, id) = match target {
            Target::Portal => (Endpoint::Portal, None),
            Target::System(id) => (Endpoint::System, Some(id)),
        };
        let epr = endpoint.epr(&self.base, id);
        let headers = format!(
            "<wsa:MessageID>urn:uuid:{}</wsa:MessageID>{}",
            uuid::Uuid::new_v4(),
            epr.header_blocks()
        );
        let envelope = vcds_soap::write_request(
            SoapVersion::V11,
            spec.action,
            &epr.address,
            &headers,
            &request_body(op, inner),
        );
        let transport = |reason: String| self.bad_reply(&reason);
        let started = Instant::now();
        tracing::debug!(operation = spec.name, url = %epr.address, "request");
        let mut response = self
            .agent
            .post(&epr.address)
            .header("Content-Type", SoapVersion::V11.content_type(spec.action))
            .header("SOAPAction", format!("\"{}\"", spec.action))
            .send(envelope.as_bytes())
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
            .map_err(|e| transport(e.to_string()))?;
        tracing::debug!(
            operation = spec.name,
            status,
            bytes = bytes.len(),
            ms = started.elapsed().as_millis(),
            "reply"
        );
        read_reply(op, status, &bytes, self.echo_xml, read).map_err(|bad| match bad {
            Bad::Fault(f) => Error::Fault(f),
            Bad::Reply(reason) => transport(reason),
        })
    }
}

/// The request element of `op` around `inner`, declaring every conventional prefix, since
/// `inner` and QName-valued text in it may use any of them.
fn request_body(op: Operation, inner: &str) -> String {
    let element = op.spec().request;
    let prefix = PREFIXES
        .iter()
        .find(|(_, uri)| *uri == element.ns)
        .map_or("", |(p, _)| p);
    let name = format!("{prefix}:{}", element.local);
    format!(
        "<{name}{}>{inner}</{name}>",
        vcds_protocol::prefix_declarations()
    )
}

/// What is wrong with a reply.
#[derive(Debug)]
enum Bad {
    Fault(ReceivedFault),
    Reply(String),
}

fn read_reply<T>(
    op: Operation,
    status: u16,
    bytes: &[u8],
    echo_xml: bool,
    read: impl FnOnce(Node<'_, '_>) -> T,
) -> Result<T, Bad> {
    let doc = vcds_xml::parse_bytes(bytes, &reply_limits()).map_err(|e| {
        Bad::Reply(if (200..300).contains(&status) {
            format!("the reply is not acceptable XML: {e}")
        } else {
            format!("HTTP {status} without a SOAP reply")
        })
    })?;
    let envelope = Envelope::parse(&doc, &[], None)
        .map_err(|f| Bad::Reply(format!("the reply is not a SOAP envelope: {}", f.reason)))?;
    let body = envelope
        .body
        .ok_or_else(|| Bad::Reply("the reply's SOAP Body is empty".to_string()))?;
    if body.has_tag_name((envelope.version.envelope_ns(), "Fault")) {
        return Err(Bad::Fault(ReceivedFault::read(envelope.version, body)));
    }
    let expected = op.spec().response;
    if !expected.matches(body) {
        return Err(Bad::Reply(format!(
            "{} answered with {} instead of {}",
            op.name(),
            QName::of(body),
            expected.qname()
        )));
    }
    if echo_xml {
        println!("{}", serialize_element(body));
    }
    Ok(read(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcds_protocol::ns;

    fn reply(body: &str) -> String {
        format!(
            r#"<s:Envelope xmlns:s="{}" xmlns:wsa="{}"><s:Header><wsa:Action>urn:x</wsa:Action></s:Header><s:Body>{body}</s:Body></s:Envelope>"#,
            ns::SOAP11,
            ns::WSA
        )
    }

    fn read(op: Operation, text: &str) -> Result<String, Bad> {
        read_reply(op, 200, text.as_bytes(), false, |n| {
            n.tag_name().name().to_string()
        })
    }

    #[test]
    fn request_bodies_bind_their_prefixes() {
        let body = request_body(Operation::Terminate, "<api:reason>r</api:reason>");
        let doc = vcds_xml::parse(&body, &Limits::default()).unwrap();
        assert!(doc
            .root_element()
            .has_tag_name((ns::API, "terminateRequest")));
        let body = request_body(Operation::Destroy, "");
        assert!(body.starts_with("<wsrf-rl:Destroy "), "{body}");
    }

    #[test]
    fn replies_are_checked() {
        let ok = reply(&format!(r#"<a:runResponse xmlns:a="{}"/>"#, ns::API));
        assert_eq!(read(Operation::Run, &ok).unwrap(), "runResponse");
        // The answer to another question is not an answer.
        assert!(
            matches!(read(Operation::Terminate, &ok), Err(Bad::Reply(r)) if r.contains("instead of"))
        );
        let bomb = format!(
            r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "x">]>{}"#,
            reply("")
        );
        assert!(matches!(read(Operation::Run, &bomb), Err(Bad::Reply(r)) if r.contains("DOCTYPE")));
        let deep = reply(&"<a>".repeat(10_000));
        assert!(matches!(read(Operation::Run, &deep), Err(Bad::Reply(_))));
        assert!(
            matches!(read(Operation::Run, &reply("")), Err(Bad::Reply(r)) if r.contains("empty"))
        );
        assert!(
            matches!(read(Operation::Run, "<html/>"), Err(Bad::Reply(r)) if r.contains("not a SOAP"))
        );
        let html = read_reply(Operation::Run, 404, b"<html><body>gone", false, |_| ());
        assert!(matches!(html, Err(Bad::Reply(r)) if r.contains("HTTP 404")));
    }

    #[test]
    fn faults_come_back_with_reason_and_code() {
        let f = vcds_soap::Fault::typed(
            vcds_soap::FaultCode::Sender,
            QName::new(ns::API, "LifecycleFault"),
            vcds_soap::ns::WSRF_FAULT_ACTION,
            "no".to_string(),
        )
        .with_code("wrong-state")
        .render(SoapVersion::V11, "", None);
        match read(Operation::Run, &f) {
            Err(Bad::Fault(f)) => {
                assert_eq!(f.reason, "no");
                assert_eq!(f.error_code.as_deref(), Some("wrong-state"));
            }
            other => panic!("{other:?}"),
        }
    }
}
