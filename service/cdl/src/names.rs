//! Prefixes for writing qualified names back out (messages, element paths, XML output), taken
//! from the declarations in the loaded documents, first declaration wins.

use vcds_xml::QName;

#[derive(Debug, Clone, Default)]
pub(crate) struct Names {
    /// (namespace URI, prefix); an empty prefix is the default namespace.
    prefixes: Vec<(String, String)>,
}

impl Names {
    /// Adds `(prefix, uri)` declarations; earlier ones win for both lookups.
    pub fn add(&mut self, scope: &[(String, String)]) {
        for (prefix, uri) in scope {
            if !self.prefixes.iter().any(|(u, p)| u == uri && p == prefix) {
                self.prefixes.push((uri.clone(), prefix.clone()));
            }
        }
    }

    /// A prefix for `ns`, preferring a named prefix over the default namespace.
    pub fn prefix(&self, ns: &str) -> Option<&str> {
        let mut bound = self
            .prefixes
            .iter()
            .filter(|(u, _)| u == ns)
            .map(|(_, p)| p.as_str());
        let first = bound.next()?;
        Some(if first.is_empty() {
            bound.next().unwrap_or(first)
        } else {
            first
        })
    }

    pub fn uri(&self, prefix: Option<&str>) -> Option<String> {
        let prefix = prefix.unwrap_or("");
        self.prefixes
            .iter()
            .find(|(_, p)| p == prefix)
            .map(|(u, _)| u.clone())
    }

    /// `prefix:local` when a prefix is known, the local name for no namespace, else Clark notation.
    pub fn written(&self, q: &QName) -> String {
        match (q.ns.is_empty(), self.prefix(&q.ns)) {
            (true, _) => q.local.clone(),
            (false, Some(p)) if !p.is_empty() => format!("{p}:{}", q.local),
            _ => q.clark(),
        }
    }
}
