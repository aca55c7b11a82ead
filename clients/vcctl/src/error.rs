use vcds_soap::ReceivedFault;

/// Exit statuses, as `vcctl --help` documents them.
pub mod exit {
    pub const OK: u8 = 0;
    /// The service answered with a SOAP fault.
    pub const FAULT: u8 = 1;
    /// The service could not be reached or did not answer in SOAP.
    pub const TRANSPORT: u8 = 2;
    /// `deploy`: the cluster ended failed or released instead of ready; `ssh`: the System
    /// offers no SSH access (not built yet, or the site gives none) or no host key to check.
    pub const NOT_READY: u8 = 3;
    /// The command line or a local file is wrong; nothing was sent.
    pub const USAGE: u8 = 64;
    /// `ssh`: the ssh program could not be run (not installed, no temporary directory).
    pub const UNAVAILABLE: u8 = 69;
}

/// Why a command failed; each kind has its own exit status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("fault{}: {}", .0.error_code.as_ref().map(|c| format!(" [{c}]")).unwrap_or_default(), .0.reason)]
    Fault(ReceivedFault),
    #[error("cannot talk to {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{0}")]
    Usage(String),
    /// What the command needs from the System is not there (yet).
    #[error("{0}")]
    NotReady(String),
    /// A program or file of this machine that the command needs is not usable.
    #[error("{0}")]
    Unavailable(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Fault(_) => exit::FAULT,
            Error::Transport { .. } => exit::TRANSPORT,
            Error::Usage(_) => exit::USAGE,
            Error::NotReady(_) => exit::NOT_READY,
            Error::Unavailable(_) => exit::UNAVAILABLE,
        }
    }

    /// The error as `--json` prints it on stdout.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "exit": self.exit_code(),
            "message": self.to_string(),
        });
        if let Error::Fault(f) = self {
            v["fault"] = serde_json::json!({
                "reason": f.reason,
                "error_code": f.error_code,
                "element": f.element.as_ref().map(|e| e.clark()),
                "soap_code": f.code,
            });
        }
        serde_json::json!({ "error": v })
    }
}
