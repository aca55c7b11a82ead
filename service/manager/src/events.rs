//! What happened, as typed domain events, published once by the manager and rendered by the
//! sinks that registered: WS-Notification messages (the SOAP edge), the web UI's event log.
//! Publishing is synchronous and in order; a sink must not block (the notifier queues, the UI
//! ring appends), so publishing never holds up the change that caused it.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use vcds_install::{Progress, Reported};
use vcds_model::{Lifecycle, Phase, Resource};

use crate::monitoring::metrics::SystemMetrics;

/// One property's values before and after a change (`SetResourceProperties`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyChange {
    pub ns: String,
    pub local: String,
    pub old: Vec<String>,
    pub new: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum DomainEvent {
    /// A resource was created (a System, a Subscription).
    Created(Arc<Resource>),
    /// The set of live Systems changed (`api:ActiveSystems`).
    SystemsChanged {
        before: Vec<Arc<Resource>>,
        after: Vec<Arc<Resource>>,
    },
    /// A System's lifecycle state changed (`cmp:LifecycleTransition`); `system` is as stored.
    Transition {
        system: Arc<Resource>,
        from: Lifecycle,
        to: Lifecycle,
        at: DateTime<Utc>,
    },
    /// A System's phase changed (`vcds:Phase`).
    PhaseChanged {
        system: Arc<Resource>,
        from: Option<Phase>,
        to: Option<Phase>,
    },
    /// Writable properties changed.
    PropertiesChanged {
        resource: Arc<Resource>,
        changes: Vec<PropertyChange>,
    },
    /// The System's reservation was extended to `end`.
    ReservationExtended {
        system: Arc<Resource>,
        end: DateTime<Utc>,
    },
    /// A node reported install progress.
    NodeChanged(Progress),
    /// What a System's scheduler sees changed (its nodes' states, its queue), as its
    /// frontend reported it.
    SchedulerChanged {
        system: Arc<Resource>,
        before: Option<Reported>,
        after: Reported,
    },
    /// A System's nodes changed monitored state (up, stale, running, paused…).
    MetricsChanged {
        system: Arc<Resource>,
        before: Option<Arc<SystemMetrics>>,
        after: Arc<SystemMetrics>,
    },
    /// A resource is destroyed (its subscriptions with it); published before it goes, so
    /// its subscribers can still be found.
    Destroying {
        resource: Arc<Resource>,
        reason: String,
        at: DateTime<Utc>,
    },
    /// A resource is gone.
    Destroyed(Arc<Resource>),
}

/// Renders domain events somewhere.
pub trait Sink: Send + Sync {
    fn publish(&self, event: &DomainEvent);
}

/// The sinks, in the order they registered.
#[derive(Default)]
pub struct EventBus {
    sinks: RwLock<Vec<Arc<dyn Sink>>>,
}

impl EventBus {
    pub fn register(&self, sink: Arc<dyn Sink>) {
        self.sinks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(sink);
    }

    pub fn publish(&self, event: DomainEvent) {
        let sinks = self
            .sinks
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for sink in sinks {
            sink.publish(&event);
        }
    }
}
