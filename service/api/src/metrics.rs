//! `GET /metrics`: the service in Prometheus' text exposition format (0.0.4).
//!
//! Request counters and latencies are recorded as SOAP requests finish (`http::soap`); the
//! rest (clusters by phase, P-node capacity, the Ganglia poller) is read from the state when a
//! scrape comes, so it can never drift from what the service holds.
//!
//! `/metrics` is an admin route (see `security::gate`): it tells the site's capacity and load,
//! which is the provider's business. In plain mode that means loopback only; in secure mode a
//! Prometheus server scrapes with a certificate listed in `--admins`.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use vcds_placement::PNodeState;

use vcds_model::Phase;

use crate::Api;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram>,
    systems: Family<Labels, Gauge>,
    capacity: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pnodes: Family<Labels, Gauge>,
    poll: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    notifications: Family<Labels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("vcds");
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "soap_requests",
            "SOAP requests by operation and outcome (ok, or the fault's detail element)",
            requests.clone(),
        );
        // 100 µs to ~3 s: a GetResourceProperty is sub-millisecond, an Initialize with
        // placement on a big site takes longer.
        let latency = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        registry.register(
            "soap_request_duration_seconds",
            "Time from the request head to the reply, by operation",
            latency.clone(),
        );
        let systems = Family::<Labels, Gauge>::default();
        registry.register(
            "systems",
            "Systems (virtual clusters) by phase; phase \"none\" before Initialize",
            systems.clone(),
        );
        let capacity = Family::default();
        registry.register(
            "pnode_capacity",
            "Capacity of the P-nodes that are up, and what reservations active now use of it, by resource (cpu, memory_mib, disk_gib)",
            capacity.clone(),
        );
        let pnodes = Family::<Labels, Gauge>::default();
        registry.register("pnodes", "P-nodes by state", pnodes.clone());
        let poll = Family::default();
        registry.register(
            "ganglia_poll",
            "The Ganglia poller: last cycle's seconds, endpoints, failed endpoints, hosts, stale hosts, cycles",
            poll.clone(),
        );
        let notifications = Family::<Labels, Gauge>::default();
        registry.register(
            "notifications",
            "Notifications since start by outcome: delivered, failed (after retries), dropped (a full queue)",
            notifications.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            systems,
            capacity,
            pnodes,
            poll,
            notifications,
        }
    }
}

impl Metrics {
    /// Counts one SOAP request: `operation` as the WSDL names it (or "unknown" when it could
    /// not be routed), `outcome` "ok" or the fault's detail element.
    pub fn request(&self, operation: &str, outcome: &str, took: Duration) {
        self.requests
            .get_or_create(&vec![
                ("operation", operation.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        self.latency
            .get_or_create(&vec![("operation", operation.to_string())])
            .observe(took.as_secs_f64());
    }
}

fn label(name: &'static str, value: &str) -> Labels {
    vec![(name, value.to_string())]
}

/// `GET /metrics`
pub async fn metrics(state: web::Data<Api>) -> actix_web::Result<HttpResponse> {
    let m = &state.metrics;
    let mut by_phase = std::collections::HashMap::new();
    for r in state.manager.registry().systems() {
        if let Some(deployment) = r.deployment() {
            let phase = deployment.phase.map_or("none", Phase::as_str);
            *by_phase.entry(phase).or_insert(0i64) += 1;
        }
    }
    // Every phase, so the gauges show zeros too.
    for phase in Phase::ALL.iter().map(|p| p.as_str()).chain(["none"]) {
        m.systems
            .get_or_create(&label("phase", phase))
            .set(by_phase.get(phase).copied().unwrap_or(0));
    }

    let now = chrono::Utc::now().timestamp();
    let site = state
        .manager
        .with_book(move |book| book.read(|s| site_figures(s, now)))
        .await
        .map_err(actix_web::error::ErrorInternalServerError)?;
    for (resource, total, used) in site.capacity {
        m.capacity
            .get_or_create(&vec![
                ("resource", resource.to_string()),
                ("of", "total".into()),
            ])
            .set(total);
        m.capacity
            .get_or_create(&vec![
                ("resource", resource.to_string()),
                ("of", "used".into()),
            ])
            .set(used);
    }
    for (pnode_state, n) in site.pnodes {
        m.pnodes.get_or_create(&label("state", pnode_state)).set(n);
    }

    let f = state.manager.monitoring().figures();
    for (what, v) in [
        ("cycle_seconds", f.last_cycle.as_secs_f64()),
        ("cycles", f.cycles as f64),
        ("endpoints", f.endpoints as f64),
        ("endpoints_failed", f.endpoints_failed as f64),
        ("hosts", f.hosts as f64),
        ("hosts_stale", f.hosts_stale as f64),
        ("history_refused", f.history_refused as f64),
    ] {
        m.poll.get_or_create(&label("figure", what)).set(v);
    }
    let counters = &state.notifier.counters;
    for (outcome, n) in [
        ("delivered", &counters.delivered),
        ("failed", &counters.failed),
        ("dropped", &counters.dropped),
    ] {
        let n = i64::try_from(n.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or(i64::MAX);
        m.notifications
            .get_or_create(&label("outcome", outcome))
            .set(n);
    }

    let mut text = String::new();
    prometheus_text::encode(&mut text, &m.registry)
        .map_err(actix_web::error::ErrorInternalServerError)?;
    Ok(HttpResponse::Ok()
        .content_type(prometheus_text::CONTENT_TYPE)
        .body(text))
}

struct SiteFigures {
    /// (resource, total of the P-nodes that are up, used by reservations active now).
    capacity: Vec<(&'static str, f64, f64)>,
    pnodes: Vec<(&'static str, i64)>,
}

fn site_figures(site: &vcds_placement::SiteState, now: i64) -> SiteFigures {
    let mut total = vcds_placement::Resources::ZERO;
    let mut pnodes: std::collections::BTreeMap<&'static str, i64> = Default::default();
    for p in site.pnodes() {
        let state = match p.state {
            PNodeState::Up => "up",
            PNodeState::Down => "down",
            PNodeState::Maintenance => "maintenance",
        };
        if p.state == PNodeState::Up {
            total.cpu += p.capacity.cpu;
            total.memory_mib += p.capacity.memory_mib;
            total.disk_gib += p.capacity.disk_gib;
        }
        *pnodes.entry(state).or_default() += 1;
    }
    let mut used = vcds_placement::Resources::ZERO;
    for a in site
        .reservations()
        .filter(|a| a.window.start <= now && now < a.window.end)
    {
        for n in &a.nodes {
            used.cpu += n.resources.cpu;
            used.memory_mib += n.resources.memory_mib;
            used.disk_gib += n.resources.disk_gib;
        }
    }
    SiteFigures {
        capacity: vec![
            ("cpu", f64::from(total.cpu), f64::from(used.cpu)),
            (
                "memory_mib",
                total.memory_mib as f64,
                used.memory_mib as f64,
            ),
            ("disk_gib", total.disk_gib as f64, used.disk_gib as f64),
        ],
        pnodes: pnodes.into_iter().collect(),
    }
}
