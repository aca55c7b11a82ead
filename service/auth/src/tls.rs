//! Mutual TLS for actix-web with openssl: the server acceptor (client certificate required, proxy
//! certificates allowed, CRLs enforced) and the `on_connect` hook that turns the verified peer chain
//! into a [`Principal`](crate::authz::Principal) stored with the connection.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_tls::accept::openssl::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use openssl::error::ErrorStack;
use openssl::ssl::{
    SslAcceptor, SslAcceptorBuilder, SslFiletype, SslMethod, SslRef, SslVerifyMode,
};
use openssl::x509::store::X509Lookup;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509Ref, X509};
use thiserror::Error;

use crate::authz::{AuthError, Authorizer, PeerAuth, Principal};
use crate::x509::{chain_identity, dn_of};

/// Why the TLS configuration could not be built.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read trust-roots directory {}: {source}", path.display())]
    TrustDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: ErrorStack,
    },
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no PEM certificate in this CA file", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: path is not UTF-8, which OpenSSL's file loader needs", path.display())]
    NonUtf8Path { path: PathBuf },
    #[error("no CA certificates (*.pem, *.0) in trust-roots directory {}", path.display())]
    NoCas { path: PathBuf },
    #[error("TLS setup failed: {0}")]
    Ssl(#[from] ErrorStack),
}

/// What a trust-roots file holds, judged by its name as in `/etc/grid-security/certificates`.
#[derive(Debug, PartialEq, Eq)]
enum TrustFile {
    Ca,
    Crl,
}

fn classify(name: &str) -> Option<TrustFile> {
    let numbered = |suffix: &str| !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit());
    if name.ends_with(".crl.pem") {
        return Some(TrustFile::Crl);
    }
    if name.ends_with(".pem") {
        return Some(TrustFile::Ca);
    }
    let (_, ext) = name.rsplit_once('.')?;
    if numbered(ext) {
        Some(TrustFile::Ca)
    } else if ext.strip_prefix('r').is_some_and(numbered) {
        Some(TrustFile::Crl)
    } else {
        None
    }
}

/// CA certificates and CRL files found in a trust-roots directory; other files (signing
/// policies, namespaces) are ignored.
#[derive(Debug)]
pub struct TrustRoots {
    pub cas: Vec<X509>,
    pub crl_files: Vec<PathBuf>,
}

impl TrustRoots {
    pub fn load(dir: &Path) -> Result<TrustRoots, TlsError> {
        let dir_error = |source| TlsError::TrustDir {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = std::fs::read_dir(dir)
            .map_err(dir_error)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(dir_error)?;
        // Sorted so that errors and load order do not depend on directory order.
        paths.sort();
        let mut roots = TrustRoots {
            cas: Vec::new(),
            crl_files: Vec::new(),
        };
        for path in paths {
            let kind = path.file_name().and_then(|n| n.to_str()).and_then(classify);
            match kind {
                Some(TrustFile::Ca) => {
                    let pem = std::fs::read(&path).map_err(|source| TlsError::Read {
                        path: path.clone(),
                        source,
                    })?;
                    let certs = X509::stack_from_pem(&pem).map_err(|source| TlsError::File {
                        path: path.clone(),
                        source,
                    })?;
                    if certs.is_empty() {
                        return Err(TlsError::NoCertificate { path });
                    }
                    roots.cas.extend(certs);
                }
                Some(TrustFile::Crl) => roots.crl_files.push(path),
                None => {}
            }
        }
        if roots.cas.is_empty() {
            return Err(TlsError::NoCas {
                path: dir.to_path_buf(),
            });
        }
        Ok(roots)
    }
}

/// Builds the server side of mutual TLS: `cert` (PEM, may hold the chain) and its unencrypted
/// `key`, clients verified against `trust_roots` with proxy certificates allowed. If the directory
/// holds any CRL, revocation is checked for the whole chain, and then every CA needs a CRL.
/// Pass the result to `HttpServer::bind_openssl`.
pub fn server_acceptor(
    cert: &Path,
    key: &Path,
    trust_roots: &Path,
) -> Result<SslAcceptorBuilder, TlsError> {
    let roots = TrustRoots::load(trust_roots)?;
    let file_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::File { path, source }
    };
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    builder
        .set_certificate_chain_file(cert)
        .map_err(file_error(cert))?;
    builder
        .set_private_key_file(key, SslFiletype::PEM)
        .map_err(file_error(key))?;
    builder.check_private_key().map_err(file_error(key))?;

    for ca in &roots.cas {
        // Sent in the CertificateRequest so that clients holding several credentials pick one
        // this server trusts.
        builder.add_client_ca(ca)?;
        builder.cert_store_mut().add_cert(ca.clone())?;
    }
    if !roots.crl_files.is_empty() {
        // The openssl crate offers no X509_STORE_add_crl; a file lookup loads CRLs into the store.
        let lookup = builder.cert_store_mut().add_lookup(X509Lookup::file())?;
        for path in &roots.crl_files {
            let utf8 = path
                .to_str()
                .ok_or_else(|| TlsError::NonUtf8Path { path: path.clone() })?;
            lookup
                .load_crl_file(utf8, SslFiletype::PEM)
                .map_err(file_error(path))?;
        }
    }
    let mut flags = X509VerifyFlags::ALLOW_PROXY_CERTS;
    if !roots.crl_files.is_empty() {
        flags |= X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL;
    }
    builder.verify_param_mut().set_flags(flags)?;
    // Session resumption with client certificates needs a session id context; without one
    // OpenSSL fails such handshakes with an internal error.
    builder.set_session_id_context(b"vcds")?;
    // The callback keeps OpenSSL's verdict and only says why a client was refused, which the
    // client itself often cannot tell (TLS 1.3 reports it after its handshake is done).
    builder.set_verify_callback(
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        |preverified, ctx| {
            if !preverified {
                let subject = ctx
                    .current_cert()
                    .and_then(|cert| dn_of(cert.subject_name()).ok());
                tracing::warn!(
                    subject = %subject.map_or_else(String::new, |dn| dn.to_string()),
                    depth = ctx.error_depth(),
                    error = ctx.error().error_string(),
                    "client certificate refused"
                );
            }
            preverified
        },
    );
    Ok(builder)
}

/// The peer's chain as DER, leaf first. A resumed session has no verified chain, but its session
/// keeps the certificates the peer sent (which OpenSSL verified on the full handshake).
fn peer_chain(ssl: &SslRef) -> Vec<Vec<u8>> {
    let der = |cert: &X509Ref| cert.to_der().ok();
    match ssl.verified_chain() {
        Some(chain) => chain.iter().filter_map(der).collect(),
        None => {
            let leaf = ssl.peer_certificate();
            let sent = ssl.peer_cert_chain().into_iter().flatten();
            leaf.as_deref()
                .into_iter()
                .chain(sent)
                .filter_map(der)
                .collect()
        }
    }
}

/// The principal of a TLS connection.
pub fn authenticate(authorizer: &Authorizer, ssl: &SslRef) -> Result<Principal, AuthError> {
    let chain = peer_chain(ssl);
    if chain.is_empty() {
        return Err(AuthError::NoCertificate);
    }
    authorizer.authorize(&chain_identity(&chain)?)
}

/// An `HttpServer::on_connect` callback: authenticates each TLS connection once and stores the
/// outcome with it, for [`crate::authz::principal`] and the `Principal` extractor.
pub fn on_connect(
    authorizer: Arc<Authorizer>,
) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
    move |conn, extensions| {
        if let Some(tls) = conn.downcast_ref::<TlsStream<TcpStream>>() {
            let outcome = authenticate(&authorizer, tls.ssl());
            if let Err(denied) = &outcome {
                tracing::warn!(peer = ?tls.get_ref().peer_addr().ok(), "access denied: {denied}");
            }
            extensions.insert(PeerAuth(outcome));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_files_are_classified_by_name() {
        assert_eq!(classify("1fd78a04.0"), Some(TrustFile::Ca));
        assert_eq!(classify("1fd78a04.12"), Some(TrustFile::Ca));
        assert_eq!(classify("ca.pem"), Some(TrustFile::Ca));
        assert_eq!(classify("1fd78a04.r0"), Some(TrustFile::Crl));
        assert_eq!(classify("ca.crl.pem"), Some(TrustFile::Crl));
        assert_eq!(classify("1fd78a04.signing_policy"), None);
        assert_eq!(classify("1fd78a04.namespaces"), None);
        assert_eq!(classify("1fd78a04.r"), None);
        assert_eq!(classify("README"), None);
    }

    #[test]
    fn empty_trust_dir_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            TrustRoots::load(dir.path()),
            Err(TlsError::NoCas { .. })
        ));
        std::fs::write(dir.path().join("bad.0"), "not pem").expect("write");
        assert!(matches!(
            TrustRoots::load(dir.path()),
            Err(TlsError::NoCertificate { .. })
        ));
    }
}
