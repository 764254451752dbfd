//! Attempts: running a unit again while its failure looks transient
//! (`retry.when`), optionally only its failed tests (`rerun`), keeping every
//! attempt's log, and telling flaky from broken.

use std::path::Path;

use tokio::sync::watch;

use crate::artifacts::attempt_log;
use crate::config::{OutputFormat, RetryPolicy};
use crate::message::{self, Message};
use crate::outcome::{Attempt, Outcome};
use crate::parsers::TestResult;
use crate::plan::PlannedBatch;
use crate::status::Status;
use crate::supervisor::Supervisor;
use crate::watchdog::Stop;

/// The `rerun` argv with the failed tests in place of `{tests}`, joined
/// the way the format's runner takes them: go's `-run` regex
/// `^(TestA|TestB)$`, test_progs' comma list `-t a,b`; otherwise one
/// argument per test where an argument is exactly `{tests}` (cargo test's
/// filters), or the names joined by spaces inside a longer argument.
pub fn expand_rerun(
    template: &[String],
    format: &OutputFormat,
    failing: &[&TestResult],
) -> Vec<String> {
    let owned: Vec<TestResult> = failing.iter().map(|t| (*t).clone()).collect();
    let joined = match format {
        OutputFormat::GoJson => Some(crate::parsers::gotest::rerun_pattern(&owned)),
        OutputFormat::TestProgs { .. } => {
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
/// `<name>.attempt-N.log`; `<name>.log` is always the last attempt's. The
/// `dispatcher` is told of each attempt that will be retried.
pub async fn with_retries(
    sup: &Supervisor,
    unit: &PlannedBatch,
    dispatcher: &message::Sender,
    stop: &watch::Receiver<Stop>,
) -> Outcome {
    let policy = &unit.config.retry;
    let mut retried: Vec<Attempt> = Vec::new();
    let mut current = unit.clone();
    let mut attempt: u32 = 1;
    // With `rerun`: every test so far, to which a re-run's results are merged.
    let mut all_tests: Option<Vec<TestResult>> = None;
    loop {
        let mut outcome = sup.run(&current, dispatcher, stop.clone()).await;
        if let Some(earlier) = &all_tests {
            merge_rerun(&mut outcome, earlier);
        }
        let stopping = stop.borrow().cause().is_some();
        let again = !(outcome.status.is_success()
            || attempt >= policy.attempts
            || stopping
            || !retryable(&outcome, policy));
        // The dispatcher says whether the run still retries (it counts the
        // run's failures), and tells the reporters either way.
        let again = again && {
            let (answer, allowed) = tokio::sync::oneshot::channel();
            dispatcher.send(Message::Retrying {
                name: unit.config.name.clone(),
                attempt,
                attempts: policy.attempts,
                status: outcome.status,
                reason: outcome.reason.clone(),
                backoff: policy.backoff,
                failures: failures(&outcome),
                answer,
            });
            // No answer: a dispatcher gone, which cannot be while
            // workers run; retry as before.
            allowed.await.unwrap_or(true)
        };
        if !again {
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
        // Attempt 1 wrote `<name>.log`; later attempts write their own file.
        let kept = attempt_log(&unit.log, attempt);
        if attempt == 1 {
            let _ = std::fs::rename(&unit.log, &kept);
        }
        // If the rename failed, the log stays where it was written.
        let log = if kept.exists() {
            kept
        } else {
            current.log.clone()
        };
        retried.push(Attempt {
            status: outcome.status,
            failed_tests: outcome
                .tests
                .iter()
                .filter(|t| t.status.is_failure())
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
                .filter(|t| t.status.is_failure())
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

/// What a unit's outcome adds to the run's failures (which `[run]
/// retry-max-failures` caps): its failed tests, or 1 for a unit that failed
/// without tests read from its output; 0 when it passed or never ran.
pub fn failures(o: &Outcome) -> u64 {
    if o.status.is_success() || o.status == Status::NotRun {
        return 0;
    }
    let tests = o.tests.iter().filter(|t| t.status.is_failure()).count();
    u64::try_from(tests).unwrap_or(u64::MAX).max(1)
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
    let failing: Vec<&crate::parsers::TestResult> =
        o.tests.iter().filter(|t| t.status.is_failure()).collect();
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
