//! Debian packages of a profile: the enabled rolls' mappings together ([`PackageMaps`], each
//! roll's from `debian_map`), the resolution of a profile's packages through them into the
//! Debian list a node installs (the types of `debian_list`), and the package names an apt
//! index line makes installable.

use std::collections::BTreeMap;

use crate::debian_list::{DebianPackage, DebianPackages, Dropped, Request};
use crate::debian_map::{MapEntry, Mapping, PackageMap};
use crate::expand::Profile;
use crate::roll::RollSet;

/// The mappings of the enabled rolls. A mapping is about a package name, and Rocks merges the
/// enabled rolls into one distribution, so a name the asking roll does not map is looked up
/// in the other rolls' mappings (later rolls win, as for node files).
#[derive(Debug, Clone, Default)]
pub struct PackageMaps {
    rolls: Vec<(String, PackageMap)>,
}

impl PackageMaps {
    /// Each roll's own `debian-packages`, extended by `extra`'s map for that roll's name (the
    /// provider's, e.g. for rolls that ship none); `extra`'s entries win.
    pub fn new(set: &RollSet, extra: &BTreeMap<String, PackageMap>) -> PackageMaps {
        let rolls = set
            .rolls()
            .map(|roll| {
                let mut map = roll.package_map().clone();
                if let Some(more) = extra.get(roll.name()) {
                    map.extend(more.clone());
                }
                (roll.name().to_string(), map)
            })
            .collect();
        PackageMaps { rolls }
    }

    fn lookup(&self, roll: &str, name: &str) -> Option<&MapEntry> {
        let own = self.rolls.iter().find(|(r, _)| r == roll);
        own.and_then(|(_, map)| map.get(name))
            .or_else(|| self.rolls.iter().rev().find_map(|(_, map)| map.get(name)))
    }
}

impl Profile {
    /// Resolves the profile's packages through `maps`; a name no mapping mentions stays as it is.
    pub fn debian_packages(&self, maps: &PackageMaps) -> DebianPackages {
        let mut names: BTreeMap<String, (bool, Vec<Request>)> = BTreeMap::new();
        let mut dropped: Vec<Dropped> = Vec::new();
        for node in &self.nodes {
            for p in &node.packages {
                let package = p.kickstart_name();
                let entry = maps.lookup(&node.roll, &package);
                let request = Request {
                    roll: node.roll.clone(),
                    file: node.file.clone(),
                    package,
                    disabled: p.disabled,
                    mapping: entry.map(|e| e.origin.clone()),
                };
                let debian = match entry.map(|e| &e.mapping) {
                    Some(Mapping::Debian(list)) => list.clone(),
                    None => vec![request.package.clone()],
                    Some(Mapping::Nothing { reason }) => {
                        let seen = dropped.iter().any(|d| {
                            d.request.roll == request.roll && d.request.package == request.package
                        });
                        if !p.disabled && !seen {
                            let reason = reason.clone();
                            dropped.push(Dropped { request, reason });
                        }
                        continue;
                    }
                };
                for name in debian {
                    let (disabled, requests) = names.entry(name).or_default();
                    *disabled |= p.disabled;
                    if !requests.contains(&request) {
                        requests.push(request.clone());
                    }
                }
            }
        }
        let mut out = DebianPackages {
            dropped,
            ..Default::default()
        };
        for (name, (disabled, requests)) in names {
            let list = if disabled {
                &mut out.removed
            } else {
                &mut out.install
            };
            list.push(DebianPackage { name, requests });
        }
        out
    }
}

/// The package names one line of an apt `Packages` index makes installable: `Package:` and
/// each name of `Provides:` (versions and architecture qualifiers dropped).
pub(crate) fn index_line_names(line: &str) -> impl Iterator<Item = &str> {
    let value = match line.split_once(':') {
        Some(("Package" | "Provides", value)) => value,
        _ => "",
    };
    value
        .split(',')
        .filter_map(|v| v.split_whitespace().next())
        .map(|name| name.split(':').next().unwrap_or(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_index_lines() {
        let names = |l| index_line_names(l).collect::<Vec<_>>();
        assert_eq!(names("Package: openssh-server"), ["openssh-server"]);
        assert_eq!(
            names("Provides: httpd, httpd-cgi (= 2.4), python3-foo:any"),
            ["httpd", "httpd-cgi", "python3-foo"]
        );
        assert!(names("Depends: libc6 (>= 2.34)").is_empty());
        assert!(names("Package:").is_empty());
        assert!(names(" Package: continuation").is_empty());
    }
}
