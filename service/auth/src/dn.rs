//! Distinguished names, normalized so that the OpenSSL one-line form used by Globus
//! (`/C=US/O=Grid/CN=Alice`) and the RFC 2253 form (`CN=Alice,O=Grid,C=US`) of one name compare
//! equal.

use std::fmt;

use thiserror::Error;

/// A distinguished name: (attribute type, value) pairs, most significant first (the order of the
/// one-line form). Attribute types are canonical OpenSSL short names (`CN`, `emailAddress`, …);
/// values compare exactly, as Globus does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dn(Vec<(String, String)>);

/// Why a DN string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DnError {
    #[error("empty DN")]
    Empty,
    #[error("malformed DN component {0:?}: expected TYPE=value")]
    Component(String),
    #[error("unterminated quoted value in DN")]
    UnterminatedQuote,
    #[error("bad escape sequence in DN")]
    Escape,
    #[error("hex-encoded (#…) DN values are not supported")]
    HexValue,
    #[error("DN value is not valid UTF-8")]
    Utf8,
}

/// Canonical attribute types and the spellings (lower case) that mean them; the canonical names are
/// what OpenSSL prints, and so what grid-mapfiles contain.
const TYPES: &[(&str, &[&str])] = &[
    ("C", &["c", "countryname", "2.5.4.6"]),
    ("ST", &["st", "s", "stateorprovincename", "2.5.4.8"]),
    ("L", &["l", "localityname", "2.5.4.7"]),
    ("O", &["o", "organizationname", "2.5.4.10"]),
    ("OU", &["ou", "organizationalunitname", "2.5.4.11"]),
    ("CN", &["cn", "commonname", "2.5.4.3"]),
    (
        "DC",
        &["dc", "domaincomponent", "0.9.2342.19200300.100.1.25"],
    ),
    ("UID", &["uid", "userid", "0.9.2342.19200300.100.1.1"]),
    (
        "emailAddress",
        &["e", "email", "emailaddress", "1.2.840.113549.1.9.1"],
    ),
    ("serialNumber", &["serialnumber", "2.5.4.5"]),
    ("street", &["street", "streetaddress", "2.5.4.9"]),
    ("SN", &["sn", "surname", "2.5.4.4"]),
    ("GN", &["gn", "givenname", "2.5.4.42"]),
    ("title", &["title", "t", "2.5.4.12"]),
    ("postalCode", &["postalcode", "2.5.4.17"]),
];

fn canonical_type(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    let lower = lower.strip_prefix("oid.").unwrap_or(&lower);
    TYPES
        .iter()
        .find(|(_, spellings)| spellings.contains(&lower))
        .map_or_else(
            || kind.to_string(),
            |(canonical, _)| (*canonical).to_string(),
        )
}

/// An attribute type is a keyword (`CN`, `emailAddress`) or a dotted OID.
fn is_attribute_type(kind: &str) -> bool {
    let kind = kind
        .strip_prefix("OID.")
        .or(kind.strip_prefix("oid."))
        .unwrap_or(kind);
    let mut chars = kind.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => chars.all(|c| c.is_ascii_alphanumeric() || c == '-'),
        Some(c) if c.is_ascii_digit() => kind
            .split('.')
            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit())),
        _ => false,
    }
}

/// Bytes decoded from escapes become text: UTF-8 if valid, else Latin-1, which is how OpenSSL
/// converts T61String values — so a `\xE9` written by an old tool still matches the certificate.
fn bytes_to_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|e| e.into_bytes().iter().map(|&b| char::from(b)).collect())
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    u8::try_from(digit(hi)? * 16 + digit(lo)?).ok()
}

/// Undoes OpenSSL one-line escaping: `\xHH` is a raw byte; any other backslash is literal.
fn unescape_oneline(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 4) {
            Some([b'\\', b'x', hi, lo]) => hex_pair(*hi, *lo),
            _ => None,
        };
        if let Some(byte) = escaped {
            out.push(byte);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    bytes_to_text(out)
}

/// `/C=US/O=Grid/CN=host/vcds.example.org`: a segment that does not start with `TYPE=` belongs to
/// the previous value, because Globus host DNs carry unescaped slashes.
fn parse_oneline(text: &str) -> Result<Vec<(String, String)>, DnError> {
    let mut attrs: Vec<(String, String)> = Vec::new();
    for segment in text.split('/').skip(1) {
        match segment.split_once('=') {
            Some((kind, value)) if is_attribute_type(kind) => {
                attrs.push((canonical_type(kind), unescape_oneline(value)));
            }
            _ => match attrs.last_mut() {
                Some((_, value)) => {
                    value.push('/');
                    value.push_str(&unescape_oneline(segment));
                }
                None => return Err(DnError::Component(segment.to_string())),
            },
        }
    }
    if attrs.is_empty() {
        return Err(DnError::Empty);
    }
    Ok(attrs)
}

/// RFC 2253 / RFC 4514: RDNs separated by `,` (or `;`), least significant first; multi-valued RDNs
/// joined by `+`; values quoted or backslash-escaped (`\,` or `\HH`).
fn parse_rfc2253(text: &str) -> Result<Vec<(String, String)>, DnError> {
    let bytes = text.as_bytes();
    let mut rdns: Vec<Vec<(String, String)>> = vec![Vec::new()];
    let mut i = 0;
    loop {
        let kind_start = i;
        while i < bytes.len() && !matches!(bytes[i], b'=' | b',' | b';' | b'+') {
            i += 1;
        }
        let kind = text[kind_start..i].trim();
        if bytes.get(i) != Some(&b'=') || !is_attribute_type(kind) {
            return Err(DnError::Component(text[kind_start..i].to_string()));
        }
        i += 1;
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        let mut value = Vec::new();
        // Unescaped trailing spaces are not part of the value; `keep` marks where they start.
        let mut keep = 0;
        match bytes.get(i) {
            Some(b'#') => return Err(DnError::HexValue),
            Some(b'"') => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(DnError::UnterminatedQuote),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            i += 1;
                            value.push(*bytes.get(i).ok_or(DnError::Escape)?);
                        }
                        Some(&b) => value.push(b),
                    }
                    i += 1;
                }
                i += 1;
                keep = value.len();
                while bytes.get(i) == Some(&b' ') {
                    i += 1;
                }
            }
            _ => {
                while let Some(&b) = bytes.get(i) {
                    match b {
                        b',' | b';' | b'+' => break,
                        b'\\' => {
                            let decoded = match (bytes.get(i + 1), bytes.get(i + 2)) {
                                (Some(&hi), Some(&lo)) if hex_pair(hi, lo).is_some() => {
                                    i += 3;
                                    hex_pair(hi, lo)
                                }
                                (Some(&special), _) => {
                                    i += 2;
                                    Some(special)
                                }
                                (None, _) => None,
                            };
                            value.push(decoded.ok_or(DnError::Escape)?);
                            keep = value.len();
                        }
                        _ => {
                            value.push(b);
                            i += 1;
                            if b != b' ' {
                                keep = value.len();
                            }
                        }
                    }
                }
            }
        }
        value.truncate(keep);
        let current = rdns.last_mut().ok_or(DnError::Empty)?;
        current.push((canonical_type(kind), bytes_to_text(value)));
        match bytes.get(i) {
            None => break,
            Some(b'+') => {}
            Some(b',' | b';') => rdns.push(Vec::new()),
            Some(_) => return Err(DnError::Component(text[i..].to_string())),
        }
        i += 1;
    }
    Ok(rdns.into_iter().rev().flatten().collect())
}

impl Dn {
    /// Reads a DN in either the one-line (`/`-leading) or the RFC 2253 form.
    pub fn parse(text: &str) -> Result<Dn, DnError> {
        let text = text.trim();
        if text.is_empty() {
            Err(DnError::Empty)
        } else if text.starts_with('/') {
            parse_oneline(text).map(Dn)
        } else {
            parse_rfc2253(text).map(Dn)
        }
    }

    /// Builds a DN from (type, value) pairs, most significant first; types are canonicalized.
    pub fn from_attributes<I, K, V>(attributes: I) -> Dn
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        Dn(attributes
            .into_iter()
            .map(|(kind, value)| (canonical_type(kind.as_ref()), value.into()))
            .collect())
    }

    /// The (type, value) pairs, most significant first.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(kind, value)| (kind.as_str(), value.as_str()))
    }

    /// Splits off a trailing `CN=…`: `(parent, cn)`. A proxy certificate's subject is its issuer's
    /// subject plus exactly one CN.
    pub fn split_last_cn(&self) -> Option<(Dn, &str)> {
        match self.0.split_last() {
            Some(((kind, cn), parent)) if kind == "CN" && !parent.is_empty() => {
                Some((Dn(parent.to_vec()), cn.as_str()))
            }
            _ => None,
        }
    }

    /// The RFC 2253 form (least significant first, special characters escaped).
    pub fn to_rfc2253(&self) -> String {
        let mut out = String::new();
        for (index, (kind, value)) in self.0.iter().rev().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(kind);
            out.push('=');
            let last = value.chars().count().saturating_sub(1);
            for (pos, c) in value.chars().enumerate() {
                let edge_space = c == ' ' && (pos == 0 || pos == last);
                if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
                    || edge_space
                    || (pos == 0 && c == '#')
                {
                    out.push('\\');
                    out.push(c);
                } else if c.is_control() {
                    let mut buf = [0u8; 4];
                    for byte in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\{byte:02X}"));
                    }
                } else {
                    out.push(c);
                }
            }
        }
        out
    }
}

/// The OpenSSL one-line form, as written in grid-mapfiles.
impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (kind, value) in &self.0 {
            write!(f, "/{kind}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(text: &str) -> Dn {
        Dn::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn oneline_and_rfc2253_forms_are_the_same_identity() {
        let slash = dn("/C=US/O=Grid/OU=vcds-test/CN=Alice");
        assert_eq!(slash, dn("CN=Alice,OU=vcds-test,O=Grid,C=US"));
        assert_eq!(slash, dn("cn=Alice, ou=vcds-test; o=Grid , c=US"));
        assert_eq!(slash, dn("commonName=Alice,OU=vcds-test,O=Grid,2.5.4.6=US"));
        assert_eq!(slash.to_string(), "/C=US/O=Grid/OU=vcds-test/CN=Alice");
        assert_eq!(slash.to_rfc2253(), "CN=Alice,OU=vcds-test,O=Grid,C=US");
    }

    #[test]
    fn attribute_aliases_are_canonical() {
        assert_eq!(
            dn("/DC=org/DC=doegrids/OU=People/CN=Timothy Freeman 964650/E=tf@example.org"),
            dn("emailAddress=tf@example.org,CN=Timothy Freeman 964650,OU=People,DC=doegrids,DC=org")
        );
        assert_eq!(dn("UserID=jdoe,O=Grid"), dn("/O=Grid/UID=jdoe"));
    }

    #[test]
    fn globus_host_dn_keeps_its_slash() {
        let host = dn("/O=Grid/CN=host/vcds.example.org");
        assert_eq!(
            host.attributes().last(),
            Some(("CN", "host/vcds.example.org"))
        );
        assert_eq!(host, dn("CN=host/vcds.example.org,O=Grid"));
    }

    #[test]
    fn rfc2253_escapes_quotes_and_multivalued_rdns() {
        let tricky = dn(r#"CN=Smith\, John \2B Co,O="Acme, Inc.",C=GB"#);
        assert_eq!(
            tricky.attributes().collect::<Vec<_>>(),
            [("C", "GB"), ("O", "Acme, Inc."), ("CN", "Smith, John + Co")]
        );
        assert_eq!(dn(&tricky.to_rfc2253()), tricky);
        assert_eq!(
            dn(r"CN=J\C3\BCrgen,O=Grid"),
            dn(r"/O=Grid/CN=J\xC3\xBCrgen")
        );
        assert_eq!(dn(r"/O=Grid/CN=Ren\xE9"), dn("CN=René,O=Grid"));
        assert_eq!(dn("CN=a+UID=b,O=Grid"), dn("/O=Grid/CN=a/UID=b"));
        assert_eq!(
            dn(r"CN=\ x\ ,O=Grid").attributes().last(),
            Some(("CN", " x "))
        );
        assert_eq!(dn(r"CN=\ x\ ,O=Grid").to_rfc2253(), r"CN=\ x\ ,O=Grid");
    }

    #[test]
    fn malformed_dns_are_rejected() {
        assert_eq!(Dn::parse("  "), Err(DnError::Empty));
        assert_eq!(Dn::parse("/"), Err(DnError::Component(String::new())));
        assert_eq!(Dn::parse("/Alice"), Err(DnError::Component("Alice".into())));
        assert_eq!(Dn::parse("Alice"), Err(DnError::Component("Alice".into())));
        assert_eq!(Dn::parse("CN=\"Alice"), Err(DnError::UnterminatedQuote));
        assert_eq!(Dn::parse("CN=#0403616263"), Err(DnError::HexValue));
        assert_eq!(Dn::parse("CN=a\\"), Err(DnError::Escape));
        assert_eq!(
            Dn::parse("CN=a,,O=b"),
            Err(DnError::Component(String::new()))
        );
        assert_eq!(Dn::parse("CN=\"a\"b"), Err(DnError::Component("b".into())));
    }

    /// Hostile input: random strings over the DN syntax's special characters never panic, and
    /// whatever parses survives an RFC 2253 round trip.
    #[test]
    fn random_input_never_panics_and_round_trips() {
        const ALPHABET: &[char] = &[
            '/', '=', ',', ';', '+', '"', '\\', '#', ' ', 'x', 'C', 'N', '0', 'A', 'é', '\0', '<',
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = next() % 24;
            let text: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            if let Ok(dn) = Dn::parse(&text) {
                assert_eq!(Dn::parse(&dn.to_rfc2253()), Ok(dn.clone()), "{text:?}");
            }
        }
        let long = "/CN=".to_string() + &"x/".repeat(100_000);
        assert_eq!(Dn::parse(&long).map(|dn| dn.attributes().count()), Ok(1));
    }

    #[test]
    fn proxy_name_splits_off_the_last_cn() {
        let proxy = dn("/O=Grid/CN=Alice/CN=1001");
        assert_eq!(
            proxy.split_last_cn(),
            Some((dn("/O=Grid/CN=Alice"), "1001"))
        );
        assert_eq!(dn("/CN=Alice").split_last_cn(), None);
        assert_eq!(dn("/CN=Alice/O=x").split_last_cn(), None);
    }
}
