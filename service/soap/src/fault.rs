//! SOAP faults with WS-BaseFaults detail: the ones we render and the ones a client reads.

use vcds_xml::{escape, QName};

use crate::ns;
use crate::version::SoapVersion;

/// The SOAP-level class of a fault; SOAP 1.1 calls Sender "Client" and Receiver "Server".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    VersionMismatch,
    MustUnderstand,
    Sender,
    Receiver,
}

/// The WS-BaseFaults detail every vcds fault carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseFault {
    /// The fault element, e.g. `wsrf-r:ResourceUnknownFault`; `wsrf-bf:BaseFault` when no
    /// specification names a more precise one.
    pub element: QName,
    /// Serialized elements of other namespaces, placed before `Timestamp` (BaseFaultType's
    /// leading `xsd:any`), e.g. `wsa:ProblemHeaderQName`.
    pub extra: String,
    /// A vcds error code (dialect [`ERROR_CODE_DIALECT`]), for programs that branch on causes.
    pub error_code: Option<String>,
    /// Serialized elements appended after the BaseFault fields by extending fault types.
    pub tail: String,
}

/// The ErrorCode dialect of vcds's own error codes.
pub const ERROR_CODE_DIALECT: &str = "urn:vcds:2026:error";

impl BaseFault {
    pub fn generic() -> Self {
        BaseFault::of(QName::new(ns::WSRF_BF, "BaseFault"))
    }

    pub fn of(element: QName) -> Self {
        BaseFault {
            element,
            extra: String::new(),
            error_code: None,
            tail: String::new(),
        }
    }

    pub fn with_extra(mut self, extra: String) -> Self {
        self.extra = extra;
        self
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.error_code = Some(code.to_string());
        self
    }

    pub fn with_tail(mut self, tail: String) -> Self {
        self.tail = tail;
        self
    }
}

/// A SOAP fault with its WS-Addressing action and WS-BaseFaults detail, independent of the
/// SOAP version until it is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: FaultCode,
    /// SOAP 1.2 Subcode chain (outermost first); SOAP 1.1 uses the first as its faultcode.
    pub subcodes: Vec<QName>,
    pub reason: String,
    pub action: &'static str,
    pub detail: BaseFault,
    /// Header blocks reported in SOAP 1.2 `env:NotUnderstood` headers.
    pub not_understood: Vec<QName>,
}

impl Fault {
    pub fn new(code: FaultCode, reason: String) -> Self {
        Fault {
            code,
            subcodes: Vec::new(),
            reason,
            action: ns::WSA_SOAP_FAULT_ACTION,
            detail: BaseFault::generic(),
            not_understood: Vec::new(),
        }
    }

    /// A fault named by WSRF, WS-N or CDDLM: `element` in the detail, `action` as wsa:Action.
    pub fn typed(code: FaultCode, element: QName, action: &'static str, reason: String) -> Self {
        Fault {
            action,
            detail: BaseFault::of(element),
            ..Fault::new(code, reason)
        }
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.detail.error_code = Some(code.to_string());
        self
    }

    /// HTTP status per binding: SOAP 1.1 (WS-I BP) always 500; SOAP 1.2 400 for Sender.
    pub fn http_status(&self, version: SoapVersion) -> u16 {
        match (version, self.code) {
            (SoapVersion::V12, FaultCode::Sender) => 400,
            _ => 500,
        }
    }

    /// The whole fault envelope. `originator` is the serialized content of the endpoint's EPR
    /// (wsa:Address and reference parameters).
    pub fn render(
        &self,
        version: SoapVersion,
        originator: &str,
        relates_to: Option<&str>,
    ) -> String {
        let env = version.envelope_ns();
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"");
        out.push_str(env);
        out.push_str("\" xmlns:wsa=\"");
        out.push_str(ns::WSA);
        out.push_str("\" xmlns:wsrf-bf=\"");
        out.push_str(ns::WSRF_BF);
        out.push_str("\"><s:Header><wsa:Action>");
        out.push_str(self.action);
        out.push_str("</wsa:Action>");
        if let Some(id) = relates_to {
            out.push_str("<wsa:RelatesTo>");
            out.push_str(&escape(id));
            out.push_str("</wsa:RelatesTo>");
        }
        if version == SoapVersion::V12 && self.code == FaultCode::VersionMismatch {
            // SOAP 1.2 part 1 §5.4.7: say which envelopes we do accept.
            out.push_str(&format!(
                "<s:Upgrade><s:SupportedEnvelope xmlns:u1=\"{}\" qname=\"u1:Envelope\"/><s:SupportedEnvelope xmlns:u2=\"{}\" qname=\"u2:Envelope\"/></s:Upgrade>",
                ns::SOAP12,
                ns::SOAP11
            ));
        }
        if version == SoapVersion::V12 {
            for q in &self.not_understood {
                out.push_str(&format!(
                    "<s:NotUnderstood xmlns:nu=\"{}\" qname=\"nu:{}\"/>",
                    escape(&q.ns),
                    escape(&q.local)
                ));
            }
        }
        out.push_str("</s:Header><s:Body><s:Fault>");
        let reason = escape(&self.reason);
        match version {
            SoapVersion::V11 => {
                let fixed = |v: &str| (v.to_string(), String::new());
                let (value, decl) = match (self.code, self.subcodes.first()) {
                    (FaultCode::VersionMismatch, _) => fixed("s:VersionMismatch"),
                    (FaultCode::MustUnderstand, _) => fixed("s:MustUnderstand"),
                    (_, Some(sub)) => (
                        format!("fc:{}", escape(&sub.local)),
                        format!(" xmlns:fc=\"{}\"", escape(&sub.ns)),
                    ),
                    (FaultCode::Sender, None) => fixed("s:Client"),
                    (FaultCode::Receiver, None) => fixed("s:Server"),
                };
                out.push_str(&format!("<faultcode{decl}>{value}</faultcode>"));
                out.push_str(&format!(
                    "<faultstring xml:lang=\"en\">{reason}</faultstring><detail>"
                ));
                self.write_detail(&mut out, originator);
                out.push_str("</detail>");
            }
            SoapVersion::V12 => {
                let value = match self.code {
                    FaultCode::VersionMismatch => "s:VersionMismatch",
                    FaultCode::MustUnderstand => "s:MustUnderstand",
                    FaultCode::Sender => "s:Sender",
                    FaultCode::Receiver => "s:Receiver",
                };
                out.push_str(&format!("<s:Code><s:Value>{value}</s:Value>"));
                for (i, sub) in self.subcodes.iter().enumerate() {
                    out.push_str(&format!(
                        "<s:Subcode><s:Value xmlns:sc{i}=\"{}\">sc{i}:{}</s:Value>",
                        escape(&sub.ns),
                        escape(&sub.local)
                    ));
                }
                out.push_str(&"</s:Subcode>".repeat(self.subcodes.len()));
                out.push_str(&format!("</s:Code><s:Reason><s:Text xml:lang=\"en\">{reason}</s:Text></s:Reason><s:Detail>"));
                self.write_detail(&mut out, originator);
                out.push_str("</s:Detail>");
            }
        }
        out.push_str("</s:Fault></s:Body></s:Envelope>");
        out
    }

    fn write_detail(&self, out: &mut String, originator: &str) {
        let d = &self.detail;
        out.push_str(&format!(
            "<f:{} xmlns:f=\"{}\">",
            escape(&d.element.local),
            escape(&d.element.ns)
        ));
        out.push_str(&d.extra);
        out.push_str("<wsrf-bf:Timestamp>");
        out.push_str(&chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        out.push_str("</wsrf-bf:Timestamp>");
        if !originator.is_empty() {
            out.push_str("<wsrf-bf:Originator>");
            out.push_str(originator);
            out.push_str("</wsrf-bf:Originator>");
        }
        if let Some(code) = &d.error_code {
            out.push_str(&format!(
                "<wsrf-bf:ErrorCode dialect=\"{ERROR_CODE_DIALECT}\">{}</wsrf-bf:ErrorCode>",
                escape(code)
            ));
        }
        out.push_str(&format!(
            "<wsrf-bf:Description xml:lang=\"en\">{}</wsrf-bf:Description>",
            escape(&self.reason)
        ));
        out.push_str(&d.tail);
        out.push_str(&format!("</f:{}>", escape(&d.element.local)));
    }
}

/// A fault as a client reads it from a reply: what to tell a person and what a program
/// branches on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFault {
    /// The SOAP 1.1 faultcode, or the innermost SOAP 1.2 Code/Subcode value, as written.
    pub code: String,
    pub reason: String,
    /// The detail's first element: the WS-BaseFaults fault, e.g. `wsrf-r:ResourceUnknownFault`.
    pub element: Option<QName>,
    /// The vcds error code (`wsrf-bf:ErrorCode` of dialect [`ERROR_CODE_DIALECT`]).
    pub error_code: Option<String>,
}

impl ReceivedFault {
    /// Reads `fault`, the `Fault` element in the Body of a `version` envelope.
    pub fn read(version: SoapVersion, fault: roxmltree::Node<'_, '_>) -> ReceivedFault {
        let env = version.envelope_ns();
        let text = |n: Option<roxmltree::Node<'_, '_>>| {
            n.and_then(|n| n.text()).unwrap_or("").trim().to_string()
        };
        let (code, reason, detail) = match version {
            SoapVersion::V11 => (
                text(child(fault, ("", "faultcode"))),
                text(child(fault, ("", "faultstring"))),
                child(fault, ("", "detail")),
            ),
            SoapVersion::V12 => {
                // The innermost Value of the Code/Subcode chain is the most precise.
                let mut value = None;
                let mut at = child(fault, (env, "Code"));
                while let Some(c) = at {
                    value = child(c, (env, "Value")).or(value);
                    at = child(c, (env, "Subcode"));
                }
                let reason = child(fault, (env, "Reason")).and_then(|r| child(r, (env, "Text")));
                (text(value), text(reason), child(fault, (env, "Detail")))
            }
        };
        let element = detail.and_then(|d| d.first_element_child());
        ReceivedFault {
            code,
            reason,
            element: element.map(QName::of),
            error_code: element
                .and_then(|e| child(e, (ns::WSRF_BF, "ErrorCode")))
                .map(|c| text(Some(c))),
        }
    }
}

/// The first child element of `node` named `(ns, local)`, `""` standing for no namespace.
fn child<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    (ns, local): (&str, &str),
) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| {
        c.is_element()
            && c.tag_name().name() == local
            && c.tag_name().namespace().unwrap_or("") == ns
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail_of(doc: &roxmltree::Document<'_>) -> (String, String) {
        let fault = doc
            .descendants()
            .find(|n| n.tag_name().name() == "Fault")
            .unwrap();
        let detail = fault
            .descendants()
            .find(|n| matches!(n.tag_name().name(), "detail" | "Detail"))
            .unwrap();
        let el = detail.first_element_child().unwrap();
        (
            el.tag_name().namespace().unwrap().to_string(),
            el.tag_name().name().to_string(),
        )
    }

    #[test]
    fn renders_both_versions_with_base_fault() {
        let f = Fault::typed(
            FaultCode::Sender,
            QName::new(ns::WSRF_R, "ResourceUnknownFault"),
            ns::WSRF_FAULT_ACTION,
            "resource x <is> unknown".to_string(),
        );
        for v in [SoapVersion::V11, SoapVersion::V12] {
            let text = f.render(
                v,
                "<wsa:Address>http://h/p</wsa:Address>",
                Some("urn:uuid:1"),
            );
            let doc = vcds_xml::parse(&text, &vcds_xml::Limits::default()).unwrap();
            assert_eq!(
                detail_of(&doc),
                (ns::WSRF_R.to_string(), "ResourceUnknownFault".to_string())
            );
            let ts = doc
                .descendants()
                .find(|n| n.has_tag_name((ns::WSRF_BF, "Timestamp")))
                .unwrap();
            assert!(chrono::DateTime::parse_from_rfc3339(ts.text().unwrap()).is_ok());
            assert!(doc
                .descendants()
                .any(|n| n.has_tag_name((ns::WSRF_BF, "Originator"))));
            assert!(text.contains("resource x &lt;is&gt; unknown"));
        }
        assert_eq!(f.http_status(SoapVersion::V11), 500);
        assert_eq!(f.http_status(SoapVersion::V12), 400);
    }

    #[test]
    fn clients_read_back_what_is_rendered() {
        let f = Fault::typed(
            FaultCode::Sender,
            QName::new(
                "http://www.gridforum.org/cddlm/deployapi/2005/02",
                "LifecycleFault",
            ),
            ns::WSRF_FAULT_ACTION,
            "Run needs an initialized System".to_string(),
        )
        .with_code("wrong-state");
        for (v, code) in [
            (SoapVersion::V11, "s:Client"),
            (SoapVersion::V12, "s:Sender"),
        ] {
            let text = f.render(v, "", None);
            let doc = vcds_xml::parse(&text, &vcds_xml::Limits::default()).unwrap();
            let fault = doc
                .descendants()
                .find(|n| n.has_tag_name((v.envelope_ns(), "Fault")))
                .unwrap();
            let got = ReceivedFault::read(v, fault);
            assert_eq!(got.code, code);
            assert_eq!(got.reason, f.reason);
            assert_eq!(got.element.as_ref(), Some(&f.detail.element));
            assert_eq!(got.error_code.as_deref(), Some("wrong-state"));
        }
    }

    #[test]
    fn version_mismatch_names_the_supported_envelopes_in_soap12() {
        let f = Fault::new(FaultCode::VersionMismatch, "old".to_string());
        let text = f.render(SoapVersion::V12, "", None);
        let doc = vcds_xml::parse(&text, &vcds_xml::Limits::default()).unwrap();
        let supported: Vec<QName> = doc
            .descendants()
            .filter(|n| n.has_tag_name((ns::SOAP12, "SupportedEnvelope")))
            .filter_map(|n| QName::resolve_in(n.attribute("qname")?, n))
            .collect();
        assert_eq!(
            supported,
            [
                QName::new(ns::SOAP12, "Envelope"),
                QName::new(ns::SOAP11, "Envelope")
            ]
        );
        assert!(!f.render(SoapVersion::V11, "", None).contains("Upgrade"));
    }

    #[test]
    fn wsa_subcodes_become_soap11_faultcode() {
        let mut f = Fault::new(FaultCode::Sender, "no action".to_string());
        f.subcodes
            .push(QName::new(ns::WSA, "MessageAddressingHeaderRequired"));
        let text = f.render(SoapVersion::V11, "", None);
        let doc = vcds_xml::parse(&text, &vcds_xml::Limits::default()).unwrap();
        let code = doc
            .descendants()
            .find(|n| n.has_tag_name("faultcode"))
            .unwrap();
        assert_eq!(
            QName::resolve_in(code.text().unwrap(), code),
            Some(QName::new(ns::WSA, "MessageAddressingHeaderRequired"))
        );
        let text = f.render(SoapVersion::V12, "", None);
        let doc = vcds_xml::parse(&text, &vcds_xml::Limits::default()).unwrap();
        let sub = doc
            .descendants()
            .filter(|n| n.has_tag_name((ns::SOAP12, "Value")))
            .nth(1)
            .unwrap();
        assert_eq!(
            QName::resolve_in(sub.text().unwrap(), sub),
            Some(QName::new(ns::WSA, "MessageAddressingHeaderRequired"))
        );
    }
}
