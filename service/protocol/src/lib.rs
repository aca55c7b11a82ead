//! The vcds wire contract as data, shared by the service and its clients: the namespaces, the
//! three endpoints, and per operation its endpoints, `wsa:Action` and request and response
//! elements (GGF CDDLM deployment API, WSRF 1.2, WS-BaseNotification 1.3, vcds extensions).
//!
//! The values are those of `wsdl/vcds.wsdl`; a test reads the WSDL and checks both agree.
//! Nothing here does I/O.

use vcds_wsrf::{actions, Epr};
use vcds_xml::{escape, QName};

/// Namespace URIs: those of the standards (from `vcds_soap::ns`) and those of CDDLM and vcds.
pub mod ns {
    pub use vcds_soap::ns::{
        SOAP11, SOAP12, WSA, WSNT, WSRF_BF, WSRF_R, WSRF_RL, WSRF_RP, WSTOP, XSI,
    };

    /// CDDLM deployment API messages and properties (`api:`).
    pub const API: &str = "http://www.gridforum.org/cddlm/deployapi/2005/02";
    /// The CDDLM WSDL's target namespace; its actions start with it.
    pub const API_WSDL: &str = "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl";
    /// CDDLM component model: `cmp:State`, lifecycle events.
    pub const CMP: &str = "http://www.gridforum.org/cddlm/components/2005/02";
    /// vcds's own properties, reference parameters, faults and operations.
    pub const VCDS: &str = "urn:vcds:2026";
    /// The virtual-cluster descriptor (`vc:cluster` in `vcds:ClusterSpec`).
    pub const VC: &str = "urn:vcds:2026:cdl";
    pub const MUWS1: &str = "http://docs.oasis-open.org/wsdm/muws1-2.xsd";
    pub const MUWS2: &str = "http://docs.oasis-open.org/wsdm/muws2-2.xsd";
    /// The descriptor language Initialize takes (`api:language`).
    pub const CDL: &str = "http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0";
}

/// The conventional prefix of each namespace, as the WSDL binds them.
pub const PREFIXES: &[(&str, &str)] = &[
    ("wsa", ns::WSA),
    ("api", ns::API),
    ("cmp", ns::CMP),
    ("vcds", ns::VCDS),
    ("vc", ns::VC),
    ("muws1", ns::MUWS1),
    ("wsrf-rp", ns::WSRF_RP),
    ("wsrf-rl", ns::WSRF_RL),
    ("wsrf-r", ns::WSRF_R),
    ("wsrf-bf", ns::WSRF_BF),
    ("wsnt", ns::WSNT),
];

/// `xmlns:` declarations of every prefix in [`PREFIXES`] (leading space), for an element
/// whose content uses them, QName-valued text included (e.g. `api:ActiveSystems`).
pub fn prefix_declarations() -> String {
    PREFIXES
        .iter()
        .map(|(p, uri)| format!(" xmlns:{p}=\"{uri}\""))
        .collect()
}

/// Initialize option: parse, resolve and validate the descriptor, store nothing.
pub const VALIDATE_ONLY: &str = "urn:vcds:2026:option:validate-only";

/// The reference parameter that names a System or Subscription in its EPR.
pub const RESOURCE_ID: Element = Element::new(ns::VCDS, "ResourceId");

/// A namespace-qualified element name known at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Element {
    pub ns: &'static str,
    pub local: &'static str,
}

impl Element {
    pub const fn new(ns: &'static str, local: &'static str) -> Self {
        Element { ns, local }
    }

    pub fn qname(self) -> QName {
        QName::new(self.ns, self.local)
    }

    pub fn matches(self, node: roxmltree::Node<'_, '_>) -> bool {
        node.has_tag_name((self.ns, self.local))
    }
}

/// The three endpoints of a vcds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// One per site; the endpoint is the resource.
    Portal,
    /// One System per virtual cluster, named by the [`RESOURCE_ID`] reference parameter.
    System,
    /// One per WS-N subscription, named by [`RESOURCE_ID`].
    Subscription,
}

impl Endpoint {
    pub const ALL: [Endpoint; 3] = [Endpoint::Portal, Endpoint::System, Endpoint::Subscription];

    /// The path under the service's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Portal => "/wsrf/services/Portal",
            Endpoint::System => "/wsrf/services/System",
            Endpoint::Subscription => "/wsrf/services/Subscription",
        }
    }

    /// The endpoint a path's last segment names (`/wsrf/services/{name}`).
    pub fn from_path(name: &str) -> Option<Endpoint> {
        Endpoint::ALL
            .into_iter()
            .find(|e| e.path().rsplit('/').next() == Some(name))
    }

    /// The WSDL port type the endpoint implements.
    pub fn port_type(self) -> &'static str {
        match self {
            Endpoint::Portal => "PortalEPR",
            Endpoint::System => "SystemEPR",
            Endpoint::Subscription => "SubscriptionEPR",
        }
    }

    /// The EPR of the endpoint at `base` (`http://host:port`, no trailing slash); `id` names
    /// a System or Subscription (the Portal has none).
    pub fn epr(self, base: &str, id: Option<&str>) -> Epr {
        let mut epr = Epr::new(format!("{base}{}", self.path()));
        if let Some(id) = id {
            epr.reference_parameters.push(format!(
                "<vcds:ResourceId xmlns:vcds=\"{}\">{}</vcds:ResourceId>",
                ns::VCDS,
                escape(id)
            ));
        }
        epr
    }
}

/// The CDDLM actions (the WSRF and WS-N ones are `vcds_wsrf::actions`).
pub mod cddlm_actions {
    pub const CREATE: &str =
        "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/PortalEPR/CreateRequest";
    pub const LOOKUP_SYSTEM: &str =
        "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/PortalEPR/LookupSystemRequest";
    pub const INITIALIZE: &str =
        "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/InitializeRequest";
    pub const ADD_FILE: &str =
        "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/AddFileRequest";
    pub const RUN: &str =
        "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/RunRequest";
    pub const TERMINATE: &str =
        "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/TerminateRequest";
    pub const PING: &str =
        "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/PingRequest";
    pub const RESOLVE: &str =
        "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/ResolveRequest";
    /// vcds extensions.
    pub const SUSPEND: &str = "urn:vcds:2026/SystemEPR/SuspendRequest";
    pub const RESUME: &str = "urn:vcds:2026/SystemEPR/ResumeRequest";
}

/// Every operation a vcds endpoint serves, named as in the WSDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    GetResourcePropertyDocument,
    GetResourceProperty,
    GetMultipleResourceProperties,
    QueryResourceProperties,
    SetResourceProperties,
    Destroy,
    SetTerminationTime,
    Subscribe,
    Renew,
    Unsubscribe,
    Create,
    LookupSystem,
    Initialize,
    AddFile,
    Run,
    Terminate,
    Ping,
    Resolve,
    Suspend,
    Resume,
}

/// One row of the operation table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The WSDL operation name.
    pub name: &'static str,
    /// The request's `wsa:Action` (and SOAPAction).
    pub action: &'static str,
    /// The request body element.
    pub request: Element,
    /// The response body element (same namespace as the request's).
    pub response: Element,
    /// Where the operation is served.
    pub endpoints: &'static [Endpoint],
}

const ANY: &[Endpoint] = &Endpoint::ALL;
const PORTAL: &[Endpoint] = &[Endpoint::Portal];
const SYSTEM: &[Endpoint] = &[Endpoint::System];
const SUBSCRIPTION: &[Endpoint] = &[Endpoint::Subscription];

const fn spec(
    name: &'static str,
    action: &'static str,
    ns: &'static str,
    request: &'static str,
    response: &'static str,
    endpoints: &'static [Endpoint],
) -> Spec {
    Spec {
        name,
        action,
        request: Element::new(ns, request),
        response: Element::new(ns, response),
        endpoints,
    }
}

impl Operation {
    pub const ALL: [Operation; 20] = [
        Operation::GetResourcePropertyDocument,
        Operation::GetResourceProperty,
        Operation::GetMultipleResourceProperties,
        Operation::QueryResourceProperties,
        Operation::SetResourceProperties,
        Operation::Destroy,
        Operation::SetTerminationTime,
        Operation::Subscribe,
        Operation::Renew,
        Operation::Unsubscribe,
        Operation::Create,
        Operation::LookupSystem,
        Operation::Initialize,
        Operation::AddFile,
        Operation::Run,
        Operation::Terminate,
        Operation::Ping,
        Operation::Resolve,
        Operation::Suspend,
        Operation::Resume,
    ];

    /// The operation's row of the table.
    pub fn spec(self) -> Spec {
        use cddlm_actions as c;
        use ns::{API, VCDS, WSNT, WSRF_RL, WSRF_RP};
        use Operation::*;
        match self {
            GetResourcePropertyDocument => spec(
                "GetResourcePropertyDocument",
                actions::GET_RP_DOCUMENT,
                WSRF_RP,
                "GetResourcePropertyDocument",
                "GetResourcePropertyDocumentResponse",
                ANY,
            ),
            GetResourceProperty => spec(
                "GetResourceProperty",
                actions::GET_RP,
                WSRF_RP,
                "GetResourceProperty",
                "GetResourcePropertyResponse",
                ANY,
            ),
            GetMultipleResourceProperties => spec(
                "GetMultipleResourceProperties",
                actions::GET_MULTIPLE_RP,
                WSRF_RP,
                "GetMultipleResourceProperties",
                "GetMultipleResourcePropertiesResponse",
                ANY,
            ),
            QueryResourceProperties => spec(
                "QueryResourceProperties",
                actions::QUERY_RP,
                WSRF_RP,
                "QueryResourceProperties",
                "QueryResourcePropertiesResponse",
                ANY,
            ),
            SetResourceProperties => spec(
                "SetResourceProperties",
                actions::SET_RP,
                WSRF_RP,
                "SetResourceProperties",
                "SetResourcePropertiesResponse",
                SYSTEM,
            ),
            Destroy => spec(
                "Destroy",
                actions::DESTROY,
                WSRF_RL,
                "Destroy",
                "DestroyResponse",
                &[Endpoint::System, Endpoint::Subscription],
            ),
            SetTerminationTime => spec(
                "SetTerminationTime",
                actions::SET_TERMINATION_TIME,
                WSRF_RL,
                "SetTerminationTime",
                "SetTerminationTimeResponse",
                SYSTEM,
            ),
            Subscribe => spec(
                "Subscribe",
                actions::SUBSCRIBE,
                WSNT,
                "Subscribe",
                "SubscribeResponse",
                &[Endpoint::Portal, Endpoint::System],
            ),
            Renew => spec(
                "Renew",
                actions::RENEW,
                WSNT,
                "Renew",
                "RenewResponse",
                SUBSCRIPTION,
            ),
            Unsubscribe => spec(
                "Unsubscribe",
                actions::UNSUBSCRIBE,
                WSNT,
                "Unsubscribe",
                "UnsubscribeResponse",
                SUBSCRIPTION,
            ),
            Create => spec(
                "Create",
                c::CREATE,
                API,
                "createRequest",
                "createResponse",
                PORTAL,
            ),
            LookupSystem => spec(
                "LookupSystem",
                c::LOOKUP_SYSTEM,
                API,
                "lookupSystemRequest",
                "lookupSystemResponse",
                PORTAL,
            ),
            Initialize => spec(
                "Initialize",
                c::INITIALIZE,
                API,
                "initializeRequest",
                "initializeResponse",
                SYSTEM,
            ),
            AddFile => spec(
                "AddFile",
                c::ADD_FILE,
                API,
                "addFileRequest",
                "addFileResponse",
                SYSTEM,
            ),
            Run => spec("Run", c::RUN, API, "runRequest", "runResponse", SYSTEM),
            Terminate => spec(
                "Terminate",
                c::TERMINATE,
                API,
                "terminateRequest",
                "terminateResponse",
                SYSTEM,
            ),
            Ping => spec("Ping", c::PING, API, "pingRequest", "pingResponse", SYSTEM),
            Resolve => spec(
                "Resolve",
                c::RESOLVE,
                API,
                "resolveRequest",
                "resolveResponse",
                SYSTEM,
            ),
            Suspend => spec(
                "Suspend",
                c::SUSPEND,
                VCDS,
                "suspendRequest",
                "suspendResponse",
                SYSTEM,
            ),
            Resume => spec(
                "Resume",
                c::RESUME,
                VCDS,
                "resumeRequest",
                "resumeResponse",
                SYSTEM,
            ),
        }
    }

    /// The WSDL operation name, for logs and messages.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The response's `wsa:Action` (`…Request` → `…Response`).
    pub fn response_action(self) -> String {
        actions::response_of(self.spec().action)
    }

    /// Whether the operation may change something (such requests are audited).
    pub fn mutates(self) -> bool {
        use Operation::*;
        !matches!(
            self,
            GetResourcePropertyDocument
                | GetResourceProperty
                | GetMultipleResourceProperties
                | QueryResourceProperties
                | LookupSystem
                | Ping
                | Resolve
        )
    }

    /// The operation `action` names at `endpoint`, if that endpoint serves it.
    pub fn route(endpoint: Endpoint, action: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| {
            let s = op.spec();
            s.action == action && s.endpoints.contains(&endpoint)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_endpoint_and_action() {
        assert_eq!(
            Operation::route(Endpoint::System, cddlm_actions::RUN),
            Some(Operation::Run)
        );
        assert_eq!(Operation::route(Endpoint::Portal, cddlm_actions::RUN), None);
        assert_eq!(
            Operation::route(Endpoint::Subscription, actions::DESTROY),
            Some(Operation::Destroy)
        );
        assert_eq!(Operation::route(Endpoint::Portal, "urn:nothing"), None);
        assert_eq!(Endpoint::from_path("System"), Some(Endpoint::System));
        assert_eq!(Endpoint::from_path("services"), None);
        assert!(!Operation::Ping.mutates() && Operation::Destroy.mutates());
    }

    #[test]
    fn actions_are_unique_and_end_in_request() {
        for (i, a) in Operation::ALL.iter().enumerate() {
            assert!(a.spec().action.ends_with("Request"), "{a:?}");
            assert!(a.response_action().ends_with("Response"), "{a:?}");
            for b in &Operation::ALL[i + 1..] {
                assert_ne!(a.spec().action, b.spec().action, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn system_eprs_carry_the_resource_id() {
        let epr = Endpoint::System.epr("http://127.0.0.1:8080", Some("a<b"));
        assert_eq!(epr.address, "http://127.0.0.1:8080/wsrf/services/System");
        assert_eq!(
            epr.reference_parameters,
            ["<vcds:ResourceId xmlns:vcds=\"urn:vcds:2026\">a&lt;b</vcds:ResourceId>"]
        );
        assert!(Endpoint::Portal
            .epr("http://h", None)
            .reference_parameters
            .is_empty());
    }
}
