//! The resource types vcds serves, each with its resource-property document and topics.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use vcds_install::{Kickstarts, Reported};
use vcds_manager::monitoring::{ClusterMetrics, NodeMetrics};
use vcds_model::{Deployment, Lifecycle, Phase, Resource, State};
use vcds_placement::{Allocation, Role};
use vcds_soap::ns;
use vcds_wsrf::rp::{element_nil, element_text};
use vcds_wsrf::{
    query::XPATH_DIALECT, topic, xsd_datetime, Epr, PropertyDecl, RpDocument, RpSchema,
};
use vcds_xml::QName;

use crate::scope::Scope;
use crate::xml::Element;
use crate::Api;

pub use vcds_protocol::ns::CDL as CDL_LANGUAGE;
pub use vcds_protocol::ns::{API, API_WSDL, CMP, MUWS1, VCDS};
pub use vcds_protocol::Endpoint;

pub fn q(ns: &str, local: &str) -> QName {
    QName::new(ns, local)
}

/// The reference parameter that names a resource in its EPR.
pub static RESOURCE_ID: LazyLock<QName> = LazyLock::new(|| vcds_protocol::RESOURCE_ID.qname());
pub static CURRENT_TIME: LazyLock<QName> = LazyLock::new(|| q(ns::WSRF_RL, "CurrentTime"));
pub static TERMINATION_TIME: LazyLock<QName> = LazyLock::new(|| q(ns::WSRF_RL, "TerminationTime"));
pub static RESOURCE_TERMINATION: LazyLock<QName> =
    LazyLock::new(|| q(ns::WSRF_RL, "ResourceTermination"));
pub static LIFECYCLE_TRANSITION: LazyLock<QName> = LazyLock::new(|| q(CMP, "LifecycleTransition"));
pub static PHASE: LazyLock<QName> = LazyLock::new(|| q(VCDS, "Phase"));
/// Ganglia figures of each virtual node; a topic that fires when a node's state changes.
pub static NODE_METRICS: LazyLock<QName> = LazyLock::new(|| q(VCDS, "NodeMetrics"));
pub static SCHEDULER: LazyLock<QName> = LazyLock::new(|| q(VCDS, "Scheduler"));
pub static CLUSTER_METRICS: LazyLock<QName> = LazyLock::new(|| q(VCDS, "ClusterMetrics"));

/// The endpoint that serves a resource of this kind.
pub fn endpoint_of(state: &State) -> Endpoint {
    match state {
        State::Portal => Endpoint::Portal,
        State::System { .. } => Endpoint::System,
        State::Subscription(_) => Endpoint::Subscription,
    }
}

/// The resource property document schema of an endpoint's resources.
pub fn schema(endpoint: Endpoint) -> &'static RpSchema {
    match endpoint {
        Endpoint::Portal => &PORTAL_SCHEMA,
        Endpoint::System => &SYSTEM_SCHEMA,
        Endpoint::Subscription => &SUBSCRIPTION_SCHEMA,
    }
}

/// Topics a subscriber may choose: every property except the clock, plus termination.
pub fn topics(endpoint: Endpoint) -> &'static [QName] {
    match endpoint {
        Endpoint::Portal => &PORTAL_TOPICS,
        Endpoint::System => &SYSTEM_TOPICS,
        Endpoint::Subscription => &[],
    }
}

fn producer_props() -> Vec<PropertyDecl> {
    vec![
        PropertyDecl::read_only(q(ns::WSRF_RP, "QueryExpressionDialect")),
        PropertyDecl::read_only(q(ns::WSNT, "FixedTopicSet")),
        PropertyDecl::read_only(q(ns::WSNT, "TopicExpressionDialect")),
        PropertyDecl::read_only(q(ns::WSNT, "TopicExpression")),
    ]
}

static PORTAL_SCHEMA: LazyLock<RpSchema> = LazyLock::new(|| {
    let mut props = vec![
        PropertyDecl::read_only(q(MUWS1, "ResourceId")),
        PropertyDecl::read_only(q(MUWS1, "ManageabilityCapability")),
        PropertyDecl::read_only(q(API, "StaticPortalStatus")),
        PropertyDecl::read_only(q(API, "ActiveSystems")),
        PropertyDecl::read_only(CURRENT_TIME.clone()),
    ];
    props.extend(producer_props());
    RpSchema {
        root: q(VCDS, "PortalProperties"),
        props,
    }
});

static SYSTEM_SCHEMA: LazyLock<RpSchema> = LazyLock::new(|| {
    let mut props = vec![
        PropertyDecl::read_only(q(MUWS1, "ResourceId")),
        PropertyDecl::read_only(q(MUWS1, "ManageabilityCapability")),
        PropertyDecl::read_only(q(API, "CreatedTime")),
        PropertyDecl::read_only(q(VCDS, "SystemState")),
        PropertyDecl::read_only(q(API, "StartedTime")),
        PropertyDecl::read_only(q(API, "TerminatedTime")),
        PropertyDecl::read_only(PHASE.clone()),
        PropertyDecl::read_only(q(VCDS, "ClusterSpec")),
        PropertyDecl::read_only(q(VCDS, "Nodes")),
        PropertyDecl::read_only(q(VCDS, "Reservation")),
        PropertyDecl::read_only(q(VCDS, "Network")),
        PropertyDecl::read_only(q(VCDS, "Access")),
        PropertyDecl::read_only(NODE_METRICS.clone()),
        PropertyDecl::read_only(CLUSTER_METRICS.clone()),
        PropertyDecl::read_only(SCHEDULER.clone()),
        PropertyDecl::writable(q(VCDS, "Description"), 0, Some(1)),
        PropertyDecl::writable(q(VCDS, "Tag"), 0, None),
        PropertyDecl::read_only(CURRENT_TIME.clone()),
        PropertyDecl::read_only(TERMINATION_TIME.clone()),
    ];
    props.extend(producer_props());
    RpSchema {
        root: q(VCDS, "SystemProperties"),
        props,
    }
});

static SUBSCRIPTION_SCHEMA: LazyLock<RpSchema> = LazyLock::new(|| RpSchema {
    root: q(VCDS, "SubscriptionProperties"),
    props: vec![
        PropertyDecl::read_only(q(MUWS1, "ResourceId")),
        PropertyDecl::read_only(q(ns::WSNT, "ConsumerReference")),
        PropertyDecl::read_only(q(ns::WSNT, "Filter")),
        PropertyDecl::read_only(q(ns::WSNT, "CreationTime")),
        PropertyDecl::read_only(CURRENT_TIME.clone()),
        PropertyDecl::read_only(TERMINATION_TIME.clone()),
    ],
});

// Topics are the properties that change, plus termination; static properties would never fire.
static PORTAL_TOPICS: LazyLock<Vec<QName>> = LazyLock::new(|| vec![q(API, "ActiveSystems")]);
static SYSTEM_TOPICS: LazyLock<Vec<QName>> = LazyLock::new(|| {
    vec![
        LIFECYCLE_TRANSITION.clone(),
        PHASE.clone(),
        NODE_METRICS.clone(),
        SCHEDULER.clone(),
        q(VCDS, "Description"),
        q(VCDS, "Tag"),
        TERMINATION_TIME.clone(),
        RESOURCE_TERMINATION.clone(),
    ]
});

/// Builds EPRs for the address clients used to reach this server.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// `http://host:port`, no trailing slash.
    pub base: String,
}

impl Endpoints {
    pub fn epr(&self, endpoint: Endpoint, id: &str) -> Epr {
        endpoint.epr(&self.base, (endpoint != Endpoint::Portal).then_some(id))
    }

    pub fn of(&self, r: &Resource) -> Epr {
        self.epr(endpoint_of(&r.state), &r.id)
    }
}

/// An element of EPR type (`wsa:Address`, reference parameters) named `prefix:local`.
pub fn epr_element(prefix: &str, ns_uri: &str, local: &str, epr: &Epr) -> Element {
    Element::new(prefix, ns_uri, local)
        .declare("wsa", ns::WSA)
        .raw(&epr.children())
}

/// `<p:NAME>` of property `name`, in the namespace of the property (bound to `p`).
fn property(name: &QName) -> Element {
    Element::new("p", &name.ns, &name.local)
}

fn vcds(local: &str, text: &str) -> Element {
    Element::leaf("p", VCDS, local, text)
}

/// One node of a System's placement as `vcds:Nodes` and the web UI show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView<'a> {
    pub node: &'a vcds_placement::NodeAllocation,
    pub appliance: &'a str,
    /// Install progress the node reported, or what its cluster's phase says.
    pub state: &'static str,
    /// Why the install failed or what it last said, when it reported a message.
    pub message: Option<String>,
    /// The node's SSH host public key, once the site made it.
    pub host_key: Option<String>,
    /// The node's state in its cluster's batch scheduler, as the frontend last reported.
    pub scheduler_state: Option<String>,
}

/// The nodes of `d`'s placement (frontend first), with their install progress.
pub fn node_views<'a>(
    r: &Resource,
    d: &'a Deployment,
    kickstarts: &Kickstarts,
) -> Vec<NodeView<'a>> {
    let Some(a) = &d.allocation else {
        return Vec::new();
    };
    let installs = kickstarts.node_table(&r.id);
    let scheduler = kickstarts.scheduler_view(&r.id);
    let appliance = |role| {
        d.spec.as_ref().map_or("", |s| match role {
            Role::Frontend => s.frontend.appliance.as_str(),
            Role::Compute => s.compute.appliance.as_str(),
        })
    };
    a.nodes
        .iter()
        .map(|n| {
            let host = vcds_model::host_name(&n.name, &r.id);
            let row = installs.iter().find(|row| row.host == host);
            let install = row.and_then(|row| row.install.as_ref());
            NodeView {
                node: n,
                appliance: appliance(n.role),
                state: install.map_or_else(|| node_state(d.phase), |i| i.state.as_str()),
                message: install.and_then(|i| i.message.clone()),
                host_key: row.and_then(|row| row.host_key.clone()),
                scheduler_state: scheduler
                    .as_ref()
                    .and_then(|s| s.view.nodes.get(&n.name).cloned()),
            }
        })
        .collect()
}

/// One `vcds:Node` per node of the placement, with the install progress the node reported,
/// its host key and the size its VM got.
fn nodes(r: &Resource, d: &Deployment, manager: &vcds_manager::Manager) -> Vec<Element> {
    node_views(r, d, manager.install())
        .iter()
        .map(|v| {
            let n = v.node;
            let vm = manager.vm_size(n.resources);
            Element::new("p", VCDS, "Node")
                .child(vcds("name", &n.name))
                .child(vcds("appliance", v.appliance))
                .child(vcds("pnode", &n.pnode))
                .child(vcds("ip", &n.ip.to_string()))
                .children(n.macs.iter().map(|m| vcds("mac", &m.to_string())))
                .child(vcds("cpus", &n.resources.cpu.to_string()))
                .child(vcds("memoryMiB", &n.resources.memory_mib.to_string()))
                .child(vcds("diskGiB", &n.resources.disk_gib.to_string()))
                .child(vcds("state", v.state))
                .maybe(
                    v.scheduler_state
                        .as_deref()
                        .map(|s| vcds("schedulerState", s)),
                )
                .maybe(v.host_key.as_deref().map(|k| vcds("hostKey", k)))
                .maybe(vm.map(|(cpus, _)| vcds("vmCpus", &cpus.to_string())))
                .maybe(vm.map(|(_, mib)| vcds("vmMemoryMiB", &mib.to_string())))
        })
        .collect()
}

/// `vcds:Access`: who logs in where (the GW-node's forward to the frontend's sshd).
fn access(d: &Deployment, access: &vcds_manager::executor::Access) -> Vec<Element> {
    let user = d.spec.as_ref().map_or("", |s| s.login.user.as_str());
    vec![
        vcds("user", user),
        vcds("host", &access.host.to_string()),
        vcds("port", &access.port.to_string()),
    ]
}

/// A node's state when it has reported no install progress: what its cluster's phase says.
fn node_state(phase: Option<Phase>) -> &'static str {
    match phase {
        None | Some(Phase::Reserved | Phase::WaitingForStart) => "planned",
        Some(Phase::Ready) => "up",
        Some(p) => p.as_str(),
    }
}

fn reservation(a: &Allocation, d: &Deployment) -> Vec<Element> {
    use vcds_model::time;
    vec![
        vcds("start", &xsd_datetime(time(a.window.start))),
        vcds("end", &xsd_datetime(time(a.window.end))),
        vcds("state", reservation_state(d)),
    ]
}

/// `active` while the reservation is held, then `released`.
pub fn reservation_state(d: &Deployment) -> &'static str {
    if d.released.is_some() {
        "released"
    } else {
        "active"
    }
}

fn network(a: &Allocation) -> Vec<Element> {
    vec![
        vcds("isolation", vcds_manager::kind_name(a.network_id.kind)),
        vcds("networkId", &a.network_id.id.to_string()),
        vcds("subnet", &a.subnet.to_string()),
        Element::new("p", VCDS, "gateway")
            .child(vcds("pnode", &a.gateway.pnode))
            .child(vcds("ip", &a.gateway.ip.to_string()))
            .child(vcds("mac", &a.gateway.mac.to_string())),
    ]
}

/// A figure as the metrics properties show it (already rounded to two decimals).
fn figure(local: &str, v: Option<f64>) -> Option<Element> {
    v.map(|v| Element::leaf("v", VCDS, local, &format!("{v}")))
}

/// The `vcds:Scheduler` property values: what System `r`'s batch scheduler sees, as its
/// frontend reported it (none before its first report).
pub fn scheduler_values(r: &Resource, reported: Option<&Reported>) -> Vec<String> {
    let name = r
        .deployment()
        .and_then(|d| d.spec.as_ref())
        .map_or("none", |s| s.scheduler.as_str());
    reported
        .map(|rep| {
            let at = DateTime::from_timestamp_millis(rep.at_ms).unwrap_or_default();
            property(&SCHEDULER)
                .child(vcds("name", name))
                .child(vcds("reportedAt", &xsd_datetime(at)))
                .child(vcds("running", &rep.view.running.to_string()))
                .child(vcds("pending", &rep.view.pending.to_string()))
                .children(
                    rep.view
                        .nodes
                        .iter()
                        .map(|(node, state)| vcds("node", state).attr("name", node)),
                )
                .render()
        })
        .into_iter()
        .collect()
}

/// `vcds:NodeMetrics` elements, one per reporting node.
pub fn node_metrics(nodes: &[NodeMetrics]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| {
            let leaf = |local: &str, text: &str| Element::leaf("v", VCDS, local, text);
            Element::new("v", VCDS, "NodeMetrics")
                .child(leaf("Name", &n.name))
                .child(leaf("PNode", &n.pnode))
                .child(leaf("State", &n.state))
                .maybe(figure("LoadOne", n.load_one))
                .maybe(figure("CpuUser", n.cpu_user))
                .maybe(figure("MemUsedKB", n.mem_used_kb))
                .maybe(figure("MemTotalKB", n.mem_total_kb))
                .maybe(figure("BytesIn", n.bytes_in))
                .maybe(figure("BytesOut", n.bytes_out))
                .maybe(n.stale.as_deref().map(|s| leaf("Stale", s)))
                .render()
        })
        .collect()
}

/// The `vcds:ClusterMetrics` element.
pub fn cluster_metrics(c: &ClusterMetrics) -> String {
    let count = |local: &str, n: usize| Element::leaf("v", VCDS, local, &n.to_string());
    Element::new("v", VCDS, "ClusterMetrics")
        .child(count("Nodes", c.nodes))
        .child(count("NodesUp", c.nodes_up))
        .child(count("NodesStale", c.nodes_stale))
        .maybe(figure("LoadOneAvg", c.load_one_avg))
        .maybe(figure("LoadOneMax", c.load_one_max))
        .maybe(figure("MemUsedKB", Some(c.mem_used_kb)))
        .maybe(figure("MemTotalKB", Some(c.mem_total_kb)))
        .render()
}

fn lifetime_props(doc: &mut RpDocument, r: &Resource, now: DateTime<Utc>) {
    doc.push_text(CURRENT_TIME.clone(), &xsd_datetime(now));
    doc.push_with(TERMINATION_TIME.clone(), || {
        vec![match r.termination {
            Some(t) => element_text(&TERMINATION_TIME, &xsd_datetime(t)),
            None => element_nil(&TERMINATION_TIME),
        }]
    });
}

/// A `wsnt:TopicExpression` in the Simple dialect naming `topic`.
pub fn topic_expression(topic: &QName) -> Element {
    Element::new("wsnt", ns::WSNT, "TopicExpression")
        .declare("t", &topic.ns)
        .attr("Dialect", topic::SIMPLE)
        .text(&format!("t:{}", topic.local))
}

fn producer_props_of(doc: &mut RpDocument, topics: &[QName]) {
    doc.push_text(q(ns::WSRF_RP, "QueryExpressionDialect"), XPATH_DIALECT);
    doc.push_text(q(ns::WSNT, "FixedTopicSet"), "true");
    let dialect = q(ns::WSNT, "TopicExpressionDialect");
    doc.push_with(dialect.clone(), || {
        vec![
            element_text(&dialect, topic::SIMPLE),
            element_text(&dialect, topic::CONCRETE),
        ]
    });
    doc.push_with(q(ns::WSNT, "TopicExpression"), || {
        topics
            .iter()
            .map(|t| topic_expression(t).render())
            .collect()
    });
}

/// The MUWS capabilities Portal and System resources offer (MUWS part 1 §4: Identity is
/// `muws1:ResourceId`; the characteristics and references are the resource property document and
/// the EPRs), as the CDDLM reference implementation lists them.
const MANAGEABILITY_CAPABILITIES: &[&str] = &[
    "http://docs.oasis-open.org/wsdm/muws/capabilities/Identity",
    "http://docs.oasis-open.org/wsdm/muws/capabilities/ManageabilityCharacteristics",
    "http://docs.oasis-open.org/wsdm/muws/capabilities/ManageabilityReferences",
];

fn static_portal_status(site: &str) -> String {
    let api = |local: &str| Element::new("p", API, local);
    let leaf = |local: &str, text: &str| Element::leaf("p", API, local, text);
    property(&q(API, "StaticPortalStatus"))
        .child(
            api("portal")
                .child(leaf("name", "vcds, the Virtual Cluster Deployment Service"))
                .child(leaf("build", env!("CARGO_PKG_VERSION")))
                .child(leaf("location", site))
                .child(leaf("home", "urn:vcds"))
                .child(leaf("timezoneUTCOffset", "0")),
        )
        .child(
            api("languages").child(
                api("item")
                    .child(leaf("name", "CDL-1.0"))
                    .child(leaf("uri", CDL_LANGUAGE)),
            ),
        )
        .child(api("notifications").child(leaf("item", ns::WSNT)))
        .child(api("options").child(leaf("item", vcds_protocol::VALIDATE_ONLY)))
        .render()
}

/// The current RP document of a resource, or the part of it that `doc` wants, as seen by a
/// caller with `scope`.
pub fn rp_document(
    mut doc: RpDocument,
    r: &Resource,
    api: &Api,
    endpoints: &Endpoints,
    now: DateTime<Utc>,
    scope: &Scope,
) -> RpDocument {
    let manager = &api.manager;
    let site = api.config.site.as_str();
    doc.push_with(q(MUWS1, "ResourceId"), || {
        let id = match &r.state {
            State::Portal => format!("urn:vcds:portal:{site}"),
            _ => r.id.clone(),
        };
        vec![element_text(&q(MUWS1, "ResourceId"), &id)]
    });
    if !matches!(r.state, State::Subscription(_)) {
        doc.push_with(q(MUWS1, "ManageabilityCapability"), || {
            MANAGEABILITY_CAPABILITIES
                .iter()
                .map(|uri| element_text(&q(MUWS1, "ManageabilityCapability"), uri))
                .collect()
        });
    }
    match &r.state {
        State::Portal => {
            doc.push_with(q(API, "StaticPortalStatus"), || {
                vec![static_portal_status(site)]
            });
            doc.push_with(q(API, "ActiveSystems"), || {
                vec![active_systems_of(
                    &manager.registry().systems(),
                    endpoints,
                    scope,
                )]
            });
            doc.push_text(CURRENT_TIME.clone(), &xsd_datetime(now));
            producer_props_of(&mut doc, topics(Endpoint::Portal));
        }
        State::System { props, deployment } => {
            doc.push_text(q(API, "CreatedTime"), &xsd_datetime(r.created));
            doc.push_with(q(VCDS, "SystemState"), || {
                vec![property(&q(VCDS, "SystemState"))
                    .raw(&cmp_state(deployment.lifecycle))
                    .render()]
            });
            if let Some(t) = deployment.started {
                doc.push_text(q(API, "StartedTime"), &xsd_datetime(t));
            }
            if let Some(t) = deployment.terminated {
                doc.push_text(q(API, "TerminatedTime"), &xsd_datetime(t));
            }
            if let Some(phase) = deployment.phase {
                doc.push_with(PHASE.clone(), || phase_values(Some(phase)));
            }
            if let Some(spec) = &deployment.spec {
                doc.push_with(q(VCDS, "ClusterSpec"), || {
                    vec![property(&q(VCDS, "ClusterSpec"))
                        .raw(&spec.to_xml())
                        .render()]
                });
            }
            doc.push_with(q(VCDS, "Nodes"), || {
                vec![property(&q(VCDS, "Nodes"))
                    .children(nodes(r, deployment, manager))
                    .render()]
            });
            if let Some(a) = &deployment.allocation {
                doc.push_with(q(VCDS, "Reservation"), || {
                    vec![property(&q(VCDS, "Reservation"))
                        .children(reservation(a, deployment))
                        .render()]
                });
                doc.push_with(q(VCDS, "Network"), || {
                    vec![property(&q(VCDS, "Network")).children(network(a)).render()]
                });
            }
            if let Some(a) = manager.access(r) {
                doc.push_with(q(VCDS, "Access"), || {
                    vec![property(&q(VCDS, "Access"))
                        .children(access(deployment, &a))
                        .render()]
                });
            }
            let metrics = manager.monitoring().system(&r.id);
            doc.push_with(NODE_METRICS.clone(), || {
                metrics
                    .as_ref()
                    .map(|m| node_metrics(&m.nodes))
                    .unwrap_or_default()
            });
            doc.push_with(CLUSTER_METRICS.clone(), || {
                vec![match &metrics {
                    Some(m) => cluster_metrics(&m.cluster),
                    None => cluster_metrics(&ClusterMetrics::unreported(
                        deployment.allocation.as_ref().map_or(0, |a| a.nodes.len()),
                    )),
                }]
            });
            doc.push_with(SCHEDULER.clone(), || {
                scheduler_values(r, manager.install().scheduler_view(&r.id).as_ref())
            });
            for p in props {
                doc.push_with(q(&p.ns, &p.local), || p.values.clone());
            }
            lifetime_props(&mut doc, r, now);
            producer_props_of(&mut doc, topics(Endpoint::System));
        }
        State::Subscription(s) => {
            doc.push_with(q(ns::WSNT, "ConsumerReference"), || {
                vec![epr_element("wsnt", ns::WSNT, "ConsumerReference", &s.consumer).render()]
            });
            doc.push_with(q(ns::WSNT, "Filter"), || {
                let filter = Element::new("wsnt", ns::WSNT, "Filter");
                vec![match &s.topic {
                    Some((tns, local)) => filter.child(topic_expression(&q(tns, local))),
                    None => filter,
                }
                .render()]
            });
            doc.push_text(q(ns::WSNT, "CreationTime"), &xsd_datetime(r.created));
            lifetime_props(&mut doc, r, now);
        }
    }
    doc
}

/// The element naming a lifecycle state: GFD.65's `cmp:*State`, or the vcds extension
/// `vcds:SuspendedState`.
pub fn state_element(state: Lifecycle) -> String {
    let (ns_uri, local) = match state {
        Lifecycle::Instantiated => (CMP, "InstantiatedState"),
        Lifecycle::Initialized => (CMP, "InitializedState"),
        Lifecycle::Running => (CMP, "RunningState"),
        Lifecycle::Suspended => (VCDS, "SuspendedState"),
        Lifecycle::Terminated => (CMP, "TerminatedState"),
        Lifecycle::Failed => (CMP, "FailedState"),
    };
    Element::new("s", ns_uri, local).render()
}

/// `cmp:State` around the state element (Ping, `vcds:SystemState`).
pub fn cmp_state(state: Lifecycle) -> String {
    Element::new("cmp", CMP, "State")
        .raw(&state_element(state))
        .render()
}

/// The `vcds:Phase` property values (none before Initialize).
pub fn phase_values(phase: Option<Phase>) -> Vec<String> {
    phase
        .map(|p| element_text(&PHASE, p.as_str()))
        .into_iter()
        .collect()
}

/// `api:ActiveSystems` of the given Systems, those `scope` sees.
pub fn active_systems_of(
    systems: &[std::sync::Arc<Resource>],
    endpoints: &Endpoints,
    scope: &Scope,
) -> String {
    let inner: String = systems
        .iter()
        .filter(|s| scope.sees(s))
        .map(|s| epr_element("wsa", ns::WSA, "EndpointReference", &endpoints.of(s)).render())
        .collect();
    property(&q(API, "ActiveSystems")).raw(&inner).render()
}
