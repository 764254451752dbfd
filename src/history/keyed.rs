//! The results of a write in the order the store keeps them: each under
//! its test's id, sorted by (test id, run) — the primary key of
//! `results` — with a run's repeated names dropped, and each run's counts
//! of what goes in. Both backends write these rows: PostgreSQL with
//! `COPY` ([`copy_in`](super::copy_in)), SQLite with multi-row INSERTs
//! ([`db`](super::db)). Keying the rows here, rather than joining names
//! to ids in SQL, lets a store append to its primary key in order and
//! costs it no sort or join of the rows (bench/ingest.py).
//!
//! A name twice in one run (an imported suite's test named like another
//! suite's path) keeps its first result, in the order of the run's
//! batches and their results; a name twice in one batch was merged before
//! ([`results::one_per_name`](super::results::one_per_name)).

use std::hash::BuildHasher;

use foldhash::fast::RandomState;

use hashbrown::HashTable;

use super::results::Results;

/// The results of some batches of one run, each batch with its row id.
pub(super) struct RunResults<'p, 'a> {
    pub run: i64,
    pub batches: &'p [(&'a dyn Results, i64)],
}

/// The distinct test names of a write, sorted, and each result's name as
/// an index into them.
pub(super) struct Names<'a> {
    /// Sorted, distinct: concurrent writers adding the same new names add
    /// them in the same order.
    pub sorted: Vec<&'a str>,
    /// Per run, per batch, per result: its name's index in `sorted`.
    of: Vec<Vec<Vec<u32>>>,
}

impl<'a> Names<'a> {
    pub fn of(runs: &[RunResults<'_, 'a>]) -> Names<'a> {
        // A run holds a name once (a batch's repeats were merged, and a
        // name in two of its batches is rare): its largest run's results
        // are about the fewest distinct names a write has. Sized for them,
        // the table is not rehashed as it grows (a million names: 0.1 s
        // of rehashing, bench/many_tests.py); an import of many runs of
        // the same tests keeps a small table.
        let largest_run = runs
            .iter()
            .map(|r| r.batches.iter().map(|(b, _)| b.len()).sum::<usize>())
            .max()
            .unwrap_or(0);
        let mut first_seen: Vec<&'a str> = Vec::with_capacity(largest_run);
        // Each distinct name once, as its index into `first_seen` (4
        // bytes an entry; a map of `&str` took 24, 78 MiB at its peak
        // for a run of a million tests: bench/many_tests.py).
        let state = RandomState::default();
        let mut index: HashTable<u32> = HashTable::with_capacity(largest_run);
        let mut of: Vec<Vec<Vec<u32>>> = Vec::with_capacity(runs.len());
        for r in runs {
            let mut per_batch = Vec::with_capacity(r.batches.len());
            for (results, _) in r.batches {
                let results: &'a dyn Results = *results;
                let mut ix = Vec::with_capacity(results.len());
                for i in 0..results.len() {
                    let name = results.name(i);
                    let hash = state.hash_one(name);
                    let n = match index.find(hash, |&k| first_seen[k as usize] == name) {
                        Some(&k) => k,
                        None => {
                            // Fewer than 2^32 results fit in memory.
                            let n = first_seen.len() as u32;
                            index.insert_unique(hash, n, |&k| {
                                state.hash_one(first_seen[k as usize])
                            });
                            first_seen.push(name);
                            n
                        }
                    };
                    ix.push(n);
                }
                per_batch.push(ix);
            }
            of.push(per_batch);
        }
        drop(index);
        // Renumber by name order.
        let mut order: Vec<u32> = (0..first_seen.len() as u32).collect();
        order.sort_unstable_by_key(|&n| first_seen[n as usize]);
        let mut rank = vec![0_u32; first_seen.len()];
        for (at, &n) in order.iter().enumerate() {
            rank[n as usize] = at as u32;
        }
        for per_batch in &mut of {
            for ix in per_batch {
                for n in ix {
                    *n = rank[*n as usize];
                }
            }
        }
        let sorted = order.iter().map(|&n| first_seen[n as usize]).collect();
        Names { sorted, of }
    }
}

/// One result to write: `run` and `batch` index the write's
/// [`RunResults`] and their batches, `index` the batch's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Row {
    pub test_id: i64,
    pub run: u32,
    pub batch: u32,
    pub index: u32,
}

/// How many results of a run go in: run (not skipped) and failed, as
/// `runs.tests_run` and `tests_failed` count them (migrations/*/0003).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub ran: i64,
    pub failed: i64,
}

/// The order of a write's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// (test id, run): `results`' primary key.
    Key,
    /// (run, test id): run after run (an import's own partition,
    /// history::partition, whose BRIN index by run wants them so).
    Run,
}

/// The rows of `runs` under the ids of `names` (`ids[n]` is the id of
/// `names.sorted[n]`), sorted in `order`, one per test and run, and each
/// run's counts of them.
pub(super) fn rows(
    runs: &[RunResults<'_, '_>],
    names: &Names<'_>,
    ids: &[i64],
    order: Order,
) -> (Vec<Row>, Vec<Counts>) {
    let total = names.of.iter().flatten().map(Vec::len).sum();
    let mut rows: Vec<Row> = Vec::with_capacity(total);
    for (run, per_batch) in names.of.iter().enumerate() {
        for (batch, ix) in per_batch.iter().enumerate() {
            for (index, &n) in ix.iter().enumerate() {
                rows.push(Row {
                    test_id: ids[n as usize],
                    run: run as u32,
                    batch: batch as u32,
                    index: index as u32,
                });
            }
        }
    }
    // (batch, index) is the order within a run: the first of a name stays.
    match order {
        Order::Key => {
            rows.sort_unstable_by_key(|r| (r.test_id, r.run, r.batch, r.index));
            rows.dedup_by_key(|r| (r.test_id, r.run));
        }
        Order::Run => {
            rows.sort_unstable_by_key(|r| (r.run, r.test_id, r.batch, r.index));
            rows.dedup_by_key(|r| (r.run, r.test_id));
        }
    }
    let mut counts = vec![Counts::default(); runs.len()];
    for r in &rows {
        let status = runs[r.run as usize].batches[r.batch as usize]
            .0
            .status(r.index as usize)
            .stored();
        let c = &mut counts[r.run as usize];
        if !status.is_skipped() {
            c.ran += 1;
        }
        if status.is_failure() {
            c.failed += 1;
        }
    }
    (rows, counts)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::history::model::TestRecord;
    use crate::status::TestStatus;

    fn batch(names: &[(&str, TestStatus)]) -> Vec<TestRecord> {
        names
            .iter()
            .map(|(n, s)| TestRecord {
                name: (*n).into(),
                status: s.clone(),
                duration: Some(Duration::from_millis(1)),
                message: None,
            })
            .collect()
    }

    #[test]
    fn rows_are_in_key_order_one_per_test_and_run_the_first_kept() {
        use TestStatus::{Failed, Passed, Skipped};
        let a = batch(&[("b", Passed), ("a", Failed), ("c", Skipped(None))]);
        let b = batch(&[("a", Passed), ("d", Failed)]);
        let c = batch(&[("d", Passed), ("a", Passed)]);
        let first = [(&a as &dyn Results, 10), (&b as &dyn Results, 11)];
        let second = [(&c as &dyn Results, 12)];
        let runs = [
            RunResults {
                run: 1,
                batches: &first,
            },
            RunResults {
                run: 2,
                batches: &second,
            },
        ];
        let names = Names::of(&runs);
        assert_eq!(names.sorted, ["a", "b", "c", "d"]);
        // Ids in another order than the names, as a store may hand out.
        let ids = [40, 30, 20, 10];
        let (by_run, by_run_counts) = super::rows(&runs, &names, &ids, Order::Run);
        let (rows, counts) = rows(&runs, &names, &ids, Order::Key);
        let mut sorted = by_run.clone();
        sorted.sort_unstable_by_key(|r| (r.test_id, r.run));
        assert_eq!(sorted, rows);
        assert_eq!(by_run_counts, counts);
        assert!(by_run.is_sorted_by_key(|r| (r.run, r.test_id)));
        let keys: Vec<(i64, u32, u32, u32)> = rows
            .iter()
            .map(|r| (r.test_id, r.run, r.batch, r.index))
            .collect();
        assert_eq!(
            keys,
            [
                (10, 0, 1, 1), // d, run 1
                (10, 1, 0, 0), // d, run 2
                (20, 0, 0, 2), // c
                (30, 0, 0, 0), // b
                (40, 0, 0, 1), // a, run 1: the first (failed), not batch 1's
                (40, 1, 0, 1), // a, run 2
            ]
        );
        assert_eq!(
            counts,
            [Counts { ran: 3, failed: 2 }, Counts { ran: 2, failed: 0 }]
        );
    }
}
