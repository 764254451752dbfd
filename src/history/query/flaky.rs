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
//! - Listed: tests with a flaky run or a flip. A test that only ever failed
//!   in breakage streaks (or failed every time) is broken, not flaky.
//! - Impact, the order: hits outside breakage streaks, then flip rate.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use serde::Serialize;

use super::sequences::{Sequence, Window, failing};
use super::{Filter, Result, serialize_time, time};
use crate::history::Db;
use crate::status::TestStatus;

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
    /// Failures inside streaks of [`BREAKAGE_STREAK`] or more (left out of
    /// the flip rate and of the order).
    pub breakage: u64,
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
        .filter(|(_, t)| t.flaky > 0 || t.flips > 0)
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
            breakage: t.breakage,
            failure_pct: ratio(t.failures, t.runs) * 100.0,
            flip_rate: ratio(t.flips, t.pairs),
            // Both are set: only tallies with hits are kept.
            first_seen: time(t.first_seen.unwrap_or_default()),
            last_seen: time(t.last_seen.unwrap_or_default()),
        })
        .collect();
    rows.sort_by(|a, b| {
        (b.hits - b.breakage)
            .cmp(&(a.hits - a.breakage))
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
    breakage: u64,
    /// Unix milliseconds of the first and last failed or flaky result.
    first_seen: Option<i64>,
    last_seen: Option<i64>,
}

impl Tally {
    fn hits(&self) -> u64 {
        self.failures + self.flaky
    }

    fn add(&mut self, window: &Window, seq: &Sequence) {
        for (run, st) in &seq.results {
            if st.is_skipped() {
                continue;
            }
            self.runs += 1;
            match st {
                TestStatus::Failed | TestStatus::Error(_) => self.failures += 1,
                TestStatus::Flaky => self.flaky += 1,
                TestStatus::Passed | TestStatus::Skipped(_) => continue,
            }
            let at = window.runs[*run].started;
            self.first_seen = Some(self.first_seen.map_or(at, |t| t.min(at)));
            self.last_seen = Some(self.last_seen.map_or(at, |t| t.max(at)));
        }
        let f = flips(&seq.statuses());
        self.flips += f.flips;
        self.pairs += f.pairs;
        self.breakage += f.breakage;
    }
}

/// What [`flips`] counts in one sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flips {
    pub flips: u64,
    pub pairs: u64,
    /// `failed` results dropped as breakage.
    pub breakage: u64,
}

/// Flips and adjacent pairs in one sequence (oldest first, skipped left
/// out) once streaks of [`BREAKAGE_STREAK`] or more `failed` are dropped.
pub fn flips(statuses: &[TestStatus]) -> Flips {
    let statuses: Vec<&TestStatus> = statuses.iter().filter(|s| !s.is_skipped()).collect();
    // Whether each kept result failed (failed or flaky), in order.
    let mut kept: Vec<bool> = Vec::with_capacity(statuses.len());
    let mut breakage = 0;
    let mut i = 0;
    while i < statuses.len() {
        let streak = statuses[i..].iter().take_while(|s| s.is_failure()).count();
        if streak >= BREAKAGE_STREAK {
            breakage += streak as u64;
            i += streak;
            continue;
        }
        let n = streak.max(1);
        kept.extend(statuses[i..i + n].iter().map(|s| **s != TestStatus::Passed));
        i += n;
    }
    let pairs = kept.len().saturating_sub(1) as u64;
    let flips = kept.windows(2).filter(|w| w[0] != w[1]).count() as u64;
    Flips {
        flips,
        pairs,
        breakage,
    }
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::query::marks as seq;
    use crate::history::query::sequences::Run;

    fn fp(marks: &str) -> (u64, u64) {
        let f = flips(&seq(marks));
        (f.flips, f.pairs)
    }

    #[test]
    fn flips_count_state_changes() {
        assert_eq!(fp(""), (0, 0));
        assert_eq!(fp("."), (0, 0));
        assert_eq!(fp("...."), (0, 3));
        assert_eq!(fp(".F.F"), (3, 3));
        // Failed and flaky are the same state.
        assert_eq!(fp(".FR."), (2, 3));
        assert_eq!(fp("RRRR"), (0, 3));
        // Skipped results are left out.
        assert_eq!(fp(".s.sF"), (1, 2));
    }

    #[test]
    fn breakage_streaks_are_dropped() {
        // Broke for three runs, then fixed: no flakiness at all.
        assert_eq!(fp("..FFF.."), (0, 3));
        // Two failures in a row are not breakage.
        assert_eq!(fp("..FF.."), (2, 5));
        // A flaky result ends a streak: F F R F are not four failures.
        assert_eq!(fp(".FFRF."), (2, 5));
        // A long breakage at the end, flakiness before it.
        assert_eq!(fp(".F.FFFFFF"), (2, 2));
        // Skipped results inside a streak do not break it.
        assert_eq!(fp(".FsFsF."), (0, 1));
        assert_eq!(fp("FFF"), (0, 0));
        assert_eq!(flips(&seq(".FsFsF.FFF")).breakage, 6);
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
        // c only broke (four failures in a row) and is not flaky; a and b
        // tie on hits and b flips more (4 flips in 7 pairs, a 4 in 14: its
        // second label set never fails); d never failed.
        assert_eq!(summary, [("b", 8, 1, 1, 2), ("a", 16, 2, 0, 2)]);
        assert_eq!(rows[0].flip_rate, 4.0 / 7.0);
        assert_eq!(rows[0].failure_pct, 12.5);
        assert_eq!(rows[1].flip_rate, 4.0 / 14.0);
        assert_eq!(rows[1].first_seen, time(1_000));
        assert_eq!(rows[1].last_seen, time(3_000));
        assert!(rows[0].labels.is_empty());
        assert_eq!(rows[0].breakage, 0);
    }

    #[test]
    fn rows_split_by_label_values() {
        let mut w = window(4, &[Some("x86_64"), None]);
        w.runs[2].by = vec![Some("s390x".into()), Some("gcc".into())];
        w.runs[3].by = w.runs[2].by.clone();
        let s1 = Sequence {
            test: "t".into(),
            labels: "arch=x86_64".into(),
            results: vec![(0, TestStatus::Failed), (1, TestStatus::Passed)],
        };
        let s2 = Sequence {
            test: "t".into(),
            labels: "arch=s390x compiler=gcc".into(),
            results: vec![(2, TestStatus::Flaky), (3, TestStatus::Flaky)],
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
