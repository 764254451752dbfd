//! The hunts of one test (`warden hunt`), newest first, each with its arms
//! in the order they ran: what the test page shows. Hunts live in tables
//! of their own, so nothing here touches `results`.

use std::time::SystemTime;

use serde::Serialize;

use super::{Result, Sql, for_each_row, rfc3339};
use crate::history::Db;
use crate::history::model::from_unix_millis;

/// The most hunts a page lists.
pub const MAX_HUNTS: usize = 20;

/// One hunt as the test page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HuntSummary {
    pub uuid: String,
    #[serde(serialize_with = "serialize_time")]
    pub started: SystemTime,
    pub host: String,
    pub labels: String,
    pub commit: Option<String>,
    pub test: String,
    pub runs_per_arm: i64,
    pub parallel: i64,
    pub until_fail: bool,
    pub dir: String,
    pub arms: Vec<HuntArm>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HuntArm {
    pub arm: String,
    pub runs: i64,
    pub failures: i64,
    pub median_ms: Option<i64>,
    pub cpu_stall_ms: Option<i64>,
    pub memory_stall_ms: Option<i64>,
    pub io_stall_ms: Option<i64>,
    pub p_value: Option<f64>,
    pub verdict: String,
    pub sentence: String,
}

fn serialize_time<S: serde::Serializer>(
    t: &SystemTime,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

/// The newest [`MAX_HUNTS`] hunts recorded under exactly `test`.
pub async fn hunts(db: &Db, test: &str) -> Result<Vec<HuntSummary>> {
    let mut sql = Sql::default();
    let name = sql.text(test);
    let text = format!(
        "SELECT id, uuid, started_at, host, labels, commit_sha, test, runs_per_arm, parallel, \
         until_fail, dir FROM hunts WHERE test = {name} ORDER BY started_at DESC, id DESC LIMIT {MAX_HUNTS}"
    );
    let mut found: Vec<(i64, HuntSummary)> = Vec::new();
    for_each_row!(db, sql, &text, |row| {
        found.push((
            row.try_get(0)?,
            HuntSummary {
                uuid: row.try_get(1)?,
                started: from_unix_millis(row.try_get(2)?),
                host: row.try_get(3)?,
                labels: row.try_get(4)?,
                commit: row.try_get(5)?,
                test: row.try_get(6)?,
                runs_per_arm: row.try_get(7)?,
                parallel: row.try_get(8)?,
                until_fail: row.try_get::<i64, _>(9)? != 0,
                dir: row.try_get(10)?,
                arms: Vec::new(),
            },
        ));
    });
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::default();
    let ids: Vec<String> = found.iter().map(|(id, _)| sql.int(*id)).collect();
    let text = format!(
        "SELECT hunt_id, arm, runs, failures, median_ms, cpu_stall_ms, memory_stall_ms, io_stall_ms, \
         p_value, verdict, sentence FROM hunt_arms WHERE hunt_id IN ({}) ORDER BY hunt_id, number",
        ids.join(", ")
    );
    for_each_row!(db, sql, &text, |row| {
        let id: i64 = row.try_get(0)?;
        let arm = HuntArm {
            arm: row.try_get(1)?,
            runs: row.try_get(2)?,
            failures: row.try_get(3)?,
            median_ms: row.try_get(4)?,
            cpu_stall_ms: row.try_get(5)?,
            memory_stall_ms: row.try_get(6)?,
            io_stall_ms: row.try_get(7)?,
            p_value: row.try_get(8)?,
            verdict: row.try_get(9)?,
            sentence: row.try_get(10)?,
        };
        if let Some((_, h)) = found.iter_mut().find(|(i, _)| *i == id) {
            h.arms.push(arm);
        }
    });
    Ok(found.into_iter().map(|(_, h)| h).collect())
}
