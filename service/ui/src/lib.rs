//! The web UI under `/ui/`, served by the same server behind the same [`security::gate`]:
//! a dashboard of P-nodes (admins) and virtual clusters, a page per cluster (nodes with install
//! progress, load sparklines from Ganglia, the event log), and the actions Suspend, Resume,
//! Extend, Terminate and Destroy, each confirmed on its own page first.
//!
//! Authorization is the SOAP API's: the caller is the gate's, clusters are looked up with
//! [`ops::visible`] (another owner's cluster is "not found", exactly like an unknown id), and
//! listings use [`Scope`]. Actions call the functions the SOAP operations call, so state
//! checks, notifications, the event log and reservations behave the same; each is audited with
//! the SOAP operation's name. State-changing requests need the session cookie and its CSRF
//! token ([`session`]).
//!
//! [`security::gate`]: vcds_api::security::gate

pub mod events;
mod session;
pub mod views;

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use vcds_auth::{AuditRecord, Outcome};
use vcds_monitor::summary::HostSummary;
use vcds_placement::{Allocation, Resources, SiteState};

use vcds_api::faults::OpError;
use vcds_api::kinds::{self, Endpoint};
use vcds_api::ops::{self, Operation};
use vcds_api::security::{self, Principal, Scope};
use vcds_api::Api;
use vcds_model::{Deployment, Lifecycle, Phase, Resource};

pub use session::{Refusal, SessionError, Sessions};
use views::{ClusterPage, ClusterRow, Load, NodeRow, PNodePage, PNodeRow, SchedulerLine, Viewer};

/// P-nodes per dashboard page (a simulated site has thousands).
const PNODES_PER_PAGE: usize = 50;
/// Virtual clusters listed on the dashboard, newest first.
const CLUSTERS_SHOWN: usize = 500;
/// Longest extension one request may ask for, in hours (a year, as resource lifetimes).
const MAX_EXTEND_HOURS: u32 = 366 * 24;
/// The Ganglia metric the sparklines draw.
const LOAD_METRIC: &str = "load_one";

static CSS: &str = include_str!("static/ui.css");
static JS: &str = include_str!("static/ui.js");

/// What a user can do to a virtual cluster from the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Suspend,
    Resume,
    Extend,
    Terminate,
    Destroy,
}

impl Action {
    const ALL: [Action; 5] = [
        Action::Suspend,
        Action::Resume,
        Action::Extend,
        Action::Terminate,
        Action::Destroy,
    ];

    fn from_path(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.path() == s)
    }

    pub fn path(self) -> &'static str {
        match self {
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::Extend => "extend",
            Action::Terminate => "terminate",
            Action::Destroy => "destroy",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Action::Suspend => "Suspend",
            Action::Resume => "Resume",
            Action::Extend => "Extend",
            Action::Terminate => "Terminate",
            Action::Destroy => "Destroy",
        }
    }

    pub fn explain(self) -> &'static str {
        match self {
            Action::Suspend => "The cluster's virtual machines are suspended; its reservation stays held and it can be resumed.",
            Action::Resume => "The cluster's virtual machines run again from where they were suspended.",
            Action::Extend => "The reservation's end and the cluster's termination time move later; at that time the cluster is taken down and destroyed. Refused, with nothing changed, if the site has no room for it.",
            Action::Terminate => "The cluster is taken down now and its reservation released. This cannot be undone; the record stays until destroyed.",
            Action::Destroy => "The cluster is taken down, its reservation released and its record deleted, with its subscriptions. This cannot be undone.",
        }
    }

    /// The SOAP operation it is, for the audit log.
    fn operation(self) -> Operation {
        match self {
            Action::Suspend => Operation::Suspend,
            Action::Resume => Operation::Resume,
            Action::Extend => Operation::SetTerminationTime,
            Action::Terminate => Operation::Terminate,
            Action::Destroy => Operation::Destroy,
        }
    }

    /// Whether the cluster page offers it in `d`'s state (the operation checks again).
    fn offered(self, d: &Deployment) -> bool {
        let live = matches!(
            d.lifecycle,
            Lifecycle::Initialized | Lifecycle::Running | Lifecycle::Suspended
        );
        match self {
            Action::Suspend => d.lifecycle == Lifecycle::Running && d.phase == Some(Phase::Ready),
            Action::Resume => d.lifecycle == Lifecycle::Suspended,
            Action::Extend => live && d.held_window().is_some(),
            Action::Terminate => !matches!(d.lifecycle, Lifecycle::Terminated | Lifecycle::Failed),
            Action::Destroy => true,
        }
    }
}

/// Why a UI request failed; rendered as an error page.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("access denied")]
    NoCaller,
    #[error("there is no virtual cluster {0:?} that you can see")]
    NotFound(String),
    #[error("there is no such page")]
    NoPage,
    #[error("{0}")]
    BadInput(String),
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Op(OpError),
    #[error("{reason}")]
    NotDone { status: StatusCode, reason: String },
    #[error("a UI session could not be made")]
    Session,
}

/// The HTTP status an operation's failure is shown with.
fn op_status(e: &OpError) -> StatusCode {
    match e {
        OpError::ResourceUnknown(_) => StatusCode::NOT_FOUND,
        OpError::WrongState { .. }
        | OpError::TerminationRejected(_)
        | OpError::Book(_)
        | OpError::NotAlive(_) => StatusCode::CONFLICT,
        OpError::Registry(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl From<OpError> for UiError {
    fn from(e: OpError) -> UiError {
        match e {
            OpError::ResourceUnknown(id) => UiError::NotFound(id),
            e => UiError::Op(e),
        }
    }
}

impl UiError {
    fn title(&self) -> &'static str {
        match self {
            UiError::NoCaller | UiError::Refused(_) => "Refused",
            UiError::NotFound(_) | UiError::NoPage => "Not found",
            UiError::BadInput(_) => "Bad input",
            UiError::Op(_) | UiError::NotDone { .. } => "Not done",
            UiError::Session => "Error",
        }
    }
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::NoCaller | UiError::Refused(_) => StatusCode::FORBIDDEN,
            UiError::NotFound(_) | UiError::NoPage => StatusCode::NOT_FOUND,
            UiError::BadInput(_) => StatusCode::BAD_REQUEST,
            UiError::Op(e) => op_status(e),
            UiError::NotDone { status, .. } => *status,
            UiError::Session => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        HttpResponse::build(status)
            .content_type(ContentType::html())
            .body(views::error(status.as_u16(), self.title(), &self.to_string()).into_string())
    }
}

/// The web UI's state: the SOAP edge it acts through, its sessions, the event log it shows.
pub struct Ui {
    pub api: Arc<Api>,
    pub sessions: Sessions,
    pub events: Arc<events::EventLog>,
}

impl Ui {
    /// The UI over `api`; its event log is fed by the manager's events from now on.
    pub fn new(api: Arc<Api>, secure: bool) -> Result<Ui, SessionError> {
        let events = Arc::new(events::EventLog::default());
        api.manager.events().register(events.clone());
        Ok(Ui {
            api,
            sessions: Sessions::new(secure)?,
            events,
        })
    }
}

/// The UI's routes, inside the service's gated scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui", web::get().to(to_dashboard)).service(
        web::scope("/ui")
            .wrap(
                DefaultHeaders::new()
                    .add((
                        header::CONTENT_SECURITY_POLICY,
                        "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                         script-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                         base-uri 'none'",
                    ))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::X_FRAME_OPTIONS, "DENY"))
                    .add((header::REFERRER_POLICY, "same-origin"))
                    // Pages carry CSRF tokens and private data.
                    .add((header::CACHE_CONTROL, "no-store")),
            )
            .app_data(
                web::FormConfig::default()
                    .limit(4096)
                    .error_handler(|e, _| UiError::BadInput(format!("bad form: {e}")).into()),
            )
            .route("/", web::get().to(dashboard))
            .route("/static/{file}", web::get().to(static_file))
            .route("/clusters/{id}", web::get().to(cluster))
            .route("/clusters/{id}/{action}", web::get().to(confirm))
            .route("/clusters/{id}/{action}", web::post().to(act))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(UiError::NoPage)
            })),
    );
}

async fn to_dashboard() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui/"))
        .finish()
}

async fn static_file(file: web::Path<String>) -> Result<HttpResponse, UiError> {
    let (body, kind) = match file.as_str() {
        "ui.css" => (CSS, "text/css; charset=utf-8"),
        "ui.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return Err(UiError::NoPage),
    };
    Ok(HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body))
}

fn caller(req: &HttpRequest) -> Result<Principal, UiError> {
    // Set by the gate; without it nobody was authorized.
    security::caller(req).ok_or(UiError::NoCaller)
}

fn viewer(p: &Principal) -> Viewer<'_> {
    Viewer {
        account: &p.account,
        admin: p.admin,
    }
}

/// A page answer, setting the session cookie when the session is new.
fn page(state: &Ui, session: &session::Session, markup: maud::Markup) -> HttpResponse {
    let mut resp = HttpResponse::Ok();
    resp.content_type(ContentType::html());
    if session.new {
        resp.cookie(state.sessions.cookie(session));
    }
    resp.body(markup.into_string())
}

fn begin(state: &Ui, req: &HttpRequest, caller: &Principal) -> Result<session::Session, UiError> {
    state.sessions.begin(req, caller).ok_or(UiError::Session)
}

/// The System `id` as `caller` may see it: the SOAP operations' owner check.
fn system_for(state: &Ui, id: &str, caller: &Principal) -> Result<Resource, UiError> {
    let r = ops::visible(&state.api.manager, Endpoint::System, id, caller)?;
    Ok((*r).clone())
}

fn deployment(r: &Resource) -> Option<&Deployment> {
    r.deployment()
}

fn cluster_row(r: &Resource, d: &Deployment) -> ClusterRow {
    let a = d.allocation.as_deref();
    ClusterRow {
        id: r.id.clone(),
        name: d.spec.as_ref().map(|s| s.name.clone()),
        owner: r.owner.clone(),
        lifecycle: d.lifecycle,
        phase: d.phase,
        window: a.map(|a| {
            (
                vcds_model::time(a.window.start),
                vcds_model::time(a.window.end),
            )
        }),
        reservation: a.map(|_| kinds::reservation_state(d)),
        network: a.map(|a| {
            format!(
                "{} {}",
                vcds_manager::kind_name(a.network_id.kind),
                a.network_id.id
            )
        }),
        subnet: a.map(|a| a.subnet.to_string()),
        gw: a.map(|a| (a.gateway.pnode.clone(), a.gateway.ip.to_string())),
        nodes: a.map_or(0, |a| a.nodes.len()),
    }
}

/// The host Ganglia reports a virtual node as: its registered name (`node.SYSTEM`), or its
/// plain name in a Ganglia cluster named after the System.
fn vnode_host<'a>(
    hosts: &'a HashMap<&str, &HostSummary>,
    summaries: &'a [HostSummary],
    system: &str,
    node: &str,
) -> Option<&'a HostSummary> {
    hosts
        .get(vcds_model::host_name(node, system).as_str())
        .copied()
        .or_else(|| {
            summaries
                .iter()
                .find(|h| h.cluster == system && h.name.split('.').next() == Some(node))
        })
}

fn load_of(state: &Ui, host: Option<&HostSummary>, nothing_polled: bool) -> Load {
    match host {
        Some(h) => Load::Known {
            load_one: h.load_one,
            cpus: h.cpu_num,
            stale: h.stale.clone(),
            series: state.api.manager.monitoring().series(&h.name, LOAD_METRIC),
        },
        None if nothing_polled => Load::NoData("no Ganglia data yet: no poll has reported"),
        None => Load::NoData("Ganglia reports no such host"),
    }
}

/// Whether reservation `a` is in force at `now`.
fn in_force(a: &Allocation, now: i64) -> bool {
    a.window.start <= now && now < a.window.end
}

/// The P-node rows of the site, busiest first, without their Ganglia figures.
fn pnode_rows(site: &SiteState, now: i64) -> Vec<PNodeRow> {
    let mut rows: Vec<PNodeRow> = site
        .pnodes()
        .map(|p| PNodeRow {
            name: p.name.clone(),
            state: p.state,
            gw_capable: p.gw_capable,
            capacity: p.capacity,
            booked: Resources::ZERO,
            load: Load::NoData(""),
            vnodes: Vec::new(),
            gw_for: Vec::new(),
            later: 0,
        })
        .collect();
    let index: HashMap<String, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.clone(), i))
        .collect();
    for a in site.reservations() {
        let now_in_force = in_force(a, now);
        let future = a.window.start > now;
        let mut later: Vec<usize> = Vec::new();
        for n in &a.nodes {
            let Some(&i) = index.get(&n.pnode) else {
                continue;
            };
            if now_in_force {
                let row = &mut rows[i];
                row.booked = Resources::new(
                    row.booked.cpu + n.resources.cpu,
                    row.booked.memory_mib + n.resources.memory_mib,
                    row.booked.disk_gib + n.resources.disk_gib,
                );
                row.vnodes.push((a.reservation.to_string(), n.name.clone()));
            } else if future && !later.contains(&i) {
                later.push(i);
            }
        }
        if let Some(&i) = index.get(&a.gateway.pnode) {
            if now_in_force {
                rows[i].gw_for.push(a.reservation.to_string());
            } else if future && !later.contains(&i) {
                later.push(i);
            }
        }
        for i in later {
            rows[i].later += 1;
        }
    }
    rows.sort_by(|a, b| {
        let busy = |r: &PNodeRow| r.vnodes.len() + r.gw_for.len();
        busy(b).cmp(&busy(a)).then_with(|| a.name.cmp(&b.name))
    });
    rows
}

async fn pnode_page(state: &Ui, page: usize) -> Result<PNodePage, UiError> {
    let now = Utc::now().timestamp();
    let rows = state
        .api
        .manager
        .with_book(move |book| book.read(|site| pnode_rows(site, now)))
        .await
        .map_err(OpError::from)?;
    let total = rows.len();
    let pages = total.div_ceil(PNODES_PER_PAGE).max(1);
    if page >= pages {
        return Err(UiError::BadInput(format!(
            "there are {pages} pages of P-nodes; page {} does not exist",
            page + 1
        )));
    }
    let summaries = state.api.manager.monitoring().host_summaries();
    let hosts: HashMap<&str, &HostSummary> =
        summaries.iter().map(|h| (h.name.as_str(), h)).collect();
    let rows = rows
        .into_iter()
        .skip(page * PNODES_PER_PAGE)
        .take(PNODES_PER_PAGE)
        .map(|mut r| {
            r.load = load_of(state, hosts.get(r.name.as_str()).copied(), hosts.is_empty());
            r
        })
        .collect();
    Ok(PNodePage {
        rows,
        page,
        pages,
        total,
    })
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    page: Option<String>,
}

/// `GET /ui/`: the P-nodes (admins) and the virtual clusters the caller sees.
async fn dashboard(
    req: HttpRequest,
    state: web::Data<Ui>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, UiError> {
    let caller = caller(&req)?;
    let session = begin(&state, &req, &caller)?;
    let number = match query.page.as_deref() {
        None => 0,
        Some(p) => p
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|p| *p < 1_000_000)
            .ok_or_else(|| UiError::BadInput("page must be a page number".into()))?,
    };
    let scope = Scope::of(&caller);
    let mut systems = state.api.manager.registry().systems();
    systems.retain(|s| scope.sees(s));
    let total = systems.len();
    let rows: Vec<ClusterRow> = systems
        .iter()
        .rev()
        .take(CLUSTERS_SHOWN)
        .filter_map(|r| deployment(r).map(|d| cluster_row(r, d)))
        .collect();
    let pnodes = if caller.admin {
        Some(pnode_page(&state, number).await?)
    } else {
        None
    };
    let markup = views::dashboard(&viewer(&caller), pnodes.as_ref(), &rows, total);
    Ok(page(&state, &session, markup))
}

/// `GET /ui/clusters/{id}`
async fn cluster(
    req: HttpRequest,
    state: web::Data<Ui>,
    id: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let caller = caller(&req)?;
    let session = begin(&state, &req, &caller)?;
    let r = system_for(&state, &id, &caller)?;
    let d = deployment(&r).ok_or_else(|| UiError::NotFound(id.to_string()))?;
    let summaries = state.api.manager.monitoring().host_summaries();
    let hosts: HashMap<&str, &HostSummary> =
        summaries.iter().map(|h| (h.name.as_str(), h)).collect();
    let nodes = kinds::node_views(&r, d, state.api.manager.install())
        .into_iter()
        .map(|v| NodeRow {
            name: v.node.name.clone(),
            appliance: v.appliance.to_string(),
            pnode: v.node.pnode.clone(),
            ip: v.node.ip.to_string(),
            resources: v.node.resources,
            state: v.state,
            message: v.message,
            scheduler_state: v.scheduler_state,
            load: load_of(
                &state,
                vnode_host(&hosts, &summaries, &r.id, &v.node.name),
                hosts.is_empty(),
            ),
        })
        .collect();
    let page_data = ClusterPage {
        row: cluster_row(&r, d),
        gw_mac: d.allocation.as_ref().map(|a| a.gateway.mac.to_string()),
        termination: r.termination,
        failure: d.failure.clone(),
        nodes,
        scheduler: state
            .api
            .manager
            .install()
            .scheduler_view(&r.id)
            .map(|rep| SchedulerLine {
                name: d
                    .spec
                    .as_ref()
                    .map_or("none", |s| s.scheduler.as_str())
                    .to_owned(),
                running: rep.view.running,
                pending: rep.view.pending,
                at: chrono::DateTime::from_timestamp_millis(rep.at_ms).unwrap_or_default(),
            }),
        events: state.events.recent(&r.id),
        actions: Action::ALL.into_iter().filter(|a| a.offered(d)).collect(),
    };
    Ok(page(
        &state,
        &session,
        views::cluster(&viewer(&caller), &page_data),
    ))
}

fn parse_action(action: &str) -> Result<Action, UiError> {
    Action::from_path(action).ok_or(UiError::NoPage)
}

/// An Extend's hours: a whole number from 1 to [`MAX_EXTEND_HOURS`].
fn parse_hours(text: Option<&str>) -> Result<u32, UiError> {
    let text = text.unwrap_or("").trim();
    text.parse::<u32>()
        .ok()
        .filter(|h| (1..=MAX_EXTEND_HOURS).contains(h))
        .ok_or_else(|| {
            let shown: String = text.chars().take(40).collect();
            UiError::BadInput(format!(
                "extend by a whole number of hours from 1 to {MAX_EXTEND_HOURS}, not {shown:?}"
            ))
        })
}

/// Where an extension by `hours` moves the end: from the reservation's end, or the termination
/// time, or now.
fn extended_end(r: &Resource, hours: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    let base = deployment(r)
        .and_then(Deployment::held_window)
        .map(|w| vcds_model::time(w.end))
        .or(r.termination)
        .unwrap_or(now);
    base.max(now) + chrono::Duration::hours(i64::from(hours))
}

#[derive(Debug, Deserialize)]
pub struct ConfirmQuery {
    #[serde(default)]
    hours: Option<String>,
}

/// `GET /ui/clusters/{id}/{action}`: the confirmation step; changes nothing.
async fn confirm(
    req: HttpRequest,
    state: web::Data<Ui>,
    path: web::Path<(String, String)>,
    query: web::Query<ConfirmQuery>,
) -> Result<HttpResponse, UiError> {
    let caller = caller(&req)?;
    let session = begin(&state, &req, &caller)?;
    let (id, action) = path.into_inner();
    let action = parse_action(&action)?;
    let r = system_for(&state, &id, &caller)?;
    confirm_page(
        &state,
        &session,
        &caller,
        &r,
        action,
        query.hours.as_deref(),
    )
}

fn confirm_page(
    state: &Ui,
    session: &session::Session,
    caller: &Principal,
    r: &Resource,
    action: Action,
    hours: Option<&str>,
) -> Result<HttpResponse, UiError> {
    let d = deployment(r).ok_or_else(|| UiError::NotFound(r.id.clone()))?;
    let extend = match action {
        Action::Extend => {
            let hours = parse_hours(hours)?;
            Some((hours, extended_end(r, hours, Utc::now())))
        }
        _ => None,
    };
    let row = cluster_row(r, d);
    let markup = views::confirm(
        &viewer(caller),
        &views::Confirm {
            action,
            row: &row,
            csrf: &session.csrf,
            extend,
        },
    );
    Ok(page(state, session, markup))
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    hours: Option<String>,
}

fn audit(
    state: &Ui,
    req: &HttpRequest,
    caller: &Principal,
    action: Action,
    id: &str,
    outcome: Outcome,
) {
    let record = AuditRecord::by(caller, action.operation().name(), Some(id), outcome);
    state.api.security.audit(record.peer(req.peer_addr()));
}

/// `POST /ui/clusters/{id}/{action}`: carries out a confirmed action for a caller with a
/// session and its CSRF token; anything else changes nothing.
async fn act(
    req: HttpRequest,
    state: web::Data<Ui>,
    path: web::Path<(String, String)>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, UiError> {
    let caller = caller(&req)?;
    let (id, action) = path.into_inner();
    let action = parse_action(&action)?;
    let session = match state.sessions.authorize(&req, &caller, &form.csrf) {
        Ok(s) => s,
        Err(refusal) => {
            tracing::warn!(account = %caller.account, id, action = action.path(), %refusal, "UI action refused");
            let code = Outcome::Fault {
                code: "AccessDenied".to_string(),
            };
            audit(&state, &req, &caller, action, &id, code);
            return Err(refusal.into());
        }
    };
    let r = system_for(&state, &id, &caller)?;
    if form.confirm != "yes" {
        return confirm_page(&state, &session, &caller, &r, action, form.hours.as_deref());
    }
    let hours = match action {
        Action::Extend => Some(parse_hours(form.hours.as_deref())?),
        _ => None,
    };
    tracing::info!(account = %caller.account, id, action = action.path(), "UI action");
    if let Err(e) = perform(&state, &r, action, hours).await {
        let status = op_status(&e);
        // The fault a SOAP client would have got, so the audit log reads the same.
        let fault = e.into_fault();
        let code = fault.detail.element.local.clone();
        audit(&state, &req, &caller, action, &id, Outcome::Fault { code });
        return Err(UiError::NotDone {
            status,
            reason: fault.reason,
        });
    }
    audit(&state, &req, &caller, action, &id, Outcome::Ok);
    let to = match action {
        Action::Destroy => "/ui/".to_string(),
        _ => format!("/ui/clusters/{id}"),
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish())
}

/// The action itself, through the functions the SOAP operations use.
async fn perform(
    state: &Ui,
    r: &Resource,
    action: Action,
    hours: Option<u32>,
) -> Result<(), OpError> {
    let manager = &state.api.manager;
    match action {
        Action::Suspend => Ok(manager.suspend(&r.id).await?),
        Action::Resume => Ok(manager.resume(&r.id).await?),
        Action::Terminate => Ok(manager
            .terminate(&r.id, "terminated from the web UI")
            .await?),
        Action::Destroy => Ok(manager
            .destroy(vec![r.id.clone()], "destroyed on request")
            .await?),
        Action::Extend => {
            let now = Utc::now();
            let new = extended_end(r, hours.unwrap_or(1), now);
            ops::check_lifetime(&state.api, now, Some(new), OpError::TerminationRejected)?;
            Ok(manager.set_termination_time(&r.id, Some(new)).await?)
        }
    }
}
