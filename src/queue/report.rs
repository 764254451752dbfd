//! The whole run of a key, rebuilt from the store as the outcomes a
//! `warden run` would hold, so `warden report` writes them with the same
//! JUnit and summary code as a run: per batch, the queue's row (the
//! latest attempt that has it), and what its runner recorded in the
//! history (the batch and its tests, by the runner's run uuid). Batches
//! still running or never claimed are `not-run` outcomes saying so.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgPool;

use super::QueueError;
use super::key::RunKey;
use super::store::{self, Row};
use crate::config::BatchName;
use crate::history::model::{from_duration_millis, from_unix_millis};
use crate::outcome::Outcome;
use crate::parsers::TestResult;
use crate::phase::Phase;
use crate::status::{Status, TestStatus};

/// The run as the store has it.
pub struct RunReport {
    /// In queue order (longest first).
    pub outcomes: Vec<Outcome>,
    /// One line per batch not done: still running (by whom) or never claimed.
    pub missing: Vec<String>,
    /// Machines that joined the key (host, pid), in the order they joined.
    pub runners: Vec<(String, i64)>,
}

/// `None`: no queue has this key.
pub async fn load(pool: &PgPool, key: &RunKey) -> Result<Option<RunReport>, QueueError> {
    let Some(rows) = store::rows(pool, key).await? else {
        return Ok(None);
    };
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut missing = Vec::new();
    for row in &rows {
        let Ok(name) = BatchName::new(&row.name) else {
            continue;
        };
        let outcome = match row.state.as_str() {
            "done" => done(pool, name, row).await?,
            state => {
                let why = waiting(state, row);
                missing.push(format!("{}: {why}", row.name));
                Outcome::new(
                    name,
                    Phase::Batch,
                    None,
                    PathBuf::new(),
                    Status::NotRun,
                    why,
                )
            }
        };
        outcomes.push(outcome);
    }
    let runners: Vec<(String, i64)> = sqlx::query_as(
        "SELECT r.host, r.pid FROM queue_runs r JOIN queues q ON q.run_key = r.run_key \
         WHERE q.base = $1 AND q.attempt <= $2 ORDER BY r.joined_at",
    )
    .bind(&key.base)
    .bind(key.attempt as i32)
    .fetch_all(pool)
    .await?;
    Ok(Some(RunReport {
        outcomes,
        missing,
        runners,
    }))
}

/// Why a batch that is not done has no result yet.
fn waiting(state: &str, row: &Row) -> String {
    let who = format!(
        "{}, pid {}",
        row.host.as_deref().unwrap_or("?"),
        row.pid.unwrap_or_default()
    );
    match (state, row.lease_left_ms) {
        ("running", Some(left)) if left >= 0 => format!(
            "still running on {who} (lease renewed, {} left)",
            crate::duration::rounded(Duration::from_millis(left.unsigned_abs()))
        ),
        ("running", _) => {
            format!("its runner ({who}) stopped renewing its lease; not claimed again yet")
        }
        _ => "never claimed: no machine took it".to_owned(),
    }
}

/// A finished batch: the queue's status and reason, the history's tests.
async fn done(pool: &PgPool, name: BatchName, row: &Row) -> Result<Outcome, QueueError> {
    let status = row
        .status
        .as_deref()
        .and_then(|s| Status::from_str(s).ok())
        .unwrap_or(Status::Failed);
    let mut o = Outcome::new(
        name,
        Phase::Batch,
        None,
        PathBuf::new(),
        status,
        row.reason.clone().unwrap_or_default(),
    );
    o.duration = from_duration_millis(row.duration_ms.unwrap_or_default());
    if let Some(lost) = &row.lost_host {
        o.warnings.push(format!(
            "re-run: its first runner ({lost}, pid {}) stopped renewing its lease",
            row.lost_pid.unwrap_or_default()
        ));
    }
    let Some(runner) = &row.runner else {
        return Ok(o);
    };
    let batch: Option<(i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT b.id, b.started_at, b.log FROM batches b JOIN runs r ON r.id = b.run_id \
         WHERE r.uuid = $1 AND b.name = $2 ORDER BY b.id DESC LIMIT 1",
    )
    .bind(runner)
    .bind(&row.name)
    .fetch_optional(pool)
    .await?;
    let Some((id, started, log)) = batch else {
        return Ok(o);
    };
    o.started = from_unix_millis(started);
    if let Some(log) = log {
        o.log = PathBuf::from(log);
    }
    let tests: Vec<(String, i64, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT t.name, s.status, s.duration_ms, s.message FROM results s \
         JOIN tests t ON t.id = s.test_id WHERE s.batch_id = $1 ORDER BY t.name",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let prefix = format!("{}/", row.name);
    for (test, code, ms, message) in tests {
        // A batch without tests is recorded as its own single test.
        let Some(path) = test.strip_prefix(&prefix) else {
            continue;
        };
        o.tests.push(TestResult {
            path: path.split('/').map(str::to_owned).collect(),
            status: TestStatus::from_code(code).unwrap_or(TestStatus::Failed),
            duration: ms.map(from_duration_millis),
            output: message.clone().unwrap_or_default(),
            message,
        });
    }
    Ok(o)
}
