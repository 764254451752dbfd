//! Recording a `warden run` as it goes: the [`Recorder`] is one of the
//! run's reporters (it hears every finished unit from the dispatcher, as
//! the terminal and the JUnit file do); each finished batch is handed to a
//! background task that writes it in its own transaction, so the run never
//! waits on the store, and a store that is down or locked costs a warning,
//! not the run.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::db::{Access, BatchRows, Db};
use super::location::Location;
use super::model::{
    AttemptRecord, BatchRecord, RunRecord, TestRecord, duration_millis, short_message,
};
use super::results::{Results, one_per_name, record};
use crate::event::{Event, Reporter};
use crate::outcome::Outcome;
use crate::phase::Phase;
use crate::status::{RunStatus, Status, TestStatus};

enum Message {
    Batch(Box<Batch>),
    Finish {
        status: RunStatus,
        ended: SystemTime,
    },
}

/// What became of the recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub location: Location,
    pub run: String,
    pub batches: usize,
    /// Why some or all of the run is missing from the store.
    pub problems: Vec<String>,
    /// Whether the run's end was written (else it shows as incomplete).
    pub finished: bool,
}

pub struct Recorder {
    tx: mpsc::UnboundedSender<Message>,
    task: JoinHandle<Recorded>,
    problems: Arc<Mutex<Problems>>,
    location: Location,
    run: String,
}

/// Shared with the writer task, so problems reach the terminal while the
/// run goes and survive a writer that has to be abandoned.
#[derive(Default)]
struct Problems {
    all: Vec<String>,
    shown: usize,
}

impl Recorder {
    /// Opens the store in the background and records `run` as started.
    /// Must be called within the tokio runtime.
    pub fn start(location: Location, run: RunRecord) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        let problems = Arc::new(Mutex::new(Problems::default()));
        let uuid = run.uuid.clone();
        let task = tokio::spawn(write_all(location.clone(), run, rx, problems.clone()));
        Recorder {
            tx,
            task,
            problems,
            location,
            run: uuid,
        }
    }

    /// Queues a finished unit for writing; never waits.
    fn record(&self, outcome: &Outcome) {
        if let Some(batch) = Batch::new(outcome) {
            let _ = self.tx.send(Message::Batch(Box::new(batch)));
        }
    }

    /// Problems since the last call, for the terminal.
    fn take_problems(&self) -> Vec<String> {
        let mut p = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = p.all[p.shown..].to_vec();
        p.shown = p.all.len();
        fresh
    }

    /// Marks the run ended and waits for the writes, at most `within`: a
    /// store that hangs must not hold the run's exit.
    pub async fn finish(self, status: RunStatus, within: Duration) -> Recorded {
        let _ = self.tx.send(Message::Finish {
            status,
            ended: SystemTime::now(),
        });
        drop(self.tx);
        let abort = self.task.abort_handle();
        let lost = |why: String| {
            let mut problems = self
                .problems
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .all
                .clone();
            problems.push(why);
            Recorded {
                location: self.location.clone(),
                run: self.run.clone(),
                batches: 0,
                problems,
                finished: false,
            }
        };
        match tokio::time::timeout(within, self.task).await {
            Ok(Ok(recorded)) => recorded,
            Ok(Err(e)) => lost(format!("history writer failed: {e}")),
            Err(_) => {
                abort.abort();
                lost(format!(
                    "the store did not answer within {}; the run may be recorded only in part",
                    crate::duration::exact(within)
                ))
            }
        }
    }
}

/// The history as a reporter: every finished unit is queued for the
/// writer; the store's problems are said as they come up (the terminal
/// shows them), and again in the summary.
impl Reporter for Recorder {
    fn on_event(&mut self, event: &Event) {
        if let Event::Finished(outcome) = event {
            self.record(outcome);
        }
    }

    fn flush(&mut self, notes: &mut Vec<String>) -> Option<tokio::time::Instant> {
        notes.extend(
            self.take_problems()
                .into_iter()
                .map(|p| format!("warden: history: {p}")),
        );
        None
    }
}

async fn write_all(
    location: Location,
    run: RunRecord,
    mut rx: mpsc::UnboundedReceiver<Message>,
    problems: Arc<Mutex<Problems>>,
) -> Recorded {
    let mut recorded = Recorded {
        location: location.clone(),
        run: run.uuid.clone(),
        batches: 0,
        problems: Vec::new(),
        finished: false,
    };
    let problem = |recorded: &mut Recorded, p: String| {
        problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .all
            .push(p.clone());
        recorded.problems.push(p);
    };
    // Each name is looked up once (batch names prefix them): no id cache.
    let opened = match Db::open(&location, Access::Write)
        .await
        .map(Db::without_id_cache)
    {
        Ok(db) => match db.begin_run(&run).await {
            Ok(id) => Some((db, id)),
            Err(e) => {
                problem(&mut recorded, e.to_string());
                None
            }
        },
        Err(e) => {
            problem(&mut recorded, e.to_string());
            None
        }
    };
    let Some((db, id)) = opened else {
        // Drain, so senders never notice.
        while rx.recv().await.is_some() {}
        return recorded;
    };
    let mut finish = None;
    while let Some(message) = rx.recv().await {
        // Batches that finished while the last write ran go in together:
        // still whole batches per transaction, far fewer commits when a
        // thousand short batches finish at once.
        let mut batches = Vec::new();
        let mut next = Some(message);
        while let Some(m) = next {
            match m {
                Message::Batch(b) => batches.push(*b),
                Message::Finish { status, ended } => finish = Some((status, ended)),
            }
            next = rx.try_recv().ok();
        }
        if !batches.is_empty() {
            let rows: Vec<BatchRows<'_>> = batches.iter().map(Batch::rows).collect();
            let mut written = db.record_batch_rows(id, &rows).await;
            if written.as_ref().is_err_and(is_missing_test) {
                // A prune removed a test name between its look-up and
                // the results' insert (history::prune): the transaction
                // wrote nothing; once more re-creates the name.
                written = db.record_batch_rows(id, &rows).await;
            }
            drop(rows);
            match written {
                Ok(()) => recorded.batches += batches.len(),
                Err(e) => {
                    let names: Vec<&str> = batches.iter().map(|b| b.record.name.as_str()).collect();
                    problem(
                        &mut recorded,
                        format!("not recorded: {}: {e}", names.join(", ")),
                    );
                }
            }
        }
        if let Some((status, ended)) = finish.take() {
            match db.finish_run(id, status, ended).await {
                Ok(()) => recorded.finished = true,
                Err(e) => problem(&mut recorded, format!("end of run not recorded: {e}")),
            }
        }
    }
    db.close().await;
    recorded
}

/// A test row gone under the writer: a result naming it violates the
/// foreign key, or its look-up found it neither new nor existing
/// (`Db::result_ids`' `RowNotFound`).
fn is_missing_test(e: &crate::history::HistoryError) -> bool {
    use crate::history::HistoryError::Sql;
    match e {
        Sql(sqlx::Error::Database(d)) => d.is_foreign_key_violation(),
        Sql(sqlx::Error::RowNotFound) => true,
        _ => false,
    }
}

/// What the store keeps of a finished unit; `None` for one that never ran.
pub fn batch_record(o: &Outcome) -> Option<BatchRecord> {
    let Batch {
        mut record,
        results,
    } = Batch::new(o)?;
    record.tests = (0..results.len())
        .map(|i| TestRecord {
            name: results.name(i).to_owned(),
            status: results.status(i),
            duration: results.duration(i),
            message: results.message(i).map(str::to_owned),
        })
        .collect();
    Some(record)
}

/// A finished unit as queued for the writer: its record (without tests)
/// and its results, compact: a batch of a million tests must not cost a
/// `TestRecord` (~100 bytes with its name) per test on top of its outcome.
struct Batch {
    record: BatchRecord,
    results: ResultTable,
}

impl Batch {
    /// `None` for a unit that never ran.
    fn new(o: &Outcome) -> Option<Batch> {
        if o.status == Status::NotRun {
            return None;
        }
        // Tests that failed in an earlier attempt, with that attempt's
        // message: a flaky result keeps what its failure said.
        let mut failed_before: std::collections::HashMap<&str, &str> = Default::default();
        for (name, message) in o.retried.iter().flat_map(|a| a.failed_tests.iter()) {
            failed_before
                .entry(name.as_str())
                .or_insert(message.as_str());
        }
        let mut results = ResultTable::default();
        // Every name's bytes, exactly: a string grown by doubling holds
        // up to twice them (a million names: ~17 MB, not 20 or more).
        let name_bytes = o
            .tests
            .iter()
            .map(|t| o.name.as_str().len() + t.path.iter().map(|p| p.len() + 1).sum::<usize>())
            .sum();
        results.reserve(o.tests.len(), name_bytes);
        let mut name = String::new();
        for t in &o.tests {
            // `batch/test/subtest`, built in place: no String per test.
            name.clear();
            name.push_str(o.name.as_str());
            for part in &t.path {
                name.push('/');
                name.push_str(part);
            }
            let test = name.get(o.name.as_str().len() + 1..).unwrap_or_default();
            let (status, message) = record(t, failed_before.get(test).copied());
            results.push(&name, &status, t.duration, message);
        }
        // A batch without tests is its own single test: flakiness and
        // durations are tracked for it the same way.
        if o.tests.is_empty() && o.phase == Phase::Batch {
            results.push(
                o.name.as_str(),
                &match o.status {
                    Status::Passed => TestStatus::Passed,
                    Status::Flaky => TestStatus::Flaky,
                    _ => TestStatus::Failed,
                },
                Some(o.duration),
                match o.status {
                    // Flaky: what its failed attempt said.
                    Status::Flaky => o.retried.first().and_then(|a| short_message(&a.reason)),
                    s if !s.is_success() => short_message(&o.reason),
                    _ => None,
                },
            );
        }
        results.dedup();
        let record = BatchRecord {
            name: o.name.to_string(),
            phase: o.phase,
            status: o.status,
            reason: o.reason.clone(),
            started: o.started,
            duration: o.duration,
            // Absolute (the artifacts directory may have been given relative
            // to the working directory), and only if it is text: the store
            // keeps paths as text.
            log: std::path::absolute(&o.log)
                .ok()
                .and_then(|p| p.to_str().map(str::to_owned)),
            attempts: o
                .retried
                .iter()
                .map(|a| AttemptRecord {
                    status: a.status,
                    reason: a.reason.clone(),
                    duration: a.duration,
                })
                .collect(),
            tests: Vec::new(),
            usage: o.usage.clone(),
        };
        Some(Batch { record, results })
    }

    fn rows(&self) -> BatchRows<'_> {
        BatchRows {
            batch: &self.record,
            results: &self.results,
        }
    }
}

/// Results column by column, the names back to back in one string: about
/// 13 bytes a result plus its name's, and a few allocations in all.
#[derive(Debug, Default)]
struct ResultTable {
    names: String,
    /// Where each name ends in `names`.
    ends: Vec<usize>,
    /// Each result's stored code ([`TestStatus::code`]): a byte, not the
    /// status with room for a payload the store does not keep.
    codes: Vec<u8>,
    /// Milliseconds, as stored; -1 for none.
    millis: Vec<i64>,
    /// The few results that have a message: (index, message), by index.
    messages: Vec<(usize, String)>,
}

impl ResultTable {
    /// Room for `results` results whose names take `name_bytes` in all.
    fn reserve(&mut self, results: usize, name_bytes: usize) {
        self.ends.reserve_exact(results);
        self.codes.reserve_exact(results);
        self.millis.reserve_exact(results);
        self.names.reserve_exact(name_bytes);
    }

    fn push(
        &mut self,
        name: &str,
        status: &TestStatus,
        duration: Option<Duration>,
        message: Option<String>,
    ) {
        if let Some(m) = message {
            self.messages.push((self.ends.len(), m));
        }
        self.names.push_str(name);
        self.ends.push(self.names.len());
        self.codes.push(status.code());
        self.millis.push(duration.map_or(-1, duration_millis));
    }

    /// One result per name ([`one_per_name`]): the store keeps one per
    /// test and run.
    fn dedup(&mut self) {
        let Some(kept) = one_per_name(self) else {
            return;
        };
        let mut table = ResultTable::default();
        for j in kept {
            table.push(
                self.name(j),
                &self.status(j),
                self.duration(j),
                self.message(j).map(str::to_owned),
            );
        }
        *self = table;
    }
}

impl Results for ResultTable {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn name(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        // Ends are where whole names were pushed: char boundaries.
        self.names.get(start..self.ends[i]).unwrap_or_default()
    }

    fn status(&self, i: usize) -> TestStatus {
        // Every code was written by `TestStatus::code`: one `from_code` reads.
        TestStatus::from_code(self.codes[i].into()).unwrap_or(TestStatus::Failed)
    }

    fn duration(&self, i: usize) -> Option<Duration> {
        u64::try_from(self.millis[i])
            .ok()
            .map(Duration::from_millis)
    }

    fn message(&self, i: usize) -> Option<&str> {
        self.messages
            .binary_search_by_key(&i, |(at, _)| *at)
            .ok()
            .map(|k| self.messages[k].1.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsers::TestResult;
    use crate::report::test_support::outcome;

    fn test(name: &str, status: TestStatus) -> TestResult {
        TestResult {
            path: name.split('/').map(str::to_owned).collect(),
            status,
            duration: Some(Duration::from_millis(3)),
            output: String::new(),
            message: Some(format!("{name} says")),
        }
    }

    #[test]
    fn one_result_per_name_the_worst_where_it_first_appeared() {
        let mut o = outcome("net", Status::Failed, "1 test failed");
        o.tests = vec![
            test("a", TestStatus::Passed),
            test("b/c", TestStatus::Passed),
            test("a", TestStatus::Failed),
            test("d", TestStatus::Skipped(None)),
            // The same name from another path: `b/c` again.
            TestResult {
                path: vec!["b/c".into()],
                ..test("x", TestStatus::Skipped(None))
            },
            test("a", TestStatus::Passed),
        ];
        let b = batch_record(&o).unwrap();
        let got: Vec<(&str, TestStatus, Option<&str>)> = b
            .tests
            .iter()
            .map(|t| (t.name.as_str(), t.status.clone(), t.message.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("net/a", TestStatus::Failed, Some("a says")),
                ("net/b/c", TestStatus::Passed, None),
                ("net/d", TestStatus::Skipped(None), None),
            ]
        );
        assert_eq!(b.tests[0].duration, Some(Duration::from_millis(3)));
    }

    #[test]
    fn a_batch_without_tests_is_its_own_test() {
        let b = batch_record(&outcome("vm", Status::TimedOut, "timed out after 5m")).unwrap();
        assert_eq!(b.tests.len(), 1);
        assert_eq!(b.tests[0].name, "vm");
        assert_eq!(b.tests[0].status, TestStatus::Failed);
        assert_eq!(b.tests[0].message.as_deref(), Some("timed out after 5m"));
        assert!(batch_record(&outcome("x", Status::NotRun, "no")).is_none());
    }

    #[test]
    fn what_the_batch_used_goes_with_it() {
        let mut o = outcome("vm", Status::Passed, "exit code 0");
        assert_eq!(batch_record(&o).unwrap().usage, None);
        o.usage = Some(crate::usage::Usage {
            peak_memory: Some(4 << 30),
            oom_kills: 1,
            ..Default::default()
        });
        assert_eq!(batch_record(&o).unwrap().usage, o.usage);
    }
}
