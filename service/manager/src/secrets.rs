//! Keys the manager makes for a virtual cluster: an SSH host key per node (so every node's
//! key is known to the others, and to the user, before any node boots) and the cluster user's
//! own key pair (so the user reaches every node from the frontend by name); the cluster's munge
//! key (Slurm's authentication), never the same for two clusters.

use ssh_key::rand_core::{OsRng, RngCore as _};
use ssh_key::{Algorithm, LineEnding, PrivateKey};

/// An Ed25519 key pair in OpenSSH's formats: (private key file, public key line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub private: String,
    pub public: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot make an SSH key: {0}")]
pub struct KeyError(String);

/// A new Ed25519 key pair, its public line commented `comment`.
pub fn ssh_key_pair(comment: &str) -> Result<KeyPair, KeyError> {
    let bad = |e: ssh_key::Error| KeyError(e.to_string());
    let mut key = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).map_err(bad)?;
    key.set_comment(comment);
    Ok(KeyPair {
        private: key.to_openssh(LineEnding::LF).map_err(bad)?.to_string(),
        public: key.public_key().to_openssh().map_err(bad)?,
    })
}

/// A new munge key: 1024 random bytes, as `mungekey` makes by default.
pub fn munge_key() -> Vec<u8> {
    let mut key = vec![0; 1024];
    OsRng.fill_bytes(&mut key);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn munge_keys_are_new_each_time() {
        let (a, b) = (munge_key(), munge_key());
        assert_eq!(a.len(), 1024);
        assert_ne!(a, b);
    }

    #[test]
    fn pairs_are_openssh_and_new_each_time() {
        let a = ssh_key_pair("frontend.sys").unwrap_or_else(|e| panic!("{e}"));
        let b = ssh_key_pair("frontend.sys").unwrap_or_else(|e| panic!("{e}"));
        assert!(a.private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert!(a.public.starts_with("ssh-ed25519 ") && a.public.ends_with(" frontend.sys"));
        assert_ne!(a.public, b.public);
        let parsed = vcds_cdl::cluster::ssh::PublicKey::parse(&a.public);
        assert!(parsed.is_ok(), "{parsed:?}");
    }
}
