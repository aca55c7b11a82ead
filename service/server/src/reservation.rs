//! Between a System and the site's reservation book: the resolved cluster spec becomes a
//! placement request (pure: [`cluster_request`]); the reservation is made at Initialize,
//! extended with SetTerminationTime, and released at Terminate, Destroy, failure or its end.
//! The book calls block on the store, so they run on the blocking pool.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, TimeZone, Utc};
use vcds_cdl::cluster::{ClusterSpec, Isolation, Subnet};
use vcds_placement::{
    Allocation, ClusterRequest, Ipv4Net, LifecycleError, NetworkKind, PNodeState, Resources, Role,
    SiteConfig, SiteState, Timestamp, Window,
};
use vcds_rolls::Attributes;
use vcds_store::{BookError, ReservationBook};

use crate::faults::OpError;
use crate::kickstart::Host;
use crate::AppState;

/// The placement request for System `id`'s cluster, with "now" taken as `now`.
pub fn cluster_request(
    id: &str,
    spec: &ClusterSpec,
    now: DateTime<Utc>,
    config: &SiteConfig,
) -> Result<ClusterRequest, OpError> {
    let (start, end) = spec.reservation.window(now).ok_or_else(|| {
        OpError::BadArgument("the reservation's end is beyond the representable time".into())
    })?;
    let offered = config.network_pool.kind;
    let wanted = match spec.network.isolation {
        Isolation::Vxlan => NetworkKind::Vxlan,
        Isolation::Vlan => NetworkKind::Vlan,
    };
    if wanted != offered {
        return Err(OpError::BadArgument(format!(
            "the descriptor asks for {} isolation; this site's network pool gives {} ids",
            spec.network.isolation.as_str(),
            kind_name(offered)
        )));
    }
    if spec.frontend.count != 1 {
        return Err(OpError::BadArgument(format!(
            "a virtual cluster has exactly one frontend; the descriptor asks for {}",
            spec.frontend.count
        )));
    }
    let shape = |g: &vcds_cdl::cluster::NodeGroup| {
        Resources::new(g.cpus, u64::from(g.memory_mib), u64::from(g.disk_gib))
    };
    let mut request = ClusterRequest::new(
        id,
        Window::new(start.timestamp(), end.timestamp()),
        shape(&spec.frontend),
        shape(&spec.compute),
        spec.compute.count,
    );
    match spec.network.subnet {
        Subnet::PrefixLength(p) => request.prefix_len = Some(p),
        Subnet::Cidr { network, prefix } => request.subnet = Some(Ipv4Net::new(network, prefix)),
    }
    Ok(request)
}

pub fn kind_name(kind: NetworkKind) -> &'static str {
    match kind {
        NetworkKind::Vlan => "802.1Q VLAN",
        NetworkKind::Vxlan => "VXLAN",
    }
}

/// UTC seconds as a time (the epoch for values out of range, which placement never makes).
pub fn time(t: Timestamp) -> DateTime<Utc> {
    Utc.timestamp_opt(t, 0).single().unwrap_or_default()
}

pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&ReservationBook) -> Result<T, BookError> + Send + 'static,
) -> Result<T, OpError> {
    let book = state.book.clone();
    actix_web::web::block(move || f(&book))
        .await
        .map_err(|e| OpError::BadRequest(format!("the reservation book is unavailable: {e}")))?
        .map_err(OpError::from)
}

/// Reserves for `request`, or only checks when `dry_run` (Initialize's validate-only).
pub async fn reserve(
    state: &AppState,
    request: ClusterRequest,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Allocation, OpError> {
    blocking(state, move |book| {
        if dry_run {
            book.check(&request, now.timestamp())
        } else {
            book.admit(&request, now.timestamp())
        }
    })
    .await
}

/// Ends System `id`'s reservation now, if it holds one, and forgets its nodes as installing
/// hosts (their MACs and addresses may go to the next cluster). Errors are logged, since
/// whatever asked (Terminate, Destroy, a failure, the end) has happened regardless.
pub async fn release(state: &AppState, id: &str, reason: &'static str) {
    let owned = id.to_string();
    let now = Utc::now().timestamp();
    match blocking(state, move |book| book.release(&owned, now, reason)).await {
        Ok(Some(_)) => {
            tracing::info!(id, reason, "reservation released");
            state.executor.released();
        }
        Ok(None) => {}
        Err(e) => tracing::error!(id, error = %e, "could not release the reservation"),
    }
    for row in state.kickstarts.node_table(id) {
        if let Err(e) = state.kickstarts.remove_host(&row.host).await {
            tracing::error!(id, host = %row.host, error = %e, "could not remove an installing host");
        }
    }
}

/// The name a node is registered under for the kickstart CGI: unique across clusters, which
/// all have a `frontend` and a `compute-0-0`.
pub fn host_name(node: &str, system_id: &str) -> String {
    format!("{node}.{system_id}")
}

/// Registers every node of the admitted cluster as a host that may install: its MAC and
/// address, appliance, and the descriptor's Rocks attributes with the node's own host name.
pub async fn register_hosts(
    state: &AppState,
    id: &str,
    spec: &ClusterSpec,
    allocation: &Allocation,
) -> Result<(), OpError> {
    for node in &allocation.nodes {
        let appliance = match node.role {
            Role::Frontend => &spec.frontend.appliance,
            Role::Compute => &spec.compute.appliance,
        };
        let mut attributes: Attributes = spec
            .attributes
            .iter()
            .map(|a| (a.key.clone(), a.value.clone()))
            .collect();
        attributes.insert("hostname".into(), node.name.clone());
        attributes.insert("os".into(), spec.os.name.clone());
        let host = Host {
            name: host_name(&node.name, id),
            mac: node.macs.first().map(ToString::to_string),
            ip: Some(IpAddr::V4(node.ip)),
            cluster: id.to_string(),
            appliance: appliance.clone(),
            attributes,
        };
        state
            .kickstarts
            .register_host(host)
            .await
            .map_err(|e| OpError::BadRequest(format!("registering node {}: {e}", node.name)))?;
    }
    Ok(())
}

/// Moves the end of System `id`'s reservation to `end`.
pub async fn extend(state: &AppState, id: &str, end: DateTime<Utc>) -> Result<(), OpError> {
    let owned = id.to_string();
    let now = Utc::now().timestamp();
    blocking(state, move |book| book.extend(&owned, end.timestamp(), now)).await
}

/// A P-node as `GET /admin/pnodes` lists it.
#[derive(serde::Serialize)]
struct PNodeInfo {
    name: String,
    capacity: Resources,
    labels: Vec<String>,
    gw_capable: bool,
    state: PNodeState,
    /// Active reservations with nodes on it or using it as GW-node.
    reservations: usize,
}

fn admin_error(e: OpError) -> actix_web::Error {
    match e {
        OpError::Book(BookError::Lifecycle(LifecycleError::UnknownPNode(name))) => {
            actix_web::error::ErrorNotFound(format!("no P-node {name:?}\n"))
        }
        e => actix_web::error::ErrorInternalServerError(format!("{e}\n")),
    }
}

/// An admin view of the site: `view` over the current site state, as JSON. (`/admin/*` is
/// for admins only: `security::gate` checks that before any handler runs.)
async fn admin_view<T: serde::Serialize + Send + 'static>(
    state: web::Data<AppState>,
    view: impl FnOnce(&SiteState) -> T + Send + 'static,
) -> actix_web::Result<HttpResponse> {
    let value = blocking(&state, |book| book.read(view))
        .await
        .map_err(admin_error)?;
    Ok(crate::kickstart::json(StatusCode::OK, &value))
}

/// `GET /admin/pnodes`: the site's P-nodes, their state and how many reservations use each.
pub async fn list_pnodes(state: web::Data<AppState>) -> actix_web::Result<HttpResponse> {
    admin_view(state, |site| {
        site.pnodes()
            .map(|p| PNodeInfo {
                name: p.name.clone(),
                capacity: p.capacity,
                labels: p.labels.iter().cloned().collect(),
                gw_capable: p.gw_capable,
                state: p.state,
                reservations: site
                    .reservations()
                    .filter(|r| {
                        r.gateway.pnode == p.name || r.nodes.iter().any(|n| n.pnode == p.name)
                    })
                    .count(),
            })
            .collect::<Vec<_>>()
    })
    .await
}

/// `PUT /admin/pnodes/{name}/state` with `up`, `down` or `maintenance`: answers the running
/// and future reservations a P-node leaving service hits (also logged).
pub async fn set_pnode_state(
    name: web::Path<String>,
    body: String,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    let new_state = match body.trim() {
        "up" => PNodeState::Up,
        "down" => PNodeState::Down,
        "maintenance" => PNodeState::Maintenance,
        other => {
            return Err(actix_web::error::ErrorBadRequest(format!(
                "P-node state {other:?}: send up, down or maintenance\n"
            )))
        }
    };
    let now = Utc::now().timestamp();
    let owned = name.clone();
    let affected = blocking(&state, move |book| {
        book.set_pnode_state(&owned, new_state, now)
    })
    .await
    .map_err(admin_error)?;
    for a in &affected {
        tracing::warn!(pnode = %name, reservation = %a.reservation, nodes = ?a.nodes, gateway = a.gateway,
            "P-node left service under a reservation");
    }
    Ok(crate::kickstart::json(
        StatusCode::OK,
        &serde_json::json!({ "pnode": *name, "state": new_state, "affected": affected }),
    ))
}

/// `GET /admin/reservations`: every active reservation with its placement.
pub async fn list_reservations(state: web::Data<AppState>) -> actix_web::Result<HttpResponse> {
    admin_view(state, |site| {
        site.reservations().cloned().collect::<Vec<_>>()
    })
    .await
}
