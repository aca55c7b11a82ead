//! Errors: configuration, invalid requests, refusals, and lifecycle operations.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::{Dimension, Ipv4Net, NetworkPool, ReservationId, Role, Timestamp, Window};

/// What ran out. Units of `needed`/`available` in [`Refusal::Insufficient`]: nodes for
/// cpu/memory/disk (how many of the requested nodes fit when counting that resource and the
/// ones before it), P-nodes, GW-capable P-nodes, ids, subnets, MACs, IP addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Shortage {
    Cpu,
    Memory,
    Disk,
    PNodes,
    GwCapablePNodes,
    NetworkIds,
    Subnets,
    Macs,
    Ips,
}

impl From<Dimension> for Shortage {
    fn from(d: Dimension) -> Self {
        match d {
            Dimension::Cpu => Shortage::Cpu,
            Dimension::Memory => Shortage::Memory,
            Dimension::Disk => Shortage::Disk,
        }
    }
}

impl Shortage {
    /// The P-node resource that ran out, if this is one.
    pub fn dimension(&self) -> Option<Dimension> {
        match self {
            Shortage::Cpu => Some(Dimension::Cpu),
            Shortage::Memory => Some(Dimension::Memory),
            Shortage::Disk => Some(Dimension::Disk),
            _ => None,
        }
    }
}

impl fmt::Display for Shortage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shortage::Cpu => "cpu",
            Shortage::Memory => "memory",
            Shortage::Disk => "disk",
            Shortage::PNodes => "P-nodes",
            Shortage::GwCapablePNodes => "GW-capable P-nodes",
            Shortage::NetworkIds => "network ids",
            Shortage::Subnets => "subnets",
            Shortage::Macs => "MACs",
            Shortage::Ips => "IP addresses",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("duplicate P-node name {0:?}")]
    DuplicatePNode(String),
    #[error("network id pool {range:?} (reserved {reserved:?}) is malformed or outside the id space of {kind:?}", range = .0.range, reserved = .0.reserved, kind = .0.kind)]
    BadNetworkPool(NetworkPool),
    #[error("supernet {0} is not aligned to its prefix length or is longer than /30")]
    BadSupernet(Ipv4Net),
    #[error("default subnet prefix /{prefix_len} does not fit inside supernet {supernet} (or is longer than /30)")]
    BadDefaultPrefix { prefix_len: u8, supernet: Ipv4Net },
    #[error("MAC prefix {0:02x?} is not unicast and locally administered")]
    BadMacPrefix([u8; 3]),
    #[error("search horizon {0} s is negative")]
    NegativeHorizon(i64),
}

/// A request that can never be admitted as written, whatever the calendar holds.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    #[error("reservation id is empty")]
    EmptyReservationId,
    #[error("reservation {0:?} already exists")]
    DuplicateReservation(ReservationId),
    #[error("{role} node asks for 0 {dimension}")]
    ZeroSize { role: Role, dimension: Dimension },
    #[error("window {0} ends before or when it starts")]
    ReversedWindow(Window),
    #[error("window {window} starts before now ({now})")]
    WindowInPast { window: Window, now: Timestamp },
    #[error("subnet prefix /{prefix_len} does not fit inside supernet {supernet} (or is longer than /30)")]
    BadPrefixLen { prefix_len: u8, supernet: Ipv4Net },
    #[error("subnet {subnet} is not an aligned range inside supernet {supernet} (of at most /30)")]
    SubnetOutsideSupernet { subnet: Ipv4Net, supernet: Ipv4Net },
    #[error("spreading {computes} computes over at least {min_pnodes} P-nodes is impossible")]
    SpreadExceedsComputes { min_pnodes: u32, computes: u32 },
    #[error("at most 0 computes per P-node leaves no room for {computes} computes")]
    ZeroPerPNode { computes: u32 },
    #[error("no P-node carries all required labels {0:?}")]
    NoMatchingPNode(Vec<String>),
    #[error(
        "{role} node needs {requested} {dimension}; the largest matching P-node has {largest}"
    )]
    NodeTooLarge {
        role: Role,
        dimension: Dimension,
        requested: u64,
        largest: u64,
    },
    #[error("{requested} computes requested; the matching P-nodes hold at most {site_max} even when empty")]
    TooManyNodes { requested: u64, site_max: u64 },
    #[error("computes must spread over {min_pnodes} P-nodes; only {matching} matching P-nodes can hold one")]
    TooFewPNodes { min_pnodes: u64, matching: u64 },
    #[error("the site has no GW-capable P-node")]
    NoGwCapablePNode,
}

/// Why a request is not admitted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("invalid request: {0}")]
    Invalid(#[from] RequestError),
    /// Not enough of `shortage` during `window`. `earliest_start` is the earliest start (same
    /// duration) within the search horizon at which the request would be admitted, if any.
    #[error("{shortage} run out during {window}: {available} available, {needed} needed; {}", EarliestStart(*.earliest_start))]
    Insufficient {
        shortage: Shortage,
        window: Window,
        needed: u64,
        available: u64,
        earliest_start: Option<Timestamp>,
    },
}

struct EarliestStart(Option<Timestamp>);

impl fmt::Display for EarliestStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, "earliest feasible start {t}"),
            None => f.write_str("no feasible start within the search horizon"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApplyError {
    #[error("allocation was admitted at state generation {admitted_at}, state is now at {current}: admit again")]
    Stale { admitted_at: u64, current: u64 },
    #[error("allocation names unknown P-node {0:?}")]
    UnknownPNode(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LifecycleError {
    #[error("no reservation {0:?}")]
    UnknownReservation(ReservationId),
    #[error("no P-node {0:?}")]
    UnknownPNode(String),
    #[error("reservation {reservation:?} already ended at {end} (now {now})")]
    AlreadyEnded {
        reservation: ReservationId,
        end: Timestamp,
        now: Timestamp,
    },
    #[error("new end {new_end} of reservation {reservation:?} is not after its end {end}")]
    NotLater {
        reservation: ReservationId,
        end: Timestamp,
        new_end: Timestamp,
    },
    #[error("reservation {reservation:?} uses P-node {pnode:?}, which is not up")]
    PNodeNotUp {
        reservation: ReservationId,
        pnode: String,
    },
    #[error("extending {reservation:?} conflicts with reservation {conflicting:?}: {shortage} run out{}", .pnode.as_deref().map(|p| format!(" on P-node {p:?}")).unwrap_or_default())]
    Conflict {
        reservation: ReservationId,
        conflicting: ReservationId,
        shortage: Shortage,
        pnode: Option<String>,
    },
}

/// A persisted site that cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RestoreError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("reservation {reservation:?} uses P-node {pnode:?}, which the site does not have")]
    UnknownPNode {
        reservation: ReservationId,
        pnode: String,
    },
    #[error("reservation {0:?} is stored twice")]
    Duplicate(ReservationId),
}
