//! Supervises one batch from spawn to an [`Outcome`]: spawn in containment,
//! capture output, watch the timeout, terminate, reap, verify empty.
//!
//! Each running batch is one async task driving this sequence; the exit
//! status comes from the [`Reaper`], output EOF from the capture thread,
//! and the two are awaited separately because a batch's main process can
//! exit long before the last holder of its output pipe.
//!
//! A supervisor never talks to the outside world: it returns the outcome,
//! and tells the dispatcher what happens on the way (`message`).

pub mod capture;
pub mod containment;
pub mod leftovers;
pub mod limits;
mod measure;
pub mod pidns;
pub mod procfs;
mod raw;
pub mod reaper;
mod spawn;
pub mod terminate;

use std::fs::File;
use std::io::Write;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::config::{self, LeakPolicy};
use crate::message::{self, Message};
use crate::outcome::{Outcome, ProcessInfo};
use crate::phase::Phase;
use crate::plan::PlannedBatch;
use crate::status::{Exit, Status};
use capture::{Capture, Captured, Echo, FatalMatch, FatalWatch, LiveTests, Readers, TestFeed};
use containment::{Containment, Cookie, Mode};
use reaper::Reaper;
use terminate::{Terminated, terminate};

use crate::watchdog::{self, Stop, StopCause};

/// A batch that ran shorter than this without limits has its pressure
/// files left unread (see `start_and_watch`).
const PRESSURE_MIN_RUN: Duration = Duration::from_millis(100);

/// What ended the wait on a running batch.
enum Watched {
    Exited(Option<Exit>),
    TimedOut,
    Stopped(Stop),
    Fatal(FatalMatch),
}

/// The first fatal-pattern match; never, when nothing watches for one.
async fn fatal_match(rx: &mut Option<oneshot::Receiver<FatalMatch>>) -> FatalMatch {
    match rx {
        Some(rx) => match rx.await {
            Ok(m) => m,
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// How long to wait for a killed main process's exit status and for the
/// pipe to reach EOF once every process of the batch is gone.
const SETTLE: Duration = Duration::from_secs(2);

pub struct Supervisor {
    mode: Mode,
    /// Whether batches get a PID namespace each, and how it is made.
    pid_ns: Option<pidns::Kind>,
    run_id: String,
    verbose: bool,
    spawner: spawn::spawner::Spawner,
    /// Where batches' limits go, decided on first need.
    limits: limits::Host,
    /// Read every batch's pressure files, however short it ran: a hunt
    /// compares the stall of its arms (see [`Supervisor::measuring_pressure`]).
    all_pressure: bool,
    /// Tell the dispatcher each test result as it is parsed
    /// ([`Supervisor::reporting_tests`]).
    live_tests: bool,
}

/// What happened after the main process was started.
struct Ending {
    exit: Option<Exit>,
    timed_out: Option<Terminated>,
    /// The run was stopped while the batch ran: how, after how long, and how
    /// the batch was terminated.
    stopped: Option<(Stop, Duration, Terminated)>,
    /// A fatal pattern matched; with how the batch was terminated, unless
    /// it had already exited.
    fatal: Option<(FatalMatch, Option<Terminated>)>,
    leaked: Vec<ProcessInfo>,
    leak_kill: Option<Terminated>,
    captured: Captured,
    /// The pipe was still open when we gave up on it, held by no process we
    /// could find in the batch's containment.
    pipe_held: bool,
    /// Time ran out or the run stopped while the program was still being
    /// exec'd (its binary on a stalled mount): the child was killed there.
    exec_blocked: bool,
    /// What the batch used, read once it was over.
    usage: Option<crate::usage::Usage>,
    /// The first process's rusage, once reaped.
    rusage: Option<reaper::Rusage>,
    /// The memory limit it ran under, for an OOM kill's reason.
    memory_limit: Option<u64>,
    /// Said of the batch whatever its status (a cgroup left behind).
    warnings: Vec<String>,
}

impl Supervisor {
    pub fn new(
        reaper: Reaper,
        mode: Mode,
        pid_ns: Option<pidns::Kind>,
        run_id: String,
        verbose: bool,
    ) -> std::io::Result<Supervisor> {
        let run_dir = match &mode {
            Mode::Cgroup(root) => Ok(root.path().to_path_buf()),
            Mode::Pgroup { why } => Err(why.clone()),
        };
        Ok(Supervisor {
            limits: limits::Host::new(&run_id, run_dir),
            mode,
            pid_ns,
            run_id,
            verbose,
            spawner: spawn::spawner::Spawner::new(spawn::SpawnCache::new()?, reaper),
            all_pressure: false,
            live_tests: false,
        })
    }

    /// Reads the pressure files of every batch, not only of batches with
    /// limits or longer than [`PRESSURE_MIN_RUN`]: for `warden hunt`,
    /// whose control arm's stall is what the other arms are read against.
    pub fn measuring_pressure(mut self) -> Supervisor {
        self.all_pressure = true;
        self
    }

    /// Sends each test result to the dispatcher as the batch's output
    /// reports it (`Message::Test`), for `--events`' `test_result` lines;
    /// off otherwise: a million results would be a million messages.
    pub fn reporting_tests(mut self) -> Supervisor {
        self.live_tests = true;
        self
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Removes the run's cgroups (v2 and v1), once every batch has ended.
    pub fn finish(&self) {
        self.limits.finish();
        self.mode.finish();
    }

    /// Runs one batch to completion. Never fails: every problem becomes the
    /// outcome's status and reason. Tells the `dispatcher` when the program
    /// started and how a stop ended it; says nothing to anyone else.
    pub async fn run(
        &self,
        batch: &PlannedBatch,
        dispatcher: &message::Sender,
        stop: watch::Receiver<Stop>,
    ) -> Outcome {
        let cfg = &batch.config;
        // Failed until judged otherwise: a spawn error leaves it so.
        let mut outcome = Outcome::new(
            cfg.name.clone(),
            batch.phase,
            cfg.kind.clone(),
            batch.log.clone(),
            Status::Failed,
            String::new(),
        );
        let t0 = Instant::now();
        let mut log_error = None;
        match self.start_and_watch(batch, dispatcher, stop, t0).await {
            Ok(mut ending) => {
                let feed = ending.captured.tests.take();
                log_error = ending
                    .captured
                    .write_error
                    .as_ref()
                    .filter(|e| crate::artifacts::is_unwritable(e))
                    .map(|e| e.to_string());
                judge(&mut outcome, cfg, ending);
                read_tests(&mut outcome, batch, feed);
            }
            Err(e) => outcome.reason = e,
        }
        unwritable_artifacts(&mut outcome, log_error);
        outcome.duration = t0.elapsed();
        outcome
    }

    async fn start_and_watch(
        &self,
        batch: &PlannedBatch,
        dispatcher: &message::Sender,
        stop: watch::Receiver<Stop>,
        t0: Instant,
    ) -> Result<Ending, String> {
        let cfg = &batch.config;
        let mut log = File::create(&batch.log)
            .map_err(|e| format!("cannot create log {}: {e}", batch.log.display()))?;
        let cookie = Cookie::new(&self.run_id, cfg.name.as_str());
        let mut containment = self
            .mode
            .prepare(cookie, cfg.name.as_str())
            .map_err(|e| format!("cannot set up containment: {e}"))?;
        let request = limits::Request {
            limits: &cfg.limits,
            measure_memory: cfg.scheduling.memory.is_some(),
            unit: cfg.name.as_str(),
            cgroup: containment.cgroup_path(),
            io_dirs: io_dirs(batch),
        };
        let mut applied = match self.limits.apply(&request) {
            Ok(applied) => applied,
            Err(why) => {
                containment.remove();
                let msg = format!("cannot apply its limits: {why}");
                let _ = writeln!(log, "warden: {msg}");
                return Err(msg);
            }
        };
        let mut result = self
            .spawn_and_watch(
                batch,
                &mut containment,
                &applied,
                &mut log,
                dispatcher,
                stop,
                t0,
            )
            .await;
        if let Ok(ending) = &mut result {
            // A batch this short stalled for less than that: its pressure
            // files (each instantiated by the kernel on first open, ~8 µs
            // of this thread apiece) are not worth reading.
            applied.pressure &=
                self.all_pressure || !cfg.limits.is_empty() || t0.elapsed() >= PRESSURE_MIN_RUN;
            if let Some(dir) = containment.cgroup_fd() {
                let mut usage = measure::from_cgroups(dir, &applied);
                if let Some(r) = &ending.rusage {
                    measure::fill_from_rusage(&mut usage, r);
                }
                ending.usage = Some(usage);
            }
            ending.memory_limit = applied.memory_limit;
        }
        containment.remove();
        let problems = applied.remove();
        if let Ok(ending) = &mut result {
            ending.warnings.extend(problems);
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn spawn_and_watch(
        &self,
        batch: &PlannedBatch,
        containment: &mut Containment,
        applied: &limits::Applied,
        log: &mut File,
        dispatcher: &message::Sender,
        mut stop: watch::Receiver<Stop>,
        t0: Instant,
    ) -> Result<Ending, String> {
        let cfg = &batch.config;
        let echo = self.verbose.then(|| Echo::new(cfg.name.as_str()));
        let (fatal, mut fatal_rx) = if cfg.fatal_patterns.is_empty() {
            (None, None)
        } else {
            let (watch, rx) = FatalWatch::new(cfg.fatal_patterns.clone());
            (Some(watch), Some(rx))
        };
        let live = self
            .live_tests
            .then(|| LiveTests::new(dispatcher.clone(), cfg.name.clone(), batch.attempt));
        let tests = crate::parsers::for_format(&cfg.format)
            .map(|p| TestFeed::new(p, cfg.store_success_output, live.clone()));
        let (output, mut capture) = Capture::new(log, Readers { echo, fatal, tests })
            .map_err(|e| format!("cannot set up output capture: {e}"))?;
        let deadline = tokio::time::Instant::from_std(t0 + cfg.timeout);
        // Post steps run during a stop; only a second stop request ends them.
        let post = matches!(batch.phase, Phase::Post { .. });
        let obeys = move |s: Stop| match s {
            Stop::Running => false,
            Stop::Stopping { .. } => !post,
            Stop::Killing { .. } => true,
        };
        // Started on a spawner thread: an exec that blocks (a stalled mount)
        // must not stop this thread. If the batch's time runs out or the
        // run stops first, the program may just have started (its answer
        // not read yet), so it gets the grace period to answer; if it
        // doesn't, its exec is stuck: the child is killed where it waits,
        // which ends the spawn, and the batch ends as timed out or stopped.
        let mut cut_short = None;
        let spawned = match spawn::Request::new(
            &cfg.command,
            &cfg.env,
            &batch.cwd,
            containment,
            applied.procs_paths(),
            self.pid_ns,
            output,
        ) {
            Err(e) => Err(e),
            Ok(request) => {
                let (pending, answer) = self.spawner.spawn(request);
                tokio::pin!(answer);
                let interrupted = tokio::select! {
                    biased;
                    started = &mut answer => Ok(started),
                    _ = tokio::time::sleep_until(deadline) => Err((Watched::TimedOut, cfg.grace)),
                    s = watchdog::wait_for(&mut stop, obeys) => {
                        Err((Watched::Stopped(s), stop_grace(s, cfg.grace)))
                    }
                };
                match interrupted {
                    Ok(started) => started,
                    Err((watched, window)) => {
                        match tokio::time::timeout(window, &mut answer).await {
                            // Started after all: the watch below sees the
                            // timeout or stop and terminates it as usual.
                            Ok(started) => started,
                            Err(_) => {
                                pending.kill();
                                cut_short = Some(watched);
                                answer.await
                            }
                        }
                    }
                }
            }
        };
        // The request is gone here, and with it our copy of the child's output fd.
        let started = spawned.map_err(|e| {
            let msg = format!("cannot start {}: {e}", program(&cfg.command));
            let _ = writeln!(log, "warden: {msg}");
            msg
        })?;
        let (pid, status, exit_rx) = (started.pid, started.status, started.exit);
        let usage_rx = started.usage;
        containment.started(pid, started.pidfd, status.is_some());
        // In a namespace, the program's end is what its init reports.
        let mut exit_rx = match status {
            Some(fd) => program_exit(fd, exit_rx),
            None => exit_rx,
        };
        dispatcher.send(Message::Started {
            name: cfg.name.clone(),
            at: t0,
            slot: batch.slot,
            attempt: batch.attempt,
            attempts: cfg.retry.attempts,
        });
        if let Some(live) = &live {
            live.opened();
        }

        let exec_blocked = cut_short.is_some();
        let watched = match cut_short {
            Some(watched) => watched,
            None => tokio::select! {
                exit = &mut exit_rx => Watched::Exited(exit.ok()),
                _ = tokio::time::sleep_until(deadline) => Watched::TimedOut,
                s = watchdog::wait_for(&mut stop, obeys) => Watched::Stopped(s),
                m = fatal_match(&mut fatal_rx) => Watched::Fatal(m),
            },
        };
        let mut ending = Ending {
            exit: None,
            timed_out: None,
            stopped: None,
            fatal: None,
            leaked: Vec::new(),
            leak_kill: None,
            captured: Captured::default(),
            pipe_held: false,
            exec_blocked,
            usage: None,
            rusage: None,
            memory_limit: None,
            warnings: Vec::new(),
        };
        match watched {
            Watched::Exited(exit) => {
                ending.exit = exit;
                self.drain(containment, cfg, &mut capture, &mut ending, &mut stop)
                    .await;
            }
            Watched::TimedOut => {
                ending.timed_out = Some(terminate(containment, cfg.grace, &mut stop).await);
            }
            Watched::Fatal(m) => {
                let term = terminate(containment, cfg.grace, &mut stop).await;
                ending.fatal = Some((m, Some(term)));
            }
            Watched::Stopped(s) => {
                let grace = stop_grace(s, cfg.grace);
                let ran = t0.elapsed();
                let term = terminate(containment, grace, &mut stop).await;
                dispatcher.send(Message::Terminated {
                    name: cfg.name.clone(),
                    how: term.note(),
                });
                ending.stopped = Some((s, ran, term));
            }
        }
        if ending.exit.is_none() {
            ending.exit = tokio::time::timeout(SETTLE, exit_rx)
                .await
                .ok()
                .and_then(Result::ok);
        }
        let _ = tokio::time::timeout(SETTLE, capture.eof()).await;
        ending.captured = capture.finish().await;
        // A match in the last lines, read after the main process had exited.
        if ending.fatal.is_none()
            && let Some(Ok(m)) = fatal_rx.as_mut().map(|rx| rx.try_recv())
        {
            ending.fatal = Some((m, None));
        }
        ending.pipe_held = !ending.captured.eof;
        // What the first process's rusage says (it has exited: the batch
        // is over; its reaping may be a moment behind): the usage without a
        // cgroup, and the peak where the cgroups have no memory figure (a
        // hybrid host's batch without a v1 memory group).
        ending.rusage = tokio::time::timeout(SETTLE, usage_rx)
            .await
            .ok()
            .and_then(Result::ok);
        if containment.cgroup_path().is_none() {
            ending.usage = ending.rusage.as_ref().map(measure::from_rusage);
        }
        Ok(ending)
    }

    /// After the main process exits: keep reading while others still hold
    /// the output, up to `drain`; then whatever of the batch is left leaked.
    async fn drain(
        &self,
        containment: &Containment,
        cfg: &config::BatchConfig,
        capture: &mut Capture,
        ending: &mut Ending,
        stop: &mut watch::Receiver<Stop>,
    ) {
        let until = tokio::time::Instant::now() + cfg.drain;
        let _ = tokio::time::timeout_at(until, capture.eof()).await;
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if !containment.wait_empty(left).await {
            ending.leaked = containment.members_info();
            ending.leak_kill = Some(terminate(containment, cfg.grace, stop).await);
        }
    }
}

/// The end of the program under a namespace's init: the wait status the
/// init writes to `status`, or, if the init died first (killed with its
/// namespace), the init's own end.
fn program_exit(
    status: std::os::fd::OwnedFd,
    init_exit: oneshot::Receiver<Exit>,
) -> oneshot::Receiver<Exit> {
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut buf = [0u8; 4];
        // SAFETY: the AsyncFd owns the pipe's read end, which stays open
        // and the same for the AsyncFd's whole life.
        let got = match unsafe { tokio::io::unix::AsyncFd::register(status) } {
            Ok(fd) => loop {
                let Ok(mut guard) = fd.readable().await else {
                    break 0;
                };
                match guard.try_io(|f| rustix::io::read(f.get_ref(), &mut buf).map_err(Into::into))
                {
                    Ok(Ok(n)) => break n,
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Ok(Err(_)) => break 0,
                    Err(_would_block) => {}
                }
            },
            Err(_) => 0,
        };
        // One write of 4 bytes to a pipe is atomic: all or nothing.
        let exit = if got == buf.len() {
            Some(pidns::exit_of_raw(i32::from_ne_bytes(buf)))
        } else {
            init_exit.await.ok()
        };
        if let Some(exit) = exit {
            let _ = tx.send(exit);
        }
    });
    rx
}

/// The directories whose disks a batch's I/O limits apply to: its working
/// directory and its scratch directory (`WARDEN_SCRATCH`, set by the
/// runner; on the scratch root's disk).
fn io_dirs(batch: &PlannedBatch) -> Vec<std::path::PathBuf> {
    if batch.config.limits.is_empty() {
        return Vec::new();
    }
    let mut dirs = vec![batch.cwd.clone()];
    if let Some(scratch) = batch.config.env.get("WARDEN_SCRATCH") {
        dirs.push(scratch.into());
    }
    dirs
}

fn program(cmd: &config::Command) -> String {
    match cmd {
        config::Command::Argv(argv) => format!("`{}`", argv[0]),
        config::Command::Shell(_) => "`/bin/sh`".into(),
    }
}

/// A log that could not be written, or a failure on a filesystem that
/// cannot take writes (the batch's own writes to its log, which is its
/// stdout, failed too): the run's problem, said as such, not the batch's.
fn unwritable_artifacts(outcome: &mut Outcome, log_error: Option<String>) {
    // One statvfs per batch: a batch that ignores its write errors passes
    // with a cut log, and that is the run's problem too.
    let why = log_error.or_else(|| {
        let dir = outcome.log.parent()?;
        crate::artifacts::unwritable(dir).map(str::to_owned)
    });
    let Some(why) = why else { return };
    if !outcome.status.is_success() {
        outcome.reason.push_str(&format!(
            " (its log could not be written: {why}; the batch may have failed for that)"
        ));
    }
    outcome.artifacts_error = Some(format!("log {}: {why}", outcome.log.display()));
}

/// Turns what happened into a status and a reason in words.
fn judge(outcome: &mut Outcome, cfg: &config::BatchConfig, ending: Ending) {
    outcome.exit = ending.exit;
    outcome.warnings.extend(ending.warnings.iter().cloned());
    outcome.usage = ending.usage.clone();
    let oom = ending
        .usage
        .as_ref()
        .filter(|u| u.oom_kills > 0)
        .map(|u| oom_reason(u, ending.memory_limit));
    // Ended by warden, not by its exit: the OOM kill is said as a warning.
    let ended_by_warden =
        ending.fatal.is_some() || ending.stopped.is_some() || ending.timed_out.is_some();
    if ended_by_warden && let Some(oom) = &oom {
        outcome.warnings.push(oom.clone());
    }
    if let Some(e) = &ending.captured.write_error {
        outcome.warnings.push(format!(
            "log write failed: {} of {} bytes reached the log: {e}",
            ending.captured.logged, ending.captured.bytes
        ));
    }
    if let Some((m, term)) = &ending.fatal {
        let how = match (term, ending.exit) {
            (Some(term), _) => term.describe(),
            (None, Some(exit)) => format!("it had already exited ({exit})"),
            (None, None) => "it had already exited".to_string(),
        };
        outcome.status = Status::Aborted;
        outcome.reason = format!("fatal pattern `{}` matched: {}; {how}", m.pattern, m.line);
        outcome.excerpt = Some(m.context.clone());
        return;
    }
    if let Some((stop, ran, term)) = &ending.stopped {
        let cause = stop.cause().map(|c| c.to_string()).unwrap_or_default();
        let (status, by) = match stop.cause() {
            Some(StopCause::Signal(_)) => (Status::Interrupted, "interrupted"),
            // warden stopped it itself: enough batches had failed.
            Some(StopCause::MaxFail { .. }) => (Status::Interrupted, "stopped"),
            _ => (Status::Deadline, "stopped by the run watchdog"),
        };
        outcome.status = status;
        outcome.reason = format!(
            "{by}: {cause}; had been running {}; {}",
            crate::duration::rounded(*ran),
            termination(&ending, term)
        );
        return;
    }
    if let Some(term) = &ending.timed_out {
        outcome.status = Status::TimedOut;
        outcome.reason = format!(
            "timed out after {}; {}",
            crate::duration::exact(cfg.timeout),
            termination(&ending, term)
        );
        return;
    }
    let exit = ending.exit.unwrap_or(Exit::Code(-1));
    (outcome.status, outcome.reason) = match (exit, oom) {
        (Exit::Code(0), None) => (Status::Passed, "exit code 0".to_string()),
        // Its processes were OOM-killed: whatever the exit said (a shell's
        // 137, a runner's failure, SIGKILL), that is why.
        (Exit::Code(0), Some(oom)) => {
            outcome.warnings.push(oom);
            (Status::Passed, "exit code 0".to_string())
        }
        (_, Some(oom)) => (Status::Crashed, oom),
        (Exit::Code(c), None) => (Status::Failed, format!("exit code {c}")),
        (Exit::Signal(s), None) => (
            Status::Crashed,
            format!("killed by {}", crate::status::signal_name(s)),
        ),
    };
    let leak = leak_description(&ending, cfg.drain);
    if let Some(leak) = leak {
        match cfg.leak {
            LeakPolicy::Fail => {
                outcome.reason = format!("{}; {leak}", outcome.reason);
                outcome.status = Status::Leaked;
            }
            LeakPolicy::Warn => outcome.warnings.push(leak),
        }
    }
    outcome.leaked = ending.leaked;
}

/// `killed by the OOM killer at its 4G memory limit (peak 4.0G)`.
fn oom_reason(usage: &crate::usage::Usage, limit: Option<u64>) -> String {
    let mut reason = "killed by the OOM killer".to_string();
    if let Some(limit) = limit {
        reason.push_str(&format!(
            " at its {} memory limit",
            crate::size::exact(limit)
        ));
    }
    if let Some(peak) = usage.peak_memory {
        reason.push_str(&format!(" (peak {})", crate::size::human(peak)));
    }
    if usage.oom_kills > 1 {
        reason.push_str(&format!("; {} processes killed", usage.oom_kills));
    }
    reason
}

/// The grace period a batch gets when the run stops: its own, clipped to
/// what the deadline's reserve allows; none once killing was asked for.
fn stop_grace(s: Stop, grace: Duration) -> Duration {
    match s {
        Stop::Stopping {
            grace_cap: Some(cap),
            ..
        } => grace.min(cap),
        Stop::Stopping { .. } => grace,
        Stop::Running | Stop::Killing { .. } => Duration::ZERO,
    }
}

/// How the batch was ended, for the reason: its termination, or that it
/// never got past its exec.
fn termination(ending: &Ending, term: &Terminated) -> String {
    if ending.exec_blocked {
        "its program never started (the exec was still blocked, as on a stalled mount); \
         killed"
            .to_string()
    } else {
        term.describe()
    }
}

/// Folds the tests the output described into the outcome. A batch that
/// exited 0 but has failing tests, or whose test output is incomplete, has
/// failed.
fn read_tests(outcome: &mut Outcome, batch: &PlannedBatch, feed: Option<TestFeed>) {
    // Tests still running when the batch was stopped get its status and
    // reason (`<error type="timed-out">`).
    let ended = crate::parsers::Ended::batch(outcome.status, &outcome.reason);
    let (tests, problems) = match (feed, &batch.config.format) {
        (Some(feed), format) => {
            let (mut tests, verdict) = feed.finish(&ended);
            let mut problems = verdict.problems;
            // test_progs' `--json-summary` file: the failures' logs.
            if let config::OutputFormat::TestProgs {
                json_summary: Some(path),
            } = format
            {
                let read = crate::parsers::test_progs::merge_json_summary(
                    &mut tests,
                    &batch.cwd.join(path),
                    outcome.started,
                );
                problems.extend(read.problems);
                outcome.warnings.extend(read.warnings);
            }
            (tests, problems)
        }
        (None, config::OutputFormat::Junit(globs)) => {
            let read = crate::parsers::junit::read_junit_files(
                &batch.cwd,
                globs,
                batch.config.name.as_str(),
                outcome.started,
            );
            outcome.warnings.extend(read.warnings);
            let mut tests = read.tests;
            if !batch.config.store_success_output {
                crate::parsers::drop_success_output(&mut tests);
            }
            (tests, read.problems)
        }
        (None, _) => return,
    };
    let mut tests = tests;
    crate::parsers::names::disambiguate(&mut tests);
    // A time the output reported beyond a year was clamped to a year
    // (`parsers::reported_seconds`): nothing real takes that long, so say so.
    let clamped: Vec<&crate::parsers::TestResult> = tests
        .iter()
        .filter(|t| t.duration == Some(crate::parsers::MAX_REPORTED_TIME))
        .collect();
    if let Some(first) = clamped.first() {
        outcome.warnings.push(format!(
            "{} test time(s) in the output were out of range and clamped to a year, e.g. {}",
            clamped.len(),
            first.name()
        ));
    }
    let which = failed_tests_summary(&tests).unwrap_or_default();
    let failed = !which.is_empty();
    match outcome.status {
        Status::Passed if failed => {
            outcome.status = Status::Failed;
            outcome.reason = which;
        }
        Status::Passed if !problems.is_empty() => {
            outcome.status = Status::Failed;
            outcome.reason = problems.join("; ");
        }
        Status::Failed if failed => {
            outcome.reason = format!("{}; {which}", outcome.reason);
        }
        _ => {}
    }
    outcome.tests = tests;
    outcome.test_problems = problems;
}

/// `2 of 310 tests failed: a/b, c`, or `None` when none failed.
pub fn failed_tests_summary(tests: &[crate::parsers::TestResult]) -> Option<String> {
    let failed: Vec<String> = tests
        .iter()
        .filter(|t| t.status.is_failure())
        .map(crate::parsers::TestResult::name)
        .collect();
    if failed.is_empty() {
        return None;
    }
    let shown: Vec<&str> = failed.iter().take(5).map(String::as_str).collect();
    let more = failed.len().saturating_sub(shown.len());
    let more = if more > 0 {
        format!(", and {more} more")
    } else {
        String::new()
    };
    Some(format!(
        "{} of {} tests failed: {}{more}",
        failed.len(),
        tests.len(),
        shown.join(", ")
    ))
}

fn leak_description(ending: &Ending, drain: Duration) -> Option<String> {
    let drain = crate::duration::exact(drain);
    if let Some(kill) = &ending.leak_kill {
        let list: Vec<String> = ending
            .leaked
            .iter()
            .take(10)
            .map(|p| format!("{} ({})", p.pid, p.cmdline))
            .collect();
        return Some(format!(
            "left {} running {drain} after exit: {}; {}",
            plural(ending.leaked.len(), "process", "processes"),
            list.join(", "),
            kill.describe()
        ));
    }
    ending.pipe_held.then(|| {
        format!(
            "output pipe still open {drain} after exit, held by a process outside the batch's containment"
        )
    })
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Usage;

    #[test]
    fn an_oom_kill_names_the_limit_and_the_peak() {
        let u = Usage {
            peak_memory: Some(4 << 30),
            oom_kills: 1,
            ..Usage::default()
        };
        assert_eq!(
            oom_reason(&u, Some(4 << 30)),
            "killed by the OOM killer at its 4G memory limit (peak 4.0G)"
        );
        let u = Usage {
            oom_kills: 2,
            ..Usage::default()
        };
        assert_eq!(
            oom_reason(&u, None),
            "killed by the OOM killer; 2 processes killed"
        );
    }
}
