//! The Rocks roll engine: loads rolls (node files and graphs), merges the enabled ones, walks
//! the graph from an appliance's root node and generates the kickstart file (and the expanded
//! XML profile) of a host, as Rocks' `rocks list host xml | kgen` does.
//!
//! The core is pure: rolls come in as data ([`RollSource`]: file name → text), `<eval>`s go out
//! through an [`Evaluator`] the caller supplies. [`fs`] reads a roll directory; [`kickstart`] is
//! the offline entry point behind `vcds kickstart`.
//!
//! Parse once, generate many: [`Roll::parse`] does all XML parsing and condition compiling;
//! [`RollSet::profile`] only walks, decides and substitutes.

mod attrs;
mod cond;
mod debian;
mod error;
mod expand;
pub mod fs;
mod graph;
mod node;
mod render;
mod roll;
mod template;

use std::path::Path;
use std::sync::Arc;

pub use attrs::{parse_attr, site_defaults, AttributeLayers, Attributes, Phase, Target};
pub use cond::CondError;
pub use debian::{
    DebianPackage, DebianPackages, Dropped, MapEntry, Mapping, PackageMap, PackageMaps, Request,
    UnavailablePackages, MAP_FILE,
};
pub use error::{Origin, Problem, RollError};
pub use expand::{
    Boot, Deferred, Directive, EvalRequest, Evaluator, File, Package, PendingEval, Piece, Profile,
    ProfileNode, Script, Section,
};
pub use roll::{Appliance, Roll, RollSet, RollSource};

/// `vcds kickstart --roll DIR… --appliance NAME [--os] [--release] [--arch] [--attr K=V…] [--xml]`:
/// loads the roll directories (in order; later ones win), generates the profile of one host of
/// `appliance` with the site defaults as global attributes and `attrs` as host attributes, for
/// `release` or else the Rocks release the rolls declare or else 7 (what the stock rolls are),
/// leaves `<eval>`s unevaluated, and returns the kickstart text, or the XML profile if `xml`.
pub fn kickstart(
    rolls: &[impl AsRef<Path>],
    appliance: &str,
    os: Option<&str>,
    release: Option<u32>,
    arch: Option<&str>,
    attrs: &[(String, String)],
    xml: bool,
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
    Ok(if xml {
        profile.to_xml()
    } else {
        profile.kickstart()
    })
}
