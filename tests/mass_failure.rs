//! Mass failures through the real binary: imported runs where most tests
//! failed are kept and shown (`warden history`'s `X`, the run's counts in
//! JSON) but change no `flaky` or `regressed` answer, on SQLite and on
//! PostgreSQL; `--mass-failure 100%` counts them again. And the counts of
//! a store written before they existed (migration 0003's backfill).

#[macro_use]
mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use common::{Run, Warden};

/// Tests per run.
const TESTS: usize = 10;
/// Runs imported, oldest first.
const RUNS: usize = 12;

/// Runs where tests 1..=9 all fail (9 of 10: a mass failure): one in the
/// middle, and the last three (a streak `regressed` would report).
fn mass(run: usize) -> bool {
    matches!(run, 4 | 9 | 10 | 11)
}

/// Test 0 is flaky for real: it fails in two ordinary runs.
fn fails(run: usize, test: usize) -> bool {
    if test == 0 {
        matches!(run, 1 | 6)
    } else {
        mass(run)
    }
}

/// One JUnit file per run, an hour apart, ending an hour ago.
fn junit_files(dir: &Path) -> Vec<String> {
    let now = SystemTime::now();
    (0..RUNS)
        .map(|run| {
            let at = now - Duration::from_secs(3600 * (RUNS - run) as u64);
            let stamp = humantime::format_rfc3339_seconds(at);
            let mut xml = format!(
                "<?xml version=\"1.0\"?>\n<testsuite name=\"s\" tests=\"{TESTS}\" \
                 timestamp=\"{stamp}\">\n"
            );
            for test in 0..TESTS {
                xml.push_str(&format!(
                    "<testcase classname=\"s\" name=\"t{test}\" time=\"0.1\">"
                ));
                if fails(run, test) {
                    xml.push_str("<failure message=\"connection refused\"/>");
                }
                xml.push_str("</testcase>\n");
            }
            xml.push_str("</testsuite>\n");
            let path = dir.join(format!("run{run:02}.xml"));
            fs::write(&path, xml).unwrap();
            path.to_str().unwrap().to_owned()
        })
        .collect()
}

/// `warden ARGS --history HISTORY` in a directory without a config.
fn warden(history: &str, args: &[&str]) -> Run {
    Warden::new()
        .no_config()
        .subcommand("")
        .args(args.iter().copied())
        .args(["--history", history])
        .run()
}

fn import(history: &str) {
    let dir = tempfile::tempdir().unwrap();
    let files = junit_files(dir.path());
    let mut args = vec!["import", "junit", "--run-per-file"];
    args.extend(files.iter().map(String::as_str));
    warden(history, &args).assert_code(0);
}

fn json(r: &Run) -> Vec<Value> {
    r.assert_code(0);
    match serde_json::from_str(&r.stdout) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("not a JSON array: {other:?}\n{}", r.context),
    }
}

/// The `test` of each row of `warden QUERY --format json [EXTRA]`, sorted.
fn tests_of(history: &str, query: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![query, "--format", "json", "--limit", "0"];
    args.extend(extra);
    let mut tests: Vec<String> = json(&warden(history, &args))
        .iter()
        .map(|r| r["test"].as_str().unwrap().to_owned())
        .collect();
    tests.sort();
    tests.dedup();
    tests
}

/// flaky and regressed leave the mass failures out; with the share at
/// 100% they count again (so the first check can fail).
fn check_queries(history: &str) {
    assert_eq!(tests_of(history, "flaky", &[]), ["s/t0"]);
    assert_eq!(tests_of(history, "regressed", &[]), Vec::<String>::new());
    // The flaky test's own numbers: 12 runs? No: the mass failures are
    // left out whole, so it ran in 8, failed in 2.
    let flaky = json(&warden(history, &["flaky", "--format", "json"]));
    assert_eq!(flaky[0]["runs"], 8, "{flaky:?}");
    assert_eq!(flaky[0]["failures"], 2, "{flaky:?}");

    // Counted, the mass failures make the nine other tests look flaky
    // (one failure, then three in a row: too few runs to call a break).
    let all = ["--mass-failure", "100%"];
    let flaky = tests_of(history, "flaky", &all);
    assert_eq!(flaky.len(), 10, "{flaky:?}");
    assert!(flaky.contains(&"s/t1".to_owned()), "{flaky:?}");
    let flaky = json(&warden(
        history,
        &["flaky", "--format", "json", "--mass-failure", "1"],
    ));
    let t0 = flaky.iter().find(|r| r["test"] == "s/t0").unwrap();
    assert_eq!(t0["runs"], 12, "{flaky:?}");
    // A higher share than the runs' 90% leaves them in too.
    assert_eq!(
        tests_of(history, "flaky", &["--mass-failure", "95%"]).len(),
        10
    );
}

#[test]
fn mass_failures_change_no_flaky_or_regressed_answer_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let history = format!("sqlite:{}", dir.path().join("h.db").display());
    import(&history);
    check_queries(&history);
}

#[test]
fn mass_failures_change_no_flaky_or_regressed_answer_on_postgres() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    import(&url);
    check_queries(&url);
    // And the history's mark, read from PostgreSQL.
    let r = warden(&url, &["history", "s/t1"]);
    r.assert_code(0);
    r.assert_stdout_contains("mass failure: 9 of 10 tests failed");
}

#[test]
fn history_marks_the_mass_failures() {
    let dir = tempfile::tempdir().unwrap();
    let history = format!("sqlite:{}", dir.path().join("h.db").display());
    import(&history);

    let r = warden(&history, &["history", "s/t1"]);
    r.assert_code(0);
    let strip: String = (0..RUNS)
        .map(|run| if mass(run) { 'X' } else { '.' })
        .collect();
    assert!(
        r.stdout.lines().any(|l| l == strip),
        "no strip {strip}\n{}",
        r.context
    );
    r.assert_stdout_contains("X failed in a mass failure (more than 50% of the run's tests failed");
    assert_eq!(
        r.stdout
            .matches("mass failure: 9 of 10 tests failed")
            .count(),
        4,
        "{}",
        r.context
    );
    // A flaky test's failures in ordinary runs stay `F`, unmarked.
    let r = warden(&history, &["history", "s/t0"]);
    let strip: String = (0..RUNS)
        .map(|run| if fails(run, 0) { 'F' } else { '.' })
        .collect();
    assert!(r.stdout.lines().any(|l| l == strip), "{}", r.context);
    // t0 passed in the mass failures: their note, no `X`.
    r.assert_stdout_contains("mass failure: 9 of 10 tests failed");

    // JSON carries the counts; the share is the reader's.
    let rows = json(&warden(&history, &["history", "s/t1", "--format", "json"]));
    assert_eq!(rows.len(), RUNS);
    assert_eq!(
        rows[4]["mass_failure"],
        serde_json::json!({"tests_run": 10, "tests_failed": 9, "setup_failed": false})
    );
    assert_eq!(rows[3]["mass_failure"], Value::Null);
    let rows = json(&warden(
        &history,
        &[
            "history",
            "s/t1",
            "--format",
            "json",
            "--mass-failure",
            "100%",
        ],
    ));
    assert!(rows.iter().all(|r| r["mass_failure"].is_null()));
    let r = warden(&history, &["history", "s/t1", "--mass-failure", "100%"]);
    assert!(!r.stdout.contains('X'), "{}", r.context);

    // A share that is none.
    let r = warden(&history, &["flaky", "--mass-failure", "150%"]);
    r.assert_code(2);
    r.assert_stderr_contains("not a share between 0% and 100%");
}

/// A store written by the schema before the counts (migrations 0001 and
/// 0002 only), with rows in it, opened by this warden: the counts are
/// filled in from the results and batches.
#[test]
fn an_older_store_gets_its_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    let url = format!("sqlite:{}?mode=rwc", db.display());
    block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        old_schema(&pool, "sqlite", dir.path()).await;
        old_rows(&pool).await;
        pool.close().await;
    });
    check_backfill(&format!("sqlite:{}", db.display()));
}

#[test]
fn an_older_store_gets_its_counts_on_postgres() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        old_schema(&pool, "postgres", dir.path()).await;
        old_rows(&pool).await;
        pool.close().await;
    });
    check_backfill(&url);
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The schema as warden before migration 0003 made it: sqlx's migrator
/// over copies of 0001 and 0002 (same text, so the same checksums the
/// real migrator checks later).
async fn old_schema<DB>(pool: &sqlx::Pool<DB>, backend: &str, scratch: &Path)
where
    DB: sqlx::Database,
    <DB as sqlx::Database>::Connection: sqlx::migrate::Migrate,
{
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let to = scratch.join(format!("migrations-{backend}"));
    fs::create_dir_all(&to).unwrap();
    for entry in fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.starts_with("0001_") || name.starts_with("0002_") {
            fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(to.as_path()).await.unwrap();
    assert_eq!(migrator.iter().count(), 2);
    migrator.run(pool).await.unwrap();
}

/// Three runs in the old schema: 9 of 10 failed (a mass failure), 1 of 10
/// failed with a flaky and a skipped result (not one), a failed setup
/// step without tests (one).
async fn old_rows<DB>(pool: &sqlx::Pool<DB>)
where
    DB: sqlx::Database,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let hour_ago = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 3_600_000;
    let mut sql = Vec::new();
    for test in 0..12 {
        sql.push(format!(
            "INSERT INTO tests (id, name) VALUES ({}, 's/t{test}')",
            test + 1
        ));
    }
    for (run, status) in [(1, "failed"), (2, "failed"), (3, "failed")] {
        sql.push(format!(
            "INSERT INTO runs (id, uuid, started_at, ended_at, status, host, labels, source) \
             VALUES ({run}, 'old-{run}', {}, {}, '{status}', 'h', '', 'import')",
            hour_ago + run * 1000,
            hour_ago + run * 1000 + 500,
        ));
    }
    sql.push(
        "INSERT INTO batches (id, run_id, name, phase, status, reason, started_at, duration_ms, \
         attempts) VALUES (1, 1, 's', 'suite', 'failed', '', 0, 1, 1), \
         (2, 2, 's', 'suite', 'failed', '', 0, 1, 1), \
         (3, 3, 'mount', 'setup', 'timed-out', 'timed out after 1m', 0, 1, 1), \
         (4, 3, 'late', 'post', 'interrupted', '', 0, 1, 1)"
            .to_owned(),
    );
    // Run 1: t0 passed, t1..t9 failed. Run 2: t0 failed, t1 flaky,
    // t2..t9 passed, t10 skipped (10 ran, 1 failed).
    for test in 0..10 {
        let status = if test == 0 { 1 } else { 2 };
        sql.push(format!(
            "INSERT INTO results (test_id, run_id, batch_id, status) VALUES ({}, 1, 1, {status})",
            test + 1
        ));
        let status = match test {
            0 => 2,
            1 => 3,
            _ => 1,
        };
        sql.push(format!(
            "INSERT INTO results (test_id, run_id, batch_id, status) VALUES ({}, 2, 2, {status})",
            test + 1
        ));
    }
    sql.push("INSERT INTO results (test_id, run_id, batch_id, status) VALUES (11, 2, 2, 4)".into());
    for statement in sql {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(pool)
            .await
            .unwrap();
    }
}

/// The backfilled counts, as `warden history` and its JSON show them.
fn check_backfill(history: &str) {
    let rows = json(&warden(history, &["history", "s/t0", "--format", "json"]));
    let marks: Vec<&Value> = rows.iter().map(|r| &r["mass_failure"]).collect();
    assert_eq!(
        marks,
        [
            &serde_json::json!({"tests_run": 10, "tests_failed": 9, "setup_failed": false}),
            &Value::Null,
        ]
    );
    // Run 3 has no results: its setup failure shows on the runs' own
    // query, through the library (the dashboard's).
    block_on(async {
        let location: warden::history::Location = history.parse().unwrap();
        let db = warden::history::Db::open(&location, warden::history::Access::Read)
            .await
            .unwrap();
        let filter = warden::history::query::Filter::last(Duration::from_secs(86_400), Vec::new());
        let runs = warden::history::query::runs(&db, &filter, 0).await.unwrap();
        let by_uuid = |u: &str| runs.iter().find(|r| r.uuid == u).unwrap().mass_failure;
        assert_eq!(
            by_uuid("old-3"),
            Some(warden::history::query::MassFailure {
                tests_run: 0,
                tests_failed: 0,
                setup_failed: true
            })
        );
        assert_eq!(by_uuid("old-2"), None);
        assert_eq!(by_uuid("old-1").map(|m| m.tests_failed), Some(9));
        db.close().await;
    });
}

/// `warden run` writes the counts as it records: a run whose setup failed
/// is a mass failure; one where 4 of 6 batches (tests of their own) failed
/// is one too, and so is each count.
#[test]
fn warden_run_records_the_counts() {
    let w = Warden::pgroup();
    let mut w = w;
    for n in 0..6 {
        w = w.shell(&format!("b{n}"), if n < 4 { "exit 1" } else { "true" }, "");
    }
    let r = w.run();
    r.assert_code(1);
    let history = format!("sqlite:{}", r.path(".warden/history.db").display());

    let w = Warden::pgroup()
        .shell("b0", "true", "")
        .config_append("[[setup]]\nname = \"mount\"\nshell = \"exit 3\"\n")
        .arg("--history")
        .arg(&history);
    w.run().assert_code(1);

    block_on(async {
        let location: warden::history::Location = history.parse().unwrap();
        let db = warden::history::Db::open(&location, warden::history::Access::Read)
            .await
            .unwrap();
        let filter = warden::history::query::Filter::last(Duration::from_secs(86_400), Vec::new());
        let runs = warden::history::query::runs(&db, &filter, 0).await.unwrap();
        let marks: Vec<_> = runs.iter().map(|r| r.mass_failure).collect();
        use warden::history::query::MassFailure;
        // Newest first.
        assert_eq!(
            marks,
            [
                Some(MassFailure {
                    tests_run: 0,
                    tests_failed: 0,
                    setup_failed: true
                }),
                Some(MassFailure {
                    tests_run: 6,
                    tests_failed: 4,
                    setup_failed: false
                }),
            ]
        );
        db.close().await;
    });
}

/// `warden serve` over `history`, killed when dropped.
struct Serve(std::process::Child, String);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Serve {
    fn start(history: &str, cwd: &Path) -> Serve {
        let (child, url) = common::http::spawn_serve(history, cwd);
        Serve(child, url)
    }

    fn get(&self, path: &str) -> common::http::Response {
        let r = common::http::get(&format!("{}{path}", self.1));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r
    }
}

#[test]
fn the_dashboard_shows_the_mass_failures() {
    let dir = tempfile::tempdir().unwrap();
    let history = format!("sqlite:{}", dir.path().join("h.db").display());
    import(&history);
    let serve = Serve::start(&history, dir.path());

    let runs = serve.get("/api/runs?limit=0").json();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), RUNS);
    // Newest first.
    let marked: Vec<bool> = runs.iter().map(|r| !r["mass_failure"].is_null()).collect();
    let want: Vec<bool> = (0..RUNS).rev().map(mass).collect();
    assert_eq!(marked, want);
    assert_eq!(runs[0]["mass_failure"]["tests_failed"], 9);

    let page = serve.get("/runs?limit=0").body;
    assert_eq!(page.matches(">mass failure</span>").count(), 4, "{page}");
    assert!(page.contains("9 of 10 tests failed: left out of flaky and regressed"));
    // The reader's share, from the URL.
    let page = serve.get("/runs?limit=0&mass_failure=100%25").body;
    assert!(!page.contains(">mass failure</span>"), "{page}");
    let api = serve.get("/api/runs?mass_failure=100%25").json();
    assert!(
        api.as_array()
            .unwrap()
            .iter()
            .all(|r| r["mass_failure"].is_null())
    );

    // One run's page: the badge and the counts.
    let uuid = runs[0]["uuid"].as_str().unwrap();
    let page = serve.get(&format!("/runs/{uuid}")).body;
    assert!(
        page.contains(">mass failure</span> 9 of 10 tests failed"),
        "{page}"
    );
    // A test's page: its results in the 4 mass failures drawn grey, with
    // the counts in the tooltip; its verdict leaves them out.
    let page = serve.get("/test?name=s/t1").body;
    assert_eq!(
        page.matches(r#"class="cell failed mass""#).count(),
        4,
        "{page}"
    );
    assert!(
        page.contains("mass failure: 9 of 10 tests failed"),
        "{page}"
    );
    assert!(
        page.contains(r#"<span class="badge healthy">healthy</span>"#),
        "{page}"
    );
    // The flaky page leaves them out as the command does.
    let flaky = serve.get("/api/flaky").json();
    let tests: Vec<&str> = flaky
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["test"].as_str().unwrap())
        .collect();
    assert_eq!(tests, ["s/t0"]);
}
