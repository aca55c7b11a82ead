//! Admission: request → allocation (placement + network) or a precise refusal. Pure: reads the
//! state, never changes it.
//!
//! Placement is filter → rank (OpenNebula / Nova): P-nodes that are up and carry the required
//! labels, with their free capacity over the window (capacity minus peak usage); the frontend
//! goes first on the best-ranked P-node it fits, then computes are distributed by the policy.
//! Addressing inside the cluster subnet: network+1 is the GW-node, the last usable address
//! (.254 in a /24) is the frontend, computes count down from the one below it — the way Rocks'
//! insert-ethers hands out compute addresses from the top of the private network.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::allocation::{Allocation, Gateway, NodeAllocation};
use crate::error::{Refusal, RequestError, Shortage};
use crate::model::{
    Dimension, Ipv4Net, NamingScheme, NetworkId, PNodeState, Policy, ReservationId, Resources,
    Role, Timestamp, Window,
};
use crate::pools::{allocate_macs, allocate_network_id, allocate_subnet, MacBlock};
use crate::state::SiteState;

/// Placement constraints of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraints {
    /// Spread the computes over at least this many P-nodes (0 and 1 mean no constraint).
    pub min_pnodes: u32,
    /// At most this many computes on one P-node (the frontend is not counted).
    pub max_per_pnode: Option<u32>,
    /// Every P-node hosting a node of the cluster must carry all these labels.
    pub required_labels: BTreeSet<String>,
}

/// A virtual cluster request: a frontend and `computes` identical compute nodes for `window`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRequest {
    pub reservation: ReservationId,
    pub window: Window,
    pub frontend: Resources,
    pub compute: Resources,
    pub computes: u32,
    pub constraints: Constraints,
    /// Prefix length of the cluster subnet; the site default when `None`.
    pub prefix_len: Option<u8>,
    /// Exactly this subnet (inside the site's supernet) instead of any free one of
    /// `prefix_len`; refused as a subnet shortage while a concurrent cluster overlaps it.
    #[serde(default)]
    pub subnet: Option<Ipv4Net>,
}

impl ClusterRequest {
    pub fn new(
        reservation: impl Into<ReservationId>,
        window: Window,
        frontend: Resources,
        compute: Resources,
        computes: u32,
    ) -> Self {
        ClusterRequest {
            reservation: reservation.into(),
            window,
            frontend,
            compute,
            computes,
            constraints: Constraints::default(),
            prefix_len: None,
            subnet: None,
        }
    }
}

/// Admits `request` against `state` at time `now`. Pure and deterministic: the same state,
/// request and `now` give the same answer, so a store can re-run it inside a transaction.
pub fn admit(
    state: &SiteState,
    request: &ClusterRequest,
    now: Timestamp,
) -> Result<Allocation, Refusal> {
    let planner = Planner::new(state, request, now)?;
    planner.attempt(request.window).map_err(|shortfall| {
        // Only on failure: is the request impossible on this site whatever the calendar holds?
        // A success proves it possible, so the common path skips this scan.
        if let Err(e) = planner.check_site() {
            return e.into();
        }
        Refusal::Insufficient {
            shortage: shortfall.shortage,
            window: request.window,
            needed: shortfall.needed,
            available: shortfall.available,
            earliest_start: planner.earliest_start(),
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shortfall {
    shortage: Shortage,
    needed: u64,
    available: u64,
}

impl Shortfall {
    /// One more was needed and none was left.
    fn exhausted(shortage: Shortage) -> Self {
        Shortfall {
            shortage,
            needed: 1,
            available: 0,
        }
    }
}

/// Checks whether `n` nodes of `shape` fit into `free`, at most `per_node` on each, over at
/// least `min_pnodes` of them. On failure names the first resource (cpu, memory, disk, then
/// P-nodes) whose cumulative filter leaves too little room.
fn shortfall(
    free: &[Resources],
    shape: &Resources,
    n: u64,
    per_node: u64,
    min_pnodes: u64,
) -> Option<Shortfall> {
    // room[i]: nodes that fit counting dimensions ALL[..=i], in one pass over the P-nodes.
    let mut room = [0u64; 3];
    let mut pnodes = 0u64;
    for f in free {
        let mut fit = u64::MAX;
        for (i, dimension) in Dimension::ALL.iter().enumerate() {
            if let Some(count) = f.get(*dimension).checked_div(shape.get(*dimension)) {
                fit = fit.min(count);
            }
            room[i] = room[i].saturating_add(fit.min(per_node));
        }
        pnodes += u64::from(fit > 0);
    }
    if let Some((i, &available)) = room.iter().enumerate().find(|(_, r)| **r < n) {
        return Some(Shortfall {
            shortage: Dimension::ALL[i].into(),
            needed: n,
            available,
        });
    }
    (pnodes < min_pnodes).then_some(Shortfall {
        shortage: Shortage::PNodes,
        needed: min_pnodes,
        available: pnodes,
    })
}

/// Share of free capacity in parts per million, summed over dimensions: the rank key.
fn free_score(free: &Resources, capacity: &Resources) -> u64 {
    Dimension::ALL
        .iter()
        .filter(|d| capacity.get(**d) > 0)
        .map(|d| {
            let (free, capacity) = (free.get(*d), capacity.get(*d));
            // u128 only when u64 would overflow: 128-bit division is slow and this runs per P-node.
            free.checked_mul(1_000_000).map_or_else(
                || {
                    u64::try_from(u128::from(free) * 1_000_000 / u128::from(capacity))
                        .unwrap_or(u64::MAX)
                },
                |scaled| scaled / capacity,
            )
        })
        .fold(0u64, u64::saturating_add)
}

/// Sort key: pack prefers the least free P-node, spread the most free; ties by P-node name
/// (`index` follows name order).
fn rank_key(policy: Policy, score: u64, index: usize) -> (u64, usize) {
    match policy {
        Policy::Pack => (score, index),
        Policy::Spread => (u64::MAX - score, index),
    }
}

/// Validated request plus the P-nodes it may use.
struct Planner<'a> {
    state: &'a SiteState,
    request: &'a ClusterRequest,
    /// Indices (name order) of P-nodes that are up and carry the required labels.
    eligible: Vec<usize>,
    prefix_len: u8,
    per_node: u64,
    min_pnodes: u64,
}

impl<'a> Planner<'a> {
    fn new(
        state: &'a SiteState,
        request: &'a ClusterRequest,
        now: Timestamp,
    ) -> Result<Self, Refusal> {
        let config = state.config();
        let constraints = &request.constraints;
        let window = request.window;
        if request.reservation.is_empty() {
            return Err(RequestError::EmptyReservationId.into());
        }
        if state.reservation(&request.reservation).is_some() {
            return Err(RequestError::DuplicateReservation(request.reservation.clone()).into());
        }
        if window.end <= window.start {
            return Err(RequestError::ReversedWindow(window).into());
        }
        if window.start < now {
            return Err(RequestError::WindowInPast { window, now }.into());
        }
        let mut shapes = vec![(Role::Frontend, &request.frontend)];
        if request.computes > 0 {
            shapes.push((Role::Compute, &request.compute));
        }
        for (role, shape) in &shapes {
            // A node needs a core and memory to boot; disk may be 0 (diskless, PXE-booted).
            for dimension in [Dimension::Cpu, Dimension::Memory] {
                if shape.get(dimension) == 0 {
                    return Err(RequestError::ZeroSize {
                        role: *role,
                        dimension,
                    }
                    .into());
                }
            }
        }
        let computes = request.computes;
        if constraints.min_pnodes > computes.max(1) {
            return Err(RequestError::SpreadExceedsComputes {
                min_pnodes: constraints.min_pnodes,
                computes,
            }
            .into());
        }
        if constraints.max_per_pnode == Some(0) && computes > 0 {
            return Err(RequestError::ZeroPerPNode { computes }.into());
        }
        let prefix_len = match request.subnet {
            Some(subnet) => {
                let inside = subnet.is_aligned()
                    && config.supernet.can_hold(subnet.prefix_len)
                    && config.supernet.contains(Ipv4Addr::from(subnet.first()))
                    && config.supernet.contains(Ipv4Addr::from(subnet.last()));
                if !inside {
                    return Err(RequestError::SubnetOutsideSupernet {
                        subnet,
                        supernet: config.supernet,
                    }
                    .into());
                }
                subnet.prefix_len
            }
            None => request.prefix_len.unwrap_or(config.default_prefix_len),
        };
        if !config.supernet.can_hold(prefix_len) {
            return Err(RequestError::BadPrefixLen {
                prefix_len,
                supernet: config.supernet,
            }
            .into());
        }
        let per_node = constraints.max_per_pnode.map_or(u64::MAX, u64::from);
        let min_pnodes = u64::from(constraints.min_pnodes);

        // Usable addresses minus network, broadcast and the GW-node.
        let hosts = Ipv4Net::new(Ipv4Addr::UNSPECIFIED, prefix_len).size() - 3;
        let nodes = u64::from(computes) + 1;
        if nodes > hosts {
            return Err(Refusal::Insufficient {
                shortage: Shortage::Ips,
                window,
                needed: nodes,
                available: hosts,
                earliest_start: None,
            });
        }
        let eligible = state
            .pnodes()
            .enumerate()
            .filter(|(_, p)| {
                p.state == PNodeState::Up && p.has_labels(&constraints.required_labels)
            })
            .map(|(i, _)| i)
            .collect();
        Ok(Planner {
            state,
            request,
            eligible,
            prefix_len,
            per_node,
            min_pnodes,
        })
    }

    /// Refuses requests the site could not hold even empty and with every P-node up.
    fn check_site(&self) -> Result<(), RequestError> {
        let (state, request, per_node, min_pnodes) =
            (self.state, self.request, self.per_node, self.min_pnodes);
        let labels = &request.constraints.required_labels;
        let capacities: Vec<Resources> = state
            .pnodes()
            .filter(|p| p.has_labels(labels))
            .map(|p| p.capacity)
            .collect();
        if capacities.is_empty() {
            return Err(RequestError::NoMatchingPNode(
                labels.iter().cloned().collect(),
            ));
        }
        let too_large = |role: Role, shape: &Resources| {
            shortfall(&capacities, shape, 1, 1, 0).map(|s| {
                // One node, no spread: only a resource can be short.
                let dimension = s.shortage.dimension().unwrap_or(Dimension::Cpu);
                RequestError::NodeTooLarge {
                    role,
                    dimension,
                    requested: shape.get(dimension),
                    largest: capacities
                        .iter()
                        .map(|c| c.get(dimension))
                        .max()
                        .unwrap_or(0),
                }
            })
        };
        if let Some(e) = too_large(Role::Frontend, &request.frontend) {
            return Err(e);
        }
        let computes = u64::from(request.computes);
        if computes > 0 {
            if let Some(e) = too_large(Role::Compute, &request.compute) {
                return Err(e);
            }
            match shortfall(
                &capacities,
                &request.compute,
                computes,
                per_node,
                min_pnodes,
            ) {
                Some(s) if s.shortage == Shortage::PNodes => {
                    return Err(RequestError::TooFewPNodes {
                        min_pnodes,
                        matching: s.available,
                    })
                }
                Some(s) => {
                    return Err(RequestError::TooManyNodes {
                        requested: computes,
                        site_max: s.available,
                    })
                }
                None => {}
            }
        }
        if !state.pnodes().any(|p| p.gw_capable) {
            return Err(RequestError::NoGwCapablePNode);
        }
        Ok(())
    }

    /// Places the request in `window` (same request, possibly shifted in time).
    fn attempt(&self, window: Window) -> Result<Allocation, Shortfall> {
        let state = self.state;
        let request = self.request;
        let policy = state.config().policy;
        let mut scratch = Vec::new();
        let mut free = Vec::with_capacity(self.eligible.len());
        let mut scores = Vec::with_capacity(self.eligible.len());
        for (p, calendar) in self.eligible.iter().filter_map(|&i| state.pnode_entry(i)) {
            let f = p
                .capacity
                .saturating_sub(&calendar.peak(window, &mut scratch));
            scores.push(free_score(&f, &p.capacity));
            free.push(f);
        }

        let frontend_at = (0..free.len())
            .filter(|&k| request.frontend.fits_within(&free[k]))
            .min_by_key(|&k| rank_key(policy, scores[k], k))
            .ok_or_else(|| {
                shortfall(&free, &request.frontend, 1, 1, 0)
                    .unwrap_or(Shortfall::exhausted(Shortage::Cpu))
            })?;
        free[frontend_at] = free[frontend_at].saturating_sub(&request.frontend);
        scores[frontend_at] = self.score(frontend_at, &free[frontend_at]);

        let computes = self.distribute(&free, &scores, policy)?;

        let concurrent: Vec<&Allocation> = state
            .reservations()
            .filter(|r| r.window.overlaps(&window))
            .collect();
        let config = state.config();
        let network_id = allocate_network_id(
            &config.network_pool,
            concurrent.iter().map(|r| r.network_id.id),
        )
        .ok_or(Shortfall::exhausted(Shortage::NetworkIds))?;
        let subnet = match request.subnet {
            Some(wanted) => (config.overlapping_subnets
                || !concurrent.iter().any(|r| r.subnet.overlaps(&wanted)))
            .then_some(wanted),
            None => allocate_subnet(
                &config.supernet,
                self.prefix_len,
                concurrent.iter().map(|r| &r.subnet),
            ),
        }
        .ok_or(Shortfall::exhausted(Shortage::Subnets))?;
        // One MAC for the GW-node port, two for the frontend, one per compute.
        let mac_block = allocate_macs(
            request.computes.saturating_add(3),
            concurrent.iter().map(|r| &r.mac_block),
        )
        .ok_or(Shortfall::exhausted(Shortage::Macs))?;
        let frontend_pnode = self.eligible[frontend_at];
        let gw_pnode = self.choose_gateway(frontend_pnode, &concurrent)?;

        Ok(self.build(
            window,
            network_id,
            subnet,
            mac_block,
            frontend_pnode,
            gw_pnode,
            &computes,
        ))
    }

    fn score(&self, k: usize, free: &Resources) -> u64 {
        self.state
            .pnode_entry(self.eligible[k])
            .map_or(0, |(p, _)| free_score(free, &p.capacity))
    }

    /// Computes per P-node index (name order) as `(pnode index, count)`.
    fn distribute(
        &self,
        free: &[Resources],
        scores: &[u64],
        policy: Policy,
    ) -> Result<Vec<(usize, u64)>, Shortfall> {
        let n = u64::from(self.request.computes);
        if n == 0 {
            return Ok(Vec::new());
        }
        let shape = &self.request.compute;
        let mut candidates: Vec<((u64, usize), usize, u64)> = free
            .iter()
            .enumerate()
            .map(|(k, f)| (k, f.count_fitting(shape).min(self.per_node)))
            .filter(|&(_, slots)| slots > 0)
            .map(|(k, slots)| (rank_key(policy, scores[k], k), k, slots))
            .collect();
        let room = candidates
            .iter()
            .fold(0u64, |acc, c| acc.saturating_add(c.2));
        if room < n || (candidates.len() as u64) < self.min_pnodes {
            // Failure path only: the cumulative per-resource diagnosis costs more passes.
            return Err(shortfall(free, shape, n, self.per_node, self.min_pnodes)
                .unwrap_or(Shortfall::exhausted(Shortage::PNodes)));
        }
        // Every candidate holds at least one compute, so neither policy goes past the best n:
        // select them in O(P) instead of sorting every P-node.
        let best = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(candidates.len());
        if best < candidates.len() {
            candidates.select_nth_unstable(best);
            candidates.truncate(best);
        }
        candidates.sort_unstable();
        let mut counts = vec![0u64; candidates.len()];
        let mut left = n;
        match policy {
            Policy::Pack => {
                // Fill the best-ranked P-node, but hold back one compute for each further
                // P-node the spread constraint still needs.
                let mut used = 0u64;
                for (count, &(_, _, slots)) in counts.iter_mut().zip(&candidates) {
                    if left == 0 {
                        break;
                    }
                    let holdback = self.min_pnodes.saturating_sub(used + 1);
                    *count = slots.min(left.saturating_sub(holdback));
                    left -= *count;
                    used += u64::from(*count > 0);
                }
            }
            Policy::Spread => {
                // Round robin, one compute per P-node per round, best-ranked first.
                while left > 0 {
                    for (count, &(_, _, slots)) in counts.iter_mut().zip(&candidates) {
                        if left == 0 {
                            break;
                        }
                        if *count < slots {
                            *count += 1;
                            left -= 1;
                        }
                    }
                }
            }
        }
        let mut placed: Vec<(usize, u64)> = candidates
            .iter()
            .zip(counts)
            .filter(|&(_, count)| count > 0)
            .map(|(&(_, k, _), count)| (self.eligible[k], count))
            .collect();
        placed.sort_unstable();
        Ok(placed)
    }

    /// The GW-node: the frontend's P-node when GW-capable (the frontend is the cluster's public
    /// face), else the up GW-capable P-node serving fewest concurrent clusters, ties by name.
    fn choose_gateway(
        &self,
        frontend_pnode: usize,
        concurrent: &[&Allocation],
    ) -> Result<usize, Shortfall> {
        let state = self.state;
        if state
            .pnode_entry(frontend_pnode)
            .is_some_and(|(p, _)| p.gw_capable)
        {
            return Ok(frontend_pnode);
        }
        let mut load: BTreeMap<&str, usize> = BTreeMap::new();
        for r in concurrent {
            *load.entry(r.gateway.pnode.as_str()).or_default() += 1;
        }
        state
            .pnodes()
            .enumerate()
            .filter(|(_, p)| p.gw_capable && p.state == PNodeState::Up)
            .min_by_key(|(i, p)| (load.get(p.name.as_str()).copied().unwrap_or(0), *i))
            .map(|(i, _)| i)
            .ok_or(Shortfall::exhausted(Shortage::GwCapablePNodes))
    }

    /// Names, addresses and MACs for a successful placement.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        window: Window,
        network_id: NetworkId,
        subnet: Ipv4Net,
        mac_block: MacBlock,
        frontend_pnode: usize,
        gw_pnode: usize,
        computes: &[(usize, u64)],
    ) -> Allocation {
        let state = self.state;
        let request = self.request;
        let prefix = state.config().mac_prefix;
        let name_of = |i: usize| {
            state
                .pnode_entry(i)
                .map(|(p, _)| p.name.clone())
                .unwrap_or_default()
        };
        let top = subnet.last();
        let mut nodes = vec![NodeAllocation {
            name: "frontend".to_string(),
            role: Role::Frontend,
            pnode: name_of(frontend_pnode),
            resources: request.frontend,
            ip: Ipv4Addr::from(top - 1),
            macs: vec![mac_block.mac(prefix, 1), mac_block.mac(prefix, 2)],
        }];
        let mut index: u32 = 0;
        for (rack, &(pnode, count)) in computes.iter().enumerate() {
            for rank in 0..count {
                let name = match state.config().naming {
                    NamingScheme::SingleRack => format!("compute-0-{index}"),
                    NamingScheme::RackPerPNode => format!("compute-{rack}-{rank}"),
                };
                nodes.push(NodeAllocation {
                    name,
                    role: Role::Compute,
                    pnode: name_of(pnode),
                    resources: request.compute,
                    // Admission checked the subnet holds every node, so this stays above .1.
                    ip: Ipv4Addr::from(top - 2 - index),
                    macs: vec![mac_block.mac(prefix, 3 + index)],
                });
                index += 1;
            }
        }
        Allocation {
            reservation: request.reservation.clone(),
            window,
            network_id,
            subnet,
            mac_block,
            gateway: Gateway {
                pnode: name_of(gw_pnode),
                ip: Ipv4Addr::from(subnet.first() + 1),
                mac: mac_block.mac(prefix, 0),
            },
            nodes,
            generation: state.generation(),
        }
    }

    /// Earliest start after the requested one, within the horizon, at which the request fits.
    /// Only reservation ends can turn an infeasible start feasible (moving a window later
    /// otherwise only adds overlap), so those are the candidates, tried in order.
    fn earliest_start(&self) -> Option<Timestamp> {
        let config = self.state.config();
        let window = self.request.window;
        let limit = window.start.saturating_add(config.search_horizon_secs);
        let mut ends: Vec<Timestamp> = self
            .state
            .reservations()
            .map(|r| r.window.end)
            .filter(|&end| end > window.start && end <= limit)
            .collect();
        ends.sort_unstable();
        ends.dedup();
        ends.into_iter()
            .take(config.max_probes)
            .find(|&start| self.attempt(window.shifted_to(start)).is_ok())
    }
}
