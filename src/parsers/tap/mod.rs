//! TAP 13/14, KTAP, the kselftest runner's TAP, bats and Test::More TAP,
//! and KUnit's KTAP inside a kernel log (`format = "kunit"`).
//!
//! ```text
//! TAP version 14
//! 1..2
//! # Subtest: parse
//!     1..2
//!     ok 1 - empty input
//!     not ok 2 - trailing comma
//!       ---
//!       message: "expected 1, got 2"
//!       duration_ms: 12
//!       ...
//! not ok 1 - parse
//! ok 2 - slow # SKIP no network
//! ```
//!
//! Results: `ok`/`not ok` lines (`# SKIP` → skipped; `not ok … # TODO` →
//! skipped with `TODO: reason`; kselftest's `# XFAIL`/`# XPASS` pass and
//! `not ok … # error` is an error). In a name, `#` starts a directive only
//! when one follows (`SKIP`, `TODO`, `XFAIL`, `XPASS`, `TIMEOUT`, `ERROR`,
//! any case), or a duration (`time=12ms`, bats' `in 3 ms`), the runner's
//! `exit=1`, or kselftest.h's `#  comment`; elsewhere it is part of the
//! name (`matches empty string (see #53)`). A result named by its directive
//! only (`ok 8 # SKIP no IPv6`) is named from the test's banner or the
//! directive's text. Comments that are no directive (`TIMEOUT 45 seconds`,
//! `exit=1`) are a failed test's message; else its YAML `message:`, else
//! the line of its output that says what failed ([`syntax::telling`]).
//!
//! Output and diagnostics: in KTAP, kselftest and node-tap (streams with a
//! `TAP version` line) a test's output precedes its result line and goes
//! to the next result of its level. Test::More and bats (no version line)
//! print a failure's diagnostics *after* its `not ok`:
//!
//! ```text
//! 1..2
//! not ok 1 addition
//! # (in test file t.bats, line 5)
//! #   `[ 1 -eq 2 ]' failed
//! ok 2 subtraction # in 3 ms
//! ```
//!
//! so there the `#` lines after a `not ok` are that test's (bats' own
//! `# (in test file …` lines are taken as such in any stream). A YAML
//! diagnostic block after a result is that result's (`message:`,
//! `duration_ms:`).
//!
//! Documents: every `TAP version`/`KTAP version` line (or a second plan)
//! starts a new document with its own plan, checked against that
//! document's results at the top level (the kselftest runner prints a
//! version and plan per collection). kselftest's `# Totals: pass:N fail:N
//! xfail:N xpass:N skip:N error:N` is checked against its document's
//! results (a disagreement is a verdict problem); a test that prints only
//! totals gets results made from them.
//!
//! Nesting: a block indented by 4 spaces (or a tab; KUnit also uses 2
//! spaces) is a subtest (TAP 14), named by a preceding `# Subtest: name`
//! line or else by the parent's result line that follows the block (its
//! results are held back until then). The kselftest runner
//! (tools/testing/selftests/kselftest/runner.sh) prints `# selftests: dir:
//! test`, the test's own output prefixed with `# `, then `ok N selftests:
//! dir: test`; that test's path is `[dir, test]`, and TAP results in its
//! `# ` output are its subtests (`[dir, test, subtest]`). `# TIMEOUT 45
//! seconds` / `# exit=1` become the failed test's message.
//!
//! The test in progress is always known: the open subtest or kselftest
//! test, else the one a banner named after the last result
//! (kselftest_harness's `#  RUN           global.name ...`, `# Running test
//! 'x'`, `# Starting test x`), else the next one the plan promises (`test
//! 6` after `ok 5` of `1..19`). When the batch is cut off it is reported
//! with how the batch ended; when the batch (or, nested, the kselftest
//! test around it, which failed) ended by itself, it failed without a
//! result.
//!
//! Durations: the format's when it gives one, else measured from the
//! lines' arrival: from the test's header or banner line, or the previous
//! result of its level, to its result line.
//!
//! KUnit (`TapParser::kunit`): the kernel log's `[    1.234567] ` prefix is
//! removed, lines before the first version line (the boot log) are
//! dropped, and kernel lines interleaved with the KTAP are plain output.
//!
//! `Bail out!` ends the stream (a problem in the verdict), except inside a
//! kselftest test's `# ` output, where it only ends that test's own TAP (the
//! runner goes on with the next test). Nested plans are the parent's
//! business: the parent's result line reports them.

mod syntax;
#[cfg(test)]
mod tests;

use std::time::Duration;

use super::{Ended, OutputTail, Parser, StreamVerdict, TestResult, telling_line};
use crate::status::TestStatus;
use crate::text::{MAX_MESSAGE, clip_message};
use syntax::{
    Directive, ParsedResult, Plan, Tally, bail_message, bail_out, banner, bats_marker, decode,
    harness_verdict, hash_nested, kselftest_header, kselftest_name, parse_result, plan,
    strip_kernel_prefix, subtest_name, telling, totals, trim, trim_start, version, yaml_duration,
};

/// Most results of an unnamed indented block held back waiting for the
/// parent's result line to name them.
const MAX_BUFFERED: usize = 1000;

/// Deepest nesting followed; deeper indented lines are plain output (a line
/// of a megabyte of spaces must not make a quarter million levels).
const MAX_DEPTH: usize = 16;

/// Most results made from a `# Totals:` line (`pass:99999999999` is a
/// count, not a reason to allocate forever).
const MAX_FROM_TOTALS: u64 = 10_000;

/// Parser of TAP 13/14, KTAP, kselftest, bats and KUnit output.
#[derive(Debug, Default)]
pub struct TapParser {
    root: Level,
    problems: Vec<String>,
    /// KUnit in a kernel log.
    kunit: bool,
    /// KUnit: the first version line came (earlier lines are the boot log).
    started: bool,
    /// The last line's arrival.
    now: Duration,
}

impl TapParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// KUnit's KTAP in a kernel log (`format = "kunit"`).
    pub fn kunit() -> Self {
        TapParser {
            kunit: true,
            root: Level {
                leading: true,
                ..Level::default()
            },
            ..Self::default()
        }
    }
}

/// What a line's processing needs besides the level.
struct Cx<'a> {
    at: Duration,
    kunit: bool,
    out: &'a mut Vec<TestResult>,
    problems: &'a mut Vec<String>,
}

impl Parser for TapParser {
    fn line(&mut self, line: &[u8], at: Duration, done: &mut Vec<TestResult>) {
        self.now = self.now.max(at);
        if self.root.bailed.is_some() {
            return;
        }
        let mut line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.kunit {
            line = strip_kernel_prefix(line);
            if !self.started {
                if !version(trim_start(line)) {
                    return;
                }
                self.started = true;
                line = trim_start(line);
            }
        }
        let mut cx = Cx {
            at: self.now,
            kunit: self.kunit,
            out: done,
            problems: &mut self.problems,
        };
        if let Some(reason) = self.root.line(line, &mut cx) {
            cx.problems.push(bail_message(&reason));
        }
    }

    fn finish(self: Box<Self>, ended: &Ended) -> (Vec<TestResult>, StreamVerdict) {
        let TapParser {
            mut root,
            mut problems,
            now,
            kunit,
            ..
        } = *self;
        let mut out = Vec::new();
        root.finish(
            End::Batch(ended),
            &mut Cx {
                at: now,
                kunit,
                out: &mut out,
                problems: &mut problems,
            },
        );
        if root.bailed.is_none()
            && let Some(problem) = root.plan_problem(kunit)
        {
            problems.push(problem);
        }
        (out, StreamVerdict { problems })
    }
}

/// Why a level's tests still open end without a result.
#[derive(Debug, Clone, Copy)]
enum End<'a> {
    /// The batch's output ended.
    Batch(&'a Ended),
    /// The level ended while the batch goes on: its parent's result line
    /// came (`parent`: its status; `note`: its message), or its producer
    /// ended (a new document or test header; `None`).
    Closed {
        parent: Option<&'a TestStatus>,
        note: Option<&'a str>,
    },
    /// `Bail out!` (the message).
    Bailed(&'a str),
}

impl End<'_> {
    /// A new document or test header: the previous producer exited.
    const EXITED: End<'static> = End::Closed {
        parent: None,
        note: None,
    };

    fn result(&self, path: Vec<String>, output: String, duration: Option<Duration>) -> TestResult {
        let message = match *self {
            End::Batch(ended) => return ended.result(path, output, duration),
            End::Closed { note: Some(n), .. } => format!("no result ({n})"),
            End::Closed { note: None, .. } => "no result".to_string(),
            End::Bailed(message) => message.to_string(),
        };
        // Inside a kselftest test the runner timed out, the test running
        // then timed out too.
        let status = match *self {
            End::Closed {
                parent: Some(TestStatus::Error(kind)),
                ..
            } => TestStatus::Error(kind.clone()),
            _ => TestStatus::Failed,
        };
        TestResult {
            path,
            status,
            duration,
            output,
            message: Some(message),
        }
    }

    /// Whether the test the plan says comes next is reported: when the
    /// batch was cut off, or around a failed kselftest test, it was
    /// running; when its producer exited by itself, only if it printed
    /// something after the last result.
    fn reports_next(&self, incomplete: bool, has_output: bool) -> bool {
        match *self {
            End::Batch(ended) if ended.status != TestStatus::Failed => incomplete,
            End::Batch(_) | End::Closed { parent: None, .. } => incomplete && has_output,
            End::Closed {
                parent: Some(status),
                ..
            } => status.is_failure() && incomplete,
            End::Bailed(_) => false,
        }
    }
}

/// One document's plan and results.
#[derive(Debug, Default)]
struct Doc {
    plan: Option<Plan>,
    /// Result lines seen.
    count: u64,
    /// The last result's number.
    last: u64,
    tally: Tally,
}

/// One level of TAP: the top level, a subtest's indented block, or a
/// kselftest test's `# ` output.
#[derive(Debug, Default)]
struct Level {
    depth: usize,
    /// A test's output precedes its result (KTAP, kselftest, node-tap);
    /// else (Test::More, bats) `#` lines after a `not ok` are its.
    leading: bool,
    /// A kselftest test's `# ` output: `Bail out!` ends only this level.
    local_bail: bool,
    /// The `Bail out!` reason, once bailed: later lines are plain output.
    bailed: Option<String>,
    doc: Doc,
    /// Documents ended before this one.
    docs: u64,
    /// Output since the last result: the next result's.
    tail: OutputTail,
    /// The last result, held back for a YAML block or diagnostics that may
    /// follow.
    held: Option<Held>,
    /// The subtest or kselftest test running at this level.
    open: Option<Box<Open>>,
    /// When the last result (or the level) came: the next result's start.
    since: Duration,
    /// The test a banner named since the last result, and when.
    banner: Option<(String, Duration)>,
}

#[derive(Debug)]
struct Held {
    result: TestResult,
    tail: OutputTail,
    yaml: Option<Yaml>,
    /// `#` lines that follow are this result's diagnostics.
    trailing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// TAP 14: indented by 4 spaces.
    Indent,
    /// kselftest: prefixed with `# `.
    Hash,
}

/// A subtest or kselftest test that started and has no result yet.
#[derive(Debug)]
struct Open {
    kind: Kind,
    /// Its path (relative to the level), if known before its result line.
    name: Option<Vec<String>>,
    /// A `# Subtest:` line or kselftest header started it.
    explicit: bool,
    /// Its indentation, once its first indented line came.
    indent: Option<&'static [u8]>,
    /// When it started: its header line, else its level's last result.
    start: Duration,
    level: Level,
    /// Its subtests' results while its name is unknown.
    buffered: Vec<TestResult>,
    /// `TIMEOUT 45 seconds` / `exit=1` seen in its output.
    message: Option<String>,
}

impl Open {
    fn new(kind: Kind, name: Option<Vec<String>>, parent: &Level, start: Duration) -> Box<Self> {
        Box::new(Open {
            kind,
            explicit: name.is_some(),
            name,
            indent: None,
            start,
            level: Level {
                depth: parent.depth + 1,
                local_bail: kind == Kind::Hash,
                leading: kind == Kind::Hash || parent.leading,
                since: start,
                ..Level::default()
            },
            buffered: Vec::new(),
            message: None,
        })
    }

    fn started(&self) -> bool {
        self.explicit
            || self.level.doc.count > 0
            || self.level.doc.plan.is_some()
            || self.level.docs > 0
            || !self.buffered.is_empty()
    }

    /// The nested level's results since `first` (and problems since
    /// `pfirst`), with this test's path put in front (or held back while
    /// it's unknown).
    fn adopt(&mut self, first: usize, pfirst: usize, cx: &mut Cx) {
        let Some(name) = &self.name else {
            self.buffered.extend(cx.out.drain(first..));
            return;
        };
        for r in &mut cx.out[first..] {
            r.path.splice(0..0, name.iter().cloned());
        }
        if cx.problems.len() > pfirst {
            let label = name.join("/");
            for p in &mut cx.problems[pfirst..] {
                *p = format!("{label}: {p}");
            }
        }
    }

    /// Ends the nested level (its open tests end by `end`) and emits the
    /// remaining results under `name` (or the name it already has).
    /// `reported`: this test itself is reported without a result, so the
    /// next test its plan promises was running.
    fn close(mut self: Box<Self>, end: End, name: &[String], reported: bool, cx: &mut Cx) {
        let (first, pfirst) = (cx.out.len(), cx.problems.len());
        self.level.finish_in(end, reported, cx);
        let name = self.name.get_or_insert_with(|| name.to_vec()).clone();
        let buffered = std::mem::take(&mut self.buffered);
        self.adopt(first, pfirst, cx);
        if !buffered.is_empty() {
            let rest: Vec<_> = cx.out.drain(first..).collect();
            cx.out.extend(buffered.into_iter().map(|mut r| {
                r.path.splice(0..0, name.iter().cloned());
                r
            }));
            cx.out.extend(rest);
        }
    }
}

/// A line's indentation as a subtest's (4 spaces, a tab, or for KUnit 2
/// spaces) and the rest.
fn indented(line: &[u8], kunit: bool) -> Option<(&'static [u8], &[u8])> {
    const UNITS: [&[u8]; 3] = [b"    ", b"\t", b"  "];
    let units = if kunit { &UNITS[..] } else { &UNITS[..2] };
    units
        .iter()
        .find_map(|&u| line.strip_prefix(u).map(|rest| (u, rest)))
}

impl Level {
    /// One line (its nesting prefix removed). Returns the reason of a
    /// `Bail out!` that ends the whole stream.
    fn line(&mut self, line: &[u8], cx: &mut Cx) -> Option<String> {
        if let Some(held) = &mut self.held {
            // A YAML block after the last result.
            if let Some(yaml) = &mut held.yaml {
                // The block's lines are indented; an unindented line ends
                // a block missing its `...` (and is processed as usual).
                if line.first().is_none_or(u8::is_ascii_whitespace) {
                    held.tail.push_line(line);
                    if trim(line) == b"..." {
                        self.flush_held(cx);
                    } else {
                        yaml.feed(line);
                    }
                    return None;
                }
            }
            if held.yaml.is_none()
                && line.first().is_some_and(u8::is_ascii_whitespace)
                && trim(line) == b"---"
            {
                held.tail.push_line(line);
                held.yaml = Some(Yaml::default());
                return None;
            }
            // Test::More / bats diagnostics after a `not ok`.
            if line.first() == Some(&b'#')
                && (held.trailing || (held.result.status.is_failure() && bats_marker(line)))
                && diagnostic(line)
            {
                held.trailing = true;
                held.tail.push_line(line);
                return None;
            }
            self.flush_held(cx);
        }
        if self.bailed.is_some() {
            self.tail.push_line(line);
            return None;
        }

        // A kselftest header starts a test (ending one without result).
        let can_nest = self.depth < MAX_DEPTH;
        if can_nest && let Some(name) = kselftest_header(line) {
            self.leading = true;
            self.abandon_open(End::EXITED, cx);
            self.tail.push_line(line);
            self.banner = None;
            self.open = Some(Open::new(Kind::Hash, Some(name), self, cx.at));
            return None;
        }

        // Nested lines.
        let nested = match self.open.as_deref() {
            Some(Open {
                kind: Kind::Hash, ..
            }) => hash_nested(line).map(|n| (None, n)),
            Some(Open {
                indent: Some(unit), ..
            }) => line.strip_prefix(*unit).map(|n| (None, n)),
            _ if can_nest => indented(line, cx.kunit).map(|(unit, n)| (Some(unit), n)),
            _ => None,
        };
        if let Some((unit, nested)) = nested {
            return self.nested(line, unit, nested, cx);
        }

        // This level's own lines.
        if let Some(reason) = bail_out(line) {
            return self.bail(reason, cx);
        }
        if let Some(plan) = plan(line) {
            if self.doc.plan.is_some() {
                self.new_document(cx);
            }
            self.doc.plan = Some(plan);
            return None;
        }
        if version(line) {
            self.leading = true;
            if self.doc.plan.is_some() || self.doc.count > 0 {
                self.new_document(cx);
            }
            return None;
        }
        if let Some(r) = parse_result(line) {
            self.result(r, cx);
            return None;
        }
        if line.first() == Some(&b'#') {
            if can_nest && let Some(name) = subtest_name(line) {
                self.abandon_open(End::EXITED, cx);
                self.tail.push_line(line);
                self.banner = None;
                self.open = Some(Open::new(Kind::Indent, Some(vec![name]), self, cx.at));
                return None;
            }
            if let Some(t) = totals(line) {
                self.totals(t, cx);
            } else if let Some((name, harness)) = banner(line) {
                self.leading |= harness;
                self.banner = Some((name, cx.at));
            }
        }
        self.tail.push_line(line);
        None
    }

    /// A line of the open subtest or kselftest test (`nested`: without its
    /// prefix; `unit`: the indentation, when it may open a subtest).
    fn nested(
        &mut self,
        line: &[u8],
        unit: Option<&'static [u8]>,
        nested: &[u8],
        cx: &mut Cx,
    ) -> Option<String> {
        self.tail.push_line(line);
        if self.open.is_none() {
            self.open = Some(Open::new(Kind::Indent, None, self, self.since));
        }
        let fallback = self.doc.last.saturating_add(1);
        let open = self.open.as_mut()?; // just set
        if open.kind == Kind::Indent && open.indent.is_none() {
            open.indent = unit;
        }
        if open.kind == Kind::Hash {
            let text = trim(nested);
            if text.starts_with(b"TIMEOUT") || text.starts_with(b"exit=") {
                open.message = Some(clip_message(&decode(text)));
            }
        } else if !open.started()
            && let Some(name) = subtest_name(nested)
        {
            // `    # Subtest: name` as the block's first line.
            open.name = Some(vec![name]);
            open.explicit = true;
            return None;
        }
        let (first, pfirst) = (cx.out.len(), cx.problems.len());
        let bail = open.level.line(nested, cx);
        open.adopt(first, pfirst, cx);
        if open.buffered.len() > MAX_BUFFERED {
            // No parent result line in sight: name the block now.
            let name = vec![format!("test {fallback}")];
            for mut r in std::mem::take(&mut open.buffered) {
                r.path.splice(0..0, name.iter().cloned());
                cx.out.push(r);
            }
            open.name = Some(name);
        }
        match bail {
            Some(reason) => self.bail(reason, cx),
            None => None,
        }
    }

    fn bail(&mut self, reason: String, cx: &mut Cx) -> Option<String> {
        let message = bail_message(&reason);
        self.finish(End::Bailed(&message), cx);
        self.bailed = Some(reason.clone());
        if self.local_bail { None } else { Some(reason) }
    }

    /// A version line or a second plan: the document so far ended.
    fn new_document(&mut self, cx: &mut Cx) {
        self.finish(End::EXITED, cx);
        if self.depth == 0
            && let Some(problem) = self.plan_problem(cx.kunit)
        {
            cx.problems.push(problem);
        }
        self.docs = self.docs.saturating_add(1);
        self.doc = Doc::default();
    }

    /// The current document's plan, if not met. KUnit's top level may
    /// have no plan (kunit.py accepts it: older kernels print none).
    fn plan_problem(&self, kunit: bool) -> Option<String> {
        let which = if self.docs > 0 {
            format!(" (TAP document {})", self.docs.saturating_add(1))
        } else {
            String::new()
        };
        let count = self.doc.count;
        match &self.doc.plan {
            None if kunit && count > 0 => None,
            None => Some(format!(
                "no TAP plan (1..N); got {count} test results{which}"
            )),
            Some(plan) if plan.count != count => {
                Some(format!("planned {} tests, got {count}{which}", plan.count))
            }
            Some(_) => None,
        }
    }

    fn result(&mut self, r: ParsedResult, cx: &mut Cx) {
        let doc = &mut self.doc;
        doc.count = doc.count.saturating_add(1);
        let number = r.number.unwrap_or(doc.count);
        doc.last = number;
        let tally = &mut doc.tally;
        let slot = match &r.directive {
            Directive::Skip(_) => &mut tally.skip,
            Directive::Xfail(_) => &mut tally.xfail,
            Directive::Xpass(_) => &mut tally.xpass,
            Directive::Error(_) if !r.ok => &mut tally.error,
            Directive::Todo(_) if !r.ok => &mut tally.xfail,
            _ if r.ok => &mut tally.pass,
            _ => &mut tally.fail,
        };
        *slot = slot.saturating_add(1);

        let mut status = match &r.directive {
            Directive::Skip(reason) => TestStatus::Skipped(reason.clone()),
            Directive::Todo(reason) if !r.ok => TestStatus::Skipped(Some(match reason {
                Some(reason) => format!("TODO: {reason}"),
                None => "TODO".to_string(),
            })),
            Directive::Error(_) if !r.ok => TestStatus::Error("error".to_string()),
            // An expected failure is as expected.
            Directive::Xfail(_) | Directive::Xpass(_) => TestStatus::Passed,
            _ if r.ok => TestStatus::Passed,
            _ => TestStatus::Failed,
        };
        let banner = self.banner.take();
        let mut path = match kselftest_name(&r.desc) {
            Some(name) => name,
            None if r.desc.is_empty() => Vec::new(),
            None => vec![r.desc],
        };
        let mut start = banner.as_ref().map_or(self.since, |b| b.1);
        let mut message = None;
        if let Some(open) = self.open.take() {
            if path.is_empty()
                && let Some(name) = &open.name
            {
                path = name.clone();
            }
            if path.is_empty() {
                path = vec![format!("test {number}")];
            }
            start = open.start;
            message = open.message.clone().or_else(|| {
                (open.kind == Kind::Hash)
                    .then(|| open.level.bailed.as_deref().map(bail_message))
                    .flatten()
            });
            // The runner's bare `# SKIP`: the reason is the test's `1..0
            // # SKIP reason`.
            if status == TestStatus::Skipped(None)
                && let Some(reason) = open.level.doc.plan.as_ref().and_then(|p| p.skip.clone())
            {
                status = TestStatus::Skipped(Some(reason));
            }
            if status == TestStatus::Failed
                && let Some(kind) = r
                    .comment
                    .as_deref()
                    .or(message.as_deref())
                    .and_then(cut_off)
            {
                status = TestStatus::Error(kind.to_string());
            }
            let end = End::Closed {
                parent: Some(&status),
                note: r.comment.as_deref().or(message.as_deref()),
            };
            open.close(end, &path, false, cx);
        }
        if status == TestStatus::Failed
            && let Some(kind) = r.comment.as_deref().and_then(cut_off)
        {
            status = TestStatus::Error(kind.to_string());
        }
        if path.is_empty() {
            // `ok 8 # SKIP no IPv6`: named by its banner or directive.
            path = vec![match (banner, r.directive.reason()) {
                (Some((name, _)), _) => name,
                (None, Some(reason)) => reason.to_string(),
                (None, None) => format!("test {number}"),
            }];
        }
        let message = match status {
            TestStatus::Failed | TestStatus::Error(_) => r
                .comment
                .or(message)
                .or_else(|| r.directive.reason().map(str::to_string)),
            _ => None,
        };
        self.since = cx.at;
        let trailing = !self.leading && status.is_failure();
        self.held = Some(Held {
            result: TestResult {
                path,
                status,
                duration: r.duration.or(Some(cx.at.saturating_sub(start))),
                output: String::new(),
                message,
            },
            tail: std::mem::take(&mut self.tail),
            yaml: None,
            trailing,
        });
    }

    /// kselftest's `# Totals:`: checked against the document's results, or
    /// its results when it printed none.
    fn totals(&mut self, t: Tally, cx: &mut Cx) {
        if self.doc.count > 0 {
            if t != self.doc.tally {
                cx.problems.push(format!(
                    "kselftest `# Totals: {t}` disagrees with the results: {}",
                    self.doc.tally
                ));
            }
            return;
        }
        self.doc.tally = t;
        self.doc.count = t.total();
        self.doc.last = t.total();
        if t.total() > MAX_FROM_TOTALS {
            return;
        }
        let note = |kind: &str| Some(format!("{kind} by `# Totals:`; no result line"));
        let kinds = [
            (t.pass, TestStatus::Passed),
            (t.xfail, TestStatus::Passed),
            (t.xpass, TestStatus::Passed),
            (t.skip, TestStatus::Skipped(None)),
            (t.fail, TestStatus::Failed),
            (t.error, TestStatus::Error("error".to_string())),
        ];
        let mut number = 0u64;
        for (n, status) in kinds {
            for _ in 0..n {
                number += 1;
                let message = match status {
                    TestStatus::Failed => note("failed"),
                    TestStatus::Error(_) => note("an error"),
                    TestStatus::Skipped(_) => note("skipped"),
                    _ => note("passed"),
                };
                cx.out.push(TestResult {
                    path: vec![format!("test {number}")],
                    status: status.clone(),
                    duration: None,
                    output: String::new(),
                    message,
                });
            }
        }
    }

    fn flush_held(&mut self, cx: &mut Cx) {
        let Some(held) = self.held.take() else {
            return;
        };
        let mut result = held.result;
        result.output = held.tail.text();
        if let Some(yaml) = held.yaml {
            let (message, duration) = yaml.finish();
            if message.is_some() {
                result.message = message;
            }
            if duration.is_some() {
                result.duration = duration;
            }
        }
        if result.status.is_failure() && result.message.is_none() {
            result.message = message_from(&result.output);
        }
        cx.out.push(result);
    }

    /// Ends the open subtest or kselftest test without a result line: if it
    /// started, it ended by `end`.
    fn abandon_open(&mut self, end: End, cx: &mut Cx) {
        let Some(open) = self.open.take() else {
            return;
        };
        let started = open.started();
        let name = open
            .name
            .clone()
            .unwrap_or_else(|| vec![format!("test {}", self.doc.last.saturating_add(1))]);
        let duration = Some(cx.at.saturating_sub(open.start));
        open.close(end, &name, started, cx);
        if started {
            cx.out.push(end.result(name, self.tail.text(), duration));
            self.tail.clear();
        }
    }

    /// The level's output ended: emits what is held and reports the test
    /// in progress (the open one, or the one a banner or the plan names).
    fn finish(&mut self, end: End, cx: &mut Cx) {
        self.finish_in(end, false, cx);
    }

    /// [`Level::finish`]; `enclosed`: the test around this level is
    /// reported as running (a suite cut off by a kernel crash), so the next
    /// test its plan promises was running too.
    fn finish_in(&mut self, end: End, enclosed: bool, cx: &mut Cx) {
        self.flush_held(cx);
        if self.open.is_some() {
            self.abandon_open(end, cx);
        } else if self.bailed.is_none()
            && let Some((name, start)) = self.in_progress(end, enclosed)
        {
            let duration = Some(cx.at.saturating_sub(start));
            cx.out
                .push(end.result(vec![name], self.tail.text(), duration));
            self.tail.clear();
        }
        self.banner = None;
    }

    /// The test running at this level (not a subtest): the one a banner
    /// named, or the next one the plan promises, and when it started.
    fn in_progress(&self, end: End, enclosed: bool) -> Option<(String, Duration)> {
        if let End::Closed {
            parent: Some(status),
            ..
        } = end
            && !status.is_failure()
        {
            return None;
        }
        if let Some((name, at)) = &self.banner {
            return Some((name.clone(), *at));
        }
        let incomplete = self
            .doc
            .plan
            .as_ref()
            .is_some_and(|p| self.doc.count < p.count);
        end.reports_next(incomplete, enclosed || !self.tail.is_empty())
            .then(|| {
                (
                    format!("test {}", self.doc.last.saturating_add(1)),
                    self.since,
                )
            })
    }
}

/// The runner's comment on a test it cut off: `TIMEOUT 45 seconds` (the
/// runner's timeout), `exit=139` (killed by a signal: 128 + its number),
/// bats' `timeout after 3 s`. As a batch status, for [`TestStatus::Error`].
fn cut_off(comment: &str) -> Option<&'static str> {
    use crate::status::Status;
    if comment.starts_with("TIMEOUT") || comment.contains("timeout after") {
        return Some(Status::TimedOut.as_str());
    }
    let code = comment.strip_prefix("exit=")?;
    let end = code
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(code.len());
    let code: u64 = code[..end].parse().ok()?;
    (code >= 128).then_some(Status::Crashed.as_str())
}

/// A `#` line after a `not ok` that may be its diagnostic (not a header
/// of what follows).
fn diagnostic(line: &[u8]) -> bool {
    subtest_name(line).is_none()
        && kselftest_header(line).is_none()
        && totals(line).is_none()
        && banner(line).is_none()
}

/// The line of a failed test's output that says what failed, never a
/// banner or kselftest_harness's `FAIL  global.x` (which only names it).
fn message_from(output: &str) -> Option<String> {
    if let Some(m) = telling_line(output, telling)
        && telling(&m)
    {
        return Some(m);
    }
    let kept: String = output
        .lines()
        .filter(|l| !harness_verdict(l.trim_start_matches(['#', ' ', '\t'])))
        .flat_map(|l| [l, "\n"])
        .collect();
    telling_line(&kept, |_| false)
}

/// A YAML diagnostic block: only its `message:` and `duration_ms:` are
/// looked at.
#[derive(Debug, Default)]
struct Yaml {
    message: Option<String>,
    duration: Option<Duration>,
    /// In a `message: |` block scalar: the key's indentation and the lines.
    block: Option<(usize, String)>,
}

impl Yaml {
    fn feed(&mut self, line: &[u8]) {
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        if let Some((key_indent, text)) = &mut self.block {
            if trim(line).is_empty() || indent > *key_indent {
                if text.len() <= MAX_MESSAGE {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&decode(trim(line)));
                }
                return;
            }
            self.end_block();
        }
        if let Some(value) = trim(line).strip_prefix(b"duration_ms:") {
            self.duration = yaml_duration(value);
            return;
        }
        if self.message.is_some() {
            return;
        }
        let Some(value) = trim(line).strip_prefix(b"message:") else {
            return;
        };
        let value = trim(value);
        if value.starts_with(b"|") || value.starts_with(b">") {
            self.block = Some((indent, String::new()));
        } else {
            let unquoted = value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .or_else(|| value.strip_prefix(b"'").and_then(|v| v.strip_suffix(b"'")))
                .unwrap_or(value);
            self.message = Some(clip_message(&decode(unquoted)));
        }
    }

    fn end_block(&mut self) {
        if let Some((_, text)) = self.block.take() {
            self.message = Some(clip_message(text.trim_end()));
        }
    }

    /// The message and the duration.
    fn finish(mut self) -> (Option<String>, Option<Duration>) {
        self.end_block();
        (self.message.filter(|m| !m.is_empty()), self.duration)
    }
}
