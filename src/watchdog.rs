//! The run deadline and warden's own signals, as one "stop" state that
//! every part of the run watches.
//!
//! CI systems hard-kill a job at their time limit, leaving no results. The
//! watchdog fires at `deadline − reserve`, so that terminating the batches,
//! the post steps and the reports fit in the reserve. SIGINT, SIGTERM and
//! SIGHUP take the same path; a second one escalates to killing everything
//! at once.

use std::fmt;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::status::signal_name;

/// Why the run is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    Deadline {
        deadline: Duration,
        reserve: Duration,
    },
    /// warden received this signal.
    Signal(i32),
    /// Queue mode, one batch only: this machine could not renew the
    /// batch's lease in time, so another machine may take it.
    Lease,
    /// `--max-fail` / `[run] max-fail`: `failed` batches failed, the
    /// limit was `limit` (fail_fast.rs). Only a stop of the running
    /// batches with `terminate`; otherwise just why no new batch starts.
    MaxFail {
        limit: u64,
        failed: u64,
        terminate: bool,
    },
}

impl fmt::Display for StopCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopCause::Deadline { deadline, reserve } => write!(
                f,
                "the run did not finish before its {} deadline (reserve {})",
                crate::duration::exact(*deadline),
                crate::duration::exact(*reserve)
            ),
            StopCause::Signal(sig) => write!(f, "warden got {}", signal_name(*sig)),
            StopCause::Lease => f.write_str("its lease in the queue could not be renewed in time"),
            StopCause::MaxFail { limit, failed, .. } => write!(
                f,
                "max-fail {limit} reached ({} {} failed)",
                failed,
                if *failed == 1 { "batch" } else { "batches" }
            ),
        }
    }
}

/// The run's stop state; it only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Running,
    /// Start nothing new; terminate running batches (SIGTERM, grace, SIGKILL)
    /// with their grace clipped to `grace_cap`; run post steps.
    Stopping {
        cause: StopCause,
        grace_cap: Option<Duration>,
    },
    /// Asked twice: SIGKILL everything now, skip post steps, write reports.
    Killing {
        cause: StopCause,
    },
}

impl Stop {
    pub fn cause(self) -> Option<StopCause> {
        match self {
            Stop::Running => None,
            Stop::Stopping { cause, .. } | Stop::Killing { cause } => Some(cause),
        }
    }
}

/// The deadline as configured, and where it falls.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub deadline: Duration,
    pub reserve: Duration,
    /// warden's start plus the deadline.
    pub at: Instant,
}

impl Deadline {
    pub fn new(started: Instant, deadline: Duration, reserve: Duration) -> Deadline {
        Deadline {
            deadline,
            reserve,
            at: started + deadline,
        }
    }

    /// When the watchdog fires.
    pub fn fires_at(&self) -> Instant {
        self.at.checked_sub(self.reserve).unwrap_or(self.at)
    }
}

/// Terminations get this share of the time left before the deadline; post
/// steps and reports get the rest.
const TERMINATION_SHARE: u32 = 3;

/// Starts watching the clock and the signals. The returned receiver sees
/// every change of the stop state.
pub fn start(deadline: Option<Deadline>) -> std::io::Result<watch::Receiver<Stop>> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = watch::channel(Stop::Running);
    tokio::spawn(async move {
        let grace_cap = || {
            deadline.map(|d| {
                let share = d.at.saturating_duration_since(Instant::now()) / TERMINATION_SHARE;
                // Whole milliseconds: it is shown to people.
                Duration::from_millis(share.as_millis() as u64)
            })
        };
        loop {
            let sig = tokio::select! {
                Some(d) = fire_at(deadline), if matches!(*tx.borrow(), Stop::Running) => {
                    let cause = StopCause::Deadline { deadline: d.deadline, reserve: d.reserve };
                    tx.send_replace(Stop::Stopping { cause, grace_cap: grace_cap() });
                    continue;
                }
                Some(()) = int.recv() => libc::SIGINT,
                Some(()) = term.recv() => libc::SIGTERM,
                Some(()) = hup.recv() => libc::SIGHUP,
            };
            let next = match *tx.borrow() {
                Stop::Running => Stop::Stopping {
                    cause: StopCause::Signal(sig),
                    grace_cap: grace_cap(),
                },
                Stop::Stopping { cause, .. } | Stop::Killing { cause } => Stop::Killing { cause },
            };
            tx.send_replace(next);
        }
    });
    Ok(rx)
}

/// Completes when the watchdog should fire; never without a deadline.
async fn fire_at(deadline: Option<Deadline>) -> Option<Deadline> {
    match deadline {
        Some(d) => {
            tokio::time::sleep_until(d.fires_at()).await;
            Some(d)
        }
        None => std::future::pending().await,
    }
}

/// Waits until `stop` reaches a state `wanted` accepts; returns that state.
/// Never returns if the stop state can no longer change.
pub async fn wait_for(stop: &mut watch::Receiver<Stop>, wanted: impl Fn(Stop) -> bool) -> Stop {
    loop {
        let now = *stop.borrow_and_update();
        if wanted(now) {
            return now;
        }
        if stop.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}
