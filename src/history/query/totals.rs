//! Everything the store holds, counted: runs by label set and status,
//! batches by label set, name and status with their durations in
//! buckets, test results by status; what `warden serve`'s `/metrics`
//! reports as counters (cumulative since the oldest run kept).
//!
//! Each count is one `GROUP BY` statement the store answers with as many
//! rows as there are label sets × batch names × statuses (× duration
//! buckets), never one per run or result; test results are summed from
//! the daily rollups ([`crate::history::rollup`]), not from `results`.
//! Only the tests named ([`totals`]' `tests`) are counted from `results`,
//! through its key (test first).

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::{Result, Sql, for_each_row, run_status, status, time, word};
use crate::history::Db;
use crate::phase::Phase;
use crate::status::{RunStatus, Status, TestStatus};

/// The upper bounds (inclusive, milliseconds) of the batch duration
/// buckets; a last bucket holds the longer ones. README: "Prometheus".
pub const DURATION_BUCKETS_MS: [i64; 12] = [
    1_000, 5_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_200_000, 1_800_000,
    3_600_000, 7_200_000,
];

/// The store's counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Every label set (`k=v k=v`, as runs store it) → its labels, by key.
    pub label_sets: BTreeMap<String, Vec<(String, String)>>,
    pub runs: Vec<RunCount>,
    pub batches: Vec<BatchCount>,
    /// Test results by status: passed, failed, flaky, skipped.
    pub results: Vec<(TestStatus, u64)>,
    /// The named tests' results by label set and status.
    pub tests: Vec<TestCount>,
}

/// Runs of one label set with one status ([`RunStatus::Incomplete`]: no
/// end recorded, running now or their warden died).
#[derive(Debug, Clone, PartialEq)]
pub struct RunCount {
    pub labels: String,
    pub status: RunStatus,
    pub runs: u64,
    /// The latest start among them.
    pub last_started: SystemTime,
}

/// Batches (setup and post steps too; not imported suites) of one name
/// in runs of one label set, with one status.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchCount {
    pub labels: String,
    pub batch: String,
    pub status: Status,
    pub batches: u64,
    /// How many fall in each bucket of [`DURATION_BUCKETS_MS`], and past
    /// the last (not cumulative): one more entry than the bounds.
    pub buckets: Vec<u64>,
    /// Their durations summed.
    pub duration_ms: u64,
}

/// One named test's results with one status in runs of one label set.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCount {
    pub test: String,
    pub labels: String,
    pub status: TestStatus,
    pub results: u64,
}

/// The store's counts, and the results of the tests named `tests` (exact
/// names; a name no test has counts nothing).
pub async fn totals(db: &Db, tests: &[String]) -> Result<Totals> {
    Ok(Totals {
        label_sets: label_sets(db).await?,
        runs: runs(db).await?,
        batches: batches(db).await?,
        results: results(db).await?,
        tests: named_tests(db, tests).await?,
    })
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Each label set's labels, read from one run that has it (the text
/// alone is ambiguous: a value may hold a space).
async fn label_sets(db: &Db) -> Result<BTreeMap<String, Vec<(String, String)>>> {
    let sql = Sql::default();
    let text = "SELECT r.labels, l.key, l.value FROM runs r JOIN run_labels l ON l.run_id = r.id \
                WHERE r.id IN (SELECT MIN(m.id) FROM runs m GROUP BY m.labels)";
    let mut sets: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for_each_row!(db, sql, text, |row| {
        sets.entry(row.try_get(0)?)
            .or_default()
            .push((row.try_get(1)?, row.try_get(2)?));
    });
    for labels in sets.values_mut() {
        labels.sort();
    }
    Ok(sets)
}

async fn runs(db: &Db) -> Result<Vec<RunCount>> {
    let sql = Sql::default();
    let text = "SELECT r.labels, r.status, COUNT(*), MAX(r.started_at) FROM runs r \
                GROUP BY r.labels, r.status";
    let mut found = Vec::new();
    for_each_row!(db, sql, text, |row| {
        found.push(RunCount {
            labels: row.try_get(0)?,
            status: run_status(row.try_get::<Option<&str>, _>(1)?)?,
            runs: count(row.try_get(2)?),
            last_started: time(row.try_get(3)?),
        });
    });
    // Sorted here: the backends order text differently.
    found.sort_by(|a, b| (&a.labels, a.status.as_str()).cmp(&(&b.labels, b.status.as_str())));
    Ok(found)
}

async fn batches(db: &Db) -> Result<Vec<BatchCount>> {
    let mut sql = Sql::default();
    // Cast: PostgreSQL types the literals INT4.
    let mut bucket = String::from("CAST(CASE");
    for (i, bound) in DURATION_BUCKETS_MS.iter().enumerate() {
        bucket.push_str(&format!(
            " WHEN b.duration_ms <= {} THEN {i}",
            sql.int(*bound)
        ));
    }
    bucket.push_str(&format!(
        " ELSE {} END AS BIGINT)",
        DURATION_BUCKETS_MS.len()
    ));
    let suite = sql.text(Phase::Suite.as_str());
    let text = format!(
        "SELECT r.labels, b.name, b.status, {bucket} AS bucket, COUNT(*), \
         CAST(SUM(b.duration_ms) AS BIGINT) \
         FROM batches b JOIN runs r ON r.id = b.run_id WHERE b.phase <> {suite} \
         GROUP BY r.labels, b.name, b.status, bucket"
    );
    let mut found: BTreeMap<(String, String, String), BatchCount> = BTreeMap::new();
    for_each_row!(db, sql, &text, |row| {
        let labels: String = row.try_get(0)?;
        let batch: String = row.try_get(1)?;
        let st: String = row.try_get(2)?;
        let b = usize::try_from(row.try_get::<i64, _>(3)?).unwrap_or(0);
        let n = count(row.try_get(4)?);
        let sum = count(row.try_get::<Option<i64>, _>(5)?.unwrap_or(0));
        let status = word::<Status>(&st)?;
        let c = found
            .entry((labels.clone(), batch.clone(), st))
            .or_insert_with(|| BatchCount {
                labels,
                batch,
                status,
                batches: 0,
                buckets: vec![0; DURATION_BUCKETS_MS.len() + 1],
                duration_ms: 0,
            });
        c.batches += n;
        c.duration_ms += sum;
        if let Some(slot) = c.buckets.get_mut(b) {
            *slot += n;
        }
    });
    Ok(found.into_values().collect())
}

/// From the daily rollups: one row per test and day, summed.
async fn results(db: &Db) -> Result<Vec<(TestStatus, u64)>> {
    let sql = Sql::default();
    let text = "SELECT CAST(SUM(d.passed) AS BIGINT), CAST(SUM(d.failed) AS BIGINT), \
                CAST(SUM(d.flaky) AS BIGINT), CAST(SUM(d.skipped) AS BIGINT) FROM test_days d";
    let mut sums = [0_u64; 4];
    for_each_row!(db, sql, text, |row| {
        for (i, sum) in sums.iter_mut().enumerate() {
            *sum = count(row.try_get::<Option<i64>, _>(i)?.unwrap_or(0));
        }
    });
    Ok([
        TestStatus::Passed,
        TestStatus::Failed,
        TestStatus::Flaky,
        TestStatus::Skipped(None),
    ]
    .into_iter()
    .zip(sums)
    .collect())
}

async fn named_tests(db: &Db, tests: &[String]) -> Result<Vec<TestCount>> {
    let mut found = Vec::new();
    // Far below both backends' parameter limits per statement.
    for chunk in tests.chunks(500) {
        let mut sql = Sql::default();
        let names: Vec<String> = chunk.iter().map(|t| sql.text(t)).collect();
        let text = format!(
            "SELECT t.name, r.labels, res.status, COUNT(*) FROM tests t \
             JOIN results res ON res.test_id = t.id JOIN runs r ON r.id = res.run_id \
             WHERE t.name IN ({}) GROUP BY t.name, r.labels, res.status",
            names.join(", ")
        );
        for_each_row!(db, sql, &text, |row| {
            found.push(TestCount {
                test: row.try_get(0)?,
                labels: row.try_get(1)?,
                status: status(row.try_get(2)?)?,
                results: count(row.try_get(3)?),
            });
        });
    }
    found.sort_by(|a, b| {
        (&a.test, &a.labels, a.status.code()).cmp(&(&b.test, &b.labels, b.status.code()))
    });
    Ok(found)
}
