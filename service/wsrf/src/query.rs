//! QueryResourceProperties in the XPath 1.0 dialect, evaluated by sxd-xpath.

use vcds_xml::escape;

pub const XPATH_DIALECT: &str = "http://www.w3.org/TR/1999/REC-xpath-19991116";

/// Bounds on an expression, so a hostile one cannot exhaust the recursive-descent parser.
const MAX_EXPRESSION_LEN: usize = 4096;
const MAX_NESTING: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("query dialect {0:?} is not supported; use {XPATH_DIALECT}")]
    UnknownDialect(String),
    #[error("invalid XPath expression: {0}")]
    Invalid(String),
    #[error("XPath evaluation failed: {0}")]
    Evaluation(String),
}

/// Evaluates `expression` with the root element of `document` (an RP document) as the context
/// node. `namespaces` are the prefix bindings in scope at the QueryExpression element. The result
/// is the content of the QueryResourcePropertiesResponse: serialized nodes, or a value as text.
pub fn evaluate(
    document: &str,
    expression: &str,
    namespaces: &[(String, String)],
) -> Result<String, QueryError> {
    check_bounds(expression)?;
    check_prefixes(expression, namespaces)?;
    let package = sxd_document::parser::parse(document)
        .map_err(|e| QueryError::Evaluation(format!("{e:?}")))?;
    let doc = package.as_document();
    let xpath = sxd_xpath::Factory::new()
        .build(expression)
        .map_err(|e| QueryError::Invalid(e.to_string()))?
        .ok_or_else(|| QueryError::Invalid("the expression is empty".to_string()))?;
    let mut context = sxd_xpath::Context::new();
    for (prefix, uri) in namespaces {
        context.set_namespace(prefix, uri);
    }
    let root = doc
        .root()
        .children()
        .into_iter()
        .find_map(|c| c.element())
        .ok_or_else(|| QueryError::Evaluation("the document is empty".to_string()))?;
    // sxd-xpath panics on some inputs instead of failing; a query must never take a worker down.
    let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        xpath.evaluate(&context, root)
    }))
    .map_err(|_| QueryError::Evaluation("the XPath engine gave up on this expression".to_string()))?
    .map_err(|e| QueryError::Evaluation(e.to_string()))?;
    Ok(match value {
        sxd_xpath::Value::Nodeset(nodes) => {
            let mut out = String::new();
            for n in nodes.document_order() {
                write_node(&mut out, n);
            }
            out
        }
        sxd_xpath::Value::Boolean(b) => b.to_string(),
        sxd_xpath::Value::Number(n) => format_number(n),
        sxd_xpath::Value::String(s) => escape(&s).into_owned(),
    })
}

fn check_bounds(expression: &str) -> Result<(), QueryError> {
    if expression.len() > MAX_EXPRESSION_LEN {
        return Err(QueryError::Invalid(format!(
            "longer than {MAX_EXPRESSION_LEN} characters"
        )));
    }
    let mut depth = 0usize;
    for c in expression.chars() {
        match c {
            '(' | '[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(QueryError::Invalid(format!(
                        "nested deeper than {MAX_NESTING}"
                    )));
                }
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Every `prefix:` in the expression (outside string literals; `axis::` is not a prefix) must
/// be bound, else sxd-xpath would fail only at evaluation, and not gracefully.
fn check_prefixes(expression: &str, namespaces: &[(String, String)]) -> Result<(), QueryError> {
    let chars: Vec<char> = expression.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i + 1 < chars.len()
                    && (chars[i + 1].is_alphanumeric() || matches!(chars[i + 1], '_' | '-' | '.'))
                {
                    i += 1;
                }
                let is_prefix = chars.get(i + 1) == Some(&':') && chars.get(i + 2) != Some(&':');
                let preceded_by_colon = start > 0 && chars[start - 1] == ':';
                if is_prefix && !preceded_by_colon {
                    let prefix: String = chars[start..=i].iter().collect();
                    if !namespaces.iter().any(|(p, _)| *p == prefix) {
                        return Err(QueryError::Invalid(format!(
                            "namespace prefix {prefix:?} is not declared"
                        )));
                    }
                }
            }
            None => {}
        }
        i += 1;
    }
    Ok(())
}

/// XPath's number-to-string: integers without a fraction, NaN and infinities by name.
fn format_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".to_string()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// Serializes a result node; elements declare their namespace as the default one, so the
/// fragment needs no prefix bindings from the document. The RP document is vcds's own and
/// shallow, so recursion here is bounded.
fn write_node(out: &mut String, node: sxd_xpath::nodeset::Node<'_>) {
    use sxd_xpath::nodeset::Node;
    match node {
        Node::Element(e) => write_element(out, e, None),
        Node::Attribute(a) => out.push_str(&escape(a.value())),
        Node::Text(t) => out.push_str(&escape(t.text())),
        Node::Root(r) => {
            for c in r.children() {
                if let Some(e) = c.element() {
                    write_element(out, e, None);
                }
            }
        }
        Node::Comment(_) | Node::ProcessingInstruction(_) | Node::Namespace(_) => {}
    }
}

fn write_element(out: &mut String, e: sxd_document::dom::Element<'_>, parent_ns: Option<&str>) {
    let name = e.name();
    let ns = name.namespace_uri();
    out.push('<');
    out.push_str(name.local_part());
    if ns != parent_ns {
        out.push_str(&format!(" xmlns=\"{}\"", escape(ns.unwrap_or(""))));
    }
    for (i, a) in e.attributes().iter().enumerate() {
        let an = a.name();
        match an.namespace_uri() {
            Some(uri) => out.push_str(&format!(
                " xmlns:a{i}=\"{}\" a{i}:{}",
                escape(uri),
                an.local_part()
            )),
            None => out.push_str(&format!(" {}", an.local_part())),
        }
        out.push_str(&format!("=\"{}\"", escape(a.value())));
    }
    out.push('>');
    for c in e.children() {
        match c {
            sxd_document::dom::ChildOfElement::Element(child) => write_element(out, child, ns),
            sxd_document::dom::ChildOfElement::Text(t) => out.push_str(&escape(t.text())),
            _ => {}
        }
    }
    out.push_str("</");
    out.push_str(name.local_part());
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<r:Props xmlns:r="urn:t"><r:Node><r:State>Running</r:State></r:Node><r:Node><r:State>Down</r:State></r:Node><r:Count>2</r:Count></r:Props>"#;

    fn ns(prefix: &str) -> Vec<(String, String)> {
        vec![(prefix.to_string(), "urn:t".to_string())]
    }

    #[test]
    fn node_sets_values_and_prefixes() {
        let nodes = evaluate(DOC, "/*/q:Node[q:State='Running']", &ns("q")).unwrap();
        let wrapped = format!("<w>{nodes}</w>");
        let doc = vcds_xml::parse(&wrapped, &vcds_xml::Limits::default()).unwrap();
        let node = doc.root_element().first_element_child().unwrap();
        assert!(node.has_tag_name(("urn:t", "Node")));
        assert_eq!(node.first_element_child().unwrap().text(), Some("Running"));
        assert_eq!(evaluate(DOC, "count(x:Node)", &ns("x")).unwrap(), "2");
        assert_eq!(
            evaluate(DOC, "boolean(/*/x:Count = 2)", &ns("x")).unwrap(),
            "true"
        );
        assert_eq!(
            evaluate(DOC, "string(x:Node[2]/x:State)", &ns("x")).unwrap(),
            "Down"
        );
    }

    #[test]
    fn invalid_and_hostile_expressions() {
        assert!(matches!(
            evaluate(DOC, "/*[", &[]),
            Err(QueryError::Invalid(_))
        ));
        assert!(matches!(
            evaluate(DOC, "", &[]),
            Err(QueryError::Invalid(_))
        ));
        let deep = "(".repeat(100_000) + "1" + &")".repeat(100_000);
        assert!(matches!(
            evaluate(DOC, &deep, &[]),
            Err(QueryError::Invalid(_))
        ));
        assert!(matches!(
            evaluate(DOC, "undeclared:Node", &[]),
            Err(QueryError::Invalid(_))
        ));
        assert_eq!(
            evaluate(DOC, "count(child::x:Node[self::x:Node = 'a:b'])", &ns("x")).unwrap(),
            "0"
        );
    }
}
