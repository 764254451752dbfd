//! The JUnit file as a reporter: kept current while the run goes,
//! rewritten once per burst of finished batches.
//!
//! A finished batch is handed over as it arrives and never copied: it may
//! hold a million tests. The JUnit writer takes what it needs at once (a
//! batch's tests are rendered there and then); only the rewrite waits.

use std::time::Duration;

use tokio::time::Instant;

use crate::event::{Event, Reporter};
use crate::report::JunitWriter;

/// Rewrites closer together than this are merged: a finished batch reaches
/// the JUnit file within this time, and a thousand tiny batches don't turn
/// into a thousand full rewrites.
const JUNIT_MIN_INTERVAL: Duration = Duration::from_millis(100);

/// A rewrite costs time proportional to what was recorded so far, so a
/// fixed interval would make a long run quadratic (100,000 batches: a 10 MB
/// file rewritten ten times a second). Waiting this many times the last
/// rewrite's duration keeps rewrites to a tenth of the run's time at most.
const JUNIT_COST_FACTOR: u32 = 10;

pub struct LiveJunit {
    junit: JunitWriter,
    /// Batches were added to the JUnit writer since its last rewrite.
    pending: bool,
    /// Why adding a batch to the JUnit writer failed, until shown.
    add_error: Option<std::io::Error>,
    /// How long the last rewrite took (see [`JUNIT_COST_FACTOR`]).
    last_cost: Duration,
    /// The first JUnit write error (a failed rewrite leaves the previous
    /// file whole).
    junit_error: Option<String>,
    /// Batches recorded, and of those in the file on disk.
    recorded: usize,
    on_disk: usize,
    last_write: Option<Instant>,
}

impl LiveJunit {
    pub fn new(junit: JunitWriter) -> LiveJunit {
        LiveJunit {
            junit,
            pending: false,
            add_error: None,
            last_cost: Duration::ZERO,
            junit_error: None,
            recorded: 0,
            on_disk: 0,
            last_write: None,
        }
    }

    /// Whether the JUnit file could not be written at some point, and if
    /// the last attempt failed too, what the file on disk is missing.
    pub fn problem(&self) -> Option<String> {
        let first = self.junit_error.as_ref()?;
        let path = self.junit.path().display();
        if self.on_disk == self.recorded {
            return Some(format!(
                "JUnit {path} could not be written for a while ({first}); it was rewritten since and holds all {} units",
                self.recorded
            ));
        }
        Some(format!(
            "JUnit {path} could not be written ({first}): it holds the {} units written before, not the last {}",
            self.on_disk,
            self.recorded - self.on_disk
        ))
    }
}

impl Reporter for LiveJunit {
    fn on_event(&mut self, event: &Event) {
        if let Event::Finished(outcome) = event {
            if let Err(e) = self.junit.add(outcome) {
                self.add_error.get_or_insert(e);
            }
            self.recorded += 1;
            self.pending = true;
        }
    }

    fn flush(&mut self, notes: &mut Vec<String>) -> Option<Instant> {
        if !self.pending {
            return None;
        }
        if let Some(last) = self.last_write {
            let next = last + JUNIT_MIN_INTERVAL.max(self.last_cost * JUNIT_COST_FACTOR);
            if Instant::now() < next {
                return Some(next);
            }
        }
        self.flush_now(notes)
    }

    fn flush_now(&mut self, notes: &mut Vec<String>) -> Option<Instant> {
        if !self.pending {
            return None;
        }
        let began = Instant::now();
        let result = match self.add_error.take() {
            // A batch could not be added (its suite not spooled): the file
            // would lack it, so this rewrite counts as failed.
            Some(e) => self.junit.write().and(Err(e)),
            None => self.junit.write(),
        };
        self.pending = false;
        let now = Instant::now();
        self.last_cost = now - began;
        self.last_write = Some(now);
        match result {
            // Written whole to a temp file, then renamed: the file on disk
            // is this one or, on an error, the previous one, never a part.
            Ok(()) => self.on_disk = self.recorded,
            Err(e) if self.junit_error.is_none() => {
                notes.push(format!(
                    "warden: cannot write JUnit {}: {e}; it keeps the {} units written before",
                    self.junit.path().display(),
                    self.on_disk
                ));
                self.junit_error = Some(e.to_string());
            }
            Err(_) => {}
        }
        None
    }
}
