//! The one place where errors of the libraries and operations become SOAP faults.

use vcds_soap::{ns, BaseFault, Fault, FaultCode};
use vcds_wsrf::epr::EprError;
use vcds_wsrf::lifetime::LifetimeError;
use vcds_wsrf::query::QueryError;
use vcds_wsrf::topic::TopicError;
use vcds_wsrf::RpError;
use vcds_xml::{escape, QName, XmlError};

use crate::registry::RegistryError;

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
    let tail = format!(
        "<wsrf-rp:ResourcePropertyChangeFailure xmlns:wsrf-rp=\"{}\" Restored=\"true\"/>",
        ns::WSRF_RP
    );
    Fault {
        detail: fault.detail.with_tail(tail),
        ..fault
    }
}

/// The WS-N termination-time faults carry the earliest acceptable time.
fn minimum_time(fault: Fault) -> Fault {
    let now = vcds_wsrf::xsd_datetime(chrono::Utc::now());
    let tail = format!(
        "<wsnt:MinimumTime xmlns:wsnt=\"{}\">{now}</wsnt:MinimumTime>",
        ns::WSNT
    );
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
            OpError::ActionNotSupported(action) => {
                let mut f = Fault::new(sender, reason);
                f.action = ns::WSA_FAULT_ACTION;
                f.subcodes.push(q(ns::WSA, "ActionNotSupported"));
                f.detail = BaseFault::generic().with_extra(format!(
                    "<wsa:ProblemAction xmlns:wsa=\"{}\"><wsa:Action>{}</wsa:Action></wsa:ProblemAction>",
                    ns::WSA,
                    escape(&action)
                ));
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
