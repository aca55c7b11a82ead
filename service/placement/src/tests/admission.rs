use std::net::Ipv4Addr;

use super::{node, place, placement, request, site, site_with, H};
use crate::{
    admit, IdRange, Ipv4Net, MacBlock, NamingScheme, NetworkKind, NetworkPool, PNodeState, Policy,
    Refusal, RequestError, Resources, Role, Shortage, SiteConfig, Window,
};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn config(policy: Policy) -> SiteConfig {
    SiteConfig {
        policy,
        ..SiteConfig::default()
    }
}

fn shortage(refusal: Refusal) -> (Shortage, u64, u64, Option<i64>) {
    match refusal {
        Refusal::Insufficient {
            shortage,
            needed,
            available,
            earliest_start,
            ..
        } => (shortage, needed, available, earliest_start),
        Refusal::Invalid(e) => panic!("expected a shortage, got {e}"),
    }
}

fn invalid(refusal: Refusal) -> RequestError {
    match refusal {
        Refusal::Invalid(e) => e,
        other => panic!("expected invalid request, got {other}"),
    }
}

#[test]
fn admits_with_rocks_names_addresses_and_macs() {
    let state = site(vec![node("a", 8), node("b", 8), node("c", 8)]);
    let a = admit(&state, &request("vc1", 1, 10, 4), 0).expect("admitted");
    // Spread: frontend on "a" (tie by name), computes round-robin b, c, a, b.
    assert_eq!(
        placement(&a),
        pairs(&[
            ("frontend", "a"),
            ("compute-0-0", "a"),
            ("compute-0-1", "b"),
            ("compute-0-2", "b"),
            ("compute-0-3", "c"),
        ])
    );
    assert_eq!(a.gateway.pnode, "a");
    assert_eq!(
        (a.network_id.kind, a.network_id.id),
        (NetworkKind::Vxlan, 1)
    );
    assert_eq!(a.subnet, Ipv4Net::new(Ipv4Addr::new(10, 128, 0, 0), 24));
    assert_eq!(a.gateway.ip, Ipv4Addr::new(10, 128, 0, 1));
    let ips: Vec<Ipv4Addr> = a.nodes.iter().map(|n| n.ip).collect();
    assert_eq!(
        ips,
        [254, 253, 252, 251, 250]
            .map(|h| Ipv4Addr::new(10, 128, 0, h))
            .to_vec()
    );
    let mut macs: Vec<String> = a
        .nodes
        .iter()
        .flat_map(|n| n.macs.iter().map(|m| m.to_string()))
        .collect();
    macs.push(a.gateway.mac.to_string());
    assert_eq!(a.gateway.mac.to_string(), "02:56:43:00:00:00");
    assert_eq!(
        a.nodes[0].macs.len(),
        2,
        "frontend has a private and a public NIC"
    );
    assert!(macs.iter().all(|m| m.starts_with("02:56:43:")));
    macs.sort();
    macs.dedup();
    assert_eq!(macs.len(), 7);
    assert_eq!(a.mac_block, MacBlock { first: 0, count: 7 });
    assert_eq!(a.nodes[0].role, Role::Frontend);
    assert!(a.nodes[1..]
        .iter()
        .all(|n| n.role == Role::Compute && n.resources == Resources::new(1, 2048, 10)));
}

#[test]
fn rack_per_pnode_naming() {
    let config = SiteConfig {
        naming: NamingScheme::RackPerPNode,
        ..SiteConfig::default()
    };
    let state = site_with(config, vec![node("a", 8), node("b", 8), node("c", 8)]);
    let a = admit(&state, &request("vc1", 1, 10, 4), 0).expect("admitted");
    let names: Vec<&str> = a.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "frontend",
            "compute-0-0",
            "compute-1-0",
            "compute-1-1",
            "compute-2-0"
        ]
    );
}

#[test]
fn spread_prefers_least_used_pnodes() {
    let mut state = site(vec![node("a", 8), node("b", 8), node("c", 8)]);
    place(&mut state, &request("busy", 0, 10, 0)); // frontend on "a"
    let a = admit(&state, &request("vc", 0, 10, 2), 0).expect("admitted");
    assert_eq!(
        placement(&a),
        pairs(&[
            ("frontend", "b"),
            ("compute-0-0", "a"),
            ("compute-0-1", "c")
        ])
    );
}

#[test]
fn pack_fills_the_fullest_pnode_first() {
    let state = site_with(
        config(Policy::Pack),
        vec![node("a", 8), node("b", 8), node("c", 8)],
    );
    let a = admit(&state, &request("vc", 0, 10, 4), 0).expect("admitted");
    assert!(a.placement().all(|(_, p)| p == "a"), "{:?}", placement(&a));
    // a holds 2 + 6: the seventh and eighth computes go to the next P-node by name.
    let b = admit(&state, &request("vc", 0, 10, 8), 0).expect("admitted");
    let on_b: Vec<_> = b.placement().filter(|(_, p)| *p == "b").collect();
    assert_eq!(on_b.len(), 2);
    assert!(b.placement().all(|(_, p)| p != "c"));
}

#[test]
fn pack_still_spreads_over_min_pnodes() {
    let state = site_with(
        config(Policy::Pack),
        vec![node("a", 8), node("b", 8), node("c", 8)],
    );
    let mut r = request("vc", 0, 10, 4);
    r.constraints.min_pnodes = 3;
    let a = admit(&state, &r, 0).expect("admitted");
    let computes = |p: &str| {
        a.nodes
            .iter()
            .filter(|n| n.role == Role::Compute && n.pnode == p)
            .count()
    };
    assert_eq!((computes("a"), computes("b"), computes("c")), (2, 1, 1));
}

#[test]
fn max_per_pnode_caps_computes() {
    let state = site_with(
        config(Policy::Pack),
        vec![node("a", 8), node("b", 8), node("c", 8)],
    );
    let mut r = request("vc", 0, 10, 5);
    r.constraints.max_per_pnode = Some(2);
    let a = admit(&state, &r, 0).expect("admitted");
    let computes = |p: &str| {
        a.nodes
            .iter()
            .filter(|n| n.role == Role::Compute && n.pnode == p)
            .count()
    };
    assert_eq!((computes("a"), computes("b"), computes("c")), (2, 2, 1));
    r.computes = 7;
    assert_eq!(
        invalid(admit(&state, &r, 0).expect_err("refused")),
        RequestError::TooManyNodes {
            requested: 7,
            site_max: 6
        }
    );
}

#[test]
fn required_labels_filter_pnodes() {
    let state = site(vec![
        node("a", 8).with_labels(["ssd"]),
        node("b", 64),
        node("c", 8).with_labels(["ssd", "ib"]),
    ]);
    let mut r = request("vc", 0, 10, 3);
    r.constraints.required_labels = ["ssd".to_string()].into();
    let a = admit(&state, &r, 0).expect("admitted");
    assert!(
        a.placement().all(|(_, p)| p == "a" || p == "c"),
        "{:?}",
        placement(&a)
    );
    r.constraints.required_labels.insert("gpu".into());
    assert_eq!(
        invalid(admit(&state, &r, 0).expect_err("refused")),
        RequestError::NoMatchingPNode(vec!["gpu".into(), "ssd".into()])
    );
}

#[test]
fn gw_node_is_frontends_pnode_or_least_loaded_gw_capable() {
    // Only "a" can hold a frontend; it is not GW-capable.
    let tiny = |name: &str| node(name, 1);
    let big = node("a", 16).gw_capable(false);
    let mut state = site(vec![big, tiny("b"), tiny("c")]);
    let first = place(&mut state, &request("one", 0, 10, 0));
    assert_eq!(
        (first.nodes[0].pnode.as_str(), first.gateway.pnode.as_str()),
        ("a", "b")
    );
    let second = place(&mut state, &request("two", 5, 15, 0));
    assert_eq!(
        second.gateway.pnode, "c",
        "b already serves a concurrent cluster"
    );
    let later = place(&mut state, &request("three", 10, 20, 0));
    assert_eq!(later.gateway.pnode, "b", "\"one\" has ended by then");
}

#[test]
fn gw_capable_pnodes_that_are_down_run_out() {
    let mut state = site(vec![node("a", 16).gw_capable(false), node("b", 1)]);
    state
        .set_pnode_state("b", PNodeState::Down, 0)
        .expect("known");
    let (s, needed, available, earliest) =
        shortage(admit(&state, &request("vc", 0, 10, 1), 0).expect_err("refused"));
    assert_eq!(
        (s, needed, available, earliest),
        (Shortage::GwCapablePNodes, 1, 0, None)
    );
    let no_gw = site(vec![node("a", 16).gw_capable(false)]);
    assert_eq!(
        invalid(admit(&no_gw, &request("vc", 0, 10, 1), 0).expect_err("refused")),
        RequestError::NoGwCapablePNode
    );
}

#[test]
fn cpu_runs_out_and_earliest_start_is_the_next_end() {
    let mut state = site(vec![node("a", 8), node("b", 8)]);
    place(&mut state, &request("A", 0, 10, 10)); // a: 2+5 cpu, b: 5 cpu
    let refusal = admit(&state, &request("B", 5, 15, 6), 0).expect_err("refused");
    assert_eq!(
        shortage(refusal.clone()),
        (Shortage::Cpu, 6, 2, Some(10 * H))
    );
    assert!(refusal.to_string().contains("cpu run out"), "{refusal}");
    // The reported start really is feasible.
    admit(&state, &request("B", 10, 20, 6), 0).expect("feasible at 10h");

    let config = SiteConfig {
        search_horizon_secs: H,
        ..SiteConfig::default()
    };
    let mut short = site_with(config, vec![node("a", 8), node("b", 8)]);
    place(&mut short, &request("A", 0, 10, 10));
    assert_eq!(
        shortage(admit(&short, &request("B", 5, 15, 6), 0).expect_err("refused")).3,
        None
    );
}

#[test]
fn memory_and_disk_run_out() {
    let state = site(vec![node("a", 8), node("b", 8)]); // 32 GiB, 1000 GiB each
    let mut r = request("vc", 0, 10, 4);
    r.compute = Resources::new(1, 16384, 10);
    assert_eq!(
        shortage(admit(&state, &r, 0).expect_err("refused")),
        (Shortage::Memory, 4, 3, None)
    );
    r.compute = Resources::new(1, 1024, 500);
    assert_eq!(
        shortage(admit(&state, &r, 0).expect_err("refused")),
        (Shortage::Disk, 4, 3, None)
    );
}

#[test]
fn pnodes_run_out_when_spread_cannot_be_met() {
    let mut state = site(vec![node("a", 8), node("b", 8)]);
    state
        .set_pnode_state("a", PNodeState::Maintenance, 0)
        .expect("known");
    let mut r = request("vc", 0, 10, 2);
    r.constraints.min_pnodes = 2;
    assert_eq!(
        shortage(admit(&state, &r, 0).expect_err("refused")),
        (Shortage::PNodes, 2, 1, None)
    );
    r.constraints.min_pnodes = 1;
    let a = admit(&state, &r, 0).expect("fits on b");
    assert!(a.placement().all(|(_, p)| p == "b"));
}

#[test]
fn vlan_ids_run_out_and_are_reused_after_the_window() {
    let config = SiteConfig {
        network_pool: NetworkPool::vlan(
            IdRange::new(0, 4095),
            vec![IdRange::new(2, 99), IdRange::new(101, 4094)],
        ),
        ..SiteConfig::default()
    };
    let mut state = site_with(config, vec![node("a", 16), node("b", 16)]);
    let first = place(&mut state, &request("A", 0, 10, 1));
    assert_eq!(
        (first.network_id.kind, first.network_id.id),
        (NetworkKind::Vlan, 100)
    );
    assert_eq!(
        shortage(admit(&state, &request("B", 5, 15, 1), 0).expect_err("refused")),
        (Shortage::NetworkIds, 1, 0, Some(10 * H))
    );
    let after = admit(&state, &request("B", 10, 15, 1), 0).expect("VLAN 100 is free at 10h");
    assert_eq!(after.network_id.id, 100);
}

#[test]
fn subnets_run_out_and_pools_are_unique_among_overlapping_windows() {
    let config = SiteConfig {
        supernet: Ipv4Net::new(Ipv4Addr::new(10, 128, 0, 0), 23),
        ..SiteConfig::default()
    };
    let mut state = site_with(config, vec![node("a", 16), node("b", 16)]);
    let a = place(&mut state, &request("A", 0, 10, 1));
    let b = place(&mut state, &request("B", 5, 15, 1));
    assert_ne!(a.network_id, b.network_id);
    assert!(!a.subnet.overlaps(&b.subnet));
    assert!(!a.mac_block.overlaps(&b.mac_block));
    assert_eq!(
        shortage(admit(&state, &request("C", 6, 9, 1), 0).expect_err("refused")),
        (Shortage::Subnets, 1, 0, Some(10 * H))
    );
    // Back to back with A: everything of A is reused.
    let c = admit(&state, &request("C", 10, 12, 1), 0).expect("A has ended");
    assert_eq!(
        (c.network_id, c.subnet, c.mac_block),
        (a.network_id, a.subnet, a.mac_block)
    );
}

#[test]
fn macs_run_out() {
    let mut state = site(vec![node("a", 16), node("b", 16)]);
    let mut hog = admit(&state, &request("hog", 0, 10, 1), 0).expect("admitted");
    hog.mac_block = MacBlock {
        first: 0,
        count: (crate::MAC_SUFFIXES - 3) as u32,
    };
    state.apply(hog).expect("applied");
    assert_eq!(
        shortage(admit(&state, &request("vc", 5, 15, 1), 0).expect_err("refused")),
        (Shortage::Macs, 1, 0, Some(10 * H))
    );
    admit(&state, &request("vc", 5, 15, 0), 0)
        .expect("three MACs still fit a frontend-only cluster");
}

#[test]
fn ips_run_out_in_a_small_subnet() {
    let state = site(vec![node("a", 16), node("b", 16)]);
    let mut r = request("vc", 0, 10, 5);
    r.prefix_len = Some(29); // 8 addresses: network, GW-node, 5 usable, broadcast
    assert_eq!(
        shortage(admit(&state, &r, 0).expect_err("refused")),
        (Shortage::Ips, 6, 5, None)
    );
    r.computes = 4;
    let a = admit(&state, &r, 0).expect("fits a /29");
    assert!(a
        .nodes
        .iter()
        .all(|n| a.subnet.contains(n.ip) && n.ip != a.gateway.ip));
    assert_eq!(
        a.nodes.last().map(|n| n.ip),
        Some(Ipv4Addr::new(10, 128, 0, 2))
    );
}

#[test]
fn impossible_requests_are_invalid() {
    let mut state = site(vec![node("a", 8), node("b", 8)]);
    place(&mut state, &request("taken", 0, 1, 0));
    let before = serde_json::to_string(&state).expect("serializes");
    let check = |r: &crate::ClusterRequest, now: i64, expected: RequestError| {
        assert_eq!(
            invalid(admit(&state, r, now).expect_err("refused")),
            expected
        );
    };
    let base = request("vc", 2, 10, 2);

    let mut r = base.clone();
    r.compute.cpu = 0;
    check(
        &r,
        0,
        RequestError::ZeroSize {
            role: Role::Compute,
            dimension: crate::Dimension::Cpu,
        },
    );
    r.computes = 0;
    admit(&state, &r, 0).expect("no computes, so their size does not matter");

    let mut r = base.clone();
    r.frontend.memory_mib = 0;
    check(
        &r,
        0,
        RequestError::ZeroSize {
            role: Role::Frontend,
            dimension: crate::Dimension::Memory,
        },
    );

    let mut r = base.clone();
    r.compute.memory_mib = 65536;
    check(
        &r,
        0,
        RequestError::NodeTooLarge {
            role: Role::Compute,
            dimension: crate::Dimension::Memory,
            requested: 65536,
            largest: 32768,
        },
    );

    check(
        &base,
        3 * H,
        RequestError::WindowInPast {
            window: base.window,
            now: 3 * H,
        },
    );
    let mut r = base.clone();
    r.window = Window::new(10 * H, 10 * H);
    check(&r, 0, RequestError::ReversedWindow(r.window));
    r.window = Window::new(10 * H, 2 * H);
    check(&r, 0, RequestError::ReversedWindow(r.window));

    let mut r = base.clone();
    r.computes = 20;
    check(
        &r,
        0,
        RequestError::TooManyNodes {
            requested: 20,
            site_max: 16,
        },
    );

    let mut r = base.clone();
    r.constraints.min_pnodes = 3;
    check(
        &r,
        0,
        RequestError::SpreadExceedsComputes {
            min_pnodes: 3,
            computes: 2,
        },
    );
    r.computes = 3;
    check(
        &r,
        0,
        RequestError::TooFewPNodes {
            min_pnodes: 3,
            matching: 2,
        },
    );

    let mut r = base.clone();
    r.constraints.max_per_pnode = Some(0);
    check(&r, 0, RequestError::ZeroPerPNode { computes: 2 });

    check(
        &request("taken", 2, 10, 1),
        0,
        RequestError::DuplicateReservation("taken".into()),
    );
    check(&request("", 2, 10, 1), 0, RequestError::EmptyReservationId);

    let mut r = base.clone();
    let supernet = state.config().supernet;
    r.prefix_len = Some(8);
    check(
        &r,
        0,
        RequestError::BadPrefixLen {
            prefix_len: 8,
            supernet,
        },
    );
    r.prefix_len = Some(31);
    check(
        &r,
        0,
        RequestError::BadPrefixLen {
            prefix_len: 31,
            supernet,
        },
    );
    // Refusals reserve nothing: admission only reads the state.
    assert_eq!(serde_json::to_string(&state).expect("serializes"), before);
    assert_eq!(state.reservations().count(), 1);
}

#[test]
fn admission_is_deterministic_and_survives_serialization() {
    let mut state = site(vec![node("b", 8), node("a", 8), node("c", 12)]);
    place(&mut state, &request("x", 0, 20, 5));
    let r = request("y", 5, 25, 7);
    let first = admit(&state, &r, 0).expect("admitted");
    assert_eq!(admit(&state, &r, 0).expect("admitted"), first);
    let json = serde_json::to_string(&state).expect("serializes");
    let restored: crate::SiteState = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(restored, state);
    assert_eq!(admit(&restored, &r, 0).expect("admitted"), first);
    let broken = json.replacen("\"name\":\"a\"", "\"name\":\"z\"", 1);
    assert!(
        serde_json::from_str::<crate::SiteState>(&broken).is_err(),
        "unsorted P-nodes are refused"
    );
    let mut orphan: serde_json::Value = serde_json::from_str(&json).expect("json");
    orphan["reservations"] = serde_json::json!({});
    assert!(
        serde_json::from_value::<crate::SiteState>(orphan).is_err(),
        "bookings without their reservation are refused"
    );
    let alloc_json = serde_json::to_string(&first).expect("serializes");
    assert_eq!(
        serde_json::from_str::<crate::Allocation>(&alloc_json).expect("deserializes"),
        first
    );
}

#[test]
fn an_exact_subnet_is_given_or_refused_while_taken() {
    let mut state = site(vec![node("a", 16)]);
    let wanted = Ipv4Net::new(Ipv4Addr::new(10, 130, 0, 0), 24);
    let mut first = request("A", 0, 10, 1);
    first.subnet = Some(wanted);
    assert_eq!(place(&mut state, &first).subnet, wanted);
    // Overlapping in time: refused, with the start at which it is free again.
    let mut second = request("B", 5, 15, 1);
    second.subnet = Some(Ipv4Net::new(Ipv4Addr::new(10, 130, 0, 128), 25));
    match admit(&state, &second, 0) {
        Err(Refusal::Insufficient {
            shortage: Shortage::Subnets,
            earliest_start,
            ..
        }) => assert_eq!(earliest_start, Some(10 * H)),
        other => panic!("unexpected {other:?}"),
    }
    // Outside the supernet (10.128.0.0/9) or misaligned: invalid whatever the calendar holds.
    for bad in [
        Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 24),
        Ipv4Net::new(Ipv4Addr::new(10, 130, 0, 1), 24),
    ] {
        let mut r = request("C", 20, 30, 1);
        r.subnet = Some(bad);
        assert!(matches!(
            admit(&state, &r, 0),
            Err(Refusal::Invalid(RequestError::SubnetOutsideSupernet { .. }))
        ));
    }
}
