//! Authentication and authorization for vcds, Globus style: mutual TLS with X.509 (RFC 3820 proxy
//! certificates included), grid-mapfile authorization, an admin role, per-owner access, and an
//! audit log.
//!
//! Wiring into an actix-web server (`--admins` is optional: use `Admins::default()`):
//!
//! ```no_run
//! use std::path::Path;
//! use std::sync::Arc;
//!
//! use actix_web::{web, App, HttpResponse, HttpServer};
//! use vcds_auth::{on_connect, server_acceptor, Admins, Authorizer, GridMap, Principal};
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let authorizer = Arc::new(Authorizer::new(
//!     GridMap::load(Path::new("/etc/grid-security/grid-mapfile"))?,
//!     Admins::load(Path::new("/etc/vcds/admins"))?,
//! ));
//! let tls = server_acceptor(
//!     Path::new("/etc/grid-security/hostcert.pem"),
//!     Path::new("/etc/grid-security/hostkey.pem"),
//!     Path::new("/etc/grid-security/certificates"),
//! )?;
//! HttpServer::new(|| {
//!     App::new().route(
//!         "/vcds",
//!         // A `Principal` argument answers 403 for unmapped callers; `vcds_auth::principal(&req)`
//!         // gives the same as a `Result` for building a SOAP fault instead.
//!         web::post().to(|who: Principal| async move { HttpResponse::Ok().body(who.account) }),
//!     )
//! })
//! .on_connect(on_connect(authorizer))
//! .bind_openssl("0.0.0.0:8443", tls)?
//! .run()
//! .await?;
//! # Ok(())
//! # }
//! ```

pub mod audit;
pub mod authz;
pub mod dn;
pub mod gridmap;
pub mod tls;
pub mod x509;

pub use audit::{AuditLog, AuditRecord, Outcome};
pub use authz::{principal, AuthError, Authorizer, Principal};
pub use dn::Dn;
pub use gridmap::{Admins, GridMap};
pub use tls::{on_connect, server_acceptor};
pub use x509::{chain_identity, ChainIdentity};
