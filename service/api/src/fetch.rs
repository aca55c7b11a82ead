//! Files AddFile takes by `api:uri`: fetched only from the sources the provider allows
//! (`vcds serve --addfile-from PREFIX`), `file:` under an allowed directory or `http:` under an
//! allowed URL, never more than the AddFile size limit, never following redirects.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::faults::OpError;

/// A source AddFile may fetch from: a `file:` or `http:` URL ending in `/`.
pub fn parse_source(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "file" | "http") {
        return Err(format!(
            "{text:?}: only file: and http: sources are fetched"
        ));
    }
    if !url.path().ends_with('/') || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?}: a source is a directory URL ending in '/', without query or fragment"
        ));
    }
    Ok(url)
}

fn bad(message: String) -> OpError {
    OpError::BadArgument(message)
}

/// The bytes at `uri`, if one of `sources` allows it; at most `limit` bytes.
pub async fn fetch(sources: &[Url], uri: &str, limit: usize) -> Result<Vec<u8>, OpError> {
    // Parsing resolves `.` and `..` segments, so a traversal cannot stay under a prefix.
    let url =
        Url::parse(uri.trim()).map_err(|e| bad(format!("api:uri {uri:?} is not a URI: {e}")))?;
    if !matches!(url.scheme(), "file" | "http") {
        return Err(bad(format!(
            "api:uri scheme {:?} is not supported: vcds fetches file: and http: URIs",
            url.scheme()
        )));
    }
    let Some(source) = sources
        .iter()
        .find(|s| url.as_str().starts_with(s.as_str()))
    else {
        return Err(bad(format!(
            "api:uri {url} is not under a source this service fetches from"
        )));
    };
    let bytes = match url.scheme() {
        "file" => read_file(source, &url, limit).await?,
        _ => get(&url, limit).await?,
    };
    if bytes.len() > limit {
        return Err(bad(format!("{url} is larger than {limit} bytes")));
    }
    Ok(bytes)
}

async fn read_file(source: &Url, url: &Url, limit: usize) -> Result<Vec<u8>, OpError> {
    let (root, path) = match (source.to_file_path(), url.to_file_path()) {
        (Ok(root), Ok(path)) => (root, path),
        _ => return Err(bad(format!("{url} does not name a local file"))),
    };
    let shown = url.to_string();
    vcds_store::blocking::run(move || -> Result<Vec<u8>, OpError> {
        let unreadable = |e: std::io::Error| bad(format!("{shown} cannot be read: {e}"));
        // Symbolic links must not lead out of the allowed directory either.
        let root: PathBuf = root.canonicalize().map_err(unreadable)?;
        let path = path.canonicalize().map_err(unreadable)?;
        if !path.starts_with(&root) || !path.is_file() {
            return Err(bad(format!(
                "{shown} is not a file under {}",
                root.display()
            )));
        }
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(limit as u64 + 1).read_to_end(&mut bytes))
            .map_err(unreadable)?;
        Ok(bytes)
    })
    .await
    .map_err(|e| OpError::Unavailable(e.to_string()))?
}

async fn get(url: &Url, limit: usize) -> Result<Vec<u8>, OpError> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .max_redirects(0)
        .finish();
    let mut response = client
        .get(url.as_str())
        .send()
        .await
        .map_err(|e| bad(format!("fetching {url} failed: {e}")))?;
    if response.status() != awc::http::StatusCode::OK {
        return Err(bad(format!("fetching {url}: HTTP {}", response.status())));
    }
    let body = response
        .body()
        .limit(limit)
        .await
        .map_err(|e| bad(format!("fetching {url}: {e}")))?;
    Ok(body.to_vec())
}
