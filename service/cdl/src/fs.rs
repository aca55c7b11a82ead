//! Imports from the local filesystem, confined to configured root directories. Never touches
//! the network: the only scheme accepted is `file:`, and every path is canonicalized (which
//! resolves `..` and symlinks) before it is checked against the roots.

use std::path::{Component, Path, PathBuf};

use crate::import::{scheme_of, Fetched, ImportError, ImportResolver};
use crate::DocId;

/// Serves `cdl:import` locations that are relative paths, absolute paths or `file:` URLs, as
/// long as the file they name really lies inside one of the roots.
#[derive(Debug, Clone)]
pub struct FsResolver {
    roots: Vec<PathBuf>,
    max_bytes: u64,
}

impl FsResolver {
    /// `roots` must exist; they are canonicalized once here. Documents over `max_bytes` are refused.
    pub fn new(
        roots: impl IntoIterator<Item = PathBuf>,
        max_bytes: u64,
    ) -> Result<Self, ImportError> {
        let roots = roots
            .into_iter()
            .map(|r| {
                r.canonicalize()
                    .map_err(|e| ImportError::NotFound(format!("import root {}: {e}", r.display())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FsResolver { roots, max_bytes })
    }

    /// Relative locations resolve against the importing document's directory when that document
    /// came from this resolver, otherwise against the first root.
    fn base_dir(&self, from: &DocId) -> Option<PathBuf> {
        let from = Path::new(from.as_str());
        if from.is_absolute() && self.inside_roots(from) {
            return from.parent().map(Path::to_path_buf);
        }
        self.roots.first().cloned()
    }

    fn inside_roots(&self, path: &Path) -> bool {
        self.roots.iter().any(|r| path.starts_with(r))
    }
}

impl ImportResolver for FsResolver {
    fn fetch(&self, location: &str, from: &DocId) -> Result<Fetched, ImportError> {
        let path_text = match scheme_of(location) {
            None => location,
            Some(s) if s.eq_ignore_ascii_case("file") => file_url_path(location)?,
            Some(s) => {
                return Err(ImportError::NotAllowed(format!(
                    "scheme {s:?} is not allowed; only relative paths and file: inside the import roots"
                )))
            }
        };
        if path_text.is_empty() || path_text.contains('\0') {
            return Err(ImportError::NotAllowed(format!(
                "{location:?} is not a usable path"
            )));
        }
        let written = Path::new(path_text);
        let candidate = if written.is_absolute() {
            written.to_path_buf()
        } else {
            self.base_dir(from)
                .ok_or_else(|| ImportError::NotAllowed("no import roots are configured".into()))?
                .join(written)
        };
        // Refuse lexically first, so paths outside the roots cannot be probed for existence.
        if !self.inside_roots(&lexically_normal(&candidate)) {
            return Err(ImportError::NotAllowed(format!(
                "{} is outside the import roots",
                candidate.display()
            )));
        }
        let canonical = candidate
            .canonicalize()
            .map_err(|e| ImportError::NotFound(format!("{}: {e}", candidate.display())))?;
        if !self.inside_roots(&canonical) {
            return Err(ImportError::NotAllowed(format!(
                "{} is outside the import roots",
                canonical.display()
            )));
        }
        let meta =
            std::fs::metadata(&canonical).map_err(|e| ImportError::NotFound(e.to_string()))?;
        if !meta.is_file() {
            return Err(ImportError::NotAllowed(format!(
                "{} is not a regular file",
                canonical.display()
            )));
        }
        if meta.len() > self.max_bytes {
            return Err(ImportError::NotAllowed(format!(
                "{} is {} bytes, over the limit of {}",
                canonical.display(),
                meta.len(),
                self.max_bytes
            )));
        }
        let text = std::fs::read_to_string(&canonical)
            .map_err(|e| ImportError::NotFound(format!("{}: {e}", canonical.display())))?;
        Ok(Fetched {
            id: DocId::new(canonical.to_string_lossy()),
            text,
        })
    }
}

/// `path` with `.` and `..` applied textually (`..` at the root stays at the root).
fn lexically_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The path of a `file:` URL; only local ones (`file:/p`, `file:///p`, `file://localhost/p`,
/// `file:rel`).
fn file_url_path(url: &str) -> Result<&str, ImportError> {
    let rest = &url["file:".len()..];
    match rest.strip_prefix("//") {
        None => Ok(rest),
        Some(authority_and_path) => {
            let (host, path) = authority_and_path.split_at(
                authority_and_path
                    .find('/')
                    .unwrap_or(authority_and_path.len()),
            );
            if host.is_empty() || host.eq_ignore_ascii_case("localhost") {
                Ok(path)
            } else {
                Err(ImportError::NotAllowed(format!(
                    "file: URL with remote host {host:?}"
                )))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, FsResolver) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.cdl"), "A").unwrap();
        std::fs::write(root.join("sub/b.cdl"), "B").unwrap();
        std::fs::write(dir.path().join("secret.cdl"), "S").unwrap();
        let r = FsResolver::new([root], 1024).unwrap();
        (dir, r)
    }

    #[test]
    fn relative_and_file_urls_inside_the_root_work() {
        let (dir, r) = setup();
        let a = r.fetch("a.cdl", &DocId::new("request")).unwrap();
        assert_eq!(a.text, "A");
        // relative to the importing document's directory
        let b = r.fetch("sub/b.cdl", &a.id).unwrap();
        assert_eq!(r.fetch("../a.cdl", &b.id).unwrap().text, "A");
        let abs = dir.path().canonicalize().unwrap().join("root/a.cdl");
        assert_eq!(
            r.fetch(&format!("file://{}", abs.display()), &a.id)
                .unwrap()
                .text,
            "A"
        );
        assert_eq!(
            r.fetch(&format!("file:{}", abs.display()), &a.id)
                .unwrap()
                .text,
            "A"
        );
    }

    #[test]
    fn escapes_are_refused() {
        let (dir, r) = setup();
        let from = DocId::new("request");
        assert!(matches!(
            r.fetch("../secret.cdl", &from),
            Err(ImportError::NotAllowed(_))
        ));
        assert!(matches!(
            r.fetch("sub/../../secret.cdl", &from),
            Err(ImportError::NotAllowed(_))
        ));
        let outside = dir.path().join("secret.cdl");
        assert!(matches!(
            r.fetch(&outside.to_string_lossy(), &from),
            Err(ImportError::NotAllowed(_))
        ));
        assert!(matches!(
            r.fetch("/etc/passwd", &from),
            Err(ImportError::NotAllowed(_))
        ));
        assert!(matches!(
            r.fetch("file://evil.example/x.cdl", &from),
            Err(ImportError::NotAllowed(_))
        ));
        for url in [
            "http://127.0.0.1/x.cdl",
            "https://h/x",
            "ftp://h/x",
            "classpath:/x.cdl",
            "c:\\x.cdl",
        ] {
            assert!(
                matches!(r.fetch(url, &from), Err(ImportError::NotAllowed(_))),
                "{url}"
            );
        }
        assert!(matches!(
            r.fetch("nothing.cdl", &from),
            Err(ImportError::NotFound(_))
        ));
        // outside the roots, existing or not, is the same refusal: no probing
        for probe in ["/no/such/file.cdl", "../no-such.cdl"] {
            assert!(
                matches!(r.fetch(probe, &from), Err(ImportError::NotAllowed(_))),
                "{probe}"
            );
        }
        assert!(matches!(
            r.fetch("sub", &from),
            Err(ImportError::NotAllowed(_))
        ));
    }

    #[test]
    fn symlink_escape_is_refused() {
        let (dir, r) = setup();
        let link = dir.path().join("root/link.cdl");
        std::os::unix::fs::symlink(dir.path().join("secret.cdl"), &link).unwrap();
        assert!(matches!(
            r.fetch("link.cdl", &DocId::new("request")),
            Err(ImportError::NotAllowed(_))
        ));
    }

    #[test]
    fn oversized_files_are_refused() {
        let (dir, r) = setup();
        std::fs::write(dir.path().join("root/big.cdl"), vec![b'x'; 2048]).unwrap();
        assert!(matches!(
            r.fetch("big.cdl", &DocId::new("request")),
            Err(ImportError::NotAllowed(_))
        ));
    }
}
