//! The BPF selftests' `test_progs` runner (tools/testing/selftests/bpf):
//!
//! ```text
//! test_add:PASS:skel_open 0 nsec
//! #2/1     atomics/add:OK
//! test_sub:FAIL:sub value unexpected: actual 1 != expected 2
//! #2/2     atomics/sub:FAIL
//! #2       atomics:FAIL
//! #60/3    xdp_bonding/xdp_bonding_redirect_multi:OK (SKIP: 1/2)
//! Summary: 300/1500 PASSED, 13 SKIPPED, 2 FAILED
//! ```
//!
//! A test's log is printed before its result line, so a subtest's output is
//! everything since the previous result line, and a top-level test's output
//! everything since the previous top-level result line (its own log and its
//! subtests'). The `All error logs:` section at the end repeats failed tests'
//! logs and result lines; results already reported are not reported again.

use std::collections::HashSet;
use std::time::Duration;

use super::{Ended, OutputTail, Parser, StreamVerdict, TestResult, TestStatus};

/// Longest path component kept (a name on a 1 MB line would otherwise be
/// kept whole).
const MAX_NAME: usize = 4096;

/// Parser of `test_progs` (and `test_maps`-style `#N name:OK`) output.
#[derive(Debug, Default)]
pub struct TestProgsParser {
    /// Output since the last result line of any kind (a subtest's output).
    sub_tail: OutputTail,
    /// Output since the last top-level result line (a test's output).
    top_tail: OutputTail,
    /// `(test number, subtest number)` of results reported, to skip the
    /// repeats in the `All error logs:` section.
    seen: HashSet<(u64, Option<u64>)>,
    top_failed: u64,
    /// The FAILED count of the `Summary:` line, once seen.
    summary_failed: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
struct ResultLine {
    num: u64,
    sub: Option<u64>,
    name: String,
    status: TestStatus,
}

impl TestProgsParser {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Parser for TestProgsParser {
    fn line(&mut self, line: &[u8], _at: Duration, done: &mut Vec<TestResult>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(r) = parse_result(line) {
            let key = (r.num, r.sub);
            let output = if r.sub.is_some() {
                self.sub_tail.text()
            } else {
                self.top_tail.text()
            };
            self.sub_tail.clear();
            if r.sub.is_none() {
                self.top_tail.clear();
            }
            if !self.seen.insert(key) {
                return; // a repeat in the `All error logs:` section
            }
            if r.sub.is_none() && r.status == TestStatus::Failed {
                self.top_failed += 1;
            }
            let path = match r.sub {
                Some(_) => match r.name.split_once('/') {
                    Some((test, sub)) => vec![clip(test), clip(sub)],
                    None => vec![clip(&r.name)],
                },
                None => vec![clip(&r.name)],
            };
            done.push(TestResult {
                path,
                status: r.status,
                duration: None,
                output,
                message: None,
            });
            return;
        }
        if let Some(failed) = parse_summary(line) {
            self.summary_failed = Some(failed);
            return;
        }
        self.sub_tail.push_line(line);
        self.top_tail.push_line(line);
    }

    fn finish(self: Box<Self>, ended: &Ended) -> (Vec<TestResult>, StreamVerdict) {
        let _cut_short = ended.cut_short();
        let mut problems = Vec::new();
        match self.summary_failed {
            None => problems.push("no Summary line: test_progs did not finish".to_string()),
            Some(failed) => {
                if failed > 0 && self.top_failed == 0 {
                    problems.push(format!(
                        "test_progs reported {failed} FAILED but no failed test was seen"
                    ));
                } else if failed != self.top_failed {
                    problems.push(format!(
                        "test_progs reported {failed} FAILED, {} failed tests were seen",
                        self.top_failed
                    ));
                }
            }
        }
        (Vec::new(), StreamVerdict { problems })
    }
}

/// `#2/1     atomics/add:OK`, `#141 netcnt:FAIL`, `#57 fexit_sleep:SKIP`,
/// `#60/3 a/b:OK (SKIP: 1/2)`.
fn parse_result(line: &[u8]) -> Option<ResultLine> {
    let rest = line.strip_prefix(b"#")?;
    let (num, rest) = digits(rest)?;
    let (sub, rest) = match rest.strip_prefix(b"/") {
        Some(r) => {
            let (n, r) = digits(r)?;
            (Some(n), r)
        }
        None => (None, rest),
    };
    // At least one space or tab between the number and the name.
    let name_start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    if name_start == 0 {
        return None;
    }
    let mut rest = trim_end(&rest[name_start..]);
    // `OK (SKIP: 1/2)`: passed with some subtests skipped.
    if rest.ends_with(b")") {
        if let Some(at) = find(rest, b" (SKIP: ") {
            rest = trim_end(&rest[..at]);
        } else {
            return None;
        }
    }
    let (name, status) = if let Some(n) = rest.strip_suffix(b":OK") {
        (n, TestStatus::Passed)
    } else if let Some(n) = rest.strip_suffix(b":FAIL") {
        (n, TestStatus::Failed)
    } else if let Some(n) = rest.strip_suffix(b":SKIP") {
        (n, TestStatus::Skipped(None))
    } else {
        return None;
    };
    if name.is_empty() {
        return None;
    }
    Some(ResultLine {
        num,
        sub,
        name: String::from_utf8_lossy(name).into_owned(),
        status,
    })
}

/// `Summary: 300/1500 PASSED, 13 SKIPPED, 2 FAILED`: the FAILED count (the
/// others count tests, subtests and partly skipped tests in ways that are
/// not comparable with the result lines).
fn parse_summary(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"Summary: ")?;
    let (_passed, rest) = digits(rest)?;
    let rest = rest.strip_prefix(b"/")?;
    let (_sub_passed, rest) = digits(rest)?;
    let rest = rest.strip_prefix(b" PASSED, ")?;
    let (_skipped, rest) = digits(rest)?;
    let rest = rest.strip_prefix(b" SKIPPED, ")?;
    let (failed, rest) = digits(rest)?;
    let rest = rest.strip_prefix(b" FAILED")?;
    if !trim_end(rest).is_empty() {
        return None;
    }
    Some(failed)
}

/// A decimal number at the start of `s` and what follows it.
fn digits(s: &[u8]) -> Option<(u64, &[u8])> {
    let end = s
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    if end == 0 || end > 19 {
        return None;
    }
    let (num, rest) = s.split_at(end);
    let n = std::str::from_utf8(num).ok()?.parse().ok()?;
    Some((n, rest))
}

fn trim_end(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &s[..end]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn clip(s: &str) -> String {
    super::clip(s, MAX_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsers::MAX_TEST_OUTPUT;
    use crate::parsers::parse_lines;
    use proptest::prelude::*;

    fn run(input: &[u8], cut_short: Option<&str>) -> (Vec<TestResult>, StreamVerdict) {
        parse_lines(
            Box::new(TestProgsParser::new()),
            input.split(|&b| b == b'\n'),
            cut_short,
        )
    }

    fn find_result<'a>(results: &'a [TestResult], path: &[&str]) -> &'a TestResult {
        results
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("no result {path:?} in {results:#?}"))
    }

    const NEW_FORMAT: &str = "\
#1       align:OK
test_add:PASS:skel_open 0 nsec
#2/1     atomics/add:OK
test_sub:PASS:skel_open 0 nsec
test_sub:FAIL:sub value unexpected: actual 1 != expected 2
#2/2     atomics/sub:FAIL
#2       atomics:FAIL
libbpf: prog 'handler': failed to load: -22
test_netcnt:FAIL:skel_open unexpected error: -22
#141     netcnt:FAIL
#57      fexit_sleep:SKIP
#60/3    xdp_bonding/xdp_bonding_redirect_multi:OK (SKIP: 1/2)
#60      xdp_bonding:OK (SKIP: 1/4)
#24/14   btf_dump/btf_dump: struct_data:OK

All error logs:
test_sub:PASS:skel_open 0 nsec
test_sub:FAIL:sub value unexpected: actual 1 != expected 2
#2/2     atomics/sub:FAIL
#2       atomics:FAIL
libbpf: prog 'handler': failed to load: -22
test_netcnt:FAIL:skel_open unexpected error: -22
#141     netcnt:FAIL
Summary: 4/3 PASSED, 2 SKIPPED, 2 FAILED
";

    #[test]
    fn new_format_with_error_log_section() {
        let (results, verdict) = run(NEW_FORMAT.as_bytes(), None);
        assert_eq!(verdict.problems, Vec::<String>::new());
        assert_eq!(results.len(), 9, "{results:#?}");
        assert_eq!(find_result(&results, &["align"]).status, TestStatus::Passed);
        assert_eq!(
            find_result(&results, &["atomics", "add"]).status,
            TestStatus::Passed
        );
        let sub = find_result(&results, &["atomics", "sub"]);
        assert_eq!(sub.status, TestStatus::Failed);
        assert!(sub.output.contains("sub value unexpected"));
        assert!(!sub.output.contains("test_add"));
        let atomics = find_result(&results, &["atomics"]);
        assert_eq!(atomics.status, TestStatus::Failed);
        assert!(atomics.output.contains("test_add:PASS"));
        assert!(atomics.output.contains("sub value unexpected"));
        assert!(!atomics.output.contains("netcnt"));
        let netcnt = find_result(&results, &["netcnt"]);
        assert_eq!(netcnt.status, TestStatus::Failed);
        assert!(netcnt.output.contains("libbpf: prog 'handler'"));
        assert!(netcnt.output.contains("test_netcnt:FAIL"));
        assert!(!netcnt.output.contains("test_sub"));
        assert_eq!(
            find_result(&results, &["fexit_sleep"]).status,
            TestStatus::Skipped(None)
        );
        assert_eq!(
            find_result(&results, &["xdp_bonding", "xdp_bonding_redirect_multi"]).status,
            TestStatus::Passed
        );
        assert_eq!(
            find_result(&results, &["xdp_bonding"]).status,
            TestStatus::Passed
        );
        assert_eq!(
            find_result(&results, &["btf_dump", "btf_dump: struct_data"]).status,
            TestStatus::Passed
        );
    }

    #[test]
    fn old_format_spacing() {
        let input = "\
test_netcnt:FAIL:bpf_prog_load unexpected error
#141 netcnt:FAIL
#24/14 btf_dump/btf_dump: struct_data:FAIL
#24 btf_dump:FAIL
#3\tbpf_obj_id:OK
Summary: 1/0 PASSED, 0 SKIPPED, 2 FAILED
";
        let (results, verdict) = run(input.as_bytes(), None);
        assert_eq!(verdict.problems, Vec::<String>::new());
        let paths: Vec<_> = results.iter().map(|r| r.name()).collect();
        assert_eq!(
            paths,
            [
                "netcnt",
                "btf_dump/btf_dump: struct_data",
                "btf_dump",
                "bpf_obj_id"
            ]
        );
        assert_eq!(
            find_result(&results, &["btf_dump", "btf_dump: struct_data"]).status,
            TestStatus::Failed
        );
        assert!(results[0].output.contains("test_netcnt:FAIL"));
        assert!(results[1].output.is_empty());
    }

    #[test]
    fn summary_disagrees() {
        let input = "#1 align:OK\nSummary: 1/0 PASSED, 0 SKIPPED, 3 FAILED\n";
        let (_, verdict) = run(input.as_bytes(), None);
        assert_eq!(verdict.problems.len(), 1);
        assert!(
            verdict.problems[0].contains("no failed test"),
            "{verdict:?}"
        );

        let input = "#1 align:FAIL\n#2 b:FAIL\nSummary: 0/0 PASSED, 0 SKIPPED, 1 FAILED\n";
        let (_, verdict) = run(input.as_bytes(), None);
        assert_eq!(verdict.problems.len(), 1);
        assert!(
            verdict.problems[0].contains("2 failed tests"),
            "{verdict:?}"
        );
    }

    #[test]
    fn crash_without_summary() {
        let input = "#1 align:OK\ntest_crash:PASS:setup\n";
        let (results, verdict) = run(input.as_bytes(), Some("timed out after 5s"));
        assert_eq!(results.len(), 1);
        assert_eq!(
            verdict.problems,
            ["no Summary line: test_progs did not finish"]
        );
        let (_, verdict) = run(input.as_bytes(), None);
        assert_eq!(verdict.problems.len(), 1);
    }

    #[test]
    fn garbage_crlf_and_long_lines() {
        let mut input = Vec::new();
        input.extend_from_slice(b"\xff\xfe garbage \0 bytes\r\n");
        input.extend_from_slice(&vec![b'x'; 1 << 20]);
        input.extend_from_slice(b"\n#1 \xffbad\xfename:FAIL\r\n");
        input.extend_from_slice(b"#2 good:OK\r\n");
        input.extend_from_slice(&[0xff; 100_000]);
        input.extend_from_slice(b"\n#5 invalid_utf8:FAIL\n");
        input.extend_from_slice(b"#3/1 \0:OK\r\n#3x broken:OK\n#4 :OK\n#4 nocolon\n");
        input.extend_from_slice(b"Summary: 1/1 PASSED, 0 SKIPPED, 2 FAILED\r\n");
        let (results, verdict) = run(&input, None);
        assert_eq!(verdict.problems, Vec::<String>::new());
        assert_eq!(results.len(), 4, "{results:#?}");
        assert_eq!(results[0].path, ["\u{fffd}bad\u{fffd}name"]);
        assert_eq!(results[0].status, TestStatus::Failed);
        assert!(results[0].output.len() <= MAX_TEST_OUTPUT + 200);
        assert!(results[0].output.starts_with("[warden: earlier output"));
        assert_eq!(results[1].path, ["good"]);
        assert!(results[1].output.is_empty());
        // Lossy decoding triples invalid bytes; the output stays bounded.
        assert_eq!(results[2].path, ["invalid_utf8"]);
        assert!(results[2].output.len() <= MAX_TEST_OUTPUT + 200);
        assert!(results[2].output.starts_with("[warden: earlier output"));
        assert_eq!(results[3].path, ["\0"]);
    }

    proptest! {
        #[test]
        fn never_panics_and_output_is_bounded(
            lines in proptest::collection::vec(
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..40),
                    (any::<u8>(), 0..70_000usize).prop_map(|(b, n)| vec![b; n]),
                    "#[0-9]{1,3}(/[0-9]{1,2})?[ \t]{0,3}[a-z/: ]{0,12}:(OK|FAIL|SKIP)( \\(SKIP: 1/2\\))?"
                        .prop_map(String::into_bytes),
                    "Summary: [0-9]/[0-9] PASSED, [0-9] SKIPPED, [0-9] FAILED"
                        .prop_map(String::into_bytes),
                ],
                0..20,
            ),
            cut in proptest::option::of("[a-z ]{0,10}"),
        ) {
            let (done, _) = parse_lines(
                Box::new(TestProgsParser::new()),
                lines.iter().map(Vec::as_slice),
                cut.as_deref(),
            );
            for r in &done {
                prop_assert!(r.output.len() <= MAX_TEST_OUTPUT + 200);
            }
        }
    }
}
