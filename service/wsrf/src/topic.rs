//! WS-Topics expressions in the Simple and Concrete dialects.

use vcds_xml::QName;

pub const SIMPLE: &str = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple";
pub const CONCRETE: &str = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopicError {
    #[error("topic expression dialect {0:?} is not supported; use the Simple or Concrete dialect")]
    DialectUnknown(String),
    #[error("{0:?} is not a valid topic expression in this dialect")]
    Invalid(String),
    #[error("topic {0} is not supported by this producer")]
    NotSupported(String),
}

/// Resolves a topic expression to one of `topics` (vcds has only root topics, so a Concrete
/// path with child topics names nothing here).
pub fn resolve(
    dialect: &str,
    text: &str,
    context: roxmltree::Node<'_, '_>,
    topics: &[QName],
) -> Result<QName, TopicError> {
    let text = text.trim();
    let root = match dialect.trim() {
        SIMPLE => text,
        CONCRETE => {
            let mut steps = text.split('/');
            let root = steps.next().unwrap_or("");
            if let Some(child) = steps.next() {
                return Err(if child.is_empty() {
                    TopicError::Invalid(text.to_string())
                } else {
                    TopicError::NotSupported(text.to_string())
                });
            }
            root
        }
        other => return Err(TopicError::DialectUnknown(other.to_string())),
    };
    if root.contains(['*', '|', '/']) || !root.contains(':') {
        return Err(TopicError::Invalid(text.to_string()));
    }
    let name =
        QName::resolve_in(root, context).ok_or_else(|| TopicError::Invalid(text.to_string()))?;
    topics
        .iter()
        .find(|t| **t == name)
        .cloned()
        .ok_or_else(|| TopicError::NotSupported(name.clark()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects() {
        let doc = vcds_xml::parse(
            r#"<t xmlns:a="urn:a" xmlns:b="urn:a"/>"#,
            &vcds_xml::Limits::default(),
        )
        .unwrap();
        let ctx = doc.root_element();
        let topics = [QName::new("urn:a", "State")];
        assert_eq!(
            resolve(SIMPLE, " b:State ", ctx, &topics),
            Ok(topics[0].clone())
        );
        assert_eq!(
            resolve(CONCRETE, "a:State", ctx, &topics),
            Ok(topics[0].clone())
        );
        assert!(matches!(
            resolve(CONCRETE, "a:State/a:Sub", ctx, &topics),
            Err(TopicError::NotSupported(_))
        ));
        assert!(matches!(
            resolve(SIMPLE, "a:Other", ctx, &topics),
            Err(TopicError::NotSupported(_))
        ));
        assert!(matches!(
            resolve(SIMPLE, "zz:State", ctx, &topics),
            Err(TopicError::Invalid(_))
        ));
        assert!(matches!(
            resolve(SIMPLE, "a:*", ctx, &topics),
            Err(TopicError::Invalid(_))
        ));
        assert!(matches!(
            resolve("urn:bogus", "a:State", ctx, &topics),
            Err(TopicError::DialectUnknown(_))
        ));
    }
}
