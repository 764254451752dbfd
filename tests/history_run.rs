//! `warden run` records every run in the history store: the run, its
//! batches and attempts, every test result; a store that is down or locked
//! is a warning, never a failed or slowed run; a SIGKILLed warden leaves a
//! consistent database with the run marked incomplete.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Warden, block_on, fixture, q};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqliteRow};

async fn pool(db: &Path) -> SqlitePool {
    SqlitePool::connect_with(SqliteConnectOptions::new().filename(db))
        .await
        .expect("open the history database")
}

fn rows(db: &Path, sql: &'static str) -> Vec<SqliteRow> {
    block_on(async {
        let p = pool(db).await;
        let rows = sqlx::query(sql).fetch_all(&p).await.expect(sql);
        p.close().await;
        rows
    })
}

/// (test name, status code, message) of every result, by name.
fn results(db: &Path) -> Vec<(String, i64, Option<String>)> {
    rows(
        db,
        "SELECT t.name, r.status, r.message FROM results r JOIN tests t ON t.id = r.test_id \
         ORDER BY t.name",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// Fails on its first run, passes on the second.
fn flaky_script(counter: &str) -> String {
    format!(
        "n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; \
         [ $n -ge 2 ] || {{ echo 'connection reset'; exit 1; }}"
    )
}

#[test]
fn a_run_is_recorded_with_batches_attempts_tests_and_labels() {
    let w = Warden::pgroup();
    let counter = w.path_str("n");
    let r = w
        .run_section(r#"labels = { arch = "x86_64", compiler = "gcc" }"#)
        .shell("ok", "true", "")
        .shell("broken", "echo boom; exit 3", "")
        .shell("net", &flaky_script(&counter), "retry = { attempts = 2 }")
        .batch(&format!(
            "name = \"kselftest\"\ncommand = [{}]\nformat = \"tap\"",
            q(&fixture("kselftest_tap.sh"))
        ))
        .arg("--label")
        .arg("compiler=clang")
        .env("GITHUB_SHA", "0123456789abcdef")
        .env("GITHUB_REF_NAME", "main")
        .run();
    r.assert_code(1);
    r.assert_stdout_contains("History: run ");
    r.assert_stdout_contains(" recorded in sqlite:.warden/history.db");
    let db = r.path(".warden/history.db");

    let run = &rows(
        &db,
        "SELECT status, ended_at IS NOT NULL, labels, commit_sha, branch, source, uuid FROM runs",
    );
    assert_eq!(run.len(), 1);
    let run = &run[0];
    assert_eq!(run.get::<String, _>(0), "failed");
    assert!(run.get::<bool, _>(1), "the run's end is recorded");
    assert_eq!(run.get::<String, _>(2), "arch=x86_64 compiler=clang");
    assert_eq!(run.get::<String, _>(3), "0123456789abcdef");
    assert_eq!(run.get::<String, _>(4), "main");
    assert_eq!(run.get::<String, _>(5), "run");
    let uuid: String = run.get(6);
    r.assert_stdout_contains(&format!("History: run {uuid} recorded"));

    let labels: Vec<(String, String)> = rows(&db, "SELECT key, value FROM run_labels ORDER BY key")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        labels,
        [
            ("arch".to_string(), "x86_64".to_string()),
            ("compiler".to_string(), "clang".to_string())
        ]
    );

    let batches: Vec<(String, String, i64)> = rows(
        &db,
        "SELECT name, status, attempts FROM batches ORDER BY name",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    assert_eq!(
        batches,
        [
            ("broken".into(), "failed".into(), 1),
            ("kselftest".into(), "failed".into(), 1),
            ("net".into(), "flaky".into(), 2),
            ("ok".into(), "passed".into(), 1),
        ]
    );
    // Each batch's log, as an absolute path (what `warden serve` links to).
    let logs: Vec<(String, Option<String>)> =
        rows(&db, "SELECT name, log FROM batches ORDER BY name")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    for (name, log) in logs {
        let log = log.unwrap_or_else(|| panic!("{name}: no log recorded"));
        assert!(Path::new(&log).is_absolute(), "{log}");
        assert_eq!(
            std::fs::canonicalize(&log).unwrap(),
            std::fs::canonicalize(r.artifacts().join("logs").join(format!("{name}.log"))).unwrap()
        );
    }
    let attempts = rows(&db, "SELECT status, reason FROM attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].get::<String, _>(0), "failed");

    let got = results(&db);
    let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "broken",
            "kselftest/net/reuseport_bpf",
            "kselftest/net/reuseport_bpf/cbpf",
            "kselftest/net/reuseport_bpf/reuseport works",
            "kselftest/net/tls",
            "kselftest/net/udpgso.sh",
            "net",
            "ok"
        ],
        "{}",
        r.context
    );
    let status = |name: &str| got.iter().find(|(n, _, _)| n == name).unwrap();
    assert_eq!(status("broken").1, 2);
    assert_eq!(status("broken").2.as_deref(), Some("exit code 3"));
    assert_eq!(status("net").1, 3, "failed then passed is flaky");
    // A flaky result keeps what its failed attempt said.
    assert_eq!(status("net").2.as_deref(), Some("exit code 1"));
    assert_eq!(status("ok").1, 1);
    assert_eq!(status("kselftest/net/udpgso.sh").1, 2);
    assert_eq!(status("kselftest/net/tls").1, 4);
}

#[test]
fn two_runs_share_test_rows() {
    let w = Warden::pgroup().shell("ok", "true", "");
    let dir = w.dir().to_owned();
    let r = w.run();
    r.assert_code(0);
    let again = Warden::pgroup()
        .shell("ok", "true", "")
        .arg("--history")
        .arg(format!(
            "sqlite:{}",
            dir.join(".warden/history.db").display()
        ))
        .run();
    again.assert_code(0);
    let db = dir.join(".warden/history.db");
    assert_eq!(rows(&db, "SELECT id FROM runs").len(), 2);
    assert_eq!(rows(&db, "SELECT id FROM tests").len(), 1);
    assert_eq!(rows(&db, "SELECT test_id FROM results").len(), 2);
}

#[test]
fn history_none_records_nothing() {
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .run_section(r#"history = "none""#)
        .run();
    r.assert_code(0);
    assert!(!r.path(".warden").exists());
    assert!(!r.stdout.contains("History:"), "{}", r.context);
}

#[test]
fn config_history_path_is_relative_to_the_config_file() {
    let r = Warden::pgroup()
        .config_at("ci/warden.toml")
        .run_section(r#"history = "sqlite:state/h.db""#)
        .shell("ok", "true", "")
        .run();
    r.assert_code(0);
    assert!(r.path("ci/state/h.db").exists(), "{}", r.context);
    r.assert_stdout_contains("recorded in sqlite:");
}

#[test]
fn unreachable_store_is_a_warning_not_a_failure() {
    let started = Instant::now();
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .arg("--history")
        .arg("postgres://warden@127.0.0.1:1/history")
        .run();
    r.assert_code(0);
    r.assert_stdout_contains("History: warning: run ");
    r.assert_stdout_contains("not recorded: cannot open postgres://warden@127.0.0.1:1/history");
    // Shown while the run goes, too.
    r.assert_stdout_contains("warden: history: cannot open");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a store that is down held the run: {:?}",
        started.elapsed()
    );
}

#[test]
fn locked_store_is_a_warning_not_a_failure() {
    let w = Warden::pgroup().shell("ok", "true", "");
    let first = w.run();
    first.assert_code(0);
    let db = first.path(".warden/history.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Another writer holds the database for the whole run.
    let (pool, mut tx) = runtime.block_on(async {
        let p = pool(&db).await;
        let mut conn = p.acquire().await.unwrap().detach();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut conn)
            .await
            .unwrap();
        (p, conn)
    });
    let started = Instant::now();
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .arg("--history")
        .arg(format!("sqlite:{}", db.display()))
        .run();
    let took = started.elapsed();
    runtime.block_on(async {
        sqlx::query("ROLLBACK").execute(&mut tx).await.unwrap();
        pool.close().await;
    });
    r.assert_code(0);
    r.assert_stdout_contains("History: warning: run ");
    r.assert_stdout_contains("locked");
    assert!(
        took < Duration::from_secs(20),
        "a locked store held the run: {took:?}"
    );
    assert_eq!(
        rows(&db, "SELECT id FROM runs").len(),
        1,
        "only the first run"
    );
}

#[test]
fn sigkilled_warden_leaves_a_consistent_database() {
    let w = Warden::pgroup().shell("quick", "echo done", "");
    let stop = w.path_str("stop");
    let w = w.shell(
        "slow",
        &format!("while [ ! -e {stop} ]; do sleep 0.05; done"),
        "",
    );
    let db = w.path(".warden/history.db");
    let mark = w.mark().to_owned();
    let running = w.spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // The file appears before its schema: until then the query fails.
        let recorded = db.exists()
            && block_on(async {
                let p = pool(&db).await;
                let found = sqlx::query("SELECT name FROM batches WHERE name = 'quick'")
                    .fetch_optional(&p)
                    .await;
                p.close().await;
                matches!(found, Ok(Some(_)))
            });
        if recorded {
            break;
        }
        assert!(Instant::now() < deadline, "quick was never recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    running.signal(libc::SIGKILL);
    // The orphaned batch ends by itself, so the harness finds nothing left.
    std::fs::write(&stop, "").unwrap();
    let gone = Instant::now() + Duration::from_secs(10);
    while !common::marked_processes(&mark).is_empty() && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = running.wait();
    assert_eq!(r.signal, Some(libc::SIGKILL));
    let check = rows(&db, "PRAGMA integrity_check");
    assert_eq!(check[0].get::<String, _>(0), "ok");
    let run = rows(&db, "SELECT ended_at, status FROM runs");
    assert_eq!(run.len(), 1);
    assert_eq!(run[0].get::<Option<i64>, _>(0), None, "incomplete: no end");
    assert_eq!(run[0].get::<Option<String>, _>(1), None);
    assert_eq!(results(&db), [("quick".to_string(), 1, None)]);
}

#[test]
fn bad_history_settings_are_config_errors() {
    let r = Warden::pgroup()
        .run_section(r#"history = "mysql://db/x""#)
        .shell("ok", "true", "")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("warden.toml:2:");
    r.assert_stderr_contains("key `history`");
    r.assert_stderr_contains("expected `sqlite:PATH`, `postgres://…` or `none`");

    let r = Warden::pgroup()
        .run_section(r#"labels = { "bad key" = "x" }"#)
        .shell("ok", "true", "")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("key `labels`");

    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .arg("--label")
        .arg("novalue")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("expected KEY=VALUE");
}
