//! The run's timeline, `<artifacts>/trace.json`, in the trace-event JSON
//! format that Perfetto's UI and `chrome://tracing` load: where the job's
//! time went, slot by slot.
//!
//! One track (a "thread") per slot (`WARDEN_SLOT`), and one for the setup
//! and post steps, which hold no slot; a complete event (`"ph": "X"`) per
//! attempt of a unit, with its status, reason and attempt; inside it one
//! per test that has a duration. The formats give tests' durations, not
//! their start times, so a batch's tests are laid out one after another
//! from the start of its last attempt, in the order they finished, each
//! cut at the batch's end (tests that ran in parallel, as cargo test's do,
//! show end to end). Times are microseconds from the run's start.
//!
//! Slices go to an unlinked spool file as units finish (a run of a million
//! tests is not held in memory); the file is written once, atomically, at
//! the end of the run — also a stopped one (deadline, SIGINT, SIGTERM).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::atomic_write::write_atomically;
use crate::config::BatchName;
use crate::event::{Event, Reporter, RunResult};
use crate::outcome::Outcome;
use crate::status::Status;

/// The one process: warden.
const PID: u32 = 1;

/// The track of setup and post steps (and of a unit whose slot is not
/// known: one that never started its program); slot N is track N + 1.
const STEPS_TID: u64 = 0;

#[derive(Serialize)]
struct Slice<'a, A: Serialize> {
    name: &'a str,
    cat: &'a str,
    ph: &'a str,
    ts: u64,
    dur: u64,
    pid: u32,
    tid: u64,
    args: A,
}

#[derive(Serialize)]
struct AttemptArgs<'a> {
    status: Status,
    reason: &'a str,
    attempt: u32,
}

#[derive(Serialize)]
struct TestArgs<'a> {
    status: &'a str,
    batch: &'a str,
}

#[derive(Serialize)]
struct Metadata<'a, A: Serialize> {
    name: &'a str,
    ph: &'a str,
    pid: u32,
    tid: u64,
    args: A,
}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct SortIndex {
    sort_index: u64,
}

/// The timeline as a reporter.
pub struct Trace {
    path: PathBuf,
    /// The run's start: time 0.
    origin: SystemTime,
    /// The slices so far, each a JSON object followed by `,\n`.
    spool: Option<BufWriter<File>>,
    /// The tracks used.
    tracks: BTreeSet<u64>,
    /// The slot of each running unit, from its start.
    slots: HashMap<BatchName, Option<u32>>,
    /// The first problem: the spool or the file could not be written.
    error: Option<String>,
}

impl Trace {
    /// A timeline whose time 0 is `origin` (warden's start), written to
    /// `path` at the end. An earlier run's file there is removed now: a
    /// killed run must not leave that one looking like its own.
    pub fn new(path: PathBuf, origin: SystemTime) -> Trace {
        let _ = std::fs::remove_file(&path);
        let (spool, error) = match tempfile::tempfile() {
            Ok(f) => (Some(BufWriter::new(f)), None),
            Err(e) => (None, Some(format!("cannot make its spool file: {e}"))),
        };
        Trace {
            path,
            origin,
            spool,
            tracks: BTreeSet::new(),
            slots: HashMap::new(),
            error,
        }
    }

    /// Why the file is missing or incomplete, if it is: a run error.
    pub fn problem(&self) -> Option<String> {
        self.error
            .as_ref()
            .map(|e| format!("trace {} could not be written: {e}", self.path.display()))
    }

    /// Microseconds from the run's start.
    fn micros(&self, t: SystemTime) -> u64 {
        let d = t.duration_since(self.origin).unwrap_or(Duration::ZERO);
        u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
    }

    fn tid(&mut self, name: &BatchName, keep: bool) -> u64 {
        let slot = if keep {
            self.slots.get(name).copied().flatten()
        } else {
            self.slots.remove(name).flatten()
        };
        let tid = slot.map_or(STEPS_TID, |s| u64::from(s) + 1);
        self.tracks.insert(tid);
        tid
    }

    fn spool<T: Serialize>(&mut self, value: &T) {
        let Some(w) = &mut self.spool else { return };
        let written = serde_json::to_writer(&mut *w, value)
            .map_err(io::Error::from)
            .and_then(|()| w.write_all(b",\n"));
        if let Err(e) = written {
            self.error.get_or_insert(e.to_string());
            self.spool = None;
        }
    }

    fn attempt(&mut self, name: &BatchName, tid: u64, span: (u64, u64), args: AttemptArgs<'_>) {
        self.spool(&Slice {
            name: name.as_str(),
            cat: "batch",
            ph: "X",
            ts: span.0,
            dur: span.1,
            pid: PID,
            tid,
            args,
        });
    }

    fn finished(&mut self, o: &Outcome) {
        if o.status == Status::NotRun {
            self.slots.remove(&o.name);
            return;
        }
        let tid = self.tid(&o.name, false);
        let ts = self.micros(o.started);
        let dur = u64::try_from(o.duration.as_micros()).unwrap_or(u64::MAX);
        let attempt = u32::try_from(o.retried.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let args = AttemptArgs {
            status: o.status,
            reason: &o.reason,
            attempt,
        };
        self.attempt(&o.name, tid, (ts, dur), args);
        // Its tests one after another from its start, inside it.
        let end = ts.saturating_add(dur);
        let mut at = ts;
        for t in &o.tests {
            let Some(d) = t.duration else { continue };
            let d = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            let d = d.min(end - at);
            self.spool(&Slice {
                name: &t.name(),
                cat: "test",
                ph: "X",
                ts: at,
                dur: d,
                pid: PID,
                tid,
                args: TestArgs {
                    status: t.status.as_str(),
                    batch: o.name.as_str(),
                },
            });
            at += d;
        }
    }

    /// The whole file: the metadata (process and track names), then the
    /// slices spooled.
    fn write(&mut self) -> io::Result<()> {
        let mut spool = match self.spool.take() {
            Some(w) => Some(w.into_inner().map_err(io::IntoInnerError::into_error)?),
            None => None,
        };
        let mut meta: Vec<Vec<u8>> = Vec::new();
        meta.push(serde_json::to_vec(&Metadata {
            name: "process_name",
            ph: "M",
            pid: PID,
            tid: STEPS_TID,
            args: Named { name: "warden" },
        })?);
        for &tid in &self.tracks {
            let name = match tid {
                STEPS_TID => "setup and post steps".to_owned(),
                n => format!("slot {}", n - 1),
            };
            meta.push(serde_json::to_vec(&Metadata {
                name: "thread_name",
                ph: "M",
                pid: PID,
                tid,
                args: Named { name: &name },
            })?);
            meta.push(serde_json::to_vec(&Metadata {
                name: "thread_sort_index",
                ph: "M",
                pid: PID,
                tid,
                args: SortIndex { sort_index: tid },
            })?);
        }
        write_atomically(&self.path, |w| {
            w.write_all(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")?;
            for m in &meta {
                w.write_all(m)?;
                w.write_all(b",\n")?;
            }
            if let Some(f) = &mut spool {
                f.rewind()?;
                io::copy(f, w)?;
            }
            // The last element is not followed by a comma: a closing
            // metadata event, so the spool's trailing `,` is always fine.
            w.write_all(
                br#"{"name":"process_sort_index","ph":"M","pid":1,"tid":0,"args":{"sort_index":0}}"#,
            )?;
            w.write_all(b"\n]}\n")
        })
    }
}

impl Reporter for Trace {
    fn on_event(&mut self, event: &Event) {
        match event {
            Event::Started { name, slot, .. } => {
                self.slots.insert(name.clone(), *slot);
            }
            Event::Retrying(r) => {
                let tid = self.tid(&r.name, true);
                let ts = self.micros(r.started);
                let dur = u64::try_from(r.duration.as_micros()).unwrap_or(u64::MAX);
                let args = AttemptArgs {
                    status: r.status,
                    reason: &r.reason,
                    attempt: r.attempt,
                };
                self.attempt(&r.name, tid, (ts, dur), args);
            }
            Event::Finished(o) => self.finished(o),
            // Tests are laid out from the batch's final results.
            Event::TestResult { .. } | Event::Note(_) => {}
        }
    }

    fn finish(&mut self, _run: &RunResult) {
        if let Err(e) = self.write() {
            self.error.get_or_insert(e.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::scenario;

    #[test]
    fn slices_nest_in_their_attempt_on_their_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.json");
        let outcomes = scenario();
        let origin = outcomes[0].started - Duration::from_secs(1);
        let mut trace = Trace::new(path.clone(), origin);
        for (i, o) in outcomes.iter().enumerate() {
            trace.on_event(&Event::Started {
                name: o.name.clone(),
                at: std::time::Instant::now(),
                slot: (o.phase == crate::phase::Phase::Batch).then_some(i as u32 % 2),
                attempt: 1,
                attempts: 1,
            });
            trace.on_event(&Event::Finished(Box::new(o.clone())));
        }
        trace.finish(&RunResult {
            outcomes: Vec::new(),
            stopped: None,
            makespan: None,
            notes: Vec::new(),
        });
        assert_eq!(trace.problem(), None);
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let events = doc["traceEvents"].as_array().unwrap();
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["setup and post steps", "slot 0", "slot 1"]);
        let net = events
            .iter()
            .find(|e| e["name"] == "net" && e["cat"] == "batch")
            .unwrap();
        assert_eq!(net["ts"], 1_000_000);
        assert_eq!(net["dur"], 1_234_000);
        assert_eq!(net["args"]["attempt"], 2);
        let tests: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["cat"] == "test" && e["args"]["batch"] == "net")
            .collect();
        assert_eq!(tests.len(), 10);
        assert_eq!(tests[0]["ts"], 1_000_000);
        assert_eq!(tests[1]["ts"], 1_007_000, "one after another: 7 ms each");
        assert!(tests.iter().all(|t| t["tid"] == net["tid"]));
        // Not-run units have no slice.
        assert!(!events.iter().any(|e| e["name"] == "skipped"));
    }
}
