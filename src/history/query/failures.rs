//! `warden failures`: the window's failures grouped by cause — by their
//! message with the variable parts masked ([`crate::history::mask`]), one
//! row per pattern, most failures first.
//!
//! What counts: every `failed` and `flaky` result with a message in the
//! window's runs (a flaky result's message is its failed attempt's). They
//! are found through the partial index `results_failing`, as `flaky`
//! finds its tests, so the passing million is never read; only their
//! `(test, run, status, message)` rows travel, and the runs (few) are
//! joined here. Each distinct message is masked once ([`Masker`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::SystemTime;

use serde::Serialize;

use super::{Filter, HistoryEntry, Result, Sql, for_each_row, serialize_time, test_names, time};
use crate::history::Db;
use crate::history::mask::Masker;
use crate::status::TestStatus;

/// One cause: the failures whose messages share a pattern.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterRow {
    /// The message with its variable parts masked (`<N>`, `<DUR>`, …).
    pub pattern: String,
    /// The latest failure's message as it was.
    pub example: String,
    /// Failed and flaky results.
    pub failures: u64,
    /// Of those, flaky ones (failed, then passed on a retry).
    pub flaky: u64,
    /// Runs with one of them.
    pub runs: u64,
    /// The tests that failed so, sorted.
    pub tests: Vec<String>,
    /// The label values of those runs, per key, sorted.
    pub labels: BTreeMap<String, Vec<String>>,
    #[serde(serialize_with = "serialize_time")]
    pub first_seen: SystemTime,
    #[serde(serialize_with = "serialize_time")]
    pub last_seen: SystemTime,
}

/// A run of the window: when it started and its labels' text.
struct Run {
    started: i64,
    labels: String,
}

/// The failures of `filter`'s runs grouped by pattern, most failures
/// first, then by pattern.
pub async fn failures(db: &Db, filter: &Filter) -> Result<Vec<ClusterRow>> {
    let mut sql = Sql::default();
    let cond = filter.runs_condition(&mut sql);
    let text = format!("SELECT runs.id, runs.started_at, runs.labels FROM runs WHERE {cond}");
    let mut runs: HashMap<i64, Run> = HashMap::new();
    for_each_row!(db, sql, &text, |row| {
        runs.insert(
            row.try_get(0)?,
            Run {
                started: row.try_get(1)?,
                labels: row.try_get(2)?,
            },
        );
    });

    let mut sql = Sql::default();
    let run_ids = filter.run_ids(&mut sql);
    // As in `sequences`: the condition on `status` is the partial index
    // `results_failing`'s own, and `+r.run_id` keeps SQLite from reading
    // every result of the window through `results_run` instead.
    let text = format!(
        "SELECT r.test_id, r.run_id, r.status, r.message FROM results r \
         WHERE r.status IN ({failed}, {flaky}) AND r.message IS NOT NULL \
         AND +r.run_id IN ({run_ids})",
        failed = TestStatus::Failed.code(),
        flaky = TestStatus::Flaky.code(),
    );
    // Messages numbered as first seen, each kept once.
    let mut messages: Vec<String> = Vec::new();
    let mut message_ids: HashMap<String, u32> = HashMap::new();
    let mut found: Vec<Failure> = Vec::new();
    for_each_row!(db, sql, &text, |row| {
        let run: i64 = row.try_get(1)?;
        // A run that started after the first query is not in the window.
        if !runs.contains_key(&run) {
            continue;
        }
        let message: &str = row.try_get(3)?;
        let id = match message_ids.get(message) {
            Some(&id) => id,
            None => {
                let id = messages.len() as u32;
                messages.push(message.to_owned());
                message_ids.insert(message.to_owned(), id);
                id
            }
        };
        let code: i64 = row.try_get(2)?;
        found.push(Failure {
            test: row.try_get(0)?,
            run,
            flaky: code == i64::from(TestStatus::Flaky.code()),
            message: id,
        });
    });
    drop(message_ids);
    let names = test_names(db, found.iter().map(|f| f.test).collect::<BTreeSet<_>>()).await?;
    Ok(cluster(&found, &messages, &names, &runs))
}

/// One failed or flaky result, by ids.
struct Failure {
    test: i64,
    run: i64,
    flaky: bool,
    /// Index into the messages.
    message: u32,
}

/// A cluster being added up.
#[derive(Default)]
struct Acc {
    failures: u64,
    flaky: u64,
    runs: HashSet<i64>,
    tests: HashSet<i64>,
    /// (started, run id, test name) of the latest failure, and its message.
    latest: Option<((i64, i64, String), u32)>,
    first: i64,
    last: i64,
}

fn cluster(
    found: &[Failure],
    messages: &[String],
    names: &HashMap<i64, String>,
    runs: &HashMap<i64, Run>,
) -> Vec<ClusterRow> {
    let name = |id: i64| names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
    let mut masker = Masker::default();
    let mut accs: HashMap<usize, Acc> = HashMap::new();
    for f in found {
        let Some(run) = runs.get(&f.run) else {
            continue;
        };
        let test = name(f.test);
        let pattern = masker.pattern(&messages[f.message as usize], &test);
        let acc = accs.entry(pattern).or_insert_with(|| Acc {
            first: run.started,
            last: run.started,
            ..Acc::default()
        });
        acc.failures += 1;
        acc.flaky += u64::from(f.flaky);
        acc.runs.insert(f.run);
        acc.tests.insert(f.test);
        acc.first = acc.first.min(run.started);
        acc.last = acc.last.max(run.started);
        let key = (run.started, f.run, test);
        if acc.latest.as_ref().is_none_or(|(k, _)| key > *k) {
            acc.latest = Some((key, f.message));
        }
    }
    let mut rows: Vec<ClusterRow> = accs
        .into_iter()
        .map(|(pattern, acc)| {
            let mut tests: Vec<String> = acc.tests.iter().map(|&t| name(t)).collect();
            tests.sort_unstable();
            let mut labels: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
            for run in acc.runs.iter().filter_map(|r| runs.get(r)) {
                for (k, v) in run.labels.split(' ').filter_map(|l| l.split_once('=')) {
                    labels.entry(k.to_owned()).or_default().insert(v);
                }
            }
            ClusterRow {
                pattern: masker.text(pattern).to_owned(),
                example: acc
                    .latest
                    .map(|(_, m)| messages[m as usize].clone())
                    .unwrap_or_default(),
                failures: acc.failures,
                flaky: acc.flaky,
                runs: acc.runs.len() as u64,
                tests,
                labels: labels
                    .into_iter()
                    .map(|(k, v)| (k, v.into_iter().map(str::to_owned).collect()))
                    .collect(),
                first_seen: time(acc.first),
                last_seen: time(acc.last),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.failures
            .cmp(&a.failures)
            .then_with(|| a.pattern.cmp(&b.pattern))
    });
    rows
}

/// One cluster a test's failures fall in, as its page lists them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestCluster {
    pub pattern: String,
    /// This test's failed and flaky results in it.
    pub failures: u64,
    #[serde(serialize_with = "serialize_time")]
    pub last_seen: SystemTime,
}

/// The clusters of one test's failed and flaky results (with a message)
/// among `results`, most failures first, then by pattern: the same
/// patterns as [`failures`] gives them.
pub fn test_clusters(results: &[HistoryEntry]) -> Vec<TestCluster> {
    let mut masker = Masker::default();
    let mut found: HashMap<usize, (u64, SystemTime)> = HashMap::new();
    for e in results {
        let Some(m) = e.message.as_deref() else {
            continue;
        };
        if !matches!(e.status, TestStatus::Failed | TestStatus::Flaky) {
            continue;
        }
        let n = masker.pattern(m, &e.test);
        let c = found.entry(n).or_insert((0, e.time));
        c.0 += 1;
        c.1 = c.1.max(e.time);
    }
    let mut rows: Vec<TestCluster> = found
        .into_iter()
        .map(|(n, (failures, last_seen))| TestCluster {
            pattern: masker.text(n).to_owned(),
            failures,
            last_seen,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.failures
            .cmp(&a.failures)
            .then_with(|| a.pattern.cmp(&b.pattern))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(started: i64, labels: &str) -> Run {
        Run {
            started,
            labels: labels.into(),
        }
    }

    #[test]
    fn failures_group_by_pattern() {
        let runs: HashMap<i64, Run> = [
            (1, run(1_000, "arch=x86_64 compiler=gcc")),
            (2, run(2_000, "arch=aarch64 compiler=gcc")),
            (3, run(3_000, "")),
        ]
        .into_iter()
        .collect();
        let names: HashMap<i64, String> =
            [(10, "b/t".into()), (11, "a/t".into()), (12, "c".into())]
                .into_iter()
                .collect();
        let messages: Vec<String> = [
            "timed out after 5s",
            "timed out after 12s",
            "expected 1 got 2",
            "expected 1, got 2",
        ]
        .map(String::from)
        .to_vec();
        let f = |test, run, flaky, message| Failure {
            test,
            run,
            flaky,
            message,
        };
        let rows = cluster(
            &[
                f(10, 1, false, 0),
                f(11, 2, true, 1),
                f(10, 2, false, 1),
                f(12, 3, false, 2),
                f(12, 1, false, 3),
                // A run outside the window.
                f(12, 9, false, 0),
            ],
            &messages,
            &names,
            &runs,
        );
        let got: Vec<(&str, u64, u64, u64, Vec<&str>)> = rows
            .iter()
            .map(|r| {
                (
                    r.pattern.as_str(),
                    r.failures,
                    r.flaky,
                    r.runs,
                    r.tests.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("timed out after <DUR>", 3, 1, 2, vec!["a/t", "b/t"]),
                ("expected <N> got <N>", 1, 0, 1, vec!["c"]),
                ("expected <N>, got <N>", 1, 0, 1, vec!["c"]),
            ]
        );
        let timeouts = &rows[0];
        // The latest: run 2, where two tests failed; the last by name.
        assert_eq!(timeouts.example, "timed out after 12s");
        assert_eq!(timeouts.first_seen, time(1_000));
        assert_eq!(timeouts.last_seen, time(2_000));
        assert_eq!(
            timeouts.labels,
            BTreeMap::from([
                (
                    "arch".to_string(),
                    vec!["aarch64".to_string(), "x86_64".into()]
                ),
                ("compiler".to_string(), vec!["gcc".to_string()]),
            ])
        );
        assert!(rows[1].labels.is_empty());
    }

    fn entry(k: u64, status: TestStatus, message: Option<&str>) -> HistoryEntry {
        HistoryEntry {
            test: "s/test_x".into(),
            time: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(k),
            status,
            duration: None,
            commit: None,
            branch: None,
            labels: String::new(),
            run: format!("r{k}"),
            run_status: crate::status::RunStatus::Failed,
            batch: None,
            message: message.map(str::to_owned),
            mass_failure: None,
        }
    }

    #[test]
    fn one_tests_clusters() {
        let rows = test_clusters(&[
            entry(1, TestStatus::Failed, Some("test_x: took 3s")),
            entry(2, TestStatus::Passed, None),
            entry(3, TestStatus::Flaky, Some("test_x: took 4s")),
            entry(4, TestStatus::Failed, Some("boom at 0x1f")),
            entry(5, TestStatus::Failed, None),
            entry(
                6,
                TestStatus::Skipped(Some("no GPU".into())),
                Some("no GPU"),
            ),
        ]);
        let got: Vec<(&str, u64)> = rows
            .iter()
            .map(|r| (r.pattern.as_str(), r.failures))
            .collect();
        assert_eq!(got, [("<TEST>: took <DUR>", 2), ("boom at <HEX>", 1)]);
        assert_eq!(
            rows[0].last_seen,
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(3)
        );
    }
}
