//! One rule for tests that share a name within a batch: they are kept
//! apart, never merged. The first keeps its name; the second gets ` #2`
//! after its last path element, the third ` #3`, in output order. Applied
//! once, where a batch's results are read, so JUnit, the summary and the
//! history all see the same names.
//!
//! Where a format knows what tells them apart (JUnit's `file` or suite),
//! its reader names them so before this runs; the ordinal is the last
//! resort. Runs of the same batch number duplicates the same way, so
//! `t #2` of one run meets `t #2` of the next in the history.

use std::collections::HashMap;
use std::hash::BuildHasher;

use super::TestResult;

/// Renames the second and later results of each repeated path.
pub fn disambiguate(tests: &mut [TestResult]) {
    // Each path's hash beside its index, sorted: a repeat lands next to
    // its first, and a batch of a million tests costs 16 bytes a test
    // (a map from hash to first index took 34 at its peak, while the
    // results were all held: bench/many_tests.py). Only paths whose hash
    // came more than once are compared, so a collision between different
    // paths renames neither.
    let state = std::collections::hash_map::RandomState::new();
    let mut by_hash: Vec<(u64, usize)> = tests
        .iter()
        .enumerate()
        .map(|(i, t)| (state.hash_one(&t.path), i))
        .collect();
    by_hash.sort_unstable();
    // (index, ordinal) of each repeat.
    let mut repeats: Vec<(usize, u32)> = Vec::new();
    for same_hash in by_hash.chunk_by(|a, b| a.0 == b.0) {
        if same_hash.len() < 2 {
            continue;
        }
        // In output order: sorted by index within a hash.
        let mut seen: HashMap<&[String], u32> = HashMap::new();
        for &(_, i) in same_hash {
            let count = seen.entry(tests[i].path.as_slice()).or_insert(0);
            *count += 1;
            if *count > 1 {
                repeats.push((i, *count));
            }
        }
    }
    drop(by_hash);
    for (i, seen) in repeats {
        if let Some(last) = tests[i].path.last_mut() {
            last.push_str(&format!(" #{seen}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::TestStatus;

    fn t(path: &[&str]) -> TestResult {
        TestResult {
            path: path.iter().map(|s| s.to_string()).collect(),
            status: TestStatus::Passed,
            duration: None,
            output: String::new(),
            message: None,
        }
    }

    #[test]
    fn repeated_names_get_ordinals_in_order() {
        let mut tests = vec![
            t(&["size", "get_size"]),
            t(&["a"]),
            t(&["size", "get_size"]),
            t(&["b", "get_size"]),
            t(&["size", "get_size"]),
        ];
        disambiguate(&mut tests);
        let names: Vec<String> = tests.iter().map(TestResult::name).collect();
        assert_eq!(
            names,
            [
                "size/get_size",
                "a",
                "size/get_size #2",
                "b/get_size",
                "size/get_size #3"
            ]
        );
    }

    #[test]
    fn unique_names_are_untouched() {
        let mut tests: Vec<TestResult> = (0..1000).map(|i| t(&["x", &i.to_string()])).collect();
        disambiguate(&mut tests);
        assert!(
            tests
                .iter()
                .enumerate()
                .all(|(i, r)| r.path[1] == i.to_string())
        );
    }
}
