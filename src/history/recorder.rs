//! Recording a `warden run` as it goes: each finished batch is handed to a
//! background task that writes it in its own transaction, so the run never
//! waits on the store, and a store that is down or locked costs a warning,
//! not the run.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::db::{Access, Db};
use super::location::Location;
use super::model::{
    AttemptRecord, BatchRecord, ResultStatus, RunRecord, TestRecord, short_message,
};
use crate::outcome::{Outcome, Phase};
use crate::parsers::TestStatus;
use crate::status::Status;

enum Message {
    Batch(Box<BatchRecord>),
    Finish { status: String, ended: SystemTime },
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
    pub fn record(&self, outcome: &Outcome) {
        if let Some(batch) = batch_record(outcome) {
            let _ = self.tx.send(Message::Batch(Box::new(batch)));
        }
    }

    /// Problems since the last call, for the terminal.
    pub fn take_problems(&self) -> Vec<String> {
        let mut p = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = p.all[p.shown..].to_vec();
        p.shown = p.all.len();
        fresh
    }

    /// Marks the run ended and waits for the writes, at most `within`: a
    /// store that hangs must not hold the run's exit.
    pub async fn finish(self, status: &str, within: Duration) -> Recorded {
        let _ = self.tx.send(Message::Finish {
            status: status.to_owned(),
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
                    humantime::format_duration(within)
                ))
            }
        }
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
    let opened = match Db::open(&location, Access::Write).await {
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
            match db.record_batches(id, &batches).await {
                Ok(()) => recorded.batches += batches.len(),
                Err(e) => {
                    let names: Vec<&str> = batches.iter().map(|b| b.name.as_str()).collect();
                    problem(
                        &mut recorded,
                        format!("not recorded: {}: {e}", names.join(", ")),
                    );
                }
            }
        }
        if let Some((status, ended)) = finish.take() {
            match db.finish_run(id, &status, ended).await {
                Ok(()) => recorded.finished = true,
                Err(e) => problem(&mut recorded, format!("end of run not recorded: {e}")),
            }
        }
    }
    db.close().await;
    recorded
}

/// What the store keeps of a finished unit; `None` for one that never ran.
pub fn batch_record(o: &Outcome) -> Option<BatchRecord> {
    if o.status == Status::NotRun {
        return None;
    }
    let failed_before: std::collections::HashSet<&str> = o
        .retried
        .iter()
        .flat_map(|a| a.failed_tests.iter().map(|(name, _)| name.as_str()))
        .collect();
    let mut tests: Vec<TestRecord> = o
        .tests
        .iter()
        .map(|t| {
            let name = t.name();
            let status = match &t.status {
                TestStatus::Passed if failed_before.contains(name.as_str()) => ResultStatus::Flaky,
                TestStatus::Passed => ResultStatus::Passed,
                TestStatus::Flaky => ResultStatus::Flaky,
                TestStatus::Failed | TestStatus::Error(_) => ResultStatus::Failed,
                TestStatus::Skipped(_) => ResultStatus::Skipped,
            };
            let message = match status {
                ResultStatus::Failed | ResultStatus::Flaky => t
                    .message
                    .as_deref()
                    .and_then(short_message)
                    .or_else(|| short_message(&t.output)),
                ResultStatus::Skipped => match &t.status {
                    TestStatus::Skipped(Some(why)) => short_message(why),
                    _ => None,
                },
                _ => None,
            };
            TestRecord {
                name: format!("{}/{name}", o.name),
                status,
                duration: t.duration,
                message,
            }
        })
        .collect();
    // A batch without tests is its own single test: flakiness and
    // durations are tracked for it the same way.
    if o.tests.is_empty() && o.phase == Phase::Batch {
        tests.push(TestRecord {
            name: o.name.to_string(),
            status: match o.status {
                Status::Passed => ResultStatus::Passed,
                Status::Flaky => ResultStatus::Flaky,
                _ => ResultStatus::Failed,
            },
            duration: Some(o.duration),
            message: (!o.status.is_success())
                .then(|| short_message(&o.reason))
                .flatten(),
        });
    }
    dedup_names(&mut tests);
    Some(BatchRecord {
        name: o.name.to_string(),
        phase: o.phase.label(),
        status: o.status.to_string(),
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
                status: a.status.to_string(),
                reason: a.reason.clone(),
                duration: a.duration,
            })
            .collect(),
        tests,
    })
}

/// Test output can name one test twice (a TAP stream that repeats a
/// description); the store keeps one result per test and run, the worst.
fn dedup_names(tests: &mut Vec<TestRecord>) {
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    let mut kept: Vec<TestRecord> = Vec::with_capacity(tests.len());
    for t in tests.drain(..) {
        match seen.get(&t.name) {
            Some(&i) => {
                if severity(t.status) > severity(kept[i].status) {
                    kept[i] = t;
                }
            }
            None => {
                seen.insert(t.name.clone(), kept.len());
                kept.push(t);
            }
        }
    }
    *tests = kept;
}

fn severity(s: ResultStatus) -> u8 {
    match s {
        ResultStatus::Skipped => 0,
        ResultStatus::Passed => 1,
        ResultStatus::Flaky => 2,
        ResultStatus::Failed => 3,
    }
}
