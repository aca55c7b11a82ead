//! Writes resolved elements back out as XML. Every namespace used is declared once, on the
//! fragment's root, with the document's own prefix where it had one; elements in no namespace
//! stay unprefixed, so no default namespace is ever declared.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use vcds_xml::{escape, QName};

use crate::model::{Element, Step};
use crate::names::Names;
use crate::CDL_NS;

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

pub(crate) fn write(root: &Element, names: &Names) -> String {
    let mut used = Vec::new();
    collect_namespaces(root, &mut used, &mut HashSet::new());
    let mut taken: HashSet<String> = HashSet::new();
    let mut prefixes: HashMap<&str, String> = HashMap::new();
    let mut generated = 0;
    for ns in &used {
        let known = names
            .prefix(ns)
            .filter(|p| !p.is_empty() && !taken.contains(*p));
        let prefix = match known {
            Some(p) => p.to_string(),
            None => loop {
                generated += 1;
                let candidate = format!("ns{generated}");
                if !taken.contains(&candidate) {
                    break candidate;
                }
            },
        };
        taken.insert(prefix.clone());
        prefixes.insert(ns, prefix);
    }
    let w = Writer {
        order: used,
        prefixes,
    };
    let mut out = String::new();
    w.element(root, true, &mut out);
    out
}

/// Namespaces used in the subtree, in first-use order.
fn collect_namespaces<'e>(e: &'e Element, used: &mut Vec<&'e str>, seen: &mut HashSet<&'e str>) {
    let mut add = |ns: &'e str| {
        if !ns.is_empty() && ns != XML_NS && seen.insert(ns) {
            used.push(ns);
        }
    };
    add(&e.name.ns);
    for (a, _) in &e.attributes {
        add(&a.ns);
    }
    if let Some(r) = &e.reference {
        add(CDL_NS);
        r.root.iter().for_each(|q| add(&q.ns));
        for step in &r.path.steps {
            if let Step::Child(q) = step {
                add(&q.ns);
            }
        }
    }
    for c in &e.children {
        collect_namespaces(c, used, seen);
    }
}

struct Writer<'n> {
    /// Declaration order on the root.
    order: Vec<&'n str>,
    prefixes: HashMap<&'n str, String>,
}

impl Writer<'_> {
    fn name(&self, q: &QName) -> String {
        if q.ns == XML_NS {
            return format!("xml:{}", q.local);
        }
        match self.prefixes.get(q.ns.as_str()) {
            Some(p) => format!("{p}:{}", q.local),
            None => q.local.clone(),
        }
    }

    fn element(&self, e: &Element, root: bool, out: &mut String) {
        let name = self.name(&e.name);
        let _ = write!(out, "<{name}");
        if root {
            for ns in &self.order {
                if let Some(p) = self.prefixes.get(ns) {
                    let _ = write!(out, " xmlns:{p}=\"{}\"", escape(ns));
                }
            }
        }
        for (a, v) in &e.attributes {
            let _ = write!(out, " {}=\"{}\"", self.name(a), escape(v));
        }
        if let Some(r) = &e.reference {
            let cdl = self.name(&QName::new(CDL_NS, "ref"));
            let _ = write!(out, " {cdl}=\"{}\"", escape(&self.path(r)));
            if let Some(q) = &r.root {
                let _ = write!(
                    out,
                    " {}=\"{}\"",
                    self.name(&QName::new(CDL_NS, "refroot")),
                    escape(&self.name(q))
                );
            }
            if r.lazy {
                let _ = write!(out, " {}=\"true\"", self.name(&QName::new(CDL_NS, "lazy")));
            }
        }
        if e.children.is_empty() && e.text.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        out.push_str(&escape(&e.text));
        for c in &e.children {
            self.element(c, false, out);
        }
        let _ = write!(out, "</{name}>");
    }

    /// The path re-written with this fragment's prefixes (the document's may differ).
    fn path(&self, r: &crate::Reference) -> String {
        let steps: Vec<String> = r
            .path
            .steps
            .iter()
            .map(|s| match s {
                Step::Current => ".".to_string(),
                Step::Parent => "..".to_string(),
                Step::Child(q) => self.name(q),
            })
            .collect();
        let body = steps.join("/");
        if r.path.absolute {
            format!("/{body}")
        } else {
            body
        }
    }
}
