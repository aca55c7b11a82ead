//! The CDDLM System operations (GFD.69): Initialize, AddFile, Run, Terminate, Ping, Resolve, and
//! the vcds extensions Suspend and Resume, over the lifecycle kept in [`Deployment`].
//!
//! Every change goes through [`transition`]: checked and stored under the registry's writer
//! lock, then announced (`cmp:LifecycleTransition`, `vcds:Phase` value changes). A request that
//! fails stores nothing.

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use roxmltree::Node;
use vcds_cdl::{cluster, DocId, MemoryResolver, ResolvedDocument};
use vcds_wsrf::{notify, xsd_datetime};
use vcds_xml::escape;

use crate::faults::OpError;
use crate::kinds::{
    self, Endpoints, API, CDL_LANGUAGE, CMP, LIFECYCLE_TRANSITION, MUWS1, PHASE, VCDS,
};
use crate::lifecycle::publish;
use crate::ops::{child, text_of, Request};
use crate::registry::{AddedFile, Deployment, Lifecycle, Phase, Resource, State};
use crate::reservation;
use crate::AppState;

pub const INITIALIZE: &str =
    "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/InitializeRequest";
pub const ADD_FILE: &str =
    "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/AddFileRequest";
pub const RUN: &str = "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/RunRequest";
pub const TERMINATE: &str =
    "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/TerminateRequest";
pub const PING: &str =
    "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/PingRequest";
pub const RESOLVE: &str =
    "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/SystemEPR/ResolveRequest";
pub const SUSPEND: &str = "urn:vcds:2026/SystemEPR/SuspendRequest";
pub const RESUME: &str = "urn:vcds:2026/SystemEPR/ResumeRequest";

/// Initialize option: parse, resolve and validate the descriptor, store nothing.
pub const VALIDATE_ONLY: &str = "urn:vcds:2026:option:validate-only";
/// GFD.69 lifecycle events carry this EventId.
const LIFECYCLE_EVENT: &str = "http://www.gridforum.org/cddlm/components/2005/02/events/Lifecycle";
const MUWS2: &str = "http://docs.oasis-open.org/wsdm/muws2-2.xsd";
/// Largest file AddFile accepts (decoded); descriptors and their imports are small text.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Most files one System holds, and their total size: they live in the System's stored row,
/// which every change rewrites.
pub const MAX_FILES: usize = 32;
pub const MAX_FILES_BYTES: usize = 4 * 1024 * 1024;
const MAX_FILE_NAME: usize = 128;
/// The name an inline descriptor is resolved under; its relative imports name added files.
const INLINE_NAME: &str = "descriptor";

fn deployment_of(r: &Resource) -> Result<&Deployment, OpError> {
    match &r.state {
        State::System { deployment, .. } => Ok(deployment),
        _ => Err(OpError::ResourceUnknown(r.id.clone())),
    }
}

fn require(d: &Deployment, operation: &'static str, allowed: &[Lifecycle]) -> Result<(), OpError> {
    if allowed.contains(&d.lifecycle) {
        Ok(())
    } else {
        Err(OpError::WrongState {
            operation,
            state: d.lifecycle,
            phase: d.phase,
        })
    }
}

/// Applies `change` to System `id` under the registry's writer lock (so it sees the current
/// state, not the one the request started with), stores it, then announces what changed.
pub async fn transition(
    state: &AppState,
    endpoints: &Endpoints,
    id: &str,
    change: impl FnOnce(&Deployment) -> Result<Deployment, OpError>,
) -> Result<Arc<Resource>, OpError> {
    let (updated, old) = state
        .registry
        .update(id, |current| {
            let State::System { props, deployment } = &current.state else {
                return Err(OpError::ResourceUnknown(current.id.clone()));
            };
            let next = change(deployment)?;
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
        .ok_or_else(|| OpError::ResourceUnknown(id.to_string()))?;
    if let State::System {
        deployment: new, ..
    } = &updated.state
    {
        if new.lifecycle != old.lifecycle {
            tracing::info!(
                id,
                from = old.lifecycle.as_str(),
                to = new.lifecycle.as_str(),
                "lifecycle transition"
            );
            let event = lifecycle_event(&updated.id, old.lifecycle, new.lifecycle, Utc::now());
            publish(state, endpoints, &updated, &LIFECYCLE_TRANSITION, &event);
            let why = match (&new.failure, new.lifecycle) {
                (Some(why), Lifecycle::Failed) => format!(": {why}"),
                _ => String::new(),
            };
            let (from, to) = (old.lifecycle.as_str(), new.lifecycle.as_str());
            state
                .events
                .record(id, format!("lifecycle {from} → {to}{why}"));
        }
        if new.phase != old.phase {
            let name = |p: Option<Phase>| p.map_or("none", Phase::as_str);
            state.events.record(
                id,
                format!("phase {} → {}", name(old.phase), name(new.phase)),
            );
            let message = notify::value_change(
                &kinds::phase_values(old.phase),
                &kinds::phase_values(new.phase),
            );
            publish(state, endpoints, &updated, &PHASE, &message);
        }
    }
    Ok(updated)
}

/// Destroy (on request or at the termination time) ends a System that was not terminated: its
/// subscribers hear of the transition to terminated before the resource and their
/// subscriptions go.
pub fn announce_destroy(state: &AppState, endpoints: &Endpoints, r: &Resource) {
    if let State::System { deployment, .. } = &r.state {
        if deployment.lifecycle != Lifecycle::Terminated {
            let event = lifecycle_event(
                &r.id,
                deployment.lifecycle,
                Lifecycle::Terminated,
                Utc::now(),
            );
            publish(state, endpoints, r, &LIFECYCLE_TRANSITION, &event);
        }
    }
}

/// A MUWS ManagementEvent carrying the `cmp:LifecycleTransition` (cddlm.md §2.4).
fn lifecycle_event(id: &str, from: Lifecycle, to: Lifecycle, at: DateTime<Utc>) -> String {
    format!(
        concat!(
            "<muws1:ManagementEvent xmlns:muws1=\"{muws1}\" xmlns:muws2=\"{muws2}\" xmlns:cmp=\"{cmp}\" ReportTime=\"{at}\">",
            "<muws1:EventId>{event}</muws1:EventId>",
            "<muws1:SourceComponent><muws1:ResourceId>{id}</muws1:ResourceId></muws1:SourceComponent>",
            "<muws2:Situation><muws2:SituationCategory><cmp:LifecycleSituation/></muws2:SituationCategory></muws2:Situation>",
            "<cmp:LifecycleTransition><muws2:StateTransition Time=\"{at}\">",
            "<muws2:EnteredState>{to}</muws2:EnteredState><muws2:PreviousState>{from}</muws2:PreviousState>",
            "</muws2:StateTransition></cmp:LifecycleTransition></muws1:ManagementEvent>"
        ),
        muws1 = MUWS1,
        muws2 = MUWS2,
        cmp = CMP,
        at = xsd_datetime(at),
        event = LIFECYCLE_EVENT,
        id = escape(id),
        to = kinds::state_element(to),
        from = kinds::state_element(from),
    )
}

fn api_response(local: &str, inner: &str) -> String {
    format!("<api:{local} xmlns:api=\"{API}\">{inner}</api:{local}>")
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

fn file_text(file: &AddedFile) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&file.data)
        .ok()?;
    String::from_utf8(bytes).ok()
}

fn resolve_stored(d: &Deployment) -> Result<Option<ResolvedDocument>, OpError> {
    match &d.descriptor {
        Some((name, text)) => Ok(Some(vcds_cdl::resolve(
            text,
            &DocId::new(name),
            &resolver_of(d),
        )?)),
        None => Ok(None),
    }
}

fn attribute<'a>(n: Node<'a, '_>, local: &str) -> Option<&'a str> {
    n.attribute((API, local))
        .or_else(|| n.attribute(local))
        .map(str::trim)
}

fn is_true(text: &str) -> bool {
    matches!(text.trim(), "true" | "1")
}

/// What an `api:initializeRequest` asks for.
struct Initialize {
    descriptor: Source,
    validate_only: bool,
}

enum Source {
    /// The `api:body` document, serialized with the namespaces in scope where it was.
    Inline(String),
    /// The name of a file added with AddFile.
    Reference(String),
}

impl Initialize {
    fn parse(body: Node<'_, '_>) -> Result<Initialize, OpError> {
        let descriptor = child(body, API, "descriptor").ok_or_else(|| {
            OpError::BadArgument("initializeRequest has no api:descriptor".into())
        })?;
        let language = attribute(descriptor, "language").ok_or_else(|| {
            OpError::BadArgument("api:descriptor has no api:language attribute".into())
        })?;
        if language != CDL_LANGUAGE {
            return Err(OpError::UnsupportedLanguage(language.to_string()));
        }
        let source = match (
            child(descriptor, API, "reference"),
            child(descriptor, API, "body"),
        ) {
            (Some(r), None) => Source::Reference(text_of(r).to_string()),
            (None, Some(b)) => {
                let mut elements = b.children().filter(Node::is_element);
                match (elements.next(), elements.next()) {
                    (Some(doc), None) => Source::Inline(vcds_xml::serialize_element(doc)),
                    _ => {
                        return Err(OpError::BadArgument(
                            "api:body must hold exactly one element, the CDL document".into(),
                        ))
                    }
                }
            }
            _ => {
                return Err(OpError::BadArgument(
                    "api:descriptor needs exactly one of api:reference and api:body".into(),
                ))
            }
        };
        let mut validate_only = false;
        let options = child(body, API, "options")
            .into_iter()
            .flat_map(|o| o.children().filter(|c| c.has_tag_name((API, "option"))));
        for option in options {
            let name = attribute(option, "name").unwrap_or("");
            if name == VALIDATE_ONLY {
                // No value means "yes": naming the option asks for it.
                validate_only = match child(option, API, "boolean") {
                    Some(v) if matches!(text_of(v), "true" | "1") => true,
                    Some(v) if matches!(text_of(v), "false" | "0") => false,
                    Some(v) => {
                        return Err(OpError::BadArgument(format!(
                            "option {VALIDATE_ONLY} needs an xsd:boolean, got {:?}",
                            text_of(v)
                        )))
                    }
                    None => true,
                };
            } else if attribute(option, "mustUnderstand").is_some_and(is_true) {
                return Err(OpError::NotUnderstood(name.to_string()));
            }
        }
        Ok(Initialize {
            descriptor: source,
            validate_only,
        })
    }
}

pub async fn initialize(req: &Request<'_, '_>) -> Result<String, OpError> {
    let current = deployment_of(&req.resource)?;
    require(current, "Initialize", &[Lifecycle::Instantiated])?;
    let request = Initialize::parse(req.body)?;
    let (name, text) = match request.descriptor {
        Source::Inline(text) => (INLINE_NAME.to_string(), text),
        Source::Reference(name) => {
            let text = current
                .files
                .get(&name)
                .and_then(file_text)
                .ok_or_else(|| {
                    OpError::BadArgument(format!(
                        "api:reference {name:?} names no text file added with AddFile"
                    ))
                })?;
            (name, text)
        }
    };
    let doc = vcds_cdl::resolve(&text, &DocId::new(&name), &resolver_of(current))?;
    let spec = cluster::cluster_spec(&doc)?;
    let id = &req.resource.id;
    let now = Utc::now();
    let cluster = reservation::cluster_request(id, &spec, now, req.state.book.config())?;
    let allocation = reservation::reserve(req.state, cluster, now, request.validate_only).await?;
    if request.validate_only {
        return Ok(api_response("initializeResponse", ""));
    }
    // Reserved: from here a failure must give the reservation back.
    let initialized = transition(req.state, &req.endpoints, id, |d| {
        require(d, "Initialize", &[Lifecycle::Instantiated])?;
        Ok(Deployment {
            lifecycle: Lifecycle::Initialized,
            phase: Some(Phase::Reserved),
            descriptor: Some((name, text)),
            spec: Some(Box::new(spec)),
            allocation: Some(Box::new(allocation.clone())),
            ..d.clone()
        })
    })
    .await;
    if let Err(e) = initialized {
        reservation::release(req.state, id, "initialize failed").await;
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
    Ok(api_response("initializeResponse", ""))
}

fn check_file_name(name: &str) -> Result<(), OpError> {
    let bad = name.is_empty()
        || name.len() > MAX_FILE_NAME
        || name.contains("..")
        || name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | ':') || c.is_control());
    if bad {
        return Err(OpError::BadArgument(format!(
            "file name {name:?} must be 1..={MAX_FILE_NAME} characters without /, \\, :, .. or control characters"
        )));
    }
    Ok(())
}

/// The decoded `api:data` of an AddFile.
fn decode_data(name: &str, data: &str) -> Result<Vec<u8>, OpError> {
    let encoded: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    // Checked before decoding so an oversized upload costs no allocation of its decoded size.
    if encoded.len() / 4 * 3 > MAX_FILE_BYTES + 2 {
        return Err(OpError::BadArgument(format!(
            "file {name:?} is larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    base64::engine::general_purpose::STANDARD
        .decode(&encoded)
        .map_err(|e| OpError::BadArgument(format!("api:data is not base64: {e}")))
}

pub async fn add_file(req: &Request<'_, '_>) -> Result<String, OpError> {
    const ALLOWED: &[Lifecycle] = &[
        Lifecycle::Instantiated,
        Lifecycle::Initialized,
        Lifecycle::Running,
        Lifecycle::Suspended,
    ];
    require(deployment_of(&req.resource)?, "AddFile", ALLOWED)?;
    let name = child(req.body, API, "name").map(text_of).unwrap_or("");
    check_file_name(name)?;
    let mimetype = child(req.body, API, "mimetype")
        .map(text_of)
        .filter(|m| !m.is_empty())
        .unwrap_or("application/octet-stream")
        .to_string();
    if let Some(scheme) = child(req.body, API, "scheme") {
        return Err(OpError::BadArgument(format!(
            "api:scheme {:?} is not supported: an added file is named by api:name only",
            text_of(scheme)
        )));
    }
    let bytes = match (child(req.body, API, "uri"), child(req.body, API, "data")) {
        (Some(uri), None) => {
            crate::fetch::fetch(&req.state.addfile_sources, text_of(uri), MAX_FILE_BYTES).await?
        }
        (None, data) => decode_data(name, data.map(text_of).unwrap_or(""))?,
        (Some(_), Some(_)) => {
            return Err(OpError::BadArgument(
                "addFileRequest carries both api:uri and api:data; send one".into(),
            ))
        }
    };
    if bytes.is_empty() || bytes.len() > MAX_FILE_BYTES {
        return Err(OpError::BadArgument(format!(
            "file {name:?} must hold 1..={MAX_FILE_BYTES} bytes, got {}",
            bytes.len()
        )));
    }
    let file = AddedFile {
        mimetype,
        data: base64::engine::general_purpose::STANDARD.encode(&bytes),
    };
    transition(req.state, &req.endpoints, &req.resource.id, |d| {
        require(d, "AddFile", ALLOWED)?;
        let mut next = d.clone();
        next.files.insert(name.to_string(), file);
        let total: usize = next.files.values().map(|f| f.data.len() / 4 * 3).sum();
        if next.files.len() > MAX_FILES || total > MAX_FILES_BYTES {
            return Err(OpError::BadArgument(format!(
                "a System holds at most {MAX_FILES} files of {MAX_FILES_BYTES} bytes in all"
            )));
        }
        Ok(next)
    })
    .await?;
    Ok(api_response(
        "addFileResponse",
        &format!("<api:item>{}</api:item>", escape(name)),
    ))
}

pub async fn run(req: &Request<'_, '_>) -> Result<String, OpError> {
    let now = Utc::now();
    let updated = transition(req.state, &req.endpoints, &req.resource.id, |d| {
        require(d, "Run", &[Lifecycle::Initialized])?;
        // The reservation's start deploys it (the clock); before then it waits.
        let phase = match d.held_window() {
            Some(w) if reservation::time(w.start) > now => Phase::WaitingForStart,
            Some(_) => Phase::Provisioning,
            None => {
                return Err(OpError::WrongState {
                    operation: "Run",
                    state: d.lifecycle,
                    phase: d.phase,
                })
            }
        };
        Ok(Deployment {
            lifecycle: Lifecycle::Running,
            phase: Some(phase),
            started: Some(now),
            ..d.clone()
        })
    })
    .await?;
    req.state
        .executor
        .carry_on(req.app.clone(), req.endpoints.clone(), &updated);
    Ok(api_response("runResponse", ""))
}

/// Terminates System `id` now (Terminate, or its reservation's end): the cluster is taken down
/// and its reservation released at once. A no-op on a terminated System (GFD.69).
pub async fn terminate_now(
    state: &Arc<AppState>,
    endpoints: &Endpoints,
    id: &str,
    reason: &str,
) -> Result<(), OpError> {
    // Released before the change shows, so whoever sees it may reuse the capacity.
    reservation::release(state, id, "terminated").await;
    let now = Utc::now();
    let updated = transition(state, endpoints, id, |d| {
        if d.lifecycle == Lifecycle::Terminated {
            return Ok(d.clone());
        }
        let phase = match d.phase {
            Some(Phase::Provisioning | Phase::Installing | Phase::Ready | Phase::Suspended) => {
                Some(Phase::TearingDown)
            }
            Some(_) => Some(Phase::Released),
            None => None,
        };
        Ok(Deployment {
            lifecycle: Lifecycle::Terminated,
            phase,
            terminated: Some(now),
            released: d.released.or(d.allocation.as_ref().map(|_| now)),
            ..d.clone()
        })
    })
    .await?;
    tracing::info!(id, reason, "terminated");
    state
        .executor
        .carry_on(state.clone(), endpoints.clone(), &updated);
    Ok(())
}

pub async fn terminate(req: &Request<'_, '_>) -> Result<String, OpError> {
    let reason = child(req.body, API, "reason").map(text_of).unwrap_or("");
    terminate_now(&req.app, &req.endpoints, &req.resource.id, reason).await?;
    Ok(api_response("terminateResponse", ""))
}

/// The lifecycle state; a cluster whose deployment failed is not alive (GFD.69's
/// LivenessException), and the fault says why.
pub fn ping(req: &Request<'_, '_>) -> Result<String, OpError> {
    let d = deployment_of(&req.resource)?;
    if d.lifecycle == Lifecycle::Failed {
        return Err(OpError::NotAlive(
            d.failure
                .clone()
                .unwrap_or_else(|| "its deployment failed".into()),
        ));
    }
    Ok(api_response("pingResponse", &kinds::cmp_state(d.lifecycle)))
}

pub fn resolve(req: &Request<'_, '_>) -> Result<String, OpError> {
    let d = deployment_of(&req.resource)?;
    let path = child(req.body, API, "path")
        .map(text_of)
        .ok_or_else(|| OpError::BadArgument("resolveRequest has no api:path".into()))?;
    let doc = resolve_stored(d)?.ok_or(OpError::WrongState {
        operation: "Resolve",
        state: d.lifecycle,
        phase: d.phase,
    })?;
    let element = vcds_cdl::resolve_path(&doc, path)?;
    Ok(api_response("resolveResponse", &doc.element_xml(element)))
}

/// Pauses (or continues) System `id`'s nodes if it is in `(lifecycle, phase)`.
async fn pause_first(
    state: &AppState,
    id: &str,
    operation: &'static str,
    (lifecycle, phase): (Lifecycle, Phase),
    pause: bool,
) -> Result<(), OpError> {
    let r = state
        .registry
        .get(id)
        .ok_or_else(|| OpError::ResourceUnknown(id.to_string()))?;
    require_phase(deployment_of(&r)?, operation, lifecycle, phase)?;
    state.executor.pause(r, pause).await
}

/// Refuses `operation` unless the deployment is in `lifecycle` and `phase`.
fn require_phase(
    d: &Deployment,
    operation: &'static str,
    lifecycle: Lifecycle,
    phase: Phase,
) -> Result<(), OpError> {
    if d.lifecycle == lifecycle && d.phase == Some(phase) {
        Ok(())
    } else {
        Err(OpError::WrongState {
            operation,
            state: d.lifecycle,
            phase: d.phase,
        })
    }
}

fn vcds_response(local: &str) -> String {
    format!("<vcds:{local} xmlns:vcds=\"{VCDS}\"/>")
}

/// Suspends System `id`: Suspend and the web UI's Suspend. The nodes stop first, so a
/// Suspended cluster is one whose VMs are paused; the state is checked again under the
/// writer lock below.
pub async fn suspend_now(state: &AppState, endpoints: &Endpoints, id: &str) -> Result<(), OpError> {
    pause_first(
        state,
        id,
        "Suspend",
        (Lifecycle::Running, Phase::Ready),
        true,
    )
    .await?;
    transition(state, endpoints, id, |d| {
        require_phase(d, "Suspend", Lifecycle::Running, Phase::Ready)?;
        Ok(Deployment {
            lifecycle: Lifecycle::Suspended,
            phase: Some(Phase::Suspended),
            ..d.clone()
        })
    })
    .await?;
    Ok(())
}

/// Resumes System `id`: Resume and the web UI's Resume; the nodes continue first.
pub async fn resume_now(state: &AppState, endpoints: &Endpoints, id: &str) -> Result<(), OpError> {
    pause_first(
        state,
        id,
        "Resume",
        (Lifecycle::Suspended, Phase::Suspended),
        false,
    )
    .await?;
    transition(state, endpoints, id, |d| {
        require(d, "Resume", &[Lifecycle::Suspended])?;
        Ok(Deployment {
            lifecycle: Lifecycle::Running,
            phase: Some(Phase::Ready),
            ..d.clone()
        })
    })
    .await?;
    Ok(())
}

pub async fn suspend(req: &Request<'_, '_>) -> Result<String, OpError> {
    suspend_now(req.state, &req.endpoints, &req.resource.id).await?;
    Ok(vcds_response("suspendResponse"))
}

pub async fn resume(req: &Request<'_, '_>) -> Result<String, OpError> {
    resume_now(req.state, &req.endpoints, &req.resource.id).await?;
    Ok(vcds_response("resumeResponse"))
}
