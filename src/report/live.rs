//! The reporters fed while the run goes: terminal lines and the JUnit file,
//! rewritten once per burst of finished batches.

use crate::event::Event;
use crate::outcome::Outcome;
use crate::report::{JunitWriter, Terminal};
use crate::runner::Reporter;

pub struct LiveReport {
    pub terminal: Terminal,
    junit: JunitWriter,
    pending: Vec<Outcome>,
    junit_error_shown: bool,
}

impl LiveReport {
    pub fn new(terminal: Terminal, junit: JunitWriter) -> LiveReport {
        LiveReport {
            terminal,
            junit,
            pending: Vec::new(),
            junit_error_shown: false,
        }
    }
}

impl Reporter for LiveReport {
    fn on_event(&mut self, event: &Event) {
        self.terminal.on_event(event);
        if let Event::Finished(outcome) = event {
            self.pending.push((**outcome).clone());
        }
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let result = self.junit.record_many(&self.pending);
        self.pending.clear();
        if let Err(e) = result
            && !self.junit_error_shown
        {
            self.junit_error_shown = true;
            self.terminal.println(&format!(
                "warden: cannot write JUnit {}: {e}",
                self.junit.path().display()
            ));
        }
    }
}
