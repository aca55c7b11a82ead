//! Resource-property documents and the WS-ResourceProperties operations on them.

use vcds_soap::ns;
use vcds_xml::{escape, serialize_element, QName};

/// One property of a resource type's RP document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyDecl {
    pub name: QName,
    /// Whether SetResourceProperties may change it.
    pub writable: bool,
    pub min: usize,
    /// `None` means unbounded.
    pub max: Option<usize>,
}

impl PropertyDecl {
    pub fn read_only(name: QName) -> Self {
        PropertyDecl {
            name,
            writable: false,
            min: 0,
            max: None,
        }
    }

    pub fn writable(name: QName, min: usize, max: Option<usize>) -> Self {
        PropertyDecl {
            name,
            writable: true,
            min,
            max,
        }
    }
}

/// The declared shape of a resource type's RP document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpSchema {
    pub root: QName,
    pub props: Vec<PropertyDecl>,
}

impl RpSchema {
    pub fn decl(&self, name: &QName) -> Option<&PropertyDecl> {
        self.props.iter().find(|p| &p.name == name)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RpError {
    #[error("{0:?} is not a valid QName here (undeclared prefix or bad syntax)")]
    BadQName(String),
    #[error("{0} is not a resource property of this resource")]
    UnknownProperty(QName),
    #[error("resource property {0} cannot be modified")]
    ReadOnly(QName),
    #[error("{op} of {name}: {reason}")]
    InvalidModification {
        op: &'static str,
        name: QName,
        reason: String,
    },
    #[error("{0} is not Insert, Update or Delete")]
    UnknownComponent(String),
}

/// One SetResourceProperties component, already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetComponent {
    Insert(QName, Vec<String>),
    Update(QName, Vec<String>),
    Delete(QName),
}

/// What a successful SetResourceProperties changed, for value-change notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub name: QName,
    pub old: Vec<String>,
    pub new: Vec<String>,
}

/// A resource's current property values, in document order; each value is one element
/// serialized standalone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpDocument {
    pub props: Vec<(QName, Vec<String>)>,
    /// When set, only these properties are built: GetResourceProperty must not pay for the
    /// whole document.
    only: Option<Vec<QName>>,
}

impl RpDocument {
    /// A document that builds only `names` (the rest are skipped by [`RpDocument::push_with`]).
    pub fn only(names: Vec<QName>) -> Self {
        RpDocument {
            props: Vec::new(),
            only: Some(names),
        }
    }

    pub fn wants(&self, name: &QName) -> bool {
        self.only.as_ref().is_none_or(|o| o.contains(name))
    }

    pub fn push(&mut self, name: QName, values: Vec<String>) {
        if self.wants(&name) {
            self.props.push((name, values));
        }
    }

    /// Adds a property whose values are computed only if the document wants it.
    pub fn push_with(&mut self, name: QName, values: impl FnOnce() -> Vec<String>) {
        if self.wants(&name) {
            self.props.push((name, values()));
        }
    }

    /// A property holding one simple-typed value.
    pub fn push_text(&mut self, name: QName, text: &str) {
        if self.wants(&name) {
            let value = element_text(&name, text);
            self.props.push((name, vec![value]));
        }
    }

    /// The values of a property; an undeclared property is an error, an empty one is not.
    pub fn get(&self, schema: &RpSchema, name: &QName) -> Result<Vec<&str>, RpError> {
        schema
            .decl(name)
            .ok_or_else(|| RpError::UnknownProperty(name.clone()))?;
        Ok(self
            .props
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.iter().map(String::as_str))
            .collect())
    }

    /// The whole document as one element.
    pub fn render(&self, schema: &RpSchema) -> String {
        let mut out = format!(
            "<rp:{} xmlns:rp=\"{}\">",
            escape(&schema.root.local),
            escape(&schema.root.ns)
        );
        for (_, values) in &self.props {
            values.iter().for_each(|v| out.push_str(v));
        }
        out.push_str(&format!("</rp:{}>", escape(&schema.root.local)));
        out
    }
}

/// `<p:local xmlns:p="ns">text</p:local>`
pub fn element_text(name: &QName, text: &str) -> String {
    format!(
        "<p:{0} xmlns:p=\"{1}\">{2}</p:{0}>",
        escape(&name.local),
        escape(&name.ns),
        escape(text)
    )
}

/// A nil element (`xsi:nil="true"`), e.g. an infinite TerminationTime.
pub fn element_nil(name: &QName) -> String {
    format!(
        "<p:{0} xmlns:p=\"{1}\" xmlns:xsi=\"{2}\" xsi:nil=\"true\"/>",
        escape(&name.local),
        escape(&name.ns),
        ns::XSI
    )
}

/// Reads the components of a `wsrf-rp:SetResourceProperties` body element.
pub fn parse_set_request(body: roxmltree::Node<'_, '_>) -> Result<Vec<SetComponent>, RpError> {
    let mut out = Vec::new();
    for c in body.children().filter(|c| c.is_element()) {
        let in_rp = c.tag_name().namespace() == Some(ns::WSRF_RP);
        let op = c.tag_name().name();
        if in_rp && op == "Delete" {
            let text = c.attribute("ResourceProperty").unwrap_or("");
            let name =
                QName::resolve_in(text, c).ok_or_else(|| RpError::BadQName(text.to_string()))?;
            out.push(SetComponent::Delete(name));
        } else if in_rp && (op == "Insert" || op == "Update") {
            let values: Vec<roxmltree::Node<'_, '_>> =
                c.children().filter(|v| v.is_element()).collect();
            let Some(first) = values.first() else {
                let name = QName::new(ns::WSRF_RP, op);
                let reason = "it holds no property element".to_string();
                return Err(RpError::InvalidModification {
                    op: if op == "Insert" { "Insert" } else { "Update" },
                    name,
                    reason,
                });
            };
            let name = QName::of(*first);
            if let Some(other) = values.iter().find(|v| QName::of(**v) != name) {
                return Err(RpError::InvalidModification {
                    op: if op == "Insert" { "Insert" } else { "Update" },
                    name,
                    reason: format!("it mixes in {}", QName::of(*other)),
                });
            }
            let values = values.iter().map(|v| serialize_element(*v)).collect();
            out.push(if op == "Insert" {
                SetComponent::Insert(name, values)
            } else {
                SetComponent::Update(name, values)
            });
        } else {
            return Err(RpError::UnknownComponent(QName::of(c).clark()));
        }
    }
    if out.is_empty() {
        return Err(RpError::UnknownComponent("an empty request".to_string()));
    }
    Ok(out)
}

/// Writable properties as stored: name and serialized values, in document order.
pub type StoredValues = Vec<(QName, Vec<String>)>;

/// Applies the components in order to the writable properties `stored`, all or nothing.
/// Returns the new stored values and one [`Change`] per property that changed.
pub fn apply_set(
    schema: &RpSchema,
    stored: &[(QName, Vec<String>)],
    components: &[SetComponent],
) -> Result<(StoredValues, Vec<Change>), RpError> {
    let mut next: Vec<(QName, Vec<String>)> = stored.to_vec();
    let mut touched: Vec<QName> = Vec::new();
    for c in components {
        let (op, name) = match c {
            SetComponent::Insert(n, _) => ("Insert", n),
            SetComponent::Update(n, _) => ("Update", n),
            SetComponent::Delete(n) => ("Delete", n),
        };
        let decl = schema
            .decl(name)
            .ok_or_else(|| RpError::UnknownProperty(name.clone()))?;
        if !decl.writable {
            return Err(RpError::ReadOnly(name.clone()));
        }
        let slot = match next.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                next.push((name.clone(), Vec::new()));
                next.len() - 1
            }
        };
        let values = &mut next[slot].1;
        match c {
            SetComponent::Insert(_, v) => values.extend(v.iter().cloned()),
            SetComponent::Update(_, v) => *values = v.clone(),
            SetComponent::Delete(_) => values.clear(),
        }
        let count = values.len();
        if count < decl.min || decl.max.is_some_and(|m| count > m) {
            let bound = decl.max.map_or("unbounded".to_string(), |m| m.to_string());
            return Err(RpError::InvalidModification {
                op,
                name: name.clone(),
                reason: format!(
                    "it would hold {count} values, allowed {}..{bound}",
                    decl.min
                ),
            });
        }
        if !touched.contains(name) {
            touched.push(name.clone());
        }
    }
    let values_of = |set: &[(QName, Vec<String>)], n: &QName| {
        set.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let changes = touched
        .into_iter()
        .map(|name| Change {
            old: values_of(stored, &name),
            new: values_of(&next, &name),
            name,
        })
        .filter(|c| c.old != c.new)
        .collect();
    next.retain(|(_, v)| !v.is_empty());
    Ok((next, changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> RpSchema {
        RpSchema {
            root: QName::new("urn:t", "Props"),
            props: vec![
                PropertyDecl::read_only(QName::new("urn:t", "Id")),
                PropertyDecl::writable(QName::new("urn:t", "Description"), 0, Some(1)),
                PropertyDecl::writable(QName::new("urn:t", "Tag"), 0, None),
            ],
        }
    }

    fn set(xml: &str) -> Result<Vec<SetComponent>, RpError> {
        let text = format!(
            r#"<rp:SetResourceProperties xmlns:rp="{}" xmlns:t="urn:t" xmlns:u="urn:t">{xml}</rp:SetResourceProperties>"#,
            ns::WSRF_RP
        );
        let doc = vcds_xml::parse(&text, &vcds_xml::Limits::default()).unwrap();
        parse_set_request(doc.root_element())
    }

    #[test]
    fn insert_update_delete_in_order() {
        let s = schema();
        let c = set("<rp:Update><t:Description>a</t:Description></rp:Update><rp:Insert><u:Tag>x</u:Tag><t:Tag>y</t:Tag></rp:Insert><rp:Delete ResourceProperty=\"u:Description\"/>").unwrap();
        let (next, changes) = apply_set(&s, &[], &c).unwrap();
        assert_eq!(next.len(), 1, "Description was deleted again: {next:?}");
        assert_eq!(next[0].1.len(), 2);
        assert_eq!(
            changes.len(),
            1,
            "Description went nowhere and back: {changes:?}"
        );
        assert_eq!(changes[0].name, QName::new("urn:t", "Tag"));
    }

    #[test]
    fn refusals_change_nothing() {
        let s = schema();
        let stored = vec![(
            QName::new("urn:t", "Tag"),
            vec!["<t:Tag xmlns:t=\"urn:t\">a</t:Tag>".to_string()],
        )];
        let c = set("<rp:Insert><t:Tag>b</t:Tag></rp:Insert><rp:Update><t:Id>7</t:Id></rp:Update>")
            .unwrap();
        assert_eq!(
            apply_set(&s, &stored, &c),
            Err(RpError::ReadOnly(QName::new("urn:t", "Id")))
        );
        let c = set("<rp:Insert><t:Description>a</t:Description><t:Description>b</t:Description></rp:Insert>").unwrap();
        assert!(matches!(
            apply_set(&s, &stored, &c),
            Err(RpError::InvalidModification { .. })
        ));
        let c = set("<rp:Insert><t:Nope>a</t:Nope></rp:Insert>").unwrap();
        assert!(matches!(
            apply_set(&s, &stored, &c),
            Err(RpError::UnknownProperty(_))
        ));
        assert!(matches!(
            set("<rp:Delete ResourceProperty=\"zz:Tag\"/>"),
            Err(RpError::BadQName(_))
        ));
        assert!(matches!(
            set("<rp:Replace/>"),
            Err(RpError::UnknownComponent(_))
        ));
        assert!(matches!(
            set("<rp:Insert><t:Tag>a</t:Tag><t:Description/></rp:Insert>"),
            Err(RpError::InvalidModification { .. })
        ));
    }

    #[test]
    fn get_distinguishes_unknown_from_empty() {
        let s = schema();
        let mut d = RpDocument::default();
        d.push_text(QName::new("urn:t", "Id"), "a<b");
        assert_eq!(
            d.get(&s, &QName::new("urn:t", "Id")).unwrap(),
            vec!["<p:Id xmlns:p=\"urn:t\">a&lt;b</p:Id>"]
        );
        assert!(d.get(&s, &QName::new("urn:t", "Tag")).unwrap().is_empty());
        assert!(d.get(&s, &QName::new("urn:other", "Id")).is_err());
        let doc = d.render(&s);
        assert!(vcds_xml::parse(&doc, &vcds_xml::Limits::default()).is_ok());
    }
}
