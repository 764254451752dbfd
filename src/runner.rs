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
use std::time::Duration;

use std::collections::HashMap;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::{BatchName, slot_variable};
use crate::event::{Event, Reporter};
use crate::outcome::Outcome;
use crate::plan::{Plan, PlannedBatch};
use crate::quarantine::Quarantine;
use crate::retry;
use crate::scheduler::{Grant, Scheduler};
use crate::scratch::ScratchDir;
use crate::status::Status;
use crate::supervisor::Supervisor;
use crate::verdict;
use crate::watchdog::{Deadline, Stop, StopCause};

/// What the run produced.
pub struct RunResult {
    /// Setup steps, batches, post steps, each in plan order.
    pub outcomes: Vec<Outcome>,
    /// Why the run was stopped early, if it was.
    pub stopped: Option<StopCause>,
    /// The batches phase's wall time, from its first batch's start to its
    /// last one's end; `None` when no batch started.
    pub makespan: Option<Duration>,
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
        phases(&plan_for_work, supervisor, &tx, stop_for_work, deadline).await
    });
    let mut outcomes = deliver_all(rx, reporter).await;
    let makespan = work.await.ok().flatten();
    // Names are unique across setup, batches and post (the config checks
    // that): one map, so the sort is n log n, not n² (100,000 batches).
    let index: HashMap<&BatchName, usize> = plan
        .units()
        .enumerate()
        .map(|(i, b)| (&b.config.name, i))
        .collect();
    outcomes.sort_by_key(|o| index.get(&o.name).copied());
    RunResult {
        outcomes,
        stopped: stop.borrow().cause(),
        makespan,
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

/// Returns the batches phase's makespan.
async fn phases(
    plan: &Plan,
    sup: Arc<Supervisor>,
    tx: &mpsc::UnboundedSender<Event>,
    stop: watch::Receiver<Stop>,
    deadline: Option<Deadline>,
) -> Option<Duration> {
    // Why nothing more may start: the run was stopped (said first: it is
    // usually also why a setup step failed), or a setup step failed.
    let mut failed_setup = None;
    // Whether anything so far fails the run (for `WARDEN_RUN_STATUS`).
    let mut failed = false;
    let blocked = |failed: &Option<String>| {
        stopped_reason(&stop).or_else(|| failed.as_ref().map(|n| format!("setup step {n} failed")))
    };
    for step in &plan.setup {
        if let Some(why) = blocked(&failed_setup) {
            not_run(tx, step, &why);
            continue;
        }
        let outcome = retry::with_retries(&sup, step, tx, &stop).await;
        if !outcome.status.is_success() {
            failed_setup = Some(outcome.name.to_string());
        }
        failed |= verdict::fails_run(&outcome, plan.flaky);
        finished(tx, outcome);
    }
    let makespan = match failed_setup {
        Some(_) => {
            let why = blocked(&failed_setup).unwrap_or_default();
            for b in &plan.batches {
                not_run(tx, b, &why);
                failed = true;
            }
            None
        }
        None => {
            let (batches_failed, makespan) = batches(plan, &sup, tx, stop.clone()).await;
            failed |= batches_failed;
            makespan
        }
    };
    post(plan, &sup, tx, stop, deadline, failed).await;
    makespan
}

/// Runs the batches in the plan's order as the scheduler lets them start
/// (threads, resources, locks); returns whether one fails the run
/// ([`verdict::fails_run`]), and the time from the first start to the
/// last end.
async fn batches(
    plan: &Plan,
    sup: &Arc<Supervisor>,
    tx: &mpsc::UnboundedSender<Event>,
    mut stop: watch::Receiver<Stop>,
) -> (bool, Option<Duration>) {
    let mut scheduler = Scheduler::new(
        &plan.capacity(),
        plan.batches.iter().map(|b| plan.demand(b)).collect(),
        plan.order.clone(),
    );
    let mut running = JoinSet::new();
    let mut grants: HashMap<tokio::task::Id, Grant> = HashMap::new();
    let mut failed = false;
    let mut announced = false;
    let mut stop_open = true;
    let mut first_start = None;
    loop {
        if let Some(why) = stopped_reason(&stop)
            && !announced
        {
            announced = true;
            let _ = tx.send(Event::Note(stopping_note(*stop.borrow(), running.len())));
            for i in scheduler.drain() {
                not_run(tx, &plan.batches[i], &why);
                failed = true;
            }
        }
        if !announced {
            for grant in scheduler.start_ready() {
                first_start.get_or_insert_with(tokio::time::Instant::now);
                let batch = with_slots(plan, &plan.batches[grant.unit], &grant);
                let (sup, tx, stop) = (sup.clone(), tx.clone(), stop.clone());
                let (quarantine, scratch) = (plan.quarantine.clone(), plan.scratch.clone());
                let flaky = plan.flaky;
                let task = running.spawn(async move {
                    let outcome = run_batch(&sup, batch, &tx, &stop, &scratch, &quarantine).await;
                    let fails = verdict::fails_run(&outcome, flaky);
                    finished(&tx, outcome);
                    fails
                });
                grants.insert(task.id(), grant);
            }
        }
        if running.is_empty() {
            if scheduler.pending() > 0 {
                // Unreachable: every demand fits the capacity (checked by
                // the config and the plan), and nothing holds anything.
                // Said rather than hung on.
                for i in scheduler.drain() {
                    not_run(tx, &plan.batches[i], "not started: could not be scheduled");
                    failed = true;
                }
            }
            break;
        }
        tokio::select! {
            joined = running.join_next_with_id() => {
                let (id, fails) = match joined {
                    Some(Ok((id, fails))) => (id, fails),
                    Some(Err(e)) => (e.id(), true),
                    None => continue,
                };
                failed |= fails;
                if let Some(grant) = grants.remove(&id) {
                    scheduler.release(grant);
                }
            }
            changed = stop.changed(), if stop_open && !announced => {
                stop_open = changed.is_ok();
            }
        }
    }
    (failed, first_start.map(|t| t.elapsed()))
}

/// One batch, from its scratch directory to its final outcome.
async fn run_batch(
    sup: &Arc<Supervisor>,
    mut batch: PlannedBatch,
    tx: &mpsc::UnboundedSender<Event>,
    stop: &watch::Receiver<Stop>,
    scratch: &crate::plan::Scratch,
    quarantine: &Quarantine,
) -> Outcome {
    let dir = match ScratchDir::create(scratch) {
        Ok(dir) => dir,
        Err(e) => {
            let why = format!(
                "cannot create a scratch directory under {}: {e}",
                scratch.root.display()
            );
            return Outcome::new(
                batch.config.name.clone(),
                batch.phase,
                batch.config.kind.clone(),
                batch.log.clone(),
                Status::Failed,
                why,
            );
        }
    };
    let path = dir.path().display().to_string();
    batch.config.env.insert("TMPDIR".into(), path.clone());
    batch.config.env.insert("WARDEN_SCRATCH".into(), path);
    let mut outcome = retry::with_retries(sup, &batch, tx, stop).await;
    quarantine.mark(&mut outcome);
    dir.finish(scratch.keep, &mut outcome);
    outcome
}

/// The batch with `WARDEN_SLOT` and, per resource it holds,
/// `WARDEN_SLOT_<R>` (its first unit's number) and `WARDEN_SLOTS_<R>` (all).
fn with_slots(plan: &Plan, batch: &PlannedBatch, grant: &Grant) -> PlannedBatch {
    let mut batch = batch.clone();
    let env = &mut batch.config.env;
    env.insert("WARDEN_SLOT".into(), grant.slot.to_string());
    for (r, slots) in &grant.resource_slots {
        let Some(resource) = plan.resources.get(*r) else {
            continue;
        };
        let var = slot_variable(&resource.name);
        if let Some(first) = slots.first() {
            env.insert(var.clone(), first.to_string());
        }
        let all: Vec<String> = slots.iter().map(u32::to_string).collect();
        env.insert(
            var.replacen("WARDEN_SLOT_", "WARDEN_SLOTS_", 1),
            all.join(" "),
        );
    }
    batch
}

/// The post steps: always, in order, each within what is left of the
/// reserve; only a second stop request skips them.
async fn post(
    plan: &Plan,
    sup: &Arc<Supervisor>,
    tx: &mpsc::UnboundedSender<Event>,
    stop: watch::Receiver<Stop>,
    deadline: Option<Deadline>,
    failed: bool,
) {
    let run_status = verdict::decide(stop.borrow().cause(), failed).status;
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
            .insert("WARDEN_RUN_STATUS".into(), run_status.as_str().into());
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
        let outcome = retry::with_retries(sup, &step, tx, &stop).await;
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
        Outcome::new(
            unit.config.name.clone(),
            unit.phase,
            unit.config.kind.clone(),
            unit.log.clone(),
            Status::NotRun,
            why.to_string(),
        ),
    );
}
