//! The operations of the three endpoints. Each takes a parsed request and gives the reply body.

use std::sync::Arc;

use chrono::Utc;
use roxmltree::Node;
use vcds_soap::ns;
use vcds_wsrf::{lifetime, query, rp, topic, xsd_datetime, Epr, RpDocument};
use vcds_xml::QName;

use vcds_manager::{Manager, PropertyChange};
use vcds_model::{Deployment, Resource, State, StoredProperty, SubscriptionState, PORTAL_ID};

use crate::cddlm as system;
use crate::faults::OpError;
use crate::kinds::{self, q, Endpoint, API, RESOURCE_ID};
use crate::request::{child, text_of, Reply, Request};
use crate::scope::Scope;
use crate::security::Principal;
use crate::xml::Element;
use crate::Api;

pub use vcds_protocol::cddlm_actions::{CREATE, LOOKUP_SYSTEM};
pub use vcds_protocol::Operation;

fn rp_response(local: &str, inner: &str) -> String {
    Element::new("wsrf-rp", ns::WSRF_RP, local)
        .raw(inner)
        .render()
}

fn rl_response(local: &str) -> Element {
    Element::new("wsrf-rl", ns::WSRF_RL, local)
}

fn wsnt_response(local: &str) -> Element {
    Element::new("wsnt", ns::WSNT, local)
}

/// Runs `op`; returns the reply body.
pub async fn run(op: Operation, req: Request<'_, '_>) -> Result<Reply, OpError> {
    let now = Utc::now();
    let schema = kinds::schema(req.endpoint);
    let scope = Scope::of(req.caller);
    let document_of =
        |doc| kinds::rp_document(doc, &req.resource, req.api, &req.endpoints, now, &scope);
    let document = || document_of(RpDocument::default());
    let body = match op {
        Operation::GetResourcePropertyDocument => Ok(rp_response(
            "GetResourcePropertyDocumentResponse",
            &document().render(schema),
        )),
        Operation::GetResourceProperty => {
            let text = text_of(req.body);
            let name = QName::resolve_in(text, req.body)
                .ok_or_else(|| rp::RpError::BadQName(text.to_string()))?;
            let doc = document_of(RpDocument::only(vec![name.clone()]));
            Ok(rp_response(
                "GetResourcePropertyResponse",
                &doc.get(schema, &name)?.concat(),
            ))
        }
        Operation::GetMultipleResourceProperties => {
            let doc = document();
            let mut out = String::new();
            let names: Vec<Node<'_, '_>> = req
                .body
                .children()
                .filter(|c| c.has_tag_name((ns::WSRF_RP, "ResourceProperty")))
                .collect();
            if names.is_empty() {
                return Err(OpError::BadRequest(
                    "GetMultipleResourceProperties names no ResourceProperty".to_string(),
                ));
            }
            for n in names {
                let text = text_of(n);
                let name = QName::resolve_in(text, n)
                    .ok_or_else(|| rp::RpError::BadQName(text.to_string()))?;
                out.push_str(&doc.get(schema, &name)?.concat());
            }
            Ok(rp_response("GetMultipleResourcePropertiesResponse", &out))
        }
        Operation::QueryResourceProperties => {
            let expr = child(req.body, ns::WSRF_RP, "QueryExpression").ok_or_else(|| {
                OpError::BadRequest("QueryResourceProperties has no QueryExpression".to_string())
            })?;
            let dialect = expr.attribute("Dialect").unwrap_or("").trim();
            if dialect != query::XPATH_DIALECT {
                return Err(query::QueryError::UnknownDialect(dialect.to_string()).into());
            }
            let namespaces: Vec<(String, String)> = expr
                .namespaces()
                .filter_map(|n| n.name().map(|p| (p.to_string(), n.uri().to_string())))
                .collect();
            let rendered = document().render(schema);
            let result = query::evaluate(&rendered, text_of(expr), &namespaces)?;
            Ok(rp_response("QueryResourcePropertiesResponse", &result))
        }
        Operation::SetResourceProperties => set_properties(&req, schema).await,
        Operation::Destroy => {
            req.manager()
                .destroy(vec![req.resource.id.clone()], "destroyed on request")
                .await?;
            Ok(rl_response("DestroyResponse").render())
        }
        Operation::SetTerminationTime => {
            let requested = lifetime::parse_set_termination_time(req.body)?;
            let new = requested.resolve(now)?;
            check_lifetime(req.api, now, new, OpError::TerminationRejected)?;
            req.manager()
                .set_termination_time(&req.resource.id, new)
                .await?;
            Ok(rl_response("SetTerminationTimeResponse")
                .child(termination_element(
                    "wsrf-rl",
                    ns::WSRF_RL,
                    "NewTerminationTime",
                    new,
                ))
                .child(Element::leaf(
                    "wsrf-rl",
                    ns::WSRF_RL,
                    "CurrentTime",
                    &xsd_datetime(now),
                ))
                .render())
        }
        Operation::Subscribe => return subscribe(&req, now).await,
        Operation::Renew => {
            let tt = child(req.body, ns::WSNT, "TerminationTime").ok_or_else(|| {
                OpError::TerminationUnacceptable("Renew carries no TerminationTime".to_string())
            })?;
            let nil = tt
                .attribute((ns::XSI, "nil"))
                .is_some_and(|v| matches!(v.trim(), "true" | "1"));
            let requested = if nil {
                lifetime::Requested::Never
            } else {
                lifetime::parse_absolute_or_relative(text_of(tt))
                    .map_err(|e| OpError::TerminationUnacceptable(e.to_string()))?
            };
            let new = requested
                .resolve(now)
                .map_err(|e| OpError::TerminationUnacceptable(e.to_string()))?;
            check_lifetime(req.api, now, new, OpError::TerminationUnacceptable)?;
            if new.is_some_and(|t| t <= now) {
                return Err(OpError::TerminationUnacceptable(
                    "the requested termination time has passed".to_string(),
                ));
            }
            req.manager()
                .set_termination_time(&req.resource.id, new)
                .await?;
            Ok(wsnt_response("RenewResponse")
                .child(termination_element(
                    "wsnt",
                    ns::WSNT,
                    "TerminationTime",
                    new,
                ))
                .child(Element::leaf(
                    "wsnt",
                    ns::WSNT,
                    "CurrentTime",
                    &xsd_datetime(now),
                ))
                .render())
        }
        Operation::Unsubscribe => {
            req.manager()
                .destroy(vec![req.resource.id.clone()], "unsubscribed")
                .await?;
            Ok(wsnt_response("UnsubscribeResponse").render())
        }
        Operation::Create => return create(&req, now).await,
        Operation::LookupSystem => {
            let id = child(req.body, API, "ResourceId")
                .map(text_of)
                .ok_or_else(|| {
                    OpError::BadArgument("lookupSystemRequest has no api:ResourceId".into())
                })?;
            let system = req
                .manager()
                .registry()
                .get(id)
                .filter(|r| matches!(r.state, State::System { .. }) && scope.sees(r))
                .ok_or_else(|| OpError::ResourceUnknown(id.to_string()))?;
            Ok(kinds::epr_element(
                "api",
                API,
                "lookupSystemResponse",
                &req.endpoints.of(&system),
            )
            .render())
        }
        Operation::Initialize => system::initialize(&req).await,
        Operation::AddFile => system::add_file(&req).await,
        Operation::Run => system::run(&req).await,
        Operation::Terminate => system::terminate(&req).await,
        Operation::Ping => system::ping(&req),
        Operation::Resolve => system::resolve(&req),
        Operation::Suspend => system::suspend(&req).await,
        Operation::Resume => system::resume(&req).await,
    };
    body.map(|body| Reply {
        body,
        created: None,
    })
}

/// Create: a new System, owned by the caller.
async fn create(req: &Request<'_, '_>, now: chrono::DateTime<Utc>) -> Result<Reply, OpError> {
    // api:hostname is the only argument (and ignored: one site per Portal).
    if let Some(other) = req
        .body
        .children()
        .find(|c| c.is_element() && !c.has_tag_name((API, "hostname")))
    {
        return Err(OpError::BadArgument(format!(
            "createRequest takes only api:hostname, not {}",
            other.tag_name().name()
        )));
    }
    let system = Resource {
        id: uuid::Uuid::new_v4().to_string(),
        owner: req.caller.account.clone(),
        created: now,
        termination: None,
        state: State::System {
            props: Vec::new(),
            deployment: Deployment::default(),
        },
    };
    let system = req.manager().create(system).await?;
    let epr = req.endpoints.of(&system);
    Ok(Reply {
        body: Element::new("api", API, "createResponse")
            .declare("wsa", ns::WSA)
            .child(Element::leaf("api", API, "ResourceId", &system.id))
            .child(Element::new("api", API, "systemReference").raw(&epr.children()))
            .render(),
        created: Some(system.id.clone()),
    })
}

/// Resource lifetimes are bounded so a forgotten resource cannot live forever by accident.
pub fn check_lifetime(
    api: &Api,
    now: chrono::DateTime<Utc>,
    new: Option<chrono::DateTime<Utc>>,
    err: fn(String) -> OpError,
) -> Result<(), OpError> {
    if let Some(t) = new {
        let max = api.config.max_lifetime;
        if t - now > max {
            return Err(err(format!(
                "termination time {} is more than {} days away",
                xsd_datetime(t),
                max.num_days()
            )));
        }
    }
    Ok(())
}

/// A termination time, or `xsi:nil` for none.
fn termination_element(
    prefix: &str,
    ns_uri: &str,
    local: &str,
    t: Option<chrono::DateTime<Utc>>,
) -> Element {
    match t {
        Some(t) => Element::leaf(prefix, ns_uri, local, &xsd_datetime(t)),
        None => Element::new(prefix, ns_uri, local)
            .declare("xsi", ns::XSI)
            .attr("xsi:nil", "true"),
    }
}

async fn set_properties(
    req: &Request<'_, '_>,
    schema: &vcds_wsrf::RpSchema,
) -> Result<String, OpError> {
    let components = rp::parse_set_request(req.body)?;
    req.manager()
        .update_properties(&req.resource.id, |props| {
            let stored: Vec<(QName, Vec<String>)> = props
                .iter()
                .map(|p| (q(&p.ns, &p.local), p.values.clone()))
                .collect();
            let (next, changes) = rp::apply_set(schema, &stored, &components)?;
            let props = next
                .into_iter()
                .map(|(n, values)| StoredProperty {
                    ns: n.ns,
                    local: n.local,
                    values,
                })
                .collect();
            let changes = changes
                .into_iter()
                .map(|c| PropertyChange {
                    ns: c.name.ns,
                    local: c.name.local,
                    old: c.old,
                    new: c.new,
                })
                .collect();
            Ok::<_, OpError>((props, changes))
        })
        .await?;
    Ok(rp_response("SetResourcePropertiesResponse", ""))
}

/// Subscribe: a new subscription on the addressed producer, owned by the subscriber.
async fn subscribe(req: &Request<'_, '_>, now: chrono::DateTime<Utc>) -> Result<Reply, OpError> {
    let consumer = child(req.body, ns::WSNT, "ConsumerReference")
        .ok_or_else(|| OpError::Consumer(vcds_wsrf::epr::EprError::MissingAddress))
        .and_then(|n| Epr::parse(n).map_err(OpError::from))?;
    let mut topic = None;
    if let Some(filter) = child(req.body, ns::WSNT, "Filter") {
        for f in filter.children().filter(|c| c.is_element()) {
            if !f.has_tag_name((ns::WSNT, "TopicExpression")) || topic.is_some() {
                return Err(OpError::InvalidFilter(format!(
                    "only one wsnt:TopicExpression filter is supported, not {}",
                    QName::of(f)
                )));
            }
            let dialect = f.attribute("Dialect").unwrap_or("");
            topic = Some(topic::resolve(
                dialect,
                text_of(f),
                f,
                kinds::topics(req.endpoint),
            )?);
        }
    }
    if let Some(policy) = child(req.body, ns::WSNT, "SubscriptionPolicy") {
        if policy.children().any(|c| c.is_element()) {
            return Err(OpError::InvalidFilter(
                "subscription policies are not supported".to_string(),
            ));
        }
    }
    let termination = match child(req.body, ns::WSNT, "InitialTerminationTime") {
        Some(t) => {
            let requested = lifetime::parse_absolute_or_relative(text_of(t))
                .map_err(|e| OpError::InitialTerminationUnacceptable(e.to_string()))?;
            let at = requested
                .resolve(now)
                .map_err(|e| OpError::InitialTerminationUnacceptable(e.to_string()))?;
            if at.is_some_and(|t| t <= now) {
                return Err(OpError::InitialTerminationUnacceptable(
                    "the initial termination time has passed".to_string(),
                ));
            }
            check_lifetime(req.api, now, at, OpError::InitialTerminationUnacceptable)?;
            at
        }
        None => None,
    };
    let subscription = Resource {
        id: uuid::Uuid::new_v4().to_string(),
        owner: req.caller.account.clone(),
        created: now,
        termination,
        state: State::Subscription(SubscriptionState {
            producer: req.resource.id.clone(),
            consumer,
            topic: topic.map(|t| (t.ns, t.local)),
            subscriber_admin: req.caller.admin,
        }),
    };
    let subscription = req.manager().create(subscription).await?;
    let epr = req.endpoints.of(&subscription);
    Ok(Reply {
        body: wsnt_response("SubscribeResponse")
            .declare("wsa", ns::WSA)
            .child(Element::new("wsnt", ns::WSNT, "SubscriptionReference").raw(&epr.children()))
            .child(Element::leaf(
                "wsnt",
                ns::WSNT,
                "CurrentTime",
                &xsd_datetime(now),
            ))
            .child(termination_element(
                "wsnt",
                ns::WSNT,
                "TerminationTime",
                termination,
            ))
            .render(),
        created: Some(subscription.id.clone()),
    })
}

/// The resource a request addresses: the Portal, or the one named by the reference parameter.
///
/// Authorization: a System or Subscription of another owner is reported exactly as an unknown
/// one (same fault, same text), so that nobody learns which ids exist; admins reach everything.
pub fn addressed(
    manager: &Manager,
    endpoint: Endpoint,
    env: &vcds_soap::Envelope<'_, '_>,
    caller: &Principal,
) -> Result<Arc<Resource>, OpError> {
    let id = match endpoint {
        Endpoint::Portal => PORTAL_ID.to_string(),
        _ => {
            let mut ids = env.headers.iter().filter(|h| RESOURCE_ID.matches(**h));
            match (ids.next(), ids.next()) {
                (Some(h), None) => text_of(*h).to_string(),
                (None, _) => {
                    return Err(OpError::ResourceUnknown(
                        "(no vcds:ResourceId reference parameter)".to_string(),
                    ))
                }
                // Which one a client meant is anybody's guess; guessing could act on the wrong one.
                (Some(_), Some(_)) => {
                    return Err(OpError::ResourceUnknown(
                        "(more than one vcds:ResourceId reference parameter)".to_string(),
                    ))
                }
            }
        }
    };
    visible(manager, endpoint, &id, caller)
}

/// Resource `id` at `endpoint` if `caller` may act on it: the one owner check of the SOAP
/// operations and the web UI. Another owner's resource is `ResourceUnknown`, like a missing one.
pub fn visible(
    manager: &Manager,
    endpoint: Endpoint,
    id: &str,
    caller: &Principal,
) -> Result<Arc<Resource>, OpError> {
    manager
        .registry()
        .get(id)
        .filter(|r| kinds::endpoint_of(&r.state) == endpoint)
        .filter(|r| endpoint == Endpoint::Portal || caller.may_access(&r.owner))
        .ok_or_else(|| OpError::ResourceUnknown(id.to_string()))
}
