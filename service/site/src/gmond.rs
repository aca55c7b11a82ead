//! The agent's gmond-compatible port: what the P-node and its VMs look like, in gmond's
//! `GANGLIA_XML`, for the manager's poller and for a stock gmetad alike.
//!
//! Like gmond, the agent samples on its own schedule and answers every connection at once with
//! the latest document, then closes: a poll never waits on /proc, `ip` or QMP, and a slow or
//! stuck reader holds only its own connection thread (and at most [`MAX_CLIENTS`] of those).
//!
//! The P-node's host is in the site's cluster [`PNODE_CLUSTER`]; each VM is a host in the
//! cluster [`vm_cluster_name`] of its network id, so the manager maps it to its virtual cluster.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vcds_monitor::export::{agent_document, PnodeSample, VmSample};
pub use vcds_monitor::export::{network_id_of, vm_cluster_name, PNODE_CLUSTER};

use crate::net::Cmd;
use crate::Error;

/// Connections served at once; more are closed unanswered.
pub const MAX_CLIENTS: usize = 32;
/// A reader gets this long to take the document.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Linux reports process times in USER_HZ ticks, 100 per second on every architecture's ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// One VM as the agent knows it, before sampling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmInfo {
    pub name: String,
    pub network_id: u32,
    pub pid: u32,
    /// QMP's run state (`running`, `paused`…), or `unknown: REASON`.
    pub state: String,
    pub vcpus: u32,
    pub memory_mib: u32,
}

/// How the agent's gmond port runs.
#[derive(Debug, Clone)]
pub struct GmondConfig {
    pub listen: SocketAddr,
    /// The P-node's host name in the document.
    pub pnode: String,
    /// Time between samples.
    pub interval: Duration,
}

/// /proc counters kept between samples, for rates.
#[derive(Debug, Default)]
pub struct Sampler {
    cpu: Option<[u64; 4]>,
    net: Option<(Instant, u64, u64)>,
    vm_ticks: HashMap<u32, (Instant, u64)>,
}

impl Sampler {
    /// Samples the P-node (from /proc and `ip -s -j link` in `netns`) and its VMs.
    pub fn sample(&mut self, pnode: &str, netns: Option<&str>, vms: &[VmInfo]) -> PnodeSample {
        let now = Instant::now();
        let (cpu_user, cpu_system, cpu_idle) = self.cpu();
        let load = read("/proc/loadavg")
            .map(|t| parse_loadavg(&t))
            .unwrap_or_default();
        let mem = read("/proc/meminfo")
            .map(|t| parse_meminfo(&t))
            .unwrap_or_default();
        let (bytes_in, bytes_out) = self.net(now, netns);
        let live: Vec<u32> = vms.iter().map(|v| v.pid).collect();
        self.vm_ticks.retain(|pid, _| live.contains(pid));
        let vms = vms
            .iter()
            .map(|vm| VmSample {
                name: vm.name.clone(),
                // The agent does not know the VM's address; the manager's plan does.
                ip: String::new(),
                cluster: vm_cluster_name(vm.network_id),
                state: vm.state.split(':').next().unwrap_or("unknown").to_string(),
                vcpus: vm.vcpus,
                mem_kb: u64::from(vm.memory_mib) * 1024,
                cpu_percent: self.vm_cpu(now, vm.pid, vm.vcpus),
                load_one: None,
            })
            .collect();
        PnodeSample {
            name: pnode.to_string(),
            ip: String::new(),
            cpu_num: thread::available_parallelism().map_or(1, |n| n.get() as u32),
            cpu_user,
            cpu_system,
            cpu_idle,
            load_one: load[0],
            load_five: load[1],
            load_fifteen: load[2],
            mem_total_kb: mem[0],
            mem_free_kb: mem[1],
            mem_buffers_kb: mem[2],
            mem_cached_kb: mem[3],
            bytes_in,
            bytes_out,
            boottime: boottime().unwrap_or(0),
            vms,
        }
    }

    /// User, system and idle percentages since the last sample (all idle at the first).
    fn cpu(&mut self) -> (f64, f64, f64) {
        let Some(now) = read("/proc/stat").and_then(|t| parse_cpu(&t)) else {
            return (0.0, 0.0, 100.0);
        };
        let prev = self.cpu.replace(now).unwrap_or(now);
        let d: Vec<f64> = now
            .iter()
            .zip(prev)
            .map(|(n, p)| n.saturating_sub(p) as f64)
            .collect();
        let total: f64 = d.iter().sum();
        if total <= 0.0 {
            return (0.0, 0.0, 100.0);
        }
        let pct = |v: f64| 100.0 * v / total;
        (pct(d[0]), pct(d[1]), pct(d[2]))
    }

    fn net(&mut self, now: Instant, netns: Option<&str>) -> (f64, f64) {
        let Some((rx, tx)) = Cmd::ip(netns, &["-s", "-j", "link", "show"])
            .run()
            .ok()
            .and_then(|json| parse_link_bytes(&json))
        else {
            return (0.0, 0.0);
        };
        let rate = match self.net {
            Some((then, prx, ptx)) => {
                let secs = now.duration_since(then).as_secs_f64().max(1e-3);
                (
                    rx.saturating_sub(prx) as f64 / secs,
                    tx.saturating_sub(ptx) as f64 / secs,
                )
            }
            None => (0.0, 0.0),
        };
        self.net = Some((now, rx, tx));
        rate
    }

    /// CPU the VM's QEMU used since the last sample, as a share of its virtual CPUs.
    fn vm_cpu(&mut self, now: Instant, pid: u32, vcpus: u32) -> f64 {
        let Some(ticks) = read(&format!("/proc/{pid}/stat")).and_then(|t| parse_pid_ticks(&t))
        else {
            return 0.0;
        };
        match self.vm_ticks.insert(pid, (now, ticks)) {
            Some((then, prev)) => {
                let secs = now.duration_since(then).as_secs_f64().max(1e-3);
                let used = ticks.saturating_sub(prev) as f64 / TICKS_PER_SECOND / secs;
                (100.0 * used / f64::from(vcpus.max(1))).min(100.0)
            }
            None => 0.0,
        }
    }
}

fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// user+nice, system+irq+softirq, idle+iowait, steal from the `cpu` line of /proc/stat.
pub fn parse_cpu(stat: &str) -> Option<[u64; 4]> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Some([at(0) + at(1), at(2) + at(5) + at(6), at(3) + at(4), at(7)])
}

/// The three load averages of /proc/loadavg.
pub fn parse_loadavg(text: &str) -> [f64; 3] {
    let mut v = text
        .split_whitespace()
        .map(|f| f.parse::<f64>().unwrap_or(0.0));
    [
        v.next().unwrap_or(0.0),
        v.next().unwrap_or(0.0),
        v.next().unwrap_or(0.0),
    ]
}

/// MemTotal, MemFree, Buffers and Cached of /proc/meminfo, in KiB.
pub fn parse_meminfo(text: &str) -> [u64; 4] {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    [
        field("MemTotal"),
        field("MemFree"),
        field("Buffers"),
        field("Cached"),
    ]
}

/// Received and sent bytes over every interface but loopback, from `ip -s -j link show`.
pub fn parse_link_bytes(json: &str) -> Option<(u64, u64)> {
    let links: Vec<serde_json::Value> = serde_json::from_str(json).ok()?;
    let bytes = |l: &serde_json::Value, dir: &str| l["stats64"][dir]["bytes"].as_u64().unwrap_or(0);
    Some(
        links
            .iter()
            .filter(|l| l["ifname"] != "lo")
            .fold((0, 0), |(rx, tx), l| {
                (rx + bytes(l, "rx"), tx + bytes(l, "tx"))
            }),
    )
}

/// utime + stime of /proc/PID/stat.
pub fn parse_pid_ticks(stat: &str) -> Option<u64> {
    // Fields after the parenthesised command name, which may itself contain ')'.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
}

fn boottime() -> Option<u64> {
    let stat = read("/proc/stat")?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The latest document, shared by the sampler and the connection threads.
type Latest = Arc<Mutex<Arc<[u8]>>>;

/// Binds `config.listen` and serves from background threads: a sampler that calls `vms` and
/// samples every `config.interval`, and an acceptor. Returns the bound address.
pub fn serve(
    config: &GmondConfig,
    netns: Option<String>,
    vms: impl Fn() -> Vec<VmInfo> + Send + 'static,
) -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind(config.listen).map_err(|source| Error::Io {
        what: format!("binding the gmond port {}", config.listen),
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| Error::Io {
        what: "the gmond port's address".to_string(),
        source,
    })?;
    let mut sampler = Sampler::default();
    let render = move |sampler: &mut Sampler, pnode: &str| -> Arc<[u8]> {
        let sample = sampler.sample(pnode, netns.as_deref(), &vms());
        let doc = agent_document(PNODE_CLUSTER, "vcds", unix_now(), &sample);
        vcds_monitor::write_document(&doc).into_bytes().into()
    };
    let latest: Latest = Arc::new(Mutex::new(render(&mut sampler, &config.pnode)));
    {
        let (latest, pnode, interval) = (latest.clone(), config.pnode.clone(), config.interval);
        thread::Builder::new()
            .name("gmond-sampler".into())
            .spawn(move || loop {
                thread::sleep(interval);
                let doc = render(&mut sampler, &pnode);
                *latest.lock().unwrap_or_else(PoisonError::into_inner) = doc;
            })
            .map_err(|source| Error::Io {
                what: "starting the gmond sampler".to_string(),
                source,
            })?;
    }
    thread::Builder::new()
        .name("gmond-accept".into())
        .spawn(move || accept_loop(&listener, &latest))
        .map_err(|source| Error::Io {
            what: "starting the gmond acceptor".to_string(),
            source,
        })?;
    tracing::info!(%addr, pnode = %config.pnode, "gmond-compatible port serving P-node and VM metrics");
    Ok(addr)
}

fn accept_loop(listener: &TcpListener, latest: &Latest) {
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
            busy.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("gmond port: {MAX_CLIENTS} readers busy, closing a connection");
            continue;
        }
        let doc = latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let done = busy.clone();
        let spawned = thread::Builder::new()
            .name("gmond-client".into())
            .spawn(move || {
                answer(stream, &doc);
                done.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn answer(mut stream: TcpStream, doc: &[u8]) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    if let Err(e) = stream.write_all(doc) {
        tracing::debug!(error = %e, "gmond port: reader went away");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let stat = "cpu  100 5 50 800 20 3 2 1 0 0\ncpu0 1 2 3 4\nbtime 1700000000\n";
        assert_eq!(parse_cpu(stat), Some([105, 55, 820, 1]));
        assert_eq!(
            parse_loadavg("0.52 0.41 0.30 2/345 6789\n"),
            [0.52, 0.41, 0.30]
        );
        let meminfo = "MemTotal:       16000000 kB\nMemFree:         6000000 kB\nMemAvailable:    9000000 kB\nBuffers:          500000 kB\nCached:          1500000 kB\nSwapCached:            0 kB\n";
        assert_eq!(
            parse_meminfo(meminfo),
            [16_000_000, 6_000_000, 500_000, 1_500_000]
        );
        let pid = "4242 (qemu-system-x86) (weird)) S 1 4242 4242 0 -1 4194560 100 0 0 0 700 300 0 0 20 0 3 0";
        assert_eq!(parse_pid_ticks(pid), Some(1000));
        let links = r#"[{"ifname":"lo","stats64":{"rx":{"bytes":999},"tx":{"bytes":999}}},
            {"ifname":"eth0","stats64":{"rx":{"bytes":100},"tx":{"bytes":40}}},
            {"ifname":"br7","stats64":{"rx":{"bytes":5},"tx":{"bytes":6}}}]"#;
        assert_eq!(parse_link_bytes(links), Some((105, 46)));
        assert_eq!(network_id_of(&vm_cluster_name(4097)), Some(4097));
        assert_eq!(network_id_of("vcds-pnodes"), None);
    }

    #[test]
    fn this_machine_samples() {
        let mut s = Sampler::default();
        s.sample("p", None, &[]);
        let p = s.sample("p", None, &[]);
        assert!(
            p.mem_total_kb > 0 && p.mem_free_kb <= p.mem_total_kb,
            "{p:?}"
        );
        assert!(p.cpu_num >= 1 && p.boottime > 1_000_000_000, "{p:?}");
        assert!((p.cpu_user + p.cpu_system + p.cpu_idle) <= 100.0 + 1e-6);
    }
}
