use std::io;

/// Everything that can go wrong while resolving, fetching, building or caching images.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid package set: {0}")]
    InvalidPackageSet(String),
    /// Packages no configured apt source holds (as a package or as something it provides).
    #[error("no apt source holds {}", .0.join(", "))]
    Unavailable(Vec<String>),
    #[error("`{cmd}` could not be started: {source}")]
    Spawn { cmd: String, source: io::Error },
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("cannot parse {what}: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Build(String),
    #[error("overlay {path}: {reason}")]
    Overlay { path: String, reason: String },
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}
