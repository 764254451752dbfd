//! cargo test's human output (libtest's "pretty" format), possibly several
//! test binaries in a row (`Running unittests src/lib.rs (…)`,
//! `Running tests/foo.rs (…)`, `Doc-tests name`).
//!
//! A failed test's captured output comes later, in the `---- name stdout ----`
//! sections after all tests ran, so FAILED results are held back until the
//! `failures:` list, the `test result:` line, the next binary or the end.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::{Ended, OutputTail, Parser, StreamVerdict, TestResult, TestStatus};

/// The message of a test that started but never ended.
const NO_RESULT: &str = "no result (the test binary exited or was killed)";

/// Longest message kept (a panic message, an ignore reason).
const MAX_MESSAGE: usize = 512;

static RUNNING: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^ {5}Running (.+?)(?: \([^()]*\))?\s*$").ok());
static DOC_TESTS: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^ {3}Doc-tests \S+\s*$").ok());
static RUNNING_N: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^running \d+ tests?$").ok());
static TEST_RESULT: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^test result: (?:ok|FAILED)\. (\d+) passed; (\d+) failed;").ok());

fn matches(re: &LazyLock<Option<Regex>>, s: &str) -> bool {
    re.as_ref().is_some_and(|re| re.is_match(s))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Between binaries (or before the first).
    Idle,
    /// `running N tests` seen: `test x ... ok` lines.
    Tests,
    /// After the first `failures:`: `---- x stdout ----` sections.
    Sections,
    /// After the second `failures:`: the indented names.
    List,
}

struct Failure {
    name: String,
    output: OutputTail,
    message: Option<String>,
    /// The previous line was `thread 'x' panicked at file:line:col:`; the
    /// panic message comes next.
    panic_next: bool,
    duration: Option<Duration>,
}

impl Failure {
    fn new(name: String) -> Self {
        Failure {
            name,
            output: OutputTail::default(),
            message: None,
            panic_next: false,
            duration: None,
        }
    }

    fn push(&mut self, line: &str) {
        if self.message.is_none() {
            if self.panic_next {
                self.message = Some(clip(line.trim()));
            } else if let Some((_, after)) = line.split_once("panicked at ") {
                if after.ends_with(':') {
                    self.panic_next = true;
                } else {
                    // Before Rust 1.73: `panicked at 'msg', src/lib.rs:10:5`.
                    let msg = after
                        .strip_prefix('\'')
                        .and_then(|m| m.rsplit_once("', "))
                        .map_or(after, |(m, _)| m);
                    self.message = Some(clip(msg));
                }
            }
        }
        if !line.contains("panicked at ") {
            self.panic_next = false;
        }
        self.output.push_line(line.as_bytes());
    }
}

/// Parser of cargo test's / libtest's human-readable output.
pub struct LibtestParser {
    /// The current binary's path element (`unittests src/lib.rs`).
    binary: Option<String>,
    mode: Mode,
    /// FAILED tests not yet reported (waiting for their output section).
    failures: Vec<Failure>,
    /// Index into `failures` of the section being read.
    section: Option<usize>,
    /// Blank lines not yet added to the section (trailing ones are not).
    blanks: usize,
    /// Failures of this binary already reported.
    reported: HashSet<String>,
    /// Tests announced with `has been running for over 60 seconds`.
    long_running: Vec<String>,
    /// A test whose `test x ... ` line had no result (it printed output
    /// with --nocapture); its `ok`/`FAILED` comes on a later line.
    awaiting: Option<Failure>,
    problems: Vec<String>,
}

impl Default for LibtestParser {
    fn default() -> Self {
        Self::new()
    }
}

enum Outcome {
    Passed,
    Failed,
    Ignored(Option<String>),
    LongRunning,
    /// No result on this line; the text after `... `, if any, is output.
    Pending(String),
}

impl LibtestParser {
    pub fn new() -> Self {
        LibtestParser {
            binary: None,
            mode: Mode::Idle,
            failures: Vec::new(),
            section: None,
            blanks: 0,
            reported: HashSet::new(),
            long_running: Vec::new(),
            awaiting: None,
            problems: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> Vec<String> {
        let mut path = Vec::with_capacity(2);
        if let Some(b) = &self.binary {
            path.push(b.clone());
        }
        path.push(name.to_owned());
        path
    }

    fn binary_label(&self) -> String {
        self.binary
            .clone()
            .unwrap_or_else(|| "the test binary".to_owned())
    }

    fn result(&self, name: &str, status: TestStatus, duration: Option<Duration>) -> TestResult {
        TestResult {
            path: self.path(name),
            status,
            duration,
            output: String::new(),
            message: None,
        }
    }

    fn report_failure(&mut self, f: Failure, done: &mut Vec<TestResult>) {
        self.long_running.retain(|n| *n != f.name);
        self.reported.insert(f.name.clone());
        done.push(TestResult {
            path: self.path(&f.name),
            status: TestStatus::Failed,
            duration: f.duration,
            output: f.output.text(),
            message: f.message,
        });
    }

    fn flush_failures(&mut self, done: &mut Vec<TestResult>) {
        self.section = None;
        self.blanks = 0;
        for f in std::mem::take(&mut self.failures) {
            self.report_failure(f, done);
        }
    }

    fn failure_index(&mut self, name: &str) -> usize {
        if let Some(i) = self.failures.iter().position(|f| f.name == name) {
            return i;
        }
        self.failures.push(Failure::new(name.to_owned()));
        self.failures.len() - 1
    }

    /// The current binary ended: with its `test result:` line (`failed` =
    /// the count it gives) or without (it crashed, or the output ended).
    fn end_binary(
        &mut self,
        failed: Option<usize>,
        cut_short: Option<&str>,
        done: &mut Vec<TestResult>,
    ) {
        let seen_failed = self.reported.len() + self.failures.len();
        if let Some(mut a) = self.awaiting.take() {
            let passed = match failed {
                Some(n) => n <= seen_failed,
                None => false,
            };
            if passed {
                let mut r = self.result(&a.name, TestStatus::Passed, None);
                r.output = a.output.text();
                done.push(r);
            } else {
                a.message = Some(cut_short.unwrap_or(NO_RESULT).to_owned());
                self.failures.push(a);
            }
        }
        if failed.is_none() {
            for name in std::mem::take(&mut self.long_running) {
                if !self.failures.iter().any(|f| f.name == name) {
                    let mut f = Failure::new(name);
                    f.message = Some(cut_short.unwrap_or(NO_RESULT).to_owned());
                    self.failures.push(f);
                }
            }
        }
        self.flush_failures(done);
        match failed {
            Some(n) if n > self.reported.len() => self.problems.push(format!(
                "{}: `test result:` reports {n} failed, but {} failure(s) were seen",
                self.binary_label(),
                self.reported.len()
            )),
            Some(_) => {}
            None => self.problems.push(match cut_short {
                Some(why) => format!(
                    "{}: cut short before its `test result:` line ({why})",
                    self.binary_label()
                ),
                None => format!(
                    "{}: ended without a `test result:` line (it crashed or was killed)",
                    self.binary_label()
                ),
            }),
        }
        self.reported.clear();
        self.long_running.clear();
        self.mode = Mode::Idle;
    }

    fn test_line(
        &mut self,
        name: &str,
        outcome: Outcome,
        dur: Option<Duration>,
        done: &mut Vec<TestResult>,
    ) {
        let name = normalize(name);
        if !matches!(outcome, Outcome::LongRunning) {
            self.long_running.retain(|n| *n != name);
        }
        match outcome {
            Outcome::Passed => done.push(self.result(&name, TestStatus::Passed, dur)),
            Outcome::Ignored(why) => done.push(self.result(&name, TestStatus::Skipped(why), dur)),
            Outcome::Failed => {
                let i = self.failure_index(&name);
                if let Some(f) = self.failures.get_mut(i) {
                    f.duration = dur;
                }
            }
            Outcome::LongRunning => {
                if !self.long_running.contains(&name) {
                    self.long_running.push(name);
                }
            }
            Outcome::Pending(rest) => {
                if let Some(prev) = self.awaiting.take() {
                    // Two tests waiting at once: the earlier one's result
                    // can't be told apart any more; keep it as running.
                    if !self.long_running.contains(&prev.name) {
                        self.long_running.push(prev.name);
                    }
                }
                let mut f = Failure::new(name);
                if !rest.is_empty() {
                    f.push(&rest);
                }
                self.awaiting = Some(f);
            }
        }
    }

    fn resolve_awaiting(&mut self, status: TestStatus, done: &mut Vec<TestResult>) {
        if let Some(a) = self.awaiting.take() {
            self.long_running.retain(|n| *n != a.name);
            if status == TestStatus::Failed {
                self.failures.push(a);
            } else {
                let mut r = self.result(&a.name, status, None);
                r.output = a.output.text();
                done.push(r);
            }
        }
    }

    fn start_binary(&mut self, name: Option<String>, done: &mut Vec<TestResult>) {
        if self.mode != Mode::Idle {
            self.end_binary(None, None, done);
        }
        self.flush_failures(done);
        self.binary = name;
    }
}

impl Parser for LibtestParser {
    fn line(&mut self, line: &[u8], _at: Duration, done: &mut Vec<TestResult>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        let text = strip_ansi(&text);
        let s = text.as_ref();

        // Inside a failure's output section, everything but the next
        // header or the `failures:` list is that test's output.
        if self.mode == Mode::Sections
            && let Some(i) = self.section
            && s != "failures:"
            && section_header(s).is_none()
        {
            if s.is_empty() {
                self.blanks += 1;
            } else if let Some(f) = self.failures.get_mut(i) {
                for _ in 0..std::mem::take(&mut self.blanks) {
                    f.push("");
                }
                f.push(s);
            }
            return;
        }
        // A new binary (never inside the failures sections: libtest prints
        // those only after all its tests ran).
        if self.mode != Mode::Sections {
            if let Some(c) = RUNNING.as_ref().and_then(|re| re.captures(s)) {
                let name = c.get(1).map(|m| m.as_str().to_owned());
                self.start_binary(name, done);
                return;
            }
            if matches(&DOC_TESTS, s) {
                self.start_binary(Some("doc-tests".to_owned()), done);
                return;
            }
        }
        if let Some(c) = TEST_RESULT.as_ref().and_then(|re| re.captures(s)) {
            let failed = c.get(2).and_then(|m| m.as_str().parse().ok());
            self.end_binary(Some(failed.unwrap_or(usize::MAX)), None, done);
            return;
        }
        if matches(&RUNNING_N, s) && self.mode != Mode::Sections {
            if self.mode != Mode::Idle {
                self.end_binary(None, None, done);
            }
            self.mode = Mode::Tests;
            return;
        }
        if s.starts_with("error: could not compile") {
            self.problems.push(clip(s));
            return;
        }

        match self.mode {
            Mode::Idle => {}
            Mode::Tests => {
                if s == "failures:" {
                    self.mode = Mode::Sections;
                } else if let Some((name, rest)) =
                    s.strip_prefix("test ").and_then(|r| r.split_once(" ..."))
                {
                    let (outcome, dur) = outcome(rest.strip_prefix(' ').unwrap_or(rest));
                    self.test_line(name, outcome, dur, done);
                } else if self.awaiting.is_some() {
                    match s {
                        "ok" => self.resolve_awaiting(TestStatus::Passed, done),
                        "FAILED" => self.resolve_awaiting(TestStatus::Failed, done),
                        "ignored" => self.resolve_awaiting(TestStatus::Skipped(None), done),
                        _ => {
                            if let Some(a) = self.awaiting.as_mut() {
                                a.push(s);
                            }
                        }
                    }
                }
            }
            Mode::Sections => {
                if s == "failures:" {
                    self.flush_failures(done);
                    self.mode = Mode::List;
                } else if let Some(name) = section_header(s) {
                    let name = normalize(name);
                    self.section = Some(self.failure_index(&name));
                    self.blanks = 0;
                } else if let Some(name) = s.strip_prefix("    ") {
                    // No sections (--nocapture): straight to the list.
                    self.flush_failures(done);
                    self.mode = Mode::List;
                    self.list_entry(name, done);
                }
            }
            Mode::List => {
                if let Some(name) = s.strip_prefix("    ") {
                    self.list_entry(name, done);
                }
            }
        }
    }

    fn finish(mut self: Box<Self>, ended: &Ended) -> (Vec<TestResult>, StreamVerdict) {
        let cut_short = ended.cut_short();
        let mut done = Vec::new();
        if self.mode != Mode::Idle {
            self.end_binary(None, cut_short, &mut done);
        }
        self.flush_failures(&mut done);
        (
            done,
            StreamVerdict {
                problems: self.problems,
            },
        )
    }
}

impl LibtestParser {
    fn list_entry(&mut self, name: &str, done: &mut Vec<TestResult>) {
        let name = normalize(name.trim());
        if !name.is_empty() && !self.reported.contains(&name) {
            self.report_failure(Failure::new(name), done);
        }
    }
}

/// What follows `test name ... `.
fn outcome(rest: &str) -> (Outcome, Option<Duration>) {
    let rest = rest.trim_end();
    // `--report-time`: `ok <0.012s>`.
    let (rest, dur) = match rest.rsplit_once(" <") {
        Some((head, t)) => match t
            .strip_suffix("s>")
            .and_then(|t| t.parse::<f64>().ok())
            .and_then(|t| Duration::try_from_secs_f64(t).ok())
        {
            Some(d) => (head, Some(d)),
            None => (rest, None),
        },
        None => (rest, None),
    };
    let outcome = if rest == "ok" || rest.starts_with("bench:") {
        Outcome::Passed
    } else if rest == "FAILED" || rest.starts_with("FAILED ") {
        Outcome::Failed
    } else if rest == "ignored" {
        Outcome::Ignored(None)
    } else if let Some(why) = rest.strip_prefix("ignored, ") {
        Outcome::Ignored(Some(clip(why)))
    } else if rest.starts_with("has been running for over") {
        Outcome::LongRunning
    } else {
        Outcome::Pending(rest.to_owned())
    };
    (outcome, dur)
}

/// The line without terminal colour codes (`CARGO_TERM_COLOR=always`).
fn strip_ansi(s: &str) -> Cow<'_, str> {
    if !s.contains('\x1b') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `---- name stdout ----` → `name`.
fn section_header(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("---- ")?.strip_suffix(" ----")?;
    Some(
        inner
            .strip_suffix(" stdout")
            .or_else(|| inner.strip_suffix(" stderr"))
            .unwrap_or(inner),
    )
}

/// `x - should panic` is listed as `x` in the failures sections.
fn normalize(name: &str) -> String {
    let name = name.trim();
    name.strip_suffix(" - should panic")
        .unwrap_or(name)
        .to_owned()
}

fn clip(s: &str) -> String {
    super::clip(s, MAX_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsers::MAX_TEST_OUTPUT;
    use crate::parsers::parse_lines;
    use proptest::prelude::*;

    fn run(input: &str, cut_short: Option<&str>) -> (Vec<TestResult>, StreamVerdict) {
        parse_lines(
            Box::new(LibtestParser::new()),
            input.lines().map(str::as_bytes),
            cut_short,
        )
    }

    fn find<'a>(results: &'a [TestResult], name: &str) -> &'a TestResult {
        results
            .iter()
            .find(|r| r.name() == name)
            .unwrap_or_else(|| panic!("no result {name} in {results:#?}"))
    }

    const TWO_BINARIES: &str = "   Compiling shop v0.3.0 (/src/shop)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 4.20s
     Running unittests src/lib.rs (target/debug/deps/shop-1f2e3d4c5b6a7988)

running 5 tests
test cart::tests::empty_total ... ok
test cart::tests::discount ... FAILED
test cart::tests::legacy ... ignored
test pay::tests::live_gateway ... ignored, needs PAY_SANDBOX_KEY
test pay::tests::refund ... FAILED

failures:

---- cart::tests::discount stdout ----
computing discount for 3 items

thread 'cart::tests::discount' panicked at src/cart.rs:88:9:
assertion `left == right` failed
  left: 90
 right: 85
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- pay::tests::refund stdout ----
refund id=7
thread 'pay::tests::refund' panicked at src/pay.rs:140:5:
called `Result::unwrap()` on an `Err` value: Declined

failures:
    cart::tests::discount
    pay::tests::refund

test result: FAILED. 1 passed; 2 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.03s

     Running tests/checkout.rs (target/debug/deps/checkout-0a9b8c7d6e5f4a3b)

running 2 tests
test happy_path ... ok
test slow_path - should panic ... ok

test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.50s

   Doc-tests shop

running 2 tests
test src/lib.rs - cart::Cart::total (line 31) ... ok
test src/pay.rs - pay::refund (line 12) ... FAILED

failures:

---- src/pay.rs - pay::refund (line 12) stdout ----
error[E0425]: cannot find function `refund_all` in this scope
 --> src/pay.rs:14:1

failures:
    src/pay.rs - pay::refund (line 12)

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.21s

error: 2 targets failed:
    `--lib`
    `--doc`
";

    #[test]
    fn binaries_failures_ignored_doctests() {
        let (results, verdict) = run(TWO_BINARIES, None);
        assert_eq!(verdict.problems, Vec::<String>::new());
        let names: Vec<String> = results.iter().map(TestResult::name).collect();
        assert_eq!(
            names,
            [
                "unittests src/lib.rs/cart::tests::empty_total",
                "unittests src/lib.rs/cart::tests::legacy",
                "unittests src/lib.rs/pay::tests::live_gateway",
                "unittests src/lib.rs/cart::tests::discount",
                "unittests src/lib.rs/pay::tests::refund",
                "tests/checkout.rs/happy_path",
                "tests/checkout.rs/slow_path",
                "doc-tests/src/lib.rs - cart::Cart::total (line 31)",
                "doc-tests/src/pay.rs - pay::refund (line 12)",
            ]
        );
        let ok = find(&results, "unittests src/lib.rs/cart::tests::empty_total");
        assert_eq!(
            ok.path,
            ["unittests src/lib.rs", "cart::tests::empty_total"]
        );
        assert_eq!(ok.status, TestStatus::Passed);
        assert_eq!(
            find(&results, "unittests src/lib.rs/cart::tests::legacy").status,
            TestStatus::Skipped(None)
        );
        assert_eq!(
            find(&results, "unittests src/lib.rs/pay::tests::live_gateway").status,
            TestStatus::Skipped(Some("needs PAY_SANDBOX_KEY".into()))
        );
        let d = find(&results, "unittests src/lib.rs/cart::tests::discount");
        assert_eq!(d.status, TestStatus::Failed);
        assert_eq!(
            d.message.as_deref(),
            Some("assertion `left == right` failed")
        );
        assert_eq!(
            d.output,
            "computing discount for 3 items\n\n\
             thread 'cart::tests::discount' panicked at src/cart.rs:88:9:\n\
             assertion `left == right` failed\n  left: 90\n right: 85\n\
             note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
        );
        let r = find(&results, "unittests src/lib.rs/pay::tests::refund");
        assert_eq!(
            r.message.as_deref(),
            Some("called `Result::unwrap()` on an `Err` value: Declined")
        );
        assert!(r.output.starts_with("refund id=7\n"));
        assert!(!r.output.contains("discount"));
        let doc = find(&results, "doc-tests/src/pay.rs - pay::refund (line 12)");
        assert_eq!(
            doc.path,
            ["doc-tests", "src/pay.rs - pay::refund (line 12)"]
        );
        assert_eq!(doc.status, TestStatus::Failed);
        assert!(doc.output.contains("cannot find function `refund_all`"));
        assert!(!doc.output.contains("Declined"));
    }

    #[test]
    fn hang_cut_short() {
        let input = "     Running unittests src/main.rs (target/debug/deps/shopd-77aa)

running 3 tests
test server::tests::binds ... ok
test server::tests::drains ... has been running for over 60 seconds
test server::tests::reloads ... has been running for over 60 seconds
test server::tests::reloads ... ok
";
        let (results, verdict) = run(input, Some("timed out after 120s"));
        assert_eq!(results.len(), 3, "{results:#?}");
        let hang = find(&results, "unittests src/main.rs/server::tests::drains");
        assert_eq!(hang.status, TestStatus::Error("timed-out".into()));
        assert_eq!(hang.message.as_deref(), Some("timed out after 120s"));
        assert_eq!(
            find(&results, "unittests src/main.rs/server::tests::reloads").status,
            TestStatus::Passed
        );
        assert_eq!(
            verdict.problems,
            [
                "unittests src/main.rs: cut short before its `test result:` line (timed out after 120s)"
            ]
        );
    }

    #[test]
    fn crash_then_next_binary() {
        let input = "     Running unittests src/lib.rs (target/debug/deps/a-1)

running 2 tests
test ffi::roundtrip ... ok
error: test failed, to rerun pass `--lib`

Caused by:
  process didn't exit successfully: `target/debug/deps/a-1` (signal: 11, SIGSEGV: invalid memory reference)
     Running tests/it.rs (target/debug/deps/it-2)

running 1 test
test it_works ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        let (results, verdict) = run(input, None);
        assert_eq!(results.len(), 2);
        assert_eq!(results[1].path, ["tests/it.rs", "it_works"]);
        assert_eq!(verdict.problems.len(), 1);
        assert!(verdict.problems[0].starts_with("unittests src/lib.rs: ended without"));
    }

    #[test]
    fn failures_not_seen_is_a_problem() {
        let input = "running 2 tests
test a ... ok

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        let (results, verdict) = run(input, None);
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].path, ["a"]);
        assert_eq!(
            verdict.problems,
            ["the test binary: `test result:` reports 1 failed, but 0 failure(s) were seen"]
        );
    }

    #[test]
    fn nocapture_interleaving() {
        let input = "running 3 tests
test net::a ... connecting to 127.0.0.1:8080
test net::c ... ok
retrying
ok
test net::b ... 
boom
FAILED

failures:
    net::b

test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.02s
";
        let (results, verdict) = run(input, None);
        assert!(verdict.problems.is_empty(), "{:?}", verdict.problems);
        let a = find(&results, "net::a");
        assert_eq!(a.status, TestStatus::Passed);
        assert_eq!(a.output, "connecting to 127.0.0.1:8080\nretrying\n");
        let b = find(&results, "net::b");
        assert_eq!(b.status, TestStatus::Failed);
        assert_eq!(b.output, "boom\n");
        assert_eq!(find(&results, "net::c").status, TestStatus::Passed);
        assert_eq!(results.len(), 3);
    }

    #[test]
    fn colored_output() {
        let input = "\x1b[1m\x1b[92m     Running\x1b[0m unittests src/lib.rs (target/debug/deps/a-1)

running 2 tests
test a ... \x1b[32mok\x1b[0m
test b ... \x1b[31mFAILED\x1b[0m

failures:

---- b stdout ----
  Running b's own output is not a binary
\x1b[31mred\x1b[0m

failures:
    b

test result: \x1b[31mFAILED\x1b[0m. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        let (results, verdict) = run(input, None);
        assert!(verdict.problems.is_empty(), "{:?}", verdict.problems);
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].path, ["unittests src/lib.rs", "a"]);
        assert_eq!(results[1].status, TestStatus::Failed);
        assert_eq!(
            results[1].output,
            "  Running b's own output is not a binary\nred\n"
        );
    }

    #[test]
    fn report_time_and_old_panic_format() {
        let input = "running 1 test
test t ... FAILED <0.250s>

failures:

---- t stdout ----
thread 't' panicked at 'nope', src/lib.rs:3:5

failures:
    t

test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.25s
";
        let (results, verdict) = run(input, None);
        assert!(verdict.problems.is_empty());
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].duration, Some(Duration::from_millis(250)));
        assert_eq!(results[0].message.as_deref(), Some("nope"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn never_panics_and_bounds_output(
            lines in prop::collection::vec(
                prop_oneof![
                    4 => prop::collection::vec(any::<u8>(), 0..300),
                    4 => prop::sample::select(vec![
                        "running 2 tests", "test a ... ", "test a ... ok", "test b ... FAILED",
                        "failures:", "---- b stdout ----", "    b", "ok", "FAILED", "",
                        "test c ... has been running for over 60 seconds",
                        "     Running tests/x.rs (target/x)", "   Doc-tests x",
                        "test result: FAILED. 1 passed; 3 failed; 0 ignored;",
                    ]).prop_map(|s| s.as_bytes().to_vec()),
                    1 => prop::collection::vec(any::<u8>(), 30_000..30_001),
                ],
                0..80,
            ),
            cut in prop::option::of(".{0,20}"),
        ) {
            let (done, _) = parse_lines(
                Box::new(LibtestParser::new()),
                lines.iter().map(Vec::as_slice),
                cut.as_deref(),
            );
            for r in &done {
                prop_assert!(r.output.len() <= MAX_TEST_OUTPUT + 200, "{}", r.output.len());
            }
        }
    }
}
