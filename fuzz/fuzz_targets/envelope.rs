//! The SOAP edge on arbitrary bytes: hardened XML parse under the service's limits, then the
//! envelope and WS-Addressing checks, then what `http::soap` reads from an envelope. It must
//! never panic, and what it accepts must respect the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcds_xml::{Edge, Limits, QName};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(doc) = vcds_xml::parse_bytes(data, &limits) else {
        return;
    };
    // Accepted documents respect the depth limit (walked without recursion).
    let mut depth = 0usize;
    for edge in vcds_xml::edges(doc.root()) {
        match edge {
            Edge::Open(_) => {
                depth += 1;
                assert!(depth <= limits.max_depth + 2, "depth {depth} accepted");
            }
            Edge::Close(_) => depth -= 1,
        }
    }
    let _ = vcds_soap::message_id(&doc);
    let resource_id = QName::new("urn:vcds:2026", "ResourceId");
    for http_action in [None, Some("urn:fuzz")] {
        if let Ok(env) =
            vcds_soap::Envelope::parse(&doc, std::slice::from_ref(&resource_id), http_action)
        {
            let _ = env.header(&resource_id).and_then(|h| h.text());
            if let Some(body) = env.body {
                let _ = QName::of(body).clark();
                let _ = vcds_xml::serialize_element(body);
            }
        }
    }
});
