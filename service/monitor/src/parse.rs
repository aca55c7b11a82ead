//! Parsing gmond's `GANGLIA_XML` safely.
//!
//! gmond always prefixes its output with a DOCTYPE carrying an internal DTD subset, and the
//! hardened `vcds_xml::parse` (roxmltree) refuses every DOCTYPE. So a bounded scanner first
//! blanks the DOCTYPE out (keeping newlines, so line numbers stay true), refusing anything that
//! could make a DTD dangerous: external identifiers (XXE), entity declarations and parameter
//! entity references. Nothing is ever expanded; the rest goes through `vcds_xml::parse` with
//! limits, then into the model with counts bounded per document and per host.

use std::borrow::Cow;
use std::str::FromStr;

use roxmltree::Node;

use crate::model::{Cluster, GangliaXml, Host, Metric, Slope};

/// Bounds for one gmond document. A 1,000-host cluster with gmond 3.x's default metrics is
/// about 10 MiB, so the defaults leave room for several times that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    pub max_bytes: usize,
    /// The whole DOCTYPE declaration; gmond's is about 3 KiB.
    pub max_doctype_bytes: usize,
    pub max_depth: usize,
    pub max_clusters: usize,
    /// Hosts in the whole document.
    pub max_hosts: usize,
    pub max_metrics_per_host: usize,
    pub max_extra_per_metric: usize,
    pub max_value_len: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bytes: 64 * 1024 * 1024,
            max_doctype_bytes: 16 * 1024,
            // GANGLIA_XML > GRID… > CLUSTER > HOST > METRIC > EXTRA_DATA > EXTRA_ELEMENT
            max_depth: 16,
            max_clusters: 256,
            max_hosts: 20_000,
            max_metrics_per_host: 1024,
            max_extra_per_metric: 32,
            max_value_len: 4096,
        }
    }
}

/// Why a gmond document was refused. Positions are 1-based lines of the received text.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    #[error("gmond XML is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("gmond XML is empty")]
    Empty,
    #[error("gmond XML is not valid UTF-8 at byte {offset}")]
    NotUtf8 { offset: usize },
    #[error("line {line}: DOCTYPE refused: {reason}")]
    Doctype { line: u32, reason: &'static str },
    #[error("line {line}: DOCTYPE is longer than {limit} bytes")]
    DoctypeTooLarge { line: u32, limit: usize },
    #[error(transparent)]
    Xml(#[from] vcds_xml::XmlError),
    #[error("line {line}: root element is <{found}>, expected <GANGLIA_XML>")]
    WrongRoot { line: u32, found: String },
    #[error("line {line}: <{element}> lacks required attribute {attribute}")]
    MissingAttribute {
        line: u32,
        element: &'static str,
        attribute: &'static str,
    },
    #[error("line {line}: <{element}> attribute {attribute}=\"{value}\" is not {expected}")]
    BadAttribute {
        line: u32,
        element: &'static str,
        attribute: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("line {line}: more than {limit} {what}")]
    TooMany {
        line: u32,
        what: &'static str,
        limit: usize,
    },
}

/// Parses gmond output as received from the wire. gmond declares ISO-8859-1, so bytes are read
/// as Latin-1 when the XML declaration says so and as UTF-8 otherwise.
pub fn parse_bytes(bytes: &[u8], limits: &ParseLimits) -> Result<GangliaXml, ParseError> {
    check_size(bytes.len(), limits)?;
    // ASCII reads the same in both encodings and is what gmond nearly always sends.
    if !bytes.is_ascii() && declares_latin1(bytes) {
        let text: String = bytes.iter().map(|&b| char::from(b)).collect();
        parse_str(&text, limits)
    } else {
        let text = std::str::from_utf8(bytes).map_err(|e| ParseError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        parse_str(text, limits)
    }
}

/// Parses an already decoded gmond document.
pub fn parse_str(text: &str, limits: &ParseLimits) -> Result<GangliaXml, ParseError> {
    check_size(text.len(), limits)?;
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let text = blank_doctype(text, limits.max_doctype_bytes)?;
    let xml_limits = vcds_xml::Limits {
        max_bytes: limits.max_bytes,
        max_depth: limits.max_depth,
        // Every element may bring a whitespace text node; the typed counts below are the real
        // bounds, this one only stops pathological text/comment floods early.
        max_nodes: u32::try_from(limits.max_bytes / 4).unwrap_or(u32::MAX),
        max_attributes: 32,
        max_name_len: 64,
        max_attr_value_len: limits.max_value_len,
        max_text_len: limits.max_value_len,
        max_namespaces: 4,
    };
    let doc = vcds_xml::parse(&text, &xml_limits)?;
    Reader {
        doc: &doc,
        limits,
        hosts: 0,
    }
    .document()
}

fn check_size(size: usize, limits: &ParseLimits) -> Result<(), ParseError> {
    if size > limits.max_bytes {
        return Err(ParseError::TooLarge {
            size,
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

/// True when the XML declaration (which must come first) names ISO-8859-1/Latin-1.
fn declares_latin1(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(256)];
    let Some(end) = find(head, 0, b"?>") else {
        return false;
    };
    if !head.starts_with(b"<?xml") {
        return false;
    }
    let decl = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    ["iso-8859-1", "iso8859-1", "latin1", "latin-1"]
        .iter()
        .any(|e| {
            decl.contains(&format!("encoding=\"{e}\"")) || decl.contains(&format!("encoding='{e}'"))
        })
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn line_at(text: &str, pos: usize) -> u32 {
    let newlines = text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

/// Returns `text` with its DOCTYPE declaration (if any) replaced by spaces, newlines kept.
/// Scans only the prolog and the declaration itself, each step bounded by `limit`.
fn blank_doctype(text: &str, limit: usize) -> Result<Cow<'_, str>, ParseError> {
    let b = text.as_bytes();
    let err = |pos: usize, reason: &'static str| ParseError::Doctype {
        line: line_at(text, pos),
        reason,
    };
    // Skip the XML declaration, whitespace, comments and PIs to reach a DOCTYPE, if any.
    let mut p = 0;
    let start = loop {
        while p < b.len() && b[p].is_ascii_whitespace() {
            p += 1;
        }
        let rest = &b[p..];
        let close: &[u8] = if rest.starts_with(b"<?") {
            b"?>"
        } else if rest.starts_with(b"<!--") {
            b"-->"
        } else if rest.starts_with(b"<!DOCTYPE") {
            break p;
        } else {
            return Ok(Cow::Borrowed(text));
        };
        // Malformed prolog: leave the precise complaint to the XML parser.
        let Some(end) = find(b, p + 2, close) else {
            return Ok(Cow::Borrowed(text));
        };
        p = end + close.len();
    };
    let bound = b.len().min(start.saturating_add(limit));
    // Running out of bytes is "too large" when the limit cut the scan short, else truncation.
    let cut =
        |at: usize, what: &'static str| too_large_or_truncated(text, start, at, bound, limit, what);
    let mut i = start + "<!DOCTYPE".len();
    let mut in_subset = false;
    let end = loop {
        if i >= bound {
            return Err(cut(start, "truncated declaration"));
        }
        let rest = &b[i..bound];
        match b[i] {
            b'"' | b'\'' => {
                let Some(q) = rest[1..].iter().position(|&c| c == b[i]) else {
                    return Err(cut(i, "unterminated literal"));
                };
                i += q + 2;
                continue;
            }
            b'[' if !in_subset => in_subset = true,
            b']' if in_subset => in_subset = false,
            b'>' if !in_subset => break i + 1,
            b'%' if in_subset => {
                return Err(err(i, "parameter entity references are not accepted"))
            }
            b'<' if in_subset && rest.starts_with(b"<!--") => {
                match find(&b[..bound], i + 4, b"-->") {
                    Some(e) => i = e + 3,
                    None => return Err(cut(i, "unterminated comment")),
                }
                continue;
            }
            b'<' if in_subset && rest.starts_with(b"<!ENTITY") => {
                return Err(err(i, "entity declarations are not accepted"))
            }
            b'S' | b'P'
                if !in_subset && (rest.starts_with(b"SYSTEM") || rest.starts_with(b"PUBLIC")) =>
            {
                return Err(err(i, "external DTDs (SYSTEM/PUBLIC) are not accepted"))
            }
            _ => {}
        }
        i += 1;
    };
    // Byte-wise: spaces for every byte of a multi-byte character still leave valid UTF-8.
    let mut out = text.as_bytes().to_vec();
    for byte in &mut out[start..end] {
        if *byte != b'\n' {
            *byte = b' ';
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|e| ParseError::NotUtf8 {
            offset: e.utf8_error().valid_up_to(),
        })
}

fn too_large_or_truncated(
    text: &str,
    start: usize,
    at: usize,
    bound: usize,
    limit: usize,
    reason: &'static str,
) -> ParseError {
    if bound < text.len() {
        ParseError::DoctypeTooLarge {
            line: line_at(text, start),
            limit,
        }
    } else {
        ParseError::Doctype {
            line: line_at(text, at),
            reason,
        }
    }
}

/// Turns the checked tree into the model, counting hosts across the document.
struct Reader<'d, 'i> {
    doc: &'d roxmltree::Document<'i>,
    limits: &'d ParseLimits,
    hosts: usize,
}

impl<'d, 'i> Reader<'d, 'i> {
    fn line(&self, node: Node<'_, '_>) -> u32 {
        self.doc.text_pos_at(node.range().start).row
    }

    fn document(mut self) -> Result<GangliaXml, ParseError> {
        let root = self.doc.root_element();
        if root.tag_name().name() != "GANGLIA_XML" || root.tag_name().namespace().is_some() {
            return Err(ParseError::WrongRoot {
                line: self.line(root),
                found: root.tag_name().name().to_string(),
            });
        }
        let mut clusters = Vec::new();
        // gmetad nests CLUSTERs in GRIDs; gmond emits them directly. Both flatten to a list.
        for node in root.descendants().filter(|n| is(n, "CLUSTER")) {
            if clusters.len() == self.limits.max_clusters {
                return Err(self.too_many(node, "clusters", self.limits.max_clusters));
            }
            clusters.push(self.cluster(node)?);
        }
        Ok(GangliaXml {
            version: self.req(root, "GANGLIA_XML", "VERSION")?.to_string(),
            source: self.req(root, "GANGLIA_XML", "SOURCE")?.to_string(),
            clusters,
        })
    }

    fn cluster(&mut self, node: Node<'_, '_>) -> Result<Cluster, ParseError> {
        const E: &str = "CLUSTER";
        let mut hosts = Vec::new();
        for h in node.children().filter(|n| is(n, "HOST")) {
            self.hosts += 1;
            if self.hosts > self.limits.max_hosts {
                return Err(self.too_many(h, "hosts", self.limits.max_hosts));
            }
            hosts.push(self.host(h)?);
        }
        Ok(Cluster {
            name: self.req(node, E, "NAME")?.to_string(),
            owner: opt(node, "OWNER"),
            latlong: opt(node, "LATLONG"),
            url: opt(node, "URL"),
            localtime: self.num(node, E, "LOCALTIME", true)?,
            hosts,
        })
    }

    fn host(&self, node: Node<'_, '_>) -> Result<Host, ParseError> {
        const E: &str = "HOST";
        let mut metrics = Vec::new();
        for m in node.children().filter(|n| is(n, "METRIC")) {
            if metrics.len() == self.limits.max_metrics_per_host {
                return Err(self.too_many(
                    m,
                    "metrics in one host",
                    self.limits.max_metrics_per_host,
                ));
            }
            metrics.push(self.metric(m)?);
        }
        Ok(Host {
            name: self.req(node, E, "NAME")?.to_string(),
            ip: self.req(node, E, "IP")?.to_string(),
            location: opt(node, "LOCATION"),
            tags: opt(node, "TAGS"),
            reported: self.num(node, E, "REPORTED", true)?,
            tn: self.num(node, E, "TN", false)?,
            tmax: self.num(node, E, "TMAX", false)?,
            dmax: self.num(node, E, "DMAX", false)?,
            gmond_started: match node.attribute("GMOND_STARTED") {
                Some(_) => Some(self.num(node, E, "GMOND_STARTED", true)?),
                None => None,
            },
            metrics,
        })
    }

    fn metric(&self, node: Node<'_, '_>) -> Result<Metric, ParseError> {
        const E: &str = "METRIC";
        let mut extra = Vec::new();
        let elements = node
            .children()
            .filter(|n| is(n, "EXTRA_DATA"))
            .flat_map(|d| d.children().filter(|n| is(n, "EXTRA_ELEMENT")));
        for x in elements {
            if extra.len() == self.limits.max_extra_per_metric {
                return Err(self.too_many(
                    x,
                    "EXTRA_ELEMENTs in one metric",
                    self.limits.max_extra_per_metric,
                ));
            }
            extra.push((
                self.req(x, "EXTRA_ELEMENT", "NAME")?.to_string(),
                self.req(x, "EXTRA_ELEMENT", "VAL")?.to_string(),
            ));
        }
        Ok(Metric {
            name: self.req(node, E, "NAME")?.to_string(),
            val: self.req(node, E, "VAL")?.to_string(),
            ty: self
                .keyword(node, E, "TYPE", "a gmond metric type")?
                .ok_or_else(|| self.missing(node, E, "TYPE"))?,
            units: opt(node, "UNITS").unwrap_or_default(),
            tn: self.num(node, E, "TN", false)?,
            tmax: self.num(node, E, "TMAX", false)?,
            dmax: self.num(node, E, "DMAX", false)?,
            slope: self.keyword::<Slope>(node, E, "SLOPE", "a gmond slope")?,
            // The DTD defaults SOURCE to 'gmond'; defaults are not applied by the parser.
            source: opt(node, "SOURCE").unwrap_or_else(|| "gmond".to_string()),
            extra,
        })
    }

    fn req<'n>(
        &self,
        node: Node<'n, '_>,
        element: &'static str,
        attribute: &'static str,
    ) -> Result<&'n str, ParseError> {
        node.attribute(attribute)
            .ok_or_else(|| self.missing(node, element, attribute))
    }

    fn missing(
        &self,
        node: Node<'_, '_>,
        element: &'static str,
        attribute: &'static str,
    ) -> ParseError {
        ParseError::MissingAttribute {
            line: self.line(node),
            element,
            attribute,
        }
    }

    /// A numeric attribute; absent optional ones read as the type's default (0).
    fn num<T: FromStr + Default>(
        &self,
        node: Node<'_, '_>,
        element: &'static str,
        attribute: &'static str,
        required: bool,
    ) -> Result<T, ParseError> {
        match node.attribute(attribute) {
            None if required => Err(self.missing(node, element, attribute)),
            None => Ok(T::default()),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| self.bad(node, element, attribute, v, "a non-negative integer")),
        }
    }

    fn keyword<T: FromStr>(
        &self,
        node: Node<'_, '_>,
        element: &'static str,
        attribute: &'static str,
        expected: &'static str,
    ) -> Result<Option<T>, ParseError> {
        node.attribute(attribute)
            .map(|v| {
                v.parse()
                    .map_err(|_| self.bad(node, element, attribute, v, expected))
            })
            .transpose()
    }

    fn bad(
        &self,
        node: Node<'_, '_>,
        element: &'static str,
        attribute: &'static str,
        value: &str,
        expected: &'static str,
    ) -> ParseError {
        ParseError::BadAttribute {
            line: self.line(node),
            element,
            attribute,
            value: value.chars().take(64).collect(),
            expected,
        }
    }

    fn too_many(&self, node: Node<'_, '_>, what: &'static str, limit: usize) -> ParseError {
        ParseError::TooMany {
            line: self.line(node),
            what,
            limit,
        }
    }
}

fn is(node: &Node<'_, '_>, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name
}

fn opt(node: Node<'_, '_>, attribute: &str) -> Option<String> {
    node.attribute(attribute).map(str::to_string)
}
