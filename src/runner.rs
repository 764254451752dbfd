//! The dispatcher: owns the run's state and drives its three phases —
//! setup steps one by one, batches within `max-parallel` in plan order,
//! post steps one by one — and is the one way out of the run: its workers
//! (supervisors, retries, its own scheduling task) send it
//! [`Message`]s; it turns each into an [`Event`], in the order they came,
//! and hands every event to every reporter. Reporters only consume
//! events; they never drive execution.
//!
//! The stop state (watchdog.rs) is watched throughout: once stopping, no
//! new setup step or batch starts (each is reported `not-run` with the
//! reason), running ones are terminated by their supervisors, and the post
//! steps still run inside the reserve, unless a second stop request said to
//! kill everything now.

use std::sync::Arc;
use std::time::Duration;

use std::collections::{HashMap, HashSet};

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{BatchName, slot_variable};
use crate::event::{Event, Reporter, Retry, RunResult};
use crate::fail_fast::Tally;
use crate::message::{self, Message};
use crate::outcome::Outcome;
use crate::plan::{Plan, PlannedBatch};
use crate::quarantine::Quarantine;
use crate::queue::{Claim, Queue};
use crate::retry;
use crate::scheduler::alone::{Alone, AloneHandle};
use crate::scheduler::{Grant, Scheduler};
use crate::scratch::ScratchDir;
use crate::status::Status;
use crate::supervisor::Supervisor;
use crate::verdict;
use crate::watchdog::{Deadline, Stop, StopCause};

/// Post steps leave this much of the reserve (a tenth, at most 2s) for the reports.
fn report_margin(reserve: Duration) -> Duration {
    (reserve / 10).min(Duration::from_secs(2))
}

/// Runs the plan, telling `reporters` (each event to each, in the order
/// given) as it goes and, at the end, the outcomes in plan order.
pub async fn run(
    plan: &Plan,
    supervisor: Arc<Supervisor>,
    reporters: &mut [&mut dyn Reporter],
    stop: watch::Receiver<Stop>,
    deadline: Option<Deadline>,
) -> RunResult {
    run_with(plan, supervisor, reporters, stop, deadline, None).await
}

/// [`run`], with the batches taken from a shared queue (queue mode) instead
/// of the plan's order when `queue` is given: see [`queued_batches`].
pub async fn run_with(
    plan: &Plan,
    supervisor: Arc<Supervisor>,
    reporters: &mut [&mut dyn Reporter],
    watchdog_stop: watch::Receiver<Stop>,
    deadline: Option<Deadline>,
    queue: Option<Arc<Queue>>,
) -> RunResult {
    let (tx, rx) = message::channel();
    let plan_for_work = plan.clone();
    // The run's own stop state: the watchdog's, and `--max-fail
    // N:terminate`'s (fail_fast.rs), one state every part of the run obeys.
    let (run_stop, stop) = watch::channel(*watchdog_stop.borrow());
    let run_stop = Arc::new(run_stop);
    let forwarding = tokio::spawn(forward(watchdog_stop, run_stop.clone()));
    let stop_for_work = stop.clone();
    let work = tokio::spawn(async move {
        phases(
            &plan_for_work,
            supervisor,
            &tx,
            (stop_for_work, &run_stop),
            deadline,
            queue,
        )
        .await
    });
    let mut failures = Failures::new(plan.retry_max_failures);
    let mut outcomes = deliver_all(rx, reporters, &mut failures).await;
    let (makespan, max_fail) = work.await.unwrap_or_default();
    forwarding.abort();
    // Names are unique across setup, batches and post (the config checks
    // that): one map, so the sort is n log n, not n² (100,000 batches).
    let index: HashMap<&BatchName, usize> = plan
        .units()
        .enumerate()
        .map(|(i, b)| (&b.config.name, i))
        .collect();
    outcomes.sort_by_key(|o| index.get(&o.name).copied());
    let result = RunResult {
        outcomes,
        stopped: stop.borrow().cause(),
        makespan,
        notes: failures.summary().into_iter().chain(max_fail).collect(),
    };
    for r in reporters.iter_mut() {
        r.finish(&result);
    }
    result
}

/// Keeps `run` at the watchdog's state whenever the watchdog has stopped
/// the run: a deadline or a signal outranks a max-fail stop (their exit
/// codes say more), and a second signal still kills everything at once.
async fn forward(mut watchdog: watch::Receiver<Stop>, run: Arc<watch::Sender<Stop>>) {
    loop {
        let now = *watchdog.borrow_and_update();
        if now != Stop::Running {
            run.send_replace(now);
        }
        if watchdog.changed().await.is_err() {
            return;
        }
    }
}

/// Turns messages into events for the reporters until every sender is
/// gone; returns the outcomes in the order they finished.
async fn deliver_all(
    mut rx: message::Receiver,
    reporters: &mut [&mut dyn Reporter],
    failures: &mut Failures,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut again: Option<tokio::time::Instant> = None;
    loop {
        let message = match again {
            Some(at) => tokio::select! {
                message = rx.recv() => message,
                _ = tokio::time::sleep_until(at) => {
                    again = flush(reporters, false);
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(message) = message else { break };
        for event in events(message, failures) {
            deliver(event, reporters, &mut outcomes);
        }
        while let Ok(message) = rx.try_recv() {
            for event in events(message, failures) {
                deliver(event, reporters, &mut outcomes);
            }
        }
        again = flush(reporters, false);
    }
    while again.is_some() {
        again = flush(reporters, true);
    }
    outcomes
}

/// The run's failures, which cap the retries (`[run] retry-max-failures`,
/// as gotestsum's `--rerun-fails-max-failures`): once more than the cap
/// have failed, a retry is a waste of the time the real failures need.
/// The dispatcher's own state, kept as the messages come: each unit's
/// failures count once, from its first failed attempt (a retry asks
/// before it starts) or its end.
struct Failures {
    cap: Option<u64>,
    /// Failed tests, and units that failed without tests.
    count: u64,
    /// The units counted (few: only failed ones).
    counted: HashSet<BatchName>,
    /// Retries not started for the cap.
    refused: u64,
}

impl Failures {
    fn new(cap: Option<u64>) -> Failures {
        Failures {
            cap,
            count: 0,
            counted: HashSet::new(),
            refused: 0,
        }
    }

    /// Counts `n` failures of unit `name`, unless it is counted already.
    fn add(&mut self, name: &BatchName, n: u64) {
        if n > 0 && !self.counted.contains(name) {
            self.counted.insert(name.clone());
            self.count = self.count.saturating_add(n);
        }
    }

    /// Whether retries may still start; if not, why.
    fn refusal(&self) -> Option<String> {
        let cap = self.cap?;
        (self.count > cap).then(|| {
            format!(
                "too many failures to retry: {} failed (retry-max-failures = {cap})",
                self.count
            )
        })
    }

    /// The summary's line, when retries were refused.
    fn summary(&self) -> Option<String> {
        let why = self.refusal().filter(|_| self.refused > 0)?;
        let n = self.refused;
        Some(format!(
            "Retries: {why}; {n} {} not started",
            if n == 1 { "retry" } else { "retries" }
        ))
    }
}

/// What the reporters hear of a message, in order; a retry is answered
/// here. A retry that goes ahead is two events: the failed attempt
/// ([`Event::Retrying`]) and the note that says so.
fn events(message: Message, failures: &mut Failures) -> Vec<Event> {
    match message {
        Message::Started {
            name,
            at,
            slot,
            attempt,
            attempts,
        } => vec![Event::Started {
            name,
            at,
            slot,
            attempt,
            attempts,
        }],
        Message::Test {
            name,
            attempt,
            result,
        } => vec![Event::TestResult {
            batch: name,
            attempt,
            result,
        }],
        Message::Finished(outcome) => {
            failures.add(&outcome.name, retry::failures(&outcome));
            vec![Event::Finished(outcome)]
        }
        Message::Terminated { name, how } => vec![Event::Note(format!("warden: {name}: {how}"))],
        Message::Retrying {
            retry,
            backoff,
            failures: n,
            alone,
            answer,
        } => {
            failures.add(&retry.name, n);
            let refusal = failures.refusal();
            let retrying = refusal.is_none();
            let _ = answer.send(retrying);
            let Retry {
                name,
                attempt,
                attempts,
                status,
                reason,
                ..
            } = &*retry;
            let failed =
                format!("warden: {name}: attempt {attempt} of {attempts} {status} ({reason})");
            let note = Event::Note(match refusal {
                Some(why) => {
                    failures.refused += 1;
                    format!("{failed}: not retried: {why}")
                }
                None => {
                    let backoff = (!backoff.is_zero()).then(|| crate::duration::exact(backoff));
                    match (alone, backoff) {
                        (false, None) => format!("{failed}: retrying"),
                        (false, Some(b)) => format!("{failed}: retrying in {b}"),
                        (true, None) => format!(
                            "{failed}: retrying alone, once the other running batches have ended"
                        ),
                        (true, Some(b)) => format!(
                            "{failed}: retrying alone, {b} after the other running batches have ended"
                        ),
                    }
                }
            });
            if retrying {
                vec![Event::Retrying(retry), note]
            } else {
                // This attempt is the unit's last: its Finished says it.
                vec![note]
            }
        }
        Message::Stopping { stop, running } => vec![Event::Note(stopping_note(stop, running))],
    }
}

/// Hands `event` to every reporter; keeps a finished unit's outcome (moved,
/// never copied: it may hold a million tests).
fn deliver(event: Event, reporters: &mut [&mut dyn Reporter], outcomes: &mut Vec<Outcome>) {
    tell(reporters, &event);
    if let Event::Finished(outcome) = event {
        outcomes.push(*outcome);
    }
}

/// Flushes every reporter (`now`: the run is over, nothing is postponed),
/// then hands every reporter the notes they made; returns the earliest
/// time one asked to be flushed again.
fn flush(reporters: &mut [&mut dyn Reporter], now: bool) -> Option<tokio::time::Instant> {
    let mut notes = Vec::new();
    let mut again: Option<tokio::time::Instant> = None;
    for r in reporters.iter_mut() {
        let asked = if now {
            r.flush_now(&mut notes)
        } else {
            r.flush(&mut notes)
        };
        again = match (again, asked) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    for note in notes {
        tell(reporters, &Event::Note(note));
    }
    again
}

/// Every reporter hears `event`, in the order they were given.
fn tell(reporters: &mut [&mut dyn Reporter], event: &Event) {
    for r in reporters.iter_mut() {
        r.on_event(event);
    }
}

/// Returns the batches phase's makespan, and the summary's max-fail line.
async fn phases(
    plan: &Plan,
    sup: Arc<Supervisor>,
    tx: &message::Sender,
    (stop, run_stop): (watch::Receiver<Stop>, &watch::Sender<Stop>),
    deadline: Option<Deadline>,
    queue: Option<Arc<Queue>>,
) -> (Option<Duration>, Option<String>) {
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
    let mut tally = plan.max_fail.map(Tally::new);
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
            let stops = (stop.clone(), run_stop);
            let (batches_failed, makespan) = match queue {
                None => batches(plan, &sup, tx, stops, &mut tally).await,
                Some(q) => queued_batches(plan, &sup, tx, stops, q, &mut tally).await,
            };
            failed |= batches_failed;
            makespan
        }
    };
    post(plan, &sup, tx, stop, deadline, failed).await;
    (makespan, tally.and_then(|t| t.summary()))
}

/// Counts a finished batch against `--max-fail`; with `N:terminate`, the
/// batch that reaches the limit stops the run's running batches the way a
/// deadline does (the run's stop state), unless it is stopping already.
fn count_failed(tally: &mut Option<Tally>, fails: bool, run_stop: &watch::Sender<Stop>) {
    let Some(t) = tally else { return };
    if t.add(fails) && t.terminate() {
        let cause = t.cause();
        run_stop.send_if_modified(|s| {
            let running = *s == Stop::Running;
            if running {
                *s = Stop::Stopping {
                    cause,
                    grace_cap: None,
                };
            }
            running
        });
    }
}

/// Once `--max-fail` is reached (and the run is not stopping otherwise):
/// says so, and reports every batch not started yet `not-run`. Returns the
/// batches taken from the scheduler, for queue mode to give them back.
fn close_on_max_fail(
    tally: &mut Option<Tally>,
    scheduler: &mut Scheduler,
    plan: &Plan,
    tx: &message::Sender,
    running: usize,
) -> Vec<usize> {
    let Some(t) = tally.as_mut().filter(|t| t.reached()) else {
        return Vec::new();
    };
    let cause = t.cause();
    tx.send(Message::Stopping {
        stop: Stop::Stopping {
            cause,
            grace_cap: None,
        },
        running,
    });
    let drained = scheduler.drain();
    for &i in &drained {
        not_run(tx, &plan.batches[i], &format!("not started: {cause}"));
    }
    t.not_started += drained.len() as u64;
    drained
}

/// Runs the batches in the plan's order as the scheduler lets them start
/// (threads, resources, locks, memory), holding new starts while a batch
/// the OOM killer killed waits to be retried alone (`scheduler::alone`);
/// returns whether one fails the run
/// ([`verdict::fails_run`]), and the time from the first start to the
/// last end.
async fn batches(
    plan: &Plan,
    sup: &Arc<Supervisor>,
    tx: &message::Sender,
    (mut stop, run_stop): (watch::Receiver<Stop>, &watch::Sender<Stop>),
    tally: &mut Option<Tally>,
) -> (bool, Option<Duration>) {
    let mut scheduler = Scheduler::new(
        &plan.capacity(),
        plan.batches.iter().map(|b| plan.demand(b)).collect(),
        plan.order.clone(),
    );
    let mut running = JoinSet::new();
    let mut grants: HashMap<tokio::task::Id, Grant> = HashMap::new();
    let (alone_tx, mut alone_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut alone: Alone<tokio::sync::oneshot::Sender<()>> = Alone::default();
    let mut failed = false;
    let mut announced = false;
    // `--max-fail` reached: nothing more starts.
    let mut closed = false;
    let mut stop_open = true;
    let mut first_start = None;
    loop {
        if let Some(why) = stopped_reason(&stop)
            && !announced
        {
            announced = true;
            tx.send(Message::Stopping {
                stop: *stop.borrow(),
                running: running.len(),
            });
            let drained = scheduler.drain();
            if let Some(t) = tally.as_mut().filter(|t| t.reached()) {
                t.not_started += drained.len() as u64;
            }
            for i in drained {
                not_run(tx, &plan.batches[i], &why);
                failed = true;
            }
        }
        if !announced && !closed && tally.as_ref().is_some_and(Tally::reached) {
            closed = true;
            failed |= !close_on_max_fail(tally, &mut scheduler, plan, tx, running.len()).is_empty();
        }
        if !announced && !closed && !alone.holds_starts() {
            for grant in scheduler.start_ready() {
                first_start.get_or_insert_with(tokio::time::Instant::now);
                let batch = with_slots(plan, &plan.batches[grant.unit], &grant);
                let (sup, tx, stop) = (sup.clone(), tx.clone(), stop.clone());
                let (quarantine, scratch) = (plan.quarantine.clone(), plan.scratch.clone());
                let flaky = plan.flaky;
                let handle = AloneHandle::new(grant.unit, alone_tx.clone());
                let task = running.spawn(async move {
                    let outcome =
                        run_batch(&sup, batch, &tx, &stop, &scratch, &quarantine, &handle).await;
                    let fails = verdict::fails_run(&outcome, flaky);
                    finished(&tx, outcome);
                    fails
                });
                grants.insert(task.id(), grant);
            }
        }
        if let Some(granted) = alone.next(running.len()) {
            let _ = granted.send(());
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
                count_failed(tally, fails, run_stop);
                if let Some(grant) = grants.remove(&id) {
                    alone.ended(grant.unit);
                    scheduler.release(grant);
                }
            }
            Some(request) = alone_rx.recv() => {
                alone.request(request.unit, request.granted);
            }
            changed = stop.changed(), if stop_open && !announced => {
                stop_open = changed.is_ok();
            }
        }
    }
    (failed, first_start.map(|t| t.elapsed()))
}

/// Queue mode: the batches this machine claims from the shared queue, one
/// at a time, whenever nothing claimed waits to start and a thread of
/// `max-parallel` is free; the scheduler then starts each as it would in
/// plan order (resources, locks, memory). Each runs with its own stop
/// state: the run's, or a stop when its lease is lost (it must not run
/// on, another machine may have it) — then its outcome is `not-run`, and
/// not the queue's result. A claimed batch this machine does not run (a
/// stop) goes back to the queue at once. Ends when the queue has nothing
/// left that is not done: a batch another machine holds may yet come
/// back when its lease expires. Returns as [`batches`] does.
async fn queued_batches(
    plan: &Plan,
    sup: &Arc<Supervisor>,
    tx: &message::Sender,
    (mut stop, run_stop): (watch::Receiver<Stop>, &watch::Sender<Stop>),
    queue: Arc<Queue>,
    tally: &mut Option<Tally>,
) -> (bool, Option<Duration>) {
    let mut scheduler = Scheduler::new(
        &plan.capacity(),
        plan.batches.iter().map(|b| plan.demand(b)).collect(),
        Vec::new(),
    );
    let index: HashMap<&str, usize> = plan
        .batches
        .iter()
        .enumerate()
        .map(|(i, b)| (b.config.name.as_str(), i))
        .collect();
    let renewing = queue.renew_in_background();
    let mut claimed: HashMap<usize, (Option<String>, watch::Receiver<bool>)> = HashMap::new();
    let mut running = JoinSet::new();
    let mut grants: HashMap<tokio::task::Id, Grant> = HashMap::new();
    let (alone_tx, mut alone_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut alone: Alone<tokio::sync::oneshot::Sender<()>> = Alone::default();
    let mut failed = false;
    let mut announced = false;
    let mut stop_open = true;
    let mut first_start = None;
    // Its own batches' last end: the wait for the other machines at the
    // end is not this machine's makespan.
    let mut last_end = None;
    // `Some(at)`: nothing to claim until then; `None` at the end: empty.
    let mut open = true;
    let mut ask_at: Option<tokio::time::Instant> = None;
    // Since when every claim has failed: a store gone for good must not
    // hold this machine forever.
    let mut failing_since: Option<tokio::time::Instant> = None;
    loop {
        if let Some(why) = stopped_reason(&stop)
            && !announced
        {
            announced = true;
            tx.send(Message::Stopping {
                stop: *stop.borrow(),
                running: running.len(),
            });
            let drained = scheduler.drain();
            if let Some(t) = tally.as_mut().filter(|t| t.reached()) {
                t.not_started += drained.len() as u64;
            }
            for i in drained {
                let b = &plan.batches[i];
                claimed.remove(&i);
                let _ = queue.release(b.config.name.as_str()).await;
                not_run(tx, b, &why);
            }
        }
        // `--max-fail` reached: this machine claims nothing more, and gives
        // back what it claimed but did not start (another machine may run it).
        if open && !announced && tally.as_ref().is_some_and(Tally::reached) {
            open = false;
            for i in close_on_max_fail(tally, &mut scheduler, plan, tx, running.len()) {
                claimed.remove(&i);
                let _ = queue.release(plan.batches[i].config.name.as_str()).await;
            }
        }
        while open
            && ask_at.is_none_or(|at| tokio::time::Instant::now() >= at)
            && !announced
            && !alone.holds_starts()
            && scheduler.pending() == 0
            && scheduler.free_threads() > 0
        {
            ask_at = None;
            let claim = queue.claim().await;
            if claim.is_ok() {
                failing_since = None;
            }
            match claim {
                Ok(Claim::Batch { name, rerun, lost }) => {
                    let Some(&i) = index.get(name.as_str()) else {
                        // Unreachable: the fingerprint says the queue holds
                        // this config's batches. Given back rather than lost.
                        let _ = queue.release(&name).await;
                        ask_at = Some(tokio::time::Instant::now() + queue.poll());
                        continue;
                    };
                    if let Some(note) = &rerun {
                        tx.send(Message::Terminated {
                            name: plan.batches[i].config.name.clone(),
                            how: note.clone(),
                        });
                    }
                    claimed.insert(i, (rerun, lost));
                    scheduler.push(i);
                    break;
                }
                Ok(Claim::Wait) => {
                    ask_at = Some(tokio::time::Instant::now() + queue.poll());
                }
                Ok(Claim::Empty) => open = false,
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                    let Ok(name) = BatchName::new("queue") else {
                        break;
                    };
                    if since.elapsed() < queue.give_up() {
                        tx.send(Message::Terminated {
                            name,
                            how: format!("cannot claim from {}: {e}; asking again", queue.key()),
                        });
                        ask_at = Some(tokio::time::Instant::now() + queue.poll());
                        continue;
                    }
                    // The run fails: this machine stopped before the queue
                    // was empty (`warden report` says what is left).
                    open = false;
                    failed = true;
                    finished(
                        tx,
                        Outcome::new(
                            name,
                            crate::phase::Phase::Batch,
                            None,
                            std::path::PathBuf::new(),
                            Status::NotRun,
                            format!(
                                "stopped claiming from {}: its store failed every claim for {} \
                                 ({e}); what is left stays in the queue",
                                queue.key(),
                                crate::duration::rounded(since.elapsed())
                            ),
                        ),
                    );
                }
            }
        }
        if !announced && !alone.holds_starts() {
            for grant in scheduler.start_ready() {
                first_start.get_or_insert_with(tokio::time::Instant::now);
                let batch = with_slots(plan, &plan.batches[grant.unit], &grant);
                let (rerun, mut lost) = claimed
                    .remove(&grant.unit)
                    .unwrap_or_else(|| (None, watch::channel(false).1));
                let (sup, tx, mut stop) = (sup.clone(), tx.clone(), stop.clone());
                let (quarantine, scratch) = (plan.quarantine.clone(), plan.scratch.clone());
                let flaky = plan.flaky;
                let handle = AloneHandle::new(grant.unit, alone_tx.clone());
                let queue = queue.clone();
                let task = running.spawn(async move {
                    // This batch's own stop: the run's, or its lease lost.
                    let (own_tx, own) = watch::channel(*stop.borrow());
                    let grace = queue.grace();
                    let forward = async {
                        let (mut stop_open, mut lost_open) = (true, true);
                        loop {
                            tokio::select! {
                                r = stop.changed(), if stop_open => match r {
                                    Ok(()) => { own_tx.send_replace(*stop.borrow()); }
                                    Err(_) => stop_open = false,
                                },
                                r = lost.changed(), if lost_open => match r {
                                    Ok(()) if *lost.borrow() => {
                                        if *own_tx.borrow() == Stop::Running {
                                            own_tx.send_replace(Stop::Stopping {
                                                cause: StopCause::Lease,
                                                grace_cap: Some(grace),
                                            });
                                        }
                                    }
                                    Ok(()) => {}
                                    Err(_) => lost_open = false,
                                },
                                else => std::future::pending::<()>().await,
                            }
                        }
                    };
                    let work = run_batch(&sup, batch, &tx, &own, &scratch, &quarantine, &handle);
                    let mut outcome = tokio::select! {
                        o = work => o,
                        () = forward => unreachable!("forwarding never ends"),
                    };
                    if let Some(note) = rerun {
                        outcome.warnings.push(note);
                    }
                    let name = outcome.name.to_string();
                    let lease_lost = *lost.borrow();
                    let kept = if lease_lost {
                        Ok(false)
                    } else if matches!(outcome.status, Status::NotRun | Status::Interrupted) {
                        // Stopped by this machine: another one may run it.
                        queue.release(&name).await.map(|()| true)
                    } else {
                        queue
                            .finish(
                                &name,
                                outcome.status.as_str(),
                                &outcome.reason,
                                outcome.duration,
                            )
                            .await
                    };
                    match kept {
                        Ok(true) => {}
                        Ok(false) => {
                            outcome.status = Status::NotRun;
                            outcome.reason = format!(
                                "stopped: its lease in queue {} was lost (not renewed in time); \
                                 its result is the machine's that runs it next ({})",
                                queue.key(),
                                outcome.reason
                            );
                            outcome.tests.clear();
                        }
                        Err(e) => outcome.warnings.push(format!(
                            "its result could not be written to queue {}: {e}; \
                             it goes back to the queue when its lease expires",
                            queue.key()
                        )),
                    }
                    let fails = verdict::fails_run(&outcome, flaky);
                    finished(&tx, outcome);
                    fails
                });
                grants.insert(task.id(), grant);
            }
        }
        if let Some(granted) = alone.next(running.len()) {
            let _ = granted.send(());
        }
        if running.is_empty() && (!open || announced) && scheduler.pending() == 0 {
            break;
        }
        let wake = ask_at.filter(|_| open && !announced);
        tokio::select! {
            joined = running.join_next_with_id(), if !running.is_empty() => {
                let (id, fails) = match joined {
                    Some(Ok((id, fails))) => (id, fails),
                    Some(Err(e)) => (e.id(), true),
                    None => continue,
                };
                failed |= fails;
                count_failed(tally, fails, run_stop);
                last_end = Some(tokio::time::Instant::now());
                if let Some(grant) = grants.remove(&id) {
                    alone.ended(grant.unit);
                    scheduler.release(grant);
                }
            }
            Some(request) = alone_rx.recv() => {
                alone.request(request.unit, request.granted);
            }
            changed = stop.changed(), if stop_open && !announced => {
                stop_open = changed.is_ok();
            }
            () = sleep_until_some(wake) => {}
        }
    }
    renewing.abort();
    (failed, first_start.zip(last_end).map(|(a, b)| b - a))
}

/// Sleeps until `at`, or forever.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One batch, from its scratch directory to its final outcome.
async fn run_batch(
    sup: &Arc<Supervisor>,
    mut batch: PlannedBatch,
    tx: &message::Sender,
    stop: &watch::Receiver<Stop>,
    scratch: &crate::plan::Scratch,
    quarantine: &Quarantine,
    alone: &AloneHandle,
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
    let mut outcome = retry::with_retries_alone_on_oom(sup, &batch, tx, stop, Some(alone)).await;
    quarantine.mark(&mut outcome);
    dir.finish(scratch.keep, &mut outcome);
    outcome
}

/// The batch with `WARDEN_SLOT` and, per resource it holds,
/// `WARDEN_SLOT_<R>` (its first unit's number) and `WARDEN_SLOTS_<R>` (all).
fn with_slots(plan: &Plan, batch: &PlannedBatch, grant: &Grant) -> PlannedBatch {
    let mut batch = batch.clone();
    batch.slot = Some(grant.slot);
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
    tx: &message::Sender,
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
    let cause = stop.cause().map(|c| c.to_string()).unwrap_or_default();
    if let Some(StopCause::MaxFail {
        terminate: false, ..
    }) = stop.cause()
    {
        return match running {
            0 => format!("warden: {cause}: no new batch starts"),
            1 => format!("warden: {cause}: no new batch starts; 1 running batch finishes"),
            n => format!("warden: {cause}: no new batch starts; {n} running batches finish"),
        };
    }
    let batches = if running == 1 { "batch" } else { "batches" };
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

fn finished(tx: &message::Sender, outcome: Outcome) {
    tx.send(Message::Finished(Box::new(outcome)));
}

fn not_run(tx: &message::Sender, unit: &PlannedBatch, why: &str) {
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
#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Instant;

    use super::*;
    use crate::phase::Phase;

    fn name(s: &str) -> BatchName {
        BatchName::new(s).expect("test names are valid")
    }

    /// A failed attempt that asks to be retried.
    fn retry(
        name: BatchName,
        attempt: u32,
        attempts: u32,
        status: Status,
        reason: &str,
    ) -> Box<Retry> {
        Box::new(Retry {
            name,
            attempt,
            attempts,
            status,
            reason: reason.to_owned(),
            exit: None,
            started: std::time::SystemTime::now(),
            duration: Duration::from_secs(1),
            log: PathBuf::from("/nonexistent/warden-test.attempt-1.log"),
            usage: None,
        })
    }

    fn outcome(s: &str) -> Outcome {
        Outcome::new(
            name(s),
            Phase::Batch,
            None,
            PathBuf::from("/nonexistent/warden-test.log"),
            Status::Failed,
            "exit code 1".into(),
        )
    }

    /// Writes down what it hears; says `says` at its first flush; asks to
    /// be flushed again once, after `again`, and tells `flushed` when it is.
    #[derive(Default)]
    struct Listener {
        heard: Vec<String>,
        says: Vec<String>,
        again: Option<Duration>,
        flushed: Option<tokio::sync::oneshot::Sender<()>>,
        flushes: usize,
        flushed_now: usize,
    }

    impl Reporter for Listener {
        fn on_event(&mut self, event: &Event) {
            self.heard.push(match event {
                Event::Started { name, .. } => format!("start {name}"),
                Event::Retrying(r) => format!("attempt {} of {} ended", r.attempt, r.name),
                Event::Finished(o) => format!("finish {}", o.name),
                Event::TestResult { batch, result, .. } => {
                    format!("test {batch}/{}", result.name())
                }
                Event::Note(line) => line.clone(),
            });
        }

        fn flush(&mut self, notes: &mut Vec<String>) -> Option<tokio::time::Instant> {
            self.flushes += 1;
            notes.append(&mut self.says);
            if self.flushes == 2
                && let Some(tx) = self.flushed.take()
            {
                let _ = tx.send(());
            }
            self.again.take().map(|d| tokio::time::Instant::now() + d)
        }

        fn flush_now(&mut self, notes: &mut Vec<String>) -> Option<tokio::time::Instant> {
            self.flushed_now += 1;
            self.flush(notes)
        }
    }

    #[tokio::test]
    async fn every_reporter_hears_every_message_as_an_event_in_order() {
        let (tx, rx) = message::channel();
        tx.send(Message::Started {
            name: name("a"),
            at: Instant::now(),
            slot: Some(0),
            attempt: 1,
            attempts: 3,
        });
        tx.send(Message::Retrying {
            retry: retry(name("a"), 1, 3, Status::Failed, "exit code 1"),
            backoff: Duration::from_millis(300),
            failures: 1,
            alone: false,
            answer: tokio::sync::oneshot::channel().0,
        });
        tx.send(Message::Retrying {
            retry: retry(name("a"), 2, 3, Status::TimedOut, "timed out after 1s"),
            backoff: Duration::ZERO,
            failures: 1,
            alone: false,
            answer: tokio::sync::oneshot::channel().0,
        });
        tx.send(Message::Terminated {
            name: name("a"),
            how: "exited within grace".into(),
        });
        tx.send(Message::Finished(Box::new(outcome("a"))));
        drop(tx);
        let (mut first, mut second) = (Listener::default(), Listener::default());
        let outcomes =
            deliver_all(rx, &mut [&mut first, &mut second], &mut Failures::new(None)).await;
        let expected = [
            "start a",
            "attempt 1 of a ended",
            "warden: a: attempt 1 of 3 failed (exit code 1): retrying in 300ms",
            "attempt 2 of a ended",
            "warden: a: attempt 2 of 3 timed-out (timed out after 1s): retrying",
            "warden: a: exited within grace",
            "finish a",
        ];
        assert_eq!(first.heard, expected);
        assert_eq!(second.heard, expected);
        assert_eq!(outcomes.len(), 1);
    }

    /// An OOM-killed attempt's retry says it waits to run alone.
    #[tokio::test]
    async fn an_alone_retry_says_so() {
        let (tx, rx) = message::channel();
        for backoff in [Duration::ZERO, Duration::from_secs(2)] {
            tx.send(Message::Retrying {
                retry: retry(
                    name("vm"),
                    1,
                    2,
                    Status::Crashed,
                    "killed by the OOM killer at its 64M memory limit (peak 64.0M)",
                ),
                backoff,
                failures: 1,
                alone: true,
                answer: tokio::sync::oneshot::channel().0,
            });
        }
        drop(tx);
        let mut heard = Listener::default();
        deliver_all(rx, &mut [&mut heard], &mut Failures::new(None)).await;
        let failed = "warden: vm: attempt 1 of 2 crashed (killed by the OOM killer at its 64M \
                      memory limit (peak 64.0M))";
        let notes: Vec<&String> = heard
            .heard
            .iter()
            .filter(|l| l.starts_with("warden:"))
            .collect();
        assert_eq!(
            notes,
            [
                &format!("{failed}: retrying alone, once the other running batches have ended"),
                &format!("{failed}: retrying alone, 2s after the other running batches have ended"),
            ]
        );
    }

    #[tokio::test]
    async fn a_reporters_notes_reach_every_reporter() {
        let (tx, rx) = message::channel();
        tx.send(Message::Finished(Box::new(outcome("a"))));
        drop(tx);
        let mut troubled = Listener {
            says: vec!["warden: history: the store is down".into()],
            ..Listener::default()
        };
        let mut other = Listener::default();
        deliver_all(
            rx,
            &mut [&mut troubled, &mut other],
            &mut Failures::new(None),
        )
        .await;
        let expected = ["finish a", "warden: history: the store is down"];
        assert_eq!(troubled.heard, expected);
        assert_eq!(other.heard, expected);
    }

    /// A reporter that postponed work is flushed again when it asked, even
    /// with no event coming, and once more, at once, when the run is over.
    #[tokio::test]
    async fn postponed_flushes_happen() {
        let (tx, rx) = message::channel();
        let (flushed, was_flushed) = tokio::sync::oneshot::channel();
        let mut slow = Listener {
            again: Some(Duration::from_millis(20)),
            flushed: Some(flushed),
            ..Listener::default()
        };
        let mut other = Listener::default();
        let sender = tokio::spawn(async move {
            tx.send(Message::Finished(Box::new(outcome("a"))));
            // Nothing more comes until the flush it asked for happened.
            let _ = was_flushed.await;
            tx.send(Message::Finished(Box::new(outcome("b"))));
        });
        let reporters: &mut [&mut dyn Reporter] = &mut [&mut slow, &mut other];
        let mut failures = Failures::new(None);
        let delivered = deliver_all(rx, reporters, &mut failures);
        tokio::time::timeout(Duration::from_secs(60), delivered)
            .await
            .expect("flushed when asked, not only when an event came");
        sender.await.expect("sender ran");
        // After a, by the timer, after b.
        assert_eq!(slow.flushes, 3);
        assert_eq!(slow.flushed_now, 0);

        let (tx, rx) = message::channel();
        tx.send(Message::Finished(Box::new(outcome("a"))));
        drop(tx);
        let mut slow = Listener {
            again: Some(Duration::from_secs(3600)),
            ..Listener::default()
        };
        let reporters: &mut [&mut dyn Reporter] = &mut [&mut slow];
        let mut failures = Failures::new(None);
        let delivered = deliver_all(rx, reporters, &mut failures);
        tokio::time::timeout(Duration::from_secs(60), delivered)
            .await
            .expect("the end does not wait for the hour");
        assert_eq!(slow.flushed_now, 1);
    }

    /// Once more than the cap have failed, retries are refused, said as a
    /// note and in the summary's line; each unit counts once.
    #[tokio::test]
    async fn retries_stop_once_too_many_failed() {
        let (tx, rx) = message::channel();
        let mut answers = Vec::new();
        for (unit, failures) in [("a", 2), ("a", 5), ("b", 1)] {
            let (answer, allowed) = tokio::sync::oneshot::channel();
            tx.send(Message::Retrying {
                retry: retry(name(unit), 1, 3, Status::Failed, "exit code 1"),
                backoff: Duration::ZERO,
                failures,
                alone: false,
                answer,
            });
            answers.push(allowed);
        }
        // A unit without retries counts at its end; a retried one is not
        // counted again.
        let mut c = outcome("c");
        c.status = Status::Failed;
        tx.send(Message::Finished(Box::new(c)));
        let mut a = outcome("a");
        a.status = Status::Failed;
        tx.send(Message::Finished(Box::new(a)));
        let (answer, allowed) = tokio::sync::oneshot::channel();
        tx.send(Message::Retrying {
            retry: retry(name("d"), 1, 2, Status::Crashed, "killed by SIGSEGV"),
            backoff: Duration::ZERO,
            failures: 1,
            alone: false,
            answer,
        });
        answers.push(allowed);
        drop(tx);
        let mut failures = Failures::new(Some(3));
        let mut heard = Listener::default();
        deliver_all(rx, &mut [&mut heard], &mut failures).await;
        let mut allowed = Vec::new();
        for a in answers {
            allowed.push(a.await.unwrap());
        }
        // a: 2 failed (≤ 3); a again: not recounted; b: 3 (≤ 3); c ends
        // failed: 4; d: 5 > 3.
        assert_eq!(allowed, [true, true, true, false]);
        assert_eq!(
            heard.heard.last().unwrap(),
            "warden: d: attempt 1 of 2 crashed (killed by SIGSEGV): not retried: \
             too many failures to retry: 5 failed (retry-max-failures = 3)"
        );
        assert_eq!(
            failures.summary().unwrap(),
            "Retries: too many failures to retry: 5 failed (retry-max-failures = 3); \
             1 retry not started"
        );
        // No cap: nothing refused, no line.
        assert_eq!(Failures::new(None).refusal(), None);
    }
}
