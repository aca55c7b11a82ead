//! WS-Notification of what the manager publishes: each domain event becomes the
//! `wsnt:Notify` messages of the topics it concerns, sent to the subscriptions on its
//! producer that asked for them (through [`Notifier`], which never blocks). EPRs in the
//! messages are built from the service's configured public address.

use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use vcds_manager::{DomainEvent, Manager, Sink};
use vcds_model::{Lifecycle, Resource, State, PORTAL_ID};
use vcds_wsrf::{notify, xsd_datetime};
use vcds_xml::QName;

use crate::kinds::{
    self, q, Endpoints, API, CMP, LIFECYCLE_TRANSITION, MUWS1, NODE_METRICS, PHASE,
    RESOURCE_TERMINATION, SCHEDULER,
};
use crate::notifier::Notifier;
use crate::scope::Scope;
use crate::xml::Element;

/// GFD.69 lifecycle events carry this EventId.
const LIFECYCLE_EVENT: &str = "http://www.gridforum.org/cddlm/components/2005/02/events/Lifecycle";
use vcds_protocol::ns::MUWS2;

/// The notification sink, registered with the manager's events.
pub struct Notifications {
    /// Weak: the manager holds its sinks.
    pub manager: Weak<Manager>,
    pub notifier: Notifier,
    pub endpoints: Endpoints,
}

impl Sink for Notifications {
    fn publish(&self, event: &DomainEvent) {
        let Some(manager) = self.manager.upgrade() else {
            return;
        };
        let to = Subscribers {
            manager: &manager,
            notifier: &self.notifier,
            endpoints: &self.endpoints,
        };
        match event {
            DomainEvent::SystemsChanged { before, after } => to.active_systems(before, after),
            DomainEvent::Transition {
                system,
                from,
                to: into,
                at,
            } => to.send(
                system,
                &LIFECYCLE_TRANSITION,
                &lifecycle_event(&system.id, *from, *into, *at),
            ),
            DomainEvent::PhaseChanged {
                system,
                from,
                to: into,
            } => to.send(
                system,
                &PHASE,
                &notify::value_change(&kinds::phase_values(*from), &kinds::phase_values(*into)),
            ),
            DomainEvent::PropertiesChanged { resource, changes } => {
                for c in changes {
                    let message = notify::value_change(&c.old, &c.new);
                    to.send(resource, &q(&c.ns, &c.local), &message);
                }
            }
            DomainEvent::MetricsChanged {
                system,
                before,
                after,
            } => {
                let old = before
                    .as_ref()
                    .map(|b| kinds::node_metrics(&b.nodes))
                    .unwrap_or_default();
                let message = notify::value_change(&old, &kinds::node_metrics(&after.nodes));
                to.send(system, &NODE_METRICS, &message);
            }
            DomainEvent::SchedulerChanged {
                system,
                before,
                after,
            } => {
                let message = notify::value_change(
                    &kinds::scheduler_values(system, before.as_ref()),
                    &kinds::scheduler_values(system, Some(after)),
                );
                to.send(system, &SCHEDULER, &message);
            }
            DomainEvent::Destroying {
                resource,
                reason,
                at,
            } => {
                // A System destroyed before it was terminated ends now, and says so first.
                if let Some(d) = resource.deployment() {
                    if d.lifecycle != Lifecycle::Terminated {
                        let event =
                            lifecycle_event(&resource.id, d.lifecycle, Lifecycle::Terminated, *at);
                        to.send(resource, &LIFECYCLE_TRANSITION, &event);
                    }
                }
                to.send(
                    resource,
                    &RESOURCE_TERMINATION,
                    &notify::termination(*at, reason),
                );
            }
            DomainEvent::Created(_)
            | DomainEvent::ReservationExtended { .. }
            | DomainEvent::NodeChanged(_)
            | DomainEvent::Destroyed(_) => {}
        }
    }
}

struct Subscribers<'a> {
    manager: &'a Manager,
    notifier: &'a Notifier,
    endpoints: &'a Endpoints,
}

impl Subscribers<'_> {
    /// Sends `message` on `topic` to every subscriber of `producer` that asked for it.
    fn send(&self, producer: &Resource, topic: &QName, message: &str) {
        self.send_each(producer, topic, |_| Some(message.to_string()));
    }

    /// Like [`send`](Self::send), with each subscriber's own message (`None`: nothing for
    /// that one).
    fn send_each(
        &self,
        producer: &Resource,
        topic: &QName,
        message_for: impl Fn(&Resource) -> Option<String>,
    ) {
        let subscribers = self.manager.registry().select(|r| match &r.state {
            State::Subscription(s) => {
                s.producer == producer.id
                    && s.topic
                        .as_ref()
                        .is_none_or(|(ns, local)| ns == &topic.ns && local == &topic.local)
            }
            _ => false,
        });
        let producer_epr = self.endpoints.of(producer);
        for sub in subscribers {
            if let State::Subscription(s) = &sub.state {
                let Some(message) = message_for(&sub) else {
                    continue;
                };
                let body = notify::notification_message(
                    &self.endpoints.of(&sub),
                    topic,
                    &producer_epr,
                    &message,
                );
                self.notifier.send(s.consumer.clone(), body);
            }
        }
    }

    /// Tells Portal subscribers that the set of Systems changed, each as far as its scope sees
    /// it: a subscriber who cannot see the System that came or went hears nothing.
    fn active_systems(&self, before: &[Arc<Resource>], after: &[Arc<Resource>]) {
        if let Some(portal) = self.manager.registry().get(PORTAL_ID) {
            self.send_each(&portal, &q(API, "ActiveSystems"), |sub| {
                let scope = Scope::of_subscription(sub);
                let old = kinds::active_systems_of(before, self.endpoints, &scope);
                let new = kinds::active_systems_of(after, self.endpoints, &scope);
                (old != new).then(|| notify::value_change(&[old], &[new]))
            });
        }
    }
}

/// A MUWS ManagementEvent carrying the `cmp:LifecycleTransition` (cddlm.md §2.4).
pub fn lifecycle_event(id: &str, from: Lifecycle, to: Lifecycle, at: DateTime<Utc>) -> String {
    let at = xsd_datetime(at);
    Element::new("muws1", MUWS1, "ManagementEvent")
        .declare("muws2", MUWS2)
        .declare("cmp", CMP)
        .attr("ReportTime", &at)
        .child(Element::new("muws1", MUWS1, "EventId").text(LIFECYCLE_EVENT))
        .child(
            Element::new("muws1", MUWS1, "SourceComponent")
                .child(Element::new("muws1", MUWS1, "ResourceId").text(id)),
        )
        .child(Element::new("muws2", MUWS2, "Situation").child(
            Element::new("muws2", MUWS2, "SituationCategory").child(Element::new(
                "cmp",
                CMP,
                "LifecycleSituation",
            )),
        ))
        .child(
            Element::new("cmp", CMP, "LifecycleTransition").child(
                Element::new("muws2", MUWS2, "StateTransition")
                    .attr("Time", &at)
                    .child(
                        Element::new("muws2", MUWS2, "EnteredState").raw(&kinds::state_element(to)),
                    )
                    .child(
                        Element::new("muws2", MUWS2, "PreviousState")
                            .raw(&kinds::state_element(from)),
                    ),
            ),
        )
        .render()
}
