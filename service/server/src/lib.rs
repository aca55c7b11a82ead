//! The vcds SOAP/WSRF server.
//!
//! Flow of a request: [`http`] reads the body under limits, `vcds_xml` parses it hardened,
//! `vcds_soap` checks the envelope and WS-Addressing, [`ops`] routes by endpoint and
//! `wsa:Action` to an operation on a resource from the [`registry`], and every error becomes a
//! SOAP fault in [`faults`]. Notifications leave through [`notifier`] on their own thread;
//! scheduled termination is carried out by the sweeper in [`lifecycle`]. The CDDLM System
//! operations and lifecycle are in [`system`]; [`reservation`] holds each cluster's advance
//! reservation in the store's reservation book, and [`site`] carries reservations out: its clock
//! deploys at the start and takes down at the end, its executor moves the phases.

pub mod events;
pub mod faults;
pub mod fetch;
pub mod http;
pub mod kickstart;
pub mod kinds;
pub mod lifecycle;
pub mod local_site;
pub mod metrics;
pub mod monitoring;
pub mod notifier;
pub mod ops;
pub mod registry;
pub mod reservation;
pub mod security;
pub mod site;
pub mod system;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::kinds::Endpoints;
use crate::notifier::Notifier;
use crate::registry::{Registry, RegistryError};

/// What `vcds serve` is told.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    /// `sqlite://PATH` or `postgres://…`.
    pub db_url: String,
    pub site: String,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// Longest lifetime a resource or subscription may be given.
    pub max_lifetime: chrono::Duration,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// What carries deployments through their phases: the simulated site, or the local
    /// site's P-node agents.
    pub executor: site::Executor,
    /// Pools and placement policy of the site.
    pub site_config: vcds_placement::SiteConfig,
    /// The site's P-nodes.
    pub pnodes: Vec<vcds_placement::PNode>,
    /// Directories whose rolls admins may add by path (`POST /admin/rolls?path=`).
    pub roll_roots: Vec<std::path::PathBuf>,
    /// Roll directories (under a roll root) added at start when the catalog lacks them.
    pub rolls: Vec<String>,
    /// Where AddFile may fetch an `api:uri` from (`file:` / `http:` directory URLs).
    pub addfile_sources: Vec<url::Url>,
    /// The service's address as clients reach it, for EPRs that no request carries a Host for
    /// (notifications from the sweeper and the reservation clock); default: the listen address.
    pub public_url: Option<url::Url>,
    /// A slow sender gets this long to deliver a request's head (request line and headers).
    pub head_deadline: Duration,
    /// A slow sender gets this long to deliver a whole SOAP request body.
    pub body_deadline: Duration,
    /// Mutual TLS, grid-mapfile, admins, audit log; plain HTTP on loopback by default.
    pub security: security::SecurityConfig,
    /// Ganglia polling: gmond endpoints, interval, the simulated site's gmonds.
    pub monitor: monitoring::MonitorConfig,
}

impl Config {
    pub fn new(listen: impl Into<String>, db_url: impl Into<String>) -> Config {
        Config {
            listen: listen.into(),
            db_url: db_url.into(),
            site: "local".to_string(),
            max_body: 4 * 1024 * 1024,
            max_lifetime: chrono::Duration::days(366),
            workers: 0,
            executor: site::Executor::Simulated(site::Simulated {
                step: std::time::Duration::from_secs(2),
                ..site::Simulated::default()
            }),
            site_config: vcds_placement::SiteConfig::default(),
            pnodes: site::local_pnodes(),
            roll_roots: Vec::new(),
            rolls: Vec::new(),
            addfile_sources: Vec::new(),
            public_url: None,
            head_deadline: Duration::from_secs(10),
            body_deadline: Duration::from_secs(30),
            security: security::SecurityConfig::default(),
            monitor: monitoring::MonitorConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] vcds_store::StoreError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("reservation book: {0}")]
    Book(#[from] vcds_store::BookError),
    #[error("roll catalog: {0}")]
    Kickstart(#[from] kickstart::KickstartError),
    #[error(transparent)]
    Security(#[from] security::SecurityError),
    #[error(transparent)]
    Ui(#[from] ui::SessionError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the server stopped with an error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared by every worker.
pub struct AppState {
    pub registry: Registry,
    pub notifier: Notifier,
    /// Recent lifecycle events per System (the web UI's event log).
    pub events: events::EventLog,
    /// Web UI sessions and CSRF tokens.
    pub ui: ui::Sessions,
    pub site: String,
    pub limits: vcds_xml::Limits,
    pub max_body: usize,
    pub body_deadline: Duration,
    pub max_lifetime: chrono::Duration,
    /// Who may do what, and the audit log.
    pub security: security::Security,
    /// Wakes the termination sweeper when a termination time changes.
    pub sweeper: tokio::sync::Notify,
    /// EPR addresses for work that has no request to take the host from (the sweeper).
    pub endpoints: Endpoints,
    /// The site's P-nodes and reservations.
    pub book: Arc<vcds_store::ReservationBook>,
    /// Carries deployments through their phases.
    pub executor: site::Executor,
    /// Where AddFile may fetch from.
    pub addfile_sources: Vec<url::Url>,
    /// The roll catalog, hosts and their kickstarts.
    pub kickstarts: kickstart::Kickstarts,
    /// Ganglia data of the site's hosts and virtual nodes.
    pub monitoring: monitoring::Monitoring,
    /// Request counters and latencies for `/metrics`.
    pub metrics: metrics::Metrics,
}

impl AppState {
    pub fn open(config: &Config) -> Result<AppState, StartError> {
        let security = security::Security::open(&config.security)?;
        let store = vcds_store::Store::open(&config.db_url)?;
        tracing::info!(backend = store.backend(), "store opened");
        Ok(AppState {
            book: Arc::new(vcds_store::ReservationBook::open(
                store.clone(),
                config.site_config.clone(),
                &config.pnodes,
            )?),
            kickstarts: kickstart::Kickstarts::open(store.clone(), config.roll_roots.clone())?,
            registry: Registry::open(store)?,
            notifier: Notifier::start()?,
            events: events::EventLog::default(),
            ui: ui::Sessions::new(config.security.tls.is_some())?,
            site: config.site.clone(),
            limits: vcds_xml::Limits {
                max_bytes: config.max_body,
                ..vcds_xml::Limits::default()
            },
            max_body: config.max_body,
            body_deadline: config.body_deadline,
            max_lifetime: config.max_lifetime,
            security,
            sweeper: tokio::sync::Notify::new(),
            endpoints: Endpoints {
                base: match &config.public_url {
                    Some(url) => url.as_str().trim_end_matches('/').to_string(),
                    None => format!(
                        "{}://{}",
                        if config.security.tls.is_some() {
                            "https"
                        } else {
                            "http"
                        },
                        config.listen
                    ),
                },
            },
            executor: config.executor.clone(),
            addfile_sources: config.addfile_sources.clone(),
            monitoring: monitoring::Monitoring::new(config.monitor.clone()),
            metrics: metrics::Metrics::default(),
        })
    }
}

/// Routes of the service, for the server and for in-process tests. Every route is behind
/// [`security::gate`], which finds the caller (or denies) before any handler runs.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(from_fn(security::gate))
            .configure(service_routes),
    );
}

fn service_routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(ui::routes);
    cfg.route("/wsrf/services/{endpoint}", web::post().to(http::soap))
        .route("/wsrf/services/{endpoint}", web::get().to(http::wsdl))
        .route("/wsdl/{path:.*}", web::get().to(http::wsdl_file))
        .route("/schemas/{path:.*}", web::get().to(http::schema_file))
        .configure(install_routes)
        .route("/admin/rolls", web::get().to(kickstart::list_rolls))
        .route("/admin/rolls", web::post().to(kickstart::add_roll))
        .route(
            "/admin/rolls/{name}",
            web::delete().to(kickstart::remove_roll),
        )
        .route(
            "/admin/clusters/{cluster}/rolls",
            web::put().to(kickstart::enable_rolls),
        )
        .route("/admin/pnodes", web::get().to(reservation::list_pnodes))
        .route(
            "/admin/pnodes/{name}/state",
            web::put().to(reservation::set_pnode_state),
        )
        .route(
            "/admin/reservations",
            web::get().to(reservation::list_reservations),
        )
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/admin/hosts", web::post().to(kickstart::register_host))
        .route(
            "/admin/hosts/{name}",
            web::delete().to(kickstart::remove_host),
        );
}

/// What installing nodes call: their kickstart and their progress reports.
fn install_routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/install/sbin/kickstart.cgi",
        web::get().to(kickstart::kickstart_cgi),
    )
    .route("/install/progress", web::get().to(kickstart::progress))
    .route("/install/progress", web::post().to(kickstart::progress));
}

/// A started server: its state, the addresses it listens on, and the server future (await it
/// or spawn it; `server.handle()` stops it).
pub struct Started {
    pub state: web::Data<AppState>,
    pub addrs: Vec<SocketAddr>,
    pub server: actix_web::dev::Server,
}

/// Opens the state, destroys resources whose termination time passed while the service was
/// down, starts the sweeper and the simulated site, and binds: plain HTTP, or mutual TLS with
/// each connection's principal found once at the handshake.
pub async fn start(config: Config) -> Result<Started, StartError> {
    security::check_listen(&config.listen, &config.security)?;
    let state = web::Data::new(AppState::open(&config)?);
    for path in &config.rolls {
        if state.kickstarts.ensure_roll_dir(path).await? {
            tracing::info!(path, "roll added at start");
        }
    }
    let swept = lifecycle::sweep(&state).await?;
    if swept > 0 {
        tracing::info!(
            swept,
            "resources past their termination time destroyed at start"
        );
    }
    actix_rt::spawn(lifecycle::run_sweeper(state.clone().into_inner()));
    let shared = state.clone().into_inner();
    shared.executor.resume_all(&shared);
    actix_rt::spawn(site::run_clock(shared.clone()));
    monitoring::run_poller(&shared)?;
    let data = state.clone();
    let mut server = HttpServer::new(move || App::new().app_data(data.clone()).configure(routes))
        // Slow senders are cut off: heads here, SOAP bodies in `http::soap`.
        .client_request_timeout(config.head_deadline);
    if config.workers > 0 {
        server = server.workers(config.workers);
    }
    let bind_error = |source| StartError::Bind {
        addr: config.listen.clone(),
        source,
    };
    let server = match (&config.security.tls, state.security.authorizer()) {
        (Some(files), Some(authorizer)) => server
            .on_connect(vcds_auth::on_connect(authorizer))
            .bind_openssl(&config.listen, security::acceptor(files)?)
            .map_err(bind_error)?,
        _ => server.bind(&config.listen).map_err(bind_error)?,
    };
    let addrs = server.addrs();
    if let site::Executor::Local(local) = &state.executor {
        actix_rt::spawn(install_server(state.clone(), local.config())?);
    }
    let scheme = if state.security.secure() {
        "https"
    } else {
        "http"
    };
    for addr in &addrs {
        tracing::info!(%addr, scheme, site = %config.site, "vcds listening: POST /wsrf/services/Portal, GET /wsrf/services/Portal?wsdl");
    }
    Ok(Started {
        state,
        addrs,
        server: server.run(),
    })
}

/// The local site's install listener: on the outside network (inside its namespace, where the
/// GW-nodes route installing nodes to), only the kickstart CGI and progress reports, which
/// recognise hosts by their registered MAC, and the installer's boot files; nothing else of the
/// service is reachable there.
fn install_server(
    state: web::Data<AppState>,
    local: &local_site::LocalConfig,
) -> Result<actix_web::dev::Server, StartError> {
    let addr = SocketAddr::from((vcds_site::local::MANAGER_IP, local.install_port));
    let listener = vcds_site::local::bind_tcp_in(&local.site.outside_netns, addr).map_err(|e| {
        StartError::Bind {
            addr: format!("{addr} in namespace {}", local.site.outside_netns),
            source: std::io::Error::other(e.to_string()),
        }
    })?;
    tracing::info!(%addr, netns = %local.site.outside_netns, "install listener: GET /install/sbin/kickstart.cgi, /install/progress, /install/boot/");
    let local = web::Data::new(local.clone());
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(local.clone())
            .configure(install_routes)
            .route("/install/boot/{file}", web::get().to(local_site::boot_file))
    })
    .workers(1)
    .listen(listener)?
    .run())
}

/// Runs the service until it is stopped.
pub async fn serve(config: Config) -> Result<(), StartError> {
    start(config).await?.server.await?;
    Ok(())
}

/// For tests that need the state shared with an in-process server.
pub fn shared(state: AppState) -> Arc<AppState> {
    Arc::new(state)
}
