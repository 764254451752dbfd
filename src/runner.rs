//! The dispatcher: owns the run's state, starts batches within
//! `max-parallel` in plan order, and feeds every event to the reporters.
//! Reporters only consume events; they never drive execution.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::event::Event;
use crate::outcome::Outcome;
use crate::plan::Plan;
use crate::supervisor::Supervisor;

/// Something that wants to hear about the run as it happens.
pub trait Reporter {
    fn on_event(&mut self, event: &Event);
    /// Called after a burst of events has been delivered: a place to do
    /// expensive work (rewriting a file) once per burst rather than per event.
    fn flush(&mut self) {}
}

/// Runs every batch of the plan; returns the outcomes in plan order.
pub async fn run(
    plan: &Plan,
    supervisor: Arc<Supervisor>,
    reporter: &mut dyn Reporter,
) -> Vec<Outcome> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let slots = Arc::new(Semaphore::new(plan.max_parallel.get()));
    let batches = plan.batches.clone();

    let dispatch = tokio::spawn(async move {
        let mut running = JoinSet::new();
        for batch in batches {
            // The semaphore is never closed, so acquiring only waits.
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let sup = supervisor.clone();
            let tx = tx.clone();
            running.spawn(async move {
                let outcome = sup.run(&batch, &tx).await;
                drop(permit);
                let _ = tx.send(Event::Finished(Box::new(outcome)));
            });
        }
        while running.join_next().await.is_some() {}
    });

    let mut outcomes = Vec::with_capacity(plan.batches.len());
    while let Some(event) = rx.recv().await {
        deliver(event, reporter, &mut outcomes);
        while let Ok(event) = rx.try_recv() {
            deliver(event, reporter, &mut outcomes);
        }
        reporter.flush();
    }
    let _ = dispatch.await;
    let order = |o: &Outcome| plan.batches.iter().position(|b| b.config.name == o.name);
    outcomes.sort_by_key(order);
    outcomes
}

fn deliver(event: Event, reporter: &mut dyn Reporter, outcomes: &mut Vec<Outcome>) {
    reporter.on_event(&event);
    if let Event::Finished(outcome) = event {
        outcomes.push(*outcome);
    }
}
