//! Node files (`nodes/*.xml`): parsed once into the elements the generator acts on, with their
//! conditions compiled and their text split into attribute [`Template`]s.

use roxmltree::Node;

use crate::cond::Cond;
use crate::error::{Problem, RollError};
use crate::template::{mark_references, Segment, Template, VarValue};

/// Kickstart commands Rocks' `MainNodeFilter_linux` passes through from `<main>`, plus the
/// RHEL 7 ones a site roll may want.
const DIRECTIVES: &[&str] = &[
    "auth",
    "authconfig",
    "autopart",
    "bootloader",
    "cdrom",
    "clearpart",
    "cmdline",
    "device",
    "driverdisk",
    "eula",
    "firewall",
    "firstboot",
    "graphical",
    "group",
    "halt",
    "harddrive",
    "ignoredisk",
    "install",
    "interactive",
    "keyboard",
    "lang",
    "langsupport",
    "lilo",
    "lilocheck",
    "logging",
    "logvol",
    "mouse",
    "network",
    "nfs",
    "part",
    "poweroff",
    "raid",
    "reboot",
    "repo",
    "rootpw",
    "selinux",
    "services",
    "shutdown",
    "skipx",
    "sshpw",
    "text",
    "timezone",
    "upgrade",
    "url",
    "user",
    "volgroup",
    "xconfig",
    "zerombr",
];

pub(crate) fn limits() -> vcds_xml::Limits {
    vcds_xml::Limits {
        max_bytes: 2 * 1024 * 1024,
        max_depth: 32,
        max_nodes: 100_000,
        max_attributes: 32,
        max_name_len: 128,
        max_attr_value_len: 16 * 1024,
        max_text_len: 1024 * 1024,
        max_namespaces: 8,
    }
}

/// One parsed node file.
#[derive(Debug)]
pub(crate) struct NodeFile {
    pub(crate) roll: String,
    pub(crate) file: String,
    pub(crate) items: Vec<Item>,
}

impl NodeFile {
    pub(crate) fn error(&self, line: u32, problem: impl Into<Problem>) -> RollError {
        RollError::at(&self.roll, &self.file, line, problem)
    }
}

/// When an element applies: its `arch=`/`os=`/`release=`/`cond=` and its `phase=` list.
#[derive(Debug, Default)]
pub(crate) struct Guard {
    pub(crate) cond: Option<Cond>,
    pub(crate) phases: Option<Vec<String>>,
}

#[derive(Debug)]
pub(crate) enum Item {
    Main {
        guard: Guard,
        directives: Vec<Directive>,
    },
    Package {
        line: u32,
        guard: Guard,
        name: Template,
        disabled: bool,
        meta: bool,
    },
    Script(Script),
    Boot {
        guard: Guard,
        pre: bool,
        body: Template,
    },
    /// A top-level `<var … val=/ref=>`.
    Var(Template),
}

#[derive(Debug)]
pub(crate) struct Directive {
    pub(crate) line: u32,
    pub(crate) guard: Guard,
    pub(crate) keyword: String,
    pub(crate) value: Vec<Chunk>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScriptKind {
    Pre,
    Post,
    Configure,
}

#[derive(Debug)]
pub(crate) struct Script {
    pub(crate) line: u32,
    pub(crate) guard: Guard,
    pub(crate) kind: ScriptKind,
    pub(crate) interpreter: Option<Template>,
    pub(crate) arg: Option<Template>,
    pub(crate) log: Option<Template>,
    pub(crate) body: Vec<Chunk>,
}

#[derive(Debug)]
pub(crate) enum Chunk {
    Text(Template),
    File(FileSpec),
    Eval(EvalSpec),
}

#[derive(Debug)]
pub(crate) struct FileSpec {
    pub(crate) line: u32,
    pub(crate) guard: Guard,
    pub(crate) name: Template,
    pub(crate) append: bool,
    pub(crate) owner: Option<Template>,
    pub(crate) perms: Option<Template>,
    pub(crate) expr: Option<Template>,
    /// `vars="expanded"`: the shell expands `$x` in the body at install time.
    pub(crate) expanded: bool,
    pub(crate) body: Vec<Chunk>,
}

#[derive(Debug)]
pub(crate) struct EvalSpec {
    pub(crate) line: u32,
    pub(crate) shell: String,
    /// `mode="xml"`: the output is more node-file XML, expanded in place.
    pub(crate) xml: bool,
    pub(crate) script: Template,
}

type Parsed<T> = Result<T, (u32, Problem)>;

pub(crate) fn parse_node_file(roll: &str, file: &str, text: &str) -> Result<NodeFile, RollError> {
    let at = |(line, problem): (u32, Problem)| RollError::at(roll, file, line, problem);
    let marked = mark_references(text).map_err(|p| at((1, p)))?;
    let doc = vcds_xml::parse(&marked, &limits())
        .map_err(|e| at((xml_error_line(&e), Problem::Xml(e))))?;
    let root = doc.root_element();
    if root.tag_name().name() != "kickstart" {
        let found = root.tag_name().name().to_string();
        return Err(at((
            line(root),
            Problem::Root {
                found,
                expected: "kickstart",
            },
        )));
    }
    let mut items = Vec::new();
    for child in root.children().filter(Node::is_element) {
        if let Some(item) = parse_item(child).map_err(at)? {
            items.push(item);
        }
    }
    Ok(NodeFile {
        roll: roll.to_string(),
        file: file.to_string(),
        items,
    })
}

/// Parses the output of an `<eval mode="xml">`: node-file XML that goes where the eval was.
pub(crate) fn parse_fragment(text: &str, in_file: bool) -> Parsed<Vec<Chunk>> {
    let wrapped = format!("<eval-output>{text}</eval-output>");
    let doc =
        vcds_xml::parse(&wrapped, &limits()).map_err(|e| (xml_error_line(&e), Problem::Xml(e)))?;
    chunks(doc.root_element(), !in_file)
}

/// The line of a parse error, which roxmltree reports inside its message as `line:column`.
pub(crate) fn xml_error_line(e: &vcds_xml::XmlError) -> u32 {
    use vcds_xml::XmlError as E;
    match e {
        E::TooDeep { line, .. }
        | E::TooManyAttributes { line, .. }
        | E::TooManyNamespaces { line, .. }
        | E::NameTooLong { line, .. }
        | E::AttributeTooLong { line, .. }
        | E::TextTooLong { line, .. } => *line,
        E::Malformed(msg) => msg
            .rsplit(" at ")
            .next()
            .and_then(|pos| pos.split(':').next())
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(1),
        _ => 1,
    }
}

fn line(node: Node<'_, '_>) -> u32 {
    node.document().text_pos_at(node.range().start).row
}

fn template(node: Node<'_, '_>, value: &str) -> Template {
    Template::from_marked(value, line(node))
}

fn attr_template(node: Node<'_, '_>, name: &str) -> Option<Template> {
    node.attribute(name).map(|v| template(node, v))
}

fn parse_item(node: Node<'_, '_>) -> Parsed<Option<Item>> {
    let name = node.tag_name().name();
    let line = line(node);
    Ok(Some(match name {
        "main" => {
            let mut directives = Vec::new();
            for d in node.children().filter(Node::is_element) {
                let keyword = d.tag_name().name();
                if !DIRECTIVES.contains(&keyword) {
                    return Err((
                        self::line(d),
                        Problem::UnknownDirective(keyword.to_string()),
                    ));
                }
                directives.push(Directive {
                    line: self::line(d),
                    guard: guard(d)?,
                    keyword: keyword.to_string(),
                    value: chunks(d, false)?,
                });
            }
            Item::Main {
                guard: guard(node)?,
                directives,
            }
        }
        "package" => Item::Package {
            line,
            guard: guard(node)?,
            name: text_template(node)?,
            disabled: node.attribute("disable").is_some_and(|v| {
                matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "1" | "on")
            }),
            meta: node.attribute("type") == Some("meta"),
        },
        "pre" | "post" | "configure" => Item::Script(Script {
            line,
            guard: guard(node)?,
            kind: match name {
                "pre" => ScriptKind::Pre,
                "post" => ScriptKind::Post,
                _ => ScriptKind::Configure,
            },
            interpreter: attr_template(node, "interpreter"),
            arg: attr_template(node, "arg"),
            log: attr_template(node, "log"),
            body: chunks(node, true)?,
        }),
        "boot" => {
            let pre = match node.attribute("order").unwrap_or("post") {
                "pre" => true,
                "post" => false,
                other => return Err((line, bad_value("boot", "order", other, "pre, post"))),
            };
            Item::Boot {
                guard: guard(node)?,
                pre,
                body: text_template(node)?,
            }
        }
        "var" => Item::Var(Template(vec![var(node)?])),
        // Metadata (<description>, <changelog> …), installer <screen>s and elements Rocks has
        // no kickstart handler for are skipped, as Rocks does.
        _ => return Ok(None),
    }))
}

fn bad_value(
    element: &str,
    attribute: &'static str,
    value: &str,
    allowed: &'static str,
) -> Problem {
    Problem::BadValue {
        element: element.to_string(),
        attribute,
        value: value.to_string(),
        allowed,
    }
}

fn guard(node: Node<'_, '_>) -> Parsed<Guard> {
    let line = line(node);
    let mut cond = None;
    for attribute in ["arch", "os", "release", "cond"] {
        let Some(value) = node.attribute(attribute) else {
            continue;
        };
        if Template::from_marked(value, line).has_references() {
            return Err((line, Problem::EntityInCondition(attribute)));
        }
        let part = if attribute == "cond" {
            Some(Cond::parse(value).map_err(|e| (line, Problem::Cond(e)))?)
        } else {
            Cond::any_of(attribute, value)
        };
        cond = Cond::and(cond, part);
    }
    let phases = node.attribute("phase").map(|p| {
        p.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    Ok(Guard { cond, phases })
}

/// The text of an element whose only markup may be `<var>`.
fn text_template(node: Node<'_, '_>) -> Parsed<Template> {
    let mut segments = Vec::new();
    for chunk in chunks(node, false)? {
        match chunk {
            Chunk::Text(t) => segments.extend(t.0),
            Chunk::File(f) => return Err((f.line, Problem::Unsupported("file".to_string()))),
            Chunk::Eval(e) => return Err((e.line, Problem::Unsupported("eval".to_string()))),
        }
    }
    Ok(Template(segments))
}

/// The content of a script (`files`: `<file>` allowed), a file, or a directive.
fn chunks(node: Node<'_, '_>, files: bool) -> Parsed<Vec<Chunk>> {
    let mut out: Vec<Chunk> = Vec::new();
    let push_text = |out: &mut Vec<Chunk>, t: Template| match out.last_mut() {
        Some(Chunk::Text(prev)) => prev.0.extend(t.0),
        _ => out.push(Chunk::Text(t)),
    };
    for child in node.children() {
        if child.is_text() {
            push_text(&mut out, template(child, child.text().unwrap_or_default()));
            continue;
        }
        if !child.is_element() {
            continue;
        }
        let line = line(child);
        match child.tag_name().name() {
            "var" => push_text(&mut out, Template(vec![var(child)?])),
            "eval" => out.push(Chunk::Eval(EvalSpec {
                line,
                shell: child.attribute("shell").unwrap_or("sh").to_string(),
                xml: match child.attribute("mode").unwrap_or("quote") {
                    "xml" => true,
                    "quote" => false,
                    other => return Err((line, bad_value("eval", "mode", other, "quote, xml"))),
                },
                script: text_template(child)?,
            })),
            "file" if files => out.push(Chunk::File(file(child)?)),
            name @ ("include" | "sinclude" | "copy") => {
                return Err((line, Problem::Unsupported(name.to_string())))
            }
            // Other markup inside a script (e.g. Solaris <service>) has no kickstart meaning.
            _ => {}
        }
    }
    Ok(out)
}

fn file(node: Node<'_, '_>) -> Parsed<FileSpec> {
    let line = line(node);
    let name = attr_template(node, "name").ok_or((
        line,
        Problem::MissingAttribute {
            element: "file".to_string(),
            attribute: "name",
        },
    ))?;
    let append = match node.attribute("mode").unwrap_or("create") {
        "create" => false,
        "append" => true,
        other => return Err((line, bad_value("file", "mode", other, "create, append"))),
    };
    let expanded = match node.attribute("vars").unwrap_or("literal") {
        "literal" => false,
        "expanded" => true,
        other => return Err((line, bad_value("file", "vars", other, "literal, expanded"))),
    };
    Ok(FileSpec {
        line,
        guard: guard(node)?,
        name,
        append,
        owner: attr_template(node, "owner"),
        perms: attr_template(node, "perms"),
        expr: attr_template(node, "expr"),
        expanded,
        body: chunks(node, false)?,
    })
}

fn var(node: Node<'_, '_>) -> Parsed<Segment> {
    let line = line(node);
    let name = node
        .attribute("name")
        .ok_or((
            line,
            Problem::MissingAttribute {
                element: "var".to_string(),
                attribute: "name",
            },
        ))?
        .to_string();
    Ok(match (attr_template(node, "val"), node.attribute("ref")) {
        (Some(val), _) => Segment::SetVar {
            name,
            value: VarValue::Text(val),
        },
        (None, Some(r)) => Segment::SetVar {
            name,
            value: VarValue::Ref {
                attribute: r.to_string(),
                line,
            },
        },
        (None, None) => Segment::Var { name, line },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn parses_the_elements_the_generator_uses() {
        let src = r#"<?xml version="1.0" standalone="no"?>
<kickstart>
<description>x</description>
<main><lang>&Kickstart_Lang;</lang><rootpw>--iscrypted <eval>gen</eval></rootpw></main>
<package arch="x86_64" cond="a == 1">p</package>
<package disable="true">q</package>
<post interpreter="/bin/sh" arg="--nochroot">echo &lt;x&gt; &hostname;
<file name="/etc/motd" mode="append" perms="0644"><![CDATA[hi & bye]]></file>
<var name="v" val="1"/><var name="v"/>
</post>
</kickstart>"#;
        let nf = parse_node_file("r", "nodes/n.xml", src).unwrap();
        assert_eq!(nf.items.len(), 4);
        let Item::Script(s) = &nf.items[3] else {
            panic!()
        };
        assert_eq!(s.line, 7);
        assert!(matches!(&s.body[1], Chunk::File(f) if f.append));
    }

    #[test]
    fn refuses_bad_node_files_with_their_line() {
        let e = parse_node_file(
            "r",
            "nodes/n.xml",
            "<kickstart>\n<post cond=\"a ==\">x</post></kickstart>",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("roll r: nodes/n.xml:2: condition"),
            "{e}"
        );
        let e = parse_node_file(
            "r",
            "nodes/n.xml",
            "<kickstart>\n\n<post>x</pre></kickstart>",
        )
        .unwrap_err();
        assert!(
            matches!(e, RollError::At { line: 3, .. })
                && matches!(e.problem(), Some(Problem::Xml(_))),
            "{e}"
        );
        let e = parse_node_file(
            "r",
            "nodes/n.xml",
            "<kickstart><main><bogus/></main></kickstart>",
        )
        .unwrap_err();
        assert!(
            matches!(e.problem(), Some(Problem::UnknownDirective(_))),
            "{e}"
        );
        let e = parse_node_file(
            "r",
            "nodes/n.xml",
            "<kickstart><post><file mode=\"pipe\" name=\"x\"/></post></kickstart>",
        )
        .unwrap_err();
        assert!(matches!(e.problem(), Some(Problem::BadValue { .. })), "{e}");
        let e = parse_node_file("r", "nodes/n.xml", "<graph/>").unwrap_err();
        assert!(matches!(e.problem(), Some(Problem::Root { .. })), "{e}");
        let e = parse_node_file(
            "r",
            "nodes/n.xml",
            "<kickstart><post cond=\"&x; == 1\"/></kickstart>",
        )
        .unwrap_err();
        assert!(
            matches!(e.problem(), Some(Problem::EntityInCondition("cond"))),
            "{e}"
        );
    }
}
