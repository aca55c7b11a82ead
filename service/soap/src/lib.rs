//! SOAP envelopes in and out, WS-Addressing 1.0 and WS-BaseFaults.
//!
//! [`Envelope::parse`] reads an already limit-checked document (see `vcds_xml::parse`), checks
//! the SOAP and WS-Addressing rules that apply to every message, and hands back the body and the
//! addressing headers. [`write_reply`] and [`Fault::render`] produce the answer in the request's
//! SOAP version. Nothing here does I/O.

mod envelope;
mod fault;
pub mod ns;
mod version;

pub use envelope::{message_id, Addressing, Envelope};
pub use fault::{BaseFault, Fault, FaultCode, ReceivedFault};
pub use version::SoapVersion;

/// The WS-Addressing headers of a reply.
#[derive(Debug, Clone, Copy)]
pub struct ReplyHeaders<'a> {
    pub action: &'a str,
    pub relates_to: Option<&'a str>,
}

/// Writes a whole reply envelope around `body` (already serialized XML, possibly empty).
pub fn write_reply(version: SoapVersion, headers: ReplyHeaders<'_>, body: &str) -> String {
    let mut h = format!(
        "<wsa:Action>{}</wsa:Action>",
        vcds_xml::escape(headers.action)
    );
    if let Some(id) = headers.relates_to {
        h.push_str(&format!(
            "<wsa:RelatesTo>{}</wsa:RelatesTo>",
            vcds_xml::escape(id)
        ));
    }
    h.push_str(&format!("<wsa:To>{}</wsa:To>", ns::WSA_ANONYMOUS));
    envelope(version, &h, body)
}

/// Writes a request envelope (used for Notify to consumers and by tests): `extra_headers` are
/// serialized header blocks, e.g. a consumer EPR's reference parameters.
pub fn write_request(
    version: SoapVersion,
    action: &str,
    to: &str,
    extra_headers: &str,
    body: &str,
) -> String {
    let h = format!(
        "<wsa:Action>{}</wsa:Action><wsa:To>{}</wsa:To>{extra_headers}",
        vcds_xml::escape(action),
        vcds_xml::escape(to)
    );
    envelope(version, &h, body)
}

/// An envelope with `s` bound to the version's namespace and `wsa` to WS-Addressing 1.0.
fn envelope(version: SoapVersion, headers: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"{}\" xmlns:wsa=\"{}\"><s:Header>{headers}</s:Header><s:Body>{body}</s:Body></s:Envelope>",
        version.envelope_ns(),
        ns::WSA
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_requests_are_addressed_envelopes() {
        let r = write_reply(
            SoapVersion::V12,
            ReplyHeaders {
                action: "urn:a&b",
                relates_to: Some("urn:m"),
            },
            "<x/>",
        );
        let doc = vcds_xml::parse(&r, &vcds_xml::Limits::default()).unwrap();
        let e = Envelope::parse(&doc, &[], None).unwrap();
        assert_eq!(e.version, SoapVersion::V12);
        assert_eq!(e.addressing.action, "urn:a&b");
        assert!(doc
            .descendants()
            .any(|n| n.has_tag_name((ns::WSA, "RelatesTo")) && n.text() == Some("urn:m")));
        let q = write_request(
            SoapVersion::V11,
            "urn:n",
            "http://127.0.0.1:1/c",
            "<k:K xmlns:k=\"urn:k\"/>",
            "",
        );
        let doc = vcds_xml::parse(&q, &vcds_xml::Limits::default()).unwrap();
        let e = Envelope::parse(&doc, &[], None).unwrap();
        assert_eq!(e.addressing.to.as_deref(), Some("http://127.0.0.1:1/c"));
        assert!(e.header(&vcds_xml::QName::new("urn:k", "K")).is_some());
    }
}
