//! Pure summaries and the bounded history.

mod common;

use vcds_monitor::export::agent_document;
use vcds_monitor::history::History;
use vcds_monitor::summary::{cluster_summaries, host_is_stale, HostSummary};

#[test]
fn staleness_follows_gmetads_four_tmax_rule() {
    let doc = agent_document("c", "o", 1, &common::sample_pnode());
    let mut host = doc.clusters[0].hosts[0].clone();
    host.tmax = 20;
    host.tn = 80;
    assert!(!host_is_stale(&host));
    host.tn = 81;
    assert!(host_is_stale(&host));
    let s = HostSummary::of("e:1", "c", &host, None);
    assert_eq!(
        s.stale.as_deref(),
        Some("silent for 81 s, over 4 x TMAX (20 s)")
    );
    let unreachable = HostSummary::of("e:1", "c", &doc.clusters[0].hosts[0], Some("refused"));
    assert_eq!(unreachable.stale.as_deref(), Some("refused"));
}

#[test]
fn cluster_summary_covers_live_hosts() {
    let doc = agent_document("c", "o", 1, &common::sample_pnode());
    let hosts = &doc.clusters[0].hosts;
    let mut a = HostSummary::of("e:1", "c", &hosts[0], None);
    assert_eq!(a.mem_used_kb, Some(8_000_000.0));
    assert_eq!(a.load_one, Some(1.5));
    let mut b = a.clone();
    b.load_one = Some(3.5);
    a.name = "other".to_string();
    let mut down = a.clone();
    down.stale = Some("gone".to_string());
    down.load_one = Some(100.0);
    let vm = HostSummary::of("e:1", "c", &doc.clusters[1].hosts[0], None);
    let s = cluster_summaries(&[a, b, down, vm]);
    assert_eq!(s.len(), 1);
    let c = &s[0];
    assert_eq!((c.hosts_up, c.hosts_down), (3, 1));
    // Live hosts only: 1.5, 3.5 and the VM's 0.25; the stale host's 100 is left out.
    assert_eq!(c.load_one_avg, Some(1.75));
    assert_eq!(c.load_one_max, Some(3.5));
    // The VM reports mem_total but no free figures: all of it counts as used.
    assert_eq!(c.mem_used_kb, 16_000_000.0 + 1_048_576.0);
    assert_eq!(c.mem_total_kb, 32_000_000.0 + 1_048_576.0);
}

#[test]
fn history_is_bounded() {
    let mut h = History::new(2, 2);
    for t in 0..5 {
        assert!(h.push("a", "load_one", t, t as f64));
    }
    assert!(h.push("a", "mem_free", 0, 1.0));
    assert!(!h.push("b", "load_one", 0, 1.0), "third series refused");
    assert_eq!(h.refused(), 1);
    assert_eq!(h.series_count(), 2);
    let v: Vec<f64> = h.series("a", "load_one").map(|s| s.v).collect();
    assert_eq!(v, vec![3.0, 4.0]);
    assert_eq!(h.series("b", "load_one").count(), 0);
}
