//! Running alone on request: a batch killed by the OOM killer is retried
//! only once the other running batches have drained (`retry.when =
//! ["@oom"]`; see `retry`). Its retry asks through an [`AloneHandle`]; the
//! dispatcher keeps an [`Alone`]: from the first request on, no new batch
//! starts; once every running batch is one that asked (the others have
//! ended), the first to ask is answered and runs with nothing beside it
//! until it ends, then the next one that asked, then the queue resumes.
//!
//! Waiting batches hold their grants (threads, resources, memory) while
//! they wait; that is no deadlock, because nothing else is waited for: the
//! batches that did not ask only have to end.

use std::collections::VecDeque;

use tokio::sync::{mpsc, oneshot};

/// One batch's request: answered on `granted` when it may run alone.
#[derive(Debug)]
pub struct Request {
    /// The batch's index in the plan's batches.
    pub unit: usize,
    pub granted: oneshot::Sender<()>,
}

/// What a running batch holds to ask for the run to itself.
#[derive(Debug, Clone)]
pub struct AloneHandle {
    unit: usize,
    requests: mpsc::UnboundedSender<Request>,
}

impl AloneHandle {
    pub fn new(unit: usize, requests: mpsc::UnboundedSender<Request>) -> AloneHandle {
        AloneHandle { unit, requests }
    }

    /// Returns once nothing else runs. A dispatcher gone (the run is
    /// over) answers at once.
    pub async fn wait(&self) {
        let (granted, answer) = oneshot::channel();
        if self
            .requests
            .send(Request {
                unit: self.unit,
                granted,
            })
            .is_ok()
        {
            let _ = answer.await;
        }
    }
}

/// The dispatcher's side: who waits, who runs alone. `T` is how a waiter
/// is answered.
#[derive(Debug)]
pub struct Alone<T> {
    /// In the order they asked.
    waiting: VecDeque<(usize, T)>,
    /// The unit running alone, until it ends.
    holder: Option<usize>,
}

impl<T> Default for Alone<T> {
    fn default() -> Self {
        Alone {
            waiting: VecDeque::new(),
            holder: None,
        }
    }
}

impl<T> Alone<T> {
    pub fn request(&mut self, unit: usize, answer: T) {
        self.waiting.push_back((unit, answer));
    }

    /// Whether new batches must not start: someone waits or runs alone.
    pub fn holds_starts(&self) -> bool {
        self.holder.is_some() || !self.waiting.is_empty()
    }

    /// With `running` batches running (the waiters among them): the answer
    /// of the one that may now run alone, if any.
    pub fn next(&mut self, running: usize) -> Option<T> {
        if self.holder.is_some() || self.waiting.is_empty() || self.waiting.len() < running {
            return None;
        }
        let (unit, answer) = self.waiting.pop_front()?;
        self.holder = Some(unit);
        Some(answer)
    }

    /// `unit` ended (whether or not it asked, or ran alone).
    pub fn ended(&mut self, unit: usize) {
        if self.holder == Some(unit) {
            self.holder = None;
        }
        self.waiting.retain(|(u, _)| *u != unit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_the_others_to_drain_then_one_at_a_time() {
        let mut a: Alone<&str> = Alone::default();
        assert!(!a.holds_starts());
        // Units 0, 1, 2 run; 1 asks: nothing new starts, 0 and 2 must end.
        a.request(1, "one");
        assert!(a.holds_starts());
        assert_eq!(a.next(3), None);
        a.ended(0);
        // 2 asks too while 1 waits.
        a.request(2, "two");
        assert_eq!(a.next(2), Some("one"), "every running batch waits");
        assert_eq!(a.next(2), None, "one at a time");
        a.ended(1);
        assert_eq!(a.next(1), Some("two"));
        assert!(a.holds_starts());
        a.ended(2);
        assert!(!a.holds_starts());
        assert_eq!(a.next(0), None);
    }

    #[test]
    fn a_waiter_that_ends_without_its_turn_is_forgotten() {
        let mut a: Alone<()> = Alone::default();
        a.request(4, ());
        a.ended(4);
        assert!(!a.holds_starts());
    }

    #[tokio::test]
    async fn the_handle_is_answered_or_goes_on_without_a_dispatcher() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let h = AloneHandle::new(7, tx);
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.wait().await }
        });
        let req = rx.recv().await.expect("a request");
        assert_eq!(req.unit, 7);
        req.granted.send(()).unwrap();
        waiting.await.unwrap();
        drop(rx);
        h.wait().await;
    }
}
