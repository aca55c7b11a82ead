//! Property-style test: many random admissions, extensions, releases and P-node state changes
//! from a fixed seed; after every step no P-node is over capacity at any instant, no network
//! id / subnet / MAC / IP is shared by overlapping reservations, and every allocation honours
//! its request. Invariants are recomputed from the allocations, not from the calendars.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use vcds_placement::{
    admit, Allocation, ClusterRequest, IdRange, Ipv4Net, NamingScheme, NetworkPool, PNode,
    PNodeState, Policy, Refusal, Resources, Role, SiteConfig, SiteState, Window,
};

/// SplitMix64: tiny, deterministic, good enough to drive a test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const H: i64 = 3600;
const LABELS: [&str; 3] = ["ssd", "ib", "gpu"];

fn random_site(rng: &mut Rng, policy: Policy) -> SiteState {
    let pnodes = (0..12)
        .map(|i| {
            let cpu = [4, 8, 16, 32][rng.below(4) as usize];
            let capacity = Resources::new(cpu, u64::from(cpu) * 2048, 200 + rng.below(800));
            let labels: Vec<&str> = LABELS.iter().copied().filter(|_| rng.chance(50)).collect();
            PNode::new(format!("p{i:02}"), capacity)
                .with_labels(labels)
                .gw_capable(rng.chance(40))
        })
        .collect();
    let config = SiteConfig {
        // Small pools so that exhaustion happens often.
        network_pool: NetworkPool::vlan(IdRange::new(0, 40), vec![IdRange::new(10, 19)]),
        supernet: Ipv4Net::new(Ipv4Addr::new(10, 128, 0, 0), 21),
        policy,
        naming: if rng.chance(50) {
            NamingScheme::SingleRack
        } else {
            NamingScheme::RackPerPNode
        },
        max_probes: 16,
        ..SiteConfig::default()
    };
    SiteState::new(config, pnodes).expect("valid site")
}

fn random_request(rng: &mut Rng, id: usize, now: i64) -> ClusterRequest {
    let start = now + rng.below(100) as i64 * H;
    let window = Window::new(start, start + (1 + rng.below(60) as i64) * H);
    let mut request = ClusterRequest::new(
        format!("vc{id:04}"),
        window,
        Resources::new(
            1 + rng.below(4) as u32,
            1024 * (1 + rng.below(8)),
            rng.below(100),
        ),
        Resources::new(
            1 + rng.below(4) as u32,
            1024 * (1 + rng.below(8)),
            rng.below(100),
        ),
        rng.below(10) as u32,
    );
    if rng.chance(30) {
        request.constraints.min_pnodes = 1 + rng.below(u64::from(request.computes.max(1))) as u32;
    }
    if rng.chance(30) {
        request.constraints.max_per_pnode = Some(1 + rng.below(3) as u32);
    }
    if rng.chance(20) {
        request
            .constraints
            .required_labels
            .insert(LABELS[rng.below(3) as usize].to_string());
    }
    request.prefix_len = Some(24 + rng.below(5) as u8);
    request
}

fn macs(a: &Allocation) -> BTreeSet<[u8; 6]> {
    a.nodes
        .iter()
        .flat_map(|n| n.macs.iter().map(|m| m.0))
        .chain([a.gateway.mac.0])
        .collect()
}

fn check_invariants(state: &SiteState) {
    let all: Vec<&Allocation> = state.reservations().collect();
    let demands: Vec<_> = all
        .iter()
        .map(|a| (a.window, a.demand_per_pnode()))
        .collect();
    // Capacity at every instant where usage can peak (reservation starts).
    for pnode in state.pnodes() {
        let on_pnode: Vec<(Window, Resources)> = demands
            .iter()
            .filter_map(|(w, d)| d.get(pnode.name.as_str()).map(|d| (*w, *d)))
            .collect();
        for (instant, _) in &on_pnode {
            let t = instant.start;
            let used = on_pnode
                .iter()
                .filter(|(w, _)| w.start <= t && t < w.end)
                .fold(Resources::ZERO, |acc, (_, d)| acc.saturating_add(d));
            assert!(
                used.fits_within(&pnode.capacity),
                "{} over capacity at {t}: {used} > {}",
                pnode.name,
                pnode.capacity
            );
        }
        let calendar = state.calendar(&pnode.name).map_or(0, |c| c.len());
        assert_eq!(
            calendar,
            on_pnode.len(),
            "calendar of {} matches allocations",
            pnode.name
        );
    }
    for a in &all {
        let ips: BTreeSet<Ipv4Addr> = a.nodes.iter().map(|n| n.ip).chain([a.gateway.ip]).collect();
        assert_eq!(
            ips.len(),
            a.nodes.len() + 1,
            "{} has duplicate IPs",
            a.reservation
        );
        assert!(ips
            .iter()
            .all(|ip| a.subnet.contains(*ip) && *ip != a.subnet.addr));
        assert!(a
            .nodes
            .iter()
            .flat_map(|n| &n.macs)
            .all(|m| m.is_locally_administered() && m.is_unicast()));
        assert_eq!(
            macs(a).len(),
            a.nodes.len() + 2,
            "{} has duplicate MACs",
            a.reservation
        );
        assert!(![0, 1, 4095].contains(&a.network_id.id) && !(10..=19).contains(&a.network_id.id));
        let gw = state.pnode(&a.gateway.pnode).expect("GW-node exists");
        assert!(
            gw.gw_capable,
            "{}: GW-node {} is not GW-capable",
            a.reservation, gw.name
        );
    }
    for (i, a) in all.iter().enumerate() {
        for b in all
            .iter()
            .skip(i + 1)
            .filter(|b| b.window.overlaps(&a.window))
        {
            let pair = format!("{} / {}", a.reservation, b.reservation);
            assert_ne!(a.network_id, b.network_id, "network id shared by {pair}");
            assert!(!a.subnet.overlaps(&b.subnet), "subnet shared by {pair}");
            assert!(macs(a).is_disjoint(&macs(b)), "MAC shared by {pair}");
        }
    }
}

fn check_allocation(state: &SiteState, request: &ClusterRequest, a: &Allocation) {
    let computes: Vec<_> = a.nodes.iter().filter(|n| n.role == Role::Compute).collect();
    assert_eq!(computes.len(), request.computes as usize);
    assert_eq!(
        a.nodes.iter().filter(|n| n.role == Role::Frontend).count(),
        1
    );
    let names: BTreeSet<&str> = a.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names.len(), a.nodes.len(), "host names are unique");
    let used: BTreeSet<&str> = computes.iter().map(|n| n.pnode.as_str()).collect();
    let constraints = &request.constraints;
    assert!(used.len() as u32 >= constraints.min_pnodes.min(request.computes));
    if let Some(max) = constraints.max_per_pnode {
        for p in &used {
            assert!(computes.iter().filter(|n| n.pnode == *p).count() as u32 <= max);
        }
    }
    for n in &a.nodes {
        let p = state.pnode(&n.pnode).expect("P-node exists");
        assert_eq!(p.state, PNodeState::Up, "placed on a P-node that is not up");
        assert!(p.has_labels(&constraints.required_labels));
    }
}

fn run(seed: u64, policy: Policy, steps: usize) -> (usize, usize) {
    let mut rng = Rng(seed);
    let mut state = random_site(&mut rng, policy);
    let mut now = 0i64;
    let (mut admitted, mut refused) = (0, 0);
    for step in 0..steps {
        match rng.below(100) {
            0..=59 => {
                let request = random_request(&mut rng, step, now);
                match admit(&state, &request, now) {
                    Ok(a) => {
                        check_allocation(&state, &request, &a);
                        state.apply(a).expect("fresh allocation applies");
                        admitted += 1;
                    }
                    Err(Refusal::Insufficient {
                        earliest_start: Some(t),
                        ..
                    }) => {
                        let mut later = request.clone();
                        later.window = request.window.shifted_to(t);
                        let a = admit(&state, &later, now).expect("earliest start is feasible");
                        check_allocation(&state, &later, &a);
                        refused += 1;
                    }
                    Err(_) => refused += 1,
                }
            }
            60..=74 => {
                let ids: Vec<String> = state
                    .reservations()
                    .map(|r| r.reservation.clone())
                    .collect();
                if let Some(id) = ids.get(rng.below(ids.len() as u64) as usize) {
                    let before = state.clone();
                    let new_end = state.reservation(id).map_or(0, |r| r.window.end)
                        + rng.below(40) as i64 * H;
                    if state.extend(id, new_end, now).is_err() {
                        assert_eq!(state, before, "failed extend left the state unchanged");
                    }
                }
            }
            75..=84 => {
                let ids: Vec<String> = state
                    .reservations()
                    .map(|r| r.reservation.clone())
                    .collect();
                if let Some(id) = ids.get(rng.below(ids.len() as u64) as usize) {
                    state.release(id).expect("known reservation");
                }
            }
            85..=89 => {
                let names: Vec<String> = state.pnodes().map(|p| p.name.clone()).collect();
                let name = &names[rng.below(names.len() as u64) as usize];
                let new_state = [
                    PNodeState::Up,
                    PNodeState::Up,
                    PNodeState::Down,
                    PNodeState::Maintenance,
                ][rng.below(4) as usize];
                let affected = state
                    .set_pnode_state(name, new_state, now)
                    .expect("known P-node");
                assert!(affected
                    .iter()
                    .all(|a| a.window.end > now && (a.gateway || !a.nodes.is_empty())));
            }
            _ => {
                now += rng.below(20) as i64 * H;
                for id in state.expire(now) {
                    assert!(state.reservation(&id).is_none());
                }
            }
        }
        check_invariants(&state);
    }
    let json = serde_json::to_string(&state).expect("serializes");
    assert_eq!(
        serde_json::from_str::<SiteState>(&json).expect("deserializes"),
        state
    );
    (admitted, refused)
}

#[test]
fn random_operations_keep_every_invariant_spread() {
    for seed in 1..=4 {
        let (admitted, refused) = run(seed, Policy::Spread, 1000);
        // The workload must exercise both paths, or the test proves nothing.
        assert!(
            admitted > 100 && refused > 20,
            "seed {seed}: {admitted} admitted, {refused} refused"
        );
    }
}

#[test]
fn random_operations_keep_every_invariant_pack() {
    for seed in 11..=14 {
        let (admitted, refused) = run(seed, Policy::Pack, 1000);
        assert!(
            admitted > 100 && refused > 20,
            "seed {seed}: {admitted} admitted, {refused} refused"
        );
    }
}
