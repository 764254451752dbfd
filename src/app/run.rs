//! `warden run`: config → plan → lock the artifacts → reap leftovers →
//! runtime → the run → history → summary → exit code and the `exit-code`
//! file, the last act.

use std::fs::File;
use std::io::Write as _;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::containment::{layers_line, pid_ns_layer, run_id};
use super::plan::load_plan;
use super::reap::reap_before_run;
use super::schedule;
use crate::artifacts::ArtifactsLock;
use crate::atomic_write::write_atomically;
use crate::cli::{ContainmentChoice, PidNsChoice, RunArgs};
use crate::event::Reporter;
use crate::history::Location;
use crate::history::model::{RunRecord, RunSource};
use crate::history::origin::Origin;
use crate::history::recorder::{Recorded, Recorder};
use crate::outcome::Outcome;
use crate::plan::{Overrides, Plan};
use crate::report::events::{self, EventStream, RunEnd};
use crate::report::otlp::{Otlp, Resolved, RunInfo, Target};
use crate::report::trace::Trace;
use crate::report::{JunitWriter, LiveJunit, SummaryReport, Terminal, TerminalMode};
use crate::runner;
use crate::supervisor::Supervisor;
use crate::supervisor::containment::Mode;
use crate::supervisor::reaper::Reaper;
use crate::trace_context::{TRACEPARENT, TraceContext};
use crate::verdict::{self, Verdict};
use crate::watchdog::{self, Deadline};

pub(super) fn run(args: RunArgs) -> anyhow::Result<u8> {
    let started = tokio::time::Instant::now();
    let started_at = std::time::SystemTime::now();
    let overrides = Overrides {
        artifacts: args.artifacts.clone(),
        junit: args.junit.clone(),
        max_parallel: args.max_parallel,
        deadline: args.deadline,
        reserve: args.reserve,
        job_timeout_minutes: std::env::var("JOB_TIMEOUT_MINUTES").ok(),
        flaky_fails: args.flaky_fails,
        only: args.batches.clone(),
        history: args.history.clone(),
        labels: args.labels.iter().cloned().collect(),
        max_fail: match args.fail_fast {
            true => Some(crate::fail_fast::MaxFail::FIRST),
            false => args.max_fail,
        },
    };
    let mut plan = load_plan(&args.config, overrides)?;
    // Before anything is printed: `--events -` takes standard output.
    let events_out = args.events.as_deref().map(open_events).transpose()?;
    if let Some(from) = &args.rerun_failed {
        if plan.queue {
            bail!("--rerun-failed cannot be used in queue mode ([run] queue = true)");
        }
        match super::rerun::narrow(&mut plan, from)? {
            Some(line) => out!("{line}"),
            None => {
                out!("warden: nothing failed in {from}: no batch to rerun");
                return Ok(crate::verdict::EXIT_PASSED);
            }
        }
    }
    if let Some(w) = plan.scratch.socket_warning() {
        err!("warden: warning: {w}");
    }
    // One run per artifacts directory (artifacts.rs): taken before anything
    // in it is touched, held until the process ends.
    let artifacts = &plan.artifacts;
    std::fs::create_dir_all(artifacts.dir())
        .with_context(|| format!("cannot create {}", artifacts.dir().display()))?;
    let _lock = ArtifactsLock::take(artifacts, &lock_holder())?;
    // The shared directory belongs to one run: state a setup step left for
    // cleanup must not leak into the next run.
    let _ = std::fs::remove_dir_all(artifacts.shared());
    for dir in [artifacts.logs(), artifacts.shared()] {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let deadline = plan
        .deadline
        .map(|d| Deadline::new(started, d.deadline, d.reserve));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Before the child reaper starts: a `duration` partition asks git.
    let schedule = schedule::schedule(&mut plan, args.partition, &runtime)?;
    if let Some((p, s)) = &schedule.sharded {
        out!("warden: {}", schedule::shard_line(p, s));
    }
    for w in &schedule.warnings {
        err!("{w}");
    }
    let run_record = history_run_record(&plan);
    let mut events = events_out
        .map(|(out, name)| EventStream::new(out, name, &events_info(&plan, run_record.as_ref())));
    let mut trace = Trace::new(plan.artifacts.trace(), started_at);
    let otlp = otlp_start(&args, &mut plan, run_record.as_ref());
    let queue = if args.queue || plan.queue {
        Some(super::queue::join(
            &args,
            &plan,
            run_record.as_ref(),
            &runtime,
        )?)
    } else {
        None
    };
    reap_before_run();
    let (result, recorder, mut summary, mut run_errors, otlp) = runtime.block_on(async {
        let id = run_id();
        let mode = Mode::detect(&id, args.containment == ContainmentChoice::Pgroup);
        if let (ContainmentChoice::Cgroup, Mode::Pgroup { why }) = (args.containment, &mode) {
            bail!("cgroup containment required but unavailable: {why}");
        }
        // Before the reaper starts: the probe waits for its own child.
        let pid_ns = pid_ns_layer(args.pid_namespace);
        if let Err(why) = &pid_ns {
            if args.pid_namespace == PidNsChoice::Required {
                mode.finish();
                bail!("PID namespace per batch required but unavailable: {why}");
            }
            if matches!(args.pid_namespace, PidNsChoice::Auto | PidNsChoice::User) {
                // Once per run: what is missing and what contains batches instead.
                err!(
                    "warden: no PID namespace per batch ({why}); containment: {}",
                    mode.describe()
                );
            }
        }
        if args.verbose {
            out!(
                "warden: run {id}, containment: {}",
                layers_line(&mode.describe(), &pid_ns)
            );
        }
        let reaper = Reaper::start().context("cannot start the child reaper")?;
        let mut supervisor = Supervisor::new(reaper, mode, pid_ns.ok(), id, args.verbose)
            .context("cannot open /dev/null")?;
        if events.is_some() {
            supervisor = supervisor.reporting_tests();
        }
        let supervisor = Arc::new(supervisor);
        let mode = if args.verbose {
            // Echoed output and redrawn progress bars would garble each other.
            TerminalMode::Plain
        } else {
            TerminalMode::detect()
        };
        let junit = JunitWriter::new(plan.junit.clone());
        // An empty but valid report from the start: a killed run still leaves one.
        let mut run_errors = Vec::new();
        if let Err(e) = junit.write() {
            err!("warden: cannot write JUnit {}: {e}", plan.junit.display());
            run_errors.push(format!(
                "JUnit {} could not be created: {e}",
                plan.junit.display()
            ));
        }
        let stop = watchdog::start(deadline).context("cannot watch for signals")?;
        let mut terminal = Terminal::new(mode);
        let mut junit = LiveJunit::new(junit);
        let mut history = run_record.map(|r| Recorder::start(plan.history.clone(), r));
        // In queue mode this machine runs what it claims: a prediction
        // for the whole plan would say nothing of it.
        let prediction = schedule.prediction.filter(|_| queue.is_none());
        let mut summary = SummaryReport::new(prediction);
        // Started before the block (its worker already waits for spans);
        // the block owns it, lends it to the dispatcher, and hands it back.
        let mut otlp = otlp;
        // The run's reporters: the dispatcher hands every event to each, in
        // this order. Another one is one more entry in this list, nothing
        // else (as the event stream, the timeline and OTLP were).
        let reporters: &mut [&mut dyn Reporter] = &mut [
            &mut terminal,
            &mut history,
            &mut junit,
            &mut summary,
            &mut events,
            &mut trace,
            &mut otlp,
        ];
        let result = runner::run_with(
            &plan,
            supervisor.clone(),
            reporters,
            stop,
            deadline,
            queue.clone(),
        )
        .await;
        supervisor.finish();
        run_errors.extend(junit.problem());
        run_errors.extend(events.as_ref().and_then(EventStream::problem));
        run_errors.extend(trace.problem());
        Ok((result, history, summary.into_summary(), run_errors, otlp))
    })?;
    let mut outcomes = result.outcomes;
    // The reports have what they need of the tests' results (the JUnit
    // file, the summary, the event stream): free them before waiting on
    // the history writer, which holds a copy of its own and builds the
    // rows of its write. A batch of a million tests: ~180 MB that no
    // longer add to the write's (bench/many_tests.py).
    for o in &mut outcomes {
        o.tests = Vec::new();
    }
    run_errors.extend(artifacts_errors(&outcomes));
    let today = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now()).date_naive();
    let quarantine = plan.quarantine.notes(&outcomes, today);
    // The run's own failures fail it too: its results are incomplete (run
    // errors), or its quarantine list has rotted.
    let failed = outcomes.iter().any(|o| verdict::fails_run(o, plan.flaky))
        || !run_errors.is_empty()
        || !quarantine.valid;
    let Verdict {
        status,
        exit_code: code,
    } = verdict::decide(result.stopped, failed);
    // What is still queued, and the run span, on their way while the
    // history is written; waited for below.
    let export = otlp.and_then(|o| {
        let trace = o.trace_id();
        Some((trace, o.export(status, code, history_wait(deadline))?))
    });
    let recorded = recorder.map(|r| runtime.block_on(r.finish(status, history_wait(deadline))));
    if let Some(r) = &recorded {
        summary.add_note(history_line(r));
    }
    if let (Some(retention), Some(_)) = (plan.retention, &recorded)
        && let Some(note) = runtime.block_on(retention_note(&plan.history, retention))
    {
        summary.add_note(note);
    }
    if let Some(q) = &queue {
        summary.add_note(super::queue::note(q, &outcomes));
    }
    for e in &run_errors {
        summary.add_note(format!("Run error: {e}"));
    }
    if let Some((trace, export)) = export {
        let url = export.url().to_owned();
        let report = export.wait();
        if report.complete {
            let spans = report.spans;
            summary.add_note(format!("Trace: {trace} ({spans} spans) sent to {url}"));
        }
        // Never the run's failure: the results are whole without it.
        for w in &report.warnings {
            err!("warden: OTLP export to {url} {w}");
        }
    }
    out!("\n{}", summary.render_text().trim_end());
    out!("JUnit: {}", plan.junit.display());
    for line in &quarantine.out {
        out!("{line}");
    }
    for line in &quarantine.err {
        err!("{line}");
    }
    if let Err(e) = summary.append_to_github_step_summary() {
        err!("warden: cannot append to $GITHUB_STEP_SUMMARY: {e}");
    }
    if let Some(events) = &mut events {
        events.run_finished(&RunEnd {
            status,
            exit_code: code,
            duration: started.elapsed(),
            batches: summary.counts(),
            tests: summary.test_counts(),
        });
        if let Some(e) = events.problem() {
            err!("warden: {e}");
        }
    }
    // The very last act: a later CI step can tell a warden that finished
    // (this file exists) from one that was killed.
    let exit_file = plan.artifacts.exit_code();
    if let Err(e) = write_atomically(&exit_file, |w| writeln!(w, "{code}")) {
        err!("warden: cannot write {}: {e}", exit_file.display());
    }
    Ok(code)
}

/// The OTLP exporter, started (its target, the run's trace and what the
/// run span says of the run: its id is the history's uuid when recorded,
/// else the containment's run id); `None` when no endpoint is set. Every
/// unit gets the trace, so each attempt's `TRACEPARENT` names its span.
/// An unusable endpoint or TLS file is a warning, and no export.
fn otlp_start(args: &RunArgs, plan: &mut Plan, record: Option<&RunRecord>) -> Option<Otlp> {
    let resolved = Target::resolve(args.otlp_endpoint.as_deref(), |k| std::env::var(k).ok());
    let Resolved { target, warnings } = match resolved {
        Ok(resolved) => resolved?,
        Err((url, why)) => {
            err!("warden: OTLP export to {url} failed: {why}");
            return None;
        }
    };
    let url = target.url.clone();
    for w in &warnings {
        err!("warden: OTLP export to {url}: {w}");
    }
    // A CI system's own trace, if it set one: the run joins it.
    let trace = TraceContext::start(std::env::var(TRACEPARENT).ok().as_deref());
    let info = RunInfo {
        pipeline: args.config.display().to_string(),
        run_id: record.map_or_else(run_id, |r| r.uuid.clone()),
        labels: plan.labels.clone(),
    };
    let otlp = match Otlp::new(target, trace, info) {
        Ok(otlp) => otlp,
        Err(why) => {
            err!("warden: OTLP export to {url} failed: {why}");
            return None;
        }
    };
    for unit in plan
        .setup
        .iter_mut()
        .chain(plan.batches.iter_mut())
        .chain(plan.post.iter_mut())
    {
        unit.trace = Some(trace);
    }
    Some(otlp)
}

/// The run as the history records it; `None` when the history is off.
/// Before the child reaper starts: finding the commit may run `git`.
fn history_run_record(plan: &Plan) -> Option<RunRecord> {
    if plan.history == Location::None {
        return None;
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let origin = Origin::detect(&cwd);
    Some(RunRecord {
        uuid: uuid::Uuid::new_v4().to_string(),
        started: std::time::SystemTime::now(),
        commit: origin.commit,
        branch: origin.branch,
        host: origin.host,
        labels: plan.labels.clone(),
        source: RunSource::Run,
    })
}

/// Where `--events` writes, and its name for messages: a new file, or
/// for `-` the standard output warden was started with, after which
/// warden's own standard output (the human output) goes to standard error.
fn open_events(path: &std::path::Path) -> anyhow::Result<(File, String)> {
    if path.as_os_str() != "-" {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        return Ok((file, path.display().to_string()));
    }
    let stdout = std::io::stdout();
    let _ = stdout.lock().flush();
    let events = rustix::io::fcntl_dupfd_cloexec(&stdout, 3)
        .context("cannot take standard output for the events")?;
    rustix::stdio::dup2_stdout(std::io::stderr())
        .context("cannot send the human output to standard error")?;
    Ok((File::from(events), "standard output".to_owned()))
}

/// The run as its `run_started` event says it. Before the child reaper
/// starts: finding the commit may run `git`.
fn events_info(plan: &Plan, record: Option<&RunRecord>) -> events::RunInfo {
    let (commit, branch) = match record {
        Some(r) => (r.commit.clone(), r.branch.clone()),
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
            let origin = Origin::detect(&cwd);
            (origin.commit, origin.branch)
        }
    };
    events::RunInfo {
        run: record.map(|r| r.uuid.clone()),
        fingerprint: crate::queue::fingerprint(&plan.batches),
        labels: plan.labels.clone(),
        commit,
        branch,
        max_parallel: plan.max_parallel.get(),
        units: plan
            .units()
            .map(|u| (u.config.name.to_string(), u.phase))
            .collect(),
    }
}

/// How long the end of the run waits for the history writes: long enough
/// for a slow store, never past the run deadline.
fn history_wait(deadline: Option<Deadline>) -> std::time::Duration {
    const MOST: std::time::Duration = std::time::Duration::from_secs(10);
    match deadline {
        Some(d) => {
            d.at.saturating_duration_since(tokio::time::Instant::now())
                .saturating_sub(std::time::Duration::from_secs(1))
                .min(MOST)
        }
        None => MOST,
    }
}

/// `[run] retention` after the run is recorded: at most once a day per
/// store, for at most a few seconds (history::prune::auto). Never fails
/// the run: a store that cannot be pruned is a warning. `None`: nothing
/// to say (not this run's turn, or nothing was old enough).
async fn retention_note(location: &Location, retention: std::time::Duration) -> Option<String> {
    use crate::history::prune;
    let older = crate::duration::exact(retention);
    let pruned = async {
        let db = crate::history::Db::open(location, crate::history::Access::Write).await?;
        let pruned = prune::auto(&db, retention).await;
        db.close().await;
        pruned
    };
    // The prune stops itself after AUTO_BUDGET; a store that hangs, here.
    let within = prune::AUTO_BUDGET + std::time::Duration::from_secs(5);
    match tokio::time::timeout(within, pruned).await {
        Ok(Ok(None)) => None,
        Ok(Ok(Some(p))) if !p.any() && p.complete => None,
        Ok(Ok(Some(p))) => Some(format!(
            "Retention: removed {} runs, {} results, {} hunts older than {older} in {}{}",
            p.runs,
            p.results,
            p.hunts,
            crate::duration::rounded(p.elapsed),
            if p.complete {
                ""
            } else {
                " (stopped at its time bound; the next run goes on)"
            }
        )),
        Ok(Err(e)) => Some(format!("Retention: warning: prune failed: {e}")),
        Err(_) => Some(format!(
            "Retention: warning: the store did not answer within {}",
            crate::duration::exact(within)
        )),
    }
}

fn history_line(r: &Recorded) -> String {
    if r.problems.is_empty() {
        return format!("History: run {} recorded in {}", r.run, r.location);
    }
    let what = if r.batches == 0 {
        "not recorded".to_owned()
    } else {
        format!("recorded in part in {} ({} units)", r.location, r.batches)
    };
    format!(
        "History: warning: run {} {what}: {}",
        r.run,
        r.problems.join("; ")
    )
}

/// Who holds an artifacts lock, for the refusal another run prints.
fn lock_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let since = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
        .format("%Y-%m-%d %H:%M:%S UTC");
    format!(
        "run {}, pid {} on {}, started {since}",
        run_id(),
        std::process::id(),
        host.trim()
    )
}

/// What the batches could not write (artifacts.rs: a full or read-only
/// filesystem), as run-level errors: the first few named, the rest counted.
fn artifacts_errors(outcomes: &[Outcome]) -> Vec<String> {
    const NAMED: usize = 3;
    let failed: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| o.artifacts_error.as_deref())
        .collect();
    if failed.is_empty() {
        return Vec::new();
    }
    let mut line = format!(
        "artifacts could not be written, {} of {} logs may be incomplete: {}",
        failed.len(),
        outcomes.len(),
        failed[..failed.len().min(NAMED)].join("; ")
    );
    if failed.len() > NAMED {
        line.push_str(&format!("; and {} more", failed.len() - NAMED));
    }
    vec![line]
}
