//! Which batches may start now: `max-parallel` threads, resource
//! capacities, keyed locks and the memory budget, all taken at once or not
//! at all; and the slot numbers running batches hold.
//!
//! Acquisition is all-or-nothing, so no batch ever holds part of what it
//! needs while waiting for the rest: no deadlock. The first batch in order
//! that cannot start reserves what is free of what it needs (threads,
//! resource units, its lock keys, memory); later batches may start only
//! from what is left, so small batches fill gaps but never starve a big one.
//!
//! Memory is one more capacity (`[run] memory-budget`), with one
//! exception: a batch expecting more than the whole budget could never
//! fit, so it runs alone instead — it starts when nothing else runs (while
//! it waits first in line it reserves every thread, so the run drains),
//! and nothing starts beside it. A batch expecting 0 bytes is not counted.

pub mod alone;
pub mod memory;
pub mod order;
pub mod partition;
pub mod predict;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

/// What one batch takes while it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demand {
    /// How many of `max-parallel` it occupies (at least 1).
    pub threads: u32,
    /// Units of each resource, by index into [`Capacity::resources`].
    pub needs: Vec<(usize, u32)>,
    /// Keyed exclusive locks: no two batches holding the same key run at once.
    pub locks: Vec<String>,
    /// Expected memory in bytes, counted against [`Capacity::memory`]; 0:
    /// not counted.
    pub memory: u64,
}

/// What there is to share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub threads: u32,
    /// (name, units), from `[resources]`.
    pub resources: Vec<(String, u32)>,
    /// The memory budget in bytes; `None`: memory is not counted.
    pub memory: Option<u64>,
}

impl Capacity {
    /// Whether `d` expects more than the whole memory budget, and so runs
    /// alone.
    pub fn runs_alone(&self, d: &Demand) -> bool {
        self.memory.is_some_and(|budget| d.memory > budget)
    }

    /// The memory `d` takes of the budget: none without a budget, all of
    /// it when it runs alone.
    fn admitted_memory(&self, d: &Demand) -> u64 {
        match self.memory {
            None => 0,
            Some(budget) => d.memory.min(budget),
        }
    }
}

/// What a started batch holds; hand it back to [`Scheduler::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The batch's index in the demands given to [`Scheduler::new`].
    pub unit: usize,
    /// The smallest number no other running batch holds (`WARDEN_SLOT`).
    pub slot: u32,
    /// Per resource held: (resource index, its slot numbers, each below the
    /// resource's capacity; `WARDEN_SLOT_<RESOURCE>` is the first).
    pub resource_slots: Vec<(usize, Vec<u32>)>,
}

#[derive(Debug)]
pub struct Scheduler {
    capacity: Capacity,
    demands: Vec<Demand>,
    /// Units not started yet, in start order. A deque: starting the head
    /// is O(1), so 100,000 batches don't cost a memmove of the queue each.
    queue: VecDeque<usize>,
    free_threads: u32,
    free: Vec<u32>,
    locks: HashSet<String>,
    slots: BTreeSet<u32>,
    resource_slots: Vec<BTreeSet<u32>>,
    /// Of the memory budget (0 without one).
    free_memory: u64,
    /// Batches started and not released.
    running: usize,
    /// A batch over the memory budget runs: nothing starts beside it.
    alone: bool,
    /// With a budget: how many units not started take each amount of
    /// memory, so a call stops looking once what is left fits none.
    pending_memory: BTreeMap<u64, usize>,
}

impl Scheduler {
    /// `order` lists every unit to run, first to start first. Every demand
    /// must fit the capacity (the config and plan check that).
    pub fn new(capacity: &Capacity, demands: Vec<Demand>, order: Vec<usize>) -> Scheduler {
        debug_assert!(demands.iter().all(|d| fits_capacity(d, capacity)));
        let mut pending_memory = BTreeMap::new();
        if capacity.memory.is_some() {
            for &unit in &order {
                let m = capacity.admitted_memory(&demands[unit]);
                *pending_memory.entry(m).or_insert(0) += 1;
            }
        }
        Scheduler {
            pending_memory,
            capacity: capacity.clone(),
            free_memory: capacity.memory.unwrap_or(0),
            running: 0,
            alone: false,
            queue: order.into(),
            demands,
            free_threads: capacity.threads,
            free: capacity.resources.iter().map(|(_, n)| *n).collect(),
            locks: HashSet::new(),
            slots: BTreeSet::new(),
            resource_slots: vec![BTreeSet::new(); capacity.resources.len()],
        }
    }

    /// How many units have not started.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Adds `unit` at the end of the start order (queue mode: a batch just
    /// claimed from the shared queue).
    pub fn push(&mut self, unit: usize) {
        if self.capacity.memory.is_some() {
            let m = self.capacity.admitted_memory(&self.demands[unit]);
            *self.pending_memory.entry(m).or_insert(0) += 1;
        }
        self.queue.push_back(unit);
    }

    /// Threads of `max-parallel` no running batch holds.
    pub fn free_threads(&self) -> u32 {
        self.free_threads
    }

    /// Takes every unit not started yet (the run is stopping).
    pub fn drain(&mut self) -> Vec<usize> {
        self.pending_memory.clear();
        std::mem::take(&mut self.queue).into()
    }

    /// Starts what can start now, in order, with head-of-line reservation.
    pub fn start_ready(&mut self) -> Vec<Grant> {
        let mut started = Vec::new();
        if self.alone {
            return started;
        }
        let mut reserved = Reservation {
            threads: 0,
            units: vec![0; self.free.len()],
            locks: HashSet::new(),
            memory: 0,
        };
        let mut someone_waits = false;
        let mut i = 0;
        while i < self.queue.len() {
            // Every unit needs a thread: once none is left (free or kept for
            // the head), nothing later can start, and looking at the rest of
            // the queue would make each call O(queue) — quadratic over a run.
            if self.free_threads == reserved.threads {
                break;
            }
            // The same for memory: once what is left (free, not kept for
            // the head) is less than any unit waiting takes, stop.
            if self.capacity.memory.is_some()
                && self
                    .pending_memory
                    .keys()
                    .next()
                    .is_some_and(|&least| self.free_memory - reserved.memory < least)
            {
                break;
            }
            let unit = self.queue[i];
            if self.fits(&self.demands[unit], &reserved) {
                self.queue.remove(i);
                started.push(self.grant(unit));
                if self.alone {
                    break;
                }
                continue;
            }
            if !someone_waits {
                someone_waits = true;
                self.reserve_for(unit, &mut reserved);
            }
            i += 1;
        }
        started
    }

    pub fn release(&mut self, grant: Grant) {
        let d = &self.demands[grant.unit];
        self.running -= 1;
        self.free_memory += self.capacity.admitted_memory(d);
        if self.capacity.runs_alone(d) {
            self.alone = false;
        }
        self.free_threads += d.threads;
        for &(r, n) in &d.needs {
            self.free[r] += n;
        }
        for key in &d.locks {
            self.locks.remove(key);
        }
        self.slots.remove(&grant.slot);
        for (r, slots) in grant.resource_slots {
            for s in slots {
                self.resource_slots[r].remove(&s);
            }
        }
    }

    fn fits(&self, d: &Demand, reserved: &Reservation) -> bool {
        if self.capacity.runs_alone(d) {
            // Nothing runs, so nothing is reserved either: every unit
            // before it in line found everything free and started.
            return self.running == 0;
        }
        self.capacity.admitted_memory(d) <= self.free_memory - reserved.memory
            && d.threads <= self.free_threads - reserved.threads
            && d.needs
                .iter()
                .all(|&(r, n)| n <= self.free[r] - reserved.units[r])
            && d.locks
                .iter()
                .all(|k| !self.locks.contains(k) && !reserved.locks.contains(k))
    }

    /// Keeps for `unit` what is free of what it needs, so nothing after it
    /// can take it.
    fn reserve_for(&self, unit: usize, reserved: &mut Reservation) {
        let d = &self.demands[unit];
        if self.capacity.runs_alone(d) {
            // It waits for the run to drain: nothing after it may start.
            reserved.threads = self.free_threads;
            return;
        }
        reserved.memory += self
            .capacity
            .admitted_memory(d)
            .min(self.free_memory - reserved.memory);
        reserved.threads += d.threads.min(self.free_threads - reserved.threads);
        for &(r, n) in &d.needs {
            reserved.units[r] += n.min(self.free[r] - reserved.units[r]);
        }
        reserved.locks.extend(d.locks.iter().cloned());
    }

    fn grant(&mut self, unit: usize) -> Grant {
        let d = &self.demands[unit];
        if self.capacity.memory.is_some() {
            let m = self.capacity.admitted_memory(d);
            if let Some(n) = self.pending_memory.get_mut(&m) {
                *n -= 1;
                if *n == 0 {
                    self.pending_memory.remove(&m);
                }
            }
        }
        self.running += 1;
        self.free_memory -= self.capacity.admitted_memory(d);
        self.alone |= self.capacity.runs_alone(d);
        self.free_threads -= d.threads;
        let mut resource_slots = Vec::with_capacity(d.needs.len());
        for &(r, n) in &d.needs {
            self.free[r] -= n;
            resource_slots.push((r, take_lowest(&mut self.resource_slots[r], n)));
        }
        for key in &d.locks {
            self.locks.insert(key.clone());
        }
        let slot = take_lowest(&mut self.slots, 1)[0];
        Grant {
            unit,
            slot,
            resource_slots,
        }
    }
}

struct Reservation {
    threads: u32,
    units: Vec<u32>,
    locks: HashSet<String>,
    memory: u64,
}

/// Whether `d` could ever run: it needs no more than there is (memory
/// aside: over the budget, it runs alone).
pub fn fits_capacity(d: &Demand, c: &Capacity) -> bool {
    d.threads >= 1
        && d.threads <= c.threads
        && d.needs
            .iter()
            .all(|&(r, n)| c.resources.get(r).is_some_and(|(_, cap)| n <= *cap))
}

/// The `n` smallest numbers not in `held`, now held.
fn take_lowest(held: &mut BTreeSet<u32>, n: u32) -> Vec<u32> {
    let mut taken = Vec::with_capacity(n as usize);
    let mut candidate = 0;
    while taken.len() < n as usize {
        if held.insert(candidate) {
            taken.push(candidate);
        }
        candidate += 1;
    }
    taken
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Capacities `r0`, `r1`, … for tests here and in the submodules.
    pub(crate) fn cap(threads: u32, resources: &[u32]) -> Capacity {
        Capacity {
            threads,
            resources: resources
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("r{i}"), *n))
                .collect(),
            memory: None,
        }
    }

    fn demand(threads: u32, needs: &[(usize, u32)], locks: &[&str]) -> Demand {
        Demand {
            threads,
            needs: needs.to_vec(),
            locks: locks.iter().map(|s| s.to_string()).collect(),
            memory: 0,
        }
    }

    #[test]
    fn starts_in_order_within_max_parallel() {
        let mut s = Scheduler::new(&cap(2, &[]), vec![demand(1, &[], &[]); 3], vec![2, 0, 1]);
        let g = s.start_ready();
        assert_eq!(g.iter().map(|g| g.unit).collect::<Vec<_>>(), [2, 0]);
        assert_eq!(g.iter().map(|g| g.slot).collect::<Vec<_>>(), [0, 1]);
        assert!(s.start_ready().is_empty());
        let first = g.into_iter().next().unwrap();
        s.release(first);
        let g = s.start_ready();
        assert_eq!((g[0].unit, g[0].slot), (1, 0), "the lowest free slot again");
    }

    #[test]
    fn resource_capacity_and_slots() {
        let d = demand(1, &[(0, 1)], &[]);
        let mut s = Scheduler::new(&cap(8, &[2]), vec![d; 4], vec![0, 1, 2, 3]);
        let g = s.start_ready();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].resource_slots, [(0, vec![0])]);
        assert_eq!(g[1].resource_slots, [(0, vec![1])]);
    }

    #[test]
    fn same_lock_key_never_overlaps() {
        let ds = vec![
            demand(1, &[], &["image:ubuntu"]),
            demand(1, &[], &["image:ubuntu"]),
            demand(1, &[], &["image:fedora"]),
        ];
        let mut s = Scheduler::new(&cap(4, &[]), ds, vec![0, 1, 2]);
        let g = s.start_ready();
        assert_eq!(g.iter().map(|g| g.unit).collect::<Vec<_>>(), [0, 2]);
    }

    #[test]
    fn a_big_batch_is_not_overtaken_forever() {
        // Two threads; one batch needs both. Small ones keep coming after it.
        let mut ds = vec![demand(1, &[], &[]), demand(2, &[], &[])];
        ds.extend(std::iter::repeat_n(demand(1, &[], &[]), 10));
        let order: Vec<usize> = (0..ds.len()).collect();
        let mut s = Scheduler::new(&cap(2, &[]), ds, order);
        let g = s.start_ready();
        // Unit 0 runs; unit 1 waits and keeps the free thread for itself.
        assert_eq!(g.iter().map(|g| g.unit).collect::<Vec<_>>(), [0]);
        s.release(g.into_iter().next().unwrap());
        let g = s.start_ready();
        assert_eq!(g.iter().map(|g| g.unit).collect::<Vec<_>>(), [1]);
    }

    fn mem(threads: u32, memory: u64) -> Demand {
        Demand {
            threads,
            memory,
            ..Demand::default()
        }
    }

    fn with_budget(threads: u32, budget: u64) -> Capacity {
        Capacity {
            memory: Some(budget),
            ..cap(threads, &[])
        }
    }

    fn units(g: &[Grant]) -> Vec<usize> {
        g.iter().map(|g| g.unit).collect()
    }

    #[test]
    fn memory_budget_admits_what_fits() {
        // Budget 10: 4 + 4 run, 4 waits and keeps 2 for itself, so the 2
        // behind it may not start; the uncounted one (0) may.
        let ds = vec![mem(1, 4), mem(1, 4), mem(1, 4), mem(1, 2), mem(1, 0)];
        let mut s = Scheduler::new(&with_budget(8, 10), ds, vec![0, 1, 2, 3, 4]);
        let g = s.start_ready();
        assert_eq!(units(&g), [0, 1, 4]);
        let mut g = g.into_iter();
        s.release(g.next().unwrap());
        assert_eq!(units(&s.start_ready()), [2, 3]);
        // Without a budget, memory is not counted.
        let ds = vec![mem(1, 4); 4];
        let mut s = Scheduler::new(&cap(8, &[]), ds, vec![0, 1, 2, 3]);
        assert_eq!(s.start_ready().len(), 4);
    }

    #[test]
    fn over_the_budget_runs_alone_after_a_drain() {
        let ds = vec![mem(1, 2), mem(1, 99), mem(1, 0), mem(1, 1)];
        let mut s = Scheduler::new(&with_budget(4, 10), ds, vec![0, 1, 2, 3]);
        // 1 waits for the run to drain: nothing after it starts, not even
        // the uncounted 2.
        let g = s.start_ready();
        assert_eq!(units(&g), [0]);
        s.release(g.into_iter().next().unwrap());
        let g = s.start_ready();
        assert_eq!(units(&g), [1], "alone");
        assert!(s.start_ready().is_empty(), "nothing beside it");
        s.release(g.into_iter().next().unwrap());
        assert_eq!(units(&s.start_ready()), [2, 3]);
        // A budget of 0 (auto on a full machine): every counted batch alone.
        let ds = vec![mem(1, 1), mem(1, 1), mem(1, 0)];
        let mut s = Scheduler::new(&with_budget(4, 0), ds, vec![0, 1, 2]);
        let g = s.start_ready();
        assert_eq!(units(&g), [0]);
        s.release(g.into_iter().next().unwrap());
        assert_eq!(units(&s.start_ready()), [1]);
    }

    #[test]
    fn take_lowest_fills_gaps() {
        let mut held: BTreeSet<u32> = [0, 2].into();
        assert_eq!(take_lowest(&mut held, 2), [1, 3]);
    }

    proptest! {
        /// Random demands and finishing order: capacities, locks and slots
        /// hold at every instant, and every unit starts (no deadlock).
        #[test]
        fn invariants_hold_and_everything_runs(
            threads in 1u32..5,
            caps in prop::collection::vec(1u32..4, 0..3),
            raw in prop::collection::vec((1u32..5, prop::collection::vec((0usize..3, 1u32..4), 0..3), prop::collection::vec(0usize..3, 0..2)), 1..25),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 100),
        ) {
            let capacity = cap(threads, &caps);
            let demands: Vec<Demand> = raw.iter().map(|(t, needs, locks)| {
                let mut needs: Vec<(usize, u32)> = needs.iter()
                    .filter(|(r, _)| *r < caps.len())
                    .map(|&(r, n)| (r, n.min(caps[r])))
                    .collect();
                needs.sort();
                needs.dedup_by_key(|(r, _)| *r);
                let mut locks: Vec<String> = locks.iter().map(|k| format!("k{k}")).collect();
                locks.sort();
                locks.dedup();
                Demand { threads: (*t).min(threads), needs, locks, memory: 0 }
            }).collect();
            let n = demands.len();
            let mut s = Scheduler::new(&capacity, demands.clone(), (0..n).collect());
            let mut running: Vec<Grant> = Vec::new();
            let mut done = 0;
            let mut pick = picks.iter().cycle();
            loop {
                running.extend(s.start_ready());
                let used: u32 = running.iter().map(|g| demands[g.unit].threads).sum();
                prop_assert!(used <= threads);
                for (r, c) in caps.iter().enumerate() {
                    let u: u32 = running.iter()
                        .flat_map(|g| demands[g.unit].needs.iter())
                        .filter(|(rr, _)| *rr == r).map(|(_, n)| n).sum();
                    prop_assert!(u <= *c);
                    let mut slots: Vec<u32> = running.iter()
                        .flat_map(|g| g.resource_slots.iter())
                        .filter(|(rr, _)| *rr == r)
                        .flat_map(|(_, s)| s.iter().copied()).collect();
                    let len = slots.len();
                    slots.sort(); slots.dedup();
                    prop_assert_eq!(slots.len(), len);
                    prop_assert!(slots.iter().all(|s| s < c));
                }
                let mut keys: Vec<&String> = running.iter().flat_map(|g| demands[g.unit].locks.iter()).collect();
                let len = keys.len();
                keys.sort(); keys.dedup();
                prop_assert_eq!(keys.len(), len);
                let mut slots: Vec<u32> = running.iter().map(|g| g.slot).collect();
                slots.sort(); slots.dedup();
                prop_assert_eq!(slots.len(), running.len());
                if running.is_empty() {
                    prop_assert_eq!(s.pending(), 0, "nothing runs but units wait: deadlock");
                    break;
                }
                let i = pick.next().unwrap().index(running.len());
                s.release(running.swap_remove(i));
                done += 1;
            }
            prop_assert_eq!(done, n);
        }

        /// Random memory expectations (some over the budget, some not
        /// counted), threads and finishing orders: the running batches'
        /// expected memory never exceeds the budget, a batch over the
        /// budget runs alone, and every batch starts.
        #[test]
        fn memory_budget_holds_and_everything_runs(
            threads in 1u32..6,
            budget in 0u64..12,
            raw in prop::collection::vec((1u32..4, 0u64..16, any::<bool>()), 1..30),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 100),
            order_seed in any::<prop::sample::Index>(),
        ) {
            let capacity = with_budget(threads, budget);
            let demands: Vec<Demand> = raw.iter().map(|&(t, m, counted)| {
                mem(t.min(threads), if counted { m } else { 0 })
            }).collect();
            let n = demands.len();
            // Any start order: rotated by a random amount.
            let k = order_seed.index(n);
            let order: Vec<usize> = (k..n).chain(0..k).collect();
            let mut s = Scheduler::new(&capacity, demands.clone(), order);
            let mut running: Vec<Grant> = Vec::new();
            let mut started = vec![false; n];
            let mut pick = picks.iter().cycle();
            loop {
                for g in s.start_ready() {
                    prop_assert!(!started[g.unit], "started twice");
                    started[g.unit] = true;
                    running.push(g);
                }
                let threads_used: u32 = running.iter().map(|g| demands[g.unit].threads).sum();
                prop_assert!(threads_used <= threads);
                if running.iter().any(|g| demands[g.unit].memory > budget) {
                    prop_assert_eq!(running.len(), 1, "over the budget but not alone");
                } else {
                    let used: u64 = running.iter().map(|g| demands[g.unit].memory).sum();
                    prop_assert!(used <= budget, "{} expected of a budget of {}", used, budget);
                }
                if running.is_empty() {
                    prop_assert_eq!(s.pending(), 0, "nothing runs but units wait: hung");
                    break;
                }
                let i = pick.next().unwrap().index(running.len());
                s.release(running.swap_remove(i));
            }
            prop_assert!(started.iter().all(|&s| s), "every batch starts");
        }
    }
}
