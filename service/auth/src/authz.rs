//! From a peer identity to a vcds principal: grid-mapfile lookup, the admin role, and per-owner
//! access.

use std::future::{ready, Ready};

use actix_web::http::StatusCode;
use actix_web::{dev::Payload, FromRequest, HttpRequest, ResponseError};
use thiserror::Error;

use crate::dn::Dn;
use crate::gridmap::{Admins, GridMap};
use crate::x509::{ChainError, ChainIdentity};

/// An authenticated and authorized caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// End-entity DN (proxy CNs stripped).
    pub dn: Dn,
    /// Local account from the grid-mapfile (the DN's default account): resources are owned by it.
    pub account: String,
    /// Listed in the admins file: may act on every resource.
    pub admin: bool,
    /// Came with a Globus limited proxy, which by convention may not start new work.
    pub limited_proxy: bool,
}

impl Principal {
    /// Per-owner access: a resource owned by `owner_account` is open to its owner and to admins.
    pub fn may_access(&self, owner_account: &str) -> bool {
        self.admin || self.account == owner_account
    }
}

/// Why a connection carries no principal. All of them mean "access denied" (HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("no verified client certificate")]
    NoCertificate,
    #[error("client certificate chain rejected: {0}")]
    Chain(#[from] ChainError),
    #[error("{0} is not in the grid-mapfile")]
    Unmapped(Dn),
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }
}

/// The grid-mapfile plus the admins file.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    gridmap: GridMap,
    admins: Admins,
}

impl Authorizer {
    pub fn new(gridmap: GridMap, admins: Admins) -> Authorizer {
        Authorizer { gridmap, admins }
    }

    /// Maps a chain identity to a principal; an unmapped DN is denied.
    pub fn authorize(&self, identity: &ChainIdentity) -> Result<Principal, AuthError> {
        let account = self
            .gridmap
            .default_account(&identity.subject)
            .ok_or_else(|| AuthError::Unmapped(identity.subject.clone()))?;
        Ok(Principal {
            dn: identity.subject.clone(),
            account: account.to_string(),
            admin: self.admins.is_admin(&identity.subject, account),
            limited_proxy: identity.limited,
        })
    }
}

/// What the TLS `on_connect` hook stored for a connection (see [`crate::tls::on_connect`]).
#[derive(Debug)]
pub(crate) struct PeerAuth(pub(crate) Result<Principal, AuthError>);

/// The principal of the request's connection, or why there is none.
pub fn principal(req: &HttpRequest) -> Result<&Principal, AuthError> {
    match req.conn_data::<PeerAuth>() {
        Some(PeerAuth(result)) => result.as_ref().map_err(Clone::clone),
        None => Err(AuthError::NoCertificate),
    }
}

/// Handlers can take a `Principal` argument; requests without one get 403.
impl FromRequest for Principal {
    type Error = AuthError;
    type Future = Ready<Result<Principal, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(principal(req).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(dn: &str) -> ChainIdentity {
        ChainIdentity {
            subject: Dn::parse(dn).expect("dn"),
            proxy_depth: 0,
            limited: false,
        }
    }

    fn authorizer() -> Authorizer {
        let gridmap = GridMap::parse("\"/O=Grid/CN=Alice\" alice\n\"/O=Grid/CN=Root\" ops,root\n")
            .expect("gridmap");
        Authorizer::new(
            gridmap,
            Admins::parse("\"/O=Grid/CN=Root\"\n").expect("admins"),
        )
    }

    #[test]
    fn mapped_user_owns_only_own_resources() {
        let alice = authorizer()
            .authorize(&identity("CN=Alice,O=Grid"))
            .expect("mapped");
        assert_eq!((alice.account.as_str(), alice.admin), ("alice", false));
        assert!(alice.may_access("alice"));
        assert!(!alice.may_access("bob"));
    }

    #[test]
    fn admin_may_access_everything() {
        let root = authorizer()
            .authorize(&identity("/O=Grid/CN=Root"))
            .expect("mapped");
        assert_eq!((root.account.as_str(), root.admin), ("ops", true));
        assert!(root.may_access("alice"));
    }

    #[test]
    fn unmapped_dn_is_denied() {
        let denied = authorizer().authorize(&identity("/O=Grid/CN=Mallory"));
        assert_eq!(
            denied,
            Err(AuthError::Unmapped(
                Dn::parse("/O=Grid/CN=Mallory").expect("dn")
            ))
        );
        assert_eq!(
            denied.map_err(|e| e.to_string()),
            Err("/O=Grid/CN=Mallory is not in the grid-mapfile".to_string())
        );
    }
}
