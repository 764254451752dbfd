//! JUnit XML files a batch wrote (Surefire, gotestsum, pytest, nextest, …),
//! read after the batch ended. Not a streaming [`Parser`](super::Parser):
//! the files are found by glob under the batch's directory and read with a
//! streaming XML reader, so memory stays bounded by the largest single text
//! node, not the file (they can be hundreds of MB).
//!
//! What a file looks like, and what is made of it:
//!
//! ```xml
//! <testsuites>                                   <!-- optional -->
//!   <testsuite name="pytest" timestamp="…" time="0.41" file="…">
//!     <testcase classname="tests.test_api" name="test_login" time="0.1"/>
//!     <testcase classname="…" name="…">
//!       <failure message="…" type="…">text</failure>  <!-- failed -->
//!       <error message="…" type="…">text</error>      <!-- Error(type) -->
//!       <skipped message="…"/>                         <!-- skipped -->
//!       <flakyFailure message="…"/>  <!-- failed, then passed: flaky -->
//!       <rerunFailure message="…"/>  <!-- beside a failure: failed again -->
//!       <system-out>…</system-out><system-err>…</system-err>
//!     </testcase>
//!   </testsuite>
//! </testsuites>
//! ```
//!
//! - `<error>` is [`TestStatus::Error`] with its `type` (`error` without
//!   one); `<flakyFailure>`/`<flakyError>` make a passing test
//!   [`TestStatus::Flaky`] with the failed attempt's message;
//!   `<rerunFailure>`/`<rerunError>` beside a failure make it `failed N
//!   times: <the failure's message>`.
//! - A test listed again in the same `<testsuite>` is a rerun, and a
//!   same-named test in another suite or file is another test: see
//!   [`repeat`](super::repeat), the one rule for both readers.
//! - Names: [`test_path`].
//! - Only files written by the batch count: a file last modified before the
//!   batch started (less [`MTIME_SLACK`]) is left from an earlier run and
//!   not read; a batch that wrote no file fails with a reason saying so.
//! - `time` attributes: seconds, `1,234.5` allowed; beyond [`MAX_TIME`],
//!   negative, NaN or infinite is clamped with a warning here, and is an
//!   error for `warden import junit`.
//!
//! The reader itself ([`read_xml`] into a [`Visitor`]) also serves `warden
//! import junit` (`history::import`), which needs the suites around the
//! cases and none of their output.

use std::borrow::Cow;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::clip::ClipRuns;
use super::repeat::{self, Seen};
use super::{MAX_TEST_OUTPUT, OutputTail, TestResult};
use crate::status::TestStatus;
use crate::text::{clip_message, tail};

/// Deepest directory level walked looking for files.
const MAX_DEPTH: usize = 64;

/// The longest `time` taken as a test's or suite's duration: a year.
/// Longer (`time="1e19"`) is a broken writer, and would overflow the
/// history's milliseconds.
pub const MAX_TIME: Duration = super::MAX_REPORTED_TIME;

/// How much older than the batch's start a file's modification time may
/// be and still count as written by the batch: file times come from the
/// kernel's coarse clock (a tick behind), some filesystems keep seconds.
pub const MTIME_SLACK: Duration = Duration::from_secs(2);

/// The history and report name of a JUnit test, as a path: `[classname,
/// name]`, without the classname when it is empty or repeats the batch's
/// name (gotestsum's and Surefire's suites are named like their
/// classnames; `cart/cart/TestTotal` says nothing more than `cart/TestTotal`).
///
/// This is the one naming rule: `warden run` records a test of a batch
/// `format = "junit"` as `<batch>/` + this path, and `warden import junit`
/// records `<batch>/` + this path too, where the batch is `--batch NAME`,
/// else the test's `<testsuite name>` (the file's stem when it has none).
/// So an import with `--batch` of the batch's name gives the names `warden
/// run` gives.
pub fn test_path(batch: &str, classname: &str, name: &str) -> Vec<String> {
    let mut path = Vec::with_capacity(2);
    push_test_path(&mut path, batch, classname.to_owned(), name.to_owned());
    path
}

/// [`test_path`] appended to `path`, from owned parts (no copies: an
/// import names a million cases this way).
pub fn push_test_path(path: &mut Vec<String>, batch: &str, classname: String, name: String) {
    if !(classname.is_empty() || classname == batch) {
        path.push(classname);
    }
    path.push(name);
}

/// What a batch's JUnit files said.
#[derive(Debug, Default)]
pub struct JunitFiles {
    /// Every test, once ([`repeat::assemble`]).
    pub tests: Vec<TestResult>,
    /// What makes the batch fail: a bad pattern, no file written by this
    /// batch, a file that could not be read or is malformed (results
    /// before the error are kept).
    pub problems: Vec<String>,
    /// What is worth saying but fails nothing: a `time` out of range.
    pub warnings: Vec<String>,
}

/// Reads the JUnit files of the batch `batch` under `dir` matching any of
/// `patterns` (globs relative to `dir`; `**` crosses directories, `*` does
/// not), in file-name order. Files last modified before `started` (less
/// [`MTIME_SLACK`]) are left from an earlier run and not read.
pub fn read_junit_files(
    dir: &Path,
    patterns: &[String],
    batch: &str,
    started: SystemTime,
) -> JunitFiles {
    let mut out = JunitFiles::default();
    let Some(set) = glob_set(dir, patterns, &mut out.problems) else {
        return out;
    };
    let mut files = Vec::new();
    if let Err(e) = walk(dir, Path::new(""), 0, &set, &mut files) {
        out.problems
            .push(format!("cannot read {}: {e}", dir.display()));
    }
    files.sort();
    let since = started.checked_sub(MTIME_SLACK).unwrap_or(started);
    let (fresh, stale): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|(_, modified)| modified.is_none_or(|m| m >= since));
    if fresh.is_empty() {
        let mut problem = format!(
            "no JUnit file matching {} was written by this run",
            patterns.join(", ")
        );
        if !stale.is_empty() {
            let shown: Vec<String> = stale
                .iter()
                .take(3)
                .map(|(p, _)| p.display().to_string())
                .collect();
            let more = match stale.len() - shown.len() {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            problem.push_str(&format!(
                " (found {} older file{}: {}{more}, written before the batch started)",
                stale.len(),
                if stale.len() == 1 { "" } else { "s" },
                shown.join(", ")
            ));
        }
        out.problems.push(problem);
    }
    let mut reader = BatchReader::new(batch);
    for (rel, _) in fresh {
        reader.file = rel.display().to_string();
        read_file(&dir.join(&rel), &mut reader);
    }
    out.tests = repeat::assemble(reader.seen);
    out.problems.extend(reader.problems);
    out.warnings.extend(reader.warnings);
    out
}

/// Reads one JUnit document held in memory, shown as the file `file`, as
/// [`read_junit_files`] reads each file of the batch `batch`: for the fuzz
/// targets (`fuzz/`) and tests, which have bytes rather than a directory.
pub fn read_junit_bytes(bytes: &[u8], file: &str, batch: &str) -> JunitFiles {
    let mut reader = BatchReader::new(batch);
    reader.file = file.to_owned();
    read_source(bytes, &mut reader);
    JunitFiles {
        tests: repeat::assemble(reader.seen),
        problems: reader.problems,
        warnings: reader.warnings,
    }
}

fn glob_set(dir: &Path, patterns: &[String], problems: &mut Vec<String>) -> Option<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        let p = p.strip_prefix("./").unwrap_or(p);
        // An absolute pattern under `dir` works too.
        let p = Path::new(p)
            .strip_prefix(dir)
            .ok()
            .and_then(Path::to_str)
            .unwrap_or(p);
        match GlobBuilder::new(p).literal_separator(true).build() {
            Ok(g) => {
                builder.add(g);
            }
            Err(e) => problems.push(format!("bad JUnit file pattern {p:?}: {e}")),
        }
    }
    match builder.build() {
        Ok(set) => Some(set),
        Err(e) => {
            problems.push(format!("bad JUnit file patterns: {e}"));
            None
        }
    }
}

/// Collects the regular files under `dir` (not following symlinks) whose
/// path relative to the root matches `set`, with their modification times.
fn walk(
    dir: &Path,
    rel: &Path,
    depth: usize,
    set: &GlobSet,
    files: &mut Vec<(PathBuf, Option<SystemTime>)>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let rel = rel.join(entry.file_name());
        if kind.is_dir() {
            if depth < MAX_DEPTH {
                // An unreadable subdirectory just has no files for us.
                let _ = walk(&entry.path(), &rel, depth + 1, set, files);
            }
        } else if kind.is_file() && set.is_match(&rel) {
            let modified = entry.metadata().and_then(|m| m.modified()).ok();
            files.push((rel, modified));
        }
    }
    Ok(())
}

fn read_file(path: &Path, reader: &mut BatchReader<'_>) {
    // A batch may leave a FIFO or a link to a device where its report should be.
    let file = match crate::input::open_regular(path, crate::input::MAX_XML_BYTES) {
        Ok((f, _)) => crate::input::bounded(f, crate::input::MAX_XML_BYTES),
        Err(e) => {
            reader
                .problems
                .push(format!("cannot read JUnit file {}: {e}", reader.file));
            return;
        }
    };
    read_source(BufReader::new(file), reader);
}

/// Reads one document into `reader` (a file of the batch: cases outside
/// any suite are one group).
fn read_source(source: impl BufRead, reader: &mut BatchReader<'_>) {
    reader.file_group = None;
    match read_xml(source, Keep::Output, Times::Clamp, reader) {
        Ok(()) => {}
        Err(e) => reader
            .problems
            .push(format!("malformed JUnit file {}: {e}", reader.file)),
    }
}

/// The [`Visitor`] of a batch's files: each case as a [`Seen`] of its
/// `<testsuite>` element, named by [`test_path`].
struct BatchReader<'b> {
    batch: &'b str,
    /// The file being read, as shown in problems.
    file: String,
    /// Groups handed out so far.
    groups: usize,
    /// The group of cases outside any suite in this file.
    file_group: Option<usize>,
    /// Open suites: their group and label.
    open: Vec<(usize, Option<Arc<str>>)>,
    seen: Vec<Seen>,
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl<'b> BatchReader<'b> {
    fn new(batch: &'b str) -> BatchReader<'b> {
        BatchReader {
            batch,
            file: String::new(),
            groups: 0,
            file_group: None,
            open: Vec::new(),
            seen: Vec::new(),
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn next_group(&mut self) -> usize {
        self.groups += 1;
        self.groups
    }
}

impl Visitor for BatchReader<'_> {
    fn suite_start(&mut self, suite: Suite) {
        if suite.report {
            return;
        }
        let group = self.next_group();
        self.open.push((group, suite.label().map(Arc::from)));
    }

    fn suite_end(&mut self, report: bool) {
        if !report {
            self.open.pop();
        }
    }

    fn case(&mut self, case: Case) {
        let (group, label) = match self.open.last() {
            Some((g, l)) => (
                *g,
                case.file.as_deref().map(Arc::from).or_else(|| l.clone()),
            ),
            None => {
                let g = match self.file_group {
                    Some(g) => g,
                    None => {
                        let g = self.next_group();
                        self.file_group = Some(g);
                        g
                    }
                };
                (g, case.file.as_deref().map(Arc::from))
            }
        };
        let mut case = case;
        let mut path = Vec::with_capacity(2);
        push_test_path(
            &mut path,
            self.batch,
            std::mem::take(&mut case.classname),
            std::mem::take(&mut case.name),
        );
        let result = case.into_result_at(path);
        self.seen.push(Seen {
            result,
            group,
            label,
        });
    }

    fn time_out_of_range(&mut self, position: u64, value: &str, taken: Option<Duration>) {
        let taken = match taken {
            Some(d) => format!("taken as {} seconds", d.as_secs()),
            None => "ignored".to_owned(),
        };
        self.warnings.push(format!(
            "JUnit file {} (at byte {position}): time=\"{}\" is out of range; {taken}",
            self.file,
            clip_message(value)
        ));
    }
}

/// What a reader keeps of the text inside a testcase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// What a report shows of each test: its output and its failure, skip
    /// and earlier-attempt texts, the last [`MAX_TEST_OUTPUT`] bytes of each.
    Output,
    /// Only the start of failure and skip texts, enough for a one-line
    /// message; output is passed over (an import into the history keeps no
    /// output, and files of hundreds of MB are mostly output).
    Messages,
}

/// How much of a failure or skip text [`Keep::Messages`] keeps.
const MESSAGE_HEAD: usize = 2048;

/// Text kept from one element: its last `MAX_TEST_OUTPUT` bytes, or with
/// [`Keep::Messages`] its first [`MESSAGE_HEAD`] bytes. Either way its
/// first line is known ([`Text::first_line`]), so both readers derive the
/// same message from it.
#[derive(Debug, Default)]
pub struct Text {
    s: String,
    dropped: bool,
    /// The start, with [`Keep::Output`] (with [`Keep::Messages`], `s` is it).
    head: String,
}

/// Appends `text` to `head` up to [`MESSAGE_HEAD`] bytes, leading blank
/// lines skipped (they would otherwise fill it). Whether any was cut.
fn push_head(head: &mut String, text: &str) -> bool {
    let text = if head.is_empty() {
        text.trim_start()
    } else {
        text
    };
    let kept = crate::text::head(text, MESSAGE_HEAD.saturating_sub(head.len()));
    head.push_str(kept);
    kept.len() < text.len()
}

impl Text {
    fn push(&mut self, text: &str, keep: Keep) {
        match keep {
            Keep::Output => {
                push_head(&mut self.head, text);
                self.s.push_str(text);
                if self.s.len() > 2 * MAX_TEST_OUTPUT {
                    let cut = self.s.len() - tail(&self.s, MAX_TEST_OUTPUT).len();
                    self.s.drain(..cut);
                    self.dropped = true;
                }
            }
            Keep::Messages => {
                self.dropped |= push_head(&mut self.s, text);
            }
        }
    }

    /// Its first non-blank line, trimmed and clipped to [`MAX_MESSAGE`](crate::text::MAX_MESSAGE).
    pub fn first_line(&self) -> Option<String> {
        let head = if self.head.is_empty() {
            &self.s
        } else {
            &self.head
        };
        let line = head.lines().map(str::trim).find(|l| !l.is_empty())?;
        Some(clip_message(line))
    }

    /// The text kept.
    pub fn as_str(&self) -> &str {
        &self.s
    }

    fn push_to(&self, tail: &mut OutputTail) {
        if self.dropped {
            tail.push_line(b"[warden: earlier text dropped]");
        }
        let s = self.s.strip_suffix('\n').unwrap_or(&self.s);
        if s.trim().is_empty() {
            return;
        }
        for line in s.split('\n') {
            tail.push_line(line.strip_suffix('\r').unwrap_or(line).as_bytes());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    Failure,
    Skipped,
    Flaky,
    SystemOut,
    SystemErr,
}

/// One `<testcase>` as written, for a [`Visitor`].
#[derive(Debug, Default)]
pub struct Case {
    pub classname: String,
    pub name: String,
    /// Its `file` attribute (pytest's xunit1, PHPUnit).
    pub file: Option<String>,
    pub duration: Option<Duration>,
    /// It has a `<failure>` or an `<error>`.
    pub failed: bool,
    /// The first of them was an `<error>`: it did not reach a verdict.
    pub error: bool,
    /// The first failure's or error's `message` attribute, when not empty.
    pub message: Option<String>,
    /// The first failure's or error's `type` attribute.
    pub failure_type: Option<String>,
    /// `<skipped>`, with its `message` attribute when not empty.
    pub skipped: Option<Option<String>>,
    /// `<flakyFailure>`/`<flakyError>` seen: attempts that failed before
    /// the one that passed (Surefire, nextest).
    pub flaky_attempts: usize,
    /// `<rerunFailure>`/`<rerunError>` seen: attempts that failed before
    /// the final failure.
    pub rerun_attempts: usize,
    /// The first flaky or rerun element's `message` (else `type`) attribute.
    pub rerun_message: Option<String>,
    /// The failure's or error's text (with [`Keep::Messages`], its start).
    pub failure: Text,
    /// The skip text (with [`Keep::Messages`], its start).
    pub skip_text: Text,
    flaky: Text,
    out: Text,
    err: Text,
}

impl Case {
    fn text(&mut self, capture: Capture) -> &mut Text {
        match capture {
            Capture::Failure => &mut self.failure,
            Capture::Skipped => &mut self.skip_text,
            Capture::Flaky => &mut self.flaky,
            Capture::SystemOut => &mut self.out,
            Capture::SystemErr => &mut self.err,
        }
    }

    /// The test's result, path `[classname, name]` (without an empty
    /// classname). Read with [`Keep::Output`] it has the test's output;
    /// with [`Keep::Messages`], only the start of its failure text.
    ///
    /// A failure or error beats a skip, which beats earlier failed
    /// attempts (`<flakyFailure>`: flaky).
    pub fn into_result(mut self) -> TestResult {
        let mut path = Vec::with_capacity(2);
        let classname = std::mem::take(&mut self.classname);
        if !classname.is_empty() {
            path.push(classname);
        }
        path.push(std::mem::take(&mut self.name));
        self.into_result_at(path)
    }

    /// [`into_result`](Self::into_result) with `path` as its path (its
    /// classname and name are not looked at): a reader that names tests
    /// its own way moves them out first rather than copying them.
    pub fn into_result_at(self, path: Vec<String>) -> TestResult {
        let failures = 1 + self.rerun_attempts + self.flaky_attempts;
        let (status, message) = if self.failed {
            let status = if self.error {
                let ty = self.failure_type.as_deref().map(str::trim);
                TestStatus::Error(clip_message(
                    ty.filter(|t| !t.is_empty()).unwrap_or("error"),
                ))
            } else {
                TestStatus::Failed
            };
            let message = self
                .message
                .clone()
                .or_else(|| self.failure.first_line())
                .or_else(|| self.failure_type.clone().filter(|t| !t.trim().is_empty()));
            let message = match message {
                Some(m) if failures > 1 => Some(format!("failed {failures} times: {m}")),
                Some(m) => Some(m),
                None if failures > 1 => Some(format!("failed {failures} times")),
                None => None,
            };
            (status, message)
        } else if let Some(msg) = &self.skipped {
            let msg = msg.as_deref().map(clip_message).or_else(|| {
                let t = self.skip_text.s.trim();
                (!t.is_empty()).then(|| clip_message(t))
            });
            (TestStatus::Skipped(msg), None)
        } else if failures > 1 {
            (TestStatus::Flaky, self.rerun_message.clone())
        } else {
            (TestStatus::Passed, None)
        };
        // The failure text last: it is what matters if the tail is cut.
        let mut tail = OutputTail::default();
        self.out.push_to(&mut tail);
        self.err.push_to(&mut tail);
        self.flaky.push_to(&mut tail);
        self.failure.push_to(&mut tail);
        TestResult {
            path,
            status,
            duration: self.duration,
            output: tail.text(),
            message: message.map(|m| clip_message(&m)),
        }
    }
}

/// A `<testsuites>` or `<testsuite>` element, as opened.
#[derive(Debug, Default)]
pub struct Suite {
    /// `<testsuites>`, the report around the suites.
    pub report: bool,
    pub name: Option<String>,
    /// Its `file` attribute (PHPUnit, jest-junit with `suiteNameTemplate`).
    pub file: Option<String>,
    pub timestamp: Option<String>,
    pub time: Option<Duration>,
}

impl Suite {
    /// What tells its tests apart from namesakes in other suites: its
    /// `file`, else its name.
    pub fn label(&self) -> Option<String> {
        self.file
            .clone()
            .or_else(|| self.name.clone())
            .filter(|l| !l.is_empty())
    }
}

/// What a JUnit document is read into, element by element: suites open
/// and close around the cases, as nested in the file.
pub trait Visitor {
    fn suite_start(&mut self, _suite: Suite) {}
    /// The innermost open suite (`report`: the `<testsuites>`) closed.
    fn suite_end(&mut self, _report: bool) {}
    fn case(&mut self, case: Case);
    /// With [`Times::Clamp`]: a `time` attribute at byte `position` was
    /// out of range, and was `taken` as this (`None`: as no time at all).
    fn time_out_of_range(&mut self, _position: u64, _value: &str, _taken: Option<Duration>) {}
}

/// What to do with a `time` attribute that is not a duration of 0 to
/// [`MAX_TIME`] (`1e19`, `-1`, `NaN`, `inf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// Clamp it (negative to zero, too long to [`MAX_TIME`], NaN to no
    /// time) and tell the visitor: a batch's results still count.
    Clamp,
    /// Stop with [`XmlError::BadTime`]: an import records nothing doubtful.
    Reject,
}

/// Why a file is not a JUnit document. Cases before the problem were
/// already handed to the [`Visitor`].
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("{error} (at byte {position})")]
    Syntax {
        /// Where the reader was when it failed (a byte offset).
        position: u64,
        error: quick_xml::Error,
    },
    #[error("it ends inside an element (truncated?)")]
    Truncated,
    #[error("no <testsuite> or <testsuites> element")]
    NotJunit,
    #[error("time=\"{value}\" is not a duration of 0 to {} seconds (at byte {position})", MAX_TIME.as_secs())]
    BadTime {
        /// Where the element with the attribute starts (a byte offset).
        position: u64,
        value: String,
    },
}

/// Reads one JUnit document into `visitor`, streaming: memory is bounded
/// by the largest single text node, not the file.
pub fn read_xml<R: BufRead>(
    source: R,
    keep: Keep,
    times: Times,
    visitor: &mut impl Visitor,
) -> Result<(), XmlError> {
    // Every text node and tag clipped (memory bounded whatever the file):
    // positions are mapped back to the file's for messages.
    let mut reader = Reader::from_reader(BufReader::new(ClipRuns::new(source)));
    let original =
        |r: &Reader<BufReader<ClipRuns<R>>>, pos: u64| r.get_ref().get_ref().original(pos);
    let mut walk = Walk {
        keep,
        times,
        visitor,
        depth: 0,
        saw_suite: false,
        case: None,
        capture: None,
        at: 0,
        bad: None,
    };
    let mut buf = Vec::new();
    loop {
        if let Some(bad) = walk.bad.take() {
            return Err(bad);
        }
        buf.clear();
        walk.at = original(&reader, reader.buffer_position());
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|error| XmlError::Syntax {
                position: original(&reader, reader.error_position()),
                error,
            })?;
        match event {
            Event::Eof => break,
            Event::Start(e) => {
                walk.depth += 1;
                if walk.capture.is_none() {
                    walk.capture = walk.start(&e, false);
                }
            }
            Event::Empty(e) if walk.capture.is_none() => {
                walk.start(&e, true);
            }
            Event::End(e) => walk.end(e.local_name().as_ref()),
            Event::Text(t) if walk.wants_text() => walk.append(&String::from_utf8_lossy(&t)),
            Event::CData(t) if walk.wants_text() => walk.append(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) if walk.wants_text() => {
                let text = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => {
                        let name = String::from_utf8_lossy(&r);
                        predefined(&name).map_or_else(|| format!("&{name};"), str::to_owned)
                    }
                };
                walk.append(&text);
            }
            _ => {}
        }
    }
    if walk.case.is_some() || walk.depth > 0 {
        Err(XmlError::Truncated)
    } else if !walk.saw_suite {
        Err(XmlError::NotJunit)
    } else {
        Ok(())
    }
}

/// Where [`read_xml`] is in the document.
struct Walk<'v, V> {
    keep: Keep,
    times: Times,
    visitor: &'v mut V,
    depth: usize,
    saw_suite: bool,
    case: Option<Case>,
    /// What the text goes to, and the depth of the element capturing it.
    capture: Option<(Capture, usize)>,
    /// Where the event being handled starts (a byte offset).
    at: u64,
    /// A `time` rejected ([`Times::Reject`]): reading stops with it.
    bad: Option<XmlError>,
}

impl<V: Visitor> Walk<'_, V> {
    /// A `time` attribute's duration, checked ([`Times`]).
    fn time(&mut self, read: Option<ReadTime>) -> Option<Duration> {
        match read? {
            Ok(d) => d,
            Err((clamped, value)) => match self.times {
                Times::Clamp => {
                    self.visitor.time_out_of_range(self.at, &value, clamped);
                    clamped
                }
                Times::Reject => {
                    if self.bad.is_none() {
                        self.bad = Some(XmlError::BadTime {
                            position: self.at,
                            value: clip_message(&value),
                        });
                    }
                    None
                }
            },
        }
    }

    /// An element started (`empty`: `<x/>`, nothing to capture). Returns
    /// what its text should go to.
    fn start(&mut self, e: &BytesStart<'_>, empty: bool) -> Option<(Capture, usize)> {
        let name = e.local_name();
        let capture = match name.as_ref() {
            kind @ (b"testsuite" | b"testsuites") => {
                self.saw_suite = true;
                let mut suite = Suite {
                    report: kind == b"testsuites",
                    ..Suite::default()
                };
                let mut time = None;
                for_each_attribute(e, |key, value| match key {
                    b"name" => suite.name = Some(value.into_owned()),
                    b"file" => suite.file = Some(value.into_owned()).filter(|f| !f.is_empty()),
                    b"timestamp" => suite.timestamp = Some(value.into_owned()),
                    b"time" => time = Some(read_time(&value)),
                    _ => {}
                });
                suite.time = self.time(time);
                let report = suite.report;
                self.visitor.suite_start(suite);
                if empty {
                    self.visitor.suite_end(report);
                }
                return None;
            }
            b"testcase" => {
                // A testcase inside a testcase is invalid; end the outer one.
                if let Some(c) = self.case.take() {
                    self.visitor.case(c);
                }
                self.saw_suite = true;
                let mut c = Case::default();
                let mut time = None;
                for_each_attribute(e, |key, value| match key {
                    b"classname" => c.classname = value.into_owned(),
                    b"name" => c.name = value.into_owned(),
                    b"file" => c.file = Some(value.into_owned()).filter(|f| !f.is_empty()),
                    b"time" => time = Some(read_time(&value)),
                    _ => {}
                });
                c.duration = self.time(time);
                if empty {
                    self.visitor.case(c);
                } else {
                    self.case = Some(c);
                }
                return None;
            }
            _ => {
                let c = self.case.as_mut()?;
                let attr = |want: &[u8]| {
                    let mut found = None;
                    for_each_attribute(e, |key, value| {
                        if key == want && found.is_none() {
                            found = Some(value.into_owned());
                        }
                    });
                    found
                };
                match name.as_ref() {
                    kind @ (b"failure" | b"error") => {
                        if !c.failed {
                            c.failed = true;
                            c.error = kind == b"error";
                            c.message = attr(b"message").filter(|m| !m.is_empty());
                            c.failure_type = attr(b"type");
                        }
                        Capture::Failure
                    }
                    b"skipped" => {
                        c.skipped = Some(attr(b"message").filter(|m| !m.is_empty()));
                        Capture::Skipped
                    }
                    kind @ (b"flakyFailure" | b"flakyError" | b"rerunFailure" | b"rerunError") => {
                        if kind.starts_with(b"flaky") {
                            c.flaky_attempts += 1;
                        } else {
                            c.rerun_attempts += 1;
                        }
                        let msg = attr(b"message");
                        if c.rerun_message.is_none() {
                            c.rerun_message = msg
                                .clone()
                                .filter(|m| !m.trim().is_empty())
                                .or_else(|| attr(b"type"));
                        }
                        if self.keep == Keep::Output {
                            let kind = String::from_utf8_lossy(kind);
                            let msg = msg.unwrap_or_default();
                            c.flaky.push(
                                &format!("[warden: {kind}: {}]\n", clip_message(msg.trim())),
                                Keep::Output,
                            );
                        }
                        Capture::Flaky
                    }
                    b"system-out" => Capture::SystemOut,
                    b"system-err" => Capture::SystemErr,
                    _ => return None,
                }
            }
        };
        (!empty).then_some((capture, self.depth))
    }

    fn end(&mut self, name: &[u8]) {
        if let Some((_, d)) = self.capture {
            if d == self.depth {
                self.capture = None;
            }
        } else {
            match name {
                b"testcase" => {
                    if let Some(c) = self.case.take() {
                        self.visitor.case(c);
                    }
                }
                b"testsuite" => self.visitor.suite_end(false),
                b"testsuites" => self.visitor.suite_end(true),
                _ => {}
            }
        }
        self.depth = self.depth.saturating_sub(1);
    }

    /// Whether text here is kept: inside a case's captured element, and
    /// with [`Keep::Messages`] only failure and skip texts.
    fn wants_text(&self) -> bool {
        match (&self.case, self.capture) {
            (Some(_), Some((what, _))) => {
                self.keep == Keep::Output || matches!(what, Capture::Failure | Capture::Skipped)
            }
            _ => false,
        }
    }

    fn append(&mut self, text: &str) {
        if let (Some(c), Some((what, _))) = (self.case.as_mut(), self.capture) {
            c.text(what).push(text, self.keep);
        }
    }
}

/// Calls `f` with each attribute's local name and a way to get its value,
/// lossily decoded and unescaped (a malformed attribute is skipped).
/// Each attribute of `e` with its value, unescaped (as written when it
/// does not unescape), borrowed from the element when it can be: most
/// values are kept whole or parsed, only kept ones are copied.
fn for_each_attribute(e: &BytesStart<'_>, mut f: impl FnMut(&[u8], Cow<'_, str>)) {
    for attr in e.attributes().with_checks(false).flatten() {
        let raw = String::from_utf8_lossy(&attr.value);
        let unescaped = match quick_xml::escape::unescape(&raw) {
            Ok(Cow::Owned(v)) => Some(v),
            // Nothing to unescape (the value is `raw`), or not valid.
            Ok(Cow::Borrowed(_)) | Err(_) => None,
        };
        let value = match unescaped {
            Some(v) => Cow::Owned(v),
            None => raw,
        };
        f(attr.key.local_name().as_ref(), value);
    }
}

fn predefined(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => return None,
    })
}

/// A `time` attribute as [`parse_seconds`] reads it, with the value
/// itself when it is out of range (for the warning or error).
type ReadTime = Result<Option<Duration>, (Option<Duration>, String)>;

/// [`parse_seconds`] of `value`, copying it only when it is out of range.
fn read_time(value: &str) -> ReadTime {
    parse_seconds(value).map_err(|clamped| (clamped, value.to_owned()))
}

/// A `time` attribute: seconds, `0.25`, `1,234.5` (some writers group
/// digits). `Ok(None)` for what is not a number at all (`""`, `n/a`: no
/// time given); `Err(clamped)` for a number that is no duration of 0 to
/// [`MAX_TIME`]: negative (clamped to zero), too long or infinite (to
/// `MAX_TIME`), NaN (to no time).
fn parse_seconds(s: &str) -> Result<Option<Duration>, Option<Duration>> {
    let s: Cow<'_, str> = if s.contains(',') {
        Cow::Owned(s.replace(',', ""))
    } else {
        Cow::Borrowed(s)
    };
    let Ok(secs) = s.trim().parse::<f64>() else {
        return Ok(None);
    };
    if secs.is_nan() {
        Err(None)
    } else if secs < 0.0 {
        Err(Some(Duration::ZERO))
    } else if secs > MAX_TIME.as_secs_f64() {
        Err(Some(MAX_TIME))
    } else {
        // In range, so the conversion can't fail; no time if it did.
        Ok(Duration::try_from_secs_f64(secs).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsers::test_support::find;
    use proptest::prelude::*;

    fn write(dir: &Path, rel: &str, text: &[u8]) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, text).unwrap();
    }

    /// The files of a batch `b` that started long before they were written.
    fn read(dir: &Path, patterns: &[&str]) -> (Vec<TestResult>, Vec<String>) {
        let read = read_since(dir, patterns, SystemTime::UNIX_EPOCH);
        assert_eq!(read.warnings, Vec::<String>::new());
        (read.tests, read.problems)
    }

    fn read_since(dir: &Path, patterns: &[&str], started: SystemTime) -> JunitFiles {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        read_junit_files(dir, &patterns, "b", started)
    }

    const SUREFIRE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="https://maven.apache.org/surefire/maven-surefire-plugin/xsd/surefire-test-report-3.0.xsd" version="3.0" name="com.example.shop.CartTest" time="1.234" tests="4" errors="1" skipped="1" failures="1">
  <properties>
    <property name="java.version" value="21.0.2"/>
    <property name="line.separator" value="&#10;"/>
  </properties>
  <testcase name="totalIsSum" classname="com.example.shop.CartTest" time="0.012"/>
  <testcase name="discountApplies" classname="com.example.shop.CartTest" time="0.034">
    <failure message="expected: &lt;85&gt; but was: &lt;90&gt;" type="org.opentest4j.AssertionFailedError"><![CDATA[org.opentest4j.AssertionFailedError: expected: <85> but was: <90>
	at com.example.shop.CartTest.discountApplies(CartTest.java:41)
]]></failure>
    <system-out><![CDATA[applying discount 10%
]]></system-out>
  </testcase>
  <testcase name="loadsPrices" classname="com.example.shop.CartTest" time="1,002.5">
    <error message="Connection refused" type="java.net.ConnectException">java.net.ConnectException: Connection refused &amp; gave up
	at com.example.shop.PriceClient.load(PriceClient.java:12)</error>
    <system-err>WARN price service down</system-err>
  </testcase>
  <testcase name="legacyFormat" classname="com.example.shop.CartTest" time="0">
    <skipped message="disabled until v2"/>
  </testcase>
  <testcase name="sometimesSlow" classname="com.example.shop.CartTest" time="0.5">
    <flakyFailure message="timeout after 200ms" type="java.util.concurrent.TimeoutException">
      <stackTrace>java.util.concurrent.TimeoutException: timeout after 200ms</stackTrace>
      <system-out>first attempt output</system-out>
    </flakyFailure>
  </testcase>
</testsuite>
"#;

    #[test]
    fn surefire() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "target/surefire-reports/TEST-com.example.shop.CartTest.xml",
            SUREFIRE.as_bytes(),
        );
        let (results, problems) = read(dir.path(), &["target/surefire-reports/TEST-*.xml"]);
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(results.len(), 5);
        let ok = find(&results, "com.example.shop.CartTest/totalIsSum");
        assert_eq!(ok.path, ["com.example.shop.CartTest", "totalIsSum"]);
        assert_eq!(ok.status, TestStatus::Passed);
        assert_eq!(ok.duration, Some(Duration::from_millis(12)));
        let d = find(&results, "com.example.shop.CartTest/discountApplies");
        assert_eq!(d.status, TestStatus::Failed);
        assert_eq!(d.message.as_deref(), Some("expected: <85> but was: <90>"));
        assert_eq!(
            d.output,
            "applying discount 10%\n\
             org.opentest4j.AssertionFailedError: expected: <85> but was: <90>\n\
             \tat com.example.shop.CartTest.discountApplies(CartTest.java:41)\n"
        );
        let e = find(&results, "com.example.shop.CartTest/loadsPrices");
        assert_eq!(
            e.status,
            TestStatus::Error("java.net.ConnectException".into())
        );
        assert_eq!(e.duration, Some(Duration::from_secs_f64(1002.5)));
        assert_eq!(e.message.as_deref(), Some("Connection refused"));
        assert!(e.output.starts_with("WARN price service down\n"));
        assert!(e.output.contains("Connection refused & gave up"));
        assert!(!e.output.contains("discount"));
        assert_eq!(
            find(&results, "com.example.shop.CartTest/legacyFormat").status,
            TestStatus::Skipped(Some("disabled until v2".into()))
        );
        let flaky = find(&results, "com.example.shop.CartTest/sometimesSlow");
        assert_eq!(flaky.status, TestStatus::Flaky);
        assert_eq!(flaky.message.as_deref(), Some("timeout after 200ms"));
        assert!(
            flaky
                .output
                .contains("[warden: flakyFailure: timeout after 200ms]")
        );
        assert!(flaky.output.contains("first attempt output"));
    }

    #[test]
    fn gotestsum_pytest_nextest() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "out/go/junit.xml",
            br#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="1" errors="0" time="0.270">
	<testsuite tests="3" failures="1" time="0.270" name="example.com/shop/cart" timestamp="2024-05-01T10:00:00Z">
		<properties>
			<property name="go.version" value="go1.22.2 linux/amd64"></property>
		</properties>
		<testcase classname="example.com/shop/cart" name="TestTotal" time="0.010"></testcase>
		<testcase classname="example.com/shop/cart" name="TestDiscount/percent" time="0.250">
			<failure message="Failed" type="">=== RUN   TestDiscount/percent&#xA;    cart_test.go:41: got 90, want 85&#xA;--- FAIL: TestDiscount/percent (0.25s)&#xA;</failure>
		</testcase>
		<testcase classname="example.com/shop/cart" name="TestLegacy" time="0.000">
			<skipped message="=== RUN   TestLegacy&#xA;    cart_test.go:60: needs the v1 API server&#xA;--- SKIP: TestLegacy (0.00s)&#xA;"></skipped>
		</testcase>
	</testsuite>
</testsuites>"#,
        );
        write(
            dir.path(),
            "out/py/report.xml",
            br#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="0" skipped="1" tests="3" time="0.412" timestamp="2024-05-01T10:00:00.000000+00:00" hostname="ci-7"><testcase classname="tests.test_api" name="test_login" time="0.101" /><testcase classname="tests.test_api" name="test_db" time="0.002"><error message="failed on setup with &quot;ConnectionError: db down&quot;">@pytest.fixture
    def db():
&gt;       raise ConnectionError("db down")
E       ConnectionError: db down

tests/conftest.py:7: ConnectionError</error></testcase><testcase classname="tests.test_api" name="test_windows_paths" time="0.000"><skipped type="pytest.skip" message="windows only">tests/test_api.py:30: windows only</skipped></testcase></testsuite></testsuites>"#,
        );
        write(
            dir.path(),
            "out/nextest/junit.xml",
            br#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="2" failures="1" errors="0" uuid="a1b2" timestamp="2024-05-01T10:00:00.000+00:00" time="0.051">
    <testsuite name="shop" tests="2" disabled="0" errors="0" failures="1">
        <testcase name="cart::tests::discount" classname="shop" timestamp="2024-05-01T10:00:00.010+00:00" time="0.021">
            <failure type="test failure with exit code 101">thread &apos;cart::tests::discount&apos; panicked at src/cart.rs:88:9:
assertion `left == right` failed</failure>
            <rerunFailure timestamp="2024-05-01T10:00:00.030+00:00" time="0.020" type="test failure with exit code 101">
                <system-out>retry 1</system-out>
            </rerunFailure>
            <system-out>computing discount</system-out>
            <system-err>thread &apos;cart::tests::discount&apos; panicked at src/cart.rs:88:9</system-err>
        </testcase>
        <testcase name="cart::tests::empty" classname="" time="0.002">
        </testcase>
    </testsuite>
</testsuites>"#,
        );
        write(dir.path(), "out/notes.txt", b"not junit");
        let (results, problems) = read(dir.path(), &["out/**/*.xml"]);
        assert_eq!(problems, Vec::<String>::new());
        let names: Vec<String> = results.iter().map(TestResult::name).collect();
        assert_eq!(
            names,
            [
                "example.com/shop/cart/TestTotal",
                "example.com/shop/cart/TestDiscount/percent",
                "example.com/shop/cart/TestLegacy",
                "shop/cart::tests::discount",
                "cart::tests::empty",
                "tests.test_api/test_login",
                "tests.test_api/test_db",
                "tests.test_api/test_windows_paths",
            ]
        );
        let go = &results[1];
        assert_eq!(go.path, ["example.com/shop/cart", "TestDiscount/percent"]);
        assert_eq!(go.status, TestStatus::Failed);
        assert_eq!(go.message.as_deref(), Some("Failed"));
        assert_eq!(
            go.output,
            "=== RUN   TestDiscount/percent\n    cart_test.go:41: got 90, want 85\n--- FAIL: TestDiscount/percent (0.25s)\n"
        );
        assert!(
            matches!(&results[2].status, TestStatus::Skipped(Some(m)) if m.contains("needs the v1 API server"))
        );
        let nx = &results[3];
        assert_eq!(nx.status, TestStatus::Failed);
        assert_eq!(
            nx.message.as_deref(),
            Some("failed 2 times: thread 'cart::tests::discount' panicked at src/cart.rs:88:9:")
        );
        assert!(nx.output.starts_with("computing discount\n"));
        assert!(nx.output.contains("[warden: rerunFailure: ]"));
        assert!(nx.output.ends_with("assertion `left == right` failed\n"));
        assert_eq!(results[4].path, ["cart::tests::empty"]);
        assert_eq!(results[4].status, TestStatus::Passed);
        let db = &results[6];
        // pytest's <error> (a broken fixture) has no type.
        assert_eq!(db.status, TestStatus::Error("error".into()));
        assert_eq!(
            db.message.as_deref(),
            Some("failed on setup with \"ConnectionError: db down\"")
        );
        assert!(
            db.output
                .contains(">       raise ConnectionError(\"db down\")")
        );
        assert!(!db.output.contains("windows"));
        assert_eq!(
            results[7].status,
            TestStatus::Skipped(Some("windows only".into()))
        );
    }

    #[test]
    fn malformed_keeps_earlier_results() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.xml",
            b"<testsuite><testcase classname=\"c\" name=\"first\" time=\"0.1\"/>\n<testcase name=\"second\"><failure>x</wrong></testcase></testsuite>",
        );
        write(
            dir.path(),
            "b.xml",
            b"<testsuite><testcase name=\"cut\"><system-out>partial \xff output",
        );
        write(dir.path(), "c.xml", b"hello, not xml at all");
        let (results, problems) = read(dir.path(), &["*.xml"]);
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].path, ["c", "first"]);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].starts_with("malformed JUnit file a.xml"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("malformed JUnit file b.xml"),
            "{problems:?}"
        );
        assert!(
            problems[2].starts_with("malformed JUnit file c.xml"),
            "{problems:?}"
        );
    }

    #[test]
    fn nothing_matched_and_symlinks_skipped() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "elsewhere/x.xml", b"<testsuite/>");
        write(dir.path(), "out/top.xml", b"<testsuite/>");
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), dir.path().join("out/link"))
            .unwrap();
        let (results, problems) = read(dir.path(), &["out/*/*.xml"]);
        assert!(results.is_empty());
        assert_eq!(
            problems,
            ["no JUnit file matching out/*/*.xml was written by this run"]
        );
        let (_, problems) = read(dir.path(), &["out/**/*.xml"]);
        assert!(problems.is_empty(), "{problems:?}");
        let abs = format!("{}/out/*.xml", dir.path().display());
        let (_, problems) = read(dir.path(), &[abs.as_str()]);
        assert!(problems.is_empty(), "{problems:?}");
        let (_, problems) = read(dir.path(), &["out/[".to_string().as_str()]);
        assert!(
            problems[0].starts_with("bad JUnit file pattern"),
            "{problems:?}"
        );
    }

    #[test]
    fn huge_output_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut xml = b"<testsuite><testcase name=\"big\"><system-out>".to_vec();
        for i in 0..50_000 {
            xml.extend_from_slice(format!("line {i} &amp; more\n").as_bytes());
        }
        xml.extend_from_slice(
            b"</system-out><failure message=\"m\">the end</failure></testcase></testsuite>",
        );
        write(dir.path(), "big.xml", &xml);
        let (results, problems) = read(dir.path(), &["big.xml"]);
        assert!(problems.is_empty());
        let out = &results[0].output;
        assert!(out.len() <= MAX_TEST_OUTPUT + 200);
        assert!(out.ends_with("line 49999 & more\nthe end\n"));
    }

    fn set_mtime(dir: &Path, rel: &str, ago: Duration) {
        let f = std::fs::File::options()
            .write(true)
            .open(dir.join(rel))
            .unwrap();
        f.set_modified(SystemTime::now() - ago).unwrap();
    }

    #[test]
    fn files_older_than_the_batch_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let xml = br#"<testsuite name="s"><testcase classname="c" name="old"/></testsuite>"#;
        write(dir.path(), "out/junit.xml", xml);
        set_mtime(dir.path(), "out/junit.xml", Duration::from_secs(3600));
        let started = SystemTime::now();
        let read = read_since(dir.path(), &["out/*.xml"], started);
        assert!(read.tests.is_empty(), "{:?}", read.tests);
        assert_eq!(
            read.problems,
            [
                "no JUnit file matching out/*.xml was written by this run (found 1 older file: out/junit.xml, written before the batch started)"
            ]
        );
        // A fresh file beside it is read, the stale one still not.
        write(
            dir.path(),
            "out/new.xml",
            br#"<testsuite name="s"><testcase classname="c" name="new"/></testsuite>"#,
        );
        let read = read_since(dir.path(), &["out/*.xml"], started);
        assert_eq!(read.problems, Vec::<String>::new());
        let names: Vec<String> = read.tests.iter().map(TestResult::name).collect();
        assert_eq!(names, ["c/new"]);
        // Written just before the start, by a coarse clock: still this batch's.
        set_mtime(dir.path(), "out/junit.xml", Duration::from_millis(500));
        let read = read_since(dir.path(), &["out/*.xml"], SystemTime::now());
        assert_eq!(read.tests.len(), 2);
        // Many stale files: a few are named.
        for i in 0..5 {
            let rel = format!("old/{i}.xml");
            write(dir.path(), &rel, xml);
            set_mtime(dir.path(), &rel, Duration::from_secs(60));
        }
        let read = read_since(dir.path(), &["old/*.xml"], SystemTime::now());
        assert_eq!(
            read.problems,
            [
                "no JUnit file matching old/*.xml was written by this run (found 5 older files: old/0.xml, old/1.xml, old/2.xml and 2 more, written before the batch started)"
            ]
        );
    }

    #[test]
    fn errors_keep_their_type() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "e.xml",
            br#"<testsuite name="s">
  <testcase classname="c" name="typed"><error type="java.net.ConnectException" message="refused"/></testcase>
  <testcase classname="c" name="untyped"><error message="failed on setup"/></testcase>
  <testcase classname="c" name="blank"><error type=" ">text line
more</error></testcase>
  <testcase classname="c" name="failure_then_error"><failure message="f"/><error type="x"/></testcase>
</testsuite>"#,
        );
        let (results, problems) = read(dir.path(), &["e.xml"]);
        assert!(problems.is_empty(), "{problems:?}");
        let got: Vec<(String, TestStatus, Option<String>)> = results
            .into_iter()
            .map(|r| (r.name(), r.status, r.message))
            .collect();
        let e = |t: &str| TestStatus::Error(t.into());
        let m = |t: &str| Some(t.to_owned());
        assert_eq!(
            got,
            [
                (
                    "c/typed".into(),
                    e("java.net.ConnectException"),
                    m("refused")
                ),
                ("c/untyped".into(), e("error"), m("failed on setup")),
                ("c/blank".into(), e("error"), m("text line")),
                ("c/failure_then_error".into(), TestStatus::Failed, m("f")),
            ]
        );
    }

    #[test]
    fn reruns_in_one_suite_are_one_result() {
        let dir = tempfile::tempdir().unwrap();
        // pytest-rerunfailures, both shapes, and gotestsum --rerun-fails.
        write(
            dir.path(),
            "r.xml",
            br#"<testsuites><testsuite name="pytest">
  <testcase classname="t" name="flaky"><failure message="first">x</failure></testcase>
  <testcase classname="t" name="flaky"><failure message="second">x</failure></testcase>
  <testcase classname="t" name="flaky" time="0.5"/>
  <testcase classname="t" name="always" />
  <testcase classname="t" name="always" />
  <testcase classname="t" name="always"><failure message="assert False"/></testcase>
  <testcase classname="t" name="ok"/>
  <testcase classname="t" name="broken"><error message="fixture"/></testcase>
  <testcase classname="t" name="broken"><error message="fixture again"/></testcase>
</testsuite></testsuites>"#,
        );
        let (results, problems) = read(dir.path(), &["r.xml"]);
        assert!(problems.is_empty(), "{problems:?}");
        let got: Vec<(String, TestStatus, Option<String>)> = results
            .iter()
            .map(|r| (r.name(), r.status.clone(), r.message.clone()))
            .collect();
        let m = |t: &str| Some(t.to_owned());
        assert_eq!(
            got,
            [
                ("t/flaky".into(), TestStatus::Flaky, m("first")),
                (
                    "t/always".into(),
                    TestStatus::Failed,
                    m("failed 3 times: assert False")
                ),
                ("t/ok".into(), TestStatus::Passed, None),
                (
                    "t/broken".into(),
                    TestStatus::Error("error".into()),
                    m("failed 2 times: fixture")
                ),
            ]
        );
        assert_eq!(results[0].duration, Some(Duration::from_millis(500)));
    }

    #[test]
    fn namesakes_in_other_suites_are_other_tests() {
        let dir = tempfile::tempdir().unwrap();
        // bats: a suite per file, named (and classnamed) by its base name;
        // two directories with a `setup.bats` each.
        write(
            dir.path(),
            "bats.xml",
            br#"<testsuites>
<testsuite name="setup.bats"><testcase classname="setup.bats" name="works"/></testsuite>
<testsuite name="setup.bats"><testcase classname="setup.bats" name="works"><failure message="no"/></testcase></testsuite>
<testsuite name="a"><testcase classname="" name="same"/></testsuite>
<testsuite name="b"><testcase classname="" name="same"/></testsuite>
<testsuite name="c" file="tests/c.php"><testcase classname="" name="same"/></testsuite>
<testsuite name="d"><testcase classname="" name="same" file="tests/d.py"/></testsuite>
</testsuites>"#,
        );
        let (results, problems) = read(dir.path(), &["bats.xml"]);
        assert!(problems.is_empty(), "{problems:?}");
        let got: Vec<(String, TestStatus)> = results
            .iter()
            .map(|r| (r.name(), r.status.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("setup.bats/works".into(), TestStatus::Passed),
                ("setup.bats/works #2".into(), TestStatus::Failed),
                ("same".into(), TestStatus::Passed),
                ("same (in b)".into(), TestStatus::Passed),
                ("same (in tests/c.php)".into(), TestStatus::Passed),
                ("same (in tests/d.py)".into(), TestStatus::Passed),
            ]
        );
        // The same file read twice (two patterns match it once): one file.
        write(dir.path(), "again/bats.xml", b"<testsuite name=\"setup.bats\"><testcase classname=\"setup.bats\" name=\"works\"/></testsuite>");
        let (results, _) = read(dir.path(), &["bats.xml", "again/*.xml"]);
        let names: Vec<String> = results.iter().take(3).map(TestResult::name).collect();
        assert_eq!(results.len(), 7);
        // Files in name order: again/bats.xml first.
        assert_eq!(
            names,
            [
                "setup.bats/works",
                "setup.bats/works #2",
                "setup.bats/works #3"
            ]
        );
        assert_eq!(results[2].status, TestStatus::Failed);
    }

    #[test]
    fn the_classname_is_left_out_when_it_is_the_batch() {
        assert_eq!(test_path("b", "b", "t"), ["t"]);
        assert_eq!(test_path("b", "", "t"), ["t"]);
        assert_eq!(test_path("b", "c", "t"), ["c", "t"]);
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "x.xml",
            br#"<testsuite name="b"><testcase classname="b" name="t"/></testsuite>"#,
        );
        let (results, _) = read(dir.path(), &["x.xml"]);
        assert_eq!(results[0].path, ["t"]);
    }

    #[test]
    fn times_out_of_range_are_clamped_with_a_warning() {
        assert_eq!(parse_seconds("0.25"), Ok(Some(Duration::from_millis(250))));
        assert_eq!(
            parse_seconds("1,002.5"),
            Ok(Some(Duration::from_secs_f64(1002.5)))
        );
        assert_eq!(parse_seconds("-0"), Ok(Some(Duration::ZERO)));
        assert_eq!(parse_seconds(""), Ok(None));
        assert_eq!(parse_seconds("n/a"), Ok(None));
        assert_eq!(parse_seconds("1e19"), Err(Some(MAX_TIME)));
        assert_eq!(parse_seconds("inf"), Err(Some(MAX_TIME)));
        assert_eq!(parse_seconds("-1"), Err(Some(Duration::ZERO)));
        assert_eq!(parse_seconds("-inf"), Err(Some(Duration::ZERO)));
        assert_eq!(parse_seconds("NaN"), Err(None));
        assert_eq!(parse_seconds("1.8e308"), Err(Some(MAX_TIME)));

        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "t.xml",
            br#"<testsuite name="s" time="1e19">
<testcase classname="c" name="huge" time="1e19"/>
<testcase classname="c" name="negative" time="-1"/>
<testcase classname="c" name="nan" time="NaN"/>
<testcase classname="c" name="inf" time="inf"/>
</testsuite>"#,
        );
        let read = read_since(dir.path(), &["t.xml"], SystemTime::UNIX_EPOCH);
        assert!(read.problems.is_empty(), "{:?}", read.problems);
        let durations: Vec<Option<Duration>> = read.tests.iter().map(|t| t.duration).collect();
        assert_eq!(
            durations,
            [Some(MAX_TIME), Some(Duration::ZERO), None, Some(MAX_TIME)]
        );
        assert_eq!(read.warnings.len(), 5, "{:?}", read.warnings);
        assert_eq!(
            read.warnings[1],
            "JUnit file t.xml (at byte 33): time=\"1e19\" is out of range; taken as 31622400 seconds"
        );
        assert!(read.warnings[3].ends_with("time=\"NaN\" is out of range; ignored"));
    }

    fn fragment() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..50),
            prop::sample::select(vec![
                "<testsuites>",
                "</testsuites>",
                "<testsuite name=\"s\">",
                "</testsuite>",
                "<testcase classname=\"c\" name=\"n\" time=\"-1\">",
                "<testcase name=\"e\"/>",
                "</testcase>",
                "<failure message=\"&lt;m\">",
                "</failure>",
                "<skipped/>",
                "<system-out>",
                "</system-out>",
                "<![CDATA[x]]>",
                "&amp;",
                "&#0;",
                "&bogus;",
                "<flakyFailure>",
                "</flakyFailure>",
                "<error type='t'/>",
                "<?xml version=\"1.0\"?>",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn never_panics_on_any_file(parts in prop::collection::vec(fragment(), 0..60)) {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), "r.xml", &parts.concat());
            let results = read_since(dir.path(), &["*.xml"], SystemTime::UNIX_EPOCH).tests;
            for r in &results {
                prop_assert!(r.output.len() <= MAX_TEST_OUTPUT + 200);
            }
        }
    }
}
