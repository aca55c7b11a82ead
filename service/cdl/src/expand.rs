//! `cdl:extends`: prototype-based inheritance. A prototype is expanded once (its own extends
//! first, then its children's) and memoized; an extending element is merged over a copy.
//!
//! Merge rule: attributes of the extending element override; a leaf value replaces the
//! prototype's content; otherwise children are paired by element name plus their unqualified
//! `name` attribute if they have one (so keyed lists such as rolls can be extended), the k-th
//! own child with a key merging into the k-th prototype child with that key, and unmatched
//! children are appended. A reference in the extending element replaces the prototype's
//! content; a value overrides an inherited reference.

use std::collections::{BTreeMap, HashMap};

use vcds_xml::QName;

use crate::model::{Element, Location, Name};
use crate::names::Names;
use crate::CdlError;

/// Longest chain of prototypes being expanded inside one another.
const MAX_EXTENDS_DEPTH: usize = 32;
/// Deepest nesting a resolved tree may reach (extends can nest prototypes inside prototypes).
pub(crate) const MAX_RESOLVED_DEPTH: usize = 256;
/// Elements one resolution may create, so extends and references cannot blow up exponentially.
pub(crate) const MAX_ELEMENTS: usize = 500_000;

#[derive(Debug, Clone)]
struct Expanded {
    element: Element,
    height: usize,
    size: usize,
}

pub(crate) struct Expander<'p> {
    prototypes: &'p BTreeMap<Name, Element>,
    names: &'p Names,
    done: HashMap<Name, Expanded>,
    visiting: Vec<Name>,
    created: usize,
}

impl<'p> Expander<'p> {
    pub fn new(prototypes: &'p BTreeMap<Name, Element>, names: &'p Names) -> Self {
        Expander {
            prototypes,
            names,
            done: HashMap::new(),
            visiting: Vec::new(),
            created: 0,
        }
    }

    /// Counts `n` new elements against the budget.
    pub fn charge(&mut self, n: usize, at: &Location) -> Result<(), CdlError> {
        self.created += n;
        if self.created > MAX_ELEMENTS {
            return Err(CdlError::LimitExceeded {
                at: at.clone(),
                what: "number of resolved elements",
                limit: MAX_ELEMENTS,
            });
        }
        Ok(())
    }

    fn too_deep(&self, at: &Location) -> CdlError {
        CdlError::LimitExceeded {
            at: at.clone(),
            what: "resolved nesting depth",
            limit: MAX_RESOLVED_DEPTH,
        }
    }

    /// A fully expanded copy of prototype `name`, requested by the element at `at`.
    pub fn prototype(&mut self, name: &Name, at: &Location) -> Result<Element, CdlError> {
        Ok(self.expanded(name, at, 0)?.0)
    }

    /// Expands every prototype, so an unknown or cyclic extends is reported even if unused.
    pub fn check_all(&mut self) -> Result<(), CdlError> {
        for (name, raw) in self.prototypes {
            self.ensure(name, &raw.origin, 0)?;
        }
        Ok(())
    }

    /// A copy of the expanded prototype and its height. `depth` is where the copy will land, so
    /// runaway nesting stops before the stack grows.
    fn expanded(
        &mut self,
        name: &Name,
        at: &Location,
        depth: usize,
    ) -> Result<(Element, usize), CdlError> {
        self.ensure(name, at, depth)?;
        let (element, height, size) = match self.done.get(name) {
            Some(d) => (d.element.clone(), d.height, d.size),
            // ensure() has just stored it; stay total rather than panic
            None => return Err(self.unknown(name, at)),
        };
        self.charge(size, at)?;
        Ok((element, height))
    }

    fn unknown(&self, name: &Name, at: &Location) -> CdlError {
        CdlError::UnknownPrototype {
            at: at.clone(),
            name: self.names.written(name),
        }
    }

    /// Expands prototype `name` once and memoizes it.
    fn ensure(&mut self, name: &Name, at: &Location, depth: usize) -> Result<(), CdlError> {
        if self.done.contains_key(name) {
            return Ok(());
        }
        if let Some(start) = self.visiting.iter().position(|v| v == name) {
            let chain = self.visiting[start..]
                .iter()
                .chain([name])
                .map(|q| self.names.written(q))
                .collect();
            return Err(CdlError::CyclicExtends {
                at: at.clone(),
                chain,
            });
        }
        let raw = self
            .prototypes
            .get(name)
            .ok_or_else(|| self.unknown(name, at))?;
        if self.visiting.len() >= MAX_EXTENDS_DEPTH {
            return Err(CdlError::LimitExceeded {
                at: at.clone(),
                what: "depth of nested extends",
                limit: MAX_EXTENDS_DEPTH,
            });
        }
        self.visiting.push(name.clone());
        let result = self.expand_at(raw, depth);
        self.visiting.pop();
        let (element, height) = result?;
        let size = element.size();
        self.done.insert(
            name.clone(),
            Expanded {
                element,
                height,
                size,
            },
        );
        Ok(())
    }

    /// Expands every `cdl:extends` in `raw` (a system or prototype tree).
    pub fn expand(&mut self, raw: &Element) -> Result<Element, CdlError> {
        Ok(self.expand_at(raw, 0)?.0)
    }

    /// Returns the expanded element and its height, checking `depth + height` stays bounded.
    fn expand_at(&mut self, raw: &Element, depth: usize) -> Result<(Element, usize), CdlError> {
        if depth > MAX_RESOLVED_DEPTH {
            return Err(self.too_deep(&raw.origin));
        }
        self.charge(1, &raw.origin)?;
        let mut children = Vec::with_capacity(raw.children.len());
        let mut height = 1;
        for child in &raw.children {
            let (c, h) = self.expand_at(child, depth + 1)?;
            height = height.max(h + 1);
            children.push(c);
        }
        let own = Element {
            name: raw.name.clone(),
            attributes: raw.attributes.clone(),
            text: raw.text.clone(),
            children,
            reference: raw.reference.clone(),
            derived_from: Vec::new(),
            origin: raw.origin.clone(),
            extends: None,
        };
        let (element, height) = match &raw.extends {
            None => (own, height),
            Some(parent) => {
                let (mut base, base_height) = self.expanded(parent, &raw.origin, depth)?;
                base.derived_from.insert(0, parent.clone());
                merge_into(&mut base, own);
                (base, height.max(base_height))
            }
        };
        if depth + height > MAX_RESOLVED_DEPTH {
            return Err(self.too_deep(&raw.origin));
        }
        Ok((element, height))
    }
}

/// Merges `own` (the extending element, already expanded) over `base` (a prototype copy).
fn merge_into(base: &mut Element, own: Element) {
    base.name = own.name;
    base.origin = own.origin;
    for (name, value) in own.attributes {
        match base.attributes.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => base.attributes.push((name, value)),
        }
    }
    for d in own.derived_from.into_iter().rev() {
        if !base.derived_from.contains(&d) {
            base.derived_from.insert(0, d);
        }
    }
    if own.reference.is_some() {
        base.reference = own.reference;
        base.text = own.text;
        base.children = own.children;
        return;
    }
    let has_value = !own.text.trim().is_empty();
    if has_value || !own.children.is_empty() {
        base.reference = None;
    }
    if has_value {
        base.text = own.text;
        if own.children.is_empty() {
            base.children.clear();
            return;
        }
    }
    // Pair the k-th own child with key K with the k-th base child with key K: sort base positions
    // by key once, then take the next unused one in that key's run (no quadratic scan).
    let mut by_key: Vec<usize> = (0..base.children.len()).collect();
    by_key.sort_by(|&a, &b| {
        merge_key(&base.children[a])
            .cmp(&merge_key(&base.children[b]))
            .then(a.cmp(&b))
    });
    let mut taken = vec![0usize; by_key.len() + 1];
    let mut appended = Vec::new();
    for child in own.children {
        let key = merge_key(&child);
        let start = by_key.partition_point(|&i| merge_key(&base.children[i]) < key);
        let k = taken[start];
        match by_key.get(start + k) {
            Some(&i) if merge_key(&base.children[i]) == key => {
                taken[start] += 1;
                merge_into(&mut base.children[i], child);
            }
            _ => appended.push(child),
        }
    }
    base.children.extend(appended);
}

/// What identifies a child when merging: its name, and its plain `name` attribute if any.
fn merge_key(e: &Element) -> (&QName, Option<&str>) {
    let name = e
        .attributes
        .iter()
        .find(|(q, _)| q.ns.is_empty() && q.local == "name");
    (&e.name, name.map(|(_, v)| v.as_str()))
}
