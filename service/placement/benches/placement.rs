//! Placement benchmark: a site of 10,000 P-nodes holding 100,000 P-node reservations (bookings,
//! made by admitting 10,000 virtual clusters of a frontend + 9 computes), then a 100-node
//! cluster (frontend + 99 computes) placed at random windows.
//!
//! Prints median / p99 admission latency (and CPU time, since the machine may be shared),
//! refusal latency with the earliest-start search, sequential admit+apply rate, memory, and the
//! same placements by a naive first-fit baseline (no per-P-node calendar: for every node to place it
//! scans every reservation of the site and every P-node) with the speed ratio.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-placement cargo bench -p vcds-placement`
//! Sizes: `VCDS_BENCH_PNODES`, `VCDS_BENCH_CLUSTERS`, `VCDS_BENCH_SAMPLES` (env).

use std::collections::BTreeMap;
use std::error::Error;
use std::time::{Duration, Instant};

use vcds_placement::{
    admit, ClusterRequest, PNode, PNodeState, Refusal, Resources, SiteConfig, SiteState, Timestamp,
    Window,
};

const DAY: i64 = 24 * 3600;
/// Cluster starts are spread over this span, so about a quarter of them overlap any instant.
const SPAN_DAYS: u64 = 180;

/// SplitMix64 with a fixed seed: the same site and requests on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time (user + system) of this process, from `/proc/self/stat` in USER_HZ (100/s) ticks.
/// Compared with wall time it shows how much a shared machine delayed the run.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn site(pnodes: usize) -> Result<SiteState, Box<dyn Error>> {
    let nodes = (0..pnodes)
        .map(|i| {
            let labels = if i % 4 == 0 { vec!["ssd"] } else { Vec::new() };
            PNode::new(format!("p{i:05}"), Resources::new(64, 256 * 1024, 4000))
                .with_labels(labels)
                .gw_capable(i % 10 == 0)
        })
        .collect();
    Ok(SiteState::new(SiteConfig::default(), nodes)?)
}

fn request(rng: &mut Rng, id: String, computes: u32, max_days: u64) -> ClusterRequest {
    let start = rng.below(SPAN_DAYS * DAY as u64) as Timestamp;
    let window = Window::new(start, start + (1 + rng.below(max_days)) as i64 * DAY);
    ClusterRequest::new(
        id,
        window,
        Resources::new(4, 8192, 100),
        Resources::new(
            1 + rng.below(8) as u32,
            4096 * (1 + rng.below(8)),
            50 + rng.below(200),
        ),
        computes,
    )
}

fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    sorted
        .get((sorted.len() * pct / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Naive first-fit: for each node of the cluster, one pass over every reservation of the site
/// collects the bookings overlapping the window per P-node, then P-nodes are tried in name
/// order with a fresh sweep each; the first that fits takes the node. Same filters as admission
/// (up, labels), capacity only (no pools, no spread constraints). Returns nodes placed.
fn naive_first_fit(state: &SiteState, request: &ClusterRequest) -> Option<usize> {
    let pnodes: Vec<&PNode> = state.pnodes().collect();
    let index: BTreeMap<&str, usize> = pnodes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let window = request.window;
    let mut placed = vec![Resources::ZERO; pnodes.len()];
    let shapes = std::iter::once(request.frontend).chain(std::iter::repeat_n(
        request.compute,
        request.computes as usize,
    ));
    let mut count = 0;
    for shape in shapes {
        let mut per_pnode: Vec<Vec<(Timestamp, bool, Resources)>> = vec![Vec::new(); pnodes.len()];
        for allocation in state.reservations().filter(|a| a.window.overlaps(&window)) {
            for node in &allocation.nodes {
                let i = *index.get(node.pnode.as_str())?;
                per_pnode[i].push((
                    allocation.window.start.max(window.start),
                    true,
                    node.resources,
                ));
                per_pnode[i].push((allocation.window.end, false, node.resources));
            }
        }
        let fits = |i: usize, events: &mut Vec<(Timestamp, bool, Resources)>| {
            let p = pnodes[i];
            if p.state != PNodeState::Up || !p.has_labels(&request.constraints.required_labels) {
                return false;
            }
            events.sort_by_key(|&(t, is_start, _)| (t, is_start));
            let (mut usage, mut peak) = (Resources::ZERO, Resources::ZERO);
            for &(_, is_start, demand) in events.iter() {
                usage = if is_start {
                    usage.saturating_add(&demand)
                } else {
                    usage.saturating_sub(&demand)
                };
                peak = peak.max_each(&usage);
            }
            peak.saturating_add(&placed[i])
                .saturating_add(&shape)
                .fits_within(&p.capacity)
        };
        let chosen = (0..pnodes.len()).find(|&i| fits(i, &mut per_pnode[i]))?;
        placed[chosen] = placed[chosen].saturating_add(&shape);
        count += 1;
    }
    Some(count)
}

fn main() -> Result<(), Box<dyn Error>> {
    let pnodes = env_or("VCDS_BENCH_PNODES", 10_000);
    let clusters = env_or("VCDS_BENCH_CLUSTERS", 10_000);
    let samples = env_or("VCDS_BENCH_SAMPLES", 200);
    let mut rng = Rng(42);

    println!(
        "vcds-placement benchmark: {pnodes} P-nodes, {clusters} clusters of frontend + 9 computes"
    );
    let rss_before = rss_bytes();
    let mut state = site(pnodes)?;
    let fill_started = Instant::now();
    let mut refused = 0;
    for i in 0..clusters {
        let r = request(&mut rng, format!("fill-{i:06}"), 9, 90);
        match admit(&state, &r, 0) {
            Ok(a) => state.apply(a)?,
            Err(_) => refused += 1,
        }
    }
    let fill = fill_started.elapsed();
    let rss_after = rss_bytes();
    let admitted = clusters - refused;
    println!(
        "fill: {admitted} clusters admitted+applied ({refused} refused), {} P-node reservations, {:.1} s, {:.0} placements/s (10-node clusters)",
        state.booking_count(),
        fill.as_secs_f64(),
        admitted as f64 / fill.as_secs_f64()
    );
    let json = serde_json::to_vec(&state)?;
    println!(
        "memory: RSS grew {:.1} MiB while filling; calendars ≈ {:.1} MiB (estimate); serialized state {:.1} MiB JSON",
        rss_after.zip(rss_before).map_or(f64::NAN, |(a, b)| a.saturating_sub(b) as f64 / 1048576.0),
        state.calendar_heap_bytes() as f64 / 1048576.0,
        json.len() as f64 / 1048576.0
    );

    let probes: Vec<ClusterRequest> = (0..samples)
        .map(|i| request(&mut rng, format!("probe-{i:04}"), 99, 30))
        .collect();
    let mut latencies = Vec::with_capacity(samples);
    let mut outcomes = BTreeMap::<&str, usize>::new();
    let (phase_cpu, phase_wall) = (cpu_time(), Instant::now());
    for r in &probes {
        let started = Instant::now();
        let result = admit(&state, r, 0);
        latencies.push(started.elapsed());
        let outcome = match result {
            Ok(_) => "admitted",
            Err(Refusal::Insufficient { .. }) => "insufficient",
            Err(Refusal::Invalid(_)) => "invalid",
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    let phase_wall = phase_wall.elapsed();
    let phase_cpu = cpu_time()
        .zip(phase_cpu)
        .map(|(end, start)| end.saturating_sub(start));
    latencies.sort_unstable();
    let median = percentile(&latencies, 50);
    println!(
        "admit 100-node cluster (frontend + 99 computes): median {:.3} ms, p99 {:.3} ms, max {:.3} ms over {samples} windows {outcomes:?}",
        ms(median),
        ms(percentile(&latencies, 99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    // On a shared machine wall time includes waiting for a core; CPU time does not.
    println!(
        "  the process had a core {:.0}% of that phase; mean CPU time per admission {:.3} ms",
        phase_cpu.map_or(f64::NAN, |c| c.as_secs_f64() / phase_wall.as_secs_f64()
            * 100.0),
        phase_cpu.map_or(f64::NAN, |c| ms(c) / samples.max(1) as f64),
    );

    // Refusals search for the earliest feasible start: up to `max_probes` placement runs.
    let mut refusal_latencies = Vec::new();
    let mut earliest_found = 0;
    for i in 0..samples.min(10) {
        let mut r = request(&mut rng, format!("whole-{i:02}"), 99, 30);
        r.compute = Resources::new(64, 128 * 1024, 1000); // a whole P-node each
        let started = Instant::now();
        let result = admit(&state, &r, 0);
        refusal_latencies.push(started.elapsed());
        earliest_found += usize::from(matches!(
            result,
            Err(Refusal::Insufficient {
                earliest_start: Some(_),
                ..
            })
        ));
    }
    refusal_latencies.sort_unstable();
    println!(
        "refusal with earliest-start search (99 whole-P-node computes, max_probes {}): median {:.1} ms, max {:.1} ms over {} requests, {earliest_found} with an earliest start",
        state.config().max_probes,
        ms(percentile(&refusal_latencies, 50)),
        ms(refusal_latencies.last().copied().unwrap_or_default()),
        refusal_latencies.len()
    );

    let naive_samples = samples.min(20);
    let mut naive = Vec::with_capacity(naive_samples);
    let mut naive_placed = 0;
    for r in probes.iter().take(naive_samples) {
        let started = Instant::now();
        naive_placed += usize::from(naive_first_fit(&state, r) == Some(r.computes as usize + 1));
        naive.push(started.elapsed());
    }
    naive.sort_unstable();
    let naive_median = percentile(&naive, 50);
    println!(
        "naive first-fit baseline: median {:.3} ms, p99 {:.3} ms over {naive_samples} windows ({naive_placed} placed); ratio naive/admit median = {:.1}x",
        ms(naive_median),
        ms(percentile(&naive, 99)),
        naive_median.as_secs_f64() / median.as_secs_f64().max(1e-9)
    );

    let sequential = samples.min(100);
    let started = Instant::now();
    let mut applied = 0;
    for i in 0..sequential {
        let r = request(&mut rng, format!("seq-{i:04}"), 99, 30);
        if let Ok(a) = admit(&state, &r, 0) {
            state.apply(a)?;
            applied += 1;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "sequential admit+apply of 100-node clusters: {applied}/{sequential} applied, {:.0} placements/s",
        sequential as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
