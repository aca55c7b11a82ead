//! Poll-cycle time for 1,000 simulated gmond hosts on 127.0.0.1.
//!
//! Four listeners (one server thread) answer every connection with the next of 1,000 distinct
//! gmond-3.x-sized host documents; the poller runs on two workers, as on the target machine.
//! Baselines measured in the same run: a raw TCP read of the same bytes from the same listeners
//! with the same concurrency (no parse), parsing the same bytes without I/O, and a sequential
//! poll (concurrency 1). A last cycle swaps 5% of the hosts for ones that accept and never
//! answer, to show a cycle costs one read timeout, not one per dead host.
//!
//! Run: `cargo bench -p vcds-monitor --bench poll_cycle`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use vcds_monitor::export::{agent_document, PnodeSample};
use vcds_monitor::poll::fetch;
use vcds_monitor::{parse_bytes, poll_cycle, write_document, Metric, MetricType, PollConfig};

const HOSTS: usize = 1000;
const LISTENERS: usize = 4;
const CYCLES: usize = 21;

/// One host's document, padded to gmond 3.x's default ~35 metrics with GROUP/TITLE/DESC extras.
fn host_document(i: usize) -> Vec<u8> {
    let sample = PnodeSample {
        name: format!("compute-0-{i}"),
        ip: format!("10.1.{}.{}", i / 250, i % 250 + 1),
        cpu_num: 8,
        cpu_user: (i % 100) as f64,
        cpu_system: 2.5,
        cpu_idle: 50.0,
        load_one: (i % 17) as f64 / 4.0,
        load_five: 1.0,
        load_fifteen: 0.5,
        mem_total_kb: 16_000_000,
        mem_free_kb: 4_000_000 + i as u64,
        mem_buffers_kb: 100_000,
        mem_cached_kb: 2_000_000,
        bytes_in: 1000.0 * i as f64,
        bytes_out: 500.0,
        boottime: 1_700_000_000,
        vms: Vec::new(),
    };
    let mut doc = agent_document("bench", "vcds", 1_760_000_000, &sample);
    let host = &mut doc.clusters[0].hosts[0];
    for k in 0..20 {
        let m = Metric::new(
            &format!("disk_or_proc_{k}"),
            k * i,
            MetricType::Float,
            "GB",
            180,
        );
        host.metrics.push(m.described(
            "disk",
            "Padding metric",
            "Stands in for gmond's disk, proc and swap metrics",
        ));
    }
    write_document(&doc).into_bytes()
}

const DEAD: usize = HOSTS / 20;

/// The baseline: what the cycle's I/O alone costs, every endpoint read whole with the same
/// concurrency and timeouts and nothing parsed. The total bytes read.
async fn raw_cycle(endpoints: &[String], cfg: PollConfig) -> usize {
    let permits = Arc::new(tokio::sync::Semaphore::new(cfg.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for e in endpoints {
        let (e, permits) = (e.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.ok();
            fetch(&e, &cfg).await.map_or(0, |b| b.len())
        });
    }
    let mut total = 0;
    while let Some(n) = tasks.join_next().await {
        total += n.unwrap_or(0);
    }
    total
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Serves `docs` round-robin on `LISTENERS` ports from one thread; returns their addresses and
/// that of one more listener whose connections never get an answer.
fn start_server(docs: Arc<Vec<Vec<u8>>>) -> (Vec<String>, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let next = Arc::new(AtomicUsize::new(0));
            let mut addrs = Vec::new();
            for _ in 0..LISTENERS {
                let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addrs.push(l.local_addr().expect("addr").to_string());
                let (docs, next) = (docs.clone(), next.clone());
                tokio::spawn(async move {
                    while let Ok((mut s, _)) = l.accept().await {
                        let i = next.fetch_add(1, Ordering::Relaxed) % docs.len();
                        let docs = docs.clone();
                        tokio::spawn(async move {
                            let _ = s.write_all(&docs[i]).await;
                        });
                    }
                });
            }
            let dead = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let dead_addr = dead.local_addr().expect("addr").to_string();
            tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok((s, _)) = dead.accept().await {
                    held.push(s);
                }
            });
            tx.send((addrs, dead_addr)).expect("send addresses");
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("server started")
}

fn main() {
    let docs: Arc<Vec<Vec<u8>>> = Arc::new((0..HOSTS).map(host_document).collect());
    let total: usize = docs.iter().map(Vec::len).sum();
    let cfg = PollConfig::default();

    let started = Instant::now();
    for d in docs.iter() {
        parse_bytes(d, &cfg.limits).expect("document parses");
    }
    let parse_only = started.elapsed();

    let (addrs, dead) = start_server(docs.clone());
    let endpoints: Vec<String> = (0..HOSTS).map(|i| addrs[i % LISTENERS].clone()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("poller runtime");
    let cycle = |endpoints: &[String], cfg: PollConfig, expect_failed: usize| {
        let started = Instant::now();
        let reports = rt.block_on(poll_cycle(endpoints, &cfg));
        let took = started.elapsed();
        let failed: Vec<_> = reports
            .iter()
            .filter_map(|r| r.result.as_ref().err())
            .collect();
        assert_eq!(failed.len(), expect_failed, "e.g. {:?}", failed.first());
        took
    };
    cycle(&endpoints, cfg, 0); // warm-up
    let mut times = Vec::new();
    let mut raw_times = Vec::new();
    // Interleaved, so drift in the machine's load hits both alike.
    for _ in 0..CYCLES {
        times.push(cycle(&endpoints, cfg, 0));
        let started = Instant::now();
        let bytes = rt.block_on(raw_cycle(&endpoints, cfg));
        raw_times.push(started.elapsed());
        assert_eq!(bytes, total, "the raw read got every byte");
    }
    times.sort();
    raw_times.sort();
    let median = percentile(&times, 0.5);
    let raw_median = percentile(&raw_times, 0.5);
    let sequential = cycle(
        &endpoints,
        PollConfig {
            concurrency: 1,
            ..cfg
        },
        0,
    );
    let mut with_dead = endpoints.clone();
    for e in with_dead.iter_mut().step_by(HOSTS / DEAD) {
        *e = dead.clone();
    }
    let dead_cfg = PollConfig {
        read_timeout: Duration::from_millis(500),
        ..cfg
    };
    let dead_cycle = cycle(&with_dead, dead_cfg, DEAD);

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "poll_cycle: {HOSTS} hosts, {:.1} KiB each, {:.1} MiB per cycle, concurrency {}",
        total as f64 / HOSTS as f64 / 1024.0,
        total as f64 / (1 << 20) as f64,
        cfg.concurrency
    );
    println!("  concurrent cycle: median {:.1} ms, p99 {:.1} ms, min {:.1} ms over {CYCLES} cycles (target < 1000 ms)", ms(median), ms(percentile(&times, 0.99)), ms(times[0]));
    println!(
        "  baseline raw TCP read (same bytes, same concurrency, no parse): median {:.1} ms, p99 {:.1} ms -> cycle/raw = {:.2}x",
        ms(raw_median),
        ms(percentile(&raw_times, 0.99)),
        median.as_secs_f64() / raw_median.as_secs_f64()
    );
    println!(
        "  baseline parse-only (same bytes, no I/O): {:.1} ms -> cycle/parse = {:.2}x",
        ms(parse_only),
        median.as_secs_f64() / parse_only.as_secs_f64()
    );
    println!(
        "  baseline sequential poll (concurrency 1): {:.1} ms -> sequential/concurrent = {:.2}x",
        ms(sequential),
        sequential.as_secs_f64() / median.as_secs_f64()
    );
    println!(
        "  with {DEAD} hung hosts (read timeout {:?}): {:.1} ms",
        dead_cfg.read_timeout,
        ms(dead_cycle)
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "  machine load average during the run: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if median >= Duration::from_secs(1) {
        println!("  TARGET MISSED");
    }
}
