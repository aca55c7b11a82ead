//! The routes of installing nodes (`/install/*`: their kickstart, their progress reports, the
//! frontend's scheduler reports, the installer's boot files) and of the provider's admins (`/admin/rolls`, `/admin/hosts`). The
//! service puts them behind its security gate; the local site's install listener serves the
//! node routes alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use vcds_placement::MacAddr;
use vcds_rolls::RollError;
use vcds_web::{json, read_body, BodyError};

use crate::archive::source_from_tar;
use crate::catalog::MAX_PROGRESS_MESSAGE;
use crate::scheduler::MAX_REPORT_BYTES;
use crate::{
    ApplianceInfo, BootFiles, Host, InstallState, KickstartError, Kickstarts, RollInfo,
    SchedulerView, INSTALLS_FROM,
};

/// Largest roll archive accepted: the generator reads only node files, graphs and `version.mk`,
/// but an archive of a roll's source tree may carry more.
const MAX_ROLL_ARCHIVE: usize = 64 * 1024 * 1024;
/// Largest host registration or roll list body.
const MAX_HOST_BODY: usize = 64 * 1024;
/// A roll archive or host registration must arrive within this.
const BODY_DEADLINE: Duration = Duration::from_secs(60);
/// The header anaconda sends with the installing interface's MAC (`eth0 52:54:00:12:34:56`).
const MAC_HEADER: &str = "X-RHN-Provisioning-MAC-0";

/// Handlers return `Result<HttpResponse, KickstartError>`; actix renders the error with this.
impl actix_web::ResponseError for KickstartError {
    fn status_code(&self) -> StatusCode {
        match self {
            KickstartError::Roll(RollError::NoRolls) => StatusCode::SERVICE_UNAVAILABLE,
            KickstartError::Roll(_) => StatusCode::UNPROCESSABLE_ENTITY,
            KickstartError::Archive(_) | KickstartError::BadRequest(_) => StatusCode::BAD_REQUEST,
            KickstartError::Forbidden(_) => StatusCode::FORBIDDEN,
            KickstartError::Conflict(_) => StatusCode::CONFLICT,
            KickstartError::NotFound(_) => StatusCode::NOT_FOUND,
            KickstartError::Store(_)
            | KickstartError::Generate { .. }
            | KickstartError::StoredAttributes { .. }
            | KickstartError::Blocking(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "kickstart service");
        }
        HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(format!("{self}\n"))
    }
}

impl From<BodyError> for KickstartError {
    fn from(e: BodyError) -> Self {
        KickstartError::BadRequest(e.to_string())
    }
}

/// What installing nodes call: their kickstart and their progress reports.
pub fn install_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/install/sbin/kickstart.cgi", web::get().to(kickstart_cgi))
        .route("/install/progress", web::get().to(progress))
        .route("/install/progress", web::post().to(progress))
        .route("/install/scheduler", web::post().to(scheduler));
}

/// The installer's boot files, for iPXE (on the local site's install listener).
pub fn boot_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/install/boot/{file}", web::get().to(boot_file));
}

/// The provider's roll and host administration (behind the admin check of the service).
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/rolls", web::get().to(list_rolls))
        .route("/admin/rolls", web::post().to(add_roll))
        .route("/admin/rolls/{name}", web::delete().to(remove_roll))
        .route(
            "/admin/clusters/{cluster}/rolls",
            web::put().to(enable_rolls),
        )
        .route("/admin/hosts", web::post().to(register_host))
        .route("/admin/hosts/{name}", web::delete().to(remove_host));
}

async fn body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, KickstartError> {
    Ok(read_body(req, payload, limit, BODY_DEADLINE).await?)
}

/// Finds the installing node: by the MAC it states, else by the address it connects from; a
/// host that installs from one address only ([`INSTALLS_FROM`]) is refused to anyone else.
fn identify(
    ks: &Kickstarts,
    req: &HttpRequest,
    mac: Option<&str>,
) -> Result<Arc<Host>, KickstartError> {
    let host = find_host(ks, req, mac)?;
    let peer = req.peer_addr().map(|a| a.ip());
    match host.attributes.get(INSTALLS_FROM) {
        Some(from) if peer.map(|ip| ip.to_string()).as_deref() != Some(from.as_str()) => {
            tracing::warn!(host = %host.name, ?peer, "install request from another address");
            Err(KickstartError::Forbidden(format!(
                "{} may not act for host {}",
                peer.map_or_else(|| "this connection".to_owned(), |ip| ip.to_string()),
                host.name
            )))
        }
        _ => Ok(host),
    }
}

fn find_host(
    ks: &Kickstarts,
    req: &HttpRequest,
    mac: Option<&str>,
) -> Result<Arc<Host>, KickstartError> {
    let header = req
        .headers()
        .get(MAC_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_whitespace().last());
    if let Some(mac) = mac.or(header) {
        let mac: MacAddr = mac
            .parse()
            .map_err(|e: vcds_placement::BadMac| KickstartError::Forbidden(e.to_string()))?;
        return ks.host_by_mac(mac);
    }
    let ip = req
        .peer_addr()
        .map(|a| a.ip())
        .ok_or_else(|| KickstartError::Forbidden("unknown host: no peer address".to_string()))?;
    ks.host_by_ip(ip)
}

#[derive(Deserialize)]
pub struct AddRoll {
    /// A roll directory on the server, under a configured roll root; else the body is a tar.
    path: Option<String>,
    name: Option<String>,
    arch: Option<String>,
}

/// `POST /admin/rolls?path=DIR` or `POST /admin/rolls[?name=N]` with a tar archive body.
async fn add_roll(
    req: HttpRequest,
    query: web::Query<AddRoll>,
    payload: web::Payload,
    ks: web::Data<Kickstarts>,
) -> Result<HttpResponse, KickstartError> {
    let source = match &query.path {
        Some(path) => ks.source_from_dir(path).await?,
        None => {
            let bytes = body(&req, payload, MAX_ROLL_ARCHIVE).await?;
            source_from_tar(&bytes, query.name.as_deref())?
        }
    };
    let arch = query.arch.clone().unwrap_or_else(|| "x86_64".to_string());
    Ok(json(StatusCode::CREATED, &ks.add_roll(source, arch).await?))
}

#[derive(Serialize)]
struct CatalogListing {
    rolls: Vec<RollInfo>,
    appliances: Vec<ApplianceInfo>,
    /// Clusters that enable only some rolls.
    clusters: BTreeMap<String, Vec<String>>,
}

/// `GET /admin/rolls`: the rolls and the appliances they define.
async fn list_rolls(ks: web::Data<Kickstarts>) -> Result<HttpResponse, KickstartError> {
    let listing = CatalogListing {
        rolls: ks.rolls(),
        appliances: ks.appliances(),
        clusters: ks.enabled(),
    };
    Ok(json(StatusCode::OK, &listing))
}

/// `DELETE /admin/rolls/{name}`
async fn remove_roll(
    name: web::Path<String>,
    ks: web::Data<Kickstarts>,
) -> Result<HttpResponse, KickstartError> {
    ks.remove_roll(&name).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /admin/clusters/{cluster}/rolls` with a JSON array of roll names (`[]`: all rolls).
async fn enable_rolls(
    req: HttpRequest,
    cluster: web::Path<String>,
    payload: web::Payload,
    ks: web::Data<Kickstarts>,
) -> Result<HttpResponse, KickstartError> {
    let bytes = body(&req, payload, MAX_HOST_BODY).await?;
    let rolls: Vec<String> = serde_json::from_slice(&bytes)
        .map_err(|e| KickstartError::BadRequest(format!("roll names: {e}")))?;
    ks.enable_rolls(&cluster, rolls).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /admin/hosts` with a JSON [`Host`].
async fn register_host(
    req: HttpRequest,
    payload: web::Payload,
    ks: web::Data<Kickstarts>,
) -> Result<HttpResponse, KickstartError> {
    let bytes = body(&req, payload, MAX_HOST_BODY).await?;
    let host: Host = serde_json::from_slice(&bytes)
        .map_err(|e| KickstartError::BadRequest(format!("host: {e}")))?;
    let host = ks.register_host(host).await?;
    Ok(json(StatusCode::CREATED, &*host))
}

/// `DELETE /admin/hosts/{name}`
async fn remove_host(
    name: web::Path<String>,
    ks: web::Data<Kickstarts>,
) -> Result<HttpResponse, KickstartError> {
    ks.remove_host(&name).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub struct NodeQuery {
    mac: Option<String>,
    state: Option<String>,
    msg: Option<String>,
}

/// `GET /install/sbin/kickstart.cgi[?mac=…]`: the installing node's kickstart.
async fn kickstart_cgi(
    req: HttpRequest,
    query: web::Query<NodeQuery>,
    ks: web::Data<Kickstarts>,
) -> Result<HttpResponse, KickstartError> {
    let text = ks.kickstart(&identify(&ks, &req, query.mac.as_deref())?)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text.to_string()))
}

/// `GET|POST /install/progress?state=started|finished|failed[&msg=…][&mac=…]`
async fn progress(
    req: HttpRequest,
    query: web::Query<NodeQuery>,
    ks: web::Data<Kickstarts>,
) -> Result<HttpResponse, KickstartError> {
    let host = identify(&ks, &req, query.mac.as_deref())?;
    let install = query
        .state
        .as_deref()
        .and_then(InstallState::parse)
        .ok_or_else(|| {
            KickstartError::BadRequest("state must be started, finished or failed".to_string())
        })?;
    let message = query.msg.as_deref().map(|m| {
        let end = m
            .char_indices()
            .map(|(i, c)| i + c.len_utf8())
            .take_while(|end| *end <= MAX_PROGRESS_MESSAGE)
            .last()
            .unwrap_or(0);
        m[..end].to_string()
    });
    ks.report(&host, install, message).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /install/scheduler[?mac=…]`: what the scheduler on a cluster's frontend sees, as
/// [`SchedulerView::parse`] reads it.
async fn scheduler(
    req: HttpRequest,
    query: web::Query<NodeQuery>,
    payload: web::Payload,
    ks: web::Data<Kickstarts>,
) -> Result<HttpResponse, KickstartError> {
    let host = identify(&ks, &req, query.mac.as_deref())?;
    let bytes = body(&req, payload, MAX_REPORT_BYTES).await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| KickstartError::BadRequest("the report is not UTF-8".to_owned()))?;
    let view = SchedulerView::parse(text).map_err(KickstartError::BadRequest)?;
    ks.report_scheduler(&host, view)?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /install/boot/{vmlinuz|initrd.img}`: iPXE fetches the installer over HTTP, seconds
/// faster than TFTP's 512-byte lock-step under TCG (TFTP keeps them too, for firmware without
/// HTTP).
async fn boot_file(
    boot: web::Data<BootFiles>,
    file: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let file = file.into_inner();
    let Some(path) = boot.path_of(&file) else {
        return HttpResponse::NotFound().body("no such boot file\n");
    };
    match vcds_store::blocking::run(move || std::fs::read(path)).await {
        Ok(Ok(bytes)) => {
            let peer = req
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            tracing::info!(%file, %peer, bytes = bytes.len(), "boot file served over HTTP");
            HttpResponse::Ok()
                .content_type("application/octet-stream")
                .body(bytes)
        }
        Ok(Err(e)) => {
            tracing::error!(%file, error = %e, "boot file unreadable");
            HttpResponse::InternalServerError().body("boot file unreadable\n")
        }
        Err(_) => HttpResponse::ServiceUnavailable().body("busy\n"),
    }
}
