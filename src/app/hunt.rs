//! `warden hunt`: config → plan of the one batch → artifacts lock → reap
//! leftovers → supervisor → the hunt (`crate::hunt`) → the arms' table or
//! JSON → the history (as a hunt, never as a run) → exit code.
//!
//! Exit codes: 0 when no attempt failed, 1 when one did or could not
//! start (with
//! `--until-fail`: the hunt found a failure and stopped there), 2 for a
//! command line or config that can't be used, 130/143 when a signal
//! stopped the hunt.

use std::sync::Arc;

use anyhow::{Context, bail};

use super::containment::{pid_ns_layer, run_id};
use super::exit::{EXIT_FAILED, EXIT_PASSED};
use super::plan::load_plan;
use crate::artifacts::ArtifactsLock;
use crate::cli::{ContainmentChoice, Format, HuntArgs, PidNsChoice};
use crate::history::hunts::{HuntArmRecord, HuntRecord};
use crate::history::origin::Origin;
use crate::history::{Access, Db, Location};
use crate::hunt::verdict::ArmReport;
use crate::hunt::{self, Hunt, Hunted, arms};
use crate::plan::Overrides;
use crate::supervisor::Supervisor;
use crate::supervisor::containment::Mode;
use crate::supervisor::reaper::Reaper;

pub(super) fn hunt(args: HuntArgs) -> anyhow::Result<u8> {
    let (batch, test) = match args.target.split_once('/') {
        Some((b, t)) if !t.is_empty() => (b.to_owned(), Some(t.to_owned())),
        _ => (args.target.trim_end_matches('/').to_owned(), None),
    };
    let overrides = Overrides {
        artifacts: args.artifacts.clone(),
        history: args.history.clone(),
        labels: args.labels.iter().cloned().collect(),
        only: vec![batch.clone()],
        ..Overrides::default()
    };
    let plan = load_plan(&args.config, overrides)?;
    let Some(planned) = plan.batches.first().cloned() else {
        bail!("no batch named \"{batch}\" in {}", args.config.display());
    };
    if let Some(t) = &test {
        // Refused before anything runs: no `rerun`, no single test.
        hunt::rerun_command(&planned, t)?;
    }
    let artifacts = &plan.artifacts;
    std::fs::create_dir_all(artifacts.dir())
        .with_context(|| format!("cannot create {}", artifacts.dir().display()))?;
    let _lock = ArtifactsLock::take(artifacts, &format!("hunt, pid {}", std::process::id()))?;
    // `WARDEN_SHARED_DIR` names it; what a run's setup left there stays.
    std::fs::create_dir_all(artifacts.shared())
        .with_context(|| format!("cannot create {}", artifacts.shared().display()))?;
    let started = std::time::SystemTime::now();
    let dir = hunt::hunt_dir(artifacts.dir(), started)?;
    let name = hunt::test_name(&planned.config.name, test.as_deref());
    let spec = Hunt {
        batch: planned,
        test,
        runs: args.runs.get(),
        parallel: args.parallel,
        arms: arms::arms(&args.pressures),
        until_fail: args.until_fail,
        dir,
    };
    // Before the child reaper starts: finding the commit may run `git`.
    let origin = (plan.history != Location::None)
        .then(|| Origin::detect(&std::env::current_dir().unwrap_or_else(|_| ".".into())));
    reap_leftovers();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let json = args.format == Format::Json;
    let hunted = runtime.block_on(async {
        let id = run_id();
        let mode = Mode::detect(&id, args.containment == ContainmentChoice::Pgroup);
        if let (ContainmentChoice::Cgroup, Mode::Pgroup { why }) = (args.containment, &mode) {
            bail!("cgroup containment required but unavailable: {why}");
        }
        let pid_ns = pid_ns_layer(args.pid_namespace);
        if let Err(why) = &pid_ns
            && args.pid_namespace == PidNsChoice::Required
        {
            mode.finish();
            bail!("PID namespace per batch required but unavailable: {why}");
        }
        let reaper = Reaper::start().context("cannot start the child reaper")?;
        let sup = Arc::new(
            Supervisor::new(reaper, mode, pid_ns.ok(), id, false)
                .context("cannot open /dev/null")?
                .measuring_pressure(),
        );
        let stop = crate::watchdog::start(None).context("cannot watch for signals")?;
        let result = hunt::run(&plan, &spec, sup.clone(), stop, &mut |line| {
            if !json {
                err!("{line}");
            }
        })
        .await;
        // The run's cgroups, v2 and v1 (the arms' limits), once all ended.
        sup.finish();
        Ok(result?)
    })?;
    let recorded = origin.map(|origin| {
        let record = record(&spec, &name, &plan.labels, origin, &hunted);
        let uuid = record.uuid.clone();
        runtime
            .block_on(async {
                let db = Db::open(&plan.history, Access::Write).await?;
                let id = db.record_hunt(&record).await;
                db.close().await;
                id
            })
            .map(|_| uuid)
            .map_err(|e| format!("hunt not recorded in {}: {e}", plan.history))
    });
    if json {
        print_json(&spec, &name, &hunted, recorded.as_ref());
    } else {
        print_table(&spec, &name, &hunted, recorded.as_ref());
    }
    if let Some(cause) = hunted.interrupted {
        return Ok(crate::verdict::decide(Some(cause), true).exit_code);
    }
    Ok(if hunted.failures() > 0 {
        EXIT_FAILED
    } else {
        EXIT_PASSED
    })
}

/// As before a run (`reap::reap_before_run`), but said on stderr: stdout
/// may be the JSON document.
fn reap_leftovers() {
    let found = crate::supervisor::leftovers::find();
    for line in crate::supervisor::leftovers::describe(&found) {
        err!("warden: reaping {line}");
    }
    for problem in crate::supervisor::leftovers::reap(&found) {
        err!("warden: {problem}");
    }
}

fn record(
    spec: &Hunt,
    name: &str,
    labels: &crate::history::model::Labels,
    origin: Origin,
    hunted: &Hunted,
) -> HuntRecord {
    HuntRecord {
        uuid: uuid::Uuid::new_v4().to_string(),
        started: hunted.started,
        host: origin.host,
        labels: labels.clone(),
        commit: origin.commit,
        batch: spec.batch.config.name.to_string(),
        test: name.to_owned(),
        runs_per_arm: u64::from(spec.runs),
        parallel: spec.parallel.get() as u64,
        until_fail: spec.until_fail,
        dir: spec.dir.display().to_string(),
        arms: hunted
            .arms
            .iter()
            .map(|a| HuntArmRecord {
                arm: a.arm.clone(),
                runs: a.runs,
                failures: a.failures,
                median_ms: a.median_ms,
                cpu_stall_ms: a.cpu_stall_ms,
                memory_stall_ms: a.memory_stall_ms,
                io_stall_ms: a.io_stall_ms,
                p_value: a.p_value,
                verdict: a.verdict.as_str().to_owned(),
                sentence: a.sentence.clone(),
            })
            .collect(),
    }
}

fn ms(v: Option<u64>) -> String {
    v.map(|m| crate::duration::rounded(std::time::Duration::from_millis(m)))
        .unwrap_or_else(|| "-".into())
}

/// `cpu 0.1s io 2.3s`: the medians the host measured.
fn stalls(a: &ArmReport) -> String {
    let parts: Vec<String> = [
        ("cpu", a.cpu_stall_ms),
        ("mem", a.memory_stall_ms),
        ("io", a.io_stall_ms),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|_| format!("{k} {}", ms(v))))
    .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

fn print_table(
    spec: &Hunt,
    name: &str,
    hunted: &Hunted,
    recorded: Option<&Result<String, String>>,
) {
    let text = crate::text::inert;
    out!(
        "warden hunt {}: {} runs per arm, {} at once; logs in {}",
        text(name),
        spec.runs,
        spec.parallel,
        spec.dir.display()
    );
    out!("");
    out!(
        "{:<14} {:>5} {:>6} {:>18} {:>9}  {:<28} verdict",
        "arm",
        "runs",
        "failed",
        "fail rate (95% CI)",
        "median",
        "stalled (median)"
    );
    for a in &hunted.arms {
        let rate = format!(
            "{:.0}% ({:.0}–{:.0}%)",
            a.failure_rate * 100.0,
            a.ci_low * 100.0,
            a.ci_high * 100.0
        );
        let verdict = match a.p_value {
            Some(p) => format!("{} (p{})", a.verdict.as_str(), p_text(p)),
            None => a.verdict.as_str().to_owned(),
        };
        out!(
            "{:<14} {:>5} {:>6} {:>18} {:>9}  {:<28} {verdict}",
            a.arm,
            a.runs,
            a.failures,
            rate,
            ms(a.median_ms),
            stalls(a)
        );
    }
    out!("");
    for a in &hunted.arms {
        out!("{}", a.sentence);
        if a.errors > 0 && a.runs > 0 {
            out!(
                "  ({} more attempts of {} could not start)",
                a.errors,
                a.arm
            );
        }
    }
    if hunted.arms.iter().any(|a| !a.failed_logs.is_empty()) {
        out!("");
        out!("Failed attempts' logs:");
        for a in &hunted.arms {
            for log in a.failed_logs.iter().take(LOGS_LISTED) {
                out!("  {}: {}", a.arm, log.display());
            }
            if let Some(more) = a
                .failed_logs
                .len()
                .checked_sub(LOGS_LISTED)
                .filter(|&n| n > 0)
            {
                let dir = a.failed_logs[0].parent().unwrap_or(&spec.dir);
                out!("  {}: … and {more} more in {}", a.arm, dir.display());
            }
        }
    }
    if spec.until_fail {
        match &hunted.first_failure {
            Some(log) => out!("\nFirst failure: {}", log.display()),
            None => out!("\nNo failure in {} attempts.", total_runs(hunted)),
        }
    }
    if let Some(cause) = hunted.interrupted {
        out!("\nHunt stopped early: {cause}");
    }
    for n in &hunted.notes {
        err!("warden: {n}");
    }
    match recorded {
        Some(Ok(uuid)) => out!("History: hunt {uuid} recorded"),
        Some(Err(e)) => err!("warden: warning: {e}"),
        None => {}
    }
}

/// Failed attempts' logs listed per arm in the table (JSON lists all).
const LOGS_LISTED: usize = 5;

fn total_runs(hunted: &Hunted) -> u64 {
    hunted.arms.iter().map(|a| a.runs).sum()
}

/// `<0.001`, `=0.014`: after a `p`.
fn p_text(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("={p:.3}")
    }
}

fn print_json(spec: &Hunt, name: &str, hunted: &Hunted, recorded: Option<&Result<String, String>>) {
    let doc = serde_json::json!({
        "test": name,
        "batch": spec.batch.config.name.as_str(),
        "runs_per_arm": spec.runs,
        "parallel": spec.parallel.get(),
        "until_fail": spec.until_fail,
        "dir": spec.dir,
        "arms": hunted.arms,
        "failures": hunted.failures(),
        "first_failure": hunted.first_failure,
        "interrupted": hunted.interrupted.map(|c| c.to_string()),
        "notes": hunted.notes,
        "recorded": recorded.and_then(|r| r.as_ref().ok()),
        "history_error": recorded.and_then(|r| r.as_ref().err()),
    });
    out!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}
