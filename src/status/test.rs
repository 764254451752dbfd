//! How one test or subtest ended: what the parsers read, the reports
//! show and the history stores.

use std::fmt;

use super::Status;

/// How one test or subtest ended.
///
/// The history stores it without its payload, as a code
/// ([`code`](TestStatus::code)): an error is stored as a failure, a skip
/// without its reason ([`stored`](TestStatus::stored) is what reads back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestStatus {
    Passed,
    /// It ran and its verdict was a failure (an assertion, `not ok`).
    Failed,
    /// It did not reach a verdict: JUnit's `<error>` (a broken fixture),
    /// or cut off by what ended the batch. The string is the error's type:
    /// the batch status for a cut-off test (`timed-out`, `crashed`,
    /// `aborted`, `deadline`, `interrupted`), else what the format says.
    Error(String),
    /// Failed, then passed on a retry: the runner's own (nextest's
    /// `<flakyFailure>`, pytest-rerunfailures) or warden's; the message
    /// is the failed attempt's.
    Flaky,
    /// Skipped, with the reason if the format gives one.
    Skipped(Option<String>),
}

/// The store's codes (`results.status`); the partial index
/// `results_failing` names 2 and 3.
const PASSED: u8 = 1;
const FAILED: u8 = 2;
const FLAKY: u8 = 3;
const SKIPPED: u8 = 4;

impl TestStatus {
    /// Failed or errored: the test makes its batch fail.
    pub fn is_failure(&self) -> bool {
        matches!(self, TestStatus::Failed | TestStatus::Error(_))
    }

    pub fn is_skipped(&self) -> bool {
        matches!(self, TestStatus::Skipped(_))
    }

    /// The status of a test cut off by the batch ending with `status`
    /// (a batch that exited by itself leaves its open test `failed`).
    pub fn cut_off(status: Status) -> TestStatus {
        match status {
            Status::Passed | Status::Failed | Status::Flaky | Status::Leaked => TestStatus::Failed,
            other => TestStatus::Error(other.as_str().to_string()),
        }
    }

    /// The word for it: `passed`, `failed`, `error`, `flaky`, `skipped`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TestStatus::Passed => "passed",
            TestStatus::Failed => "failed",
            TestStatus::Error(_) => "error",
            TestStatus::Flaky => "flaky",
            TestStatus::Skipped(_) => "skipped",
        }
    }

    /// How the history stores it: 1 passed, 2 failed (an error too), 3
    /// flaky, 4 skipped.
    pub fn code(&self) -> u8 {
        match self {
            TestStatus::Passed => PASSED,
            TestStatus::Failed | TestStatus::Error(_) => FAILED,
            TestStatus::Flaky => FLAKY,
            TestStatus::Skipped(_) => SKIPPED,
        }
    }

    /// A stored [`code`](TestStatus::code) back; `None` for a code no
    /// status has.
    pub fn from_code(code: i64) -> Option<TestStatus> {
        Some(match u8::try_from(code).ok()? {
            PASSED => TestStatus::Passed,
            FAILED => TestStatus::Failed,
            FLAKY => TestStatus::Flaky,
            SKIPPED => TestStatus::Skipped(None),
            _ => return None,
        })
    }

    /// What the history keeps of it: what [`from_code`](TestStatus::from_code)
    /// gives for its [`code`](TestStatus::code).
    pub fn stored(&self) -> TestStatus {
        match self {
            TestStatus::Error(_) => TestStatus::Failed,
            TestStatus::Skipped(_) => TestStatus::Skipped(None),
            other => other.clone(),
        }
    }
}

impl fmt::Display for TestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_to_the_stored_form() {
        for s in [
            TestStatus::Passed,
            TestStatus::Failed,
            TestStatus::Error("timed-out".into()),
            TestStatus::Flaky,
            TestStatus::Skipped(Some("why".into())),
            TestStatus::Skipped(None),
        ] {
            assert_eq!(TestStatus::from_code(s.code().into()), Some(s.stored()));
        }
        assert_eq!(TestStatus::from_code(0), None);
        assert_eq!(TestStatus::from_code(2 + 256), None);
    }

    #[test]
    fn cut_off_tests_carry_the_batch_status() {
        assert_eq!(TestStatus::cut_off(Status::Leaked), TestStatus::Failed);
        assert_eq!(
            TestStatus::cut_off(Status::TimedOut),
            TestStatus::Error("timed-out".into())
        );
    }
}
