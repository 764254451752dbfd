//! One test listed more than once: a rerun of the same test, or another
//! test that happens to have the same name. The rule for both is here, so
//! that every reader (a batch's JUnit files, `warden import junit`) counts
//! a test once and gives it the same status.
//!
//! - **Reruns.** Results with the same path from the same *group* (one
//!   `<testsuite>` element of one file) are attempts of one test, in the
//!   order written: pytest-rerunfailures 16.6.1 and later list each attempt
//!   as a testcase (the failed ones but the last as empty, passing-looking
//!   testcases), `gotestsum --rerun-fails` lists a rerun test again later
//!   in its package's suite. They become one result by [`merge_attempts`].
//! - **Namesakes.** The same path in different groups (two `<testsuite>`s,
//!   two files: two bats files with a same-named test) are different tests
//!   and are never merged. The first keeps its name; a later one gets its
//!   group's label (a `file` attribute, else its suite's name) as
//!   ` (in LABEL)` when that tells it apart, else an ordinal ` #2`, ` #3`.

use std::collections::HashMap;

// Test paths come from the batch's output; foldhash is seeded per process
// and several times faster than SipHash on short keys (an import hashes
// each of a million paths twice).
use foldhash::fast::RandomState as Fast;
use std::sync::Arc;

use super::{OutputTail, TestResult};
use crate::status::TestStatus;
use crate::text::clip_message;

/// One result as read, with where it was read.
#[derive(Debug, Clone)]
pub struct Seen {
    pub result: TestResult,
    /// The `<testsuite>` element it was in, numbered over everything read
    /// together: results of one group with one path are reruns.
    pub group: usize,
    /// What tells its group apart from others: the testcase's or suite's
    /// `file` attribute, else the suite's name (shared by a suite's cases).
    pub label: Option<Arc<str>>,
}

/// The results of `seen`, in the order first seen: reruns merged, and
/// namesakes from other groups renamed so every path is unique.
///
/// Paths are looked up where they lie (keys borrowed from `seen`, then
/// from the merged results), not copied: an import assembles a million.
pub fn assemble(seen: Vec<Seen>) -> Vec<TestResult> {
    /// The attempts of one path in one group, in order.
    struct Tries {
        label: Option<Arc<str>>,
        first: TestResult,
        more: Vec<TestResult>,
    }
    // The tries each result belongs to, numbered in order of first sight.
    let mut slots: Vec<usize> = Vec::with_capacity(seen.len());
    let groups = {
        let mut at: HashMap<(&[String], usize), usize, Fast> =
            HashMap::with_capacity_and_hasher(seen.len(), Fast::default());
        for s in &seen {
            let next = at.len();
            slots.push(*at.entry((&s.result.path, s.group)).or_insert(next));
        }
        at.len()
    };
    let mut tries: Vec<Tries> = Vec::with_capacity(groups);
    for (s, slot) in seen.into_iter().zip(slots) {
        match tries.get_mut(slot) {
            Some(t) => t.more.push(s.result),
            // Slots are handed out in order: a new one is the next.
            None => tries.push(Tries {
                label: s.label,
                first: s.result,
                more: Vec::new(),
            }),
        }
    }
    let merged: Vec<(Option<Arc<str>>, TestResult)> = tries
        .into_iter()
        .filter_map(|t| {
            let result = if t.more.is_empty() {
                t.first
            } else {
                let mut attempts = Vec::with_capacity(1 + t.more.len());
                attempts.push(t.first);
                attempts.extend(t.more);
                merge_attempts(attempts)?
            };
            Some((t.label, result))
        })
        .collect();
    // New paths of namesakes, by index in `merged`.
    let mut renames: Vec<(usize, Vec<String>)> = Vec::new();
    {
        // Per path: how many groups had it, and the first one's label.
        // Paths as merged, borrowed; the few renamed ones owned.
        let mut taken: HashMap<&[String], (usize, Option<&str>), Fast> =
            HashMap::with_capacity_and_hasher(merged.len(), Fast::default());
        let mut renamed: HashMap<Vec<String>, (usize, Option<&str>)> = HashMap::new();
        for (i, (label, result)) in merged.iter().enumerate() {
            let path = result.path.as_slice();
            let entry = match taken.get_mut(path) {
                Some(e) => Some(e),
                None => renamed.get_mut(path),
            };
            match entry {
                None => {
                    taken.insert(path, (1, label.as_deref()));
                }
                Some((count, first_label)) => {
                    *count += 1;
                    let ordinal = *count;
                    let first_label = *first_label;
                    let by_label = label
                        .as_deref()
                        .filter(|l| !l.is_empty() && Some(*l) != first_label)
                        .map(|l| format!(" (in {l})"));
                    let new = unique(
                        |p| taken.contains_key(p) || renamed.contains_key(p),
                        path,
                        by_label,
                        ordinal,
                    );
                    renamed.insert(new.clone(), (1, None));
                    renames.push((i, new));
                }
            }
        }
    }
    let mut renames = renames.into_iter().peekable();
    merged
        .into_iter()
        .enumerate()
        .map(|(i, (_, mut result))| {
            if let Some((_, path)) = renames.next_if(|(at, _)| *at == i) {
                result.path = path;
            }
            result
        })
        .collect()
}

/// `path` with a suffix on its last part that no result has yet (`taken`
/// says which paths one has).
fn unique(
    taken: impl Fn(&[String]) -> bool,
    path: &[String],
    suffix: Option<String>,
    ordinal: usize,
) -> Vec<String> {
    let with = |suffix: &str| {
        let mut p = path.to_vec();
        match p.last_mut() {
            Some(last) => last.push_str(suffix),
            None => p.push(suffix.trim_start().to_owned()),
        }
        p
    };
    if let Some(s) = suffix {
        let p = with(&s);
        if !taken(&p) {
            return p;
        }
    }
    (ordinal.max(2)..)
        .map(|n| with(&format!(" #{n}")))
        .find(|p| !taken(p))
        .unwrap_or_else(|| with(" #?"))
}

/// The one result of a test run more than once (`attempts` in the order
/// run). A test is listed again in its suite only when it was rerun, and
/// it is rerun only after an attempt failed — even when that attempt left
/// no failure in the file: pytest-rerunfailures 16.6.1 and later write
/// each failed attempt but the last as an empty, passing-looking testcase.
/// So every attempt before the last was a failure, and the last attempt
/// that was not skipped is the verdict:
/// - it failed (or errored): its status, `failed N times: <the first
///   failure's message>`;
/// - it passed: [`TestStatus::Flaky`], with the first failure's message
///   (`passed on attempt N` when no attempt left one);
/// - every attempt was skipped: the last skip.
///
/// (A test listed again by `go test -count=2` through gotestsum also
/// reads as flaky: the file can't tell it from a rerun.)
///
/// The duration is the verdict's; the output is the failed attempts'
/// followed by the verdict's, bounded like any test's output. `None` only
/// when there is no attempt at all.
pub fn merge_attempts(mut attempts: Vec<TestResult>) -> Option<TestResult> {
    if attempts.len() <= 1 {
        return attempts.pop();
    }
    // Every attempt skipped: the last, which says why.
    let verdict_at = attempts
        .iter()
        .rposition(|a| !matches!(a.status, TestStatus::Skipped(_)))
        .unwrap_or(attempts.len() - 1);
    let failing = |s: &TestStatus| s.is_failure() || *s == TestStatus::Flaky;
    let first_failure = attempts
        .iter()
        .find(|a| failing(&a.status))
        .and_then(message_of);
    // The attempts that ran, the verdict among them.
    let ran = attempts
        .iter()
        .filter(|a| !matches!(a.status, TestStatus::Skipped(_)))
        .count();
    let n = attempts.len();
    let mut tail = OutputTail::default();
    for (i, a) in attempts.iter().enumerate() {
        if i != verdict_at && failing(&a.status) && !a.output.is_empty() {
            tail.push_line(format!("[warden: attempt {} of {n} failed]", i + 1).as_bytes());
            push_text(&mut tail, &a.output);
        }
    }
    // `verdict_at` indexes `attempts` (a position in it, or its last).
    let mut verdict = attempts.swap_remove(verdict_at);
    if !verdict.output.is_empty() {
        if !tail.is_empty() {
            tail.push_line(format!("[warden: attempt {} of {n}]", verdict_at + 1).as_bytes());
        }
        push_text(&mut tail, &verdict.output);
    }
    verdict.output = if tail.is_empty() {
        String::new()
    } else {
        tail.text()
    };
    if ran <= 1 {
        // One attempt ran; the others were skipped.
    } else if verdict.status.is_failure() {
        let message = match first_failure {
            Some(first) => format!("failed {ran} times: {first}"),
            None => format!("failed {ran} times"),
        };
        verdict.message = Some(clip_message(&message));
    } else {
        verdict.status = TestStatus::Flaky;
        verdict.message = Some(first_failure.unwrap_or_else(|| format!("passed on attempt {ran}")));
    }
    Some(verdict)
}

/// A failed attempt's message: its own, else the line of its output that
/// says what failed.
fn message_of(r: &TestResult) -> Option<String> {
    r.message
        .clone()
        .filter(|m| !m.trim().is_empty())
        .or_else(|| super::telling_line(&r.output, |_| false))
}

fn push_text(tail: &mut OutputTail, text: &str) {
    let text = text.strip_suffix('\n').unwrap_or(text);
    for line in text.split('\n') {
        tail.push_line(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TestStatus::{Failed, Flaky, Passed, Skipped};

    fn r(path: &str, status: TestStatus, message: Option<&str>) -> TestResult {
        TestResult {
            path: path.split('/').map(str::to_owned).collect(),
            status,
            duration: None,
            output: String::new(),
            message: message.map(str::to_owned),
        }
    }

    fn merged(attempts: Vec<TestResult>) -> (TestStatus, Option<String>) {
        let m = merge_attempts(attempts).unwrap();
        (m.status, m.message)
    }

    #[test]
    fn the_last_attempt_is_the_verdict() {
        let s = |m: &str| Some(m.to_owned());
        // Failed, then passed.
        assert_eq!(
            merged(vec![r("t", Failed, Some("x")), r("t", Passed, None)]),
            (Flaky, s("x"))
        );
        // Failed every time.
        assert_eq!(
            merged(vec![
                r("t", Failed, Some("x")),
                r("t", Failed, Some("y")),
                r("t", Failed, Some("z"))
            ]),
            (Failed, s("failed 3 times: x"))
        );
        // pytest-rerunfailures 16.6.1 on: failed attempts written as empty
        // testcases.
        assert_eq!(
            merged(vec![
                r("t", Passed, None),
                r("t", Passed, None),
                r("t", Failed, Some("assert False"))
            ]),
            (Failed, s("failed 3 times: assert False"))
        );
        assert_eq!(
            merged(vec![r("t", Passed, None), r("t", Passed, None)]),
            (Flaky, s("passed on attempt 2"))
        );
        // An error stays an error, with its type.
        assert_eq!(
            merged(vec![
                r("t", Failed, Some("x")),
                r("t", TestStatus::Error("error".into()), Some("setup"))
            ]),
            (TestStatus::Error("error".into()), s("failed 2 times: x"))
        );
        // Skips don't decide unless every attempt was skipped.
        assert_eq!(
            merged(vec![r("t", Failed, Some("x")), r("t", Skipped(None), None)]),
            (Failed, s("x"))
        );
        assert_eq!(
            merged(vec![r("t", Skipped(None), None), r("t", Passed, None)]),
            (Passed, None)
        );
        assert_eq!(
            merged(vec![
                r("t", Skipped(None), None),
                r("t", Skipped(Some("why".into())), None)
            ]),
            (Skipped(Some("why".into())), None)
        );
        assert_eq!(
            merged(vec![r("t", Flaky, Some("x")), r("t", Passed, None)]),
            (Flaky, s("x"))
        );
    }

    #[test]
    fn merged_output_keeps_the_failed_attempts() {
        let mut a = r("t", Failed, None);
        a.output = "boom\n".into();
        let mut b = r("t", Passed, None);
        b.output = "fine\n".into();
        let m = merge_attempts(vec![a, b]).unwrap();
        assert_eq!(m.status, Flaky);
        assert_eq!(m.message.as_deref(), Some("boom"));
        assert_eq!(
            m.output,
            "[warden: attempt 1 of 2 failed]\nboom\n[warden: attempt 2 of 2]\nfine\n"
        );
    }

    #[test]
    fn reruns_merge_and_namesakes_stay_apart() {
        let seen = |path: &str, status, group, label: Option<&str>| Seen {
            result: r(path, status, None),
            group,
            label: label.map(Arc::from),
        };
        let out = assemble(vec![
            seen("c/a", Failed, 0, Some("s1")),
            seen("c/b", Passed, 0, Some("s1")),
            seen("c/a", Passed, 0, Some("s1")),
            // Another suite with the same test: a namesake.
            seen("c/a", Passed, 1, Some("s2")),
            // A third suite of the same name: only an ordinal tells it apart.
            seen("c/a", Failed, 2, Some("s1")),
            seen("c/a", Passed, 3, None),
        ]);
        let got: Vec<(String, TestStatus)> =
            out.iter().map(|r| (r.name(), r.status.clone())).collect();
        assert_eq!(
            got,
            [
                ("c/a".to_owned(), Flaky),
                ("c/b".to_owned(), Passed),
                ("c/a (in s2)".to_owned(), Passed),
                ("c/a #3".to_owned(), Failed),
                ("c/a #4".to_owned(), Passed),
            ]
        );
    }
}
