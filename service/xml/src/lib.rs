//! Hardened parsing of untrusted XML.
//!
//! Every byte a client sends (SOAP envelopes, CDL descriptors, roll XML from an archive) passes
//! through [`parse`] before anything else looks at it. roxmltree is iterative (no stack overflow
//! on deep input) and refuses any DTD, so there is no entity expansion at all; on top of it we
//! bound size, depth, node count, attributes per element and the length of names, attribute
//! values and text, so a hostile document costs at most a bounded amount of memory and time.

use std::fmt::Write as _;

/// Bounds applied to one document. The defaults suit SOAP requests; CDL and rolls pass their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_nodes: u32,
    pub max_attributes: usize,
    pub max_name_len: usize,
    pub max_attr_value_len: usize,
    pub max_text_len: usize,
    pub max_namespaces: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 4 * 1024 * 1024,
            max_depth: 128,
            max_nodes: 200_000,
            max_attributes: 64,
            max_name_len: 256,
            max_attr_value_len: 64 * 1024,
            max_text_len: 4 * 1024 * 1024,
            max_namespaces: 64,
        }
    }
}

/// Why a document was refused. Every variant is the sender's fault.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum XmlError {
    #[error("document is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("document type declarations (DOCTYPE) are not accepted")]
    Doctype,
    #[error("document is not well-formed XML: {0}")]
    Malformed(String),
    #[error("element nesting deeper than {limit} at line {line}")]
    TooDeep { limit: usize, line: u32 },
    #[error("more than {limit} XML nodes")]
    TooManyNodes { limit: u32 },
    #[error("element <{element}> at line {line} has more than {limit} attributes")]
    TooManyAttributes {
        element: String,
        limit: usize,
        line: u32,
    },
    #[error("element <{element}> at line {line} declares more than {limit} namespaces")]
    TooManyNamespaces {
        element: String,
        limit: usize,
        line: u32,
    },
    #[error("a name at line {line} is longer than {limit} characters")]
    NameTooLong { limit: usize, line: u32 },
    #[error("attribute {name} at line {line} is longer than {limit} bytes")]
    AttributeTooLong {
        name: String,
        limit: usize,
        line: u32,
    },
    #[error("text at line {line} is longer than {limit} bytes")]
    TextTooLong { limit: usize, line: u32 },
}

/// Parses `text` under `limits`. The size check runs first; roxmltree refuses a DOCTYPE as soon
/// as it meets it in the prolog, before any entity could be declared.
pub fn parse<'a>(text: &'a str, limits: &Limits) -> Result<roxmltree::Document<'a>, XmlError> {
    if text.len() > limits.max_bytes {
        return Err(XmlError::TooLarge {
            size: text.len(),
            limit: limits.max_bytes,
        });
    }
    prescan(text, limits)?;
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
        entity_resolver: None,
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => XmlError::Doctype,
        roxmltree::Error::NodesLimitReached => XmlError::TooManyNodes {
            limit: limits.max_nodes,
        },
        other => XmlError::Malformed(other.to_string()),
    })?;
    check_shape(&doc, limits)?;
    Ok(doc)
}

/// Where `needle` next starts in `hay` at or after `from`.
fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|at| from + at)
}

type Scope<'t> = std::collections::HashMap<&'t str, usize>;

/// Takes the namespace declarations of an element out of scope.
fn release<'t>(in_scope: &mut Scope<'t>, prefixes: &[&'t str]) {
    for prefix in prefixes {
        if let Some(n) = in_scope.get_mut(prefix) {
            *n -= 1;
            if *n == 0 {
                in_scope.remove(prefix);
            }
        }
    }
}

fn line_at(text: &str, at: usize) -> u32 {
    let newlines = text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

/// Bytes read as UTF-8 that declare another encoding are lying about themselves (roxmltree
/// would read them as UTF-8 regardless), so they are refused; US-ASCII is a subset. Text that
/// a caller decoded itself (e.g. Latin-1 gmond XML) goes through [`parse`], which does not ask.
fn check_declared_encoding(text: &str) -> Result<(), XmlError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(declaration) = text
        .strip_prefix("<?xml")
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_whitespace()))
        .and_then(|rest| rest.split_once("?>"))
        .map(|(declaration, _)| declaration)
    else {
        return Ok(());
    };
    let Some((_, after)) = declaration.split_once("encoding") else {
        return Ok(());
    };
    let value = after
        .trim_start()
        .strip_prefix('=')
        .map(str::trim_start)
        .and_then(|v| {
            let quote = v.chars().next().filter(|q| *q == '"' || *q == '\'')?;
            v[1..].split(quote).next()
        })
        .unwrap_or("");
    if ["utf-8", "utf8", "us-ascii", "ascii"]
        .iter()
        .any(|ok| value.eq_ignore_ascii_case(ok))
    {
        Ok(())
    } else {
        Err(XmlError::Malformed(format!(
            "declared encoding {value:?} is not supported: send UTF-8"
        )))
    }
}

/// One linear pass over the raw text, before roxmltree sees it, enforcing the limits whose
/// violation makes roxmltree itself slow: it copies the namespaces in scope into every element
/// (a namespace declared at each of 8,000 levels took minutes) and compares each attribute with
/// every other (quadratic in attributes per element). So element depth, attributes per element
/// and namespaces in scope are checked here, without building anything.
///
/// This is not a parser: on well-formed input it sees exactly the elements and attributes
/// roxmltree will, and where the input is not well-formed it stops and leaves the verdict to
/// roxmltree, which fails at that same spot, having read only what was checked here.
fn prescan(text: &str, limits: &Limits) -> Result<(), XmlError> {
    let b = text.as_bytes();
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let mut i = 0;
    // Prefixes declared by each open element, and how many open elements declare each.
    let mut declared: Vec<Vec<&str>> = Vec::new();
    let mut in_scope = Scope::new();
    while let Some(off) = b
        .get(i..)
        .and_then(|rest| rest.iter().position(|&c| c == b'<'))
    {
        let at = i + off;
        let rest = &b[at..];
        let skip_to = |end: &[u8], from: usize| find(b, from, end).map(|e| e + end.len());
        let next = if rest.starts_with(b"<?") {
            skip_to(b"?>", at + 2)
        } else if rest.starts_with(b"<!--") {
            skip_to(b"-->", at + 4)
        } else if rest.starts_with(b"<![CDATA[") {
            skip_to(b"]]>", at + 9)
        } else if rest.starts_with(b"<!") {
            // A DOCTYPE (refused by roxmltree at once) or not well-formed.
            None
        } else if rest.starts_with(b"</") {
            release(&mut in_scope, &declared.pop().unwrap_or_default());
            skip_to(b">", at + 2)
        } else {
            // A start tag: name, then attributes up to `>` or `/>`.
            let line = || line_at(text, at);
            let mut j = at + 1;
            while j < b.len() && !is_space(b[j]) && b[j] != b'>' && b[j] != b'/' {
                j += 1;
            }
            let qname = &text[at + 1..j];
            let element = qname.rsplit(':').next().unwrap_or(qname).to_string();
            let mut attributes = 0usize;
            let mut prefixes: Vec<&str> = Vec::new();
            let mut closed = None;
            while j < b.len() {
                while j < b.len() && is_space(b[j]) {
                    j += 1;
                }
                if b.get(j) == Some(&b'>') {
                    closed = Some((false, j + 1));
                    break;
                }
                if b.get(j..j + 2) == Some(b"/>".as_slice()) {
                    closed = Some((true, j + 2));
                    break;
                }
                let name_start = j;
                while j < b.len() && !is_space(b[j]) && !matches!(b[j], b'=' | b'>' | b'/') {
                    j += 1;
                }
                let name = &text[name_start..j];
                while j < b.len() && is_space(b[j]) {
                    j += 1;
                }
                if name.is_empty() || b.get(j) != Some(&b'=') {
                    break;
                }
                j += 1;
                while j < b.len() && is_space(b[j]) {
                    j += 1;
                }
                let Some(&quote) = b.get(j).filter(|&&q| q == b'"' || q == b'\'') else {
                    break;
                };
                let Some(end) = b[j + 1..].iter().position(|&c| c == quote) else {
                    break;
                };
                j += end + 2;
                let declared_prefix = match name.strip_prefix("xmlns") {
                    Some("") => Some(""),
                    Some(rest) => rest.strip_prefix(':'),
                    None => None,
                };
                match declared_prefix {
                    // Even repeated declarations of one prefix cost roxmltree pairwise checks.
                    Some(prefix) => {
                        prefixes.push(prefix);
                        if prefixes.len() > limits.max_namespaces {
                            return Err(XmlError::TooManyNamespaces {
                                element,
                                limit: limits.max_namespaces,
                                line: line(),
                            });
                        }
                    }
                    None => {
                        attributes += 1;
                        if attributes > limits.max_attributes {
                            return Err(XmlError::TooManyAttributes {
                                element,
                                limit: limits.max_attributes,
                                line: line(),
                            });
                        }
                    }
                }
            }
            let Some((empty, after)) = closed else {
                // Not well-formed: roxmltree says where.
                return Ok(());
            };
            if declared.len() + 1 > limits.max_depth {
                return Err(XmlError::TooDeep {
                    limit: limits.max_depth,
                    line: line(),
                });
            }
            for prefix in &prefixes {
                *in_scope.entry(prefix).or_insert(0) += 1;
            }
            if in_scope.len() > limits.max_namespaces {
                return Err(XmlError::TooManyNamespaces {
                    element,
                    limit: limits.max_namespaces,
                    line: line(),
                });
            }
            if empty {
                release(&mut in_scope, &prefixes);
            } else {
                declared.push(prefixes);
            }
            Some(after)
        };
        match next {
            Some(n) => i = n,
            None => return Ok(()),
        }
    }
    Ok(())
}

/// Parses bytes that must be UTF-8 (SOAP and CDL are always UTF-8 here).
pub fn parse_bytes<'a>(
    bytes: &'a [u8],
    limits: &Limits,
) -> Result<roxmltree::Document<'a>, XmlError> {
    if bytes.len() > limits.max_bytes {
        return Err(XmlError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| XmlError::Malformed(format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    check_declared_encoding(text)?;
    parse(text, limits)
}

/// Entering or leaving a node in a document-order walk.
#[derive(Debug, Clone, Copy)]
pub enum Edge<'a, 'input> {
    Open(roxmltree::Node<'a, 'input>),
    Close(roxmltree::Node<'a, 'input>),
}

/// Walks the subtree of `node` as open/close events without recursion, so consumers can
/// process trees of any depth on a small stack.
pub fn edges<'a, 'input: 'a>(
    node: roxmltree::Node<'a, 'input>,
) -> impl Iterator<Item = Edge<'a, 'input>> {
    let mut pre = node.descendants();
    let mut open: Vec<roxmltree::Node<'a, 'input>> = Vec::new();
    let mut pending: Option<roxmltree::Node<'a, 'input>> = None;
    std::iter::from_fn(move || {
        let next = match pending {
            Some(n) => Some(n),
            None => pre.next(),
        };
        match next {
            Some(n) => {
                // Close everything that is not an ancestor of the next node first.
                if let Some(top) = open.last().copied() {
                    if n.parent() != Some(top) {
                        pending = Some(n);
                        open.pop();
                        return Some(Edge::Close(top));
                    }
                }
                pending = None;
                open.push(n);
                Some(Edge::Open(n))
            }
            None => open.pop().map(Edge::Close),
        }
    })
}

/// One pass over the tree with an explicit depth counter (no recursion).
fn check_shape(doc: &roxmltree::Document<'_>, limits: &Limits) -> Result<(), XmlError> {
    let mut depth = 0usize;
    for edge in edges(doc.root()) {
        match edge {
            Edge::Open(node) => {
                depth += 1;
                let line = || doc.text_pos_at(node.range().start).row;
                if depth > limits.max_depth + 1 {
                    return Err(XmlError::TooDeep {
                        limit: limits.max_depth,
                        line: line(),
                    });
                }
                if node.is_element() {
                    let name = node.tag_name().name();
                    if name.len() > limits.max_name_len {
                        return Err(XmlError::NameTooLong {
                            limit: limits.max_name_len,
                            line: line(),
                        });
                    }
                    let attrs = node.attributes();
                    if attrs.len() > limits.max_attributes {
                        return Err(XmlError::TooManyAttributes {
                            element: name.to_string(),
                            limit: limits.max_attributes,
                            line: line(),
                        });
                    }
                    if node.namespaces().len() > limits.max_namespaces {
                        return Err(XmlError::TooManyNamespaces {
                            element: name.to_string(),
                            limit: limits.max_namespaces,
                            line: line(),
                        });
                    }
                    for a in attrs {
                        if a.name().len() > limits.max_name_len {
                            return Err(XmlError::NameTooLong {
                                limit: limits.max_name_len,
                                line: line(),
                            });
                        }
                        if a.value().len() > limits.max_attr_value_len {
                            return Err(XmlError::AttributeTooLong {
                                name: a.name().to_string(),
                                limit: limits.max_attr_value_len,
                                line: line(),
                            });
                        }
                    }
                } else if let Some(t) = node.text() {
                    if t.len() > limits.max_text_len {
                        return Err(XmlError::TextTooLong {
                            limit: limits.max_text_len,
                            line: line(),
                        });
                    }
                }
            }
            Edge::Close(_) => depth -= 1,
        }
    }
    Ok(())
}

/// A namespace-qualified name. Compared by namespace URI and local name, never by prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QName {
    pub ns: String,
    pub local: String,
}

impl QName {
    pub fn new(ns: impl Into<String>, local: impl Into<String>) -> Self {
        QName {
            ns: ns.into(),
            local: local.into(),
        }
    }

    /// The name of an element.
    pub fn of(node: roxmltree::Node<'_, '_>) -> QName {
        QName::new(
            node.tag_name().namespace().unwrap_or(""),
            node.tag_name().name(),
        )
    }

    /// Whether `node` is an element with this name.
    pub fn matches(&self, node: roxmltree::Node<'_, '_>) -> bool {
        node.is_element()
            && node.tag_name().name() == self.local
            && node.tag_name().namespace().unwrap_or("") == self.ns
    }

    /// Resolves an `xsd:QName` written as text (`p:local` or `local`) against the namespaces in
    /// scope at `context`, as the WSRF specs require. `None` when the prefix is not declared.
    pub fn resolve_in(text: &str, context: roxmltree::Node<'_, '_>) -> Option<QName> {
        let text = text.trim();
        let (prefix, local) = match text.split_once(':') {
            Some((p, l)) => (Some(p), l),
            None => (None, text),
        };
        if local.is_empty() || local.contains(':') || prefix == Some("") {
            return None;
        }
        let ns = context.lookup_namespace_uri(prefix);
        match (prefix, ns) {
            (Some(_), None) => None,
            (_, ns) => Some(QName::new(ns.unwrap_or(""), local)),
        }
    }

    /// `{ns}local`, the Clark notation used in messages and logs.
    pub fn clark(&self) -> String {
        if self.ns.is_empty() {
            self.local.clone()
        } else {
            format!("{{{}}}{}", self.ns, self.local)
        }
    }
}

impl std::fmt::Display for QName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.clark())
    }
}

/// Escapes text content and attribute values (quotes included, so one function serves both).
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s
        .bytes()
        .any(|b| matches!(b, b'<' | b'>' | b'&' | b'"' | b'\''))
    {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Serializes an element subtree of a parsed document as a standalone fragment: every namespace
/// the subtree uses is declared on its root, so it can be pasted into any other document.
/// Iterative, so it is safe on any tree [`parse`] accepted.
pub fn serialize_element(node: roxmltree::Node<'_, '_>) -> String {
    serialize_element_with(node, "")
}

/// [`serialize_element`], with `extra_attributes` (already serialized, starting with a space)
/// added to the root element, e.g. WS-Addressing's `wsa:IsReferenceParameter="true"`.
pub fn serialize_element_with(node: roxmltree::Node<'_, '_>, extra_attributes: &str) -> String {
    let mut out = String::new();
    let mut declared: Vec<Vec<(String, String)>> = Vec::new();
    for edge in edges(node) {
        match edge {
            Edge::Open(n) if n.is_element() => {
                let in_scope: Vec<(String, String)> = n
                    .namespaces()
                    .map(|ns| (ns.name().unwrap_or("").to_string(), ns.uri().to_string()))
                    .collect();
                let parent_scope = declared.last();
                out.push('<');
                write_name(&mut out, n, n.tag_name().namespace(), n.tag_name().name());
                for (prefix, uri) in &in_scope {
                    let already = parent_scope
                        .is_some_and(|s| s.iter().any(|(p, u)| p == prefix && u == uri));
                    if !already {
                        if prefix.is_empty() {
                            let _ = write!(out, " xmlns=\"{}\"", escape(uri));
                        } else {
                            let _ = write!(out, " xmlns:{}=\"{}\"", prefix, escape(uri));
                        }
                    }
                }
                for a in n.attributes() {
                    out.push(' ');
                    write_name(&mut out, n, a.namespace(), a.name());
                    let _ = write!(out, "=\"{}\"", escape(a.value()));
                }
                if n == node {
                    out.push_str(extra_attributes);
                }
                out.push('>');
                declared.push(in_scope);
            }
            Edge::Open(n) => {
                if let Some(t) = n.text() {
                    if n.is_text() {
                        out.push_str(&escape(t));
                    }
                }
            }
            Edge::Close(n) if n.is_element() => {
                declared.pop();
                out.push_str("</");
                write_name(&mut out, n, n.tag_name().namespace(), n.tag_name().name());
                out.push('>');
            }
            Edge::Close(_) => {}
        }
    }
    out
}

fn write_name(out: &mut String, scope: roxmltree::Node<'_, '_>, ns: Option<&str>, local: &str) {
    if let Some(uri) = ns {
        if uri == "http://www.w3.org/XML/1998/namespace" {
            out.push_str("xml:");
        } else if let Some(p) = scope.lookup_prefix(uri) {
            out.push_str(p);
            out.push(':');
        }
    }
    out.push_str(local);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doctype_text_inside_cdata_is_just_text() {
        let doc = parse("<a><![CDATA[<!DOCTYPE html>]]></a>", &Limits::default()).unwrap();
        assert_eq!(doc.root_element().text(), Some("<!DOCTYPE html>"));
    }

    #[test]
    fn refuses_doctype_and_entities() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><a>&lol;</a>"#;
        assert_eq!(
            parse(bomb, &Limits::default()).unwrap_err(),
            XmlError::Doctype
        );
        let xxe = r#"<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>"#;
        assert_eq!(
            parse(xxe, &Limits::default()).unwrap_err(),
            XmlError::Doctype
        );
        // XML keywords are case-sensitive: a lower-case doctype is simply not XML.
        let lower = r#"<!doctype a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>"#;
        assert!(matches!(
            parse(lower, &Limits::default()),
            Err(XmlError::Malformed(_))
        ));
    }

    #[test]
    fn bounds_depth_without_recursion() {
        let deep = "<a>".repeat(100_000) + &"</a>".repeat(100_000);
        let err = parse(
            &deep,
            &Limits {
                max_nodes: 1_000_000,
                ..Limits::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, XmlError::TooDeep { limit: 128, .. }),
            "{err:?}"
        );
        let ok = "<a>".repeat(128) + &"</a>".repeat(128);
        assert!(parse(&ok, &Limits::default()).is_ok());
    }

    /// Shapes that make roxmltree slow are refused by the linear pre-scan, fast: each of these
    /// took roxmltree minutes (namespaces per level) or seconds (attributes) before.
    #[test]
    fn slow_shapes_are_refused_in_linear_time() {
        let n = 100_000;
        let cases = [
            (
                (0..n)
                    .map(|i| format!("<a xmlns:p{i}=\"urn:{i}\">"))
                    .collect::<String>()
                    + &"</a>".repeat(n),
                "namespaces",
            ),
            (
                format!(
                    "<r {}/>",
                    (0..n).map(|i| format!("a{i}=\"x\" ")).collect::<String>()
                ),
                "attributes",
            ),
            (
                format!(
                    "<r {}/>",
                    (0..n)
                        .map(|i| format!("xmlns:p{i}=\"u\" "))
                        .collect::<String>()
                ),
                "namespaces",
            ),
            ("<a>".repeat(n), "deep"),
        ];
        for (doc, kind) in cases {
            let limits = Limits {
                max_nodes: 10_000_000,
                ..Limits::default()
            };
            let t0 = std::time::Instant::now();
            let err = parse(&doc, &limits).unwrap_err();
            let ok = match kind {
                "namespaces" => matches!(err, XmlError::TooManyNamespaces { limit: 64, .. }),
                "attributes" => matches!(err, XmlError::TooManyAttributes { limit: 64, .. }),
                _ => matches!(err, XmlError::TooDeep { limit: 128, .. }),
            };
            assert!(ok, "{kind}: {err:?}");
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(2),
                "{kind}: {:?}",
                t0.elapsed()
            );
        }
    }

    /// On well-formed input the pre-scan agrees with roxmltree: markup inside comments, CDATA,
    /// processing instructions and attribute values is not mistaken for elements; declarations
    /// leave scope with their element; redeclaring a prefix does not add one.
    #[test]
    fn prescan_sees_what_the_parser_sees() {
        let limits = Limits {
            max_namespaces: 2,
            max_depth: 3,
            max_attributes: 2,
            ..Limits::default()
        };
        let fine = [
            "<a><!-- <b><c><d><e> --><![CDATA[<b><c><d><e>]]><?pi <b><c><d>?><b x='c>d>e>' y=\"/>\"/></a>",
            "<a xmlns:p='1'><b xmlns:q='2'/><c xmlns:r='3'/></a>",
            "<a xmlns:p='1'><b xmlns:p='2'><c xmlns:p='3' xmlns='4'/></b></a>",
            "<a\n  x = \"1\"\r\n\ty='2'\n/>",
        ];
        for doc in fine {
            assert!(
                parse(doc, &limits).is_ok(),
                "{doc}: {:?}",
                parse(doc, &limits)
            );
        }
        let refused = [
            (
                "<a xmlns:p='1'><b xmlns:q='2'><c xmlns:r='3'/></b></a>",
                "namespaces",
            ),
            ("<a><b><c><d/></c></b></a>", "deep"),
            ("<a x='1' y='2' z='3'/>", "attributes"),
            ("<a xmlns:p='1' xmlns:p='2' xmlns:p='3'/>", "namespaces"),
        ];
        for (doc, kind) in refused {
            let err = prescan(doc, &limits).unwrap_err();
            let ok = match kind {
                "namespaces" => matches!(err, XmlError::TooManyNamespaces { .. }),
                "attributes" => matches!(err, XmlError::TooManyAttributes { .. }),
                _ => matches!(err, XmlError::TooDeep { .. }),
            };
            assert!(ok, "{doc}: {err:?}");
        }
        for (doc, fine) in [
            ("<?xml version='1.0' encoding='UTF-8'?><a/>", true),
            (
                "\u{feff}<?xml version=\"1.0\" encoding = \"us-ascii\" ?><a/>",
                true,
            ),
            ("<?xml version='1.0'?><a encoding='UTF-16'/>", true),
            ("<?xml version='1.0' encoding='UTF-16'?><a/>", false),
            ("<?xml version='1.0' encoding='ISO-8859-1'?><a/>", false),
        ] {
            assert_eq!(
                parse_bytes(doc.as_bytes(), &Limits::default()).is_ok(),
                fine,
                "{doc}"
            );
            assert!(parse(doc, &Limits::default()).is_ok(), "{doc}");
        }
        // Not well-formed: the pre-scan stops and roxmltree gives the precise error.
        for doc in ["<a x=1/>", "<a x='1/>", "<a", "<a><!DOCTYPE x></a>"] {
            assert!(prescan(doc, &limits).is_ok(), "{doc}");
            assert!(
                matches!(parse(doc, &limits), Err(XmlError::Malformed(_))),
                "{doc}"
            );
        }
    }

    #[test]
    fn bounds_size_attributes_and_text() {
        let l = Limits {
            max_bytes: 100,
            ..Limits::default()
        };
        assert!(matches!(
            parse(&"x".repeat(101), &l),
            Err(XmlError::TooLarge { .. })
        ));
        let attrs: String = (0..65).map(|i| format!(" a{i}=\"1\"")).collect();
        let doc = format!("<e{attrs}/>");
        assert!(matches!(
            parse(&doc, &Limits::default()),
            Err(XmlError::TooManyAttributes { .. })
        ));
        let l = Limits {
            max_attr_value_len: 10,
            max_text_len: 10,
            ..Limits::default()
        };
        assert!(matches!(
            parse("<e a=\"12345678901\"/>", &l),
            Err(XmlError::AttributeTooLong { .. })
        ));
        assert!(matches!(
            parse("<e>12345678901</e>", &l),
            Err(XmlError::TextTooLong { .. })
        ));
        assert!(matches!(parse("<e>", &l), Err(XmlError::Malformed(_))));
        assert!(matches!(
            parse_bytes(b"<e>\xff</e>", &l),
            Err(XmlError::Malformed(_))
        ));
    }

    #[test]
    fn qnames_resolve_by_namespace_not_prefix() {
        let doc = parse(
            r#"<r xmlns:a="urn:x" xmlns:b="urn:x"><q>a:Name</q><q>b:Name</q><q>c:Name</q></r>"#,
            &Limits::default(),
        )
        .unwrap();
        let qs: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("q")).collect();
        let a = QName::resolve_in(qs[0].text().unwrap(), qs[0]).unwrap();
        let b = QName::resolve_in(qs[1].text().unwrap(), qs[1]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, QName::new("urn:x", "Name"));
        assert_eq!(QName::resolve_in("c:Name", qs[2]), None);
    }

    #[test]
    fn serialized_fragment_carries_its_namespaces() {
        let doc = parse(
            r#"<r xmlns:p="urn:p" xmlns="urn:d"><p:a x="1&amp;2"><b>t&lt;</b></p:a></r>"#,
            &Limits::default(),
        )
        .unwrap();
        let a = doc
            .descendants()
            .find(|n| n.has_tag_name(("urn:p", "a")))
            .unwrap();
        let s = serialize_element(a);
        let re = parse(&s, &Limits::default()).unwrap();
        let root = re.root_element();
        assert_eq!(root.tag_name().namespace(), Some("urn:p"));
        assert_eq!(root.attribute("x"), Some("1&2"));
        let b = root.first_element_child().unwrap();
        assert_eq!(b.tag_name().namespace(), Some("urn:d"));
        assert_eq!(b.text(), Some("t<"));
    }
}
