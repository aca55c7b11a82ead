//! The vcds service, composed: the store, the install catalog, the manager with its executor
//! (the simulated site or the local one), the SOAP/WSRF edge and the web UI, behind one
//! security gate on one listener — plus, on the local site, the install listener on the
//! outside network. Each part lives in its own crate; this one only wires them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use std::collections::BTreeSet;
use vcds_api::security;
use vcds_api::{Api, ApiConfig};

use vcds_install::{Kickstarts, PackageSource};
use vcds_local::{LocalConfig, LocalExecutor};
use vcds_manager::sim::Simulated;
use vcds_manager::{Executor, Manager, MonitorConfig};
use vcds_ui::Ui;

/// What carries deployments out.
#[derive(Debug, Clone)]
pub enum Site {
    /// The simulated site (`--site sim`).
    Simulated(Simulated),
    /// The local site's P-node agents (`--site local`).
    Local(Box<LocalConfig>),
}

/// What `vcds serve` is told.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    /// `sqlite://PATH` or `postgres://…`.
    pub db_url: String,
    /// The site's name in `api:StaticPortalStatus`.
    pub site_name: String,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// Longest lifetime a resource or subscription may be given.
    pub max_lifetime: chrono::Duration,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    pub site: Site,
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
    /// (every notification); default: the listen address.
    pub public_url: Option<url::Url>,
    /// A slow sender gets this long to deliver a request's head (request line and headers).
    pub head_deadline: Duration,
    /// A slow sender gets this long to deliver a whole SOAP request body.
    pub body_deadline: Duration,
    /// Mutual TLS, grid-mapfile, admins, audit log; plain HTTP on loopback by default.
    pub security: security::SecurityConfig,
    /// Ganglia polling: gmond endpoints, interval, the simulated site's gmonds.
    pub monitor: MonitorConfig,
    /// Add the project's own rolls (built into the binary) when the catalog lacks them.
    pub builtin_rolls: bool,
    /// Mappings of Rocks package names to Debian's for rolls that ship none (`DIR/ROLL.packages`),
    /// over the built-in ones for the stock Rocks rolls.
    pub package_maps: Option<std::path::PathBuf>,
    /// apt's lists, whose package names are what nodes may install (Initialize refuses the rest);
    /// `None`: not checked.
    pub apt_lists: Option<std::path::PathBuf>,
}

impl Config {
    /// The simulated site, steps of 2 s, on the local site's P-nodes; everything else default.
    pub fn new(listen: impl Into<String>, db_url: impl Into<String>) -> Config {
        Config {
            listen: listen.into(),
            db_url: db_url.into(),
            site_name: "local".to_string(),
            max_body: 4 * 1024 * 1024,
            max_lifetime: chrono::Duration::days(366),
            workers: 0,
            site: Site::Simulated(Simulated {
                step: Duration::from_secs(2),
                ..Simulated::default()
            }),
            site_config: vcds_placement::SiteConfig::default(),
            pnodes: vcds_manager::pnodes::local_pnodes(),
            roll_roots: Vec::new(),
            rolls: Vec::new(),
            addfile_sources: Vec::new(),
            public_url: None,
            head_deadline: Duration::from_secs(10),
            body_deadline: Duration::from_secs(30),
            security: security::SecurityConfig::default(),
            monitor: MonitorConfig::default(),
            builtin_rolls: true,
            package_maps: None,
            apt_lists: Some(APT_LISTS.into()),
        }
    }

    /// The base of the EPRs in notifications.
    fn public_base(&self) -> String {
        match &self.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => {
                let scheme = if self.security.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{}", self.listen)
            }
        }
    }
}

/// Where apt keeps the package lists of its configured sources.
pub const APT_LISTS: &str = "/var/lib/apt/lists";

/// The package names of apt's lists in `dir`, read once per process and directory (reading
/// them takes a while, and in-process tests open many services).
fn apt_names(dir: &std::path::Path) -> Result<Arc<BTreeSet<String>>, StartError> {
    type Read = Vec<(std::path::PathBuf, Arc<BTreeSet<String>>)>;
    static READ: std::sync::Mutex<Read> = std::sync::Mutex::new(Vec::new());
    let mut read = READ
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, names)) = read.iter().find(|(d, _)| d == dir) {
        return Ok(names.clone());
    }
    let names = Arc::new(vcds_rolls::fs::apt_package_names(dir).map_err(|e| {
        StartError::Packages(format!(
            "{e}: run `apt-get update` so the package sources are known, or give --apt-lists"
        ))
    })?);
    tracing::info!(dir = %dir.display(), packages = names.len(), "package names of the apt sources");
    read.push((dir.to_path_buf(), names.clone()));
    Ok(names)
}

/// The package source nodes install from.
fn package_source(config: &Config) -> Result<PackageSource, StartError> {
    let packages = |e: vcds_rolls::RollError| StartError::Packages(e.to_string());
    let mut maps = vcds_install::builtin_package_maps().map_err(packages)?;
    if let Some(dir) = &config.package_maps {
        for (roll, map) in vcds_rolls::fs::load_package_maps(dir).map_err(packages)? {
            maps.entry(roll).or_default().extend(map);
        }
    }
    let available = config.apt_lists.as_deref().map(apt_names).transpose()?;
    Ok(PackageSource { maps, available })
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("package sources: {0}")]
    Packages(String),
    #[error(transparent)]
    Store(#[from] vcds_store::StoreError),
    #[error(transparent)]
    Registry(#[from] vcds_manager::RegistryError),
    #[error("reservation book: {0}")]
    Book(#[from] vcds_store::BookError),
    #[error("roll catalog: {0}")]
    Kickstart(#[from] vcds_install::KickstartError),
    #[error(transparent)]
    Security(#[from] security::SecurityError),
    #[error(transparent)]
    Ui(#[from] vcds_ui::SessionError),
    #[error(transparent)]
    Manager(#[from] vcds_manager::ManagerError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the server stopped with an error: {0}")]
    Io(#[from] std::io::Error),
}

/// The composed service.
pub struct AppState {
    pub manager: Arc<Manager>,
    pub api: Arc<Api>,
    pub ui: Arc<Ui>,
    pub security: Arc<security::Security>,
    pub kickstarts: Arc<Kickstarts>,
    /// The local site's executor, when that is the site.
    pub local: Option<Arc<LocalExecutor>>,
}

impl AppState {
    /// Opens the store and builds every part; the manager applies executors' reports and
    /// follows install progress from now on (the other singletons start with [`start`]).
    /// Must run inside a Tokio runtime.
    pub fn open(config: &Config) -> Result<AppState, StartError> {
        let security = Arc::new(security::Security::open(&config.security)?);
        let store = vcds_store::Store::open(&config.db_url)?;
        tracing::info!(backend = store.backend(), "store opened");
        let book = Arc::new(vcds_store::ReservationBook::open(
            store.clone(),
            config.site_config.clone(),
            &config.pnodes,
        )?);
        let builtin = if config.builtin_rolls {
            vcds_install::builtin_rolls()
        } else {
            Vec::new()
        };
        let kickstarts = Arc::new(Kickstarts::open(
            store.clone(),
            config.roll_roots.clone(),
            package_source(config)?,
            &builtin,
        )?);
        let registry = vcds_manager::Registry::open(store)?;
        let (executor, local): (Arc<dyn Executor>, _) = match &config.site {
            Site::Simulated(sim) => (Arc::new(sim.clone()), None),
            Site::Local(local) => {
                let local = Arc::new(LocalExecutor::new((**local).clone(), kickstarts.clone()));
                (local.clone(), Some(local))
            }
        };
        let manager = Arc::new(Manager::new(
            registry,
            book,
            kickstarts.clone(),
            executor,
            config.monitor.clone(),
        ));
        manager.start_loops();
        let api = Api::new(
            manager.clone(),
            security.clone(),
            ApiConfig {
                site: config.site_name.clone(),
                max_body: config.max_body,
                body_deadline: config.body_deadline,
                max_lifetime: config.max_lifetime,
                addfile_sources: config.addfile_sources.clone(),
                public_base: config.public_base(),
            },
        )?;
        let ui = Arc::new(Ui::new(api.clone(), config.security.tls.is_some())?);
        Ok(AppState {
            manager,
            api,
            ui,
            security,
            kickstarts,
            local,
        })
    }

    /// Every route of the service, each behind [`security::gate`], which finds the caller (or
    /// denies) before any handler runs; for the server and for in-process tests.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::from(self.api.clone()))
            .app_data(web::Data::from(self.ui.clone()))
            .app_data(web::Data::from(self.security.clone()))
            .app_data(web::Data::from(self.kickstarts.clone()))
            .service(
                web::scope("")
                    .wrap(from_fn(security::gate))
                    .configure(vcds_ui::routes)
                    .configure(vcds_api::routes)
                    .configure(vcds_install::http::install_routes)
                    .configure(vcds_install::http::admin_routes),
            );
    }
}

/// A started server: its state, the addresses it listens on, and the server future (await it
/// or spawn it; `server.handle()` stops it).
pub struct Started {
    pub state: web::Data<AppState>,
    pub addrs: Vec<SocketAddr>,
    pub server: actix_web::dev::Server,
}

/// Opens the state, adds the configured rolls, starts the manager's singletons (which first
/// destroy what passed its termination time while the service was down, and carry on what
/// the last run left half-way), and binds: plain HTTP, or mutual TLS with each connection's
/// principal found once at the handshake.
pub async fn start(config: Config) -> Result<Started, StartError> {
    security::check_listen(&config.listen, &config.security)?;
    let state = web::Data::new(AppState::open(&config)?);
    for path in &config.rolls {
        if state.kickstarts.ensure_roll_dir(path).await? {
            tracing::info!(path, "roll added at start");
        }
    }
    if let Some(local) = &state.local {
        local.prepare_boot_files()?;
    }
    state.manager.start().await?;
    let data = state.clone();
    let mut server = HttpServer::new(move || App::new().configure(|c| data.configure(c)))
        // Slow senders are cut off: heads here, SOAP bodies in `vcds_api::http::soap`.
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
    if let Some(local) = &state.local {
        actix_rt::spawn(install_server(state.kickstarts.clone(), local.config())?);
    }
    let scheme = if state.security.secure() {
        "https"
    } else {
        "http"
    };
    for addr in &addrs {
        tracing::info!(%addr, scheme, site = %config.site_name, "vcds listening: POST /wsrf/services/Portal, GET /wsrf/services/Portal?wsdl");
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
    kickstarts: Arc<Kickstarts>,
    local: &LocalConfig,
) -> Result<actix_web::dev::Server, StartError> {
    let addr = SocketAddr::from((vcds_site::local::MANAGER_IP, local.install_port));
    let listener = vcds_site::local::bind_tcp_in(&local.site.outside_netns, addr).map_err(|e| {
        StartError::Bind {
            addr: format!("{addr} in namespace {}", local.site.outside_netns),
            source: std::io::Error::other(e.to_string()),
        }
    })?;
    tracing::info!(%addr, netns = %local.site.outside_netns, "install listener: GET /install/sbin/kickstart.cgi, /install/progress, /install/boot/");
    let kickstarts = web::Data::from(kickstarts);
    let boot = web::Data::new(local.boot_files());
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(kickstarts.clone())
            .app_data(boot.clone())
            .configure(vcds_install::http::install_routes)
            .configure(vcds_install::http::boot_routes)
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
