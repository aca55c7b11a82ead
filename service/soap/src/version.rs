//! The two SOAP versions (1.1 and 1.2): envelope namespace and HTTP Content-Type.

use crate::ns;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SoapVersion {
    V11,
    V12,
}

impl SoapVersion {
    pub fn envelope_ns(self) -> &'static str {
        match self {
            SoapVersion::V11 => ns::SOAP11,
            SoapVersion::V12 => ns::SOAP12,
        }
    }

    /// The HTTP Content-Type of a message in this version.
    pub fn content_type(self, action: &str) -> String {
        match self {
            SoapVersion::V11 => "text/xml; charset=utf-8".to_string(),
            SoapVersion::V12 => format!("application/soap+xml; charset=utf-8; action=\"{action}\""),
        }
    }

    /// Reads the version and the SOAP 1.2 `action` parameter from a Content-Type header.
    pub fn from_content_type(content_type: &str) -> Option<(SoapVersion, Option<String>)> {
        let mut parts = content_type.split(';').map(str::trim);
        let mime = parts.next()?.to_ascii_lowercase();
        match mime.as_str() {
            "text/xml" => Some((SoapVersion::V11, None)),
            "application/soap+xml" => {
                let action = parts
                    .filter_map(|p| p.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("action"))
                    .map(|(_, v)| v.trim().trim_matches('"').to_string());
                Some((SoapVersion::V12, action))
            }
            _ => None,
        }
    }

    pub(crate) fn from_ns(uri: &str) -> Option<SoapVersion> {
        match uri {
            ns::SOAP11 => Some(SoapVersion::V11),
            ns::SOAP12 => Some(SoapVersion::V12),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            SoapVersion::from_content_type("text/xml; charset=utf-8"),
            Some((SoapVersion::V11, None))
        );
        assert_eq!(
            SoapVersion::from_content_type("application/soap+xml;charset=utf-8;action=\"urn:a\""),
            Some((SoapVersion::V12, Some("urn:a".to_string())))
        );
        assert_eq!(SoapVersion::from_content_type("application/json"), None);
    }
}
