//! Which resources a caller sees in listings (`api:ActiveSystems`, its notifications) and
//! lookups.

use vcds_auth::Principal;
use vcds_model::{Resource, State};

/// Which resources someone sees in listings (`api:ActiveSystems`) and lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// An admin: everything.
    All,
    /// Resources owned by this account.
    Owner(String),
}

impl Scope {
    pub fn of(principal: &Principal) -> Scope {
        if principal.admin {
            Scope::All
        } else {
            Scope::Owner(principal.account.clone())
        }
    }

    /// The scope a subscription was made with: its subscriber's at the time of subscribing.
    pub fn of_subscription(subscription: &Resource) -> Scope {
        match &subscription.state {
            State::Subscription(s) if s.subscriber_admin => Scope::All,
            _ => Scope::Owner(subscription.owner.clone()),
        }
    }

    pub fn sees(&self, resource: &Resource) -> bool {
        match self {
            Scope::All => true,
            Scope::Owner(account) => &resource.owner == account,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_see_own_resources_or_all() {
        let resource = |owner: &str| Resource {
            id: "x".into(),
            owner: owner.into(),
            created: chrono::Utc::now(),
            termination: None,
            state: State::Portal,
        };
        let alice = Scope::Owner("alice".into());
        assert!(alice.sees(&resource("alice")));
        assert!(!alice.sees(&resource("bob")));
        assert!(Scope::All.sees(&resource("bob")));
        let admin = Principal {
            dn: vcds_auth::Dn::from_attributes([("CN", "an admin")]),
            account: "root".into(),
            admin: true,
            limited_proxy: false,
        };
        assert_eq!(Scope::of(&admin), Scope::All);
    }
}
