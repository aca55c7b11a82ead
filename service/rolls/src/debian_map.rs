//! A roll's Debian package mapping (its `debian-packages` file, or a provider's
//! `ROLL.packages`): from the package names its node files use (Rocks', so RPM names) to
//! Debian's, or to nothing with a reason. The format is in `rolls/README.md`.

use std::collections::BTreeMap;

use crate::error::{Problem, RollError};
use crate::origin::Origin;

/// The file a roll ships its mapping in, beside `version.mk`.
pub const MAP_FILE: &str = "debian-packages";

/// What one package name becomes on Debian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// These Debian packages (one or more).
    Debian(Vec<String>),
    /// Nothing, for this reason (e.g. a package of Rocks' own machinery).
    Nothing { reason: String },
}

/// One line of a mapping file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    pub mapping: Mapping,
    pub origin: Origin,
}

/// One roll's mapping, by the package name its node files use (`@group` for `type="meta"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageMap {
    entries: BTreeMap<String, MapEntry>,
}

impl PackageMap {
    /// Parses a mapping file: `NAME DEBIAN…` or `NAME - REASON…` per line, `#` comment lines,
    /// blank lines. Any other line refuses the whole file, naming `file` and the line.
    pub fn parse(roll: &str, file: &str, text: &str) -> Result<PackageMap, RollError> {
        let mut entries: BTreeMap<String, MapEntry> = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
            let at = |problem: Problem| RollError::at(roll, file, line_no, problem);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let name = words.next().unwrap_or_default().to_string();
            // Node files write a disabled package `-name`; the name itself never starts so.
            if name.starts_with('-') {
                return Err(at(Problem::BadMapName(name)));
            }
            let rest: Vec<&str> = words.collect();
            let mapping = match rest.as_slice() {
                [] => return Err(at(Problem::MapTargetMissing(name))),
                ["-"] => return Err(at(Problem::MapReasonMissing(name))),
                ["-", reason @ ..] => Mapping::Nothing {
                    reason: reason.join(" "),
                },
                names => {
                    if let Some(bad) = names.iter().find(|d| !debian_name(d)) {
                        return Err(at(Problem::BadDebianName(bad.to_string())));
                    }
                    Mapping::Debian(names.iter().map(|d| d.to_string()).collect())
                }
            };
            if let Some(first) = entries.get(&name) {
                let first = first.origin.line;
                return Err(at(Problem::MappedTwice { name, first }));
            }
            let origin = Origin {
                roll: roll.to_string(),
                file: file.to_string(),
                line: line_no,
            };
            entries.insert(name, MapEntry { mapping, origin });
        }
        Ok(PackageMap { entries })
    }

    pub fn get(&self, name: &str) -> Option<&MapEntry> {
        self.entries.get(name)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &MapEntry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Adds `other`'s entries; where both map a name, `other`'s wins.
    pub fn extend(&mut self, other: PackageMap) {
        self.entries.extend(other.entries);
    }
}

/// Debian policy: lowercase letters, digits, `+`, `-` and `.`; two characters or more, the
/// first alphanumeric.
fn debian_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn problem(text: &str) -> (u32, String) {
        match PackageMap::parse("r", "debian-packages", text).unwrap_err() {
            RollError::At { line, problem, .. } => (line, problem.to_string()),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn mapping_lines() {
        let map = PackageMap::parse(
            "hpc",
            "debian-packages",
            "# RPM name  Debian names\n\n  openmpi\topenmpi-bin libopenmpi-dev\n\
             rocks-openmpi-modules  -  Rocks' modulefile for its own\tbuild\n@x11 xorg\n",
        )
        .unwrap();
        let entry = map.get("openmpi").unwrap();
        assert_eq!(
            entry.mapping,
            Mapping::Debian(vec!["openmpi-bin".into(), "libopenmpi-dev".into()])
        );
        assert_eq!((entry.origin.roll.as_str(), entry.origin.line), ("hpc", 3));
        assert_eq!(
            map.get("rocks-openmpi-modules").unwrap().mapping,
            Mapping::Nothing {
                reason: "Rocks' modulefile for its own build".into()
            }
        );
        assert!(map.get("@x11").is_some());
        assert_eq!(map.entries().count(), 3);
        assert_eq!(
            PackageMap::parse("r", "f", "").unwrap(),
            PackageMap::default()
        );
    }

    #[test]
    fn bad_mapping_lines_name_their_line() {
        assert_eq!(
            problem("aa bb\nlonely\n"),
            (
                2,
                "package lonely maps to nothing: give its Debian names, or \"-\" and why there is none"
                    .into()
            )
        );
        assert_eq!(problem("x -").0, 1);
        assert!(problem("x -").1.contains("needs a reason"));
        for bad in ["Foo", "a", "-x", "x_y", "gcc#c", "é2"] {
            let (line, text) = problem(&format!("# c\nname {bad}\n"));
            assert_eq!(line, 2, "{bad}");
            assert!(text.contains("not a Debian package name"), "{bad}: {text}");
        }
        assert!(problem("-nano nano").1.contains("leading '-'"));
        let (line, text) = problem("aa bb\n\naa cc\n");
        assert_eq!(
            (line, text.as_str()),
            (3, "aa is mapped already, at line 1")
        );
        let err = PackageMap::parse("base", "rolls/debian/base.packages", "x").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("roll base: rolls/debian/base.packages:1: package x maps"),
            "{err}"
        );
    }
}
