//! The poller against local listeners that behave like good, dead and hostile gmonds, and the
//! monitor state it feeds.

mod common;

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use vcds_monitor::export::agent_document;
use vcds_monitor::history::History;
use vcds_monitor::summary::{Monitor, DEFAULT_TRACKED};
use vcds_monitor::{poll_cycle, write_document, ParseLimits, PollConfig, PollError};

#[derive(Clone, Copy)]
enum Behaviour {
    Serve(&'static [u8]),
    /// Accepts and never writes.
    Hang,
    /// One byte every 50 ms, forever.
    Trickle,
}

/// Starts a listener on 127.0.0.1 that treats every connection the same way.
async fn listener(behaviour: Behaviour) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                match behaviour {
                    Behaviour::Serve(bytes) => {
                        let _ = s.write_all(bytes).await;
                    }
                    Behaviour::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
                    Behaviour::Trickle => loop {
                        if s.write_all(b" ").await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    },
                }
            });
        }
    });
    addr
}

/// An address that refuses: bound once, then released.
async fn refused_address() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    drop(l);
    addr
}

fn leak(bytes: Vec<u8>) -> &'static [u8] {
    Box::leak(bytes.into_boxed_slice())
}

fn config() -> PollConfig {
    PollConfig {
        connect_timeout: Duration::from_millis(500),
        read_timeout: Duration::from_millis(400),
        concurrency: 8,
        limits: ParseLimits {
            max_bytes: 256 * 1024,
            ..ParseLimits::default()
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_isolates_bad_hosts() {
    let agent = leak(
        write_document(&agent_document(
            "vc-7",
            "p",
            1_760_000_000,
            &common::sample_pnode(),
        ))
        .into_bytes(),
    );
    let mut endpoints = vec![
        listener(Behaviour::Serve(agent)).await,
        listener(Behaviour::Serve(b"\x00\x01garbage, not XML at all")).await,
        listener(Behaviour::Hang).await,
        refused_address().await,
        listener(Behaviour::Trickle).await,
        listener(Behaviour::Serve(leak(vec![b'<'; 300 * 1024]))).await,
        listener(Behaviour::Serve(&agent[..agent.len() / 2])).await,
        "no-such-host.invalid:8649".to_string(),
    ];
    if let Some(fixture) = common::fixture() {
        endpoints.push(listener(Behaviour::Serve(leak(fixture))).await);
    }
    let started = Instant::now();
    let reports = poll_cycle(&endpoints, &config()).await;
    let took = started.elapsed();
    // Hang and trickle run concurrently: the cycle costs one read timeout, not the sum.
    assert!(took < Duration::from_millis(1500), "cycle took {took:?}");
    assert_eq!(reports.len(), endpoints.len());
    for (r, e) in reports.iter().zip(&endpoints) {
        assert_eq!(&r.endpoint, e);
    }
    let r = |i: usize| &reports[i].result;
    // The P-node's cluster and one virtual cluster with both VMs.
    assert_eq!(
        r(0).as_ref()
            .map(|d| d.clusters.iter().map(|c| c.hosts.len()).collect::<Vec<_>>()),
        Ok(vec![1, 2])
    );
    assert!(matches!(r(1), Err(PollError::Parse(_))), "{:?}", r(1));
    assert!(
        matches!(r(2), Err(PollError::ReadTimeout { .. })),
        "{:?}",
        r(2)
    );
    assert!(matches!(r(3), Err(PollError::Connect(_))), "{:?}", r(3));
    assert!(
        matches!(r(4), Err(PollError::ReadTimeout { .. })),
        "{:?}",
        r(4)
    );
    assert!(
        matches!(r(5), Err(PollError::TooLarge { limit: 262_144 })),
        "{:?}",
        r(5)
    );
    assert!(matches!(r(6), Err(PollError::Parse(_))), "{:?}", r(6));
    assert!(
        matches!(
            r(7),
            Err(PollError::Resolve(_) | PollError::ConnectTimeout(_))
        ),
        "{:?}",
        r(7)
    );
    if let Some(fixture) = reports.get(8) {
        let doc = fixture.result.as_ref().expect("fixture served and parsed");
        assert_eq!(doc.clusters[0].hosts[0].name, "frontend");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_keeps_last_data_and_marks_failures_stale() {
    let served = |pnode: &str| {
        let mut sample = common::sample_pnode();
        sample.name = pnode.to_string();
        for vm in &mut sample.vms {
            vm.name = format!("{pnode}-{}", vm.name);
        }
        leak(write_document(&agent_document("vc-7", "p", 1_760_000_000, &sample)).into_bytes())
    };
    let good = listener(Behaviour::Serve(served("pnode-0"))).await;
    let flaky = listener(Behaviour::Serve(served("pnode-1"))).await;
    // A second gmond reporting pnode-0 too, as gmonds on one multicast channel do.
    let twin = listener(Behaviour::Serve(served("pnode-0"))).await;
    let mut monitor = Monitor::new(History::new(3, 1000), DEFAULT_TRACKED);
    for t in 0..4 {
        let reports = poll_cycle(&[good.clone(), flaky.clone(), twin.clone()], &config()).await;
        monitor.apply(reports, 100 + t);
    }
    let series: Vec<(u64, f64)> = monitor
        .history()
        .series("pnode-0", "load_one")
        .map(|s| (s.t, s.v))
        .collect();
    assert_eq!(
        series,
        vec![(101, 1.5), (102, 1.5), (103, 1.5)],
        "one sample per cycle, last 3 kept"
    );
    assert_eq!(
        monitor.host_summaries().len(),
        6,
        "pnode-0 and its VMs counted once"
    );

    // The flaky endpoint goes away: its hosts stay known, but stale with the reason.
    let dead = refused_address().await;
    let mut reports = poll_cycle(&[good.clone(), dead], &config()).await;
    reports[1].endpoint = flaky.clone();
    monitor.apply(reports, 200);
    let hosts = monitor.host_summaries();
    let (fresh, stale): (Vec<_>, Vec<_>) = hosts.iter().partition(|h| h.is_up());
    assert_eq!((fresh.len(), stale.len()), (3, 3));
    assert!(stale
        .iter()
        .all(|h| h.endpoint == flaky && h.name.starts_with("pnode-1")));
    let reason = stale[0].stale.as_deref().expect("reason");
    assert!(reason.contains("connect failed"), "{reason}");
    assert_eq!(monitor.endpoint(&flaky).and_then(|s| s.last_ok), Some(103));
    let clusters = monitor.cluster_summaries();
    assert_eq!(
        clusters.len(),
        2,
        "the P-nodes' cluster and the virtual cluster"
    );
    let pnodes = &clusters[0];
    assert_eq!(pnodes.name, "vc-7");
    assert_eq!((pnodes.hosts_up, pnodes.hosts_down), (1, 1));
    assert_eq!(pnodes.load_one_max, Some(1.5));
    let virtual_cluster = &clusters[1];
    assert_eq!(
        (virtual_cluster.hosts_up, virtual_cluster.hosts_down),
        (2, 2)
    );
}
