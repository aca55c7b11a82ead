//! Stand-in for the P-node side until placement and vcds-site drive real VMs: moves a running
//! System from waiting-for-start (until its reservation starts) through provisioning →
//! installing → ready, and a terminated one from tearing-down to released, one `step` apart. Placement and the real site replace this module; the System API
//! does not change when they do.

use std::sync::Arc;
use std::time::Duration;

use crate::faults::OpError;
use crate::kinds::Endpoints;
use chrono::Utc;

use crate::registry::{Deployment, Lifecycle, Phase, Resource, State};
use crate::AppState;

/// The simulated site.
#[derive(Debug, Clone, Copy)]
pub struct Simulated {
    /// Time spent in each transient phase.
    pub step: Duration,
}

impl Simulated {
    /// Moves System `r` on from where it is: after Run (waiting-for-start until the reservation
    /// starts, then provisioning → installing → ready), after Terminate (tearing-down →
    /// released). Does nothing for a System with no timeline to follow.
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
        let start = d
            .spec
            .as_ref()
            .and_then(|s| s.reservation.window(Utc::now()))
            .map(|(start, _)| start);
        let (step, id, steps) = (self.step, r.id.clone(), &steps[at..]);
        actix_rt::spawn(async move {
            for (from, to) in steps {
                let wait = match (from, start) {
                    (Phase::WaitingForStart, Some(t)) => {
                        (t - Utc::now()).to_std().unwrap_or(Duration::ZERO)
                    }
                    _ => step,
                };
                actix_rt::time::sleep(wait).await;
                if !advance(&state, &endpoints, &id, lifecycle, *from, *to).await {
                    return;
                }
            }
        });
    }

    /// At start: carries on the timelines the last run of the service left half-way, since the
    /// tasks that drove them died with it.
    pub fn resume_all(&self, state: &Arc<AppState>) {
        for r in state
            .registry
            .select(|r| matches!(r.state, State::System { .. }))
        {
            self.carry_on(state.clone(), state.endpoints.clone(), &r);
        }
    }
}

const DEPLOY: &[(Phase, Phase)] = &[
    (Phase::WaitingForStart, Phase::Provisioning),
    (Phase::Provisioning, Phase::Installing),
    (Phase::Installing, Phase::Ready),
];
const RELEASE: &[(Phase, Phase)] = &[(Phase::TearingDown, Phase::Released)];

/// Moves the phase on only if the System is still where this timeline left it, so a Terminate,
/// Suspend or Destroy in between wins. Whether it moved.
async fn advance(
    state: &AppState,
    endpoints: &Endpoints,
    id: &str,
    lifecycle: Lifecycle,
    from: Phase,
    to: Phase,
) -> bool {
    let moved = crate::system::transition(state, endpoints, id, |d| {
        if d.lifecycle == lifecycle && d.phase == Some(from) {
            Ok(Deployment {
                phase: Some(to),
                ..d.clone()
            })
        } else {
            Err(OpError::WrongState {
                operation: "the simulated site",
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
            tracing::error!(id, error = %e, "simulated site could not record a phase change");
            false
        }
    }
}
