//! The one way replies and notifications are written: a small typed element tree rendered by
//! quick-xml's writer, so escaping and namespace declarations are never a call site's job.
//! Each element names its namespace; its prefix is declared on it unless an enclosing element
//! already bound the same prefix to the same namespace.

use std::io::Write as _;

use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

enum Content {
    Text(String),
    /// Already serialized XML (a stored property value, a document from another crate).
    Raw(String),
    Child(Element),
}

pub struct Element {
    prefix: String,
    ns: String,
    local: String,
    /// Extra bindings declared here, for descendants or QName values.
    declared: Vec<(String, String)>,
    attrs: Vec<(String, String)>,
    content: Vec<Content>,
}

impl Element {
    /// `<prefix:local>` in namespace `ns`.
    pub fn new(prefix: &str, ns: &str, local: &str) -> Element {
        Element {
            prefix: prefix.to_string(),
            ns: ns.to_string(),
            local: local.to_string(),
            declared: Vec::new(),
            attrs: Vec::new(),
            content: Vec::new(),
        }
    }

    /// `<prefix:local>text</prefix:local>`.
    pub fn leaf(prefix: &str, ns: &str, local: &str, text: &str) -> Element {
        Element::new(prefix, ns, local).text(text)
    }

    /// Declares `prefix` for `ns` here as well (for children or QName-valued text).
    pub fn declare(mut self, prefix: &str, ns: &str) -> Element {
        self.declared.push((prefix.to_string(), ns.to_string()));
        self
    }

    pub fn attr(mut self, name: &str, value: &str) -> Element {
        self.attrs.push((name.to_string(), value.to_string()));
        self
    }

    pub fn text(mut self, text: &str) -> Element {
        self.content.push(Content::Text(text.to_string()));
        self
    }

    /// Serialized XML taken as it is; it must declare the namespaces it uses.
    pub fn raw(mut self, xml: &str) -> Element {
        self.content.push(Content::Raw(xml.to_string()));
        self
    }

    pub fn child(mut self, child: Element) -> Element {
        self.content.push(Content::Child(child));
        self
    }

    pub fn children(mut self, children: impl IntoIterator<Item = Element>) -> Element {
        self.content
            .extend(children.into_iter().map(Content::Child));
        self
    }

    /// An optional child.
    pub fn maybe(self, child: Option<Element>) -> Element {
        match child {
            Some(c) => self.child(c),
            None => self,
        }
    }

    pub fn render(&self) -> String {
        let mut writer = Writer::new(Vec::new());
        self.write(&mut writer, &mut Vec::new());
        // Everything written is from `&str`s, so it is UTF-8.
        String::from_utf8_lossy(&writer.into_inner()).into_owned()
    }

    /// Our own trees are shallow, so this recursion is bounded by the code, not by a client.
    fn write(&self, w: &mut Writer<Vec<u8>>, scope: &mut Vec<(String, String)>) {
        let depth = scope.len();
        let name = format!("{}:{}", self.prefix, self.local);
        let mut start = BytesStart::new(name.as_str());
        for (prefix, ns) in std::iter::once((&self.prefix, &self.ns))
            .chain(self.declared.iter().map(|(p, n)| (p, n)))
        {
            let bound = scope.iter().rev().find(|(p, _)| p == prefix);
            if bound.is_none_or(|(_, n)| n != ns) {
                start.push_attribute((format!("xmlns:{prefix}").as_str(), ns.as_str()));
                scope.push((prefix.clone(), ns.clone()));
            }
        }
        for (k, v) in &self.attrs {
            start.push_attribute((k.as_str(), v.as_str()));
        }
        // Writing into a Vec cannot fail.
        if self.content.is_empty() {
            let _ = w.write_event(Event::Empty(start));
        } else {
            let _ = w.write_event(Event::Start(start));
            for c in &self.content {
                match c {
                    Content::Text(t) => {
                        let _ = w.write_event(Event::Text(BytesText::new(t)));
                    }
                    Content::Raw(xml) => {
                        let _ = w.get_mut().write_all(xml.as_bytes());
                    }
                    Content::Child(e) => e.write(w, scope),
                }
            }
            let _ = w.write_event(Event::End(BytesEnd::new(name.as_str())));
        }
        scope.truncate(depth);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declares_each_binding_once_and_escapes() {
        let xml = Element::new("a", "urn:a", "root")
            .attr("at", "x\"<y")
            .child(Element::leaf("a", "urn:a", "leaf", "1 < 2 & 3"))
            .child(Element::new("b", "urn:b", "other").child(Element::new("a", "urn:a2", "inner")))
            .child(Element::new("a", "urn:a", "raw").raw("<r:x xmlns:r=\"urn:r\"/>"))
            .render();
        assert_eq!(
            xml,
            "<a:root xmlns:a=\"urn:a\" at=\"x&quot;&lt;y\"><a:leaf>1 &lt; 2 &amp; 3</a:leaf>\
             <b:other xmlns:b=\"urn:b\"><a:inner xmlns:a=\"urn:a2\"/></b:other>\
             <a:raw><r:x xmlns:r=\"urn:r\"/></a:raw></a:root>"
        );
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}"));
        let inner = doc
            .descendants()
            .find(|n| n.has_tag_name("inner"))
            .and_then(|n| n.tag_name().namespace());
        assert_eq!(inner, Some("urn:a2"));
    }
}
