//! The predicted makespan: the [`Scheduler`] itself, run on a clock of
//! expected durations instead of real batches. Each started batch ends at
//! its start plus its expected duration; the earliest end is released
//! (one at a time, as the runner does) and whatever can start then starts.
//! Same capacity, demands and order as the real run, so the prediction
//! shows what the order is worth, and the lower bound how much any order
//! could gain.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use super::order::Estimate;
use super::{Capacity, Demand, Scheduler};

/// What the history says the batches phase should take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prediction {
    pub makespan: Duration,
    /// No order could do better: the longest batch, the thread-time over
    /// `max-parallel`, each resource's unit-time over its capacity, each
    /// lock's total.
    pub lower_bound: Duration,
    /// Batches without history, counted at the median of the others.
    pub guessed: usize,
    pub batches: usize,
}

/// Units with these demands and estimates, started in `order` within
/// `capacity`; `None` when the history knows none of them (or there are
/// none).
pub fn predict(
    capacity: &Capacity,
    demands: Vec<Demand>,
    order: Vec<usize>,
    estimates: &[Estimate],
) -> Option<Prediction> {
    let mut durations = Vec::with_capacity(estimates.len());
    let mut guessed = 0;
    for e in estimates {
        guessed += usize::from(matches!(e, Estimate::Median(_)));
        durations.push(e.duration()?);
    }
    if durations.is_empty() {
        return None;
    }
    let lower_bound = lower_bound(capacity, &demands, &durations);
    let makespan = makespan(capacity, demands, order, &durations)?;
    Some(Prediction {
        makespan,
        lower_bound,
        guessed,
        batches: durations.len(),
    })
}

/// When the last unit ends if each takes `durations[unit]`; `None` if the
/// scheduler could not start them all (a demand over the capacity).
pub fn makespan(
    capacity: &Capacity,
    demands: Vec<Demand>,
    order: Vec<usize>,
    durations: &[Duration],
) -> Option<Duration> {
    let mut scheduler = Scheduler::new(capacity, demands, order);
    // (end, start sequence): equal ends release in start order.
    let mut ends = BinaryHeap::new();
    let mut grants = Vec::new();
    let mut now = Duration::ZERO;
    loop {
        for grant in scheduler.start_ready() {
            let end = now + *durations.get(grant.unit)?;
            ends.push(Reverse((end, grants.len())));
            grants.push(Some(grant));
        }
        let Some(Reverse((end, i))) = ends.pop() else {
            break;
        };
        now = end;
        if let Some(grant) = grants.get_mut(i).and_then(Option::take) {
            scheduler.release(grant);
        }
    }
    (scheduler.pending() == 0).then_some(now)
}

/// The largest of: the longest unit; all units' threads × duration over the
/// threads there are; the same per resource and for the memory budget
/// (bytes × duration over the budget); the units sharing a lock key one
/// after another.
pub fn lower_bound(capacity: &Capacity, demands: &[Demand], durations: &[Duration]) -> Duration {
    let nanos = |d: &Duration| d.as_nanos();
    let mut bound = durations.iter().map(nanos).max().unwrap_or(0);
    let spread = |total: u128, over: u32| total / u128::from(over.max(1));
    let threads: u128 = demands
        .iter()
        .zip(durations)
        .map(|(d, t)| u128::from(d.threads) * nanos(t))
        .sum();
    bound = bound.max(spread(threads, capacity.threads));
    for (r, (_, units)) in capacity.resources.iter().enumerate() {
        let used: u128 = demands
            .iter()
            .zip(durations)
            .flat_map(|(d, t)| {
                d.needs
                    .iter()
                    .filter(move |(rr, _)| *rr == r)
                    .map(move |(_, n)| u128::from(*n) * nanos(t))
            })
            .sum();
        bound = bound.max(spread(used, *units));
    }
    if let Some(budget) = capacity.memory.filter(|b| *b > 0) {
        let used: u128 = demands
            .iter()
            .zip(durations)
            .map(|(d, t)| u128::from(d.memory.min(budget)) * nanos(t))
            .sum();
        bound = bound.max(used / u128::from(budget));
    }
    let mut locks: HashMap<&str, u128> = HashMap::new();
    for (d, t) in demands.iter().zip(durations) {
        for key in &d.locks {
            *locks.entry(key).or_default() += nanos(t);
        }
    }
    bound = bound.max(locks.into_values().max().unwrap_or(0));
    Duration::from_nanos(u64::try_from(bound).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::tests::cap;

    fn one() -> Demand {
        Demand {
            threads: 1,
            ..Demand::default()
        }
    }

    fn s(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&x| Duration::from_secs(x)).collect()
    }

    #[test]
    fn longest_first_beats_config_order() {
        // Two slots; 1, 1, 1, 1, 4: config order ends at 2 + 4 = 6,
        // longest first at 4 (the short ones run beside the long one).
        let d = s(&[1, 1, 1, 1, 4]);
        let c = cap(2, &[]);
        let demands = vec![one(); 5];
        assert_eq!(
            makespan(&c, demands.clone(), vec![0, 1, 2, 3, 4], &d),
            Some(Duration::from_secs(6))
        );
        assert_eq!(
            makespan(&c, demands.clone(), vec![4, 0, 1, 2, 3], &d),
            Some(Duration::from_secs(4))
        );
        assert_eq!(lower_bound(&c, &demands, &d), Duration::from_secs(4));
        assert_eq!(
            makespan(&c, Vec::new(), Vec::new(), &[]),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn threads_resources_and_locks_serialise() {
        // A batch taking both threads runs alone.
        let wide = Demand {
            threads: 2,
            ..Demand::default()
        };
        let d = s(&[3, 3, 3]);
        let c = cap(2, &[]);
        assert_eq!(
            makespan(&c, vec![wide, one(), one()], vec![0, 1, 2], &d),
            Some(Duration::from_secs(6))
        );
        // One unit of a resource: one at a time, even with threads free.
        let vm = Demand {
            threads: 1,
            needs: vec![(0, 1)],
            ..Demand::default()
        };
        let c = cap(4, &[1]);
        assert_eq!(
            makespan(&c, vec![vm.clone(); 3], vec![0, 1, 2], &d),
            Some(Duration::from_secs(9))
        );
        assert_eq!(lower_bound(&c, &vec![vm; 3], &d), Duration::from_secs(9));
        // A shared lock key: the same.
        let locked = Demand {
            threads: 1,
            locks: vec!["image".into()],
            ..Demand::default()
        };
        let c = cap(4, &[]);
        assert_eq!(
            makespan(
                &c,
                vec![locked.clone(), locked.clone(), one()],
                vec![0, 1, 2],
                &d
            ),
            Some(Duration::from_secs(6))
        );
        assert_eq!(
            lower_bound(&c, &[locked.clone(), locked, one()], &d),
            Duration::from_secs(6)
        );
    }

    #[test]
    fn memory_serialises_and_bounds() {
        // Budget 4G, each expects 3G: one at a time though 4 threads are free.
        let g = 1u64 << 30;
        let big = Demand {
            threads: 1,
            memory: 3 * g,
            ..Demand::default()
        };
        let mut c = cap(4, &[]);
        c.memory = Some(4 * g);
        let d = s(&[2, 2, 2]);
        assert_eq!(
            makespan(&c, vec![big.clone(); 3], vec![0, 1, 2], &d),
            Some(Duration::from_secs(6))
        );
        // 3 × 3G × 2s over 4G.
        assert_eq!(
            lower_bound(&c, &vec![big; 3], &d),
            Duration::from_millis(4500)
        );
        // Over the budget: alone, never hung.
        let huge = Demand {
            threads: 1,
            memory: 9 * g,
            ..Demand::default()
        };
        assert_eq!(
            makespan(&c, vec![one(), huge, one()], vec![0, 1, 2], &d),
            Some(Duration::from_secs(6))
        );
    }

    #[test]
    fn lower_bound_spreads_thread_time() {
        let d = s(&[4, 4, 4, 4, 4, 4]);
        assert_eq!(
            lower_bound(&cap(4, &[]), &vec![one(); 6], &d),
            Duration::from_secs(6)
        );
    }
}
