//! Rolls: loading one roll from its files, and merging the enabled rolls into one graph.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::attrs::Attributes;
use crate::debian_map::{PackageMap, MAP_FILE};
use crate::error::{Problem, RollError};
use crate::graph::{parse_graph_file, sort_orders, Edge, Order};
use crate::node::{parse_node_file, Chunk, Item, NodeFile};
use crate::origin::Origin;

/// A roll's files as data: path inside the roll (`version.mk`, `nodes/x.xml`,
/// `graphs/default/y.xml`, `debian-packages`) → text. `name` is used when `version.mk` has no `ROLLNAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollSource {
    pub name: String,
    pub files: BTreeMap<String, String>,
}

/// An appliance (node role) and the root node its graph walk starts from, as a roll declares it
/// with `rocks add appliance NAME membership=… node=ROOT` and `rocks set appliance attr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appliance {
    pub name: String,
    pub membership: String,
    /// `None` for appliances that are not kickstarted (network switches, power units).
    pub root: Option<String>,
    pub graph: String,
    pub os: String,
    pub attributes: Attributes,
    /// The node file (and its script's line) that declares the appliance.
    pub origin: Origin,
}

/// One parsed roll. Parsing is all-or-nothing: any broken file refuses the whole roll.
#[derive(Debug)]
pub struct Roll {
    name: String,
    version: Option<String>,
    nodes: BTreeMap<String, NodeFile>,
    edges: Vec<Edge>,
    orders: Vec<Order>,
    appliances: BTreeMap<String, Appliance>,
    appliance_attributes: BTreeMap<String, Attributes>,
    package_map: PackageMap,
}

impl Roll {
    pub fn parse(source: &RollSource) -> Result<Roll, RollError> {
        let make = source
            .files
            .get("version.mk")
            .map(|t| parse_version_mk(t))
            .unwrap_or_default();
        let name = make
            .get("ROLLNAME")
            .cloned()
            .unwrap_or_else(|| source.name.clone());
        let mut roll = Roll {
            version: make.get("VERSION").cloned(),
            nodes: BTreeMap::new(),
            edges: Vec::new(),
            orders: Vec::new(),
            appliances: BTreeMap::new(),
            appliance_attributes: BTreeMap::new(),
            package_map: PackageMap::default(),
            name,
        };
        for (path, text) in &source.files {
            let parts: Vec<&str> = path.split('/').collect();
            match parts.as_slice() {
                ["nodes", file] if file.ends_with(".xml") => {
                    let vertex = file.trim_end_matches(".xml").to_string();
                    roll.nodes
                        .insert(vertex, parse_node_file(&roll.name, path, text)?);
                }
                ["graphs", graph, file] if file.ends_with(".xml") => {
                    let (edges, orders) = parse_graph_file(&roll.name, path, graph, text)?;
                    roll.edges.extend(edges);
                    roll.orders.extend(orders);
                }
                [MAP_FILE] => roll.package_map = PackageMap::parse(&roll.name, path, text)?,
                _ => {}
            }
        }
        sort_orders(&roll.orders)?;
        for node in roll.nodes.values() {
            scan_appliances(node, &mut roll.appliances, &mut roll.appliance_attributes);
        }
        Ok(roll)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `VERSION` from `version.mk`, when the roll states it.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The roll's own Debian names for its packages (`debian-packages`; empty without one).
    pub fn package_map(&self) -> &PackageMap {
        &self.package_map
    }
}

/// `KEY = VALUE` lines of a makefile; includes, rules and comments are skipped.
fn parse_version_mk(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim().trim_end_matches([':', '?', '+']).trim();
            (!k.is_empty() && !k.contains(char::is_whitespace))
                .then(|| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Finds the `rocks add appliance` / `rocks set appliance attr` commands in a node file's
/// scripts: that is where Rocks (and our own rolls) declare appliances and their root nodes.
fn scan_appliances(
    node: &NodeFile,
    appliances: &mut BTreeMap<String, Appliance>,
    attributes: &mut BTreeMap<String, Attributes>,
) {
    const REFERENCE: char = '\0';
    for item in &node.items {
        let Item::Script(script) = item else { continue };
        for chunk in &script.body {
            let Chunk::Text(text) = chunk else { continue };
            let text = text.literal_text(REFERENCE).replace("\\\n", " ");
            for words in text.lines().map(shell_words) {
                if words.iter().any(|w| w.contains(REFERENCE)) {
                    continue;
                }
                let Some(at) = words
                    .windows(2)
                    .position(|w| (w[0] == "add" || w[0] == "set") && w[1] == "appliance")
                else {
                    continue;
                };
                let args = &words[at + 2..];
                match args {
                    [attr, appliance, rest @ ..] if attr == "attr" => {
                        let named = |key: &str| named(rest, key);
                        let pair = match rest {
                            [k, v, ..] if !k.contains('=') => Some((k.clone(), v.clone())),
                            _ => named("attr=").zip(named("value=")),
                        };
                        if let Some((k, v)) = pair {
                            attributes
                                .entry(appliance.clone())
                                .or_default()
                                .insert(k, v);
                        }
                    }
                    [name, rest @ ..] if !name.contains('=') => {
                        let named = |key: &str| named(rest, key);
                        appliances.insert(
                            name.clone(),
                            Appliance {
                                name: name.clone(),
                                membership: named("membership=").unwrap_or_else(|| name.clone()),
                                root: named("node="),
                                graph: named("graph=").unwrap_or_else(|| "default".to_string()),
                                os: named("os=").unwrap_or_else(|| "linux".to_string()),
                                attributes: Attributes::new(),
                                origin: Origin {
                                    roll: node.roll.clone(),
                                    file: node.file.clone(),
                                    line: script.line,
                                },
                            },
                        );
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The value of a `key=value` word, e.g. `named(words, "node=")`.
fn named(words: &[String], key: &str) -> Option<String> {
    words
        .iter()
        .find_map(|w| w.strip_prefix(key))
        .map(str::to_string)
}

/// Splits a shell command line into words, honouring quotes and backslashes.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    word.push(q);
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            // The rest of the line is a comment, or another command.
            '#' | ';' | '|' | '&' if !in_word => break,
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The enabled rolls merged: one graph, one order, one set of appliances. Later rolls win
/// when two provide the same node file or appliance (Rocks copies them into one tree in order).
#[derive(Debug)]
pub struct RollSet {
    rolls: Vec<Arc<Roll>>,
    pub(crate) edges: BTreeMap<String, Vec<Edge>>,
    pub(crate) order: Vec<String>,
    appliances: BTreeMap<String, Appliance>,
}

impl RollSet {
    pub fn new(rolls: impl IntoIterator<Item = Arc<Roll>>) -> Result<RollSet, RollError> {
        let rolls: Vec<Arc<Roll>> = rolls.into_iter().collect();
        if rolls.is_empty() {
            return Err(RollError::NoRolls);
        }
        let mut edges: BTreeMap<String, Vec<Edge>> = BTreeMap::new();
        let mut orders = Vec::new();
        let mut appliances = BTreeMap::new();
        let mut appliance_attributes: BTreeMap<String, Attributes> = BTreeMap::new();
        for roll in &rolls {
            for edge in &roll.edges {
                let same =
                    |e: &Edge| e.graph == edge.graph && e.to == edge.to && e.cond == edge.cond;
                let list = edges.entry(edge.from.clone()).or_default();
                if !list.iter().any(same) {
                    list.push(edge.clone());
                }
            }
            orders.extend(roll.orders.iter().cloned());
            appliances.extend(roll.appliances.iter().map(|(k, v)| (k.clone(), v.clone())));
            for (name, attrs) in &roll.appliance_attributes {
                appliance_attributes
                    .entry(name.clone())
                    .or_default()
                    .extend(attrs.clone());
            }
        }
        for (name, attrs) in appliance_attributes {
            if let Some(a) = appliances.get_mut(&name) {
                a.attributes = attrs;
            }
        }
        let set = RollSet {
            order: sort_orders(&orders)?,
            rolls,
            edges,
            appliances,
        };
        for edge in set.edges.values().flatten() {
            for vertex in [&edge.from, &edge.to] {
                if set.node_files(vertex).is_empty() {
                    return Err(edge.origin.error(Problem::MissingNodeFile {
                        node: vertex.clone(),
                    }));
                }
            }
        }
        Ok(set)
    }

    pub fn rolls(&self) -> impl Iterator<Item = &Roll> {
        self.rolls.iter().map(|r| &**r)
    }

    /// Every appliance the enabled rolls declare, by name.
    pub fn appliances(&self) -> &BTreeMap<String, Appliance> {
        &self.appliances
    }

    /// The Rocks release the rolls declare (`VERSION = 7.0` → 7), from the first roll that does.
    pub fn release(&self) -> Option<u32> {
        self.rolls
            .iter()
            .filter_map(|r| r.version()?.split('.').next()?.trim().parse().ok())
            .next()
    }

    /// The names of the appliances that can be kickstarted (they have a root node).
    pub fn kickstartable(&self) -> Vec<&str> {
        self.appliances
            .values()
            .filter(|a| a.root.is_some())
            .map(|a| a.name.as_str())
            .collect()
    }

    pub(crate) fn appliance(&self, name: &str) -> Result<&Appliance, RollError> {
        self.appliances
            .get(name)
            .ok_or_else(|| RollError::UnknownAppliance {
                name: name.to_string(),
                known: self
                    .appliances
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The node files of a graph vertex: `replace-X.xml` if a roll has one, else `X.xml` (from
    /// the last roll that has it), followed by every roll's `extend-X.xml`, as Rocks does.
    pub(crate) fn node_files(&self, vertex: &str) -> Vec<&NodeFile> {
        let last = |name: &str| self.rolls.iter().rev().find_map(|r| r.nodes.get(name));
        let base = last(&format!("replace-{vertex}")).or_else(|| last(vertex));
        let extend = format!("extend-{vertex}");
        base.into_iter()
            .chain(self.rolls.iter().filter_map(|r| r.nodes.get(&extend)))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn version_mk_and_shell_words() {
        let mk = parse_version_mk(
            "ROLLNAME\t= hpc\nRELEASE\t\t= 0\n# c = d\nREDHAT.ROOT = $(PWD)\nX := y\n",
        );
        assert_eq!(mk["ROLLNAME"], "hpc");
        assert_eq!(mk["X"], "y");
        assert!(!mk.contains_key("# c"));
        assert_eq!(
            shell_words("rocks add appliance nas membership='NAS Appliance' node=nas # x"),
            [
                "rocks",
                "add",
                "appliance",
                "nas",
                "membership=NAS Appliance",
                "node=nas"
            ]
        );
    }

    #[test]
    fn appliances_come_from_rocks_commands() {
        let src = r#"<kickstart><post>
/opt/rocks/bin/rocks add appliance compute  membership=Compute node=compute
/opt/rocks/bin/rocks add appliance network  membership='Ethernet Switch'
/opt/rocks/bin/rocks add appliance devel-server membership="Development Appliance" \
	node=devel-appliance graph=default
/opt/rocks/bin/rocks set appliance attr compute exec_host true
/opt/rocks/bin/rocks add appliance attr devel-server RepositoryLocal true
/opt/rocks/bin/rocks set appliance attr &hostname; x y
</post></kickstart>"#;
        let files = [("nodes/db.xml".to_string(), src.to_string())]
            .into_iter()
            .collect();
        let roll = Roll::parse(&RollSource {
            name: "t".into(),
            files,
        })
        .unwrap();
        assert_eq!(roll.appliances["compute"].root.as_deref(), Some("compute"));
        assert_eq!(roll.appliances["network"].root, None);
        assert_eq!(
            roll.appliances["devel-server"].membership,
            "Development Appliance"
        );
        assert_eq!(
            roll.appliances["devel-server"].root.as_deref(),
            Some("devel-appliance")
        );
        assert_eq!(roll.appliance_attributes["compute"]["exec_host"], "true");
        assert_eq!(
            roll.appliance_attributes["devel-server"]["RepositoryLocal"],
            "true"
        );
        assert_eq!(roll.appliance_attributes.len(), 2);
    }
}
