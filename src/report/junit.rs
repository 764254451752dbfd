//! The JUnit XML file: one testcase per batch, rewritten atomically after each
//! record so that a reader (or a killed run) always finds a complete document.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, FixedOffset, Utc};
use quick_junit::{
    NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite, XmlString,
};

use super::log_tail::tail_text;
use super::xml_safe_text;
use crate::outcome::Outcome;
use crate::parsers::{TestResult, TestStatus};
use crate::status::Status;

/// The name of the report, of its single test suite, and the default classname.
const NAME: &str = "warden";

/// Keeps what JUnit needs of each finished batch and rewrites the file on demand.
#[derive(Debug)]
pub struct JunitWriter {
    path: PathBuf,
    cases: Vec<Case>,
}

/// The few fields of an [`Outcome`] the XML needs, already made XML-safe, so
/// that each rewrite only clones and serializes.
#[derive(Debug)]
struct Case {
    /// [`Phase::label`](crate::outcome::Phase::label): which suite it goes in.
    phase: &'static str,
    /// The tests its output was read into (its own suite when not empty).
    tests: Vec<CaseTest>,
    /// Earlier attempts: (status, reason).
    retried: Vec<(XmlString, XmlString)>,
    /// `quarantined (reason): <status>: <reason>` when quarantined.
    quarantined: Option<XmlString>,
    name: XmlString,
    classname: XmlString,
    status: Status,
    reason: XmlString,
    started: SystemTime,
    duration: Duration,
    /// The log's tail; `None` when empty.
    out: Option<XmlString>,
    /// Warnings and leaked processes, one per line; `None` when there are none.
    err: Option<XmlString>,
}

impl JunitWriter {
    /// Writes nothing until the first [`record`](Self::record) or [`write`](Self::write).
    pub fn new(path: PathBuf) -> Self {
        JunitWriter {
            path,
            cases: Vec::new(),
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
        self.cases.extend(outcomes.into_iter().map(Case::new));
        self.write()
    }

    /// Rewrites the file with what was recorded so far (an empty suite if nothing).
    pub fn write(&self) -> io::Result<()> {
        let report = self.build();
        write_atomically(&self.path, |w| {
            report.serialize(w).map_err(io::Error::other)
        })
    }

    /// One suite per phase: `setup` and `post` when they have steps, and
    /// `warden` (the batches) always.
    fn build(&self) -> Report {
        let mut report = Report::new(NAME);
        if let Some((start, span)) = span(self.cases.iter()) {
            report.set_timestamp(timestamp(start)).set_time(span);
        }
        for (suite_name, phase) in [("setup", "setup"), (NAME, "batch"), ("post", "post")] {
            // A batch whose output was read into tests gets a suite of its own.
            let cases = || {
                self.cases
                    .iter()
                    .filter(move |c| c.phase == phase && c.tests.is_empty())
            };
            if phase != "batch" && cases().next().is_none() {
                continue;
            }
            let mut suite = TestSuite::new(suite_name);
            suite.add_test_cases(cases().map(Case::to_test_case));
            if let Some((start, span)) = span(cases()) {
                suite.set_timestamp(timestamp(start)).set_time(span);
            }
            report.add_test_suite(suite);
        }
        for case in self.cases.iter().filter(|c| !c.tests.is_empty()) {
            report.add_test_suite(case.to_test_suite());
        }
        report
    }
}

/// The earliest start and the wall-clock time from it to the latest end.
fn span<'a>(cases: impl Iterator<Item = &'a Case> + Clone) -> Option<(SystemTime, Duration)> {
    let start = cases.clone().map(|c| c.started).min()?;
    let end = cases.map(|c| c.started + c.duration).max()?;
    Some((start, end.duration_since(start).unwrap_or_default()))
}

/// One test or subtest of a batch, XML-safe.
#[derive(Debug)]
struct CaseTest {
    /// Why, when the quarantine list covers this failing test.
    quarantined: Option<XmlString>,
    /// Messages of earlier attempts in which it failed (flaky if it passed now).
    earlier_failures: Vec<XmlString>,
    name: XmlString,
    status: TestStatus,
    message: Option<XmlString>,
    output: Option<XmlString>,
    duration: Option<Duration>,
}

impl CaseTest {
    fn new(t: &TestResult, o: &Outcome) -> CaseTest {
        let name = t.name();
        let earlier_failures = o
            .retried
            .iter()
            .flat_map(|a| a.failed_tests.iter())
            .filter(|(n, _)| *n == name)
            .map(|(_, m)| xml(m))
            .collect();
        CaseTest {
            earlier_failures,
            quarantined: o
                .quarantined_tests
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, why)| xml(&format!("quarantined ({why}): failed"))),
            name: xml(&t.name()),
            status: t.status.clone(),
            message: t.message.as_deref().map(xml),
            output: Some(&t.output).filter(|o| !o.is_empty()).map(|o| xml(o)),
            duration: t.duration,
        }
    }

    fn to_test_case(&self, classname: &XmlString) -> TestCase {
        let status = match &self.status {
            // As for batches: skipped, so JUnit consumers stay green.
            TestStatus::Failed | TestStatus::Error(_) if self.quarantined.is_some() => {
                let mut s = TestCaseStatus::skipped();
                s.set_type("quarantined");
                if let Some(why) = &self.quarantined {
                    s.set_message(why.clone());
                }
                s
            }
            TestStatus::Passed | TestStatus::Flaky => TestCaseStatus::success(),
            TestStatus::Skipped(why) => {
                let mut s = TestCaseStatus::skipped();
                if let Some(why) = why {
                    s.set_message(xml(why));
                }
                s
            }
            TestStatus::Failed | TestStatus::Error(_) => {
                let (kind, ty) = match &self.status {
                    TestStatus::Error(ty) => (NonSuccessKind::Error, xml(ty)),
                    _ => (NonSuccessKind::Failure, xml("failed")),
                };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_type(ty);
                if let Some(m) = &self.message {
                    s.set_message(m.clone());
                }
                // The test's own output is the failure text.
                if let Some(out) = &self.output {
                    s.set_description(out.clone());
                }
                s
            }
        };
        let mut status = status;
        // The runner's own retry passed it: its failed attempt.
        if self.status == TestStatus::Flaky {
            let mut rerun = TestRerun::new(NonSuccessKind::Failure);
            rerun.set_type("failed");
            if let Some(m) = &self.message {
                rerun.set_message(m.clone());
            }
            status.add_rerun(rerun);
        }
        // Earlier attempts in which it failed: flakyFailure on a test that
        // passed in the end, rerunFailure on one that failed every time.
        status.add_reruns(self.earlier_failures.iter().map(|m| {
            let mut rerun = TestRerun::new(NonSuccessKind::Failure);
            rerun.set_type("failed").set_message(m.clone());
            rerun
        }));
        let mut case = TestCase::new(self.name.clone(), status);
        case.set_classname(classname.clone());
        if let Some(d) = self.duration {
            case.set_time(d);
        }
        if (!self.status.is_failure() || self.quarantined.is_some())
            && let Some(out) = &self.output
        {
            case.set_system_out(out.clone());
        }
        case
    }
}

impl Case {
    /// A batch read into tests: its own suite, a testcase per test and
    /// subtest (classname = the batch), plus one for the batch itself when
    /// it failed outside any test (timeout, crash, leak, an incomplete run).
    fn to_test_suite(&self) -> TestSuite {
        let mut suite = TestSuite::new(self.name.clone());
        let classname = self.name.clone();
        suite.add_test_cases(self.tests.iter().map(|t| t.to_test_case(&classname)));
        let failed_test = self.tests.iter().any(|t| t.status.is_failure());
        if !failed_test && !matches!(self.status, Status::Passed | Status::Flaky) {
            suite.add_test_case(self.to_test_case());
        }
        suite
            .set_timestamp(timestamp(self.started))
            .set_time(self.duration);
        suite
    }

    fn new(o: &Outcome) -> Case {
        Case {
            tests: o.tests.iter().map(|t| CaseTest::new(t, o)).collect(),
            phase: o.phase.label(),
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
            out: Some(tail_text(&o.log))
                .filter(|t| !t.is_empty())
                .map(XmlString::new),
            err: system_err(o).map(|s| xml(&s)),
        }
    }

    fn to_test_case(&self) -> TestCase {
        let mut case = TestCase::new(self.name.clone(), self.junit_status());
        case.set_classname(self.classname.clone())
            .set_time(self.duration)
            .set_timestamp(timestamp(self.started));
        if let Some(out) = &self.out {
            case.set_system_out(out.clone());
        }
        if let Some(err) = &self.err {
            case.set_system_err(err.clone());
        }
        case
    }

    fn junit_status(&self) -> TestCaseStatus {
        // Quarantined failures are skipped in JUnit: consumers that fail a
        // build on any <failure> stay green, and the message keeps the failure.
        if let Some(why) = &self.quarantined {
            let mut status = TestCaseStatus::skipped();
            status.set_type("quarantined").set_message(why.clone());
            return status;
        }
        let (kind, ty) = match self.status {
            Status::Passed => return TestCaseStatus::success(),
            Status::Failed => (NonSuccessKind::Failure, "failed"),
            Status::Crashed => (NonSuccessKind::Error, "crashed"),
            Status::TimedOut => (NonSuccessKind::Error, "timed-out"),
            Status::Leaked => (NonSuccessKind::Failure, "leaked"),
            Status::Aborted => (NonSuccessKind::Error, "aborted"),
            Status::Deadline => (NonSuccessKind::Error, "deadline"),
            Status::Interrupted => (NonSuccessKind::Error, "interrupted"),
            Status::Flaky => {
                let mut status = TestCaseStatus::success();
                status.add_reruns(self.reruns());
                return status;
            }
            Status::NotRun => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(self.reason.clone()).set_type("not-run");
                return status;
            }
        };
        let mut status = TestCaseStatus::non_success(kind);
        status.set_type(ty).set_message(self.reason.clone());
        status.add_reruns(self.reruns());
        status
    }

    /// Earlier attempts: `flakyFailure` on a flaky case, `rerunFailure` on
    /// one that failed every time.
    fn reruns(&self) -> Vec<TestRerun> {
        self.retried
            .iter()
            .map(|(ty, message)| {
                let mut rerun = TestRerun::new(NonSuccessKind::Failure);
                rerun.set_type(ty.clone()).set_message(message.clone());
                rerun
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

fn xml(s: &str) -> XmlString {
    XmlString::new(xml_safe_text(s.as_bytes()))
}

fn timestamp(t: SystemTime) -> DateTime<FixedOffset> {
    DateTime::<Utc>::from(t).into()
}

/// Writes a sibling temp file, then renames it over `path`: readers see the old
/// file or the new one, never a partial one. Creates missing parent directories.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a file path: {}", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);

    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        write(&mut w)?;
        w.flush()?;
        drop(w);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ProcessInfo;
    use crate::report::test_support::outcome;
    use quick_xml::events::Event as XmlEvent;

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
}
