//! `results` partitioned by ranges of run ids (PostgreSQL,
//! migrations/postgres/0012, src/history/partition.rs): a large import
//! loads a partition of its own, each new run has a partition for its
//! results, imports running at once take ranges apart, prune removes an
//! imported run's results, and a store written before 0012 keeps its
//! results as the first partition.

#[macro_use]
mod common;

use std::time::{Duration, SystemTime};

use common::block_on;
use sqlx::postgres::PgPool;
use warden::history::db::FinishedRun;
use warden::history::model::{BatchRecord, Labels, RunRecord, RunSource, TestRecord};
use warden::history::prune::{self, Prune};
use warden::history::{Access, Db, Location};
use warden::phase::Phase;
use warden::status::{RunStatus, Status, TestStatus};

const DAY: Duration = Duration::from_secs(86_400);

fn run_record(uuid: &str, started: SystemTime, source: RunSource) -> RunRecord {
    RunRecord {
        uuid: uuid.into(),
        started,
        commit: None,
        branch: None,
        host: "h".into(),
        labels: Labels::default(),
        source,
    }
}

/// A batch of `n` tests named `t0`… (every 50th failed).
fn batch(name: &str, n: usize) -> BatchRecord {
    BatchRecord {
        name: name.into(),
        phase: Phase::Batch,
        status: Status::Failed,
        reason: "exit code 1".into(),
        started: SystemTime::now(),
        duration: Duration::from_millis(20),
        log: None,
        attempts: Vec::new(),
        tests: (0..n)
            .map(|i| TestRecord {
                name: format!("t{i}"),
                status: if i % 50 == 0 {
                    TestStatus::Failed
                } else {
                    TestStatus::Passed
                },
                duration: Some(Duration::from_millis(i as u64 % 700)),
                message: (i % 50 == 0).then(|| format!("boom {i}")),
            })
            .collect(),
        usage: None,
    }
}

/// Imports `runs` runs of `per_run` results each, started `age` ago.
async fn import(db: &Db, prefix: &str, runs: usize, per_run: usize, age: Duration) -> Vec<i64> {
    let started = SystemTime::now() - age;
    let records: Vec<RunRecord> = (0..runs)
        .map(|i| run_record(&format!("{prefix}-{i}"), started, RunSource::Import))
        .collect();
    let batches: Vec<Vec<BatchRecord>> = (0..runs).map(|_| vec![batch("b", per_run)]).collect();
    let finished: Vec<FinishedRun<'_>> = records
        .iter()
        .zip(&batches)
        .map(|(run, batches)| FinishedRun {
            run,
            batches,
            status: RunStatus::Failed,
            ended: started,
        })
        .collect();
    db.record_runs(&finished).await.unwrap()
}

async fn scalar(p: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(p)
        .await
        .unwrap()
}

/// (lo, hi, name) of every partition, in order.
async fn parts(p: &PgPool) -> Vec<(i64, i64, String)> {
    sqlx::query_as("SELECT lo, hi, name FROM results_parts ORDER BY lo")
        .fetch_all(p)
        .await
        .unwrap()
}

/// The partition each of `run`'s results is in.
async fn partitions_of(p: &PgPool, run: i64) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT DISTINCT tableoid::regclass::text FROM results WHERE run_id = $1 ORDER BY 1",
    )
    .bind(run)
    .fetch_all(p)
    .await
    .unwrap()
}

#[test]
fn a_large_import_loads_a_partition_of_its_own() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    block_on(async {
        let location: Location = url.parse().unwrap();
        let db = Db::open(&location, Access::Write).await.unwrap();
        let p = PgPool::connect(&url).await.unwrap();
        // A run begun before the import, recorded after it.
        let before = db
            .begin_run(&run_record("before", SystemTime::now(), RunSource::Run))
            .await
            .unwrap();
        assert_eq!(partitions_of(&p, before).await, Vec::<String>::new());
        let regular = parts(&p).await;
        assert_eq!(regular.len(), 2, "{regular:?}");
        assert_eq!(regular[1].0, before);
        assert_eq!(regular[1].2, format!("results_{before}"));

        // 2 × 60,000 results: past the threshold of a partition of its own.
        let ids = import(&db, "big", 2, 60_000, Duration::ZERO).await;
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[1], ids[0] + 1);
        assert!(ids[0] >= before + 1_000_000, "{ids:?} after {before}");
        let own = format!("results_{}", ids[0]);
        let after = parts(&p).await;
        assert_eq!(after.len(), 3, "{after:?}");
        assert_eq!(after[2], (ids[0], ids[0] + 2, own.clone()));
        for &id in &ids {
            assert_eq!(partitions_of(&p, id).await, std::slice::from_ref(&own));
            assert_eq!(
                scalar(
                    &p,
                    &format!("SELECT COUNT(*) FROM results WHERE run_id = {id}")
                )
                .await,
                60_000
            );
        }
        let counts: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT tests_run, tests_failed FROM runs WHERE id = ANY($1) ORDER BY id",
        )
        .bind(&ids)
        .fetch_all(&p)
        .await
        .unwrap();
        assert_eq!(counts, [(60_000, 1_200), (60_000, 1_200)]);
        // The partition carries the parent's key and indexes.
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname",
        )
        .bind(&own)
        .fetch_all(&p)
        .await
        .unwrap();
        assert_eq!(indexes.len(), 3, "{indexes:?}");
        assert!(
            indexes
                .iter()
                .any(|i| i.contains("UNIQUE") && i.contains("(test_id, run_id)"))
        );
        assert!(indexes.iter().any(|i| i.contains("brin (run_id)")));
        assert!(indexes.iter().any(|i| i.contains("WHERE (status = ANY")));
        let attached: i64 = scalar(
            &p,
            &format!("SELECT COUNT(*) FROM pg_inherits WHERE inhrelid = '{own}'::regclass"),
        )
        .await;
        assert_eq!(attached, 1);
        // A primary key violation is still one: the key is the parent's.
        let dup = sqlx::query(
            "INSERT INTO results (test_id, run_id, status) \
             SELECT test_id, run_id, 1 FROM results WHERE run_id = $1 LIMIT 1",
        )
        .bind(ids[0])
        .execute(&p)
        .await;
        assert!(dup.is_err());

        // The run begun before records into its own range's partition.
        db.record_batches(before, &[batch("b", 10)]).await.unwrap();
        assert_eq!(
            partitions_of(&p, before).await,
            [format!("results_{before}")]
        );
        // A run begun after the import takes the next id past its range,
        // and a partition of its own range.
        let next = db
            .begin_run(&run_record("next", SystemTime::now(), RunSource::Run))
            .await
            .unwrap();
        assert_eq!(next, ids[1] + 1);
        db.record_batches(next, &[batch("b", 10)]).await.unwrap();
        assert_eq!(partitions_of(&p, next).await, [format!("results_{next}")]);
        // A small import writes into the partitions of the recorded runs.
        let small = import(&db, "small", 2, 100, Duration::ZERO).await;
        assert_eq!(
            partitions_of(&p, small[0]).await,
            [format!("results_{next}")]
        );
        assert_eq!(parts(&p).await.len(), 4);
        assert_eq!(
            scalar(&p, "SELECT COUNT(*) FROM results").await,
            120_000 + 20 + 200
        );
        p.close().await;
        db.close().await;
    });
}

#[test]
fn imports_at_once_take_ranges_apart_and_prune_empties_them() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    block_on(async {
        let location: Location = url.parse().unwrap();
        let a = Db::open(&location, Access::Write).await.unwrap();
        let b = Db::open(&location, Access::Write).await.unwrap();
        let (x, y) = tokio::join!(
            import(&a, "a", 3, 40_000, DAY * 100),
            import(&b, "b", 2, 60_000, DAY * 2)
        );
        let p = PgPool::connect(&url).await.unwrap();
        let all = parts(&p).await;
        assert_eq!(all.len(), 3, "{all:?}");
        for w in all.windows(2) {
            assert!(w[0].1 <= w[1].0, "overlapping: {all:?}");
        }
        for ids in [&x, &y] {
            let own = format!("results_{}", ids[0]);
            for &id in ids.iter() {
                assert_eq!(partitions_of(&p, id).await, std::slice::from_ref(&own));
            }
        }
        assert_eq!(scalar(&p, "SELECT COUNT(*) FROM results").await, 240_000);
        // The old import goes, the recent one stays.
        let pruned = prune::prune(&a, &Prune::older_than(DAY * 30, false))
            .await
            .unwrap();
        assert_eq!(pruned.results, 120_000);
        assert_eq!(scalar(&p, "SELECT COUNT(*) FROM results").await, 120_000);
        assert_eq!(
            scalar(&p, &format!("SELECT COUNT(*) FROM results_{}", x[0])).await,
            0
        );
        p.close().await;
        a.close().await;
        b.close().await;
    });
}

/// A store as it was before migration 0012: its results become the
/// partition `results_0`, every query reads them as before, and the next
/// run's results go to a partition of their own.
#[test]
fn a_store_from_before_0012_keeps_its_results_as_the_first_partition() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    block_on(async {
        let p = PgPool::connect(&url).await.unwrap();
        let migrator = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/postgres"
        )))
        .await
        .unwrap();
        migrator.run_to(11, &p).await.unwrap();
        assert_eq!(
            scalar(
                &p,
                "SELECT COUNT(*) FROM pg_class WHERE relname = 'results' AND relkind = 'r'"
            )
            .await,
            1
        );
        sqlx::raw_sql(
            "INSERT INTO runs (uuid, started_at, host, labels, source) \
             SELECT 'old-' || k, 0, 'h', '', 'run' FROM generate_series(1, 3) k; \
             INSERT INTO tests (name) SELECT 't' || k FROM generate_series(1, 4) k; \
             INSERT INTO results (test_id, run_id, status, duration_ms) \
             SELECT t.id, r.id, 1, 5 FROM tests t, runs r",
        )
        .execute(&p)
        .await
        .unwrap();
        let db = Db::open(&url.parse::<Location>().unwrap(), Access::Write)
            .await
            .unwrap();
        assert_eq!(
            scalar(
                &p,
                "SELECT COUNT(*) FROM pg_class WHERE relname = 'results' AND relkind = 'p'"
            )
            .await,
            1
        );
        assert_eq!(partitions_of(&p, 2).await, ["results_0"]);
        assert_eq!(scalar(&p, "SELECT COUNT(*) FROM results").await, 12);
        let first = parts(&p).await;
        assert_eq!(first, [(i64::MIN, 4, "results_0".to_owned())]);
        let run = db
            .begin_run(&run_record("new", SystemTime::now(), RunSource::Run))
            .await
            .unwrap();
        assert_eq!(run, 4);
        db.record_batches(run, &[batch("b", 3)]).await.unwrap();
        assert_eq!(partitions_of(&p, run).await, ["results_4"]);
        assert_eq!(scalar(&p, "SELECT COUNT(*) FROM results").await, 15);
        p.close().await;
        db.close().await;
    });
}
