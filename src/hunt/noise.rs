//! Sibling load for a noise arm (`noise=cpu:N`, `noise=io`): processes
//! warden starts beside the attempts for the arm's duration. Each runs as
//! a batch of its own through the supervisor, so it has its own
//! containment (cgroup, or process group and cookie) and ends as every
//! batch does: at the arm's end it is stopped (TERM, a short grace, KILL,
//! verified empty) and reaped, and only what warden started is touched.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::arms::Pressure;
use crate::config::{BatchName, Command, Limits, OutputFormat, RetryPolicy, Scheduling};
use crate::message;
use crate::outcome::Outcome;
use crate::plan::PlannedBatch;
use crate::supervisor::Supervisor;
use crate::watchdog::{Stop, StopCause};

/// A CPU busy loop (the shell's own, no fork per turn).
const CPU_LOOP: &str = "while :; do :; done";
/// Writes and syncs 64 MiB over and over, bypassing the page cache where
/// the filesystem allows (`oflag=direct`), else through it with an fsync.
const IO_LOOP: &str = "while :; do \
     dd if=/dev/zero of=noise.bin bs=1M count=64 oflag=direct conv=fsync status=none 2>/dev/null \
     || dd if=/dev/zero of=noise.bin bs=1M count=64 conv=fsync status=none; done";

/// The running load of one arm.
pub struct Noise {
    stop: watch::Sender<Stop>,
    tasks: Vec<JoinHandle<Outcome>>,
    /// The I/O loop's directory, removed at the end.
    _dir: Option<tempfile::TempDir>,
}

impl Noise {
    /// Starts `pressure`'s load, if it has any: its processes are
    /// `template` (the hunted batch: its environment) with another
    /// command, logging to `logs/noise-N.log`. `scratch` is where the I/O
    /// loop writes (the scratch root: the device the attempts write to).
    pub fn start(
        pressure: Pressure,
        template: &PlannedBatch,
        sup: &Arc<Supervisor>,
        logs: &Path,
        scratch: &Path,
    ) -> std::io::Result<Noise> {
        let (count, command) = match pressure {
            Pressure::NoiseCpu(n) => (n, CPU_LOOP),
            Pressure::NoiseIo => (1, IO_LOOP),
            _ => (0, ""),
        };
        let dir = if pressure == Pressure::NoiseIo {
            std::fs::create_dir_all(scratch)?;
            Some(
                tempfile::Builder::new()
                    .prefix("warden-noise-")
                    .tempdir_in(scratch)?,
            )
        } else {
            None
        };
        let (stop, stop_rx) = watch::channel(Stop::Running);
        // Nobody listens: the arm's attempts are what the hunt reports.
        let (tx, _rx) = message::channel();
        let mut tasks = Vec::new();
        for i in 1..=count {
            let mut unit = template.clone();
            let name = format!("noise-{}-{i}", pressure.slug());
            // A slug and a number: always a valid name.
            unit.config.name = BatchName::new(&name).map_err(std::io::Error::other)?;
            unit.config.command = Command::Shell(command.into());
            unit.config.timeout = crate::duration::MAX;
            unit.config.grace = Duration::from_secs(1);
            unit.config.fatal_patterns.clear();
            unit.config.retry = RetryPolicy::default();
            unit.config.format = OutputFormat::None;
            unit.config.rerun = None;
            unit.config.scheduling = Scheduling::default();
            unit.config.limits = Limits::default();
            if let Some(d) = &dir {
                unit.cwd = d.path().to_owned();
            }
            unit.log = logs.join(format!("noise-{i}.log"));
            let (sup, tx, stop_rx) = (sup.clone(), tx.clone(), stop_rx.clone());
            tasks.push(tokio::spawn(
                async move { sup.run(&unit, &tx, stop_rx).await },
            ));
        }
        Ok(Noise {
            stop,
            tasks,
            _dir: dir,
        })
    }

    /// Stops the load and waits until its processes are gone; returns
    /// what went wrong (a process that would not die, a leak), if anything.
    pub async fn stop(self) -> Vec<String> {
        self.stop.send_replace(Stop::Stopping {
            cause: StopCause::Signal(libc::SIGTERM),
            grace_cap: Some(Duration::from_secs(1)),
        });
        let mut problems = Vec::new();
        for t in self.tasks {
            match t.await {
                Ok(o) => {
                    if !o.leaked.is_empty() {
                        problems.push(format!(
                            "noise {}: {} processes left behind and killed",
                            o.name,
                            o.leaked.len()
                        ));
                    }
                    problems.extend(o.warnings.iter().map(|w| format!("noise {}: {w}", o.name)));
                }
                Err(e) => problems.push(format!("noise task failed: {e}")),
            }
        }
        problems
    }
}
