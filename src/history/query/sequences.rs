//! What `flaky` and `regressed` both read: the runs of the window, and the
//! whole result sequences of the tests that failed or flaked in it.
//!
//! The daily rollups (`test_days`, [`crate::history::rollup`]) hold each
//! test's results of a day as packed `(run, status)` lists, and their
//! failed and flaky counts: the tests that failed in the window's days
//! are found there, and their lists read, without touching `results`
//! (a year of a big CI holds millions of results in a 30-day window).
//! They are joined to the (few) runs here rather than in SQL, so no
//! run's text travels once per result.
//!
//! Mass failures (see [`super::mass`]) stay in the window's runs, marked
//! ([`Run::infra`]), so they can be shown; their results are left out of
//! every sequence, so no statistic counts them.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::mass::{self, MassFailure};
use super::{Filter, Result, Sql, for_each_row, status, test_names};
use crate::history::Db;
use crate::history::classify::{self, Classification, Observation, Params};
use crate::history::model::unix_millis;
use crate::history::rollup::{DAY_MS, decode_results, unpack};
use crate::status::TestStatus;

/// A run of the window.
#[derive(Debug, Clone)]
pub(super) struct Run {
    pub uuid: String,
    /// Unix milliseconds.
    pub started: i64,
    pub commit: Option<String>,
    /// The canonical `k=v k=v` text.
    pub labels: String,
    /// The values of the `--by` keys, in their order; `None`: the run lacks the key.
    pub by: Vec<Option<String>>,
    /// Whether the run is a mass failure (its results are in no sequence).
    pub infra: Option<MassFailure>,
}

/// One test's results under one full label set, oldest first, skipped
/// results left out.
#[derive(Debug)]
pub(super) struct Sequence {
    pub test: String,
    pub labels: String,
    /// Indexes into [`Window::runs`] with the result in that run.
    pub results: Vec<(usize, TestStatus)>,
}

impl Sequence {
    /// The classification of this sequence, and the order it was made in:
    /// indexes into `results`, in commit order
    /// ([`classify::commit_order`]); the classification's result indexes
    /// are positions in that order.
    pub fn classify(&self, window: &Window, params: &Params) -> (Classification, Vec<usize>) {
        let kept: Vec<usize> = (0..self.results.len())
            .filter(|&i| !self.results[i].1.is_skipped())
            .collect();
        let items: Vec<(i64, Option<&str>)> = kept
            .iter()
            .map(|&i| {
                let run = &window.runs[self.results[i].0];
                (run.started, run.commit.as_deref())
            })
            .collect();
        let order: Vec<usize> = classify::commit_order(&items)
            .into_iter()
            .map(|j| kept[j])
            .collect();
        let obs: Vec<Observation<'_>> = order
            .iter()
            .map(|&i| {
                let (run, status) = &self.results[i];
                Observation {
                    commit: window.runs[*run].commit.as_deref(),
                    status,
                }
            })
            .collect();
        (classify::classify(&obs, params), order)
    }
}

#[derive(Debug)]
pub(super) struct Window {
    /// Oldest first (start time, then id).
    pub runs: Vec<Run>,
}

/// The runs of `filter` and the sequences of every test with a failed or
/// flaky result among them.
pub(super) async fn failing(
    db: &Db,
    filter: &Filter,
    by: &[String],
) -> Result<(Window, Vec<Sequence>)> {
    let (runs, index) = runs(db, filter, by).await?;

    // From the daily rollups (history::rollup): each test's results not
    // skipped, as (run, status), of the days from the window's first on,
    // for the tests with a failed or flaky result in any of those days
    // (the first day may start before the window, and any label set
    // counts here: the runs of the window are picked below).
    let since = unix_millis(filter.since);
    let mut sql = Sql::default();
    let day = sql.int(since.div_euclid(DAY_MS));
    let text = format!(
        "SELECT d.test_id, d.results FROM test_days d WHERE d.day >= {day} \
         AND d.test_id IN (SELECT c.test_id FROM test_days c \
         WHERE c.day >= {day} AND (c.failed > 0 OR c.flaky > 0))"
    );
    // Label sets as small integers, numbered in text order, so sorting
    // rows sorts sequences by test, then labels, then time.
    let label_sets: Vec<&str> = runs
        .iter()
        .map(|r| r.labels.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let label_set: HashMap<&str, u32> = label_sets
        .iter()
        .enumerate()
        .map(|(i, l)| (*l, i as u32))
        .collect();
    // Every run's labels are in the map: it was built from them.
    let run_label_set: Vec<u32> = runs.iter().map(|r| label_set[r.labels.as_str()]).collect();

    let mut rows: Vec<(i64, u32, u32, TestStatus)> = Vec::new();
    // Tests with a failed or flaky result in a run of the window (a mass
    // failure's included, as `results_failing` found them before).
    let mut failing: HashSet<i64> = HashSet::new();
    for_each_row!(db, sql, &text, |row| {
        let test: i64 = row.try_get(0)?;
        decode_results(row.try_get::<&[u8], _>(1)?, |packed| {
            let (run_id, code) = unpack(packed);
            // A run outside the window (before it, another label set, or
            // one that started after the first query) is no part of it.
            let Some(&i) = index.get(&run_id) else {
                return;
            };
            // Codes 1–4 (two bits): every one names a status.
            let Ok(st) = status(code) else {
                return;
            };
            if st.is_failure() || st == TestStatus::Flaky {
                failing.insert(test);
            }
            // A mass failure's results count for nothing.
            if runs[i].infra.is_none() {
                rows.push((test, run_label_set[i], i as u32, st));
            }
        });
    });
    rows.retain(|r| failing.contains(&r.0));
    rows.sort_unstable_by_key(|&(test, labels, run, _)| (test, labels, run));

    let names = test_names(db, rows.iter().map(|r| r.0).collect::<BTreeSet<_>>()).await?;
    let mut sequences: Vec<Sequence> = Vec::new();
    let mut current: Option<(i64, u32)> = None;
    for (test, labels, run, st) in rows {
        if current != Some((test, labels)) {
            current = Some((test, labels));
            sequences.push(Sequence {
                test: names
                    .get(&test)
                    .cloned()
                    .unwrap_or_else(|| format!("#{test}")),
                labels: label_sets[labels as usize].to_owned(),
                results: Vec::new(),
            });
        }
        if let Some(s) = sequences.last_mut() {
            s.results.push((run as usize, st));
        }
    }
    Ok((Window { runs }, sequences))
}

/// The runs of `filter`, oldest first, with the values of the `by` label
/// keys, and a map from run id to position.
async fn runs(db: &Db, filter: &Filter, by: &[String]) -> Result<(Vec<Run>, HashMap<i64, usize>)> {
    let mut sql = Sql::default();
    let cond = filter.runs_condition(&mut sql);
    let text = format!(
        "SELECT runs.id, runs.uuid, runs.started_at, runs.commit_sha, runs.labels, {} \
         FROM runs WHERE {cond}",
        mass::COLUMNS
    );
    let mut runs: Vec<(i64, Run)> = Vec::new();
    for_each_row!(db, sql, &text, |row| {
        runs.push((
            row.try_get(0)?,
            Run {
                uuid: row.try_get(1)?,
                started: row.try_get(2)?,
                commit: row.try_get(3)?,
                labels: row.try_get(4)?,
                by: vec![None; by.len()],
                infra: MassFailure::from_columns(
                    row.try_get(5)?,
                    row.try_get(6)?,
                    row.try_get(7)?,
                    filter.mass_failure_share,
                ),
            },
        ));
    });
    runs.sort_unstable_by_key(|(id, r)| (r.started, *id));
    let index: HashMap<i64, usize> = runs
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let mut runs: Vec<Run> = runs.into_iter().map(|(_, r)| r).collect();

    if !by.is_empty() {
        let mut sql = Sql::default();
        let keys: Vec<String> = by.iter().map(|k| sql.text(k)).collect();
        let run_ids = filter.run_ids(&mut sql);
        let text = format!(
            "SELECT l.run_id, l.key, l.value FROM run_labels l \
             WHERE l.key IN ({}) AND l.run_id IN ({run_ids})",
            keys.join(", ")
        );
        for_each_row!(db, sql, &text, |row| {
            let run_id: i64 = row.try_get(0)?;
            let key: String = row.try_get(1)?;
            if let (Some(&i), Some(k)) = (index.get(&run_id), by.iter().position(|b| *b == key)) {
                runs[i].by[k] = Some(row.try_get(2)?);
            }
        });
    }
    Ok((runs, index))
}
