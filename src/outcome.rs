//! The result of supervising one batch: a plain value handed to reporters.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::config::BatchName;
use crate::status::{Exit, Status};

/// A process found in a batch's containment, as reported to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: i32,
    /// `/proc/<pid>/cmdline` with NULs as spaces, lossily decoded; `[name]` when empty.
    pub cmdline: String,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: BatchName,
    /// Free-form classifier from the config (`ut`, `fv`), carried into JUnit.
    pub kind: Option<String>,
    pub status: Status,
    /// One line in words: why the batch has this status.
    pub reason: String,
    /// How the main process ended; `None` if it never started.
    pub exit: Option<Exit>,
    pub started: SystemTime,
    pub duration: Duration,
    pub log: PathBuf,
    /// Processes still in the batch after its main process exited (killed by warden).
    pub leaked: Vec<ProcessInfo>,
    /// Things the user should see that did not change the status.
    pub warnings: Vec<String>,
}
