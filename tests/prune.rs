//! Retention: `warden prune` and `[run] retention`, with the real binary,
//! on SQLite and on the suite's throwaway PostgreSQL. The store is the
//! seeded history (tests/common/history_seed.rs: 24 runs ten days old, one
//! 60 days old) plus, here, old and unfinished runs, a big old run and two
//! hunts; `--older-than 30d` must remove exactly the old ones.

#[macro_use]
mod common;

use std::process::Output;
use std::time::{Duration, SystemTime};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

use common::{Warden, block_on, history_seed};
use warden::history::db::Pool;
use warden::history::hunts::HuntRecord;
use warden::history::model::{
    AttemptRecord, BatchRecord, Labels, RunRecord, RunSource, TestRecord,
};
use warden::history::{Access, Db, Location};
use warden::phase::Phase;
use warden::status::{RunStatus, Status, TestStatus};

const DAY: Duration = Duration::from_secs(86_400);

/// Rows per table, in this order.
const TABLES: [&str; 8] = [
    "runs",
    "run_labels",
    "batches",
    "attempts",
    "tests",
    "results",
    "hunts",
    "hunt_arms",
];

/// A store to prune: its location, and a directory to run warden in.
struct Store {
    dir: TempDir,
    location: String,
}

impl Store {
    fn sqlite() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let location = format!("sqlite:{}", dir.path().join("history.db").display());
        Store { dir, location }
    }

    fn postgres(url: String) -> Store {
        Store {
            dir: tempfile::tempdir().unwrap(),
            location: url,
        }
    }

    async fn db(&self) -> Db {
        Db::open(&self.location.parse::<Location>().unwrap(), Access::Write)
            .await
            .unwrap()
    }

    fn count(&self, sql: &str) -> i64 {
        block_on(async {
            let db = self.db().await;
            let n = count(&db, sql).await;
            db.close().await;
            n
        })
    }

    fn counts(&self) -> [i64; 8] {
        TABLES.map(|t| self.count(&format!("SELECT COUNT(*) FROM {t}")))
    }

    /// `warden ARGS --history LOCATION`, in the store's directory.
    fn warden(&self, args: &[&str]) -> Output {
        Command::new(common::warden_bin())
            .args(args)
            .arg("--history")
            .arg(&self.location)
            .current_dir(self.dir.path())
            .env_remove("WARDEN_HISTORY")
            .env("NO_COLOR", "1")
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap()
    }

    fn prune_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["prune", "--format", "json"];
        all.extend(args);
        let out = ok(self.warden(&all));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn count(db: &Db, sql: &str) -> i64 {
    match &db.pool {
        Pool::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(p)
            .await
            .unwrap(),
        Pool::Postgres(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(p)
            .await
            .unwrap(),
    }
}

fn labels() -> Labels {
    let mut l = Labels::default();
    l.insert("arch".into(), "x86_64".into());
    l
}

fn run_record(uuid: &str, started: SystemTime) -> RunRecord {
    RunRecord {
        uuid: uuid.into(),
        started,
        commit: None,
        branch: None,
        host: "seed".into(),
        labels: labels(),
        source: RunSource::Run,
    }
}

fn batch(name: &str, started: SystemTime, tests: &[String]) -> BatchRecord {
    BatchRecord {
        name: name.into(),
        phase: Phase::Batch,
        status: Status::Passed,
        reason: String::new(),
        started,
        duration: Duration::from_secs(1),
        log: None,
        attempts: Vec::new(),
        tests: tests
            .iter()
            .map(|n| TestRecord {
                name: n.clone(),
                status: TestStatus::Passed,
                duration: Some(Duration::from_millis(3)),
                message: None,
            })
            .collect(),
        usage: None,
    }
}

fn hunt(uuid: &str, started: SystemTime) -> HuntRecord {
    HuntRecord {
        uuid: uuid.into(),
        started,
        host: "seed".into(),
        labels: labels(),
        commit: None,
        batch: "bpf".into(),
        test: "bpf/maps/hash_race".into(),
        runs_per_arm: 1,
        parallel: 1,
        until_fail: false,
        dir: "/tmp/hunt".into(),
        arms: Vec::new(),
    }
}

/// The seeded history, and, besides its 60-day-old run (2 batches, 3
/// results, 2 labels, one test of its own, `net/old/gone`):
/// - `unfinished-old`: 45 days old, never ended (older than the cutoff
///   plus a day: pruned), a batch with a retried attempt and 2 results
///   under names of its own;
/// - `unfinished-recent`: 30.5 days old, never ended (within a day of the
///   cutoff: kept), 1 result;
/// - `big-old`: 40 days old, `big` results under names of its own;
/// - hunts 60 days old (pruned) and 1 day old (kept).
async fn seed(db: &Db, big: usize) {
    history_seed::seed(db).await;
    let now = SystemTime::now();
    let at = now - 45 * DAY;
    let id = db
        .begin_run(&run_record("unfinished-old", at))
        .await
        .unwrap();
    let mut b = batch(
        "old",
        at,
        &["old/unfinished/a".into(), "old/unfinished/b".into()],
    );
    b.attempts.push(AttemptRecord {
        status: Status::Failed,
        reason: "exit code 1".into(),
        duration: Duration::from_secs(1),
    });
    db.record_batch(id, &b).await.unwrap();
    let at = now - 30 * DAY - DAY / 2;
    let id = db
        .begin_run(&run_record("unfinished-recent", at))
        .await
        .unwrap();
    db.record_batch(id, &batch("recent", at, &["recent/a".into()]))
        .await
        .unwrap();
    let at = now - 40 * DAY;
    let id = db.begin_run(&run_record("big-old", at)).await.unwrap();
    let names: Vec<String> = (0..big).map(|i| format!("big/t{i:06}")).collect();
    db.record_batch(id, &batch("big", at, &names))
        .await
        .unwrap();
    db.finish_run(id, RunStatus::Passed, at + Duration::from_secs(60))
        .await
        .unwrap();
    db.record_hunt(&hunt("hunt-old", now - 60 * DAY))
        .await
        .unwrap();
    db.record_hunt(&hunt("hunt-new", now - DAY)).await.unwrap();
}

fn seeded(store: &Store, big: usize) {
    block_on(async {
        let db = store.db().await;
        seed(&db, big).await;
        db.close().await;
    });
}

/// Results of the runs that must stay: the 24 seeded ones and `unfinished-recent`.
const KEPT_RESULTS: &str = "SELECT COUNT(*) FROM results r JOIN runs u ON u.id = r.run_id \
     WHERE u.uuid LIKE 'run-__' OR u.uuid = 'unfinished-recent'";

fn prunes_exactly_the_old(store: Store) {
    const BIG: usize = 12_345;
    seeded(&store, BIG);
    let before = store.counts();
    let kept = store.count(KEPT_RESULTS);
    let big = BIG as i64;
    let report = store.prune_json(&["--older-than", "30d"]);
    let after = store.counts();
    let removed: Vec<i64> = before.iter().zip(&after).map(|(b, a)| b - a).collect();
    // runs, run_labels, batches, attempts, tests, results, hunts, hunt_arms
    assert_eq!(
        removed,
        [3, 2 + 1 + 1, 2 + 1 + 1, 1, 1 + 2 + big, 3 + 2 + big, 1, 0],
        "{TABLES:?}: {before:?} → {after:?}"
    );
    for (key, want) in [
        ("runs", 3),
        ("batches", 4),
        ("attempts", 1),
        ("results", 5 + big),
        ("run_labels", 4),
        ("tests", 3 + big),
        ("hunts", 1),
        ("summarized_runs", 0),
    ] {
        assert_eq!(report[key], want, "{key}: {report:#}");
    }
    assert_eq!(report["complete"], true);
    assert_eq!(report["older_than"], "30d");
    assert!(report["elapsed"].as_f64().unwrap() > 0.0);
    assert_eq!(store.count(KEPT_RESULTS), kept);
    assert_eq!(
        store.count(
            "SELECT COUNT(*) FROM runs WHERE uuid IN ('run-old', 'unfinished-old', 'big-old')"
        ),
        0
    );
    assert_eq!(
        store.count("SELECT COUNT(*) FROM hunts WHERE uuid = 'hunt-new'"),
        1
    );
    // Nothing more to remove the second time.
    let again = store.prune_json(&["--older-than", "30d"]);
    assert_eq!(
        (again["runs"].as_i64(), again["results"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(store.counts(), after);
    // The queries still answer.
    let flaky = ok(store.warden(&["flaky", "--format", "json"]));
    let rows: Value = serde_json::from_slice(&flaky.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["test"] == "bpf/maps/hash_race"),
        "{rows:#}"
    );
    let history = ok(store.warden(&["history", "bpf/maps/hash_race"]));
    assert!(String::from_utf8_lossy(&history.stdout).contains("hash_race"));
    // The table says the same.
    let table = ok(store.warden(&["prune", "--older-than", "30d"]));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("older than 30d"), "{text}");
    assert!(text.contains("results"), "{text}");
}

#[test]
fn prunes_exactly_the_old_runs_on_sqlite() {
    prunes_exactly_the_old(Store::sqlite());
}

#[test]
fn prunes_exactly_the_old_runs_on_postgres() {
    let server = require_postgres!(shared);
    prunes_exactly_the_old(Store::postgres(server.url(&server.fresh_database())));
}

fn keeps_summaries(store: Store) {
    seeded(&store, 100);
    let before = store.counts();
    let old_run = "SELECT tests_run * 1000 + tests_failed FROM runs WHERE uuid = 'run-old'";
    let counts = store.count(old_run);
    assert_eq!(counts, 3 * 1000 + 2);
    let report = store.prune_json(&["--older-than", "30d", "--keep-summaries"]);
    let after = store.counts();
    let removed: Vec<i64> = before.iter().zip(&after).map(|(b, a)| b - a).collect();
    // runs, run_labels and batches stay; results, attempts and the names
    // only they used go; hunts go.
    assert_eq!(
        removed,
        [0, 0, 0, 1, 1 + 2 + 100, 3 + 2 + 100, 1, 0],
        "{TABLES:?}"
    );
    assert_eq!(report["runs"], 0);
    assert_eq!(report["summarized_runs"], 3);
    assert_eq!(report["results"], 105);
    // The summary is the run's row: status, counts.
    assert_eq!(store.count(old_run), counts);
    assert_eq!(
        store.count(
            "SELECT COUNT(*) FROM batches b JOIN runs u ON u.id = b.run_id WHERE u.uuid = 'big-old'"
        ),
        1
    );
    // Then without: the summaries go too.
    let report = store.prune_json(&["--older-than", "30d"]);
    assert_eq!(
        (report["runs"].as_i64(), report["batches"].as_i64()),
        (Some(3), Some(4))
    );
    ok(store.warden(&["flaky"]));
}

#[test]
fn keep_summaries_keeps_runs_and_batches_on_sqlite() {
    keeps_summaries(Store::sqlite());
}

#[test]
fn keep_summaries_keeps_runs_and_batches_on_postgres() {
    let server = require_postgres!(shared);
    keeps_summaries(Store::postgres(server.url(&server.fresh_database())));
}

/// A batch that sleeps, then reports `n` TAP results named `name/tK`.
fn sleepy_tap(name: &str, sleep: &str, n: usize) -> String {
    let script = format!(
        "sleep {sleep}; echo 'TAP version 13'; echo '1..{n}'; i=1; \
         while [ $i -le {n} ]; do echo \"ok $i t$i\"; i=$((i+1)); done"
    );
    format!(
        "name = {}\ncommand = [\"sh\", \"-c\", {}]\nformat = \"tap\"",
        common::q(name),
        common::q(&script)
    )
}

/// A run records while prunes remove 200,000 old results: both succeed,
/// the run's results are all there, the old ones all gone.
fn prunes_while_a_run_records(store: Store) {
    const BIG: usize = 200_000;
    seeded(&store, BIG);
    let mut w = Warden::pgroup().arg("--history").arg(&store.location);
    for (k, sleep) in ["0.3", "0.6", "0.9", "1.2"].iter().enumerate() {
        w = w.batch(&sleepy_tap(&format!("b{k}"), sleep, 500));
    }
    let running = w.spawn();
    let started = std::time::Instant::now();
    let mut prunes = 0;
    let mut results = 0;
    // The first prune's span, Unix ms.
    let mut first = (0, 0);
    // Prune while the run runs (at least once, whatever the timing).
    while prunes == 0 || started.elapsed() < Duration::from_millis(1500) {
        let t0 = unix_ms(SystemTime::now());
        let report = store.prune_json(&["--older-than", "30d"]);
        if prunes == 0 {
            first = (t0, unix_ms(SystemTime::now()));
        }
        results += report["results"].as_i64().unwrap();
        prunes += 1;
    }
    let run = running.wait();
    run.assert_code(0);
    run.assert_stdout_contains("History: run ");
    assert!(!run.stdout.contains("warning"), "{}", run.stdout);
    assert_eq!(results, 5 + BIG as i64);
    let recorded = "SELECT COUNT(*) FROM results r JOIN runs u ON u.id = r.run_id \
                    WHERE u.host <> 'seed' AND u.ended_at IS NOT NULL AND u.status = 'passed'";
    assert_eq!(store.count(recorded), 4 * 500);
    // The first prune (200,000 results: seconds) was still going when
    // batches of the run ended and were recorded.
    let during = format!(
        "SELECT COUNT(*) FROM batches b JOIN runs u ON u.id = b.run_id \
         WHERE u.host <> 'seed' AND b.started_at + b.duration_ms BETWEEN {} AND {}",
        first.0, first.1
    );
    assert!(store.count(&during) >= 1, "prune {first:?}");
    assert_eq!(
        store.count("SELECT COUNT(*) FROM tests WHERE name LIKE 'big/%'"),
        0
    );
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn prunes_while_a_run_records_on_sqlite() {
    prunes_while_a_run_records(Store::sqlite());
}

#[test]
fn prunes_while_a_run_records_on_postgres() {
    let server = require_postgres!(shared);
    prunes_while_a_run_records(Store::postgres(server.url(&server.fresh_database())));
}

/// `[run] retention` prunes after a run, and not again within a day.
fn retention_prunes_once_a_day(store: Store) {
    seeded(&store, 10);
    let run = |store: &Store| {
        let r = Warden::pgroup()
            .run_section("retention = \"30d\"")
            .shell("ok", "true", "")
            .arg("--history")
            .arg(&store.location)
            .run();
        r.assert_code(0);
        r.stdout.clone()
    };
    let first = run(&store);
    assert!(
        first.contains("Retention: removed 3 runs, 15 results, 1 hunts older than 30d"),
        "{first}"
    );
    assert_eq!(
        store.count(
            "SELECT COUNT(*) FROM runs WHERE uuid IN ('run-old', 'unfinished-old', 'big-old')"
        ),
        0
    );
    assert!(store.count("SELECT value FROM store_state WHERE key = 'last_prune'") > 0);
    // Another old run: the next run within the day leaves it alone.
    block_on(async {
        let db = store.db().await;
        let at = SystemTime::now() - 50 * DAY;
        let id = db.begin_run(&run_record("later-old", at)).await.unwrap();
        db.finish_run(id, RunStatus::Passed, at).await.unwrap();
        db.close().await;
    });
    let second = run(&store);
    assert!(!second.contains("Retention"), "{second}");
    assert_eq!(
        store.count("SELECT COUNT(*) FROM runs WHERE uuid = 'later-old'"),
        1
    );
    // A day later (the last prune moved back), it goes.
    block_on(async {
        let db = store.db().await;
        let sql = "UPDATE store_state SET value = value - 86400001 WHERE key = 'last_prune'";
        match &db.pool {
            Pool::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
            Pool::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        }
        .unwrap();
        db.close().await;
    });
    let third = run(&store);
    assert!(third.contains("Retention: removed 1 runs"), "{third}");
    assert_eq!(
        store.count("SELECT COUNT(*) FROM runs WHERE uuid = 'later-old'"),
        0
    );
}

#[test]
fn retention_prunes_once_a_day_on_sqlite() {
    retention_prunes_once_a_day(Store::sqlite());
}

#[test]
fn retention_prunes_once_a_day_on_postgres() {
    let server = require_postgres!(shared);
    retention_prunes_once_a_day(Store::postgres(server.url(&server.fresh_database())));
}

#[test]
fn prune_refuses_a_zero_window_and_says_no_history() {
    let store = Store::sqlite();
    let out = store.warden(&["prune", "--older-than", "0s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("longer than zero"));
    let out = ok(store.warden(&["prune", "--older-than", "90d"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no history"));
    assert!(!store.dir.path().join("history.db").exists());
}

/// On PostgreSQL a recording joins its results to `tests` by name, with no
/// foreign key to catch a name deleted in between: a writer's open
/// transaction that touched `tests` keeps prune's hands off unused names
/// (the chunk is skipped), and once it ends the next prune removes them.
#[test]
fn unused_names_wait_for_writers_on_postgres() {
    let server = require_postgres!(shared);
    let store = Store::postgres(server.url(&server.fresh_database()));
    seeded(&store, 0);
    let orphans = "SELECT COUNT(*) FROM tests WHERE name = 'orphan'";
    block_on(async {
        let db = store.db().await;
        let Pool::Postgres(p) = &db.pool else {
            unreachable!("a PostgreSQL store")
        };
        sqlx::query("INSERT INTO tests (name) VALUES ('orphan')")
            .execute(p)
            .await
            .unwrap();
        // A writer between its insert of a name (here: one already there)
        // and its commit.
        let mut writer = p.begin().await.unwrap();
        sqlx::query("INSERT INTO tests (name) VALUES ('orphan') ON CONFLICT DO NOTHING")
            .execute(&mut *writer)
            .await
            .unwrap();
        let report = store.prune_json(&["--older-than", "30d"]);
        assert_eq!(count(&db, orphans).await, 1, "{report:#}");
        assert!(report["runs"].as_i64() > Some(0), "{report:#}");
        writer.rollback().await.unwrap();
        let report = store.prune_json(&["--older-than", "30d"]);
        assert_eq!(count(&db, orphans).await, 0, "{report:#}");
        db.close().await;
    });
}
