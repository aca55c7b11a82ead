//! The simulated site (`--site sim`): phases one step apart, failures injected reproducibly;
//! no node exists, so it reports the install itself. For scale tests of everything above the
//! site; never what a feature of the real site is verified on.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use vcds_model::{Event, Lifecycle, Phase};

use crate::executor::{BoxFuture, ExecError, Executor, Job, Reconciled, Reporter};

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

/// The simulated executor.
#[derive(Debug, Clone, Default)]
pub struct Simulated {
    /// Time spent in each transient phase.
    pub step: Duration,
    pub failures: Vec<InjectedFailure>,
    pub seed: u64,
}

/// Each transient phase and the event that ends it.
const STEPS: &[(Lifecycle, Phase, Event)] = &[
    (Lifecycle::Running, Phase::Provisioning, Event::Provisioned),
    (Lifecycle::Running, Phase::Installing, Event::Installed),
    (Lifecycle::Terminated, Phase::TearingDown, Event::TornDown),
];

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
}

impl Executor for Simulated {
    /// A step later each transient phase ends (or fails), as long as the System is still in it.
    fn carry_on(self: Arc<Self>, job: Job, reporter: Reporter) {
        if !STEPS
            .iter()
            .any(|(l, p, _)| (*l, Some(*p)) == (job.lifecycle, job.phase))
        {
            return;
        }
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(self.step).await;
                let Some((lifecycle, Some(phase))) = reporter.state_of(&job.system) else {
                    return;
                };
                let Some((_, _, event)) = STEPS
                    .iter()
                    .find(|(l, p, _)| (*l, *p) == (lifecycle, phase))
                else {
                    return;
                };
                if lifecycle == Lifecycle::Running && self.fails(&job.system, phase) {
                    let why = format!(
                        "the simulated site failed the cluster while {}",
                        phase.as_str()
                    );
                    reporter.report(
                        &job.system,
                        Event::Fail {
                            now: Utc::now(),
                            why,
                        },
                    );
                    return;
                }
                reporter.report(&job.system, event.clone());
            }
        });
    }

    fn pause(
        self: Arc<Self>,
        _job: Job,
        _pause: bool,
    ) -> BoxFuture<'static, Result<(), ExecError>> {
        Box::pin(async { Ok(()) })
    }

    fn reconcile(
        self: Arc<Self>,
        _reporter: Reporter,
    ) -> BoxFuture<'static, Result<Reconciled, ExecError>> {
        Box::pin(async { Ok(Reconciled::default()) })
    }
}
