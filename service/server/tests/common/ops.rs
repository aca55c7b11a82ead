//! Every SOAP operation of the three endpoints with a well-formed request body, for tests that
//! must cover all of them (the authorization matrix, forged reference parameters).

use vcds_wsrf::actions;

use super::{RL, RP, WSNT};

pub const API: &str = "http://www.gridforum.org/cddlm/deployapi/2005/02";
pub const CDL: &str = "http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0";
pub const VCDS: &str = "urn:vcds:2026";
pub const XPATH: &str = "http://www.w3.org/TR/1999/REC-xpath-19991116";

/// One operation: endpoint (`Portal`, `System`, `Subscription`), request action and body.
#[derive(Debug, Clone)]
pub struct Op {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub action: String,
    pub body: String,
}

fn op(name: &'static str, endpoint: &'static str, action: &str, body: String) -> Op {
    Op {
        name,
        endpoint,
        action: action.to_string(),
        body,
    }
}

/// The examples/small-cluster.cdl descriptor as an inline body (an element, no XML declaration).
pub fn small_cluster() -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/small-cluster.cdl"
    ))
    .expect("examples/small-cluster.cdl");
    match text.strip_prefix("<?xml version=\"1.0\"?>") {
        Some(rest) => rest.trim_start().to_string(),
        None => text,
    }
}

pub fn initialize_inline(cdl: &str) -> String {
    format!("<api:initializeRequest xmlns:api=\"{API}\"><api:descriptor api:language=\"{CDL}\"><api:body>{cdl}</api:body></api:descriptor></api:initializeRequest>")
}

pub fn add_file_b64(name: &str, base64: &str) -> String {
    format!("<api:addFileRequest xmlns:api=\"{API}\"><api:name>{name}</api:name><api:mimetype>application/xml</api:mimetype><api:data>{base64}</api:data></api:addFileRequest>")
}

pub fn subscribe_body(consumer: &str, topic: Option<&str>) -> String {
    let filter = topic.map_or(String::new(), |t| {
        format!("<wsnt:Filter><wsnt:TopicExpression Dialect=\"http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple\" xmlns:api=\"{API}\" xmlns:v=\"{VCDS}\">{t}</wsnt:TopicExpression></wsnt:Filter>")
    });
    format!("<wsnt:Subscribe xmlns:wsnt=\"{WSNT}\" xmlns:wsa=\"{}\"><wsnt:ConsumerReference><wsa:Address>{consumer}</wsa:Address></wsnt:ConsumerReference>{filter}</wsnt:Subscribe>", super::WSA)
}

pub fn create_body() -> String {
    format!("<api:createRequest xmlns:api=\"{API}\"/>")
}

fn rp_reads(endpoint: &'static str, property: &str) -> Vec<Op> {
    vec![
        op(
            "GetResourcePropertyDocument",
            endpoint,
            actions::GET_RP_DOCUMENT,
            format!("<rp:GetResourcePropertyDocument xmlns:rp=\"{RP}\"/>"),
        ),
        op(
            "GetResourceProperty",
            endpoint,
            actions::GET_RP,
            format!("<rp:GetResourceProperty xmlns:rp=\"{RP}\" xmlns:rl=\"{RL}\">{property}</rp:GetResourceProperty>"),
        ),
        op(
            "GetMultipleResourceProperties",
            endpoint,
            actions::GET_MULTIPLE_RP,
            format!("<rp:GetMultipleResourceProperties xmlns:rp=\"{RP}\" xmlns:rl=\"{RL}\"><rp:ResourceProperty>{property}</rp:ResourceProperty></rp:GetMultipleResourceProperties>"),
        ),
        op(
            "QueryResourceProperties",
            endpoint,
            actions::QUERY_RP,
            format!("<rp:QueryResourceProperties xmlns:rp=\"{RP}\"><rp:QueryExpression Dialect=\"{XPATH}\">/*</rp:QueryExpression></rp:QueryResourceProperties>"),
        ),
    ]
}

/// Every operation of the System endpoint. `consumer` is where a Subscribe would deliver.
pub fn system_ops(consumer: &str) -> Vec<Op> {
    let system = |name| {
        format!("http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/{name}Request")
    };
    let mut ops = rp_reads("System", "rl:CurrentTime");
    ops.extend([
        op(
            "SetResourceProperties",
            "System",
            actions::SET_RP,
            format!("<rp:SetResourceProperties xmlns:rp=\"{RP}\"><rp:Update><v:Description xmlns:v=\"{VCDS}\">taken over</v:Description></rp:Update></rp:SetResourceProperties>"),
        ),
        op(
            "SetTerminationTime",
            "System",
            actions::SET_TERMINATION_TIME,
            format!("<rl:SetTerminationTime xmlns:rl=\"{RL}\"><rl:RequestedLifetimeDuration>PT1H</rl:RequestedLifetimeDuration></rl:SetTerminationTime>"),
        ),
        op(
            "Subscribe",
            "System",
            actions::SUBSCRIBE,
            subscribe_body(consumer, None),
        ),
        op(
            "Initialize",
            "System",
            &system("Initialize"),
            initialize_inline(&small_cluster()),
        ),
        op(
            "AddFile",
            "System",
            &system("AddFile"),
            add_file_b64("extra.cdl", "PHgvPg=="),
        ),
        op("Run", "System", &system("Run"), format!("<api:runRequest xmlns:api=\"{API}\"/>")),
        op(
            "Terminate",
            "System",
            &system("Terminate"),
            format!("<api:terminateRequest xmlns:api=\"{API}\"><api:reason>mine now</api:reason></api:terminateRequest>"),
        ),
        op("Ping", "System", &system("Ping"), format!("<api:pingRequest xmlns:api=\"{API}\"/>")),
        op(
            "Resolve",
            "System",
            &system("Resolve"),
            format!("<api:resolveRequest xmlns:api=\"{API}\"><api:path>/small</api:path></api:resolveRequest>"),
        ),
        op(
            "Suspend",
            "System",
            "urn:vcds:2026/SystemEPR/SuspendRequest",
            format!("<v:suspendRequest xmlns:v=\"{VCDS}\"/>"),
        ),
        op(
            "Resume",
            "System",
            "urn:vcds:2026/SystemEPR/ResumeRequest",
            format!("<v:resumeRequest xmlns:v=\"{VCDS}\"/>"),
        ),
        op(
            "Destroy",
            "System",
            actions::DESTROY,
            format!("<rl:Destroy xmlns:rl=\"{RL}\"/>"),
        ),
    ]);
    ops
}

/// Every operation of the Subscription endpoint.
pub fn subscription_ops() -> Vec<Op> {
    let mut ops = rp_reads("Subscription", "rl:TerminationTime");
    ops.extend([
        op(
            "Renew",
            "Subscription",
            actions::RENEW,
            format!("<wsnt:Renew xmlns:wsnt=\"{WSNT}\"><wsnt:TerminationTime>PT1H</wsnt:TerminationTime></wsnt:Renew>"),
        ),
        op(
            "Unsubscribe",
            "Subscription",
            actions::UNSUBSCRIBE,
            format!("<wsnt:Unsubscribe xmlns:wsnt=\"{WSNT}\"/>"),
        ),
        op(
            "Destroy",
            "Subscription",
            actions::DESTROY,
            format!("<rl:Destroy xmlns:rl=\"{RL}\"/>"),
        ),
    ]);
    ops
}

/// LookupSystem of `id` at the Portal.
pub fn lookup_system(id: &str) -> Op {
    op(
        "LookupSystem",
        "Portal",
        vcds_api::ops::LOOKUP_SYSTEM,
        format!("<api:lookupSystemRequest xmlns:api=\"{API}\"><api:ResourceId>{id}</api:ResourceId></api:lookupSystemRequest>"),
    )
}
