//! The project's own rolls and the mappings of the stock Rocks rolls' packages to Debian's,
//! built into the binary: `vcds serve` with no `--roll` has a catalog whose appliances install.

use std::collections::BTreeMap;

use include_dir::{include_dir, Dir};
use vcds_rolls::{PackageMap, RollError, RollSource};

static ROLLS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../rolls");

/// Every roll directory of `rolls/` (one holding `version.mk`), as a roll source.
pub fn builtin_rolls() -> Vec<RollSource> {
    ROLLS
        .dirs()
        .filter(|d| d.get_file(d.path().join("version.mk")).is_some())
        .map(|d| {
            let mut files = BTreeMap::new();
            add_files(d, d, &mut files);
            RollSource {
                name: d.path().to_string_lossy().into_owned(),
                files,
            }
        })
        .collect()
}

/// The text files under `dir`, by their path below `root` (rolls are two levels deep).
fn add_files(root: &Dir<'_>, dir: &Dir<'_>, files: &mut BTreeMap<String, String>) {
    for f in dir.files() {
        if let (Ok(path), Some(text)) = (f.path().strip_prefix(root.path()), f.contents_utf8()) {
            files.insert(path.to_string_lossy().into_owned(), text.to_string());
        }
    }
    for sub in dir.dirs() {
        add_files(root, sub, files);
    }
}

/// The provider mappings of `rolls/debian/ROLL.packages`, by roll name.
pub fn builtin_package_maps() -> Result<BTreeMap<String, PackageMap>, RollError> {
    let mut maps = BTreeMap::new();
    let Some(dir) = ROLLS.get_dir("debian") else {
        return Ok(maps);
    };
    for f in dir.files() {
        let (Some(name), Some(text)) = (
            f.path().file_name().and_then(|n| n.to_str()),
            f.contents_utf8(),
        ) else {
            continue;
        };
        if let Some(roll) = name.strip_suffix(".packages") {
            let shown = format!("rolls/debian/{name}");
            maps.insert(roll.to_string(), PackageMap::parse(roll, &shown, text)?);
        }
    }
    Ok(maps)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_projects_rolls_and_mappings_are_built_in() {
        let rolls = builtin_rolls();
        let names: Vec<&str> = rolls.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["vcds-base", "vcds-compute", "vcds-slurm"]);
        for r in &rolls {
            assert!(r.files.contains_key("version.mk"), "{}", r.name);
            assert!(
                r.files.keys().any(|f| f.starts_with("nodes/")),
                "{}",
                r.name
            );
            vcds_rolls::Roll::parse(r).unwrap();
        }
        let maps = builtin_package_maps().unwrap();
        assert_eq!(maps.keys().collect::<Vec<_>>(), ["base", "core", "hpc"]);
    }
}
