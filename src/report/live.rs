//! The reporters fed while the run goes: terminal lines, the JUnit file
//! (rewritten once per burst of finished batches), and the history store
//! (written in the background).
//!
//! A finished batch is handed to each as it arrives and never copied: it
//! may hold a million tests. The JUnit writer takes what it needs at once
//! (a batch's tests are rendered there and then); only the rewrite waits.

use std::time::Duration;

use tokio::time::Instant;

use crate::event::Event;
use crate::history::recorder::Recorder;
use crate::report::{JunitWriter, Terminal};
use crate::runner::Reporter;

/// Rewrites closer together than this are merged: a finished batch reaches
/// the JUnit file within this time, and a thousand tiny batches don't turn
/// into a thousand full rewrites.
const JUNIT_MIN_INTERVAL: Duration = Duration::from_millis(100);

pub struct LiveReport {
    pub terminal: Terminal,
    junit: JunitWriter,
    /// Batches were added to the JUnit writer since its last rewrite.
    pending: bool,
    /// Why adding a batch to the JUnit writer failed, until shown.
    junit_error: Option<std::io::Error>,
    last_write: Option<Instant>,
    junit_error_shown: bool,
    pub history: Option<Recorder>,
}

impl LiveReport {
    pub fn new(terminal: Terminal, junit: JunitWriter) -> LiveReport {
        LiveReport {
            terminal,
            junit,
            pending: false,
            junit_error: None,
            last_write: None,
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
            if let Err(e) = self.junit.add(outcome) {
                self.junit_error.get_or_insert(e);
            }
            self.pending = true;
        }
    }

    fn flush(&mut self) -> Option<Instant> {
        self.show_history_problems();
        if !self.pending {
            return None;
        }
        if let Some(last) = self.last_write {
            let next = last + JUNIT_MIN_INTERVAL;
            if Instant::now() < next {
                return Some(next);
            }
        }
        self.flush_now()
    }

    fn flush_now(&mut self) -> Option<Instant> {
        self.show_history_problems();
        if !self.pending {
            return None;
        }
        let result = self.junit.write();
        self.pending = false;
        self.last_write = Some(Instant::now());
        if let Some(e) = self.junit_error.take().or(result.err())
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
