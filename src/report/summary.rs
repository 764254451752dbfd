//! The end-of-run summary: counts, then the batches that need a look (those
//! that did not pass, and passing ones with warnings), then the slowest of
//! the others, as text or Markdown. Each batch listed says what it used
//! ([`Usage::describe`]) when that was measured: where the time or the
//! failure may have gone (a memory peak, I/O stalls).

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::duration;
use crate::event::{Event, Reporter, RunResult};
use crate::outcome::Outcome;
use crate::phase::Phase;
use crate::scheduler::predict::Prediction;
use crate::status::Status;
use crate::status::TestStatus;
use crate::text::{inert, inert_lines, needs_escape};
use crate::usage::Usage;

/// At most this many leaked processes are listed per batch; the rest are counted.
const MAX_LEAKED_LISTED: usize = 10;

/// How many batches ended in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub crashed: usize,
    pub timed_out: usize,
    pub leaked: usize,
    pub aborted: usize,
    pub deadline: usize,
    pub interrupted: usize,
    pub not_run: usize,
    pub flaky: usize,
    pub quarantined: usize,
}

impl Counts {
    fn add(&mut self, status: Status) {
        self.total += 1;
        let n = match status {
            Status::Passed => &mut self.passed,
            Status::Failed => &mut self.failed,
            Status::Crashed => &mut self.crashed,
            Status::TimedOut => &mut self.timed_out,
            Status::Leaked => &mut self.leaked,
            Status::Aborted => &mut self.aborted,
            Status::Deadline => &mut self.deadline,
            Status::Interrupted => &mut self.interrupted,
            Status::NotRun => &mut self.not_run,
            Status::Flaky => &mut self.flaky,
        };
        *n += 1;
    }

    /// `Success: 3/5, Failed: 1, Timed out: 1, Leaked: 0`; the rarer counts
    /// (`Crashed`, `Deadline`, `Interrupted`, `Not run`) only when not zero.
    pub fn line(&self) -> String {
        let optional = |label: &str, n: usize| match n {
            0 => String::new(),
            n => format!(", {label}: {n}"),
        };
        format!(
            "Success: {}/{}, Failed: {}{}, Timed out: {}, Leaked: {}{}{}{}{}{}{}",
            self.passed + self.flaky,
            self.total,
            self.failed,
            optional("Crashed", self.crashed),
            self.timed_out,
            self.leaked,
            optional("Aborted", self.aborted),
            optional("Deadline", self.deadline),
            optional("Interrupted", self.interrupted),
            optional("Not run", self.not_run),
            optional("Flaky", self.flaky),
            optional("Quarantined", self.quarantined),
        )
    }
}

/// Failing tests listed per batch, and lines of output shown for each.
const MAX_TESTS_LISTED: usize = 20;
const TEST_OUTPUT_LINES: usize = 5;

/// How many lines of an excerpt the summary shows.
const EXCERPT_LINES: usize = 5;

/// How many of the batches that passed are listed as the slowest (longest
/// first), with what they used: "slow" is relative to the run, the one
/// yardstick every run has. Only batches whose usage was measured are
/// listed (the point is what they used; their durations are in JUnit).
const SLOWEST: usize = 3;

/// One batch worth listing.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    status: Status,
    duration: Duration,
    reason: String,
    log: PathBuf,
    /// Warnings, then leaked processes (capped), as display lines.
    notes: Vec<String>,
}

/// One of the slowest batches that passed: name, duration, what it used.
#[derive(Debug, Clone)]
struct Slow {
    name: String,
    duration: Duration,
    used: String,
}

#[derive(Debug, Clone)]
pub struct Summary {
    counts: Counts,
    tests: TestCounts,
    rows: Vec<Row>,
    /// The slowest passing batches not in `rows`, longest first.
    slowest: Vec<Slow>,
    /// Lines about the run itself, after the batches (where it was recorded).
    notes: Vec<String>,
    makespan: Option<Makespan>,
}

/// How long the batches took from the first start to the last end, and
/// what the history predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Makespan {
    pub actual: Duration,
    pub predicted: Option<Prediction>,
}

impl Makespan {
    /// `Makespan: 4m 10s (predicted 4m 2s from history p90; lower bound 3m 55s)`.
    pub fn line(&self) -> String {
        let mut line = format!("Makespan: {}", duration::rounded(self.actual));
        if let Some(p) = &self.predicted {
            let guessed = match p.guessed {
                0 => String::new(),
                n => format!(
                    ", {n} of {} batches without history counted at the median",
                    p.batches
                ),
            };
            let _ = write!(
                line,
                " (predicted {} from history p90{guessed}; lower bound {})",
                duration::rounded(p.makespan),
                duration::rounded(p.lower_bound)
            );
        }
        line
    }
}

/// Tests and subtests read from batches' output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TestCounts {
    pub total: usize,
    pub passed: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Passed on the runner's own retry (also counted in `passed`).
    pub flaky: usize,
}

impl TestCounts {
    /// `Tests: Success: 355/3013, Skipped: 13, Failed: 1`, with
    /// `, Flaky: N` when the runner's own retries passed some.
    pub fn line(&self) -> String {
        let flaky = if self.flaky > 0 {
            format!(", Flaky: {}", self.flaky)
        } else {
            String::new()
        };
        format!(
            "Tests: Success: {}/{}{flaky}, Skipped: {}, Failed: {}",
            self.passed, self.total, self.skipped, self.failed
        )
    }
}

impl Summary {
    /// Batches are listed in the order given.
    pub fn new<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Self {
        let mut counts = Counts::default();
        let mut tests = TestCounts::default();
        let mut rows = Vec::new();
        let mut slowest = Vec::new();
        for o in outcomes {
            if o.phase == Phase::Batch {
                counts.add(o.status);
                counts.quarantined += usize::from(o.quarantined.is_some());
            }
            for t in &o.tests {
                tests.total += 1;
                match t.status {
                    TestStatus::Passed => tests.passed += 1,
                    TestStatus::Flaky => {
                        tests.passed += 1;
                        tests.flaky += 1;
                    }
                    TestStatus::Skipped(_) => tests.skipped += 1,
                    TestStatus::Failed | TestStatus::Error(_) => tests.failed += 1,
                }
            }
            if !o.status.is_success()
                || o.status == Status::Flaky
                || !o.warnings.is_empty()
                || !o.leaked.is_empty()
            {
                rows.push(Row::new(o));
            } else if o.phase == Phase::Batch
                && let Some(used) = o.usage.as_ref().map(Usage::describe)
                && !used.is_empty()
            {
                slowest.push(Slow {
                    name: o.name.to_string(),
                    duration: o.duration,
                    used,
                });
            }
        }
        // Longest first; the plan's order among equals (a stable sort).
        slowest.sort_by_key(|s| std::cmp::Reverse(s.duration));
        slowest.truncate(SLOWEST);
        Summary {
            counts,
            tests,
            rows,
            slowest,
            notes: Vec::new(),
            makespan: None,
        }
    }

    pub fn add_note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub fn set_makespan(&mut self, makespan: Makespan) {
        self.makespan = Some(makespan);
    }

    /// The first line(s): batch counts, then test counts when any batch's
    /// output was read into tests, then the makespan when batches ran.
    fn head(&self) -> String {
        let mut head = self.counts.line();
        if self.tests.total > 0 {
            head.push('\n');
            head.push_str(&self.tests.line());
        }
        if let Some(m) = &self.makespan {
            head.push('\n');
            head.push_str(&m.line());
        }
        head
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn test_counts(&self) -> TestCounts {
        self.tests
    }

    /// True when every batch passed (also when there were none).
    pub fn all_passed(&self) -> bool {
        self.counts.passed + self.counts.flaky == self.counts.total
    }

    pub fn render_text(&self) -> String {
        let mut out = self.head();
        out.push('\n');
        for r in &self.rows {
            let dur = duration::rounded(r.duration);
            // Writing to a String cannot fail.
            // Names, reasons and notes quote the batch: made inert, with
            // only a note's own line breaks kept as layout.
            let _ = writeln!(
                out,
                "  {} {} ({dur}): {}",
                r.status,
                inert(&r.name),
                inert(&r.reason)
            );
            for note in &r.notes {
                // Any line break inside a note stays under it.
                let _ = writeln!(out, "    {}", inert_lines(note).replace('\n', "\n      "));
            }
            // A batch no machine has run yet (`warden report` of a queue)
            // has no log to point at.
            if !r.log.as_os_str().is_empty() {
                let _ = writeln!(out, "    log: {}", inert(&r.log.display().to_string()));
            }
        }
        if !self.slowest.is_empty() {
            out.push_str("Slowest batches that passed:\n");
            for s in &self.slowest {
                let _ = writeln!(
                    out,
                    "  {} ({}): used: {}",
                    inert(&s.name),
                    duration::rounded(s.duration),
                    s.used
                );
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "{}", inert_lines(note));
        }
        out
    }

    /// GitHub-flavoured Markdown; every cell is escaped (test output is untrusted).
    pub fn render_markdown(&self) -> String {
        let mut out = format!("### warden\n\n{}\n", self.head().replace('\n', "<br>\n"));
        if !self.rows.is_empty() {
            self.markdown_rows(&mut out);
        }
        if !self.slowest.is_empty() {
            out.push_str("\n| slowest batch that passed | duration | used |\n");
            out.push_str("| --- | --- | --- |\n");
            for s in &self.slowest {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    md_cell(&s.name),
                    duration::rounded(s.duration),
                    md_cell(&s.used)
                );
            }
        }
        self.markdown_notes(&mut out);
        out
    }

    /// The table of the batches that need a look.
    fn markdown_rows(&self, out: &mut String) {
        out.push_str("\n| batch | status | duration | reason | log |\n");
        out.push_str("| --- | --- | --- | --- | --- |\n");
        for r in &self.rows {
            let mut reason = md_cell(&r.reason);
            for note in &r.notes {
                reason.push_str("<br>");
                // Indentation shows what a line belongs to; HTML would
                // collapse plain spaces.
                let body = note.trim_start_matches(' ');
                for _ in 0..(note.len() - body.len()) {
                    reason.push_str("&nbsp;");
                }
                reason.push_str(&md_cell(body));
            }
            let log = r.log.display().to_string();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {reason} | {} |",
                md_cell(&r.name),
                r.status,
                duration::rounded(r.duration),
                md_cell(&log),
            );
        }
    }

    fn markdown_notes(&self, out: &mut String) {
        for note in &self.notes {
            let _ = write!(out, "\n{}\n", md_cell(note));
        }
    }

    /// Appends the Markdown to the file named by `$GITHUB_STEP_SUMMARY`; does
    /// nothing when it is unset or empty.
    pub fn append_to_github_step_summary(&self) -> io::Result<()> {
        match std::env::var_os("GITHUB_STEP_SUMMARY") {
            Some(path) if !path.is_empty() => self.append_markdown_to(Path::new(&path)),
            _ => Ok(()),
        }
    }

    /// Appends the Markdown to `path`, creating the file if needed.
    pub fn append_markdown_to(&self, path: &Path) -> io::Result<()> {
        let mut f = OpenOptions::new().create(true).append(true).open(path)?;
        // One write call, so concurrent appenders don't interleave within it.
        f.write_all(format!("{}\n", self.render_markdown()).as_bytes())
    }
}

/// The summary as a reporter. It is about the run as a whole, its batches
/// listed in plan order, so it is made from the outcomes the run ends with
/// ([`Reporter::finish`]) rather than event by event; the run's own notes
/// (where it was recorded, its errors) are added afterwards, where they
/// are decided.
pub struct SummaryReport {
    predicted: Option<Prediction>,
    summary: Summary,
}

impl SummaryReport {
    /// `predicted`: the makespan the history predicts, shown next to the
    /// actual one.
    pub fn new(predicted: Option<Prediction>) -> SummaryReport {
        SummaryReport {
            predicted,
            summary: Summary::new(std::iter::empty()),
        }
    }

    /// The summary the run ended with (of nothing, before it ended).
    pub fn into_summary(self) -> Summary {
        self.summary
    }
}

impl Reporter for SummaryReport {
    fn on_event(&mut self, _event: &Event) {}

    fn finish(&mut self, run: &RunResult) {
        self.summary = Summary::new(&run.outcomes);
        for note in &run.notes {
            self.summary.add_note(note.clone());
        }
        if let Some(actual) = run.makespan {
            self.summary.set_makespan(Makespan {
                actual,
                predicted: self.predicted,
            });
        }
    }
}

impl Row {
    fn new(o: &Outcome) -> Row {
        let mut notes: Vec<String> = o.warnings.iter().map(|w| format!("warning: {w}")).collect();
        notes.extend(
            o.leaked
                .iter()
                .take(MAX_LEAKED_LISTED)
                .map(|p| format!("leaked: pid {}: {}", p.pid, p.cmdline)),
        );
        if o.leaked.len() > MAX_LEAKED_LISTED {
            let more = o.leaked.len() - MAX_LEAKED_LISTED;
            notes.push(format!("leaked: ... and {more} more"));
        }
        // Each failing test, with the first lines of its own output.
        for t in o
            .tests
            .iter()
            .filter(|t| t.status.is_failure())
            .take(MAX_TESTS_LISTED)
        {
            let name = t.name();
            // A multi-line message: its first line on the test's line, the
            // rest indented under it, so the layout holds.
            let mut message = t.message.as_deref().unwrap_or("").lines();
            let why = message.next().map(|m| format!(": {m}")).unwrap_or_default();
            let q = o
                .quarantined_tests
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, q)| format!(" (quarantined: {q})"))
                .unwrap_or_default();
            let verb = match &t.status {
                TestStatus::Error(kind) => format!("{} ({kind})", t.status),
                other => other.to_string(),
            };
            notes.push(format!("test {name} {verb}{why}{q}"));
            notes.extend(message.map(|l| format!("  {l}")));
            notes.extend(
                t.output
                    .lines()
                    .take(TEST_OUTPUT_LINES)
                    .map(|l| format!("| {l}")),
            );
        }
        notes.extend(o.test_problems.iter().map(|p| format!("tests: {p}")));
        if let Some(q) = &o.quarantined {
            notes.push(format!("quarantined: {q}: does not fail the run"));
        }
        notes.extend(o.retried.iter().enumerate().map(|(i, a)| {
            format!(
                "attempt {}: {}: {} (log: {})",
                i + 1,
                a.status,
                a.reason,
                a.log.display()
            )
        }));
        // The last lines of the excerpt: the full one is in JUnit.
        if let Some(excerpt) = &o.excerpt {
            let lines: Vec<&str> = excerpt.lines().collect();
            let from = lines.len().saturating_sub(EXCERPT_LINES);
            notes.extend(lines[from..].iter().map(|l| format!("| {l}")));
        }
        if let Some(used) = o.usage.as_ref().map(Usage::describe)
            && !used.is_empty()
        {
            notes.push(format!("used: {used}"));
        }
        Row {
            name: match o.phase {
                Phase::Batch => o.name.to_string(),
                phase => format!("{} step {}", phase.as_str(), o.name),
            },
            status: o.status,
            duration: o.duration,
            reason: o.reason.clone(),
            log: o.log.clone(),
            notes,
        }
    }
}

/// Text safe inside a GFM table cell: HTML-escaped, pipes and Markdown syntax
/// backslash-escaped, line breaks as `<br>`, and controls and bidi
/// characters made visible ([`inert`]).
fn md_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // `\r\n` is one break; a lone CR is no break but an escape.
            '\r' if chars.peek() == Some(&'\n') => {
                chars.next();
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if needs_escape(c) => out.push_str(&inert(c.encode_utf8(&mut [0; 4]))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ProcessInfo;
    use crate::report::test_support::outcome;

    fn sample() -> Vec<Outcome> {
        let mut leaky = outcome("lint", Status::Passed, "exit code 0");
        leaky.warnings = vec!["left 1 process behind".into()];
        leaky.leaked = vec![ProcessInfo {
            pid: 4242,
            cmdline: "sleep 1000".into(),
        }];
        leaky.duration = Duration::from_millis(500);
        let mut hang = outcome("hang", Status::TimedOut, "timed out after 5s");
        hang.duration = Duration::from_millis(123_400);
        vec![
            outcome("unit", Status::Passed, "exit code 0"),
            outcome("fv", Status::Failed, "exit code 1"),
            leaky,
            hang,
            outcome("doc", Status::Passed, "exit code 0"),
        ]
    }

    /// As a reporter, the summary is the one the run's outcomes make, in
    /// the order the run ends with, whatever the events said before.
    #[test]
    fn the_reporter_makes_the_summary_at_the_end() {
        let outcomes = sample();
        let predicted = Prediction {
            makespan: Duration::from_secs(9),
            lower_bound: Duration::from_secs(8),
            guessed: 0,
            batches: outcomes.len(),
        };
        let mut report = SummaryReport::new(Some(predicted));
        for o in outcomes.iter().rev() {
            report.on_event(&Event::Finished(Box::new(o.clone())));
        }
        report.finish(&RunResult {
            outcomes: outcomes.clone(),
            stopped: None,
            makespan: Some(Duration::from_secs(10)),
            notes: Vec::new(),
        });
        let mut expected = Summary::new(&outcomes);
        expected.set_makespan(Makespan {
            actual: Duration::from_secs(10),
            predicted: Some(predicted),
        });
        let made = report.into_summary();
        assert_eq!(made.render_text(), expected.render_text());
        assert_eq!(made.render_markdown(), expected.render_markdown());

        let mut no_batches = SummaryReport::new(Some(predicted));
        no_batches.finish(&RunResult {
            outcomes: Vec::new(),
            stopped: None,
            makespan: None,
            notes: Vec::new(),
        });
        assert!(!no_batches.into_summary().render_text().contains("Makespan"));
    }

    #[test]
    fn counts_line_exact() {
        let s = Summary::new(&sample());
        assert_eq!(
            s.render_text().lines().next().unwrap(),
            "Success: 3/5, Failed: 1, Timed out: 1, Leaked: 0"
        );
        let mut v = sample();
        v[0].status = Status::Crashed;
        assert_eq!(
            Summary::new(&v).counts().line(),
            "Success: 2/5, Failed: 1, Crashed: 1, Timed out: 1, Leaked: 0"
        );
        assert_eq!(
            Summary::new(&[]).counts().line(),
            "Success: 0/0, Failed: 0, Timed out: 0, Leaked: 0"
        );
        assert!(Summary::new(&[]).all_passed());
        assert!(!Summary::new(&sample()).all_passed());
    }

    #[test]
    fn text_lists_non_passing_and_warned_in_order() {
        let text = Summary::new(&sample()).render_text();
        let expected = "\
Success: 3/5, Failed: 1, Timed out: 1, Leaked: 0
  failed fv (1.23s): exit code 1
    log: /nonexistent/warden-test/fv.log
  passed lint (0.50s): exit code 0
    warning: left 1 process behind
    leaked: pid 4242: sleep 1000
    log: /nonexistent/warden-test/lint.log
  timed-out hang (2m 3s): timed out after 5s
    log: /nonexistent/warden-test/hang.log
";
        assert_eq!(text, expected);
    }

    #[test]
    fn markdown_table() {
        let md = Summary::new(&sample()).render_markdown();
        let expected = "\
### warden

Success: 3/5, Failed: 1, Timed out: 1, Leaked: 0

| batch | status | duration | reason | log |
| --- | --- | --- | --- | --- |
| fv | failed | 1.23s | exit code 1 | /nonexistent/warden-test/fv.log |
| lint | passed | 0.50s | exit code 0<br>warning: left 1 process behind<br>leaked: pid 4242: sleep 1000 | /nonexistent/warden-test/lint.log |
| hang | timed-out | 2m 3s | timed out after 5s | /nonexistent/warden-test/hang.log |
";
        assert_eq!(md, expected);
        let all_green = [outcome("a", Status::Passed, "exit code 0")];
        assert_eq!(
            Summary::new(&all_green).render_markdown(),
            "### warden\n\nSuccess: 1/1, Failed: 0, Timed out: 0, Leaked: 0\n"
        );
    }

    #[test]
    fn markdown_escapes_untrusted_text() {
        let mut o = outcome(
            "evil",
            Status::Failed,
            "a|b\nc\r\nd <script>&amp; `x` [l](u) *e*",
        );
        o.warnings = vec!["</td>|".into()];
        let md = Summary::new(&[o]).render_markdown();
        let row = md.lines().last().unwrap();
        assert_eq!(
            row,
            "| evil | failed | 1.23s | a\\|b<br>c<br>d &lt;script&gt;&amp;amp; \\`x\\` \\[l\\](u) \\*e\\*\
<br>warning: &lt;/td&gt;\\| | /nonexistent/warden-test/evil.log |"
        );
        // Exactly the 6 structural pipes survive unescaped.
        let bare = row.replace("\\|", "");
        assert_eq!(bare.matches('|').count(), 6);
        assert!(!md.contains("<script>"));
    }

    #[test]
    fn controls_and_bidi_are_visible_in_text_and_markdown() {
        use crate::parsers::TestResult;
        let mut o = outcome("unit", Status::Failed, "1 of 1 tests failed: a\x1b]0;t\x07");
        o.tests = vec![TestResult {
            path: vec!["ev\x1b[2J\ril_\u{202e}gpj.exe".into()],
            status: TestStatus::Failed,
            duration: None,
            output: "out\x1b]8;;http://x\x1b\\\x08\n".into(),
            message: Some("first\r\nsecond\x1bc line\nthird".into()),
        }];
        let s = Summary::new(&[o]);
        for out in [s.render_text(), s.render_markdown()] {
            assert!(
                !out.contains(['\x1b', '\x07', '\x08', '\r', '\u{202e}']),
                "{out:?}"
            );
        }
        let text = s.render_text();
        assert!(
            text.contains("test ev\\e[2J\\ril_\\u{202e}gpj.exe failed"),
            "{text}"
        );
        assert!(text.contains("a\\e]0;t\\x07"), "{text}");
        // The message's own line breaks are layout; the ESC inside a line is not.
        assert!(
            text.contains(": first\n      second\\ec line\n      third\n"),
            "{text}"
        );
        assert!(
            text.contains("    | out\\e]8;;http://x\\e\\\\x08\n"),
            "{text}"
        );
        let md = s.render_markdown();
        // Markdown's own escapes (`\[`, `\_`) come on top.
        assert!(
            md.contains("test ev\\e\\[2J\\ril\\_\\u{202e}gpj.exe failed"),
            "{md}"
        );
        assert!(md.contains("a\\e\\]0;t\\x07"), "{md}");
        assert!(md.contains("first<br>&nbsp;&nbsp;second\\ec line"), "{md}");
    }

    #[test]
    fn multi_line_messages_are_indented_under_their_test() {
        use crate::parsers::TestResult;
        let mut o = outcome("unit", Status::Failed, "1 of 2 tests failed: t");
        let test = |name: &str, status, message: &str| TestResult {
            path: vec![name.into()],
            status,
            duration: None,
            output: String::new(),
            message: Some(message.into()),
        };
        o.tests = vec![
            test(
                "t",
                TestStatus::Failed,
                "assertion `left == right` failed\n  left: 3\n right: 4",
            ),
            test(
                "hang",
                TestStatus::Error("timed-out".into()),
                "timed out after 5s",
            ),
        ];
        let s = Summary::new(&[o]);
        let text = s.render_text();
        assert!(
            text.contains(
                "    test t failed: assertion `left == right` failed\n        left: 3\n       right: 4\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("    test hang error (timed-out): timed out after 5s\n"),
            "{text}"
        );
        let md = s.render_markdown();
        assert!(
            md.contains("failed<br>&nbsp;&nbsp;&nbsp;&nbsp;left: 3<br>&nbsp;&nbsp;&nbsp;right: 4"),
            "{md}"
        );
        assert!(text.starts_with("Success: 0/1"), "{text}");
        assert!(
            text.contains("Tests: Success: 0/2, Skipped: 0, Failed: 2"),
            "{text}"
        );
    }

    #[test]
    fn makespan_line_after_the_counts() {
        let mut s = Summary::new(&sample());
        s.set_makespan(Makespan {
            actual: Duration::from_secs(250),
            predicted: None,
        });
        let text = s.render_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "Makespan: 4m 10s");
        assert!(lines[2].starts_with("  failed fv"), "{text}");
        let predicted = Prediction {
            makespan: Duration::from_secs(242),
            lower_bound: Duration::from_secs(235),
            guessed: 0,
            batches: 5,
        };
        let mut m = Makespan {
            actual: Duration::from_secs(250),
            predicted: Some(predicted),
        };
        assert_eq!(
            m.line(),
            "Makespan: 4m 10s (predicted 4m 2s from history p90; lower bound 3m 55s)"
        );
        m.predicted = Some(Prediction {
            guessed: 2,
            ..predicted
        });
        assert_eq!(
            m.line(),
            "Makespan: 4m 10s (predicted 4m 2s from history p90, 2 of 5 batches without \
             history counted at the median; lower bound 3m 55s)"
        );
        s.set_makespan(m);
        assert!(
            s.render_markdown()
                .contains("Leaked: 0<br>\nMakespan: 4m 10s (predicted")
        );
    }

    /// Listed batches say what they used; of the others, the three
    /// longest with a measured usage are listed as the slowest, longest
    /// first (a setup step, an unmeasured batch, a listed one: not).
    #[test]
    fn what_batches_used_and_the_slowest() {
        use crate::usage::Usage;
        let used = |mib: u64| {
            Some(Usage {
                peak_memory: Some(mib << 20),
                ..Usage::default()
            })
        };
        let batch = |name: &str, status, secs: u64, usage: Option<Usage>| {
            let mut o = outcome(name, status, "exit code 0");
            o.duration = Duration::from_secs(secs);
            o.usage = usage;
            o
        };
        let mut setup = batch("build", Status::Passed, 900, used(1));
        setup.phase = Phase::Setup;
        let mut failed = batch("oom", Status::Crashed, 500, used(4096));
        failed.usage.as_mut().unwrap().oom_kills = 1;
        failed.reason = "killed by the OOM killer".into();
        let outcomes = [
            setup,
            batch("a", Status::Passed, 10, used(10)),
            batch("b", Status::Passed, 40, used(40)),
            failed,
            batch("unmeasured", Status::Passed, 800, None),
            batch("empty", Status::Passed, 700, Some(Usage::default())),
            batch("c", Status::Passed, 30, used(30)),
            batch("d", Status::Passed, 40, used(41)),
        ];
        let s = Summary::new(&outcomes);
        let text = s.render_text();
        assert_eq!(
            text.lines().skip(1).collect::<Vec<_>>(),
            [
                "  crashed oom (8m 20s): killed by the OOM killer",
                "    used: peak 4.0G, 1 OOM kill(s)",
                "    log: /nonexistent/warden-test/oom.log",
                "Slowest batches that passed:",
                "  b (40.00s): used: peak 40.0M",
                "  d (40.00s): used: peak 41.0M",
                "  c (30.00s): used: peak 30.0M",
            ],
            "{text}"
        );
        let md = s.render_markdown();
        assert!(
            md.contains("| oom | crashed | 8m 20s | killed by the OOM killer<br>used: peak 4.0G, 1 OOM kill(s) |"),
            "{md}"
        );
        assert!(
            md.ends_with(
                "\n| slowest batch that passed | duration | used |\n| --- | --- | --- |\n\
                 | b | 40.00s | peak 40.0M |\n| d | 40.00s | peak 41.0M |\n| c | 30.00s | peak 30.0M |\n"
            ),
            "{md}"
        );
        // Nothing measured: the summary is as before.
        let plain = Summary::new(&sample());
        assert!(!plain.render_text().contains("used:"));
        assert!(!plain.render_markdown().contains("slowest"));
    }

    #[test]
    fn appends_markdown_to_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "before\n").unwrap();
        let s = Summary::new(&sample());
        s.append_markdown_to(&path).unwrap();
        let got = std::fs::read_to_string(&path).unwrap();
        assert_eq!(got, format!("before\n{}\n", s.render_markdown()));
    }
}
