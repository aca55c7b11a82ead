//! Graph files (`graphs/<graph>/*.xml`): edges that graft node files into appliances, and
//! `<order>` constraints on the order node files are emitted in.

use std::collections::{BTreeMap, BTreeSet};

use roxmltree::Node;

use crate::attrs::Attributes;
use crate::cond::Cond;
use crate::error::{Problem, RollError};
use crate::origin::Origin;

/// The special order vertices: everything else comes after `HEAD` and before `TAIL` unless an
/// `<order>` says otherwise.
pub(crate) const HEAD: &str = "HEAD";
pub(crate) const TAIL: &str = "TAIL";

/// `from` includes `to` when `cond` holds for the host.
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub(crate) graph: String,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) cond: Option<Cond>,
    pub(crate) origin: Origin,
}

/// `head`'s XML is emitted before `tail`'s.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub(crate) head: String,
    pub(crate) tail: String,
    pub(crate) origin: Origin,
}

pub(crate) fn parse_graph_file(
    roll: &str,
    file: &str,
    graph: &str,
    text: &str,
) -> Result<(Vec<Edge>, Vec<Order>), RollError> {
    let doc = vcds_xml::parse(text, &crate::node::limits())
        .map_err(|e| RollError::at(roll, file, crate::node::xml_error_line(&e), Problem::Xml(e)))?;
    let origin = |node: Node<'_, '_>| Origin {
        roll: roll.to_string(),
        file: file.to_string(),
        line: doc.text_pos_at(node.range().start).row,
    };
    let root = doc.root_element();
    if root.tag_name().name() != "graph" {
        let found = root.tag_name().name().to_string();
        return Err(origin(root).error(Problem::Root {
            found,
            expected: "graph",
        }));
    }
    let mut edges = Vec::new();
    let mut orders = Vec::new();
    for element in root.children().filter(Node::is_element) {
        let at = origin(element);
        match element.tag_name().name() {
            "edge" => {
                let cond = guard(element).map_err(|p| at.error(p))?;
                for ((from, from_cond), (to, to_cond)) in
                    ends(element, "from", "to").map_err(|p| at.error(p))?
                {
                    let cond = Cond::and(Cond::and(cond.clone(), from_cond), to_cond);
                    edges.push(Edge {
                        graph: graph.to_string(),
                        from,
                        to,
                        cond,
                        origin: at.clone(),
                    });
                }
            }
            // `gen=` restricts a constraint to one generator; ours is Rocks' kickstart one, "kgen".
            "order" if element.attribute("gen").is_none_or(|g| g == "kgen") => {
                for ((head, _), (tail, _)) in
                    ends(element, "head", "tail").map_err(|p| at.error(p))?
                {
                    orders.push(Order {
                        head,
                        tail,
                        origin: at.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok((edges, orders))
}

fn guard(node: Node<'_, '_>) -> Result<Option<Cond>, Problem> {
    let mut cond = None;
    for attribute in ["arch", "os", "release"] {
        if let Some(list) = node.attribute(attribute) {
            cond = Cond::and(cond, Cond::any_of(attribute, list));
        }
    }
    if let Some(text) = node.attribute("cond") {
        cond = Cond::and(cond, Some(Cond::parse(text)?));
    }
    Ok(cond)
}

type End = (String, Option<Cond>);

/// The pairs an `<edge>` or `<order>` names, from its attributes and its child elements.
fn ends(
    node: Node<'_, '_>,
    first: &'static str,
    second: &'static str,
) -> Result<Vec<(End, End)>, Problem> {
    let collect = |name: &'static str| -> Result<Vec<End>, Problem> {
        let mut out: Vec<End> = node
            .attribute(name)
            .map(|v| (v.trim().to_string(), None))
            .into_iter()
            .collect();
        for child in node.children().filter(|c| c.has_tag_name(name)) {
            out.push((
                child.text().unwrap_or_default().trim().to_string(),
                guard(child)?,
            ));
        }
        if out.is_empty() || out.iter().any(|(v, _)| v.is_empty()) {
            return Err(Problem::MissingAttribute {
                element: node.tag_name().name().to_string(),
                attribute: name,
            });
        }
        Ok(out)
    };
    let (firsts, seconds) = (collect(first)?, collect(second)?);
    Ok(firsts
        .iter()
        .flat_map(|a| seconds.iter().map(move |b| (a.clone(), b.clone())))
        .collect())
}

/// Vertices reachable from `root` over the edges of `graph` whose conditions hold.
pub(crate) fn reachable(
    edges: &BTreeMap<String, Vec<Edge>>,
    graph: &str,
    root: &str,
    attrs: &Attributes,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::from([root.to_string()]);
    let mut stack = vec![root];
    while let Some(vertex) = stack.pop() {
        for edge in edges.get(vertex).into_iter().flatten() {
            let live = edge.graph == graph && edge.cond.as_ref().is_none_or(|c| c.holds(attrs));
            if live && seen.insert(edge.to.clone()) {
                stack.push(&edge.to);
            }
        }
    }
    seen
}

/// Sorts every order vertex the way Rocks' `OrderIterator` does: a vertex that does not lead to
/// `HEAD` comes after it, one not reached from `TAIL` comes before it; ties break alphabetically
/// so the output is stable. A cycle is an error naming its vertices and one of its constraints.
pub(crate) fn sort_orders(orders: &[Order]) -> Result<Vec<String>, RollError> {
    let mut succ: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for v in [HEAD, TAIL].into_iter().chain(
        orders
            .iter()
            .flat_map(|o| [o.head.as_str(), o.tail.as_str()]),
    ) {
        succ.entry(v).or_default();
    }
    for o in orders {
        succ.entry(&o.head).or_default().insert(&o.tail);
    }
    // By definition; it also turns "before HEAD and after TAIL" into a reported cycle.
    succ.entry(HEAD).or_default().insert(TAIL);
    let before_head = closure(&invert(&succ), HEAD);
    let after_tail = closure(&succ, TAIL);
    let vertices: Vec<&str> = succ.keys().copied().collect();
    for &v in &vertices {
        if v != HEAD && !before_head.contains(v) {
            succ.entry(HEAD).or_default().insert(v);
        }
        if v != TAIL && !after_tail.contains(v) {
            succ.entry(v).or_default().insert(TAIL);
        }
    }
    let pred = invert(&succ);
    let mut indegree: BTreeMap<&str, usize> = pred.iter().map(|(v, p)| (*v, p.len())).collect();
    let mut ready: BTreeSet<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(v, _)| *v)
        .collect();
    let mut sorted = Vec::with_capacity(vertices.len());
    while let Some(v) = ready.pop_first() {
        sorted.push(v.to_string());
        for next in succ.get(v).into_iter().flatten() {
            if let Some(d) = indegree.get_mut(next) {
                *d -= 1;
                if *d == 0 {
                    ready.insert(next);
                }
            }
        }
    }
    if sorted.len() == vertices.len() {
        return Ok(sorted);
    }
    // Every vertex left has a predecessor that is also left, so walking predecessors must
    // revisit a vertex: that stretch of the walk is a cycle.
    let left: BTreeSet<&str> = indegree
        .iter()
        .filter(|(_, d)| **d > 0)
        .map(|(v, _)| *v)
        .collect();
    let mut walk: Vec<&str> = Vec::new();
    let mut at = left.first().copied().unwrap_or(HEAD);
    while !walk.contains(&at) {
        walk.push(at);
        at = pred
            .get(at)
            .and_then(|p| p.iter().find(|v| left.contains(*v)))
            .copied()
            .unwrap_or(at);
    }
    let start = walk.iter().position(|v| *v == at).unwrap_or(0);
    let mut cycle: Vec<String> = walk[start..].iter().rev().map(|v| v.to_string()).collect();
    let origin = cycle
        .iter()
        .zip(cycle.iter().cycle().skip(1))
        .find_map(|(a, b)| orders.iter().find(|o| &o.head == a && &o.tail == b))
        .map(|o| o.origin.clone())
        .or_else(|| orders.first().map(|o| o.origin.clone()));
    cycle.push(cycle.first().cloned().unwrap_or_default());
    Err(match origin {
        Some(o) => o.error(Problem::OrderCycle(cycle)),
        None => RollError::at("", "", 0, Problem::OrderCycle(cycle)),
    })
}

fn invert<'a>(succ: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> BTreeMap<&'a str, BTreeSet<&'a str>> {
    let mut pred: BTreeMap<&str, BTreeSet<&str>> =
        succ.keys().map(|k| (*k, BTreeSet::new())).collect();
    for (a, bs) in succ {
        for b in bs {
            pred.entry(b).or_default().insert(a);
        }
    }
    pred
}

/// Vertices reachable from `start` (itself included).
fn closure<'a>(
    adjacent: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    start: &'a str,
) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::from([start]);
    let mut stack = vec![start];
    while let Some(v) = stack.pop() {
        for n in adjacent.get(v).into_iter().flatten() {
            if seen.insert(n) {
                stack.push(n);
            }
        }
    }
    seen
}

/// The node files of one profile in emission order: the sorted order vertices that are
/// reachable, with the reachable vertices no `<order>` mentions placed at `TAIL`, alphabetically.
pub(crate) fn traversal_order(sorted: &[String], reachable: &BTreeSet<String>) -> Vec<String> {
    let ordered: BTreeSet<&str> = sorted.iter().map(String::as_str).collect();
    let mut out = Vec::with_capacity(reachable.len());
    for v in sorted {
        if v == TAIL {
            out.extend(
                reachable
                    .iter()
                    .filter(|r| !ordered.contains(r.as_str()))
                    .cloned(),
            );
        } else if reachable.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn orders(pairs: &[(&str, &str)]) -> Vec<Order> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, (h, t))| Order {
                head: h.to_string(),
                tail: t.to_string(),
                origin: Origin {
                    roll: "r".into(),
                    file: "graphs/default/g.xml".into(),
                    line: 10 + i as u32,
                },
            })
            .collect()
    }

    #[test]
    fn head_and_tail_are_honoured() {
        let o = orders(&[
            ("python", HEAD),
            ("TAIL", "install"),
            ("db", "server"),
            ("base", "db"),
        ]);
        let sorted = sort_orders(&o).unwrap();
        let reach: BTreeSet<String> = ["install", "server", "db", "zz", "aa", "python"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            traversal_order(&sorted, &reach),
            ["python", "db", "server", "aa", "zz", "install"]
        );
    }

    #[test]
    fn cycles_are_reported_with_a_constraint() {
        let o = orders(&[("a", "b"), ("b", "c"), ("c", "a"), ("x", "y")]);
        let err = sort_orders(&o).unwrap_err();
        let RollError::At { line, problem, .. } = err else {
            panic!("{err:?}")
        };
        let Problem::OrderCycle(cycle) = *problem else {
            panic!("{problem:?}")
        };
        assert_eq!(cycle.first(), cycle.last());
        assert_eq!(cycle.len(), 4);
        assert!((10..=12).contains(&line));
    }

    #[test]
    fn edge_forms() {
        let g = r#"<graph>
<edge from="a" to="b" cond="x"/>
<edge from="a"><to arch="i386">c</to><to>d</to></edge>
<edge to="e"><from>f</from></edge>
<order head="a" tail="b" gen="other"/>
<order tail="HEAD"><head>p</head></order>
</graph>"#;
        let (edges, orders) = parse_graph_file("r", "graphs/default/g.xml", "default", g).unwrap();
        let pairs: Vec<_> = edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str(), e.origin.line))
            .collect();
        assert_eq!(
            pairs,
            [("a", "b", 2), ("a", "c", 3), ("a", "d", 3), ("f", "e", 4)]
        );
        assert_eq!(orders.len(), 1);
        let attrs: Attributes = [("arch".to_string(), "x86_64".to_string())]
            .into_iter()
            .collect();
        let mut index: BTreeMap<String, Vec<Edge>> = BTreeMap::new();
        for e in edges {
            index.entry(e.from.clone()).or_default().push(e);
        }
        let r = reachable(&index, "default", "a", &attrs);
        assert_eq!(r.into_iter().collect::<Vec<_>>(), ["a", "d"]);
        assert!(
            parse_graph_file("r", "g", "default", "<graph><edge from=\"a\"/></graph>").is_err()
        );
        assert!(parse_graph_file(
            "r",
            "g",
            "default",
            "<graph><edge from=\"a\" to=\"b\" cond=\"(\"/></graph>"
        )
        .is_err());
    }
}
