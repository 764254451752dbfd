//! `warden history TEST`: one test's results, oldest first.
//!
//! With the results, the test's verdict under each label set
//! ([`crate::history::classify`]), computed over all of them (not only the
//! `--limit` shown).
//!
//! TEST is a full name, else the unique name ending with `/TEST`, else the
//! unique name containing TEST; more than one match is an error naming
//! them, so a short name never silently picks one of several tests.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::RunRef;
use super::mass::{self, MassFailure};
use super::{
    Filter, QueryError, Result, Sql, for_each_row, run_status, serialize_opt_ms, serialize_status,
    serialize_time, status, time,
};
use crate::history::Db;
use crate::history::classify::{self, Observation, Params, Verdict};
use crate::history::db::Pool;
use crate::history::model::{from_duration_millis, unix_millis};
use crate::status::{RunStatus, TestStatus};

/// How many candidates an ambiguous name lists.
const MAX_CANDIDATES: usize = 10;

/// One result of the test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub test: String,
    /// When the run started.
    #[serde(serialize_with = "serialize_time")]
    pub time: SystemTime,
    #[serde(serialize_with = "serialize_status")]
    pub status: TestStatus,
    #[serde(rename = "duration_ms", serialize_with = "serialize_opt_ms")]
    pub duration: Option<Duration>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// The run's labels, `k=v k=v`.
    pub labels: String,
    /// The run's uuid.
    pub run: String,
    /// The run's status ([`RunStatus::Incomplete`] for a run that never
    /// ended: its warden was killed, or it is still going).
    pub run_status: RunStatus,
    pub batch: Option<String>,
    pub message: Option<String>,
    /// Set when the run is a mass failure (by the filter's share): the
    /// result counts towards no flaky or regressed statistic.
    pub mass_failure: Option<MassFailure>,
}

/// The test a name resolved to and its results in the filtered runs.
#[derive(Debug, Clone)]
pub struct TestHistory {
    pub test: String,
    /// Oldest first.
    pub results: Vec<HistoryEntry>,
    /// Its classification under each label set it ran with, by labels.
    pub verdicts: Vec<LabelVerdict>,
}

/// The test's verdict under one label set, with the evidence
/// ([`crate::history::classify`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelVerdict {
    /// The runs' labels, `k=v k=v`.
    pub labels: String,
    pub verdict: Verdict,
    /// Results (skipped left out), `failed` ones, `flaky` ones, and
    /// commits with both a failing and a passing result.
    pub runs: u64,
    pub failures: u64,
    pub flaky: u64,
    pub flaky_commits: u64,
    /// The current regime: its results and failing share (0–1) with the
    /// 95% interval.
    pub regime_runs: u64,
    pub failure_rate: f64,
    pub interval: (f64, f64),
    /// The last change of regime the model found.
    pub change: Option<ChangeAt>,
}

/// A change of regime between two runs: for a break the last good and
/// first bad, for a fix the last failing and first clean.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeAt {
    pub before: RunRef,
    pub after: RunRef,
    /// The model's probability that it is between exactly these two
    /// commits, 0–1.
    pub confidence: f64,
}

/// The verdict under each label set of `results` (one test's, oldest
/// first), sorted by labels.
pub fn verdicts(results: &[HistoryEntry], params: &Params) -> Vec<LabelVerdict> {
    let mut by_labels: BTreeMap<&str, Vec<&HistoryEntry>> = BTreeMap::new();
    // Mass failures' results count for no verdict (as in `failing`).
    for e in results
        .iter()
        .filter(|e| !e.status.is_skipped() && e.mass_failure.is_none())
    {
        by_labels.entry(&e.labels).or_default().push(e);
    }
    by_labels
        .into_iter()
        .map(|(labels, entries)| {
            let items: Vec<(i64, Option<&str>)> = entries
                .iter()
                .map(|e| (unix_millis(e.time), e.commit.as_deref()))
                .collect();
            let ordered: Vec<&HistoryEntry> = classify::commit_order(&items)
                .into_iter()
                .map(|i| entries[i])
                .collect();
            let obs: Vec<Observation<'_>> = ordered
                .iter()
                .map(|e| Observation {
                    commit: e.commit.as_deref(),
                    status: &e.status,
                })
                .collect();
            let c = classify::classify(&obs, params);
            let at = |i: usize| RunRef {
                time: ordered[i].time,
                commit: ordered[i].commit.clone(),
                run: ordered[i].run.clone(),
            };
            LabelVerdict {
                labels: labels.to_owned(),
                verdict: c.verdict,
                runs: c.runs,
                failures: c.failures,
                flaky: c.flaky,
                flaky_commits: c.flaky_commits,
                regime_runs: c.regime_runs,
                failure_rate: c.failure_rate,
                interval: c.interval,
                change: c.change.map(|ch| ChangeAt {
                    before: at(ch.before),
                    after: at(ch.after),
                    confidence: ch.confidence,
                }),
            }
        })
        .collect()
}

/// The results of the test `name` names, in `filter`'s runs, oldest first,
/// and its verdicts.
pub async fn history(db: &Db, filter: &Filter, name: &str, params: &Params) -> Result<TestHistory> {
    let (id, test) = resolve(db, name).await?;
    let mut sql = Sql::default();
    let test_id = sql.int(id);
    let cond = filter.runs_condition(&mut sql);
    let text = format!(
        "SELECT runs.id, runs.started_at, r.status, r.duration_ms, runs.commit_sha, runs.branch, \
         runs.labels, runs.uuid, b.name, r.message, runs.status, {} \
         FROM results r JOIN runs ON runs.id = r.run_id \
         LEFT JOIN batches b ON b.id = r.batch_id \
         WHERE r.test_id = {test_id} AND {cond}",
        mass::COLUMNS
    );
    let mut rows: Vec<(i64, i64, HistoryEntry)> = Vec::new();
    for_each_row!(db, sql, &text, |row| {
        let started: i64 = row.try_get(1)?;
        let duration: Option<i64> = row.try_get(3)?;
        rows.push((
            started,
            row.try_get(0)?,
            HistoryEntry {
                test: test.clone(),
                time: time(started),
                status: status(row.try_get(2)?)?,
                duration: duration.map(from_duration_millis),
                commit: row.try_get(4)?,
                branch: row.try_get(5)?,
                labels: row.try_get(6)?,
                run: row.try_get(7)?,
                batch: row.try_get(8)?,
                message: row.try_get(9)?,
                run_status: run_status(row.try_get::<Option<&str>, _>(10)?)?,
                mass_failure: MassFailure::from_columns(
                    row.try_get(11)?,
                    row.try_get(12)?,
                    row.try_get(13)?,
                    filter.mass_failure_share,
                ),
            },
        ));
    });
    rows.sort_unstable_by_key(|(started, run, _)| (*started, *run));
    let results: Vec<HistoryEntry> = rows.into_iter().map(|(_, _, e)| e).collect();
    Ok(TestHistory {
        test,
        verdicts: verdicts(&results, params),
        results,
    })
}

/// The id and full name of the one test `name` names.
pub async fn resolve(db: &Db, name: &str) -> Result<(i64, String)> {
    let mut sql = Sql::default();
    let text = format!("SELECT id, name FROM tests WHERE name = {}", sql.text(name));
    let mut exact = None;
    for_each_row!(db, sql, &text, |row| {
        exact = Some((row.try_get(0)?, row.try_get(1)?));
    });
    if let Some(found) = exact {
        return Ok(found);
    }
    // Then the names containing it, matched as plain text: a LIKE
    // pattern made of a name fails past SQLite's 50,000-byte pattern limit
    // ("LIKE or GLOB pattern too complex"), and `instr`/`strpos` compare
    // exactly (case-sensitively) on both backends.
    let mut sql = Sql::default();
    let function = match db.pool {
        Pool::Sqlite(_) => "instr",
        Pool::Postgres(_) => "strpos",
    };
    let text = format!(
        "SELECT id, name FROM tests WHERE {function}(name, {}) > 0",
        sql.text(name)
    );
    let mut containing: Vec<(i64, String)> = Vec::new();
    for_each_row!(db, sql, &text, |row| {
        let found: String = row.try_get(1)?;
        if found.contains(name) {
            containing.push((row.try_get(0)?, found));
        }
    });
    containing.sort_by(|a, b| a.1.cmp(&b.1));
    let suffix = format!("/{name}");
    let ending: Vec<(i64, String)> = containing
        .iter()
        .filter(|(_, n)| n.ends_with(&suffix))
        .cloned()
        .collect();
    let matches = if ending.is_empty() {
        containing
    } else {
        ending
    };
    match matches.len() {
        0 => Err(QueryError::UnknownTest(name.to_owned())),
        1 => Ok(matches.into_iter().next().unwrap_or_default()),
        total => Err(QueryError::AmbiguousTest {
            test: name.to_owned(),
            candidates: matches
                .into_iter()
                .take(MAX_CANDIDATES)
                .map(|(_, n)| n)
                .collect(),
            total,
        }),
    }
}
