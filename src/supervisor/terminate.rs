//! The one termination routine: SIGTERM (with SIGCONT, so a stopped process
//! can act on it) to every process of the batch, the grace period, then
//! SIGKILL to every process still there, then a check that none is left.

use std::fmt::Write;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use tokio::sync::watch;

use crate::outcome::ProcessInfo;
use crate::supervisor::containment::Containment;
use crate::watchdog::{self, Stop};

/// How long processes get to vanish after SIGKILL before we call them survivors
/// (a process in uninterruptible sleep can take a while).
const KILL_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct Terminated {
    /// Processes sent SIGTERM.
    pub signalled: usize,
    pub grace: Duration,
    /// Processes still there after the grace period, then SIGKILLed.
    pub killed: Vec<ProcessInfo>,
    /// Processes still there after SIGKILL (should never happen).
    pub survivors: Vec<ProcessInfo>,
    /// From the end of the grace period to the batch verified empty.
    pub kill_latency: Duration,
    /// A second stop request ended the grace early, after this long.
    pub cut_short: Option<Duration>,
}

/// Terminates every process of the batch. A zero grace skips SIGTERM; a
/// `stop` that turns to [`Stop::Killing`] during the grace cuts it short.
pub async fn terminate(
    c: &Containment,
    grace: Duration,
    stop: &mut watch::Receiver<Stop>,
) -> Terminated {
    let mut done = Terminated {
        grace,
        ..Terminated::default()
    };
    if !grace.is_zero() {
        done.signalled = c.signal_all(&[Signal::TERM, Signal::CONT]);
        let killing = watchdog::wait_for(stop, |s| matches!(s, Stop::Killing { .. }));
        let t0 = Instant::now();
        tokio::select! {
            emptied = c.wait_empty(grace) => if emptied {
                return done;
            },
            _ = killing => done.cut_short = Some(t0.elapsed()),
        }
    }
    let grace_over = Instant::now();
    done.killed = c.members_info();
    if !c.kill_and_wait(KILL_WAIT).await {
        done.survivors = c.members_info();
    }
    done.kill_latency = grace_over.elapsed();
    done
}

impl Terminated {
    /// e.g. `sent SIGTERM to 4 processes; still running after 2s grace;
    /// SIGKILLed 3 processes (pids 10, 11, 12)`.
    pub fn describe(&self) -> String {
        let grace = crate::duration::exact(self.grace);
        let gone = format!(
            "gone {:.1}ms after",
            self.kill_latency.as_secs_f64() * 1000.0
        );
        let killed = || {
            format!(
                "SIGKILLed {} ({})",
                processes(self.killed.len()),
                pids(&self.killed)
            )
        };
        let mut s = match (self.grace.is_zero(), self.killed.is_empty()) {
            (true, true) => "nothing left to kill".to_string(),
            (true, false) => format!("{} at once, without grace; {gone} the kill", killed()),
            (false, true) => format!(
                "sent SIGTERM to {}; all exited within {grace} grace",
                processes(self.signalled)
            ),
            (false, false) => match self.cut_short {
                Some(after) => format!(
                    "sent SIGTERM to {}; told again to stop {} into the {grace} grace; {}; {gone} that",
                    processes(self.signalled),
                    crate::duration::rounded(after),
                    killed()
                ),
                None => format!(
                    "sent SIGTERM to {}; still running after {grace} grace; {}; {gone} the grace period",
                    processes(self.signalled),
                    killed()
                ),
            },
        };
        if !self.survivors.is_empty() {
            let _ = write!(
                s,
                "; {} survived SIGKILL ({})",
                processes(self.survivors.len()),
                pids(&self.survivors)
            );
        }
        s
    }

    /// The one-line note for the terminal when a batch was stopped.
    pub fn note(&self) -> String {
        if self.killed.is_empty() {
            "exited within grace".to_string()
        } else if self.cut_short.is_some() || self.grace.is_zero() {
            format!(
                "told again to stop: killed {}",
                processes(self.killed.len())
            )
        } else {
            format!(
                "did not exit within {} grace: killed {}",
                crate::duration::exact(self.grace),
                processes(self.killed.len())
            )
        }
    }
}

fn processes(n: usize) -> String {
    if n == 1 {
        "1 process".into()
    } else {
        format!("{n} processes")
    }
}

/// `pids 1, 2, 3` (at most 10 listed).
pub fn pids(list: &[ProcessInfo]) -> String {
    let shown: Vec<String> = list.iter().take(10).map(|p| p.pid.to_string()).collect();
    let more = list.len().saturating_sub(10);
    let word = if list.len() == 1 { "pid" } else { "pids" };
    if more > 0 {
        format!("{word} {}, and {more} more", shown.join(", "))
    } else {
        format!("{word} {}", shown.join(", "))
    }
}
