//! `warden history TEST`: one test's results, oldest first.
//!
//! TEST is a full name, else the unique name ending with `/TEST`, else the
//! unique name containing TEST; more than one match is an error naming
//! them, so a short name never silently picks one of several tests.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::mass::{self, MassFailure};
use super::{
    Filter, QueryError, Result, Sql, for_each_row, run_status, serialize_opt_ms, serialize_status,
    serialize_time, status, time,
};
use crate::history::Db;
use crate::history::db::Pool;
use crate::history::model::from_duration_millis;
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
}

/// The results of the test `name` names, in `filter`'s runs, oldest first.
pub async fn history(db: &Db, filter: &Filter, name: &str) -> Result<TestHistory> {
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
    Ok(TestHistory {
        test,
        results: rows.into_iter().map(|(_, _, e)| e).collect(),
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
