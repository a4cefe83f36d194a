//! The running daemon's control API: actions (reconcile, suspend, resume) as versioned JSON
//! over HTTP on `<state-dir>/control.sock` (and on TCP with a bearer token), each one a message
//! to the reconcile loop, which stays the store's one writer.

pub mod client;
pub mod server;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use server::{ControlConfig, ControlServer};

/// The socket's file name in the state directory.
pub const SOCKET: &str = "control.sock";

/// Where the daemon holding `state_dir` listens.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET)
}

/// What an operator asks the daemon to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// Observe and converge now: one environment, or all (`environment` absent). With `wait`,
    /// the answer comes after that pass.
    Reconcile {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        environment: Option<String>,
        #[serde(default)]
        wait: bool,
    },
    /// Stop writing to an environment (it is still observed, and its drift shown).
    Suspend { environment: String },
    /// Write to a suspended environment again.
    Resume { environment: String },
    /// Roll back to the last healthy deployment, or to `to` (a ledger or platform id); the
    /// environment stays pinned there until the manifest names another commit.
    Rollback {
        environment: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// Take a logical backup of an environment's database now (the manual tier).
    BackupNow { environment: String },
    /// Read a backup end to end: checksum and pg_restore.
    BackupVerify { id: String },
}

impl Action {
    /// The action's name in events and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Reconcile { .. } => "reconcile",
            Action::Suspend { .. } => "suspend",
            Action::Resume { .. } => "resume",
            Action::Rollback { .. } => "rollback",
            Action::BackupNow { .. } => "backup",
            Action::BackupVerify { .. } => "verify backup",
        }
    }

    pub fn environment(&self) -> Option<&str> {
        match self {
            Action::Reconcile { environment, .. } => environment.as_deref(),
            Action::Suspend { environment }
            | Action::Resume { environment }
            | Action::Rollback { environment, .. }
            | Action::BackupNow { environment } => Some(environment),
            Action::BackupVerify { .. } => None,
        }
    }
}

/// The daemon's answer to an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    /// False when the action was refused or failed.
    pub ok: bool,
    /// What happened and what is next, as a sentence.
    pub message: String,
    /// The event recorded for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
    /// What the action produced (the backup records of `backup now` and `backup verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Answer {
    pub fn refused(message: impl Into<String>) -> Answer {
        Answer {
            ok: false,
            message: message.into(),
            event: None,
            data: None,
        }
    }

    pub fn done(message: impl Into<String>, event: Event) -> Answer {
        Answer {
            ok: true,
            message: message.into(),
            event: Some(event),
            data: None,
        }
    }
}

pub use crate::status::Event;

/// An action on its way to the reconcile loop, with who asked and where the answer goes.
pub struct Request {
    pub action: Action,
    pub client: String,
    pub reply: oneshot::Sender<Answer>,
}

/// The loop's end of the control channel.
pub type Inbox = mpsc::Receiver<Request>;

/// Errors starting the control API or talking to it.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot listen on {path}: {source}")]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Tcp {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "refusing to serve the control API on {0} without a token: anyone who can reach that address could roll back or suspend environments (give --control-token-file, or listen on a loopback address)"
    )]
    Insecure(std::net::SocketAddr),
    #[error("cannot read the control token from {path}: {detail}")]
    Token { path: PathBuf, detail: String },
    #[error("the daemon at {at} did not answer: {detail}")]
    Unreachable { at: String, detail: String },
    #[error("the daemon at {at} refused the request ({status}): {message}")]
    Refused {
        at: String,
        status: u16,
        message: String,
    },
}
