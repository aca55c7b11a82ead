//! Expansion: one host's profile from the merged rolls — the graph walked from the appliance's
//! root, node files in order, conditions decided, attributes substituted, `<eval>`s run.

use crate::attrs::{resolve, AttributeLayers, Attributes, Identity, Phase, Target};
use crate::error::{Problem, RollError};
use crate::graph::{reachable, traversal_order};
use crate::node::{self, parse_fragment, Chunk, EvalSpec, Guard, Item, NodeFile, ScriptKind};
use crate::roll::RollSet;
use crate::template::{Scope, Template};

/// Runs `<eval>` blocks. Rocks runs them on the frontend while generating; a pure library
/// cannot, so the caller decides (the server may run them in a sandbox, the offline CLI not).
pub trait Evaluator {
    /// The output of the eval, or `None` to leave it unevaluated: the XML profile keeps it as
    /// an `<eval>` element and the kickstart lists it in its header.
    fn eval(&self, request: &EvalRequest<'_>) -> Result<Option<String>, String>;
}

/// One `<eval>` to run, with everything a runner needs.
#[derive(Debug)]
pub struct EvalRequest<'a> {
    pub roll: &'a str,
    pub file: &'a str,
    pub line: u32,
    pub shell: &'a str,
    /// `mode="xml"`: the output is node-file XML (e.g. `<file>` elements) to expand in place.
    pub xml: bool,
    pub script: &'a str,
    pub attributes: &'a Attributes,
}

/// Leaves every `<eval>` unevaluated.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deferred;

impl Evaluator for Deferred {
    fn eval(&self, _: &EvalRequest<'_>) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// The expanded profile of one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub appliance: String,
    pub root: String,
    pub target: Target,
    pub attributes: Attributes,
    /// Node files in traversal order.
    pub nodes: Vec<ProfileNode>,
}

/// What one node file contributes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileNode {
    pub vertex: String,
    pub roll: String,
    pub file: String,
    pub main: Vec<Directive>,
    pub packages: Vec<Package>,
    pub scripts: Vec<Script>,
    pub boot: Vec<Boot>,
}

/// A kickstart command from `<main>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub keyword: String,
    pub value: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    /// `disable="true"` or `-name`: kept out of the install (`-name` in `%packages`).
    pub disabled: bool,
    /// `type="meta"`: a package group (`@name`).
    pub meta: bool,
}

impl Package {
    /// The name as `%packages` writes it: `@name` for a group.
    pub fn kickstart_name(&self) -> String {
        if self.meta {
            format!("@{}", self.name)
        } else {
            self.name.clone()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Pre,
    Post,
}

/// A `%pre` or `%post` script.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub section: Section,
    pub interpreter: String,
    /// Extra options of the section line, e.g. `--nochroot`.
    pub args: Vec<String>,
    /// Where anaconda logs the script's output (`--log=`).
    pub log: String,
    pub body: Vec<Piece>,
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    File(File),
    Eval(PendingEval),
}

/// A `<file>`: written by the script at install time.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub name: String,
    pub append: bool,
    pub owner: Option<String>,
    pub perms: Option<String>,
    /// A command whose output becomes the file, instead of the body.
    pub expr: Option<String>,
    pub expanded: bool,
    pub body: Vec<Piece>,
}

/// An `<eval>` the [`Evaluator`] left unevaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEval {
    pub line: u32,
    pub shell: String,
    pub xml: bool,
    pub script: String,
}

/// `<boot order="pre|post">` text for the node's first-boot scripts.
#[derive(Debug, Clone, PartialEq)]
pub struct Boot {
    pub pre: bool,
    pub text: String,
}

/// Lines that would end or open a kickstart section if they appeared in a script body.
const SECTION_WORDS: &[&str] = &[
    "end",
    "pre",
    "pre-install",
    "post",
    "packages",
    "traceback",
    "onerror",
    "addon",
    "anaconda",
];

impl RollSet {
    /// Expands the profile of one host of `appliance`.
    pub fn profile(
        &self,
        appliance: &str,
        target: &Target,
        layers: &AttributeLayers,
        evaluator: &dyn Evaluator,
    ) -> Result<Profile, RollError> {
        let app = self.appliance(appliance)?;
        let root = app
            .root
            .as_deref()
            .ok_or_else(|| RollError::NotKickstartable {
                name: appliance.to_string(),
            })?;
        let id = Identity {
            target,
            appliance,
            membership: &app.membership,
            root,
            graph: &app.graph,
        };
        let attributes = resolve(layers, &app.attributes, &id)?;
        let walk = reachable(&self.edges, &app.graph, root, &attributes);
        let mut nodes = Vec::new();
        for vertex in traversal_order(&self.order, &walk) {
            let files = self.node_files(&vertex);
            if files.is_empty() {
                return Err(app.origin.error(Problem::MissingNodeFile { node: vertex }));
            }
            for file in files {
                let expander = Expander {
                    file,
                    attrs: &attributes,
                    target,
                    evaluator,
                };
                nodes.push(expander.node(&vertex)?);
            }
        }
        Ok(Profile {
            appliance: appliance.to_string(),
            root: root.to_string(),
            target: target.clone(),
            attributes,
            nodes,
        })
    }
}

struct Expander<'a> {
    file: &'a NodeFile,
    attrs: &'a Attributes,
    target: &'a Target,
    evaluator: &'a dyn Evaluator,
}

impl Expander<'_> {
    fn error(&self, (line, problem): (u32, Problem)) -> RollError {
        self.file.error(line, problem)
    }

    fn admits(&self, guard: &Guard, script: Option<ScriptKind>) -> bool {
        let in_phase = match (self.target.phase, &guard.phases) {
            (Phase::Install, None) => script != Some(ScriptKind::Configure),
            (Phase::Install, Some(p)) => p
                .iter()
                .any(|x| matches!(x.as_str(), "install" | "pre" | "post")),
            (Phase::Reconfigure, None) => script == Some(ScriptKind::Configure),
            (Phase::Reconfigure, Some(p)) => p.iter().any(|x| x == "reconfigure"),
        };
        in_phase && guard.cond.as_ref().is_none_or(|c| c.holds(self.attrs))
    }

    fn render(&self, template: &Template, scope: &mut Scope<'_>) -> Result<String, RollError> {
        template.render(scope).map_err(|e| self.error(e))
    }

    fn node(&self, vertex: &str) -> Result<ProfileNode, RollError> {
        let mut scope = Scope::new(self.attrs);
        let mut out = ProfileNode {
            vertex: vertex.to_string(),
            roll: self.file.roll.clone(),
            file: self.file.file.clone(),
            ..ProfileNode::default()
        };
        for item in &self.file.items {
            match item {
                Item::Main { guard, directives } if self.admits(guard, None) => {
                    for d in directives.iter().filter(|d| self.admits(&d.guard, None)) {
                        let value = self.chunks(&d.value, &mut scope, false, 0, d.line)?;
                        out.main.push(Directive {
                            keyword: d.keyword.clone(),
                            value,
                        });
                    }
                }
                Item::Package {
                    line,
                    guard,
                    name,
                    disabled,
                    meta,
                } if self.admits(guard, None) => {
                    let text = self.render(name, &mut scope)?;
                    let (text, dash) = match text.trim().strip_prefix('-') {
                        Some(rest) => (rest.trim().to_string(), true),
                        None => (text.trim().to_string(), false),
                    };
                    if text.is_empty() || text.contains(char::is_whitespace) {
                        return Err(self.error((*line, Problem::BadPackage(text))));
                    }
                    out.packages.push(Package {
                        name: text,
                        disabled: *disabled || dash,
                        meta: *meta,
                    });
                }
                Item::Script(s) if self.admits(&s.guard, Some(s.kind)) => {
                    out.scripts.push(self.script(s, &mut scope)?);
                }
                Item::Boot { guard, pre, body } if self.admits(guard, None) => {
                    out.boot.push(Boot {
                        pre: *pre,
                        text: self.render(body, &mut scope)?,
                    });
                }
                Item::Var(set) => {
                    self.render(set, &mut scope)?;
                }
                _ => {}
            }
        }
        Ok(out)
    }

    fn script(&self, s: &node::Script, scope: &mut Scope<'_>) -> Result<Script, RollError> {
        let phases = s.guard.phases.as_deref().unwrap_or_default();
        let section = match s.kind {
            ScriptKind::Pre => Section::Pre,
            ScriptKind::Configure if phases.iter().any(|p| p == "pre") => Section::Pre,
            ScriptKind::Post | ScriptKind::Configure => Section::Post,
        };
        let word = |scope: &mut Scope<'_>,
                    attribute: &'static str,
                    t: &Option<Template>,
                    default: &str| {
            let value = t.as_ref().map(|t| self.render(t, scope)).transpose()?;
            let value = value.unwrap_or_else(|| default.to_string());
            // These land on the section line, where a space or newline would add options.
            if value.is_empty() || value.contains(char::is_whitespace) {
                return Err(self.error((s.line, bad(attribute, value, "one path"))));
            }
            Ok(value)
        };
        let interpreter = word(scope, "interpreter", &s.interpreter, "/bin/bash")?;
        let args: Vec<String> = match &s.arg {
            Some(t) => self
                .render(t, scope)?
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            None => Vec::new(),
        };
        let option = |a: &String| {
            let name = a
                .strip_prefix("--")
                .and_then(|o| o.split('=').next())
                .unwrap_or_default();
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if let Some(a) = args.iter().find(|a| !option(a)) {
            return Err(self.error((s.line, bad("arg", a.clone(), "--option words"))));
        }
        // Anaconda opens a chroot script's log inside the installed system.
        let default_log = match (section, args.iter().any(|a| a == "--nochroot")) {
            (Section::Pre, _) => "/tmp/ks-pre.log",
            (Section::Post, true) => "/mnt/sysimage/var/log/rocks-install.log",
            (Section::Post, false) => "/var/log/rocks-install.log",
        };
        let log = word(scope, "log", &s.log, default_log)?;
        Ok(Script {
            section,
            interpreter,
            args,
            log,
            body: self.chunks(&s.body, scope, false, 0, s.line)?,
            line: s.line,
        })
    }

    /// Expands script, file or directive content. `depth` counts `<eval mode="xml">` output
    /// being expanded: evals inside eval output are left unevaluated, so an evaluator cannot
    /// make generation loop. `line` is the enclosing element's, for errors.
    fn chunks(
        &self,
        chunks: &[Chunk],
        scope: &mut Scope<'_>,
        in_file: bool,
        depth: u8,
        line: u32,
    ) -> Result<Vec<Piece>, RollError> {
        let mut out = Vec::new();
        for chunk in chunks {
            match chunk {
                Chunk::Text(t) => push_text(&mut out, self.render(t, scope)?),
                Chunk::File(f) if self.admits(&f.guard, None) => {
                    let optional = |t: &Option<Template>, scope: &mut Scope<'_>| {
                        t.as_ref().map(|t| self.render(t, scope)).transpose()
                    };
                    out.push(Piece::File(File {
                        name: self.render(&f.name, scope)?,
                        append: f.append,
                        owner: optional(&f.owner, scope)?,
                        perms: optional(&f.perms, scope)?,
                        expr: optional(&f.expr, scope)?,
                        expanded: f.expanded,
                        body: self.chunks(&f.body, scope, true, depth, f.line)?,
                    }));
                }
                Chunk::File(_) => {}
                Chunk::Eval(e) => self.eval(e, scope, in_file, depth, &mut out)?,
            }
        }
        for piece in &out {
            if let Piece::Text(text) = piece {
                if let Some(bad) = text.lines().find(|l| breaks_section(l)) {
                    return Err(self.error((line, Problem::SectionBreak(bad.to_string()))));
                }
            }
        }
        Ok(out)
    }

    fn eval(
        &self,
        e: &EvalSpec,
        scope: &mut Scope<'_>,
        in_file: bool,
        depth: u8,
        out: &mut Vec<Piece>,
    ) -> Result<(), RollError> {
        let script = self.render(&e.script, scope)?;
        let request = EvalRequest {
            roll: &self.file.roll,
            file: &self.file.file,
            line: e.line,
            shell: &e.shell,
            xml: e.xml,
            script: &script,
            attributes: self.attrs,
        };
        let output = if depth == 0 {
            self.evaluator.eval(&request)
        } else {
            Ok(None)
        };
        match output.map_err(|reason| self.error((e.line, Problem::Eval(reason))))? {
            None => out.push(Piece::Eval(PendingEval {
                line: e.line,
                shell: e.shell.clone(),
                xml: e.xml,
                script,
            })),
            Some(text) if e.xml => {
                let chunks =
                    parse_fragment(&text, in_file).map_err(|(_, p)| self.error((e.line, p)))?;
                let mut pieces = self.chunks(&chunks, scope, in_file, depth + 1, e.line)?;
                // Lines inside the output mean nothing to the roll's author: point at the eval.
                relocate(&mut pieces, e.line);
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => push_text(out, t),
                        other => out.push(other),
                    }
                }
            }
            Some(text) => push_text(out, text),
        }
        Ok(())
    }
}

fn relocate(pieces: &mut [Piece], line: u32) {
    for piece in pieces {
        match piece {
            Piece::Eval(e) => e.line = line,
            Piece::File(f) => relocate(&mut f.body, line),
            Piece::Text(_) => {}
        }
    }
}

fn bad(attribute: &'static str, value: String, allowed: &'static str) -> Problem {
    Problem::BadValue {
        element: "script".to_string(),
        attribute,
        value,
        allowed,
    }
}

fn push_text(out: &mut Vec<Piece>, text: String) {
    match out.last_mut() {
        Some(Piece::Text(prev)) => prev.push_str(&text),
        _ => out.push(Piece::Text(text)),
    }
}

fn breaks_section(line: &str) -> bool {
    line.trim_start().strip_prefix('%').is_some_and(|rest| {
        let word = rest
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap_or_default();
        SECTION_WORDS.contains(&word)
    })
}
