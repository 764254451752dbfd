//! What the run's workers tell the dispatcher (`runner`): a supervisor that
//! its batch's program started or how it took a stop, the retries that an
//! attempt failed and another follows, the dispatcher's own scheduling
//! task that a unit finished or the run is stopping.
//!
//! Workers never talk to the outside world: they send these and return
//! outcomes. Only the dispatcher turns a message into an
//! [`Event`](crate::event::Event), in the order the messages came, and
//! hands it to every reporter.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::config::BatchName;
use crate::event::Retry;
use crate::outcome::Outcome;
use crate::parsers::TestResult;
use crate::watchdog::Stop;

#[derive(Debug)]
pub enum Message {
    /// A unit's main program was started (its spawn began at `at`): its
    /// attempt `attempt` of at most `attempts`, in thread slot `slot`
    /// (`None`: a setup or post step).
    Started {
        name: BatchName,
        at: Instant,
        slot: Option<u32>,
        attempt: u32,
        attempts: u32,
    },
    /// A stop request ended a running unit; `how` says how it was
    /// terminated, in words.
    Terminated { name: BatchName, how: String },
    /// An attempt of a unit failed (`retry`: what it did) and it may run
    /// again after `backoff`: the dispatcher answers on `answer` whether it
    /// does (no more retries once too many tests failed in the run, `[run]
    /// retry-max-failures`). `failures`: the attempt's failed tests, or 1
    /// for a unit without tests. `alone`: the OOM killer killed it, so it
    /// is retried once the other running batches have ended.
    Retrying {
        retry: Box<Retry>,
        backoff: Duration,
        failures: u64,
        alone: bool,
        answer: oneshot::Sender<bool>,
    },
    /// A test's result, as the batch's output reported it while the batch
    /// ran (attempt `attempt`; only when a reporter asked for them,
    /// `Supervisor::reporting_tests`). Sent by the capture thread as the
    /// parser gives each; its output is left out.
    Test {
        name: BatchName,
        attempt: u32,
        result: Box<TestResult>,
    },
    /// A unit is done, whatever ended it, or it was never started.
    Finished(Box<Outcome>),
    /// The run is stopping (`stop`) with `running` batches still running.
    Stopping { stop: Stop, running: usize },
}

/// The dispatcher's inbox, as a worker holds it.
#[derive(Debug, Clone)]
pub struct Sender(mpsc::UnboundedSender<Message>);

/// The dispatcher's end of the inbox.
pub type Receiver = mpsc::UnboundedReceiver<Message>;

/// A new inbox. Unbounded: a worker never waits to be heard. Messages
/// are a handful per unit, and one per test when tests are reported as
/// they finish.
pub fn channel() -> (Sender, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Sender(tx), rx)
}

impl Sender {
    /// Tells the dispatcher; never waits. The dispatcher outlives every
    /// worker, so a message can only be lost when nobody is listening.
    pub fn send(&self, message: Message) {
        let _ = self.0.send(message);
    }
}
