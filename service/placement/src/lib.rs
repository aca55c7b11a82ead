//! Reservation-based placement of virtual clusters on P-nodes. No I/O: data in, data out,
//! deterministic for the same input.
//!
//! Flow for the service (Initialize / Run, with the store's transaction around it):
//! 1. [`SiteState::new`] from the site's [`SiteConfig`] and [`PNode`]s (or the persisted state:
//!    every type here is serde-serializable).
//! 2. [`admit`]`(&state, &request, now)` — pure; an [`Allocation`] (placement, GW-node, network
//!    id, subnet, MACs, IPs, host names) or a [`Refusal`] naming what runs out and the earliest
//!    feasible start.
//! 3. [`SiteState::apply`] records it (refused if the state changed since admission);
//!    [`SiteState::release`] / [`SiteState::expire`] free it; [`SiteState::extend`] grows it;
//!    [`SiteState::set_pnode_state`] lists reservations hit by a P-node going down.
//!
//! Time is UTC seconds (`DateTime<Utc>::timestamp()`); windows are half-open `[start, end)`.
//! Pool ids (VLAN id / VNI, subnet, MACs) are unique among reservations whose windows overlap,
//! and reused otherwise.
//!
//! Conventions of an allocation (see the `admit` module): host names `frontend`,
//! `compute-0-N` (or `compute-R-N` by P-node, [`NamingScheme`]); in the cluster subnet the
//! GW-node is network+1, the frontend the last usable address (.254 in a /24) and computes
//! count down from there, as Rocks does; MACs are one contiguous block under the site's
//! locally administered prefix: GW-node port, frontend private, frontend public, computes.
//! The GW-node is the frontend's P-node when GW-capable, else the least-loaded GW-capable one.
//!
//! Benchmark (10,000 P-nodes, 100,000 bookings, 100-node cluster, with a naive first-fit
//! baseline): `cargo bench -p vcds-placement`.

mod admit;
mod allocation;
mod calendar;
mod error;
mod model;
mod pools;
mod state;

pub use admit::{admit, ClusterRequest, Constraints};
pub use allocation::{Allocation, Gateway, NodeAllocation};
pub use calendar::{Booking, Calendar, SweepEvent};
pub use error::{
    ApplyError, ConfigError, LifecycleError, Refusal, RequestError, RestoreError, Shortage,
};
pub use model::{
    mac_text, BadMac, Dimension, IdRange, Ipv4Net, MacAddr, NamingScheme, NetworkId, NetworkKind,
    NetworkPool, PNode, PNodeState, Policy, ReservationId, Resources, Role, SiteConfig, Timestamp,
    Window, MAX_PREFIX_LEN,
};
pub use pools::{MacBlock, MAC_SUFFIXES};
pub use state::{Affected, SiteState};

#[cfg(test)]
mod tests;
