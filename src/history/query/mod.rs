//! The questions asked of the history: which tests flake ([`flaky`]), which
//! broke and stay broken ([`regressed`]), what one test did lately
//! ([`history`]), how long things take ([`durations`]), what the failures
//! have in common ([`failures`]), the runs themselves ([`runs`],
//! [`run`]), what batches used ([`usage`]: the p90 peak memory the
//! scheduler's admission expects), and the counts `warden serve`'s
//! `/metrics` reports ([`totals`], [`verdicts`]).
//!
//! Each query is an async function over an open [`Db`], so the same code
//! (and the same tests) run on SQLite and PostgreSQL. The SQL is kept
//! plain and portable — `$N` placeholders, no `FILTER`, no `::` casts,
//! integer columns only — and does the selecting: the window of runs, the
//! tests that failed in it. Sequences, rates and percentiles are computed
//! in Rust from rows in a known order, where they are easy to test and
//! behave the same on both backends (ordering of text, for one, differs
//! between them, so names are sorted here, never in SQL).

pub mod durations;
pub mod failures;
pub mod flaky;
pub mod history;
pub mod hunts;
pub mod mass;
pub mod regressed;
pub mod runs;
mod sequences;
pub mod totals;
pub mod usage;
pub mod verdicts;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::Serializer;

use super::db::HistoryError;
use super::model::{Label, from_unix_millis, unix_millis};
use crate::status::{RunStatus, TestStatus, Unknown};
use crate::text::inert;

pub use durations::{DurationRow, Subject, batch_p90, batch_p90_as_of, durations};
pub use failures::{ClusterRow, TestCluster, failures, test_clusters};
pub use flaky::{FlakyRow, flaky};
pub use history::{ChangeAt, HistoryEntry, LabelVerdict, TestHistory, history};
pub use hunts::{HuntArm, HuntSummary, hunts};
pub use mass::MassFailure;
pub use regressed::{Regression, RunRef, regressed};
pub use runs::{BatchSummary, FailingTest, RunDetail, RunSummary, label_values, run, runs};
pub use totals::{BatchCount, DURATION_BUCKETS_MS, RunCount, TestCount, Totals, totals};
pub use usage::peak_memory_p90;
pub use verdicts::{VerdictCounts, verdicts};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    History(#[from] HistoryError),
    // Names as people read them: made inert (they come from test output).
    #[error("no test named `{}` in the history", inert(.0))]
    UnknownTest(String),
    #[error("`{}` names {} tests: {}{}; give more of the name",
        inert(.test), .total, inert(&.candidates.join(", ")),
        if *.total > .candidates.len() { ", …" } else { "" })]
    AmbiguousTest {
        test: String,
        /// The first few, sorted.
        candidates: Vec<String>,
        total: usize,
    },
    #[error("history store: unknown result status {0} (written by a newer warden?)")]
    BadStatus(i64),
    /// A run's or batch's status or a batch's phase that names none.
    #[error("history store: {0}")]
    BadWord(#[from] Unknown),
}

impl From<sqlx::Error> for QueryError {
    fn from(e: sqlx::Error) -> QueryError {
        QueryError::History(HistoryError::Sql(e))
    }
}

pub type Result<T> = std::result::Result<T, QueryError>;

/// "in the last 30d", "in the last 12h with arch=x86_64": a window as the
/// command line and the dashboard print it (`since` as the user typed it).
pub fn describe_window(since: &str, labels: &[Label]) -> String {
    let mut s = format!("in the last {since}");
    if !labels.is_empty() {
        let labels: Vec<String> = labels
            .iter()
            .map(|l| format!("{}={}", l.key, l.value))
            .collect();
        s.push_str(" with ");
        s.push_str(&labels.join(" "));
    }
    s
}

/// Test results written as marks: `.` passed, `F` failed, `R` flaky, `s` skipped.
#[cfg(test)]
pub(crate) fn marks(marks: &str) -> Vec<crate::status::TestStatus> {
    use crate::status::TestStatus;
    marks
        .chars()
        .map(|c| match c {
            '.' => TestStatus::Passed,
            'F' => TestStatus::Failed,
            'R' => TestStatus::Flaky,
            's' => TestStatus::Skipped(None),
            _ => panic!("mark {c}"),
        })
        .collect()
}

/// Which runs a query looks at: those started since `since`, carrying every
/// one of `labels`; and which of them are mass failures (see [`mass`]).
#[derive(Debug, Clone)]
pub struct Filter {
    pub since: SystemTime,
    pub labels: Vec<Label>,
    /// A run where more than this share (0..=1) of its tests failed is a
    /// mass failure ([`MassFailure::decide`]; 1: none is).
    pub mass_failure_share: f64,
}

impl Filter {
    /// Runs of the last `window`, with all of `labels`.
    pub fn last(window: Duration, labels: Vec<Label>) -> Filter {
        Filter {
            since: SystemTime::now()
                .checked_sub(window)
                .unwrap_or(SystemTime::UNIX_EPOCH),
            labels,
            mass_failure_share: mass::DEFAULT_SHARE,
        }
    }

    /// A condition on the `runs` table (unaliased) selecting the filtered
    /// runs; its values are added to `sql`.
    fn runs_condition(&self, sql: &mut Sql) -> String {
        let mut cond = format!("runs.started_at >= {}", sql.int(unix_millis(self.since)));
        for (i, label) in self.labels.iter().enumerate() {
            let key = sql.text(&label.key);
            let value = sql.text(&label.value);
            cond.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM run_labels l{i} \
                 WHERE l{i}.run_id = runs.id AND l{i}.key = {key} AND l{i}.value = {value})"
            ));
        }
        cond
    }

    /// A subquery of the filtered runs' ids, for `run_id IN (…)`.
    fn run_ids(&self, sql: &mut Sql) -> String {
        format!(
            "SELECT runs.id FROM runs WHERE {}",
            self.runs_condition(sql)
        )
    }
}

/// A value bound to a `$N` placeholder.
#[derive(Debug, Clone)]
enum Param {
    Int(i64),
    Text(String),
}

/// The values of one statement's `$N` placeholders, numbered as they are
/// added. The statement text is built alongside with the names returned.
#[derive(Debug, Default)]
struct Sql {
    params: Vec<Param>,
}

impl Sql {
    fn int(&mut self, v: i64) -> String {
        self.params.push(Param::Int(v));
        format!("${}", self.params.len())
    }

    fn text(&mut self, v: &str) -> String {
        self.params.push(Param::Text(v.to_owned()));
        format!("${}", self.params.len())
    }
}

/// Runs `$text` with the values of `$sql` bound and runs `$each` on every
/// row as it arrives (rows are not collected first: a query may stream a
/// million). The row is the backend's own row type, read with
/// [`sqlx::Row::try_get`]. Errors return from the enclosing function (one
/// returning [`Result`]), and so may `?` in `$each`.
macro_rules! for_each_row {
    ($db:expr, $sql:expr, $text:expr, |$row:ident| $each:block) => {
        $crate::history::db::with_pool!($db, pool => {
            use futures_util::TryStreamExt as _;
            #[allow(unused_imports)]
            use sqlx::Row as _;
            // The text holds constants and `$N` placeholders only; every
            // value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(String::from($text)));
            for param in &$sql.params {
                query = match param {
                    $crate::history::query::Param::Int(v) => query.bind(*v),
                    $crate::history::query::Param::Text(v) => query.bind(v.as_str()),
                };
            }
            let mut rows = query.fetch(pool);
            while let Some($row) = rows
                .try_next()
                .await
                .map_err($crate::history::query::QueryError::from)?
            {
                $each
            }
        })
    };
}
pub(crate) use for_each_row;

/// The names of tests by id. Chunked: an `IN` list far below both
/// backends' parameter limits.
async fn test_names(
    db: &super::Db,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, String>> {
    let ids: Vec<i64> = ids.into_iter().collect();
    let mut names = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let mut sql = Sql::default();
        let list: Vec<String> = chunk.iter().map(|id| sql.int(*id)).collect();
        let text = format!(
            "SELECT id, name FROM tests WHERE id IN ({})",
            list.join(", ")
        );
        for_each_row!(db, sql, &text, |row| {
            names.insert(row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?);
        });
    }
    Ok(names)
}

fn status(code: i64) -> Result<TestStatus> {
    TestStatus::from_code(code).ok_or(QueryError::BadStatus(code))
}

/// A stored word back: a batch's status or phase.
fn word<T: FromStr<Err = Unknown>>(text: &str) -> Result<T> {
    Ok(text.parse()?)
}

/// A run's stored status; none yet: a run that never ended.
fn run_status(text: Option<&str>) -> Result<RunStatus> {
    text.map_or(Ok(RunStatus::Incomplete), word)
}

/// `2026-11-20T10:00:00Z`: how times appear in JSON.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn serialize_time<S: Serializer>(t: &SystemTime, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

fn serialize_ms<S: Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn serialize_opt_ms<S: Serializer>(
    d: &Option<Duration>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => serialize_ms(d, s),
        None => s.serialize_none(),
    }
}

fn serialize_status<S: Serializer>(st: &TestStatus, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(st.as_str())
}

fn time(ms: i64) -> SystemTime {
    from_unix_millis(ms)
}
