//! The TLS side of `--cert`, `--key` and `--ca`, read with OpenSSL: it reads every key format
//! grid tools write (PKCS#1, PKCS#8, SEC1) and the Globus proxy layout (proxy certificate, its
//! key, then the issuing chain, all in one file).

use std::path::{Path, PathBuf};

use openssl::pkey::PKey;
use openssl::x509::X509;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use crate::error::Error;

/// The TLS options of the command line.
#[derive(Debug, Default)]
pub struct Options {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
}

impl Options {
    pub fn any(&self) -> bool {
        self.cert.is_some() || self.key.is_some() || self.ca.is_some()
    }

    /// The TLS configuration; OpenSSL underneath (native-tls), as on the server.
    pub fn config(&self) -> Result<TlsConfig, Error> {
        let roots = match &self.ca {
            Some(ca) => RootCerts::new_with_certs(&trust_roots(ca)?),
            None => RootCerts::PlatformVerifier,
        };
        let client_cert = match &self.cert {
            Some(cert) => Some(client_cert(cert, self.key.as_deref().unwrap_or(cert))?),
            None => None,
        };
        Ok(TlsConfig::builder()
            .provider(TlsProvider::NativeTls)
            .root_certs(roots)
            .client_cert(client_cert)
            .build())
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Usage(format!("cannot read the {what} {}: {e}", path.display())))
}

/// The certificates in a PEM file, in file order; other PEM blocks (a key) are skipped.
fn certificates(path: &Path, what: &str) -> Result<Vec<X509>, Error> {
    X509::stack_from_pem(&read(path, what)?).map_err(|e| {
        Error::Usage(format!(
            "the {what} {} is not PEM certificates: {e}",
            path.display()
        ))
    })
}

fn to_ureq(certs: &[X509], path: &Path) -> Result<Vec<Certificate<'static>>, Error> {
    certs
        .iter()
        .map(|c| {
            c.to_der()
                .map(|der| Certificate::from_der(&der).to_owned())
                .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
        })
        .collect()
}

/// `--ca`: a PEM file of CA certificates, or a trust-roots directory in the layout of
/// /etc/grid-security/certificates (`HASH.0`, `*.pem`; CRLs and signing policies are skipped).
fn trust_roots(ca: &Path) -> Result<Vec<Certificate<'static>>, Error> {
    let mut certs = Vec::new();
    if ca.is_dir() {
        let entries = std::fs::read_dir(ca)
            .map_err(|e| Error::Usage(format!("cannot read {}: {e}", ca.display())))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| x == "pem" || x.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect();
        files.sort();
        for file in files {
            // A `*.crl.pem` holds no certificate: nothing to add, nothing wrong.
            match certificates(&file, "CA certificate file") {
                Ok(found) => certs.extend(to_ureq(&found, &file)?),
                Err(e) => tracing::debug!("{e}"),
            }
        }
    } else {
        certs = to_ureq(&certificates(ca, "CA certificate file")?, ca)?;
    }
    if certs.is_empty() {
        return Err(Error::Usage(format!(
            "no CA certificate in {}",
            ca.display()
        )));
    }
    Ok(certs)
}

/// `--cert` (the leaf first, then its chain) and `--key` (any PEM private key; by default the
/// one in the certificate file, as in a Globus proxy file).
fn client_cert(cert: &Path, key: &Path) -> Result<ClientCert, Error> {
    let chain = certificates(cert, "certificate file")?;
    let leaf = chain
        .first()
        .ok_or_else(|| Error::Usage(format!("no certificate in {}", cert.display())))?;
    let key_pem = read(key, "key file")?;
    let pkey = PKey::private_key_from_pem(&key_pem).map_err(|e| {
        Error::Usage(format!(
            "no unencrypted private key in {}: {e}",
            key.display()
        ))
    })?;
    let matches = leaf
        .public_key()
        .map(|public| public.public_eq(&pkey))
        .unwrap_or(false);
    if !matches {
        return Err(Error::Usage(format!(
            "the key in {} is not the key of the first certificate in {}",
            key.display(),
            cert.display()
        )));
    }
    // native-tls takes PKCS#8 only.
    let key_error = |e: String| Error::Usage(format!("{}: {e}", key.display()));
    let pkcs8 = pkey
        .private_key_to_pem_pkcs8()
        .map_err(|e| key_error(e.to_string()))?;
    let private_key = PrivateKey::from_pem(&pkcs8).map_err(|e| key_error(e.to_string()))?;
    Ok(ClientCert::new_with_certs(
        &to_ureq(&chain, cert)?,
        private_key,
    ))
}
