//! The Debian side of a profile: the packages a node installs and those it keeps out, each with
//! every `<package>` that asked for it, the ones mapped to nothing, and the error that names
//! packages no apt source holds. `debian` resolves a profile into these.

use std::fmt::Write as _;

use crate::origin::Origin;

/// One `<package>` of a node file that led to a Debian package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub roll: String,
    pub file: String,
    /// As the node file names it; `@group` for `type="meta"`.
    pub package: String,
    pub disabled: bool,
    /// The mapping entry that translated it; `None` when the name is Debian's as it is.
    pub mapping: Option<Origin>,
}

/// A Debian package, with every `<package>` that asked for it (or kept it out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianPackage {
    pub name: String,
    pub requests: Vec<Request>,
}

/// A `<package>` that is nothing on Debian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub request: Request,
    pub reason: String,
}

/// The Debian side of a profile's `%packages`, each list sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DebianPackages {
    pub install: Vec<DebianPackage>,
    /// Kept out: some `<package>` that maps to it is disabled, which wins over any that is not
    /// (as `-name` does in `%packages`).
    pub removed: Vec<DebianPackage>,
    /// Packages mapped to nothing, once per roll and name.
    pub dropped: Vec<Dropped>,
}

impl DebianPackages {
    /// The names to install.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.install.iter().map(|p| p.name.as_str())
    }

    /// Refuses when a package to install is one `available` does not know (the names of the
    /// apt sources, e.g. [`crate::fs::apt_package_names`]), listing every such package. Kept-out
    /// names are not checked: a name no source has is not installed anyway.
    pub fn check(&self, available: &dyn Fn(&str) -> bool) -> Result<(), UnavailablePackages> {
        let missing: Vec<DebianPackage> = self
            .install
            .iter()
            .filter(|p| !available(&p.name))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(UnavailablePackages { missing })
        }
    }
}

/// Debian packages a profile needs that no apt source holds, each with the rolls that ask.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.missing))]
pub struct UnavailablePackages {
    pub missing: Vec<DebianPackage>,
}

fn describe(missing: &[DebianPackage]) -> String {
    let mut out = format!("no apt source holds {}:", plural(missing.len(), "package"));
    for (i, p) in missing.iter().enumerate() {
        let _ = write!(out, "{} {} (", if i == 0 { "" } else { ";" }, p.name);
        for (j, r) in p.requests.iter().enumerate() {
            let _ = write!(
                out,
                "{}package {} of roll {}, {}",
                if j == 0 { "" } else { " and " },
                r.package,
                r.roll,
                r.file
            );
            if let Some(m) = &r.mapping {
                let _ = write!(out, ", mapped by {}:{} (roll {})", m.file, m.line, m.roll);
            }
        }
        out.push(')');
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
