//! The SOAP/WSRF edge of vcds: what callers speak (CDDLM deployment API, WSRF 1.2, WS-BaseNotification
//! 1.3 over SOAP 1.1/1.2 with WS-Addressing) mapped onto the manager's operations.
//!
//! Flow of a request: [`security::gate`] finds the caller (or denies), [`http`] reads the body
//! under limits, `vcds_xml` parses it hardened, `vcds_soap` checks the envelope and
//! WS-Addressing, [`ops`] routes by endpoint and `wsa:Action` to an operation on the addressed
//! resource (the CDDLM System ones in [`cddlm`]), the reply is a resource property document
//! ([`kinds`]) or an operation's response, and every error becomes a SOAP fault in exactly one
//! place ([`faults`]). What the manager publishes reaches subscribers through [`notify`]
//! (rendering) and [`notifier`] (delivery, off the request path). `/metrics` and the
//! provider's `/admin/pnodes`, `/admin/reservations` are here too.

pub mod admin;
pub mod cddlm;
pub mod faults;
pub mod fetch;
pub mod http;
pub mod kinds;
pub mod metrics;
pub mod notifier;
pub mod notify;
pub mod ops;
pub mod reply;
pub mod request;
pub mod scope;
pub mod security;
pub mod xml;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use vcds_manager::Manager;

use crate::kinds::Endpoints;
use crate::notifier::Notifier;

/// What the SOAP edge is told.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The site's name, as `api:StaticPortalStatus` tells it.
    pub site: String,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// A slow sender gets this long to deliver a whole SOAP request body.
    pub body_deadline: Duration,
    /// Longest lifetime a resource or subscription may be given.
    pub max_lifetime: chrono::Duration,
    /// Where AddFile may fetch an `api:uri` from (`file:` / `http:` directory URLs).
    pub addfile_sources: Vec<url::Url>,
    /// The service's address as clients reach it: the base of every EPR in a notification
    /// (`http://host:port`, no trailing slash).
    pub public_base: String,
}

/// The edge's state, shared by every worker.
pub struct Api {
    pub manager: Arc<Manager>,
    pub security: Arc<security::Security>,
    pub notifier: Notifier,
    pub metrics: metrics::Metrics,
    pub config: ApiConfig,
    pub limits: vcds_xml::Limits,
    /// EPR addresses of notifications, from the configured public address, never from
    /// whichever request happened to cause a change.
    pub endpoints: Endpoints,
}

impl Api {
    /// The edge over `manager`; its notification sink is registered with the manager's events.
    pub fn new(
        manager: Arc<Manager>,
        security: Arc<security::Security>,
        config: ApiConfig,
    ) -> std::io::Result<Arc<Api>> {
        let endpoints = Endpoints {
            base: config.public_base.clone(),
        };
        let notifier = Notifier::start()?;
        manager.events().register(Arc::new(notify::Notifications {
            manager: Arc::downgrade(&manager),
            notifier: notifier.clone(),
            endpoints: endpoints.clone(),
        }));
        Ok(Arc::new(Api {
            limits: vcds_xml::Limits {
                max_bytes: config.max_body,
                ..vcds_xml::Limits::default()
            },
            manager,
            security,
            notifier,
            metrics: metrics::Metrics::default(),
            config,
            endpoints,
        }))
    }
}

/// The SOAP endpoints, the WSDL and schemas, `/metrics` and the site admin routes; the
/// service mounts them inside [`security::gate`].
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/wsrf/services/{endpoint}", web::post().to(http::soap))
        .route("/wsrf/services/{endpoint}", web::get().to(http::wsdl))
        .route("/wsdl/{path:.*}", web::get().to(http::wsdl_file))
        .route("/schemas/{path:.*}", web::get().to(http::schema_file))
        .route("/admin/pnodes", web::get().to(admin::list_pnodes))
        .route(
            "/admin/pnodes/{name}/state",
            web::put().to(admin::set_pnode_state),
        )
        .route(
            "/admin/reservations",
            web::get().to(admin::list_reservations),
        )
        .route("/metrics", web::get().to(metrics::metrics));
}
