//! What the run tells its reporters, and what a reporter is. Reporters
//! consume events; they never drive execution. The dispatcher (`runner`)
//! makes every event and hands each to every reporter, in one order.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::config::BatchName;
use crate::outcome::Outcome;
use crate::parsers::TestResult;
use crate::status::{Exit, Status};
use crate::usage::Usage;
use crate::watchdog::StopCause;

#[derive(Debug, Clone)]
pub enum Event {
    /// A batch's main process was started: its attempt `attempt` (from 1)
    /// of at most `attempts`, in thread slot `slot` (`WARDEN_SLOT`; `None`
    /// for setup and post steps).
    Started {
        name: BatchName,
        at: Instant,
        slot: Option<u32>,
        attempt: u32,
        attempts: u32,
    },
    /// An attempt of a unit failed and the unit runs again: what that
    /// attempt did. (A unit's last attempt is its [`Event::Finished`]; the
    /// note saying the retry is a [`Event::Note`] of its own.)
    Retrying(Box<Retry>),
    /// A test's result as its batch's output reported it, while the batch
    /// ran: attempt `attempt`'s view, before the batch's end decides what
    /// is kept (repeats numbered, reruns merged, quarantine). Only when
    /// the supervisor reports tests (`--events`).
    TestResult {
        batch: BatchName,
        attempt: u32,
        result: Box<TestResult>,
    },
    /// A batch finished, whatever ended it.
    Finished(Box<Outcome>),
    /// A line for the terminal about the run itself (`warden: …`), e.g. why
    /// it is stopping and how each batch took it, or a reporter's own
    /// trouble (a file it cannot write, a store that is down).
    Note(String),
}

/// A failed attempt that is retried ([`Event::Retrying`]).
#[derive(Debug, Clone)]
pub struct Retry {
    pub name: BatchName,
    /// This attempt, from 1, of at most `attempts`.
    pub attempt: u32,
    pub attempts: u32,
    pub status: Status,
    pub reason: String,
    /// How its main process ended, when it did.
    pub exit: Option<Exit>,
    pub started: SystemTime,
    pub duration: Duration,
    /// Where its log is kept (`<batch>.attempt-N.log`).
    pub log: PathBuf,
    pub usage: Option<Usage>,
}

/// What the run produced: what the dispatcher returns, and what reporters
/// hear when the run is over ([`Reporter::finish`]).
pub struct RunResult {
    /// Setup steps, batches, post steps, each in plan order.
    pub outcomes: Vec<Outcome>,
    /// Why the run was stopped early, if it was.
    pub stopped: Option<StopCause>,
    /// The batches phase's wall time, from its first batch's start to its
    /// last one's end; `None` when no batch started.
    pub makespan: Option<Duration>,
    /// Lines about the run as a whole that the summary repeats (the
    /// retries not started for too many failures).
    pub notes: Vec<String>,
}

/// Something that wants to hear about the run as it happens.
///
/// A reporter's own trouble is news for the run too: lines it pushes onto
/// `notes` in [`flush`](Reporter::flush) reach every reporter, itself
/// included, as [`Event::Note`]s (the terminal prints them).
pub trait Reporter {
    fn on_event(&mut self, event: &Event);

    /// Called after a burst of events has been delivered: a place to do
    /// expensive work (rewriting a file) once per burst rather than per
    /// event. Returning a time asks to be flushed again then, even if no
    /// event comes.
    fn flush(&mut self, notes: &mut Vec<String>) -> Option<tokio::time::Instant> {
        let _ = notes;
        None
    }

    /// The last event has been delivered: do what `flush` postponed.
    fn flush_now(&mut self, notes: &mut Vec<String>) -> Option<tokio::time::Instant> {
        self.flush(notes)
    }

    /// The run is over: every unit's outcome in plan order, after the last
    /// flush.
    fn finish(&mut self, run: &RunResult) {
        let _ = run;
    }
}

/// A reporter that may be off (no history store): hears nothing then.
impl<R: Reporter> Reporter for Option<R> {
    fn on_event(&mut self, event: &Event) {
        if let Some(r) = self {
            r.on_event(event);
        }
    }

    fn flush(&mut self, notes: &mut Vec<String>) -> Option<tokio::time::Instant> {
        self.as_mut()?.flush(notes)
    }

    fn flush_now(&mut self, notes: &mut Vec<String>) -> Option<tokio::time::Instant> {
        self.as_mut()?.flush_now(notes)
    }

    fn finish(&mut self, run: &RunResult) {
        if let Some(r) = self {
            r.finish(run);
        }
    }
}
