//! `cdl:ref` resolution. Runs after extends, on the final tree, so a reference inherited from a
//! prototype is evaluated where the copy landed. Resolution goes in passes: a reference is
//! filled in once its target holds no unresolved reference; a pass that fills nothing means
//! a cycle. Lazy references are left in place for deployment time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use vcds_xml::QName;

use crate::expand::Expander;
use crate::model::{Element, Location, Name, Reference, Step};
use crate::names::Names;
use crate::CdlError;

/// Bounds the number of passes, i.e. the longest chain of references through references.
const MAX_REFERENCE_CHAIN: usize = 64;

/// Which tree a location is in: the system, or a prototype named by `cdl:refroot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tree {
    System,
    Root(Name),
}

/// The trees references can reach.
#[derive(Debug, Clone)]
pub(crate) struct Space {
    pub system: Element,
    pub roots: BTreeMap<Name, Element>,
}

/// Elements with more children than this get a name index when references are resolved.
const WIDE: usize = 16;

/// First-child-by-name indexes of wide elements, built on first use while the trees are not
/// changing (one pass), so a thousand references into a thousand siblings stay linear.
#[derive(Default)]
pub(crate) struct ChildIndex<'s> {
    by_parent: HashMap<*const Element, HashMap<&'s QName, usize>>,
}

impl<'s> ChildIndex<'s> {
    fn first(&mut self, parent: &'s Element, name: &QName) -> Option<usize> {
        let key: *const Element = parent;
        let names = self.by_parent.entry(key).or_insert_with(|| {
            let mut names = HashMap::with_capacity(parent.children.len());
            for (i, c) in parent.children.iter().enumerate() {
                names.entry(&*c.name).or_insert(i);
            }
            names
        });
        names.get(name).copied()
    }
}

/// Why a path could not be followed; turned into the caller's error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Miss {
    Dangling(String),
    UnknownRoot(Name),
}

impl Space {
    pub fn tree(&self, tree: &Tree) -> Option<&Element> {
        match tree {
            Tree::System => Some(&self.system),
            Tree::Root(q) => self.roots.get(q),
        }
    }

    fn tree_mut(&mut self, tree: &Tree) -> Option<&mut Element> {
        match tree {
            Tree::System => Some(&mut self.system),
            Tree::Root(q) => self.roots.get_mut(q),
        }
    }

    pub fn node(&self, tree: &Tree, at: &[usize]) -> Option<&Element> {
        at.iter()
            .try_fold(self.tree(tree)?, |e, &i| e.children.get(i))
    }

    fn node_mut(&mut self, tree: &Tree, at: &[usize]) -> Option<&mut Element> {
        at.iter()
            .try_fold(self.tree_mut(tree)?, |e, &i| e.children.get_mut(i))
    }

    /// Follows `reference`, written on the element at `(tree, at)`. Relative paths start at
    /// that element's parent (its siblings are the names in scope), absolute ones at the tree's
    /// root; with `cdl:refroot` both start at that prototype.
    pub fn locate<'s>(
        &'s self,
        tree: &Tree,
        at: &[usize],
        reference: &Reference,
        mut index: Option<&mut ChildIndex<'s>>,
    ) -> Result<(Tree, Vec<usize>), Miss> {
        let (tree, mut loc) = match (&reference.root, reference.path.absolute) {
            (Some(root), _) => {
                let t = Tree::Root(root.clone());
                if self.tree(&t).is_none() {
                    return Err(Miss::UnknownRoot(root.clone()));
                }
                (t, Vec::new())
            }
            (None, true) => (tree.clone(), Vec::new()),
            (None, false) => match at.split_last() {
                Some((_, parent)) => (tree.clone(), parent.to_vec()),
                None => {
                    return Err(Miss::Dangling(
                        "a relative path on the root has no parent to start from".into(),
                    ))
                }
            },
        };
        for step in &reference.path.steps {
            match step {
                Step::Current => {}
                Step::Parent => {
                    if loc.pop().is_none() {
                        return Err(Miss::Dangling("\"..\" goes above the root".into()));
                    }
                }
                Step::Child(name) => {
                    let node = self
                        .node(&tree, &loc)
                        .ok_or_else(|| Miss::Dangling("location vanished".into()))?;
                    let found = match index.as_deref_mut() {
                        Some(ix) if node.children.len() > WIDE => ix.first(node, name),
                        _ => node.children.iter().position(|c| *c.name == *name),
                    };
                    let i = found.ok_or_else(|| {
                        Miss::Dangling(format!("no element {} inside {}", name, node.origin.path))
                    })?;
                    loc.push(i);
                }
            }
        }
        Ok((tree, loc))
    }
}

/// A reference still to fill in: the element carrying it.
struct Pending<'s> {
    tree: Tree,
    at: Vec<usize>,
    reference: &'s Reference,
    origin: &'s Location,
}

fn collect_pending<'s>(
    tree: &Tree,
    element: &'s Element,
    at: &mut Vec<usize>,
    out: &mut Vec<Pending<'s>>,
) {
    if let Some(reference) = element.reference.as_ref().filter(|r| !r.lazy) {
        out.push(Pending {
            tree: tree.clone(),
            at: at.clone(),
            reference,
            origin: &element.origin,
        });
    }
    for (i, child) in element.children.iter().enumerate() {
        at.push(i);
        collect_pending(tree, child, at, out);
        at.pop();
    }
}

fn has_pending(element: &Element) -> bool {
    element.reference.as_ref().is_some_and(|r| !r.lazy) || element.children.iter().any(has_pending)
}

/// Adds (expanded) every prototype named by a `cdl:refroot` reachable from the trees so far.
pub(crate) fn add_refroots(space: &mut Space, expander: &mut Expander<'_>) -> Result<(), CdlError> {
    let mut wanted: Vec<(Name, Arc<Location>)> = Vec::new();
    let mut scanned = 0;
    let mut trees = vec![Tree::System];
    while scanned < trees.len() {
        if let Some(t) = space.tree(&trees[scanned]) {
            collect_roots(t, &mut wanted);
        }
        scanned += 1;
        while let Some((name, at)) = wanted.pop() {
            if space.roots.contains_key(&name) {
                continue;
            }
            let element = expander.prototype(&name, &at)?;
            space.roots.insert(name.clone(), element);
            trees.push(Tree::Root(name));
        }
    }
    Ok(())
}

fn collect_roots(element: &Element, out: &mut Vec<(Name, Arc<Location>)>) {
    if let Some(root) = element.reference.as_ref().and_then(|r| r.root.as_ref()) {
        out.push((root.clone(), element.origin.clone()));
    }
    for child in &element.children {
        collect_roots(child, out);
    }
}

fn dangling(p: &Pending, miss: Miss, names: &Names) -> CdlError {
    match miss {
        Miss::Dangling(reason) => CdlError::DanglingReference {
            at: (*p.origin).clone(),
            path: p.reference.path.text.clone(),
            reason,
        },
        Miss::UnknownRoot(q) => CdlError::UnknownPrototype {
            at: (*p.origin).clone(),
            name: names.written(&q),
        },
    }
}

/// Fills in every non-lazy reference in the space.
pub(crate) fn resolve_references(
    space: &mut Space,
    expander: &mut Expander<'_>,
    names: &Names,
) -> Result<(), CdlError> {
    let trees: Vec<Tree> = std::iter::once(Tree::System)
        .chain(space.roots.keys().cloned().map(Tree::Root))
        .collect();
    for _ in 0..MAX_REFERENCE_CHAIN {
        let mut pending = Vec::new();
        for tree in &trees {
            if let Some(t) = space.tree(tree) {
                collect_pending(tree, t, &mut Vec::new(), &mut pending);
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        let mut writes = Vec::new();
        let mut index = ChildIndex::default();
        for p in &pending {
            let (tree, loc) = space
                .locate(&p.tree, &p.at, p.reference, Some(&mut index))
                .map_err(|m| dangling(p, m, names))?;
            if tree == p.tree && p.at.starts_with(&loc) {
                let chain = vec![p.origin.path.clone(), p.origin.path.clone()];
                return Err(CdlError::CyclicReference {
                    at: (*p.origin).clone(),
                    chain,
                });
            }
            let target = space
                .node(&tree, &loc)
                .ok_or_else(|| dangling(p, Miss::Dangling("location vanished".into()), names))?;
            if target.reference.as_ref().is_some_and(|r| r.lazy) {
                return Err(CdlError::LazyTarget {
                    at: (*p.origin).clone(),
                    path: p.reference.path.text.clone(),
                });
            }
            // Charged even when the target is not ready yet: inspecting it is work too.
            expander.charge(target.size(), p.origin)?;
            if !has_pending(target) {
                writes.push((
                    p.tree.clone(),
                    p.at.clone(),
                    target.text.clone(),
                    target.children.clone(),
                ));
            }
        }
        if writes.is_empty() {
            return Err(cycle(space, &pending));
        }
        for (tree, at, text, children) in writes {
            if let Some(node) = space.node_mut(&tree, &at) {
                node.text = text;
                node.children = children;
                node.reference = None;
            }
        }
    }
    let at = space.system.origin.as_ref().clone();
    Err(CdlError::LimitExceeded {
        at,
        what: "length of a chain of references",
        limit: MAX_REFERENCE_CHAIN,
    })
}

/// Every pending reference waits on another one: walk the waits from the first until one
/// repeats and report that loop.
fn cycle(space: &Space, pending: &[Pending]) -> CdlError {
    let mut seen: Vec<usize> = Vec::new();
    let mut current = 0;
    // Bounded walk: beyond that many hops report the chain so far rather than search on.
    for _ in 0..=MAX_REFERENCE_CHAIN {
        if let Some(start) = seen.iter().position(|&s| s == current) {
            let mut chain: Vec<String> = seen[start..]
                .iter()
                .map(|&i| pending[i].origin.path.clone())
                .collect();
            chain.push(pending[current].origin.path.clone());
            let first = &pending[seen[start]];
            return CdlError::CyclicReference {
                at: (*first.origin).clone(),
                chain,
            };
        }
        seen.push(current);
        let waits_on = space
            .locate(
                &pending[current].tree,
                &pending[current].at,
                pending[current].reference,
                None,
            )
            .ok()
            .and_then(|(tree, loc)| {
                pending
                    .iter()
                    .position(|q| q.tree == tree && q.at.starts_with(&loc))
            });
        match waits_on {
            Some(next) => current = next,
            None => break,
        }
    }
    let chain = seen
        .iter()
        .map(|&i| pending[i].origin.path.clone())
        .collect();
    CdlError::CyclicReference {
        at: (*pending[0].origin).clone(),
        chain,
    }
}
