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
