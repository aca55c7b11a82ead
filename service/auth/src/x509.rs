//! The identity behind a peer certificate chain. Grid clients present proxy certificates (RFC 3820,
//! or legacy Globus ones) signed by the user's end-entity certificate; as in Globus, the identity is
//! the end-entity certificate's subject, found by walking up from the leaf through the proxies.

use openssl::x509::{X509NameRef, X509};
use thiserror::Error;
use x509_parser::asn1_rs::{Any, Class, FromDer, Tag};
use x509_parser::certificate::X509Certificate;

use crate::dn::Dn;

/// proxyCertInfo (RFC 3820).
const OID_PROXY_CERT_INFO: &str = "1.3.6.1.5.5.7.1.14";
/// proxyCertInfo of the pre-RFC drafts, as issued by Globus Toolkit 3.
const OID_PROXY_CERT_INFO_GT3: &str = "1.3.6.1.4.1.3536.1.222";
/// Globus "limited proxy" policy language: such a proxy may not start jobs.
const OID_POLICY_LIMITED: &str = "1.3.6.1.4.1.3536.1.1.1.9";

/// The end-entity identity of a peer chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainIdentity {
    /// Subject of the end-entity certificate: the DN to authorize.
    pub subject: Dn,
    /// How many proxy certificates precede the end-entity certificate (0: no proxy).
    pub proxy_depth: usize,
    /// Some proxy in the chain is a Globus limited proxy.
    pub limited: bool,
}

/// Why a chain does not yield an identity. `index` counts from the leaf (0).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChainError {
    #[error("empty certificate chain")]
    Empty,
    #[error("certificate {index}: {reason}")]
    Unparsable { index: usize, reason: String },
    #[error("proxy certificate {index}: its issuer is not in the chain")]
    MissingIssuer { index: usize },
    #[error("proxy certificate {index}: issuer name is not the subject of certificate {}", index + 1)]
    IssuerMismatch { index: usize },
    #[error(
        "proxy certificate {index}: subject {subject} is not its issuer's subject plus one CN"
    )]
    ProxyName { index: usize, subject: Dn },
    #[error("proxy certificate {index}: the signature does not verify with its issuer's key")]
    Signature { index: usize },
    #[error(
        "proxy certificate {index}: issued by a CA certificate, not by an end entity or proxy"
    )]
    IssuerIsCa { index: usize },
    #[error("proxy certificate {index}: must not be a CA certificate")]
    ProxyIsCa { index: usize },
    #[error("proxy certificate {index}: path length constraint {limit} exceeded")]
    PathLength { index: usize, limit: u32 },
}

/// What the proxyCertInfo extension says.
#[derive(Debug, Default)]
struct ProxyInfo {
    path_len: Option<u32>,
    limited: bool,
}

/// One certificate, read by openssl (names, signatures) and x509-parser (extensions, which the
/// openssl crate cannot enumerate).
struct Cert<'a> {
    openssl: X509,
    parsed: X509Certificate<'a>,
}

/// Converts an openssl name, using OpenSSL's short names as Globus' one-line form does.
pub fn dn_of(name: &X509NameRef) -> Result<Dn, openssl::error::ErrorStack> {
    let mut attributes = Vec::new();
    for entry in name.entries() {
        let object = entry.object();
        let kind = object
            .nid()
            .short_name()
            .map_or_else(|_| object.to_string(), str::to_string);
        attributes.push((kind, entry.data().to_string()?));
    }
    Ok(Dn::from_attributes(attributes))
}

/// Reads proxyCertInfo leniently: both the RFC layout (`pCPathLenConstraint INTEGER OPTIONAL,
/// proxyPolicy SEQUENCE`) and the GT3 draft one (`proxyPolicy, [1] EXPLICIT INTEGER`).
fn parse_proxy_cert_info(value: &[u8]) -> Option<ProxyInfo> {
    let (_, outer) = Any::from_der(value).ok()?;
    if outer.tag() != Tag::Sequence {
        return None;
    }
    let mut info = ProxyInfo::default();
    let mut rest = outer.data;
    while !rest.is_empty() {
        let (next, item) = Any::from_der(rest).ok()?;
        rest = next;
        match (item.class(), item.tag()) {
            (Class::Universal, Tag::Integer) => info.path_len = Some(item.u32().ok()?),
            (Class::ContextSpecific, Tag(1)) => {
                let (_, inner) = Any::from_der(item.data).ok()?;
                info.path_len = Some(inner.u32().ok()?);
            }
            (Class::Universal, Tag::Sequence) => {
                let (_, language) = Any::from_der(item.data).ok()?;
                info.limited = language.oid().ok()?.to_id_string() == OID_POLICY_LIMITED;
            }
            _ => {}
        }
    }
    Some(info)
}

impl Cert<'_> {
    fn subject(&self, index: usize) -> Result<Dn, ChainError> {
        dn_of(self.openssl.subject_name()).map_err(|e| unparsable(index, e))
    }

    /// `Some` if this is an RFC 3820 or GT3 proxy; `Err` if its proxyCertInfo is garbled.
    fn proxy_cert_info(&self, index: usize) -> Result<Option<ProxyInfo>, ChainError> {
        let extension = self.parsed.extensions().iter().find(|ext| {
            let oid = ext.oid.to_id_string();
            oid == OID_PROXY_CERT_INFO || oid == OID_PROXY_CERT_INFO_GT3
        });
        extension
            .map(|ext| {
                parse_proxy_cert_info(ext.value).ok_or_else(|| ChainError::Unparsable {
                    index,
                    reason: "malformed proxyCertInfo extension".into(),
                })
            })
            .transpose()
    }
}

fn unparsable(index: usize, reason: impl ToString) -> ChainError {
    ChainError::Unparsable {
        index,
        reason: reason.to_string(),
    }
}

/// A legacy (GT2) proxy has no extension: its subject is its issuer's plus `CN=proxy`,
/// `CN=limited proxy` or a numeric CN, and its issuer is not a CA.
fn legacy_proxy_kind(subject: &Dn, issuer: Option<(&Cert<'_>, &Dn)>) -> Option<ProxyInfo> {
    let (issuer, issuer_subject) = issuer?;
    let (parent, cn) = subject.split_last_cn()?;
    let numeric = !cn.is_empty() && cn.bytes().all(|b| b.is_ascii_digit());
    let legacy_cn = cn == "proxy" || cn == "limited proxy" || numeric;
    (legacy_cn && &parent == issuer_subject && !issuer.parsed.is_ca()).then(|| ProxyInfo {
        path_len: None,
        limited: cn == "limited proxy",
    })
}

/// Computes the identity of a chain given leaf first (DER certificates, as from a TLS peer), and
/// checks the proxy rules on the way: each proxy is named after its issuer plus one CN, is signed
/// by it, the issuer is an end entity or another proxy, and no pCPathLenConstraint is exceeded.
/// CA trust, validity and revocation are the TLS verifier's job, not repeated here.
pub fn chain_identity<D: AsRef<[u8]>>(chain: &[D]) -> Result<ChainIdentity, ChainError> {
    if chain.is_empty() {
        return Err(ChainError::Empty);
    }
    let certs = chain
        .iter()
        .enumerate()
        .map(|(index, der)| {
            let der = der.as_ref();
            Ok(Cert {
                openssl: X509::from_der(der).map_err(|e| unparsable(index, e))?,
                parsed: X509Certificate::from_der(der)
                    .map_err(|e| unparsable(index, e))?
                    .1,
            })
        })
        .collect::<Result<Vec<_>, ChainError>>()?;
    let subjects = certs
        .iter()
        .enumerate()
        .map(|(index, cert)| cert.subject(index))
        .collect::<Result<Vec<_>, _>>()?;

    let mut limited = false;
    let mut index = 0;
    loop {
        let cert = &certs[index];
        let issuer = certs.get(index + 1).zip(subjects.get(index + 1));
        let info = match cert.proxy_cert_info(index)? {
            Some(info) => info,
            None => match legacy_proxy_kind(&subjects[index], issuer) {
                Some(info) => info,
                None => break,
            },
        };
        let (issuer, issuer_subject) = issuer.ok_or(ChainError::MissingIssuer { index })?;
        if dn_of(cert.openssl.issuer_name()).map_err(|e| unparsable(index, e))? != *issuer_subject {
            return Err(ChainError::IssuerMismatch { index });
        }
        if subjects[index]
            .split_last_cn()
            .map(|(parent, _)| parent)
            .as_ref()
            != Some(issuer_subject)
        {
            return Err(ChainError::ProxyName {
                index,
                subject: subjects[index].clone(),
            });
        }
        let key = issuer
            .openssl
            .public_key()
            .map_err(|e| unparsable(index + 1, e))?;
        if !cert.openssl.verify(&key).unwrap_or(false) {
            return Err(ChainError::Signature { index });
        }
        if issuer.parsed.is_ca() {
            return Err(ChainError::IssuerIsCa { index });
        }
        if cert.parsed.is_ca() {
            return Err(ChainError::ProxyIsCa { index });
        }
        // `index` proxies lie below this one.
        if let Some(limit) = info.path_len {
            if usize::try_from(limit).is_ok_and(|limit| index > limit) {
                return Err(ChainError::PathLength { index, limit });
            }
        }
        limited |= info.limited;
        index += 1;
    }
    Ok(ChainIdentity {
        subject: subjects[index].clone(),
        proxy_depth: index,
        limited,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_chain_has_no_identity() {
        assert_eq!(chain_identity::<Vec<u8>>(&[]), Err(ChainError::Empty));
        assert!(matches!(
            chain_identity(&[b"not DER".to_vec()]),
            Err(ChainError::Unparsable { index: 0, .. })
        ));
    }

    #[test]
    fn proxy_cert_info_layouts() {
        // SEQUENCE { INTEGER 2, SEQUENCE { OID id-ppl-inheritAll } } (RFC 3820)
        let rfc = [
            0x30, 0x0f, 0x02, 0x01, 0x02, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05,
            0x07, 0x15, 0x01,
        ];
        let info = parse_proxy_cert_info(&rfc).expect("rfc layout");
        assert_eq!((info.path_len, info.limited), (Some(2), false));
        // SEQUENCE { SEQUENCE { OID globus-limited }, [1] { INTEGER 0 } } (GT3 draft)
        let gt3 = [
            0x30, 0x14, 0x30, 0x0d, 0x06, 0x0b, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x9b, 0x50, 0x01,
            0x01, 0x01, 0x09, 0xa1, 0x03, 0x02, 0x01, 0x00,
        ];
        let info = parse_proxy_cert_info(&gt3).expect("gt3 layout");
        assert_eq!((info.path_len, info.limited), (Some(0), true));
        assert!(parse_proxy_cert_info(&[0x02, 0x01, 0x00]).is_none());
    }
}
