//! How a batch (or a setup or post step) ended, as one closed set of values.

use std::fmt;
use std::str::FromStr;

use super::Unknown;

/// The final status of a batch (DESIGN.md, "Statuses").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Passed,
    /// Exited with a non-zero code.
    Failed,
    /// Killed by a signal it did not ask for from warden.
    Crashed,
    /// Its own timeout fired.
    TimedOut,
    /// Exited but left processes behind or kept the output open, under `leak = "fail"`.
    Leaked,
    /// Stopped because its output matched a fatal pattern.
    Aborted,
    /// Stopped by the run deadline watchdog.
    Deadline,
    /// Stopped because warden itself was asked to stop (SIGINT, SIGTERM, SIGHUP).
    Interrupted,
    /// Never started: the run was stopped, or a setup step failed, first.
    NotRun,
    /// Failed, then passed on a retry.
    Flaky,
}

impl Status {
    /// Every status, in declaration order.
    pub const ALL: [Status; 10] = [
        Status::Passed,
        Status::Failed,
        Status::Crashed,
        Status::TimedOut,
        Status::Leaked,
        Status::Aborted,
        Status::Deadline,
        Status::Interrupted,
        Status::NotRun,
        Status::Flaky,
    ];

    /// The word for it: in reports, `WARDEN_*` variables and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Crashed => "crashed",
            Status::TimedOut => "timed-out",
            Status::Leaked => "leaked",
            Status::Aborted => "aborted",
            Status::Deadline => "deadline",
            Status::Interrupted => "interrupted",
            Status::NotRun => "not-run",
            Status::Flaky => "flaky",
        }
    }

    /// Passed, on the first attempt or a later one.
    pub fn is_success(self) -> bool {
        matches!(self, Status::Passed | Status::Flaky)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The word [`Status::as_str`] writes, back (a batch row of the store).
impl FromStr for Status {
    type Err = Unknown;

    fn from_str(s: &str) -> Result<Status, Unknown> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Unknown::new("batch status", s))
    }
}

impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for st in Status::ALL {
            assert_eq!(st.as_str().parse::<Status>(), Ok(st));
        }
        assert_eq!(Status::TimedOut.to_string(), "timed-out");
        assert!("timed out".parse::<Status>().is_err());
    }
}
