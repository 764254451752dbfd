//! Attempts: running a unit again while its failure looks transient
//! (`retry.when`), optionally only its failed tests (`rerun`), keeping every
//! attempt's log, and telling flaky from broken.
//!
//! `"@oom"` in `retry.when` stands for "killed by the OOM killer" (the
//! supervisor counted an OOM kill in the batch's cgroup, or made its status
//! `crashed` with the OOM reason); the other entries are regexes. A batch
//! the OOM killer killed is retried (by `"@oom"` or an empty `when`) alone: before its next attempt it waits
//! (holding what it was granted) until the other running batches have
//! ended, and no new batch starts meanwhile or beside it (see
//! `scheduler::alone`) — the memory it ran out of was likely taken by them.
//!
//! When the run is exported as a trace (`--otlp-endpoint`), each attempt
//! gets `TRACEPARENT` naming its own span (`trace_context`), so what a test
//! suite traces of itself lands under the attempt that ran it.

use std::path::Path;

use tokio::sync::watch;

use crate::artifacts::attempt_log;
use crate::config::{OutputFormat, RetryPolicy};
use crate::event::Retry;
use crate::message::{self, Message};
use crate::outcome::{Attempt, Outcome};
use crate::parsers::TestResult;
use crate::plan::PlannedBatch;
use crate::scheduler::alone::AloneHandle;
use crate::status::Status;
use crate::supervisor::Supervisor;
use crate::trace_context::TRACEPARENT;
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

/// A failed test known only by its name as reports give it (the path
/// joined with `/`: JUnit's testcase name, the history's name below the
/// batch), as [`expand_rerun`] takes it. Go's names are
/// `package/TestA/sub`, and its package may hold `/` itself: the path
/// starts at the first `Test…`, `Example…`, `Benchmark…` or `Fuzz…`
/// component, the package being what comes before it (empty for a bare
/// `TestA`). Other formats' names are split at every `/`.
pub fn named_failure(format: &OutputFormat, name: &str) -> TestResult {
    let parts: Vec<&str> = name.split('/').collect();
    let go_test = |p: &&str| {
        ["Test", "Example", "Benchmark", "Fuzz"]
            .iter()
            .any(|prefix| p.starts_with(prefix))
    };
    let path = match (format, parts.iter().position(go_test)) {
        (OutputFormat::GoJson, Some(i)) => std::iter::once(parts[..i].join("/"))
            .chain(parts[i..].iter().map(|p| p.to_string()))
            .collect(),
        (OutputFormat::GoJson, None) if parts.len() == 1 => vec![String::new(), name.to_owned()],
        _ => parts.iter().map(|p| p.to_string()).collect(),
    };
    TestResult {
        path,
        status: crate::status::TestStatus::Failed,
        duration: None,
        output: String::new(),
        message: None,
    }
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
    with_retries_alone_on_oom(sup, unit, dispatcher, stop, None).await
}

/// [`with_retries`] for a unit running beside others: an attempt the OOM
/// killer killed is retried only once `alone` says nothing else runs (a
/// stop request while it waits ends the retries).
pub async fn with_retries_alone_on_oom(
    sup: &Supervisor,
    unit: &PlannedBatch,
    dispatcher: &message::Sender,
    stop: &watch::Receiver<Stop>,
    alone: Option<&AloneHandle>,
) -> Outcome {
    let policy = &unit.config.retry;
    let mut retried: Vec<Attempt> = Vec::new();
    let mut current = unit.clone();
    let mut attempt: u32 = 1;
    // With `rerun`: every test so far, to which a re-run's results are merged.
    let mut all_tests: Option<Vec<TestResult>> = None;
    loop {
        current.attempt = attempt;
        let env = &mut current.config.env;
        env.insert("WARDEN_ATTEMPT".into(), attempt.to_string());
        env.insert("WARDEN_ATTEMPTS".into(), policy.attempts.to_string());
        if let Some(trace) = &unit.trace {
            let span = trace.attempt_span(unit.config.name.as_str(), attempt);
            current
                .config
                .env
                .insert(TRACEPARENT.into(), trace.traceparent(span));
        }
        let mut outcome = sup.run(&current, dispatcher, stop.clone()).await;
        if let Some(earlier) = &all_tests {
            merge_rerun(&mut outcome, earlier);
        }
        let stopping = stop.borrow().cause().is_some();
        let again = !(outcome.status.is_success()
            || attempt >= policy.attempts
            || stopping
            || !retryable(&outcome, policy));
        let wait_alone = alone.filter(|_| again && oom_killed(&outcome));
        // The dispatcher says whether the run still retries (it counts the
        // run's failures), and tells the reporters either way.
        let again = again && {
            let (answer, allowed) = tokio::sync::oneshot::channel();
            dispatcher.send(Message::Retrying {
                retry: Box::new(Retry {
                    name: unit.config.name.clone(),
                    attempt,
                    attempts: policy.attempts,
                    status: outcome.status,
                    reason: outcome.reason.clone(),
                    exit: outcome.exit,
                    started: outcome.started,
                    duration: outcome.duration,
                    // Where the log is kept once retried (below).
                    log: attempt_log(&unit.log, attempt),
                    usage: outcome.usage.clone(),
                }),
                backoff: policy.backoff,
                failures: failures(&outcome),
                alone: wait_alone.is_some(),
                answer,
            });
            // No answer: a dispatcher gone, which cannot be while
            // workers run; retry as before.
            allowed.await.unwrap_or(true)
        };
        let again = match wait_alone {
            Some(handle) if again => {
                let mut stop = stop.clone();
                tokio::select! {
                    _ = handle.wait() => true,
                    _ = crate::watchdog::wait_for(&mut stop, |s| s != Stop::Running) => false,
                }
            }
            _ => again,
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

/// The start of the supervisor's reason for a batch the OOM killer killed
/// (`killed by the OOM killer at its 4G memory limit (peak 4.0G)`).
pub const OOM_REASON: &str = "killed by the OOM killer";

/// Whether the OOM killer killed (a process of) the unit: an OOM kill
/// counted in its cgroup, or a crash the supervisor put down to it.
pub fn oom_killed(o: &Outcome) -> bool {
    o.usage.as_ref().is_some_and(|u| u.oom_kills > 0)
        || (o.status == Status::Crashed && o.reason.starts_with(OOM_REASON))
}

/// Worth another attempt: a failure of the kind retries are for, whose
/// output says it was transient, or (`"@oom"`) that the OOM killer killed.
/// With tests read from the output, that is the failing tests' own output
/// (every failing test must match: one real assertion failure among them
/// is not transient); otherwise the log's end.
fn retryable(o: &Outcome, policy: &RetryPolicy) -> bool {
    let failed = matches!(
        o.status,
        Status::Failed | Status::Crashed | Status::TimedOut | Status::Leaked
    );
    if !failed {
        return false;
    }
    if policy.oom && oom_killed(o) {
        return true;
    }
    if policy.when.is_empty() {
        // No regexes: any failure, unless `when` named only "@oom".
        return !policy.oom;
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::config::{BatchName, Pattern};
    use crate::phase::Phase;
    use crate::usage::Usage;

    fn outcome(status: Status, reason: &str, log: PathBuf) -> Outcome {
        Outcome::new(
            BatchName::new("vm").expect("a valid name"),
            Phase::Batch,
            None,
            log,
            status,
            reason.into(),
        )
    }

    fn policy(when: &[&str], oom: bool) -> RetryPolicy {
        RetryPolicy {
            attempts: 2,
            when: when.iter().map(|w| Pattern::new(w).unwrap()).collect(),
            oom,
            backoff: Duration::ZERO,
        }
    }

    /// The supervisor's two ways of saying so: the reason of a crash, and
    /// OOM kills counted in the cgroup (a child killed, the batch failed).
    fn oom_outcomes(log: &std::path::Path) -> Vec<Outcome> {
        let crashed = outcome(
            Status::Crashed,
            "killed by the OOM killer at its 4G memory limit (peak 4.0G)",
            log.into(),
        );
        let mut counted = outcome(Status::Failed, "exit code 1", log.into());
        counted.usage = Some(Usage {
            oom_kills: 1,
            peak_memory: Some(64 << 20),
            ..Usage::default()
        });
        vec![crashed, counted]
    }

    #[test]
    fn oom_is_matched_by_the_at_oom_entry_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("vm.log");
        std::fs::write(&log, "connection reset\n").unwrap();
        for o in oom_outcomes(&log) {
            assert!(oom_killed(&o), "{o:?}");
            assert!(retryable(&o, &policy(&[], true)), "@oom alone");
            assert!(
                retryable(&o, &policy(&["no such text"], true)),
                "@oom and a regex"
            );
            assert!(!retryable(&o, &policy(&["no such text"], false)));
            // No `when` at all: any failure, OOM included.
            assert!(retryable(&o, &policy(&[], false)));
        }
        // Not an OOM kill: "@oom" alone does not retry it, a regex still may.
        let plain = outcome(Status::Crashed, "killed by SIGKILL", log.clone());
        assert!(!oom_killed(&plain));
        assert!(!retryable(&plain, &policy(&[], true)));
        assert!(retryable(&plain, &policy(&["connection reset"], true)));
        // A failed batch that merely says "OOM killer" in its reason is not
        // one, and a passing batch is never retried, OOM kill or not.
        let said = outcome(Status::Failed, "killed by the OOM killer", log.clone());
        assert!(!oom_killed(&said));
        let mut passed = outcome(Status::Passed, "exit code 0", log.clone());
        passed.usage = Some(Usage {
            oom_kills: 2,
            ..Usage::default()
        });
        assert!(!retryable(&passed, &policy(&[], true)));
        let timed_out = outcome(Status::TimedOut, "timed out after 1s", log);
        assert!(!retryable(&timed_out, &policy(&[], true)));
    }

    #[test]
    fn failures_known_by_name_fill_the_rerun_template() {
        let go = OutputFormat::GoJson;
        let names = ["example.com/m/net/TestDial/ipv6", "TestB", "p/TestC"];
        let failing: Vec<TestResult> = names.iter().map(|n| named_failure(&go, n)).collect();
        assert_eq!(failing[0].path, ["example.com/m/net", "TestDial", "ipv6"]);
        let refs: Vec<&TestResult> = failing.iter().collect();
        let template = ["go".to_owned(), "-run".to_owned(), "{tests}".to_owned()];
        assert_eq!(
            expand_rerun(&template, &go, &refs),
            ["go", "-run", "^(TestB|TestC|TestDial)$"]
        );
        let libtest = OutputFormat::Libtest;
        let t = named_failure(&libtest, "unit/a::b");
        let template = ["cargo".to_owned(), "test".to_owned(), "{tests}".to_owned()];
        assert_eq!(
            expand_rerun(&template, &libtest, &[&t]),
            ["cargo", "test", "a::b"]
        );
    }
}
