//! `warden regressed`: tests that were passing and now fail consistently.
//!
//! The rule, per sequence of one test's results under one full label set
//! (oldest first, skipped left out): its last `min_failures` or more
//! results are all `failed`, and a passing result (passed, or flaky: it
//! passed on a retry) comes before them. A test failing since its first
//! result in the window is not listed: nothing says it ever passed.

use std::time::SystemTime;

use serde::Serialize;

use super::sequences::{Run, Sequence, Window, failing};
use super::{Filter, Result, serialize_time, time};
use crate::history::Db;
use crate::status::TestStatus;

/// One regression: a test under one label set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    pub test: String,
    /// The runs' labels, `k=v k=v`.
    pub labels: String,
    /// How many `failed` results in a row, up to the latest.
    pub failures: u64,
    pub last_pass: RunRef,
    pub first_failure: RunRef,
}

/// A run, as a regression names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRef {
    #[serde(serialize_with = "serialize_time")]
    pub time: SystemTime,
    pub commit: Option<String>,
    /// The run's uuid.
    pub run: String,
}

impl RunRef {
    fn new(run: &Run) -> RunRef {
        RunRef {
            time: time(run.started),
            commit: run.commit.clone(),
            run: run.uuid.clone(),
        }
    }
}

/// Regressions in `filter`'s runs, longest failing streak first, then by
/// test name and labels.
pub async fn regressed(db: &Db, filter: &Filter, min_failures: usize) -> Result<Vec<Regression>> {
    let (window, sequences) = failing(db, filter, &[]).await?;
    Ok(regressions(&window, &sequences, min_failures))
}

fn regressions(window: &Window, sequences: &[Sequence], min_failures: usize) -> Vec<Regression> {
    let mut found: Vec<Regression> = sequences
        .iter()
        .filter_map(|seq| {
            let results: Vec<&(usize, TestStatus)> = seq
                .results
                .iter()
                .filter(|(_, s)| !s.is_skipped())
                .collect();
            let statuses: Vec<TestStatus> = results.iter().map(|(_, s)| s.clone()).collect();
            // `pass` is followed by the streak's first failure.
            let (streak, pass) = trailing_failures(&statuses, min_failures)?;
            Some(Regression {
                test: seq.test.clone(),
                labels: seq.labels.clone(),
                failures: streak as u64,
                last_pass: RunRef::new(&window.runs[results[pass].0]),
                first_failure: RunRef::new(&window.runs[results[pass + 1].0]),
            })
        })
        .collect();
    found.sort_by(|a, b| {
        b.failures
            .cmp(&a.failures)
            .then_with(|| a.test.cmp(&b.test))
            .then_with(|| a.labels.cmp(&b.labels))
    });
    found
}

/// For a sequence without skipped results, oldest first: if it ends with
/// `min_failures` or more `failed` after a passing result, the length of
/// that streak and the position of the passing result.
pub fn trailing_failures(statuses: &[TestStatus], min_failures: usize) -> Option<(usize, usize)> {
    let streak = statuses.iter().rev().take_while(|s| s.is_failure()).count();
    if streak < min_failures.max(1) || streak == statuses.len() {
        return None;
    }
    // What ends the streak is passed or flaky: both mean the test passed.
    Some((streak, statuses.len() - streak - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::query::marks as seq;

    #[test]
    fn trailing_failures_after_a_pass() {
        assert_eq!(trailing_failures(&seq("..FFF"), 3), Some((3, 1)));
        assert_eq!(trailing_failures(&seq(".F.FFFF"), 3), Some((4, 2)));
        assert_eq!(trailing_failures(&seq("RFFF"), 3), Some((3, 0)));
        // Too few, passing again, never passed, nothing at all.
        assert_eq!(trailing_failures(&seq("..FF"), 3), None);
        assert_eq!(trailing_failures(&seq("..FF"), 2), Some((2, 1)));
        assert_eq!(trailing_failures(&seq(".FFF."), 3), None);
        assert_eq!(trailing_failures(&seq("FFFF"), 3), None);
        assert_eq!(trailing_failures(&seq("FFRF"), 1), Some((1, 2)));
        assert_eq!(trailing_failures(&[], 1), None);
    }

    #[test]
    fn regressions_name_the_runs_around_the_break() {
        let window = Window {
            runs: (0..6)
                .map(|i| Run {
                    uuid: format!("run{i}"),
                    started: 1_000 * i,
                    commit: Some(format!("c{i}")),
                    labels: String::new(),
                    by: Vec::new(),
                    infra: None,
                })
                .collect(),
        };
        let sequences = [
            Sequence {
                test: "b".into(),
                labels: "arch=x".into(),
                // Run 1 skipped: the pass before the streak is run 0.
                results: vec![
                    (0, TestStatus::Passed),
                    (1, TestStatus::Skipped(None)),
                    (2, TestStatus::Failed),
                    (3, TestStatus::Failed),
                    (5, TestStatus::Failed),
                ],
            },
            Sequence {
                test: "a".into(),
                labels: "arch=x".into(),
                results: vec![
                    (2, TestStatus::Passed),
                    (3, TestStatus::Failed),
                    (4, TestStatus::Failed),
                    (5, TestStatus::Failed),
                ],
            },
            Sequence {
                test: "c".into(),
                labels: "arch=x".into(),
                results: vec![(0, TestStatus::Passed), (5, TestStatus::Failed)],
            },
        ];
        let found = regressions(&window, &sequences, 3);
        let got: Vec<_> = found
            .iter()
            .map(|r| {
                (
                    r.test.as_str(),
                    r.failures,
                    r.last_pass.run.as_str(),
                    r.first_failure.run.as_str(),
                    r.first_failure.commit.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", 3, "run2", "run3", Some("c3")),
                ("b", 3, "run0", "run2", Some("c2")),
            ]
        );
        assert_eq!(found[1].first_failure.time, time(2_000));
    }
}
