//! How `cdl:import` locations become document text. The processor never does I/O itself: the
//! caller passes an [`ImportResolver`]. [`MemoryResolver`] serves files added with AddFile;
//! [`crate::fs::FsResolver`] serves files under configured roots.

use std::collections::BTreeMap;

use crate::DocId;

/// A fetched document and its canonical identity (used for relative imports and cycle checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub id: DocId,
    pub text: String,
}

/// Why a resolver could not supply a document.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ImportError {
    /// The location is refused by policy (scheme, outside the roots, too large…).
    #[error("{0}")]
    NotAllowed(String),
    /// The location is allowed but there is nothing there.
    #[error("{0}")]
    NotFound(String),
}

/// Supplies the text of imported documents.
pub trait ImportResolver {
    /// Fetches `location` as written in a `cdl:import` of the document `from`; relative
    /// locations are relative to `from`.
    fn fetch(&self, location: &str, from: &DocId) -> Result<Fetched, ImportError>;
}

/// Whether `location` starts with a URI scheme (`scheme:`). A single letter counts, so Windows
/// drive paths such as `c:\x` are treated as an unknown scheme rather than a relative path.
pub(crate) fn scheme_of(location: &str) -> Option<&str> {
    let (scheme, _) = location.split_once(':')?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok).then_some(scheme)
}

/// In-memory documents keyed by name (files uploaded with AddFile, or test fixtures).
/// Locations with a scheme, or starting with `/`, are looked up as written; other locations are
/// relative to the importing document's name, `a/b.cdl` importing `c.cdl` gets `a/c.cdl`.
#[derive(Debug, Clone, Default)]
pub struct MemoryResolver {
    files: BTreeMap<String, String>,
}

impl MemoryResolver {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) {
        self.files.insert(name.into(), text.into());
    }
}

impl ImportResolver for MemoryResolver {
    fn fetch(&self, location: &str, from: &DocId) -> Result<Fetched, ImportError> {
        let name = if scheme_of(location).is_some() || location.starts_with('/') {
            location.to_string()
        } else {
            let base = from.as_str().rsplit_once('/').map_or("", |(dir, _)| dir);
            join_relative(base, location)?
        };
        let text = self
            .files
            .get(&name)
            .ok_or_else(|| ImportError::NotFound(format!("no document named {name:?}")))?;
        Ok(Fetched {
            id: DocId::new(&name),
            text: text.clone(),
        })
    }
}

/// Joins a relative location onto a base directory lexically, refusing to climb above it.
fn join_relative(base: &str, location: &str) -> Result<String, ImportError> {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    let keep_leading_slash = base.starts_with('/');
    for part in location.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(ImportError::NotAllowed(format!(
                        "{location:?} climbs above its base"
                    )));
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    Ok(if keep_leading_slash {
        format!("/{joined}")
    } else {
        joined
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn schemes_are_recognised_and_drive_letters_count_as_one() {
        assert_eq!(scheme_of("file:/x"), Some("file"));
        assert_eq!(scheme_of("http://h/x"), Some("http"));
        assert_eq!(scheme_of("c:\\music.wav"), Some("c"));
        assert_eq!(scheme_of("dir/x.cdl"), None);
        assert_eq!(scheme_of("1x:y"), None);
    }

    #[test]
    fn memory_locations_are_relative_to_the_importer() {
        let mut m = MemoryResolver::new();
        m.add("a/c.cdl", "<c/>");
        m.add("top.cdl", "<t/>");
        let got = m.fetch("c.cdl", &DocId::new("a/b.cdl")).unwrap();
        assert_eq!(got.id, DocId::new("a/c.cdl"));
        assert_eq!(
            m.fetch("../top.cdl", &DocId::new("a/b.cdl")).unwrap().text,
            "<t/>"
        );
        assert!(matches!(
            m.fetch("../../x", &DocId::new("a/b.cdl")),
            Err(ImportError::NotAllowed(_))
        ));
        assert!(matches!(
            m.fetch("missing.cdl", &DocId::new("a/b.cdl")),
            Err(ImportError::NotFound(_))
        ));
    }
}
