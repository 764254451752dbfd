//! The reporters fed while the run goes: terminal lines, the JUnit file
//! (rewritten once per burst of finished batches), and the history store
//! (written in the background).

use std::time::Duration;

use tokio::time::Instant;

use crate::event::Event;
use crate::history::recorder::Recorder;
use crate::outcome::Outcome;
use crate::report::{JunitWriter, Terminal};
use crate::runner::Reporter;

/// Rewrites closer together than this are merged: a finished batch reaches
/// the JUnit file within this time, and a thousand tiny batches don't turn
/// into a thousand full rewrites.
const JUNIT_MIN_INTERVAL: Duration = Duration::from_millis(100);

/// A rewrite costs time proportional to what was recorded so far, so a
/// fixed interval would make a long run quadratic (100,000 batches: a 10 MB
/// file rewritten ten times a second). Waiting this many times the last
/// rewrite's duration keeps rewrites to a tenth of the run's time at most.
const JUNIT_COST_FACTOR: u32 = 10;

pub struct LiveReport {
    pub terminal: Terminal,
    junit: JunitWriter,
    pending: Vec<Outcome>,
    last_write: Option<Instant>,
    /// How long the last rewrite took (see [`JUNIT_COST_FACTOR`]).
    last_cost: Duration,
    junit_error_shown: bool,
    pub history: Option<Recorder>,
}

impl LiveReport {
    pub fn new(terminal: Terminal, junit: JunitWriter) -> LiveReport {
        LiveReport {
            terminal,
            junit,
            pending: Vec::new(),
            last_write: None,
            last_cost: Duration::ZERO,
            junit_error_shown: false,
            history: None,
        }
    }
}

impl LiveReport {
    fn show_history_problems(&mut self) {
        let Some(h) = &self.history else { return };
        for p in h.take_problems() {
            self.terminal.println(&format!("warden: history: {p}"));
        }
    }
}

impl Reporter for LiveReport {
    fn on_event(&mut self, event: &Event) {
        self.terminal.on_event(event);
        if let Event::Finished(outcome) = event {
            if let Some(h) = &self.history {
                h.record(outcome);
            }
            self.pending.push((**outcome).clone());
        }
    }

    fn flush(&mut self) -> Option<Instant> {
        self.show_history_problems();
        if self.pending.is_empty() {
            return None;
        }
        if let Some(last) = self.last_write {
            let next = last + JUNIT_MIN_INTERVAL.max(self.last_cost * JUNIT_COST_FACTOR);
            if Instant::now() < next {
                return Some(next);
            }
        }
        self.flush_now()
    }

    fn flush_now(&mut self) -> Option<Instant> {
        self.show_history_problems();
        if self.pending.is_empty() {
            return None;
        }
        let began = Instant::now();
        let result = self.junit.record_many(&self.pending);
        self.pending.clear();
        let now = Instant::now();
        self.last_cost = now - began;
        self.last_write = Some(now);
        if let Err(e) = result
            && !self.junit_error_shown
        {
            self.junit_error_shown = true;
            self.terminal.println(&format!(
                "warden: cannot write JUnit {}: {e}",
                self.junit.path().display()
            ));
        }
        None
    }
}
