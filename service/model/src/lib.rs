//! The data vcds keeps about its WS-Resources and the rules that govern it, with no I/O:
//! [`Resource`] (the Portal, Systems, Subscriptions, as stored), a System's [`Deployment`]
//! (CDDLM lifecycle state, vcds phase, descriptor, reservation) and [`Deployment::apply`], the one
//! state machine that decides what a deployment may become on each [`Event`].

mod deployment;
mod names;
mod resource;

pub use deployment::{
    AddedFile, Deployment, Event, Initialized, Lifecycle, Phase, TransitionError, MAX_FILES,
    MAX_FILES_BYTES,
};
pub use names::{host_name, system_of_host};
pub use resource::{Resource, State, StoredProperty, SubscriptionState, PORTAL_ID};

use chrono::{DateTime, TimeZone, Utc};

/// UTC seconds as a time (the epoch for values out of range, which placement never makes).
pub fn time(t: vcds_placement::Timestamp) -> DateTime<Utc> {
    Utc.timestamp_opt(t, 0).single().unwrap_or_default()
}
