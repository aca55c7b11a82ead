//! The reservation book on both backends: lifecycle, restart, and many concurrent clients —
//! several books on one database, as several service processes would be — never
//! double-allocating capacity, network ids, subnets, MACs or IPs.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use vcds_placement::{
    Allocation, ClusterRequest, IdRange, Ipv4Net, NetworkPool, PNode, PNodeState, Refusal,
    Resources, Shortage, SiteConfig, Window,
};
use vcds_store::testing::PgDatabase;
use vcds_store::{BookError, ReservationBook, Store};

const H: i64 = 3600;
const NOW: i64 = 1_800_000_000;

fn pnode(name: &str, cpu: u32) -> PNode {
    PNode::new(name, Resources::new(cpu, u64::from(cpu) * 4096, 2000)).gw_capable(true)
}

/// 8 VNIs and 16 /24 subnets, so pools run out as well as capacity.
fn config() -> SiteConfig {
    SiteConfig {
        network_pool: NetworkPool::vxlan(IdRange::new(100, 107), Vec::new()),
        supernet: Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 20),
        ..SiteConfig::default()
    }
}

fn inventory() -> Vec<PNode> {
    vec![
        pnode("p1", 16),
        pnode("p2", 16),
        pnode("p3", 16),
        pnode("p4", 16),
    ]
}

fn request(id: &str, start_h: i64, end_h: i64, computes: u32) -> ClusterRequest {
    ClusterRequest::new(
        id,
        Window::new(NOW + start_h * H, NOW + end_h * H),
        Resources::new(2, 4096, 20),
        Resources::new(2, 4096, 20),
        computes,
    )
}

fn book(store: &Store) -> ReservationBook {
    ReservationBook::open(store.clone(), config(), &inventory()).unwrap()
}

fn lifecycle(url: &str) {
    let store = Store::open(url).unwrap();
    let b = book(&store);
    let a = b.admit(&request("A", 1, 10, 10), NOW).unwrap();
    assert_eq!(a.nodes.len(), 11);
    assert_eq!(b.rows(false).unwrap().len(), 1);

    // 22 of 64 cpus are taken in [1h, 10h): 24 computes more do not fit; nothing is written.
    let err = b.admit(&request("B", 2, 5, 24), NOW).unwrap_err();
    match err {
        BookError::Refused(Refusal::Insufficient {
            shortage,
            earliest_start,
            ..
        }) => {
            assert_eq!(shortage, Shortage::Cpu);
            assert_eq!(earliest_start, Some(NOW + 10 * H), "fits when A ends");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(b.rows(true).unwrap().len(), 1, "a refusal stores nothing");
    // A window in the past is refused as invalid, not as a shortage.
    assert!(matches!(
        b.admit(&request("P", -2, 1, 1), NOW),
        Err(BookError::Refused(Refusal::Invalid(_)))
    ));
    // Validate-only answers like admit and reserves nothing.
    b.check(&request("C", 10, 20, 24), NOW).unwrap();
    assert_eq!(b.rows(true).unwrap().len(), 1);

    // Extension: refused with the conflicting reservation, then granted when it is free.
    b.admit(&request("C", 10, 20, 24), NOW).unwrap();
    match b.extend("A", NOW + 12 * H, NOW).unwrap_err() {
        BookError::Lifecycle(vcds_placement::LifecycleError::Conflict { conflicting, .. }) => {
            assert_eq!(conflicting, "C")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        b.release("C", NOW, "terminated")
            .unwrap()
            .unwrap()
            .reservation,
        "C"
    );
    assert_eq!(
        b.release("C", NOW, "again").unwrap(),
        None,
        "release is idempotent"
    );
    b.extend("A", NOW + 12 * H, NOW).unwrap();

    // P-node down: A's nodes on it are reported.
    let on_p1: BTreeSet<String> = a
        .nodes
        .iter()
        .filter(|n| n.pnode == "p1")
        .map(|n| n.name.clone())
        .collect();
    let affected = b.set_pnode_state("p1", PNodeState::Down, NOW).unwrap();
    assert_eq!(affected.len(), 1);
    assert_eq!(affected[0].reservation, "A");
    assert_eq!(
        affected[0].nodes.iter().cloned().collect::<BTreeSet<_>>(),
        on_p1
    );

    // A restart (a new book on the same rows) sees the same site; an inventory without p4
    // marks it down and keeps its reservations.
    drop(b);
    let inventory: Vec<PNode> = inventory().into_iter().take(3).collect();
    let b = ReservationBook::open(store.clone(), config(), &inventory).unwrap();
    let restored = b.reservation("A").unwrap().unwrap();
    assert_eq!(restored.window.end, NOW + 12 * H);
    assert_eq!(restored.nodes, a.nodes);
    let states: Vec<(String, PNodeState)> = b
        .read(|s| s.pnodes().map(|p| (p.name.clone(), p.state)).collect())
        .unwrap();
    assert_eq!(
        states,
        [
            ("p1".into(), PNodeState::Down),
            ("p2".into(), PNodeState::Up),
            ("p3".into(), PNodeState::Up),
            ("p4".into(), PNodeState::Down),
        ]
    );
    // Expiry at the end releases it, with the reason kept.
    assert_eq!(b.expire(NOW + 12 * H).unwrap(), ["A"]);
    let rows = b.rows(true).unwrap();
    let a_row = rows.iter().find(|r| r.id == "A").unwrap();
    assert_eq!(a_row.release_reason.as_deref(), Some("reservation ended"));
    assert!(b.rows(false).unwrap().is_empty());
}

/// Checks, from allocations alone, that no P-node is over capacity at any instant and that
/// reservations whose windows overlap share no network id, subnet, MAC or IP.
fn double_allocations(pnodes: &[PNode], allocations: &[Allocation]) -> Vec<String> {
    let mut problems = Vec::new();
    for p in pnodes {
        let bookings: Vec<(Window, Resources)> = allocations
            .iter()
            .flat_map(|a| {
                a.nodes
                    .iter()
                    .filter(|n| n.pnode == p.name)
                    .map(move |n| (a.window, n.resources))
            })
            .collect();
        // Peak usage is reached at some booking's start.
        for (w, _) in &bookings {
            let used = bookings
                .iter()
                .filter(|(o, _)| o.start <= w.start && w.start < o.end)
                .fold(Resources::ZERO, |sum, (_, r)| sum.saturating_add(r));
            if !used.fits_within(&p.capacity) {
                problems.push(format!("{} over capacity at {}: {used:?}", p.name, w.start));
            }
        }
    }
    let addresses = |a: &Allocation| -> (BTreeSet<String>, BTreeSet<Ipv4Addr>) {
        let mut macs: BTreeSet<String> = a
            .nodes
            .iter()
            .flat_map(|n| n.macs.iter().map(ToString::to_string))
            .collect();
        macs.insert(a.gateway.mac.to_string());
        let mut ips: BTreeSet<Ipv4Addr> = a.nodes.iter().map(|n| n.ip).collect();
        ips.insert(a.gateway.ip);
        (macs, ips)
    };
    for (i, a) in allocations.iter().enumerate() {
        let (macs_a, ips_a) = addresses(a);
        if ips_a.len() != a.nodes.len() + 1 {
            problems.push(format!("{}: an IP is used twice inside it", a.reservation));
        }
        for b in &allocations[i + 1..] {
            if !a.window.overlaps(&b.window) {
                continue;
            }
            let (macs_b, ips_b) = addresses(b);
            let pair = format!("{} and {}", a.reservation, b.reservation);
            if a.network_id == b.network_id {
                problems.push(format!("{pair} share network id {:?}", a.network_id));
            }
            if a.subnet.overlaps(&b.subnet) {
                problems.push(format!("{pair} have overlapping subnets"));
            }
            if !macs_a.is_disjoint(&macs_b) {
                problems.push(format!("{pair} share a MAC"));
            }
            if !ips_a.is_disjoint(&ips_b) {
                problems.push(format!("{pair} share an IP"));
            }
        }
    }
    problems
}

/// `books` books (each its own connection pool, as separate service processes) with
/// `threads` clients each admit, extend and release at random; then the stored reservations
/// are exactly the admitted and unreleased ones, and none double-allocates anything.
fn concurrent_clients(url: &str, books: usize, threads: usize, requests: usize) {
    let stores: Vec<Store> = (0..books).map(|_| Store::open(url).unwrap()).collect();
    let books: Vec<ReservationBook> = stores.iter().map(book).collect();
    let outcomes = std::thread::scope(|scope| {
        let handles: Vec<_> = books
            .iter()
            .enumerate()
            .flat_map(|(bi, book)| {
                (0..threads).map(move |ti| {
                    scope.spawn(move || {
                        let mut seed = (bi * 31 + ti * 7 + 1) as u64;
                        let mut next = |n: u64| {
                            seed = seed
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407);
                            (seed >> 33) % n
                        };
                        let mut kept = Vec::new();
                        let mut released = 0;
                        for k in 0..requests {
                            let id = format!("r{bi}-{ti}-{k}");
                            let start = next(48) as i64;
                            let req =
                                request(&id, start, start + 1 + next(24) as i64, next(8) as u32);
                            match book.admit(&req, NOW) {
                                Ok(a) => kept.push(a.reservation),
                                Err(BookError::Refused(_)) => {}
                                Err(e) => panic!("{id}: {e}"),
                            }
                            // Every third admitted one: extend (may be refused) or release.
                            if k % 3 == 2 {
                                if let Some(id) = kept.pop() {
                                    if next(2) == 0 {
                                        match book.extend(&id, NOW + 80 * H, NOW) {
                                            Ok(()) | Err(BookError::Lifecycle(_)) => kept.push(id),
                                            Err(e) => panic!("{id}: {e}"),
                                        }
                                    } else {
                                        assert!(book.release(&id, NOW, "test").unwrap().is_some());
                                        released += 1;
                                    }
                                }
                            }
                        }
                        (kept, released)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let kept: BTreeSet<String> = outcomes.iter().flat_map(|(k, _)| k.clone()).collect();
    let released: usize = outcomes.iter().map(|(_, r)| r).sum();
    let rows = books[0].rows(false).unwrap();
    let stored: BTreeSet<String> = rows.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        stored, kept,
        "stored reservations are exactly the admitted, unreleased ones"
    );
    assert_eq!(books[0].rows(true).unwrap().len(), kept.len() + released);
    assert!(
        kept.len() >= 10,
        "the test admits enough to contend: {}",
        kept.len()
    );
    let allocations: Vec<Allocation> = rows
        .iter()
        .map(|r| serde_json::from_str(&r.allocation).unwrap())
        .collect();
    assert_eq!(
        double_allocations(&inventory(), &allocations),
        Vec::<String>::new()
    );
    // Every book's view converges on the stored rows.
    for b in &books {
        assert_eq!(b.read(|s| s.reservations().count()).unwrap(), kept.len());
    }
}

#[test]
fn the_checker_sees_double_allocations() {
    let store = Store::open("sqlite::memory:").unwrap();
    let b = book(&store);
    let a = b.admit(&request("A", 0, 10, 2), NOW).unwrap();
    let mut twin = a.clone();
    twin.reservation = "B".into();
    let problems = double_allocations(&inventory(), &[a.clone(), twin]);
    for expected in [
        "share network id",
        "overlapping subnets",
        "share a MAC",
        "share an IP",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected}: {problems:?}"
        );
    }
    let mut greedy = a;
    greedy.nodes[0].resources = Resources::new(17, 1, 1);
    assert!(double_allocations(&inventory(), &[greedy])[0].contains("over capacity"));
}

#[test]
fn sqlite_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    lifecycle(&format!("sqlite://{}", dir.path().join("v.db").display()));
}

#[test]
fn postgres_lifecycle() {
    if let Some(db) = PgDatabase::create() {
        lifecycle(&db.url());
    }
}

#[test]
fn sqlite_concurrent_clients_never_double_allocate() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_clients(
        &format!("sqlite://{}", dir.path().join("v.db").display()),
        4,
        4,
        24,
    );
}

#[test]
fn postgres_concurrent_clients_never_double_allocate() {
    if let Some(db) = PgDatabase::create() {
        concurrent_clients(&db.url(), 4, 4, 24);
    }
}
