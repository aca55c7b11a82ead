//! The audit log: one JSON object per line, appended to a file — who (DN, account) did what
//! (action) to which resource, when, with what result.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::authz::Principal;
use crate::dn::Dn;

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// A SOAP/WSRF fault or an access denial; `code` names it (e.g. `wsrf-r:ResourceUnknownFault`,
    /// `AccessDenied`).
    Fault {
        code: String,
    },
}

/// One audited request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time: DateTime<Utc>,
    /// Caller's end-entity DN in one-line form; absent when the caller had no certificate.
    pub dn: Option<String>,
    /// Mapped local account; absent when the DN is not in the grid-mapfile.
    pub account: Option<String>,
    /// Operation or `wsa:Action`.
    pub action: String,
    /// Resource id the request addressed, if any.
    pub resource: Option<String>,
    /// Resource id the request created (a System by Create, a subscription by Subscribe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The address the request came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl AuditRecord {
    /// A record stamped now; `dn` and `account` are whatever is known of the caller (a denied
    /// caller may have a DN but no account).
    pub fn new(
        dn: Option<&Dn>,
        account: Option<&str>,
        action: &str,
        resource: Option<&str>,
        outcome: Outcome,
    ) -> AuditRecord {
        AuditRecord {
            time: Utc::now(),
            dn: dn.map(Dn::to_string),
            account: account.map(str::to_string),
            action: action.to_string(),
            resource: resource.map(str::to_string),
            created: None,
            peer: None,
            outcome,
        }
    }

    /// Notes the address the request came from.
    pub fn peer(mut self, addr: Option<std::net::SocketAddr>) -> AuditRecord {
        self.peer = addr.map(|a| a.to_string());
        self
    }

    /// Names the resource the request created.
    pub fn created(mut self, id: Option<&str>) -> AuditRecord {
        self.created = id.map(str::to_string);
        self
    }

    /// A record for an authorized caller.
    pub fn by(
        principal: &Principal,
        action: &str,
        resource: Option<&str>,
        outcome: Outcome,
    ) -> AuditRecord {
        Self::new(
            Some(&principal.dn),
            Some(&principal.account),
            action,
            resource,
            outcome,
        )
    }
}

#[derive(Debug, Error)]
pub enum AuditError {
    #[error("cannot open audit log {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write audit log {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode audit record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// An append-only JSON-lines file shared by all workers. Each record goes to the kernel in one
/// unbuffered `O_APPEND` write, so lines from concurrent writers (even other processes) do not
/// interleave and nothing is lost if vcds crashes; there is no fsync, so a machine crash may lose
/// the last records.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| AuditError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn append(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        // A panic elsewhere while holding the lock cannot leave the file half-written by us, so a
        // poisoned lock is still usable.
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(&line).map_err(|source| AuditError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_json_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let alice = Principal {
            dn: Dn::parse("/O=Grid/CN=Alice").expect("dn"),
            account: "alice".into(),
            admin: false,
            limited_proxy: false,
        };
        let created =
            AuditRecord::by(&alice, "Create", Some("portal"), Outcome::Ok).created(Some("vc-1"));
        let denied = AuditRecord::new(
            Some(&Dn::parse("CN=Mallory,O=Grid").expect("dn")),
            None,
            "Destroy",
            Some("vc-1"),
            Outcome::Fault {
                code: "AccessDenied".into(),
            },
        );
        AuditLog::open(&path)
            .expect("open")
            .append(&created)
            .expect("append");
        // Reopening appends rather than truncates.
        AuditLog::open(&path)
            .expect("reopen")
            .append(&denied)
            .expect("append");

        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let first: serde_json::Value = serde_json::from_str(lines[0]).expect("json");
        assert_eq!(first["dn"], "/O=Grid/CN=Alice");
        assert_eq!(first["account"], "alice");
        assert_eq!(first["action"], "Create");
        assert_eq!(first["resource"], "portal");
        assert_eq!(first["created"], "vc-1");
        assert_eq!(first["result"], "ok");
        let second: serde_json::Value = serde_json::from_str(lines[1]).expect("json");
        assert_eq!(second["dn"], "/O=Grid/CN=Mallory");
        assert_eq!(second["account"], serde_json::Value::Null);
        assert_eq!(second["result"], "fault");
        assert!(second.get("created").is_none(), "{second}");
        assert_eq!(second["code"], "AccessDenied");
        let parsed: AuditRecord = serde_json::from_str(lines[1]).expect("record");
        assert_eq!(parsed, denied);
    }

    #[test]
    fn open_failure_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing").join("audit.jsonl");
        let message = AuditLog::open(&path).expect_err("no dir").to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
    }
}
