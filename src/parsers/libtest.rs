//! cargo test's human output (libtest's "pretty" format), possibly several
//! test binaries in a row (`Running unittests src/lib.rs (…)`,
//! `Running tests/foo.rs (…)`, `Doc-tests name`):
//!
//! ```text
//!      Running unittests src/lib.rs (target/debug/deps/shop-1f2e)
//!
//! running 3 tests
//! test cart::tests::empty ... ok
//! test cart::tests::discount ... FAILED
//! test pay::tests::live ... ignored, needs a key
//!
//! failures:
//!
//! ---- cart::tests::discount stdout ----
//! thread 'cart::tests::discount' (4242) panicked at src/cart.rs:88:9:
//! assertion `left == right` failed
//!   left: 90
//!  right: 85
//!
//! failures:
//!     cart::tests::discount
//!
//! test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.03s
//! ```
//!
//! A failed test's captured output comes later, in the `---- name stdout ----`
//! sections after all tests ran, so FAILED results are held back until the
//! `failures:` list, the `test result:` line, the next binary or the end.
//!
//! With `--nocapture` there are no sections: tests print as they run,
//! interleaved (stdout and stderr even interleave within one panic). A
//! panic names its thread (`thread 'cart::tests::discount' (4242) panicked
//! at …:`, the id only since Rust 1.88), and a test's own thread is named
//! after the test, so the panic block (the message lines, then the
//! backtrace's lines) goes to that test, whose message it gives. A panic in
//! a spawned thread (`thread '<unnamed>'`, or `'main'` in older Rust's
//! serial mode) goes to the only running test: the one whose `test x ... `
//! line awaits its result (`--test-threads=1`), or the one test left. If
//! more may be running it is only output. Any other line goes to the test
//! whose result line comes next (with `--test-threads=1` that is exact; in
//! parallel it is the best guess there is).
//!
//! The message is the first panic's message line, with `assert_eq!`'s
//! `left:`/`right:` values appended when short; else
//! [`telling_line`](super::telling_line) of the output. Thread ids, which
//! change every run, are never in it.
//!
//! Durations are `--report-time`'s (`test x ... ok <0.003s>`) when given.
//! Else a test's duration is the time from the previous result line (or
//! the binary's `running N tests`) to its own: with `--test-threads=1` a
//! test starts right after the previous one's result, so that is its run
//! time (its `test x ... ` line can't be the start: as a line it arrives
//! only with the result or the test's first output line); in parallel it
//! is the time the test added to the run, an underestimate for a test that
//! overlapped others. A test cut off gets the time from then to the last
//! line.
//!
//! A test that started and never finished (its `test x ... ` line has no
//! result, `test x has been running for over 60 seconds`, or it panicked
//! by name) when the binary crashed or the output ended is reported under
//! its name with how the batch ended ([`Ended::result`]).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::{Ended, OutputTail, Parser, StreamVerdict, TestResult};
use crate::status::TestStatus;
use crate::text::clip_message;

/// Most message lines of one panic kept (the message and `assert_eq!`'s
/// `left:`/`right:`; the rest is still output).
const MAX_PANIC_LINES: usize = 8;

/// Longest `left:`/`right:` addition to a message; longer values are left
/// to the output.
const MAX_LEFT_RIGHT: usize = 160;

/// Most tests tracked as panicked without a result yet.
const MAX_PANICKED: usize = 1024;

/// Most names of finished tests kept per binary (names are clipped to
/// [`MAX_MESSAGE`](crate::text::MAX_MESSAGE), so this bounds the set to a few megabytes).
const MAX_FINISHED: usize = 10_000;

static RUNNING: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^ {5}Running (.+?)(?: \([^()]*\))?\s*$").ok());
static DOC_TESTS: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^ {3}Doc-tests \S+\s*$").ok());
static RUNNING_N: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^running (\d+) tests?$").ok());
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Reading {
    /// No panic seen yet.
    #[default]
    None,
    /// After the first panic's header: its message lines.
    Message,
    /// The first panic's message is complete.
    Done,
}

#[derive(Default)]
struct Failure {
    name: String,
    output: OutputTail,
    /// The first panic's message lines (at most [`MAX_PANIC_LINES`]).
    panic: Vec<String>,
    reading: Reading,
    /// The first panic is in the old form (`panicked at 'msg', file:l:c`)
    /// with a message spanning lines: it ends at `', file:l:c`.
    old_form: bool,
    duration: Option<Duration>,
}

impl Failure {
    fn new(name: String) -> Self {
        Failure {
            name,
            ..Failure::default()
        }
    }

    fn push(&mut self, line: &str) {
        self.output.push_line(line.as_bytes());
        if let Some((_, after)) = panic_header(line) {
            if self.reading != Reading::None {
                return;
            }
            self.reading = Reading::Message;
            // Before Rust 1.73: `panicked at 'msg', src/lib.rs:10:5`.
            if let Some(msg) = after.strip_prefix('\'') {
                match msg.rsplit_once("', ") {
                    Some((m, _)) => {
                        self.panic.push(clip_message(m));
                        self.reading = Reading::Done;
                    }
                    None => {
                        self.panic.push(clip_message(msg));
                        self.old_form = true;
                    }
                }
            }
            // Else `src/lib.rs:10:5:`: the message is on the next lines.
            return;
        }
        if self.reading != Reading::Message {
            return;
        }
        if ends_message(line) {
            self.reading = Reading::Done;
        } else if self.old_form
            && let Some((m, _)) = line.rsplit_once("', ")
        {
            self.panic.push(clip_message(m));
            self.reading = Reading::Done;
        } else if self.panic.len() < MAX_PANIC_LINES {
            self.panic.push(clip_message(line));
        }
    }

    /// Appends `other`'s output and takes its panic if this has none.
    fn absorb(&mut self, other: Failure) {
        for line in other.output.text().lines() {
            self.output.push_line(line.as_bytes());
        }
        if self.panic.is_empty() {
            self.panic = other.panic;
            self.reading = other.reading;
            self.old_form = other.old_form;
        }
    }

    /// The line that says what failed (see the module doc).
    fn message(&self, output: &str) -> Option<String> {
        panic_message(&self.panic).or_else(|| {
            super::telling_line(output, |l| {
                l.starts_with("Error: ") || l.starts_with("error[") || l.starts_with("error:")
            })
        })
    }
}

/// A panic's message lines → the message: the first line, plus
/// `assert_eq!`'s values when short:
/// `assertion `left == right` failed (left: 3, right: 4)`.
fn panic_message(lines: &[String]) -> Option<String> {
    let first = lines.iter().map(|l| l.trim()).find(|l| !l.is_empty())?;
    let value = |side: &str| {
        lines
            .iter()
            .skip(1)
            .find_map(|l| l.trim().strip_prefix(side))
            .map(|v| v.trim().trim_end_matches(','))
    };
    let mut msg = first.to_owned();
    if let (Some(l), Some(r)) = (value("left:"), value("right:")) {
        let extra = format!(" (left: {l}, right: {r})");
        if extra.len() <= MAX_LEFT_RIGHT {
            msg.push_str(&extra);
        }
    }
    Some(clip_message(&msg))
}

/// `thread 'name' (12345) panicked at src/lib.rs:10:5:` → (`name`, what
/// follows `panicked at `). The id is there since Rust 1.88.
fn panic_header(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("thread '")?;
    let (name, rest) = rest.split_once("' ")?;
    let rest = match rest.strip_prefix('(') {
        Some(r) => r.split_once(") ")?.1,
        None => rest,
    };
    Some((name, rest.strip_prefix("panicked at ")?))
}

/// A line that ends a panic's message: a blank line, the backtrace, the
/// `note: run with RUST_BACKTRACE=1` hint.
fn ends_message(line: &str) -> bool {
    line.trim().is_empty() || line == "stack backtrace:" || line.starts_with("note: ")
}

/// A line of a panic's backtrace: `stack backtrace:`, `   3: frame`,
/// `             at src/lib.rs:4:5`, the `note:` lines.
fn is_backtrace(line: &str) -> bool {
    let t = line.trim_start();
    line == "stack backtrace:"
        || line.starts_with("note: ")
        || (t.len() < line.len() && t.starts_with("at "))
        || t.split_once(": ").is_some_and(|(n, _)| {
            t.len() < line.len() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Where the lines of a panic block go (`--nocapture`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// The test whose `test x ... ` line awaits its result.
    Awaiting,
    /// The test the panicking thread is named after.
    Named(String),
    /// The test whose result line comes next (the only one left).
    Next,
    /// No test for sure: output of the next result's test, but not its
    /// message.
    Nowhere,
}

struct Block {
    target: Target,
    /// Still in the message lines (before the backtrace).
    in_message: bool,
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
    /// A test whose `test x ... ` line had no result (`--test-threads=1`
    /// with output); its `ok`/`FAILED` comes on a later line.
    awaiting: Option<Failure>,
    /// `--nocapture`: tests that panicked (by thread name) and have no
    /// result line yet.
    panicked: Vec<Failure>,
    /// `--nocapture`: output since the previous result line that no test
    /// claimed; it goes to the next result's test.
    loose: Failure,
    /// This binary's tests that have their result (a panic's late lines
    /// don't make them running again).
    finished: HashSet<String>,
    /// The panic block being read (`--nocapture`).
    block: Option<Block>,
    /// This binary's `running N tests`, and the results seen since.
    expected: Option<usize>,
    results: usize,
    /// When the previous result line (or `running N tests`) arrived.
    mark: Duration,
    /// When the latest line arrived.
    last_at: Duration,
    /// The binary just died (cargo's `error: test failed`): its cause
    /// (`process didn't exit successfully`) may follow.
    crash_noted: bool,
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
            panicked: Vec::new(),
            finished: HashSet::new(),
            loose: Failure::default(),
            block: None,
            expected: None,
            results: 0,
            mark: Duration::ZERO,
            last_at: Duration::ZERO,
            crash_noted: false,
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

    fn report_failure(&mut self, f: Failure, done: &mut Vec<TestResult>) {
        self.long_running.retain(|n| *n != f.name);
        self.reported.insert(f.name.clone());
        let output = f.output.text();
        done.push(TestResult {
            path: self.path(&f.name),
            status: TestStatus::Failed,
            duration: f.duration,
            message: f.message(&output),
            output,
        });
    }

    /// A test cut off: `ended`'s status and reason, but a test whose
    /// binary exited by itself gets its panic's message if it has one.
    fn cut_off(&self, f: Failure, ended: &Ended, done: &mut Vec<TestResult>) {
        let output = f.output.text();
        let own = panic_message(&f.panic);
        let duration = Some(self.last_at.saturating_sub(self.mark));
        let mut r = ended.result(self.path(&f.name), output, duration);
        if ended.status == TestStatus::Failed
            && let Some(m) = own
        {
            r.message = Some(m);
        }
        done.push(r);
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
    fn end_binary(&mut self, failed: Option<usize>, ended: &Ended, done: &mut Vec<TestResult>) {
        let seen_failed = self.reported.len() + self.failures.len();
        let mut cut: Vec<Failure> = Vec::new();
        if let Some(a) = self.awaiting.take() {
            if failed.is_some_and(|n| n <= seen_failed) {
                let mut r = self.result(&a.name, TestStatus::Passed, a.duration);
                r.output = a.output.text();
                done.push(r);
            } else {
                cut.push(a);
            }
        }
        let panicked = std::mem::take(&mut self.panicked);
        if failed.is_none() {
            // Tests known to have started: panicked by name, or running
            // for long.
            cut.extend(panicked);
            for name in std::mem::take(&mut self.long_running) {
                if !cut.iter().any(|f| f.name == name) {
                    cut.push(Failure::new(name));
                }
            }
        }
        // (With a `test result:` line, a panicked "test" without a result
        // was a thread the test named itself.)
        self.flush_failures(done);
        for f in cut {
            self.reported.insert(f.name.clone());
            self.cut_off(f, ended, done);
        }
        match failed {
            Some(n) if n > self.reported.len() => self.problems.push(format!(
                "{}: `test result:` reports {n} failed, but {} failure(s) were seen",
                self.binary_label(),
                self.reported.len()
            )),
            Some(_) => {}
            None => self.problems.push(match ended.status {
                TestStatus::Failed => format!(
                    "{}: ended without a `test result:` line (it crashed or was killed)",
                    self.binary_label()
                ),
                _ => format!(
                    "{}: cut short before its `test result:` line ({})",
                    self.binary_label(),
                    ended.reason
                ),
            }),
        }
        self.reported.clear();
        self.long_running.clear();
        self.finished.clear();
        self.loose = Failure::default();
        self.block = None;
        self.expected = None;
        self.results = 0;
        self.mode = Mode::Idle;
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

    /// A result arrived at `at`: its duration (`--report-time`'s, else
    /// since the previous result), and the next one's start.
    fn tick(&mut self, at: Duration, reported: Option<Duration>) -> Duration {
        let measured = at.saturating_sub(self.mark);
        self.mark = at;
        self.results += 1;
        reported.unwrap_or(measured)
    }

    /// What `name` printed since the previous result: the unclaimed lines
    /// and its own panic block.
    fn claim(&mut self, name: &str) -> Failure {
        // Its panic block is over; another test's may go on (stdout and
        // stderr interleave).
        if self.block.as_ref().is_some_and(|b| match &b.target {
            Target::Named(n) => n == name,
            Target::Next | Target::Awaiting => true,
            Target::Nowhere => false,
        }) {
            self.block = None;
        }
        if self.finished.len() < MAX_FINISHED {
            self.finished.insert(name.to_owned());
        }
        let mut f = std::mem::take(&mut self.loose);
        f.name = name.to_owned();
        if let Some(i) = self.panicked.iter().position(|p| p.name == name) {
            f.absorb(self.panicked.remove(i));
        }
        f
    }

    fn test_line(
        &mut self,
        name: &str,
        outcome: Outcome,
        dur: Option<Duration>,
        at: Duration,
        done: &mut Vec<TestResult>,
    ) {
        let name = normalize(name);
        if !matches!(outcome, Outcome::LongRunning) {
            self.long_running.retain(|n| *n != name);
        }
        match outcome {
            Outcome::Passed | Outcome::Ignored(_) => {
                let d = self.tick(at, dur);
                let f = self.claim(&name);
                let status = match outcome {
                    Outcome::Ignored(why) => TestStatus::Skipped(why),
                    _ => TestStatus::Passed,
                };
                let mut r = self.result(&name, status, Some(d));
                r.output = f.output.text();
                done.push(r);
            }
            Outcome::Failed => {
                let d = self.tick(at, dur);
                let mut f = self.claim(&name);
                f.duration = Some(d);
                match self.failures.iter_mut().find(|g| g.name == name) {
                    Some(g) => g.absorb(f),
                    None => self.failures.push(f),
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
                let mut f = self.claim(&name);
                if !rest.is_empty() {
                    f.push(&rest);
                }
                self.awaiting = Some(f);
            }
        }
    }

    fn resolve_awaiting(&mut self, status: TestStatus, at: Duration, done: &mut Vec<TestResult>) {
        self.block = None;
        if let Some(mut a) = self.awaiting.take() {
            self.long_running.retain(|n| *n != a.name);
            if self.finished.len() < MAX_FINISHED {
                self.finished.insert(a.name.clone());
            }
            let d = self.tick(at, None);
            if status == TestStatus::Failed {
                a.duration = Some(d);
                self.failures.push(a);
            } else {
                let mut r = self.result(&a.name, status, Some(d));
                r.output = a.output.text();
                done.push(r);
            }
        }
    }

    fn start_binary(&mut self, name: Option<String>, done: &mut Vec<TestResult>) {
        self.crash_noted = false;
        if self.mode != Mode::Idle {
            // The previous binary crashed; the batch went on.
            self.end_binary(None, &Ended::exited(), done);
        }
        self.flush_failures(done);
        self.binary = name;
    }

    /// Where a panic of thread `thread` goes (see the module doc).
    fn panic_target(&self, thread: &str) -> Target {
        if self.awaiting.is_some() {
            return Target::Awaiting;
        }
        if thread != "<unnamed>" && thread != "main" {
            return Target::Named(normalize(thread));
        }
        match self.expected {
            Some(n) if n.saturating_sub(self.results) == 1 => Target::Next,
            _ => Target::Nowhere,
        }
    }

    fn push_to(&mut self, target: &Target, line: &str) {
        match target {
            Target::Awaiting => match self.awaiting.as_mut() {
                Some(a) => a.push(line),
                None => self.loose.output.push_line(line.as_bytes()),
            },
            // A late line of a test that has its result: output only.
            Target::Named(name) if self.finished.contains(name) => {
                self.loose.output.push_line(line.as_bytes());
            }
            Target::Named(name) => match self.panicked.iter().position(|p| p.name == *name) {
                Some(i) => self.panicked[i].push(line),
                None if self.panicked.len() < MAX_PANICKED => {
                    let mut f = Failure::new(name.clone());
                    f.push(line);
                    self.panicked.push(f);
                }
                None => self.loose.output.push_line(line.as_bytes()),
            },
            Target::Next => self.loose.push(line),
            Target::Nowhere => self.loose.output.push_line(line.as_bytes()),
        }
    }

    /// A line among the tests' results that is not one: a test's output
    /// (`--nocapture`).
    fn output_line(&mut self, s: &str) {
        if let Some((thread, _)) = panic_header(s) {
            let target = self.panic_target(thread);
            self.push_to(&target, s);
            self.block = Some(Block {
                target,
                in_message: true,
            });
            return;
        }
        if let Some(b) = self.block.as_mut() {
            let more = if b.in_message {
                if ends_message(s) {
                    b.in_message = false;
                }
                !s.trim().is_empty()
            } else {
                is_backtrace(s)
            };
            if more {
                let target = b.target.clone();
                self.push_to(&target, s);
                return;
            }
            self.block = None;
        }
        if self.awaiting.is_some() {
            self.push_to(&Target::Awaiting, s);
        } else {
            self.loose.output.push_line(s.as_bytes());
        }
    }
}

impl Parser for LibtestParser {
    fn line(&mut self, line: &[u8], at: Duration, done: &mut Vec<TestResult>) {
        self.last_at = self.last_at.max(at);
        let at = self.last_at;
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
            self.end_binary(Some(failed.unwrap_or(usize::MAX)), &Ended::exited(), done);
            return;
        }
        if self.mode != Mode::Sections
            && let Some(c) = RUNNING_N.as_ref().and_then(|re| re.captures(s))
        {
            if self.mode != Mode::Idle {
                self.end_binary(None, &Ended::exited(), done);
            }
            self.mode = Mode::Tests;
            self.expected = c.get(1).and_then(|m| m.as_str().parse().ok());
            self.mark = at;
            return;
        }
        // cargo's word that the binary died (after `test result:` it is
        // only its summary of failures).
        if self.mode == Mode::Tests && s.starts_with("error: test failed, to rerun pass ") {
            self.end_binary(None, &Ended::exited(), done);
            self.crash_noted = true;
            return;
        }
        // `  process didn't exit successfully: `…` (signal: 6, SIGABRT: …)`:
        // how it died, added to the binary's problem.
        if self.mode == Mode::Idle
            && self.crash_noted
            && let Some(why) = s
                .trim_start()
                .strip_prefix("process didn't exit successfully: ")
            && let Some(last) = self.problems.last_mut()
        {
            self.crash_noted = false;
            let why = why
                .rsplit_once(" (")
                .map_or(why, |(_, w)| w.trim_end_matches(')'));
            last.push_str(&format!(": {}", clip_message(why)));
            return;
        }
        if s.starts_with("error: could not compile") {
            self.problems.push(clip_message(s));
            return;
        }

        match self.mode {
            Mode::Idle => {}
            Mode::Tests => {
                if s == "failures:" {
                    self.block = None;
                    self.mode = Mode::Sections;
                } else if let Some((name, rest)) =
                    s.strip_prefix("test ").and_then(|r| r.split_once(" ..."))
                {
                    let (outcome, dur) = outcome(rest.strip_prefix(' ').unwrap_or(rest));
                    self.test_line(name, outcome, dur, at, done);
                } else if let Some(name) = s
                    .strip_prefix("test ")
                    .and_then(|r| r.split_once(" has been running for over "))
                    .filter(|(_, t)| t.ends_with(" seconds"))
                    .map(|(n, _)| n)
                {
                    self.test_line(name, Outcome::LongRunning, None, at, done);
                } else if self.awaiting.is_some() && matches!(s, "ok" | "FAILED" | "ignored") {
                    let status = match s {
                        "ok" => TestStatus::Passed,
                        "FAILED" => TestStatus::Failed,
                        _ => TestStatus::Skipped(None),
                    };
                    self.resolve_awaiting(status, at, done);
                } else {
                    self.output_line(s);
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
        let mut done = Vec::new();
        if self.mode != Mode::Idle {
            self.end_binary(None, ended, &mut done);
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
            .filter(|t| t.is_finite())
            // Clamped: the number is whatever the line says.
            .and_then(super::reported_seconds)
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
        Outcome::Ignored(Some(clip_message(why)))
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
    clip_message(name.strip_suffix(" - should panic").unwrap_or(name))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::parsers::MAX_TEST_OUTPUT;
    use crate::parsers::test_support::{Parsed, ended, feed, find, parse, statuses};
    use proptest::prelude::*;

    fn run(input: &str, cut_short: Option<&str>) -> Parsed {
        parse(LibtestParser::new(), input, cut_short)
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
            Some("assertion `left == right` failed (left: 90, right: 85)")
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

    /// Recorded with Rust 1.95 on the build machine (`RUST_BACKTRACE=1
    /// cargo test --lib tests:: -- --nocapture`; backtraces cut to two
    /// frames): parallel, interleaved, no output sections.
    const NOCAPTURE_PARALLEL: &str = "   Compiling lt v0.1.0 (/tmp/lt)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.13s
     Running unittests src/lib.rs (target/debug/deps/lt-d08e8b453f7c5fff)

running 7 tests
test tests::ign ... ignored
hello from passes
test tests::passes ... ok

thread 'tests::plain_panic' (27874) panicked at src/lib.rs:5:32:
boom 7
stack backtrace:
before eq
   0: __rustc::rust_begin_unwind
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs:689:5
   1: core::panicking::panic_fmt
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:80:14
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.
test tests::plain_panic ... FAILED

thread 'tests::eq_fails' (27872) panicked at src/lib.rs:4:52:
assertion `left == right` failed
  left: 3
 right: 4
stack backtrace:
   0: __rustc::rust_begin_unwind
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs:689:5
   1: core::panicking::panic_fmt
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:80:14
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.
test tests::eq_fails ... FAILED

thread 'tests::sp' (27916) panicked at src/lib.rs:9:39:
expected
stack backtrace:
   0: __rustc::rust_begin_unwind
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs:689:5
   1: core::panicking::panic_fmt
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:80:14
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.
test tests::sp - should panic ... ok

thread '<unnamed>' (27918) panicked at src/lib.rs:6:55:
in thread
stack backtrace:
   0: __rustc::rust_begin_unwind
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs:689:5
   1: core::panicking::panic_fmt
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:80:14
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.

thread 'tests::thread_panic' (27917) panicked at src/lib.rs:6:83:
called `Result::unwrap()` on an `Err` value: Any { .. }
stack backtrace:
   0: __rustc::rust_begin_unwind
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs:689:5
   1: core::panicking::panic_fmt
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:80:14
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.
test tests::thread_panic ... FAILED
slow done
test tests::slow ... ok

failures:

failures:
    tests::eq_fails
    tests::plain_panic
    tests::thread_panic

test result: FAILED. 3 passed; 3 failed; 1 ignored; 0 measured; 1 filtered out; finished in 0.38s

error: test failed, to rerun pass `--lib`
";

    #[test]
    fn nocapture_parallel_messages_by_thread_name() {
        let (results, verdict) = run(NOCAPTURE_PARALLEL, None);
        assert!(verdict.problems.is_empty(), "{:?}", verdict.problems);
        let mut got = statuses(&results);
        got.sort();
        let b = "unittests src/lib.rs/tests::";
        assert_eq!(
            got,
            [
                format!("{b}eq_fails\tfailed"),
                format!("{b}ign\tskipped"),
                format!("{b}passes\tpassed"),
                format!("{b}plain_panic\tfailed"),
                format!("{b}slow\tpassed"),
                format!("{b}sp\tpassed"),
                format!("{b}thread_panic\tfailed"),
            ]
        );
        let get = |n: &str| find(&results, &format!("{b}{n}"));
        let eq = get("eq_fails");
        assert_eq!(
            eq.message.as_deref(),
            Some("assertion `left == right` failed (left: 3, right: 4)")
        );
        assert!(
            eq.output
                .contains("thread 'tests::eq_fails' (27872) panicked")
        );
        assert!(eq.output.contains("   1: core::panicking::panic_fmt"));
        assert!(!eq.output.contains("boom"), "{}", eq.output);
        assert!(!eq.output.contains("hello from passes"));
        assert_eq!(get("plain_panic").message.as_deref(), Some("boom 7"));
        assert!(
            get("plain_panic")
                .output
                .contains("boom 7\nstack backtrace:\n")
        );
        // The spawned thread's panic can't be told to be this test's (two
        // tests were left): output, not the message; the test's own
        // thread's panic is.
        let tp = get("thread_panic");
        assert_eq!(
            tp.message.as_deref(),
            Some("called `Result::unwrap()` on an `Err` value: Any { .. }")
        );
        assert!(tp.output.contains("in thread"));
        assert!(get("passes").output.contains("hello from passes"));
        for r in &results {
            assert!(r.duration.is_some(), "{}", r.name());
            assert!(!r.message.as_deref().unwrap_or("").contains("2787"));
        }
    }

    /// Recorded with Rust 1.95 (`cargo test --lib tests:: -- --nocapture
    /// --test-threads=1`): each `test x ... ` line waits for its result.
    const NOCAPTURE_SERIAL: &str =
        "     Running unittests src/lib.rs (target/debug/deps/lt-d08e8b453f7c5fff)

running 7 tests
test tests::eq_fails ... before eq

thread 'tests::eq_fails' (28127) panicked at src/lib.rs:4:52:
assertion `left == right` failed
  left: 3
 right: 4
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
FAILED
test tests::ign ... ignored
test tests::passes ... hello from passes
ok
test tests::plain_panic ... 
thread 'tests::plain_panic' (28129) panicked at src/lib.rs:5:32:
boom 7
FAILED
test tests::slow ... slow done
ok
test tests::sp - should panic ... 
thread 'tests::sp' (28132) panicked at src/lib.rs:9:39:
expected
ok
test tests::thread_panic ... 
thread '<unnamed>' (28134) panicked at src/lib.rs:6:55:
in thread

thread 'tests::thread_panic' (28133) panicked at src/lib.rs:6:83:
called `Result::unwrap()` on an `Err` value: Any { .. }
FAILED

failures:

failures:
    tests::eq_fails
    tests::plain_panic
    tests::thread_panic

test result: FAILED. 3 passed; 3 failed; 1 ignored; 0 measured; 1 filtered out; finished in 0.30s
";

    #[test]
    fn nocapture_serial_durations_and_spawned_thread_panic() {
        let (results, verdict) = run(NOCAPTURE_SERIAL, None);
        assert!(verdict.problems.is_empty(), "{:?}", verdict.problems);
        assert_eq!(results.len(), 7);
        let get = |n: &str| find(&results, &format!("unittests src/lib.rs/tests::{n}"));
        let eq = get("eq_fails");
        assert_eq!(eq.status, TestStatus::Failed);
        assert_eq!(
            eq.message.as_deref(),
            Some("assertion `left == right` failed (left: 3, right: 4)")
        );
        assert!(eq.output.starts_with("before eq\n"));
        // Only one test runs: the spawned thread's panic is its, and the
        // first, so the message.
        assert_eq!(get("thread_panic").message.as_deref(), Some("in thread"));
        assert_eq!(get("sp").status, TestStatus::Passed);
        assert_eq!(get("passes").output, "hello from passes\n");
        // One millisecond a line: from the previous result line (or
        // `running 7 tests`, line 2) to its own.
        assert_eq!(eq.duration, Some(Duration::from_millis(8)));
        assert_eq!(get("ign").duration, Some(Duration::from_millis(1)));
        assert_eq!(get("passes").duration, Some(Duration::from_millis(2)));
        assert_eq!(get("plain_panic").duration, Some(Duration::from_millis(4)));
    }

    /// Recorded with Rust 1.95 (`cargo test --lib -- --test-threads=1`,
    /// backtrace cut): a panic while panicking aborts the binary mid-test.
    const ABORT_SERIAL: &str = "     Running unittests src/lib.rs (target/debug/deps/lt-d08e8b453f7c5fff)

running 8 tests
test crash::aborts ... 
thread 'crash::aborts' (28140) panicked at src/lib.rs:15:42:
first
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

thread 'crash::aborts' (28140) panicked at src/lib.rs:14:47:
drop bomb
stack backtrace:
   0:     0x5614522300aa - std[e28293b1aa0f68bd]::backtrace_rs::backtrace::libunwind::trace
                               at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/../../backtrace/src/backtrace/libunwind.rs:117:9
  46:                0x0 - <unknown>

thread 'crash::aborts' (28140) panicked at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:233:5:
panic in a destructor during cleanup
thread caused non-unwinding panic. aborting.
error: test failed, to rerun pass `--lib`

Caused by:
  process didn't exit successfully: `/tmp/lt/target/debug/deps/lt-d08e8b453f7c5fff --test-threads=1` (signal: 6, SIGABRT: process abort signal)
";

    /// The same, in parallel (`-- --nocapture`): two tests were running.
    const ABORT_PARALLEL: &str = "     Running unittests src/lib.rs (target/debug/deps/lt-d08e8b453f7c5fff)

running 8 tests

thread 'crash::aborts' (28146) panicked at src/lib.rs:15:42:
first
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
before eq

thread 'tests::eq_fails' (28147) panicked at src/lib.rs:4:52:
assertion `left == right` failed
  left: 3
 right: 4

thread 'crash::aborts' (28146) panicked at src/lib.rs:14:47:
drop bomb
stack backtrace:
test tests::eq_fails ... FAILED
test tests::ign ... ignored
hello from passes
test tests::passes ... ok
   0:     0x55ca67d2b0aa - std[e28293b1aa0f68bd]::backtrace_rs::backtrace::libunwind::trace
                               at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/../../backtrace/src/backtrace/libunwind.rs:117:9
  43:                0x0 - <unknown>

thread 'crash::aborts' (28146) panicked at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:233:5:
panic in a destructor during cleanup
thread caused non-unwinding panic. aborting.

thread 'tests::plain_panic' (28149) panicked at src/lib.rs:5:32:
boom 7
error: test failed, to rerun pass `--lib`

Caused by:
  process didn't exit successfully: `/tmp/lt/target/debug/deps/lt-d08e8b453f7c5fff --nocapture` (signal: 6, SIGABRT: process abort signal)
";

    #[test]
    fn abort_reports_running_tests_by_name() {
        let (results, verdict) = run(ABORT_SERIAL, None);
        assert_eq!(
            verdict.problems,
            [
                "unittests src/lib.rs: ended without a `test result:` line (it crashed or was killed): signal: 6, SIGABRT: process abort signal"
            ]
        );
        assert_eq!(results.len(), 1, "{results:#?}");
        let a = &results[0];
        assert_eq!(a.path, ["unittests src/lib.rs", "crash::aborts"]);
        assert_eq!(a.status, TestStatus::Failed);
        assert_eq!(a.message.as_deref(), Some("first"));
        assert!(
            a.output
                .contains("thread caused non-unwinding panic. aborting.")
        );
        assert!(!a.output.contains("rerun pass"));
        assert_eq!(a.duration, Some(Duration::from_millis(16)));

        let (results, verdict) = run(ABORT_PARALLEL, None);
        assert_eq!(verdict.problems.len(), 1);
        let mut got = statuses(&results);
        got.sort();
        assert_eq!(
            got,
            [
                "unittests src/lib.rs/crash::aborts\tfailed",
                "unittests src/lib.rs/tests::eq_fails\tfailed",
                "unittests src/lib.rs/tests::ign\tskipped",
                "unittests src/lib.rs/tests::passes\tpassed",
                "unittests src/lib.rs/tests::plain_panic\tfailed",
            ]
        );
        let pp = find(&results, "unittests src/lib.rs/tests::plain_panic");
        assert_eq!(pp.message.as_deref(), Some("boom 7"));
        let eq = find(&results, "unittests src/lib.rs/tests::eq_fails");
        assert!(eq.output.contains("before eq\n"), "{}", eq.output);
        assert!(!eq.output.contains("drop bomb"));

        // Cut off by the batch instead: its status and reason.
        let cut = ABORT_SERIAL
            .split_once("thread caused")
            .map_or("", |(h, _)| h);
        let (results, verdict) = run(cut, Some("timed out after 60s"));
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].status, TestStatus::Error("timed-out".into()));
        assert_eq!(results[0].message.as_deref(), Some("timed out after 60s"));
        assert_eq!(
            verdict.problems,
            [
                "unittests src/lib.rs: cut short before its `test result:` line (timed out after 60s)"
            ]
        );
    }

    #[test]
    fn unnamed_panic_of_the_last_test_is_its_message() {
        let input = "running 2 tests
test a ... ok

thread '<unnamed>' (77) panicked at src/lib.rs:9:9:
worker died
test b ... FAILED

failures:

failures:
    b

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s
";
        let (results, verdict) = run(input, None);
        assert!(verdict.problems.is_empty(), "{:?}", verdict.problems);
        assert_eq!(results[1].name(), "b");
        assert_eq!(results[1].message.as_deref(), Some("worker died"));
        assert!(results[1].output.contains("worker died"));
    }

    #[test]
    fn long_running_line_forms_and_messages() {
        // `test x has been running for over 60 seconds` (libtest's own
        // form), and a failure without a panic: an `Error:` line.
        let input = "running 3 tests
test slow has been running for over 60 seconds
test res ... FAILED

failures:

---- res stdout ----
connecting
Error: Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" }

failures:
    res
";
        let (results, _) = run(input, Some("timed out after 90s"));
        let res = find(&results, "res");
        assert_eq!(
            res.message.as_deref(),
            Some(
                "Error: Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" }"
            )
        );
        let slow = find(&results, "slow");
        assert_eq!(slow.status, TestStatus::Error("timed-out".into()));
        assert_eq!(slow.message.as_deref(), Some("timed out after 90s"));
        assert!(slow.duration.is_some());
    }

    #[test]
    fn panic_messages() {
        let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            panic_message(&lines(&[
                "assertion `left == right` failed: totals",
                "  left: 1",
                " right: 2"
            ]))
            .as_deref(),
            Some("assertion `left == right` failed: totals (left: 1, right: 2)")
        );
        let long = "x".repeat(300);
        let l = format!("  left: {long}");
        assert_eq!(
            panic_message(&lines(&[
                "assertion `left == right` failed",
                &l,
                " right: 1"
            ]))
            .as_deref(),
            Some("assertion `left == right` failed")
        );
        assert_eq!(
            panic_header("thread 'a::b' (123) panicked at src/x.rs:1:2:"),
            Some(("a::b", "src/x.rs:1:2:"))
        );
        assert_eq!(
            panic_header("thread 'a::b' panicked at 'm', src/x.rs:1:2"),
            Some(("a::b", "'m', src/x.rs:1:2"))
        );
        assert_eq!(panic_header("thread 'a' (1) started"), None);
        // Old multi-line form: `panicked at 'assertion failed: …` up to `', file`.
        let mut f = Failure::new("t".into());
        for l in [
            "thread 't' panicked at 'assertion failed: `(left == right)`",
            "  left: `3`,",
            " right: `4`', src/lib.rs:4:5",
        ] {
            f.push(l);
        }
        assert_eq!(
            f.message("").as_deref(),
            Some("assertion failed: `(left == right)` (left: `3`, right: `4`)")
        );
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
                        "thread 'a' (1) panicked at src/x.rs:1:1:",
                        "thread '<unnamed>' panicked at src/x.rs:1:1:",
                        "thread 'b' panicked at 'm", "  left: 1", " right: 2', x",
                        "stack backtrace:", "   0: frame", "             at x.rs:1",
                        "error: test failed, to rerun pass `--lib`",
                        "  process didn't exit successfully: `x` (signal: 6)",
                        "test a has been running for over 60 seconds",
                        "test b ... ok <1e400s>", "test b ... FAILED <-3s>",
                    ]).prop_map(|s| s.as_bytes().to_vec()),
                    1 => prop::collection::vec(any::<u8>(), 30_000..30_001),
                ],
                0..80,
            ),
            cut in prop::option::of(".{0,20}"),
        ) {
            let (done, _) = feed(
                LibtestParser::new(),
                lines.iter().map(Vec::as_slice),
                &ended(cut.as_deref()),
            );
            for r in &done {
                prop_assert!(r.output.len() <= MAX_TEST_OUTPUT + 200, "{}", r.output.len());
            }
        }
    }
}
