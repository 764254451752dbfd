//! `warden import junit`: JUnit files of other runners (and warden's own)
//! into a SQLite history, checked by reading the database directly.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};

use common::{Run, Warden};
use sqlx::SqlitePool;

/// A sample report in tests/fixtures/junit.
fn sample(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/junit")
        .join(name);
    assert!(p.exists(), "no sample {}", p.display());
    p.to_str().expect("UTF-8 path").to_owned()
}

const ALL: [&str; 5] = [
    "surefire.xml",
    "gotestsum.xml",
    "pytest.xml",
    "nextest.xml",
    "warden.xml",
];

/// `warden import junit` in a fresh directory without a config.
fn import(args: &[&str]) -> (Run, PathBuf) {
    let w = Warden::new().no_config();
    let db = w.path("h.db");
    let r = w
        .subcommand("import")
        .arg("junit")
        .arg("--history")
        .arg(format!("sqlite:{}", db.display()))
        .args(args)
        .run();
    (r, db)
}

fn query<T>(db: &Path, f: impl AsyncFnOnce(&SqlitePool) -> T) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let url = format!("sqlite:{}?mode=ro", db.display());
            let pool = SqlitePool::connect(&url).await.expect("open the history");
            let out = f(&pool).await;
            pool.close().await;
            out
        })
}

/// (test name, status code) of every result, by name.
fn results(db: &Path) -> Vec<(String, i64)> {
    query(db, async |p| {
        sqlx::query_as(
            "SELECT t.name, r.status FROM results r JOIN tests t ON t.id = r.test_id ORDER BY t.name",
        )
        .fetch_all(p)
        .await
        .unwrap()
    })
}

fn status_of(db: &Path, test: &str) -> i64 {
    results(db)
        .into_iter()
        .find(|(n, _)| n == test)
        .unwrap_or_else(|| panic!("no result for {test}"))
        .1
}

fn millis(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

const PASSED: i64 = 1;
const FAILED: i64 = 2;
const FLAKY: i64 = 3;
const SKIPPED: i64 = 4;

#[test]
fn every_dialect_as_one_run() {
    let files: Vec<String> = ALL.iter().map(|f| sample(f)).collect();
    let mut args = vec![
        "--label",
        "arch=x86_64",
        "--label",
        "compiler=gcc",
        "--commit",
        "0123abcd",
        "--branch",
        "release-1.2",
    ];
    args.extend(files.iter().map(String::as_str));
    let (r, db) = import(&args);
    r.assert_code(0);
    let line = r.stdout.trim();
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.context);
    assert!(
        line.starts_with(&format!(
            "warden: imported 29 results (11 passed, 9 failed, 5 flaky, 4 skipped) from {} and 4 more files as run ",
            files[0]
        )),
        "{}",
        r.context
    );
    assert!(
        line.ends_with(&format!(" into sqlite:{}", db.display())),
        "{}",
        r.context
    );

    type RunRow = (
        String,
        i64,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        String,
    );
    let runs: Vec<RunRow> = query(&db, async |p| {
        sqlx::query_as(
            "SELECT uuid, started_at, ended_at, status, commit_sha, branch, labels, source FROM runs",
        )
        .fetch_all(p)
        .await
        .unwrap()
    });
    assert_eq!(runs.len(), 1);
    let (uuid, started, ended, status, commit, branch, labels, source) = &runs[0];
    assert!(line.contains(&format!(" as run {uuid} into ")), "{line}");
    // The earliest suite timestamp: gotestsum's, and nextest's in +02:00.
    assert_eq!(*started, millis("2026-05-01T10:00:00Z"));
    assert!(ended.unwrap() > *started);
    assert_eq!(status.as_deref(), Some("failed"));
    assert_eq!(commit.as_deref(), Some("0123abcd"));
    assert_eq!(branch.as_deref(), Some("release-1.2"));
    assert_eq!(labels, "arch=x86_64 compiler=gcc");
    assert_eq!(source, "import");
    let label_rows: Vec<(String, String)> = query(&db, async |p| {
        sqlx::query_as("SELECT key, value FROM run_labels ORDER BY key")
            .fetch_all(p)
            .await
            .unwrap()
    });
    assert_eq!(
        label_rows,
        [
            ("arch".into(), "x86_64".into()),
            ("compiler".into(), "gcc".into())
        ]
    );

    let batches: Vec<(String, String, String, String)> = query(&db, async |p| {
        sqlx::query_as("SELECT name, phase, status, reason FROM batches ORDER BY id")
            .fetch_all(p)
            .await
            .unwrap()
    });
    let names: Vec<&str> = batches.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "com.example.shop.CartTest",
            "example.com/shop/cart",
            "example.com/shop/api",
            "pytest",
            "shop",
            "shop::bin/shopd",
            "setup",
            "warden",
            "unit",
            "kernel",
        ]
    );
    assert!(batches.iter().all(|b| b.1 == "suite"));
    assert_eq!(
        (batches[0].2.as_str(), batches[0].3.as_str()),
        ("failed", "3 of 6 tests failed")
    );
    assert_eq!(
        (batches[2].2.as_str(), batches[2].3.as_str()),
        ("passed", "2 tests passed")
    );

    let all = results(&db);
    assert_eq!(all.len(), 29);
    let count = |s| all.iter().filter(|(_, st)| *st == s).count();
    assert_eq!(
        (count(PASSED), count(FAILED), count(FLAKY), count(SKIPPED)),
        (11, 9, 5, 4)
    );
    for (name, want) in [
        ("com.example.shop.CartTest/totalIsSum", PASSED),
        ("com.example.shop.CartTest/sometimesSlow", FLAKY),
        ("com.example.shop.CartTest/alwaysBroken", FAILED),
        ("com.example.shop.CartTest/legacyFormat", SKIPPED),
        ("example.com/shop/cart/TestRace", FLAKY),
        ("pytest/tests.test_api/test_flaky_network", FLAKY),
        ("pytest/tests.test_api/test_broken", FAILED),
        ("shop/cart::tests::total", FLAKY),
        ("shop/cart::tests::empty", PASSED),
        // warden's own: batches by name, tests as batch/test.
        ("build", PASSED),
        ("net", FLAKY),
        ("vm", FAILED),
        ("unit/parse/nested", FAILED),
        ("kernel/boot", PASSED),
    ] {
        assert_eq!(status_of(&db, name), want, "{name}");
    }
    let messages: Vec<(String, Option<String>, Option<i64>)> = query(&db, async |p| {
        sqlx::query_as(
            "SELECT t.name, r.message, r.duration_ms FROM results r JOIN tests t ON t.id = r.test_id \
             WHERE t.name IN ('com.example.shop.CartTest/loadsPrices', 'pytest/tests.test_api/test_db', 'build') \
             ORDER BY t.name",
        )
        .fetch_all(p)
        .await
        .unwrap()
    });
    assert_eq!(
        messages,
        [
            ("build".into(), None, Some(1234)),
            (
                "com.example.shop.CartTest/loadsPrices".into(),
                Some("java.net.ConnectException: Connection refused".into()),
                Some(1_002_500)
            ),
            (
                "pytest/tests.test_api/test_db".into(),
                Some("failed on setup with \"ConnectionError: db down\"".into()),
                Some(2)
            ),
        ]
    );
}

#[test]
fn run_per_file_makes_a_run_of_each() {
    let files = ["gotestsum.xml", "pytest.xml", "warden.xml"].map(sample);
    let mut args = vec!["--run-per-file"];
    args.extend(files.iter().map(String::as_str));
    let (r, db) = import(&args);
    r.assert_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.context);
    assert!(lines[0].starts_with(&format!(
        "warden: imported 5 results (3 passed, 0 failed, 1 flaky, 1 skipped) from {} as run ",
        files[0]
    )));
    assert!(
        lines[2].starts_with("warden: imported 9 results (4 passed, 3 failed, 1 flaky, 1 skipped)")
    );
    let runs: Vec<(i64, String, i64)> = query(&db, async |p| {
        sqlx::query_as(
            "SELECT started_at, status, (SELECT COUNT(*) FROM results WHERE run_id = runs.id) \
             FROM runs ORDER BY id",
        )
        .fetch_all(p)
        .await
        .unwrap()
    });
    assert_eq!(
        runs,
        [
            (millis("2026-05-01T10:00:00Z"), "passed".into(), 5),
            // pytest's zone-less timestamp, taken as UTC.
            (millis("2026-05-01T12:30:00.250Z"), "failed".into(), 5),
            (millis("2026-05-03T06:00:00Z"), "failed".into(), 9),
        ]
    );
    let uuids: std::collections::HashSet<String> = query(&db, async |p| {
        sqlx::query_scalar("SELECT uuid FROM runs")
            .fetch_all(p)
            .await
            .unwrap()
    })
    .into_iter()
    .collect();
    assert_eq!(uuids.len(), 3);
}

#[test]
fn a_test_listed_again_after_failing_is_flaky() {
    let (r, db) = import(&[&sample("pytest.xml"), "--at", "2026-07-01"]);
    r.assert_code(0);
    assert_eq!(
        results(&db),
        [
            ("pytest/tests.test_api/test_broken".into(), FAILED),
            ("pytest/tests.test_api/test_db".into(), FAILED),
            ("pytest/tests.test_api/test_flaky_network".into(), FLAKY),
            ("pytest/tests.test_api/test_login".into(), PASSED),
            ("pytest/tests.test_api/test_windows_paths".into(), SKIPPED),
        ]
    );
    let (started, message): (i64, Option<String>) = query(&db, async |p| {
        sqlx::query_as(
            "SELECT runs.started_at, results.message FROM runs, results \
             JOIN tests ON tests.id = results.test_id WHERE tests.name = 'pytest/tests.test_api/test_broken'",
        )
        .fetch_one(p)
        .await
        .unwrap()
    });
    assert_eq!(started, millis("2026-07-01T00:00:00Z"), "--at wins");
    assert_eq!(
        message.as_deref(),
        Some("failed 2 times: assert 1 == 2 (first)")
    );
}

#[test]
fn a_malformed_file_imports_nothing() {
    let bad = sample("malformed.xml");
    let (r, db) = import(&[&sample("surefire.xml"), &bad, &sample("pytest.xml")]);
    r.assert_code(2);
    r.assert_stderr_contains(&format!("warden: {bad}:4:"));
    r.assert_stderr_contains("malformed JUnit XML");
    r.assert_stderr_contains("nothing imported");
    assert!(r.stdout.is_empty(), "{}", r.context);
    assert!(!db.exists(), "no store is created\n{}", r.context);

    let missing = "/nonexistent/junit.xml";
    let (r, db) = import(&[&sample("surefire.xml"), missing]);
    r.assert_code(2);
    r.assert_stderr_contains(&format!("warden: cannot read {missing}: "));
    assert!(!db.exists());

    // Nothing is written into an existing store either.
    let (first, db) = import(&[&sample("nextest.xml")]);
    first.assert_code(0);
    let history = format!("sqlite:{}", db.display());
    let r = Warden::new()
        .no_config()
        .subcommand("import")
        .args([
            "junit",
            "--history",
            &history,
            &sample("gotestsum.xml"),
            &bad,
        ])
        .run();
    r.assert_code(2);
    let runs: i64 = query(&db, async |p| {
        sqlx::query_scalar("SELECT COUNT(*) FROM runs")
            .fetch_one(p)
            .await
            .unwrap()
    });
    assert_eq!(runs, 1);
}

#[test]
fn a_store_that_cannot_be_opened_is_an_error() {
    let w = Warden::new().no_config();
    std::fs::write(w.path("file"), "").unwrap();
    let r = w
        .subcommand("import")
        .args([
            "junit",
            "--history",
            "sqlite:file/h.db",
            &sample("nextest.xml"),
        ])
        .run();
    r.assert_code(1);
    r.assert_stderr_contains("warden: cannot import: cannot create file: ");

    let r = Warden::new()
        .no_config()
        .subcommand("import")
        .args(["junit", "--history", "none", &sample("nextest.xml")])
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("nothing to import into");
}

#[test]
fn the_config_gives_the_store_and_labels_and_ci_the_commit() {
    let r = Warden::new()
        .config("[run]\nhistory = \"sqlite:state/h.db\"\nlabels = { arch = \"aarch64\", os = \"linux\" }\n")
        .subcommand("import")
        .args(["junit", "--label", "arch=riscv64", &sample("nextest.xml")])
        .env("GITHUB_SHA", "feedface")
        .env("GITHUB_REF_NAME", "topic")
        .run();
    r.assert_code(0);
    let db = r.path("state/h.db");
    assert!(db.exists(), "{}", r.context);
    r.assert_stdout_contains("state/h.db");
    let (labels, commit, branch, host): (String, Option<String>, Option<String>, String) =
        query(&db, async |p| {
            sqlx::query_as("SELECT labels, commit_sha, branch, host FROM runs")
                .fetch_one(p)
                .await
                .unwrap()
        });
    assert_eq!(labels, "arch=riscv64 os=linux");
    assert_eq!(commit.as_deref(), Some("feedface"));
    assert_eq!(branch.as_deref(), Some("topic"));
    assert!(!host.is_empty());
}

/// warden's own JUnit, imported, gives the results `warden run` recorded.
#[test]
fn wardens_junit_reads_back_as_warden_run_recorded_it() {
    let w = Warden::pgroup();
    let counter = w.path_str("n");
    let flaky = format!(
        "n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; \
         [ $n -ge 2 ] || {{ echo 'connection reset'; exit 1; }}"
    );
    let run = w
        .shell("ok", "true", "")
        .shell("broken", "echo boom; exit 3", "")
        .shell("net", &flaky, "retry = { attempts = 2 }")
        .batch(&format!(
            "name = \"kselftest\"\ncommand = [{}]\nformat = \"tap\"",
            common::q(&common::fixture("kselftest_tap.sh"))
        ))
        .run();
    run.assert_code(1);
    let native = results(&run.path(".warden/history.db"));
    assert!(native.len() > 4, "{native:?}\n{}", run.context);

    let junit = run.artifacts().join("junit.xml");
    let imported_db = run.path("imported.db");
    let r = Warden::new()
        .no_config()
        .subcommand("import")
        .arg("junit")
        .arg("--history")
        .arg(format!("sqlite:{}", imported_db.display()))
        .arg(&junit)
        .run();
    r.assert_code(0);
    assert_eq!(results(&imported_db), native, "{}", run.context);
}

/// The JUnit files a batch wrote, read by `warden run` (`format =
/// "junit"`) and imported with `--batch` of the batch's name, give the
/// history the same results: names, statuses, one result per test.
#[test]
fn import_with_batch_records_what_warden_run_records() {
    let w = Warden::pgroup();
    let copy = format!(
        "mkdir -p out && cp {} out/py.xml && cp {} out/nx.xml && cp {} out/sf.xml",
        common::q(&sample("pytest.xml")),
        common::q(&sample("nextest.xml")),
        common::q(&sample("surefire.xml")),
    );
    let run = w
        .shell(
            "py",
            &copy,
            "format = \"junit\"\njunit-files = [\"out/*.xml\"]",
        )
        .run();
    run.assert_code(1);
    let native = results(&run.path(".warden/history.db"));
    // pytest's reruns are one result each.
    assert_eq!(native.len(), 5 + 4 + 6, "{native:?}\n{}", run.context);

    let imported_db = run.path("imported.db");
    let r = Warden::new()
        .no_config()
        .subcommand("import")
        .arg("junit")
        .arg("--history")
        .arg(format!("sqlite:{}", imported_db.display()))
        .args(["--batch", "py"])
        .args(["nx.xml", "py.xml", "sf.xml"].map(|f| run.path(&format!("out/{f}"))))
        .run();
    r.assert_code(0);
    assert_eq!(results(&imported_db), native, "{}", r.context);
    assert!(
        native
            .iter()
            .any(|(n, s)| n == "py/tests.test_api/test_flaky_network" && *s == FLAKY)
    );

    // A batch name is checked like one in the config.
    let r = Warden::new()
        .no_config()
        .subcommand("import")
        .args(["junit", "--batch", "a b", &sample("pytest.xml")])
        .run();
    r.assert_code(2);
}

/// The names of tests/fixtures/junit/names.xml (suite `names`, classname
/// `s`) with their times: each name must get its own result whichever
/// order the store sorts names in.
fn names_and_times() -> Vec<(String, i64)> {
    let names = [
        "b", "B", "a_b", "a-b", "a b", "ab", "Ab", "é", "e", "f", "ä", "日本", "z", "Z", "a/b",
        "10", "9",
    ];
    let mut want: Vec<(String, i64)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("names/s/{n}"), i as i64 + 1))
        .collect();
    want.sort();
    want
}

#[test]
fn names_get_their_own_ids_in_sqlite() {
    let (r, db) = import(&[&sample("names.xml")]);
    r.assert_code(0);
    let got: Vec<(String, i64)> = query(&db, async |p| {
        sqlx::query_as(
            "SELECT t.name, r.duration_ms FROM results r JOIN tests t ON t.id = r.test_id",
        )
        .fetch_all(p)
        .await
        .unwrap()
    });
    let mut got = got;
    got.sort();
    assert_eq!(got, names_and_times());
}

#[test]
fn imports_into_postgres() {
    let server = require_postgres!(shared);
    let url = icu_database(server).unwrap_or_else(|why| {
        eprintln!("names compared in the server's own locale: {why}");
        server.url(&server.fresh_database())
    });
    let files = ["names.xml", "pytest.xml", "warden.xml"].map(sample);
    let r = Warden::new()
        .no_config()
        .subcommand("import")
        .args(["junit", "--run-per-file", "--history", &url])
        .args(&files)
        .run();
    r.assert_code(0);
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.context);
    let got: Vec<(String, i64)> = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let p = sqlx::PgPool::connect(&url).await.unwrap();
            let rows = sqlx::query_as(
                "SELECT t.name, r.duration_ms FROM results r JOIN tests t ON t.id = r.test_id \
                 WHERE t.name LIKE 'names/s/%'",
            )
            .fetch_all(&p)
            .await
            .unwrap();
            p.close().await;
            rows
        });
    let mut got = got;
    got.sort();
    assert_eq!(got, names_and_times());
}

/// A database whose default collation does not sort by bytes (ICU's root
/// locale: `b` before `B`, `é` before `f`), so that name order matters.
fn icu_database(server: &common::postgres::PgServer) -> Result<String, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let p = sqlx::PgPool::connect(&server.url("postgres"))
                .await
                .map_err(|e| e.to_string())?;
            // The server is this test binary's own: one test, one name.
            let created = sqlx::query(
                "CREATE DATABASE import_icu TEMPLATE template0 ENCODING 'UTF8' \
                 LOCALE_PROVIDER icu ICU_LOCALE 'und' LOCALE 'C.UTF-8'",
            )
            .execute(&p)
            .await;
            p.close().await;
            created.map_err(|e| e.to_string())
        })?;
    Ok(server.url("import_icu"))
}

/// (test name, status, duration, message) of every result, and (tests
/// run, failed) of every run in order, read with `sql` on either backend.
const EVERY_RESULT: &str = "SELECT t.name, r.status, r.duration_ms, r.message FROM results r \
     JOIN tests t ON t.id = r.test_id ORDER BY t.name, r.run_id";
const EVERY_RUN: &str = "SELECT tests_run, tests_failed FROM runs ORDER BY id";

type EveryResult = Vec<(String, i64, Option<i64>, Option<String>)>;

fn postgres_rows(url: &str) -> (EveryResult, Vec<(i64, i64)>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let p = sqlx::PgPool::connect(url).await.unwrap();
            let results = sqlx::query_as(EVERY_RESULT).fetch_all(&p).await.unwrap();
            let runs = sqlx::query_as(EVERY_RUN).fetch_all(&p).await.unwrap();
            p.close().await;
            (results, runs)
        })
}

/// `--run-per-file` into PostgreSQL is written group of files after
/// group while the next is read (src/app/import.rs): it stores what the
/// same import into SQLite stores, and a file that cannot be read in a
/// later group leaves nothing behind.
#[test]
fn postgres_imports_group_after_group_what_sqlite_imports() {
    let server = require_postgres!(shared);
    let files: Vec<String> = ALL.iter().map(|f| sample(f)).collect();
    let file_args: Vec<&str> = files.iter().map(String::as_str).collect();
    let mut args = vec!["--run-per-file"];
    args.extend(&file_args);
    let (r, db) = import(&args);
    r.assert_code(0);
    let want: (EveryResult, Vec<(i64, i64)>) = query(&db, async |p| {
        let results = sqlx::query_as(EVERY_RESULT).fetch_all(p).await.unwrap();
        let runs = sqlx::query_as(EVERY_RUN).fetch_all(p).await.unwrap();
        (results, runs)
    });
    assert_eq!(want.1.len(), ALL.len());

    let url = server.url(&server.fresh_database());
    let r = Warden::new()
        .no_config()
        .subcommand("import")
        .args(["junit", "--run-per-file", "--history", &url])
        .args(&file_args)
        .run();
    r.assert_code(0);
    assert_eq!(r.stdout.lines().count(), ALL.len(), "{}", r.context);
    assert_eq!(postgres_rows(&url), want);

    // The malformed file is the last group's: the groups before it were
    // written, and rolled back.
    let url = server.url(&server.fresh_database());
    let bad = sample("malformed.xml");
    let r = Warden::new()
        .no_config()
        .subcommand("import")
        .args(["junit", "--run-per-file", "--history", &url])
        .args(&file_args)
        .arg(&bad)
        .run();
    r.assert_code(2);
    r.assert_stderr_contains(&format!("warden: {bad}:4:"));
    r.assert_stderr_contains("nothing imported");
    assert!(r.stdout.is_empty(), "{}", r.context);
    assert_eq!(postgres_rows(&url), (Vec::new(), Vec::new()));
}
