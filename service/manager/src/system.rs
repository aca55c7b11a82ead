//! The CDDLM System operations (GFD.69) as the manager carries them out — Initialize,
//! AddFile, Run, Terminate, Resolve, the vcds Suspend and Resume, SetTerminationTime — and the
//! reports of executors. Every change of a deployment is one [`Event`] through
//! [`Manager::apply`]: checked by the state machine and stored under the registry's writer
//! lock, then published. A request that fails stores nothing.

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use vcds_cdl::{cluster, DocId, MemoryResolver, ResolvedDocument};
use vcds_model::{
    AddedFile, Deployment, Event, Initialized, Lifecycle, Phase, Resource, State, TransitionError,
};

use crate::events::{DomainEvent, PropertyChange};
use crate::{reservation, Manager, ManagerError};

/// Largest file AddFile accepts (decoded); descriptors and their imports are small text.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
const MAX_FILE_NAME: usize = 128;
/// The states in which AddFile is taken.
const ADD_FILE_ALLOWED: &[Lifecycle] = &[
    Lifecycle::Instantiated,
    Lifecycle::Initialized,
    Lifecycle::Running,
    Lifecycle::Suspended,
];
/// The name an inline descriptor is resolved under; its relative imports name added files.
const INLINE_NAME: &str = "descriptor";

/// Where Initialize's descriptor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Descriptor {
    /// The CDL document itself.
    Inline(String),
    /// The name of a file added with AddFile.
    Reference(String),
}

/// What an Initialize asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitializeRequest {
    pub descriptor: Descriptor,
    /// Parse, resolve, validate and try the reservation; store nothing.
    pub validate_only: bool,
}

fn deployment_of(r: &Resource) -> Result<&Deployment, ManagerError> {
    r.deployment()
        .ok_or_else(|| ManagerError::ResourceUnknown(r.id.clone()))
}

/// Refuses `event` up front when the deployment is not in one of `allowed`, before any costly
/// work; [`Manager::apply`] checks again under the writer lock.
fn require(d: &Deployment, event: &'static str, allowed: &[Lifecycle]) -> Result<(), ManagerError> {
    if allowed.contains(&d.lifecycle) {
        return Ok(());
    }
    Err(TransitionError::NotAllowed {
        event,
        state: d.lifecycle,
        phase: d.phase,
    }
    .into())
}

fn file_text(file: &AddedFile) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&file.data)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The added files that are text, for `cdl:import` and Initialize by reference.
fn resolver_of(d: &Deployment) -> MemoryResolver {
    let mut resolver = MemoryResolver::new();
    for (name, file) in &d.files {
        if let Some(text) = file_text(file) {
            resolver.add(name.clone(), text);
        }
    }
    resolver
}

fn resolve_stored(d: &Deployment) -> Result<Option<ResolvedDocument>, ManagerError> {
    match &d.descriptor {
        Some((name, text)) => Ok(Some(vcds_cdl::resolve(
            text,
            &DocId::new(name),
            &resolver_of(d),
        )?)),
        None => Ok(None),
    }
}

/// Whether `name` may name an added file (before anything is fetched or decoded for it).
pub fn check_file_name(name: &str) -> Result<(), ManagerError> {
    let bad = name.is_empty()
        || name.len() > MAX_FILE_NAME
        || name.contains("..")
        || name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | ':') || c.is_control());
    if bad {
        return Err(ManagerError::BadArgument(format!(
            "file name {name:?} must be 1..={MAX_FILE_NAME} characters without /, \\, :, .. or control characters"
        )));
    }
    Ok(())
}

impl Manager {
    /// The System `id`, or `ResourceUnknown`.
    fn system(&self, id: &str) -> Result<Arc<Resource>, ManagerError> {
        self.registry
            .get(id)
            .filter(|r| r.is_system())
            .ok_or_else(|| ManagerError::ResourceUnknown(id.to_string()))
    }

    /// Applies `event` to System `id`'s current deployment under the registry's writer lock
    /// (so it sees the current state, not the one a request started with), stores the
    /// result, then publishes the lifecycle and phase changes.
    pub async fn apply(&self, id: &str, event: Event) -> Result<Arc<Resource>, ManagerError> {
        let (updated, old) = self
            .registry
            .update(id, |current| {
                let State::System { props, deployment } = &current.state else {
                    return Err(ManagerError::ResourceUnknown(current.id.clone()));
                };
                let next = deployment.apply(event)?;
                let resource = Resource {
                    state: State::System {
                        props: props.clone(),
                        deployment: next,
                    },
                    ..current.clone()
                };
                Ok((resource, deployment.clone()))
            })
            .await?
            .ok_or_else(|| ManagerError::ResourceUnknown(id.to_string()))?;
        if let Some(new) = updated.deployment() {
            if new.lifecycle != old.lifecycle {
                tracing::info!(
                    id,
                    from = old.lifecycle.as_str(),
                    to = new.lifecycle.as_str(),
                    "lifecycle transition"
                );
                self.events.publish(DomainEvent::Transition {
                    system: updated.clone(),
                    from: old.lifecycle,
                    to: new.lifecycle,
                    at: Utc::now(),
                });
            }
            if new.phase != old.phase {
                self.events.publish(DomainEvent::PhaseChanged {
                    system: updated.clone(),
                    from: old.phase,
                    to: new.phase,
                });
            }
        }
        Ok(updated)
    }

    /// Applies what executors report, in order. An event the deployment may no longer take
    /// (a step reported after a Terminate) is dropped.
    pub(crate) async fn apply_reports(
        self: Arc<Self>,
        mut inbox: tokio::sync::mpsc::UnboundedReceiver<(String, Event)>,
    ) {
        while let Some((id, event)) = inbox.recv().await {
            let result = match event {
                Event::Fail { why, .. } => {
                    self.fail(&id, why).await;
                    continue;
                }
                event => self.apply(&id, event).await,
            };
            match result {
                Ok(updated) => {
                    let Some(d) = updated.deployment() else {
                        continue;
                    };
                    match (d.lifecycle, d.phase) {
                        (Lifecycle::Running, Some(Phase::Installing)) => {
                            self.carry_on(&updated).await;
                            // Nodes may have finished while the site still provisioned.
                            self.check_install(&id).await;
                        }
                        (Lifecycle::Running, Some(Phase::Ready)) => {
                            tracing::info!(id, "cluster ready");
                        }
                        _ => {}
                    }
                }
                Err(ManagerError::Transition(_) | ManagerError::ResourceUnknown(_)) => {}
                Err(e) => {
                    tracing::error!(id, error = %e, "could not record what the site reported")
                }
            }
        }
    }

    /// The deployment failed: the System goes to failed and its reservation is released —
    /// before the failure shows, so whoever sees it may reuse the capacity. Nothing happens
    /// if the deployment may not fail (any more).
    pub(crate) async fn fail(&self, id: &str, why: String) {
        let now = Utc::now();
        let event = Event::Fail {
            now,
            why: why.clone(),
        };
        let may = self
            .registry
            .get(id)
            .and_then(|r| r.deployment().map(|d| d.apply(event.clone()).is_ok()));
        if may != Some(true) {
            return;
        }
        tracing::warn!(id, reason = %why, "deployment failed");
        self.release(id, "deployment failed").await;
        if let Err(e) = self.apply(id, event).await {
            tracing::debug!(id, error = %e, "the failure was not recorded");
        }
    }

    /// Whether System `id` may be initialized now (checked before its request is read).
    pub fn may_initialize(&self, id: &str) -> Result<(), ManagerError> {
        require(
            deployment_of(&*self.system(id)?)?,
            "Initialize",
            &[Lifecycle::Instantiated],
        )
    }

    /// Whether System `id` may take a file now.
    pub fn may_add_file(&self, id: &str) -> Result<(), ManagerError> {
        require(
            deployment_of(&*self.system(id)?)?,
            "AddFile",
            ADD_FILE_ALLOWED,
        )
    }

    pub async fn initialize(
        &self,
        id: &str,
        request: InitializeRequest,
    ) -> Result<(), ManagerError> {
        let current = self.system(id)?;
        let current = deployment_of(&current)?;
        require(current, "Initialize", &[Lifecycle::Instantiated])?;
        let (name, text) = match request.descriptor {
            Descriptor::Inline(text) => (INLINE_NAME.to_string(), text),
            Descriptor::Reference(name) => {
                let text = current
                    .files
                    .get(&name)
                    .and_then(file_text)
                    .ok_or_else(|| {
                        ManagerError::BadArgument(format!(
                            "api:reference {name:?} names no text file added with AddFile"
                        ))
                    })?;
                (name, text)
            }
        };
        let doc = vcds_cdl::resolve(&text, &DocId::new(&name), &resolver_of(current))?;
        let spec = cluster::cluster_spec(&doc)?;
        self.check_installable(id, &spec)?;
        let now = Utc::now();
        let cluster = reservation::cluster_request(id, &spec, now, self.book.config())?;
        let allocation = self.reserve(cluster, now, request.validate_only).await?;
        if request.validate_only {
            return Ok(());
        }
        // Reserved: from here a failure must give the reservation back.
        let event = Event::Initialize(Box::new(Initialized {
            descriptor: (name, text),
            spec,
            allocation: allocation.clone(),
        }));
        if let Err(e) = self.apply(id, event).await {
            self.release(id, "initialize failed").await;
            return Err(e);
        }
        tracing::info!(
            id,
            nodes = allocation.nodes.len(),
            network_id = allocation.network_id.id,
            subnet = %allocation.subnet,
            gw_node = %allocation.gateway.pnode,
            start = allocation.window.start,
            end = allocation.window.end,
            "reserved"
        );
        Ok(())
    }

    /// AddFile: stores `bytes` as file `name` of System `id`.
    pub async fn add_file(
        &self,
        id: &str,
        name: &str,
        mimetype: String,
        bytes: &[u8],
    ) -> Result<(), ManagerError> {
        self.may_add_file(id)?;
        check_file_name(name)?;
        if bytes.is_empty() || bytes.len() > MAX_FILE_BYTES {
            return Err(ManagerError::BadArgument(format!(
                "file {name:?} must hold 1..={MAX_FILE_BYTES} bytes, got {}",
                bytes.len()
            )));
        }
        let file = AddedFile {
            mimetype,
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        };
        let event = Event::AddFile {
            name: name.to_string(),
            file,
        };
        match self.apply(id, event).await {
            Err(ManagerError::Transition(TransitionError::TooManyFiles)) => Err(
                ManagerError::BadArgument(TransitionError::TooManyFiles.to_string()),
            ),
            other => other.map(|_| ()),
        }
    }

    /// Run: deploys now, or at the reservation's start (the clock).
    pub async fn run(&self, id: &str) -> Result<(), ManagerError> {
        let updated = self.apply(id, Event::Run { now: Utc::now() }).await?;
        self.carry_on(&updated).await;
        Ok(())
    }

    /// Terminates System `id` now (Terminate, or its reservation's end): the cluster is taken
    /// down and its reservation released at once. A no-op on a terminated System (GFD.69).
    pub async fn terminate(&self, id: &str, reason: &str) -> Result<(), ManagerError> {
        self.system(id)?;
        // Released before the change shows, so whoever sees it may reuse the capacity.
        self.release(id, "terminated").await;
        let updated = self.apply(id, Event::Terminate { now: Utc::now() }).await?;
        tracing::info!(id, reason, "terminated");
        self.carry_on(&updated).await;
        Ok(())
    }

    /// Ping: the lifecycle state; a cluster whose deployment failed is not alive (GFD.69's
    /// LivenessException), and the error says why.
    pub fn ping(&self, id: &str) -> Result<Lifecycle, ManagerError> {
        let r = self.system(id)?;
        let d = deployment_of(&r)?;
        if d.lifecycle == Lifecycle::Failed {
            return Err(ManagerError::NotAlive(
                d.failure
                    .clone()
                    .unwrap_or_else(|| "its deployment failed".into()),
            ));
        }
        Ok(d.lifecycle)
    }

    /// Resolve: the element at `path` of the stored descriptor, resolved, as XML.
    pub fn resolve(&self, id: &str, path: &str) -> Result<String, ManagerError> {
        let r = self.system(id)?;
        let d = deployment_of(&r)?;
        let doc = resolve_stored(d)?.ok_or(TransitionError::NotAllowed {
            event: "Resolve",
            state: d.lifecycle,
            phase: d.phase,
        })?;
        let element = vcds_cdl::resolve_path(&doc, path)?;
        Ok(doc.element_xml(element))
    }

    /// Suspends System `id`: the nodes stop first, so a suspended cluster is one whose VMs
    /// are paused; the state machine checks again when the change is stored.
    pub async fn suspend(&self, id: &str) -> Result<(), ManagerError> {
        self.pause_first(id, Event::Suspend, true).await?;
        self.apply(id, Event::Suspend).await?;
        Ok(())
    }

    /// Resumes System `id`; the nodes continue first.
    pub async fn resume(&self, id: &str) -> Result<(), ManagerError> {
        self.pause_first(id, Event::Resume, false).await?;
        self.apply(id, Event::Resume).await?;
        Ok(())
    }

    /// Pauses (or continues) System `id`'s nodes if its deployment may take `event`.
    async fn pause_first(&self, id: &str, event: Event, pause: bool) -> Result<(), ManagerError> {
        let r = self.system(id)?;
        deployment_of(&r)?.apply(event)?;
        if let Some(job) = self.job_of(&r) {
            self.executor.clone().pause(job, pause).await?;
        }
        Ok(())
    }

    /// Sets `id`'s termination time (SetTerminationTime, Renew, the web UI's Extend). A System
    /// living past its reservation's end asks for the reservation to grow with it; refused
    /// (and nothing changed) when capacity or an id is taken in the extension.
    pub async fn set_termination_time(
        &self,
        id: &str,
        new: Option<DateTime<Utc>>,
    ) -> Result<(), ManagerError> {
        let resource = self
            .registry
            .get(id)
            .ok_or_else(|| ManagerError::ResourceUnknown(id.to_string()))?;
        if let (Some(d), Some(t)) = (resource.deployment(), new) {
            let held_until = d.held_window().map(|w| vcds_model::time(w.end));
            if held_until.is_some_and(|end| t > end) {
                self.extend(id, t).await?;
                let system = self.apply(id, Event::Extend { end: t.timestamp() }).await?;
                self.events
                    .publish(DomainEvent::ReservationExtended { system, end: t });
            }
        }
        self.registry
            .update(id, |current| {
                Ok::<_, ManagerError>((
                    Resource {
                        termination: new,
                        ..current.clone()
                    },
                    (),
                ))
            })
            .await?
            .ok_or_else(|| ManagerError::ResourceUnknown(id.to_string()))?;
        // A time in the past means "now": the sweeper takes it at once.
        self.sweeper.notify_one();
        Ok(())
    }

    /// Changes System `id`'s writable properties with `change` (SetResourceProperties), under
    /// the writer lock, and publishes what changed.
    pub async fn update_properties<E: From<ManagerError> + From<crate::RegistryError>>(
        &self,
        id: &str,
        change: impl FnOnce(
            &[vcds_model::StoredProperty],
        )
            -> Result<(Vec<vcds_model::StoredProperty>, Vec<PropertyChange>), E>,
    ) -> Result<(), E> {
        let (updated, changes) = self
            .registry
            .update(id, |current| {
                let State::System { props, deployment } = &current.state else {
                    return Err(E::from(ManagerError::ResourceUnknown(current.id.clone())));
                };
                let (props, changes) = change(props)?;
                Ok((
                    Resource {
                        state: State::System {
                            props,
                            deployment: deployment.clone(),
                        },
                        ..current.clone()
                    },
                    changes,
                ))
            })
            .await?
            .ok_or_else(|| E::from(ManagerError::ResourceUnknown(id.to_string())))?;
        if !changes.is_empty() {
            self.events.publish(DomainEvent::PropertiesChanged {
                resource: updated,
                changes,
            });
        }
        Ok(())
    }
}
