//! Results reach PostgreSQL through `COPY` (src/history/copy_in.rs): any
//! text survives the COPY text format byte for byte, a name twice in one
//! run keeps its first result and counts once, and a big run lands whole
//! with its counts.

#[macro_use]
mod common;

use std::time::{Duration, SystemTime};

use common::{Warden, block_on, q};
use sqlx::postgres::PgPool;
use warden::history::model::{BatchRecord, Labels, RunRecord, RunSource, TestRecord};
use warden::history::{Access, Db, Location};
use warden::phase::Phase;
use warden::status::{RunStatus, Status, TestStatus};

fn run_record(uuid: &str) -> RunRecord {
    RunRecord {
        uuid: uuid.into(),
        started: SystemTime::now(),
        commit: None,
        branch: None,
        host: "h".into(),
        labels: Labels::default(),
        source: RunSource::Run,
    }
}

fn batch(name: &str, tests: Vec<TestRecord>) -> BatchRecord {
    BatchRecord {
        name: name.into(),
        phase: Phase::Batch,
        status: Status::Failed,
        reason: "exit code 1".into(),
        started: SystemTime::now(),
        duration: Duration::from_millis(20),
        log: None,
        attempts: Vec::new(),
        tests,
        usage: None,
    }
}

fn test(name: &str, status: TestStatus, message: Option<&str>, ms: Option<u64>) -> TestRecord {
    TestRecord {
        name: name.into(),
        status,
        duration: ms.map(Duration::from_millis),
        message: message.map(str::to_owned),
    }
}

/// Names and messages that COPY's text format would misread unescaped.
fn hostile() -> Vec<String> {
    let mut all: Vec<String> = [
        "tab\there",
        "new\nline",
        "carriage\rreturn",
        "back\\slash",
        "\\N",
        "\\.",
        "ends with backslash\\",
        "'single' \"double\" `back`",
        "ünïcödé ✓ 测试 🦀",
        "",
        " leading and trailing ",
        "\\t literally",
        "\u{1b}[31mred\u{1b}[0m",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // 64 KiB, every printable ASCII byte and the escapes among them.
    all.push(
        "a\tb\\c\nd\re\\Nf"
            .chars()
            .chain((0x20u8..0x7f).map(char::from))
            .cycle()
            .take(64 * 1024)
            .collect(),
    );
    all
}

#[test]
fn hostile_names_and_messages_come_back_byte_identical() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let texts = hostile();
    block_on(async {
        let db = Db::open(&url.parse::<Location>().unwrap(), Access::Write)
            .await
            .unwrap();
        let run = db.begin_run(&run_record("hostile")).await.unwrap();
        let tests: Vec<TestRecord> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                // Long names too: a name is any text the output held.
                let name: String = format!("b/{i}/{}", &t[..t.len().min(2000)]);
                test(
                    &name,
                    TestStatus::Failed,
                    Some(t),
                    (i % 2 == 0).then_some(3),
                )
            })
            .collect();
        db.record_batch(run, &batch("b", tests.clone()))
            .await
            .unwrap();
        db.finish_run(run, RunStatus::Failed, SystemTime::now())
            .await
            .unwrap();
        db.close().await;

        let p = PgPool::connect(&url).await.unwrap();
        let rows: Vec<(String, Option<String>, Option<i64>, i64)> = sqlx::query_as(
            "SELECT t.name, r.message, r.duration_ms, r.status \
             FROM results r JOIN tests t ON t.id = r.test_id",
        )
        .fetch_all(&p)
        .await
        .unwrap();
        assert_eq!(rows.len(), tests.len());
        for want in &tests {
            let got = rows
                .iter()
                .find(|r| r.0 == want.name)
                .unwrap_or_else(|| panic!("no result named {:?}", want.name));
            assert_eq!(got.1.as_deref(), want.message.as_deref(), "{:?}", want.name);
            assert_eq!(
                got.2,
                want.duration.map(|d| d.as_millis() as i64),
                "{:?}",
                want.name
            );
            assert_eq!(got.3, 2);
        }
        let counts: (i64, i64) =
            sqlx::query_as("SELECT tests_run, tests_failed FROM runs WHERE id = $1")
                .bind(run)
                .fetch_one(&p)
                .await
                .unwrap();
        assert_eq!(counts, (tests.len() as i64, tests.len() as i64));
        p.close().await;
    });
}

/// A NUL (which test output can hold and PostgreSQL text cannot) becomes
/// U+FFFD instead of failing the batch; NULL stays NULL, `\N` stays text.
#[test]
fn nul_becomes_a_replacement_character_and_null_stays_null() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    block_on(async {
        let db = Db::open(&url.parse::<Location>().unwrap(), Access::Write)
            .await
            .unwrap();
        let run = db.begin_run(&run_record("nul")).await.unwrap();
        let tests = vec![
            test(
                "b/nul\0name",
                TestStatus::Failed,
                Some("nul\0message"),
                None,
            ),
            test("b/none", TestStatus::Passed, None, None),
            test("b/backslash-n", TestStatus::Failed, Some("\\N"), Some(0)),
        ];
        db.record_batch(run, &batch("b", tests)).await.unwrap();
        db.close().await;
        let p = PgPool::connect(&url).await.unwrap();
        let mut rows: Vec<(String, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT t.name, r.message, r.duration_ms \
             FROM results r JOIN tests t ON t.id = r.test_id ORDER BY t.name",
        )
        .fetch_all(&p)
        .await
        .unwrap();
        rows.sort();
        assert_eq!(
            rows,
            [
                ("b/backslash-n".into(), Some("\\N".into()), Some(0)),
                ("b/none".into(), None, None),
                (
                    "b/nul\u{FFFD}name".into(),
                    Some("nul\u{FFFD}message".into()),
                    None
                ),
            ]
        );
        p.close().await;
    });
}

/// A name in two batches of one run (possible in imports) keeps its first
/// result and counts once; writing it again later neither adds nor counts.
#[test]
fn a_name_twice_in_a_run_keeps_the_first_result_and_counts_once() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    block_on(async {
        let db = Db::open(&url.parse::<Location>().unwrap(), Access::Write)
            .await
            .unwrap();
        let run = db.begin_run(&run_record("twice")).await.unwrap();
        let first = batch(
            "x",
            vec![
                test("s/t", TestStatus::Passed, None, Some(1)),
                test("s/u", TestStatus::Failed, Some("u"), Some(1)),
            ],
        );
        let second = batch(
            "y",
            vec![test("s/t", TestStatus::Failed, Some("second"), Some(2))],
        );
        db.record_batches(run, &[first, second.clone()])
            .await
            .unwrap();
        db.record_batch(run, &second).await.unwrap();
        db.close().await;
        let p = PgPool::connect(&url).await.unwrap();
        let (n, status): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), MIN(r.status) FROM results r JOIN tests t ON t.id = r.test_id \
             WHERE t.name = 's/t'",
        )
        .fetch_one(&p)
        .await
        .unwrap();
        assert_eq!((n, status), (1, 1));
        let counts: (i64, i64) =
            sqlx::query_as("SELECT tests_run, tests_failed FROM runs WHERE id = $1")
                .bind(run)
                .fetch_one(&p)
                .await
                .unwrap();
        assert_eq!(counts, (2, 1));
        p.close().await;
    });
}

/// A batch printing 20,000 TAP results: every one lands, with the run's
/// counts.
#[test]
fn a_run_of_20000_results_lands_complete() {
    const N: i64 = 20_000;
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let script = format!(
        "awk 'BEGIN {{ print \"TAP version 13\"; print \"1..{N}\"; \
         for (i = 1; i <= {N}; i++) {{ \
         if (i % 100 == 0) print \"not ok \" i \" case\" i; \
         else if (i % 250 == 1) print \"ok \" i \" case\" i \" # SKIP no\"; \
         else print \"ok \" i \" case\" i }} }}'"
    );
    let r = Warden::pgroup()
        .batch(&format!(
            "name = \"big\"\ncommand = [\"sh\", \"-c\", {}]\nformat = \"tap\"",
            q(&script)
        ))
        .arg("--history")
        .arg(&url)
        .run();
    r.assert_code(1);
    r.assert_stdout_contains(" recorded in postgres://");
    assert!(!r.stdout.contains("History: warning"), "{}", r.context);
    let failed = N / 100;
    let skipped = (1..=N).filter(|i| i % 100 != 0 && i % 250 == 1).count() as i64;
    block_on(async {
        let p = PgPool::connect(&url).await.unwrap();
        let results: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM results")
            .fetch_one(&p)
            .await
            .unwrap();
        assert_eq!(results, N);
        let tests: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tests")
            .fetch_one(&p)
            .await
            .unwrap();
        assert_eq!(tests, N);
        let by_status: Vec<(i64, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM results GROUP BY status ORDER BY status")
                .fetch_all(&p)
                .await
                .unwrap();
        assert_eq!(
            by_status,
            [(1, N - failed - skipped), (2, failed), (4, skipped)]
        );
        let counts: (i64, i64) = sqlx::query_as("SELECT tests_run, tests_failed FROM runs")
            .fetch_one(&p)
            .await
            .unwrap();
        assert_eq!(counts, (N - skipped, failed));
        p.close().await;
    });
}

/// Deleting a run deletes its results (PostgreSQL: a statement-level
/// trigger, migrations/postgres/0007, where a foreign key cascaded), and
/// deleting a batch deletes the batch's; other runs' results stay.
#[test]
fn deleting_a_run_or_a_batch_deletes_its_results() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    block_on(async {
        let db = Db::open(&url.parse::<Location>().unwrap(), Access::Write)
            .await
            .unwrap();
        let mut runs = Vec::new();
        for uuid in ["keep", "gone"] {
            let run = db.begin_run(&run_record(uuid)).await.unwrap();
            let tests = |b: &str| {
                (0..3)
                    .map(|i| test(&format!("{b}/t{i}"), TestStatus::Passed, None, Some(1)))
                    .collect()
            };
            db.record_batches(run, &[batch("a", tests("a")), batch("b", tests("b"))])
                .await
                .unwrap();
            runs.push(run);
        }
        db.close().await;
        let p = PgPool::connect(&url).await.unwrap();
        let count = |sql: &'static str| {
            let p = p.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&p)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(count("SELECT COUNT(*) FROM results").await, 12);
        sqlx::query("DELETE FROM batches WHERE run_id = $1 AND name = 'a'")
            .bind(runs[0])
            .execute(&p)
            .await
            .unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM results").await, 9);
        sqlx::query("DELETE FROM runs WHERE id = $1")
            .bind(runs[1])
            .execute(&p)
            .await
            .unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM results").await, 3);
        assert_eq!(count("SELECT COUNT(*) FROM batches").await, 1);
        // A transaction that says the results are gone (`warden prune`,
        // which deletes them first) skips the look-up, and only it.
        let mut tx = p.begin().await.unwrap();
        sqlx::query("SET LOCAL warden.results_deleted = 'on'")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("DELETE FROM batches")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM batches").await, 0);
        assert_eq!(count("SELECT COUNT(*) FROM results").await, 3);
        sqlx::query("DELETE FROM runs").execute(&p).await.unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM results").await, 0);
        p.close().await;
    });
}
