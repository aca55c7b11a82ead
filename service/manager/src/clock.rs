//! The reservation clock. Reservation windows live in the store (the reservation book and each
//! System's row), and [`Manager::tick`] derives what is due from them, so starts and ends that
//! fall while the service is down are carried out when it comes back.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use vcds_model::{Deployment, Event, Lifecycle, Phase, Resource};

use crate::Manager;

/// What the clock must do for a System.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Its reservation started: deploy.
    Start,
    /// Its reservation ended: take it down.
    End,
}

/// What the clock must do for deployment `d` at `now`, if anything.
pub fn due(d: &Deployment, now: DateTime<Utc>) -> Option<Due> {
    let window = d.held_window()?;
    let (start, end) = (vcds_model::time(window.start), vcds_model::time(window.end));
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

/// The next time the clock has something to do for deployment `d`.
pub fn next_time(d: &Deployment) -> Option<DateTime<Utc>> {
    let window = d.held_window()?;
    match (d.lifecycle, d.phase) {
        (Lifecycle::Running, Some(Phase::WaitingForStart)) => Some(vcds_model::time(window.start)),
        (Lifecycle::Initialized | Lifecycle::Running | Lifecycle::Suspended, _) => {
            Some(vcds_model::time(window.end))
        }
        _ => None,
    }
}

impl Manager {
    /// One pass of the clock as of `now`: deploys what starts, ends what ends, and releases
    /// reservations whose end passed without a System to end them. Returns the next due time.
    pub async fn tick(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut work: Vec<(Due, Arc<Resource>)> = self
            .registry
            .systems()
            .into_iter()
            .filter_map(|r| due(r.deployment()?, now).map(|due| (due, r)))
            .collect();
        // Ends first: a cluster starting as another ends may get its MACs and addresses.
        work.sort_by_key(|(due, _)| matches!(due, Due::Start));
        for (due, r) in work {
            match due {
                Due::Start => match self.apply(&r.id, Event::Start).await {
                    Ok(updated) => {
                        tracing::info!(id = %r.id, "reservation started: deploying");
                        self.carry_on(&updated).await;
                    }
                    Err(e) => tracing::debug!(id = %r.id, error = %e, "not started"),
                },
                Due::End => {
                    tracing::info!(id = %r.id, "reservation ended: taking the cluster down");
                    if let Err(e) = self.terminate(&r.id, "reservation ended").await {
                        tracing::error!(id = %r.id, error = %e, "could not end the cluster");
                    }
                }
            }
        }
        match self
            .with_book(move |book| book.expire(now.timestamp()))
            .await
        {
            Ok(ids) if !ids.is_empty() => tracing::info!(?ids, "reservations ended and released"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not release ended reservations"),
        }
        self.registry
            .systems()
            .iter()
            .filter_map(|r| next_time(r.deployment()?))
            .min()
    }

    /// The clock loop: wakes at the next due time, at most a second apart.
    pub async fn run_clock(self: Arc<Self>) {
        loop {
            let next = self.tick(Utc::now()).await;
            let cap = Duration::from_secs(1);
            let wait = next.map_or(cap, |t| {
                (t - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(cap)
            });
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
    }
}
