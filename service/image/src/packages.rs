//! What a base image holds: a Debian package set, and the content key that names its image.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::tuning;
use crate::Error;

/// Bumped whenever the builder makes a different image from the same package set in a way
/// [`tuning`]'s plan does not show (the mmdebstrap call, the filesystem, the layout): old
/// images are then never taken for new ones.
pub const BUILDER_VERSION: u32 = 1;

/// What every node needs to boot from its disk and be reached: an init, udev (networkd waits
/// for it), the kernel whose modules match the installer's, ip, resize2fs for the installer's
/// growing of the root filesystem, sshd. The network is systemd-networkd's (part of systemd).
pub fn mandatory(arch: &str) -> [String; 6] {
    [
        "systemd-sysv".to_owned(),
        "udev".to_owned(),
        format!("linux-image-cloud-{arch}"),
        "iproute2".to_owned(),
        "e2fsprogs".to_owned(),
        "openssh-server".to_owned(),
    ]
}

/// Debian's rule (policy §5.6.1): lower-case letters, digits, `+`, `-`, `.`; at least two
/// characters, starting with a letter or digit.
pub fn valid_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

/// Debian package names (sorted, unique, the builder's mandatory ones included) for one
/// suite and architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageSet {
    suite: String,
    arch: String,
    packages: BTreeSet<String>,
}

impl PackageSet {
    /// The set of `names` plus [`mandatory`]; a name that is no Debian package name is refused.
    pub fn new<S: AsRef<str>>(
        suite: &str,
        arch: &str,
        names: impl IntoIterator<Item = S>,
    ) -> Result<PackageSet, Error> {
        for (what, value) in [("suite", suite), ("architecture", arch)] {
            let ok = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(Error::InvalidPackageSet(format!("{what} {value:?}")));
            }
        }
        let mut packages: BTreeSet<String> = mandatory(arch).into_iter().collect();
        for name in names {
            let name = name.as_ref().trim();
            if !valid_package_name(name) {
                return Err(Error::InvalidPackageSet(format!(
                    "{name:?} is not a Debian package name"
                )));
            }
            packages.insert(name.to_owned());
        }
        Ok(PackageSet {
            suite: suite.to_owned(),
            arch: arch.to_owned(),
            packages,
        })
    }

    pub fn suite(&self) -> &str {
        &self.suite
    }

    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// Every package, sorted.
    pub fn packages(&self) -> impl Iterator<Item = &str> {
        self.packages.iter().map(String::as_str)
    }

    /// The text the content key is the hash of: the builder's version and plan, the suite, the
    /// architecture and every package, one per line.
    pub fn canonical(&self) -> String {
        let mut text = format!(
            "vcds-image base image\nbuilder {BUILDER_VERSION}\ntuning {}\nsuite {}\narch {}\n",
            tuning::fingerprint(),
            self.suite,
            self.arch
        );
        for p in &self.packages {
            text.push_str("package ");
            text.push_str(p);
            text.push('\n');
        }
        text
    }

    pub fn key(&self) -> ContentKey {
        ContentKey(hex_sha256(self.canonical().as_bytes()))
    }
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The name of a base image: the SHA-256 of its package set's [`PackageSet::canonical`] text,
/// in hex.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContentKey(String);

impl ContentKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContentKey {
    type Error = Error;

    /// Keys come back from directory names and manifests: only 64 lower-case hex digits are one.
    fn try_from(s: String) -> Result<ContentKey, Error> {
        if s.len() == 64 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
            Ok(ContentKey(s))
        } else {
            Err(Error::InvalidPackageSet(format!(
                "{s:?} is not a content key"
            )))
        }
    }
}

impl From<ContentKey> for String {
    fn from(key: ContentKey) -> String {
        key.0
    }
}

impl fmt::Display for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn sets_are_sorted_unique_and_hold_the_mandatory_packages() {
        let set = PackageSet::new("bookworm", "amd64", ["munge", " slurmd", "munge"]).unwrap();
        let packages: Vec<&str> = set.packages().collect();
        assert_eq!(
            packages,
            [
                "e2fsprogs",
                "iproute2",
                "linux-image-cloud-amd64",
                "munge",
                "openssh-server",
                "slurmd",
                "systemd-sysv",
                "udev"
            ]
        );
    }

    #[test]
    fn the_key_depends_on_content_not_on_order_or_repetition() {
        let a = PackageSet::new("bookworm", "amd64", ["b", "a1"].map(|s| format!("{s}x"))).unwrap();
        let b = PackageSet::new("bookworm", "amd64", ["a1x", "bx", "bx"]).unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key().as_str().len(), 64);
        let mandatory_named = PackageSet::new("bookworm", "amd64", ["a1x", "bx", "udev"]).unwrap();
        assert_eq!(a.key(), mandatory_named.key());
        let other = PackageSet::new("bookworm", "amd64", ["a1x"]).unwrap();
        assert_ne!(a.key(), other.key());
        let other_suite = PackageSet::new("trixie", "amd64", ["a1x", "bx"]).unwrap();
        assert_ne!(a.key(), other_suite.key());
    }

    #[test]
    fn the_canonical_text_names_the_builder() {
        let text = PackageSet::new("bookworm", "amd64", ["munge"])
            .unwrap()
            .canonical();
        assert!(text.starts_with(&format!(
            "vcds-image base image\nbuilder {BUILDER_VERSION}\ntuning {}\nsuite bookworm\narch amd64\n",
            tuning::fingerprint()
        )));
        assert!(text.contains("\npackage munge\n"));
    }

    #[test]
    fn names_outside_debian_policy_are_refused() {
        for bad in ["", "a", "Munge", "-x", "a b", "x;rm", "lib:amd64", "../x"] {
            let err = PackageSet::new("bookworm", "amd64", [bad]).unwrap_err();
            assert!(
                err.to_string().contains("not a Debian package name"),
                "{bad}: {err}"
            );
        }
        for good in ["g++", "libc6", "0ad", "python3.11", "libstdc++6"] {
            assert!(valid_package_name(good), "{good}");
        }
        assert!(PackageSet::new("Bookworm", "amd64", ["x1"]).is_err());
        assert!(PackageSet::new("bookworm", "amd/64", ["x1"]).is_err());
    }

    #[test]
    fn keys_round_trip_and_reject_non_keys() {
        let key = PackageSet::new("bookworm", "amd64", ["x1"]).unwrap().key();
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<ContentKey>(&json).unwrap(), key);
        assert!(ContentKey::try_from("ABC".to_owned()).is_err());
        assert!(ContentKey::try_from("g".repeat(64)).is_err());
    }
}
