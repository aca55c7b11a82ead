//! The operation table and `wsdl/vcds.wsdl` describe the same operations: every operation of a
//! vcds port type is in the table with the same actions and elements, and every row of the
//! table is in the WSDL.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeSet;

use roxmltree::{Document, Node};
use vcds_protocol::{Endpoint, Operation};
use vcds_xml::QName;

const WSDL: &str = "http://schemas.xmlsoap.org/wsdl/";
const WSAM: &str = "http://www.w3.org/2007/05/addressing/metadata";

/// Served at these endpoints without being advertised in the WSDL's port type.
const SERVED_NOT_ADVERTISED: &[(Operation, Endpoint)] = &[
    (
        Operation::GetMultipleResourceProperties,
        Endpoint::Subscription,
    ),
    (Operation::QueryResourceProperties, Endpoint::Subscription),
];

fn wsdl_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wsdl/vcds.wsdl");
    std::fs::read_to_string(path).unwrap()
}

fn children<'a, 'i>(node: Node<'a, 'i>, local: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children()
        .filter(move |c| c.has_tag_name((WSDL, local)))
}

/// The element QName of message `tns:NAME`'s part.
fn message_element(doc: &Document<'_>, message: &str) -> QName {
    let name = message.split_once(':').unwrap().1;
    let msg = children(doc.root_element(), "message")
        .find(|m| m.attribute("name") == Some(name))
        .unwrap_or_else(|| panic!("no wsdl:message {name}"));
    let part = children(msg, "part").next().unwrap();
    QName::resolve_in(part.attribute("element").unwrap(), part).unwrap()
}

/// (input action, output action, request element, response element) of a WSDL operation.
fn io_of(doc: &Document<'_>, op: Node<'_, '_>) -> (String, String, QName, QName) {
    let io = |local: &str| {
        let n = children(op, local).next().unwrap();
        (
            n.attribute((WSAM, "Action")).unwrap().to_string(),
            message_element(doc, n.attribute("message").unwrap()),
        )
    };
    let ((input, request), (output, response)) = (io("input"), io("output"));
    (input, output, request, response)
}

#[test]
fn table_and_wsdl_agree() {
    let text = wsdl_text();
    let doc = Document::parse(&text).unwrap();
    let mut advertised = BTreeSet::new();
    for port_type in children(doc.root_element(), "portType") {
        let pt_name = port_type.attribute("name").unwrap();
        let Some(endpoint) = Endpoint::ALL.into_iter().find(|e| e.port_type() == pt_name) else {
            // Implemented by subscribers, not by any vcds endpoint.
            assert_eq!(pt_name, "NotificationConsumer");
            continue;
        };
        for wsdl_op in children(port_type, "operation") {
            let name = wsdl_op.attribute("name").unwrap();
            let op = Operation::ALL
                .into_iter()
                .find(|o| o.name() == name)
                .unwrap_or_else(|| panic!("{pt_name}/{name} is not in the operation table"));
            let spec = op.spec();
            let (input, output, request, response) = io_of(&doc, wsdl_op);
            assert_eq!(input, spec.action, "{pt_name}/{name} action");
            assert_eq!(
                output,
                op.response_action(),
                "{pt_name}/{name} response action"
            );
            assert_eq!(request, spec.request.qname(), "{pt_name}/{name} request");
            assert_eq!(response, spec.response.qname(), "{pt_name}/{name} response");
            assert!(
                spec.endpoints.contains(&endpoint),
                "{pt_name}/{name}: the table does not serve it at {endpoint:?}"
            );
            assert_eq!(Operation::route(endpoint, &input), Some(op));
            advertised.insert(format!("{op:?}@{endpoint:?}"));
        }
    }
    for op in Operation::ALL {
        for endpoint in op.spec().endpoints {
            let known = SERVED_NOT_ADVERTISED.contains(&(op, *endpoint));
            assert_eq!(
                advertised.contains(&format!("{op:?}@{endpoint:?}")),
                !known,
                "{op:?} at {endpoint:?}: table and WSDL port type {} differ",
                endpoint.port_type()
            );
        }
    }
}

#[test]
fn soap_actions_of_the_bindings_are_the_table_actions() {
    let text = wsdl_text();
    let doc = Document::parse(&text).unwrap();
    let soap_ops = doc.descendants().filter(|n| {
        n.tag_name().name() == "operation"
            && n.tag_name()
                .namespace()
                .is_some_and(|ns| ns.contains("/wsdl/soap"))
    });
    let mut seen = 0;
    for soap_op in soap_ops {
        let binding_op = soap_op.parent().unwrap();
        let binding = binding_op.parent().unwrap().attribute("name").unwrap();
        if binding.starts_with("NotificationConsumer") {
            continue;
        }
        let name = binding_op.attribute("name").unwrap();
        let op = Operation::ALL
            .into_iter()
            .find(|o| o.name() == name)
            .unwrap();
        assert_eq!(
            soap_op.attribute("soapAction"),
            Some(op.spec().action),
            "{binding}/{name}"
        );
        seen += 1;
    }
    // 3 port types (7 + 16 + 5 operations) in 2 SOAP bindings each.
    assert_eq!(seen, 2 * (7 + 16 + 5));
}
