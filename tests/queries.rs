//! The history queries: the library against a seeded store
//! (`common::history_seed`), SQLite and PostgreSQL, and the real binary's
//! tables and JSON for `flaky`, `regressed`, `history` and `durations`.

#[macro_use]
mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::SystemTime;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

use common::history_seed::{self, FLAKY_30D, LONG, Seeded, rate};
use warden::history::query::rfc3339;
use warden::history::{Access, Db, Location};

struct Store {
    dir: TempDir,
    path: PathBuf,
    seeded: Seeded,
}

impl Store {
    async fn seeded() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let db = Db::open(&Location::Sqlite(path.clone()), Access::Write)
            .await
            .unwrap();
        let seeded = history_seed::seed(&db).await;
        db.close().await;
        Store { dir, path, seeded }
    }

    /// `warden ARGS --history sqlite:PATH`.
    fn warden(&self, args: &[&str]) -> Run {
        warden(args, &format!("sqlite:{}", self.path.display()), &self.dir)
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Vec<Value> {
        match serde_json::from_str(&self.stdout) {
            Ok(Value::Array(rows)) => rows,
            other => panic!("not a JSON array: {other:?}\n{}", self.stdout),
        }
    }

    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

fn warden(args: &[&str], history: &str, cwd: &TempDir) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::cargo_bin("warden")
        .unwrap()
        .args(args)
        .args(["--history", history])
        .env_remove("WARDEN_HISTORY")
        .current_dir(cwd.path())
        .output()
        .unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn utc(t: SystemTime, format: &str) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format(format)
        .to_string()
}

/// [`LONG`] cut to `width` characters from the left.
fn long_cut(width: usize) -> String {
    let tail: String = LONG
        .chars()
        .skip(LONG.chars().count() - (width - 1))
        .collect();
    format!("…{tail}")
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

#[tokio::test]
async fn library_queries_on_sqlite() {
    let store = Store::seeded().await;
    let db = Db::open(&Location::Sqlite(store.path.clone()), Access::Read)
        .await
        .unwrap();
    history_seed::check_library(&db, &store.seeded).await;
}

/// The same checks on PostgreSQL (a throwaway server; skipped, saying
/// why, without PostgreSQL binaries), and the binary reading it.
#[tokio::test]
async fn library_queries_on_postgres() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let db = Db::open(&Location::Postgres(url.clone()), Access::Write)
        .await
        .unwrap();
    let seeded = history_seed::seed(&db).await;
    history_seed::check_library(&db, &seeded).await;
    db.close().await;

    let dir = tempfile::tempdir().unwrap();
    let rows = warden(&["flaky", "--format", "json"], &url, &dir)
        .ok()
        .json();
    let tests: Vec<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    let want: Vec<&str> = FLAKY_30D.iter().map(|r| r.0).collect();
    assert_eq!(tests, want);
}

#[tokio::test]
async fn flaky_table() {
    let store = Store::seeded().await;
    let r = store.warden(&["flaky"]).ok();
    let day = |k| utc(store.seeded.time(k), "%m-%d");
    // FIRST/LAST of each row: the runs of its first and last failure.
    let seen = [(3, 18), (6, 6), (9, 9), (22, 22)];
    // 100 columns less the 61 of the others: 39 for the name.
    let mut want = vec![format!(
        "{:<39}  HITS  RUNS  FAIL  FLAKY  RATE%  95% CI  FLIP%  FIRST  LAST",
        "TEST"
    )];
    // RATE% and its Wilson interval: failing / results of the flaky label
    // sets (no change point in any); FLIP%: FLAKY_30D's flips / pairs.
    let numbers = [
        "   4    16     3      1   25.0   10–49   57.1",
        "   1     5     1      0   20.0    4–62   50.0",
        "   1     8     0      1   12.5    2–47   28.6",
        "   1     8     0      1   12.5    2–47   14.3",
    ];
    for ((row, n), (first, last)) in FLAKY_30D.iter().zip(numbers).zip(seen) {
        let name = if row.0 == LONG {
            long_cut(39)
        } else {
            format!("{:<39}", row.0)
        };
        want.push(format!("{name}  {n}  {}  {}", day(first), day(last)));
    }
    assert_eq!(r.lines()[..5], want, "\n{}", r.stdout);
    assert!(
        r.lines()[5].starts_with("HITS = FAIL + FLAKY"),
        "{}",
        r.stdout
    );
    assert!(r.lines()[6].starts_with("RATE%: "), "{}", r.stdout);
    assert_eq!(r.lines().len(), 8);
    assert!(
        r.lines().iter().all(|l| l.chars().count() <= 100),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn flaky_json() {
    let store = Store::seeded().await;
    let rows = store.warden(&["flaky", "--format", "json"]).ok().json();
    let tests: Vec<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    let want: Vec<&str> = FLAKY_30D.iter().map(|r| r.0).collect();
    assert_eq!(tests, want);
    let race = &rows[0];
    assert_eq!(
        keys(race),
        [
            "failure_rate",
            "failures",
            "first_seen",
            "flaky",
            "flaky_commits",
            "flip_rate",
            "hits",
            "interval",
            "last_seen",
            "runs",
            "test",
            "verdict"
        ]
    );
    assert_eq!(race["verdict"], "flaky");
    assert_eq!(race["runs"], 16);
    assert_eq!(race["failures"], 3);
    assert_eq!(race["flaky"], 1);
    assert_eq!(race["hits"], 4);
    // One commit per run: no commit both passed and failed.
    assert_eq!(race["flaky_commits"], 0);
    assert_eq!(race["failure_rate"], 0.25);
    let interval = race["interval"].as_array().unwrap();
    let (lo, hi) = (interval[0].as_f64().unwrap(), interval[1].as_f64().unwrap());
    assert!(
        (lo - 0.1018).abs() < 1e-3 && (hi - 0.4950).abs() < 1e-3,
        "{interval:?}"
    );
    let flip = race["flip_rate"].as_f64().unwrap();
    assert!((flip - rate(8, 14)).abs() < 1e-12, "{flip}");
    assert_eq!(race["first_seen"], rfc3339(store.seeded.time(3)));
    assert_eq!(race["last_seen"], rfc3339(store.seeded.time(18)));
}

#[tokio::test]
async fn flaky_by_labels_filters_and_limits() {
    let store = Store::seeded().await;

    let r = store.warden(&["flaky", "--by", "arch,compiler"]).ok();
    assert!(
        r.lines()[0].starts_with("TEST") && r.lines()[0].contains("  ARCH     COMPILER  HITS"),
        "{}",
        r.stdout
    );
    let race: Vec<&str> = r
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("bpf/maps/hash_race "))
        .collect();
    assert_eq!(race.len(), 2, "{}", r.stdout);
    assert!(
        race[0].contains("  x86_64   gcc          3     8"),
        "{}",
        r.stdout
    );
    assert!(
        race[1].contains("  aarch64  gcc          1     8"),
        "{}",
        r.stdout
    );

    let rows = store
        .warden(&["flaky", "--by", "arch", "--format", "json"])
        .ok()
        .json();
    let race: Vec<(&str, &Value)> = rows
        .iter()
        .filter(|r| r["test"] == "bpf/maps/hash_race")
        .map(|r| (r["labels"]["arch"].as_str().unwrap(), &r["hits"]))
        .collect();
    assert_eq!(
        race,
        [("x86_64", &Value::from(3)), ("aarch64", &Value::from(1))]
    );
    assert_eq!(keys(&rows[0]["labels"]), ["arch"]);

    let r = store.warden(&["flaky", "--label", "arch=x86_64"]).ok();
    let tests: Vec<&str> = r.lines()[1..5]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        tests,
        [
            "bpf/maps/hash_race",
            "net/udp/connect",
            &long_cut(39),
            "bpf/xdp/redirect"
        ]
    );

    let rows = store
        .warden(&["flaky", "--since", "90d", "--format", "json"])
        .ok()
        .json();
    assert!(
        rows.iter()
            .any(|r| r["test"] == "bpf/maps/hash_race" && r["runs"] == 17)
    );

    let r = store.warden(&["flaky", "--limit", "2"]).ok();
    assert_eq!(r.lines().len(), 1 + 2 + 1 + 3, "{}", r.stdout);
    assert_eq!(r.lines()[3], "… 2 more rows (--limit 0 shows all)");
    let rows = store
        .warden(&["flaky", "--limit", "2", "--format", "json"])
        .ok()
        .json();
    assert_eq!(rows.len(), 2);

    let r = store.warden(&["flaky", "--since", "1d"]).ok();
    assert_eq!(r.stdout, "no flaky tests in the last 1d\n");
    let r = store
        .warden(&["flaky", "--label", "arch=s390x", "--since", "12h"])
        .ok();
    assert_eq!(r.stdout, "no flaky tests in the last 12h with arch=s390x\n");
    let r = store
        .warden(&["flaky", "--since", "1d", "--format", "json"])
        .ok();
    assert_eq!(r.stdout, "[]\n");

    let r = store.warden(&["flaky", "--by", "arch,a b"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("`a b` is not a label key"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn regressed_table_and_json() {
    let store = Store::seeded().await;
    let s = &store.seeded;
    let r = store.warden(&["regressed"]).ok();
    let at = |k| utc(s.time(k), "%m-%d %H:%M");
    let commit = |k| Seeded::commit(k)[..10].to_string();
    // SURE: the model's posterior for the break's place (8 results, a
    // clean break after 3 or 5 passes).
    let row = |test, labels, fails, first: usize, last: usize, sure| {
        format!(
            "{test:<22}  {labels:<25}  regressed  {fails:>5}  {}  {}  {}  {sure:>4}",
            at(first),
            commit(first),
            commit(last)
        )
    };
    let want = [
        format!(
            "{:<22}  {:<25}  VERDICT    FAILS  SINCE (UTC)  FIRST BAD   LAST GOOD   SURE",
            "TEST", "LABELS"
        ),
        format!(
            "{:<22}  {:<25}  broken         8  {}  -           -              -",
            "bpf/maps/broken_always",
            "arch=aarch64 compiler=gcc",
            at(2),
        ),
        row(
            "bpf/maps/broken_lately",
            "arch=x86_64 compiler=gcc",
            5,
            9,
            6,
            "74%",
        ),
        row(
            "net/tcp/connect",
            "arch=aarch64 compiler=gcc",
            3,
            17,
            14,
            "74%",
        ),
    ];
    assert_eq!(r.lines()[..4], want, "\n{}", r.stdout);
    assert!(r.lines()[4].starts_with("broken: "), "{}", r.stdout);
    assert_eq!(r.lines().len(), 6, "{}", r.stdout);

    let rows = store.warden(&["regressed", "--format", "json"]).ok().json();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        keys(&rows[0]),
        [
            "confidence",
            "failing_since",
            "failure_rate",
            "failures",
            "first_bad",
            "labels",
            "last_good",
            "regime_runs",
            "test",
            "verdict"
        ]
    );
    assert_eq!(rows[0]["verdict"], "broken");
    assert_eq!(rows[0]["last_good"], Value::Null);
    assert_eq!(rows[0]["failing_since"]["run"], "run-02");
    assert_eq!(rows[2]["test"], "net/tcp/connect");
    assert_eq!(rows[2]["verdict"], "regressed");
    assert_eq!(rows[2]["labels"], "arch=aarch64 compiler=gcc");
    assert_eq!(rows[2]["failures"], 3);
    assert_eq!(
        rows[2]["last_good"],
        serde_json::json!({
            "time": rfc3339(s.time(14)),
            "commit": Seeded::commit(14),
            "run": "run-14",
        })
    );
    assert_eq!(rows[2]["first_bad"]["run"], "run-17");
    let sure = rows[2]["confidence"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&sure), "{sure}");

    // Header, 2 rows, 2 lines of legend.
    let r = store.warden(&["regressed", "--min-failures", "4"]).ok();
    assert_eq!(r.lines().len(), 5, "{}", r.stdout);
    let r = store.warden(&["regressed", "--min-failures", "6"]).ok();
    assert_eq!(r.lines().len(), 4, "{}", r.stdout);
    let r = store.warden(&["regressed", "--min-failures", "0"]);
    assert_eq!(r.code, 2);
}

#[tokio::test]
async fn history_of_one_test() {
    let store = Store::seeded().await;
    let s = &store.seeded;
    let r = store.warden(&["history", "hash_race"]).ok();
    let mut lines = r.lines();
    // The verdict under each label set, above the strip: failing share
    // with its 95% Wilson interval.
    assert_eq!(
        lines[..4],
        [
            "bpf/maps/hash_race: 24 results in the last 30d, oldest first",
            "flaky      arch=aarch64 compiler=gcc: 8 runs, 1 failed; failing 12% (2–47%)",
            "flaky      arch=x86_64 compiler=gcc: 8 runs, 2 failed, 1 flaky; failing 38% (14–69%)",
            "healthy    arch=x86_64 compiler=llvm: 8 runs",
        ],
        "{}",
        r.stdout
    );
    lines.drain(1..4);
    assert_eq!(
        lines[..4],
        [
            "bpf/maps/hash_race: 24 results in the last 30d, oldest first",
            "...F.......FF.....R.....",
            ". passed  F failed  R flaky (failed, then passed on a retry)  s skipped",
            "",
        ],
        "{}",
        r.stdout
    );
    assert_eq!(
        lines[4],
        format!(
            "{:<16}  STATUS  DURATION  RUN     {:<12}  BRANCH  LABELS",
            "TIME (UTC)", "COMMIT"
        )
    );
    let row = |k: usize, status: &str| {
        format!(
            "{}  {status:<6}     0.01s  failed  {}  main    {}",
            utc(s.time(k), "%Y-%m-%d %H:%M"),
            &Seeded::commit(k)[..12],
            Seeded::labels(k)
        )
    };
    assert_eq!(lines[5], row(0, "passed"));
    assert_eq!(lines[8], row(3, "failed"));
    assert_eq!(lines[9], "    assertion failed in run 3");
    // 24 results and 4 messages (3 failures, 1 flaky).
    assert_eq!(lines.len(), 5 + 24 + 4, "{}", r.stdout);
    assert!(
        lines.iter().all(|l| l.chars().count() <= 100),
        "{}",
        r.stdout
    );

    let r = store.warden(&["history", "hash_race", "--limit", "6"]).ok();
    assert_eq!(
        r.lines()[4..6],
        [
            "… 18 earlier results not shown (--limit 0 shows all)",
            "R.....",
        ]
    );
    // The verdicts are over all 24 results, not the 6 shown.
    assert!(r.lines()[2].contains("8 runs, 2 failed, 1 flaky"));
    assert_eq!(r.lines().len(), 3 + 6 + 6 + 1, "{}", r.stdout);

    // A regression: where it broke, from the model.
    let r = store.warden(&["history", "broken_lately"]).ok();
    let at = |k| utc(s.time(k), "%m-%d %H:%M");
    assert_eq!(
        r.lines()[2..4],
        [
            "regressed  arch=x86_64 compiler=gcc: 8 runs, 5 failed; failing 100% (57–100%)"
                .to_owned(),
            format!(
                "           broke between {} ({}) and {} ({}), 74% sure; 5 runs since",
                &Seeded::commit(6)[..10],
                at(6),
                &Seeded::commit(9)[..10],
                at(9)
            ),
        ],
        "{}",
        r.stdout
    );

    let rows = store
        .warden(&["history", "bpf/maps/hash_race", "--format", "json"])
        .ok()
        .json();
    assert_eq!(rows.len(), 24);
    assert_eq!(
        rows[3],
        serde_json::json!({
            "test": "bpf/maps/hash_race",
            "time": rfc3339(s.time(3)),
            "status": "failed",
            "duration_ms": 5,
            "commit": Seeded::commit(3),
            "branch": "main",
            "labels": "arch=x86_64 compiler=gcc",
            "run": "run-03",
            "run_status": "failed",
            "batch": "bpf",
            "message": "assertion failed in run 3",
            "mass_failure": null,
        })
    );

    let r = store.warden(&["history", "connect"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "warden: `connect` names 2 tests: net/tcp/connect, net/udp/connect; give more of the name\n"
    );
    let r = store.warden(&["history", "no/such/test"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "warden: no test named `no/such/test` in the history\n"
    );
    let r = store.warden(&["history", "net/old/gone"]).ok();
    assert_eq!(r.stdout, "no results of net/old/gone in the last 30d\n");
}

#[tokio::test]
async fn durations_of_tests_and_batches() {
    let store = Store::seeded().await;
    let r = store.warden(&["durations"]).ok();
    let want = [
        format!("{:<72}  COUNT    P50    P90    MAX", "TEST"),
        format!("{:<72}     24  0.12s  0.22s  0.24s", "bpf/verifier/loop"),
        format!(
            "{:<72}      8  0.01s  0.01s  0.01s",
            "bpf/maps/broken_always"
        ),
    ];
    assert_eq!(r.lines()[..3], want, "\n{}", r.stdout);
    assert!(r.stdout.contains(&long_cut(72)), "{}", r.stdout);
    assert_eq!(r.lines().len(), 1 + history_seed::TESTS.len());
    assert!(
        r.lines().iter().all(|l| l.chars().count() <= 100),
        "{}",
        r.stdout
    );
    assert_eq!(
        store.warden(&["durations", "--tests"]).ok().stdout,
        r.stdout
    );

    let r = store.warden(&["durations", "--batches"]).ok();
    assert_eq!(
        r.lines(),
        [
            "BATCH  COUNT     P50     P90     MAX",
            "bpf       24  1m 11s  1m 21s  1m 23s",
            "net       24  30.00s  30.00s  30.00s",
        ]
    );
    let rows = store
        .warden(&["durations", "--batches", "--format", "json"])
        .ok()
        .json();
    assert_eq!(
        rows[0],
        serde_json::json!({"name": "bpf", "count": 24, "p50_ms": 71000, "p90_ms": 81000, "max_ms": 83000})
    );
    let r = store
        .warden(&["durations", "--batches", "--since", "1h"])
        .ok();
    assert_eq!(r.stdout, "no batch durations in the last 1h\n");
    assert_eq!(store.warden(&["durations", "--tests", "--batches"]).code, 2);
}

#[test]
fn no_history_yet() {
    let dir = tempfile::tempdir().unwrap();
    let absent = format!("sqlite:{}", dir.path().join("absent.db").display());
    for cmd in ["flaky", "regressed", "durations"] {
        let r = warden(&[cmd], &absent, &dir);
        assert_eq!(r.code, 0, "{cmd}: {}", r.stderr);
        assert_eq!(r.stdout, "");
        assert_eq!(
            r.stderr,
            format!("warden: no history at {absent} yet: nothing was recorded there\n")
        );
    }
    let r = warden(&["history", "x"], &absent, &dir);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no history at"), "{}", r.stderr);
    // Reading creates nothing.
    assert!(!dir.path().join("absent.db").exists());

    let r = warden(&["flaky"], "none", &dir);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stderr,
        "warden: no history: the history location is `none`\n"
    );
}
