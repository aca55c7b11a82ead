//! An admitted virtual cluster: its nodes with their P-nodes, addresses and MACs, its GW-node,
//! network id, subnet and MAC block. What `admit` produces and `SiteState` records.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::model::{Ipv4Net, MacAddr, NetworkId, ReservationId, Resources, Role, Window};
use crate::pools::MacBlock;

/// One node of an admitted cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAllocation {
    /// Rocks-style host name: `frontend`, `compute-R-N`.
    pub name: String,
    pub role: Role,
    pub pnode: String,
    pub resources: Resources,
    pub ip: Ipv4Addr,
    /// Private NIC first; the frontend's second MAC is its public NIC (as Rocks' virtual frontend).
    pub macs: Vec<MacAddr>,
}

/// The cluster's gateway between its private network and the outside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gateway {
    /// The GW-node: a GW-capable P-node.
    pub pnode: String,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
}

/// An admitted virtual cluster: what `SiteState::apply` records and the deployer builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub reservation: ReservationId,
    pub window: Window,
    pub network_id: NetworkId,
    pub subnet: Ipv4Net,
    pub mac_block: MacBlock,
    pub gateway: Gateway,
    /// Frontend first, then computes by name.
    pub nodes: Vec<NodeAllocation>,
    /// State generation the allocation was computed against; `apply` refuses any other.
    pub generation: u64,
}

impl Allocation {
    /// Node name → P-node name.
    pub fn placement(&self) -> impl Iterator<Item = (&str, &str)> {
        self.nodes
            .iter()
            .map(|n| (n.name.as_str(), n.pnode.as_str()))
    }

    /// Total demand per P-node, in P-node name order.
    pub fn demand_per_pnode(&self) -> BTreeMap<&str, Resources> {
        let mut demand: BTreeMap<&str, Resources> = BTreeMap::new();
        for node in &self.nodes {
            let entry = demand.entry(node.pnode.as_str()).or_default();
            *entry = entry.saturating_add(&node.resources);
        }
        demand
    }
}
