//! The run as JSON Lines for tools (`warden run --events PATH`): one
//! object per event — the run started, a batch attempt started, a test
//! finished, a batch attempt finished, the run finished — each with the
//! schema's version and the time it was written. A bot that comments on
//! the first failure or a feed into another system reads it with
//! `tail -f`; the schema is `docs/events.schema.json`, and within a
//! version it only grows (new fields, new event types), never changes.
//!
//! Each burst of events is written when the dispatcher flushes its
//! reporters, in whole lines (a write never ends inside a line unless
//! the kernel cuts it short), so a reader never waits on buffered events
//! and a killed warden leaves whole lines behind. A test comes twice: as
//! `test_result` when its batch's output reports it (that attempt's view,
//! while the batch runs; formats read from the output as it streams), and
//! as `test_finished` when its batch ends, just before its final
//! `batch_finished`: its result is only final then (repeated names
//! numbered, reruns merged, quarantine applied).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::event::{Event, Reporter, Retry, RunResult};
use crate::history::model::Labels;
use crate::outcome::Outcome;
use crate::parsers::TestResult;
use crate::phase::Phase;
use crate::report::summary::{Counts, TestCounts};
use crate::status::{Exit, RunStatus, Status, TestStatus};
use crate::usage::UsageJson;

/// The schema's version, in every line. Raised only for a change that is
/// not additive (a field removed, renamed or given another meaning).
pub const SCHEMA_VERSION: u32 = 1;

/// Lines are written once this much is waiting, even within a burst: a
/// batch with a million tests must not be held in memory as text.
const WRITE_AT: usize = 64 * 1024;

/// What the run is, for its `run_started` line.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The run's uuid in the history; `None` when the history is off.
    pub run: Option<String>,
    /// The planned batches' names and commands, hashed (the queue's
    /// fingerprint): the same for runs of the same batches.
    pub fingerprint: String,
    pub labels: Labels,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub max_parallel: usize,
    /// Setup steps, batches, post steps, in plan order.
    pub units: Vec<(String, Phase)>,
}

/// How the run ended, for its `run_finished` line.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub status: RunStatus,
    pub exit_code: u8,
    /// From warden's start.
    pub duration: Duration,
    pub batches: Counts,
    pub tests: TestCounts,
}

/// One line: the envelope every event has, then its own fields.
#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    version: u32,
    event: &'a str,
    time: String,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize)]
struct RunStarted<'a> {
    run: Option<&'a str>,
    fingerprint: &'a str,
    labels: BTreeMap<&'a str, &'a str>,
    commit: Option<&'a str>,
    branch: Option<&'a str>,
    max_parallel: usize,
    batches: Vec<Planned<'a>>,
}

#[derive(Serialize)]
struct Planned<'a> {
    name: &'a str,
    phase: Phase,
}

#[derive(Serialize)]
struct BatchStarted<'a> {
    batch: &'a str,
    phase: Option<Phase>,
    slot: Option<u32>,
    attempt: u32,
    attempts: u32,
}

/// A `test_finished` line (a test's final result, at its batch's end) or
/// a `test_result` line (an attempt's result as it arrived, with
/// `attempt`).
#[derive(Serialize)]
struct TestFinished<'a> {
    batch: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    name: String,
    path: &'a [String],
    status: &'a str,
    duration_ms: Option<u64>,
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct BatchFinished<'a> {
    batch: &'a str,
    phase: Option<Phase>,
    /// `None`: it never started (`not-run`).
    attempt: Option<u32>,
    /// `false`: this attempt failed and the batch runs again.
    #[serde(rename = "final")]
    last: bool,
    status: Status,
    reason: &'a str,
    exit_code: Option<i32>,
    signal: Option<String>,
    started: String,
    duration_ms: u64,
    usage: Option<UsageJson>,
    log: String,
    quarantined: Option<&'a str>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct RunFinished<'a> {
    status: RunStatus,
    exit_code: u8,
    duration_ms: u64,
    batches: &'a Counts,
    tests: &'a TestCounts,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// `exit_code` and `signal`: how the main process ended, when it did.
fn exit_fields(exit: Option<Exit>) -> (Option<i32>, Option<String>) {
    match exit {
        Some(Exit::Code(c)) => (Some(c), None),
        Some(Exit::Signal(s)) => (None, Some(crate::status::signal_name(s))),
        None => (None, None),
    }
}

fn log_path(p: &Path) -> String {
    p.display().to_string()
}

/// The event stream as a reporter, writing to `W` (a file, or the
/// standard output warden was started with).
pub struct EventStream<W: Write> {
    out: W,
    /// Whole lines not written yet.
    pending: Vec<u8>,
    /// Each unit's phase, from the plan (a retry's event does not say it).
    phases: HashMap<String, Phase>,
    /// The first write error; nothing is written after it.
    error: Option<String>,
    /// Whether the error was said (as a note).
    said: bool,
    /// Where it writes, for messages.
    name: String,
}

impl<W: Write> EventStream<W> {
    /// Writes the `run_started` line at once.
    pub fn new(out: W, name: String, info: &RunInfo) -> EventStream<W> {
        let mut stream = EventStream {
            out,
            pending: Vec::new(),
            phases: info.units.iter().map(|(n, p)| (n.clone(), *p)).collect(),
            error: None,
            said: false,
            name,
        };
        stream.push(
            "run_started",
            RunStarted {
                run: info.run.as_deref(),
                fingerprint: &info.fingerprint,
                labels: info.labels.iter().collect(),
                commit: info.commit.as_deref(),
                branch: info.branch.as_deref(),
                max_parallel: info.max_parallel,
                batches: info
                    .units
                    .iter()
                    .map(|(name, phase)| Planned {
                        name,
                        phase: *phase,
                    })
                    .collect(),
            },
        );
        stream.write_pending();
        stream
    }

    /// The `run_finished` line, written at once: the last line.
    pub fn run_finished(&mut self, end: &RunEnd) {
        self.push(
            "run_finished",
            RunFinished {
                status: end.status,
                exit_code: end.exit_code,
                duration_ms: ms(end.duration),
                batches: &end.batches,
                tests: &end.tests,
            },
        );
        self.write_pending();
    }

    /// Why the stream is incomplete, if it is: a run error.
    pub fn problem(&self) -> Option<String> {
        self.error
            .as_ref()
            .map(|e| format!("events {} could not be written: {e}", self.name))
    }

    fn push<T: Serialize>(&mut self, event: &str, body: T) {
        if self.error.is_some() {
            return;
        }
        let line = Line {
            version: SCHEMA_VERSION,
            event,
            time: rfc3339(SystemTime::now()),
            body,
        };
        match serde_json::to_writer(&mut self.pending, &line) {
            Ok(()) => self.pending.push(b'\n'),
            // Unreachable: plain structs with string keys always serialize.
            Err(e) => self.error = Some(e.to_string()),
        }
        if self.pending.len() >= WRITE_AT {
            self.write_pending();
        }
    }

    /// Writes the whole lines waiting, in one write where the kernel allows.
    fn write_pending(&mut self) {
        if self.pending.is_empty() || self.error.is_some() {
            self.pending.clear();
            return;
        }
        let written = self
            .out
            .write_all(&self.pending)
            .and_then(|()| self.out.flush());
        self.pending.clear();
        if let Err(e) = written {
            self.error = Some(e.to_string());
        }
    }

    fn started(&mut self, name: &str, slot: Option<u32>, attempt: u32, attempts: u32) {
        let phase = self.phases.get(name).copied();
        self.push(
            "batch_started",
            BatchStarted {
                batch: name,
                phase,
                slot,
                attempt,
                attempts,
            },
        );
    }

    fn retrying(&mut self, r: &Retry) {
        let phase = self.phases.get(r.name.as_str()).copied();
        let (exit_code, signal) = exit_fields(r.exit);
        self.push(
            "batch_finished",
            BatchFinished {
                batch: r.name.as_str(),
                phase,
                attempt: Some(r.attempt),
                last: false,
                status: r.status,
                reason: &r.reason,
                exit_code,
                signal,
                started: rfc3339(r.started),
                duration_ms: ms(r.duration),
                usage: r.usage.as_ref().map(UsageJson::from),
                log: log_path(&r.log),
                quarantined: None,
                warnings: &[],
            },
        );
    }

    fn finished(&mut self, o: &Outcome) {
        let batch = o.name.as_str();
        for t in &o.tests {
            self.test(batch, t);
        }
        let (exit_code, signal) = exit_fields(o.exit);
        let ran = o.status != Status::NotRun;
        let attempt = u32::try_from(o.retried.len()).unwrap_or(u32::MAX);
        self.push(
            "batch_finished",
            BatchFinished {
                batch,
                phase: Some(o.phase),
                attempt: ran.then(|| attempt.saturating_add(1)),
                last: true,
                status: o.status,
                reason: &o.reason,
                exit_code,
                signal,
                started: rfc3339(o.started),
                duration_ms: ms(o.duration),
                usage: o.usage.as_ref().map(UsageJson::from),
                log: log_path(&o.log),
                quarantined: o.quarantined.as_deref(),
                warnings: &o.warnings,
            },
        );
    }

    fn test(&mut self, batch: &str, t: &TestResult) {
        self.test_line("test_finished", batch, None, t);
    }

    fn test_line(&mut self, event: &str, batch: &str, attempt: Option<u32>, t: &TestResult) {
        // A skip's reason is its message when it has no other.
        let message = match (&t.message, &t.status) {
            (Some(m), _) => Some(m.as_str()),
            (None, TestStatus::Skipped(Some(why))) => Some(why.as_str()),
            (None, _) => None,
        };
        self.push(
            event,
            TestFinished {
                batch,
                attempt,
                name: t.name(),
                path: &t.path,
                status: t.status.as_str(),
                duration_ms: t.duration.map(ms),
                message,
            },
        );
    }
}

impl<W: Write> Reporter for EventStream<W> {
    fn on_event(&mut self, event: &Event) {
        match event {
            Event::Started {
                name,
                slot,
                attempt,
                attempts,
                ..
            } => self.started(name.as_str(), *slot, *attempt, *attempts),
            Event::Retrying(r) => self.retrying(r),
            Event::TestResult {
                batch,
                attempt,
                result,
            } => self.test_line("test_result", batch.as_str(), Some(*attempt), result),
            Event::Finished(o) => self.finished(o),
            Event::Note(_) => {}
        }
    }

    fn flush(&mut self, notes: &mut Vec<String>) -> Option<tokio::time::Instant> {
        self.write_pending();
        if let (Some(e), false) = (&self.error, self.said) {
            self.said = true;
            notes.push(format!(
                "warden: cannot write events to {}: {e}; no more are written",
                self.name
            ));
        }
        None
    }

    fn finish(&mut self, _run: &RunResult) {
        self.write_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::scenario;

    fn info() -> RunInfo {
        let mut labels = Labels::default();
        labels.insert("arch".into(), "x86_64".into());
        RunInfo {
            run: None,
            fingerprint: "0123456789abcdef".into(),
            labels,
            commit: Some("abc123".into()),
            branch: None,
            max_parallel: 2,
            units: vec![("net".into(), Phase::Batch)],
        }
    }

    fn lines(bytes: &[u8]) -> Vec<serde_json::Value> {
        let text = std::str::from_utf8(bytes).expect("UTF-8");
        assert!(text.ends_with('\n'), "whole lines: {text:?}");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
            .collect()
    }

    #[test]
    fn each_event_is_one_line_with_the_envelope() {
        let mut out = Vec::new();
        {
            let mut s = EventStream::new(&mut out, "-".into(), &info());
            for o in scenario() {
                s.on_event(&Event::Finished(Box::new(o)));
            }
            s.flush(&mut Vec::new());
            s.run_finished(&RunEnd {
                status: RunStatus::Failed,
                exit_code: 1,
                duration: Duration::from_millis(1500),
                batches: Counts::default(),
                tests: TestCounts::default(),
            });
        }
        let lines = lines(&out);
        for l in &lines {
            assert_eq!(l["version"], 1);
            let time = l["time"].as_str().expect("time");
            assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");
            assert!(time.ends_with('Z'), "UTC: {time}");
        }
        assert_eq!(lines[0]["event"], "run_started");
        assert_eq!(lines[0]["labels"]["arch"], "x86_64");
        assert_eq!(lines.last().unwrap()["event"], "run_finished");
        assert_eq!(lines.last().unwrap()["duration_ms"], 1500);
        // net: 10 tests, then its batch_finished (attempt 2: one retry).
        let net: Vec<&serde_json::Value> = lines.iter().filter(|l| l["batch"] == "net").collect();
        assert_eq!(net.len(), 11);
        assert!(net[..10].iter().all(|l| l["event"] == "test_finished"));
        assert_eq!(net[1]["name"], "fail");
        assert_eq!(net[1]["status"], "failed");
        assert_eq!(net[1]["message"], "expected 1, got 2");
        assert_eq!(net[4]["message"], "no <root>", "a skip's reason");
        // Untrusted text is kept as it was (JSON escapes it).
        assert_eq!(net[7]["name"], "grp/sub\u{1}\u{1b}[31m");
        let end = net[10];
        assert_eq!(end["event"], "batch_finished");
        assert_eq!(end["attempt"], 2);
        assert_eq!(end["final"], true);
        assert_eq!(end["exit_code"], 1);
        assert_eq!(end["usage"]["peak_memory"], 1536u64 << 20);
        assert_eq!(end["usage"]["cpu_ms"], 3400);
        let skipped = lines.iter().find(|l| l["batch"] == "skipped").unwrap();
        assert_eq!(skipped["attempt"], serde_json::Value::Null);
        assert_eq!(skipped["status"], "not-run");
    }

    /// A writer that fails: said once as a note, then silence, and a
    /// run error.
    #[test]
    fn a_write_error_is_said_once_and_stops_the_stream() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut s = EventStream::new(Broken, "events.jsonl".into(), &info());
        let mut notes = Vec::new();
        s.flush(&mut notes);
        s.flush(&mut notes);
        assert_eq!(
            notes,
            ["warden: cannot write events to events.jsonl: disk full; no more are written"]
        );
        assert_eq!(
            s.problem().unwrap(),
            "events events.jsonl could not be written: disk full"
        );
    }
}
