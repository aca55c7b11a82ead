//! WS-Addressing endpoint references.

use vcds_soap::ns;
use vcds_xml::{escape, serialize_element_with};

/// An endpoint reference: an address and serialized reference-parameter elements.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Epr {
    pub address: String,
    /// Each element serialized standalone (namespaces declared on it).
    pub reference_parameters: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EprError {
    #[error("the endpoint reference has no wsa:Address")]
    MissingAddress,
    #[error("the endpoint reference address {0:?} is not an absolute http(s) URI")]
    BadAddress(String),
}

/// An absolute http(s) URI with a host, without spaces or control characters: what the
/// notifier can deliver to. `http://`, `http:///x` and `http://:80/` are not.
fn absolute_http(address: &str) -> bool {
    let Some(rest) = address
        .strip_prefix("http://")
        .or_else(|| address.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    !host.is_empty()
        && !host.starts_with(':')
        && address
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control())
}

impl Epr {
    pub fn new(address: impl Into<String>) -> Self {
        Epr {
            address: address.into(),
            reference_parameters: Vec::new(),
        }
    }

    /// Reads an EPR-typed element (ConsumerReference, ReplyTo, …).
    pub fn parse(node: roxmltree::Node<'_, '_>) -> Result<Epr, EprError> {
        let address = node
            .children()
            .find(|c| c.has_tag_name((ns::WSA, "Address")))
            .and_then(|a| a.text())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or(EprError::MissingAddress)?;
        if !absolute_http(&address) {
            return Err(EprError::BadAddress(address));
        }
        let reference_parameters = node
            .children()
            .find(|c| c.has_tag_name((ns::WSA, "ReferenceParameters")))
            .map(|rp| {
                rp.children()
                    .filter(|c| c.is_element())
                    .map(|c| serialize_element_with(c, ""))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Epr {
            address,
            reference_parameters,
        })
    }

    /// The EPR's children (`wsa:Address`, `wsa:ReferenceParameters`), with `wsa` bound by the caller.
    pub fn children(&self) -> String {
        let mut out = format!("<wsa:Address>{}</wsa:Address>", escape(&self.address));
        if !self.reference_parameters.is_empty() {
            out.push_str("<wsa:ReferenceParameters>");
            self.reference_parameters
                .iter()
                .for_each(|p| out.push_str(p));
            out.push_str("</wsa:ReferenceParameters>");
        }
        out
    }

    /// The EPR as an element named `element` (a prefixed name whose prefix `decls` declares).
    pub fn element(&self, element: &str, decls: &str) -> String {
        format!(
            "<{element} xmlns:wsa=\"{}\"{decls}>{}</{element}>",
            ns::WSA,
            self.children()
        )
    }

    /// The reference parameters as SOAP header blocks, marked as WS-Addressing requires.
    pub fn header_blocks(&self) -> String {
        // Its own prefix, since the fragment may already bind `wsa`.
        let marker = format!(
            " xmlns:wsa-rp=\"{}\" wsa-rp:IsReferenceParameter=\"true\"",
            ns::WSA
        );
        self.reference_parameters
            .iter()
            .filter_map(|p| {
                let doc = vcds_xml::parse(p, &vcds_xml::Limits::default()).ok()?;
                Some(serialize_element_with(doc.root_element(), &marker))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_reference_parameters() {
        let text = format!(
            r#"<c xmlns:wsa="{}"><wsa:Address>http://127.0.0.1:9/c</wsa:Address><wsa:ReferenceParameters><k:Key xmlns:k="urn:k">7</k:Key></wsa:ReferenceParameters></c>"#,
            ns::WSA
        );
        let doc = vcds_xml::parse(&text, &vcds_xml::Limits::default()).unwrap();
        let epr = Epr::parse(doc.root_element()).unwrap();
        assert_eq!(epr.address, "http://127.0.0.1:9/c");
        let headers = epr.header_blocks();
        let wrapped = format!("<h>{headers}</h>");
        let doc = vcds_xml::parse(&wrapped, &vcds_xml::Limits::default()).unwrap();
        let key = doc.root_element().first_element_child().unwrap();
        assert!(key.has_tag_name(("urn:k", "Key")));
        assert_eq!(
            key.attribute((ns::WSA, "IsReferenceParameter")),
            Some("true")
        );
        assert_eq!(key.text(), Some("7"));
    }

    #[test]
    fn refuses_non_http_addresses() {
        let text = format!(
            r#"<c xmlns:wsa="{}"><wsa:Address>file:///etc/passwd</wsa:Address></c>"#,
            ns::WSA
        );
        let doc = vcds_xml::parse(&text, &vcds_xml::Limits::default()).unwrap();
        assert!(matches!(
            Epr::parse(doc.root_element()),
            Err(EprError::BadAddress(_))
        ));
    }

    #[test]
    fn addresses_need_a_host() {
        for bad in [
            "http://",
            "https:///x",
            "http://:80/x",
            "http://a b/",
            "http://host/\u{7}",
            "HTTP:/x",
        ] {
            assert!(!absolute_http(bad), "{bad:?}");
        }
        for good in [
            "http://127.0.0.1:9/c",
            "https://[::1]/x?y#z",
            "http://u:p@h",
        ] {
            assert!(absolute_http(good), "{good:?}");
        }
    }
}
