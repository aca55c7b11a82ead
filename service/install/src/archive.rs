//! Roll archives as admins upload them (`POST /admin/rolls` with a tar body): only the files
//! the generator reads (and the roll's Debian package mapping) are taken, nothing is ever written to or read from the file system.

use std::io::Read;
use std::path::{Component, Path};

use vcds_rolls::RollSource;

use crate::KickstartError;

/// The roll files of a tar archive: `version.mk`, `nodes/*.xml`, `graphs/*/*.xml`, at the top
/// or under one directory (which then names the roll). Links and other entries are skipped:
/// nothing is ever written to or read from the file system.
pub(crate) fn source_from_tar(
    bytes: &[u8],
    name: Option<&str>,
) -> Result<RollSource, KickstartError> {
    let bad = |e: std::io::Error| KickstartError::Archive(e.to_string());
    let mut archive = tar::Archive::new(bytes);
    let mut files: Vec<(Vec<String>, String)> = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(bad)?.into_owned();
        let Some(parts) = normal_parts(&path) else {
            continue;
        };
        let wanted = match parts.as_slice() {
            [.., last] if last == "version.mk" || last == vcds_rolls::MAP_FILE => true,
            [.., dir, file] if dir == "nodes" && file.ends_with(".xml") => true,
            [.., graphs, _, file] if graphs == "graphs" && file.ends_with(".xml") => true,
            _ => false,
        };
        if !wanted {
            continue;
        }
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|e| KickstartError::Archive(format!("{}: {e}", path.display())))?;
        files.push((parts, text));
    }
    // A roll at the top of the archive, or all of it under one directory.
    let top_level = files.iter().any(|(p, _)| {
        matches!(
            p.first().map(String::as_str),
            Some("version.mk" | "nodes" | "graphs")
        )
    });
    let prefix = if top_level {
        None
    } else {
        let first = files.first().and_then(|(p, _)| p.first().cloned());
        if files.iter().any(|(p, _)| p.first() != first.as_ref()) {
            return Err(KickstartError::Archive(
                "expected one roll: version.mk, nodes/ and graphs/ at the top or under one directory"
                    .to_string(),
            ));
        }
        first
    };
    let name = name
        .map(str::to_string)
        .or_else(|| prefix.clone())
        .ok_or_else(|| KickstartError::BadRequest("name the roll with ?name=".to_string()))?;
    let skip = usize::from(prefix.is_some());
    Ok(RollSource {
        name,
        files: files
            .into_iter()
            .filter(|(p, _)| p.len() > skip)
            .map(|(p, text)| (p[skip..].join("/"), text))
            .collect(),
    })
}

/// The normal components of an archive path (`./` dropped); `None` for `..` or absolute paths.
fn normal_parts(path: &Path) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            // Raw name: `append_data` itself refuses `..`, which a hostile archive can hold.
            header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, text.as_bytes()).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn archives_at_the_top_or_under_one_directory() {
        let nested = tar_of(&[
            ("./r1/version.mk", "ROLLNAME = r1\n"),
            ("r1/nodes/a.xml", "<kickstart/>"),
            ("r1/debian-packages", "openmpi openmpi-bin\n"),
            ("r1/graphs/default/g.xml", "<graph/>"),
            ("r1/README", "skipped"),
            ("r1/RPMS/x.xml", "skipped"),
        ]);
        let source = source_from_tar(&nested, None).unwrap();
        assert_eq!(source.name, "r1");
        assert_eq!(
            source.files.keys().collect::<Vec<_>>(),
            [
                "debian-packages",
                "graphs/default/g.xml",
                "nodes/a.xml",
                "version.mk"
            ]
        );

        let top = tar_of(&[("nodes/a.xml", "<kickstart/>"), ("../nodes/b.xml", "x")]);
        assert!(matches!(
            source_from_tar(&top, None),
            Err(KickstartError::BadRequest(_))
        ));
        let source = source_from_tar(&top, Some("named")).unwrap();
        assert_eq!(source.name, "named");
        assert_eq!(source.files.keys().collect::<Vec<_>>(), ["nodes/a.xml"]);

        let two = tar_of(&[("a/nodes/a.xml", "x"), ("b/nodes/b.xml", "y")]);
        assert!(matches!(
            source_from_tar(&two, None),
            Err(KickstartError::Archive(_))
        ));
    }
}
