//! The files of one run as batches of test records, placed in time.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::JunitFile;
use super::dialect::WARDEN_SUITES;
use crate::history::model::{BatchRecord, TestRecord};
use crate::history::results;
use crate::parsers::TestResult;
use crate::parsers::junit::push_test_path;
use crate::parsers::repeat::{self, Seen};
use crate::phase::Phase;
use crate::status::{RunStatus, Status, TestStatus};

/// How many results of each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub flaky: usize,
    pub skipped: usize,
}

impl Counts {
    pub fn of<'a>(tests: impl IntoIterator<Item = &'a TestRecord>) -> Counts {
        let mut counts = Counts::default();
        for t in tests {
            counts.add(&t.status);
        }
        counts
    }

    pub fn add(&mut self, status: &TestStatus) {
        match status {
            TestStatus::Passed => self.passed += 1,
            TestStatus::Failed | TestStatus::Error(_) => self.failed += 1,
            TestStatus::Flaky => self.flaky += 1,
            TestStatus::Skipped(_) => self.skipped += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.passed + self.failed + self.flaky + self.skipped
    }
}

/// `10000 results (9990 passed, 7 failed, 2 flaky, 1 skipped)`.
impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} results ({} passed, {} failed, {} flaky, {} skipped)",
            self.total(),
            self.passed,
            self.failed,
            self.flaky,
            self.skipped
        )
    }
}

/// One run to record: the batches of one or more files, placed in time.
#[derive(Debug)]
pub struct ImportedRun {
    pub files: Vec<PathBuf>,
    pub started: SystemTime,
    pub ended: SystemTime,
    pub batches: Vec<BatchRecord>,
    pub counts: Counts,
}

/// A batch being put together from suites.
struct Acc {
    name: String,
    /// The earliest of its suites' timestamps.
    started: Option<SystemTime>,
    /// The latest end of its timestamped suites.
    ended: Option<SystemTime>,
    /// Its suites' durations, added up.
    sequential: Duration,
    all_timestamped: bool,
    seen: Vec<Seen>,
}

impl ImportedRun {
    /// The files as one run. It started `at`, else at the files' earliest
    /// timestamp, else at the earliest modification time; suites without a
    /// timestamp start with the run.
    ///
    /// The batches: `batch` holds every suite when given (warden's own
    /// reports excepted), else each suite name is a batch (suites of one
    /// name, in one file or several, are one batch). Tests are named and
    /// merged as in a batch `format = "junit"`: see the module doc.
    pub fn new(files: Vec<JunitFile>, at: Option<SystemTime>, batch: Option<&str>) -> ImportedRun {
        let started = at
            .or_else(|| files.iter().filter_map(|f| f.earliest).min())
            .or_else(|| files.iter().filter_map(|f| f.modified).min())
            .unwrap_or_else(SystemTime::now);
        let sequential: Duration = files.iter().map(|f| f.duration).sum();
        let mut paths = Vec::with_capacity(files.len());
        let mut accs: Vec<Acc> = Vec::new();
        let mut index: HashMap<String, usize, foldhash::fast::RandomState> = HashMap::default();
        let mut all_timestamped = true;
        let mut group = 0;
        for file in files {
            paths.push(file.path);
            for suite in file.suites {
                group += 1;
                all_timestamped &= suite.started.is_some();
                let name = match batch {
                    Some(b) if !file.warden => b.to_owned(),
                    _ => suite.name.clone(),
                };
                let i = *index.entry(name.clone()).or_insert_with(|| {
                    accs.push(Acc {
                        name,
                        started: None,
                        ended: None,
                        sequential: Duration::ZERO,
                        all_timestamped: true,
                        seen: Vec::new(),
                    });
                    accs.len() - 1
                });
                // Just inserted or found: `i` indexes `accs`.
                let acc = &mut accs[i];
                acc.sequential += suite.duration;
                match suite.started {
                    Some(s) => {
                        acc.started = Some(acc.started.map_or(s, |a| a.min(s)));
                        let end = s + suite.duration;
                        acc.ended = Some(acc.ended.map_or(end, |e| e.max(end)));
                    }
                    None => acc.all_timestamped = false,
                }
                // One label shared by the suite's cases.
                let suite_label: Option<Arc<str>> = suite.label.as_deref().map(Arc::from);
                acc.seen.reserve(suite.cases.len());
                for case in suite.cases {
                    let label = case.file.map(Arc::from).or_else(|| suite_label.clone());
                    let mut result = case.result;
                    result.path = history_path(
                        &acc.name,
                        &suite.name,
                        file.warden,
                        (case.classname, case.name),
                    );
                    acc.seen.push(Seen {
                        result,
                        group,
                        label,
                    });
                }
            }
        }
        let mut counts = Counts::default();
        let batches: Vec<BatchRecord> = accs
            .into_iter()
            .map(|acc| {
                let tests = one_per_name(
                    repeat::assemble(acc.seen)
                        .into_iter()
                        .map(test_record)
                        .collect(),
                );
                let c = Counts::of(&tests);
                counts.passed += c.passed;
                counts.failed += c.failed;
                counts.flaky += c.flaky;
                counts.skipped += c.skipped;
                let batch_started = acc.started.unwrap_or(started);
                let duration = match (acc.all_timestamped, acc.ended) {
                    (true, Some(end)) => end.duration_since(batch_started).unwrap_or_default(),
                    _ => acc.sequential,
                };
                BatchRecord {
                    name: acc.name,
                    phase: Phase::Suite,
                    status: if c.failed > 0 {
                        Status::Failed
                    } else {
                        Status::Passed
                    },
                    reason: reason(&c),
                    started: batch_started,
                    duration,
                    log: None,
                    attempts: Vec::new(),
                    tests,
                    usage: None,
                }
            })
            .collect();
        // Suites that all say when they started say when the run ended too
        // (they may have run in parallel); otherwise one after another.
        let latest = batches.iter().map(|b| b.started + b.duration).max();
        let ended = match latest {
            Some(end) if all_timestamped && end >= started => end,
            _ => started + sequential,
        };
        ImportedRun {
            files: paths,
            started,
            ended,
            batches,
            counts,
        }
    }

    /// `passed` unless a test failed.
    pub fn status(&self) -> RunStatus {
        if self.counts.failed > 0 {
            RunStatus::Failed
        } else {
            RunStatus::Passed
        }
    }
}

/// A case's history name, as a path: `batch` + [`test_path`](crate::parsers::junit::test_path); in warden's
/// own report, a testcase that is a batch (in the `warden`, `setup`, `post`
/// suites, or whose classname is not its suite's) by its name alone.
fn history_path(
    batch: &str,
    suite: &str,
    warden: bool,
    (classname, name): (String, String),
) -> Vec<String> {
    if warden && (WARDEN_SUITES.contains(&suite) || classname != suite) {
        return vec![name];
    }
    let mut path = Vec::with_capacity(3);
    path.push(batch.to_owned());
    push_test_path(&mut path, batch, classname, name);
    path
}

/// A result as the history keeps it, as `warden run` records a test of a
/// batch ([`results::record`]).
fn test_record(t: TestResult) -> TestRecord {
    let (status, message) = results::record(&t, None);
    TestRecord {
        name: t.name(),
        status,
        duration: t.duration,
        message,
    }
}

/// The batch's records with one per name ([`results::one_per_name`]), as
/// `warden run` stores a batch's.
fn one_per_name(tests: Vec<TestRecord>) -> Vec<TestRecord> {
    let Some(kept) = results::one_per_name(&tests) else {
        return tests;
    };
    let mut all: Vec<Option<TestRecord>> = tests.into_iter().map(Some).collect();
    // `kept` holds distinct indexes of `all`: each is taken once.
    kept.into_iter().filter_map(|i| all[i].take()).collect()
}

/// `2 of 40 tests failed`, `40 tests passed (1 flaky, 2 skipped)`.
fn reason(c: &Counts) -> String {
    let total = c.total();
    let tests = if total == 1 { "test" } else { "tests" };
    if c.failed > 0 {
        return format!("{} of {total} {tests} failed", c.failed);
    }
    if total == 0 {
        return "no tests".to_owned();
    }
    let mut notes = Vec::new();
    if c.flaky > 0 {
        notes.push(format!("{} flaky", c.flaky));
    }
    if c.skipped > 0 {
        notes.push(format!("{} skipped", c.skipped));
    }
    if notes.is_empty() {
        format!("{total} {tests} passed")
    } else {
        format!("{total} {tests} passed ({})", notes.join(", "))
    }
}
