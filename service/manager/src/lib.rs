//! The cluster manager: it holds what vcds knows (the [`Registry`] of WS-Resources, written
//! through to the store; the site's reservation book; the install catalog), decides what each
//! deployment becomes ([`vcds_model::Deployment::apply`] on every event, whoever reports it),
//! runs the singletons (reservation clock, termination sweeper, reconciler, install watcher,
//! Ganglia poller) and publishes what happened as typed [`events::DomainEvent`]s. Executors
//! act on a site and report back; the SOAP edge and the web UI call the operations here.
//! No HTTP, no SOAP: those are the edges' business.

mod clock;
pub mod events;
pub mod executor;
mod install;
mod lifecycle;
pub mod monitoring;
pub mod pnodes;
mod reconcile;
pub mod registry;
mod reservation;
mod secrets;
pub mod sim;
mod system;

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Notify};
use vcds_install::Kickstarts;
use vcds_model::{Event, Resource, TransitionError};
use vcds_store::{BookError, ReservationBook};

pub use clock::{next_time, Due};
pub use events::{DomainEvent, EventBus, PropertyChange, Sink};
pub use executor::{Executor, Job, Reporter};
pub use monitoring::{MonitorConfig, Monitoring};
pub use registry::{Registry, RegistryError};
pub use reservation::{cluster_request, kind_name};
pub use system::{check_file_name, Descriptor, InitializeRequest, MAX_FILE_BYTES};

/// Everything a manager operation can fail with; the SOAP edge maps each to its fault.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("no resource {0:?} at this endpoint")]
    ResourceUnknown(String),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("{0}")]
    BadArgument(String),
    #[error(transparent)]
    Cdl(#[from] vcds_cdl::CdlError),
    #[error("the descriptor is not a usable cluster request: {0}")]
    Spec(#[from] vcds_cdl::cluster::SpecError),
    #[error(transparent)]
    Path(#[from] vcds_cdl::PathError),
    #[error(transparent)]
    Book(#[from] BookError),
    #[error("the virtual cluster is not alive: {0}")]
    NotAlive(String),
    /// Packages the nodes would install that no package source holds, with the rolls asking.
    #[error("{0}")]
    Packages(String),
    /// The site could not do what the operation needs; nothing changed.
    #[error("the site could not carry it out: {0}")]
    Site(#[from] executor::ExecError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The service itself failed (the store, the blocking pool): never the caller's fault.
    #[error("the service could not complete the request: {0}")]
    Unavailable(String),
}

impl From<vcds_store::blocking::BlockingError> for ManagerError {
    fn from(e: vcds_store::blocking::BlockingError) -> Self {
        ManagerError::Unavailable(e.to_string())
    }
}

/// The cluster manager.
pub struct Manager {
    registry: Arc<Registry>,
    book: Arc<ReservationBook>,
    install: Arc<Kickstarts>,
    executor: Arc<dyn Executor>,
    events: EventBus,
    monitoring: Monitoring,
    /// Wakes the termination sweeper when a termination time changes.
    sweeper: Notify,
    /// Wakes the reconciler (after a release).
    reconciler: Notify,
    gmond: reconcile::GmondPorts,
    reports: mpsc::UnboundedSender<(String, Event)>,
    /// Taken by [`Manager::start`], which applies what executors report.
    inbox: Mutex<Option<mpsc::UnboundedReceiver<(String, Event)>>>,
}

impl Manager {
    pub fn new(
        registry: Registry,
        book: Arc<ReservationBook>,
        install: Arc<Kickstarts>,
        executor: Arc<dyn Executor>,
        monitor: MonitorConfig,
    ) -> Manager {
        let (reports, inbox) = mpsc::unbounded_channel();
        Manager {
            registry: Arc::new(registry),
            book,
            install,
            executor,
            events: EventBus::default(),
            monitoring: Monitoring::new(monitor),
            sweeper: Notify::new(),
            reconciler: Notify::new(),
            gmond: Default::default(),
            reports,
            inbox: Mutex::new(Some(inbox)),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn book(&self) -> &Arc<ReservationBook> {
        &self.book
    }

    pub fn install(&self) -> &Arc<Kickstarts> {
        &self.install
    }

    pub fn monitoring(&self) -> &Monitoring {
        &self.monitoring
    }

    /// Where sinks register for the domain events.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Where System `r`'s user logs in, while the site holds its cluster.
    pub fn access(&self, r: &Resource) -> Option<executor::Access> {
        r.deployment().filter(|d| d.site_holds())?;
        self.executor.access(&Job::of(r)?)
    }

    /// What the site gives a VM of a node that booked `booked`.
    pub fn vm_size(&self, booked: vcds_placement::Resources) -> Option<(u32, u32)> {
        self.executor.vm_size(booked)
    }

    /// The line executors report through.
    pub fn reporter(&self) -> Reporter {
        Reporter {
            tx: self.reports.clone(),
            registry: self.registry.clone(),
        }
    }

    /// Starts applying what executors report and following the nodes' install progress, on
    /// the current Tokio runtime. Without these no deployment moves; [`Manager::start`] starts
    /// the rest.
    pub fn start_loops(self: &Arc<Self>) {
        let inbox = self
            .inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(inbox) = inbox {
            tokio::spawn(self.clone().apply_reports(inbox));
            tokio::spawn(self.clone().watch_installs());
            tokio::spawn(self.clone().watch_schedulers());
        }
    }

    /// Destroys what passed its termination time while the service was down, then starts
    /// the singletons on the current runtime — the sweeper, the reservation clock, the
    /// reconciler, the Ganglia poller — and carries on every deployment the last run left
    /// half-way.
    pub async fn start(self: &Arc<Self>) -> Result<(), ManagerError> {
        let swept = self.sweep().await?;
        if swept > 0 {
            tracing::info!(
                swept,
                "resources past their termination time destroyed at start"
            );
        }
        self.start_loops();
        tokio::spawn(self.clone().run_sweeper());
        tokio::spawn(self.clone().run_clock());
        tokio::spawn(self.clone().run_reconciler());
        monitoring::run_poller(self).map_err(|e| ManagerError::Unavailable(e.to_string()))?;
        self.resume_all().await;
        Ok(())
    }

    /// Carries on every deployment from where it is (the last run may have stopped half-way).
    pub async fn resume_all(&self) {
        for r in self.registry.systems() {
            self.carry_on(&r).await;
            self.check_install(&r.id).await;
        }
    }

    /// System `r`'s deployment as the site needs it, with the packages its appliances install.
    pub(crate) fn job_of(&self, r: &Resource) -> Option<Job> {
        let mut job = Job::of(r)?;
        if let Some(spec) = &job.spec {
            match self.packages_of(&job.system, spec) {
                Ok(packages) => job.packages = packages,
                Err(e) => {
                    tracing::warn!(id = %job.system, error = %e, "the cluster's packages do not resolve")
                }
            }
        }
        Some(job)
    }

    /// Hands System `r` to the executor to move it on from its phase; before provisioning,
    /// its nodes become hosts that may install (idempotent, so a restart repeats it safely).
    async fn carry_on(&self, r: &Resource) {
        let Some(job) = self.job_of(r) else { return };
        if job.phase == Some(vcds_model::Phase::Provisioning) {
            if let Err(e) = self.register_hosts(&job).await {
                self.fail(&job.system, format!("provisioning failed: {e}"))
                    .await;
                return;
            }
        }
        self.executor.clone().carry_on(job, self.reporter());
    }
}
