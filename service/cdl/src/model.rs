//! The resolved CDL tree: owned elements that outlive the parsed text, so documents from several
//! imports can be merged and copied freely.

use std::fmt;
use std::sync::Arc;

use vcds_xml::QName;

use crate::DocId;

/// Where an element was written: document, line, column and its element path as written
/// (e.g. `/cdl:cdl/cdl:system/webserver/port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub doc: DocId,
    pub line: u32,
    pub column: u32,
    pub path: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{} at {}",
            self.doc, self.line, self.column, self.path
        )
    }
}

/// One step of a CDL reference path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `.`
    Current,
    /// `..`
    Parent,
    /// `name` or `prefix:name`, resolved against the namespaces in scope where it was written.
    Child(QName),
}

/// A parsed reference path: `. | .. | name | prefix:name` separated by `/`, absolute with a
/// leading `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefPath {
    pub absolute: bool,
    pub steps: Vec<Step>,
    /// The path as written, for messages and for writing lazy references back out.
    pub text: String,
}

/// A `cdl:ref` with its optional `cdl:refroot` and `cdl:lazy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub path: RefPath,
    pub root: Option<Name>,
    pub lazy: bool,
}

/// An element or prototype name, shared: resolution copies elements a lot.
pub type Name = Arc<QName>;

/// An element of a CDL configuration or system. After resolution `extends` is gone (merged in)
/// and only lazy references remain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: Name,
    /// Attributes other than the cdl processing attributes (extends, ref, refroot, lazy).
    pub attributes: Vec<(QName, String)>,
    /// Direct text content, concatenated; empty when it is only whitespace. Shared, since
    /// resolution copies values a lot.
    pub text: Arc<str>,
    pub children: Vec<Element>,
    pub reference: Option<Arc<Reference>>,
    /// Prototypes this element was derived from, nearest first (what it "is a").
    pub derived_from: Vec<Name>,
    pub origin: Arc<Location>,
    pub(crate) extends: Option<Name>,
}

impl Element {
    /// The trimmed text value of a leaf.
    pub fn value(&self) -> &str {
        self.text.trim()
    }

    /// The first child with this name.
    pub fn child(&self, name: &QName) -> Option<&Element> {
        self.children.iter().find(|c| *c.name == *name)
    }

    pub fn attribute(&self, name: &QName) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this element was derived (directly or not) from the prototype `name`.
    pub fn is_a(&self, name: &QName) -> bool {
        self.derived_from.iter().any(|p| **p == *name)
    }

    /// Number of elements in this subtree, for the expansion budget.
    pub(crate) fn size(&self) -> usize {
        1 + self.children.iter().map(Element::size).sum::<usize>()
    }
}
