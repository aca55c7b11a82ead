//! The provider's view of the site (`/admin/*`, which `security::gate` allows to admins only):
//! the P-nodes and their state, the active reservations, a P-node leaving service.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use vcds_manager::ManagerError;
use vcds_placement::{LifecycleError, PNodeState, Resources, SiteState};
use vcds_store::BookError;
use vcds_web::json;

use crate::Api;

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

fn admin_error(e: ManagerError) -> actix_web::Error {
    match e {
        ManagerError::Book(BookError::Lifecycle(LifecycleError::UnknownPNode(name))) => {
            actix_web::error::ErrorNotFound(format!("no P-node {name:?}\n"))
        }
        e => actix_web::error::ErrorInternalServerError(format!("{e}\n")),
    }
}

/// An admin view of the site: `view` over the current site state, as JSON. (`/admin/*` is
/// for admins only: `security::gate` checks that before any handler runs.)
async fn admin_view<T: serde::Serialize + Send + 'static>(
    state: web::Data<Api>,
    view: impl FnOnce(&SiteState) -> T + Send + 'static,
) -> actix_web::Result<HttpResponse> {
    let value = state
        .manager
        .with_book(|book| book.read(view))
        .await
        .map_err(admin_error)?;
    Ok(json(StatusCode::OK, &value))
}

/// `GET /admin/pnodes`: the site's P-nodes, their state and how many reservations use each.
pub async fn list_pnodes(state: web::Data<Api>) -> actix_web::Result<HttpResponse> {
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
    state: web::Data<Api>,
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
    let affected = state
        .manager
        .with_book(move |book| book.set_pnode_state(&owned, new_state, now))
        .await
        .map_err(admin_error)?;
    for a in &affected {
        tracing::warn!(pnode = %name, reservation = %a.reservation, nodes = ?a.nodes, gateway = a.gateway,
            "P-node left service under a reservation");
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "pnode": *name, "state": new_state, "affected": affected }),
    ))
}

/// `GET /admin/reservations`: every active reservation with its placement.
pub async fn list_reservations(state: web::Data<Api>) -> actix_web::Result<HttpResponse> {
    admin_view(state, |site| {
        site.reservations().cloned().collect::<Vec<_>>()
    })
    .await
}
