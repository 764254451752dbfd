//! What the run tells its reporters. Reporters consume events; they never drive execution.

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
