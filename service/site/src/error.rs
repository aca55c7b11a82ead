use std::io;
use std::time::Duration;

/// Everything that can go wrong while driving the local site.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{cmd}` could not be started: {source}")]
    Spawn { cmd: String, source: io::Error },
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("cannot parse {what}: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("invalid specification: {0}")]
    InvalidSpec(String),
    #[error("invalid GW-node specification: {0}")]
    Gateway(#[from] crate::gateway::GatewayError),
    #[error("device {dev} already exists but {reason}")]
    Conflict { dev: String, reason: String },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("no VM named {0} runs on this P-node")]
    NoSuchVm(String),
    #[error("{what} is still used by {users:?}")]
    InUse { what: String, users: Vec<String> },
    #[error(transparent)]
    Rpc(#[from] crate::rpc::RpcError),
    #[error("node disk: {0}")]
    Image(#[from] vcds_image::Error),
    #[error("QMP: {0}")]
    Qmp(String),
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("VM {vm} exited ({status}) while waiting for {what}; console ends with: {tail}")]
    VmExited {
        vm: String,
        status: String,
        what: String,
        tail: String,
    },
}
