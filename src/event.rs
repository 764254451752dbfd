//! What the run tells its reporters, and what a reporter is. Reporters
//! consume events; they never drive execution.

use std::time::Instant;

use crate::config::BatchName;
use crate::outcome::Outcome;

#[derive(Debug, Clone)]
pub enum Event {
    /// A batch's main process was started.
    Started { name: BatchName, at: Instant },
    /// A batch finished, whatever ended it.
    Finished(Box<Outcome>),
    /// A line for the terminal about the run itself (`warden: …`), e.g. why
    /// it is stopping and how each batch took it.
    Note(String),
}

/// Something that wants to hear about the run as it happens.
pub trait Reporter {
    fn on_event(&mut self, event: &Event);
    /// Called after a burst of events has been delivered: a place to do
    /// expensive work (rewriting a file) once per burst rather than per
    /// event. Returning a time asks to be flushed again then, even if no
    /// event comes.
    fn flush(&mut self) -> Option<tokio::time::Instant> {
        None
    }

    /// The run is over: do what `flush` postponed.
    fn flush_now(&mut self) -> Option<tokio::time::Instant> {
        self.flush()
    }
}
