//! Admission and lifecycle tests over small hand-built sites.

mod admission;
mod lifecycle;

use crate::{ClusterRequest, PNode, Resources, SiteConfig, SiteState, Window};

/// Hour, in seconds: the unit windows are written in.
pub const H: i64 = 3600;

pub fn node(name: &str, cpu: u32) -> PNode {
    PNode::new(name, Resources::new(cpu, u64::from(cpu) * 4096, 1000)).gw_capable(true)
}

pub fn site(pnodes: Vec<PNode>) -> SiteState {
    site_with(SiteConfig::default(), pnodes)
}

pub fn site_with(config: SiteConfig, pnodes: Vec<PNode>) -> SiteState {
    SiteState::new(config, pnodes).expect("valid site")
}

/// Frontend of 2 cpu / 4 GiB / 20 GiB, computes of 1 cpu / 2 GiB / 10 GiB, window in hours.
pub fn request(id: &str, start_h: i64, end_h: i64, computes: u32) -> ClusterRequest {
    ClusterRequest::new(
        id,
        Window::new(start_h * H, end_h * H),
        Resources::new(2, 4096, 20),
        Resources::new(1, 2048, 10),
        computes,
    )
}

/// Admits at time 0 and applies.
pub fn place(state: &mut SiteState, request: &ClusterRequest) -> crate::Allocation {
    let allocation = crate::admit(state, request, 0).expect("admitted");
    state.apply(allocation.clone()).expect("applied");
    allocation
}

/// P-node of each node, by node name.
pub fn placement(allocation: &crate::Allocation) -> Vec<(String, String)> {
    allocation
        .placement()
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .collect()
}
