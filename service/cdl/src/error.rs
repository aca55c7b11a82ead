//! Why a CDL document was refused. Every variant names where (document, line, column, element
//! path) and why, so an Initialize fault can tell the caller exactly what to fix.

use crate::{DocId, Location};

fn arrow_chain(chain: &[String]) -> String {
    chain.join(" → ")
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CdlError {
    #[error("{doc}: {source}")]
    Xml {
        doc: DocId,
        source: vcds_xml::XmlError,
    },
    #[error("{at}: root element must be cdl:cdl, found {found}")]
    WrongRootElement { at: Location, found: String },
    #[error("{at}: namespace {found:?} is not a supported CDL namespace (expected {expected})")]
    WrongNamespace {
        at: Location,
        found: String,
        expected: &'static str,
    },
    #[error("{at}: path language {language:?} is not supported; only CDL 1.0 reference paths are")]
    UnsupportedPathLanguage { at: Location, language: String },
    #[error("{at}: {element} must come before {after} (order: documentation, import*, types, configuration, system)")]
    WrongElementOrder {
        at: Location,
        element: String,
        after: String,
    },
    #[error("{at}: element {element} is not allowed here")]
    UnexpectedElement { at: Location, element: String },
    #[error("{at}: {feature} is not supported")]
    Unsupported { at: Location, feature: String },
    #[error("{at}: missing attribute {attribute}")]
    MissingAttribute {
        at: Location,
        attribute: &'static str,
    },
    #[error("{at}: {attribute}={value:?} uses an undeclared namespace prefix")]
    UndeclaredPrefix {
        at: Location,
        attribute: &'static str,
        value: String,
    },
    #[error("{at}: cdl:lazy must be true or false, got {value:?}")]
    InvalidLazy { at: Location, value: String },
    #[error("{at}: invalid reference path {path:?}: {reason}")]
    InvalidPath {
        at: Location,
        path: String,
        reason: String,
    },
    #[error("{at}: an element with cdl:ref must be empty")]
    ReferenceWithContent { at: Location },
    #[error("{at}: duplicate name {name} (first defined at {first})")]
    DuplicateName {
        at: Location,
        name: String,
        first: Location,
    },
    #[error("{at}: unknown prototype {name}")]
    UnknownPrototype { at: Location, name: String },
    #[error("{at}: cyclic extends {}", arrow_chain(.chain))]
    CyclicExtends { at: Location, chain: Vec<String> },
    #[error("{at}: dangling reference path {path:?}: {reason}")]
    DanglingReference {
        at: Location,
        path: String,
        reason: String,
    },
    #[error("{at}: cyclic reference {}", arrow_chain(.chain))]
    CyclicReference { at: Location, chain: Vec<String> },
    #[error("{at}: reference path {path:?} points at a lazy reference, which only resolves at deployment")]
    LazyTarget { at: Location, path: String },
    #[error("{at}: import of {location:?} not allowed: {reason}")]
    ImportNotAllowed {
        at: Location,
        location: String,
        reason: String,
    },
    #[error("{at}: import of {location:?} not found: {reason}")]
    ImportNotFound {
        at: Location,
        location: String,
        reason: String,
    },
    #[error("{at}: cyclic import {}", arrow_chain(.chain))]
    CyclicImport { at: Location, chain: Vec<String> },
    #[error("{at}: {what} exceeds the limit of {limit}")]
    LimitExceeded {
        at: Location,
        what: &'static str,
        limit: usize,
    },
}

impl CdlError {
    /// Where the error was found; `None` only for documents that are not well-formed XML.
    pub fn location(&self) -> Option<&Location> {
        use CdlError::*;
        match self {
            Xml { .. } => None,
            WrongRootElement { at, .. }
            | WrongNamespace { at, .. }
            | UnsupportedPathLanguage { at, .. }
            | WrongElementOrder { at, .. }
            | UnexpectedElement { at, .. }
            | Unsupported { at, .. }
            | MissingAttribute { at, .. }
            | UndeclaredPrefix { at, .. }
            | InvalidLazy { at, .. }
            | InvalidPath { at, .. }
            | ReferenceWithContent { at }
            | DuplicateName { at, .. }
            | UnknownPrototype { at, .. }
            | CyclicExtends { at, .. }
            | DanglingReference { at, .. }
            | CyclicReference { at, .. }
            | LazyTarget { at, .. }
            | ImportNotAllowed { at, .. }
            | ImportNotFound { at, .. }
            | CyclicImport { at, .. }
            | LimitExceeded { at, .. } => Some(at),
        }
    }
}
