//! The verdicts through the real binary, on a history imported as JUnit:
//! 20 runs alternating `compiler=gcc` and `compiler=llvm`, one commit each,
//! as the issue that asked for the classification described it — a test
//! failing at random (four gcc failures in a row, then passes), one that
//! breaks for good at run 13, one failing in every run, one that flakes on
//! retries, and ten that always pass; then a 21st run where the
//! infrastructure was down and every test failed (a mass failure), which
//! must change no verdict.

#[macro_use]
mod common;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use common::Warden;
use serde_json::Value;

/// Each test's marks in runs 0..20, as the runs alternate gcc (even) and
/// llvm (odd): `.` passed, `F` failed, `R` failed then passed on a retry.
const TESTS: &[(&str, &str)] = &[
    // gcc: .F..FFFF.. (four in a row, then passes); llvm: F...F..F..
    ("random", ".FF.....FFF.F.FF...."),
    // Both label sets fail from run 12 (gcc) and 13 (llvm) on.
    ("breaks", "............FFFFFFFF"),
    ("always", "FFFFFFFFFFFFFFFFFFFF"),
    ("retried", "....R.........R....."),
    ("fine", "...................."),
];

/// More always-passing tests: a real suite, where a run with the three
/// failing tests above is not a mass failure (more than half failed).
const PASSING: usize = 9;

struct History {
    dir: tempfile::TempDir,
    url: String,
}

impl History {
    /// The 20 runs, imported one by one, an hour apart, ending an hour ago.
    fn imported() -> History {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("h.db").display());
        let h = History { dir, url };
        let now = SystemTime::now();
        let passing: Vec<String> = (0..PASSING).map(|i| format!("passes{i}")).collect();
        for k in 0..=20 {
            let at = now - Duration::from_secs(3600 * (22 - k as u64));
            let compiler = if k % 2 == 0 { "gcc" } else { "llvm" };
            // Run 20: everything failed (the infrastructure was down).
            let mark = |m: &str| {
                if k == 20 {
                    'F'
                } else {
                    m.as_bytes()[k] as char
                }
            };
            let mut marks: Vec<(&str, char)> =
                TESTS.iter().map(|(name, m)| (*name, mark(m))).collect();
            marks.extend(
                passing
                    .iter()
                    .map(|n| (n.as_str(), mark("...................."))),
            );
            h.import(k, at, compiler, &marks);
        }
        h
    }

    fn import(&self, k: usize, at: SystemTime, compiler: &str, marks: &[(&str, char)]) {
        let mut xml = format!(
            "<?xml version=\"1.0\"?>\n<testsuite name=\"suite\" tests=\"{}\">\n",
            marks.len()
        );
        for (name, m) in marks {
            let body = match m {
                'F' => "<failure message=\"assertion failed: left == right\"/>".to_owned(),
                'R' => "<flakyFailure message=\"timeout after 5s\"/>".to_owned(),
                _ => String::new(),
            };
            xml.push_str(&format!(
                "  <testcase classname=\"suite\" name=\"{name}\" time=\"0.01\">{body}</testcase>\n"
            ));
        }
        xml.push_str("</testsuite>\n");
        let file: PathBuf = self.dir.path().join(format!("run{k:02}.xml"));
        std::fs::write(&file, xml).unwrap();
        let r = Warden::new()
            .no_config()
            .subcommand("import")
            .arg("junit")
            .args(["--history", &self.url])
            .args(["--commit", &commit(k)])
            .args(["--label", &format!("compiler={compiler}")])
            .args(["--at", &humantime::format_rfc3339_seconds(at).to_string()])
            .arg(&file)
            .run();
        assert_eq!(r.code, Some(0), "{}", r.stderr);
    }

    fn warden(&self, args: &[&str]) -> common::Run {
        let r = Warden::new()
            .no_config()
            .subcommand(args[0])
            .args(&args[1..])
            .args(["--history", &self.url, "--since", "30d"])
            .run();
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.stderr);
        r
    }

    fn json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = args.to_vec();
        all.extend(["--format", "json", "--limit", "0"]);
        let r = self.warden(&all);
        serde_json::from_str::<Vec<Value>>(&r.stdout).unwrap()
    }
}

fn commit(k: usize) -> String {
    format!("{k:02}{}", "c0ffee".repeat(6))
}

/// The last part of each row's test name, with a field of the row.
fn names(rows: &[Value], field: &str) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| {
            let name = r["test"].as_str().unwrap().rsplit('/').next().unwrap();
            let v = match &r[field] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            (name.to_owned(), v)
        })
        .collect()
}

#[test]
fn flaky_broken_and_regressed_are_told_apart() {
    let h = History::imported();

    // The random test is flaky in the gcc view, four failures in a row
    // notwithstanding; so is the test flaking on retries.
    let gcc = h.json(&["flaky", "--label", "compiler=gcc"]);
    let mut got = names(&gcc, "verdict");
    got.sort();
    assert_eq!(
        got,
        [
            ("random".to_owned(), "flaky".to_owned()),
            ("retried".to_owned(), "flaky".to_owned()),
        ]
    );
    // Both label sets, one row each test: 20 runs of `random`.
    let all = h.json(&["flaky"]);
    let random = all
        .iter()
        .find(|r| r["test"].as_str().unwrap().ends_with("/random"))
        .unwrap();
    assert_eq!(random["runs"], 20);
    assert_eq!(random["failures"], 8);

    // The breaking test is regressed under both label sets, at the right
    // commits; the always failing one is broken under both.
    let rows = h.json(&["regressed"]);
    let summary: Vec<(String, String, String, Value, Value)> = rows
        .iter()
        .map(|r| {
            (
                r["test"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
                r["labels"].as_str().unwrap().to_owned(),
                r["verdict"].as_str().unwrap().to_owned(),
                r["last_good"]["commit"].clone(),
                r["first_bad"]["commit"].clone(),
            )
        })
        .collect();
    let s = |v: &str| v.to_owned();
    assert_eq!(
        summary,
        [
            (
                s("always"),
                s("compiler=gcc"),
                s("broken"),
                Value::Null,
                Value::Null
            ),
            (
                s("always"),
                s("compiler=llvm"),
                s("broken"),
                Value::Null,
                Value::Null
            ),
            (
                s("breaks"),
                s("compiler=gcc"),
                s("regressed"),
                commit(10).into(),
                commit(12).into()
            ),
            (
                s("breaks"),
                s("compiler=llvm"),
                s("regressed"),
                commit(11).into(),
                commit(13).into()
            ),
        ]
    );
    for r in &rows[2..] {
        let sure = r["confidence"].as_f64().unwrap();
        assert!(sure > 0.5 && sure <= 1.0, "{r}");
        assert_eq!(r["failures"], 4);
    }
    // Never in both lists.
    for r in &rows {
        assert!(!all.iter().any(|f| f["test"] == r["test"]), "{r}");
    }

    // `history` says it, with the evidence.
    let r = h.warden(&["history", "random"]);
    assert!(
        r.stdout
            .contains("flaky      compiler=gcc: 10 runs, 5 failed; failing 50% (24–76%)"),
        "{}",
        r.stdout
    );
    let r = h.warden(&["history", "breaks"]);
    assert!(
        r.stdout
            .contains(&format!("broke between {} (", &commit(10)[..10])),
        "{}",
        r.stdout
    );
    // The mass failure changed no verdict; counted (`--mass-failure
    // 100%`), it would make every passing test look flaky.
    assert!(
        !all.iter()
            .any(|r| r["test"].as_str().unwrap().ends_with("/fine"))
    );
    let counted = h.json(&["flaky", "--mass-failure", "100%"]);
    assert!(
        counted
            .iter()
            .any(|r| r["test"].as_str().unwrap().ends_with("/fine")),
        "{counted:?}"
    );
    let r = h.warden(&["history", "fine"]);
    assert!(
        r.stdout.contains("healthy    compiler=gcc: 10 runs\n"),
        "{}",
        r.stdout
    );
}
