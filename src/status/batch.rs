//! How a batch (or a setup or post step) ended, as one closed set of values.

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
    /// Stopped because warden itself was asked to stop (SIGINT, SIGTERM,
    /// SIGHUP), or stopped itself (`--max-fail N:terminate`).
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

super::word_enum!(Status, "batch status");

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
