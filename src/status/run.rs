//! How the whole run ended: what post steps see in `WARDEN_RUN_STATUS`,
//! what the history records, what the queries and the dashboard show.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Nothing that counts for the run failed.
    Passed,
    /// A setup step, batch or required post step did not pass, or the run
    /// itself could not write its results.
    Failed,
    /// The run deadline stopped it.
    Deadline,
    /// warden was asked to stop (SIGINT, SIGTERM, SIGHUP).
    Interrupted,
    /// Never ended: its warden was killed, or it is still going. Only the
    /// history shows it (a run without an end); no run is given it.
    Incomplete,
}

impl RunStatus {
    /// Every status, in declaration order.
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Passed,
        RunStatus::Failed,
        RunStatus::Deadline,
        RunStatus::Interrupted,
        RunStatus::Incomplete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::Deadline => "deadline",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Incomplete => "incomplete",
        }
    }
}

super::word_enum!(RunStatus, "run status");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for st in RunStatus::ALL {
            assert_eq!(st.as_str().parse::<RunStatus>(), Ok(st));
        }
        assert!("Passed".parse::<RunStatus>().is_err());
    }
}
