//! The runs themselves: the latest runs with their result counts
//! ([`runs`]), and one run's batches and failing tests ([`run`]); what the
//! dashboard's runs pages show. Also the label keys and values seen
//! ([`label_values`]), for its filters.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use super::mass::{self, MassFailure};
use super::{
    Filter, Result, Sql, for_each_row, rfc3339, run_status, serialize_opt_ms, serialize_status,
    serialize_time, status, test_names, time, word,
};
use crate::history::Db;
use crate::history::db::UsageColumns;
use crate::history::model::RunSource;
use crate::history::model::from_duration_millis;
use crate::phase::Phase;
use crate::status::{RunStatus, Status, TestStatus};
use crate::usage::{Usage, UsageJson};

/// One run with how its tests ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run's number: its row id, a sequence of the store (a later
    /// run has a higher number; pruned ones leave gaps).
    pub number: i64,
    /// The run's uuid: how pages and the API name it.
    pub uuid: String,
    #[serde(serialize_with = "serialize_time")]
    pub started: SystemTime,
    /// `None` for a run that never ended (its warden was killed, or it is
    /// still going).
    #[serde(serialize_with = "serialize_opt_time")]
    pub ended: Option<SystemTime>,
    #[serde(rename = "duration_ms", serialize_with = "serialize_opt_ms")]
    pub duration: Option<Duration>,
    pub status: RunStatus,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub host: String,
    /// `k=v k=v`.
    pub labels: String,
    pub source: RunSource,
    pub passed: u64,
    pub failed: u64,
    pub flaky: u64,
    pub skipped: u64,
    /// (passed + flaky) / (passed + failed + flaky): flaky tests passed in
    /// the end; skipped ones say nothing. `None` without such results.
    pub pass_rate: Option<f64>,
    /// Set when the run is a mass failure (by the filter's share; one run
    /// alone: the default share): see [`super::mass`].
    pub mass_failure: Option<MassFailure>,
}

/// A batch (or setup/post step, or imported suite) of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchSummary {
    /// The batch's row id (unique in the store).
    pub id: i64,
    pub name: String,
    /// [`Phase::Suite`] for imported JUnit; a post step reads back as not
    /// required.
    pub phase: Phase,
    pub status: Status,
    pub reason: String,
    #[serde(serialize_with = "serialize_time")]
    pub started: SystemTime,
    #[serde(rename = "duration_ms", serialize_with = "super::serialize_ms")]
    pub duration: Duration,
    /// Attempts made, the final one included.
    pub attempts: u64,
    /// Where its log was written, on the machine that ran it.
    pub log: Option<String>,
    /// What it used; `None` when not recorded (imported, or recorded by a
    /// warden before migration 0004).
    #[serde(serialize_with = "serialize_usage")]
    pub usage: Option<Usage>,
}

/// [`Usage`] in JSON ([`UsageJson`]); the batch's `usage` is `null` when
/// none was recorded.
fn serialize_usage<S: Serializer>(u: &Option<Usage>, s: S) -> std::result::Result<S::Ok, S::Error> {
    u.as_ref().map(UsageJson::from).serialize(s)
}

/// A failed or flaky result of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailingTest {
    pub test: String,
    #[serde(serialize_with = "serialize_status")]
    pub status: TestStatus,
    /// The id of its batch (see [`BatchSummary::id`]).
    pub batch: Option<i64>,
    #[serde(rename = "duration_ms", serialize_with = "serialize_opt_ms")]
    pub duration: Option<Duration>,
    pub message: Option<String>,
}

/// One run in full.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetail {
    pub run: RunSummary,
    /// In start order.
    pub batches: Vec<BatchSummary>,
    /// Failed first, then flaky, each by name.
    pub failing: Vec<FailingTest>,
}

const RUN_COLUMNS: &str = "SELECT runs.id, runs.uuid, runs.started_at, runs.ended_at, \
     runs.status, runs.commit_sha, runs.branch, runs.host, runs.labels, \
     runs.source, runs.tests_run, runs.tests_failed, runs.setup_failed FROM runs";

/// A row of [`RUN_COLUMNS`] as `(id, RunSummary)` with no counts yet,
/// its mass failure decided by `$share`.
macro_rules! run_row {
    ($row:ident, $share:expr) => {{
        let started: i64 = $row.try_get(2)?;
        let ended: Option<i64> = $row.try_get(3)?;
        (
            $row.try_get::<i64, _>(0)?,
            RunSummary {
                number: $row.try_get(0)?,
                uuid: $row.try_get(1)?,
                started: time(started),
                ended: ended.map(time),
                duration: ended.map(|e| from_duration_millis(e - started)),
                status: run_status($row.try_get::<Option<&str>, _>(4)?)?,
                commit: $row.try_get(5)?,
                branch: $row.try_get(6)?,
                host: $row.try_get(7)?,
                labels: $row.try_get(8)?,
                source: word($row.try_get(9)?)?,
                passed: 0,
                failed: 0,
                flaky: 0,
                skipped: 0,
                pass_rate: None,
                mass_failure: MassFailure::from_columns(
                    $row.try_get(10)?,
                    $row.try_get(11)?,
                    $row.try_get(12)?,
                    $share,
                ),
            },
        )
    }};
}

/// The latest `limit` runs of `filter` (0: all), newest first.
pub async fn runs(db: &Db, filter: &Filter, limit: usize) -> Result<Vec<RunSummary>> {
    let mut sql = Sql::default();
    let cond = filter.runs_condition(&mut sql);
    let limit = if limit == 0 {
        String::new()
    } else {
        format!(
            " LIMIT {}",
            sql.int(i64::try_from(limit).unwrap_or(i64::MAX))
        )
    };
    let text =
        format!("{RUN_COLUMNS} WHERE {cond} ORDER BY runs.started_at DESC, runs.id DESC{limit}");
    let mut runs: Vec<(i64, RunSummary)> = Vec::new();
    for_each_row!(db, sql, &text, |row| {
        runs.push(run_row!(row, filter.mass_failure_share));
    });
    counts(db, &mut runs).await?;
    Ok(runs.into_iter().map(|(_, r)| r).collect())
}

/// The run `uuid` with its batches and failing tests; `None` if there is
/// no such run.
pub async fn run(db: &Db, uuid: &str) -> Result<Option<RunDetail>> {
    let Some(run) = find_run(db, uuid, false).await? else {
        return Ok(None);
    };
    let id = run.number;
    let batches = run_batches(db, id).await?;

    let mut sql = Sql::default();
    let text = format!(
        "SELECT r.test_id, r.status, r.batch_id, r.duration_ms, r.message FROM results r \
         WHERE r.run_id = {} AND r.status IN ({}, {})",
        sql.int(id),
        TestStatus::Failed.code(),
        TestStatus::Flaky.code(),
    );
    let mut rows: Vec<(i64, FailingTest)> = Vec::new();
    for_each_row!(db, sql, &text, |row| {
        let duration: Option<i64> = row.try_get(3)?;
        rows.push((
            row.try_get(0)?,
            FailingTest {
                test: String::new(),
                status: status(row.try_get(1)?)?,
                batch: row.try_get(2)?,
                duration: duration.map(from_duration_millis),
                message: row.try_get(4)?,
            },
        ));
    });
    let names = test_names(db, rows.iter().map(|(id, _)| *id)).await?;
    let mut failing: Vec<FailingTest> = rows
        .into_iter()
        .map(|(id, mut t)| {
            t.test = names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
            t
        })
        .collect();
    failing.sort_by(|a, b| {
        (a.status != TestStatus::Failed, &a.test).cmp(&(b.status != TestStatus::Failed, &b.test))
    });
    Ok(Some(RunDetail {
        run,
        batches,
        failing,
    }))
}

/// The run `key` names with its counts: the run of that uuid, else for
/// `#12` or `12` the run numbered 12; `None` if there is no such run.
pub async fn run_summary(db: &Db, key: &str) -> Result<Option<RunSummary>> {
    find_run(db, key, true).await
}

/// The run of uuid `uuid`, or with `numbers` of the number it reads as.
async fn find_run(db: &Db, uuid: &str, numbers: bool) -> Result<Option<RunSummary>> {
    let mut sql = Sql::default();
    let number = uuid
        .strip_prefix('#')
        .unwrap_or(uuid)
        .parse::<i64>()
        .ok()
        .filter(|n| numbers && *n > 0);
    let text = match number {
        Some(n) => format!(
            "{RUN_COLUMNS} WHERE runs.uuid = {} OR runs.id = {}",
            sql.text(uuid),
            sql.int(n)
        ),
        None => format!("{RUN_COLUMNS} WHERE runs.uuid = {}", sql.text(uuid)),
    };
    let mut found: Vec<(i64, RunSummary)> = Vec::new();
    for_each_row!(db, sql, &text, |row| {
        found.push(run_row!(row, mass::DEFAULT_SHARE));
    });
    // A uuid that reads as a number wins over the run of that number.
    found.sort_by_key(|(_, r)| r.uuid != uuid);
    found.truncate(1);
    counts(db, &mut found).await?;
    Ok(found.pop().map(|(_, r)| r))
}

/// The batches of run `id`, in start order.
pub async fn run_batches(db: &Db, id: i64) -> Result<Vec<BatchSummary>> {
    let mut sql = Sql::default();
    let text = format!(
        "SELECT b.id, b.name, b.phase, b.status, b.reason, b.started_at, b.duration_ms, \
         b.attempts, b.log, b.peak_memory, b.cpu_ms, b.read_bytes, b.written_bytes, \
         b.cpu_stall_ms, b.memory_stall_ms, b.io_stall_ms, b.oom_kills, b.usage_partial \
         FROM batches b WHERE b.run_id = {}",
        sql.int(id)
    );
    let mut batches: Vec<BatchSummary> = Vec::new();
    for_each_row!(db, sql, &text, |row| {
        let started: i64 = row.try_get(5)?;
        let duration: i64 = row.try_get(6)?;
        let attempts: i64 = row.try_get(7)?;
        batches.push(BatchSummary {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            phase: word(row.try_get(2)?)?,
            status: word(row.try_get(3)?)?,
            reason: row.try_get(4)?,
            started: time(started),
            duration: from_duration_millis(duration),
            attempts: u64::try_from(attempts).unwrap_or(0),
            log: row.try_get(8)?,
            usage: UsageColumns {
                peak_memory: row.try_get(9)?,
                cpu_ms: row.try_get(10)?,
                read_bytes: row.try_get(11)?,
                written_bytes: row.try_get(12)?,
                cpu_stall_ms: row.try_get(13)?,
                memory_stall_ms: row.try_get(14)?,
                io_stall_ms: row.try_get(15)?,
                oom_kills: row.try_get(16)?,
                partial: row.try_get(17)?,
            }
            .usage(),
        });
    });
    batches.sort_by_key(|b| (b.started, b.id));
    Ok(batches)
}

/// What failed in a run, in brief: its first failing batches and failed
/// tests, for a list of runs (the whole lists are on the run's page).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunFailures {
    /// Batches (and steps) that ended neither passed, flaky nor not-run,
    /// the first few in start order.
    pub batches: Vec<String>,
    /// How many there are in all.
    pub failed_batches: u64,
    /// Failed tests (flaky ones passed in the end: not listed), the first
    /// few by name; their number is the run's `failed`.
    pub tests: Vec<String>,
}

/// [`RunFailures`] of the runs numbered `runs`, at most `first` names of
/// each kind per run. Bounded: the names come from a window function
/// that keeps the first `first` per run, so a run where 10,000 tests
/// failed sends 3 names, not 10,000.
pub async fn run_failures(
    db: &Db,
    runs: &[i64],
    first: usize,
) -> Result<HashMap<i64, RunFailures>> {
    let mut out: HashMap<i64, RunFailures> = HashMap::new();
    let first = i64::try_from(first).unwrap_or(i64::MAX);
    // Their words are fixed, not user text.
    let fine = [Status::Passed, Status::Flaky, Status::NotRun]
        .map(|s| format!("'{}'", s.as_str()))
        .join(", ");
    for chunk in runs.chunks(500) {
        let mut sql = Sql::default();
        let list: Vec<String> = chunk.iter().map(|id| sql.int(*id)).collect();
        let list = list.join(", ");
        let text = format!(
            "SELECT x.run_id, x.name, x.n FROM (SELECT b.run_id, b.name, \
             COUNT(*) OVER (PARTITION BY b.run_id) AS n, \
             ROW_NUMBER() OVER (PARTITION BY b.run_id ORDER BY b.started_at, b.id) AS k \
             FROM batches b WHERE b.run_id IN ({list}) AND b.status NOT IN ({fine})) x \
             WHERE x.k <= {} ORDER BY x.run_id, x.k",
            sql.int(first)
        );
        for_each_row!(db, sql, &text, |row| {
            let f = out.entry(row.try_get(0)?).or_default();
            f.batches.push(row.try_get(1)?);
            f.failed_batches = u64::try_from(row.try_get::<i64, _>(2)?).unwrap_or(0);
        });
        let mut sql = Sql::default();
        let list: Vec<String> = chunk.iter().map(|id| sql.int(*id)).collect();
        let list = list.join(", ");
        let text = format!(
            "SELECT x.run_id, x.name FROM (SELECT r.run_id, t.name, \
             ROW_NUMBER() OVER (PARTITION BY r.run_id ORDER BY {}) AS k \
             FROM results r JOIN tests t ON t.id = r.test_id \
             WHERE r.run_id IN ({list}) AND r.status = {}) x \
             WHERE x.k <= {} ORDER BY x.run_id, x.k",
            super::by_bytes(db, "t.name"),
            TestStatus::Failed.code(),
            sql.int(first)
        );
        for_each_row!(db, sql, &text, |row| {
            out.entry(row.try_get(0)?)
                .or_default()
                .tests
                .push(row.try_get(1)?);
        });
    }
    Ok(out)
}

/// Every label key with its values, as recorded for the runs started since
/// `since`, both sorted.
pub async fn label_values(db: &Db, since: SystemTime) -> Result<BTreeMap<String, Vec<String>>> {
    let mut sql = Sql::default();
    let filter = Filter {
        since,
        labels: Vec::new(),
        mass_failure_share: super::mass::DEFAULT_SHARE,
    };
    let run_ids = filter.run_ids(&mut sql);
    let text =
        format!("SELECT DISTINCT l.key, l.value FROM run_labels l WHERE l.run_id IN ({run_ids})");
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for_each_row!(db, sql, &text, |row| {
        found
            .entry(row.try_get(0)?)
            .or_default()
            .insert(row.try_get(1)?);
    });
    Ok(found
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect())
}

/// Fills in each run's result counts and pass rate.
async fn counts(db: &Db, runs: &mut [(i64, RunSummary)]) -> Result<()> {
    let at: HashMap<i64, usize> = runs
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let ids: Vec<i64> = runs.iter().map(|(id, _)| *id).collect();
    for chunk in ids.chunks(500) {
        let mut sql = Sql::default();
        let list: Vec<String> = chunk.iter().map(|id| sql.int(*id)).collect();
        let count = |s: TestStatus| format!("COUNT(CASE WHEN r.status = {} THEN 1 END)", s.code());
        let text = format!(
            "SELECT r.run_id, {}, {}, {}, {} FROM results r WHERE r.run_id IN ({}) \
             GROUP BY r.run_id",
            count(TestStatus::Passed),
            count(TestStatus::Failed),
            count(TestStatus::Flaky),
            count(TestStatus::Skipped(None)),
            list.join(", ")
        );
        for_each_row!(db, sql, &text, |row| {
            let id: i64 = row.try_get(0)?;
            if let Some(&i) = at.get(&id) {
                let n = |v: i64| u64::try_from(v).unwrap_or(0);
                let r = &mut runs[i].1;
                r.passed = n(row.try_get(1)?);
                r.failed = n(row.try_get(2)?);
                r.flaky = n(row.try_get(3)?);
                r.skipped = n(row.try_get(4)?);
            }
        });
    }
    for (_, r) in runs.iter_mut() {
        let counted = r.passed + r.failed + r.flaky;
        r.pass_rate = (counted > 0).then(|| (r.passed + r.flaky) as f64 / counted as f64);
    }
    Ok(())
}

fn serialize_opt_time<S: Serializer>(
    t: &Option<SystemTime>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}
