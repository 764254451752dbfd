//! `warden check`: the plan as a run would make it (paths, deadline,
//! history, containment, shard, units, start order and prediction),
//! without running anything.

use anyhow::Context;

use super::containment::{layers_line, pid_ns_layer, run_id};
use super::exit::{EXIT_BAD_INPUT, EXIT_PASSED};
use super::plan::load_plan;
use super::schedule;
use crate::cli::{CheckArgs, ContainmentChoice};
use crate::config;
use crate::duration;
use crate::plan::{DeadlineSource, Overrides};
use crate::supervisor::containment::Mode;
use crate::supervisor::limits::Host;

pub(super) fn check(args: CheckArgs) -> anyhow::Result<u8> {
    let overrides = Overrides {
        deadline: args.deadline,
        reserve: args.reserve,
        job_timeout_minutes: std::env::var("JOB_TIMEOUT_MINUTES").ok(),
        max_parallel: args.max_parallel,
        history: args.history.clone(),
        only: args.batches.clone(),
        ..Overrides::default()
    };
    let mut plan = load_plan(&args.config, overrides)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let schedule = schedule::schedule(&mut plan, args.partition, &runtime)?;
    for w in &schedule.warnings {
        err!("{w}");
    }
    out!("config: {}", args.config.display());
    out!("artifacts: {}", plan.artifacts.dir().display());
    out!("junit: {}", plan.junit.display());
    out!("max-parallel: {}", plan.max_parallel);
    if let Some(m) = plan.max_fail {
        out!("max-fail: {m}");
    }
    match plan.deadline {
        Some(d) => out!(
            "deadline: {} (reserve {}, from {}): the watchdog fires after {}",
            duration::exact(d.deadline),
            duration::exact(d.reserve),
            match d.source {
                DeadlineSource::CommandLine => "--deadline / WARDEN_DEADLINE",
                DeadlineSource::Config => "[run] deadline",
                DeadlineSource::JobTimeout => "JOB_TIMEOUT_MINUTES",
            },
            duration::exact(d.deadline - d.reserve),
        ),
        None => out!("deadline: none"),
    }
    out!("history: {}", schedule.source);
    match (&plan.memory.budget, &plan.memory.configured) {
        (Some(b), _) => out!("memory budget: {}", b.describe()),
        (None, Some(_)) => out!("memory budget: unknown (see the warning)"),
        (None, None) => {}
    }
    let limit_problems = {
        // The same choice a run would make, made and undone.
        let id = run_id();
        let mode = Mode::detect(&id, args.containment == ContainmentChoice::Pgroup);
        out!(
            "containment: {}",
            layers_line(&mode.kind(), &pid_ns_layer(args.pid_namespace))
        );
        let problems = check_limits(&plan, &mode, &id);
        mode.finish();
        problems
    };
    if let Some((p, s)) = &schedule.sharded {
        out!("{}: {}", schedule::shard_line(p, s), s.kept.join(", "));
    }
    for (title, units) in [
        ("setup steps", &plan.setup),
        ("batches", &plan.batches),
        ("post steps", &plan.post),
    ] {
        if title != "batches" && units.is_empty() {
            continue;
        }
        out!("{title}: {}", units.len());
        for b in units {
            print_unit(b);
        }
    }
    if !plan.batches.is_empty() {
        let how = if schedule.expected.is_empty() {
            "priority, then config order"
        } else {
            "priority, then the longest expected first"
        };
        out!("start order ({how}):");
        for line in schedule::order_lines(&plan, &schedule.expected) {
            out!("{line}");
        }
        out!(
            "{}",
            schedule::prediction_line(schedule.prediction.as_ref())
        );
    }
    if !limit_problems.is_empty() {
        for p in &limit_problems {
            err!("error: {p}");
        }
        return Ok(EXIT_BAD_INPUT);
    }
    Ok(EXIT_PASSED)
}

/// Where the units' limits would go (one `limits:` line), and each limit
/// that could not be applied, naming its unit (`batch `vm`: memory=4G
/// cannot be applied: …`). Without a cgroup, what the fallback can't do.
fn check_limits(plan: &crate::plan::Plan, mode: &Mode, run_id: &str) -> Vec<String> {
    let run_dir = match mode {
        Mode::Cgroup(root) => Ok(root.path().to_path_buf()),
        Mode::Pgroup { why } => Err(why.clone()),
    };
    let host = Host::new(run_id, run_dir);
    let units = plan.setup.iter().chain(&plan.batches).chain(&plan.post);
    let mut problems = Vec::new();
    let mut all = config::Limits::default();
    for b in units {
        let limits = &b.config.limits;
        if limits.is_empty() {
            continue;
        }
        all = all.over(limits);
        let dirs = [b.cwd.clone(), plan.scratch.root.clone()];
        for p in host.problems(limits, &dirs) {
            let (limit, why) = p.split_once(": ").unwrap_or((&p, ""));
            problems.push(format!(
                "{} `{}`: limit {limit} cannot be applied: {why}",
                b.phase.as_str(),
                b.config.name
            ));
        }
    }
    if matches!(mode, Mode::Pgroup { .. }) {
        out!(
            "limits: none can be applied without a cgroup; usage is the first process's \
             rusage (partial: what it waited for, largest single RSS)"
        );
    } else if !all.is_empty() {
        out!("limits: {}", host.describe(&all).join("; "));
    }
    host.finish();
    problems
}

fn print_unit(b: &crate::plan::PlannedBatch) {
    let c = &b.config;
    let what = match &c.command {
        config::Command::Argv(argv) => format!("{argv:?}"),
        config::Command::Shell(s) => format!("sh -c {s:?}"),
    };
    let required = match b.phase {
        crate::phase::Phase::Post { required: true } => " (required)",
        _ => "",
    };
    out!("  {}{required}: {what}", c.name);
    out!(
        "    cwd {}, timeout {}, grace {}, drain {}, leak {}{}",
        b.cwd.display(),
        duration::exact(c.timeout),
        duration::exact(c.grace),
        duration::exact(c.drain),
        match c.leak {
            config::LeakPolicy::Warn => "warn",
            config::LeakPolicy::Fail => "fail",
        },
        c.kind
            .as_ref()
            .map(|k| format!(", kind {k}"))
            .unwrap_or_default(),
    );
    if !c.limits.is_empty() {
        out!("    limits {}", c.limits.describe());
    }
    let s = &c.scheduling;
    if *s != config::Scheduling::default() {
        let needs: Vec<String> = s.needs.iter().map(|(r, n)| format!("{r}={n}")).collect();
        out!(
            "    threads {}, needs {}, locks {}, priority {}{}",
            s.threads,
            if needs.is_empty() {
                "-".into()
            } else {
                needs.join(" ")
            },
            if s.locks.is_empty() {
                "-".into()
            } else {
                s.locks.join(" ")
            },
            s.priority,
            s.memory
                .map(|m| format!(", memory {}", crate::size::exact(m)))
                .unwrap_or_default(),
        );
    }
}
