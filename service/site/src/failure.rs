//! Why an agent could not carry out a request, as the manager reasons about it: a
//! [`FailureKind`] to act on and the agent's message for people.
//!
//! On the wire ([`crate::agent::Reply::Failed`]) a failure is
//! `{"kind": "not_found", "message": "…"}`, with the kind's own fields beside it (`command`
//! for [`FailureKind::Command`]). Agents before the kinds answered the message alone, a JSON
//! string; it still reads, as [`FailureKind::Other`]. A kind this build does not know (a newer
//! agent's) reads as `Other` too, its message intact.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What went wrong, in the terms the manager acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureKind {
    /// No such VM on the P-node (to suspend, resume or restart).
    NotFound,
    /// The request itself is wrong (a bad VM name or MAC, a GW-node spec that does not
    /// validate, a tap that is not on its cluster bridge, no installed disk to boot): sent
    /// again as it is, it fails again.
    InvalidSpec,
    /// Something of that name exists and is not what the request describes (a VM on another
    /// cluster or tap, a device of another kind or VNI).
    Conflict,
    /// The object is still in use (a cluster network with VMs on it).
    Busy,
    /// A host command failed, or could not be started, or printed what cannot be read.
    Command {
        /// The command line (or the program) that failed.
        command: String,
    },
    /// QEMU or its QMP socket: the VM exited while starting, or QMP refused.
    Qemu,
    /// Something did not happen in time (a VM's QMP socket, a VM's end, dnsmasq).
    Timeout,
    /// The VM's disk: its overlay on a base image.
    Disk,
    /// The agent's own files: its state file and state directory.
    State,
    /// Anything else, and every failure of an agent that predates the kinds.
    #[serde(other)]
    Other,
}

/// An agent's failure: its kind and the agent's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FailureWire")]
pub struct AgentFailure {
    #[serde(flatten)]
    pub kind: FailureKind,
    pub message: String,
}

impl AgentFailure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> AgentFailure {
        AgentFailure {
            kind,
            message: message.into(),
        }
    }
}

/// Says what the agent said.
impl fmt::Display for AgentFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AgentFailure {}

/// Every form a failure has had on the wire.
#[derive(Deserialize)]
#[serde(untagged)]
enum FailureWire {
    Typed {
        #[serde(flatten)]
        kind: FailureKind,
        message: String,
    },
    /// An agent before the kinds: the message alone.
    Message(String),
}

impl From<FailureWire> for AgentFailure {
    fn from(wire: FailureWire) -> AgentFailure {
        match wire {
            FailureWire::Typed { kind, message } => AgentFailure { kind, message },
            FailureWire::Message(message) => AgentFailure {
                kind: FailureKind::Other,
                message,
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        let failure = AgentFailure::new(
            FailureKind::Command {
                command: "ip link add vcbr7 type bridge".to_owned(),
            },
            "`ip link add vcbr7 type bridge` failed (exit status: 2): RTNETLINK answers: File exists",
        );
        let json = serde_json::to_string(&failure).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"command","command":"ip link add vcbr7 type bridge","message":"`ip link add vcbr7 type bridge` failed (exit status: 2): RTNETLINK answers: File exists"}"#
        );
        assert_eq!(
            serde_json::from_str::<AgentFailure>(&json).unwrap(),
            failure
        );
        let not_found = AgentFailure::new(FailureKind::NotFound, "no VM named x");
        let json = serde_json::to_string(&not_found).unwrap();
        assert_eq!(json, r#"{"kind":"not_found","message":"no VM named x"}"#);
        assert_eq!(
            serde_json::from_str::<AgentFailure>(&json).unwrap(),
            not_found
        );
        assert_eq!(not_found.to_string(), "no VM named x");
    }

    #[test]
    fn older_and_newer_agents_are_understood() {
        // An agent before the kinds.
        assert_eq!(
            serde_json::from_str::<AgentFailure>(r#""no VM named x runs on this P-node""#).unwrap(),
            AgentFailure::new(FailureKind::Other, "no VM named x runs on this P-node")
        );
        // A kind from a newer agent.
        assert_eq!(
            serde_json::from_str::<AgentFailure>(
                r#"{"kind":"out_of_memory","needed_mib":512,"message":"no room"}"#
            )
            .unwrap(),
            AgentFailure::new(FailureKind::Other, "no room")
        );
        // Neither.
        assert!(serde_json::from_str::<AgentFailure>(r#"{"kind":"busy"}"#).is_err());
        assert!(serde_json::from_str::<AgentFailure>("42").is_err());
    }
}
