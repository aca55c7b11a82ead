//! The generic WS-Resource framework: what every vcds resource type has in common.
//!
//! A resource type declares its resource-property document with an [`RpSchema`]; a resource
//! presents its current properties as an [`RpDocument`]. The operations of WS-ResourceProperties
//! (get, get-multiple, query, set), WS-ResourceLifetime (termination times) and
//! WS-BaseNotification (topics, Notify messages) work on those, as data in and data out.

pub mod actions;
pub mod epr;
pub mod lifetime;
pub mod notify;
pub mod query;
pub mod rp;
pub mod topic;

pub use epr::Epr;
pub use rp::{Change, PropertyDecl, RpDocument, RpError, RpSchema, SetComponent};

/// RFC 3339 with a `Z`, the xsd:dateTime form vcds writes.
pub fn xsd_datetime(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
