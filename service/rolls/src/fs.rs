//! Loads a roll directory (`version.mk`, `nodes/*.xml`, `graphs/<graph>/*.xml`,
//! `debian-packages`) into a [`RollSource`], a provider's Debian mappings, and the package
//! names of apt's lists. The only I/O in the crate.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::debian::index_line_names;
use crate::debian_map::{PackageMap, MAP_FILE};
use crate::error::{Problem, RollError};
use crate::roll::{Roll, RollSource};

/// Reads a roll directory and parses it; any unreadable or broken file refuses the roll.
pub fn load_roll(dir: &Path) -> Result<Roll, RollError> {
    Roll::parse(&load_source(dir)?)
}

/// Reads the files of a roll directory that the generator uses. The roll is named after the
/// directory unless its `version.mk` says `ROLLNAME`.
pub fn load_source(dir: &Path) -> Result<RollSource, RollError> {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut source = RollSource {
        name,
        files: Default::default(),
    };
    if !dir.is_dir() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory");
        return Err(io_error(dir, missing));
    }
    let mut wanted = vec![
        ("version.mk".to_string(), dir.join("version.mk")),
        (MAP_FILE.to_string(), dir.join(MAP_FILE)),
    ];
    wanted.extend(xml_files(&dir.join("nodes"), "nodes")?);
    let graphs = dir.join("graphs");
    if graphs.is_dir() {
        for entry in sorted_entries(&graphs)? {
            if entry.is_dir() {
                let graph = entry
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                wanted.extend(xml_files(&entry, &format!("graphs/{graph}"))?);
            }
        }
    }
    for (rel, path) in wanted {
        if let Some(text) = read_text(&path, &source.name, &rel)? {
            source.files.insert(rel, text);
        }
    }
    Ok(source)
}

/// Reads the Debian mappings a provider keeps for rolls by name, `DIR/ROLL.packages` (e.g.
/// `rolls/debian` for the stock Rocks rolls, which ship none). Errors name the file's path.
pub fn load_package_maps(dir: &Path) -> Result<BTreeMap<String, PackageMap>, RollError> {
    let mut maps = BTreeMap::new();
    for path in sorted_entries(dir)? {
        let (Some(roll), Some("packages")) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|e| e.to_str()),
        ) else {
            continue;
        };
        let file = path.display().to_string();
        if let Some(text) = read_text(&path, roll, &file)? {
            maps.insert(roll.to_string(), PackageMap::parse(roll, &file, &text)?);
        }
    }
    Ok(maps)
}

/// A regular file's text, `None` when it does not exist or is not a regular file; `roll` and
/// `rel` name it in errors.
fn read_text(path: &Path, roll: &str, rel: &str) -> Result<Option<String>, RollError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(None);
    };
    // A roll archive is untrusted input: a link could make us read any file on the host.
    if meta.file_type().is_symlink() {
        let refused = std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "symbolic links in a roll are not followed",
        );
        return Err(io_error(path, refused));
    }
    if !meta.is_file() {
        return Ok(None);
    }
    let limit = crate::node::limits().max_bytes;
    let size = meta.len();
    if size > limit as u64 {
        let too_large = vcds_xml::XmlError::TooLarge {
            size: usize::try_from(size).unwrap_or(usize::MAX),
            limit,
        };
        return Err(RollError::at(roll, rel, 1, Problem::Xml(too_large)));
    }
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| RollError::at(roll, rel, 1, Problem::NotUtf8))
}

fn io_error(path: &Path, source: std::io::Error) -> RollError {
    RollError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<std::path::PathBuf>, RollError> {
    let err = |source| io_error(dir, source);
    let mut entries = std::fs::read_dir(dir)
        .map_err(err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    entries.sort();
    Ok(entries)
}

fn xml_files(dir: &Path, prefix: &str) -> Result<Vec<(String, std::path::PathBuf)>, RollError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    Ok(sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            Some((format!("{prefix}/{name}"), p))
        })
        .collect())
}

/// The package names apt's lists in `dir` (e.g. `/var/lib/apt/lists`) make installable: every
/// `Package:` and `Provides:` name of the `*_Packages` indexes. Compressed ones (apt keeps them
/// as `.lz4`, `.gz`, `.xz`…) are read through apt's own `apt-helper cat-file`. A directory
/// without any index is an error of kind `NotFound`: an empty set would refuse every package.
pub fn apt_package_names(dir: &Path) -> Result<BTreeSet<String>, RollError> {
    let indexes: Vec<_> = sorted_entries(dir)?
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.ends_with("_Packages") || name.contains("_Packages.")
        })
        .collect();
    if indexes.is_empty() {
        let none = std::io::Error::new(std::io::ErrorKind::NotFound, "no *_Packages index");
        return Err(io_error(dir, none));
    }
    let mut names = BTreeSet::new();
    for path in indexes {
        let err = |e| io_error(&path, e);
        if path.extension().is_none() {
            let file = std::fs::File::open(&path).map_err(err)?;
            index_names(file, &mut names).map_err(err)?;
            continue;
        }
        let mut helper = Command::new("/usr/lib/apt/apt-helper")
            .arg("cat-file")
            .arg(&path)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(err)?;
        let read = match helper.stdout.take() {
            Some(out) => index_names(out, &mut names),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        // Waited for even when reading failed, so no child is left behind.
        let status = helper.wait().map_err(err)?;
        read.map_err(err)?;
        if !status.success() {
            let failed = std::io::Error::other(format!("apt-helper cat-file: {status}"));
            return Err(err(failed));
        }
    }
    Ok(names)
}

fn index_names(index: impl std::io::Read, names: &mut BTreeSet<String>) -> std::io::Result<()> {
    for line in std::io::BufReader::new(index).lines() {
        names.extend(index_line_names(&line?).map(str::to_string));
    }
    Ok(())
}
