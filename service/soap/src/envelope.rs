//! Reading an envelope: its SOAP version, Header blocks (mustUnderstand), Body and the
//! WS-Addressing headers; a message that breaks the rules becomes a [`Fault`].

use roxmltree::{Document, Node};
use vcds_xml::QName;

use crate::fault::{BaseFault, Fault, FaultCode};
use crate::ns;
use crate::version::SoapVersion;

/// The WS-Addressing 1.0 message addressing properties of a request.
#[derive(Debug, Clone, Default)]
pub struct Addressing {
    pub action: String,
    pub message_id: Option<String>,
    pub to: Option<String>,
}

/// The request's `wsa:MessageID`, read without any other check, so that a fault about the
/// envelope itself can still name the message it answers.
pub fn message_id(doc: &Document<'_>) -> Option<String> {
    let root = doc.root_element();
    let header = root
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == "Header")?;
    let id = header
        .children()
        .find(|c| c.has_tag_name((ns::WSA, "MessageID")))?;
    id.text().map(|t| t.trim().to_string())
}

/// A parsed, checked request envelope. Borrows the document it was read from.
#[derive(Debug)]
pub struct Envelope<'a, 'input> {
    pub version: SoapVersion,
    pub headers: Vec<Node<'a, 'input>>,
    /// The first element child of the Body (absent when the Body is empty).
    pub body: Option<Node<'a, 'input>>,
    pub addressing: Addressing,
}

const WSA_HEADERS: [&str; 7] = [
    "Action",
    "MessageID",
    "To",
    "ReplyTo",
    "FaultTo",
    "From",
    "RelatesTo",
];

impl<'a, 'input> Envelope<'a, 'input> {
    /// Checks the envelope and its addressing headers.
    ///
    /// `understood` lists the header blocks the endpoint processes besides WS-Addressing (e.g.
    /// the resource-id reference parameter); `http_action` is the SOAPAction header (1.1) or the
    /// Content-Type action parameter (1.2), compared with `wsa:Action` when present.
    pub fn parse(
        doc: &'a Document<'input>,
        understood: &[QName],
        http_action: Option<&str>,
    ) -> Result<Self, Fault> {
        let root = doc.root_element();
        let version = match (root.tag_name().name(), root.tag_name().namespace()) {
            ("Envelope", Some(uri)) => SoapVersion::from_ns(uri).ok_or_else(|| {
                Fault::new(
                    FaultCode::VersionMismatch,
                    format!("unsupported SOAP envelope namespace {uri}; use SOAP 1.1 or 1.2"),
                )
            })?,
            _ => {
                return Err(Fault::new(
                    FaultCode::Sender,
                    "the document is not a SOAP Envelope".to_string(),
                ))
            }
        };
        let env_ns = version.envelope_ns();
        let mut header = None;
        let mut body = None;
        for child in root.children().filter(Node::is_element) {
            let in_env = child.tag_name().namespace() == Some(env_ns);
            match (
                child.tag_name().name(),
                in_env,
                header.is_some(),
                body.is_some(),
            ) {
                ("Header", true, false, false) => header = Some(child),
                ("Body", true, _, false) => body = Some(child),
                _ => {
                    return Err(Fault::new(
                        FaultCode::Sender,
                        format!(
                            "unexpected element {} in the SOAP Envelope",
                            QName::of(child)
                        ),
                    ))
                }
            }
        }
        let body = body.ok_or_else(|| {
            Fault::new(
                FaultCode::Sender,
                "the SOAP Envelope has no Body".to_string(),
            )
        })?;
        let headers: Vec<Node<'a, 'input>> = header
            .map(|h| h.children().filter(Node::is_element).collect())
            .unwrap_or_default();
        check_must_understand(version, &headers, understood)?;
        let addressing = read_addressing(&headers, http_action)?;
        Ok(Envelope {
            version,
            headers,
            body: body.children().find(Node::is_element),
            addressing,
        })
    }

    /// The first header block with this name.
    pub fn header(&self, name: &QName) -> Option<Node<'a, 'input>> {
        self.headers.iter().copied().find(|h| name.matches(*h))
    }
}

fn is_true(version: SoapVersion, v: &str) -> bool {
    match version {
        SoapVersion::V11 => v.trim() == "1",
        SoapVersion::V12 => matches!(v.trim(), "1" | "true"),
    }
}

/// A header block is for us unless its role/actor names someone else.
fn targets_us(version: SoapVersion, h: Node<'_, '_>) -> bool {
    let env = version.envelope_ns();
    let role = match version {
        SoapVersion::V11 => h.attribute((env, "actor")),
        SoapVersion::V12 => h.attribute((env, "role")),
    };
    match role {
        None => true,
        Some(r) => matches!(
            r.trim(),
            "http://schemas.xmlsoap.org/soap/actor/next"
                | "http://www.w3.org/2003/05/soap-envelope/role/next"
                | "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"
        ),
    }
}

fn check_must_understand(
    version: SoapVersion,
    headers: &[Node<'_, '_>],
    understood: &[QName],
) -> Result<(), Fault> {
    let env = version.envelope_ns();
    let not_understood: Vec<QName> = headers
        .iter()
        .filter(|h| {
            h.attribute((env, "mustUnderstand"))
                .is_some_and(|v| is_true(version, v))
        })
        .filter(|h| targets_us(version, **h))
        .filter(|h| {
            let wsa = h.tag_name().namespace() == Some(ns::WSA)
                && WSA_HEADERS.contains(&h.tag_name().name());
            !wsa && !understood.iter().any(|q| q.matches(**h))
        })
        .map(|h| QName::of(*h))
        .collect();
    if not_understood.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = not_understood.iter().map(QName::clark).collect();
    let mut fault = Fault::new(
        FaultCode::MustUnderstand,
        format!(
            "header block(s) marked mustUnderstand are not understood: {}",
            names.join(", ")
        ),
    );
    fault.not_understood = not_understood;
    Err(fault)
}

fn wsa_fault(
    subcode: &str,
    subsubcode: Option<&str>,
    reason: String,
    problem_header: Option<&str>,
) -> Fault {
    let mut f = Fault::new(FaultCode::Sender, reason);
    f.action = ns::WSA_FAULT_ACTION;
    f.subcodes.push(QName::new(ns::WSA, subcode));
    if let Some(s) = subsubcode {
        f.subcodes.push(QName::new(ns::WSA, s));
    }
    let mut extra = String::new();
    if let Some(h) = problem_header {
        extra = format!(
            "<wsa:ProblemHeaderQName xmlns:wsa=\"{}\">wsa:{h}</wsa:ProblemHeaderQName>",
            ns::WSA
        );
    }
    f.detail = BaseFault::generic().with_extra(extra);
    f
}

fn read_addressing(
    headers: &[Node<'_, '_>],
    http_action: Option<&str>,
) -> Result<Addressing, Fault> {
    let one = |local: &str| -> Result<Option<Node<'_, '_>>, Fault> {
        let mut found = headers
            .iter()
            .copied()
            .filter(|h| h.tag_name().namespace() == Some(ns::WSA) && h.tag_name().name() == local);
        let first = found.next();
        if found.next().is_some() {
            return Err(wsa_fault(
                "InvalidAddressingHeader",
                Some("InvalidCardinality"),
                format!("more than one wsa:{local} header"),
                Some(local),
            ));
        }
        Ok(first)
    };
    let text = |n: Node<'_, '_>| n.text().unwrap_or("").trim().to_string();
    let action = match one("Action")? {
        Some(a) if !text(a).is_empty() => text(a),
        _ => {
            return Err(wsa_fault(
                "MessageAddressingHeaderRequired",
                None,
                "the wsa:Action header is required".to_string(),
                Some("Action"),
            ))
        }
    };
    if let Some(h) = http_action
        .map(|a| a.trim().trim_matches('"'))
        .filter(|a| !a.is_empty())
    {
        if h != action {
            return Err(wsa_fault(
                "InvalidAddressingHeader",
                Some("ActionMismatch"),
                format!("the HTTP action {h} differs from wsa:Action {action}"),
                Some("Action"),
            ));
        }
    }
    for epr_header in ["ReplyTo", "FaultTo"] {
        if let Some(epr) = one(epr_header)? {
            let address = epr
                .children()
                .find(|c| c.has_tag_name((ns::WSA, "Address")))
                .map(text)
                .ok_or_else(|| {
                    wsa_fault(
                        "InvalidAddressingHeader",
                        Some("MissingAddressInEPR"),
                        format!("wsa:{epr_header} has no wsa:Address"),
                        Some(epr_header),
                    )
                })?;
            if address != ns::WSA_ANONYMOUS && address != ns::WSA_NONE {
                return Err(wsa_fault(
                    "InvalidAddressingHeader",
                    Some("OnlyAnonymousAddressSupported"),
                    format!(
                        "wsa:{epr_header} {address}: replies go back on the HTTP response only"
                    ),
                    Some(epr_header),
                ));
            }
        }
    }
    Ok(Addressing {
        action,
        message_id: one("MessageID")?.map(text),
        to: one("To")?.map(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(version: SoapVersion, headers: &str, body: &str) -> String {
        format!(
            r#"<e:Envelope xmlns:e="{}" xmlns:wsa="{}"><e:Header>{headers}</e:Header><e:Body>{body}</e:Body></e:Envelope>"#,
            version.envelope_ns(),
            ns::WSA
        )
    }

    fn parse_err(text: &str, http_action: Option<&str>) -> Fault {
        let doc = vcds_xml::parse(text, &vcds_xml::Limits::default()).unwrap();
        Envelope::parse(&doc, &[], http_action).unwrap_err()
    }

    #[test]
    fn reads_addressing_and_body() {
        let text = env(
            SoapVersion::V12,
            "<wsa:Action>urn:a</wsa:Action><wsa:MessageID>urn:uuid:1</wsa:MessageID><wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>",
            "<x:Op xmlns:x=\"urn:x\"/>",
        );
        let doc = vcds_xml::parse(&text, &vcds_xml::Limits::default()).unwrap();
        let e = Envelope::parse(&doc, &[], Some("\"urn:a\"")).unwrap();
        assert_eq!(e.version, SoapVersion::V12);
        assert_eq!(e.addressing.action, "urn:a");
        assert_eq!(e.addressing.message_id.as_deref(), Some("urn:uuid:1"));
        assert!(QName::new("urn:x", "Op").matches(e.body.unwrap()));
    }

    #[test]
    fn addressing_faults() {
        let f = parse_err(&env(SoapVersion::V11, "", "<a/>"), None);
        assert_eq!(f.subcodes[0].local, "MessageAddressingHeaderRequired");
        let f = parse_err(
            &env(SoapVersion::V11, "<wsa:Action>urn:a</wsa:Action>", "<a/>"),
            Some("urn:b"),
        );
        assert_eq!(f.subcodes[1].local, "ActionMismatch");
        let f = parse_err(
            &env(
                SoapVersion::V11,
                "<wsa:Action>urn:a</wsa:Action><wsa:Action>urn:a</wsa:Action>",
                "",
            ),
            None,
        );
        assert_eq!(f.subcodes[1].local, "InvalidCardinality");
        let f = parse_err(
            &env(SoapVersion::V11, "<wsa:Action>urn:a</wsa:Action><wsa:ReplyTo><wsa:Address>http://127.0.0.1:9/x</wsa:Address></wsa:ReplyTo>", ""),
            None,
        );
        assert_eq!(f.subcodes[1].local, "OnlyAnonymousAddressSupported");
    }

    #[test]
    fn must_understand_by_version_and_role() {
        let h =
            r#"<x:Secret xmlns:x="urn:x" e:mustUnderstand="true"/><wsa:Action>urn:a</wsa:Action>"#;
        let f = parse_err(&env(SoapVersion::V12, h, ""), None);
        assert_eq!(f.code, FaultCode::MustUnderstand);
        assert_eq!(f.not_understood, vec![QName::new("urn:x", "Secret")]);
        // "true" is not a SOAP 1.1 mustUnderstand value; a header for another role is not ours.
        let text = env(SoapVersion::V11, h, "");
        let doc = vcds_xml::parse(&text, &vcds_xml::Limits::default()).unwrap();
        assert!(Envelope::parse(&doc, &[], None).is_ok());
        let other = r#"<x:S xmlns:x="urn:x" e:mustUnderstand="1" e:role="urn:someone"/><wsa:Action>urn:a</wsa:Action>"#;
        let text = env(SoapVersion::V12, other, "");
        let doc = vcds_xml::parse(&text, &vcds_xml::Limits::default()).unwrap();
        assert!(Envelope::parse(&doc, &[], None).is_ok());
        let understood = env(SoapVersion::V12, h, "");
        let doc = vcds_xml::parse(&understood, &vcds_xml::Limits::default()).unwrap();
        assert!(Envelope::parse(&doc, &[QName::new("urn:x", "Secret")], None).is_ok());
    }

    #[test]
    fn version_mismatch_and_structure() {
        let f = parse_err(
            r#"<e:Envelope xmlns:e="urn:soap-0.9"><e:Body/></e:Envelope>"#,
            None,
        );
        assert_eq!(f.code, FaultCode::VersionMismatch);
        let f = parse_err(
            &format!(
                r#"<e:Envelope xmlns:e="{}"><e:Header/></e:Envelope>"#,
                ns::SOAP11
            ),
            None,
        );
        assert!(f.reason.contains("no Body"), "{}", f.reason);
        let f = parse_err("<Envelope/>", None);
        assert_eq!(f.code, FaultCode::Sender);
    }
}
