//! The WS-Resources as they are stored: their JSON shape is the store's row format, so fields
//! are only ever added, with defaults.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vcds_wsrf::Epr;

use crate::Deployment;

/// The singleton Portal's id.
pub const PORTAL_ID: &str = "portal";

/// A writable resource property's stored values (serialized elements).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredProperty {
    pub ns: String,
    pub local: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionState {
    pub producer: String,
    pub consumer: Epr,
    /// `None` subscribes to every topic of the producer.
    pub topic: Option<(String, String)>,
    /// The subscriber had the admin role, so its notifications list every System.
    #[serde(default)]
    pub subscriber_admin: bool,
}

/// The kind-specific part of a resource, stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum State {
    Portal,
    System {
        props: Vec<StoredProperty>,
        /// Absent in rows written before the CDDLM operations existed.
        #[serde(default)]
        deployment: Deployment,
    },
    Subscription(SubscriptionState),
}

impl State {
    pub fn kind(&self) -> &'static str {
        match self {
            State::Portal => "portal",
            State::System { .. } => "system",
            State::Subscription(_) => "subscription",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub id: String,
    pub owner: String,
    pub created: DateTime<Utc>,
    pub termination: Option<DateTime<Utc>>,
    pub state: State,
}

impl Resource {
    /// The deployment of a System; `None` for the Portal and Subscriptions.
    pub fn deployment(&self) -> Option<&Deployment> {
        match &self.state {
            State::System { deployment, .. } => Some(deployment),
            _ => None,
        }
    }

    pub fn is_system(&self) -> bool {
        matches!(self.state, State::System { .. })
    }
}
