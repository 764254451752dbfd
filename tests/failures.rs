//! `warden failures`: JUnit files crafted with failures of a few causes,
//! imported with `warden import junit` into a fresh store (SQLite, and
//! PostgreSQL when its binaries are there), then grouped by the real
//! binary, as JSON and as a table.

#[macro_use]
mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use assert_cmd::Command;
use serde_json::{Value, json};
use tempfile::TempDir;

use warden::history::query::rfc3339;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn warden(args: &[&str], history: &str, cwd: &Path) -> Out {
    let out = Command::cargo_bin("warden")
        .unwrap()
        .args(args)
        .args(["--history", history])
        .env_remove("WARDEN_HISTORY")
        .current_dir(cwd)
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn ok(o: Out) -> String {
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    o.stdout
}

/// A `<testcase>`: `kind` is `failure`, `flakyFailure` or "" (passed).
fn case(class: &str, name: &str, kind: &str, message: &str) -> String {
    let m = message
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    match kind {
        "" => format!(r#"<testcase classname="{class}" name="{name}" time="0.1"/>"#),
        "failure" => format!(
            r#"<testcase classname="{class}" name="{name}" time="0.1"><failure message="{m}" type="E">at x</failure></testcase>"#
        ),
        _ => format!(
            r#"<testcase classname="{class}" name="{name}" time="0.1"><{kind} message="{m}" type="E"><stackTrace>at x</stackTrace></{kind}></testcase>"#
        ),
    }
}

/// The runs: (hours ago, arch, cases).
fn runs() -> Vec<(u64, &'static str, Vec<String>)> {
    vec![
        (
            3,
            "x86_64",
            vec![
                case(
                    "tcp",
                    "t_connect",
                    "failure",
                    "Timed out after 5000 ms waiting for 127.0.0.1:45123",
                ),
                case(
                    "udp",
                    "t_send",
                    "failure",
                    "Timed out after 300 ms waiting for 10.0.0.7:5000",
                ),
                case(
                    "db",
                    "t_open",
                    "failure",
                    "cannot open /tmp/pytest-of-ci/pytest-7/db0/x.db: locked",
                ),
                case("unit", "t_math", "failure", "expected 4 but got 5"),
                case("unit", "t_ok", "", ""),
            ],
        ),
        (
            2,
            "aarch64",
            vec![
                case(
                    "tcp",
                    "t_connect",
                    "failure",
                    "Timed out after 5000 ms waiting for 127.0.0.1:51000",
                ),
                case(
                    "db",
                    "t_open",
                    "flakyFailure",
                    "cannot open /tmp/pytest-of-ci/pytest-9/db3/x.db: locked",
                ),
                case("unit", "t_math", "failure", "expected 4 but got 6"),
                case("unit", "t_str", "failure", r#"expected "a" but got "b""#),
                case("unit", "t_ok", "", ""),
            ],
        ),
        // Outside the default 30 days.
        (
            24 * 40,
            "x86_64",
            vec![case(
                "tcp",
                "t_connect",
                "failure",
                "Timed out after 2s waiting for 127.0.0.1:40000",
            )],
        ),
    ]
}

fn at(hours_ago: u64) -> SystemTime {
    // Whole seconds, as the JSON shows them.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs(now - hours_ago * 3600)
}

/// Imports the runs into `history`; returns their start times.
fn import(history: &str, dir: &TempDir) -> Vec<SystemTime> {
    let mut times = Vec::new();
    for (i, (hours, arch, cases)) in runs().into_iter().enumerate() {
        let path = dir.path().join(format!("run{i}.xml"));
        std::fs::write(
            &path,
            format!(
                "<testsuites><testsuite name=\"s\">{}</testsuite></testsuites>",
                cases.concat()
            ),
        )
        .unwrap();
        let t = at(hours);
        let label = format!("arch={arch}");
        ok(warden(
            &[
                "import",
                "junit",
                "--label",
                &label,
                "--at",
                &rfc3339(t),
                "--commit",
                &format!("c{i}"),
                path.to_str().unwrap(),
            ],
            history,
            dir.path(),
        ));
        times.push(t);
    }
    times
}

fn json_rows(stdout: &str) -> Vec<Value> {
    match serde_json::from_str(stdout) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("not a JSON array: {other:?}\n{stdout}"),
    }
}

/// The JSON and table checks, on whichever store `history` names.
fn check(history: &str, dir: &TempDir) {
    let times = import(history, dir);
    let rows = json_rows(&ok(warden(
        &["failures", "--format", "json"],
        history,
        dir.path(),
    )));
    let summary: Vec<(&str, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["pattern"].as_str().unwrap(),
                r["failures"].as_u64().unwrap(),
                r["flaky"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Timed out after <DUR> waiting for <IP>:<PORT>", 3, 0),
            ("cannot open <PATH>: locked", 2, 1),
            ("expected <N> but got <N>", 2, 0),
            (r#"expected "a" but got "b""#, 1, 0),
        ],
        "{rows:#?}"
    );
    assert_eq!(
        rows[0],
        json!({
            "pattern": "Timed out after <DUR> waiting for <IP>:<PORT>",
            "example": "Timed out after 5000 ms waiting for 127.0.0.1:51000",
            "failures": 3,
            "flaky": 0,
            "runs": 2,
            "tests": ["s/tcp/t_connect", "s/udp/t_send"],
            "labels": {"arch": ["aarch64", "x86_64"]},
            "first_seen": rfc3339(times[0]),
            "last_seen": rfc3339(times[1]),
        })
    );

    // The older run joins its cluster with a longer window; labels filter.
    let rows = json_rows(&ok(warden(
        &["failures", "--format", "json", "--since", "90d"],
        history,
        dir.path(),
    )));
    assert_eq!(rows[0]["failures"], 4);
    assert_eq!(rows[0]["first_seen"], rfc3339(times[2]));
    let rows = json_rows(&ok(warden(
        &["failures", "--format", "json", "--label", "arch=aarch64"],
        history,
        dir.path(),
    )));
    let patterns: Vec<&str> = rows
        .iter()
        .map(|r| r["pattern"].as_str().unwrap())
        .collect();
    assert_eq!(
        patterns,
        [
            "Timed out after <DUR> waiting for <IP>:<PORT>",
            "cannot open <PATH>: locked",
            r#"expected "a" but got "b""#,
            "expected <N> but got <N>",
        ]
    );
    assert!(rows.iter().all(|r| r["failures"] == 1), "{rows:#?}");

    let table = ok(warden(&["failures", "--limit", "2"], history, dir.path()));
    let day = |t: SystemTime| {
        chrono::DateTime::<chrono::Utc>::from(t)
            .format("%m-%d")
            .to_string()
    };
    let lines: Vec<&str> = table.lines().collect();
    let pattern = |p: &str| format!("{p:<45}");
    assert_eq!(
        lines[..9],
        [
            format!("COUNT  TESTS  RUNS  {}  FIRST  LAST", pattern("PATTERN")),
            format!(
                "    3      2     2  {}  {}  {}",
                pattern("Timed out after <DUR> waiting for <IP>:<PORT>"),
                day(times[0]),
                day(times[1])
            ),
            "    e.g. Timed out after 5000 ms waiting for 127.0.0.1:51000".into(),
            "    in s/tcp/t_connect, s/udp/t_send".into(),
            "    with arch=aarch64,x86_64".into(),
            format!(
                "    2      1     2  {}  {}  {}",
                pattern("cannot open <PATH>: locked"),
                day(times[0]),
                day(times[1])
            ),
            "    e.g. cannot open /tmp/pytest-of-ci/pytest-9/db3/x.db: locked".into(),
            "    in s/db/t_open".into(),
            "    with arch=aarch64,x86_64".into(),
        ],
        "\n{table}"
    );
    assert_eq!(lines[9], "… 2 more rows (--limit 0 shows all)");
    assert!(lines[10].starts_with("COUNT: "), "{table}");
    assert!(lines.iter().all(|l| l.chars().count() <= 100), "{table}");

    let none = ok(warden(&["failures", "--since", "1h"], history, dir.path()));
    assert_eq!(none, "no failures with a message in the last 1h\n");
}

#[test]
fn failures_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let history = format!("sqlite:{}", dir.path().join("history.db").display());
    check(&history, &dir);

    let absent = format!("sqlite:{}", dir.path().join("absent.db").display());
    let o = warden(&["failures"], &absent, dir.path());
    assert_eq!((o.code, o.stdout.as_str()), (0, ""));
    assert!(o.stderr.contains("no history at"), "{}", o.stderr);
}

/// The same on PostgreSQL (the shared throwaway server; skipped, saying
/// why, without PostgreSQL binaries).
#[test]
fn failures_on_postgres() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    check(&url, &tempfile::tempdir().unwrap());
}
