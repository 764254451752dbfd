//! One JUnit file into its suites and cases, as nested in the file:
//! suites that only hold suites (PHPUnit's) are dropped, cases outside any
//! suite go into one named after the file, and warden's own report is
//! recognised by its root (`<testsuites name="warden">`).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::{JunitFile, parse_timestamp};
use crate::parsers::TestResult;
use crate::parsers::junit::{Case, Suite, Visitor};

/// The suites of warden's own JUnit that hold batches without tests (the
/// others hold one batch's tests each).
pub(super) const WARDEN_SUITES: [&str; 3] = ["warden", "setup", "post"];

/// One `<testsuite>` that holds test cases (or nothing at all).
#[derive(Debug)]
pub struct ImportedSuite {
    pub name: String,
    /// What tells its tests apart from namesakes in other suites (its
    /// `file`, else its name).
    pub label: Option<String>,
    /// Its `timestamp`, if it has one.
    pub started: Option<SystemTime>,
    /// Its `time`, else the sum of its cases' times.
    pub duration: Duration,
    pub cases: Vec<ImportedCase>,
}

/// One `<testcase>`, read.
#[derive(Debug)]
pub struct ImportedCase {
    pub classname: String,
    pub name: String,
    /// Its `file` attribute, when it has one.
    pub file: Option<String>,
    /// Its result, as a batch `format = "junit"` reads it (without output),
    /// with no path yet: assembling names it.
    pub result: TestResult,
}

/// A `<testsuite>` still open while reading.
struct OpenSuite {
    name: String,
    label: Option<String>,
    started: Option<SystemTime>,
    time: Option<Duration>,
    cases: Vec<ImportedCase>,
    /// The sum of its cases' and nested suites' durations.
    contents: Duration,
    /// It holds suites of its own (a container when it has no cases).
    nested: bool,
}

impl OpenSuite {
    fn new(name: String) -> OpenSuite {
        OpenSuite {
            label: Some(name.clone()),
            name,
            started: None,
            time: None,
            cases: Vec::new(),
            contents: Duration::ZERO,
            nested: false,
        }
    }

    fn duration(&self) -> Duration {
        self.time.unwrap_or(self.contents)
    }
}

/// The [`Visitor`] that turns one file into suites of cases.
pub(super) struct FileReader {
    /// warden's own report (`<testsuites name="warden">` at the root).
    warden: bool,
    saw_element: bool,
    open: Vec<OpenSuite>,
    /// Cases outside any `<testsuite>`: a suite named after the file.
    loose: OpenSuite,
    suites: Vec<ImportedSuite>,
    earliest: Option<SystemTime>,
    duration: Duration,
}

impl FileReader {
    pub(super) fn new(default_suite: String) -> FileReader {
        FileReader {
            warden: false,
            saw_element: false,
            open: Vec::new(),
            loose: OpenSuite::new(default_suite),
            suites: Vec::new(),
            earliest: None,
            duration: Duration::ZERO,
        }
    }

    fn timestamp(&mut self, timestamp: Option<&str>) -> Option<SystemTime> {
        let t = parse_timestamp(timestamp?)?;
        self.earliest = Some(self.earliest.map_or(t, |e| e.min(t)));
        Some(t)
    }

    pub(super) fn finish(mut self, path: PathBuf, modified: Option<SystemTime>) -> JunitFile {
        if !self.loose.cases.is_empty() {
            let loose = std::mem::replace(&mut self.loose, OpenSuite::new(String::new()));
            self.duration += loose.duration();
            self.close(loose);
        }
        JunitFile {
            path,
            warden: self.warden,
            suites: self.suites,
            earliest: self.earliest,
            duration: self.duration,
            modified,
        }
    }

    /// Keeps a closed suite unless it only holds other suites.
    fn close(&mut self, suite: OpenSuite) {
        if suite.cases.is_empty() && suite.nested {
            return;
        }
        let duration = suite.duration();
        self.suites.push(ImportedSuite {
            name: suite.name,
            label: suite.label,
            started: suite.started,
            duration,
            cases: suite.cases,
        });
    }
}

impl Visitor for FileReader {
    fn suite_start(&mut self, suite: Suite) {
        let first = !self.saw_element;
        self.saw_element = true;
        let started = self.timestamp(suite.timestamp.as_deref());
        if suite.report {
            self.warden |= first && suite.name.as_deref() == Some("warden");
            return;
        }
        if let Some(parent) = self.open.last_mut() {
            parent.nested = true;
        }
        let label = suite.label();
        let mut open = OpenSuite::new(suite.name.unwrap_or_else(|| self.loose.name.clone()));
        open.label = label.or(open.label);
        open.started = started;
        open.time = suite.time;
        self.open.push(open);
    }

    fn suite_end(&mut self, report: bool) {
        if report {
            return;
        }
        let Some(suite) = self.open.pop() else {
            return;
        };
        let duration = suite.duration();
        match self.open.last_mut() {
            Some(parent) => parent.contents += duration,
            None => self.duration += duration,
        }
        self.close(suite);
    }

    fn case(&mut self, mut case: Case) {
        self.saw_element = true;
        let suite = self.open.last_mut().unwrap_or(&mut self.loose);
        // Moved out, not copied; assembling names the result.
        let classname = std::mem::take(&mut case.classname);
        let name = std::mem::take(&mut case.name);
        let file = case.file.take();
        let result = case.into_result_at(Vec::new());
        suite.contents += result.duration.unwrap_or_default();
        suite.cases.push(ImportedCase {
            classname,
            name,
            file,
            result,
        });
    }
}
