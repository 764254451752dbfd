//! A batch's test results as the store keeps them, and the one rule for
//! each thing that can happen to one on the way, shared by `warden run`
//! (the [recorder](super::recorder)) and `warden import junit`
//! ([import](super::import)), so both store a test the same way:
//!
//! - what a result is stored as ([`record`]): its status without payload
//!   (an error is a failure), a test that passed after failing in an
//!   earlier attempt is flaky, and which message it keeps;
//! - a name that comes twice in one batch ([`one_per_name`]): the store
//!   keeps one result per test and run, the worst, where the name first
//!   appeared.
//!
//! Reruns listed in JUnit are merged before either, by the parsers'
//! [`repeat`](crate::parsers::repeat) rule, which both readers share too.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::time::Duration;

use super::model::{TestRecord, short_message};
use crate::parsers::TestResult;
use crate::status::TestStatus;

/// The results of one batch as the write path reads them, by index: a
/// batch record's own list (imports, tests), or the recorder's compact
/// table (a million results in a few tens of MB).
pub trait Results: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The test's full name (`batch/test/subtest`).
    fn name(&self, i: usize) -> &str;
    fn status(&self, i: usize) -> TestStatus;
    fn duration(&self, i: usize) -> Option<Duration>;
    fn message(&self, i: usize) -> Option<&str>;
}

impl Results for Vec<TestRecord> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn name(&self, i: usize) -> &str {
        &self[i].name
    }
    fn status(&self, i: usize) -> TestStatus {
        self[i].status.clone()
    }
    fn duration(&self, i: usize) -> Option<Duration> {
        self[i].duration
    }
    fn message(&self, i: usize) -> Option<&str> {
        self[i].message.as_deref()
    }
}

/// How `t` is stored: its status as the store keeps it
/// ([`TestStatus::stored`]), flaky if it passed after failing in an
/// earlier attempt (`failed_before`: that attempt's message), and its
/// message: a failed or flaky test's own (else the earlier attempt's,
/// else the first line of its output), a skipped test's reason, none for
/// a passing one. Messages are cut to their first line
/// ([`short_message`]).
pub fn record(t: &TestResult, failed_before: Option<&str>) -> (TestStatus, Option<String>) {
    let status = match &t.status {
        TestStatus::Passed if failed_before.is_some() => TestStatus::Flaky,
        other => other.stored(),
    };
    let message = match (&status, &t.status) {
        (TestStatus::Failed | TestStatus::Flaky, _) => t
            .message
            .as_deref()
            .and_then(short_message)
            .or_else(|| failed_before.and_then(short_message))
            .or_else(|| short_message(&t.output)),
        (TestStatus::Skipped(_), TestStatus::Skipped(Some(why))) => short_message(why),
        _ => None,
    };
    (status, message)
}

/// The results to store when a name comes more than once among
/// `results` (test output can name one test twice: a TAP stream that
/// repeats a description, two paths that join to one name): for each
/// name, its worst result (failed, then flaky, then passed, then
/// skipped; the first of equals) in the place the name first appeared.
/// The indexes kept, in order; `None` when every name is unique, the
/// usual case, found by hashing names without copying one.
pub fn one_per_name<R: Results + ?Sized>(results: &R) -> Option<Vec<usize>> {
    let n = results.len();
    // Seeded per process; a collision only costs a comparison of names.
    let state = foldhash::fast::RandomState::default();
    // The hashes sorted, side by side, rather than a set: 8 bytes a
    // result where a set sized for them took 19 (a million results: the
    // recorder's peak, bench/many_tests.py).
    let mut hashes: Vec<u64> = (0..n).map(|i| state.hash_one(results.name(i))).collect();
    hashes.sort_unstable();
    let again: HashSet<u64> = hashes
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    drop(hashes);
    if again.is_empty() {
        return None;
    }
    // Only names whose hash came twice, compared whole: which result
    // each keeps, and where.
    let mut first: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut keep: Vec<Option<usize>> = (0..n).map(Some).collect();
    for i in 0..n {
        if !again.contains(&state.hash_one(results.name(i))) {
            continue;
        }
        let name = results.name(i);
        match first.get_mut(name) {
            None => {
                first.insert(name, (i, i));
            }
            Some((at, worst)) => {
                if severity(&results.status(i)) > severity(&results.status(*worst)) {
                    *worst = i;
                }
                keep[*at] = Some(*worst);
                keep[i] = None;
            }
        }
    }
    Some(keep.into_iter().flatten().collect())
}

fn severity(s: &TestStatus) -> u8 {
    match s {
        TestStatus::Skipped(_) => 0,
        TestStatus::Passed => 1,
        TestStatus::Flaky => 2,
        TestStatus::Failed | TestStatus::Error(_) => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, status: TestStatus) -> TestRecord {
        TestRecord {
            name: name.into(),
            status,
            duration: None,
            message: None,
        }
    }

    #[test]
    fn the_worst_result_of_a_name_where_it_first_appeared() {
        use TestStatus::{Failed, Flaky, Passed, Skipped};
        let unique = vec![rec("a", Passed), rec("b", Failed)];
        assert_eq!(one_per_name(&unique), None);
        let twice = vec![
            rec("a", Passed),
            rec("b", Skipped(None)),
            rec("a", Failed),
            rec("b", Passed),
            rec("c", Flaky),
            rec("a", Flaky),
        ];
        // `a` keeps its failure (2) in its place, `b` its pass (3).
        assert_eq!(one_per_name(&twice), Some(vec![2, 3, 4]));
    }

    #[test]
    fn a_result_is_stored_without_payload_and_with_its_message() {
        let t = |status: TestStatus, message: Option<&str>, output: &str| TestResult {
            path: vec!["t".into()],
            status,
            duration: None,
            output: output.into(),
            message: message.map(str::to_owned),
        };
        let error = t(TestStatus::Error("timed-out".into()), None, "\nboom\nmore");
        assert_eq!(
            record(&error, None),
            (TestStatus::Failed, Some("boom".into()))
        );
        let passed = t(TestStatus::Passed, Some("ignored"), "");
        assert_eq!(record(&passed, None), (TestStatus::Passed, None));
        assert_eq!(
            record(&passed, Some("first try: x\nmore")),
            (TestStatus::Flaky, Some("ignored".into()))
        );
        let quiet = t(TestStatus::Passed, None, "");
        assert_eq!(
            record(&quiet, Some("first try: x\nmore")),
            (TestStatus::Flaky, Some("first try: x".into()))
        );
        let skipped = t(TestStatus::Skipped(Some("no GPU".into())), None, "");
        assert_eq!(
            record(&skipped, None),
            (TestStatus::Skipped(None), Some("no GPU".into()))
        );
    }
}
