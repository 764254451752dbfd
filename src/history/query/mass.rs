//! Mass failures ("infrastructure failures"): runs where more than a share
//! of the tests failed, or a setup step did. Such a run says more about the
//! machine, the network or the build than about any one test, so it is
//! kept in the history and shown as such, but its results count towards
//! no flake or regression statistic.
//!
//! Decided at query time from the run's stored counts (`tests_run`,
//! `tests_failed`, `setup_failed`: migrations/*/0003), so the share is the
//! reader's choice (`--mass-failure`, `?mass_failure=`), not the writer's.

use serde::Serialize;

/// The share of a run's tests that may fail before it is a mass failure,
/// unless the reader says otherwise: more than half.
pub const DEFAULT_SHARE: f64 = 0.5;

/// The fewest tests a run must have run for the share to decide: with 4
/// tests, 3 failures are more likely 3 broken tests than a broken machine.
pub const MIN_TESTS: u64 = 5;

/// Why a run is a mass failure, with its counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MassFailure {
    /// Results that ran (passed, failed or flaky).
    pub tests_run: u64,
    /// Failed results (flaky ones passed in the end).
    pub tests_failed: u64,
    /// A setup step failed.
    pub setup_failed: bool,
}

impl MassFailure {
    /// Whether a run with these counts is a mass failure when more than
    /// `share` (0..=1) of its tests failing makes one: `tests_failed >
    /// share × tests_run` with at least [`MIN_TESTS`] run, or a failed
    /// setup step. A share of 1 or more turns the marking off (setup
    /// failures too): nothing is left out.
    pub fn decide(
        tests_run: u64,
        tests_failed: u64,
        setup_failed: bool,
        share: f64,
    ) -> Option<MassFailure> {
        // NaN (never made by the parsers) decides nothing either.
        if share.is_nan() || share >= 1.0 {
            return None;
        }
        let many = tests_run >= MIN_TESTS && tests_failed as f64 > share * tests_run as f64;
        (many || setup_failed).then_some(MassFailure {
            tests_run,
            tests_failed,
            setup_failed,
        })
    }

    /// From the stored columns (negative values, never written, as 0).
    pub(super) fn from_columns(
        tests_run: i64,
        tests_failed: i64,
        setup_failed: i64,
        share: f64,
    ) -> Option<MassFailure> {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        MassFailure::decide(n(tests_run), n(tests_failed), setup_failed > 0, share)
    }

    /// "setup failed", "41 of 50 tests failed", or both.
    pub fn describe(&self) -> String {
        let tests = format!("{} of {} tests failed", self.tests_failed, self.tests_run);
        match (self.setup_failed, self.tests_failed > 0) {
            (true, true) => format!("setup failed, {tests}"),
            (true, false) => "setup failed".to_owned(),
            (false, _) => tests,
        }
    }
}

/// A share as people write it: `50%` or `0.5`, from 0 to 100% (`100%`:
/// nothing is a mass failure).
pub fn parse_share(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, scale) = match text.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (text, 1.0),
    };
    let share = number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v / scale)
        .ok_or_else(|| format!("`{text}` is not a share: write 50% or 0.5"))?;
    if !(0.0..=1.0).contains(&share) {
        return Err(format!("`{text}` is not a share between 0% and 100%"));
    }
    Ok(share)
}

/// The SQL columns the decision reads, in [`MassFailure::from_columns`]'s order.
pub(super) const COLUMNS: &str = "runs.tests_run, runs.tests_failed, runs.setup_failed";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_the_share_of_enough_tests() {
        // 26 of 50: more than half.
        assert!(MassFailure::decide(50, 26, false, 0.5).is_some());
        // Exactly half is not more than half.
        assert_eq!(MassFailure::decide(50, 25, false, 0.5), None);
        // Too few tests for the share to say anything.
        assert_eq!(MassFailure::decide(4, 4, false, 0.5), None);
        assert!(MassFailure::decide(5, 3, false, 0.5).is_some());
        // A lower share marks more runs.
        assert!(MassFailure::decide(50, 11, false, 0.2).is_some());
        assert_eq!(MassFailure::decide(50, 10, false, 0.2), None);
        // Nothing ran.
        assert_eq!(MassFailure::decide(0, 0, false, 0.0), None);
    }

    #[test]
    fn a_failed_setup_is_one_whatever_the_tests() {
        let m = MassFailure::decide(0, 0, true, 0.5).unwrap();
        assert_eq!(m.describe(), "setup failed");
        let m = MassFailure::decide(10, 1, true, 0.5).unwrap();
        assert_eq!(m.describe(), "setup failed, 1 of 10 tests failed");
    }

    #[test]
    fn a_share_of_one_turns_it_off() {
        assert_eq!(MassFailure::decide(50, 50, true, 1.0), None);
        assert_eq!(MassFailure::decide(50, 50, true, f64::NAN), None);
    }

    #[test]
    fn describes_the_counts() {
        let m = MassFailure::decide(50, 41, false, 0.5).unwrap();
        assert_eq!(m.describe(), "41 of 50 tests failed");
    }

    #[test]
    fn negative_columns_read_as_zero() {
        assert_eq!(MassFailure::from_columns(-1, -1, 0, 0.5), None);
    }

    #[test]
    fn shares_as_percent_or_fraction() {
        assert_eq!(parse_share("50%"), Ok(0.5));
        assert_eq!(parse_share("0.5"), Ok(0.5));
        assert_eq!(parse_share("100%"), Ok(1.0));
        assert_eq!(parse_share(" 12.5 % "), Ok(0.125));
        assert_eq!(parse_share("0"), Ok(0.0));
        assert!(parse_share("150%").is_err());
        assert!(parse_share("1.5").is_err());
        assert!(parse_share("-1%").is_err());
        assert!(parse_share("half").is_err());
        assert!(parse_share("inf").is_err());
        assert!(parse_share("").is_err());
    }
}
