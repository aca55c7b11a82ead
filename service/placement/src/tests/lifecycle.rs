use std::net::Ipv4Addr;

use super::{node, place, request, site, site_with, H};
use crate::{
    admit, ApplyError, ConfigError, IdRange, Ipv4Net, LifecycleError, NetworkPool, PNodeState,
    Refusal, Shortage, SiteConfig, SiteState,
};

/// Runs `op`, which must fail, and checks the state is exactly as before (also as persisted).
fn fails_unchanged<T: std::fmt::Debug, E>(
    state: &mut SiteState,
    op: impl FnOnce(&mut SiteState) -> Result<T, E>,
) -> E {
    let before = state.clone();
    let json = serde_json::to_string(&before).expect("serializes");
    let err = op(state).expect_err("operation must fail");
    assert_eq!(*state, before);
    assert_eq!(serde_json::to_string(state).expect("serializes"), json);
    err
}

#[test]
fn apply_records_bookings_and_refuses_stale_allocations() {
    let mut state = site(vec![node("a", 8), node("b", 8)]);
    let stale = admit(&state, &request("B", 0, 10, 1), 0).expect("admitted");
    let a = place(&mut state, &request("A", 0, 10, 3));
    assert_eq!(state.generation(), 1);
    assert_eq!(state.booking_count(), 2);
    assert_eq!(state.reservation("A"), Some(&a));
    let demand_on_a: u32 = state
        .calendar("a")
        .map_or(0, |c| c.bookings().map(|b| b.demand.cpu).sum());
    let expected: u32 = a
        .nodes
        .iter()
        .filter(|n| n.pnode == "a")
        .map(|n| n.resources.cpu)
        .sum();
    assert_eq!(demand_on_a, expected);

    let err = fails_unchanged(&mut state, |s| s.apply(stale));
    assert_eq!(
        err,
        ApplyError::Stale {
            admitted_at: 0,
            current: 1
        }
    );

    let mut forged = admit(&state, &request("C", 0, 10, 1), 0).expect("admitted");
    forged.nodes[1].pnode = "nowhere".into();
    let err = fails_unchanged(&mut state, |s| s.apply(forged));
    assert_eq!(err, ApplyError::UnknownPNode("nowhere".into()));
}

#[test]
fn release_frees_capacity_and_ids() {
    let mut state = site(vec![node("a", 8)]);
    let a = place(&mut state, &request("A", 0, 10, 6)); // 2 + 6 cpu: full
    let refusal = admit(&state, &request("B", 0, 10, 1), 0).expect_err("refused");
    assert!(
        matches!(
            refusal,
            Refusal::Insufficient {
                shortage: Shortage::Cpu,
                ..
            }
        ),
        "{refusal}"
    );
    assert_eq!(state.release("A").expect("released"), a);
    assert_eq!(state.booking_count(), 0);
    let b = admit(&state, &request("B", 0, 10, 1), 0).expect("room again");
    assert_eq!((b.network_id, b.subnet), (a.network_id, a.subnet));
    let err = fails_unchanged(&mut state, |s| s.release("A"));
    assert_eq!(err, LifecycleError::UnknownReservation("A".into()));
}

#[test]
fn expire_releases_reservations_at_their_end() {
    let mut state = site(vec![node("a", 8), node("b", 8)]);
    place(&mut state, &request("A", 0, 10, 1));
    place(&mut state, &request("B", 0, 20, 1));
    assert_eq!(state.expire(9 * H), Vec::<String>::new());
    assert_eq!(state.expire(10 * H), vec!["A".to_string()]);
    assert!(state.reservation("A").is_none() && state.reservation("B").is_some());
    assert!(state.pnodes().all(|p| state
        .calendar(&p.name)
        .is_some_and(|c| c.bookings().all(|b| b.reservation == "B"))));
}

#[test]
fn extend_grows_the_window_when_capacity_allows() {
    let mut state = site(vec![node("a", 8), node("b", 8)]);
    place(&mut state, &request("A", 0, 10, 4));
    state
        .extend("A", 20 * H, 5 * H)
        .expect("nothing in the way");
    assert_eq!(state.reservation("A").map(|r| r.window.end), Some(20 * H));
    assert!(state
        .calendar("a")
        .is_some_and(|c| c.bookings().all(|b| b.window.end == 20 * H)));
    // The extension is real: a later full-site request now collides with it.
    let refusal = admit(&state, &request("B", 15, 25, 11), 0).expect_err("refused");
    assert!(
        matches!(refusal, Refusal::Insufficient { shortage: Shortage::Cpu, earliest_start: Some(t), .. } if t == 20 * H)
    );
}

#[test]
fn extend_refusal_names_the_conflicting_reservation() {
    let mut state = site(vec![node("a", 8)]);
    place(&mut state, &request("A", 0, 10, 2)); // 4 cpu
    place(&mut state, &request("B", 10, 20, 3)); // 5 cpu
    let err = fails_unchanged(&mut state, |s| s.extend("A", 15 * H, 0));
    assert_eq!(
        err,
        LifecycleError::Conflict {
            reservation: "A".into(),
            conflicting: "B".into(),
            shortage: Shortage::Cpu,
            pnode: Some("a".into()),
        }
    );
    assert!(err.to_string().contains("\"B\""), "{err}");
}

#[test]
fn extend_refusal_for_a_network_id_held_by_the_next_reservation() {
    let config = SiteConfig {
        network_pool: NetworkPool::vlan(IdRange::new(100, 100), Vec::new()),
        supernet: Ipv4Net::new(Ipv4Addr::new(10, 128, 0, 0), 16),
        ..SiteConfig::default()
    };
    let mut state = site_with(config, vec![node("a", 32), node("b", 32)]);
    place(&mut state, &request("A", 0, 10, 1));
    place(&mut state, &request("B", 10, 20, 1));
    let err = fails_unchanged(&mut state, |s| s.extend("A", 11 * H, 0));
    assert!(matches!(
        err,
        LifecycleError::Conflict { ref conflicting, shortage: Shortage::NetworkIds, pnode: None, .. } if conflicting == "B"
    ));
}

#[test]
fn extend_rejects_bad_input() {
    let mut state = site(vec![node("a", 8), node("b", 8)]);
    place(&mut state, &request("A", 0, 10, 1));
    let err = fails_unchanged(&mut state, |s| s.extend("A", 10 * H, 0));
    assert_eq!(
        err,
        LifecycleError::NotLater {
            reservation: "A".into(),
            end: 10 * H,
            new_end: 10 * H
        }
    );
    let err = fails_unchanged(&mut state, |s| s.extend("A", 20 * H, 10 * H));
    assert_eq!(
        err,
        LifecycleError::AlreadyEnded {
            reservation: "A".into(),
            end: 10 * H,
            now: 10 * H
        }
    );
    let err = fails_unchanged(&mut state, |s| s.extend("Z", 20 * H, 0));
    assert_eq!(err, LifecycleError::UnknownReservation("Z".into()));
    let on = state
        .reservation("A")
        .map(|r| r.nodes[0].pnode.clone())
        .unwrap_or_default();
    state
        .set_pnode_state(&on, PNodeState::Down, 0)
        .expect("known");
    let err = fails_unchanged(&mut state, |s| s.extend("A", 20 * H, 0));
    assert_eq!(
        err,
        LifecycleError::PNodeNotUp {
            reservation: "A".into(),
            pnode: on
        }
    );
}

#[test]
fn pnode_down_lists_affected_reservations_and_is_avoided() {
    let mut state = site(vec![node("a", 8), node("b", 8), node("c", 8)]);
    let past = place(&mut state, &request("past", 0, 1, 2));
    let running = place(&mut state, &request("running", 0, 10, 2));
    let future = place(&mut state, &request("future", 20, 30, 2));
    let pnode = "a";
    let affected = state
        .set_pnode_state(pnode, PNodeState::Down, 2 * H)
        .expect("known");
    let expected: Vec<_> = [&future, &running] // id order
        .into_iter()
        .filter(|r| r.gateway.pnode == pnode || r.nodes.iter().any(|n| n.pnode == pnode))
        .map(|r| {
            let nodes: Vec<String> = r
                .nodes
                .iter()
                .filter(|n| n.pnode == pnode)
                .map(|n| n.name.clone())
                .collect();
            (r.reservation.clone(), nodes, r.gateway.pnode == pnode)
        })
        .collect();
    assert!(
        !expected.is_empty(),
        "fixture must put something on {pnode}"
    );
    let got: Vec<_> = affected
        .iter()
        .map(|a| (a.reservation.clone(), a.nodes.clone(), a.gateway))
        .collect();
    assert_eq!(got, expected);
    assert!(
        past.nodes.iter().any(|n| n.pnode == pnode),
        "ended reservations are not listed even when they used it"
    );

    let next = admit(&state, &request("next", 2, 10, 3), 2 * H).expect("admitted");
    assert!(next.placement().all(|(_, p)| p != pnode) && next.gateway.pnode != pnode);
    assert_eq!(
        state.set_pnode_state(pnode, PNodeState::Up, 2 * H),
        Ok(Vec::new())
    );
    let err = fails_unchanged(&mut state, |s| {
        s.set_pnode_state("nope", PNodeState::Down, 0)
    });
    assert_eq!(err, LifecycleError::UnknownPNode("nope".into()));
}

#[test]
fn configuration_is_validated() {
    let check = |config: SiteConfig, expected: ConfigError| {
        assert_eq!(SiteState::new(config, vec![node("a", 1)]), Err(expected));
    };
    let base = SiteConfig::default();
    let pool = NetworkPool::vlan(IdRange::new(2, 5000), Vec::new());
    check(
        SiteConfig {
            network_pool: pool.clone(),
            ..base.clone()
        },
        ConfigError::BadNetworkPool(pool),
    );
    let odd = Ipv4Net::new(Ipv4Addr::new(10, 1, 0, 0), 8);
    check(
        SiteConfig {
            supernet: odd,
            ..base.clone()
        },
        ConfigError::BadSupernet(odd),
    );
    check(
        SiteConfig {
            default_prefix_len: 8,
            ..base.clone()
        },
        ConfigError::BadDefaultPrefix {
            prefix_len: 8,
            supernet: base.supernet,
        },
    );
    check(
        SiteConfig {
            mac_prefix: [0x00, 0x16, 0x3e],
            ..base.clone()
        },
        ConfigError::BadMacPrefix([0x00, 0x16, 0x3e]),
    );
    check(
        SiteConfig {
            mac_prefix: [0x03, 0, 0],
            ..base.clone()
        },
        ConfigError::BadMacPrefix([0x03, 0, 0]),
    );
    check(
        SiteConfig {
            search_horizon_secs: -1,
            ..base.clone()
        },
        ConfigError::NegativeHorizon(-1),
    );
    assert_eq!(
        SiteState::new(base, vec![node("a", 1), node("b", 1), node("a", 2)]),
        Err(ConfigError::DuplicatePNode("a".into()))
    );
}

#[test]
fn restore_rebuilds_the_calendars_that_apply_built() {
    let mut state = site(vec![node("a", 8), node("b", 8), node("c", 8)]);
    for (id, start, end, computes) in [("A", 0, 10, 3), ("B", 5, 20, 2), ("C", 0, 30, 1)] {
        place(&mut state, &request(id, start, end, computes));
    }
    state.extend("B", 25 * H, H).expect("extended");
    let allocations: Vec<_> = state.reservations().cloned().collect();
    let pnodes: Vec<_> = state.pnodes().cloned().collect();
    // Any order in, the same calendars out.
    let restored = SiteState::restore(
        state.config().clone(),
        pnodes.clone(),
        allocations.iter().rev().cloned(),
    )
    .expect("restored");
    for p in &pnodes {
        let bookings = |s: &SiteState| -> Vec<(String, i64, i64, u32)> {
            s.calendar(&p.name)
                .map(|c| {
                    c.bookings()
                        .map(|b| {
                            (
                                b.reservation.to_string(),
                                b.window.start,
                                b.window.end,
                                b.demand.cpu,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(bookings(&restored), bookings(&state), "P-node {}", p.name);
    }
    assert_eq!(restored.booking_count(), state.booking_count());
    // The restored state admits exactly what the original does.
    let next = request("D", 0, 10, 4);
    assert_eq!(
        admit(&restored, &next, 0).map(|a| a.nodes),
        admit(&state, &next, 0).map(|a| a.nodes)
    );

    let mut forged = allocations.clone();
    forged[0].nodes[0].pnode = "nowhere".into();
    assert!(matches!(
        SiteState::restore(state.config().clone(), pnodes.clone(), forged),
        Err(crate::RestoreError::UnknownPNode { .. })
    ));
    let twice = allocations
        .iter()
        .chain(allocations.iter().take(1))
        .cloned();
    assert!(matches!(
        SiteState::restore(state.config().clone(), pnodes, twice),
        Err(crate::RestoreError::Duplicate(_))
    ));
}
