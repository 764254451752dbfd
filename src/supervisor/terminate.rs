//! The one termination routine: SIGTERM (with SIGCONT, so a stopped process
//! can act on it) to every process of the batch, the grace period, then
//! SIGKILL to every process still there, then a check that none is left.

use std::fmt::Write;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::outcome::ProcessInfo;
use crate::supervisor::containment::Containment;

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
}

pub async fn terminate(c: &Containment, grace: Duration) -> Terminated {
    let signalled = c.signal_all(&[Signal::TERM, Signal::CONT]);
    let mut done = Terminated {
        signalled,
        grace,
        ..Terminated::default()
    };
    if c.wait_empty(grace).await {
        return done;
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
        let grace = humantime::format_duration(self.grace);
        let mut s = format!("sent SIGTERM to {}", processes(self.signalled));
        if self.killed.is_empty() {
            let _ = write!(s, "; all exited within {grace} grace");
        } else {
            let _ = write!(
                s,
                "; still running after {grace} grace; SIGKILLed {} ({}); gone {:.1}ms after the grace period",
                processes(self.killed.len()),
                pids(&self.killed),
                self.kill_latency.as_secs_f64() * 1000.0
            );
        }
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
