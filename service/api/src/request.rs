//! What an operation works on: the addressed resource, its request body, the caller; and the
//! helpers every operation reads its body with.

use std::sync::Arc;

use roxmltree::Node;
use vcds_manager::Manager;
use vcds_model::Resource;

use crate::kinds::{Endpoint, Endpoints};
use crate::security::Principal;
use crate::Api;

/// What an operation works on.
pub struct Request<'a, 'input> {
    pub api: &'a Api,
    /// EPRs in the reply: the address the caller used.
    pub endpoints: Endpoints,
    pub endpoint: Endpoint,
    pub resource: Arc<Resource>,
    pub body: Node<'a, 'input>,
    /// Who asked; `ops::addressed` has checked that they may act on `resource`.
    pub caller: &'a Principal,
}

/// An operation's reply body, and the resource it created, if any (for the audit log).
#[derive(Debug)]
pub struct Reply {
    pub body: String,
    pub created: Option<String>,
}

impl Request<'_, '_> {
    pub fn manager(&self) -> &Manager {
        &self.api.manager
    }
}

pub fn text_of<'a>(n: Node<'a, '_>) -> &'a str {
    n.text().unwrap_or("").trim()
}

pub fn child<'a, 'input>(
    n: Node<'a, 'input>,
    ns_uri: &str,
    local: &str,
) -> Option<Node<'a, 'input>> {
    n.children().find(|c| c.has_tag_name((ns_uri, local)))
}
