//! Attribute substitution (`&name;` and `<var>`).
//!
//! Rocks prepends a `<!DOCTYPE [<!ENTITY name "value"> …]>` built from the host's attributes
//! and lets the XML parser expand `&name;`. We refuse DTDs, and we want to parse a roll once and
//! generate many hosts from it, so before parsing we replace each attribute reference with a
//! marker from the Unicode private-use area (`U+E000 name U+E001`); the parsed text is split
//! into [`Template`]s whose attribute segments are filled in per host. Substituted values are
//! therefore plain text: they can never inject markup, and the profile writer escapes them.
//! Predefined entities (`&lt;` …) and character references are left to the parser; comments
//! and processing instructions are copied untouched and CDATA sections become escaped text,
//! so references inside them stay literal, as an XML parser would have it.

use std::collections::BTreeMap;

use crate::attrs::Attributes;
use crate::error::Problem;

const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';
const PREDEFINED: [&str; 5] = ["lt", "gt", "amp", "quot", "apos"];
const CDATA_OPEN: &str = "<![CDATA[";
const CDATA_CLOSE: &str = "]]>";

/// Replaces `&name;` attribute references with markers; everything else is unchanged, so line
/// numbers stay those of the original file.
pub(crate) fn mark_references(text: &str) -> Result<String, Problem> {
    if text.contains([OPEN, CLOSE]) {
        return Err(Problem::ReservedCharacter);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['<', '&']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(body) = rest.strip_prefix(CDATA_OPEN) {
            // CDATA becomes the same text escaped: a `<!DOCTYPE` quoted inside CDATA (411-client
            // carries an SMF manifest) must not look like one to the DTD guard of vcds_xml.
            let end = body.find(CDATA_CLOSE).unwrap_or(body.len());
            out.push_str(&vcds_xml::escape(&body[..end]));
            rest = body.get(end + CDATA_CLOSE.len()..).unwrap_or_default();
            continue;
        }
        let verbatim_until = [("<!--", "-->"), ("<?", "?>")]
            .iter()
            .find(|(open, _)| rest.starts_with(open))
            .map(|(open, close)| {
                rest[open.len()..]
                    .find(close)
                    .map_or(rest.len(), |j| open.len() + j + close.len())
            });
        if let Some(end) = verbatim_until {
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        if let Some(name) = rest.strip_prefix('&').and_then(reference_name) {
            if !PREDEFINED.contains(&name) {
                out.push(OPEN);
                out.push_str(name);
                out.push(CLOSE);
                rest = &rest[name.len() + 2..];
                continue;
            }
        }
        // A predefined entity, a character reference, markup, or a stray '&' the parser reports.
        out.push_str(&rest[..1]);
        rest = &rest[1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The XML name before `;` at the start of `s`, if `s` starts with one.
fn reference_name(s: &str) -> Option<&str> {
    let end = s.find(';')?;
    let name = &s[..end];
    let mut chars = name.chars();
    let first = chars.next()?;
    let name_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':');
    (first.is_alphabetic() || first == '_' || first == ':').then_some(())?;
    chars.all(name_char).then_some(name)
}

/// One piece of text after parsing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    Literal(String),
    /// `&name;`: the host attribute `name`.
    Attribute {
        name: String,
        line: u32,
    },
    /// `<var name="x"/>`: a variable set earlier in the node file by `<var>`, else the attribute.
    Var {
        name: String,
        line: u32,
    },
    /// `<var name="x" val="…"/>` or `<var name="x" ref="attr"/>`: sets a variable, emits nothing.
    SetVar {
        name: String,
        value: VarValue,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VarValue {
    Text(Template),
    Ref { attribute: String, line: u32 },
}

/// Text with attribute references, filled in per host by [`Template::render`].
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Template(pub(crate) Vec<Segment>);

impl Template {
    /// Splits parsed text (from [`mark_references`]d input) that starts at `line`.
    pub(crate) fn from_marked(text: &str, mut line: u32) -> Template {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(OPEN) {
            let Some(len) = rest[open..].find(CLOSE) else {
                break;
            };
            if open > 0 {
                segments.push(Segment::Literal(rest[..open].to_string()));
            }
            line += count_lines(&rest[..open]);
            let name = &rest[open + OPEN.len_utf8()..open + len];
            segments.push(Segment::Attribute {
                name: name.to_string(),
                line,
            });
            rest = &rest[open + len + CLOSE.len_utf8()..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_string()));
        }
        Template(segments)
    }

    pub(crate) fn has_references(&self) -> bool {
        self.0.iter().any(|s| !matches!(s, Segment::Literal(_)))
    }

    /// The literal text, with each reference replaced by `placeholder`.
    pub(crate) fn literal_text(&self, placeholder: char) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            match segment {
                Segment::Literal(s) => out.push_str(s),
                Segment::Attribute { .. } | Segment::Var { .. } => out.push(placeholder),
                Segment::SetVar { .. } => {}
            }
        }
        out
    }

    pub(crate) fn render(&self, scope: &mut Scope<'_>) -> Result<String, (u32, Problem)> {
        let mut out = String::new();
        for segment in &self.0 {
            match segment {
                Segment::Literal(s) => out.push_str(s),
                Segment::Attribute { name, line } => out.push_str(scope.attribute(name, *line)?),
                Segment::Var { name, line } => match scope.vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(scope.attribute(name, *line)?),
                },
                Segment::SetVar { name, value } => {
                    let value = match value {
                        VarValue::Text(t) => t.render(scope)?,
                        VarValue::Ref { attribute, line } => {
                            scope.attribute(attribute, *line)?.to_string()
                        }
                    };
                    scope.vars.insert(name.clone(), value);
                }
            }
        }
        Ok(out)
    }
}

pub(crate) fn count_lines(s: &str) -> u32 {
    u32::try_from(s.bytes().filter(|&b| b == b'\n').count()).unwrap_or(u32::MAX)
}

/// The attributes of one host plus the `<var>` variables of the node file being expanded.
pub(crate) struct Scope<'a> {
    pub(crate) attrs: &'a Attributes,
    pub(crate) vars: BTreeMap<String, String>,
}

impl<'a> Scope<'a> {
    pub(crate) fn new(attrs: &'a Attributes) -> Self {
        Scope {
            attrs,
            vars: BTreeMap::new(),
        }
    }

    fn attribute(&self, name: &str, line: u32) -> Result<&'a str, (u32, Problem)> {
        self.attrs.get(name).map(String::as_str).ok_or_else(|| {
            (
                line,
                Problem::UnknownAttribute {
                    name: name.to_string(),
                },
            )
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn marks_attribute_references_only() {
        let src = "<a x=\"&arch;\">&lt;&hostname;&amp;&#65;<!-- &c; --><![CDATA[&d;]]>&Kickstart_PrivateAddress;</a>";
        let marked = mark_references(src).unwrap();
        assert_eq!(
            marked,
            "<a x=\"\u{E000}arch\u{E001}\">&lt;\u{E000}hostname\u{E001}&amp;&#65;<!-- &c; -->&amp;d;\u{E000}Kickstart_PrivateAddress\u{E001}</a>"
        );
        assert!(matches!(
            mark_references("a\u{E000}"),
            Err(Problem::ReservedCharacter)
        ));
        assert_eq!(mark_references("a && b & c").unwrap(), "a && b & c");
    }

    #[test]
    fn substitutes_values_as_text() {
        let t = Template::from_marked("x\n\u{E000}h\u{E001} \u{E000}missing\u{E001}", 10);
        let attrs: Attributes = [("h".to_string(), "<b>&".to_string())]
            .into_iter()
            .collect();
        let mut scope = Scope::new(&attrs);
        let err = t.render(&mut scope).unwrap_err();
        assert_eq!(err.0, 11);
        assert!(matches!(err.1, Problem::UnknownAttribute { ref name } if name == "missing"));
        let t = Template::from_marked("\u{E000}h\u{E001}!", 1);
        assert_eq!(t.render(&mut scope).unwrap(), "<b>&!");
    }
}
