//! The Rocks roll engine: loads rolls (node files and graphs), merges the enabled ones, walks
//! the graph from an appliance's root node and generates the kickstart file (and the expanded
//! XML profile) of a host, as Rocks' `rocks list host xml | kgen` does; and resolves the
//! host's packages into the Debian packages it installs ([`Profile::debian_packages`]).
//!
//! The core is pure: rolls come in as data ([`RollSource`]: file name → text), `<eval>`s go out
//! through an [`Evaluator`] the caller supplies, the apt sources' package names come in as a
//! predicate. [`fs`] reads a roll directory, a provider's mappings and apt's lists;
//! [`kickstart`] is the offline entry point behind `vcds kickstart`.
//!
//! Parse once, generate many: [`Roll::parse`] does all XML parsing and condition compiling;
//! [`RollSet::profile`] only walks, decides and substitutes.

mod attrs;
mod cond;
mod debian;
mod debian_list;
mod debian_map;
mod error;
mod expand;
pub mod fs;
mod graph;
mod node;
mod origin;
mod render;
mod roll;
mod template;

use std::path::Path;
use std::sync::Arc;

pub use attrs::{parse_attr, site_defaults, AttributeLayers, Attributes, Phase, Target};
pub use debian::PackageMaps;
pub use debian_list::{DebianPackage, DebianPackages, Dropped, Request, UnavailablePackages};
pub use debian_map::{MapEntry, Mapping, PackageMap, MAP_FILE};
pub use error::{CondError, Problem, RollError};
pub use expand::{
    Boot, Deferred, Directive, EvalRequest, Evaluator, File, Package, PendingEval, Piece, Profile,
    ProfileNode, Script, Section,
};
pub use origin::Origin;
pub use roll::{Appliance, Roll, RollSet, RollSource};

/// What [`kickstart`] returns.
#[derive(Debug, Clone, Copy)]
pub enum Output<'a> {
    Kickstart,
    /// The expanded XML profile.
    Xml,
    /// The kickstart with `%packages` in Debian's names, or only those names.
    Debian(DebianOutput<'a>),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DebianOutput<'a> {
    /// A provider's mappings for rolls by name (`DIR/ROLL.packages`), over the rolls' own.
    pub package_maps: Option<&'a Path>,
    /// apt's lists (e.g. `/var/lib/apt/lists`): refuse packages that none of them holds.
    pub apt_lists: Option<&'a Path>,
    /// Only the names of the packages to install, one a line.
    pub names_only: bool,
}

/// `vcds kickstart --roll DIR… --appliance NAME [--os] [--release] [--arch] [--attr K=V…]`:
/// loads the roll directories (in order; later ones win), generates the profile of one host of
/// `appliance` with the site defaults as global attributes and `attrs` as host attributes, for
/// `release` or else the Rocks release the rolls declare or else 7 (what the stock rolls are),
/// leaves `<eval>`s unevaluated, and returns it as `output` asks.
pub fn kickstart(
    rolls: &[impl AsRef<Path>],
    appliance: &str,
    os: Option<&str>,
    release: Option<u32>,
    arch: Option<&str>,
    attrs: &[(String, String)],
    output: Output<'_>,
) -> Result<String, RollError> {
    let loaded = rolls
        .iter()
        .map(|dir| fs::load_roll(dir.as_ref()).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let set = RollSet::new(loaded)?;
    let defaults = Target::default();
    let target = Target {
        os: os.map_or(defaults.os, str::to_string),
        release: release.or(set.release()).unwrap_or(defaults.release),
        arch: arch.map_or(defaults.arch, str::to_string),
        phase: Phase::Install,
    };
    let layers = AttributeLayers {
        global: site_defaults(),
        host: attrs.iter().cloned().collect(),
        ..Default::default()
    };
    let profile = set.profile(appliance, &target, &layers, &Deferred)?;
    let debian = match output {
        Output::Kickstart => return Ok(profile.kickstart()),
        Output::Xml => return Ok(profile.to_xml()),
        Output::Debian(debian) => debian,
    };
    let extra = match debian.package_maps {
        Some(dir) => fs::load_package_maps(dir)?,
        None => Default::default(),
    };
    let packages = profile.debian_packages(&PackageMaps::new(&set, &extra));
    if let Some(lists) = debian.apt_lists {
        let available = fs::apt_package_names(lists)?;
        packages.check(&|name| available.contains(name))?;
    }
    Ok(if debian.names_only {
        packages.names().map(|n| format!("{n}\n")).collect()
    } else {
        profile.debian_kickstart(&packages)
    })
}
