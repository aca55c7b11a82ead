//! vcds-cdl: the CDDLM CDL processor (GFD.85): parses `cdl:cdl` documents, follows
//! `cdl:import`, expands `cdl:extends` prototypes, fills in `cdl:ref` references and keeps
//! `cdl:lazy` ones for deployment. Pure: imports come through an [`ImportResolver`].
//!
//! ```
//! use vcds_cdl::{resolve, resolve_path, DocId, MemoryResolver};
//!
//! let text = r#"<cdl:cdl xmlns:cdl="http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0">
//!   <cdl:system><webserver><port>8080</port></webserver></cdl:system></cdl:cdl>"#;
//! let doc = resolve(text, &DocId::new("request"), &MemoryResolver::new())?;
//! assert_eq!(resolve_path(&doc, "/webserver/port")?.value(), "8080");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cluster;
mod error;
mod expand;
pub mod fs;
mod import;
mod load;
mod model;
mod names;
mod refs;
mod xml;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use vcds_xml::QName;

pub use error::CdlError;
pub use import::{Fetched, ImportError, ImportResolver, MemoryResolver};
pub use model::{Element, Location, Name, RefPath, Reference, Step};

use expand::Expander;
use load::Document;
use names::Names;
use refs::{Miss, Space, Tree};

/// The CDL 1.0 namespace (GFD.85, 2005/02 generation).
pub const CDL_NS: &str = "http://www.gridforum.org/namespaces/2005/02/cddlm/CDL-1.0";
/// The 2004 draft namespace still used by older documents (e.g. the reference test files).
pub const DRAFT_2004_NS: &str = "http://gridforge.org/cddlm/xml/2004/07/30/";

/// Deepest chain of imports inside imports.
const MAX_IMPORT_DEPTH: usize = 16;
/// Most documents one resolution may load.
const MAX_DOCUMENTS: usize = 128;

/// The identity of a document: its canonical location as the resolver reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(Arc<str>);

impl DocId {
    pub fn new(id: impl AsRef<str>) -> Self {
        // shared: every element's Location carries one
        DocId(Arc::from(id.as_ref()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A lazy reference left for deployment time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LazyRef {
    /// Where it sits in the resolved system, e.g. `/app/user`.
    pub at: String,
    pub reference: Reference,
    index: Vec<usize>,
}

/// Why a path could not be resolved in a resolved document (CDDLM Resolve, lazy references).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PathError {
    #[error("invalid reference path {path:?}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("reference path {path:?} does not resolve: {reason}")]
    Dangling { path: String, reason: String },
    #[error("reference path {path:?} runs through more than {limit} lazy references")]
    TooManyHops { path: String, limit: usize },
}

/// The outcome of resolution: the `cdl:system` with every extends merged and every eager
/// reference filled in.
#[derive(Debug, Clone)]
pub struct ResolvedDocument {
    pub id: DocId,
    /// Lazy references in `system`, in document order.
    pub lazy: Vec<LazyRef>,
    space: Space,
    names: Names,
}

/// Loads `text` (named `id`), its imports through `resolver`, and resolves it. The location
/// [`cluster::COMPONENTS_LOCATION`] is always importable: it is built in.
pub fn resolve(
    text: &str,
    id: &DocId,
    resolver: &dyn ImportResolver,
) -> Result<ResolvedDocument, CdlError> {
    let mut root = load::parse_document(text, id)?;
    let mut loader = Loader {
        resolver,
        docs: Vec::new(),
        stack: Vec::new(),
    };
    loader.follow(&root)?;
    let imported = loader.docs;

    let mut names = Names::default();
    names.add(&root.namespaces);
    for d in &imported {
        names.add(&d.namespaces);
    }
    let raw_system = root.system.take().unwrap_or_else(|| empty_system(&root.id));
    let mut prototypes: BTreeMap<Name, Element> = BTreeMap::new();
    for proto in imported
        .into_iter()
        .chain([root])
        .flat_map(|d| d.configuration)
    {
        if let Some(first) = prototypes.get(&proto.key) {
            return Err(CdlError::DuplicateName {
                at: (*proto.element.origin).clone(),
                name: names.written(&proto.key),
                first: (*first.origin).clone(),
            });
        }
        prototypes.insert(proto.key, proto.element);
    }

    let mut expander = Expander::new(&prototypes, &names);
    expander.check_all()?;
    let system = expander.expand(&raw_system)?;
    let mut space = Space {
        system,
        roots: BTreeMap::new(),
    };
    refs::add_refroots(&mut space, &mut expander)?;
    refs::resolve_references(&mut space, &mut expander, &names)?;

    let mut lazy = Vec::new();
    collect_lazy(
        &space.system,
        &mut Vec::new(),
        &mut Vec::new(),
        &names,
        &mut lazy,
    );
    Ok(ResolvedDocument {
        id: id.clone(),
        lazy,
        space,
        names,
    })
}

fn empty_system(doc: &DocId) -> Element {
    Element {
        name: Arc::new(QName::new(CDL_NS, "system")),
        attributes: Vec::new(),
        text: Arc::from(""),
        children: Vec::new(),
        reference: None,
        derived_from: Vec::new(),
        origin: Arc::new(Location {
            doc: doc.clone(),
            line: 1,
            column: 1,
            path: "/cdl:cdl/cdl:system".into(),
        }),
        extends: None,
    }
}

fn collect_lazy<'e>(
    element: &'e Element,
    index: &mut Vec<usize>,
    path: &mut Vec<&'e QName>,
    names: &Names,
    out: &mut Vec<LazyRef>,
) {
    for (i, child) in element.children.iter().enumerate() {
        index.push(i);
        path.push(&child.name);
        if let Some(r) = child.reference.as_ref().filter(|r| r.lazy) {
            let at = path
                .iter()
                .map(|q| format!("/{}", names.written(q)))
                .collect();
            out.push(LazyRef {
                at,
                reference: Reference::clone(r),
                index: index.clone(),
            });
        }
        collect_lazy(child, index, path, names, out);
        path.pop();
        index.pop();
    }
}

/// Follows `cdl:import` depth-first, loading each document once (diamonds are fine, cycles not).
struct Loader<'r> {
    resolver: &'r dyn ImportResolver,
    docs: Vec<Document>,
    stack: Vec<DocId>,
}

impl Loader<'_> {
    fn follow(&mut self, doc: &Document) -> Result<(), CdlError> {
        self.stack.push(doc.id.clone());
        for import in &doc.imports {
            let at = || (*import.at).clone();
            let fetched = match cluster::builtin(&import.location) {
                Some(text) => Fetched {
                    id: DocId::new(import.location.clone()),
                    text: text.to_string(),
                },
                None => self
                    .resolver
                    .fetch(&import.location, &doc.id)
                    .map_err(|e| match e {
                        ImportError::NotAllowed(reason) => CdlError::ImportNotAllowed {
                            at: at(),
                            location: import.location.clone(),
                            reason,
                        },
                        ImportError::NotFound(reason) => CdlError::ImportNotFound {
                            at: at(),
                            location: import.location.clone(),
                            reason,
                        },
                    })?,
            };
            if let Some(start) = self.stack.iter().position(|d| *d == fetched.id) {
                let chain = self.stack[start..]
                    .iter()
                    .chain([&fetched.id])
                    .map(DocId::to_string)
                    .collect();
                return Err(CdlError::CyclicImport { at: at(), chain });
            }
            if self.docs.iter().any(|d| d.id == fetched.id) {
                continue;
            }
            if self.stack.len() >= MAX_IMPORT_DEPTH {
                return Err(CdlError::LimitExceeded {
                    at: at(),
                    what: "depth of nested imports",
                    limit: MAX_IMPORT_DEPTH,
                });
            }
            if self.docs.len() >= MAX_DOCUMENTS {
                return Err(CdlError::LimitExceeded {
                    at: at(),
                    what: "number of imported documents",
                    limit: MAX_DOCUMENTS,
                });
            }
            let child = load::parse_document(&fetched.text, &fetched.id)?;
            self.follow(&child)?;
            self.docs.push(child);
        }
        self.stack.pop();
        Ok(())
    }
}

/// Most lazy references one path may run through before we call it a loop.
const MAX_LAZY_HOPS: usize = 32;

impl ResolvedDocument {
    /// The resolved `cdl:system` element; its children are the system's components.
    pub fn system(&self) -> &Element {
        &self.space.system
    }

    /// Writes the resolved `cdl:system` as a standalone XML fragment (lazy references keep
    /// their `cdl:ref`/`cdl:refroot`/`cdl:lazy` attributes).
    pub fn to_xml(&self) -> String {
        xml::write(&self.space.system, &self.names)
    }

    /// Writes one resolved element (e.g. a cluster) as a standalone XML fragment.
    pub fn element_xml(&self, element: &Element) -> String {
        xml::write(element, &self.names)
    }

    /// Resolves a lazy reference now (deployment time).
    pub fn resolve_lazy(&self, lazy: &LazyRef) -> Result<&Element, PathError> {
        self.follow(Tree::System, lazy.index.clone(), &lazy.reference.path.text)
    }

    fn follow(&self, tree: Tree, at: Vec<usize>, path: &str) -> Result<&Element, PathError> {
        let (tree, at) = self.settle(tree, at, path)?;
        self.space
            .node(&tree, &at)
            .ok_or_else(|| self.dangling(path, Miss::Dangling("location vanished".into())))
    }

    /// Where the element at `(tree, at)` leads once the (lazy) references on it are followed.
    fn settle(
        &self,
        mut tree: Tree,
        mut at: Vec<usize>,
        path: &str,
    ) -> Result<(Tree, Vec<usize>), PathError> {
        for _ in 0..MAX_LAZY_HOPS {
            let node = self
                .space
                .node(&tree, &at)
                .ok_or_else(|| self.dangling(path, Miss::Dangling("location vanished".into())))?;
            match &node.reference {
                None => return Ok((tree, at)),
                Some(r) => {
                    (tree, at) = self
                        .space
                        .locate(&tree, &at, r, None)
                        .map_err(|m| self.dangling(path, m))?
                }
            }
        }
        Err(PathError::TooManyHops {
            path: path.to_string(),
            limit: MAX_LAZY_HOPS,
        })
    }

    fn dangling(&self, path: &str, miss: Miss) -> PathError {
        let reason = match miss {
            Miss::Dangling(r) => r,
            Miss::UnknownRoot(q) => format!("no prototype {}", self.names.written(&q)),
        };
        PathError::Dangling {
            path: path.to_string(),
            reason,
        }
    }
}

/// Resolves a CDL reference path against the resolved system (relative and absolute paths both
/// start at `cdl:system`; prefixes are those declared in the document). Lazy references on the
/// way are followed. Used by the CDDLM Resolve operation and at Run.
pub fn resolve_path<'d>(doc: &'d ResolvedDocument, path: &str) -> Result<&'d Element, PathError> {
    let parsed = load::parse_path(path, |prefix| doc.names.uri(prefix)).map_err(|reason| {
        PathError::Invalid {
            path: path.to_string(),
            reason,
        }
    })?;
    let (mut tree, mut at) = (Tree::System, Vec::new());
    for step in &parsed.steps {
        match step {
            Step::Current => {}
            Step::Parent => {
                if at.pop().is_none() {
                    return Err(PathError::Dangling {
                        path: path.into(),
                        reason: "\"..\" goes above the root".into(),
                    });
                }
            }
            Step::Child(name) => {
                // A lazy reference on the way is followed before descending.
                (tree, at) = doc.settle(tree, at, path)?;
                let node = doc.follow(tree.clone(), at.clone(), path)?;
                let i = node
                    .children
                    .iter()
                    .position(|c| *c.name == *name)
                    .ok_or_else(|| PathError::Dangling {
                        path: path.into(),
                        reason: format!(
                            "no element {} inside {}",
                            doc.names.written(name),
                            node.origin.path
                        ),
                    })?;
                at.push(i);
            }
        }
    }
    doc.follow(tree, at, path)
}
