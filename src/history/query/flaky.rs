//! `warden flaky`: tests classified flaky ([`crate::history::classify`]),
//! per test or per test and label values (`--by arch,compiler`), most hits
//! first.
//!
//! Each sequence of one test's results under one full label set is
//! classified on its own; a row sums the flaky ones among its sequences
//! (a test flaky on gcc and broken on llvm is here for gcc, in
//! `regressed` for llvm). Definitions (README, "History"):
//!
//! - *runs*: results other than skipped (and outside mass-failure runs);
//!   *failures*: `failed` results; *flaky runs*: `flaky` results (failed,
//!   then passed on a retry within the run); *hits* = failures + flaky runs.
//! - *failure rate*: failing (failed or flaky) results of the current
//!   regimes over their results, with a 95% Wilson interval.
//! - *flip rate*: adjacent results (commit order) whose states differ,
//!   passed one state and failed/flaky the other, over adjacent pairs.
//! - *first/last seen*: the first and last run with a failed or flaky result.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use serde::Serialize;

use super::sequences::{Sequence, Window, failing};
use super::{Filter, Result, serialize_time, time};
use crate::history::Db;
use crate::history::classify::{Params, Verdict, interval};
use crate::status::TestStatus;

/// One row of `warden flaky`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlakyRow {
    pub test: String,
    /// The `--by` keys and this row's values (`-` where a run lacks the
    /// key); empty without `--by`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Always [`Verdict::Flaky`]: said, for readers of the JSON.
    pub verdict: Verdict,
    pub runs: u64,
    pub failures: u64,
    pub flaky: u64,
    pub hits: u64,
    /// Commits with both a failing and a passing result.
    pub flaky_commits: u64,
    /// 0–1: the current regimes' failing share.
    pub failure_rate: f64,
    /// Its 95% interval, 0–1.
    pub interval: (f64, f64),
    /// 0–1.
    pub flip_rate: f64,
    #[serde(serialize_with = "serialize_time")]
    pub first_seen: SystemTime,
    #[serde(serialize_with = "serialize_time")]
    pub last_seen: SystemTime,
}

/// Flaky tests in `filter`'s runs, one row per test (or per test and
/// values of the `by` label keys), sorted by impact: hits, then flip rate,
/// both descending, then name.
pub async fn flaky(
    db: &Db,
    filter: &Filter,
    by: &[String],
    params: &Params,
) -> Result<Vec<FlakyRow>> {
    let (window, sequences) = failing(db, filter, by).await?;
    Ok(rows(&window, &sequences, by, params))
}

fn rows(window: &Window, sequences: &[Sequence], by: &[String], params: &Params) -> Vec<FlakyRow> {
    let mut tallies: HashMap<(&str, Vec<&str>), Tally> = HashMap::new();
    for seq in sequences {
        let Some(&(first_run, _)) = seq.results.first() else {
            continue;
        };
        let (c, order) = seq.classify(window, params);
        if c.verdict != Verdict::Flaky {
            continue;
        }
        // Every run of a sequence has the same labels, so the same `by` values.
        let values: Vec<&str> = window.runs[first_run]
            .by
            .iter()
            .map(|v| v.as_deref().unwrap_or("-"))
            .collect();
        let t = tallies.entry((seq.test.as_str(), values)).or_default();
        t.runs += c.runs;
        t.failures += c.failures;
        t.flaky += c.flaky;
        t.flaky_commits += c.flaky_commits;
        t.regime_runs += c.regime_runs;
        t.regime_failing += c.regime_failing;
        let states: Vec<bool> = order
            .iter()
            .map(|&i| seq.results[i].1 != TestStatus::Passed)
            .collect();
        t.pairs += states.len().saturating_sub(1) as u64;
        t.flips += states.windows(2).filter(|w| w[0] != w[1]).count() as u64;
        for (run, st) in &seq.results {
            if st.is_failure() || *st == TestStatus::Flaky {
                let at = window.runs[*run].started;
                t.first_seen = Some(t.first_seen.map_or(at, |f| f.min(at)));
                t.last_seen = Some(t.last_seen.map_or(at, |l| l.max(at)));
            }
        }
    }
    let mut rows: Vec<FlakyRow> = tallies
        .into_iter()
        .map(|((test, values), t)| FlakyRow {
            test: test.to_owned(),
            labels: by
                .iter()
                .zip(values)
                .map(|(k, v)| (k.clone(), v.to_owned()))
                .collect(),
            verdict: Verdict::Flaky,
            runs: t.runs,
            failures: t.failures,
            flaky: t.flaky,
            hits: t.failures + t.flaky,
            flaky_commits: t.flaky_commits,
            failure_rate: ratio(t.regime_failing, t.regime_runs),
            interval: interval::wilson(t.regime_failing, t.regime_runs),
            flip_rate: ratio(t.flips, t.pairs),
            // Both are set: a flaky sequence has a failing result.
            first_seen: time(t.first_seen.unwrap_or_default()),
            last_seen: time(t.last_seen.unwrap_or_default()),
        })
        .collect();
    rows.sort_by(|a, b| {
        b.hits
            .cmp(&a.hits)
            .then(b.flip_rate.total_cmp(&a.flip_rate))
            .then_with(|| a.test.cmp(&b.test))
            .then_with(|| a.labels.cmp(&b.labels))
    });
    rows
}

/// Counts for one row, summed over its flaky sequences.
#[derive(Debug, Default)]
struct Tally {
    runs: u64,
    failures: u64,
    flaky: u64,
    flaky_commits: u64,
    regime_runs: u64,
    regime_failing: u64,
    flips: u64,
    pairs: u64,
    /// Unix milliseconds of the first and last failed or flaky result.
    first_seen: Option<i64>,
    last_seen: Option<i64>,
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::query::marks as seq;
    use crate::history::query::sequences::Run;

    fn window(n: usize, by: &[Option<&str>]) -> Window {
        Window {
            runs: (0..n)
                .map(|i| Run {
                    uuid: format!("r{i}"),
                    started: 1_000 * i as i64,
                    commit: None,
                    labels: String::new(),
                    by: by.iter().map(|v| v.map(str::to_owned)).collect(),
                    infra: None,
                })
                .collect(),
        }
    }

    fn sequence(test: &str, labels: &str, marks: &str) -> Sequence {
        Sequence {
            test: test.into(),
            labels: labels.into(),
            results: seq(marks).into_iter().enumerate().collect(),
        }
    }

    #[test]
    fn rows_sum_flaky_sequences_and_sort_by_impact() {
        let w = window(24, &[]);
        let rows = rows(
            &w,
            &[
                // Two label sets of one test: one row of the flaky one.
                sequence("a", "arch=x", ".F.F....F......F....F..."),
                sequence("a", "arch=y", "........................"),
                sequence("b", "arch=x", "..F.R...F..R....F...F..R"),
                // Broken, then never flaky: not here.
                sequence("c", "arch=x", "...............FFFFFFFFF"),
                sequence("d", "arch=x", "........................"),
            ],
            &[],
            &Params::default(),
        );
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.test.as_str(), r.runs, r.failures, r.flaky, r.hits))
            .collect();
        assert_eq!(summary, [("b", 24, 4, 3, 7), ("a", 24, 5, 0, 5)]);
        assert_eq!(rows[1].failure_rate, 5.0 / 24.0);
        assert!(rows[1].interval.0 < 5.0 / 24.0 && rows[1].interval.1 > 5.0 / 24.0);
        // a: 10 flips in 23 pairs (its clean label set is not flaky).
        assert_eq!(rows[1].flip_rate, 10.0 / 23.0);
        assert_eq!(rows[1].first_seen, time(1_000));
        assert_eq!(rows[1].last_seen, time(20_000));
        assert!(rows[0].labels.is_empty());
    }

    #[test]
    fn rows_split_by_label_values() {
        let mut w = window(12, &[Some("x86_64"), None]);
        for r in &mut w.runs[6..] {
            r.by = vec![Some("s390x".into()), Some("gcc".into())];
        }
        let s1 = Sequence {
            test: "t".into(),
            labels: "arch=x86_64".into(),
            results: seq(".F..F.").into_iter().enumerate().collect(),
        };
        let s2 = Sequence {
            test: "t".into(),
            labels: "arch=s390x compiler=gcc".into(),
            results: seq("R.R..R")
                .into_iter()
                .enumerate()
                .map(|(i, s)| (i + 6, s))
                .collect(),
        };
        let by = ["arch".to_string(), "compiler".to_string()];
        let rows = rows(&w, &[s1, s2], &by, &Params::default());
        let got: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.labels["arch"].as_str(),
                    r.labels["compiler"].as_str(),
                    r.hits,
                )
            })
            .collect();
        assert_eq!(got, [("s390x", "gcc", 3), ("x86_64", "-", 2)]);
    }
}
