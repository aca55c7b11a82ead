//! Install completion: nodes report their progress to the install endpoints; each report is a
//! domain event, and the deployment of an installing System becomes ready when every node
//! finished, or fails, naming the node, when one failed. Nothing polls. The frontends'
//! scheduler reports are domain events too.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::broadcast::error::RecvError;
use vcds_install::InstallState;
use vcds_model::{Event, Lifecycle, Phase};

use crate::events::DomainEvent;
use crate::Manager;

impl Manager {
    /// Follows the nodes' progress reports for as long as the manager lives.
    pub(crate) async fn watch_installs(self: Arc<Self>) {
        let mut reports = self.install.progress_events();
        loop {
            match reports.recv().await {
                Ok(progress) => {
                    let id = progress.cluster.clone();
                    self.events.publish(DomainEvent::NodeChanged(progress));
                    self.check_install(&id).await;
                }
                // Fell behind: every installing System is looked at again.
                Err(RecvError::Lagged(_)) => {
                    for r in self.registry.systems() {
                        self.check_install(&r.id).await;
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Follows the frontends' scheduler reports: each change is a domain event of its System.
    pub(crate) async fn watch_schedulers(self: Arc<Self>) {
        let mut reports = self.install.scheduler_events();
        loop {
            match reports.recv().await {
                Ok(report) => {
                    if let Some(system) = self.registry.get(&report.cluster) {
                        self.events.publish(DomainEvent::SchedulerChanged {
                            system,
                            before: report.before,
                            after: report.after,
                        });
                    }
                }
                // Fell behind: the next reports carry the views again.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// If System `id` is installing and its nodes' reports decide it: ready, or failed.
    pub(crate) async fn check_install(&self, id: &str) {
        let installing = self.registry.get(id).and_then(|r| {
            r.deployment()
                .map(|d| (d.lifecycle, d.phase) == (Lifecycle::Running, Some(Phase::Installing)))
        });
        if installing != Some(true) {
            return;
        }
        let rows = self.install.node_table(id);
        let state = |row: &vcds_install::NodeRow| row.install.as_ref().map(|i| i.state);
        if let Some(row) = rows.iter().find(|r| state(r) == Some(InstallState::Failed)) {
            let reason = row
                .install
                .as_ref()
                .and_then(|i| i.message.clone())
                .unwrap_or_else(|| "no reason given".into());
            self.fail(id, format!("node {} failed to install: {reason}", row.host))
                .await;
        } else if !rows.is_empty()
            && rows
                .iter()
                .all(|r| state(r) == Some(InstallState::Finished))
        {
            match self.apply(id, Event::Installed).await {
                Ok(_) => {
                    tracing::info!(id, at = %Utc::now(), "every node installed: cluster ready")
                }
                Err(e) => tracing::debug!(id, error = %e, "install completion not recorded"),
            }
        }
    }
}
