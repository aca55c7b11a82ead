//! Carrying out reservations on the site: the reservation clock, which deploys a running
//! System when its reservation starts and takes it down when it ends, and the executor that
//! moves a deployment through its phases.
//!
//! The executor here is simulated — provisioning → installing → ready and tearing-down →
//! released, one `step` apart, with failures injected at chosen phases — for `--site sim` and
//! for the local site until its P-node agents drive real VMs. Nothing of the System API
//! changes when they do.
//!
//! Timers are data: the reservation windows live in the store (the reservation book and each
//! System's row), and [`run_clock`] derives what is due from them, so starts and ends that
//! fall while the service is down are carried out when it comes back.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::faults::OpError;
use crate::kinds::Endpoints;
use crate::registry::{Deployment, Lifecycle, Phase, Resource, State};
use crate::AppState;

/// Failures the simulated site injects: at `phase`, a deployment fails with probability
/// `rate`, decided by a hash of (seed, System id, phase) so a run is reproducible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InjectedFailure {
    pub phase: Phase,
    pub rate: f64,
}

impl std::str::FromStr for InjectedFailure {
    type Err = String;

    /// `PHASE:RATE`, e.g. `installing:0.1`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (phase, rate) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected PHASE:RATE, e.g. installing:0.1"))?;
        let phase = match phase {
            "provisioning" => Phase::Provisioning,
            "installing" => Phase::Installing,
            other => {
                return Err(format!(
                    "{other:?}: failures are injected at provisioning or installing"
                ))
            }
        };
        let rate: f64 = rate
            .parse()
            .map_err(|_| format!("{rate:?} is not a number"))?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!("rate {rate} is not within 0..=1"));
        }
        Ok(InjectedFailure { phase, rate })
    }
}

/// What carries deployments out: the simulated site, or the local site's P-node agents.
#[derive(Debug, Clone)]
pub enum Executor {
    Simulated(Simulated),
    Local(Arc<crate::local_site::LocalExecutor>),
}

impl Executor {
    /// Moves System `r` on from the phase it is in (see [`Simulated::carry_on`]).
    pub fn carry_on(&self, state: Arc<AppState>, endpoints: Endpoints, r: &Resource) {
        match self {
            Executor::Simulated(sim) => sim.carry_on(state, endpoints, r),
            Executor::Local(local) => local.carry_on(state, endpoints, r),
        }
    }

    /// At start: carries on what the last run left half-way; the local site also starts its
    /// reconciler, which removes what no System holds any more.
    pub fn resume_all(&self, state: &Arc<AppState>) {
        for r in state
            .registry
            .select(|r| matches!(r.state, State::System { .. }))
        {
            self.carry_on(state.clone(), state.endpoints.clone(), &r);
        }
        if let Executor::Local(local) = self {
            actix_rt::spawn(
                local
                    .clone()
                    .run_reconciler(state.clone(), RECONCILE_PERIOD),
            );
        }
    }

    /// Pauses (Suspend) or continues (Resume) System `r`'s nodes before the change shows.
    pub async fn pause(&self, r: Arc<Resource>, pause: bool) -> Result<(), OpError> {
        match self {
            Executor::Simulated(_) => Ok(()),
            Executor::Local(local) => Ok(local.pause(r, pause).await?),
        }
    }

    /// A reservation was released: what the site built for it goes.
    pub fn released(&self) {
        if let Executor::Local(local) = self {
            local.released();
        }
    }
}

/// How often the local site compares what runs with what the registry holds.
const RECONCILE_PERIOD: Duration = Duration::from_secs(10);

/// The simulated executor.
#[derive(Debug, Clone, Default)]
pub struct Simulated {
    /// Time spent in each transient phase.
    pub step: Duration,
    pub failures: Vec<InjectedFailure>,
    pub seed: u64,
}

impl Simulated {
    /// Whether System `id` fails at `phase`.
    fn fails(&self, id: &str, phase: Phase) -> bool {
        self.failures.iter().any(|f| {
            if f.phase != phase {
                return false;
            }
            // SipHash with fixed keys: the same decision on every run and platform.
            let mut h = std::hash::DefaultHasher::new();
            (self.seed, id, phase.as_str()).hash(&mut h);
            (h.finish() as f64 / u64::MAX as f64) < f.rate
        })
    }

    /// Moves System `r` on from where it is: a running one through provisioning → installing
    /// → ready, a terminated one from tearing-down to released. Does nothing for a System with
    /// no such phase to leave (waiting-for-start is the clock's).
    pub fn carry_on(&self, state: Arc<AppState>, endpoints: Endpoints, r: &Resource) {
        let State::System { deployment: d, .. } = &r.state else {
            return;
        };
        let (lifecycle, steps) = match d.lifecycle {
            Lifecycle::Running => (Lifecycle::Running, DEPLOY),
            Lifecycle::Terminated => (Lifecycle::Terminated, RELEASE),
            _ => return,
        };
        let Some(at) = steps.iter().position(|(from, _)| Some(*from) == d.phase) else {
            return;
        };
        let (site, id, steps) = (self.clone(), r.id.clone(), &steps[at..]);
        actix_rt::spawn(async move {
            if steps.first().map(|(from, _)| *from) == Some(Phase::Provisioning) {
                if let Err(e) = provision(&state, &id).await {
                    let why = format!("provisioning failed: {e}");
                    fail(&state, &endpoints, &id, lifecycle, Phase::Provisioning, why).await;
                    return;
                }
            }
            for (from, to) in steps {
                actix_rt::time::sleep(site.step).await;
                if site.fails(&id, *from) {
                    let why = format!(
                        "the simulated site failed the cluster while {}",
                        from.as_str()
                    );
                    fail(&state, &endpoints, &id, lifecycle, *from, why).await;
                    return;
                }
                if !advance(&state, &endpoints, &id, lifecycle, *from, *to).await {
                    return;
                }
            }
        });
    }
}

/// What provisioning does before the VMs start: the cluster's nodes become hosts that may
/// install (idempotent, so a restart mid-provisioning repeats it safely). Their MACs and
/// addresses are only unique among clusters whose reservations overlap, so they are
/// registered for the reservation's time only.
pub(crate) async fn provision(state: &AppState, id: &str) -> Result<(), OpError> {
    let Some(r) = state.registry.get(id) else {
        return Ok(());
    };
    let State::System { deployment: d, .. } = &r.state else {
        return Ok(());
    };
    match (&d.spec, &d.allocation) {
        (Some(spec), Some(allocation)) => {
            crate::reservation::register_hosts(state, id, spec, allocation).await
        }
        _ => Ok(()),
    }
}

const DEPLOY: &[(Phase, Phase)] = &[
    (Phase::Provisioning, Phase::Installing),
    (Phase::Installing, Phase::Ready),
];
const RELEASE: &[(Phase, Phase)] = &[(Phase::TearingDown, Phase::Released)];

/// Applies `change` only if System `id` is still in `lifecycle` and `from`, so a Terminate,
/// Suspend or Destroy in between wins. Whether it moved.
async fn step_from(
    state: &AppState,
    endpoints: &Endpoints,
    id: &str,
    lifecycle: Lifecycle,
    from: Phase,
    change: impl FnOnce(&Deployment) -> Deployment,
) -> bool {
    let moved = crate::system::transition(state, endpoints, id, |d| {
        if d.lifecycle == lifecycle && d.phase == Some(from) {
            Ok(change(d))
        } else {
            Err(OpError::WrongState {
                operation: "the site",
                state: d.lifecycle,
                phase: d.phase,
            })
        }
    })
    .await;
    match moved {
        Ok(_) => true,
        Err(OpError::WrongState { .. } | OpError::ResourceUnknown(_)) => false,
        Err(e) => {
            tracing::error!(id, error = %e, "the site could not record a phase change");
            false
        }
    }
}

pub(crate) async fn advance(
    state: &AppState,
    endpoints: &Endpoints,
    id: &str,
    lifecycle: Lifecycle,
    from: Phase,
    to: Phase,
) -> bool {
    step_from(state, endpoints, id, lifecycle, from, |d| Deployment {
        phase: Some(to),
        ..d.clone()
    })
    .await
}

/// The deployment failed: the System goes to failed and its reservation is released.
pub(crate) async fn fail(
    state: &AppState,
    endpoints: &Endpoints,
    id: &str,
    lifecycle: Lifecycle,
    from: Phase,
    why: String,
) {
    tracing::warn!(id, phase = from.as_str(), reason = %why, "deployment failed");
    // Released before the failure shows, so whoever sees it may reuse the capacity.
    crate::reservation::release(state, id, "deployment failed").await;
    let now = Utc::now();
    step_from(state, endpoints, id, lifecycle, from, |d| Deployment {
        lifecycle: Lifecycle::Failed,
        phase: Some(Phase::Failed),
        failure: Some(why),
        released: d.released.or(Some(now)),
        ..d.clone()
    })
    .await;
}

/// What the clock must do for a System at `now`, if anything.
fn due(d: &Deployment, now: DateTime<Utc>) -> Option<Due> {
    let window = d.held_window()?;
    let (start, end) = (
        crate::reservation::time(window.start),
        crate::reservation::time(window.end),
    );
    if end <= now
        && matches!(
            d.lifecycle,
            Lifecycle::Initialized | Lifecycle::Running | Lifecycle::Suspended
        )
    {
        return Some(Due::End);
    }
    (d.lifecycle == Lifecycle::Running && d.phase == Some(Phase::WaitingForStart) && start <= now)
        .then_some(Due::Start)
}

enum Due {
    Start,
    End,
}

/// The next time the clock has something to do for System `d`.
fn next_time(d: &Deployment) -> Option<DateTime<Utc>> {
    let window = d.held_window()?;
    match (d.lifecycle, d.phase) {
        (Lifecycle::Running, Some(Phase::WaitingForStart)) => {
            Some(crate::reservation::time(window.start))
        }
        (Lifecycle::Initialized | Lifecycle::Running | Lifecycle::Suspended, _) => {
            Some(crate::reservation::time(window.end))
        }
        _ => None,
    }
}

/// One pass of the clock as of `now`: deploys what starts, ends what ends, and releases
/// reservations whose end passed without a System to end them. Returns the next due time.
pub async fn tick(state: &Arc<AppState>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let endpoints = state.endpoints.clone();
    let mut work: Vec<(Due, Arc<Resource>)> = state
        .registry
        .select(|r| matches!(r.state, State::System { .. }))
        .into_iter()
        .filter_map(|r| match &r.state {
            State::System { deployment: d, .. } => due(d, now).map(|due| (due, r.clone())),
            _ => None,
        })
        .collect();
    // Ends first: a cluster starting as another ends may get its MACs and addresses.
    work.sort_by_key(|(due, _)| matches!(due, Due::Start));
    for (due, r) in work {
        match due {
            Due::Start => {
                let moved = step_from(
                    state,
                    &endpoints,
                    &r.id,
                    Lifecycle::Running,
                    Phase::WaitingForStart,
                    |d| Deployment {
                        phase: Some(Phase::Provisioning),
                        ..d.clone()
                    },
                )
                .await;
                if moved {
                    tracing::info!(id = %r.id, "reservation started: deploying");
                    if let Some(updated) = state.registry.get(&r.id) {
                        state
                            .executor
                            .carry_on(state.clone(), endpoints.clone(), &updated);
                    }
                }
            }
            Due::End => {
                tracing::info!(id = %r.id, "reservation ended: taking the cluster down");
                if let Err(e) =
                    crate::system::terminate_now(state, &endpoints, &r.id, "reservation ended")
                        .await
                {
                    tracing::error!(id = %r.id, error = %e, "could not end the cluster");
                }
            }
        }
    }
    let book = state.book.clone();
    let expired = actix_web::web::block(move || book.expire(now.timestamp())).await;
    match expired {
        Ok(Ok(ids)) if !ids.is_empty() => tracing::info!(?ids, "reservations ended and released"),
        Ok(Err(e)) => tracing::error!(error = %e, "could not release ended reservations"),
        Err(e) => tracing::error!(error = %e, "could not release ended reservations"),
        _ => {}
    }
    state
        .registry
        .select(|r| matches!(r.state, State::System { .. }))
        .iter()
        .filter_map(|r| match &r.state {
            State::System { deployment, .. } => next_time(deployment),
            _ => None,
        })
        .min()
}

/// The clock loop: wakes at the next due time, at most a second apart.
pub async fn run_clock(state: Arc<AppState>) {
    loop {
        let next = tick(&state, Utc::now()).await;
        let cap = Duration::from_secs(1);
        let wait = next.map_or(cap, |t| {
            (t - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(cap)
        });
        actix_rt::time::sleep(wait.max(Duration::from_millis(10))).await;
    }
}

/// The local site's P-nodes: this machine split in two (`pnode1`, `pnode2`), each with its
/// share of memory and twice its share of cores (virtual CPUs are overcommitted 4:1 overall,
/// as small test clusters idle most of the time), both able to host a GW-node.
pub fn local_pnodes() -> Vec<vcds_placement::PNode> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    let memory_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(8192, |kib| kib / 1024);
    let share = vcds_placement::Resources::new(cores * 2, memory_mib / 2, 200);
    ["pnode1", "pnode2"]
        .into_iter()
        .map(|name| vcds_placement::PNode::new(name, share).gw_capable(true))
        .collect()
}

/// A simulated site of `count` P-nodes (`p00001`, …) of 64 cores, 256 GiB and 4 TiB; every
/// tenth can host a GW-node.
pub fn simulated_pnodes(count: usize) -> Vec<vcds_placement::PNode> {
    (0..count)
        .map(|i| {
            vcds_placement::PNode::new(
                format!("p{:05}", i + 1),
                vcds_placement::Resources::new(64, 256 * 1024, 4096),
            )
            .gw_capable(i % 10 == 0)
        })
        .collect()
}
