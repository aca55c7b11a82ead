//! Loads a roll directory (`version.mk`, `nodes/*.xml`, `graphs/<graph>/*.xml`) into a
//! [`RollSource`]. The only I/O in the crate.

use std::path::Path;

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
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| RollError::Io { path, source }
    };
    if !dir.is_dir() {
        return Err(io(dir)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not a directory",
        )));
    }
    let mut wanted = vec![("version.mk".to_string(), dir.join("version.mk"))];
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
    let limit = crate::node::limits().max_bytes;
    for (rel, path) in wanted {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        // A roll archive is untrusted input: a link could make us read any file on the host.
        if meta.file_type().is_symlink() {
            let refused = std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "symbolic links in a roll are not followed",
            );
            return Err(io(&path)(refused));
        }
        if !meta.is_file() {
            continue;
        }
        let size = meta.len();
        if size > limit as u64 {
            let too_large = vcds_xml::XmlError::TooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                limit,
            };
            return Err(RollError::at(
                &source.name,
                &rel,
                1,
                Problem::Xml(too_large),
            ));
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| RollError::at(&source.name, &rel, 1, Problem::NotUtf8))?;
        source.files.insert(rel, text);
    }
    Ok(source)
}

fn sorted_entries(dir: &Path) -> Result<Vec<std::path::PathBuf>, RollError> {
    let err = |source| RollError::Io {
        path: dir.display().to_string(),
        source,
    };
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
