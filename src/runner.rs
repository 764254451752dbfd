//! The dispatcher: owns the run's state and drives its three phases —
//! setup steps one by one, batches within `max-parallel` in plan order,
//! post steps one by one — feeding every event to the reporters.
//! Reporters only consume events; they never drive execution.
//!
//! The stop state (watchdog.rs) is watched throughout: once stopping, no
//! new setup step or batch starts (each is reported `not-run` with the
//! reason), running ones are terminated by their supervisors, and the post
//! steps still run inside the reserve, unless a second stop request said to
//! kill everything now.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::event::Event;
use std::path::{Path, PathBuf};

use crate::config::quarantine::Quarantine;
use crate::config::{FlakyPolicy, OutputFormat, RetryPolicy};
use crate::outcome::{Attempt, Outcome};
use crate::parsers::{TestResult, TestStatus};
use crate::plan::{Plan, PlannedBatch};
use crate::status::Status;
use crate::supervisor::Supervisor;
use crate::watchdog::{Deadline, Stop, StopCause};

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

/// What the run produced.
pub struct RunResult {
    /// Setup steps, batches, post steps, each in plan order.
    pub outcomes: Vec<Outcome>,
    /// Why the run was stopped early, if it was.
    pub stopped: Option<StopCause>,
}

/// Post steps leave this much of the reserve (a tenth, at most 2s) for the reports.
fn report_margin(reserve: Duration) -> Duration {
    (reserve / 10).min(Duration::from_secs(2))
}

/// Runs the plan; returns the outcomes in plan order.
pub async fn run(
    plan: &Plan,
    supervisor: Arc<Supervisor>,
    reporter: &mut dyn Reporter,
    stop: watch::Receiver<Stop>,
    deadline: Option<Deadline>,
) -> RunResult {
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    let plan_for_work = plan.clone();
    let stop_for_work = stop.clone();
    let work = tokio::spawn(async move {
        phases(&plan_for_work, supervisor, &tx, stop_for_work, deadline).await;
    });
    let mut outcomes = deliver_all(rx, reporter).await;
    let _ = work.await;
    let order = |o: &Outcome| plan.units().position(|b| b.config.name == o.name);
    outcomes.sort_by_key(order);
    RunResult {
        outcomes,
        stopped: stop.borrow().cause(),
    }
}

/// Feeds events to the reporter until every sender is gone.
async fn deliver_all(
    mut rx: mpsc::UnboundedReceiver<Event>,
    reporter: &mut dyn Reporter,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut again: Option<tokio::time::Instant> = None;
    loop {
        let event = match again {
            Some(at) => tokio::select! {
                event = rx.recv() => event,
                _ = tokio::time::sleep_until(at) => {
                    again = reporter.flush();
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(event) = event else { break };
        deliver(event, reporter, &mut outcomes);
        while let Ok(event) = rx.try_recv() {
            deliver(event, reporter, &mut outcomes);
        }
        again = reporter.flush();
    }
    while again.is_some() {
        again = reporter.flush_now();
    }
    outcomes
}

fn deliver(event: Event, reporter: &mut dyn Reporter, outcomes: &mut Vec<Outcome>) {
    reporter.on_event(&event);
    if let Event::Finished(outcome) = event {
        outcomes.push(*outcome);
    }
}

async fn phases(
    plan: &Plan,
    sup: Arc<Supervisor>,
    tx: &mpsc::UnboundedSender<Event>,
    stop: watch::Receiver<Stop>,
    deadline: Option<Deadline>,
) {
    // Why nothing more may start: the run was stopped (said first: it is
    // usually also why a setup step failed), or a setup step failed.
    let mut failed_setup = None;
    let blocked = |failed: &Option<String>| {
        stopped_reason(&stop).or_else(|| failed.as_ref().map(|n| format!("setup step {n} failed")))
    };
    for step in &plan.setup {
        if let Some(why) = blocked(&failed_setup) {
            not_run(tx, step, &why);
            continue;
        }
        let outcome = with_retries(&sup, step, tx, &stop).await;
        if !outcome.status.is_success() {
            failed_setup = Some(outcome.name.to_string());
        }
        finished(tx, outcome);
    }
    let batches_ok = match failed_setup {
        Some(_) => {
            let why = blocked(&failed_setup).unwrap_or_default();
            for b in &plan.batches {
                not_run(tx, b, &why);
            }
            false
        }
        None => batches(plan, &sup, tx, stop.clone()).await,
    };
    post(plan, &sup, tx, stop, deadline, batches_ok).await;
}

/// Runs the batches; returns whether every one passed.
async fn batches(
    plan: &Plan,
    sup: &Arc<Supervisor>,
    tx: &mpsc::UnboundedSender<Event>,
    mut stop: watch::Receiver<Stop>,
) -> bool {
    let slots = Arc::new(Semaphore::new(plan.max_parallel.get()));
    let mut pending = plan.batches.iter();
    let mut running = JoinSet::new();
    let mut all_passed = true;
    let mut announced = false;
    let mut stop_open = true;
    loop {
        if let Some(why) = stopped_reason(&stop)
            && !announced
        {
            announced = true;
            let _ = tx.send(Event::Note(stopping_note(*stop.borrow(), running.len())));
            for b in pending.by_ref() {
                not_run(tx, b, &why);
                all_passed = false;
            }
        }
        let more = pending.len() > 0;
        if !more && running.is_empty() {
            break;
        }
        tokio::select! {
            permit = slots.clone().acquire_owned(), if more => {
                // The semaphore is never closed.
                let Ok(permit) = permit else { break };
                // A stop may have come while we waited for the slot: the
                // top of the loop reports what is left as not run.
                if stopped_reason(&stop).is_some() {
                    continue;
                }
                let Some(batch) = pending.next() else { continue };
                let (sup, tx, stop, batch) = (sup.clone(), tx.clone(), stop.clone(), batch.clone());
                let quarantine = plan.quarantine.clone();
                running.spawn(async move {
                    let mut outcome = with_retries(&sup, &batch, &tx, &stop).await;
                    apply_quarantine(&mut outcome, &quarantine);
                    drop(permit);
                    let passed = outcome.status.is_success();
                    finished(&tx, outcome);
                    passed
                });
            }
            joined = running.join_next(), if !running.is_empty() => {
                all_passed &= joined.is_some_and(|r| r.unwrap_or(false));
            }
            changed = stop.changed(), if stop_open && !announced => {
                stop_open = changed.is_ok();
            }
            else => break,
        }
    }
    all_passed
}

/// The post steps: always, in order, each within what is left of the
/// reserve; only a second stop request skips them.
async fn post(
    plan: &Plan,
    sup: &Arc<Supervisor>,
    tx: &mpsc::UnboundedSender<Event>,
    stop: watch::Receiver<Stop>,
    deadline: Option<Deadline>,
    batches_ok: bool,
) {
    let run_status = match stop.borrow().cause() {
        Some(cause) => cause.run_status(),
        None if batches_ok => "passed",
        None => "failed",
    };
    for step in &plan.post {
        if let Stop::Killing { cause } = *stop.borrow() {
            not_run(
                tx,
                step,
                &format!("{cause}, and was told again: no post steps"),
            );
            continue;
        }
        let mut step = step.clone();
        step.config
            .env
            .insert("WARDEN_RUN_STATUS".into(), run_status.into());
        if let Some(d) = deadline {
            let left =
                d.at.saturating_duration_since(tokio::time::Instant::now())
                    .saturating_sub(report_margin(d.reserve));
            if left.is_zero() {
                not_run(tx, &step, "no time left before the run deadline");
                continue;
            }
            step.config.timeout = step.config.timeout.min(left);
        }
        let outcome = with_retries(sup, &step, tx, &stop).await;
        finished(tx, outcome);
    }
}

fn stopped_reason(stop: &watch::Receiver<Stop>) -> Option<String> {
    let cause = stop.borrow().cause()?;
    Some(format!("not started: {cause}"))
}

fn stopping_note(stop: Stop, running: usize) -> String {
    let what = match stop {
        Stop::Killing { .. } => "killing",
        _ => "stopping",
    };
    let batches = if running == 1 { "batch" } else { "batches" };
    let cause = stop.cause().map(|c| c.to_string()).unwrap_or_default();
    let mut note = format!("warden: {cause}: {what} {running} running {batches}");
    if matches!(
        stop,
        Stop::Stopping {
            cause: StopCause::Signal(_),
            ..
        }
    ) {
        note.push_str(" (send SIGINT or SIGTERM again to kill them at once)");
    }
    note
}

fn finished(tx: &mpsc::UnboundedSender<Event>, outcome: Outcome) {
    let _ = tx.send(Event::Finished(Box::new(outcome)));
}

fn not_run(tx: &mpsc::UnboundedSender<Event>, unit: &PlannedBatch, why: &str) {
    finished(
        tx,
        Outcome {
            name: unit.config.name.clone(),
            phase: unit.phase,
            kind: unit.config.kind.clone(),
            status: Status::NotRun,
            reason: why.to_string(),
            exit: None,
            started: SystemTime::now(),
            duration: Duration::ZERO,
            log: unit.log.clone(),
            leaked: Vec::new(),
            warnings: Vec::new(),
            excerpt: None,
            retried: Vec::new(),
            quarantined: None,
            tests: Vec::new(),
            test_problems: Vec::new(),
            quarantined_tests: Vec::new(),
        },
    );
}

/// Whether a phase's outcome should make the run fail.
pub fn fails_run(o: &Outcome, flaky: FlakyPolicy) -> bool {
    let failed = match o.status {
        Status::Flaky => flaky == FlakyPolicy::Fail,
        status => !status.is_success(),
    };
    o.phase.counts_for_run() && failed && o.quarantined.is_none()
}

/// Marks what the quarantine list covers: failing tests (`batch/test`),
/// and the batch itself when its name matches, or when every failing test
/// is quarantined and nothing else went wrong.
fn apply_quarantine(o: &mut Outcome, q: &Quarantine) {
    if o.status.is_success() {
        return;
    }
    let failing: Vec<String> = o
        .tests
        .iter()
        .filter(|t| t.status == crate::parsers::TestStatus::Failed)
        .map(|t| t.name())
        .collect();
    for name in &failing {
        if let Some(e) = q.find(&format!("{}/{name}", o.name)) {
            o.quarantined_tests.push((name.clone(), e.describe()));
        }
    }
    if let Some(e) = q.find(o.name.as_str()) {
        o.quarantined = Some(e.describe());
    } else if o.status == Status::Failed
        && !failing.is_empty()
        && o.quarantined_tests.len() == failing.len()
        && o.test_problems.is_empty()
    {
        o.quarantined = Some(format!(
            "every failing test is quarantined: {}",
            o.quarantined_tests
                .iter()
                .map(|(n, why)| format!("{n} ({why})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

/// The `rerun` argv with the failed tests in place of `{tests}`, joined
/// the way the format's runner takes them: go's `-run` regex
/// `^(TestA|TestB)$`, test_progs' comma list `-t a,b`; otherwise one
/// argument per test where an argument is exactly `{tests}` (cargo test's
/// filters), or the names joined by spaces inside a longer argument.
fn expand_rerun(
    template: &[String],
    format: &OutputFormat,
    failing: &[&TestResult],
) -> Vec<String> {
    let owned: Vec<TestResult> = failing.iter().map(|t| (*t).clone()).collect();
    let joined = match format {
        OutputFormat::GoJson => Some(crate::parsers::gotest::rerun_pattern(&owned)),
        OutputFormat::TestProgs => {
            let mut tops: Vec<String> = failing
                .iter()
                .filter_map(|t| t.path.first().cloned())
                .collect();
            tops.sort();
            tops.dedup();
            Some(tops.join(","))
        }
        _ => None,
    };
    let names: Vec<String> = failing.iter().map(|t| last_name(t)).collect();
    let mut argv = Vec::new();
    for arg in template {
        match (&joined, arg.as_str()) {
            (Some(j), _) => argv.push(arg.replace("{tests}", j)),
            (None, "{tests}") => argv.extend(names.iter().cloned()),
            (None, _) => argv.push(arg.replace("{tests}", &names.join(" "))),
        }
    }
    argv
}

/// The name the test's own runner knows it by (libtest: `a::b`, without
/// warden's binary prefix).
fn last_name(t: &TestResult) -> String {
    t.path.last().cloned().unwrap_or_default()
}

/// A re-run ran only the failed tests: its results replace theirs, and the
/// others keep the results of the run before.
fn merge_rerun(outcome: &mut Outcome, earlier: &[TestResult]) {
    let now = std::mem::take(&mut outcome.tests);
    let same = |a: &TestResult, b: &TestResult| a.path.last() == b.path.last();
    let mut merged: Vec<TestResult> = earlier
        .iter()
        .map(|t| {
            now.iter()
                .find(|n| same(n, t))
                .cloned()
                .unwrap_or_else(|| t.clone())
        })
        .collect();
    merged.extend(
        now.iter()
            .filter(|n| !earlier.iter().any(|t| same(t, n)))
            .cloned(),
    );
    if matches!(outcome.status, Status::Passed | Status::Failed)
        && let Some(which) = crate::supervisor::failed_tests_summary(&merged)
    {
        outcome.status = Status::Failed;
        outcome.reason = which;
    }
    outcome.tests = merged;
}

/// Log tail searched for a `retry.when` pattern.
const RETRY_SCAN: u64 = 1024 * 1024;

/// Runs a unit, and again while its failure is worth retrying (`retry`):
/// a failure, crash, timeout or leak whose output (its last MiB) matches
/// one of `when`, or any such failure when `when` is empty. Never after a
/// stop request or a fatal pattern. Each failed attempt's log is kept as
/// `<name>.attempt-N.log`; `<name>.log` is always the last attempt's.
async fn with_retries(
    sup: &Supervisor,
    unit: &PlannedBatch,
    tx: &mpsc::UnboundedSender<Event>,
    stop: &watch::Receiver<Stop>,
) -> Outcome {
    let policy = &unit.config.retry;
    let mut retried: Vec<Attempt> = Vec::new();
    let mut current = unit.clone();
    let mut attempt: u32 = 1;
    // With `rerun`: every test so far, to which a re-run's results are merged.
    let mut all_tests: Option<Vec<TestResult>> = None;
    loop {
        let mut outcome = sup.run(&current, tx, stop.clone()).await;
        if let Some(earlier) = &all_tests {
            merge_rerun(&mut outcome, earlier);
        }
        let stopping = stop.borrow().cause().is_some();
        if outcome.status.is_success()
            || attempt >= policy.attempts
            || stopping
            || !retryable(&outcome, policy)
        {
            if !retried.is_empty() {
                let _ = std::fs::hard_link(&current.log, &unit.log);
                outcome.log = unit.log.clone();
                if outcome.status == Status::Passed {
                    outcome.status = Status::Flaky;
                    outcome.reason = format!("{}; passed on attempt {attempt}", outcome.reason);
                }
                outcome.retried = retried;
            }
            return outcome;
        }
        let kept = attempt_log(&unit.log, attempt);
        if attempt == 1 && std::fs::rename(&unit.log, &kept).is_err() {
            // The log stays where it is; the attempt still counts.
        }
        let log = if kept.exists() {
            kept
        } else {
            current.log.clone()
        };
        let _ = tx.send(Event::Note(format!(
            "warden: {}: attempt {attempt} of {} {} ({}): retrying{}",
            unit.config.name,
            policy.attempts,
            outcome.status,
            outcome.reason,
            if policy.backoff.is_zero() {
                String::new()
            } else {
                format!(" in {}", humantime::format_duration(policy.backoff))
            }
        )));
        retried.push(Attempt {
            status: outcome.status,
            failed_tests: outcome
                .tests
                .iter()
                .filter(|t| t.status == crate::parsers::TestStatus::Failed)
                .map(|t| (t.name(), t.message.clone().unwrap_or_default()))
                .collect(),
            reason: outcome.reason,
            duration: outcome.duration,
            log,
        });
        if let Some(template) = &unit.config.rerun {
            let failing: Vec<&TestResult> = outcome
                .tests
                .iter()
                .filter(|t| t.status == TestStatus::Failed)
                .collect();
            if !failing.is_empty() {
                let argv = expand_rerun(template, &unit.config.format, &failing);
                current.config.command = crate::config::Command::Argv(argv);
                all_tests = Some(outcome.tests.clone());
            }
        }
        let mut stop = stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(policy.backoff) => {}
            _ = crate::watchdog::wait_for(&mut stop, |s| s != Stop::Running) => {}
        }
        attempt += 1;
        current.log = attempt_log(&unit.log, attempt);
    }
}

/// Worth another attempt: a failure of the kind retries are for, whose
/// output says it was transient. With tests read from the output, that is
/// the failing tests' own output (every failing test must match: one real
/// assertion failure among them is not transient); otherwise the log's end.
fn retryable(o: &Outcome, policy: &RetryPolicy) -> bool {
    let failed = matches!(
        o.status,
        Status::Failed | Status::Crashed | Status::TimedOut | Status::Leaked
    );
    if !failed || policy.when.is_empty() {
        return failed;
    }
    let failing: Vec<&crate::parsers::TestResult> = o
        .tests
        .iter()
        .filter(|t| t.status == crate::parsers::TestStatus::Failed)
        .collect();
    if failing.is_empty() {
        return log_tail_matches(&o.log, &policy.when);
    }
    failing.iter().all(|t| {
        let text = format!("{}\n{}", t.message.as_deref().unwrap_or(""), t.output);
        policy.when.iter().any(|p| p.is_match(text.as_bytes()))
    })
}

fn log_tail_matches(log: &Path, patterns: &[crate::config::Pattern]) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(log) else {
        return false;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if f.seek(SeekFrom::Start(len.saturating_sub(RETRY_SCAN)))
        .is_err()
    {
        return false;
    }
    let mut tail = Vec::new();
    if f.read_to_end(&mut tail).is_err() {
        return false;
    }
    patterns.iter().any(|p| p.is_match(&tail))
}

/// `<dir>/<name>.attempt-N.log` beside `<dir>/<name>.log`.
fn attempt_log(log: &Path, attempt: u32) -> PathBuf {
    let stem = log.file_stem().unwrap_or_default().to_string_lossy();
    log.with_file_name(format!("{stem}.attempt-{attempt}.log"))
}
