//! Creation and destruction of resources, with the notifications they cause, and the sweeper
//! that carries out scheduled termination.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use vcds_wsrf::notify;
use vcds_xml::QName;

use crate::kinds::{self, q, Endpoint, Endpoints, API, RESOURCE_TERMINATION};
use crate::registry::{Registry, RegistryError, Resource, State, PORTAL_ID};
use crate::security::Scope;
use crate::AppState;

/// Sends `message` on `topic` to every subscriber of `producer` that asked for it.
pub fn publish(
    state: &AppState,
    endpoints: &Endpoints,
    producer: &Resource,
    topic: &QName,
    message: &str,
) {
    publish_each(state, endpoints, producer, topic, |_| {
        Some(message.to_string())
    });
}

/// Like [`publish`], with each subscriber's own message (`None`: nothing for that one).
fn publish_each(
    state: &AppState,
    endpoints: &Endpoints,
    producer: &Resource,
    topic: &QName,
    message_for: impl Fn(&Resource) -> Option<String>,
) {
    let subscribers = state.registry.select(|r| match &r.state {
        State::Subscription(s) => {
            s.producer == producer.id
                && s.topic
                    .as_ref()
                    .is_none_or(|(ns, local)| ns == &topic.ns && local == &topic.local)
        }
        _ => false,
    });
    let producer_epr = endpoints.of(producer);
    for sub in subscribers {
        if let State::Subscription(s) = &sub.state {
            let Some(message) = message_for(&sub) else {
                continue;
            };
            let body =
                notify::notification_message(&endpoints.of(&sub), topic, &producer_epr, &message);
            state.notifier.send(s.consumer.clone(), body);
        }
    }
}

/// Tells Portal subscribers that the set of Systems changed, each as far as its scope sees it:
/// a subscriber who cannot see the System that came or went hears nothing.
fn publish_active_systems(state: &AppState, endpoints: &Endpoints, before: Vec<Arc<Resource>>) {
    if let Some(portal) = state.registry.get(PORTAL_ID) {
        let after = kinds::systems(&state.registry);
        publish_each(state, endpoints, &portal, &q(API, "ActiveSystems"), |sub| {
            let scope = Scope::of_subscription(sub);
            let old = kinds::active_systems_of(&before, endpoints, &scope);
            let new = kinds::active_systems_of(&after, endpoints, &scope);
            (old != new).then(|| notify::value_change(&[old], &[new]))
        });
    }
}

pub async fn create(
    state: &AppState,
    endpoints: &Endpoints,
    resource: Resource,
) -> Result<Arc<Resource>, RegistryError> {
    let before = kinds::systems(&state.registry);
    let created = state.registry.put(resource).await?;
    tracing::info!(id = %created.id, kind = created.state.kind(), "resource created");
    if matches!(created.state, State::System { .. }) {
        state
            .events
            .record(&created.id, format!("created by {}", created.owner));
    }
    publish_active_systems(state, endpoints, before);
    Ok(created)
}

/// Destroys resources and, with each producer, the subscriptions on it; subscribers to
/// `wsrf-rl:ResourceTermination` (and to `cmp:LifecycleTransition` of a System that was not
/// terminated) hear of it first.
pub async fn destroy(
    state: &AppState,
    endpoints: &Endpoints,
    ids: Vec<String>,
    reason: &str,
) -> Result<(), RegistryError> {
    let before = kinds::systems(&state.registry);
    let now = Utc::now();
    for id in &ids {
        if let Some(r) = state.registry.get(id) {
            if Endpoint::of(&r.state) != Endpoint::Subscription {
                crate::system::announce_destroy(state, endpoints, &r);
                publish(
                    state,
                    endpoints,
                    &r,
                    &RESOURCE_TERMINATION,
                    &notify::termination(now, reason),
                );
            }
        }
    }
    let dependants: Vec<String> = state
        .registry
        .select(|r| matches!(&r.state, State::Subscription(s) if ids.contains(&s.producer)))
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let removed = state
        .registry
        .remove(ids.into_iter().chain(dependants).collect())
        .await?;
    for r in &removed {
        tracing::info!(id = %r.id, kind = r.state.kind(), reason, "resource destroyed");
        if matches!(r.state, State::System { .. }) {
            crate::reservation::release(state, &r.id, "destroyed").await;
            state.events.forget(&r.id);
        }
    }
    if removed
        .iter()
        .any(|r| matches!(r.state, State::System { .. }))
    {
        publish_active_systems(state, endpoints, before);
    }
    Ok(())
}

/// Destroys whatever has reached its termination time, including resources whose time passed
/// while the service was down.
pub async fn sweep(state: &AppState) -> Result<usize, RegistryError> {
    let expired = state.registry.expired(Utc::now());
    let n = expired.len();
    if n > 0 {
        destroy(state, &state.endpoints, expired, "termination time reached").await?;
    }
    Ok(n)
}

/// How long the sweeper may sleep: until the next termination time, at most a second, so a
/// termination time set while it sleeps is honoured promptly even without a wake-up.
fn next_wait(registry: &Registry) -> Duration {
    let cap = Duration::from_secs(1);
    match registry.next_termination() {
        Some(t) => (t - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(cap),
        None => cap,
    }
}

/// The sweeper loop; woken early through `AppState::sweeper`.
pub async fn run_sweeper(state: Arc<AppState>) {
    loop {
        if let Err(e) = sweep(&state).await {
            tracing::error!(error = %e, "scheduled termination failed; retrying");
        }
        let wait = next_wait(&state.registry);
        let _ = tokio::time::timeout(wait, state.sweeper.notified()).await;
    }
}
