//! `warden regressed`: tests failing consistently now
//! ([`crate::history::classify`]): **regressed** (a change point from
//! passing to failing inside the window, with the last good and first bad
//! run around it and how sure the model is of the place) and **broken**
//! (failing since before the window: the first failing commit is unknown).
//!
//! One row per test and full label set. The same test under the same
//! labels is never also in `warden flaky`: each gets one verdict.

use std::time::SystemTime;

use serde::Serialize;

use super::sequences::{Run, Sequence, Window, failing};
use super::{Filter, Result, serialize_time, time};
use crate::history::Db;
use crate::history::classify::{Params, Verdict};

/// One test under one label set, failing now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    pub test: String,
    /// The runs' labels, `k=v k=v`.
    pub labels: String,
    /// [`Verdict::Regressed`] or [`Verdict::Broken`].
    pub verdict: Verdict,
    /// The latest `failed` results in a row.
    pub failures: u64,
    /// Results in the current (failing) regime and its failing share, 0–1.
    pub regime_runs: u64,
    pub failure_rate: f64,
    /// The first result of the failing regime (for broken: the first of
    /// the window).
    pub failing_since: RunRef,
    /// Regressed only: the last passing result before the break and the
    /// first failing one after it.
    pub last_good: Option<RunRef>,
    pub first_bad: Option<RunRef>,
    /// Regressed only: the posterior probability that the break is between
    /// exactly these two commits, 0–1.
    pub confidence: Option<f64>,
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
    pub(super) fn new(run: &Run) -> RunRef {
        RunRef {
            time: time(run.started),
            commit: run.commit.clone(),
            run: run.uuid.clone(),
        }
    }
}

/// Broken and regressed tests in `filter`'s runs, longest failing streak
/// first, then by test name and labels.
pub async fn regressed(db: &Db, filter: &Filter, params: &Params) -> Result<Vec<Regression>> {
    let (window, sequences) = failing(db, filter, &[]).await?;
    Ok(regressions(&window, &sequences, params))
}

fn regressions(window: &Window, sequences: &[Sequence], params: &Params) -> Vec<Regression> {
    let mut found: Vec<Regression> = sequences
        .iter()
        .filter_map(|seq| {
            let (c, order) = seq.classify(window, params);
            if !c.verdict.is_failing() {
                return None;
            }
            let run_of = |i: usize| RunRef::new(&window.runs[seq.results[order[i]].0]);
            let change = c.change.filter(|_| c.verdict == Verdict::Regressed);
            Some(Regression {
                test: seq.test.clone(),
                labels: seq.labels.clone(),
                verdict: c.verdict,
                failures: c.streak,
                regime_runs: c.regime_runs,
                failure_rate: c.failure_rate,
                failing_since: run_of(c.regime_start),
                last_good: change.map(|ch| run_of(ch.before)),
                first_bad: change.map(|ch| run_of(ch.after)),
                confidence: change.map(|ch| ch.confidence),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::query::marks;

    fn window(n: usize) -> Window {
        Window {
            runs: (0..n)
                .map(|i| Run {
                    uuid: format!("run{i}"),
                    started: 1_000 * i as i64,
                    commit: Some(format!("c{i}")),
                    labels: String::new(),
                    by: Vec::new(),
                    infra: None,
                })
                .collect(),
        }
    }

    fn sequence(test: &str, m: &str) -> Sequence {
        Sequence {
            test: test.into(),
            labels: "arch=x".into(),
            results: marks(m).into_iter().enumerate().collect(),
        }
    }

    #[test]
    fn regressions_name_the_runs_around_the_break_and_broken_tests_too() {
        let w = window(20);
        let found = regressions(
            &w,
            &[
                // Run 12 skipped: the last good is run 11.
                sequence("b", "............sFFFFFFF"),
                sequence("a", "..............FFFFFF"),
                // Failing all along: broken.
                sequence("c", "FFFFFFFFFFFFFFFFFFFF"),
                // Flaky: not here.
                sequence("d", "..F....F...F...F..F."),
                // Fixed: not here.
                sequence("e", "FFFFFFFFFF.........."),
            ],
            &Params::default(),
        );
        let got: Vec<_> = found
            .iter()
            .map(|r| {
                (
                    r.test.as_str(),
                    r.verdict,
                    r.failures,
                    r.last_good.as_ref().map(|g| g.run.as_str()),
                    r.first_bad.as_ref().and_then(|b| b.commit.as_deref()),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("c", Verdict::Broken, 20, None, None),
                ("b", Verdict::Regressed, 7, Some("run11"), Some("c13")),
                ("a", Verdict::Regressed, 6, Some("run13"), Some("c14")),
            ]
        );
        assert_eq!(found[0].failing_since.run, "run0");
        assert_eq!(found[1].failing_since.time, time(13_000));
        assert!(found[2].confidence.unwrap() > 0.5);
    }
}
