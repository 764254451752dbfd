//! The result of supervising one batch: a plain value handed to reporters.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::config::BatchName;
use crate::phase::Phase;
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
    pub phase: Phase,
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
    /// Output that explains the status: for `aborted`, the matching line and
    /// the lines before it.
    pub excerpt: Option<String>,
    /// Earlier attempts that failed and were retried, oldest first.
    pub retried: Vec<Attempt>,
    /// Set on a failing batch the quarantine list covers: why (reason and
    /// issue). Its failure is reported but does not fail the run.
    pub quarantined: Option<String>,
    /// Tests and subtests read from its output (`format`), in the order
    /// they finished; empty for `format = "none"`.
    pub tests: Vec<crate::parsers::TestResult>,
    /// What the test output said is wrong beyond single tests (a TAP plan
    /// not met, `Bail out!`, a missing summary line).
    pub test_problems: Vec<String>,
    /// Failing tests the quarantine list covers: (test name, why).
    pub quarantined_tests: Vec<(String, String)>,
    /// Its artifacts could not be written (a full or read-only
    /// filesystem): what happened. A run-level error, not the batch's.
    pub artifacts_error: Option<String>,
    /// What it used (its last attempt), when it ran.
    pub usage: Option<crate::usage::Usage>,
}

impl Outcome {
    /// A unit that has not run (yet): `status` and `reason` say why, every
    /// other field is empty.
    pub fn new(
        name: BatchName,
        phase: Phase,
        kind: Option<String>,
        log: PathBuf,
        status: Status,
        reason: String,
    ) -> Outcome {
        Outcome {
            name,
            phase,
            kind,
            status,
            reason,
            exit: None,
            started: SystemTime::now(),
            duration: Duration::ZERO,
            log,
            leaked: Vec::new(),
            warnings: Vec::new(),
            excerpt: None,
            retried: Vec::new(),
            quarantined: None,
            tests: Vec::new(),
            test_problems: Vec::new(),
            quarantined_tests: Vec::new(),
            artifacts_error: None,
            usage: None,
        }
    }
}

/// One failed attempt of a batch that was run again.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: Status,
    pub reason: String,
    pub duration: Duration,
    /// `<batch>.attempt-N.log`.
    pub log: PathBuf,
    /// Tests that failed in this attempt: (name, message).
    pub failed_tests: Vec<(String, String)>,
}
