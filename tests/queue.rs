//! Queue mode (`warden run --queue`, `warden report`) on a real throwaway
//! PostgreSQL: several wardens as the machines of one CI run, each batch
//! run exactly once; a machine SIGKILLed mid-batch, whose batch another
//! runs once its lease expires; configs that differ under one key; a
//! report of a run that is not finished; the re-run rule; the errors.

#[macro_use]
mod common;

use std::path::Path;
use std::time::Duration;

use common::{Warden, block_on, wait_until};
use sqlx::postgres::PgPool;

/// Every CI variable the run key is read from, set empty: whatever CI
/// runs this suite, the keys here are the tests' own.
const CI_VARS: &[&str] = &[
    "WARDEN_RUN_KEY",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "BUILDKITE_BUILD_ID",
    "BUILDKITE_RETRY_COUNT",
    "CI_PIPELINE_ID",
    "PROW_JOB_ID",
    "CIRCLE_WORKFLOW_ID",
    "BUILD_TAG",
];

fn no_ci(mut w: Warden) -> Warden {
    for v in CI_VARS {
        w = w.env(v, "");
    }
    w
}

fn scalar(url: &str, sql: &'static str, key: &str) -> i64 {
    scalar2(url, sql, key, 0)
}

/// `sql` with `$1` = `key`, `$2` = `n`.
fn scalar2(url: &str, sql: &'static str, key: &str, n: i64) -> i64 {
    block_on(async {
        let p = PgPool::connect(url).await.expect("connect");
        let mut query = sqlx::query_scalar(sql).bind(key);
        if sql.contains("$2") {
            query = query.bind(n);
        }
        let n: i64 = query.fetch_one(&p).await.expect("query");
        p.close().await;
        n
    })
}

/// A machine of a queue-mode run: `batches` (name, shell script) under
/// `key`, 2 at a time, a 1.5 s lease.
fn machine(url: &str, key: &str, batches: &[(String, String)]) -> Warden {
    machine_of(url, key, batches, 2)
}

fn machine_of(url: &str, key: &str, batches: &[(String, String)], parallel: u32) -> Warden {
    let mut w = no_ci(Warden::pgroup())
        .run_section(&format!("max-parallel = {parallel}"))
        .args([
            "--queue",
            "--queue-lease",
            "1500ms",
            "--run-key",
            key,
            "--history",
            url,
        ]);
    for (name, script) in batches {
        w = w.shell(name, script, "");
    }
    w
}

/// Lines of a marker file (0 when missing).
/// The batch `victim`: its first run writes who runs it to `started`
/// (`WARDEN_RUN` starts with its warden's pid) and hangs for `hang`
/// seconds; any run after that appends who runs it to `again` and ends
/// at once.
fn victim(started: &Path, again: &Path, hang: u32) -> (String, String) {
    let (s, a) = (started.display(), again.display());
    (
        "victim".to_owned(),
        format!(
            "if [ -e {s} ]; then echo \"$WARDEN_RUN\" >> {a}; exit 0; fi; \
             echo \"$WARDEN_RUN\" > {s}.tmp && mv {s}.tmp {s}; sleep {hang}"
        ),
    )
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn report(url: &str, key: &str, junit: &Path) -> common::Run {
    no_ci(Warden::pgroup())
        .no_config()
        .subcommand("report")
        .args(["--history", url, "--run-key", key])
        .arg("--junit")
        .arg(junit)
        .run()
}

#[test]
fn four_machines_run_every_batch_exactly_once() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let marks = tempfile::tempdir().expect("tempdir");
    // Three outlast the 1.5 s lease: without renewals another machine
    // would take them over (and their marker files get a second line).
    let batches: Vec<(String, String)> = (0..30)
        .map(|i| {
            let m = marks.path().join(format!("b{i:02}"));
            let sleep = if i < 3 { "2.5" } else { "0.2" };
            (
                format!("b{i:02}"),
                format!("echo \"$WARDEN_RUN\" >> {}; sleep {sleep}", m.display()),
            )
        })
        .collect();
    let running: Vec<_> = (0..4)
        .map(|_| machine(&url, "four", &batches).spawn())
        .collect();
    let mut cases = 0;
    for r in running {
        let r = r.wait();
        r.assert_code(0);
        r.assert_stdout_contains("warden: queue four#1: ");
        r.assert_stdout_contains("Queue: four#1: this machine ran ");
        cases += r.junit().len();
    }
    // Each machine's own JUnit holds what it ran: 30 in all.
    assert_eq!(cases, 30);
    for i in 0..30 {
        let m = marks.path().join(format!("b{i:02}"));
        assert_eq!(lines(&m), 1, "{} ran {} times", m.display(), lines(&m));
    }
    let done = "SELECT COUNT(*) FROM queue_batches WHERE run_key = $1 AND state = 'done' \
                AND claims = 1 AND status = 'passed'";
    assert_eq!(scalar(&url, done, "four#1"), 30);
    let recorded = "SELECT COUNT(*) FROM batches b JOIN runs r ON r.id = b.run_id \
                    JOIN queue_runs q ON q.run_uuid = r.uuid WHERE q.run_key = $1";
    assert_eq!(scalar(&url, recorded, "four#1"), 30);
    assert_eq!(
        scalar(
            &url,
            "SELECT COUNT(*) FROM queue_runs WHERE run_key = $1",
            "four#1"
        ),
        4
    );
    let junit = marks.path().join("all.xml");
    let r = report(&url, "four", &junit);
    r.assert_code(0);
    r.assert_stdout_contains("Success: 30/30");
    r.assert_stdout_contains("Queue: four#1: 30 batches, 4 machines");
    let mut names: Vec<String> = r.junit_at(&junit).into_iter().map(|c| c.name).collect();
    names.sort();
    let want: Vec<String> = (0..30).map(|i| format!("b{i:02}")).collect();
    assert_eq!(names, want);
}

#[test]
fn a_killed_machines_batch_is_run_again_after_its_lease() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let marks = tempfile::tempdir().expect("tempdir");
    let started = marks.path().join("victim.started");
    let again = marks.path().join("victim.again");
    let mut batches = vec![victim(&started, &again, 60)];
    for i in 0..12 {
        batches.push((format!("b{i:02}"), "sleep 0.3".to_owned()));
    }
    let running: Vec<_> = (0..4)
        .map(|_| machine(&url, "kill", &batches).spawn())
        .collect();
    assert!(
        wait_until(Duration::from_secs(60), || started.exists()),
        "the victim batch never started"
    );
    let run = std::fs::read_to_string(&started).expect("victim marker");
    let pid: i32 = run
        .split('-')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("WARDEN_RUN starts with warden's pid");
    let (killed, survivors): (Vec<_>, Vec<_>) = running.into_iter().partition(|r| r.pid() == pid);
    assert_eq!(
        killed.len(),
        1,
        "the victim's warden ({pid}) is one of ours"
    );
    let killed = killed.into_iter().next().expect("one");
    killed.signal(libc::SIGKILL);
    // What the dead warden's batch left, through warden's own reap path
    // (only dead runs' processes, by their cookie).
    std::thread::sleep(Duration::from_millis(200));
    no_ci(Warden::pgroup()).no_config().subcommand("reap").run();
    let killed = killed.wait();
    assert_eq!(killed.signal, Some(libc::SIGKILL));
    let mut rerun_said = 0;
    for r in survivors {
        let r = r.wait();
        r.assert_code(0);
        if r.stdout.contains("victim: re-run: its first runner (")
            && r.stdout
                .contains(&format!("pid {pid}) stopped renewing its lease"))
        {
            rerun_said += 1;
        }
    }
    assert_eq!(rerun_said, 1, "one survivor re-ran the victim and said so");
    assert_eq!(lines(&again), 1, "the victim was re-run exactly once");
    let row = "SELECT COUNT(*) FROM queue_batches WHERE run_key = $1 AND name = 'victim' \
               AND state = 'done' AND status = 'passed' AND claims = 2 AND lost_pid = $2";
    assert_eq!(scalar2(&url, row, "kill#1", i64::from(pid)), 1);
    let junit = marks.path().join("all.xml");
    let r = report(&url, "kill#1", &junit);
    r.assert_code(0);
    r.assert_stdout_contains("Success: 13/13");
    r.assert_stdout_contains(&format!("pid {pid}) stopped renewing its lease"));
    assert_eq!(r.junit_at(&junit).len(), 13);
}

#[test]
fn two_configs_under_one_key_are_refused() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let one = [
        ("a".to_owned(), "true".to_owned()),
        ("b".to_owned(), "true".to_owned()),
    ];
    let other = [
        ("a".to_owned(), "true".to_owned()),
        ("b".to_owned(), "false".to_owned()),
    ];
    machine(&url, "two", &one).run().assert_code(0);
    let r = machine(&url, "two", &other).run();
    r.assert_code(2);
    r.assert_stderr_contains("queue two#1 was made from other batches");
    r.assert_stderr_contains("every machine of a run must run the same config");
}

#[test]
fn a_report_of_an_unfinished_run_says_what_is_missing() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let marks = tempfile::tempdir().expect("tempdir");
    let started = marks.path().join("slow.started");
    let batches = [
        (
            "slow".to_owned(),
            format!("touch {}; sleep 60", started.display()),
        ),
        ("later".to_owned(), "true".to_owned()),
    ];
    let w = machine_of(&url, "open", &batches, 1);
    let running = w.spawn();
    assert!(wait_until(Duration::from_secs(60), || started.exists()));
    let junit = marks.path().join("all.xml");
    let r = report(&url, "open", &junit);
    r.assert_code(1);
    r.assert_stdout_contains("Incomplete: 2 of 2 batches have no result yet:");
    r.assert_stdout_contains("slow: still running on ");
    r.assert_stdout_contains(&format!("pid {}", running.pid()));
    r.assert_stdout_contains("later: never claimed");
    assert_eq!(r.junit_at(&junit).len(), 2);
    // Interrupted, this machine gives its batch back at once.
    running.signal(libc::SIGINT);
    running.wait().assert_code(130);
    let r = report(&url, "open", &junit);
    r.assert_code(1);
    r.assert_stdout_contains("slow: never claimed");
    r.assert_stdout_contains("later: never claimed");
}

/// Attempt 2 of a key runs only what did not pass in attempt 1; its
/// report holds attempt 1's passes too.
#[test]
fn a_second_attempt_runs_only_what_did_not_pass() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let marks = tempfile::tempdir().expect("tempdir");
    let m = |n: &str| marks.path().join(n).display().to_string();
    let flag = m("fixed");
    let batches = [
        ("a".to_owned(), format!("echo >> {}", m("a"))),
        (
            "b".to_owned(),
            format!(
                "echo >> {}; if [ -e {flag} ]; then exit 0; fi; touch {flag}; exit 1",
                m("b")
            ),
        ),
        ("c".to_owned(), format!("echo >> {}", m("c"))),
    ];
    machine(&url, "rr", &batches).run().assert_code(1);
    let r = machine(&url, "rr#2", &batches).run();
    r.assert_code(0);
    r.assert_stdout_contains(
        "warden: queue rr#2: made it from what did not pass in rr#1, 1 batch,",
    );
    for (name, n) in [("a", 1), ("b", 2), ("c", 1)] {
        assert_eq!(lines(&marks.path().join(name)), n, "{name}");
    }
    let junit = marks.path().join("all.xml");
    let r = report(&url, "rr#2", &junit);
    r.assert_code(0);
    r.assert_stdout_contains("Success: 3/3");
    assert_eq!(r.junit_at(&junit).len(), 3);
    report(&url, "rr#1", &junit).assert_code(1);
}

#[test]
fn no_run_key_names_the_variables_and_sqlite_is_refused() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    // `[run] queue = true` is queue mode as `--queue` is.
    let r = no_ci(Warden::pgroup())
        .run_section("queue = true")
        .shell("a", "true", "")
        .args(["--history", &url])
        .run();
    r.assert_code(2);
    for v in [
        "GITHUB_RUN_ID",
        "GITHUB_RUN_ATTEMPT",
        "BUILDKITE_BUILD_ID",
        "CI_PIPELINE_ID",
        "PROW_JOB_ID",
        "--run-key",
    ] {
        r.assert_stderr_contains(v);
    }
    let w = no_ci(Warden::pgroup()).shell("a", "true", "");
    let db = w.path_str("h.db");
    let r = w
        .args(["--queue", "--run-key", "k", "--history"])
        .arg(format!("sqlite:{db}"))
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("queue mode needs a PostgreSQL history");
}

/// A machine that stalls (SIGSTOP) past its lease loses the batch: another
/// runs it, and the stalled one, once it goes on, stops its copy and
/// reports it `not-run`, never as the batch's result.
#[test]
fn a_stalled_machine_loses_its_batch_and_does_not_report_it() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let marks = tempfile::tempdir().expect("tempdir");
    let started = marks.path().join("victim.started");
    let again = marks.path().join("victim.again");
    let mut batches = vec![victim(&started, &again, 30)];
    for i in 0..3 {
        batches.push((format!("b{i}"), "sleep 0.2".to_owned()));
    }
    let running: Vec<_> = (0..2)
        .map(|_| machine(&url, "stall", &batches).spawn())
        .collect();
    assert!(wait_until(Duration::from_secs(60), || started.exists()));
    let run = std::fs::read_to_string(&started).expect("victim marker");
    let pid: i32 = run
        .split('-')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("WARDEN_RUN starts with warden's pid");
    let (stalled, other): (Vec<_>, Vec<_>) = running.into_iter().partition(|r| r.pid() == pid);
    let stalled = stalled
        .into_iter()
        .next()
        .expect("the victim's warden is ours");
    stalled.signal(libc::SIGSTOP);
    let rerun = wait_until(Duration::from_secs(30), || again.exists());
    stalled.signal(libc::SIGCONT);
    assert!(rerun, "the other machine did not take the victim over");
    let stalled = stalled.wait();
    stalled.assert_code(1);
    stalled.assert_stdout_contains("its lease in queue stall#1 was lost");
    for r in other {
        let r = r.wait();
        r.assert_code(0);
        r.assert_stdout_contains("victim: re-run: its first runner (");
    }
    let row = "SELECT COUNT(*) FROM queue_batches WHERE run_key = $1 AND name = 'victim' \
               AND state = 'done' AND status = 'passed' AND claims = 2 AND lost_pid = $2";
    assert_eq!(scalar2(&url, row, "stall#1", i64::from(pid)), 1);
    let junit = marks.path().join("all.xml");
    let r = report(&url, "stall", &junit);
    r.assert_code(0);
    r.assert_stdout_contains("Success: 4/4");
}

/// `warden report` rebuilds each batch's tests from the history run of the
/// machine that ran it: a TAP batch's five results, one failed.
#[test]
fn the_report_holds_each_batchs_tests() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let r = machine(&url, "tests", &[])
        .batch(&format!(
            "name = \"kselftest\"\ncommand = [{}]\nformat = \"tap\"",
            common::q(&common::fixture("kselftest_tap.sh"))
        ))
        .run();
    r.assert_code(1);
    let mut own: Vec<String> = r.junit().into_iter().map(|c| c.name).collect();
    own.sort();
    let junit = r.path("all.xml");
    let rep = report(&url, "tests", &junit);
    rep.assert_code(1);
    let cases = rep.junit_at(&junit);
    assert_eq!(cases.len(), 5, "{}", rep.context);
    let mut names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    names.sort();
    assert_eq!(
        names, own,
        "the machine's own JUnit and the report name the same tests"
    );
    let failed = cases
        .iter()
        .filter(|c| c.kind == common::Kind::Failure)
        .count();
    assert_eq!(failed, 1, "{}", rep.context);
}
