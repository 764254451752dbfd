//! The JUnit XML file, rewritten atomically (a sibling temp file, then a
//! rename) after each burst of finished batches, so that a reader (or a
//! killed run) always finds a complete document:
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <testsuites name="warden" tests="…" skipped="…" failures="…" errors="…" timestamp="…" time="…">
//!     <testsuite name="setup" …>   the setup steps, when there are any
//!     <testsuite name="warden" …>  a testcase per batch not read into tests (always there)
//!     <testsuite name="post" …>    the post steps, when there are any
//!     <testsuite name="BATCH" …>   per batch read into tests (`format`): a testcase per
//!                                  test and subtest, classname = the batch
//! </testsuites>
//! ```
//!
//! A batch may report a million tests, and the file is rewritten after every
//! burst of finishes. So the suite of a batch read into tests is rendered
//! once, when it finishes, straight from its outcome into a spool file, and
//! every rewrite writes the small suites (a few fields kept per batch) and
//! then copies the spool (in the kernel where it can: `copy_file_range`).
//! The totals of `<testsuites>` come from counts kept per spooled suite.
//!
//! What a batch used ([`Usage`]) goes in `<properties>`, one `<property>`
//! per figure measured ([`usage_properties`]: `warden.peak-memory`,
//! `warden.cpu-ms`, …): on the batch's own `<testsuite>` when it was read
//! into tests, else on its `<testcase>` in the `warden` suite. A batch
//! whose usage was not measured has no `<properties>`.
//! Memory is a few fields per batch, whatever the number of tests; no model
//! of a test outlives its own rendering. The spool is an unlinked file next
//! to the report: nothing is left behind, even by a killed warden.
//!
//! One serializer writes the whole document: quick-xml's [`Writer`], which
//! escapes text and attributes. It is laid out as quick-junit laid out the
//! reports of earlier versions (the same elements, attribute order and
//! four-space indentation), and the tests read it back with quick-junit.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::log_tail::tail_text;
use super::{is_xml_char, xml_safe_text};
use crate::atomic_write::{hidden_sibling, write_atomically};
use crate::outcome::Outcome;
use crate::parsers::TestResult;
use crate::phase::Phase;
use crate::status::{Status, TestStatus};
use crate::usage::Usage;

/// The name of the report, of the batches' test suite, and the default classname.
const NAME: &str = "warden";

/// Keeps what JUnit needs of each finished batch and rewrites the file on demand.
#[derive(Debug)]
pub struct JunitWriter {
    path: PathBuf,
    /// Batches not read into tests, and setup and post steps.
    cases: Vec<Case>,
    /// The suites of batches read into tests, rendered; created with the first.
    spool: Option<Spool>,
    /// What the spooled suites hold.
    spooled: Counts,
    /// The earliest start and the latest end of everything recorded.
    span: Option<(SystemTime, SystemTime)>,
}

/// The few fields of an [`Outcome`] its testcase needs, already XML-safe, so
/// that each rewrite only serializes.
#[derive(Debug)]
struct Case {
    /// Which suite it goes in.
    phase: Phase,
    /// Earlier attempts: (status, reason).
    retried: Vec<(String, String)>,
    /// `quarantined (reason): <status>: <reason>` when quarantined.
    quarantined: Option<String>,
    name: String,
    classname: String,
    status: Status,
    reason: String,
    started: SystemTime,
    duration: Duration,
    /// The log's tail; `None` when empty.
    out: Option<String>,
    /// Warnings and leaked processes, one per line; `None` when there are none.
    err: Option<String>,
    /// What it used, as `<property>` name and value; empty when unmeasured.
    properties: Vec<(&'static str, String)>,
}

impl JunitWriter {
    /// Writes nothing until the first [`record`](Self::record) or [`write`](Self::write).
    pub fn new(path: PathBuf) -> Self {
        JunitWriter {
            path,
            cases: Vec::new(),
            spool: None,
            spooled: Counts::default(),
            span: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds one batch and rewrites the file.
    pub fn record(&mut self, outcome: &Outcome) -> io::Result<()> {
        self.record_many(std::iter::once(outcome))
    }

    /// Adds several batches and rewrites the file once: for bursts of finishes.
    pub fn record_many<'a>(
        &mut self,
        outcomes: impl IntoIterator<Item = &'a Outcome>,
    ) -> io::Result<()> {
        // A batch that could not be added is missing; the others are not.
        let mut first_error = None;
        for o in outcomes {
            if let Err(e) = self.add(o) {
                first_error.get_or_insert(e);
            }
        }
        let written = self.write();
        first_error.map_or(written, Err)
    }

    /// Adds a batch without rewriting the file: a batch read into tests is
    /// rendered here, once. The next [`write`](Self::write) shows it.
    pub fn add(&mut self, outcome: &Outcome) -> io::Result<()> {
        let case = Case::new(outcome);
        if outcome.tests.is_empty() {
            self.cases.push(case);
        } else {
            let spool = match &mut self.spool {
                Some(spool) => spool,
                None => self.spool.insert(Spool::create(&self.path)?),
            };
            let counts = spool.append(|w| write_tests_suite(w, outcome, &case))?;
            self.spooled = self.spooled + counts;
        }
        let end = outcome.started + outcome.duration;
        self.span = Some(match self.span {
            Some((s, e)) => (s.min(outcome.started), e.max(end)),
            None => (outcome.started, end),
        });
        Ok(())
    }

    /// Rewrites the file with what was recorded so far (an empty suite if nothing).
    pub fn write(&self) -> io::Result<()> {
        write_atomically(&self.path, |out| {
            let mut w = Writer::new_with_indent(out, b' ', 4);
            w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
            // One suite per phase: `setup` and `post` when they have steps,
            // and `warden` (the batches) always.
            let suites: Vec<(&str, Vec<&Case>)> = [
                ("setup", Phase::Setup),
                (NAME, Phase::Batch),
                ("post", Phase::Post { required: false }),
            ]
            .into_iter()
            .map(|(suite, phase)| {
                // Post steps go together, required or not.
                let cases = self
                    .cases
                    .iter()
                    .filter(|c| c.phase.as_str() == phase.as_str())
                    .collect();
                (suite, cases)
            })
            .filter(|(suite, cases): &(&str, Vec<&Case>)| *suite == NAME || !cases.is_empty())
            .collect();
            let total = suites
                .iter()
                .flat_map(|(_, cases)| cases)
                .fold(self.spooled, |n, c| n + Counts::of(&c.verdict()));
            let mut tag = BytesStart::new("testsuites");
            tag.push_attribute(("name", NAME));
            tag.extend_attributes([
                ("tests", total.tests.to_string().as_str()),
                ("skipped", total.skipped.to_string().as_str()),
                ("failures", total.failures.to_string().as_str()),
                ("errors", total.errors.to_string().as_str()),
            ]);
            if let Some((start, end)) = self.span {
                push_timestamp(&mut tag, start);
                push_time(&mut tag, end.duration_since(start).unwrap_or_default());
            }
            w.write_event(Event::Start(tag))?;
            for (name, cases) in &suites {
                write_cases_suite(&mut w, name, cases)?;
            }
            if let Some(spool) = &self.spool {
                spool.copy_to(w.get_mut())?;
            }
            w.write_event(Event::End(BytesEnd::new("testsuites")))?;
            // A trailing newline.
            w.write_indent()
        })
    }
}

/// How many testcases, and of which kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    tests: usize,
    skipped: usize,
    failures: usize,
    errors: usize,
}

impl Counts {
    fn of(verdict: &Verdict<'_>) -> Counts {
        let mut n = Counts {
            tests: 1,
            ..Counts::default()
        };
        match verdict {
            Verdict::Success => {}
            Verdict::NonSuccess { error: true, .. } => n.errors = 1,
            Verdict::NonSuccess { error: false, .. } => n.failures = 1,
            Verdict::Skipped { .. } => n.skipped = 1,
        }
        n
    }
}

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, o: Counts) -> Counts {
        Counts {
            tests: self.tests + o.tests,
            skipped: self.skipped + o.skipped,
            failures: self.failures + o.failures,
            errors: self.errors + o.errors,
        }
    }
}

/// What a testcase's status element says.
#[derive(Debug)]
enum Verdict<'a> {
    Success,
    /// `<error>` when `error`, else `<failure>`; the description is its text.
    NonSuccess {
        error: bool,
        ty: &'a str,
        message: Option<&'a str>,
        description: Option<&'a str>,
    },
    Skipped {
        ty: Option<&'a str>,
        message: Option<&'a str>,
    },
}

/// A failed earlier attempt: `<flakyFailure>` under a success,
/// `<rerunFailure>` under a failure, left out under a skip.
#[derive(Debug)]
struct Rerun<'a> {
    ty: &'a str,
    message: Option<&'a str>,
}

/// One `<testcase>`, all text XML-safe.
#[derive(Debug)]
struct XmlCase<'a> {
    name: &'a str,
    classname: &'a str,
    timestamp: Option<SystemTime>,
    time: Option<Duration>,
    verdict: Verdict<'a>,
    reruns: Vec<Rerun<'a>>,
    out: Option<&'a str>,
    err: Option<&'a str>,
    properties: &'a [(&'static str, String)],
}

/// What a batch used as JUnit properties, only the figures measured:
/// bytes, whole milliseconds and counts, so tools can sum and compare them.
/// `warden.oom-kills` when the OOM killer's count was read (a cgroup's, so
/// not for a partial usage unless it is not zero); `warden.usage-partial`
/// (`true`) when the figures come from `wait4`'s rusage, not a cgroup.
pub fn usage_properties(u: &Usage) -> Vec<(&'static str, String)> {
    let ms = |d: Duration| d.as_millis().to_string();
    let mut p: Vec<(&'static str, String)> = [
        ("warden.peak-memory", u.peak_memory.map(|b| b.to_string())),
        ("warden.cpu-ms", u.cpu.map(ms)),
        ("warden.read-bytes", u.read_bytes.map(|b| b.to_string())),
        (
            "warden.written-bytes",
            u.written_bytes.map(|b| b.to_string()),
        ),
        ("warden.cpu-stall-ms", u.cpu_stall.map(ms)),
        ("warden.memory-stall-ms", u.memory_stall.map(ms)),
        ("warden.io-stall-ms", u.io_stall.map(ms)),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value?)))
    .collect();
    if !u.partial || u.oom_kills > 0 {
        p.push(("warden.oom-kills", u.oom_kills.to_string()));
    }
    if u.partial {
        p.push(("warden.usage-partial", "true".to_owned()));
    }
    p
}

/// `<properties>` with one `<property>` each; nothing when there are none.
fn write_properties<W: Write>(
    w: &mut Writer<W>,
    properties: &[(&'static str, String)],
) -> io::Result<()> {
    if properties.is_empty() {
        return Ok(());
    }
    w.write_event(Event::Start(BytesStart::new("properties")))?;
    for (name, value) in properties {
        let mut tag = BytesStart::new("property");
        tag.push_attribute(("name", *name));
        tag.push_attribute(("value", value.as_str()));
        w.write_event(Event::Empty(tag))?;
    }
    w.write_event(Event::End(BytesEnd::new("properties")))
}

/// A `<testsuite>` of testcases kept as [`Case`]s: `setup`, `warden`, `post`.
fn write_cases_suite<W: Write>(w: &mut Writer<W>, name: &str, cases: &[&Case]) -> io::Result<()> {
    let counts = cases
        .iter()
        .fold(Counts::default(), |n, c| n + Counts::of(&c.verdict()));
    let start = cases.iter().map(|c| c.started).min();
    let end = cases.iter().map(|c| c.started + c.duration).max();
    let span = start
        .zip(end)
        .map(|(s, e)| (s, e.duration_since(s).unwrap_or_default()));
    let tag = suite_tag(name, counts, span);
    if cases.is_empty() {
        return w.write_event(Event::Empty(tag));
    }
    w.write_event(Event::Start(tag))?;
    for c in cases {
        write_case(w, &c.to_xml())?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuite")))
}

/// The suite of a batch read into tests: a testcase per test and subtest
/// (classname = the batch), plus one for the batch itself when it failed
/// outside any test (timeout, crash, leak, an incomplete run). Returns what
/// it holds.
fn write_tests_suite<W: Write>(w: &mut Writer<W>, o: &Outcome, case: &Case) -> io::Result<Counts> {
    // Looked up by test name; both are short lists (or empty).
    let mut quarantined: HashMap<&str, String> = HashMap::new();
    for (name, why) in &o.quarantined_tests {
        // The first entry for a name counts.
        quarantined
            .entry(name.as_str())
            .or_insert_with(|| xml_safe_text(format!("quarantined ({why}): failed").as_bytes()));
    }
    let mut earlier: HashMap<&str, Vec<String>> = HashMap::new();
    for (name, message) in o.retried.iter().flat_map(|a| a.failed_tests.iter()) {
        earlier
            .entry(name.as_str())
            .or_default()
            .push(xml_safe_text(message.as_bytes()));
    }
    let by_name = !quarantined.is_empty() || !earlier.is_empty();

    // The counts go in the suite's start tag: a first pass, without text.
    let mut counts = Counts::default();
    let mut failed_test = false;
    for t in &o.tests {
        let q = by_name && quarantined.contains_key(t.name().as_str());
        failed_test |= t.status.is_failure();
        counts = counts + Counts::of(&test_verdict(&t.status, q, None, None, None));
    }
    let batch_case = !failed_test && !matches!(o.status, Status::Passed | Status::Flaky);
    // What it used is the suite's: not again on the batch's own testcase.
    let batch = batch_case.then(|| XmlCase {
        properties: &[],
        ..case.to_xml()
    });
    if let Some(b) = &batch {
        counts = counts + Counts::of(&b.verdict);
    }

    w.write_event(Event::Start(suite_tag(
        &case.name,
        counts,
        Some((case.started, case.duration)),
    )))?;
    write_properties(w, &case.properties)?;
    for t in &o.tests {
        write_test(w, t, &case.name, &quarantined, &earlier)?;
    }
    if let Some(b) = &batch {
        write_case(w, b)?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    Ok(counts)
}

/// What a test's status comes to; the text, when given, is XML-safe.
fn test_verdict<'a>(
    status: &TestStatus,
    quarantined: bool,
    ty: Option<&'a str>,
    message: Option<&'a str>,
    output: Option<&'a str>,
) -> Verdict<'a> {
    match status {
        // As for batches: skipped, so JUnit consumers stay green.
        TestStatus::Failed | TestStatus::Error(_) if quarantined => Verdict::Skipped {
            ty: Some("quarantined"),
            message,
        },
        TestStatus::Passed | TestStatus::Flaky => Verdict::Success,
        TestStatus::Skipped(_) => Verdict::Skipped { ty: None, message },
        TestStatus::Failed | TestStatus::Error(_) => Verdict::NonSuccess {
            error: matches!(status, TestStatus::Error(_)),
            ty: ty.unwrap_or(TestStatus::Failed.as_str()),
            message,
            // The test's own output is the failure text.
            description: output,
        },
    }
}

fn write_test<W: Write>(
    w: &mut Writer<W>,
    t: &TestResult,
    classname: &str,
    quarantined: &HashMap<&str, String>,
    earlier: &HashMap<&str, Vec<String>>,
) -> io::Result<()> {
    let name = t.name();
    let why = quarantined.get(name.as_str()).map(String::as_str);
    let message = t.message.as_deref().map(safe);
    let output = Some(t.output.as_str()).filter(|o| !o.is_empty()).map(safe);
    let ty = match &t.status {
        TestStatus::Error(ty) => Some(safe(ty)),
        _ => None,
    };
    let skipped = match &t.status {
        TestStatus::Skipped(why) => why.as_deref().map(safe),
        _ => None,
    };
    let status_message = match (&t.status, why) {
        (TestStatus::Failed | TestStatus::Error(_), Some(why)) => Some(why),
        (TestStatus::Skipped(_), _) => skipped.as_deref(),
        _ => message.as_deref(),
    };
    let verdict = test_verdict(
        &t.status,
        why.is_some(),
        ty.as_deref(),
        status_message,
        output.as_deref(),
    );
    let mut reruns = Vec::new();
    // The runner's own retry passed it: its failed attempt.
    if t.status == TestStatus::Flaky {
        reruns.push(Rerun {
            ty: TestStatus::Failed.as_str(),
            message: message.as_deref(),
        });
    }
    // Earlier attempts in which it failed: flakyFailure on a test that
    // passed in the end, rerunFailure on one that failed every time.
    reruns.extend(
        earlier
            .get(name.as_str())
            .into_iter()
            .flatten()
            .map(|m| Rerun {
                ty: TestStatus::Failed.as_str(),
                message: Some(m),
            }),
    );
    let out = (!t.status.is_failure() || why.is_some())
        .then_some(output.as_deref())
        .flatten();
    write_case(
        w,
        &XmlCase {
            name: &safe(&name),
            classname,
            timestamp: None,
            time: t.duration,
            verdict,
            reruns,
            out,
            err: None,
            properties: &[],
        },
    )
}

/// `s` as is when XML can hold it, else [`xml_safe_text`]: most names and
/// messages need no copy.
fn safe(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().all(is_xml_char) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(xml_safe_text(s.as_bytes()))
    }
}

impl Case {
    fn new(o: &Outcome) -> Case {
        Case {
            phase: o.phase,
            quarantined: o
                .quarantined
                .as_ref()
                .map(|q| xml(&format!("quarantined ({q}): {}: {}", o.status, o.reason))),
            retried: o
                .retried
                .iter()
                .map(|a| (xml(a.status.as_str()), xml(&a.reason)))
                .collect(),
            name: xml(o.name.as_str()),
            classname: xml(o.kind.as_deref().unwrap_or(NAME)),
            status: o.status,
            reason: xml(&o.reason),
            started: o.started,
            duration: o.duration,
            out: Some(tail_text(&o.log)).filter(|t| !t.is_empty()),
            err: system_err(o).map(|s| xml(&s)),
            properties: o.usage.as_ref().map(usage_properties).unwrap_or_default(),
        }
    }

    fn to_xml(&self) -> XmlCase<'_> {
        XmlCase {
            name: &self.name,
            classname: &self.classname,
            timestamp: Some(self.started),
            time: Some(self.duration),
            verdict: self.verdict(),
            reruns: self.reruns(),
            out: self.out.as_deref(),
            err: self.err.as_deref(),
            properties: &self.properties,
        }
    }

    fn verdict(&self) -> Verdict<'_> {
        // Quarantined failures are skipped in JUnit: consumers that fail a
        // build on any <failure> stay green, and the message keeps the failure.
        if let Some(why) = &self.quarantined {
            return Verdict::Skipped {
                ty: Some("quarantined"),
                message: Some(why),
            };
        }
        // The status is the type; whether it is a `<failure>` (the batch
        // reached a verdict) or an `<error>` (it was cut off).
        let error = match self.status {
            Status::Passed | Status::Flaky => return Verdict::Success,
            Status::NotRun => {
                return Verdict::Skipped {
                    ty: Some(self.status.as_str()),
                    message: Some(&self.reason),
                };
            }
            Status::Failed | Status::Leaked => false,
            Status::Crashed
            | Status::TimedOut
            | Status::Aborted
            | Status::Deadline
            | Status::Interrupted => true,
        };
        Verdict::NonSuccess {
            error,
            ty: self.status.as_str(),
            message: Some(&self.reason),
            description: None,
        }
    }

    /// Earlier attempts: `flakyFailure` on a flaky case, `rerunFailure` on
    /// one that failed every time; none on one that passed the first time.
    fn reruns(&self) -> Vec<Rerun<'_>> {
        if self.status == Status::Passed {
            return Vec::new();
        }
        self.retried
            .iter()
            .map(|(ty, message)| Rerun {
                ty,
                message: Some(message),
            })
            .collect()
    }
}

/// Warnings, then leaked processes as `leaked: pid N: cmdline`, one per line.
fn system_err(o: &Outcome) -> Option<String> {
    let lines: Vec<String> = o
        .warnings
        .iter()
        .cloned()
        .chain(
            o.leaked
                .iter()
                .map(|p| format!("leaked: pid {}: {}", p.pid, p.cmdline)),
        )
        .chain(o.excerpt.clone())
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn xml(s: &str) -> String {
    xml_safe_text(s.as_bytes())
}

fn suite_tag(name: &str, n: Counts, span: Option<(SystemTime, Duration)>) -> BytesStart<'static> {
    let mut tag = BytesStart::new("testsuite");
    tag.extend_attributes([
        ("name", name),
        ("tests", n.tests.to_string().as_str()),
        ("skipped", n.skipped.to_string().as_str()),
        ("errors", n.errors.to_string().as_str()),
        ("failures", n.failures.to_string().as_str()),
    ]);
    if let Some((start, time)) = span {
        push_timestamp(&mut tag, start);
        push_time(&mut tag, time);
    }
    tag
}

fn write_case<W: Write>(w: &mut Writer<W>, c: &XmlCase<'_>) -> io::Result<()> {
    let mut tag = BytesStart::new("testcase");
    push_text(&mut tag, "name", c.name);
    push_text(&mut tag, "classname", c.classname);
    if let Some(t) = c.timestamp {
        push_timestamp(&mut tag, t);
    }
    if let Some(d) = c.time {
        push_time(&mut tag, d);
    }
    let rerun_tag = match c.verdict {
        Verdict::Success => Some("flakyFailure"),
        Verdict::NonSuccess { .. } => Some("rerunFailure"),
        Verdict::Skipped { .. } => None,
    }
    .filter(|_| !c.reruns.is_empty());
    if matches!(c.verdict, Verdict::Success)
        && rerun_tag.is_none()
        && c.out.is_none()
        && c.err.is_none()
        && c.properties.is_empty()
    {
        return w.write_event(Event::Empty(tag));
    }
    w.write_event(Event::Start(tag))?;
    write_properties(w, c.properties)?;
    match c.verdict {
        Verdict::Success => {}
        Verdict::NonSuccess {
            error,
            ty,
            message,
            description,
        } => {
            let name = if error { "error" } else { "failure" };
            write_status(w, name, message, Some(ty), description)?;
        }
        Verdict::Skipped { ty, message } => write_status(w, "skipped", message, ty, None)?,
    }
    if let Some(name) = rerun_tag {
        for r in &c.reruns {
            let mut tag = BytesStart::new(name);
            if let Some(m) = r.message {
                push_text(&mut tag, "message", m);
            }
            tag.push_attribute(("type", r.ty));
            w.write_event(Event::Start(tag))?;
            w.write_event(Event::End(BytesEnd::new(name)))?;
        }
    }
    for (name, text) in [("system-out", c.out), ("system-err", c.err)] {
        if let Some(text) = text {
            w.write_event(Event::Start(BytesStart::new(name)))?;
            w.write_event(Event::Text(BytesText::new(text)))?;
            w.write_event(Event::End(BytesEnd::new(name)))?;
        }
    }
    w.write_event(Event::End(BytesEnd::new("testcase")))
}

fn write_status<W: Write>(
    w: &mut Writer<W>,
    name: &str,
    message: Option<&str>,
    ty: Option<&str>,
    description: Option<&str>,
) -> io::Result<()> {
    let mut tag = BytesStart::new(name);
    if let Some(m) = message {
        push_text(&mut tag, "message", m);
    }
    if let Some(t) = ty {
        tag.push_attribute(("type", t));
    }
    match description {
        Some(text) => {
            w.write_event(Event::Start(tag))?;
            w.write_event(Event::Text(BytesText::new(text)))?;
            w.write_event(Event::End(BytesEnd::new(name)))
        }
        None => w.write_event(Event::Empty(tag)),
    }
}

/// An attribute holding text from a test: escaped as quick-xml escapes
/// (`&`, `<`, `>`, quotes), and its line breaks and tabs as character
/// references, which a reader keeps. Written raw, XML's attribute-value
/// normalization turns them into spaces: a multi-line failure message
/// would reach every JUnit consumer as one line.
fn push_text(tag: &mut BytesStart<'_>, key: &str, value: &str) {
    let escaped = quick_xml::escape::escape(value);
    let value = if escaped.contains(['\n', '\r', '\t']) {
        std::borrow::Cow::Owned(
            escaped
                .replace('\n', "&#10;")
                .replace('\r', "&#13;")
                .replace('\t', "&#9;"),
        )
    } else {
        escaped
    };
    // Raw bytes: already escaped above.
    tag.push_attribute(quick_xml::events::attributes::Attribute::from((
        key.as_bytes(),
        value.as_bytes(),
    )));
}

/// RFC 3339 in UTC, to the millisecond.
fn push_timestamp(tag: &mut BytesStart<'_>, t: SystemTime) {
    let t = DateTime::<Utc>::from(t).format("%Y-%m-%dT%H:%M:%S%.3f%:z");
    tag.push_attribute(("timestamp", t.to_string().as_str()));
}

/// Seconds, to the millisecond.
fn push_time(tag: &mut BytesStart<'_>, d: Duration) {
    tag.push_attribute(("time", format!("{:.3}", d.as_secs_f64()).as_str()));
}

/// The rendered suites of batches read into tests, one after the other: an
/// unlinked file in the report's directory (so `copy_file_range` can copy
/// it, and a killed warden leaves nothing behind). The file offset is
/// always at `len` between calls.
#[derive(Debug)]
struct Spool {
    file: File,
    /// Bytes of whole suites; a suite that failed to render is cut off.
    len: u64,
}

impl Spool {
    fn create(report: &Path) -> io::Result<Spool> {
        let path = hidden_sibling(report, "spool")?;
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        fs::remove_file(&path)?;
        Ok(Spool { file, len: 0 })
    }

    /// Renders one suite at the end, at the depth it has in the document.
    fn append(
        &mut self,
        render: impl FnOnce(&mut Writer<Muted<BufWriter<&File>>>) -> io::Result<Counts>,
    ) -> io::Result<Counts> {
        let sink = Muted {
            inner: BufWriter::with_capacity(256 * 1024, &self.file),
            muted: true,
        };
        let mut w = Writer::new_with_indent(sink, b' ', 4);
        let result = (|| {
            // Not written: it only puts the suite one level deep.
            w.write_event(Event::Start(BytesStart::new("testsuites")))?;
            w.get_mut().muted = false;
            let counts = render(&mut w)?;
            w.into_inner().inner.flush()?;
            Ok(counts)
        })();
        match result {
            Ok(counts) => {
                self.len = (&self.file).stream_position()?;
                Ok(counts)
            }
            Err(e) => {
                // Best effort: the error that matters is the one returned.
                let _ = self.file.set_len(self.len);
                let _ = (&self.file).seek(SeekFrom::Start(self.len));
                Err(e)
            }
        }
    }

    fn copy_to(&self, out: &mut impl Write) -> io::Result<()> {
        (&self.file).seek(SeekFrom::Start(0))?;
        let copied = io::copy(&mut (&self.file).take(self.len), out)?;
        if copied != self.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the JUnit spool file was cut short",
            ));
        }
        Ok(())
    }
}

/// quick-xml's writer indents by the depth of what it wrote itself: this
/// swallows what is written while `muted`, to start a suite at depth 1.
struct Muted<W> {
    inner: W,
    muted: bool,
}

impl<W: Write> Write for Muted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.muted {
            Ok(buf.len())
        } else {
            self.inner.write(buf)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ProcessInfo;
    use crate::report::test_support::{outcome, scenario, test};
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus};
    use quick_xml::events::Event as XmlEvent;

    #[test]
    fn attribute_text_keeps_line_breaks_and_tabs() {
        let text = "left: 3\n right: 4\r\n\ttab <&> \"q\" 'a'";
        let mut tag = BytesStart::new("failure");
        push_text(&mut tag, "message", text);
        let mut out = Vec::new();
        Writer::new(&mut out)
            .write_event(XmlEvent::Empty(tag))
            .unwrap();
        let xml = String::from_utf8(out).unwrap();
        assert!(!xml.contains('\n') && !xml.contains('\t'), "{xml}");
        let mut reader = quick_xml::Reader::from_str(&xml);
        let XmlEvent::Empty(e) = reader.read_event().unwrap() else {
            panic!("{xml}")
        };
        let attr = e.try_get_attribute("message").unwrap().unwrap();
        // What a reader that normalizes attribute values (as XML says)
        // still sees: the references survive normalization.
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .unwrap();
        assert_eq!(value, text);
    }

    /// Parses the whole document with quick-xml and checks every character is
    /// one XML 1.0 allows (quick-xml does not check that itself).
    fn assert_valid_xml(xml: &str) {
        let mut reader = quick_xml::Reader::from_str(xml);
        reader.config_mut().check_end_names = true;
        let mut depth = 0i32;
        loop {
            match reader.read_event() {
                Ok(XmlEvent::Eof) => break,
                Ok(XmlEvent::Start(_)) => depth += 1,
                Ok(XmlEvent::End(_)) => depth -= 1,
                Ok(XmlEvent::Text(t)) => {
                    t.decode().expect("text decodes");
                }
                Ok(_) => {}
                Err(e) => panic!("invalid XML at {}: {e}\n{xml}", reader.buffer_position()),
            }
        }
        assert_eq!(depth, 0, "unbalanced elements");
        for c in xml.chars() {
            assert!(super::super::is_xml_char(c), "forbidden char {c:?} in XML");
        }
    }

    fn read_report(path: &Path) -> (String, Report) {
        let xml = fs::read_to_string(path).unwrap();
        assert_valid_xml(&xml);
        let report = Report::deserialize_from_str(&xml).expect("quick-junit reads it back");
        (xml, report)
    }

    fn only_case(report: &Report) -> &TestCase {
        assert_eq!(report.test_suites.len(), 1);
        assert_eq!(report.test_suites[0].test_cases.len(), 1);
        &report.test_suites[0].test_cases[0]
    }

    #[test]
    fn hostile_log_gives_valid_xml() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("evil.log");
        let mut bytes = b"ok line\n</system-out><script>alert(1)</script>\n".to_vec();
        bytes.extend_from_slice(b"nul\x00here \xff\xfe bad utf8 \x1b[31mred\x1b[0m bell\x07\n");
        bytes.extend_from_slice(b"]]> <![CDATA[ x ]]> & &amp; \"quote\" 'apos'\n");
        bytes.extend_from_slice("\u{FFFE}\u{FFFF} end".as_bytes());
        fs::write(&log, &bytes).unwrap();

        let mut o = outcome("evil", Status::Failed, "exit <code> & \"1\"\u{1}");
        o.log = log;
        o.warnings = vec!["warn </system-err>\u{0}".into()];
        o.leaked = vec![ProcessInfo {
            pid: 42,
            cmdline: "sh -c '<x>&'".into(),
        }];
        let path = dir.path().join("junit.xml");
        let mut w = JunitWriter::new(path.clone());
        w.record(&o).unwrap();

        let (xml, report) = read_report(&path);
        assert!(!xml.contains("<script>"));
        let case = only_case(&report);
        let out = case.system_out.as_ref().unwrap().as_str();
        assert!(out.contains("</system-out><script>alert(1)</script>"));
        assert!(out.contains("nul\u{FFFD}here \u{FFFD}\u{FFFD} bad utf8 red bell\u{FFFD}"));
        assert!(out.contains("]]> <![CDATA[ x ]]> & &amp; \"quote\""));
        assert!(out.ends_with("\u{FFFD}\u{FFFD} end"));
        let err = case.system_err.as_ref().unwrap().as_str();
        assert_eq!(
            err,
            "warn </system-err>\u{FFFD}\nleaked: pid 42: sh -c '<x>&'"
        );
        match &case.status {
            TestCaseStatus::NonSuccess { message, .. } => assert_eq!(
                message.as_ref().unwrap().as_str(),
                "exit <code> & \"1\"\u{FFFD}"
            ),
            s => panic!("unexpected {s:?}"),
        }
    }

    /// What a batch used: properties on its testcase (not read into
    /// tests) or on its own suite (read into tests), only those measured;
    /// read back as a JUnit reader sees them.
    #[test]
    fn usage_as_properties() {
        use crate::usage::Usage;
        let props = |p: &[quick_junit::Property]| -> Vec<(String, String)> {
            p.iter()
                .map(|p| (p.name.to_string(), p.value.to_string()))
                .collect()
        };
        let pairs = |want: &[(&str, &str)]| -> Vec<(String, String)> {
            want.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        let mut w = JunitWriter::new(path.clone());
        let mut vm = outcome("vm", Status::Crashed, "killed by the OOM killer");
        vm.usage = Some(Usage {
            peak_memory: Some(4 << 30),
            cpu: Some(Duration::from_micros(3_400_900)),
            memory_stall: Some(Duration::from_millis(250)),
            oom_kills: 1,
            ..Usage::default()
        });
        let mut net = outcome("net", Status::Passed, "ok");
        net.tests = vec![test(&["t"], TestStatus::Passed, None, "")];
        net.usage = Some(Usage {
            partial: true,
            peak_memory: Some(1000),
            read_bytes: Some(0),
            ..Usage::default()
        });
        let plain = outcome("plain", Status::Passed, "ok");
        w.record_many([&vm, &net, &plain]).unwrap();
        let (xml, report) = read_report(&path);
        let batches = &report.test_suites[0];
        assert!(batches.properties.is_empty());
        assert_eq!(
            props(&batches.test_cases[0].properties),
            pairs(&[
                ("warden.peak-memory", "4294967296"),
                ("warden.cpu-ms", "3400"),
                ("warden.memory-stall-ms", "250"),
                ("warden.oom-kills", "1"),
            ])
        );
        assert!(batches.test_cases[1].properties.is_empty());
        assert!(xml.contains("<testcase name=\"plain\" classname=\"warden\" timestamp=\"2023-11-14T22:13:20.000+00:00\" time=\"1.234\"/>"), "{xml}");
        let suite = &report.test_suites[1];
        assert_eq!(suite.name.as_str(), "net");
        assert_eq!(
            props(&suite.properties),
            pairs(&[
                ("warden.peak-memory", "1000"),
                ("warden.read-bytes", "0"),
                ("warden.usage-partial", "true"),
            ])
        );
        assert!(suite.test_cases[0].properties.is_empty());
    }

    #[test]
    fn status_mapping() {
        let cases = [
            (Status::Passed, None),
            (Status::Failed, Some((NonSuccessKind::Failure, "failed"))),
            (Status::Crashed, Some((NonSuccessKind::Error, "crashed"))),
            (Status::TimedOut, Some((NonSuccessKind::Error, "timed-out"))),
            (Status::Leaked, Some((NonSuccessKind::Failure, "leaked"))),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (status, expected) in cases {
            let path = dir.path().join(format!("{status}.xml"));
            let mut o = outcome("b", status, "why");
            o.kind = Some("ut".into());
            JunitWriter::new(path.clone()).record(&o).unwrap();
            let (xml, report) = read_report(&path);
            assert_eq!(report.name.as_ref().unwrap().as_str(), "warden");
            assert_eq!(report.test_suites[0].name.as_str(), "warden");
            let case = only_case(&report);
            assert_eq!(case.name.as_str(), "b");
            assert_eq!(case.classname.as_ref().unwrap().as_str(), "ut");
            assert_eq!(case.time, Some(Duration::from_millis(1234)));
            assert!(
                xml.contains("timestamp=\"2023-11-14T22:13:20.000+00:00\""),
                "{xml}"
            );
            match (&case.status, expected) {
                (TestCaseStatus::Success { .. }, None) => {}
                (
                    TestCaseStatus::NonSuccess {
                        kind, message, ty, ..
                    },
                    Some((k, t)),
                ) => {
                    assert_eq!(*kind, k);
                    assert_eq!(ty.as_ref().unwrap().as_str(), t);
                    assert_eq!(message.as_ref().unwrap().as_str(), "why");
                }
                (s, e) => panic!("{status}: got {s:?}, expected {e:?}"),
            }
        }
    }

    #[test]
    fn classname_defaults_to_warden_and_no_system_err_without_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c/junit.xml");
        JunitWriter::new(path.clone())
            .record(&outcome("x", Status::Passed, "ok"))
            .unwrap();
        let (_, report) = read_report(&path);
        let case = only_case(&report);
        assert_eq!(case.classname.as_ref().unwrap().as_str(), "warden");
        assert!(case.system_err.is_none());
        assert!(case.system_out.is_none(), "missing log: no system-out");
    }

    #[test]
    fn rewrite_is_atomic_and_complete_after_each_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        let mut w = JunitWriter::new(path.clone());
        w.write().unwrap();
        let (_, report) = read_report(&path);
        assert_eq!(report.test_suites[0].test_cases.len(), 0);

        for i in 0..5 {
            let before = fs::metadata(&path).ok().map(|m| m.len());
            let status = if i % 2 == 0 {
                Status::Passed
            } else {
                Status::Failed
            };
            w.record(&outcome(&format!("b{i}"), status, "r")).unwrap();
            let (_, report) = read_report(&path);
            let suite = &report.test_suites[0];
            assert_eq!(suite.test_cases.len(), i + 1);
            assert_eq!(suite.failures, (0..=i).filter(|k| k % 2 == 1).count());
            assert_ne!(before, Some(fs::metadata(&path).unwrap().len()));
            // Only the report itself is left in the directory: no temp files.
            let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(names.len(), 1);
        }
        w.record_many(&[
            outcome("m1", Status::Crashed, "SIGSEGV"),
            outcome("m2", Status::TimedOut, "timed out after 5s"),
        ])
        .unwrap();
        let (_, report) = read_report(&path);
        assert_eq!(report.test_suites[0].test_cases.len(), 7);
        assert_eq!(report.test_suites[0].errors, 2);
    }

    #[test]
    fn unwritable_path_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        // A path under a regular file cannot be created.
        let mut w = JunitWriter::new(file.join("junit.xml"));
        assert!(w.record(&outcome("x", Status::Passed, "ok")).is_err());
    }

    /// 1000 batches with 200-line logs, recorded as one burst; prints timings.
    /// Run with `cargo test --lib junit_thousand -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing measurement"]
    fn junit_thousand_batches_timing() {
        let dir = tempfile::tempdir().unwrap();
        let line = format!("{}\n", "t".repeat(79));
        let outcomes: Vec<Outcome> = (0..1000)
            .map(|i| {
                let log = dir.path().join(format!("b{i}.log"));
                fs::write(&log, line.repeat(300)).unwrap();
                let mut o = outcome(&format!("b{i}"), Status::Failed, "exit code 1");
                o.log = log;
                o
            })
            .collect();
        let path = dir.path().join("junit.xml");
        let mut w = JunitWriter::new(path.clone());
        let t = std::time::Instant::now();
        w.record_many(&outcomes).unwrap();
        let first = t.elapsed();
        let t = std::time::Instant::now();
        w.write().unwrap();
        let rewrite = t.elapsed();
        let size = fs::metadata(&path).unwrap().len();
        eprintln!(
            "1000 cases: record_many (read+sanitize logs, write) {first:?}; rewrite {rewrite:?}; {size} bytes"
        );
        let (_, report) = read_report(&path);
        assert_eq!(report.test_suites[0].test_cases.len(), 1000);
    }

    #[test]
    fn thousand_batches_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let outcomes: Vec<Outcome> = (0..1000)
            .map(|i| outcome(&format!("b{i}"), Status::Passed, "ok"))
            .collect();
        let path = dir.path().join("junit.xml");
        let mut w = JunitWriter::new(path.clone());
        w.record_many(&outcomes).unwrap();
        let (_, report) = read_report(&path);
        assert_eq!(report.test_suites[0].test_cases.len(), 1000);
        assert_eq!(report.tests, 1000);
    }

    /// The spool is copied, not consumed: a rewrite gives the same file;
    /// and it is unlinked: only the report is left in the directory. (What
    /// the file says is in the golden tests, `report::golden`.)
    #[test]
    fn rewrite_gives_the_same_file_and_leaves_no_spool() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        let mut w = JunitWriter::new(path.clone());
        let outcomes = scenario();
        w.record_many(&outcomes[..3]).unwrap();
        w.record_many(&outcomes[3..]).unwrap();
        let (xml, report) = read_report(&path);
        assert_eq!(report.tests, 24);
        w.write().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), xml);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    /// A batch of many tests: counts in the suite and in the totals, one
    /// testcase each, and a rewrite after each further batch.
    #[test]
    fn many_tests_in_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        let mut w = JunitWriter::new(path.clone());
        let mut big = outcome("big", Status::Failed, "1 test failed");
        big.tests = (0..10_000)
            .map(|i| {
                let status = if i == 5000 {
                    TestStatus::Failed
                } else {
                    TestStatus::Passed
                };
                test(&[&format!("case_{i}")], status, None, "")
            })
            .collect();
        w.record(&big).unwrap();
        w.record(&outcome("small", Status::Passed, "ok")).unwrap();
        let (_, report) = read_report(&path);
        assert_eq!((report.tests, report.failures), (10_001, 1));
        let suite = &report.test_suites[1];
        assert_eq!(suite.name.as_str(), "big");
        assert_eq!((suite.tests, suite.failures), (10_000, 1));
        assert_eq!(suite.test_cases[5000].name.as_str(), "case_5000");
        assert_eq!(report.test_suites[0].test_cases.len(), 1);
    }
}
