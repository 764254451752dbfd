//! The daily rollups (`test_days`, history::rollup) give the answers the
//! raw results give: `durations --tests` read from them against the same
//! query over every result (a label every run has makes it scan them), on
//! SQLite and on the suite's throwaway PostgreSQL, after runs recorded
//! batch by batch, after an import of many runs, after a prune, and for a
//! store written before migration 0009 (its rollups filled on opening).

#[macro_use]
mod common;

use std::time::{Duration, SystemTime};

use common::block_on;
use warden::history::classify::Params;
use warden::history::db::{FinishedRun, Pool};
use warden::history::model::{BatchRecord, Label, Labels, RunRecord, RunSource, TestRecord};
use warden::history::prune::{self, Prune};
use warden::history::query::{self, DurationRow, Filter, Subject};
use warden::history::{Access, Db, Location};
use warden::phase::Phase;
use warden::status::{RunStatus, Status, TestStatus};

const DAY: Duration = Duration::from_secs(86_400);
const TESTS: usize = 40;

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn run_record(uuid: String, started: SystemTime, arch: &str) -> RunRecord {
    let mut labels = Labels::default();
    labels.insert("arch".into(), arch.into());
    labels.insert("all".into(), "yes".into());
    RunRecord {
        uuid,
        started,
        commit: None,
        branch: None,
        host: "seed".into(),
        labels,
        source: RunSource::Run,
    }
}

/// Batch `b` of a run: tests `b, b + 3, …`, statuses and durations from `rng`
/// (some skipped, some without a duration, durations from 0 to ~20 s).
fn batch(rng: &mut Rng, b: usize, started: SystemTime) -> BatchRecord {
    let tests = (b..TESTS)
        .step_by(3)
        .map(|t| {
            let status = match rng.below(20) {
                0 => TestStatus::Failed,
                1 => TestStatus::Flaky,
                2 => TestStatus::Skipped(None),
                _ => TestStatus::Passed,
            };
            let duration = match rng.below(30) {
                0 => None,
                _ => Some(Duration::from_millis(rng.below(1 << (t % 15 + 1)))),
            };
            TestRecord {
                name: format!("suite{b}/test{t:02}"),
                status,
                duration,
                message: None,
            }
        })
        .collect();
    BatchRecord {
        name: format!("suite{b}"),
        phase: Phase::Batch,
        status: Status::Passed,
        reason: String::new(),
        started,
        duration: Duration::from_secs(1),
        log: None,
        attempts: Vec::new(),
        tests,
        usage: None,
    }
}

/// `runs` runs every 7 hours back from now, from `seed`; recorded batch by
/// batch (as `warden run` does) or all in one import.
async fn write(db: &Db, seed: u64, runs: usize, import: bool) {
    let mut rng = Rng(seed);
    let now = SystemTime::now();
    let mut all: Vec<(RunRecord, Vec<BatchRecord>)> = Vec::new();
    for k in 0..runs {
        let started = now - Duration::from_secs(7 * 3600 * k as u64 + 60);
        let arch = ["x86_64", "s390x"][k % 2];
        let run = run_record(format!("run-{seed}-{k}"), started, arch);
        let batches: Vec<BatchRecord> = (0..3).map(|b| batch(&mut rng, b, started)).collect();
        all.push((run, batches));
    }
    if import {
        let finished: Vec<FinishedRun<'_>> = all
            .iter()
            .map(|(run, batches)| FinishedRun {
                run,
                batches,
                status: RunStatus::Passed,
                ended: run.started + Duration::from_secs(10),
            })
            .collect();
        db.record_runs(&finished).await.unwrap();
    } else {
        for (run, batches) in &all {
            let id = db.begin_run(run).await.unwrap();
            for b in batches {
                db.record_batch(id, b).await.unwrap();
            }
            // A test of an earlier batch again: kept once, counted once.
            let mut again = batches[0].clone();
            again.name = "again".into();
            db.record_batch(id, &again).await.unwrap();
            db.finish_run(id, RunStatus::Passed, run.started + Duration::from_secs(10))
                .await
                .unwrap();
        }
    }
}

fn window(days: u64, labels: Vec<Label>) -> Filter {
    Filter::last(DAY * days as u32, labels)
}

/// `durations --tests` from the rollups against the raw results (the
/// label `all=yes`, on every run, takes the raw path), for several windows,
/// some ending in the past (`durations_until`, in the middle of a day).
async fn same_durations(db: &Db) {
    let hours = |h: u64| Some(SystemTime::now() - Duration::from_secs(h * 3600));
    for (days, until) in [
        (1, None),
        (3, None),
        (30, None),
        (3, hours(30)),
        (30, hours(100)),
    ] {
        let rolled =
            query::durations_until(db, &window(days, Vec::new()), Subject::Tests, until, None)
                .await
                .unwrap();
        let all = Label {
            key: "all".into(),
            value: "yes".into(),
        };
        let raw = query::durations_until(db, &window(days, vec![all]), Subject::Tests, until, None)
            .await
            .unwrap();
        assert!(!raw.is_empty(), "{days} days until {until:?}");
        let mut rolled_by_name: Vec<&DurationRow> = rolled.iter().collect();
        let mut raw_by_name: Vec<&DurationRow> = raw.iter().collect();
        rolled_by_name.sort_by(|a, b| a.name.cmp(&b.name));
        raw_by_name.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(rolled_by_name.len(), raw_by_name.len(), "{days} days");
        for (a, b) in rolled_by_name.iter().zip(&raw_by_name) {
            assert_eq!(
                (&a.name, a.count, a.max),
                (&b.name, b.count, b.max),
                "{days} days"
            );
            // Within 1/128 (exact below 128 ms).
            for (x, y) in [(a.p50, b.p50), (a.p90, b.p90)] {
                let (x, y) = (x.as_millis() as f64, y.as_millis() as f64);
                assert!((x - y).abs() <= y / 128.0 + 0.5, "{}: {x} vs {y}", a.name);
                if y < 128.0 {
                    assert_eq!(x, y, "{}", a.name);
                }
            }
        }
    }
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    match &db.pool {
        Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
    }
}

async fn execute(db: &Db, sql: &'static str) {
    match &db.pool {
        Pool::Sqlite(p) => drop(sqlx::query(sql).execute(p).await.unwrap()),
        Pool::Postgres(p) => drop(sqlx::query(sql).execute(p).await.unwrap()),
    }
}

/// The rollups hold exactly the results' counts, day by day summed.
async fn same_counts(db: &Db) {
    let results = count(db, "SELECT COUNT(*) FROM results").await;
    let rolled = count(
        db,
        "SELECT CAST(COALESCE(SUM(passed + failed + flaky + skipped), 0) AS BIGINT) FROM test_days",
    )
    .await;
    assert_eq!(rolled, results);
    let failing = count(db, "SELECT COUNT(*) FROM results WHERE status IN (2, 3)").await;
    let rolled = count(
        db,
        "SELECT CAST(COALESCE(SUM(failed + flaky), 0) AS BIGINT) FROM test_days",
    )
    .await;
    assert_eq!(rolled, failing);
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM batches WHERE rolled = 0").await,
        0
    );
}

fn rollups_match_raw_results(location: &str) {
    let location: Location = location.parse().unwrap();
    block_on(async {
        let db = Db::open(&location, Access::Write).await.unwrap();
        // Recorded batch by batch: 20 runs over ~6 days.
        write(&db, 1, 20, false).await;
        same_counts(&db).await;
        same_durations(&db).await;
        // An import of 150 runs over ~44 days, on top.
        write(&db, 2, 150, true).await;
        same_counts(&db).await;
        same_durations(&db).await;
        // A prune of what is older than 20 days: its days are recounted.
        let pruned = prune::prune(&db, &Prune::older_than(DAY * 20, false))
            .await
            .unwrap();
        assert!(pruned.results > 0);
        same_counts(&db).await;
        same_durations(&db).await;
        // A store as migration 0009 finds it: results, no rollups. The
        // next opening fills them, and `flaky` and `regressed` (which
        // read the results lists of the rollups) say the same after.
        let params = Params::default();
        let flaky = query::flaky(&db, &window(30, Vec::new()), &[], &params)
            .await
            .unwrap();
        let regressed = query::regressed(&db, &window(30, Vec::new()), &params)
            .await
            .unwrap();
        assert!(!flaky.is_empty());
        execute(&db, "DELETE FROM test_days").await;
        execute(&db, "UPDATE batches SET rolled = 0").await;
        db.close().await;
        let db = Db::open(&location, Access::Read).await.unwrap();
        same_counts(&db).await;
        same_durations(&db).await;
        let window = window(30, Vec::new());
        assert_eq!(
            query::flaky(&db, &window, &[], &params).await.unwrap(),
            flaky
        );
        assert_eq!(
            query::regressed(&db, &window, &params).await.unwrap(),
            regressed
        );
        db.close().await;
    });
}

#[test]
fn rollups_match_raw_results_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    rollups_match_raw_results(&format!("sqlite:{}", dir.path().join("h.db").display()));
}

#[test]
fn rollups_match_raw_results_on_postgres() {
    let server = require_postgres!(shared);
    rollups_match_raw_results(&server.url(&server.fresh_database()));
}
