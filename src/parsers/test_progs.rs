//! The BPF selftests' `test_progs` runner (tools/testing/selftests/bpf):
//!
//! ```text
//! test_add:PASS:skel_open 0 nsec
//! #2/1     atomics/add:OK
//! test_sub:FAIL:sub value unexpected: actual 1 != expected 2
//! #2/2     atomics/sub:FAIL
//! #2       atomics:FAIL
//! #60/3    xdp_bonding/xdp_bonding_redirect_multi:OK (SKIP: 1/2)
//! #60      xdp_bonding:OK (SKIP: 1/4)
//!
//! All error logs:
//! …the failed tests' logs and result lines again…
//! Summary: 300/1500 PASSED, 13 SKIPPED, 2 FAILED
//! ```
//!
//! (`print_test_result`, `print_subtest_name`, `dump_test_log` and
//! `calculate_summary_and_print_errors` in test_progs.c.) By default a
//! test's output is captured in memory and printed, with its subtests'
//! result lines, only when the test ends, just before its result line; so a
//! subtest's output is everything since the previous result line, and a
//! top-level test's output everything since the previous top-level result
//! line (its own log and its subtests'). The `All error logs:` section at
//! the end repeats failed tests' logs and result lines; results already
//! reported are not reported again. Log lines of the `CHECK`/`ASSERT_*`
//! macros are `func:PASS:tag N nsec` and `func:FAIL:tag message`; a failed
//! test's message is its first `FAIL` line (the first check that failed;
//! later ones often follow from it).
//!
//! Durations: test_progs prints none (the `N nsec` of a check is not the
//! test's). A top-level test's duration is measured from the arrival of the
//! previous top-level result line to its own. Subtests get none: without
//! `-v` their result lines are printed in one burst when their test ends,
//! so arrival times say nothing about them.
//!
//! The test still running when the output ends: nothing of it is printed
//! before it ends unless test_progs runs with `-v`, which prints log lines
//! and subtest result lines as they happen. So it is named when the output
//! names it: a test whose subtests were reported but whose own result line
//! was not (that name is exact), else the first `func:PASS:`/`func:FAIL:`
//! log line after the last result (test_progs runs test `foo` by calling
//! `test_foo` or `serial_test_foo`, so the name without that prefix is the
//! test's name when the entry function printed it; the message says the
//! name was inferred). Otherwise it can't be named, and the verdict says
//! which result it followed. When test_progs catches a crash signal it
//! prints the crashed test's result line (`FAIL`) itself, then `Caught
//! signal #N!` and a stack trace.
//!
//! `--json-summary FILE` ([`merge_json_summary`], read after the batch
//! ends): `{"success":N,"success_subtest":N,"skipped":N,"failed":N,
//! "results":[{"name":…,"number":N,"message":"<log>","failed":bool,
//! "subtests":[{"name":…,"number":N,"message":"<log>","failed":bool}]}]}`
//! with an entry per failed test and, inside it, per failed subtest (the
//! same tests `All error logs:` repeats; none with `-v`). `message` is the
//! test's whole captured log, its subtests' logs not included.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{Ended, OutputTail, Parser, StreamVerdict, TestResult, telling_line};
use crate::status::TestStatus;
use crate::text::{clip, clip_message};

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
    /// When the last top-level result line arrived: the next test's
    /// duration starts there.
    last_top_at: Duration,
    /// When the last line arrived.
    last_at: Duration,
    /// A test whose subtests were reported but not yet itself: `-v` prints
    /// subtest results as they end, so this is the test running now.
    open: Option<(u64, String)>,
    /// The function of the first `func:PASS:`/`func:FAIL:` line since the
    /// last top-level result (`-v` prints log lines as they happen).
    log_func: Option<String>,
    /// `#12 name` of the last top-level result line, to say where an
    /// unfinished run stopped.
    last_result: Option<String>,
    /// `Caught signal #11!`, printed when a test crashed.
    caught_signal: Option<String>,
    /// Past `All error logs:`: only repeats follow.
    in_error_logs: bool,
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
    fn line(&mut self, line: &[u8], at: Duration, done: &mut Vec<TestResult>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.last_at = at;
        if let Some(r) = parse_result(line) {
            self.result(r, at, done);
            return;
        }
        if let Some(failed) = parse_summary(line) {
            self.summary_failed = Some(failed);
            return;
        }
        if line == b"All error logs:" {
            self.in_error_logs = true;
        } else if !self.in_error_logs {
            if self.log_func.is_none() {
                self.log_func = check_function(line).map(str::to_owned);
            }
            if line.starts_with(b"Caught signal #") {
                self.caught_signal = Some(clip_name(&String::from_utf8_lossy(line)));
            }
        }
        self.sub_tail.push_line(line);
        self.top_tail.push_line(line);
    }

    fn finish(self: Box<Self>, ended: &Ended) -> (Vec<TestResult>, StreamVerdict) {
        let mut problems = Vec::new();
        let mut rest = Vec::new();
        match self.summary_failed {
            None => {
                let mut problem = "no Summary line: test_progs did not finish".to_string();
                let output = self.top_tail.text();
                let duration = Some(self.last_at.saturating_sub(self.last_top_at));
                if let Some((_, name)) = self.open {
                    rest.push(ended.result(vec![name], output, duration));
                } else if let Some(func) = self.log_func.filter(|_| !self.in_error_logs) {
                    let name = func
                        .strip_prefix("serial_test_")
                        .or_else(|| func.strip_prefix("test_"))
                        .filter(|n| !n.is_empty())
                        .unwrap_or(&func);
                    let mut r = ended.result(vec![name.to_string()], output, duration);
                    r.message = Some(format!(
                        "{} (test named from its log line `{func}:…`)",
                        ended.reason
                    ));
                    rest.push(r);
                } else if self.caught_signal.is_some() {
                    // Without -v the handler printed the crashed test's
                    // result line itself: nothing is left open.
                } else if !self.in_error_logs {
                    match &self.last_result {
                        Some(last) => problem.push_str(&format!(
                            "; it stopped after {last}; the test running then printed nothing \
                             (without -v test_progs prints a test's log when it ends)"
                        )),
                        None => problem.push_str("; no test reported a result"),
                    }
                }
                if let Some(signal) = &self.caught_signal {
                    let last = self.last_result.as_deref().unwrap_or("the start");
                    problem.push_str(&format!("; {signal} (after {last})"));
                }
                problems.push(problem);
            }
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
        (rest, StreamVerdict { problems })
    }
}

impl TestProgsParser {
    fn result(&mut self, r: ResultLine, at: Duration, done: &mut Vec<TestResult>) {
        let key = (r.num, r.sub);
        let output = if r.sub.is_some() {
            self.sub_tail.text()
        } else {
            self.top_tail.text()
        };
        self.sub_tail.clear();
        if r.sub.is_none() {
            self.top_tail.clear();
            self.log_func = None;
        }
        if !self.seen.insert(key) {
            return; // a repeat in the `All error logs:` section
        }
        let duration = match r.sub {
            Some(_) => None,
            None => {
                let d = at.saturating_sub(self.last_top_at);
                self.last_top_at = at;
                Some(d)
            }
        };
        let path = match r.sub {
            Some(_) => match r.name.split_once('/') {
                Some((test, sub)) => vec![clip_name(test), clip_name(sub)],
                None => vec![clip_name(&r.name)],
            },
            None => vec![clip_name(&r.name)],
        };
        match r.sub {
            None => {
                if r.status == TestStatus::Failed {
                    self.top_failed += 1;
                }
                self.last_result = Some(format!("#{} {}", r.num, path[0]));
                self.open = None;
            }
            Some(_) if !self.seen.contains(&(r.num, None)) => {
                self.open = Some((r.num, path[0].clone()));
            }
            Some(_) => {}
        }
        let message = (r.status == TestStatus::Failed)
            .then(|| failure_message(&output))
            .flatten();
        done.push(TestResult {
            path,
            status: r.status,
            duration,
            output,
            message,
        });
    }
}

/// What a failed test's log says failed: its first `func:FAIL:` line (the
/// first check that failed), else the line [`telling_line`] picks.
fn failure_message(log: &str) -> Option<String> {
    log.lines()
        .map(str::trim_end)
        .find(|l| check_function(l.as_bytes()).is_some() && l.contains(":FAIL:"))
        .map(clip_message)
        .or_else(|| telling_line(log, |_| false))
}

/// `test_foo` of a check's log line `test_foo:PASS:tag 0 nsec` or
/// `test_foo:FAIL:tag message` (a C identifier, then the verdict).
fn check_function(line: &[u8]) -> Option<&str> {
    let colon = line.iter().position(|&b| b == b':')?;
    let (func, rest) = line.split_at(colon);
    let ident = !func.is_empty()
        && !func[0].is_ascii_digit()
        && func.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_');
    if !ident || !(rest.starts_with(b":PASS:") || rest.starts_with(b":FAIL:")) {
        return None;
    }
    std::str::from_utf8(func).ok()
}

/// The largest `--json-summary` file read: it holds the failed tests' whole
/// logs (verifier logs can be long), but a bigger one is not test_progs'.
pub const MAX_JSON_SUMMARY: u64 = 64 << 20;

/// How much older than the batch's start a `--json-summary` file may look
/// and still be this run's: file systems with coarse timestamps round the
/// modification time down.
const MTIME_SLACK: Duration = Duration::from_secs(2);

/// What reading a `--json-summary` file found beyond the tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct JsonSummaryRead {
    /// Makes the batch fail: the file is unreadable or malformed, or
    /// disagrees with the output.
    pub problems: Vec<String>,
    /// Shown, status unchanged: the file is missing or left from an
    /// earlier run, so the output's results stand alone.
    pub warnings: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
struct JsonSummary {
    failed: u64,
    #[serde(default)]
    results: Vec<JsonTest>,
}

#[derive(Debug, serde::Deserialize)]
struct JsonTest {
    name: String,
    #[serde(default)]
    message: String,
    failed: bool,
    #[serde(default)]
    subtests: Vec<JsonSubtest>,
}

#[derive(Debug, serde::Deserialize)]
struct JsonSubtest {
    name: String,
    #[serde(default)]
    message: String,
    failed: bool,
}

/// Reads test_progs' `--json-summary` file at `path` (the batch's cwd
/// joined with `json-summary`) after the batch ended, and folds it into
/// `tests`, the results read from the output: the output gives the passes,
/// the file the failures and their logs. A failed test's message comes from
/// its log in the file; a test only in the file is added; a test the output
/// says passed and the file says failed is failed (and a problem). A file
/// older than `started` (the batch's start) was not written by this run and
/// is ignored, as is a missing one (warnings); one that is not a regular
/// file, too big or not test_progs' JSON is a problem. Never panics.
pub fn merge_json_summary(
    tests: &mut Vec<TestResult>,
    path: &Path,
    started: SystemTime,
) -> JsonSummaryRead {
    let mut read = JsonSummaryRead::default();
    let shown = path.display();
    let text = match read_bounded(path, started) {
        Ok(Some(text)) => text,
        Ok(None) => {
            read.warnings.push(format!(
                "json summary {shown} is older than the batch: not written by this run, ignored"
            ));
            return read;
        }
        Err(ReadError::Missing) => {
            read.warnings.push(format!(
                "json summary {shown} not found: test_progs did not write it \
                 (is `--json-summary {shown}` on its command line?)"
            ));
            return read;
        }
        Err(ReadError::Problem(p)) => {
            read.problems.push(format!("json summary {shown}: {p}"));
            return read;
        }
    };
    if text.trim().is_empty() {
        read.problems.push(format!(
            "json summary {shown} is empty: test_progs writes it when it finishes"
        ));
        return read;
    }
    let summary: JsonSummary = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => {
            read.problems
                .push(format!("json summary {shown} is not test_progs' JSON: {e}"));
            return read;
        }
    };
    for test in &summary.results {
        let top = vec![clip_name(&test.name)];
        merge_one(tests, top.clone(), test.failed, &test.message, &mut read);
        for sub in &test.subtests {
            let path = vec![top[0].clone(), clip_name(&sub.name)];
            merge_one(tests, path, sub.failed, &sub.message, &mut read);
        }
    }
    // With `-v` the file lists no tests but still counts them: compare the
    // count with every top-level result known.
    let failed = tests
        .iter()
        .filter(|t| t.path.len() == 1 && t.status.is_failure())
        .count();
    if u64::try_from(failed).ok() != Some(summary.failed) {
        read.problems.push(format!(
            "json summary {shown} counts {} failed tests, {failed} were seen",
            summary.failed
        ));
    }
    read
}

fn merge_one(
    tests: &mut Vec<TestResult>,
    path: Vec<String>,
    failed: bool,
    log: &str,
    read: &mut JsonSummaryRead,
) {
    let status = if failed {
        TestStatus::Failed
    } else {
        TestStatus::Passed
    };
    let message = if failed { failure_message(log) } else { None };
    let Some(t) = tests.iter_mut().find(|t| t.path == path) else {
        // A passing test's output is not kept (store-success-output aside).
        let mut output = OutputTail::default();
        if failed {
            log.lines().for_each(|l| output.push_line(l.as_bytes()));
        }
        tests.push(TestResult {
            path,
            status,
            duration: None,
            output: output.text(),
            message,
        });
        return;
    };
    if !failed {
        return;
    }
    if !t.status.is_failure() {
        read.problems.push(format!(
            "{}: the output says {:?}, the json summary says failed",
            t.name(),
            t.status
        ));
        t.status = TestStatus::Failed;
    }
    if message.is_some() {
        t.message = message;
    }
    if t.output.is_empty() && !log.is_empty() {
        let mut output = OutputTail::default();
        log.lines().for_each(|l| output.push_line(l.as_bytes()));
        t.output = output.text();
    }
}

enum ReadError {
    Missing,
    Problem(String),
}

/// The file's text, at most [`MAX_JSON_SUMMARY`] bytes, or `None` when it
/// is older than `started`. Opened without blocking (a FIFO in its place
/// would otherwise wait for a writer forever), then checked to be a regular
/// file.
fn read_bounded(path: &Path, started: SystemTime) -> Result<Option<String>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => return Err(ReadError::Problem(format!("cannot open: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| ReadError::Problem(format!("cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(ReadError::Problem("not a regular file".to_string()));
    }
    if meta.len() > MAX_JSON_SUMMARY {
        return Err(ReadError::Problem(format!(
            "{} bytes, more than the {MAX_JSON_SUMMARY} read",
            meta.len()
        )));
    }
    if let Ok(modified) = meta.modified()
        // Checked: a file's mtime can be set to anything.
        && modified.checked_add(MTIME_SLACK).is_some_and(|m| m < started)
    {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(MAX_JSON_SUMMARY + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Problem(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_JSON_SUMMARY {
        return Err(ReadError::Problem(format!(
            "grew past the {MAX_JSON_SUMMARY} bytes read"
        )));
    }
    // json_writer escapes what it writes, but a test's log may hold any
    // bytes: keep the file readable rather than reject it.
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
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

fn clip_name(s: &str) -> String {
    clip(s, MAX_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsers::MAX_TEST_OUTPUT;
    use crate::parsers::test_support::{Parsed, ended, feed, get, parse, parse_ended, timed_out};
    use proptest::prelude::*;
    use std::path::Path;

    fn run(input: &[u8], cut_short: Option<&str>) -> Parsed {
        parse(TestProgsParser::new(), input, cut_short)
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
        assert_eq!(get(&results, &["align"]).status, TestStatus::Passed);
        assert_eq!(
            get(&results, &["atomics", "add"]).status,
            TestStatus::Passed
        );
        let sub = get(&results, &["atomics", "sub"]);
        assert_eq!(sub.status, TestStatus::Failed);
        assert!(sub.output.contains("sub value unexpected"));
        assert!(!sub.output.contains("test_add"));
        let atomics = get(&results, &["atomics"]);
        assert_eq!(atomics.status, TestStatus::Failed);
        assert!(atomics.output.contains("test_add:PASS"));
        assert!(atomics.output.contains("sub value unexpected"));
        assert!(!atomics.output.contains("netcnt"));
        let netcnt = get(&results, &["netcnt"]);
        assert_eq!(netcnt.status, TestStatus::Failed);
        assert!(netcnt.output.contains("libbpf: prog 'handler'"));
        assert!(netcnt.output.contains("test_netcnt:FAIL"));
        assert!(!netcnt.output.contains("test_sub"));
        assert_eq!(
            get(&results, &["fexit_sleep"]).status,
            TestStatus::Skipped(None)
        );
        assert_eq!(
            get(&results, &["xdp_bonding", "xdp_bonding_redirect_multi"]).status,
            TestStatus::Passed
        );
        assert_eq!(get(&results, &["xdp_bonding"]).status, TestStatus::Passed);
        assert_eq!(
            get(&results, &["btf_dump", "btf_dump: struct_data"]).status,
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
            get(&results, &["btf_dump", "btf_dump: struct_data"]).status,
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

    /// Feeds `input` and finishes with `ended`.
    fn run_ended(input: &str, ended: &Ended) -> Parsed {
        parse_ended(TestProgsParser::new(), input, ended)
    }

    #[test]
    fn synthetic_open_test_named_by_its_subtests() {
        // -v: subtest results are printed as they end, the test's own
        // result only when it ends.
        let input = "\
#1       align:OK
test_add:PASS:skel_open 0 nsec
#2/1     atomics/add:OK
test_sub:PASS:skel_open 0 nsec
";
        let (results, verdict) = run_ended(input, &timed_out());
        assert_eq!(results.len(), 3, "{results:#?}");
        let open = get(&results, &["atomics"]);
        assert_eq!(open.status, TestStatus::Error("timed-out".into()));
        assert_eq!(open.message.as_deref(), Some("timed out after 5s"));
        assert!(open.output.contains("test_sub:PASS"));
        assert_eq!(open.duration, Some(Duration::from_millis(3)));
        assert_eq!(
            verdict.problems,
            ["no Summary line: test_progs did not finish"]
        );
        // Exited by itself mid-test: the open test failed.
        let (results, _) = run_ended(input, &Ended::exited());
        let open = get(&results, &["atomics"]);
        assert_eq!(open.status, TestStatus::Failed);
        assert_eq!(open.message.as_deref(), Some("no result"));
    }

    #[test]
    fn synthetic_open_test_named_by_its_log_line() {
        let input = "#1 align:OK\nlibbpf: loading object\nserial_test_crash:PASS:setup 0 nsec\n";
        let (results, verdict) = run_ended(input, &timed_out());
        assert_eq!(results.len(), 2, "{results:#?}");
        let open = get(&results, &["crash"]);
        assert_eq!(open.status, TestStatus::Error("timed-out".into()));
        assert_eq!(
            open.message.as_deref(),
            Some("timed out after 5s (test named from its log line `serial_test_crash:…`)")
        );
        assert!(open.output.contains("libbpf: loading object"));
        assert_eq!(verdict.problems.len(), 1);
    }

    #[test]
    fn synthetic_open_test_without_output_is_not_named() {
        let (results, verdict) = run_ended("#1 align:OK\n#2 b:OK\n", &timed_out());
        assert_eq!(results.len(), 2);
        assert_eq!(verdict.problems.len(), 1);
        assert!(
            verdict.problems[0]
                .contains("stopped after #2 b; the test running then printed nothing"),
            "{verdict:?}"
        );
        let (_, verdict) = run_ended("", &timed_out());
        assert!(verdict.problems[0].contains("no test reported a result"));
    }

    #[test]
    fn synthetic_crash_handler_output() {
        // crash_handler: the crashed test's log and FAIL result, then the
        // signal and a stack trace on stderr; no Summary.
        let input = "\
#1       align:OK
test_oops:PASS:skel_open 0 nsec
#2       oops:FAIL
Caught signal #11!
Stack trace:
./test_progs(crash_handler+0x1f)[0x55d1]
";
        let crashed = Ended::batch(crate::status::Status::Crashed, "killed by SIGSEGV");
        let (results, verdict) = run_ended(input, &crashed);
        assert_eq!(results.len(), 2, "{results:#?}");
        assert_eq!(get(&results, &["oops"]).status, TestStatus::Failed);
        assert_eq!(
            verdict.problems,
            ["no Summary line: test_progs did not finish; Caught signal #11! (after #2 oops)"]
        );
    }

    #[test]
    fn synthetic_message_is_the_first_fail_line() {
        let input = "\
test_foo:PASS:skel_open 0 nsec
test_foo:FAIL:check_value unexpected value: actual 3 != expected 4
test_foo:FAIL:check_other unexpected other: actual 1 != expected 2
#1       foo:FAIL
libbpf: prog 'x': failed to load: -22
#2/1     bar/sub:FAIL
#2       bar:FAIL
#3       baz:FAIL
Summary: 0/0 PASSED, 0 SKIPPED, 3 FAILED
";
        let (results, verdict) = run(input.as_bytes(), None);
        assert_eq!(verdict.problems, Vec::<String>::new());
        assert_eq!(
            get(&results, &["foo"]).message.as_deref(),
            Some("test_foo:FAIL:check_value unexpected value: actual 3 != expected 4")
        );
        // No FAIL line: the last line that says something.
        assert_eq!(
            get(&results, &["bar", "sub"]).message.as_deref(),
            Some("libbpf: prog 'x': failed to load: -22")
        );
        assert_eq!(get(&results, &["baz"]).message, None);
    }

    #[test]
    fn synthetic_durations_from_arrival_times() {
        let input = "\
#1       align:OK
log
log
#2/1     atomics/add:OK
#2       atomics:OK
";
        let (results, _) = run(input.as_bytes(), None);
        // Line i arrives at i ms.
        assert_eq!(get(&results, &["align"]).duration, Some(Duration::ZERO));
        assert_eq!(
            get(&results, &["atomics"]).duration,
            Some(Duration::from_millis(4))
        );
        assert_eq!(get(&results, &["atomics", "add"]).duration, None);
    }

    fn json_file(dir: &Path, body: &str) -> std::path::PathBuf {
        let path = dir.join("summary.json");
        std::fs::write(&path, body).unwrap();
        path
    }

    fn old() -> SystemTime {
        SystemTime::now() - Duration::from_secs(3600)
    }

    #[test]
    fn synthetic_json_summary_gives_failures_their_messages() {
        // The shape of calculate_summary_and_print_errors: only failed
        // tests, and in them only failed subtests.
        let input = "\
#1       align:OK
#2/1     atomics/add:OK
#2/2     atomics/sub:FAIL
#2       atomics:FAIL
#3       netcnt:FAIL
Summary: 1/1 PASSED, 0 SKIPPED, 2 FAILED
";
        let (mut tests, verdict) = run(input.as_bytes(), None);
        assert_eq!(verdict.problems, Vec::<String>::new());
        let dir = tempfile::tempdir().unwrap();
        let path = json_file(
            dir.path(),
            r#"{"success":1,"success_subtest":1,"skipped":0,"failed":3,"results":[
  {"name":"atomics","number":2,"message":"","failed":true,"subtests":[
    {"name":"sub","number":2,"message":"test_sub:PASS:skel_open 0 nsec\ntest_sub:FAIL:sub value unexpected: actual 1 != expected 2\n","failed":true}]},
  {"name":"netcnt","number":3,"message":"libbpf: failed\ntest_netcnt:FAIL:skel_open unexpected error: -22\n","failed":true,"subtests":[]},
  {"name":"only_in_json","number":4,"message":"test_x:FAIL:x unexpected x: actual 0 != expected 1\n","failed":true,"subtests":[]}
]}"#,
        );
        let read = merge_json_summary(&mut tests, &path, old());
        assert_eq!(read, JsonSummaryRead::default());
        let sub = get(&tests, &["atomics", "sub"]);
        assert_eq!(
            sub.message.as_deref(),
            Some("test_sub:FAIL:sub value unexpected: actual 1 != expected 2")
        );
        assert!(sub.output.contains("test_sub:PASS:skel_open"));
        assert_eq!(
            get(&tests, &["netcnt"]).message.as_deref(),
            Some("test_netcnt:FAIL:skel_open unexpected error: -22")
        );
        let added = get(&tests, &["only_in_json"]);
        assert_eq!(added.status, TestStatus::Failed);
        assert_eq!(
            added.message.as_deref(),
            Some("test_x:FAIL:x unexpected x: actual 0 != expected 1")
        );
        assert_eq!(tests.len(), 6);
    }

    #[test]
    fn synthetic_json_summary_disagreements_are_problems() {
        let (mut tests, _) = run(
            b"#1 align:OK\nSummary: 1/0 PASSED, 0 SKIPPED, 0 FAILED\n",
            None,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = json_file(
            dir.path(),
            r#"{"success":0,"success_subtest":0,"skipped":0,"failed":2,"results":[{"name":"align","number":1,"message":"","failed":true,"subtests":[]}]}"#,
        );
        let read = merge_json_summary(&mut tests, &path, old());
        assert_eq!(tests[0].status, TestStatus::Failed);
        assert_eq!(read.problems.len(), 2, "{read:?}");
        assert!(read.problems[0].contains("align: the output says Passed"));
        assert!(read.problems[1].contains("counts 2 failed tests, 1 were seen"));
    }

    #[test]
    fn synthetic_json_summary_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut tests = Vec::new();
        // Missing: a warning, the output's results stand.
        let read = merge_json_summary(&mut tests, &dir.path().join("nope.json"), old());
        assert!(read.problems.is_empty());
        assert!(read.warnings[0].contains("not found"), "{read:?}");
        // Stale: older than the batch.
        let path = json_file(dir.path(), r#"{"failed":0,"results":[]}"#);
        let later = SystemTime::now() + Duration::from_secs(60);
        let read = merge_json_summary(&mut tests, &path, later);
        assert!(read.problems.is_empty());
        assert!(
            read.warnings[0].contains("older than the batch"),
            "{read:?}"
        );
        // Malformed, empty, absurd numbers, not an object: problems.
        for body in [
            r#"{"failed":"#,
            "",
            "  \n",
            r#"{"failed":1e30,"results":[]}"#,
            "[1,2]",
            r#"{"failed":-1}"#,
        ] {
            let path = json_file(dir.path(), body);
            let read = merge_json_summary(&mut tests, &path, old());
            assert_eq!(read.problems.len(), 1, "{body:?}: {read:?}");
            assert!(read.warnings.is_empty());
        }
        assert!(tests.is_empty());
        // A directory, a FIFO (must not block), too big: problems.
        let read = merge_json_summary(&mut tests, dir.path(), old());
        assert!(read.problems[0].contains("not a regular file"), "{read:?}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let read = merge_json_summary(&mut tests, &fifo, old());
        assert!(read.problems[0].contains("not a regular file"), "{read:?}");
        let big = dir.path().join("big.json");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_JSON_SUMMARY + 1).unwrap();
        let read = merge_json_summary(&mut tests, &big, old());
        assert!(read.problems[0].contains("more than"), "{read:?}");
    }

    #[test]
    fn synthetic_json_summary_invalid_utf8_and_huge_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let mut body = b"{\"failed\":1,\"results\":[{\"name\":\"x\xff\",".to_vec();
        body.extend_from_slice(br#""number":1,"failed":true,"message":""#);
        body.extend(std::iter::repeat_n(b'y', 200_000));
        body.extend_from_slice(br#"\ntest_x:FAIL:"#);
        body.extend(std::iter::repeat_n(b'z', 10_000));
        body.extend_from_slice(br#""}]}"#);
        std::fs::write(&path, body).unwrap();
        let mut tests = Vec::new();
        let read = merge_json_summary(&mut tests, &path, old());
        assert!(read.problems.is_empty(), "{read:?}");
        assert_eq!(tests.len(), 1);
        assert_eq!(tests[0].path, ["x\u{fffd}"]);
        assert!(tests[0].output.len() <= MAX_TEST_OUTPUT + 200);
        let message = tests[0].message.as_deref().unwrap();
        assert!(message.starts_with("test_x:FAIL:zzz"));
        assert!(message.len() <= crate::text::MAX_MESSAGE + 4);
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
            let (done, _) = feed(
                TestProgsParser::new(),
                lines.iter().map(Vec::as_slice),
                &ended(cut.as_deref()),
            );
            for r in &done {
                prop_assert!(r.output.len() <= MAX_TEST_OUTPUT + 200);
            }
        }
    }
}
