//! From untrusted text to the owned model: hardened parse, document-level validation
//! (namespace, root, element order) and conversion of the configuration and system trees.
//! Recursion here is bounded by the depth limit [`vcds_xml::parse`] enforced.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use roxmltree::Node;
use vcds_xml::QName;

use crate::model::{Element, Location, Name, RefPath, Reference, Step};
use crate::{CdlError, DocId, CDL_NS, DRAFT_2004_NS};

/// Which generation of CDL a document is written in. The 2004 draft names prototypes with an
/// unqualified `name` attribute and extends them by that plain name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Final,
    Draft2004,
}

impl Dialect {
    fn of(ns: &str) -> Option<Dialect> {
        match ns {
            CDL_NS => Some(Dialect::Final),
            DRAFT_2004_NS => Some(Dialect::Draft2004),
            _ => None,
        }
    }
}

/// A prototype from a `cdl:configuration`, under the name `cdl:extends` and `cdl:refroot` use.
#[derive(Debug, Clone)]
pub(crate) struct Prototype {
    pub key: Name,
    pub element: Element,
}

#[derive(Debug, Clone)]
pub(crate) struct ImportDecl {
    pub location: String,
    pub at: Arc<Location>,
}

/// One parsed CDL document, imports not yet followed.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub id: DocId,
    pub imports: Vec<ImportDecl>,
    pub configuration: Vec<Prototype>,
    /// The `cdl:system` element itself; its children are the system's components.
    pub system: Option<Element>,
    /// Namespaces in scope on `cdl:system` (or the root): prefix ("" for the default) → URI.
    pub namespaces: Vec<(String, String)>,
}

/// Bounds for CDL text: descriptors are small and shallow, so tighter than SOAP's defaults.
pub(crate) fn limits() -> vcds_xml::Limits {
    vcds_xml::Limits {
        max_depth: 64,
        max_nodes: 400_000,
        ..vcds_xml::Limits::default()
    }
}

pub(crate) fn parse_document(text: &str, id: &DocId) -> Result<Document, CdlError> {
    let xml = vcds_xml::parse(text, &limits()).map_err(|source| CdlError::Xml {
        doc: id.clone(),
        source,
    })?;
    let cx = Cx {
        id,
        xml: &xml,
        dialect: Dialect::Final,
        cursor: Cell::new(TextCursor::START),
        names: RefCell::new(HashMap::new()),
        empty: Arc::from(""),
    };
    let root = xml.root_element();
    let root_ns = root.tag_name().namespace().unwrap_or("");
    let dialect = match (Dialect::of(root_ns), root.tag_name().name() == "cdl") {
        (Some(d), true) => d,
        (None, true) => {
            return Err(CdlError::WrongNamespace {
                at: cx.location(root, ""),
                found: root_ns.to_string(),
                expected: CDL_NS,
            })
        }
        (_, false) => {
            return Err(CdlError::WrongRootElement {
                at: cx.location(root, ""),
                found: written_name(root),
            })
        }
    };
    let cx = Cx { dialect, ..cx };
    let root_path = format!("/{}", written_name(root));
    if let Some(a) = root.attributes().find(|a| a.name() == "pathlanguage") {
        return Err(CdlError::UnsupportedPathLanguage {
            at: cx.location(root, ""),
            language: a.value().to_string(),
        });
    }

    let mut doc = Document {
        id: id.clone(),
        imports: Vec::new(),
        configuration: Vec::new(),
        system: None,
        namespaces: in_scope(root),
    };
    let mut defined: HashMap<Name, usize> = HashMap::new();
    // documentation, import*, types, configuration, system: each rank may only follow lower ones.
    let mut last: Option<(usize, Node)> = None;
    for child in root.children().filter(Node::is_element) {
        let rank = cx.top_rank(child, &root_path)?;
        if let Some((last_rank, last_node)) = last {
            if rank < last_rank {
                return Err(CdlError::WrongElementOrder {
                    at: cx.location(child, &root_path),
                    element: written_name(child),
                    after: written_name(last_node),
                });
            }
            if rank == last_rank && rank != IMPORT_RANK {
                return Err(CdlError::UnexpectedElement {
                    at: cx.location(child, &root_path),
                    element: format!("a second {}", written_name(child)),
                });
            }
        }
        last = Some((rank, child));
        match child.tag_name().name() {
            "import" => {
                let at = Arc::new(cx.location(child, &root_path));
                let location =
                    child
                        .attribute("location")
                        .ok_or_else(|| CdlError::MissingAttribute {
                            at: (*at).clone(),
                            attribute: "location",
                        })?;
                doc.imports.push(ImportDecl {
                    location: location.trim().to_string(),
                    at,
                });
            }
            "configuration" => {
                let path = format!("{root_path}/{}", written_name(child));
                for proto in child
                    .children()
                    .filter(|n| n.is_element() && !cx.is_documentation(*n))
                {
                    let element = cx.element(proto, &path)?;
                    let key = match (dialect, proto.attribute("name")) {
                        (Dialect::Draft2004, Some(name)) => Arc::new(QName::new("", name.trim())),
                        (Dialect::Draft2004, None) => {
                            Arc::new(QName::new("", proto.tag_name().name()))
                        }
                        (Dialect::Final, _) => element.name.clone(),
                    };
                    if let Some(&first) = defined.get(&key) {
                        return Err(CdlError::DuplicateName {
                            at: (*element.origin).clone(),
                            name: key.to_string(),
                            first: (*doc.configuration[first].element.origin).clone(),
                        });
                    }
                    defined.insert(key.clone(), doc.configuration.len());
                    doc.configuration.push(Prototype { key, element });
                }
            }
            "system" => {
                doc.namespaces = in_scope(child);
                doc.system = Some(cx.element(child, &root_path)?);
            }
            _ => {} // documentation and types carry nothing the resolver uses
        }
    }
    Ok(doc)
}

const IMPORT_RANK: usize = 1;

fn in_scope(node: Node) -> Vec<(String, String)> {
    node.namespaces()
        .map(|ns| (ns.name().unwrap_or("").to_string(), ns.uri().to_string()))
        .collect()
}

/// The element's name as written (`prefix:local`), for element paths in messages.
fn written_name(node: Node) -> String {
    let mut out = String::new();
    push_written_name(&mut out, node);
    out
}

fn push_written_name(out: &mut String, node: Node) {
    let prefix = node
        .tag_name()
        .namespace()
        .and_then(|ns| node.lookup_prefix(ns));
    if let Some(p) = prefix.filter(|p| !p.is_empty()) {
        out.push_str(p);
        out.push(':');
    }
    out.push_str(node.tag_name().name());
}

/// A line/column position that moves forward through the text. roxmltree's `text_pos_at`
/// rescans from the start on every call, which is quadratic over a whole document; elements are
/// converted in document order, so advancing from the previous position is linear.
#[derive(Debug, Clone, Copy)]
struct TextCursor {
    offset: usize,
    line: u32,
    column: u32,
}

impl TextCursor {
    const START: TextCursor = TextCursor {
        offset: 0,
        line: 1,
        column: 1,
    };

    fn advance(self, text: &str, to: usize) -> TextCursor {
        let from = if to < self.offset {
            TextCursor::START
        } else {
            self
        };
        let mut c = from;
        for ch in text.get(from.offset..to).unwrap_or("").chars() {
            if ch == '\n' {
                c.line += 1;
                c.column = 1;
            } else {
                c.column += 1;
            }
        }
        c.offset = to;
        c
    }
}

/// Per-document conversion context.
struct Cx<'a, 'input> {
    id: &'a DocId,
    xml: &'a roxmltree::Document<'input>,
    dialect: Dialect,
    cursor: Cell<TextCursor>,
    /// One shared [`Name`] per distinct element name in the document.
    names: RefCell<HashMap<(&'a str, &'input str), Name>>,
    /// The empty text every element without a value shares.
    empty: Arc<str>,
}

impl<'a, 'input> Cx<'a, 'input> {
    fn ns(&self) -> &'static str {
        match self.dialect {
            Dialect::Final => CDL_NS,
            Dialect::Draft2004 => DRAFT_2004_NS,
        }
    }

    fn location(&self, node: Node, parent_path: &str) -> Location {
        let pos = self
            .cursor
            .get()
            .advance(self.xml.input_text(), node.range().start);
        self.cursor.set(pos);
        Location {
            doc: self.id.clone(),
            line: pos.line,
            column: pos.column,
            path: {
                let mut path = String::with_capacity(parent_path.len() + 24);
                path.push_str(parent_path);
                path.push('/');
                push_written_name(&mut path, node);
                path
            },
        }
    }

    fn is_cdl(&self, node: Node) -> bool {
        node.tag_name().namespace() == Some(self.ns())
    }

    fn is_documentation(&self, node: Node) -> bool {
        self.is_cdl(node) && node.tag_name().name() == "documentation"
    }

    fn top_rank(&self, node: Node, parent_path: &str) -> Result<usize, CdlError> {
        let rank = match node.tag_name().name() {
            _ if !self.is_cdl(node) => None,
            "documentation" => Some(0),
            "import" => Some(IMPORT_RANK),
            "types" => Some(2),
            "configuration" => Some(3),
            "system" => Some(4),
            _ => None,
        };
        rank.ok_or_else(|| CdlError::UnexpectedElement {
            at: self.location(node, parent_path),
            element: written_name(node),
        })
    }

    /// A CDL processing attribute: `cdl:x`, or plain `x` for the draft's `extends`.
    fn cdl_attr<'n>(&self, node: Node<'n, '_>, local: &str) -> Option<&'n str> {
        node.attribute((self.ns(), local))
            .or_else(|| match (self.dialect, local) {
                (Dialect::Draft2004, "extends") => node.attribute("extends"),
                _ => None,
            })
    }

    fn is_processing_attr(&self, attr: &roxmltree::Attribute) -> bool {
        let processing = ["extends", "ref", "refroot", "lazy"].contains(&attr.name());
        processing
            && (attr.namespace() == Some(self.ns())
                || (self.dialect == Dialect::Draft2004
                    && attr.namespace().is_none()
                    && attr.name() == "extends"))
    }

    fn qname_attr(
        &self,
        node: Node,
        at: &Location,
        attribute: &'static str,
        value: &str,
    ) -> Result<QName, CdlError> {
        match self.dialect {
            Dialect::Draft2004 => Ok(QName::new("", value.trim())),
            Dialect::Final => {
                QName::resolve_in(value, node).ok_or_else(|| CdlError::UndeclaredPrefix {
                    at: at.clone(),
                    attribute,
                    value: value.to_string(),
                })
            }
        }
    }

    fn element(&self, node: Node<'a, 'input>, parent_path: &str) -> Result<Element, CdlError> {
        let at = self.location(node, parent_path);
        let extends = self
            .cdl_attr(node, "extends")
            .map(|v| self.qname_attr(node, &at, "cdl:extends", v).map(Arc::new))
            .transpose()?;
        let reference = self.reference(node, &at)?;
        let mut text = String::new();
        let mut children = Vec::new();
        for child in node.children() {
            if child.is_text() {
                text.push_str(child.text().unwrap_or(""));
            } else if child.is_element() && !self.is_documentation(child) {
                if self.is_cdl(child) {
                    return Err(CdlError::Unsupported {
                        at: self.location(child, &at.path),
                        feature: format!("element {}", written_name(child)),
                    });
                }
                children.push(self.element(child, &at.path)?);
            }
        }
        // indentation between children is not a value
        let text = if text.trim().is_empty() {
            self.empty.clone()
        } else {
            Arc::from(text)
        };
        if reference.is_some() && (!children.is_empty() || !text.is_empty()) {
            return Err(CdlError::ReferenceWithContent { at });
        }
        let attributes = node
            .attributes()
            .filter(|a| !self.is_processing_attr(a))
            .map(|a| {
                (
                    QName::new(a.namespace().unwrap_or(""), a.name()),
                    a.value().to_string(),
                )
            })
            .collect();
        Ok(Element {
            name: self.name(node),
            attributes,
            text,
            children,
            reference,
            derived_from: Vec::new(),
            origin: Arc::new(at),
            extends,
        })
    }

    fn name(&self, node: Node<'a, 'input>) -> Name {
        let key = (
            node.tag_name().namespace().unwrap_or(""),
            node.tag_name().name(),
        );
        self.names
            .borrow_mut()
            .entry(key)
            .or_insert_with(|| Arc::new(QName::new(key.0, key.1)))
            .clone()
    }

    fn reference(&self, node: Node, at: &Location) -> Result<Option<Arc<Reference>>, CdlError> {
        let root = self
            .cdl_attr(node, "refroot")
            .map(|v| self.qname_attr(node, at, "cdl:refroot", v).map(Arc::new))
            .transpose()?;
        let lazy = match self.cdl_attr(node, "lazy").map(str::trim) {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(CdlError::InvalidLazy {
                    at: at.clone(),
                    value: other.to_string(),
                })
            }
        };
        let Some(text) = self.cdl_attr(node, "ref") else {
            return match root {
                Some(_) => Err(CdlError::MissingAttribute {
                    at: at.clone(),
                    attribute: "cdl:ref",
                }),
                None => Ok(None),
            };
        };
        let path = parse_path(text, |prefix| {
            node.lookup_namespace_uri(prefix).map(str::to_string)
        })
        .map_err(|reason| CdlError::InvalidPath {
            at: at.clone(),
            path: text.to_string(),
            reason,
        })?;
        Ok(Some(Arc::new(Reference { path, root, lazy })))
    }
}

/// Longest reference path accepted; each step costs a walk from the root when resolving.
const MAX_PATH_STEPS: usize = 64;

/// Parses `. | .. | name | prefix:name` steps separated by `/`; `lookup` maps a prefix (`None`
/// for the default namespace) to its URI.
pub(crate) fn parse_path(
    text: &str,
    lookup: impl Fn(Option<&str>) -> Option<String>,
) -> Result<RefPath, String> {
    let trimmed = text.trim();
    if let Some(c) = trimmed
        .chars()
        .find(|c| matches!(c, '[' | ']' | '@' | '(' | ')' | '*' | '|' | '=' | '$'))
    {
        return Err(format!(
            "{c:?} is XPath syntax, not part of CDL 1.0 reference paths"
        ));
    }
    let (absolute, body) = match trimmed.strip_prefix('/') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    if !absolute && body.is_empty() {
        return Err("the path is empty".into());
    }
    let mut steps = Vec::new();
    if !body.is_empty() {
        if body.split('/').count() > MAX_PATH_STEPS {
            return Err(format!("more than {MAX_PATH_STEPS} steps"));
        }
        for step in body.split('/') {
            steps.push(match step {
                "" => return Err("empty step (\"//\" or a trailing \"/\")".into()),
                "." => Step::Current,
                ".." => Step::Parent,
                name => {
                    let (prefix, local) = match name.split_once(':') {
                        Some((p, l)) => (Some(p), l),
                        None => (None, name),
                    };
                    if local.is_empty()
                        || local.contains(':')
                        || prefix == Some("")
                        || name.contains(char::is_whitespace)
                    {
                        return Err(format!("{name:?} is not a name"));
                    }
                    let ns = match (prefix, lookup(prefix)) {
                        (Some(p), None) => return Err(format!("undeclared prefix {p:?}")),
                        (_, ns) => ns.unwrap_or_default(),
                    };
                    Step::Child(QName::new(ns, local))
                }
            });
        }
    }
    Ok(RefPath {
        absolute,
        steps,
        text: trimmed.to_string(),
    })
}
