//! `warden hunt`: one batch (or, through its `rerun` template, one of its
//! tests) run N times under each of several conditions, K at once, to
//! learn whether it fails on its own and what makes it fail more.
//!
//! Each arm is a plan of N copies of the batch (`<batch>.<arm>.<i>`, each
//! with the arm's limits over the batch's own and its own log under
//! `hunt-<time>/<arm>/<i>.log`) run through the same dispatcher, scheduler,
//! scratch directories and supervisor as `warden run`: timeouts,
//! containment and logs are exactly a run's. Arms run one after the other,
//! the control first; a noise arm's load runs beside its attempts
//! (`noise`). What the counts say is `verdict`'s.

pub mod arms;
pub mod noise;
pub mod verdict;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::config::{BatchName, Command, RetryPolicy, Scheduling};
use crate::event::{Event, Reporter};
use crate::plan::{Plan, PlannedBatch};
use crate::status::Status;
use crate::supervisor::Supervisor;
use crate::watchdog::{Stop, StopCause};
use arms::Pressure;
use verdict::{ArmCounts, ArmReport};

/// What to hunt, and how.
#[derive(Debug, Clone)]
pub struct Hunt {
    /// The batch, as the plan has it (environment, working directory).
    pub batch: PlannedBatch,
    /// Only this test of it (its path below the batch, `/`-separated),
    /// through the batch's `rerun` template.
    pub test: Option<String>,
    /// Attempts per arm.
    pub runs: u32,
    /// Attempts at once.
    pub parallel: NonZeroUsize,
    /// The control first ([`arms::arms`]).
    pub arms: Vec<Pressure>,
    /// Stop everything at the first failed attempt.
    pub until_fail: bool,
    /// `hunt-<time>` under the artifacts directory: every attempt's log.
    pub dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    #[error(
        "batch \"{0}\" has no `rerun` template, so one test of it cannot be run alone: hunt the whole batch (warden hunt {0})"
    )]
    NoRerun(String),
    #[error("cannot create {}: {error}", path.display())]
    Create {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The hunt's end: each arm judged, in order.
#[derive(Debug)]
pub struct Hunted {
    pub started: SystemTime,
    pub arms: Vec<ArmReport>,
    /// With `--until-fail`: the first failed attempt's log.
    pub first_failure: Option<PathBuf>,
    /// A signal stopped the hunt before its end.
    pub interrupted: Option<StopCause>,
    /// Things people should know that change no count (noise that would
    /// not stop, say).
    pub notes: Vec<String>,
}

impl Hunted {
    /// Failed attempts, and attempts that could not start.
    pub fn failures(&self) -> u64 {
        self.arms.iter().map(|a| a.failures + a.errors).sum()
    }
}

/// The name a hunt is recorded under, as the history names tests:
/// `<batch>` for the whole batch (a batch is its own test when it has
/// none), `<batch>/<test>` for one of its tests.
pub fn test_name(batch: &BatchName, test: Option<&str>) -> String {
    match test {
        Some(t) => format!("{batch}/{t}"),
        None => batch.to_string(),
    }
}

/// The command that runs only `test`: the batch's `rerun` template filled
/// as a retry fills it for that one failed test.
pub fn rerun_command(batch: &PlannedBatch, test: &str) -> Result<Command, HuntError> {
    let cfg = &batch.config;
    let Some(template) = &cfg.rerun else {
        return Err(HuntError::NoRerun(cfg.name.to_string()));
    };
    let target = crate::retry::named_failure(&cfg.format, test);
    Ok(Command::Argv(crate::retry::expand_rerun(
        template,
        &cfg.format,
        &[&target],
    )))
}

/// The plan of one arm: `plan`'s run-wide parts (artifacts, scratch,
/// resources), no setup or post steps, N copies of the batch.
fn arm_plan(plan: &Plan, hunt: &Hunt, pressure: Pressure, command: &Command) -> Plan {
    let slug = pressure.slug();
    let base = &hunt.batch;
    let prefix = format!("{}.{slug}", base.config.name);
    let logs = hunt.dir.join(&slug);
    let batches: Vec<PlannedBatch> = (1..=hunt.runs)
        .map(|i| {
            let mut b = base.clone();
            let long = format!("{prefix}.{i}");
            // Batch names hold 100 characters: a long one keeps the arm and number.
            b.config.name = BatchName::new(&long)
                .or_else(|_| BatchName::new(&format!("{slug}.{i}")))
                .expect("a slug and a number make a valid batch name");
            b.config.command = command.clone();
            b.config.limits = pressure.limits(&base.config.limits);
            b.config.retry = RetryPolicy::default();
            // K at once, as asked: no threads, resources or locks of the batch's.
            b.config.scheduling = Scheduling::default();
            b.config
                .env
                .insert("WARDEN_HUNT_ARM".into(), pressure.to_string());
            b.config
                .env
                .insert("WARDEN_HUNT_ATTEMPT".into(), i.to_string());
            b.log = logs.join(format!("{i}.log"));
            b
        })
        .collect();
    let mut p = plan.clone();
    p.setup.clear();
    p.post.clear();
    // A hunt counts failures: `[run] max-fail` must not cut it short.
    p.max_fail = None;
    p.order = (0..batches.len()).collect();
    p.batches = batches;
    p.max_parallel = hunt.parallel;
    p.resources.clear();
    p.retry_max_failures = None;
    p.quarantine = Default::default();
    p.history = crate::history::Location::None;
    p.deadline = None;
    p
}

/// Runs the hunt: each arm in turn (the control first), its noise beside
/// it; stops when `stop` (warden's signals) says so, or with
/// `until_fail` at the first failure.
pub async fn run(
    plan: &Plan,
    hunt: &Hunt,
    sup: Arc<Supervisor>,
    signals: watch::Receiver<Stop>,
    progress: &mut dyn FnMut(&str),
) -> Result<Hunted, HuntError> {
    let started = SystemTime::now();
    let command = match &hunt.test {
        Some(t) => rerun_command(&hunt.batch, t)?,
        None => hunt.batch.config.command.clone(),
    };
    // The hunt's own stop: warden's signals, and the first failure.
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let stop_tx = Arc::new(stop_tx);
    let forward = {
        let stop_tx = stop_tx.clone();
        let mut signals = signals.clone();
        tokio::spawn(async move {
            while signals.changed().await.is_ok() {
                let s = *signals.borrow();
                stop_tx.send_replace(s);
            }
        })
    };
    let mut counts = Vec::new();
    let mut first_failure = None;
    let mut notes = Vec::new();
    let mut interrupted = None;
    for &pressure in &hunt.arms {
        let mut arm = ArmCounts::new(pressure);
        if stop_rx.borrow().cause().is_some() {
            counts.push(arm);
            continue;
        }
        let logs = hunt.dir.join(pressure.slug());
        std::fs::create_dir_all(&logs).map_err(|error| HuntError::Create {
            path: logs.clone(),
            error,
        })?;
        progress(&format!(
            "warden: hunt: {pressure}: {} runs, {} at once",
            hunt.runs, hunt.parallel
        ));
        let noise = noise::Noise::start(pressure, &hunt.batch, &sup, &logs, &plan.scratch.root)
            .map_err(|error| HuntError::Create {
                path: plan.scratch.root.clone(),
                error,
            })?;
        let arm_plan = arm_plan(plan, hunt, pressure, &command);
        let mut counter = Counter {
            arm: &mut arm,
            stop: hunt.until_fail.then(|| stop_tx.clone()),
            first_failure: &mut first_failure,
        };
        crate::runner::run(
            &arm_plan,
            sup.clone(),
            &mut [&mut counter],
            stop_rx.clone(),
            None,
        )
        .await;
        notes.extend(noise.stop().await);
        // A signal of warden's own, not the first failure's stop.
        interrupted = interrupted.or(signals.borrow().cause());
        counts.push(arm);
    }
    forward.abort();
    Ok(Hunted {
        started,
        arms: verdict::judge(&counts),
        first_failure,
        interrupted,
        notes,
    })
}

/// The reporter of one arm: counts its finished attempts; with
/// `--until-fail`, stops the hunt at the first failure.
struct Counter<'a> {
    arm: &'a mut ArmCounts,
    stop: Option<Arc<watch::Sender<Stop>>>,
    first_failure: &'a mut Option<PathBuf>,
}

impl Reporter for Counter<'_> {
    fn on_event(&mut self, event: &Event) {
        let Event::Finished(o) = event else { return };
        // Cut off by a stop (the first failure, or a signal): no answer.
        if matches!(o.status, Status::NotRun | Status::Interrupted) {
            return;
        }
        let arm = &mut *self.arm;
        if o.exit.is_none() && !o.status.is_success() {
            // Its program never started: warden's trouble (limits that
            // cannot be applied, a spawn error), no answer about the test.
            arm.errors += 1;
            arm.error.get_or_insert_with(|| o.reason.clone());
            return;
        }
        arm.runs += 1;
        arm.durations.push(o.duration);
        if let Some(u) = &o.usage {
            push_some(&mut arm.cpu_stalls, u.cpu_stall);
            push_some(&mut arm.memory_stalls, u.memory_stall);
            push_some(&mut arm.io_stalls, u.io_stall);
        }
        if o.status.is_success() {
            return;
        }
        arm.failures += 1;
        arm.failed_logs.push(o.log.clone());
        if self.first_failure.is_none() {
            *self.first_failure = Some(o.log.clone());
        }
        if let Some(stop) = &self.stop {
            stop.send_if_modified(|s| {
                let running = *s == Stop::Running;
                if running {
                    // Not a signal, but it ends the attempts in flight as one
                    // does (`interrupted`, not counted).
                    *s = Stop::Stopping {
                        cause: StopCause::Signal(libc::SIGINT),
                        grace_cap: Some(Duration::from_secs(2)),
                    };
                }
                running
            });
        }
    }
}

fn push_some(v: &mut Vec<Duration>, d: Option<Duration>) {
    if let Some(d) = d {
        v.push(d);
    }
}

/// A fresh `hunt-<time>` directory under `artifacts` (`-2`, `-3` … when
/// one of that second exists).
pub fn hunt_dir(artifacts: &Path, at: SystemTime) -> Result<PathBuf, HuntError> {
    let stamp = chrono::DateTime::<chrono::Utc>::from(at).format("%Y%m%d-%H%M%S");
    let create =
        |p: &Path| std::fs::create_dir_all(artifacts).and_then(|()| std::fs::create_dir(p));
    for n in 1..1000 {
        let name = if n == 1 {
            format!("hunt-{stamp}")
        } else {
            format!("hunt-{stamp}-{n}")
        };
        let path = artifacts.join(name);
        match create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(HuntError::Create { path, error }),
        }
    }
    let path = artifacts.join(format!("hunt-{stamp}"));
    Err(HuntError::Create {
        path,
        error: std::io::ErrorKind::AlreadyExists.into(),
    })
}
