//! Recent lifecycle events of each System, for the web UI's event log: a bounded ring per
//! System, fed by the manager's domain events (creation, lifecycle and phase changes,
//! extensions) and dropped when the System is destroyed. Kept in memory only: the store holds
//! the state itself, and subscribers get the notifications; this is a recent-history view.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use vcds_manager::{DomainEvent, Sink};

/// Events kept per System (the oldest go first).
pub const PER_SYSTEM: usize = 64;
/// Systems with a ring at most; past it new Systems get none rather than memory growing.
pub const MAX_SYSTEMS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub what: String,
}

#[derive(Debug, Default)]
pub struct EventLog {
    rings: Mutex<HashMap<String, VecDeque<Event>>>,
}

impl EventLog {
    fn rings(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Event>>> {
        // A poisoned lock only means a panic elsewhere; the rings stay consistent.
        self.rings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends an event to System `id`'s ring.
    pub fn record(&self, id: &str, what: impl Into<String>) {
        let mut rings = self.rings();
        if !rings.contains_key(id) && rings.len() >= MAX_SYSTEMS {
            return;
        }
        let ring = rings.entry(id.to_string()).or_default();
        if ring.len() == PER_SYSTEM {
            ring.pop_front();
        }
        ring.push_back(Event {
            at: Utc::now(),
            what: what.into(),
        });
    }

    /// System `id`'s recent events, newest first.
    pub fn recent(&self, id: &str) -> Vec<Event> {
        self.rings()
            .get(id)
            .map(|r| r.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Drops System `id`'s ring (it was destroyed).
    pub fn forget(&self, id: &str) {
        self.rings().remove(id);
    }
}

impl Sink for EventLog {
    fn publish(&self, event: &DomainEvent) {
        match event {
            DomainEvent::Created(r) if r.is_system() => {
                self.record(&r.id, format!("created by {}", r.owner));
            }
            DomainEvent::Transition {
                system, from, to, ..
            } => {
                let why = match system.deployment().and_then(|d| d.failure.as_ref()) {
                    Some(why) if *to == vcds_model::Lifecycle::Failed => format!(": {why}"),
                    _ => String::new(),
                };
                self.record(
                    &system.id,
                    format!("lifecycle {} → {}{why}", from.as_str(), to.as_str()),
                );
            }
            DomainEvent::PhaseChanged { system, from, to } => {
                let name =
                    |p: Option<vcds_model::Phase>| p.map_or("none", vcds_model::Phase::as_str);
                self.record(&system.id, format!("phase {} → {}", name(*from), name(*to)));
            }
            DomainEvent::ReservationExtended { system, end } => self.record(
                &system.id,
                format!("reservation extended to {}", vcds_wsrf::xsd_datetime(*end)),
            ),
            DomainEvent::Destroyed(r) if r.is_system() => self.forget(&r.id),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_are_bounded_newest_first_and_forgotten() {
        let log = EventLog::default();
        for i in 0..PER_SYSTEM + 5 {
            log.record("s1", format!("e{i}"));
        }
        let recent = log.recent("s1");
        assert_eq!(recent.len(), PER_SYSTEM);
        assert_eq!(recent[0].what, format!("e{}", PER_SYSTEM + 4));
        assert_eq!(recent[PER_SYSTEM - 1].what, "e5");
        log.forget("s1");
        assert!(log.recent("s1").is_empty());
    }
}
