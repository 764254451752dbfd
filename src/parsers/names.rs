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
    // Hashes, not names, as keys: a batch of a million tests would
    // otherwise copy every name once more. A hash match is confirmed by
    // comparing paths; a collision between different paths goes to `other`.
    let state = std::collections::hash_map::RandomState::new();
    let hash = |path: &[String]| state.hash_one(path);
    // (index of the first, count) in 8 bytes: a batch has fewer than 2^32 tests.
    let mut first: HashMap<u64, (u32, u32)> = HashMap::with_capacity(tests.len());
    let mut other: HashMap<Vec<String>, u32> = HashMap::new();
    for i in 0..tests.len() {
        let h = hash(&tests[i].path);
        let seen = match first.get_mut(&h) {
            None => {
                first.insert(h, (u32::try_from(i).unwrap_or(u32::MAX), 1));
                continue;
            }
            Some((j, count))
                if tests
                    .get(*j as usize)
                    .is_some_and(|t| t.path == tests[i].path) =>
            {
                *count += 1;
                *count
            }
            Some(_) => {
                let count = other.entry(tests[i].path.clone()).or_insert(0);
                *count += 1;
                if *count == 1 {
                    continue;
                }
                *count
            }
        };
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
