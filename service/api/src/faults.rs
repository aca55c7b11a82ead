//! The one place where errors of the libraries and operations become SOAP faults.

use vcds_soap::{ns, BaseFault, Fault, FaultCode};
use vcds_wsrf::epr::EprError;
use vcds_wsrf::lifetime::LifetimeError;
use vcds_wsrf::query::QueryError;
use vcds_wsrf::topic::TopicError;
use vcds_wsrf::RpError;
use vcds_xml::{QName, XmlError};

use vcds_cdl::cluster::SpecError;
use vcds_cdl::{CdlError, PathError};

use vcds_placement::{LifecycleError, Refusal};
use vcds_store::BookError;

use vcds_manager::{ManagerError, RegistryError};
use vcds_model::{Lifecycle, Phase, TransitionError};
use vcds_web::BodyError;

use crate::xml::Element;
use vcds_protocol::ns::{API, CDL as CDL_LANGUAGE, VCDS};

/// Everything an operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("{}", .0.reason)]
    Soap(Fault),
    #[error(transparent)]
    Rp(#[from] RpError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Lifetime(#[from] LifetimeError),
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error("the consumer reference is unusable: {0}")]
    Consumer(#[from] EprError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("the request body is {0} bytes or more, over the limit of {1}")]
    BodyTooLarge(usize, usize),
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    #[error("content type {0:?} is not SOAP (text/xml or application/soap+xml)")]
    ContentType(String),
    #[error("no resource {0:?} at this endpoint")]
    ResourceUnknown(String),
    /// The caller has no authorized identity. Says nothing more, on purpose.
    #[error("access denied")]
    AccessDenied,
    #[error("this endpoint does not support action {0}")]
    ActionNotSupported(String),
    #[error("the body element {found} does not match the action, which expects {expected}")]
    BodyMismatch { expected: QName, found: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TerminationRejected(String),
    #[error("{0}")]
    InitialTerminationUnacceptable(String),
    #[error("{0}")]
    TerminationUnacceptable(String),
    #[error("{0}")]
    InvalidFilter(String),
    #[error("{operation} is not allowed in state {}{}", .state.as_str(), phase_note(*.phase))]
    WrongState {
        operation: &'static str,
        state: Lifecycle,
        phase: Option<Phase>,
    },
    #[error("{0}")]
    BadArgument(String),
    #[error(
        "descriptor language {0:?} is not supported; the supported language is {CDL_LANGUAGE}"
    )]
    UnsupportedLanguage(String),
    #[error("option {0} is marked mustUnderstand but is not understood")]
    NotUnderstood(String),
    #[error(transparent)]
    Cdl(#[from] CdlError),
    #[error("the descriptor is not a usable cluster request: {0}")]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Book(#[from] BookError),
    #[error("the virtual cluster is not alive: {0}")]
    NotAlive(String),
    #[error("{0}")]
    Packages(String),
    /// The site could not do what the operation needs; nothing changed.
    #[error("the site could not carry it out: {0}")]
    Site(vcds_manager::executor::ExecError),
    /// The service itself failed: never the caller's fault.
    #[error("{0}")]
    Unavailable(String),
}

impl From<ManagerError> for OpError {
    fn from(e: ManagerError) -> Self {
        match e {
            ManagerError::ResourceUnknown(id) => OpError::ResourceUnknown(id),
            ManagerError::Transition(TransitionError::NotAllowed {
                event,
                state,
                phase,
            }) => OpError::WrongState {
                operation: event,
                state,
                phase,
            },
            ManagerError::Transition(e @ TransitionError::TooManyFiles) => {
                OpError::BadArgument(e.to_string())
            }
            ManagerError::BadArgument(m) => OpError::BadArgument(m),
            ManagerError::Cdl(e) => OpError::Cdl(e),
            ManagerError::Spec(e) => OpError::Spec(e),
            ManagerError::Path(e) => OpError::Path(e),
            ManagerError::Book(e) => OpError::Book(e),
            ManagerError::NotAlive(m) => OpError::NotAlive(m),
            ManagerError::Packages(m) => OpError::Packages(m),
            ManagerError::Site(e) => OpError::Site(e),
            ManagerError::Registry(e) => OpError::Registry(e),
            e @ ManagerError::Unavailable(_) => OpError::Unavailable(e.to_string()),
        }
    }
}

impl From<BodyError> for OpError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge(n, limit) => OpError::BodyTooLarge(n, limit),
            BodyError::Timeout => OpError::BodyTimeout,
            BodyError::Read(m) => {
                OpError::BadRequest(format!("reading the request body failed: {m}"))
            }
        }
    }
}

fn phase_note(phase: Option<Phase>) -> String {
    phase.map_or(String::new(), |p| format!(" (phase {})", p.as_str()))
}

fn q(ns: &str, local: &str) -> QName {
    QName::new(ns, local)
}

fn wsrf(code: FaultCode, ns: &str, local: &str, reason: String) -> Fault {
    Fault::typed(code, q(ns, local), vcds_soap::ns::WSRF_FAULT_ACTION, reason)
}

/// The rp-2 modification faults must say what happened to the property; every SetResourceProperties
/// is all-or-nothing here, so it is always restored.
fn change_failure(fault: Fault) -> Fault {
    let tail = Element::new("wsrf-rp", ns::WSRF_RP, "ResourcePropertyChangeFailure")
        .attr("Restored", "true")
        .render();
    Fault {
        detail: fault.detail.with_tail(tail),
        ..fault
    }
}

/// The WS-N termination-time faults carry the earliest acceptable time.
fn minimum_time(fault: Fault) -> Fault {
    let now = vcds_wsrf::xsd_datetime(chrono::Utc::now());
    let tail = Element::leaf("wsnt", ns::WSNT, "MinimumTime", &now).render();
    Fault {
        detail: fault.detail.with_tail(tail),
        ..fault
    }
}

fn wsn(local: &str, reason: String) -> Fault {
    Fault::typed(
        FaultCode::Sender,
        q(ns::WSNT, local),
        ns::WSN_FAULT_ACTION,
        reason,
    )
}

/// A CDDLM deployment fault (`api:*Fault`, type `api:DeploymentFaultType`); `tail` holds the
/// type's own elements after the BaseFault ones.
fn deployment(
    code: FaultCode,
    local: &str,
    error_code: &str,
    reason: String,
    tail: String,
) -> Fault {
    let f = Fault::typed(code, q(API, local), ns::WSRF_FAULT_ACTION, reason).with_code(error_code);
    Fault {
        detail: f.detail.with_tail(tail),
        ..f
    }
}

fn api_leaf(local: &str, value: &str) -> String {
    Element::leaf("api", API, local, value).render()
}

/// Where in which document a CDL error is, so the caller can fix the descriptor.
fn cdl_fault(e: &CdlError, reason: String) -> Fault {
    use CdlError::*;
    let (local, code) = match e {
        UnknownPrototype { .. }
        | CyclicExtends { .. }
        | DanglingReference { .. }
        | CyclicReference { .. }
        | LazyTarget { .. }
        | ImportNotAllowed { .. }
        | ImportNotFound { .. }
        | CyclicImport { .. }
        | DuplicateName { .. } => ("ResolutionFault", "cdl-resolution"),
        _ => ("DescriptorParseFault", "cdl-parse"),
    };
    let tail = e.location().map_or(String::new(), |at| {
        [
            api_leaf("document", at.doc.as_str()),
            api_leaf("line", &at.line.to_string()),
            api_leaf("column", &at.column.to_string()),
            api_leaf("path", &at.path),
        ]
        .concat()
    });
    deployment(FaultCode::Sender, local, code, reason, tail)
}

impl OpError {
    pub fn into_fault(self) -> Fault {
        let reason = self.to_string();
        let sender = FaultCode::Sender;
        match self {
            OpError::Soap(f) => f,
            OpError::Xml(e) => {
                Fault::new(sender, format!("the request is not acceptable XML: {e}"))
                    .with_code(xml_code(&e))
            }
            OpError::BodyTooLarge(..) => Fault::new(sender, reason).with_code("body-too-large"),
            OpError::BodyTimeout => Fault::new(sender, reason).with_code("body-timeout"),
            OpError::ContentType(_) => Fault::new(sender, reason).with_code("content-type"),
            OpError::BadRequest(_) => Fault::new(sender, reason).with_code("bad-request"),
            OpError::BodyMismatch { .. } => Fault::new(sender, reason).with_code("body-mismatch"),
            OpError::ResourceUnknown(_) => wsrf(sender, ns::WSRF_R, "ResourceUnknownFault", reason),
            OpError::AccessDenied => {
                wsrf(sender, VCDS, "AccessDeniedFault", reason).with_code("access-denied")
            }
            OpError::ActionNotSupported(action) => {
                let mut f = Fault::new(sender, reason);
                f.action = ns::WSA_FAULT_ACTION;
                f.subcodes.push(q(ns::WSA, "ActionNotSupported"));
                f.detail = BaseFault::generic().with_extra(
                    Element::new("wsa", ns::WSA, "ProblemAction")
                        .child(Element::leaf("wsa", ns::WSA, "Action", &action))
                        .render(),
                );
                f
            }
            OpError::Rp(e) => match e {
                RpError::BadQName(_) | RpError::UnknownProperty(_) => wsrf(
                    sender,
                    ns::WSRF_RP,
                    "InvalidResourcePropertyQNameFault",
                    reason,
                ),
                RpError::ReadOnly(_) => change_failure(wsrf(
                    sender,
                    ns::WSRF_RP,
                    "UnableToModifyResourcePropertyFault",
                    reason,
                )),
                RpError::InvalidModification { .. } | RpError::UnknownComponent(_) => {
                    change_failure(wsrf(
                        sender,
                        ns::WSRF_RP,
                        "InvalidModificationFault",
                        reason,
                    ))
                }
            },
            OpError::Query(e) => match e {
                QueryError::UnknownDialect(_) => wsrf(
                    sender,
                    ns::WSRF_RP,
                    "UnknownQueryExpressionDialectFault",
                    reason,
                ),
                QueryError::Invalid(_) => {
                    wsrf(sender, ns::WSRF_RP, "InvalidQueryExpressionFault", reason)
                }
                QueryError::Evaluation(_) => wsrf(
                    FaultCode::Receiver,
                    ns::WSRF_RP,
                    "QueryEvaluationErrorFault",
                    reason,
                ),
            },
            OpError::Lifetime(_) => wsrf(
                sender,
                ns::WSRF_RL,
                "UnableToSetTerminationTimeFault",
                reason,
            ),
            OpError::TerminationRejected(_) => wsrf(
                sender,
                ns::WSRF_RL,
                "TerminationTimeChangeRejectedFault",
                reason,
            ),
            OpError::Topic(e) => match e {
                TopicError::DialectUnknown(_) => wsn("TopicExpressionDialectUnknownFault", reason),
                TopicError::Invalid(_) => wsn("InvalidTopicExpressionFault", reason),
                TopicError::NotSupported(_) => wsn("TopicNotSupportedFault", reason),
            },
            OpError::Consumer(_) => wsn("SubscribeCreationFailedFault", reason),
            OpError::InvalidFilter(_) => wsn("InvalidFilterFault", reason),
            OpError::InitialTerminationUnacceptable(_) => {
                minimum_time(wsn("UnacceptableInitialTerminationTimeFault", reason))
            }
            OpError::TerminationUnacceptable(_) => {
                minimum_time(wsn("UnacceptableTerminationTimeFault", reason))
            }
            OpError::WrongState {
                operation, state, ..
            } => deployment(
                sender,
                "LifecycleFault",
                "wrong-state",
                reason,
                api_leaf("state", state.as_str()) + &api_leaf("operation", operation),
            ),
            OpError::BadArgument(_) => deployment(
                sender,
                "BadArgumentFault",
                "bad-argument",
                reason,
                String::new(),
            ),
            OpError::UnsupportedLanguage(ref language) => {
                let tail = api_leaf("language", language);
                deployment(
                    sender,
                    "UnsupportedLanguageFault",
                    "unsupported-language",
                    reason,
                    tail,
                )
            }
            OpError::NotUnderstood(ref option) => {
                let tail = api_leaf("option", option);
                deployment(sender, "NotUnderstoodFault", "not-understood", reason, tail)
            }
            OpError::Cdl(ref e) => cdl_fault(e, reason),
            OpError::Spec(_) => deployment(
                sender,
                "InitializationFault",
                "invalid-cluster",
                reason,
                String::new(),
            ),
            OpError::Path(ref e) => {
                let tail = match e {
                    PathError::Invalid { path, .. }
                    | PathError::Dangling { path, .. }
                    | PathError::TooManyHops { path, .. } => api_leaf("path", path),
                };
                deployment(sender, "ResolutionFault", "path-resolution", reason, tail)
            }
            OpError::Book(e) => book_fault(e, reason),
            OpError::Site(_) => Fault::new(FaultCode::Receiver, reason).with_code("site"),
            OpError::Unavailable(_) => {
                tracing::error!(reason = %reason, "service failure");
                wsrf(
                    FaultCode::Receiver,
                    ns::WSRF_R,
                    "ResourceUnavailableFault",
                    reason,
                )
            }
            OpError::Packages(_) => deployment(
                sender,
                "InitializationFault",
                "unavailable-package",
                reason,
                String::new(),
            ),
            OpError::NotAlive(_) => deployment(
                FaultCode::Receiver,
                "LivenessFault",
                "not-alive",
                reason,
                String::new(),
            ),
            OpError::Registry(e) => {
                tracing::error!(error = %e, "store failure");
                wsrf(
                    FaultCode::Receiver,
                    ns::WSRF_R,
                    "ResourceUnavailableFault",
                    format!("the service could not complete the request: {e}"),
                )
            }
        }
    }
}

fn vcds_leaf(local: &str, value: &str) -> String {
    Element::leaf("vcds", VCDS, local, value).render()
}

/// A refused reservation says what ran out, by how much, and when the cluster would fit; an
/// extension says which reservation is in the way (in the reason).
fn book_fault(e: BookError, reason: String) -> Fault {
    // Placement writes times as epoch seconds; a person reads them as dates.
    use vcds_model::time;
    use vcds_wsrf::xsd_datetime;
    match e {
        BookError::Refused(Refusal::Insufficient {
            shortage,
            window,
            needed,
            available,
            earliest_start,
        }) => {
            let tail = [
                vcds_leaf("shortage", &shortage.to_string()),
                vcds_leaf("windowStart", &xsd_datetime(time(window.start))),
                vcds_leaf("windowEnd", &xsd_datetime(time(window.end))),
                vcds_leaf("needed", &needed.to_string()),
                vcds_leaf("available", &available.to_string()),
                earliest_start.map_or(String::new(), |t| {
                    vcds_leaf("earliestStart", &xsd_datetime(time(t)))
                }),
            ]
            .concat();
            let reason = format!(
                "{shortage} run out between {} and {}: {available} available, {needed} needed; {}",
                xsd_datetime(time(window.start)),
                xsd_datetime(time(window.end)),
                earliest_start.map_or("no feasible start within the search horizon".into(), |t| {
                    format!("earliest feasible start {}", xsd_datetime(time(t)))
                })
            );
            let f = Fault::typed(
                FaultCode::Sender,
                q(VCDS, "ReservationRefusedFault"),
                ns::WSRF_FAULT_ACTION,
                reason,
            )
            .with_code("reservation-refused");
            Fault {
                detail: f.detail.with_tail(tail),
                ..f
            }
        }
        BookError::Refused(Refusal::Invalid(_)) => deployment(
            FaultCode::Sender,
            "InitializationFault",
            "invalid-reservation",
            reason,
            String::new(),
        ),
        BookError::Lifecycle(
            LifecycleError::Conflict { .. }
            | LifecycleError::NotLater { .. }
            | LifecycleError::AlreadyEnded { .. }
            | LifecycleError::PNodeNotUp { .. }
            | LifecycleError::UnknownReservation(_),
        ) => wsrf(
            FaultCode::Sender,
            ns::WSRF_RL,
            "TerminationTimeChangeRejectedFault",
            reason,
        ),
        e => {
            tracing::error!(error = %e, "reservation book failure");
            wsrf(
                FaultCode::Receiver,
                ns::WSRF_R,
                "ResourceUnavailableFault",
                format!("the service could not complete the request: {e}"),
            )
        }
    }
}

fn xml_code(e: &XmlError) -> &'static str {
    match e {
        XmlError::TooLarge { .. } => "xml-too-large",
        XmlError::Doctype => "xml-doctype",
        XmlError::Malformed(_) => "xml-malformed",
        XmlError::TooDeep { .. } => "xml-too-deep",
        XmlError::TooManyNodes { .. } => "xml-too-many-nodes",
        XmlError::TooManyAttributes { .. } => "xml-too-many-attributes",
        XmlError::TooManyNamespaces { .. } => "xml-too-many-namespaces",
        XmlError::NameTooLong { .. } => "xml-name-too-long",
        XmlError::AttributeTooLong { .. } => "xml-attribute-too-long",
        XmlError::TextTooLong { .. } => "xml-text-too-long",
    }
}
