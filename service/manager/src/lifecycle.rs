//! Creation and destruction of resources, and the sweeper that carries out scheduled
//! termination (also for resources whose time passed while the service was down).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use vcds_model::{Resource, State};

use crate::events::DomainEvent;
use crate::{Manager, RegistryError};

impl Manager {
    /// Stores a new resource, then announces it.
    pub async fn create(&self, resource: Resource) -> Result<Arc<Resource>, RegistryError> {
        let before = self.registry.systems();
        let created = self.registry.put(resource).await?;
        tracing::info!(id = %created.id, kind = created.state.kind(), "resource created");
        self.events.publish(DomainEvent::Created(created.clone()));
        if created.is_system() {
            self.events.publish(DomainEvent::SystemsChanged {
                before,
                after: self.registry.systems(),
            });
        }
        Ok(created)
    }

    /// Destroys resources and, with each producer, the subscriptions on it; whoever listens
    /// hears of each (`Destroying`) while its subscriptions are still there.
    pub async fn destroy(&self, ids: Vec<String>, reason: &str) -> Result<(), RegistryError> {
        let before = self.registry.systems();
        let at = Utc::now();
        for id in &ids {
            if let Some(r) = self.registry.get(id) {
                if !matches!(r.state, State::Subscription(_)) {
                    self.events.publish(DomainEvent::Destroying {
                        resource: r,
                        reason: reason.to_string(),
                        at,
                    });
                }
            }
        }
        let dependants: Vec<String> = self
            .registry
            .select(|r| matches!(&r.state, State::Subscription(s) if ids.contains(&s.producer)))
            .iter()
            .map(|r| r.id.clone())
            .collect();
        let removed = self
            .registry
            .remove(ids.into_iter().chain(dependants).collect())
            .await?;
        for r in &removed {
            tracing::info!(id = %r.id, kind = r.state.kind(), reason, "resource destroyed");
            if r.is_system() {
                self.release(&r.id, "destroyed").await;
            }
            self.events.publish(DomainEvent::Destroyed(r.clone()));
        }
        if removed.iter().any(|r| r.is_system()) {
            self.events.publish(DomainEvent::SystemsChanged {
                before,
                after: self.registry.systems(),
            });
        }
        Ok(())
    }

    /// Destroys whatever has reached its termination time.
    pub async fn sweep(&self) -> Result<usize, RegistryError> {
        let expired = self.registry.expired(Utc::now());
        let n = expired.len();
        if n > 0 {
            self.destroy(expired, "termination time reached").await?;
        }
        Ok(n)
    }

    /// How long the sweeper may sleep: until the next termination time, at most a second, so
    /// a termination time set while it sleeps is honoured promptly even without a wake-up.
    fn sweeper_wait(&self) -> Duration {
        let cap = Duration::from_secs(1);
        match self.registry.next_termination() {
            Some(t) => (t - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(cap),
            None => cap,
        }
    }

    /// The sweeper loop; woken early when a termination time changes.
    pub async fn run_sweeper(self: Arc<Self>) {
        loop {
            if let Err(e) = self.sweep().await {
                tracing::error!(error = %e, "scheduled termination failed; retrying");
            }
            let wait = self.sweeper_wait();
            let _ = tokio::time::timeout(wait, self.sweeper.notified()).await;
        }
    }
}
