//! Who is calling and what they may do: the caller of every request, the admin role, per-owner
//! access to resources, and the audit log. `vcds-auth` supplies the parts (mutual TLS with proxy
//! certificates, the grid-mapfile, the admins file, audit records); this module applies them to
//! the service.
//!
//! Two modes:
//! - **Secure** (`--tls-cert …`): every connection proved a certificate chain at the handshake
//!   and was mapped through the grid-mapfile once, by `vcds_auth::on_connect`. A connection
//!   without a mapped identity gets an access-denied answer to every request and learns nothing
//!   else.
//! - **Plain HTTP**: there is no way to tell callers apart, so every caller is the one
//!   [`local`](Security::local) identity, which holds the admin role. This is why plain HTTP
//!   listens only on loopback unless `--insecure-listen-any` says otherwise.
//!
//! Where each check is made:
//! - [`gate`] (middleware around every route): the caller exists (else access denied); `/admin/*`
//!   needs the admin role (secure) or a loopback peer (plain); the caller goes into the request's
//!   extensions as a [`Caller`]; admin changes are audited.
//! - `ops::addressed`: the addressed System or Subscription must be the caller's (or the caller an
//!   admin); otherwise it is reported exactly as an unknown resource, so nobody can probe for the
//!   ids of other users' resources.
//! - `ops` LookupSystem and the Portal's `api:ActiveSystems` (property, query and notifications)
//!   show only what the caller's [`Scope`] sees.
//! - `http::soap` audits every state-changing SOAP request, whatever its outcome.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use openssl::ssl::SslAcceptorBuilder;
use vcds_auth::audit::AuditError;
use vcds_auth::gridmap::MapFileError;
use vcds_auth::tls::TlsError;
use vcds_auth::{Admins, AuditLog, AuditRecord, AuthError, Authorizer, Dn, GridMap, Outcome};

pub use crate::scope::Scope;
pub use vcds_auth::Principal;

/// The files of secure mode, as Globus lays them out under `/etc/grid-security`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Server certificate (PEM; may hold its chain).
    pub cert: PathBuf,
    /// Its unencrypted private key (PEM).
    pub key: PathBuf,
    /// CA certificates (`*.0`, `*.pem`) and CRLs (`*.r0`, `*.crl.pem`) clients are checked against.
    pub trust_roots: PathBuf,
    /// DN → local account.
    pub grid_mapfile: PathBuf,
    /// DNs or accounts with the admin role (none when absent).
    pub admins: Option<PathBuf>,
}

/// What `vcds serve` is told about security.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// Secure mode: mutual TLS and grid-mapfile authorization. `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Where the audit log (JSON lines) is appended; `None` keeps no audit log.
    pub audit_log: Option<PathBuf>,
    /// Allows plain HTTP on an address other than loopback.
    pub insecure_listen_any: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    MapFile(#[from] MapFileError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(
        "plain HTTP on {addr} would serve every caller as the local administrator: give \
         --tls-cert, --tls-key, --trust-roots and --grid-mapfile, or listen on loopback, or \
         pass --insecure-listen-any to accept the risk"
    )]
    PlainHttpNotLoopback { addr: String },
    #[error("cannot resolve listen address {addr}: {source}")]
    Resolve {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// The authenticated caller of a request, put into its extensions by [`gate`].
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// The caller [`gate`] found for `req`; `None` if the gate did not run, which handlers must treat
/// as access denied.
pub fn caller(req: &HttpRequest) -> Option<Principal> {
    req.extensions().get::<Caller>().map(|c| c.0.clone())
}

/// The security state shared by every worker.
pub struct Security {
    /// Secure mode's grid-mapfile and admins; `None` in plain mode.
    authorizer: Option<Arc<Authorizer>>,
    audit: Option<AuditLog>,
    local: Principal,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("secure", &self.authorizer.is_some())
            .field("audit", &self.audit.is_some())
            .finish()
    }
}

/// The account every plain-HTTP caller is.
pub const LOCAL_ACCOUNT: &str = "local";

impl Security {
    /// Loads the grid-mapfile and admins file (secure mode) and opens the audit log.
    pub fn open(config: &SecurityConfig) -> Result<Security, SecurityError> {
        let authorizer = match &config.tls {
            Some(files) => {
                let gridmap = GridMap::load(&files.grid_mapfile)?;
                let admins = match &files.admins {
                    Some(path) => Admins::load(path)?,
                    None => Admins::default(),
                };
                tracing::info!(
                    grid_mapfile = %files.grid_mapfile.display(),
                    entries = gridmap.len(),
                    "secure mode: mutual TLS, grid-mapfile authorization"
                );
                Some(Arc::new(Authorizer::new(gridmap, admins)))
            }
            None => None,
        };
        let audit = match &config.audit_log {
            Some(path) => {
                let log = AuditLog::open(path)?;
                tracing::info!(path = %path.display(), "audit log");
                Some(log)
            }
            None => None,
        };
        Ok(Security {
            authorizer,
            audit,
            local: Security::local(),
        })
    }

    /// Plain mode's one identity: every caller, with the admin role.
    pub fn local() -> Principal {
        Principal {
            dn: Dn::from_attributes([("CN", "vcds local caller")]),
            account: LOCAL_ACCOUNT.to_string(),
            admin: true,
            limited_proxy: false,
        }
    }

    /// Secure mode's authorizer, for the TLS `on_connect` hook.
    pub fn authorizer(&self) -> Option<Arc<Authorizer>> {
        self.authorizer.clone()
    }

    pub fn secure(&self) -> bool {
        self.authorizer.is_some()
    }

    /// The caller of `req`: the connection's principal (secure) or the local identity (plain).
    pub fn principal(&self, req: &HttpRequest) -> Result<Principal, AuthError> {
        match self.authorizer {
            Some(_) => vcds_auth::principal(req).cloned(),
            None => Ok(self.local.clone()),
        }
    }

    /// Appends to the audit log, if there is one. A write failure is logged, not fatal: the
    /// request it describes has already happened.
    pub fn audit(&self, record: AuditRecord) {
        if let Some(log) = &self.audit {
            if let Err(e) = log.append(&record) {
                tracing::error!(error = %e, "audit record lost");
            }
        }
    }
}

/// The server side of mutual TLS for `bind_openssl`.
pub fn acceptor(files: &TlsFiles) -> Result<SslAcceptorBuilder, SecurityError> {
    Ok(vcds_auth::server_acceptor(
        &files.cert,
        &files.key,
        &files.trust_roots,
    )?)
}

/// Plain HTTP listens on loopback only, unless the operator explicitly allowed otherwise; either
/// way it warns, because nobody is authenticated.
pub fn check_listen(listen: &str, config: &SecurityConfig) -> Result<(), SecurityError> {
    if config.tls.is_some() {
        return Ok(());
    }
    let addrs: Vec<SocketAddr> = listen
        .to_socket_addrs()
        .map_err(|source| SecurityError::Resolve {
            addr: listen.to_string(),
            source,
        })?
        .collect();
    let loopback = !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback());
    if loopback {
        tracing::warn!(
            %listen,
            "plain HTTP without authentication: every caller is the local administrator \
             (give --tls-cert, --tls-key, --trust-roots and --grid-mapfile for secure mode)"
        );
        Ok(())
    } else if config.insecure_listen_any {
        tracing::warn!(
            %listen,
            "INSECURE: plain HTTP beyond loopback without authentication: anyone who can reach \
             this address acts as the local administrator"
        );
        Ok(())
    } else {
        Err(SecurityError::PlainHttpNotLoopback {
            addr: listen.to_string(),
        })
    }
}

/// `/admin/*`, and `/metrics` (the site's capacity and load are the provider's business).
fn is_admin_route(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/") || path == "/metrics"
}

fn forbidden(text: &'static str) -> HttpResponse {
    HttpResponse::Forbidden()
        .content_type("text/plain; charset=utf-8")
        .body(text)
}

/// "What" for the audit log: the method and path.
fn what(req: &HttpRequest) -> String {
    format!("{} {}", req.method(), req.path())
}

/// Middleware around every route: see the module documentation.
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(security) = req.app_data::<web::Data<Security>>().cloned() else {
        tracing::error!("no security state: refusing the request");
        let resp = HttpResponse::InternalServerError().finish();
        return Ok(req.into_response(resp));
    };
    let principal = match security.principal(req.request()) {
        Ok(p) => p,
        Err(denied) => {
            let dn = match &denied {
                AuthError::Unmapped(dn) => Some(dn.clone()),
                _ => None,
            };
            security.audit(
                AuditRecord::new(
                    dn.as_ref(),
                    None,
                    &what(req.request()),
                    None,
                    Outcome::Fault {
                        code: "AccessDenied".to_string(),
                    },
                )
                .peer(req.peer_addr()),
            );
            let resp = if req.method() == Method::POST && req.path().starts_with("/wsrf/services/")
            {
                crate::reply::access_denied(req.request())
            } else {
                forbidden("access denied\n")
            };
            return Ok(req.into_response(resp));
        }
    };
    let admin_route = is_admin_route(req.path());
    if admin_route {
        let allowed = if security.secure() {
            principal.admin
        } else {
            req.peer_addr().is_some_and(|a| a.ip().is_loopback())
        };
        if !allowed {
            let record = AuditRecord::by(
                &principal,
                &what(req.request()),
                None,
                Outcome::Fault {
                    code: "AccessDenied".to_string(),
                },
            );
            security.audit(record.peer(req.peer_addr()));
            let text = if security.secure() {
                "admin routes need the admin role\n"
            } else {
                "admin routes answer on loopback only\n"
            };
            return Ok(req.into_response(forbidden(text)));
        }
    }
    let audited = admin_route && !matches!(*req.method(), Method::GET | Method::HEAD);
    let what = what(req.request());
    let peer = req.peer_addr();
    req.extensions_mut().insert(Caller(principal.clone()));
    let res = next.call(req).await?;
    if audited {
        let status = res.status();
        let outcome = if status.is_success() {
            Outcome::Ok
        } else {
            Outcome::Fault {
                code: format!("HTTP {}", status.as_u16()),
            }
        };
        security.audit(AuditRecord::by(&principal, &what, None, outcome).peer(peer));
    }
    Ok(res.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(insecure: bool) -> SecurityConfig {
        SecurityConfig {
            insecure_listen_any: insecure,
            ..SecurityConfig::default()
        }
    }

    #[test]
    fn plain_http_stays_on_loopback_unless_told() {
        for addr in ["127.0.0.1:0", "[::1]:8080", "localhost:8080"] {
            assert!(check_listen(addr, &plain(false)).is_ok(), "{addr}");
        }
        for addr in ["0.0.0.0:8080", "[::]:8080"] {
            assert!(
                matches!(
                    check_listen(addr, &plain(false)),
                    Err(SecurityError::PlainHttpNotLoopback { .. })
                ),
                "{addr}"
            );
            assert!(check_listen(addr, &plain(true)).is_ok(), "{addr}");
        }
        assert!(matches!(
            check_listen("no port", &plain(false)),
            Err(SecurityError::Resolve { .. })
        ));
    }
}
