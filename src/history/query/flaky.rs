//! `warden flaky`: tests that fail intermittently, per test or per test and
//! label values (`--by arch,compiler`), most hits first.
//!
//! Definitions (README, "History"):
//!
//! - *runs*: results other than skipped; *failures*: `failed` results;
//!   *flaky runs*: `flaky` results (failed, then passed on a retry within
//!   the run); *hits* = failures + flaky runs; *failure %* = failures / runs.
//! - *flip rate*: for each sequence of one test's results under one full
//!   label set, oldest first, skipped left out, with passed as one state and
//!   failed/flaky as the other: first every streak of three or more `failed`
//!   in a row is dropped (that is breakage, reported by `regressed`, not
//!   flakiness), then flips = adjacent pairs whose states differ. The rate
//!   is all flips over all adjacent pairs of the row's sequences (0 with
//!   none). A test that fails every other run has a rate near 1; one that
//!   broke once and was fixed, 0.
//! - *first/last seen*: the first and last run with a failed or flaky result.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use serde::Serialize;

use super::sequences::{Sequence, Window, failing};
use super::{Filter, Result, serialize_time, time};
use crate::history::Db;
use crate::history::model::ResultStatus;

/// How many `failed` results in a row are breakage rather than flakiness.
pub const BREAKAGE_STREAK: usize = 3;

/// One row of `warden flaky`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlakyRow {
    pub test: String,
    /// The `--by` keys and this row's values (`-` where a run lacks the
    /// key); empty without `--by`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub runs: u64,
    pub failures: u64,
    pub flaky: u64,
    pub hits: u64,
    /// 0–100.
    pub failure_pct: f64,
    /// 0–1.
    pub flip_rate: f64,
    #[serde(serialize_with = "serialize_time")]
    pub first_seen: SystemTime,
    #[serde(serialize_with = "serialize_time")]
    pub last_seen: SystemTime,
}

/// Tests with a failed or flaky result in `filter`'s runs, one row per test
/// (or per test and values of the `by` label keys), sorted by impact: hits,
/// then flip rate, both descending, then name.
pub async fn flaky(db: &Db, filter: &Filter, by: &[String]) -> Result<Vec<FlakyRow>> {
    let (window, sequences) = failing(db, filter, by).await?;
    Ok(rows(&window, &sequences, by))
}

fn rows(window: &Window, sequences: &[Sequence], by: &[String]) -> Vec<FlakyRow> {
    let mut tallies: HashMap<(&str, Vec<&str>), Tally> = HashMap::new();
    for seq in sequences {
        let Some(&(first_run, _)) = seq.results.first() else {
            continue;
        };
        // Every run of a sequence has the same labels, so the same `by` values.
        let values: Vec<&str> = window.runs[first_run]
            .by
            .iter()
            .map(|v| v.as_deref().unwrap_or("-"))
            .collect();
        tallies
            .entry((seq.test.as_str(), values))
            .or_default()
            .add(window, seq);
    }
    let mut rows: Vec<FlakyRow> = tallies
        .into_iter()
        .filter(|(_, t)| t.hits() > 0)
        .map(|((test, values), t)| FlakyRow {
            test: test.to_owned(),
            labels: by
                .iter()
                .zip(values)
                .map(|(k, v)| (k.clone(), v.to_owned()))
                .collect(),
            runs: t.runs,
            failures: t.failures,
            flaky: t.flaky,
            hits: t.hits(),
            failure_pct: ratio(t.failures, t.runs) * 100.0,
            flip_rate: ratio(t.flips, t.pairs),
            // Both are set: only tallies with hits are kept.
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

/// Counts for one row, summed over its sequences.
#[derive(Debug, Default)]
struct Tally {
    runs: u64,
    failures: u64,
    flaky: u64,
    flips: u64,
    pairs: u64,
    /// Unix milliseconds of the first and last failed or flaky result.
    first_seen: Option<i64>,
    last_seen: Option<i64>,
}

impl Tally {
    fn hits(&self) -> u64 {
        self.failures + self.flaky
    }

    fn add(&mut self, window: &Window, seq: &Sequence) {
        for &(run, st) in &seq.results {
            if st == ResultStatus::Skipped {
                continue;
            }
            self.runs += 1;
            match st {
                ResultStatus::Failed => self.failures += 1,
                ResultStatus::Flaky => self.flaky += 1,
                ResultStatus::Passed | ResultStatus::Skipped => continue,
            }
            let at = window.runs[run].started;
            self.first_seen = Some(self.first_seen.map_or(at, |t| t.min(at)));
            self.last_seen = Some(self.last_seen.map_or(at, |t| t.max(at)));
        }
        let (flips, pairs) = flips(&seq.statuses());
        self.flips += flips;
        self.pairs += pairs;
    }
}

/// Flips and adjacent pairs in one sequence (oldest first, skipped left
/// out) once streaks of [`BREAKAGE_STREAK`] or more `failed` are dropped.
pub fn flips(statuses: &[ResultStatus]) -> (u64, u64) {
    let statuses: Vec<ResultStatus> = statuses
        .iter()
        .copied()
        .filter(|s| *s != ResultStatus::Skipped)
        .collect();
    // Whether each kept result failed (failed or flaky), in order.
    let mut kept: Vec<bool> = Vec::with_capacity(statuses.len());
    let mut i = 0;
    while i < statuses.len() {
        let streak = statuses[i..]
            .iter()
            .take_while(|s| **s == ResultStatus::Failed)
            .count();
        if streak >= BREAKAGE_STREAK {
            i += streak;
            continue;
        }
        let n = streak.max(1);
        kept.extend(
            statuses[i..i + n]
                .iter()
                .map(|s| *s != ResultStatus::Passed),
        );
        i += n;
    }
    let pairs = kept.len().saturating_sub(1) as u64;
    let flips = kept.windows(2).filter(|w| w[0] != w[1]).count() as u64;
    (flips, pairs)
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::query::sequences::Run;

    /// `.` passed, `F` failed, `R` flaky, `s` skipped.
    fn seq(marks: &str) -> Vec<ResultStatus> {
        marks
            .chars()
            .map(|c| match c {
                '.' => ResultStatus::Passed,
                'F' => ResultStatus::Failed,
                'R' => ResultStatus::Flaky,
                's' => ResultStatus::Skipped,
                _ => panic!("mark {c}"),
            })
            .collect()
    }

    #[test]
    fn flips_count_state_changes() {
        assert_eq!(flips(&seq("")), (0, 0));
        assert_eq!(flips(&seq(".")), (0, 0));
        assert_eq!(flips(&seq("....")), (0, 3));
        assert_eq!(flips(&seq(".F.F")), (3, 3));
        // Failed and flaky are the same state.
        assert_eq!(flips(&seq(".FR.")), (2, 3));
        assert_eq!(flips(&seq("RRRR")), (0, 3));
        // Skipped results are left out.
        assert_eq!(flips(&seq(".s.sF")), (1, 2));
    }

    #[test]
    fn breakage_streaks_are_dropped() {
        // Broke for three runs, then fixed: no flakiness at all.
        assert_eq!(flips(&seq("..FFF..")), (0, 3));
        // Two failures in a row are not breakage.
        assert_eq!(flips(&seq("..FF..")), (2, 5));
        // A flaky result ends a streak: F F R F are not four failures.
        assert_eq!(flips(&seq(".FFRF.")), (2, 5));
        // A long breakage at the end, flakiness before it.
        assert_eq!(flips(&seq(".F.FFFFFF")), (2, 2));
        // Skipped results inside a streak do not break it.
        assert_eq!(flips(&seq(".FsFsF.")), (0, 1));
        assert_eq!(flips(&seq("FFF")), (0, 0));
    }

    fn window(n: usize, by: &[Option<&str>]) -> Window {
        Window {
            runs: (0..n)
                .map(|i| Run {
                    uuid: format!("r{i}"),
                    started: 1_000 * i as i64,
                    commit: None,
                    labels: String::new(),
                    by: by.iter().map(|v| v.map(str::to_owned)).collect(),
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
    fn rows_sum_sequences_and_sort_by_impact() {
        let w = window(8, &[]);
        let rows = rows(
            &w,
            &[
                // Two label sets of one test: one row.
                sequence("a", "arch=x", ".F.F...."),
                sequence("a", "arch=y", "........"),
                sequence("b", "arch=x", "..F.R..."),
                sequence("c", "arch=x", "....FFFF"),
                sequence("d", "arch=x", "........"),
            ],
            &[],
        );
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.test.as_str(), r.runs, r.failures, r.flaky, r.hits))
            .collect();
        // c has the most hits; a and b tie on hits and b flips more (4
        // flips in 7 pairs, a 4 in 14: its second label set never fails);
        // d never failed.
        assert_eq!(
            summary,
            [("c", 8, 4, 0, 4), ("b", 8, 1, 1, 2), ("a", 16, 2, 0, 2)]
        );
        assert_eq!(rows[0].flip_rate, 0.0);
        assert_eq!(rows[0].failure_pct, 50.0);
        assert_eq!(rows[1].flip_rate, 4.0 / 7.0);
        assert_eq!(rows[2].flip_rate, 4.0 / 14.0);
        assert_eq!(rows[2].first_seen, time(1_000));
        assert_eq!(rows[2].last_seen, time(3_000));
        assert!(rows[0].labels.is_empty());
    }

    #[test]
    fn rows_split_by_label_values() {
        let mut w = window(4, &[Some("x86_64"), None]);
        w.runs[2].by = vec![Some("s390x".into()), Some("gcc".into())];
        w.runs[3].by = w.runs[2].by.clone();
        let s1 = Sequence {
            test: "t".into(),
            labels: "arch=x86_64".into(),
            results: vec![(0, ResultStatus::Failed), (1, ResultStatus::Passed)],
        };
        let s2 = Sequence {
            test: "t".into(),
            labels: "arch=s390x compiler=gcc".into(),
            results: vec![(2, ResultStatus::Flaky), (3, ResultStatus::Flaky)],
        };
        let by = ["arch".to_string(), "compiler".to_string()];
        let rows = rows(&w, &[s1, s2], &by);
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
        assert_eq!(got, [("s390x", "gcc", 2), ("x86_64", "-", 1)]);
    }
}
