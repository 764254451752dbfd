//! Hunts as the history keeps them (`warden hunt`): tables of their own
//! (`hunts`, `hunt_arms`, migration 0005), never `runs` or `results`, so
//! what a hunt provokes on purpose never counts towards a test's flaky or
//! regressed verdict. The test page lists them (`query::hunts`).

use std::time::SystemTime;

use super::db::{Db, Result, with_pool};
use super::model::{Labels, unix_millis};

const INSERT_HUNT: &str = "INSERT INTO hunts \
     (uuid, started_at, host, labels, commit_sha, batch, test, runs_per_arm, parallel, until_fail, dir) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id";
const INSERT_ARM: &str = "INSERT INTO hunt_arms \
     (hunt_id, number, arm, runs, failures, median_ms, cpu_stall_ms, memory_stall_ms, io_stall_ms, \
      p_value, verdict, sentence) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// One hunt.
#[derive(Debug, Clone)]
pub struct HuntRecord {
    pub uuid: String,
    pub started: SystemTime,
    pub host: String,
    pub labels: Labels,
    pub commit: Option<String>,
    pub batch: String,
    /// As the history names tests: `batch` or `batch/test`.
    pub test: String,
    pub runs_per_arm: u64,
    pub parallel: u64,
    pub until_fail: bool,
    /// Where its logs are.
    pub dir: String,
    /// In the order they ran, the control first.
    pub arms: Vec<HuntArmRecord>,
}

/// One arm of a hunt, judged.
#[derive(Debug, Clone, PartialEq)]
pub struct HuntArmRecord {
    /// `none`, `io=10M`, …
    pub arm: String,
    pub runs: u64,
    pub failures: u64,
    pub median_ms: Option<u64>,
    pub cpu_stall_ms: Option<u64>,
    pub memory_stall_ms: Option<u64>,
    pub io_stall_ms: Option<u64>,
    pub p_value: Option<f64>,
    /// `stable`, `flaky`, `broken`, `sensitive`, `not-sensitive`, …
    pub verdict: String,
    /// The verdict in words.
    pub sentence: String,
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Db {
    /// Records a hunt and its arms in one transaction; returns its id.
    pub async fn record_hunt(&self, hunt: &HuntRecord) -> Result<i64> {
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            let id: i64 = sqlx::query_scalar(INSERT_HUNT)
                .bind(&hunt.uuid)
                .bind(unix_millis(hunt.started))
                .bind(&hunt.host)
                .bind(hunt.labels.canonical())
                .bind(hunt.commit.as_deref())
                .bind(&hunt.batch)
                .bind(&hunt.test)
                .bind(int(hunt.runs_per_arm))
                .bind(int(hunt.parallel))
                .bind(i64::from(hunt.until_fail))
                .bind(&hunt.dir)
                .fetch_one(&mut *tx)
                .await?;
            for (number, a) in hunt.arms.iter().enumerate() {
                sqlx::query(INSERT_ARM)
                    .bind(id)
                    .bind(int(number as u64))
                    .bind(&a.arm)
                    .bind(int(a.runs))
                    .bind(int(a.failures))
                    .bind(a.median_ms.map(int))
                    .bind(a.cpu_stall_ms.map(int))
                    .bind(a.memory_stall_ms.map(int))
                    .bind(a.io_stall_ms.map(int))
                    .bind(a.p_value)
                    .bind(&a.verdict)
                    .bind(&a.sentence)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(id)
        })
    }
}
