//! SOAP envelopes in and out, WS-Addressing 1.0 and WS-BaseFaults.
//!
//! [`Envelope::parse`] reads an already limit-checked document (see `vcds_xml::parse`), checks
//! the SOAP and WS-Addressing rules that apply to every message, and hands back the body and the
//! addressing headers. [`write_reply`] and [`Fault::render`] produce the answer in the request's
//! SOAP version. Nothing here does I/O.

mod envelope;
mod fault;
pub mod ns;

pub use envelope::{message_id, Addressing, Envelope, SoapVersion};
pub use fault::{BaseFault, Fault, FaultCode};

/// The WS-Addressing headers of a reply.
#[derive(Debug, Clone, Copy)]
pub struct ReplyHeaders<'a> {
    pub action: &'a str,
    pub relates_to: Option<&'a str>,
}

/// Writes a whole reply envelope around `body` (already serialized XML, possibly empty).
pub fn write_reply(version: SoapVersion, headers: ReplyHeaders<'_>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 512);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"");
    out.push_str(version.envelope_ns());
    out.push_str("\" xmlns:wsa=\"");
    out.push_str(ns::WSA);
    out.push_str("\"><s:Header><wsa:Action>");
    out.push_str(&vcds_xml::escape(headers.action));
    out.push_str("</wsa:Action>");
    if let Some(id) = headers.relates_to {
        out.push_str("<wsa:RelatesTo>");
        out.push_str(&vcds_xml::escape(id));
        out.push_str("</wsa:RelatesTo>");
    }
    out.push_str("<wsa:To>");
    out.push_str(ns::WSA_ANONYMOUS);
    out.push_str("</wsa:To></s:Header><s:Body>");
    out.push_str(body);
    out.push_str("</s:Body></s:Envelope>");
    out
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
    let mut out = String::with_capacity(body.len() + 512);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"");
    out.push_str(version.envelope_ns());
    out.push_str("\" xmlns:wsa=\"");
    out.push_str(ns::WSA);
    out.push_str("\"><s:Header><wsa:Action>");
    out.push_str(&vcds_xml::escape(action));
    out.push_str("</wsa:Action><wsa:To>");
    out.push_str(&vcds_xml::escape(to));
    out.push_str("</wsa:To>");
    out.push_str(extra_headers);
    out.push_str("</s:Header><s:Body>");
    out.push_str(body);
    out.push_str("</s:Body></s:Envelope>");
    out
}
