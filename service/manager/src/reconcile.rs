//! Taking down is reconciliation: what the site holds is compared with the Systems that should
//! hold it, after every release, every [`PERIOD`] and at start (which also finishes what a
//! killed manager left half-done, reservations included).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Manager;

/// How often the site is compared with what the registry holds, with no release to prompt it.
const PERIOD: Duration = Duration::from_secs(10);

/// Each P-node's monitoring port as the last pass found it.
pub(crate) type GmondPorts = Mutex<BTreeMap<String, String>>;

impl Manager {
    /// One pass: what no System holds is removed; the poller follows the P-nodes' gmond ports.
    pub async fn reconcile(&self) -> Result<usize, crate::ManagerError> {
        let pass = self.executor.clone().reconcile(self.reporter()).await?;
        self.watch_gmond(pass.gmond);
        Ok(pass.removed)
    }

    /// A restarted agent's new gmond port replaces its old one in the polled list.
    fn watch_gmond(&self, now: BTreeMap<String, String>) {
        let mut known = self
            .gmond
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (pnode, old) in known.iter() {
            if now.get(pnode) != Some(old) {
                self.monitoring.remove_endpoint(old);
            }
        }
        for (pnode, endpoint) in &now {
            if self.monitoring.add_endpoint(endpoint.clone()) {
                tracing::info!(pnode = %pnode, %endpoint, "polling the P-node agent's gmond port");
            }
        }
        *known = now;
    }

    pub(crate) async fn run_reconciler(self: Arc<Self>) {
        match self.release_orphan_reservations().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                released = n,
                "released reservations of Systems that are gone"
            ),
            Err(e) => tracing::warn!(error = %e, "checking for reservations without a System"),
        }
        loop {
            match self.reconcile().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "reconciled the site"),
                Err(e) => tracing::warn!(error = %e, "reconciling the site"),
            }
            let _ = tokio::time::timeout(PERIOD, self.reconciler.notified()).await;
        }
    }
}
