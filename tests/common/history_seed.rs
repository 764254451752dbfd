//! A small, hand-checkable history and what the queries must say about it,
//! through the library API only: [`seed`] fills any open [`Db`] (SQLite
//! here, PostgreSQL in the PostgreSQL tests) and [`check_library`] runs
//! every query against it. The binary's rendering of the same data is
//! checked in tests/queries.rs.
//!
//! Three label sets (A, B, C below), eight runs each, interleaved one hour
//! apart: run k (0..24) has label set k % 3 and is that set's run k / 3.
//! Each test's results are written as one mark string per label set, oldest
//! first: `.` passed, `F` failed, `R` flaky, `s` skipped, `-` not run. One
//! more run, 60 days old, lies outside the default 30-day window.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use warden::history::model::{BatchRecord, Label, Labels, RunRecord, RunSource, TestRecord};
use warden::history::query::{self, Filter, Subject};
use warden::history::{Db, RunId};
use warden::phase::Phase;
use warden::status::{RunStatus, Status, TestStatus};

pub const SETS: [&[(&str, &str)]; 3] = [
    &[("arch", "x86_64"), ("compiler", "gcc")],
    &[("arch", "x86_64"), ("compiler", "llvm")],
    &[("arch", "aarch64"), ("compiler", "gcc")],
];
pub const RUNS: usize = 24;

/// A name longer than any table is wide.
pub const LONG: &str = "net/deeply_nested_suite/deeply_nested_group/deeply_nested_case/\
                        deeply_nested_subcase/with_a_long_parameterised_tail";

/// Each test's marks under label sets A, B, C.
pub const TESTS: &[(&str, [&str; 3])] = &[
    ("bpf/verifier/loop", ["........", "........", "........"]),
    ("bpf/maps/hash", ["........", "........", "........"]),
    ("bpf/maps/hash_race", [".F..F.R.", "........", "...F...."]),
    (
        "bpf/maps/broken_lately",
        ["...FFFFF", "........", "........"],
    ),
    (
        "bpf/maps/broken_always",
        ["--------", "--------", "FFFFFFFF"],
    ),
    ("bpf/xdp/redirect", ["........", ".......R", "........"]),
    ("net/tcp/connect", ["........", "........", ".....FFF"]),
    ("net/udp/connect", [".sFs.s..", "........", "........"]),
    (LONG, ["...R....", "........", "........"]),
];

/// The 60-day-old run (label set A): these tests' results.
pub const OLD: &[(&str, char)] = &[
    ("bpf/maps/hash_race", 'F'),
    ("net/old/gone", 'F'),
    ("bpf/verifier/loop", '.'),
];

/// What the checks need to know about the seeded runs.
#[derive(Debug, Clone, Copy)]
pub struct Seeded {
    /// Run 0's start, ten days ago, on a whole second.
    pub base: SystemTime,
}

impl Seeded {
    pub fn time(&self, k: usize) -> SystemTime {
        self.base + Duration::from_secs(3600 * k as u64)
    }

    pub fn commit(k: usize) -> String {
        format!("{k:02}{}", "ab".repeat(19))
    }

    pub fn uuid(k: usize) -> String {
        format!("run-{k:02}")
    }

    pub fn labels(k: usize) -> String {
        labels(k % 3).canonical()
    }
}

fn labels(set: usize) -> Labels {
    SETS[set]
        .iter()
        .map(|(k, v)| Label {
            key: (*k).into(),
            value: (*v).into(),
        })
        .collect()
}

/// `test`'s mark in run `k`.
pub fn mark(test: &str, k: usize) -> char {
    let (_, marks) = TESTS
        .iter()
        .find(|(n, _)| *n == test)
        .expect("a seeded test");
    marks[k % 3].as_bytes()[k / 3] as char
}

/// A test's duration in run `k`: `bpf/verifier/loop` takes (k+1)·10 ms,
/// skipped results 1 s (which the percentiles must leave out), others 5 ms.
pub fn duration(test: &str, k: usize, status: &TestStatus) -> Duration {
    if status.is_skipped() {
        Duration::from_secs(1)
    } else if test == "bpf/verifier/loop" {
        Duration::from_millis(10 * (k as u64 + 1))
    } else {
        Duration::from_millis(5)
    }
}

fn status(mark: char) -> Option<TestStatus> {
    Some(match mark {
        '.' => TestStatus::Passed,
        'F' => TestStatus::Failed,
        'R' => TestStatus::Flaky,
        's' => TestStatus::Skipped(None),
        '-' => return None,
        _ => panic!("mark {mark}"),
    })
}

fn batch(name: &str, phase: Phase, started: SystemTime, secs: u64) -> BatchRecord {
    BatchRecord {
        name: name.into(),
        phase,
        status: Status::Passed,
        reason: String::new(),
        started,
        duration: Duration::from_secs(secs),
        log: None,
        attempts: Vec::new(),
        tests: Vec::new(),
        usage: None,
    }
}

fn test(name: &str, status: TestStatus, duration: Duration, k: usize) -> TestRecord {
    TestRecord {
        name: name.into(),
        message: matches!(status, TestStatus::Failed | TestStatus::Flaky)
            .then(|| format!("assertion failed in run {k}")),
        status,
        duration: Some(duration),
    }
}

async fn run(db: &Db, uuid: String, at: SystemTime, commit: String, set: usize) -> RunId {
    db.begin_run(&RunRecord {
        uuid,
        started: at,
        commit: Some(commit),
        branch: Some("main".into()),
        host: "seed".into(),
        labels: labels(set),
        source: RunSource::Run,
    })
    .await
    .expect("begin_run")
}

/// Writes the runs above into `db` (which should be empty).
pub async fn seed(db: &Db) -> Seeded {
    let now = SystemTime::now();
    let secs = (now - Duration::from_secs(10 * 86_400))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let s = Seeded {
        base: UNIX_EPOCH + Duration::from_secs(secs),
    };
    for k in 0..RUNS {
        let at = s.time(k);
        let id = run(db, Seeded::uuid(k), at, Seeded::commit(k), k % 3).await;
        // A setup step: a batch row of another phase, which durations skip.
        let mut batches = vec![batch("prepare", Phase::Setup, at, 1)];
        for (prefix, secs) in [("bpf", 60 + k as u64), ("net", 30)] {
            let mut b = batch(prefix, Phase::Batch, at, secs);
            b.log = Some(format!("/ci/artifacts/{k:02}/{prefix}.log"));
            for (name, _) in TESTS.iter().filter(|(n, _)| n.starts_with(prefix)) {
                if let Some(st) = status(mark(name, k)) {
                    b.tests
                        .push(test(name, st.clone(), duration(name, k, &st), k));
                }
            }
            batches.push(b);
        }
        for b in &batches {
            db.record_batch(id, b).await.expect("record_batch");
        }
        db.finish_run(id, RunStatus::Failed, at + Duration::from_secs(600))
            .await
            .expect("finish_run");
    }
    let old = now - Duration::from_secs(60 * 86_400);
    let id = run(db, "run-old".into(), old, "0ld".repeat(13), 0).await;
    for prefix in ["bpf", "net"] {
        let mut b = batch(prefix, Phase::Batch, old, 999);
        for (name, m) in OLD.iter().filter(|(n, _)| n.starts_with(prefix)) {
            let st = status(*m).unwrap();
            b.tests.push(test(name, st, Duration::from_secs(9), 99));
        }
        db.record_batch(id, &b).await.expect("record_batch");
    }
    s
}

/// A test name that is also HTML: every page must show it as text.
pub const HOSTILE: &str = "<img src=x onerror=alert(1)>";
/// Label value, branch, message and log text of the hostile runs.
pub const HOSTILE_LABEL: &str = "\"><script>alert(1)</script>";
pub const HOSTILE_MESSAGE: &str = "</code><script>alert(2)</script>";
pub const HOSTILE_LOG: &str = "output <script>alert(3)</script>\n\x1b[31mred\x1b[0m\n";
/// The hostile runs: their count and [`HOSTILE`]'s marks in them.
pub const HOSTILE_MARKS: &str = ".F.FFF";
/// A second test of the hostile runs, failing in every one: broken.
pub const HOSTILE_BROKEN: &str = "<img src=x onerror=alert(1)> broken";

/// Six more runs, recorded on this host, with label `arch=`[`HOSTILE_LABEL`]
/// (no seeded test shares their label set, so none of the numbers above
/// change) and branch [`HOSTILE`], holding two tests: [`HOSTILE`], flaky
/// ([`HOSTILE_MARKS`]: too few runs to call its last three failures a
/// break), and [`HOSTILE_BROKEN`], failing in all six. Each run's batch `evil` has a log
/// in `logs` holding [`HOSTILE_LOG`]; its batch `secret` names
/// `/etc/hostname` as its log, which must never be served. Run uuids
/// `hostile-0`…`hostile-5`, half an hour after the seeded runs 0…5.
pub async fn seed_hostile(db: &Db, s: &Seeded, logs: &std::path::Path) {
    let host = warden::history::origin::host();
    for (k, m) in HOSTILE_MARKS.chars().enumerate() {
        let at = s.time(k) + Duration::from_secs(1800);
        let id = db
            .begin_run(&RunRecord {
                uuid: format!("hostile-{k}"),
                started: at,
                commit: Some(format!("\"'><b>{k:02}")),
                branch: Some(HOSTILE.into()),
                host: host.clone(),
                labels: [Label {
                    key: "arch".into(),
                    value: HOSTILE_LABEL.into(),
                }]
                .into_iter()
                .collect(),
                source: RunSource::Run,
            })
            .await
            .expect("begin_run");
        let log = logs.join(format!("evil-{k}.log"));
        std::fs::write(&log, HOSTILE_LOG).unwrap();
        let st = status(m).unwrap();
        let mut evil = batch("evil", Phase::Batch, at, 2);
        evil.status = if st == TestStatus::Failed {
            Status::Failed
        } else {
            Status::Passed
        };
        evil.log = Some(log.to_str().unwrap().to_owned());
        evil.tests.push(TestRecord {
            name: HOSTILE.into(),
            message: (st == TestStatus::Failed).then(|| HOSTILE_MESSAGE.into()),
            status: st,
            duration: Some(Duration::from_millis(100 + 10 * k as u64)),
        });
        evil.tests.push(TestRecord {
            name: HOSTILE_BROKEN.into(),
            message: Some(HOSTILE_MESSAGE.into()),
            status: TestStatus::Failed,
            duration: Some(Duration::from_millis(1)),
        });
        let mut secret = batch("secret", Phase::Batch, at, 1);
        secret.status = Status::Failed;
        secret.log = Some("/etc/hostname".into());
        db.record_batches(id, &[evil, secret])
            .await
            .expect("record_batches");
        db.finish_run(id, RunStatus::Failed, at + Duration::from_secs(60))
            .await
            .expect("finish_run");
    }
}

pub fn days(n: u64) -> Filter {
    Filter::last(Duration::from_secs(n * 86_400), Vec::new())
}

pub fn label(s: &str) -> Label {
    s.parse().unwrap()
}

/// Every query against the seeded `db`.
pub async fn check_library(db: &Db, s: &Seeded) {
    check_flaky(db, s).await;
    check_regressed(db, s).await;
    check_history(db, s).await;
    check_durations(db, s).await;
    check_runs(db, s).await;
}

/// (test, runs, failures, flaky, hits, flips, pairs) of the default window,
/// in order: the sums over each test's label sets classified flaky (its
/// healthy ones left out). `broken_always`, `broken_lately` and
/// `net/tcp/connect` are broken or regressed, not flaky (`regressed` lists
/// them).
pub const FLAKY_30D: &[(&str, u64, u64, u64, u64, u64, u64)] = &[
    ("bpf/maps/hash_race", 16, 3, 1, 4, 8, 14),
    ("net/udp/connect", 5, 1, 0, 1, 2, 4),
    (LONG, 8, 0, 1, 1, 2, 7),
    ("bpf/xdp/redirect", 8, 0, 1, 1, 1, 7),
];

/// `--min-failures` as the commands' default.
fn min_failures(n: usize) -> warden::history::classify::Params {
    warden::history::classify::Params {
        min_failures: n,
        ..Default::default()
    }
}

pub fn rate(flips: u64, pairs: u64) -> f64 {
    if pairs == 0 {
        0.0
    } else {
        flips as f64 / pairs as f64
    }
}

pub async fn check_flaky(db: &Db, s: &Seeded) {
    let rows = query::flaky(db, &days(30), &[], &Default::default())
        .await
        .unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.test.as_str(), r.runs, r.failures, r.flaky, r.hits))
        .collect();
    let want: Vec<_> = FLAKY_30D
        .iter()
        .map(|&(t, runs, f, fl, h, _, _)| (t, runs, f, fl, h))
        .collect();
    assert_eq!(got, want);
    for (r, &(_, runs, failures, _, _, flips, pairs)) in rows.iter().zip(FLAKY_30D) {
        assert_eq!(r.flip_rate, rate(flips, pairs), "{}", r.test);
        // No change point in these: the regime is the whole window.
        assert_eq!(
            r.failure_rate,
            (failures + r.flaky) as f64 / runs as f64,
            "{}",
            r.test
        );
        assert!(r.interval.0 <= r.failure_rate && r.failure_rate <= r.interval.1);
        assert!(r.labels.is_empty());
    }
    // hash_race: failed in runs 3 (A1), 11 (C3), 12 (A4); flaky in 18 (A6).
    assert_eq!(rows[0].first_seen, s.time(3));
    assert_eq!(rows[0].last_seen, s.time(18));
    assert_eq!(rows[0].verdict, warden::history::classify::Verdict::Flaky);

    // Per label values: x86_64/llvm never failed hash_race.
    let by = ["arch".to_string(), "compiler".to_string()];
    let rows = query::flaky(db, &days(30), &by, &Default::default())
        .await
        .unwrap();
    let got: Vec<_> = rows
        .iter()
        .filter(|r| r.test == "bpf/maps/hash_race")
        .map(|r| {
            (
                r.labels["arch"].as_str(),
                r.labels["compiler"].as_str(),
                r.hits,
                r.flip_rate,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("x86_64", "gcc", 3, rate(6, 7)),
            ("aarch64", "gcc", 1, rate(2, 7))
        ]
    );
    let by = ["arch".to_string(), "os".to_string()];
    let rows = query::flaky(db, &days(30), &by, &Default::default())
        .await
        .unwrap();
    let xdp = rows.iter().find(|r| r.test == "bpf/xdp/redirect").unwrap();
    assert_eq!(
        (xdp.labels["arch"].as_str(), xdp.labels["os"].as_str()),
        ("x86_64", "-")
    );

    // Only x86_64 runs (label sets A and B).
    let x86 = Filter::last(Duration::from_secs(30 * 86_400), vec![label("arch=x86_64")]);
    let rows = query::flaky(db, &x86, &[], &Default::default())
        .await
        .unwrap();
    let got: Vec<_> = rows.iter().map(|r| (r.test.as_str(), r.hits)).collect();
    assert_eq!(
        got,
        [
            ("bpf/maps/hash_race", 3),
            ("net/udp/connect", 1),
            (LONG, 1),
            ("bpf/xdp/redirect", 1),
        ]
    );
    let both = Filter::last(
        Duration::from_secs(30 * 86_400),
        vec![label("arch=x86_64"), label("compiler=llvm")],
    );
    let rows = query::flaky(db, &both, &[], &Default::default())
        .await
        .unwrap();
    let got: Vec<_> = rows.iter().map(|r| r.test.as_str()).collect();
    assert_eq!(got, ["bpf/xdp/redirect"]);

    // The 60-day-old run counts with a longer window.
    let rows = query::flaky(db, &days(90), &[], &Default::default())
        .await
        .unwrap();
    let race = rows
        .iter()
        .find(|r| r.test == "bpf/maps/hash_race")
        .unwrap();
    assert_eq!((race.runs, race.hits), (17, 5));
    // One failure and nothing else is no evidence of flakiness (it is
    // broken: it failed in every run it had).
    assert!(!rows.iter().any(|r| r.test == "net/old/gone"));
    let broken = query::regressed(db, &days(90), &min_failures(3))
        .await
        .unwrap();
    assert!(broken.iter().any(|r| r.test == "net/old/gone"));
    assert!(
        query::flaky(db, &days(1), &[], &Default::default())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn check_regressed(db: &Db, s: &Seeded) {
    use warden::history::classify::Verdict;
    let rows = query::regressed(db, &days(30), &min_failures(3))
        .await
        .unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.test.as_str(), r.labels.as_str(), r.verdict, r.failures))
        .collect();
    assert_eq!(
        got,
        [
            (
                "bpf/maps/broken_always",
                "arch=aarch64 compiler=gcc",
                Verdict::Broken,
                8
            ),
            (
                "bpf/maps/broken_lately",
                "arch=x86_64 compiler=gcc",
                Verdict::Regressed,
                5
            ),
            (
                "net/tcp/connect",
                "arch=aarch64 compiler=gcc",
                Verdict::Regressed,
                3
            ),
        ]
    );
    // broken_always failed since before the window: no last good.
    assert_eq!(rows[0].last_good, None);
    assert_eq!(rows[0].first_bad, None);
    assert_eq!(rows[0].failing_since.run, Seeded::uuid(2));
    // broken_lately: A passed in runs 0, 3, 6 and failed from run 9 (A3) on.
    let r = &rows[1];
    let good = r.last_good.as_ref().unwrap();
    assert_eq!(good.time, s.time(6));
    assert_eq!(good.run, Seeded::uuid(6));
    assert_eq!(good.commit, Some(Seeded::commit(6)));
    let bad = r.first_bad.as_ref().unwrap();
    assert_eq!(bad.time, s.time(9));
    assert_eq!(bad.run, Seeded::uuid(9));
    assert!(r.confidence.unwrap() > 0.5, "{r:?}");
    // net/tcp/connect: C's runs 14 (C4) passed, 17 (C5) failed.
    assert_eq!(rows[2].last_good.as_ref().unwrap().run, Seeded::uuid(14));
    assert_eq!(rows[2].first_bad.as_ref().unwrap().run, Seeded::uuid(17));

    // Four failing results needed: tcp's three are too recent to call.
    let rows = query::regressed(db, &days(30), &min_failures(4))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    // Six: only the test failing in all its runs.
    let rows = query::regressed(db, &days(30), &min_failures(6))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let aarch64 = Filter::last(
        Duration::from_secs(30 * 86_400),
        vec![label("arch=aarch64")],
    );
    let rows = query::regressed(db, &aarch64, &min_failures(3))
        .await
        .unwrap();
    let got: Vec<_> = rows.iter().map(|r| r.test.as_str()).collect();
    assert_eq!(got, ["bpf/maps/broken_always", "net/tcp/connect"]);
}

pub async fn check_history(db: &Db, s: &Seeded) {
    let h = query::history(db, &days(30), "hash_race", &Default::default())
        .await
        .unwrap();
    assert_eq!(h.test, "bpf/maps/hash_race");
    assert_eq!(h.results.len(), RUNS);
    let strip: String = h
        .results
        .iter()
        .map(|e| match e.status {
            TestStatus::Passed => '.',
            TestStatus::Failed | TestStatus::Error(_) => 'F',
            TestStatus::Flaky => 'R',
            TestStatus::Skipped(_) => 's',
        })
        .collect();
    assert_eq!(strip, "...F.......FF.....R.....");
    let e = &h.results[3];
    assert_eq!(e.time, s.time(3));
    assert_eq!(e.commit, Some(Seeded::commit(3)));
    assert_eq!(e.branch.as_deref(), Some("main"));
    assert_eq!(e.labels, Seeded::labels(3));
    assert_eq!(e.run, Seeded::uuid(3));
    assert_eq!(e.batch.as_deref(), Some("bpf"));
    assert_eq!(e.duration, Some(Duration::from_millis(5)));
    assert_eq!(e.message.as_deref(), Some("assertion failed in run 3"));
    assert_eq!(h.results[0].message, None);

    // Exact name first, then a unique `/suffix`, then a unique substring.
    for (name, want) in [
        ("bpf/maps/hash", "bpf/maps/hash"),
        ("hash", "bpf/maps/hash"),
        ("maps/hash", "bpf/maps/hash"),
        ("verifier", "bpf/verifier/loop"),
        ("udp/conn", "net/udp/connect"),
    ] {
        let h = query::history(db, &days(30), name, &Default::default())
            .await
            .unwrap();
        assert_eq!(h.test, want, "{name}");
    }
    // Case matters (SQLite's LIKE would not mind).
    assert!(matches!(
        query::history(db, &days(30), "HASH_RACE", &Default::default()).await,
        Err(query::QueryError::UnknownTest(_))
    ));
    match query::history(db, &days(30), "connect", &Default::default()).await {
        Err(query::QueryError::AmbiguousTest {
            candidates, total, ..
        }) => {
            assert_eq!(candidates, ["net/tcp/connect", "net/udp/connect"]);
            assert_eq!(total, 2);
        }
        other => panic!("{other:?}"),
    }
    match query::history(db, &days(30), "_", &Default::default()).await {
        Err(query::QueryError::AmbiguousTest { total, .. }) => assert_eq!(total, 4),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        query::history(db, &days(30), "no/such", &Default::default()).await,
        Err(query::QueryError::UnknownTest(_))
    ));
    // Skipped results are part of a test's history.
    let h = query::history(db, &days(30), "udp/connect", &Default::default())
        .await
        .unwrap();
    assert_eq!(
        h.results
            .iter()
            .filter(|e| e.status == TestStatus::Skipped(None))
            .count(),
        3
    );
    // The window and labels apply; the name resolves outside them.
    let h = query::history(db, &days(90), "net/old/gone", &Default::default())
        .await
        .unwrap();
    assert_eq!(h.results.len(), 1);
    // Its run never ended (as if its warden had been killed).
    assert_eq!(h.results[0].run_status, RunStatus::Incomplete);
    let h = query::history(db, &days(30), "hash_race", &Default::default())
        .await
        .unwrap();
    assert!(h.results.iter().all(|r| r.run_status == RunStatus::Failed));
    let h = query::history(db, &days(30), "net/old/gone", &Default::default())
        .await
        .unwrap();
    assert!(h.results.is_empty());
}

pub async fn check_durations(db: &Db, seeded: &Seeded) {
    let rows = query::durations(db, &days(30), Subject::Tests)
        .await
        .unwrap();
    // loop: 10, 20, …, 240 ms: p50 is the 12th value, p90 the 22nd.
    let ms = Duration::from_millis;
    let first = &rows[0];
    assert_eq!(first.name, "bpf/verifier/loop");
    assert_eq!(
        (first.count, first.p50, first.p90, first.max),
        (24, ms(120), ms(220), ms(240))
    );
    // Skipped results (1 s each) are left out.
    let udp = rows.iter().find(|r| r.name == "net/udp/connect").unwrap();
    assert_eq!((udp.count, udp.max), (21, ms(5)));
    assert_eq!(rows.len(), TESTS.len());
    // Ties on p90 go by name.
    let names: Vec<&str> = rows[1..].iter().map(|r| r.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    let rows = query::durations(db, &days(30), Subject::Batches)
        .await
        .unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.name.as_str(), r.count, r.p50, r.p90, r.max))
        .collect();
    let s = Duration::from_secs;
    // bpf: 60 s + k s for run k: 60..=83.
    assert_eq!(
        got,
        [
            ("bpf", 24, s(71), s(81), s(83)),
            ("net", 24, s(30), s(30), s(30))
        ]
    );
    let p90 = query::batch_p90(db, &days(90)).await.unwrap();
    assert_eq!(
        p90,
        HashMap::from([("bpf".to_string(), s(82)), ("net".to_string(), s(30))])
    );
    // As of three hours after run 0: runs 0..=2 had ended their batches
    // (bpf 60, 61, 62 s), run 3's had just started.
    let base = query::batch_p90_as_of(db, &days(30), seeded.time(0))
        .await
        .unwrap();
    assert!(base.is_empty(), "{base:?}");
    let p90 = query::batch_p90_as_of(db, &days(30), seeded.time(3))
        .await
        .unwrap();
    assert_eq!(
        p90,
        HashMap::from([("bpf".to_string(), s(62)), ("net".to_string(), s(30))])
    );
}

/// (passed, failed, flaky, skipped) of seeded run `k`.
pub fn run_counts(k: usize) -> (u64, u64, u64, u64) {
    let count = |c: char| TESTS.iter().filter(|(n, _)| mark(n, k) == c).count() as u64;
    (count('.'), count('F'), count('R'), count('s'))
}

pub async fn check_runs(db: &Db, s: &Seeded) {
    let runs = query::runs(db, &days(30), 0).await.unwrap();
    let uuids: Vec<String> = runs.iter().map(|r| r.uuid.clone()).collect();
    let want: Vec<String> = (0..RUNS).rev().map(Seeded::uuid).collect();
    assert_eq!(uuids, want);
    for (r, k) in runs.iter().zip((0..RUNS).rev()) {
        let (passed, failed, flaky, skipped) = run_counts(k);
        assert_eq!(
            (r.passed, r.failed, r.flaky, r.skipped),
            (passed, failed, flaky, skipped),
            "run {k}"
        );
        let rate = (passed + flaky) as f64 / (passed + failed + flaky) as f64;
        assert_eq!(r.pass_rate, Some(rate), "run {k}");
        assert_eq!(r.started, s.time(k));
        assert_eq!(r.duration, Some(Duration::from_secs(600)));
        assert_eq!(r.status, RunStatus::Failed);
        assert_eq!(r.commit, Some(Seeded::commit(k)));
        assert_eq!(r.labels, Seeded::labels(k));
        assert_eq!((r.host.as_str(), r.source.as_str()), ("seed", "run"));
    }
    let runs = query::runs(db, &days(90), 0).await.unwrap();
    let old = runs.last().unwrap();
    assert_eq!((runs.len(), old.uuid.as_str()), (RUNS + 1, "run-old"));
    assert_eq!(
        (old.status, old.ended, old.duration),
        (RunStatus::Incomplete, None, None)
    );
    assert_eq!((old.passed, old.failed), (1, 2));
    let aarch64 = Filter::last(
        Duration::from_secs(30 * 86_400),
        vec![label("arch=aarch64")],
    );
    let runs = query::runs(db, &aarch64, 3).await.unwrap();
    let uuids: Vec<&str> = runs.iter().map(|r| r.uuid.as_str()).collect();
    assert_eq!(uuids, ["run-23", "run-20", "run-17"]);

    // Run 18 (label set A, its 7th run): broken_lately failed, hash_race flaky.
    let run = query::run(db, "run-18").await.unwrap().unwrap();
    assert_eq!(run.run.uuid, "run-18");
    let batches: Vec<(&str, &str, Duration)> = run
        .batches
        .iter()
        .map(|b| (b.name.as_str(), b.phase.as_str(), b.duration))
        .collect();
    let secs = Duration::from_secs;
    assert_eq!(
        batches,
        [
            ("prepare", "setup", secs(1)),
            ("bpf", "batch", secs(78)),
            ("net", "batch", secs(30))
        ]
    );
    assert_eq!(run.batches[0].log, None);
    assert_eq!(
        run.batches[2].log.as_deref(),
        Some("/ci/artifacts/18/net.log")
    );
    assert_eq!(run.batches[1].attempts, 1);
    let failing: Vec<(&str, TestStatus, Option<&str>)> = run
        .failing
        .iter()
        .map(|t| (t.test.as_str(), t.status.clone(), t.message.as_deref()))
        .collect();
    assert_eq!(
        failing,
        [
            (
                "bpf/maps/broken_lately",
                TestStatus::Failed,
                Some("assertion failed in run 18")
            ),
            (
                "bpf/maps/hash_race",
                TestStatus::Flaky,
                Some("assertion failed in run 18")
            ),
        ]
    );
    assert!(
        run.failing
            .iter()
            .all(|t| t.batch == Some(run.batches[1].id))
    );
    assert!(query::run(db, "no-such-run").await.unwrap().is_none());

    let labels = query::label_values(db, days(30).since).await.unwrap();
    let got: Vec<(&str, Vec<&str>)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        got,
        [
            ("arch", vec!["aarch64", "x86_64"]),
            ("compiler", vec!["gcc", "llvm"])
        ]
    );
    assert!(
        query::label_values(db, SystemTime::now())
            .await
            .unwrap()
            .is_empty()
    );
}
